import math

import pytest
import torch

from pgfa_models.config import from_dict, to_dict
from pgfa_models.encoders import STGCN, ShiftGCN
from pgfa_models.loss import kl_contrastive_loss
from pgfa_models.model import EncoderConfig, SkeletonTextModel, build_encoder


def test_setting_one_has_one_million_parameters():
    model = SkeletonTextModel(EncoderConfig(), text_dim=768)
    total = sum(p.numel() for p in model.parameters())
    # exact learnable count: ST-GCN 821,380 + psi 197,376 + log_tau 1
    assert total == 1_018_757
    assert abs(total - 1.00e6) / 1.00e6 < 0.02
    # Table VII's 1.00 M = parameters of leaf layers (what profilers such as thop count):
    # everything except the edge-importance maps and the temperature.
    leaf = sum(p.numel() for mod in model.modules() for p in mod.parameters(recurse=False)
               if len(list(mod.children())) == 0)
    assert leaf == 1_000_006
    assert round(leaf / 1e6, 2) == 1.00
    assert model.psi.in_features == 256 and model.psi.out_features == 768


@pytest.mark.parametrize("m", [1, 2])
def test_forward_and_embed(m):
    torch.manual_seed(0)
    model = SkeletonTextModel(EncoderConfig(num_person=m), text_dim=768).eval()
    x = torch.randn(2, 3, 50, 25, m)
    v = model(x)
    assert v.shape == (2, 768)
    e = model.embed(x)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(e, v / v.norm(dim=1, keepdim=True))


def test_temperature_is_a_saved_parameter():
    model = SkeletonTextModel(EncoderConfig(), text_dim=384, init_tau=0.07)
    assert "log_tau" in model.state_dict()
    assert isinstance(model.log_tau, torch.nn.Parameter)
    assert math.isclose(float(model.tau.detach()), 0.07, rel_tol=1e-6)


def test_gradient_reaches_temperature():
    torch.manual_seed(0)
    model = SkeletonTextModel(EncoderConfig(), text_dim=32)
    x = torch.randn(4, 3, 50, 25, 1)
    text = torch.randn(4, 32)
    labels = torch.tensor([0, 1, 0, 2])
    loss = kl_contrastive_loss(model(x), text[labels], labels, model.tau)
    loss.backward()
    assert model.log_tau.grad is not None and model.log_tau.grad.abs() > 0
    assert model.psi.weight.grad.abs().sum() > 0
    assert model.encoder.blocks[0].gcn.conv.weight.grad.abs().sum() > 0


def test_build_encoder_and_config_defaults():
    assert isinstance(build_encoder(EncoderConfig()), STGCN)
    cfg = EncoderConfig(name="shiftgcn")
    assert cfg.hidden_channels == 64
    assert isinstance(build_encoder(cfg), ShiftGCN)
    assert EncoderConfig().hidden_channels == 16
    assert from_dict(EncoderConfig, to_dict(cfg)) == cfg
    with pytest.raises(ValueError):
        EncoderConfig(name="resnet")
    with pytest.raises(ValueError):
        EncoderConfig(num_person=0)


def test_shiftgcn_model_forward():
    model = SkeletonTextModel(EncoderConfig(name="shiftgcn"), text_dim=768).eval()
    assert model(torch.randn(2, 3, 50, 25, 1)).shape == (2, 768)


def test_tau_clamp_constants_used_by_name():
    """Issue 13: one TAU_MIN / TAU_MAX (model.py), used by the loss and the recogniser; no
    re-typed clamp literals anywhere in the core, the workshop or the ROS shell."""
    import re
    from pathlib import Path

    from pgfa_models import loss, model as model_mod
    assert (loss.TAU_MIN, loss.TAU_MAX) == (model_mod.TAU_MIN, model_mod.TAU_MAX) == (0.01, 1.0)
    m = SkeletonTextModel(EncoderConfig(), text_dim=8)
    with torch.no_grad():
        m.log_tau.fill_(math.log(1e-4))
        assert m.clamped_tau() == pytest.approx(model_mod.TAU_MIN)
        m.log_tau.fill_(math.log(50.0))
        assert m.clamped_tau() == pytest.approx(model_mod.TAU_MAX)
        m.log_tau.fill_(math.log(0.2))
        assert m.clamped_tau() == pytest.approx(0.2)
    repo = Path(__file__).resolve().parents[1]
    literal = re.compile(r"clamp\(\s*(min\s*=\s*)?0?\.01\b|clamp\([^)]*max\s*=\s*1\.0\b")
    offenders = [str(p.relative_to(repo)) for pkg in ("pgfa_models", "training", "pgfa_ros")
                 for p in (repo / pkg).rglob("*.py") if literal.search(p.read_text())]
    assert not offenders, f"tau clamp literals instead of TAU_MIN/TAU_MAX in {offenders}"
