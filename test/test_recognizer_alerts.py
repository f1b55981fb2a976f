"""The alert rule (pgfa_ros.alerts) with competing classes: threshold, run length, reset, per body."""
import math

import numpy as np
import pytest

from pgfa_ros.alerts import Alert, AlertRule, AlertTracker, alert_classes_error, missing_alert_classes

LABELS = ["walking", "sitting down", "falling down"]


def probs(fall: float) -> np.ndarray:
    """Scores over LABELS: ``fall`` for falling down, the rest shared by the two competitors."""
    rest = (1.0 - fall) / 2
    return np.array([rest, rest, fall])


def feed(tracker, body, seq, labels=LABELS, t0=0.0):
    out = []
    for i, f in enumerate(seq):
        out.append(tracker.update(body, t0 + i, labels, probs(f)))
    return out


def test_fires_on_the_nth_consecutive_window_at_or_above_threshold():
    tr = AlertTracker(AlertRule(("falling down",), threshold=0.6, consecutive=3))
    res = feed(tr, 4, [0.7, 0.6, 0.9, 0.95, 0.8])
    assert [len(r) for r in res] == [0, 0, 1, 0, 0]  # once per run, on the 3rd window
    a = res[2][0]
    assert a == Alert(4, "falling down", pytest.approx(0.9), 3, 0.6, 2.0)
    assert tr.run_length(4, "falling down") == 5


def test_below_threshold_breaks_the_run():
    tr = AlertTracker(AlertRule(("falling down",), threshold=0.6, consecutive=3))
    # 0.59 is the competing classes winning one window: the run restarts from zero
    res = feed(tr, 1, [0.7, 0.7, 0.59, 0.7, 0.7, 0.7])
    assert [len(r) for r in res] == [0, 0, 0, 0, 0, 1]
    assert res[5][0].stamp == 5.0
    # after the run is broken a new run raises a new alert
    res = feed(tr, 1, [0.1, 0.9, 0.9, 0.9], t0=10)
    assert [len(r) for r in res] == [0, 0, 0, 1]


def test_threshold_is_inclusive_and_scores_below_never_alert():
    tr = AlertTracker(AlertRule(("falling down",), threshold=0.5, consecutive=2))
    assert [len(r) for r in feed(tr, 0, [0.5, 0.5])] == [0, 1]
    tr = AlertTracker(AlertRule(("falling down",), threshold=0.5, consecutive=2))
    # a confident competitor all the time: falling at 0.45 never alerts however long it lasts
    assert not any(feed(tr, 0, [0.45] * 50))


def test_runs_are_per_body():
    tr = AlertTracker(AlertRule(("falling down",), threshold=0.6, consecutive=2))
    assert tr.update(0, 0.0, LABELS, probs(0.9)) == []
    assert tr.update(1, 0.0, LABELS, probs(0.9)) == []  # another body does not continue body 0's run
    assert tr.update(1, 0.1, LABELS, probs(0.1)) == []
    assert [a.body_id for a in tr.update(0, 0.1, LABELS, probs(0.9))] == [0]


def test_class_missing_from_the_scored_label_set_breaks_the_run():
    tr = AlertTracker(AlertRule(("falling down",), threshold=0.6, consecutive=2))
    tr.update(0, 0.0, LABELS, probs(0.9))
    other = ["walking", "sitting down"]
    assert tr.update(0, 0.1, other, np.array([0.5, 0.5])) == []  # label set changed meanwhile
    assert tr.run_length(0, "falling down") == 0
    assert tr.update(0, 0.2, LABELS, probs(0.9)) == []  # run 1 again
    # probabilities that do not match the label set are not scored
    assert tr.update(0, 0.3, LABELS, np.array([0.0, 1.0])) == [] and tr.run_length(0, "falling down") == 0
    assert tr.update(0, 0.4, LABELS, np.array([0.0, 0.0, math.nan])) == []


def test_several_alert_classes_and_bounded_state():
    tr = AlertTracker(AlertRule(("falling down", "sitting down"), threshold=0.4, consecutive=2))
    p = np.array([0.1, 0.45, 0.45])
    assert tr.update(0, 0.0, LABELS, p) == []
    assert sorted(a.label for a in tr.update(0, 0.1, LABELS, p)) == ["falling down", "sitting down"]
    assert len(tr) == 2
    for b in range(1, 100):  # many bodies, each scoring low: no state kept for them
        tr.update(b, 0.0, LABELS, np.array([0.9, 0.05, 0.05]))
    assert len(tr) == 2
    tr.retain([5])
    assert len(tr) == 0
    tr.update(3, 0.0, LABELS, probs(0.9))
    tr.forget(3)
    assert len(tr) == 0


def test_rule_change_restarts_runs_and_empty_rule_never_alerts():
    tr = AlertTracker(AlertRule(("falling down",), threshold=0.6, consecutive=2))
    tr.update(0, 0.0, LABELS, probs(0.9))
    tr.set_rule(AlertRule(("falling down",), threshold=0.7, consecutive=2))
    assert tr.update(0, 0.1, LABELS, probs(0.9)) == []  # run restarted under the new rule
    assert len(tr.update(0, 0.2, LABELS, probs(0.9))) == 1
    none = AlertTracker(AlertRule(()))
    assert not any(feed(none, 0, [1.0] * 10)) and len(none) == 0


def test_rule_validation():
    for bad in (dict(threshold=1.5), dict(threshold=-0.1), dict(threshold=math.nan), dict(consecutive=0),
                dict(consecutive=1.5), dict(classes="falling"), dict(classes=("a", "a")), dict(classes=("",))):
        with pytest.raises(ValueError):
            AlertRule(**{"classes": ("a",), **bad})
    assert AlertRule((" a ",)).classes == ("a",)


def test_alert_class_not_in_label_set_is_refused_with_reason():
    assert missing_alert_classes(["falling down", "fainting"], LABELS) == ["fainting"]
    assert alert_classes_error(["falling down"], LABELS) is None
    assert alert_classes_error([], LABELS) is None
    err = alert_classes_error(["falling"], LABELS)
    assert "falling" in err and "label set" in err


FALLS = ["walking", "back fall", "front fall", "left fall"]


def test_combined_classes_sum_to_the_probability_of_any_of_them():
    """Five fall directions split the mass: each alone stays below the threshold, together they
    reach it; one run per body, the alert names the direction that scored highest."""
    rule = AlertRule(("back fall", "front fall", "left fall"), threshold=0.6, consecutive=2, combine=True)
    tr = AlertTracker(rule)
    p = np.array([0.34, 0.30, 0.20, 0.16])  # no fall class >= 0.6, any fall = 0.66
    assert tr.update(0, 0.0, FALLS, p) == []
    a = tr.update(0, 0.1, FALLS, p)
    assert [(x.label, x.consecutive) for x in a] == [("back fall", 2)] and a[0].score == pytest.approx(0.66)
    assert tr.update(0, 0.2, FALLS, p) == []  # once per run
    assert tr.update(0, 0.3, FALLS, np.array([0.5, 0.2, 0.2, 0.1])) == []  # 0.5 < 0.6: reset
    assert tr.update(0, 0.4, FALLS, p) == [] and len(tr.update(0, 0.5, FALLS, p)) == 1
    # separate rule: the same stream never alerts
    sep = AlertTracker(AlertRule(rule.classes, 0.6, 2))
    assert not any(sep.update(0, t, FALLS, p) for t in range(10))
    # a class missing from the scored label set breaks the combined run (the sum would be wrong)
    tr2 = AlertTracker(rule)
    assert not any(tr2.update(0, t, FALLS[:3], p[:3]) for t in range(5))
    with pytest.raises(ValueError, match="combine"):
        AlertRule(("a",), combine="yes")


def test_no_alert_class_configured_never_alerts():
    tr = AlertTracker(AlertRule((), threshold=0.0, consecutive=1))
    assert not any(tr.update(0, t, LABELS, probs(1.0)) for t in range(20))
    assert len(tr) == 0
