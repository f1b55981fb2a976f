"""pgfa-eval: transductive results equal transductive_predict on the same features; CLI smoke."""
import json
import subprocess
import sys

import numpy as np
import pytest

from pgfa_models.alignment import transductive_predict
from training import cli_eval, cli_train
from training.evaluate import evaluate
from training.train import load_recipe, train

TINY = {"optim.epochs": 1, "optim.batch_size": 16, "optim.warmup_epochs": 0, "encoder.hidden_channels": 8,
        "num_threads": 2}


@pytest.fixture(scope="module")
def ckpt(utd_dir, tmp_path_factory):
    from training.datasets import load_utd_mhad

    clips = load_utd_mhad(utd_dir, limit_per_class=2, cache_dir=tmp_path_factory.mktemp("clips"))
    out = tmp_path_factory.mktemp("run")
    train(load_recipe("config/training/utd_mhad.yaml", TINY), "utd_mhad/U1", 0, out, device="cpu",
          clips=clips, progress=False)
    return out / "model.safetensors", clips


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
        assert r["n"] == len(data.labels) == 10
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


def test_two_stage_mode_needs_its_checkpoint(ckpt, capsys):
    path, clips = ckpt
    assert cli_eval.main(["--checkpoint", str(path), "--split", "utd_mhad/U1", "--modes", "two_stage"]) == 2
    assert "two-stage-checkpoint" in capsys.readouterr().err


def test_bad_split_is_a_clear_error(capsys, tmp_path):
    assert cli_train.main(["--split", "utd_mhad/U9", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown split 'utd_mhad/U9'" in err and "utd_mhad/U1" in err
    assert cli_eval.main(["--checkpoint", "x", "--split", "nope"]) == 2


@pytest.mark.parametrize("module", ["training.cli_train", "training.cli_eval"])
def test_cli_help(module):
    r = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--split" in r.stdout
