#!/usr/bin/env python
"""Soak test of the live recognizer: hours of body churn compressed into minutes (issue 13).

Three processes over real DDS (like ``benchmarks/ros_latency``):

1. the ``recognizer`` node (``python -m pgfa_ros.recognizer_node --autostart``), layout
   ``kinect_v1_20``, ``max_bodies`` 4;
2. a publisher (this script, ``publish`` sub-command) sending skeleton MarkerArrays at 30 Hz of
   real UTD-MHAD motion. Bodies appear and vanish all the time, each new one with a fresh id
   that is never reused (the Azure Kinect driver's ever-growing ids), up to 6 in view at once
   (more than ``max_bodies``). Mixed in: NaN joints, absurd positions, out-of-range joint ids,
   empty arrays, truncated CDR messages and random bytes (both published raw). The publisher
   counts every bad input it sends;
3. this process: samples the node's resident memory (``/proc/<pid>/status`` VmRSS) and its
   ``/diagnostics`` (queue length ``pending_windows``, ``buffered_frames``, the sizes of the
   per-body dictionaries ``state_*``, and every ``rejected_*`` counter) every ``--sample``
   seconds.

At the end it writes ``results.json`` (every sample, the publisher's counts, the checks) and
``RESULTS.md``. The checks: memory flat (RSS growth over the second half of the run below
``--max-growth-mb``), no queue growth (pending windows <= max_bodies, buffered frames <= max_bodies
* window, per-body dictionaries <= max_bodies), and every bad input counted (each node counter
equal to what the publisher sent, provided no message was lost on the way; a loss is reported).

    source scripts/env.sh
    python benchmarks/soak/run.py                      # 10 minutes -> benchmarks/soak/RESULTS.md, results.json
    python benchmarks/soak/run.py --duration 60 --out-dir /tmp/soak
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO))
from pgfa_ros.processes import spin_in_background, stop_process  # noqa: E402

from pgfa_models.fileio import atomic_write_text  # noqa: E402
from pgfa_models.sysinfo import cpu_model  # noqa: E402

TOPIC = "/pgfa_soak/body_tracking_data"
J = 20  # kinect_v1_20
MAX_BODIES = 4
IN_VIEW = 6
WINDOW, STRIDE = 45, 10
MAX_MARKERS = 400  # so that messages with more than max_bodies bodies are parsed, not ignored as floods


# ----------------------------------------------------------------------------- publisher
class Scene:
    """Bodies in view: each lives 1-8 s, then vanishes and a new body with a fresh id takes its
    slot after 0-1.5 s. Slot k is shifted 0.8 m sideways."""

    def __init__(self, seqs, rng, slots: int = IN_VIEW):
        self.seqs, self.rng = seqs, rng
        self.next_id = 0
        self.slots = [self._spawn(k, 0.0) for k in range(slots)]
        self.ids_used = 0

    def _spawn(self, k, t):
        seq = self.seqs[int(self.rng.integers(len(self.seqs)))]
        body = dict(id=self.next_id, seq=seq, t=int(self.rng.integers(len(seq))), k=k,
                    until=t + float(self.rng.uniform(1.0, 8.0)), back=None)
        self.next_id += 1
        return body

    def frame(self, t):
        out = {}
        for k, b in enumerate(self.slots):
            if b["back"] is not None:  # slot empty until then
                if t >= b["back"]:
                    self.slots[k] = b = self._spawn(k, t)
                else:
                    continue
            elif t >= b["until"]:
                b["back"] = t + float(self.rng.uniform(0.0, 1.5))
                continue
            seq = b["seq"]
            out[b["id"]] = seq[b["t"] % len(seq)] + np.array([0.8 * k, 0.0, 0.0], np.float32)
            b["t"] += 1
        return out


def publish(a) -> int:
    """The publisher process: ``--duration`` s at 30 Hz; writes its counts to ``--report``."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from rclpy.serialization import serialize_message
    from visualization_msgs.msg import Marker, MarkerArray

    from pgfa_ros.skeleton_msgs import joints_to_marker_array, sec_to_stamp
    from pgfa_ros.skeleton_publisher import DEFAULT_DATA, DEFAULT_SEQUENCES, load_sequences

    rng = np.random.default_rng(a.seed)
    seqs = load_sequences(DEFAULT_DATA, DEFAULT_SEQUENCES)
    scene = Scene(seqs, rng)
    rclpy.init()
    node = rclpy.create_node("pgfa_soak_publisher")
    pub = node.create_publisher(MarkerArray, a.topic, qos_profile_sensor_data)
    t_end = time.monotonic() + 30
    while pub.get_subscription_count() == 0 and time.monotonic() < t_end:  # wait for the recognizer
        time.sleep(0.1)
    sent = dict(messages=0, frames=0, nan_joint=0, absurd_position=0, bad_id=0, empty=0, malformed=0,
                too_many_bodies=0, bodies_seen=0)
    period = 1.0 / a.rate
    t0 = time.monotonic()
    n = int(round(a.duration * a.rate))
    for k in range(n):
        delay = t0 + k * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        stamp = time.time()
        bodies = scene.frame(k * period)
        for bid, joints in list(bodies.items()):
            bad = rng.choice(J, 3, replace=False)  # distinct joints, so each counts for one reason only
            if rng.random() < 0.05:  # 2 joints NaN (repairable)
                joints = joints.copy()
                joints[bad[:2]] = np.nan
                sent["nan_joint"] += 2
            if rng.random() < 0.01:  # one joint far away (sensor glitch)
                joints = joints.copy()
                joints[bad[2]] = (1e6, 0.0, 0.0)
                sent["absurd_position"] += 1
            bodies[bid] = joints
        sent["too_many_bodies"] += max(0, len(bodies) - MAX_BODIES)  # the parser keeps max_bodies per message
        msg = joints_to_marker_array(bodies, stamp, "kinect_v1") if bodies else None
        if msg is not None:
            if rng.random() < 0.02:  # out-of-range joint ids
                for mid in (57, 99, -1):
                    m = Marker()
                    m.id = mid
                    m.header.stamp = sec_to_stamp(stamp)
                    msg.markers.append(m)
                    sent["bad_id"] += 1
            pub.publish(msg)
            sent["frames"] += 1
        else:
            pub.publish(MarkerArray())
            sent["empty"] += 1
        sent["messages"] += 1
        r = rng.random()
        if r < 0.03:  # the extra message goes out half a period later, not back to back
            delay = t0 + (k + 0.5) * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if r < 0.01:
            pub.publish(MarkerArray())
            sent["empty"] += 1
            sent["messages"] += 1
        elif r < 0.02 and msg is not None:  # a truncated serialized message
            raw = serialize_message(msg)
            pub.publish(bytes(raw[: int(len(raw) * rng.uniform(0.1, 0.9))]))
            sent["malformed"] += 1
            sent["messages"] += 1
        elif r < 0.03:  # random bytes with a CDR header
            pub.publish(b"\x00\x01\x00\x00" + rng.integers(0, 256, int(rng.integers(4, 3000)), np.uint8).tobytes())
            sent["malformed"] += 1
            sent["messages"] += 1
        rclpy.spin_once(node, timeout_sec=0)
    sent["bodies_seen"] = scene.next_id
    sent["elapsed_s"] = time.monotonic() - t0
    atomic_write_text(a.report, json.dumps(sent, indent=1))
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


# ----------------------------------------------------------------------------- monitor
def _env(domain: int) -> dict:
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env




def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


class DiagListener:
    """Latest /diagnostics values of the recognizer, and how many actions / alerts arrived."""

    def __init__(self, domain: int):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from std_msgs.msg import String

        self.rclpy = rclpy
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx, domain_id=domain)
        self.node = rclpy.create_node("pgfa_soak_monitor", context=self.ctx)
        self.lock = threading.Lock()
        self.diag: dict = {}
        self.actions = 0
        self.alerts = 0
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.node.create_subscription(String, "/recognizer/actions", self._on_action, 100)
        self.node.create_subscription(String, "/recognizer/alerts", self._on_alert, 100)
        self.ex = SingleThreadedExecutor(context=self.ctx)
        self.ex.add_node(self.node)
        self.thread = spin_in_background(self.ex, self.ctx)

    def _on_diag(self, m):
        for st in m.status:
            if st.name.startswith("recognizer"):
                with self.lock:
                    self.diag = {kv.key: kv.value for kv in st.values}

    def _on_action(self, m):
        with self.lock:
            self.actions += 1

    def _on_alert(self, m):
        with self.lock:
            self.alerts += 1

    def latest(self) -> tuple[dict, int, int]:
        with self.lock:
            return dict(self.diag), self.actions, self.alerts

    def close(self):
        self.ex.shutdown()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.ctx)


def _num(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return int(f) if f.is_integer() and "." not in str(v) else f


SAMPLE_KEYS = ("bodies", "pending_windows", "buffered_frames", "state_frame_ids", "state_transport",
               "state_body_publishers", "state_alert_runs", "windows_classified", "windows_dropped", "messages",
               "latency_p50_ms", "latency_p99_ms", "body_lost", "decoder_fallback")
EXPECT = {  # node counter -> publisher count that it must equal
    "rejected_input_nan_joint": "nan_joint",
    "rejected_input_absurd_position": "absurd_position",
    "rejected_input_bad_id": "bad_id",
    "rejected_input_empty": "empty",
    "rejected_input_malformed": "malformed",
    "rejected_input_too_many_bodies": "too_many_bodies",
    "messages": "messages",
}
PER_MESSAGE_MAX = {  # the most of each counter one message can carry (bounds what a lost message took along)
    "rejected_input_nan_joint": 2 * IN_VIEW, "rejected_input_absurd_position": IN_VIEW, "rejected_input_bad_id": 3,
    "rejected_input_empty": 1, "rejected_input_malformed": 1, "rejected_input_too_many_bodies": IN_VIEW - MAX_BODIES,
    "messages": 1,
}


def monitor(a) -> int:
    domain = a.domain if a.domain is not None else 100 + os.getpid() % 100
    env = _env(domain)
    a.out_dir.mkdir(parents=True, exist_ok=True)
    logdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"pgfa_soak_{os.getpid()}"
    logdir.mkdir(parents=True, exist_ok=True)
    from pgfa_ros.recognizer_params import DEFAULT_CHECKPOINT

    ckpt = a.checkpoint or DEFAULT_CHECKPOINT
    alert_class = a.alert_class or _first_label(ckpt)
    node_cmd = [sys.executable, "-m", "pgfa_ros.recognizer_node", "--autostart", "--ros-args",
                "-p", f"checkpoint:={ckpt}", "-p", "layout:=kinect_v1_20", "-p", f"skeleton_topic:={TOPIC}",
                "-p", f"window_frames:={WINDOW}", "-p", f"stride_frames:={STRIDE}", "-p", f"max_bodies:={MAX_BODIES}",
                "-p", f"max_markers:={MAX_MARKERS}", "-p", "body_timeout:=0.5", "-p", "diagnostics_period:=1.0",
                "-p", f"backend:={a.backend}", "-p", "num_threads:=1",
                "-p", f"alert_classes:=['{alert_class}']", "-p", "alert_threshold:=0.05", "-p", "alert_consecutive:=2"]
    nlog = open(logdir / "recognizer.log", "w")
    node = subprocess.Popen(node_cmd, env=env, cwd=REPO, stdout=nlog, stderr=subprocess.STDOUT, start_new_session=True)
    lis = DiagListener(domain)
    samples = []
    report = logdir / "publisher.json"
    pub = None
    load0 = os.getloadavg()
    try:
        t_end = time.monotonic() + 120
        while not lis.latest()[0] and time.monotonic() < t_end and node.poll() is None:
            time.sleep(0.2)
        if node.poll() is not None or not lis.latest()[0]:
            raise SystemExit(f"recognizer did not come up:\n{(logdir / 'recognizer.log').read_text()[-3000:]}")
        pub_cmd = [sys.executable, str(Path(__file__).resolve()), "publish", "--topic", TOPIC, "--duration",
                   str(a.duration), "--seed", str(a.seed), "--report", str(report)]
        plog = open(logdir / "publisher.log", "w")
        pub = subprocess.Popen(pub_cmd, env=env, cwd=REPO, stdout=plog, stderr=subprocess.STDOUT, start_new_session=True)
        t0 = time.monotonic()
        while pub.poll() is None and node.poll() is None:
            d, actions, alerts = lis.latest()
            s = {"t": round(time.monotonic() - t0, 2), "rss_mb": round(rss_mb(node.pid), 2), "actions": actions,
                 "alerts": alerts}
            s.update({k: _num(d[k]) for k in SAMPLE_KEYS if k in d})
            samples.append(s)
            print(json.dumps(s), flush=True)
            time.sleep(a.sample)
        pub.wait(60)
        time.sleep(3.0)  # the last messages are counted and published in diagnostics
        final, actions, alerts = lis.latest()
        final_rss = rss_mb(node.pid)
        node_alive = node.poll() is None
    finally:
        if pub is not None:
            stop_process(pub)
        lis.close()
        stop_process(node)
        nlog.close()
    load1 = os.getloadavg()
    sent = json.loads(report.read_text()) if report.is_file() else {}
    result = summarise(a, samples, {k: _num(v) for k, v in final.items()}, sent, final_rss, node_alive,
                       actions, alerts, load0, load1, domain, ckpt, alert_class)
    atomic_write_text(a.out_dir / "results.json", json.dumps(result, indent=1))
    atomic_write_text(a.out_dir / "RESULTS.md", render(result))
    print(f"wrote {a.out_dir / 'RESULTS.md'}; logs in {logdir}")
    return 0 if result["checks"]["all_passed"] else 1


def _first_label(ckpt: str) -> str:
    from pgfa_models.checkpoint import load_checkpoint

    return load_checkpoint(ckpt)[1].labels[0]


def summarise(a, samples, final, sent, final_rss, node_alive, actions, alerts, load0, load1, domain, ckpt,
              alert_class) -> dict:
    t = np.array([s["t"] for s in samples], float)
    rss = np.array([s["rss_mb"] for s in samples], float)
    half = t >= t[-1] / 2 if len(t) else np.zeros(0, bool)
    slope = float(np.polyfit(t[half] / 60.0, rss[half], 1)[0]) if half.sum() >= 3 else float("nan")
    growth = float(rss[half][-1] - rss[half][0]) if half.sum() >= 2 else float("nan")
    maxima = {k: max((s.get(k, 0) for s in samples), default=0) for k in
              ("pending_windows", "buffered_frames", "state_frame_ids", "state_transport", "state_body_publishers",
               "state_alert_runs", "bodies")}
    bounds = {"pending_windows": MAX_BODIES, "buffered_frames": MAX_BODIES * WINDOW, "state_frame_ids": MAX_BODIES,
              "state_transport": MAX_BODIES, "state_body_publishers": MAX_BODIES,
              "state_alert_runs": MAX_BODIES, "bodies": MAX_BODIES}
    lost = int(sent.get("messages", 0)) - int(final.get("messages", 0))
    counted = {k: {"node": int(final.get(k, 0)), "sent": int(sent.get(v, 0))} for k, v in EXPECT.items()}
    # Exact when nothing was lost. The sensor-data QoS is best effort: a message the node never
    # received cannot be counted, so then each shortfall must be explained by the lost messages.
    for k, c in counted.items():
        c["missing"] = c["sent"] - c["node"]
        c["ok"] = c["missing"] == 0 if lost == 0 else 0 <= c["missing"] <= lost * PER_MESSAGE_MAX[k]
    checks = {
        "node_alive": node_alive,
        "memory_flat": bool(growth <= a.max_growth_mb),
        "queues_bounded": all(maxima[k] <= bounds[k] for k in bounds),
        "bad_inputs_counted": lost >= 0 and all(c["ok"] for c in counted.values()),
    }
    checks["all_passed"] = all(checks.values())
    return {
        "command": "python benchmarks/soak/run.py " + shlex.join(sys.argv[1:]),
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}, "
                   f"Python {platform.python_version()}",
        "load_before": [round(x, 2) for x in load0], "load_after": [round(x, 2) for x in load1],
        "setup": {"duration_s": a.duration, "rate_hz": 30, "max_bodies": MAX_BODIES, "in_view": IN_VIEW,
                  "window_frames": WINDOW, "stride_frames": STRIDE, "max_markers": MAX_MARKERS, "body_timeout_s": 0.5,
                  "backend": a.backend, "checkpoint": os.path.relpath(ckpt, REPO) if ckpt.startswith(str(REPO)) else ckpt,
                  "alert_class": alert_class, "rmw": os.environ.get("RMW_IMPLEMENTATION", "default"),
                  "ros_domain_id": domain, "seed": a.seed},
        "publisher": sent,
        "final_diagnostics": final,
        "final_rss_mb": round(final_rss, 2),
        "rss": {"first_mb": float(rss[0]) if len(rss) else None, "max_mb": float(rss.max()) if len(rss) else None,
                "second_half_growth_mb": round(growth, 2), "second_half_slope_mb_per_min": round(slope, 3)},
        "maxima": maxima, "bounds": bounds, "counted": counted, "messages_lost": lost,
        "actions_received": actions, "alerts_received": alerts,
        "checks": checks,
        "samples": samples,
    }


def render(r) -> str:
    s, ch = r["setup"], r["checks"]
    yes = {True: "yes", False: "**NO**"}
    lines = [
        "# Soak benchmark: recognizer under body churn and bad input",
        "",
        f"- date: {r['date']}",
        f"- machine: {r['machine']}; load average before {r['load_before']}, after {r['load_after']}",
        f"- command: `source scripts/env.sh && {r['command'].strip()}`",
        f"- {s['duration_s']:g} s at {s['rate_hz']} Hz over real DDS (rmw {s['rmw']}); up to {s['in_view']} bodies in "
        f"view, max_bodies {s['max_bodies']}, window {s['window_frames']} / stride {s['stride_frames']}, body_timeout "
        f"{s['body_timeout_s']} s, backend {s['backend']}, checkpoint `{s['checkpoint']}`, alert class "
        f"`{s['alert_class']}` with a low threshold (0.05, 2 windows) so that alert runs are stored and dropped",
        f"- bodies: {r['publisher'].get('bodies_seen', '?')} distinct ids, each used once (ever-growing, like the Azure "
        f"Kinect driver); {r['final_diagnostics'].get('body_lost', 0)} lost by timeout; "
        f"{r['final_diagnostics'].get('windows_classified', 0)} windows classified, "
        f"{r['final_diagnostics'].get('windows_dropped', 0)} dropped (replaced while inference was busy); "
        f"{r['actions_received']} actions and {r['alerts_received']} alerts received here",
        "",
        "## Checks",
        "",
        "| check | result |",
        "|---|:---:|",
        f"| node alive at the end | {yes[ch['node_alive']]} |",
        f"| memory flat: RSS growth over the second half {r['rss']['second_half_growth_mb']} MB "
        f"(slope {r['rss']['second_half_slope_mb_per_min']} MB/min; first sample {r['rss']['first_mb']:.1f} MB, "
        f"max {r['rss']['max_mb']:.1f} MB) | {yes[ch['memory_flat']]} |",
        f"| queues and per-body state bounded (maxima below) | {yes[ch['queues_bounded']]} |",
        f"| every bad input that reached the node counted (counter = sent"
        + (f"; {r['messages_lost']} of {r['publisher'].get('messages', 0)} messages lost on the best-effort "
           "sensor QoS, each shortfall within what those messages carried" if r['messages_lost'] else
           "; no message lost") + f") | {yes[ch['bad_inputs_counted']]} |",
        "",
        "## Maxima over the run (bound)",
        "",
        "| value | max | bound |",
        "|---|---:|---:|",
    ]
    for k, v in r["maxima"].items():
        lines.append(f"| `{k}` | {v} | {r['bounds'][k]} |")
    lines += ["", "## Bad inputs: sent by the publisher vs counted by the node", "",
              "| node counter | counted | sent | not received |", "|---|---:|---:|---:|"]
    for k, c in r["counted"].items():
        lines.append(f"| `{k}` | {c['node']} | {c['sent']} | {c['missing']} |")
    other = {k: v for k, v in r["final_diagnostics"].items() if k.startswith("rejected_") and k not in r["counted"]}
    if other:
        lines += ["", "Other counters (depend on timing, no exact expectation): "
                  + ", ".join(f"`{k}` {v}" for k, v in sorted(other.items()))]
    lines += ["", "## RSS and state over time (every ~60 s)", "",
              "| t s | RSS MB | bodies | pending | buffered frames | frame_ids | transport | body pubs | alert runs "
              "| classified | dropped |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    last = -1e9
    for smp in r["samples"]:
        if smp["t"] - last >= 59 or smp is r["samples"][-1]:
            last = smp["t"]
            lines.append("| " + " | ".join(str(smp.get(k, "")) for k in (
                "t", "rss_mb", "bodies", "pending_windows", "buffered_frames", "state_frame_ids", "state_transport",
                "state_body_publishers", "state_alert_runs", "windows_classified", "windows_dropped")) + " |")
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    p = sub.add_parser("publish", help="(internal) the publisher process")
    p.add_argument("--topic", default=TOPIC)
    p.add_argument("--duration", type=float, default=600.0)
    p.add_argument("--rate", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report", type=Path, required=True)
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of publishing (default 600)")
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--backend", default="eager", help="recognizer backend parameter")
    ap.add_argument("--checkpoint", default=None, help="default: the packaged default checkpoint (DEFAULT_CHECKPOINT)")
    ap.add_argument("--alert-class", default=None, help="default: the checkpoint's first label")
    ap.add_argument("--max-growth-mb", type=float, default=5.0,
                    help="largest RSS growth over the second half that counts as flat")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--domain", type=int, default=None, help="ROS_DOMAIN_ID (default: from the pid)")
    ap.add_argument("--out-dir", type=Path, default=HERE)
    a = ap.parse_args(argv)
    if a.cmd == "publish":
        return publish(a)
    return monitor(a)


if __name__ == "__main__":
    sys.exit(main())
