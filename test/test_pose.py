"""Camera path helpers: Image decoding and MediaPipe landmarks -> mediapipe_33 joints."""
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pgfa_ros.pose import ImageDecodeError, fill_image_msg, image_msg_to_ndarray, image_msg_to_rgb, landmarks_to_joints

VIDEO = Path(__file__).resolve().parents[1] / "pgfa_ros" / "assets" / "sports2d_demo.mp4"


def _msg(img, enc):
    return fill_image_msg(SimpleNamespace(), img, enc)


def test_decode_rgb_bgr_mono():
    rgb = np.random.default_rng(0).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    assert np.array_equal(image_msg_to_rgb(_msg(rgb, "rgb8")), rgb)
    assert np.array_equal(image_msg_to_rgb(_msg(rgb[:, :, ::-1], "bgr8")), rgb)
    mono = rgb[:, :, 0]
    out = image_msg_to_rgb(_msg(mono, "mono8"))
    assert out.shape == (4, 5, 3) and np.array_equal(out[:, :, 2], mono)


def test_decode_row_padding():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    padded = np.zeros((2, 12), np.uint8)
    padded[:, :9] = img.reshape(2, 9)
    msg = SimpleNamespace(height=2, width=3, encoding="rgb8", step=12, data=padded.tobytes())
    assert np.array_equal(image_msg_to_ndarray(msg), img)


@pytest.mark.parametrize("kw,reason", [
    (dict(encoding="yuv422"), "bad_encoding"),
    (dict(width=0), "bad_size"),
    (dict(step=2), "bad_size"),
    (dict(data=b"\0" * 10), "short_data"),
])
def test_bad_images_raise_decode_error(kw, reason):
    base = dict(height=4, width=5, encoding="rgb8", step=15, data=b"\0" * 60)
    base.update(kw)
    with pytest.raises(ImageDecodeError) as e:
        image_msg_to_ndarray(SimpleNamespace(**base))
    assert e.value.reason == reason


def test_landmarks_visibility_to_nan():
    a = np.zeros((33, 4))
    a[:, 3] = 1.0
    a[5, 3] = 0.01
    j = landmarks_to_joints(a, min_visibility=0.5)
    assert j.shape == (33, 3) and np.isnan(j[5]).all() and np.isfinite(np.delete(j, 5, 0)).all()
    assert np.isfinite(landmarks_to_joints(a)).all()


@pytest.mark.slow
def test_mediapipe_finds_person_head_above_hips():
    cv2 = pytest.importorskip("cv2")
    mp = pytest.importorskip("mediapipe")
    from pgfa_models.layouts import map_to_ntu

    cap = cv2.VideoCapture(str(VIDEO))
    pose = mp.solutions.pose.Pose(model_complexity=1, static_image_mode=False)
    found = 0
    for i in range(60):
        ok, frame = cap.read()
        assert ok
        if i < 30 or i % 5:
            continue
        msg = _msg(cv2.resize(frame, (640, 360)), "bgr8")
        res = pose.process(image_msg_to_rgb(msg))
        if res.pose_world_landmarks is None:
            continue
        found += 1
        ntu = np.asarray(map_to_ntu(landmarks_to_joints(res.pose_world_landmarks)[None], "mediapipe_33")).reshape(-1, 25, 3)[0]
        assert ntu[3, 1] > ntu[0, 1] + 0.3  # NTU y up: head (3) well above spine base (0)
        assert ntu[3, 1] > ntu[14, 1] and ntu[3, 1] > ntu[18, 1]  # above the ankles
    pose.close()
    assert found >= 4
