"""The shipped fall-monitor configs (issue 11): consistent, and both run with pgfa-launch."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIGS = ["fall_monitor_kinect.yaml", "fall_monitor.yaml"]
FALLS = {"fall backwards", "fall forwards", "fall to the left", "fall to the right", "fall while turning"}


def _rec(name):
    return yaml.safe_load((REPO / "config" / name).read_text())["recognizer"]["ros__parameters"]


@pytest.mark.parametrize("name", CONFIGS)
def test_config_is_a_complete_monitor(name):
    from pgfa_models.checkpoint import load_model
    from pgfa_ros.launcher import load_launch_file
    from pgfa_ros.recognizer_params import resolve_checkpoint
    from pgfa_ros.replay import load_params

    assert "recognizer" in [n.name for n in load_launch_file(REPO / "config" / name).nodes]
    p = load_params(REPO / "config" / name)  # every name known, every value valid
    assert set(p["alert_classes"]) == FALLS and p["alert_combine"] is True
    assert set(p["alert_classes"]) <= set(p["labels"])
    assert len(p["labels"]) > len(FALLS) + 5  # everyday activities compete with the falls
    assert 0 < p["unknown_threshold"] < p["alert_threshold"] <= 1 and p["alert_consecutive"] >= 1
    ckpt = Path(resolve_checkpoint(p["checkpoint"]))
    assert ckpt.is_file() and ckpt.parent == REPO / "pgfa_ros" / "assets"
    _, meta = load_model(str(ckpt))
    assert FALLS <= set(meta.labels)  # a model that has seen falls
    assert (meta.extra or {}).get("calibration", {}).get("tau")  # calibrated scores


def test_thresholds_are_the_benchmark_choice():
    import json

    res = json.loads((REPO / "benchmarks" / "falls" / "results.json").read_text())
    k, c = _rec("fall_monitor_kinect.yaml"), res["chosen"]["kinect"]
    assert (k["alert_threshold"], k["alert_consecutive"]) == (c["threshold"], c["consecutive"])
    assert k["unknown_threshold"] == res["unknown_threshold"]
    cam = _rec("fall_monitor.yaml")
    cc = res["chosen"][res["camera_config"]]
    assert (cam["alert_threshold"], cam["alert_consecutive"]) == (cc["threshold"], cc["consecutive"])


@pytest.mark.slow
@pytest.mark.ros
def test_kinect_monitor_runs_with_pgfa_launch(tmp_path):
    from pgfa_ros.launcher import Launcher

    with Launcher(REPO / "config" / "fall_monitor_kinect.yaml") as launcher:
        rec = launcher.node("recognizer")
        snap = rec.diagnostics_snapshot()
        assert snap["state"] == "active" and snap["labels"] == len(_rec("fall_monitor_kinect.yaml")["labels"])
        assert rec._alerts.rule.combine and set(rec._alerts.rule.classes) == FALLS
        assert rec._recognizer.tau_source == "calibrated"


@pytest.mark.slow
@pytest.mark.ros
def test_camera_monitor_runs_with_pgfa_launch(tmp_path):
    """The camera config on the packaged demo video instead of camera 0: frames reach the pose
    node and the recognizer is active with the fall label set."""
    from pgfa_ros.launcher import Launcher

    data = yaml.safe_load((REPO / "config" / "fall_monitor.yaml").read_text())
    data["video_publisher"]["ros__parameters"].update(video_path=str(REPO / "pgfa_ros" / "assets" / "sports2d_demo.mp4"),
                                                      loop=True)
    p = tmp_path / "fall_monitor.yaml"
    p.write_text(yaml.safe_dump(data))
    with Launcher(p) as launcher:
        rec = launcher.node("recognizer")
        assert rec.diagnostics_snapshot()["state"] == "active"
        assert set(rec._alerts.rule.classes) == FALLS
        launcher.spin(until=lambda: rec.diagnostics_snapshot()["messages"] >= 3, timeout=90)
        assert rec.diagnostics_snapshot()["messages"] >= 3  # skeletons from the pose node reach it
