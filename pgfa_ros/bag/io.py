"""rosbag2 reading/writing through the pure-Python ``rosbags`` library (no ROS install needed).

* :class:`BagWriter` — a rosbag2 folder (``metadata.yaml`` + one MCAP or sqlite3 file) with
  typed topics; messages are ``rosbags`` dataclasses (see :func:`marker_array`, :func:`string_msg`)
  or already-serialised CDR bytes.
* :func:`read_messages` — every message of some topics in time order, with integrity checks:
  any storage error, and any topic whose count differs from ``metadata.yaml``, is a one-line
  :class:`~pgfa_ros.bag.convention.BagError` ("corrupt or truncated bag").
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from .convention import JOINT_ID_STRIDE, MARKER_ARRAY, NS_PER_S, STRING, BagError

STORAGES = ("mcap", "sqlite3")
DEFAULT_STORAGE = "mcap"
DEFAULT_VERSION = 9  # rosbag2 metadata version of Jazzy / Kilted


@lru_cache(maxsize=1)
def typestore():
    """Message definitions of ROS 2 Kilted (the distribution of the installed rclpy wheels)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


def _t(name: str):
    return typestore().types[name]


def _time(ns: int):
    sec, nsec = divmod(int(ns), NS_PER_S)
    return _t("builtin_interfaces/msg/Time")(sec=sec, nanosec=nsec)


def string_msg(text: str):
    return _t("std_msgs/msg/String")(data=text)


@lru_cache(maxsize=1)
def _marker_parts():
    T = typestore().types
    empty_header = T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id="")
    return dict(
        orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
        scale=T["geometry_msgs/msg/Vector3"](x=0.05, y=0.05, z=0.05),
        color=T["std_msgs/msg/ColorRGBA"](r=0.1, g=0.8, b=0.2, a=1.0),
        lifetime=T["builtin_interfaces/msg/Duration"](sec=0, nanosec=250_000_000),
        texture=T["sensor_msgs/msg/CompressedImage"](header=empty_header, format="", data=np.zeros(0, np.uint8)),
        mesh_file=T["visualization_msgs/msg/MeshFile"](filename="", data=np.zeros(0, np.uint8)),
    )


def marker_array(bodies: Mapping[int, np.ndarray], stamp_ns: int, frame_id: str, ns: str = "body_tracking"):
    """Skeleton MarkerArray (Azure Kinect driver convention) as a ``rosbags`` message.

    ``bodies`` maps body id -> (J, 3) joints; positions are written as float64 exactly.
    """
    T = typestore().types
    parts = _marker_parts()
    Marker, Header, Pose, Point = (T["visualization_msgs/msg/Marker"], T["std_msgs/msg/Header"],
                                   T["geometry_msgs/msg/Pose"], T["geometry_msgs/msg/Point"])
    header = Header(stamp=_time(stamp_ns), frame_id=frame_id)
    markers = []
    for body_id, joints in bodies.items():
        j = np.asarray(joints, dtype=np.float64)
        for k, (x, y, z) in enumerate(j.tolist()):
            markers.append(Marker(
                header=header, ns=ns, id=int(body_id) * JOINT_ID_STRIDE + k, type=2, action=0,
                pose=Pose(position=Point(x=x, y=y, z=z), orientation=parts["orientation"]),
                scale=parts["scale"], color=parts["color"], lifetime=parts["lifetime"],
                frame_locked=False, points=[], colors=[], texture_resource="", texture=parts["texture"],
                uv_coordinates=[], text="", mesh_resource="", mesh_file=parts["mesh_file"],
                mesh_use_embedded_materials=False))
    return T[MARKER_ARRAY](markers=markers)


def _latched_qos():
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    zero = QosTime(sec=0, nsec=0)
    return [Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL,
                zero, zero, QosLiveliness.AUTOMATIC, zero, False)]


class BagWriter:
    """Write a rosbag2 folder. ``atomic=True`` writes ``<path>.partial`` and renames it on a
    clean :meth:`close`, so a failed run never leaves a bag that looks complete."""

    def __init__(self, path: str | os.PathLike, storage: str = DEFAULT_STORAGE, *,
                 version: int = DEFAULT_VERSION, overwrite: bool = False, atomic: bool = True):
        from rosbags.rosbag2 import StoragePlugin, Writer

        if storage not in STORAGES:
            raise BagError(f"unknown storage {storage!r}; choose one of {list(STORAGES)}")
        self.path = Path(path)
        if self.path.exists():
            if not overwrite:
                raise BagError(f"{self.path} already exists (pass --overwrite to replace it)")
        self.overwrite = overwrite
        self.atomic = atomic
        # atomic: write <parent>/.<name>.partial/<name> (storage files keep the bag's name), move on close
        self._tmpdir = self.path.with_name(f".{self.path.name}.partial") if atomic else None
        self._target = self._tmpdir / self.path.name if atomic else self.path
        if self._tmpdir is not None and self._tmpdir.exists():
            shutil.rmtree(self._tmpdir)
        self._target.parent.mkdir(parents=True, exist_ok=True)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self._target, version=version, storage_plugin=plugin)
        self._writer.open()
        self._conns: dict[str, tuple[object, str]] = {}
        self.counts: dict[str, int] = {}
        self.closed = False

    def add_topic(self, topic: str, msgtype: str, latched: bool = False, msgdef: str | None = None,
                  rihs01: str | None = None, qos=None):
        if topic in self._conns:
            return self._conns[topic][0]
        kw = {}
        if msgdef is not None:
            kw.update(msgdef=msgdef, rihs01=rihs01)
        else:
            kw["typestore"] = typestore()
        conn = self._writer.add_connection(topic, msgtype, offered_qos_profiles=qos or (_latched_qos() if latched else ()), **kw)
        self._conns[topic] = (conn, msgtype)
        self.counts[topic] = 0
        return conn

    def write(self, topic: str, stamp_ns: int, msg) -> None:
        conn, msgtype = self._conns[topic]
        self.write_raw(topic, stamp_ns, typestore().serialize_cdr(msg, msgtype))

    def write_raw(self, topic: str, stamp_ns: int, data: bytes | memoryview) -> None:
        conn, _ = self._conns[topic]
        self._writer.write(conn, int(stamp_ns), data)
        self.counts[topic] += 1

    def close(self) -> Path:
        if self.closed:
            return self.path
        self._writer.close()
        self.closed = True
        if self.atomic:
            if self.path.exists():
                shutil.rmtree(self.path)
            os.replace(self._target, self.path)
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        return self.path

    def abort(self) -> None:
        """Close and delete what was written (atomic mode): nothing half-written is left."""
        if not self.closed:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - already failing; cleanup only
                pass
            self.closed = True
        if self._tmpdir is not None and self._tmpdir.exists():
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> "BagWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# ----------------------------------------------------------------------------- reading
@dataclass
class TopicInfo:
    name: str
    msgtype: str
    count: int


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def open_reader(path: str | os.PathLike):
    """An opened ``rosbags`` Reader for a rosbag2 folder; any problem is a one-line BagError."""
    from rosbags.rosbag2 import Reader

    p = Path(path)
    if not p.exists():
        raise BagError(f"{p}: no such bag")
    if p.is_file():
        if p.parent.joinpath("metadata.yaml").is_file():
            p = p.parent
        else:
            raise BagError(f"{p}: a rosbag2 bag is a folder with metadata.yaml; pass the folder")
    if not (p / "metadata.yaml").is_file():
        raise BagError(f"{p}: not a rosbag2 bag (no metadata.yaml)")
    try:
        reader = Reader(p)
        reader.open()
    except Exception as exc:  # noqa: BLE001 - rosbags raises several types for broken bags
        raise BagError(f"{p}: corrupt or truncated bag, cannot open it ({_one_line(exc)})") from None
    return reader


def list_topics(reader) -> list[TopicInfo]:
    seen: dict[str, TopicInfo] = {}
    for c in reader.connections:
        info = seen.setdefault(c.topic, TopicInfo(c.topic, c.msgtype, 0))
        info.count += int(getattr(c, "msgcount", 0) or 0)
    return sorted(seen.values(), key=lambda t: t.name)


def describe_topics(reader) -> str:
    topics = list_topics(reader)
    if not topics:
        return "no topics"
    return ", ".join(f"{t.name} [{t.msgtype}, {t.count}]" for t in topics)


def read_messages(reader, topics: Sequence[str], decode: bool = True) -> Iterator[tuple[str, int, object]]:
    """Yield ``(topic, log time ns, message)`` of ``topics`` in time order.

    After the last message the per-topic counts are checked against ``metadata.yaml``; a
    storage error or a count mismatch raises a one-line BagError.
    """
    conns = [c for c in reader.connections if c.topic in set(topics)]
    expected: dict[str, int] = {}
    for c in conns:
        expected[c.topic] = expected.get(c.topic, 0) + int(getattr(c, "msgcount", 0) or 0)
    got = {t: 0 for t in expected}
    ts = typestore()
    path = reader.path
    it = reader.messages(connections=conns)
    while True:
        try:
            item = next(it)
        except StopIteration:
            break
        except Exception as exc:  # noqa: BLE001 - sqlite3 / mcap / zstd errors
            raise BagError(f"{path}: corrupt or truncated bag ({_one_line(exc)})") from None
        conn, t, raw = item
        got[conn.topic] += 1
        if decode:
            try:
                msg = ts.deserialize_cdr(raw, conn.msgtype)
            except Exception as exc:  # noqa: BLE001
                raise BagError(f"{path}: corrupt message on {conn.topic} at t={t / NS_PER_S:.6f}s "
                               f"({_one_line(exc)})") from None
        else:
            msg = raw
        yield conn.topic, t, msg
    short = {k: (got[k], v) for k, v in expected.items() if got[k] != v}
    if short:
        detail = ", ".join(f"{k}: {g} of {v} messages" for k, (g, v) in sorted(short.items()))
        raise BagError(f"{path}: truncated or corrupt bag, metadata.yaml promises more than the "
                       f"storage holds ({detail})")


def iter_bag_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    return [Path(p) for p in paths]
