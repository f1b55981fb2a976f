"""Layout tables and axis conventions, checked on synthetic input and real Kinect v1 data."""
import numpy as np
import pytest

from pgfa_models.formats import read_bandai_bvh, read_nw_ucla, read_utd_mhad
from pgfa_models.layouts import (BANDAI_BVH_JOINTS, KINECT_V1_20_JOINTS, KINECT_V1_SDK_20_JOINTS,
                                 LAYOUTS, NTU25_BONES, NTU25_JOINTS, get_layout, map_to_ntu)

UTD_FILES = ["a3_s1_t1", "a1_s4_t2", "a13_s6_t3", "a22_s8_t1", "a16_s2_t4"]


def test_ntu_tables():
    assert len(NTU25_JOINTS) == 25 and len(set(NTU25_JOINTS)) == 25
    assert len(NTU25_BONES) == 24
    assert all(0 <= c < 25 and 0 <= p < 25 and c != p for c, p in NTU25_BONES)
    assert (0, 1) in NTU25_BONES and (21, 22) in NTU25_BONES and (24, 11) in NTU25_BONES
    # every joint except the root (spine shoulder, 20) is a child exactly once
    assert sorted(c for c, _ in NTU25_BONES) == [j for j in range(25) if j != 20]


def test_layout_registry_and_shapes():
    assert set(LAYOUTS) == {"ntu_25", "azure_kinect_32", "mediapipe_33", "kinect_v1_20",
                            "kinect_v1_sdk_20", "bandai_bvh"}
    for name, lay in LAYOUTS.items():
        assert lay.name == name and lay.weights.shape == (25, lay.num_joints)
        assert len(lay.joint_names) == lay.num_joints
        np.testing.assert_allclose(lay.weights.sum(1), 1.0)
        assert abs(np.linalg.det(lay.axes)) == pytest.approx(1.0)
        assert np.linalg.det(lay.axes) > 0  # rotations only: never mirror left and right
    assert get_layout("ntu_25") is LAYOUTS["ntu_25"]
    with pytest.raises(KeyError, match="azure_kinect_32"):
        get_layout("openpose_18")


def test_ntu_identity():
    x = np.random.default_rng(0).normal(size=(4, 25, 3))
    np.testing.assert_allclose(map_to_ntu(x, "ntu_25"), x)
    assert map_to_ntu(x[0], "ntu_25").shape == (1, 25, 3)
    with pytest.raises(ValueError, match="kinect_v1_20"):
        map_to_ntu(x, "kinect_v1_20")


def _one_hot_coords(j: int) -> np.ndarray:
    """Source joint i at (i, 10*i, 100*i) so every averaged NTU joint is predictable."""
    i = np.arange(j, dtype=float)
    return np.stack([i, 10 * i, 100 * i], axis=-1)


def _unflip(y: np.ndarray, lay) -> np.ndarray:
    return y @ np.linalg.inv(lay.axes).T / lay.unit_scale


def test_mediapipe_averages():
    lay = LAYOUTS["mediapipe_33"]
    y = _unflip(map_to_ntu(_one_hot_coords(33), lay)[0], lay)[:, 0]  # source-x = index average
    expect = {0: (23 + 24) / 2, 1: (11 + 12 + 23 + 24) / 4, 2: (11 + 12 + 7 + 8) / 4,
              3: 7.5, 4: 11, 7: 18, 8: 12, 11: 19, 15: 31, 19: 32, 20: 11.5,
              21: 19, 22: 21, 23: 20, 24: 22}
    for k, v in expect.items():
        assert y[k] == pytest.approx(v), NTU25_JOINTS[k]


def test_azure_table_and_axes():
    lay = LAYOUTS["azure_kinect_32"]
    y = _unflip(map_to_ntu(_one_hot_coords(32), lay)[0], lay)[:, 0]
    np.testing.assert_allclose(y, [0, 1, 3, 26, 5, 6, 7, 8, 12, 13, 14, 15, 18, 19, 20, 21,
                                   22, 23, 24, 25, 2, 9, 10, 16, 17])
    # driver frame: x right, y down, z forward; a person facing the camera, head above pelvis
    src = np.zeros((32, 3))
    src[:, 2] = 2.0
    src[26] = [0.0, -0.7, 2.0]   # head: image-up is -y
    src[5] = [0.2, -0.5, 2.0]    # left shoulder: appears on image right (+x)
    src[12] = [-0.2, -0.5, 2.0]  # right shoulder: image left
    y = map_to_ntu(src, lay)[0]
    assert y[3, 1] > y[0, 1]               # y up
    assert y[8, 0] > y[4, 0]               # subject's right at +x, as in NTU
    assert y[0, 2] == pytest.approx(2.0)   # z still away from the sensor


def test_kinect_v1_table_averages():
    lay = LAYOUTS["kinect_v1_20"]
    y = map_to_ntu(_one_hot_coords(20), lay)[0][:, 0]
    np.testing.assert_allclose(y, [3, 2, 0.5, 0, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                   16, 17, 18, 19, 1, 7, 7, 11, 11])


def test_nan_only_poisons_joints_that_use_it():
    lay = LAYOUTS["mediapipe_33"]
    x = np.random.default_rng(1).normal(size=(3, 33, 3))
    x[1, 7, 0] = np.nan  # left ear: used by head (3) and neck (2) only
    y = map_to_ntu(x, lay)
    assert np.isnan(y[1, [2, 3]]).all()
    assert np.isfinite(np.delete(y[1], [2, 3], axis=0)).all()
    assert np.isfinite(y[[0, 2]]).all()
    x[2, 30] = np.inf  # right heel is unused by the table
    assert np.isfinite(map_to_ntu(x, lay)[2]).all()


@pytest.mark.parametrize("name", UTD_FILES)
def test_kinect_v1_real_data_upright_and_sided(utd_dir, name):
    y = map_to_ntu(read_utd_mhad(utd_dir / f"{name}_skeleton.mat"), "kinect_v1_20")
    assert (y[:, 3, 1] > y[:, 0, 1] + 0.3).all()   # head well above spine base, every frame
    assert (y[:, 20, 1] > y[:, 0, 1]).all()        # shoulders above hips
    # subject faces the sensor: their right side is at +x in NTU / Kinect camera space
    assert (y[:, 8, 0] > y[:, 4, 0]).all() and (y[:, 16, 0] > y[:, 12, 0]).all()
    assert (y[:, 0, 2] > 1.0).all()                # z away from the sensor, metres


def test_right_hand_wave_moves_ntu_right_hand(utd_dir):
    for s in (1, 3, 5, 7):
        y = map_to_ntu(read_utd_mhad(utd_dir / f"a3_s{s}_t2_skeleton.mat"), "kinect_v1_20")
        motion = np.linalg.norm(y - y.mean(0), axis=-1).mean(0)  # (25,)
        assert int(np.argmax(motion[:21])) in (10, 11)
        assert motion[11] > 4 * motion[7]  # right hand far more than left hand


def test_kinect_v1_sdk_table_is_the_utd_table_reordered():
    lay = LAYOUTS["kinect_v1_sdk_20"]
    y = map_to_ntu(_one_hot_coords(20), lay)[0][:, 0]
    np.testing.assert_allclose(y, [0, 1, 2.5, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                   16, 17, 18, 19, 2, 7, 7, 11, 11])
    # the same joints by name: an SDK-order skeleton reordered into UTD order maps identically
    assert sorted(KINECT_V1_SDK_20_JOINTS) == sorted(KINECT_V1_20_JOINTS)
    perm = [KINECT_V1_SDK_20_JOINTS.index(n) for n in KINECT_V1_20_JOINTS]
    x = np.random.default_rng(2).normal(size=(3, 20, 3))
    np.testing.assert_allclose(map_to_ntu(x, lay), map_to_ntu(x[:, perm], "kinect_v1_20"))


def test_nw_ucla_real_data_through_both_kinect_v1_tables(nwucla_dir):
    """Reading NW-UCLA with UTD's table (the wrong order) would put the head at the hips."""
    x = read_nw_ucla(nwucla_dir / "a01_s01_e00_v01.json")
    right = map_to_ntu(x, "kinect_v1_sdk_20")
    wrong = map_to_ntu(x, "kinect_v1_20")
    assert (right[:, 3, 1] > right[:, 0, 1]).all()  # a pick-up: the head dips, stays above
    assert right[0, 3, 1] - right[0, 0, 1] > 0.5  # standing at the start
    assert (wrong[:, 3, 1] < wrong[:, 0, 1]).all()


def test_bandai_table_derived_joints():
    lay = LAYOUTS["bandai_bvh"]
    assert lay.joint_names == BANDAI_BVH_JOINTS and lay.num_joints == 25
    y = _unflip(map_to_ntu(_one_hot_coords(25), lay)[0], lay)[:, 0]
    np.testing.assert_allclose(y, [1, 2.5, 5, 22, 7, 8, 9, 23, 11, 12, 13, 24,
                                   14, 15, 16, 17, 18, 19, 20, 21, 4, 23, 23, 24, 24])
    assert not lay.used[:, 0].any() and not lay.used[:, [6, 10]].any()  # root, clavicle starts
    np.testing.assert_allclose(lay.axes, np.diag([-1.0, 1.0, -1.0]))  # turn about y, no mirror


def test_bandai_real_proportions_close_to_kinect(bandai_dir):
    """The derived head and hand land where Kinect puts them (measured on UTD-MHAD/NW-UCLA:
    spine base -> head 0.58-0.59 m, shoulder centre 0.40-0.41 m, wrist -> hand 7-8 cm)."""
    y = map_to_ntu(read_bandai_bvh(bandai_dir / "data" / "dataset-1_bow_normal_001.bvh"), "bandai_bvh")
    d = lambda a, b: float(np.median(np.linalg.norm(y[:, a] - y[:, b], axis=-1)))  # noqa: E731
    assert 0.55 < d(0, 3) < 0.65 and 0.38 < d(0, 20) < 0.44
    assert d(6, 7) == pytest.approx(0.0743, abs=1e-3) and d(7, 21) == 0.0
    assert d(2, 3) == pytest.approx(0.129, abs=1e-3)  # twice the 6.46 cm head bone
    assert (y[:, 3, 1] > y[:, 2, 1]).mean() > 0.9 and (y[:, 2, 1] > y[:, 20, 1]).mean() > 0.9
