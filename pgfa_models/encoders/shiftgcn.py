"""Shift-GCN skeleton encoder (Cheng et al., CVPR 2020) in plain PyTorch (no CUDA extension).

Setting II of PGFA: one joint-stream Shift-GCN, 10 units with channels
64,64,64,64,128(stride 2),128,128,256(stride 2),256,``out_dim`` (=256), output
``(N, out_dim)`` after global average pooling over (T, V) and the mean over bodies.

* Spatial shift graph conv (non-local shift): channel ``j`` of joint ``i`` is read from joint
  ``(i + j) mod V`` before the point-wise linear layer and written back shifted the other
  way after it; both shifts are fixed index permutations applied with ``index_select``.
  A learnable feature mask ``tanh(mask) + 1`` (zero init) weights the shifted features.
* Temporal shift conv: BN -> learnable per-channel fractional temporal shift -> 1x1 conv ->
  ReLU -> learnable shift (with the unit's stride) -> BN. The original uses a CUDA
  ActiveShift kernel; here the shift is linear interpolation between the two nearest
  frames, done with ``gather`` (zero padding outside the clip), differentiable w.r.t. the
  shift. Only the temporal shift is learnt (the kernel's unused joint-axis shift is omitted).
* Input normalisation: data BatchNorm over ``M*V*C`` as in Shift-GCN, so the encoder is
  built for a fixed number of bodies ``num_person``.

Parameter count with the defaults (num_person=1, 64 base channels, out_dim 256): 674,721
(num_person=2 adds 150).
"""
from __future__ import annotations

import torch
from torch import nn

from .blocks import residual_branch

NUM_JOINTS = 25


def _shift_indices(num_nodes: int, channels: int, sign: int) -> torch.Tensor:
    """Flat index permutation over (V, C): position (i, j) reads (i + sign*j) mod V, j."""
    i = torch.arange(num_nodes).unsqueeze(1)
    j = torch.arange(channels).unsqueeze(0)
    src = ((i + sign * j) % num_nodes) * channels + j
    return src.reshape(-1)


class ShiftGraphConv(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, num_nodes: int = NUM_JOINTS):
        super().__init__()
        self.out_channels = out_channels
        self.weight = nn.Parameter(torch.randn(in_channels, out_channels) * (1.0 / out_channels) ** 0.5)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.feature_mask = nn.Parameter(torch.zeros(num_nodes, in_channels))
        self.bn = nn.BatchNorm1d(num_nodes * out_channels)
        self.register_buffer("shift_in", _shift_indices(num_nodes, in_channels, +1), persistent=False)
        self.register_buffer("shift_out", _shift_indices(num_nodes, out_channels, -1), persistent=False)
        if in_channels != out_channels:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1),
                                      nn.BatchNorm2d(out_channels))
        else:
            self.down = nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        y = x.permute(0, 2, 3, 1).reshape(n * t, v * c)
        y = torch.index_select(y, 1, self.shift_in).reshape(n * t, v, c)
        y = y * (torch.tanh(self.feature_mask) + 1)
        y = torch.matmul(y, self.weight) + self.bias
        y = torch.index_select(y.reshape(n * t, v * self.out_channels), 1, self.shift_out)
        y = self.bn(y)
        y = y.reshape(n, t, v, self.out_channels).permute(0, 3, 1, 2)
        return self.relu(y + self.down(x))


class TemporalShift(nn.Module):
    """Learnable per-channel fractional shift along T with linear interpolation and stride."""

    def __init__(self, channels: int, stride: int = 1, init_scale: float = 1.0):
        super().__init__()
        self.stride = stride
        self.shift = nn.Parameter(torch.empty(channels).uniform_(-init_scale, init_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        t_out = (t - 1) // self.stride + 1
        base = torch.arange(t_out, device=x.device, dtype=x.dtype) * self.stride
        pos = base.unsqueeze(0) + self.shift.unsqueeze(1)  # (C, T_out)
        lo = torch.floor(pos)
        frac = pos - lo
        lo_i = lo.long()
        hi_i = lo_i + 1
        w_lo = (1 - frac) * ((lo_i >= 0) & (lo_i < t)).to(x.dtype)
        w_hi = frac * ((hi_i >= 0) & (hi_i < t)).to(x.dtype)
        idx_lo = lo_i.clamp(0, t - 1)[None, :, :, None].expand(n, c, t_out, v)
        idx_hi = hi_i.clamp(0, t - 1)[None, :, :, None].expand(n, c, t_out, v)
        x_lo = torch.gather(x, 2, idx_lo)
        x_hi = torch.gather(x, 2, idx_hi)
        return x_lo * w_lo[None, :, :, None] + x_hi * w_hi[None, :, :, None]


class ShiftTemporalConv(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels)
        self.shift_in = TemporalShift(in_channels, 1)
        self.linear = nn.Conv2d(in_channels, out_channels, 1)
        nn.init.kaiming_normal_(self.linear.weight, mode="fan_out")
        nn.init.zeros_(self.linear.bias)
        self.relu = nn.ReLU()
        self.shift_out = TemporalShift(out_channels, stride)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.shift_in(self.bn(x))
        y = self.relu(self.linear(y))
        return self.bn2(self.shift_out(y))


class ShiftGCNUnit(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, residual: bool = True):
        super().__init__()
        self.gcn = ShiftGraphConv(in_channels, out_channels)
        self.tcn = ShiftTemporalConv(out_channels, out_channels, stride)
        self.residual = residual_branch(in_channels, out_channels, stride, residual)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn(self.gcn(x))
        if self.residual is not None:
            y = y + self.residual(x)
        return self.relu(y)


class ShiftGCN(nn.Module):
    """Shift-GCN encoder: ``forward(x (N, C, T, V, M)) -> (N, out_dim)``; M must equal num_person."""

    def __init__(self, in_channels: int = 3, hidden_channels: int = 64, out_dim: int = 256,
                 num_person: int = 1, dropout: float = 0.0):
        super().__init__()
        h = hidden_channels
        self.num_person = num_person
        self.out_dim = out_dim
        self.data_bn = nn.BatchNorm1d(num_person * in_channels * NUM_JOINTS)
        spec = [
            (in_channels, h, 1, False), (h, h, 1, True), (h, h, 1, True), (h, h, 1, True),
            (h, 2 * h, 2, True), (2 * h, 2 * h, 1, True), (2 * h, 2 * h, 1, True),
            (2 * h, 4 * h, 2, True), (4 * h, 4 * h, 1, True), (4 * h, out_dim, 1, True),
        ]
        self.units = nn.ModuleList(ShiftGCNUnit(ci, co, s, r) for ci, co, s, r in spec)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x.shape
        y = x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t)
        y = self.data_bn(y)
        y = y.reshape(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        for unit in self.units:
            y = unit(y)
        y = y.mean(dim=(2, 3)).reshape(n, m, -1).mean(dim=1)
        return self.drop(y)
