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
                "complete": ["A person waves one hand.", "A hand moves side to side."], "skeleton": []}.get(kind, [])


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
    assert "Cross-source means" not in md  # no cross-source run
    runs |= {"x_s0": {"protocol": "xsource/bandai", "trained_on": "ensemble", "tasks": [{"task": "validation", "acc": acc(0.4)}]},
             "x_s1": {"protocol": "xsource/bandai", "trained_on": "ensemble", "tasks": [{"task": "validation", "acc": acc(0.6)}]},
             "y_s0": {"protocol": "xsource/nw_ucla", "trained_on": "ensemble", "tasks": [{"task": "validation", "acc": acc(0.8)}]}}
    md = q.write_markdown({"command": "cmd", "date": "d", "machine": "m", "runs": runs})
    assert "| validation | ensemble | 2 | 65.0 |" in md  # (50 + 80) / 2: sources weigh alike


class _Other:
    def texts(self, kind):
        return {"name": ["hand wave"], "complete": ["A person waves one hand."], "skeleton": ["The wrist swings."],
                "paraphrases": []}.get(kind, [])


def test_a_training_class_of_several_sources_takes_its_first_members_single_texts_and_the_union_of_sets():
    q = _mod()
    assert q._query_sets([_Cls(), _Other()], "name", None) == [["wave"]]
    assert q._query_sets([_Cls(), _Other()], "complete", None) == [
        ["A person waves one hand.", "A hand moves side to side."]]  # duplicates dropped
    assert q._query_sets([_Other(), _Cls()], "skeleton", None) == [["The wrist swings."]]
    assert q._query_sets([_Other()], "one_paraphrase", np.random.default_rng(0)) == [["hand wave"]]


def test_scores_are_per_query_kind_and_a_run_without_a_folder_keeps_its_recorded_rows(tmp_path, monkeypatch):
    q = _mod()
    # two classes whose name vectors point along x and y: trials along x are class 0
    vec = {"wave": [1, 0, 0], "hand wave": [0, 1, 0]}
    encode = lambda ts: np.array([vec.get(t, [0, 0, 1]) for t in ts], np.float32)  # noqa: E731
    tf = np.array([[1, 0, 0], [0, 1, 0], [0.9, 0.1, 0]], np.float32)
    acc = q._score(tf, np.array([0, 1, 0]), [_Cls(), _Other()], ["a", "b"], encode, None)
    assert acc["name"] == 1.0 and set(acc) == set(q.QUERIES)
    monkeypatch.setattr(q, "HERE", tmp_path)
    old = {"protocol": "utd/V1", "trained_on": "ensemble", "tasks": [{"task": "unseen_split", "acc": {k: 0.4 for k in q.QUERIES}}]}
    (tmp_path / "query_texts.json").write_text(__import__("json").dumps({"runs": {"gone_s0": old}}))
    assert q.main(["--runs", str(tmp_path / "gone_s0")]) == 0  # its folder is gone: the row stays
    assert "| utd/V1 | unseen_split | ensemble | 1 | 40.0 |" in (tmp_path / "query_texts.md").read_text()
    (tmp_path / "query_texts.md").unlink()
    assert q.main(["--markdown"]) == 0 and "| 40.0 |" in (tmp_path / "query_texts.md").read_text()
    (tmp_path / "query_texts.json").unlink()
    assert q.main(["--markdown"]) == 1


def test_generalized_table_reads_the_default_margin_for_both_label_styles():
    q = _mod()
    from pgfa_ros.recognizer_params import PARAMS

    m = PARAMS["seen_margin"].default
    margins = sorted({0.0, m, 0.3})
    curve = lambda new, best: {"margins": margins, "unseen_acc": [new if g == m else 0.0 for g in margins],  # noqa: E731
                               "seen_acc": [0.5] * len(margins),
                               "harmonic": [0.6 if g == best else 0.1 for g in margins]}
    run = {"protocol": "xsource/nw_ucla", "trained_on": "ensemble",
           "tasks": [{"task": "zero_shot", "acc": {k: 0.3 for k in q.QUERIES},
                      "generalized": {"ensemble": curve(0.4, m), "name+description": curve(0.2, 0.3)}}]}
    md = q.write_markdown({"command": "c", "date": "d", "machine": "m", "runs": {"r_s0": run}})
    assert f"| xsource/nw_ucla | zero_shot | ensemble | 1 | 40.0 / 20.0 | 50.0 / 50.0 | 60.0 / 10.0 | 0.3 (60.0) |" in md
