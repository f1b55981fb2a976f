"""Multi-person 3D pose (pgfa_ros.multipose): model files, geometry, tracking, the real video."""
from pathlib import Path

import numpy as np
import pytest

from pgfa_ros import multipose as mpz
from pgfa_ros.multipose import (Camera, Detection, ModelFileError, MultiPoseEstimator, box_iou, count_id_switches,
                                roi_matrix, solve_translation, sports2d_person)

SHARED_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos" / "sports2d_demo.mp4"


def test_model_files_come_from_packages_and_are_hash_checked(monkeypatch):
    import hashlib

    data = mpz.movenet_model_bytes()
    assert hashlib.sha256(data).hexdigest() == mpz.MOVENET_SHA256 and len(data) > 1_000_000
    assert mpz.pose_landmark_model_path().is_file()
    monkeypatch.setattr(mpz, "MOVENET_SHA256", "0" * 64)
    with pytest.raises(ModelFileError, match="sha256"):
        mpz.movenet_model_bytes()
    monkeypatch.setattr(mpz, "POSE_LANDMARK_SHA256", "0" * 64)
    with pytest.raises(ModelFileError, match="sha256"):
        mpz.pose_landmark_model_path()
    monkeypatch.setattr(mpz, "MOVENET_PACKAGE", "no_such_package_pgfa")
    with pytest.raises(ModelFileError, match="not installed"):
        mpz.movenet_model_bytes()


def test_roi_matrix_upright_and_turned():
    m = roi_matrix((100.0, 50.0), 256.0, (0.0, -1.0))  # upright, 1 crop px = 1 image px
    assert np.allclose(m, [[1, 0, -28], [0, 1, -78]])
    # a person lying with the head to the image's right: crop-up must map to image +x
    m = roi_matrix((100.0, 50.0), 128.0, (1.0, 0.0))
    top_centre = m @ np.array([128.0, 0.0, 1.0])
    assert np.allclose(top_centre, [100 + 64, 50])


def test_solve_translation_recovers_a_known_position():
    rng = np.random.default_rng(0)
    world = rng.normal(0, 0.4, (33, 3))
    t_true = np.array([0.7, -0.3, 4.2])
    cam = Camera.from_fov(640, 360, 60.0)
    p = world + t_true
    px = np.stack([cam.fx * p[:, 0] / p[:, 2] + cam.cx, cam.fy * p[:, 1] / p[:, 2] + cam.cy], axis=1)
    assert np.allclose(solve_translation(world, px, cam), t_true, atol=1e-6)
    px_nan = px.copy()
    px_nan[:30] = np.nan
    assert solve_translation(world, px_nan, cam) is None  # too few points
    assert solve_translation(world, px, cam, z_range=(5.0, 50.0)) is None  # outside the range
    # intrinsics scaled with the image (a half-size image) give the same position
    assert np.allclose(solve_translation(world, px / 2, cam.scaled(0.5)), t_true, atol=1e-6)
    with pytest.raises(ValueError):
        Camera.from_fov(640, 360, 0.0)


def test_box_iou():
    a = np.array([[0, 0, 10, 10]])
    assert box_iou(a, np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])).tolist() == [[1.0, 1 / 3, 0.0]]


class _Scene:
    """A fake world: the true boxes of the current frame; the detector sees the visible ones,
    the landmark model finds the visible person nearest its crop centre (within the crop)."""

    def __init__(self, frames, hidden=None):
        self.frames, self.hidden, self.k = frames, hidden or (lambda k, i: False), 0

    def visible(self):
        boxes = self.frames[min(self.k, len(self.frames) - 1)]
        return [np.asarray(b, float) for i, b in enumerate(boxes) if not self.hidden(self.k, i)]

    def detector(self, rgb):
        return [Detection(box=b, score=0.9, keypoints=None) for b in self.visible()]

    def landmarks(self, rgb, m):
        c = m @ np.array([128.0, 128.0, 1.0])
        side = float(np.hypot(m[0, 0], m[1, 0])) * 256
        best = None
        for b in self.visible():
            d = np.hypot(*(c - (b[:2] + b[2:]) / 2))
            if d < side / 2 and (best is None or d < best[0]):
                best = (d, b)
        if best is None:
            return 0.0, np.zeros((39, 4)), np.zeros((33, 3))
        b = best[1]
        px = np.zeros((39, 4))
        px[:, 0] = np.linspace(b[0], b[2], 39)
        px[:, 1] = np.linspace(b[1], b[3], 39)
        px[:, 3] = 1.0
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        px[33] = (cx, cy, 0, 1)
        px[34] = (cx, b[1], 0, 1)
        return 1.0, px, np.zeros((33, 3))


def _run(frames, hidden=None, **kw):
    """Track ``frames`` of true boxes; returns ({true person index: [track ids]}, estimator)."""
    kw.setdefault("translation", False)
    scene = _Scene(frames, hidden)
    est = MultiPoseEstimator(detector=scene.detector, landmarks=scene.landmarks, **kw)
    img = np.zeros((360, 640, 3), np.uint8)
    seen: dict = {}
    for k in range(len(frames)):
        scene.k = k
        for p in est.process(img):
            ious = box_iou(p.box[None], np.asarray(frames[k], float))[0]
            seen.setdefault(int(np.argmax(ious)), []).append(p.track_id)
    return seen, est


@pytest.mark.parametrize("detect_every", [1, 3])
def test_tracks_keep_ids_and_survive_a_short_occlusion(detect_every):
    # two people walking in opposite directions; person 1 is hidden for 5 frames
    frames = [[[50 + 3 * k, 100, 90 + 3 * k, 200], [500 - 2 * k, 120, 540 - 2 * k, 220]] for k in range(40)]
    seen, _ = _run(frames, hidden=lambda k, i: i == 1 and 15 <= k < 20, max_missed=10, detect_every=detect_every)
    assert count_id_switches(seen)["switches"] == 0, seen
    assert len(seen[0]) == 40 and len(seen[1]) == 35 and seen[0][0] != seen[1][0]


def test_a_track_expires_and_a_new_person_gets_a_new_id():
    frames = [[[100, 100, 140, 200]]] * 3 + [[]] * 6 + [[[100, 100, 140, 200]]] * 3
    seen, est = _run(frames, max_missed=3)
    assert seen[0] == [0, 0, 0, 1, 1, 1] and [t.track_id for t in est.tracks] == [1]
    # the same gap within max_missed keeps the id
    seen, _ = _run(frames, max_missed=10)
    assert seen[0] == [0] * 6


def test_max_people_and_bad_parameters():
    boxes = [[[40 + 100 * i, 100, 80 + 100 * i, 200] for i in range(5)]] * 3
    seen, est = _run(boxes, max_people=2)
    assert len(seen) == 2 and len(est.tracks) == 2
    for kw in (dict(max_people=0), dict(detect_every=0), dict(max_missed=-1), dict(translation_smoothing=1.0),
               dict(hfov_deg=500.0)):
        with pytest.raises(ValueError):
            _run(boxes, **kw)


def test_count_id_switches():
    r = count_id_switches({"man": [0, 0, 2, 2, 0], "woman": [1, 1]})
    assert r["switches"] == 2 and r["per_person"] == {"man": 2, "woman": 0} and r["ids"]["man"] == [0, 2]


@pytest.mark.slow
def test_real_video_two_people_stable_ids_and_whole_body_motion():
    """sports2d_demo.mp4 at 640 px: the man on the roof and the woman walking past are both
    tracked with <= 1 id switch; the woman's camera-space position moves right -> left by
    metres, and the man's drops when he jumps off the roof onto the grass (a fall-like drop),
    which hip-centred landmarks cannot show."""
    cv2 = pytest.importorskip("cv2")
    if not SHARED_VIDEO.is_file():
        pytest.skip(f"{SHARED_VIDEO} not present")
    est = MultiPoseEstimator(max_people=4, detect_every=2)
    cap = cv2.VideoCapture(str(SHARED_VIDEO))
    seen = {"man": [], "woman": []}
    woman_x, woman_depth, man_y = [], [], {}
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        rgb = cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA)[:, :, ::-1].copy()
        for p in est.process(rgb):
            who = sports2d_person(i, p.box, 640, 360)
            seen[who].append(p.track_id)
            if who == "woman":
                woman_x.append(float(p.translation[0]))
                woman_depth.append(float(p.translation[2]))
                hips = p.joints[[23, 24]].mean(0)
                assert np.allclose(hips, p.translation, atol=0.05)  # the world origin is the hip centre
            else:
                man_y[i] = float(p.translation[1])
        i += 1
    cap.release()
    assert i == 230
    r = count_id_switches(seen)
    assert r["switches"] <= 1, r
    assert len(seen["man"]) >= 170 and len(seen["woman"]) >= 130, {k: len(v) for k, v in seen.items()}
    assert woman_x[0] - woman_x[-1] > 3.0, (woman_x[0], woman_x[-1])  # walked right -> left
    assert 2.0 < np.median(woman_depth) < 15.0
    on_roof = np.median([y for f, y in man_y.items() if f < 150])
    on_grass = np.median([y for f, y in man_y.items() if f > 200])
    assert on_grass - on_roof > 1.0, (on_roof, on_grass)  # y is down: he came down by more than 1 m


def test_a_full_tracker_gives_a_lost_slot_to_a_new_person():
    # max_people 1: person 0 leaves, person 1 enters at once; the lost track must not block them
    # for its max_missed frames (they are found one frame late: the track is known lost only
    # once its crop comes back empty)
    frames = [[[100, 100, 140, 200]]] * 3 + [[[400, 100, 440, 200]]] * 4
    seen, est = _run(frames, max_people=1, max_missed=30)
    assert seen[0] == [0, 0, 0, 1, 1, 1] and [t.track_id for t in est.tracks] == [1]


def test_bad_images_are_refused_with_a_reason():
    est = MultiPoseEstimator(detector=lambda rgb: [], landmarks=lambda rgb, m: (0.0, None, None), translation=False)
    for bad in (np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10, 3), np.float32),
                np.zeros((2, 2, 3), np.uint8)):
        with pytest.raises(ValueError, match="RGB uint8"):
            est.process(bad)
    assert est.process(np.zeros((20, 20, 3), np.uint8)) == []
