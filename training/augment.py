"""Batch augmentations for training clips ``(N, 3, T, 25, M)`` (off by default).

Label-preserving changes a robot meets that a lab dataset lacks: viewpoint (rotation about
the vertical axis), body size (global scale), performer speed (time warp about the clip
centre, edges held), sensor jitter (joint noise), joints lost for a moment (dropout: a joint
takes its parent's position), and legs out of view at close range (the lower body replaced by
the fixed standing leg of :func:`pgfa_models.preprocess.canonical_lower_body`, the form the
``lower_body: canonical`` preprocessing gives at run time). Random draws come from an explicit
``torch.Generator`` so a run is reproducible and resumable epoch by epoch. Whether each helps
is for the benchmark table to show; recipes enable them explicitly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pgfa_models.layouts import NTU25_BONES
from pgfa_models.preprocess import _CANONICAL_LEG, HIP_LEFT, HIP_RIGHT

_PARENT = torch.arange(25)
for _c, _p in NTU25_BONES:
    _PARENT[_c] = _p


@dataclass
class AugmentConfig:
    rotate_y_deg: float = 0.0   # max |angle| of a uniform random rotation about y, degrees
    scale: float = 0.0          # scale factor drawn uniformly in [1 - scale, 1 + scale]
    speed: float = 0.0          # playback speed drawn uniformly in [1 - speed, 1 + speed]
    joint_noise: float = 0.0    # std of Gaussian noise added to every joint (clip units)
    joint_dropout: float = 0.0  # probability that a joint takes its parent's place for a clip
    lower_body: float = 0.0     # probability that a clip's legs are replaced by a standing leg

    def __post_init__(self) -> None:
        for name in ("rotate_y_deg", "scale", "speed", "joint_noise", "joint_dropout", "lower_body"):
            v = float(getattr(self, name))
            if not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"augment.{name} must be >= 0, got {v!r}")
        for name, top in (("scale", 0.99), ("speed", 0.99), ("joint_dropout", 1.0), ("lower_body", 1.0)):
            if float(getattr(self, name)) > top:
                raise ValueError(f"augment.{name} must be <= {top}, got {getattr(self, name)!r}")

    @property
    def enabled(self) -> bool:
        return any(getattr(self, k) > 0 for k in ("rotate_y_deg", "scale", "speed", "joint_noise",
                                                     "joint_dropout", "lower_body"))


def _uniform(n: int, half: float, gen) -> torch.Tensor:
    return 1 + (torch.rand(n, generator=gen) * 2 - 1) * half


def time_warp(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Play each clip ``factor`` times faster about its centre; frames past the ends hold."""
    n, _, t = x.shape[:3]
    centre = (t - 1) / 2
    src = centre + (torch.arange(t, dtype=torch.float32)[None] - centre) * factor[:, None]  # (N, T)
    src = src.clamp(0, t - 1)
    lo = src.floor().long().clamp(max=t - 2)
    w = (src - lo).to(x.dtype).view(n, 1, t, 1, 1)
    idx = lo.to(x.device).view(n, 1, t, 1, 1).expand(-1, x.shape[1], -1, x.shape[3], x.shape[4])
    a = torch.gather(x, 2, idx)
    b = torch.gather(x, 2, idx + 1)
    return a * (1 - w) + b * w


def _arm_length(x: torch.Tensor) -> torch.Tensor:
    """Per clip and body slot: upper arm + forearm (preprocess.arm_length), median over frames."""
    def d(a, b):
        return (x[:, :, :, a] - x[:, :, :, b]).norm(dim=1)  # (N, T, M)
    length = 0.5 * (d(4, 5) + d(8, 9) + d(5, 6) + d(9, 10))
    return length.median(dim=1).values  # (N, M)


def replace_lower_body(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Legs of the clips in ``mask`` (N,) replaced by the canonical standing leg."""
    if not bool(mask.any()):
        return x
    x = x.clone()
    sel = x[mask]
    unit = _arm_length(sel)  # (n, M)
    leg = torch.as_tensor(_CANONICAL_LEG, dtype=x.dtype, device=x.device)  # (3 joints, xyz)
    for hip, joints in ((HIP_LEFT, (13, 14, 15)), (HIP_RIGHT, (17, 18, 19))):
        for j, off in zip(joints, leg):
            sel[:, :, :, j] = sel[:, :, :, hip] + off.view(1, 3, 1, 1) * unit.view(-1, 1, 1, unit.shape[-1])
    present = (x[mask].abs().sum(dim=(1, 2, 3)) > 0).view(-1, 1, 1, 1, x.shape[-1])  # empty slots stay 0
    x[mask] = torch.where(present, sel, x[mask])
    return x


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None = None) -> torch.Tensor:
    """Return an augmented copy of ``x`` (N, 3, T, V, M); ``x`` itself is not changed."""
    if not cfg.enabled:
        return x
    n = x.shape[0]
    dev, dt = x.device, x.dtype
    if cfg.speed > 0:
        x = time_warp(x, _uniform(n, cfg.speed, gen))
    if cfg.lower_body > 0:
        x = replace_lower_body(x, torch.rand(n, generator=gen) < cfg.lower_body)
    if cfg.joint_dropout > 0:
        drop = (torch.rand(n, 1, 1, 25, 1, generator=gen) < cfg.joint_dropout).to(dev)
        x = torch.where(drop, x[:, :, :, _PARENT.to(dev)], x)
    if cfg.rotate_y_deg > 0:
        a = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(cfg.rotate_y_deg)
        c, s = torch.cos(a), torch.sin(a)
        z, o = torch.zeros(n), torch.ones(n)
        rot = torch.stack([torch.stack([c, z, s], -1), torch.stack([z, o, z], -1),
                           torch.stack([-s, z, c], -1)], -2).to(dev, dt)  # (N, 3, 3)
        x = torch.einsum("nij,njtvm->nitvm", rot, x)
    if cfg.scale > 0:
        x = x * _uniform(n, cfg.scale, gen).to(dev, dt).view(n, 1, 1, 1, 1)
    if cfg.joint_noise > 0:
        present = (x.abs().sum(dim=(1, 2, 3), keepdim=True) > 0).to(dt)  # empty body slots stay 0
        x = x + torch.randn(x.shape, generator=gen).to(dev, dt) * cfg.joint_noise * present
    return x
