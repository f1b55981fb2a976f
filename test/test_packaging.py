"""The ament_python package: package.xml declares what the code imports, and `colcon build`
installs nodes, launch files, configs and assets where `ros2 run` / `ros2 launch` look."""
import ast
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROS_PREFIXES = ("rclpy", "launch", "launch_ros", "ament_index_python", "builtin_interfaces", "rosidl_runtime_py")


def _ros_imports() -> set[str]:
    found = set()
    for path in list((REPO / "pgfa_ros").rglob("*.py")) + list((REPO / "launch").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for n in names:
                top = n.split(".")[0]
                if top.endswith(("_msgs", "_srvs")) or top in ROS_PREFIXES:
                    found.add(top)
    return found


def test_package_xml_declares_every_ros_import():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "pgfa_ros"
    assert root.find("export/build_type").text == "ament_python"
    deps = {e.text for e in root.findall("exec_depend")}
    imported = _ros_imports()
    assert {"rclpy", "std_msgs", "visualization_msgs"} <= imported  # the scan sees the nodes
    assert imported <= deps, f"imported but not in package.xml: {sorted(imported - deps)}"


@pytest.mark.slow
def test_colcon_build_installs_the_package(tmp_path):
    colcon = shutil.which("colcon") or str(Path(sys.executable).with_name("colcon"))
    if not Path(colcon).is_file():
        pytest.skip("colcon is not installed (it is in requirements.txt)")
    before = {p.name for p in REPO.iterdir()}
    r = subprocess.run([colcon, "--log-base", str(tmp_path / "log"), "build", "--base-paths", str(REPO),
                        "--build-base", str(tmp_path / "build"), "--install-base", str(tmp_path / "install"),
                        "--packages-select", "pgfa_ros"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert {p.name for p in REPO.iterdir()} == before, "colcon build wrote into the source tree"
    pkg = tmp_path / "install" / "pgfa_ros"
    assert (pkg / "share" / "ament_index" / "resource_index" / "packages" / "pgfa_ros").is_file()
    assert (pkg / "share" / "pgfa_ros" / "package.xml").is_file()
    for exe in ("recognizer", "pose_estimator", "video_publisher", "pgfa-bag", "pgfa-demo"):
        assert os.access(pkg / "lib" / "pgfa_ros" / exe, os.X_OK), exe
    for rel in ("launch/recognizer.launch.py", "config/recognizer.yaml", "config/splits.yaml"):
        assert (pkg / "share" / "pgfa_ros" / rel).is_file(), rel
    site = next(pkg.glob("lib/python3*/site-packages"))
    probe = ("import pgfa_ros, training.splits as s; from pathlib import Path; "
             "a = Path(pgfa_ros.__file__).parent / 'assets' / 'multi_source_default.safetensors'; "
             "print(a.is_file(), s.default_splits_path(), len(s.load_splits()))")
    env = dict(os.environ, PYTHONPATH=str(site), AMENT_PREFIX_PATH=str(pkg))
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    ok, splits_path, n = out.stdout.split()
    assert ok == "True" and splits_path.startswith(str(pkg)) and int(n) > 0
