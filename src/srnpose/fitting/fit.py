"""Fit the articulated hand to the depth, starting from the network's joints.

    fit = fit_frame(depth_mm, intrinsics, joints_xyz)          # one frame: FitResult
    fits = fit_frames(depths, intrinsics, joints)              # a batch of independent frames
    fits = fit_sequence_frames(depths, intrinsics, joints)     # one hand through a sequence
    results = fit_results(results, frames, camera="kinect2")   # PoseResults of srnpose.load()

The steps:

1. **Start**: a closed-form inverse kinematics turns the network's 21 joints into the kinematic hand's
   shape, angles (within the joint limits) and rigid frame (:func:`srnpose.fitting.solver.start_from_joints`).
   A sequence shares one shape (:func:`fit_sequence_frames`).
2. **Targets**: the window, silhouette and hand points around the start
   (:func:`srnpose.fitting.targets.frame_targets`).
3. **Solve**: a fixed number (:attr:`FitConfig.iterations`) of Levenberg-Marquardt steps on the energy
   of :mod:`srnpose.fitting.energy`, batched over frames (:mod:`srnpose.fitting.solver` says why LM and
   how its Jacobian is made).

Frames here are the camera's **un-mirrored** view in mm with that view's intrinsics, and joints are
camera-frame mm (as :class:`~srnpose.inference.estimator.PoseResult.joints_xyz`); :func:`fit_results` turns
frames as sensors give them (mirrored, raw units) into that.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from srnpose.fitting import energy as en
from srnpose.fitting import solver
from srnpose.fitting.targets import SelectConfig, frame_targets, stack_targets
from srnpose.geometry import Intrinsics
from srnpose.hand import torch_hand as th
from srnpose.inference.backends import torch_threads

__all__ = ["FitConfig", "FitResult", "SEQUENCE_TEMPORAL", "warm_up", "sequence_config", "fit_frame", "fit_frames",
           "fit_sequence_frames"]

# fit_sequence_frames' temporal weight: 5 mm off the target costs ~11 mm^2. benchmarks/fit_frames.py on the 30
# Kinect V2 frames: 10 leaves more jitter than the network's (7.4 against 7.2 mm), 45 a little less (7.1;
# within that measure's noise), 60 lags the hand's motion (surface violations 0.045 against 0.040)
SEQUENCE_TEMPORAL = 45.0


@dataclass(frozen=True)
class FitConfig:
    """The fit's settings: its energy's weights, the target selection, the solver's steps."""

    weights: en.EnergyWeights = field(default_factory=en.EnergyWeights)
    select: SelectConfig = field(default_factory=SelectConfig)
    iterations: int = 3  # LM steps. benchmarks/fit_frames.py --synth-frames 500 (the shipped model), 3 against
    # 5 steps: synthetic 11.97 against 11.83 mm (raw 13.92), the NYU frame 13.0 both (raw 16.6), Kinect V2
    # surface violation .017 against .010 (raw .056), hand uncovered .077 against .073 (raw .106), jitter 8.11
    # against 7.82 mm (raw 7.18); 13.7 against 19.7 ms per frame, one core (3 steps: 11.0 ms since the
    # solver's speed-up). 8 are no better than 5
    damping: float = 1e-2  # LM's starting lambda (Marquardt: relative to the Gauss-Newton diagonal)
    fit_scale: bool = True  # let the hand's and fingers' sizes change (False: the start's, e.g. a
    # sequence's shared shape)
    threads: int | None = 1  # torch intra-op threads while fitting (None: leave torch's setting); the
    # solver itself runs numpy on small arrays, one core


@dataclass(frozen=True)
class FitResult:
    """B fitted hands: joints and angles after the fit, the start, and the energies."""

    joints_xyz: np.ndarray  # (B, 21, 3) mm, camera frame: the fitted hand's joints
    chain_deg: np.ndarray  # (B, 5, 4) the fitted angles (HandPose.chain_deg), within LIMITS_DEG
    joints_start_xyz: np.ndarray  # (B, 21, 3) the start: the kinematic hand after IK on the network's joints
    scale: np.ndarray  # (B,) the hand's size relative to the start's
    cup: np.ndarray  # (B,)
    mirrored: np.ndarray  # (B,) bool: left hands
    energy_before: np.ndarray  # (B,) at the start
    energy_after: np.ndarray  # (B,)
    terms_before: dict[str, np.ndarray]  # each term's energy (B,) at the start
    terms_after: dict[str, np.ndarray]
    num_points: np.ndarray  # (B,) measured hand points used
    cones: np.ndarray  # (B, K, 8) the fitted hand's round cones, camera frame (torch_hand.hand_cones, filled)
    cones_start: np.ndarray  # (B, K, 8) the start's
    log_scales: np.ndarray = None  # (B, 7) the fitted log scales: hand, five finger lengths, palm width
    ms_per_frame: float = float("nan")  # wall time of the whole fit (IK, targets, solve) / B

    def __len__(self) -> int:
        return len(self.joints_xyz)


def _check_inputs(depths: Sequence[np.ndarray], joints: np.ndarray) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (21, 3):
        raise ValueError(f"joints must be (B, 21, 3) canonical joints, got {joints.shape}")
    if len(depths) != len(joints):
        raise ValueError(f"{len(depths)} frames but {len(joints)} skeletons")
    if not np.isfinite(joints).all():
        raise ValueError("joints hold NaN or inf (no hand): fit only frames with a hand")
    return joints


def _left(handedness: str, intrinsics: list[Intrinsics]) -> np.ndarray:
    """(B,) whether each frame's hand is fitted as a left hand: a left hand, or a right hand in a camera
    frame whose focal lengths differ in sign (NYU's ``fy < 0``: y up, x right, a mirror image of the
    world, where a right hand's joints are a left hand's)."""
    if handedness not in ("right", "left"):
        raise ValueError(f"handedness must be 'right' or 'left', got {handedness!r}")
    return np.array([(handedness == "left") != (k.fx * k.fy < 0) for k in intrinsics])


def _intrinsics_list(intrinsics: Intrinsics | Sequence[Intrinsics], n: int) -> list[Intrinsics]:
    return [intrinsics] * n if isinstance(intrinsics, Intrinsics) else list(intrinsics)


def _solve(model: en.HandModel, targets: en.FrameTargets, x0: np.ndarray, cfg: FitConfig,
           t_start: float) -> FitResult:
    """Run the solver and collect a :class:`FitResult`."""
    free = np.ones(en.NUM_PARAMS)
    if not cfg.fit_scale:
        free[en.LOG_SCALE:] = 0.0
    problem = solver.Problem(model, targets, cfg.weights, free)
    x, r_start, r_end = solver.levenberg_marquardt(problem, x0, cfg.iterations, cfg.damping)
    before, after = problem.term_energies(r_start), problem.term_energies(r_end)
    pose, pose_start = problem.pose, problem.pose_start  # at x and at the (clamped) start
    joints, start = pose.joints, pose_start.joints
    k = th.NUM_HAND_CONES + th.NUM_FILL_CONES
    b = len(x)
    return FitResult(joints, x[:, en.ANGLES].reshape(b, 5, 4).copy(), start, np.exp(x[:, en.LOG_SCALE]),
                     model.cup.copy(), model.mirror[:, 0] < 0, sum(before.values()), sum(after.values()),
                     before, after, targets.point_mask.sum(1).astype(np.int64), pose.cones[:, :k].copy(),
                     pose_start.cones[:, :k].copy(), x[:, en.LOG_SCALE:].copy(),
                     (time.perf_counter() - t_start) * 1e3 / max(b, 1))


# --------------------------------------------------------------------------- public API


def fit_frames(depths_mm: Sequence[np.ndarray], intrinsics: Intrinsics | Sequence[Intrinsics],
               joints_xyz: np.ndarray, cfg: FitConfig = FitConfig(), handedness: str = "right") -> FitResult:
    """Fit B independent frames at once: depth (H, W) mm of the camera's un-mirrored view each, their
    intrinsics (one for all, or one per frame), the network's canonical joints (B, 21, 3) camera mm.
    ``handedness``: "right" or "left" (a left hand is fitted as the mirror image of a right one)."""
    t_start = time.perf_counter()
    joints = _check_inputs(depths_mm, joints_xyz)
    ks = _intrinsics_list(intrinsics, len(joints))
    with torch_threads(cfg.threads):
        model, x0 = solver.hand_model(solver.start_from_joints(joints, _left(handedness, ks)), joints)
        targets = stack_targets([frame_targets(d, k, j, cfg.select) for d, k, j in zip(depths_mm, ks, joints)])
        return _solve(model, targets, x0, cfg, t_start)


def fit_frame(depth_mm: np.ndarray, intrinsics: Intrinsics, joints_xyz: np.ndarray,
              cfg: FitConfig = FitConfig(), handedness: str = "right") -> FitResult:
    """Fit one frame (:func:`fit_frames` of a batch of one): ``joints_xyz`` (21, 3)."""
    return fit_frames([depth_mm], intrinsics, np.asarray(joints_xyz, dtype=np.float64)[None], cfg, handedness)


def _take(model: en.HandModel, i: int, prev: np.ndarray | None) -> en.HandModel:
    """Frame i of a batched model, with the previous frame's fitted joints for the temporal term."""
    shape = th.HandShapeArrays(*(getattr(model.shape, f.name)[i:i + 1] for f in dataclasses.fields(model.shape)))
    joints_prev = model.joints_prev[i:i + 1] if prev is None else np.asarray(prev, dtype=np.float64)[None]
    mask = np.zeros(1) if prev is None else np.ones(1)
    return en.HandModel(shape, model.cup[i:i + 1], model.rotation0[i:i + 1], model.translation0[i:i + 1],
                        model.mirror[i:i + 1], model.joints_init[i:i + 1], joints_prev, mask, model.palm[i:i + 1],
                        model.forearm[i:i + 1])


def warm_up(cfg: FitConfig | None = None) -> None:
    """Make what a process's first fit makes once (the real-pose prior's Gaussian, about 0.15 s; the import of
    scipy.ndimage for the targets, about 0.2 s) now, so that no frame's time holds it (``srnpose.load``,
    ``evaluate --fit``)."""
    import scipy.ndimage  # noqa: F401  (srnpose.fitting.targets imports it on the first frame)

    en.pose_prior_gaussian((cfg or FitConfig()).weights.prior_floor_deg)


def sequence_config(cfg: FitConfig | None = None) -> FitConfig:
    """``cfg`` (None: :class:`FitConfig`'s defaults) with the temporal term on (:data:`SEQUENCE_TEMPORAL`)
    unless it already has a temporal weight: the settings of :func:`fit_sequence_frames`."""
    cfg = cfg or FitConfig()
    if cfg.weights.temporal > 0:
        return cfg
    return dataclasses.replace(cfg, weights=dataclasses.replace(cfg.weights, temporal=SEQUENCE_TEMPORAL))


def fit_sequence_frames(depths_mm: Sequence[np.ndarray], intrinsics: Intrinsics | Sequence[Intrinsics],
                        joints_xyz: np.ndarray, cfg: FitConfig | None = None,
                        handedness: str = "right") -> FitResult:
    """Fit one hand through T consecutive frames with one shape: the medians of the frames' starts
    (palm scale, bone lengths), then each frame fitted alone (one batch) and the medians of their size,
    finger-length and palm-width scales held for all; then frame by frame in order (as a live stream
    would run) the fit with a temporal term towards the previous frame's fit moved as the network's
    joints moved since. ``cfg`` (None: the defaults) gets the temporal term (:func:`sequence_config`)."""
    t_start = time.perf_counter()
    cfg = sequence_config(cfg)
    joints = _check_inputs(depths_mm, joints_xyz)
    ks = _intrinsics_list(intrinsics, len(joints))
    parts = []
    with torch_threads(cfg.threads):
        start = solver.start_from_joints(joints, _left(handedness, ks))
        n = len(joints)
        start.base_xyz_mm = np.broadcast_to(np.median(start.base_xyz_mm, 0), (n, 5, 3)).copy()
        start.bone_length_mm = np.broadcast_to(np.median(start.bone_length_mm, 0), (n, 5, 3)).copy()
        start.palm_scale = np.broadcast_to(np.median(start.palm_scale, 0), (n, 2)).copy()
        model, x0 = solver.hand_model(start, joints)
        frames = [frame_targets(depths_mm[i], ks[i], joints[i], cfg.select) for i in range(n)]
        targets = [stack_targets([f]) for f in frames]
        alone = _solve(model, stack_targets(frames), x0, dataclasses.replace(cfg, weights=dataclasses.replace(
            cfg.weights, temporal=0.0)), time.perf_counter())
        x0[:, en.LOG_SCALE:] = np.median(alone.log_scales, 0)  # the shared shape's sizes
        held = dataclasses.replace(cfg, fit_scale=False)
        prev = None
        for i in range(n):
            fit = _solve(_take(model, i, prev), targets[i], x0[i:i + 1], held, time.perf_counter())
            # the next frame's temporal target: this fit moved as the network's joints move (the
            # network follows the hand's motion; the term smooths the fit's own frame-to-frame noise)
            prev = fit.joints_xyz[0] + (joints[i + 1] - joints[i] if i + 1 < n else 0.0)
            parts.append(fit)
    return _concat(parts, (time.perf_counter() - t_start) * 1e3 / max(len(joints), 1))


def _concat(parts: list[FitResult], ms_per_frame: float) -> FitResult:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(FitResult):
        values = [getattr(p, f.name) for p in parts]
        if f.name == "ms_per_frame":
            out[f.name] = ms_per_frame
        elif isinstance(values[0], dict):
            out[f.name] = {k: np.concatenate([v[k] for v in values]) for k in values[0]}
        else:
            out[f.name] = np.concatenate(values)
    return FitResult(**out)
