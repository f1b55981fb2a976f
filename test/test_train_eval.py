"""Training and zero-shot evaluation on real UTD-MHAD clips (one tiny shared training run):
the loss goes down, the checkpoint records what it was trained on, resume works, pgfa-eval's
transductive results equal transductive_predict on the same features, CLI smoke tests."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pgfa_models.alignment import transductive_predict
from training import cli_eval, cli_train
from training.datasets import load_utd_mhad
from training.evaluate import evaluate
from training.train import OptimConfig, load_recipe, lr_at, resolve_split, train

TINY = {"optim.epochs": 2, "optim.batch_size": 11, "optim.warmup_epochs": 0, "optim.schedule": "constant",
        "optim.lr": 0.05, "encoder.hidden_channels": 8, "num_threads": 2}


@pytest.fixture(scope="module")
def few_clips(utd_dir, tmp_path_factory):
    return load_utd_mhad(utd_dir, limit_per_class=1, cache_dir=tmp_path_factory.mktemp("clips"))


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
    assert [l["epoch"] for l in lines] == [1, 2]
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


@pytest.fixture(scope="module")
def ckpt(tiny_run, few_clips):
    return tiny_run[0] / "model.safetensors", few_clips

def test_transductive_equals_reference(ckpt):
    path, clips = ckpt
    rep = evaluate(path, "utd_mhad/U1", ["text", "transductive", "bank"], alpha=0.9, alphas=[0.5, 1.0],
                   clips=clips)
    data = rep["_data"]
    ref = transductive_predict(data.features, data.text_features, 0.9)
    res = {r["mode"]: r for r in rep["results"]}
    assert res["transductive"]["accuracy"] == pytest.approx(float((ref.final == data.labels).mean()))
    assert res["text"]["accuracy"] == pytest.approx(float((ref.initial == data.labels).mean()))
    assert data.names == sorted(data.names)  # stated stream order
    for r in res.values():
        assert {"mode", "accuracy", "n", "per_class"} <= set(r)
        assert r["n"] == len(data.labels) == 5
        assert sum(v["predicted"] for v in r["per_class"].values()) == r["n"]


def test_cli_eval_writes_json_report_png(ckpt, tmp_path, monkeypatch):
    path, clips = ckpt
    import training.evaluate as ev

    real = ev.load_dataset
    monkeypatch.setattr(ev, "load_dataset", lambda *a, **k: clips)
    rc = cli_eval.main(["--checkpoint", str(path), "--split", "utd_mhad/U1", "--modes", "text,transductive",
                        "--json", str(tmp_path / "o.json"), "--report", str(tmp_path / "o.md")])
    assert rc == 0
    out = json.loads((tmp_path / "o.json").read_text())
    assert [r["mode"] for r in out["results"]] == ["text", "transductive"]
    assert (tmp_path / "o_transductive_confusion.png").stat().st_size > 1000
    assert "prediction histogram" in (tmp_path / "o.md").read_text()


def test_cli_eval_hub_aware_modes_options_and_subject_groups(ckpt, tmp_path, monkeypatch, capsys):
    path, clips = ckpt
    import training.evaluate as ev

    monkeypatch.setattr(ev, "load_dataset", lambda *a, **k: clips)
    rc = cli_eval.main(["--checkpoint", str(path), "--split", "utd_mhad/U1", "--modes", "text,transductive_balanced,csls",
                        "--assign-options", "epsilon=0.1,csls_k=3", "--group-pattern", r"_s(\d+)_",
                        "--json", str(tmp_path / "h.json")])
    assert rc == 0
    out = json.loads((tmp_path / "h.json").read_text())
    assert [r["mode"] for r in out["results"]] == ["text", "transductive_balanced", "csls"]
    assert out["assignment"]["epsilon"] == 0.1 and out["assignment"]["csls_k"] == 3
    assert out["nn_ceiling"]["grouped"] and out["nn_ceiling"]["groups"] >= 1  # one clip per class here
    assert all("max_ratio" in r["hub"] for r in out["results"])
    assert cli_eval.main(["--checkpoint", str(path), "--split", "utd_mhad/U1", "--assign-options", "nope=1"]) == 2
    assert "assignment option" in capsys.readouterr().err


def test_two_stage_mode_needs_its_checkpoint(ckpt, capsys):
    path, clips = ckpt
    assert cli_eval.main(["--checkpoint", str(path), "--split", "utd_mhad/U1", "--modes", "two_stage"]) == 2
    assert "two-stage-checkpoint" in capsys.readouterr().err


def test_bad_split_is_a_clear_error(capsys, tmp_path):
    assert cli_train.main(["--split", "utd_mhad/U9", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown split 'utd_mhad/U9'" in err and "utd_mhad/U1" in err
    assert cli_eval.main(["--checkpoint", "x", "--split", "nope"]) == 2


def test_cli_eval_bad_outputs_fail_before_the_evaluation(tmp_path, monkeypatch, capsys):
    """--json DIR or an empty --modes used to surface only after the whole evaluation (a traceback,
    or nothing at all with exit 0); a write error after it is one line too."""
    import pgfa_models.eval_report as er
    import training.evaluate as ev

    def no_eval(*a, **k):
        raise AssertionError("evaluated despite a bad argument")

    monkeypatch.setattr(ev, "evaluate", no_eval)
    base = ["--checkpoint", str(tmp_path / "missing.safetensors"), "--split", "utd_mhad/U1"]
    assert cli_eval.main([*base, "--json", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert cli_eval.main([*base, "--modes", ","]) == 2
    assert "no mode" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert cli_eval.main([*base, "--report", str(tmp_path / "file" / "r.md")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert cli_eval.main([*base, "--json", str(tmp_path / "new" / "r.json")]) == 2  # the missing checkpoint
    assert (tmp_path / "new").is_dir() and "checkpoint not found" in capsys.readouterr().err  # folder made first

    ckpt = tmp_path / "c.safetensors"
    ckpt.write_bytes(b"x")
    monkeypatch.setattr(ev, "evaluate", lambda *a, **k: {"results": []})

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(er, "write_outputs", full_disk)
    assert cli_eval.main(["--checkpoint", str(ckpt), "--split", "utd_mhad/U1", "--json", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "No space left" in err


@pytest.mark.parametrize("module", ["training.cli_train", "training.cli_eval"])
def test_cli_help(module):
    r = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--split" in r.stdout


@pytest.mark.skipif(not os.environ.get("PGFA_TEST_DDP"), reason="set PGFA_TEST_DDP=1 (about 15 s)")
def test_ddp_two_processes_on_cpu(tmp_path):
    """torchrun with 2 CPU processes (gloo) from the same command; only rank 0 writes."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "training.cli_train",
           "--recipe", "config/training/utd_mhad.yaml", "--split", "utd_mhad/U1", "--out", str(tmp_path),
           "--limit-per-class", "2", "--epochs", "2", "--set", "encoder.hidden_channels=8",
           "--set", "optim.batch_size=16", "--set", "num_threads=1", "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["samples"] == 44
    assert (tmp_path / "model.safetensors").is_file()


def test_eval_warns_when_classes_were_seen_in_training(utd_dir):
    """The all-class default checkpoint evaluated on a split is flagged as not zero-shot."""
    from pgfa_ros.recognizer_params import DEFAULT_CHECKPOINT as ckpt

    with pytest.warns(UserWarning, match="not a zero-shot result"):
        report = evaluate(ckpt, "utd_mhad/U1", modes=("text",), data_root=str(utd_dir))
    assert len(report["not_zero_shot"]) == 5


def test_checkpoint_records_what_preprocessing_was_done(tiny_run, tmp_path):
    """Issue 13: SMIE arrays bypass preprocess_clip, so a checkpoint trained on them records no
    preprocessing options (and says why); options that could not be applied are refused."""
    from pgfa_models.checkpoint import load_checkpoint
    from pgfa_models.preprocess import PreprocessConfig
    from training.datasets import DatasetError, load_dataset
    from training.train import preprocess_record

    out, _ = tiny_run
    _, meta = load_checkpoint(out / "model.safetensors")
    assert meta.extra["preprocess_applied"] is True and meta.extra["preprocess_source"] == "preprocess_clip"
    assert meta.preprocess and PreprocessConfig(**meta.preprocess) == PreprocessConfig()

    smie = load_recipe("config/training/utd_mhad.yaml", {"data.root": "x/data.npy:x/label.npy"})
    pre, extra = preprocess_record(smie)
    assert pre == {} and extra == {"preprocess_applied": False, "preprocess_source": "smie_preprocessed"}
    with pytest.raises(DatasetError, match=r"\['view_normalize'\] cannot be applied"):
        load_dataset("ntu60", str(tmp_path / "d.npy") + ":" + str(tmp_path / "l.npy"),
                     PreprocessConfig(view_normalize=True), num_person=2)
