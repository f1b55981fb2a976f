"""BVH parser + forward kinematics (hand-checked answers) and the real Bandai Namco takes."""
import json
import re

import numpy as np
import pytest

from pgfa_models.formats import (BvhError, parse_bvh, read_bandai_bvh, read_bandai_labels,
                                 read_bvh, scan_bandai)
from pgfa_models.layouts import BANDAI_BVH_JOINTS, map_to_ntu

CHAIN = """HIERARCHY
ROOT A
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT B
  {
    OFFSET 0 10 0
    CHANNELS 3 %s
    End Site
    {
      OFFSET 0 5 0
    }
  }
}
MOTION
Frames: %d
Frame Time: 0.5
%s
"""


def _chain(rows, order="Zrotation Xrotation Yrotation"):
    return parse_bvh(CHAIN % (order, len(rows), "\n".join(rows)), source="chain.bvh")


def test_fk_two_joint_chain_known_answers():
    bvh = _chain(["0 0 0 0 0 0 0 0 0",        # rest: B at (0,10,0), tip at (0,15,0)
                  "1 2 3 90 0 0 0 0 0",       # root moved and turned +90 about z
                  "0 0 0 0 0 0 -90 0 0"])     # B turned -90 about z: the tip swings to +x
    assert bvh.names() == ("A", "B") and bvh.names(end_sites=True) == ("A", "B", "B_end")
    assert bvh.fps == 2.0 and bvh.num_frames == 3
    p = bvh.positions(unit_scale=1.0, end_sites=True)
    np.testing.assert_allclose(p[0], [[0, 0, 0], [0, 10, 0], [0, 15, 0]], atol=1e-9)
    np.testing.assert_allclose(p[1], [[1, 2, 3], [-9, 2, 3], [-14, 2, 3]], atol=1e-9)
    np.testing.assert_allclose(p[2], [[0, 0, 0], [0, 10, 0], [5, 10, 0]], atol=1e-9)
    # default unit: centimetres -> metres; end sites left out
    np.testing.assert_allclose(bvh.positions()[0], [[0, 0, 0], [0, 0.1, 0]], atol=1e-12)


def test_extra_sites_follow_the_joint_rotation():
    bvh = _chain(["0 0 0 0 0 0 0 0 0", "1 2 3 90 0 0 0 0 0", "0 0 0 0 0 0 -90 0 0"])
    with_end = bvh.positions(1.0, end_sites=True)
    extra = bvh.positions(1.0, extra_sites={"B": (0.0, 5.0, 0.0), "A": (0.0, 0.0, 1.0)})
    assert extra.shape == (3, 4, 3)
    np.testing.assert_allclose(extra[:, 2], with_end[:, 2], atol=1e-9)  # same as the End Site
    np.testing.assert_allclose(extra[1, 3], [1, 2, 4], atol=1e-9)       # z axis kept by Rz
    with pytest.raises(KeyError, match="unknown joint 'C'"):
        bvh.positions(extra_sites={"C": (1.0, 0.0, 0.0)})


def test_rotation_order_is_read_from_the_file():
    row = ["0 0 0 0 0 0 90 90 0"]
    zxy = _chain(row, "Zrotation Xrotation Yrotation").positions(1.0, end_sites=True)[0, 2]
    xzy = _chain(row, "Xrotation Zrotation Yrotation").positions(1.0, end_sites=True)[0, 2]
    np.testing.assert_allclose(zxy, [0, 10, 5], atol=1e-9)   # Rz(90) Rx(90) (0,5,0)
    np.testing.assert_allclose(xzy, [-5, 10, 0], atol=1e-9)  # Rx(90) Rz(90) (0,5,0)


def test_position_channels_replace_the_offset():
    text = CHAIN.replace("CHANNELS 3 %s", "CHANNELS 6 Xposition Yposition Zposition %s")
    rows = "0 0 0 0 0 0 0 10 0 0 0 0\n0 0 0 0 0 0 0 3 0 0 0 0"
    bvh = parse_bvh(text % ("Zrotation Xrotation Yrotation", 2, rows))
    p = bvh.positions(1.0)
    np.testing.assert_allclose(p[:, 1], [[0, 10, 0], [0, 3, 0]])  # not offset + channel


def test_compact_braces_and_whitespace():
    text = ("HIERARCHY ROOT R{OFFSET 1 2 3 CHANNELS 3 Xposition Yposition Zposition}"
            "\nMOTION\nFrames:\t2\nFrame Time:\t0.0333333\n1 1 1\n2 2 2\n")
    bvh = parse_bvh(text)
    assert bvh.fps == pytest.approx(30.0, rel=1e-5)
    np.testing.assert_allclose(bvh.positions(1.0)[:, 0], [[1, 1, 1], [2, 2, 2]])


@pytest.mark.parametrize("text, message", [
    ("", "empty file"),
    ("HIERARCHY\nROOT A\n{\nOFFSET 0 0\n}", "expected a number"),
    (CHAIN % ("Zrotation Wrotation Yrotation", 1, "0 " * 9), "unknown or repeated channels"),
    (CHAIN % ("Zrotation Xrotation Yrotation", 2, "0 " * 9), "expected Frames 2 x 9 channels"),
    (CHAIN % ("Zrotation Xrotation Yrotation", 1, "0 " * 8 + "x"), "not all numbers"),
    (CHAIN.replace("0.5", "0") % ("Zrotation Xrotation Yrotation", 1, "0 " * 9), "Frame Time"),
    ((CHAIN % ("Zrotation Xrotation Yrotation", 1, "0 " * 9)).split("MOTION")[0], "unexpected end"),
])
def test_parse_errors_name_the_source(text, message):
    with pytest.raises(BvhError, match=f"take.bvh: .*{message}"):
        parse_bvh(text, source="take.bvh")


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_bvh(tmp_path / "missing.bvh")
    (tmp_path / "bin.bvh").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BvhError, match="bin.bvh"):
        read_bvh(tmp_path / "bin.bvh")
    (tmp_path / "chain.bvh").write_text(CHAIN % ("Zrotation Xrotation Yrotation", 1, "0 " * 9))
    with pytest.raises(BvhError, match="not the Bandai Namco rig; missing joints .*Hips"):
        read_bandai_bvh(tmp_path / "chain.bvh")


# ----------------------------------------------------------------------------- real takes
def test_scan_real_dataset(bandai_dir):
    data = bandai_dir / "data"
    assert len(list(data.glob("*.json"))) == 175 and len(list(data.glob("*.bvh"))) == 174
    contents, styles = read_bandai_labels(bandai_dir)
    assert len(contents) == 17 and contents[0] == "walk" and contents[16] == "dance-short"
    assert len(styles) == 15 and styles[0] == "normal" and styles[14] == "chimpira"
    recs, skipped = scan_bandai(bandai_dir)
    assert len(recs) == 174
    assert [(p.name, why) for p, why in skipped] == [
        ("dataset-1_dance-long_normal_001.json",
         "motion file dataset-1_dance-long_normal_001.bvh is missing")]
    for r in recs:
        assert r.path.is_file() and r.path.stem == r.annotation.stem
        assert r.path.name.startswith(f"dataset-1_{r.content_name}_{r.style_name}_")
    r = next(r for r in recs if r.path.name == "dataset-1_bow_active_001.bvh")
    assert json.loads(r.annotation.read_text()) == {"content": r.content, "style": r.style} == \
        {"content": 6, "style": 11}
    # dance-long (15) had one take, the missing one: no usable take of that content is left
    assert {r.content for r in recs} == set(range(17)) - {15} and {r.style for r in recs} == set(range(15))


def test_scan_skips_bad_annotations_with_reasons(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "cfg" / "content_label.txt").write_text("dataset-1_walk\ndataset-1_run\n")
    (tmp_path / "cfg" / "style_label.txt").write_text("dataset-1_normal\n")
    d = tmp_path / "data"
    for name, ann in [("dataset-1_walk_normal_001", '{"content": 0, "style": 0}'),
                      ("dataset-1_run_normal_001", '{"content": 0, "style": 0}'),
                      ("dataset-1_run_normal_002", '{"content": 5, "style": 0}'),
                      ("dataset-1_run_normal_003", "{broken")]:
        (d / f"{name}.json").write_text(ann)
        (d / f"{name}.bvh").write_text("")
    (d / "dataset-1_walk_normal_002.json").write_text('{"content": 0, "style": 0}')
    recs, skipped = scan_bandai(tmp_path)
    assert [(r.content_name, r.style_name, r.take) for r in recs] == [("walk", "normal", 1)]
    reasons = {p.stem: why for p, why in skipped}
    assert "file name says run/normal" in reasons["dataset-1_run_normal_001"]
    assert "outside the cfg label lists" in reasons["dataset-1_run_normal_002"]
    assert "unreadable annotation" in reasons["dataset-1_run_normal_003"]
    assert "is missing" in reasons["dataset-1_walk_normal_002"]
    with pytest.raises(FileNotFoundError):
        scan_bandai(tmp_path / "nope")


def test_every_take_is_30_fps(bandai_dir):
    times = set()
    for p in sorted((bandai_dir / "data").glob("*.bvh")):
        head = p.read_text()[:20000]
        times.add(re.search(r"Frame Time:\s*([0-9.eE+-]+)", head.split("MOTION", 1)[1]).group(1))
    assert times == {"0.0333333"}


def test_real_fk_keeps_bone_lengths_and_units(bandai_dir):
    bvh = read_bvh(bandai_dir / "data" / "dataset-1_walk_normal_001.bvh")
    assert bvh.num_frames == 195 and bvh.fps == pytest.approx(30.0, rel=1e-5)
    assert bvh.names() == BANDAI_BVH_JOINTS[:22]
    assert {j.channels for j in bvh.joints if not j.end_site} == {
        ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")}
    p = bvh.positions(end_sites=True)
    for k, j in enumerate(bvh.joints):
        if j.parent > 0:  # the Hips' translation is the root motion, not a bone
            length = np.linalg.norm(p[:, k] - p[:, j.parent], axis=-1)
            np.testing.assert_allclose(length, np.linalg.norm(j.offset) / 100.0, atol=1e-6)
    x = read_bandai_bvh(bandai_dir / "data" / "dataset-1_walk_normal_001.bvh")
    i = BANDAI_BVH_JOINTS.index
    assert x.dtype == np.float32 and x.shape == (195, 25, 3)
    np.testing.assert_allclose(x[:, :22], bvh.positions(), atol=1e-5)
    # derived sites continue the head bone (x2) and the forearm (x1/3) and turn with the joint
    head_len = np.linalg.norm(x[:, i("HeadCentre")] - x[:, i("Head")], axis=-1)
    palm_len = np.linalg.norm(x[:, i("Palm_R")] - x[:, i("Hand_R")], axis=-1)
    np.testing.assert_allclose(head_len, 0.1291, atol=2e-4)
    np.testing.assert_allclose(palm_len, 0.0743, atol=2e-4)
    assert 0.85 < np.median(x[:, i("Hips"), 1]) < 1.0                   # hips ~0.9 m up, metres
    assert 0.38 < np.median(x[:, i("Head"), 1] - x[:, i("Hips"), 1]) < 0.55


def _facing(x):
    i = BANDAI_BVH_JOINTS.index
    f = np.cross(x[:, i("UpperLeg_L")] - x[:, i("UpperLeg_R")], [0.0, 1.0, 0.0])
    f[:, 1] = 0
    return f / np.linalg.norm(f, axis=-1, keepdims=True)


def test_real_walks_up_left_right_and_speed(bandai_dir):
    """_L is the actor's left: the facing that the labels imply, (left hip - right hip) x up,
    points along the velocity when walking forward and against it in walk-back. Measured
    (median over styles): cos 0.99 / -0.99; normal walk 1.2 m/s, all walk styles 0.5-1.8."""
    i = BANDAI_BVH_JOINTS.index
    recs, _ = scan_bandai(bandai_dir)
    speeds = {}
    for content, sign in (("walk", 1.0), ("walk-back", -1.0)):
        cos = []
        for r in [r for r in recs if r.content_name == content]:
            x = read_bandai_bvh(r.path).astype(np.float64)
            assert (x[:, i("Head"), 1] > x[:, i("Hips"), 1] + 0.3).all(), r.path.name
            v = np.gradient(x[:, i("Hips")], 1 / 30.0, axis=0)
            v[:, 1] = 0
            sp = np.linalg.norm(v, axis=-1)
            moving = sp > 0.3
            cos.append(np.median(((v / np.maximum(sp, 1e-9)[:, None]) * _facing(x)).sum(-1)[moving]))
            if content == "walk":
                speeds[(r.style_name, r.take)] = float(np.median(sp[moving]))
        assert sign * np.median(cos) > 0.95 and min(sign * np.asarray(cos)) > 0.8, content
    normal = [s for (style, _), s in speeds.items() if style == "normal"]
    assert len(normal) == 2 and all(1.0 <= s <= 1.6 for s in normal)
    assert 0.9 <= np.median(list(speeds.values())) <= 1.4


def test_layout_faces_the_sensor_like_ntu(bandai_dir):
    """Most takes start facing +z in the BVH world; bandai_bvh turns that to face the sensor."""
    recs, _ = scan_bandai(bandai_dir)
    starts = [read_bandai_bvh(r.path)[:1].astype(np.float64) for r in recs[::4]]
    facing_z = np.array([_facing(x)[0, 2] for x in starts])
    assert np.mean(facing_z > 0.7) > 0.6
    feet_to_sensor = []
    for x in [x for x, fz in zip(starts, facing_z) if fz > 0.7]:
        y = map_to_ntu(x, "bandai_bvh")[0]
        assert y[3, 1] > y[0, 1] + 0.4              # head above spine base
        assert y[8, 0] > y[4, 0] and y[16, 0] > y[12, 0]   # right side at +x
        feet_to_sensor.append((y[15, 2] - y[14, 2]) + (y[19, 2] - y[18, 2]) < 0)
    assert np.mean(feet_to_sensor) > 0.8            # toes ahead of the ankles, towards -z
