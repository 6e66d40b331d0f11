"""3D hand pose metrics, as the community reports them. Pure numpy, no file I/O.

* joint error: Euclidean distance in mm between predicted and ground-truth joints in camera ``xyz``.
* mean error: the mean over every frame and joint.
* success rate (max-frame): for a threshold ``tau`` in mm, the fraction of frames whose *worst* joint error
  is at most ``tau`` (Taylor et al. 2012; the curve every hand-pose paper plots, tau = 0..80 mm).
* AUC: the area under that curve divided by the threshold range, i.e. the trapezoid mean of the curve over
  ``[tau_min, tau_max]`` (0..80 mm by default). It lies in ``[0, 1]``; 1 means every frame within 0 mm.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DEFAULT_THRESHOLDS_MM",
    "joint_errors",
    "mean_error",
    "per_joint_error",
    "success_rate_max_frame",
    "auc",
]

# tau = 0, 1, ..., 80 mm: the community's success-rate range (81 values). Read-only so it is a safe default.
DEFAULT_THRESHOLDS_MM = np.arange(0, 81, dtype=np.float64)
DEFAULT_THRESHOLDS_MM.setflags(write=False)


def joint_errors(pred_xyz: np.ndarray, gt_xyz: np.ndarray) -> np.ndarray:
    """Per-joint Euclidean error in mm: ``pred_xyz``, ``gt_xyz`` (N, J, 3) -> (N, J)."""
    pred = np.asarray(pred_xyz, dtype=np.float64)
    gt = np.asarray(gt_xyz, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"expected predictions and ground truth of the same shape (N, J, 3), "
                         f"got {pred.shape} and {gt.shape}")
    return np.linalg.norm(pred - gt, axis=-1)  # (N, J)


def _check_errors(errors: np.ndarray) -> np.ndarray:
    errors = np.asarray(errors, dtype=np.float64)
    if errors.ndim != 2 or errors.shape[0] == 0 or errors.shape[1] == 0:
        raise ValueError(f"expected joint errors of shape (N, J) with N, J > 0, got {errors.shape}")
    return errors


def mean_error(errors: np.ndarray) -> float:
    """Mean joint error in mm over all frames and joints: (N, J) -> float."""
    return float(_check_errors(errors).mean())


def per_joint_error(errors: np.ndarray) -> np.ndarray:
    """Mean error of each joint over the frames in mm: (N, J) -> (J,)."""
    return _check_errors(errors).mean(axis=0)


def success_rate_max_frame(errors: np.ndarray, thresholds: np.ndarray | None = None) -> np.ndarray:
    """Fraction of frames whose maximum joint error is <= tau, for each tau: (N, J) -> (T,) in [0, 1].

    ``thresholds`` in mm defaults to 0..80 (81 values).
    """
    thresholds = DEFAULT_THRESHOLDS_MM if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if thresholds.ndim != 1:
        raise ValueError(f"expected thresholds of shape (T,), got {thresholds.shape}")
    max_err = _check_errors(errors).max(axis=1)  # (N,)
    return (max_err[None, :] <= thresholds[:, None]).mean(axis=1)  # (T,)


def auc(curve: np.ndarray, thresholds: np.ndarray | None = None) -> float:
    """Area under a success curve, normalized by the threshold range (trapezoid rule) -> [0, 1]."""
    thresholds = DEFAULT_THRESHOLDS_MM if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    curve = np.asarray(curve, dtype=np.float64)
    if curve.ndim != 1 or curve.shape != thresholds.shape or curve.size < 2:
        raise ValueError(f"expected a curve and thresholds of the same shape (T,) with T >= 2, "
                         f"got {curve.shape} and {thresholds.shape}")
    span = float(thresholds[-1] - thresholds[0])
    if span <= 0:
        raise ValueError(f"thresholds must increase, got {thresholds[0]} .. {thresholds[-1]}")
    area = float(np.sum((curve[1:] + curve[:-1]) * np.diff(thresholds)) / 2.0)
    return area / span
