"""Readers for PKU-MMD (v1) skeleton and label files.

- Skeleton file: one ``.txt`` per long video; each non-blank line is one frame of 150
  whitespace-separated floats = 2 bodies x 25 joints x (x, y, z), Kinect v2 joint order
  (= NTU-25), metres. When only one person is present the second body is zeros. A line of
  75 floats (a single body) is accepted as well, its second body set to zeros.
- Label file: one line per action instance, ``label,start,end,confidence`` with the action
  label 1-based (1..51) and start/end frame indices into the skeleton file.

Segments are cut as ``skel[start:end]`` (0-based frame indices, end exclusive, the
convention of the common PKU-MMD preprocessing scripts), clamped to the sequence length.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

NUM_CLASSES = 51
NUM_JOINTS = 25
MAX_FRAMES = 200_000

__all__ = [
    "PkuFormatError",
    "PkuSegment",
    "pku_segments",
    "read_pku_labels",
    "read_pku_skeleton",
]


class PkuFormatError(ValueError):
    """A PKU-MMD skeleton or label file is malformed."""


@dataclass(frozen=True)
class PkuSegment:
    """One labelled action instance: 0-based class, frame range, annotation confidence."""

    label0: int
    start: int
    end: int
    confidence: int | None = None


def read_pku_skeleton(path: str | Path, max_frames: int = MAX_FRAMES) -> np.ndarray:
    """Read a PKU-MMD skeleton file into float32 ``(T, 2, 25, 3)``.

    Raises :class:`PkuFormatError` naming the file and line on a bad value count or
    non-numeric value, on an empty file, or on more than ``max_frames`` frames.
    """
    path = Path(path)
    frames: list[np.ndarray] = []
    try:
        fh = open(path, "r", encoding="ascii", errors="replace")
    except OSError as exc:
        raise PkuFormatError(f"cannot read PKU-MMD skeleton file {path}: {exc}") from None
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            tokens = raw.split()
            if not tokens:
                continue
            n = len(tokens)
            if n not in (150, 75):
                raise PkuFormatError(
                    f"{path.name}: line {lineno}: expected 150 values (2 bodies x 25 joints x "
                    f"xyz) or 75 (one body), got {n}"
                )
            if len(frames) >= max_frames:
                raise PkuFormatError(f"{path.name}: more than {max_frames} frames; refusing")
            try:
                values = np.array([float(t) for t in tokens], dtype=np.float32)
            except ValueError:
                raise PkuFormatError(f"{path.name}: line {lineno}: non-numeric value") from None
            if n == 75:
                values = np.concatenate([values, np.zeros(75, dtype=np.float32)])
            frames.append(values)
    if not frames:
        raise PkuFormatError(f"{path.name}: no frames (empty skeleton file)")
    return np.stack(frames).reshape(len(frames), 2, NUM_JOINTS, 3)


def read_pku_labels(path: str | Path) -> list[PkuSegment]:
    """Read a PKU-MMD label file (``label,start,end[,confidence]`` per line, label 1..51).

    Blank lines are skipped; fields may be separated by commas and/or whitespace.
    Raises :class:`PkuFormatError` naming the file and line on a malformed line, a label
    outside 1..51, a negative start or end < start.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise PkuFormatError(f"cannot read PKU-MMD label file {path}: {exc}") from None
    segments: list[PkuSegment] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        fields = [f for f in raw.replace(",", " ").split() if f]
        if not fields:
            continue
        if len(fields) not in (3, 4):
            raise PkuFormatError(
                f"{path.name}: line {lineno}: expected 'label,start,end,confidence', "
                f"got {len(fields)} fields: {raw.strip()!r}"
            )
        try:
            nums = [int(f) for f in fields]
        except ValueError:
            try:  # tolerate '12.0'-style integers
                floats = [float(f) for f in fields]
            except ValueError:
                raise PkuFormatError(
                    f"{path.name}: line {lineno}: non-numeric field in {raw.strip()!r}"
                ) from None
            if not all(np.isfinite(x) and float(x).is_integer() for x in floats):
                raise PkuFormatError(
                    f"{path.name}: line {lineno}: non-integer field in {raw.strip()!r}"
                )
            nums = [int(x) for x in floats]
        label, start, end = nums[:3]
        conf = nums[3] if len(nums) == 4 else None
        if not 1 <= label <= NUM_CLASSES:
            raise PkuFormatError(
                f"{path.name}: line {lineno}: label {label} outside 1..{NUM_CLASSES}"
            )
        if start < 0 or end < start:
            raise PkuFormatError(
                f"{path.name}: line {lineno}: bad frame range start={start} end={end}"
            )
        segments.append(PkuSegment(label0=label - 1, start=start, end=end, confidence=conf))
    return segments


def pku_segments(
    skel: np.ndarray, labels: list[PkuSegment], min_frames: int = 1
) -> list[tuple[np.ndarray, int]]:
    """Cut a long ``(T, 2, 25, 3)`` sequence into action clips ``((2, t, 25, 3), label0)``.

    Each clip is ``skel[start:end]`` with ``end`` clamped to T; a segment starting at or
    beyond T raises :class:`PkuFormatError` (label file and skeleton file do not match).
    Segments shorter than ``min_frames`` after clamping are skipped.
    """
    skel = np.asarray(skel)
    if skel.ndim != 4 or skel.shape[2:] != (NUM_JOINTS, 3):
        raise PkuFormatError(f"skeleton must be (T, M, 25, 3), got shape {skel.shape}")
    t_total = skel.shape[0]
    out: list[tuple[np.ndarray, int]] = []
    for i, seg in enumerate(labels):
        if seg.start >= t_total:
            raise PkuFormatError(
                f"segment {i} (label0 {seg.label0}) starts at frame {seg.start} but the "
                f"skeleton has only {t_total} frames"
            )
        end = min(seg.end, t_total)
        if end - seg.start < min_frames:
            continue
        clip = np.ascontiguousarray(skel[seg.start:end].transpose(1, 0, 2, 3), dtype=np.float32)
        out.append((clip, seg.label0))
    return out
