import pytest
import torch

from pgfa_models.encoders import STGCN, ShiftGCN


def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("m", [1, 2])
def test_stgcn_forward_shapes(m):
    torch.manual_seed(0)
    enc = STGCN().eval()
    x = torch.randn(3, 3, 50, 25, m)
    y = enc(x)
    assert y.shape == (3, 256)
    assert torch.isfinite(y).all()


def test_stgcn_setting_one_layout():
    enc = STGCN()
    chans = [(b.gcn.conv.in_channels, b.gcn.out_channels) for b in enc.blocks]
    assert chans == [(3, 16), (16, 16), (16, 16), (16, 16), (16, 32), (32, 32), (32, 32),
                     (32, 64), (64, 64), (64, 256)]
    assert enc.blocks[0].residual is None
    assert [b.tcn[2].stride[0] for b in enc.blocks] == [1, 1, 1, 1, 2, 1, 1, 2, 1, 1]
    assert all(b.edge_importance.shape == (3, 25, 25) for b in enc.blocks)
    assert n_params(enc) == 821_380
    assert n_params(STGCN(edge_importance=False)) == 802_630


def test_stgcn_is_per_sample_and_does_not_modify_input():
    torch.manual_seed(0)
    enc = STGCN().eval()
    x = torch.randn(2, 3, 30, 25, 2)
    x0 = x.clone()
    y = enc(x)
    assert torch.equal(x, x0)
    torch.testing.assert_close(enc(x[1:]), y[1:], rtol=1e-4, atol=1e-5)


def test_stgcn_gradients_reach_edge_importance():
    enc = STGCN()
    enc(torch.randn(2, 3, 20, 25, 1)).pow(2).sum().backward()
    assert enc.blocks[3].edge_importance.grad.abs().sum() > 0


@pytest.mark.parametrize("m", [1, 2])
def test_shiftgcn_forward_shape(m):
    torch.manual_seed(0)
    enc = ShiftGCN(num_person=m).eval()
    y = enc(torch.randn(2, 3, 50, 25, m))
    assert y.shape == (2, 256) and torch.isfinite(y).all()


def test_shiftgcn_param_count_and_shift_grad():
    enc = ShiftGCN()
    assert n_params(enc) == 674_721
    enc(torch.randn(2, 3, 20, 25, 1)).pow(2).sum().backward()
    assert enc.units[4].tcn.shift_out.shift.grad.abs().sum() > 0
    assert enc.units[2].gcn.feature_mask.grad.abs().sum() > 0


def test_temporal_shift_integer_and_fractional():
    from pgfa_models.encoders.shiftgcn import TemporalShift
    ts = TemporalShift(2)
    with torch.no_grad():
        ts.shift.copy_(torch.tensor([1.0, -0.5]))
    x = torch.arange(5.0).reshape(1, 1, 5, 1).repeat(1, 2, 1, 1)
    y = ts(x)[0, :, :, 0]
    torch.testing.assert_close(y[0], torch.tensor([1.0, 2, 3, 4, 0]))  # reads t+1, zero past the end
    torch.testing.assert_close(y[1], torch.tensor([0.0, 0.5, 1.5, 2.5, 3.5]))  # half of x[0] at t=0


def test_spatial_shift_is_a_permutation():
    from pgfa_models.encoders.shiftgcn import _shift_indices
    for c in (3, 64):
        for s in (1, -1):
            idx = _shift_indices(25, c, s)
            assert sorted(idx.tolist()) == list(range(25 * c))
    # forward then backward shift of the same width is the identity
    fwd, back = _shift_indices(25, 8, 1), _shift_indices(25, 8, -1)
    x = torch.arange(200.0)
    assert torch.equal(x[fwd][back], x)
