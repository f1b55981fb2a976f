"""Temperature scaling: recovers the temperature that generated the data; errors are clear."""
import numpy as np
import pytest

from pgfa_models.calibration import expected_calibration_error, fit_temperature, softmax


def _sample(tau, n=4000, k=6, seed=0):
    rng = np.random.default_rng(seed)
    sims = rng.uniform(-0.2, 0.6, size=(n, k))
    p = softmax(sims, tau)
    labels = np.array([rng.choice(k, p=row) for row in p])
    return sims, labels


@pytest.mark.parametrize("tau", [0.03, 0.1, 0.3])
def test_recovers_the_generating_temperature(tau):
    sims, labels = _sample(tau)
    cal = fit_temperature(sims, labels)
    assert cal.tau == pytest.approx(tau, rel=0.15)
    assert not cal.on_bound
    assert cal.ece < 0.05
    # a much sharper temperature (the training clamp) is worse calibrated
    assert expected_calibration_error(softmax(sims, 0.01), labels) > cal.ece


def test_perfectly_separable_data_hits_the_bound_and_says_so():
    sims = np.eye(5)[np.arange(50) % 5]
    cal = fit_temperature(sims, np.arange(50) % 5)
    assert cal.on_bound and cal.accuracy == 1.0


@pytest.mark.parametrize("sims,labels", [(np.zeros((0, 3)), np.zeros(0, int)), (np.zeros((4, 1)), np.zeros(4, int)),
                                         (np.zeros((4, 3)), np.array([0, 1, 2, 3])), (np.zeros((4, 3)), np.zeros(3, int))])
def test_bad_input_is_a_clear_error(sims, labels):
    with pytest.raises(ValueError):
        fit_temperature(sims, labels)
