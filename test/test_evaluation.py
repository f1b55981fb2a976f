import numpy as np
import pytest

from pgfa_models.alignment import l2_normalise, transductive_predict
from pgfa_models.bank import PrototypeBank
from pgfa_models.evaluation import predict_mode


@pytest.fixture
def feats():
    rng = np.random.default_rng(0)
    w = l2_normalise(rng.normal(size=(3, 8)))
    v = l2_normalise(np.repeat(w, 6, axis=0) + 0.8 * rng.normal(size=(18, 8)))
    return v, w


def test_modes_match_the_alignment_functions(feats):
    v, w = feats
    names = ["a", "b", "c"]
    assert np.array_equal(predict_mode("text", v, w, names).pred, (v @ w.T).argmax(1))
    p = predict_mode("transductive", v, w, names, alpha=0.5)
    assert np.array_equal(p.pred, transductive_predict(v, w, 0.5).final) and p.extra["alpha"] == 0.5
    b = predict_mode("bank", v, w, names, bank_kwargs={"capacity": 4, "min_support": 2})
    assert np.array_equal(b.pred, PrototypeBank(w, names, capacity=4, min_support=2).update(v).labels)
    assert b.extra["bank"]["capacity"] == 4


class _OnesEncoder:
    def encode(self, texts):
        return np.ones((len(texts), 8), np.float32)


def test_a_penalty_is_the_live_recognizers_seen_margin(feats):
    """pgfa-bag eval's margin on trained classes ranks exactly as Recognizer(seen_margin=...)."""
    from pgfa_models.recognition import LabelSet, Recognizer

    v, w = feats
    names = ["a", "b", "c"]
    trained = np.array([True, True, False])
    ls = LabelSet(_OnesEncoder(), names)  # features replaced below by the fixture's text features
    ls.names, ls.features, ls.trained = names, w, trained
    for margin in (0.0, 0.1, 0.3):
        live = Recognizer(lambda x: x, ls, tau=0.05, seen_margin=margin).classify_features(v)
        pen = margin * trained
        assert [names.index(p.label) for p in live] == predict_mode("text", v, w, names, penalty=pen).pred.tolist()
    plain = predict_mode("text", v, w, names).pred
    lifted = predict_mode("text", v, w, names, penalty=0.3 * trained).pred
    assert (lifted == 2).sum() > (plain == 2).sum()
    bank = predict_mode("bank", v, w, names, bank_kwargs={"capacity": 4, "min_support": 2}, penalty=0.3 * trained)
    res = PrototypeBank(w, names, capacity=4, min_support=2).update(v)
    assert np.array_equal(bank.pred, np.argmax(res.scores - 0.3 * trained, axis=1))
    with pytest.raises(ValueError, match="text and bank"):
        predict_mode("transductive", v, w, names, penalty=0.3 * trained)


def test_unknown_mode(feats):
    with pytest.raises(ValueError, match="unknown mode 'x'"):
        predict_mode("x", *feats, ["a", "b", "c"])


# ----------------------------------------------------------------------------- evaluate()
class _Catalog:
    """Four classes; texts tagged with the description kind so the test sees which was used."""

    names = ["wave", "clap", "sit down", "jump"]

    def class_names(self, dataset, num_classes=None):
        return self.names[:num_classes]

    def load_descriptions(self, dataset, kind="complete", classes=None, num_classes=None):
        self.kind = kind
        return [f"{self.names[c]} ({kind})" for c in (classes if classes is not None else range(4))]


class _Clips:
    def __init__(self, n=12, seed=0):
        rng = np.random.default_rng(seed)
        self.x = rng.normal(size=(n, 3, 50, 25, 1)).astype(np.float32)
        self.y = np.arange(n) % 4
        self.names = [f"s{(7 * i) % n:02d}" for i in range(n)]  # not in name order
        self.rejected = {"too_short": 2}


@pytest.fixture
def tiny_checkpoint(tmp_path):
    from recognizer_helpers import make_checkpoint

    return make_checkpoint(tmp_path / "m.safetensors", labels=["wave", "clap"])


def test_evaluate_scores_only_the_target_classes_in_name_order(tiny_checkpoint):
    from pgfa_models.evaluation import EvalClasses, evaluate

    clips, cat = _Clips(), _Catalog()
    target = EvalClasses("toy/U", "toy", 4, (3, 2))  # the order defines the text-feature order
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # trained on other classes: no not-zero-shot warning
        rep = evaluate(tiny_checkpoint, target, cat, lambda meta: clips, ["text", "transductive", "bank"],
                       alpha=0.5, alphas=[0.5, 1.0], descriptions="skeleton")
    assert cat.kind == "skeleton" and rep["split"] == "toy/U" and rep["unseen_classes"] == [3, 2]
    assert rep["n"] == 6 and rep["rejected"] == {"too_short": 2} and "not_zero_shot" not in rep
    text, trans, bank = rep["results"]
    names = [p["name"] for p in text["predictions"]]
    assert names == sorted(names) and {p["label"] for p in text["predictions"]} == {2, 3}
    assert list(text["per_class"]) == ["jump", "sit down"]
    data = rep["_data"]
    pred = (data.features @ data.text_features.T).argmax(1)
    assert text["accuracy"] == pytest.approx(float((pred == data.labels).mean()))
    assert trans["alpha"] == 0.5 and trans["alpha_sweep"]["0.50"] == pytest.approx(trans["accuracy"])
    assert sum(v["predicted"] for v in bank["per_class"].values()) == 6


def test_evaluate_flags_trained_classes_and_rejects_bad_requests(tiny_checkpoint):
    from pgfa_models.evaluation import EvalClasses, evaluate

    clips, cat = _Clips(), _Catalog()
    with pytest.warns(UserWarning, match="not a zero-shot result"):
        rep = evaluate(tiny_checkpoint, EvalClasses("toy/seen", "toy", 4, (0, 1)), cat, lambda m: clips, ["text"])
    assert rep["not_zero_shot"] == ["clap", "wave"]
    with pytest.raises(ValueError, match="unknown mode"):
        evaluate(tiny_checkpoint, EvalClasses("t", "toy", 4, (0,)), cat, lambda m: clips, ["nope"])
    with pytest.raises(ValueError, match="no unseen classes"):
        evaluate(tiny_checkpoint, EvalClasses("t", "toy", 4, ()), cat, lambda m: clips, ["text"])
    with pytest.raises(ValueError, match="two_stage needs"):
        evaluate(tiny_checkpoint, EvalClasses("t", "toy", 4, (2, 3)), cat, lambda m: clips, ["two_stage"])


# ----------------------------------------------------------------------------- hub-aware modes
def _hub_case():
    """12 clips, 3 classes; text 0 is a hub that plain argmax sends every clip to (see
    test_assignment.py for the cosines by hand)."""
    from test_assignment import FEATS, LABELS, TEXT

    return l2_normalise(FEATS), l2_normalise(TEXT), LABELS


def test_hub_aware_modes_are_selectable_and_match_the_assignment_functions():
    from pgfa_models import assignment
    from pgfa_models.evaluation import HUB_AWARE_MODES, MODES, PAPER_MODES, PREDICTION_MODES

    assert PAPER_MODES == ("text", "transductive", "bank") and set(HUB_AWARE_MODES) <= set(PREDICTION_MODES)
    assert set(PREDICTION_MODES) <= set(MODES) and "two_stage" in MODES
    v, w, y = _hub_case()
    names = ["a", "b", "c"]
    s = v @ w.T
    assert np.array_equal(predict_mode("csls", v, w, names, assign_kwargs={"csls_k": 3}).pred,
                          assignment.csls(s, 3).argmax(1))
    bal = predict_mode("balanced", v, w, names)
    assert np.array_equal(bal.pred, y) and bal.extra["sinkhorn"]["converged"]
    tb = predict_mode("transductive_balanced", v, w, names, alpha=0.9)
    assert np.array_equal(tb.pred, y) and np.array_equal(tb.extra["initial"], y) and tb.extra["alpha"] == 0.9
    assert np.array_equal(predict_mode("transductive_csls", v, w, names, 0.5, assign_kwargs={"csls_k": 2}).pred,
                          assignment.transductive_csls(v, w, 0.5, 2).final)
    cb = predict_mode("cluster_balanced", v, w, names, assign_kwargs={"knn_k": 2})
    assert np.array_equal(cb.pred, assignment.cluster_balanced(v, w, 0.9, 2)[0].final) and cb.extra["knn_k"] == 2
    from pgfa_models.assignment import HubAwareBank

    bc = predict_mode("bank_csls", v, w, names, bank_kwargs={"capacity": 4, "min_support": 2},
                      assign_kwargs={"csls_k": 3})
    ref = HubAwareBank(w, names, 3, capacity=4, min_support=2).update(v)
    assert np.array_equal(bc.pred, ref.labels) and bc.extra["csls_k"] == 3 and bc.extra["bank"]["capacity"] == 4
    # the paper's modes are untouched by the options
    assert np.array_equal(predict_mode("transductive", v, w, names, 0.9, assign_kwargs={"epsilon": 9}).pred,
                          transductive_predict(v, w, 0.9).final)
    with pytest.raises(ValueError, match="unknown assignment option"):
        predict_mode("balanced", v, w, names, assign_kwargs={"eps": 0.1})


def test_parse_assign_options_and_groups_from_pattern():
    from pgfa_models.evaluation import groups_from_pattern, parse_assign_options

    assert parse_assign_options("epsilon=0.1, csls_k=5") == {"epsilon": 0.1, "csls_k": 5}
    assert parse_assign_options("") == {}
    for bad in ("eps=1", "epsilon", "csls_k=x"):
        with pytest.raises(ValueError, match="assignment option"):
            parse_assign_options(bad)
    g = groups_from_pattern(r"_s(\d+)_")
    assert g("a3_s7_t2") == "7" and g("nothing") is None
    assert groups_from_pattern(r"s\d")("a1_s2_t1") == "s2"
    with pytest.raises(ValueError, match="regular expression"):
        groups_from_pattern("(")


def _data(v, w, y, names=None, groups=None):
    from pgfa_models.evaluation import EvalData

    names = names or [f"c{i:02d}" for i in range(len(y))]
    return EvalData(v, w, np.asarray(y), names, ["a", "b", "c"], [0, 1, 2], {}, groups)


def test_every_result_has_hub_diagnostics_and_two_pass_modes_their_first_pass():
    from pgfa_models.evaluation import hub_stats, run_modes

    v, w, y = _hub_case()
    res = {r["mode"]: r for r in run_modes(_data(v, w, y), ["text", "transductive", "transductive_balanced",
                                                              "balanced", "csls"], alpha=0.9, alphas=[0.5])}
    text = res["text"]
    assert text["hub"]["max_ratio"] == pytest.approx(3.0) and text["hub"]["max_ratio_class"] == "a"
    assert text["hub"]["over_target"] == ["a"] and not text["hub"]["meets_target"]
    assert text["per_class"]["a"]["ratio"] == pytest.approx(3.0) and text["per_class"]["b"]["ratio"] == 0.0
    tb = res["transductive_balanced"]
    assert tb["accuracy"] == 1.0 and tb["hub"]["max_ratio"] == 1.0 and tb["hub"]["meets_target"]
    assert tb["initial_accuracy"] == 1.0 and set(tb["alpha_sweep"]) == {"0.50"} and "initial" not in tb
    assert res["transductive"]["initial_hub"]["max_ratio"] == pytest.approx(3.0)
    assert len(tb["predictions"]) == 12 and all(r["n"] == 12 for r in res.values())
    # a class predicted without any test clip is over the target whatever the ratios
    h = hub_stats([2, 1, 1], [2, 2, 0], ["x", "y", "z"])
    assert h["predicted_without_clips"] == ["z"] and h["over_target"] == ["z"] and h["max_ratio"] == 1.0
    assert hub_stats([0, 0], [0, 0], ["x", "y"])["max_ratio"] is None


def test_nn_ceiling_uses_groups_resolved_from_names():
    from pgfa_models.evaluation import nn_ceiling, resolve_groups

    f = l2_normalise(np.array([[1.0, 0.0], [1.0, 0.01], [0.95, 0.3], [0.6, 0.8]]))
    names = ["a1_s1_t1", "a1_s1_t2", "a2_s2_t1", "a1_s2_t2"]
    y = [0, 0, 1, 0]
    assert resolve_groups(lambda n: n.split("_")[1], names) == ["s1", "s1", "s2", "s2"]
    assert resolve_groups({"a1_s1_t1": 1}, names) == [1, None, None, None]
    with pytest.raises(ValueError, match="sample groups"):
        resolve_groups([1, 2], names)
    free = nn_ceiling(_data(f, np.eye(2), y, names))
    assert free == {"accuracy": 0.5, "scored": 4, "n": 4, "grouped": False, "groups": None}
    grouped = nn_ceiling(_data(f, np.eye(2), y, names, resolve_groups(lambda n: n.split("_")[1], names)))
    assert grouped["accuracy"] == 0.25 and grouped["grouped"] and grouped["groups"] == 2


def test_evaluate_runs_hub_aware_modes_and_reports_the_ceiling_with_groups(tiny_checkpoint, tmp_path):
    from pgfa_models import eval_report
    from pgfa_models.evaluation import EvalClasses, HUB_AWARE_MODES, evaluate

    clips, cat = _Clips(), _Catalog()
    target = EvalClasses("toy/U", "toy", 4, (3, 2))
    modes = ["text", "transductive", *HUB_AWARE_MODES]
    assert "bank_csls" in modes
    rep = evaluate(tiny_checkpoint, target, cat, lambda meta: clips, modes, alpha=0.5,
                   assign_kwargs={"csls_k": 2, "knn_k": 2}, groups=lambda name: int(name[1:]) % 2)
    assert [r["mode"] for r in rep["results"]] == modes
    assert rep["assignment"]["csls_k"] == 2 and rep["assignment"]["epsilon"] == 0.05
    c = rep["nn_ceiling"]
    assert c["grouped"] and c["groups"] == 2 and c["n"] == 6
    assert rep["_data"].groups == [int(n[1:]) % 2 for n in rep["_data"].names]
    for r in rep["results"]:
        assert len(r["predictions"]) == 6 and sum(v["predicted"] for v in r["per_class"].values()) == 6
        assert "max_ratio" in r["hub"]
    # groups aligned with the clips as given (before filtering and sorting) via a clips attribute
    clips.groups = [f"g{i % 3}" for i in range(len(clips.names))]
    rep2 = evaluate(tiny_checkpoint, target, cat, lambda meta: clips, ["text"])
    by_name = dict(zip(clips.names, clips.groups))
    assert rep2["_data"].groups == [by_name[n] for n in rep2["_data"].names]
    assert "assignment" not in rep2
    with pytest.raises(ValueError, match="unknown assignment option"):
        evaluate(tiny_checkpoint, target, cat, lambda meta: clips, ["text"], assign_kwargs={"k": 1})
    # the report shows the ceiling and the hub column
    files = eval_report.write_outputs(rep, tmp_path / "r.json", tmp_path / "r.md")
    md = files["markdown"].read_text()
    assert "nearest-neighbour ceiling" in md and "other groups only (2 groups)" in md
    assert "| mode | accuracy % | n | max pred/true | notes |" in md and "| transductive_balanced |" in md
    import json

    got = json.loads((tmp_path / "r.json").read_text())
    assert got["nn_ceiling"] == c and got["results"][2]["mode"] == "csls"


def test_trained_classes_sees_multi_source_members():
    """A multi-source checkpoint names concepts, not UTD labels: its members still flag leaks."""
    from types import SimpleNamespace

    from pgfa_models.evaluation import trained_classes

    meta = SimpleNamespace(labels=["clap", "wave"],
                           extra={"class_members": [[["utd_mhad", 3]], [["utd_mhad", 2], ["smartfallmm", 6]]]})
    assert trained_classes(meta, "utd_mhad", ["right hand wave", "two hand front clap", "bowling"], [2, 3, 11]) \
        == ["right hand wave", "two hand front clap"]
    assert trained_classes(meta, "nw_ucla", ["wave"], [0]) == ["wave"]  # by name
    assert trained_classes(SimpleNamespace(labels=[], extra={}), "utd_mhad", ["x"], [0]) == []
