"""pgfa-launch: a ROS params YAML starts its nodes in one process and shuts down; launch files parse."""
import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pgfa_ros.launcher import LaunchError, load_launch_file

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((REPO / "launch").glob("*.launch.py")), ids=lambda p: p.name)
def test_launch_files_parse(path):
    tree = ast.parse(path.read_text())
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)


@pytest.mark.parametrize("name", ["camera_mediapipe.yaml", "azure_kinect_live.yaml", "fall_monitor.yaml"])
def test_example_configs_load(name):
    spec = load_launch_file(REPO / "config" / name)
    assert "recognizer" in [n.name for n in spec.nodes]


@pytest.mark.parametrize("name", ["camera_mediapipe.yaml", "fall_monitor.yaml"])
def test_camera_configs_name_only_parameters_the_pose_node_has(name):
    """A stale parameter (the single-person node's model_complexity) would be ignored with a warning."""
    from pgfa_models.config import read_yaml
    from pgfa_ros.pose_node import PARAMS

    params = read_yaml(REPO / "config" / name, ValueError, "config")["pose_estimator"]["ros__parameters"]
    assert set(params) <= set(PARAMS), sorted(set(params) - set(PARAMS))


def test_bad_launch_files(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("foo:\n  ros__parameters: {a: 1}\n")
    with pytest.raises(LaunchError):
        load_launch_file(p)
    p.write_text("pgfa_launch:\n  ros__parameters:\n    nodes: [nope]\n")
    with pytest.raises(LaunchError):
        load_launch_file(p)
    with pytest.raises(LaunchError):
        load_launch_file(tmp_path / "missing.yaml")


@pytest.mark.parametrize("args, what", [(["DIR", "--list"], "is a directory"),
                                        (["BIN", "--list"], "not a text"),
                                        (["THREADS", "--list"], "threads must be an integer"),
                                        (["GOOD", "--duration", "nan"], "--duration"),
                                        (["GOOD", "--duration", "-1"], "--duration")])
def test_pgfa_launch_bad_input_is_one_line_error(tmp_path, capsys, args, what):
    """A folder, a binary file or a non-integer ``threads`` used to end in a traceback; ``--duration
    nan`` never stopped and a negative one stopped at once."""
    from pgfa_ros.launcher import main

    (tmp_path / "bin.yaml").write_bytes(b"\xb0\x01\xff\x00")
    (tmp_path / "threads.yaml").write_text("pgfa_launch:\n  ros__parameters:\n    threads: abc\n"
                                           "recognizer:\n  ros__parameters: {}\n")
    paths = {"DIR": tmp_path, "BIN": tmp_path / "bin.yaml", "THREADS": tmp_path / "threads.yaml",
             "GOOD": REPO / "config" / "recognizer.yaml"}
    assert main([str(paths.get(a, a)) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and what in err


CONFIG = """
pgfa_launch:
  ros__parameters:
    nodes: ["video_publisher", "pose_estimator"]
video_publisher:
  ros__parameters:
    image_topic: /t/image
    rate: 0.0
    ack_topic: /t/skeleton
    loop: true
pose_estimator:
  ros__parameters:
    image_topic: /t/image
    skeleton_topic: /t/skeleton
    report_period: 0.0
"""


@pytest.mark.slow
@pytest.mark.ros
def test_launcher_in_process(tmp_path):
    from pgfa_ros.launcher import Launcher

    p = tmp_path / "c.yaml"
    p.write_text(CONFIG)
    with Launcher(p) as launcher:
        pose = launcher.node("pose_estimator")
        assert pose.get_parameter("skeleton_topic").value == "/t/skeleton"
        launcher.spin(until=lambda: pose.counts["skeletons"] >= 3, timeout=60)
        assert pose.counts["skeletons"] >= 3
    assert not launcher.context.ok()


@pytest.mark.slow
@pytest.mark.ros
def test_pgfa_launch_sigint_clean_exit(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(CONFIG)
    proc = subprocess.Popen([sys.executable, "-m", "pgfa_ros.launcher", str(p)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
    out = ""
    t0 = time.monotonic()
    while time.monotonic() - t0 < 90:
        line = proc.stdout.readline()
        out += line
        if "running 2 node(s)" in line or not line:
            break
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=30)
    out += rest
    assert proc.returncode == 0, out
    assert "shutting down" in out
