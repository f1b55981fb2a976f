"""Multi-source protocols (``config/protocols.yaml``): which sources train, which test, and
which classes are seen or unseen once concepts are matched across sources.

The rule that keeps "unseen" unseen: a training class is dropped when ANY of its concepts is
a test concept of a zero-shot task, in every source (a SmartFallMM "sit / stand" trial must
not teach "stand up" when UTD's "sit to stand" is the unseen class).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol as _Protocol

from pgfa_models.config import ConfigError, read_yaml

from .config_files import config_path
from .corpus import SOURCES

PROTOCOLS_FILE = "protocols.yaml"


class ProtocolError(ConfigError):
    """The protocols file is invalid or a protocol name is unknown."""


class _Class(_Protocol):
    label: int
    name: str
    concepts: tuple[str, ...]


class Catalog(_Protocol):
    def classes(self, dataset: str) -> list[_Class]: ...


@dataclass(frozen=True)
class Protocol:
    name: str
    train: tuple[str, ...]
    test: str | None = None
    unseen_split: str | None = None
    train_filter: dict = field(default_factory=dict)
    test_filter: dict = field(default_factory=dict)


def _filter(data: Any, where: str) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ProtocolError(f"{where}: a filter maps a trial field to a list of allowed values")
    return {str(k): tuple(v) for k, v in data.items()}


def load_protocols(path: str | Path | None = None) -> dict[str, Protocol]:
    path = Path(path) if path is not None else config_path(PROTOCOLS_FILE, ProtocolError)
    data = read_yaml(path, ProtocolError, "protocols file")
    if not isinstance(data, dict) or not isinstance(data.get("protocols"), dict):
        raise ProtocolError(f"{path}: expected a mapping with a 'protocols' mapping")
    out = {}
    for name, p in data["protocols"].items():
        where = f"{path}: protocol {name}"
        if not isinstance(p, dict) or not isinstance(p.get("train"), list) or not p["train"]:
            raise ProtocolError(f"{where}: needs a non-empty 'train' list of sources")
        unknown = set(p) - {"train", "test", "unseen_split", "train_filter", "test_filter"}
        if unknown:
            raise ProtocolError(f"{where}: unknown keys {sorted(unknown)}")
        for s in list(p["train"]) + ([p["test"]] if p.get("test") else []):
            if s not in SOURCES:
                raise ProtocolError(f"{where}: unknown source {s!r}; known: {sorted(SOURCES)}")
        if p.get("unseen_split") and not p.get("test"):
            raise ProtocolError(f"{where}: unseen_split needs a test source")
        out[str(name)] = Protocol(str(name), tuple(p["train"]), p.get("test"), p.get("unseen_split"),
                                  _filter(p.get("train_filter"), where), _filter(p.get("test_filter"), where))
    return out


def is_protocol(name: str) -> bool:
    try:
        return name in load_protocols()
    except (ConfigError, OSError):
        return False


def get_protocol(name: str) -> Protocol:
    protos = load_protocols()
    if name not in protos:
        raise ProtocolError(f"unknown protocol {name!r}; known: {sorted(protos)}")
    return protos[name]


@dataclass(frozen=True)
class Task:
    """One evaluation task: the test source's classes, among which predictions are made."""

    name: str                  # "seen_concept" | "zero_shot" | "unseen_split"
    source: str
    labels: tuple[int, ...]    # source class ids


@dataclass(frozen=True)
class Resolved:
    """Per training source the class labels it may train on; the evaluation tasks."""

    protocol: Protocol
    train_labels: dict[str, tuple[int, ...]]
    tasks: tuple[Task, ...]
    excluded_concepts: tuple[str, ...]


def resolve(protocol: Protocol, catalog: Catalog) -> Resolved:
    """Apply the concept rule to the catalogue: trainable labels per source and test tasks."""
    excluded: set[str] = set()
    tasks: list[Task] = []
    if protocol.unseen_split:
        from .splits import get_split

        split = get_split(protocol.unseen_split)
        if split.dataset != protocol.test:
            raise ProtocolError(f"{protocol.name}: split {split.name} is of {split.dataset}, not {protocol.test}")
        by_label = {c.label: c for c in catalog.classes(protocol.test)}
        for k in split.unseen:
            excluded.update(by_label[k].concepts)
        tasks.append(Task("unseen_split", protocol.test, tuple(sorted(split.unseen))))
    train_labels = {s: tuple(c.label for c in catalog.classes(s) if not set(c.concepts) & excluded)
                    for s in protocol.train}
    if protocol.test and not protocol.unseen_split:
        trained = {k for s in protocol.train for c in catalog.classes(s) if c.label in train_labels[s]
                   for k in c.concepts}
        seen = tuple(c.label for c in catalog.classes(protocol.test) if set(c.concepts) <= trained)
        novel = tuple(c.label for c in catalog.classes(protocol.test) if not set(c.concepts) & trained)
        if len(seen) >= 2:  # a one-class task cannot be wrong
            tasks.append(Task("seen_concept", protocol.test, seen))
        if len(novel) >= 2:
            tasks.append(Task("zero_shot", protocol.test, novel))
    return Resolved(protocol, train_labels, tuple(tasks), tuple(sorted(excluded)))


def matches(meta: dict, flt: dict) -> bool:
    """A trial passes a filter on every field it has (a UTD trial has no SmartFallMM participant)."""
    return all(meta[k] in allowed for k, allowed in flt.items() if k in meta)


def check_filter_fields(metas, flt: dict, where: str) -> None:
    """Refuse a filter field that no trial carries: it would pass every trial silently, so a
    held-out participant would be trained on (as a stale corpus cache without that field once did)."""
    have = {k for m in metas for k in m}
    missing = sorted(set(flt) - have)
    if missing:
        raise ProtocolError(f"{where}: filter field(s) {missing} are on no trial (fields there: {sorted(have)}); "
                            "a corpus cache from an older version? delete ~/.cache/pgfa_ros/clips")


def training_classes(resolved: Resolved, catalog: Catalog) -> list[tuple[tuple[str, ...], list[tuple[str, int]]]]:
    """Training classes: the trainable (source, label) classes grouped by identical concept sets,
    so one action seen in three datasets is one class with one (ensembled) text feature.
    Ordered by first appearance (source order, then label)."""
    groups: dict[tuple[str, ...], list[tuple[str, int]]] = {}
    for s in resolved.protocol.train:
        for c in catalog.classes(s):
            if c.label in resolved.train_labels[s]:
                groups.setdefault(tuple(sorted(c.concepts)), []).append((s, c.label))
    return list(groups.items())


__all__ = ["Protocol", "ProtocolError", "Resolved", "Task", "get_protocol", "is_protocol", "load_protocols",
           "check_filter_fields", "matches", "resolve", "training_classes"]
