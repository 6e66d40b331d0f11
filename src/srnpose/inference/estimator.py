"""Full-frame inference: depth frame in, 3D joints in millimetres out.

    import srnpose
    est = srnpose.load("runs/demo")                         # None: the shipped model; or a .onnx file
    res = est.predict(depth, camera="kinect2")             # or intrinsics=Intrinsics(...), depth_unit_mm=, mirrored=
    res.joints_xyz                                         # (J, 3) mm, camera frame: the hand fitted to the depth
    res.joints_raw_xyz                                     # the network's joints (srnpose.load(fit=False): no fit)

The steps (locate, crop, network, recentre, decode) are :class:`srnpose.inference.frame_path.FramePath`'s,
the engine that evaluation and training's validation run too; this module adds what a user of full
frames needs around it: frame checks, mirrored sensors, timings and :class:`PoseResult`, and the fit of
the articulated hand to the depth (:mod:`srnpose.fitting`; on by default in :func:`load` for 21-joint
models, ``HandPoseEstimator.fit`` says which settings, None: none).
Where the crops go (cube, centre rule, passes, the hand search's depth range and stride) is the
:class:`~srnpose.data.centering.CenterPolicy`'s: ``CenterPolicy(stride=1)`` searches the hand on every
pixel instead of every 4th.

Conventions of a :class:`PoseResult`:

* ``joints_uvd``, ``center_uvd`` and ``stage_joints`` are pixels of the frame **as given** (so they
  draw straight onto it) and depth in mm;
* ``joints_xyz`` is the camera frame in mm, **un-mirrored**: for a mirrored sensor (Kinect V2 sample
  frames, ``mirrored=True``) the frame is flipped back before the geometry, so x grows to the
  camera's right as for any other sensor; ``x = (u_cam - cx) * z / fx`` with ``u_cam = W - 1 - u``.
* no hand in range: ``hand_found=False`` and every joint array is NaN, never an exception.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from srnpose import geometry
from srnpose.data.centering import CenterPolicy
from srnpose.errors import UserError
from srnpose.inference.backends import (
    BACKENDS,
    DEFAULT_THREADS,
    default_backend,
    make_ort_session,
    ort_session_options,
)
from srnpose.inference.frame_path import (
    FINDERS,
    HANDEDNESS,
    HANDS,
    PLAUSIBLE_DEPTH_MM,
    Estimate,
    FrameCamera,
    FrameError,
    FramePath,
    check_frame,
    depth_unit_warning,
    estimate_in_frame,
    mirrored_camera_warning,
    resolve_frame_camera,
)
from srnpose.training.checkpoint import load_checkpoint
from srnpose.weights import release_dir

__all__ = [
    "BACKENDS",
    "FrameError",
    "FrameCamera",
    "PoseResult",
    "HandPoseEstimator",
    "load",
    "resolve_frame_camera",
    "make_ort_session",
    "ort_session_options",
    "smooth_result",
    "estimate_frames",
]

# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class PoseResult:
    """One frame's estimate. Joint arrays are in the model's ``layout`` order; NaN when no hand."""

    hand_found: bool
    joints_uvd: np.ndarray  # (J, 3) px, px, mm: pixels of the frame as given
    joints_xyz: np.ndarray  # (J, 3) mm, camera frame (un-mirrored)
    center_uvd: np.ndarray  # (3,) the crop centre, pixels of the frame as given
    stage_joints: np.ndarray  # (num_stages, J, 3) every stage's joints in uvd (the last is joints_uvd)
    crop_box: np.ndarray  # (4,) u0, v0, u1, v1: the cube's window in the frame, for drawing
    timings: dict[str, float] = field(default_factory=dict)  # ms: center, crop, network, decode, total
    layout: str = "canonical"
    # Filled by srnpose.hand.angles.fit_angles (None until then, and when no hand): the kinematic hand fitted
    # through the sequence: named angles in degrees, its joints (J, 3) mm with constant bone lengths.
    joint_angles: dict[str, float] | None = None
    joints_fitted_xyz: np.ndarray | None = None
    handedness: str | None = None  # "right" or "left", as the fit found it
    # The network's own joints (J, 3) mm when the fit to the depth (srnpose.fitting) replaced joints_xyz,
    # joints_uvd and the last of stage_joints; None without that fit (or no hand)
    joints_raw_xyz: np.ndarray | None = None

    def to_json(self, frame: str | int | None = None, ndigits: int = 2) -> dict:
        """The ``predictions.jsonl`` record: frame, hand_found, joints_uvd, joints_xyz, center_uvd,
        latency_ms; after the fit to the depth also joints_raw_xyz (the network's joints); after a fit
        (:func:`srnpose.hand.angles.fit_angles`, or the fit to the depth) joint_angles, joints_fitted_xyz,
        handedness."""

        def plain(a: np.ndarray):
            return np.round(a, ndigits).tolist() if self.hand_found else None

        record = {"frame": frame, "hand_found": bool(self.hand_found), "joints_uvd": plain(self.joints_uvd),
                  "joints_xyz": plain(self.joints_xyz), "center_uvd": plain(self.center_uvd),
                  "latency_ms": round(float(self.timings.get("total", float("nan"))), 3)}
        if self.joints_raw_xyz is not None and self.hand_found:
            record["joints_raw_xyz"] = np.round(self.joints_raw_xyz, ndigits).tolist()
        if self.joint_angles is not None:
            record["joint_angles"] = {k: round(v, ndigits) for k, v in self.joint_angles.items()}
            record["joints_fitted_xyz"] = np.round(self.joints_fitted_xyz, ndigits).tolist()
            record["handedness"] = self.handedness
        return record


def _no_hand(num_stages: int, num_joints: int, layout: str, timings: dict) -> PoseResult:
    nan = np.full((num_joints, 3), np.nan)
    return PoseResult(False, nan, nan.copy(), np.full(3, np.nan), np.full((num_stages, num_joints, 3), np.nan),
                      np.full(4, np.nan), timings, layout)


# --------------------------------------------------------------------------- the estimator


class HandPoseEstimator:
    """A :class:`~srnpose.inference.frame_path.FramePath` for full frames as sensors give them.
    Build with :func:`load`, :meth:`from_model` or :meth:`from_onnx`."""

    def __init__(self, engine: FramePath) -> None:
        self.engine = engine
        # every frame is checked for a wrong depth unit (a UserWarning for each that looks wrong: a frame
        # in metres after good ones finds no hand); `srnpose predict` turns this off and says it in its
        # own words, naming --depth-unit
        self.check_depth_unit = True
        self.handedness = "right"  # of the tracked hand; "left": read as its mirror image (predict_batch)
        # the fit of the articulated hand to the depth after the network (srnpose.fitting.FitConfig), 21-joint
        # models only; None: the network's joints (the default here; load() turns it on)
        self.fit = None

    # the engine's facts, for callers and reports
    input_size = property(lambda self: self.engine.input_size)
    num_stages = property(lambda self: self.engine.num_stages)
    num_joints = property(lambda self: self.engine.num_joints)
    layout = property(lambda self: self.engine.layout)
    backend = property(lambda self: self.engine.backend)
    threads = property(lambda self: self.engine.threads)  # the network's intra-op threads
    model_config = property(lambda self: self.engine.model_config)
    policy = property(lambda self: self.engine.policy)
    cube_mm = property(lambda self: self.engine.policy.cube)

    @property
    def refine(self) -> int:
        """Passes after the first (each crops again at the previous pass's joints' centroid)."""
        return self.engine.policy.passes - 1

    @classmethod
    def from_model(cls, model, policy: CenterPolicy | None = None, layout: str = "canonical",
                   backend: str = "torch", onnx_path: str | Path | bytes | None = None,
                   threads: int | None = None) -> HandPoseEstimator:
        """Wrap an :class:`~srnpose.model.SRN` with the crops of ``policy`` (None: ``CenterPolicy()``,
        its defaults). ``backend="onnxruntime"`` exports it in memory (or uses ``onnx_path``, e.g. an
        int8 file made from it)."""
        return cls(FramePath.from_model(model, policy or CenterPolicy(), layout, backend, onnx_path, threads))

    @classmethod
    def from_checkpoint(cls, ckpt, backend: str = "torch", threads: int | None = None, center: str = "auto",
                        hand: str = "nearest") -> HandPoseEstimator:
        """A loaded checkpoint's engine; ``center`` and ``hand`` as in :func:`load`."""
        return cls(FramePath.from_checkpoint(ckpt, backend, threads=threads, finder=center, hand=hand))

    @classmethod
    def from_onnx(cls, path: str | Path, threads: int | None = None) -> HandPoseEstimator:
        """An ONNX file written by ``srnpose export`` (its metadata names size, cube, layout, passes)."""
        return cls(FramePath.from_onnx(path, threads))

    # ------------------------------------------------------------------ per frame

    def _given_center(self, center_uvd: Any, flip: geometry.ViewFlip, shape: tuple[int, int]) -> np.ndarray:
        """A user's centre (pixels of the frame as given) in the view's pixels, checked."""
        center = np.asarray(center_uvd, dtype=np.float64)
        if center.size != 3:
            raise FrameError(f"center_uvd must be 3 numbers (u, v, d), got {center.size}: {center_uvd!r}")
        center = center.reshape(3).copy()
        h, w = shape
        if not (np.isfinite(center).all() and center[2] > 0):
            raise FrameError(f"center_uvd must be finite with a positive depth, got {center_uvd}")
        if not PLAUSIBLE_DEPTH_MM[0] <= center[2] <= PLAUSIBLE_DEPTH_MM[1]:
            raise FrameError(f"center_uvd depth {center[2]:g} mm is outside any depth camera's range "
                             f"({PLAUSIBLE_DEPTH_MM[0]:g}-{PLAUSIBLE_DEPTH_MM[1]:g} mm; d is in mm)")
        if not (0 <= center[0] < w and 0 <= center[1] < h):
            raise FrameError(f"center_uvd ({center[0]:g}, {center[1]:g}) lies outside the {w}x{h} frame")
        return flip.uvd(center)

    def _result(self, est: Estimate, flip: geometry.ViewFlip, total_ms: float) -> PoseResult:
        """The engine's estimate on ``flip``'s view as a :class:`PoseResult` of the frame as given."""
        timings = dict(est.timings, total=total_ms)
        if not est.hand_found:
            return _no_hand(self.num_stages, self.num_joints, self.layout, timings)
        S = self.input_size
        Minv = np.linalg.inv(est.M)
        corners = Minv[:2, :2] @ np.array([[-0.5, S - 0.5], [-0.5, S - 0.5]]) + Minv[:2, 2:3]  # (2, 2) u;v x lo;hi
        box = flip.box([corners[0, 0], corners[1, 0], corners[0, 1], corners[1, 1]])  # the frame's pixels
        est = estimate_in_frame(est, flip)  # pixels of the frame as given, the real world's mm
        joints_xyz = est.pass_xyz[-1].copy()  # (J, 3) camera frame: the last pass's final stage
        return PoseResult(True, est.stage_uvd[-1], joints_xyz, est.center_uvd, est.stage_uvd, box, timings,
                          self.layout)

    def predict(self, depth: Any, intrinsics: Any = None, depth_unit_mm: float | None = None,
                mirrored: bool | None = None, camera: Any = None, center_uvd: Any = None,
                handedness: str | None = None) -> PoseResult:
        """Estimate the hand pose in one full frame (H, W): raw units (uint16) or float mm.

        Give the camera as ``intrinsics`` (``Intrinsics``, ``"fx,fy,cx,cy"``) with ``depth_unit_mm``
        (default 1) and ``mirrored`` (default False), or as a preset ``camera="kinect2"`` (whose unit,
        mirroring and resolution apply unless overridden). Raises :class:`FrameError` for a frame
        that is not a depth frame; a frame without a hand gives ``hand_found=False``.
        ``center_uvd`` (u, v in the frame's pixels, d in mm) crops there instead of searching the hand,
        e.g. for a hand tracker's centre or a labelled frame's joint centroid.
        ``handedness``: "right" or "left" (None: the estimator's ``handedness``, set by :func:`load`).
        """
        return self.predict_batch([depth], intrinsics, depth_unit_mm, mirrored, camera,
                                  None if center_uvd is None else [center_uvd], handedness)[0]

    def predict_batch(self, frames: Sequence[Any] | np.ndarray, intrinsics: Any = None,
                      depth_unit_mm: float | None = None, mirrored: bool | None = None,
                      camera: Any = None, centers_uvd: Sequence[Any] | None = None,
                      handedness: str | None = None) -> list[PoseResult]:
        """Several frames from one camera, (B, H, W) or a list: one network call per pass for all hands.

        Models learn right hands (the convention of NYU, ICVL, MSRA and srnpose's engine v2): a left hand
        (``handedness="left"``) is read as its mirror image, a right hand (:class:`srnpose.geometry.ViewFlip`),
        and its joints are mirrored back.

        Per-frame timings hold each frame's own centre/crop/decode time and the shared network time
        divided by the number of hands; with the fit (``self.fit``), its time per frame (``fit``, in
        ``total`` too). The fit fits the frames one by one (in one batch) and replaces the joints
        (:func:`srnpose.fitting.results.fit_results`, ``replace=True``): the network's stay in
        ``joints_raw_xyz``.
        """
        t_start = time.perf_counter()
        cam = resolve_frame_camera(intrinsics, depth_unit_mm, mirrored, camera)
        if mirrored is None and not isinstance(intrinsics, FrameCamera) and \
                (message := mirrored_camera_warning(cam)):  # a Kinect V2's intrinsics, mirroring left unsaid
            import warnings

            warnings.warn(message, UserWarning, stacklevel=3)
        handedness = self.handedness if handedness is None else handedness
        if handedness not in HANDEDNESS:
            raise UserError(f"handedness must be one of {', '.join(HANDEDNESS)}, got {handedness!r}")
        left = handedness == "left"
        if isinstance(frames, np.ndarray) and frames.ndim != 3:
            raise FrameError(f"expected a batch of depth frames (B, H, W), got shape {frames.shape}")
        views, given, cams, flips, checked = [], [], [], [], []
        for i, depth in enumerate(frames):
            try:
                depth = check_frame(depth, cam)
            except FrameError as exc:
                raise FrameError(f"frame {i}: {exc}" if len(frames) > 1 else str(exc)) from None
            if self.check_depth_unit and (message := depth_unit_warning(depth, cam.depth_unit_mm)):
                import warnings

                warnings.warn(message, UserWarning, stacklevel=3)  # every frame that looks wrong, not the first only
            checked.append(depth)
            flip = cam.view_flip(depth.shape[1], left)
            flips.append(flip)
            cams.append(cam.view(flip))
            views.append(flip.frame(depth))  # the view the network reads (no copy)
            given.append(None if centers_uvd is None or centers_uvd[i] is None
                         else self._given_center(centers_uvd[i], flip, depth.shape))
        estimates = self.engine.estimate(views, cams, given)
        total_ms = (time.perf_counter() - t_start) * 1e3 / max(len(views), 1)
        results = []
        for flip, est in zip(flips, estimates):
            t0 = time.perf_counter()
            result = self._result(est, flip, total_ms)
            result.timings["decode"] = (time.perf_counter() - t0) * 1e3
            result.timings["total"] = total_ms + result.timings["decode"]
            results.append(result)
        if self.fit is not None and self.layout == "canonical":
            from srnpose.fitting.results import fit_results

            results = fit_results(results, checked, cam, self.fit, handedness=handedness, replace=True)
        return results

    def network(self, crops: np.ndarray) -> np.ndarray:
        """The bare network: (B, 1, S, S) float32 normalized crops -> (B, stages, J, 3)."""
        return self.engine.network(crops)

    def crop(self, depth: np.ndarray, cam: FrameCamera) -> np.ndarray | None:
        """The first pass's crop (S, S) of a frame as given, or None when no hand is found."""
        view = cam.view_flip(depth.shape[1]).frame(depth)
        center = self.engine.locate(view, cam)
        return None if center is None else self.engine.crop(view, center, cam)[0]


def smooth_result(result: PoseResult, smoother, t_s: float, cam: FrameCamera, width: int) -> PoseResult:
    """Filter a sequence's ``joints_xyz`` with ``smoother`` (a :class:`~srnpose.inference.smoothing.OneEuroFilter`)
    and recompute ``joints_uvd`` from them; a frame without a hand resets the filter."""
    if not result.hand_found:
        smoother.reset()
        return result
    xyz = smoother.filter(result.joints_xyz, t_s)
    uvd = cam.view_flip(width).uvd(geometry.xyz_to_uvd(xyz, cam.intrinsics))
    stage = np.concatenate([result.stage_joints[:-1], uvd[None]])
    return dataclasses.replace(result, joints_xyz=xyz, joints_uvd=uvd, stage_joints=stage)


def estimate_frames(estimator: HandPoseEstimator, frames, cam: FrameCamera, smoother=None):
    """The frame loop of ``predict`` and ``live``: ``(frame, PoseResult)`` for each frame of a
    :mod:`srnpose.inference.sensors` source (``.depth``, ``.source``, ``.timestamp_s``). A frame that is not a
    depth frame stops with a UserError naming its source; ``smoother`` filters the sequence."""
    for frame in frames:
        try:
            result = estimator.predict(frame.depth, cam)
        except FrameError as exc:
            raise UserError(f"{frame.source}: {exc}") from None
        if smoother is not None:
            result = smooth_result(result, smoother, frame.timestamp_s, cam, frame.depth.shape[1])
        yield frame, result


def load(path: str | Path | None = None, backend: str | None = None, threads: int | None = None,
         center: str = "auto", hand: str = "nearest", handedness: str = "right",
         fit: bool | None = None) -> HandPoseEstimator:
    """A :class:`HandPoseEstimator` from a training run folder, a checkpoint folder, a ``.safetensors``
    file with its ``config.yaml``, or an exported ``.onnx`` file (always ONNX Runtime); ``None``: the
    model shipped in the package (:mod:`srnpose.weights`, ``MODEL_CARD.md``).

    ``backend``: None (default) runs ONNX Runtime when it is installed (``pip install 'srnpose[onnx]'``),
    else torch (:func:`srnpose.inference.backends.default_backend`); ``"onnxruntime"`` on a checkpoint
    exports the network in memory, once per process (1-1.5 s for the shipped model). Results of the two
    agree within 0.05 mm. ``threads``: the network's intra-op threads (default
    :data:`~srnpose.inference.backends.DEFAULT_THREADS`, 1: more collapse on a busy machine; torch's
    own setting is restored after each call). ``estimator.backend`` and ``estimator.threads`` say which.
    ``center``: how the hand is found: "auto" (the hand locator the checkpoint carries, else the
    nearest-blob search), "locator" (required), "depth" (the nearest-blob search). ``hand``: which of
    several hands the locator takes: "nearest", or "left" / "right" of the frame as given.
    ``handedness``: the tracked hand is a "right" (default) or "left" hand; models learn right hands and
    read a left one as its mirror image (:meth:`HandPoseEstimator.predict_batch`).
    ``fit``: fit the articulated hand to the depth after the network (:mod:`srnpose.fitting`, 3
    Levenberg-Marquardt steps, about 14 ms per frame on one core): the results' ``joints_xyz``,
    ``joints_uvd`` and ``joint_angles`` are the fitted hand's and ``joints_raw_xyz`` the network's. None
    (default): on for a 21-joint model, off for another layout; False: the network's joints alone; True:
    on, and a model of another layout is refused. ``estimator.fit`` holds the settings (None: off).
    """
    if fit is not None and not isinstance(fit, bool):
        raise UserError(f"fit must be True, False or None, got {fit!r}")
    if backend is None:
        backend = default_backend()[0]
    if threads is None:
        threads = DEFAULT_THREADS
    elif isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise UserError(f"threads must be a whole number >= 1, got {threads!r}")
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")
    if center not in FINDERS or hand not in HANDS or handedness not in HANDEDNESS:
        raise UserError(f"center must be one of {', '.join(FINDERS)}, hand one of {', '.join(HANDS)} and "
                        f"handedness one of {', '.join(HANDEDNESS)}; got {center!r}, {hand!r}, {handedness!r}")
    if path is None:
        path = release_dir()
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        if center == "locator":
            raise UserError(f"{path}: an exported .onnx carries no hand locator; give the checkpoint folder")
        estimator = HandPoseEstimator.from_onnx(path, threads)
    else:
        estimator = HandPoseEstimator.from_checkpoint(load_checkpoint(path), backend, threads, center, hand)
    estimator.handedness = handedness
    if fit and estimator.layout != "canonical":
        raise UserError(f"the fit to the depth needs a 21-joint model; {path} predicts the {estimator.layout} "
                        "layout", flag="--fit")
    if fit is not False and estimator.layout == "canonical":
        from srnpose.fitting.fit import FitConfig, warm_up

        estimator.fit = FitConfig()
        warm_up(estimator.fit)  # here, not on the first frame
    return estimator
