"""Tests for pgfa_models.alignment: exact eq. (6)-(11) of the two-pass algorithm (the streaming
bank is tested in test_bank.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pgfa_models import alignment
from pgfa_models.alignment import l2_normalise, transductive_predict

# --------------------------------------------------------------------------- hand-worked example
# Text features (K=3), NOT unit length on purpose:   w0 = (1,0)   w1 = (0,1)   w2 = (-2,0)
#   normalised: (1,0), (0,1), (-1,0).
# Features (N=5), normalised v_i in brackets:
#   x0 = (3,0)       [ (1,0) ]      cos = ( 1,    0,   -1  )  -> pseudo-label 0
#   x1 = (0.6,0.8)   [ same ]       cos = ( 0.6,  0.8, -0.6)  -> 1
#   x2 = (0.8,0.6)   [ same ]       cos = ( 0.8,  0.6, -0.8)  -> 0
#   x3 = (0,2)       [ (0,1) ]      cos = ( 0,    1,    0  )  -> 1
#   x4 = (0.6,-0.8)  [ same ]       cos = ( 0.6, -0.8, -0.6)  -> 0
# Class 2 receives no pseudo-label: S_0 = {0,2,4}, S_1 = {1,3}, S_2 = {}.
# Entropy with P = softmax(s): H = log Z - sum_k P_k s_k, Z = sum_k exp(s_k):
#   x0: Z = e + 1 + 1/e = 4.0862;         P = (.6652,.2447,.0900); H = 1.4076 - .5752 = 0.8324
#   x1: Z = e^.6+e^.8+e^-.6 = 4.6705;      P = (.3904,.4768,.1175); H = 1.5413 - .5696 = 0.9717
#   x2: Z = e^.8+e^.6+e^-.8 = 4.5986;      P = (.4840,.3963,.0980); H = 1.5258 - .5815 = 0.9443
#   x3: Z = 1 + e + 1 = 4.7183;            P = (.2119,.5761,.2119); H = 1.5514 - .5761 = 0.9753
#   x4: Z = e^.6+e^-.8+e^-.6 = 2.7708;     P = (.6578,.1623,.1981); H = 1.0191 - .1257 = 0.8934  (rounded)
# Entropy order: S_0: x0 (.8324) < x4 (.8934) < x2 (.9443);  S_1: x1 (.9717) < x3 (.9753).
W = np.array([[1.0, 0.0], [0.0, 1.0], [-2.0, 0.0]])
X = np.array([[3.0, 0.0], [0.6, 0.8], [0.8, 0.6], [0.0, 2.0], [0.6, -0.8]])
S_HAND = np.array([[1, 0, -1], [0.6, 0.8, -0.6], [0.8, 0.6, -0.8], [0, 1, 0], [0.6, -0.8, -0.6]])


def _entropy_by_hand(s):
    z = sum(math.exp(x) for x in s)
    p = [math.exp(x) / z for x in s]
    return -sum(q * math.log(q) for q in p)


def test_hand_worked_initial_and_entropy():
    r = transductive_predict(X, W, 1.0)
    np.testing.assert_allclose(r.scores, S_HAND, atol=1e-12)
    np.testing.assert_array_equal(r.initial, [0, 1, 0, 1, 0])
    assert r.initial.dtype == np.int64 and r.final.dtype == np.int64
    np.testing.assert_allclose(r.entropy, [_entropy_by_hand(s) for s in S_HAND], rtol=1e-12)
    np.testing.assert_allclose(r.entropy, [0.8324, 0.9717, 0.9443, 0.9753, 0.8934], atol=6e-5)
    np.testing.assert_allclose(r.probs.sum(1), 1.0)
    np.testing.assert_allclose(r.probs[0], [0.6652, 0.2447, 0.0900], atol=1e-4)
    np.testing.assert_array_equal(r.support_sizes, [3, 2, 0])


def test_hand_worked_alpha_0_uses_text_features():
    # rho = floor(0*3) = floor(0*2) = 0: nothing kept, c_k = w_k, final = initial.
    r = transductive_predict(X, W, 0.0)
    np.testing.assert_array_equal(r.kept_sizes, [0, 0, 0])
    np.testing.assert_array_equal(r.prototypes, W)
    np.testing.assert_array_equal(r.final, r.initial)


def test_hand_worked_alpha_half():
    # rho_0 = floor(0.5*3) = 1 -> Z_0 = {x0} (lowest entropy .8324);  c0 = (1, 0)
    # rho_1 = floor(0.5*2) = 1 -> Z_1 = {x1} (.9717 < .9753);          c1 = (0.6, 0.8)
    # rho_2 = 0 (empty class)                                          c2 = w2 = (-2, 0) as given
    # Final cosines to normalised prototypes (1,0), (.6,.8), (-1,0):
    #   x0: (1, .6, -1) -> 0        x1: (.6, 1, -.6) -> 1       x2: (.8, .48+.48=.96, -.8) -> 1 (!)
    #   x3: (0, .8, 0) -> 1         x4: (.6, .36-.64=-.28, -.6) -> 0
    r = transductive_predict(X, W, 0.5)
    assert [z.tolist() for z in r.kept] == [[0], [1], []]
    np.testing.assert_array_equal(r.kept_sizes, [1, 1, 0])
    np.testing.assert_allclose(r.prototypes, [[1, 0], [0.6, 0.8], [-2, 0]], atol=1e-15)
    np.testing.assert_allclose(r.final_scores[2], [0.8, 0.96, -0.8], atol=1e-12)
    np.testing.assert_array_equal(r.final, [0, 1, 1, 1, 0])
    assert r.initial[2] == 0 and r.final[2] == 1  # alignment changes a label


def test_hand_worked_alpha_1():
    # Z_0 = {x0, x4, x2} (entropy order), c0 = ((1+.8+.6)/3, (0+.6-.8)/3) = (0.8, -1/15)
    # Z_1 = {x1, x3},                      c1 = ((.6+0)/2, (.8+1)/2)    = (0.3, 0.9)
    # c2 = w2 = (-2, 0).  |c0| = sqrt(.64 + 1/225) = .80277, |c1| = sqrt(.09+.81) = .94868
    # x2 = (.8,.6): cos c0 = (.64 - .04)/.80277 = .7474 ; cos c1 = (.24 + .54)/.94868 = .8222 -> 1
    # x4 = (.6,-.8): cos c0 = (.48 + .05333)/.80277 = .6644 ; cos c1 = (.18 - .72)/.94868 = -.5692 -> 0
    # x3 = (0,1): cos c0 = -.06667/.80277 = -.0830 ; cos c1 = .9/.94868 = .9487 -> 1
    r = transductive_predict(X, W, 1.0)
    assert [z.tolist() for z in r.kept] == [[0, 4, 2], [1, 3], []]
    np.testing.assert_allclose(r.prototypes, [[0.8, -1 / 15], [0.3, 0.9], [-2, 0]], atol=1e-15)
    np.testing.assert_allclose(r.final_scores[2, :2], [0.6 / math.sqrt(0.64 + 1 / 225), 0.78 / math.sqrt(0.9)])
    np.testing.assert_allclose(r.final_scores[:, 0], [0.9965, 0.5315, 0.7474, -0.0830, 0.6644], atol=1e-4)
    np.testing.assert_array_equal(r.final, [0, 1, 1, 1, 0])


def test_entropy_ties_broken_by_index_and_exact_floor():
    # Four identical features -> identical entropies; floor(0.5*4) = 2 keeps indices 0 and 1 of S_0.
    w = np.eye(2)
    x = np.array([[1.0, 0.2]] * 4 + [[0.0, 1.0]])
    r = transductive_predict(x, w, 0.5)
    assert r.kept[0].tolist() == [0, 1]
    # floor(0.29 * 100) must be 29 (0.29*100 == 28.999999999999996 in floating point)
    x = np.tile([[1.0, 0.0]], (100, 1))
    assert transductive_predict(x, w, 0.29).kept_sizes[0] == 29
    assert transductive_predict(x, w, 0.999).kept_sizes[0] == 99


def test_transductive_validation_and_edge_cases():
    with pytest.raises(ValueError, match="alpha"):
        transductive_predict(X, W, 1.5)
    with pytest.raises(ValueError, match="alpha"):
        transductive_predict(X, W, -0.1)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        transductive_predict(np.zeros((3, 4)), W, 0.5)
    with pytest.raises(ValueError, match=r"\(K, D\)"):
        transductive_predict(X, np.zeros(3), 0.5)
    with pytest.raises(ValueError, match="NaN"):
        transductive_predict(np.array([[np.nan, 0.0]]), W, 0.5)
    r = transductive_predict(np.zeros((0, 2)), W, 0.5)
    assert r.initial.shape == r.final.shape == (0,) and r.probs.shape == (0, 3)
    np.testing.assert_array_equal(r.prototypes, W)
    np.testing.assert_array_equal(r.support_sizes, [0, 0, 0])


def test_transductive_accepts_torch_and_is_dtype_independent():
    torch = pytest.importorskip("torch")
    a = transductive_predict(X, W, 0.5)
    b = transductive_predict(torch.tensor(X, dtype=torch.float32), torch.tensor(W), 0.5)
    np.testing.assert_array_equal(a.final, b.final)
    np.testing.assert_allclose(a.prototypes, b.prototypes, atol=1e-7)


def test_transductive_recovers_clusters_when_text_is_off():
    # Text features tilted 40 degrees from the true cluster directions: alignment fixes labels.
    rng = np.random.default_rng(0)
    means = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    y = np.repeat(np.arange(3), 200)
    x = means[y] + 0.35 * rng.normal(size=(600, 3))
    tilt = means + 0.55 * np.roll(means, 1, axis=1)
    r = transductive_predict(x, tilt, 0.5)
    acc0, acc1 = (r.initial == y).mean(), (r.final == y).mean()
    assert acc1 > acc0 + 0.02, (acc0, acc1)


def test_l2_normalise_rows_and_zero_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0]], np.float32)
    out = l2_normalise(x)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_alignment_holds_only_the_two_pass_algorithm():
    """The streaming bank lives in pgfa_models.bank (issue 13: split, one home each)."""
    assert not hasattr(alignment, "PrototypeBank") and not hasattr(alignment, "BankFormatError")
