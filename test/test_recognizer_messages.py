"""The recognizer's pure parts: message payloads (pgfa_ros.action_messages), counters and
/diagnostics values (pgfa_ros.diagnostics), and the window -> prediction step (pgfa_ros.live_pipeline)."""
import collections
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from pgfa_models.layouts import get_layout
from pgfa_models.preprocess import PreprocessConfig
from pgfa_ros.action_messages import action_message, alert_message, text_marker_specs, to_json
from pgfa_ros.alerts import Alert
from pgfa_ros.diagnostics import RecognizerStats, aggregate_counts, status_summary
from pgfa_ros.live_pipeline import classify_windows, preprocess_config_from_meta
from pgfa_ros.windows import ReadyWindow, WindowConfig, WindowManager


def window(body=3, frames=30, t0=10.0, joints=20, seed=0):
    rng = np.random.default_rng(seed)
    j = (rng.normal(size=(frames, joints, 3)) * 0.1 + np.array([0.0, 0.0, 2.5])).astype(np.float32)
    return ReadyWindow(body, j, t0 + np.arange(frames) / 30.0, ready_at=5.0)


def pred(label="wave", score=0.8):
    return SimpleNamespace(topk=[(label, score), ("clap", 1 - score)], label=label, score=score)


def test_action_message_fields_and_json():
    w = window()
    msg = action_message(w, pred(score=0.81234567), mode="text", latency_ms=12.34567, frame_id="cam",
                         timing={"transport": 1.23456, "wait": float("nan"), "preprocess": 2.0,
                                 "inference": 3.5, "batch": 2})
    assert list(msg) == ["stamp", "body_id", "label", "topk", "mode", "window", "latency_ms", "frame_id", "timing_ms"]
    assert msg["label"] == "wave"
    assert msg["stamp"] == w.end and msg["body_id"] == 3 and msg["frame_id"] == "cam"
    assert msg["topk"][0] == {"label": "wave", "score": 0.812346}
    assert msg["window"] == {"start": w.start, "end": w.end, "frames": 30}
    assert msg["latency_ms"] == 12.346
    assert msg["timing_ms"] == {"transport": 1.235, "wait": None, "preprocess": 2.0, "inference": 3.5, "batch": 2}
    text = to_json(msg)
    assert "NaN" not in text and json.loads(text) == msg


def test_alert_message():
    a = Alert(7, "falling down", 0.912345678, 3, 0.6, 12.5)
    assert alert_message(a, "depth_camera_link") == {
        "stamp": 12.5, "body_id": 7, "label": "falling down", "score": 0.912346, "consecutive": 3,
        "threshold": 0.6, "frame_id": "depth_camera_link"}


def test_text_markers_above_the_head_with_fallbacks():
    layout = get_layout("kinect_v1_20")
    w = window()
    specs = text_marker_specs([w], [pred()], layout, {3: "cam"})
    assert specs[0].body_id == 3 and specs[0].frame_id == "cam" and specs[0].text == "b3: wave (0.80)"
    head = int(np.argmax(layout.weights[3]))
    up = layout.axes.T @ np.array([0.0, 1.0, 0.0])
    np.testing.assert_allclose(specs[0].position, w.joints[-1, head] + 0.3 * up, rtol=1e-6)
    w.joints[-1, head] = np.nan  # head missing: mean of the finite joints
    finite = w.joints[-1][np.isfinite(w.joints[-1]).all(axis=1)]
    np.testing.assert_allclose(text_marker_specs([w], [pred()], layout, {})[0].position,
                               finite.mean(axis=0) + 0.3 * up, rtol=1e-5)
    w.joints[-1] = np.nan  # nothing finite: the origin, lifted
    pos = text_marker_specs([w], [pred()], layout, {})[0]
    np.testing.assert_allclose(pos.position, 0.3 * up) and pos.frame_id == ""


def test_counts_are_named_by_family():
    node = {"input_nan_joint": 3, "input_malformed": 1, "preprocess_too_few_frames": 2, "alerts": 1}
    win = {"stamp_backwards": 4, "too_many_bodies": 5, "body_lost": 6, "window_dropped": 9, "gap_reset": 1}
    assert aggregate_counts(node, win) == {
        "alerts": 1, "body_lost": 6, "gap_reset": 1, "rejected_frame_stamp_backwards": 4,
        "rejected_frame_too_many_bodies": 5, "rejected_input_malformed": 1, "rejected_input_nan_joint": 3,
        "rejected_window_too_few_frames": 2}


def test_stats_snapshot_rates_percentiles_and_window_counters():
    t = [100.0]
    st = RecognizerStats(clock=lambda: t[0])
    wm = WindowManager(20, WindowConfig(window_frames=4, stride_frames=2, max_bodies=1))
    for k in range(5):
        wm.add(0, k * 0.1, np.zeros((20, 3)), 0.0)
    wm.add(1, 0.0, np.zeros((20, 3)), 0.0)  # too many bodies
    for k in range(10):
        st.record_message({"nan_joint": 1} if k % 2 else {})
    for ms in (10.0, 20.0, 30.0):
        st.record_window(ms)
    st.record_inference(4.0)
    st.count("preprocess_too_few_frames")
    t[0] += 2.0
    v = st.snapshot(wm, {"state": "active"})
    assert next(iter(v)) == "state"
    assert v["input_rate_hz"] == pytest.approx(5.0) and v["window_rate_hz"] == pytest.approx(1.5)
    assert v["latency_p50_ms"] == pytest.approx(20.0) and v["inference_p50_ms"] == 4.0
    assert v["messages"] == 10 and v["windows_classified"] == 3
    assert v["rejected_input_nan_joint"] == 5 and v["rejected_window_too_few_frames"] == 1
    assert v["rejected_frame_too_many_bodies"] == 1 and v["bodies"] == 1
    assert v["pending_windows"] == 1 and v["buffered_frames"] == 4
    t[0] += 1.0
    v2 = st.snapshot(None)  # rates since the previous snapshot; no window manager yet
    assert v2["input_rate_hz"] == 0.0 and v2["bodies"] == 0 and v2["windows_dropped"] == 0
    assert math.isnan(RecognizerStats().snapshot()["latency_p50_ms"])


def test_status_summary():
    assert status_summary({"windows_dropped": 5, "bodies": 2}, 3) == ("warn", "2 windows dropped (inference too slow)")
    assert status_summary({"windows_dropped": 5, "bodies": 0}, 5) == ("ok", "no bodies tracked")
    assert status_summary({"windows_dropped": 0, "bodies": 2, "window_rate_hz": 6.0}, 0) == ("ok", "2 bodies, 6.0 windows/s")


class _Rec:
    def __init__(self, switch_to=None):
        self.calls = []
        self.labels = SimpleNamespace(names=["wave", "clap"])
        self.switch_to = switch_to

    def classify(self, clips):
        self.calls.append(clips.shape)
        if self.switch_to:  # the label worker switches the set while this batch is scored
            self.labels.names = list(self.switch_to)
        return [pred() for _ in clips]


def test_classify_windows_one_batch_and_rejections_counted():
    layout = get_layout("kinect_v1_20")
    good = [window(body=b, seed=b) for b in range(3)]
    bad = window(body=9)
    bad.joints[:] = np.nan
    rec = _Rec()
    res = classify_windows(rec, [good[0], bad, good[1], good[2]], layout, PreprocessConfig())
    assert rec.calls == [(3, 3, 50, 25, 1)]  # ONE call for the kept windows
    assert [w.body_id for w in res.windows] == [0, 1, 2] and len(res.predictions) == 3
    assert res.rejected == collections.Counter({"non_finite_input": 1})
    assert res.preprocess_ms >= 0 and res.inference_ms >= 0 and res.labels == ["wave", "clap"]
    switched = classify_windows(_Rec(switch_to=["wave", "fall"]), good, layout, PreprocessConfig())
    assert switched.labels is None and len(switched.predictions) == 3
    none = classify_windows(rec, [bad], layout, PreprocessConfig())
    assert none.windows == [] and none.predictions == [] and len(rec.calls) == 1


def test_preprocess_config_from_meta_rejects_unknown_options():
    assert preprocess_config_from_meta(SimpleNamespace(preprocess={})) == PreprocessConfig()
    cfg = preprocess_config_from_meta(SimpleNamespace(preprocess={"target_frames": 40, "view_normalize": True}))
    assert cfg.target_frames == 40 and cfg.view_normalize
    with pytest.raises(ValueError, match="bogus"):
        preprocess_config_from_meta(SimpleNamespace(preprocess={"target_frames": 50, "bogus": 1}))


def test_pure_modules_do_not_import_rclpy():
    """The replay runs these without ROS: importing them must not pull rclpy in."""
    import subprocess
    import sys

    code = ("import sys; import pgfa_ros.alerts, pgfa_ros.action_messages, pgfa_ros.diagnostics, "
            "pgfa_ros.live_pipeline, pgfa_ros.recognizer_params, pgfa_ros.windows; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('rclpy', 'rosidl_runtime_py')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_open_set_labels_unknown_below_threshold_and_keeps_scores():
    import numpy as np

    from pgfa_models.recognition import Prediction
    from pgfa_ros.live_pipeline import UNKNOWN, open_set

    p = Prediction([("fall", 0.45), ("walk", 0.40)], [0.3, 0.29], np.array([0.45, 0.40, 0.15]))
    assert open_set(p, 0.0).label == "fall"          # 0: never unknown
    assert open_set(p, 0.45).label == "fall"         # at the threshold: known
    u = open_set(p, 0.5)
    assert u.label == UNKNOWN and u.score == 0.45 and u.topk == p.topk
    assert np.array_equal(u.probs, p.probs)         # the alert rule still sees the real probabilities
    msg = action_message(window(), u, mode="text", latency_ms=0.0)
    assert msg["label"] == UNKNOWN and msg["topk"][0] == {"label": "fall", "score": 0.45}
    nan = Prediction([("fall", float("nan"))], [0.0], np.array([float("nan")]))
    assert open_set(nan, 0.1).label == UNKNOWN
