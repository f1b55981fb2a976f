"""Fall-monitor event metrics on held-out SmartFallMM participants, through the live code path.

    python benchmarks/falls/run.py                      # the committed RESULTS.md / results.json / PNG
    python benchmarks/falls/run.py --checkpoint X.safetensors --participants 37,38,39 --out /tmp/falls

Every trial of the held-out participants (37, 38, 39 under protocol ``falls/heldout``: the
checkpoint never trained on them) is laid on one timeline by ``pgfa_ros.replay.smartfall_frames``:
the person appears, performs the trial, leaves for ``--gap`` seconds (longer than the body
timeout) and comes back with a fresh body id, as the Azure Kinect driver reports it. The stream
goes through ``pgfa_ros.replay.Replayer`` (the recognizer node's windows, preprocessing, batched
recogniser and open-set labelling) with the parameters of ``config/fall_monitor_kinect.yaml``;
each window's calibrated probabilities are kept and the alert rule (``pgfa_ros.alerts``, the
node's) is run over them for every (threshold, consecutive windows) of the sweep.

Events:

* a **fall trial** (activities 10-14) is detected when its body raises >= 1 alert; recall =
  detected / fall trials; **delay** = alert stamp - trial end (the stamp is the end of the window
  that completed the run; the node publishes it one inference latency later, see
  ``benchmarks/ros_latency``);
* a **false alarm** is an alert on an everyday-activity trial (activities 1-9); false alarms per
  hour = false alarms / hours of everyday activity streamed (trial time, gaps excluded);
* **precision** = alerts on fall trials / all alerts.

Configurations: ``kinect`` (the Azure Kinect skeletons as the driver publishes them) and the camera
path simulated at skeleton level (SmartFallMM has no RGB video, so MediaPipe cannot be run on
it): the joints MediaPipe Pose reports (``mediapipe_33``, mapped joint by joint) ``camera_hips``
re-centred on the hips every frame, as the pose node's world landmarks are without global
translation, and ``camera_global`` with the body's camera-space translation kept (what the
camera path's translation recovery aims at; an upper bound, with no 2-D detection or depth error).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from pgfa_ros.alerts import AlertRule, AlertTracker  # noqa: E402
from pgfa_ros.replay import Replayer, Trial, load_params, smartfall_frames  # noqa: E402

from pgfa_ros.recognizer_params import FALLS_CHECKPOINT as DEFAULT_CHECKPOINT  # noqa: E402  (shipped falls_heldout_s0)
DEFAULT_PARAMS = REPO / "config" / "fall_monitor_kinect.yaml"
HELD_OUT = [37, 38, 39]
THRESHOLDS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99]
CONSECUTIVE = [1, 2, 3, 4, 6, 8]
# config/fall_monitor.yaml's pose node publishes camera-space translation (translation: true)
CAMERA_CONFIG = "camera_global"
TARGET_RECALL, TARGET_DELAY_S, TARGET_FA_PER_H = 0.95, 1.0, 1.0

# mediapipe_33 joint <- azure_kinect_32 joint (the nearest body point the Azure tracker reports)
_AZ = ("pelvis", "spine_navel", "spine_chest", "neck", "clavicle_left", "shoulder_left", "elbow_left",
       "wrist_left", "hand_left", "handtip_left", "thumb_left", "clavicle_right", "shoulder_right",
       "elbow_right", "wrist_right", "hand_right", "handtip_right", "thumb_right", "hip_left", "knee_left",
       "ankle_left", "foot_left", "hip_right", "knee_right", "ankle_right", "foot_right", "head", "nose",
       "eye_left", "ear_left", "eye_right", "ear_right")
_MP_FROM_AZ = ("nose", "eye_left", "eye_left", "eye_left", "eye_right", "eye_right", "eye_right", "ear_left",
               "ear_right", "nose", "nose", "shoulder_left", "shoulder_right", "elbow_left", "elbow_right",
               "wrist_left", "wrist_right", "hand_left", "hand_right", "handtip_left", "handtip_right",
               "thumb_left", "thumb_right", "hip_left", "hip_right", "knee_left", "knee_right", "ankle_left",
               "ankle_right", "ankle_left", "ankle_right", "foot_left", "foot_right")
MP_INDEX = np.array([_AZ.index(n) for n in _MP_FROM_AZ])


def to_mediapipe(joints: np.ndarray, hip_centred: bool) -> np.ndarray:
    """Azure joints (T, 32, 3), depth-camera axes -> the 33 MediaPipe landmarks in the same axes
    (MediaPipe world landmarks: x right, y down, metres; ``mediapipe_33`` reads them so),
    re-centred on the mid-hip point every frame when ``hip_centred``."""
    mp = joints[:, MP_INDEX].astype(np.float32)
    if hip_centred:
        mp = mp - 0.5 * (mp[:, 23:24] + mp[:, 24:25])
    return mp


CONFIGS = {
    "kinect": dict(layout="azure_kinect_32", transform=None,
                   what="Azure Kinect body tracking (32 joints, camera space), as the driver publishes"),
    "camera_hips": dict(layout="mediapipe_33", transform=lambda j: to_mediapipe(j, True),
                        what="camera path, MediaPipe joints re-centred on the hips every frame (pose node without "
                             "global translation)"),
    "camera_global": dict(layout="mediapipe_33", transform=lambda j: to_mediapipe(j, False),
                          what="camera path, MediaPipe joints with the body's camera-space translation (upper bound "
                               "of translation recovery)"),
}


@dataclass
class WindowScore:
    body_id: int
    end: float
    probs: np.ndarray
    label: str


def stream_windows(params: dict, root: Path, participants, transform=None, gap_s: float = 3.0):
    """Replay every trial of ``participants``; returns (labels, trials, windows, counts, seconds)."""
    from pgfa_models.formats.smartfallmm import scan_smartfallmm
    from pgfa_ros.bag.convert import select_smartfall

    rep = Replayer(params)
    records = select_smartfall(scan_smartfallmm(root), participants)
    trials: list[Trial] = []
    frames = smartfall_frames(root, records=records, gap_s=gap_s, trials_out=trials, max_bodies=rep.max_bodies,
                              max_markers=rep.max_markers, transform=transform, num_joints=rep.layout.num_joints)
    windows: list[WindowScore] = []
    t0 = time.monotonic()
    labels = None
    for now, parsed in frames:
        step = rep.feed(now, parsed)
        if step.windows:
            if step.labels is None:
                raise RuntimeError("label set changed during the replay")
            labels = step.labels
            windows += [WindowScore(w.body_id, w.end, np.asarray(p.probs, np.float64), p.label)
                        for w, p in zip(step.windows, step.predictions)]
    return labels or rep.labels, trials, windows, dict(rep.windows.counts), time.monotonic() - t0


UTD_IN_SET = {2, 20, 22, 23, 24}  # UTD-MHAD classes sharing a concept with the monitor's labels (wave, pick up, walk, sit, stand)


def out_of_set_windows(params: dict, gap_s: float = 3.0, trial: int = 1):
    """Motions outside the monitor's label set: the UTD-MHAD classes (Kinect v1) that share no concept
    with it (gestures, sports, lunges, squats), trial ``trial`` of every subject, through the same
    replay. The model trained on UTD-MHAD under these classes' own names; here they are not in the
    label set, so the right answer is ``unknown`` and no alert."""
    from types import SimpleNamespace

    from pgfa_models.formats.utd_mhad import read_utd_mhad, scan_utd_mhad

    utd = REPO.parent / "shared" / "data" / "utd-mhad"
    recs = [SimpleNamespace(path=r.path, participant=r.subject, activity=r.action + 1, trial=r.trial, is_fall=False)
            for r in sorted(scan_utd_mhad(utd), key=lambda r: r.path.name)
            if r.action not in UTD_IN_SET and r.trial == trial]
    rep = Replayer(dict(params, layout="kinect_v1_20", alert_classes=[]))
    trials: list[Trial] = []
    frames = smartfall_frames(None, records=recs, gap_s=gap_s, trials_out=trials, num_joints=20,
                              reader=read_utd_mhad, fps=30.0, frame_id="kinect_v1_camera")
    windows = []
    for now, parsed in frames:
        step = rep.feed(now, parsed)
        windows += [WindowScore(w.body_id, w.end, np.asarray(p.probs, np.float64), p.label)
                    for w, p in zip(step.windows, step.predictions)]
    return rep.labels, trials, windows


def run_rule(windows, labels, rule: AlertRule):
    """Alerts of the node's rule over the recorded windows (in stream order)."""
    tr = AlertTracker(rule)
    out = []
    for w in windows:
        out += tr.update(w.body_id, w.end, labels, w.probs)
    return out


def event_metrics(alerts, trials: list[Trial]) -> dict:
    by_body = {t.body_id: t for t in trials}
    falls = [t for t in trials if t.is_fall]
    adl = [t for t in trials if not t.is_fall]
    first: dict[int, float] = {}
    fa = on_falls = 0
    for a in alerts:
        t = by_body[a.body_id]
        if t.is_fall:
            on_falls += 1
            first.setdefault(a.body_id, a.stamp)
        else:
            fa += 1
    delays = np.array([first[t.body_id] - t.end for t in falls if t.body_id in first])
    adl_h = sum(t.end - t.start for t in adl) / 3600.0
    n = len(falls)
    return {
        "fall_trials": n, "detected": len(first), "recall": len(first) / n if n else math.nan,
        "recall_within_delay": int(np.sum(delays <= TARGET_DELAY_S)) / n if n else math.nan,
        "delay_median_s": float(np.median(delays)) if len(delays) else None,
        "delay_max_s": float(np.max(delays)) if len(delays) else None,
        "delay_from_start_median_s": float(np.median([first[t.body_id] - t.start for t in falls if t.body_id in first]))
        if first else None,
        "adl_trials": len(adl), "adl_hours": adl_h, "false_alarms": fa,
        "false_alarms_per_hour": fa / adl_h if adl_h > 0 else math.nan,
        "alerts": len(alerts), "precision": on_falls / len(alerts) if alerts else None,
    }


def validation_participants(checkpoint: str) -> list[int]:
    """The SmartFallMM participants the checkpoint held out for calibration (never trained on, not
    the test participants): the alert rule and the unknown threshold are chosen on them."""
    from pgfa_models.checkpoint import read_meta

    groups = ((read_meta(checkpoint).extra or {}).get("calibration") or {}).get("groups") or []
    return sorted(int(g.split(":S", 1)[1]) for g in groups if g.startswith("smartfallmm:S"))


def poisson_upper(k: int, hours: float, conf: float = 0.95) -> float:
    """One-sided upper confidence bound of a false-alarm rate from k alarms in ``hours``: with few
    minutes of everyday activity, 0 alarms does not show <= 1 per hour."""
    from scipy.stats import chi2

    return float(chi2.ppf(conf, 2 * k + 2) / 2 / hours) if hours > 0 else math.inf


def sweep_rule(windows, labels, trials, classes) -> list[dict]:
    return [{"threshold": thr, "consecutive": c,
             **event_metrics(run_rule(windows, labels, AlertRule(classes, thr, c, combine=True)), trials)}
            for thr in THRESHOLDS for c in CONSECUTIVE]


def unknown_threshold(windows, trials, labels, right) -> float:
    """The largest threshold that still publishes >= 80 % of the right everyday labels."""
    by_body = {t.body_id: t for t in trials}
    best = np.array([w.probs.max() for w in windows])
    ok = np.array([right(by_body[w.body_id], labels[int(np.argmax(w.probs))]) and not by_body[w.body_id].is_fall
                   for w in windows])
    return float(np.floor(100 * np.quantile(best[ok], 0.2)) / 100) if ok.any() else 0.0


def choose(sweep: list[dict]) -> dict:
    """The recommended (threshold, consecutive): both targets met -> the fewest false alarms, then the
    shortest run; else the best recall with <= 1 false alarm / hour; else the best recall."""
    ok = [r for r in sweep if r["recall"] >= TARGET_RECALL and r["false_alarms_per_hour"] <= TARGET_FA_PER_H]
    if ok:
        return min(ok, key=lambda r: (r["false_alarms_per_hour"], r["consecutive"], -r["threshold"]))
    quiet = [r for r in sweep if r["false_alarms_per_hour"] <= TARGET_FA_PER_H]
    pool = quiet or sweep
    return max(pool, key=lambda r: (r["recall"], -r["false_alarms_per_hour"], -r["consecutive"], r["threshold"]))


def open_set_curve(windows, trials, labels, family_of, thresholds) -> list[dict]:
    """Per unknown threshold: share of windows labelled unknown, and how often the label that IS
    published names the trial's activity (concepts of its SmartFallMM class) - on everyday trials
    and on falls (any fall direction counts as right on a fall trial)."""
    by_body = {t.body_id: t for t in trials}
    best = np.array([w.probs.max() for w in windows])
    top = [labels[int(np.argmax(w.probs))] for w in windows]
    right = np.array([family_of(by_body[w.body_id], name) for w, name in zip(windows, top)])
    fall = np.array([by_body[w.body_id].is_fall for w in windows])
    out = []
    for u in thresholds:
        kept = best >= u
        row = {"unknown_threshold": u, "unknown_share": float(1 - kept.mean())}
        for name, m in (("adl", ~fall), ("falls", fall)):
            k = kept & m
            row[f"{name}_unknown_share"] = float(1 - k.sum() / max(m.sum(), 1))
            row[f"{name}_published_right"] = float(right[k].mean()) if k.any() else None
            row[f"{name}_confident_wrong_share"] = float((k & ~right)[m].mean()) if m.any() else None
        out.append(row)
    return out


def trial_matcher(labels, catalog):
    """``right(trial, label)``: the label names one of the trial's concepts (any fall concept on a fall)."""
    from pgfa_models.formats.smartfallmm import SMARTFALL_ACTIVITIES

    names = catalog.concept_names()  # id -> name
    by_name = {v: k for k, v in names.items()}
    falls = set(catalog.concepts_in_family("fall"))
    classes = {c.label: set(c.concepts) for c in catalog.classes("smartfallmm")}

    def right(trial: Trial, label: str) -> bool:
        cid = by_name.get(label, label)
        if trial.is_fall:
            return cid in falls
        return cid in classes.get(trial.activity - 1, set())

    assert len(SMARTFALL_ACTIVITIES) == len(classes)
    return right


def plot(sweeps: dict, chosen: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sweeps), figsize=(5.2 * len(sweeps), 4.2), squeeze=False)
    for ax, (name, sweep) in zip(axes[0], sweeps.items()):
        for c in sorted({r["consecutive"] for r in sweep}):
            rows = sorted([r for r in sweep if r["consecutive"] == c], key=lambda r: r["threshold"])
            fa = [max(r["false_alarms_per_hour"], 0.3) for r in rows]
            ax.plot(fa, [100 * r["recall"] for r in rows], marker="o", ms=3, label=f"{c} windows")
        ch = chosen.get(name)
        if ch:
            ax.plot([max(ch["false_alarms_per_hour"], 0.3)], [100 * ch["recall"]], "k*", ms=12,
                    label="chosen on validation")
        ax.axhline(100 * TARGET_RECALL, color="grey", ls=":", lw=1)
        ax.axvline(TARGET_FA_PER_H, color="grey", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("false alarms per hour (everyday activities; 0 drawn at 0.3)")
        ax.set_ylabel("fall trials alerted (%)")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("Fall alerts on held-out test participants: threshold x consecutive windows (star: chosen on validation)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt(x, pct=False, nd=2):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * x:.1f} %" if pct else f"{x:.{nd}f}"


def write_report(res: dict, out: Path) -> None:
    L = [f"# Fall monitor: event metrics on held-out participants", "",
         f"Command: `{res['command']}`  ", f"Date: {res['date']}, commit {res['commit']}, {res['seconds']:.0f} s  ",
         f"Checkpoint: `{res['checkpoint']}` (sha256 {res['checkpoint_sha256'][:16]}, tau {res['tau']:.4f} "
         f"{res['tau_source']})  ",
         f"Parameters: `{res['params_file']}`: window {res['window']}, labels ({len(res['labels'])}): "
         f"{', '.join(res['labels'])}; alert classes (combined): {', '.join(res['alert_classes'])}  ",
         f"Test participants {res['participants']} (never trained on, never used to choose anything): "
         f"{res['fall_trials']} fall trials, {res['adl_trials']} everyday trials ({60 * res['adl_hours']:.1f} min "
         f"streamed; one false alarm = {1 / res['adl_hours']:.1f} / h).  ",
         f"Validation participant(s) {res['validation_participants']} (held out of training for calibration): "
         f"{res['validation_fall_trials']} fall trials, {60 * res['validation_adl_hours']:.1f} min of everyday "
         "activity; the alert threshold, run length and unknown threshold are chosen on them only.", "",
         "Targets: recall >= 95 % of fall trials, alert <= 1.0 s after the trial ends, <= 1 false alarm / hour.", ""]
    L += ["## Setting chosen on validation, measured on the test participants", "",
          "| configuration | threshold | windows | validation recall / FA per h | test recall | test recall <= 1 s "
          "| median delay vs trial end | test false alarms / h (95 % upper bound) | precision | targets |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for name, c in res["test_at_chosen"].items():
        v = res["chosen"][name]
        met = (c["recall"] >= TARGET_RECALL and c["recall_within_delay"] >= TARGET_RECALL
               and c["false_alarms_per_hour"] <= TARGET_FA_PER_H)
        L.append(f"| {name} | {c['threshold']} | {c['consecutive']} | {_fmt(v['recall'], True)} / "
                 f"{_fmt(v['false_alarms_per_hour'], nd=1)} | {_fmt(c['recall'], True)} | "
                 f"{_fmt(c['recall_within_delay'], True)} | {_fmt(c['delay_median_s'])} s | "
                 f"{_fmt(c['false_alarms_per_hour'], nd=1)} ({c['false_alarms']}; <= "
                 f"{_fmt(c['false_alarms_per_hour_upper95'], nd=1)}) | {_fmt(c['precision'], True)} | "
                 f"{'met' if met else 'MISSED'} |")
    L += ["", "Delay = stamp of the alert window's last frame - end of the fall trial (negative: before the "
          "recording ends). The node publishes the alert one window latency later (p99 in benchmarks/ros_latency). "
          "The false-alarm target counts as met on the point estimate; the upper bound says how little the few "
          "minutes of everyday activity can show.",
          "", "![curve](threshold_curve.png)", "", "The sweeps below are on the test participants (for the "
          "curve only: nothing is chosen from them).", ""]
    for name, sweep in res["sweeps"].items():
        L += [f"## Test sweep: {name}", "", CONFIGS[name]["what"] + ".", "",
              "| threshold | windows | recall | false alarms / h | precision | median delay (s) |", "|---|---|---|---|---|---|"]
        for r in sweep:
            L.append(f"| {r['threshold']} | {r['consecutive']} | {_fmt(r['recall'], True)} | "
                     f"{_fmt(r['false_alarms_per_hour'], nd=1)} | {_fmt(r['precision'], True)} | {_fmt(r['delay_median_s'])} |")
        L.append("")
    if res.get("open_set"):
        L += ["## Open set (kinect): unknown threshold", "",
              f"Chosen `unknown_threshold`: **{res['unknown_threshold']}** ({res['unknown_rule']}).", "",
              "| unknown threshold | unknown (everyday) | published label right (everyday) | confident wrong (everyday) | unknown (falls) | right (falls) |",
              "|---|---|---|---|---|---|"]
        for r in res["open_set"]:
            L.append(f"| {r['unknown_threshold']} | {_fmt(r['adl_unknown_share'], True)} | "
                     f"{_fmt(r['adl_published_right'], True)} | {_fmt(r['adl_confident_wrong_share'], True)} | "
                     f"{_fmt(r['falls_unknown_share'], True)} | {_fmt(r['falls_published_right'], True)} |")
        L.append("")
    o = res.get("out_of_set")
    if o:
        L += ["## Motions outside the label set (kinect setting)", "",
              f"{o['what']}: {o['trials']} trials, {o['windows']} windows ({o['minutes']:.1f} min). Published as "
              f"`unknown`: {_fmt(o['unknown_share'], True)}; fall alerts: {o['alerts']} "
              f"({_fmt(o['false_alarms_per_hour'], nd=1)} / h). Published labels: "
              + ", ".join(f"{k} {v}" for k, v in o["published"].items()) + "."
              + (f" Trials that alerted: {', '.join(o['alerting_classes'])}." if o["alerting_classes"] else ""), ""]
    L += ["## Limits", "", "- Staged falls of young adults onto a mat, 3 held-out test participants and one validation "
          "participant; everyday activities are short scripted trials, so false alarms per hour rest on few minutes "
          "(see the count and the upper bound in brackets).",
          "- Camera configurations are simulated from the Kinect joints (no RGB in SmartFallMM): no MediaPipe "
          "detection noise, occlusion or depth ambiguity.", ""]
    (out / "RESULTS.md").write_text("\n".join(L))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    ap.add_argument("--params-file", default=str(DEFAULT_PARAMS))
    ap.add_argument("--participants", default=",".join(map(str, HELD_OUT)))
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--validation", default="", help="participants to choose the rule on (default: the "
                    "checkpoint's calibration participants)")
    ap.add_argument("--gap", type=float, default=3.0, help="seconds without a body between trials")
    ap.add_argument("--out", default=str(HERE))
    a = ap.parse_args(argv)
    from pgfa_models.fileio import sha256_file
    from training.catalog import load_catalog
    from training.corpus import SOURCES, unpack_archive

    _, rel, inner = SOURCES["smartfallmm"]
    root = unpack_archive(rel, inner, "smartfallmm")
    parts = [int(x) for x in a.participants.split(",")]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    base = load_params(a.params_file)
    base_rule = (tuple(base["alert_classes"] or ()), base["alert_threshold"], base["alert_consecutive"])
    catalog = load_catalog()
    val_parts = [int(x) for x in a.validation.split(",")] if a.validation else validation_participants(a.checkpoint)
    if not val_parts or set(val_parts) & set(parts):
        raise SystemExit(f"validation participants {val_parts} must be given and disjoint from the test {parts}")
    sweeps, val_sweeps, chosen, at_test, extra = {}, {}, {}, {}, {}
    for name in [c for c in a.configs.split(",") if c]:
        cfg = CONFIGS[name]
        params = dict(base, checkpoint=a.checkpoint, layout=cfg["layout"], alert_classes=[])
        vlabels, vtrials, vwindows, _, _ = stream_windows(params, root, val_parts, cfg["transform"], a.gap)
        labels, trials, windows, counts, secs = stream_windows(params, root, parts, cfg["transform"], a.gap)
        print(f"[falls] {name}: {len(vtrials)} validation + {len(trials)} test trials, {len(windows)} test windows "
              f"in {secs:.0f} s", flush=True)
        # the rule is chosen on the validation participant(s); the test participants only report it
        val_sweeps[name] = sweep_rule(vwindows, vlabels, vtrials, base_rule[0])
        chosen[name] = choose(val_sweeps[name])
        sweeps[name] = sweep_rule(windows, labels, trials, base_rule[0])
        at_test[name] = next(r for r in sweeps[name] if (r["threshold"], r["consecutive"])
                             == (chosen[name]["threshold"], chosen[name]["consecutive"]))
        at_test[name]["false_alarms_per_hour_upper95"] = poisson_upper(at_test[name]["false_alarms"],
                                                                       at_test[name]["adl_hours"])
        if name == "kinect":
            right = trial_matcher(labels, catalog)
            us = [0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
            curve = open_set_curve(windows, trials, labels, right, us)
            u = unknown_threshold(vwindows, vtrials, vlabels, right)
            extra = {"open_set": curve, "unknown_threshold": u,
                     "unknown_rule": "on the validation participant(s): the 20th percentile of the best score of "
                                     "correctly labelled everyday windows, so 80 % of right everyday labels stay published"}
            # motions outside the label set, with the chosen rule and unknown threshold
            olabels, otrials, owins = out_of_set_windows(params, a.gap)
            ch = chosen[name]
            oal = run_rule(owins, olabels, AlertRule(base_rule[0], ch["threshold"], ch["consecutive"], combine=True))
            hours = sum(t.end - t.start for t in otrials) / 3600
            obest = np.array([w.probs.max() for w in owins])
            tops: dict[str, int] = {}
            for w in owins:
                key = w.label if w.probs.max() >= u else "unknown"
                tops[key] = tops.get(key, 0) + 1
            extra["out_of_set"] = {
                "what": "UTD-MHAD classes sharing no concept with the labels (Kinect v1), trial 1 of every subject",
                "trials": len(otrials), "windows": len(owins), "minutes": 60 * hours,
                "unknown_share": float((obest < u).mean()) if len(owins) else None,
                "alerts": len(oal), "false_alarms_per_hour": len(oal) / hours if hours else None,
                "published": dict(sorted(tops.items(), key=lambda kv: -kv[1])[:8]),
                "alerting_classes": sorted({next(t.name for t in otrials if t.body_id == x.body_id) for x in oal})[:20]}
            print(f"[falls] out-of-set: {len(owins)} windows, {len(oal)} alerts", flush=True)
            rec = Replayer(params)
            extra.update(tau=rec.recognizer.tau, tau_source=getattr(rec.recognizer, "tau_source", "?"),
                         labels=labels, window={k: params[k] for k in ("window_seconds", "window_frames", "stride_frames")},
                         fall_trials=sum(t.is_fall for t in trials), adl_trials=sum(not t.is_fall for t in trials),
                         adl_hours=sum(t.end - t.start for t in trials if not t.is_fall) / 3600, counts=counts,
                         validation_fall_trials=sum(t.is_fall for t in vtrials),
                         validation_adl_hours=sum(t.end - t.start for t in vtrials if not t.is_fall) / 3600)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    res = {"command": "python benchmarks/falls/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "commit": commit,
           "checkpoint": str(Path(a.checkpoint).resolve().relative_to(REPO)) if Path(a.checkpoint).resolve().is_relative_to(REPO) else a.checkpoint,
           "checkpoint_sha256": sha256_file(a.checkpoint), "params_file": str(Path(a.params_file).resolve().relative_to(REPO)),
           "participants": parts, "validation_participants": val_parts, "alert_classes": list(base_rule[0]), "thresholds": THRESHOLDS,
           "consecutive": CONSECUTIVE, "configs": {k: CONFIGS[k]["what"] for k in sweeps},
           "chosen": chosen, "test_at_chosen": at_test, "validation_sweeps": val_sweeps, "sweeps": sweeps, "seconds": time.monotonic() - t_start,
           "camera_config": CAMERA_CONFIG, **extra}
    (out / "results.json").write_text(json.dumps(res, indent=1, default=float) + "\n")
    plot(sweeps, at_test, out / "threshold_curve.png")
    write_report(res, out)
    for name, c in at_test.items():
        print(f"[falls] {name}: threshold {c['threshold']} x {c['consecutive']}: test recall {100 * c['recall']:.1f} %, "
              f"{c['false_alarms_per_hour']:.1f} false alarms / h, precision {_fmt(c['precision'], True)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
