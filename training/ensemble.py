"""Seed ensembles of finished multi-source runs, as one checkpoint.

``python -m training.ensemble RUN RUN [RUN ...] --out DIR`` takes run folders of one recipe and
protocol trained with different seeds (``model.safetensors`` + ``recipe.json`` + ``eval.json``),
writes ``DIR/model.safetensors`` (a :class:`~pgfa_models.model.SeedEnsemble`), ``recipe.json`` and
``eval.json`` (validation and every task of the protocol, as for a trained run).

The held-out subjects calibrate the temperature and judge the model, so they must be held out
from every member: the members' ``eval.json`` must name the same validation subjects (runs trained
with one ``corpus.val_seed`` do; other seeds may draw the same ones). Members that held out
different subjects still make an ensemble for the protocol's test tasks, but it has no validation
and no calibration (``meta.extra["ensemble"]["shared_validation"]`` is false).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from pgfa_models.checkpoint import CheckpointError, save_checkpoint
from pgfa_models.config import to_dict
from pgfa_models.model import SeedEnsemble
from pgfa_models.sysinfo import machine_info

from .multi import evaluate_run, load_run, validation_seed

# what the members must agree on: the checkpoint's fields, and the training facts in meta.extra
SAME_META = ("text_model", "text_dim", "labels", "encoder", "preprocess", "descriptions", "num_person")
SAME_EXTRA = ("split", "description_kind", "class_members", "class_texts", "text_center", "window")


def _check_members(runs: Sequence[Path], loaded: list) -> list[int]:
    """The members' seeds, after checking that they are distinct single models of one recipe."""
    if len(loaded) < 2:
        raise ValueError(f"an ensemble needs at least 2 runs, got {len(loaded)}")
    first = to_dict(loaded[0][2])
    for run, (_, _, meta) in zip(runs, loaded):
        if meta.members != 1:
            raise ValueError(f"{run} is itself an ensemble; give its member runs")
        mine = to_dict(meta)
        for name in SAME_META:
            if mine[name] != first[name]:
                raise ValueError(f"{run}: {name} differs from {runs[0]}'s; members must share one recipe")
        for name in SAME_EXTRA:
            if mine["extra"].get(name) != first["extra"].get(name):
                raise ValueError(f"{run}: {name} differs from {runs[0]}'s; members must share one recipe")
    seeds = [int(meta.extra["seed"]) for _, _, meta in loaded]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"the runs repeat a seed ({seeds}); an ensemble of one seed twice is that seed")
    return seeds


def _validation_groups(run: Path) -> list[str] | None:
    """The subjects ``run`` held out (from its eval.json), or None when it had no validation."""
    v = json.loads((run / "eval.json").read_text()).get("validation")
    return sorted(v["groups"]) if v else None


def build_ensemble(runs: Sequence[str | Path], out_dir: str | Path, command: str | None = None,
                   catalog=None, cache: bool = True) -> dict[str, Any]:
    """Write the ensemble of ``runs`` to ``out_dir``; return its eval summary."""
    t0 = time.time()
    runs = [Path(r) for r in runs]
    loaded = [load_run(r) for r in runs]
    seeds = _check_members(runs, loaded)
    if catalog is None:
        from .catalog import load_catalog

        catalog = load_catalog()
    recipe, _, first = loaded[0]
    val_seeds = [validation_seed(r.corpus, int(m.extra["seed"])) for r, _, m in loaded]
    held_out = [_validation_groups(r) for r in runs]
    shared = held_out[0] is not None and all(g == held_out[0] for g in held_out)
    recipe = copy.deepcopy(recipe)
    if shared:
        recipe.corpus.val_seed = val_seeds[0]  # the ensemble's folder splits as its first member did
    model = SeedEnsemble.of([m for _, m, _ in loaded]).eval()
    extra = {k: v for k, v in first.extra.items() if k != "calibration"}
    extra.update(seed=seeds[0], command=command, recipe=to_dict(recipe),
                 ensemble={"member_runs": [str(r) for r in runs], "member_seeds": seeds,
                           "validation_seeds": val_seeds, "validation_groups": held_out,
                           "shared_validation": shared})
    meta = dataclasses.replace(first, extra=extra, members=len(loaded))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.json").write_text(json.dumps(to_dict(recipe), indent=2))
    validation, tasks = evaluate_run(out, recipe, model, meta, catalog, cache, validation=shared)
    if validation is not None and sorted(validation["groups"]) != held_out[0]:
        raise RuntimeError(f"the ensemble's validation subjects {validation['groups']} are not the ones its "
                           f"members held out {held_out[0]}")
    if validation is not None:
        meta.extra["calibration"] = validation
    save_checkpoint(out / "model.safetensors", model, meta)
    summary: dict[str, Any] = {
        "protocol": str(first.extra["split"]), "seed": seeds[0], "members": len(loaded), "member_seeds": seeds,
        "member_runs": [str(r) for r in runs], "shared_validation": shared, "classes": list(first.labels),
        "validation": validation, "final_tau": model.clamped_tau(),
        "member_validation": [json.loads((r / "eval.json").read_text()).get("validation") for r in runs],
        "wall_build_s": round(time.time() - t0, 1), "device": "cpu", "machine": machine_info(), "command": command}
    if tasks is not None:
        summary["tasks"] = tasks
    (out / "eval.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="finished run folders of one recipe and protocol, different seeds")
    ap.add_argument("--out", required=True, help="folder for the ensemble's model.safetensors and eval.json")
    ap.add_argument("--no-cache", action="store_true", help="do not use the preprocessed-window cache")
    args = ap.parse_args(argv)
    command = "python -m training.ensemble " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    try:
        summary = build_ensemble(args.runs, args.out, command=command, cache=not args.no_cache)
    except (ValueError, OSError, CheckpointError) as exc:
        print(f"training.ensemble: {exc}", file=sys.stderr)
        return 2
    val = summary["validation"]
    shown = (f"validation {100 * val['accuracy']:.1f} % per window, {100 * val['trial_accuracy']:.1f} % per trial"
             if val else "no shared validation subjects: no calibration")
    print(f"{args.out}: {summary['members']} members (seeds {summary['member_seeds']}); {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
