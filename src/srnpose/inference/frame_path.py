"""The frame-path engine: a depth frame (or a labelled record) in, every stage's joints in mm out.

Everything that turns frames into joints runs through :class:`FramePath`: ``predict``, ``live`` and
the API (:class:`srnpose.inference.estimator.HandPoseEstimator`), ``evaluate --checkpoint``, validation during
training, the demo's test, the int8 accuracy report and the benchmarks. Its steps, each a function
with its inverse where it has one::

    frame (H, W) raw units ─ locate ─> centre (u, v, d)        Locator.locate (locator/model.py): where,
                                                               then CenterPolicy.locate_near: the centre
                                                               training crops had; without a locator
                                                               CenterPolicy.locate   (data/centering.py)
                           ─ crop ───> crop (S, S) in [-1, 1]  geometry.crop_frame   (inverse: crop_to_uvd)
                           ─ network > stage joints, crop nrm  backends.TorchRunner | OrtRunner
                           ─ recentre, crop, network again     CenterPolicy.recentre (passes - 1 times at
                                                               most: not where CenterPolicy.settled)
                           ─ decode ─> stage joints uvd, xyz   geometry.crop_to_uvd, uvd_to_xyz

Its arguments come from one place, the checkpoint: the cube, the centre rule, the passes and the
depth range (:meth:`srnpose.data.centering.CenterPolicy.from_config`), and the hand locator it carries
(:func:`srnpose.locator.model.find_locator`; the shipped model's is the shipped one). ``finder`` chooses
how the first centre is found: "auto" (default): the locator says whether there is a hand and where, and
the centre is the one training crops had there (:meth:`~srnpose.data.centering.CenterPolicy.locate_near`:
the nearest-blob search's centre where it agrees with the locator, else that search on the located hand's
neighbourhood alone, else the locator's centre); a checkpoint without a locator gets the nearest-blob
search; "locator": the locator's own centre (its estimate of the joints' centroid; the checkpoint's, else
the shipped one); "depth": the nearest-blob search alone. With several hands the locator takes ``hand``:
the nearest, or the one on the left / right of the frame as given. Frames are in the camera's own, un-mirrored view
here; :mod:`srnpose.inference.estimator` flips mirrored sensors' frames in and out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from srnpose import geometry
from srnpose.cameras import CAMERAS, Camera, get_camera
from srnpose.data.centering import CenterPolicy, joints_centroid_uvd
from srnpose.errors import UserError
from srnpose.geometry import Intrinsics, ViewFlip
from srnpose.inference.backends import OrtRunner, cores, make_ort_session, make_runner, read_metadata
from srnpose.weights import LOCATOR_DIR, RELEASE_DIR

__all__ = [
    "FINDERS",
    "HANDS",
    "FrameError",
    "FrameCamera",
    "resolve_frame_camera",
    "mirrored_camera_warning",
    "check_frame",
    "Estimate",
    "FramePath",
    "estimate_records",
]


FINDERS = ("auto", "locator", "depth")  # how the first centre is found (see the module notes)
HANDS = ("nearest", "left", "right")  # which hand the locator takes when it sees several
HANDEDNESS = ("right", "left")  # of the tracked hand: models learn right hands (geometry.ViewFlip mirrors left ones)


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

    def view(self, flip: ViewFlip) -> FrameCamera:
        """The camera of ``flip``'s view (:class:`srnpose.geometry.ViewFlip`) of this camera's frames: the
        view's intrinsics, and ``mirrored`` when the view's pixels are the frame's flipped (the engine's
        left and right stay those of the frame as given)."""
        return FrameCamera(flip.intrinsics(self.intrinsics), self.depth_unit_mm, flip.pixels, self.resolution,
                           self.name)

    def view_flip(self, width: int, left: bool = False) -> ViewFlip:
        """The :class:`~srnpose.geometry.ViewFlip` of a ``width``-px frame of this camera, for a left hand
        (read as its mirror image) or a right one."""
        return ViewFlip(int(width), self.mirrored, bool(left))


# a focal length outside this range (px) is a typo or intrinsics for another unit: depth cameras
# have 200-1500 px at their native resolutions, a few tens at thumbnail sizes
FOCAL_RANGE_PX = (10.0, 20000.0)


def resolve_frame_camera(intrinsics: Any = None, depth_unit_mm: float | None = None, mirrored: bool | None = None,
                         camera: Any = None) -> FrameCamera:
    """Combine a camera preset (name or :class:`~srnpose.cameras.Camera`) with explicit overrides.

    ``intrinsics`` may be an :class:`Intrinsics`, ``"fx,fy,cx,cy"``, a 4-sequence or a :class:`FrameCamera`.
    """
    if isinstance(intrinsics, FrameCamera):
        return intrinsics
    if camera is not None:
        cam = camera if isinstance(camera, Camera) else get_camera(str(camera))
        base = FrameCamera(cam.intrinsics, cam.depth_unit_mm, cam.mirrored, tuple(cam.resolution), cam.name)
    else:
        if intrinsics is None:
            raise UserError("give the camera: intrinsics=Intrinsics(fx, fy, cx, cy) or camera=NAME")
        base = FrameCamera(Intrinsics(1.0, 1.0, 0.0, 0.0))
    if intrinsics is not None:
        try:
            if isinstance(intrinsics, str):
                intrinsics = Intrinsics.parse(intrinsics)
            elif not isinstance(intrinsics, Intrinsics):
                values = [float(v) for v in intrinsics]
                if len(values) != 4:
                    raise ValueError(f"expected 4 values fx, fy, cx, cy, got {len(values)}")
                intrinsics = Intrinsics(*values)
        except (TypeError, ValueError) as exc:
            raise UserError(f"intrinsics: {exc}", flag="--intrinsics") from None
        for name, f in (("fx", intrinsics.fx), ("fy", intrinsics.fy)):
            if not FOCAL_RANGE_PX[0] <= abs(f) <= FOCAL_RANGE_PX[1]:
                raise UserError(f"intrinsics: {name}={f:g} px is not a depth camera's focal length "
                                f"(expected {FOCAL_RANGE_PX[0]:g} to {FOCAL_RANGE_PX[1]:g} px in magnitude)",
                                flag="--intrinsics")
        if intrinsics.fx < 0:  # it would mirror x without a word; the flip has its own setting
            raise UserError(f"intrinsics: fx={intrinsics.fx:g} px is negative: frames flipped left-right take a "
                            "positive fx and mirrored=True (--mirrored on the command line)", flag="--intrinsics")
        base = FrameCamera(intrinsics, base.depth_unit_mm, base.mirrored, None, base.name)
    unit = base.depth_unit_mm if depth_unit_mm is None else float(depth_unit_mm)
    if not (np.isfinite(unit) and unit > 0):
        raise UserError(f"depth unit must be a positive number of mm, got {depth_unit_mm!r}", flag="--depth-unit")
    mir = base.mirrored if mirrored is None else bool(mirrored)
    return FrameCamera(base.intrinsics, unit, mir, base.resolution, base.name)


_DTYPES = (np.uint16, np.float32, np.float64, np.int32, np.uint32, np.int64)


# The median valid depth of a hand-tracking frame lies within these (mm): outside, the depth unit is wrong.
PLAUSIBLE_DEPTH_MM = (50.0, 20000.0)


def depth_unit_warning(depth: np.ndarray, depth_unit_mm: float, flag: str = "depth_unit_mm") -> str | None:
    """One line when a frame's median valid depth, in mm, is out of any depth camera's range (metres
    given as raw millimetres, or a wrong unit); None when plausible or when nothing is measured.
    ``flag``: how the user sets the unit (``--depth-unit`` on the command line). Checked on every frame:
    a look at every 4th pixel first (0.1 ms) clears a frame far inside the range."""
    sample = depth[::4, ::4]
    valid = sample[sample > 0]
    if valid.size >= 256:
        median_mm = float(np.median(valid)) * float(depth_unit_mm)
        if 2.0 * PLAUSIBLE_DEPTH_MM[0] <= median_mm <= PLAUSIBLE_DEPTH_MM[1] / 2.0:
            return None
    valid = depth[depth > 0]
    if valid.size == 0:
        return None
    median_mm = float(np.median(valid)) * float(depth_unit_mm)
    setting = f"{flag} 1000" if flag.startswith("-") else f"{flag}=1000"
    if median_mm < PLAUSIBLE_DEPTH_MM[0]:
        hint = f"metres? give {setting}" if median_mm * 1000.0 >= PLAUSIBLE_DEPTH_MM[0] else \
            f"is {flag} (mm per raw unit) right?"
        return f"median depth is {median_mm:.3g} mm, too near for a depth camera: {hint}"
    if median_mm > PLAUSIBLE_DEPTH_MM[1]:
        return (f"median depth is {median_mm:.3g} mm, beyond any depth camera's range: is {flag} "
                f"{depth_unit_mm:g} (mm per raw unit) right?")
    return None


# intrinsics within this share of a mirrored camera preset's (at any resolution: scaled alike) are taken
# as that camera's
MIRRORED_MATCH = 0.03


def mirrored_camera_warning(cam: FrameCamera, flags: tuple[str, str] = ("mirrored=True", "mirrored=False")) -> str | None:
    """One line when ``cam`` is not mirrored but its intrinsics are those of a camera preset whose frames
    are (the Kinect V2's, at any resolution): read unflipped, such a frame's hand comes out as the other
    hand, often found with joints hundreds of mm off. None otherwise. ``flags``: how the user says
    mirrored and not mirrored (``--mirrored``, ``--no-mirrored`` on the command line). Callers ask only
    when mirroring was left unsaid."""
    if cam.mirrored:
        return None
    k = cam.intrinsics
    for preset in CAMERAS.values():
        p = preset.intrinsics
        if not preset.mirrored or k.fx <= 0 or p.fx <= 0:
            continue
        scale = k.fx / p.fx  # the same camera at another resolution scales every value alike
        ratios = (k.fy / p.fy, (k.cx + 0.5) / (p.cx + 0.5), (k.cy + 0.5) / (p.cy + 0.5))
        if all(abs(r / scale - 1.0) <= MIRRORED_MATCH for r in ratios):
            return (f"intrinsics {k.fx:g},{k.fy:g},{k.cx:g},{k.cy:g} are the {preset.name} camera's, whose "
                    f"frames are mirrored (flipped left-right), but mirroring is off: read unflipped, a hand "
                    f"can be found with joints hundreds of mm off; give {flags[0]} (or {flags[1]} if your "
                    "frames are not flipped)")
    return None


def check_frame(depth: Any, cam: FrameCamera) -> np.ndarray:
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
    if depth.dtype.kind == "f" and depth.size and depth.min() < 0:
        raise FrameError(f"depth has negative values (min {depth.min():g}); use 0 for no measurement")
    h, w = depth.shape
    if cam.resolution is not None and tuple(cam.resolution) != (w, h):
        raise FrameError(f"frame is {w}x{h} but camera {cam.name or ''} is {cam.resolution[0]}x{cam.resolution[1]}"
                         " (wrong camera preset?)")
    K = cam.intrinsics
    if not (0 <= K.cx < w and 0 <= K.cy < h):
        raise FrameError(f"frame is {w}x{h} but the principal point ({K.cx}, {K.cy}) lies outside it "
                         "(intrinsics for another resolution?)")
    return depth


# --------------------------------------------------------------------------- the engine


@dataclass
class Estimate:
    """One frame through the engine, in the pixels of the un-mirrored view.

    ``stage_uvd`` (K, J, 3) every stage's joints after the last pass; ``pass_xyz`` (P, J, 3) the final
    stage's joints in mm after each pass; ``center_uvd`` and ``M`` the last pass's crop. When no hand
    is found, ``hand_found`` is False and the arrays are None.
    """

    hand_found: bool
    center_uvd: np.ndarray | None = None
    M: np.ndarray | None = None
    stage_uvd: np.ndarray | None = None
    pass_xyz: np.ndarray | None = None  # (passes, J, 3) each pass's last stage, camera mm (a pass not run,
    # CenterPolicy.settled, repeats the one before)
    timings: dict[str, float] = field(default_factory=dict)  # ms: center, crop, network, decode

    def stage_xyz(self, intrinsics: Intrinsics) -> np.ndarray:
        """(K, J, 3) every stage's joints in the camera frame, mm."""
        return geometry.uvd_to_xyz(self.stage_uvd, intrinsics)


class FramePath:
    """A network (``runner``) plus the steps around it. Build with :meth:`from_checkpoint`,
    :meth:`from_onnx` or directly: ``FramePath(runner, input_size, num_stages, num_joints, policy)``."""

    def __init__(self, runner: Callable[[np.ndarray], np.ndarray], input_size: int, num_stages: int,
                 num_joints: int, policy: CenterPolicy | None = None, layout: str = "canonical",
                 model_config: Any = None, locator: Any = None, hand: str = "nearest", finder: str = "auto") -> None:
        if hand not in HANDS:
            raise UserError(f"hand {hand!r} is not one of {', '.join(HANDS)}")
        if finder not in FINDERS:
            raise UserError(f"centre finder {finder!r} is not one of {', '.join(FINDERS)}")
        self.runner = runner
        self.locator = locator  # a srnpose.locator.model.Locator, or None: the policy's nearest-blob search
        self.hand = hand
        self.finder = finder  # with a locator: "locator" crops at its centre, else the policy places it
        self.input_size = int(input_size)
        self.num_stages = int(num_stages)
        self.num_joints = int(num_joints)
        self.policy = policy or CenterPolicy()
        self.layout = str(layout)
        self.model_config = model_config

    @property
    def backend(self) -> str:
        return getattr(self.runner, "backend", "custom")

    @property
    def threads(self) -> int | None:
        """The network's intra-op threads (None: torch's own setting, or a custom runner)."""
        return getattr(self.runner, "threads", None)

    @classmethod
    def from_model(cls, model, policy: CenterPolicy, layout: str = "canonical", backend: str = "torch",
                   onnx_path: str | Path | bytes | None = None, threads: int | None = None, locator: Any = None,
                   hand: str = "nearest", finder: str = "auto") -> FramePath:
        """Wrap an :class:`~srnpose.model.SRN` (the torch model, or its ONNX export on ``onnxruntime``)."""
        cfg = model.config
        return cls(make_runner(model, backend, onnx_path, threads), cfg.input_size, cfg.num_stages,
                   cfg.num_joints, policy, layout, cfg, locator, hand, finder)

    @classmethod
    def from_checkpoint(cls, ckpt, backend: str = "torch", onnx_path: str | Path | bytes | None = None,
                        threads: int | None = None, passes: int | None = None, finder: str = "auto",
                        hand: str = "nearest") -> FramePath:
        """The engine of a loaded :class:`~srnpose.training.checkpoint.Checkpoint`, with its own policy and, by
        ``finder`` (see the module notes), the hand locator it carries."""
        policy = ckpt.policy if passes is None else ckpt.policy.with_passes(passes)
        return cls.from_model(ckpt.model, policy, ckpt.layout, backend, onnx_path, threads,
                              checkpoint_locator(ckpt.path, finder, backend), hand, finder)

    @classmethod
    def from_onnx(cls, path: str | Path, threads: int | None = None) -> FramePath:
        """An ONNX file written by ``srnpose export`` (its metadata carries the policy and layout)."""
        meta = read_metadata(path)
        policy = CenterPolicy.for_rule(meta.get("center", "depth"), meta["cube_mm"],
                                       passes=int(meta.get("passes", 1 + int(meta.get("refine", 0)))))
        return cls(OrtRunner(make_ort_session(path, threads), int(threads or cores())), meta["input_size"],
                   meta["num_stages"], meta["num_joints"], policy, meta["layout"], meta.get("model"))

    def metadata(self) -> dict:
        """What an ONNX export stores so that :meth:`from_onnx` rebuilds this engine."""
        return {"cube_mm": list(self.policy.cube_mm), "layout": self.layout, "center": self.policy.rule,
                "passes": self.policy.passes}

    # ------------------------------------------------------------------ steps

    def locate(self, view: np.ndarray, cam: FrameCamera) -> np.ndarray | None:
        """The first pass's centre in ``view``'s pixels, or None when no hand is found. With a locator
        (None when it sees no hand): the centre training crops had at the hand it found
        (:meth:`CenterPolicy.locate_near`), or its own centre (``finder="locator"``); without one the
        policy's nearest-blob search."""
        if self.locator is None:
            return self.policy.locate(view, cam.intrinsics, cam.depth_unit_mm)
        prefer = self.hand
        if cam.mirrored and prefer != "nearest":  # the user's left/right is of the frame as given
            prefer = "right" if prefer == "left" else "left"
        guess = self.locator.locate(view, cam.intrinsics, cam.depth_unit_mm, prefer=prefer)[0]
        if guess is None or self.finder == "locator":
            return guess
        return self.policy.locate_near(view, cam.intrinsics, guess, cam.depth_unit_mm)

    def crop(self, view: np.ndarray, center_uvd: np.ndarray, cam: FrameCamera) -> tuple[np.ndarray, np.ndarray]:
        """``(crop (S, S) float32 in [-1, 1], M)`` of ``view`` at ``center_uvd``."""
        return geometry.crop_frame(view, center_uvd, self.policy.cube, self.input_size, cam.intrinsics,
                                   cam.depth_unit_mm)

    def decode(self, joints_nrm: np.ndarray, M: np.ndarray, center_uvd: np.ndarray) -> np.ndarray:
        """(K, J, 3) normalized crop joints -> (K, J, 3) uvd in the view's pixels (inverse of the crop)."""
        return geometry.crop_to_uvd(joints_nrm.astype(np.float64), M, float(center_uvd[2]), self.policy.cube[2],
                                    self.input_size)

    def network(self, crops: np.ndarray) -> np.ndarray:
        """The bare network: (B, 1, S, S) float32 normalized crops -> (B, stages, J, 3)."""
        return self.runner(np.ascontiguousarray(crops, dtype=np.float32))

    # ------------------------------------------------------------------ the path

    def estimate(self, views: Sequence[np.ndarray], cams: FrameCamera | Sequence[FrameCamera],
                 centers: Sequence[np.ndarray | None] | None = None) -> list[Estimate]:
        """Every step for a batch of frames (one network call per pass for all hands found).

        ``views``: (H, W) frames in their camera's un-mirrored view, raw units. ``centers``: a first-pass
        centre per frame to use instead of the search (None entries search). Per-frame ``timings`` hold
        each frame's own centre/crop/decode time and the shared network time divided by the hands.
        """
        n = len(views)
        cams = [cams] * n if isinstance(cams, FrameCamera) else list(cams)
        centers = list(centers) if centers is not None else [None] * n
        out = [Estimate(False) for _ in range(n)]
        crops, found = [], []
        for i, (view, cam, given) in enumerate(zip(views, cams, centers)):
            t0 = time.perf_counter()
            center = self.locate(view, cam) if given is None else np.asarray(given, dtype=np.float64).reshape(3)
            t1 = time.perf_counter()
            out[i].timings["center"] = (t1 - t0) * 1e3
            if center is None:
                out[i].timings.update(crop=0.0, network=0.0, decode=0.0)
                continue
            crop, M = self.crop(view, center, cam)
            out[i].center_uvd, out[i].M = center, M
            out[i].timings["crop"] = (time.perf_counter() - t1) * 1e3
            crops.append(crop)
            found.append(i)
        if not found:
            return out
        t0 = time.perf_counter()
        stage_uvd: dict[int, np.ndarray] = {}
        passes_xyz: dict[int, list[np.ndarray]] = {i: [] for i in found}
        todo = found
        for p in range(self.policy.passes):
            if p > 0:  # recentre at the previous pass's joints' centroid and crop again, where that moves it
                crops, moved = [], []
                for i in todo:
                    center = self.policy.recentre(passes_xyz[i][-1], cams[i].intrinsics)
                    if self.policy.settled(out[i].center_uvd, center, cams[i].intrinsics):
                        continue
                    crop, M = self.crop(views[i], center, cams[i])
                    out[i].center_uvd, out[i].M = center, M
                    crops.append(crop)
                    moved.append(i)
                todo = moved
                for i in found:  # a pass not run repeats the previous one's joints
                    if i not in moved:
                        passes_xyz[i].append(passes_xyz[i][-1])
                if not todo:
                    continue
            joints_nrm = self.network(np.stack(crops)[:, None])  # (B', K, J, 3)
            for k, i in enumerate(todo):
                stage_uvd[i] = self.decode(joints_nrm[k], out[i].M, out[i].center_uvd)
                passes_xyz[i].append(geometry.uvd_to_xyz(stage_uvd[i][-1], cams[i].intrinsics))
        network_ms = (time.perf_counter() - t0) * 1e3 / len(found)
        for i in found:
            out[i].hand_found = True
            out[i].stage_uvd = stage_uvd[i]
            out[i].pass_xyz = np.stack(passes_xyz[i])
            out[i].timings.update(network=network_ms, decode=0.0)
        return out


def checkpoint_locator_folder(weights_path: str | Path, finder: str = "auto") -> Path | None:
    """The folder of the hand locator that goes with a checkpoint by ``finder``, or None (the nearest-blob
    search). "auto" takes the checkpoint's own (the shipped model's: the one shipped in the package);
    "locator" the checkpoint's, else the shipped one; without either it is a UserError naming where it was
    looked for. The one owner of that rule: :func:`checkpoint_locator` loads the folder, :func:`carry_locator`
    attaches it to a run that starts from the checkpoint."""
    from srnpose.locator.model import find_locator

    if finder not in FINDERS:
        raise UserError(f"centre finder {finder!r} is not one of {', '.join(FINDERS)}")
    if finder == "depth":
        return None
    folder = find_locator(weights_path)
    shipped_model = Path(weights_path).resolve().parent == RELEASE_DIR.resolve()
    if folder is None and (finder == "locator" or shipped_model):  # the one shipped in the package (srnpose.weights)
        folder = LOCATOR_DIR if (LOCATOR_DIR / "locator.yaml").is_file() else None
    if folder is None and finder == "locator":
        raise UserError(f"{Path(weights_path).parent}: the checkpoint carries no hand locator (attach one: "
                        "srnpose locator attach LOCATOR_DIR RUN)")
    return folder


def carry_locator(weights_path: str | Path, run_dir: str | Path) -> Path | None:
    """Attach to ``run_dir`` the hand locator its starting checkpoint ``weights_path`` finds hands with
    (:func:`checkpoint_locator_folder`, "auto": the shipped one for the shipped model), so that the run's
    checkpoints find the hand as the starting model did; nothing where the run already carries one or the
    start had none. ``srnpose adapt`` and ``srnpose train --init`` call it. Returns the folder attached."""
    from srnpose.locator.model import attach_locator, find_locator

    run_dir = Path(run_dir)
    if find_locator(run_dir / "last" / "model.safetensors") is not None:
        return None
    folder = checkpoint_locator_folder(weights_path)
    if folder is not None:
        attach_locator(folder, run_dir)
    return folder


def checkpoint_locator(weights_path: str | Path, finder: str = "auto", backend: str = "torch"):
    """The :class:`~srnpose.locator.model.Locator` a checkpoint's engine uses by ``finder``, or None (the
    nearest-blob search): the one in :func:`checkpoint_locator_folder`. The locator runs on ONNX Runtime (one
    thread) when the network does (``backend`` onnxruntime*)."""
    from srnpose.locator.model import load_locator

    folder = checkpoint_locator_folder(weights_path, finder)
    if folder is None:
        return None
    return load_locator(folder, "onnxruntime" if backend.startswith("onnxruntime") else "torch")


# --------------------------------------------------------------------------- labelled records


def estimate_records(engine: FramePath, records: Sequence, center: str = "policy",
                     batch_size: int = 64) -> list[Estimate]:
    """The engine on labelled records (:class:`~srnpose.data.records.HandRecord`), in chunks.

    ``center="policy"``: the label-free path, exactly what ``predict`` does on the same frame (a
    record's refined centre from a ``--centers`` file, when it has one, replaces the search);
    ``center="joints"``: the first crop at the labelled joints' centroid (the protocol of models
    trained on such crops; it uses the labels, and reports say so). A left hand (a synthetic record's
    ``extra["is_left"]``) is read as its mirror image: handedness is an input, as for ``predict``.
    """
    if center not in ("policy", "joints"):
        raise ValueError(f"center must be 'policy' or 'joints', got {center!r}")
    results: list[Estimate] = []
    for start in range(0, len(records), batch_size):
        chunk = records[start:start + batch_size]
        views, cams, given, flips = [], [], [], []
        for r in chunk:
            depth = r.load_depth()
            cam = FrameCamera(r.intrinsics)
            # synthetic labels say; datasets hold right hands. A left one is read as its mirror image,
            # as predict --handedness left does
            flip = cam.view_flip(depth.shape[1], left=bool(r.extra.get("is_left", False)))
            c = joints_centroid_uvd(r.joints_uvd, r.intrinsics) if center == "joints" else r.center_uvd
            views.append(flip.frame(depth))
            cams.append(cam.view(flip))
            given.append(None if c is None else flip.uvd(c))
            flips.append(flip)
        for est, flip in zip(engine.estimate(views, cams, given), flips):
            results.append(estimate_in_frame(est, flip))
    return results


def estimate_in_frame(est: Estimate, flip: ViewFlip) -> Estimate:
    """An :class:`Estimate` made on ``flip``'s view of a frame, in the frame's own pixels and the real
    world's mm (:class:`srnpose.geometry.ViewFlip`: pixels, points and the crop transform flipped back)."""
    if not est.hand_found or not (flip.pixels or flip.left):
        return est
    return Estimate(True, flip.uvd(est.center_uvd), flip.transform(est.M), flip.uvd(est.stage_uvd),
                    flip.xyz(est.pass_xyz), est.timings)
