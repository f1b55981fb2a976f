#!/usr/bin/env bash
# The test command: the whole pytest suite in .venv. Fails on any failure or when no test ran.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# Keep test DDS traffic on this machine and away from other ROS graphs.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( ($$ % 90) + 10 ))}"
# The DDP test (torchrun, 2 gloo processes) is on by default here; PGFA_TEST_DDP= (empty) skips it.
export PGFA_TEST_DDP="${PGFA_TEST_DDP-1}"
python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then echo "no tests ran: failing" >&2; exit 1; fi
exit "$rc"
