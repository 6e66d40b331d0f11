"""Training the hand locator (:mod:`srnpose.locator.model`) on synthetic full frames.

    srnpose locator train --out runs/locator --minutes 10      # or: train_locator(steps, out_path=...)

Samples (:func:`render_sample`): engine v2 frames (:func:`srnpose.synth.engines.render`: every scene
family, real-pose prior, randomized sensors) on one of ``TRAIN_CAMERAS`` scaled to 320 px wide; a
share of them are the same kind of scene rendered without its hands
(:func:`srnpose.synth.frame.render_without_hands`) or empty, with presence 0; a share get patches of
dropped pixels on what is not the hand (:func:`speckle_patches`). Target: the labelled joints' 3D centroid. Loss (:func:`locator_loss`): heatmap
cross-entropy + depth L1 + presence BCE. The loop (:func:`train_locator`) draws mirrored batches from a
ring of prepared samples that background processes keep filling, follows a warm-up and cosine schedule
over steps or a time budget, and saves a resumable state (``locator_train.pt``) beside the locator.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Full
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from srnpose.cameras import get_camera
from srnpose.config import to_dict
from srnpose.data.centering import joints_centroid_uvd
from srnpose.errors import UserError
from srnpose.geometry import Intrinsics
from srnpose.locator.model import (
    STRIDE,
    WEIGHTS_FILE,
    HandLocator,
    LocatorConfig,
    load_locator,
    prepare_frame,
    save_locator,
    uvd_to_input_nrm,
)
from srnpose.synth.engines import render
from srnpose.synth.frame import frame_seed, render_without_hands
from srnpose.synth.poses import HANDS_V2
from srnpose.synth.scenes import PART_OTHER_HAND, SCENE_FAMILIES
from srnpose.synth.sensor import sample_profile
from srnpose.training.checkpoint import (
    TRAIN_STATE_FILE,
    corrupt_checkpoints_message,
    load_run_config,
    load_state_dict_file,
    load_train_state,
    resolve_checkpoint_dir,
    save_checkpoint,
)
from srnpose.training.checkpoint import WEIGHTS_FILE as CKPT_WEIGHTS_FILE
from srnpose.training.lock import remove_if_nothing_saved, run_lock
from srnpose.training.run_config import TrainConfig
from srnpose.training.schedule import lr_at

__all__ = [
    "LocatorSample",
    "render_sample",
    "speckle_patches",
    "locator_loss",
    "train_locator",
    "TRAIN_CAMERAS",
    "LOCATOR_ENGINES",
]

STATE_DIR = "last"  # the training checkpoint to resume from: training.checkpoint's atomic, checksummed folder
LEGACY_STATE_FILE = "locator_train.pt"  # older srnpose's training state (torch.save); resumed from, then replaced
# training frames: each camera's intrinsics scaled to TRAIN_WIDTH_PX wide (their fields of view, their
# sensors' artefacts); the default camera (ICVL, 320x240) is the synthetic test sets' camera
TRAIN_CAMERAS = ("icvl", "kinect2", "d400", "sr300", "azure_nfov")
TRAIN_WIDTH_PX = 320
NO_HAND_SHARE = 0.12  # training frames of scenes rendered without their hands: presence 0
# training frames with patches of dropped pixels on surfaces other than the hand (speckle_patches); the
# shipped locator was fine-tuned with 0.5 (issue 22: a Kinect V2's speckled mesh chair read as a hand)
SPECKLE_SHARE = 0.5
EMPTY_SHARE = 0.02  # training frames with no measurement at all: presence 0
WARMUP_STEPS = 50  # linear learning-rate warm-up (at most a quarter of the steps)
LR_MIN_RATIO = 0.05  # the cosine's floor, as a share of the learning rate
COMMIT_AFTER_STEPS = 20  # a time budget: steps timed before the schedule's length is fixed
CHUNK = 8  # samples a rendering process sends at once
# engine "mixed": each hand frame is a v3 frame with this probability, else a v2 frame (its own stream)
MIXED_V3_SHARE = 0.5
LOCATOR_ENGINES = ("v2", "v3", "mixed")


# --------------------------------------------------------------------------- training data


@dataclass(frozen=True)
class LocatorSample:
    """One training frame: ``x`` (H', W') float16 input, ``target_nrm`` (3,), ``presence`` 0 or 1."""

    x: np.ndarray
    target_nrm: np.ndarray
    presence: float
    scene: str = ""
    mirror: bool = True  # may be mirrored in a batch: False where another hand shows (see render_sample)


def _train_camera(rng: np.random.Generator, width_px: int) -> tuple[str, Intrinsics, tuple[int, int]]:
    """One of ``TRAIN_CAMERAS``: its name, intrinsics and (W, H) scaled to ``width_px`` wide."""
    name = TRAIN_CAMERAS[int(rng.integers(len(TRAIN_CAMERAS)))]
    cam = get_camera(name)
    factor = width_px / cam.resolution[0]
    resolution = (int(round(cam.resolution[0] * factor)), int(round(cam.resolution[1] * factor)))
    return name, cam.intrinsics.scaled(factor), resolution


def _handless_depth(seed: int, rng: np.random.Generator, camera: str, k: Intrinsics,
                    resolution: tuple[int, int], empty: bool) -> np.ndarray:
    """A frame without a hand: empty, or a v2 scene (its camera's sensor family) without its hands."""
    if empty:
        return np.zeros(resolution[::-1], dtype=np.uint16)
    return render_without_hands(seed, k, resolution, sample_profile(rng, camera), SCENE_FAMILIES, HANDS_V2)


def speckle_patches(depth: np.ndarray, keep: np.ndarray | None, rng: np.random.Generator,
                    max_patches: int = 3) -> np.ndarray:
    """A copy of ``depth`` (H, W) with 1 to ``max_patches`` patches of dropped pixels (0) on measured
    surfaces outside ``keep`` (H, W) bool (the hand; None: anywhere).

    Real sensors lose pixels in patches on mesh, dark, shiny or far surfaces: on the Kinect V2 frames a
    mesh chair back is a hand-sized speckled blob that the first locator took for a hand. Each patch is
    an ellipse 5-25 % of the frame's width across, centred on a measured pixel, whose pixels drop with
    probability 0.2-0.7 in square blocks of 1-3 px."""
    h, w = depth.shape
    out = depth.copy()
    free = (depth > 0) if keep is None else (depth > 0) & ~keep
    vs, us = np.nonzero(free)
    if vs.size == 0:
        return out
    vv, uu = np.ogrid[:h, :w]
    for _ in range(int(rng.integers(1, max_patches + 1))):
        i = int(rng.integers(vs.size))
        ru, rv = rng.uniform(0.025, 0.125, 2) * w
        block = int(rng.integers(1, 4))
        holes = rng.random((-(-h // block), -(-w // block))) < rng.uniform(0.2, 0.7)
        holes = np.kron(holes, np.ones((block, block), dtype=bool))[:h, :w]
        inside = ((uu - us[i]) / ru) ** 2 + ((vv - vs[i]) / rv) ** 2 <= 1.0
        out[inside & holes & free] = 0
    return out


def render_sample(seed: int, config: LocatorConfig | None = None, width_px: int = TRAIN_WIDTH_PX,
                  no_hand_share: float = NO_HAND_SHARE, empty_share: float = EMPTY_SHARE,
                  speckle_share: float = SPECKLE_SHARE, engine: str = "v2") -> LocatorSample:
    """A training sample for ``seed``: an ``engine`` frame (``synth.engines.render(engine, ...)``, v2 or
    v3: v3 adds turned hands and a second, unlabelled hand beside the first) on one of
    ``TRAIN_CAMERAS`` scaled to ``width_px`` wide, target its joints' centroid; ``no_hand_share`` of
    them a v2 scene without its hands, ``empty_share`` an empty frame (presence 0, target unused);
    ``speckle_share`` of the others with :func:`speckle_patches` off the hands. ``engine="mixed"``: a v3
    frame with probability ``MIXED_V3_SHARE``, else a v2 frame.

    A frame where the person's other (unlabelled) hand shows is never mirrored in a batch
    (``mirror=False``): mirrored, its labelled right hand would be a left hand beside a right one, and
    the locator would learn "either hand" where it should learn the labelled one."""
    if engine not in LOCATOR_ENGINES:
        raise ValueError(f"unknown locator engine {engine!r}; available: {', '.join(LOCATOR_ENGINES)}")
    config = config or LocatorConfig()
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x10CA])
    camera, k, resolution = _train_camera(rng, width_px)
    draw = rng.random()
    prep = dict(size=config.input_hw, depth_range_mm=(config.near_mm, config.far_mm))
    speckle = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5BEC])  # its own stream: the rest unchanged
    if draw < empty_share + no_hand_share:
        depth = _handless_depth(int(seed), rng, camera, k, resolution, empty=draw < empty_share)
        if speckle.random() < speckle_share:
            depth = speckle_patches(depth, None, speckle)
        x, _ = prepare_frame(depth, k, 1.0, **prep)
        return LocatorSample(x[0].astype(np.float16), np.zeros(3, np.float32), 0.0, "none")
    if engine == "mixed":
        engine = "v3" if np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xE9E3]).random() < MIXED_V3_SHARE else "v2"
    frame = render(engine, int(seed), k, resolution, camera=camera)
    depth = frame.depth_mm
    other = frame.part is not None and bool((frame.part == PART_OTHER_HAND).any())
    if speckle.random() < speckle_share:
        hands = None if frame.part is None else (frame.part >= 0) | (frame.part == PART_OTHER_HAND)
        depth = speckle_patches(depth, hands, speckle)
    x, scale = prepare_frame(depth, k, 1.0, **prep)
    target = uvd_to_input_nrm(joints_centroid_uvd(frame.joints_uvd, k), scale)
    return LocatorSample(x[0].astype(np.float16), target.astype(np.float32), 1.0, frame.scene, mirror=not other)


def _targets(target_nrm: Tensor, config: LocatorConfig, sigma_cells: float = 1.0) -> tuple[Tensor, Tensor]:
    """(B, 3) normalized targets -> Gaussian target distributions (B, h, w) and an inside mask (B,)."""
    hh, ww = config.heatmap_hw
    ih, iw = config.input_hw
    u_in = (target_nrm[:, 0] + 1.0) * (iw / 2.0) - 0.5
    v_in = (target_nrm[:, 1] + 1.0) * (ih / 2.0) - 0.5
    cu, cv = (u_in + 0.5) / STRIDE - 0.5, (v_in + 0.5) / STRIDE - 0.5  # (B,) cell coordinates
    jj = torch.arange(ww, dtype=torch.float32)
    ii = torch.arange(hh, dtype=torch.float32)
    g = torch.exp(-((ii[None, :, None] - cv[:, None, None]) ** 2 + (jj[None, None, :] - cu[:, None, None]) ** 2)
                  / (2 * sigma_cells ** 2))  # (B, h, w)
    inside = (cu > -0.5) & (cu < ww - 0.5) & (cv > -0.5) & (cv < hh - 0.5)
    return g / g.sum(dim=(1, 2), keepdim=True).clamp_min(1e-12), inside


def locator_loss(outputs: tuple[Tensor, Tensor, Tensor], x: Tensor, target_nrm: Tensor, presence: Tensor,
                 config: LocatorConfig) -> tuple[Tensor, dict[str, float]]:
    """Heatmap cross-entropy + depth L1 (in units of ``depth_offset_mm``, weighted by the target
    Gaussian over the cells that show a surface: what decoding averages) on frames with a hand inside
    the input (``x`` (B, 1, H', W')); presence BCE on all frames."""
    logits, depth, presence_logit = outputs
    b = logits.shape[0]
    g, inside = _targets(target_nrm, config)
    surface = (-F.max_pool2d(-x, STRIDE)[:, 0] < 1.0).float()  # (B, h, w) cells that show a surface
    g_depth = g * surface
    g_depth = g_depth / g_depth.sum(dim=(1, 2), keepdim=True).clamp_min(1e-12)
    use = inside & (presence > 0.5)
    logp = F.log_softmax(logits.reshape(b, -1), dim=1).reshape_as(logits)
    n = use.float().sum().clamp_min(1.0)
    heat = -((g * logp).sum(dim=(1, 2)) * use).sum() / n
    half = (config.far_mm - config.near_mm) / 2.0
    derr = (depth - target_nrm[:, 2, None, None]).abs() * (half / config.depth_offset_mm)
    dloss = ((g_depth * derr).sum(dim=(1, 2)) * use).sum() / n
    ploss = F.binary_cross_entropy_with_logits(presence_logit, presence)
    total = heat + dloss + ploss
    return total, {"heat": float(heat.detach()), "depth": float(dloss.detach()), "presence": float(ploss.detach())}


class _Pool:
    """A ring of prepared samples (float16 inputs) the trainer draws batches from."""

    def __init__(self, capacity: int, input_hw: tuple[int, int]) -> None:
        self.x = np.zeros((capacity, *input_hw), dtype=np.float16)
        self.t = np.zeros((capacity, 3), dtype=np.float32)
        self.p = np.zeros(capacity, dtype=np.float32)
        self.m = np.ones(capacity, dtype=bool)
        self.size, self.next, self.added = 0, 0, 0

    def add(self, s: LocatorSample) -> None:
        i = self.next
        self.x[i], self.t[i], self.p[i], self.m[i] = s.x, s.target_nrm, s.presence, s.mirror
        self.next = (i + 1) % len(self.x)
        self.size = min(self.size + 1, len(self.x))
        self.added += 1

    def batch(self, rng: np.random.Generator, n: int) -> tuple[Tensor, Tensor, Tensor]:
        idx = rng.integers(0, self.size, n)
        x = torch.from_numpy(self.x[idx].astype(np.float32))[:, None]  # (B, 1, H', W')
        t = torch.from_numpy(self.t[idx].copy())
        flip = torch.from_numpy((rng.random(n) < 0.5) & self.m[idx])  # mirror half: u_nrm -> -u_nrm
        x[flip] = x[flip].flip(-1)
        t[flip, 0] = -t[flip, 0]
        return x, t, torch.from_numpy(self.p[idx])


def _render_worker(queue, stop, sampler: Callable[[int], LocatorSample], seed: int, start: int, step: int) -> None:
    """A background process: samples ``start, start + step, ...`` in chunks into ``queue`` until ``stop``
    (or until the trainer is gone)."""
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    parent = os.getppid()
    i, chunk = start, []
    while not stop.is_set() and os.getppid() == parent:
        chunk.append(sampler(frame_seed(seed, i)))
        i += step
        if len(chunk) < CHUNK:
            continue
        while not stop.is_set() and os.getppid() == parent:
            try:
                queue.put(chunk, timeout=0.5)
                break
            except Full:  # the trainer is slower than rendering
                continue
        chunk = []


class _Feed:
    """Fills a :class:`_Pool` with samples ``frame_seed(seed, first), ...``: all at once in this process
    (``workers=0``, deterministic) or continuously from ``workers`` background processes."""

    def __init__(self, pool: _Pool, sampler: Callable[[int], LocatorSample], seed: int, first: int,
                 workers: int) -> None:
        import multiprocessing as mp

        self.pool, self.procs, self.queue, self.stop = pool, [], None, None
        if workers <= 0:
            for i in range(len(pool.x)):
                pool.add(sampler(frame_seed(seed, first + i)))
            return
        ctx = mp.get_context("spawn")
        self.queue, self.stop = ctx.Queue(maxsize=64), ctx.Event()
        self.procs = [ctx.Process(target=_render_worker, args=(self.queue, self.stop, sampler, seed, first + k, workers),
                                  daemon=True) for k in range(workers)]
        for p in self.procs:
            p.start()

    def drain(self, min_size: int) -> None:
        """Move what the workers rendered into the pool; wait (5 s at a time) while it holds < ``min_size``."""
        if self.queue is None:
            return
        block = self.pool.size < min_size
        while True:
            try:
                chunk = self.queue.get(timeout=5.0) if block else self.queue.get_nowait()
            except Empty:
                return
            for s in chunk:
                self.pool.add(s)
            block = self.pool.size < min_size

    def close(self) -> None:
        if self.stop is None:
            return
        self.stop.set()
        while any(p.is_alive() for p in self.procs):
            self.drain(0)
            for p in self.procs:
                p.join(timeout=0.2)


# --------------------------------------------------------------------------- the loop, on the training stack


def _schedule(lr: float, steps: int) -> TrainConfig:
    """The locator's learning-rate schedule in :func:`srnpose.training.schedule.lr_at`'s terms: a linear
    warm-up over ``WARMUP_STEPS`` (at most a quarter of the steps), then a cosine to ``LR_MIN_RATIO``."""
    return TrainConfig(lr=lr, lr_schedule="cosine", lr_min_ratio=LR_MIN_RATIO, lr_scaling="none",
                       warmup_steps=min(WARMUP_STEPS, max(1, steps // 4)))


@dataclass
class _Progress:
    """Where a locator training stands: what its checkpoint's ``train_state.pt`` holds."""

    step: int = 0
    frames: int = 0  # samples rendered before this process (the sample stream continues there)
    elapsed_s: float = 0.0  # training time before this process (the time budget counts it)
    total_steps: int | None = None  # a time budget's committed length (the schedule's), once fixed

    def stop_step(self, steps: int, budget_s: float | None) -> int:
        """Where training stops: ``steps``, or under a time budget the steps found to fit it."""
        return min(steps, self.total_steps) if budget_s is not None and self.total_steps else steps


def _check_folder(out: Path, resume: bool) -> Path | None:
    """The checkpoint to resume from (``last/``, or an older srnpose's ``locator_train.pt``), or None for
    a fresh start; a UserError where a fresh start would overwrite a locator or its training state, or
    where every saved checkpoint fails its checksums."""
    corrupt = corrupt_checkpoints_message(out / STATE_DIR)
    if corrupt:
        raise UserError(f"--out {out}: {corrupt}; nothing to resume from, and a new training would overwrite "
                        "them: move the folder away or choose another --out")
    last = resolve_checkpoint_dir(out / STATE_DIR)
    found = last if last is not None else (out / LEGACY_STATE_FILE if (out / LEGACY_STATE_FILE).is_file() else None)
    if found is not None and not resume:
        raise UserError(f"--out {out}: already holds a locator's training; add --resume to continue it or "
                        "choose another folder")
    if found is None and (out / WEIGHTS_FILE).is_file():
        raise UserError(f"--out {out}: holds a locator without a training state to resume; choose another folder")
    return found


def _resume(found: Path, model: HandLocator, opt, config: LocatorConfig) -> _Progress:
    """Load a saved training (a checkpoint folder, or an older srnpose's ``locator_train.pt``) into
    ``model`` and ``opt``."""
    if found.is_dir():
        saved = load_run_config(found).get("locator")
        state = load_train_state(found / TRAIN_STATE_FILE)
        weights = load_state_dict_file(found / CKPT_WEIGHTS_FILE)
    else:  # locator_train.pt of older srnpose: model, optimizer and counters in one file
        state = load_train_state(found)
        saved, weights = state.get("config"), state["model"]
    if saved != to_dict(config):
        raise UserError(f"{found.parent if found.is_dir() else found}: holds a locator of another config; "
                        "choose another folder")
    model.load_state_dict(weights)
    opt.load_state_dict(state["optimizer"])
    total = int(state.get("total_steps", -1))
    return _Progress(int(state["step"]), int(state["frames"]), float(state["elapsed_s"]), total if total > 0 else None)


def _save(out: Path, model: HandLocator, opt, progress: _Progress, logs: dict, batch: int, seed: int,
          engine: str) -> None:
    """The locator (:func:`srnpose.locator.model.save_locator`) and the training checkpoint to resume from
    (:func:`srnpose.training.checkpoint.save_checkpoint`: atomic, checksummed, the previous one kept)."""
    summary = {"steps": progress.step, "batch": batch, "seed": seed, "engine": engine, "frames_rendered": progress.frames,
               "elapsed_s": round(progress.elapsed_s, 1), "last_losses": {k: round(v, 4) for k, v in logs.items()}}
    state = {"optimizer": opt.state_dict(), "step": progress.step, "frames": progress.frames,
             "elapsed_s": progress.elapsed_s, "total_steps": progress.total_steps or -1}
    save_checkpoint(out / STATE_DIR, model, {"locator": to_dict(model.config), "train": summary}, state)
    save_locator(model, out, summary)
    if (out / LEGACY_STATE_FILE).is_file():  # resumed from an older srnpose's state: last/ replaces it
        (out / LEGACY_STATE_FILE).unlink()


def _step(model: HandLocator, opt, pool: _Pool, rng: np.random.Generator, batch: int, lr: float) -> tuple[float, dict]:
    for group in opt.param_groups:
        group["lr"] = lr
    x, t, p = pool.batch(rng, batch)
    loss, logs = locator_loss(model(x), x, t, p, model.config)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach()), logs


def _schedule_length(progress: _Progress, steps: int, budget_s: float | None, step_times: list[float],
                     elapsed_s: float) -> int | None:
    """The steps the schedule runs over: ``steps``; under a time budget, the steps that fit it (at most
    ``steps``), fixed once ``COMMIT_AFTER_STEPS`` steps are timed and kept by a resumed training (None
    before: the warm-up's constant rate)."""
    if budget_s is None:
        return steps
    if progress.total_steps is None and len(step_times) >= COMMIT_AFTER_STEPS:
        per = float(np.median(step_times[2:]))
        progress.total_steps = min(steps, progress.step + max(int((budget_s - elapsed_s) / per), 1))
    return progress.total_steps


def train_locator(steps: int, batch: int = 32, out_path: str | Path = "runs/locator",
                  config: LocatorConfig | None = None, seed: int = 0, lr: float = 3e-3,
                  time_budget_s: float | None = None, workers: int = 1, pool_size: int = 12000,
                  sampler: Callable[[int], LocatorSample] | None = None, resume: bool = False,
                  progress: bool = True, save_every_s: float = 60.0, init: str | Path | None = None,
                  engine: str = "v2") -> Path:
    """Train a :class:`~srnpose.locator.model.HandLocator`; writes ``out_path/locator.safetensors`` and
    ``locator.yaml`` (config and training summary), and ``out_path/last/``, the training checkpoint to
    resume from (:mod:`srnpose.training.checkpoint`), under the run lock (:mod:`srnpose.training.lock`).
    Returns ``out_path``.

    Samples come from ``sampler(frame_seed(seed, i))`` (default :func:`render_sample`). ``workers`` >= 1
    render in background processes into a ring of ``pool_size`` samples the trainer draws batches from
    (mirrored half the time); ``workers=0`` renders ``pool_size`` samples first, then trains
    (deterministic: the tests). Stops after ``steps`` or ``time_budget_s``, whichever comes first; the
    learning rate follows :func:`srnpose.training.schedule.lr_at` (warm-up, cosine) over the steps, or
    over the steps a time budget fits (fixed after its first steps). ``resume``: continue the training
    the folder holds, from its step and its next frame (the budget counts the time spent); without it a
    folder that holds one is refused. ``init``: a locator folder whose weights (and config) a new
    training starts from: a fine-tuning (a resumed training continues its own weights). ``engine``: the
    synthetic engine of :func:`render_sample`'s hand frames (v2, v3, or mixed)."""
    out = Path(out_path)
    with remove_if_nothing_saved(out, not out.exists()), run_lock(out):
        found = _check_folder(out, resume)
        start = load_locator(init).model if init is not None and found is None else None
        config = config or (start.config if start is not None else LocatorConfig())
        torch.manual_seed(seed)
        model = HandLocator(config)
        if start is not None:
            if start.config != config:
                raise UserError(f"--init {init}: a locator of another config than the training's")
            model.load_state_dict(start.state_dict())
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
        state = _resume(found, model, opt, config) if found is not None else _Progress()
        feed = _Feed(_Pool(pool_size, config.input_hw),
                     sampler or functools.partial(render_sample, config=config, engine=engine),
                     seed, state.frames, workers)
        try:
            logs = _loop(model, opt, feed, state, steps, batch, lr, time_budget_s, progress, save_every_s,
                         lambda logs: _save(out, model.eval(), opt, state, logs, batch, seed, engine), seed)
        finally:
            feed.close()
        _save(out, model.eval(), opt, state, logs, batch, seed, engine)
    return out


def _loop(model: HandLocator, opt, feed: _Feed, state: _Progress, steps: int, batch: int, lr: float,
          budget_s: float | None, progress: bool, save_every_s: float, save: Callable[[dict], None],
          seed: int) -> dict:
    """Train until ``steps`` or ``budget_s`` (or the steps the budget was found to fit); ``state`` follows
    the step, the frames rendered and the time spent; ``save(logs)`` every ``save_every_s``. Returns the
    last step's losses."""
    rng = np.random.default_rng([seed, state.step])
    pool, schedule = feed.pool, _schedule(lr, steps)
    frames0, elapsed0, t0 = state.frames, state.elapsed_s, time.perf_counter()
    last_save, step_times, logs = t0, [], {}
    bar = _progress_bar(progress, steps, state.step)
    model.train()
    try:
        while state.step < state.stop_step(steps, budget_s):
            state.elapsed_s = elapsed0 + time.perf_counter() - t0
            if budget_s is not None and state.elapsed_s >= budget_s:
                break
            feed.drain(min_size=2 * batch)
            if pool.size < batch:
                continue
            length = _schedule_length(state, steps, budget_s, step_times, state.elapsed_s)
            if bar is not None and length is not None and bar.total != length:
                bar.total = length  # a time budget's committed length: the bar's end and its ETA
            t_step = time.perf_counter()
            loss, logs = _step(model, opt, pool, rng, batch, lr_at(state.step, schedule, 1.0, length))
            step_times.append(time.perf_counter() - t_step)
            state.step += 1
            state.frames = frames0 + pool.added
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", pool=pool.size, frames=pool.added, refresh=False)
            if time.perf_counter() - last_save > save_every_s:
                state.elapsed_s = elapsed0 + time.perf_counter() - t0
                save(logs)
                model.train()
                last_save = time.perf_counter()
    finally:
        if bar is not None:
            bar.close()
    state.frames, state.elapsed_s = frames0 + pool.added, elapsed0 + time.perf_counter() - t0
    return logs


def _progress_bar(progress: bool, steps: int, step: int):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=None if steps >= 10 ** 9 else steps, initial=step, desc="locator", unit="step")
