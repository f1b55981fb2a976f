"""Bag -> clips: reconstruct each clip's raw joint sequences from a skeleton bag.

Segmentation is by the label topic (one JSON ground-truth object per clip, see
:mod:`pgfa_ros.bag.convention`) or, for bags without one (e.g. recorded on a robot), by fixed
windows per body. The joints come back exactly as written (float64 marker positions of float32
dataset values), so running the ONE preprocessing function on them gives the same clip tensors
as the dataset loaders of ``training/`` — checked by the tests.

Integrity checks (each a one-line :class:`BagError`): the skeleton topic must exist (the error
lists the topics the bag has), label messages must be valid JSON with a known class whose
name matches the meta message's class list, every clip must hold the number of frames its label
declares, the number of clips must match the meta message, and the storage must deliver every
message ``metadata.yaml`` promises.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .convention import (
    LABEL_TOPIC, MARKER_ARRAY, META_TOPIC, NS_PER_S, SKELETON_TOPIC, STRING, BagError, BagMeta, ClipLabel,
)
from ..marker_cdr import decode_marker_array
from ..skeleton_msgs import stamp_ns
from .io import describe_topics, list_topics, open_reader, read_messages, typestore


@dataclass
class BagClip:
    name: str
    bodies: list[np.ndarray]          # (T, J, 3) float32 per body, zeros where a body is absent
    times: np.ndarray                 # (T,) float64: frame index (fps known) or seconds from start
    body_ids: list[int]
    label: ClipLabel | None = None
    start_ns: int = 0
    end_ns: int = 0


@dataclass
class BagClips:
    path: Path
    layout: str
    meta: BagMeta | None
    clips: list[BagClip]
    num_frames: int
    dropped: dict = field(default_factory=dict)   # parser drop reasons -> count
    labelled: bool = True


@dataclass
class _Frame:
    t: int                       # ns
    bodies: dict[int, np.ndarray]


def _decode(raw, msgtype: str, path, topic: str, t: int):
    """Skeleton arrays through the fast strict decoder, anything else (or a miss) generically."""
    if msgtype == MARKER_ARRAY:
        msg = decode_marker_array(raw)
        if msg is not None:
            return msg
    try:
        return typestore().deserialize_cdr(raw, msgtype)
    except Exception as exc:  # noqa: BLE001 - rosbags raises several types on bad bytes
        raise BagError(f"{path}: corrupt message on {topic} at t={t / NS_PER_S:.6f}s "
                       f"({' '.join(str(exc).split())[:160] or type(exc).__name__})") from None


def _parse_frames(msgs, num_joints: int, dropped: dict) -> list[_Frame]:
    from pgfa_ros.skeleton_msgs import marker_array_to_bodies

    frames = []
    for t, msg in msgs:
        # strict settings: keep every joint exactly as written (a joint-less body is simply absent)
        p = marker_array_to_bodies(msg, num_joints, max_markers=1 << 20, max_bodies=1 << 10,
                                   min_joints=1, max_abs_m=float("inf"))
        for k, v in p.dropped.items():
            if k != "empty":
                dropped[k] = dropped.get(k, 0) + v
        stamp = t
        if msg.markers:  # header stamp = capture time; the bag's log time is the fallback
            stamp = stamp_ns(msg.markers[0].header.stamp)
        frames.append(_Frame(stamp, p.bodies))
    frames.sort(key=lambda f: f.t)  # stable: equal stamps keep bag order
    return frames


def _assemble(frames: list[_Frame], body_ids: list[int], num_joints: int) -> list[np.ndarray]:
    out = []
    for b in body_ids:
        arr = np.zeros((len(frames), num_joints, 3), dtype=np.float32)
        for i, f in enumerate(frames):
            j = f.bodies.get(b)
            if j is not None:
                arr[i] = j
        out.append(arr)
    return out


def _times(frames: list[_Frame], start_ns: int, fps: float | None) -> np.ndarray:
    rel = np.asarray([f.t - start_ns for f in frames], dtype=np.int64)
    if fps:
        # integer frame indices: identical to the loaders' default time axis (np.arange)
        return np.round(rel * (float(fps) / NS_PER_S)).astype(np.float64)
    return rel.astype(np.float64) / NS_PER_S


def read_bag_clips(path: str | os.PathLike, *, skeleton_topic: str | None = None,
                   label_topic: str | None = None, layout: str | None = None,
                   window: int | None = None, stride: int | None = None,
                   fps: float | None = None, progress: bool = False) -> BagClips:
    """Read a bag into clips (see module doc). ``layout``/``fps`` are needed only for bags
    without a ``/pgfa/meta`` message; ``window``/``stride`` (frames) force fixed windows."""
    from pgfa_models.layouts import get_layout

    path = Path(path)
    reader = open_reader(path)
    try:
        topics = {t.name: t for t in list_topics(reader)}
        meta = None
        if META_TOPIC in topics:
            for _, _, msg in read_messages(reader, [META_TOPIC]):
                meta = BagMeta.from_json(msg.data)
                break
        sk = skeleton_topic or (meta.skeleton_topic if meta else SKELETON_TOPIC)
        lt = label_topic or (meta.label_topic if meta else LABEL_TOPIC)
        if sk not in topics:
            raise BagError(f"{path}: no skeleton topic {sk!r} in the bag; it has: {describe_topics(reader)}")
        if topics[sk].msgtype != MARKER_ARRAY:
            raise BagError(f"{path}: {sk} carries {topics[sk].msgtype}, expected {MARKER_ARRAY}")
        use_labels = lt in topics and window is None
        if use_labels and topics[lt].msgtype != STRING:
            raise BagError(f"{path}: {lt} carries {topics[lt].msgtype}, expected {STRING}")
        layout_name = layout or (meta.layout if meta else None)
        if layout_name is None:
            raise BagError(f"{path}: the bag has no {META_TOPIC} message naming its skeleton layout; pass --layout")
        try:
            lay = get_layout(layout_name)
        except KeyError as exc:
            raise BagError(f"{path}: {exc.args[0]}") from None
        rate = fps or (meta.fps if meta else None)

        wanted = [sk] + ([lt] if use_labels else [])
        total = sum(topics[t].count for t in wanted)
        it = read_messages(reader, wanted, decode=False)
        if progress:
            from tqdm import tqdm

            it = tqdm(it, total=total, desc=f"read {path.name}", unit="msg", leave=False)
        sk_msgs, labels = [], []
        for topic, t, raw in it:
            if topic == sk:
                sk_msgs.append((t, _decode(raw, MARKER_ARRAY, path, topic, t)))
            else:
                msg = _decode(raw, STRING, path, topic, t)
                labels.append(ClipLabel.from_json(msg.data, f"{path}: {lt} at t={t / NS_PER_S:.3f}s"))
    finally:
        reader.close()

    dropped: dict = {}
    frames = _parse_frames(sk_msgs, lay.num_joints, dropped)
    if not frames:
        raise BagError(f"{path}: {sk} holds no messages")
    if use_labels:
        clips = _segment_by_labels(path, frames, labels, meta, lay.num_joints, rate)
    else:
        clips = _segment_by_windows(frames, lay.num_joints, rate, window or 50, stride or (window or 50))
    return BagClips(path, lay.name, meta, clips, len(frames), dropped, use_labels)


def _segment_by_labels(path, frames, labels, meta, num_joints, fps) -> list[BagClip]:
    if not labels:
        raise BagError(f"{path}: the label topic holds no messages")
    if meta is not None and meta.num_clips and len(labels) != meta.num_clips:
        raise BagError(f"{path}: {len(labels)} labelled clips but {META_TOPIC} declares {meta.num_clips} "
                       "(truncated or edited bag)")
    stamps = np.asarray([f.t for f in frames], dtype=np.int64)
    clips = []
    for lab in sorted(labels, key=lambda l: (l.start_ns, l.end_ns)):  # stable: bag order on ties
        name = lab.name or f"{lab.label}@{lab.start_ns / NS_PER_S:.3f}"
        if meta is not None and meta.classes:
            if lab.class_index >= len(meta.classes):
                raise BagError(f"{path}: clip {name!r}: class_index {lab.class_index} outside the "
                               f"{len(meta.classes)} classes of {META_TOPIC} (mislabelled bag)")
            if meta.classes[lab.class_index] != lab.label:
                raise BagError(f"{path}: clip {name!r}: label {lab.label!r} is not class {lab.class_index} "
                               f"({meta.classes[lab.class_index]!r}) (mislabelled bag)")
        lo, hi = np.searchsorted(stamps, lab.start_ns, "left"), np.searchsorted(stamps, lab.end_ns, "right")
        seg = frames[lo:hi]
        if not seg:
            raise BagError(f"{path}: clip {name!r} has no skeleton frames between its start and end "
                           "(truncated or mislabelled bag)")
        if lab.frames is not None and len(seg) != lab.frames:
            raise BagError(f"{path}: clip {name!r} declares {lab.frames} frames but the bag holds "
                           f"{len(seg)} (truncated or mislabelled bag)")
        ids = list(lab.body_ids or [lab.body_id])
        present = set().union(*(f.bodies.keys() for f in seg))
        if not present.intersection(ids):
            raise BagError(f"{path}: clip {name!r}: body ids {ids} never appear in its frames "
                           f"(bodies present: {sorted(present)}) (mislabelled bag)")
        clips.append(BagClip(name, _assemble(seg, ids, num_joints), _times(seg, lab.start_ns, fps), ids,
                             lab, lab.start_ns, lab.end_ns))
    return clips


def _segment_by_windows(frames, num_joints, fps, window: int, stride: int) -> list[BagClip]:
    """Fixed windows of ``window`` consecutive frames in which a body appears, per body id."""
    if window < 2 or stride < 1:
        raise BagError(f"--window must be >= 2 and --stride >= 1 (got {window}, {stride})")
    ids = sorted(set().union(*(f.bodies.keys() for f in frames)))
    clips = []
    for b in ids:
        own = [f for f in frames if b in f.bodies]
        for s in range(0, max(len(own) - window, 0) + 1, stride):
            seg = own[s:s + window]
            if len(seg) < window:
                break
            clips.append(BagClip(f"b{b}@{seg[0].t / NS_PER_S:.3f}", _assemble(seg, [b], num_joints),
                                 _times(seg, seg[0].t, fps), [b], None, seg[0].t, seg[-1].t))
    clips.sort(key=lambda c: (c.start_ns, c.body_ids[0]))
    if not clips:
        raise BagError(f"no body is tracked for {window} frames anywhere in the bag; try a smaller --window")
    return clips
