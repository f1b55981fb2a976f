#!/usr/bin/env python
"""Latency of the pgfa_models.runtime backends: p50/p99 per backend at batch 1, 4, 8.

    .venv/bin/python benchmarks/latency/run.py                       # CPU (+ GPU rows if CUDA)
    .venv/bin/python benchmarks/latency/run.py --threads 1,2 --iters 300 --out benchmarks/latency/RESULTS.md

Each timed call is ``Runtime.embed(clips)`` end to end (numpy in, numpy out, GPU synchronised
by the copy back). Backends are measured *interleaved* in rounds (round r times every backend
for iters/rounds calls) so that a busy, shared machine slows them alike; the load average
before and after is recorded. The ratio column is eager's p50 divided by the backend's p50 at
the same device, precision, threads and batch (>1: faster than eager).

Checkpoint: ``--checkpoint`` or the packaged default (``pgfa_ros.recognizer_params.DEFAULT_CHECKPOINT``)
if present, else a freshly initialised model of the default architecture (latency does not
depend on the weights). Clips: real UTD-MHAD clips when ``--clips-from`` exists, else random.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from pgfa_models.sysinfo import cpu_model  # noqa: E402

from pgfa_ros.recognizer_params import DEFAULT_CHECKPOINT  # noqa: E402

DEFAULT_CKPT = Path(DEFAULT_CHECKPOINT)
DEFAULT_CLIPS = REPO.parent / "shared" / "data" / "utd-mhad"


def loadavg() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def _rel(path: Path) -> str:
    path = path.resolve()
    for base, prefix in ((REPO, ""), (REPO.parent, "../")):
        try:
            return prefix + str(path.relative_to(base))
        except ValueError:
            continue
    return str(path)


def fresh_checkpoint(folder: Path) -> Path:
    import torch
    from pgfa_models.checkpoint import CheckpointMeta, save_checkpoint
    from pgfa_models.model import EncoderConfig, SkeletonTextModel
    torch.manual_seed(0)
    path = folder / "fresh_stgcn_minilm.safetensors"
    if not path.exists():
        model = SkeletonTextModel(EncoderConfig(), 384)
        save_checkpoint(path, model, CheckpointMeta(text_model="all-MiniLM-L6-v2", text_dim=384,
                                                    labels=[f"class {i}" for i in range(27)]))
    return path


def make_clips(meta, shape, clips_from: Path | None, n: int) -> tuple[np.ndarray, str]:
    if clips_from is not None and clips_from.is_dir():
        from training.export import load_utd_clips
        clips, _, _ = load_utd_clips(clips_from, meta, max_clips=n)
        return clips, f"{len(clips)} UTD-MHAD clips from {_rel(clips_from)}"
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, *shape)).astype(np.float32), f"{n} random clips"


def configs(devices, backends, precisions_gpu):
    """(device, backend, precision) to measure; eager first (the ratio reference)."""
    out = []
    for device in devices:
        for precision in (["fp32"] if device == "cpu" else precisions_gpu):
            for backend in backends:
                if device == "cpu" and backend == "tensorrt":
                    continue
                out.append((device, backend, precision))
    return out


def measure(runtimes: dict, clips: np.ndarray, batch: int, iters: int, warmup: int, rounds: int,
            threads: int | None) -> dict:
    import torch
    if threads:
        torch.set_num_threads(threads)
    x = clips[np.arange(batch) % len(clips)]
    times = {k: [] for k in runtimes}
    for rt in runtimes.values():
        for _ in range(warmup):
            rt.embed(x)
    per_round = max(1, iters // rounds)
    for _ in range(rounds):
        for k, rt in runtimes.items():
            ts = times[k]
            for _ in range(per_round):
                t0 = time.perf_counter()
                rt.embed(x)
                ts.append(time.perf_counter() - t0)
    return {k: np.asarray(v) * 1e3 for k, v in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, default=None)
    p.add_argument("--backends", default="eager,compiled,onnxruntime,tensorrt")
    p.add_argument("--batches", default="1,4,8")
    p.add_argument("--threads", default=None,
                   help="comma-separated intra-op thread counts for CPU rows (default: 1 and the core count)")
    p.add_argument("--devices", default="auto", help="cpu, cuda, or auto (cpu + cuda if present)")
    p.add_argument("--gpu-precisions", default="fp32,fp16")
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--clips-from", type=Path, default=DEFAULT_CLIPS)
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="artifact folder (default: a temporary folder, removed at the end; artifacts are rebuilt)")
    p.add_argument("--out", type=Path, default=None, help="write the Markdown report here")
    p.add_argument("--json", type=Path, default=None, help="write raw numbers here")
    args = p.parse_args(argv)

    import torch
    from pgfa_models.runtime import BackendUnavailable, load_runtime

    tmp = Path(tempfile.mkdtemp(prefix="pgfa-latency-"))
    ckpt = args.checkpoint or (DEFAULT_CKPT if DEFAULT_CKPT.exists() else fresh_checkpoint(tmp))
    cache_dir = args.cache_dir or tmp  # never litter the checkpoint's folder (e.g. the source tree)
    cuda = torch.cuda.is_available()
    devices = ["cpu", "cuda"] if args.devices == "auto" else args.devices.split(",")
    if "cuda" in devices and not cuda:
        devices.remove("cuda")
    backends = [b for b in args.backends.split(",") if b]
    if "eager" in backends:
        backends.remove("eager")
    backends = ["eager"] + backends
    batches = [int(b) for b in args.batches.split(",")]
    ncores = os.cpu_count() or 1
    cpu_threads = [int(t) for t in args.threads.split(",")] if args.threads else sorted({1, ncores})

    header = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/latency/run.py",
                                                      *(argv if argv is not None else sys.argv[1:])]),
        "cpu": f"{cpu_model()} ({ncores} logical cores visible)",
        "gpu": torch.cuda.get_device_name() if cuda else None,
        "host": platform.node(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": __import__("onnxruntime").__version__,
        "checkpoint": (_rel(ckpt) if ckpt.parent != tmp
                       else "freshly initialised default model (ST-GCN 16ch, psi 256->384)"),
        "loadavg_before": loadavg(),
        "iters": args.iters, "warmup": args.warmup, "rounds": args.rounds,
    }
    rows, notes = [], []
    clips = None
    for device in devices:
        thread_list = cpu_threads if device == "cpu" else [cpu_threads[-1]]
        for precision in (["fp32"] if device == "cpu" else args.gpu_precisions.split(",")):
            for threads in thread_list:
                runtimes = {}
                for backend in backends:
                    if device == "cpu" and backend == "tensorrt":
                        try:
                            load_runtime(ckpt, "tensorrt", device="cpu", cache_dir=cache_dir)
                        except BackendUnavailable as exc:
                            if str(exc) not in notes:
                                notes.append(str(exc))
                        continue
                    try:
                        rt = load_runtime(ckpt, backend, device=device, precision=precision,
                                          threads=threads, cache_dir=cache_dir)
                    except BackendUnavailable as exc:
                        msg = f"{backend}/{device}/{precision}: {exc}"
                        if msg not in notes:
                            notes.append(msg)
                        continue
                    runtimes[rt.name] = rt
                if not runtimes:
                    continue
                if clips is None:
                    first = next(iter(runtimes.values()))
                    clips, header["clips"] = make_clips(first.meta, first.input_shape, args.clips_from, 16)
                for batch in batches:
                    res = measure(runtimes, clips, batch, args.iters, args.warmup, args.rounds, threads)
                    eager_p50 = next((float(np.percentile(v, 50)) for k, v in res.items()
                                      if k.startswith("eager/")), None)
                    for name, ms in res.items():
                        p50 = float(np.percentile(ms, 50))
                        rows.append({"backend": name, "device": device, "precision": precision,
                                     "threads": threads, "batch": batch, "p50_ms": p50,
                                     "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()),
                                     "per_clip_ms": p50 / batch, "n": int(len(ms)),
                                     "ratio_to_eager": (eager_p50 / p50) if eager_p50 else None})
                        print(f"{name:24s} threads={threads} batch={batch}: p50 {p50:7.2f} ms  "
                              f"p99 {rows[-1]['p99_ms']:7.2f} ms  eager/this {rows[-1]['ratio_to_eager'] or 0:5.2f}",
                              flush=True)
    header["loadavg_after"] = loadavg()
    shutil.rmtree(tmp, ignore_errors=True)
    md = render(header, rows, notes)
    if args.out:
        args.out.write_text(md)
    if args.json:
        args.json.write_text(json.dumps({"header": header, "rows": rows, "notes": notes}, indent=2) + "\n")
    print(md)
    return 0


def render(header: dict, rows: list, notes: list) -> str:
    lines = ["# Latency of the runtime backends", "",
             f"- date: {header['date']}",
             f"- command: `{header['command']}`",
             f"- machine: {header['cpu']}" + (f"; GPU: {header['gpu']}" if header.get("gpu") else "; no GPU"),
             f"- load average (1/5/15 min) before: {header['loadavg_before']}, after: {header['loadavg_after']}",
             f"- software: Python {header['python']}, torch {header['torch']}, onnxruntime {header['onnxruntime']}",
             f"- model: {header['checkpoint']}; input {header.get('clips', '')}",
             f"- method: `Runtime.embed` end to end, {header['warmup']} warm-up calls, {header['iters']} timed calls per "
             f"row, interleaved over {header['rounds']} rounds; ratio = eager p50 / backend p50 "
             "(same device, precision, threads, batch)", ""]
    for device in dict.fromkeys(r["device"] for r in rows):
        lines += [f"## {device.upper()}", "",
                  "| backend | threads | batch | p50 ms | p99 ms | per clip ms (p50/batch) | ratio to eager |",
                  "|---|---|---|---|---|---|---|"]
        for r in (r for r in rows if r["device"] == device):
            ratio = f"{r['ratio_to_eager']:.2f}x" if r["ratio_to_eager"] else "-"
            lines.append(f"| {r['backend']} | {r['threads']} | {r['batch']} | {r['p50_ms']:.2f} | "
                         f"{r['p99_ms']:.2f} | {r['per_clip_ms']:.2f} | {ratio} |")
        lines.append("")
    if notes:
        lines += ["## Not measured here", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
