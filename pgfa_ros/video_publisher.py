"""``video_publisher``: play a video file as ``sensor_msgs/Image`` messages (demo and tests).

Parameters (all read at start-up):

``video_path``     the file (default: the packaged BSD-licensed ``assets/sports2d_demo.mp4``),
                   or a camera: an OpenCV device index (``"0"``) or ``/dev/videoN`` (live: stamped
                   with the clock at capture, ``rate``/``loop``/``stamp_mode`` do not apply)
``image_topic``    output topic (default ``image``)
``frame_id``       ``header.frame_id`` of the images (default ``camera``)
``encoding``       ``bgr8`` (default), ``rgb8`` or ``mono8``
``rate``           playback speed factor: 1.0 = the file's fps, 2.0 = twice as fast. ``0`` =
                   *lockstep*: the next frame goes out as soon as a message arrives on
                   ``ack_topic`` (e.g. the pose estimator's skeleton output) or after
                   ``ack_timeout`` seconds; without ``ack_topic``, as fast as possible.
``ack_topic``      MarkerArray topic that releases the next frame in lockstep mode
``ack_timeout``    seconds to wait for the ack before sending the next frame anyway
``loop``           start again at the end (default false: stop publishing at the end)
``max_width``      downscale frames wider than this (0 = full size; default 640)
``start_frame``    first frame to publish;  ``max_frames``: how many (0 = to the end)
``stamp_mode``     ``video`` (default): stamp = start time + frame time / rate, so stamps
                   keep the video's own timing whatever the processing speed (lockstep uses
                   the file's fps); ``now``: the wall-clock publish time

Video stamps make windows cover the right span of motion in lockstep mode; they are then not
comparable with the wall clock (latencies computed against them are meaningless).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from visualization_msgs.msg import MarkerArray

from .pose import fill_image_msg, resize_max_width

__all__ = ["VideoPublisherNode", "DEFAULT_VIDEO", "main"]

ASSETS = Path(__file__).resolve().parent / "assets"
DEFAULT_VIDEO = str(ASSETS / "sports2d_demo.mp4")


class VideoPublisherNode(Node):
    """Publishes the frames of a video file (see module docstring for parameters)."""

    def __init__(self, node_name: str = "video_publisher", **kwargs):
        super().__init__(node_name, **kwargs)
        p = self.declare_parameter
        self.video_path = str(p("video_path", DEFAULT_VIDEO).value)
        self.image_topic = p("image_topic", "image").value
        self.frame_id = p("frame_id", "camera").value
        self.encoding = str(p("encoding", "bgr8").value).lower()
        self.rate = float(p("rate", 1.0).value)
        self.ack_topic = p("ack_topic", "").value
        self.ack_timeout = float(p("ack_timeout", 2.0).value)
        self.loop = bool(p("loop", False).value)
        self.max_width = int(p("max_width", 640).value)
        self.start_frame = int(p("start_frame", 0).value)
        self.max_frames = int(p("max_frames", 0).value)
        self.stamp_mode = str(p("stamp_mode", "video").value)
        if self.encoding not in ("bgr8", "rgb8", "mono8"):
            raise ValueError(f"encoding must be bgr8, rgb8 or mono8, got {self.encoding!r}")
        if self.stamp_mode not in ("video", "now"):
            raise ValueError(f"stamp_mode must be 'video' or 'now', got {self.stamp_mode!r}")
        if self.rate < 0:
            raise ValueError(f"rate must be >= 0, got {self.rate}")

        import cv2

        self._cv2 = cv2
        # a camera: "0", "1", ... (OpenCV device index) or /dev/videoN -- live, stamped with the clock
        self.live = self.video_path.isdigit() or self.video_path.startswith("/dev/video")
        if self.live:
            self.stamp_mode = "now"
            self.rate = self.rate or 1.0
            self.loop = False
        elif not Path(self.video_path).is_file():
            raise FileNotFoundError(f"video not found: {self.video_path}")
        self._cap = cv2.VideoCapture(int(self.video_path) if self.video_path.isdigit() else self.video_path)
        if not self._cap.isOpened():
            raise RuntimeError(f"cannot open video {self.video_path}")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if np.isfinite(fps) and fps > 0 else 30.0
        n = 0 if self.live else int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        avail = max(0, n - self.start_frame) if n > 0 else 0
        self.total_frames = min(avail, self.max_frames) if self.max_frames > 0 else avail
        self.frames_published = 0  # over all loops
        self.done = False
        self._index = 0  # frames published in the current pass
        self._pass = 0
        self._seek_start()

        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2, reliability=ReliabilityPolicy.RELIABLE)
        self.pub = self.create_publisher(Image, self.image_topic, qos)
        self._lockstep = self.rate == 0
        self._acked = True
        self._sent_at = 0.0
        if self._lockstep and self.ack_topic:
            self._ack_sub = self.create_subscription(MarkerArray, self.ack_topic, self._on_ack, 10)
        self._t0 = None  # wall time of the first frame
        period = 0.002 if self._lockstep else 1.0 / (self.fps * self.rate)
        self._timer = self.create_timer(period, self._tick)
        mode = "lockstep" if self._lockstep else f"{self.rate:g}x"
        self.get_logger().info(f"{self.video_path}: {self.total_frames or '?'} frames at {self.fps:g} fps "
                               f"-> {self.pub.topic_name} ({self.encoding}, {mode})")

    def _seek_start(self) -> None:
        if self.start_frame > 0:
            self._cap.set(self._cv2.CAP_PROP_POS_FRAMES, self.start_frame)

    def _on_ack(self, _msg) -> None:
        self._acked = True

    def _next_frame(self):
        if self.max_frames > 0 and self._index >= self.max_frames:
            ok, frame = False, None
        else:
            ok, frame = self._cap.read()
        if ok:
            return frame
        if not self.loop or self._index == 0:
            return None
        self._pass += 1
        self._index = 0
        self._cap.release()
        self._cap = self._cv2.VideoCapture(self.video_path)
        self._seek_start()
        ok, frame = self._cap.read()
        return frame if ok else None

    def _tick(self) -> None:
        if self.done:
            return
        if self._lockstep and self.ack_topic and not self._acked:
            if time.monotonic() - self._sent_at < self.ack_timeout:
                return
        frame = self._next_frame()
        if frame is None:
            self.done = True
            self._timer.cancel()
            self.get_logger().info(f"end of video after {self.frames_published} frames")
            return
        frame = resize_max_width(frame, self.max_width)
        if self.encoding == "rgb8":
            frame = frame[:, :, ::-1]
        elif self.encoding == "mono8":
            frame = self._cv2.cvtColor(frame, self._cv2.COLOR_BGR2GRAY)
        msg = Image()
        fill_image_msg(msg, frame, self.encoding)
        now = self.get_clock().now()
        if self._t0 is None:
            self._t0 = now.nanoseconds * 1e-9
        if self.stamp_mode == "now":
            msg.header.stamp = now.to_msg()
        else:
            speed = self.rate if self.rate > 0 else 1.0
            span = (self.total_frames or 0) / self.fps
            t = self._t0 + (self._pass * span + self._index / self.fps) / speed
            from .skeleton_msgs import sec_to_stamp

            msg.header.stamp = sec_to_stamp(t)
        msg.header.frame_id = self.frame_id
        self._acked = False
        self._sent_at = time.monotonic()
        self.pub.publish(msg)
        self._index += 1
        self.frames_published += 1

    def destroy_node(self):
        try:
            self._cap.release()
        except Exception:  # noqa: BLE001
            pass
        return super().destroy_node()


def main(args=None) -> int:
    from .launcher import spin_nodes

    rclpy.init(args=args)
    return spin_nodes([VideoPublisherNode()])


if __name__ == "__main__":
    raise SystemExit(main())
