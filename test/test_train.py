"""Training on real UTD-MHAD clips: a tiny run lowers the loss; checkpoint, log and resume."""
import json

import numpy as np
import pytest
import torch

from training.datasets import load_utd_mhad
from training.train import Recipe, load_recipe, lr_at, resolve_split, train, OptimConfig

TINY = {"optim.epochs": 3, "optim.batch_size": 16, "optim.warmup_epochs": 0, "optim.schedule": "constant",
        "optim.lr": 0.05, "encoder.hidden_channels": 8, "num_threads": 2}


@pytest.fixture(scope="module")
def few_clips(utd_dir, tmp_path_factory):
    return load_utd_mhad(utd_dir, limit_per_class=2, cache_dir=tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="module")
def tiny_run(few_clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    recipe = load_recipe("config/training/utd_mhad.yaml", TINY)
    summary = train(recipe, "utd_mhad/U1", 0, out, device="cpu", clips=few_clips, progress=False)
    return out, summary


def test_recipes_load():
    for name in ("utd_mhad", "utd_mhad_quick", "utd_mhad_two_stage", "utd_mhad_two_stage_quick"):
        r = load_recipe(f"config/training/{name}.yaml")
        assert r.data.num_person == r.encoder.num_person == 1
    r = load_recipe("config/training/utd_mhad.yaml")
    assert (r.optim.lr, r.optim.momentum, r.optim.weight_decay, r.optim.batch_size, r.optim.epochs,
            r.optim.warmup_epochs) == (0.05, 0.9, 5e-4, 128, 50, 5)


def test_lr_schedule_warmup_then_cosine():
    o = OptimConfig(lr=0.1, epochs=10, warmup_epochs=2)
    lrs = [lr_at(s, 5, o) for s in range(50)]
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] < 0.01


def test_tiny_training_lowers_loss(tiny_run):
    out, summary = tiny_run
    assert summary["final_loss"] < summary["first_loss"]
    lines = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines] == [1, 2, 3]
    assert (out / "model.safetensors").is_file() and (out / "state_e2e.pt").is_file()


def test_checkpoint_records_training(tiny_run):
    from pgfa_models.checkpoint import load_model

    out, _ = tiny_run
    model, meta = load_model(out / "model.safetensors")
    split = resolve_split("utd_mhad/U1")
    assert meta.num_person == 1 and meta.extra["class_ids"] == list(split.seen)
    assert len(meta.labels) == 22 and meta.extra["description_kind"] == "complete"
    assert not set(meta.extra["class_ids"]) & set(split.unseen)  # never trained on unseen classes


def test_resume_is_a_no_op_when_done(tiny_run, few_clips):
    out, summary = tiny_run
    recipe = load_recipe("config/training/utd_mhad.yaml", TINY)
    again = train(recipe, "utd_mhad/U1", 0, out, device="cpu", clips=few_clips, progress=False)
    assert again["final_loss"] == summary["final_loss"]
    a = summary["model"].state_dict()
    b = again["model"].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_two_stage_trains(few_clips, tmp_path):
    recipe = load_recipe("config/training/utd_mhad_two_stage.yaml",
                         {**TINY, "optim.epochs": 1, "two_stage.align_epochs": 5})
    s = train(recipe, "utd_mhad/U1", 0, tmp_path, device="cpu", clips=few_clips, progress=False)
    stages = [h["stage"] for h in s["history"]]
    assert stages == ["ce"] + ["align"] * 5
    align = [h["loss"] for h in s["history"] if h["stage"] == "align"]
    assert align[-1] < align[0]


def test_all_split_has_every_class():
    s = resolve_split("utd_mhad/all")
    assert s.seen == tuple(range(27)) and s.unseen == ()
