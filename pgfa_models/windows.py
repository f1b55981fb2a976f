"""Per-body sliding windows over a skeleton stream: THE windowing rule of the live node and the bag tools.

Pure Python + NumPy (no rclpy), so the live recogniser (``pgfa_ros.recognizer_node``, through
``pgfa_ros.windows``) and ``pgfa-bag eval`` on bags without labels (:func:`cut_windows`) cut the
same windows from the same frames: same defaults (45 frames every 10), same gap rule (a body
that jumps forward by more than ``body_timeout`` seconds, or is not seen for that long, starts a
new window), same stagger of bodies that appear together.

A :class:`WindowManager` keeps one bounded buffer per tracked body. Frames are added with their
source stamp (seconds) and a receive time (any monotonic clock, used only for the lost-body
timeout). A window becomes *ready* when the buffer holds a full window (``window_frames`` frames,
or at least ``window_seconds`` of stamps) and ``stride_frames`` frames have arrived since the
body's previous ready window (the first window of a body, or after a gap, is ready as soon as the
buffer is full; with ``stride_frames > window_frames`` frames between windows are skipped). Ready windows wait in a pending slot per body (at most one: a newer
window replaces an older one that nobody collected, and that counts as a dropped window), so
memory is bounded by ``max_bodies * max_frames`` frames whatever the input does.

Everything rejected is counted in :attr:`WindowManager.counts` by reason:

``stamp_backwards``   a stamp older than the body's last one (out of order / clock reset)
``stamp_duplicate``   the same stamp again
``stamp_invalid``     a non-finite stamp
``bad_shape``         joints not shaped (J, 3) for the configured joint count
``too_many_bodies``   a new body while ``max_bodies`` are already tracked
``gap_reset``         a forward jump in stamps longer than ``body_timeout``: the window restarts
``body_lost``         a body not seen for ``body_timeout`` seconds (receive time, or stream time
                      with :meth:`WindowManager.expire_stamps`) was removed
``partial_window_discarded``  a lost body had a window in progress (frames thrown away)
``window_dropped``    a ready window replaced before it was collected (inference too slow)
"""
from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from typing import Iterable, Iterator, Mapping

import numpy as np

__all__ = ["WindowConfig", "ReadyWindow", "WindowManager", "cut_windows"]


@dataclass(frozen=True)
class WindowConfig:
    """Window geometry.

    ``window_seconds > 0`` selects time-based windows (the buffer keeps the frames of the last
    ``window_seconds``; ``min_frames`` must be present); otherwise a window is the last
    ``window_frames`` frames. ``max_frames`` bounds every buffer (time-based windows at high
    rates are truncated to the newest ``max_frames`` frames).

    ``stagger``: when a body's first window becomes ready in the same instant as other bodies'
    windows (e.g. bodies that appeared together), it is postponed by a few frames (``k *
    max(1, stride // 4)`` modulo ``stride`` for the k-th coinciding body), so the bodies'
    windows fall on different frames and each inference call is small. Steady-state latency
    then stays near the one-body latency; windows that still coincide are batched as usual.
    """

    window_frames: int = 45
    window_seconds: float = 0.0
    stride_frames: int = 10
    body_timeout: float = 1.0
    max_bodies: int = 16
    max_frames: int = 300
    min_frames: int = 8
    stagger: bool = True

    def __post_init__(self) -> None:
        if self.window_seconds < 0 or not math.isfinite(self.window_seconds):
            raise ValueError(f"window_seconds must be >= 0, got {self.window_seconds}")
        if self.window_seconds == 0 and self.window_frames < 2:
            raise ValueError(f"window_frames must be >= 2, got {self.window_frames}")
        if self.stride_frames < 1:
            raise ValueError(f"stride_frames must be >= 1, got {self.stride_frames}")
        if not self.body_timeout > 0:
            raise ValueError(f"body_timeout must be > 0, got {self.body_timeout}")
        if self.max_bodies < 1:
            raise ValueError(f"max_bodies must be >= 1, got {self.max_bodies}")
        if self.min_frames < 2:
            raise ValueError(f"min_frames must be >= 2, got {self.min_frames}")
        if self.window_seconds == 0 and self.window_frames > self.max_frames:
            raise ValueError(f"window_frames ({self.window_frames}) exceeds max_frames ({self.max_frames})")

    @property
    def time_based(self) -> bool:
        return self.window_seconds > 0

    @property
    def capacity(self) -> int:
        return self.max_frames if self.time_based else self.window_frames


@dataclass
class ReadyWindow:
    """A window ready for classification: joints (T, J, 3) float32 and their stamps (T,)."""

    body_id: int
    joints: np.ndarray
    stamps: np.ndarray
    ready_at: float = 0.0  # the ``now`` (receive clock) of the frame that completed the window

    @property
    def start(self) -> float:
        return float(self.stamps[0])

    @property
    def end(self) -> float:
        return float(self.stamps[-1])


@dataclass
class _Body:
    frames: deque
    stamps: deque
    last_stamp: float
    last_seen: float
    since_emit: int = 0       # frames added since the last ready window (or since the buffer started)
    started: bool = False     # the first window of this buffer was emitted or scheduled (stagger)


@dataclass
class WindowManager:
    """Bounded per-body sliding windows. Not thread-safe: guard it with one lock."""

    num_joints: int
    config: WindowConfig = field(default_factory=WindowConfig)

    def __post_init__(self) -> None:
        self._bodies: dict[int, _Body] = {}
        self._pending: dict[int, ReadyWindow] = {}
        self.counts: Counter = Counter()
        self.frames_accepted = 0
        self.windows_ready = 0
        self._stagger_at, self._stagger_n = None, 0  # bodies postponed at the current instant

    # ------------------------------------------------------------------ configuration
    def reconfigure(self, config: WindowConfig | None = None, **changes) -> None:
        """Change the geometry; buffers are cleared when window length or mode changes."""
        new = replace(config or self.config, **changes)
        old = self.config
        self.config = new
        if (new.window_frames, new.window_seconds, new.max_frames) != (
            old.window_frames, old.window_seconds, old.max_frames
        ):
            self.clear()
        else:
            while len(self._bodies) > new.max_bodies:
                self._drop_body(next(iter(self._bodies)), "too_many_bodies")

    def clear(self) -> None:
        self._bodies.clear()
        self._pending.clear()

    # ------------------------------------------------------------------ state
    @property
    def bodies(self) -> list[int]:
        return list(self._bodies)

    @property
    def num_pending(self) -> int:
        return len(self._pending)

    def buffered_frames(self) -> int:
        return sum(len(b.frames) for b in self._bodies.values())

    def last_frame(self, body_id: int) -> np.ndarray | None:
        b = self._bodies.get(body_id)
        return None if b is None or not b.frames else b.frames[-1]

    # ------------------------------------------------------------------ input
    def add(self, body_id: int, stamp: float, joints: np.ndarray, now: float) -> str | None:
        """Add one frame of one body. Returns None when accepted, else the (counted) reason."""
        cfg = self.config
        stamp = float(stamp)
        if not math.isfinite(stamp):
            return self._reject("stamp_invalid")
        joints = np.asarray(joints, dtype=np.float32)
        if joints.shape != (self.num_joints, 3):
            return self._reject("bad_shape")
        body = self._bodies.get(body_id)
        if body is None:
            if len(self._bodies) >= cfg.max_bodies:
                return self._reject("too_many_bodies")
            cap = cfg.capacity
            body = _Body(deque(maxlen=cap), deque(maxlen=cap), -math.inf, now)
            self._bodies[body_id] = body
        else:
            if stamp < body.last_stamp:
                return self._reject("stamp_backwards")
            if stamp == body.last_stamp:
                return self._reject("stamp_duplicate")
            if stamp - body.last_stamp > cfg.body_timeout:
                self.counts["gap_reset"] += 1
                body.frames.clear()
                body.stamps.clear()
                body.since_emit = 0
                body.started = False
        body.frames.append(joints)
        body.stamps.append(stamp)
        body.last_stamp = stamp
        body.last_seen = now
        body.since_emit += 1
        self.frames_accepted += 1
        if cfg.time_based:
            while body.stamps and stamp - body.stamps[0] > cfg.window_seconds + 1e-9:
                body.stamps.popleft()
                body.frames.popleft()
        if self._full(body):
            if not body.started:
                body.started = True
                if self._stagger_at != now:
                    self._stagger_at, self._stagger_n = now, 0
                others = len(self._pending) - (body_id in self._pending) + self._stagger_n
                shift = (others * max(1, cfg.stride_frames // 4)) % cfg.stride_frames
                if cfg.stagger and shift > 0:
                    body.since_emit = cfg.stride_frames - shift  # first window `shift` frames later
                    self._stagger_n += 1
                    self.counts["staggered"] += 1
                else:
                    self._emit(body_id, body, now)
            elif body.since_emit >= cfg.stride_frames:
                self._emit(body_id, body, now)
        return None

    def _full(self, body: _Body) -> bool:
        cfg = self.config
        n = len(body.frames)
        if not cfg.time_based:
            return n >= cfg.window_frames
        if n < cfg.min_frames:
            return False
        span = body.stamps[-1] - body.stamps[0]
        # a window of w seconds at rate r has span w - 1/r; accept one mean frame period short
        period = span / (n - 1)
        return span + period >= cfg.window_seconds - 1e-9

    def _emit(self, body_id: int, body: _Body, now: float) -> None:
        body.since_emit = 0
        win = ReadyWindow(body_id, np.stack(body.frames), np.fromiter(body.stamps, np.float64, len(body.stamps)), now)
        if body_id in self._pending:
            self.counts["window_dropped"] += 1
        self._pending[body_id] = win
        self.windows_ready += 1

    def _reject(self, reason: str) -> str:
        self.counts[reason] += 1
        return reason

    # ------------------------------------------------------------------ output
    def pop_ready(self) -> list[ReadyWindow]:
        """All pending ready windows (at most one per body), oldest body first."""
        out = list(self._pending.values())
        self._pending.clear()
        return out

    def expire(self, now: float) -> list[int]:
        """Remove bodies not seen for ``body_timeout`` (receive clock). Returns their ids."""
        return self._expire(lambda b: now - b.last_seen)

    def expire_stamps(self, stamp: float) -> list[int]:
        """Remove bodies whose last stamp is more than ``body_timeout`` older than ``stamp`` (the
        stream's own clock: a recorded stream played slower than real time, e.g. in lockstep with a
        slow pose estimator, loses no body to the receive clock). Returns their ids."""
        return self._expire(lambda b: stamp - b.last_stamp)

    def _expire(self, age) -> list[int]:
        gone = [bid for bid, b in self._bodies.items() if age(b) > self.config.body_timeout]
        for bid in gone:
            self._drop_body(bid, "body_lost")
        return gone

    def _drop_body(self, body_id: int, reason: str) -> None:
        body = self._bodies.pop(body_id)
        self.counts[reason] += 1
        if body.frames and body.since_emit > 0:
            self.counts["partial_window_discarded"] += 1
        self._pending.pop(body_id, None)


def cut_windows(frames: Iterable[tuple[float, Mapping[int, np.ndarray]]],
                manager: WindowManager) -> Iterator[ReadyWindow]:
    """The windows ``manager`` cuts from a recorded stream, exactly as the live node cuts them.

    ``frames`` are ``(stamp_s, {body_id: (J, 3) joints})`` in recording order, one per skeleton
    message (a message without bodies still advances the clock). The stream's own stamps are the
    receive clock, so the gap rule works in recording time: before each frame, bodies not seen for
    ``body_timeout`` are expired (the live node does this on a timer), and a body that comes back
    starts a new window. Ready windows are collected after every frame, so none is dropped.
    Lazy: memory is the manager's bounded buffers, whatever the length of ``frames``; rejected
    frames are counted in ``manager.counts``.
    """
    for stamp, bodies in frames:
        stamp = float(stamp)
        if math.isfinite(stamp):
            manager.expire_stamps(stamp)
        for body_id, joints in bodies.items():
            manager.add(body_id, stamp, joints, now=stamp)
        if manager.num_pending:
            yield from manager.pop_ready()
