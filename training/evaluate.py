"""``pgfa-eval``'s data side: a named split and its clips from the dataset files, scored by
:func:`pgfa_models.evaluation.evaluate` (modes, metrics and report live there, shared with
``pgfa-bag eval``). Descriptions and class names come from :mod:`training.descriptions`."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from pgfa_models import evaluation
from pgfa_models.config import from_dict
from pgfa_models.preprocess import PreprocessConfig

from . import descriptions as catalog
from .datasets import ClipSet, load_dataset


def evaluate(checkpoint: str | Path, split_name: str, modes: Sequence[str] = ("text", "transductive"),
             alpha: float = 0.9, alphas: Sequence[float] = (), data_root: str | None = None,
             descriptions: str | None = None, two_stage_checkpoint: str | Path | None = None,
             clips: ClipSet | None = None, device: str = "cpu", assign_kwargs: dict | None = None,
             groups: Any = None) -> dict[str, Any]:
    """Zero-shot report of a checkpoint on a split; ``clips`` skips loading the dataset.

    ``assign_kwargs`` (hub-aware modes) and ``groups`` (sample name -> subject/sequence id, for
    the nearest-neighbour ceiling) go to :func:`pgfa_models.evaluation.evaluate`."""
    from .train import resolve_split

    split = resolve_split(split_name)

    def clips_for(meta) -> ClipSet:
        if clips is not None:
            return clips
        pre = from_dict(PreprocessConfig, meta.preprocess or {}, "checkpoint.preprocess")
        return load_dataset(split.dataset, data_root, pre, meta.num_person)

    target = evaluation.EvalClasses(split_name, split.dataset, split.num_classes, tuple(split.unseen))
    return evaluation.evaluate(checkpoint, target, catalog, clips_for, modes, alpha, alphas, descriptions,
                               two_stage_checkpoint, device=device, assign_kwargs=assign_kwargs, groups=groups)
