"""Camera path benchmark: multi-person pose fps, image -> action latency, id switches.

Runs the pure modules the live nodes run (no DDS), in one thread, on the real
``sports2d_demo.mp4`` at 640 px width:

* **1 person**: frames 0-37 (only the man on the roof is in view), played forward and back;
* **2 people**: frames 60-159 (the man and the woman walking past), forward and back;
* **4 people**: two 2-person frames 50 frames apart stacked vertically (640 x 720: the people
  keep their size; the width stays 640 px), forward and back.

Per frame: ``MultiPoseEstimator.process`` (the ``pose_estimator`` node's step), the people go
into the recognizer's ``WindowManager`` (window 45, stride 10, as the demo) and every ready
window through ``classify_windows`` (the ``recognizer`` node's step, default checkpoint, demo
label set, 1 thread). Image -> action latency = from the frame entering pose estimation to its
windows' labels, for frames that complete a window (the node pair runs these two steps in two
threads, so this sequential sum is an upper bound for one frame). Then the whole demo video is
tracked with each detector rate (``detect_every`` 1, 2, 3; the node default is 3) to count id
switches against the video's ground truth (:func:`pgfa_ros.multipose.sports2d_person`).

    python benchmarks/camera/run.py                    # -> benchmarks/camera/RESULTS.md, results.json
    python benchmarks/camera/run.py --frames 60 --out /tmp/camera.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
VIDEO = REPO.parent / "shared" / "data" / "videos" / "sports2d_demo.mp4"
if not VIDEO.is_file():
    VIDEO = REPO / "pgfa_ros" / "assets" / "sports2d_demo.mp4"
W, H = 640, 360


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def load_frames() -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(VIDEO))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(np.ascontiguousarray(cv2.resize(f, (W, H), interpolation=cv2.INTER_AREA)[:, :, ::-1]))
    cap.release()
    return out


def ping_pong(lo: int, hi: int, n: int) -> list[int]:
    seq = list(range(lo, hi + 1)) + list(range(hi - 1, lo, -1))
    return [seq[i % len(seq)] for i in range(n)]


def scenes(frames, n: int) -> dict[str, list[np.ndarray]]:
    two = ping_pong(60, 159, n)
    return {
        "1": [frames[i] for i in ping_pong(0, 37, n)],
        "2": [frames[i] for i in two],
        "4": [np.vstack([frames[i], frames[60 + (i - 60 + 50) % 100]]) for i in two],
    }


def pct(a, q):
    return float(np.percentile(a, q)) if len(a) else float("nan")


def run_scene(images, est_kw, rec, layout, pre_cfg, num_person):
    from pgfa_models.windows import WindowConfig, WindowManager
    from pgfa_ros.live_pipeline import classify_windows
    from pgfa_ros.multipose import MultiPoseEstimator

    est = MultiPoseEstimator(**est_kw)
    wm = WindowManager(33, WindowConfig(window_frames=45, stride_frames=10, body_timeout=2.0))
    pose_ms, cpu_ms, e2e_ms, people, stages = [], [], [], [], {"detect": [], "landmarks": [], "track": []}
    for k, img in enumerate(images):
        t0, c0 = time.perf_counter(), time.process_time()
        ppl = est.process(img)
        t1 = time.perf_counter()
        pose_ms.append((t1 - t0) * 1e3)
        cpu_ms.append((time.process_time() - c0) * 1e3)
        people.append(len(ppl))
        for s in stages:
            if s != "detect" or est.last_detected:
                stages[s].append(est.last_timing[s] * 1e3)
        for p in ppl:
            wm.add(p.track_id, k / 30.0, p.joints, k / 30.0)
        ready = wm.pop_ready()
        if ready:
            batch = classify_windows(rec, ready, layout, pre_cfg, num_person)
            if batch.predictions:
                e2e_ms.append((time.perf_counter() - t0) * 1e3)
    # the first frames load caches and start tracks: leave 5 out of the pose numbers
    p = np.asarray(pose_ms[5:])
    return {
        "frames": len(images), "image_size": f"{images[0].shape[1]}x{images[0].shape[0]}",
        "people_mean": float(np.mean(people)), "people_max": int(max(people)),
        "pose_fps": float(1e3 / p.mean()), "pose_ms_p50": pct(p, 50), "pose_ms_p99": pct(p, 99),
        "pose_cpu_ms_mean": float(np.mean(cpu_ms[5:])),
        "stage_ms_p50": {s: pct(v[5:] if s != "detect" else v, 50) for s, v in stages.items()},
        "action_results": len(e2e_ms), "image_to_action_ms_p50": pct(e2e_ms, 50),
        "image_to_action_ms_p99": pct(e2e_ms, 99), "image_to_action_ms_max": float(max(e2e_ms)) if e2e_ms else float("nan"),
        "tracks_started": int(est.next_id),
    }


def id_switch_run(frames, est_kw):
    from pgfa_ros.multipose import MultiPoseEstimator, count_id_switches, sports2d_person

    est = MultiPoseEstimator(**est_kw)
    seen = {"man": [], "woman": []}
    t = 0.0
    for i, img in enumerate(frames):
        t0 = time.perf_counter()
        for p in est.process(img):
            seen[sports2d_person(i, p.box, W, H)].append(p.track_id)
        t += time.perf_counter() - t0
    r = count_id_switches(seen)
    r["frames_tracked"] = {k: len(v) for k, v in seen.items()}
    r["tracks_started"] = int(est.next_id)
    r["fps"] = len(frames) / t
    return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=150, help="frames per scene (default 150)")
    ap.add_argument("--num-threads", type=int, default=2, help="TFLite threads per model (node default 2)")
    ap.add_argument("--detect-every", default="2,3",
                    help="detector rates to run besides 1, comma-separated (default 2,3; the node default is 3)")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from pgfa_models.layouts import get_layout
    from pgfa_models.recognition import load_recognizer
    from pgfa_ros.demo import DEFAULT_CHECKPOINT, build_label_set
    from pgfa_models.checkpoint import read_meta
    from pgfa_ros.live_pipeline import preprocess_config_from_meta
    from pgfa_ros.recognizer_params import PARAMS

    load_before = uptime()
    t_start = time.time()
    frames = load_frames()
    meta = read_meta(DEFAULT_CHECKPOINT)
    names, descs, _ = build_label_set(None, list(meta.labels))
    rec, meta = load_recognizer(str(DEFAULT_CHECKPOINT), labels=names, descriptions=descs, num_threads=1,
                                seen_margin=PARAMS["seen_margin"].default)
    layout, pre_cfg = get_layout("mediapipe_33"), preprocess_config_from_meta(meta)
    num_person = int(meta.num_person or 1)
    rates = sorted({1} | {int(x) for x in str(args.detect_every).split(",") if x.strip()})
    est_kw = dict(max_people=4, num_threads=args.num_threads)

    rows = {}
    for name, images in scenes(frames, args.frames).items():
        for de in rates:
            key = f"{name}p_detect_every_{de}"
            rows[key] = run_scene(images, dict(est_kw, detect_every=de), rec, layout, pre_cfg, num_person)
            rows[key].update(people=int(name), detect_every=de)
            print(key, json.dumps({k: (round(v, 1) if isinstance(v, float) else v) for k, v in rows[key].items()
                                   if not isinstance(v, dict)}), flush=True)
    switches = {f"detect_every_{de}": id_switch_run(frames, dict(est_kw, detect_every=de))
                for de in rates}
    for k, v in switches.items():
        print("id switches", k, v, flush=True)
    load_after = uptime()
    res = {
        "command": "python benchmarks/camera/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime(t_start)),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "uptime_before": load_before, "uptime_after": load_after, "note": args.note,
        "video": VIDEO.name, "width": W, "num_threads": args.num_threads, "scenes": rows, "id_switches": switches,
        "wall_s": time.time() - t_start,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_name("results.json").write_text(json.dumps(res, indent=2) + "\n")
    args.out.write_text(render(res))
    print(f"wrote {args.out} and {args.out.with_name('results.json')}")
    return 0


def _load_note(uptime_line: str) -> str:
    """Whether the CPU was quiet when the run started (1-minute load below half the cores)."""
    try:
        load1 = float(uptime_line.rsplit("load average:", 1)[1].split(",")[0])
    except (IndexError, ValueError):
        return "CPU load before the run unknown:"
    if load1 < 0.5 * (os.cpu_count() or 1):
        return "The CPU was quiet when the run started (no other work on the cores):"
    return ("**The machine was shared with other work during the run** (other jobs on the same cores), "
            "so these numbers are slower and noisier than on a quiet CPU:")


def render(res: dict) -> str:
    f = lambda x: "n/a" if not np.isfinite(x) else f"{x:.0f}"  # noqa: E731
    lines = [
        "# Camera path benchmark (multi-person pose -> recognizer)", "",
        f"Command: `{res['command'].strip()}`  ", f"Date (UTC): {res['date_utc']}; machine: {res['machine']}; "
        f"TFLite threads per model: {res['num_threads']}; video `{res['video']}` at {res['width']} px width.", "",
        _load_note(res["uptime_before"]), "",
        f"- before: `{res['uptime_before']}`", f"- after: `{res['uptime_after']}`", "",
        "| people | detect every | image | people found (mean / max) | pose fps | pose p50 / p99 ms | pose CPU ms / frame (all threads) | detect / landmarks / track p50 ms | image -> action p50 / p99 / max ms (results) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["scenes"].values():
        st = r["stage_ms_p50"]
        lines.append(
            f"| {r['people']} | {r['detect_every']} | {r['image_size']} | {r['people_mean']:.2f} / {r['people_max']} | "
            f"{r['pose_fps']:.1f} | {f(r['pose_ms_p50'])} / {f(r['pose_ms_p99'])} | {f(r['pose_cpu_ms_mean'])} | "
            f"{f(st['detect'])} / {f(st['landmarks'])} / {st['track']:.1f} | "
            f"{f(r['image_to_action_ms_p50'])} / {f(r['image_to_action_ms_p99'])} / {f(r['image_to_action_ms_max'])} "
            f"({r['action_results']}) |")
    lines += ["", "Id switches over the whole demo video (230 frames; ground truth by position, "
              "`pgfa_ros.multipose.sports2d_person`):", "",
              "| detect every | id switches | frames tracked (man / woman) | ids per person | tracks started | fps |",
              "|---|---|---|---|---|---|"]
    for k, v in res["id_switches"].items():
        lines.append(f"| {k.rsplit('_', 1)[1]} | {v['switches']} | {v['frames_tracked']['man']} / "
                     f"{v['frames_tracked']['woman']} | man {v['ids']['man']}, woman {v['ids']['woman']} | "
                     f"{v['tracks_started']} | {v['fps']:.1f} |")
    if res.get("note"):
        lines += ["", f"Note: {res['note']}"]
    lines += ["", f"Wall time of the run: {res['wall_s']:.0f} s. See README.md for the method and how to read it.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
