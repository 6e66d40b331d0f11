"""Evaluation plots: the community's success-rate curve and per-joint error bars (PNG, matplotlib Agg).

matplotlib is imported inside each function, so importing this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from srnpose.evaluation.metrics import DEFAULT_THRESHOLDS_MM, auc
from srnpose.outputs import atomic_path

__all__ = ["plot_success_curves", "plot_per_joint"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_success_curves(curves: Mapping[str, Sequence[float]], path: str | Path,
                        thresholds: Sequence[float] | None = None,
                        mean_errors_mm: Mapping[str, float] | None = None,
                        title: str = "") -> Path:
    """Success rate (max-frame) against the error threshold, one line per method.

    ``curves``: {name: (T,) fractions in [0, 1]}; ``thresholds`` in mm default to 0..80. The legend
    gives each method's AUC and, when ``mean_errors_mm`` has it, its mean error.
    """
    plt = _pyplot()
    tau = DEFAULT_THRESHOLDS_MM if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    for name, curve in curves.items():
        curve = np.asarray(curve, dtype=np.float64)
        label = f"{name} (AUC {auc(curve, tau):.3f}"
        if mean_errors_mm and name in mean_errors_mm:
            label += f", mean {mean_errors_mm[name]:.2f} mm"
        ax.plot(tau, 100.0 * curve, linewidth=2, label=label + ")")
    ax.set_xlim(float(tau[0]), float(tau[-1]))
    ax.set_ylim(0, 100)
    ax.set_xticks(np.arange(float(tau[0]), float(tau[-1]) + 1e-9, 10))
    ax.set_yticks(np.arange(0, 101, 10))
    ax.set_xlabel("maximum allowed distance to ground truth (mm)")
    ax.set_ylabel("fraction of frames within distance (%)")
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.35)
    ax.legend(loc="lower right", fontsize=9)
    return _save(fig, path)


def plot_per_joint(per_joint_mm: Mapping[str, Sequence[float]], joint_names: Sequence[str] | None,
                   path: str | Path, title: str = "") -> Path:
    """Grouped bars of the mean error per joint (mm), one group per joint plus a final "mean" group.

    ``per_joint_mm``: {name: (J,) mm}; every method must have the same J. ``joint_names`` (J,) or None
    (then the joints are numbered).
    """
    plt = _pyplot()
    names = list(per_joint_mm)
    values = [np.asarray(per_joint_mm[n], dtype=np.float64) for n in names]
    num_joints = values[0].shape[0] if values else 0
    if any(v.shape != (num_joints,) for v in values):
        raise ValueError(f"expected per-joint errors of one shape (J,), got {[v.shape for v in values]}")
    if joint_names is None or len(joint_names) != num_joints:
        joint_names = [str(j) for j in range(num_joints)]
    labels = [*joint_names, "mean"]
    groups = np.arange(len(labels))
    width = 0.8 / max(len(names), 1)
    width_in = max(6.4, 0.35 * len(labels) * max(1.0, len(names) ** 0.5) + 2.0)
    fig, ax = plt.subplots(figsize=(width_in, 4.8), dpi=120)
    for i, (name, v) in enumerate(zip(names, values)):
        heights = np.append(v, v.mean())  # the mean group: mean over joints = overall mean error
        ax.bar(groups + (i - (len(names) - 1) / 2) * width, heights, width,
               label=f"{name} (mean {heights[-1]:.2f} mm)")
    ax.axvline(len(labels) - 1.5, color="0.5", linestyle="--", linewidth=0.8)  # joints | mean
    ax.set_xticks(groups)
    ax.set_xticklabels(labels, rotation=45, ha="right", rotation_mode="anchor", fontsize=9)
    ax.get_xticklabels()[-1].set_fontweight("bold")
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.margins(y=0.08)
    ax.set_ylabel("mean error (mm)")
    if title:
        ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.35)
    ax.set_axisbelow(True)
    ax.legend(fontsize=9)
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` under a temporary name beside it, renamed when complete; close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp)
    finally:
        plt.close(fig)
    return path
