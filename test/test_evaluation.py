import numpy as np
import pytest

from pgfa_models.alignment import PrototypeBank, l2_normalise, transductive_predict
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
