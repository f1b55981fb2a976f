"""``pgfa-replay``: run a bag or a SmartFallMM folder through the recognizer's live code path, offline.

The recognizer node (``pgfa_ros.recognizer_node``) is ROS wiring around pure modules; this replay
runs the very same ones, in the same order, with the node's parameters:

    skeleton MarkerArray CDR -> per-body bodies     pgfa_ros.skeleton_msgs (raw decoder, same limits)
      -> per-body windows, body timeout, stagger    pgfa_models.windows (WindowManager)
      -> preprocess + ONE batched classify + open set   pgfa_ros.live_pipeline.classify_windows
      -> alert rule                                 pgfa_ros.alerts.AlertTracker
      -> ~/actions and ~/alerts JSON                pgfa_ros.action_messages (to_json)

and writes what the node would publish on ``~/actions`` and ``~/alerts`` as JSON lines
(``actions.jsonl``, ``alerts.jsonl``: one ``std_msgs/String.data`` per line). It is faster than
real time (no waiting for stamps) and deterministic: the receive clock is the recording's clock
(the bag's log time; for SmartFallMM the frame stamps), every ready window is collected after
each message (the node drops a window only when inference falls behind), and the measured
timing fields are written as unknown (``latency_ms`` 0, ``timing_ms`` null except ``batch``).
``test/test_replay.py`` checks it equal to the live node over real DDS.

SmartFallMM trials are laid on one timeline the way ``pgfa-bag convert --dataset smartfallmm``
writes them (frame k at ``start + k / 30 s``, ``--gap`` seconds of silence between trials), so
the body leaves and re-enters between trials; by default each trial gets a fresh body id, as the
Azure Kinect driver does for a person who comes back.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from pgfa_models.layouts import get_layout
from pgfa_models.windows import WindowManager
from pgfa_ros.action_messages import action_message, alert_message, to_json
from pgfa_ros.alerts import AlertTracker, alert_classes_error
from pgfa_ros.live_pipeline import classify_windows, preprocess_config_from_meta
from pgfa_ros.recognizer_params import PARAMS, alert_rule, check_value, resolve_checkpoint, window_config
from pgfa_ros.skeleton_msgs import ParsedSkeletons, _assemble, marker_array_bytes_to_bodies, marker_array_to_bodies

__all__ = ["load_params", "Replayer", "Step", "Trial", "bag_frames", "smartfall_frames", "replay", "main"]

NS_PER_S = 1_000_000_000
DEFAULT_START_NS = 1_700_000_000 * NS_PER_S  # the epoch pgfa-bag convert uses
DEFAULT_GAP_S = 3.0  # > every shipped body_timeout: the body is lost between trials


# ----------------------------------------------------------------------------- parameters
def load_params(params_file: str | Path | None = None, node: str = "recognizer",
                overrides: Mapping[str, Any] | None = None) -> dict:
    """The node's parameters: defaults of :data:`PARAMS`, then the ``ros__parameters`` of ``node``
    (or ``/**``) in a ROS parameters YAML, then ``overrides``. Unknown names and invalid values
    are a ValueError, as the node would refuse them."""
    import yaml

    values = {k: (None if s.string_array else s.default) for k, s in PARAMS.items()}
    layers = []
    if params_file:
        data = yaml.safe_load(Path(params_file).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{params_file}: not a ROS parameters file (a mapping of node names)")
        found = False
        for key in ("/**", node, "/" + node.lstrip("/")):
            sec = data.get(key)
            if isinstance(sec, dict) and isinstance(sec.get("ros__parameters"), dict):
                layers.append((f"{params_file}[{key}]", sec["ros__parameters"]))
                found = True
        if not found:
            raise ValueError(f"{params_file}: no '{node}: ros__parameters:' section")
    if overrides:
        layers.append(("overrides", dict(overrides)))
    for where, layer in layers:
        for k, v in layer.items():
            if k not in PARAMS:
                raise ValueError(f"{where}: unknown recognizer parameter {k!r}")
            if isinstance(PARAMS[k].default, float) and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)  # YAML 1 for 1.0: ROS would refuse it; be lenient offline
            values[k] = v
    get = values.__getitem__
    for k, v in values.items():
        if PARAMS[k].runtime and v is not None:
            err = check_value(k, v, get)
            if err:
                raise ValueError(f"parameter {k}: {err}")
    return values


# ----------------------------------------------------------------------------- frame sources
@dataclass(frozen=True)
class Trial:
    """Where one SmartFallMM trial lies on the replay timeline (seconds, the node's stamps)."""

    name: str
    participant: int
    activity: int
    trial: int
    is_fall: bool
    body_id: int
    start: float
    end: float
    frames: int


def _stamp_s(ns: int) -> float:
    """A stamp as the node reads it from a header: ``sec + nanosec * 1e-9``."""
    sec, nsec = divmod(int(ns), NS_PER_S)
    return float(sec) + float(nsec) * 1e-9


def bag_frames(path: str | Path, topic: str, num_joints: int, max_bodies: int,
               max_markers: int | None) -> Iterator[tuple[float, ParsedSkeletons]]:
    """``(receive time s, parsed)`` per skeleton message of a bag: the raw CDR bytes decoded by the
    node's decoder with the node's limits (rosbags deserialisation where the node would fall back
    to rclpy's); the receive time is the bag's log time."""
    from pgfa_ros.bag.convention import BagError
    from pgfa_ros.bag.io import describe_topics, list_topics, open_reader, read_messages, typestore

    reader = open_reader(path)
    try:
        if topic not in {t.name for t in list_topics(reader)}:
            raise BagError(f"{path}: no topic {topic} (topics: {describe_topics(reader)})")
        ts = typestore()

        def fallback(buf):
            return ts.deserialize_cdr(buf, "visualization_msgs/msg/MarkerArray")

        for _, t, raw in read_messages(reader, [topic], decode=False):
            yield t * 1e-9, marker_array_bytes_to_bodies(raw, num_joints, max_bodies=max_bodies,
                                                         max_markers=max_markers, fallback=fallback)
    finally:
        reader.close()


def _parsed_from_joints(bodies: Mapping[int, np.ndarray], ns: int, frame_id: str, num_joints: int,
                        max_bodies: int, max_markers: int | None) -> ParsedSkeletons:
    """What the node's decoder makes of the MarkerArray ``pgfa-bag convert`` writes for ``bodies``
    (same assembly, same checks; NaN joints are dropped markers)."""
    out = ParsedSkeletons(decoder="raw")
    n = sum(len(j) for j in bodies.values())
    out.num_markers = n
    limit = max_bodies * num_joints if max_markers is None else max_markers
    if n == 0 or n > limit:
        out.dropped["empty" if n == 0 else "flood"] += max(n, 1)
        return out
    sec, nsec = divmod(int(ns), NS_PER_S)
    records = ((sec, nsec, frame_id, int(b) * 100 + k, 0, float(x), float(y), float(z))
               for b, joints in bodies.items() for k, (x, y, z) in enumerate(np.asarray(joints, np.float64).tolist()))
    _assemble(out, records, num_joints, max_bodies, max(1, num_joints // 2), 100.0)
    return out


def smartfall_frames(root: str | Path, participants=None, activities=None, trials=None, *, limit: int | None = None,
                     gap_s: float = DEFAULT_GAP_S, fresh_ids: bool = True, start_ns: int = DEFAULT_START_NS,
                     max_bodies: int = 8, max_markers: int | None = None, frame_id: str = "depth_camera_link",
                     records=None, trials_out: list | None = None, transform=None,
                     num_joints: int = 32, reader=None, fps: float | None = None) -> Iterator[tuple[float, ParsedSkeletons]]:
    """SmartFallMM trials on one timeline, as ``(receive time s, parsed)`` per frame; each trial's
    place is appended to ``trials_out`` (a :class:`Trial`) before its first frame. ``records``
    (from :func:`scan_smartfallmm`) overrides the folder scan and the selection, in their order.
    ``transform`` maps a trial's (T, 32, 3) joints to another layout's (T, ``num_joints``, 3)
    (e.g. the joints a camera path would report). Other recordings: ``records`` with the fields of
    a ``SmartFallRecord`` (path, participant, activity, trial, is_fall), ``reader`` (path -> (T, J, 3)
    metres) and ``fps``."""
    from pgfa_models.formats.smartfallmm import SMARTFALL_FPS, read_smartfallmm, scan_smartfallmm
    from pgfa_ros.bag.convert import select_smartfall

    if records is None:
        records = select_smartfall(scan_smartfallmm(root), participants, activities, trials)
        if limit is not None:
            records = records[:limit]
    if not records:
        raise ValueError(f"no SmartFallMM trials in {root} match the selection")
    if not (math.isfinite(gap_s) and gap_s >= 0):
        raise ValueError(f"gap must be >= 0 seconds, got {gap_s}")
    t = int(start_ns)
    fps = float(fps or SMARTFALL_FPS)
    reader = reader or read_smartfallmm
    for i, r in enumerate(records):
        joints = reader(r.path)
        if transform is not None:
            joints = np.asarray(transform(joints), dtype=np.float32)
        if joints.ndim != 3 or joints.shape[1:] != (num_joints, 3):
            raise ValueError(f"{r.path.name}: joints {joints.shape} do not fit a {num_joints}-joint layout")
        body = i if fresh_ids else 0
        T = len(joints)
        end = t + int(round((T - 1) * NS_PER_S / fps))
        if trials_out is not None:
            trials_out.append(Trial(r.path.stem, r.participant, r.activity, r.trial, r.is_fall, body,
                                    _stamp_s(t), _stamp_s(end), T))
        for k in range(T):
            ns = t + int(round(k * NS_PER_S / fps))
            yield ns * 1e-9, _parsed_from_joints({body: joints[k]}, ns, frame_id, num_joints, max_bodies,
                                                    max_markers)
        t = end + int(round(gap_s * NS_PER_S))


# ----------------------------------------------------------------------------- the live path
@dataclass
class Step:
    """What one skeleton message made the node publish (in publishing order)."""

    actions: list[dict] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)
    windows: list = field(default_factory=list)      # the classified ReadyWindows
    predictions: list = field(default_factory=list)  # their OpenSetPredictions (probs over `labels`)
    labels: list | None = None


class Replayer:
    """The recognizer node's processing without ROS: feed messages in order, get its outputs."""

    def __init__(self, params: Mapping[str, Any], encoder=None):
        self.params = dict(params)
        self._init(encoder)

    def _init(self, encoder) -> None:
        from pgfa_models.recognition import load_recognizer

        p = self.params
        get = p.__getitem__
        self.layout = get_layout(p["layout"])
        labels = list(p["labels"] or []) or None
        desc = list(p["descriptions"] or [])
        if labels and desc and len(desc) != len(labels):
            raise ValueError(f"{len(desc)} descriptions for {len(labels)} labels")
        rule = alert_rule(lambda k: p[k] if p[k] is not None else [])
        self.recognizer, self.meta = load_recognizer(
            resolve_checkpoint(p["checkpoint"]), labels=labels, descriptions=desc or None, mode=p["mode"],
            top_k=int(p["top_k"]), text_cache_dir=p["text_cache_dir"] or None,
            num_threads=int(p["num_threads"]) or None,
            bank_options=dict(capacity=int(p["bank_capacity"]), min_support=int(p["bank_min_support"]),
                              max_age=int(p["bank_max_age"]) or None),
            backend=p["backend"], device=p["device"], encoder=encoder, seen_margin=float(p["seen_margin"]))
        err = alert_classes_error(rule.classes, self.recognizer.labels.names)
        if err:
            raise ValueError(err)
        self.pre_cfg = preprocess_config_from_meta(self.meta)
        self.num_person = int(self.meta.num_person or 1)
        self.windows = WindowManager(self.layout.num_joints, window_config(get))
        self.alerts = AlertTracker(rule)
        self.unknown_threshold = float(p["unknown_threshold"])
        self.max_bodies = int(p["max_bodies"])
        self.max_markers = int(p["max_markers"]) or None
        self.frame_ids: dict[int, str] = {}
        self.counts = {"messages": 0, "windows": 0, "alerts": 0}

    @property
    def labels(self) -> list[str]:
        return list(self.recognizer.labels.names)

    def _sync(self) -> None:
        live = set(self.windows.bodies)
        for b in [b for b in self.frame_ids if b not in live]:
            del self.frame_ids[b]
        self.alerts.retain(live)

    def feed(self, now: float, parsed: ParsedSkeletons) -> Step:
        """One skeleton message received at ``now`` (recording clock)."""
        self.counts["messages"] += 1
        self.windows.expire(now)  # the node's 0.1 s timer, here before every message
        self._sync()
        for body_id, joints in parsed.bodies.items():
            if self.windows.add(body_id, parsed.stamps[body_id], joints, now) is not None:
                continue
            self.frame_ids[body_id] = parsed.frame_id
        step = Step()
        if not self.windows.num_pending:
            return step
        ready = self.windows.pop_ready()
        frame_ids = {w.body_id: self.frame_ids.get(w.body_id, "") for w in ready}
        rec = self.recognizer
        batch = classify_windows(rec, ready, self.layout, self.pre_cfg, self.num_person,
                                 unknown_threshold=self.unknown_threshold)
        if not batch.windows:
            return step
        names = batch.labels or []
        timing = {"transport": None, "wait": None, "preprocess": None, "inference": None,
                  "batch": len(batch.windows)}
        alerts = []
        for w, pred in zip(batch.windows, batch.predictions):
            step.actions.append(action_message(w, pred, mode=rec.mode, latency_ms=0.0,
                                               frame_id=frame_ids.get(w.body_id, ""), timing=timing))
            alerts += self.alerts.update(w.body_id, w.end, names, pred.probs)
        step.alerts = [alert_message(a, frame_ids.get(a.body_id, "")) for a in alerts]
        step.windows, step.predictions, step.labels = batch.windows, batch.predictions, batch.labels
        self.counts["windows"] += len(step.actions)
        self.counts["alerts"] += len(step.alerts)
        return step

    def run(self, frames: Iterable[tuple[float, ParsedSkeletons]]) -> Iterator[Step]:
        for now, parsed in frames:
            yield self.feed(now, parsed)


def replay(replayer: Replayer, frames, out_dir: str | Path | None = None) -> dict:
    """Run ``frames`` through ``replayer``; write ``actions.jsonl`` / ``alerts.jsonl`` into ``out_dir``
    (atomically, when the whole input was read). Returns counts and the outputs as JSON strings."""
    t0 = time.monotonic()
    actions, alerts = [], []
    first = last = None
    for now, parsed in frames:
        first = now if first is None else first
        last = now
        step = replayer.feed(now, parsed)
        actions += [to_json(a) for a in step.actions]
        alerts += [to_json(a) for a in step.alerts]
    wall = time.monotonic() - t0
    span = (last - first) if first is not None else 0.0
    summary = {"messages": replayer.counts["messages"], "actions": len(actions), "alerts": len(alerts),
               "stream_s": span, "wall_s": wall, "speed": (span / wall) if wall > 0 else math.inf,
               "rejected": dict(replayer.windows.counts)}
    if out_dir is not None:
        from pgfa_models.fileio import atomic_write_text

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "actions.jsonl", "".join(a + "\n" for a in actions))
        atomic_write_text(out / "alerts.jsonl", "".join(a + "\n" for a in alerts))
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    summary["action_lines"], summary["alert_lines"] = actions, alerts
    return summary


# ----------------------------------------------------------------------------- CLI
def _ints(text: str) -> list[int]:
    try:
        return [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _override(spec: str) -> tuple[str, Any]:
    import yaml

    name, sep, value = spec.partition(":=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"-p {spec!r}: expected NAME:=VALUE (as ros2 run -p)")
    return name.strip(), yaml.safe_load(value)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pgfa-replay", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--bag", help="rosbag2 folder with a skeleton MarkerArray topic")
    src.add_argument("--smartfallmm", metavar="DIR", help="SmartFallMM skeleton folder (S<p>A<a>T<t>.csv)")
    p.add_argument("--participants", type=_ints, help="SmartFallMM: these participants (e.g. 37,38,39)")
    p.add_argument("--activities", type=_ints, help="SmartFallMM: these activity ids (1-14; falls 10-14)")
    p.add_argument("--trials", type=_ints, help="SmartFallMM: these trial numbers")
    p.add_argument("--limit", type=int, help="SmartFallMM: at most this many trials")
    p.add_argument("--gap", type=float, default=DEFAULT_GAP_S, help="SmartFallMM: seconds without a body between trials")
    p.add_argument("--reuse-body-id", action="store_true",
                   help="SmartFallMM: body id 0 for every trial (as pgfa-bag convert), not a fresh id per trial")
    p.add_argument("--params-file", help="the node's ROS parameters YAML (e.g. config/fall_monitor_kinect.yaml)")
    p.add_argument("--node-name", default="recognizer", help="section of --params-file to read")
    p.add_argument("-p", dest="overrides", action="append", type=_override, default=[], metavar="NAME:=VALUE",
                   help="a recognizer parameter (after --params-file)")
    p.add_argument("--skeleton-topic", help="bag topic (default: the skeleton_topic parameter)")
    p.add_argument("--out", "-o", required=True, help="folder for actions.jsonl, alerts.jsonl, summary.json")
    p.add_argument("--quiet", "-q", action="store_true")
    return p


def main(argv=None) -> int:
    from pgfa_ros.bag.convention import BagError

    a = build_parser().parse_args(argv)
    try:
        params = load_params(a.params_file, a.node_name, dict(a.overrides))
        rep = Replayer(params)
        if a.bag:
            frames = bag_frames(a.bag, a.skeleton_topic or params["skeleton_topic"], rep.layout.num_joints,
                                rep.max_bodies, rep.max_markers)
        else:
            if rep.layout.num_joints != 32:
                raise ValueError(f"SmartFallMM is Azure Kinect (azure_kinect_32); layout is {params['layout']}")
            frames = smartfall_frames(a.smartfallmm, a.participants, a.activities, a.trials, limit=a.limit,
                                      gap_s=a.gap, fresh_ids=not a.reuse_body_id, max_bodies=rep.max_bodies,
                                      max_markers=rep.max_markers)
        s = replay(rep, frames, a.out)
    except KeyboardInterrupt:
        print("pgfa-replay: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, KeyError, RuntimeError, BagError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"pgfa-replay: error: {msg}", file=sys.stderr)
        return 2
    if not a.quiet:
        print(f"pgfa-replay: {s['messages']} messages ({s['stream_s']:.1f} s of stream) in {s['wall_s']:.1f} s "
              f"({s['speed']:.1f}x real time): {s['actions']} actions, {s['alerts']} alerts -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
