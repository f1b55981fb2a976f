"""Datasets -> SPEC §3 clips ``(N, 3, 50, 25, M)`` through the ONE preprocessing function.

Every source goes through :func:`pgfa_models.preprocess.preprocess_clip` (the function the
ROS nodes use), with the format readers of :mod:`pgfa_models.formats`:

* UTD-MHAD ``.mat`` (Kinect v1, layout ``kinect_v1_20``): :func:`load_utd_mhad`;
* NTU RGB+D raw ``.skeleton`` (the ``num_person`` most active bodies, invalid frames
  removed by the reader): :func:`load_ntu_skeletons`;
* SMIE/PGFA preprocessed arrays ``(N, 3, 50, 25, 2)`` + labels ``.npy`` (already clips; only
  the body slots are cut to M): :func:`load_smie`;
* PKU-MMD skeleton ``.txt`` + label files (segments cut from the long sequences):
  :func:`load_pku_mmd`.

Preprocessed clips are cached in a ``.npz`` under ``<cache root>/clips`` (``$PGFA_CACHE_DIR``
or ``~/.cache/pgfa_ros``, see :func:`pgfa_models.text.cache_root`), keyed by a hash of the
input files (names + content), the preprocessing config, M and a cache version. Samples the
preprocessing rejects are counted by reason in ``ClipSet.rejected`` (never silently lost).
Samples are always ordered by file name (then segment), a stated, deterministic order.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from pgfa_models.config import to_dict
from pgfa_models.fileio import atomic_output
from pgfa_models.preprocess import PreprocessConfig, preprocess_clip
from pgfa_models.text import cache_root

CACHE_VERSION = 1
UTD_DEFAULT_ROOT = Path("..") / "shared" / "data" / "utd-mhad"


class DatasetError(ValueError):
    """A dataset path is missing or holds no usable samples."""


@dataclass
class ClipSet:
    """Preprocessed clips with 0-based dataset labels, in file-name order."""

    x: np.ndarray            # (N, 3, T, 25, M) float32
    y: np.ndarray            # (N,) int64, dataset class ids
    names: list[str]         # sample names (file stem [+ '#segment'])
    dataset: str
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> count
    rejected_names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, classes: Iterable[int]) -> "ClipSet":
        """Samples whose label is in ``classes`` (order kept)."""
        keep = np.isin(self.y, np.asarray(sorted(set(int(c) for c in classes)), dtype=np.int64))
        idx = np.flatnonzero(keep)
        return ClipSet(self.x[idx], self.y[idx], [self.names[i] for i in idx], self.dataset,
                       dict(self.rejected), list(self.rejected_names))

    def take(self, idx: Sequence[int]) -> "ClipSet":
        idx = np.asarray(idx, dtype=np.int64)
        return ClipSet(self.x[idx], self.y[idx], [self.names[i] for i in idx], self.dataset,
                       dict(self.rejected), list(self.rejected_names))


# ----------------------------------------------------------------------------- cache
def _hash_files(paths: Sequence[Path], extra: dict) -> str:
    h = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    for p in paths:
        h.update(p.name.encode() + b"\x00")
        h.update(hashlib.sha1(p.read_bytes()).digest())
    return h.hexdigest()[:20]


def _cache_file(kind: str, key: str, cache_dir: str | Path | None) -> Path:
    root = Path(cache_dir) if cache_dir is not None else cache_root() / "clips"
    return root / f"{kind}-{key}.npz"


def _load_cache(path: Path, dataset: str) -> ClipSet | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            info = json.loads(str(z["info"]))
            return ClipSet(z["x"].astype(np.float32, copy=False), z["y"].astype(np.int64),
                           list(z["names"].tolist()), dataset, info.get("rejected", {}),
                           info.get("rejected_names", []))
    except (OSError, KeyError, ValueError):
        return None


def _save_cache(path: Path, cs: ClipSet) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = json.dumps({"rejected": cs.rejected, "rejected_names": cs.rejected_names})
    with atomic_output(path, suffix=".npz") as tmp:  # .npz suffix: np.savez would append one
        np.savez(tmp, x=cs.x, y=cs.y, names=np.asarray(cs.names, dtype=str), info=np.asarray(info))


def _build(samples: Iterable[tuple[str, int, Callable[[], list[np.ndarray]]]], layout: str,
           cfg: PreprocessConfig, num_person: int, dataset: str) -> ClipSet:
    """Run preprocess_clip over ``(name, label, bodies_fn)`` samples."""
    xs, ys, names, rejected, rejected_names = [], [], [], Counter(), []
    for name, label, bodies_fn in samples:
        try:
            bodies = bodies_fn()
        except ValueError as exc:  # reader-level rejection (e.g. an NTU file without bodies)
            rejected[f"read_error:{type(exc).__name__}"] += 1
            rejected_names.append(name)
            continue
        res = preprocess_clip(bodies, layout, cfg, num_person)
        if res.clip is None:
            rejected[str(res.reason)] += 1
            rejected_names.append(name)
            continue
        xs.append(res.clip)
        ys.append(int(label))
        names.append(name)
    if not xs:
        raise DatasetError(f"{dataset}: no usable samples (rejected: {dict(rejected)})")
    return ClipSet(np.stack(xs).astype(np.float32), np.asarray(ys, dtype=np.int64), names, dataset,
                   dict(rejected), rejected_names)


def _cached(kind: str, files: Sequence[Path], cfg: PreprocessConfig, num_person: int,
            cache: bool, cache_dir, build: Callable[[], ClipSet], dataset: str) -> ClipSet:
    if not cache:
        return build()
    key = _hash_files(files, {"v": CACHE_VERSION, "kind": kind, "pre": to_dict(cfg), "M": num_person})
    path = _cache_file(kind, key, cache_dir)
    if path.is_file():
        cs = _load_cache(path, dataset)
        if cs is not None:
            return cs
    cs = build()
    _save_cache(path, cs)
    return cs


# ----------------------------------------------------------------------------- UTD-MHAD
def resolve_utd_root(root: str | Path | None = None) -> Path:
    """``root`` if given, else ``../shared/data/utd-mhad`` (from the working directory, then
    from the source checkout); a clear error when neither exists."""
    if root is not None:
        p = Path(root).expanduser()
        if not p.is_dir():
            raise DatasetError(f"UTD-MHAD directory not found: {p}")
        return p
    candidates = [Path.cwd() / UTD_DEFAULT_ROOT, Path(__file__).resolve().parents[1] / UTD_DEFAULT_ROOT]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    raise DatasetError("UTD-MHAD data not found at " + " or ".join(str(c) for c in candidates)
                       + "; pass its path (--data-root / data.root)")


def load_utd_mhad(root: str | Path | None = None, cfg: PreprocessConfig | None = None,
                  num_person: int = 1, cache: bool = True, cache_dir: str | Path | None = None,
                  limit_per_class: int | None = None) -> ClipSet:
    """All distinct UTD-MHAD sequences as clips (duplicates dropped by ``scan_utd_mhad``).

    ``limit_per_class`` keeps the first few files per class (for fast tests).
    """
    from pgfa_models.formats.utd_mhad import read_utd_mhad, scan_utd_mhad

    cfg = cfg or PreprocessConfig()
    records = scan_utd_mhad(resolve_utd_root(root))
    records = sorted(records, key=lambda r: r.path.name)
    if limit_per_class is not None:
        per: Counter = Counter()
        kept = []
        for r in records:
            if per[r.action] < limit_per_class:
                per[r.action] += 1
                kept.append(r)
        records = kept

    def build() -> ClipSet:
        samples = ((f"a{r.action + 1}_s{r.subject}_t{r.trial}", r.action,
                    (lambda p=r.path: [read_utd_mhad(p)])) for r in records)
        return _build(samples, "kinect_v1_20", cfg, num_person, "utd_mhad")

    return _cached("utd_mhad", [r.path for r in records], cfg, num_person, cache, cache_dir, build,
                   "utd_mhad")


# ----------------------------------------------------------------------------- NTU RGB+D raw
def load_ntu_skeletons(root: str | Path, cfg: PreprocessConfig | None = None, num_person: int = 2,
                       num_classes: int | None = None, cache: bool = True,
                       cache_dir: str | Path | None = None) -> ClipSet:
    """NTU RGB+D ``.skeleton`` files under ``root`` (recursive); labels from ``AXXX`` in the
    name. The reader keeps the ``num_person`` most active bodies and drops invalid frames.
    ``num_classes=60`` keeps NTU-60 only."""
    from pgfa_models.formats.ntu_skeleton import parse_ntu_name, read_ntu_skeleton

    cfg = cfg or PreprocessConfig()
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"NTU skeleton directory not found: {root}")
    files = []
    for p in sorted(root.rglob("*.skeleton"), key=lambda q: q.name):
        try:
            a = parse_ntu_name(p.name)["action"] - 1
        except ValueError:
            continue
        if num_classes is None or a < num_classes:
            files.append((p, a))
    if not files:
        raise DatasetError(f"no NTU RGB+D .skeleton files in {root}")

    def build() -> ClipSet:
        samples = ((p.stem, a, (lambda p=p: read_ntu_skeleton(p, max_bodies=num_person).as_clip_bodies()))
                   for p, a in files)
        return _build(samples, "ntu_25", cfg, num_person, "ntu120" if num_classes != 60 else "ntu60")

    ds = "ntu60" if num_classes == 60 else "ntu120"
    return _cached(ds, [p for p, _ in files], cfg, num_person, cache, cache_dir, build, ds)


# ----------------------------------------------------------------------------- SMIE arrays
def load_smie(data_path: str | Path, label_path: str | Path, num_person: int = 2,
              dataset: str = "ntu60") -> ClipSet:
    """SMIE/PGFA preprocessed arrays (already T = 50 clips); M is cut to ``num_person``."""
    from pgfa_models.formats.smie_npy import load_smie_arrays

    data, labels = load_smie_arrays(data_path, label_path, mmap=True, frames=50, num_person=None)
    if data.shape[-1] < num_person:
        pad = np.zeros(data.shape[:-1] + (num_person - data.shape[-1],), dtype=np.float32)
        x = np.concatenate([np.asarray(data, dtype=np.float32), pad], axis=-1)
    else:
        x = np.ascontiguousarray(data[..., :num_person], dtype=np.float32)
    stem = Path(data_path).stem
    names = [f"{stem}#{i:06d}" for i in range(x.shape[0])]
    return ClipSet(x, np.asarray(labels, dtype=np.int64), names, dataset)


# ----------------------------------------------------------------------------- PKU-MMD
def load_pku_mmd(skeleton_dir: str | Path, label_dir: str | Path, cfg: PreprocessConfig | None = None,
                 num_person: int = 2, cache: bool = True, cache_dir: str | Path | None = None) -> ClipSet:
    """PKU-MMD (v1): every ``<video>.txt`` in ``skeleton_dir`` with a label file of the same
    name in ``label_dir``; each labelled segment becomes one clip (bodies in file order; an
    all-zero second body is rejected by preprocessing and its slot stays zero)."""
    from pgfa_models.formats.pku_mmd import pku_segments, read_pku_labels, read_pku_skeleton

    cfg = cfg or PreprocessConfig()
    skeleton_dir, label_dir = Path(skeleton_dir), Path(label_dir)
    for d in (skeleton_dir, label_dir):
        if not d.is_dir():
            raise DatasetError(f"PKU-MMD directory not found: {d}")
    pairs = [(p, label_dir / p.name) for p in sorted(skeleton_dir.glob("*.txt"), key=lambda q: q.name)
             if (label_dir / p.name).is_file()]
    if not pairs:
        raise DatasetError(f"no PKU-MMD skeleton files with matching label files in {skeleton_dir} / {label_dir}")

    def samples():
        for sp, lp in pairs:
            segs = pku_segments(read_pku_skeleton(sp), read_pku_labels(lp))
            for i, (clip, label0) in enumerate(segs):
                yield f"{sp.stem}#{i:03d}", label0, (lambda c=clip: [b for b in c])

    def build() -> ClipSet:
        return _build(samples(), "ntu_25", cfg, num_person, "pku_mmd")

    files = [f for pair in pairs for f in pair]
    return _cached("pku_mmd", files, cfg, num_person, cache, cache_dir, build, "pku_mmd")


# ----------------------------------------------------------------------------- by name
SMIE_SOURCE = "smie_preprocessed"  # checkpoint marker: clips did not go through preprocess_clip


def smie_paths(root: str | Path | None) -> tuple[str, str] | None:
    """``(data.npy, label.npy)`` when ``root`` names SMIE arrays (``'data.npy:label.npy'``)."""
    r = "" if root is None else str(root)
    if r.endswith(".npy") and ":" in r:
        d, lab = r.split(":", 1)
        return d, lab
    return None


def load_dataset(dataset: str, root: str | Path | None = None, cfg: PreprocessConfig | None = None,
                 num_person: int = 1, cache: bool = True, **kw) -> ClipSet:
    """Load a dataset by the name used in split names. UTD-MHAD needs only ``root`` (default
    ``../shared/data/utd-mhad``); NTU raw needs ``root`` (a folder of .skeleton files);
    PKU-MMD needs ``root`` with ``skeleton/`` and ``label/`` sub-folders; SMIE arrays are
    given as ``root = 'path/data.npy:path/label.npy'``."""
    if dataset == "utd_mhad":
        return load_utd_mhad(root, cfg, num_person, cache, **kw)
    if root is None:
        raise DatasetError(f"dataset {dataset!r} needs a data path (--data-root / data.root)")
    smie = smie_paths(root)
    if smie is not None:
        # SMIE arrays come preprocessed by SMIE's own pipeline and bypass preprocess_clip: an
        # option that differs from the defaults could not be applied, so it is refused rather
        # than recorded in a checkpoint as if it had been (issue 13).
        changed = sorted(k for k, v in to_dict(cfg or PreprocessConfig()).items()
                         if to_dict(PreprocessConfig())[k] != v)
        if changed:
            raise DatasetError(f"SMIE .npy arrays are already preprocessed and bypass preprocess_clip; "
                               f"the preprocessing option(s) {changed} cannot be applied to them")
        return load_smie(smie[0], smie[1], num_person, dataset)
    if dataset in ("ntu60", "ntu120"):
        return load_ntu_skeletons(root, cfg, num_person, 60 if dataset == "ntu60" else None, cache, **kw)
    if dataset == "pku_mmd":
        return load_pku_mmd(Path(root) / "skeleton", Path(root) / "label", cfg, num_person, cache, **kw)
    raise DatasetError(f"unknown dataset {dataset!r}; known: utd_mhad, ntu60, ntu120, pku_mmd")


def split_clips(clips: ClipSet, seen: Sequence[int], unseen: Sequence[int]) -> tuple[ClipSet, ClipSet]:
    """(seen-class clips for training, unseen-class clips for zero-shot testing)."""
    overlap = set(seen) & set(unseen)
    if overlap:
        raise DatasetError(f"seen and unseen classes overlap: {sorted(overlap)}")
    return clips.subset(seen), clips.subset(unseen)


def preprocess_config(data: dict | PreprocessConfig | None) -> PreprocessConfig:
    if isinstance(data, PreprocessConfig):
        return data
    from pgfa_models.config import from_dict

    return from_dict(PreprocessConfig, data or {}, "preprocess")


__all__ = ["ClipSet", "DatasetError", "load_utd_mhad", "load_ntu_skeletons", "load_smie",
           "load_pku_mmd", "load_dataset", "split_clips", "resolve_utd_root", "preprocess_config",
           "dataclasses"]
