"""benchmarks/camera/label_sets.py: a label subset decided from one run's scores is what a run
with that subset labels, and the scoring of the video's ground-truth windows."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("camera_label_sets", REPO / "benchmarks" / "camera" / "label_sets.py")
ls = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ls)


def _demo(windows):
    """A pgfa-demo JSON: ``windows`` = (body, start, end, {label: score})."""
    labels = ["walk", "kick", "jumping jacks", "raising both arms"]
    return {"labels": labels, "zero_shot": ["jumping jacks", "raising both arms"],
            "results": [{"body_id": b, "window": {"start": s, "end": e},
                         "topk": [{"label": n, "score": sc[n]} for n in labels]} for b, s, e, sc in windows]}


def _sc(walk=0.0, kick=0.0, jj=0.0, raise_=0.0):
    return {"walk": walk, "kick": kick, "jumping jacks": jj, "raising both arms": raise_}


def test_people_by_first_appearance_and_scored_windows():
    demo = _demo([(7, 100.0, 101.5, _sc(kick=0.6, jj=0.3)), (3, 102.0, 103.5, _sc(walk=0.9)),
                  (7, 102.1, 103.6, _sc(jj=0.5, kick=0.4)), (7, 104.0, 105.5, _sc(walk=0.8))])
    labels, scores, person, end = ls.load_windows(demo)
    assert person == ["man", "woman", "man", "man"]  # body 7 is in view first
    assert np.allclose(end, [1.5, 3.5, 3.6, 5.5])
    m = ls.scored_mask(person, end)
    assert m["man"].tolist() == [True, False, False, False]  # his windows ending by 3.5 s only
    assert m["woman"].tolist() == [False, True, False, False]
    full = ls.score_subset(scores, labels, labels, m, {"jumping jacks", "raising both arms"})
    assert full == {"man": 0.0, "woman": 1.0, "woman_zero_shot": 0.0}
    small = ls.score_subset(scores, labels, ["walk", "jumping jacks"], m, {"jumping jacks"})
    assert small["man"] == 1.0  # without "kick" the sentence wins
    assert ls.competitors(scores, labels, m) == {"kick": 1}


def test_refuses_a_run_that_did_not_score_every_label():
    demo = _demo([(0, 0.0, 1.5, _sc(walk=1.0)), (1, 1.0, 2.5, _sc(walk=1.0))])
    demo["results"][0]["topk"] = demo["results"][0]["topk"][:2]
    with pytest.raises(ValueError, match="--top-k"):
        ls.load_windows(demo)
    with pytest.raises(ValueError, match="two people"):
        ls.load_windows(_demo([(0, 0.0, 1.5, _sc(walk=1.0))]))


def test_random_subsets_always_hold_the_anchor_labels():
    rng = np.random.default_rng(1)
    labels = ["walk", "jumping jacks"] + [f"c{i}" for i in range(10)]
    scores = rng.random((6, len(labels)))
    person = ["man"] * 3 + ["woman"] * 3
    m = ls.scored_mask(person, np.array([1.5, 2.0, 9.0, 1.5, 2.0, 3.0]))
    rows = ls.random_subsets(scores, labels, m, {"jumping jacks"}, (2, 5, 12, 40), draws=20, seed=0)
    assert [r["size"] for r in rows] == [2, 5, 12]  # a size above the pool is skipped
    two = rows[0]  # the two anchors only: every draw is the same set
    assert two["man"]["p10"] == two["man"]["p90"]
    assert 0.0 <= rows[1]["both_at_least_80"] <= 1.0


@pytest.mark.slow
@pytest.mark.ros
def test_subset_decided_from_scores_matches_a_run_with_that_subset(tmp_path):
    """The premise of the script, on a real slice of the video: the packaged label set's labels
    equal the pool run's labels re-decided within that set."""
    pool = ls.pool_file(REPO / "pgfa_ros" / "assets" / "demo_labels.yaml", tmp_path)
    got = {}
    for name, labels, k in (("pool", pool, "1000"), ("demo", REPO / "pgfa_ros" / "assets" / "demo_labels.yaml", "1")):
        out = tmp_path / f"{name}.json"
        r = subprocess.run([sys.executable, "-m", "pgfa_ros.demo", "--labels", str(labels), "--top-k", k,
                            "--max-frames", "75", "--window", "30", "--stride", "10", "--no-progress",
                            "--json", str(out), "--out", str(tmp_path / f"{name}.gif")],
                           capture_output=True, text=True, timeout=500, cwd=REPO)
        assert r.returncode == 0, r.stdout + r.stderr
        got[name] = json.loads(out.read_text())
    pool_run, demo_run = got["pool"], got["demo"]
    assert len(pool_run["labels"]) > len(demo_run["labels"]) >= 3
    assert len(pool_run["results"]) == len(demo_run["results"]) > 0
    for a, b in zip(pool_run["results"], demo_run["results"]):
        sc = {t["label"]: t["score"] for t in a["topk"]}
        assert len(sc) == len(pool_run["labels"])
        assert max(demo_run["labels"], key=sc.__getitem__) == b["label"]
