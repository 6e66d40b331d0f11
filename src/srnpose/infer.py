"""Full-frame inference: depth frame in, 3D joints in millimetres out.

    import srnpose
    est = srnpose.load("runs/demo")                         # or backend="onnxruntime", or a .onnx file
    res = est.predict(depth, camera="kinect2")             # or intrinsics=Intrinsics(...), depth_unit_mm=, mirrored=
    res.joints_xyz                                         # (J, 3) mm, camera frame

The frame path (the same geometry as training, :mod:`srnpose.geometry`):

1. **centre**: :func:`srnpose.geometry.find_hand_center` (the function training uses), the nearest
   blob's 3D centre refined inside the metric cube, searched on a 4x-strided frame and refined at full
   resolution inside the cube's window (0.75 ms on a 512x424 frame); ``center_method="reference"``
   searches every pixel (stride 1, 3.6 ms);
2. **crop**: the metric cube crop, resampled nearest-neighbour exactly like
   :func:`srnpose.geometry.warp_depth` but separably (the crop is axis-aligned at inference);
3. **network**: torch eager or ONNX Runtime, (B, 1, S, S) -> every stage's joints (B, stages, J, 3)
   in normalized crop coordinates;
4. **decode**: :func:`srnpose.geometry.crop_to_uvd` and :func:`srnpose.geometry.uvd_to_xyz`.

Conventions of a :class:`PoseResult`:

* ``joints_uvd``, ``center_uvd`` and ``stage_joints`` are pixels of the frame **as given** (so they
  draw straight onto it) and depth in mm;
* ``joints_xyz`` is the camera frame in mm, **un-mirrored**: for a mirrored sensor (Kinect V2 sample
  frames, ``mirrored=True``) the frame is flipped back before the geometry, so x grows to the
  camera's right as for any other sensor; ``x = (u_cam - cx) * z / fx`` with ``u_cam = W - 1 - u``.
* no hand in range: ``hand_found=False`` and every joint array is NaN, never an exception.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from srnpose import geometry
from srnpose.errors import UserError
from srnpose.geometry import Intrinsics

__all__ = [
    "BACKENDS",
    "FrameError",
    "FrameCamera",
    "PoseResult",
    "HandPoseEstimator",
    "load",
    "resolve_frame_camera",
    "crop_frame",
    "ort_session_options",
    "smooth_result",
    "estimate_frames",
]

BACKENDS = ("torch", "onnxruntime")
NEAR_MM = 100.0  # nearer than this is sensor noise (every depth camera's minimum range is larger)
FAR_MM = 1500.0  # a hand held towards the camera is nearer than 1.5 m
# centre method -> geometry.find_hand_center's stride: "fast" (default, as in training) or every pixel
CENTER_METHODS = {"fast": geometry.CENTER_STRIDE, "reference": 1}


class FrameError(UserError, ValueError):
    """A frame that is not a depth frame (shape, dtype, NaN/inf, resolution). One line, as UserError."""


@dataclass(frozen=True)
class FrameCamera:
    """How to read a frame: intrinsics (of the un-mirrored view), depth unit, mirroring, resolution."""

    intrinsics: Intrinsics
    depth_unit_mm: float = 1.0
    mirrored: bool = False
    resolution: tuple[int, int] | None = None  # (W, H) when known from a preset: frames are checked
    name: str = ""


def resolve_frame_camera(intrinsics: Any = None, depth_unit_mm: float | None = None, mirrored: bool | None = None,
                         camera: Any = None) -> FrameCamera:
    """Combine a camera preset (name or :class:`~srnpose.cameras.Camera`) with explicit overrides.

    ``intrinsics`` may be an :class:`Intrinsics`, ``"fx,fy,cx,cy"``, a 4-sequence or a :class:`FrameCamera`.
    """
    if isinstance(intrinsics, FrameCamera):
        return intrinsics
    if camera is not None:
        from srnpose.cameras import Camera, get_camera

        cam = camera if isinstance(camera, Camera) else get_camera(str(camera))
        base = FrameCamera(cam.intrinsics, cam.depth_unit_mm, cam.mirrored, tuple(cam.resolution), cam.name)
    else:
        if intrinsics is None:
            raise UserError("give the camera: intrinsics=Intrinsics(fx, fy, cx, cy) or camera=NAME")
        base = FrameCamera(Intrinsics(1.0, 1.0, 0.0, 0.0))
    if intrinsics is not None:
        if isinstance(intrinsics, str):
            try:
                intrinsics = Intrinsics.parse(intrinsics)
            except ValueError as exc:
                raise UserError(f"intrinsics: {exc}") from None
        elif not isinstance(intrinsics, Intrinsics):
            intrinsics = Intrinsics(*(float(v) for v in intrinsics))
        base = FrameCamera(intrinsics, base.depth_unit_mm, base.mirrored, None, base.name)
    unit = base.depth_unit_mm if depth_unit_mm is None else float(depth_unit_mm)
    if not (np.isfinite(unit) and unit > 0):
        raise UserError(f"depth unit must be a positive number of mm, got {depth_unit_mm!r}")
    mir = base.mirrored if mirrored is None else bool(mirrored)
    return FrameCamera(base.intrinsics, unit, mir, base.resolution, base.name)


# --------------------------------------------------------------------------- frame checks

_DTYPES = (np.uint16, np.float32, np.float64, np.int32, np.uint32, np.int64)


def check_frame(depth: Any, cam: FrameCamera, expect_2d: bool = True) -> np.ndarray:
    """The frame as an array, or :class:`FrameError` saying what is wrong with it."""
    if not isinstance(depth, np.ndarray):
        if hasattr(depth, "numpy"):  # a torch tensor
            depth = depth.detach().cpu().numpy()
        else:
            depth = np.asarray(depth)
    if depth.ndim != 2:
        raise FrameError(f"expected one depth frame of shape (H, W), got shape {depth.shape}")
    if depth.dtype.type not in _DTYPES:
        raise FrameError(f"depth dtype {depth.dtype} is not supported (expected uint16 raw units or float32 mm)")
    if depth.dtype.kind == "f" and not np.isfinite(depth).all():
        raise FrameError("depth contains NaN or inf (use 0 for no measurement)")
    h, w = depth.shape
    if cam.resolution is not None and tuple(cam.resolution) != (w, h):
        raise FrameError(f"frame is {w}x{h} but camera {cam.name or ''} is {cam.resolution[0]}x{cam.resolution[1]}"
                         " (wrong camera preset?)")
    K = cam.intrinsics
    if not (0 <= K.cx < w and 0 <= K.cy < h):
        raise FrameError(f"frame is {w}x{h} but the principal point ({K.cx}, {K.cy}) lies outside it "
                         "(intrinsics for another resolution?)")
    return depth


# --------------------------------------------------------------------------- centre and crop


def crop_frame(depth: np.ndarray, center_uvd: Any, cube_mm: Any, size: int, intrinsics: Intrinsics,
               depth_unit_mm: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`srnpose.geometry.crop_depth` for raw frames, separably: ``(crop_nrm (S, S) float32, M)``.

    Samples exactly the pixels :func:`srnpose.geometry.warp_depth` samples (same arithmetic), about
    10x faster since the inference crop has no rotation.
    """
    cube = np.broadcast_to(np.asarray(cube_mm, dtype=np.float64), (3,))
    M = geometry.crop_transform(center_uvd, cube, size, intrinsics)
    Minv = np.linalg.inv(M)
    j = np.arange(size, dtype=np.float64)
    ui = np.floor(Minv[0, 0] * j + Minv[0, 1] * 0.0 + Minv[0, 2] + 0.5).astype(np.int64)  # (S,) columns
    vi = np.floor(Minv[1, 0] * 0.0 + Minv[1, 1] * j + Minv[1, 2] + 0.5).astype(np.int64)  # (S,) rows
    h, w = depth.shape
    ok_u, ok_v = (ui >= 0) & (ui < w), (vi >= 0) & (vi < h)
    raw = depth[np.ix_(np.clip(vi, 0, h - 1), np.clip(ui, 0, w - 1))]  # (S, S)
    if not (ok_u.all() and ok_v.all()):
        raw[~ok_v, :] = 0
        raw[:, ~ok_u] = 0
    crop_mm = raw.astype(np.float32)
    if depth_unit_mm != 1.0:
        crop_mm *= np.float32(depth_unit_mm)
    center_d = float(np.asarray(center_uvd, dtype=np.float64).reshape(3)[2])
    return geometry.normalize_depth(crop_mm, center_d, cube[2]), M


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

    def to_json(self, frame: str | int | None = None, ndigits: int = 2) -> dict:
        """The ``predictions.jsonl`` record: frame, hand_found, joints_uvd, joints_xyz, center_uvd, latency_ms."""

        def plain(a: np.ndarray):
            return np.round(a, ndigits).tolist() if self.hand_found else None

        return {"frame": frame, "hand_found": bool(self.hand_found), "joints_uvd": plain(self.joints_uvd),
                "joints_xyz": plain(self.joints_xyz), "center_uvd": plain(self.center_uvd),
                "latency_ms": round(float(self.timings.get("total", float("nan"))), 3)}


def _no_hand(num_stages: int, num_joints: int, layout: str, timings: dict) -> PoseResult:
    nan = np.full((num_joints, 3), np.nan)
    return PoseResult(False, nan, nan.copy(), np.full(3, np.nan), np.full((num_stages, num_joints, 3), np.nan),
                      np.full(4, np.nan), timings, layout)


# --------------------------------------------------------------------------- backends


def ort_session_options(threads: int | None = None):
    """ONNX Runtime options for batch-1 latency: every graph optimization, one intra-op thread per core."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = int(threads or _cores())
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return so


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def make_ort_session(model: bytes | str | Path, threads: int | None = None):
    import onnxruntime as ort

    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, ort_session_options(threads), providers=["CPUExecutionProvider"])


class TorchRunner:
    """(B, 1, S, S) float32 numpy -> (B, stages, J, 3) float32 numpy through the torch model."""

    backend = "torch"

    def __init__(self, model) -> None:
        self.model = model.eval()

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model.forward_joints(torch.from_numpy(crops)).numpy()


class OrtRunner:
    """The same through an ONNX Runtime session (input ``depth``, output ``stage_joints``)."""

    backend = "onnxruntime"

    def __init__(self, session) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: crops})[0]


# --------------------------------------------------------------------------- the estimator


class HandPoseEstimator:
    """A network plus the frame path around it. Build with :func:`load` or :meth:`from_model`."""

    def __init__(self, runner: Callable[[np.ndarray], np.ndarray], input_size: int, num_stages: int,
                 num_joints: int, cube_mm: Any = 250.0, layout: str = "canonical", backend: str = "torch",
                 model_config: Any = None, near_mm: float = NEAR_MM, far_mm: float = FAR_MM,
                 center_method: str = "fast", refine: int = 0) -> None:
        if center_method not in CENTER_METHODS:
            raise UserError(f"unknown centre method {center_method!r}; available: {', '.join(CENTER_METHODS)}")
        self.runner = runner
        self.input_size = int(input_size)
        self.num_stages = int(num_stages)
        self.num_joints = int(num_joints)
        self.cube_mm = np.broadcast_to(np.asarray(cube_mm, dtype=np.float64), (3,)).copy()
        self.layout = str(layout)
        self.backend = backend
        self.model_config = model_config
        self.near_mm, self.far_mm = float(near_mm), float(far_mm)
        self.center_method = center_method
        # passes that crop again at the previous pass's joints' centroid (srnpose.train.refine_passes)
        self.refine = int(refine)

    @classmethod
    def from_model(cls, model, cube_mm: Any = 250.0, layout: str = "canonical", backend: str = "torch",
                   onnx_path: str | Path | bytes | None = None, threads: int | None = None,
                   center_method: str = "fast", refine: int = 0) -> HandPoseEstimator:
        """Wrap an :class:`~srnpose.model.SRN`. ``backend="onnxruntime"`` exports it in memory
        (or uses ``onnx_path``, e.g. an int8 file made from it)."""
        cfg = model.config
        if backend == "torch":
            runner = TorchRunner(model)
        elif backend == "onnxruntime":
            if onnx_path is None:
                from srnpose.export import export_onnx

                onnx_path = export_onnx(model)  # bytes
            runner = OrtRunner(make_ort_session(onnx_path, threads))
        else:
            raise UserError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")
        return cls(runner, cfg.input_size, cfg.num_stages, cfg.num_joints, cube_mm, layout, backend, cfg,
                   center_method=center_method, refine=refine)

    @classmethod
    def from_onnx(cls, path: str | Path, threads: int | None = None) -> HandPoseEstimator:
        """An ONNX file written by :func:`srnpose.export.export_onnx` (its metadata names size, cube, layout)."""
        from srnpose.export import read_metadata

        meta = read_metadata(path)
        session = make_ort_session(path, threads)
        return cls(OrtRunner(session), meta["input_size"], meta["num_stages"], meta["num_joints"],
                   meta["cube_mm"], meta["layout"], "onnxruntime", meta.get("model"),
                   refine=int(meta.get("refine", 0)))

    # ------------------------------------------------------------------ per frame

    def locate(self, depth: np.ndarray, cam: FrameCamera,
               center_uvd: Any = None) -> tuple[np.ndarray | None, np.ndarray | None, float]:
        """Centre (view pixels) and crop of one checked frame, with the centre time in ms.
        ``center_uvd`` (pixels of the frame as given) skips the centre search."""
        view = depth[:, ::-1] if cam.mirrored else depth  # the camera's own view (no copy)
        t0 = time.perf_counter()
        if center_uvd is not None:
            center = np.array(center_uvd, dtype=np.float64).reshape(3)
            if cam.mirrored:
                center[0] = (depth.shape[1] - 1) - center[0]
            if not (np.isfinite(center).all() and center[2] > 0):
                raise FrameError(f"center_uvd must be finite with a positive depth, got {center_uvd}")
        else:
            center = geometry.find_hand_center(view, cam.intrinsics, self.cube_mm, self.near_mm, self.far_mm,
                                               depth_unit_mm=cam.depth_unit_mm,
                                               stride=CENTER_METHODS[self.center_method])
        t1 = time.perf_counter()
        if center is None:
            return None, None, (t1 - t0) * 1e3
        crop, M = crop_frame(view, center, self.cube_mm, self.input_size, cam.intrinsics, cam.depth_unit_mm)
        return center, (crop, M), (t1 - t0) * 1e3

    def recentre(self, depth: np.ndarray, cam: FrameCamera, joints_nrm: np.ndarray, center_view: np.ndarray,
                 M: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """A refinement pass's centre (view pixels) and crop: the centroid of the final stage's joints
        ``joints_nrm`` (stages, J, 3), predicted from the crop ``M`` centred at ``center_view``."""
        view = depth[:, ::-1] if cam.mirrored else depth
        uvd = geometry.crop_to_uvd(joints_nrm[-1].astype(np.float64), M, center_view[2], self.cube_mm[2],
                                   self.input_size)
        center = geometry.xyz_to_uvd(geometry.uvd_to_xyz(uvd, cam.intrinsics).mean(axis=0), cam.intrinsics)
        return center, crop_frame(view, center, self.cube_mm, self.input_size, cam.intrinsics, cam.depth_unit_mm)

    def decode(self, joints_nrm: np.ndarray, center_view: np.ndarray, M: np.ndarray, cam: FrameCamera,
               width: int, timings: dict) -> PoseResult:
        """(stages, J, 3) normalized crop joints -> a :class:`PoseResult` in the frame's pixels."""
        S = self.input_size
        stage_uvd = geometry.crop_to_uvd(joints_nrm.astype(np.float64), M, center_view[2], self.cube_mm[2], S)
        joints_xyz = geometry.uvd_to_xyz(stage_uvd[-1], cam.intrinsics)  # (J, 3) camera frame
        Minv = np.linalg.inv(M)
        corners = Minv[:2, :2] @ np.array([[-0.5, S - 0.5], [-0.5, S - 0.5]]) + Minv[:2, 2:3]  # (2, 2) u;v x lo;hi
        box = np.array([corners[0, 0], corners[1, 0], corners[0, 1], corners[1, 1]])
        center = center_view.copy()
        if cam.mirrored:  # back to the pixels of the frame as given
            flip = width - 1
            stage_uvd[..., 0] = flip - stage_uvd[..., 0]
            center[0] = flip - center[0]
            box = np.array([flip - box[2], box[1], flip - box[0], box[3]])
        return PoseResult(True, stage_uvd[-1], joints_xyz, center, stage_uvd, box, timings, self.layout)

    def predict(self, depth: Any, intrinsics: Any = None, depth_unit_mm: float | None = None,
                mirrored: bool | None = None, camera: Any = None, center_uvd: Any = None) -> PoseResult:
        """Estimate the hand pose in one full frame (H, W): raw units (uint16) or float mm.

        Give the camera as ``intrinsics`` (``Intrinsics``, ``"fx,fy,cx,cy"``) with ``depth_unit_mm``
        (default 1) and ``mirrored`` (default False), or as a preset ``camera="kinect2"`` (whose unit,
        mirroring and resolution apply unless overridden). Raises :class:`FrameError` for a frame
        that is not a depth frame; a frame without a hand gives ``hand_found=False``.
        ``center_uvd`` (u, v in the frame's pixels, d in mm) crops there instead of searching the hand,
        e.g. for a hand tracker's centre or a labelled frame's joint centroid.
        """
        t_start = time.perf_counter()
        cam = resolve_frame_camera(intrinsics, depth_unit_mm, mirrored, camera)
        depth = check_frame(depth, cam)
        center, cropped, center_ms = self.locate(depth, cam, center_uvd)
        t_crop = time.perf_counter()
        if center is None:
            return _no_hand(self.num_stages, self.num_joints, self.layout,
                            {"center": center_ms, "crop": (t_crop - t_start) * 1e3, "network": 0.0, "decode": 0.0,
                             "total": (t_crop - t_start) * 1e3})
        crop, M = cropped
        out = self.runner(crop[None, None])  # (1, stages, J, 3)
        for _ in range(self.refine):
            center, (crop, M) = self.recentre(depth, cam, out[0], center, M)
            out = self.runner(crop[None, None])
        t_net = time.perf_counter()
        timings = {"center": center_ms, "crop": (t_crop - t_start) * 1e3, "network": (t_net - t_crop) * 1e3}
        result = self.decode(out[0], center, M, cam, depth.shape[1], timings)
        t_end = time.perf_counter()
        timings["decode"] = (t_end - t_net) * 1e3
        timings["total"] = (t_end - t_start) * 1e3
        return result

    def predict_batch(self, frames: Sequence[Any] | np.ndarray, intrinsics: Any = None,
                      depth_unit_mm: float | None = None, mirrored: bool | None = None,
                      camera: Any = None) -> list[PoseResult]:
        """Several frames from one camera, (B, H, W) or a list: one network call for all hands found.

        Per-frame timings hold each frame's own centre/crop/decode time and the shared network time
        divided by the number of hands.
        """
        cam = resolve_frame_camera(intrinsics, depth_unit_mm, mirrored, camera)
        if isinstance(frames, np.ndarray) and frames.ndim != 3:
            raise FrameError(f"expected a batch of depth frames (B, H, W), got shape {frames.shape}")
        located = []
        for i, depth in enumerate(frames):
            t0 = time.perf_counter()
            try:
                depth = check_frame(depth, cam)
            except FrameError as exc:
                raise FrameError(f"frame {i}: {exc}") from None
            center, cropped, center_ms = self.locate(depth, cam)
            located.append((depth, center, cropped, center_ms, (time.perf_counter() - t0) * 1e3))
        found = [k for k, item in enumerate(located) if item[1] is not None]
        outputs: dict[int, np.ndarray] = {}
        net_ms = 0.0
        if found:
            crops = np.stack([located[k][2][0] for k in found])[:, None]  # (B', 1, S, S)
            t0 = time.perf_counter()
            out = self.runner(crops)  # (B', stages, J, 3)
            for _ in range(self.refine):
                for n, k in enumerate(found):
                    depth, center, (_, M) = located[k][:3]
                    center, cropped = self.recentre(depth, cam, out[n], center, M)
                    located[k] = (depth, center, cropped) + located[k][3:]
                out = self.runner(np.stack([located[k][2][0] for k in found])[:, None])
            net_ms = (time.perf_counter() - t0) * 1e3 / len(found)
            outputs = {k: out[n] for n, k in enumerate(found)}
        results = []
        for k, (depth, center, cropped, center_ms, crop_ms) in enumerate(located):
            timings = {"center": center_ms, "crop": crop_ms, "network": net_ms if center is not None else 0.0}
            if center is None:
                timings.update(decode=0.0, total=crop_ms)
                results.append(_no_hand(self.num_stages, self.num_joints, self.layout, timings))
                continue
            t0 = time.perf_counter()
            result = self.decode(outputs[k], center, cropped[1], cam, depth.shape[1], timings)
            timings["decode"] = (time.perf_counter() - t0) * 1e3
            timings["total"] = crop_ms + net_ms + timings["decode"]
            results.append(result)
        return results

    def network(self, crops: np.ndarray) -> np.ndarray:
        """The bare network: (B, 1, S, S) float32 normalized crops -> (B, stages, J, 3)."""
        return self.runner(np.ascontiguousarray(crops, dtype=np.float32))


def smooth_result(result: PoseResult, smoother, t_s: float, cam: FrameCamera, width: int) -> PoseResult:
    """Filter a sequence's ``joints_xyz`` with ``smoother`` (a :class:`~srnpose.smoothing.OneEuroFilter`)
    and recompute ``joints_uvd`` from them; a frame without a hand resets the filter."""
    import dataclasses

    if not result.hand_found:
        smoother.reset()
        return result
    xyz = smoother.filter(result.joints_xyz, t_s)
    uvd = geometry.xyz_to_uvd(xyz, cam.intrinsics)
    if cam.mirrored:
        uvd[..., 0] = (width - 1) - uvd[..., 0]
    stage = np.concatenate([result.stage_joints[:-1], uvd[None]])
    return dataclasses.replace(result, joints_xyz=xyz, joints_uvd=uvd, stage_joints=stage)


def estimate_frames(estimator: HandPoseEstimator, frames, cam: FrameCamera, smoother=None):
    """The frame loop of ``predict`` and ``live``: ``(frame, PoseResult)`` for each frame of a
    :mod:`srnpose.sensors` source (``.depth``, ``.source``, ``.timestamp_s``). A frame that is not a
    depth frame stops with a UserError naming its source; ``smoother`` filters the sequence."""
    for frame in frames:
        try:
            result = estimator.predict(frame.depth, cam)
        except FrameError as exc:
            raise UserError(f"{frame.source}: {exc}") from None
        if smoother is not None:
            result = smooth_result(result, smoother, frame.timestamp_s, cam, frame.depth.shape[1])
        yield frame, result


def load(path: str | Path, backend: str = "torch", threads: int | None = None) -> HandPoseEstimator:
    """A :class:`HandPoseEstimator` from a training run folder, a checkpoint folder, a ``.safetensors``
    file with its ``config.yaml``, or an exported ``.onnx`` file (always ONNX Runtime).

    ``backend="onnxruntime"`` on a checkpoint exports the network in memory (a few seconds).
    """
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        return HandPoseEstimator.from_onnx(path, threads)
    from srnpose.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    return HandPoseEstimator.from_model(ckpt.model, ckpt.cube_mm, ckpt.layout, backend, threads=threads,
                                        refine=ckpt.refine)
