"""How the demo's labels depend on the size of the label set (issue 12, item 3).

Zero-shot recognition picks the best of the labels it is given, so what a person is called
depends on which other labels compete. This runs ``pgfa-demo`` once on the packaged video with
every label of a pool (the checkpoint's classes plus the zero-shot labels of the label file)
scored in every window (``--top-k`` = all), then re-decides each window within label subsets:
in text mode a window's label within a subset is the subset's best score (the scores are a
softmax of the margin-shifted cosines, which a subset does not change), checked against a
real run with a subset in ``test/test_camera_label_sets.py``.

Scored windows (the video's ground truth, checked by eye, :data:`TRUTH`): the man's jumping
jacks / arm raises (windows ending by t = 3.5 s; "jumping jacks" or "raising both arms" is
right) and every window of the woman walking past ("walk" is right). His later phases (a step
to the edge, a somersault off the roof, the landing) are shown, not scored.

Named sets: all labels of the pool, the label file itself (the packaged demo's set by default)
and any ``--subset``. Random subsets: for each size, ``--draws`` label sets that hold "jumping jacks" and "walk" and
the rest drawn uniformly from the pool; reported: the share of the man's and the woman's scored
windows that are right (mean and 10th-90th percentile over the draws) and the share of the
woman's windows won by a zero-shot label (the hub check that rejected ``text.sentence_aux``).

    python benchmarks/camera/label_sets.py                   # -> label_sets.{json,md,png} here
    python benchmarks/camera/label_sets.py --demo-json out/demo_all.json   # reuse a run
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

JJ_END_S = 3.5  # the man's jumping jacks / arm raises end here (README, checked by eye)
TRUTH = {"man": ("jumping jacks", "raising both arms"), "woman": ("walk",)}
ANCHORS = ("jumping jacks", "walk")  # in every random subset: the labels the scored windows need
SIZES = (3, 5, 7, 10, 15, 25, 40)


def run_demo(labels: Path, out_json: Path) -> None:
    """The whole pool scored in every window (``--top-k`` larger than any label set)."""
    cmd = [sys.executable, "-m", "pgfa_ros.demo", "--labels", str(labels), "--top-k", "1000",
           "--no-progress", "--json", str(out_json), "--out", str(out_json.with_suffix(".gif"))]
    subprocess.run(cmd, cwd=REPO, check=True)


def pool_file(label_file: Path, directory: Path) -> Path:
    """The label file with every checkpoint class included: the pool the subsets come from."""
    import yaml

    from pgfa_models.config import read_yaml

    data = dict(read_yaml(label_file, ValueError, "label file") or {})
    data["include_checkpoint_labels"] = True
    path = directory / "pool.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def load_windows(demo: dict) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """``(labels, scores [windows, labels], person per window, window end in video seconds)``."""
    labels = list(demo["labels"])
    results = demo["results"]
    if not results:
        raise ValueError("the demo run produced no results")
    col = {n: i for i, n in enumerate(labels)}
    scores = np.full((len(results), len(labels)), np.nan)
    for w, r in enumerate(results):
        for t in r["topk"]:
            scores[w, col[t["label"]]] = t["score"]
    if np.isnan(scores).any():
        raise ValueError("not every label is scored in every window: run pgfa-demo with --top-k >= the label count")
    t0 = min(r["window"]["start"] for r in results)  # the man is in view from frame 0
    end = np.array([r["window"]["end"] - t0 for r in results])
    bodies = sorted({r["body_id"] for r in results}, key=lambda b: min(r["window"]["start"] for r in results
                                                                         if r["body_id"] == b))
    if len(bodies) != 2:
        raise ValueError(f"expected the video's two people, the demo tracked bodies {bodies}")
    who = {bodies[0]: "man", bodies[1]: "woman"}
    return labels, scores, [who[r["body_id"]] for r in results], end


def scored_mask(person: list[str], end: np.ndarray) -> dict[str, np.ndarray]:
    p = np.array(person)
    return {"man": (p == "man") & (end <= JJ_END_S + 1e-6), "woman": p == "woman"}


def decide(scores: np.ndarray, labels: list[str], subset: list[str]) -> list[str]:
    idx = [labels.index(n) for n in subset]
    return [subset[i] for i in scores[:, idx].argmax(1)]


def score_subset(scores, labels, subset, masks, zero_shot) -> dict:
    pred = np.array(decide(scores, labels, subset))
    out = {p: float(np.isin(pred[m], TRUTH[p]).mean()) for p, m in masks.items()}
    out["woman_zero_shot"] = float(np.isin(pred[masks["woman"]], list(zero_shot)).mean())
    return out


def competitors(scores, labels, masks) -> dict[str, int]:
    """Among all labels: in how many of the man's scored windows each label beats every right one."""
    right = [labels.index(n) for n in TRUTH["man"] if n in labels]
    s = scores[masks["man"]]
    beat = s > s[:, right].max(1, keepdims=True)
    counts = {labels[j]: int(beat[:, j].sum()) for j in range(len(labels)) if beat[:, j].any()}
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def random_subsets(scores, labels, masks, zero_shot, sizes, draws, seed) -> list[dict]:
    rng = np.random.default_rng(seed)
    rest = [n for n in labels if n not in ANCHORS]
    rows = []
    for k in sizes:
        if k > len(labels):
            continue
        got = [score_subset(scores, labels, list(ANCHORS) + list(rng.choice(rest, k - 2, replace=False)),
                            masks, zero_shot) for _ in range(draws)]
        row = {"size": k, "draws": draws}
        for key in ("man", "woman", "woman_zero_shot"):
            v = np.array([g[key] for g in got])
            row[key] = {"mean": float(v.mean()), "p10": float(np.percentile(v, 10)), "p90": float(np.percentile(v, 90))}
        row["both_at_least_80"] = float(np.mean([g["man"] >= 0.8 and g["woman"] >= 0.8 for g in got]))
        rows.append(row)
    return rows


def markdown(res: dict) -> str:
    def pc(x):
        return f"{100 * x:.0f} %"

    lines = ["# The demo's labels against the size of the label set (`benchmarks/camera/label_sets.py`)", "",
             f"Run {res['date']} on {res['machine']}; command `{res['command']}`. One `pgfa-demo` run scores "
             f"all {len(res['labels'])} labels of the pool (the checkpoint's classes + the zero-shot labels "
             f"{', '.join(res['zero_shot'])}) in every window; each label set below is decided from those "
             "scores (text mode, the default `seen_margin`). Scored windows: the man's jumping jacks "
             f"(windows ending by t = {JJ_END_S} s, {res['scored']['man']} windows; right: "
             f"{' / '.join(TRUTH['man'])}) and the walking woman ({res['scored']['woman']} windows; right: walk).", "",
             "## Named label sets", "",
             "| label set | labels | man: jumping jacks right | woman: walk right | woman's windows won by a zero-shot label |",
             "|---|---|---|---|---|"]
    for name, r in res["named"].items():
        lines.append(f"| {name} | {r['size']} | {pc(r['man'])} | {pc(r['woman'])} | {pc(r['woman_zero_shot'])} |")
    lines += ["", "Labels that beat both right ones among all labels, in how many of the man's "
              f"{res['scored']['man']} scored windows: "
              + ", ".join(f"{n} {c}" for n, c in res["competitors"].items()) + "."]
    lines += ["", f"## Random label sets ({res['random'][0]['draws']} draws per size, each holding "
              f"{' and '.join(ANCHORS)}; mean [10th-90th percentile])", "",
              "| labels | man right | woman right | woman won by zero-shot | draws with both >= 80 % |",
              "|---|---|---|---|---|"]
    for r in res["random"]:
        cell = lambda k: f"{pc(r[k]['mean'])} [{pc(r[k]['p10'])}-{pc(r[k]['p90'])}]"  # noqa: E731
        lines.append(f"| {r['size']} | {cell('man')} | {cell('woman')} | {cell('woman_zero_shot')} | "
                     f"{pc(r['both_at_least_80'])} |")
    lines += ["", "![label-set size](label_sets.png)", ""]
    return "\n".join(lines)


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = res["random"]
    k = [r["size"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for key, name, c in (("man", "man: jumping jacks right", "tab:orange"), ("woman", "woman: walk right", "tab:blue"),
                         ("woman_zero_shot", "woman: won by a zero-shot label", "tab:red")):
        m = [100 * r[key]["mean"] for r in rows]
        ax.plot(k, m, "o-", color=c, label=name)
        ax.fill_between(k, [100 * r[key]["p10"] for r in rows], [100 * r[key]["p90"] for r in rows], color=c, alpha=0.15)
    for name, r in res["named"].items():
        ax.plot([r["size"]], [100 * r["man"]], "*", color="tab:orange", ms=11)
        ax.annotate(name, (r["size"], 100 * r["man"]), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xticks(k + [len(res["labels"])])
    ax.set_xticklabels([str(x) for x in k + [len(res["labels"])]])
    ax.set_xlabel("labels in the label set (random sets; stars: named sets)")
    ax.set_ylabel("% of scored windows")
    ax.set_ylim(-3, 103)
    ax.legend(fontsize=7, loc="center left")
    ax.set_title("pgfa-demo on the packaged video: labels vs label-set size", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    from pgfa_ros.demo import DEFAULT_LABELS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", type=Path, default=Path(DEFAULT_LABELS),
                    help="label file whose zero-shot labels join the checkpoint's classes in the pool")
    ap.add_argument("--demo-json", type=Path, help="a pgfa-demo --json output of the pool with --top-k >= its size")
    ap.add_argument("--subset", action="append", default=[], metavar="NAME=LABEL,LABEL,...",
                    help="a named label set to score exactly (repeatable)")
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=HERE / "label_sets.md")
    args = ap.parse_args(argv)
    if args.draws < 1:
        ap.error("--draws must be >= 1")
    from pgfa_models.fileio import check_outputs

    try:
        check_outputs(args.out)
    except OSError as e:
        ap.error(str(e))
    with tempfile.TemporaryDirectory() as tmp:
        path = args.demo_json
        if path is None:
            path = Path(tmp) / "demo.json"
            run_demo(pool_file(args.labels, Path(tmp)), path)
        demo = json.loads(path.read_text())
    labels, scores, person, end = load_windows(demo)
    masks = scored_mask(person, end)
    zero_shot = set(demo.get("zero_shot") or [])
    from pgfa_ros.demo import build_label_set

    trained = [n for n in labels if n not in zero_shot]
    named = {"all labels": labels, args.labels.name: build_label_set(str(args.labels), trained)[0]}
    for spec in args.subset:
        name, _, names = spec.partition("=")
        subset = [n.strip() for n in names.split(",") if n.strip()]
        unknown = [n for n in subset if n not in labels]
        if not name or not subset or unknown:
            ap.error(f"--subset {spec!r}: give NAME=LABEL,...; not in the pool: {unknown}")
        named[name] = subset
    res = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "machine": f"{platform.node()} ({platform.processor() or platform.machine()})",
           "command": ("python benchmarks/camera/label_sets.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip(),
           "checkpoint": Path(demo.get("checkpoint", "")).name, "labels": labels, "zero_shot": sorted(zero_shot),
           "scored": {p: int(m.sum()) for p, m in masks.items()},
           "named": {n: {"size": len(s), "labels": s, **score_subset(scores, labels, s, masks, zero_shot)}
                     for n, s in named.items()},
           "competitors": competitors(scores, labels, masks),
           "random": random_subsets(scores, labels, masks, zero_shot, SIZES, args.draws, args.seed)}
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    plot(res, args.out.with_suffix(".png"))
    args.out.write_text(markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
