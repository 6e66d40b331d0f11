import numpy as np
import pytest

from srnpose.inference.smoothing import OneEuroConfig, OneEuroFilter


def _run(signal: np.ndarray, fps: float = 30.0, config: OneEuroConfig | None = None) -> np.ndarray:
    f = OneEuroFilter(config)
    return np.stack([f.filter(x, i / fps) for i, x in enumerate(signal)])


def test_reduces_jitter_on_a_noisy_constant():
    rng = np.random.default_rng(0)
    signal = 500.0 + rng.normal(0.0, 3.0, size=(300, 21, 3))  # mm, 3 mm jitter
    out = _run(signal)
    raw_jitter = np.std(np.diff(signal[100:], axis=0))
    out_jitter = np.std(np.diff(out[100:], axis=0))
    assert out_jitter < raw_jitter / 4
    assert abs(out[100:].mean() - 500.0) < 1.0  # no bias


def test_follows_a_step():
    signal = np.concatenate([np.zeros(30), np.full(60, 100.0)])[:, None]  # a 100 mm jump at frame 30
    out = _run(signal)
    assert out[29, 0] == 0.0
    assert 0 < out[31, 0] < 100.0  # smoothed, not copied
    assert abs(out[-1, 0] - 100.0) < 1.0  # settled within 2 s
    assert np.all(np.diff(out[:, 0]) >= 0)  # no overshoot or ringing


def test_faster_motion_means_less_lag():
    t = np.arange(60) / 30.0
    slow_cfg, fast_cfg = OneEuroConfig(beta=0.0), OneEuroConfig(beta=0.05)
    ramp = (1000.0 * t)[:, None]  # 1 m/s
    lag_slow = ramp[-1, 0] - _run(ramp, config=slow_cfg)[-1, 0]
    lag_fast = ramp[-1, 0] - _run(ramp, config=fast_cfg)[-1, 0]
    assert 0 < lag_fast < lag_slow / 3


def test_reset_and_bad_timestamps():
    f = OneEuroFilter()
    f.filter(np.array([1.0]), 0.0)
    assert f.filter(np.array([9.0]), 0.0)[0] == 1.0  # same timestamp: unchanged
    f.reset()
    assert f.filter(np.array([9.0]), 1.0)[0] == 9.0
    with pytest.raises(ValueError):
        OneEuroConfig(min_cutoff_hz=0.0)
