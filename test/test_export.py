"""pgfa-export: artifacts and parity report on real UTD-MHAD clips."""
from __future__ import annotations

import json

import numpy as np
import pytest

from test_runtime import shared_checkpoint
from training.cli_export import main
from training.export import export, parity


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return shared_checkpoint(tmp_path_factory)


def test_export_parity_report_on_utd(ckpt, utd_dir):
    report = export(ckpt, ["compiled", "onnxruntime", "tensorrt"], clips_from=utd_dir, max_clips=16,
                    labels="random")
    assert report.num_clips == 16 and "UTD-MHAD" in report.clips
    rows = {r["backend"].split("/")[0]: r for r in report.rows}
    for name in ("compiled", "onnxruntime"):
        assert rows[name]["status"] == "ok", rows[name]
        assert rows[name]["max_abs_diff"] <= 1e-4 and rows[name]["top1_agreement"] == 1.0
    assert rows["tensorrt"]["status"] in ("unavailable", "ok")
    assert report.ok
    md = report.to_markdown()
    assert "| compiled/cpu/fp32 | ok |" in md and "Result: PASS" in md
    assert json.loads(report.to_json())["ok"] is True


def test_cli_writes_report(ckpt, tmp_path, capsys):
    out = tmp_path / "report"
    rc = main(["--checkpoint", str(ckpt), "--backends", "onnxruntime,tensorrt", "--labels", "random",
               "--out", str(out)])
    assert rc == 0
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["ok"] and data["rows"][0]["status"] == "ok"
    assert "Parity report" in (tmp_path / "report.md").read_text()
    assert "onnxruntime/cpu/fp32 | ok" in capsys.readouterr().out


def test_cli_bad_arguments(ckpt, tmp_path, capsys):
    assert main(["--checkpoint", str(ckpt), "--backends", "tflite"]) == 2
    assert main(["--checkpoint", str(tmp_path / "missing.safetensors"), "--backends", "eager"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_cli_bad_max_clips_and_out_folder_fail_before_the_export(tmp_path, monkeypatch, capsys):
    """--max-clips -3 was taken as a slice; --out in a missing folder crashed with a traceback
    only after every backend was built. The folder is now created first, and a path under a
    file fails before any build."""
    import training.export as ex

    built = []
    monkeypatch.setattr(ex, "export", lambda *a, **k: built.append(1) or pytest.fail("built"))
    ck = str(tmp_path / "c.safetensors")
    assert main(["--checkpoint", ck, "--backends", "eager", "--max-clips", "-3"]) == 2
    assert "--max-clips" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["--checkpoint", ck, "--backends", "eager", "--out", str(tmp_path / "file" / "rep")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1 and not built

    class Report:
        ok = True

        def to_markdown(self):
            return "# Parity report\n"

        def to_json(self):
            return "{}"

    monkeypatch.setattr(ex, "export", lambda *a, **k: Report())
    assert main(["--checkpoint", ck, "--backends", "eager", "--out", str(tmp_path / "new" / "dir" / "rep")]) == 0
    assert (tmp_path / "new" / "dir" / "rep.md").is_file() and (tmp_path / "new" / "dir" / "rep.json").is_file()


def test_parity_metrics():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 8)).astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    text = np.eye(8, dtype=np.float32)
    p = parity(a, a, text)
    assert p["max_abs_diff"] == 0 and p["top1_agreement"] == 1.0
    p = parity(a, -a, text)
    assert p["top1_agreement"] < 1.0 and p["min_cosine"] < 0
