"""Tests for pgfa_models.assignment: Sinkhorn balancing, CSLS, mutual kNN, the two-pass variants
and the nearest-neighbour ceiling, on hand-made hub cases."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from pgfa_models.alignment import l2_normalise, softmax, transductive_predict
from pgfa_models.assignment import (
    balanced_labels,
    class_hubness,
    cluster_balanced,
    csls,
    knn_smooth,
    mutual_knn,
    nearest_neighbour_agreement,
    sinkhorn,
    transductive_balanced,
    transductive_csls,
    two_pass,
)

# --------------------------------------------------------------------------- a strong hub, by hand
# 4-d: every skeleton feature shares a large common direction e3; class k adds 0.5 e_k (k < 3).
# Text 0 is mostly the common direction (the hub): t0 = 0.3 e0 + e3, t1 = e1, t2 = e2.
# Cosines of a class-k centre (0.5 e_k + e3)/1.118 to the texts:
#   class 0: (0.985, 0,     0    )     class 1: (0.857, 0.447, 0    )     class 2: (0.857, 0,   0.447)
# so plain argmax sends all 12 clips to class 0; balanced assignment must give 4 / 4 / 4, and
# class 1 clips prefer t1 over t2 (0.447 vs 0), so the balanced partition is the right one.
E = np.eye(4)
TEXT = np.stack([0.3 * E[0] + E[3], E[1], E[2]])
JITTER = np.array([[0.02, -0.01, 0.0, 0.0], [-0.01, 0.02, 0.01, 0.0], [0.0, 0.0, -0.02, 0.01], [0.01, 0.01, 0.01, -0.01]])
FEATS = np.concatenate([0.5 * E[k] + E[3] + JITTER for k in range(3)])  # 12 clips, 4 per class
LABELS = np.repeat(np.arange(3), 4)


def _cos(v, w):
    return l2_normalise(v) @ l2_normalise(w).T


def test_hub_case_plain_argmax_collapses_and_sinkhorn_recovers_the_partition():
    s = _cos(FEATS, TEXT)
    assert np.bincount(s.argmax(1), minlength=3).tolist() == [12, 0, 0]
    sk = sinkhorn(s)
    assert sk.converged
    assert np.array_equal(balanced_labels(sk.assignment, s), LABELS)
    # the paper's two-pass inherits the collapse; the balanced first pass does not
    assert np.bincount(transductive_predict(FEATS, TEXT, 0.9).final, minlength=3).max() >= 10
    r, _ = transductive_balanced(FEATS, TEXT, 0.9)
    assert np.array_equal(r.initial, LABELS) and np.array_equal(r.final, LABELS)
    r2, _ = cluster_balanced(FEATS, TEXT, 0.9, k=2)
    assert np.array_equal(r2.final, LABELS)


@pytest.mark.parametrize("shape", [(12, 3), (7, 5), (2, 5), (1, 4), (30, 1)])
def test_sinkhorn_invariants(shape):
    rng = np.random.default_rng(sum(shape))
    s = rng.uniform(-1, 1, size=shape)
    sk = sinkhorn(s, epsilon=0.1)
    N, K = shape
    assert sk.converged and np.all(np.isfinite(sk.assignment))
    np.testing.assert_allclose(sk.assignment.sum(1), 1.0, atol=1e-12)          # rows exact
    np.testing.assert_allclose(sk.assignment.sum(0), N / K, rtol=1e-5)         # uniform class marginals
    np.testing.assert_allclose(sk.plan.sum(), 1.0, atol=1e-9)
    again = sinkhorn(s, epsilon=0.1)
    assert np.array_equal(again.assignment, sk.assignment) and again.iterations == sk.iterations  # deterministic


def test_sinkhorn_single_sample_is_uniform_and_labels_fall_back_to_the_score():
    s = np.array([[0.1, 0.7, 0.3]])
    sk = sinkhorn(s)
    np.testing.assert_allclose(sk.assignment, 1 / 3, atol=1e-9)
    assert balanced_labels(sk.assignment, s).tolist() == [1]


def test_sinkhorn_stable_at_tiny_epsilon_and_equals_the_optimal_permutation():
    rng = np.random.default_rng(3)
    s = rng.uniform(-1, 1, size=(4, 4))
    sk = sinkhorn(s, epsilon=1e-4, iterations=5000, tol=1e-8)
    assert np.all(np.isfinite(sk.assignment))
    best = max(itertools.permutations(range(4)), key=lambda p: sum(s[i, p[i]] for i in range(4)))
    assert balanced_labels(sk.assignment, s).tolist() == list(best)


def test_sinkhorn_large_epsilon_is_near_uniform_and_custom_marginals_are_met():
    s = _cos(FEATS, TEXT)
    np.testing.assert_allclose(sinkhorn(s, epsilon=1e3).assignment, 1 / 3, atol=1e-3)
    sk = sinkhorn(s, class_marginals=[2, 1, 1])
    np.testing.assert_allclose(sk.assignment.sum(0), [6, 3, 3], rtol=1e-5)
    assert np.array_equal(sk.marginals, [0.5, 0.25, 0.25])


def test_sinkhorn_reports_non_convergence():
    s = np.random.default_rng(0).uniform(-1, 1, size=(20, 4))
    sk = sinkhorn(s, epsilon=0.01, iterations=1, tol=0.0)
    assert not sk.converged and sk.iterations == 1 and sk.marginal_error > 0


@pytest.mark.parametrize("kwargs, msg", [
    ({"epsilon": 0}, "epsilon"), ({"epsilon": float("nan")}, "epsilon"), ({"iterations": 0}, "iterations"),
    ({"tol": -1}, "tol"), ({"class_marginals": [1, 1]}, "class_marginals"), ({"class_marginals": [1, 0, 1]}, "class_marginals"),
])
def test_sinkhorn_rejects_bad_parameters(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        sinkhorn(np.zeros((3, 3)), **kwargs)


def test_bad_scores_are_rejected_and_empty_input_is_fine():
    with pytest.raises(ValueError, match="NaN"):
        sinkhorn(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="2-d"):
        csls(np.zeros(3))
    assert sinkhorn(np.zeros((0, 3))).assignment.shape == (0, 3)
    assert csls(np.zeros((0, 3))).shape == (0, 3)
    assert nearest_neighbour_agreement(np.zeros((0, 2)), []).accuracy is None


# --------------------------------------------------------------------------- CSLS
# A mild hub, scores by hand (rows: clips, columns: classes 0, 1, 2):
#   class-0 clips score 0.95 with class 0; the other clips score 0.60 with the hub class 0 and
#   0.50 with their own class; everything else 0.
MILD = np.array([[0.95, 0.0, 0.0], [0.95, 0.0, 0.0],
                 [0.60, 0.50, 0.0], [0.60, 0.50, 0.0],
                 [0.60, 0.0, 0.50], [0.60, 0.0, 0.50]])


def test_csls_class_hubness_by_hand_and_it_fixes_a_mild_hub():
    # k = 2: class 0's two best are 0.95, 0.95 -> 0.95; class 1: 0.5, 0.5; class 2: 0.5, 0.5
    np.testing.assert_allclose(class_hubness(MILD, 2), [0.95, 0.5, 0.5])
    assert MILD.argmax(1).tolist() == [0] * 6
    c = csls(MILD, 2)
    # clip 2 (minus the same row term): hub 2*0.6 - 0.95 = 0.25, own class 2*0.5 - 0.5 = 0.5,
    # class 2: 2*0 - 0.5 = -0.5
    np.testing.assert_allclose(c[2] - c[2, 1], [0.25 - 0.5, 0.0, -0.5 - 0.5])
    assert c.argmax(1).tolist() == [0, 0, 1, 1, 2, 2]


def test_csls_clamps_k_to_n_and_keeps_the_text_argmax_for_one_sample():
    assert np.array_equal(csls(MILD, 6), csls(MILD, 100))
    one = np.array([[0.2, 0.9, 0.4]])
    assert csls(one, 10).argmax(1).tolist() == [1]
    with pytest.raises(ValueError, match="k must"):
        csls(MILD, 0)


def test_transductive_csls_fixes_a_mild_hub_on_features():
    # unit vectors at angles (degrees): class 0 clips at 78, 80, 82; class 1 clips at 41, 43, 45;
    # text 0 at 80 (the hub), text 1 at 0. Class 1 clips are closer to text 0 (cos 39-35 deg)
    # than to text 1 (cos 41-45 deg) by at most 0.112; the hub penalty r_0 - r_1 (k = 2) is
    # 0.9997 - 0.743 = 0.257 > 2 * 0.112, so CSLS sends them to class 1.
    def unit(deg):
        r = np.radians(np.asarray(deg, float))
        return np.stack([np.cos(r), np.sin(r)], -1)

    v, w = unit([78, 80, 82, 41, 43, 45]), unit([80, 0])
    assert (_cos(v, w).argmax(1) == 0).all()
    assert (transductive_predict(v, w, 1.0).final == 0).all()  # the paper's two-pass keeps the hub
    r = transductive_csls(v, w, 1.0, k=2)
    assert r.initial.tolist() == [0, 0, 0, 1, 1, 1] and r.final.tolist() == [0, 0, 0, 1, 1, 1]


# --------------------------------------------------------------------------- cluster structure
def test_mutual_knn_and_smoothing_by_hand():
    # on a line: 0, 1, 1.2 | 10, 10.5  (as 2-d directions via angle)
    ang = np.array([0.0, 0.1, 0.12, 1.0, 1.05])
    f = np.stack([np.cos(ang), np.sin(ang)], 1)
    nb = mutual_knn(f, 1)
    # 1-NN: 0->1, 1->2, 2->1, 3->4, 4->3: mutual pairs (1,2) and (3,4); 0 has none
    assert [x.tolist() for x in nb] == [[], [2], [1], [4], [3]]
    s = np.arange(10, dtype=float).reshape(5, 2)
    sm = knn_smooth(f, s, 1)
    np.testing.assert_allclose(sm[0], s[0])
    np.testing.assert_allclose(sm[1], (s[1] + s[2]) / 2)
    assert [x.tolist() for x in mutual_knn(f[:1], 3)] == [[]]
    assert len(mutual_knn(f, 99)[0]) == 4  # k clamped to N - 1: everyone is everyone's neighbour


# --------------------------------------------------------------------------- two-pass equivalence
@pytest.mark.parametrize("alpha", [0.0, 0.29, 0.5, 0.9, 1.0])
def test_two_pass_with_the_papers_softmax_is_transductive_predict(alpha):
    rng = np.random.default_rng(7)
    w = rng.normal(size=(4, 6)) * 3  # not unit length on purpose
    v = np.repeat(w, 7, axis=0) + 2.0 * rng.normal(size=(28, 6))
    ref = transductive_predict(v, w, alpha)
    got = two_pass(v, w, alpha, softmax(l2_normalise(v) @ l2_normalise(w).T))
    for f in ("initial", "final", "prototypes", "probs", "entropy", "support_sizes", "kept_sizes", "scores",
              "final_scores"):
        assert np.array_equal(getattr(ref, f), getattr(got, f)), f
    assert all(np.array_equal(a, b) for a, b in zip(ref.kept, got.kept))


def test_two_pass_variants_handle_one_sample_and_fewer_samples_than_classes():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(5, 4))
    for n in (1, 2):
        v = rng.normal(size=(n, 4))
        r, sk = transductive_balanced(v, w, 0.9)
        assert r.final.shape == (n,) and np.allclose(sk.assignment.sum(1), 1)
        assert transductive_csls(v, w, 0.9).final.shape == (n,)
        assert cluster_balanced(v, w, 0.9)[0].final.shape == (n,)
    one = rng.normal(size=(1, 4))
    # one sample: balanced and CSLS pseudo-labels fall back to the text argmax
    assert transductive_balanced(one, w, 0.9)[0].initial.tolist() == [int(_cos(one, w).argmax())]
    assert transductive_csls(one, w, 0.9).initial.tolist() == [int(_cos(one, w).argmax())]


def test_two_pass_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="soft assignment"):
        two_pass(np.ones((3, 2)), np.eye(2), 0.5, np.ones((2, 2)))
    with pytest.raises(ValueError, match="pseudo_labels"):
        two_pass(np.ones((3, 2)), np.eye(2), 0.5, np.ones((3, 2)), [0, 1, 2])
    with pytest.raises(ValueError, match="alpha"):
        two_pass(np.ones((3, 2)), np.eye(2), 1.5, np.ones((3, 2)))


# --------------------------------------------------------------------------- ceiling
def test_nearest_neighbour_agreement_excludes_the_same_group():
    # subject A did two trials of class 0 that are near-identical; subject B's class-1 clip is
    # close to A's class-0 trials; B's class-0 clip sits further away.
    f = np.array([[1.0, 0.0], [1.0, 0.01], [0.95, 0.3], [0.6, 0.8]])
    y = [0, 0, 1, 0]
    free = nearest_neighbour_agreement(f, y)
    assert free.neighbour.tolist() == [1, 0, 1, 2] and free.correct.tolist() == [True, True, False, False]
    assert free.accuracy == pytest.approx(0.5) and not free.grouped
    g = nearest_neighbour_agreement(f, y, groups=["A", "A", "B", "B"])
    # A's clips may only see B's: both see clip 2 (class 1) -> wrong; B's see A's
    assert g.neighbour.tolist() == [2, 2, 1, 1] and g.correct.tolist() == [False, False, False, True]
    assert g.accuracy == pytest.approx(0.25) and g.grouped
    solo = nearest_neighbour_agreement(f, y, groups=["A", "A", "A", "A"])
    assert solo.accuracy is None and solo.scored == 0 and (solo.neighbour == -1).all()
    nog = nearest_neighbour_agreement(f, y, groups=[None, None, "A", "A"])  # None: its own group
    assert nog.neighbour.tolist()[:2] == [1, 0]
    with pytest.raises(ValueError, match="groups"):
        nearest_neighbour_agreement(f, y, groups=["A"])


# --------------------------------------------------------------------------- streaming CSLS bank
def test_streaming_hubness_by_hand():
    from pgfa_models.assignment import StreamingHubness

    h = StreamingHubness(2, k=2)
    assert h.penalty().tolist() == [0.0, 0.0]
    h.observe([0.9, 0.1])
    np.testing.assert_allclose(h.penalty(), [0.9, 0.1])
    h.observe([0.5, 0.3])
    h.observe([0.7, 0.2])
    np.testing.assert_allclose(h.penalty(), [(0.9 + 0.7) / 2, (0.3 + 0.2) / 2])
    with pytest.raises(ValueError, match="2 finite cosines"):
        h.observe([0.1, 0.2, 0.3])
    h.reset()
    assert h.seen == 0 and h.penalty().tolist() == [0.0, 0.0]


def _unit(deg):
    r = np.radians(np.asarray(deg, float))
    return np.stack([np.cos(r), np.sin(r)], -1)


def test_hub_aware_bank_pseudo_labels_escape_the_hub_and_are_batch_split_invariant():
    from pgfa_models.assignment import HubAwareBank
    from pgfa_models.bank import PrototypeBank

    v, w = _unit([78, 80, 82, 41, 43, 45]), _unit([80, 0])
    names = ["hub", "other"]
    plain = PrototypeBank(w, names, capacity=4, min_support=1).update(v)
    assert plain.pseudo_labels.tolist() == [0] * 6  # the paper's bank feeds the hub
    bank = HubAwareBank(w, names, csls_k=2, capacity=4, min_support=1)
    res = bank.update(v)
    assert res.pseudo_labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert res.labels.tolist()[-2:] == [1, 1]  # once 'other' has members, its prototype wins
    assert bank.counts().tolist() == [3, 3]
    split = HubAwareBank(w, names, csls_k=2, capacity=4, min_support=1)
    a, b = split.update(v[:2]), split.update(v[2:])
    assert np.array_equal(np.concatenate([a.labels, b.labels]), res.labels)
    assert np.array_equal(np.concatenate([a.entropy, b.entropy]), res.entropy)
    assert np.array_equal(split.prototypes(), bank.prototypes()) and np.array_equal(split.hubness(), bank.hubness())
    before = bank.hubness().copy()
    bank.predict(v)  # no state change
    assert np.array_equal(bank.hubness(), before)
    bank.reset()
    assert bank.hubness().tolist() == [0.0, 0.0] and bank.counts().tolist() == [0, 0]
    bank.set_classes(_unit([80, 0, 45]), ["hub", "other", "new"])
    assert bank.hubness().shape == (3,)
    with pytest.raises(ValueError, match="pseudo_label_source"):
        HubAwareBank(w, names, pseudo_label_source="prototype")
    with pytest.raises(ValueError, match="NaN"):
        HubAwareBank(w, names).update(np.array([[np.nan, 0.0]]))
    assert HubAwareBank(w, names).update(np.zeros((0, 2))).labels.shape == (0,)


def test_neighbour_searches_in_blocks_equal_the_full_matrix(monkeypatch):
    import pgfa_models.assignment as A

    rng = np.random.default_rng(5)
    f = rng.normal(size=(23, 3))
    y = rng.integers(0, 3, 23)
    g = rng.integers(0, 4, 23).tolist()
    full_nb = [x.tolist() for x in mutual_knn(f, 3)]
    full_nn = nearest_neighbour_agreement(f, y, g)
    monkeypatch.setattr(A, "_BLOCK", 5)
    assert [x.tolist() for x in mutual_knn(f, 3)] == full_nb
    small = nearest_neighbour_agreement(f, y, g)
    assert np.array_equal(small.neighbour, full_nn.neighbour) and small.accuracy == full_nn.accuracy
    # brute force reference
    vn = l2_normalise(f)
    sim = vn @ vn.T
    ga = np.asarray(g)
    sim[ga[:, None] == ga[None, :]] = -np.inf
    assert full_nn.neighbour.tolist() == np.argmax(sim, axis=1).tolist()


def test_mutual_knn_breaks_ties_by_lower_index():
    # sample 0 is equidistant from 1, 2 and 3 (cosine 0); 1-NN must pick 1
    f = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    nb = mutual_knn(f, 1)
    assert [x.tolist() for x in nb] == [[1], [0], [], []]  # 2 -> 0 and 3 -> 0 are not returned by 0


def test_relaxed_marginals_let_a_larger_class_keep_more():
    # 8 clips clearly of class 0, 4 of class 1 (scores by hand): exact balance must move 2 of
    # class 0's clips to class 1; a relaxed constraint keeps them; huge relax = row softmax.
    s = np.array([[0.9 - 0.05 * i, 0.1 + 0.05 * i] for i in range(8)] + [[0.1, 0.9]] * 4)
    exact = sinkhorn(s, epsilon=0.02)
    lab = balanced_labels(exact.assignment, s)
    assert lab.tolist() == [0] * 6 + [1] * 6  # the two least confident class-0 clips moved
    soft = sinkhorn(s, epsilon=0.1, relax=1.0)
    assert soft.converged and np.bincount(balanced_labels(soft.assignment, s)).tolist() == [8, 4]
    np.testing.assert_allclose(soft.assignment.sum(1), 1.0, atol=1e-12)
    mass = soft.assignment.sum(0)
    assert 6 < mass[0] < 8 + 1e-9  # pulled towards uniform, not all the way
    free = sinkhorn(s, epsilon=0.1, relax=1e9)
    np.testing.assert_allclose(free.assignment, softmax(s / 0.1), atol=1e-6)
    with pytest.raises(ValueError, match="relax"):
        sinkhorn(s, relax=-1)


@pytest.mark.parametrize("k", [None, "x", 1.5, True, 0])
def test_bad_k_is_a_value_error(k):
    with pytest.raises(ValueError, match="k must be an integer"):
        csls(MILD, k)
