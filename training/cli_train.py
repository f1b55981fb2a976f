"""``pgfa-train``: train a PGFA model on the seen classes of a zero-shot split.

Example::

    pgfa-train --recipe config/training/utd_mhad.yaml --split utd_mhad/U1 --seed 0 --out runs/u1_s0

Multi-GPU: ``torchrun --nproc_per_node 4 -m training.cli_train --recipe ... --split ...``
(the same arguments; WORLD_SIZE is detected, only rank 0 writes).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import yaml


def _parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"pgfa-train: error: --set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pgfa-train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", type=Path, default=None,
                   help="YAML recipe (config/training/*.yaml); defaults to the paper defaults")
    p.add_argument("--split", required=True,
                   help="split name, e.g. utd_mhad/U1 (or <dataset>/all to train on every class), or a "
                        "multi-source protocol of config/protocols.yaml, e.g. xsource/nw_ucla or all")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="run folder (log.jsonl, state, model.safetensors)")
    p.add_argument("--data-root", default=None, help="dataset path (overrides data.root)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--epochs", type=int, default=None, help="override optim.epochs")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe field, e.g. --set text.model=all-mpnet-base-v2")
    p.add_argument("--fresh", action="store_true", help="ignore a resumable state in --out")
    p.add_argument("--limit-per-class", type=int, default=None,
                   help="use only the first N clips (by file name) of each class: smoke tests only")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pgfa_models.config import ConfigError

    from .protocols import is_protocol
    from .train import load_recipe, resolve_split, train

    try:
        if not is_protocol(args.split):
            resolve_split(args.split)
    except ConfigError as exc:
        print(f"pgfa-train: error: {exc}", file=sys.stderr)
        return 2
    overrides = _parse_set(args.set)
    if args.epochs is not None:
        overrides["optim.epochs"] = args.epochs
    if args.data_root is not None:
        overrides["data.root"] = args.data_root
    try:
        recipe = load_recipe(args.recipe, overrides)
    except (ConfigError, ValueError) as exc:
        print(f"pgfa-train: error: {exc}", file=sys.stderr)
        return 2
    if args.fresh:
        for f in args.out.glob("state_*.pt"):
            f.unlink()
        log = args.out / "log.jsonl"
        if log.exists():
            log.unlink()
    command = "pgfa-train " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    try:
        clips = None
        if args.limit_per_class is not None:
            from .datasets import load_utd_mhad

            if not args.split.startswith("utd_mhad/"):
                raise ValueError("--limit-per-class is implemented for UTD-MHAD splits only")
            clips = load_utd_mhad(recipe.data.root, recipe.data.preprocess, recipe.data.num_person,
                                  limit_per_class=args.limit_per_class)
        summary = train(recipe, args.split, args.seed, args.out, device=args.device,
                        progress=not args.quiet, command=command, clips=clips)
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"pgfa-train: error: {exc}", file=sys.stderr)
        return 2
    if summary.get("world_size", 1) == 1 or int(__import__("os").environ.get("RANK", "0")) == 0:
        keys = ("split", "protocol", "seed", "train_clips", "train_windows", "first_loss", "final_loss", "wall_s",
                "wall_train_s")
        print(json.dumps({k: summary[k] for k in keys if k in summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
