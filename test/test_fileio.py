"""pgfa_models.fileio: atomic writes leave the old file or the new one, never a torn one, and
never a stray temporary; sha256_file matches hashlib on files bigger than one chunk."""
import hashlib
import os

import pytest

from pgfa_models import fileio


def _siblings(folder):
    return sorted(p.name for p in folder.iterdir())


def test_write_bytes_and_text_replace_content(tmp_path):
    p = tmp_path / "a.bin"
    assert fileio.atomic_write_bytes(p, b"one") == p
    fileio.atomic_write_bytes(p, b"two!")
    assert p.read_bytes() == b"two!"
    t = tmp_path / "b.txt"
    fileio.atomic_write_text(str(t), "héllo\n")
    assert t.read_bytes() == "héllo\n".encode()
    assert _siblings(tmp_path) == ["a.bin", "b.txt"]


def test_failed_write_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
    p = tmp_path / "keep.txt"
    p.write_text("old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(fileio.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        fileio.atomic_write_text(p, "new")
    assert p.read_text() == "old"
    assert _siblings(tmp_path) == ["keep.txt"]


def test_temp_is_in_the_target_directory_and_fsynced(tmp_path, monkeypatch):
    seen = {}
    real_replace, real_fsync = os.replace, os.fsync
    synced = []
    monkeypatch.setattr(fileio.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])

    def spy(src, dst):
        seen["src"] = os.path.dirname(os.fspath(src))
        assert synced, "data must be fsync'ed before the rename"
        real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", spy)
    sub = tmp_path / "d"
    sub.mkdir()
    fileio.atomic_write_bytes(sub / "x", b"1")
    assert os.path.samefile(seen["src"], sub)


def test_non_bytes_is_an_error_and_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        fileio.atomic_write_bytes(tmp_path / "x", "not bytes")  # type: ignore[arg-type]
    assert _siblings(tmp_path) == []


def test_atomic_output_for_path_writers(tmp_path):
    p = tmp_path / "m.npz"
    with fileio.atomic_output(p, suffix=".npz") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".npz")
        tmp.write_bytes(b"data")
    assert p.read_bytes() == b"data"
    with pytest.raises(RuntimeError):
        with fileio.atomic_output(p) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer failed")
    assert p.read_bytes() == b"data"
    assert _siblings(tmp_path) == ["m.npz"]


def test_sha256_file_multi_chunk(tmp_path):
    data = os.urandom(3 * 1024 + 17)
    p = tmp_path / "f"
    p.write_bytes(data)
    assert fileio.sha256_file(p, chunk=1024) == hashlib.sha256(data).hexdigest()
    assert fileio.sha256_file(str(p)) == hashlib.sha256(data).hexdigest()
    empty = tmp_path / "e"
    empty.write_bytes(b"")
    assert fileio.sha256_file(empty) == hashlib.sha256(b"").hexdigest()


# ---------------------------------------------------------------- one copy (issue 13)
REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
# os.replace of a *directory* (an extracted model folder / dataset archive) is not a file
# write: allowed there.
_RENAME_OK = {"pgfa_models/fileio.py", "pgfa_models/text.py", "training/corpus.py"}


def _sources():
    for pkg in ("pgfa_models", "training"):
        for p in sorted((REPO / pkg).rglob("*.py")):
            yield p.relative_to(REPO).as_posix(), p.read_text()


def test_atomic_writes_and_l2_normalisation_have_one_home():
    import re
    renames = [rel for rel, src in _sources() if "os.replace(" in src and rel not in _RENAME_OK]
    assert not renames, f"atomic writes must use pgfa_models.fileio, not their own os.replace: {renames}"
    l2 = [rel for rel, src in _sources()
          if re.search(r"linalg\.norm\([^\n]*keepdims=True", src) and rel != "pgfa_models/alignment.py"]
    assert not l2, f"L2 normalisation must use pgfa_models.alignment.l2_normalise: {l2}"
    hashers = [rel for rel, src in _sources()
               if re.search(r"def _?sha256_file\b", src) and rel != "pgfa_models/fileio.py"]
    assert not hashers, f"file hashing must use pgfa_models.fileio.sha256_file: {hashers}"


def test_written_files_get_the_usual_mode_not_mkstemps_0600(tmp_path):
    import os
    import stat

    from pgfa_models.fileio import atomic_output, atomic_write_bytes

    old = os.umask(0o022)
    try:
        p = atomic_write_bytes(tmp_path / "a.bin", b"x")
        assert stat.S_IMODE(p.stat().st_mode) == 0o644
        with atomic_output(tmp_path / "b.bin") as tmp:
            tmp.write_bytes(b"y")
        assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o644
        os.chmod(p, 0o600)  # an existing file keeps its own mode
        atomic_write_bytes(p, b"z")
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_check_outputs_creates_folders_and_refuses_a_directory(tmp_path):
    import pytest

    from pgfa_models.fileio import check_outputs

    check_outputs(tmp_path / "a" / "b" / "r.json", None, "")
    assert (tmp_path / "a" / "b").is_dir() and not (tmp_path / "a" / "b" / "r.json").exists()
    with pytest.raises(IsADirectoryError):
        check_outputs(tmp_path / "a")
    (tmp_path / "f").write_text("x")
    with pytest.raises(OSError):  # a file where a folder must go
        check_outputs(tmp_path / "f" / "r.md")
