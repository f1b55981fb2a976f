"""``pgfa-demo``: a real video -> Image messages -> pose_estimator -> recognizer, live, in one process.

Runs on a fresh clone with nothing but the repository: the committed default checkpoint
(``pgfa_ros/assets/multi_source_default.safetensors``, trained on four real sources), the
committed BSD-licensed video ``pgfa_ros/assets/sports2d_demo.mp4`` (licence in
``assets/LICENSE-sports2d.txt``) and the label set ``assets/demo_labels.yaml`` (ten labels an
HRI robot would name: seven of the checkpoint's classes plus zero-shot classes that exist only as
a sentence: "jumping jacks", ...).

The nodes are the real ones, on real topics, started by the :mod:`pgfa_ros.launcher` machinery
(one rclpy context and executor, ROS 2 composition style)::

    video_publisher --/demo/image--> pose_estimator --/pose_estimator/skeleton--> recognizer
                                                    --/pose_estimator/image_points--+
    recognizer --/recognizer/actions--> demo monitor (prints; draws the annotated output)

The pose estimator tracks several people (MoveNet MultiPose + MediaPipe landmarks, stable ids;
see :mod:`pgfa_ros.multipose`); each person is a body of the recognizer.

By default frames go out in *lockstep* (``--rate 0``): the next frame is published when the
pose estimator has answered the previous one, so every frame is used whatever the CPU speed and
the stamps keep the video's own timing. ``--rate 1`` plays in real time instead (the pose node
then drops the frames it cannot keep up with, as with a live camera). ``--video 0`` (or
``/dev/videoN``) opens a live camera: real time, stamped with the clock, until Ctrl-C,
``--max-frames`` or ``--timeout``.

Each result is printed as it arrives (video time of the window's last frame, body, top label and
score, runners-up); the annotated output (each person's skeleton in its own colour, its id and
its current label) is written to ``--out`` (``.gif`` or ``.mp4``; default ``out/demo.gif``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pgfa_ros.recognizer_params import DEFAULT_CHECKPOINT as _DEFAULT_CHECKPOINT
from pgfa_ros.recognizer_params import PARAMS

ASSETS = Path(__file__).resolve().parent / "assets"
DEFAULT_VIDEO = ASSETS / "sports2d_demo.mp4"
DEFAULT_LABELS = ASSETS / "demo_labels.yaml"
DEFAULT_CHECKPOINT = Path(_DEFAULT_CHECKPOINT)

IMAGE_TOPIC = "/demo/image"
SKELETON_TOPIC = "/pose_estimator/skeleton"
POINTS_TOPIC = "/pose_estimator/image_points"
ACTIONS_TOPIC = "/recognizer/actions"

__all__ = ["main", "build_label_set", "build_params", "label_summary", "parse_args", "is_camera"]


def is_camera(video) -> bool:
    """``--video`` names a live camera: an OpenCV device index ("0") or ``/dev/videoN``."""
    v = str(video)
    return v.isdigit() or v.startswith("/dev/video")


# ---------------------------------------------------------------------------- labels and params
def build_label_set(labels_arg: str | None, checkpoint_labels: list[str]) -> tuple[list[str], list[str], set[str]]:
    """``(names, descriptions, zero_shot_names)`` for the recognizer.

    ``labels_arg``: what ``pgfa-bag eval --labels`` takes (one parser), but the checkpoint's
    classes are included unless the file says ``include_checkpoint_labels: false``. An empty description
    means "the checkpoint's training description, else the name itself".
    """
    from pgfa_ros.bag.evaluate import BagError, merge_labels, parse_label_set

    try:
        spec = parse_label_set(str(labels_arg or DEFAULT_LABELS), include_default=True)
    except BagError as e:
        raise ValueError(str(e)) from e
    names, descs = merge_labels(checkpoint_labels, spec.names, spec.descriptions, spec.include_checkpoint_labels)
    if not names:
        raise ValueError("the label set is empty")
    return names, descs, set(names) - set(checkpoint_labels)


def build_params(args, names: list[str], descs: list[str], fps: float = 30.0) -> dict:
    """The ROS 2 parameters file (as a dict) that the launcher starts.

    In lockstep every frame is processed, so windows are ``--window`` frames. In real time (a
    camera, ``--rate`` > 0) the pose node skips the frames it cannot keep up with, so windows are
    time-based instead: ``--window`` frames of the source's ``fps`` in seconds, whatever rate
    the skeletons actually come at.
    """
    lockstep = args.rate == 0 and not is_camera(args.video)
    vp = {"video_path": str(args.video), "image_topic": IMAGE_TOPIC, "frame_id": "camera", "encoding": "bgr8",
          "rate": float(args.rate) if not is_camera(args.video) else 1.0, "loop": False, "max_width": int(args.width),
          "start_frame": int(args.start_frame), "max_frames": int(args.max_frames), "stamp_mode": "video"}
    if lockstep:
        vp.update(ack_topic=SKELETON_TOPIC, ack_timeout=5.0)
    params = {
        "pgfa_launch": {"ros__parameters": {"nodes": ["video_publisher", "pose_estimator", "recognizer"]}},
        "video_publisher": {"ros__parameters": vp},
        "pose_estimator": {"ros__parameters": {
            "image_topic": IMAGE_TOPIC, "skeleton_topic": SKELETON_TOPIC, "image_points_topic": POINTS_TOPIC,
            "max_people": int(args.max_people), "publish_empty": True, "report_period": 0.0,
            # lockstep: never lose a frame; real time: keep only the newest frame, like a camera
            "reliable_input": lockstep, "queue_depth": 2 if lockstep else 1}},
        "recognizer": {"ros__parameters": {
            "checkpoint": str(args.checkpoint), "layout": "mediapipe_33", "skeleton_topic": SKELETON_TOPIC,
            "mode": args.mode, "labels": names, "descriptions": descs, "top_k": int(args.top_k),
            "seen_margin": float(args.seen_margin),
            "window_frames": int(args.window),
            "window_seconds": 0.0 if lockstep else float(args.window) / float(fps or 30.0),
            "stride_frames": int(args.stride),
            "body_timeout": 2.0, "publish_markers": True, "num_threads": 1,
            # lockstep plays slower than real time on a slow CPU: forget a person on video time
            "expire_clock": "stamp" if lockstep else "receive",
            "alert_threshold": 0.5, "alert_consecutive": 3}},
    }
    if "falling down" in names:  # the recognizer refuses an alert class outside the label set
        params["recognizer"]["ros__parameters"]["alert_classes"] = ["falling down"]
    return params


# ---------------------------------------------------------------------------- progress and output
class Progress:
    """A one-line progress bar on stderr (a line every 20 % when stderr is not a terminal)."""

    def __init__(self, total: int, enabled: bool = True, width: int = 30):
        self.total, self.enabled, self.width = max(0, total), enabled, width
        self.tty = sys.stderr.isatty()
        self.n = 0
        self._shown = False
        self._last_step = -1
        self.t0 = time.monotonic()

    def _line(self) -> str:
        el = time.monotonic() - self.t0
        if self.total:
            f = min(1.0, self.n / self.total)
            bar = "#" * int(f * self.width) + "-" * (self.width - int(f * self.width))
            return f"[{bar}] {self.n}/{self.total} frames  {el:5.1f} s  {self.n / max(el, 1e-6):4.1f} fps"
        return f"{self.n} frames  {el:5.1f} s"

    def update(self, n: int) -> None:
        self.n = n
        if not self.enabled:
            return
        if self.tty:
            sys.stderr.write("\r\033[K" + self._line())
            sys.stderr.flush()
            self._shown = True
        elif self.total:
            step = int(5 * self.n / self.total)
            if step != self._last_step:
                self._last_step = step
                print(self._line(), file=sys.stderr, flush=True)

    def clear(self) -> None:
        if self.enabled and self.tty and self._shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.tty and self._shown:
            sys.stderr.write("\r\033[K" + self._line() + "\n")
            sys.stderr.flush()


@dataclass
class Recording:
    """What the monitor saw: output frames, 2D landmarks and results, keyed by stamp (ns)."""

    frames: dict[int, np.ndarray] = field(default_factory=dict)  # stamp_ns -> BGR frame (output size)
    points: dict[int, dict[int, np.ndarray]] = field(default_factory=dict)  # stamp_ns -> {body: (33, 4)}
    results: list[dict] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)
    skeleton_msgs: int = 0
    images: int = 0
    t0: float | None = None  # stamp (s) of the first image


def make_monitor(context, rec: Recording, on_result, keep_every: int, out_width: int):
    """A node that records images / landmarks and reports results (created on ``context``)."""
    from rclpy.node import Node
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from std_msgs.msg import String
    from visualization_msgs.msg import MarkerArray

    from .pose import image_msg_to_ndarray, resize_max_width
    from .skeleton_msgs import stamp_ns

    node = Node("demo_monitor", context=context)
    reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE)

    def on_image(msg):
        rec.images += 1
        t = stamp_ns(msg.header.stamp)
        if rec.t0 is None:
            rec.t0 = t * 1e-9
        if (rec.images - 1) % keep_every:
            return
        try:
            img = image_msg_to_ndarray(msg)
        except ValueError:
            return
        if msg.encoding == "rgb8":
            img = img[:, :, ::-1]
        elif msg.encoding == "mono8":
            img = np.repeat(img[:, :, None], 3, axis=2)
        rec.frames[t] = np.ascontiguousarray(resize_max_width(np.asarray(img), out_width))

    def on_points(msg):
        if not msg.markers:
            return
        bodies: dict[int, np.ndarray] = {}
        for m in msg.markers:
            b, j = divmod(int(m.id), 100)
            if j < 33:
                p = m.pose.position
                bodies.setdefault(b, np.full((33, 4), np.nan, np.float32))[j] = (p.x, p.y, p.z, m.color.a)
        rec.points[stamp_ns(msg.markers[0].header.stamp)] = bodies

    def on_skeleton(_msg):
        rec.skeleton_msgs += 1

    def on_action(msg):
        try:
            d = json.loads(msg.data)
        except ValueError:
            return
        rec.results.append(d)
        on_result(d)

    def on_alert(msg):
        try:
            rec.alerts.append(json.loads(msg.data))
        except ValueError:
            pass

    node.create_subscription(Image, IMAGE_TOPIC, on_image, reliable)
    node.create_subscription(MarkerArray, POINTS_TOPIC, on_points, reliable)
    node.create_subscription(MarkerArray, SKELETON_TOPIC, on_skeleton, reliable)
    node.create_subscription(String, ACTIONS_TOPIC, on_action, reliable)
    node.create_subscription(String, "/recognizer/alerts", on_alert, reliable)
    return node


# the recognizer's counters that mean a person's frames or windows never became a result
_LOSS_COUNTS = ("windows_dropped", "body_lost", "partial_window_discarded", "gap_reset")


def window_losses(snapshot: dict) -> dict[str, int]:
    """The nonzero loss counters of a recognizer diagnostics snapshot (printed, and in --json)."""
    return {k: int(snapshot[k]) for k in _LOSS_COUNTS if int(snapshot.get(k, 0) or 0)}


def label_summary(results: list[dict]) -> dict[int, list[tuple[str, int]]]:
    """Per body: its top labels with the number of windows each won, most frequent first."""
    from collections import Counter

    counts: dict[int, Counter] = {}
    for d in results:
        top = (d.get("topk") or [{"label": "(none)"}])[0]["label"]
        counts.setdefault(int(d.get("body_id", 0)), Counter())[top] += 1
    return {b: c.most_common() for b, c in sorted(counts.items())}


def zero_shot_ranks(results: list[dict], zero_shot: set[str]) -> dict[int, list[int | None]]:
    """Per body and window: the rank (1 = best) of its best zero-shot label among the reported
    top-k, None when none is in it. A sentence label that never wins shows how far off it is."""
    ranks: dict[int, list[int | None]] = {}
    for d in results:
        got = [i + 1 for i, t in enumerate(d.get("topk") or []) if t.get("label") in zero_shot]
        ranks.setdefault(int(d.get("body_id", 0)), []).append(got[0] if got else None)
    return dict(sorted(ranks.items()))


def format_result(d: dict, t0: float | None, zero_shot: set[str]) -> str:
    topk = d.get("topk") or []
    t = float(d.get("stamp", 0.0)) - (t0 or 0.0)
    if not topk:
        return f"{t:6.2f} s  body {d.get('body_id')}: (no labels)"
    best = topk[0]
    tag = " [zero-shot]" if best["label"] in zero_shot else ""
    rest = ", ".join(f"{e['label']} {e['score']:.2f}" for e in topk[1:])
    return (f"{t:6.2f} s  body {d.get('body_id')}: {best['label']} {best['score']:.2f}{tag}"
            + (f"   ({rest})" if rest else ""))


_PALETTE = ((80, 255, 80), (255, 160, 60), (60, 200, 255), (255, 80, 255), (80, 255, 255), (180, 120, 255))


def body_color(body_id: int) -> tuple[int, int, int]:
    """A BGR colour per body id (the same person keeps its colour)."""
    return _PALETTE[int(body_id) % len(_PALETTE)]


def render(rec: Recording, out: Path, fps: float, zero_shot: set[str], credit: bool = True) -> int:
    """Write the annotated frames to ``out`` (.gif or .mp4); returns the number of frames."""
    import cv2

    from .pose import draw_skeleton

    stamps = sorted(rec.frames)
    if not stamps:
        raise RuntimeError("no frames were received: nothing to render")
    results = sorted(rec.results, key=lambda d: float(d.get("stamp", 0.0)))
    res_t = np.array([float(d.get("stamp", 0.0)) for d in results])
    t0 = rec.t0 or stamps[0] * 1e-9
    most = max([len(b) for b in rec.points.values()] + [1])
    n_lines = max(2, min(6, most))
    frames = []
    for s in stamps:
        img = rec.frames[s].copy()
        h, w = img.shape[:2]
        # the latest result published for a window ending at or before this frame, per body
        k = int(np.searchsorted(res_t, s * 1e-9 + 1e-6, side="right"))
        current: dict[int, dict] = {}
        for d in results[:k]:
            current[int(d.get("body_id", 0))] = d
        scale = max(0.4, w / 1100)
        for bid, pts in sorted((rec.points.get(s) or {}).items()):
            color = body_color(bid)
            draw_skeleton(img, pts, color=color, thickness=max(1, w // 320))
            ok = np.isfinite(pts[:, :2]).all(axis=1) & (pts[:, 3] >= 0.3)
            if ok.any():
                u = float(np.median(pts[ok, 0])) * w
                v = float(np.min(pts[ok, 1])) * h
                d = current.get(bid)
                txt = f"id {bid}" + (f": {d['topk'][0]['label']}" if d and d.get("topk") else "")
                (tw, th), _ = cv2.getTextSize(txt, cv2.FONT_HERSHEY_SIMPLEX, scale * 0.8, 1)
                x0 = int(min(max(0, u - tw / 2), max(0, w - tw - 2)))
                y0 = int(max(th + 4, v - 6))
                cv2.rectangle(img, (x0 - 2, y0 - th - 4), (x0 + tw + 2, y0 + 4), (0, 0, 0), -1)
                cv2.putText(img, txt, (x0, y0), cv2.FONT_HERSHEY_SIMPLEX, scale * 0.8, color, 1, cv2.LINE_AA)
        # the labels go in a panel under the picture (never over a person at the top of the frame):
        # the bodies in this frame, and those whose last result is under a second old
        here = set((rec.points.get(s) or {}).keys())
        shown = {b: d for b, d in current.items() if b in here or s * 1e-9 - float(d.get("stamp", 0.0)) < 1.0}
        line = int(22 * scale / 0.6)
        panel = np.zeros((line * (n_lines + 1) + 8, w, 3), np.uint8)
        if not shown:
            cv2.putText(panel, "collecting the first window..." if not current else "(no current result)",
                        (8, line), cv2.FONT_HERSHEY_SIMPLEX, scale, (200, 200, 200), 1, cv2.LINE_AA)
        for i, (bid, d) in enumerate(sorted(shown.items())[:n_lines]):
            best = (d.get("topk") or [{"label": "?", "score": 0.0}])[0]
            zs = " (zero-shot)" if best["label"] in zero_shot else ""
            txt = f"id {bid}: {best['label']} {best['score']:.2f}{zs}"
            cv2.putText(panel, txt, (8, line * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        body_color(bid), max(1, int(scale * 2)), cv2.LINE_AA)
        cv2.putText(panel, f"t={s * 1e-9 - t0:5.2f}s  PGFA zero-shot" + (" | video: sports2d (BSD-3)" if credit else ""),
                    (8, panel.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, scale * 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        img = np.vstack([img, panel])
        frames.append(img)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".gif":
        from PIL import Image

        pil = [Image.fromarray(f[:, :, ::-1]).quantize(colors=128, method=Image.Quantize.MEDIANCUT) for f in frames]
        pil[0].save(out, save_all=True, append_images=pil[1:], duration=int(round(1000 / fps)), loop=0)
    else:
        h, w = frames[0].shape[:2]
        vw = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        if not vw.isOpened():
            raise RuntimeError(f"cannot write video {out}")
        for f in frames:
            vw.write(f)
        vw.release()
    return len(frames)


# ---------------------------------------------------------------------------- main
def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="pgfa-demo",
        description="Zero-shot action recognition on a real video or a live camera: Image messages -> "
                    "multi-person pose_estimator (stable ids) -> recognizer, in one process on real ROS 2 "
                    "topics. Prints each person's results and writes an annotated GIF/MP4.")
    p.add_argument("--video", default=str(DEFAULT_VIDEO),
                   help="video file (default: the packaged demo video), or a live camera: an OpenCV device "
                        "index such as 0, or /dev/videoN (real time; stop with Ctrl-C, --max-frames or --timeout)")
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT,
                   help="PGFA checkpoint (default: the packaged four-source model)")
    p.add_argument("--labels", default=None,
                   help="label set: a YAML file like pgfa_ros/assets/demo_labels.yaml, or comma-separated "
                        "class names added to the checkpoint's (default: the packaged demo label set)")
    p.add_argument("--out", type=Path, default=Path("out/demo.gif"), help="annotated output, .gif or .mp4")
    p.add_argument("--rate", type=float, default=0.0,
                   help="playback speed; 0 (default) = lockstep, every frame as fast as the pose node goes")
    p.add_argument("--mode", choices=("text", "prototype_bank"), default="text")
    p.add_argument("--seen-margin", type=float, default=PARAMS["seen_margin"].default,
                   help="the recognizer's seen_margin (default %(default)s; 0 = trained classes get no handicap "
                        "against the zero-shot sentences)")
    p.add_argument("--top-k", type=int, default=3,
                   help="labels (with probabilities) kept per result in --json; a large value shows where "
                        "the zero-shot sentences rank")
    p.add_argument("--max-people", type=int, default=4, help="people tracked at most (default 4)")
    p.add_argument("--window", type=int, default=45, help="window length in frames (default 45)")
    p.add_argument("--stride", type=int, default=10, help="frames between two windows (default 10)")
    p.add_argument("--start-frame", type=int, default=0)
    p.add_argument("--max-frames", type=int, default=0, help="frames to use (0 = the whole video)")
    p.add_argument("--width", type=int, default=640, help="width of the published images (default 640)")
    p.add_argument("--out-width", type=int, default=480, help="width of the annotated output (default 480)")
    p.add_argument("--out-fps", type=float, default=10.0,
                   help="frames per second of the output (frames are subsampled; default 10)")
    p.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", type=Path, default=None,
                   help="also write every result and the per-person label summary to this JSON file")
    p.add_argument("--verbose", action="store_true", help="show the nodes' INFO logs")
    args = p.parse_args(argv)
    if args.rate < 0:
        p.error("--rate must be >= 0")
    if args.window < 2 or args.stride < 1:
        p.error("--window must be >= 2 and --stride >= 1")
    if args.max_people < 1:
        p.error("--max-people must be >= 1")
    if args.top_k < 1:
        p.error("--top-k must be >= 1")
    if not 0.0 <= args.seen_margin <= 1.0:
        p.error("--seen-margin must be in [0, 1]")
    # checked before the run, not after a minute of pose estimation
    if args.out.suffix.lower() not in (".gif", ".mp4") or args.out.is_dir():
        p.error(f"--out must be a .gif or .mp4 file path, got {args.out}")
    if is_camera(args.video):
        if args.start_frame:
            p.error("--start-frame does not apply to a live camera")
    else:
        args.video = Path(args.video)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # Quiet MediaPipe/TFLite and keep the demo's DDS traffic on this machine.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    say = lambda msg: print(f"[pgfa-demo] {msg}", file=sys.stderr, flush=True)  # noqa: E731

    live = is_camera(args.video)
    if not live and not args.video.is_file():
        say(f"video not found: {args.video}")
        return 2
    from pgfa_models.fileio import check_outputs

    try:
        check_outputs(args.out, args.json)  # now, not after the whole video
    except OSError as exc:
        say(f"bad output path: {exc}")
        return 2
    if not args.checkpoint.is_file():
        say(f"checkpoint not found: {args.checkpoint} (train one with pgfa-train, or pass --checkpoint)")
        return 2
    from pgfa_models.checkpoint import CheckpointError, read_meta

    try:
        meta = read_meta(args.checkpoint)
    except CheckpointError as exc:
        say(str(exc))
        return 2
    try:
        names, descs, zero_shot = build_label_set(args.labels, list(meta.labels))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        say(f"bad --labels: {exc}")
        return 2

    import cv2
    import yaml

    if live:  # the camera is opened once, by video_publisher
        fps, n_video = 30.0, 0
    else:
        cap = cv2.VideoCapture(str(args.video))
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 30.0) or 30.0
        n_video = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        cap.release()
    total = max(0, n_video - args.start_frame)
    if args.max_frames > 0:
        total = min(total, args.max_frames) if total else args.max_frames
    keep_every = max(1, int(round(fps / args.out_fps))) if args.out_fps > 0 else 1
    out_fps = fps / keep_every

    say(f"{'camera' if live else 'video'} {args.video if live else args.video.name}: {total or 'until stopped,'} frames at {fps:g} fps; checkpoint {args.checkpoint.name} "
        f"({meta.text_model}); {len(names)} labels, {len(zero_shot)} of them zero-shot: {sorted(zero_shot)}")
    say("starting video_publisher, pose_estimator and recognizer (loading the model and text features)...")

    from .launcher import LaunchError, Launcher, load_launch_file

    rec = Recording()
    progress = Progress(total, enabled=not args.no_progress)

    def on_result(d):
        progress.clear()
        print(format_result(d, rec.t0, zero_shot), flush=True)
        progress.update(rec.skeleton_msgs)

    t_start = time.monotonic()
    losses: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="pgfa-demo-") as tmp:
        params = Path(tmp) / "demo.yaml"
        params.write_text(yaml.safe_dump(build_params(args, names, descs, fps), sort_keys=False))
        ros_args = [] if args.verbose else ["--ros-args", "--log-level", "warn"]
        launcher = Launcher(load_launch_file(params), args=ros_args,
                            logger=(say if args.verbose else (lambda m: None)))
        try:
            launcher.add_node(make_monitor(launcher.context, rec, on_result, keep_every, args.out_width))
            try:
                launcher.start()
            except LaunchError as exc:
                say(str(exc))
                return 1
            say(f"ready in {time.monotonic() - t_start:.1f} s; results (video time, body, top label and "
                "score, runners-up):")
            vp = launcher.node("video_publisher")
            progress.t0 = time.monotonic()
            state = {"last_n": -1, "last_change": time.monotonic(), "done_at": None}

            def finished() -> bool:
                now = time.monotonic()
                progress.update(rec.skeleton_msgs)
                n = len(rec.results) + rec.skeleton_msgs
                if n != state["last_n"]:
                    state["last_n"], state["last_change"] = n, now
                if not vp.done:
                    return False
                if state["done_at"] is None:
                    state["done_at"] = now
                # drain: the last frames' skeletons and the inference thread's last windows
                return now - state["last_change"] > 1.5 or now - state["done_at"] > 15.0

            try:
                completed = launcher.spin(until=finished, timeout=args.timeout)
            except KeyboardInterrupt:
                completed = False
                say("interrupted")
            progress.close()
            if not completed:
                say(f"stopped before the end of the video ({rec.skeleton_msgs}/{total} frames)")
            losses = window_losses(launcher.node("recognizer").diagnostics_snapshot())
            if losses:
                say("the recognizer lost windows: " + ", ".join(f"{k} {v}" for k, v in losses.items()))
        finally:
            launcher.shutdown()

    elapsed = time.monotonic() - t_start
    bodies = sorted({int(d.get("body_id", 0)) for d in rec.results})
    say(f"{rec.skeleton_msgs} frames through the pose estimator, {len(rec.results)} results for bodies "
        f"{bodies} in {elapsed:.1f} s")
    for a in rec.alerts:
        say(f"alert: body {a.get('body_id')} {a.get('label')} ({a.get('score', 0):.2f})")
    summary = label_summary(rec.results)
    for b, counts in summary.items():
        n = sum(c for _, c in counts)
        say(f"body {b}: " + ", ".join(f"{lab} {c}/{n}" for lab, c in counts[:4]))
    ranks = zero_shot_ranks(rec.results, zero_shot) if zero_shot else {}
    for b, r in ranks.items():
        shown = ", ".join("-" if x is None else str(x) for x in r)
        say(f"body {b}: rank of the best zero-shot label per window (of the top {args.top_k}; - = below): {shown}")
    if args.json is not None:
        from pgfa_models.fileio import atomic_write_text

        atomic_write_text(args.json, json.dumps({
            "video": str(args.video), "checkpoint": str(args.checkpoint), "labels": names, "zero_shot": sorted(zero_shot),
            "window": args.window, "stride": args.stride, "frames": rec.skeleton_msgs,
            "summary": {str(b): dict(c) for b, c in summary.items()},
            "zero_shot_rank": {str(b): r for b, r in ranks.items()}, "losses": losses, "results": rec.results}, indent=1) + "\n")
    if not rec.results:
        say("no results: no window of a person was complete (a shorter --window, or more frames, may help)")
    try:
        n = render(rec, args.out, out_fps, zero_shot, credit=not live and Path(args.video).name == DEFAULT_VIDEO.name)
    except (RuntimeError, OSError) as exc:
        say(f"cannot write {args.out}: {exc}")
        return 1
    size = args.out.stat().st_size
    say(f"wrote {args.out} ({n} frames, {size / 1e6:.1f} MB)")
    return 0 if rec.results else 1


if __name__ == "__main__":
    sys.exit(main())
