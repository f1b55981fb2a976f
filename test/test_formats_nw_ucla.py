"""NW-UCLA reader and scan against the real copy: joint order, axes, sides, frame rate, quirks."""
import json
from collections import Counter

import numpy as np
import pytest

from gait_helpers import cadences
from pgfa_models.formats import NW_UCLA_CLASSES, read_nw_ucla, scan_nw_ucla
from pgfa_models.formats.nw_ucla import NW_UCLA_ACTION_IDS, NW_UCLA_FPS
from pgfa_models.layouts import map_to_ntu
from pgfa_models.preprocess import preprocess_body

# The 10 sequences of this copy with fewer than 10 frames (found by reading all 1,484).
SHORT = {"a02_s09_e04_v02": 1, "a02_s09_e04_v03": 1, "a01_s10_e00_v03": 6, "a03_s09_e01_v01": 6,
         "a03_s07_e02_v01": 8, "a06_s07_e00_v03": 8, "a11_s02_e01_v01": 8, "a11_s06_e04_v02": 8,
         "a02_s07_e03_v02": 9, "a02_s07_e03_v03": 9}


def _ntu(path):
    x = read_nw_ucla(path).astype(np.float64)
    x[(x == 0).all(-1)] = np.nan  # Kinect writes untracked joints as zeros
    return map_to_ntu(x, "kinect_v1_sdk_20")


def test_classes():
    assert len(NW_UCLA_CLASSES) == 10 == len(NW_UCLA_ACTION_IDS)
    assert NW_UCLA_CLASSES[3] == "walk around" and NW_UCLA_ACTION_IDS[6] == 8


def test_scan_real_directory(nwucla_dir):
    recs = scan_nw_ucla(nwucla_dir)
    assert len(recs) == 1484  # of 1,494 in the full set (README)
    assert Counter(r.view for r in recs) == {1: 516, 2: 504, 3: 464}
    assert {r.subject for r in recs} == set(range(1, 11))
    assert {r.action for r in recs} == set(range(10))
    assert all(NW_UCLA_ACTION_IDS[r.action] == r.action_id for r in recs)
    keys = [(r.action, r.subject, r.episode, r.view) for r in recs]
    assert keys == sorted(keys) and len(set(keys)) == 1484
    assert recs[0].path.name == "a01_s01_e00_v01.json"
    # the JSON label agrees with the scan's class (read_nw_ucla raises otherwise)
    for r in recs[::150]:
        doc = json.loads(r.path.read_text())
        assert doc["label"] == r.action + 1 and doc["file_name"] == r.path.stem
        read_nw_ucla(r.path)


def test_read_real_file_and_readme_numbers(nwucla_dir):
    path = nwucla_dir / "a01_s01_e00_v01.json"
    x = read_nw_ucla(path)
    raw = np.asarray(json.loads(path.read_text())["skeletons"])
    assert x.dtype == np.float32 and x.shape == raw.shape and x.shape[1:] == (20, 3)
    np.testing.assert_allclose(x[3, 7], raw[3, 7], rtol=1e-6)
    # SDK order: joint 3 is the head, 15/19 the feet (README: head 0.62 m, feet -0.6 m)
    assert x[:, 3, 1].mean() == pytest.approx(0.62, abs=0.02)
    assert x[:, [15, 19], 1].mean() == pytest.approx(-0.6, abs=0.05)  # -0.63


def test_short_sequences_are_read_and_rejected_cleanly(nwucla_dir):
    for name, n in SHORT.items():
        x = read_nw_ucla(nwucla_dir / f"{name}.json")
        assert x.shape == (n, 20, 3)
        res = preprocess_body(x, "kinect_v1_sdk_20")
        if n < 5:  # PreprocessConfig.min_frames
            assert res.clip is None and res.reason == "too_few_frames"
        else:
            assert (res.clip is None) == (res.reason is not None)


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_nw_ucla(tmp_path / "a01_s01_e00_v01.json")
    bad = tmp_path / "a01_s01_e00_v01.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="a01_s01_e00_v01.json.*JSON"):
        read_nw_ucla(bad)
    bad.write_text(json.dumps({"file_name": "x", "label": 1}))
    with pytest.raises(ValueError, match="skeletons"):
        read_nw_ucla(bad)
    bad.write_text(json.dumps({"skeletons": [[[0, 0, 0]] * 25], "label": 1}))
    with pytest.raises(ValueError, match=r"\[T\]\[20\]\[3\]"):
        read_nw_ucla(bad)
    bad.write_text(json.dumps({"skeletons": [], "label": 1}))
    with pytest.raises(ValueError, match="T >= 1"):
        read_nw_ucla(bad)
    bad.write_text(json.dumps({"skeletons": [[[0.1, 0.2, 3.0]] * 20], "label": 4}))
    with pytest.raises(ValueError, match="label 4 contradicts action a01"):
        read_nw_ucla(bad)


def test_scan_errors_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        scan_nw_ucla(tmp_path / "nope")
    with pytest.raises(ValueError, match="no NW-UCLA"):
        scan_nw_ucla(tmp_path)
    (tmp_path / "a07_s01_e00_v01.json").write_text("{}")  # a07 is not one of the 10 actions
    (tmp_path / "a12_s02_e01_v03.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("")
    recs = scan_nw_ucla(tmp_path)
    assert [(r.action, r.subject, r.episode, r.view) for r in recs] == [(9, 2, 1, 3)]


def _horizontal_unit(v):
    v = v.copy()
    v[..., 1] = 0
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def test_real_data_up_and_left_right_by_view(nwucla_dir):
    """Up: head far above the feet. Sides, checked against evidence independent of the labels:
    the feet point forward (ankle -> foot), so the facing direction that the hip labels imply,
    (left hip - right hip) x up, must agree with them; and in frames whose feet point at the
    sensor (-z) the subject's right shoulder must be at +x, as in NTU space. Per view, so a
    camera that saw people from behind or mirrored would show up."""
    recs = [r for r in scan_nw_ucla(nwucla_dir) if r.path.stem not in SHORT][::6]
    per_view = {1: [], 2: [], 3: []}
    front_ok = {1: [], 2: [], 3: []}
    for r in recs:
        y = _ntu(r.path)
        assert np.nanmean(y[:, 3, 1]) - np.nanmean(y[:, [15, 19], 1]) > 0.5, r.path.name
        facing = _horizontal_unit(np.cross(y[:, 12] - y[:, 16], [0.0, 1.0, 0.0]))
        feet = _horizontal_unit((y[:, 15] - y[:, 14]) + (y[:, 19] - y[:, 18]))
        ok = np.isfinite(facing).all(-1) & np.isfinite(feet).all(-1)
        per_view[r.view].append(np.median((facing[ok] * feet[ok]).sum(-1)))
        front = ok & (feet[:, 2] < -0.7)
        if front.sum() >= 5:
            front_ok[r.view].append(np.mean(y[front, 8, 0] > y[front, 4, 0]))
    for v in (1, 2, 3):
        agree = np.asarray(per_view[v])
        assert len(agree) > 60 and np.mean(agree > 0) > 0.9 and np.median(agree) > 0.5, v
        assert len(front_ok[v]) > 20 and np.median(front_ok[v]) == 1.0, v


def test_walk_cadence_says_about_14_fps_not_30(nwucla_dir, bandai_dir):
    """The README's "about 30 fps" does not hold for this copy: at 30 fps the walkers would take
    3.75-4.3 steps/s (measured: 8 frames per step, 14 per stride), far above any walk (1.5-2.2).
    Both estimators are checked on the Bandai walks, whose BVH Frame Time says 30 fps: there
    they find 1.76 steps/s."""
    from pgfa_models.formats import read_bandai_bvh, scan_bandai

    seqs = []
    for r in scan_nw_ucla(nwucla_dir):
        if r.action == 3:
            x = read_nw_ucla(r.path)
            if len(x) >= 40 and not (x == 0).all(-1).any():
                seqs.append(map_to_ntu(x, "kinect_v1_sdk_20"))
    at_30 = cadences(seqs, 30.0)
    assert min(at_30) > 3.0                                       # impossible as a walk
    assert all(1.5 <= c <= 2.2 for c in cadences(seqs, NW_UCLA_FPS))  # a walk at the estimate
    control = [map_to_ntu(read_bandai_bvh(r.path), "bandai_bvh")
               for r in scan_bandai(bandai_dir)[0] if r.content_name == "walk"]
    assert all(1.5 <= c <= 2.2 for c in cadences(control, 30.0))
