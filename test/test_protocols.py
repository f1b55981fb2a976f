"""Protocols: the concept rule keeps unseen concepts out of every training source."""
from dataclasses import dataclass

import pytest

from training.protocols import (Protocol, ProtocolError, get_protocol, load_protocols, resolve,
                                training_classes)


@dataclass(frozen=True)
class C:
    label: int
    name: str
    concepts: tuple


class FakeCatalog:
    data = {
        "utd_mhad": [C(0, "wave", ("wave",)), C(1, "sit to stand", ("stand_up",)), C(2, "stand to sit", ("sit_down",)),
                     C(3, "clap", ("clap",))],
        "smartfallmm": [C(0, "sit / stand", ("sit_down", "stand_up")), C(1, "waving hand", ("wave",)),
                        C(2, "back fall", ("fall_back",))],
        "nw_ucla": [C(0, "stand up", ("stand_up",)), C(1, "carry", ("carry",)), C(2, "drop trash", ("drop",)),
                    C(3, "sit down", ("sit_down",))],
    }

    def classes(self, dataset):
        return self.data[dataset]


def test_unseen_concepts_are_removed_from_every_source(tmp_path, monkeypatch):
    from training import splits

    p = Protocol("t", ("utd_mhad", "smartfallmm", "nw_ucla"), "utd_mhad", "utd_mhad/U1")
    monkeypatch.setattr(splits, "get_split", lambda name: splits.Split(name, "utd_mhad", 4, (1,)))
    r = resolve(p, FakeCatalog())
    assert r.excluded_concepts == ("stand_up",)
    assert r.train_labels["utd_mhad"] == (0, 2, 3)
    assert r.train_labels["smartfallmm"] == (1, 2)      # "sit / stand" teaches stand_up: dropped
    assert r.train_labels["nw_ucla"] == (1, 2, 3)
    assert [t.name for t in r.tasks] == ["unseen_split"] and r.tasks[0].labels == (1,)
    groups = dict(training_classes(r, FakeCatalog()))
    assert groups[("wave",)] == [("utd_mhad", 0), ("smartfallmm", 1)]  # one class across sources
    assert groups[("sit_down",)] == [("utd_mhad", 2), ("nw_ucla", 3)]


def test_cross_source_tasks_split_seen_and_novel_concepts():
    p = Protocol("x", ("utd_mhad", "smartfallmm"), "nw_ucla")
    r = resolve(p, FakeCatalog())
    tasks = {t.name: t.labels for t in r.tasks}
    assert tasks["seen_concept"] == (0, 3)
    assert tasks["zero_shot"] == (1, 2)
    assert r.excluded_concepts == ()


def test_repository_protocols_load_and_name_known_sources():
    protos = load_protocols()
    assert {"xsource/nw_ucla", "multi/U1", "utd/U4", "nw_ucla/xview", "all"} <= set(protos)
    x = get_protocol("nw_ucla/xview")
    assert x.train_filter == {"view": (1, 2)} and x.test_filter == {"view": (3,)}
    with pytest.raises(ProtocolError):
        get_protocol("nope")


@pytest.mark.parametrize("body", ["protocols: {a: {train: []}}", "protocols: {a: {train: [kinect]}}",
                                  "protocols: {a: {train: [utd_mhad], unseen_split: utd_mhad/U1}}",
                                  "protocols: {a: {train: [utd_mhad], colour: red}}", "nothing: 1"])
def test_invalid_protocol_files_are_refused(tmp_path, body):
    f = tmp_path / "p.yaml"
    f.write_text(body)
    with pytest.raises(ProtocolError):
        load_protocols(f)
