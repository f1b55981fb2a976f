"""``recognizer``: live zero-shot skeleton action recognition as a ROS 2 lifecycle node (SPEC §5).

Lifecycle: *configure* loads the checkpoint, the text features of the label set and the windows;
*activate* creates the subscription, publishers, services and timers; *deactivate* removes them;
*cleanup* frees the model. Parameter ``autostart`` (or ``--autostart`` on the command line, or
:func:`autostart` from Python) brings the node to *active* without a lifecycle manager.

Data flow: skeleton ``MarkerArray`` (sensor-data QoS, depth 5) -> parsed per body
(:mod:`pgfa_ros.skeleton_msgs`) -> per-body windows (:mod:`pgfa_ros.windows`, bounded) -> an
inference thread takes all ready windows (at most one per body; a window not collected in time
is replaced and counted as dropped), preprocesses each with the shared
:func:`pgfa_models.preprocess.preprocess_clip`, classifies them in ONE batched call
(:class:`pgfa_models.recognition.Recognizer`) and publishes:

* ``~/actions`` std_msgs/String JSON ``{stamp, body_id, topk: [{label, score}], mode,
  window: {start, end, frames}, latency_ms, frame_id}``
* ``/humans/bodies/b<id>/action`` std_msgs/String, the top-1 label
* ``~/markers`` visualization_msgs/MarkerArray, a text marker above each body's head
* ``~/alerts`` std_msgs/String JSON after ``alert_consecutive`` windows in a row in which an
  alert class scored at least ``alert_threshold``
* ``/diagnostics`` diagnostic_msgs/DiagnosticArray every ``diagnostics_period`` seconds: rates,
  latency p50/p99, inference p50, windows classified / dropped, bodies, buffered frames, and
  counters ``rejected_input_<reason>`` (message parsing, see :mod:`pgfa_ros.skeleton_msgs`),
  ``rejected_frame_<reason>`` (bad stamps, too many bodies, see :mod:`pgfa_ros.windows`),
  ``rejected_window_<reason>`` (preprocessing, see ``pgfa_models.preprocess.REASONS``) and events
  (``body_lost``, ``partial_window_discarded``, ``gap_reset``, ``staggered``, ``alerts``, ...)

Runtime parameters (``ros2 param set``): labels, descriptions, mode, top_k, alert_*, window
geometry, body_timeout. New label texts are embedded on a worker thread; classification goes on
with the previous label set until the new one is ready. Services ``~/reset_bank`` and
``~/save_bank`` (std_srvs/Trigger) reset and save the prototype bank (``bank_path``).
"""
from __future__ import annotations

import collections
import json
import math
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from std_msgs.msg import String
from std_srvs.srv import Trigger
from visualization_msgs.msg import Marker, MarkerArray

from pgfa_models.layouts import LAYOUTS, get_layout
from pgfa_models.preprocess import PreprocessConfig, preprocess_clip
from pgfa_models.recognition import MODES, load_recognizer
from pgfa_ros.skeleton_msgs import marker_array_bytes_to_bodies, marker_array_to_bodies
from pgfa_ros.windows import WindowConfig, WindowManager

__all__ = ["RecognizerNode", "autostart", "main", "DEFAULT_CHECKPOINT"]

DEFAULT_CHECKPOINT = str(Path(__file__).resolve().parent / "assets" / "utd_mhad_default.safetensors")

# name -> (default, description, runtime-changeable)
_PARAMS: dict[str, tuple[object, str, bool]] = {
    "checkpoint": (DEFAULT_CHECKPOINT, "PGFA checkpoint (.safetensors)", False),
    "layout": ("azure_kinect_32", f"source skeleton layout: {sorted(LAYOUTS)}", False),
    "skeleton_topic": ("/body_tracking_data", "skeleton MarkerArray topic", False),
    "labels": (Parameter.Type.STRING_ARRAY, "class names (empty: the checkpoint's labels)", True),
    "descriptions": (Parameter.Type.STRING_ARRAY, "one description per label, or none", True),
    "mode": ("text", f"classification mode: {MODES}", True),
    "window_frames": (45, "window length in frames (used when window_seconds is 0)", True),
    "window_seconds": (0.0, "window length in seconds (> 0 overrides window_frames)", True),
    "stride_frames": (10, "frames between two windows of one body", True),
    "body_timeout": (1.0, "seconds without data after which a body is forgotten", True),
    "max_bodies": (8, "most bodies tracked at once", True),
    "stagger_windows": (True, "offset the window phase of bodies that appear together (lower latency)", True),
    "max_window_frames": (300, "buffer bound per body (frames), for seconds windows", False),
    "top_k": (3, "labels reported per window", True),
    "alert_classes": (["falling"], "labels that raise alerts", True),
    "alert_threshold": (0.5, "score an alert class must reach", True),
    "alert_consecutive": (3, "consecutive windows above threshold before an alert", True),
    "text_cache_dir": ("", "text model / embedding cache root ('' = $PGFA_CACHE_DIR or ~/.cache/pgfa_ros)", False),
    "bank_path": ("", "prototype bank file for ~/save_bank ('' = <cache root>/prototype_bank.npz)", True),
    "load_bank": (False, "load bank_path at configure when it exists", False),
    "bank_capacity": (64, "prototype bank memory per class", False),
    "bank_min_support": (3, "members before a class prototype replaces its text feature", False),
    "bank_max_age": (0, "forget bank members after this many later stored-candidate windows (0 = never)", False),
    "backend": ("auto", "inference backend: eager | auto | onnxruntime | compiled | tensorrt (falls back to eager)", False),
    "device": ("cpu", "inference device: cpu | cuda", False),
    "num_threads": (1, "intra-op threads for inference (0 = library default)", False),
    "max_markers": (0, "markers per message above which it is ignored as a flood (0 = max_bodies*joints)", True),
    "diagnostics_period": (1.0, "seconds between /diagnostics messages", False),
    "publish_markers": (True, "publish RViz text markers on ~/markers", True),
    "fast_parse": (True, "decode skeleton messages straight from CDR bytes (raw subscription)", False),
    "autostart": (False, "configure and activate at start-up without a lifecycle manager", False),
}
_FRAME_REJECTIONS = ("stamp_backwards", "stamp_duplicate", "stamp_invalid", "bad_shape", "too_many_bodies")
_WINDOW_PARAMS = ("window_frames", "window_seconds", "stride_frames", "body_timeout", "max_bodies",
                  "stagger_windows")


def _r(x: float) -> float | None:
    return None if not math.isfinite(x) else round(float(x), 3)


def _percentile(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


class RecognizerNode(LifecycleNode):
    """Lifecycle node ``recognizer`` (see module docstring)."""

    def __init__(self, node_name: str = "recognizer", **kwargs):
        super().__init__(node_name, **kwargs)
        for name, (default, desc, dynamic) in _PARAMS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=desc, read_only=False,
                                                                      additional_constraints="" if dynamic else
                                                                      "takes effect at the next configure"))
        self.add_on_set_parameters_callback(self._validate_params)
        self.add_post_set_parameters_callback(self._apply_params)
        self._lock = threading.RLock()  # windows, counters, publishers
        self._wake = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._recognizer = None
        self._meta = None
        self._windows: WindowManager | None = None
        self._layout = None
        self._pre_cfg = PreprocessConfig()
        self._num_person = 1
        self._infer_thread: threading.Thread | None = None
        self._label_thread: threading.Thread | None = None
        self._label_request = None
        self._label_event = threading.Event()
        self._active = False
        self._entities: list = []
        self._body_pubs: dict[int, object] = {}
        self._frame_ids: dict[int, str] = {}
        self._transport: dict[int, tuple[float, float]] = {}  # body -> (last stamp, receive time)
        self._alert_runs: dict[tuple[int, str], int] = {}
        self._reset_stats()

    # ------------------------------------------------------------------ parameters
    def _p(self, name: str):
        try:
            value = self.get_parameter(name).value
        except Exception:  # uninitialised (string arrays declared without a value)
            return []
        return [] if value is None else value

    def _validate_params(self, params: list[Parameter]) -> SetParametersResult:
        for p in params:
            v = p.value
            try:
                if p.name == "mode" and v not in MODES:
                    raise ValueError(f"mode must be one of {MODES}")
                if p.name == "layout" and v not in LAYOUTS:
                    raise ValueError(f"layout must be one of {sorted(LAYOUTS)}")
                if p.name == "labels" and v is not None:
                    names = [str(x).strip() for x in v]
                    if any(not n for n in names) or len(set(names)) != len(names):
                        raise ValueError("labels must be non-empty and unique")
                if p.name in ("window_frames", "stride_frames", "max_bodies", "top_k", "alert_consecutive") and (
                    not isinstance(v, int) or v < 1
                ):
                    raise ValueError(f"{p.name} must be a positive integer")
                if p.name == "window_frames" and v < 2:
                    raise ValueError("window_frames must be >= 2")
                if p.name == "window_frames" and v > int(self._p("max_window_frames")):
                    raise ValueError("window_frames exceeds max_window_frames")
                if p.name in ("window_seconds",) and (not isinstance(v, float) or v < 0 or not math.isfinite(v)):
                    raise ValueError("window_seconds must be a float >= 0")
                if p.name in ("body_timeout", "diagnostics_period") and (not isinstance(v, float) or not v > 0):
                    raise ValueError(f"{p.name} must be a float > 0")
                if p.name == "alert_threshold" and (not isinstance(v, float) or not 0 <= v <= 1):
                    raise ValueError("alert_threshold must be in [0, 1]")
                if p.name == "max_markers" and (not isinstance(v, int) or v < 0):
                    raise ValueError("max_markers must be >= 0")
            except ValueError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _apply_params(self, params: list[Parameter]) -> None:
        names = {p.name for p in params}
        if self._recognizer is None:
            return  # not configured: configure reads the parameters
        if names & {"labels", "descriptions"}:
            self._request_labels()
        if "mode" in names:
            self._recognizer.set_mode(self._p("mode"))
        if "top_k" in names:
            self._recognizer.top_k = int(self._p("top_k"))
        if names & set(_WINDOW_PARAMS):
            try:
                with self._lock:
                    self._windows.reconfigure(self._window_config())
                    self._alert_runs.clear()
            except ValueError as exc:
                self.get_logger().error(f"window geometry not applied: {exc}")
        if "alert_classes" in names or "alert_threshold" in names:
            with self._lock:
                self._alert_runs.clear()

    def _window_config(self) -> WindowConfig:
        return WindowConfig(
            window_frames=int(self._p("window_frames")),
            window_seconds=float(self._p("window_seconds")),
            stride_frames=int(self._p("stride_frames")),
            body_timeout=float(self._p("body_timeout")),
            max_bodies=int(self._p("max_bodies")),
            max_frames=int(self._p("max_window_frames")),
            stagger=bool(self._p("stagger_windows")),
        )

    def _label_args(self):
        labels = list(self._p("labels")) or list(self._meta.labels)
        desc = list(self._p("descriptions"))
        if desc and len(desc) != len(labels):
            self.get_logger().warning(
                f"{len(desc)} descriptions for {len(labels)} labels: using label names only "
                "(set both with one atomic parameter call to avoid this)")
            desc = []
        return labels, desc

    def _request_labels(self) -> None:
        self._label_request = self._label_args()
        self._label_event.set()

    def _label_worker(self) -> None:
        while not self._stop.is_set():
            if not self._label_event.wait(0.2):
                continue
            self._label_event.clear()
            req, self._label_request = self._label_request, None
            rec = self._recognizer
            if req is None or rec is None:
                continue
            t0 = time.monotonic()
            try:
                changed = rec.set_labels(*req)
            except Exception as exc:  # bad texts or text model failure: keep the old set
                self.get_logger().error(f"label set not changed: {exc}")
                with self._lock:
                    self._counts["label_update_failed"] += 1
                continue
            if changed:
                with self._lock:
                    self._alert_runs.clear()
                self.get_logger().info(
                    f"label set now {len(rec.labels)} classes ({rec.labels.embedded_last} embedded in "
                    f"{time.monotonic() - t0:.2f} s): {rec.labels.names}")

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._layout = get_layout(self._p("layout"))
            cache = self._p("text_cache_dir") or None
            labels = list(self._p("labels")) or None
            desc = list(self._p("descriptions"))
            if labels and desc and len(desc) != len(labels):
                raise ValueError(f"{len(desc)} descriptions for {len(labels)} labels")
            t0 = time.monotonic()
            rec, meta = load_recognizer(
                self._p("checkpoint") or DEFAULT_CHECKPOINT, labels=labels, descriptions=desc or None, mode=self._p("mode"),
                top_k=int(self._p("top_k")), text_cache_dir=cache, num_threads=int(self._p("num_threads")) or None,
                bank_options=dict(capacity=int(self._p("bank_capacity")),
                                  min_support=int(self._p("bank_min_support")),
                                  max_age=int(self._p("bank_max_age")) or None),
                backend=self._p("backend"), device=self._p("device"))
            if rec.backend_error:
                self.get_logger().warning(f"backend {self._p('backend')!r} unavailable ({rec.backend_error}); "
                                          "using eager PyTorch")
            self._meta = meta
            self._num_person = int(meta.num_person or 1)
            pre = dict(meta.preprocess or {})
            known = set(PreprocessConfig.__dataclass_fields__)
            self._pre_cfg = PreprocessConfig(**{k: v for k, v in pre.items() if k in known})
            bank_path = self._bank_path()
            if self._p("load_bank") and bank_path.is_file():
                rec.load_bank(bank_path)
                self.get_logger().info(f"prototype bank loaded from {bank_path}")
            with self._lock:
                self._windows = WindowManager(self._layout.num_joints, self._window_config())
                self._recognizer = rec
                self._reset_stats()
            self._stop.clear()
            self._infer_thread = threading.Thread(target=self._infer_loop, name="pgfa-infer", daemon=True)
            self._label_thread = threading.Thread(target=self._label_worker, name="pgfa-labels", daemon=True)
            self._infer_thread.start()
            self._label_thread.start()
            self.get_logger().info(
                f"configured in {time.monotonic() - t0:.1f} s: {self._p('checkpoint') or DEFAULT_CHECKPOINT} ({meta.text_model}), "
                f"layout {self._layout.name}, {len(rec.labels)} labels, mode {rec.mode}, backend {rec.backend}")
            return TransitionCallbackReturn.SUCCESS
        except Exception as exc:
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            self._recognizer = None
            return TransitionCallbackReturn.FAILURE

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._pub_actions = self.create_publisher(String, "~/actions", 10)
        self._pub_alerts = self.create_publisher(String, "~/alerts", 10)
        self._pub_markers = self.create_publisher(MarkerArray, "~/markers", 5)
        self._pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._fast_parse = bool(self._p("fast_parse"))
        self._sub = self.create_subscription(MarkerArray, self._p("skeleton_topic"), self._on_skeleton,
                                             qos_profile_sensor_data, raw=self._fast_parse)
        self._srv_reset = self.create_service(Trigger, "~/reset_bank", self._srv_reset_bank)
        self._srv_save = self.create_service(Trigger, "~/save_bank", self._srv_save_bank)
        self._timer_expire = self.create_timer(0.1, self._on_expire_timer)
        self._timer_diag = self.create_timer(float(self._p("diagnostics_period")), self._publish_diagnostics)
        self._entities = [self._pub_actions, self._pub_alerts, self._pub_markers, self._pub_diag, self._sub,
                          self._srv_reset, self._srv_save, self._timer_expire, self._timer_diag]
        with self._lock:
            self._active = True
            self._stats_t0 = time.monotonic()
        self.get_logger().info(f"active: listening on {self._sub.topic_name}")
        return super().on_activate(state)

    def _destroy_entities(self) -> None:
        with self._lock:
            self._active = False
            pubs = list(self._body_pubs.values())
            self._body_pubs.clear()
            if self._windows is not None:
                self._windows.clear()
        for e in self._entities + pubs:
            try:
                if hasattr(e, "timer_period_ns"):
                    self.destroy_timer(e)
                elif hasattr(e, "srv_type"):
                    self.destroy_service(e)
                elif hasattr(e, "msg_type") and hasattr(e, "callback"):
                    self.destroy_subscription(e)
                else:
                    self.destroy_publisher(e)
            except Exception:
                pass
        self._entities = []

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy_entities()
        return super().on_deactivate(state)

    def _release(self) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for t in (self._infer_thread, self._label_thread):
            if t is not None and t is not threading.current_thread():
                t.join(timeout=5.0)
        self._infer_thread = self._label_thread = None
        self._recognizer = None

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy_entities()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy_entities()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy_entities()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    # ------------------------------------------------------------------ input
    def _reset_stats(self) -> None:
        self._counts = collections.Counter()  # rejected input / dropped windows by reason
        self._latencies = collections.deque(maxlen=1000)  # ms, stamp of last frame -> publish
        self._infer_ms = collections.deque(maxlen=1000)
        self._classified = 0
        self._classified_at_last_diag = 0
        self._msgs = 0
        self._msgs_at_last_diag = 0
        self._stats_t0 = time.monotonic()
        self._last_diag_t = time.monotonic()

    def _on_skeleton(self, msg) -> None:
        now = time.monotonic()
        recv = self.get_clock().now().nanoseconds * 1e-9
        layout = self._layout
        max_bodies = int(self._p("max_bodies"))
        parse = marker_array_bytes_to_bodies if isinstance(msg, (bytes, bytearray)) else marker_array_to_bodies
        parsed = parse(msg, layout.num_joints, max_bodies=max_bodies,
                       max_markers=int(self._p("max_markers")) or None)
        with self._lock:
            self._msgs += 1
            for reason, n in parsed.dropped.items():
                self._counts[f"input_{reason}"] += n
            if not self._active or self._windows is None:
                return
            for body_id, joints in parsed.bodies.items():
                self._windows.add(body_id, parsed.stamps[body_id], joints, now)
                self._frame_ids[body_id] = parsed.frame_id
                self._transport[body_id] = (parsed.stamps[body_id], recv)
            if self._windows.num_pending:
                self._wake.notify()

    def _on_expire_timer(self) -> None:
        with self._lock:
            if self._windows is None:
                return
            gone = self._windows.expire(time.monotonic())
            pubs = []
            for bid in gone:
                self._frame_ids.pop(bid, None)
                for key in [k for k in self._alert_runs if k[0] == bid]:
                    del self._alert_runs[key]
                self._transport.pop(bid, None)
                pub = self._body_pubs.pop(bid, None)
                if pub is not None:
                    pubs.append(pub)
        for pub in pubs:
            try:
                self.destroy_publisher(pub)
            except Exception:
                pass

    # ------------------------------------------------------------------ inference
    def _infer_loop(self) -> None:
        while not self._stop.is_set():
            with self._wake:
                while not self._stop.is_set() and (self._windows is None or not self._windows.num_pending):
                    self._wake.wait(0.1)
                if self._stop.is_set():
                    return
                windows = self._windows.pop_ready()
                frame_ids = dict(self._frame_ids)
                for w in windows:
                    st, rv = self._transport.get(w.body_id, (None, None))
                    w.transport_ms = (rv - st) * 1e3 if st == w.end else float("nan")
            try:
                self._process(windows, frame_ids)
            except Exception as exc:  # never let one bad batch kill the thread
                with self._lock:
                    self._counts["inference_error"] += 1
                self.get_logger().error(f"inference failed: {type(exc).__name__}: {exc}",
                                        throttle_duration_sec=5.0)

    def _process(self, windows, frame_ids) -> None:
        rec = self._recognizer
        if rec is None or not windows:
            return
        clips, kept = [], []
        t_pre = time.monotonic()
        for w in windows:
            res = preprocess_clip([w.joints], self._layout, self._pre_cfg, num_person=self._num_person,
                                  timestamps=w.stamps)
            if res.clip is None:
                with self._lock:
                    self._counts[f"preprocess_{res.reason}"] += 1
                continue
            clips.append(res.clip)
            kept.append(w)
        if not clips:
            return
        t0 = time.monotonic()
        preds = rec.classify(np.stack(clips))
        infer_ms = (time.monotonic() - t0) * 1e3
        pre_ms = (t0 - t_pre) * 1e3
        mode = rec.mode
        now = self.get_clock().now().nanoseconds * 1e-9
        alerts = []
        alert_classes = set(self._p("alert_classes"))
        thr = float(self._p("alert_threshold"))
        need = int(self._p("alert_consecutive"))
        probs_names = list(rec.labels.names)
        with self._lock:
            if not self._active:
                return
            for w, p in zip(kept, preds):
                latency_ms = (now - w.end) * 1e3
                self._latencies.append(latency_ms)
                self._classified += 1
                body_msg = {
                    "stamp": w.end, "body_id": int(w.body_id),
                    "topk": [{"label": lbl, "score": round(s, 6)} for lbl, s in p.topk],
                    "mode": mode,
                    "window": {"start": w.start, "end": w.end, "frames": int(len(w.stamps))},
                    "latency_ms": round(latency_ms, 3), "frame_id": frame_ids.get(w.body_id, ""),
                    "timing_ms": {"transport": _r(getattr(w, "transport_ms", float("nan"))),
                                  "wait": _r((t_pre - w.ready_at) * 1e3), "preprocess": _r(pre_ms),
                                  "inference": _r(infer_ms), "batch": len(kept)},
                }
                self._pub_actions.publish(String(data=json.dumps(body_msg)))
                self._body_pub(w.body_id).publish(String(data=p.label))
                if len(p.probs) == len(probs_names):
                    for cls in alert_classes:
                        if cls not in probs_names:
                            continue
                        score = float(p.probs[probs_names.index(cls)])
                        key = (w.body_id, cls)
                        run = self._alert_runs.get(key, 0) + 1 if score >= thr else 0
                        self._alert_runs[key] = run
                        if run == need:
                            alerts.append({"stamp": w.end, "body_id": int(w.body_id), "label": cls,
                                           "score": round(score, 6), "consecutive": run,
                                           "threshold": thr, "frame_id": frame_ids.get(w.body_id, "")})
            self._infer_ms.append(infer_ms)
            for a in alerts:
                self._counts["alerts"] += 1
                self._pub_alerts.publish(String(data=json.dumps(a)))
            if self._p("publish_markers"):
                self._pub_markers.publish(self._text_markers(kept, preds, frame_ids))
        for a in alerts:
            self.get_logger().warning(f"ALERT body {a['body_id']}: {a['label']} ({a['score']:.2f})")

    def _body_pub(self, body_id: int):
        pub = self._body_pubs.get(body_id)
        if pub is None:
            pub = self.create_publisher(String, f"/humans/bodies/b{int(body_id)}/action", 10)
            self._body_pubs[body_id] = pub
        return pub

    def _text_markers(self, windows, preds, frame_ids) -> MarkerArray:
        layout = self._layout
        head = int(np.argmax(layout.weights[3]))  # source joint that carries NTU "head"
        up = layout.axes.T @ np.array([0.0, 1.0, 0.0])  # NTU up in source axes
        out = MarkerArray()
        for w, p in zip(windows, preds):
            pos = np.asarray(w.joints[-1, head], dtype=np.float64)
            if not np.isfinite(pos).all():
                finite = w.joints[-1][np.isfinite(w.joints[-1]).all(axis=1)]
                pos = finite.mean(axis=0) if len(finite) else np.zeros(3)
            pos = pos + 0.3 * up
            m = Marker()
            m.header.frame_id = frame_ids.get(w.body_id, "")
            m.header.stamp = self.get_clock().now().to_msg()
            m.ns = "pgfa_actions"
            m.id = int(w.body_id)
            m.type = Marker.TEXT_VIEW_FACING
            m.action = Marker.ADD
            m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(v) for v in pos)
            m.pose.orientation.w = 1.0
            m.scale.z = 0.15
            m.color.r, m.color.g, m.color.b, m.color.a = 1.0, 1.0, 1.0, 1.0
            m.text = f"b{w.body_id}: {p.label} ({p.score:.2f})"
            m.lifetime.sec = 1
            out.markers.append(m)
        return out

    # ------------------------------------------------------------------ services
    def _bank_path(self) -> Path:
        p = self._p("bank_path")
        if p:
            return Path(p).expanduser()
        root = self._p("text_cache_dir") or os.environ.get("PGFA_CACHE_DIR") or "~/.cache/pgfa_ros"
        return Path(root).expanduser() / "prototype_bank.npz"

    def _srv_reset_bank(self, request, response):
        rec = self._recognizer
        if rec is None:
            response.success, response.message = False, "not configured"
            return response
        rec.reset_bank()
        response.success, response.message = True, f"prototype bank reset ({len(rec.labels)} classes)"
        return response

    def _srv_save_bank(self, request, response):
        rec = self._recognizer
        if rec is None:
            response.success, response.message = False, "not configured"
            return response
        try:
            path = rec.save_bank(self._bank_path())
            response.success = True
            response.message = f"saved {int(rec.bank.counts().sum())} members to {path}"
        except Exception as exc:
            response.success, response.message = False, f"{type(exc).__name__}: {exc}"
        return response

    # ------------------------------------------------------------------ diagnostics
    def diagnostics_snapshot(self) -> dict:
        """The values published on /diagnostics, as a dict (also handy in tests)."""
        with self._lock:
            t = time.monotonic()
            dt = max(t - self._last_diag_t, 1e-6)
            lat = list(self._latencies)[-300:]
            values = {
                "state": "active" if self._active else "inactive",
                "mode": self._recognizer.mode if self._recognizer else "",
                "backend": self._recognizer.backend if self._recognizer else "",
                "labels": len(self._recognizer.labels) if self._recognizer else 0,
                "bodies": len(self._windows.bodies) if self._windows else 0,
                "window_rate_hz": (self._classified - self._classified_at_last_diag) / dt,
                "input_rate_hz": (self._msgs - self._msgs_at_last_diag) / dt,
                "latency_p50_ms": _percentile(lat, 50),
                "latency_p99_ms": _percentile(lat, 99),
                "inference_p50_ms": _percentile(list(self._infer_ms)[-300:], 50),
                "windows_classified": self._classified,
                "windows_dropped": int(self._windows.counts["window_dropped"]) if self._windows else 0,
                "buffered_frames": self._windows.buffered_frames() if self._windows else 0,
                "messages": self._msgs,
            }
            # rejected_input_*: dropped while parsing messages; rejected_frame_*: frames the windows
            # refused (bad stamps, too many bodies); rejected_window_*: windows preprocessing
            # refused; the rest are events (bodies lost, gaps, staggered starts, alerts, errors).
            counts = collections.Counter()
            for k, v in self._counts.items():
                if k.startswith("input_"):
                    counts[f"rejected_{k}"] += v
                elif k.startswith("preprocess_"):
                    counts[f"rejected_window_{k[len('preprocess_'):]}"] += v
                else:
                    counts[k] += v
            if self._windows is not None:
                for k, v in self._windows.counts.items():
                    if k in _FRAME_REJECTIONS:
                        counts[f"rejected_frame_{k}"] += v
                    elif k != "window_dropped":
                        counts[k] += v
            values.update({k: int(v) for k, v in sorted(counts.items())})
            self._classified_at_last_diag = self._classified
            self._msgs_at_last_diag = self._msgs
            self._last_diag_t = t
        return values

    def _publish_diagnostics(self) -> None:
        v = self.diagnostics_snapshot()
        st = DiagnosticStatus()
        st.name = f"{self.get_name()}: pgfa action recognition"
        st.hardware_id = "pgfa_ros"
        dropped = v["windows_dropped"]
        prev = getattr(self, "_diag_prev_dropped", 0)
        self._diag_prev_dropped = dropped
        if dropped > prev:
            st.level, st.message = DiagnosticStatus.WARN, f"{dropped - prev} windows dropped (inference too slow)"
        elif v["bodies"] == 0:
            st.level, st.message = DiagnosticStatus.OK, "no bodies tracked"
        else:
            st.level, st.message = DiagnosticStatus.OK, f"{v['bodies']} bodies, {v['window_rate_hz']:.1f} windows/s"
        st.values = [KeyValue(key=k, value=(f"{x:.3f}" if isinstance(x, float) else str(x))) for k, x in v.items()]
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [st]
        self._pub_diag.publish(arr)


def autostart(node: RecognizerNode) -> bool:
    """Configure and activate ``node`` (no lifecycle manager needed). Returns success."""
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        return False
    return node.trigger_activate() == TransitionCallbackReturn.SUCCESS


def main(args: list[str] | None = None) -> int:
    argv = list(sys.argv if args is None else args)
    want_autostart = "--autostart" in argv
    argv = [a for a in argv if a != "--autostart"]
    rclpy.init(args=argv)
    node = RecognizerNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    rc = 0
    try:
        if want_autostart or node.get_parameter("autostart").value:
            if not autostart(node):
                node.get_logger().error("autostart failed")
                rc = 1
        if rc == 0:
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        try:
            node._destroy_entities()
            node._release()
        except Exception:
            pass
        executor.shutdown()
        node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    return rc


if __name__ == "__main__":
    sys.exit(main())
