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
