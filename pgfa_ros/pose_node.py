"""``pose_estimator``: sensor_msgs/Image -> multi-person 3D pose -> skeleton MarkerArray (SPEC §5).

A ROS 2 **lifecycle** node. *configure* loads the models (MoveNet MultiPose + MediaPipe pose
landmarks, hash-checked files from installed packages, see :mod:`pgfa_ros.multipose`);
*activate* subscribes and starts the worker thread; *deactivate* / *cleanup* undo that. Run as
an executable it configures and activates itself when ``autostart`` is true (the default);
``pgfa-launch`` activates it as any lifecycle node.

Input: ``image_topic`` (``sensor_msgs/Image``: rgb8, bgr8, mono8, rgba8, bgra8; decoded without
cv_bridge). The callback only stores the message in a one-slot mailbox; a worker thread takes
the newest one. A frame that arrives while the previous one is still waiting replaces it and
is counted in ``dropped_frames`` (the newest frame wins: latency stays one frame, whatever
the camera rate).

Output on ``skeleton_topic``: one ``visualization_msgs/MarkerArray`` per processed image, in the
Azure Kinect driver convention: a SPHERE per MediaPipe-33 landmark of every tracked person,
``id = body_id * 100 + joint`` where ``body_id`` is the person's stable track id; the image's
``header.stamp`` and ``frame_id`` (``frame_id`` parameter overrides). Coordinates: MediaPipe's
world landmarks (metres, x right, y down, z away from the camera: the ``mediapipe_33`` layout)
placed at the person's estimated camera-space position (``translation``; see
:func:`pgfa_ros.multipose.solve_translation` for the assumptions), so walking, sitting down and
falling stay in the skeleton. With nobody in view an empty MarkerArray goes out
(``publish_empty``). ``image_points_topic`` carries the same ids with normalised image
coordinates (x = u, y = v in 0..1, z = relative depth, ``color.a`` = visibility) for overlays.

``/diagnostics`` (every ``diagnostics_period`` s): fps, people in the last frame, tracks
started, images received / processed / dropped, bad images by reason, errors, and p50 / p95
latency of each stage (decode, detect, landmarks, track, publish, total).

Parameters whose change needs new models or new topics are read-only (set them at start-up);
the others apply to the next frame (``ros2 param set``).
"""
from __future__ import annotations

import collections
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from visualization_msgs.msg import Marker, MarkerArray

from .node_entities import destroy_entities
from .pose import ImageDecodeError, image_msg_to_rgb, resize_max_width
from .skeleton_msgs import JOINT_ID_STRIDE, joints_to_marker_array

__all__ = ["PoseEstimatorNode", "PARAMS", "autostart", "main"]

NUM_JOINTS = 33
STAGES = ("decode", "detect", "landmarks", "track", "publish", "total")


@dataclass(frozen=True)
class _P:
    default: object
    description: str
    runtime: bool


PARAMS: dict[str, _P] = {
    # topics and models: read-only (a change needs a restart)
    "image_topic": _P("image", "input sensor_msgs/Image topic", False),
    "skeleton_topic": _P("~/skeleton", "output skeleton MarkerArray (mediapipe_33, id = body*100 + joint)", False),
    "image_points_topic": _P("~/image_points", "output 2D landmarks MarkerArray for overlays ('' = off)", False),
    "num_threads": _P(2, "CPU threads of each TFLite model", False),
    "queue_depth": _P(1, "input QoS depth (the node itself keeps only the newest frame)", False),
    "reliable_input": _P(False, "RELIABLE input QoS (lockstep playback); default BEST_EFFORT like a camera", False),
    "autostart": _P(True, "configure and activate at start-up (executable only; pgfa-launch activates anyway)", False),
    # applied to the next frame
    "max_people": _P(4, "people tracked at most", True),
    "detector_size": _P(448, "MoveNet input long side in pixels (multiple of 32; larger finds smaller people)", True),
    "detect_every": _P(3, "run the person detector every N frames (1 = every frame; always while a track is lost)", True),
    "min_detection_score": _P(0.2, "MoveNet person score to start or re-find a track", True),
    "min_pose_score": _P(0.5, "MediaPipe pose flag below which a crop holds no person", True),
    "max_missed": _P(30, "frames a lost track keeps its id before it expires", True),
    "translation": _P(True, "place skeletons at their camera-space position (false: hip-centred)", True),
    "hfov_deg": _P(60.0, "assumed horizontal field of view when camera_fx is 0", True),
    "camera_fx": _P(0.0, "focal length x in pixels of the input image (0 = from hfov_deg)", True),
    "camera_fy": _P(0.0, "focal length y in pixels (0 = camera_fx)", True),
    "camera_cx": _P(0.0, "principal point x in pixels (0 = image centre)", True),
    "camera_cy": _P(0.0, "principal point y in pixels (0 = image centre)", True),
    "translation_smoothing": _P(0.5, "exponential smoothing of the translation, 0 = none, < 1", True),
    "min_visibility": _P(0.0, "landmarks below this visibility are published as NaN (0 = all)", True),
    "max_width": _P(1280, "downscale wider images to this width before pose (0 = never)", True),
    "frame_id": _P("", "override the output frame_id ('' = the image's)", True),
    "publish_empty": _P(True, "publish an empty MarkerArray when nobody is in view", True),
    "marker_scale": _P(0.05, "sphere size of the skeleton markers (m)", True),
    "diagnostics_period": _P(1.0, "seconds between /diagnostics messages (0 = off)", True),
    "report_period": _P(30.0, "seconds between INFO summary lines (0 = off)", True),
}

_ESTIMATOR_ATTRS = {"max_people": int, "detect_every": int, "max_missed": int, "min_pose_score": float,
                    "translation": bool, "hfov_deg": float}


def _check(name: str, value) -> str | None:
    """Why ``value`` is not acceptable for parameter ``name`` (None when it is)."""
    if name in ("max_people", "detect_every", "num_threads", "queue_depth") and int(value) < 1:
        return f"{name} must be >= 1"
    if name == "max_missed" and int(value) < 0:
        return "max_missed must be >= 0"
    if name == "detector_size" and not 128 <= int(value) <= 1280:
        return "detector_size must be in [128, 1280]"
    if name == "hfov_deg" and not 1.0 <= float(value) <= 179.0:
        return "hfov_deg must be in [1, 179]"
    if name == "translation_smoothing" and not 0.0 <= float(value) < 1.0:
        return "translation_smoothing must be in [0, 1)"
    if name in ("camera_fx", "camera_fy", "camera_cx", "camera_cy", "max_width", "diagnostics_period",
                "report_period") and float(value) < 0:
        return f"{name} must be >= 0"
    if name in ("min_detection_score", "min_pose_score", "min_visibility") and not 0.0 <= float(value) <= 1.0:
        return f"{name} must be in [0, 1]"
    return None


class _Mailbox:
    """One slot: the newest message wins; ``put`` reports whether it replaced one."""

    def __init__(self):
        self._cv = threading.Condition()
        self._item = None
        self.closed = False

    def put(self, item) -> bool:
        with self._cv:
            replaced = self._item is not None
            self._item = item
            self._cv.notify()
            return replaced

    def get(self, timeout: float):
        with self._cv:
            if self._item is None and not self.closed:
                self._cv.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._cv:
            self.closed = True
            self._item = None
            self._cv.notify_all()


class PoseEstimatorNode(LifecycleNode):
    """Lifecycle node ``pose_estimator``: Image -> tracked people -> mediapipe_33 MarkerArray."""

    def __init__(self, node_name: str = "pose_estimator", **kwargs):
        super().__init__(node_name, **kwargs)
        for name, spec in PARAMS.items():
            self.declare_parameter(name, spec.default, ParameterDescriptor(
                description=spec.description, read_only=not spec.runtime,
                additional_constraints="" if spec.runtime else "read-only: set at start-up"))
        self.add_on_set_parameters_callback(self._validate_params)
        self.add_post_set_parameters_callback(self._apply_params)
        self.counts: Counter = Counter()
        self.configure_error = ""
        self.estimator = None
        self._lock = threading.Lock()  # counts, latencies
        self._lat: dict[str, collections.deque] = {s: collections.deque(maxlen=300) for s in STAGES}
        self._frame_times: collections.deque = collections.deque(maxlen=300)  # monotonic end of each frame
        self._people_last = 0
        self._cam_size: tuple[int, int] | None = None
        self._mailbox: _Mailbox | None = None
        self._worker: threading.Thread | None = None
        self._entities: list = []
        self._last_report = time.monotonic()
        bad = [f"{n}: {e}" for n in PARAMS if (e := _check(n, self._p(n)))]
        if bad:
            raise ValueError(f"bad pose_estimator parameters: {'; '.join(bad)}")

    # ------------------------------------------------------------------ parameters
    def _p(self, name: str):
        return self.get_parameter(name).value

    def _validate_params(self, params) -> SetParametersResult:
        for prm in params:
            if prm.name in PARAMS:
                try:
                    err = _check(prm.name, prm.value)
                except (TypeError, ValueError) as exc:
                    err = f"{prm.name}: {exc}"
                if err:
                    return SetParametersResult(successful=False, reason=err)
        return SetParametersResult(successful=True)

    def _apply_params(self, params) -> None:
        est = self.estimator
        if est is None:
            return
        names = {p.name for p in params}
        for name, typ in _ESTIMATOR_ATTRS.items():
            if name in names:
                setattr(est, name, typ(self._p(name)))
        if "min_detection_score" in names:
            est.detector.min_score = float(self._p("min_detection_score"))
        if "detector_size" in names:
            est.detector.input_size = int(self._p("detector_size"))
        if "translation_smoothing" in names:
            est.smoothing = float(self._p("translation_smoothing"))
        if "hfov_deg" in names or any(n.startswith("camera_") for n in names):
            est.camera = None  # recomputed for the next frame's size

    def _camera(self, w: int, h: int, scale: float):
        """Intrinsics for the processed image (``scale`` = processed / input width)."""
        from .multipose import Camera

        fx = float(self._p("camera_fx"))
        if fx <= 0:
            return Camera.from_fov(w, h, float(self._p("hfov_deg")))
        fy = float(self._p("camera_fy")) or fx
        cx = float(self._p("camera_cx")) or (w / scale) / 2
        cy = float(self._p("camera_cy")) or (h / scale) / 2
        return Camera(fx, fy, cx, cy).scaled(scale)

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.configure_error = ""
        try:
            from .multipose import MultiPoseEstimator

            t0 = time.monotonic()
            self.estimator = MultiPoseEstimator(
                max_people=int(self._p("max_people")), detect_every=int(self._p("detect_every")),
                detector_size=int(self._p("detector_size")), min_detection_score=float(self._p("min_detection_score")),
                min_pose_score=float(self._p("min_pose_score")), max_missed=int(self._p("max_missed")),
                translation=bool(self._p("translation")), hfov_deg=float(self._p("hfov_deg")),
                translation_smoothing=float(self._p("translation_smoothing")), num_threads=int(self._p("num_threads")))
            self.get_logger().info(f"configured in {time.monotonic() - t0:.1f} s: MoveNet MultiPose + MediaPipe "
                                   f"pose landmarks, up to {self._p('max_people')} people")
            return TransitionCallbackReturn.SUCCESS
        except Exception as exc:  # noqa: BLE001 -- a missing package or a bad file: say why, stay unconfigured
            self.configure_error = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"configure failed: {self.configure_error}")
            self.estimator = None
            return TransitionCallbackReturn.FAILURE

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        in_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=max(1, int(self._p("queue_depth"))),
            reliability=ReliabilityPolicy.RELIABLE if self._p("reliable_input") else ReliabilityPolicy.BEST_EFFORT)
        self.pub = self.create_publisher(MarkerArray, self._p("skeleton_topic"), 10)
        pt = self._p("image_points_topic")
        self.points_pub = self.create_publisher(MarkerArray, pt, 10) if pt else None
        self._pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._mailbox = _Mailbox()
        self.sub = self.create_subscription(Image, self._p("image_topic"), self._on_image, in_qos)
        period = float(self._p("diagnostics_period"))
        self._timer_diag = self.create_timer(period, self._publish_diagnostics) if period > 0 else None
        self._entities = [e for e in (self.pub, self.points_pub, self._pub_diag, self.sub, self._timer_diag) if e]
        self._worker = threading.Thread(target=self._work, name="pgfa-pose", daemon=True)
        self._worker.start()
        self.get_logger().info(f"active: {self.sub.topic_name} -> {self.pub.topic_name} (mediapipe_33, "
                               "id = body * 100 + joint)")
        return super().on_activate(state)

    def _stop_worker(self) -> None:
        if self._mailbox is not None:
            self._mailbox.close()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=5.0)
        self._worker = None

    def _destroy_entities(self) -> None:
        self._stop_worker()
        destroy_entities(self, self._entities)
        self._entities = []

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy_entities()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy_entities()
        self.estimator = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self.on_cleanup(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self.on_cleanup(state)

    # ------------------------------------------------------------------ work
    def _on_image(self, msg: Image) -> None:
        with self._lock:
            self.counts["images"] += 1
        box = self._mailbox
        if box is not None and box.put((msg, time.perf_counter())):
            with self._lock:
                self.counts["dropped_frames"] += 1

    def _work(self) -> None:
        box = self._mailbox
        while box is not None and not box.closed:
            item = box.get(0.1)
            if item is None:
                continue
            try:
                self.process_image(*item)
            except Exception as exc:  # noqa: BLE001 -- never let one frame kill the worker
                with self._lock:
                    self.counts["pose_error"] += 1
                self.get_logger().warning(f"pose failed on a frame ({type(exc).__name__}: {exc})",
                                       throttle_duration_sec=5.0)

    def process_image(self, msg: Image, received: float | None = None) -> list:
        """Decode, estimate, publish one image (the worker's step; callable directly in tests)."""
        t0 = time.perf_counter()
        try:
            rgb = image_msg_to_rgb(msg)
        except ImageDecodeError as exc:
            with self._lock:
                self.counts[f"bad_image_{exc.reason}"] += 1
            self.get_logger().warning(f"bad image dropped ({exc})", throttle_duration_sec=5.0)
            return []
        in_w = rgb.shape[1]
        rgb = resize_max_width(rgb, int(self._p("max_width")))
        est = self.estimator
        if est is None:
            return []
        h, w = rgb.shape[:2]
        if est.camera is None or self._cam_size != (w, h):
            est.camera = self._camera(w, h, w / in_w)
            self._cam_size = (w, h)
        t1 = time.perf_counter()
        people = est.process(rgb)
        t2 = time.perf_counter()
        frame = self._p("frame_id") or msg.header.frame_id
        minvis = float(self._p("min_visibility"))
        if people or self._p("publish_empty"):
            bodies = {}
            for p in people:
                j = p.joints.copy()
                if minvis > 0:
                    j[~(p.image_points[:, 3] >= minvis)] = np.nan
                bodies[p.track_id] = j
            self.pub.publish(joints_to_marker_array(bodies, msg.header.stamp, frame,
                                                    scale=float(self._p("marker_scale"))))
            if self.points_pub is not None:
                self.points_pub.publish(self._points_msg(people, msg.header.stamp, frame))
        t3 = time.perf_counter()
        timing = dict(est.last_timing)
        with self._lock:
            self.counts["frames"] += 1
            self.counts["skeletons"] += len(people)
            if not people:
                self.counts["no_person"] += 1
            self._people_last = len(people)
            for stage, v in (("decode", t1 - t0), ("detect", timing.get("detect", 0.0) if est.last_detected else None),
                             ("landmarks", timing.get("landmarks", 0.0)), ("track", timing.get("track", 0.0)),
                             ("publish", t3 - t2), ("total", t3 - (received or t0))):
                if v is not None:
                    self._lat[stage].append(v * 1e3)
            self._frame_times.append(time.monotonic())
        self._maybe_report()
        return people

    def _points_msg(self, people, stamp, frame_id: str) -> MarkerArray:
        out = MarkerArray()
        for p in people:
            for k in range(NUM_JOINTS):
                m = Marker()
                m.header.stamp = stamp
                m.header.frame_id = frame_id
                m.ns = "image_points"
                m.id = int(p.track_id) * JOINT_ID_STRIDE + k
                m.type = Marker.SPHERE
                m.action = Marker.ADD
                m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(v) for v in p.image_points[k, :3])
                m.pose.orientation.w = 1.0
                m.scale.x = m.scale.y = m.scale.z = 0.01
                vis = float(p.image_points[k, 3])
                m.color.r, m.color.g, m.color.b = 1.0, 1.0, 0.0
                m.color.a = vis if np.isfinite(vis) else 0.0
                out.markers.append(m)
        return out

    # ------------------------------------------------------------------ diagnostics
    def diagnostics_snapshot(self) -> dict:
        """The values published on /diagnostics (plain data)."""
        with self._lock:
            now = time.monotonic()
            recent = [t for t in self._frame_times if now - t <= 5.0]
            fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) >= 2 and recent[-1] > recent[0] else 0.0
            v: dict = {"fps": float(fps), "people": int(self._people_last),
                       "tracks_started": int(self.estimator.next_id) if self.estimator is not None else 0,
                       "images_received": int(self.counts["images"]), "frames_processed": int(self.counts["frames"]),
                       "dropped_frames": int(self.counts["dropped_frames"]),
                       "pose_errors": int(self.counts["pose_error"]),
                       "bad_images": int(sum(n for k, n in self.counts.items() if k.startswith("bad_image_")))}
            for k, n in sorted(self.counts.items()):
                if k.startswith("bad_image_"):
                    v[k] = int(n)
            for s in STAGES:
                a = np.asarray(self._lat[s], dtype=np.float64)
                v[f"{s}_ms_p50"] = float(np.percentile(a, 50)) if a.size else float("nan")
                v[f"{s}_ms_p95"] = float(np.percentile(a, 95)) if a.size else float("nan")
        return v

    def _publish_diagnostics(self) -> None:
        v = self.diagnostics_snapshot()
        st = DiagnosticStatus()
        st.name = f"{self.get_name()}: multi-person pose"
        st.hardware_id = "pgfa_ros"
        errors = v["pose_errors"] + v["bad_images"]
        st.level = DiagnosticStatus.WARN if errors else DiagnosticStatus.OK
        st.message = (f"{v['fps']:.1f} fps, {v['people']} people, {v['dropped_frames']} dropped"
                      + (f", {errors} errors" if errors else ""))
        st.values = [KeyValue(key=k, value=(f"{x:.3f}" if isinstance(x, float) else str(x))) for k, x in v.items()]
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [st]
        self._pub_diag.publish(arr)

    def _maybe_report(self) -> None:
        period = float(self._p("report_period"))
        now = time.monotonic()
        if period <= 0 or now - self._last_report < period:
            return
        self._last_report = now
        v = self.diagnostics_snapshot()
        self.get_logger().info(f"{v['frames_processed']} frames, {v['fps']:.1f} fps, {v['people']} people, "
                               f"{v['dropped_frames']} dropped; total p50 {v['total_ms_p50']:.0f} ms")

    def destroy_node(self):
        self._stop_worker()
        return super().destroy_node()


def autostart(node: PoseEstimatorNode) -> bool:
    """Configure and activate ``node`` (no lifecycle manager needed). Returns success."""
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        return False
    return node.trigger_activate() == TransitionCallbackReturn.SUCCESS


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=list(sys.argv if args is None else args))
    node = PoseEstimatorNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    rc = 0
    try:
        if node.get_parameter("autostart").value and not autostart(node):
            node.get_logger().error(f"autostart failed: {node.configure_error}")
            rc = 1
        if rc == 0:
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node._destroy_entities()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
