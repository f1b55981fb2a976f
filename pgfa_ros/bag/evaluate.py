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

Bags without ground truth (cut into the live node's windows) have no accuracy:
:func:`predict_unlabelled` reports the predictions of each mode (bank in bag time order) over a
label set given like the recogniser node's: names and optional descriptions
(:func:`parse_label_set`: ``--labels "walk,sit down"`` or a label YAML), the text of a class being
its description, else the checkpoint's stored description of that name, else the name. Class
*indices* (``--classes``) are resolved only through a catalogue that names them: the bag's
``/pgfa/meta`` class list or a dataset (``--dataset`` / ``--split``) known to the catalog.

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

from .clips import BagClips, BagStream
from .convention import META_TOPIC, BagError

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
    label_names: dict[int, str] = field(default_factory=dict)  # class id -> name from the label messages


def bag_clips_to_tensors(bags: Sequence[BagClips | BagStream], cfg, num_person: int) -> EvalSet:
    """Preprocess the clips of ``bags`` one at a time (a :class:`BagStream` is read lazily, so
    only the fixed-size preprocessed tensors are kept, never the bag's messages)."""
    from pgfa_models.preprocess import preprocess_clip

    xs, ys, names, rejected, rejected_names = [], [], [], Counter(), []
    classes: list[str] = []
    label_names: dict[int, str] = {}
    dataset = ""
    labelled = all(b.labelled for b in bags)
    for b in bags:
        if b.meta is not None:
            if classes and b.meta.classes and b.meta.classes != classes:
                raise BagError(f"{b.path}: its class list differs from the other bags'")
            classes = classes or list(b.meta.classes)
            dataset = dataset or b.meta.dataset
        ready = bool(b.meta is not None and b.meta.clip_ready)
        for c in b:
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
            if c.label is not None:
                ys.append(c.label.class_index)
                label_names.setdefault(c.label.class_index, c.label.label)
            else:
                ys.append(-1)
            names.append(c.name)
    if not xs:
        raise BagError(f"no usable clips in the bag(s) (rejected: {dict(rejected)})")
    return EvalSet(np.stack(xs).astype(np.float32), np.asarray(ys, dtype=np.int64), names, labelled,
                   dict(rejected), rejected_names, classes, dataset, label_names)


# ----------------------------------------------------------------------------- label sets
@dataclass
class LabelSpec:
    """A label set given by name, as the recogniser node takes it (``labels`` + ``descriptions``)."""

    names: list[str]
    descriptions: list[str] = field(default_factory=list)  # one per name ("" = default), or none
    include_checkpoint_labels: bool = False
    source: str = ""


def _label_items(items, where: str) -> tuple[list[str], list[str]]:
    names, descs = [], []
    if not isinstance(items, list):
        raise BagError(f"{where}: 'labels' must be a list of names or of {{name, description}}")
    for item in items:
        if isinstance(item, str):
            names.append(item.strip())
            descs.append("")
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            names.append(item["name"].strip())
            descs.append(" ".join(str(item.get("description") or "").split()))
        else:
            raise BagError(f"{where}: a label must be a name or a {{name, description}} mapping, got {item!r:.80}")
    return names, descs


def parse_label_set(spec: str, include_default: bool = False) -> LabelSpec:
    """``--labels``: comma-separated class names, or a YAML file in one of the project's forms
    (``include_default``: whether the checkpoint's classes join where the spec does not say; the
    bag tools score the named labels alone, the demo adds them to the checkpoint's):

    * a ROS 2 parameters file (``config/*.yaml``): the ``labels`` (+ ``descriptions``) of the
      ``recognizer`` node, or of the only node that has ``labels``;
    * the demo's label file: ``labels: [{name, description}]`` (+ ``include_checkpoint_labels``);
    * a mapping ``labels: [names]`` + ``descriptions: [texts]``, or a plain list of names.
    """
    from pgfa_models.config import read_yaml

    text = str(spec).strip()
    if not text:
        raise BagError("--labels is empty")
    path = Path(text)
    if not (path.suffix.lower() in (".yaml", ".yml") or path.is_file()):
        names = [n.strip() for n in text.split(",") if n.strip()]
        return _check_labels(LabelSpec(names, [], include_default, "--labels"))
    data = read_yaml(path, BagError, "label file")
    where = str(path)
    include = include_default
    if isinstance(data, dict) and "labels" not in data:
        nodes = {k: v["ros__parameters"] for k, v in data.items()
                 if isinstance(v, dict) and isinstance(v.get("ros__parameters"), dict)
                 and "labels" in v["ros__parameters"]}
        if "recognizer" in nodes:
            data, where = nodes["recognizer"], f"{path} (recognizer)"
        elif len(nodes) == 1:
            (node, data), = nodes.items()
            where = f"{path} ({node})"
        else:
            raise BagError(f"{path}: no 'labels' list (nor a ROS parameters file with one node that has labels)")
    if isinstance(data, list):
        names, descs = _label_items(data, where)
    elif isinstance(data, dict):
        names, descs = _label_items(data.get("labels"), where)
        extra = data.get("descriptions")
        if extra:
            if not isinstance(extra, list) or any(d is not None and not isinstance(d, str) for d in extra):
                raise BagError(f"{where}: 'descriptions' must be a list of strings")
            if len(extra) != len(names):
                raise BagError(f"{where}: {len(extra)} descriptions for {len(names)} labels: give one per label or none")
            descs = [" ".join((d or "").split()) or o for d, o in zip(extra, descs)]
        include = bool(data.get("include_checkpoint_labels", include_default))
    else:
        raise BagError(f"{path}: expected a mapping with 'labels' or a list of names")
    return _check_labels(LabelSpec(names, descs if any(descs) else [], include, where))


def merge_labels(checkpoint_labels: Sequence[str], names: Sequence[str], descriptions: Sequence[str] | None,
                 include_checkpoint_labels: bool) -> tuple[list[str], list[str]]:
    """``(names, descriptions)`` of a label set given by name, the one rule of the demo and the bag
    tools: the checkpoint's classes first when included; a checkpoint class named again keeps its
    place, and its description, if one is given, replaces the checkpoint's texts ("" = those)."""
    out_n, out_d = [], []
    if include_checkpoint_labels:
        out_n, out_d = list(checkpoint_labels), [""] * len(checkpoint_labels)
    for n, d in zip(names, descriptions or [""] * len(names)):
        if n in out_n:
            out_d[out_n.index(n)] = d or out_d[out_n.index(n)]
        else:
            out_n.append(n)
            out_d.append(d)
    return out_n, out_d


def _check_labels(spec: LabelSpec) -> LabelSpec:
    if not spec.names and not spec.include_checkpoint_labels:
        raise BagError(f"{spec.source}: the label set is empty")
    if any(not n for n in spec.names):
        raise BagError(f"{spec.source}: label names must be non-empty")
    dup = sorted({n for n in spec.names if spec.names.count(n) > 1})
    if dup:
        raise BagError(f"{spec.source}: label names must be unique; duplicated: {dup}")
    return spec


# ----------------------------------------------------------------------------- labelled: pgfa-eval's code
def _checkpoint_meta(checkpoint):
    from pgfa_models.checkpoint import CheckpointError, load_checkpoint

    try:
        return load_checkpoint(checkpoint)[1]
    except (CheckpointError, OSError) as exc:
        raise BagError(str(exc)) from None


class BagCatalog:
    """Class names from the bags, texts from the project catalog when it knows the dataset,
    else from the checkpoint's stored descriptions, else the class names themselves. A class
    nothing names (an index without a catalogue) is an error, never the text "3"."""

    def __init__(self, es: EvalSet, catalog=None, stored: Mapping[str, str] | None = None):
        self.es, self.catalog, self.stored = es, catalog, dict(stored or {})

    def _catalog_names(self, dataset: str, num_classes: int | None):
        if self.catalog is not None and dataset:
            try:
                return list(self.catalog.class_names(dataset, num_classes))
            except Exception:  # noqa: BLE001 - a dataset the catalog does not describe
                return None
        return None

    def knows(self, dataset: str) -> bool:
        return bool(self.es.classes) or self._catalog_names(dataset, None) is not None

    def class_names(self, dataset: str, num_classes: int | None = None) -> list[str]:
        names = self._catalog_names(dataset, num_classes)
        if names is not None:
            return names
        if self.es.classes:
            return list(self.es.classes)
        n = num_classes or (max(self.es.label_names, default=-1) + 1)
        # labelled bags without a meta message: the names their label messages carry
        return [self.es.label_names.get(c, f"<class {c}>") for c in range(n)]

    def load_descriptions(self, dataset: str, kind: str = "complete", classes: Sequence[int] | None = None,
                          num_classes: int | None = None) -> list[str]:
        if self.catalog is not None and dataset:
            try:
                return self.catalog.load_descriptions(dataset, kind, classes, num_classes)
            except Exception:  # noqa: BLE001 - no description file for this dataset
                pass
        names = self.class_names(dataset, num_classes)
        ids = range(len(names)) if classes is None else classes
        out = []
        for c in ids:
            c = int(c)
            known = c < len(names) and (self.es.classes or self._catalog_names(dataset, num_classes)
                                        or c in self.es.label_names)
            if not known:
                raise BagError(f"class {c} has no name: the bag has no {META_TOPIC} class list and no "
                               "dataset catalogue names it (pass --dataset, or --labels with names)")
            out.append(self.stored.get(names[c]) or names[c])
        return out

    def load_text_sets(self, dataset: str, kind: str = "ensemble", classes: Sequence[int] | None = None
                       ) -> list[list[str]]:
        """Several texts per class, for checkpoints trained on text ensembles (the default one):
        the project catalog's when it knows the dataset, else one text per class as above."""
        if self.catalog is not None and dataset and hasattr(self.catalog, "load_text_sets"):
            try:
                return self.catalog.load_text_sets(dataset, kind, classes)
            except Exception:  # noqa: BLE001 - a dataset the catalog does not describe
                pass
        return [[t] for t in self.load_descriptions(dataset, kind, classes)]


def run_eval(bags: Sequence[BagClips], checkpoint: str | os.PathLike, *, modes: Sequence[str] = MODES,
             alpha: float = DEFAULT_ALPHA, alphas: Sequence[float] = (), split=None,
             classes: Sequence[int] | None = None, descriptions: str | None = None,
             bank_options: Mapping | None = None, two_stage_checkpoint: str | None = None,
             catalog=None, device: str = "cpu", labels: LabelSpec | None = None,
             dataset: str | None = None, assign_options: Mapping | None = None,
             groups=None, seen_margin: float = 0.0) -> tuple[dict, EvalSet]:
    """Evaluate clips read from bags; returns (pgfa-eval report dict, the clips).

    ``split`` (a ``training.splits.Split``) picks its unseen classes; otherwise ``classes`` or
    every labelled class in the bags. ``catalog`` gives class names and description texts
    (``training.descriptions``, passed in by the CLI). Labelled bags are scored by
    :func:`pgfa_models.evaluation.evaluate`, exactly as ``pgfa-eval`` scores dataset files.
    Unlabelled bags: :func:`predict_unlabelled` over ``labels`` (names + descriptions, like the
    node) or over class indices that the bag's meta or ``dataset`` / ``split`` names.
    ``assign_options``: options of the hub-aware modes; ``groups``: clip name -> group (subject)
    for the nearest-neighbour ceiling (both as :func:`pgfa_models.evaluation.evaluate`).
    ``seen_margin``: unlabelled bags only, the live recognizer's margin on the checkpoint's
    trained classes (text and bank mode), so a replayed label set ranks as the node ranks it.
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
                                  bag_list, cat, labels=labels, split=split, dataset=dataset,
                                  assign_options=assign_options, seen_margin=seen_margin), es
    if labels is not None:
        raise BagError("--labels is for bags without ground truth; labelled bags are scored on their own "
                       "classes (choose them with --classes or --split)")
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
                                     two_stage_checkpoint, bank_options, device, assign_options, groups)
    except (ConfigError, ValueError, KeyError) as exc:
        raise BagError(" ".join(str(exc).split())) from None
    report["bags"] = bag_list
    report["clips_outside_classes"] = len(outside)
    return report, es


# ----------------------------------------------------------------------------- unlabelled
def predict_unlabelled(es: EvalSet, checkpoint, modes, alpha, classes, descriptions, bank_options, device,
                       bag_list, catalog: BagCatalog, *, labels: LabelSpec | None = None, split=None,
                       dataset: str | None = None, assign_options: Mapping | None = None,
                       seen_margin: float = 0.0) -> dict:
    """Predictions only (no ground truth): counts per predicted class for each mode.

    The label set is ``labels`` (names + descriptions, embedded like the recogniser node's
    :class:`pgfa_models.recognition.LabelSet`), or the classes ``classes`` / ``split.unseen`` /
    all of the bag's meta classes, named and described by the catalogue."""
    from pgfa_models.checkpoint import load_model
    from pgfa_models.evaluation import PREDICTION_MODES, extract_features, predict_mode
    from pgfa_models.recognition import LabelSet, check_seen_margin
    from pgfa_models.text import TextEncoder

    try:
        seen_margin = check_seen_margin(seen_margin)
    except ValueError as exc:
        raise BagError(str(exc)) from None

    for mode in modes:
        if mode not in PREDICTION_MODES:
            raise BagError(f"mode {mode!r} needs ground truth or is unknown")
    model, meta = load_model(checkpoint, device)
    kind = descriptions or meta.extra.get("description_kind") or "complete"
    if labels is not None:
        if classes is not None:
            raise BagError("give either --labels (names) or --classes (indices), not both")
        names, descs = merge_labels(meta.labels, labels.names, labels.descriptions, labels.include_checkpoint_labels)
        ids: list[int] | None = None
        label_source = labels.source
    else:
        ds = es.dataset or dataset or (split.dataset if split is not None else "")
        if split is not None and es.dataset and split.dataset != es.dataset:
            raise BagError(f"split {split.name} is for {split.dataset}, the bag holds {es.dataset}")
        if dataset and es.dataset and dataset != es.dataset:
            raise BagError(f"--dataset {dataset} but the bag's {META_TOPIC} says {es.dataset}")
        if classes is None and split is not None:
            classes = list(split.unseen)
        if not catalog.knows(ds):
            what = (f"--classes {','.join(map(str, classes))} are class indices, but nothing names them"
                    if classes is not None else "the bag has no labels and no class list")
            raise BagError(f"{what}: the bag has no {META_TOPIC} class list and no dataset catalogue was given; "
                           "pass the label names (--labels \"walk,sit down\" or a label YAML such as "
                           "config/recognizer.yaml), or --dataset/--split to resolve class indices")
        n_all = len(es.classes) or len(catalog.class_names(ds))
        ids = list(range(n_all)) if classes is None else [int(c) for c in classes]
        bad = [c for c in ids if not 0 <= c < n_all]
        if bad:
            raise BagError(f"--classes {bad} outside the {n_all} classes of {ds or META_TOPIC}")
        all_names = catalog.class_names(ds, len(es.classes) or None)
        names = [all_names[c] for c in ids]
        descs = catalog.load_descriptions(ds, kind, ids, len(es.classes) or None)
        label_source = ds or META_TOPIC
    try:
        label_set = LabelSet.for_checkpoint(TextEncoder(meta.text_model), meta, names, descs)
    except ValueError as exc:
        raise BagError(f"label set: {exc}") from None
    tf = label_set.features
    if tf.shape[1] != meta.text_dim:
        raise BagError(f"text features are {tf.shape[1]}-d, the checkpoint makes {meta.text_dim}-d")
    feats = extract_features(model, es.x, device=device)
    results = []
    keys = ids if ids is not None else list(range(len(names)))
    # the node's calibrated stacking: trained classes give up the margin (text and bank mode)
    penalty = seen_margin * label_set.trained.astype(np.float64) if seen_margin and label_set.trained.any() else None
    for mode in modes:
        pen = penalty if mode in ("text", "bank") else None
        pred = predict_mode(mode, feats, tf, list(label_set.names), alpha, bank_options,
                            assign_options, pen).pred  # bank: bag time order
        counts = np.bincount(np.asarray(pred, dtype=np.int64), minlength=len(names))
        results.append({"mode": mode, "accuracy": None, "n": int(len(pred)),
                        "seen_margin": seen_margin if pen is not None else 0.0,
                        "per_class": {n: {"id": c, "predicted": int(k)} for n, c, k in zip(names, keys, counts)},
                        "predictions": [{"name": nm, "pred": keys[int(p)], "label": names[int(p)]}
                                        for nm, p in zip(es.names, pred)]})
    return {"checkpoint": str(checkpoint), "split": None if split is None else split.name,
            "unseen_classes": ids if ids is not None else [], "labels": list(label_set.names),
            "texts": list(label_set.texts), "label_source": label_source, "alpha": alpha,
            "trained_labels": [n for n, t in zip(label_set.names, label_set.trained) if t],
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
        from pgfa_models.fileio import atomic_write_text

        md = Path(md_path)
        md.parent.mkdir(parents=True, exist_ok=True)
        lines = ["# Bag predictions (no ground truth in the bag)", "",
                 "Bags: " + ", ".join(f"`{b}`" for b in report["bags"]), "",
                 "| class | " + " | ".join(r["mode"] for r in report["results"]) + " |",
                 "|---|" + "---|" * len(report["results"])]
        for name in report["results"][0]["per_class"]:
            lines.append(f"| {name} | " + " | ".join(str(r["per_class"][name]["predicted"])
                                                    for r in report["results"]) + " |")
        atomic_write_text(md, "\n".join(lines) + "\n")
        files["markdown"] = md
    return files
