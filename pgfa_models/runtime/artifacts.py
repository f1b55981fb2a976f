"""Cached backend artifacts next to a checkpoint, with a JSON sidecar that pins them.

``<ckpt>.onnx`` / ``<ckpt>.pt2`` / ``<ckpt>.trt-<prec>-<key>.ep`` each have a sidecar
``<artifact>.json`` holding the sha256 of the checkpoint it was built from, the sha256 of the
artifact itself and the library versions (the *key*). An artifact is used only when all
three match; otherwise it is rebuilt (atomically: temporary file, then rename, under a
file lock so two processes do not build at once).

Safety: ``.pt2`` and ``.ep`` files (torch.export / torch-tensorrt) are zip archives whose
weights and constants are read with pickle inside ``torch.export.load``. A matching sidecar
proves nothing about who wrote them (anyone who can write both files can make them agree), so
these *pickled* artifacts live only in a private directory: created by this process with mode
0700, owned by the current uid, with no group/other permission bits, checked again right
before every load (:func:`require_private_dir`). A checkpoint folder that is not private (the
usual case: a source tree or a shared models folder) gets its pickled artifacts in
``$XDG_CACHE_HOME/pgfa_ros/artifacts/<sha[:16]>`` instead; an explicit ``cache_dir`` that is
not private is refused with the reason. The ``.onnx`` artifact is protobuf (no pickle) and may
live next to the checkpoint; the checkpoint itself is safetensors.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

from ..fileio import atomic_write_text, sha256_file  # noqa: F401 - re-exported for callers

SIDECAR_FORMAT = "pgfa_ros.runtime-artifact"
SIDECAR_VERSION = 1


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


class ArtifactError(RuntimeError):
    """A backend artifact could not be built, verified or loaded."""


class UnsafeArtifactDir(ArtifactError):
    """A pickled artifact, or the directory holding it, that is not private to this user
    (``str(exc)`` says why); it is never unpickled."""


def private_dir_problem(folder: Path) -> Optional[str]:
    """Why ``folder`` may not hold pickled artifacts, or None when it is private: a real
    directory (not a symlink) owned by the current uid with no group/other permission bits."""
    try:
        st = os.lstat(folder)
    except OSError as exc:
        return f"{folder}: cannot stat ({exc.strerror or exc})"
    if stat.S_ISLNK(st.st_mode):
        return f"{folder} is a symlink"
    if not stat.S_ISDIR(st.st_mode):
        return f"{folder} is not a directory"
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"{folder} is owned by uid {st.st_uid}, not by this user (uid {os.getuid()})"
    if st.st_mode & 0o077:
        return (f"{folder} has mode {stat.S_IMODE(st.st_mode):04o}; it must be private (0700: "
                f"no group/other access) -- chmod 700 it or use another cache_dir")
    return None


def require_private_dir(folder: Path) -> None:
    """Raise :class:`UnsafeArtifactDir` unless ``folder`` is private (see :func:`private_dir_problem`)."""
    why = private_dir_problem(folder)
    if why is not None:
        raise UnsafeArtifactDir(f"refusing to load pickled artifacts from {why}")


def require_private_file(path: Path) -> None:
    """A pickled artifact itself: a regular file (no symlink) in a private folder, owned by
    this user, not writable by group/other. Checked immediately before unpickling."""
    require_private_dir(path.parent)
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise UnsafeArtifactDir(f"refusing to load {path}: cannot stat ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeArtifactDir(f"refusing to load {path}: not a regular file")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise UnsafeArtifactDir(f"refusing to load {path}: owned by uid {st.st_uid}, not this user")
    if st.st_mode & 0o022:
        raise UnsafeArtifactDir(f"refusing to load {path}: writable by group/other")


def make_private_dir(folder: Path) -> Path:
    """Create ``folder`` (and missing parents) with the leaf at mode 0700; an existing folder
    is checked, never loosened or silently tightened."""
    folder = Path(folder)
    if not folder.exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
    require_private_dir(folder)
    return folder


def user_cache_dir(checkpoint_sha: str) -> Path:
    """The per-user private artifact cache of one checkpoint."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pgfa_ros" / "artifacts" / checkpoint_sha[:16]


def artifact_dir(checkpoint: Path, checkpoint_sha: str, cache_dir: Optional[Path] = None,
                 pickled: bool = False) -> Path:
    """Where artifacts of ``checkpoint`` live: ``cache_dir`` if given, else next to the
    checkpoint, else (read-only install) ``$XDG_CACHE_HOME/pgfa_ros/artifacts/<sha[:16]>``.

    ``pickled=True`` (``.pt2`` / ``.ep``): the folder must be private; a missing ``cache_dir``
    is created 0700, a non-private one raises :class:`UnsafeArtifactDir`; without
    ``cache_dir`` a non-private checkpoint folder is skipped for the private user cache."""
    if cache_dir is not None:
        if pickled:
            return make_private_dir(Path(cache_dir))
        folder = Path(cache_dir)
        if not folder.exists():  # created private, so a later pickled artifact may share it
            folder.parent.mkdir(parents=True, exist_ok=True)
            folder.mkdir(mode=0o700, exist_ok=True)
        return folder
    if _writable_dir(checkpoint.parent) and (not pickled or private_dir_problem(checkpoint.parent) is None):
        return checkpoint.parent
    folder = user_cache_dir(checkpoint_sha)
    if pickled:
        return make_private_dir(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir(mode=0o700, exist_ok=True)  # private from the start: pickled artifacts share it
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
