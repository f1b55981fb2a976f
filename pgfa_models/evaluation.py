"""Zero-shot prediction modes over pre-extracted features: the one place their logic lives.

``pgfa-eval`` (training), ``pgfa-bag eval`` (bags) and the benchmarks all call
:func:`predict_mode`, so a mode means the same thing everywhere:

* ``text``: argmax cosine to the text features (eq. 6, no alignment);
* ``transductive``: exact two-pass alignment, :func:`transductive_predict` (eq. 6-11);
* ``bank``: :class:`PrototypeBank` over the samples in the order given: each one is
  predicted with the current prototypes, then the bank is updated with it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import torch

from .alignment import PrototypeBank, transductive_predict

PREDICTION_MODES = ("text", "transductive", "bank")


@dataclass
class ModePrediction:
    mode: str
    pred: np.ndarray                      # (N,) int64 class indices into the text features
    extra: dict[str, Any] = field(default_factory=dict)  # mode-specific facts for reports


@torch.no_grad()
def extract_features(model: torch.nn.Module, x: np.ndarray, batch_size: int = 256,
                     device: str | torch.device = "cpu") -> np.ndarray:
    """L2-normalised features ``(N, D)`` of clips ``(N, 3, T, 25, M)``, eval mode."""
    model = model.eval().to(device)
    out = []
    for i in range(0, len(x), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size])).to(device)
        out.append(model.embed(xb).cpu().numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, model.text_dim), np.float32)


def predict_mode(mode: str, features: np.ndarray, text_features: np.ndarray, class_names: list[str],
                 alpha: float = 0.9, bank_kwargs: Mapping | None = None) -> ModePrediction:
    """Predictions of one mode for L2-normalised ``features`` (N, D) against L2-normalised
    ``text_features`` (K, D) (as :func:`extract_features` and ``TextEncoder`` give them)."""
    if mode == "text":
        pred = (np.asarray(features) @ np.asarray(text_features).T).argmax(1)
        return ModePrediction(mode, pred.astype(np.int64))
    if mode == "transductive":
        r = transductive_predict(features, text_features, alpha)
        return ModePrediction(mode, r.final, {"alpha": alpha, "initial": r.initial})
    if mode == "bank":
        bank = PrototypeBank(text_features, class_names, **dict(bank_kwargs or {}))
        res = bank.update(features)
        return ModePrediction(mode, np.asarray(res.labels, np.int64), {
            "bank": {"capacity": bank.capacity, "min_support": bank.min_support,
                     "max_entropy": bank.max_entropy, "pseudo_label_source": bank.pseudo_label_source},
            "accepted": int(np.asarray(res.accepted).sum())})
    raise ValueError(f"unknown mode {mode!r}; known: {list(PREDICTION_MODES)}")
