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
# The larger shared sets are .tar.xz archives of the publishers' files. Tests unpack each once
# (training.corpus.unpack_archive: sha256-checked, into a cache keyed by the archive's hash,
# outside the repository), like a user who downloaded the dataset, and read the folder.
def unpack_shared(source: str) -> Path:
    from training.corpus import SOURCES, DatasetError, unpack_archive

    _, rel, inner = SOURCES[source]
    try:
        return unpack_archive(rel, inner, source)
    except DatasetError as exc:
        pytest.fail(f"real {source} data unavailable: {exc}")


@pytest.fixture(scope="session")
def nwucla_dir() -> Path:
    """The unpacked NW-UCLA ``all_sqe`` folder (JSON skeletons)."""
    return unpack_shared("nw_ucla")


@pytest.fixture(scope="session")
def smartfall_dir() -> Path:
    """The unpacked SmartFallMM ``young/skeleton`` folder (CSV skeletons)."""
    return unpack_shared("smartfallmm")


@pytest.fixture(scope="session")
def bandai_dir() -> Path:
    """The unpacked Bandai-Namco-Research-Motiondataset-1 folder (BVH + JSON)."""
    return unpack_shared("bandai")
