"""The recogniser over REAL DDS: recogniser process + publisher process + this test process.

The publisher plays real UTD-MHAD motion (layout kinect_v1_20) for 2 bodies at 30 Hz; the test
listens to ~/actions, per-body action topics, ~/alerts and /diagnostics, and changes parameters
through the node's parameter services (what ``ros2 param set`` does).
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]

rclpy = pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rcl_interfaces.srv import SetParameters, SetParametersAtomically  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from pgfa_ros.processes import spin_in_background, stop_process  # noqa: E402
from recognizer_helpers import make_checkpoint, ros_subprocess_env  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TOPIC = "/pgfa_test/body_tracking_data"
NODE = "/recognizer"
WINDOW_FRAMES, MAX_BODIES = 30, 4
FALL = "person falling down"
FALL_DESC = "A person loses balance, collapses and falls down onto the floor."





def _publisher(duration: float, inject: str = "", bodies: int = 2, logdir: Path | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pgfa_ros.skeleton_publisher", "--topic", TOPIC, "--bodies", str(bodies),
           "--rate", "30", "--duration", str(duration), "--start-delay", "0.3"]
    if inject:
        cmd += ["--inject", inject]
    log = open(logdir / f"publisher_{inject or 'clean'}.log", "w") if logdir else subprocess.DEVNULL
    return subprocess.Popen(cmd, env=ros_subprocess_env(), cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


class Listener:
    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=int(ros_subprocess_env()["ROS_DOMAIN_ID"]))
        self.node = rclpy.create_node("pgfa_test_listener", context=self.context)
        self.lock = threading.Lock()
        self.actions: list[dict] = []
        self.body_labels: dict[int, list[str]] = {0: [], 1: []}
        self.alerts: list[dict] = []
        self.diag: list[dict] = []
        n = self.node
        n.create_subscription(String, f"{NODE}/actions", self._on_action, 100)
        n.create_subscription(String, f"{NODE}/alerts", lambda m: self._add(self.alerts, json.loads(m.data)), 10)
        n.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        for b in (0, 1):
            n.create_subscription(String, f"/humans/bodies/b{b}/action",
                                  lambda m, b=b: self._add(self.body_labels[b], m.data), 100)
        self.atomic = n.create_client(SetParametersAtomically, f"{NODE}/set_parameters_atomically")
        self.setp = n.create_client(SetParameters, f"{NODE}/set_parameters")
        self.reset = n.create_client(Trigger, f"{NODE}/reset_bank")
        self.save = n.create_client(Trigger, f"{NODE}/save_bank")
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(n)
        self.thread = spin_in_background(self.executor, self.context)

    def _add(self, lst, item):
        with self.lock:
            lst.append(item)

    def _on_action(self, m):
        self._add(self.actions, json.loads(m.data))

    def _on_diag(self, m):
        for st in m.status:
            if st.name.startswith("recognizer"):
                self._add(self.diag, {kv.key: kv.value for kv in st.values})

    def clear(self):
        with self.lock:
            self.actions.clear()
            self.alerts.clear()
            self.diag.clear()
            for v in self.body_labels.values():
                v.clear()

    def wait_for(self, pred, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if pred():
                    return True
            time.sleep(0.05)
        return False

    def call(self, client, request, timeout: float = 10.0):
        assert client.wait_for_service(timeout_sec=timeout), f"service {client.srv_name} not available"
        fut = client.call_async(request)
        end = time.monotonic() + timeout
        while not fut.done() and time.monotonic() < end:
            time.sleep(0.02)
        assert fut.done(), f"service {client.srv_name} timed out"
        return fut.result()

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.thread.join(2)


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("recognizer")
    ckpt = make_checkpoint(tmp / "tiny.safetensors")
    cmd = [sys.executable, "-m", "pgfa_ros.recognizer_node", "--autostart", "--ros-args",
           "-p", f"checkpoint:={ckpt}", "-p", "layout:=kinect_v1_20", "-p", f"skeleton_topic:={TOPIC}",
           "-p", "backend:=eager", "-p", f"window_frames:={WINDOW_FRAMES}", "-p", "stride_frames:=10", "-p", "body_timeout:=0.5",
           "-p", f"max_bodies:={MAX_BODIES}", "-p", "diagnostics_period:=0.5",
           "-p", f"bank_dir:={tmp}", "-p", "bank_file:=bank.npz", "-p", "top_k:=3"]
    log = open(tmp / "recognizer.log", "w")
    proc = subprocess.Popen(cmd, env=ros_subprocess_env(), cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    listener = Listener()
    try:
        ok = listener.wait_for(lambda: bool(listener.diag), 60)
        if not ok:
            pytest.fail(f"recognizer did not come up:\n{(tmp / 'recognizer.log').read_text()[-3000:]}")
        yield proc, listener, tmp
    finally:
        listener.close()
        stop_process(proc, 5.0)
        log.close()
        print((tmp / "recognizer.log").read_text()[-2000:])


def test_actions_for_two_bodies(system):
    proc, lis, tmp = system
    lis.clear()
    pub = _publisher(4.0, logdir=tmp)
    try:
        ok = lis.wait_for(lambda: {a["body_id"] for a in lis.actions} >= {0, 1}
                          and all(lis.body_labels[b] for b in (0, 1)), 15)
    finally:
        stop_process(pub, 5.0)
    assert ok, f"actions for both bodies missing: {lis.actions[:3]}"
    a = lis.actions[0]
    assert set(a) >= {"stamp", "body_id", "topk", "mode", "window", "latency_ms"}
    assert a["mode"] == "text" and len(a["topk"]) == 3
    assert {"label", "score"} <= set(a["topk"][0])
    assert a["window"]["frames"] == WINDOW_FRAMES
    assert a["window"]["end"] - a["window"]["start"] == pytest.approx((WINDOW_FRAMES - 1) / 30, abs=0.05)
    assert lis.body_labels[0][0] in {t["label"] for x in lis.actions for t in x["topk"]}
    assert proc.poll() is None


def test_runtime_label_change_adds_described_class(system):
    proc, lis, tmp = system
    req = SetParametersAtomically.Request()
    req.parameters = [
        Parameter("labels", Parameter.Type.STRING_ARRAY, [FALL]).to_parameter_msg(),
        Parameter("descriptions", Parameter.Type.STRING_ARRAY, [FALL_DESC]).to_parameter_msg(),
        Parameter("alert_classes", Parameter.Type.STRING_ARRAY, [FALL]).to_parameter_msg(),
        Parameter("alert_consecutive", Parameter.Type.INTEGER, 2).to_parameter_msg(),
    ]
    res = lis.call(lis.atomic, req)
    assert res.result.successful, res.result.reason
    # a bad value is refused by the node, like `ros2 param set /recognizer mode nonsense`
    bad = SetParameters.Request()
    bad.parameters = [Parameter("mode", Parameter.Type.STRING, "nonsense").to_parameter_msg()]
    assert not lis.call(lis.setp, bad).results[0].successful
    lis.clear()
    pub = _publisher(25.0, logdir=tmp)  # embedding a new text may load the text model (seconds)
    try:
        ok = lis.wait_for(lambda: any(a["topk"][0]["label"] == FALL for a in lis.actions) and lis.alerts, 30)
        # one ros2-param-set style change: the mode
        one = SetParameters.Request()
        one.parameters = [Parameter("mode", Parameter.Type.STRING, "prototype_bank").to_parameter_msg()]
        assert lis.call(lis.setp, one).results[0].successful
        ok_mode = lis.wait_for(lambda: any(a["mode"] == "prototype_bank" for a in lis.actions), 10)
        saved = lis.call(lis.save, Trigger.Request())
        reset = lis.call(lis.reset, Trigger.Request())
    finally:
        stop_process(pub, 5.0)
    assert ok, f"new class never appeared: {[a['topk'][0] for a in lis.actions[-3:]]}, alerts {lis.alerts}"
    fall = [a for a in lis.actions if a["topk"][0]["label"] == FALL]
    assert fall[0]["topk"][0]["score"] == pytest.approx(1.0)  # the only class
    assert lis.alerts[0]["label"] == FALL and lis.alerts[0]["consecutive"] == 2
    assert ok_mode
    assert saved.success and (tmp / "bank.npz").is_file(), saved.message
    assert reset.success, reset.message


def test_bad_input_is_counted_and_bounded(system):
    proc, lis, tmp = system
    lis.clear()
    pub = _publisher(8.0, inject="bad_ids,nan,empty,flood,backwards,vanish", logdir=tmp)
    t_back = time.time() + 3.0  # body 1 is back after its 2 s absence (publisher frames 80..)
    try:
        # every fault recurs every 2 s; best-effort QoS may lose one occurrence, so wait for all
        keys = ("rejected_input_bad_id", "rejected_input_nan_joint", "rejected_input_empty",
                "rejected_input_flood", "rejected_frame_stamp_backwards", "body_lost")

        def counted():
            return (lis.diag and all(int(lis.diag[-1].get(k, 0)) > 0 for k in keys)
                    and {a["body_id"] for a in lis.actions if a["stamp"] > t_back} >= {0, 1})

        ok = lis.wait_for(counted, 15)
    finally:
        stop_process(pub, 5.0)
    last = lis.diag[-1] if lis.diag else {}
    assert ok, f"faults not all counted: {last}"
    assert proc.poll() is None, "recognizer died"
    assert int(last["buffered_frames"]) <= MAX_BODIES * WINDOW_FRAMES
    assert int(last.get("partial_window_discarded", 0)) > 0
    assert {a["body_id"] for a in lis.actions} >= {0, 1}, "recognition stopped under bad input"


def test_lifecycle_and_parameter_validation_in_process(tmp_path):
    """configure/activate/deactivate/cleanup cycle and refused parameter values, no DDS peers."""
    from lifecycle_msgs.msg import State  # noqa: F401
    from rclpy.lifecycle import TransitionCallbackReturn

    from pgfa_ros.recognizer_node import RecognizerNode, autostart

    ckpt = make_checkpoint(tmp_path / "tiny.safetensors")
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=int(ros_subprocess_env()["ROS_DOMAIN_ID"]))
    try:
        node = RecognizerNode(context=ctx, parameter_overrides=[
            Parameter("checkpoint", value=str(ckpt)), Parameter("layout", value="kinect_v1_20"),
            Parameter("backend", value="eager"), Parameter("skeleton_topic", value="/pgfa_test/unused"),
            Parameter("bank_max_age", value=7)])
        bad = [Parameter("mode", value="nonsense"), Parameter("window_frames", value=1),
               Parameter("labels", value=["a", "a"]), Parameter("alert_threshold", value=1.5),
               Parameter("body_timeout", value=-1.0)]
        for p in bad:
            assert not node.set_parameters([p])[0].successful, p.name
        assert autostart(node)
        snap = node.diagnostics_snapshot()
        assert snap["state"] == "active" and snap["labels"] == 5 and snap["backend"] == "eager"
        assert node.set_parameters([Parameter("window_frames", value=20)])[0].successful
        assert node._windows.config.window_frames == 20
        assert node.set_parameters([Parameter("mode", value="prototype_bank")])[0].successful
        assert node._recognizer.mode == "prototype_bank"
        assert node._recognizer.bank.max_age == 7
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert node.diagnostics_snapshot()["state"] == "inactive"
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert node._recognizer is None
        # the checkpoint is read-only (it takes effect only at configure) ...
        res = node.set_parameters([Parameter("checkpoint", value=str(tmp_path / "missing.safetensors"))])[0]
        assert not res.successful and "read-only" in res.reason
        node.destroy_node()
        # ... and a missing one given at start-up fails configure cleanly
        node = RecognizerNode(context=ctx, parameter_overrides=[
            Parameter("checkpoint", value=str(tmp_path / "missing.safetensors")), Parameter("backend", value="eager")])
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert "missing.safetensors" in node.configure_error
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)
