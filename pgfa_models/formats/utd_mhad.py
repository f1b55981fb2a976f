"""UTD-MHAD skeleton files (Kinect v1, layout ``kinect_v1_20``): reader and directory scan.

The shared copy has real-world quirks (a space before ``.mat``, byte-identical duplicate
trials), so names are parsed with a tolerant pattern and exact duplicates are dropped; a
duplicate left in would leak the same sequence into both train and test splits.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

# The dataset's own labels for a1..a27; index = 0-based class id.
UTD_MHAD_CLASSES: tuple[str, ...] = (
    "right arm swipe to the left", "right arm swipe to the right", "right hand wave",
    "two hand front clap", "right arm throw", "cross arms in the chest", "basketball shoot",
    "right hand draw x", "right hand draw circle (clockwise)",
    "right hand draw circle (counter clockwise)", "right hand draw triangle",
    "bowling (right hand)", "front boxing", "baseball swing from right",
    "tennis right hand forehand swing", "arm curl (two arms)", "tennis serve", "two hand push",
    "right hand knock on door", "right hand catch an object", "right hand pick up and throw",
    "jogging in place", "walking in place", "sit to stand", "stand to sit",
    "forward lunge (left foot forward)", "squat (two arms stretch out)",
)

# a<action>_s<subject>_t<trial>_skeleton.mat, tolerating whitespace before the extension.
_NAME_RE = re.compile(r"^a(\d+)_s(\d+)_t(\d+)_skeleton\s*\.mat$", re.IGNORECASE)


@dataclass(frozen=True)
class UtdRecord:
    """One sequence: ``action`` is the 0-based class id (a1 -> 0); subject/trial keep the
    dataset's 1-based ids because they are names, not indices."""

    action: int
    subject: int
    trial: int
    path: Path


def read_utd_mhad(path: str | Path) -> np.ndarray:
    """Read one ``*_skeleton.mat`` file as float32 (T, 20, 3) in Kinect v1 joint order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"UTD-MHAD skeleton file not found: {path}")
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises several types for truncated/non-MAT files
        raise ValueError(f"{path}: not a readable MATLAB file ({exc})") from exc
    if "d_skel" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{path}: no variable 'd_skel' (found {keys})")
    d = np.asarray(mat["d_skel"])
    if d.ndim != 3 or d.shape[:2] != (20, 3) or d.shape[2] == 0 or not np.issubdtype(d.dtype, np.number):
        raise ValueError(f"{path}: 'd_skel' must be a numeric 20x3xT array, got {d.shape} {d.dtype}")
    return np.ascontiguousarray(d.transpose(2, 0, 1), dtype=np.float32)


def _digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def scan_utd_mhad(root: str | Path) -> list[UtdRecord]:
    """List the distinct sequences under ``root`` sorted by (action, subject, trial, name).

    Files whose bytes equal an earlier file in that order are dropped (only same-size files
    are hashed, so the scan stays cheap).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"UTD-MHAD directory not found: {root}")
    found = []
    for p in root.iterdir():
        m = _NAME_RE.match(p.name)
        if m and p.is_file():
            a, s, t = (int(g) for g in m.groups())
            if a < 1:
                continue
            found.append(UtdRecord(a - 1, s, t, p))
    if not found:
        raise ValueError(f"no UTD-MHAD skeleton files (a<N>_s<N>_t<N>_skeleton.mat) in {root}")
    found.sort(key=lambda r: (r.action, r.subject, r.trial, r.path.name))
    by_size: dict[int, list[UtdRecord]] = {}
    for r in found:
        by_size.setdefault(r.path.stat().st_size, []).append(r)
    dropped: set[Path] = set()
    for group in by_size.values():
        if len(group) > 1:
            seen: set[str] = set()
            for r in group:  # group keeps sorted order, so the first copy survives
                h = _digest(r.path)
                if h in seen:
                    dropped.add(r.path)
                seen.add(h)
    return [r for r in found if r.path not in dropped]
