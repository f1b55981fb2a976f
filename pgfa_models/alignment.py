"""Prototype-guided text feature alignment (PGFA paper §III-C, eq. 6-11).

:func:`transductive_predict` is the exact two-pass transductive procedure over a whole test set;
:func:`l2_normalise` is the project's one L2 normalisation. The bounded streaming form for live
recognition is :class:`pgfa_models.bank.PrototypeBank`.

Everything is computed in float64 NumPy (torch tensors are accepted and converted), so results do
not depend on the caller's dtype or device.  Cosine similarity = dot product of L2-normalised
vectors; an all-zero vector is left at zero (cosine 0 to everything).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = [
    "TransductiveResult",
    "transductive_predict",
    "l2_normalise",
    "softmax",
    "entropy",
]

_EPS = 1e-12


# --------------------------------------------------------------------------- helpers
def _as_array(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (zero rows stay zero), float64."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), _EPS)


def softmax(s: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, numerically stable (eq. 7 applies it to raw cosines)."""
    s = np.asarray(s, dtype=np.float64)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def entropy(p: np.ndarray) -> np.ndarray:
    """H = -sum_k p_k log p_k over the last axis (natural log; 0 log 0 = 0)."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -t.sum(axis=-1)


def _floor_alpha(alpha: float, n: int) -> int:
    """floor(alpha * n) computed exactly on the decimal value of alpha (0.29 * 100 -> 29, not 28)."""
    return math.floor(Fraction(repr(float(alpha))) * n)


def _check_text(text_features: Any) -> np.ndarray:
    w = _as_array(text_features, "text_features")
    if w.ndim != 2 or w.shape[0] < 1 or w.shape[1] < 1:
        raise ValueError(f"text_features must have shape (K, D) with K, D >= 1, got {w.shape}")
    return w


def _check_features(features: Any, dim: int) -> np.ndarray:
    v = _as_array(features, "features")
    if v.ndim == 1 and v.shape[0] == dim:
        v = v[None, :]
    if v.ndim != 2 or v.shape[1] != dim:
        raise ValueError(f"features must have shape (N, {dim}) to match text_features, got {v.shape}")
    return v


# --------------------------------------------------------------------------- transductive
@dataclass
class TransductiveResult:
    """Result of :func:`transductive_predict` (N samples, K classes, D dims).

    initial:       (N,) int64  pseudo-labels, argmax of cosine to the text features (eq. 6)
    final:         (N,) int64  labels after alignment, argmax of cosine to prototypes (eq. 11)
    prototypes:    (K, D) float64  eq. (10): mean of the kept normalised features, or the text
                   feature exactly as given when no member was kept
    probs:         (N, K) float64  eq. (7): softmax over K of the raw cosines
    entropy:       (N,) float64  H_i = -sum_k P_ik log P_ik
    support_sizes: (K,) int64  |S_k|
    kept_sizes:    (K,) int64  |Z_k| = floor(alpha * |S_k|)
    kept:          list of K int64 arrays: indices of Z_k, in increasing-entropy order
    scores:        (N, K) float64  cosines to the text features
    final_scores:  (N, K) float64  cosines to the prototypes
    """

    initial: np.ndarray
    final: np.ndarray
    prototypes: np.ndarray
    probs: np.ndarray
    entropy: np.ndarray
    support_sizes: np.ndarray
    kept_sizes: np.ndarray
    kept: list
    scores: np.ndarray
    final_scores: np.ndarray


def transductive_predict(features: Any, text_features: Any, alpha: float) -> TransductiveResult:
    """Two-pass prototype-guided alignment, exactly eq. (6)-(11) of the PGFA paper.

    1. v_i, w_k L2-normalised; S = cosines (N, K); P = softmax_K(S) (no temperature, eq. 7);
       pseudo-label = argmax_k S_ik (eq. 6; ties -> lowest class index).
    2. Support S_k = normalised features pseudo-labelled k (eq. 8); entropy H_i of P_i.
    3. Keep the floor(alpha * |S_k|) members of lowest entropy (eq. 9); ties in entropy are broken
       by sample index (lower index kept first), so exactly floor(alpha*|S_k|) are kept.
    4. c_k = mean of the kept normalised features, or w_k as given if none kept (eq. 10).
       (The text feature's scale is irrelevant: step 5 uses cosine.)
    5. final = argmax_k cos(v_i, c_k) (eq. 11; softmax is monotonic so it is skipped).
    """
    w = _check_text(text_features)
    K, D = w.shape
    v = _check_features(features, D)
    try:
        alpha_f = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}") from None
    if not (0.0 <= alpha_f <= 1.0):
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    N = v.shape[0]

    vn, wn = l2_normalise(v), l2_normalise(w)
    scores = vn @ wn.T  # (N, K)
    probs = softmax(scores) if N else np.zeros((0, K))
    ent = entropy(probs) if N else np.zeros((0,))
    initial = np.argmax(scores, axis=1).astype(np.int64) if N else np.zeros((0,), np.int64)

    prototypes = w.copy()
    support = np.zeros(K, np.int64)
    kept_sizes = np.zeros(K, np.int64)
    kept: list[np.ndarray] = []
    for k in range(K):
        members = np.flatnonzero(initial == k)  # increasing sample index
        support[k] = members.size
        rho = _floor_alpha(alpha_f, members.size)
        order = np.lexsort((members, ent[members]))  # by entropy, then by index
        z = members[order[:rho]].astype(np.int64)
        kept.append(z)
        kept_sizes[k] = z.size
        if z.size:
            prototypes[k] = vn[z].mean(axis=0)

    final_scores = vn @ l2_normalise(prototypes).T
    final = np.argmax(final_scores, axis=1).astype(np.int64) if N else np.zeros((0,), np.int64)
    return TransductiveResult(
        initial=initial,
        final=final,
        prototypes=prototypes,
        probs=probs,
        entropy=ent,
        support_sizes=support,
        kept_sizes=kept_sizes,
        kept=kept,
        scores=scores,
        final_scores=final_scores,
    )
