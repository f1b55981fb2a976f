"""``pgfa-bag eval``: zero-shot evaluation of skeleton bags, modes side by side.

Pipeline (each step shared with ``pgfa-eval`` so the numbers are the same on the same clips):

1. :func:`pgfa_ros.bag.clips.read_bag_clips` reconstructs each clip's raw joints from the bag;
2. :func:`pgfa_models.preprocess.preprocess_clip` — THE preprocessing function, with the
   checkpoint's preprocessing options and body count (``clip_ready`` bags, made from the
   already-preprocessed SMIE arrays, are stacked unchanged, like the training loader does);
3. one batched forward pass of the checkpoint's model for the features;
4. the SAME evaluation code as ``pgfa-eval``, :func:`pgfa_models.evaluation.evaluate` on the
   split's unseen classes or on the bags' labelled classes: ``text``, exact two-pass
   ``transductive`` (``alpha``), ``bank`` (stream sorted by sample name, as pgfa-eval) and
   ``two_stage``; JSON, Markdown and confusion PNGs by :mod:`pgfa_models.eval_report`.

Bags without ground truth (fixed windows) have no accuracy: :func:`predict_unlabelled` reports
the predictions of each mode (bank in bag time order).

Splits, class names and descriptions are project data in ``training``; the CLI passes them in
(SPEC §2: only CLIs depend on ``training``).

Rejected clips (preprocessing reasons) are counted and listed, never silently dropped. A
report is written only after every bag was read completely and every clip evaluated.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from pgfa_models.evaluation import MODES

from .clips import BagClips
from .convention import BagError

DEFAULT_ALPHA = 0.9  # paper, setting I (NTU-60)


@dataclass
class EvalSet:
    """Preprocessed clips from bags: ``x`` (N, 3, 50, 25, M), ``y`` class ids (or -1 when unlabelled)."""

    x: np.ndarray
    y: np.ndarray
    names: list[str]
    labelled: bool
    rejected: dict[str, int] = field(default_factory=dict)
    rejected_names: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)   # dataset class names (index = class id)
    dataset: str = ""


def bag_clips_to_tensors(bags: Sequence[BagClips], cfg, num_person: int) -> EvalSet:
    from pgfa_models.preprocess import preprocess_clip

    xs, ys, names, rejected, rejected_names = [], [], [], Counter(), []
    classes: list[str] = []
    dataset = ""
    labelled = all(b.labelled for b in bags)
    for b in bags:
        if b.meta is not None:
            if classes and b.meta.classes and b.meta.classes != classes:
                raise BagError(f"{b.path}: its class list differs from the other bags'")
            classes = classes or list(b.meta.classes)
            dataset = dataset or b.meta.dataset
        ready = bool(b.meta is not None and b.meta.clip_ready)
        for c in b.clips:
            if ready:
                clip = np.zeros((3, cfg.target_frames, 25, num_person), dtype=np.float32)
                for m, body in enumerate(c.bodies[:num_person]):
                    if body.shape[0] != cfg.target_frames or body.shape[1] != 25:
                        raise BagError(f"{b.path}: clip {c.name!r} is marked clip_ready but is not "
                                       f"{cfg.target_frames} frames of 25 joints")
                    clip[..., m] = body.transpose(2, 0, 1)
            else:
                res = preprocess_clip(c.bodies, b.layout, cfg, num_person, timestamps=c.times)
                if res.clip is None:
                    rejected[str(res.reason)] += 1
                    rejected_names.append(c.name)
                    continue
                clip = res.clip
            xs.append(clip)
            ys.append(c.label.class_index if c.label is not None else -1)
            names.append(c.name)
    if not xs:
        raise BagError(f"no usable clips in the bag(s) (rejected: {dict(rejected)})")
    return EvalSet(np.stack(xs).astype(np.float32), np.asarray(ys, dtype=np.int64), names, labelled,
                   dict(rejected), rejected_names, classes, dataset)


# ----------------------------------------------------------------------------- labelled: pgfa-eval's code
def _checkpoint_meta(checkpoint):
    from pgfa_models.checkpoint import CheckpointError, load_checkpoint

    try:
        return load_checkpoint(checkpoint)[1]
    except (CheckpointError, OSError) as exc:
        raise BagError(str(exc)) from None


class BagCatalog:
    """Class names from the bags, texts from the project catalog when it knows the dataset,
    else from the checkpoint's stored descriptions, else the class names themselves."""

    def __init__(self, es: EvalSet, catalog=None, stored: Mapping[str, str] | None = None):
        self.es, self.catalog, self.stored = es, catalog, dict(stored or {})

    def class_names(self, dataset: str, num_classes: int | None = None) -> list[str]:
        if self.catalog is not None:
            try:
                return self.catalog.class_names(dataset, num_classes)
            except Exception:  # noqa: BLE001 - a dataset the catalog does not describe
                pass
        if self.es.classes:
            return list(self.es.classes)
        return [str(c) for c in range(num_classes or int(self.es.y.max()) + 1)]

    def load_descriptions(self, dataset: str, kind: str = "complete", classes: Sequence[int] | None = None,
                          num_classes: int | None = None) -> list[str]:
        if self.catalog is not None:
            try:
                return self.catalog.load_descriptions(dataset, kind, classes, num_classes)
            except Exception:  # noqa: BLE001 - no description file for this dataset
                pass
        names = self.class_names(dataset, num_classes)
        ids = range(len(names)) if classes is None else classes
        return [self.stored.get(names[c]) or names[c] if c < len(names) else str(c) for c in ids]


def run_eval(bags: Sequence[BagClips], checkpoint: str | os.PathLike, *, modes: Sequence[str] = MODES,
             alpha: float = DEFAULT_ALPHA, alphas: Sequence[float] = (), split=None,
             classes: Sequence[int] | None = None, descriptions: str | None = None,
             bank_options: Mapping | None = None, two_stage_checkpoint: str | None = None,
             catalog=None, device: str = "cpu") -> tuple[dict, EvalSet]:
    """Evaluate clips read from bags; returns (pgfa-eval report dict, the clips).

    ``split`` (a ``training.splits.Split``) picks its unseen classes; otherwise ``classes`` or
    every labelled class in the bags. ``catalog`` gives class names and description texts
    (``training.descriptions``, passed in by the CLI). Labelled bags are scored by
    :func:`pgfa_models.evaluation.evaluate`, exactly as ``pgfa-eval`` scores dataset files.
    Unlabelled bags: :func:`predict_unlabelled`.
    """
    from pgfa_models import evaluation
    from pgfa_models.config import ConfigError, from_dict
    from pgfa_models.preprocess import PreprocessConfig

    meta = _checkpoint_meta(checkpoint)
    cfg = from_dict(PreprocessConfig, dict(meta.preprocess or {}), "preprocess")
    es = bag_clips_to_tensors(bags, cfg, int(meta.num_person))
    bag_list = [str(b.path) for b in bags]
    cat = BagCatalog(es, catalog, meta.descriptions)
    if not es.labelled:
        return predict_unlabelled(es, checkpoint, modes, alpha, classes, descriptions, bank_options, device,
                                  bag_list, cat), es
    if split is not None and classes is None:
        if es.dataset and split.dataset != es.dataset:
            raise BagError(f"split {split.name} is for {split.dataset}, the bag holds {es.dataset}")
        target = evaluation.EvalClasses(split.name, split.dataset, split.num_classes, tuple(split.unseen))
    else:
        cls = sorted(set(es.y.tolist())) if classes is None else [int(c) for c in classes]
        n = len(es.classes) or (max(cls) + 1)
        target = evaluation.EvalClasses(f"bag classes {cls}", es.dataset, n, tuple(cls))
    outside = sorted(set(es.y.tolist()) - set(target.ids))

    def clips_for(m):  # a two-stage checkpoint may preprocess differently
        if (dict(m.preprocess or {}), int(m.num_person)) == (dict(meta.preprocess or {}), int(meta.num_person)):
            return es
        return bag_clips_to_tensors(bags, from_dict(PreprocessConfig, dict(m.preprocess or {}), "preprocess"),
                                    int(m.num_person))

    try:
        report = evaluation.evaluate(checkpoint, target, cat, clips_for, modes, alpha, alphas, descriptions,
                                     two_stage_checkpoint, bank_options, device)
    except (ConfigError, ValueError, KeyError) as exc:
        raise BagError(" ".join(str(exc).split())) from None
    report["bags"] = bag_list
    report["clips_outside_classes"] = len(outside)
    return report, es


# ----------------------------------------------------------------------------- unlabelled
def predict_unlabelled(es: EvalSet, checkpoint, modes, alpha, classes, descriptions, bank_options, device,
                       bag_list, catalog: BagCatalog) -> dict:
    """Predictions only (no ground truth): counts per predicted class for each mode."""
    from pgfa_models.checkpoint import load_model
    from pgfa_models.evaluation import PREDICTION_MODES, extract_features, predict_mode
    from pgfa_models.text import TextEncoder

    model, meta = load_model(checkpoint, device)
    if classes is None:
        if not es.classes:
            raise BagError("the bag has no labels and no class list: pass --classes with --layout bags")
        classes = list(range(len(es.classes)))
    classes = [int(c) for c in classes]
    all_names = catalog.class_names(es.dataset, len(es.classes) or None)
    names = [all_names[c] if c < len(all_names) else str(c) for c in classes]
    kind = descriptions or meta.extra.get("description_kind") or "complete"
    texts = catalog.load_descriptions(es.dataset, kind, classes, len(es.classes) or None)
    tf = TextEncoder(meta.text_model).encode(texts)
    feats = extract_features(model, es.x, device=device)
    results = []
    for mode in modes:
        if mode not in PREDICTION_MODES:
            raise BagError(f"mode {mode!r} needs ground truth or is unknown")
        pred = predict_mode(mode, feats, tf, names, alpha, bank_options).pred  # bank: bag time order
        counts = np.bincount(np.asarray(pred, dtype=np.int64), minlength=len(classes))
        results.append({"mode": mode, "accuracy": None, "n": int(len(pred)),
                        "per_class": {n: {"id": c, "predicted": int(k)} for n, c, k in zip(names, classes, counts)},
                        "predictions": [{"name": nm, "pred": classes[int(p)]} for nm, p in zip(es.names, pred)]})
    return {"checkpoint": str(checkpoint), "split": None, "unseen_classes": classes, "alpha": alpha,
            "results": results, "text_model": meta.text_model, "descriptions": kind, "n": len(es.names),
            "rejected": es.rejected, "bags": bag_list, "labelled": False}


# ----------------------------------------------------------------------------- outputs
def write_outputs(report: dict, json_path=None, md_path=None) -> dict[str, Path]:
    """pgfa-eval's writers for labelled bags (plus the list of bags); a short table otherwise."""
    from pgfa_models import eval_report

    if report.get("labelled", True):
        files = eval_report.write_outputs(report, json_path, md_path)
        if "markdown" in files:
            with open(files["markdown"], "a") as fh:
                fh.write("\nBags: " + ", ".join(f"`{b}`" for b in report.get("bags", [])) + "\n")
        return files
    files = {}
    if json_path:
        eval_report.write_json(report, json_path)
        files["json"] = Path(json_path)
    if md_path:
        md = Path(md_path)
        md.parent.mkdir(parents=True, exist_ok=True)
        lines = ["# Bag predictions (no ground truth in the bag)", "",
                 "Bags: " + ", ".join(f"`{b}`" for b in report["bags"]), "",
                 "| class | " + " | ".join(r["mode"] for r in report["results"]) + " |",
                 "|---|" + "---|" * len(report["results"])]
        for name in report["results"][0]["per_class"]:
            lines.append(f"| {name} | " + " | ".join(str(r["per_class"][name]["predicted"])
                                                    for r in report["results"]) + " |")
        md.write_text("\n".join(lines) + "\n")
        files["markdown"] = md
    return files
