"""The recognizer's parameter table and checks (pgfa_ros.recognizer_params), without ROS."""
from pathlib import Path

import pytest

from pgfa_ros.recognizer_params import (CONFIGURE_PARAMS, PARAMS, RUNTIME_PARAMS, alert_rule, bank_file_error,
                                        check_changes, window_config)

CURRENT = {name: (spec.default if not spec.string_array else []) for name, spec in PARAMS.items()}
LABELS = ["walking", "sitting down", "falling down"]


def get(name):
    return CURRENT[name]


def test_every_parameter_is_runtime_or_configure_only():
    assert set(RUNTIME_PARAMS) | set(CONFIGURE_PARAMS) == set(PARAMS)
    assert not set(RUNTIME_PARAMS) & set(CONFIGURE_PARAMS)
    # the ones that take effect only at configure / activate
    assert {"checkpoint", "layout", "skeleton_topic", "backend", "device", "num_threads", "text_cache_dir",
            "bank_dir", "load_bank", "bank_capacity", "max_window_frames", "diagnostics_period",
            "fast_parse"} <= set(CONFIGURE_PARAMS)
    assert {"labels", "mode", "top_k", "alert_classes", "bank_file", "window_frames", "seen_margin"} <= set(RUNTIME_PARAMS)


@pytest.mark.parametrize("change", [
    {"mode": "nonsense"}, {"window_frames": 1}, {"window_frames": 301}, {"window_frames": True},
    {"labels": ["a", "a"]}, {"labels": ["a", " "]}, {"alert_threshold": 1.5}, {"body_timeout": -1.0},
    {"window_seconds": float("nan")}, {"top_k": 0}, {"max_markers": -1}, {"bank_file": "../x.npz"},
    {"alert_classes": ["fainting"]}, {"labels": ["walking"]}, {"alert_classes": ["a", "a"]},
    {"seen_margin": -0.1}, {"seen_margin": 2.0}, {"seen_margin": 1},
])
def test_refused_changes_have_a_reason(change):
    cur = dict(CURRENT, alert_classes=["falling down"])
    err = check_changes(change, cur.__getitem__, LABELS)
    assert err and isinstance(err, str)


def test_accepted_changes():
    cur = dict(CURRENT, alert_classes=["falling down"])
    for change in ({"mode": "prototype_bank"}, {"window_frames": 30}, {"alert_threshold": 0.9},
                   {"labels": ["falling down", "lying"]}, {"labels": [], "alert_classes": ["walking"]},
                   {"labels": ["x", "y"], "alert_classes": ["y"]}, {"alert_classes": []}, {"bank_file": "a.npz"},
                   {"seen_margin": 0.0}, {"seen_margin": 0.2}):
        assert check_changes(change, cur.__getitem__, LABELS) is None, change
    # before configure the label set is not known: the alert class check waits for configure
    assert check_changes({"alert_classes": ["anything"]}, cur.__getitem__, None) is None


def test_bank_file_names():
    for bad in ("", " ", "a/b", "/abs.npz", "..", ".", "..x", "a\\b", "x\0y", "a" * 256, 5):
        assert bank_file_error(bad), bad
    for ok in ("bank.npz", "site-A_2.npz", "bank"):
        assert bank_file_error(ok) is None


def test_window_config_and_alert_rule_from_values():
    cur = dict(CURRENT, window_frames=30, alert_classes=["falling down"], alert_threshold=0.7)
    wc = window_config(cur.__getitem__)
    assert wc.window_frames == 30 and wc.max_frames == 300 and wc.stagger
    rule = alert_rule(cur.__getitem__)
    assert rule.classes == ("falling down",) and rule.threshold == 0.7 and rule.consecutive == 3
    assert alert_rule(get).classes == ()  # default: no alert classes, no alerts


def test_resolve_checkpoint_packaged_assets(tmp_path, monkeypatch):
    from pgfa_ros.recognizer_params import ASSETS, DEFAULT_CHECKPOINT, resolve_checkpoint

    assert resolve_checkpoint("") == DEFAULT_CHECKPOINT
    monkeypatch.chdir(tmp_path)
    # a bare asset name works from any directory; a file of that name here wins; paths stay paths
    assert resolve_checkpoint("falls_monitor.safetensors") == str(ASSETS / "falls_monitor.safetensors")
    (tmp_path / "falls_monitor.safetensors").write_bytes(b"x")
    assert resolve_checkpoint("falls_monitor.safetensors") == "falls_monitor.safetensors"
    assert resolve_checkpoint("sub/none.safetensors") == "sub/none.safetensors"
    assert resolve_checkpoint("missing.safetensors") == "missing.safetensors"  # load reports it missing


def test_shipped_label_sets_name_classes_of_their_checkpoints():
    """A label that is not a class of the checkpoint is embedded from its bare name: the shipped
    configs use the checkpoints' own class names (and so their trained text ensembles)."""
    from pgfa_models.checkpoint import read_meta
    from pgfa_models.config import read_yaml
    from pgfa_ros.recognizer_params import resolve_checkpoint

    repo = Path(__file__).resolve().parents[1]
    for name in ("recognizer.yaml", "fall_monitor_kinect.yaml", "fall_monitor.yaml"):
        p = read_yaml(repo / "config" / name, ValueError, "config")["recognizer"]["ros__parameters"]
        meta = read_meta(resolve_checkpoint(p.get("checkpoint", "")))
        assert set(p["labels"]) <= set(meta.labels), (name, sorted(set(p["labels"]) - set(meta.labels)))
        assert set(p.get("alert_classes") or []) <= set(p["labels"])
