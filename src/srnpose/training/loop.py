"""The training loop (single process or torchrun DDP), as small named steps.

    cfg = run_config.build_config("tiny", overrides=["data.spec=synth"])
    train(cfg, "runs/tiny")                    # or resume=True: continue RUN if it holds a checkpoint

What a run is (model, data, recipe, presets) lives in :mod:`srnpose.training.run_config`; where its samples
come from in :mod:`srnpose.data.sampling`; where crops go in :mod:`srnpose.data.centering`; the
learning rate in :mod:`srnpose.training.schedule`; ``metrics.csv`` in :mod:`srnpose.training.log`; checkpoints in
:mod:`srnpose.training.checkpoint`. Validation runs the frame-path engine (:mod:`srnpose.inference.frame_path`), as
``evaluate`` and ``predict`` do.

Multi-process (torchrun)
------------------------
``train.batch_size`` is per process: the effective batch is ``batch_size x world_size`` and the
learning rate is scaled by ``train.lr_scaling``. Every rank draws different samples of one
deterministic stream. Rank 0 alone writes ``metrics.csv`` and checkpoints; logged losses and
errors are summed over ranks.

Exact resume
------------
Every sample is a pure function of its global index, the schedule a pure function of the step;
``RUN/last/train_state.pt`` holds the optimizer, the counters, the committed schedule length and
the RNG states. ``resume=True`` therefore continues bit for bit on the same machine and world size.
A ``--minutes`` run commits to a step count once it has timed its first steps (see
:func:`_commit_length`); a resumed run keeps that commitment, so its cosine schedule has no jump.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from srnpose.config import save_yaml
from srnpose.data.centering import CenterPolicy
from srnpose.data.pipeline import nrm_to_xyz, uvd_to_xyz_batched
from srnpose.data.sampling import (
    StepBatches,
    build_source,
    collate_good,
    load_eval_records,
    synthetic_first_crop,
)
from srnpose.errors import UserError
from srnpose.evaluation.model_eval import score_estimates
from srnpose.inference.backends import TorchRunner
from srnpose.inference.frame_path import FramePath, estimate_records
from srnpose.outputs import DiskFullError
from srnpose.training import distributed
from srnpose.training.checkpoint import (
    kept_checkpoint,
    load_state_dict_file,
    load_train_state,
    load_weights,
    load_weights_growing,
    resolve_checkpoint_dir,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from srnpose.training.lock import check_run_dir, remove_if_nothing_saved, run_lock
from srnpose.training.log import METRICS_FILE, MetricsWriter, metrics_columns
from srnpose.training.run_config import SYNTH_VAL_SEED, RunConfig, TrainConfig, check, resolve_data
from srnpose.training.schedule import lr_at

__all__ = ["TrainResult", "train", "RUN_CONFIG_FILE", "COMMIT_AFTER_STEPS", "TIME_CAP_FACTOR"]

RUN_CONFIG_FILE = "config.yaml"
# A --minutes run times this many steps, then commits to the step count that fits its budget.
COMMIT_AFTER_STEPS = 50
# ... and still stops when the clock passes this multiple of the budget (a machine that slowed down).
TIME_CAP_FACTOR = 1.25


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    val_stage_mm: list[float] | None  # the last validation's per-stage mean error
    best_mm: float | None
    bad_frames: int
    samples_per_s: float


@dataclass
class _Run:
    """What the loop carries from step to step."""

    cfg: RunConfig
    run_dir: Path
    info: Any  # distributed.DistInfo
    model: Any  # SRN, or DistributedDataParallel around it
    optimizer: Any
    state: dict  # counters saved in train_state.pt
    steps_per_epoch: float
    per_epoch_steps: int | None  # steps per pass over a record list (None: the synthetic stream)
    record_count: int
    metrics: MetricsWriter | None = None
    val_records: list = field(default_factory=list)
    bar: Any = None
    time_base: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    step_times: list = field(default_factory=list)
    saved_step: int = 0  # the step of the last save of last/

    @property
    def net(self):
        return getattr(self.model, "module", self.model)

    def elapsed(self) -> float:
        return self.time_base + time.perf_counter() - self.started

    @property
    def time_mode(self) -> bool:  # a --minutes run
        t = self.cfg.train
        return t.steps is None and t.epochs is None


# --------------------------------------------------------------------------- set up


def _fresh_state(cfg: RunConfig, world_size: int, total_steps: int | None) -> dict:
    return {"step": 0, "epoch": 0, "samples": 0, "time_s": 0.0, "bad_frames": 0, "best_mm": float("inf"),
            "best_step": -1, "total_steps": total_steps, "acc": [0.0] * (2 + cfg.model.num_stages), "acc_bad": 0,
            "world_size": world_size}


def _planned_steps(cfg: RunConfig, record_count: int, world_size: int) -> tuple[float, int | None, int | None]:
    """(steps per epoch, steps per pass over the records or None, total steps or None for a time budget)."""
    t = cfg.train
    per_step = t.batch_size * world_size
    per_epoch_steps = None
    if record_count:
        per_epoch_steps = record_count // per_step
        if per_epoch_steps < 1:
            raise UserError(f"{cfg.data.spec}: {record_count} frames is fewer than one batch "
                            f"({t.batch_size} x {world_size} processes)")
        steps_per_epoch = float(per_epoch_steps)
    else:
        steps_per_epoch = t.epoch_size / per_step
    total = t.steps if t.steps is not None else (math.ceil(t.epochs * steps_per_epoch) if t.epochs is not None else None)
    return steps_per_epoch, per_epoch_steps, total


def _restore(run: _Run, last: Path, extend: bool) -> None:
    """Load ``last/`` (weights, optimizer, counters, RNG) into ``run``."""
    saved = load_train_state(last / "train_state.pt")
    load_weights(run.net, load_state_dict_file(last / "model.safetensors"), last / "model.safetensors")
    run.optimizer.load_state_dict(saved["optimizer"])
    set_rng_state(saved["rng"])
    if int(saved.get("world_size", 1)) != run.info.world_size and run.info.is_main:
        print(f"warning: resuming a {saved.get('world_size')}-process run with {run.info.world_size} "
              "processes: the data order changes from here on", file=sys.stderr)
    planned = run.state["total_steps"]
    for key in run.state:
        if key in saved and key != "world_size":
            run.state[key] = saved[key]
    run.state["acc"] = [float(v) for v in run.state["acc"]]
    if not run.time_mode:  # a fixed length: the config's (an --extend may have changed it)
        run.state["total_steps"] = planned
    elif extend:  # a longer time budget: commit to a new length once the first steps are timed
        run.state["total_steps"] = None


def build_optimizer(model, t: TrainConfig):
    """``t.optimizer`` (Adam or AdamW) over ``model``'s parameters, after putting the model in channels-last
    memory format where ``t.channels_last`` (the same Parameter objects; checkpoints save them contiguous);
    ``t.fused_optimizer``: torch's fused kernel (CPU and CUDA) instead of a loop over the tensors."""
    import torch

    if t.channels_last:
        model.to(memory_format=torch.channels_last)
    opt_cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
    impl = {"fused": True} if t.fused_optimizer else {"foreach": False}
    return opt_cls(model.parameters(), lr=t.lr, weight_decay=t.weight_decay, **impl)


def setup_run(cfg: RunConfig, run_dir: Path, resume: bool, info, extend: bool = False,
              init_weights: Path | None = None, wrap_source=None) -> tuple[_Run, Any]:
    """Model, optimizer, sample source, counters (fresh or restored from ``last/``) and metrics file.
    ``init_weights``: a fresh run starts from this weights file (fine-tuning); ``wrap_source(source, net,
    resume_step)`` returns the source to train on (its weights in place: the initial or the restored ones;
    ``resume_step``: the step of the ``last/`` the run resumes from, None for a fresh run)."""
    import random

    import torch

    from srnpose.model import SRN

    t = cfg.train
    torch.manual_seed(t.seed)  # identical initial weights on every rank
    np.random.seed(t.seed)
    random.seed(t.seed)
    model = SRN.from_config(cfg.model).to(info.device)
    optimizer = build_optimizer(model, t)
    source, _, record_count = build_source(cfg)
    steps_per_epoch, per_epoch_steps, total = _planned_steps(cfg, record_count, info.world_size)
    run = _Run(cfg, run_dir, info, model, optimizer, _fresh_state(cfg, info.world_size, total), steps_per_epoch,
               per_epoch_steps, record_count)
    last = resolve_checkpoint_dir(run_dir / "last") if resume else None
    if last is not None:
        _restore(run, last, extend)
    elif init_weights is not None:
        fresh = load_weights_growing(run.net, load_state_dict_file(init_weights), init_weights)
        if info.is_main:
            stages = sorted({".".join(k.split(".")[:2]) for k in fresh})
            print(f"starting from {init_weights}" + (f"; new: {', '.join(stages)} (a copy of the last trained "
                                                     "stage, its map inputs weighted zero)" if fresh else ""),
                  file=sys.stderr)
    resume_step = int(run.state["step"]) if last is not None else None
    if wrap_source is not None:
        source = wrap_source(source, run.net, resume_step)
    run.time_base = float(run.state["time_s"])
    columns = metrics_columns(cfg.model.num_stages)
    run.metrics = MetricsWriter(run_dir / METRICS_FILE, columns, info.is_main, resume_step=resume_step)
    if info.is_main:
        save_yaml(cfg, run_dir / RUN_CONFIG_FILE)
    if info.distributed:
        from torch.nn.parallel import DistributedDataParallel

        run.model = DistributedDataParallel(model, device_ids=[info.local_rank] if info.device != "cpu" else None)
    return run, source


def build_loader(run: _Run, source):
    """The DataLoader of this rank's batches from the current step on."""
    import torch

    start = int(run.state["step"])
    total = run.state["total_steps"]
    stop = total if (total is not None and not run.time_mode) else sys.maxsize
    batches = StepBatches(start, stop, run.cfg.train.batch_size, run.info.rank, run.info.world_size,
                          run.per_epoch_steps, run.record_count)
    # its own generator: a DataLoader draws its workers' base seed when iterated, and from the global RNG
    # that would be one draw more in a resumed run than in one never stopped (the saved RNG state, and an
    # --extend after it, would differ); samples are pure functions of their index, whatever the seed
    generator = torch.Generator().manual_seed(int(run.cfg.train.seed) * 1_000_003 + start)
    return torch.utils.data.DataLoader(source, batch_sampler=batches, num_workers=run.cfg.data.workers,
                                       collate_fn=collate_good, persistent_workers=False, generator=generator)


def _validation_records(cfg: RunConfig, info) -> list:
    """This rank's share of the fixed, unaugmented validation set."""
    d = cfg.data
    spec = d.val_spec or ("synth" if d.spec == "synth" else d.spec)
    records = load_eval_records(spec, d.val_frames, SYNTH_VAL_SEED, d.synth_resolution, d.skip_bad,
                                centers=d.val_centers, synth_engine=d.synth_engine)
    return records[info.rank::info.world_size]


# --------------------------------------------------------------------------- one step, validation, checkpoint


def train_step(run: _Run, batch: dict | None) -> tuple[int, float, list[float]]:
    """One optimizer step on ``batch``: (samples, loss, per-stage mean error in mm)."""
    import torch

    from srnpose.training.losses import srn_loss

    t, info, model, optimizer = run.cfg.train, run.info, run.model, run.optimizer
    if batch is None:  # a batch of bad frames only: nothing to learn from
        if info.distributed:  # the other ranks step: join them with a zero gradient
            size = run.cfg.model.input_size
            out = model(torch.ones(1, 1, size, size, device=info.device))
            optimizer.zero_grad(set_to_none=True)
            (out.stage_joints[-1].sum() * 0.0).backward()
            optimizer.step()
        return 0, 0.0, [0.0] * run.cfg.model.num_stages
    depth = batch["depth"].to(info.device)
    target = batch["joints_nrm"].to(info.device)
    out = model(depth)
    target_fields = None
    if any(f is not None for f in out.stage_fields):  # detection stages: supervise their fields
        with torch.no_grad():
            target_fields = run.net.target_fields(depth, target)  # (B, 4J, F, F)
    loss, _ = srn_loss(out.stage_joints, target, t.loss_beta, stage_fields=out.stage_fields,
                       target_fields=target_fields, field_weight=t.field_loss_weight)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if t.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
    optimizer.step()
    with torch.no_grad():
        gt = uvd_to_xyz_batched(batch["joints_uvd"], batch["intrinsics"])  # (B, J, 3)
        stage_mm = [float((nrm_to_xyz(j.detach().cpu().double(), batch, depth.shape[-1]) - gt).norm(dim=-1).mean())
                    for j in out.stage_joints]
    return int(depth.shape[0]), float(loss.detach()), stage_mm


def validate(run: _Run) -> list[float]:
    """Per-stage mean error (mm) on the validation set, through the frame-path engine with the run's
    centre policy (the frames whose hand is found; all ranks together). On engine v2's synthetic frames
    the first crop sits at the labelled joints' centroid (:func:`srnpose.data.sampling.synthetic_first_crop`)."""
    d, m = run.cfg.data, run.cfg.model
    sums = [0.0] * (1 + m.num_stages)
    if run.val_records:
        engine = FramePath(TorchRunner(run.model), m.input_size, m.num_stages, m.num_joints,
                           CenterPolicy.from_config(run.cfg), d.layout or "canonical")
        first_crop = synthetic_first_crop(d.val_spec or d.spec, d.synth_engine)
        scores = score_estimates(estimate_records(engine, run.val_records, first_crop,
                                                  batch_size=max(run.cfg.train.batch_size, 16)), run.val_records)
        n = int(scores.found.sum())
        if n:
            sums = [float(n)] + [mm * n for mm in scores.stage_mm]
    sums = distributed.all_reduce_sum(sums, run.info)
    return [s / max(sums[0], 1.0) for s in sums[1:]]


def save_last(run: _Run) -> None:
    """``RUN/last``: weights, config, optimizer, counters and RNG states (rank 0)."""
    run.state["time_s"] = run.elapsed()
    if run.info.is_main:
        state = dict(run.state, optimizer=run.optimizer.state_dict(), rng=rng_state())
        save_checkpoint(run.run_dir / "last", run.net, run.cfg, state)


# --------------------------------------------------------------------------- bookkeeping


def _commit_length(run: _Run, step: int) -> None:
    """A --minutes run: after timing ``COMMIT_AFTER_STEPS`` steps, commit to the step count that fits
    the budget (averaged over ranks), once. The cosine schedule then runs over that count, also
    across restarts."""
    if not run.time_mode or run.state["total_steps"] is not None or len(run.step_times) < COMMIT_AFTER_STEPS:
        return
    per = float(np.median(run.step_times[2:]))
    estimate = step + max(int((run.cfg.train.minutes * 60.0 - run.elapsed()) / per), 1)
    run.state["total_steps"] = int(distributed.all_reduce_sum([estimate], run.info)[0] / run.info.world_size)
    if run.bar is not None:
        run.bar.total = run.state["total_steps"]
        run.bar.refresh()


def _log_train_row(run: _Run, step: int, lr: float) -> None:
    state, stages = run.state, run.cfg.model.num_stages
    sums = distributed.all_reduce_sum(state["acc"] + [state["acc_bad"]], run.info)
    n = max(sums[0], 1.0)
    row = {"step": step, "epoch": state["epoch"], "split": "train", "loss": sums[1] / n, "lr": lr,
           "time_s": run.elapsed(), "samples": state["samples"], "bad_frames": int(sums[-1])}
    row.update({f"stage{s + 1}_mm": sums[2 + s] / n for s in range(stages)})
    run.metrics.write(row)
    if run.bar is not None:
        run.bar.set_postfix_str(f"loss {row['loss']:.4f} | mm " + " ".join(
            f"{row[f'stage{s + 1}_mm']:.1f}" for s in range(stages)))
    state["acc"] = [0.0] * len(state["acc"])
    state["acc_bad"] = 0


def _validate_and_log(run: _Run, step: int, lr: float) -> list[float]:
    val = validate(run)
    state = run.state
    row = {"step": step, "epoch": state["epoch"], "split": "val", "loss": "", "lr": lr, "time_s": run.elapsed(),
           "samples": state["samples"], "bad_frames": state["bad_frames"]}
    row.update({f"stage{s + 1}_mm": mm for s, mm in enumerate(val)})
    run.metrics.write(row)
    if run.bar is not None:
        run.bar.write(f"step {step}: validation mean error per stage (mm): " + " ".join(f"{mm:.2f}" for mm in val))
    if val and val[-1] < state["best_mm"]:
        state["best_mm"], state["best_step"] = float(val[-1]), step
        if run.info.is_main:
            save_checkpoint(run.run_dir / "best", run.net, run.cfg)
    return val


def _finished(run: _Run, step: int) -> bool:
    total, t = run.state["total_steps"], run.cfg.train
    done = total is not None and step >= total
    budget_s = t.minutes * 60.0 if t.minutes is not None else None
    if budget_s is not None:
        cap = budget_s * (TIME_CAP_FACTOR if run.time_mode and total is not None else 1.0)
        out_of_time = run.elapsed() >= cap
        if run.info.distributed:  # stop together: any rank out of time
            out_of_time = distributed.all_reduce_sum([float(out_of_time)], run.info)[0] > 0
        done = done or out_of_time
    return done


def _loop(run: _Run, loader, on_step) -> list[float] | None:
    """Steps until the run's length; logs, validates and checkpoints on the way."""
    t, state = run.cfg.train, run.state
    per_step = t.batch_size * run.info.world_size
    last_val, step, t0 = None, int(state["step"]), time.perf_counter()
    for batch, bad, fatal in loader:
        if fatal:
            raise UserError(f"{fatal[0]} (pass --skip-bad to skip and count bad frames)")
        state["bad_frames"] += len(bad)
        state["acc_bad"] += len(bad)
        for message in bad:
            if run.bar is not None:
                run.bar.write(f"skipping bad frame: {message}")
        lr = lr_at(step, t, run.steps_per_epoch, state["total_steps"], run.info.world_size)
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        n, loss, stage_mm = train_step(run, batch)
        step += 1
        state.update(step=step, samples=state["samples"] + per_step, epoch=int(step // run.steps_per_epoch))
        acc = state["acc"]
        acc[0] += n
        acc[1] += loss * n
        for s, mm in enumerate(stage_mm):
            acc[2 + s] += mm * n
        now = time.perf_counter()
        run.step_times.append(now - t0)  # the whole iteration, data loading included
        t0 = now
        _commit_length(run, step)
        if step % t.log_every == 0:
            _log_train_row(run, step, lr)
        if run.bar is not None:
            run.bar.update(1)
        finished = _finished(run, step)
        if step % t.val_every == 0 or finished:
            last_val = _validate_and_log(run, step, lr)
        if step % t.ckpt_every == 0 or finished:
            save_last(run)
            run.saved_step = step
        if on_step is not None:
            on_step(step, run.info, run.net)
        if finished:
            break
    return last_val


# --------------------------------------------------------------------------- the run


def _threads(cfg: RunConfig, info) -> None:
    import torch

    if cfg.train.threads:
        torch.set_num_threads(int(cfg.train.threads))
    elif info.device == "cpu" and cfg.data.workers > 0:
        # leave the loader processes their cores: on 2 cores, 1 thread + 1 loader trains 1.6x faster
        # than 2 threads competing with the loader (316 vs 195 samples/s, demo preset)
        torch.set_num_threads(max(1, torch.get_num_threads() - int(cfg.data.workers)))


def train(cfg: RunConfig, run_dir: str | Path, resume: bool = False, progress: bool = True,
          on_step=None, extend: bool = False, init_weights: str | Path | None = None,
          wrap_source=None) -> TrainResult:
    """Train a run in ``run_dir``; ``resume=True`` continues it from ``last/`` when it holds a complete
    checkpoint (else starts it). Works alone or under torchrun (one call per rank). ``extend``: the
    config's length is longer than the saved run's (a time budget commits to a new step count).

    ``on_step(step, info, model)``: an optional callback after every optimizer step, with the rank's
    distributed info and its (unwrapped) model (tests, demos). ``init_weights`` and ``wrap_source``: see
    :func:`setup_run` (:mod:`srnpose.training.adapt` fine-tunes with them).
    """
    import torch

    run_dir = Path(run_dir)
    check(cfg)
    cfg = resolve_data(cfg)
    info = distributed.setup(cfg.train.device)
    threads_before = torch.get_num_threads()
    _threads(cfg, info)
    created = not run_dir.exists()
    try:
        with remove_if_nothing_saved(run_dir, created and info.is_main), run_lock(run_dir, info.is_main):
            if info.is_main:
                check_run_dir(run_dir, resume)
            distributed.barrier(info)
            run, source = setup_run(cfg, run_dir, resume, info, extend,
                                    None if init_weights is None else Path(init_weights), wrap_source)
            run.val_records = _validation_records(cfg, info)
            start_step = int(run.state["step"])
            if progress and info.is_main:
                from tqdm import tqdm

                run.bar = tqdm(total=run.state["total_steps"], initial=start_step, desc="train", unit="step",
                               dynamic_ncols=True, file=sys.stderr)
            last_val = _run_loop_saving(run, build_loader(run, source), on_step, start_step)
            distributed.barrier(info)
        done = int(run.state["step"]) - start_step
        per_step = cfg.train.batch_size * info.world_size
        best = run.state["best_mm"]
        return TrainResult(run_dir=run_dir, step=int(run.state["step"]), val_stage_mm=last_val,
                           best_mm=float(best) if math.isfinite(best) else None,
                           bad_frames=int(run.state["bad_frames"]) + getattr(source, "load_skipped", 0),
                           samples_per_s=done * per_step / max(time.perf_counter() - run.started, 1e-9))
    finally:
        torch.set_num_threads(threads_before)
        distributed.teardown(info)


# Tries at saving last/ when a run stops early. A kill sent to the whole process group (a terminal's
# Ctrl-C or hang-up, a service manager's stop) also stops the loader processes, and torch reports each
# dead worker by raising in the main process, wherever it is: in the middle of that save, the first time.
SAVE_TRIES = 3


def _save_before_stopping(run: _Run, step: int) -> None:
    """Save last/ (checkpoints are written aside and renamed: a failed try leaves nothing half-written);
    report, never raise: the error that stopped the run is the one to see."""
    for attempt in range(1, SAVE_TRIES + 1):
        try:
            save_last(run)
        except DiskFullError as exc:  # a second try would fail too
            print(f"could not save {run.run_dir / 'last'}: {exc}", file=sys.stderr)
            return
        except Exception as exc:  # noqa: BLE001 - report, but raise the original error
            if attempt == SAVE_TRIES:
                print(f"could not save {run.run_dir / 'last'}: {exc}", file=sys.stderr)
                return
            continue
        print(f"saved {run.run_dir / 'last'} at step {step} before stopping", file=sys.stderr)
        return


def _run_loop_saving(run: _Run, loader, on_step, start_step: int) -> list[float] | None:
    """:func:`_loop`, saving ``last/`` if anything (an error, Ctrl-C, SIGTERM) stops it early."""
    import threading

    def on_sigterm(signum, frame):  # turn a polite kill into an exception: last/ gets saved
        raise KeyboardInterrupt(f"signal {signum}")

    previous = None
    if run.info.is_main and threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    run.saved_step = start_step
    try:
        return _loop(run, loader, on_step)
    except DiskFullError as exc:  # no second save: it would fail too; the complete checkpoints are intact
        raise DiskFullError(f"{exc.head or exc}; {kept_checkpoint(run.run_dir / 'last')}: free some space, then "
                            "rerun with --resume") from None
    except BaseException:
        # Never lose a run: save what we have (rank 0), then let the error through.
        step = int(run.state["step"])
        if run.info.is_main and step > run.saved_step:
            _save_before_stopping(run, step)
        raise
    finally:
        if run.bar is not None:
            run.bar.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
