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


# ----------------------------------------------------------------------------- Marker layouts
def _rosbags_marker_array(store, msg, little_endian=True):
    """The same MarkerArray as rosbags objects of ``store``'s message definitions (an independent
    CDR serialiser with the older distributions' .msg files)."""
    from rosbags.typesys import get_typestore

    ts = get_typestore(store)
    T = ts.types
    fields = {f for f in T["visualization_msgs/msg/Marker"].__dataclass_fields__}
    out = []
    for m in msg.markers:
        kw = dict(
            header=T["std_msgs/msg/Header"](
                stamp=T["builtin_interfaces/msg/Time"](sec=m.header.stamp.sec, nanosec=m.header.stamp.nanosec),
                frame_id=m.header.frame_id),
            ns=m.ns, id=m.id, type=m.type, action=m.action,
            pose=T["geometry_msgs/msg/Pose"](
                position=T["geometry_msgs/msg/Point"](x=m.pose.position.x, y=m.pose.position.y, z=m.pose.position.z),
                orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0)),
            scale=T["geometry_msgs/msg/Vector3"](x=m.scale.x, y=m.scale.y, z=m.scale.z),
            color=T["std_msgs/msg/ColorRGBA"](r=m.color.r, g=m.color.g, b=m.color.b, a=m.color.a),
            lifetime=T["builtin_interfaces/msg/Duration"](sec=m.lifetime.sec, nanosec=m.lifetime.nanosec),
            frame_locked=m.frame_locked,
            points=[T["geometry_msgs/msg/Point"](x=p.x, y=p.y, z=p.z) for p in m.points],
            colors=[T["std_msgs/msg/ColorRGBA"](r=c.r, g=c.g, b=c.b, a=c.a) for c in m.colors],
            text=m.text, mesh_resource=m.mesh_resource, mesh_use_embedded_materials=m.mesh_use_embedded_materials)
        if "texture_resource" in fields:
            stamp = T["builtin_interfaces/msg/Time"](sec=m.texture.header.stamp.sec,
                                                     nanosec=m.texture.header.stamp.nanosec)
            kw.update(
                texture_resource=m.texture_resource,
                texture=T["sensor_msgs/msg/CompressedImage"](
                    header=T["std_msgs/msg/Header"](stamp=stamp, frame_id=m.texture.header.frame_id),
                    format=m.texture.format, data=np.frombuffer(bytes(m.texture.data), np.uint8)),
                uv_coordinates=[T["visualization_msgs/msg/UVCoordinate"](u=c.u, v=c.v) for c in m.uv_coordinates],
                mesh_file=T["visualization_msgs/msg/MeshFile"](
                    filename=m.mesh_file.filename, data=np.frombuffer(bytes(m.mesh_file.data), np.uint8)))
        out.append(T["visualization_msgs/msg/Marker"](**kw))
    arr = T["visualization_msgs/msg/MarkerArray"](markers=out)
    return ts.serialize_cdr(arr, "visualization_msgs/msg/MarkerArray", little_endian=little_endian)


def _same_records(a, b) -> bool:
    """Marker records equal, NaN equal to NaN."""
    return a is not None and b is not None and len(a) == len(b) and all(
        x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y)) for r, q in zip(a, b) for x, y in zip(r, q))


def test_older_marker_layout_from_real_foxy_galactic_bytes():
    """The decoder's older-layout branch (Marker without texture / uv_coordinates / mesh_file:
    Foxy and Galactic; those fields arrived in Humble) on bytes serialised by rosbags from those
    distributions' message definitions, in both endiannesses."""
    from rclpy.serialization import serialize_message
    from rosbags.typesys import Stores

    from pgfa_ros.marker_cdr import marker_records
    from pgfa_ros.skeleton_msgs import marker_array_bytes_to_bodies

    rng = np.random.default_rng(5)
    for _ in range(10):
        msg = _varied_message(rng)
        expect = marker_array_to_bodies(msg, J)
        ref = marker_records(serialize_message(msg), new_layout=True)
        for store in (Stores.ROS2_FOXY, Stores.ROS2_GALACTIC):
            old = bytes(_rosbags_marker_array(store, msg))
            assert marker_records(old, new_layout=True) is None  # not misread as the new layout
            assert _same_records(marker_records(old, new_layout=False), ref)
            assert _same_records(marker_records(old), ref)
            got = marker_array_bytes_to_bodies(old, J)
            assert got.decoder == "raw" and got.dropped == expect.dropped and got.stamps == expect.stamps
            for k in expect.bodies:
                np.testing.assert_array_equal(got.bodies[k], expect.bodies[k])
            big = bytes(_rosbags_marker_array(store, msg, little_endian=False))
            assert big[1] == 0 and big != old  # big-endian CDR of the same message: same records
            assert _same_records(marker_records(big), ref)
    # Humble already has the new fields: its bytes take the new-layout branch (same length as
    # this ROS's serialisation; padding bytes may differ)
    msg = _varied_message(np.random.default_rng(6))
    humble = bytes(_rosbags_marker_array(Stores.ROS2_HUMBLE, msg))
    assert len(humble) == len(serialize_message(msg)) and marker_records(humble, new_layout=False) is None
    assert _same_records(marker_records(humble, new_layout=True), marker_records(serialize_message(msg)))


def test_raw_parser_falls_back_to_the_generic_decoder():
    """Bytes the strict walker refuses go to the fallback deserialiser; only when that fails too
    is the message malformed."""
    from rclpy.serialization import serialize_message

    from pgfa_ros.skeleton_msgs import deserialize_marker_array, marker_array_bytes_to_bodies

    msg = joints_to_marker_array(bodies(2), 4.0, "cam")
    raw = bytes(serialize_message(msg)) + b"\0" * 24  # trailing bytes: rclpy reads, the walker refuses
    assert marker_array_bytes_to_bodies(raw, J).dropped == {"malformed": 1}  # no fallback given
    p = marker_array_bytes_to_bodies(raw, J, fallback=deserialize_marker_array)
    assert p.decoder == "fallback" and "layout" in p.fallback_reason and not p.dropped
    assert sorted(p.bodies) == [0, 1] and p.frame_id == "cam"
    np.testing.assert_allclose(p.bodies[1], bodies(2)[1], atol=1e-6)
    bad = marker_array_bytes_to_bodies(raw[: len(raw) - 500], J, fallback=deserialize_marker_array)
    assert bad.dropped == {"malformed": 1} and "fallback deserialisation failed" in bad.fallback_reason
    ok = marker_array_bytes_to_bodies(serialize_message(msg), J, fallback=deserialize_marker_array)
    assert ok.decoder == "raw"
