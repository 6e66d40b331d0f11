"""Run configs: what a training run is (model, data, training recipe), its presets, and its checks.

A run config is three frozen dataclasses, saved as ``RUN/config.yaml`` and beside every checkpoint:
``model`` (:class:`srnpose.config.SRNConfig`), ``data`` (:class:`DataConfig`) and ``train``
(:class:`TrainConfig`). The types are the source of truth: a ``Literal`` field's choices are the valid
values (checked by :func:`check`, listed by the CLI), and the presets below are the only table of
starting points (``srnpose train --preset NAME``, ``srnpose demo``).

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
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from srnpose.config import (
    MODEL_PRESETS,
    SRNConfig,
    apply_overrides,
    from_dict,
    read_yaml_mapping,
    to_dict,
    validate,
)
from srnpose.data.centering import CenterRule
from srnpose.data.datasets import get_dataset
from srnpose.errors import UserError
from srnpose.hand.skeleton import get_layout
from srnpose.synth.engines import SynthEngine
from srnpose.training.checkpoint import load_run_config, resolve_checkpoint_dir

__all__ = [
    "DataConfig",
    "TrainConfig",
    "RunConfig",
    "PRESETS",
    "OPTIMIZERS",
    "LR_SCHEDULES",
    "LR_SCALINGS",
    "DEVICES",
    "SYNTH_TRAIN_SEED",
    "SYNTH_VAL_SEED",
    "SYNTH_TEST_SEED",
    "get_preset",
    "build_config",
    "check",
    "resolve_data",
    "load_resume_config",
]

Optimizer = Literal["adam", "adamw"]
LRSchedule = Literal["step", "cosine", "constant"]
LRScaling = Literal["sqrt", "linear", "none"]
Device = Literal["auto", "cpu", "cuda"]
OPTIMIZERS = typing.get_args(Optimizer)
LR_SCHEDULES = typing.get_args(LRSchedule)
LR_SCALINGS = typing.get_args(LRScaling)
DEVICES = typing.get_args(Device)

# Seeds of the synthetic streams (srnpose.synth.frame_seed(seed, index)): training frames come from
# SYNTH_TRAIN_SEED + train.seed, validation and test frames from their own streams, never overlapping.
SYNTH_TRAIN_SEED = 1000
SYNTH_VAL_SEED = 7
SYNTH_TEST_SEED = 20190918  # the held-out test set of `srnpose demo` and `evaluate --data synth`


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
    center: CenterRule = "joints"
    # Refined hand-centre files (one line per frame of the split, see srnpose.data.center_files): the
    # community's files for NYU, ICVL, MSRA; frames without one fall back to `center`.
    centers: str | None = None  # for the training split
    val_centers: str | None = None  # for the validation / test split
    augment: bool = True
    rot_deg: float = 180.0  # SRN: in-plane rotation +-180 degrees
    scale: float = 0.2  # SRN: cube scale +-20 %
    trans_mm: float = 10.0  # SRN: 3D translation +-10 mm
    # Synthetic frames: the engine (srnpose.synth.engines: "v1" close-range scenes, hand-made poses, one
    # generic sensor; "v2" third/first-person, hand-object and close-range scenes, real FPHA poses,
    # per-family sensor profiles, right hands only), and the resolution (W, H) of the rendered camera
    # (None = the default's). v2 by default: its models beat v1's on the real frames (docs/benchmarks.md, The engines side by side).
    # "v3" = v2 + turned hands and named gestures (issue 22), not yet trained on, so not the default.
    synth_engine: SynthEngine = "v2"
    # Engine v3's scene-family weights for the training frames (None: engines.V3_WEIGHTS["scenes"]), e.g.
    # --set 'data.synth_scenes={third_person: 0.24, first_person: 0.2, hand_object: 0.28, close_range: 0.12,
    # turned: 0.16}' (measured against the engine's mix: docs/benchmarks.md, "Engine v3's training mix of
    # scene families"); validation and test frames keep the engine's.
    synth_scenes: dict[str, float] | None = None
    synth_resolution: tuple[int, int] | None = None
    val_frames: int = 200  # validation frames (synthetic ones, or the first of a dataset's split)
    skip_bad: bool = False  # skip and count unreadable frames instead of stopping with an error
    workers: int = 0  # DataLoader worker processes per rank (0 = in the training process)


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer, schedule, length, logging. See the module docstring for the recipe."""

    optimizer: Optimizer = "adam"
    lr: float = 1e-3  # SRN: Adam at 1e-3
    weight_decay: float = 1e-4
    lr_schedule: LRSchedule = "step"  # "step": x lr_decay every lr_step_epochs; "cosine" over the run; "constant"
    lr_step_epochs: float = 10.0
    lr_decay: float = 0.1
    lr_min_ratio: float = 0.01  # cosine floor, as a fraction of lr
    lr_scaling: LRScaling = "sqrt"  # multi-process lr rule: "sqrt", "linear", "none" (see module docstring)
    warmup_steps: int = 0  # linear warm-up from 0, useful with large effective batches
    batch_size: int = 32  # per process; SRN: 32
    # Length: the first of steps, epochs, minutes that is set (minutes also caps the others).
    steps: int | None = None
    epochs: float | None = 30.0
    minutes: float | None = None
    epoch_size: int = 100_000  # samples per epoch for the on-the-fly synthetic source
    loss_beta: float = 0.01  # smooth-L1 beta in normalized crop units
    # Weight of a detection stage's field loss (smooth-L1 on its heatmaps and unit vectors against the
    # labels' fields) beside its joint loss; regression stages have none. 1: one field element weighs
    # as one joint coordinate (both are O(1) and averaged). 0 = joints only. Measured on the demo preset
    # (benchmarks/ablation.py, 540 steps, two seeds): 1 holds the fields near the labels' but costs 0.8-1.3 mm
    # of final-stage error against 0; it is a supervision choice, not an accuracy gain at short budgets.
    field_loss_weight: float = 1.0
    grad_clip: float | None = None  # max gradient norm; None = no clipping
    log_every: int = 50  # steps between train rows in metrics.csv (and progress bar updates)
    val_every: int = 1000  # steps between validations (also at the end)
    ckpt_every: int = 500  # steps between RUN/last checkpoints (also at the end)
    seed: int = 0
    device: Device = "auto"  # "auto", "cpu", "cuda"
    # torch intra-op threads per process; None = torch's default less one per loader process on a CPU
    threads: int | None = None
    # How the step runs, not what it computes (benchmarks/bench_train.py --variants, --accuracy: the release
    # step's compute 1.2-1.27x faster on a 2-core AMD EPYC, the loss after 200 steps from one seed .1479
    # plain, .1474 channels_last, .1483 fused Adam): the weights and activations of the convolutions in
    # channels-last memory format, and Adam's single fused kernel instead of a loop over the tensors.
    channels_last: bool = True
    fused_optimizer: bool = True


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
    # The shipped model's second step: release-base grown by a second stage (`--init RUN`, the new stage
    # a copy of the trained one reading the first's offset maps too), on engine v3 (hands at work, turned
    # hands, a second hand) at half the learning rate, 90 minutes. Without --init it trains from scratch.
    "release": RunConfig(
        model=MODEL_PRESETS["release"],
        data=DataConfig(center="mixed", val_frames=200, workers=1, augment=False, synth_resolution=(160, 120),
                        synth_engine="v3"),
        train=TrainConfig(lr=1e-3, lr_schedule="cosine", epochs=None, minutes=90.0, batch_size=32,
                          log_every=20, val_every=500, ckpt_every=100, weight_decay=0.0)),
    # The shipped model's first step (MODEL_CARD.md): one stage, the demo's recipe on engine v2 for as
    # long as it is given (`--minutes`, default 50; `--resume --extend --minutes M` goes on), validated
    # on 200 frames.
    "release-base": RunConfig(
        model=MODEL_PRESETS["release-base"],
        data=DataConfig(center="mixed", val_frames=200, workers=1, augment=False, synth_resolution=(160, 120)),
        train=TrainConfig(lr=2e-3, lr_schedule="cosine", epochs=None, minutes=50.0, batch_size=32,
                          log_every=20, val_every=500, ckpt_every=100, weight_decay=0.0)),
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


def build_config(preset: str = "paper", config_file: str | Path | None = None,
                 overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Preset, then ``--config FILE`` (any subset of keys), then ``--set key=value`` overrides."""
    cfg = get_preset(preset)
    if config_file is not None:
        merged = _deep_merge(to_dict(cfg), read_yaml_mapping(config_file))
        try:
            cfg = from_dict(RunConfig, merged)
        except UserError as exc:
            raise UserError(f"{config_file}: {exc}") from None
    cfg = apply_overrides(cfg, list(overrides))
    check(cfg)
    return cfg


def check(cfg: RunConfig) -> None:
    """Every value against its field's type (the ``Literal`` choices included), then the ranges."""
    validate(cfg)
    t = cfg.train
    for name, value in (("train.batch_size", t.batch_size), ("train.log_every", t.log_every),
                        ("train.val_every", t.val_every), ("train.ckpt_every", t.ckpt_every),
                        ("train.epoch_size", t.epoch_size)):
        if value < 1:
            raise UserError(f"{name}: must be >= 1, got {value}")
    if t.steps is None and t.epochs is None and t.minutes is None:
        raise UserError("give the run a length: train.steps, train.epochs or train.minutes")
    if t.lr <= 0:
        raise UserError(f"train.lr: must be > 0, got {t.lr}")
    if not t.field_loss_weight >= 0:
        raise UserError(f"train.field_loss_weight: must be >= 0, got {t.field_loss_weight}")
    if cfg.data.cube_mm is not None and not cfg.data.cube_mm > 0:
        raise UserError(f"data.cube_mm: must be > 0, got {cfg.data.cube_mm}")
    _check_scenes(cfg.data)


def _check_scenes(d: DataConfig) -> None:
    """``data.synth_scenes``: engine v3's scene families only, weights >= 0, some > 0, the synthetic stream."""
    if d.synth_scenes is None:
        return
    from srnpose.synth.engines import V3_WEIGHTS

    if d.synth_engine != "v3" or d.spec != "synth":
        raise UserError("data.synth_scenes: only for the synthetic stream of engine v3 (data.spec=synth, "
                        f"data.synth_engine=v3), got {d.spec} of engine {d.synth_engine}")
    unknown = sorted(set(d.synth_scenes) - set(V3_WEIGHTS["scenes"]))
    if unknown:
        raise UserError(f"data.synth_scenes: unknown scene families {', '.join(unknown)}; engine v3's: "
                        f"{', '.join(V3_WEIGHTS['scenes'])}")
    weights = list(d.synth_scenes.values())
    if not all(isinstance(w, (int, float)) and w >= 0 for w in weights) or not sum(weights) > 0:
        raise UserError(f"data.synth_scenes: weights must be numbers >= 0, some > 0, got {d.synth_scenes}")


def resolve_data(cfg: RunConfig) -> RunConfig:
    """Fill in the dataset's cube, layout and joint count (the model predicts the data's joints)."""
    name = "synth" if cfg.data.spec == "synth" else cfg.data.spec.partition(":")[0]

    info = get_dataset(name)
    layout = cfg.data.layout or info.layout
    num_joints = len(get_layout(layout).joint_names)
    data = dataclasses.replace(cfg.data, cube_mm=cfg.data.cube_mm or info.cube_mm, layout=layout)
    model = dataclasses.replace(cfg.model, num_joints=num_joints)
    return dataclasses.replace(cfg, data=data, model=model)


def load_resume_config(run_dir: str | Path) -> RunConfig:
    """The resolved config of an existing run (its last complete checkpoint's config.yaml)."""
    last = resolve_checkpoint_dir(Path(run_dir) / "last")
    if last is None:
        raise UserError(f"--resume: {run_dir} has no complete checkpoint in last/ to resume from")
    raw = load_run_config(last)
    if isinstance(raw.get("data"), dict):  # runs saved before data.synth_engine existed trained on v1
        raw["data"].setdefault("synth_engine", "v1")
    return from_dict(RunConfig, raw)
