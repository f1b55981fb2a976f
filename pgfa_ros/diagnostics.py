"""The recognizer's counters and their /diagnostics summary, as plain data (no rclpy).

:class:`RecognizerStats` keeps what the node counts (messages, classified windows, latencies and
every rejected input by reason); :meth:`RecognizerStats.snapshot` turns it, together with the
window manager's counters, into the flat ``{key: value}`` dict the node publishes on /diagnostics
(and that tests and the offline replay read directly). Key families:

``rejected_input_<reason>``   dropped while parsing messages (:mod:`pgfa_ros.skeleton_msgs`)
``rejected_frame_<reason>``   frames the windows refused: bad stamps, too many bodies (:mod:`pgfa_ros.windows`)
``rejected_window_<reason>``  windows preprocessing refused (``pgfa_models.preprocess.REASONS``)
anything else                 events: ``body_lost``, ``gap_reset``, ``staggered``, ``alerts``, ...
"""
from __future__ import annotations

import collections
import time
from typing import Callable, Mapping

import numpy as np

__all__ = ["FRAME_REJECTIONS", "percentile", "aggregate_counts", "RecognizerStats", "status_summary"]

FRAME_REJECTIONS = ("stamp_backwards", "stamp_duplicate", "stamp_invalid", "bad_shape", "too_many_bodies")


def percentile(values, q: float) -> float:
    """``q``-th percentile of ``values``; NaN when there are none."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


def aggregate_counts(node_counts: Mapping[str, int], window_counts: Mapping[str, int] | None = None) -> dict[str, int]:
    """Name the node's and the window manager's counters by family (see the module docstring).

    Node keys ``input_<r>`` -> ``rejected_input_<r>``, ``preprocess_<r>`` -> ``rejected_window_<r>``;
    window keys in :data:`FRAME_REJECTIONS` -> ``rejected_frame_<r>``; ``window_dropped`` is reported
    separately (``windows_dropped``); the rest keep their names. Sorted by key.
    """
    counts: collections.Counter = collections.Counter()
    for k, v in node_counts.items():
        if k.startswith("input_"):
            counts[f"rejected_{k}"] += v
        elif k.startswith("preprocess_"):
            counts[f"rejected_window_{k[len('preprocess_'):]}"] += v
        else:
            counts[k] += v
    for k, v in (window_counts or {}).items():
        if k in FRAME_REJECTIONS:
            counts[f"rejected_frame_{k}"] += v
        elif k != "window_dropped":
            counts[k] += v
    return {k: int(v) for k, v in sorted(counts.items())}


class RecognizerStats:
    """Counters and rolling latency samples of one recognizer. Not thread-safe: guard with a lock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, history: int = 1000):
        self.clock = clock
        self.counts: collections.Counter = collections.Counter()
        self.latencies_ms: collections.deque = collections.deque(maxlen=history)  # last frame stamp -> publish
        self.inference_ms: collections.deque = collections.deque(maxlen=history)
        self.classified = 0
        self.messages = 0
        self._classified_mark = 0
        self._messages_mark = 0
        self._mark_t = clock()

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def record_message(self, dropped: Mapping[str, int]) -> None:
        """One skeleton message received; ``dropped`` are its parser's drop counts by reason."""
        self.messages += 1
        for reason, n in dropped.items():
            self.counts[f"input_{reason}"] += n

    def record_window(self, latency_ms: float) -> None:
        self.classified += 1
        self.latencies_ms.append(latency_ms)

    def record_inference(self, ms: float) -> None:
        self.inference_ms.append(ms)

    def snapshot(self, windows=None, extra: Mapping[str, object] | None = None, window: int = 300) -> dict:
        """The /diagnostics values. Rates are since the previous snapshot (which this one resets);
        percentiles over the last ``window`` samples; ``extra`` (state, mode, sizes, ...) comes first.
        ``windows``: the :class:`pgfa_ros.windows.WindowManager` (or None before configure)."""
        t = self.clock()
        dt = max(t - self._mark_t, 1e-6)
        lat = list(self.latencies_ms)[-window:]
        values: dict = dict(extra or {})
        values.update({
            "bodies": len(windows.bodies) if windows is not None else 0,
            "window_rate_hz": (self.classified - self._classified_mark) / dt,
            "input_rate_hz": (self.messages - self._messages_mark) / dt,
            "latency_p50_ms": percentile(lat, 50),
            "latency_p99_ms": percentile(lat, 99),
            "inference_p50_ms": percentile(list(self.inference_ms)[-window:], 50),
            "windows_classified": self.classified,
            "windows_dropped": int(windows.counts["window_dropped"]) if windows is not None else 0,
            "buffered_frames": windows.buffered_frames() if windows is not None else 0,
            "pending_windows": windows.num_pending if windows is not None else 0,
            "messages": self.messages,
        })
        values.update(aggregate_counts(self.counts, windows.counts if windows is not None else None))
        self._classified_mark, self._messages_mark, self._mark_t = self.classified, self.messages, t
        return values


def status_summary(values: Mapping[str, object], previous_dropped: int) -> tuple[str, str]:
    """``(level, message)`` for a snapshot: level ``"warn"`` when windows were dropped since the
    previous summary (inference too slow), else ``"ok"``."""
    dropped = int(values.get("windows_dropped", 0))
    if dropped > previous_dropped:
        return "warn", f"{dropped - previous_dropped} windows dropped (inference too slow)"
    bodies = int(values.get("bodies", 0))
    if bodies == 0:
        return "ok", "no bodies tracked"
    return "ok", f"{bodies} bodies, {float(values.get('window_rate_hz', 0.0)):.1f} windows/s"
