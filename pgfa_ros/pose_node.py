"""``pose_estimator``: sensor_msgs/Image -> MediaPipe Pose -> skeleton MarkerArray (SPEC §5).

Subscribes ``image_topic`` (``sensor_msgs/Image``: rgb8, bgr8, mono8, rgba8, bgra8; decoded
without cv_bridge), runs MediaPipe Pose (mediapipe 0.10.21, the bundled ``model_complexity=1``
model, ``static_image_mode=False``: tracking across frames; one person) and publishes on
``skeleton_topic`` a ``visualization_msgs/MarkerArray`` in the Azure Kinect driver convention:
one SPHERE marker per MediaPipe-33 landmark from ``pose_world_landmarks`` (metres, x right,
y down, z away from the camera, hip-centred: the ``mediapipe_33`` layout), ``id = body_id * 100
+ joint``, the image's ``header.stamp`` and ``header.frame_id`` carried through (``frame_id``
parameter overrides the frame). Landmarks below ``min_visibility`` are published as NaN (see
:mod:`pgfa_ros.pose`); with no person in view an empty MarkerArray is published
(``publish_empty``), so downstream nodes see frames without bodies.

``image_points_topic`` (default ``~/image_points``; empty disables) carries the same ids with
``pose_landmarks`` in normalised image coordinates (x = u, y = v in 0..1, z = MediaPipe's
relative depth, ``color.a`` = visibility): for overlays on the image (the demo uses it).

A bad image (unsupported encoding, inconsistent size, short data) or a MediaPipe failure never
stops the node: it is counted by reason in :attr:`PoseEstimatorNode.counts` and logged
(throttled). Parameters are read at start-up (restart the node to change them).
"""
from __future__ import annotations

import time
from collections import Counter

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from visualization_msgs.msg import Marker, MarkerArray

from .pose import ImageDecodeError, image_msg_to_rgb, landmarks_to_image_points, landmarks_to_joints, resize_max_width
from .skeleton_msgs import JOINT_ID_STRIDE, joints_to_marker_array

__all__ = ["PoseEstimatorNode", "main"]

NUM_JOINTS = 33


class PoseEstimatorNode(Node):
    """Image -> MediaPipe Pose -> MediaPipe-33 skeleton MarkerArray."""

    def __init__(self, node_name: str = "pose_estimator", **kwargs):
        super().__init__(node_name, **kwargs)
        p = self.declare_parameter
        self.image_topic = p("image_topic", "image").value
        self.skeleton_topic = p("skeleton_topic", "~/skeleton").value
        self.image_points_topic = p("image_points_topic", "~/image_points").value
        self.frame_id = p("frame_id", "").value
        self.body_id = int(p("body_id", 0).value)
        self.model_complexity = int(p("model_complexity", 1).value)
        self.min_detection_confidence = float(p("min_detection_confidence", 0.5).value)
        self.min_tracking_confidence = float(p("min_tracking_confidence", 0.5).value)
        self.min_visibility = float(p("min_visibility", 0.0).value)
        self.smooth_landmarks = bool(p("smooth_landmarks", True).value)
        self.max_width = int(p("max_width", 1280).value)
        self.publish_empty = bool(p("publish_empty", True).value)
        self.queue_depth = int(p("queue_depth", 1).value)
        self.reliable_input = bool(p("reliable_input", False).value)
        self.marker_scale = float(p("marker_scale", 0.05).value)
        self.report_period = float(p("report_period", 30.0).value)

        import mediapipe as mp

        self._pose = mp.solutions.pose.Pose(
            static_image_mode=False,
            model_complexity=self.model_complexity,
            smooth_landmarks=self.smooth_landmarks,
            min_detection_confidence=self.min_detection_confidence,
            min_tracking_confidence=self.min_tracking_confidence,
        )
        self.counts: Counter = Counter()
        self.process_times: list[float] = []  # seconds per processed image (bounded)

        in_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=max(1, self.queue_depth),
            reliability=ReliabilityPolicy.RELIABLE if self.reliable_input else ReliabilityPolicy.BEST_EFFORT,
        )
        self.pub = self.create_publisher(MarkerArray, self.skeleton_topic, 10)
        self.points_pub = (self.create_publisher(MarkerArray, self.image_points_topic, 10)
                           if self.image_points_topic else None)
        self.sub = self.create_subscription(Image, self.image_topic, self._on_image, in_qos)
        self._last_report = time.monotonic()
        self.get_logger().info(
            f"MediaPipe Pose (model_complexity={self.model_complexity}) on {self.sub.topic_name} -> "
            f"{self.pub.topic_name} (mediapipe_33 layout, body id {self.body_id})")

    # ------------------------------------------------------------------ callbacks
    def _on_image(self, msg: Image) -> None:
        self.counts["images"] += 1
        try:
            rgb = image_msg_to_rgb(msg)
        except ImageDecodeError as exc:
            self.counts[f"bad_image_{exc.reason}"] += 1
            self.get_logger().warn(f"bad image dropped ({exc}); {self._bad_total()} so far",
                                   throttle_duration_sec=5.0)
            return
        t0 = time.perf_counter()
        try:
            rgb = resize_max_width(rgb, self.max_width)
            result = self._pose.process(rgb)
        except Exception as exc:  # noqa: BLE001 -- MediaPipe raises assorted errors; never die on one frame
            self.counts["pose_error"] += 1
            self.get_logger().warn(f"MediaPipe failed on a frame ({type(exc).__name__}: {exc})",
                                   throttle_duration_sec=5.0)
            return
        dt = time.perf_counter() - t0
        if len(self.process_times) >= 1000:
            del self.process_times[:500]
        self.process_times.append(dt)
        frame = self.frame_id or msg.header.frame_id
        world = getattr(result, "pose_world_landmarks", None)
        if world is None:
            self.counts["no_person"] += 1
            if self.publish_empty:
                self.pub.publish(MarkerArray())
                if self.points_pub is not None:
                    self.points_pub.publish(MarkerArray())
        else:
            joints = landmarks_to_joints(world, self.min_visibility, NUM_JOINTS)
            self.pub.publish(joints_to_marker_array({self.body_id: joints}, msg.header.stamp, frame,
                                                    scale=self.marker_scale))
            self.counts["skeletons"] += 1
            if self.points_pub is not None and getattr(result, "pose_landmarks", None) is not None:
                self.points_pub.publish(self._points_msg(landmarks_to_image_points(result.pose_landmarks),
                                                         msg.header.stamp, frame))
        self._maybe_report()

    def _points_msg(self, pts: np.ndarray, stamp, frame_id: str) -> MarkerArray:
        out = MarkerArray()
        for k in range(len(pts)):
            m = Marker()
            m.header.stamp = stamp
            m.header.frame_id = frame_id
            m.ns = "image_points"
            m.id = self.body_id * JOINT_ID_STRIDE + k
            m.type = Marker.SPHERE
            m.action = Marker.ADD
            m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(v) for v in pts[k, :3])
            m.pose.orientation.w = 1.0
            m.scale.x = m.scale.y = m.scale.z = 0.01
            vis = float(pts[k, 3])
            m.color.r, m.color.g, m.color.b = 1.0, 1.0, 0.0
            m.color.a = vis if np.isfinite(vis) else 0.0
            out.markers.append(m)
        return out

    def _bad_total(self) -> int:
        return sum(v for k, v in self.counts.items() if k.startswith("bad_image_"))

    def _maybe_report(self) -> None:
        if self.report_period <= 0:
            return
        now = time.monotonic()
        if now - self._last_report < self.report_period:
            return
        self._last_report = now
        pt = np.asarray(self.process_times[-200:]) * 1000 if self.process_times else np.zeros(1)
        self.get_logger().info(
            f"images {self.counts['images']}, skeletons {self.counts['skeletons']}, no person "
            f"{self.counts['no_person']}, bad {self._bad_total()}, errors {self.counts['pose_error']}; "
            f"pose p50 {np.percentile(pt, 50):.0f} ms")

    def destroy_node(self):
        try:
            self._pose.close()
        except Exception:  # noqa: BLE001
            pass
        return super().destroy_node()


def main(args=None) -> int:
    from .launcher import spin_nodes

    rclpy.init(args=args)
    node = PoseEstimatorNode()
    return spin_nodes([node])


if __name__ == "__main__":
    raise SystemExit(main())
