"""The fit on :class:`~srnpose.inference.estimator.PoseResult` lists, frames as sensors give them.

    est = srnpose.load()
    results = est.predict_batch(frames, camera="kinect2")
    results = fit_results(results, frames, camera="kinect2")     # joints_fitted_xyz, joint_angles filled
    results = fit_results(results, frames, camera="kinect2", replace=True)   # the fit becomes joints_xyz

A result keeps the network's joints in ``joints_xyz`` and ``joints_uvd`` and gets the fitted hand's
joints in ``joints_fitted_xyz``, its angles in ``joint_angles`` (the names of
:data:`srnpose.hand.angles.ANGLE_NAMES`) and ``handedness`` (the contract of
:func:`srnpose.hand.angles.fit_angles`). ``replace=True`` moves the fit into ``joints_xyz``,
``joints_uvd`` and the last of ``stage_joints`` as well (the earlier stages stay the network's), and the
network's joints into ``joints_raw_xyz`` where the result has that field.
Results are duck-typed (``dataclasses.replace``), so this module imports nothing of
:mod:`srnpose.inference`: the estimator can call it without an import cycle.

:func:`fit_estimates` does the same for ``evaluate --fit``: the engine's estimates of labelled records
(:func:`srnpose.inference.frame_path.estimate_records`), their final joints replaced by the fit.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from srnpose.fitting.fit import FitConfig, FitResult, fit_frames, fit_sequence_frames, warm_up
from srnpose.geometry import Intrinsics, ViewFlip, xyz_to_uvd

__all__ = ["camera_fields", "frame_view_mm", "fit_results", "fit_estimates"]

ESTIMATES_BATCH = 64  # fit_estimates: frames fitted in one batch (their depth frames and targets held together)


def camera_fields(camera: Any) -> tuple[Intrinsics, float, bool]:
    """(intrinsics of the un-mirrored view, depth unit in mm, mirrored) of a preset name, a
    :class:`~srnpose.cameras.Camera`, a ``FrameCamera`` or bare :class:`Intrinsics` (1 mm, not mirrored)."""
    if isinstance(camera, str):
        from srnpose.cameras import get_camera

        camera = get_camera(camera)
    if isinstance(camera, Intrinsics):
        return camera, 1.0, False
    return camera.intrinsics, float(camera.depth_unit_mm), bool(camera.mirrored)


def frame_view_mm(depth: np.ndarray, depth_unit_mm: float, mirrored: bool) -> np.ndarray:
    """A frame as given (raw units, possibly mirrored) -> the camera's un-mirrored view in mm: a view of
    the frame itself where its unit is 1 mm (the fit reads only a window of it: converting a whole Kinect
    V2 frame to float64 cost 0.3 ms a frame), else float64."""
    view = ViewFlip(np.asarray(depth).shape[1], mirrored).frame(np.asarray(depth))
    return view if float(depth_unit_mm) == 1.0 else view.astype(np.float64) * depth_unit_mm


def _angles(chain_deg: np.ndarray) -> dict[str, float]:
    from srnpose.hand.angles import ANGLE_NAMES

    return {name: float(a) for name, a in zip(ANGLE_NAMES, np.asarray(chain_deg).reshape(-1))}


def fit_results(results: Sequence, frames: Sequence[np.ndarray], camera: Any, cfg: FitConfig | None = None,
                handedness: str = "right", sequence: bool = False, replace: bool = False) -> list:
    """The results (one per frame, in order) with the fit filled in (see the module notes).

    ``frames``: the depth frames as given (raw units, as the estimator read them); ``camera``: a preset
    name, a :class:`~srnpose.cameras.Camera`, a ``FrameCamera`` or :class:`Intrinsics`. ``sequence``: the
    frames are one hand's consecutive frames: one shape for all and a temporal term
    (:func:`~srnpose.fitting.fit.fit_sequence_frames`); else each frame alone, in one batch
    (:func:`~srnpose.fitting.fit.fit_frames`). Frames without a hand, and results of a layout other than
    the canonical 21 joints, are returned unchanged."""
    results = list(results)
    if len(frames) != len(results):
        raise ValueError(f"{len(frames)} frames but {len(results)} results")
    intrinsics, unit, mirrored = camera_fields(camera)
    found = [i for i, r in enumerate(results) if r.hand_found and getattr(r, "layout", "canonical") == "canonical"]
    if not found:
        return results
    views = [frame_view_mm(frames[i], unit, mirrored) for i in found]
    joints = np.stack([np.asarray(results[i].joints_xyz, dtype=np.float64) for i in found])
    if sequence:
        fit = fit_sequence_frames(views, intrinsics, joints, cfg, handedness=handedness)
    else:
        fit = fit_frames(views, intrinsics, joints, cfg or FitConfig(), handedness=handedness)
    return _filled(results, found, fit, intrinsics, mirrored, [np.shape(frames[i])[1] for i in found], replace)


def _filled(results: list, found: list[int], fit: FitResult, intrinsics: Intrinsics, mirrored: bool,
            widths: list[int], replace: bool) -> list:
    out = list(results)
    for k, i in enumerate(found):
        r = results[i]
        fitted = fit.joints_xyz[k]
        fields: dict[str, Any] = {"joints_fitted_xyz": fitted.copy(), "joint_angles": _angles(fit.chain_deg[k]),
                                  "handedness": "left" if fit.mirrored[k] else "right"}
        if replace:
            if "joints_raw_xyz" in {f.name for f in dataclasses.fields(r)}:  # where a result keeps them
                fields["joints_raw_xyz"] = np.array(r.joints_xyz, dtype=np.float64)
            uvd = ViewFlip(widths[k], mirrored).uvd(xyz_to_uvd(fitted, intrinsics))
            stages = np.array(r.stage_joints, dtype=np.float64)
            stages[-1] = uvd
            fields.update(joints_xyz=fitted.copy(), joints_uvd=uvd, stage_joints=stages)
        timings = dict(getattr(r, "timings", {}) or {})
        timings["fit"] = float(fit.ms_per_frame)
        if "total" in timings:
            timings["total"] = float(timings["total"]) + float(fit.ms_per_frame)
        fields["timings"] = timings
        out[i] = dataclasses.replace(r, **fields)
    return out


def fit_estimates(estimates: Sequence, records: Sequence, cfg: FitConfig | None = None) -> tuple[list, float]:
    """``(estimates, fit ms per frame)``: the engine's estimates of labelled records (pixels of the frame as
    given, the records' camera, :func:`srnpose.inference.frame_path.estimate_records`) with the last pass's
    final joints (``pass_xyz[-1]``, ``stage_uvd[-1]``) replaced by the hand fitted to the record's depth
    (:func:`~srnpose.fitting.fit.fit_frames`; a record's ``extra["is_left"]`` fits a left hand). Estimates
    without a hand are returned unchanged; nothing is read from the labels."""
    cfg = cfg or FitConfig()
    warm_up(cfg)
    out, spent_ms, fitted = list(estimates), 0.0, 0
    found = [i for i, e in enumerate(estimates) if e.hand_found]
    for left in (False, True):
        todo = [i for i in found if bool(records[i].extra.get("is_left", False)) == left]
        for start in range(0, len(todo), ESTIMATES_BATCH):
            chunk = todo[start:start + ESTIMATES_BATCH]
            fit = fit_frames([np.asarray(records[i].load_depth(), dtype=np.float64) for i in chunk],
                             [records[i].intrinsics for i in chunk],
                             np.stack([np.asarray(estimates[i].pass_xyz[-1], dtype=np.float64) for i in chunk]), cfg,
                             handedness="left" if left else "right")
            spent_ms += fit.ms_per_frame * len(chunk)
            fitted += len(chunk)
            for k, i in enumerate(chunk):
                e = estimates[i]
                passes, stages = np.array(e.pass_xyz, dtype=np.float64), np.array(e.stage_uvd, dtype=np.float64)
                passes[-1] = fit.joints_xyz[k]
                stages[-1] = xyz_to_uvd(fit.joints_xyz[k], records[i].intrinsics)
                out[i] = dataclasses.replace(e, pass_xyz=passes, stage_uvd=stages)
    return out, spent_ms / max(fitted, 1)
