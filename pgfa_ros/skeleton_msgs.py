"""Skeleton MarkerArray <-> per-body joint arrays, Azure Kinect ROS driver convention (SPEC §5).

One ``visualization_msgs/Marker`` per joint, ``id = body_id * 100 + joint``, ``pose.position``
in metres, ``header.frame_id`` the sensor frame, ``header.stamp`` the capture time. The parser
never raises on bad input: it returns what it could use plus counts of what it dropped, by
reason:

``empty``            a message without markers
``flood``            more than ``max_markers`` markers: the whole message is ignored
``bad_id``           negative id, or joint index (id % 100) >= the layout's joint count
``delete_action``    DELETE / DELETEALL markers (no joint data)
``duplicate_joint``  a joint id repeated within one message (the first one wins)
``nan_joint``        a joint with a non-finite coordinate (kept as NaN: preprocessing repairs it)
``absurd_position``  a coordinate beyond ``max_abs_m`` metres (set to NaN, like a missing joint)
``too_few_joints``   a body with fewer than ``min_joints`` valid joints (the body is dropped)
``too_many_bodies``  bodies beyond ``max_bodies`` in one message (lowest ids are kept)
``malformed``        (raw parser only) a serialized message that cannot be decoded

The raw parser reads the ``Marker`` layouts of Humble and later and of Foxy / Galactic itself;
bytes it cannot walk (another layout) go to a ``fallback`` deserialiser when one is given
(:func:`deserialize_marker_array`: rclpy's generic one), and only count as ``malformed`` when that
fails too. :attr:`ParsedSkeletons.decoder` says which path read the message and
:attr:`ParsedSkeletons.fallback_reason` why the fast one could not.
"""
from __future__ import annotations

import math
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

__all__ = [
    "JOINT_ID_STRIDE",
    "ParsedSkeletons",
    "stamp_to_sec",
    "stamp_ns",
    "sec_to_stamp",
    "marker_array_to_bodies",
    "marker_array_bytes_to_bodies",
    "MalformedMessage",
    "deserialize_marker_array",
    "joints_to_marker_array",
]

JOINT_ID_STRIDE = 100


def stamp_to_sec(stamp) -> float:
    """builtin_interfaces/Time -> float seconds."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def stamp_ns(stamp) -> int:
    """builtin_interfaces/Time -> integer nanoseconds (exact, for keys and bag timestamps)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def sec_to_stamp(t: float):
    from builtin_interfaces.msg import Time

    sec = math.floor(t)
    nsec = int(round((t - sec) * 1e9))
    if nsec >= 1_000_000_000:
        sec, nsec = sec + 1, nsec - 1_000_000_000
    return Time(sec=int(sec), nanosec=nsec)


@dataclass
class ParsedSkeletons:
    """Result of :func:`marker_array_to_bodies`."""

    bodies: dict[int, np.ndarray] = field(default_factory=dict)  # body_id -> (J, 3) float32, NaN = missing
    stamps: dict[int, float] = field(default_factory=dict)  # body_id -> stamp (s) of its markers
    frame_id: str = ""
    dropped: Counter = field(default_factory=Counter)
    num_markers: int = 0
    decoder: str = "message"  # "message" (a Python MarkerArray), "raw" (CDR walker), "fallback"
    fallback_reason: str = ""  # why the CDR walker could not read the bytes (decoder "fallback" or malformed)


def marker_array_to_bodies(
    msg,
    num_joints: int,
    *,
    max_markers: int | None = None,
    max_bodies: int = 16,
    min_joints: int | None = None,
    max_abs_m: float = 100.0,
) -> ParsedSkeletons:
    """Parse a skeleton MarkerArray into ``{body_id: (num_joints, 3)}`` plus drop counts.

    ``max_markers`` defaults to ``max_bodies * num_joints``; ``min_joints`` defaults to half the
    layout's joints. Missing joints are NaN. A body's stamp is that of its first valid marker.
    """
    out = ParsedSkeletons()
    markers = getattr(msg, "markers", None)
    n = 0 if markers is None else len(markers)
    out.num_markers = n
    if n == 0:
        out.dropped["empty"] += 1
        return out
    if max_markers is None:
        max_markers = max_bodies * num_joints
    if n > max_markers:
        out.dropped["flood"] += n
        return out
    if min_joints is None:
        min_joints = max(1, num_joints // 2)

    records = (
        (m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id, m.id, m.action,
         m.pose.position.x, m.pose.position.y, m.pose.position.z)
        for m in markers
    )
    _assemble(out, records, num_joints, max_bodies, min_joints, max_abs_m)
    return out


def _assemble(out: ParsedSkeletons, records, num_joints: int, max_bodies: int, min_joints: int,
              max_abs_m: float) -> None:
    """Fill ``out`` from (sec, nanosec, frame_id, id, action, x, y, z) records (one per marker)."""
    arrays: dict[int, np.ndarray] = {}
    seen: dict[int, np.ndarray] = {}
    isfinite = math.isfinite
    for sec, nsec, frame_id, mid, action, x, y, z in records:
        if action != 0:  # ADD/MODIFY == 0; DELETE == 2, DELETEALL == 3
            out.dropped["delete_action"] += 1
            continue
        if mid < 0:
            out.dropped["bad_id"] += 1
            continue
        body_id, joint = divmod(mid, JOINT_ID_STRIDE)
        if joint >= num_joints:
            out.dropped["bad_id"] += 1
            continue
        arr = arrays.get(body_id)
        if arr is None:
            arr = np.full((num_joints, 3), np.nan, dtype=np.float32)
            arrays[body_id] = arr
            seen[body_id] = np.zeros(num_joints, dtype=bool)
            out.stamps[body_id] = float(sec) + float(nsec) * 1e-9
            if not out.frame_id:
                out.frame_id = frame_id
        if seen[body_id][joint]:
            out.dropped["duplicate_joint"] += 1
            continue
        seen[body_id][joint] = True
        if not (isfinite(x) and isfinite(y) and isfinite(z)):
            out.dropped["nan_joint"] += 1
            continue
        if abs(x) > max_abs_m or abs(y) > max_abs_m or abs(z) > max_abs_m:
            out.dropped["absurd_position"] += 1
            continue
        arr[joint] = (x, y, z)

    for body_id in sorted(arrays):
        arr = arrays[body_id]
        valid = int(np.isfinite(arr).all(axis=1).sum())
        if valid < min_joints:
            out.dropped["too_few_joints"] += 1
            continue
        if len(out.bodies) >= max_bodies:
            out.dropped["too_many_bodies"] += 1
            continue
        out.bodies[body_id] = arr
    for body_id in list(out.stamps):
        if body_id not in out.bodies:
            del out.stamps[body_id]


# ----------------------------------------------------------------------------- raw CDR
_U32 = {"<": struct.Struct("<I"), ">": struct.Struct(">I")}
_MIN_MARKER_BYTES = 150  # a Marker with every string and sequence empty serialises to ~170-190 bytes


class MalformedMessage(ValueError):
    """A serialized MarkerArray that cannot be decoded."""


def deserialize_marker_array(buf: bytes):
    """rclpy's generic deserialisation of MarkerArray CDR bytes (the fallback of the raw parser)."""
    from rclpy.serialization import deserialize_message
    from visualization_msgs.msg import MarkerArray

    return deserialize_message(bytes(buf), MarkerArray)


def marker_array_bytes_to_bodies(
    raw: bytes,
    num_joints: int,
    *,
    max_markers: int | None = None,
    max_bodies: int = 16,
    min_joints: int | None = None,
    max_abs_m: float = 100.0,
    fallback: Callable[[bytes], object] | None = None,
) -> ParsedSkeletons:
    """Like :func:`marker_array_to_bodies` but straight from the serialized (CDR) message.

    For subscriptions created with ``raw=True``: the marker count is checked before anything is
    decoded (a flood costs nothing), then :func:`pgfa_ros.marker_cdr.marker_records` reads
    only the fields needed, much faster than rclpy's deserialization into Python Marker
    objects. Bytes the walker cannot read (a Marker layout it does not know) are handed to
    ``fallback`` (bytes -> MarkerArray, e.g. :func:`deserialize_marker_array`) and parsed from
    the message; without a fallback, or when it raises, they count as ``malformed``.
    """
    from .marker_cdr import marker_records

    out = ParsedSkeletons(decoder="raw")
    buf = bytes(raw)
    if max_markers is None:
        max_markers = max_bodies * num_joints
    try:
        if len(buf) < 8 or buf[0] != 0:
            raise MalformedMessage("not a CDR buffer")
        (count,) = _U32["<" if buf[1] & 1 else ">"].unpack_from(buf, 4)
        if count * _MIN_MARKER_BYTES > len(buf):
            raise MalformedMessage(f"{count} markers cannot fit in {len(buf)} bytes")
    except (MalformedMessage, struct.error) as exc:
        out.dropped["malformed"] += 1
        out.fallback_reason = str(exc) if isinstance(exc, MalformedMessage) else "buffer too short"
        return out
    if count == 0 or count > max_markers:  # counted as "empty" / "flood" without decoding
        out.num_markers = count
        out.dropped["empty" if count == 0 else "flood"] += max(count, 1)
        return out
    records = marker_records(buf)
    if records is None:
        reason = (f"{len(buf)} bytes with {count} markers match neither the Humble+ nor the "
                  "Foxy/Galactic visualization_msgs/Marker layout")
        if fallback is not None:
            try:
                msg = fallback(buf)
            except Exception as exc:  # noqa: BLE001 -- any decoder error means "cannot be decoded"
                reason += f"; fallback deserialisation failed: {type(exc).__name__}: {exc}"
            else:
                parsed = marker_array_to_bodies(msg, num_joints, max_markers=max_markers, max_bodies=max_bodies,
                                                min_joints=min_joints, max_abs_m=max_abs_m)
                parsed.decoder, parsed.fallback_reason = "fallback", reason
                return parsed
        out.dropped["malformed"] += 1
        out.fallback_reason = reason
        return out
    out.num_markers = count
    if min_joints is None:
        min_joints = max(1, num_joints // 2)
    _assemble(out, records, num_joints, max_bodies, min_joints, max_abs_m)
    return out


def joints_to_marker_array(
    bodies: Mapping[int, np.ndarray],
    stamp,
    frame_id: str = "depth_camera_link",
    *,
    ns: str = "body_tracking",
    scale: float = 0.05,
    lifetime_s: float = 0.25,
):
    """Build a skeleton MarkerArray (one SPHERE per joint) from ``{body_id: (J, 3)}``.

    ``stamp`` is float seconds or a ``builtin_interfaces/Time``. Joint positions are written
    as given (NaN stays NaN, which is what a faulty source would send).
    """
    from builtin_interfaces.msg import Duration
    from visualization_msgs.msg import Marker, MarkerArray

    if isinstance(stamp, (int, float)):
        stamp = sec_to_stamp(float(stamp))
    life = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1) * 1e9))
    out = MarkerArray()
    for body_id, joints in bodies.items():
        j = np.asarray(joints, dtype=np.float64)
        for k in range(j.shape[0]):
            m = Marker()
            m.header.stamp = stamp
            m.header.frame_id = frame_id
            m.ns = ns
            m.id = int(body_id) * JOINT_ID_STRIDE + k
            m.type = Marker.SPHERE
            m.action = Marker.ADD
            m.pose.position.x = float(j[k, 0])
            m.pose.position.y = float(j[k, 1])
            m.pose.position.z = float(j[k, 2])
            m.pose.orientation.w = 1.0
            m.scale.x = m.scale.y = m.scale.z = scale
            m.color.r, m.color.g, m.color.b, m.color.a = 0.1, 0.8, 0.2, 1.0
            m.lifetime = life
            out.markers.append(m)
    return out
