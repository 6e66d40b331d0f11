"""The community's evaluation protocol: uvd prediction files -> xyz errors -> report, table and plots.

File format (the community's, e.g. the "awesome hand pose estimation" evaluation collection): one text
line per test frame, ``u v d`` for every joint, whitespace separated (u, v in pixels, d in mm). Predictions
and labels are back-projected to camera ``xyz`` (mm) with the dataset's intrinsics, then compared with
:mod:`srnpose.evaluation.metrics`.

Report schema (``report.json``) for published methods::

    {"dataset": str, "frames": int,
     "methods": {NAME: {"mean_error_mm": float, "per_joint_mm": [J floats],
                        "success_rate_max_frame": [81 fractions for tau = 0..80 mm], "auc": float}}}

A single-model report (a checkpoint evaluation) is the metrics dict of :func:`evaluate_predictions` at
the top level plus extra keys (e.g. ``"stages": [{...metrics...}, ...]``); :func:`write_report` handles both.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from srnpose.cameras import CAMERAS
from srnpose.errors import UserError
from srnpose.evaluation import metrics
from srnpose.evaluation.plots import plot_per_joint, plot_success_curves
from srnpose.geometry import Intrinsics, uvd_to_xyz
from srnpose.hand.skeleton import LAYOUTS
from srnpose.outputs import OutputFolder, atomic_path, writing

__all__ = [
    "DATASET_INTRINSICS",
    "REPORT_FILES",
    "get_dataset_intrinsics",
    "joint_names_for",
    "load_uvd_file",
    "write_predictions_txt",
    "evaluate_predictions",
    "compare_methods",
    "evaluate_files",
    "report_methods",
    "format_table",
    "write_report",
]

# The intrinsics the community uses to turn each dataset's uvd files into xyz. NYU's fy is negative (y up).
DATASET_INTRINSICS: dict[str, Intrinsics] = {
    "nyu": CAMERAS["nyu"].intrinsics,  # 588.03, -587.07, 320, 240
    "icvl": CAMERAS["icvl"].intrinsics,  # 240.99, 240.96, 160, 120
    "msra": CAMERAS["msra"].intrinsics,  # 241.42, 241.42, 160, 120
    "hands17": CAMERAS["hands17"].intrinsics,  # 475.065948, 475.065857, 315.944855, 245.287079
}

# What write_report writes in its folder.
REPORT_FILES: dict[str, str] = {
    "report": "report.json",
    "summary": "summary.md",
    "success_curves": "success_curves.png",
    "per_joint": "per_joint.png",
}

TABLE_THRESHOLD_MM = 20  # the table's "frames <= 20 mm" column


def get_dataset_intrinsics(dataset: str) -> Intrinsics:
    """The community's intrinsics for ``dataset``; an unknown name lists the valid ones."""
    try:
        return DATASET_INTRINSICS[dataset]
    except KeyError:
        raise UserError(f"unknown dataset {dataset!r}; available: {', '.join(DATASET_INTRINSICS)}") from None


def joint_names_for(dataset: str | None, num_joints: int) -> tuple[str, ...] | None:
    """The dataset layout's joint names when its joint count is ``num_joints``, else None."""
    layout = LAYOUTS.get(dataset or "")
    if layout is None or len(layout.joint_names) != num_joints:
        return None
    return tuple(layout.joint_names)


# --------------------------------------------------------------------------- community files

def _find_bad_line(path: Path, expected: int | None) -> str:
    """Slow path, run only when the fast parse failed: describe the first malformed line."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            tokens = line.split("#", 1)[0].split()
            if not tokens:
                continue
            for token in tokens:
                try:
                    value = float(token)
                except ValueError:
                    return f"{path}, line {number}: {token[:20]!r} is not a number"
                if not np.isfinite(value):
                    return f"{path}, line {number}: {token!r} is not a finite number"
            if expected is None:
                expected = len(tokens)
            if len(tokens) != expected:
                return (f"{path}, line {number}: expected {expected} numbers (u v d per joint), "
                        f"got {len(tokens)}")
    return f"{path}: could not be read as a table of numbers"


def load_uvd_file(path: str | Path, num_joints: int | None = None) -> np.ndarray:
    """Read a community uvd file -> (N, J, 3) float64; one line per frame, ``u v d`` per joint.

    Blank lines and ``#`` comments are skipped. A malformed file raises ``UserError`` naming the file and
    the first bad line (wrong number count, non-numeric or non-finite value).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    expected = None if num_joints is None else 3 * int(num_joints)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": reported below
            table = np.loadtxt(path, dtype=np.float64, ndmin=2)  # (N, 3J), one C pass
    except (ValueError, UnicodeDecodeError):
        raise UserError(_find_bad_line(path, expected)) from None
    if table.size == 0:
        raise UserError(f"{path}: no frames (the file is empty)")
    if not np.all(np.isfinite(table)):
        raise UserError(_find_bad_line(path, expected))
    count = table.shape[1]
    if expected is not None and count != expected:
        raise UserError(_find_bad_line(path, expected))
    if count % 3 != 0:
        raise UserError(f"{path}: {count} numbers per line is not a multiple of 3 (u v d per joint)")
    return table.reshape(table.shape[0], count // 3, 3)  # (N, J, 3)


def write_predictions_txt(path: str | Path, pred_uvd: np.ndarray) -> Path:
    """Write (N, J, 3) uvd predictions in the community format (one line per frame, 4 decimals)."""
    pred = np.asarray(pred_uvd, dtype=np.float64)
    if pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"expected predictions of shape (N, J, 3), got {pred.shape}")
    path = Path(path)
    with atomic_path(path) as tmp:
        np.savetxt(tmp, pred.reshape(pred.shape[0], -1), fmt="%.4f", delimiter=" ")  # (N, 3J)
    return path


# --------------------------------------------------------------------------- metrics and reports

def evaluate_predictions(pred_xyz: np.ndarray, gt_xyz: np.ndarray,
                         thresholds: np.ndarray | None = None) -> dict[str, Any]:
    """All metrics of one method, JSON-ready: (N, J, 3) mm xyz each ->
    ``{"mean_error_mm", "per_joint_mm" [J], "success_rate_max_frame" [T], "auc"}``."""
    errors = metrics.joint_errors(pred_xyz, gt_xyz)  # (N, J)
    curve = metrics.success_rate_max_frame(errors, thresholds)  # (T,)
    return {
        "mean_error_mm": metrics.mean_error(errors),
        "per_joint_mm": [float(e) for e in metrics.per_joint_error(errors)],
        "success_rate_max_frame": [float(c) for c in curve],
        "auc": metrics.auc(curve, thresholds),
    }


def _check_counts(pred: np.ndarray, gt: np.ndarray, source: str, labels_source: str) -> None:
    if pred.ndim != 3 or pred.shape[-1] != 3:
        raise UserError(f"{source}: expected (frames, joints, 3) uvd, got shape {pred.shape}")
    if pred.shape[0] != gt.shape[0]:
        raise UserError(f"{source}: {pred.shape[0]} frames, but {labels_source} has {gt.shape[0]}")
    if pred.shape[1] != gt.shape[1]:
        raise UserError(f"{source}: {pred.shape[1]} joints per frame, but {labels_source} has {gt.shape[1]}")


def compare_methods(predictions_uvd: Mapping[str, np.ndarray], gt_uvd: np.ndarray, intrinsics: Intrinsics,
                    dataset: str = "custom", sources: Mapping[str, str] | None = None,
                    labels_source: str = "the labels") -> dict[str, Any]:
    """Evaluate several methods' (N, J, 3) uvd predictions against (N, J, 3) uvd labels.

    Returns the report ``{"dataset", "frames", "methods": {name: metrics}}``. A frame or joint count that
    differs from the labels raises ``UserError`` naming ``sources[name]`` (the file) and both counts.
    """
    gt = np.asarray(gt_uvd, dtype=np.float64)
    if gt.ndim != 3 or gt.shape[-1] != 3:
        raise UserError(f"{labels_source}: expected (frames, joints, 3) uvd, got shape {gt.shape}")
    gt_xyz = uvd_to_xyz(gt, intrinsics)  # (N, J, 3) mm
    methods = {}
    for name, pred_uvd in predictions_uvd.items():
        pred = np.asarray(pred_uvd, dtype=np.float64)
        _check_counts(pred, gt, (sources or {}).get(name, f"predictions {name!r}"), labels_source)
        methods[name] = evaluate_predictions(uvd_to_xyz(pred, intrinsics), gt_xyz)
    return {"dataset": dataset, "frames": int(gt.shape[0]), "methods": methods}


def check_joint_count(dataset: str | None, num_joints: int, labels: str) -> None:
    """Files of another dataset's layout (NYU's 14 joints scored as ICVL's 16) are refused, naming both."""
    if dataset not in LAYOUTS:
        return
    # the dataset's evaluation layout, and its full annotation where one exists (nyu36 for nyu)
    counts = sorted({len(layout.joint_names) for name, layout in LAYOUTS.items()
                     if name == dataset or (name.startswith(dataset) and name[len(dataset):].isdigit())})
    if num_joints not in counts:
        raise UserError(f"--dataset {dataset}: {labels} has {num_joints} joints per line, but {dataset} files have "
                        f"{' or '.join(map(str, counts))} (files of another dataset?)")


def evaluate_files(predictions: Mapping[str, str | Path], labels: str | Path, dataset: str | None = None,
                   intrinsics: Intrinsics | None = None) -> dict[str, Any]:
    """Load community files ``{name: path}`` and their labels and compare them (see :func:`compare_methods`).

    ``intrinsics`` default to the dataset's; give them for a dataset not in ``DATASET_INTRINSICS``.
    """
    if intrinsics is None:
        if dataset is None:
            raise UserError("give --dataset or --intrinsics to convert uvd to xyz")
        intrinsics = get_dataset_intrinsics(dataset)
    elif dataset is not None and dataset not in DATASET_INTRINSICS:
        get_dataset_intrinsics(dataset)  # raises, listing the valid names
    gt = load_uvd_file(labels)  # (N, J, 3)
    check_joint_count(dataset, gt.shape[1], str(labels))
    preds = {name: load_uvd_file(path) for name, path in predictions.items()}
    sources = {name: str(path) for name, path in predictions.items()}
    return compare_methods(preds, gt, intrinsics, dataset or "custom", sources, labels_source=str(labels))


def report_methods(report: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The rows a report shows: ``report["methods"]``; for a single-model report, its stages
    ("stage 1".."stage K") when each carries full metrics, else the model itself (``report["name"]``),
    and after them the hand fitted to the depth (``report["fitted"]``, ``evaluate --fit``)."""
    if "methods" in report:
        return dict(report["methods"])
    stages = report.get("stages") or []
    if stages and all("success_rate_max_frame" in s and "per_joint_mm" in s for s in stages):
        rows = {f"stage {i + 1}": s for i, s in enumerate(stages)}
    else:
        rows = {str(report.get("name", "model")): report}
    if "fitted" in report:
        rows["fitted to the depth"] = report["fitted"]
    return rows


def format_table(report: Mapping[str, Any]) -> str:
    """A Markdown table: method, mean error (mm), frames with max error <= 20 mm (%), AUC."""
    rows = [f"| method | mean error (mm) | frames <= {TABLE_THRESHOLD_MM} mm (%) | AUC 0-80 mm |",
            "|---|---:|---:|---:|"]
    for name, m in report_methods(report).items():
        curve = m.get("success_rate_max_frame")
        within = f"{100.0 * curve[TABLE_THRESHOLD_MM]:.2f}" if curve and len(curve) > TABLE_THRESHOLD_MM else "-"
        auc = f"{m['auc']:.3f}" if "auc" in m else "-"
        rows.append(f"| {name} | {m['mean_error_mm']:.3f} | {within} | {auc} |")
    return "\n".join(rows)


def write_report(out_dir: str | Path, report: Mapping[str, Any],
                 joint_names: Sequence[str] | None = None) -> dict[str, Path]:
    """Write ``report.json``, ``summary.md`` and the PNG plots in ``out_dir``; returns {kind: path}.

    Works for the multi-method report of :func:`compare_methods` and for a single-model report (extra keys
    such as ``stages`` are kept in the JSON). Plots are made for the rows that carry the needed metrics.
    """
    with writing(out_dir) as files:  # staged, renamed into place together: a failure leaves the old report
        return _write_report(files, report, joint_names)


def _write_report(files: OutputFolder, report: Mapping[str, Any], joint_names: Sequence[str] | None) -> dict[str, Path]:
    paths = {kind: files.final(name) for kind, name in REPORT_FILES.items()}
    files.write_text(REPORT_FILES["report"], json.dumps(report, indent=2) + "\n")

    rows = report_methods(report)
    dataset = report.get("dataset", "")
    title = f"{dataset} ({report['frames']} frames)" if dataset and "frames" in report else str(dataset)
    curves = {n: m["success_rate_max_frame"] for n, m in rows.items() if "success_rate_max_frame" in m}
    if curves:
        means = {n: m["mean_error_mm"] for n, m in rows.items() if "mean_error_mm" in m}
        plot_success_curves(curves, files.stage(REPORT_FILES["success_curves"]), mean_errors_mm=means, title=title)
    else:
        del paths["success_curves"]
    per_joint = {n: m["per_joint_mm"] for n, m in rows.items() if "per_joint_mm" in m}
    if per_joint:
        plot_per_joint(per_joint, joint_names, files.stage(REPORT_FILES["per_joint"]), title=title)
    else:
        del paths["per_joint"]

    lines = ["# Evaluation report", ""]
    if dataset:
        lines.append(f"- dataset: {dataset}")
    if "frames" in report:
        lines.append(f"- frames: {report['frames']}")
    lines += ["- error: Euclidean distance in mm between predicted and labelled joints (camera xyz)",
              "- success rate: fraction of frames whose maximum joint error is <= tau; "
              "AUC: trapezoid mean of that curve over tau = 0..80 mm", "", format_table(report), ""]
    lines += [f"![{kind}]({p.name})" for kind, p in paths.items() if p.suffix == ".png"]
    files.write_text(REPORT_FILES["summary"], "\n".join(lines) + "\n")
    return paths
