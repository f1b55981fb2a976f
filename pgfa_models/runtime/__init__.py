"""Fast inference: one interface over eager PyTorch, torch.export, ONNX Runtime and TensorRT.

    from pgfa_models.runtime import load_runtime
    rt = load_runtime("model.safetensors", backend="auto")      # or eager/compiled/onnxruntime/tensorrt
    emb = rt.embed(clips)     # (N, 3, 50, 25, M) float32 -> (N, D) L2-normalised float32
    rt.name, rt.meta          # "onnxruntime/cpu/fp32", CheckpointMeta

Backends (see docs/TENSORRT.md and benchmarks/latency/RESULTS.md):

* ``eager``: the checkpoint's PyTorch model; CPU or CUDA; fp16 on CUDA. The reference.
* ``compiled``: a ``torch.export`` program saved as ``<ckpt>.pt2`` (chosen over TorchScript,
  which is deprecated in torch 2.13 and no faster here once the graph rewrite is applied).
* ``onnxruntime``: ``<ckpt>.onnx`` (dynamic batch, opset 18) run by ONNX Runtime with all
  graph optimisations; CPU provider, CUDA provider when ``device='cuda'`` and present.
* ``tensorrt``: torch-tensorrt engine (fp32/fp16, batch 1-8; larger batches are chunked),
  cached as ``<ckpt>.trt-<precision>-<key>.ep`` keyed by GPU and library versions.
* ``auto``: on CUDA tensorrt -> onnxruntime -> compiled -> eager; on CPU onnxruntime ->
  compiled -> eager (the measured order, benchmarks/latency/RESULTS.md). Unavailable or
  failing backends are skipped with a log line.

Compiled/ONNX/TensorRT programs are built from an inference-only rewrite of the ST-GCN graph
convolution (:mod:`.optimize`), checked against eager at build time and at every load.
Artifacts are cached next to the checkpoint, pinned by the checkpoint's sha256 in a JSON
sidecar and rebuilt when it changes. ``.pt2`` / ``.ep`` files contain pickles, so they are
built and loaded only in a private (0700, this user's) directory -- the user cache when the
checkpoint's folder is not private; a non-private ``cache_dir`` is refused, and ``auto`` then
falls back to the next backend with a warning (:mod:`.artifacts`).
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ..alignment import l2_normalise
from ..checkpoint import CheckpointMeta, load_checkpoint
from ..fileio import sha256_file
from .backends import BUILDERS, ArtifactError, BackendUnavailable, Context

log = logging.getLogger("pgfa_models.runtime")

BACKENDS = ("eager", "compiled", "onnxruntime", "tensorrt")
AUTO_ORDER = {"cuda": ("tensorrt", "onnxruntime", "compiled", "eager"),
              "cpu": ("onnxruntime", "compiled", "eager")}
DEVICES = ("cpu", "cuda")
PRECISIONS = ("fp32", "fp16")


class Runtime:
    """A loaded backend. ``embed(clips) -> (N, D)`` L2-normalised float32 embeddings."""

    def __init__(self, backend: str, ctx: Context, forward, artifact: Optional[Path],
                 info: dict[str, Any], max_batch: Optional[int] = None):
        self.backend = backend
        self.device = ctx.device
        self.precision = ctx.precision
        self.threads = ctx.threads
        self.checkpoint = ctx.checkpoint
        self.checkpoint_sha256 = ctx.checkpoint_sha
        self.meta: CheckpointMeta = ctx.meta
        self.artifact = artifact
        self.info = dict(info)
        self.input_shape = ctx.input_shape
        self.dim = int(ctx.meta.text_dim)
        self.max_batch = max_batch
        self._forward = forward

    @property
    def name(self) -> str:
        return f"{self.backend}/{self.device}/{self.precision}"

    def __repr__(self) -> str:
        return f"Runtime({self.name}, checkpoint={self.checkpoint.name}, threads={self.threads})"

    def _check(self, clips: Any) -> np.ndarray:
        x = np.asarray(clips)
        if x.ndim == 4:
            x = x[None]
        if x.ndim != 5 or tuple(x.shape[1:]) != tuple(self.input_shape):
            raise ValueError(f"clips must have shape (N, {', '.join(map(str, self.input_shape))}), "
                             f"got {tuple(np.shape(clips))}")
        return np.ascontiguousarray(x, dtype=np.float32)

    def embed(self, clips: Any) -> np.ndarray:
        """``(N, C, T, 25, M)`` (or one ``(C, T, 25, M)`` clip) -> ``(N, D)`` float32, unit rows."""
        x = self._check(clips)
        n = x.shape[0]
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        step = self.max_batch or n
        parts = [self._forward(x[i:i + step]) for i in range(0, n, step)]
        out = np.asarray(parts[0] if len(parts) == 1 else np.concatenate(parts), dtype=np.float32)
        return l2_normalise(out).astype(np.float32)

    __call__ = embed


def _resolve(value: str, allowed: tuple[str, ...], what: str) -> str:
    v = str(value).lower()
    if v not in allowed:
        raise ValueError(f"{what} must be one of {allowed}, got {value!r}")
    return v


def load_runtime(checkpoint: Union[str, os.PathLike], backend: str = "auto", device: str = "cpu",
                 precision: str = "fp32", threads: Optional[int] = None,
                 cache_dir: Optional[Union[str, os.PathLike]] = None, rebuild: bool = False) -> Runtime:
    """Load ``checkpoint`` with ``backend`` (``auto``, ``eager``, ``compiled``, ``onnxruntime``,
    ``tensorrt``) on ``device`` (``cpu``/``cuda``) at ``precision`` (``fp32``/``fp16``).

    ``threads``: intra-op threads (ONNX Runtime session; for the PyTorch backends
    ``torch.set_num_threads``, which is process-wide). ``cache_dir``: where artifacts go
    (default: next to the checkpoint, or a private user cache if that is read-only or, for the
    pickled ``.pt2``/``.ep``, not private; an explicit one must be private for those). ``rebuild``:
    ignore cached artifacts. Raises :class:`BackendUnavailable` (one line) when an explicit
    backend cannot run here, :class:`pgfa_models.checkpoint.CheckpointError` for a bad checkpoint.
    """
    checkpoint = Path(checkpoint)
    backend = _resolve(backend, ("auto",) + BACKENDS, "backend")
    device = _resolve(device, DEVICES, "device")
    precision = _resolve(precision, PRECISIONS, "precision")
    if threads is not None and (int(threads) < 1):
        raise ValueError(f"threads must be >= 1 or None, got {threads!r}")
    _, meta = load_checkpoint(checkpoint)  # validates the file (no pickle) before anything else
    ctx = Context(checkpoint=checkpoint, checkpoint_sha=sha256_file(checkpoint), meta=meta,
                  device=device, precision=precision, threads=threads,
                  cache_dir=Path(cache_dir) if cache_dir is not None else None, rebuild=rebuild)
    if backend != "auto":
        return _build(backend, ctx)

    if device == "cuda":
        import torch
        if not torch.cuda.is_available():
            log.warning("runtime auto: no CUDA device, using the CPU")
            ctx.device = device = "cpu"
            if precision == "fp16":
                ctx.precision = "fp32"
    errors = []
    for name in AUTO_ORDER[device]:
        try:
            rt = _build(name, ctx)
        except BackendUnavailable as exc:
            log.info("runtime auto: %s unavailable (%s)", name, exc)
            errors.append(f"{name}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - fall back, but say so loudly
            first = str(exc).splitlines()[0] if str(exc) else ""
            log.warning("runtime auto: %s failed (%s: %s); trying the next backend",
                        name, type(exc).__name__, first)
            errors.append(f"{name}: {type(exc).__name__}: {first}")
            continue
        rt.info["auto_skipped"] = errors
        log.info("runtime auto: using %s", rt.name)
        return rt
    raise BackendUnavailable("no backend could run: " + "; ".join(errors))


def _build(backend: str, ctx: Context) -> Runtime:
    t0 = time.perf_counter()
    forward, artifact, info = BUILDERS[backend](ctx)
    info["load_s"] = round(time.perf_counter() - t0, 3)
    max_batch = info.get("max_batch")
    return Runtime(backend, ctx, forward, artifact, info, max_batch=max_batch)


def available_backends(device: str = "cpu") -> list[str]:
    """Backends whose libraries import here (cheap; builds nothing)."""
    out = ["eager", "compiled"]
    try:
        import onnxruntime as ort
        if device == "cpu" or "CUDAExecutionProvider" in ort.get_available_providers():
            out.append("onnxruntime")
    except ImportError:
        pass
    if device == "cuda":
        try:
            import torch_tensorrt  # noqa: F401
            out.append("tensorrt")
        except Exception:  # noqa: BLE001
            pass
    return out


__all__ = ["load_runtime", "Runtime", "BackendUnavailable", "ArtifactError", "BACKENDS",
           "AUTO_ORDER", "available_backends"]
