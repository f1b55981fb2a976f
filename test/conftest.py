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
