"""Streaming prototype-guided alignment for live recognition (PGFA paper §III-C, in bounded form).

:class:`PrototypeBank` is the online counterpart of :func:`pgfa_models.alignment.transductive_predict`:
instead of two passes over a whole test set it keeps, per class, a bounded memory of the most
confident pseudo-labelled features and classifies each new sample against the memories' means.
It is saved and loaded as a pickle-free ``.npz``. Arithmetic is float64 NumPy, as in
:mod:`pgfa_models.alignment`, whose helpers it uses.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .alignment import _check_features, _check_text, entropy, l2_normalise, softmax
from .fileio import atomic_output

__all__ = ["BankResult", "BankFormatError", "PrototypeBank"]


class BankFormatError(ValueError):
    """A saved PrototypeBank file is unreadable, corrupt or does not match what is expected."""


@dataclass
class BankResult:
    """Per-sample output of :meth:`PrototypeBank.update` / :meth:`PrototypeBank.predict`.

    labels:        (N,) int64  argmax cosine to the current prototypes (eq. 11 form)
    scores:        (N, K) float64  cosines to the prototypes used for ``labels``
    pseudo_labels: (N,) int64  eq. (6) labels from the pseudo-label source
    entropy:       (N,) float64  normalised entropy H / log K of the pseudo-label distribution
    accepted:      (N,) bool  whether the sample entered (and stayed in) a class memory
    """

    labels: np.ndarray
    scores: np.ndarray
    pseudo_labels: np.ndarray
    entropy: np.ndarray
    accepted: np.ndarray


_FORMAT_VERSION = 1
_SOURCES = ("text", "prototype")


class PrototypeBank:
    """Streaming prototype-guided alignment with bounded memory and bounded time per update.

    Each class k keeps a memory of at most ``capacity`` normalised features that were
    pseudo-labelled k (eq. 6/7) and accepted (normalised entropy H/log K <= ``max_entropy``,
    or all when it is None).  Its prototype is the memory's mean once it holds ``min_support``
    members, else the text feature (eq. 10 fallback).  A full memory drops, among its members and
    the newcomer, the one of highest entropy (ties: the oldest), so it always holds the
    ``capacity`` most confident samples seen for that class.

    ``update`` processes the samples of a batch one after another (classify with the current
    prototypes, then pseudo-label and possibly store), so the result depends only on the order of
    the stream, not on how it is split into batches.  Time per sample is O(K*D + capacity*D).

    ``pseudo_label_source``: ``'text'`` (paper: pseudo-labels and entropies from the text
    features) or ``'prototype'`` (self-training: from the current prototypes).

    ``max_age`` (None = never): members are kept only among the last ``max_age`` samples
    considered for storage (those that passed the entropy gate, of any class). Without it the
    most confident samples stay forever; with it the bank follows a scene that changes (another
    person, another camera pose), at the cost of noisier prototypes.
    """

    def __init__(
        self,
        text_features: Any,
        class_names: Sequence[str],
        capacity: int = 64,
        min_support: int = 3,
        max_entropy: float | None = None,
        pseudo_label_source: str = "text",
        max_age: int | None = None,
    ):
        if int(capacity) != capacity or capacity < 1:
            raise ValueError(f"capacity must be an integer >= 1, got {capacity!r}")
        if int(min_support) != min_support or not (1 <= min_support <= capacity):
            raise ValueError(f"min_support must be an integer in [1, capacity={capacity}], got {min_support!r}")
        if max_entropy is not None:
            max_entropy = float(max_entropy)
            if not (0.0 <= max_entropy <= 1.0) or math.isnan(max_entropy):
                raise ValueError(f"max_entropy must be None or in [0, 1] (normalised entropy), got {max_entropy!r}")
        if pseudo_label_source not in _SOURCES:
            raise ValueError(f"pseudo_label_source must be one of {_SOURCES}, got {pseudo_label_source!r}")
        if max_age is not None and (int(max_age) != max_age or max_age < 1):
            raise ValueError(f"max_age must be None or an integer >= 1, got {max_age!r}")
        self.capacity = int(capacity)
        self.min_support = int(min_support)
        self.max_entropy = max_entropy
        self.pseudo_label_source = pseudo_label_source
        self.max_age = None if max_age is None else int(max_age)
        self._seq = 0
        w, names = self._check_classes(text_features, class_names)
        self._install(w, names, keep=None)

    # ---------------------------------------------------------------- state
    @staticmethod
    def _check_classes(text_features: Any, class_names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        w = _check_text(text_features)
        if isinstance(class_names, str):
            raise ValueError("class_names must be a list of strings, not a single string")
        names = [str(n) for n in class_names]
        if len(names) != w.shape[0]:
            raise ValueError(f"{len(names)} class names for {w.shape[0]} text features")
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"class names must be unique; duplicated: {dup}")
        return w, names

    def _install(self, w: np.ndarray, names: list[str], keep: dict | None) -> None:
        K, D = w.shape
        self._text = w
        self._text_n = l2_normalise(w)
        self.class_names = list(names)
        self._feats = np.zeros((K, self.capacity, D))
        self._ent = np.zeros((K, self.capacity))
        self._seqs = np.zeros((K, self.capacity), np.int64)
        self._count = np.zeros(K, np.int64)
        if keep:
            for k, n in enumerate(names):
                if n in keep:
                    f, e, s = keep[n]
                    c = f.shape[0]
                    self._feats[k, :c], self._ent[k, :c], self._seqs[k, :c] = f, e, s
                    self._count[k] = c
        self._protos = self._text.copy()
        self._protos_n = self._text_n.copy()
        for k in range(K):
            self._refresh(k)

    def _refresh(self, k: int) -> None:
        c = self._count[k]
        if c >= self.min_support:
            self._protos[k] = self._feats[k, :c].mean(axis=0)
        else:
            self._protos[k] = self._text[k]
        self._protos_n[k] = l2_normalise(self._protos[k])

    @property
    def num_classes(self) -> int:
        return self._text.shape[0]

    @property
    def dim(self) -> int:
        return self._text.shape[1]

    def prototypes(self) -> np.ndarray:
        """(K, D) float64: memory mean where at least min_support members, else the text feature."""
        return self._protos.copy()

    def text_features(self) -> np.ndarray:
        return self._text.copy()

    def counts(self) -> np.ndarray:
        """(K,) int64 number of stored members per class."""
        return self._count.copy()

    def memory(self, k: int) -> np.ndarray:
        """(count_k, D) stored normalised features of class k, in storage order."""
        return self._feats[k, : self._count[k]].copy()

    def reset(self) -> None:
        """Forget every memory; prototypes fall back to the text features."""
        self._seq = 0
        self._install(self._text, self.class_names, keep=None)

    def set_classes(self, text_features: Any, class_names: Sequence[str]) -> None:
        """Replace the label set; memories of classes whose names persist are kept.

        Their stored entropies are recomputed against the new class set (text features), since
        entropies over a different K are not comparable.  The feature dimension must not change.
        """
        w, names = self._check_classes(text_features, class_names)
        if w.shape[1] != self.dim:
            raise ValueError(
                f"new text features are {w.shape[1]}-d but the bank holds {self.dim}-d features; "
                "build a new PrototypeBank for a different text model"
            )
        keep = {}
        new_wn = l2_normalise(w)
        logk = math.log(w.shape[0]) if w.shape[0] > 1 else 1.0
        for k, n in enumerate(self.class_names):
            c = self._count[k]
            if n in names and c:
                f = self._feats[k, :c].copy()
                e = entropy(softmax(f @ new_wn.T)) / logk if w.shape[0] > 1 else np.zeros(c)
                keep[n] = (f, e, self._seqs[k, :c].copy())
        self._install(w, names, keep)

    # ---------------------------------------------------------------- inference
    def _pseudo(self, vn: np.ndarray) -> tuple[int, float]:
        ref = self._text_n if self.pseudo_label_source == "text" else self._protos_n
        s = ref @ vn
        K = s.shape[0]
        h = float(entropy(softmax(s))) / math.log(K) if K > 1 else 0.0
        return int(np.argmax(s)), h

    def predict(self, features: Any) -> BankResult:
        """Classify with the current prototypes without changing the bank."""
        vn = l2_normalise(_check_features(features, self.dim))
        scores = vn @ self._protos_n.T
        n = vn.shape[0]
        pl, he = np.zeros(n, np.int64), np.zeros(n)
        for i in range(n):
            pl[i], he[i] = self._pseudo(vn[i])
        return BankResult(
            labels=np.argmax(scores, axis=1).astype(np.int64) if n else np.zeros(0, np.int64),
            scores=scores,
            pseudo_labels=pl,
            entropy=he,
            accepted=np.zeros(n, bool),
        )

    def update(self, features: Any) -> BankResult:
        """For each sample in order: classify (eq. 11 form), pseudo-label (eq. 6/7), maybe store."""
        vn = l2_normalise(_check_features(features, self.dim))
        n, K = vn.shape[0], self.num_classes
        labels, pl = np.zeros(n, np.int64), np.zeros(n, np.int64)
        scores, he, acc = np.zeros((n, K)), np.zeros(n), np.zeros(n, bool)
        for i in range(n):
            s = self._protos_n @ vn[i]
            scores[i] = s
            labels[i] = int(np.argmax(s))
            k, h = self._pseudo(vn[i])
            pl[i], he[i] = k, h
            if self.max_entropy is not None and h > self.max_entropy:
                continue
            acc[i] = self._insert(k, vn[i], h)
            self._expire()
        return BankResult(labels=labels, scores=scores, pseudo_labels=pl, entropy=he, accepted=acc)

    def _expire(self) -> None:
        """Drop members that are not among the last ``max_age`` candidates (storage order kept)."""
        if self.max_age is None:
            return
        oldest = self._seq - self.max_age
        for k in np.flatnonzero(self._count):
            c = self._count[k]
            keep = np.flatnonzero(self._seqs[k, :c] >= oldest)
            if len(keep) == c:
                continue
            m = len(keep)
            for a in (self._feats, self._ent, self._seqs):
                a[k, :m] = a[k, keep]
            self._count[k] = m
            self._refresh(k)

    def _insert(self, k: int, vn: np.ndarray, h: float) -> bool:
        seq = self._seq
        self._seq += 1
        c = self._count[k]
        if c < self.capacity:
            slot = c
            self._count[k] = c + 1
        else:
            ent, seqs = self._ent[k], self._seqs[k]
            worst = int(np.lexsort((seqs, -ent))[0])  # highest entropy, then oldest
            if h > ent[worst]:  # newcomer is the worst of all: memory unchanged
                return False
            slot = worst
        self._feats[k, slot] = vn
        self._ent[k, slot] = h
        self._seqs[k, slot] = seq
        self._refresh(k)
        return True

    # ---------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the bank to ``path`` (.npz, no pickles), atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = dict(
            format_version=np.array(_FORMAT_VERSION, np.int64),
            text_features=self._text,
            class_names=np.array(self.class_names, dtype=np.str_).reshape(-1),
            capacity=np.array(self.capacity, np.int64),
            min_support=np.array(self.min_support, np.int64),
            max_entropy=np.array(np.nan if self.max_entropy is None else self.max_entropy, np.float64),
            pseudo_label_source=np.array(self.pseudo_label_source, dtype=np.str_),
            max_age=np.array(-1 if self.max_age is None else self.max_age, np.int64),
            seq=np.array(self._seq, np.int64),
            counts=self._count,
            feats=self._feats,
            entropies=self._ent,
            seqs=self._seqs,
        )
        with atomic_output(path, suffix=".npz") as tmp:  # .npz suffix: np.savez would append one
            np.savez(tmp, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, expected_dim: int | None = None) -> "PrototypeBank":
        """Read a bank written by :meth:`save`; :class:`BankFormatError` on any inconsistency.

        ``expected_dim``: the feature dimension the caller's model produces (checked).
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise BankFormatError(f"prototype bank file not found: {path}") from None
        except Exception as exc:  # BadZipFile, ValueError (pickled object arrays), OSError, ...
            raise BankFormatError(f"{path}: not a readable prototype bank .npz ({type(exc).__name__}: {exc})") from None

        def need(key: str) -> np.ndarray:
            if key not in data:
                raise BankFormatError(f"{path}: missing array {key!r} (not a PrototypeBank file?)")
            return data[key]

        version = int(need("format_version"))
        if version != _FORMAT_VERSION:
            raise BankFormatError(f"{path}: format version {version}, this code reads {_FORMAT_VERSION}")
        w = need("text_features")
        names_arr = need("class_names")
        if w.ndim != 2 or names_arr.ndim != 1 or names_arr.dtype.kind != "U" or names_arr.shape[0] != w.shape[0]:
            raise BankFormatError(
                f"{path}: text_features {w.shape} and class_names {names_arr.shape} ({names_arr.dtype}) do not match"
            )
        K, D = w.shape
        if expected_dim is not None and D != int(expected_dim):
            raise BankFormatError(f"{path}: bank holds {D}-d features, expected {int(expected_dim)}-d")
        cap = int(need("capacity"))
        max_e = float(need("max_entropy"))
        feats, ents, seqs, counts = need("feats"), need("entropies"), need("seqs"), need("counts")
        if feats.shape != (K, cap, D) or ents.shape != (K, cap) or seqs.shape != (K, cap) or counts.shape != (K,):
            raise BankFormatError(
                f"{path}: memory arrays have inconsistent shapes feats={feats.shape} entropies={ents.shape} "
                f"seqs={seqs.shape} counts={counts.shape} for K={K}, capacity={cap}, D={D}"
            )
        if np.any(counts < 0) or np.any(counts > cap):
            raise BankFormatError(f"{path}: member counts out of range [0, {cap}]")
        try:
            bank = cls(
                w,
                [str(n) for n in names_arr],
                capacity=cap,
                min_support=int(need("min_support")),
                max_entropy=None if math.isnan(max_e) else max_e,
                pseudo_label_source=str(need("pseudo_label_source")),
                max_age=None if int(data.get("max_age", -1)) < 0 else int(data["max_age"]),  # absent: older file
            )
        except ValueError as exc:
            raise BankFormatError(f"{path}: invalid bank settings: {exc}") from None
        if not (np.all(np.isfinite(feats)) and np.all(np.isfinite(ents))):
            raise BankFormatError(f"{path}: memory contains NaN or infinite values")
        bank._feats = feats.astype(np.float64)
        bank._ent = ents.astype(np.float64)
        bank._seqs = seqs.astype(np.int64)
        bank._count = counts.astype(np.int64)
        bank._seq = int(need("seq"))
        for k in range(K):
            bank._refresh(k)
        return bank

    def __repr__(self) -> str:
        return (
            f"PrototypeBank(K={self.num_classes}, D={self.dim}, capacity={self.capacity}, "
            f"min_support={self.min_support}, counts={self._count.tolist()})"
        )
