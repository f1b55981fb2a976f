"""Tests for pgfa_models.bank: the streaming PrototypeBank (bounded memory, determinism,
eviction, forgetting) and its pickle-free save/load."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pgfa_models.bank import BankFormatError, BankResult, PrototypeBank


def _entropy_by_hand(s):
    z = sum(math.exp(x) for x in s)
    p = [math.exp(x) / z for x in s]
    return -sum(q * math.log(q) for q in p)


def topk(res: BankResult, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices (N, k), cosines (N, k)) best first; ties -> lower class index."""
    k = max(0, min(int(k), res.scores.shape[1]))
    idx = np.argsort(-res.scores, axis=1, kind="stable")[:, :k].astype(np.int64)
    return idx, np.take_along_axis(res.scores, idx, axis=1)


def state_equal(a: PrototypeBank, b: PrototypeBank) -> bool:
    """Exact equality of configuration, classes and memories."""
    if (
        a.class_names != b.class_names
        or (a.capacity, a.min_support, a.max_entropy, a.pseudo_label_source, a.max_age, a._seq)
        != (b.capacity, b.min_support, b.max_entropy, b.pseudo_label_source, b.max_age, b._seq)
        or not np.array_equal(a._text, b._text)
        or not np.array_equal(a._count, b._count)
    ):
        return False
    for k in range(a.num_classes):
        c = a._count[k]
        for x, y in ((a._feats, b._feats), (a._ent, b._ent), (a._seqs, b._seqs)):
            if not np.array_equal(x[k, :c], y[k, :c]):
                return False
    return np.array_equal(a._protos, b._protos)


NAMES = ["wave", "sit", "jump"]


def _stream(n, d=8, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d))


def _bank(**kw):
    w = np.random.default_rng(7).normal(size=(3, 8))
    return PrototypeBank(w, NAMES, **kw)


def test_bank_falls_back_to_text_until_min_support():
    w = np.eye(3)
    bank = PrototypeBank(w, NAMES, capacity=4, min_support=3)
    np.testing.assert_array_equal(bank.prototypes(), w)
    f1, f2, f3 = [1.0, 0.1, 0.0], [1.0, 0.0, 0.1], [1.0, 0.2, 0.2]
    bank.update(np.array([f1, f2]))
    np.testing.assert_array_equal(bank.counts(), [2, 0, 0])
    np.testing.assert_array_equal(bank.prototypes(), w)  # 2 < min_support: still text
    res = bank.update(np.array([f3]))
    assert res.accepted.tolist() == [True] and res.pseudo_labels.tolist() == [0]
    norm = lambda v: np.array(v) / np.linalg.norm(v)  # noqa: E731
    np.testing.assert_allclose(bank.prototypes()[0], (norm(f1) + norm(f2) + norm(f3)) / 3)
    np.testing.assert_array_equal(bank.prototypes()[1:], w[1:])


def test_bank_classifies_before_storing_and_final_can_differ():
    # Text features (1,0) and (0,1); class-0 memory drifts toward (0.6,0.8)-ish samples.
    bank = PrototypeBank(np.eye(2), ["a", "b"], capacity=8, min_support=1)
    r1 = bank.update(np.array([[0.8, 0.6]]))  # classified with text -> 0, stored in class 0
    assert r1.labels.tolist() == [0] and r1.pseudo_labels.tolist() == [0]
    np.testing.assert_allclose(bank.prototypes()[0], [0.8, 0.6])
    bank.update(np.array([[0.1, 1.0]]))  # pseudo-label 1, class-1 prototype = that sample
    # (0.5, 0.55): text says b (0.55 > 0.5) but prototypes (0.8,.6) vs (0.1,1.0)/|.| say a
    r = bank.predict(np.array([[0.5, 0.55]]))
    assert r.pseudo_labels.tolist() == [1] and r.labels.tolist() == [0]
    idx, sc = topk(r, 2)
    assert idx.tolist() == [[0, 1]] and sc[0, 0] >= sc[0, 1]


def test_bank_memory_bounded_over_long_stream():
    bank = _bank(capacity=5, min_support=2)
    x = _stream(10_000)
    for i in range(0, 10_000, 7):
        bank.update(x[i : i + 7])
        assert bank.counts().max() <= 5
    assert bank.counts().tolist() == [5, 5, 5]
    assert bank._feats.shape == (3, 5, 8)  # storage never grows
    # memory keeps the lowest-entropy samples seen for the class
    all_res = _bank(capacity=10_000, min_support=2).update(x)
    for k in range(3):
        ent_k = np.sort(all_res.entropy[all_res.pseudo_labels == k])[:5]
        np.testing.assert_allclose(np.sort(bank._ent[k]), ent_k)


def test_bank_eviction_drops_highest_entropy_then_oldest():
    bank = PrototypeBank(np.eye(2), ["a", "b"], capacity=2, min_support=1)
    confident, vague = [1.0, 0.0], [1.0, 0.9]
    r = bank.update(np.array([vague, confident, vague, confident]))
    # memory: [vague] -> [vague, confident] -> full: newcomer vague ties the stored vague,
    # the OLDER one is evicted -> [vague(new), confident] -> confident evicts the vague one.
    assert r.accepted.tolist() == [True, True, True, True]
    mem = bank.memory(0)
    np.testing.assert_allclose(mem, [[1.0, 0.0], [1.0, 0.0]])
    # a newcomer worse than every member is rejected and the memory is unchanged
    r = bank.update(np.array([vague]))
    assert r.accepted.tolist() == [False]
    np.testing.assert_allclose(bank.memory(0), mem)

    # ties among members: A and B have identical cosines (hence entropy) but differ in the
    # 3rd (text-orthogonal) component; a confident newcomer evicts the OLDER one, A.
    w = np.eye(3)[:2]
    A, B, C = [1.0, 0.5, 0.4], [1.0, 0.5, -0.4], [1.0, 0.0, 0.0]
    bank = PrototypeBank(w, ["a", "b"], capacity=2, min_support=1)
    r = bank.update(np.array([A, B]))
    assert r.entropy[0] == r.entropy[1]
    bank.update(np.array([C]))
    mem = bank.memory(0)
    unit = lambda v: np.array(v) / np.linalg.norm(v)  # noqa: E731
    assert any(np.allclose(m, unit(B)) for m in mem) and any(np.allclose(m, unit(C)) for m in mem)
    assert not any(np.allclose(m, unit(A)) for m in mem)


def test_bank_max_entropy_filter():
    bank = PrototypeBank(np.eye(2), ["a", "b"], capacity=4, min_support=1, max_entropy=0.9)
    r = bank.update(np.array([[1.0, 0.0], [1.0, 0.95]]))
    # normalised entropy of softmax(1, 0) = .8399 (accept); of softmax(.725, .689) ~ 1.0 (reject)
    assert r.accepted.tolist() == [True, False]
    assert r.entropy[0] == pytest.approx(_entropy_by_hand([1.0, 0.0]) / math.log(2))
    assert bank.counts().tolist() == [1, 0]


def test_bank_max_age_forgets_old_members_and_follows_drift():
    # Class a's stored members come from an "old scene" (x-heavy) and then a "new scene"
    # (y-heavy, still pseudo-labelled a). Without max_age the confident old members stay forever.
    w = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    old = np.tile([1.0, 0.05, 0.0], (5, 1))
    new = np.tile([1.0, 0.9, 0.0], (5, 1))
    keep = PrototypeBank(w, ["a", "b"], capacity=5, min_support=1)
    keep.update(np.vstack([old, new]))
    assert np.allclose(keep.memory(0), old / np.linalg.norm(old[0]))  # the new scene never gets in
    forget = PrototypeBank(w, ["a", "b"], capacity=5, min_support=1, max_age=4)
    forget.update(np.vstack([old, new]))
    mem = forget.memory(0)
    assert forget.counts().tolist() == [4, 0] and mem.shape == (4, 3)  # the last max_age candidates
    assert np.allclose(mem, new[0] / np.linalg.norm(new[0]))
    assert forget.prototypes()[0] == pytest.approx(new[0] / np.linalg.norm(new[0]))
    # members expire before the next sample is classified; storage order is kept
    ages = PrototypeBank(w, ["a", "b"], capacity=8, min_support=1, max_age=3)
    seq = np.array([[1.0, 0.1 * i, 0.0] for i in range(6)])
    ages.update(seq)
    assert ages.counts().tolist() == [3, 0]
    np.testing.assert_allclose(ages.memory(0), seq[3:] / np.linalg.norm(seq[3:], axis=1, keepdims=True))


def test_bank_max_age_persists_and_validates(tmp_path):
    a = _bank(capacity=6, max_age=40)
    a.update(_stream(200))
    b = PrototypeBank.load(a.save(tmp_path / "bank.npz"), expected_dim=8)
    assert b.max_age == 40 and state_equal(a, b)
    x = _stream(50, seed=3)
    np.testing.assert_array_equal(a.update(x).labels, b.update(x).labels)
    assert state_equal(a, b) and not state_equal(a, _bank(capacity=6))
    # a file written before max_age existed loads as "never forget"
    with np.load(tmp_path / "bank.npz") as z:
        arrays = {k: z[k] for k in z.files if k != "max_age"}
    np.savez(tmp_path / "old.npz", **arrays)
    assert PrototypeBank.load(tmp_path / "old.npz").max_age is None
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="max_age"):
            _bank(max_age=bad)


def test_bank_deterministic_and_batching_independent():
    x = _stream(500)
    a, b, c = _bank(), _bank(), _bank()
    ra = a.update(x)
    rb = b.update(x)
    for i in range(0, 500, 13):
        c.update(x[i : i + 13])
    np.testing.assert_array_equal(ra.labels, rb.labels)
    np.testing.assert_array_equal(ra.scores, rb.scores)
    assert state_equal(a, b) and state_equal(a, c)
    np.testing.assert_array_equal(a.prototypes(), c.prototypes())


def test_bank_save_load_round_trip(tmp_path):
    a = _bank(capacity=6, max_entropy=0.99)
    a.update(_stream(200))
    p = a.save(tmp_path / "bank.npz")
    b = PrototypeBank.load(p, expected_dim=8)
    assert state_equal(a, b) and b.class_names == NAMES
    assert (b.capacity, b.min_support, b.max_entropy) == (6, 3, 0.99)
    # continuing both with the same stream stays identical
    x = _stream(50, seed=9)
    np.testing.assert_array_equal(a.update(x).labels, b.update(x).labels)
    assert state_equal(a, b)
    c = _bank()
    c.save(tmp_path / "c.npz")
    assert PrototypeBank.load(tmp_path / "c.npz").max_entropy is None


def test_bank_load_errors(tmp_path):
    a = _bank()
    a.update(_stream(30))
    p = a.save(tmp_path / "bank.npz")
    with pytest.raises(BankFormatError, match="expected 16-d"):
        PrototypeBank.load(p, expected_dim=16)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(BankFormatError, match="not a readable"):
        PrototypeBank.load(bad)
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(p.read_bytes()[:200])
    with pytest.raises(BankFormatError):
        PrototypeBank.load(trunc)
    with pytest.raises(BankFormatError, match="not found"):
        PrototypeBank.load(tmp_path / "missing.npz")
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros(3))
    with pytest.raises(BankFormatError, match="missing array 'format_version'"):
        PrototypeBank.load(other)
    with np.load(p) as z:
        d = {k: z[k] for k in z.files}
    d["feats"] = d["feats"][:, :, :4]
    mism = tmp_path / "mism.npz"
    np.savez(mism, **d)
    with pytest.raises(BankFormatError, match="inconsistent shapes"):
        PrototypeBank.load(mism)


def test_bank_reset():
    a = _bank()
    text = a.prototypes()
    a.update(_stream(100))
    assert a.counts().sum() > 0
    a.reset()
    assert a.counts().tolist() == [0, 0, 0]
    np.testing.assert_array_equal(a.prototypes(), text)
    assert state_equal(a, _bank())


def test_bank_set_classes_keeps_persisting_names():
    a = _bank(capacity=5, min_support=2)
    a.update(_stream(300))
    old_mem = {n: a.memory(k) for k, n in enumerate(NAMES)}
    old_proto = dict(zip(NAMES, a.prototypes()))
    w_new = np.random.default_rng(3).normal(size=(3, 8))
    a.set_classes(w_new, ["jump", "run", "wave"])
    assert a.class_names == ["jump", "run", "wave"]
    np.testing.assert_array_equal(a.memory(0), old_mem["jump"])
    np.testing.assert_array_equal(a.memory(2), old_mem["wave"])
    assert a.counts()[1] == 0
    np.testing.assert_allclose(a.prototypes()[0], old_proto["jump"])
    np.testing.assert_array_equal(a.prototypes()[1], w_new[1])  # new class: text feature
    with pytest.raises(ValueError, match="8-d"):
        a.set_classes(np.zeros((2, 4)), ["x", "y"])
    with pytest.raises(ValueError, match="unique"):
        a.set_classes(np.ones((2, 8)), ["x", "x"])


def test_bank_validation():
    with pytest.raises(ValueError, match="class names"):
        PrototypeBank(np.eye(3), ["a", "b"])
    with pytest.raises(ValueError, match="min_support"):
        PrototypeBank(np.eye(2), ["a", "b"], capacity=2, min_support=3)
    with pytest.raises(ValueError, match="max_entropy"):
        PrototypeBank(np.eye(2), ["a", "b"], max_entropy=2.0)
    with pytest.raises(ValueError, match="pseudo_label_source"):
        PrototypeBank(np.eye(2), ["a", "b"], pseudo_label_source="oracle")
    bank = PrototypeBank(np.eye(2), ["a", "b"], pseudo_label_source="prototype")
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        bank.update(np.zeros((1, 3)))
    assert bank.update(np.zeros((0, 2))).labels.shape == (0,)
    assert bank.update(np.array([1.0, 0.0])).labels.tolist() == [0]  # single 1-D sample


def test_bank_save_is_atomic(tmp_path, monkeypatch):
    """A save that fails half-way (disk full) keeps the previous bank and leaves no temporary."""
    a = _bank()
    a.update(_stream(30))
    p = a.save(tmp_path / "bank.npz")
    before = p.read_bytes()
    a.update(_stream(30, seed=5))

    def boom(*args, **kw):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        a.save(p)
    assert p.read_bytes() == before and [q.name for q in tmp_path.iterdir()] == ["bank.npz"]
