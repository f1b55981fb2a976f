"""Bag -> clips: the live node's windows on unlabelled bags, and bounded memory on long bags."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bag_helpers import write_long_bag
from pgfa_ros.bag.clips import read_bag_clips
from pgfa_ros.bag.convention import MARKER_ARRAY, NS_PER_S, SKELETON_TOPIC, BagError
from pgfa_ros.bag.io import BagWriter, marker_array, open_reader, read_messages
from pgfa_ros.windows import WindowConfig, WindowManager

REPO = Path(__file__).resolve().parents[1]
J = 20  # kinect_v1_20
T0 = 1_700_000_000 * NS_PER_S


def _robot_bag(path: Path) -> Path:
    """A bag as recorded on a robot: skeletons only (no meta, no labels), three bodies; body 1
    leaves for 2 s, body 7 drops out for 0.5 s (shorter than the node's body_timeout), body 9
    appears late; some frames have nobody."""
    rng = np.random.default_rng(1)
    with BagWriter(path, "mcap") as w:
        w.add_topic(SKELETON_TOPIC, MARKER_ARRAY)
        for i in range(420):
            st = T0 + int(round(i * NS_PER_S / 30))
            bodies = {}
            if not 150 <= i < 210:
                bodies[1] = rng.normal(size=(J, 3))
            if not 80 <= i < 95:
                bodies[7] = rng.normal(size=(J, 3)) + 2.0
            if i >= 300:
                bodies[9] = rng.normal(size=(J, 3)) - 2.0
            if 400 <= i < 405:
                bodies = {}
            w.write(SKELETON_TOPIC, st, marker_array(bodies, st, "depth_camera_link"))
    return path


def _live_windows(bag: Path, cfg: WindowConfig):
    """Exactly what the recognizer node does with the same messages: raw bytes -> bodies
    (its parser and stamps) -> WindowManager.add per body, ready windows collected after each
    message, the 0.1 s expiry timer on the (here: simulated, real-time) receive clock."""
    from pgfa_ros.skeleton_msgs import marker_array_bytes_to_bodies

    wm = WindowManager(J, cfg)
    out, next_timer = [], None
    r = open_reader(bag)
    try:
        for _, t, raw in read_messages(r, [SKELETON_TOPIC], decode=False):
            now = t / NS_PER_S
            if next_timer is None or now >= next_timer:
                wm.expire(now)
                next_timer = now + 0.1
            parsed = marker_array_bytes_to_bodies(bytes(raw), J, max_bodies=cfg.max_bodies)
            for body_id, joints in parsed.bodies.items():
                wm.add(body_id, parsed.stamps[body_id], joints, now)
            out += wm.pop_ready()
    finally:
        r.close()
    return out


@pytest.mark.parametrize("geometry", [{}, {"window": 30, "stride": 45}, {"window_seconds": 1.0, "stride": 5}])
def test_bag_windows_equal_live_windows(tmp_path, geometry):
    bag = _robot_bag(tmp_path / "robot")
    bc = read_bag_clips(bag, layout="kinect_v1_20", fps=30.0, **geometry)
    assert not bc.labelled
    cfg = WindowConfig(**{k: v for k, v in {"window_frames": geometry.get("window"),
                                              "stride_frames": geometry.get("stride"),
                                              "window_seconds": geometry.get("window_seconds")}.items()
                          if v is not None})
    live = _live_windows(bag, cfg)
    assert len(bc.clips) == len(live) > 10
    for clip, w in zip(bc.clips, live):
        assert clip.body_ids == [w.body_id]
        assert np.array_equal(clip.bodies[0], w.joints)
        assert clip.start_ns == int(round(w.start * NS_PER_S)) and clip.end_ns == int(round(w.end * NS_PER_S))
        assert np.array_equal(clip.times, np.round((w.stamps - w.stamps[0]) * 30) / 30)
    if not geometry:  # the node's defaults: 45 frames every 10
        assert {c.bodies[0].shape[0] for c in bc.clips} == {45}
        ends = [c.end_ns for c in bc.clips if c.body_ids == [9]]  # continuous from frame 300
        assert np.allclose(np.diff(ends)[:5], 10 * NS_PER_S / 30, atol=1000)
    # the gap rule: no window stitches body 1's frames across its 2 s absence
    for c in bc.clips:
        assert np.diff(c.times).max() < 1.0
    assert bc.window_counts.get("body_lost", 0) + bc.window_counts.get("gap_reset", 0) >= 1


def test_window_geometry_errors_are_bag_errors(tmp_path):
    bag = _robot_bag(tmp_path / "robot")
    with pytest.raises(BagError, match="stride_frames must be >= 1"):
        read_bag_clips(bag, layout="kinect_v1_20", window=45, stride=0)
    with pytest.raises(BagError, match="no body is tracked for 20 s"):
        read_bag_clips(bag, layout="kinect_v1_20", window_seconds=20.0)


# ----------------------------------------------------------------------------- bounded memory
_PROBE = """
import json, resource, sys
from pgfa_ros.bag import clips

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux reports KiB)

clips.read_bag_clips({small!r})  # warm up imports and caches on a tiny bag
base = peak()
if {mode!r} == "labelled":
    bc = clips.read_bag_clips({bag!r})
    n, frames = len(bc.clips), bc.num_frames
else:  # the live windows, streamed as pgfa-bag eval consumes them
    stream = clips.open_bag_clips({bag!r}, window=45, stride=10)
    n = sum(1 for _ in stream)
    frames = stream.num_frames
print(json.dumps(dict(growth=peak() - base, clips=n, frames=frames)))
"""


def _probe(tmp: Path, mode: str) -> dict:
    code = _PROBE.format(small=str(tmp / "small"), bag=str(tmp / "long"), mode=mode)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def long_bag(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("long_bag")
    totals = write_long_bag(tmp / "long", 10_000, clip_frames=1000, image_every=25, image_bytes=64 * 1024)
    write_long_bag(tmp / "small", 200, clip_frames=100, image_every=25, image_bytes=1024)
    return tmp, totals


@pytest.mark.parametrize("mode", ["labelled", "windows"])
def test_long_bag_is_read_with_bounded_memory(long_bag, mode):
    """10 000 skeleton frames (51 MB of CDR; decoded, ~120 MB of Python objects) and 26 MB of
    images: reading it into labelled clips, or streaming the live windows, grows the process by
    a few MB (the compact clips), not by the bag. The old reader kept every decoded message
    (+123 MB here)."""
    tmp, totals = long_bag
    assert totals[SKELETON_TOPIC] > 50e6 and totals["/camera/image_raw"] > 25e6
    got = _probe(tmp, mode)
    assert got["frames"] == 10_000
    assert got["clips"] == (10 if mode == "labelled" else 996)
    assert got["growth"] < 30, got  # MiB above the warmed-up process; the clips are ~2.4 MB


def _labelled_bag(path: Path, labels: list[dict], frames: int = 60) -> Path:
    from pgfa_ros.bag.convention import LABEL_TOPIC, STRING, ClipLabel
    from pgfa_ros.bag.io import string_msg

    rng = np.random.default_rng(2)
    stamps = [T0 + int(round(i * NS_PER_S / 30)) for i in range(frames)]
    with BagWriter(path, "mcap") as w:
        w.add_topic(LABEL_TOPIC, STRING)
        w.add_topic(SKELETON_TOPIC, MARKER_ARRAY)
        for lab in labels:
            a, b = lab.pop("frames_range")
            cl = ClipLabel(start_ns=stamps[a], end_ns=stamps[b], frames=b - a + 1, **lab)
            w.write(LABEL_TOPIC, stamps[a], string_msg(cl.to_json()))
        for st in stamps:
            w.write(SKELETON_TOPIC, st, marker_array({0: rng.normal(size=(J, 3))}, st, "cam"))
    return path


def test_overlapping_labels_stream_in_label_order(tmp_path):
    bag = _labelled_bag(tmp_path / "overlap", [
        {"label": "long", "class_index": 1, "name": "long", "frames_range": (0, 50)},
        {"label": "short", "class_index": 2, "name": "short", "frames_range": (10, 20)},
    ])
    bc = read_bag_clips(bag, layout="kinect_v1_20", fps=30.0)
    assert [c.name for c in bc.clips] == ["long", "short"]  # by start, though "short" completes first
    assert [c.bodies[0].shape[0] for c in bc.clips] == [51, 11]
    assert np.array_equal(bc.clips[1].bodies[0], bc.clips[0].bodies[0][10:21])
    assert np.array_equal(bc.clips[1].times, np.arange(11) / 30.0)


def test_label_naming_absent_bodies_is_one_error(tmp_path):
    bag = _labelled_bag(tmp_path / "absent", [
        {"label": "x", "class_index": 1, "name": "x", "body_ids": [5, 6], "frames_range": (0, 30)}])
    with pytest.raises(BagError, match=r"body ids \[5, 6\] never appear .*bodies present: \[0\]"):
        read_bag_clips(bag, layout="kinect_v1_20", fps=30.0)
