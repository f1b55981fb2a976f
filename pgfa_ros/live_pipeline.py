"""The recognizer's processing of ready windows, pure (no rclpy): the live node and the offline
replay run exactly this.

    windows (pgfa_ros.windows.WindowManager.pop_ready)
      -> preprocess_clip (pgfa_models.preprocess, the one shared function), per window
      -> ONE batched Recognizer.classify (pgfa_models.recognition)
      -> alert rule (pgfa_ros.alerts) -> messages (pgfa_ros.action_messages)

Open set: a window whose best (calibrated) score is below ``unknown_threshold`` is labelled
:data:`UNKNOWN` ("none of these is close enough"); its top-k keeps the real scores and the alert
rule still sees the real probabilities.

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
from pgfa_models.recognition import Prediction

__all__ = ["UNKNOWN", "OpenSetPrediction", "open_set", "preprocess_config_from_meta", "BatchResult",
           "classify_windows"]

UNKNOWN = "unknown"


@dataclass
class OpenSetPrediction(Prediction):
    """A :class:`Prediction` whose published label is :data:`UNKNOWN` when ``unknown`` is set."""

    unknown: bool = False

    @property
    def label(self) -> str:
        return UNKNOWN if self.unknown else super().label


def open_set(prediction: Prediction, unknown_threshold: float) -> Prediction:
    """``prediction`` labelled :data:`UNKNOWN` when its best score is below ``unknown_threshold``
    (a NaN score is unknown); with a threshold of 0 the prediction itself (never unknown)."""
    if not unknown_threshold > 0:
        return prediction
    best = float(prediction.score)
    unknown = bool(unknown_threshold > 0 and not best >= unknown_threshold)
    return OpenSetPrediction(prediction.topk, prediction.cosines, prediction.probs, unknown)


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
                     clock: Callable[[], float] = time.monotonic, unknown_threshold: float = 0.0) -> BatchResult:
    """Preprocess each ready window and classify the kept ones in ONE batched call; predictions
    below ``unknown_threshold`` are labelled :data:`UNKNOWN` (:func:`open_set`)."""
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
        out.predictions = [open_set(p, unknown_threshold) for p in recognizer.classify(np.stack(clips))]
        out.inference_ms = (clock() - t0) * 1e3
        # a label set switched during the call leaves it unclear which names the scores are over
        out.labels = before if list(recognizer.labels.names) == before else None
    return out
