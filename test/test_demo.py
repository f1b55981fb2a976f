"""pgfa-demo on a short slice of the video produces its picture and prints results."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CKPT = REPO / "pgfa_ros" / "assets" / "utd_mhad_default.safetensors"


@pytest.mark.slow
@pytest.mark.ros
def test_demo_short_slice(tmp_path):
    if not DEFAULT_CKPT.is_file():
        pytest.fail(f"default checkpoint missing: {DEFAULT_CKPT}")
    out = tmp_path / "demo.gif"
    r = subprocess.run([sys.executable, "-m", "pgfa_ros.demo", "--max-frames", "75", "--window", "30",
                        "--stride", "10", "--out", str(out), "--no-progress"],
                       capture_output=True, text=True, timeout=500, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert out.is_file() and out.stat().st_size > 10_000
    lines = [ln for ln in r.stdout.splitlines() if " body 0: " in ln]
    assert lines, r.stdout + r.stderr
