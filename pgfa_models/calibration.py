"""Temperature scaling of cosine scores (issue 10 item 4, issue 11 item 4).

The temperature learnt with eq. (5) sharpens the *training* loss and ends on the lower clamp,
so the live softmax is near one-hot whatever the evidence. The temperature that makes
``softmax(cos / tau)`` a calibrated probability is instead fitted on held-out validation data
(other subjects, seen classes) by minimising the negative log-likelihood: one scalar, so a
bounded 1-D search is exact enough and cannot overfit the validation set in any useful way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TAU_SEARCH = (0.005, 2.0)  # bounds of the search; a fit on a bound is reported as such


def _nll(sims: np.ndarray, labels: np.ndarray, tau: float) -> float:
    z = sims / tau
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


def softmax(sims: np.ndarray, tau: float) -> np.ndarray:
    z = np.asarray(sims, np.float64) / float(tau)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Calibration:
    tau: float          # fitted temperature
    nll: float          # validation NLL at tau
    ece: float          # expected calibration error (15 bins) at tau
    accuracy: float     # validation top-1 (does not depend on tau)
    n: int              # validation samples
    on_bound: bool      # tau not identified: a search bound, or validation too easy (NLL ~ 0)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("tau", "nll", "ece", "accuracy", "n", "on_bound")}


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    err = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            err += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(err)


def fit_temperature(sims: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = TAU_SEARCH,
                    iters: int = 80) -> Calibration:
    """The tau minimising validation NLL of ``softmax(sims / tau)`` (golden-section on log tau).

    ``sims``: (N, K) cosine similarities of validation features to the K class texts;
    ``labels``: (N,) their true class index.
    """
    sims = np.asarray(sims, np.float64)
    labels = np.asarray(labels, np.int64)
    if sims.ndim != 2 or len(sims) == 0 or sims.shape[1] < 2 or labels.shape != (len(sims),):
        raise ValueError(f"fit_temperature needs (N, K>=2) similarities and N labels, got {sims.shape}, {labels.shape}")
    if labels.min() < 0 or labels.max() >= sims.shape[1]:
        raise ValueError("labels out of range of the similarity columns")
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    g = (np.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = _nll(sims, labels, np.exp(c)), _nll(sims, labels, np.exp(d))
    for _ in range(iters):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = _nll(sims, labels, np.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = _nll(sims, labels, np.exp(d))
    log_tau = (a + b) / 2
    tau = float(np.exp(log_tau))
    probs = softmax(sims, tau)
    nll = _nll(sims, labels, tau)
    # on a bound, or a validation set so easy the NLL vanishes: tau is then not identified
    on_bound = bool(min(log_tau - lo, hi - log_tau) < 1e-3 * (hi - lo) or nll < 1e-9)
    return Calibration(tau, nll, expected_calibration_error(probs, labels),
                       float((sims.argmax(1) == labels).mean()), int(len(labels)), on_bound)
