"""A short run of the soak benchmark (benchmarks/soak/run.py) over real DDS: body churn with fresh
ids, more bodies than max_bodies, NaN and malformed messages; state stays bounded and bad input
is counted."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]
pytest.importorskip("rclpy")

from recognizer_helpers import ros_subprocess_env  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def test_short_soak_bounded_and_counted(tmp_path, utd_dir):
    env = ros_subprocess_env()
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "soak" / "run.py"), "--duration", "15",
                           "--sample", "1", "--out-dir", str(tmp_path), "--domain", env["ROS_DOMAIN_ID"]],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
    res_path = tmp_path / "results.json"
    assert res_path.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(res_path.read_text())
    assert r["checks"]["node_alive"] and r["checks"]["queues_bounded"], r["maxima"]
    assert r["publisher"]["bodies_seen"] > r["setup"]["max_bodies"] * 2  # ids kept growing
    assert r["final_diagnostics"]["body_lost"] > 0
    # every bad input that reached the node is counted (exactly, when no best-effort message was lost)
    assert r["checks"]["bad_inputs_counted"], r["counted"]
    if r["messages_lost"] == 0:
        assert all(c["node"] == c["sent"] for c in r["counted"].values()), r["counted"]
    assert r["counted"]["rejected_input_malformed"]["sent"] > 0  # seed 0: malformed messages were sent
    assert (tmp_path / "RESULTS.md").read_text().startswith("# Soak benchmark")
