"""Datasets -> rosbag2 in the pgfa_ros bag convention (:mod:`pgfa_ros.bag.convention`).

Sources (each yields :class:`Sequence` objects in the order the training loaders use, so a
bag replays clips in the same order ``pgfa-eval`` sees them — the prototype bank is
order-dependent):

* UTD-MHAD ``.mat`` folder (Kinect v1, layout ``kinect_v1_20``), sorted by file name,
  duplicates dropped (:func:`utd_sequences`);
* NTU RGB+D ``.skeleton`` files (layout ``ntu_25``, the ``max_bodies`` most active bodies,
  body id = activity rank), sorted by file name (:func:`ntu_sequences`);
* SmartFallMM skeleton CSVs (Azure Kinect, layout ``azure_kinect_32``, metres in the driver's
  depth-camera axes), sorted by (participant, activity, trial) (:func:`smartfall_sequences`);
* SMIE/PGFA ``.npy`` arrays ``(N, 3, 50, 25, M)`` (already preprocessed clips; the bag marks
  them ``clip_ready`` so evaluation stacks them unchanged, like the training loader)
  (:func:`smie_sequences`).

Clips follow each other on one timeline: frame k of a clip at ``start + k/fps`` (integer ns),
then ``gap`` seconds of silence before the next clip.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence as Seq

import numpy as np

from .convention import (
    DEFAULT_FRAME_ID, LABEL_TOPIC, MARKER_ARRAY, META_TOPIC, NS_PER_S, SKELETON_TOPIC, STRING,
    BagError, BagMeta, ClipLabel, frame_stamp_ns,
)
from .io import DEFAULT_STORAGE, BagWriter, marker_array, string_msg

DEFAULT_START_NS = 1_700_000_000 * NS_PER_S  # a fixed, plausible wall-clock epoch: reproducible bags
DEFAULT_GAP_S = 1.0


@dataclass
class Sequence:
    """One labelled clip to write: ``bodies`` is a list of (T, J, 3) arrays (body id = index)."""

    name: str
    label: int
    bodies: list[np.ndarray]
    source: str = ""


@dataclass
class Source:
    dataset: str
    layout: str
    fps: float
    classes: list[str]
    sequences: Iterable[Sequence]
    count: int
    num_person: int = 1
    clip_ready: bool = False
    frame_id: str = DEFAULT_FRAME_ID
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- sources
def utd_sequences(root: str | os.PathLike, classes: Seq[int] | None = None,
                  subjects: Seq[int] | None = None, limit: int | None = None) -> Source:
    from pgfa_models.formats.utd_mhad import UTD_MHAD_CLASSES, read_utd_mhad, scan_utd_mhad

    try:
        records = scan_utd_mhad(root)
    except (OSError, ValueError) as exc:
        raise BagError(str(exc)) from None
    records = sorted(records, key=lambda r: r.path.name)  # training/datasets.py order
    if classes is not None:
        records = [r for r in records if r.action in set(classes)]
    if subjects is not None:
        records = [r for r in records if r.subject in set(subjects)]
    if limit is not None:
        records = records[:limit]
    if not records:
        raise BagError(f"no UTD-MHAD sequences in {root} match the selection")

    def gen() -> Iterator[Sequence]:
        for r in records:
            yield Sequence(f"a{r.action + 1}_s{r.subject}_t{r.trial}", r.action,
                           [read_utd_mhad(r.path)], r.path.name)

    return Source("utd_mhad", "kinect_v1_20", 30.0, list(UTD_MHAD_CLASSES), gen(), len(records),
                  frame_id="kinect_v1_camera")


def smartfall_sequences(root: str | os.PathLike, participants: Seq[int] | None = None,
                         activities: Seq[int] | None = None, trials: Seq[int] | None = None,
                         limit: int | None = None) -> Source:
    """SmartFallMM trials (``activities`` are the dataset's 1-based ids, 10-14 the falls; class
    index = id - 1). The joints are written as read: what the Azure Kinect ROS driver publishes."""
    from pgfa_models.formats.smartfallmm import SMARTFALL_ACTIVITIES, SMARTFALL_FPS, read_smartfallmm, scan_smartfallmm

    try:
        records = scan_smartfallmm(root)
    except (OSError, ValueError) as exc:
        raise BagError(str(exc)) from None
    records = select_smartfall(records, participants, activities, trials)
    if limit is not None:
        records = records[:limit]
    if not records:
        raise BagError(f"no SmartFallMM trials in {root} match the selection")

    def gen() -> Iterator[Sequence]:
        for r in records:
            try:
                joints = read_smartfallmm(r.path)
            except ValueError as exc:  # malformed file: skip it, say so
                print(f"pgfa-bag convert: skipping {r.path.name}: {exc}")
                continue
            yield Sequence(r.path.stem, r.activity - 1, [joints], r.path.name)

    return Source("smartfallmm", "azure_kinect_32", SMARTFALL_FPS, list(SMARTFALL_ACTIVITIES), gen(), len(records),
                  frame_id=DEFAULT_FRAME_ID)


def select_smartfall(records, participants=None, activities=None, trials=None) -> list:
    """The records whose participant / activity id (1-14) / trial are in the given lists (None = all)."""
    keep = [r for r in records
            if (participants is None or r.participant in set(participants))
            and (activities is None or r.activity in set(activities))
            and (trials is None or r.trial in set(trials))]
    return keep


def _class_names(names: Seq[str] | None, n: int | None) -> list[str]:
    """The caller's class names (the CLI reads them from the description files), else numbered."""
    return list(names)[:n] if names else [f"A{k + 1:03d}" for k in range(n or 120)]


def ntu_sequences(paths: Seq[str | os.PathLike], classes: Seq[int] | None = None,
                  max_bodies: int = 2, limit: int | None = None, dataset: str = "ntu120",
                  class_names: Seq[str] | None = None) -> Source:
    from pgfa_models.formats.ntu_skeleton import parse_ntu_name, read_ntu_skeleton

    files: list[tuple[Path, int]] = []
    for p in paths:
        p = Path(p)
        cands = sorted(p.rglob("*.skeleton")) if p.is_dir() else [p]
        for f in cands:
            try:
                a = parse_ntu_name(f.name)["action"] - 1
            except ValueError:
                continue
            if classes is None or a in set(classes):
                files.append((f, a))
    files.sort(key=lambda fa: fa[0].name)
    if limit is not None:
        files = files[:limit]
    if not files:
        raise BagError(f"no NTU RGB+D .skeleton files in {[str(p) for p in paths]} match the selection")

    def gen() -> Iterator[Sequence]:
        for f, a in files:
            try:
                seq = read_ntu_skeleton(f, max_bodies=max_bodies)
            except ValueError as exc:  # malformed / empty file: skip it, say so
                print(f"pgfa-bag convert: skipping {f.name}: {exc}")
                continue
            yield Sequence(f.stem, a, seq.as_clip_bodies(), f.name)

    n = 60 if dataset == "ntu60" else 120
    return Source(dataset, "ntu_25", 30.0, _class_names(class_names, n), gen(), len(files),
                  num_person=max_bodies, frame_id="kinect_v2_camera")


def smie_sequences(data_path: str | os.PathLike, label_path: str | os.PathLike,
                   classes: Seq[int] | None = None, limit: int | None = None,
                   dataset: str = "ntu60", class_names: Seq[str] | None = None) -> Source:
    from pgfa_models.formats.smie_npy import load_smie_arrays

    try:
        data, labels = load_smie_arrays(data_path, label_path, mmap=True, frames=50, num_person=None)
    except ValueError as exc:
        raise BagError(str(exc)) from None
    idx = np.arange(len(labels))
    if classes is not None:
        idx = idx[np.isin(labels, np.asarray(sorted(set(classes))))]
    if limit is not None:
        idx = idx[:limit]
    if len(idx) == 0:
        raise BagError(f"no samples in {data_path} match the selection")
    stem = Path(data_path).stem

    def gen() -> Iterator[Sequence]:
        for i in idx:
            x = np.asarray(data[i], dtype=np.float32)  # (3, 50, 25, M)
            bodies = [np.ascontiguousarray(x[..., m].transpose(1, 2, 0)) for m in range(x.shape[-1])]
            yield Sequence(f"{stem}#{int(i):06d}", int(labels[i]), bodies, Path(data_path).name)

    n = {"ntu60": 60, "ntu120": 120, "pku_mmd": 51}.get(dataset)
    return Source(dataset, "ntu_25", 30.0, _class_names(class_names, n), gen(), len(idx),
                  num_person=int(data.shape[-1]), clip_ready=True, frame_id="ntu_camera")


# ----------------------------------------------------------------------------- writing
def _present(frame: np.ndarray) -> bool:
    """A body is present in a frame unless all its joints are exactly zero (NTU convention)."""
    return not bool((frame == 0).all())


def write_bag(source: Source, output: str | os.PathLike, storage: str = DEFAULT_STORAGE, *,
              skeleton_topic: str = SKELETON_TOPIC, label_topic: str = LABEL_TOPIC,
              meta_topic: str = META_TOPIC, start_ns: int = DEFAULT_START_NS,
              gap_s: float = DEFAULT_GAP_S, overwrite: bool = False, version: int = 9,
              progress: bool = False) -> dict:
    """Write ``source`` to a rosbag2 folder; returns a summary dict. Atomic: a failure leaves no bag."""
    fps = float(source.fps)
    if not (math.isfinite(fps) and fps > 0):  # a zero / negative rate gives clashing or backward stamps
        raise BagError(f"fps must be a finite number > 0, got {source.fps}")
    if not (math.isfinite(gap_s) and gap_s >= 0):  # a negative gap overlaps the next clip with this one
        raise BagError(f"gap must be a finite number >= 0 seconds, got {gap_s}")
    meta = BagMeta(layout=source.layout, fps=fps, dataset=source.dataset, classes=list(source.classes),
                   num_person=source.num_person, clip_ready=source.clip_ready, frame_id=source.frame_id,
                   skeleton_topic=skeleton_topic, label_topic=label_topic)
    labels: list[ClipLabel] = []
    n_frames = 0
    t = int(start_ns)
    seqs = source.sequences
    if progress:
        from tqdm import tqdm

        seqs = tqdm(seqs, total=source.count, desc="convert", unit="clip")
    w = BagWriter(output, storage, overwrite=overwrite, version=version)
    try:
        w.add_topic(meta_topic, STRING, latched=True)
        w.add_topic(label_topic, STRING)
        w.add_topic(skeleton_topic, MARKER_ARRAY)
        pending: list[tuple[int, str]] = []  # label messages are written in time order with frames
        first_t = t
        for seq in seqs:
            bodies = [np.asarray(b) for b in seq.bodies]
            if not bodies or any(b.ndim != 3 or b.shape[2] != 3 for b in bodies):
                raise BagError(f"{seq.name}: bodies must be (T, J, 3) arrays")
            T = bodies[0].shape[0]
            if T == 0 or any(b.shape[0] != T for b in bodies):
                raise BagError(f"{seq.name}: bodies must share a non-zero frame count")
            if not 0 <= seq.label < len(source.classes):
                raise BagError(f"{seq.name}: class {seq.label} outside the {len(source.classes)} classes")
            end = frame_stamp_ns(t, T - 1, fps)
            lab = ClipLabel(label=source.classes[seq.label], class_index=int(seq.label), start_ns=t,
                            end_ns=end, body_id=0, body_ids=list(range(len(bodies))), frames=T,
                            source=seq.source, name=seq.name, dataset=source.dataset)
            labels.append(lab)
            w.write(label_topic, t, string_msg(lab.to_json()))
            for k in range(T):
                st = frame_stamp_ns(t, k, fps)
                frame = {b: bodies[b][k] for b in range(len(bodies)) if _present(bodies[b][k])}
                w.write(skeleton_topic, st, marker_array(frame, st, source.frame_id))
            n_frames += T
            t = end + int(round(gap_s * NS_PER_S))
        if not labels:
            raise BagError("nothing to convert: the source yielded no clips")
        meta.num_clips, meta.num_frames = len(labels), n_frames
        # written last (its counts are known only now) but stamped first: readers return time order
        w.write(meta_topic, first_t, string_msg(meta.to_json()))
        path = w.close()
    except BaseException:
        w.abort()
        raise
    return {"bag": str(path), "storage": storage, "clips": len(labels), "frames": n_frames,
            "layout": source.layout, "fps": fps, "dataset": source.dataset,
            "duration_s": (t - int(start_ns)) / NS_PER_S}

