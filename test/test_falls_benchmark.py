"""benchmarks/falls: the rule is chosen on validation rows only, and a false-alarm rate from few
minutes carries its upper bound."""
import importlib.util
import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("falls_bench", REPO / "benchmarks" / "falls" / "run.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_poisson_upper_bound_of_zero_alarms(bench):
    assert bench.poisson_upper(0, 1.0) == pytest.approx(2.996, abs=1e-3)  # the "rule of three"
    assert bench.poisson_upper(0, 0.25) == pytest.approx(4 * 2.996, abs=1e-2)
    assert bench.poisson_upper(2, 1.0) > bench.poisson_upper(1, 1.0) > 2.996
    assert math.isinf(bench.poisson_upper(0, 0.0))


def test_choose_prefers_met_targets_then_fewest_alarms_then_shortest_run(bench):
    row = lambda t, c, r, fa: {"threshold": t, "consecutive": c, "recall": r, "false_alarms_per_hour": fa}  # noqa: E731
    sweep = [row(0.5, 1, 1.0, 30.0), row(0.9, 4, 0.96, 0.0), row(0.9, 2, 0.97, 0.0), row(0.99, 8, 0.5, 0.0)]
    assert (bench.choose(sweep)["threshold"], bench.choose(sweep)["consecutive"]) == (0.9, 2)
    # no row meets both: the best recall among the quiet ones
    sweep = [row(0.5, 1, 1.0, 30.0), row(0.9, 4, 0.80, 0.5), row(0.99, 8, 0.5, 0.0)]
    assert bench.choose(sweep)["recall"] == 0.80
