"""The recognizer's alert rule, pure (no rclpy): the live node and the offline replay share it.

An alert fires when one alert class scores at least ``threshold`` in ``consecutive`` classified
windows in a row *of the same body*. It fires once per run (on the ``consecutive``-th window);
the run resets when a window of that body scores below the threshold, when the class is not in
the label set the window was scored against, or when the body is forgotten. Only runs in
progress are stored, so memory is bounded by (tracked bodies x alert classes).

With ``combine`` the alert classes are scored together: the window's score is the sum of their
probabilities (the calibrated probability of *any* of them, e.g. five fall directions), one run
per body, and the alert names the alert class that scored highest in the window that fired.

An alert class that is not in the label set can never fire, so configuration refuses it
(:func:`missing_alert_classes`) instead of ignoring it silently.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

COMBINED = "*"  # run key of the combined alert classes

__all__ = ["COMBINED", "AlertRule", "Alert", "AlertTracker", "missing_alert_classes", "alert_classes_error"]


@dataclass(frozen=True)
class AlertRule:
    """Which classes alert, the score they must reach and for how many windows in a row."""

    classes: tuple[str, ...] = ()
    threshold: float = 0.5
    consecutive: int = 3
    combine: bool = False  # score the classes together (sum of their probabilities), one run per body

    def __post_init__(self) -> None:
        if isinstance(self.classes, str):
            raise ValueError("alert classes must be a list of names, not one string")
        classes = tuple(str(c).strip() for c in self.classes)
        if any(not c for c in classes):
            raise ValueError("alert class names must be non-empty")
        if len(set(classes)) != len(classes):
            raise ValueError(f"alert classes must be unique, got {list(classes)}")
        object.__setattr__(self, "classes", classes)
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) \
                or not math.isfinite(self.threshold) or not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"alert threshold must be a number in [0, 1], got {self.threshold!r}")
        if isinstance(self.consecutive, bool) or not isinstance(self.consecutive, int) or self.consecutive < 1:
            raise ValueError(f"alert consecutive must be an integer >= 1, got {self.consecutive!r}")
        if not isinstance(self.combine, bool):
            raise ValueError(f"alert combine must be true or false, got {self.combine!r}")


def missing_alert_classes(classes: Iterable[str], labels: Iterable[str]) -> list[str]:
    """Alert classes that are not among ``labels`` (in the order given)."""
    names = set(labels)
    return [c for c in classes if c not in names]


def alert_classes_error(classes: Iterable[str], labels: Sequence[str]) -> str | None:
    """A reason to refuse ``classes`` for the label set ``labels``, or None when they fit."""
    missing = missing_alert_classes(classes, labels)
    if not missing:
        return None
    return (f"alert class(es) {missing} not in the label set {list(labels)}: an alert class must be "
            "one of the labels (set labels and alert_classes together in one atomic call)")


@dataclass(frozen=True)
class Alert:
    """One alert: ``body_id``'s window ending at ``stamp`` completed a run of ``consecutive``."""

    body_id: int
    label: str
    score: float
    consecutive: int
    threshold: float
    stamp: float


class AlertTracker:
    """Runs of above-threshold windows per (body, alert class). Not thread-safe: guard with a lock."""

    def __init__(self, rule: AlertRule | None = None):
        self._rule = rule or AlertRule()
        self._runs: dict[tuple[int, str], int] = {}

    @property
    def rule(self) -> AlertRule:
        return self._rule

    def set_rule(self, rule: AlertRule) -> None:
        """Switch to ``rule``; runs in progress restart (they were counted under the old rule)."""
        if rule != self._rule:
            self._rule = rule
            self._runs.clear()

    def update(self, body_id: int, stamp: float, labels: Sequence[str], probs: Sequence[float]) -> list[Alert]:
        """Feed one classified window (``probs`` over ``labels``); returns the alerts it raises."""
        rule = self._rule
        if not rule.classes:
            return []
        body_id = int(body_id)
        index = {n: i for i, n in enumerate(labels)} if len(probs) == len(labels) else {}
        if rule.combine:
            return self._update_combined(body_id, stamp, index, probs)
        out = []
        for cls in rule.classes:
            key = (body_id, cls)
            i = index.get(cls)
            score = float(probs[i]) if i is not None else math.nan
            if not score >= rule.threshold:  # below, NaN, or not scored: the run is broken
                self._runs.pop(key, None)
                continue
            run = self._runs.get(key, 0) + 1
            self._runs[key] = run
            if run == rule.consecutive:
                out.append(Alert(body_id, cls, score, run, float(rule.threshold), float(stamp)))
        return out

    def _update_combined(self, body_id: int, stamp: float, index: dict, probs) -> list[Alert]:
        rule = self._rule
        key = (body_id, COMBINED)
        scored = [(float(probs[index[c]]), c) for c in rule.classes if c in index]
        # every alert class must be scored, else the sum is not the probability of "any of them"
        score = sum(s for s, _ in scored) if len(scored) == len(rule.classes) else math.nan
        if not score >= rule.threshold:
            self._runs.pop(key, None)
            return []
        run = self._runs.get(key, 0) + 1
        self._runs[key] = run
        if run != rule.consecutive:
            return []
        best = max(scored)[1]  # ties: the later name, deterministic
        return [Alert(body_id, best, min(1.0, score), run, float(rule.threshold), float(stamp))]

    def run_length(self, body_id: int, cls: str) -> int:
        """Current run of ``cls`` (with ``combine``: pass :data:`COMBINED`)."""
        return self._runs.get((int(body_id), cls), 0)

    def forget(self, body_id: int) -> None:
        """Drop the runs of a body that is no longer tracked."""
        for key in [k for k in self._runs if k[0] == int(body_id)]:
            del self._runs[key]

    def retain(self, body_ids: Iterable[int]) -> None:
        """Keep only the runs of ``body_ids`` (the bodies still tracked)."""
        keep = {int(b) for b in body_ids}
        for key in [k for k in self._runs if k[0] not in keep]:
            del self._runs[key]

    def reset(self) -> None:
        self._runs.clear()

    def __len__(self) -> int:
        return len(self._runs)
