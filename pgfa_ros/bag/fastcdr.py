"""Fast, strict decoder of skeleton ``visualization_msgs/MarkerArray`` CDR bytes.

Generic deserialisation builds ~20 nested Python objects per marker and dominates evaluation
time; the bag tools need only each marker's id, action, stamp, frame id and position. This
walks the CDR (XCDR1, either endianness) of the Iron/Jazzy/Kilted ``Marker`` definition (with
``texture``, ``uv_coordinates``, ``mesh_file``) or the Humble one (without them), and returns
light objects with the attribute names :func:`pgfa_ros.skeleton_msgs.marker_array_to_bodies`
reads. It is strict: unless the walk ends exactly at the end of the buffer it returns None and
the caller falls back to the generic decoder, so a layout it does not know is never misread.
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


def _walk(buf: bytes, new_layout: bool):
    if len(buf) < 8:
        return None
    little = buf[1] == 1
    e = "<" if little else ">"
    u32 = struct.Struct(e + "I").unpack_from
    i32x2 = struct.Struct(e + "iI").unpack_from
    i32x3 = struct.Struct(e + "iii").unpack_from
    f64x3 = struct.Struct(e + "ddd").unpack_from
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
        markers = []
        for _ in range(count):
            pos = align(pos, 4)
            sec, nsec = i32x2(buf, pos)
            pos += 8
            frame_id, pos = string(pos)
            _, pos = string(pos)  # ns
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
                _, pos = string(pos)  # texture_resource
                pos = align(pos, 4) + 8  # texture.header.stamp
                _, pos = string(pos)  # texture.header.frame_id
                _, pos = string(pos)  # texture.format
                pos = skip_seq(pos, 1, 1)  # texture.data
                pos = skip_seq(pos, 8, 4)  # uv_coordinates
            _, pos = string(pos)  # text
            _, pos = string(pos)  # mesh_resource
            if new_layout:
                _, pos = string(pos)  # mesh_file.filename
                pos = skip_seq(pos, 1, 1)  # mesh_file.data
            pos += 1  # mesh_use_embedded_materials
            if pos > n_buf:
                return None
            markers.append(FastMarker(_Header(_Stamp(sec, nsec), frame_id), mid, action, _Pose(_Point(x, y, z))))
    except (struct.error, IndexError):
        return None
    # CDR may pad the end to 4/8 bytes
    if not (pos <= n_buf <= align(pos, 8)):
        return None
    return FastMarkerArray(markers)


def decode_marker_array(buf: bytes | memoryview, new_layout: bool | None = None):
    """Decoded MarkerArray (light objects) or None when the bytes do not match a known layout."""
    buf = bytes(buf)
    if new_layout is not None:
        return _walk(buf, new_layout)
    return _walk(buf, True) or _walk(buf, False)
