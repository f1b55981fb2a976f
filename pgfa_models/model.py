"""PGFA skeleton branch: encoder E_x, projection psi and the learnable temperature (eq. 1, 3-4)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .encoders import STGCN, ShiftGCN

ENCODERS = ("stgcn", "shiftgcn")
# The range the temperature tau is clamped to wherever it is used (the loss in training, the
# recogniser's softmax at run time): TAU_MIN = 0.01 is CLIP's logit-scale cap of 100.
TAU_MIN = 0.01
TAU_MAX = 1.0
DEFAULT_HIDDEN = {"stgcn": 16, "shiftgcn": 64}


@dataclass
class EncoderConfig:
    """Skeleton encoder settings (stored in checkpoints).

    ``hidden_channels=None`` resolves to the paper's value for the encoder: 16 for ST-GCN
    (setting I), 64 for Shift-GCN (setting II).
    """
    name: str = "stgcn"
    in_channels: int = 3
    hidden_channels: Optional[int] = None
    out_dim: int = 256
    num_person: int = 1
    dropout: float = 0.0
    edge_importance: bool = True
    num_frames: int = 50

    def __post_init__(self) -> None:
        if self.name not in ENCODERS:
            raise ValueError(f"unknown encoder {self.name!r}; expected one of {ENCODERS}")
        if self.hidden_channels is None:
            self.hidden_channels = DEFAULT_HIDDEN[self.name]
        for field in ("in_channels", "hidden_channels", "out_dim", "num_person", "num_frames"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"encoder.{field} must be a positive integer, got {value!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"encoder.dropout must be in [0, 1), got {self.dropout!r}")


def build_encoder(cfg: EncoderConfig) -> nn.Module:
    """Encoder E_x for ``cfg``: ``forward(x (N, in_channels, T, 25, M)) -> (N, cfg.out_dim)``."""
    if cfg.name == "stgcn":
        return STGCN(cfg.in_channels, cfg.hidden_channels, cfg.out_dim,
                     dropout=cfg.dropout, edge_importance=cfg.edge_importance)
    if cfg.name == "shiftgcn":
        return ShiftGCN(cfg.in_channels, cfg.hidden_channels, cfg.out_dim,
                        num_person=cfg.num_person, dropout=cfg.dropout)
    raise ValueError(f"unknown encoder {cfg.name!r}")


class SkeletonTextModel(nn.Module):
    """v = psi(E_x(x)) (eq. 1) plus the learnable temperature tau of eq. (3)-(4).

    ``log_tau`` is a registered parameter (saved in the state_dict); ``tau = exp(log_tau)``.
    Its users clamp tau to ``[TAU_MIN, TAU_MAX]`` (:meth:`clamped_tau`, :mod:`pgfa_models.loss`).
    """

    def __init__(self, encoder_cfg: EncoderConfig, text_dim: int, init_tau: float = 0.07):
        super().__init__()
        if init_tau <= 0:
            raise ValueError(f"init_tau must be > 0, got {init_tau}")
        self.encoder_cfg = encoder_cfg
        self.text_dim = int(text_dim)
        self.encoder = build_encoder(encoder_cfg)
        self.psi = nn.Linear(encoder_cfg.out_dim, self.text_dim)
        self.log_tau = nn.Parameter(torch.tensor(math.log(init_tau), dtype=torch.float32))

    @property
    def tau(self) -> torch.Tensor:
        return self.log_tau.exp()

    def clamped_tau(self) -> float:
        """tau as the loss used it: clamped to ``[TAU_MIN, TAU_MAX]`` (a plain float)."""
        return float(self.tau.detach().clamp(TAU_MIN, TAU_MAX))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, T, 25, M) -> (N, text_dim)`` un-normalised skeleton features v."""
        return self.psi(self.encoder(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised skeleton features ``(N, text_dim)``."""
        return F.normalize(self.forward(x), dim=-1)


MAX_MEMBERS = 16


class SeedEnsemble(nn.Module):
    """Models of one recipe trained with different seeds, used as one: the feature is the mean of
    the members' L2-normalised features, so its cosine with a text is (up to one norm shared by
    all texts) the members' mean cosine. Zero-shot matching varies by 10-30 points between seeds
    while each seed's skeleton features cluster the classes well; the mean keeps what the seeds
    agree on (``benchmarks/crossdata/NOTES.md``, "Seed ensemble")."""

    def __init__(self, encoder_cfg: EncoderConfig, text_dim: int, members: int):
        super().__init__()
        if not 2 <= members <= MAX_MEMBERS:
            raise ValueError(f"a seed ensemble has 2..{MAX_MEMBERS} members, got {members}")
        self.encoder_cfg = encoder_cfg
        self.text_dim = int(text_dim)
        self.members = nn.ModuleList(SkeletonTextModel(encoder_cfg, text_dim) for _ in range(members))

    @classmethod
    def of(cls, models: list[SkeletonTextModel]) -> "SeedEnsemble":
        """The ensemble of trained ``models`` (same encoder and text size; their weights are copied)."""
        first = models[0]
        if any(m.encoder_cfg != first.encoder_cfg or m.text_dim != first.text_dim for m in models):
            raise ValueError("ensemble members must share the encoder configuration and the text size")
        ens = cls(first.encoder_cfg, first.text_dim, len(models))
        for mine, theirs in zip(ens.members, models):
            mine.load_state_dict(theirs.state_dict())
        return ens

    def clamped_tau(self) -> float:
        """The members' mean training temperature (the live softmax uses the calibrated one)."""
        return float(sum(m.clamped_tau() for m in self.members) / len(self.members))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, T, 25, M) -> (N, text_dim)``: mean of the members' normalised features."""
        return torch.stack([F.normalize(m(x), dim=-1) for m in self.members]).mean(0)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.forward(x), dim=-1)


def build_model(encoder_cfg: EncoderConfig, text_dim: int, members: int = 1) -> nn.Module:
    """The model a checkpoint describes: one :class:`SkeletonTextModel`, or a :class:`SeedEnsemble`."""
    if members == 1:
        return SkeletonTextModel(encoder_cfg, text_dim)
    return SeedEnsemble(encoder_cfg, text_dim, members)
