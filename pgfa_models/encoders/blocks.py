"""Pieces shared by the ST-GCN and Shift-GCN units."""
from __future__ import annotations

from torch import nn


def residual_branch(in_channels: int, out_channels: int, stride: int, residual: bool) -> nn.Module | None:
    """The unit's skip connection: none, identity, or a strided 1x1 conv + BN when shapes change."""
    if not residual:
        return None
    if in_channels == out_channels and stride == 1:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=(stride, 1)),
                         nn.BatchNorm2d(out_channels))
