"""Shared helpers for the bag tests: a small real UTD-MHAD selection and a test checkpoint."""
from __future__ import annotations

from pathlib import Path

import numpy as np

U1 = [3, 14, 17, 18, 23]  # utd_mhad/U1 unseen classes (SPEC §6)
SUBJECTS = [1]


def utd_subset_dir(utd_dir: Path, dest: Path, classes=U1, subjects=SUBJECTS) -> Path:
    """Symlink the chosen classes' / subjects' real files into ``dest`` (a UTD-MHAD folder)."""
    from pgfa_models.formats.utd_mhad import scan_utd_mhad

    dest.mkdir(parents=True, exist_ok=True)
    for r in scan_utd_mhad(utd_dir):
        if r.action in classes and r.subject in subjects:
            (dest / r.path.name).symlink_to(r.path)
    return dest


def make_centered_checkpoint(path: Path, utd_dir: Path, seed: int = 0) -> Path:
    """Random-weight ST-GCN whose projection is centred on a few real clips, so that its
    zero-shot predictions are spread over several classes (a plain random model predicts one
    class for everything, which would make an equality test weak)."""
    import torch

    from pgfa_models.checkpoint import CheckpointMeta, save_checkpoint
    from pgfa_models.formats.utd_mhad import read_utd_mhad
    from pgfa_models.model import EncoderConfig, SkeletonTextModel
    from pgfa_models.preprocess import preprocess_clip

    torch.manual_seed(seed)
    enc = EncoderConfig(name="stgcn", num_person=1)
    model = SkeletonTextModel(enc, 384).eval()
    files = sorted(utd_dir.glob("a1_s*_t1_skeleton.mat"))[:4]
    x = np.stack([preprocess_clip([read_utd_mhad(f)], "kinect_v1_20").clip for f in files])
    with torch.no_grad():
        mu = model.encoder(torch.from_numpy(x)).mean(0)
        model.psi.bias.copy_(-model.psi.weight @ mu)
    meta = CheckpointMeta(text_model="all-MiniLM-L6-v2", text_dim=384, labels=["a", "b"], encoder=enc,
                          extra={"description_kind": "complete"})
    return save_checkpoint(path, model, meta)
