"""THE preprocessing function shared by training, evaluation and the live nodes (SPEC §3).

layout mapping + axis/unit conversion -> mark missing joints -> drop empty frames -> repair
short gaps by linear interpolation in time -> optional common joint set -> translate to the
spine base -> optional view/scale normalisation -> optional lower-body replacement -> linear
resampling to ``target_frames`` (over the clip, or over a fixed ``window_seconds``).

Using one function everywhere is what keeps live input distributed like training input.
Bad numbers never raise: a body that cannot be repaired comes back with ``clip=None`` and a
short, stable ``reason`` string (see ``REASONS``) that nodes count and log.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layouts import Layout, get_layout, map_to_ntu

SPINE_BASE, SPINE_MID, NECK, HEAD, SPINE_SHOULDER, HIP_LEFT, HIP_RIGHT = 0, 1, 2, 3, 20, 12, 16
SHOULDER_LEFT, ELBOW_LEFT, WRIST_LEFT, HAND_LEFT = 4, 5, 6, 7
SHOULDER_RIGHT, ELBOW_RIGHT, WRIST_RIGHT, HAND_RIGHT = 8, 9, 10, 11
LEG_JOINTS = (13, 14, 15, 17, 18, 19)  # knees, ankles, feet (hips stay: they carry the body)

JOINT_SETS = ("sensor", "common")
SCALE_REFERENCES = ("spine", "arms")
LOWER_BODY = ("keep", "canonical")

REASONS = (
    "empty",                    # no frames / no bodies
    "bad_shape",                # not (T,J,3) with the layout's J
    "bad_timestamps",           # timestamps not one finite stamp per frame
    "non_finite_input",         # not a single valid joint anywhere
    "too_few_frames",           # fewer than min_frames frames with any valid joint
    "too_many_missing_frames",  # valid-frame fraction below min_valid_fraction
    "too_many_missing_joints",  # a joint never seen, or missing over a gap > max_gap_frames
)


@dataclass
class PreprocessConfig:
    """Preprocessing options; stored in checkpoints so live input matches training.

    A joint that is never seen, or missing for more than ``max_gap_frames`` consecutive
    frames, rejects the body rather than being filled from a parent joint: inventing a limb
    pose for a whole window would feed the classifier motion that did not happen. Joints a
    layout lacks (e.g. Kinect v1 hand tips) are never missing, because the mapping supplies them.
    """

    target_frames: int = 50
    max_gap_frames: int = 10
    min_valid_fraction: float = 0.5
    min_frames: int = 5
    zero_is_missing: bool = True
    view_normalize: bool = False
    scale_normalize: bool = False
    # Sensor invariance (issue 10). Defaults keep older checkpoints' behaviour.
    joint_set: str = "sensor"          # "common": joints placed differently by each sensor
                                       # (spine base/mid/shoulder, neck, hand tips, thumbs) are
                                       # derived by one rule from joints every sensor has
    scale_reference: str = "spine"     # "arms": upper arm + forearm (mean of both sides): 0.47-0.50 m
                                       # on Kinect v1, Azure and mocap alike (spine: 0.31-0.41 m)
    window_seconds: float = 0.0        # > 0: the clip spans exactly this long (edges held),
                                       # so every source and frame rate moves at the same speed
    source_rate_hz: float = 30.0       # frame rate assumed when no timestamps are given
    lower_body: str = "keep"           # "canonical": knees/ankles/feet replaced by a fixed
                                       # standing leg hung from the hips (legs out of view)

    def __post_init__(self) -> None:
        for name, allowed in (("joint_set", JOINT_SETS), ("scale_reference", SCALE_REFERENCES),
                              ("lower_body", LOWER_BODY)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"preprocess.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not (self.window_seconds >= 0 and np.isfinite(self.window_seconds)):
            raise ValueError(f"preprocess.window_seconds must be >= 0, got {self.window_seconds!r}")
        if not (self.source_rate_hz > 0 and np.isfinite(self.source_rate_hz)):
            raise ValueError(f"preprocess.source_rate_hz must be > 0, got {self.source_rate_hz!r}")
        if int(self.target_frames) < 2:
            raise ValueError(f"preprocess.target_frames must be >= 2, got {self.target_frames!r}")


def preprocess_config_from_dict(data, where: str = "preprocess") -> PreprocessConfig:
    """THE parser of preprocessing options (checkpoint, recipe, node): an unknown option is a
    :class:`~pgfa_models.config.ConfigError` naming it (never silently dropped), and so is a
    value of the wrong type or out of range, so every consumer applies exactly what was recorded."""
    import dataclasses
    import math

    from .config import ConfigError, from_dict

    if data is None:
        data = {}
    if isinstance(data, PreprocessConfig):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of preprocessing options, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(PreprocessConfig)}
    unknown = sorted(str(k) for k in data if k not in fields)
    if unknown:
        raise ConfigError(f"{where}: unknown preprocessing option(s) {unknown}; known: {sorted(fields)}")
    for name, value in data.items():
        kind = type(fields[name].default)
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else:
            ok = isinstance(value, kind)
        if not ok:
            raise ConfigError(f"{where}.{name}: expected {kind.__name__}, got {value!r}")
    try:
        return from_dict(PreprocessConfig, data, where)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


@dataclass
class BodyResult:
    clip: np.ndarray | None  # (3, target_frames, 25) float32
    reason: str | None
    repaired_joints: int = 0


@dataclass
class ClipResult:
    clip: np.ndarray | None  # (3, target_frames, 25, M) float32
    reason: str | None
    repaired_joints: int = 0


@dataclass
class _Repaired:
    """A repaired body before translation/resampling, so multi-body clips share one origin."""

    x: np.ndarray  # (T', 25, 3) float64, all finite
    t: np.ndarray  # (T',) increasing times
    repaired: int


def _order_stamps(t: np.ndarray) -> np.ndarray:
    """Indices that sort finite stamps ascending, keeping the first frame of each duplicate."""
    finite = np.flatnonzero(np.isfinite(t))
    _, first = np.unique(t[finite], return_index=True)  # sorted unique values
    return finite[first]


def _interp_at(x: np.ndarray, t: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Linear interpolation of x (T, ...) sampled at increasing t onto grid (clamped at ends)."""
    if len(t) == 1:
        return np.repeat(x[:1], len(grid), axis=0)
    i = np.clip(np.searchsorted(t, grid, side="right") - 1, 0, len(t) - 2)
    w = np.clip((grid - t[i]) / (t[i + 1] - t[i]), 0.0, 1.0)
    w = w.reshape((-1,) + (1,) * (x.ndim - 1))
    return x[i] * (1.0 - w) + x[i + 1] * w


def resample_linear(x: np.ndarray, n: int, t: np.ndarray | None = None) -> np.ndarray:
    """Resample x (T, ...) along axis 0 to n evenly spaced times over [t_first, t_last].

    ``t`` defaults to the frame index; unsorted or duplicated stamps are sorted and
    de-duplicated first. Exact for motion that is linear in time.
    """
    x = np.asarray(x)
    if t is None:
        t = np.arange(len(x), dtype=np.float64)
    else:
        t = np.asarray(t, dtype=np.float64)
        keep = _order_stamps(t)
        x, t = x[keep], t[keep]
    if len(x) == 0:
        raise ValueError("resample_linear: no samples")
    return _interp_at(x, t, np.linspace(t[0], t[-1], n))


def _fill_gaps(x: np.ndarray, valid: np.ndarray, t: np.ndarray, frame: np.ndarray,
               max_gap: int) -> tuple[np.ndarray | None, int]:
    """Interpolate missing joints in time (nearest valid at the edges), vectorised.

    ``frame`` is each kept frame's original index, so dropped empty frames count toward a
    gap. Returns (None, 0) when a joint is never seen or a gap is longer than ``max_gap``.
    """
    n = len(x)
    if not valid.any(axis=0).all():
        return None, 0
    cols = np.flatnonzero(~valid.all(axis=0))  # only joints with holes need work
    if len(cols) == 0:
        return x, 0
    missing = ~valid[:, cols]
    idx = np.arange(n)[:, None]
    prev = np.maximum.accumulate(np.where(missing, -1, idx), axis=0)  # (T,C)
    nxt = np.minimum.accumulate(np.where(missing, n, idx)[::-1], axis=0)[::-1]
    has_prev, has_next = prev >= 0, nxt < n
    p, q = np.clip(prev, 0, n - 1), np.clip(nxt, 0, n - 1)
    # gap length in original frames: interior (next - prev - 1), leading / trailing to the edge
    gap = np.where(has_prev & has_next, frame[q] - frame[p] - 1,
                   np.where(has_prev, frame[-1] - frame[p], frame[q] - frame[0]))
    if (gap[missing] > max_gap).any():
        return None, 0
    p = np.where(has_prev, p, q)  # edges: nearest valid on the one side that exists
    q = np.where(has_next, q, p)
    span = t[q] - t[p]
    w = np.where(span > 0, (t[:, None] - t[p]) / np.where(span > 0, span, 1.0), 0.0)[..., None]
    filled = x[p, cols] * (1.0 - w) + x[q, cols] * w  # (T,C,3)
    x = x.copy()
    x[:, cols] = np.where(missing[..., None], filled, x[:, cols])
    return x, int(missing.sum())


def _repair(joints, layout: Layout, cfg: PreprocessConfig, timestamps) -> _Repaired | str:
    """Map, clean and repair one body; returns a reason string when it cannot."""
    try:
        x = np.asarray(joints, dtype=np.float64)
    except (TypeError, ValueError):
        return "bad_shape"
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[0] == 0:
        return "empty" if x.size == 0 else "bad_shape"
    if x.shape[1:] != (layout.num_joints, 3):
        return "bad_shape"
    if timestamps is None:
        t = np.arange(len(x), dtype=np.float64) / float(cfg.source_rate_hz)
    else:
        try:
            t = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            return "bad_timestamps"
        if len(t) != len(x):
            return "bad_timestamps"
        order = _order_stamps(t)
        if len(order) == 0:
            return "bad_timestamps"
        x, t = x[order], t[order]
    if cfg.zero_is_missing:
        zero = (x == 0).all(axis=-1)
        if zero.any():
            x = np.where(zero[..., None], np.nan, x)
    ntu = map_to_ntu(x, layout)
    valid = np.isfinite(ntu).all(axis=-1)  # (T,25)
    seen = valid.any(axis=1)
    n_seen = int(seen.sum())
    if n_seen == 0:
        return "non_finite_input"
    if n_seen < cfg.min_frames:
        return "too_few_frames"
    if n_seen < cfg.min_valid_fraction * len(x):
        return "too_many_missing_frames"
    frame = np.flatnonzero(seen)
    ntu, valid, t = ntu[seen], valid[seen], t[seen]
    filled, repaired = _fill_gaps(ntu, valid, t, frame, cfg.max_gap_frames)
    if filled is None:
        return "too_many_missing_joints"
    if cfg.joint_set == "common":
        filled = common_joints(filled)
    return _Repaired(filled, t, repaired)


def common_joints(x: np.ndarray) -> np.ndarray:
    """Re-derive the joints each sensor places its own way from joints all sensors share.

    Measured on the shared data: Kinect v1's hip centre sits 7 cm above the hip midpoint, Azure's
    pelvis on it; Kinect v1's shoulder centre is 11 cm above the shoulder midpoint, Azure's
    spine_chest 14 cm below it; Kinect v1 has no hand tips or thumbs. Left as they are, these
    offsets are a sensor signature the model can learn instead of the motion.
    """
    x = x.copy()
    x[..., SPINE_BASE, :] = 0.5 * (x[..., HIP_LEFT, :] + x[..., HIP_RIGHT, :])
    x[..., SPINE_SHOULDER, :] = 0.5 * (x[..., SHOULDER_LEFT, :] + x[..., SHOULDER_RIGHT, :])
    x[..., SPINE_MID, :] = 0.5 * (x[..., SPINE_BASE, :] + x[..., SPINE_SHOULDER, :])
    x[..., NECK, :] = 0.5 * (x[..., SPINE_SHOULDER, :] + x[..., HEAD, :])
    x[..., 21, :] = x[..., 22, :] = x[..., HAND_LEFT, :]
    x[..., 23, :] = x[..., 24, :] = x[..., HAND_RIGHT, :]
    return x


def _span(x: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.linalg.norm(x[:, a] - x[:, b], axis=-1)


def arm_length(x: np.ndarray) -> np.ndarray:
    """Upper arm + forearm, mean of both sides, per frame.

    Measured on the four shared sources (medians 0.489 / 0.485 / 0.495 / 0.466 m for UTD-MHAD,
    NW-UCLA, SmartFallMM, Bandai mocap), the most sensor-independent length found: shoulder
    width differs by sensor (0.31-0.32 m on Kinect and Azure, 0.21 m between mocap joint
    centres), the spine by where each places its spine joints, the legs by close-range inference.
    """
    return 0.5 * (_span(x, SHOULDER_LEFT, ELBOW_LEFT) + _span(x, SHOULDER_RIGHT, ELBOW_RIGHT)
                  + _span(x, ELBOW_LEFT, WRIST_LEFT) + _span(x, ELBOW_RIGHT, WRIST_RIGHT))


def body_scale(x: np.ndarray, reference: str) -> float:
    """Length that scale normalisation divides by (median over frames, robust to glitches)."""
    if reference == "arms":
        return float(np.median(arm_length(x)))
    return float(_span(x, SPINE_SHOULDER, SPINE_BASE).mean())


# A standing leg in arm lengths (upper arm + forearm, ~0.49 m on an adult): knee, ankle and
# foot below each hip, the foot pointing forward (-z faces the sensor).
_CANONICAL_LEG = np.array([[0.0, -0.9, 0.0], [0.0, -1.75, 0.0], [0.0, -1.85, -0.2]])


def canonical_lower_body(x: np.ndarray, unit: float) -> np.ndarray:
    """Knees, ankles and feet hung below the hips as a fixed standing leg (``unit`` = arm length).

    The hips keep their real motion, so a fall or a sit still moves the body; what is lost is
    only the leg shape, which close-range sensors infer badly.
    """
    x = x.copy()
    leg = _CANONICAL_LEG * unit
    for hip, joints in ((HIP_LEFT, (13, 14, 15)), (HIP_RIGHT, (17, 18, 19))):
        for j, off in zip(joints, leg):
            x[..., j, :] = x[..., hip, :] + off
    return x


def _view_rotation(x0: np.ndarray) -> np.ndarray:
    """Rotation about y that turns the first frame's left->right hip line onto +x."""
    d = x0[HIP_RIGHT] - x0[HIP_LEFT]
    a = np.arctan2(d[2], d[0])  # angle of the hip line in the x-z plane
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _finish(bodies: list[_Repaired], cfg: PreprocessConfig) -> list[np.ndarray]:
    """Translate all bodies by the first body's first spine base, normalise, resample.

    All bodies share the first body's time grid so their motion stays synchronised.
    """
    first = bodies[0]
    origin = first.x[0, SPINE_BASE].copy()
    rot = _view_rotation(first.x[0] - origin) if cfg.view_normalize else None
    scale = 1.0
    if cfg.scale_normalize:
        length = body_scale(first.x, cfg.scale_reference)
        scale = 1.0 / length if length > 1e-6 else 1.0
    grid = _time_grid(first.t, cfg)
    out = []
    for b in bodies:
        y = b.x - origin
        if rot is not None:
            y = y @ rot.T
        y = y * scale
        if cfg.lower_body == "canonical":
            unit = scale * body_scale(b.x, "arms") if cfg.scale_normalize else body_scale(b.x, "arms")
            y = canonical_lower_body(y, unit)
        y = _interp_at(y, b.t, grid)
        out.append(np.ascontiguousarray(y.transpose(2, 0, 1), dtype=np.float32))
    return out


def _time_grid(t: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """``target_frames`` times over the clip, or over ``window_seconds`` centred on it.

    A fixed span keeps motion speed independent of clip length and frame rate; a shorter clip
    is padded by holding its first and last pose (the interpolation clamps at the ends), a
    longer one keeps its centre.
    """
    if cfg.window_seconds <= 0:
        return np.linspace(t[0], t[-1], cfg.target_frames)
    mid = 0.5 * (t[0] + t[-1])
    half = 0.5 * cfg.window_seconds
    return np.linspace(mid - half, mid + half, cfg.target_frames)


def preprocess_body(joints, layout: str | Layout, cfg: PreprocessConfig | None = None,
                    timestamps=None) -> BodyResult:
    """Preprocess one body (T,J,3) in ``layout`` into a (3, target_frames, 25) float32 clip."""
    cfg = cfg or PreprocessConfig()
    rep = _repair(joints, get_layout(layout), cfg, timestamps)
    if isinstance(rep, str):
        return BodyResult(None, rep, 0)
    return BodyResult(_finish([rep], cfg)[0], None, rep.repaired)


def preprocess_clip(bodies, layout: str | Layout, cfg: PreprocessConfig | None = None,
                    num_person: int = 1, timestamps=None) -> ClipResult:
    """Preprocess up to ``num_person`` bodies into a (3, target_frames, 25, M) clip.

    Bodies are taken in the given order; rejected ones are skipped, extras beyond M dropped,
    empty slots stay zero. All bodies are translated by the first kept body's spine base so
    their relative positions survive. ``timestamps`` (one per frame) is shared by all bodies.
    """
    cfg = cfg or PreprocessConfig()
    layout = get_layout(layout)
    if num_person < 1:
        raise ValueError(f"num_person must be >= 1, got {num_person}")
    kept: list[_Repaired] = []
    first_reason = None
    for joints in list(bodies or []):
        rep = _repair(joints, layout, cfg, timestamps)
        if isinstance(rep, str):
            first_reason = first_reason or rep
            continue
        kept.append(rep)
        if len(kept) == num_person:
            break
    if not kept:
        return ClipResult(None, first_reason or "empty", 0)
    clip = np.zeros((3, cfg.target_frames, 25, num_person), dtype=np.float32)
    for m, body in enumerate(_finish(kept, cfg)):
        clip[..., m] = body
    return ClipResult(clip, None, sum(b.repaired for b in kept))
