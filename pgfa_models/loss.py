"""Cross-modal KL contrastive loss of PGFA, eq. (5)."""
from __future__ import annotations

from typing import Union

import torch
import torch.nn.functional as F

from .model import TAU_MAX, TAU_MIN  # noqa: F401 - the one definition; re-exported here


def _target(labels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """m: row i uniform over the batch entries with the same class as sample i."""
    same = (labels.reshape(-1, 1) == labels.reshape(1, -1)).to(dtype)
    return same / same.sum(dim=1, keepdim=True)


def kl_contrastive_loss(skel_feats: torch.Tensor, text_feats: torch.Tensor,
                        labels: torch.Tensor, tau: Union[torch.Tensor, float]) -> torch.Tensor:
    """L_KL of eq. (5), scalar.

    skel_feats: (B, D) skeleton features v_i (un-normalised is fine); text_feats: (B, D),
    row i = text feature w_i of sample i's class; labels: (B,) class ids; tau: temperature
    (tensor for a learnable one), clamped to [TAU_MIN, TAU_MAX].

    s_ib = cos(v_i, w_b) / tau. p^{x2t}(v_i) = softmax_b(s_i.) (eq. 3), p^{t2x}(w_i) =
    softmax_b(s_.i) (eq. 4). The ground truth m_i is uniform over the batch entries with the
    same label as sample i (several positives when a class repeats in the batch).

    Direction of the divergence: eq. (5) writes KL(p, m). As in the public SMIE / PGFA /
    ActionCLIP code (``KLDivLoss(log_softmax(s), m)``), this computes KL(m || p) =
    sum_b m_ib (log m_ib - log p_ib), which is finite when p has full support and m has
    zeros. The sum over i is divided by B ("batchmean") so the scale does not depend on the
    batch size, and the two directions are averaged (the 1/2 of eq. 5).
    """
    if skel_feats.ndim != 2 or skel_feats.shape != text_feats.shape:
        raise ValueError(f"expected matching (B, D) features, got {tuple(skel_feats.shape)} "
                         f"and {tuple(text_feats.shape)}")
    if labels.shape != (skel_feats.shape[0],):
        raise ValueError(f"labels must have shape ({skel_feats.shape[0]},), got {tuple(labels.shape)}")
    if not torch.is_tensor(tau):
        tau = torch.tensor(float(tau), dtype=skel_feats.dtype, device=skel_feats.device)
    tau = tau.clamp(TAU_MIN, TAU_MAX)
    v = F.normalize(skel_feats, dim=-1)
    w = F.normalize(text_feats, dim=-1)
    sims = v @ w.t() / tau  # (B, B): [i, b] = sim(v_i, w_b) / tau
    m = _target(labels, sims.dtype)  # symmetric in the label structure
    x2t = F.kl_div(F.log_softmax(sims, dim=1), m, reduction="batchmean")
    t2x = F.kl_div(F.log_softmax(sims.t(), dim=1), m, reduction="batchmean")
    return 0.5 * (x2t + t2x)
