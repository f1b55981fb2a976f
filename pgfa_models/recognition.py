"""Zero-shot recognition core shared by the live node and the bag tools (no rclpy).

* :class:`LabelSet` — class names (+ optional descriptions) and their text features. Changing the
  set embeds only texts it has not embedded before (the :class:`~pgfa_models.text.TextEncoder`
  also caches on disk), so adding one class at run time costs one sentence embedding.
* :class:`Recognizer` — skeleton model + label set + mode (``'text'`` or ``'prototype_bank'``).
  :meth:`Recognizer.classify` turns a batch of clips ``(N, 3, 50, 25, M)`` into top-k
  ``(label, score)`` lists with ONE batched forward pass.

Scores are probabilities: softmax over the classes of ``cosine / tau`` with the checkpoint's
calibrated temperature (fitted on held-out subjects; else the model's learnt tau of eq. 3), against the text features (``text`` mode) or against the current
prototypes of a streaming :class:`~pgfa_models.bank.PrototypeBank` (``prototype_bank`` mode,
which also feeds the bank with every classified window). Raw cosines are returned too.

The forward pass sits behind :func:`make_feature_fn` so an inference backend from
``pgfa_models.runtime`` can replace eager PyTorch without touching the callers.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from .alignment import l2_normalise
from .fileio import sha256_file

__all__ = ["MODES", "Prediction", "LabelSet", "Recognizer", "center_text", "checkpoint_text_center",
           "checkpoint_text_sets", "ensemble_features",
           "make_feature_fn", "make_runtime_feature_fn", "load_recognizer"]

MODES = ("text", "prototype_bank")
FeatureFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class Prediction:
    """Top-k result for one clip: ``topk`` = [(label, probability)], best first."""

    topk: list[tuple[str, float]]
    cosines: list[float]  # cosine of each top-k entry
    probs: np.ndarray  # (K,) probabilities over the whole label set

    @property
    def label(self) -> str:
        return self.topk[0][0] if self.topk else ""

    @property
    def score(self) -> float:
        return self.topk[0][1] if self.topk else 0.0


def _clean_names(names: Sequence[str]) -> list[str]:
    if isinstance(names, str):
        raise ValueError("labels must be a list of strings, not a single string")
    out = [str(n).strip() for n in names]
    if not out:
        raise ValueError("the label set is empty")
    if any(not n for n in out):
        raise ValueError("label names must be non-empty")
    dup = sorted({n for n in out if out.count(n) > 1})
    if dup:
        raise ValueError(f"label names must be unique; duplicated: {dup}")
    return out


def ensemble_features(embed: Callable[[Sequence[str]], np.ndarray], text_sets: Sequence[Sequence[str]]) -> np.ndarray:
    """(K, D): per class, the normalised mean of its texts' normalised embeddings (a prompt
    ensemble; a class of one text is that text's feature). Training and the live label set both
    use this, so a class scores against the same text feature it was trained on."""
    uniq = list(dict.fromkeys(t for texts in text_sets for t in texts))
    emb = l2_normalise(np.asarray(embed(uniq), np.float64))
    pos = {t: i for i, t in enumerate(uniq)}
    return l2_normalise(np.stack([emb[[pos[t] for t in dict.fromkeys(texts)]].mean(0)
                                  for texts in text_sets])).astype(np.float32)


def center_text(features: np.ndarray, center: np.ndarray | None) -> np.ndarray:
    """Text features with the training classes' mean text feature removed, renormalised: the
    component every "A person ..." sentence shares carries no class and pulls skeleton features
    toward the texts nearest the mean (hubs). ``None`` = the checkpoint was trained uncentred."""
    if center is None:
        return features
    return l2_normalise(np.asarray(features, np.float64) - np.asarray(center, np.float64)).astype(np.float32)


def checkpoint_text_center(meta) -> np.ndarray | None:
    """The text centre a checkpoint was trained with (``extra["text_center"]``), or None.
    Untrusted input: a centre of the wrong length or with non-finite values is refused."""
    c = (meta.extra or {}).get("text_center")
    if c is None:
        return None
    try:
        arr = np.asarray(c, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("checkpoint text_center is not a list of numbers") from None
    if arr.shape != (int(meta.text_dim),) or not np.isfinite(arr).all():
        raise ValueError(f"checkpoint text_center must be {meta.text_dim} finite numbers, got shape {arr.shape}")
    return arr


def checkpoint_text_sets(meta) -> dict[str, list[str]]:
    """Label -> the texts whose ensemble the checkpoint trained that class on (multi-source
    checkpoints store them as ``extra["class_texts"]``); empty for single-text checkpoints."""
    sets = (meta.extra or {}).get("class_texts")
    if not isinstance(sets, list) or len(sets) != len(meta.labels):
        return {}
    return {n: [str(t) for t in ts if str(t).strip()] for n, ts in zip(meta.labels, sets)
            if isinstance(ts, list) and ts}


class LabelSet:
    """Class names, the text embedded for each, and the (K, D) normalised text features.

    The text of class k is ``descriptions[k]`` when given and non-empty, else
    ``default_text_sets[name]`` (the ensemble of texts the checkpoint trained the class on: its
    feature is their normalised mean), else ``default_descriptions[name]`` (the training
    description stored in the checkpoint), else the name itself. Texts embedded once are remembered in memory (and on disk by the
    encoder), so :meth:`update` only embeds new texts.
    """

    def __init__(
        self,
        encoder,
        names: Sequence[str],
        descriptions: Sequence[str] | None = None,
        default_descriptions: Mapping[str, str] | None = None,
        default_text_sets: Mapping[str, Sequence[str]] | None = None,
        center: np.ndarray | None = None,
    ):
        self.encoder = encoder
        self.center = center  # the checkpoint's text centre (checkpoint_text_center), applied to every class
        self.default_descriptions = dict(default_descriptions or {})
        self.default_text_sets = {k: tuple(v) for k, v in (default_text_sets or {}).items() if v}
        self._memo: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.names: list[str] = []
        self.text_sets: list[tuple[str, ...]] = []
        self.features = np.zeros((0, 0), np.float32)
        self.trained = np.zeros(0, bool)  # per class: scored on the texts the checkpoint trained it on
        self.embedded_last = 0  # how many texts the last update had to embed
        self.update(names, descriptions)

    @classmethod
    def for_checkpoint(cls, encoder, meta, names: Sequence[str], descriptions: Sequence[str] | None = None) -> "LabelSet":
        """A label set whose classes of the checkpoint default to the texts it was trained on."""
        return cls(encoder, names, descriptions, default_descriptions=meta.descriptions or {},
                   default_text_sets=checkpoint_text_sets(meta), center=checkpoint_text_center(meta))

    @property
    def texts(self) -> list[str]:
        """The first text of each class (what a message or a report names)."""
        return [ts[0] for ts in self.text_sets]

    def texts_for(self, names: Sequence[str], descriptions: Sequence[str] | None = None) -> list[str]:
        return [ts[0] for ts in self.text_sets_for(names, descriptions)]

    def text_sets_for(self, names: Sequence[str], descriptions: Sequence[str] | None = None) -> list[tuple[str, ...]]:
        return [ts for ts, _ in self._resolve(names, descriptions)]

    def trained_mask(self, names: Sequence[str], descriptions: Sequence[str] | None = None) -> np.ndarray:
        """True for a class the checkpoint was trained on AND scored on its training texts (no
        explicit description replaces them); a new sentence is never trained."""
        return np.array([trained for _, trained in self._resolve(names, descriptions)], dtype=bool)

    def _resolve(self, names: Sequence[str], descriptions: Sequence[str] | None) -> list[tuple[tuple[str, ...], bool]]:
        """Per class: its texts and whether they are the checkpoint's training texts (one rule for both)."""
        names = _clean_names(names)
        descriptions = list(descriptions or [])
        if descriptions and len(descriptions) != len(names):
            raise ValueError(
                f"{len(descriptions)} descriptions for {len(names)} labels: give one per label or none"
            )
        out = []
        for i, n in enumerate(names):
            d = str(descriptions[i]).strip() if descriptions else ""
            if d:
                # a user's {name, description} is embedded as the mean of both: on the validation
                # splits utd/V1-V2 it beat the description alone (benchmarks/crossdata/query_texts.md)
                out.append((tuple(dict.fromkeys((d, n))), False))
            else:
                known = n in self.default_text_sets or n in self.default_descriptions
                out.append((self.default_text_sets.get(n) or (self.default_descriptions.get(n, "") or n,), known))
        return out

    def prepare(self, names: Sequence[str], descriptions: Sequence[str] | None = None):
        """Embed what a new label set needs without switching to it (slow part, no state change).

        Returns ``(names, text_sets, features, n_new, trained)`` for :meth:`apply`. Raises ValueError on bad input.
        """
        resolved = self._resolve(names, descriptions)
        sets = [ts for ts, _ in resolved]
        trained = np.array([t for _, t in resolved], dtype=bool)
        names = _clean_names(names)
        with self._lock:
            new = sorted({t for ts in sets for t in ts if t not in self._memo})
        if new:
            vecs = np.asarray(self.encoder.encode(new), dtype=np.float32)
            with self._lock:
                for t, v in zip(new, vecs):
                    self._memo[t] = v
        with self._lock:
            need = {t: self._memo[t] for ts in sets for t in ts}
        feats = center_text(ensemble_features(lambda ts: np.stack([need[t] for t in ts]), sets), self.center)
        return names, sets, feats, len(new), trained

    def apply(self, prepared) -> bool:
        """Switch to a label set returned by :meth:`prepare`; returns whether anything changed."""
        names, sets, feats, n_new, trained = prepared
        self.embedded_last = n_new
        if names == self.names and sets == self.text_sets:
            return False
        self.names, self.text_sets, self.features, self.trained = names, sets, feats, trained
        return True

    def update(self, names: Sequence[str], descriptions: Sequence[str] | None = None) -> bool:
        """Switch to a new label set; returns whether anything changed. Raises ValueError on bad input."""
        return self.apply(self.prepare(names, descriptions))

    def __len__(self) -> int:
        return len(self.names)


def make_feature_fn(model, device: str = "cpu", num_threads: int | None = None) -> FeatureFn:
    """Eager-PyTorch feature function: clips (N,3,T,25,M) float32 -> (N, D) L2-normalised float32.

    The single place where inference happens; swap in a ``pgfa_models.runtime`` backend here.
    """
    import torch

    if num_threads:
        torch.set_num_threads(int(num_threads))
    model = model.to(device).eval()

    def fn(clips: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(clips, dtype=np.float32)).to(device)
        with torch.inference_mode():
            v = model.embed(x)
        return v.cpu().numpy().astype(np.float32, copy=False)

    return fn


def check_seen_margin(v) -> float:
    v = float(v)
    if not (math.isfinite(v) and 0.0 <= v <= 1.0):
        raise ValueError(f"seen_margin must be in [0, 1], got {v}")
    return v


class Recognizer:
    """Classify batches of clips against a :class:`LabelSet`, in ``text`` or ``prototype_bank`` mode."""

    def __init__(
        self,
        feature_fn: FeatureFn,
        labels: LabelSet,
        mode: str = "text",
        tau: float = 0.07,
        top_k: int = 3,
        bank_options: Mapping | None = None,
        seen_margin: float = 0.0,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not (math.isfinite(tau) and tau > 0):
            raise ValueError(f"tau must be > 0, got {tau}")
        self.seen_margin = check_seen_margin(seen_margin)
        self.feature_fn = feature_fn
        self.labels = labels
        self.mode = mode
        self.tau = float(tau)
        self.top_k = int(top_k)
        self.bank_options = dict(bank_options or {})
        self._lock = threading.RLock()
        self.bank = self._new_bank()
        self.backend = "custom"
        self.backend_error: str | None = None

    def _new_bank(self):
        from .bank import PrototypeBank

        return PrototypeBank(self.labels.features, self.labels.names, **self.bank_options)

    # ----------------------------------------------------------------- state changes
    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        with self._lock:
            self.mode = mode

    def set_labels(self, names: Sequence[str], descriptions: Sequence[str] | None = None) -> bool:
        """Change the label set (embedding only new texts); the bank keeps surviving classes' memories.

        Embedding happens before the lock is taken, so classification goes on meanwhile."""
        prepared = self.labels.prepare(names, descriptions)
        with self._lock:
            changed = self.labels.apply(prepared)
            if changed:
                self.bank.set_classes(self.labels.features, self.labels.names)
            return changed

    def reset_bank(self) -> None:
        with self._lock:
            self.bank.reset()

    def save_bank(self, path) -> str:
        with self._lock:
            return str(self.bank.save(path))

    def load_bank(self, path) -> None:
        from .bank import PrototypeBank

        with self._lock:
            bank = PrototypeBank.load(path, expected_dim=self.labels.features.shape[1])
            bank.set_classes(self.labels.features, self.labels.names)
            self.bank = bank

    # ----------------------------------------------------------------- inference
    def features(self, clips: np.ndarray) -> np.ndarray:
        clips = np.asarray(clips, dtype=np.float32)
        if clips.ndim != 5 or clips.shape[1] != 3 or clips.shape[3] != 25:
            raise ValueError(f"clips must be (N, 3, T, 25, M), got {clips.shape}")
        return self.feature_fn(clips)

    def classify(self, clips: np.ndarray, top_k: int | None = None, update_bank: bool = True) -> list[Prediction]:
        """Top-k predictions for each clip of ``clips (N, 3, T, 25, M)``: one forward pass."""
        if len(clips) == 0:
            return []
        feats = self.features(clips)
        return self.classify_features(feats, top_k, update_bank)

    def classify_features(self, feats: np.ndarray, top_k: int | None = None, update_bank: bool = True) -> list[Prediction]:
        k = self.top_k if top_k is None else int(top_k)
        with self._lock:
            names = list(self.labels.names)
            if self.mode == "prototype_bank":
                res = self.bank.update(feats) if update_bank else self.bank.predict(feats)
                cos = np.asarray(res.scores, dtype=np.float64)
            else:
                cos = l2_normalise(feats) @ self.labels.features.T.astype(np.float64)
            trained, margin = self.labels.trained, self.seen_margin
        # calibrated stacking: a sentence label competes with the trained classes only once their
        # cosines give up the margin (benchmarks/crossdata, generalised zero-shot); the cosines
        # reported stay the real ones
        logits = (cos - margin * trained) / self.tau
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        k = max(1, min(k, len(names)))
        order = np.argsort(-p, axis=1, kind="stable")[:, :k]
        out = []
        for i in range(len(p)):
            idx = order[i]
            out.append(Prediction([(names[j], float(p[i, j])) for j in idx], [float(cos[i, j]) for j in idx], p[i]))
        return out


def make_runtime_feature_fn(checkpoint: str, backend: str, device: str = "cpu", num_threads: int | None = None,
                            cache_dir: str | None = None):
    """Feature function from an inference backend of ``pgfa_models.runtime`` (``auto``,
    ``onnxruntime``, ``compiled``, ...). Returns ``(fn, name)``; raises when it cannot load.
    ``cache_dir``: where built artifacts (ONNX, ...) go; None = the runtime's default."""
    from .runtime import load_runtime

    rt = load_runtime(checkpoint, backend=backend, device=device, threads=num_threads or None,
                      cache_dir=cache_dir)
    return rt.embed, rt.name


def score_temperature(extra: Mapping | None, learnt: float) -> tuple[float, str]:
    """The temperature of the live softmax: the checkpoint's calibrated one (fitted on held-out
    subjects, :mod:`pgfa_models.calibration`) when it has a usable one, else the learnt tau,
    which training drives to its lower clamp (near one-hot scores). Returns (tau, source)."""
    cal = (extra or {}).get("calibration") if isinstance(extra, Mapping) else None
    if isinstance(cal, Mapping):
        tau = cal.get("tau")
        if (isinstance(tau, (int, float)) and not isinstance(tau, bool) and math.isfinite(tau)
                and 1e-3 <= tau <= 10.0 and not cal.get("on_bound", False)):
            return float(tau), "calibrated"
    return float(learnt), "learnt"


def load_recognizer(
    checkpoint: str,
    labels: Sequence[str] | None = None,
    descriptions: Sequence[str] | None = None,
    mode: str = "text",
    top_k: int = 3,
    text_cache_dir: str | None = None,
    device: str = "cpu",
    num_threads: int | None = None,
    bank_options: Mapping | None = None,
    encoder=None,
    backend: str = "eager",
    runtime_cache_dir: str | None = None,
    seen_margin: float = 0.0,
):
    """Load a checkpoint and build ``(Recognizer, CheckpointMeta)``.

    ``labels`` default to the checkpoint's training labels; class texts default to the
    checkpoint's descriptions. ``encoder`` (a TextEncoder-like object) overrides the text model.
    ``backend``: ``eager`` (PyTorch, the reference) or a ``pgfa_models.runtime`` backend name
    (``auto``, ``onnxruntime``, ``compiled``, ``tensorrt``); when that backend cannot load, eager
    PyTorch is used and ``recognizer.backend_error`` says why. ``recognizer.backend`` names the one used.
    ``runtime_cache_dir``: where backend artifacts are built (default ``<cache root>/runtime/<sha>``, so a
    checkpoint inside a source tree never gets build products written next to it).
    """
    from .checkpoint import load_model

    model, meta = load_model(checkpoint, device=device)
    if encoder is None:
        from .text import TextEncoder

        encoder = TextEncoder(meta.text_model, cache_dir=text_cache_dir)
    label_set = LabelSet.for_checkpoint(encoder, meta, list(labels) if labels else list(meta.labels), descriptions)
    if label_set.features.shape[1] != meta.text_dim:
        raise ValueError(f"text features are {label_set.features.shape[1]}-d, the model makes {meta.text_dim}-d")
    tau, tau_source = score_temperature(meta.extra, model.clamped_tau())
    fn, used, error = None, "eager", None
    if backend and backend != "eager":
        try:
            if runtime_cache_dir is None:
                from .text import cache_root

                sha = sha256_file(checkpoint)[:16]
                runtime_cache_dir = str(cache_root(text_cache_dir) / "runtime" / sha)
            fn, used = make_runtime_feature_fn(str(checkpoint), backend, device, num_threads, runtime_cache_dir)
        except Exception as exc:  # missing library, build failure: fall back to the reference
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if fn is None:
        fn = make_feature_fn(model, device, num_threads)
    rec = Recognizer(fn, label_set, mode, tau, top_k, bank_options, seen_margin)
    rec.backend, rec.backend_error, rec.tau_source = used, error, tau_source
    return rec, meta
