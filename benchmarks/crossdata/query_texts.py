"""How a model trained against one kind of description does when its unseen classes are named
another way (issue 10 item 2): a robot's user names a new action by a short phrase, not by the
project's skeleton-focused paragraph, so the description kind chosen for training must also hold
for the texts a user writes.

    .venv/bin/python benchmarks/crossdata/query_texts.py            # V, U1, U2, cross-source runs
    .venv/bin/python benchmarks/crossdata/query_texts.py --runs runs/crossdata/utd_V1_desc_skeleton_s0
    .venv/bin/python benchmarks/crossdata/query_texts.py --markdown   # only rebuild the .md

For every finished run folder (``runs/crossdata/<job>``, made by ``run.py``) and every zero-shot
task of its protocol, the unseen classes are scored in ``text`` mode (nearest text feature, per
whole trial) against query texts of each kind (``QUERIES``): what a user writes (one name, ONE
paraphrase drawn per class with the mean over draws, one description, name and description
together) and the project's whole complete / skeleton / ensemble text sets.
Each task of the protocol is scored (seen concepts too: a skeleton-trained model may be queried by
the whole ensemble), and so is ``validation``, the held-out subjects of the training classes.
Writes ``query_texts.json`` and ``query_texts.md`` next to this file; runs recorded there earlier
whose folder is gone are kept. Evaluation only: no training.
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
# new classes in the generalised label set: as the benchmark embeds them, and as a user writes them
GENERALIZED_QUERIES = ("ensemble", "name+description")
# the jobs of run.py that train against the ensemble or the skeleton texts alone; the V splits first
DEFAULT_JOBS = [f"utd_{v}_desc_{k}_s{s}" for v in ("V1", "V2") for k in ("ensemble", "skeleton") for s in (0, 1, 2)] + [
    f"{p}{tag}_s{s}" for p in ("utd_U1", "utd_U2", "xsource_nw_ucla", "xsource_smartfallmm", "xsource_utd_mhad",
                                "xsource_bandai") for tag in ("", "_desc_skeleton") for s in (0, 1, 2)]


def _query_sets(classes, query: str, rng) -> list[list[str]]:
    """Text sets for one class (one catalogue class, or the members of a training class): one set,
    or one per draw for ``one_paraphrase``. A single text is the first member's; a project kind
    is the union over members (as training embeds it); a kind without text falls back to the name
    (as the label set does)."""
    from training.multi import kind_texts

    classes = classes if isinstance(classes, (list, tuple)) else [classes]
    first = lambda kind: kind_texts(classes[0], kind)[:1]  # noqa: E731
    if query == "one_paraphrase":
        para = kind_texts(classes[0], "paraphrases")
        sets = [[para[i]] for i in rng.integers(0, len(para), size=10)] if para else [[]]
    elif query == "name":
        sets = [first("name")]
    elif query == "description":
        sets = [first("complete")]
    elif query == "name+description":
        sets = [first("name") + first("complete")]
    else:
        sets = [list(dict.fromkeys(t for c in classes for t in kind_texts(c, query)))]
    return [s or first("name") for s in sets]


def _score(tf: np.ndarray, y: np.ndarray, classes: list, names: list[str], encode, center,
           draws_seed: int = 0) -> dict[str, float]:
    """Text-mode accuracy of trial features ``tf`` (true class ``y``) per query kind."""
    from pgfa_models.evaluation import predict_mode
    from pgfa_models.recognition import center_text, ensemble_features

    acc = {}
    for q in QUERIES:
        rng = np.random.default_rng(draws_seed)
        per_class = [_query_sets(c, q, rng) for c in classes]
        accs = []
        for d in range(max(len(pc) for pc in per_class)):
            text = center_text(ensemble_features(encode, [pc[d % len(pc)] for pc in per_class]), center)
            accs.append(float((predict_mode("text", tf, text, names).pred == y).mean()))
        acc[q] = float(np.mean(accs))
    return acc


def _window_features(model, ws) -> np.ndarray:
    import torch

    from pgfa_models.evaluation import extract_features

    with torch.no_grad():
        return extract_features(model, ws.x)


def _trials(feats: np.ndarray, ws, y_window: np.ndarray):
    """(trial features, trial labels) of a window set: one whole-trial prediction per trial."""
    from training.corpus import trial_features

    _, tf = trial_features(feats, ws.trial)
    _, first = np.unique(ws.trial, return_index=True)
    return tf, y_window[first]


def _task_sets(model, recipe, resolved, catalog):
    """Per task of the protocol: ``(task, windows, features, window labels, catalogue classes)``
    over the task's classes that have windows; features are extracted once for all tasks."""
    from training.multi import task_windows

    ws_all = task_windows(recipe, resolved, resolved.tasks)
    feats_all = _window_features(model, ws_all)
    by_label = {c.label: c for c in catalog.classes(resolved.protocol.test)}
    for task in resolved.tasks:
        labels_k = [k for k in task.labels if (ws_all.label == k).any()]
        idx = np.flatnonzero(np.isin(ws_all.label, labels_k))
        pos = {k: i for i, k in enumerate(labels_k)}
        sel = ws_all.take(idx)
        yield task, sel, feats_all[idx], np.array([pos[int(v)] for v in sel.label]), [by_label[k] for k in labels_k]


def _generalized(val, task_feats, task_y, task_classes, encode, center) -> dict:
    """The live node's label set (trained classes on their training texts + the task's classes) on
    held-out windows of both, with the new classes embedded as the project's ensemble and as a user
    writes them (name + description): how the seen_margin, chosen with the former, fits the latter."""
    from pgfa_models.recognition import center_text, ensemble_features
    from training.multi import generalized_curve

    vf, vy, seen_text = val
    out = {}
    for q in GENERALIZED_QUERIES:
        text = center_text(ensemble_features(encode, [_query_sets(c, q, None)[0] for c in task_classes]), center)
        out[q] = generalized_curve(vf, vy, seen_text, task_feats, task_y, text)
    return out


def evaluate_run(run: Path, catalog) -> dict:
    """The run's protocol, training kind and text-mode trial accuracy per query kind, for every task
    of its protocol and for ``validation``: the held-out subjects of the training classes (the
    run's own calibration windows; no test data), queried the same ways; for the tasks of new
    classes also the generalised curve per label style (:func:`_generalized`)."""
    from pgfa_models.recognition import checkpoint_text_center
    from training.multi import class_text_features, load_run, run_training_set
    from training.protocols import get_protocol, resolve
    from training.train import encode_texts

    recipe, model, meta = load_run(run)
    resolved = resolve(get_protocol(str(meta.extra["split"])), catalog)
    p = resolved.protocol
    center = checkpoint_text_center(meta)
    encode = lambda t: encode_texts(recipe.text.model, t)  # noqa: E731
    out, val = [], None
    ws, y, names, members, val_mask, _ = run_training_set(run, recipe, meta, resolved, catalog)
    if val_mask.any():
        lookup = {s: {c.label: c for c in catalog.classes(s)} for s in p.train}
        vws = ws.where(val_mask)
        vf = _window_features(model, vws)
        tf, yt = _trials(vf, vws, y[val_mask])
        classes = [[lookup[s][label] for s, label in m] for m in members]
        out.append({"task": "validation", "classes": names, "n_trials": int(len(yt)),
                    "acc": _score(tf, yt, classes, names, encode, center)})
        val = (vf, y[val_mask], class_text_features(catalog, recipe.text.descriptions, members, encode, center))
    for task, sel, feats, yw, task_classes in _task_sets(model, recipe, resolved, catalog):
        tf, yt = _trials(feats, sel, yw)
        task_names = [c.name for c in task_classes]
        row = {"task": task.name, "classes": task_names, "n_trials": int(len(yt)),
               "acc": _score(tf, yt, task_classes, task_names, encode, center)}
        if val is not None and task.name != "seen_concept":
            row["generalized"] = _generalized(val, feats, yw, task_classes, encode, center)
        out.append(row)
    return {"protocol": p.name, "trained_on": recipe.text.descriptions, "tasks": out}


def write_markdown(res: dict) -> str:
    cells = defaultdict(lambda: defaultdict(list))
    for run in res["runs"].values():
        for t in run["tasks"]:
            for q, a in t["acc"].items():
                cells[(run["protocol"], t["task"], run["trained_on"])][q].append(a)
    L = ["# Classes named another way than in training", "",
         f"Generated by `{res['command']}` on {res['date']} ({res['machine']}). Text mode, whole trials, top-1 %,",
         "mean ± sample std over the seeds' runs (n = runs). Query texts per class: `name` its first name,",
         "`one_paraphrase` one short phrase (mean over 10 draws), `description` its first complete",
         "description, `name+description` the mean feature of both (how a user's {name, description}",
         "label could be embedded), then the project's whole `complete` / `skeleton` / ensemble sets.",
         "Rows: protocol and the description kind the model was trained against; the V splits are the",
         "validation splits (classes no U split tests); U1/U2 and the cross-source tasks are test tasks.",
         "Task `validation`: the run's held-out subjects of its training classes (validation data; a",
         "training class of several sources is queried by its first member's name / description and by",
         "the union of its members' sets). Runs evaluated before 2026-12-04 have no validation or",
         "seen-concept rows.", "",
         "| protocol | task | trained on | n | " + " | ".join(QUERIES) + " |", "|---|---|---|---|" + "---|" * len(QUERIES)]
    for (proto, task, kind), qs in sorted(cells.items()):
        n = len(qs[QUERIES[0]])
        vals = []
        for q in QUERIES:
            v = 100 * np.asarray(qs[q])
            vals.append(f"{v.mean():.1f}" + (f" ± {v.std(ddof=1):.1f}" if n > 1 else ""))
        L.append(f"| {proto} | {task} | {kind} | {n} | " + " | ".join(vals) + " |")
    # the four cross-source protocols side by side: mean over the sources of each source's run mean
    xs = defaultdict(dict)
    for (proto, task, kind), qs in cells.items():
        if proto.startswith("xsource/"):
            xs[(task, kind)][proto] = {q: float(np.mean(v)) for q, v in qs.items()}
    if xs:
        L += ["", "Cross-source means (each source's run mean, then the mean over the sources):", "",
              "| task | trained on | sources | " + " | ".join(QUERIES) + " |", "|---|---|---|" + "---|" * len(QUERIES)]
        for (task, kind), by_src in sorted(xs.items()):
            L.append(f"| {task} | {kind} | {len(by_src)} | "
                     + " | ".join(f"{100 * np.mean([a[q] for a in by_src.values()]):.1f}" for q in QUERIES) + " |")
    L += _generalized_markdown(res)
    if res.get("skipped"):
        L += ["", f"Not in the table (no run folder; `run.py --only <jobs> --retrain` rebuilds them): "
                  f"{', '.join(res['skipped'])}."]
    return "\n".join(L) + "\n"


def _generalized_markdown(res: dict) -> list[str]:
    """At the node's default seen_margin: new- and trained-class window accuracy and their harmonic
    mean with the new classes embedded each way, and the margin that would suit user labels."""
    from pgfa_ros.recognizer_params import PARAMS

    m = float(PARAMS["seen_margin"].default)
    cells = defaultdict(list)
    for run in res["runs"].values():
        for t in run["tasks"]:
            if "generalized" in t:
                cells[(run["protocol"], t["task"], run["trained_on"])].append(t["generalized"])
    if not cells:
        return []
    e, u = GENERALIZED_QUERIES
    L = ["", f"Generalised zero-shot, as the live node meets it (trained classes on their training texts plus the "
              f"task's new classes; windows of held-out subjects of both), new classes embedded as `{e}` (how the "
              f"default seen_margin {m:g} was chosen) or as `{u}` (how a user's label is embedded). Window "
              "accuracy %, mean over runs; the last column is the margin with the best H for user labels "
              "(shown, not used to choose anything).", "",
         f"| protocol | task | trained on | n | new classes at {m:g}: {e} / {u} | trained classes at {m:g}: "
         f"{e} / {u} | H at {m:g}: {e} / {u} | best margin for {u} (H) |", "|---|---|---|---|---|---|---|---|"]
    for (proto, task, kind), gs in sorted(cells.items()):
        i = gs[0][e]["margins"].index(m) if m in gs[0][e]["margins"] else None
        if i is None:
            continue
        at = lambda q, key: 100 * float(np.mean([g[q][key][i] for g in gs]))  # noqa: E731
        h_user = np.mean([g[u]["harmonic"] for g in gs], axis=0)
        j = int(np.argmax(h_user))
        L.append(f"| {proto} | {task} | {kind} | {len(gs)} | {at(e, 'unseen_acc'):.1f} / {at(u, 'unseen_acc'):.1f} | "
                 f"{at(e, 'seen_acc'):.1f} / {at(u, 'seen_acc'):.1f} | {at(e, 'harmonic'):.1f} / "
                 f"{at(u, 'harmonic'):.1f} | {gs[0][u]['margins'][j]:g} ({100 * h_user[j]:.1f}) |")
    return L


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="*", help="run folders (default: DEFAULT_JOBS under runs/crossdata)")
    ap.add_argument("--markdown", action="store_true", help="only rebuild query_texts.md from query_texts.json")
    args = ap.parse_args(argv)
    out = HERE / "query_texts.json"
    if args.markdown:
        if not out.is_file():
            print(f"{out} not found: run without --markdown first", file=sys.stderr)
            return 1
        (HERE / "query_texts.md").write_text(write_markdown(json.loads(out.read_text())))
        return 0
    sys.path.insert(0, str(REPO))
    from pgfa_models.sysinfo import machine_info
    from training.catalog import load_catalog

    runs = [Path(r) for r in args.runs] if args.runs else [REPO / "runs" / "crossdata" / j for j in DEFAULT_JOBS]
    missing = [r.name for r in runs if not (r / "model.safetensors").is_file()]
    runs = [r for r in runs if r.name not in missing]
    # runs scored earlier whose folder is gone (run folders are not kept in git) stay in the table
    kept = json.loads(out.read_text()).get("runs", {}) if out.is_file() else {}
    if missing:
        print(f"[query_texts] no run folder (recorded rows kept where there are any): {', '.join(missing)}",
              file=sys.stderr)
    if not runs and not kept:
        print("no finished run folders found (run benchmarks/crossdata/run.py first)", file=sys.stderr)
        return 1
    catalog = load_catalog() if runs else None
    info = machine_info()
    now = lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")  # noqa: E731
    res = {"command": "benchmarks/crossdata/query_texts.py" + (" --runs ..." if args.runs else ""),
           "date": now(), "machine": f"{info['cpu']}, {info['cpus']} cores",
           "skipped": [m for m in missing if m not in kept], "runs": kept}
    for i, r in enumerate(runs, 1):
        print(f"[query_texts] {i}/{len(runs)} {r.name}", flush=True)
        res["runs"][r.name] = evaluate_run(r, catalog) | {"evaluated": now()}
    md = write_markdown(res)
    out.write_text(json.dumps(res, indent=2))
    (HERE / "query_texts.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
