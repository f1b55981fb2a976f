"""pgfa-replay (pgfa_ros.replay): the live code path offline, equal to the node over real DDS.

A real SmartFallMM fall trial is converted with ``pgfa-bag convert``, played with ``pgfa-bag
play`` to a ``recognizer`` process, and the ``~/actions`` / ``~/alerts`` it publishes are compared
with the replay of the same bag, and with the replay of the SmartFallMM folder itself.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pgfa_ros.processes import spin_in_background, stop_process
from recognizer_helpers import DEFAULT_CHECKPOINT, ros_subprocess_env

REPO = Path(__file__).resolve().parents[1]
TRIAL = dict(participants=[37], activities=[10], trials=[1])  # a back fall, 187 frames (6.2 s)
TOPIC = "/pgfa_replay_test/body_tracking_data"
# measured fields differ between a live run and the replay by construction
MEASURED = ("latency_ms", "timing_ms")


def _params(**extra):
    base = {"checkpoint": str(DEFAULT_CHECKPOINT), "layout": "azure_kinect_32", "backend": "eager",
            "skeleton_topic": TOPIC, "window_seconds": 1.5, "stride_frames": 10, "body_timeout": 1.0,
            "top_k": 3}
    base.update(extra)
    return base


def _strip(lines):
    out = []
    for line in lines:
        d = json.loads(line)
        for k in MEASURED:
            d.pop(k, None)
        out.append(d)
    return out


@pytest.fixture(scope="module")
def trial_bag(smartfall_dir, tmp_path_factory):
    from pgfa_ros.bag.cli import main as bag_main

    out = tmp_path_factory.mktemp("replay") / "s37a10t1"
    args = ["convert", "--dataset", "smartfallmm", "--input", str(smartfall_dir), "--participants", "37",
            "--activities", "10", "--trials", "1", "--skeleton-topic", TOPIC, "--output", str(out), "-q"]
    assert bag_main(args) == 0
    return out


@pytest.fixture(scope="module")
def replayer_factory():
    from pgfa_ros.replay import Replayer, load_params

    return lambda **extra: Replayer(load_params(overrides=_params(**extra)))


def _replay_bag(rep, bag):
    from pgfa_ros.replay import bag_frames, replay

    return replay(rep, bag_frames(bag, TOPIC, rep.layout.num_joints, rep.max_bodies, rep.max_markers))


def test_convert_smartfallmm_round_trip(trial_bag, smartfall_dir):
    from pgfa_models.formats.smartfallmm import read_smartfallmm
    from pgfa_ros.bag.clips import read_bag_clips

    clips = read_bag_clips(trial_bag, skeleton_topic=TOPIC)
    assert len(clips.clips) == 1
    c = clips.clips[0]
    assert c.label.label == "back fall" and c.name.startswith("S37A10T01")
    import numpy as np

    np.testing.assert_array_equal(c.bodies[0], read_smartfallmm(smartfall_dir / "S37A10T01.csv"))


def test_folder_and_bag_replay_equal_and_deterministic(trial_bag, smartfall_dir, replayer_factory):
    from pgfa_ros.replay import replay, smartfall_frames

    a = _replay_bag(replayer_factory(), trial_bag)
    b = _replay_bag(replayer_factory(), trial_bag)
    rep = replayer_factory()
    c = replay(rep, smartfall_frames(smartfall_dir, **TRIAL, gap_s=1.0, fresh_ids=False))
    assert a["actions"] > 10
    assert a["action_lines"] == b["action_lines"] == c["action_lines"]  # byte-identical, measured fields too
    assert a["alert_lines"] == b["alert_lines"] == c["alert_lines"]
    assert a["speed"] > 1.0, "replay must be faster than real time"
    first = json.loads(a["action_lines"][0])
    assert first["frame_id"] == "depth_camera_link" and first["window"]["frames"] == 45


def test_load_params_refuses_bad_values(tmp_path):
    from pgfa_ros.replay import load_params

    with pytest.raises(ValueError, match="unknown recognizer parameter"):
        load_params(overrides={"alert_treshold": 0.5})
    with pytest.raises(ValueError, match="unknown_threshold"):
        load_params(overrides={"unknown_threshold": 1.5})
    f = tmp_path / "p.yaml"
    f.write_text("other:\n  ros__parameters: {top_k: 2}\n")
    with pytest.raises(ValueError, match="no 'recognizer: ros__parameters:'"):
        load_params(f)
    f.write_text("recognizer:\n  ros__parameters: {top_k: 2, alert_threshold: 1}\n")
    p = load_params(f)
    assert p["top_k"] == 2 and p["alert_threshold"] == 1.0


def test_cli_writes_jsonl(smartfall_dir, tmp_path):
    from pgfa_ros.replay import main

    rc = main(["--smartfallmm", str(smartfall_dir), "--participants", "37", "--activities", "10", "--trials", "1",
               "-p", f"checkpoint:={DEFAULT_CHECKPOINT}", "-p", "layout:=azure_kinect_32", "-p", "backend:=eager",
               "-o", str(tmp_path), "-q"])
    assert rc == 0
    lines = (tmp_path / "actions.jsonl").read_text().splitlines()
    assert lines and all(json.loads(x)["body_id"] == 0 for x in lines)
    assert (tmp_path / "alerts.jsonl").exists()
    assert main(["--bag", str(tmp_path / "nope"), "-o", str(tmp_path / "x"), "-q"]) == 2  # one-line error


# ----------------------------------------------------------------------------- real DDS


@pytest.mark.ros
@pytest.mark.slow
def test_replay_equals_live_node_over_dds(trial_bag, replayer_factory, tmp_path):
    rclpy = pytest.importorskip("rclpy")
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import String

    # pick an alert rule that fires and resets on this recording (from the deterministic replay)
    probe = _replay_bag(replayer_factory(), trial_bag)
    tops = [json.loads(x)["topk"][0] for x in probe["action_lines"]]
    cls = max({t["label"] for t in tops}, key=lambda n: sum(t["label"] == n for t in tops))
    scores = sorted(t["score"] for t in tops if t["label"] == cls)
    thr = round(scores[len(scores) // 2], 4)
    extra = {"alert_classes": [cls], "alert_threshold": thr, "alert_consecutive": 2, "unknown_threshold": 0.6}
    expected = _replay_bag(replayer_factory(**extra), trial_bag)
    assert expected["alerts"] >= 1

    env = ros_subprocess_env()
    params = _params(**extra, diagnostics_period=0.5)
    cmd = [sys.executable, "-m", "pgfa_ros.recognizer_node", "--autostart", "--ros-args"]
    for k, v in params.items():
        cmd += ["-p", f"{k}:={json.dumps(v) if isinstance(v, list) else v}"]
    log = open(tmp_path / "recognizer.log", "w")
    node = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=int(env["ROS_DOMAIN_ID"]))
    lis = rclpy.create_node("pgfa_replay_listener", context=ctx)
    lock = threading.Lock()
    got = {"actions": [], "alerts": [], "diag": []}

    def add(key, value):
        with lock:
            got[key].append(value)

    lis.create_subscription(String, "/recognizer/actions", lambda m: add("actions", m.data), 500)
    lis.create_subscription(String, "/recognizer/alerts", lambda m: add("alerts", m.data), 100)
    lis.create_subscription(DiagnosticArray, "/diagnostics", lambda m: [
        add("diag", {kv.key: kv.value for kv in st.values}) for st in m.status if st.name.startswith("recognizer")], 10)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(lis)
    spin_in_background(ex, ctx)

    def wait(pred, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with lock:
                if pred():
                    return True
            time.sleep(0.05)
        return False

    try:
        assert wait(lambda: got["diag"], 90), (tmp_path / "recognizer.log").read_text()[-3000:]
        play = subprocess.run([sys.executable, "-m", "pgfa_ros.bag.cli", "play", str(trial_bag), "--topics", TOPIC,
                               "--wait-for-subscribers", "20", "--delay", "0.5"],
                              env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert play.returncode == 0, play.stderr
        n = expected["actions"]
        wait(lambda: len(got["actions"]) >= n, 20)
        time.sleep(1.0)  # the last diagnostics and anything late
        with lock:
            actions, alerts, diag = list(got["actions"]), list(got["alerts"]), got["diag"][-1]
    finally:
        ex.shutdown()
        lis.destroy_node()
        rclpy.try_shutdown(context=ctx)
        stop_process(node, 5.0)
        log.close()
    frames = expected["messages"]
    if int(diag["messages"]) != frames or int(diag["windows_dropped"]):
        pytest.skip(f"the machine was too loaded for a clean live run: node received {diag['messages']} of "
                    f"{frames} messages, dropped {diag['windows_dropped']} windows")
    assert _strip(actions) == _strip(expected["action_lines"])
    assert [json.loads(a) for a in alerts] == [json.loads(a) for a in expected["alert_lines"]]


def test_stream_without_alert_class_raises_no_alert(trial_bag, replayer_factory):
    """A permissive rule (threshold 0, one window) alerts on a configured class, and never
    without one; an alert class outside the label set is refused, not ignored."""
    quiet = _replay_bag(replayer_factory(alert_threshold=0.0, alert_consecutive=1), trial_bag)
    assert quiet["actions"] > 10 and quiet["alerts"] == 0 and quiet["alert_lines"] == []
    label = json.loads(quiet["action_lines"][0])["topk"][0]["label"]
    loud = _replay_bag(replayer_factory(alert_classes=[label], alert_threshold=0.0, alert_consecutive=1), trial_bag)
    assert loud["alerts"] == 1  # one run that never breaks: one alert
    with pytest.raises(ValueError, match="not in the label set"):
        replayer_factory(alert_classes=["no such class"])


def test_unknown_threshold_labels_low_scores_unknown(trial_bag, replayer_factory):
    s = _replay_bag(replayer_factory(unknown_threshold=1.0), trial_bag)
    msgs = [json.loads(x) for x in s["action_lines"]]
    assert all(m["label"] == "unknown" for m in msgs if m["topk"][0]["score"] < 1.0)
    assert all(m["topk"][0]["label"] != "unknown" for m in msgs)  # top-k keeps the real scores
