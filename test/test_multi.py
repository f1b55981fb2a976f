"""Multi-source trainer: a short real run on real windows of two sources, end to end."""
import json
from dataclasses import dataclass

import numpy as np
import pytest

from training import corpus, multi, protocols
from training.train import load_recipe


@dataclass(frozen=True)
class C:
    label: int
    name: str
    concepts: tuple

    def texts(self, kind):
        return [f"a person does {self.name}", f"{self.name}, {kind}"]


@dataclass(frozen=True)
class K:
    id: str
    name: str


class TinyCatalog:
    """Every UTD-MHAD and SmartFallMM class its own concept, but two shared by both."""

    def classes(self, dataset):
        if dataset == "utd_mhad":
            shared = {2: ("wave",), 13: ("walk",)}
            return [C(i, f"utd {i}", shared.get(i, (f"u{i}",))) for i in range(27)]
        shared = {6: ("wave",), 7: ("walk",)}
        return [C(i, f"fall {i}", shared.get(i, (f"f{i}",))) for i in range(14)]

    def concept(self, cid):
        return K(cid, cid.replace("_", " "))


@pytest.fixture
def setup(tmp_path, monkeypatch, utd_dir, smartfall_dir):
    monkeypatch.setenv("PGFA_CACHE_DIR", str(tmp_path / "cache"))
    real = corpus.load_windows

    def limited(source, root=None, *a, **kw):  # a few trials per source keeps the test fast
        root = {"utd_mhad": utd_dir, "smartfallmm": smartfall_dir}[source]
        kw["limit"] = 40 if source == "utd_mhad" else 45
        return real(source, root, *a, **kw)

    monkeypatch.setattr(multi, "load_windows", limited)
    proto = protocols.Protocol("t/x", ("utd_mhad",), "smartfallmm")
    monkeypatch.setattr(multi, "get_protocol", lambda name: proto)
    rng = np.random.default_rng(0)
    table = {}

    def fake_encode(model, texts):
        for t in texts:
            table.setdefault(t, rng.normal(size=16))
        return np.stack([table[t] for t in texts]).astype(np.float32)

    import training.train as tt
    monkeypatch.setattr(tt, "encode_texts", fake_encode)
    recipe = load_recipe("config/training/multi_source.yaml",
                         {"optim.epochs": 2, "optim.batch_size": 16, "num_threads": 1,
                          "corpus.stride_frames": 40})
    return recipe


def test_train_multi_trains_calibrates_saves_and_evaluates(setup, tmp_path):
    out = tmp_path / "run"
    s = multi.train_multi(setup, "t/x", 0, out, device="cpu", progress=False, catalog=TinyCatalog())
    assert s["train_trials"] > 0 and len(s["classes"]) <= 27
    assert s["validation"] is not None and s["validation"]["n"] > 0 and s["validation"]["tau"] > 0
    tasks = {t["task"]: t for t in s["tasks"]}
    assert set(tasks) == {"seen_concept", "zero_shot"}
    assert tasks["seen_concept"]["classes"] == ["fall 6", "fall 7"]
    novel = tasks["zero_shot"]["classes"]  # the novel classes that have test windows in the few trials read
    assert len(novel) >= 2 and set(novel) <= {f"fall {i}" for i in range(14) if i not in (6, 7)}
    for m in ("text", "transductive", "balanced", "bank"):
        r = tasks["zero_shot"]["modes"][m]
        assert 0 <= r["window_acc"] <= 1 and sum(r["predicted"]) == r["n_windows"]
    assert "accuracy" in tasks["zero_shot"]["nn_ceiling"]
    assert "text" in tasks["zero_shot"]["upper_body"]
    saved = json.loads((out / "eval.json").read_text())
    assert saved["protocol"] == "t/x" and (out / "model.safetensors").is_file()
    from pgfa_models.checkpoint import load_model
    model, meta = load_model(out / "model.safetensors")
    assert meta.labels == s["classes"] and meta.preprocess["window_seconds"] == 1.5
    assert meta.extra["calibration"]["tau"] == pytest.approx(s["validation"]["tau"])
    # every mode scored on the held-out subjects of the training classes, at the tasks' sizes
    # the live situation: trained classes + the task's classes in one label set
    g = tasks["zero_shot"]["generalized"]
    assert g["margins"][0] == 0 and len(g["harmonic"]) == len(g["margins"]) == len(multi.MARGINS)
    assert "generalized" not in tasks["seen_concept"]
    # evaluated again from the run folder alone: the same numbers
    again = multi.reevaluate(out, catalog=TinyCatalog())
    assert again["reevaluated"] and again["final_loss"] == s["final_loss"]
    assert again["tasks"][0]["modes"]["text"] == s["tasks"][0]["modes"]["text"]
    assert json.loads((out / "eval.json").read_text())["reevaluated"] == again["reevaluated"]
    # (the few trials read here leave one class in validation: the subsets are tested below)
    vm = s["validation"]["modes"]
    assert all(set(v) == set(multi.EVAL_MODES) for v in vm.values())
    assert meta.extra["calibration"]["modes"] == vm


def test_validation_modes_score_random_subsets_of_the_training_classes():
    rng = np.random.default_rng(0)
    text = np.eye(6, 8)
    labels = np.repeat(np.arange(6), 10)
    feats = text[labels] + 0.05 * rng.normal(size=(60, 8))
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    trial = np.repeat(np.arange(30), 2)
    names = [f"c{i}" for i in range(6)]
    out = multi.validation_modes(feats, labels, trial, text, names, ways=[3, 9, 1], draws=4, seed=1)
    assert set(out) == {"3", "6"}  # a task larger than the training classes uses all of them
    assert out["3"]["text"] == {"window_acc": 1.0, "trial_acc": 1.0, "draws": 4}
    # a feature on the wrong text is wrong in every mode that trusts the text alone
    feats[:10] = text[1]
    bad = multi.validation_modes(feats, labels, trial, text, names, ways=[6], draws=1, modes=("text",))
    assert bad["6"]["text"]["window_acc"] == pytest.approx(50 / 60)


def test_validation_holds_out_whole_subjects():
    ws = corpus.WindowSet(np.zeros((8, 3, 50, 25, 1), np.float32), np.array(["a"] * 8), np.zeros(8, np.int64),
                          np.arange(8), np.array([f"a:s{i % 4}" for i in range(8)]), np.zeros(8), [""] * 8,
                          [{}] * 8)
    mask, groups = multi.split_validation(ws, 1, 0)
    assert len(groups) == 1 and mask.sum() == 2 and set(ws.group[mask]) == set(groups)
    assert multi.split_validation(ws, 0, 0)[0].sum() == 0


def _fall_windows(metas):
    n = len(metas)
    return corpus.WindowSet(np.zeros((n, 3, 50, 25, 1), np.float32), np.array(["smartfallmm"] * n),
                            np.zeros(n, np.int64), np.arange(n),
                            np.array([f"smartfallmm:S{30 + i}" for i in range(n)]), np.zeros(n),
                            [f"t{i}" for i in range(n)], metas)


def _held_out_setup(monkeypatch, metas):
    proto = protocols.Protocol("t/held", ("smartfallmm",), "smartfallmm",
                               train_filter={"participant": [30, 31]}, test_filter={"participant": [32, 33]})
    monkeypatch.setattr(multi, "load_windows", lambda *a, **kw: _fall_windows(metas))
    recipe = load_recipe("config/training/multi_source.yaml", {})
    return recipe, protocols.resolve(proto, TinyCatalog())


def test_held_out_participants_are_never_trained_on(monkeypatch):
    recipe, resolved = _held_out_setup(monkeypatch, [{"participant": 30 + i} for i in range(4)])
    ws, *_ = multi.build_training_set(recipe, resolved, TinyCatalog(), cache=False)
    assert sorted(set(ws.group.tolist())) == ["smartfallmm:S30", "smartfallmm:S31"]


def test_a_filter_field_on_no_trial_is_refused_not_ignored(monkeypatch):
    # a corpus cache written before trials carried "participant": the filter must not pass everything
    recipe, resolved = _held_out_setup(monkeypatch, [{"fall": True}] * 4)
    with pytest.raises(protocols.ProtocolError, match="participant"):
        multi.build_training_set(recipe, resolved, TinyCatalog(), cache=False)


def test_sampled_text_step_draws_each_target_from_its_own_class(monkeypatch):
    import torch

    import training.train as tt

    sets = [np.eye(4, dtype=np.float32)[:2], np.eye(4, dtype=np.float32)[2:3], np.eye(4, dtype=np.float32)[3:]]
    mean = torch.tensor([[0.7071, 0.7071, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    seen = []
    real = tt.kl_contrastive_loss

    def spy(v, w, y, tau):
        seen.append(w.clone())
        return real(v, w, y, tau)

    monkeypatch.setattr(tt, "kl_contrastive_loss", spy)
    step = tt._sampled_text_step(sets, mean)
    module = lambda x: (x, torch.tensor(0.1))  # noqa: E731 - features are the inputs
    y = torch.tensor([0, 0, 0, 0, 0, 0, 1, 2] * 4)
    torch.manual_seed(0)
    loss, correct = step(module, mean[y] + 0.01, y)
    w = seen[0]
    assert torch.isfinite(loss) and int(correct) == len(y)  # accuracy against the class means
    picked = w.argmax(1)
    assert set(picked[y == 0].tolist()) == {0, 1}  # both texts of class 0 are drawn
    assert (picked[y == 1] == 2).all() and (picked[y == 2] == 3).all()


def test_text_sample_trains_multi_source(setup, tmp_path):
    from dataclasses import replace

    recipe = replace(setup, text=replace(setup.text, sample=True))
    s = multi.train_multi(recipe, "t/x", 0, None, device="cpu", progress=False, catalog=TinyCatalog(),
                          evaluate_after=False)
    assert np.isfinite(s["final_loss"]) and s["final_loss"] < s["first_loss"] * 1.5


def test_text_center_is_trained_stored_and_used_live(setup, tmp_path):
    """text.center: the training targets are centred, the centre goes into the checkpoint, and the
    label set the node builds from that checkpoint gives the very features training used."""
    from dataclasses import replace

    from pgfa_models.checkpoint import load_model
    from pgfa_models.recognition import LabelSet

    import training.train as tt

    recipe = replace(setup, text=replace(setup.text, center=True, sample=True))
    out = tmp_path / "run"
    s = multi.train_multi(recipe, "t/x", 0, out, device="cpu", progress=False, catalog=TinyCatalog(),
                          evaluate_after=False)
    _, meta = load_model(out / "model.safetensors")
    c = np.asarray(meta.extra["text_center"])
    assert c.shape == (16,) and np.isfinite(c).all()

    class Enc:
        def encode(self, texts):
            return tt.encode_texts(recipe.text.model, texts)

    ls = LabelSet.for_checkpoint(Enc(), meta, meta.labels)
    texts = [multi._texts_of(TinyCatalog(), recipe.text.descriptions, [tuple(m) for m in ms])
             for ms in meta.extra["class_members"]]
    from pgfa_models.recognition import center_text, ensemble_features
    raw = ensemble_features(Enc().encode, texts)
    np.testing.assert_allclose(raw.mean(0), c, atol=1e-5)  # the centre is the training classes' mean
    np.testing.assert_allclose(ls.features, center_text(raw, c), atol=1e-5)
    assert len(ls) == len(s["classes"])


def test_class_sentences_split_skeleton_descriptions_and_share_common_sentences():
    class Cat:
        def classes(self, dataset):
            texts = {0: ["The arms rise. The feet stay planted."], 1: ["The legs bend!  The feet stay planted."]}
            return [type("Cls", (), {"label": k, "texts": lambda self, kind, t=t: t if kind == "skeleton" else []})()
                    for k, t in texts.items()]

    sent, targets = multi.class_sentences(Cat(), [[("d", 0)], [("d", 1)]])
    assert sent == ["The arms rise.", "The feet stay planted.", "The legs bend!"]
    np.testing.assert_allclose(targets, [[0.5, 0.5, 0], [0, 0.5, 0.5]])


def test_sentence_aux_loss_is_lowest_for_a_window_on_its_own_sentences():
    import torch

    from training.train import sentence_aux_loss

    sentences = torch.eye(3)
    targets = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    aux = sentence_aux_loss(sentences, targets, 2.0)
    y = torch.tensor([0])
    tau = torch.tensor(0.1)
    own, other = aux(torch.tensor([[1.0, 1.0, 0.0]]), y, tau), aux(torch.tensor([[0.0, 0.0, 1.0]]), y, tau)
    assert torch.isfinite(own) and own < other
    assert aux(torch.tensor([[1.0, 1.0, 0.0]]), y, tau) == pytest.approx(2 * sentence_aux_loss(sentences, targets, 1.0)(
        torch.tensor([[1.0, 1.0, 0.0]]), y, tau).item())  # the weight scales it


def test_text_sentence_aux_trains_multi_source(setup):
    from dataclasses import replace

    recipe = replace(setup, text=replace(setup.text, sentence_aux=0.5))
    s = multi.train_multi(recipe, "t/x", 0, None, device="cpu", progress=False, catalog=TinyCatalog(),
                          evaluate_after=False)
    assert np.isfinite(s["final_loss"]) and s["final_loss"] < s["first_loss"] * 1.5
    with pytest.raises(ValueError, match="sentence_aux"):
        multi.train_multi(replace(setup, text=replace(setup.text, sentence_aux=-1.0)), "t/x", 0, None,
                          device="cpu", progress=False, catalog=TinyCatalog(), evaluate_after=False)


def test_text_sample_is_refused_by_the_single_dataset_trainer():
    from dataclasses import replace

    from training.train import train

    recipe = load_recipe("config/training/utd_mhad_quick.yaml")
    with pytest.raises(ValueError, match="text.sample"):
        train(replace(recipe, text=replace(recipe.text, sample=True)), "U1", 0, None)
    with pytest.raises(ValueError, match="sentence_aux"):
        train(replace(recipe, text=replace(recipe.text, sentence_aux=0.5)), "U1", 0, None)


def test_generalized_curve_trades_trained_classes_for_new_ones():
    """Trained-class windows sit on their texts; new-class windows sit between their text and a
    trained text, nearer the trained one. A margin on the trained classes wins the new windows
    back at some cost: the curve shows both sides and their harmonic mean."""
    seen_text, new_text = np.eye(4)[:2], np.eye(4)[2:]
    seen_feats = np.repeat(seen_text, 5, axis=0)
    seen_labels = np.repeat([0, 1], 5)
    f = np.array([[0.8, 0, 0.6, 0], [0, 0.8, 0, 0.6]])
    test_feats, test_labels = np.repeat(f, 5, axis=0), np.repeat([0, 1], 5)
    g = multi.generalized_curve(seen_feats, seen_labels, seen_text, test_feats, test_labels, new_text,
                                margins=(0.0, 0.3, 1.2))
    assert g["seen_acc"] == [1.0, 1.0, 0.0] and g["unseen_acc"] == [0.0, 1.0, 1.0]
    assert g["harmonic"] == [0.0, 1.0, 0.0] and g["unseen_share_of_seen"] == [0.0, 0.0, 1.0]
