"""Evaluate a trained checkpoint on a labelled test set: per-stage errors, report, predictions, plots.

    evaluate_checkpoint("runs/demo", "synth", "runs/demo/eval")        # the held-out synthetic test set
    evaluate_checkpoint("runs/nyu", "nyu:/data/nyu", "runs/nyu/eval")  # the dataset's test split

Writes in ``out_dir`` (through :func:`srnpose.evaluate.write_report`): ``report.json`` (the final stage's
metrics at the top level, ``"stages": [{...}, ...]`` one per stage), ``summary.md``,
``success_curves.png``, ``per_joint.png``; plus ``predictions.txt`` (the final stage's uvd, community
format: one line per frame, u v d per joint) and, with ``overlays > 0``, ``overlays.png``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from srnpose.errors import UserError

__all__ = ["DEFAULT_SYNTH_TEST_FRAMES", "evaluate_checkpoint", "load_test_records", "overlay_grid"]

DEFAULT_SYNTH_TEST_FRAMES = 500  # the fixed held-out synthetic test set (seed train.SYNTH_TEST_SEED)


def load_test_records(data_spec: str, frames: int | None = None, synth_resolution=None,
                      skip_bad: bool = False, centers: str | None = None) -> list:
    """Test records: ``synth`` = the fixed held-out synthetic set; a dataset spec = its test split."""
    from srnpose.train import SYNTH_TEST_SEED, load_eval_records

    if data_spec == "synth":
        return load_eval_records("synth", "synth", frames or DEFAULT_SYNTH_TEST_FRAMES, SYNTH_TEST_SEED,
                                 synth_resolution)
    return load_eval_records(data_spec, data_spec, frames or 0, SYNTH_TEST_SEED, None, skip_bad,
                             centers=centers)


def _crop_box(joints_uv: np.ndarray, shape: tuple[int, int], margin: float = 0.35) -> tuple[int, int, int, int]:
    lo, hi = joints_uv.min(axis=0), joints_uv.max(axis=0)
    center, half = (lo + hi) / 2, max(float((hi - lo).max()) * (0.5 + margin), 12.0)
    u0, v0 = int(center[0] - half), int(center[1] - half)
    return u0, v0, u0 + int(2 * half), v0 + int(2 * half)


def overlay_grid(records: list, pred_uvd: np.ndarray, layout: str, count: int = 8, size: int = 160) -> np.ndarray:
    """Skeleton overlays of the first ``count`` frames: ground truth (left) and prediction (right) on
    the depth frame, zoomed on the hand. Returns an RGB image (uint8)."""
    from PIL import Image

    from srnpose.viz import depth_to_rgb, draw_skeleton, image_grid

    tiles = []
    for record, pred in zip(records[:count], pred_uvd[:count]):
        depth = record.load_depth()
        gt = np.asarray(record.joints_uvd, dtype=np.float64)
        u0, v0, u1, v1 = _crop_box(gt[:, :2], depth.shape)
        scale = size / (u1 - u0)
        rgb = Image.fromarray(depth_to_rgb(depth)).crop((u0, v0, u1, v1)).resize((size, size), Image.NEAREST)
        base = np.asarray(rgb)
        for joints in (gt, pred):
            j = joints.copy()
            j[:, 0] = (j[:, 0] - u0) * scale
            j[:, 1] = (j[:, 1] - v0) * scale
            tiles.append(draw_skeleton(base, j, layout))
    return image_grid(tiles, cols=4)


def evaluate_checkpoint(run_dir: str | Path, data_spec: str, out_dir: str | Path, dataset: str | None = None,
                        intrinsics: str | None = None, frames: int | None = None, batch_size: int = 32,
                        device: str = "cpu", center: str | None = None, overlays: int = 8,
                        skip_bad: bool = False, verbose: bool = True, records: list | None = None,
                        centers: str | None = None, refine: int | None = None) -> dict[str, Any]:
    """Evaluate the checkpoint in ``run_dir`` on ``data_spec``; write the report in ``out_dir``; return it.

    ``dataset``: name whose joint names label the per-joint plot (default: the checkpoint's layout).
    ``intrinsics`` ("fx,fy,cx,cy"): replaces the records' camera. ``center``: "joints" or "depth"
    (default: the rule the model was trained with). ``records``: evaluate these instead of loading.
    ``centers``: a refined-centre file for the test split (frames without one use ``center``).
    ``refine``: passes recentred on the previous pass's joints (default: 1 for a model trained with
    center "mixed", else 0; see :func:`srnpose.train.refine_passes`).
    """
    from srnpose.checkpoint import load_checkpoint
    from srnpose.data.pipeline import CropConfig
    from srnpose.evaluate import evaluate_predictions, format_table, write_predictions_txt, write_report
    from srnpose.geometry import Intrinsics
    from srnpose.skeleton import LAYOUTS
    from srnpose.train import CENTERS, crop_records, predict_refined

    ck = load_checkpoint(run_dir, device=device)
    data_cfg = ck.config.get("data") or {}
    center = center or data_cfg.get("center") or "joints"
    if center not in CENTERS:
        raise UserError(f"center: {center!r} is not one of {', '.join(CENTERS)}")
    if records is None:
        records = load_test_records(data_spec, frames, data_cfg.get("synth_resolution"), skip_bad, centers)
    if intrinsics:
        try:
            K = Intrinsics.parse(intrinsics)
        except ValueError as exc:
            raise UserError(f"--intrinsics: {exc}") from None
        records = [dataclasses.replace(r, intrinsics=K) for r in records]
    joints = np.asarray(records[0].joints_uvd).shape[0]
    if joints != ck.model_config.num_joints:
        raise UserError(f"{data_spec}: frames have {joints} joints but the checkpoint {ck.path} predicts "
                        f"{ck.model_config.num_joints} (layout {ck.layout})")
    crop = CropConfig(input_size=ck.input_size, cube_mm=ck.cube_mm, augment=False)
    samples, records, bad = crop_records(records, crop, center, skip_bad)
    if not samples:
        raise UserError(f"{data_spec}: no usable test frames")
    if refine is None:
        refine = ck.refine
    if refine < 0:
        raise UserError(f"refine: must be >= 0, got {refine}")
    pred_uvd, pred_xyz, gt_xyz, pass_mm = predict_refined(ck.model, records, samples, crop, refine, batch_size,
                                                          device)

    stages = [evaluate_predictions(pred_xyz[:, s], gt_xyz) for s in range(pred_xyz.shape[1])]
    name = data_spec.partition(":")[0] if data_spec != "synth" else "synth"
    report: dict[str, Any] = {
        "name": "SRN",
        "dataset": name,
        "frames": int(len(samples)),
        **stages[-1],
        "stages": stages,
        "checkpoint": str(ck.path),
        "data": data_spec,
        "center": center,
        "refine_passes": refine,
        "pass_mean_error_mm": pass_mm,  # the final stage's error after each pass (first pass first)
        "cube_mm": ck.cube_mm,
        "input_size": ck.input_size,
        "layout": ck.layout,
        "skipped_frames": len(bad),
    }
    out = Path(out_dir)
    layout = LAYOUTS.get(dataset or ck.layout)
    names = tuple(layout.joint_names) if layout is not None and len(layout.joint_names) == pred_xyz.shape[2] else None
    paths = write_report(out, report, names)
    paths["predictions"] = write_predictions_txt(out / "predictions.txt", pred_uvd[:, -1])
    if overlays > 0 and ck.layout in LAYOUTS:
        from srnpose.viz import save_png

        paths["overlays"] = out / "overlays.png"
        save_png(paths["overlays"], overlay_grid(records, pred_uvd[:, -1], ck.layout, overlays))
    if verbose:
        print(f"{data_spec}: {len(samples)} frames, checkpoint {ck.path}")
        print(format_table(report))
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    return report
