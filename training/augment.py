"""Batch augmentations for training clips ``(N, 3, T, 25, M)`` (off by default).

Only cheap, label-preserving geometric changes: a random rotation about the vertical (y)
axis (viewpoint) and a random global scale. Random draws come from an explicit
``torch.Generator`` so a run is reproducible and resumable epoch by epoch. Whether any of
this helps zero-shot accuracy is for the benchmark table to show; recipes enable it
explicitly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class AugmentConfig:
    rotate_y_deg: float = 0.0   # max |angle| of a uniform random rotation about y, degrees
    scale: float = 0.0          # scale factor drawn uniformly in [1 - scale, 1 + scale]

    @property
    def enabled(self) -> bool:
        return self.rotate_y_deg > 0 or self.scale > 0


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None = None) -> torch.Tensor:
    """Return an augmented copy of ``x`` (N, 3, T, V, M); ``x`` itself is not changed."""
    if not cfg.enabled:
        return x
    n = x.shape[0]
    dev, dt = x.device, x.dtype
    if cfg.rotate_y_deg > 0:
        a = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(cfg.rotate_y_deg)
        c, s = torch.cos(a), torch.sin(a)
        z, o = torch.zeros(n), torch.ones(n)
        rot = torch.stack([torch.stack([c, z, s], -1), torch.stack([z, o, z], -1),
                           torch.stack([-s, z, c], -1)], -2).to(dev, dt)  # (N, 3, 3)
        x = torch.einsum("nij,njtvm->nitvm", rot, x)
    if cfg.scale > 0:
        f = 1 + (torch.rand(n, generator=gen) * 2 - 1) * cfg.scale
        x = x * f.to(dev, dt).view(n, 1, 1, 1, 1)
    return x
