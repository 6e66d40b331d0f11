"""srnpose.evaluation.metrics: joint errors, success rate (max-frame) and its AUC on hand-made numbers."""

import numpy as np
import pytest

from srnpose.evaluation import metrics


def _errors():
    # 3 frames x 2 joints; max errors per frame: 5, 20, 100 mm
    return np.array([[3.0, 5.0], [20.0, 1.0], [0.0, 100.0]])


def test_joint_errors_euclidean():
    gt = np.zeros((2, 2, 3))
    pred = np.array([[[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]], [[1.0, 2.0, 2.0], [0.0, 0.0, -7.0]]])
    np.testing.assert_allclose(metrics.joint_errors(pred, gt), [[5.0, 0.0], [3.0, 7.0]])


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3, 3\).*\(2, 4, 3\)"):
        metrics.joint_errors(np.zeros((2, 3, 3)), np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match=r"\(4, 3\)"):
        metrics.joint_errors(np.zeros((4, 3)), np.zeros((4, 3)))


def test_mean_and_per_joint():
    e = _errors()
    assert metrics.mean_error(e) == pytest.approx(129.0 / 6)
    np.testing.assert_allclose(metrics.per_joint_error(e), [23.0 / 3, 106.0 / 3])


def test_success_rate_uses_the_worst_joint_inclusive():
    curve = metrics.success_rate_max_frame(_errors())
    assert curve.shape == (81,)
    assert curve[4] == 0 and curve[5] == pytest.approx(1 / 3)  # <= tau is inclusive
    assert curve[19] == pytest.approx(1 / 3) and curve[20] == pytest.approx(2 / 3)
    assert curve[80] == pytest.approx(2 / 3)  # the 100 mm frame never succeeds
    assert np.all(np.diff(curve) >= 0)


def test_auc_is_trapezoid_mean_over_range():
    assert metrics.auc(np.ones(81)) == pytest.approx(1.0)
    assert metrics.auc(np.zeros(81)) == pytest.approx(0.0)
    assert metrics.auc(np.linspace(0, 1, 81)) == pytest.approx(0.5)  # exact for a straight line
    # step from 0 to 1 between tau=40 and 41: area = 39.5 + 0.5 -> (0.5 + 39) / 80
    step = (np.arange(81) >= 41).astype(float)
    assert metrics.auc(step) == pytest.approx(39.5 / 80)
    with pytest.raises(ValueError, match=r"\(80,\)"):
        metrics.auc(np.ones(80))


def test_custom_thresholds():
    tau = np.array([0.0, 10.0, 50.0, 200.0])
    curve = metrics.success_rate_max_frame(_errors(), tau)
    np.testing.assert_allclose(curve, [0, 1 / 3, 2 / 3, 1])
    assert 0 < metrics.auc(curve, tau) < 1
