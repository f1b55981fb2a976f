"""Skeleton encoders E_x: ``forward(x (N, 3, T, 25, M)) -> (N, out_dim)``."""
from .shiftgcn import ShiftGCN
from .stgcn import STGCN

__all__ = ["STGCN", "ShiftGCN"]
