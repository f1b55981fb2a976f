"""play -> (recognizer) -> record over REAL DDS, in separate processes like on a robot."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pgfa_ros.bag.cli import main as bag_main
from pgfa_ros.bag.convention import LABEL_TOPIC, META_TOPIC, SKELETON_TOPIC
from pgfa_ros.bag.io import list_topics, open_reader, read_messages
from pgfa_ros.processes import stop_process
from recognizer_helpers import ros_subprocess_env

pytestmark = pytest.mark.ros
pytest.importorskip("rclpy")

REPO = Path(__file__).resolve().parents[1]



def _spawn(args, log: Path) -> subprocess.Popen:
    fh = open(log, "w")
    return subprocess.Popen([sys.executable, *args], env=ros_subprocess_env(), cwd=REPO, stdout=fh, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait_for_text(log: Path, text: str, proc: subprocess.Popen, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if text in log.read_text():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False




def _counts(bag: Path) -> dict[str, int]:
    r = open_reader(bag)
    try:
        out: dict[str, int] = {t.name: 0 for t in list_topics(r)}
        for t, _, _ in read_messages(r, list(out), decode=False):  # checks metadata counts too
            out[t] += 1
        return out
    finally:
        r.close()


@pytest.fixture(scope="module")
def small_bag(utd_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("playrec")
    bag = tmp / "src"
    assert bag_main(["convert", "--dataset", "utd_mhad", "--input", str(utd_dir), "--classes", "3,23",
                     "--subjects", "1", "--limit", "3", "--gap", "0.2", "--output", str(bag), "-q"]) == 0
    return tmp, bag, _counts(bag)


def _record_play(tmp: Path, bag: Path, topics: list[str], types: list[str], name: str, storage: str,
                 extra_wait: float = 1.0, play_topics=(SKELETON_TOPIC, LABEL_TOPIC), min_subscribers: int = 1) -> Path:
    out = tmp / name
    rec_log, play_log = tmp / f"{name}_record.log", tmp / f"{name}_play.log"
    rec = _spawn(["-m", "pgfa_ros.bag.cli", "record", *topics, "-o", str(out), "--storage", storage,
                  *[x for t in types for x in ("--type", t)]], rec_log)
    try:
        assert _wait_for_text(rec_log, "recording", rec, 30), rec_log.read_text()
        play = subprocess.run([sys.executable, "-m", "pgfa_ros.bag.cli", "play", str(bag), "--rate", "4",
                               "--topics", *play_topics, "--wait-for-subscribers", "20",
                               "--min-subscribers", str(min_subscribers)],
                              env=ros_subprocess_env(), cwd=REPO, capture_output=True, text=True, timeout=60)
        play_log.write_text(play.stdout + play.stderr)
        assert play.returncode == 0, play_log.read_text()
        time.sleep(extra_wait)
    finally:
        rc = stop_process(rec)
    assert rc == 0, rec_log.read_text()
    assert "stopped (SIGINT)" in rec_log.read_text()
    return out


def test_play_record_round_trip_is_lossless(small_bag):
    tmp, bag, src = small_bag
    out = _record_play(tmp, bag, [SKELETON_TOPIC, LABEL_TOPIC],
                       [f"{SKELETON_TOPIC}:visualization_msgs/msg/MarkerArray", f"{LABEL_TOPIC}:std_msgs/msg/String"],
                       "rec_plain", "sqlite3")
    got = _counts(out)
    assert got[SKELETON_TOPIC] == src[SKELETON_TOPIC] and got[LABEL_TOPIC] == src[LABEL_TOPIC]
    # the bytes on the wire are the bytes in the bag: the recorded bag evaluates to the same clips
    from pgfa_ros.bag.clips import read_bag_clips

    a = read_bag_clips(bag)
    b = read_bag_clips(out, layout="kinect_v1_20", fps=30.0)
    assert [c.label.name for c in a.clips] == [c.label.name for c in b.clips]
    for x, y in zip(a.clips, b.clips):
        assert all((p == q).all() for p, q in zip(x.bodies, y.bodies))


@pytest.mark.slow
def test_play_recognizer_record(small_bag):
    from recognizer_helpers import make_checkpoint

    tmp, bag, src = small_bag
    ckpt = make_checkpoint(tmp / "tiny.safetensors")
    rlog = tmp / "recognizer.log"
    node = _spawn(["-m", "pgfa_ros.recognizer_node", "--autostart", "--ros-args", "-p", f"checkpoint:={ckpt}",
                   "-p", "layout:=kinect_v1_20", "-p", f"skeleton_topic:={SKELETON_TOPIC}", "-p", "backend:=eager",
                   "-p", "window_frames:=30", "-p", "stride_frames:=15", "-p", "body_timeout:=0.5"], rlog)
    try:
        # play starts once both the recorder and the (active) recogniser subscribe to the skeletons
        out = _record_play(tmp, bag, [SKELETON_TOPIC, "/recognizer/actions"],
                           [f"{SKELETON_TOPIC}:visualization_msgs/msg/MarkerArray",
                            "/recognizer/actions:std_msgs/msg/String"], "rec_recognizer", "mcap", extra_wait=2.0,
                           play_topics=(SKELETON_TOPIC,), min_subscribers=2)
    finally:
        stop_process(node)
    got = _counts(out)
    assert got[SKELETON_TOPIC] == src[SKELETON_TOPIC], rlog.read_text()[-2000:]
    assert got["/recognizer/actions"] > 0, rlog.read_text()[-2000:]
    r = open_reader(out)
    try:
        actions = [json.loads(m.data) for _, _, m in read_messages(r, ["/recognizer/actions"])]
    finally:
        r.close()
    assert {"body_id", "topk"} <= set(actions[0]) and actions[0]["body_id"] == 0


_PLAY_PROBE = """
import json, resource
from pgfa_ros.bag.ros import play

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux reports KiB)

play({small!r}, rate=1e6, log=lambda *a: None)  # warm up rclpy, DDS and the publishers' pools
base = peak()
res = play({bag!r}, rate=1e6, log=lambda *a: None)
print(json.dumps(dict(growth=peak() - base, published=res.published, loops=res.loops)))
"""


def test_play_streams_a_long_bag_with_bounded_memory(tmp_path):
    """10 000 skeleton frames + 26 MB of images (77 MB of messages) are published while the
    player grows by a few MB: it streams the bag instead of holding every topic's bytes."""
    from bag_helpers import write_long_bag

    totals = write_long_bag(tmp_path / "long", 10_000, clip_frames=1000, image_every=25, image_bytes=64 * 1024)
    write_long_bag(tmp_path / "small", 200, clip_frames=100, image_every=25, image_bytes=64 * 1024)
    assert sum(totals.values()) > 75e6
    code = _PLAY_PROBE.format(small=str(tmp_path / "small"), bag=str(tmp_path / "long"))
    res = subprocess.run([sys.executable, "-c", code], env=ros_subprocess_env(), cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["loops"] == 1
    assert got["published"][SKELETON_TOPIC] == 10_000 and got["published"]["/camera/image_raw"] == 400
    assert got["published"][LABEL_TOPIC] == 10 and got["published"][META_TOPIC] == 1
    assert got["growth"] < 30, got  # MiB; the old player held all 77 MB


def test_play_unknown_topic_is_one_line_error(small_bag, capsys):
    tmp, bag, src = small_bag
    rc = bag_main(["play", str(bag), "--topics", "/nope"])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1 and "/nope" in err and META_TOPIC in err


@pytest.mark.parametrize("args, what", [
    (["record", "/chatter", "--duration", "nan"], "--duration"),
    (["record", "/chatter", "--duration", "0"], "--duration"),
    (["record", "/chatter", "--count", "0"], "--count"),
    (["record", "/chatter", "--count", "5", "--count-topic", "/other"], "--count-topic"),
    (["record", "/chatter", "--discovery-timeout", "nan"], "--discovery-timeout"),
    (["play", "BAG", "--delay", "nan"], "--delay"),
    (["play", "BAG", "--wait-for-subscribers", "nan"], "--wait-for-subscribers")])
def test_bad_record_and_play_numbers_fail_before_dds(tmp_path, capsys, args, what):
    """--duration nan recorded until killed, 0 wrote an empty bag, --count 0 stopped at the first
    message, a --count-topic not recorded never stopped and nan delays were taken as 0."""
    out = tmp_path / "rec"
    args = [str(tmp_path / "missing_bag") if a == "BAG" else a for a in args]
    rc = bag_main([*args, "--output", str(out)] if args[0] == "record" else args)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and what in err, err
    assert not out.exists()
