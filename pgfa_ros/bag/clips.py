"""Bag -> clips: reconstruct each clip's raw joint sequences from a skeleton bag, streaming.

Segmentation is by the label topic (one JSON ground-truth object per clip, see
:mod:`pgfa_ros.bag.convention`) or, for bags without one (e.g. recorded on a robot), by the live
node's own windows: :func:`pgfa_models.windows.cut_windows` with the same defaults (45 frames
every 10), the same gap rule (``body_timeout``) and the same stagger, so a bag evaluates the
windows the robot would have classified. The joints come back exactly as written (float64 marker
positions of float32 dataset values), so running the ONE preprocessing function on them gives
the same clip tensors as the dataset loaders of ``training/`` — checked by the tests.

Memory is bounded whatever the bag's length: messages are decoded one at a time and dropped,
only the clips (or windows) in progress keep frames (compact float32 joints of the bodies they
need), and :class:`BagStream` yields each clip as soon as it is complete. Only the small label
messages are read up front (a first pass over the label topic), so that a mislabelled bag fails
before any skeleton is decoded.

Integrity checks (each a one-line :class:`BagError`): the skeleton topic must exist (the error
lists the topics the bag has), label messages must be valid JSON with a known class whose
name matches the meta message's class list, every clip must hold the number of frames its label
declares, the number of clips must match the meta message, and the storage must deliver every
message ``metadata.yaml`` promises.
"""
from __future__ import annotations

import bisect
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from pgfa_models.windows import WindowConfig, WindowManager, cut_windows

from .convention import (
    LABEL_TOPIC, MARKER_ARRAY, META_TOPIC, NS_PER_S, SKELETON_TOPIC, STRING, BagError, BagMeta, ClipLabel,
)
from ..marker_cdr import decode_marker_array
from ..skeleton_msgs import stamp_ns
from .io import describe_topics, list_topics, open_reader, read_messages, typestore

# A clip (label start..end) longer than this is refused rather than buffered: ~55 min at 30 Hz.
MAX_CLIP_FRAMES = 100_000
# Frames are allowed to arrive this late (header stamp behind the newest one) before the clips
# they belong to are closed; later ones are counted as ``late_frame`` and left out.
REORDER_SLACK_NS = NS_PER_S


@dataclass
class BagClip:
    name: str
    bodies: list[np.ndarray]          # (T, J, 3) float32 per body, zeros where a body is absent
    times: np.ndarray                 # (T,) float64 seconds from the first frame (k / fps when fps is known)
    body_ids: list[int]
    label: ClipLabel | None = None
    start_ns: int = 0
    end_ns: int = 0


@dataclass
class BagClips:
    """Every clip of a bag, in memory (:func:`read_bag_clips`); iterable like :class:`BagStream`."""

    path: Path
    layout: str
    meta: BagMeta | None
    clips: list[BagClip]
    num_frames: int
    dropped: dict = field(default_factory=dict)   # parser drop reasons -> count
    labelled: bool = True
    window_counts: dict = field(default_factory=dict)  # window manager events (unlabelled bags)

    def __iter__(self) -> Iterator[BagClip]:
        return iter(self.clips)


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


def _times(stamps_ns: np.ndarray, start_ns: int, fps: float | None) -> np.ndarray:
    """Seconds from ``start_ns``; with a known frame rate snapped to the frame grid ``k / fps``,
    bit-identical to the loaders' default time axis (``np.arange(T) / source_rate_hz``)."""
    rel = np.asarray(stamps_ns, dtype=np.int64) - int(start_ns)
    if fps:
        return np.round(rel * (float(fps) / NS_PER_S)).astype(np.float64) / float(fps)
    return rel.astype(np.float64) / NS_PER_S


class _OpenClip:
    """Frames of one labelled clip while the stream is inside it (only its own bodies kept)."""

    __slots__ = ("index", "label", "ids", "frames", "present", "own_seen")

    def __init__(self, index: int, label: ClipLabel):
        self.index, self.label = index, label
        self.ids = list(label.body_ids or [label.body_id])
        self.frames: list[tuple[int, dict]] = []
        self.present: set[int] = set()  # other bodies seen (a bounded sample, for the error message)
        self.own_seen = False


class BagStream:
    """A bag opened for streaming clips.

    Opening checks the bag (topics, types, meta message, layout, window geometry) and reads
    nothing else; each iteration reads the bag once, in storage order, yielding
    :class:`BagClip` objects as they complete (labelled clips in label order, windows in bag time
    order) and raising :class:`BagError` at the first problem. ``num_frames``, ``dropped`` and
    ``window_counts`` describe the last complete pass. :meth:`read` keeps every clip in memory.
    """

    def __init__(self, path: str | os.PathLike, *, skeleton_topic: str | None = None,
                 label_topic: str | None = None, layout: str | None = None,
                 window: int | None = None, stride: int | None = None, window_seconds: float | None = None,
                 body_timeout: float | None = None, max_bodies: int | None = None,
                 fps: float | None = None, progress: bool = False):
        from pgfa_models.layouts import get_layout

        self.path = Path(path)
        self.progress = progress
        reader = open_reader(self.path)
        try:
            topics = {t.name: t for t in list_topics(reader)}
            meta = None
            if META_TOPIC in topics:
                for _, _, msg in read_messages(reader, [META_TOPIC]):
                    meta = BagMeta.from_json(msg.data)
                    break
            describe = describe_topics(reader)
        finally:
            reader.close()
        self.meta = meta
        sk = skeleton_topic or (meta.skeleton_topic if meta else SKELETON_TOPIC)
        lt = label_topic or (meta.label_topic if meta else LABEL_TOPIC)
        if sk not in topics:
            raise BagError(f"{self.path}: no skeleton topic {sk!r} in the bag; it has: {describe}")
        if topics[sk].msgtype != MARKER_ARRAY:
            raise BagError(f"{self.path}: {sk} carries {topics[sk].msgtype}, expected {MARKER_ARRAY}")
        windows_forced = any(v is not None for v in (window, stride, window_seconds))
        self.labelled = lt in topics and not windows_forced
        if self.labelled and topics[lt].msgtype != STRING:
            raise BagError(f"{self.path}: {lt} carries {topics[lt].msgtype}, expected {STRING}")
        layout_name = layout or (meta.layout if meta else None)
        if layout_name is None:
            raise BagError(f"{self.path}: the bag has no {META_TOPIC} message naming its skeleton layout; "
                           "pass --layout")
        try:
            lay = get_layout(layout_name)
        except KeyError as exc:
            raise BagError(f"{self.path}: {exc.args[0]}") from None
        self.layout, self.num_joints = lay.name, lay.num_joints
        self.skeleton_topic, self.label_topic = sk, lt
        if fps is not None and not (math.isfinite(fps) and fps > 0):  # 0 used to mean "the meta's rate"
            raise BagError(f"--fps must be a finite number > 0, got {fps}")
        self.fps = fps or (meta.fps if meta else None)
        self.total = topics[sk].count + (topics[lt].count if self.labelled else 0)
        # the live node's geometry and gap rule, unless told otherwise
        base = WindowConfig()
        try:
            self.window_config = WindowConfig(
                window_frames=base.window_frames if window is None else int(window),
                stride_frames=base.stride_frames if stride is None else int(stride),
                window_seconds=base.window_seconds if window_seconds is None else float(window_seconds),
                body_timeout=base.body_timeout if body_timeout is None else float(body_timeout),
                max_bodies=base.max_bodies if max_bodies is None else int(max_bodies))
        except ValueError as exc:
            raise BagError(f"window geometry: {exc} (--window, --stride, --window-seconds, "
                           "--body-timeout, --max-bodies)") from None
        self.num_frames = 0
        self.dropped: dict = {}
        self.window_counts: dict = {}

    # ------------------------------------------------------------------ reading
    def __iter__(self) -> Iterator[BagClip]:
        reader = open_reader(self.path)
        try:
            labels = self._read_labels(reader) if self.labelled else None
            self.num_frames = 0
            self.dropped = {}
            frames = self._frames(reader)
            if labels is not None:
                yield from self._by_labels(frames, labels)
            else:
                yield from self._by_windows(frames)
        finally:
            reader.close()

    def read(self) -> BagClips:
        clips = list(self)
        return BagClips(self.path, self.layout, self.meta, clips, self.num_frames, dict(self.dropped),
                        self.labelled, dict(self.window_counts))

    def _read_labels(self, reader) -> list[ClipLabel]:
        """All label messages (small), checked against the meta message, in (start, end) order."""
        path, lt, meta = self.path, self.label_topic, self.meta
        labels = []
        for _, t, raw in read_messages(reader, [lt], decode=False):
            msg = _decode(raw, STRING, path, lt, t)
            labels.append(ClipLabel.from_json(msg.data, f"{path}: {lt} at t={t / NS_PER_S:.3f}s"))
        if not labels:
            raise BagError(f"{path}: the label topic holds no messages")
        if meta is not None and meta.num_clips and len(labels) != meta.num_clips:
            raise BagError(f"{path}: {len(labels)} labelled clips but {META_TOPIC} declares {meta.num_clips} "
                           "(truncated or edited bag)")
        labels.sort(key=lambda l: (l.start_ns, l.end_ns))  # stable: bag order on ties
        for lab in labels:
            if meta is not None and meta.classes:
                name = _clip_name(lab)
                if lab.class_index >= len(meta.classes):
                    raise BagError(f"{path}: clip {name!r}: class_index {lab.class_index} outside the "
                                   f"{len(meta.classes)} classes of {META_TOPIC} (mislabelled bag)")
                if meta.classes[lab.class_index] != lab.label:
                    raise BagError(f"{path}: clip {name!r}: label {lab.label!r} is not class {lab.class_index} "
                                   f"({meta.classes[lab.class_index]!r}) (mislabelled bag)")
        return labels

    def _frames(self, reader) -> Iterator[tuple[int, float, dict]]:
        """``(stamp_ns, stamp_s, {body: (J, 3) float32})`` per skeleton message, one at a time.

        ``stamp_s`` is what the live node uses (``sec + nanosec * 1e-9`` of the header), the
        integer ``stamp_ns`` is exact; a message without markers gets the bag's log time."""
        from pgfa_ros.skeleton_msgs import marker_array_to_bodies

        path, sk, dropped = self.path, self.skeleton_topic, self.dropped
        it = read_messages(reader, [sk], decode=False)
        if self.progress:
            from tqdm import tqdm

            it = tqdm(it, total=self.total, desc=f"read {self.path.name}", unit="msg", leave=False)
        for topic, t, raw in it:
            msg = _decode(raw, MARKER_ARRAY, path, topic, t)
            # strict settings: keep every joint exactly as written (a joint-less body is simply absent)
            p = marker_array_to_bodies(msg, self.num_joints, max_markers=1 << 20, max_bodies=1 << 10,
                                       min_joints=1, max_abs_m=float("inf"))
            for k, v in p.dropped.items():
                if k != "empty":
                    dropped[k] = dropped.get(k, 0) + v
            self.num_frames += 1
            if msg.markers:  # header stamp = capture time; the bag's log time is the fallback
                st = msg.markers[0].header.stamp
                yield stamp_ns(st), float(st.sec) + float(st.nanosec) * 1e-9, p.bodies
            else:
                yield t, t * 1e-9, p.bodies
        if self.num_frames == 0:
            raise BagError(f"{path}: {sk} holds no messages")

    # ------------------------------------------------------------------ labelled clips
    def _by_labels(self, frames, labels: list[ClipLabel]) -> Iterator[BagClip]:
        path = self.path
        nxt = 0                       # next label to open (labels sorted by start)
        active: list[_OpenClip] = []
        done: dict[int, BagClip] = {}
        emit = 0                      # next clip index to yield (label order)
        newest = None                 # newest frame stamp seen
        late = 0
        starts = [l.start_ns for l in labels]
        for t, _, bodies in frames:
            newest = t if newest is None else max(newest, t)
            while nxt < len(labels) and labels[nxt].start_ns <= newest:
                active.append(_OpenClip(nxt, labels[nxt]))
                nxt += 1
            closing = [c for c in active if newest - REORDER_SLACK_NS > c.label.end_ns]
            for c in closing:
                active.remove(c)
                done[c.index] = self._finish(c)
            hit = False
            for c in active:
                if c.label.start_ns <= t <= c.label.end_ns:
                    hit = True
                    if len(c.frames) >= MAX_CLIP_FRAMES:
                        raise BagError(f"{path}: clip {_clip_name(c.label)!r} spans more than {MAX_CLIP_FRAMES} "
                                       "frames; cut long recordings into windows with --window")
                    own = {b: bodies[b] for b in c.ids if b in bodies}
                    c.own_seen = c.own_seen or bool(own)
                    if not c.own_seen and len(c.present) < 32:
                        c.present.update(list(bodies)[:32])
                    c.frames.append((t, own))
            if not hit and t < newest - REORDER_SLACK_NS:
                # too late for a clip that is already closed (frames between clips do not matter)
                k = bisect.bisect_right(starts, t)
                late += any(labels[j].end_ns >= t for j in range(max(0, k - 8), k))
            while emit in done:
                yield done.pop(emit)
                emit += 1
        for c in active:
            done[c.index] = self._finish(c)
        for i in range(nxt, len(labels)):
            done[i] = self._finish(_OpenClip(i, labels[i]))
        if late:
            self.dropped["late_frame"] = self.dropped.get("late_frame", 0) + late
        while emit in done:
            yield done.pop(emit)
            emit += 1

    def _finish(self, c: _OpenClip) -> BagClip:
        path, lab, name = self.path, c.label, _clip_name(c.label)
        if not c.frames:
            raise BagError(f"{path}: clip {name!r} has no skeleton frames between its start and end "
                           "(truncated or mislabelled bag)")
        c.frames.sort(key=lambda f: f[0])  # stable: equal stamps keep bag order
        if lab.frames is not None and len(c.frames) != lab.frames:
            raise BagError(f"{path}: clip {name!r} declares {lab.frames} frames but the bag holds "
                           f"{len(c.frames)} (truncated or mislabelled bag)")
        if not c.own_seen:
            raise BagError(f"{path}: clip {name!r}: body ids {c.ids} never appear in its frames "
                           f"(bodies present: {sorted(c.present)}) (mislabelled bag)")
        bodies = []
        for b in c.ids:
            arr = np.zeros((len(c.frames), self.num_joints, 3), dtype=np.float32)
            for i, (_, fb) in enumerate(c.frames):
                j = fb.get(b)
                if j is not None:
                    arr[i] = j
            bodies.append(arr)
        stamps = np.fromiter((f[0] for f in c.frames), np.int64, len(c.frames))
        clip = BagClip(name, bodies, _times(stamps, lab.start_ns, self.fps), c.ids, lab, lab.start_ns, lab.end_ns)
        c.frames = []
        return clip

    # ------------------------------------------------------------------ unlabelled: live windows
    def _by_windows(self, frames) -> Iterator[BagClip]:
        manager = WindowManager(self.num_joints, self.window_config)
        n = 0
        # frames without bodies carry the log time, another clock: they only count as frames
        stream = ((s, bodies) for _, s, bodies in frames if bodies)
        try:
            for w in cut_windows(stream, manager):
                start_ns = int(round(float(w.stamps[0]) * NS_PER_S))
                end_ns = int(round(float(w.stamps[-1]) * NS_PER_S))
                rel = (w.stamps - w.stamps[0]).astype(np.float64)
                times = np.round(rel * float(self.fps)) / float(self.fps) if self.fps else rel
                n += 1
                yield BagClip(f"b{w.body_id}@{w.start:.3f}", [w.joints], times.astype(np.float64), [w.body_id],
                              None, start_ns, end_ns)
        finally:
            self.window_counts = dict(manager.counts)
        if n == 0:
            cfg = self.window_config
            size = f"{cfg.window_seconds:g} s" if cfg.time_based else f"{cfg.window_frames} frames"
            raise BagError(f"{self.path}: no body is tracked for {size} without a gap of more than "
                           f"{cfg.body_timeout:g} s anywhere in the bag; try a smaller --window")


def _clip_name(lab: ClipLabel) -> str:
    return lab.name or f"{lab.label}@{lab.start_ns / NS_PER_S:.3f}"


def open_bag_clips(path: str | os.PathLike, **kw) -> BagStream:
    """A :class:`BagStream` (clips read lazily, bounded memory); keywords as :func:`read_bag_clips`."""
    return BagStream(path, **kw)


def read_bag_clips(path: str | os.PathLike, *, skeleton_topic: str | None = None,
                   label_topic: str | None = None, layout: str | None = None,
                   window: int | None = None, stride: int | None = None, window_seconds: float | None = None,
                   body_timeout: float | None = None, max_bodies: int | None = None,
                   fps: float | None = None, progress: bool = False) -> BagClips:
    """Read a bag into clips (see module doc), all in memory. ``layout``/``fps`` are needed only
    for bags without a ``/pgfa/meta`` message; ``window``/``stride``/``window_seconds`` force
    the live node's windows on a labelled bag (defaults: :class:`pgfa_models.windows.WindowConfig`)."""
    return BagStream(path, skeleton_topic=skeleton_topic, label_topic=label_topic, layout=layout,
                     window=window, stride=stride, window_seconds=window_seconds, body_timeout=body_timeout,
                     max_bodies=max_bodies, fps=fps, progress=progress).read()
