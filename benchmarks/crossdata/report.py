"""RESULTS.md of the multi-source benchmark, generated from ``results/*.json`` only."""
from __future__ import annotations

import itertools
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODES = ("text", "transductive", "balanced", "transductive_balanced", "bank")
# the tag of the shipped recipe (``optim.epochs=36``, chosen on seen-class validation): its
# validation-split rows choose the recognizer's seen_margin and the targets are shown for it too
PRODUCT_TAG = "long"


def _load() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((HERE / "results").glob("*.json"))]


def _load_ensembles() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((HERE / "results_ensemble").glob("*.json"))]


def _ms(values) -> str:
    v = [100 * x for x in values if x is not None]
    if not v:
        return "-"
    if len(v) == 1:
        return f"{v[0]:.1f} (n=1)"
    return f"{np.mean(v):.1f} ± {np.std(v, ddof=1):.1f} (n={len(v)})"


def _family(r: dict) -> str:
    return r["protocol"] + (f" [{r['tag']}]" if r.get("tag") else "")


def _tag(family: str) -> str:
    """The recipe tag of a family name (``"utd/U1 [mpnet]"`` -> ``"mpnet"``; ``""`` = baseline)."""
    return family.split(" [", 1)[1].rstrip("]") if " [" in family else ""


def _mean(ts, mode, key, sub=None):
    """Mean over seeds of ``modes[mode][key]`` (or ``[key][sub]``), None where no seed has it."""
    v = [t["modes"].get(mode, {}).get(key) for t in ts]
    if sub is not None:
        v = [(x or {}).get(sub) for x in v]
    v = [x for x in v if x is not None]
    return float(np.mean(v)) if v else None


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def targets(by: dict) -> list[str]:
    """Issue 10's targets against what the results hold (missing protocols are named, not guessed)."""
    L = ["## Targets of issue 10 (computed from the results above)", ""]
    src = ("utd_mhad", "nw_ucla", "smartfallmm", "bandai")
    for (task, target, name), tag in itertools.product(
            (("seen_concept", 0.80, "5a cross-dataset seen concept, >= 80 % averaged over four held-out sources"),
             ("zero_shot", 0.60, "5b cross-dataset zero-shot, >= 60 % (5-way in the issue)")), ("", PRODUCT_TAG)):
        rows, have = [], []
        name += f" [{tag} recipe]" if tag else " [12-epoch baseline recipe]"
        for s_ in src:
            ts = by.get((_family({"protocol": f"xsource/{s_}", "tag": tag}), task))
            if not ts:
                rows.append(f"{s_}: not run")
                continue
            tr, win = _mean(ts, "text", "trial_acc"), _mean(ts, "text", "window_acc")
            have.append(tr)
            rows.append(f"{s_} ({len(ts[0]['classes'])}-way, n={len(ts)}): text {_pct(tr)} per trial, {_pct(win)} per window")
        avg = float(np.mean(have)) if have else None
        verdict = ("not measurable" if not have else
                   f"mean over the {len(have)} held-out source(s) run {_pct(avg)}: " + ("met" if avg >= target else f"MISSED by {100 * (target - avg):.1f} points"))
        L.append(f"- **{name}**: {verdict}; " + "; ".join(rows) + ".")
    for fam in ("multi", "utd"):
        vals = {u: by.get((f"{fam}/{u}", "unseen_split")) for u in ("U1", "U2", "U3")}
        got = {u: _mean(ts, "transductive", "trial_acc") for u, ts in vals.items() if ts}
        txt = ", ".join(f"{u} {_pct(v)} (n={len(vals[u])})" for u, v in got.items()) or "none run"
        missing = [u for u in vals if u not in got]
        avg = float(np.mean(list(got.values()))) if got else None
        if fam == "multi":
            head = "5c UTD-MHAD U1-U3 two-pass (transductive, per trial), four-source training, target >= 70 %"
            verdict = "" if avg is None else (f"; mean {_pct(avg)} " + ("(met)" if avg >= 0.70 else f"(MISSED by {100 * (0.70 - avg):.1f} points)"))
        else:
            head = "5c the same with UTD-MHAD-only training (the comparison)"
            verdict = "" if avg is None else f"; mean {_pct(avg)}"
        L.append(f"- **{head}**: {txt}{verdict}" + (f"; not run: {', '.join(missing)}" if missing else "") + ".")
    worst = [(r, f"{fam} / {task}") for (fam, task), ts in by.items()
             if (r := _mean(ts, "text", "hubs", "max_ratio")) is not None]
    if worst:
        bad = sorted([w for w in worst if w[0] > 2], reverse=True)
        L.append(f"- **No class predicted more than twice its true count (text mode)**: "
                 + ("met in every task" if not bad else f"MISSED in {len(bad)} of {len(worst)} tasks: "
                    + ", ".join(f"{n} {r:.2f}x" for r, n in bad)) + ".")
    notes = HERE / "NOTES.md"
    if notes.is_file():
        L += ["", notes.read_text().strip()]
    return L + [""]


def chosen_mode(run: dict, task: dict) -> str | None:
    """The mode with the best whole-trial accuracy on the run's validation windows (held-out
    subjects, training classes) at the task's size: chosen without looking at the test classes."""
    vm = (run.get("validation") or {}).get("modes") or {}
    if not vm:
        return None
    way = min(vm, key=lambda w: abs(int(w) - len(task["classes"])))
    # ties go to the earlier (simpler) mode of MODES
    return max((m for m in MODES if m in vm[way]), key=lambda m: (vm[way][m]["trial_acc"], -MODES.index(m)))


def validation_choice(runs: list[dict]) -> list[str]:
    rows: dict[tuple[str, str], list[tuple[str, dict]]] = defaultdict(list)
    for r in runs:
        for t in r.get("tasks", []):
            if "modes" in t and (m := chosen_mode(r, t)) is not None:
                rows[(_family(r), t["task"])].append((m, t))
    L = ["## Mode chosen on validation (issue 10: a mode is the default only where validation says so)", "",
         "Per seed, the mode with the best per-trial accuracy on the held-out subjects' windows of the "
         "training classes (random subsets of the task's size, 10 draws), then its test accuracy. Runs "
         "dated before 2026-12-02 19:10 UTC did not record validation per mode and are not in this table.", ""]
    if not rows:
        return L + ["(no run with validation per mode yet)", ""]
    L += ["| protocol | task | seeds | chosen (count) | chosen: test win / trial | text: test win / trial |",
          "|---|---|---|---|---|---|"]
    for (fam, task), items in sorted(rows.items()):
        counts = defaultdict(int)
        for m, _ in items:
            counts[m] += 1
        chosen_w = _ms([t["modes"].get(m, {}).get("window_acc") for m, t in items])
        chosen_t = _ms([t["modes"].get(m, {}).get("trial_acc") for m, t in items])
        text_w = _ms([t["modes"]["text"].get("window_acc") for _, t in items])
        text_t = _ms([t["modes"]["text"].get("trial_acc") for _, t in items])
        L.append(f"| {fam} | {task} | {len(items)} | " + ", ".join(f"{m} ({c})" for m, c in sorted(counts.items()))
                 + f" | {chosen_w} / {chosen_t} | {text_w} / {text_t} |")
    return L + [""]


DESCRIPTION_KINDS = {"ensemble": "", "skeleton": "desc_skeleton", "complete": "desc_complete"}
# splits of validation classes: UTD-MHAD classes that no test split holds out
VALIDATION_SPLITS = ("utd/V1", "utd/V2")


def _text_trial(by: dict, family: str, task: str) -> tuple[float | None, int]:
    ts = by.get((family, task))
    return (_mean(ts, "text", "trial_acc"), len(ts)) if ts else (None, 0)


def _seen_validation(meta: dict, family: str):
    """Mean per-trial accuracy on the held-out subjects of the training classes over a family's runs."""
    v = [(r.get("validation") or {}).get("trial_accuracy") for r in meta.get(family, [])]
    v = [x for x in v if x is not None]
    return (float(np.mean(v)), len(v)) if v else (None, 0)


def description_choice(by: dict, meta: dict | None = None) -> list[str]:
    """The description kind chosen on utd/V1-V2 (held-out classes that no test split holds out),
    beside the seen-class validation of the cross-source runs (held-out subjects, also no test
    data) and what each kind scores on the test rows: the test columns never enter the choice."""
    meta = meta or {}
    L = ["## Description kind chosen on validation classes", "",
         "Text mode, per trial, mean over seeds (n). `utd/V1`, `utd/V2` hold out five UTD-MHAD classes each "
         "that none of U1-U4 holds out (config/splits.yaml), so the kind with the best V mean is chosen "
         "without a test class; the other columns are the test rows of the same kind. `ensemble` (the "
         "default recipe) is the normalised mean over every description of a class. `seen-class validation` "
         "is the per-trial accuracy on the held-out subjects of the training classes of the four cross-source "
         "runs (mean over the sources of each source's seed mean; validation data too, but of trained classes, "
         "which is what a robot recognises most of the time).", "",
         "| kind | utd/V1 | utd/V2 | V mean | seen-class validation, cross-source | utd/U1 | utd/U2 | "
         "cross-dataset seen concept / zero-shot, per held-out source |",
         "|---|---|---|---|---|---|---|---|"]
    scores, seen = {}, {}
    for kind, tag in DESCRIPTION_KINDS.items():
        t = f" [{tag}]" if tag else ""
        v = [_text_trial(by, f"{x} [desc_{kind}]", "unseen_split") for x in VALIDATION_SPLITS]
        u = [_text_trial(by, f"utd/{x}{t}", "unseen_split") for x in ("U1", "U2")]
        xs, sv = [], []
        for src in ("nw_ucla", "smartfallmm", "utd_mhad", "bandai"):
            sv.append(_seen_validation(meta, f"xsource/{src}{t}"))
            a, n = _text_trial(by, f"xsource/{src}{t}", "seen_concept")
            b, _ = _text_trial(by, f"xsource/{src}{t}", "zero_shot")
            if a is not None:
                xs.append(f"{src} {_pct(a)} / {_pct(b)} (n={n})")
        if not any(x[0] is not None for x in v + u) and not xs:
            continue
        vm = float(np.mean([x[0] for x in v])) if all(x[0] is not None for x in v) else None
        if vm is not None:
            scores[kind] = vm
        sm = None
        if all(x[0] is not None for x in sv):
            sm = seen[kind] = float(np.mean([x[0] for x in sv]))
        cell = lambda x: "-" if x[0] is None else f"{_pct(x[0])} (n={x[1]})"  # noqa: E731
        sv_cell = "-" if sm is None else f"{_pct(sm)} (runs {sum(x[1] for x in sv)})"
        L.append(f"| {kind} | {cell(v[0])} | {cell(v[1])} | {_pct(vm)} | {sv_cell} | {cell(u[0])} | {cell(u[1])} | "
                 + ("; ".join(xs) or "-") + " |")
    for what, sc in (("V mean, unseen validation classes", scores), ("seen-class validation", seen)):
        if sc:
            best = max(sc, key=sc.get)
            L += ["", f"Best on {what}: **{best}** ({_pct(sc[best])}; "
                  + ", ".join(f"{k} {_pct(v)}" for k, v in sc.items() if k != best) + ")."]
    return L + [""]


def plot_hubs(by: dict, path: Path, mode: str = "text") -> Path | None:
    """Per task, predicted vs true windows of each class (summed over seeds): a hub is a bar far
    above its true count. Tasks with more than 30 classes are left out (unreadable)."""
    items = [(k, ts) for k, ts in sorted(by.items()) if len(ts[0]["classes"]) <= 30
             and all("predicted" in t["modes"].get(mode, {}) for t in ts)]
    if not items:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 3
    rows = (len(items) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 2.9 * rows), squeeze=False)
    for ax, ((fam, task), ts) in zip(axes.flat, items):
        pred = np.sum([t["modes"][mode]["predicted"] for t in ts], axis=0)
        true = np.sum([t["modes"][mode]["true"] for t in ts], axis=0)
        x = np.arange(len(true))
        ax.bar(x - 0.2, true, 0.4, label="true", color="#9e9e9e")
        ax.bar(x + 0.2, pred, 0.4, label=f"predicted ({mode})", color="#d95f02")
        ax.plot(x, 2 * true, "k_", markersize=8, label="2x true")
        ax.set_title(f"{fam} / {task} (n={len(ts)})", fontsize=9)
        ax.set_xticks(x)
        ax.set_xticklabels([c[:18] for c in ts[0]["classes"]], rotation=60, ha="right", fontsize=6)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(items):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"Windows per class: true vs predicted ({mode} mode), summed over seeds", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _curves(runs: list[dict]) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in runs:
        for t in r.get("tasks", []):
            if "generalized" in t:
                out[(_family(r), t["task"])].append(t["generalized"])
    return out


def _mean_curve(gs: list[dict], key: str) -> np.ndarray:
    return np.mean([g[key] for g in gs], axis=0)


def _best_margin(runs: list[dict], keep) -> tuple[float, list[str]] | None:
    """The margin with the best mean harmonic accuracy over the curves whose family ``keep`` accepts."""
    return _best_of({k: v for k, v in _curves(runs).items() if keep(k[0])})


def _best_of(cur: dict[tuple[str, str], list[dict]]) -> tuple[float, list[str]] | None:
    """The margin with the best mean H over ``cur`` ((row, task) -> curves), and the rows' names."""
    if not cur:
        return None
    margins = next(iter(cur.values()))[0]["margins"]
    h = np.mean([_mean_curve(gs, "harmonic") for gs in cur.values()], axis=0)
    return float(margins[int(np.argmax(h))]), [f"{f} / {t}" for f, t in sorted(cur)]


def product_margin(runs: list[dict]) -> tuple[float, list[str]] | None:
    """The shipped margin: best mean H on the validation classes (``utd/V1``, ``utd/V2``: classes no
    test split holds out), trained with the shipped recipe (:data:`PRODUCT_TAG`)."""
    return _best_margin(runs, lambda fam: fam.split(" ")[0] in VALIDATION_SPLITS and _tag(fam) == PRODUCT_TAG)


def ensemble_margin(ens: list[dict]) -> tuple[float, list[str]] | None:
    """The margin of an ensemble default: best mean H over the seed ensembles of the validation splits
    whose members share validation subjects (the generalised curve needs them)."""
    cur: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for e in ens:
        if e["protocol"] in VALIDATION_SPLITS and e.get("shared_validation"):
            for t in e.get("tasks", []):
                if "generalized" in t:
                    cur[(e["job"], t["task"])].append(t["generalized"])
    return _best_of(cur)


def test_rows_margin(runs: list[dict]) -> tuple[float, list[str]] | None:
    """The same over the baseline recipe's test rows: a cross-check, never the choice."""
    return _best_margin(runs, lambda fam: not _tag(fam))


def generalized_section(runs: list[dict], ens: list[dict] = ()) -> list[str]:
    cur = _curves(runs)
    L = ["## Generalised zero-shot: trained and new labels in one label set (as the live node has them)", "",
         "Windows of held-out subjects of the training classes plus the task's test windows, scored against "
         "the training classes and the task's classes together (text mode, per window). A margin subtracted "
         "from the trained classes' cosines (calibrated stacking) trades trained-class accuracy for new-class "
         "accuracy; H is their harmonic mean. The margin of a row is chosen on the OTHER rows of the same "
         "recipe (mean H), never on the row itself; 'best' is the row's own optimum, shown only to say how "
         "far the transferred margin is from it.", ""]
    if not cur:
        return L + ["(no run with the generalised evaluation yet)", ""]
    L += ["| protocol | task | seeds | margin 0: trained / new / H | chosen on other rows: margin, trained / new / H "
          "| best margin (this row) | trained windows taken by new labels at chosen |", "|---" * 7 + "|"]
    for (fam, task), gs in sorted(cur.items()):
        margins = gs[0]["margins"]
        others = [v for (f2, t2), v in cur.items() if (f2, t2) != (fam, task) and _tag(f2) == _tag(fam)]
        s_, u_, h_ = (_mean_curve(gs, k) for k in ("seen_acc", "unseen_acc", "harmonic"))
        share = _mean_curve(gs, "unseen_share_of_seen")
        if others:
            i = int(np.argmax(np.mean([_mean_curve(o, "harmonic") for o in others], axis=0)))
            chosen = f"{margins[i]:.2f}, {100 * s_[i]:.1f} / {100 * u_[i]:.1f} / {100 * h_[i]:.1f}"
            taken = f"{100 * share[i]:.1f} %"
        else:
            chosen, taken = "- (no other row)", "-"
        b = int(np.argmax(h_))
        L.append(f"| {fam} | {task} | {len(gs)} | {100 * s_[0]:.1f} / {100 * u_[0]:.1f} / {100 * h_[0]:.1f} | "
                 f"{chosen} | {margins[b]:.2f} (H {100 * h_[b]:.1f}) | {taken} |")
    pm, tm = product_margin(runs), test_rows_margin(runs)
    if pm is not None:
        L += ["", f"Margin with the best mean H on the validation classes ({', '.join(pm[1])}): "
                  f"**{pm[0]:.2f}** (the recognizer's `seen_margin` when the default checkpoint is one model)."]
    if (em := ensemble_margin(list(ens))) is not None:
        L += ["", f"The same over the seed ensembles of the validation splits ({', '.join(em[1])}): "
                  f"**{em[0]:.2f}** (the recognizer's `seen_margin` when the default checkpoint is a seed "
                  f"ensemble; see README)."]
    if tm is not None:
        L += ["", f"Cross-check, not used to choose: the best mean H over the baseline recipe's test rows "
                  f"({', '.join(tm[1])}) is at {tm[0]:.2f}."]
    return L + [""]


def ensemble_section(runs: list[dict], ens: list[dict]) -> list[str]:
    """Each seed ensemble (``results_ensemble/``) beside its members: validation and every task."""
    if not ens:
        return []
    by_job = {r.get("job"): r for r in runs}
    show = ("text", "transductive", "balanced", "transductive_balanced")
    lines = ["## Seed ensembles: three seeds as one model (mean of their normalised features)", "",
             "Built by `run.py` (`ensembles()`, `training/ensemble.py`) from finished runs; no training. "
             "Per trial; the members' column is their mean ± sample std. The members of `utd_V1_long_ens3` "
             "and `utd_V2_long_ens3` held out different subjects, so those two have no validation row; "
             "'chosen on validation' is the mode with the best per-trial validation accuracy at the task's "
             "size (as in the table of modes), for the ensemble and for each member.", "",
             "| ensemble | what | ensemble | members |", "|---|---|---|---|"]
    for e in ens:
        members = [by_job[m] for m in e["member_jobs"] if m in by_job]
        if e.get("validation"):
            for key, what in (("accuracy", "validation per window"), ("trial_accuracy", "validation per trial")):
                lines.append(f"| {e['job']} | {what} | {_pct(e['validation'][key])} | "
                             f"{_ms([(m.get('validation') or {}).get(key) for m in members])} |")
        for t in e.get("tasks", []):
            if "modes" not in t:
                continue
            mt = [next((x for x in m.get("tasks", []) if x.get("task") == t["task"]), None) for m in members]
            for mode in show:
                lines.append(f"| {e['job']} | {t['task']} {mode} | {_pct(t['modes'][mode]['trial_acc'])} | "
                             f"{_ms([(x or {}).get('modes', {}).get(mode, {}).get('trial_acc') for x in mt])} |")
            if (cm := chosen_mode(e, t)) is not None:
                picks = [(m, x) for m, x in zip(members, mt) if x is not None and chosen_mode(m, x)]
                lines.append(f"| {e['job']} | {t['task']} chosen on validation: {cm} | "
                             f"{_pct(t['modes'][cm]['trial_acc'])} | "
                             f"{_ms([x['modes'][chosen_mode(m, x)]['trial_acc'] for m, x in picks])} |")
    return lines + [""]


def write_report() -> Path:
    runs = _load()
    by: dict[tuple[str, str], list[dict]] = defaultdict(list)
    meta: dict[str, list[dict]] = defaultdict(list)
    for r in runs:
        meta[_family(r)].append(r)
        for t in r.get("tasks", []):
            if "modes" in t:
                by[(_family(r), t["task"])].append(t)
    lines = ["# Multi-source and cross-dataset zero-shot results (real skeletons)", "",
             "Generated by `benchmarks/crossdata/report.py` from `benchmarks/crossdata/results/*.json`, written by "
             "`.venv/bin/python benchmarks/crossdata/run.py` (each file holds its `pgfa-train` command, date and "
             "machine). Recipe `config/training/multi_source.yaml` unless a tag says otherwise. Accuracy is top-1 % "
             "over all test windows (live-length, 45 frames every 10) and over whole trials (mean window feature), "
             "mean ± sample std over seeds. Two-pass alignment alpha = 0.9 (fixed in advance).", ""]
    lines += targets(by)
    lines += ["## Accuracy by protocol and task", "",
              "| protocol | task | classes (chance) | " + " | ".join(f"{m} win / trial" for m in MODES)
              + " | NN ceiling | upper body text win |", "|---" * (5 + len(MODES)) + "|"]
    for (fam, task), ts in sorted(by.items()):
        k = len(ts[0]["classes"])
        cells = []
        for m in MODES:
            w = [t["modes"].get(m, {}).get("window_acc") for t in ts]
            tr = [t["modes"].get(m, {}).get("trial_acc") for t in ts]
            cells.append(f"{_ms(w)} / {_ms(tr)}")
        nn = _ms([t.get("nn_ceiling", {}).get("accuracy") for t in ts])
        ub = _ms([t.get("upper_body", {}).get("text", {}).get("window_acc") for t in ts])
        lines.append(f"| {fam} | {task} | {k} ({100 / k:.0f} %) | " + " | ".join(cells) + f" | {nn} | {ub} |")
    lines += [""] + validation_choice(runs)
    lines += description_choice(by, meta)
    ens = _load_ensembles()
    lines += generalized_section(runs, ens)
    lines += ensemble_section(runs, ens)
    if plot_hubs(by, HERE / "hubs.png") is not None:
        lines += ["![windows per class, true vs predicted in text mode](hubs.png)", ""]
    lines += ["## Hubs: max predicted / true count over the classes (target <= 2), mean over seeds", "",
              "| protocol | task | " + " | ".join(MODES) + " |", "|---" * (2 + len(MODES)) + "|"]
    for (fam, task), ts in sorted(by.items()):
        cells = [f"{r:.2f}" if (r := _mean(ts, m, "hubs", "max_ratio")) is not None else "-" for m in MODES]
        lines.append(f"| {fam} | {task} | " + " | ".join(cells) + " |")
    lines += ["", "## Classes of each task", ""]
    seen = set()
    for (fam, task), ts in sorted(by.items()):
        key = (fam.split(" [")[0], task)
        if key not in seen:
            seen.add(key)
            lines.append(f"- {key[0]} / {task}: " + ", ".join(ts[0]["classes"]))
    lines += ["", "## Training, temperature and validation (held-out subjects of the training sources)", "",
              "| protocol | seeds | train windows / trials | classes | s / epoch (mean) | learnt tau (end) | "
              "calibrated tau | val window acc | val trial acc | val ECE |", "|---" * 10 + "|"]
    for fam, rs in sorted(meta.items()):
        val = [r.get("validation") or {} for r in rs]
        ep = [np.mean(r["epoch_seconds"]) for r in rs if r.get("epoch_seconds")]
        lines.append(
            f"| {fam} | {len(rs)} | {rs[0]['train_windows']} / {rs[0]['train_trials']} | {len(rs[0]['classes'])} | "
            f"{np.mean(ep):.0f} | {np.mean([r['final_tau'] for r in rs]):.4f} | "
            f"{np.mean([v.get('tau', np.nan) for v in val]):.3f} | {_ms([v.get('accuracy') for v in val])} | "
            f"{_ms([v.get('trial_accuracy') for v in val])} | {np.mean([v.get('ece', np.nan) for v in val]):.3f} |")
    machines = {json.dumps(r.get("machine", {}), sort_keys=True) for r in runs}
    lines += ["", "## Machines and commands", ""]
    for m in sorted(machines):
        lines.append(f"- machine: `{m}`")
    for r in runs:
        lines.append(f"- `{r['job']}` ({r['date']}): `{r['train_command']}`, train {r['wall_train_s']} s")
    path = HERE / "RESULTS.md"
    path.write_text("\n".join(lines) + "\n")
    return path


if __name__ == "__main__":
    print(write_report())
