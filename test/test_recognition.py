"""pgfa_models.recognition: label sets, batched classification, modes, bank handling."""
import numpy as np
import pytest

from pgfa_models.preprocess import PreprocessConfig, preprocess_clip
from pgfa_models.recognition import LabelSet, Recognizer, load_recognizer
from recognizer_helpers import UTD_LABELS, FakeEncoder, make_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


@pytest.fixture(scope="module")
def utd_clips(utd_dir):
    from pgfa_models.formats.utd_mhad import read_utd_mhad

    clips = []
    for name in ("a1_s1_t1", "a3_s1_t1", "a5_s2_t1", "a10_s1_t1"):
        j = read_utd_mhad(utd_dir / f"{name}_skeleton.mat")
        res = preprocess_clip([j[:45]], "kinect_v1_20", PreprocessConfig(), num_person=1)
        assert res.clip is not None, res.reason
        clips.append(res.clip)
    return np.stack(clips)


def test_class_text_features_are_normalised_means():
    from pgfa_models.recognition import ensemble_features

    enc = lambda t: np.array([[1.0, 0], [0, 1.0], [3.0, 0]])[[{"a": 0, "b": 1, "c": 2}[x] for x in t]]  # noqa: E731
    f = ensemble_features(enc, [["a", "b"], ["c"]])
    np.testing.assert_allclose(f, [[2 ** -0.5, 2 ** -0.5], [1, 0]], atol=1e-6)


def test_labelset_scores_a_checkpoint_class_on_its_training_ensemble():
    """A multi-source checkpoint trained each class on the mean of several texts: the live label set
    must build the same feature (training/multi.py uses the same ensemble function)."""
    from pgfa_models.recognition import checkpoint_text_sets, ensemble_features

    enc = FakeEncoder()
    sets = {"walk": ["a person walks", "walking forward", "strolling"]}
    ls = LabelSet(enc, ["walk", "jump"], default_descriptions={"walk": "a person walks"}, default_text_sets=sets)
    want = ensemble_features(enc.encode, [sets["walk"], ["jump"]])
    np.testing.assert_allclose(ls.features, want, atol=1e-6)
    assert ls.texts == ["a person walks", "jump"]
    assert not ls.update(["walk", "jump"])
    ls.update(["walk", "jump"], ["one sentence", ""])  # an explicit description replaces the ensemble
    np.testing.assert_allclose(ls.features[0], ensemble_features(enc.encode, [["one sentence", "walk"]])[0], atol=1e-6)
    assert ls.texts[0] == "one sentence" and ls.text_sets[0] == ("one sentence", "walk")  # with its name
    ls.update(["hop"], ["hop"])  # a description that repeats the name is one text, not two
    assert ls.text_sets == [("hop",)]

    class Meta:
        labels = ["walk", "jump"]
        extra = {"class_texts": [sets["walk"], ["a person jumps"]]}

    assert checkpoint_text_sets(Meta()) == {"walk": sets["walk"], "jump": ["a person jumps"]}
    Meta.extra = {"class_texts": [["only one"]]}  # does not match the labels: ignored
    assert checkpoint_text_sets(Meta()) == {}


def test_text_centre_is_removed_from_every_class_and_checked():
    """A checkpoint trained with text.center stores the centre; the live label set applies it to the
    trained classes and to new sentences alike, and refuses a centre of the wrong size."""
    from pgfa_models.recognition import center_text, checkpoint_text_center

    enc = FakeEncoder()
    plain = LabelSet(enc, ["walk", "a sentence"]).features
    c = plain.mean(0)

    class Meta:
        labels = ["walk"]
        descriptions = {}
        text_dim = 384
        extra = {"text_center": c.tolist()}

    ls = LabelSet.for_checkpoint(enc, Meta(), ["walk", "a sentence"])
    np.testing.assert_allclose(ls.features, center_text(plain, c), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ls.features, axis=1), 1, atol=1e-5)
    # two classes around their mean point in opposite directions once centred
    assert float(ls.features[0] @ ls.features[1]) == pytest.approx(-1.0, abs=1e-5)
    assert center_text(plain, None) is plain
    Meta.extra = {}
    assert checkpoint_text_center(Meta()) is None
    for bad in ([0.0] * 3, [float("nan")] * 384, "abc", [[1.0]]):
        Meta.extra = {"text_center": bad}
        with pytest.raises(ValueError, match="text_center"):
            checkpoint_text_center(Meta())


def test_seen_margin_lets_a_sentence_label_compete_with_trained_classes():
    """Calibrated stacking: trained classes (scored on their checkpoint texts) give up the margin,
    new sentences and trained names given a new description do not; reported cosines stay real."""
    from pgfa_models.recognition import check_seen_margin

    enc = FakeEncoder()
    ls = LabelSet(enc, ["walk", "hop", "wave"], default_text_sets={"walk": ["a person walks"]},
                  default_descriptions={"wave": "a person waves"})
    assert ls.trained.tolist() == [True, False, True]
    assert ls.trained_mask(["walk", "wave"], ["", "waving both arms"]).tolist() == [True, False]
    walk, hop = ls.features[0], ls.features[1]
    x = (0.6 * walk + 0.4 * hop)[None]  # nearer the trained class (cosines ~0.83 and ~0.55)

    def fn(clips):
        return np.repeat(x, len(clips), axis=0)

    clip = np.zeros((1, 3, 4, 25, 1), np.float32)
    plain = Recognizer(fn, ls, tau=0.05).classify(clip)[0]
    assert plain.label == "walk"
    lifted = Recognizer(fn, ls, tau=0.05, seen_margin=0.5).classify(clip)[0]
    assert lifted.label == "hop"
    assert lifted.cosines[0] == pytest.approx(float(x[0] @ hop / np.linalg.norm(x[0])), abs=1e-5)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="seen_margin"):
            check_seen_margin(bad)


def test_labelset_embeds_only_new_texts():
    enc = FakeEncoder()
    ls = LabelSet(enc, ["a", "b"], ["desc a", ""], default_descriptions={"b": "desc b"})
    assert ls.texts == ["desc a", "desc b"] and ls.features.shape == (2, 384)
    assert not ls.update(["a", "b"], ["desc a", ""])
    assert ls.update(["a", "b", "c"])  # descriptions dropped: a falls back to its name,
    assert enc.calls[-1] == ["c"] and ls.embedded_last == 1  # embedded with its description already
    assert ls.update(["c", "a"])
    assert ls.embedded_last == 0 and len(enc.calls) == 2
    np.testing.assert_allclose(np.linalg.norm(ls.features, axis=1), 1, atol=1e-5)
    with pytest.raises(ValueError):
        ls.update(["x", "x"])
    with pytest.raises(ValueError):
        ls.update(["x", "y"], ["only one"])
    with pytest.raises(ValueError):
        ls.update([])
    assert ls.names == ["c", "a"]  # failed updates leave the set unchanged


def test_classify_batched_one_call(ckpt, utd_clips):
    rec, meta = load_recognizer(str(ckpt), encoder=FakeEncoder(), top_k=3)
    calls = []
    inner = rec.feature_fn
    rec.feature_fn = lambda x: calls.append(x.shape) or inner(x)
    preds = rec.classify(utd_clips)
    assert calls == [utd_clips.shape]
    assert len(preds) == 4
    for p in preds:
        assert len(p.topk) == 3 and all(lbl in UTD_LABELS for lbl, _ in p.topk)
        scores = [s for _, s in p.topk]
        assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1
        assert p.probs.sum() == pytest.approx(1.0)
    assert rec.classify(np.zeros((0, 3, 50, 25, 1), np.float32)) == []


def test_new_class_and_modes(ckpt, utd_clips):
    rec, _ = load_recognizer(str(ckpt), encoder=FakeEncoder(), top_k=2)
    rec.set_labels(["person falling down"], ["A person loses balance and falls to the floor."])
    assert all(p.label == "person falling down" and p.score == pytest.approx(1.0) for p in rec.classify(utd_clips))
    rec.set_labels(UTD_LABELS)
    rec.set_mode("prototype_bank")
    for _ in range(3):
        preds = rec.classify(utd_clips)
    assert rec.bank.counts().sum() == 12
    assert all(len(p.topk) == 2 for p in preds)
    rec.set_labels(UTD_LABELS + ["jump"])  # surviving classes keep their memories
    assert rec.bank.counts().sum() == 12 and rec.bank.num_classes == 6
    rec.reset_bank()
    assert rec.bank.counts().sum() == 0
    with pytest.raises(ValueError):
        rec.set_mode("nope")


def test_bank_save_load(ckpt, utd_clips, tmp_path):
    rec, _ = load_recognizer(str(ckpt), encoder=FakeEncoder(), mode="prototype_bank")
    rec.classify(utd_clips)
    path = rec.save_bank(tmp_path / "bank.npz")
    rec.reset_bank()
    rec.load_bank(path)
    assert rec.bank.counts().sum() == 4


def test_real_text_encoder_small(ckpt, utd_clips, tmp_path):
    """The real MiniLM encoder (cached on disk after the first run) produces usable features."""
    rec, meta = load_recognizer(str(ckpt), labels=["wave", "clap"], text_cache_dir=None)
    assert rec.labels.features.shape == (2, 384)
    assert rec.classify(utd_clips[:1])[0].label in ("wave", "clap")


def test_bad_clip_shape(ckpt):
    rec, _ = load_recognizer(str(ckpt), encoder=FakeEncoder())
    with pytest.raises(ValueError):
        rec.classify(np.zeros((1, 3, 50, 20, 1), np.float32))
    with pytest.raises(ValueError):
        Recognizer(rec.feature_fn, rec.labels, mode="bad")


@pytest.mark.slow
def test_default_checkpoint_recognises_real_windows(utd_dir):
    """Live-path consistency with training: the committed default checkpoint recognises real
    UTD-MHAD sequences of subject 5 (the subject its training held out for calibration) cut into
    the 1.5 s windows the node uses, through the same preprocessing, against all its classes (over 40)."""
    from pgfa_models.formats.utd_mhad import read_utd_mhad
    from recognizer_helpers import DEFAULT_CHECKPOINT

    rec, meta = load_recognizer(str(DEFAULT_CHECKPOINT), backend="eager")
    assert rec.labels.names == meta.labels and len(rec.labels) == len(meta.extra["class_members"]) > 40
    assert "utd_mhad:s5" in meta.extra["calibration"]["groups"]
    cls_of = {(s, int(k)): meta.labels[i] for i, ms in enumerate(meta.extra["class_members"]) for s, k in ms}
    cfg = PreprocessConfig(**meta.preprocess)
    clips, truth = [], []
    for a in range(1, 28):
        j = read_utd_mhad(utd_dir / f"a{a}_s5_t2_skeleton.mat")
        mid = len(j) // 2
        res = preprocess_clip([j[max(0, mid - 22): mid + 23]], "kinect_v1_20", cfg, num_person=meta.num_person,
                              timestamps=np.arange(len(j))[max(0, mid - 22): mid + 23] / 30.0)
        clips.append(res.clip)
        truth.append(cls_of[("utd_mhad", a - 1)])
    preds = rec.classify(np.stack(clips))
    top3 = np.mean([t in [lbl for lbl, _ in p.topk] for p, t in zip(preds, truth)])
    print(f"top-3 of all classes on held-out subject 5: {top3:.2f}")
    assert top3 >= 0.75, top3


def test_classification_not_blocked_while_embedding(ckpt, utd_clips):
    import threading

    release = threading.Event()
    started = threading.Event()

    class SlowEncoder(FakeEncoder):
        def encode(self, texts):
            started.set()
            release.wait(20)  # a text model loading: held until the test lets it go
            return super().encode(texts)

    rec, _ = load_recognizer(str(ckpt), encoder=FakeEncoder())
    rec.labels.encoder = SlowEncoder()
    t = threading.Thread(target=rec.set_labels, args=(["brand new class"],))
    t.start()
    assert started.wait(10)
    preds = rec.classify(utd_clips[:1])  # would wait for `release` if embedding held the lock
    still_embedding = t.is_alive() and not release.is_set()
    release.set()
    t.join()
    assert still_embedding and preds[0].label in UTD_LABELS  # old set, not blocked
    assert rec.classify(utd_clips[:1])[0].label == "brand new class"


def test_score_temperature_prefers_a_usable_calibration():
    from pgfa_models.recognition import score_temperature

    assert score_temperature({"calibration": {"tau": 0.08, "on_bound": False}}, 0.01) == (0.08, "calibrated")
    assert score_temperature({"calibration": {"tau": 0.005, "on_bound": True}}, 0.01) == (0.01, "learnt")
    for bad in ({}, None, {"calibration": None}, {"calibration": {"tau": "x"}}, {"calibration": {"tau": float("nan")}},
                {"calibration": {"tau": -1}}, {"calibration": {"tau": True}}, {"calibration": [1]}):
        assert score_temperature(bad, 0.01) == (0.01, "learnt")
