"""Multi-source corpus: real trials of every source, cut into the live node's windows."""
import numpy as np
import pytest

from pgfa_models.preprocess import PreprocessConfig, preprocess_clip
from pgfa_models.windows import WindowConfig, WindowManager
from training import corpus
from training.corpus import (concat, load_windows, one_window_per_trial, trial_features, trial_windows,
                             window_config_for)

PRE = PreprocessConfig(view_normalize=True, scale_normalize=True, scale_reference="arms", joint_set="common",
                       window_seconds=1.5)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PGFA_CACHE_DIR", str(tmp_path))


@pytest.fixture
def roots(nwucla_dir, smartfall_dir, bandai_dir, utd_dir):
    return {"nw_ucla": nwucla_dir, "smartfallmm": smartfall_dir, "bandai": bandai_dir, "utd_mhad": utd_dir}


def test_trial_windows_are_the_live_managers_windows():
    rng = np.random.default_rng(0)
    joints = rng.normal(size=(100, 20, 3)).astype(np.float32)
    cfg = window_config_for(30.0, 45, 10)
    wins = trial_windows(joints, cfg)
    m = WindowManager(20, cfg)
    live = []
    for i, j in enumerate(joints):
        m.add(0, i / 30.0, j, now=i / 30.0)
        live += m.pop_ready()
    assert len(wins) == len(live) == 6  # frames 0-44, 10-54, ..., 50-94
    for (stamps, wj), w in zip(wins, live):
        np.testing.assert_array_equal(wj, w.joints)
        np.testing.assert_allclose(stamps, w.stamps)
    short = trial_windows(joints[:20], cfg)  # shorter than a window: the whole trial
    assert len(short) == 1 and short[0][1].shape == (20, 20, 3)


@pytest.mark.parametrize("source,layout", [("utd_mhad", "kinect_v1_20"), ("nw_ucla", "kinect_v1_sdk_20"),
                                           ("smartfallmm", "azure_kinect_32"), ("bandai", "bandai_bvh")])
def test_every_source_gives_upright_normalised_windows(source, layout, roots):
    ws = load_windows(source, roots[source], PRE, limit=6)
    assert ws.x.shape[1:] == (3, 50, 25, 1) and ws.x.dtype == np.float32
    assert len(ws.trial_names) >= 5 and set(ws.source) == {source}
    head_y, foot_y = ws.x[:, 1, :, 3].mean(), ws.x[:, 1, :, [15, 19]].mean()
    assert head_y > 0.5 > foot_y  # y up after every source's mapping (units of the arm length)
    arm = 0.5 * sum(np.linalg.norm(ws.x[:, :, :, a] - ws.x[:, :, :, b], axis=1) for a, b in
                    ((4, 5), (8, 9), (5, 6), (9, 10)))
    assert 0.9 < np.median(arm) < 1.1  # the scale reference: one arm length for every sensor
    # the same window through the one preprocessing function gives the cached clip
    tr, _ = corpus.trials(source, roots[source])
    stamps, wj = trial_windows(tr[0].read(), window_config_for(tr[0].rate_hz, 45, 10), tr[0].rate_hz)[0]
    np.testing.assert_allclose(preprocess_clip([wj], layout, PRE, 1, timestamps=stamps).clip, ws.x[0], atol=1e-6)
    again = load_windows(source, roots[source], PRE, limit=6)  # from the cache
    np.testing.assert_array_equal(again.x, ws.x)


def test_windows_span_the_same_time_at_any_frame_rate():
    for rate, stride in ((30.0, 10), (14.0, 5), (120.0, 40)):
        joints = np.zeros((int(rate * 4), 20, 3), np.float32)
        wins = trial_windows(joints, window_config_for(rate, 45, 10), rate)
        spans = np.array([s[-1] - s[0] + 1 / rate for s, _ in wins])
        assert (spans >= 1.5 - 1e-6).all() and (spans <= 1.5 + 1 / rate + 1e-6).all(), (rate, spans)
        assert round((wins[1][0][-1] - wins[0][0][-1]) * rate) == stride  # window ends, like the node


def test_bandai_missing_motion_file_is_counted(roots):
    ws = load_windows("bandai", roots["bandai"], PRE, limit=3)
    assert sum(v for k, v in ws.rejected.items() if k.startswith("skipped:")) == 1


def test_one_window_per_trial_and_trial_features(roots):
    a = load_windows("utd_mhad", roots["utd_mhad"], PRE, limit=5)
    b = load_windows("smartfallmm", roots["smartfallmm"], PRE, limit=5)
    ws = concat([a, b])
    assert len(ws.trial_names) == 10 and len(np.unique(ws.trial)) == 10
    i1 = one_window_per_trial(ws, np.random.default_rng(0))
    i2 = one_window_per_trial(ws, np.random.default_rng(1))
    assert len(i1) == 10 and sorted(ws.trial[i1]) == list(range(10))
    assert not np.array_equal(i1, i2)  # a new crop each epoch (SmartFallMM trials have many windows)
    f = np.random.default_rng(0).normal(size=(len(ws), 8))
    uniq, tf = trial_features(f, ws.trial)
    assert tf.shape == (10, 8) and np.allclose(np.linalg.norm(tf, axis=1), 1)


def test_unknown_source_and_missing_root_are_clear(tmp_path):
    with pytest.raises(corpus.DatasetError, match="unknown source"):
        corpus.resolve_root("kinect")
    with pytest.raises(corpus.DatasetError, match="not found"):
        corpus.resolve_root("nw_ucla", tmp_path / "nope")
