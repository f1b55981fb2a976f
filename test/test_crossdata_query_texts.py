"""benchmarks/crossdata/query_texts.py: a class is queried by one short phrase per draw, and the
table averages the runs of one protocol, task and training kind (never across kinds)."""
import importlib.util
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _mod():
    spec = importlib.util.spec_from_file_location("crossdata_query_texts",
                                                  REPO / "benchmarks" / "crossdata" / "query_texts.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


class _Cls:
    def texts(self, kind):
        return {"paraphrases": ["waving hello", "a hand wave", " "], "name": ["wave", "waving"],
                "complete": ["A person waves one hand.", "A hand moves side to side."], "skeleton": []}[kind]


def test_user_queries_are_single_texts_and_project_kinds_whole_sets():
    q = _mod()
    sets = q._query_sets(_Cls(), "one_paraphrase", np.random.default_rng(0))
    assert len(sets) == 10 and all(len(s) == 1 and s[0] in ("waving hello", "a hand wave") for s in sets)
    assert q._query_sets(_Cls(), "name", np.random.default_rng(0)) == [["wave"]]
    assert q._query_sets(_Cls(), "name+description", None) == [["wave", "A person waves one hand."]]
    assert q._query_sets(_Cls(), "complete", None) == [["A person waves one hand.", "A hand moves side to side."]]
    assert q._query_sets(_Cls(), "skeleton", None) == [["wave"]]  # no text of that kind: the name


def test_markdown_groups_runs_by_protocol_task_and_training_kind():
    q = _mod()
    acc = lambda a: {k: a for k in q.QUERIES}  # noqa: E731
    runs = {"a_s0": {"protocol": "utd/V1", "trained_on": "skeleton", "tasks": [{"task": "unseen_split", "acc": acc(0.5)}]},
            "a_s1": {"protocol": "utd/V1", "trained_on": "skeleton", "tasks": [{"task": "unseen_split", "acc": acc(0.7)}]},
            "b_s0": {"protocol": "utd/V1", "trained_on": "ensemble", "tasks": [{"task": "unseen_split", "acc": acc(0.2)}]}}
    md = q.write_markdown({"command": "cmd", "date": "d", "machine": "m", "runs": runs})
    assert "| utd/V1 | unseen_split | skeleton | 2 | 60.0 ± 14.1 |" in md
    assert "| utd/V1 | unseen_split | ensemble | 1 | 20.0 |" in md
