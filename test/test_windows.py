"""Per-body sliding windows: geometry, stride, timeouts, bad stamps, bounds; one rule offline and live."""
import numpy as np
import pytest

from pgfa_models.windows import cut_windows
from pgfa_ros.windows import WindowConfig, WindowManager

J = 20


def frame(v=0.0):
    return np.full((J, 3), v, dtype=np.float32)


def feed(wm, body, n, t0=0.0, dt=1 / 30, now0=0.0):
    out = []
    for i in range(n):
        wm.add(body, t0 + i * dt, frame(i), now=now0 + i * dt)
        out += wm.pop_ready()
    return out


def test_frame_windows_and_stride():
    wm = WindowManager(J, WindowConfig(window_frames=30, stride_frames=10))
    wins = feed(wm, 0, 60)
    assert len(wins) == 4  # at frames 30, 40, 50, 60
    assert all(w.joints.shape == (30, J, 3) and w.stamps.shape == (30,) for w in wins)
    assert wins[0].joints[-1, 0, 0] == 29 and wins[1].joints[-1, 0, 0] == 39
    assert wins[1].start == pytest.approx(10 / 30) and wins[1].end == pytest.approx(39 / 30)
    assert np.all(np.diff(wins[-1].stamps) > 0)


def test_seconds_windows():
    wm = WindowManager(J, WindowConfig(window_seconds=1.0, stride_frames=15, max_frames=100))
    wins = feed(wm, 3, 90)
    assert wins, "no window"
    for w in wins:
        assert w.end - w.start <= 1.0 + 1e-6
        assert 29 <= len(w.stamps) <= 31
    # at 15 Hz the same seconds window holds half the frames
    wm2 = WindowManager(J, WindowConfig(window_seconds=1.0, stride_frames=5, max_frames=100))
    wins2 = feed(wm2, 0, 45, dt=1 / 15)
    assert wins2 and all(14 <= len(w.stamps) <= 16 for w in wins2)


def test_stagger_spreads_coinciding_bodies():
    wm = WindowManager(J, WindowConfig(window_frames=10, stride_frames=8))
    ticks = {}
    for i in range(40):
        for b in range(3):
            wm.add(b, i / 30, frame(b), now=i / 30)
        for w in wm.pop_ready():
            ticks.setdefault(w.body_id, []).append(i)
    assert ticks[0][0] == 9 and ticks[1][0] == 11 and ticks[2][0] == 13
    assert all(np.all(np.diff(t) == 8) for t in ticks.values())
    assert wm.counts["staggered"] == 2
    wm = WindowManager(J, WindowConfig(window_frames=10, stride_frames=4))  # step 1: phases wrap
    first = {}
    for i in range(20):
        for b in range(6):
            wm.add(b, i / 30, frame(b), now=i / 30)
        for w in wm.pop_ready():
            first.setdefault(w.body_id, i)
    assert [first[b] for b in range(6)] == [9, 10, 11, 12, 9, 10]
    wm = WindowManager(J, WindowConfig(window_frames=10, stride_frames=8, stagger=False))
    feed_both = []
    for i in range(10):
        for b in range(3):
            wm.add(b, i / 30, frame(b), now=i / 30)
        feed_both += wm.pop_ready()
    assert len(feed_both) == 3 and {w.end for w in feed_both} == {9 / 30}


def test_two_bodies_independent():
    wm = WindowManager(J, WindowConfig(window_frames=10, stride_frames=5, stagger=False))
    ready = []
    for i in range(20):
        for b in (1, 2):
            wm.add(b, i / 30, frame(b), now=i / 30)
        ready += wm.pop_ready()
    assert {w.body_id for w in ready} == {1, 2}
    assert sum(w.body_id == 1 for w in ready) == 3


def test_backwards_duplicate_invalid_stamps_counted():
    wm = WindowManager(J, WindowConfig(window_frames=5, stride_frames=1))
    assert wm.add(0, 1.0, frame(), 0.0) is None
    assert wm.add(0, 0.5, frame(), 0.0) == "stamp_backwards"
    assert wm.add(0, 1.0, frame(), 0.0) == "stamp_duplicate"
    assert wm.add(0, float("nan"), frame(), 0.0) == "stamp_invalid"
    assert wm.add(0, 1.1, np.zeros((7, 3)), 0.0) == "bad_shape"
    assert wm.counts["stamp_backwards"] == 1 and wm.counts["stamp_duplicate"] == 1
    assert wm.buffered_frames() == 1


def test_body_timeout_and_vanish_mid_window():
    wm = WindowManager(J, WindowConfig(window_frames=30, stride_frames=10, body_timeout=0.5))
    feed(wm, 0, 12)  # vanishes mid-window
    feed(wm, 1, 40)
    assert set(wm.bodies) == {0, 1}
    gone = wm.expire(now=40 / 30 + 0.1)
    assert gone == [0] and wm.bodies == [1]
    assert wm.counts["body_lost"] == 1 and wm.counts["partial_window_discarded"] == 1


def test_expire_on_stream_stamps_ignores_the_receive_clock():
    # a recorded stream played slowly: 2 s of receive time between frames, 1/30 s of stamps
    wm = WindowManager(J, WindowConfig(window_frames=30, stride_frames=10, body_timeout=0.5))
    for i in range(12):
        wm.add(0, i / 30, frame(i), now=2.0 * i)
        assert wm.expire_stamps(i / 30) == []
    assert wm.expire(now=2.0 * 12) == [0]  # the receive clock would have lost it
    feed(wm, 1, 5)
    assert wm.expire_stamps(4 / 30 + 0.4) == [] and wm.expire_stamps(4 / 30 + 0.6) == [1]
    assert wm.counts["body_lost"] == 2


def test_gap_resets_window():
    wm = WindowManager(J, WindowConfig(window_frames=10, stride_frames=2, body_timeout=0.5))
    feed(wm, 0, 8)
    wm.add(0, 5.0, frame(), now=5.0)
    assert wm.counts["gap_reset"] == 1 and wm.buffered_frames() == 1


def test_bounded_bodies_and_pending_drop():
    wm = WindowManager(J, WindowConfig(window_frames=4, stride_frames=1, max_bodies=3))
    for i in range(1000):
        for b in range(10):
            wm.add(b, i / 30, frame(), now=i / 30)
    assert len(wm.bodies) == 3
    assert wm.counts["too_many_bodies"] == 7000
    assert wm.buffered_frames() <= 3 * 4
    assert wm.num_pending <= 3
    assert wm.counts["window_dropped"] > 0  # nobody collected them


def test_time_window_buffer_bounded_by_max_frames():
    wm = WindowManager(J, WindowConfig(window_seconds=10.0, stride_frames=5, max_frames=50))
    for i in range(500):
        wm.add(0, i / 1000, frame(), now=0.0)
    assert wm.buffered_frames() == 50


def test_reconfigure_clears_on_geometry_change():
    wm = WindowManager(J, WindowConfig(window_frames=10, stride_frames=5))
    feed(wm, 0, 8)
    wm.reconfigure(stride_frames=3)
    assert wm.buffered_frames() == 8
    wm.reconfigure(window_frames=20)
    assert wm.buffered_frames() == 0 and wm.config.window_frames == 20


def test_invalid_config():
    with pytest.raises(ValueError):
        WindowConfig(stride_frames=0)
    with pytest.raises(ValueError):
        WindowConfig(window_frames=500, max_frames=300)


def test_stride_longer_than_window_skips_frames():
    """Regression: window 45 / stride 60 used to emit every 45 frames (the first-window test
    mistook a refilled buffer for a new body)."""
    wm = WindowManager(J, WindowConfig(window_frames=45, stride_frames=60))
    wins = feed(wm, 0, 300)
    ends = [int(w.joints[-1, 0, 0]) for w in wins]
    assert ends == [44, 104, 164, 224, 284]
    assert all(w.joints.shape[0] == 45 for w in wins)
    # seconds windows: 0.5 s windows every 30 frames at 30 Hz
    wm = WindowManager(J, WindowConfig(window_seconds=0.5, stride_frames=30, max_frames=100))
    ends = [int(w.joints[-1, 0, 0]) for w in feed(wm, 0, 200)]
    assert np.all(np.diff(ends) == 30)
    # a stagger postponement is kept when stride > window too
    wm = WindowManager(J, WindowConfig(window_frames=10, stride_frames=40))
    ticks = {}
    for i in range(120):
        for b in range(2):
            wm.add(b, i / 30, frame(b), now=i / 30)
        for w in wm.pop_ready():
            ticks.setdefault(w.body_id, []).append(i)
    assert ticks[0] == [9, 49, 89] and ticks[1] == [19, 59, 99]


def test_gap_restarts_first_window():
    """After a gap the body's first window is ready as soon as the buffer refills."""
    wm = WindowManager(J, WindowConfig(window_frames=10, stride_frames=50, body_timeout=0.5))
    feed(wm, 0, 12)
    wins = feed(wm, 0, 10, t0=5.0, now0=5.0)
    assert wm.counts["gap_reset"] == 1 and len(wins) == 1 and wins[0].start == 5.0


def _live(frames, cfg, period=0.1):
    """What the recognizer node does: add each message's bodies, collect, expire on a timer."""
    wm = WindowManager(J, cfg)
    out, next_expire = [], None
    for stamp, bodies in frames:
        if next_expire is None or stamp >= next_expire:
            wm.expire(stamp)
            next_expire = stamp + period
        for b, j in bodies.items():
            wm.add(b, stamp, j, now=stamp)
        out += wm.pop_ready()
    return out


def _stream(seed=0):
    """Two bodies, one leaving for 2 s, one with a 0.5 s dropout, a third appearing late."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(400):
        t = 100.0 + i / 30
        bodies = {}
        if not 150 <= i < 210:
            bodies[1] = rng.normal(size=(J, 3)).astype(np.float32)
        if not 80 <= i < 95:
            bodies[7] = rng.normal(size=(J, 3)).astype(np.float32)
        if i >= 300:
            bodies[9] = rng.normal(size=(J, 3)).astype(np.float32)
        frames.append((t, bodies))
    return frames


@pytest.mark.parametrize("cfg", [WindowConfig(), WindowConfig(window_frames=30, stride_frames=45),
                                 WindowConfig(window_seconds=1.0, stride_frames=5)])
def test_cut_windows_equals_live_manager(cfg):
    frames = _stream()
    live = _live(frames, cfg)
    offline = list(cut_windows(iter(frames), WindowManager(J, cfg)))
    assert len(live) == len(offline) > 10
    for a, b in zip(live, offline):
        assert a.body_id == b.body_id and np.array_equal(a.stamps, b.stamps) and np.array_equal(a.joints, b.joints)
    # the gap rule: no window spans body 1's 2 s absence
    for w in offline:
        assert np.all(np.diff(w.stamps) < cfg.body_timeout)
