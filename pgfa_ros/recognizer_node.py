"""``recognizer``: live zero-shot skeleton action recognition as a ROS 2 lifecycle node (SPEC §5).

Lifecycle: *configure* loads the checkpoint, the text features of the label set and the windows;
*activate* creates the subscription, publishers, services and timers; *deactivate* removes them;
*cleanup* frees the model. Parameter ``autostart`` (or ``--autostart`` on the command line, or
:func:`autostart` from Python) brings the node to *active* without a lifecycle manager.

This module is the ROS wiring only. The processing is pure and shared with the offline replay:

    skeleton MarkerArray (sensor-data QoS, depth 5)
      -> parsed per body                 pgfa_ros.skeleton_msgs (raw CDR, rclpy fallback)
      -> per-body windows (bounded)      pgfa_ros.windows
      -> inference thread: preprocess + ONE batched classify   pgfa_ros.live_pipeline
      -> alert rule                      pgfa_ros.alerts
      -> ~/actions, ~/alerts, ~/markers payloads               pgfa_ros.action_messages
      -> counters and /diagnostics values                      pgfa_ros.diagnostics

Outputs: ``~/actions`` (JSON per classified window), ``/humans/bodies/b<id>/action`` (top-1
label), ``~/markers`` (RViz text), ``~/alerts`` (JSON), ``/diagnostics``. Services
``~/reset_bank`` and ``~/save_bank`` (std_srvs/Trigger).

Parameters that only take effect at configure (checkpoint, layout, backend, ...) are read-only:
``ros2 param set`` refuses them instead of reporting a success that changes nothing. The
runtime ones (labels, descriptions, mode, top_k, window geometry, alert_*, bank_file, ...) are
validated, and an invalid value is refused with a reason. ``~/save_bank`` writes only inside the
directory fixed at configure (``bank_dir``); ``bank_file`` is a plain file name.

Per-body state (frame ids, transport stamps, per-body publishers, alert runs) exists only for
bodies the window manager tracks and is removed with them, so an ever-growing stream of body ids
(the Azure Kinect driver never reuses one) cannot grow memory.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

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

from pgfa_models.layouts import get_layout
from pgfa_models.preprocess import PreprocessConfig
from pgfa_models.recognition import load_recognizer
from pgfa_ros.action_messages import action_message, alert_message, text_marker_specs, to_json
from pgfa_ros.alerts import AlertRule, AlertTracker, alert_classes_error
from pgfa_ros.node_entities import destroy_entities
from pgfa_ros.recognizer_params import (ALERT_PARAMS, CONFIGURE_PARAMS, DEFAULT_CHECKPOINT, EXPIRE_CLOCKS, PARAMS,
                                        RUNTIME_PARAMS, WINDOW_PARAMS, alert_rule, bank_file_error, check_changes,
                                        resolve_checkpoint, window_config)
from pgfa_ros.diagnostics import RecognizerStats, status_summary
from pgfa_ros.live_pipeline import classify_windows, preprocess_config_from_meta
from pgfa_ros.skeleton_msgs import deserialize_marker_array, marker_array_bytes_to_bodies, marker_array_to_bodies
from pgfa_ros.windows import WindowConfig, WindowManager

__all__ = ["RecognizerNode", "autostart", "main", "DEFAULT_CHECKPOINT", "bank_file_error", "RUNTIME_PARAMS",
           "CONFIGURE_PARAMS"]

_DIAG_LEVEL = {"ok": DiagnosticStatus.OK, "warn": DiagnosticStatus.WARN}


class RecognizerNode(LifecycleNode):
    """Lifecycle node ``recognizer`` (see module docstring)."""

    def __init__(self, node_name: str = "recognizer", **kwargs):
        super().__init__(node_name, **kwargs)
        for name, spec in PARAMS.items():  # configure-only parameters are read-only
            default = Parameter.Type.STRING_ARRAY if spec.string_array else spec.default
            if name == "checkpoint":
                default = DEFAULT_CHECKPOINT
            self.declare_parameter(name, default, ParameterDescriptor(
                description=spec.description, read_only=not spec.runtime,
                additional_constraints="" if spec.runtime else "read-only: set at start-up, used at configure"))
        self.add_on_set_parameters_callback(self._validate_params)
        self.add_post_set_parameters_callback(self._apply_params)
        self._lock = threading.RLock()  # windows, stats, per-body state, publishers
        self._wake = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._recognizer = None
        self._meta = None
        self._windows: WindowManager | None = None
        self._layout = None
        self._stamp_clock = False  # expire_clock == "stamp", fixed at configure
        self._pre_cfg = PreprocessConfig()
        self._num_person = 1
        self._bank_dir: Path | None = None
        self.configure_error = ""  # why the last configure failed ("" when it did not)
        self._infer_thread: threading.Thread | None = None
        self._label_thread: threading.Thread | None = None
        self._label_request = None
        self._label_event = threading.Event()
        self._active = False
        self._entities: list = []
        # per-body state, only for bodies the window manager tracks (see _sync_bodies)
        self._body_pubs: dict[int, object] = {}
        self._frame_ids: dict[int, str] = {}
        self._transport: dict[int, tuple[float, float]] = {}  # body -> (last stamp, receive time)
        self._alerts = AlertTracker()
        self._logged_once: set[str] = set()
        self._diag_prev_dropped = 0
        self._stats = RecognizerStats()

    # ------------------------------------------------------------------ parameters
    def _p(self, name: str):
        try:
            value = self.get_parameter(name).value
        except Exception:  # uninitialised (string arrays declared without a value)
            return []
        return [] if value is None else value

    def _validate_params(self, params: list[Parameter]) -> SetParametersResult:
        default_labels = list(self._meta.labels) if self._meta is not None else None
        err = check_changes({p.name: p.value for p in params}, self._p, default_labels)
        return SetParametersResult(successful=err is None, reason=err or "")

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
        if "seen_margin" in names:
            self._recognizer.seen_margin = float(self._p("seen_margin"))
        if names & set(WINDOW_PARAMS):
            try:
                with self._lock:
                    self._windows.reconfigure(self._window_config())
                    self._alerts.reset()
                    gone = self._sync_bodies()  # bodies cleared or displaced by the new geometry
                self._destroy_publishers(gone)
            except ValueError as exc:
                self.get_logger().error(f"window geometry not applied: {exc}")
        if names & set(ALERT_PARAMS):
            with self._lock:
                self._alerts.set_rule(self._alert_rule())

    def _window_config(self) -> WindowConfig:
        return window_config(self._p)

    def _alert_rule(self) -> AlertRule:
        return alert_rule(self._p)

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
                    self._stats.count("label_update_failed")
                continue
            if changed:
                with self._lock:
                    self._alerts.reset()
                self.get_logger().info(
                    f"label set now {len(rec.labels)} classes ({rec.labels.embedded_last} embedded in "
                    f"{time.monotonic() - t0:.2f} s): {rec.labels.names}")

    def _log_once(self, key: str, text: str) -> None:
        if key not in self._logged_once:
            self._logged_once.add(key)
            self.get_logger().warning(text)

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.configure_error = ""
        try:
            self._layout = get_layout(self._p("layout"))
            cache = self._p("text_cache_dir") or None
            labels = list(self._p("labels")) or None
            desc = list(self._p("descriptions"))
            if labels and desc and len(desc) != len(labels):
                raise ValueError(f"{len(desc)} descriptions for {len(labels)} labels")
            bank_err = bank_file_error(self._p("bank_file"))
            if bank_err:
                raise ValueError(bank_err)
            if self._p("expire_clock") not in EXPIRE_CLOCKS:
                raise ValueError(f"expire_clock must be one of {EXPIRE_CLOCKS}, got {self._p('expire_clock')!r}")
            self._stamp_clock = self._p("expire_clock") == "stamp"
            rule = self._alert_rule()
            t0 = time.monotonic()
            rec, meta = load_recognizer(
                resolve_checkpoint(self._p("checkpoint")), labels=labels, descriptions=desc or None, mode=self._p("mode"),
                top_k=int(self._p("top_k")), text_cache_dir=cache, num_threads=int(self._p("num_threads")) or None,
                bank_options=dict(capacity=int(self._p("bank_capacity")),
                                  min_support=int(self._p("bank_min_support")),
                                  max_age=int(self._p("bank_max_age")) or None),
                backend=self._p("backend"), device=self._p("device"), seen_margin=float(self._p("seen_margin")))
            if rec.backend_error:
                self.get_logger().warning(f"backend {self._p('backend')!r} unavailable ({rec.backend_error}); "
                                          "using eager PyTorch")
            err = alert_classes_error(rule.classes, rec.labels.names)
            if err:
                raise ValueError(err)
            pre_cfg = preprocess_config_from_meta(meta)  # unknown options are an error, as in pgfa-eval
            self._meta = meta
            self._num_person = int(meta.num_person or 1)
            self._pre_cfg = pre_cfg
            self._bank_dir = Path(self._p("bank_dir") or self._cache_root()).expanduser().resolve()
            bank_path = self._bank_path()
            if self._p("load_bank") and bank_path.is_file():
                rec.load_bank(bank_path)
                self.get_logger().info(f"prototype bank loaded from {bank_path}")
            with self._lock:
                self._windows = WindowManager(self._layout.num_joints, self._window_config())
                self._recognizer = rec
                self._alerts = AlertTracker(rule)
                self._stats = RecognizerStats()
                self._diag_prev_dropped = 0
                self._sync_bodies()
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
            self.configure_error = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"configure failed: {self.configure_error}")
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
        self.get_logger().info(f"active: listening on {self._sub.topic_name}")
        return super().on_activate(state)

    def _destroy_entities(self) -> None:
        with self._lock:
            self._active = False
            if self._windows is not None:
                self._windows.clear()
            pubs = self._sync_bodies()
        destroy_entities(self, self._entities + pubs)
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
    def _parse(self, msg):
        layout = self._layout
        opts = dict(max_bodies=int(self._p("max_bodies")), max_markers=int(self._p("max_markers")) or None)
        if not isinstance(msg, (bytes, bytearray, memoryview)):
            return marker_array_to_bodies(msg, layout.num_joints, **opts)
        parsed = marker_array_bytes_to_bodies(msg, layout.num_joints, fallback=deserialize_marker_array, **opts)
        if parsed.decoder == "fallback":
            self._log_once("fallback", f"raw MarkerArray decoder cannot read this publisher's messages "
                                       f"({parsed.fallback_reason}); using rclpy deserialisation (slower)")
        elif parsed.dropped.get("malformed"):
            self._log_once("malformed", f"skeleton message cannot be decoded ({parsed.fallback_reason}); "
                                        "counted as rejected_input_malformed (logged once)")
        return parsed

    def _on_skeleton(self, msg) -> None:
        now = time.monotonic()
        recv = self.get_clock().now().nanoseconds * 1e-9
        if self._layout is None:
            return
        parsed = self._parse(msg)
        with self._lock:
            self._stats.record_message(parsed.dropped)
            if parsed.decoder == "fallback":
                self._stats.count("decoder_fallback")
            if not self._active or self._windows is None:
                return
            pubs = []
            # the stream's clock (the timer leaves it alone); per-body state only when a body went
            if self._stamp_clock and parsed.stamps and self._windows.expire_stamps(max(parsed.stamps.values())):
                pubs = self._sync_bodies()
            for body_id, joints in parsed.bodies.items():
                if self._windows.add(body_id, parsed.stamps[body_id], joints, now) is not None:
                    continue  # refused (counted by the window manager): no per-body state for it
                self._frame_ids[body_id] = parsed.frame_id
                self._transport[body_id] = (parsed.stamps[body_id], recv)
            if self._windows.num_pending:
                self._wake.notify()
        self._destroy_publishers(pubs)

    def _sync_bodies(self) -> list:
        """Drop the per-body state of every body the window manager no longer tracks (expired,
        displaced by a geometry change, cleared); returns their publishers to destroy. Call with
        the lock held."""
        live = set(self._windows.bodies) if self._windows is not None else set()
        for d in (self._frame_ids, self._transport):
            for bid in [b for b in d if b not in live]:
                del d[bid]
        self._alerts.retain(live)
        return [self._body_pubs.pop(b) for b in [b for b in self._body_pubs if b not in live]]

    def _on_expire_timer(self) -> None:
        with self._lock:
            if self._windows is None or self._stamp_clock:
                return
            self._windows.expire(time.monotonic())
            pubs = self._sync_bodies()
        self._destroy_publishers(pubs)

    def _destroy_publishers(self, pubs) -> None:
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
                frame_ids = {w.body_id: self._frame_ids.get(w.body_id, "") for w in windows}
                for w in windows:
                    st, rv = self._transport.get(w.body_id, (None, None))
                    w.transport_ms = (rv - st) * 1e3 if st == w.end else float("nan")
            try:
                self._process(windows, frame_ids)
            except Exception as exc:  # never let one bad batch kill the thread
                with self._lock:
                    self._stats.count("inference_error")
                self.get_logger().error(f"inference failed: {type(exc).__name__}: {exc}",
                                        throttle_duration_sec=5.0)

    def _process(self, windows, frame_ids) -> None:
        rec = self._recognizer
        if rec is None or not windows:
            return
        batch = classify_windows(rec, windows, self._layout, self._pre_cfg, self._num_person,
                                 unknown_threshold=float(self._p("unknown_threshold")))
        if batch.rejected:
            with self._lock:
                for reason, n in batch.rejected.items():
                    self._stats.count(f"preprocess_{reason}", n)
        if not batch.windows:
            return
        mode = rec.mode
        names = batch.labels or []  # unknown (label set switched meanwhile): no alert scoring this batch
        now = self.get_clock().now().nanoseconds * 1e-9
        alerts = []
        with self._lock:
            if not self._active:
                return
            tracked = set(self._windows.bodies)
            for w, p in zip(batch.windows, batch.predictions):
                latency_ms = (now - w.end) * 1e3
                self._stats.record_window(latency_ms)
                timing = {"transport": getattr(w, "transport_ms", float("nan")),
                          "wait": (batch.started_at - w.ready_at) * 1e3, "preprocess": batch.preprocess_ms,
                          "inference": batch.inference_ms, "batch": len(batch.windows)}
                msg = action_message(w, p, mode=mode, latency_ms=latency_ms, frame_id=frame_ids.get(w.body_id, ""),
                                     timing=timing)
                self._pub_actions.publish(String(data=to_json(msg)))
                alerts += self._alerts.update(w.body_id, w.end, names, p.probs)
                if w.body_id in tracked:
                    self._body_pub(w.body_id).publish(String(data=p.label))
                else:  # expired while its window was classified: no publisher, no run kept for it
                    self._alerts.forget(w.body_id)
                    self._stats.count("body_gone_before_publish")
            self._stats.record_inference(batch.inference_ms)
            for a in alerts:
                self._stats.count("alerts")
                self._pub_alerts.publish(String(data=to_json(alert_message(a, frame_ids.get(a.body_id, "")))))
            if self._p("publish_markers"):
                self._pub_markers.publish(self._text_markers(batch.windows, batch.predictions, frame_ids))
        for a in alerts:
            self.get_logger().warning(f"ALERT body {a.body_id}: {a.label} ({a.score:.2f})")

    def _body_pub(self, body_id: int):
        """The per-body action publisher (created on first use; only for tracked bodies)."""
        pub = self._body_pubs.get(body_id)
        if pub is None:
            pub = self.create_publisher(String, f"/humans/bodies/b{int(body_id)}/action", 10)
            self._body_pubs[body_id] = pub
        return pub

    def _text_markers(self, windows, preds, frame_ids) -> MarkerArray:
        out = MarkerArray()
        stamp = self.get_clock().now().to_msg()
        for spec in text_marker_specs(windows, preds, self._layout, frame_ids):
            m = Marker()
            m.header.frame_id = spec.frame_id
            m.header.stamp = stamp
            m.ns = "pgfa_actions"
            m.id = spec.body_id
            m.type = Marker.TEXT_VIEW_FACING
            m.action = Marker.ADD
            m.pose.position.x, m.pose.position.y, m.pose.position.z = spec.position
            m.pose.orientation.w = 1.0
            m.scale.z = 0.15
            m.color.r, m.color.g, m.color.b, m.color.a = 1.0, 1.0, 1.0, 1.0
            m.text = spec.text
            m.lifetime.sec = 1
            out.markers.append(m)
        return out

    # ------------------------------------------------------------------ services
    def _cache_root(self) -> str:
        return self._p("text_cache_dir") or os.environ.get("PGFA_CACHE_DIR") or "~/.cache/pgfa_ros"

    def _bank_path(self) -> Path:
        """``bank_dir`` (fixed at configure) / ``bank_file`` (validated: a plain file name)."""
        name = self._p("bank_file")
        err = bank_file_error(name)
        if err:  # unreachable through the parameter checks; kept so no path can slip through
            raise ValueError(err)
        folder = self._bank_dir or Path(self._p("bank_dir") or self._cache_root()).expanduser().resolve()
        return folder / name

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
            rec = self._recognizer
            extra = {
                "state": "active" if self._active else "inactive",
                "mode": rec.mode if rec else "",
                "backend": rec.backend if rec else "",
                "labels": len(rec.labels) if rec else 0,
                # sizes of the per-body state (bounded by max_bodies; the soak benchmark watches them)
                "state_frame_ids": len(self._frame_ids),
                "state_transport": len(self._transport),
                "state_body_publishers": len(self._body_pubs),
                "state_alert_runs": len(self._alerts),
            }
            return self._stats.snapshot(self._windows, extra)

    def _publish_diagnostics(self) -> None:
        v = self.diagnostics_snapshot()
        level, message = status_summary(v, self._diag_prev_dropped)
        self._diag_prev_dropped = int(v["windows_dropped"])
        st = DiagnosticStatus()
        st.name = f"{self.get_name()}: pgfa action recognition"
        st.hardware_id = "pgfa_ros"
        st.level, st.message = _DIAG_LEVEL[level], message
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
