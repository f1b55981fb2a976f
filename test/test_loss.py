import numpy as np
import pytest
import torch

from pgfa_models.loss import TAU_MIN, kl_contrastive_loss


def _reference(v, w, labels, tau):
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    w = w / np.linalg.norm(w, axis=1, keepdims=True)
    s = v @ w.T / tau
    same = (labels[:, None] == labels[None, :]).astype(np.float64)
    m = same / same.sum(1, keepdims=True)

    def kl_rows(logits):
        logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        total = 0.0
        for i in range(len(logits)):
            for b in range(len(logits)):
                if m[i, b] > 0:
                    total += m[i, b] * (np.log(m[i, b]) - logp[i, b])
        return total / len(logits)

    return 0.5 * (kl_rows(s) + kl_rows(s.T))


def test_three_by_three_with_multiple_positives_matches_numpy():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(3, 4))
    w = rng.normal(size=(3, 4))
    labels = np.array([0, 0, 1])
    w[1] = w[0]  # rows of the same class share the text feature
    got = kl_contrastive_loss(torch.tensor(v), torch.tensor(w), torch.tensor(labels), 0.1)
    assert float(got) == pytest.approx(_reference(v, w, labels, 0.1), rel=1e-9)
    # row 0 target puts 1/2 on entries 0 and 1, nothing on 2
    unique = kl_contrastive_loss(torch.tensor(v), torch.tensor(w), torch.tensor([0, 1, 2]), 0.1)
    assert float(unique) == pytest.approx(_reference(v, w, np.array([0, 1, 2]), 0.1), rel=1e-9)
    assert float(unique) != pytest.approx(float(got))


def test_aligned_pairs_have_lower_loss_than_shuffled():
    g = torch.Generator().manual_seed(0)
    classes = torch.randn(6, 64, generator=g)
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5])
    text = classes[labels]
    skel = text + 0.1 * torch.randn(12, 64, generator=g)
    aligned = kl_contrastive_loss(skel, text, labels, 0.07)
    shuffled = kl_contrastive_loss(skel[torch.roll(torch.arange(12), 1)], text, labels, 0.07)
    assert aligned < 0.2 * shuffled
    assert aligned >= 0


def test_perfect_alignment_approaches_zero_and_scale_is_batch_independent():
    classes = torch.eye(8)
    labels = torch.arange(8)
    small = kl_contrastive_loss(classes, classes, labels, 0.01)
    assert float(small) < 1e-6
    g = torch.Generator().manual_seed(1)
    v = torch.randn(4, 16, generator=g)
    w = torch.randn(4, 16, generator=g)
    lab = torch.arange(4)
    one = kl_contrastive_loss(v, w, lab, 0.5)
    # the same batch repeated twice, with distinct labels per copy, keeps the same scale
    two = kl_contrastive_loss(torch.cat([v, v]), torch.cat([w, w]), torch.cat([lab, lab + 4]), 0.5)
    assert 0.5 * float(one) < float(two) < 2.0 * float(one) + 1.0


def test_tau_is_clamped_and_differentiable():
    v = torch.randn(4, 8)
    w = torch.randn(4, 8)
    labels = torch.tensor([0, 1, 1, 2])
    tiny = kl_contrastive_loss(v, w, labels, 1e-6)
    at_min = kl_contrastive_loss(v, w, labels, TAU_MIN)
    torch.testing.assert_close(tiny, at_min)
    log_tau = torch.tensor(np.log(0.07), requires_grad=True)
    kl_contrastive_loss(v, w, labels, log_tau.exp()).backward()
    assert log_tau.grad.abs() > 0


def test_shape_errors():
    with pytest.raises(ValueError):
        kl_contrastive_loss(torch.randn(3, 4), torch.randn(3, 5), torch.arange(3), 0.1)
    with pytest.raises(ValueError):
        kl_contrastive_loss(torch.randn(3, 4), torch.randn(3, 4), torch.arange(4), 0.1)
