"""``pgfa-eval``: zero-shot evaluation of a checkpoint on the unseen classes of a split.

Example::

    pgfa-eval --checkpoint runs/u1/model.safetensors --split utd_mhad/U1 \\
        --modes text,transductive,bank,two_stage --two-stage-checkpoint runs/u1_2s/model.safetensors \\
        --alpha 0.9 --json out.json --report out.md

``--json`` holds, per mode, at least {"mode", "accuracy", "n", "per_class"}; ``--report``
writes a Markdown summary and one confusion-matrix + prediction-histogram PNG per mode next
to it. Accuracy is per sample.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pgfa-eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--split", required=True, help="split name, e.g. utd_mhad/U1")
    p.add_argument("--modes", default="text,transductive,bank",
                   help="comma-separated: text, transductive, bank, two_stage (the paper's) and the hub-aware "
                   "csls, balanced, transductive_csls, transductive_balanced, cluster_balanced, bank_csls")
    p.add_argument("--assign-options", default="",
                   help="hub-aware mode options, e.g. epsilon=0.05,iterations=1000,tol=1e-6,csls_k=10,knn_k=5")
    p.add_argument("--group-pattern", default=None,
                   help="regex giving a sample's group (subject) from its name, first capture group, e.g. "
                   "'_s(\\d+)_' for UTD-MHAD: the nearest-neighbour ceiling then ignores same-group clips")
    p.add_argument("--alpha", type=float, default=0.9, help="tolerance margin of the two-pass alignment")
    p.add_argument("--alphas", default="", help="optional alpha sweep, e.g. 0.1,0.2,...,1.0 (reported beside)")
    p.add_argument("--two-stage-checkpoint", type=Path, default=None, help="checkpoint for mode two_stage")
    p.add_argument("--data-root", default=None, help="dataset path (UTD-MHAD default ../shared/data/utd-mhad)")
    p.add_argument("--descriptions", default=None, help="override the checkpoint's description kind")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path, default=None, help="write results JSON here")
    p.add_argument("--report", type=Path, default=None, help="write a Markdown report (+ PNGs) here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pgfa_models.checkpoint import CheckpointError
    from pgfa_models.config import ConfigError

    from pgfa_models.eval_report import write_outputs
    from pgfa_models.evaluation import groups_from_pattern, parse_assign_options
    from pgfa_models.fileio import check_outputs

    from .evaluate import evaluate
    from .train import resolve_split

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    try:
        if not modes:
            raise ValueError(f"--modes {args.modes!r}: no mode given")
        check_outputs(args.json, args.report)
        resolve_split(args.split)
        alphas = [float(a) for a in args.alphas.split(",") if a.strip()]
        assign = parse_assign_options(args.assign_options)
        groups = groups_from_pattern(args.group_pattern) if args.group_pattern else None
        if not args.checkpoint.is_file():
            raise FileNotFoundError(f"checkpoint not found: {args.checkpoint}")
        report = evaluate(args.checkpoint, args.split, modes, args.alpha, alphas, args.data_root,
                          args.descriptions, args.two_stage_checkpoint, device=args.device,
                          assign_kwargs=assign, groups=groups)
    except (ConfigError, CheckpointError, ValueError, OSError) as exc:
        print(f"pgfa-eval: error: {exc}", file=sys.stderr)
        return 2
    for r in report["results"]:
        extra = f" (two-pass {100 * r['two_pass_accuracy']:.1f}%)" if "two_pass_accuracy" in r else ""
        hub = r.get("hub", {}).get("max_ratio")
        extra += f"  max pred/true {hub:.2f}" if hub is not None else ""
        print(f"{args.split} {r['mode']:<21} {100 * r['accuracy']:6.2f}%  n={r['n']}{extra}")
    ceiling = report.get("nn_ceiling") or {}
    if ceiling.get("accuracy") is not None:
        print(f"{args.split} nearest-neighbour ceiling {100 * ceiling['accuracy']:.2f}% "
              f"({'across groups' if ceiling['grouped'] else 'no groups'})")
    try:
        write_outputs(report, args.json, args.report)
    except OSError as exc:  # e.g. a full disk: still one line, not a traceback
        print(f"pgfa-eval: error: cannot write the outputs: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
