#!/usr/bin/env bash
# Fresh machine -> running demo: build .venv (scripts/setup.sh), then run pgfa-demo, which
# feeds the committed BSD demo video through pose_estimator -> recognizer over real ROS 2
# topics and writes the annotated result to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
pgfa-demo "$@"
