"""Seed ensembles of finished multi-source runs (training/ensemble.py), on short real runs."""
import json

import numpy as np
import pytest
import torch

from test_multi import TinyCatalog, setup  # noqa: F401 - the fixture: two real sources, few trials
from training import ensemble, multi


@pytest.fixture
def runs(setup, tmp_path):  # noqa: F811
    """Seeds 0 and 1 holding out seed 0's subjects, and seed 2 holding out its own."""
    out = {}
    for seed, val_seed in ((0, 0), (1, 0), (2, -1)):
        setup.corpus.val_seed = val_seed
        multi.train_multi(setup, "t/x", seed, tmp_path / f"s{seed}", device="cpu", progress=False,
                          catalog=TinyCatalog())
        out[seed] = tmp_path / f"s{seed}"
    return out


def test_ensemble_of_runs_sharing_validation_is_calibrated_and_evaluated(runs, tmp_path):
    from pgfa_models.checkpoint import load_model
    from pgfa_models.model import SeedEnsemble

    s = ensemble.build_ensemble([runs[0], runs[1]], tmp_path / "ens", command="test", catalog=TinyCatalog())
    assert s["members"] == 2 and s["member_seeds"] == [0, 1] and s["shared_validation"]
    groups = [v["groups"] for v in s["member_validation"]]
    assert s["validation"]["groups"] == groups[0] == groups[1] and s["validation"]["tau"] > 0
    model, meta = load_model(tmp_path / "ens" / "model.safetensors")
    assert isinstance(model, SeedEnsemble) and meta.members == 2
    assert meta.extra["calibration"]["tau"] == pytest.approx(s["validation"]["tau"])
    assert meta.extra["ensemble"]["member_seeds"] == [0, 1]
    # the feature is the members' mean normalised feature
    members = [load_model(runs[k] / "model.safetensors")[0] for k in (0, 1)]
    x = torch.randn(3, *[int(v) for v in (3, meta.encoder.num_frames, 25, 1)])
    with torch.inference_mode():
        want = torch.nn.functional.normalize(torch.stack([m.embed(x) for m in members]).mean(0), dim=-1)
        np.testing.assert_allclose(model.embed(x).numpy(), want.numpy(), atol=1e-6)
    tasks = {t["task"] for t in s["tasks"]}
    assert tasks == {"seen_concept", "zero_shot"}
    # the folder is a run folder: evaluated again from it alone, the same numbers
    again = multi.reevaluate(tmp_path / "ens", catalog=TinyCatalog())
    assert again["validation"]["accuracy"] == s["validation"]["accuracy"]
    assert again["tasks"][0]["modes"]["text"] == s["tasks"][0]["modes"]["text"]


def test_ensemble_without_shared_validation_has_no_calibration(runs, tmp_path):
    s = ensemble.build_ensemble([runs[0], runs[2]], tmp_path / "ens", catalog=TinyCatalog())
    assert not s["shared_validation"] and s["validation"] is None and s["tasks"]
    from pgfa_models.checkpoint import read_meta

    assert "calibration" not in read_meta(tmp_path / "ens" / "model.safetensors").extra
    assert multi.reevaluate(tmp_path / "ens", catalog=TinyCatalog())["validation"] is None


def test_ensemble_refuses_what_is_not_one_recipe(runs, tmp_path):
    with pytest.raises(ValueError, match="at least 2"):
        ensemble.build_ensemble([runs[0]], tmp_path / "e1", catalog=TinyCatalog())
    with pytest.raises(ValueError, match="repeat a seed"):
        ensemble.build_ensemble([runs[0], runs[0]], tmp_path / "e2", catalog=TinyCatalog())
    recipe = json.loads((runs[1] / "eval.json").read_text())
    assert recipe["protocol"] == "t/x"
    from pgfa_models.checkpoint import load_checkpoint, save_checkpoint
    from pgfa_models.model import SkeletonTextModel

    state, meta = load_checkpoint(runs[1] / "model.safetensors")
    model = SkeletonTextModel(meta.encoder, meta.text_dim)
    model.load_state_dict(state)
    meta.labels = [*meta.labels[:-1], "something else"]
    save_checkpoint(runs[1] / "model.safetensors", model, meta)
    with pytest.raises(ValueError, match="labels differs"):
        ensemble.build_ensemble([runs[0], runs[1]], tmp_path / "e3", catalog=TinyCatalog())
    assert ensemble.main([str(runs[0]), str(tmp_path / "missing"), "--out", str(tmp_path / "e4")]) == 2


def test_members_share_validation_by_the_subjects_they_held_out_not_by_their_seeds(runs, tmp_path):
    """Seed 2 drew its own validation subjects; when its eval.json names seed 0's, the ensemble is
    validated on them, and when seed 1's names others, it is not."""
    def groups(run):
        return json.loads((run / "eval.json").read_text())["validation"]["groups"]

    def set_groups(run, g):
        ev = json.loads((run / "eval.json").read_text())
        ev["validation"]["groups"] = g
        (run / "eval.json").write_text(json.dumps(ev))

    set_groups(runs[2], groups(runs[0]))
    s = ensemble.build_ensemble([runs[0], runs[2]], tmp_path / "same", catalog=TinyCatalog())
    assert s["shared_validation"] and sorted(s["validation"]["groups"]) == sorted(groups(runs[0]))
    set_groups(runs[1], ["nobody:s99"])
    s = ensemble.build_ensemble([runs[0], runs[1]], tmp_path / "other", catalog=TinyCatalog())
    assert not s["shared_validation"] and s["validation"] is None
