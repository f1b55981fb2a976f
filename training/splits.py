"""Zero-shot seen/unseen class splits (SPEC §6), kept as data in ``config/splits.yaml``.

Names: ``utd_mhad/U1``..``U4``; ``{ntu60,ntu120,pku_mmd}/setting1/split{1,2,3}``;
``ntu60/setting2/{55_5,48_12}``; ``ntu120/setting2/{110_10,96_24}``. Class indices are
0-based.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgfa_models.config import ConfigError, read_yaml

from .config_files import config_path

PACKAGE = "pgfa_ros"
SPLITS_FILE = "splits.yaml"

__all__ = ["Split", "SplitError", "default_splits_path", "get_split", "load_splits", "split_names"]


class SplitError(ConfigError):
    """The splits file is missing or invalid, or a split name is unknown."""


@dataclass(frozen=True)
class Split:
    """A zero-shot split: ``unseen`` classes are held out; ``seen`` is the sorted rest."""

    name: str
    dataset: str
    num_classes: int
    unseen: tuple[int, ...]

    @property
    def seen(self) -> tuple[int, ...]:
        held = set(self.unseen)
        return tuple(c for c in range(self.num_classes) if c not in held)

    @property
    def classes(self) -> tuple[int, ...]:
        return tuple(range(self.num_classes))


def default_splits_path() -> Path:
    """``config/splits.yaml`` of the source checkout, else the installed share dir
    (``share/pgfa_ros/config/splits.yaml`` via ament_index, then ``sys.prefix``)."""
    return config_path(SPLITS_FILE, SplitError)


def _as_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SplitError(f"{where}: expected an integer, got {value!r}")
    return value


def _parse(data: Any, path: Path) -> dict[str, Split]:
    if not isinstance(data, dict) or set(data) != {"datasets", "splits"}:
        raise SplitError(f"{path}: expected top-level keys 'datasets' and 'splits'")
    datasets = data["datasets"]
    splits = data["splits"]
    if not isinstance(datasets, dict) or not isinstance(splits, dict):
        raise SplitError(f"{path}: 'datasets' and 'splits' must be mappings")
    num_classes: dict[str, int] = {}
    for ds, spec in datasets.items():
        if not isinstance(spec, dict) or set(spec) != {"num_classes"}:
            raise SplitError(f"{path}: datasets.{ds}: expected {{num_classes: N}}")
        n = _as_int(spec["num_classes"], f"{path}: datasets.{ds}.num_classes")
        if n < 2:
            raise SplitError(f"{path}: datasets.{ds}.num_classes must be >= 2, got {n}")
        num_classes[str(ds)] = n
    out: dict[str, Split] = {}
    for name, spec in splits.items():
        where = f"{path}: splits.{name}"
        if not isinstance(spec, dict) or set(spec) != {"dataset", "unseen"}:
            raise SplitError(f"{where}: expected keys 'dataset' and 'unseen'")
        ds = spec["dataset"]
        if ds not in num_classes:
            raise SplitError(f"{where}: unknown dataset {ds!r}; known: {sorted(num_classes)}")
        if not isinstance(spec["unseen"], list) or not spec["unseen"]:
            raise SplitError(f"{where}: 'unseen' must be a non-empty list")
        unseen = tuple(_as_int(c, f"{where}.unseen") for c in spec["unseen"])
        n = num_classes[ds]
        bad = [c for c in unseen if not 0 <= c < n]
        if bad:
            raise SplitError(f"{where}: class indices {bad} outside 0..{n - 1}")
        if len(set(unseen)) != len(unseen):
            dup = sorted({c for c in unseen if unseen.count(c) > 1})
            raise SplitError(f"{where}: repeated unseen classes {dup}")
        if len(unseen) >= n:
            raise SplitError(f"{where}: no seen classes left")
        out[str(name)] = Split(name=str(name), dataset=ds, num_classes=n, unseen=tuple(sorted(unseen)))
    return out


def load_splits(path: str | Path | None = None) -> dict[str, Split]:
    """All splits by name, validated (indices in range, unique, at least one seen class)."""
    path = Path(path) if path is not None else default_splits_path()
    return _parse(read_yaml(path, SplitError, "splits file"), path)


def split_names(path: str | Path | None = None) -> list[str]:
    return list(load_splits(path))


def get_split(name: str, path: str | Path | None = None) -> Split:
    """The split called ``name`` (e.g. ``utd_mhad/U1``, ``ntu60/setting2/48_12``)."""
    splits = load_splits(path)
    try:
        return splits[name]
    except KeyError:
        raise SplitError(
            f"unknown split {name!r}; known splits: {', '.join(splits)}"
        ) from None
