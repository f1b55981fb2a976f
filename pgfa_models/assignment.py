"""Hub-aware and class-balanced assignment of test features to classes, beside the paper.

The paper's first pass (eq. 6) labels every test clip with its nearest text feature. When a few
text features lie close to most skeleton features ("hubs"), most clips go to those few classes
and the prototypes of eq. (10) inherit the collapse. The tools here use the one fact the test
set offers: its clips belong to K classes, and their features have cluster structure.

* :func:`sinkhorn` — class-balanced soft pseudo-labels: entropic optimal transport of the N
  samples onto K classes with (by default) uniform class marginals, in log space.
* :func:`csls` — CSLS hubness correction (Conneau et al. 2018): a class's mean similarity to
  its k nearest features, and a sample's to its k nearest classes, are subtracted.
* :func:`knn_smooth` — each sample's scores averaged with those of its mutual k nearest
  neighbours among the test features (the cluster structure votes).
* :func:`two_pass` — eq. (8)-(11) with any first-pass soft assignment; with the paper's
  softmax it reproduces :func:`pgfa_models.alignment.transductive_predict` exactly.
  :func:`transductive_balanced`, :func:`transductive_csls`, :func:`cluster_balanced` use it.
* :func:`nearest_neighbour_agreement` — the ceiling diagnostic of issue 10: how often a test
  clip's nearest other test clip (other subjects when groups are given) has its class.
* :class:`StreamingHubness` / :class:`HubAwareBank` — the streaming form of CSLS for the
  prototype bank: each class keeps its k highest text cosines seen so far (bounded memory) and
  the bank's pseudo-labels (eq. 6/7 step) use the corrected cosines. (A class-balanced bank is
  not offered: the evaluation stream, sorted by name, and a live scene both come in blocks of
  one class, which any balance constraint over a recent window would break up.)

Pure NumPy, float64, deterministic (ties always go to the lower index).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Hashable, Sequence

import numpy as np

from .alignment import TransductiveResult, _as_array, entropy, l2_normalise, softmax
from .bank import BankResult, PrototypeBank

__all__ = [
    "SinkhornResult",
    "sinkhorn",
    "balanced_labels",
    "class_hubness",
    "csls",
    "mutual_knn",
    "knn_smooth",
    "two_pass",
    "transductive_balanced",
    "transductive_csls",
    "cluster_balanced",
    "NeighbourAgreement",
    "nearest_neighbour_agreement",
    "StreamingHubness",
    "HubAwareBank",
]

_TIE_RTOL = 1e-9


# --------------------------------------------------------------------------- checks
def _matrix(x: Any, name: str) -> np.ndarray:
    """alignment's float64 finite-array check, plus: two-dimensional."""
    a = _as_array(x, name)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array (N, K), got shape {a.shape}")
    return a


def _scores(x: Any) -> np.ndarray:
    s = _matrix(x, "scores")
    if s.shape[1] < 1:
        raise ValueError(f"scores must have at least one class column, got shape {s.shape}")
    return s


def _positive_int(v: Any, name: str) -> int:
    try:
        ok = not isinstance(v, bool) and int(v) == v and int(v) >= 1
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    return int(v)


def _lse(a: np.ndarray, axis: int) -> np.ndarray:
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def _features_and_text(features: Any, text_features: Any) -> tuple[np.ndarray, np.ndarray]:
    w = _matrix(text_features, "text_features")
    if w.shape[0] < 1 or w.shape[1] < 1:
        raise ValueError(f"text_features must have shape (K, D) with K, D >= 1, got {w.shape}")
    v = np.asarray(features.detach().cpu().numpy() if hasattr(features, "detach") else features, np.float64)
    if v.ndim == 1 and v.shape[0] == w.shape[1]:
        v = v[None, :]
    if v.ndim != 2 or v.shape[1] != w.shape[1]:
        raise ValueError(f"features must have shape (N, {w.shape[1]}) to match text_features, got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("features contains NaN or infinite values")
    return l2_normalise(v), l2_normalise(w)


# --------------------------------------------------------------------------- Sinkhorn
@dataclass
class SinkhornResult:
    """Entropic OT of N samples (mass 1/N each) onto K classes (mass ``marginals``).

    assignment:  (N, K) soft pseudo-labels, each row sums to 1, column k sums to N * marginals[k]
    plan:        (N, K) the transport plan itself (= assignment / N, sums to 1)
    marginals:   (K,) the class marginals used
    iterations:  row/column updates done
    converged:   whether max |column mass / target - 1| <= tol was reached (relax > 0: whether
                 the potentials changed by <= tol)
    marginal_error: max |column mass / target - 1| at the end (rows are exact)
    """

    assignment: np.ndarray
    plan: np.ndarray
    marginals: np.ndarray
    iterations: int
    converged: bool
    marginal_error: float


def sinkhorn(scores: Any, epsilon: float = 0.05, iterations: int = 1000, tol: float = 1e-6,
             class_marginals: Sequence[float] | None = None, relax: float = 0.0) -> SinkhornResult:
    """Class-balanced soft assignment: the plan P maximising <P, S> + epsilon * H(P) with row
    sums 1/N and column sums ``class_marginals`` (uniform by default), by Sinkhorn-Knopp
    iterations on the dual potentials in log space (no overflow for small epsilon).

    ``epsilon`` is the temperature: small -> near-hard balanced assignment, large -> uniform.
    With N < K each class still receives N/K samples' worth of mass, so every sample spreads
    over several classes (N = 1: uniform); :func:`balanced_labels` breaks such ties by score.

    ``relax`` = 0: the class marginals are exact. ``relax`` = r > 0: they are a KL penalty
    (unbalanced OT, penalty weight epsilon / r), each column update moves only by 1 / (1 + r),
    so a class with truly more clips can keep more; r -> inf leaves the rows' softmax(S / eps).
    Convergence is then on the potentials (max change <= tol) and ``marginal_error`` is only
    reported.
    """
    s = _scores(scores)
    try:
        eps = float(epsilon)
        tol_f = float(tol)
    except (TypeError, ValueError):
        raise ValueError(f"epsilon and tol must be numbers, got {epsilon!r}, {tol!r}") from None
    if not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"epsilon must be a positive number, got {epsilon!r}")
    if not (tol_f >= 0 and math.isfinite(tol_f)):
        raise ValueError(f"tol must be a number >= 0, got {tol!r}")
    n_iter = _positive_int(iterations, "iterations")
    try:
        r = float(relax)
    except (TypeError, ValueError):
        raise ValueError(f"relax must be a number >= 0, got {relax!r}") from None
    if not (r >= 0 and math.isfinite(r)):
        raise ValueError(f"relax must be a finite number >= 0, got {relax!r}")
    lam = 1.0 / (1.0 + r)
    N, K = s.shape
    if class_marginals is None:
        b = np.full(K, 1.0 / K)
    else:
        b = np.asarray(class_marginals, dtype=np.float64).reshape(-1)
        if b.shape != (K,) or not np.all(np.isfinite(b)) or np.any(b <= 0):
            raise ValueError(f"class_marginals must be {K} positive finite numbers, got {class_marginals!r}")
        b = b / b.sum()
    if N == 0:
        z = np.zeros((0, K))
        return SinkhornResult(z, z.copy(), b, 0, True, 0.0)
    L = s / eps
    log_a, log_b = -math.log(N), np.log(b)
    f = np.zeros(N)
    g = np.zeros(K)
    err, it, done = math.inf, 0, False
    for it in range(1, n_iter + 1):
        g_old = g
        g = lam * (log_b - _lse(L + f[:, None], axis=0))
        f = log_a - _lse(L + g[None, :], axis=1)       # rows exact after this update
        col = np.exp(_lse(L + f[:, None] + g[None, :], axis=0))
        err = float(np.max(np.abs(col / b - 1.0)))
        done = err <= tol_f if r == 0 else (it > 1 and float(np.max(np.abs(g - g_old))) <= tol_f)
        if done:
            break
    log_p = L + f[:, None] + g[None, :]
    plan = np.exp(log_p)
    assignment = np.exp(log_p - _lse(log_p, axis=1)[:, None])  # rows sum to 1 to rounding
    return SinkhornResult(assignment, plan, b, it, bool(done), err)


def _argmax_ties_by(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Row argmax of ``primary``; values within a relative 1e-9 of the row maximum are ties,
    resolved by the larger ``secondary`` value, then by the lower index."""
    if primary.shape[0] == 0:
        return np.zeros(0, np.int64)
    top = primary.max(axis=1, keepdims=True)
    tied = primary >= top - _TIE_RTOL * np.maximum(np.abs(top), 1e-300)
    return np.argmax(np.where(tied, secondary, -np.inf), axis=1).astype(np.int64)


def balanced_labels(assignment: Any, scores: Any) -> np.ndarray:
    """Hard labels from a soft assignment (argmax), ties (e.g. N = 1: uniform) by raw score."""
    q, s = _matrix(assignment, "assignment"), _scores(scores)
    if q.shape != s.shape:
        raise ValueError(f"assignment {q.shape} and scores {s.shape} differ in shape")
    return _argmax_ties_by(q, s)


# --------------------------------------------------------------------------- CSLS
def _topk_mean(s: np.ndarray, k: int, axis: int) -> np.ndarray:
    n = s.shape[axis]
    if n == 0:
        return np.zeros(s.shape[1 - axis])
    k = min(k, n)
    part = -np.partition(-s, k - 1, axis=axis)
    part = part[:k] if axis == 0 else part[:, :k]
    return part.mean(axis=axis)


def class_hubness(scores: Any, k: int = 10) -> np.ndarray:
    """(K,) r_k: mean of class k's ``k`` highest similarities over the samples (k clamped to N).
    A hub has a high r_k: it is close to many samples, not only to its own."""
    return _topk_mean(_scores(scores), _positive_int(k, "k"), axis=0)


def csls(scores: Any, k: int = 10) -> np.ndarray:
    """CSLS(i, k) = 2 s_ik - r_i - r_k: r_k = :func:`class_hubness`, r_i = the sample's mean
    similarity to its k nearest classes (k clamped to K). r_i is constant along a row, so the
    row argmax depends only on the class penalty r_k. With N = 1 the argmax is the text argmax."""
    s = _scores(scores)
    kk = _positive_int(k, "k")
    if s.shape[0] == 0:
        return s.copy()
    r_class = _topk_mean(s, kk, axis=0)
    r_sample = _topk_mean(s, kk, axis=1)
    return 2.0 * s - r_sample[:, None] - r_class[None, :]


# --------------------------------------------------------------------------- cluster structure
_BLOCK = 1024  # rows of the cosine matrix held at once: memory O(_BLOCK * N), not O(N^2)


def _cosine_blocks(vn: np.ndarray, group_codes: np.ndarray | None = None):
    """Yield (row indices, cosines (B, N)) with excluded pairs (self; same group) at -inf."""
    N = vn.shape[0]
    for a in range(0, N, _BLOCK):
        rows = np.arange(a, min(a + _BLOCK, N))
        sim = vn[rows] @ vn.T
        sim[np.arange(len(rows)), rows] = -np.inf
        if group_codes is not None:
            sim[group_codes[rows][:, None] == group_codes[None, :]] = -np.inf
        yield rows, sim


def mutual_knn(features: Any, k: int = 5) -> list[np.ndarray]:
    """For each sample, the samples j with j among its k nearest (cosine) and it among j's
    (k clamped to N - 1; ties by lower index). Returns N sorted index arrays (maybe empty)."""
    v = _matrix(features, "features")
    kk = _positive_int(k, "k")
    N = v.shape[0]
    if N < 2:
        return [np.zeros(0, np.int64) for _ in range(N)]
    kk = min(kk, N - 1)
    knn = np.zeros((N, kk), np.int64)
    for rows, sim in _cosine_blocks(l2_normalise(v)):
        # the kk largest per row; among values equal to the kk-th, the lowest indices (no full sort)
        thr = -np.partition(-sim, kk - 1, axis=1)[:, kk - 1:kk]
        above, at = sim > thr, sim == thr
        need = kk - above.sum(axis=1, keepdims=True)
        chosen = above | (at & (np.cumsum(at, axis=1) <= need))
        knn[rows] = np.nonzero(chosen)[1].reshape(len(rows), kk)
    src = np.repeat(np.arange(N, dtype=np.int64), kk)
    dst = knn.reshape(-1)
    mutual = np.isin(src * N + dst, dst * N + src)  # (i -> j) whose reverse (j -> i) exists
    out = [[] for _ in range(N)]
    for i, j in zip(src[mutual].tolist(), dst[mutual].tolist()):
        out[i].append(j)
    return [np.asarray(sorted(x), np.int64) for x in out]


def knn_smooth(features: Any, scores: Any, k: int = 5) -> np.ndarray:
    """Scores of each sample averaged over itself and its mutual k nearest neighbours: clips of
    one tight cluster vote together, which damps an isolated pull towards a hub."""
    s = _scores(scores)
    nbrs = mutual_knn(features, k)
    if len(nbrs) != s.shape[0]:
        raise ValueError(f"{len(nbrs)} features for {s.shape[0]} score rows")
    out = np.empty_like(s)
    for i, nb in enumerate(nbrs):
        out[i] = s[np.concatenate(([i], nb))].mean(axis=0)
    return out


# --------------------------------------------------------------------------- two-pass variants
def _floor_alpha(alpha: float, n: int) -> int:
    """floor(alpha * n) on alpha's decimal value, as alignment does (0.29 * 100 -> 29)."""
    return math.floor(Fraction(repr(float(alpha))) * n)


def _check_alpha(alpha: Any) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}") from None
    if not (0.0 <= a <= 1.0):
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    return a


def two_pass(features: Any, text_features: Any, alpha: float, soft: Any,
             pseudo_labels: Any | None = None) -> TransductiveResult:
    """Eq. (8)-(11) with a given first pass: ``soft`` (N, K) replaces eq. (7)'s P (its row
    entropies filter the supports, eq. 9) and ``pseudo_labels`` (default argmax of ``soft``)
    replace eq. (6). Everything else (supports, floor(alpha |S_k|) lowest-entropy members with
    ties by sample index, prototype = mean or the text feature, final argmax cosine) is the
    paper's, so ``soft = softmax(cosines)`` gives :func:`transductive_predict` exactly."""
    vn, wn = _features_and_text(features, text_features)
    a = _check_alpha(alpha)
    w = np.asarray(text_features.detach().cpu().numpy() if hasattr(text_features, "detach") else text_features,
                   np.float64)
    N, K = vn.shape[0], wn.shape[0]
    p = _matrix(soft, "soft")
    if p.shape != (N, K):
        raise ValueError(f"soft assignment must have shape ({N}, {K}), got {p.shape}")
    if pseudo_labels is None:
        initial = np.argmax(p, axis=1).astype(np.int64) if N else np.zeros(0, np.int64)
    else:
        initial = np.asarray(pseudo_labels, dtype=np.int64).reshape(-1)
        if initial.shape != (N,) or (N and (initial.min() < 0 or initial.max() >= K)):
            raise ValueError(f"pseudo_labels must be {N} class indices in [0, {K})")
    ent = entropy(p) if N else np.zeros(0)
    prototypes = w.copy()
    support = np.zeros(K, np.int64)
    kept_sizes = np.zeros(K, np.int64)
    kept: list[np.ndarray] = []
    for k in range(K):
        members = np.flatnonzero(initial == k)
        support[k] = members.size
        order = np.lexsort((members, ent[members]))
        z = members[order[:_floor_alpha(a, members.size)]].astype(np.int64)
        kept.append(z)
        kept_sizes[k] = z.size
        if z.size:
            prototypes[k] = vn[z].mean(axis=0)
    final_scores = vn @ l2_normalise(prototypes).T
    final = np.argmax(final_scores, axis=1).astype(np.int64) if N else np.zeros(0, np.int64)
    return TransductiveResult(initial=initial, final=final, prototypes=prototypes, probs=p, entropy=ent,
                              support_sizes=support, kept_sizes=kept_sizes, kept=kept, scores=vn @ wn.T,
                              final_scores=final_scores)


def transductive_balanced(features: Any, text_features: Any, alpha: float, epsilon: float = 0.05,
                          iterations: int = 1000, tol: float = 1e-6,
                          relax: float = 0.0) -> tuple[TransductiveResult, SinkhornResult]:
    """The paper's two-pass with the first pass replaced by the Sinkhorn plan of the cosines:
    pseudo-labels = :func:`balanced_labels`, entropies from the plan's rows."""
    vn, wn = _features_and_text(features, text_features)
    s = vn @ wn.T
    sk = sinkhorn(s, epsilon, iterations, tol, relax=relax)
    return two_pass(vn, text_features, alpha, sk.assignment, balanced_labels(sk.assignment, s)), sk


def transductive_csls(features: Any, text_features: Any, alpha: float, k: int = 10) -> TransductiveResult:
    """The paper's two-pass with eq. (6)/(7) applied to CSLS-corrected cosines."""
    vn, wn = _features_and_text(features, text_features)
    c = csls(vn @ wn.T, k)
    return two_pass(vn, text_features, alpha, softmax(c) if len(c) else c, np.argmax(c, axis=1) if len(c) else None)


def cluster_balanced(features: Any, text_features: Any, alpha: float, k: int = 5, epsilon: float = 0.05,
                     iterations: int = 1000, tol: float = 1e-6,
                     relax: float = 0.0) -> tuple[TransductiveResult, SinkhornResult]:
    """:func:`transductive_balanced` on mutual-kNN-smoothed cosines (:func:`knn_smooth`)."""
    vn, wn = _features_and_text(features, text_features)
    s = knn_smooth(vn, vn @ wn.T, k)
    sk = sinkhorn(s, epsilon, iterations, tol, relax=relax)
    return two_pass(vn, text_features, alpha, sk.assignment, balanced_labels(sk.assignment, s)), sk


# --------------------------------------------------------------------------- ceiling diagnostic
@dataclass
class NeighbourAgreement:
    """accuracy: share of scored clips whose nearest neighbour has their class (None if none
    scored); neighbour: (N,) index of that neighbour or -1 (no eligible clip, not scored);
    correct: (N,) bool; scored: clips with a neighbour; grouped: whether groups were used."""

    accuracy: float | None
    neighbour: np.ndarray
    correct: np.ndarray
    scored: int
    grouped: bool


def nearest_neighbour_agreement(features: Any, labels: Any,
                                groups: Sequence[Hashable | None] | None = None) -> NeighbourAgreement:
    """For each clip, whether its nearest other clip (cosine) has the same label. With
    ``groups`` (one id per clip, e.g. the subject; None = no group), clips of the same group
    are excluded, so the ceiling is not inflated by the same person's other trials."""
    v = _matrix(features, "features")
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    N = v.shape[0]
    if y.shape != (N,):
        raise ValueError(f"{y.shape[0]} labels for {N} features")
    gi = None
    if groups is not None:
        g = list(groups)
        if len(g) != N:
            raise ValueError(f"{len(g)} groups for {N} features")
        codes: dict[Hashable, int] = {}
        gi = np.array([-1 - i if x is None else codes.setdefault(x, len(codes)) for i, x in enumerate(g)], np.int64)
    if N < 2:
        return NeighbourAgreement(None, np.full(N, -1, np.int64), np.zeros(N, bool), 0, groups is not None)
    nb = np.full(N, -1, np.int64)
    has = np.zeros(N, bool)
    for rows, sim in _cosine_blocks(l2_normalise(v), gi):
        best = np.argmax(sim, axis=1)  # first maximum: ties -> lower index
        ok = np.isfinite(sim[np.arange(len(rows)), best])
        nb[rows[ok]], has[rows] = best[ok], ok
    correct = has & (y[np.where(has, nb, 0)] == y)
    scored = int(has.sum())
    return NeighbourAgreement(float(correct.sum() / scored) if scored else None, nb, correct, scored,
                              groups is not None)


# --------------------------------------------------------------------------- streaming CSLS
class StreamingHubness:
    """Running class hubness r_k of :func:`class_hubness` over a stream: per class, the ``k``
    highest cosines observed so far (O(K k) memory, O(K k) per sample). Before any sample
    r_k = 0 (no correction); with fewer than k samples the mean is over those seen."""

    def __init__(self, num_classes: int, k: int = 10):
        self.k = _positive_int(k, "k")
        self.num_classes = _positive_int(num_classes, "num_classes")
        self.reset()

    def reset(self) -> None:
        self._top = np.full((self.num_classes, self.k), -np.inf)
        self.seen = 0

    def observe(self, scores: Any) -> None:
        """Add one sample's (K,) cosines."""
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        if s.shape != (self.num_classes,) or not np.all(np.isfinite(s)):
            raise ValueError(f"expected {self.num_classes} finite cosines, got shape {s.shape}")
        both = np.concatenate([self._top, s[:, None]], axis=1)
        self._top = -np.sort(-both, axis=1)[:, : self.k]
        self.seen += 1

    def penalty(self) -> np.ndarray:
        """(K,) r_k: mean of the (up to k) highest cosines seen per class; zeros before any."""
        n = min(self.seen, self.k)
        return self._top[:, :n].mean(axis=1) if n else np.zeros(self.num_classes)


class HubAwareBank(PrototypeBank):
    """:class:`~pgfa_models.bank.PrototypeBank` whose pseudo-labels come from CSLS-corrected
    text cosines s_k - r_k / 2 (same argmax as 2 s_k - r_k; halved so entropies and
    ``max_entropy`` stay on the cosine scale), r_k from :class:`StreamingHubness` over the
    samples given to :meth:`update` (the current one included, as batch CSLS includes it).
    Prototypes, memories and classification are the bank's. Pseudo-labels come from the text
    features only; the hubness statistics are not saved with the bank and restart when the
    class set changes. Uses the bank's pseudo-label step (``_pseudo``): a public hook there
    (a ``pseudo_labeler`` callable) would let this live without subclassing."""

    def __init__(self, text_features: Any, class_names: Sequence[str], csls_k: int = 10, **bank_kwargs: Any):
        if bank_kwargs.get("pseudo_label_source", "text") != "text":
            raise ValueError("HubAwareBank pseudo-labels from the text features (pseudo_label_source='text')")
        super().__init__(text_features, class_names, **bank_kwargs)
        self.csls_k = _positive_int(csls_k, "csls_k")
        self._hub = StreamingHubness(self.num_classes, self.csls_k)
        self._wn = l2_normalise(self.text_features())

    def reset(self) -> None:
        super().reset()
        if hasattr(self, "_hub"):
            self._hub.reset()

    def set_classes(self, text_features: Any, class_names: Sequence[str]) -> None:
        super().set_classes(text_features, class_names)
        self._hub = StreamingHubness(self.num_classes, self.csls_k)
        self._wn = l2_normalise(self.text_features())

    def hubness(self) -> np.ndarray:
        """(K,) the current class penalties r_k."""
        return self._hub.penalty()

    def _pseudo(self, vn: np.ndarray) -> tuple[int, float]:
        c = self._wn @ vn - 0.5 * self._hub.penalty()
        K = c.shape[0]
        h = float(entropy(softmax(c))) / math.log(K) if K > 1 else 0.0
        return int(np.argmax(c)), h

    def update(self, features: Any) -> BankResult:
        v = np.asarray(features.detach().cpu().numpy() if hasattr(features, "detach") else features, np.float64)
        if v.ndim == 1:
            v = v[None, :]
        if v.ndim != 2 or v.shape[0] == 0 or v.shape[1] != self.dim or not np.all(np.isfinite(v)):
            return super().update(v)  # empty, or the bank's own error before anything changes
        parts = []
        for row in v:
            self._hub.observe(self._wn @ l2_normalise(row))
            parts.append(super().update(row[None, :]))
        return BankResult(labels=np.concatenate([p.labels for p in parts]),
                          scores=np.concatenate([p.scores for p in parts]),
                          pseudo_labels=np.concatenate([p.pseudo_labels for p in parts]),
                          entropy=np.concatenate([p.entropy for p in parts]),
                          accepted=np.concatenate([p.accepted for p in parts]))
