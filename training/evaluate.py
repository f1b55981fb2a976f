"""Zero-shot evaluation on the unseen classes of a split.

Modes (accuracy is per sample over every unseen-class test clip the preprocessing accepts):

* ``text``: argmax cosine to the unseen text features (no alignment);
* ``transductive``: exact two-pass prototype-guided alignment,
  :func:`pgfa_models.alignment.transductive_predict` on the SAME features, at ``alpha``
  (and optionally an alpha sweep, reported beside it);
* ``bank``: :class:`pgfa_models.alignment.PrototypeBank` over the test stream in a stated
  order, sorted by sample (file) name: each clip is predicted with the current prototypes,
  then the bank is updated with it;
* ``two_stage``: the paper's Table V baseline. Its checkpoint (made by ``pgfa-train`` with
  ``framework: two_stage``) is evaluated text-only and with the two-pass alignment; give it
  with ``two_stage_checkpoint`` (or evaluate a two-stage checkpoint directly with ``text``).
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pgfa_models.alignment import transductive_predict
from pgfa_models.checkpoint import load_model
from pgfa_models.config import from_dict
from pgfa_models.evaluation import extract_features, predict_mode
from pgfa_models.preprocess import PreprocessConfig

from .datasets import ClipSet, load_dataset
from .descriptions import class_names, load_descriptions

MODES = ("text", "transductive", "bank", "two_stage")
BANK_ORDER = "sorted by sample name (UTD-MHAD: file name a<action>_s<subject>_t<trial>)"


@dataclass
class EvalData:
    features: np.ndarray        # (N, D) L2-normalised skeleton features
    text_features: np.ndarray   # (K, D) unseen-class text features (L2-normalised)
    labels: np.ndarray          # (N,) 0-based index into the unseen classes
    names: list[str]            # sample names, sorted
    class_names: list[str]      # the K unseen class names
    class_ids: list[int]        # their dataset ids
    rejected: dict[str, int]


def prepare(checkpoint: str | Path, split, data_root: str | None = None, descriptions: str | None = None,
            clips: ClipSet | None = None, device: str = "cpu") -> tuple[EvalData, Any]:
    """Features of the unseen-class test clips and the unseen text features for one checkpoint."""
    from .train import encode_texts

    model, meta = load_model(checkpoint, device)
    kind = descriptions or meta.extra.get("description_kind") or "complete"
    unseen = list(split.unseen)
    if not unseen:
        raise ValueError(f"split {split.name} has no unseen classes to evaluate")
    if clips is None:
        pre = from_dict(PreprocessConfig, meta.preprocess or {}, "checkpoint.preprocess")
        clips = load_dataset(split.dataset, data_root, pre, meta.num_person)
    if clips.x.shape[-1] != meta.num_person:
        raise ValueError(f"clips have M={clips.x.shape[-1]}, checkpoint expects {meta.num_person}")
    test = clips.subset(unseen)
    order = np.argsort(np.asarray(test.names), kind="stable")
    test = test.take(order)
    remap = {c: i for i, c in enumerate(unseen)}
    labels = np.asarray([remap[int(c)] for c in test.y], dtype=np.int64)
    feats = extract_features(model, test.x, device=device)
    texts = load_descriptions(split.dataset, kind, unseen, split.num_classes)
    tf = encode_texts(meta.text_model, texts)
    if tf.shape[1] != meta.text_dim:
        raise ValueError(f"text model {meta.text_model} gives {tf.shape[1]}-d features, checkpoint has {meta.text_dim}")
    names = class_names(split.dataset, split.num_classes)
    return EvalData(feats, tf, labels, list(test.names), [names[c] for c in unseen], unseen,
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
              bank_kwargs: dict | None = None) -> list[dict[str, Any]]:
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


def evaluate(checkpoint: str | Path, split_name: str, modes: Sequence[str] = ("text", "transductive"),
             alpha: float = 0.9, alphas: Sequence[float] = (), data_root: str | None = None,
             descriptions: str | None = None, two_stage_checkpoint: str | Path | None = None,
             clips: ClipSet | None = None, device: str = "cpu") -> dict[str, Any]:
    from .train import resolve_split

    split = resolve_split(split_name)
    for m in modes:
        if m not in MODES:
            raise ValueError(f"unknown mode {m!r}; known: {', '.join(MODES)}")
    own = [m for m in modes if m != "two_stage"]
    report: dict[str, Any] = {"checkpoint": str(checkpoint), "split": split_name,
                              "unseen_classes": list(split.unseen), "alpha": alpha, "results": []}
    if own:
        data, meta = prepare(checkpoint, split, data_root, descriptions, clips, device)
        leaked = sorted(set(data.class_names) & set(meta.labels))
        if leaked:
            report["not_zero_shot"] = leaked
            warnings.warn(f"{checkpoint} was trained on {len(leaked)} of the evaluated classes "
                          f"({', '.join(leaked)}): this is not a zero-shot result", stacklevel=2)
        report.update({"text_model": meta.text_model, "descriptions": descriptions or meta.extra.get("description_kind"),
                       "framework": meta.extra.get("framework"), "n": int(len(data.labels)),
                       "rejected": data.rejected, "order": BANK_ORDER})
        report["results"] += run_modes(data, own, alpha, alphas)
        report["_data"] = data
    if "two_stage" in modes:
        if two_stage_checkpoint is None:
            raise ValueError("mode two_stage needs --two-stage-checkpoint (a checkpoint trained with "
                             "framework: two_stage, e.g. config/training/utd_mhad_two_stage.yaml)")
        d2, m2 = prepare(two_stage_checkpoint, split, data_root, descriptions, clips, device)
        if m2.extra.get("framework") != "two_stage":
            raise ValueError(f"{two_stage_checkpoint} was not trained with framework two_stage")
        t = run_modes(d2, ["text", "transductive"], alpha, alphas)
        r = dict(t[0])
        r.update({"mode": "two_stage", "checkpoint": str(two_stage_checkpoint),
                  "two_pass_accuracy": t[1]["accuracy"], "alpha_sweep": t[1]["alpha_sweep"]})
        report["results"].append(r)
        report.setdefault("_data", d2)
    return report


# ----------------------------------------------------------------------------- outputs
def histogram_text(r: dict[str, Any], width: int = 30) -> str:
    """Per-class prediction histogram as text bars (a collapse onto one class shows at once)."""
    pcs = r["per_class"]
    top = max([v["predicted"] for v in pcs.values()] + [1])
    lines = []
    for name, v in pcs.items():
        bar = "#" * int(round(width * v["predicted"] / top))
        lines.append(f"{name[:34]:<34} {v['predicted']:>4} / {v['n']:<4} {bar}")
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: str | Path) -> None:
    clean = {k: v for k, v in report.items() if not k.startswith("_")}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(clean, indent=2))


def write_confusion_png(r: dict[str, Any], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(r["confusion"])
    names = r["classes"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), gridspec_kw={"width_ratios": [1.2, 1]})
    ax = axes[0]
    ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    short = [n[:22] for n in names]
    ax.set_xticks(range(len(names)), short, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), short, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{r['mode']}: accuracy {100 * r['accuracy']:.1f}% (n={r['n']})", fontsize=9)
    ax2 = axes[1]
    ax2.barh(range(len(names)), cm.sum(0), color="tab:orange", label="predicted")
    ax2.barh(range(len(names)), cm.sum(1), fill=False, edgecolor="black", label="true")
    ax2.set_yticks(range(len(names)), short, fontsize=7)
    ax2.invert_yaxis()
    ax2.set_title("per-class prediction histogram", fontsize=9)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_markdown(report: dict[str, Any], path: str | Path, pngs: dict[str, str] | None = None) -> None:
    lines = [f"# Zero-shot evaluation: {report['split']}", "",
             f"- checkpoint: `{report['checkpoint']}`",
             f"- text model: {report.get('text_model')}, descriptions: {report.get('descriptions')}",
             f"- unseen classes: {report['unseen_classes']}, test clips: {report.get('n')}, "
             f"rejected by preprocessing: {report.get('rejected')}",
             f"- bank stream order: {report.get('order', BANK_ORDER)}", "",
             "| mode | accuracy % | n | notes |", "|---|---|---|---|"]
    for r in report["results"]:
        note = ""
        if r["mode"] == "transductive":
            note = f"alpha {r['alpha']}"
        if r["mode"] == "two_stage":
            note = f"text-only; two-pass (alpha {report['alpha']}) {100 * r['two_pass_accuracy']:.1f}%"
        lines.append(f"| {r['mode']} | {100 * r['accuracy']:.1f} | {r['n']} | {note} |")
    for r in report["results"]:
        if r.get("alpha_sweep"):
            lines += ["", f"## {r['mode']}: alpha sweep (reported for analysis; alpha is fixed in advance)", "",
                      "| alpha | " + " | ".join(r["alpha_sweep"]) + " |",
                      "|---|" + "---|" * len(r["alpha_sweep"]),
                      "| acc % | " + " | ".join(f"{100 * v:.1f}" for v in r["alpha_sweep"].values()) + " |"]
    for r in report["results"]:
        lines += ["", f"## {r['mode']}: per-class prediction histogram (predicted / true count)", "", "```",
                  histogram_text(r), "```"]
        if pngs and r["mode"] in pngs:
            lines += ["", f"![{r['mode']} confusion]({pngs[r['mode']]})"]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n")
