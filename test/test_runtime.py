"""Runtime backends: parity with eager on real UTD-MHAD clips, fallbacks, artifact cache."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pgfa_models.checkpoint import CheckpointError, CheckpointMeta, save_checkpoint
from pgfa_models.formats.utd_mhad import read_utd_mhad, scan_utd_mhad
from pgfa_models.model import EncoderConfig, SkeletonTextModel
from pgfa_models.preprocess import preprocess_clip
from pgfa_models import runtime
from pgfa_models.runtime import BackendUnavailable, load_runtime
from pgfa_models.runtime import backends as rt_backends
from pgfa_models.runtime.artifacts import sidecar_path

TEXT_DIM = 384
NUM_CLASSES = 27
CPU_BACKENDS = ("compiled", "onnxruntime")


def make_checkpoint(path: Path, seed: int = 0) -> Path:
    """A freshly initialised model with non-trivial BatchNorm statistics and edge importance
    (so the inference rewrite's folding is exercised), saved with save_checkpoint."""
    torch.manual_seed(seed)
    model = SkeletonTextModel(EncoderConfig(), TEXT_DIM)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                mod.running_mean.copy_(torch.rand(mod.running_mean.shape, generator=gen) - 0.5)
                mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=gen) + 0.5)
                mod.weight.copy_(torch.rand(mod.weight.shape, generator=gen) + 0.5)
                mod.bias.copy_(torch.rand(mod.bias.shape, generator=gen) * 0.4 - 0.2)
            if getattr(mod, "edge_importance", None) is not None and isinstance(mod.edge_importance, torch.nn.Parameter):
                mod.edge_importance.copy_(torch.rand(mod.edge_importance.shape, generator=gen) + 0.5)
    meta = CheckpointMeta(text_model="all-MiniLM-L6-v2", text_dim=TEXT_DIM,
                          labels=[f"action {i}" for i in range(NUM_CLASSES)])
    return save_checkpoint(path, model, meta)


def shared_checkpoint(tmp_path_factory) -> Path:
    """One checkpoint per test session (shared by test_runtime and test_export so the
    artifacts are built once)."""
    folder = tmp_path_factory.getbasetemp() / "pgfa_runtime_shared"
    folder.mkdir(mode=0o700, exist_ok=True)  # private: pickled .pt2 artifacts may live beside it
    path = folder / "model.safetensors"
    if not path.exists():
        make_checkpoint(path)
    return path


def load_clips(utd_dir: Path, count: int = 24) -> tuple[np.ndarray, np.ndarray]:
    records = scan_utd_mhad(utd_dir)
    idx = np.linspace(0, len(records) - 1, count).round().astype(int)
    clips, actions = [], []
    for i in idx:
        res = preprocess_clip([read_utd_mhad(records[i].path)], "kinect_v1_20", num_person=1)
        assert res.clip is not None, res.reason
        clips.append(res.clip)
        actions.append(records[i].action)
    return np.stack(clips).astype(np.float32), np.asarray(actions)


def label_matrix(seed: int = 0) -> np.ndarray:
    feats = np.random.default_rng(seed).standard_normal((NUM_CLASSES, TEXT_DIM)).astype(np.float32)
    return feats / np.linalg.norm(feats, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return shared_checkpoint(tmp_path_factory)


@pytest.fixture(scope="module")
def clips(utd_dir) -> np.ndarray:
    return load_clips(utd_dir)[0]


@pytest.fixture(scope="module")
def eager_emb(ckpt, clips) -> np.ndarray:
    rt = load_runtime(ckpt, "eager")
    assert rt.name == "eager/cpu/fp32"
    return rt.embed(clips)


def test_eager_matches_model_embed(ckpt, clips, eager_emb):
    from pgfa_models.checkpoint import load_model
    model, meta = load_model(ckpt)
    with torch.inference_mode():
        ref = model.embed(torch.from_numpy(clips)).numpy()
    assert eager_emb.dtype == np.float32 and eager_emb.shape == (len(clips), TEXT_DIM)
    np.testing.assert_allclose(np.linalg.norm(eager_emb, axis=1), 1.0, atol=1e-5)
    assert np.abs(eager_emb - ref).max() <= 1e-6


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_cpu_backend_parity_on_real_clips(backend, ckpt, clips, eager_emb):
    rt = load_runtime(ckpt, backend, threads=1)
    assert rt.name == f"{backend}/cpu/fp32"
    assert rt.meta.text_dim == TEXT_DIM and rt.artifact is not None and rt.artifact.is_file()
    emb = rt.embed(clips)
    assert emb.dtype == np.float32 and emb.shape == eager_emb.shape
    assert np.abs(emb - eager_emb).max() <= 1e-4
    text = label_matrix()
    np.testing.assert_array_equal(np.argmax(emb @ text.T, 1), np.argmax(eager_emb @ text.T, 1))
    # batch sizes other than the export example, a single clip, and an empty batch
    np.testing.assert_allclose(rt.embed(clips[:1]), eager_emb[:1], atol=1e-4)
    np.testing.assert_allclose(rt.embed(clips[0]), eager_emb[:1], atol=1e-4)
    np.testing.assert_allclose(rt.embed(clips[:7]), eager_emb[:7], atol=1e-4)
    assert rt.embed(clips[:0]).shape == (0, TEXT_DIM)
    with pytest.raises(ValueError, match="clips must have shape"):
        rt.embed(np.zeros((2, 3, 40, 25, 1), np.float32))


def test_artifacts_cached_and_pinned_to_checkpoint(ckpt, clips):
    for backend, suffix in (("compiled", ".pt2"), ("onnxruntime", ".onnx")):
        rt = load_runtime(ckpt, backend)
        assert rt.info["cached"] is True, backend  # built by the parity test
        side = json.loads(sidecar_path(ckpt.with_name(ckpt.name + suffix)).read_text())
        assert side["checkpoint_sha256"] == rt.checkpoint_sha256
        assert len(side["artifact_sha256"]) == 64


def test_tensorrt_without_torch_tensorrt_is_one_clear_line(ckpt):
    try:
        import torch_tensorrt  # noqa: F401
        pytest.skip("torch-tensorrt is installed here")
    except ImportError:
        pass
    for device in ("cpu", "cuda"):
        with pytest.raises(BackendUnavailable) as info:
            load_runtime(ckpt, "tensorrt", device=device)
        msg = str(info.value)
        assert "\n" not in msg and "torch-tensorrt" in msg and "pip install" in msg


def test_auto_falls_back(ckpt, clips, eager_emb, monkeypatch, caplog):
    # tensorrt first in the order (as on CUDA): it is skipped, the next one is used
    monkeypatch.setitem(runtime.AUTO_ORDER, "cpu", ("tensorrt", "onnxruntime", "compiled", "eager"))
    with caplog.at_level("INFO", logger="pgfa_models.runtime"):
        rt = load_runtime(ckpt, "auto")
    assert rt.backend == "onnxruntime"
    assert any("tensorrt" in s for s in rt.info["auto_skipped"])
    assert "tensorrt unavailable" in caplog.text

    def broken(ctx):
        raise RuntimeError("simulated failure")
    monkeypatch.setitem(rt_backends.BUILDERS, "onnxruntime", broken)  # the dict runtime uses
    rt = load_runtime(ckpt, "auto")
    assert rt.backend == "compiled"
    assert np.abs(rt.embed(clips) - eager_emb).max() <= 1e-4
    # CUDA asked for where none exists: auto says so and runs on the CPU
    if not torch.cuda.is_available():
        assert load_runtime(ckpt, "auto", device="cuda").device == "cpu"
        with pytest.raises(BackendUnavailable, match="no CUDA device"):
            load_runtime(ckpt, "eager", device="cuda")


def test_bad_arguments_and_checkpoint(ckpt, tmp_path):
    with pytest.raises(ValueError, match="backend must be one of"):
        load_runtime(ckpt, "tflite")
    with pytest.raises(BackendUnavailable, match="fp16' needs device='cuda'"):
        load_runtime(ckpt, "eager", precision="fp16")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x80\x04not a checkpoint")
    with pytest.raises(CheckpointError):
        load_runtime(bad, "onnxruntime")


def test_compiled_rebuilt_when_checkpoint_changes_or_artifact_corrupt(ckpt, clips, tmp_path):
    path = tmp_path / "m.safetensors"
    shutil.copy(ckpt, path)
    pt2 = ckpt.with_name(ckpt.name + ".pt2")
    shutil.copy(pt2, path.with_name(path.name + ".pt2"))
    shutil.copy(sidecar_path(pt2), sidecar_path(path.with_name(path.name + ".pt2")))
    rt = load_runtime(path, "compiled")
    assert rt.info["cached"] is True  # copied artifact with its sidecar is still valid
    first = rt.embed(clips[:4])

    make_checkpoint(path, seed=1)  # new weights, same path
    rt2 = load_runtime(path, "compiled")
    assert rt2.info["cached"] is False and rt2.checkpoint_sha256 != rt.checkpoint_sha256
    side = json.loads(sidecar_path(rt2.artifact).read_text())
    assert side["checkpoint_sha256"] == rt2.checkpoint_sha256
    new = rt2.embed(clips[:4])
    assert np.abs(new - first).max() > 1e-3  # really the new weights
    np.testing.assert_allclose(new, load_runtime(path, "eager").embed(clips[:4]), atol=1e-4)

    # corrupt artifact (sidecar hash no longer matches) -> rebuilt, same answers
    data = bytearray(rt2.artifact.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\0" * 64
    rt2.artifact.write_bytes(bytes(data))
    rt3 = load_runtime(path, "compiled")
    assert rt3.info["cached"] is False
    np.testing.assert_allclose(rt3.embed(clips[:4]), new, atol=1e-4)

    # truncated artifact whose sidecar was rewritten to match: loading fails -> rebuilt
    from pgfa_models.runtime.artifacts import read_sidecar, write_sidecar
    side = read_sidecar(rt3.artifact)
    rt3.artifact.write_bytes(rt3.artifact.read_bytes()[:2000])
    write_sidecar(rt3.artifact, side["checkpoint_sha256"], side["key"])
    rt4 = load_runtime(path, "compiled")
    assert rt4.info["cached"] is False and rt4.artifact.stat().st_size > 100_000
    np.testing.assert_allclose(rt4.embed(clips[:4]), new, atol=1e-4)


def test_corrupt_onnx_detected_by_sidecar(ckpt, tmp_path):
    """A damaged .onnx is refused before ONNX Runtime sees it (the rebuild path itself is
    exercised with the cheaper compiled backend above)."""
    from pgfa_models.runtime.artifacts import check_artifact, read_sidecar, sha256_file
    src = ckpt.with_name(ckpt.name + ".onnx")
    side = read_sidecar(src)
    assert check_artifact(src, sha256_file(ckpt), side["key"]) == (True, "")
    copy = tmp_path / src.name
    copy.write_bytes(src.read_bytes()[:1000])
    shutil.copy(sidecar_path(src), sidecar_path(copy))
    ok, why = check_artifact(copy, sha256_file(ckpt), side["key"])
    assert not ok and "corrupt" in why
    ok, why = check_artifact(copy, "0" * 64, side["key"])
    assert not ok and "checkpoint changed" in why


# ------------------------------------------------------------- pickled artifacts: private dirs only
def _plant(folder: Path, ckpt: Path) -> Path:
    """A copy of the real .pt2 with a sidecar that matches it exactly (what an attacker who can
    write both files would arrange)."""
    from pgfa_models.runtime.artifacts import read_sidecar, write_sidecar
    src = ckpt.with_name(ckpt.name + ".pt2")
    if not src.exists():
        load_runtime(ckpt, "compiled")
    dst = folder / src.name
    shutil.copy(src, dst)
    side = read_sidecar(src)
    write_sidecar(dst, side["checkpoint_sha256"], side["key"])
    return dst


@pytest.fixture
def no_unpickling(monkeypatch):
    calls = []
    real = torch.export.load

    def spy(*a, **k):
        calls.append(a)
        return real(*a, **k)
    monkeypatch.setattr(torch.export, "load", spy)
    return calls


def test_planted_pt2_in_world_writable_dir_is_never_unpickled(ckpt, tmp_path, no_unpickling):
    from pgfa_models.runtime.artifacts import UnsafeArtifactDir, check_artifact, sha256_file
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    planted = _plant(shared, ckpt)
    key = {k: v for k, v in json.loads(sidecar_path(planted).read_text())["key"].items()}
    assert check_artifact(planted, sha256_file(ckpt), key) == (True, "")  # the hash check alone passes
    with pytest.raises(UnsafeArtifactDir, match=r"0777.*private") as info:
        load_runtime(ckpt, "compiled", cache_dir=shared)
    assert isinstance(info.value, runtime.ArtifactError) and "\n" not in str(info.value)
    assert no_unpickling == []


def test_pt2_in_foreign_owned_dir_refused(ckpt, tmp_path, monkeypatch, no_unpickling):
    from pgfa_models.runtime import artifacts as art
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    _plant(folder, ckpt)
    import os
    me = os.getuid()
    monkeypatch.setattr(art.os, "getuid", lambda: me + 1)  # as if another user owned the folder
    with pytest.raises(art.UnsafeArtifactDir, match="owned by uid"):
        load_runtime(ckpt, "compiled", cache_dir=folder)
    assert no_unpickling == []


def test_group_writable_pt2_in_private_dir_refused_at_load(ckpt, tmp_path, no_unpickling):
    from pgfa_models.runtime.artifacts import UnsafeArtifactDir
    folder = tmp_path / "mine"
    folder.mkdir(mode=0o700)
    planted = _plant(folder, ckpt)
    planted.chmod(0o666)
    with pytest.raises(UnsafeArtifactDir, match="writable by group/other"):
        load_runtime(ckpt, "compiled", cache_dir=folder)
    assert no_unpickling == []
    planted.chmod(0o600)  # the same file, private: loaded (through torch.export.load) and used
    rt = load_runtime(ckpt, "compiled", cache_dir=folder)
    assert rt.info["cached"] is True and len(no_unpickling) == 1


def test_auto_falls_back_to_eager_with_a_warning(ckpt, clips, eager_emb, tmp_path, monkeypatch, caplog,
                                                 no_unpickling):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    _plant(shared, ckpt)
    monkeypatch.setitem(runtime.AUTO_ORDER, "cpu", ("compiled", "eager"))
    with caplog.at_level("WARNING", logger="pgfa_models.runtime"):
        rt = load_runtime(ckpt, "auto", cache_dir=shared)
    assert rt.backend == "eager" and no_unpickling == []
    assert "compiled failed" in caplog.text and "refusing to load pickled artifacts" in caplog.text
    np.testing.assert_allclose(rt.embed(clips[:2]), eager_emb[:2], atol=1e-5)


def test_pickled_artifacts_default_to_a_private_user_cache(tmp_path, monkeypatch):
    from pgfa_models.runtime import artifacts as art
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    models = tmp_path / "models"
    models.mkdir(mode=0o755)
    models.chmod(0o755)
    ckpt = models / "m.safetensors"
    sha = "ab" * 32
    assert art.artifact_dir(ckpt, sha) == models  # .onnx (protobuf) may stay beside the checkpoint
    folder = art.artifact_dir(ckpt, sha, pickled=True)
    assert folder == tmp_path / "xdg" / "pgfa_ros" / "artifacts" / sha[:16]
    assert (folder.stat().st_mode & 0o777) == 0o700 and art.private_dir_problem(folder) is None
    new = art.artifact_dir(ckpt, sha, cache_dir=tmp_path / "fresh" / "cache", pickled=True)
    assert (new.stat().st_mode & 0o777) == 0o700  # created private
    onnx_first = art.artifact_dir(ckpt, sha, cache_dir=tmp_path / "shared_cache")  # e.g. auto: onnxruntime first
    assert art.artifact_dir(ckpt, sha, cache_dir=onnx_first, pickled=True) == onnx_first
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    assert art.artifact_dir(private / "m.safetensors", sha, pickled=True) == private
    link = tmp_path / "link"
    link.symlink_to(private)
    assert "symlink" in art.private_dir_problem(link)


def test_seed_ensemble_checkpoint_runs_on_every_cpu_backend(clips, tmp_path):
    """A three-member ensemble: eager equals the members' mean normalised feature; the exported
    backends (and the inference rewrite of each member) agree with it."""
    import copy

    from pgfa_models.checkpoint import load_model
    from pgfa_models.model import SeedEnsemble
    from pgfa_models.runtime.optimize import _rewrite, inference_model

    members = []
    for seed in (1, 2, 3):
        make_checkpoint(tmp_path / f"m{seed}.safetensors", seed=seed)
        members.append(load_model(tmp_path / f"m{seed}.safetensors")[0])
    ens = SeedEnsemble.of(members).eval()
    meta = CheckpointMeta(text_model="all-MiniLM-L6-v2", text_dim=TEXT_DIM,
                          labels=[f"action {i}" for i in range(NUM_CLASSES)], members=3)
    path = save_checkpoint(tmp_path / "ens.safetensors", ens, meta)
    x = torch.from_numpy(clips)
    with torch.inference_mode():
        mean = torch.stack([torch.nn.functional.normalize(m(x), dim=-1) for m in members]).mean(0)
        ref = torch.nn.functional.normalize(mean, dim=-1).numpy()
        assert _rewrite(copy.deepcopy(ens)) > 0  # every member's blocks are fused
        np.testing.assert_allclose(inference_model(ens, tuple(x[:2].shape))(x).numpy(), mean.numpy(), atol=1e-5)
    eager = load_runtime(path, "eager").embed(clips)
    assert np.abs(eager - ref).max() <= 1e-5
    for backend in CPU_BACKENDS:
        assert np.abs(load_runtime(path, backend, threads=1).embed(clips) - ref).max() <= 1e-4, backend
    # a checkpoint whose members count does not fit its weights is refused, not half-loaded
    with pytest.raises(CheckpointError, match="members"):
        save_checkpoint(tmp_path / "bad.safetensors", ens, CheckpointMeta(
            text_model="all-MiniLM-L6-v2", text_dim=TEXT_DIM, labels=["a"], members=2))
