"""benchmarks/crossdata/bias_removal.py: the table takes each variant's best margin over the mean
of all runs' curves, and the committed table is what its JSON gives."""
import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HERE = REPO / "benchmarks" / "crossdata"


def _mod():
    spec = importlib.util.spec_from_file_location("crossdata_bias_removal", HERE / "bias_removal.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _curve(h, margins=(0.0, 0.1)):
    return {"margins": list(margins), "seen_acc": [0.8, 0.5], "unseen_acc": [0.0, 0.4], "harmonic": h}


def test_each_variant_is_shown_at_its_best_mean_margin():
    b = _mod()
    task = lambda h: {"margin": _curve(h), "centre": _curve([0.3, 0.1]), "zscore": _curve([0.0, 0.2], (0, 1))}  # noqa: E731
    res = {"command": "c", "date": "d", "machine": "m",
           "runs": {"xsource_a_s0": {"tasks": {"zero_shot": task([0.0, 0.4])}},
                    "xsource_b_s0": {"tasks": {"zero_shot": task([0.1, 0.2])}}}}
    md = b.write_markdown(res)
    assert "| margin | 80.0 / 0.0 / 5.0 | 0.1 | 50.0 / 40.0 / 30.0 | a 40.0, b 20.0 |" in md
    assert "| centre | 80.0 / 0.0 / 30.0 | 0 | 80.0 / 0.0 / 30.0 | a 30.0, b 30.0 |" in md
    assert "| zscore | 80.0 / 0.0 / 0.0 | 1 |" in md


def test_committed_table_is_rebuilt_from_its_json():
    b = _mod()
    res = json.loads((HERE / "bias_removal.json").read_text())
    assert b.write_markdown(res) == (HERE / "bias_removal.md").read_text()
