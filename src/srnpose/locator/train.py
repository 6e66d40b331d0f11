"""Training the hand locator (:mod:`srnpose.locator.model`) on synthetic full frames.

    srnpose locator train --out runs/locator --minutes 10      # or: train_locator(steps, out_path=...)

Samples (:func:`render_sample`): engine v2 frames (:func:`srnpose.synth.engines.render`: every scene
family, real-pose prior, randomized sensors) on one of ``TRAIN_CAMERAS`` scaled to 320 px wide; a
share of them are the same kind of scene rendered without its hands
(:func:`srnpose.synth.frame.render_without_hands`) or empty, with presence 0. Target: the labelled joints' 3D centroid. Loss (:func:`locator_loss`): heatmap
cross-entropy + depth L1 + presence BCE. The loop (:func:`train_locator`) draws mirrored batches from a
ring of prepared samples that background processes keep filling, follows a warm-up and cosine schedule
over steps or a time budget, and saves a resumable state (``locator_train.pt``) beside the locator.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from srnpose.data.centering import joints_centroid_uvd
from srnpose.errors import UserError
from srnpose.geometry import Intrinsics
from srnpose.locator.model import (
    STRIDE,
    HandLocator,
    LocatorConfig,
    prepare_frame,
    save_locator,
    uvd_to_input_nrm,
)
from srnpose.synth.frame import render_without_hands

__all__ = [
    "LocatorSample",
    "render_sample",
    "locator_loss",
    "train_locator",
    "TRAIN_CAMERAS",
]

STATE_FILE = "locator_train.pt"  # resumable training state: model, optimizer, step, frames rendered
# training frames: each camera's intrinsics scaled to TRAIN_WIDTH_PX wide (their fields of view, their
# sensors' artefacts); the default camera (ICVL, 320x240) is the synthetic test sets' camera
TRAIN_CAMERAS = ("icvl", "kinect2", "d400", "sr300", "azure_nfov")
TRAIN_WIDTH_PX = 320
NO_HAND_SHARE = 0.12  # training frames of scenes rendered without their hands: presence 0
EMPTY_SHARE = 0.02  # training frames with no measurement at all: presence 0
WARMUP_STEPS = 50  # linear learning-rate warm-up (at most a quarter of the steps)
CHUNK = 8  # samples a rendering process sends at once


# --------------------------------------------------------------------------- training data


@dataclass(frozen=True)
class LocatorSample:
    """One training frame: ``x`` (H', W') float16 input, ``target_nrm`` (3,), ``presence`` 0 or 1."""

    x: np.ndarray
    target_nrm: np.ndarray
    presence: float
    scene: str = ""


def _train_camera(rng: np.random.Generator, width_px: int) -> tuple[str, Intrinsics, tuple[int, int]]:
    """One of ``TRAIN_CAMERAS``: its name, intrinsics and (W, H) scaled to ``width_px`` wide."""
    from srnpose.cameras import get_camera

    name = TRAIN_CAMERAS[int(rng.integers(len(TRAIN_CAMERAS)))]
    cam = get_camera(name)
    factor = width_px / cam.resolution[0]
    resolution = (int(round(cam.resolution[0] * factor)), int(round(cam.resolution[1] * factor)))
    return name, cam.intrinsics.scaled(factor), resolution


def _handless_depth(seed: int, rng: np.random.Generator, camera: str, k: Intrinsics,
                    resolution: tuple[int, int], empty: bool) -> np.ndarray:
    """A frame without a hand: empty, or a v2 scene (its camera's sensor family) without its hands."""
    from srnpose.synth.poses import HANDS_V2
    from srnpose.synth.scenes import SCENE_FAMILIES
    from srnpose.synth.sensor import sample_profile

    if empty:
        return np.zeros(resolution[::-1], dtype=np.uint16)
    return render_without_hands(seed, k, resolution, sample_profile(rng, camera), SCENE_FAMILIES, HANDS_V2)


def render_sample(seed: int, config: LocatorConfig | None = None, width_px: int = TRAIN_WIDTH_PX,
                  no_hand_share: float = NO_HAND_SHARE, empty_share: float = EMPTY_SHARE) -> LocatorSample:
    """A training sample for ``seed``: an engine v2 frame (``synth.engines.render("v2", ...)``) on one of
    ``TRAIN_CAMERAS`` scaled to ``width_px`` wide, target its joints' centroid; ``no_hand_share`` of
    them a v2 scene without its hands, ``empty_share`` an empty frame (presence 0, target unused)."""
    from srnpose.synth.engines import render

    config = config or LocatorConfig()
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x10CA])
    camera, k, resolution = _train_camera(rng, width_px)
    draw = rng.random()
    prep = dict(size=config.input_hw, depth_range_mm=(config.near_mm, config.far_mm))
    if draw < empty_share + no_hand_share:
        depth = _handless_depth(int(seed), rng, camera, k, resolution, empty=draw < empty_share)
        x, _ = prepare_frame(depth, k, 1.0, **prep)
        return LocatorSample(x[0].astype(np.float16), np.zeros(3, np.float32), 0.0, "none")
    frame = render("v2", int(seed), k, resolution, camera=camera)
    x, scale = prepare_frame(frame.depth_mm, k, 1.0, **prep)
    target = uvd_to_input_nrm(joints_centroid_uvd(frame.joints_uvd, k), scale)
    return LocatorSample(x[0].astype(np.float16), target.astype(np.float32), 1.0, frame.scene)


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
        self.size, self.next, self.added = 0, 0, 0

    def add(self, s: LocatorSample) -> None:
        i = self.next
        self.x[i], self.t[i], self.p[i] = s.x, s.target_nrm, s.presence
        self.next = (i + 1) % len(self.x)
        self.size = min(self.size + 1, len(self.x))
        self.added += 1

    def batch(self, rng: np.random.Generator, n: int) -> tuple[Tensor, Tensor, Tensor]:
        idx = rng.integers(0, self.size, n)
        x = torch.from_numpy(self.x[idx].astype(np.float32))[:, None]  # (B, 1, H', W')
        t = torch.from_numpy(self.t[idx].copy())
        flip = torch.from_numpy(rng.random(n) < 0.5)  # mirror half: u_nrm -> -u_nrm
        x[flip] = x[flip].flip(-1)
        t[flip, 0] = -t[flip, 0]
        return x, t, torch.from_numpy(self.p[idx])


def _render_worker(queue, stop, sampler: Callable[[int], LocatorSample], seed: int, start: int, step: int) -> None:
    """A background process: samples ``start, start + step, ...`` in chunks into ``queue`` until ``stop``
    (or until the trainer is gone)."""
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    from srnpose.synth.frame import frame_seed

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
            except Exception:  # queue full: the trainer is slower than rendering
                continue
        chunk = []


class _Feed:
    """Fills a :class:`_Pool` with samples ``frame_seed(seed, first), ...``: all at once in this process
    (``workers=0``, deterministic) or continuously from ``workers`` background processes."""

    def __init__(self, pool: _Pool, sampler: Callable[[int], LocatorSample], seed: int, first: int,
                 workers: int) -> None:
        import multiprocessing as mp

        from srnpose.synth.frame import frame_seed

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
            except Exception:  # empty
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


def _lr_scale(step: int, done: float, warm: int) -> float:
    """Linear warm-up over ``warm`` steps, then a cosine from 1 to 0.05 over ``done`` in [0, 1]."""
    return min(1.0, (step + 1) / warm) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(done, 1.0))))


def _resume(out: Path, model: HandLocator, opt, config: LocatorConfig) -> tuple[int, int, float]:
    """Load ``out``'s training state into ``model`` and ``opt``: (step, frames rendered, seconds spent)."""
    from srnpose.config import to_dict

    state = torch.load(out / STATE_FILE, weights_only=True)
    if state.get("config") != to_dict(config):
        raise UserError(f"{out}: holds a locator of another config; choose another folder or resume=False")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    return int(state["step"]), int(state["frames"]), float(state["elapsed_s"])


def _checkpoint(out: Path, model: HandLocator, opt, step: int, frames: int, elapsed_s: float, logs: dict,
                batch: int, seed: int) -> None:
    """The locator (:func:`srnpose.locator.model.save_locator`) and the state to resume from."""
    from srnpose.config import to_dict

    train = {"steps": step, "batch": batch, "seed": seed, "frames_rendered": frames,
             "elapsed_s": round(elapsed_s, 1), "last_losses": {k: round(v, 4) for k, v in logs.items()}}
    save_locator(model, out, train)
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "frames": frames,
             "elapsed_s": elapsed_s, "config": to_dict(model.config)}
    tmp = out / (STATE_FILE + ".tmp")
    torch.save(state, tmp)
    tmp.replace(out / STATE_FILE)


def _step(model: HandLocator, opt, pool: _Pool, rng: np.random.Generator, batch: int) -> tuple[float, dict]:
    x, t, p = pool.batch(rng, batch)
    loss, logs = locator_loss(model(x), x, t, p, model.config)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach()), logs


def train_locator(steps: int, batch: int = 32, out_path: str | Path = "runs/locator",
                  config: LocatorConfig | None = None, seed: int = 0, lr: float = 3e-3,
                  time_budget_s: float | None = None, workers: int = 1, pool_size: int = 12000,
                  sampler: Callable[[int], LocatorSample] | None = None, resume: bool = True,
                  progress: bool = True, save_every_s: float = 60.0) -> Path:
    """Train a :class:`~srnpose.locator.model.HandLocator`; writes ``out_path/locator.safetensors``,
    ``locator.yaml`` (config and training summary) and ``locator_train.pt`` (to resume). Returns ``out_path``.

    Samples come from ``sampler(frame_seed(seed, i))`` (default :func:`render_sample`). ``workers`` >= 1
    render in background processes into a ring of ``pool_size`` samples the trainer draws batches from
    (mirrored half the time); ``workers=0`` renders ``pool_size`` samples first, then trains
    (deterministic: the tests). Stops after ``steps`` or ``time_budget_s``, whichever comes first; the
    learning rate follows a cosine over the same progress. ``resume``: a folder with a training state of
    the same config continues from its step and its next frame (the budget counts the time spent)."""
    import functools

    config = config or LocatorConfig()
    out = Path(out_path)
    torch.manual_seed(seed)
    model = HandLocator(config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    step, frames0, elapsed0 = _resume(out, model, opt, config) if resume and (out / STATE_FILE).is_file() else (0, 0, 0.0)
    rng = np.random.default_rng([seed, step])
    pool = _Pool(pool_size, config.input_hw)
    feed = _Feed(pool, sampler or functools.partial(render_sample, config=config), seed, frames0, workers)
    warm, t0, logs = min(WARMUP_STEPS, max(1, steps // 4)), time.perf_counter(), {}
    last_save = t0
    bar = _progress_bar(progress, steps, step)
    model.train()
    try:
        while step < steps:
            elapsed = elapsed0 + time.perf_counter() - t0
            if time_budget_s is not None and elapsed >= time_budget_s:
                break
            feed.drain(min_size=2 * batch)
            if pool.size < batch:
                continue
            done = max(step / steps, elapsed / time_budget_s if time_budget_s else 0.0)
            for group in opt.param_groups:
                group["lr"] = lr * _lr_scale(step, done, warm)
            loss, logs = _step(model, opt, pool, rng, batch)
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", pool=pool.size, frames=pool.added, refresh=False)
            if time.perf_counter() - last_save > save_every_s:
                _checkpoint(out, model.eval(), opt, step, frames0 + pool.added, elapsed0 + time.perf_counter() - t0,
                            logs, batch, seed)
                model.train()
                last_save = time.perf_counter()
    finally:
        feed.close()
        if bar is not None:
            bar.close()
    _checkpoint(out, model.eval(), opt, step, frames0 + pool.added, elapsed0 + time.perf_counter() - t0, logs,
                batch, seed)
    return out


def _progress_bar(progress: bool, steps: int, step: int):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=steps, initial=step, desc="locator", unit="step")
