"""Shared fixtures: paths to the real data in ../shared/data."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
UTD_DIR = SHARED_DATA / "utd-mhad"
VIDEO = SHARED_DATA / "videos" / "sports2d_demo.mp4"


@pytest.fixture(scope="session")
def utd_dir() -> Path:
    if not UTD_DIR.is_dir():
        pytest.fail(f"real UTD-MHAD data missing at {UTD_DIR} (expected ../shared/data beside the repo)")
    return UTD_DIR


# ----------------------------------------------------------------------------- archives
# The larger shared sets are .tar.xz archives of the publishers' files. Tests unpack each
# once into a cache keyed by the archive's sha256 (outside the repository), like a user who
# downloaded the dataset, and read the unpacked folder.
ARCHIVES = {
    "nw-ucla": ("nw-ucla/all_sqe.tar.xz", "all_sqe"),
    "smartfallmm": ("smartfallmm/young-skeleton-S29-S39.tar.xz", "young/skeleton"),
    "bandai-namco-1": ("bandai-namco-1/dataset-1.tar.xz", "Bandai-Namco-Research-Motiondataset-1"),
}


def _expected_sha256(rel: str) -> str:
    for line in (SHARED_DATA / "SHA256SUMS").read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == rel:
            return parts[0]
    raise KeyError(rel)


def unpack_shared(name: str) -> Path:
    """Unpack ``../shared/data/<archive>`` once (cache keyed by its sha256); return the data folder."""
    import hashlib
    import os
    import shutil
    import tarfile
    import tempfile

    rel, inner = ARCHIVES[name]
    archive = SHARED_DATA / rel
    if not archive.is_file():
        pytest.fail(f"real {name} archive missing at {archive}")
    sha = _expected_sha256(rel)
    base = Path(os.environ.get("PGFA_CACHE_DIR") or Path.home() / ".cache" / "pgfa_ros")
    dest = base / "shared_data" / f"{name}-{sha[:16]}"
    if not (dest / ".complete").is_file():
        h = hashlib.sha256()
        with open(archive, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != sha:
            pytest.fail(f"{archive}: sha256 does not match SHA256SUMS")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{name}-"))
        with tarfile.open(archive, "r:xz") as tf:
            tf.extractall(tmp, filter="data")
        (tmp / ".complete").write_text(sha + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    return dest / inner


@pytest.fixture(scope="session")
def nwucla_dir() -> Path:
    """The unpacked NW-UCLA ``all_sqe`` folder (JSON skeletons)."""
    return unpack_shared("nw-ucla")


@pytest.fixture(scope="session")
def smartfall_dir() -> Path:
    """The unpacked SmartFallMM ``young/skeleton`` folder (CSV skeletons)."""
    return unpack_shared("smartfallmm")


@pytest.fixture(scope="session")
def bandai_dir() -> Path:
    """The unpacked Bandai-Namco-Research-Motiondataset-1 folder (BVH + JSON)."""
    return unpack_shared("bandai-namco-1")
