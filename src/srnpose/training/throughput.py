"""Training throughput: samples/s of a run config on this machine, what limits it, and where a step goes.

    report = throughput_report([bench_entry("release"), bench_entry("stacked")], steps=10)
    print(format_report(report))  # srnpose.training.throughput_text; `srnpose benchmark --train`

Every figure runs the training loop's own code (:mod:`srnpose.training.loop`): ``setup_run`` builds the
model, the optimizer and the sample source as ``srnpose train`` does (same seed, same config), and
``train_step`` takes every step. Per entry (a config and its :class:`StepOptions`):

* ``compute``: steps on pre-cropped batches (forward, loss, backward, optimizer, and the per-stage mm
  error ``train_step`` logs), no data path;
* ``end_to_end``: the training data path included, as training runs it: ``build_loader``'s DataLoader
  (``data.workers`` loader processes; the synthetic frames rendered, centred, cropped and augmented by
  :class:`~srnpose.data.sampling.SampleSource`) beside ``threads`` torch threads (training's rule:
  ``train.threads``, else the cores less one per loader process);
* ``share_of_matmul``: ``3 x forward GFLOPs x samples/s / matmul GFLOP/s``, the training FLOP rate (a
  backward pass costs about twice a forward) over a plain fp32 (1024, 1024) matmul's rate
  (:func:`srnpose.inference.bench.matmul_gflops`) timed in the same run on as many threads as the
  training process uses. It is not a bound: it can exceed 1;
* ``profile``: where a step's time goes (median ms per step): the data path per sample (``render``: the
  synthetic frame; ``crop``: centre, crop, augment and normalize, ``prepare_sample``), ``collate`` per
  batch, and a compute step cut by timers at module and optimizer hooks (no code of the step changed):
  ``reparam`` (the feature pixels' 3D points and every ``encode_maps`` + concatenation between stages),
  ``stem``, ``stage1`` .. ``stageK`` (forward), ``loss_backward`` (loss, zero_grad, backward),
  ``optimizer`` (its step), ``metrics`` (``train_step``'s per-stage mm error) and ``other`` (the rest:
  input transfer, output packing). On a CPU every op returns when it is done, so wall-clock timers are
  honest; the components of a step sum to its time. The data path's figures are means per sample (a
  frame that serves several samples, ``frame_reuse``, costs once). The same cuts in this process's CPU time
  (``components_cpu_ms``) are what a one-thread step costs on a core nobody else uses.

Entries are timed in interleaved rounds (every entry's compute, profile and end-to-end steps, then the
next round), so a shared machine's load slows them alike; compare entries of one report, not across
reports, and prefer :func:`paired_ratio` (the median over rounds of the ratio of two entries' rates in
the same round) to a ratio of overall rates. Warm-up steps (and each round's first loader steps, while its processes start) are not timed.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from srnpose.errors import UserError
from srnpose.inference.backends import torch_threads

__all__ = [
    "BENCH_PRESETS",
    "STACKED_STAGES",
    "HEAVY_GFLOPS",
    "StepOptions",
    "BenchEntry",
    "equal_flops_width",
    "bench_config",
    "bench_entry",
    "training_threads",
    "share_of_matmul",
    "throughput_report",
    "paired_ratio",
]

# What `srnpose benchmark --train` times by default: the shipped model, its one-stage base, the demo, the
# paper's model and a stacked candidate (STACKED_STAGES regression stages at the width whose FLOPs are
# nearest the one-stage base's).
BENCH_PRESETS = ("release", "release-base", "demo", "paper", "stacked")
STACKED_STAGES = 3
# Configs above this forward cost (GFLOPs per sample; the paper's model is 2.9) get at most 2 timed
# steps and 1 warm-up step per round: one step of 32 takes seconds on a CPU.
HEAVY_GFLOPS = 1.0
HEAVY_STEPS = 2


@dataclass(frozen=True)
class StepOptions:
    """How a step runs, beyond the run config (the variants the benchmark compares).

    None keeps training's own choice."""

    channels_last: bool | None = None  # model weights (and so activations) in channels-last memory format
    bf16: bool = False  # torch.autocast("cpu", dtype=torch.bfloat16) around the forward pass
    threads: int | None = None  # torch intra-op threads of the training process
    workers: int | None = None  # loader processes (data.workers)
    batch_size: int | None = None  # train.batch_size
    optimizer_impl: str | None = None  # "loop" (a per-tensor loop) or "fused": train.fused_optimizer
    # Each rendered frame serves this many consecutive samples (own centre jitter / augmentation each):
    # a change of the training data, not only of its speed; it needs a quality check before training uses it.
    frame_reuse: int = 1

    def label(self) -> str:
        parts = [f"{k}={v}" for k, v in dataclasses.asdict(self).items()
                 if v != getattr(StepOptions, k, None) and v is not None]
        return ", ".join(parts) or "as training"


OPTIMIZER_IMPLS = ("loop", "fused")


@dataclass
class BenchEntry:
    """One row of the report: a name, a resolved run config, and how its steps run."""

    name: str
    preset: str  # a training preset, or "stacked" (see bench_config)
    cfg: Any  # RunConfig, resolved
    options: StepOptions = field(default_factory=StepOptions)


@dataclass
class _Bench:
    """An entry ready to time: its run (model, optimizer, counters) and sample source."""

    entry: BenchEntry
    run: Any  # loop._Run
    source: Any  # SampleSource
    threads: int
    workers: int
    batch_size: int
    gflops: float
    params: int
    next_step: int = 0  # the next unused step of the sample stream (every timed batch is new)
    compute_batches: list = field(default_factory=list)
    timed: dict = field(default_factory=lambda: {"compute": [], "end_to_end": []})  # (round, samples, ms) per step
    round: int = 0
    components: list = field(default_factory=list)  # one dict of ms per profiled step
    components_cpu: list = field(default_factory=list)  # the same in CPU ms
    data_ms: list = field(default_factory=list)  # per sample: render, crop (wall) and their CPU times
    collate_ms: list = field(default_factory=list)


# --------------------------------------------------------------------------- configs


@functools.lru_cache(maxsize=32)
def equal_flops_width(num_stages: int, gflops: float, base=None, widths=range(4, 129)) -> int:
    """The width whose ``num_stages``-stage SRN (``base``'s other fields) has the forward GFLOPs nearest
    ``gflops`` (:func:`srnpose.model.flops.model_summary`, a meta-device count: fast)."""
    from srnpose.config import MODEL_PRESETS
    from srnpose.model import model_summary

    base = base or MODEL_PRESETS["release-base"]
    best, best_gap = None, float("inf")
    for w in widths:
        g = model_summary(dataclasses.replace(base, num_stages=num_stages, width=w))["gflops"]
        if abs(g - gflops) < best_gap:
            best, best_gap = w, abs(g - gflops)
        if g > gflops:  # FLOPs grow with the width
            break
    return int(best)


def bench_config(name: str, overrides: list[str] | tuple[str, ...] = ()):
    """The resolved run config of ``name``: a training preset (``srnpose.training.run_config.PRESETS``) on
    the synthetic stream, or ``"stacked"``: the release-base preset's recipe with ``STACKED_STAGES``
    regression stages at its one stage's FLOPs (:func:`equal_flops_width`; ``"stacked2"`` .. ``"stacked5"``: that
    many stages). ``overrides``: ``--set`` strings."""
    from srnpose.config import apply_overrides
    from srnpose.model import model_summary
    from srnpose.training.run_config import PRESETS, build_config, check, resolve_data

    if name.startswith("stacked") and name[len("stacked"):] in ("", "2", "3", "4", "5"):
        stages = int(name[len("stacked"):] or STACKED_STAGES)
        release = build_config("release-base", None, ["data.spec=synth"])
        width = equal_flops_width(stages, model_summary(release.model)["gflops"], release.model)
        cfg = dataclasses.replace(release, model=dataclasses.replace(release.model, num_stages=stages, width=width))
        cfg = apply_overrides(cfg, list(overrides))
        check(cfg)
    elif name in PRESETS:
        cfg = build_config(name, None, ["data.spec=synth", *overrides])
    else:
        raise UserError(f"unknown preset {name!r}; valid: {', '.join(list(PRESETS) + ['stacked'])}")
    return resolve_data(cfg)


def bench_entry(name: str, options: StepOptions | None = None, label: str | None = None,
                overrides: list[str] | tuple[str, ...] = ()) -> BenchEntry:
    """A report entry: ``bench_config(name, overrides)`` run with ``options``, called ``label``."""
    options = options or StepOptions()
    if options.optimizer_impl is not None and options.optimizer_impl not in OPTIMIZER_IMPLS:
        raise UserError(f"optimizer_impl: expected one of {', '.join(OPTIMIZER_IMPLS)}, got {options.optimizer_impl!r}")
    return BenchEntry(label or name, name, bench_config(name, overrides), options)


def training_threads(cfg, workers: int) -> int:
    """The torch threads training gives its process: ``train.threads``, else the cores less one per
    loader process (at least 1), as :func:`srnpose.training.loop.train` sets them."""
    from srnpose.inference.backends import cores

    if cfg.train.threads:
        return int(cfg.train.threads)
    return max(1, cores() - int(workers)) if workers > 0 else cores()


def share_of_matmul(gflops: float, samples_per_s: float, matmul_gflops_per_s: float) -> float:
    """``3 x gflops x samples_per_s / matmul_gflops_per_s``: the training FLOP rate over the matmul's."""
    return 3.0 * float(gflops) * float(samples_per_s) / float(matmul_gflops_per_s)


# --------------------------------------------------------------------------- set up


def _bf16_forward(model):
    """``model`` wrapped so that its forward runs under bf16 autocast and returns fp32 joints and fields
    (the loss, the backward's accumulation and the optimizer stay fp32)."""
    import torch
    from torch import nn

    from srnpose.model.srn import SRNOutput

    class Bf16Forward(nn.Module):
        def __init__(self, module) -> None:
            super().__init__()
            self.module = module  # train_step's run.net unwraps `.module`

        def forward(self, x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = self.module(x)
            return SRNOutput([j.float() for j in out.stage_joints],
                             [None if f is None else f.float() for f in out.stage_fields])

    return Bf16Forward(model)


class _ReusedFrames:
    """A synthetic :class:`~srnpose.data.sampling.SampleSource` whose frames each serve ``reuse``
    consecutive samples: sample ``g`` crops frame ``g // reuse`` (rendered once, kept until the next)
    with its own ``default_rng([seed, g])``, as ``SampleSource.__getitem__`` does."""

    def __init__(self, source, reuse: int) -> None:
        if source.records is not None:
            raise UserError("frame_reuse: only for the synthetic stream")
        self.source, self.reuse = source, int(reuse)
        self.records, self.crop_cfg, self.policy = None, source.crop_cfg, source.policy
        self.seed, self.skip_bad = source.seed, source.skip_bad
        self._frame: tuple[int, Any] = (-1, None)

    def _record(self, g: int):
        f = int(g) // self.reuse
        if self._frame[0] != f:
            self._frame = (f, self.source._record(f))
        return self._frame[1]

    def __getitem__(self, g: int) -> dict:
        from srnpose.data.sampling import prepare_sample

        try:
            return prepare_sample(self._record(g), self.crop_cfg, self.policy, np.random.default_rng([self.seed, int(g)]))
        except UserError as exc:
            return {"bad": str(exc), "fatal": False}


def _build(entry: BenchEntry) -> _Bench:
    """Model, optimizer and sample source of ``entry`` as ``srnpose train`` builds them (``setup_run``)."""
    from srnpose.model import model_summary
    from srnpose.training.distributed import DistInfo
    from srnpose.training.loop import setup_run

    cfg, opt = entry.cfg, entry.options
    train = cfg.train
    if opt.batch_size is not None:
        train = dataclasses.replace(train, batch_size=int(opt.batch_size))
    if opt.channels_last is not None:
        train = dataclasses.replace(train, channels_last=bool(opt.channels_last))
    if opt.optimizer_impl is not None:
        train = dataclasses.replace(train, fused_optimizer=opt.optimizer_impl == "fused")
    data = cfg.data if opt.workers is None else dataclasses.replace(cfg.data, workers=int(opt.workers))
    cfg = dataclasses.replace(cfg, train=train, data=data)
    info = DistInfo(rank=0, world_size=1, local_rank=0, device="cpu", backend=None)
    with tempfile.TemporaryDirectory(prefix="srnpose-throughput-") as tmp:  # config.yaml, metrics.csv header
        run, source = setup_run(cfg, Path(tmp), False, info)
    run.state["total_steps"] = None  # an open-ended stream: the loader never runs out
    model = run.model
    if opt.bf16:
        run.model = _bf16_forward(model)
    if opt.frame_reuse > 1:
        source = _ReusedFrames(source, opt.frame_reuse)
    workers = int(cfg.data.workers)
    threads = int(opt.threads) if opt.threads else training_threads(cfg, workers)
    summary = model_summary(cfg.model)
    entry = dataclasses.replace(entry, cfg=cfg)
    run.cfg = cfg
    return _Bench(entry, run, source, threads, workers, int(cfg.train.batch_size), float(summary["gflops"]),
                  int(summary["params"]))


def _take_indices(b: _Bench, count: int) -> list[int]:
    """The global sample indices of the next ``count`` batches of the stream (never reused)."""
    from srnpose.data.sampling import StepBatches

    sampler = StepBatches(b.next_step, b.next_step + count, b.batch_size, 0, 1)
    b.next_step += count
    return [g for step in sampler for g in step]


# --------------------------------------------------------------------------- timers


class _StepTimer:
    """Timestamps (wall clock and this process's CPU time) at the model's, the stem's and every stage's
    forward entry and exit, and around the optimizer's step: cuts one ``train_step`` into components (ms)
    without changing its code."""

    def __init__(self, net, optimizer) -> None:
        self.events: list[tuple[str, float, float]] = []
        self.handles = []
        mods = [("model", net), ("stem", net.stem)] + [(f"stage{s + 1}", m) for s, m in enumerate(net.stages)]
        for name, mod in mods:
            self.handles.append(mod.register_forward_pre_hook(self._mark(name + ":in")))
            self.handles.append(mod.register_forward_hook(self._mark(name + ":out")))
        self.handles.append(optimizer.register_step_pre_hook(self._mark("optimizer:in")))
        self.handles.append(optimizer.register_step_post_hook(self._mark("optimizer:out")))
        self.stages = len(net.stages)

    def _mark(self, name: str):
        def hook(*_args, **_kwargs):
            self.events.append((name, time.perf_counter(), time.process_time()))
        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()

    @staticmethod
    def now() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def components(self, start: tuple[float, float], end: tuple[float, float]) -> tuple[dict, dict]:
        """The last step's components in ms, of wall clock and of CPU time (each sums to ``end - start``)."""
        out = []
        for i in (0, 1):
            t = {name: stamps[i] for name, *stamps in self.events}
            ms = {}
            reparam = t["stem:in"] - t["model:in"]  # pixel_points: every feature pixel's 3D point and mask
            for s in range(1, self.stages):
                reparam += t[f"stage{s + 1}:in"] - t[f"stage{s}:out"]  # encode_maps + torch.cat
            ms["reparam"] = reparam
            ms["stem"] = t["stem:out"] - t["stem:in"]
            for s in range(self.stages):
                ms[f"stage{s + 1}"] = t[f"stage{s + 1}:out"] - t[f"stage{s + 1}:in"]
            ms["loss_backward"] = t["optimizer:in"] - t["model:out"]
            ms["optimizer"] = t["optimizer:out"] - t["optimizer:in"]
            ms["metrics"] = end[i] - t["optimizer:out"]
            ms["other"] = (t["model:in"] - start[i]) + (t["model:out"] - t[f"stage{self.stages}:out"])
            out.append({k: 1e3 * v for k, v in ms.items()})
        self.events.clear()
        return out[0], out[1]


def _compute_round(b: _Bench, steps: int, warmup: int) -> None:
    from srnpose.training.loop import train_step

    with torch_threads(b.threads):
        for i in range(warmup + steps):
            batch = b.compute_batches[i % len(b.compute_batches)]
            c0, t0 = time.process_time(), time.perf_counter()
            n, _, _ = train_step(b.run, batch)
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            if i >= warmup:
                b.timed["compute"].append((b.round, n, 1e3 * dt, 1e3 * cpu))


def _timed_sample(source, g: int) -> tuple[dict, dict[str, float]]:
    """``source[g]`` (:meth:`~srnpose.data.sampling.SampleSource.__getitem__`'s two steps) with timers
    between them: (sample, seconds of wall clock and of this process's CPU for ``render`` (the frame:
    rendered, or the record) and ``crop`` (centre, crop, augment, normalize))."""
    from srnpose.data.sampling import prepare_sample

    c0, t0 = time.process_time(), time.perf_counter()
    record = source._record(int(g))
    c1, t1 = time.process_time(), time.perf_counter()
    try:
        sample = prepare_sample(record, source.crop_cfg, source.policy, np.random.default_rng([source.seed, int(g)]))
    except UserError as exc:
        sample = {"bad": str(exc), "fatal": not source.skip_bad and source.records is not None}
    c2, t2 = time.process_time(), time.perf_counter()
    return sample, {"render": t1 - t0, "crop": t2 - t1, "render_cpu": c1 - c0, "crop_cpu": c2 - c1}


def _profile_round(b: _Bench, steps: int) -> None:
    """``steps`` profiled compute steps, and the data path of as many batches, sample by sample."""
    from srnpose.data.sampling import collate_good
    from srnpose.training.loop import train_step

    timer = _StepTimer(b.run.net, b.run.optimizer)
    try:
        with torch_threads(b.threads):
            for i in range(steps):
                batch = b.compute_batches[i % len(b.compute_batches)]
                timer.events.clear()
                start = timer.now()
                train_step(b.run, batch)
                wall, cpu = timer.components(start, timer.now())
                b.components.append(wall)
                b.components_cpu.append(cpu)
    finally:
        timer.remove()
    for _ in range(steps):
        samples = []
        for g in _take_indices(b, 1):
            sample, seconds = _timed_sample(b.source, g)
            samples.append(sample)
            b.data_ms.append({k: 1e3 * v for k, v in seconds.items()})
        t0 = time.perf_counter()
        collate_good(samples)
        b.collate_ms.append(1e3 * (time.perf_counter() - t0))


def _e2e_round(b: _Bench, steps: int, warmup: int) -> None:
    """``warmup + steps`` steps through training's DataLoader, started afresh at the next unused step."""
    from srnpose.training.loop import build_loader, train_step

    b.run.state["step"] = b.next_step
    loader = build_loader(b.run, b.source)
    batches = iter(loader)
    with torch_threads(b.threads):
        try:
            t = time.perf_counter()
            for i in range(warmup + steps):
                batch, _, fatal = next(batches)
                if fatal:
                    raise UserError(fatal[0])
                n, _, _ = train_step(b.run, batch)
                now = time.perf_counter()
                if i >= warmup:
                    b.timed["end_to_end"].append((b.round, n, 1e3 * (now - t), None))
                t = now
        finally:
            del batches  # stops the loader's processes
    b.next_step += warmup + steps


# --------------------------------------------------------------------------- the report


def _rate(timed: list[tuple[int, int, float, float | None]], rounds: int) -> dict[str, Any]:
    """The median of the timed steps' rates (samples / seconds: robust to another process's burst), the
    step time's median and 90th percentile, each round's rate (its samples over its seconds), and, where
    measured, the rate in this process's CPU seconds (``cpu_samples_per_s``: what one unshared core would
    give a one-thread step; with more threads it counts every thread's time, waiting included)."""
    ms = [t for _, _, t, _ in timed]
    per_round = []
    for r in range(rounds):
        n_r = sum(n for k, n, _, _ in timed if k == r)
        s_r = sum(t for k, _, t, _ in timed if k == r) / 1e3
        per_round.append(n_r / s_r if s_r > 0 else 0.0)
    out = {"samples_per_s": float(np.median([1e3 * n / t for _, n, t, _ in timed])), "steps": len(ms),
           "step_ms": {"p50": float(np.median(ms)), "p90": float(np.percentile(ms, 90))},
           "round_samples_per_s": per_round}
    cpu = [(n, c) for _, n, _, c in timed if c is not None and c > 0]
    if cpu:
        out["cpu_samples_per_s"] = float(np.median([1e3 * n / c for n, c in cpu]))
    return out


def _matmul_rates(threads: set[int], repeats: int) -> dict[str, float]:
    from srnpose.inference.bench import matmul_gflops

    return {str(n): float(matmul_gflops(n, repeats=repeats)) for n in sorted(threads)}


def throughput_report(entries: list[BenchEntry], steps: int = 10, warmup: int = 2, rounds: int = 2,
                      scopes: tuple[str, ...] = ("compute", "end_to_end", "profile"), matmul_repeats: int = 15,
                      progress=None) -> dict:
    """Time every entry (see the module docstring), interleaved in ``rounds``; ``steps`` timed steps per
    figure and round (at most ``HEAVY_STEPS`` for a config over ``HEAVY_GFLOPS``), after ``warmup`` steps.

    ``progress(message)``: called before each entry's round (None: silent). Returns plain data::

        {"machine": {..., "matmul_gflops_per_s": {threads: GFLOP/s}, "loadavg_at_start", "loadavg_at_end"},
         "settings": {"steps", "warmup", "rounds", "scopes", "statistic"},
         "results": [{"name", "preset", "options", "model": {"params", "gflops", "input_size", "width",
                      "num_stages", "stage_kind", "reparam"}, "batch_size", "threads", "workers", "config",
                      "compute" | "end_to_end": {"samples_per_s", "steps", "step_ms": {"p50", "p90"},
                                                 "round_samples_per_s", "train_gflops_per_s", "share_of_matmul",
                                                 "cpu_samples_per_s" (compute only)},
                      "profile": {"step_ms", "components_ms": {...}, "cpu_step_ms", "components_cpu_ms": {...},
                                  "data_ms_per_sample": {"render", "crop", "render_cpu", "crop_cpu"},
                                  "collate_ms_per_batch", "steps"},
                      "limit": {"compute_cpu_ms_per_sample", "data_cpu_ms_per_sample", "bound",
                                "unshared_samples_per_s"}  (with compute and profile)}]}
    """
    from srnpose.config import to_dict
    from srnpose.data.sampling import collate_good
    from srnpose.inference.bench import machine_info

    if steps < 1 or rounds < 1 or warmup < 0:
        raise UserError(f"steps and rounds must be >= 1 and warmup >= 0, got {steps}, {rounds}, {warmup}")
    for s in scopes:
        if s not in ("compute", "end_to_end", "profile"):
            raise UserError(f"unknown scope {s!r}; valid: compute, end_to_end, profile")
    machine = machine_info()
    benches = [_build(e) for e in entries]
    for b in benches:  # pre-cropped batches for compute and profile: two, cycled
        for _ in range(2):
            batch, _, _ = collate_good([b.source[g] for g in _take_indices(b, 1)])
            b.compute_batches.append(batch)
    for r in range(rounds):
        for b in benches:
            b.round = r
            heavy = b.gflops > HEAVY_GFLOPS
            n, w = (min(steps, HEAVY_STEPS), min(warmup, 1)) if heavy else (steps, warmup)
            w_round = w if r == 0 else min(w, 1)
            if progress is not None:
                progress(f"round {r + 1}/{rounds}: {b.entry.name}")
            if "compute" in scopes:
                _compute_round(b, n, w_round)
            if "profile" in scopes:
                _profile_round(b, n)
            if "end_to_end" in scopes:
                _e2e_round(b, n, max(w, 1 + 2 * b.workers))  # a fresh loader: its processes start, prefetch
    matmul = _matmul_rates({b.threads for b in benches}, matmul_repeats)
    machine["matmul_gflops_per_s"] = matmul
    machine["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results = []
    for b in benches:
        m = b.entry.cfg.model
        res = {"name": b.entry.name, "preset": b.entry.preset, "options": dataclasses.asdict(b.entry.options),
               "model": {"params": b.params, "gflops": b.gflops, "input_size": m.input_size, "width": m.width,
                         "num_stages": m.num_stages, "stage_kind": m.stage_kind, "reparam": m.reparam},
               "batch_size": b.batch_size, "threads": b.threads, "workers": b.workers,
               "config": to_dict(b.entry.cfg)}
        for scope, timed in b.timed.items():
            if timed:
                rate = _rate(timed, rounds)
                rate["train_gflops_per_s"] = 3.0 * b.gflops * rate["samples_per_s"]
                rate["share_of_matmul"] = share_of_matmul(b.gflops, rate["samples_per_s"], matmul[str(b.threads)])
                res[scope] = rate
        if b.components:
            keys = list(b.components[0])
            res["profile"] = {
                "step_ms": float(np.median([sum(c.values()) for c in b.components])),
                "components_ms": {k: float(np.median([c[k] for c in b.components])) for k in keys},
                "cpu_step_ms": float(np.median([sum(c.values()) for c in b.components_cpu])),
                "components_cpu_ms": {k: float(np.median([c[k] for c in b.components_cpu])) for k in keys},
                "data_ms_per_sample": {k: float(np.mean([d[k] for d in b.data_ms])) for k in b.data_ms[0]},
                "collate_ms_per_batch": float(np.median(b.collate_ms)),
                "steps": len(b.components)}
        if "compute" in res and "profile" in res:
            res["limit"] = _limit(res, b)
        results.append(res)
    return {"machine": machine,
            "settings": {"steps": steps, "warmup": warmup, "rounds": rounds, "scopes": list(scopes),
                         "statistic": "samples/s = the median of the timed steps' samples / seconds; "
                                      "round_samples_per_s: each round's samples / seconds; "
                                      "profile: medians per step (ms), data path: means per sample (ms)",
                         "share_of_matmul": "3 x forward GFLOPs x samples/s / matmul GFLOP/s on the training "
                                            "process's threads"},
            "results": results}


def _limit(res: dict, b: _Bench) -> dict[str, Any]:
    """Which side bounds end to end, in CPU time per sample (robust to a shared machine's load): the
    step's (one thread: the compute rate in CPU seconds) against the data path's (render + crop +
    collate). ``unshared_samples_per_s`` models a machine with a core per process: min(compute, workers
    x data) with loader processes, 1 / (compute + data) without; None for a multi-thread step."""
    data = res["profile"]["data_ms_per_sample"]
    data_ms = data["render_cpu"] + data["crop_cpu"] + res["profile"]["collate_ms_per_batch"] / b.batch_size
    compute_ms = 1e3 / res["compute"]["cpu_samples_per_s"]
    estimate = None
    if b.threads == 1:
        estimate = (min(1e3 / compute_ms, b.workers * 1e3 / data_ms) if b.workers > 0
                    else 1e3 / (compute_ms + data_ms))
    return {"compute_cpu_ms_per_sample": compute_ms, "data_cpu_ms_per_sample": data_ms,
            "bound": "data path" if (data_ms / max(b.workers, 1)) > compute_ms else "compute",
            "unshared_samples_per_s": estimate}


def paired_ratio(report: dict, name: str, baseline: str, scope: str = "end_to_end") -> float | None:
    """The median over rounds of ``name``'s rate over ``baseline``'s in the same round (``scope``'s
    samples/s); None when either lacks the scope."""
    by = {r["name"]: r for r in report["results"]}
    a, b = by[name].get(scope), by[baseline].get(scope)
    if a is None or b is None:
        return None
    pairs = [x / y for x, y in zip(a["round_samples_per_s"], b["round_samples_per_s"]) if y > 0]
    return float(np.median(pairs)) if pairs else None
