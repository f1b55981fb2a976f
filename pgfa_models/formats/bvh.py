"""BVH motion capture: a general parser, vectorised forward kinematics, and the Bandai Namco set.

BVH stores a joint hierarchy (``OFFSET`` = translation from the parent, ``CHANNELS`` = which
per-frame values a joint has, in which order) and one row of channel values per frame. Joint
positions are not in the file; they come from forward kinematics (FK):

    world_j = world_parent @ [R_j | t_j],  R_j = R_c1(v1) @ R_c2(v2) @ R_c3(v3)

with the rotation channels multiplied in the order the file lists them (``Zrotation
Xrotation Yrotation`` -> Rz @ Rx @ Ry, angles in degrees) and ``t_j`` the joint's OFFSET,
except on the axes for which the joint has a position channel: there the channel value is the
translation (it replaces the offset). Exporters that write 6 channels for every joint, as the
Bandai Namco files do, put the offset itself in those channels, so adding them would double every
bone; the test checks on the real files that FK bone lengths equal the offsets.

Units are the file's (the Bandai files are centimetres, y up); ``unit_scale`` converts to
metres and defaults to cm -> m.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..layouts import BANDAI_BVH_JOINTS

CM_TO_M = 0.01

_ROT = {"Xrotation": 0, "Yrotation": 1, "Zrotation": 2}
_POS = {"Xposition": 0, "Yposition": 1, "Zposition": 2}


@dataclass(frozen=True)
class BvhJoint:
    """One joint (or ``End Site``, which has no channels) of the hierarchy, in file order."""

    name: str
    parent: int  # index into the joint tuple, -1 for the root
    offset: tuple[float, float, float]
    channels: tuple[str, ...]
    first_channel: int  # column of its first channel in the MOTION rows
    end_site: bool = False


@dataclass(frozen=True, eq=False)
class Bvh:
    """A parsed BVH file: hierarchy, frame time and the raw (T, C) channel values."""

    joints: tuple[BvhJoint, ...]
    frame_time: float
    motion: np.ndarray = field(repr=False)  # (T, C) float64

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    def names(self, end_sites: bool = False) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints if end_sites or not j.end_site)

    def positions(self, unit_scale: float = CM_TO_M, end_sites: bool = False,
                  extra_sites: dict[str, tuple[float, float, float]] | None = None) -> np.ndarray:
        """World joint positions (T, J, 3), float64, scaled by ``unit_scale`` (file unit -> m)."""
        return forward_kinematics(self, unit_scale=unit_scale, end_sites=end_sites,
                                  extra_sites=extra_sites)


class BvhError(ValueError):
    """A malformed BVH file; the message names the file and the place."""


def _axis_rotations(axis: int, deg: np.ndarray) -> np.ndarray:
    """(T,3,3) right-handed rotation matrices about one axis (x=0, y=1, z=2)."""
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    r = np.zeros(a.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    r[..., axis, axis] = 1.0
    r[..., i, i] = c
    r[..., j, j] = c
    r[..., i, j] = -s
    r[..., j, i] = s
    return r


def forward_kinematics(bvh: Bvh, unit_scale: float = CM_TO_M, end_sites: bool = False,
                       extra_sites: dict[str, tuple[float, float, float]] | None = None) -> np.ndarray:
    """Joint world positions (T, J, 3) for every frame at once (one loop over joints only).

    ``extra_sites`` = {joint name: offset in that joint's frame (file units)} appends one virtual
    site per entry, in the given order, moving with the joint's own rotation, the way an End
    Site would (for rigs whose end sites are empty).
    """
    t = bvh.num_frames
    n = len(bvh.joints)
    rot = np.empty((n, t, 3, 3))
    pos = np.empty((n, t, 3))
    for k, jt in enumerate(bvh.joints):
        local_t = np.broadcast_to(np.asarray(jt.offset, dtype=np.float64), (t, 3)).copy()
        local_r = None
        for c, ch in enumerate(jt.channels):
            col = bvh.motion[:, jt.first_channel + c]
            if ch in _POS:
                local_t[:, _POS[ch]] = col
            else:
                r = _axis_rotations(_ROT[ch], col)
                local_r = r if local_r is None else local_r @ r
        if jt.parent < 0:
            pos[k] = local_t
            rot[k] = local_r if local_r is not None else np.eye(3)
        else:
            pr = rot[jt.parent]
            pos[k] = pos[jt.parent] + np.einsum("tij,tj->ti", pr, local_t)
            rot[k] = pr @ local_r if local_r is not None else pr
    keep = [k for k, jt in enumerate(bvh.joints) if end_sites or not jt.end_site]
    out = [pos[keep]]
    names = [jt.name for jt in bvh.joints]
    for name, offset in (extra_sites or {}).items():
        if name not in names:
            raise KeyError(f"extra site on unknown joint {name!r}; joints: {names}")
        k = names.index(name)
        out.append((pos[k] + rot[k] @ np.asarray(offset, dtype=np.float64))[None])
    return np.ascontiguousarray(np.concatenate(out).transpose(1, 0, 2)) * float(unit_scale)


def parse_bvh(text: str, source: str = "<string>") -> Bvh:
    """Parse BVH text (HIERARCHY + MOTION). Raises :class:`BvhError` naming ``source``."""
    # keep braces as their own tokens even when written without spaces
    tokens = re.sub(r"([{}])", r" \1 ", text).split()
    i = 0

    def err(msg: str) -> BvhError:
        return BvhError(f"{source}: {msg}")

    def take() -> str:
        nonlocal i
        if i >= len(tokens):
            raise err("unexpected end of file")
        i += 1
        return tokens[i - 1]

    def expect(word: str) -> None:
        got = take()
        if got.upper() != word.upper():
            raise err(f"expected {word!r}, got {got!r} (token {i})")

    def number() -> float:
        tok = take()
        try:
            return float(tok)
        except ValueError:
            raise err(f"expected a number, got {tok!r} (token {i})") from None

    joints: list[BvhJoint] = []
    n_channels = 0

    def joint_body(name: str, parent: int, end_site: bool) -> None:
        nonlocal n_channels
        expect("{")
        expect("OFFSET")
        offset = (number(), number(), number())
        channels: tuple[str, ...] = ()
        if not end_site:
            expect("CHANNELS")
            tok = take()
            if not tok.isdigit():
                raise err(f"joint {name!r}: CHANNELS count must be an integer, got {tok!r}")
            channels = tuple(take() for _ in range(int(tok)))
            bad = [c for c in channels if c not in _ROT and c not in _POS]
            if bad or len(set(channels)) != len(channels):
                raise err(f"joint {name!r}: unknown or repeated channels {list(channels)}")
        k = len(joints)
        joints.append(BvhJoint(name, parent, offset, channels, n_channels, end_site))
        n_channels += len(channels)
        while True:
            tok = take()
            if tok == "}":
                return
            if end_site:
                raise err(f"End Site of {joints[parent].name!r}: expected '}}', got {tok!r}")
            if tok.upper() == "JOINT":
                joint_body(take(), k, False)
            elif tok.upper() == "END":
                expect("Site")
                joint_body(f"{name}_end", k, True)
            else:
                raise err(f"joint {name!r}: expected JOINT, End Site or '}}', got {tok!r}")

    if not tokens:
        raise err("empty file")
    expect("HIERARCHY")
    expect("ROOT")
    joint_body(take(), -1, False)
    if i < len(tokens) and tokens[i].upper() == "ROOT":
        raise err("several ROOT hierarchies are not supported")
    expect("MOTION")
    expect("Frames:")
    tok = take()
    if not tok.isdigit():
        raise err(f"'Frames:' must be a non-negative integer, got {tok!r}")
    n_frames = int(tok)
    expect("Frame")
    expect("Time:")
    frame_time = number()
    if not (np.isfinite(frame_time) and frame_time > 0):
        raise err(f"'Frame Time' must be positive, got {frame_time}")
    rest = tokens[i:]
    if len(rest) != n_frames * n_channels:
        raise err(f"MOTION has {len(rest)} values; expected Frames {n_frames} x {n_channels} channels"
                  f" = {n_frames * n_channels}")
    try:
        motion = np.array(rest, dtype=np.float64).reshape(n_frames, n_channels)
    except ValueError as exc:
        raise err(f"MOTION values are not all numbers ({exc})") from None
    if not np.isfinite(motion).all():
        raise err("MOTION contains non-finite values")
    motion.setflags(write=False)
    return Bvh(tuple(joints), float(frame_time), motion)


def read_bvh(path: str | Path) -> Bvh:
    """Read and parse one ``.bvh`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"BVH file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise BvhError(f"{path}: not a text BVH file ({exc})") from None
    return parse_bvh(text, source=str(path))


# ----------------------------------------------------------------------------- Bandai Namco 1
_BANDAI_NAME_RE = re.compile(r"^dataset-1_(?P<content>[a-z-]+)_(?P<style>[a-z-]+)_(?P<take>\d+)\.json$")


_BANDAI_RIG = BANDAI_BVH_JOINTS[:22]
# derived site -> (joint it hangs from, length as a multiple of that joint's own bone): the site
# continues the bone into the joint (head top / palm), turning with the joint's rotation.
_BANDAI_SITES = {"HeadCentre": ("Head", 2.0), "Palm_L": ("Hand_L", 1.0 / 3.0),
                 "Palm_R": ("Hand_R", 1.0 / 3.0)}
assert tuple(_BANDAI_SITES) == BANDAI_BVH_JOINTS[22:]


def read_bandai_bvh(path: str | Path, unit_scale: float = CM_TO_M) -> np.ndarray:
    """Joint positions (T, 25, 3) float32 in metres, y up, in ``BANDAI_BVH_JOINTS`` order:
    the rig's 22 joints, then the derived head centre and palms (see ``layouts``).

    Joints are matched by name, so a file with another joint order still lands in the layout's
    order; a file lacking one of the rig's joints is an error naming them.
    """
    bvh = read_bvh(path)
    names = bvh.names()
    missing = [n for n in _BANDAI_RIG if n not in names]
    if missing:
        raise BvhError(f"{path}: not the Bandai Namco rig; missing joints {missing}")
    if bvh.num_frames == 0:
        raise BvhError(f"{path}: no frames")
    by_name = {j.name: j for j in bvh.joints}
    sites = {}
    for joint, k in _BANDAI_SITES.values():
        sites[joint] = tuple(k * v for v in by_name[joint].offset)
    pos = bvh.positions(unit_scale=unit_scale, extra_sites=sites)
    idx = [names.index(n) for n in _BANDAI_RIG] + list(range(len(names), len(names) + len(sites)))
    return np.ascontiguousarray(pos[:, idx], dtype=np.float32)


@dataclass(frozen=True)
class BandaiRecord:
    """One take: ``content``/``style`` are the 0-based ids of the JSON annotation (they index
    ``cfg/content_label.txt`` / ``cfg/style_label.txt``), with their names from those lists."""

    content: int
    style: int
    content_name: str
    style_name: str
    take: int
    path: Path  # the .bvh file
    annotation: Path  # the .json file


def _read_labels(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        raise FileNotFoundError(f"Bandai label list not found: {path}")
    names = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    # "dataset-1_walk" -> "walk": the prefix repeats the dataset name on every line
    return tuple(n.split("_", 1)[1] if n.startswith("dataset-1_") else n for n in names)


def read_bandai_labels(root: str | Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(contents, styles) from ``cfg/content_label.txt`` and ``cfg/style_label.txt``."""
    root = Path(root)
    return _read_labels(root / "cfg" / "content_label.txt"), _read_labels(root / "cfg" / "style_label.txt")


def scan_bandai(root: str | Path) -> tuple[list[BandaiRecord], list[tuple[Path, str]]]:
    """Takes under ``root`` (the dataset folder with ``cfg/`` and ``data/``), driven by the JSON
    annotations. Returns ``(records, skipped)``: ``skipped`` lists ``(json path, reason)`` for
    annotations that cannot be used (no motion file beside them, unreadable, ids out of range,
    name and ids disagreeing), so a caller can count and log them instead of crashing.
    """
    root = Path(root)
    data = root / "data"
    if not data.is_dir():
        raise FileNotFoundError(f"Bandai Namco data folder not found: {data}")
    contents, styles = read_bandai_labels(root)
    records: list[BandaiRecord] = []
    skipped: list[tuple[Path, str]] = []
    for ann in sorted(data.glob("*.json")):
        m = _BANDAI_NAME_RE.match(ann.name)
        if not m:
            skipped.append((ann, "file name is not dataset-1_<content>_<style>_<id>.json"))
            continue
        bvh = ann.with_suffix(".bvh")
        if not bvh.is_file():
            skipped.append((ann, f"motion file {bvh.name} is missing"))
            continue
        try:
            meta = json.loads(ann.read_text(encoding="utf-8"))
            c, s = meta["content"], meta["style"]
            if not (isinstance(c, int) and isinstance(s, int)):
                raise TypeError("content/style are not integers")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            skipped.append((ann, f"unreadable annotation ({exc!r})"))
            continue
        if not (0 <= c < len(contents) and 0 <= s < len(styles)):
            skipped.append((ann, f"content {c} / style {s} outside the cfg label lists"))
            continue
        if (contents[c], styles[s]) != (m["content"], m["style"]):
            skipped.append((ann, f"annotation says {contents[c]}/{styles[s]}, "
                                 f"file name says {m['content']}/{m['style']}"))
            continue
        records.append(BandaiRecord(c, s, contents[c], styles[s], int(m["take"]), bvh, ann))
    if not records and not skipped:
        raise ValueError(f"no Bandai Namco annotations (dataset-1_*.json) in {data}")
    return records, skipped
