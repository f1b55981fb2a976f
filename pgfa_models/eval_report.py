"""Evaluation outputs shared by ``pgfa-eval`` and ``pgfa-bag eval``: JSON, Markdown with the
per-class prediction histograms (a collapse onto one class shows at once), confusion PNGs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .evaluation import BANK_ORDER, HUB_RATIO_TARGET


def hub_cell(r: dict[str, Any]) -> str:
    """'1.40' or '3.20 HUB (jump)' for the table: max predicted / true count over classes."""
    h = r.get("hub")
    if not h:
        return ""
    txt = "n/a" if h.get("max_ratio") is None else f"{h['max_ratio']:.2f}"
    if not h.get("meets_target", True):
        txt += f" HUB ({', '.join(h['over_target'])})"
    return txt


def ceiling_line(c: dict[str, Any] | None) -> str:
    if not c:
        return "- nearest-neighbour ceiling: not computed"
    where = f"other groups only ({c['groups']} groups)" if c.get("grouped") else "any other clip (no sample groups given)"
    acc = "n/a" if c.get("accuracy") is None else f"{100 * c['accuracy']:.1f} %"
    return (f"- nearest-neighbour ceiling (skeleton features, cosine; neighbour among {where}): "
            f"{acc} of {c['scored']} clips have a same-class nearest neighbour")


def histogram_text(r: dict[str, Any], width: int = 30) -> str:
    """Per-class prediction histogram as text bars (a collapse onto one class shows at once)."""
    pcs = r["per_class"]
    top = max([v["predicted"] for v in pcs.values()] + [1])
    lines = []
    for name, v in pcs.items():
        bar = "#" * int(round(width * v["predicted"] / top))
        ratio = v["predicted"] / v["n"] if v.get("n") else None
        flag = "  HUB" if (ratio is None and v["predicted"]) or (ratio is not None and ratio > HUB_RATIO_TARGET) else ""
        rtxt = "  n/a" if ratio is None else f"{ratio:5.2f}"
        lines.append(f"{name[:34]:<34} {v['predicted']:>4} / {v['n']:<4} x{rtxt} {bar}{flag}")
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
             f"- bank stream order: {report.get('order', BANK_ORDER)}",
             ceiling_line(report.get("nn_ceiling")),
             f"- max pred/true: the largest predicted / true count of a class (target <= {HUB_RATIO_TARGET:g}; "
             "HUB marks classes above it)"]
    if report.get("assignment"):
        lines.append("- hub-aware mode options: " + ", ".join(f"{k}={v}" for k, v in report["assignment"].items()))
    lines += ["", "| mode | accuracy % | n | max pred/true | notes |", "|---|---|---|---|---|"]
    for r in report["results"]:
        note = ""
        if "initial_accuracy" in r:
            note = f"alpha {r['alpha']}; first pass {100 * r['initial_accuracy']:.1f}%"
            if r.get("initial_hub"):
                note += f", max pred/true {hub_cell({'hub': r['initial_hub']})}"
        if r.get("sinkhorn") and not r["sinkhorn"].get("converged", True):
            note += f"{'; ' if note else ''}Sinkhorn not converged (marginal error {r['sinkhorn']['marginal_error']:.1e})"
        if r["mode"] == "two_stage":
            note = f"text-only; two-pass (alpha {report['alpha']}) {100 * r['two_pass_accuracy']:.1f}%"
        lines.append(f"| {r['mode']} | {100 * r['accuracy']:.1f} | {r['n']} | {hub_cell(r)} | {note} |")
    for r in report["results"]:
        if r.get("alpha_sweep"):
            lines += ["", f"## {r['mode']}: alpha sweep (reported for analysis; alpha is fixed in advance)", "",
                      "| alpha | " + " | ".join(r["alpha_sweep"]) + " |",
                      "|---|" + "---|" * len(r["alpha_sweep"]),
                      "| acc % | " + " | ".join(f"{100 * v:.1f}" for v in r["alpha_sweep"].values()) + " |"]
    for r in report["results"]:
        lines += ["", f"## {r['mode']}: per-class prediction histogram (predicted / true count, ratio)", "", "```",
                  histogram_text(r), "```"]
        if pngs and r["mode"] in pngs:
            lines += ["", f"![{r['mode']} confusion]({pngs[r['mode']]})"]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n")


def write_outputs(report: dict[str, Any], json_path: str | Path | None = None,
                  md_path: str | Path | None = None) -> dict[str, Path]:
    """JSON, and Markdown with one confusion PNG per mode next to it; returns what was written."""
    files: dict[str, Path] = {}
    if json_path:
        write_json(report, json_path)
        files["json"] = Path(json_path)
    if md_path:
        md = Path(md_path)
        md.parent.mkdir(parents=True, exist_ok=True)
        pngs = {}
        for r in report["results"]:
            png = md.with_name(f"{md.stem}_{r['mode']}_confusion.png")
            write_confusion_png(r, png)
            pngs[r["mode"]] = png.name
            files[r["mode"]] = png
        write_markdown(report, md, pngs)
        files["markdown"] = md
    return files
