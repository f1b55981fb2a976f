"""The recognizer node in this process (no DDS peers, callbacks called directly): bounded
per-body state under body churn, read-only configure parameters, the bank file confined to its
directory, alert classes checked against the label set, the decoder fallback, strict
preprocessing options."""
import math
import time
from types import SimpleNamespace

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.serialization import serialize_message  # noqa: E402

from pgfa_ros.skeleton_msgs import joints_to_marker_array  # noqa: E402
from pgfa_ros.windows import ReadyWindow  # noqa: E402
from recognizer_helpers import UTD_LABELS, inprocess_node  # noqa: E402

J = 20  # kinect_v1_20


def frame(body_ids, t, rng):
    return joints_to_marker_array({b: rng.normal(size=(J, 3)) * 0.2 + [0, 0, 2.5] for b in body_ids}, t, "cam")


class Capture:
    def __init__(self):
        self.data = []

    def publish(self, msg):
        self.data.append(getattr(msg, "data", msg))


def test_per_body_state_only_for_tracked_bodies_and_removed_with_them(tmp_path):
    """More bodies than max_bodies, with ever-growing ids (the Azure Kinect driver): the per-body
    dictionaries hold only the bodies the window manager accepted, and empty when they expire."""
    rng = np.random.default_rng(0)
    with inprocess_node(tmp_path, max_bodies=2, window_frames=200, max_window_frames=300,
                        body_timeout=0.3) as node:
        t, next_id = 100.0, 0
        for rnd in range(5):  # each round: 6 fresh bodies at once, only 2 can be tracked
            ids = list(range(next_id, next_id + 6))
            next_id += 6
            for k in range(5):
                t += 1 / 30
                node._on_skeleton(frame(ids[:2], t, rng))  # parser keeps <= max_bodies per message
                node._on_skeleton(frame(ids[2:4], t, rng))  # refused: too many bodies
                node._on_skeleton(frame(ids[4:], t, rng))
            assert len(node._windows.bodies) <= 2
            assert set(node._frame_ids) <= set(node._windows.bodies)
            assert set(node._transport) <= set(node._windows.bodies)
            time.sleep(0.4)
            node._on_expire_timer()
            assert not node._windows.bodies and not node._frame_ids and not node._transport
            assert not node._body_pubs and len(node._alerts) == 0
        snap = node.diagnostics_snapshot()
        assert snap["rejected_frame_too_many_bodies"] >= 5 * 5 * 2
        assert snap["state_frame_ids"] == snap["state_transport"] == snap["state_body_publishers"] == 0


def test_stamp_clock_forgets_bodies_on_the_stream_time_only(tmp_path):
    """``expire_clock: stamp`` (a recording played slower than real time): a body survives any
    receive-time pause and is forgotten when the stream's own stamps move past body_timeout."""
    rng = np.random.default_rng(2)
    with inprocess_node(tmp_path, expire_clock="stamp", body_timeout=0.3, window_frames=200,
                        max_window_frames=300) as node:
        node._on_skeleton(frame([1, 2], 50.0, rng))
        time.sleep(0.4)  # longer than body_timeout on the receive clock
        node._on_expire_timer()
        assert set(node._windows.bodies) == {1, 2}
        node._on_skeleton(frame([1], 50.2, rng))
        assert set(node._windows.bodies) == {1, 2}
        node._on_skeleton(frame([1], 50.4, rng))  # body 2 last seen 0.4 s of stream time ago
        assert node._windows.bodies == [1] and set(node._frame_ids) == {1}
        assert node.diagnostics_snapshot()["body_lost"] == 1
    with inprocess_node(tmp_path, start=False, expire_clock="wall") as node:
        from rclpy.lifecycle import TransitionCallbackReturn

        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert "expire_clock" in node.configure_error


def test_no_publisher_recreated_for_a_body_that_expired(tmp_path):
    """A window classified after its body expired is published on ~/actions, but no per-body
    publisher or alert run is created again for that body."""
    rng = np.random.default_rng(1)
    with inprocess_node(tmp_path, window_frames=200, max_window_frames=300,
                        alert_classes=[UTD_LABELS[0]], alert_threshold=0.0, alert_consecutive=2) as node:
        node._pub_actions = Capture()
        w = ReadyWindow(42, (rng.normal(size=(30, J, 3)) * 0.2 + [0, 0, 2.5]).astype(np.float32),
                        10.0 + np.arange(30) / 30, ready_at=time.monotonic())
        node._process([w], {42: "cam"})  # body 42 is not tracked (expired / never accepted)
        assert len(node._pub_actions.data) == 1
        assert 42 not in node._body_pubs and len(node._alerts) == 0
        assert not any("/b42/" in name for name, _ in node.get_publisher_names_and_types_by_node(
            node.get_name(), node.get_namespace()))
        # a tracked body does get its publisher (and loses it when it expires)
        node._on_skeleton(frame([7], 20.0, rng))
        w.body_id = 7
        node._process([w], {7: "cam"})
        assert 7 in node._body_pubs


def test_configure_parameters_are_read_only_and_runtime_ones_apply(tmp_path):
    from pgfa_ros.recognizer_node import CONFIGURE_PARAMS, RUNTIME_PARAMS

    assert {"checkpoint", "layout", "backend", "device", "skeleton_topic", "bank_dir"} <= set(CONFIGURE_PARAMS)
    with inprocess_node(tmp_path) as node:
        for name in CONFIGURE_PARAMS:
            current = node.get_parameter(name)
            res = node.set_parameters([Parameter(name, current.type_, current.value)])[0]
            assert not res.successful and "read-only" in res.reason, name
            assert node.describe_parameter(name).read_only
        for name in RUNTIME_PARAMS:
            assert not node.describe_parameter(name).read_only, name
        assert node.set_parameters([Parameter("top_k", value=2)])[0].successful
        assert node._recognizer.top_k == 2
        from pgfa_ros.recognizer_params import PARAMS

        assert node._recognizer.seen_margin == PARAMS["seen_margin"].default  # configured from the parameter
        assert node.set_parameters([Parameter("seen_margin", value=0.0)])[0].successful
        assert node._recognizer.seen_margin == 0.0
        assert not node.set_parameters([Parameter("seen_margin", value=3.0)])[0].successful


def test_bank_file_is_a_name_in_the_directory_fixed_at_configure(tmp_path):
    with inprocess_node(tmp_path, bank_dir=str(tmp_path / "banks")) as node:
        for bad in ("../evil.npz", "/tmp/evil.npz", "sub/evil.npz", "..", ".", "", "a\\b.npz", "..npz"):
            res = node.set_parameters([Parameter("bank_file", value=bad)])[0]
            assert not res.successful and res.reason, bad
        assert node.set_parameters([Parameter("bank_file", value="site_a.npz")])[0].successful
        resp = node._srv_save_bank(None, SimpleNamespace(success=False, message=""))
        assert resp.success, resp.message
        assert (tmp_path / "banks" / "site_a.npz").is_file()
        assert not (tmp_path / "evil.npz").exists()


def test_bad_bank_file_at_start_up_fails_configure(tmp_path):
    with inprocess_node(tmp_path, start=False, bank_file="../x.npz") as node:
        from rclpy.lifecycle import TransitionCallbackReturn

        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert "bank_file" in node.configure_error


def test_alert_class_must_be_in_the_label_set(tmp_path):
    from rclpy.lifecycle import TransitionCallbackReturn

    with inprocess_node(tmp_path, start=False, alert_classes=["falling"]) as node:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert "falling" in node.configure_error and "label set" in node.configure_error
    with inprocess_node(tmp_path, alert_classes=[UTD_LABELS[1]]) as node:
        res = node.set_parameters([Parameter("alert_classes", value=["falling"])])[0]
        assert not res.successful and "falling" in res.reason
        # dropping the alert class from the labels is refused too
        res = node.set_parameters([Parameter("labels", value=["a", "b"])])[0]
        assert not res.successful and UTD_LABELS[1] in res.reason
        # both together, atomically: accepted
        res = node.set_parameters_atomically([Parameter("labels", value=["a", "falling"]),
                                              Parameter("alert_classes", value=["falling"])])
        assert res.successful, res.reason
        assert node._alerts.rule.classes == ("falling",)
        assert node.set_parameters([Parameter("alert_classes", Parameter.Type.STRING_ARRAY, [])])[0].successful


def test_alerts_with_competing_classes_through_the_node(tmp_path):
    """The node applies the alert rule to its recognizer's probabilities over several classes."""
    rng = np.random.default_rng(2)
    fall = UTD_LABELS[4]
    with inprocess_node(tmp_path, window_frames=200, max_window_frames=300, alert_classes=[fall],
                        alert_threshold=0.6, alert_consecutive=2) as node:
        node._pub_alerts, node._pub_actions = Capture(), Capture()
        node._on_skeleton(frame([3], 1.0, rng))  # body 3 tracked
        scores = iter([0.7, 0.5, 0.7, 0.7, 0.9])

        def classify(clips):
            out = []
            for _ in clips:
                f = next(scores)
                p = np.full(len(UTD_LABELS), (1 - f) / (len(UTD_LABELS) - 1))
                p[4] = f
                order = np.argsort(-p)
                out.append(SimpleNamespace(topk=[(UTD_LABELS[i], float(p[i])) for i in order[:3]], probs=p,
                                           label=UTD_LABELS[order[0]], score=float(p[order[0]])))
            return out

        node._recognizer.classify = classify
        for k in range(5):
            w = ReadyWindow(3, (rng.normal(size=(30, J, 3)) * 0.2 + [0, 0, 2.5]).astype(np.float32),
                            1.0 + k + np.arange(30) / 30, ready_at=time.monotonic())
            node._process([w], {3: "cam"})
        import json

        alerts = [json.loads(a) for a in node._pub_alerts.data]
        assert len(alerts) == 1 and alerts[0]["label"] == fall and alerts[0]["consecutive"] == 2
        assert alerts[0]["stamp"] == pytest.approx(1.0 + 3 + 29 / 30)  # the 4th window: 0.7, 0.5 | 0.7, 0.7
        assert alerts[0]["threshold"] == 0.6 and alerts[0]["frame_id"] == "cam"
        assert node.diagnostics_snapshot()["alerts"] == 1


def test_raw_decoder_falls_back_to_rclpy_and_logs_once(tmp_path):
    rng = np.random.default_rng(3)
    with inprocess_node(tmp_path, window_frames=200, max_window_frames=300) as node:
        raw = serialize_message(frame([5], 3.0, rng))
        node._on_skeleton(raw + b"\0" * 16)  # bytes the strict walker refuses, rclpy reads
        assert node._windows.bodies == [5]
        node._on_skeleton(serialize_message(frame([5], 3.1, rng)) + b"\0" * 16)
        snap = node.diagnostics_snapshot()
        assert snap["decoder_fallback"] == 2 and "rejected_input_malformed" not in snap
        assert node._logged_once == {"fallback"}
        node._on_skeleton(raw[: len(raw) // 2])  # neither decoder can read it
        node._on_skeleton(b"\x00\x01\x00\x00garbage")
        assert node.diagnostics_snapshot()["rejected_input_malformed"] == 2
        assert node._logged_once == {"fallback", "malformed"}


def test_unknown_preprocessing_option_fails_configure(tmp_path):
    from rclpy.lifecycle import TransitionCallbackReturn

    with inprocess_node(tmp_path, start=False, preprocess={"target_frames": 50, "bogus_option": 1}) as node:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert "bogus_option" in node.configure_error
    with inprocess_node(tmp_path, preprocess={"target_frames": 40}) as node:
        assert node._pre_cfg.target_frames == 40


def test_lifecycle_cycles_keep_state_bounded(tmp_path):
    rng = np.random.default_rng(4)
    from rclpy.lifecycle import TransitionCallbackReturn

    with inprocess_node(tmp_path, window_frames=200, max_window_frames=300) as node:
        node._on_skeleton(frame([1, 2], 5.0, rng))
        assert len(node._frame_ids) == 2
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert not node._frame_ids and not node._transport and not node._body_pubs
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        # a geometry change that clears the buffers also clears the per-body state
        node._on_skeleton(frame([3], 6.0, rng))
        assert node.set_parameters([Parameter("window_frames", value=100)])[0].successful
        assert not node._windows.bodies and not node._frame_ids
        assert math.isnan(node.diagnostics_snapshot()["latency_p50_ms"])


def test_shipped_configs_use_only_declared_recognizer_parameters():
    """A renamed parameter (e.g. bank_path -> bank_dir/bank_file) must not linger in a config,
    where rcl would ignore it silently; and each config's alert classes are among its labels."""
    from pathlib import Path

    import yaml

    from pgfa_ros.alerts import missing_alert_classes
    from pgfa_ros.recognizer_params import PARAMS as _PARAMS

    root = Path(__file__).resolve().parents[1] / "config"
    seen = 0
    for path in sorted(root.glob("*.yaml")):
        params = (yaml.safe_load(path.read_text()) or {}).get("recognizer", {}).get("ros__parameters")
        if params is None:
            continue
        seen += 1
        assert set(params) <= set(_PARAMS), (path.name, sorted(set(params) - set(_PARAMS)))
        if params.get("labels"):
            assert not missing_alert_classes(params.get("alert_classes", []), params["labels"]), path.name
    assert seen >= 3
