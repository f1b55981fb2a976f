"""NW-UCLA Multiview Action 3D skeletons (Kinect v1, layout ``kinect_v1_sdk_20``).

The community copy (``all_sqe``) is one JSON per sequence,
``a<action>_s<subject>_e<episode>_v<view>.json`` = ``{"file_name", "skeletons": [T][20][3],
"label"}``, in the Kinect for Windows SDK 1.x joint order (hip centre first), which is *not*
UTD-MHAD's order: reading it with the ``kinect_v1_20`` table would put the head at the spine
base. Some sequences are very short (a few have a single frame); the reader returns them as
they are and preprocessing rejects the ones too short to use, with a counted reason.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Action ids in file names (a01..a12, a07 and a10 unused) in the order of the JSON "label"
# 1..10; index = 0-based class id.
NW_UCLA_ACTION_IDS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)
NW_UCLA_CLASSES: tuple[str, ...] = (
    "pick up with one hand", "pick up with two hands", "drop trash", "walk around",
    "sit down", "stand up", "donning", "doffing", "throw", "carry",
)
# No timestamps in the files, and *not* the 30 fps of a Kinect v1. On the walking (a04) sequences
# one step takes a median 8 frames (ankle separation; 42 sequences) and one stride of a foot 14
# frames (ankle speed; 73 ankles): 3.75-4.3 steps/s at 30 fps, a sprint's cadence, not a walk's.
# The same two estimators give 1.76 steps/s on the Bandai walks at their known 30 fps. At a
# typical 1.8 steps/s this copy runs at 12.6-14.4 frames/s (11-16 for 1.6-2.2 steps/s); the
# walkers' speed, 1.5 m/s if 30 fps, becomes 0.7 m/s, plausible in a small room. Estimate: 14 fps.
NW_UCLA_FPS = 14.0

_NAME_RE = re.compile(r"^a(\d+)_s(\d+)_e(\d+)_v(\d+)\.json$", re.IGNORECASE)


@dataclass(frozen=True)
class NwUclaRecord:
    """One sequence: ``action`` is the 0-based class id (label - 1); ``action_id`` the file
    name's a<NN>; subject, episode and view keep the dataset's ids (views 1-3)."""

    action: int
    action_id: int
    subject: int
    episode: int
    view: int
    path: Path


def _class_of(action_id: int) -> int | None:
    try:
        return NW_UCLA_ACTION_IDS.index(action_id)
    except ValueError:
        return None


def read_nw_ucla(path: str | Path) -> np.ndarray:
    """Read one sequence as float32 (T, 20, 3) in Kinect v1 SDK joint order (metres, y up).

    T may be as small as 1 (real files are that short). A file whose ``label`` contradicts the
    action id in its name is an error, since one of the two labels would be wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NW-UCLA skeleton file not found: {path}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(doc, dict) or "skeletons" not in doc:
        raise ValueError(f"{path}: no 'skeletons' key (expected the all_sqe JSON form)")
    try:
        x = np.asarray(doc["skeletons"], dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: 'skeletons' is not a numeric [T][20][3] array ({exc})") from None
    if x.ndim != 3 or x.shape[1:] != (20, 3) or x.shape[0] == 0:
        raise ValueError(f"{path}: 'skeletons' must be [T][20][3] with T >= 1, got shape {x.shape}")
    m = _NAME_RE.match(path.name)
    label = doc.get("label")
    if m and label is not None:
        cls = _class_of(int(m.group(1)))
        if cls is not None and label != cls + 1:
            raise ValueError(f"{path}: label {label!r} contradicts action a{m.group(1)} "
                             f"(expected label {cls + 1})")
    return np.ascontiguousarray(x)


def scan_nw_ucla(root: str | Path) -> list[NwUclaRecord]:
    """List the sequences under ``root`` (the ``all_sqe`` folder), sorted by
    (action, subject, episode, view). Names only: no file is opened, so a short or broken
    sequence is found when read, not here. Files with an unknown action id are ignored."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"NW-UCLA directory not found: {root}")
    found = []
    for p in root.iterdir():
        m = _NAME_RE.match(p.name)
        if m and p.is_file():
            a, s, e, v = (int(g) for g in m.groups())
            cls = _class_of(a)
            if cls is not None:
                found.append(NwUclaRecord(cls, a, s, e, v, p))
    if not found:
        raise ValueError(f"no NW-UCLA skeleton files (a<NN>_s<NN>_e<NN>_v<NN>.json) in {root}")
    found.sort(key=lambda r: (r.action, r.subject, r.episode, r.view))
    return found
