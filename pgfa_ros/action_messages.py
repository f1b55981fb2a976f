"""What the recognizer publishes, built as plain data (no rclpy): the live node and the offline
replay produce byte-identical ``~/actions`` / ``~/alerts`` JSON from the same functions.

* :func:`action_message` — one classified window: ``{stamp, body_id, label, topk: [{label, score}], mode,
  window: {start, end, frames}, latency_ms, frame_id, timing_ms: {transport, wait, preprocess,
  inference, batch}}``
* :func:`alert_message` — ``{stamp, body_id, label, score, consecutive, threshold, frame_id}``
* :func:`text_marker_specs` — position and text of the RViz label above each body's head (the
  node turns each into a ``visualization_msgs/Marker``).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

__all__ = ["round_ms", "action_message", "alert_message", "to_json", "MarkerSpec", "text_marker_specs",
           "head_joint", "up_vector"]


def round_ms(x: float | None) -> float | None:
    """Milliseconds rounded to µs; None (JSON null) when unknown / not finite."""
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), 3)


def action_message(window, prediction, *, mode: str, latency_ms: float, frame_id: str = "",
                   timing: Mapping[str, float | int | None] | None = None) -> dict:
    """The ``~/actions`` payload of one classified window (a ``ReadyWindow`` and a ``Prediction``)."""
    t = dict(timing or {})
    return {
        "stamp": window.end,
        "body_id": int(window.body_id),
        "label": prediction.label,  # top-1, or "unknown" (open set, pgfa_ros.live_pipeline.open_set)
        "topk": [{"label": lbl, "score": round(float(s), 6)} for lbl, s in prediction.topk],
        "mode": mode,
        "window": {"start": window.start, "end": window.end, "frames": int(len(window.stamps))},
        "latency_ms": round(float(latency_ms), 3),
        "frame_id": frame_id,
        "timing_ms": {"transport": round_ms(t.get("transport")), "wait": round_ms(t.get("wait")),
                      "preprocess": round_ms(t.get("preprocess")), "inference": round_ms(t.get("inference")),
                      "batch": int(t.get("batch") or 0)},
    }


def alert_message(alert, frame_id: str = "") -> dict:
    """The ``~/alerts`` payload of an :class:`pgfa_ros.alerts.Alert`."""
    return {"stamp": alert.stamp, "body_id": int(alert.body_id), "label": alert.label,
            "score": round(float(alert.score), 6), "consecutive": int(alert.consecutive),
            "threshold": float(alert.threshold), "frame_id": frame_id}


def to_json(payload: Mapping) -> str:
    """The std_msgs/String data of a payload (plain ``json.dumps``: NaN never occurs, see round_ms)."""
    return json.dumps(payload)


@dataclass(frozen=True)
class MarkerSpec:
    """One RViz text label: marker id = body id, in ``frame_id``, at ``position`` (source units)."""

    body_id: int
    frame_id: str
    position: tuple[float, float, float]
    text: str


def head_joint(layout) -> int:
    """Source joint that carries NTU joint 3 (head) in ``layout``."""
    return int(np.argmax(layout.weights[3]))


def up_vector(layout) -> np.ndarray:
    """NTU "up" (+y) expressed in the layout's source axes."""
    return layout.axes.T @ np.array([0.0, 1.0, 0.0])


def text_marker_specs(windows: Sequence, predictions: Sequence, layout, frame_ids: Mapping[int, str],
                      lift_m: float = 0.3) -> list[MarkerSpec]:
    """A label ``b<id>: <label> (<score>)`` ``lift_m`` above each window's last head position (the
    mean of the finite joints when the head is missing, the origin when nothing is finite)."""
    head = head_joint(layout)
    up = up_vector(layout)
    out = []
    for w, p in zip(windows, predictions):
        last = np.asarray(w.joints[-1], dtype=np.float64)
        pos = last[head]
        if not np.isfinite(pos).all():
            finite = last[np.isfinite(last).all(axis=1)]
            pos = finite.mean(axis=0) if len(finite) else np.zeros(3)
        pos = pos + lift_m * up
        out.append(MarkerSpec(int(w.body_id), frame_ids.get(w.body_id, ""), tuple(float(v) for v in pos),
                              f"b{w.body_id}: {p.label} ({p.score:.2f})"))
    return out
