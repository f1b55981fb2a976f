"""How a model trained against one kind of description does when its unseen classes are named
another way (issue 10 item 2): a robot's user names a new action by a short phrase, not by the
project's skeleton-focused paragraph, so the description kind chosen for training must also hold
for the texts a user writes.

    .venv/bin/python benchmarks/crossdata/query_texts.py            # V, U1, U2, cross-source runs
    .venv/bin/python benchmarks/crossdata/query_texts.py --runs runs/crossdata/utd_V1_desc_skeleton_s0

For every finished run folder (``runs/crossdata/<job>``, made by ``run.py``) and every zero-shot
task of its protocol, the unseen classes are scored in ``text`` mode (nearest text feature, per
whole trial) against query texts of each kind (``QUERIES``): what a user writes (one name, ONE
paraphrase drawn per class with the mean over draws, one description, name and description
together) and the project's whole complete / skeleton / ensemble text sets.
Writes ``query_texts.json`` and ``query_texts.md`` next to this file. Evaluation only: no training.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# what a user writes (one name; one paraphrase; one description; a {name, description} label
# embedded as the mean of both) and the project's own text sets per kind
QUERIES = ("name", "one_paraphrase", "description", "name+description", "complete", "skeleton", "ensemble")
# the jobs of run.py that train against the ensemble or the skeleton texts alone; the V splits first
DEFAULT_JOBS = [f"utd_{v}_desc_{k}_s{s}" for v in ("V1", "V2") for k in ("ensemble", "skeleton") for s in (0, 1, 2)] + [
    f"{p}{tag}_s{s}" for p in ("utd_U1", "utd_U2", "xsource_nw_ucla", "xsource_smartfallmm", "xsource_utd_mhad",
                                "xsource_bandai") for tag in ("", "_desc_skeleton") for s in (0, 1, 2)]


def _query_sets(cls, query: str, rng) -> list[list[str]]:
    """Text sets for one class: one set, or one per draw for ``one_paraphrase``; a kind the class
    has no text of falls back to its name (as the label set does)."""
    from training.multi import _kind_texts

    first = lambda kind: _kind_texts(cls, kind)[:1]  # noqa: E731
    if query == "one_paraphrase":
        para = _kind_texts(cls, "paraphrases")
        sets = [[para[i]] for i in rng.integers(0, len(para), size=10)] if para else [[]]
    elif query == "name":
        sets = [first("name")]
    elif query == "description":
        sets = [first("complete")]
    elif query == "name+description":
        sets = [first("name") + first("complete")]
    else:
        sets = [_kind_texts(cls, query)]
    return [s or first("name") for s in sets]


def evaluate_run(run: Path, catalog, draws_seed: int = 0) -> dict:
    """The run's protocol, training kind and, per zero-shot task, text-mode trial accuracy per query kind."""
    import torch

    from pgfa_models.evaluation import extract_features, predict_mode
    from pgfa_models.recognition import center_text, checkpoint_text_center, ensemble_features
    from training.corpus import trial_features
    from training.multi import load_run, task_windows
    from training.protocols import get_protocol, resolve
    from training.train import encode_texts

    recipe, model, meta = load_run(run)
    resolved = resolve(get_protocol(str(meta.extra["split"])), catalog)
    p = resolved.protocol
    tasks = [t for t in resolved.tasks if t.name != "seen_concept"]
    ws_all = task_windows(recipe, resolved, tasks)
    with torch.no_grad():
        feats_all = extract_features(model, ws_all.x)
    center = checkpoint_text_center(meta)
    by_label = {c.label: c for c in catalog.classes(p.test)}
    encode = lambda t: encode_texts(recipe.text.model, t)  # noqa: E731
    out = []
    for task in tasks:
        labels_k = [k for k in task.labels if (ws_all.label == k).any()]
        idx = np.flatnonzero(np.isin(ws_all.label, labels_k))
        pos = {k: i for i, k in enumerate(labels_k)}
        y = np.array([pos[int(v)] for v in ws_all.label[idx]])
        _, tf = trial_features(feats_all[idx], ws_all.trial[idx])
        _, first = np.unique(ws_all.trial[idx], return_index=True)
        names = [by_label[k].name for k in labels_k]
        row = {"task": task.name, "classes": names, "n_trials": int(len(first)), "acc": {}}
        for q in QUERIES:
            rng = np.random.default_rng(draws_seed)
            per_class = [_query_sets(by_label[k], q, rng) for k in labels_k]
            accs = []
            for d in range(len(per_class[0])):
                text = center_text(ensemble_features(encode, [pc[d] for pc in per_class]), center)
                pred = predict_mode("text", tf, text, names).pred
                accs.append(float((pred == y[first]).mean()))
            row["acc"][q] = float(np.mean(accs))
        out.append(row)
    return {"protocol": p.name, "trained_on": recipe.text.descriptions, "tasks": out}


def write_markdown(res: dict) -> str:
    cells = defaultdict(lambda: defaultdict(list))
    for run in res["runs"].values():
        for t in run["tasks"]:
            for q, a in t["acc"].items():
                cells[(run["protocol"], t["task"], run["trained_on"])][q].append(a)
    L = ["# Unseen classes named another way than in training", "",
         f"Generated by `{res['command']}` on {res['date']} ({res['machine']}). Text mode, whole trials, top-1 %,",
         "mean ± sample std over the seeds' runs (n = runs). Query texts per class: `name` its first name,",
         "`one_paraphrase` one short phrase (mean over 10 draws), `description` its first complete",
         "description, `name+description` the mean feature of both (how a user's {name, description}",
         "label could be embedded), then the project's whole `complete` / `skeleton` / ensemble sets.",
         "Rows: protocol and the description kind the model was trained against; the V splits are the",
         "validation splits (classes no U split tests); U1/U2 and the cross-source zero-shot tasks are",
         "test tasks.", "",
         "| protocol | task | trained on | n | " + " | ".join(QUERIES) + " |", "|---|---|---|---|" + "---|" * len(QUERIES)]
    for (proto, task, kind), qs in sorted(cells.items()):
        n = len(qs[QUERIES[0]])
        vals = []
        for q in QUERIES:
            v = 100 * np.asarray(qs[q])
            vals.append(f"{v.mean():.1f}" + (f" ± {v.std(ddof=1):.1f}" if n > 1 else ""))
        L.append(f"| {proto} | {task} | {kind} | {n} | " + " | ".join(vals) + " |")
    if res.get("skipped"):
        L += ["", f"Not in the table (no run folder; `run.py --only <jobs> --retrain` rebuilds them): "
                  f"{', '.join(res['skipped'])}."]
    return "\n".join(L) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="*", help="run folders (default: DEFAULT_JOBS under runs/crossdata)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from pgfa_models.sysinfo import machine_info
    from training.catalog import load_catalog

    runs = [Path(r) for r in args.runs] if args.runs else [REPO / "runs" / "crossdata" / j for j in DEFAULT_JOBS]
    missing = [r.name for r in runs if not (r / "model.safetensors").is_file()]
    if missing:
        print(f"[query_texts] skipped, no run folder: {', '.join(missing)}", file=sys.stderr)
    runs = [r for r in runs if r.name not in missing]
    if not runs:
        print("no finished run folders found (run benchmarks/crossdata/run.py first)", file=sys.stderr)
        return 1
    catalog = load_catalog()
    info = machine_info()
    res = {"command": "benchmarks/crossdata/query_texts.py" + (" --runs ..." if args.runs else ""),
           "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "machine": f"{info['cpu']}, {info['cpus']} cores", "skipped": missing, "runs": {}}
    for i, r in enumerate(runs, 1):
        print(f"[query_texts] {i}/{len(runs)} {r.name}", flush=True)
        res["runs"][r.name] = evaluate_run(r, catalog)
    md = write_markdown(res)
    (HERE / "query_texts.json").write_text(json.dumps(res, indent=2))
    (HERE / "query_texts.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
