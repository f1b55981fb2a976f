"""Reader for NTU RGB+D 60/120 raw ``.skeleton`` text files (Kinect v2, 25 joints).

File layout (one value group per line, whitespace separated)::

    <frame count>
    per frame:
        <body count>
        per body:
            bodyID clipedEdges handLeftConfidence handLeftState handRightConfidence
                handRightState isResticted leanX leanY trackingState        (10 values)
            <joint count>                                                    (25)
            per joint:
                x y z depthX depthY colorX colorY orientationW orientationX
                    orientationY orientationZ trackingState                 (12 values)

Bodies are tracked across frames by ``bodyID``. :func:`read_ntu_skeleton` keeps the
``max_bodies`` most active bodies (largest sum of per-joint, per-axis variance over the
frames where the body is present), drops frames where none of them is present (or all
their joints are zero), and returns camera-space xyz in metres, NTU-25 joint order.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NUM_JOINTS = 25
BODY_INFO_VALUES = 10
JOINT_VALUES = 12
MAX_FRAMES = 100_000
MAX_BODIES_PER_FRAME = 10

_NAME_RE = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")

__all__ = [
    "NtuSequence",
    "NtuSkeletonError",
    "NtuEmptySkeletonError",
    "parse_ntu_name",
    "read_ntu_skeleton",
]


class NtuSkeletonError(ValueError):
    """A ``.skeleton`` file is malformed, truncated or out of bounds."""


class NtuEmptySkeletonError(NtuSkeletonError):
    """A well-formed ``.skeleton`` file that holds no body in any frame (NTU has some)."""


@dataclass
class NtuSequence:
    """One NTU sample.

    bodies:       float32 (M, T, 25, 3), M = number of kept bodies (1..max_bodies), sorted by
                  activity (most active first); zeros where a body is absent in a kept frame.
    body_ids:     the kept bodies' Kinect ``bodyID`` values, same order as ``bodies``.
    tracking:     int8 (M, T, 25) per-joint Kinect trackingState (0 not tracked,
                  1 inferred, 2 tracked; 0 where the body is absent).
    frame_index:  int64 (T,) original 0-based frame index of each kept frame.
    num_frames_raw: frame count stated in the file.
    motion:       activity score of each kept body (same order as ``bodies``).
    num_bodies_total: number of distinct bodies in the whole file.
    label:        0-based action class from ``AXXX`` in the file name, or None.
    name:         file name without extension.
    """

    bodies: np.ndarray
    body_ids: list[int]
    label: int | None
    name: str
    tracking: np.ndarray
    frame_index: np.ndarray
    num_frames_raw: int
    motion: list[float] = field(default_factory=list)
    num_bodies_total: int = 0

    @property
    def num_frames(self) -> int:
        return int(self.bodies.shape[1])

    def as_clip_bodies(self) -> list[np.ndarray]:
        """The bodies as a list of (T, 25, 3) arrays, the input of ``preprocess_clip``."""
        return [b for b in self.bodies]


def parse_ntu_name(name: str | Path) -> dict[str, int]:
    """Parse ``SsssCcccPpppRrrrAaaa[.skeleton]`` (a path or bare name).

    Returns 1-based values as written: ``setup, camera, performer, replication, action``.
    Raises ``ValueError`` when the name does not follow the pattern.
    """
    stem = Path(str(name)).name
    m = _NAME_RE.match(stem)
    if m is None:
        raise ValueError(
            f"not an NTU RGB+D sample name: {stem!r} (expected SsssCcccPpppRrrrAaaa, "
            "e.g. S001C002P003R002A013.skeleton)"
        )
    setup, camera, performer, replication, action = (int(g) for g in m.groups())
    return {
        "setup": setup,
        "camera": camera,
        "performer": performer,
        "replication": replication,
        "action": action,
    }


class _Lines:
    """Non-blank lines of a text file with 1-based line numbers, for error messages."""

    def __init__(self, path: Path, fh):
        self.path = path
        self._fh = fh
        self.lineno = 0

    def next_tokens(self, what: str) -> list[str]:
        for raw in self._fh:
            self.lineno += 1
            tokens = raw.split()
            if tokens:
                return tokens
        raise NtuSkeletonError(
            f"{self.path.name}: line {self.lineno + 1}: unexpected end of file "
            f"(truncated?) while reading {what}"
        )

    def error(self, msg: str) -> NtuSkeletonError:
        return NtuSkeletonError(f"{self.path.name}: line {self.lineno}: {msg}")

    def read_count(self, what: str, limit: int) -> int:
        tokens = self.next_tokens(what)
        if len(tokens) != 1:
            raise self.error(f"expected a single integer ({what}), got {len(tokens)} values")
        try:
            n = int(tokens[0])
        except ValueError:
            raise self.error(f"expected an integer ({what}), got {tokens[0]!r}") from None
        if n < 0 or n > limit:
            raise self.error(f"{what} {n} out of range 0..{limit}")
        return n

    def rest_nonblank(self) -> bool:
        for raw in self._fh:
            self.lineno += 1
            if raw.strip():
                return True
        return False


def read_ntu_skeleton(
    path: str | Path,
    max_bodies: int = 2,
    max_frames: int = MAX_FRAMES,
    max_bodies_per_frame: int = MAX_BODIES_PER_FRAME,
) -> NtuSequence:
    """Read one NTU RGB+D ``.skeleton`` file.

    Keeps the ``max_bodies`` most active bodies (sum over joints and axes of the variance
    over time, computed on the frames where the body is present), removes frames in which
    none of the kept bodies is present or all their joints are zero.

    Raises :class:`NtuSkeletonError` (a ``ValueError``) naming the file and line on
    malformed or truncated input or on counts beyond ``max_frames`` /
    ``max_bodies_per_frame``; :class:`NtuEmptySkeletonError` when no frame holds a body.
    """
    path = Path(path)
    if max_bodies < 1:
        raise ValueError(f"max_bodies must be >= 1, got {max_bodies}")
    try:
        label = parse_ntu_name(path.name)["action"] - 1
    except ValueError:
        label = None

    # track key -> (frame indices, joints list, tracking list); key = (bodyID, k) where k
    # disambiguates a bodyID repeated within one frame.
    tracks: dict[tuple[int, int], tuple[list[int], list[np.ndarray], list[np.ndarray]]] = {}
    with open(path, "r", encoding="ascii", errors="replace") as fh:
        lines = _Lines(path, fh)
        num_frames = lines.read_count("frame count", max_frames)
        for f in range(num_frames):
            nb = lines.read_count(f"body count of frame {f}", max_bodies_per_frame)
            seen_in_frame: dict[int, int] = {}
            for b in range(nb):
                where = f"body {b} of frame {f}"
                info = lines.next_tokens(f"body info line of {where}")
                if len(info) != BODY_INFO_VALUES:
                    raise lines.error(
                        f"body info line of {where}: expected {BODY_INFO_VALUES} values, "
                        f"got {len(info)}"
                    )
                try:
                    body_id = int(info[0])
                except ValueError:
                    try:
                        body_id = int(float(info[0]))
                    except ValueError:
                        raise lines.error(f"bad bodyID {info[0]!r} in {where}") from None
                nj = lines.read_count(f"joint count of {where}", NUM_JOINTS)
                if nj != NUM_JOINTS:
                    raise lines.error(f"{where}: expected {NUM_JOINTS} joints, got {nj}")
                joints = np.empty((NUM_JOINTS, 3), dtype=np.float32)
                tstate = np.empty(NUM_JOINTS, dtype=np.int8)
                for j in range(NUM_JOINTS):
                    tok = lines.next_tokens(f"joint {j} of {where}")
                    if len(tok) != JOINT_VALUES:
                        raise lines.error(
                            f"joint {j} of {where}: expected {JOINT_VALUES} values, got {len(tok)}"
                        )
                    try:
                        joints[j, 0] = float(tok[0])
                        joints[j, 1] = float(tok[1])
                        joints[j, 2] = float(tok[2])
                        tstate[j] = int(float(tok[11]))
                    except (ValueError, OverflowError):
                        raise lines.error(f"joint {j} of {where}: non-numeric value") from None
                k = seen_in_frame.get(body_id, 0)
                seen_in_frame[body_id] = k + 1
                fr, js, ts = tracks.setdefault((body_id, k), ([], [], []))
                fr.append(f)
                js.append(joints)
                ts.append(tstate)
        if lines.rest_nonblank():
            raise lines.error(f"unexpected content after the last of {num_frames} frames")

    if not tracks:
        raise NtuEmptySkeletonError(f"{path.name}: no body in any of {num_frames} frames")

    # Activity of each track: sum over joints and axes of the variance over present frames.
    # Frames where the body is all zeros do not count as present.
    scored = []
    for order, (key, (fr, js, ts)) in enumerate(tracks.items()):
        arr = np.stack(js)  # (n, 25, 3)
        present = np.any(arr != 0, axis=(1, 2)) & np.all(np.isfinite(arr), axis=(1, 2))
        if present.sum() >= 2:
            motion = float(np.var(arr[present].astype(np.float64), axis=0).sum())
        else:
            motion = 0.0
        scored.append((motion, int(present.sum()), order, key))
    # Most active first; ties: longer presence, then first appearance.
    scored.sort(key=lambda s: (-s[0], -s[1], s[2]))
    kept = scored[:max_bodies]

    full = np.zeros((len(kept), num_frames, NUM_JOINTS, 3), dtype=np.float32)
    track_state = np.zeros((len(kept), num_frames, NUM_JOINTS), dtype=np.int8)
    for m, (_, _, _, key) in enumerate(kept):
        fr, js, ts = tracks[key]
        full[m, fr] = np.stack(js)
        track_state[m, fr] = np.stack(ts)

    valid = np.any(full != 0, axis=(0, 2, 3))
    frame_index = np.nonzero(valid)[0].astype(np.int64)
    if frame_index.size == 0:
        raise NtuEmptySkeletonError(f"{path.name}: every frame of the kept bodies is all zeros")
    return NtuSequence(
        bodies=np.ascontiguousarray(full[:, valid]),
        body_ids=[key[0] for (_, _, _, key) in kept],
        label=label,
        name=path.name.split(".")[0],
        tracking=np.ascontiguousarray(track_state[:, valid]),
        frame_index=frame_index,
        num_frames_raw=num_frames,
        motion=[s[0] for s in kept],
        num_bodies_total=len(tracks),
    )
