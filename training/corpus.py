"""Multi-source corpus: real trials of several datasets cut into live-length windows (issue 10).

Every source is read by its :mod:`pgfa_models.formats` reader, cut into windows by THE live
windowing rule (:func:`pgfa_models.windows.cut_windows`, the node's 45-frame / stride-10
geometry by default) and preprocessed by THE preprocessing function, so a training window is
what the node classifies. A trial shorter than one window becomes one window (preprocessing
holds its ends when ``window_seconds`` is set). Each window keeps its trial, its source's class
label and a subject group (for leave-subjects-out validation and the nearest-neighbour ceiling).

Windows are cached per source in ``<cache root>/clips`` keyed by the source files, the
preprocessing and window configs and a version, like :mod:`training.datasets`.

Sources and default locations (an unpacked folder, given or found):

=============  =================================================  =================
source         folder (``root``)                                  layout
=============  =================================================  =================
utd_mhad       ``../shared/data/utd-mhad`` (the ``.mat`` files)    ``kinect_v1_20``
nw_ucla        the unpacked ``all_sqe`` folder                     ``kinect_v1_sdk_20``
smartfallmm    the unpacked ``young/skeleton`` folder              ``azure_kinect_32``
bandai         the unpacked ``Bandai-Namco-Research-Motiondataset-1``  ``bandai_bvh``
=============  =================================================  =================

Without a ``root``, the archives in ``../shared/data`` are unpacked once (no network: local
files, checked against ``SHA256SUMS``) into ``<cache root>/shared_data/<source>-<sha16>``.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from pgfa_models.alignment import l2_normalise
from pgfa_models.config import to_dict
from pgfa_models.preprocess import PreprocessConfig, preprocess_clip
from pgfa_models.text import cache_root
from pgfa_models.windows import WindowConfig, WindowManager, cut_windows

from .datasets import DatasetError, resolve_utd_root

CORPUS_VERSION = 3  # bump whenever windows or trial meta change (stale caches are keyed out)
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# source -> (layout, archive relative to shared/data, folder inside the archive)
SOURCES: dict[str, tuple[str, str | None, str | None]] = {
    "utd_mhad": ("kinect_v1_20", None, None),
    "nw_ucla": ("kinect_v1_sdk_20", "nw-ucla/all_sqe.tar.xz", "all_sqe"),
    "smartfallmm": ("azure_kinect_32", "smartfallmm/young-skeleton-S29-S39.tar.xz", "young/skeleton"),
    "bandai": ("bandai_bvh", "bandai-namco-1/dataset-1.tar.xz", "Bandai-Namco-Research-Motiondataset-1"),
}
LIVE_RATE_HZ = 30.0  # the rate the node's frame-count geometry (45 frames every 10) refers to


@dataclass
class Trial:
    """One recorded trial of one body before windowing."""

    name: str                 # unique within the source
    label: int                # the source's 0-based class id
    group: str                # subject / participant ("s3", "S31", "bandai": one actor set)
    read: Callable[[], np.ndarray]  # -> (T, J, 3) in the source layout
    meta: dict = field(default_factory=dict)  # e.g. {"view": 3}, {"style": 4}
    rate_hz: float = 30.0     # frames per second (no timestamps in any of the files)


@dataclass
class WindowSet:
    """Preprocessed windows of one or more sources, in a stated order (source, trial, time)."""

    x: np.ndarray             # (N, 3, T, 25, 1) float32
    source: np.ndarray        # (N,) str
    label: np.ndarray         # (N,) int64 source class ids
    trial: np.ndarray         # (N,) int64 trial index (unique over the set)
    group: np.ndarray         # (N,) str  "<source>:<subject>"
    start: np.ndarray         # (N,) float64 window start (s, from the trial start)
    trial_names: list[str]    # trial index -> "<source>/<name>"
    trial_meta: list[dict]
    rejected: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def take(self, idx) -> "WindowSet":
        idx = np.asarray(idx, dtype=np.int64)
        return WindowSet(self.x[idx], self.source[idx], self.label[idx], self.trial[idx],
                         self.group[idx], self.start[idx], self.trial_names, self.trial_meta,
                         dict(self.rejected))

    def where(self, mask: np.ndarray) -> "WindowSet":
        return self.take(np.flatnonzero(mask))


def concat(sets: Sequence[WindowSet]) -> WindowSet:
    """One set from several, trial indices renumbered so they stay unique."""
    if not sets:
        raise DatasetError("no window sets to concatenate")
    offset, trials, names, meta, rejected = 0, [], [], [], Counter()
    for s in sets:
        trials.append(s.trial + offset)
        names += s.trial_names
        meta += s.trial_meta
        offset += len(s.trial_names)
        rejected.update(s.rejected)
    return WindowSet(np.concatenate([s.x for s in sets]), np.concatenate([s.source for s in sets]),
                     np.concatenate([s.label for s in sets]), np.concatenate(trials),
                     np.concatenate([s.group for s in sets]), np.concatenate([s.start for s in sets]),
                     names, meta, dict(rejected))


# ----------------------------------------------------------------------------- roots
def _expected_sha256(rel: str) -> str:
    sums = SHARED_DATA / "SHA256SUMS"
    for line in sums.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == rel:
            return parts[0]
    raise DatasetError(f"{rel} not listed in {sums}")


def unpack_archive(rel: str, inner: str, name: str) -> Path:
    """Unpack ``shared/data/<rel>`` once into the cache (keyed by its sha256); the data folder.

    The archive is checked against ``SHA256SUMS`` first and extracted with tarfile's ``data``
    filter (no links out, no device files), into a temporary folder renamed into place, so an
    interrupted run never leaves a half-unpacked dataset behind.
    """
    archive = SHARED_DATA / rel
    if not archive.is_file():
        raise DatasetError(f"{name}: archive not found at {archive}; pass the unpacked folder (root)")
    sha = _expected_sha256(rel)
    dest = cache_root() / "shared_data" / f"{name}-{sha[:16]}"
    if not (dest / ".complete").is_file():
        from pgfa_models.fileio import sha256_file

        if sha256_file(archive) != sha:
            raise DatasetError(f"{archive}: sha256 does not match SHA256SUMS")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{name}-"))
        try:
            with tarfile.open(archive, "r:xz") as tf:
                tf.extractall(tmp, filter="data")
            (tmp / ".complete").write_text(sha + "\n")
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return dest / inner


def resolve_root(source: str, root: str | Path | None = None) -> Path:
    if source not in SOURCES:
        raise DatasetError(f"unknown source {source!r}; known: {sorted(SOURCES)}")
    if source == "utd_mhad":
        return resolve_utd_root(root)
    if root is not None:
        p = Path(root).expanduser()
        if not p.is_dir():
            raise DatasetError(f"{source} directory not found: {p}")
        return p
    _, rel, inner = SOURCES[source]
    return unpack_archive(rel, inner, source)


# ----------------------------------------------------------------------------- trials
def trials(source: str, root: str | Path | None = None) -> tuple[list[Trial], dict[str, int]]:
    """The source's trials in file-name order, and what was skipped (reason -> count)."""
    folder = resolve_root(source, root)
    skipped: Counter = Counter()
    out: list[Trial] = []
    if source == "utd_mhad":
        from pgfa_models.formats.utd_mhad import read_utd_mhad, scan_utd_mhad

        for r in sorted(scan_utd_mhad(folder), key=lambda r: r.path.name):
            out.append(Trial(f"a{r.action + 1}_s{r.subject}_t{r.trial}", r.action, f"s{r.subject}",
                             lambda p=r.path: read_utd_mhad(p), {"subject": r.subject}))
    elif source == "nw_ucla":
        from pgfa_models.formats.nw_ucla import read_nw_ucla, scan_nw_ucla

        from pgfa_models.formats.nw_ucla import NW_UCLA_FPS

        for r in scan_nw_ucla(folder):
            out.append(Trial(r.path.stem, r.action, f"s{r.subject}", lambda p=r.path: read_nw_ucla(p),
                             {"view": r.view, "subject": r.subject}, NW_UCLA_FPS))
    elif source == "smartfallmm":
        from pgfa_models.formats.smartfallmm import SMARTFALL_FPS, read_smartfallmm, scan_smartfallmm

        for r in scan_smartfallmm(folder):
            out.append(Trial(r.path.stem, r.activity - 1, f"S{r.participant}",
                             lambda p=r.path: read_smartfallmm(p),
                             {"fall": r.is_fall, "participant": r.participant}, SMARTFALL_FPS))
    elif source == "bandai":
        from pgfa_models.formats.bvh import read_bandai_bvh, scan_bandai

        records, bad = scan_bandai(folder)
        for _, reason in bad:
            skipped[f"skipped:{reason}"] += 1
        for r in records:
            # One actor set performed every take: the "subject" is the style, so that
            # leave-groups-out never validates on a take whose style was trained on.
            out.append(Trial(r.path.stem, r.content, f"style{r.style}", lambda p=r.path: read_bandai_bvh(p),
                             {"style": r.style}))
    return out, dict(skipped)


# ----------------------------------------------------------------------------- windows
def window_config_for(rate_hz: float, window_frames: int = 45, stride_frames: int = 10) -> WindowConfig:
    """The live node's window geometry (frames at 30 Hz) as time: 45 frames = 1.5 s at any rate,
    the stride scaled to the same 1/3 s, so a 14 fps source is cut like a 30 Hz one."""
    return WindowConfig(window_frames=window_frames, window_seconds=window_frames / LIVE_RATE_HZ,
                        stride_frames=max(1, round(stride_frames * rate_hz / LIVE_RATE_HZ)),
                        max_frames=max(300, int(np.ceil(window_frames / LIVE_RATE_HZ * rate_hz)) + 1),
                        min_frames=2, stagger=False)


def trial_windows(joints: np.ndarray, wcfg: WindowConfig, rate_hz: float = LIVE_RATE_HZ):
    """(stamps, joints) of each window the live node would cut from one body's trial.

    A trial shorter than one window is one window (the live node would never classify it, but
    a dataset trial is a whole action: dropping it would drop the class).
    """
    stamps = np.arange(len(joints), dtype=np.float64) / rate_hz
    manager = WindowManager(joints.shape[1], wcfg)
    wins = [(w.stamps, w.joints) for w in cut_windows(((float(s), {0: j}) for s, j in zip(stamps, joints)),
                                                        manager)]
    if not wins and len(joints):
        wins = [(stamps, np.asarray(joints, dtype=np.float32))]
    return wins


def _hash_inputs(trials_: Sequence[Trial], extra: dict) -> str:
    h = hashlib.sha256(json.dumps(extra, sort_keys=True, default=str).encode())
    for t in trials_:
        h.update(t.name.encode() + b"\x00" + str(t.label).encode() + b"\x00")
    return h.hexdigest()[:20]


def load_windows(source: str, root: str | Path | None = None, pre: PreprocessConfig | None = None,
                 window_frames: int = 45, stride_frames: int = 10, cache: bool = True,
                 progress: bool = False, limit: int | None = None) -> WindowSet:
    """All windows of one source (cached). ``limit`` keeps the first trials (tests)."""
    pre = pre or PreprocessConfig()
    layout = SOURCES[source][0] if source in SOURCES else None
    tr, skipped = trials(source, root)
    if limit is not None:
        tr = tr[:limit]
    key = _hash_inputs(tr, {"v": CORPUS_VERSION, "source": source, "pre": to_dict(pre),
                            "w": [window_frames, stride_frames], "root": str(resolve_root(source, root))})
    path = cache_root() / "clips" / f"corpus-{source}-{key}.npz"
    if cache and path.is_file():
        try:
            return _load(path)
        except (OSError, KeyError, ValueError):
            pass
    it = tr
    if progress:
        try:
            from tqdm import tqdm

            it = tqdm(tr, desc=f"[corpus] {source}", leave=False)
        except ImportError:  # pragma: no cover
            pass
    xs, labels, trial_idx, starts, names, meta, groups = [], [], [], [], [], [], []
    rejected: Counter = Counter(skipped)
    for t in it:
        try:
            joints = t.read()
        except (ValueError, OSError) as exc:
            rejected[f"read_error:{type(exc).__name__}"] += 1
            continue
        kept = 0
        k = len(names)
        wcfg = window_config_for(t.rate_hz, window_frames, stride_frames)
        for stamps, wj in trial_windows(joints, wcfg, t.rate_hz):
            res = preprocess_clip([wj], layout, pre, 1, timestamps=stamps)
            if res.clip is None:
                rejected[str(res.reason)] += 1
                continue
            xs.append(res.clip)
            labels.append(t.label)
            trial_idx.append(k)
            starts.append(float(stamps[0]))
            kept += 1
        if kept:
            names.append(f"{source}/{t.name}")
            meta.append(dict(t.meta))
            groups += [f"{source}:{t.group}"] * kept
        else:
            rejected["trial_without_windows"] += 1
    if not xs:
        raise DatasetError(f"{source}: no usable windows (rejected: {dict(rejected)})")
    ws = WindowSet(np.stack(xs).astype(np.float32), np.asarray([source] * len(xs)),
                   np.asarray(labels, dtype=np.int64), np.asarray(trial_idx, dtype=np.int64),
                   np.asarray(groups), np.asarray(starts), names, meta, dict(rejected))
    if cache:
        _save(path, ws)
    return ws


def _save(path: Path, ws: WindowSet) -> None:
    import io

    from pgfa_models.fileio import atomic_write_bytes

    buf = io.BytesIO()
    info = json.dumps({"trial_names": ws.trial_names, "trial_meta": ws.trial_meta, "rejected": ws.rejected})
    np.savez(buf, x=ws.x, source=ws.source.astype(str), label=ws.label, trial=ws.trial,
             group=ws.group.astype(str), start=ws.start, info=np.asarray(info))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())


def _load(path: Path) -> WindowSet:
    with np.load(path, allow_pickle=False) as z:
        info = json.loads(str(z["info"]))
        return WindowSet(z["x"], z["source"], z["label"].astype(np.int64), z["trial"].astype(np.int64),
                         z["group"], z["start"], info["trial_names"], info["trial_meta"], info["rejected"])


def load_corpus(sources: Sequence[str], roots: dict[str, str] | None = None,
                pre: PreprocessConfig | None = None, window_frames: int = 45, stride_frames: int = 10,
                cache: bool = True, progress: bool = False) -> WindowSet:
    """Windows of several sources, concatenated in the given source order."""
    roots = roots or {}
    return concat([load_windows(s, roots.get(s), pre, window_frames, stride_frames, cache, progress)
                   for s in sources])


def one_window_per_trial(ws: WindowSet, rng: np.random.Generator) -> np.ndarray:
    """Indices of one random window of every trial: an epoch sees each trial once, at a new crop."""
    order = rng.permutation(len(ws))
    _, first = np.unique(ws.trial[order], return_index=True)
    return np.sort(order[first])


def trial_features(features: np.ndarray, trial: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique trials, L2-normalised mean window feature per trial): a whole-trial prediction."""
    uniq, inv = np.unique(trial, return_inverse=True)
    out = np.zeros((len(uniq), features.shape[1]), dtype=np.float64)
    np.add.at(out, inv, features)
    return uniq, l2_normalise(out).astype(np.float32)


__all__ = ["SOURCES", "Trial", "WindowSet", "concat", "load_corpus", "load_windows", "one_window_per_trial",
           "resolve_root", "trial_features", "trial_windows", "trials", "unpack_archive", "window_config_for"]
