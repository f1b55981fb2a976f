"""Zero-shot evaluation: the one place the modes, the metrics and the report live.

``pgfa-eval`` (training, clips from dataset files) and ``pgfa-bag eval`` (clips from bags)
both call :func:`evaluate` with their clips and a :class:`ClassCatalog` (class names and
description texts, which are project data kept in ``training``), so a mode and its numbers
mean the same thing everywhere:

* ``text``: argmax cosine to the text features (eq. 6, no alignment);
* ``transductive``: exact two-pass alignment, :func:`transductive_predict` (eq. 6-11);
* ``bank``: :class:`PrototypeBank` over the samples in the order given: each one is
  predicted with the current prototypes, then the bank is updated with it;
* ``two_stage``: the paper's Table V baseline, a second checkpoint (trained with
  ``framework: two_stage``) evaluated text-only and with the two-pass alignment.

Accuracy is per sample over every test clip of the evaluated classes; the test clips are
sorted by sample name first, which is also the bank's stream order.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np
import torch

from .alignment import transductive_predict
from .bank import PrototypeBank

PREDICTION_MODES = ("text", "transductive", "bank")
MODES = PREDICTION_MODES + ("two_stage",)
BANK_ORDER = "sorted by sample name (UTD-MHAD: file name a<action>_s<subject>_t<trial>)"


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
                     "max_entropy": bank.max_entropy, "pseudo_label_source": bank.pseudo_label_source,
                     "max_age": bank.max_age},
            "accepted": int(np.asarray(res.accepted).sum())})
    raise ValueError(f"unknown mode {mode!r}; known: {list(PREDICTION_MODES)}")


# ----------------------------------------------------------------------------- evaluation
class ClassCatalog(Protocol):
    """Class names and description texts of a dataset (``training.descriptions`` is one)."""

    def class_names(self, dataset: str, num_classes: int | None = None) -> list[str]: ...

    def load_descriptions(self, dataset: str, kind: str = "complete", classes: Sequence[int] | None = None,
                          num_classes: int | None = None) -> list[str]: ...


@dataclass(frozen=True)
class EvalClasses:
    """Which classes are scored: a split's unseen classes, or the labelled classes of bags."""

    name: str               # shown in reports (a split name)
    dataset: str
    num_classes: int
    ids: tuple[int, ...]    # dataset class ids, in text-feature order


class Clips(Protocol):
    """Preprocessed clips (``training.datasets.ClipSet`` and the bag tools' ``EvalSet`` are)."""

    x: np.ndarray           # (N, 3, T, 25, M)
    y: np.ndarray           # (N,) dataset class ids
    names: list[str]
    rejected: dict[str, int]


@dataclass
class EvalData:
    features: np.ndarray        # (N, D) L2-normalised skeleton features
    text_features: np.ndarray   # (K, D) L2-normalised text features of the evaluated classes
    labels: np.ndarray          # (N,) 0-based index into the evaluated classes
    names: list[str]            # sample names, sorted
    class_names: list[str]      # the K class names
    class_ids: list[int]        # their dataset ids
    rejected: dict[str, int]


def prepare(checkpoint: str | Path, classes: EvalClasses, catalog: ClassCatalog,
            clips_for: Callable[[Any], Clips], descriptions: str | None = None,
            device: str = "cpu") -> tuple[EvalData, Any]:
    """Features of the test clips of ``classes`` and their text features for one checkpoint.

    ``clips_for(meta)`` gives the clips preprocessed the way that checkpoint expects."""
    from .checkpoint import load_model
    from .text import TextEncoder

    model, meta = load_model(checkpoint, device)
    kind = descriptions or meta.extra.get("description_kind") or "complete"
    ids = list(classes.ids)
    if not ids:
        raise ValueError(f"{classes.name} has no unseen classes to evaluate")
    clips = clips_for(meta)
    if clips.x.shape[-1] != meta.num_person:
        raise ValueError(f"clips have M={clips.x.shape[-1]}, checkpoint expects {meta.num_person}")
    keep = np.flatnonzero(np.isin(clips.y, np.asarray(ids, dtype=np.int64)))
    keep = keep[np.argsort(np.asarray([clips.names[i] for i in keep]), kind="stable")]
    remap = {c: i for i, c in enumerate(ids)}
    labels = np.asarray([remap[int(c)] for c in clips.y[keep]], dtype=np.int64)
    feats = extract_features(model, clips.x[keep], device=device)
    texts = catalog.load_descriptions(classes.dataset, kind, ids, classes.num_classes)
    tf = TextEncoder(meta.text_model).encode(texts)
    if tf.shape[1] != meta.text_dim:
        raise ValueError(f"text model {meta.text_model} gives {tf.shape[1]}-d features, checkpoint has {meta.text_dim}")
    names = catalog.class_names(classes.dataset, classes.num_classes)
    return EvalData(feats, tf, labels, [clips.names[i] for i in keep], [names[c] for c in ids], ids,
                    dict(clips.rejected)), meta


def summarise(mode: str, pred: np.ndarray, data: EvalData, **extra: Any) -> dict[str, Any]:
    """``{"mode","accuracy","n","per_class",...}``; per_class by class name with n, correct,
    accuracy and how many test clips were predicted as that class (the prediction histogram)."""
    pred = np.asarray(pred, dtype=np.int64)
    y = data.labels
    k = len(data.class_names)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    per_class = {}
    for i, name in enumerate(data.class_names):
        n_i = int(cm[i].sum())
        per_class[name] = {"id": data.class_ids[i], "n": n_i, "correct": int(cm[i, i]),
                           "accuracy": float(cm[i, i] / n_i) if n_i else None,
                           "predicted": int(cm[:, i].sum())}
    out = {"mode": mode, "accuracy": float((pred == y).mean()) if len(y) else 0.0, "n": int(len(y)),
           "per_class": per_class, "confusion": cm.tolist(), "classes": list(data.class_names),
           "predictions": [{"name": n, "label": int(data.class_ids[t]), "pred": int(data.class_ids[p])}
                           for n, t, p in zip(data.names, y.tolist(), pred.tolist())]}
    out.update(extra)
    return out


def run_modes(data: EvalData, modes: Sequence[str], alpha: float = 0.9, alphas: Sequence[float] = (),
              bank_kwargs: Mapping | None = None) -> list[dict[str, Any]]:
    """One result dict per mode (see :func:`summarise`), predictions per sample included."""
    results = []
    for mode in modes:
        p = predict_mode(mode, data.features, data.text_features, data.class_names, alpha, bank_kwargs)
        extra = dict(p.extra)
        if mode == "transductive":
            initial = extra.pop("initial")
            extra["alpha_sweep"] = {f"{a:.2f}": float((transductive_predict(data.features, data.text_features, a).final
                                                       == data.labels).mean()) for a in alphas}
            extra["initial_accuracy"] = float((initial == data.labels).mean())
        elif mode == "bank":
            extra["order"] = BANK_ORDER
        results.append(summarise(mode, p.pred, data, **extra))
    return results


def evaluate(checkpoint: str | Path, classes: EvalClasses, catalog: ClassCatalog,
             clips_for: Callable[[Any], Clips], modes: Sequence[str] = ("text", "transductive"),
             alpha: float = 0.9, alphas: Sequence[float] = (), descriptions: str | None = None,
             two_stage_checkpoint: str | Path | None = None, bank_kwargs: Mapping | None = None,
             device: str = "cpu") -> dict[str, Any]:
    """The report of ``pgfa-eval --json`` (plus ``_data``, the features, for callers)."""
    for m in modes:
        if m not in MODES:
            raise ValueError(f"unknown mode {m!r}; known: {', '.join(MODES)}")
    own = [m for m in modes if m != "two_stage"]
    report: dict[str, Any] = {"checkpoint": str(checkpoint), "split": classes.name,
                              "unseen_classes": list(classes.ids), "alpha": alpha, "results": []}
    if own:
        data, meta = prepare(checkpoint, classes, catalog, clips_for, descriptions, device)
        leaked = sorted(set(data.class_names) & set(meta.labels))
        if leaked:
            report["not_zero_shot"] = leaked
            warnings.warn(f"{checkpoint} was trained on {len(leaked)} of the evaluated classes "
                          f"({', '.join(leaked)}): this is not a zero-shot result", stacklevel=2)
        report.update({"text_model": meta.text_model, "descriptions": descriptions or meta.extra.get("description_kind"),
                       "framework": meta.extra.get("framework"), "n": int(len(data.labels)),
                       "rejected": data.rejected, "order": BANK_ORDER})
        report["results"] += run_modes(data, own, alpha, alphas, bank_kwargs)
        report["_data"] = data
    if "two_stage" in modes:
        if two_stage_checkpoint is None:
            raise ValueError("mode two_stage needs --two-stage-checkpoint (a checkpoint trained with "
                             "framework: two_stage, e.g. config/training/utd_mhad_two_stage.yaml)")
        d2, m2 = prepare(two_stage_checkpoint, classes, catalog, clips_for, descriptions, device)
        if m2.extra.get("framework") != "two_stage":
            raise ValueError(f"{two_stage_checkpoint} was not trained with framework two_stage")
        t = run_modes(d2, ["text", "transductive"], alpha, alphas)
        r = dict(t[0])
        r.update({"mode": "two_stage", "checkpoint": str(two_stage_checkpoint),
                  "two_pass_accuracy": t[1]["accuracy"], "alpha_sweep": t[1]["alpha_sweep"]})
        report["results"].append(r)
        report.setdefault("_data", d2)
    return report
