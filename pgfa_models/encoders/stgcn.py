"""ST-GCN skeleton encoder (Yan et al., AAAI 2018) in plain PyTorch.

Setting I of PGFA (following SMIE / CrosSCLR): ``hidden_channels=16``, ``out_dim=256``:

    block  in -> out   stride  residual
    1      3  -> 16    1       none
    2-4    16 -> 16    1       identity
    5      16 -> 32    2       1x1 conv + BN
    6-7    32 -> 32    1       identity
    8      32 -> 64    2       1x1 conv + BN
    9      64 -> 64    1       identity
    10     64 -> 256   1       1x1 conv + BN

Each block: spatial graph conv (1x1 conv to K*C_out channels, then
``einsum('nkctv,kvw->nctw', x, A * edge_importance)``), then
BN - ReLU - temporal conv (9x1, stride) - BN - Dropout, plus the residual, then ReLU.
Input normalisation is the original ST-GCN data BatchNorm over ``V*C`` features with the
person slots folded into the batch, so one encoder accepts any number of bodies M.
Output: global average over (T, V), then mean over the M bodies -> ``(N, out_dim)``.

Parameter count with the defaults: 821,380 (of which 18,750 are the ten (3,25,25)
edge-importance maps). With the 256->768 projection psi (197,376) and the temperature the
PGFA model has 1,018,757 learnable parameters. Paper Table VII reports 1.00 M: that is the
count of parameters owned by leaf layers (conv/BN/linear) -- what FLOP/param profilers such
as thop count -- which excludes the edge-importance maps and the temperature:
802,630 + 197,376 = 1,000,006.

Export notes: the forward has no data-dependent control flow and no in-place ops on
its input; only conv/BN/einsum/mean/reshape are used.
"""
from __future__ import annotations

import torch
from torch import nn

from ..graph import Graph
from .blocks import residual_branch


class GraphConv(nn.Module):
    """Spatial graph convolution over K adjacency subsets."""

    def __init__(self, in_channels: int, out_channels: int, num_subsets: int):
        super().__init__()
        self.k = num_subsets
        self.out_channels = out_channels
        self.conv = nn.Conv2d(in_channels, out_channels * num_subsets, kernel_size=1)

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        y = self.conv(x).reshape(n, self.k, self.out_channels, t, v)
        return torch.einsum("nkctv,kvw->nctw", y, A)


class STGCNBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, num_subsets: int, num_nodes: int,
                 stride: int = 1, residual: bool = True, dropout: float = 0.0,
                 kernel_size: int = 9, edge_importance: bool = True):
        super().__init__()
        pad = (kernel_size - 1) // 2
        self.gcn = GraphConv(in_channels, out_channels, num_subsets)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, (kernel_size, 1), (stride, 1), (pad, 0)),
            nn.BatchNorm2d(out_channels),
            nn.Dropout(dropout),
        )
        self.residual = residual_branch(in_channels, out_channels, stride, residual)
        if edge_importance:
            self.edge_importance = nn.Parameter(torch.ones(num_subsets, num_nodes, num_nodes))
        else:
            self.register_parameter("edge_importance", None)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        if self.edge_importance is not None:
            A = A * self.edge_importance
        y = self.tcn(self.gcn(x, A))
        if self.residual is not None:
            y = y + self.residual(x)
        return self.relu(y)


class STGCN(nn.Module):
    """ST-GCN encoder: ``forward(x (N, C, T, V, M)) -> (N, out_dim)``."""

    def __init__(self, in_channels: int = 3, hidden_channels: int = 16, out_dim: int = 256,
                 dropout: float = 0.0, edge_importance: bool = True, temporal_kernel: int = 9):
        super().__init__()
        A = torch.from_numpy(Graph().A)
        self.register_buffer("A", A)
        k, v = A.shape[0], A.shape[1]
        self.in_channels = in_channels
        self.out_dim = out_dim
        h = hidden_channels
        # (in, out, stride, residual)
        spec = [
            (in_channels, h, 1, False), (h, h, 1, True), (h, h, 1, True), (h, h, 1, True),
            (h, 2 * h, 2, True), (2 * h, 2 * h, 1, True), (2 * h, 2 * h, 1, True),
            (2 * h, 4 * h, 2, True), (4 * h, 4 * h, 1, True), (4 * h, out_dim, 1, True),
        ]
        self.data_bn = nn.BatchNorm1d(in_channels * v)
        self.blocks = nn.ModuleList(
            STGCNBlock(ci, co, k, v, stride=s, residual=r,
                       dropout=0.0 if i == 0 else dropout,
                       kernel_size=temporal_kernel, edge_importance=edge_importance)
            for i, (ci, co, s, r) in enumerate(spec)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x.shape
        # (N, C, T, V, M) -> (N*M, V*C, T) for the data BatchNorm
        y = x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)
        y = self.data_bn(y)
        y = y.reshape(n * m, v, c, t).permute(0, 2, 3, 1)  # (N*M, C, T, V)
        for block in self.blocks:
            y = block(y, self.A)
        y = y.mean(dim=(2, 3))  # global average over T', V
        return y.reshape(n, m, -1).mean(dim=1)
