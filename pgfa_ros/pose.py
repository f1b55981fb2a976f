"""Camera-path helpers without rclpy: Image message <-> ndarray, MediaPipe landmarks -> joints.

Used by :mod:`pgfa_ros.pose_node`, :mod:`pgfa_ros.video_publisher` and :mod:`pgfa_ros.demo`, and
testable without ROS (any object with the ``sensor_msgs/Image`` fields works as a message).

Conventions
-----------
* Skeletons are published in the MediaPipe Pose 33 layout (``mediapipe_33`` in
  :mod:`pgfa_models.layouts`) from ``pose_world_landmarks``: metres, image-aligned axes (x right,
  y down, z away from the camera). MediaPipe gives them around the hip centre;
  :mod:`pgfa_ros.multipose` (the ``pose_estimator`` node) adds each person's estimated
  camera-space position, so whole-body motion is kept. The layout's table converts them to NTU
  camera space; nothing here changes axes.
* A landmark whose ``visibility`` is below ``min_visibility`` is published as NaN (the marker
  stays, with NaN coordinates, so the id set is fixed); the shared preprocessing repairs short
  NaN gaps and rejects a window where a joint is missing too long. ``min_visibility=0`` (the
  node's default) publishes MediaPipe's estimate for every landmark, occluded ones included,
  because a joint that is out of view for a whole window (legs under a desk) would otherwise
  reject every window of that person.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = [
    "ImageDecodeError",
    "SUPPORTED_ENCODINGS",
    "MEDIAPIPE_33_EDGES",
    "image_msg_to_ndarray",
    "image_msg_to_rgb",
    "fill_image_msg",
    "landmarks_to_joints",
    "landmarks_to_image_points",
    "resize_max_width",
    "draw_skeleton",
]

# encoding -> channels
SUPPORTED_ENCODINGS: dict[str, int] = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4, "bgra8": 4}

# MediaPipe Pose 33 connections (as mediapipe.solutions.pose.POSE_CONNECTIONS), for drawing.
MEDIAPIPE_33_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
    (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),
    (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
    (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)

MAX_IMAGE_SIDE = 16384  # larger claimed sizes are rejected before touching the data


class ImageDecodeError(ValueError):
    """The message cannot be read as an image; ``reason`` is a short stable counter key."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def image_msg_to_ndarray(msg: Any) -> np.ndarray:
    """Decode a ``sensor_msgs/Image`` (rgb8, bgr8, mono8, rgba8, bgra8) without cv_bridge.

    Returns the pixels in the message's own channel order, ``(H, W)`` for mono8 and
    ``(H, W, C)`` otherwise, as a read-only view of the message buffer when possible. Row
    padding (``step > width * channels``) is dropped. Raises :class:`ImageDecodeError` with
    reason ``bad_encoding``, ``bad_size`` or ``short_data``; never anything else.
    """
    try:
        enc = str(msg.encoding).lower()
        h, w, step = int(msg.height), int(msg.width), int(msg.step)
        data = msg.data
    except (AttributeError, TypeError, ValueError) as exc:
        raise ImageDecodeError("bad_message", f"not an Image message ({exc})") from None
    ch = SUPPORTED_ENCODINGS.get(enc)
    if ch is None:
        raise ImageDecodeError("bad_encoding", f"unsupported encoding {msg.encoding!r} "
                               f"(supported: {', '.join(SUPPORTED_ENCODINGS)})")
    if not (0 < h <= MAX_IMAGE_SIDE and 0 < w <= MAX_IMAGE_SIDE):
        raise ImageDecodeError("bad_size", f"image size {w}x{h}")
    row = w * ch
    if step == 0:
        step = row
    if step < row:
        raise ImageDecodeError("bad_size", f"step {step} < width*channels {row}")
    try:
        buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ImageDecodeError("bad_message", f"unreadable data ({exc})") from None
    need = step * (h - 1) + row
    if buf.size < need:
        raise ImageDecodeError("short_data", f"{buf.size} bytes for {w}x{h} {enc} (step {step}) "
                               f"needs {need}")
    rows = np.lib.stride_tricks.as_strided(buf, shape=(h, row), strides=(step, 1), writeable=False)
    return rows.reshape(h, w) if ch == 1 else rows.reshape(h, w, ch)


def image_msg_to_rgb(msg: Any) -> np.ndarray:
    """Decode any supported encoding to a contiguous RGB ``(H, W, 3)`` uint8 array."""
    img = image_msg_to_ndarray(msg)
    enc = str(msg.encoding).lower()
    if enc == "rgb8":
        return np.ascontiguousarray(img)
    if enc == "bgr8":
        return np.ascontiguousarray(img[:, :, ::-1])
    if enc == "rgba8":
        return np.ascontiguousarray(img[:, :, :3])
    if enc == "bgra8":
        return np.ascontiguousarray(img[:, :, 2::-1])
    return np.ascontiguousarray(np.repeat(img[:, :, None], 3, axis=2))  # mono8


def fill_image_msg(msg: Any, img: np.ndarray, encoding: str) -> Any:
    """Fill an Image message (height, width, encoding, step, data) from ``img``; returns ``msg``."""
    enc = encoding.lower()
    ch = SUPPORTED_ENCODINGS.get(enc)
    if ch is None:
        raise ValueError(f"unsupported encoding {encoding!r}")
    img = np.ascontiguousarray(img, dtype=np.uint8)
    if (ch == 1 and img.ndim != 2) or (ch > 1 and (img.ndim != 3 or img.shape[2] != ch)):
        raise ValueError(f"array of shape {img.shape} does not fit encoding {enc}")
    msg.height, msg.width = int(img.shape[0]), int(img.shape[1])
    msg.encoding = enc
    msg.is_bigendian = 0
    msg.step = int(img.shape[1] * ch)
    msg.data = img.tobytes()
    return msg


def _landmark_array(landmarks: Any) -> np.ndarray:
    """(N, 4) float64 [x, y, z, visibility] from a LandmarkList, a list of landmarks or an array."""
    if landmarks is None:
        return np.zeros((0, 4))
    if isinstance(landmarks, np.ndarray):
        a = np.asarray(landmarks, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] not in (3, 4):
            raise ValueError(f"landmark array must be (N, 3) or (N, 4), got {a.shape}")
        if a.shape[1] == 3:
            a = np.concatenate([a, np.ones((len(a), 1))], axis=1)
        return a
    seq = getattr(landmarks, "landmark", landmarks)  # mediapipe LandmarkList or a sequence
    out = np.empty((len(seq), 4))
    for i, lm in enumerate(seq):
        out[i] = (lm.x, lm.y, lm.z, getattr(lm, "visibility", 1.0))
    return out


def landmarks_to_joints(landmarks: Any, min_visibility: float = 0.0, num_joints: int = 33) -> np.ndarray:
    """MediaPipe ``pose_world_landmarks`` -> ``(33, 3)`` float32 joints in metres, NaN = missing.

    Coordinates are copied as MediaPipe gives them (x right, y down, z away from the camera,
    origin at the hip centre), the convention of the ``mediapipe_33`` layout. Landmarks with
    ``visibility < min_visibility`` and non-finite ones become NaN; missing trailing landmarks
    (a shorter list) are NaN too.
    """
    a = _landmark_array(landmarks)
    out = np.full((num_joints, 3), np.nan, dtype=np.float32)
    n = min(num_joints, len(a))
    if n:
        xyz = a[:n, :3].copy()
        bad = ~np.isfinite(xyz).all(axis=1)
        if min_visibility > 0:
            bad |= ~(a[:n, 3] >= min_visibility)
        xyz[bad] = np.nan
        out[:n] = xyz
    return out


def landmarks_to_image_points(landmarks: Any, num_joints: int = 33) -> np.ndarray:
    """MediaPipe ``pose_landmarks`` -> ``(33, 4)`` float32 [u, v, z, visibility].

    ``u, v`` are normalised image coordinates (0..1, left->right, top->bottom), ``z`` MediaPipe's
    relative depth. Used for drawing; the 3D skeleton comes from :func:`landmarks_to_joints`.
    """
    a = _landmark_array(landmarks)
    out = np.full((num_joints, 4), np.nan, dtype=np.float32)
    n = min(num_joints, len(a))
    out[:n] = a[:n]
    return out


def resize_max_width(img: np.ndarray, max_width: int) -> np.ndarray:
    """Downscale ``img`` (keeping its aspect ratio) so that its width is at most ``max_width``."""
    if max_width <= 0 or img.shape[1] <= max_width:
        return img
    import cv2

    h = max(1, int(round(img.shape[0] * max_width / img.shape[1])))
    return cv2.resize(img, (int(max_width), h), interpolation=cv2.INTER_AREA)


def draw_skeleton(img: np.ndarray, points: np.ndarray, color=(0, 255, 0), min_visibility: float = 0.3,
                  thickness: int = 2) -> np.ndarray:
    """Draw MediaPipe-33 ``points`` ([u, v, z, visibility], normalised) on ``img`` in place."""
    import cv2

    h, w = img.shape[:2]
    p = np.asarray(points, dtype=np.float64)
    ok = np.isfinite(p[:, :2]).all(axis=1) & ~(p[:, 3] < min_visibility)
    px = np.zeros((len(p), 2), dtype=np.int32)
    px[ok] = np.round(p[ok, :2] * (w, h)).astype(np.int32)
    for a, b in MEDIAPIPE_33_EDGES:
        if a < len(p) and b < len(p) and ok[a] and ok[b]:
            cv2.line(img, tuple(int(v) for v in px[a]), tuple(int(v) for v in px[b]), color, thickness,
                     cv2.LINE_AA)
    for i in np.flatnonzero(ok):
        cv2.circle(img, tuple(int(v) for v in px[i]), max(2, thickness + 1), (255, 255, 255), -1, cv2.LINE_AA)
    return img


def joints_to_ntu(joints: np.ndarray | Sequence) -> np.ndarray:
    """Convenience for tests and tools: MediaPipe-33 joints ``(..., 33, 3)`` -> NTU-25 camera space."""
    from pgfa_models.layouts import map_to_ntu

    return map_to_ntu(np.asarray(joints, dtype=np.float32), "mediapipe_33")
