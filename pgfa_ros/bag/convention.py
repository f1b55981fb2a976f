"""The pgfa_ros bag convention (SPEC §5; documented for users in ``docs/BAGS.md``).

Topics written by ``pgfa-bag convert``:

``/body_tracking_data``  ``visualization_msgs/MarkerArray``, one message per frame at the
    dataset's frame rate, Azure Kinect ROS driver convention: one SPHERE marker per joint,
    ``id = body_id * 100 + joint`` (joint index in the *source layout*), ``pose.position`` the
    joint in metres as float64, ``header.stamp`` the frame time, ``header.frame_id`` the sensor
    frame. Positions are the dataset's own coordinates in its layout's native sensor frame (the
    frame the layout's axis matrix in ``pgfa_models.layouts`` expects), so a recogniser
    configured with that layout sees exactly what the dataset loader sees. float32 dataset
    values are widened to float64, so the round-trip is exact. A body absent in a frame (all
    joints zero, NTU convention) has no markers in that frame; a frame without any body is an
    empty MarkerArray (the frame still counts).
``/pgfa/labels``  ``std_msgs/String``, one JSON object per clip, stamped at the clip's first
    frame: ``label``, ``class_index``, ``body_id``, ``body_ids``, ``start``/``end`` (s) and
    ``start_ns``/``end_ns`` (first/last frame stamps, inclusive), ``frames``, ``source``,
    ``name``, ``dataset``.
``/pgfa/meta``  ``std_msgs/String``, one JSON object at the bag's start (QoS transient local, so
    ``ros2 bag play`` latches it): ``format``, ``version``, ``layout``, ``fps``, topics,
    ``frame_id``, ``dataset``, ``classes`` (all class names, index = class id), ``num_clips``,
    ``num_frames``, ``num_person``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

FORMAT = "pgfa_ros.bag"
FORMAT_VERSION = 1
SKELETON_TOPIC = "/body_tracking_data"
LABEL_TOPIC = "/pgfa/labels"
META_TOPIC = "/pgfa/meta"
MARKER_ARRAY = "visualization_msgs/msg/MarkerArray"
STRING = "std_msgs/msg/String"
JOINT_ID_STRIDE = 100  # same as pgfa_ros.skeleton_msgs (not imported: that module is rclpy-side)
DEFAULT_FRAME_ID = "depth_camera_link"
NS_PER_S = 1_000_000_000
# Bounds on what one label message may ask for: a clip of more bodies than any skeleton driver
# tracks, or a label larger than any real annotation, is a broken or hostile bag, not data.
MAX_BODY_IDS = 64
MAX_LABEL_BYTES = 64 * 1024


class BagError(RuntimeError):
    """A bag cannot be written, read or evaluated; the message is one line for the user."""


def frame_stamp_ns(start_ns: int, k: int, fps: float) -> int:
    """Stamp of frame ``k`` of a clip starting at ``start_ns`` (integer ns, no drift)."""
    return int(start_ns) + int(round(k * NS_PER_S / float(fps)))


@dataclass
class BagMeta:
    layout: str
    fps: float
    dataset: str = ""
    classes: list[str] = field(default_factory=list)
    num_clips: int = 0
    num_frames: int = 0
    num_person: int = 1
    clip_ready: bool = False  # positions are preprocessed clips: eval stacks them unchanged
    frame_id: str = DEFAULT_FRAME_ID
    skeleton_topic: str = SKELETON_TOPIC
    label_topic: str = LABEL_TOPIC
    format: str = FORMAT
    version: int = FORMAT_VERSION
    created_by: str = "pgfa-bag convert"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "BagMeta":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BagError(f"{META_TOPIC}: not JSON ({exc})") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise BagError(f"{META_TOPIC}: not a {FORMAT} meta message")
        if int(d.get("version", 0)) > FORMAT_VERSION:
            raise BagError(f"{META_TOPIC}: format version {d.get('version')} is newer than this tool "
                           f"({FORMAT_VERSION})")
        known = set(cls.__dataclass_fields__)
        try:
            meta = cls(**{k: v for k, v in d.items() if k in known})
            meta.fps = float(meta.fps)
        except (TypeError, ValueError) as exc:
            raise BagError(f"{META_TOPIC}: bad meta message ({exc})") from None
        if not meta.fps > 0:
            raise BagError(f"{META_TOPIC}: fps must be > 0, got {meta.fps}")
        return meta


@dataclass
class ClipLabel:
    """Ground truth of one clip on the label topic."""

    label: str
    class_index: int
    start_ns: int
    end_ns: int
    body_id: int = 0
    body_ids: list[int] = field(default_factory=list)
    frames: int | None = None
    source: str = ""
    name: str = ""
    dataset: str = ""

    def to_json(self) -> str:
        d: dict[str, Any] = asdict(self)
        d["start"] = self.start_ns / NS_PER_S
        d["end"] = self.end_ns / NS_PER_S
        if not d["body_ids"]:
            d["body_ids"] = [self.body_id]
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str = LABEL_TOPIC) -> "ClipLabel":
        if len(text) > MAX_LABEL_BYTES:
            raise BagError(f"{where}: label message of {len(text)} characters (at most {MAX_LABEL_BYTES}): "
                           f"{text[:80]}...")
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BagError(f"{where}: label message is not JSON ({exc})") from None
        if not isinstance(d, dict):
            raise BagError(f"{where}: label message must be a JSON object")
        missing = [k for k in ("label", "class_index") if k not in d]
        if "start_ns" not in d and "start" not in d:
            missing.append("start")
        if "end_ns" not in d and "end" not in d:
            missing.append("end")
        if missing:
            raise BagError(f"{where}: label message lacks {missing}: {text[:120]}")
        try:
            start = int(d["start_ns"]) if "start_ns" in d else int(round(float(d["start"]) * NS_PER_S))
            end = int(d["end_ns"]) if "end_ns" in d else int(round(float(d["end"]) * NS_PER_S))
            ci = d["class_index"]
            if isinstance(ci, bool) or int(ci) != ci:
                raise ValueError(f"class_index {ci!r} is not an integer")
            body_id = int(d.get("body_id", 0))
            raw_ids = d.get("body_ids") or [body_id]
            if not isinstance(raw_ids, list):
                raise ValueError(f"body_ids must be a list, got {type(raw_ids).__name__}")
            if len(raw_ids) > MAX_BODY_IDS:
                raise ValueError(f"body_ids lists {len(raw_ids)} bodies, at most {MAX_BODY_IDS}")
            body_ids = [int(b) for b in raw_ids]
            if len(set(body_ids)) != len(body_ids) or min(body_ids) < 0:
                raise ValueError(f"body_ids must be distinct non-negative ids, got {body_ids[:8]}")
            frames = None if d.get("frames") is None else int(d["frames"])
        except (TypeError, ValueError) as exc:
            raise BagError(f"{where}: bad label message ({exc}): {text[:120]}") from None
        if not isinstance(d["label"], str) or not d["label"].strip():
            raise BagError(f"{where}: label must be a non-empty string: {text[:120]}")
        if int(ci) < 0:
            raise BagError(f"{where}: negative class_index {ci} for {d['label']!r}")
        if end < start:
            raise BagError(f"{where}: clip {d.get('name') or d['label']!r} ends before it starts")
        return cls(d["label"], int(ci), start, end, body_id, body_ids, frames,
                   str(d.get("source", "")), str(d.get("name", "")), str(d.get("dataset", "")))
