"""rclpy side of the bag tools: ``record`` (topics -> bag) and ``play`` (bag -> topics).

Messages are moved as serialised CDR bytes both ways (``raw=True`` subscriptions, raw
``publish``), so nothing is decoded and re-encoded: a recorded bag holds exactly what was on
the wire, and play publishes exactly what the bag holds.
"""
from __future__ import annotations

import importlib
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .convention import NS_PER_S, BagError
from .io import BagWriter, list_topics, open_reader, read_messages


def message_class(msgtype: str):
    """``pkg/msg/Type`` (or ``pkg/Type``) -> the rclpy message class; a clear error if missing."""
    parts = msgtype.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3:
        raise BagError(f"bad message type {msgtype!r} (expected pkg/msg/Type)")
    try:
        mod = importlib.import_module(f"{parts[0]}.{parts[1]}")
        return getattr(mod, parts[2])
    except (ImportError, AttributeError):
        raise BagError(f"message type {msgtype} is not installed in this Python environment") from None


def _normalise_type(msgtype: str) -> str:
    parts = msgtype.split("/")
    return f"{parts[0]}/msg/{parts[1]}" if len(parts) == 2 else msgtype


def _init_rclpy(args=None):
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    if not rclpy.ok():
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    return rclpy


class _StopFlag:
    """SIGINT/SIGTERM -> a flag the loop polls, so the bag is always flushed and closed."""

    def __init__(self):
        self.event = threading.Event()
        self.reason = ""
        self._old = {}

    def install(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.stop(signal.Signals(signum).name)

    def stop(self, reason: str):
        if not self.event.is_set():
            self.reason = reason
            self.event.set()

    def restore(self):
        for sig, old in self._old.items():
            signal.signal(sig, old)


# ----------------------------------------------------------------------------- record
@dataclass
class RecordResult:
    bag: Path
    counts: dict[str, int]
    reason: str
    duration_s: float


def record(output: str | os.PathLike, topics: Sequence[str], *, types: dict[str, str] | None = None,
           storage: str = "mcap", duration: float | None = None, max_messages: int | None = None,
           count_topic: str | None = None, discovery_timeout: float = 5.0, overwrite: bool = False,
           node_name: str = "pgfa_bag_recorder", stop: _StopFlag | None = None,
           on_ready=None, log=print) -> RecordResult:
    """Subscribe to ``topics`` and write every message to a bag until Ctrl-C / SIGTERM,
    ``duration`` seconds, or ``max_messages`` (on ``count_topic``, or on all topics together).

    Types come from ``types`` (topic -> ``pkg/msg/Type``) or from the ROS graph (waiting up to
    ``discovery_timeout`` s for publishers). The bag is closed (flushed, ``metadata.yaml``
    written) on every exit path; messages are written as they arrive, with receive time stamps.
    """
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    if not topics:
        raise BagError("record: give at least one topic")
    # checked before DDS starts: --duration nan never stopped, 0 or less wrote an empty bag at once,
    # --count 0 stopped at the first message and an unrecorded --count-topic was never counted
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise BagError(f"--duration must be a finite number > 0, got {duration}")
    if max_messages is not None and max_messages < 1:
        raise BagError(f"--count must be >= 1, got {max_messages}")
    if count_topic is not None and count_topic not in topics:
        raise BagError(f"--count-topic {count_topic} is not a recorded topic ({', '.join(topics)})")
    if not (math.isfinite(discovery_timeout) and discovery_timeout >= 0):
        raise BagError(f"--discovery-timeout must be a finite number >= 0, got {discovery_timeout}")
    types = {k: _normalise_type(v) for k, v in (types or {}).items()}
    rclpy = _init_rclpy()
    node = rclpy.create_node(node_name)
    stop = stop or _StopFlag().install()
    writer = None
    t_start = time.monotonic()
    try:
        # ------------------------------------------------ resolve types via the graph
        deadline = time.monotonic() + discovery_timeout
        resolved: dict[str, str] = {}
        while True:
            graph = dict(node.get_topic_names_and_types())
            for t in topics:
                if t in types:
                    resolved[t] = types[t]
                elif t in graph and graph[t]:
                    resolved[t] = graph[t][0]
            if len(resolved) == len(topics) or time.monotonic() > deadline or stop.event.is_set():
                break
            time.sleep(0.05)
        missing = [t for t in topics if t not in resolved]
        if missing:
            raise BagError(f"record: cannot resolve the type of {missing} (no publisher seen in "
                           f"{discovery_timeout:g}s); pass --type TOPIC:pkg/msg/Type")
        classes = {t: message_class(resolved[t]) for t in topics}
        writer = BagWriter(output, storage, overwrite=overwrite, atomic=False)
        for t in topics:
            writer.add_topic(t, resolved[t])
        counts = {t: 0 for t in topics}
        total = [0]

        def qos_for(topic: str) -> QoSProfile:
            pubs = node.get_publishers_info_by_topic(topic)
            best_effort = any(p.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for p in pubs)
            latched = bool(pubs) and all(p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in pubs)
            return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000,
                              reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)

        def make_cb(topic: str):
            def cb(data: bytes) -> None:
                if stop.event.is_set():
                    return
                writer.write_raw(topic, time.time_ns(), data)
                counts[topic] += 1
                total[0] += 1
                if max_messages is not None:
                    n = counts[count_topic] if count_topic else total[0]
                    if n >= max_messages:
                        stop.stop("count")
            return cb

        subs = [node.create_subscription(classes[t], t, make_cb(t), qos_for(t), raw=True) for t in topics]
        log(f"pgfa-bag record: recording {', '.join(f'{t} [{resolved[t]}]' for t in topics)} -> {output}")
        if on_ready:
            on_ready()
        t_start = time.monotonic()
        while not stop.event.is_set():
            if duration is not None and time.monotonic() - t_start >= duration:
                stop.stop("duration")
                break
            rclpy.spin_once(node, timeout_sec=0.05)
        del subs
        reason = stop.reason
    finally:
        elapsed = time.monotonic() - t_start
        node.destroy_node()
        if writer is not None:
            writer.close()
        stop.restore()
    return RecordResult(Path(output), counts, reason, elapsed)


# ----------------------------------------------------------------------------- play
@dataclass
class PlayResult:
    published: dict[str, int] = field(default_factory=dict)
    loops: int = 0
    reason: str = "end"


def _qos_from_bag(conn):
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    latched = False
    best_effort = False
    for q in (getattr(getattr(conn, "ext", None), "offered_qos_profiles", None) or []):
        latched = latched or "TRANSIENT" in str(getattr(q, "durability", "")).upper()
        best_effort = best_effort or "BEST" in str(getattr(q, "reliability", "")).upper()
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1 if latched else 100,
                      reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


def play(bag: str | os.PathLike, *, rate: float = 1.0, loop: bool = False, topics: Sequence[str] | None = None,
         remap: dict[str, str] | None = None, wait_subscribers: float = 0.0, min_subscribers: int = 1,
         start_delay: float = 0.0,
         max_loops: int | None = None, node_name: str = "pgfa_bag_player", stop: _StopFlag | None = None,
         log=print) -> PlayResult:
    """Publish a bag's messages onto their topics, keeping the recorded spacing divided by
    ``rate``; ``loop`` repeats until Ctrl-C (or ``max_loops``). ``wait_subscribers`` waits up
    to that many seconds for every topic to have at least ``min_subscribers`` subscribers.

    Streaming: the chosen topics are read in time order one message at a time and each is
    published and dropped, so memory stays at the storage's read buffer (one MCAP chunk) for a bag
    of any size, images included. Each pass re-reads the bag; a bag found truncated or corrupt
    stops play with a one-line :class:`BagError` (what came before it was published)."""
    if not rate > 0:
        raise BagError(f"--rate must be > 0, got {rate}")
    for flag, v in (("--wait-for-subscribers", wait_subscribers), ("--delay", start_delay)):
        if not math.isfinite(v):  # nan was silently taken as 0
            raise BagError(f"{flag} must be a finite number, got {v}")
    remap = remap or {}
    reader = open_reader(bag)
    try:
        infos = {t.name: t for t in list_topics(reader)}
        chosen = list(topics) if topics else sorted(infos)
        unknown = [t for t in chosen if t not in infos]
        if unknown:
            raise BagError(f"{bag}: no topic {unknown} in the bag; it has: {', '.join(sorted(infos))}")
        if not sum(infos[t].count for t in chosen):
            raise BagError(f"{bag}: no messages on {chosen}")
        conns = {c.topic: c for c in reader.connections if c.topic in chosen}
        msgtypes = {t: message_class(conns[t].msgtype) for t in chosen}
    finally:
        reader.close()
    rclpy = _init_rclpy()
    node = rclpy.create_node(node_name)
    stop = stop or _StopFlag().install()
    result = PlayResult({remap.get(t, t): 0 for t in chosen})
    try:
        pubs = {t: node.create_publisher(msgtypes[t], remap.get(t, t), _qos_from_bag(conns[t])) for t in chosen}
        if wait_subscribers > 0:
            deadline = time.monotonic() + wait_subscribers
            while time.monotonic() < deadline and not stop.event.is_set():
                if all(p.get_subscription_count() >= max(1, min_subscribers) for p in pubs.values()):
                    break
                time.sleep(0.02)
        if start_delay > 0:
            stop.event.wait(start_delay)
        while not stop.event.is_set():
            if not _play_pass(bag, chosen, pubs, remap, rate, stop, result):
                break
            result.loops += 1
            if not loop or (max_loops is not None and result.loops >= max_loops):
                break
        result.reason = stop.reason or "end"
        # let reliable publishers hand the last messages to DDS before the node goes away
        end = time.monotonic() + 0.5
        while time.monotonic() < end and not stop.event.is_set():
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        node.destroy_node()
        stop.restore()
    return result


def _play_pass(bag, chosen, pubs, remap, rate: float, stop: _StopFlag, result: PlayResult) -> bool:
    """One pass over the bag, streamed; False when stopped before the end."""
    reader = open_reader(bag)
    try:
        wall0 = t0 = None
        for topic, ts, raw in read_messages(reader, chosen, decode=False):
            if t0 is None:
                wall0, t0 = time.monotonic(), ts
            delay = wall0 + (ts - t0) / NS_PER_S / rate - time.monotonic()
            if delay > 0 and stop.event.wait(delay):
                return False
            if stop.event.is_set():
                return False
            pubs[topic].publish(bytes(raw))
            result.published[remap.get(topic, topic)] += 1
            del raw
        return True
    finally:
        reader.close()
