"""pgfa-demo on a short slice of the video produces its picture and prints results."""
import subprocess
import sys
from pathlib import Path

import pytest

from pgfa_ros.recognizer_params import DEFAULT_CHECKPOINT

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CKPT = Path(DEFAULT_CHECKPOINT)


@pytest.mark.slow
@pytest.mark.ros
def test_demo_short_slice(tmp_path):
    if not DEFAULT_CKPT.is_file():
        pytest.fail(f"default checkpoint missing: {DEFAULT_CKPT}")
    out = tmp_path / "demo.gif"
    r = subprocess.run([sys.executable, "-m", "pgfa_ros.demo", "--max-frames", "75", "--window", "30",
                        "--stride", "10", "--out", str(out), "--no-progress", "--json", str(tmp_path / "new" / "d.json")],
                       capture_output=True, text=True, timeout=500, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert out.is_file() and out.stat().st_size > 10_000
    lines = [ln for ln in r.stdout.splitlines() if " body 0: " in ln]
    assert lines, r.stdout + r.stderr
    import json

    saved = json.loads((tmp_path / "new" / "d.json").read_text())  # its folder was created
    assert sum(saved["summary"]["0"].values()) == sum(1 for d in saved["results"] if d["body_id"] == 0) > 0


def test_unwritable_output_folder_fails_before_the_run(tmp_path, capsys):
    from pgfa_ros.demo import main

    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["--json", str(blocker / "d.json"), "--no-progress"]) == 2
    assert "bad output path" in capsys.readouterr().err


def test_label_summary_counts_top_labels_per_body():
    from pgfa_ros.demo import label_summary

    res = [{"body_id": 1, "topk": [{"label": "walk"}]}, {"body_id": 0, "topk": [{"label": "clap"}]},
           {"body_id": 1, "topk": [{"label": "run"}]}, {"body_id": 1, "topk": [{"label": "walk"}]},
           {"body_id": 0, "topk": []}]
    assert label_summary(res) == {0: [("clap", 1), ("(none)", 1)], 1: [("walk", 2), ("run", 1)]}


def test_zero_shot_ranks_per_body_and_window():
    from pgfa_ros.demo import zero_shot_ranks

    res = [{"body_id": 1, "topk": [{"label": "walk"}, {"label": "hop"}, {"label": "wave"}]},
           {"body_id": 0, "topk": [{"label": "wave"}]}, {"body_id": 1, "topk": [{"label": "run"}]},
           {"body_id": 1, "topk": [{"label": "hop"}]}]
    assert zero_shot_ranks(res, {"hop", "wave"}) == {0: [1], 1: [2, None, 1]}
    assert zero_shot_ranks(res, set()) == {0: [None], 1: [None, None, None]}


def test_video_argument_file_or_live_camera():
    from pgfa_ros.demo import DEFAULT_VIDEO, build_params, is_camera, parse_args

    a = parse_args([])
    assert a.video == DEFAULT_VIDEO and not is_camera(a.video)
    p = build_params(a, ["walking"], [""])
    vp, pe = p["video_publisher"]["ros__parameters"], p["pose_estimator"]["ros__parameters"]
    assert vp["rate"] == 0.0 and vp["ack_topic"] and pe["reliable_input"] and pe["max_people"] == 4
    assert p["recognizer"]["ros__parameters"]["window_seconds"] == 0.0  # lockstep: every frame, 45 of them
    assert p["recognizer"]["ros__parameters"]["top_k"] == 3
    # lockstep runs slower than real time under load: people are forgotten on video time
    assert p["recognizer"]["ros__parameters"]["expire_clock"] == "stamp"
    from pgfa_ros.recognizer_params import PARAMS
    assert p["recognizer"]["ros__parameters"]["seen_margin"] == PARAMS["seen_margin"].default
    assert build_params(parse_args(["--seen-margin", "0"]), ["walking"], [""])["recognizer"]["ros__parameters"]["seen_margin"] == 0.0
    assert build_params(parse_args(["--top-k", "55"]), ["walking"], [""])["recognizer"]["ros__parameters"]["top_k"] == 55
    for cam in ("0", "/dev/video2"):
        a = parse_args(["--video", cam, "--max-people", "2", "--max-frames", "300"])
        assert a.video == cam and is_camera(a.video)
        p = build_params(a, ["walking"], [""])
        vp, pe = p["video_publisher"]["ros__parameters"], p["pose_estimator"]["ros__parameters"]
        # live: real time, no lockstep ack, the pose node keeps only the newest frame
        assert vp["video_path"] == cam and vp["rate"] == 1.0 and "ack_topic" not in vp
        assert not pe["reliable_input"] and pe["queue_depth"] == 1 and pe["max_people"] == 2
        # frames are skipped live: the window is 45 frames' worth of time, not 45 processed frames
        assert p["recognizer"]["ros__parameters"]["window_seconds"] == pytest.approx(45 / 30)
        assert p["recognizer"]["ros__parameters"]["expire_clock"] == "receive"
    for bad in (["--video", "0", "--start-frame", "5"], ["--max-people", "0"], ["--rate", "-1"],
                ["--out", "out"], ["--out", "out/demo.png"], ["--top-k", "0"], ["--seen-margin", "-0.1"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_render_draws_every_person_with_its_id(tmp_path):
    import numpy as np

    from pgfa_ros.demo import Recording, body_color, render

    rec = Recording(t0=0.0)
    img = np.zeros((360, 640, 3), np.uint8)
    pts = np.full((33, 4), np.nan, np.float32)
    pts[:, 3] = 1.0
    pts[:, 0] = np.linspace(0.1, 0.2, 33)
    pts[:, 1] = np.linspace(0.3, 0.9, 33)
    other = pts.copy()
    other[:, 0] += 0.6
    rec.frames[0] = img
    rec.points[0] = {0: pts, 7: other}
    rec.results = [{"stamp": 0.0, "body_id": 7, "topk": [{"label": "walking", "score": 0.8}]}]
    out = tmp_path / "o.mp4"
    assert render(rec, out, 10.0, {"walking"}) == 1
    import cv2

    ok, frame = cv2.VideoCapture(str(out)).read()
    assert ok and frame.shape[0] > 360  # the label panel is under the picture
    for bid, x in ((0, 0.15), (7, 0.75)):  # each skeleton in its own colour where the person is
        col = frame[:360, int((x - 0.08) * 640):int((x + 0.08) * 640)].reshape(-1, 3).astype(int)
        dominant = int(np.argmax(body_color(bid)))
        strong = col[col.max(1) > 120]
        assert len(strong) > 20 and np.mean(np.argmax(strong, 1) == dominant) > 0.5, bid
