"""The recognizer's processing of ready windows, pure (no rclpy): the live node and the offline
replay run exactly this.

    windows (pgfa_ros.windows.WindowManager.pop_ready)
      -> preprocess_clip (pgfa_models.preprocess, the one shared function), per window
      -> ONE batched Recognizer.classify (pgfa_models.recognition)
      -> alert rule (pgfa_ros.alerts) -> messages (pgfa_ros.action_messages)

:func:`classify_windows` is the middle part; :func:`preprocess_config_from_meta` reads the
checkpoint's preprocessing options with the same rule as ``pgfa-eval``: an option this code does
not know is an error, never silently dropped (it would make live input differ from training).
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from pgfa_models.preprocess import PreprocessConfig, preprocess_clip, preprocess_config_from_dict

__all__ = ["preprocess_config_from_meta", "BatchResult", "classify_windows"]


def preprocess_config_from_meta(meta) -> PreprocessConfig:
    """The checkpoint's :class:`PreprocessConfig`; raises ``ConfigError`` (a ``ValueError``) naming
    any unknown option, wrong type or bad value."""
    data = getattr(meta, "preprocess", None) or {}
    return preprocess_config_from_dict(data, "checkpoint.preprocess")


@dataclass
class BatchResult:
    """Windows that preprocessing kept and their predictions (same order), plus what it refused."""

    windows: list = field(default_factory=list)
    predictions: list = field(default_factory=list)
    rejected: collections.Counter = field(default_factory=collections.Counter)  # preprocess reason -> n
    labels: list | None = None  # the label names the probabilities are over; None if they changed meanwhile
    started_at: float = 0.0  # clock when preprocessing began (wait time = started_at - window.ready_at)
    preprocess_ms: float = 0.0
    inference_ms: float = 0.0


def classify_windows(recognizer, windows: Sequence, layout, cfg: PreprocessConfig, num_person: int = 1,
                     clock: Callable[[], float] = time.monotonic) -> BatchResult:
    """Preprocess each ready window and classify the kept ones in ONE batched call."""
    import numpy as np

    out = BatchResult(started_at=clock())
    clips = []
    for w in windows:
        res = preprocess_clip([w.joints], layout, cfg, num_person=num_person, timestamps=w.stamps)
        if res.clip is None:
            out.rejected[res.reason] += 1
            continue
        clips.append(res.clip)
        out.windows.append(w)
    t0 = clock()
    out.preprocess_ms = (t0 - out.started_at) * 1e3
    if clips:
        before = list(recognizer.labels.names)
        out.predictions = recognizer.classify(np.stack(clips))
        out.inference_ms = (clock() - t0) * 1e3
        # a label set switched during the call leaves it unclear which names the scores are over
        out.labels = before if list(recognizer.labels.names) == before else None
    return out
