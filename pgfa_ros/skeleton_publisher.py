"""Publish real recorded skeletons as live skeleton MarkerArrays (for tests, benchmarks, demos).

Plays UTD-MHAD sequences (Kinect v1, layout ``kinect_v1_20``) for N bodies at a fixed rate, in
the Azure Kinect driver convention (``id = body_id * 100 + joint``), each body looping over its
own sequences and shifted sideways so the bodies are apart. Stamps are the wall-clock send time
(ROS system time), so a subscriber can measure end-to-end latency against the stamps.

Faults can be injected (``--inject a,b,...``) to exercise a recogniser's input checks:
``bad_ids`` (joint ids out of range), ``nan`` (NaN joints), ``empty`` (empty arrays),
``flood`` (a 1000-marker message), ``backwards`` (stamps going back), ``vanish`` (body 1
disappears mid-window, then returns).

    python -m pgfa_ros.skeleton_publisher --bodies 2 --rate 30 --duration 10 --topic /body_tracking_data
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "utd-mhad"
DEFAULT_SEQUENCES = ("a1_s1_t1", "a3_s1_t1", "a4_s2_t1", "a7_s3_t1", "a10_s1_t1", "a23_s1_t1")
FAULTS = ("bad_ids", "nan", "empty", "flood", "backwards", "vanish")


def load_sequences(data_dir: Path, names=DEFAULT_SEQUENCES) -> list[np.ndarray]:
    from pgfa_models.formats.utd_mhad import read_utd_mhad

    out = []
    for n in names:
        p = Path(data_dir) / f"{n}_skeleton.mat"
        if p.is_file():
            out.append(read_utd_mhad(p).astype(np.float32))
    if not out:
        raise FileNotFoundError(f"no UTD-MHAD skeleton files found in {data_dir}")
    return out


class BodyStream:
    """Endless frames of one body: its sequences back to back, shifted by ``offset`` metres in x."""

    def __init__(self, seqs: list[np.ndarray], start: int, offset: float):
        self.seqs = seqs
        self.i = start % len(seqs)
        self.t = 0
        self.offset = np.array([offset, 0.0, 0.0], np.float32)

    def next(self) -> np.ndarray:
        seq = self.seqs[self.i]
        f = seq[self.t] + self.offset
        self.t += 1
        if self.t >= len(seq):
            self.t, self.i = 0, (self.i + 1) % len(self.seqs)
        return f


class _Builder:
    """Reuses one Marker object per joint (like a C++ driver filling a preallocated message), so
    the publisher's own Python cost stays small and does not inflate measured latencies."""

    def __init__(self, frame_id: str, make):
        self.frame_id = frame_id
        self.make = make
        self.cache: dict[int, list] = {}

    def build(self, frame: dict, stamp: float):
        from visualization_msgs.msg import MarkerArray

        from pgfa_ros.skeleton_msgs import sec_to_stamp

        t = sec_to_stamp(stamp)
        out = MarkerArray()
        markers = []
        for b, joints in frame.items():
            ms = self.cache.get(b)
            if ms is None or len(ms) != len(joints):
                ms = self.cache[b] = list(self.make({b: joints}, stamp, self.frame_id).markers)
            for m, p in zip(ms, joints.tolist()):
                m.header.stamp = t
                pos = m.pose.position
                pos.x, pos.y, pos.z = p
            markers.extend(ms)
        out.markers = markers
        return out


def run(topic: str, bodies: int, rate: float, duration: float, inject: set[str], data_dir: Path,
        frame_id: str = "kinect_v1", start_delay: float = 0.0) -> int:
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from visualization_msgs.msg import Marker, MarkerArray

    from pgfa_ros.skeleton_msgs import joints_to_marker_array

    seqs = load_sequences(data_dir)
    builder = _Builder(frame_id, joints_to_marker_array)
    streams = {b: BodyStream(seqs, b, 0.8 * b) for b in range(bodies)}
    rclpy.init()
    node = rclpy.create_node("skeleton_publisher")
    pub = node.create_publisher(MarkerArray, topic, qos_profile_sensor_data)
    time.sleep(start_delay)
    period = 1.0 / rate
    n_frames = int(round(duration * rate))
    t_start = time.monotonic()
    sent = 0
    for k in range(n_frames):
        target = t_start + k * period
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        stamp = time.time()
        frame = {b: s.next() for b, s in streams.items()}
        phase = k % 60  # faults recur every 2 s at 30 Hz
        if "vanish" in inject and 1 in frame and 20 <= (k % 150) < 80:
            del frame[1]  # body 1 vanishes mid-window for 2 s (> body timeout), then returns
        if "nan" in inject and phase in (5, 6, 7):
            for b in frame:
                frame[b] = frame[b].copy()
                frame[b][[6, 7]] = np.nan  # left wrist and hand for 3 frames (repairable)
        if "backwards" in inject and phase == 30:
            stamp -= 0.5  # a frame from the past
        msg = builder.build(frame, stamp)
        if "bad_ids" in inject and phase in (10, 11):
            for j in (57, 99, -1):
                m = Marker()
                m.id = j
                m.header.stamp = msg.markers[0].header.stamp if msg.markers else m.header.stamp
                msg.markers.append(m)
        pub.publish(msg)
        if "empty" in inject and phase == 15:
            pub.publish(MarkerArray())
        if "flood" in inject and phase == 45:
            flood = MarkerArray()
            for j in range(1000):
                m = Marker()
                m.id = (j // 20) * 100 + (j % 20)
                m.header.stamp = msg.markers[0].header.stamp
                m.pose.position.x = float(j)
                flood.markers.append(m)
            pub.publish(flood)
        sent += 1
        rclpy.spin_once(node, timeout_sec=0)
    node.destroy_node()
    rclpy.try_shutdown()
    return sent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--topic", default="/body_tracking_data")
    ap.add_argument("--bodies", type=int, default=2)
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds to publish")
    ap.add_argument("--inject", default="", help=f"comma-separated faults from {FAULTS}")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="UTD-MHAD folder")
    ap.add_argument("--frame-id", default="kinect_v1")
    ap.add_argument("--start-delay", type=float, default=0.5, help="seconds to wait for discovery")
    a = ap.parse_args(argv)
    inject = {x for x in a.inject.split(",") if x}
    bad = inject - set(FAULTS)
    if bad:
        ap.error(f"unknown faults {sorted(bad)}; choose from {FAULTS}")
    sent = run(a.topic, a.bodies, a.rate, a.duration, inject, a.data, a.frame_id, a.start_delay)
    print(f"published {sent} frames for {a.bodies} bodies", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
