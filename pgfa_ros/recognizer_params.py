"""The recognizer's parameters as plain data (no rclpy): names, defaults, which ones may change at
run time, and the checks a new value must pass. The node declares them from :data:`PARAMS` (the
configure-only ones read-only, so ``ros2 param set`` refuses them instead of reporting a success
that changes nothing) and calls :func:`check_changes` from its set-parameters callback; tests and
tools can check a parameters file the same way without ROS.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from pgfa_models.layouts import LAYOUTS
from pgfa_models.recognition import MODES
from pgfa_ros.alerts import AlertRule, alert_classes_error
from pgfa_ros.windows import WindowConfig

__all__ = ["ParamSpec", "PARAMS", "RUNTIME_PARAMS", "CONFIGURE_PARAMS", "WINDOW_PARAMS", "ALERT_PARAMS",
           "DEFAULT_BANK_FILE", "EXPIRE_CLOCKS", "DEFAULT_CHECKPOINT", "FALLS_CHECKPOINT", "resolve_checkpoint", "bank_file_error", "check_value", "check_changes", "window_config", "alert_rule"]

DEFAULT_BANK_FILE = "prototype_bank.npz"
EXPIRE_CLOCKS = ("receive", "stamp")
ASSETS = Path(__file__).resolve().parent / "assets"
# The one place that names the shipped checkpoints (node, demo, bag tools, benchmarks, tests).
DEFAULT_CHECKPOINT = str(ASSETS / "multi_source_default.safetensors")
FALLS_CHECKPOINT = str(ASSETS / "falls_monitor.safetensors")


def resolve_checkpoint(value: str | None) -> str:
    """The checkpoint file a ``checkpoint`` value names: ``""`` = the packaged default; a bare file
    name that is not in the working directory but is a packaged asset (``pgfa_ros/assets``, e.g.
    ``falls_monitor.safetensors``) = that asset, so a shipped config works from any directory."""
    if not value:
        return DEFAULT_CHECKPOINT
    p = Path(value).expanduser()
    if not p.exists() and p.name == value and (ASSETS / value).is_file():
        return str(ASSETS / value)
    return str(p)


@dataclass(frozen=True)
class ParamSpec:
    default: Any  # None with string_array: declared as an (unset) string array
    description: str
    runtime: bool  # changeable while configured; else read-only (start-up value, used at configure)
    string_array: bool = False


def _arr(desc: str) -> ParamSpec:
    return ParamSpec(None, desc, True, string_array=True)


PARAMS: dict[str, ParamSpec] = {
    "checkpoint": ParamSpec("", "PGFA checkpoint (.safetensors; '' = the packaged default; a bare name = a "
                            "packaged asset, e.g. falls_monitor.safetensors)", False),
    "layout": ParamSpec("azure_kinect_32", f"source skeleton layout: {sorted(LAYOUTS)}", False),
    "skeleton_topic": ParamSpec("/body_tracking_data", "skeleton MarkerArray topic", False),
    "labels": _arr("class names (empty: the checkpoint's labels)"),
    "descriptions": _arr("one description per label (embedded together with its name), or none"),
    "mode": ParamSpec("text", f"classification mode: {MODES}", True),
    "window_frames": ParamSpec(45, "window length in frames (used when window_seconds is 0)", True),
    "window_seconds": ParamSpec(0.0, "window length in seconds (> 0 overrides window_frames)", True),
    "stride_frames": ParamSpec(10, "frames between two windows of one body", True),
    "body_timeout": ParamSpec(1.0, "seconds without data after which a body is forgotten", True),
    "expire_clock": ParamSpec("receive", "clock that forgets a body after body_timeout: 'receive' (live "
                              "sensors) or 'stamp' (the messages' own stamps: recorded streams played slower "
                              "than real time, e.g. in lockstep with a slow pose estimator)", False),
    "max_bodies": ParamSpec(8, "most bodies tracked at once", True),
    "stagger_windows": ParamSpec(True, "offset the window phase of bodies that appear together (lower latency)", True),
    "max_window_frames": ParamSpec(300, "buffer bound per body (frames), for seconds windows", False),
    "top_k": ParamSpec(3, "labels reported per window", True),
    "alert_classes": _arr("labels that raise alerts (each must be in the label set)"),
    "alert_threshold": ParamSpec(0.5, "score an alert class must reach", True),
    "alert_consecutive": ParamSpec(3, "consecutive windows above threshold before an alert", True),
    "alert_combine": ParamSpec(False, "score the alert classes together: the sum of their probabilities "
                               "(P(any alert class), e.g. every fall direction) must reach alert_threshold", True),
    # chosen on the validation classes utd/V1-V2 of the shipped recipe and model kind (benchmarks/crossdata/RESULTS.md,
    # generalised zero-shot: 0.14 for one model like the default checkpoint, 0.16 for seed ensembles), never on test
    # classes or live data; no effect when every label is a trained class
    "seen_margin": ParamSpec(0.14, "cosine margin the checkpoint's trained classes give up to labels defined "
                             "by a new sentence (0 = none: a new sentence then almost never wins)", True),
    "unknown_threshold": ParamSpec(0.0, "publish 'unknown' as the label when the best score is below this "
                                   "(0 = never; topk keeps the real scores)", True),
    "text_cache_dir": ParamSpec("", "text model / embedding cache root ('' = $PGFA_CACHE_DIR or ~/.cache/pgfa_ros)",
                                False),
    "bank_dir": ParamSpec("", "directory of the prototype bank files, fixed at configure ('' = the cache root)", False),
    "bank_file": ParamSpec(DEFAULT_BANK_FILE, "file name (no directory) in bank_dir for ~/save_bank and load_bank",
                           True),
    "load_bank": ParamSpec(False, "load bank_dir/bank_file at configure when it exists", False),
    "bank_capacity": ParamSpec(64, "prototype bank memory per class", False),
    "bank_min_support": ParamSpec(3, "members before a class prototype replaces its text feature", False),
    "bank_max_age": ParamSpec(0, "forget bank members after this many later stored-candidate windows (0 = never)",
                              False),
    "backend": ParamSpec("auto", "inference backend: eager | auto | onnxruntime | compiled | tensorrt "
                         "(falls back to eager)", False),
    "device": ParamSpec("cpu", "inference device: cpu | cuda", False),
    "num_threads": ParamSpec(1, "intra-op threads for inference (0 = library default)", False),
    "max_markers": ParamSpec(0, "markers per message above which it is ignored as a flood (0 = max_bodies*joints)",
                             True),
    "diagnostics_period": ParamSpec(1.0, "seconds between /diagnostics messages", False),
    "publish_markers": ParamSpec(True, "publish RViz text markers on ~/markers", True),
    "fast_parse": ParamSpec(True, "decode skeleton messages straight from CDR bytes (raw subscription)", False),
    "autostart": ParamSpec(False, "configure and activate at start-up without a lifecycle manager", False),
}
RUNTIME_PARAMS = tuple(n for n, s in PARAMS.items() if s.runtime)
CONFIGURE_PARAMS = tuple(n for n, s in PARAMS.items() if not s.runtime)
WINDOW_PARAMS = ("window_frames", "window_seconds", "stride_frames", "body_timeout", "max_bodies", "stagger_windows")
ALERT_PARAMS = ("alert_classes", "alert_threshold", "alert_consecutive", "alert_combine")

Getter = Callable[[str], Any]


def bank_file_error(name) -> str | None:
    """Why ``name`` is not acceptable as a prototype bank file name (None when it is): a plain
    file name inside the configured directory, never a path (anyone on the DDS domain can set it)."""
    if not isinstance(name, str) or not name.strip():
        return "bank_file must be a non-empty file name"
    seps = {"/", "\\", os.sep} | ({os.altsep} if os.altsep else set())
    if any(c in name for c in seps) or "\0" in name:
        return f"bank_file must be a file name without a directory, got {name!r}"
    if name in (".", "..") or name.startswith(".."):
        return f"bank_file must not be {name!r}"
    if len(name.encode()) > 255:
        return "bank_file is longer than 255 bytes"
    return None


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_value(name: str, v, get: Getter) -> str | None:
    """Why value ``v`` of one runtime parameter is refused (None when it is fine); ``get`` reads
    the current value of another parameter."""
    if name == "mode" and v not in MODES:
        return f"mode must be one of {MODES}"
    if name == "labels" and v is not None:
        names = [str(x).strip() for x in v]
        if any(not n for n in names) or len(set(names)) != len(names):
            return "labels must be non-empty and unique"
    if name in ("window_frames", "stride_frames", "max_bodies", "top_k", "alert_consecutive") and (
            not _is_int(v) or v < 1):
        return f"{name} must be a positive integer"
    if name == "window_frames" and v < 2:
        return "window_frames must be >= 2"
    if name == "window_frames" and v > int(get("max_window_frames")):
        return "window_frames exceeds max_window_frames"
    if name == "window_seconds" and (not isinstance(v, float) or v < 0 or not math.isfinite(v)):
        return "window_seconds must be a float >= 0"
    if name == "body_timeout" and (not isinstance(v, float) or not v > 0):
        return "body_timeout must be a float > 0"
    if name in ("alert_threshold", "unknown_threshold", "seen_margin") and (not isinstance(v, float) or not 0 <= v <= 1):
        return f"{name} must be in [0, 1]"
    if name == "alert_combine" and not isinstance(v, bool):
        return "alert_combine must be true or false"
    if name == "max_markers" and (not _is_int(v) or v < 0):
        return "max_markers must be >= 0"
    if name == "bank_file":
        return bank_file_error(v)
    return None


def check_changes(pending: Mapping[str, Any], get: Getter, default_labels: Sequence[str] | None) -> str | None:
    """Why a set of parameter changes (``pending``: name -> new value, applied together) is
    refused, or None. ``default_labels``: the label set when ``labels`` is empty (the
    checkpoint's), None when not known yet (before configure: configure checks then)."""
    for name, v in pending.items():
        err = check_value(name, v, get)
        if err:
            return err
    if {"labels", "alert_classes"} & set(pending):
        classes = list((pending["alert_classes"] if "alert_classes" in pending else get("alert_classes")) or [])
        try:
            AlertRule(tuple(classes))
        except ValueError as exc:
            return str(exc)
        labels = [str(x).strip() for x in ((pending["labels"] if "labels" in pending else get("labels")) or [])]
        labels = labels or (list(default_labels) if default_labels is not None else None)
        if labels is not None:
            return alert_classes_error(classes, labels)
    return None


def window_config(get: Getter) -> WindowConfig:
    return WindowConfig(
        window_frames=int(get("window_frames")),
        window_seconds=float(get("window_seconds")),
        stride_frames=int(get("stride_frames")),
        body_timeout=float(get("body_timeout")),
        max_bodies=int(get("max_bodies")),
        max_frames=int(get("max_window_frames")),
        stagger=bool(get("stagger_windows")),
    )


def alert_rule(get: Getter) -> AlertRule:
    return AlertRule(tuple(get("alert_classes") or ()), float(get("alert_threshold")), int(get("alert_consecutive")),
                     bool(get("alert_combine")))
