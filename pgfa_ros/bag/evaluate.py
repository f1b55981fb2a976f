"""``pgfa-bag eval``: zero-shot evaluation of skeleton bags, modes side by side.

Pipeline (each step shared with ``pgfa-eval`` so the numbers are the same on the same clips):

1. :func:`pgfa_ros.bag.clips.read_bag_clips` reconstructs each clip's raw joints from the bag;
2. :func:`pgfa_models.preprocess.preprocess_clip` — THE preprocessing function, with the
   checkpoint's preprocessing options and body count (``clip_ready`` bags, made from the
   already-preprocessed SMIE arrays, are stacked unchanged, like the training loader does);
3. one batched forward pass of the checkpoint's model for the features;
4. the modes: ``text`` (argmax cosine to the class texts, eq. 6), ``transductive`` (the exact
   two-pass PGFA alignment over the whole set, eq. 6-11, ``alpha``) and ``bank`` (the streaming
   prototype bank fed with the clips in bag order) — see :func:`evaluate_features`.

Rejected clips (preprocessing reasons) are counted and listed, never silently dropped. A
report is written only after every bag was read completely and every clip evaluated.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .clips import BagClips
from .convention import BagError

MODES = ("text", "transductive", "bank")
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


# ----------------------------------------------------------------------------- metrics
def _mode_result(mode: str, pred_idx: np.ndarray, y: np.ndarray | None, class_ids: Sequence[int],
                 class_names: Sequence[str], names: Sequence[str], extra: Mapping[str, Any] | None = None) -> dict:
    """``{"mode","accuracy","n","per_class"}`` (+ predictions) for one mode; pred_idx indexes class_ids."""
    cids = np.asarray(class_ids, dtype=np.int64)
    pred = cids[np.asarray(pred_idx, dtype=np.int64)]
    out: dict[str, Any] = {"mode": mode, "accuracy": None, "n": int(len(pred)), "per_class": {}}
    if y is not None:
        correct = pred == y
        out["accuracy"] = float(correct.mean()) if len(pred) else None
        for k, name in zip(cids.tolist(), class_names):
            sel = y == k
            n = int(sel.sum())
            out["per_class"][name] = {"class_index": int(k), "n": n, "correct": int(correct[sel].sum()),
                                      "accuracy": float(correct[sel].mean()) if n else None}
        cm = np.zeros((len(cids), len(cids)), dtype=np.int64)
        pos = {int(k): i for i, k in enumerate(cids.tolist())}
        for t, p in zip(y.tolist(), pred.tolist()):
            if t in pos:
                cm[pos[t], pos[p]] += 1
        out["confusion"] = cm.tolist()
    out["predictions"] = [{"name": n, "pred": int(p), **({"label": int(t)} if y is not None else {})}
                          for n, p, t in zip(names, pred.tolist(), (y.tolist() if y is not None else [None] * len(pred)))]
    if extra:
        out.update(extra)
    return out


def evaluate_features(features: np.ndarray, y: np.ndarray | None, text_features: np.ndarray,
                      class_ids: Sequence[int], class_names: Sequence[str], names: Sequence[str],
                      modes: Sequence[str] = MODES, alpha: float = DEFAULT_ALPHA,
                      bank_options: Mapping | None = None) -> list[dict]:
    """Run the zero-shot modes on features (N, D) against text features (K, D) of ``class_ids``."""
    from pgfa_models.alignment import PrototypeBank, transductive_predict

    bad = [m for m in modes if m not in MODES]
    if bad:
        raise BagError(f"unknown mode(s) {bad}; choose from {list(MODES)}")
    if y is not None:
        outside = sorted(set(y.tolist()) - set(int(c) for c in class_ids))
        if outside:
            raise BagError(f"clips are labelled with classes {outside} outside the evaluated classes "
                           f"{list(class_ids)}")
    res = []
    tr = None
    for mode in modes:
        if mode in ("text", "transductive") and tr is None:
            tr = transductive_predict(features, text_features, alpha)
        if mode == "text":
            res.append(_mode_result(mode, tr.initial, y, class_ids, class_names, names))
        elif mode == "transductive":
            res.append(_mode_result(mode, tr.final, y, class_ids, class_names, names, {"alpha": float(alpha)}))
        else:
            bank = PrototypeBank(text_features, list(class_names), **dict(bank_options or {}))
            br = bank.update(features)
            res.append(_mode_result(mode, br.labels, y, class_ids, class_names, names,
                                    {"bank": {"capacity": bank.capacity, "min_support": bank.min_support,
                                              "max_entropy": bank.max_entropy,
                                              "pseudo_label_source": bank.pseudo_label_source}}))
    return res


# ----------------------------------------------------------------------------- report
def write_report(results: list[dict], out_dir: str | os.PathLike, *, title: str, info: Mapping[str, Any],
                 class_names: Sequence[str]) -> dict[str, Path]:
    """Markdown report (modes side by side, per-class table, rejected clips) + a confusion PNG per mode."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for r in results:
        if "confusion" in r:
            files[r["mode"]] = _confusion_png(np.asarray(r["confusion"]), class_names,
                                              out / f"confusion_{r['mode']}.png", f"{title}: {r['mode']}")
    lines = [f"# {title}", ""]
    for k, v in info.items():
        lines.append(f"- **{k}**: {v}")
    lines += ["", "| mode | accuracy | n |", "|---|---|---|"]
    for r in results:
        acc = "n/a (no ground truth)" if r["accuracy"] is None else f"{100 * r['accuracy']:.2f} %"
        lines.append(f"| {r['mode']} | {acc} | {r['n']} |")
    if results and results[0]["per_class"]:
        lines += ["", "## Per class (accuracy %, n)", "",
                  "| class | " + " | ".join(r["mode"] for r in results) + " | n |",
                  "|---|" + "---|" * (len(results) + 1)]
        for name in class_names:
            pcs = [r["per_class"].get(name, {}) for r in results]
            cells = ["-" if pc.get("accuracy") is None else f"{100 * pc['accuracy']:.1f}" for pc in pcs]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {pcs[0].get('n', 0)} |")
    if files:
        lines += ["", "## Confusion matrices", ""]
        lines += [f"![{m}]({p.name})" for m, p in files.items()]
    lines.append("")
    md = out / "report.md"
    md.write_text("\n".join(lines))
    files["markdown"] = md
    return files


def _confusion_png(cm: np.ndarray, class_names: Sequence[str], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(class_names)
    fig, ax = plt.subplots(figsize=(2 + 0.6 * k, 1.5 + 0.6 * k))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(k), [n[:24] for n in class_names], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), [n[:24] for n in class_names], fontsize=7)
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- end to end
def class_texts(dataset: str, class_ids: Sequence[int], class_names: Sequence[str], kind: str,
                checkpoint_descriptions: Mapping[str, str] | None = None) -> list[str]:
    """Texts for the evaluated classes: the dataset's description file (``kind``) when there is
    one, else the checkpoint's descriptions, else the class names."""
    if kind != "name" and dataset:
        try:
            from training.descriptions import load_descriptions  # CLI-level: description files

            return load_descriptions(dataset, kind, list(class_ids))
        except Exception:  # noqa: BLE001 - unknown dataset / no file: fall through
            pass
    d = checkpoint_descriptions or {}
    return [d.get(n) or n for n in class_names]


def features_for(model, x: np.ndarray, batch: int = 256) -> np.ndarray:
    from pgfa_models.recognition import make_feature_fn

    fn = make_feature_fn(model)
    return np.concatenate([fn(x[i:i + batch]) for i in range(0, len(x), batch)]) if len(x) else np.zeros((0, 0))


def run_eval(bags: Sequence[BagClips], checkpoint: str | os.PathLike, *, modes: Sequence[str] = MODES,
             alpha: float = DEFAULT_ALPHA, classes: Sequence[int] | None = None, descriptions: str | None = None,
             bank_options: Mapping | None = None, encoder=None) -> tuple[list[dict], EvalSet, dict]:
    """Evaluate clips read from bags with a checkpoint; returns (per-mode results, clips, info)."""
    from pgfa_models.checkpoint import CheckpointError, load_model
    from pgfa_models.config import from_dict
    from pgfa_models.preprocess import PreprocessConfig

    try:
        model, meta = load_model(checkpoint)
    except (CheckpointError, OSError) as exc:
        raise BagError(str(exc)) from None
    cfg = from_dict(PreprocessConfig, dict(meta.preprocess or {}), "preprocess")
    es = bag_clips_to_tensors(bags, cfg, int(meta.num_person))
    if classes is None:
        if es.labelled:
            classes = sorted(set(es.y.tolist()))
        elif es.classes:
            classes = list(range(len(es.classes)))
        else:
            raise BagError("unlabelled bag without a class list: pass --classes or --labels")
    classes = [int(c) for c in classes]
    names = [es.classes[c] if c < len(es.classes) else f"class {c}" for c in classes]
    kind = descriptions or str((meta.extra or {}).get("description_kind", "complete"))
    texts = class_texts(es.dataset, classes, names, kind, meta.descriptions)
    if encoder is None:
        from pgfa_models.text import TextEncoder

        encoder = TextEncoder(meta.text_model)
    text_features = np.asarray(encoder.encode(texts), dtype=np.float32)
    if text_features.shape[1] != meta.text_dim:
        raise BagError(f"text features are {text_features.shape[1]}-d, the checkpoint expects {meta.text_dim}-d")
    feats = features_for(model, es.x)
    y = es.y if es.labelled else None
    results = evaluate_features(feats, y, text_features, classes, names, es.names, modes, alpha, bank_options)
    info = {"checkpoint": str(checkpoint), "bags": ", ".join(str(b.path) for b in bags),
            "clips": len(es.names), "rejected": dict(es.rejected) or "none", "classes": ", ".join(names),
            "descriptions": kind, "alpha": alpha, "text model": meta.text_model}
    return results, es, info


def json_payload(results: list[dict]) -> Any:
    """One mode -> the pgfa-eval object itself; several -> a list of such objects (mode order)."""
    return results[0] if len(results) == 1 else results


def write_json(path: str | os.PathLike, results: list[dict]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(json.dumps(json_payload(results), indent=2))
    os.replace(tmp, p)
    return p
