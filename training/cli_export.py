"""``pgfa-export``: build a checkpoint's backend artifacts and write a parity report.

    pgfa-export --checkpoint pgfa_ros/assets/multi_source_default.safetensors \
        --backends compiled,onnxruntime,tensorrt --clips-from ../shared/data/utd-mhad

Artifacts go next to the checkpoint (``<ckpt>.pt2``, ``<ckpt>.onnx``, ``<ckpt>.trt-*.ep``,
each with a ``.json`` sidecar). The report is printed as Markdown and written as
``<out>.md`` / ``<out>.json`` (default ``<ckpt>.parity``). Exit status: 0 when every available
backend matches eager, 1 on a mismatch or build error, 2 on bad arguments or checkpoint.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

BACKENDS = ("eager", "compiled", "onnxruntime", "tensorrt")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pgfa-export", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="pgfa_ros .safetensors checkpoint")
    p.add_argument("--backends", default="compiled,onnxruntime,tensorrt",
                   help="comma-separated subset of " + ",".join(BACKENDS) + " (default: %(default)s)")
    p.add_argument("--clips-from", default=None, help="UTD-MHAD folder for real parity clips "
                   "(e.g. ../shared/data/utd-mhad); random clips when omitted")
    p.add_argument("--max-clips", type=int, default=64, help="clips used for parity (0: all; default 64)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16"))
    p.add_argument("--labels", default="text", choices=("text", "random"),
                   help="label-set features: the checkpoint's text model, or a fixed random matrix")
    p.add_argument("--rebuild", action="store_true", help="rebuild artifacts even if cached ones are valid")
    p.add_argument("--cache-dir", default=None, help="artifact folder (default: next to the checkpoint)")
    p.add_argument("--out", default=None, help="report path without extension (default: <ckpt>.parity)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    bad = [b for b in backends if b not in BACKENDS]
    if bad or not backends:
        print(f"pgfa-export: unknown backend(s) {bad}; choose from {','.join(BACKENDS)}", file=sys.stderr)
        return 2
    if args.max_clips < 0:
        print(f"pgfa-export: --max-clips must be >= 0, got {args.max_clips}", file=sys.stderr)
        return 2
    from pgfa_models.checkpoint import CheckpointError
    from training.export import export

    out = Path(args.out) if args.out else Path(args.checkpoint).with_name(Path(args.checkpoint).name + ".parity")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)  # now, not after a long TensorRT build
        report = export(args.checkpoint, backends, clips_from=args.clips_from, device=args.device,
                        precision=args.precision, max_clips=args.max_clips or None, labels=args.labels,
                        rebuild=args.rebuild, cache_dir=args.cache_dir)
    except (CheckpointError, OSError, ValueError) as exc:
        print(f"pgfa-export: {exc}", file=sys.stderr)
        return 2
    try:
        out.with_name(out.name + ".md").write_text(report.to_markdown())
        out.with_name(out.name + ".json").write_text(report.to_json())
    except OSError as exc:
        print(f"pgfa-export: cannot write the report: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(report.to_markdown())
    print(f"report: {out}.md, {out}.json")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
