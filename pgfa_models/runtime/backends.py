"""Backend implementations behind :class:`pgfa_models.runtime.Runtime`.

Each ``build_<backend>(ctx)`` returns ``(forward, artifact_path_or_None, info)`` where
``forward(x: np.ndarray float32 (N, C, T, 25, M)) -> np.ndarray (N, D)`` gives L2-normalised
embeddings. Heavy or optional libraries are imported inside the functions.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import CheckpointMeta, load_model
from ..fileio import atomic_output
from . import artifacts as art
from .optimize import inference_model

log = logging.getLogger("pgfa_models.runtime")

EXPORT_MAX_BATCH = 4096       # dynamic batch range of the .pt2 / .onnx programs
TRT_MIN_BATCH, TRT_OPT_BATCH, TRT_MAX_BATCH = 1, 4, 8
ONNX_OPSET = 18
VERIFY_BATCH = 3
TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2}

Forward = Callable[[np.ndarray], np.ndarray]


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here (library, device or precision missing).

    ``str(exc)`` is one line saying what is missing and how to get it."""


ArtifactError = art.ArtifactError
UnsafeArtifactDir = art.UnsafeArtifactDir


@dataclass
class Context:
    checkpoint: Path
    checkpoint_sha: str
    meta: CheckpointMeta
    device: str
    precision: str
    threads: Optional[int]
    cache_dir: Optional[Path] = None
    rebuild: bool = False
    _model: Optional[nn.Module] = field(default=None, repr=False)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        enc = self.meta.encoder
        return (enc.in_channels, enc.num_frames, 25, int(self.meta.num_person))

    def model(self) -> nn.Module:
        """The checkpoint's model on CPU, eval mode, fp32 (loaded once)."""
        if self._model is None:
            self._model, _ = load_model(self.checkpoint, device="cpu")
        return self._model

    def example(self, batch: int, seed: int = 0) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return torch.randn((batch, *self.input_shape), generator=gen)

    def reference(self, x: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return F.normalize(self.model()(x), dim=-1).numpy()


class EmbedWrapper(nn.Module):
    """``x -> normalize(model(x))`` with the normalisation in fp32 (exported as one program)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model(x).float(), dim=-1)


def _require_cuda(ctx: Context, backend: str) -> None:
    if ctx.device == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailable(f"{backend}: device='cuda' requested but torch sees no CUDA device "
                                 f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})")
    if ctx.precision == "fp16" and ctx.device != "cuda":
        raise BackendUnavailable(f"{backend}: precision='fp16' needs device='cuda'; use fp32 on CPU")


def _set_torch_threads(threads: Optional[int]) -> None:
    if threads:
        torch.set_num_threads(int(threads))  # process-wide in PyTorch


def _torch_forward(module: Callable, device: str, dtype: torch.dtype) -> Forward:
    dev = torch.device(device)

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            t = torch.from_numpy(x).to(dev, dtype=dtype, non_blocking=True)
            out = module(t)
            return out.float().cpu().numpy()
    return forward


def _verify(ctx: Context, forward: Forward, what: str, batch: int = VERIFY_BATCH) -> float:
    x = ctx.example(batch, seed=1234)
    ref = ctx.reference(x)
    got = forward(x.numpy())
    diff = float(np.abs(got.astype(np.float64) - ref).max()) if got.shape == ref.shape else float("inf")
    tol = TOLERANCE[ctx.precision]
    if not diff <= tol:
        raise ArtifactError(f"{what} disagrees with eager PyTorch (max abs diff {diff:.3g} > {tol:g}, "
                            f"shape {got.shape} vs {ref.shape})")
    return diff


def _cached(ctx: Context, artifact: Path, key: dict[str, Any], build: Callable[[Path], None],
            load: Callable[[Path], Forward], what: str) -> tuple[Forward, dict[str, Any]]:
    """Load ``artifact`` if its sidecar pins it to this checkpoint and key, else (re)build it.
    A cached artifact that fails to load or verify is rebuilt once; a fresh one that fails is
    an :class:`ArtifactError`."""
    def try_cached() -> tuple[Optional[tuple[Forward, dict[str, Any]]], str]:
        ok, why = art.check_artifact(artifact, ctx.checkpoint_sha, key)
        if not ok or ctx.rebuild:
            return None, why or "rebuild requested"
        try:
            forward = load(artifact)
            diff = _verify(ctx, forward, what)
        except UnsafeArtifactDir:
            raise  # never "repair" by rebuilding into a place someone else controls
        except Exception as exc:  # noqa: BLE001 - any failure means: rebuild it
            first = str(exc).splitlines()[0] if str(exc) else ""
            return None, f"cached artifact failed to load/verify ({type(exc).__name__}: {first})"
        return (forward, {"artifact": str(artifact), "cached": True, "verify_max_abs_diff": diff}), ""

    hit, why = try_cached()  # the common case takes no lock and writes nothing
    if hit is not None:
        return hit
    with art.build_lock(artifact):
        if not ctx.rebuild:  # another process may have built it while we waited
            hit, why = try_cached()
            if hit is not None:
                return hit
        if not ctx.rebuild:
            log.info("%s: building %s (%s)", what, artifact.name, why)
        try:
            # temporary sibling with the artifact's suffix (some writers insist on it); renamed
            # onto the artifact only after it loaded and verified, removed on any failure
            with atomic_output(artifact, suffix=artifact.suffix) as tmp:
                build(tmp)
                forward = load(tmp)
                diff = _verify(ctx, forward, what)
        except BackendUnavailable:
            raise
        except ArtifactError:
            raise
        except Exception as exc:  # noqa: BLE001
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise ArtifactError(f"{what}: could not build {artifact.name}: {type(exc).__name__}: {first}") from exc
        art.write_sidecar(artifact, ctx.checkpoint_sha, key, verify_max_abs_diff=diff,
                          input_shape=list(ctx.input_shape))
        # the loaded program holds everything in memory; it no longer needs the file
        return forward, {"artifact": str(artifact), "cached": False, "verify_max_abs_diff": diff}


def _artifact(ctx: Context, suffix: str, pickled: bool = False) -> Path:
    """The artifact's path; ``pickled`` ones (.pt2/.ep) only in a private directory
    (:func:`artifacts.artifact_dir` raises :class:`UnsafeArtifactDir` otherwise)."""
    folder = art.artifact_dir(ctx.checkpoint, ctx.checkpoint_sha, ctx.cache_dir, pickled=pickled)
    return folder / f"{ctx.checkpoint.name}{suffix}"


def _inference_module(ctx: Context) -> nn.Module:
    """A private copy (callers move it to other devices/dtypes) rewritten for inference."""
    module = inference_model(ctx.model(), check_shape=(2, *ctx.input_shape))
    return copy.deepcopy(module) if module is ctx.model() else module


@contextlib.contextmanager
def _quiet() -> Any:
    """Silence exporter chatter (progress lines on stdout, deprecation warnings)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export",
                                                   "onnxscript", "onnx_ir", "torch.fx.experimental.symbolic_shapes")]
        levels = [lg.level for lg in loggers]
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, lv in zip(loggers, levels):
                lg.setLevel(lv)


# --------------------------------------------------------------------------------- eager
def build_eager(ctx: Context) -> tuple[Forward, Optional[Path], dict[str, Any]]:
    _require_cuda(ctx, "eager")
    _set_torch_threads(ctx.threads)
    dtype = torch.float16 if ctx.precision == "fp16" else torch.float32
    model = EmbedWrapper(ctx.model()).eval()
    if ctx.device != "cpu":
        model = EmbedWrapper(load_model(ctx.checkpoint, device=ctx.device)[0]).eval()
    model = model.to(dtype=dtype)
    return _torch_forward(model, ctx.device, dtype), None, {}


# ------------------------------------------------------------------------------ compiled
def _export_program(ctx: Context, module: nn.Module, max_batch: int, example_batch: int = 2):
    dtype = torch.float16 if ctx.precision == "fp16" else torch.float32
    x = ctx.example(example_batch).to(ctx.device, dtype=dtype)
    batch = torch.export.Dim("batch", min=1, max=max_batch)
    with _quiet():
        return torch.export.export(EmbedWrapper(module).eval(), (x,), dynamic_shapes={"x": {0: batch}})


def build_compiled(ctx: Context) -> tuple[Forward, Optional[Path], dict[str, Any]]:
    """torch.export program (``.pt2``), loaded with torch.export.load after hash checks and
    only from a private directory (it contains pickles; see :mod:`.artifacts`)."""
    _require_cuda(ctx, "compiled")
    _set_torch_threads(ctx.threads)
    dtype = torch.float16 if ctx.precision == "fp16" else torch.float32
    suffix = ".pt2" if (ctx.device, ctx.precision) == ("cpu", "fp32") else f".{ctx.device}-{ctx.precision}.pt2"
    artifact = _artifact(ctx, suffix, pickled=True)
    key = {"backend": "compiled", "torch": torch.__version__, "device": ctx.device,
           "precision": ctx.precision}
    if ctx.device == "cuda":
        key["gpu"] = torch.cuda.get_device_name()

    def build(path: Path) -> None:
        module = _inference_module(ctx).to(ctx.device, dtype=dtype)
        ep = _export_program(ctx, module, EXPORT_MAX_BATCH)
        with _quiet():
            torch.export.save(ep, str(path))

    def load(path: Path) -> Forward:
        art.require_private_file(path)  # torch.export.load unpickles: only our own private files
        with _quiet():
            program = torch.export.load(str(path)).module()
        return _torch_forward(program, ctx.device, dtype)

    forward, info = _cached(ctx, artifact, key, build, load, "compiled")
    info["max_batch"] = EXPORT_MAX_BATCH
    return forward, artifact, info


# --------------------------------------------------------------------------- onnxruntime
def _import_ort():
    try:
        import onnxruntime as ort
    except ImportError:
        raise BackendUnavailable("onnxruntime backend needs ONNX Runtime: pip install onnxruntime==1.31.1 "
                                 "(onnxruntime-gpu for CUDA)") from None
    return ort


def build_onnxruntime(ctx: Context) -> tuple[Forward, Optional[Path], dict[str, Any]]:
    ort = _import_ort()
    if ctx.precision != "fp32":
        raise BackendUnavailable("onnxruntime backend runs fp32 only; use tensorrt or eager for fp16")
    providers = ["CPUExecutionProvider"]
    if ctx.device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise BackendUnavailable("onnxruntime on CUDA needs the CUDA provider: pip install "
                                     "onnxruntime-gpu (same version as onnxruntime, replacing it)")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    artifact = _artifact(ctx, ".onnx")
    key = {"backend": "onnxruntime", "torch": torch.__version__, "opset": ONNX_OPSET}

    def build(path: Path) -> None:
        try:
            import onnx  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError:
            raise BackendUnavailable("exporting ONNX needs onnx and onnxscript: pip install onnx==1.22.0 "
                                     "onnxscript==0.7.2") from None
        module = _inference_module(ctx)
        x = ctx.example(2)
        batch = torch.export.Dim("batch", min=1, max=EXPORT_MAX_BATCH)
        with _quiet():
            torch.onnx.export(EmbedWrapper(module).eval(), (x,), str(path), input_names=["clips"],
                              output_names=["embeddings"], dynamic_shapes={"x": {0: batch}},
                              opset_version=ONNX_OPSET, dynamo=True, external_data=False,
                              verbose=False)

    def load(path: Path) -> Forward:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.intra_op_num_threads = int(ctx.threads or 0)  # 0: ONNX Runtime's default (physical cores)
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        session = ort.InferenceSession(str(path), so, providers=providers)
        name = session.get_inputs()[0].name

        def forward(x: np.ndarray) -> np.ndarray:
            return session.run(None, {name: x})[0]
        forward.session = session  # type: ignore[attr-defined]
        return forward

    forward, info = _cached(ctx, artifact, key, build, load, "onnxruntime")
    info["providers"] = getattr(forward, "session").get_providers()
    info["max_batch"] = EXPORT_MAX_BATCH
    return forward, artifact, info


# ------------------------------------------------------------------------------ tensorrt
TRT_INSTALL_HINT = ("pip install torch-tensorrt (the build matching torch "
                    f"{torch.__version__.split('+')[0]}, from https://download.pytorch.org/whl/cu128 or "
                    "NVIDIA's Jetson wheels); see docs/TENSORRT.md")


def _import_trt():
    try:
        import torch_tensorrt  # noqa: F401
    except ImportError:
        raise BackendUnavailable(f"tensorrt backend needs torch-tensorrt, which is not installed: "
                                 f"{TRT_INSTALL_HINT}") from None
    except Exception as exc:  # noqa: BLE001 - broken install (e.g. libnvinfer missing)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BackendUnavailable(f"tensorrt backend: torch-tensorrt failed to import ({first}); "
                                 f"{TRT_INSTALL_HINT}") from None
    return torch_tensorrt


def _first_that_accepts(fn: Callable, args: tuple, *variants: dict) -> Any:
    """Call ``fn(*args, **kw)`` with the first keyword set the installed version accepts."""
    last: Exception | None = None
    for kw in variants:
        try:
            return fn(*args, **kw)
        except TypeError as exc:  # unexpected keyword: try the older spelling
            if "argument" not in str(exc):
                raise
            last = exc
    assert last is not None
    raise last


def tensorrt_key(ctx: Context, torch_tensorrt: Any) -> dict[str, Any]:
    try:
        import tensorrt
        trt_version = tensorrt.__version__
    except Exception:  # noqa: BLE001
        trt_version = "unknown"
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return {"backend": "tensorrt", "gpu": props.name, "capability": f"{props.major}.{props.minor}",
            "torch": torch.__version__, "torch_tensorrt": getattr(torch_tensorrt, "__version__", "unknown"),
            "tensorrt": trt_version, "precision": ctx.precision,
            "batch": [TRT_MIN_BATCH, TRT_OPT_BATCH, TRT_MAX_BATCH]}


def build_tensorrt(ctx: Context) -> tuple[Forward, Optional[Path], dict[str, Any]]:
    """TensorRT engine through torch-tensorrt (dynamo IR), dynamic batch 1-8, cached as an
    ExportedProgram keyed by GPU + torch / torch-tensorrt / TensorRT versions."""
    torch_tensorrt = _import_trt()
    if ctx.device != "cuda":
        raise BackendUnavailable("tensorrt backend needs device='cuda' (an NVIDIA GPU)")
    _require_cuda(ctx, "tensorrt")
    dtype = torch.float16 if ctx.precision == "fp16" else torch.float32
    key = tensorrt_key(ctx, torch_tensorrt)
    stem = f".trt-{ctx.precision}-"
    artifact = _artifact(ctx, f"{stem}{art.key_digest(key)[:12]}.ep", pickled=True)

    def build(path: Path) -> None:
        module = _inference_module(ctx).to("cuda", dtype=dtype).eval()
        ep = _export_program(ctx, module, TRT_MAX_BATCH, example_batch=TRT_OPT_BATCH)
        shape = ctx.input_shape
        inputs = [torch_tensorrt.Input(min_shape=(TRT_MIN_BATCH, *shape), opt_shape=(TRT_OPT_BATCH, *shape),
                                       max_shape=(TRT_MAX_BATCH, *shape), dtype=dtype)]
        example = ctx.example(TRT_OPT_BATCH).to("cuda", dtype=dtype)
        dyn = {"x": {0: torch.export.Dim("batch", min=TRT_MIN_BATCH, max=TRT_MAX_BATCH)}}
        with _quiet():
            # The model and inputs already carry the precision (explicit typing, the default of
            # recent torch-tensorrt); enabled_precisions is for older releases that need it.
            trt_gm = _first_that_accepts(
                torch_tensorrt.dynamo.compile, (ep,),
                dict(inputs=inputs, enabled_precisions={dtype}, min_block_size=1),
                dict(inputs=inputs, min_block_size=1))
            # keyword names changed across releases (inputs -> arg_inputs, dynamic_shapes added)
            _first_that_accepts(
                torch_tensorrt.save, (trt_gm, str(path)),
                dict(output_format="exported_program", arg_inputs=[example], dynamic_shapes=dyn),
                dict(output_format="exported_program", arg_inputs=[example]),
                dict(output_format="exported_program", inputs=[example]))

    def load(path: Path) -> Forward:
        art.require_private_file(path)  # an ExportedProgram: unpickled on load
        with _quiet():
            program = torch_tensorrt.load(str(path)).module()
        return _torch_forward(program, "cuda", dtype)

    def load_checked(path: Path) -> Forward:
        forward = load(path)
        for b in (TRT_MIN_BATCH, TRT_MAX_BATCH):  # the dynamic batch range really holds
            _verify(ctx, forward, f"tensorrt (batch {b})", batch=b)
        return forward

    forward, info = _cached(ctx, artifact, key, build, load_checked, "tensorrt")
    # engines built for another GPU / library version are stale: remove them
    for old in artifact.parent.glob(f"{ctx.checkpoint.name}{stem}*.ep"):
        if old != artifact:
            art.remove_quietly(old, art.sidecar_path(old))
    info["max_batch"] = TRT_MAX_BATCH
    return forward, artifact, info


BUILDERS = {
    "eager": build_eager,
    "compiled": build_compiled,
    "onnxruntime": build_onnxruntime,
    "tensorrt": build_tensorrt,
}
