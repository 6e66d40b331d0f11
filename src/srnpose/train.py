"""Training: run configs, presets, data sources and the loop (single process or torchrun DDP).

The recipe
----------
SRN (Ren et al., BMVC 2019) trains end to end with a smooth-L1 loss on every stage's joints
(intermediate supervision), Adam at an initial learning rate of 1e-3 and batches of 32 crops of
128x128 with online augmentation (rotation +-180 deg, scale +-20 %, translation +-10 mm). The authors'
training code is not public, so the schedule details are ours: the ``paper`` preset uses Adam
(lr 1e-3, L2 weight decay 1e-4), the learning rate divided by 10 every 10 epochs, 30 epochs, batch 32.
``--set train.optimizer=adamw`` gives decoupled weight decay instead. The smooth-L1 ``beta`` is 0.01
in normalized crop units (1.25 mm for a 250 mm cube): L1 beyond that, so outliers do not dominate.
The ``demo`` preset keeps the loss and optimizer but runs for a time budget with a cosine decay over
the steps that fit in it (estimated from the measured step time), which learns more in minutes.

Multi-process (torchrun)
------------------------
``train.batch_size`` is per process: the effective batch is ``batch_size x world_size``. The learning
rate is scaled by ``train.lr_scaling``: ``"sqrt"`` (default: lr x sqrt(world_size), the usual rule for
Adam), ``"linear"`` (lr x world_size, Goyal et al.) or ``"none"``. Every rank renders or reads
different samples: sample ``g = step * batch * world + rank * batch + i`` of one deterministic stream,
so a run is reproducible for a given world size. Rank 0 alone writes ``metrics.csv`` and checkpoints;
logged losses and errors are summed over ranks.

Exact resume
------------
Every sample is a pure function of its global index (its frame, its augmentation), the schedule a pure
function of the step; ``RUN/last/train_state.pt`` holds the optimizer, the step, epoch, sample and
time counters, the running log sums and the torch/numpy/python RNG states. ``--resume`` therefore
continues bit for bit on the same machine and world size.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from srnpose.config import MODEL_PRESETS, SRNConfig, apply_overrides, from_dict, to_dict
from srnpose.errors import UserError

__all__ = [
    "DataConfig",
    "TrainConfig",
    "RunConfig",
    "PRESETS",
    "OPTIMIZERS",
    "LR_SCHEDULES",
    "LR_SCALINGS",
    "CENTERS",
    "SYNTH_TRAIN_SEED",
    "SYNTH_VAL_SEED",
    "SYNTH_TEST_SEED",
    "get_preset",
    "build_config",
    "resolve_data",
    "lr_at",
    "SampleSource",
    "prepare_sample",
    "predict_refined",
    "refine_passes",
    "recentred",
    "train",
    "TrainResult",
    "metrics_columns",
]

OPTIMIZERS = ("adam", "adamw")
LR_SCHEDULES = ("step", "cosine", "constant")
LR_SCALINGS = ("sqrt", "linear", "none")
CENTERS = ("joints", "depth", "mixed")
# center="mixed": the share of depth-map-centred crops, and the per-axis standard deviation (mm) of the
# centroid jitter of the others. The first pass's joint centroid lands a median 7 mm (3D) from the
# true one on synthetic test frames; N(0, 6 mm) per axis gives a median of 9 mm.
MIXED_DEPTH_SHARE = 0.3
REFINE_JITTER_MM = 6.0

# Seeds of the synthetic streams (srnpose.synth.frame_seed(seed, index)): training frames come from
# SYNTH_TRAIN_SEED + train.seed, validation and test frames from their own streams, never overlapping.
SYNTH_TRAIN_SEED = 1000
SYNTH_VAL_SEED = 7
SYNTH_TEST_SEED = 20190918  # the held-out test set of `srnpose demo` and `evaluate --data synth`

METRICS_FILE = "metrics.csv"
RUN_CONFIG_FILE = "config.yaml"


# --------------------------------------------------------------------------- configs

@dataclass(frozen=True)
class DataConfig:
    """Where samples come from and how they are cropped."""

    spec: str = "synth"  # "synth" (rendered on the fly), "synth:DIR", "nyu:DIR", "icvl:DIR", ...
    # Validation source; None: held-out synthetic frames for "synth", the dataset's test split otherwise.
    val_spec: str | None = None
    # Cube edge in mm; None = the dataset's (DATASETS[name].cube_mm, 250 for synthetic hands).
    cube_mm: float | None = None
    layout: str | None = None  # joint layout of the records; None = the dataset's (resolved at start)
    # Crop centre when a record has no refined centre: "joints" = the centroid of the labelled joints
    # (the usual training protocol; augmentation then jitters it by +-trans_mm), "depth" = the
    # nearest-object centre found in the depth map (what `predict` does on unlabelled frames),
    # "mixed" = for a two-pass model (see `refine_passes`): 30 % of the crops from the depth-map centre
    # (what the first pass sees), 70 % from the joints' centroid off by N(0, 6 mm) per axis (what the
    # refinement pass sees, recentred on the first pass's joints).
    center: str = "joints"
    # Refined hand-centre files (one line per frame of the split, see srnpose.data.centers): the
    # community's files for NYU, ICVL, MSRA; frames without one fall back to `center`.
    centers: str | None = None  # for the training split
    val_centers: str | None = None  # for the validation / test split
    augment: bool = True
    rot_deg: float = 180.0  # SRN: in-plane rotation +-180 degrees
    scale: float = 0.2  # SRN: cube scale +-20 %
    trans_mm: float = 10.0  # SRN: 3D translation +-10 mm
    # Synthetic frames: resolution (W, H) of the rendered camera; None = the default camera's.
    synth_resolution: tuple[int, int] | None = None
    val_frames: int = 200  # validation frames (synthetic ones, or the first of a dataset's split)
    skip_bad: bool = False  # skip and count unreadable frames instead of stopping with an error
    workers: int = 0  # DataLoader worker processes per rank (0 = in the training process)


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer, schedule, length, logging. See the module docstring for the recipe."""

    optimizer: str = "adam"
    lr: float = 1e-3  # SRN: Adam at 1e-3
    weight_decay: float = 1e-4
    lr_schedule: str = "step"  # "step": x lr_decay every lr_step_epochs; "cosine" over the run; "constant"
    lr_step_epochs: float = 10.0
    lr_decay: float = 0.1
    lr_min_ratio: float = 0.01  # cosine floor, as a fraction of lr
    lr_scaling: str = "sqrt"  # multi-process lr rule: "sqrt", "linear", "none" (see module docstring)
    warmup_steps: int = 0  # linear warm-up from 0, useful with large effective batches
    batch_size: int = 32  # per process; SRN: 32
    # Length: the first of steps, epochs, minutes that is set (minutes also caps the others).
    steps: int | None = None
    epochs: float | None = 30.0
    minutes: float | None = None
    epoch_size: int = 100_000  # samples per epoch for the on-the-fly synthetic source
    loss_beta: float = 0.01  # smooth-L1 beta in normalized crop units
    grad_clip: float | None = None  # max gradient norm; None = no clipping
    log_every: int = 50  # steps between train rows in metrics.csv (and progress bar updates)
    val_every: int = 1000  # steps between validations (also at the end)
    ckpt_every: int = 500  # steps between RUN/last checkpoints (also at the end)
    seed: int = 0
    device: str = "auto"  # "auto", "cpu", "cuda"
    # torch intra-op threads per process; None = torch's default less one per loader process on a CPU
    threads: int | None = None


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs; saved as RUN/config.yaml and beside every checkpoint."""

    model: SRNConfig = field(default_factory=SRNConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# name -> run config. `srnpose train --preset NAME`; `srnpose demo` trains "demo".
PRESETS: dict[str, RunConfig] = {
    # The paper's model and recipe (see the module docstring).
    "paper": RunConfig(model=MODEL_PRESETS["paper"]),
    # `srnpose demo`: what learns the most in ~13 minutes on 2 CPU cores (measured with 5-minute runs
    # side by side, same test frames): 64x64 crops and a quarter-width ResNet-18 (width 16: 26.6 mm vs
    # 30.8 mm for width 32 and 34.1 mm for 32x32 crops at equal time), no online augmentation (every
    # rendered frame is new and the renderer already varies rotation, scale and position; 26.6 vs
    # 30.2 mm), frames rendered at 160x120 (4x cheaper than 320x240, the hand still spans the crop),
    # one loader process beside one torch thread (see train()), Adam at 2e-3 with a cosine decay over
    # the steps that fit the budget. No label places a test crop: the two-pass "mixed" centres (first
    # pass at the depth map's hand centre, as `predict` on a real frame; second pass at the first's
    # joints' centroid) gave 23.3 mm in 5 minutes, depth-map centres alone 25.5 mm. A model trained on
    # joint-centroid crops reached 15.5 mm on such crops but 76 mm from depth-map centres.
    "demo": RunConfig(
        model=MODEL_PRESETS["demo"],
        data=DataConfig(center="mixed", val_frames=100, workers=1, augment=False, synth_resolution=(160, 120)),
        train=TrainConfig(lr=2e-3, lr_schedule="cosine", epochs=None, minutes=12.0, batch_size=32,
                          log_every=20, val_every=250, ckpt_every=100, weight_decay=0.0)),
    # Smoke tests: a 2-stage 32x32 SRN that trains 20 steps in seconds on a CPU.
    "tiny": RunConfig(
        model=MODEL_PRESETS["tiny"],
        data=DataConfig(val_frames=8, synth_resolution=(160, 120)),
        train=TrainConfig(batch_size=4, epochs=None, steps=20, lr_step_epochs=1.0, epoch_size=400,
                          log_every=5, val_every=10, ckpt_every=10, weight_decay=0.0)),
}


def get_preset(name: str) -> RunConfig:
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def _deep_merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_config_file(path: str | Path) -> dict:
    from srnpose.config import read_yaml_mapping

    return read_yaml_mapping(path)


def build_config(preset: str = "paper", config_file: str | Path | None = None,
                 overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Preset, then ``--config FILE`` (any subset of keys), then ``--set key=value`` overrides."""
    cfg = get_preset(preset)
    if config_file is not None:
        merged = _deep_merge(to_dict(cfg), _read_config_file(config_file))
        try:
            cfg = from_dict(RunConfig, merged)
        except UserError as exc:
            raise UserError(f"{config_file}: {exc}") from None
    cfg = apply_overrides(cfg, list(overrides))
    _check(cfg)
    return cfg


def _check(cfg: RunConfig) -> None:
    t, d = cfg.train, cfg.data
    for name, value, valid in (("train.optimizer", t.optimizer, OPTIMIZERS),
                               ("train.lr_schedule", t.lr_schedule, LR_SCHEDULES),
                               ("train.lr_scaling", t.lr_scaling, LR_SCALINGS),
                               ("data.center", d.center, CENTERS)):
        if value not in valid:
            raise UserError(f"{name}: {value!r} is not one of {', '.join(valid)}")
    for name, value in (("train.batch_size", t.batch_size), ("train.log_every", t.log_every),
                        ("train.val_every", t.val_every), ("train.ckpt_every", t.ckpt_every),
                        ("train.epoch_size", t.epoch_size)):
        if value < 1:
            raise UserError(f"{name}: must be >= 1, got {value}")
    if t.steps is None and t.epochs is None and t.minutes is None:
        raise UserError("give the run a length: train.steps, train.epochs or train.minutes")
    if t.lr <= 0:
        raise UserError(f"train.lr: must be > 0, got {t.lr}")


def resolve_data(cfg: RunConfig) -> RunConfig:
    """Fill in the dataset's cube, layout and joint count (the model predicts the data's joints)."""
    from srnpose.skeleton import get_layout

    name = "synth" if cfg.data.spec == "synth" else cfg.data.spec.partition(":")[0]
    from srnpose.data.datasets import get_dataset

    info = get_dataset(name)
    layout = cfg.data.layout or info.layout
    num_joints = len(get_layout(layout).joint_names)
    data = dataclasses.replace(cfg.data, cube_mm=cfg.data.cube_mm or info.cube_mm, layout=layout)
    model = dataclasses.replace(cfg.model, num_joints=num_joints)
    return dataclasses.replace(cfg, data=data, model=model)


# --------------------------------------------------------------------------- schedule

def lr_at(step: int, cfg: TrainConfig, steps_per_epoch: float, total_steps: int | None,
          world_size: int = 1) -> float:
    """The learning rate of optimizer step ``step`` (0-based): a pure function, so resume is exact."""
    scale = {"sqrt": math.sqrt(world_size), "linear": float(world_size), "none": 1.0}[cfg.lr_scaling]
    base = cfg.lr * scale
    if cfg.lr_schedule == "step":
        lr = base * cfg.lr_decay ** math.floor(step / (cfg.lr_step_epochs * steps_per_epoch))
    elif cfg.lr_schedule == "cosine" and total_steps:
        progress = min(step / max(total_steps, 1), 1.0)
        lr = base * (cfg.lr_min_ratio + (1 - cfg.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))
    else:
        lr = base
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        lr *= (step + 1) / cfg.warmup_steps
    return lr


# --------------------------------------------------------------------------- data

def joints_centroid_uvd(joints_uvd: np.ndarray, intrinsics) -> np.ndarray:
    """The 3D centroid of the joints, as uvd (3,)."""
    from srnpose.geometry import uvd_to_xyz, xyz_to_uvd

    return xyz_to_uvd(uvd_to_xyz(np.asarray(joints_uvd, dtype=np.float64), intrinsics).mean(axis=0), intrinsics)


def refine_passes(center: str | None) -> int:
    """Refinement passes a model trained with centre rule ``center`` gets at test time: 1 for "mixed"
    (crop at the depth-map centre, predict, crop again at the predicted joints' centroid, predict)."""
    return 1 if center == "mixed" else 0


def recentred(record, joints_xyz: np.ndarray):
    """A copy of ``record`` whose crop centre is the centroid of ``joints_xyz`` (J, 3) mm: the crop of
    a refinement pass."""
    from srnpose.geometry import xyz_to_uvd

    record = copy.copy(record)
    record.center_uvd = xyz_to_uvd(np.asarray(joints_xyz, dtype=np.float64).mean(axis=0), record.intrinsics)
    return record


def prepare_sample(record, crop_cfg, center: str, rng: np.random.Generator | None) -> dict:
    """One record -> sample dict (pipeline.make_sample) with the configured centre rule; raises UserError
    for an unreadable or empty frame."""
    from srnpose.data.pipeline import make_sample

    if record.center_uvd is None and center == "mixed":
        if rng is not None and rng.random() >= MIXED_DEPTH_SHARE:  # a refinement pass's crop
            from srnpose.geometry import uvd_to_xyz

            joints_xyz = uvd_to_xyz(np.asarray(record.joints_uvd, dtype=np.float64), record.intrinsics)
            record = recentred(record, joints_xyz + rng.normal(0.0, REFINE_JITTER_MM, 3))
        center = "depth"  # a first pass's crop (and every evaluation crop)
    if record.center_uvd is None and center == "joints":
        record = copy.copy(record)
        record.center_uvd = joints_centroid_uvd(record.joints_uvd, record.intrinsics)
    elif record.center_uvd is None and center == "depth":
        # the centre `predict` would find; a labelled frame where the search finds no hand (a hand cut
        # by the image border, too few pixels) falls back to its joints' centroid instead of failing
        from srnpose.geometry import find_hand_center

        depth = record.load_depth()
        found = find_hand_center(depth, record.intrinsics)
        record = copy.copy(record)
        record.depth = depth
        record.center_uvd = found if found is not None else joints_centroid_uvd(record.joints_uvd,
                                                                                record.intrinsics)
    sample = make_sample(record, crop_cfg, rng)
    if not np.all(np.isfinite(sample["depth"])) or not np.any(sample["depth"] < 1.0):
        raise UserError(f"{record.frame_id or 'frame'}: no depth measurement inside the hand crop")
    return sample


class SampleSource:
    """Global sample index ``g`` -> training sample, deterministically (a torch map-style dataset).

    Synthetic: frame ``g`` of the training stream, augmented with ``default_rng([seed, g])``.
    Records: epoch ``g // n`` visits the records in the permutation ``default_rng([seed, epoch])``.
    A bad frame gives ``{"bad": message, "fatal": not skip_bad}``; the training loop raises the fatal ones
    as UserError (so a worker process's error reaches the user as one clean line) and counts the others.
    """

    def __init__(self, records, crop_cfg, center: str, seed: int, skip_bad: bool,
                 synth_seed: int | None = None, synth_resolution: tuple[int, int] | None = None) -> None:
        self.records = records
        self.crop_cfg = crop_cfg
        self.center = center
        self.seed = int(seed)
        self.skip_bad = skip_bad
        self.synth_seed = synth_seed
        self.synth_resolution = synth_resolution
        self._perm_epoch = -1
        self._perm: np.ndarray | None = None
        self.load_skipped = 0  # frames the loader dropped up front (skip_bad)

    def _record(self, g: int):
        if self.records is None:
            from srnpose.data.records import HandRecord
            from srnpose.synth import frame_seed, render_frame

            frame = render_frame(frame_seed(self.synth_seed, g), resolution=self.synth_resolution)
            return HandRecord(joints_uvd=frame.joints_uvd, intrinsics=frame.intrinsics,
                              depth=frame.depth_mm.astype(np.float32), frame_id=f"synth:{self.synth_seed}:{g}")
        n = len(self.records)
        epoch, pos = divmod(g, n)
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(n)
            self._perm_epoch = epoch
        return self.records[int(self._perm[pos])]

    def __getitem__(self, g: int) -> dict:
        rng = np.random.default_rng([self.seed, int(g)])
        try:
            record = self._record(int(g))
            return prepare_sample(record, self.crop_cfg, self.center, rng)
        except UserError as exc:  # reported by the training process (clean, also from a worker process)
            return {"bad": str(exc), "fatal": not self.skip_bad}


def collate_good(samples: list[dict]) -> tuple[dict | None, list[str], list[str]]:
    """Collate the good samples; return the skipped ones' messages and the fatal ones' beside them."""
    from srnpose.data.pipeline import collate

    good = [s for s in samples if "bad" not in s]
    bad = [s["bad"] for s in samples if "bad" in s and not s["fatal"]]
    fatal = [s["bad"] for s in samples if "bad" in s and s["fatal"]]
    return (collate(good) if good else None), bad, fatal


class _StepBatches:
    """Batch sampler: for each step from ``start``, the global indices this rank draws."""

    def __init__(self, start: int, stop: int, batch: int, rank: int, world: int, per_epoch: int | None) -> None:
        self.start, self.stop, self.batch, self.rank, self.world = start, stop, batch, rank, world
        self.per_epoch = per_epoch  # steps per pass over a record list (None: a synthetic stream)

    def indices(self, step: int) -> list[int]:
        if self.per_epoch is None:
            first = step * self.batch * self.world + self.rank * self.batch
        else:  # drop the remainder of each epoch, so every epoch is a full permutation prefix
            epoch, s = divmod(step, self.per_epoch)
            n = self.per_epoch * self.batch * self.world
            first = epoch * self._epoch_len + s * self.batch * self.world + self.rank * self.batch
            assert first + self.batch <= epoch * self._epoch_len + n
        return list(range(first, first + self.batch))

    _epoch_len = 0

    def __iter__(self):
        for step in range(self.start, self.stop):
            yield self.indices(step)


def _build_sources(cfg: RunConfig):
    """The training :class:`SampleSource`, its crop config, and the record count (0 for synth)."""
    from srnpose.data.pipeline import CropConfig

    d = cfg.data
    crop = CropConfig(input_size=cfg.model.input_size, cube_mm=float(d.cube_mm), augment=d.augment,
                      rot_deg=d.rot_deg, scale=d.scale, trans_mm=d.trans_mm)
    if d.spec == "synth":
        source = SampleSource(None, crop, d.center, cfg.train.seed, d.skip_bad,
                              synth_seed=SYNTH_TRAIN_SEED + cfg.train.seed, synth_resolution=d.synth_resolution)
        count = 0
    else:
        from srnpose.data.datasets import load_records

        records = load_records(d.spec, "train", centers=d.centers, skip_bad=d.skip_bad)
        if getattr(records, "skipped", 0):
            print(f"{d.spec}: skipped {records.skipped} bad frames while loading", file=sys.stderr)
        source = SampleSource(records, crop, d.center, cfg.train.seed, d.skip_bad)
        count = len(records)
        source.load_skipped = int(getattr(records, "skipped", 0))
    return source, crop, count


def load_eval_records(spec: str | None, train_spec: str, frames: int, seed: int,
                      synth_resolution: tuple[int, int] | None = None, skip_bad: bool = False,
                      split: str = "test", centers: str | None = None) -> list:
    """Records for validation or evaluation. ``spec`` None: held-out synthetic frames (stream ``seed``)
    when training on synth, else the training dataset's test split. ``frames`` > 0 limits the count
    (evenly spaced frames of a dataset split)."""
    spec = spec or ("synth" if train_spec == "synth" else train_spec)
    if spec == "synth":
        from srnpose.synth import SynthDataset

        ds = SynthDataset(frames, seed=seed, resolution=synth_resolution)
        return [ds[i] for i in range(len(ds))]
    from srnpose.data.datasets import load_records

    records = list(load_records(spec, split, centers=centers, skip_bad=skip_bad))
    if frames and len(records) > frames:
        keep = np.linspace(0, len(records) - 1, frames).round().astype(int)
        records = [records[i] for i in keep]
    return records


def crop_records(records: list, crop_cfg, center: str, skip_bad: bool) -> tuple[list[dict], list, list[str]]:
    """Deterministic (unaugmented) samples of ``records``, the records they came from, and the messages
    of the bad ones (which raise unless ``skip_bad``)."""
    crop = dataclasses.replace(crop_cfg, augment=False)
    samples, kept, bad = [], [], []
    for record in records:
        try:
            samples.append(prepare_sample(record, crop, center, None))
            kept.append(record)
        except UserError as exc:
            if not skip_bad:
                raise
            bad.append(str(exc))
    return samples, kept, bad


# --------------------------------------------------------------------------- metrics file

def metrics_columns(num_stages: int) -> list[str]:
    return (["step", "epoch", "split", "loss"] + [f"stage{s + 1}_mm" for s in range(num_stages)]
            + ["lr", "time_s", "samples", "bad_frames"])


def _truncate_metrics(path: Path, step: int, columns: list[str]) -> None:
    """Keep the header and the rows up to ``step`` (the resumed checkpoint): no duplicate, no gap."""
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    kept = [columns] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= step]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(kept)
    os.replace(tmp, path)


class _MetricsWriter:
    def __init__(self, path: Path, columns: list[str], enabled: bool) -> None:
        self.path, self.columns, self.enabled = path, columns, enabled
        if enabled and not path.exists():
            with open(path, "w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerow(columns)

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.writer(f).writerow([_fmt(row.get(c, "")) for c in self.columns])
            f.flush()
            os.fsync(f.fileno())


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


# --------------------------------------------------------------------------- evaluation helper

def predict_samples(model, samples: list[dict], batch_size: int, device: str,
                    with_uvd: bool = False):
    """Run ``model`` over samples: (N, K, J, 3) predicted xyz mm per stage and (N, J, 3) ground-truth xyz;
    with ``with_uvd`` also the (N, K, J, 3) predicted uvd, first."""
    import torch

    from srnpose.data.pipeline import nrm_to_uvd, uvd_to_xyz_batched

    preds, gts, uvds = [], [], []
    with torch.no_grad():
        for start in range(0, len(samples), batch_size):
            batch = collate_samples(samples[start:start + batch_size])
            out = model(batch["depth"].to(device))
            size = batch["depth"].shape[-1]
            center_d, cube_z = batch["center_uvd"][:, 2], batch["cube_mm"][:, 2]
            stage_uvd = torch.stack([nrm_to_uvd(j.detach().cpu().double(), batch["M"], center_d, cube_z, size)
                                     for j in out.stage_joints], dim=1)  # (B, K, J, 3)
            K = batch["intrinsics"]
            stage_xyz = torch.stack([uvd_to_xyz_batched(stage_uvd[:, s], K) for s in range(stage_uvd.shape[1])],
                                    dim=1)  # (B, K, J, 3)
            uvds.append(stage_uvd.numpy())
            preds.append(stage_xyz.numpy())
            gts.append(uvd_to_xyz_batched(batch["joints_uvd"], K).numpy())  # (B, J, 3)
    result = (np.concatenate(preds), np.concatenate(gts))
    return (np.concatenate(uvds),) + result if with_uvd else result


def predict_refined(model, records: list, samples: list[dict], crop_cfg, refine: int, batch_size: int,
                    device: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[float]]:
    """:func:`predict_samples` on ``samples`` (the crops of ``records``), then ``refine`` more passes, each
    on crops recentred at the previous pass's joints' centroid. Returns the last pass's (N, K, J, 3)
    uvd and xyz, the (N, J, 3) ground-truth xyz, and every pass's final-stage mean error (mm).
    A frame whose recentred crop holds no depth keeps its previous pass's crop."""
    crop_cfg = dataclasses.replace(crop_cfg, augment=False)
    uvd, xyz, gt = predict_samples(model, samples, batch_size, device, with_uvd=True)
    pass_mm = [float(np.linalg.norm(xyz[:, -1] - gt, axis=-1).mean())]
    for _ in range(refine):
        moved = []
        for record, sample, pred in zip(records, samples, xyz):
            try:
                moved.append(prepare_sample(recentred(record, pred[-1]), crop_cfg, "depth", None))
            except UserError:
                moved.append(sample)
        samples = moved
        uvd, xyz, gt = predict_samples(model, samples, batch_size, device, with_uvd=True)
        pass_mm.append(float(np.linalg.norm(xyz[:, -1] - gt, axis=-1).mean()))
    return uvd, xyz, gt, pass_mm


def collate_samples(samples: list[dict]) -> dict:
    from srnpose.data.pipeline import collate

    return collate(samples)


# --------------------------------------------------------------------------- the loop

@dataclass
class TrainResult:
    run_dir: Path
    step: int
    val_stage_mm: list[float] | None  # the last validation's per-stage mean error
    best_mm: float | None
    bad_frames: int
    samples_per_s: float


def _unwrap(model):
    return getattr(model, "module", model)


def _run_config_dict(cfg: RunConfig) -> dict:
    return to_dict(cfg)


def _save_state(run_dir: Path, model, cfg: RunConfig, optimizer, state: dict) -> None:
    from srnpose.checkpoint import rng_state, save_checkpoint

    train_state = dict(state)
    train_state["optimizer"] = optimizer.state_dict()
    train_state["rng"] = rng_state()
    save_checkpoint(run_dir / "last", _unwrap(model), _run_config_dict(cfg), train_state)


def _check_run_dir(run_dir: Path, resume: bool) -> None:
    from srnpose.checkpoint import resolve_checkpoint_dir

    if resume:
        if resolve_checkpoint_dir(run_dir / "last") is None:
            raise UserError(f"--resume: {run_dir} has no complete checkpoint in last/ to resume from")
    elif resolve_checkpoint_dir(run_dir / "last") is not None:
        raise UserError(f"--out {run_dir}: already holds a run; add --resume to continue it or choose another folder")


def load_resume_config(run_dir: str | Path) -> RunConfig:
    """The resolved config of an existing run (RUN/config.yaml)."""
    from srnpose.checkpoint import load_run_config, resolve_checkpoint_dir

    last = resolve_checkpoint_dir(Path(run_dir) / "last")
    if last is None:
        raise UserError(f"--resume: {run_dir} has no complete checkpoint in last/ to resume from")
    return from_dict(RunConfig, load_run_config(last))


def train(cfg: RunConfig, run_dir: str | Path, resume: bool = False, progress: bool = True,
          on_step=None) -> TrainResult:
    """Train (or resume) a run in ``run_dir``. Works alone or under torchrun (one call per rank).

    ``on_step(step, info)``: an optional callback after every optimizer step (tests, demos).
    """
    import torch

    from srnpose import distributed
    from srnpose.checkpoint import (
        load_train_state,
        load_weights,
        resolve_checkpoint_dir,
        save_checkpoint,
        set_rng_state,
    )
    from srnpose.losses import srn_loss
    from srnpose.model import SRN

    run_dir = Path(run_dir)
    _check(cfg)
    cfg = resolve_data(cfg)
    t = cfg.train
    info = distributed.setup(t.device)
    threads_before = torch.get_num_threads()
    if t.threads:
        torch.set_num_threads(int(t.threads))
    elif info.device == "cpu" and cfg.data.workers > 0:
        # leave the loader processes their cores: on 2 cores, 1 thread + 1 loader trains 1.6x faster
        # than 2 threads competing with the loader (316 vs 195 samples/s, demo preset)
        torch.set_num_threads(max(1, torch.get_num_threads() - int(cfg.data.workers)))
    try:
        if info.is_main:
            _check_run_dir(run_dir, resume)
        distributed.barrier(info)
        run_dir.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(t.seed)  # identical initial weights on every rank
        np.random.seed(t.seed)
        import random

        random.seed(t.seed)
        model = SRN.from_config(cfg.model).to(info.device)
        opt_cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
        optimizer = opt_cls(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)

        source, crop, record_count = _build_sources(cfg)
        per_step = t.batch_size * info.world_size
        if record_count:
            per_epoch_steps = record_count // per_step
            if per_epoch_steps < 1:
                raise UserError(f"{cfg.data.spec}: {record_count} frames is fewer than one batch "
                                f"({t.batch_size} x {info.world_size} processes)")
            steps_per_epoch = float(per_epoch_steps)
        else:
            per_epoch_steps = None
            steps_per_epoch = t.epoch_size / per_step
        total_steps = t.steps if t.steps is not None else (
            math.ceil(t.epochs * steps_per_epoch) if t.epochs is not None else None)
        budget_s = t.minutes * 60.0 if t.minutes is not None else None

        state = {"step": 0, "epoch": 0, "samples": 0, "time_s": 0.0, "bad_frames": 0,
                 "best_mm": float("inf"), "best_step": -1, "total_steps": total_steps,
                 "acc": [0.0] * (2 + cfg.model.num_stages), "acc_bad": 0, "world_size": info.world_size}
        columns = metrics_columns(cfg.model.num_stages)
        metrics_path = run_dir / METRICS_FILE
        if resume:
            last = resolve_checkpoint_dir(run_dir / "last")
            saved = load_train_state(last / "train_state.pt")
            from srnpose.checkpoint import load_state_dict_file

            load_weights(_unwrap(model), load_state_dict_file(last / "model.safetensors"), last / "model.safetensors")
            optimizer.load_state_dict(saved["optimizer"])
            set_rng_state(saved["rng"])
            if int(saved.get("world_size", 1)) != info.world_size and info.is_main:
                print(f"warning: resuming a {saved.get('world_size')}-process run with {info.world_size} "
                      "processes: the data order changes from here on", file=sys.stderr)
            for key in state:
                if key in saved and key != "world_size":
                    state[key] = saved[key]
            state["acc"] = [float(v) for v in state["acc"]]
            if t.steps is None and t.epochs is None:  # a time budget: keep the estimated length
                total_steps = state["total_steps"]
            state["total_steps"] = total_steps
            if info.is_main:
                _truncate_metrics(metrics_path, int(state["step"]), columns)
        if info.is_main:
            from srnpose.checkpoint import write_yaml_atomic

            write_yaml_atomic(_run_config_dict(cfg), run_dir / RUN_CONFIG_FILE)
        metrics = _MetricsWriter(metrics_path, columns, info.is_main)

        if info.distributed:
            from torch.nn.parallel import DistributedDataParallel

            model = DistributedDataParallel(model, device_ids=[info.local_rank] if info.device != "cpu" else None)

        # Validation: a fixed, unaugmented set, cropped once; each rank evaluates every world-th sample.
        val_records = load_eval_records(cfg.data.val_spec, cfg.data.spec, cfg.data.val_frames, SYNTH_VAL_SEED,
                                        cfg.data.synth_resolution, cfg.data.skip_bad,
                                        centers=cfg.data.val_centers)
        val_samples, val_records, _ = crop_records(val_records[info.rank::info.world_size], crop,
                                                   cfg.data.center, cfg.data.skip_bad)

        start_step = int(state["step"])
        time_mode = t.steps is None and t.epochs is None  # a --minutes run: only the clock stops it
        stop_step = total_steps if (total_steps is not None and not time_mode) else sys.maxsize
        batches = _StepBatches(start_step, stop_step, t.batch_size, info.rank, info.world_size, per_epoch_steps)
        if per_epoch_steps is not None:
            batches._epoch_len = record_count
        loader = torch.utils.data.DataLoader(source, batch_sampler=batches, num_workers=cfg.data.workers,
                                             collate_fn=collate_good, persistent_workers=False)

        bar = None
        if progress and info.is_main:
            from tqdm import tqdm

            bar = tqdm(total=total_steps, initial=start_step, desc="train", unit="step", dynamic_ncols=True,
                       file=sys.stderr)
        last_val: list[float] | None = None
        step_times: list[float] = []
        run_start = time.perf_counter()
        time_base = float(state["time_s"])
        saved_step = start_step

        def elapsed() -> float:
            return time_base + time.perf_counter() - run_start

        def validate(step: int) -> list[float]:
            model.eval()
            sums = [0.0] * (2 + cfg.model.num_stages)
            if val_samples:
                _, pred, gt, _ = predict_refined(_unwrap(model), val_records, val_samples, crop,
                                                 refine_passes(cfg.data.center), max(t.batch_size, 16),
                                                 info.device)
                err = np.linalg.norm(pred - gt[:, None], axis=-1)  # (N, K, J)
                sums = [float(len(val_samples)), 0.0] + [float(e) for e in err.mean(axis=2).sum(axis=0)]
            model.train()
            sums = distributed.all_reduce_sum(sums, info)
            n = max(sums[0], 1.0)
            return [s / n for s in sums[2:]]

        def on_sigterm(signum, frame):  # turn a polite kill into an exception: last/ gets saved
            raise KeyboardInterrupt(f"signal {signum}")

        previous_handler = None
        if info.is_main and threading_is_main():
            previous_handler = signal.signal(signal.SIGTERM, on_sigterm)

        step = start_step
        model.train()
        try:
            t0 = time.perf_counter()
            for batch, bad, fatal in loader:
                if fatal:
                    raise UserError(f"{fatal[0]} (pass --skip-bad to skip and count bad frames)")
                state["bad_frames"] += len(bad)
                state["acc_bad"] += len(bad)
                for message in bad:
                    if bar is not None:
                        bar.write(f"skipping bad frame: {message}")
                lr = lr_at(step, t, steps_per_epoch, total_steps, info.world_size)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                if batch is None:  # a batch of bad frames only: nothing to learn from
                    batch_n = 0
                    loss_v, stage_mm = 0.0, [0.0] * cfg.model.num_stages
                    if info.distributed:  # the other ranks step: join them with a zero gradient
                        size = cfg.model.input_size
                        out = model(torch.ones(1, 1, size, size, device=info.device))
                        optimizer.zero_grad(set_to_none=True)
                        (out.stage_joints[-1].sum() * 0.0).backward()
                        optimizer.step()
                else:
                    depth = batch["depth"].to(info.device)
                    target = batch["joints_nrm"].to(info.device)
                    out = model(depth)
                    loss, _ = srn_loss(out.stage_joints, target, t.loss_beta)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if t.grad_clip:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
                    optimizer.step()
                    batch_n = int(depth.shape[0])
                    with torch.no_grad():
                        from srnpose.data.pipeline import nrm_to_xyz, uvd_to_xyz_batched

                        gt = uvd_to_xyz_batched(batch["joints_uvd"], batch["intrinsics"])  # (B, J, 3)
                        stage_mm = [float((nrm_to_xyz(j.detach().cpu().double(), batch, depth.shape[-1]) - gt)
                                          .norm(dim=-1).mean()) for j in out.stage_joints]
                    loss_v = float(loss.detach())
                step += 1
                state["step"] = step
                state["samples"] += per_step
                state["epoch"] = int(step // steps_per_epoch)
                acc = state["acc"]
                acc[0] += batch_n
                acc[1] += loss_v * batch_n
                for s, mm in enumerate(stage_mm):
                    acc[2 + s] += mm * batch_n
                now = time.perf_counter()
                step_times.append(now - t0)  # the whole iteration, data loading included
                t0 = now
                done = len(step_times)
                if time_mode and (
                        done in (10, 50) or (done % 100 == 0 and total_steps and step < 0.9 * total_steps)):
                    # a time budget: estimate how many steps fit, for the cosine schedule
                    per = float(np.median(step_times[2:][-200:]))
                    remaining = budget_s - elapsed()
                    estimate = step + max(int(remaining / per), 1)
                    # every rank must use the same schedule: average the ranks' estimates
                    total_steps = int(distributed.all_reduce_sum([estimate], info)[0] / info.world_size)
                    state["total_steps"] = total_steps
                    if bar is not None:
                        bar.total = total_steps
                        bar.refresh()

                if step % t.log_every == 0:
                    sums = distributed.all_reduce_sum(acc + [state["acc_bad"]], info)
                    n = max(sums[0], 1.0)
                    row = {"step": step, "epoch": state["epoch"], "split": "train", "loss": sums[1] / n,
                           "lr": lr, "time_s": elapsed(), "samples": state["samples"],
                           "bad_frames": int(sums[-1])}
                    for s in range(cfg.model.num_stages):
                        row[f"stage{s + 1}_mm"] = sums[2 + s] / n
                    metrics.write(row)
                    if bar is not None:
                        bar.set_postfix_str(f"loss {row['loss']:.4f} | mm " + " ".join(
                            f"{row[f'stage{s + 1}_mm']:.1f}" for s in range(cfg.model.num_stages)))
                    state["acc"] = [0.0] * len(acc)
                    state["acc_bad"] = 0
                if bar is not None:
                    bar.update(1)

                out_of_time = budget_s is not None and elapsed() >= budget_s
                if budget_s is not None and info.distributed:  # stop together: any rank out of time
                    out_of_time = distributed.all_reduce_sum([float(out_of_time)], info)[0] > 0
                finished = (not time_mode and total_steps is not None and step >= total_steps) or out_of_time
                if step % t.val_every == 0 or finished:
                    last_val = validate(step)
                    row = {"step": step, "epoch": state["epoch"], "split": "val", "loss": "",
                           "lr": lr, "time_s": elapsed(), "samples": state["samples"],
                           "bad_frames": state["bad_frames"]}
                    for s, mm in enumerate(last_val):
                        row[f"stage{s + 1}_mm"] = mm
                    metrics.write(row)
                    if bar is not None:
                        bar.write(f"step {step}: validation mean error per stage (mm): "
                                  + " ".join(f"{mm:.2f}" for mm in last_val))
                    if last_val[-1] < state["best_mm"]:
                        state["best_mm"], state["best_step"] = float(last_val[-1]), step
                        if info.is_main:
                            save_checkpoint(run_dir / "best", _unwrap(model), _run_config_dict(cfg))
                if step % t.ckpt_every == 0 or finished:
                    state["time_s"] = elapsed()
                    if info.is_main:
                        _save_state(run_dir, model, cfg, optimizer, state)
                    saved_step = step
                if on_step is not None:
                    on_step(step, info)
                if finished:
                    break
        except BaseException:
            # Never lose a run: save what we have (rank 0), then let the error through.
            if info.is_main and step > saved_step:
                state["time_s"] = elapsed()
                try:
                    _save_state(run_dir, model, cfg, optimizer, state)
                    print(f"saved {run_dir / 'last'} at step {step} before stopping", file=sys.stderr)
                except Exception as exc:  # noqa: BLE001 - report, but raise the original error
                    print(f"could not save {run_dir / 'last'}: {exc}", file=sys.stderr)
            raise
        finally:
            if bar is not None:
                bar.close()
            if previous_handler is not None:
                signal.signal(signal.SIGTERM, previous_handler)

        dump = os.environ.get("SRNPOSE_TEST_DUMP_WEIGHTS")
        if dump:  # test hook: every rank writes its parameters, to check that DDP kept them identical
            from safetensors.torch import save_file

            Path(dump).mkdir(parents=True, exist_ok=True)
            save_file({k: v.detach().cpu().contiguous() for k, v in _unwrap(model).named_parameters()},
                      str(Path(dump) / f"rank{info.rank}.safetensors"))
        distributed.barrier(info)
        total_time = max(time.perf_counter() - run_start, 1e-9)
        done = step - start_step
        return TrainResult(run_dir=run_dir, step=step, val_stage_mm=last_val,
                           best_mm=None if not math.isfinite(state["best_mm"]) else float(state["best_mm"]),
                           bad_frames=int(state["bad_frames"]) + getattr(source, "load_skipped", 0),
                           samples_per_s=done * per_step / total_time)
    finally:
        torch.set_num_threads(threads_before)
        distributed.teardown(info)


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
