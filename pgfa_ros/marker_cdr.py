"""Fast, strict decoder of skeleton ``visualization_msgs/MarkerArray`` CDR bytes.

Generic deserialisation builds ~20 nested Python objects per marker and dominates both bag
evaluation and the live node's receive path; both need only each marker's id, action, stamp,
frame id and position. This walks the CDR (XCDR1, either endianness) of the ``Marker``
definition of Humble and later (with ``texture_resource``, ``texture``, ``uv_coordinates``,
``mesh_file``, added in Humble) or the older Foxy / Galactic one (without them).
:func:`marker_records` gives flat per-marker tuples (the live node's path,
``skeleton_msgs.marker_array_bytes_to_bodies``); :func:`decode_marker_array` wraps them in light
objects with Marker's attribute names (the bag tools). It is strict: unless the walk ends
exactly at the end of the buffer it returns None and the caller falls back to the generic
decoder (``skeleton_msgs.marker_array_bytes_to_bodies(..., fallback=...)``) or counts the message
as malformed, so a layout it does not know is never misread.
"""
from __future__ import annotations

import struct
from typing import NamedTuple


class _Stamp(NamedTuple):
    sec: int
    nanosec: int


class _Header(NamedTuple):
    stamp: _Stamp
    frame_id: str


class _Point(NamedTuple):
    x: float
    y: float
    z: float


class _Pose(NamedTuple):
    position: _Point


class FastMarker(NamedTuple):
    header: _Header
    id: int
    action: int
    pose: _Pose


class FastMarkerArray(NamedTuple):
    markers: list


_UNPACK = {e: tuple(struct.Struct(e + f).unpack_from for f in ("I", "iI", "iii", "ddd")) for e in "<>"}


def _walk(buf: bytes, new_layout: bool):
    if len(buf) < 8:
        return None
    u32, i32x2, i32x3, f64x3 = _UNPACK["<" if buf[1] == 1 else ">"]
    base = 4
    pos = base
    n_buf = len(buf)

    def align(p, a):
        r = (p - base) % a
        return p + (a - r) % a

    def string(p):
        p = align(p, 4)
        n = u32(buf, p)[0]
        p += 4
        if n == 0:
            return "", p
        s = buf[p:p + n - 1].decode("utf-8", "replace")
        return s, p + n

    def skip_string(p):
        p = align(p, 4)
        return p + 4 + u32(buf, p)[0]

    def skip_seq(p, elem, elem_align):
        p = align(p, 4)
        n = u32(buf, p)[0]
        p += 4
        if n:
            p = align(p, elem_align) + n * elem
        return p

    try:
        pos = align(pos, 4)
        count = u32(buf, pos)[0]
        pos += 4
        if count > (n_buf // 16):
            return None
        records = []
        for _ in range(count):
            pos = align(pos, 4)
            sec, nsec = i32x2(buf, pos)
            pos += 8
            frame_id, pos = string(pos)
            pos = skip_string(pos)  # ns
            pos = align(pos, 4)
            mid, _type, action = i32x3(buf, pos)
            pos += 12
            pos = align(pos, 8)
            x, y, z = f64x3(buf, pos)
            pos += 56 + 24  # position + orientation (7 doubles), scale (3 doubles)
            pos += 16  # color: 4 float32 (aligned: pos is 8-aligned here)
            pos += 8  # lifetime
            pos += 1  # frame_locked
            pos = skip_seq(pos, 24, 8)  # points
            pos = skip_seq(pos, 16, 4)  # colors
            if new_layout:
                pos = skip_string(pos)  # texture_resource
                pos = align(pos, 4) + 8  # texture.header.stamp
                pos = skip_string(pos)  # texture.header.frame_id
                pos = skip_string(pos)  # texture.format
                pos = skip_seq(pos, 1, 1)  # texture.data
                pos = skip_seq(pos, 8, 4)  # uv_coordinates
            pos = skip_string(pos)  # text
            pos = skip_string(pos)  # mesh_resource
            if new_layout:
                pos = skip_string(pos)  # mesh_file.filename
                pos = skip_seq(pos, 1, 1)  # mesh_file.data
            pos += 1  # mesh_use_embedded_materials
            if pos > n_buf:
                return None
            records.append((sec, nsec, frame_id, mid, action, x, y, z))
    except (struct.error, IndexError):
        return None
    # CDR may pad the end to 4/8 bytes
    if not (pos <= n_buf <= align(pos, 8)):
        return None
    return records


def marker_records(buf: bytes | memoryview, new_layout: bool | None = None):
    """``[(sec, nanosec, frame_id, id, action, x, y, z)]``, one per marker, or None when the
    bytes do not match a known layout (both layouts are tried unless ``new_layout`` says which)."""
    buf = bytes(buf)
    if new_layout is not None:
        return _walk(buf, new_layout)
    records = _walk(buf, True)
    return records if records is not None else _walk(buf, False)


def decode_marker_array(buf: bytes | memoryview, new_layout: bool | None = None):
    """Decoded MarkerArray (light objects with Marker's attribute names) or None."""
    records = marker_records(buf, new_layout)
    if records is None:
        return None
    return FastMarkerArray([FastMarker(_Header(_Stamp(sec, nsec), fid), mid, action, _Pose(_Point(x, y, z)))
                            for sec, nsec, fid, mid, action, x, y, z in records])
