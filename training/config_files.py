"""Where the project's data files (``config/*.yaml``) are: the source checkout, else the
installed share dir (``share/pgfa_ros/config`` via ament_index, then ``sys.prefix``)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "pgfa_ros"


def config_candidates(name: str) -> list[Path]:
    candidates = [Path(__file__).resolve().parents[1] / "config" / name]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(PACKAGE)) / "config" / name)
    except Exception:  # not installed through ament, or AMENT_PREFIX_PATH unset
        pass
    for prefix in dict.fromkeys([sys.prefix, os.environ.get("VIRTUAL_ENV", "")]):
        if prefix:
            candidates.append(Path(prefix) / "share" / PACKAGE / "config" / name)
    return candidates


def config_path(name: str, error: type[Exception]) -> Path:
    """The first existing ``config/<name>``; ``error`` naming every place looked in otherwise."""
    candidates = config_candidates(name)
    for c in candidates:
        if c.is_file():
            return c
    raise error(f"{name} not found; looked in: " + ", ".join(str(c) for c in candidates))
