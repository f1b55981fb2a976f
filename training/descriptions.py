"""Action descriptions per dataset (paper §III-B): class name, complete description, or
skeleton-focused description.

Datasets of the class catalogue (``config/classes.yaml``: ``utd_mhad``, ``nw_ucla``,
``smartfallmm``, ``bandai``) are read from it (:mod:`training.catalog`), one place for these
texts; each class's primary text of a kind is the first of ``CatalogClass.texts(kind)`` (for
UTD-MHAD the project's original descriptions, unchanged). The NTU and PKU-MMD texts are still
files ``training/descriptions/<dataset>.yaml``, as is any YAML path given explicitly.

File format::

    dataset: utd_mhad
    classes:
      - {id: 0, name: "...", complete: "...", skeleton: "..."}

``kind`` selects the text fed to the frozen text encoder: ``name``, ``complete`` or
``skeleton``. ``name+complete`` joins the name and the complete description in one string.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from pgfa_models.config import ConfigError

from . import catalog as _catalog

KINDS = ("name", "complete", "skeleton", "name+complete")
DESCRIPTIONS_DIR = Path(__file__).resolve().parent / "descriptions"

# File datasets -> description file stem (NTU-60 = first 60 of NTU-120); the rest is the catalogue.
_FILE_FOR = {"ntu60": "ntu120", "ntu120": "ntu120", "pku_mmd": "pku_mmd"}


class DescriptionError(ConfigError):
    """A description file is missing or malformed, or a kind is unknown."""


@dataclass(frozen=True)
class ClassText:
    id: int
    name: str
    complete: str
    skeleton: str

    def text(self, kind: str) -> str:
        if kind == "name":
            return self.name
        if kind == "complete":
            return self.complete
        if kind == "skeleton":
            return self.skeleton
        if kind == "name+complete":
            return f"{self.name}. {self.complete}"
        raise DescriptionError(f"unknown description kind {kind!r}; known: {list(KINDS)}")


def description_path(dataset: str) -> Path:
    stem = _FILE_FOR.get(dataset, dataset)
    return DESCRIPTIONS_DIR / f"{stem}.yaml"


def _catalog_dataset(dataset_or_path: str | Path) -> str | None:
    """The catalogue dataset that ``dataset_or_path`` names, or None (a file is meant)."""
    if not isinstance(dataset_or_path, str) or Path(dataset_or_path).suffix in (".yaml", ".yml"):
        return None
    if dataset_or_path in _FILE_FOR or Path(dataset_or_path).is_file():
        return None
    try:
        cat = _catalog.load_catalog()
    except _catalog.CatalogError as exc:
        raise DescriptionError(str(exc)) from None
    return dataset_or_path if dataset_or_path in cat.datasets else None


def _truncate(texts: list[ClassText], num_classes: int | None, where: str) -> list[ClassText]:
    if num_classes is not None:
        if num_classes > len(texts):
            raise DescriptionError(f"{where}: has {len(texts)} classes, {num_classes} needed")
        texts = texts[:num_classes]
    return texts


def load_class_texts(dataset_or_path: str | Path, num_classes: int | None = None) -> list[ClassText]:
    """All classes of a dataset, ordered by id (ids must be 0..K-1).

    ``dataset_or_path``: a catalogue dataset (``utd_mhad``, ``nw_ucla``, ``smartfallmm``,
    ``bandai``), a description-file dataset (``ntu60``, ``ntu120``, ``pku_mmd``) or a YAML path.
    ``num_classes`` truncates (NTU-60 is the first 60 classes of NTU-120).
    """
    ds = _catalog_dataset(dataset_or_path)
    if ds is not None:
        cat = _catalog.load_catalog()
        texts = [ClassText(c.label, c.name, c.text("complete"), c.text("skeleton")) for c in cat.classes(ds)]
        return _truncate(texts, num_classes, f"{cat.path} ({ds})")
    p = Path(dataset_or_path)
    path = p if (p.suffix in (".yaml", ".yml") or p.is_file()) else description_path(str(dataset_or_path))
    if not path.is_file():
        raise DescriptionError(f"description file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DescriptionError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("classes"), list):
        raise DescriptionError(f"{path}: expected a mapping with a 'classes' list")
    out: dict[int, ClassText] = {}
    for i, c in enumerate(data["classes"]):
        if not isinstance(c, dict):
            raise DescriptionError(f"{path}: classes[{i}] is not a mapping")
        missing = [k for k in ("id", "name", "complete", "skeleton") if not isinstance(c.get(k), (str, int))]
        if missing:
            raise DescriptionError(f"{path}: classes[{i}] lacks {missing}")
        cid = int(c["id"])
        if cid in out:
            raise DescriptionError(f"{path}: duplicate class id {cid}")
        out[cid] = ClassText(cid, str(c["name"]), str(c["complete"]).strip(), str(c["skeleton"]).strip())
    ids = sorted(out)
    if ids != list(range(len(ids))):
        raise DescriptionError(f"{path}: class ids must be 0..{len(ids) - 1} without gaps")
    return _truncate([out[i] for i in ids], num_classes, str(path))


def load_descriptions(dataset_or_path: str | Path, kind: str = "complete",
                      classes: list[int] | tuple[int, ...] | None = None,
                      num_classes: int | None = None) -> list[str]:
    """Texts of ``kind`` for ``classes`` (all classes when None), in the given order."""
    if kind not in KINDS:
        raise DescriptionError(f"unknown description kind {kind!r}; known: {list(KINDS)}")
    texts = load_class_texts(dataset_or_path, num_classes)
    idx = range(len(texts)) if classes is None else classes
    try:
        return [texts[int(k)].text(kind) for k in idx]
    except IndexError:
        raise DescriptionError(f"class index out of range for {dataset_or_path} ({len(texts)} classes)") from None


def class_names(dataset_or_path: str | Path, num_classes: int | None = None) -> list[str]:
    return [t.name for t in load_class_texts(dataset_or_path, num_classes)]


def load_text_sets(dataset: str, kind: str = "ensemble", classes: list[int] | tuple[int, ...] | None = None
                   ) -> list[list[str]]:
    """Several texts per class (a prompt ensemble) for ``classes`` (all when None), in that order.

    Catalogue datasets give ``CatalogClass.texts(kind)`` for any of ``training.catalog.TEXT_KINDS``
    (``name``, ``complete``, ``skeleton``, ``paraphrases``, ``ensemble``); file datasets have one
    text per kind, so ``ensemble`` gives their name, complete and skeleton texts.
    """
    ds = _catalog_dataset(dataset)
    if ds is not None:
        try:
            return _catalog.load_catalog().texts(ds, kind, classes)
        except _catalog.CatalogError as exc:
            raise DescriptionError(str(exc)) from None
    texts = load_class_texts(dataset)
    idx = range(len(texts)) if classes is None else classes
    try:
        picked = [texts[int(k)] for k in idx]
    except IndexError:
        raise DescriptionError(f"class index out of range for {dataset} ({len(texts)} classes)") from None
    if kind == "ensemble":
        return [list(dict.fromkeys([t.name, t.complete, t.skeleton])) for t in picked]
    if kind == "paraphrases":
        raise DescriptionError(f"{dataset}: its description file has no paraphrases")
    return [[t.text(kind)] for t in picked]
