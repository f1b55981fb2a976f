"""Walking cadence from skeletons (NTU-25 joints), to check a dataset's frame rate on its data.

Two estimators that share no signal: the ankles' horizontal separation peaks once per step; one
ankle's horizontal speed peaks once per stride of that foot (every second step).
"""
import numpy as np


def step_period_frames(y):
    """Frames per step: first autocorrelation peak of the ankles' horizontal separation, which
    peaks once per step (feet furthest apart at each heel strike)."""
    d = y[:, 14] - y[:, 18]
    s = np.linalg.norm(d[:, [0, 2]], axis=-1)
    if not np.isfinite(s).all():
        return None
    s = s - s.mean()
    n = len(s)
    ac = np.correlate(s, s, "full")[n - 1:] / (s @ s + 1e-12)
    lo, hi = 3, min(40, n // 2)
    seg = ac[lo:hi]
    peaks = [i for i in range(1, len(seg) - 1)
             if seg[i] > seg[i - 1] and seg[i] >= seg[i + 1] and seg[i] > 0.2]
    return lo + peaks[0] if peaks else None


def stride_period_frames(y, joint):
    """Frames per stride: first autocorrelation peak of one ankle's horizontal speed (it swings
    once per stride of that foot, i.e. every second step)."""
    v = np.diff(y[:, joint], axis=0)
    v[:, 1] = 0
    s = np.linalg.norm(v, axis=-1)
    s = s - s.mean()
    n = len(s)
    ac = np.correlate(s, s, "full")[n - 1:] / (s @ s + 1e-12)
    seg = ac[4:min(60, n // 2)]
    peaks = [i for i in range(1, len(seg) - 1)
             if seg[i] > seg[i - 1] and seg[i] >= seg[i + 1] and seg[i] > 0.2]
    return 4 + peaks[0] if peaks else None


def cadences(seqs, fps):
    """Steps/s at ``fps`` from the two estimators (median step period, median stride period)."""
    steps = [p for p in (step_period_frames(y) for y in seqs) if p]
    strides = [p for p in (stride_period_frames(y, j) for y in seqs for j in (14, 18)) if p]
    assert len(steps) >= 25 and len(strides) >= 50
    return fps / float(np.median(steps)), 2.0 * fps / float(np.median(strides))
