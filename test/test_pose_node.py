"""pose_estimator (lifecycle, multi-person) over REAL DDS: the node in its own process, this test
process publishes the real sports2d video frame by frame and reads skeletons and /diagnostics."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]

rclpy = pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rcl_interfaces.srv import GetParameters, SetParameters  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from pgfa_ros.multipose import count_id_switches, sports2d_person  # noqa: E402
from pgfa_ros.pose import fill_image_msg  # noqa: E402
from pgfa_ros.processes import spin_in_background  # noqa: E402
from recognizer_helpers import ros_subprocess_env  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_VIDEO = REPO.parent / "shared" / "data" / "videos" / "sports2d_demo.mp4"
IMAGE, SKEL, POINTS = "/pgfa_test/image", "/pgfa_test/skeleton", "/pgfa_test/image_points"
W, H, FPS = 640, 360, 30.0


class Client:
    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=int(ros_subprocess_env()["ROS_DOMAIN_ID"]))
        self.node = rclpy.create_node("pgfa_pose_test", context=self.context)
        rel = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.pub = self.node.create_publisher(Image, IMAGE, rel)
        self.lock = threading.Lock()
        self.skeletons: dict[int, dict[int, np.ndarray]] = {}  # frame -> {body: (33, 3)}
        self.points: dict[int, dict[int, np.ndarray]] = {}  # frame -> {body: (33, 4)}
        self.diag: list[dict] = []
        self.arrivals: dict[int, float] = {}  # frame -> monotonic arrival of its skeleton message
        self.node.create_subscription(MarkerArray, SKEL, lambda m: self._on(m, self.skeletons), rel)
        self.node.create_subscription(MarkerArray, POINTS, lambda m: self._on(m, self.points), rel)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.setp = self.node.create_client(SetParameters, "/pose_estimator/set_parameters")
        self.getp = self.node.create_client(GetParameters, "/pose_estimator/get_parameters")
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = spin_in_background(self.executor, self.context, 0.02)

    def _on(self, msg, store):
        bodies: dict[int, np.ndarray] = {}
        frame = None
        for m in msg.markers:
            st = m.header.stamp
            frame = int(round((st.sec + st.nanosec * 1e-9) * FPS))
            b, j = divmod(m.id, 100)
            arr = bodies.setdefault(b, np.full((33, 4), np.nan))
            p = m.pose.position
            arr[j] = (p.x, p.y, p.z, m.color.a)
        with self.lock:
            key = frame if frame is not None else -1 - len(store)
            store[key] = bodies
            if store is self.skeletons:
                self.arrivals[key] = time.monotonic()

    def _on_diag(self, msg):
        for st in msg.status:
            if st.name.startswith("pose_estimator"):
                with self.lock:
                    self.diag.append({kv.key: kv.value for kv in st.values})

    def n_replies(self):
        with self.lock:
            return len(self.skeletons)

    def call(self, client, req, timeout=10.0):
        assert client.wait_for_service(timeout_sec=timeout), client.srv_name
        fut = client.call_async(req)
        end = time.monotonic() + timeout
        while not fut.done() and time.monotonic() < end:
            time.sleep(0.02)
        assert fut.done()
        return fut.result()

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.thread.join(2)


def _msg(frame_bgr, i):
    msg = fill_image_msg(Image(), frame_bgr, "bgr8")
    t = i / FPS
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(t), int(round((t % 1) * 1e9))
    msg.header.frame_id = "camera"
    return msg


def test_pose_estimator_over_dds_on_the_real_video(tmp_path):
    cv2 = pytest.importorskip("cv2")
    if not SHARED_VIDEO.is_file():
        pytest.skip(f"{SHARED_VIDEO} not present")
    log = open(tmp_path / "pose.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgfa_ros.pose_node", "--ros-args", "-p", f"image_topic:={IMAGE}",
         "-p", f"skeleton_topic:={SKEL}", "-p", f"image_points_topic:={POINTS}", "-p", "reliable_input:=true",
         "-p", "queue_depth:=5", "-p", "diagnostics_period:=0.5", "-p", "report_period:=0.0"],
        env=ros_subprocess_env(), cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = Client()
    try:
        end = time.monotonic() + 90
        while client.pub.get_subscription_count() == 0 and time.monotonic() < end:
            assert proc.poll() is None, (tmp_path / "pose.log").read_text()
            time.sleep(0.1)
        assert client.pub.get_subscription_count() > 0, "pose_estimator never subscribed"
        time.sleep(1.0)  # its publishers matched too
        cap = cv2.VideoCapture(str(SHARED_VIDEO))
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            want = client.n_replies() + 1
            client.pub.publish(_msg(cv2.resize(frame, (W, H), interpolation=cv2.INTER_AREA), i))
            t0 = time.monotonic()
            while client.n_replies() < want and time.monotonic() - t0 < 5.0:  # lockstep on the reply
                time.sleep(0.002)
            i += 1
        cap.release()
        assert i == 230
        time.sleep(1.0)

        # parameters: a runtime one is accepted, a read-only one refused, a bad value refused
        r = client.call(client.setp, SetParameters.Request(parameters=[
            Parameter("detect_every", value=3).to_parameter_msg(),
            Parameter("image_topic", value="/elsewhere").to_parameter_msg(),
            Parameter("max_people", value=0).to_parameter_msg()]))
        assert [x.successful for x in r.results] == [True, False, False], r.results

        # real time: 90 frames at 30 Hz without waiting; the node keeps only the newest frame,
        # so replies come in stamp order and no backlog builds up
        cap = cv2.VideoCapture(str(SHARED_VIDEO))
        burst = []
        for _ in range(90):
            ok, frame = cap.read()
            burst.append(cv2.resize(frame, (W, H), interpolation=cv2.INTER_AREA))
        cap.release()
        t_next = time.monotonic()
        for k, img in enumerate(burst):
            client.pub.publish(_msg(img, 3000 + k))
            t_next += 1 / FPS
            time.sleep(max(0.0, t_next - time.monotonic()))
        t_last = time.monotonic()
        time.sleep(2.0)
        with client.lock:
            got = sorted(f for f in client.skeletons if f >= 3000)
            arrival = [client.arrivals[f] for f in got]
            d = dict(client.diag[-1]) if client.diag else {}
        assert got and got[-1] >= 3085, got[-5:]  # the newest frames were processed
        assert arrival == sorted(arrival)  # in stamp order: an old frame never follows a new one
        assert max(arrival) - t_last < 1.0  # no backlog after the burst
        assert int(d["images_received"]) == int(d["frames_processed"]) + int(d["dropped_frames"]), d
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        client.close()
        log.close()
    out = (tmp_path / "pose.log").read_text()
    assert proc.returncode == 0, out

    with client.lock:
        skel, pts, diag = dict(client.skeletons), dict(client.points), list(client.diag)
    assert len([f for f in skel if f < 3000]) >= 225, f"{len(skel)} replies for 230 frames\n{out}"
    seen: dict[str, list[int]] = {"man": [], "woman": []}
    for f, bodies in sorted(pts.items()):
        if f >= 3000:  # the real-time burst (video frames 0-89 again) is checked above
            continue
        for b, p in bodies.items():
            u, v = p[:, 0] * W, p[:, 1] * H
            box = (np.nanmin(u), np.nanmin(v), np.nanmax(u), np.nanmax(v))
            seen[sports2d_person(f, box, W, H)].append(b)
            assert set(skel[f]) == set(bodies)  # the same ids on both topics
            j = skel[f][b][:, :3]
            assert j.shape == (33, 3) and np.isfinite(j).all()
            assert 1.0 < np.linalg.norm(j[[23, 24]].mean(0)) < 30.0  # camera-space, not hip-centred
    r = count_id_switches(seen)
    assert r["switches"] <= 1, r
    assert len(seen["man"]) >= 170 and len(seen["woman"]) >= 130, {k: len(v) for k, v in seen.items()}
    assert diag, "no /diagnostics from pose_estimator"
    last = diag[-1]
    for key in ("fps", "people", "dropped_frames", "frames_processed", "detect_ms_p50", "landmarks_ms_p95",
                "total_ms_p50"):
        assert key in last, last
    assert int(last["frames_processed"]) >= 225 and float(last["total_ms_p50"]) > 0


def test_mailbox_newest_frame_wins():
    from pgfa_ros.pose_node import _Mailbox

    box = _Mailbox()
    assert box.put(1) is False and box.put(2) is True and box.put(3) is True
    assert box.get(0.01) == 3 and box.get(0.01) is None
    box.close()
    assert box.get(0.01) is None and box.closed


def test_lifecycle_in_process_bad_images_and_bad_parameters():
    from types import SimpleNamespace

    from rclpy.lifecycle import TransitionCallbackReturn

    from pgfa_ros.pose_node import PoseEstimatorNode

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=int(ros_subprocess_env()["ROS_DOMAIN_ID"]))
    try:
        with pytest.raises(ValueError, match="max_people"):
            PoseEstimatorNode(context=ctx, parameter_overrides=[Parameter("max_people", value=0)])
        node = PoseEstimatorNode(context=ctx, parameter_overrides=[Parameter("image_topic", value="/pgfa_t/img")])
        assert node.get_parameter("image_topic").value == "/pgfa_t/img"
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        bad = SimpleNamespace(height=4, width=5, encoding="yuv422", step=10, data=b"\0" * 40,
                              header=SimpleNamespace(frame_id="", stamp=None))
        assert node.process_image(bad) == []
        blank = _msg(np.zeros((H, W, 3), np.uint8), 0)
        assert node.process_image(blank) == []  # nobody in a black image: an empty MarkerArray goes out
        v = node.diagnostics_snapshot()
        assert v["bad_images"] == 1 and v["bad_image_bad_encoding"] == 1 and v["frames_processed"] == 1
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS and node.estimator is None
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)
