"""Atomic file writes and file hashing: the one copy the project uses.

A robot that loses power mid-write must never find a half-written checkpoint, bank or cache entry
under the real name, so every writer goes through a temporary sibling in the *same directory*
(``os.replace`` is atomic only within one file system), flushed and fsync'ed before the rename,
and removed if anything fails.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]

_CHUNK = 1 << 20


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _publish_mode(tmp: PathLike, path: Path) -> None:
    """mkstemp makes 0600 files; give the result the mode a plain ``open`` would (an existing
    file keeps its own), so a checkpoint written here is as readable as one copied here."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        mode = 0o666 & ~_umask()
    os.chmod(tmp, mode)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path: PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on normal exit it is fsync'ed and renamed onto
    ``path``, on any exception it is removed. For writers that insist on a file name
    (safetensors, ``torch.export.save``, ``np.savez``); ``suffix`` keeps the extension some of them
    require."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=folder)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        _publish_mode(tmp, path)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(folder)


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (readers see the old file or the new one, never a
    mix); the temporary file is removed on error. Returns ``path`` as a Path."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _publish_mode(name, path)
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    _fsync_dir(folder)
    return path


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """:func:`atomic_write_bytes` for text (UTF-8 unless told otherwise)."""
    return atomic_write_bytes(path, text.encode(encoding))


def check_outputs(*paths: PathLike | None) -> None:
    """Create the folders of output files and refuse a directory BEFORE long work (an evaluation,
    a video): a bad output path must not cost the run and its results (raises OSError)."""
    for p in paths:
        if not p:
            continue
        p = Path(p)
        if p.is_dir():
            raise IsADirectoryError(f"{p} is a directory; give a file path")
        p.parent.mkdir(parents=True, exist_ok=True)


def sha256_file(path: PathLike, chunk: int = _CHUNK) -> str:
    """Hex sha256 of a file, read in ``chunk``-byte blocks so a multi-GB file costs no memory."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
