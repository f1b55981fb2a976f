"""Can a per-label correction from training statistics replace the one ``seen_margin``?

    .venv/bin/python benchmarks/crossdata/bias_removal.py              # the four cross-source seed-0 runs
    .venv/bin/python benchmarks/crossdata/bias_removal.py --markdown   # only rebuild the .md

In generalised zero-shot a sentence the model was not trained against scores below the trained
classes whatever the motion. The shipped fix subtracts one margin from every trained class
(calibrated stacking). Two per-label alternatives that need no margin, both computed from the
run's own training windows (never validation or test data) and scored on the same generalised
curve as ``run.py`` (held-out subjects of the training classes + the task's new-class windows):

- ``centre``: subtract each label's mean cosine over the training windows (the skeleton features
  centred on their training mean);
- ``zscore``: the same divided by the spread of that cosine over the training windows.

Each variant is shown at margin 0 and at its own best margin (for z-scores the margin is in
standard deviations). Evaluation only. Writes ``bias_removal.json`` / ``.md`` next to this file.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RUNS = [f"xsource_{s}_s0" for s in ("nw_ucla", "smartfallmm", "utd_mhad", "bandai")]
REFERENCE_WINDOWS = 6000  # training windows drawn for the statistics (seed 0)
Z_MARGINS = tuple(round(0.2 * i, 1) for i in range(26))


def evaluate_run(run: Path, catalog) -> dict:
    sys.path.insert(0, str(HERE))
    from query_texts import _query_sets, _task_sets, _window_features

    from pgfa_models.recognition import center_text, checkpoint_text_center, ensemble_features
    from training.multi import class_text_features, generalized_curve, load_run, run_training_set
    from training.protocols import get_protocol, resolve
    from training.train import encode_texts

    recipe, model, meta = load_run(run)
    resolved = resolve(get_protocol(str(meta.extra["split"])), catalog)
    center = checkpoint_text_center(meta)
    encode = lambda t: encode_texts(recipe.text.model, t)  # noqa: E731
    ws, y, _, members, val_mask, _ = run_training_set(run, recipe, meta, resolved, catalog)
    vf, vy = _window_features(model, ws.where(val_mask)), y[val_mask]
    train = np.flatnonzero(~val_mask)
    train = np.sort(np.random.default_rng(0).choice(train, min(REFERENCE_WINDOWS, len(train)), replace=False))
    ref = _window_features(model, ws.take(train))
    mean, cov = ref.mean(0), np.cov(ref.T)
    spread = lambda t: np.sqrt(np.einsum("cd,de,ce->c", t, cov, t))[:, None]  # noqa: E731
    seen_text = class_text_features(catalog, recipe.text.descriptions, members, encode, center)
    out = {}
    for task, _, tf, ty, classes in _task_sets(model, recipe, resolved, catalog):
        if task.name == "seen_concept":
            continue
        # new classes embedded as the benchmark embeds them (the project's ensemble)
        new_text = center_text(ensemble_features(encode, [_query_sets(c, "ensemble", None)[0] for c in classes]),
                               center)
        out[task.name] = {
            "margin": generalized_curve(vf, vy, seen_text, tf, ty, new_text),
            "centre": generalized_curve(vf - mean, vy, seen_text, tf - mean, ty, new_text),
            "zscore": generalized_curve(vf - mean, vy, seen_text / spread(seen_text), tf - mean, ty,
                                        new_text / spread(new_text), margins=Z_MARGINS)}
    return {"protocol": resolved.protocol.name, "reference_windows": int(len(train)), "tasks": out}


def write_markdown(res: dict) -> str:
    L = ["# Per-label bias removal vs one margin (generalised zero-shot)", "",
         f"`{res['command']}`, {res['date']}, {res['machine']}. Window accuracy %, trained / new / H; "
         "'best' is each variant's margin with the best H mean over the runs (margins of `zscore` are in "
         "standard deviations).", "",
         "| variant | margin 0: trained / new / H | best margin | at best: trained / new / H | H per run at best |",
         "|---|---|---|---|---|"]
    curves = [(name, t) for name, r in res["runs"].items() for t in r["tasks"].values()]
    for v in ("margin", "centre", "zscore"):
        cs = [t[v] for _, t in curves]
        s, u, h = (np.mean([c[k] for c in cs], axis=0) for k in ("seen_acc", "unseen_acc", "harmonic"))
        b = int(np.argmax(h))
        per = ", ".join(f"{n.replace('xsource_', '').replace('_s0', '')} {100 * t[v]['harmonic'][b]:.1f}"
                        for n, t in curves)
        L.append(f"| {v} | {100 * s[0]:.1f} / {100 * u[0]:.1f} / {100 * h[0]:.1f} | {cs[0]['margins'][b]:g} | "
                 f"{100 * s[b]:.1f} / {100 * u[b]:.1f} / {100 * h[b]:.1f} | {per} |")
    return "\n".join(L) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="*", help="run folders (default: the cross-source seed-0 runs)")
    ap.add_argument("--markdown", action="store_true", help="only rebuild bias_removal.md from the JSON")
    args = ap.parse_args(argv)
    out = HERE / "bias_removal.json"
    if not args.markdown:
        sys.path.insert(0, str(REPO))
        from pgfa_models.sysinfo import machine_info
        from training.catalog import load_catalog

        runs = [Path(r) for r in args.runs] if args.runs else [REPO / "runs" / "crossdata" / j for j in RUNS]
        missing = [str(r) for r in runs if not (r / "model.safetensors").is_file()]
        if missing:
            print(f"no finished run folder: {', '.join(missing)} (benchmarks/crossdata/run.py --only <job> "
                  "--retrain builds one)", file=sys.stderr)
            return 1
        catalog, info = load_catalog(), machine_info()
        res = {"command": "benchmarks/crossdata/bias_removal.py" + (" --runs ..." if args.runs else ""),
               "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
               "machine": f"{info['cpu']}, {info['cpus']} cores", "runs": {}}
        for i, r in enumerate(runs, 1):
            print(f"[bias_removal] {i}/{len(runs)} {r.name}", flush=True)
            res["runs"][r.name] = evaluate_run(r, catalog)
        out.write_text(json.dumps(res, indent=2))
    elif not out.is_file():
        print(f"{out} not found: run without --markdown first", file=sys.stderr)
        return 1
    md = write_markdown(json.loads(out.read_text()))
    (HERE / "bias_removal.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
