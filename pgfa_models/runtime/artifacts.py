"""Cached backend artifacts next to a checkpoint, with a JSON sidecar that pins them.

``<ckpt>.onnx`` / ``<ckpt>.pt2`` / ``<ckpt>.trt-<prec>-<key>.ep`` each have a sidecar
``<artifact>.json`` holding the sha256 of the checkpoint it was built from, the sha256 of the
artifact itself and the library versions (the *key*). An artifact is used only when all
three match; otherwise it is rebuilt (atomically: temporary file, then rename, under a
file lock so two processes do not build at once).

Safety: ``.pt2`` files (torch.export) are zip archives whose weights and constants are read
with pickle (``torch.load(weights_only=False)`` inside ``torch.export.load``). They are
therefore only loaded when their sha256 equals the one recorded when *this package* built
and verified them; a foreign, swapped or damaged ``.pt2`` is rebuilt, never unpickled. This
guards against stale and corrupt files, not against someone who can write both the
artifact and its sidecar -- keep the checkpoint directory as trusted as the code. The
``.onnx`` artifact is protobuf (no pickle) and the checkpoint is safetensors.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

SIDECAR_FORMAT = "pgfa_ros.runtime-artifact"
SIDECAR_VERSION = 1


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _writable_dir(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".pgfa-w-"):
            pass
        return True
    except OSError:
        return False


def artifact_dir(checkpoint: Path, checkpoint_sha: str, cache_dir: Optional[Path] = None) -> Path:
    """Where artifacts of ``checkpoint`` live: ``cache_dir`` if given, else next to the
    checkpoint, else (read-only install) ``$XDG_CACHE_HOME/pgfa_ros/artifacts/<sha[:16]>``."""
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        return Path(cache_dir)
    if _writable_dir(checkpoint.parent):
        return checkpoint.parent
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = base / "pgfa_ros" / "artifacts" / checkpoint_sha[:16]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sidecar_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + ".json")


def read_sidecar(artifact: Path) -> Optional[dict[str, Any]]:
    try:
        data = json.loads(sidecar_path(artifact).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        return None
    return data


def check_artifact(artifact: Path, checkpoint_sha: str, key: dict[str, Any]) -> tuple[bool, str]:
    """``(usable, why_not)`` for a cached artifact."""
    if not artifact.is_file():
        return False, "missing"
    side = read_sidecar(artifact)
    if side is None:
        return False, "no valid sidecar"
    if side.get("version") != SIDECAR_VERSION:
        return False, "sidecar version changed"
    if side.get("checkpoint_sha256") != checkpoint_sha:
        return False, "checkpoint changed"
    if side.get("key") != key:
        return False, "library/device versions changed"
    if side.get("artifact_sha256") != sha256_file(artifact):
        return False, "artifact does not match its recorded sha256 (corrupt or replaced)"
    return True, ""


def write_sidecar(artifact: Path, checkpoint_sha: str, key: dict[str, Any], **extra: Any) -> dict[str, Any]:
    data = {
        "format": SIDECAR_FORMAT,
        "version": SIDECAR_VERSION,
        "artifact": artifact.name,
        "artifact_sha256": sha256_file(artifact),
        "checkpoint_sha256": checkpoint_sha,
        "key": key,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }
    atomic_write_text(sidecar_path(artifact), json.dumps(data, indent=2, sort_keys=True) + "\n")
    return data


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def temp_path(path: Path) -> Path:
    """A temporary sibling of ``path`` with the same suffix (some writers insist on it)."""
    return path.with_name(f".tmp-{os.getpid()}-{path.name}")


@contextlib.contextmanager
def build_lock(artifact: Path) -> Iterator[None]:
    """Exclusive lock while (re)building ``artifact`` (POSIX flock; no-op elsewhere)."""
    lock = artifact.with_name(f".{artifact.name}.lock")
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    with open(lock, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            # remove the lock file so no litter stays next to the checkpoint (a racing
            # builder may then build too; both results are verified and replaced atomically)
            with contextlib.suppress(OSError):
                lock.unlink()
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def remove_quietly(*paths: Path) -> None:
    for p in paths:
        with contextlib.suppress(OSError):
            p.unlink()
