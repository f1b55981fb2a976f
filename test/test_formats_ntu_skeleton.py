"""NTU RGB+D .skeleton reader, on files written here in the documented text format."""
from pathlib import Path

import numpy as np
import pytest

from pgfa_models.formats.ntu_skeleton import (
    NtuEmptySkeletonError,
    NtuSkeletonError,
    parse_ntu_name,
    read_ntu_skeleton,
)

BODY_INFO = "0 0 1 1 1 1 0 0.1 -0.2 2"


def _joint_line(xyz, state=2):
    x, y, z = xyz
    return f"{x:.6f} {y:.6f} {z:.6f} 250.1 200.2 960.5 540.3 0.9 0.1 0.2 0.3 {state}"


def write_skeleton(path: Path, frames) -> Path:
    """frames: list of frames; a frame is a list of (body_id, joints (25,3))."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, joints in bodies:
            lines.append(f"{body_id} " + BODY_INFO[2:])
            lines.append("25")
            lines.extend(_joint_line(j) for j in joints)
    path.write_text("\r\n".join(lines) + "\r\n")  # the originals use CRLF
    return path


def _pose(offset, t, amp):
    rng = np.random.default_rng(int(abs(offset) * 10) + 7)
    base = rng.normal(size=(25, 3)) * 0.3 + np.array([offset, 0.0, 3.0])
    return base + amp * np.sin(0.3 * t + np.arange(25)[:, None] * 0.1)


BIG_ID = 72057594037931101  # real NTU bodyIDs are 64-bit tracking ids


def test_three_bodies_keeps_the_two_moving_ones(tmp_path):
    frames = []
    for t in range(10):
        frames.append([
            (11, _pose(5.0, t, 0.0)),      # static -> dropped
            (BIG_ID, _pose(0.0, t, 0.05)),  # moves a little
            (33, _pose(-1.0, t, 0.20)),    # moves most
        ])
    p = write_skeleton(tmp_path / "S001C002P003R002A013.skeleton", frames)
    seq = read_ntu_skeleton(p)
    assert seq.bodies.dtype == np.float32 and seq.bodies.shape == (2, 10, 25, 3)
    assert seq.body_ids == [33, BIG_ID]
    assert seq.motion[0] > seq.motion[1] > 0
    assert seq.num_bodies_total == 3
    assert seq.label == 12 and seq.name == "S001C002P003R002A013"
    np.testing.assert_allclose(seq.bodies[0, 4], _pose(-1.0, 4, 0.20), atol=1e-5)
    np.testing.assert_allclose(seq.bodies[1, 9], _pose(0.0, 9, 0.05), atol=1e-5)
    assert seq.tracking.shape == (2, 10, 25) and (seq.tracking == 2).all()
    one = read_ntu_skeleton(p, max_bodies=1)
    assert one.bodies.shape == (1, 10, 25, 3) and one.body_ids == [33]


def test_empty_and_all_zero_frames_removed(tmp_path):
    frames = [[(1, _pose(0.0, t, 0.1))] for t in range(6)]
    frames[2] = []                                 # no body in frame 2
    frames[4] = [(1, np.zeros((25, 3)))]           # all-zero body in frame 4
    p = write_skeleton(tmp_path / "S017C003P020R002A060.skeleton", frames)
    seq = read_ntu_skeleton(p)
    assert seq.bodies.shape == (1, 4, 25, 3)
    assert seq.frame_index.tolist() == [0, 1, 3, 5]
    assert seq.num_frames_raw == 6
    assert seq.label == 59
    np.testing.assert_allclose(seq.bodies[0, 2], _pose(0.0, 3, 0.1), atol=1e-5)


def test_body_appearing_later_gets_zeros_before(tmp_path):
    frames = [[(1, _pose(0.0, t, 0.1))] + ([(2, _pose(1.0, t, 0.3))] if t >= 3 else [])
              for t in range(8)]
    seq = read_ntu_skeleton(write_skeleton(tmp_path / "x.skeleton", frames))
    assert seq.label is None
    assert seq.body_ids == [2, 1]
    assert (seq.bodies[0, :3] == 0).all() and (seq.bodies[0, 3:] != 0).any()
    assert (seq.tracking[0, :3] == 0).all()


def test_truncated_file_clear_error(tmp_path):
    frames = [[(1, _pose(0.0, t, 0.1))] for t in range(3)]
    p = write_skeleton(tmp_path / "S001C001P001R001A001.skeleton", frames)
    lines = p.read_text().splitlines()
    p.write_text("\n".join(lines[:-10]) + "\n")
    with pytest.raises(NtuSkeletonError, match=r"S001C001P001R001A001\.skeleton: line \d+: .*end of file"):
        read_ntu_skeleton(p)
    assert issubclass(NtuSkeletonError, ValueError)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda ls: ls.__setitem__(0, "abc"), r"line 1: expected an integer \(frame count\)"),
        (lambda ls: ls.__setitem__(0, "200001"), r"line 1: frame count 200001 out of range"),
        (lambda ls: ls.__setitem__(1, "11"), r"line 2: body count of frame 0 11 out of range"),
        (lambda ls: ls.__setitem__(2, "1 2 3"), r"line 3: body info line .* expected 10 values, got 3"),
        (lambda ls: ls.__setitem__(3, "20"), r"line 4: .*expected 25 joints, got 20"),
        (lambda ls: ls.__setitem__(5, "1 2 3"), r"line 6: joint 1 .* expected 12 values, got 3"),
        (lambda ls: ls.__setitem__(6, "x " * 12), r"line 7: joint 2 .* non-numeric"),
        (lambda ls: ls.append("junk"), r"unexpected content after the last of 2 frames"),
    ],
)
def test_malformed_lines(tmp_path, mutate, match):
    frames = [[(1, _pose(0.0, t, 0.1))] for t in range(2)]
    p = write_skeleton(tmp_path / "bad.skeleton", frames)
    lines = p.read_text().splitlines()
    mutate(lines)
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(NtuSkeletonError, match=match):
        read_ntu_skeleton(p)


def test_no_body_anywhere(tmp_path):
    p = write_skeleton(tmp_path / "S001C001P001R001A005.skeleton", [[], [], []])
    with pytest.raises(NtuEmptySkeletonError, match="no body"):
        read_ntu_skeleton(p)
    p.write_text("")
    with pytest.raises(NtuSkeletonError, match="end of file"):
        read_ntu_skeleton(p)


def test_parse_ntu_name():
    assert parse_ntu_name("S001C002P003R002A013.skeleton") == {
        "setup": 1, "camera": 2, "performer": 3, "replication": 2, "action": 13}
    assert parse_ntu_name(Path("/d/S032C003P106R002A120"))["action"] == 120
    with pytest.raises(ValueError, match="not an NTU RGB\\+D sample name"):
        parse_ntu_name("a01_s01_t01_skeleton.mat")
