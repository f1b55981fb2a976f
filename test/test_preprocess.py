"""The one preprocessing function: exact resampling, repair, rejection reasons, real data."""
import time

import numpy as np
import pytest

from pgfa_models.formats import read_utd_mhad, scan_utd_mhad
from pgfa_models.preprocess import (REASONS, PreprocessConfig, preprocess_body,
                                    preprocess_clip, resample_linear)

RNG = np.random.default_rng(0)
P = RNG.normal(size=(25, 3)) + 2.0  # base pose, away from zero
V = RNG.normal(size=(25, 3))        # per-joint velocity (per unit time)


def linear_body(t):
    """NTU-25 body whose every joint moves linearly in time t."""
    return P[None] + V[None] * np.asarray(t, float)[:, None, None]


def expected(t_grid, t0):
    """Linear body at t_grid translated by the spine base at t0, as (3, n, 25)."""
    return (linear_body(t_grid) - linear_body([t0])[:, :1]).transpose(2, 0, 1)


def test_resample_linear_exact():
    t = np.arange(37.0)
    np.testing.assert_allclose(resample_linear(linear_body(t), 50), linear_body(np.linspace(0, 36, 50)))
    ts = np.array([0.0, 0.1, 0.35, 0.4, 0.9, 1.0])  # irregular
    np.testing.assert_allclose(resample_linear(linear_body(ts), 11, ts),
                               linear_body(np.linspace(0, 1, 11)), atol=1e-12)
    perm = [3, 0, 5, 1, 4, 2, 4]  # out of order with a duplicated stamp
    np.testing.assert_allclose(resample_linear(linear_body(ts)[perm], 11, ts[perm]),
                               linear_body(np.linspace(0, 1, 11)), atol=1e-12)
    assert resample_linear(np.ones((1, 2)), 4).shape == (4, 2)


def test_resample_duplicate_stamp_keeps_first_frame():
    x = np.array([0.0, 10.0, 99.0, 20.0, 5.0])
    t = np.array([0.0, 1.0, 1.0, 2.0, np.nan])  # duplicate and non-finite stamps
    np.testing.assert_allclose(resample_linear(x, 5, t), [0, 5, 10, 15, 20])


def test_body_exact_on_linear_motion():
    r = preprocess_body(linear_body(np.arange(90)), "ntu_25")
    assert r.reason is None and r.repaired_joints == 0
    assert r.clip.shape == (3, 50, 25) and r.clip.dtype == np.float32
    np.testing.assert_allclose(r.clip, expected(np.linspace(0, 89, 50), 0), atol=1e-5)
    np.testing.assert_allclose(r.clip[:, 0, 0], 0.0, atol=1e-6)  # spine base of frame 0 is origin


def test_body_irregular_out_of_order_timestamps():
    ts = np.sort(RNG.uniform(0, 3, size=60))
    ts[0], ts[-1] = 0.0, 3.0
    body = linear_body(ts)
    perm = RNG.permutation(60)
    stamps = np.concatenate([ts[perm], [ts[5]]])          # shuffled + one duplicate
    joints = np.concatenate([body[perm], body[5:6] + 9])  # duplicate frame is garbage
    r = preprocess_body(joints, "ntu_25", timestamps=stamps)
    assert r.reason is None
    # the duplicate comes last, so the first (good) frame for that stamp is kept
    np.testing.assert_allclose(r.clip, expected(np.linspace(0, 3, 50), 0.0), atol=1e-5)


@pytest.mark.parametrize("bad", ["nan", "zero", "inf"])
def test_interior_gap_repaired_by_interpolation(bad):
    x = linear_body(np.arange(30))
    x[10:14, 7] = {"nan": np.nan, "zero": 0.0, "inf": np.inf}[bad]
    cfg = PreprocessConfig(target_frames=30)
    r = preprocess_body(x, "ntu_25", cfg)
    assert r.reason is None and r.repaired_joints == 4
    np.testing.assert_allclose(r.clip, expected(np.arange(30), 0), atol=1e-5)


def test_edge_gaps_take_nearest_and_empty_frames_dropped():
    x = linear_body(np.arange(30))
    x[:3, 5] = np.nan        # leading gap -> value of frame 3
    x[-2:, 9] = np.nan       # trailing gap -> value of frame 27
    x[15] = np.nan           # a frame with nothing valid: dropped, motion stays linear
    r = preprocess_body(x, "ntu_25", PreprocessConfig(target_frames=30))
    assert r.reason is None and r.repaired_joints == 5
    want = expected(np.arange(30), 0)
    want[:, :3, 5] = want[:, 3:4, 5]
    want[:, -2:, 9] = want[:, 27:28, 9]
    np.testing.assert_allclose(r.clip, want, atol=1e-5)


def test_zero_kept_when_not_missing():
    x = linear_body(np.arange(20))
    x[4, 3] = 0.0
    r = preprocess_body(x, "ntu_25", PreprocessConfig(target_frames=20, zero_is_missing=False))
    assert r.repaired_joints == 0
    np.testing.assert_allclose(r.clip[:, 4, 3], -linear_body([0])[0, 0], atol=1e-5)


def test_first_frame_missing_spine_base_uses_repaired_origin():
    x = linear_body(np.arange(20))
    x[0, 0] = np.nan
    r = preprocess_body(x, "ntu_25", PreprocessConfig(target_frames=20))
    assert r.reason is None
    np.testing.assert_allclose(r.clip[:, 0, 0], 0.0, atol=1e-6)


@pytest.mark.parametrize("make, cfg, reason", [
    (lambda x: x[:0], {}, "empty"),
    (lambda x: x[:, :24], {}, "bad_shape"),
    (lambda x: x[..., :2], {}, "bad_shape"),
    (lambda x: np.full_like(x, np.nan), {}, "non_finite_input"),
    (lambda x: np.zeros_like(x), {}, "non_finite_input"),
    (lambda x: x[:4], {}, "too_few_frames"),
    (lambda x: np.where((np.arange(40) % 3 == 0)[:, None, None], x, np.nan), {}, "too_many_missing_frames"),
    (lambda x: np.where((np.arange(25) == 11)[None, :, None], np.nan, x), {}, "too_many_missing_joints"),
    (lambda x: np.where(((np.arange(40) >= 10) & (np.arange(40) < 22))[:, None, None]
                        & (np.arange(25) == 4)[None, :, None], np.nan, x), {}, "too_many_missing_joints"),
    (lambda x: np.where((np.arange(40) < 12)[:, None, None] & (np.arange(25) == 4)[None, :, None],
                        np.nan, x), {"max_gap_frames": 11}, "too_many_missing_joints"),
])
def test_rejections(make, cfg, reason):
    assert reason in REASONS
    r = preprocess_body(make(linear_body(np.arange(40))), "ntu_25", PreprocessConfig(**cfg))
    assert r.clip is None and r.reason == reason


def test_gap_at_limit_is_repaired_and_bad_stamps_rejected():
    x = linear_body(np.arange(40))
    x[10:20, 4] = np.nan  # exactly max_gap_frames = 10
    assert preprocess_body(x, "ntu_25").reason is None
    assert preprocess_body(x, "ntu_25", timestamps=np.arange(39)).reason == "bad_timestamps"
    assert preprocess_body(x, "ntu_25", timestamps=np.full(40, np.nan)).reason == "bad_timestamps"
    assert preprocess_body("junk", "ntu_25").reason == "bad_shape"
    with pytest.raises(KeyError):
        preprocess_body(x, "no_such_layout")


def test_clip_multi_body_shares_origin_and_slots():
    a = linear_body(np.arange(40))
    b = a + np.array([1.0, 0.0, 0.5])
    r = preprocess_clip([a, b, a + 5], "ntu_25", num_person=2)
    assert r.reason is None and r.clip.shape == (3, 50, 25, 2)
    np.testing.assert_allclose(r.clip[..., 1] - r.clip[..., 0],
                               np.broadcast_to(np.array([1.0, 0.0, 0.5])[:, None, None], (3, 50, 25)),
                               atol=1e-5)
    one = preprocess_clip([np.full_like(a, np.nan), a], "ntu_25", num_person=2)
    assert one.reason is None and not one.clip[..., 1].any()  # rejected body skipped, slot zero
    np.testing.assert_allclose(one.clip[..., 0], preprocess_body(a, "ntu_25").clip)
    assert preprocess_clip([], "ntu_25").reason == "empty"
    assert preprocess_clip([a[:2]], "ntu_25").reason == "too_few_frames"


def test_view_and_scale_normalisation():
    x = linear_body(np.arange(20))
    x[:, 12] = x[:, 0] + [-0.1, 0.0, 0.0]
    x[:, 16] = x[:, 0] + [0.1, 0.0, 0.0]
    x[:, 20] = x[:, 0] + [0.0, 0.5, 0.0]
    a = np.deg2rad(40)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    cfg = PreprocessConfig(view_normalize=True, scale_normalize=True)
    r = preprocess_body(x @ rot.T, "ntu_25", cfg)
    hip = r.clip[:, 0, 16] - r.clip[:, 0, 12]
    assert hip[0] > 0 and abs(hip[2]) < 1e-5  # hip line along +x
    assert np.linalg.norm(r.clip[:, :, 20] - r.clip[:, :, 0], axis=0) == pytest.approx(1.0, abs=1e-5)


def test_real_utd_sequences(utd_dir):
    recs = scan_utd_mhad(utd_dir)[::20]
    for rec in recs:
        r = preprocess_body(read_utd_mhad(rec.path), "kinect_v1_20")
        assert r.reason is None, rec.path.name
        assert np.isfinite(r.clip).all() and np.abs(r.clip).max() < 3.0
        assert (r.clip[1, :, 3] > r.clip[1, :, 0]).mean() > 0.9  # head above spine base


def test_speed_90_frame_window(utd_dir):
    x = read_utd_mhad(utd_dir / "a3_s1_t1_skeleton.mat")
    x = np.concatenate([x, x[:18]])
    x[30:35, 10] = np.nan
    stamps = np.arange(90) / 30.0
    preprocess_clip([x], "kinect_v1_20", timestamps=stamps)
    t0 = time.perf_counter()
    for _ in range(50):
        r = preprocess_clip([x], "kinect_v1_20", timestamps=stamps)
    per_call = (time.perf_counter() - t0) / 50
    assert r.reason is None and r.repaired_joints == 5
    assert per_call < 5e-3, f"{per_call * 1e3:.2f} ms"


# ----------------------------------------------------------------------------- sensor invariance
def _standing(n=20):
    """A crude standing NTU body (metres, y up) swaying along x over n frames."""
    x = np.zeros((n, 25, 3))
    base = {0: (0, 1.0, 3), 1: (0, 1.25, 3), 2: (0, 1.55, 3), 3: (0, 1.7, 3), 20: (0, 1.45, 3),
            4: (-0.16, 1.45, 3), 5: (-0.2, 1.2, 3), 6: (-0.22, 0.97, 3), 7: (-0.23, 0.9, 3),
            8: (0.16, 1.45, 3), 9: (0.2, 1.2, 3), 10: (0.22, 0.97, 3), 11: (0.23, 0.9, 3),
            12: (-0.08, 0.95, 3), 13: (-0.09, 0.5, 3), 14: (-0.09, 0.08, 3), 15: (-0.09, 0.02, 2.9),
            16: (0.08, 0.95, 3), 17: (0.09, 0.5, 3), 18: (0.09, 0.08, 3), 19: (0.09, 0.02, 2.9),
            21: (-0.24, 0.85, 3), 22: (-0.2, 0.9, 3), 23: (0.24, 0.85, 3), 24: (0.2, 0.9, 3)}
    for j, p in base.items():
        x[:, j] = p
    x[..., 0] += np.linspace(0, 0.2, n)[:, None]
    return x


def test_common_joint_set_derives_sensor_specific_joints_one_way():
    x = _standing()
    moved = x.copy()  # another sensor: hip centre higher, shoulder centre lower, no hand tips
    moved[:, 0, 1] += 0.07
    moved[:, 20, 1] -= 0.14
    moved[:, 21:25] = 0.0 + moved[:, [7, 7, 11, 11]]
    cfg = PreprocessConfig(joint_set="common", zero_is_missing=False)
    a = preprocess_body(x, "ntu_25", cfg).clip
    b = preprocess_body(moved, "ntu_25", cfg).clip
    np.testing.assert_allclose(a, b, atol=1e-6)
    # without it the two sensors differ
    raw = PreprocessConfig(zero_is_missing=False)
    assert np.abs(preprocess_body(x, "ntu_25", raw).clip - preprocess_body(moved, "ntu_25", raw).clip).max() > 0.05
    # the derived joints follow the rule
    c = a.transpose(1, 2, 0)
    np.testing.assert_allclose(c[:, 0], 0.5 * (c[:, 12] + c[:, 16]), atol=1e-6)
    np.testing.assert_allclose(c[:, 20], 0.5 * (c[:, 4] + c[:, 8]), atol=1e-6)
    np.testing.assert_allclose(c[:, 21], c[:, 7], atol=1e-6)


def test_arms_scale_reference_ignores_the_legs_and_spine():
    x = _standing()
    y = x.copy()
    y[:, [13, 14, 15, 17, 18, 19], 1] += 0.3   # short inferred legs (close range)
    y[:, 20, 1] -= 0.14                       # a different spine-shoulder placement
    cfg = PreprocessConfig(scale_normalize=True, scale_reference="arms", zero_is_missing=False)
    a, b = preprocess_body(x, "ntu_25", cfg).clip, preprocess_body(y, "ntu_25", cfg).clip
    upper = [3, 4, 5, 6, 7, 8, 9, 10, 11]
    np.testing.assert_allclose(a[:, :, upper], b[:, :, upper], atol=1e-6)
    spine = PreprocessConfig(scale_normalize=True, zero_is_missing=False)
    sa, sb = preprocess_body(x, "ntu_25", spine).clip, preprocess_body(y, "ntu_25", spine).clip
    assert np.abs(sa[:, :, upper] - sb[:, :, upper]).max() > 0.05
    # a doubled body gives the same clip
    np.testing.assert_allclose(preprocess_body(2 * x, "ntu_25", cfg).clip, a, atol=1e-5)


def test_window_seconds_gives_the_same_speed_at_any_frame_rate():
    """The same 1 s motion recorded at 15, 30 and 120 Hz, in a 2 s window -> the same clip."""
    cfg = PreprocessConfig(window_seconds=2.0)
    clips = []
    for hz in (15, 30, 120):
        t = np.arange(int(hz) + 1) / hz
        clips.append(preprocess_body(linear_body(t), "ntu_25", cfg, timestamps=t).clip)
    for c in clips[1:]:
        np.testing.assert_allclose(c, clips[0], atol=1e-9)
    # the 1 s motion fills the middle half; the edges hold the first / last pose
    c = clips[0]
    np.testing.assert_allclose(c[:, 0], c[:, 10], atol=1e-9)
    np.testing.assert_allclose(c[:, -1], c[:, -10], atol=1e-9)
    assert np.abs(c[:, 24] - c[:, 12]).max() > 0.1
    # without timestamps, source_rate_hz says how long a frame is
    a = preprocess_body(linear_body(np.arange(16) / 15), "ntu_25",
                        PreprocessConfig(window_seconds=2.0, source_rate_hz=15.0)).clip
    np.testing.assert_allclose(a, clips[0], atol=1e-9)


def test_canonical_lower_body_keeps_hip_motion_and_drops_leg_shape():
    x = _standing()
    x[:, [12, 16], 1] -= np.linspace(0, 0.5, len(x))[:, None]  # hips drop (a fall / a sit)
    bent = x.copy()
    bent[:, [13, 17], 2] -= 0.3  # knees bent toward the sensor
    cfg = PreprocessConfig(lower_body="canonical", scale_normalize=True, scale_reference="arms",
                           zero_is_missing=False)
    a, b = preprocess_body(x, "ntu_25", cfg).clip, preprocess_body(bent, "ntu_25", cfg).clip
    np.testing.assert_allclose(a, b, atol=1e-6)
    knee_y = a[1, :, 13]
    assert knee_y[-1] < knee_y[0] - 0.3  # the legs follow the dropping hips


@pytest.mark.parametrize("bad", [{"joint_set": "kinect"}, {"scale_reference": "legs"},
                                 {"lower_body": "none"}, {"window_seconds": -1.0},
                                 {"source_rate_hz": 0.0}, {"target_frames": 1}])
def test_invalid_invariance_options_are_refused(bad):
    with pytest.raises(ValueError):
        PreprocessConfig(**bad)


def test_preprocess_config_from_dict_is_strict():
    """Issue 13: one rule everywhere -- an unknown preprocessing option is an error naming it."""
    from pgfa_models.config import ConfigError, to_dict
    from pgfa_models.preprocess import PreprocessConfig, preprocess_config_from_dict

    assert preprocess_config_from_dict(None) == PreprocessConfig()
    cfg = PreprocessConfig(view_normalize=True, window_seconds=1.5)
    assert preprocess_config_from_dict(to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match=r"checkpoint\.preprocess: unknown preprocessing option\(s\) \['view_normalise'\]"):
        preprocess_config_from_dict({"view_normalise": True}, "checkpoint.preprocess")
    for bad in ({"target_frames": "50"}, {"view_normalize": 1}, {"window_seconds": float("nan")},
                {"joint_set": "all"}, {"target_frames": 1}, [("target_frames", 50)]):
        with pytest.raises(ConfigError):
            preprocess_config_from_dict(bad)
