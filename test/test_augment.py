"""Training augmentations: each changes what it should and keeps what it should."""
import numpy as np
import pytest
import torch

from pgfa_models.preprocess import PreprocessConfig, preprocess_body
from training.augment import AugmentConfig, augment_batch, replace_lower_body, time_warp


def _clips(n=4, t=50, m=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, t, 25, m, generator=g)


def test_disabled_is_identity_and_input_untouched():
    x = _clips()
    assert augment_batch(x, AugmentConfig()) is x
    keep = x.clone()
    augment_batch(x, AugmentConfig(rotate_y_deg=30, scale=0.2, speed=0.3, joint_noise=0.01,
                                   joint_dropout=0.1, lower_body=0.5), torch.Generator().manual_seed(1))
    assert torch.equal(x, keep)


def test_seeded_draws_are_reproducible():
    cfg = AugmentConfig(rotate_y_deg=30, scale=0.2, speed=0.3, joint_noise=0.01, joint_dropout=0.1)
    a = augment_batch(_clips(), cfg, torch.Generator().manual_seed(3))
    b = augment_batch(_clips(), cfg, torch.Generator().manual_seed(3))
    c = augment_batch(_clips(), cfg, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_rotation_about_y_keeps_heights_and_lengths():
    x = _clips()
    y = augment_batch(x, AugmentConfig(rotate_y_deg=90), torch.Generator().manual_seed(0))
    assert torch.allclose(y[:, 1], x[:, 1])
    assert torch.allclose(y.norm(dim=1), x.norm(dim=1), atol=1e-5)
    assert not torch.allclose(y, x)


def test_time_warp_is_exact_on_linear_motion():
    t = torch.arange(50, dtype=torch.float32)
    x = (t.view(1, 1, 50, 1, 1) * torch.ones(2, 3, 50, 25, 1))
    y = time_warp(x, torch.tensor([1.0, 2.0]))
    assert torch.allclose(y[0], x[0])
    centre = 24.5
    want = (centre + (t - centre) * 2).clamp(0, 49)
    assert torch.allclose(y[1, 0, :, 0, 0], want, atol=1e-5)  # twice as fast, edges held


def test_lower_body_matches_the_run_time_canonical_legs():
    """The augmentation produces what ``lower_body: canonical`` preprocessing does live."""
    rng = np.random.default_rng(0)
    body = rng.normal(size=(30, 25, 3)) * 0.01
    body[:, 4] += (-0.17, 0.45, 0); body[:, 8] += (0.17, 0.45, 0)
    body[:, 5] += (-0.2, 0.2, 0); body[:, 9] += (0.2, 0.2, 0)
    body[:, 6] += (-0.22, -0.05, 0); body[:, 10] += (0.22, -0.05, 0)
    body[:, :, 2] += 3.0
    kw = dict(scale_normalize=True, scale_reference="arms", zero_is_missing=False)
    plain = preprocess_body(body, "ntu_25", PreprocessConfig(**kw)).clip
    canon = preprocess_body(body, "ntu_25", PreprocessConfig(lower_body="canonical", **kw)).clip
    x = torch.from_numpy(plain)[None, ..., None]
    y = replace_lower_body(x, torch.tensor([True]))[0, ..., 0].numpy()
    legs = [13, 14, 15, 17, 18, 19]
    np.testing.assert_allclose(np.median(y[:, :, legs] - canon[:, :, legs], axis=1), 0, atol=0.02)
    np.testing.assert_allclose(y[:, :, :13], plain[:, :, :13])
    z = replace_lower_body(x, torch.tensor([False]))
    assert torch.equal(z, x)


def test_empty_body_slots_stay_zero():
    x = _clips(m=2)
    x[..., 1] = 0
    y = augment_batch(x, AugmentConfig(rotate_y_deg=30, scale=0.2, speed=0.2, joint_noise=0.05,
                                       joint_dropout=0.2, lower_body=1.0), torch.Generator().manual_seed(0))
    assert torch.count_nonzero(y[..., 1]) == 0


@pytest.mark.parametrize("bad", [{"scale": 1.0}, {"speed": -0.1}, {"joint_dropout": 1.5},
                                 {"lower_body": float("nan")}])
def test_invalid_strengths_are_refused(bad):
    with pytest.raises(ValueError):
        AugmentConfig(**bad)
