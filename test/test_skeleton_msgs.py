"""MarkerArray <-> joints in the Azure Kinect driver convention; tolerant parsing."""
import math

import numpy as np
import pytest

pytest.importorskip("visualization_msgs.msg")
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from pgfa_ros.skeleton_msgs import (  # noqa: E402
    joints_to_marker_array,
    marker_array_to_bodies,
    sec_to_stamp,
    stamp_to_sec,
)

J = 32


def bodies(n=2, j=J):
    rng = np.random.default_rng(0)
    return {b: rng.normal(size=(j, 3)).astype(np.float32) for b in range(n)}


def test_round_trip():
    src = bodies(2)
    msg = joints_to_marker_array(src, 12.25, "depth_camera_link")
    assert len(msg.markers) == 2 * J
    assert msg.markers[J + 5].id == 105
    p = marker_array_to_bodies(msg, J)
    assert set(p.bodies) == {0, 1} and not p.dropped
    for b in src:
        np.testing.assert_allclose(p.bodies[b], src[b], atol=1e-6)
        assert p.stamps[b] == pytest.approx(12.25)
    assert p.frame_id == "depth_camera_link"


def test_stamp_conversion():
    assert stamp_to_sec(sec_to_stamp(1700000000.123456)) == pytest.approx(1700000000.123456, abs=1e-6)
    t = sec_to_stamp(2.9999999999)
    assert t.nanosec < 1_000_000_000


def test_bad_ids_nan_duplicates():
    msg = joints_to_marker_array(bodies(1), 1.0)
    bad = Marker()
    bad.id = 40  # joint 40 >= 32
    neg = Marker()
    neg.id = -3
    msg.markers += [bad, neg]
    msg.markers[3].pose.position.x = math.nan
    msg.markers[4].pose.position.y = 1e9
    dup = Marker()
    dup.id = 0
    msg.markers.append(dup)
    deleted = Marker()
    deleted.action = Marker.DELETEALL
    msg.markers.append(deleted)
    p = marker_array_to_bodies(msg, J)
    assert p.dropped["bad_id"] == 2
    assert p.dropped["nan_joint"] == 1 and p.dropped["absurd_position"] == 1
    assert p.dropped["duplicate_joint"] == 1 and p.dropped["delete_action"] == 1
    assert np.isnan(p.bodies[0][3]).all() and np.isnan(p.bodies[0][4]).all()
    assert np.isfinite(p.bodies[0][5]).all()


def test_empty_flood_and_sparse_bodies():
    assert marker_array_to_bodies(MarkerArray(), J).dropped["empty"] == 1
    flood = MarkerArray()
    for i in range(1000):
        m = Marker()
        m.id = i
        flood.markers.append(m)
    p = marker_array_to_bodies(flood, J, max_bodies=16)
    assert p.dropped["flood"] == 1000 and not p.bodies
    sparse = joints_to_marker_array({7: np.zeros((3, 3))}, 0.0)  # 3 of 32 joints
    p = marker_array_to_bodies(sparse, J)
    assert p.dropped["too_few_joints"] == 1 and not p.bodies and not p.stamps


def test_max_bodies_per_message():
    p = marker_array_to_bodies(joints_to_marker_array(bodies(5, 20), 0.0), 20, max_bodies=3, max_markers=200)
    assert sorted(p.bodies) == [0, 1, 2] and p.dropped["too_many_bodies"] == 2


def test_kinect_v1_layout_ids():
    src = bodies(2, 20)
    p = marker_array_to_bodies(joints_to_marker_array(src, 0.5), 20)
    assert sorted(p.bodies) == [0, 1] and p.bodies[1].shape == (20, 3)


def _varied_message(rng):
    """Markers exercising every variable-length field (alignment) plus bad ids, NaN and deletes."""
    from geometry_msgs.msg import Point
    from std_msgs.msg import ColorRGBA
    from visualization_msgs.msg import UVCoordinate

    msg = joints_to_marker_array({b: rng.normal(size=(J, 3)) for b in range(3)}, 7.5, "cam" * rng.integers(0, 4))
    for m in msg.markers[:: int(rng.integers(2, 7))]:
        m.ns = "x" * int(rng.integers(0, 9))
        m.text = "label" * int(rng.integers(0, 3))
        m.points = [Point(x=1.0, y=2.0, z=3.0)] * int(rng.integers(0, 3))
        m.colors = [ColorRGBA(r=1.0)] * int(rng.integers(0, 3))
        m.texture_resource = "t" * int(rng.integers(0, 5))
        m.texture.format = "png"[: int(rng.integers(0, 4))]
        m.texture.header.frame_id = "f" * int(rng.integers(0, 6))
        m.texture.data = bytes(range(int(rng.integers(0, 7))))
        m.uv_coordinates = [UVCoordinate(u=0.5, v=0.25)] * int(rng.integers(0, 3))
        m.mesh_resource = "m" * int(rng.integers(0, 5))
        m.mesh_file.filename = "g" * int(rng.integers(0, 5))
        m.mesh_file.data = bytes(int(rng.integers(0, 5)))
        m.frame_locked = bool(rng.integers(0, 2))
        m.mesh_use_embedded_materials = bool(rng.integers(0, 2))
    msg.markers[1].pose.position.z = math.nan
    msg.markers[2].id = 77
    msg.markers[3].action = Marker.DELETE
    msg.markers.append(msg.markers[0])  # duplicate joint
    return msg


def test_raw_cdr_parser_matches_message_parser():
    from rclpy.serialization import serialize_message

    from pgfa_ros.skeleton_msgs import marker_array_bytes_to_bodies

    rng = np.random.default_rng(1)
    for _ in range(25):
        msg = _varied_message(rng)
        a = marker_array_to_bodies(msg, J)
        b = marker_array_bytes_to_bodies(serialize_message(msg), J)
        assert a.dropped == b.dropped and a.stamps == b.stamps and a.frame_id == b.frame_id
        assert a.bodies.keys() == b.bodies.keys()
        for k in a.bodies:
            np.testing.assert_array_equal(a.bodies[k], b.bodies[k])
    flood = MarkerArray(markers=[Marker() for _ in range(1000)])
    assert marker_array_bytes_to_bodies(serialize_message(flood), J).dropped["flood"] == 1000
    assert marker_array_bytes_to_bodies(serialize_message(MarkerArray()), J).dropped["empty"] == 1


def test_raw_cdr_parser_survives_garbage():
    from rclpy.serialization import serialize_message

    from pgfa_ros.skeleton_msgs import marker_array_bytes_to_bodies

    raw = serialize_message(joints_to_marker_array(bodies(2), 1.0))
    rng = np.random.default_rng(2)
    assert marker_array_bytes_to_bodies(b"\x00\x01\x00\x00garbage", J).dropped == {"malformed": 1}
    for cut in (0, 3, 8, 50, len(raw) // 2, len(raw) - 1):
        assert marker_array_bytes_to_bodies(raw[:cut], J).dropped["malformed"] == 1
    for _ in range(200):  # random corruption never raises
        buf = bytearray(raw)
        for i in rng.integers(0, len(buf), size=5):
            buf[i] = int(rng.integers(0, 256))
        p = marker_array_bytes_to_bodies(bytes(buf), J)
        assert all(v.shape == (J, 3) for v in p.bodies.values())
