"""Experiments beside the throughput benchmark (:mod:`srnpose.training.throughput`): the
re-parameterization's cost alone, and same-seed training comparisons of step variants (fp32 against
bf16, channels_last, fused Adam) on the same batches. ``benchmarks/bench_train.py --reparam`` and
``--accuracy`` print them."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from srnpose.inference.backends import torch_threads
from srnpose.training.throughput import (
    BenchEntry,
    StepOptions,
    _build,
    _take_indices,
    bench_entry,
)


def reparam_cost(cfg, batch_size: int = 32, repeats: int = 20, threads: int = 1, seed: int = 0) -> dict:
    """The re-parameterization alone on a ``cfg.model``-shaped problem (ms per call, median): the feature
    pixels' points (``pixel_points``), one ``encode_maps`` forward, and forward + backward of it (the
    gradient w.r.t. the joints, as end-to-end training takes it). Random joints on a random crop."""
    import torch

    from srnpose.model.reparam import encode_maps, pixel_points

    m = cfg.model
    g = torch.Generator().manual_seed(seed)
    depth = torch.rand(batch_size, 1, m.input_size, m.input_size, generator=g) * 2.0 - 1.0  # (B, 1, S, S)
    joints = (torch.rand(batch_size, m.num_joints, 3, generator=g) * 1.6 - 0.8).requires_grad_(True)  # (B, J, 3)
    out: dict[str, list[float]] = {"points": [], "encode": [], "encode_backward": []}
    with torch_threads(threads):
        for i in range(repeats + 2):
            t0 = time.perf_counter()
            points, mask = pixel_points(depth, m.feature_size)
            t1 = time.perf_counter()
            maps = encode_maps(joints, points, mask, m.reparam, m.theta, m.sigma)  # (B, C, F, F)
            t2 = time.perf_counter()
            maps.sum().backward()
            t3 = time.perf_counter()
            joints.grad = None
            if i >= 2:
                out["points"].append(1e3 * (t1 - t0))
                out["encode"].append(1e3 * (t2 - t1))
                out["encode_backward"].append(1e3 * (t3 - t1))
    return {k: float(np.median(v)) for k, v in out.items()}


def compare_training(name: str, variants: dict[str, StepOptions], steps: int = 200, val_frames: int = 100,
                     overrides: list[str] | tuple[str, ...] = (), progress=None) -> dict:
    """Train ``name``'s config once per variant from the same seed on the same batches (rendered once, in
    order; constant learning rate ``train.lr``), and compare: the loss of every step and the validation
    error (mm, per stage, through the loop's ``validate`` in fp32) at the end.

    Returns ``{"steps", "val_frames", "variants": {label: {"loss": [...], "val_stage_mm": [...],
    "seconds"}}}``; a variant's ``batch_size`` and ``workers`` are ignored (the batches are shared)."""
    from srnpose.data.sampling import collate_good, load_eval_records
    from srnpose.training.loop import train_step, validate
    from srnpose.training.run_config import SYNTH_VAL_SEED

    base = bench_entry(name, overrides=overrides)
    feeder = _build(base)
    batches = []
    for _ in range(steps):
        batch, _, _ = collate_good([feeder.source[g] for g in _take_indices(feeder, 1)])
        batches.append(batch)
    d = base.cfg.data
    val = load_eval_records("synth", val_frames, SYNTH_VAL_SEED, d.synth_resolution, synth_engine=d.synth_engine)
    out = {"steps": steps, "val_frames": val_frames, "variants": {}}
    for label, options in variants.items():
        options = dataclasses.replace(options, batch_size=None, workers=None)
        b = _build(BenchEntry(label, name, base.cfg, options))
        if progress is not None:
            progress(f"training {label}: {steps} steps")
        losses = []
        t0 = time.perf_counter()
        with torch_threads(b.threads):
            for batch in batches:
                losses.append(train_step(b.run, batch)[1])
        seconds = time.perf_counter() - t0
        b.run.val_records = val
        wrapped, b.run.model = b.run.model, b.run.net  # validate the bare fp32 network, as it ships
        with torch_threads(b.threads):
            val_mm = validate(b.run)
        b.run.model = wrapped
        out["variants"][label] = {"loss": losses, "val_stage_mm": val_mm, "seconds": seconds}
    return out


