"""SmartFallMM skeleton CSVs (Azure Kinect body tracking, layout ``azure_kinect_32``).

``S<participant>A<activity>T<trial>.csv``: one row per frame, no header, 96 values = the 32
Azure Kinect Body Tracking joints x (x, y, z) in millimetres, depth-camera axes (x right, y
down, z forward). The reader converts millimetres to metres and nothing else, so the file is in
exactly the form the Azure Kinect ROS driver publishes and the one ``azure_kinect_32`` layout
(axes (-x, -y, z)) serves both, checked on these recordings in the tests.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MM_TO_M = 0.001
SMARTFALL_FPS = 30.0  # no timestamps in the files

# Activity ids 1..14 -> names (the dataset's README); index = id - 1.
SMARTFALL_ACTIVITIES: tuple[str, ...] = (
    "drinking water", "pick up object", "put on and take off jacket", "stepping up",
    "sweeping floor", "washing hands", "waving hand", "walking", "sit / stand",
    "back fall", "front fall", "left fall", "right fall", "rotate fall",
)
FALL_ACTIVITIES = frozenset(range(10, 15))

_NAME_RE = re.compile(r"^S(\d+)A(\d+)T(\d+)\.csv$", re.IGNORECASE)


@dataclass(frozen=True)
class SmartFallRecord:
    """One trial; ``activity`` keeps the dataset's 1-based id (1-14), ``is_fall`` is 10-14."""

    participant: int
    activity: int
    trial: int
    is_fall: bool
    path: Path

    @property
    def activity_name(self) -> str:
        return SMARTFALL_ACTIVITIES[self.activity - 1]


def read_smartfallmm(path: str | Path, unit_scale: float = MM_TO_M) -> np.ndarray:
    """Read one trial as float32 (T, 32, 3) in metres, Azure depth-camera axes.

    Blank or non-numeric cells become NaN (a missing joint, repaired or rejected by
    preprocessing); a row with other than 96 values, an empty file or a file without any
    finite value is an error naming the file and the row.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SmartFallMM skeleton file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a text CSV file ({exc})") from None
    rows = [ln for ln in text.splitlines() if ln.strip()]
    if not rows:
        raise ValueError(f"{path}: empty file (no frames)")
    data = np.full((len(rows), 96), np.nan, dtype=np.float64)
    for r, line in enumerate(rows):
        cells = line.split(",")
        if len(cells) == 97 and not cells[-1].strip():
            cells.pop()  # a trailing comma
        if len(cells) != 96:
            raise ValueError(f"{path}: row {r + 1} has {len(cells)} values, expected 96 "
                             "(32 joints x 3)")
        try:
            data[r] = np.array(cells, dtype=np.float64)
        except ValueError:  # blank / non-numeric cells: missing, the rest kept
            for c, cell in enumerate(cells):
                try:
                    data[r, c] = float(cell)
                except ValueError:
                    pass
    data[~np.isfinite(data)] = np.nan
    if not np.isfinite(data).any():
        raise ValueError(f"{path}: no finite joint coordinates")
    return np.ascontiguousarray((data * unit_scale).reshape(-1, 32, 3), dtype=np.float32)


def scan_smartfallmm(root: str | Path) -> list[SmartFallRecord]:
    """List the trials under ``root`` (the ``skeleton`` folder), sorted by
    (participant, activity, trial). Names only; files with activity ids outside 1-14 are
    ignored (not this dataset)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"SmartFallMM directory not found: {root}")
    found = []
    for p in root.iterdir():
        m = _NAME_RE.match(p.name)
        if m and p.is_file():
            s, a, t = (int(g) for g in m.groups())
            if 1 <= a <= len(SMARTFALL_ACTIVITIES):
                found.append(SmartFallRecord(s, a, t, a in FALL_ACTIVITIES, p))
    if not found:
        raise ValueError(f"no SmartFallMM skeleton files (S<N>A<N>T<N>.csv) in {root}")
    found.sort(key=lambda r: (r.participant, r.activity, r.trial))
    return found
