"""Evaluate a trained checkpoint on a labelled test set: per-stage errors, report, predictions, plots.

    evaluate_checkpoint("runs/demo", "synth", "runs/demo/eval")        # the held-out synthetic test set
    evaluate_checkpoint("runs/nyu", "nyu:/data/nyu", "runs/nyu/eval")  # the dataset's test split

Three steps: :func:`compute_evaluation` (returns a :class:`CheckpointEvaluation`), :func:`write_evaluation`
(the files) and, in ``srnpose evaluate``, the lines printed; :func:`evaluate_checkpoint` runs the first two.
:func:`write_evaluation` writes in ``out_dir`` (through :func:`srnpose.evaluation.protocol.write_report`):
``report.json`` (the final stage's metrics at the top level, ``"stages": [{...}, ...]`` one per stage),
``summary.md``, ``success_curves.png``, ``per_joint.png``; plus ``predictions.txt`` (the final stage's uvd,
community format: one line per frame, u v d per joint; ``nan`` where no hand was found) and, with
``overlays > 0``, ``overlays.png``.

``fit=True`` (``evaluate --fit``) fits the articulated hand to each frame's depth after the network
(:func:`srnpose.fitting.results.fit_estimates`, as ``predict`` does by default): the report's top-level
metrics, ``predictions.txt`` and the overlays are then the fitted hand's, ``"stages"`` and
``"pass_mean_error_mm"`` stay the network's, and ``"fitted"`` holds the fitted hand's metrics with
``network_mean_error_mm`` beside them, the fit's ms per frame and its LM steps.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srnpose.data.centering import MAX_PASSES
from srnpose.data.datasets import get_dataset
from srnpose.data.sampling import load_eval_records
from srnpose.errors import UserError
from srnpose.evaluation.protocol import evaluate_predictions, write_predictions_txt, write_report
from srnpose.geometry import Intrinsics, uvd_to_xyz, xyz_to_uvd
from srnpose.hand.skeleton import LAYOUTS, get_layout, mapping_matrix
from srnpose.inference.frame_path import FramePath, estimate_records
from srnpose.outputs import writing
from srnpose.training.checkpoint import load_checkpoint
from srnpose.training.run_config import SYNTH_TEST_SEED
from srnpose.viz import depth_to_rgb, draw_skeleton, image_grid, save_png

__all__ = ["DEFAULT_SYNTH_TEST_FRAMES", "Scores", "score_estimates", "CheckpointEvaluation", "compute_evaluation",
           "write_evaluation", "evaluate_checkpoint", "load_test_records", "overlay_grid"]

DEFAULT_SYNTH_TEST_FRAMES = 500  # the fixed held-out synthetic test set (seed run_config.SYNTH_TEST_SEED)


def load_test_records(data_spec: str, frames: int | None = None, synth_resolution=None,
                      skip_bad: bool = False, centers: str | None = None, synth_engine: str = "v2",
                      lazy: bool = False) -> Sequence:
    """Test records: ``synth`` = the fixed held-out synthetic set of ``synth_engine``; a dataset spec =
    its test split. ``lazy``: the synthetic set as a :class:`~srnpose.synth.SynthDataset`, each frame
    rendered when it is read (the same records: ``load_eval_records`` reads that dataset in order)."""
    if data_spec == "synth" and lazy:
        from srnpose.synth import SynthDataset

        return SynthDataset(frames or DEFAULT_SYNTH_TEST_FRAMES, seed=SYNTH_TEST_SEED, resolution=synth_resolution,
                            engine=synth_engine)
    if data_spec == "synth":
        return load_eval_records("synth", frames or DEFAULT_SYNTH_TEST_FRAMES, SYNTH_TEST_SEED, synth_resolution,
                                 synth_engine=synth_engine)
    return load_eval_records(data_spec, frames or 0, SYNTH_TEST_SEED, None, skip_bad, centers=centers)


@dataclass
class Scores:
    """Estimates of labelled records, scored: arrays over the frames whose hand was found."""

    found: np.ndarray  # (N,) bool
    pred_uvd: np.ndarray  # (F, K, J, 3) every stage's joints, uvd
    pred_xyz: np.ndarray  # (F, K, J, 3) every stage's joints, mm
    gt_xyz: np.ndarray  # (F, J, 3)
    pass_mm: list[float]  # the final stage's mean error after each pass

    @property
    def stage_mm(self) -> list[float]:
        """Mean 3D error per stage (found frames)."""
        return [float(e) for e in np.linalg.norm(self.pred_xyz - self.gt_xyz[:, None], axis=-1).mean(axis=(0, 2))]


def score_estimates(estimates: list, records: list, mapping: np.ndarray | None = None) -> Scores:
    """Compare :func:`srnpose.inference.frame_path.estimate_records`'s output with the records' labels.
    ``mapping`` (J_labels, J_model): converts the predictions to the labels' layout first
    (:func:`srnpose.hand.skeleton.mapping_matrix`)."""
    found = np.array([e.hand_found for e in estimates], dtype=bool)
    pairs = [(e, r) for e, r in zip(estimates, records) if e.hand_found]
    if not pairs:
        empty = np.zeros((0, 0, 0, 3))
        return Scores(found, empty, empty, np.zeros((0, 0, 3)), [])
    pred_uvd = np.stack([e.stage_uvd for e, _ in pairs])
    pred_xyz = np.stack([e.stage_xyz(r.intrinsics) for e, r in pairs])
    gt_xyz = np.stack([uvd_to_xyz(np.asarray(r.joints_uvd, dtype=np.float64), r.intrinsics) for _, r in pairs])
    passes = np.stack([e.pass_xyz for e, _ in pairs])  # (F, P, J, 3)
    if mapping is not None:  # in the labels' layout, and back to each frame's pixels
        pred_xyz = np.einsum("ij,fkjc->fkic", mapping, pred_xyz)
        passes = np.einsum("ij,fpjc->fpic", mapping, passes)
        pred_uvd = np.stack([xyz_to_uvd(x, r.intrinsics) for x, (_, r) in zip(pred_xyz, pairs)])
    pass_mm = [float(m) for m in np.linalg.norm(passes - gt_xyz[:, None], axis=-1).mean(axis=(0, 2))]
    return Scores(found, pred_uvd, pred_xyz, gt_xyz, pass_mm)


def estimate_until(engine, records: Sequence, center: str, batch_size: int, intrinsics=None,
                   deadline: float | None = None, progress: bool = False) -> tuple[list, list]:
    """``(records done, their estimates)``: :func:`srnpose.inference.frame_path.estimate_records` one batch
    at a time, each record read when its batch comes (a lazy synthetic set renders it then), with the
    camera replaced by ``intrinsics`` when given. No batch starts after ``deadline`` (a
    ``time.perf_counter()`` value), but the first always runs. Batches are the ones one call would make,
    so the estimates are the same."""
    from tqdm import tqdm

    done: list = []
    estimates: list = []
    with tqdm(total=len(records), unit="frame", desc="evaluate", disable=not progress) as bar:
        for start in range(0, len(records), batch_size):
            if deadline is not None and done and time.perf_counter() >= deadline:
                break
            chunk = [records[i] for i in range(start, min(start + batch_size, len(records)))]
            if intrinsics is not None:
                chunk = [dataclasses.replace(r, intrinsics=intrinsics) for r in chunk]
            estimates += estimate_records(engine, chunk, center, batch_size)
            done += chunk
            bar.update(len(chunk))
    return done, estimates


def _crop_box(joints_uv: np.ndarray, shape: tuple[int, int], margin: float = 0.35) -> tuple[int, int, int, int]:
    lo, hi = joints_uv.min(axis=0), joints_uv.max(axis=0)
    center, half = (lo + hi) / 2, max(float((hi - lo).max()) * (0.5 + margin), 12.0)
    u0, v0 = int(center[0] - half), int(center[1] - half)
    return u0, v0, u0 + int(2 * half), v0 + int(2 * half)


def overlay_grid(records: list, pred_uvd: np.ndarray, layout: str, count: int = 8, size: int = 160) -> np.ndarray:
    """Skeleton overlays of the first ``count`` frames: ground truth (left) and prediction (right) on
    the depth frame, zoomed on the hand. Returns an RGB image (uint8)."""
    from PIL import Image

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


def _joint_mapping(ck, data_spec: str, records: list) -> tuple[str, np.ndarray | None, str]:
    """The labels' layout, the (J_labels, J_model) matrix that converts predictions to it (None: same
    layout), and a sentence saying how."""
    name = "synth" if data_spec == "synth" else data_spec.partition(":")[0]
    labels_layout = get_dataset(name).layout
    joints = np.asarray(records[0].joints_uvd).shape[0]
    if len(get_layout(labels_layout).joint_names) != joints and joints == ck.model_config.num_joints:
        labels_layout = ck.layout  # records given in the model's own layout
    if labels_layout == ck.layout and joints == ck.model_config.num_joints:
        return labels_layout, None, "same layout"
    try:
        mapping = mapping_matrix(ck.layout, labels_layout)
    except ValueError as exc:
        raise UserError(f"{data_spec}: frames have {joints} joints ({labels_layout}) but the checkpoint {ck.path} "
                        f"predicts {ck.model_config.num_joints} ({ck.layout}): {exc}") from None
    if mapping.shape[0] != joints:
        raise UserError(f"{data_spec}: frames have {joints} joints but layout {labels_layout} has {mapping.shape[0]}")
    exact = bool(np.all((mapping == 0) | (mapping == 1)) and np.all(mapping.sum(axis=1) == 1))
    how = ("an exact reordering" if exact else "the documented approximations of srnpose.hand.skeleton (points "
           "between joints as weighted means of canonical joints)")
    return labels_layout, mapping, f"{ck.layout} -> {labels_layout} by {how}"


CENTER_MODES = {  # evaluate --center -> (the engine's first crop, what the report says)
    "auto": ("policy", "the hand found as predict finds it (label-free): the checkpoint's hand locator, "
                       "else the nearest-blob search"),
    "locator": ("policy", "the hand found by the checkpoint's hand locator (label-free)"),
    "depth": ("policy", "the hand found in the depth map by the nearest-blob search (label-free)"),
    "joints": ("joints", "the labelled joints' centroid (uses the labels)"),
}


@dataclass
class CheckpointEvaluation:
    """What :func:`compute_evaluation` found: the report (``report.json``'s content), the records looked
    at and their scores, and how the predictions were compared with the labels."""

    report: dict[str, Any]
    records: list  # the test frames looked at (a deadline may cut the planned set short)
    scores: Scores
    labels_layout: str
    mapping: np.ndarray | None  # (J_labels, J_model) predictions -> labels' layout; None: the same layout
    mapping_note: str  # how, in a sentence
    data_spec: str
    checkpoint: Path
    network_scores: Scores | None = None  # with fit=True: the network's own (``scores`` are the fitted hand's)


def compute_evaluation(run_dir: str | Path, data_spec: str, *, intrinsics: str | None = None,
                       frames: int | None = None, batch_size: int = 32, device: str = "cpu",
                       center: str | None = None, skip_bad: bool = False, records: list | None = None,
                       centers: str | None = None, refine: int | None = None, synth_engine: str | None = None,
                       deadline: float | None = None, progress: bool = False, fit: bool = False) -> CheckpointEvaluation:
    """Evaluate the checkpoint in ``run_dir`` on ``data_spec``: compute only (no file, no print).

    Every frame goes through :class:`srnpose.inference.frame_path.FramePath`, the engine ``predict`` runs, with
    the checkpoint's cube, centre rule and passes. ``center``: "auto" (default: the label-free path of
    ``predict``: the checkpoint's hand locator, else the nearest-blob search), "locator", "depth" (the
    nearest-blob search) or "joints" (first crop at the labelled joints' centroid). A frame whose hand
    is not found counts in ``hands_not_found`` and is left out of the errors; no label places its crop.
    ``intrinsics`` ("fx,fy,cx,cy"): replaces the records' camera. ``records``: evaluate these instead
    of loading. ``centers``: a refined-centre file for the test split. ``refine``: passes after the
    first (default: the checkpoint's policy, 1 for ``center=mixed``). ``synth_engine``: the engine of the
    ``synth`` test set (default: the one the checkpoint trained on). ``deadline`` (a ``time.perf_counter()``
    value): no batch of frames starts after it (the first always runs); the report's ``frames_total`` counts
    the frames looked at and ``frames_planned`` the test set's. ``progress``: a progress bar over the frames.
    ``fit``: the articulated hand fitted to the depth after the network (see the module notes; 21-joint
    models only).
    """
    center = center or "auto"
    if center not in CENTER_MODES:
        raise UserError(f"center: {center!r} is not one of {', '.join(CENTER_MODES)}")
    if refine is not None and not 0 <= refine < MAX_PASSES:
        raise UserError(f"refine: must be in [0, {MAX_PASSES - 1}], got {refine}")
    ck = load_checkpoint(run_dir, device=device)
    if fit and ck.layout != "canonical":
        raise UserError(f"the fit to the depth needs a 21-joint model; {ck.path} predicts the {ck.layout} layout",
                        flag="--fit")
    engine = FramePath.from_checkpoint(ck, passes=None if refine is None else 1 + refine,
                                       finder="depth" if center == "joints" else center)
    data_cfg = ck.config.get("data") or {}
    synth_engine = synth_engine or data_cfg.get("synth_engine") or "v1"
    if records is None:
        records = load_test_records(data_spec, frames, data_cfg.get("synth_resolution"), skip_bad, centers,
                                    synth_engine, lazy=True)
    if not len(records):
        raise UserError(f"{data_spec}: no test frames")
    K = None
    if intrinsics:
        try:
            K = Intrinsics.parse(intrinsics)
        except ValueError as exc:
            raise UserError(f"--intrinsics: {exc}") from None
    planned = len(records)
    records, estimates = estimate_until(engine, records, CENTER_MODES[center][0], batch_size, K, deadline,
                                        progress)
    labels_layout, mapping, mapping_note = _joint_mapping(ck, data_spec, records)
    scores = network = score_estimates(estimates, records, mapping)
    if not scores.found.any():
        raise UserError(f"{data_spec}: no hand found in any of the {len(records)} test frames")
    fitted: dict[str, Any] = {}  # with fit: the fitted hand's metrics, and "fitted": those with the fit's figures
    if fit:
        from srnpose.fitting.fit import FitConfig
        from srnpose.fitting.results import fit_estimates

        cfg = FitConfig()
        estimates, fit_ms = fit_estimates(estimates, records, cfg)
        scores = score_estimates(estimates, records, mapping)
        fitted = evaluate_predictions(scores.pred_xyz[:, -1], scores.gt_xyz)
        fitted = {**fitted, "fitted": {**fitted, "network_mean_error_mm": float(network.stage_mm[-1]),
                                       "fit_ms_per_frame": float(fit_ms), "lm_steps": cfg.iterations}}

    stages = [evaluate_predictions(network.pred_xyz[:, s], network.gt_xyz) for s in range(network.pred_xyz.shape[1])]
    name = data_spec.partition(":")[0] if data_spec != "synth" else "synth"
    report: dict[str, Any] = {
        "name": "SRN",
        "dataset": name,
        "frames": int(scores.found.sum()),  # the frames scored: those whose hand was found
        **stages[-1],
        **fitted,  # with fit: the result is the fitted hand's; "fitted" says so with the network's error beside it
        "stages": stages,  # the network's
        "checkpoint": str(ck.path),
        "data": data_spec,
        **({"synth_engine": synth_engine} if data_spec == "synth" else {}),
        "frames_total": len(records),
        "frames_planned": planned,  # more than frames_total when the deadline cut the test set short
        "hands_not_found": int((~scores.found).sum()),
        "center": center,
        "first_crop": CENTER_MODES[center][1],
        "refine_passes": engine.policy.passes - 1,
        "pass_mean_error_mm": network.pass_mm,  # the final stage's error after each pass (first pass first)
        "cube_mm": ck.cube_mm,
        "input_size": ck.input_size,
        "layout": ck.layout,
        "labels_layout": labels_layout,
        "joints_compared": list(LAYOUTS[labels_layout].joint_names) if labels_layout in LAYOUTS else None,
        "joint_mapping": mapping_note,
    }
    return CheckpointEvaluation(report, list(records), scores, labels_layout, mapping, mapping_note, data_spec,
                                Path(ck.path), network if fit else None)


def write_evaluation(evaluation: CheckpointEvaluation, out_dir: str | Path, overlays: int = 8,
                     dataset: str | None = None) -> dict[str, Path]:
    """Write an evaluation in ``out_dir`` (every file staged, renamed into place together): the report
    (:func:`srnpose.evaluation.protocol.write_report`), ``predictions.txt`` and, with ``overlays > 0``,
    ``overlays.png``. ``dataset``: name whose joint names label the per-joint plot (default: the labels'
    layout). Returns the files written, by kind."""
    scores, labels_layout = evaluation.scores, evaluation.labels_layout
    layout = LAYOUTS.get(dataset or labels_layout)
    joint_count = scores.pred_xyz.shape[2]
    names = tuple(layout.joint_names) if layout is not None and len(layout.joint_names) == joint_count else None
    with writing(out_dir) as files:
        paths = write_report(files, evaluation.report, names)
        every = np.full((len(evaluation.records),) + scores.pred_uvd.shape[2:], np.nan)  # a line per frame, NaN: no hand
        every[scores.found] = scores.pred_uvd[:, -1]
        write_predictions_txt(files.stage("predictions.txt"), every)
        paths["predictions"] = files.final("predictions.txt")
        if overlays > 0 and labels_layout in LAYOUTS:
            found_records = [r for r, ok in zip(evaluation.records, scores.found) if ok]
            paths["overlays"] = files.final("overlays.png")
            save_png(files.stage("overlays.png"),
                     overlay_grid(found_records, scores.pred_uvd[:, -1], labels_layout, overlays))
    return paths


def evaluate_checkpoint(run_dir: str | Path, data_spec: str, out_dir: str | Path, *, overlays: int = 8,
                        dataset: str | None = None, **options: Any) -> dict[str, Any]:
    """:func:`compute_evaluation` (``options``: its keywords), then :func:`write_evaluation` in ``out_dir``;
    returns the report. Prints nothing (``srnpose evaluate`` says what it found)."""
    evaluation = compute_evaluation(run_dir, data_spec, **options)
    write_evaluation(evaluation, out_dir, overlays, dataset)
    return evaluation.report
