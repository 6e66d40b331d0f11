"""Self-supervised adaptation to a user's camera: fine-tune a model on unlabelled depth frames.

    adapt(["frames/"], "kinect2", "runs/k2_adapted", minutes=3)        # from the shipped model
    adapt(["frames/"], "kinect2", "runs/k2_adapted", resume=True)      # continue it

The labels come from the fit of the articulated hand to the depth (:mod:`srnpose.fitting`), which the
network's own joints initialise: every ``refresh_every`` steps the model being trained runs its frame path
on each user frame (the starting checkpoint's hand finder and crops), the hand is fitted to the frame's
depth (:func:`srnpose.fitting.fit.fit_frames`), and the ``keep`` share of the frames with the lowest fitting
energy become training records: the fitted joints as targets, the crop at their centroid, augmented. Each
batch mixes ``share`` of such crops with the synthetic stream the model was trained on, so the model does
not drift from what it knew (validation stays on the run's held-out synthetic frames).

The run folder is ``train``'s (:func:`srnpose.training.loop.train`: ``config.yaml``, ``metrics.csv``,
checksummed ``last/`` and ``best/``, a lock, ``--resume``) plus ``adapt.yaml`` (the frames, camera, starting
checkpoint and mixing settings: a resumed run reads them) and ``adapt.jsonl`` (one line per refresh of the
labels: the frames' mean fitting energy at the network's joints, after the fit, and their gap in mm).
A resumed run relabels its frames with the restored weights, so it is not bit-exact with one never stopped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srnpose.config import from_dict, read_yaml_mapping, save_yaml
from srnpose.data.centering import joints_centroid_uvd
from srnpose.data.records import HandRecord
from srnpose.data.sampling import prepare_sample
from srnpose.errors import UserError
from srnpose.geometry import xyz_to_uvd
from srnpose.inference.sensors import depth_pngs
from srnpose.training.log import JsonLinesWriter
from srnpose.training.run_config import RunConfig, check

__all__ = ["AdaptConfig", "AdaptResult", "PseudoLabels", "MixedSource", "adapt", "describe", "list_frames",
           "ADAPT_FILE", "ADAPT_LOG"]

ADAPT_FILE = "adapt.yaml"
ADAPT_LOG = "adapt.jsonl"


@dataclass(frozen=True)
class AdaptConfig:
    """What an adaptation run adapts to and how; saved as ``RUN/adapt.yaml``."""

    frames: tuple[str, ...] = ()  # the user's depth PNGs (absolute paths)
    camera: str = "kinect2"  # key of srnpose.cameras.CAMERAS
    checkpoint: str = ""  # the starting weights file
    share: float = 0.5  # of every batch: crops of the user's frames (the rest: the synthetic stream)
    refresh_every: int = 50  # steps between relabellings of the frames by the model being trained
    keep: float = 0.75  # the share of the frames with a hand, lowest fitting energy first, trained on
    lr: float = 5e-4  # a quarter of the shipped recipe's: fine-tuning. The shipped model on 4 rendered frames,
    # batch 8: 30 steps at 5e-4 took their fitting energy at the network's joints from 64.7 to 46.9; 20 at 2e-4
    # to 63.8; 20 at 1e-3 (share 0.75) to 61.6 (synthetic error 15.6 against 14.2 mm at 5e-4)


@dataclass
class AdaptResult:
    run_dir: Path
    step: int
    val_stage_mm: list[float] | None  # synthetic validation error per stage at the end
    before: dict  # PseudoLabels.refresh statistics of the starting model on the frames
    after: dict  # ... of the adapted model (RUN/last)


def list_frames(inputs: list[str | Path]) -> list[Path]:
    """The depth PNGs named by ``inputs`` (files, or folders of ``*.png``), in order; UserError if none."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += depth_pngs(path)  # as predict and live list a folder: hidden files are not frames
        elif path.suffix.lower() == ".png" and path.is_file():
            found.append(path)
        elif not path.exists():
            raise UserError(f"{path}: no such file or folder")
        else:
            raise UserError(f"{path}: not a depth .png or a folder of them")
    if not found:
        raise UserError(f"{', '.join(str(i) for i in inputs) or 'FRAMES'}: no depth frames (.png) to adapt to")
    return found


def _read_views(paths: list[Path], camera) -> list[np.ndarray]:
    """The frames as the camera's un-mirrored views in mm (float32); UserError on a size or unit mismatch."""
    from srnpose.data.depth_io import read_png16
    from srnpose.fitting.results import frame_view_mm

    width, height = camera.resolution
    views = []
    for path in paths:
        raw = read_png16(path)
        if raw.shape != (height, width):
            raise UserError(f"{path}: a {raw.shape[1]}x{raw.shape[0]} frame, but camera {camera.name} gives "
                            f"{width}x{height}: choose the camera that took these frames (--camera)")
        views.append(frame_view_mm(raw, camera.depth_unit_mm, camera.mirrored).astype(np.float32))
    return views


class PseudoLabels:
    """The user's frames and their current labels: the hand fitted to each frame's depth from the model's joints."""

    def __init__(self, views: list[np.ndarray], names: list[str], camera, policy, locator, keep: float) -> None:
        self.views, self.names, self.camera = views, names, camera
        self.policy, self.locator, self.keep = policy, locator, float(keep)
        self.records: list[HandRecord] = []

    def measure(self, net) -> tuple[dict, Any, list[int]]:
        """(statistics, the FitResult, the indices of the frames with a hand) of ``net`` on the frames."""
        from srnpose.fitting.fit import FitConfig, fit_frames
        from srnpose.inference.backends import TorchRunner
        from srnpose.inference.frame_path import FrameCamera, FramePath

        cfg = net.config
        engine = FramePath(TorchRunner(net), cfg.input_size, cfg.num_stages, cfg.num_joints, self.policy,
                           "canonical", cfg, self.locator)
        cam = FrameCamera(self.camera.intrinsics)
        estimates = engine.estimate(self.views, [cam] * len(self.views))
        found = [i for i, e in enumerate(estimates) if e.hand_found]
        stats = {"frames": len(self.views), "hands": len(found)}
        if not found:
            return stats, None, found
        joints = np.stack([np.asarray(estimates[i].pass_xyz[-1], dtype=np.float64) for i in found])
        fit = fit_frames([self.views[i].astype(np.float64) for i in found], self.camera.intrinsics, joints,
                         FitConfig())
        stats.update(energy_network=float(np.mean(fit.energy_before)), energy_fit=float(np.mean(fit.energy_after)),
                     gap_mm=float(np.linalg.norm(fit.joints_xyz - joints, axis=-1).mean()))
        return stats, fit, found

    def refresh(self, net) -> dict:
        """Relabel the frames with ``net`` (kept: the ``keep`` share with the lowest fitted energy)."""
        stats, fit, found = self.measure(net)
        records = []
        if fit is not None:
            order = np.argsort(fit.energy_after)[:max(1, int(round(self.keep * len(found))))]
            K = self.camera.intrinsics
            for k in sorted(int(o) for o in order):
                i = found[k]
                uvd = xyz_to_uvd(fit.joints_xyz[k], K)  # (21, 3)
                records.append(HandRecord(joints_uvd=uvd, intrinsics=K, depth=self.views[i],
                                          center_uvd=joints_centroid_uvd(uvd, K), frame_id=self.names[i]))
        self.records = records
        stats["kept"] = len(records)
        return stats


class MixedSource:
    """The run's synthetic :class:`~srnpose.data.sampling.SampleSource` with ``share`` of every batch (its first
    positions) replaced by augmented crops of the pseudo-labelled frames; deterministic in the sample index."""

    def __init__(self, base, labels: PseudoLabels, batch_size: int, share: float, seed: int) -> None:
        self.base, self.labels, self.batch, self.seed = base, labels, int(batch_size), int(seed)
        self.real = min(self.batch, max(1, int(round(share * self.batch))))
        self.crop_cfg = dataclasses.replace(base.crop_cfg, augment=True)
        self.load_skipped = 0

    def __getitem__(self, g: int) -> dict:
        g = int(g)
        step, pos = divmod(g, self.batch)
        records = self.labels.records
        if pos >= self.real or not records:
            return self.base[g]
        record = records[(step * self.real + pos) % len(records)]
        try:
            return prepare_sample(record, self.crop_cfg, self.base.policy, np.random.default_rng([self.seed, g, 1]))
        except UserError as exc:
            return {"bad": str(exc), "fatal": False}


def _start_config(ckpt, acfg: AdaptConfig, minutes: float | None, steps: int | None, overrides) -> RunConfig:
    from srnpose.config import apply_overrides

    raw = dict(ckpt.config)
    if isinstance(raw.get("data"), dict):
        raw["data"] = dict(raw["data"], workers=0)  # the labels are refreshed in this process
        raw["data"].setdefault("synth_engine", "v1")
    cfg = from_dict(RunConfig, raw)
    t = cfg.train
    train = dataclasses.replace(t, lr=acfg.lr, lr_schedule="cosine", warmup_steps=0, epochs=None, steps=steps,
                                minutes=None if steps is not None else (minutes or 3.0))
    cfg = apply_overrides(dataclasses.replace(cfg, train=train), list(overrides))
    check(cfg)
    if cfg.model.num_joints != 21 or (cfg.data.layout or "canonical") != "canonical":
        raise UserError(f"{ckpt.path}: adapt fits the 21-joint canonical hand; this model predicts "
                        f"{cfg.model.num_joints} joints ({cfg.data.layout})")
    return cfg


def adapt(frames: list[str | Path], camera: str | None, out: str | Path, checkpoint: str | Path | None = None,
          minutes: float | None = None, steps: int | None = None, resume: bool = False, progress: bool = True,
          overrides: list[str] | tuple[str, ...] = (), settings: AdaptConfig | None = None) -> AdaptResult:
    """Fine-tune ``checkpoint`` (None: the shipped model) on ``frames`` of ``camera`` into the run ``out``
    (see the module notes); ``resume=True`` continues ``out`` from its ``last/`` (its saved frames, camera and
    checkpoint; then ``frames`` and ``camera`` may be omitted). ``minutes`` (default 3) or ``steps``: the length."""
    from srnpose.cameras import get_camera
    from srnpose.inference.frame_path import carry_locator, checkpoint_locator
    from srnpose.training.checkpoint import load_checkpoint, resolve_checkpoint_dir
    from srnpose.training.loop import train
    from srnpose.training.run_config import load_resume_config
    from srnpose.weights import RELEASE_DIR

    run_dir = Path(out)
    resuming = resume and resolve_checkpoint_dir(run_dir / "last") is not None
    if resuming:
        if not (run_dir / ADAPT_FILE).is_file():
            raise UserError(f"--resume: {run_dir} holds no {ADAPT_FILE}: not an adapt run")
        acfg = from_dict(AdaptConfig, read_yaml_mapping(run_dir / ADAPT_FILE))
        cfg = load_resume_config(run_dir)
        paths = [Path(p) for p in acfg.frames]
    else:
        if camera is None:
            raise UserError("give --camera NAME: the camera that took the frames")
        paths = list_frames(list(frames))
        ckpt = load_checkpoint(checkpoint if checkpoint is not None else RELEASE_DIR)
        acfg = dataclasses.replace(settings or AdaptConfig(), frames=tuple(str(p.resolve()) for p in paths),
                                   camera=camera, checkpoint=str(Path(ckpt.path).resolve()))
        cfg = _start_config(ckpt, acfg, minutes, steps, overrides)
    cam = get_camera(acfg.camera)
    views = _read_views(paths, cam)
    from srnpose.data.centering import CenterPolicy

    labels = PseudoLabels(views, [p.name for p in paths], cam, CenterPolicy.from_config(cfg),
                          checkpoint_locator(acfg.checkpoint), acfg.keep)
    before: dict = {}
    log: JsonLinesWriter | None = None

    def wrap_source(source, net, resume_step):  # inside the run's lock, with the starting (or restored) weights
        nonlocal log
        save_yaml(acfg, run_dir / ADAPT_FILE)
        # adapt.jsonl as train keeps metrics.csv: afresh, or on resume the lines up to the restored step
        log = JsonLinesWriter(run_dir / ADAPT_LOG, resume_step)
        stats = labels.refresh(net)
        before.update(stats)
        log.write({"step": 0 if not resuming else -1, **stats})
        if not labels.records:
            raise UserError(f"no hand found in any of the {len(views)} frames: nothing to adapt to "
                            f"(is --camera {acfg.camera} the camera that took them?)")
        return MixedSource(source, labels, cfg.train.batch_size, acfg.share, cfg.train.seed)

    def on_step(step, info, net):
        if step % acfg.refresh_every == 0:
            log.write({"step": step, **labels.refresh(net)})

    result = train(cfg, run_dir, resume=resume, progress=progress, on_step=on_step,
                   init_weights=None if resuming else acfg.checkpoint, wrap_source=wrap_source)
    carry_locator(acfg.checkpoint, run_dir)  # its checkpoints find the hand as the starting model did
    after, _, _ = labels.measure(load_checkpoint(run_dir / "last").model)
    log.write({"step": result.step, **after, "final": True})
    return AdaptResult(run_dir, result.step, result.val_stage_mm, before, after)


def describe(stats: dict) -> str:
    """One line of :meth:`PseudoLabels.refresh`'s statistics."""
    if "energy_network" not in stats:
        return f"hand found in {stats.get('hands', 0)} of {stats.get('frames', 0)} frames"
    return (f"hand in {stats['hands']}/{stats['frames']} frames, fitting energy at the network's joints "
            f"{stats['energy_network']:.1f} (after the fit {stats['energy_fit']:.1f}), network-to-fit "
            f"{stats['gap_mm']:.1f} mm")

