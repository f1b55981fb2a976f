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

Hub-aware alternatives beside the paper (issue 10; :mod:`pgfa_models.assignment`), opt-in:

* ``csls``: text-only argmax of CSLS-corrected cosines (a class close to many clips is penalised);
* ``balanced``: text-only, class-balanced Sinkhorn assignment (argmax of the plan);
* ``transductive_csls``: the two-pass with eq. (6)/(7) on CSLS-corrected cosines;
* ``transductive_balanced``: the two-pass with the first pass replaced by the Sinkhorn plan
  (its rows are the soft pseudo-labels and give the entropies), eq. (8)-(11) unchanged;
* ``cluster_balanced``: ``transductive_balanced`` on cosines averaged over mutual k nearest
  neighbours among the test features;
* ``bank_csls``: the bank (same stream, same options) with pseudo-labels from CSLS-corrected text
  cosines, class hubness running over the stream (:class:`~pgfa_models.assignment.HubAwareBank`).

Their options (``assign_kwargs``): ``epsilon``, ``iterations``, ``tol``, ``relax`` (Sinkhorn;
relax 0 = exact uniform class marginals, > 0 = KL-relaxed), ``csls_k``,
``knn_k``; defaults :data:`ASSIGN_DEFAULTS`. Every result carries hub diagnostics
(:func:`hub_stats`: predicted / true count per class), and the report the nearest-neighbour
ceiling of the features (:func:`pgfa_models.assignment.nearest_neighbour_agreement`), across
sample groups (subjects) when ``groups`` is given.

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

from . import assignment
from .alignment import transductive_predict
from .bank import PrototypeBank

PAPER_MODES = ("text", "transductive", "bank")
HUB_AWARE_MODES = ("csls", "balanced", "transductive_csls", "transductive_balanced", "cluster_balanced",
                   "bank_csls")
PREDICTION_MODES = PAPER_MODES + HUB_AWARE_MODES
MODES = PREDICTION_MODES + ("two_stage",)
TWO_PASS_MODES = ("transductive", "transductive_csls", "transductive_balanced", "cluster_balanced")
ASSIGN_DEFAULTS = {"epsilon": 0.05, "iterations": 1000, "tol": 1e-6, "relax": 0.0, "csls_k": 10, "knn_k": 5}
HUB_RATIO_TARGET = 2.0  # issue 10: no class predicted for more than twice its true count
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


def assign_options(assign_kwargs: Mapping | None = None) -> dict[str, Any]:
    """:data:`ASSIGN_DEFAULTS` updated with ``assign_kwargs``; unknown keys are an error."""
    opts = dict(ASSIGN_DEFAULTS)
    unknown = sorted(set(assign_kwargs or {}) - set(opts))
    if unknown:
        raise ValueError(f"unknown assignment option(s) {unknown}; known: {sorted(opts)}")
    opts.update(assign_kwargs or {})
    return opts


def parse_assign_options(text: str | None) -> dict[str, Any]:
    """``"epsilon=0.1,csls_k=5"`` -> ``{"epsilon": 0.1, "csls_k": 5}`` (for the CLIs' flags)."""
    out: dict[str, Any] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        key = key.strip()
        if not sep or key not in ASSIGN_DEFAULTS:
            raise ValueError(f"assignment option {item.strip()!r}: expected key=value with key in "
                             f"{sorted(ASSIGN_DEFAULTS)}")
        kind = type(ASSIGN_DEFAULTS[key])
        try:
            out[key] = kind(val.strip()) if kind is float else int(val.strip())
        except ValueError:
            raise ValueError(f"assignment option {key}: {val.strip()!r} is not a {kind.__name__}") from None
    return out


def groups_from_pattern(pattern: str) -> Callable[[str], str | None]:
    """Sample name -> group id by a regular expression (first capture group, else the whole
    match; None when it does not match), e.g. ``_s(\\d+)_`` for UTD-MHAD subjects."""
    import re

    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"group pattern {pattern!r} is not a regular expression: {exc}") from None

    def group(name: str) -> str | None:
        m = rx.search(name)
        if m is None:
            return None
        return m.group(1) if rx.groups else m.group(0)

    return group


def two_pass_predict(mode: str, features: np.ndarray, text_features: np.ndarray, alpha: float,
                     assign_kwargs: Mapping | None = None):
    """(TransductiveResult, extra facts) of one of :data:`TWO_PASS_MODES`."""
    o = assign_options(assign_kwargs)
    if mode == "transductive":
        return transductive_predict(features, text_features, alpha), {}
    if mode == "transductive_csls":
        return assignment.transductive_csls(features, text_features, alpha, o["csls_k"]), {"csls_k": o["csls_k"]}
    if mode == "transductive_balanced":
        r, sk = assignment.transductive_balanced(features, text_features, alpha, o["epsilon"], o["iterations"], o["tol"],
                                                 o["relax"])
        return r, _sinkhorn_facts(sk, o)
    if mode == "cluster_balanced":
        r, sk = assignment.cluster_balanced(features, text_features, alpha, o["knn_k"], o["epsilon"], o["iterations"],
                                            o["tol"], o["relax"])
        return r, dict(_sinkhorn_facts(sk, o), knn_k=o["knn_k"])
    raise ValueError(f"{mode!r} is not a two-pass mode; known: {list(TWO_PASS_MODES)}")


def _sinkhorn_facts(sk: assignment.SinkhornResult, o: Mapping) -> dict[str, Any]:
    return {"sinkhorn": {"epsilon": o["epsilon"], "relax": o["relax"], "iterations": sk.iterations,
                         "converged": sk.converged,
                         "marginal_error": sk.marginal_error}}


def predict_mode(mode: str, features: np.ndarray, text_features: np.ndarray, class_names: list[str],
                 alpha: float = 0.9, bank_kwargs: Mapping | None = None,
                 assign_kwargs: Mapping | None = None, penalty: np.ndarray | None = None) -> ModePrediction:
    """Predictions of one mode for L2-normalised ``features`` (N, D) against L2-normalised
    ``text_features`` (K, D) (as :func:`extract_features` and ``TextEncoder`` give them).

    ``penalty`` (K,): subtracted from the cosines before the argmax in ``text`` and ``bank``
    mode, as the live recognizer subtracts its ``seen_margin`` from the trained classes."""
    if penalty is not None and mode not in ("text", "bank"):
        raise ValueError(f"a cosine penalty (seen margin) applies to modes text and bank, not {mode!r}")
    if mode == "text":
        s = np.asarray(features) @ np.asarray(text_features).T
        pred = (s if penalty is None else s - penalty).argmax(1)
        return ModePrediction(mode, pred.astype(np.int64))
    if mode in TWO_PASS_MODES:
        r, facts = two_pass_predict(mode, features, text_features, alpha, assign_kwargs)
        return ModePrediction(mode, r.final, {"alpha": alpha, "initial": r.initial, **facts})
    if mode == "csls":
        o = assign_options(assign_kwargs)
        s = np.asarray(features, np.float64) @ np.asarray(text_features, np.float64).T
        return ModePrediction(mode, assignment.csls(s, o["csls_k"]).argmax(1).astype(np.int64), {"csls_k": o["csls_k"]})
    if mode == "balanced":
        o = assign_options(assign_kwargs)
        s = np.asarray(features, np.float64) @ np.asarray(text_features, np.float64).T
        sk = assignment.sinkhorn(s, o["epsilon"], o["iterations"], o["tol"], relax=o["relax"])
        return ModePrediction(mode, assignment.balanced_labels(sk.assignment, s), _sinkhorn_facts(sk, o))
    if mode in ("bank", "bank_csls"):
        if mode == "bank":
            bank = PrototypeBank(text_features, class_names, **dict(bank_kwargs or {}))
        else:
            bank = assignment.HubAwareBank(text_features, class_names, assign_options(assign_kwargs)["csls_k"],
                                           **dict(bank_kwargs or {}))
        res = bank.update(features)
        labels = res.labels if penalty is None else np.argmax(res.scores - penalty, axis=1)
        return ModePrediction(mode, np.asarray(labels, np.int64), {
            "bank": {"capacity": bank.capacity, "min_support": bank.min_support,
                     "max_entropy": bank.max_entropy, "pseudo_label_source": bank.pseudo_label_source,
                     "max_age": bank.max_age},
            "accepted": int(np.asarray(res.accepted).sum()),
            **({"csls_k": bank.csls_k} if mode == "bank_csls" else {})})
    raise ValueError(f"unknown mode {mode!r}; known: {list(PREDICTION_MODES)}")


def hub_stats(predicted: Sequence[int], true: Sequence[int], class_names: Sequence[str]) -> dict[str, Any]:
    """Hub diagnostics of one mode: ``max_ratio`` = max over classes with clips of predicted /
    true count (1.0 = balanced; issue 10's target is <= 2), the class reaching it, the classes
    above :data:`HUB_RATIO_TARGET`, and classes predicted although they have no test clip."""
    pred, true = np.asarray(predicted, np.int64), np.asarray(true, np.int64)
    has = true > 0
    ratios = np.where(has, pred / np.maximum(true, 1), 0.0)
    none_true = [class_names[i] for i in np.flatnonzero(~has & (pred > 0))]
    if has.any():
        i = int(np.argmax(np.where(has, ratios, -np.inf)))
        max_ratio, max_class = float(ratios[i]), class_names[i]
    else:
        max_ratio, max_class = None, None
    over = [class_names[i] for i in np.flatnonzero(has & (ratios > HUB_RATIO_TARGET))] + none_true
    return {"max_ratio": max_ratio, "max_ratio_class": max_class, "over_target": over,
            "predicted_without_clips": none_true, "target": HUB_RATIO_TARGET, "meets_target": not over}


# ----------------------------------------------------------------------------- evaluation
# description kinds with several texts per class: scored on the normalised mean of their embeddings
ENSEMBLE_KINDS = ("ensemble", "paraphrases")


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
    groups: list | None = None  # (N,) sample group ids (subject / sequence; None = none) or None


def resolve_groups(groups: Any, names: Sequence[str]) -> list | None:
    """Group id per sample name: ``groups`` is a callable name -> id, a mapping name -> id
    (absent names: None), a sequence aligned with ``names``, or None (no groups)."""
    if groups is None:
        return None
    if callable(groups):
        return [groups(n) for n in names]
    if isinstance(groups, Mapping):
        return [groups.get(n) for n in names]
    g = list(groups)
    if len(g) != len(names):
        raise ValueError(f"{len(g)} sample groups for {len(names)} samples")
    return g


def nn_ceiling(data: EvalData) -> dict[str, Any]:
    """The nearest-neighbour ceiling of the features (issue 10): share of test clips whose
    nearest other test clip (cosine; other groups only when groups are known) has their class."""
    r = assignment.nearest_neighbour_agreement(data.features, data.labels, data.groups)
    n_groups = len({g for g in data.groups if g is not None}) if data.groups is not None else None
    return {"accuracy": r.accuracy, "scored": r.scored, "n": int(len(data.labels)), "grouped": r.grouped,
            "groups": n_groups}


def trained_classes(meta, dataset: str, names: Sequence[str], ids: Sequence[int]) -> list[str]:
    """The evaluated classes a checkpoint was trained on: by label name, or, for a multi-source
    checkpoint, by the (dataset, label) members of its training classes."""
    members = {(str(s), int(k)) for group in (meta.extra or {}).get("class_members") or [] for s, k in group}
    return sorted({n for n, i in zip(names, ids) if n in set(meta.labels) or (dataset, int(i)) in members})


def prepare(checkpoint: str | Path, classes: EvalClasses, catalog: ClassCatalog,
            clips_for: Callable[[Any], Clips], descriptions: str | None = None,
            device: str = "cpu", groups: Any = None) -> tuple[EvalData, Any]:
    """Features of the test clips of ``classes`` and their text features for one checkpoint.

    ``clips_for(meta)`` gives the clips preprocessed the way that checkpoint expects.
    ``groups`` (see :func:`resolve_groups`; a sequence is aligned with the clips as given);
    without it, a ``groups`` attribute of the clips is used when present."""
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
    encoder = TextEncoder(meta.text_model)
    if kind in ENSEMBLE_KINDS:  # several texts per class (multi-source checkpoints train on their mean)
        from .recognition import ensemble_features

        load_sets = getattr(catalog, "load_text_sets", None)
        if load_sets is None:
            raise ValueError(f"description kind {kind!r} needs a catalogue with load_text_sets")
        tf = ensemble_features(encoder.encode, load_sets(classes.dataset, kind, ids))
    else:
        tf = encoder.encode(catalog.load_descriptions(classes.dataset, kind, ids, classes.num_classes))
    if tf.shape[1] != meta.text_dim:
        raise ValueError(f"text model {meta.text_model} gives {tf.shape[1]}-d features, checkpoint has {meta.text_dim}")
    from .recognition import center_text, checkpoint_text_center

    tf = center_text(tf, checkpoint_text_center(meta))
    names = catalog.class_names(classes.dataset, classes.num_classes)
    kept_names = [clips.names[i] for i in keep]
    if groups is None:
        groups = getattr(clips, "groups", None)
    if groups is not None and not callable(groups) and not isinstance(groups, Mapping):
        all_groups = resolve_groups(groups, clips.names)
        sample_groups = [all_groups[i] for i in keep]
    else:
        sample_groups = resolve_groups(groups, kept_names)
    return EvalData(feats, tf, labels, kept_names, [names[c] for c in ids], ids,
                    dict(clips.rejected), sample_groups), meta


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
                           "predicted": int(cm[:, i].sum()),
                           "ratio": float(cm[:, i].sum() / n_i) if n_i else None}
    out = {"mode": mode, "accuracy": float((pred == y).mean()) if len(y) else 0.0, "n": int(len(y)),
           "per_class": per_class, "hub": hub_stats(cm.sum(0), cm.sum(1), data.class_names), "confusion": cm.tolist(), "classes": list(data.class_names),
           "predictions": [{"name": n, "label": int(data.class_ids[t]), "pred": int(data.class_ids[p])}
                           for n, t, p in zip(data.names, y.tolist(), pred.tolist())]}
    out.update(extra)
    return out


def run_modes(data: EvalData, modes: Sequence[str], alpha: float = 0.9, alphas: Sequence[float] = (),
              bank_kwargs: Mapping | None = None, assign_kwargs: Mapping | None = None) -> list[dict[str, Any]]:
    """One result dict per mode (see :func:`summarise`), predictions per sample included."""
    results = []
    for mode in modes:
        p = predict_mode(mode, data.features, data.text_features, data.class_names, alpha, bank_kwargs,
                         assign_kwargs)
        extra = dict(p.extra)
        if mode in TWO_PASS_MODES:
            initial = extra.pop("initial")
            extra["alpha_sweep"] = {
                f"{a:.2f}": float((two_pass_predict(mode, data.features, data.text_features, a, assign_kwargs)[0].final
                                   == data.labels).mean()) for a in alphas}
            extra["initial_accuracy"] = float((initial == data.labels).mean())
            extra["initial_hub"] = hub_stats(np.bincount(initial, minlength=len(data.class_names)),
                                             np.bincount(data.labels, minlength=len(data.class_names)),
                                             data.class_names)
        elif mode in ("bank", "bank_csls"):
            extra["order"] = BANK_ORDER
        results.append(summarise(mode, p.pred, data, **extra))
    return results


def evaluate(checkpoint: str | Path, classes: EvalClasses, catalog: ClassCatalog,
             clips_for: Callable[[Any], Clips], modes: Sequence[str] = ("text", "transductive"),
             alpha: float = 0.9, alphas: Sequence[float] = (), descriptions: str | None = None,
             two_stage_checkpoint: str | Path | None = None, bank_kwargs: Mapping | None = None,
             device: str = "cpu", assign_kwargs: Mapping | None = None, groups: Any = None) -> dict[str, Any]:
    """The report of ``pgfa-eval --json`` (plus ``_data``, the features, for callers).

    ``assign_kwargs``: options of the hub-aware modes (:data:`ASSIGN_DEFAULTS`); ``groups``:
    sample groups for the nearest-neighbour ceiling (:func:`resolve_groups`)."""
    assign_options(assign_kwargs)  # unknown options fail before any work
    for m in modes:
        if m not in MODES:
            raise ValueError(f"unknown mode {m!r}; known: {', '.join(MODES)}")
    own = [m for m in modes if m != "two_stage"]
    report: dict[str, Any] = {"checkpoint": str(checkpoint), "split": classes.name,
                              "unseen_classes": list(classes.ids), "alpha": alpha, "results": []}
    if own:
        data, meta = prepare(checkpoint, classes, catalog, clips_for, descriptions, device, groups)
        leaked = trained_classes(meta, classes.dataset, data.class_names, data.class_ids)
        if leaked:
            report["not_zero_shot"] = leaked
            warnings.warn(f"{checkpoint} was trained on {len(leaked)} of the evaluated classes "
                          f"({', '.join(leaked)}): this is not a zero-shot result", stacklevel=2)
        report.update({"text_model": meta.text_model, "descriptions": descriptions or meta.extra.get("description_kind"),
                       "framework": meta.extra.get("framework"), "n": int(len(data.labels)),
                       "rejected": data.rejected, "order": BANK_ORDER, "nn_ceiling": nn_ceiling(data)})
        if any(m in HUB_AWARE_MODES for m in own):
            report["assignment"] = assign_options(assign_kwargs)
        report["results"] += run_modes(data, own, alpha, alphas, bank_kwargs, assign_kwargs)
        report["_data"] = data
    if "two_stage" in modes:
        if two_stage_checkpoint is None:
            raise ValueError("mode two_stage needs --two-stage-checkpoint (a checkpoint trained with "
                             "framework: two_stage, e.g. config/training/utd_mhad_two_stage.yaml)")
        d2, m2 = prepare(two_stage_checkpoint, classes, catalog, clips_for, descriptions, device, groups)
        if m2.extra.get("framework") != "two_stage":
            raise ValueError(f"{two_stage_checkpoint} was not trained with framework two_stage")
        t = run_modes(d2, ["text", "transductive"], alpha, alphas)
        r = dict(t[0])
        r.update({"mode": "two_stage", "checkpoint": str(two_stage_checkpoint),
                  "two_pass_accuracy": t[1]["accuracy"], "alpha_sweep": t[1]["alpha_sweep"],
                  "two_pass_hub": t[1]["hub"], "nn_ceiling": nn_ceiling(d2)})
        report["results"].append(r)
        report.setdefault("_data", d2)
    return report
