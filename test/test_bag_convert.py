"""pgfa-bag convert: real UTD-MHAD sequences -> rosbag2 (MCAP and sqlite3), exact round trip."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from bag_helpers import SUBJECTS, U1
from pgfa_models.formats.utd_mhad import UTD_MHAD_CLASSES, read_utd_mhad, scan_utd_mhad
from pgfa_ros.bag.cli import main
from pgfa_ros.bag.clips import read_bag_clips
from pgfa_ros.bag.convention import LABEL_TOPIC, META_TOPIC, SKELETON_TOPIC, BagError
from pgfa_ros.bag.io import open_reader, read_messages


@pytest.fixture(scope="module", params=["mcap", "sqlite3"])
def utd_bag(request, utd_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"conv_{request.param}") / "u1_s1"
    rc = main(["convert", "--dataset", "utd_mhad", "--input", str(utd_dir), "--split", "utd_mhad/U1",
               "--subjects", ",".join(map(str, SUBJECTS)), "--output", str(out), "--storage", request.param, "-q"])
    assert rc == 0
    return out, request.param


def _expected_records(utd_dir):
    recs = [r for r in scan_utd_mhad(utd_dir) if r.action in U1 and r.subject in SUBJECTS]
    return sorted(recs, key=lambda r: r.path.name)


def test_standard_rosbag2_metadata(utd_bag, utd_dir):
    bag, storage = utd_bag
    md = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert md["storage_identifier"] == storage
    assert md["version"] == 9
    files = md["relative_file_paths"]
    assert len(files) == 1 and (bag / files[0]).is_file() and files[0].startswith(bag.name)
    counts = {t["topic_metadata"]["name"]: t["message_count"] for t in md["topics_with_message_count"]}
    types = {t["topic_metadata"]["name"]: t["topic_metadata"]["type"] for t in md["topics_with_message_count"]}
    recs = _expected_records(utd_dir)
    frames = sum(read_utd_mhad(r.path).shape[0] for r in recs)
    assert counts == {SKELETON_TOPIC: frames, LABEL_TOPIC: len(recs), META_TOPIC: 1}
    assert types[SKELETON_TOPIC] == "visualization_msgs/msg/MarkerArray"
    assert types[LABEL_TOPIC] == types[META_TOPIC] == "std_msgs/msg/String"
    assert md["message_count"] == frames + len(recs) + 1
    # the meta topic is latched for ros2 bag play
    meta_qos = [t for t in md["topics_with_message_count"] if t["topic_metadata"]["name"] == META_TOPIC][0]
    assert "transient_local" in str(meta_qos["topic_metadata"]["offered_qos_profiles"])
    assert not list(bag.parent.glob(".*partial*"))


def test_markers_follow_azure_driver_convention_at_30hz(utd_bag, utd_dir):
    bag, _ = utd_bag
    r = open_reader(bag)
    try:
        msgs = list(read_messages(r, [SKELETON_TOPIC, LABEL_TOPIC, META_TOPIC]))
    finally:
        r.close()
    meta = json.loads(next(m.data for t, _, m in msgs if t == META_TOPIC))
    assert meta["layout"] == "kinect_v1_20" and meta["fps"] == 30.0 and meta["classes"] == list(UTD_MHAD_CLASSES)
    labels = [json.loads(m.data) for t, _, m in msgs if t == LABEL_TOPIC]
    first = labels[0]
    assert {"label", "class_index", "body_id", "start", "end", "source"} <= set(first)
    assert UTD_MHAD_CLASSES[first["class_index"]] == first["label"]
    sk = [(ts, m) for t, ts, m in msgs if t == SKELETON_TOPIC]
    ts0, m0 = sk[0]
    assert len(m0.markers) == 20
    assert [mk.id for mk in m0.markers] == list(range(20))  # body 0: id = 0 * 100 + joint
    assert m0.markers[0].header.stamp.sec * 10**9 + m0.markers[0].header.stamp.nanosec == ts0 == first["start_ns"]
    dt = np.diff([ts for ts, _ in sk[:first["frames"]]])
    assert np.all(np.abs(dt - 1e9 / 30) <= 1)  # 30 Hz, integer-ns stamps
    raw = read_utd_mhad(utd_dir / first["source"])
    pos = np.array([[mk.pose.position.x, mk.pose.position.y, mk.pose.position.z] for mk in m0.markers])
    assert pos.dtype == np.float64 and np.array_equal(pos, raw[0].astype(np.float64))  # exact, native axes


def test_round_trip_is_bit_exact(utd_bag, utd_dir):
    bag, _ = utd_bag
    bc = read_bag_clips(bag)
    recs = _expected_records(utd_dir)
    assert [c.name for c in bc.clips] == [f"a{r.action + 1}_s{r.subject}_t{r.trial}" for r in recs]
    for c, r in zip(bc.clips, recs):
        raw = read_utd_mhad(r.path)
        assert len(c.bodies) == 1 and c.bodies[0].dtype == raw.dtype
        assert np.array_equal(c.bodies[0], raw)
        assert np.array_equal(c.times, np.arange(len(raw), dtype=np.float64) / 30.0)  # seconds, as the loader
        assert c.label.class_index == r.action


def test_smie_arrays_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(3, 3, 50, 25, 2)).astype(np.float32)
    data[1, ..., 1] = 0  # second body absent (SMIE pads with zeros)
    data[2, :, 10:20, :, 1] = 0  # second body absent in some frames
    labels = np.array([4, 19, 4])
    np.save(tmp_path / "d.npy", data)
    np.save(tmp_path / "l.npy", labels)
    out = tmp_path / "smie_bag"
    assert main(["convert", "--dataset", "smie", "--data", str(tmp_path / "d.npy"), "--labels",
                 str(tmp_path / "l.npy"), "--output", str(out), "--storage", "sqlite3", "-q"]) == 0
    bc = read_bag_clips(out)
    assert bc.meta.clip_ready and bc.layout == "ntu_25"
    assert [c.label.class_index for c in bc.clips] == [4, 19, 4]
    for i, c in enumerate(bc.clips):
        back = np.stack([b.transpose(2, 0, 1) for b in c.bodies], axis=-1)
        assert np.array_equal(back, data[i])


def test_existing_output_and_bad_input_are_one_line_errors(utd_bag, utd_dir, tmp_path, capsys):
    bag, _ = utd_bag
    rc = main(["convert", "--dataset", "utd_mhad", "--input", str(utd_dir), "--classes", "3",
               "--subjects", "1", "--output", str(bag), "-q"])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1 and "already exists" in err
    rc = main(["convert", "--dataset", "utd_mhad", "--input", str(tmp_path / "nothing"), "--output",
               str(tmp_path / "x"), "-q"])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1 and not (tmp_path / "x").exists()


def test_failed_conversion_leaves_no_bag(tmp_path):
    from pgfa_ros.bag.convert import Sequence, Source, write_bag

    def seqs():
        yield Sequence("ok", 0, [np.ones((5, 20, 3), np.float32)])
        yield Sequence("bad", 0, [np.ones((5, 7), np.float32)])

    src = Source("utd_mhad", "kinect_v1_20", 30.0, list(UTD_MHAD_CLASSES), seqs(), 2)
    with pytest.raises(BagError, match="bad"):
        write_bag(src, tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flags, what", [(["--fps", "0"], "fps"), (["--fps", "-30"], "fps"),
                                         (["--fps", "nan"], "fps"), (["--gap", "-5"], "gap"),
                                         (["--limit", "-1"], "--limit"), (["--max-bodies", "0"], "--max-bodies")])
def test_bad_numbers_are_refused_not_written(utd_dir, tmp_path, capsys, flags, what):
    """--fps 0 used to mean the dataset's rate, a negative rate or gap wrote backward stamps and
    --limit -1 silently dropped the last clip: each is now one error line and no bag."""
    rc = main(["convert", "--dataset", "utd_mhad", "--input", str(utd_dir), "--classes", "3",
               "--subjects", "1", "--output", str(tmp_path / "b"), "-q", *flags])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and what in err
    assert not (tmp_path / "b").exists()


def test_fast_marker_decoder_matches_generic_cdr():
    from pgfa_ros.marker_cdr import decode_marker_array
    from pgfa_ros.bag.io import marker_array, typestore

    T = typestore().types
    m = marker_array({3: np.arange(60).reshape(20, 3) * 0.1, 0: np.full((20, 3), np.nan)}, 123456789012, "cam")
    m.markers[0].text = "hello"
    m.markers[1].points = [T["geometry_msgs/msg/Point"](x=1.0, y=2.0, z=3.0)]
    m.markers[2].ns = "abcde"
    m.markers[4].uv_coordinates = [T["visualization_msgs/msg/UVCoordinate"](u=1.0, v=2.0)]
    for little in (True, False):
        raw = typestore().serialize_cdr(m, "visualization_msgs/msg/MarkerArray", little_endian=little)
        ref = typestore().deserialize_cdr(raw, "visualization_msgs/msg/MarkerArray")
        fast = decode_marker_array(raw)

        def key(a):
            return [(k.id, k.action, k.header.stamp.sec, k.header.stamp.nanosec, k.header.frame_id,
                     repr((k.pose.position.x, k.pose.position.y, k.pose.position.z))) for k in a.markers]

        assert fast is not None and key(fast) == key(ref)
    assert decode_marker_array(raw[:-9]) is None  # strict: a short buffer is never half-read


def test_ntu_skeleton_round_trip_with_two_bodies(tmp_path):
    """NTU .skeleton (written in the documented text format) -> bag -> the reader's bodies exactly,
    including a second body that leaves for a few frames (zeros in the reader, no markers in the bag)."""
    from pgfa_models.formats.ntu_skeleton import read_ntu_skeleton

    def joints(t, off):
        rng = np.random.default_rng(int(abs(off) * 10) + 3)
        return rng.normal(size=(25, 3)) * 0.3 + np.array([off, 0.0, 3.0]) + 0.1 * np.sin(0.3 * t)

    def line(x):
        return f"{x[0]:.6f} {x[1]:.6f} {x[2]:.6f} 250.1 200.2 960.5 540.3 0.9 0.1 0.2 0.3 2"

    lines = ["8"]
    for t in range(8):
        bodies = [(11, joints(t, 0.0))] + ([] if 3 <= t < 5 else [(22, joints(t, -1.0))])
        lines.append(str(len(bodies)))
        for bid, j in bodies:
            lines += [f"{bid} 0 1 1 1 1 0 0.1 -0.2 2", "25"] + [line(x) for x in j]
    src = tmp_path / "S001C001P001R001A043.skeleton"
    src.write_text("\r\n".join(lines) + "\r\n")
    out = tmp_path / "ntu_bag"
    assert main(["convert", "--dataset", "ntu60", "--input", str(tmp_path), "--output", str(out), "-q"]) == 0
    bc = read_bag_clips(out)
    seq = read_ntu_skeleton(src, max_bodies=2)
    (clip,) = bc.clips
    assert bc.layout == "ntu_25" and clip.label.class_index == 42 and clip.body_ids == [0, 1]
    assert len(clip.bodies) == 2
    for a, b in zip(clip.bodies, seq.bodies):
        assert np.array_equal(a, b)
