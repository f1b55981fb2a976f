"""The one class catalogue across datasets (``config/classes.yaml``), issue 10 item 2.

A *concept* is an action independent of any dataset (``stand_up``); a *class* is one 0-based
label of one dataset and names the concept(s) it shows (NW-UCLA "stand up", UTD-MHAD "sit to
stand" and SmartFallMM "sit / stand" all contain ``stand_up``). Zero-shot protocols hold out
concepts, not labels, so that an unseen action is unseen in every training source: a class leaves
training when ANY of its concepts is unseen (:meth:`Catalog.classes_without_concepts`).

Texts for the frozen text encoder come in kinds (:data:`TEXT_KINDS`); a class's texts are its own
(overrides such as the UTD-MHAD benchmark descriptions) followed by its concepts' texts, so
``texts(kind)[0]`` is the class's primary text and the whole list is a prompt ensemble.

Datasets with *styles* (Bandai Namco: content x style takes) describe a take as a sentence built
from the content's verb phrase and the style's adverbial: :meth:`Catalog.take_sentence`.
"""
from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from pgfa_models.config import ConfigError

from .config_files import config_path

PACKAGE = "pgfa_ros"
CATALOG_FILE = "classes.yaml"
TEXT_KINDS = ("name", "complete", "skeleton", "paraphrases", "ensemble")

__all__ = ["CATALOG_FILE", "TEXT_KINDS", "Catalog", "CatalogClass", "CatalogError", "Concept", "Style",
           "default_catalog_path", "load_catalog"]

_ID_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_TOP_KEYS = {"version", "families", "concepts", "datasets"}
_CONCEPT_KEYS = {"id", "name", "complete", "skeleton", "paraphrases", "families"}
_DATASET_KEYS = {"source", "num_classes", "classes", "styles"}
_CLASS_KEYS = {"label", "source_id", "name", "aliases", "concepts", "complete", "skeleton", "paraphrases",
               "verb_phrase"}
_STYLE_KEYS = {"label", "name", "adverbial", "alternatives"}
_SUBJECT = "a person"


class CatalogError(ConfigError):
    """The class catalogue is missing or invalid, or a dataset / class / concept is unknown."""


@dataclass(frozen=True)
class Concept:
    """An action independent of any dataset; ``families`` are coarser tags (e.g. ``fall``)."""

    id: str
    name: str
    complete: str
    skeleton: str
    paraphrases: tuple[str, ...]
    families: tuple[str, ...] = ()

    def texts(self, kind: str) -> list[str]:
        """This concept's texts of ``kind`` (see :data:`TEXT_KINDS`)."""
        _check_kind(kind)
        if kind == "name":
            return [self.name]
        if kind == "complete":
            return [self.complete]
        if kind == "skeleton":
            return [self.skeleton]
        if kind == "paraphrases":
            return list(self.paraphrases)
        return _unique([self.name, self.complete, self.skeleton, *self.paraphrases])


@dataclass(frozen=True)
class Style:
    """A manner of performing (Bandai Namco styles); ``adverbial`` completes a take sentence."""

    label: int
    name: str
    adverbial: str
    alternatives: tuple[str, ...] = ()


@dataclass(frozen=True)
class CatalogClass:
    """One label of one dataset. ``own_*`` are the class's own texts (empty when it has none);
    :meth:`texts` puts them before the texts of its concepts."""

    dataset: str
    label: int
    name: str
    concepts: tuple[str, ...]
    source_id: str | None = None
    aliases: tuple[str, ...] = ()
    own_complete: str | None = None
    own_skeleton: str | None = None
    own_paraphrases: tuple[str, ...] = ()
    verb_phrase: str | None = None
    concept_objs: tuple[Concept, ...] = field(default=(), repr=False, compare=False)

    def texts(self, kind: str) -> list[str]:
        """The class's texts of ``kind``: its own first, then each concept's (duplicates dropped).

        ``name``: the dataset's name, aliases, concept names; ``paraphrases`` also holds
        "a person <verb phrase>" where the class has one; ``ensemble``: every kind together.
        """
        _check_kind(kind)
        if kind == "ensemble":
            return _unique(t for k in TEXT_KINDS[:-1] for t in self.texts(k))
        if kind == "name":
            own = [self.name, *self.aliases]
        elif kind == "complete":
            own = [self.own_complete] if self.own_complete else []
        elif kind == "skeleton":
            own = [self.own_skeleton] if self.own_skeleton else []
        else:
            own = list(self.own_paraphrases)
            if self.verb_phrase:
                own.append(f"{_SUBJECT} {self.verb_phrase}")
        return _unique([*own, *(t for c in self.concept_objs for t in c.texts(kind))])

    def text(self, kind: str) -> str:
        """The primary text of ``kind`` (the first of :meth:`texts`)."""
        return self.texts(kind)[0]

    @property
    def families(self) -> tuple[str, ...]:
        """Family tags of all its concepts, in order."""
        return tuple(_unique(f for c in self.concept_objs for f in c.families))


class Catalog:
    """The parsed catalogue; build it with :func:`load_catalog`."""

    def __init__(self, concepts: Mapping[str, Concept], classes: Mapping[str, Sequence[CatalogClass]],
                 styles: Mapping[str, Sequence[Style]], families: Mapping[str, str], path: Path | None = None):
        self._concepts = dict(concepts)
        self._classes = {d: list(v) for d, v in classes.items()}
        self._styles = {d: list(v) for d, v in styles.items()}
        self._families = dict(families)
        self.path = path

    def __repr__(self) -> str:
        counts = ", ".join(f"{d}={len(v)}" for d, v in self._classes.items())
        return f"Catalog({len(self._concepts)} concepts; {counts})"

    # ---------------------------------------------------------------- datasets and classes
    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(self._classes)

    def classes(self, dataset: str) -> list[CatalogClass]:
        """Classes of ``dataset`` ordered by label (label == index)."""
        return list(self._dataset_classes(dataset))

    def get_class(self, dataset: str, label: int | str) -> CatalogClass:
        """A class by 0-based label, or by its name, alias or source id."""
        return self._dataset_classes(dataset)[self._label(dataset, label)]

    def class_names(self, dataset: str) -> list[str]:
        return [c.name for c in self._dataset_classes(dataset)]

    def texts(self, dataset: str, kind: str, labels: Iterable[int] | None = None) -> list[list[str]]:
        """Per class (all classes when ``labels`` is None, else in that order) its texts of ``kind``."""
        cls = self._dataset_classes(dataset)
        idx = range(len(cls)) if labels is None else labels
        return [cls[self._label(dataset, i)].texts(kind) for i in idx]

    # ---------------------------------------------------------------- concepts
    def concept(self, cid: str) -> Concept:
        try:
            return self._concepts[cid]
        except KeyError:
            raise CatalogError(f"unknown concept {cid!r}; known: {sorted(self._concepts)}") from None

    @property
    def concept_ids(self) -> tuple[str, ...]:
        return tuple(self._concepts)

    def concept_names(self) -> dict[str, str]:
        """``{concept id: name}`` in catalogue order."""
        return {cid: c.name for cid, c in self._concepts.items()}

    def concepts_of(self, dataset: str, labels: Iterable[int] | None = None) -> tuple[str, ...]:
        """Concept ids shown by ``labels`` of ``dataset`` (all classes when None), first-seen order."""
        cls = self._dataset_classes(dataset)
        idx = range(len(cls)) if labels is None else labels
        return tuple(_unique(cid for i in idx for cid in cls[self._label(dataset, i)].concepts))

    def classes_with_concepts(self, dataset: str, concept_ids: Iterable[str]) -> list[int]:
        """Labels of ``dataset``'s classes that show ANY of ``concept_ids`` (sorted)."""
        wanted = self._known_concepts(concept_ids)
        return [c.label for c in self._dataset_classes(dataset) if wanted.intersection(c.concepts)]

    def classes_without_concepts(self, dataset: str, concept_ids: Iterable[str]) -> list[int]:
        """Labels of ``dataset``'s classes that show NONE of ``concept_ids``: what may be trained on
        when those concepts are unseen (the complement of :meth:`classes_with_concepts`)."""
        held = set(self.classes_with_concepts(dataset, concept_ids))
        return [c.label for c in self._dataset_classes(dataset) if c.label not in held]

    def datasets_with_concept(self, cid: str) -> tuple[str, ...]:
        self.concept(cid)
        return tuple(d for d, cls in self._classes.items() if any(cid in c.concepts for c in cls))

    # ---------------------------------------------------------------- families
    @property
    def families(self) -> dict[str, str]:
        """``{family tag: meaning}``."""
        return dict(self._families)

    def concepts_in_family(self, family: str) -> tuple[str, ...]:
        if family not in self._families:
            raise CatalogError(f"unknown family {family!r}; known: {sorted(self._families)}")
        return tuple(cid for cid, c in self._concepts.items() if family in c.families)

    # ---------------------------------------------------------------- styled takes (Bandai)
    def styles(self, dataset: str) -> list[Style]:
        """Styles of ``dataset`` ordered by label (empty for datasets without styles)."""
        self._dataset_classes(dataset)
        return list(self._styles.get(dataset, ()))

    def get_style(self, dataset: str, style: int | str) -> Style:
        styles = self._styles.get(dataset)
        if not styles:
            self._dataset_classes(dataset)
            raise CatalogError(f"dataset {dataset!r} has no styles")
        if isinstance(style, str):
            key = _strip_prefix(style)
            for s in styles:
                if s.name == key:
                    return s
            raise CatalogError(f"{dataset}: unknown style {style!r}; known: {[s.name for s in styles]}")
        idx = _as_index(style)
        if idx is not None and 0 <= idx < len(styles):
            return styles[idx]
        raise CatalogError(f"{dataset}: style label {style!r} outside 0..{len(styles) - 1}")

    def take_sentence(self, dataset: str, content: int | str, style: int | str) -> str:
        """"a person <content verb phrase> <style adverbial>", e.g. ``take_sentence('bandai', 'bye',
        'tired')`` -> "a person waves goodbye with one hand in a tired way". ``content`` and
        ``style`` are 0-based labels or names (``walk`` or the cfg form ``dataset-1_walk``)."""
        cls = self.get_class(dataset, content)
        st = self.get_style(dataset, style)
        if not cls.verb_phrase:
            raise CatalogError(f"{dataset}: class {cls.name!r} has no verb_phrase")
        return f"{_SUBJECT} {cls.verb_phrase} {st.adverbial}"

    def take_sentences(self, dataset: str, content: int | str, style: int | str) -> list[str]:
        """Prompt ensemble for a take: the take sentence with the style's adverbial and each of its
        alternatives (the primary sentence first)."""
        first = self.take_sentence(dataset, content, style)
        cls = self.get_class(dataset, content)
        st = self.get_style(dataset, style)
        return _unique([first, *(f"{_SUBJECT} {cls.verb_phrase} {a}" for a in st.alternatives)])

    # ---------------------------------------------------------------- internals
    def _dataset_classes(self, dataset: str) -> list[CatalogClass]:
        try:
            return self._classes[dataset]
        except KeyError:
            raise CatalogError(f"unknown dataset {dataset!r}; the catalogue has {list(self._classes)}") from None

    def _label(self, dataset: str, label: int | str) -> int:
        cls = self._dataset_classes(dataset)
        if isinstance(label, str):
            key = _strip_prefix(label)
            for c in cls:
                if key == c.name or key in c.aliases or label == c.source_id:
                    return c.label
            raise CatalogError(f"{dataset}: unknown class {label!r}")
        idx = _as_index(label)
        if idx is not None and 0 <= idx < len(cls):
            return idx
        raise CatalogError(f"{dataset}: class label {label!r} outside 0..{len(cls) - 1}")

    def _known_concepts(self, concept_ids: Iterable[str]) -> set[str]:
        if isinstance(concept_ids, str):
            raise CatalogError(f"expected a collection of concept ids, got the string {concept_ids!r}")
        ids = set(concept_ids)
        for cid in ids:
            self.concept(cid)
        return ids


# -------------------------------------------------------------------- loading and validation
def default_catalog_path() -> Path:
    """``config/classes.yaml`` of the source checkout, else the installed share dir
    (``share/pgfa_ros/config/classes.yaml`` via ament_index, then ``sys.prefix``), as for the
    splits file."""
    return config_path(CATALOG_FILE, CatalogError)


_CACHE: dict[tuple[str, int, int], Catalog] = {}


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Parse and validate the catalogue (``path`` or :func:`default_catalog_path`). Results are
    cached per file and modification time, so repeated calls are cheap and edits are seen."""
    p = Path(path) if path is not None else default_catalog_path()
    try:
        st = p.stat()
    except FileNotFoundError:
        raise CatalogError(f"class catalogue not found: {p}") from None
    except OSError as exc:
        raise CatalogError(f"class catalogue {p} cannot be read: {exc}") from None
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _CACHE:
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogError(f"class catalogue {p} cannot be read: {exc}") from None
        _CACHE[key] = parse_catalog(text, p)
    return _CACHE[key]


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe loader that rejects a key given twice in one mapping (PyYAML keeps the last silently,
    which would hide a second definition of a dataset or a field)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_catalog(text: str, path: str | Path = "<catalogue>") -> Catalog:
    """Validate catalogue YAML ``text``; every problem is a :class:`CatalogError` naming ``path``."""
    where = str(path)
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise CatalogError(f"{where}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CatalogError(f"{where}: expected a mapping with 'families', 'concepts' and 'datasets'")
    _no_unknown_keys(data, _TOP_KEYS, where)
    if data.get("version", 1) != 1:
        raise CatalogError(f"{where}: unsupported catalogue version {data.get('version')!r} (expected 1)")

    families = data.get("families") or {}
    if not isinstance(families, dict):
        raise CatalogError(f"{where}: 'families' must map a tag to its meaning")
    for tag, meaning in families.items():
        _check_id(tag, f"{where}: family")
        _text(meaning, f"{where}: families.{tag}")

    raw_concepts = data.get("concepts")
    if not isinstance(raw_concepts, list) or not raw_concepts:
        raise CatalogError(f"{where}: 'concepts' must be a non-empty list")
    concepts: dict[str, Concept] = {}
    for i, rc in enumerate(raw_concepts):
        c = _parse_concept(rc, f"{where}: concepts[{i}]", families)
        if c.id in concepts:
            raise CatalogError(f"{where}: concepts[{i}]: duplicate concept id {c.id!r}")
        concepts[c.id] = c

    raw_datasets = data.get("datasets")
    if not isinstance(raw_datasets, dict) or not raw_datasets:
        raise CatalogError(f"{where}: 'datasets' must be a non-empty mapping of dataset name -> classes")
    classes: dict[str, list[CatalogClass]] = {}
    styles: dict[str, list[Style]] = {}
    for name, rd in raw_datasets.items():
        _check_id(name, f"{where}: dataset")
        classes[name], styles[name] = _parse_dataset(name, rd, f"{where}: datasets.{name}", concepts)
    used = {cid for cls in classes.values() for c in cls for cid in c.concepts}
    unused = [cid for cid in concepts if cid not in used]
    if unused:
        raise CatalogError(f"{where}: concepts no class uses: {unused}")
    return Catalog(concepts, classes, {d: s for d, s in styles.items() if s}, families,
                   Path(path))


def _parse_concept(rc: Any, where: str, families: Mapping[str, str]) -> Concept:
    if not isinstance(rc, dict):
        raise CatalogError(f"{where}: expected a mapping")
    _no_unknown_keys(rc, _CONCEPT_KEYS, where)
    cid = rc.get("id")
    _check_id(cid, f"{where}: concept")
    where = f"{where} ({cid})"
    fams = _text_list(rc.get("families", []), f"{where}: families", allow_empty=True)
    for f in fams:
        if f not in families:
            raise CatalogError(f"{where}: unknown family {f!r}; declared: {sorted(families)}")
    return Concept(cid, _text(rc.get("name"), f"{where}: name"), _text(rc.get("complete"), f"{where}: complete"),
                   _text(rc.get("skeleton"), f"{where}: skeleton"),
                   _text_list(rc.get("paraphrases"), f"{where}: paraphrases"), fams)


def _parse_dataset(name: str, rd: Any, where: str, concepts: Mapping[str, Concept]
                   ) -> tuple[list[CatalogClass], list[Style]]:
    if not isinstance(rd, dict):
        raise CatalogError(f"{where}: expected a mapping with 'classes'")
    _no_unknown_keys(rd, _DATASET_KEYS, where)
    if "source" in rd:
        _text(rd["source"], f"{where}: source")
    raw = rd.get("classes")
    if not isinstance(raw, list) or not raw:
        raise CatalogError(f"{where}: 'classes' must be a non-empty list")
    styles = _parse_styles(rd.get("styles"), where)
    by_label: dict[int, CatalogClass] = {}
    keys: dict[str, int] = {}
    for i, rc in enumerate(raw):
        c = _parse_class(name, rc, f"{where}.classes[{i}]", concepts, needs_verb=bool(styles))
        if c.label in by_label:
            raise CatalogError(f"{where}.classes[{i}]: duplicate label {c.label} "
                               f"({by_label[c.label].name!r} and {c.name!r})")
        for k in (c.name, *c.aliases, *([c.source_id] if c.source_id else [])):
            if k in keys and keys[k] != c.label:
                raise CatalogError(f"{where}.classes[{i}]: name/alias/source id {k!r} already used by label {keys[k]}")
            keys[k] = c.label
        by_label[c.label] = c
    n = rd.get("num_classes")
    if n is not None and (not _is_int(n) or n < 1):
        raise CatalogError(f"{where}: num_classes must be a positive integer, got {n!r}")
    expected = n if n is not None else max(by_label) + 1
    missing = [k for k in range(expected) if k not in by_label]
    extra = sorted(k for k in by_label if k >= expected)
    if missing or extra:
        raise CatalogError(f"{where}: labels must be 0..{expected - 1}; missing classes {missing}"
                           + (f", labels beyond num_classes {extra}" if extra else ""))
    return [by_label[k] for k in range(expected)], styles


def _parse_class(dataset: str, rc: Any, where: str, concepts: Mapping[str, Concept], needs_verb: bool
                 ) -> CatalogClass:
    if not isinstance(rc, dict):
        raise CatalogError(f"{where}: expected a mapping")
    _no_unknown_keys(rc, _CLASS_KEYS, where)
    label = rc.get("label")
    if not _is_int(label) or label < 0:
        raise CatalogError(f"{where}: label must be a non-negative integer, got {label!r}")
    name = _text(rc.get("name"), f"{where}: name")
    where = f"{where} ({name!r})"
    cids = _text_list(rc.get("concepts"), f"{where}: concepts")
    if len(set(cids)) != len(cids):
        raise CatalogError(f"{where}: a concept is listed twice in {list(cids)}")
    for cid in cids:
        if cid not in concepts:
            raise CatalogError(f"{where}: unknown concept id {cid!r}")
    own = {k: _text(rc[k], f"{where}: {k}") for k in ("complete", "skeleton", "verb_phrase") if k in rc}
    if len(cids) > 1 and not ("complete" in own and "skeleton" in own):
        raise CatalogError(f"{where}: a class with several concepts {list(cids)} needs its own 'complete' "
                           "and 'skeleton' texts (its first text must describe the whole class)")
    if needs_verb and "verb_phrase" not in own:
        raise CatalogError(f"{where}: dataset has styles, so every class needs a 'verb_phrase'")
    source_id = rc.get("source_id")
    if source_id is not None:
        source_id = _text(str(source_id) if _is_int(source_id) else source_id, f"{where}: source_id")
    return CatalogClass(
        dataset=dataset, label=label, name=name, concepts=cids, source_id=source_id,
        aliases=_text_list(rc.get("aliases", []), f"{where}: aliases", allow_empty=True),
        own_complete=own.get("complete"), own_skeleton=own.get("skeleton"),
        own_paraphrases=_text_list(rc.get("paraphrases", []), f"{where}: paraphrases", allow_empty=True),
        verb_phrase=own.get("verb_phrase"), concept_objs=tuple(concepts[c] for c in cids))


def _parse_styles(raw: Any, where: str) -> list[Style]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not raw:
        raise CatalogError(f"{where}: 'styles' must be a non-empty list")
    out: dict[int, Style] = {}
    for i, rs in enumerate(raw):
        w = f"{where}.styles[{i}]"
        if not isinstance(rs, dict):
            raise CatalogError(f"{w}: expected a mapping")
        _no_unknown_keys(rs, _STYLE_KEYS, w)
        label = rs.get("label")
        if not _is_int(label) or label < 0:
            raise CatalogError(f"{w}: label must be a non-negative integer, got {label!r}")
        if label in out:
            raise CatalogError(f"{w}: duplicate style label {label}")
        name = _text(rs.get("name"), f"{w}: name")
        if any(s.name == name for s in out.values()):
            raise CatalogError(f"{w}: duplicate style name {name!r}")
        out[label] = Style(label, name, _text(rs.get("adverbial"), f"{w}: adverbial"),
                           _text_list(rs.get("alternatives", []), f"{w}: alternatives", allow_empty=True))
    missing = [k for k in range(max(out) + 1) if k not in out]
    if missing:
        raise CatalogError(f"{where}: style labels must be 0..{max(out)}; missing {missing}")
    return [out[k] for k in range(len(out))]


# -------------------------------------------------------------------- small helpers
def _check_kind(kind: str) -> None:
    if kind not in TEXT_KINDS:
        raise CatalogError(f"unknown text kind {kind!r}; known: {list(TEXT_KINDS)}")


def _check_id(value: Any, what: str) -> None:
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise CatalogError(f"{what} id {value!r} is not snake_case (lower-case letters, digits, '_')")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(f"{where}: expected a non-empty text, got {value!r}")
    return value.strip()


def _text_list(value: Any, where: str, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or (not value and not allow_empty):
        raise CatalogError(f"{where}: expected a {'' if allow_empty else 'non-empty '}list of texts, got {value!r}")
    return tuple(_text(v, f"{where}[{i}]") for i, v in enumerate(value))


def _no_unknown_keys(d: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(map(str, d)) - known)
    if unknown:
        raise CatalogError(f"{where}: unknown keys {unknown}; allowed: {sorted(known)}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _as_index(v: Any) -> int | None:
    """``v`` as a list index (Python or numpy integers), or None; booleans are not labels."""
    if isinstance(v, bool):
        return None
    try:
        return operator.index(v)
    except TypeError:
        return None


def _strip_prefix(name: str) -> str:
    """Bandai cfg labels repeat the dataset name: ``dataset-1_walk`` -> ``walk``."""
    return name.split("_", 1)[1] if name.startswith("dataset-1_") else name


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
