"""Inference benchmark: batch-1 latency (p50, p95) and FPS per backend, end to end and network only.

* ``end_to_end``: a full sensor frame (uint16, in memory) in, joints in mm out: centre finding,
  crop, network and decode (:meth:`srnpose.inference.estimator.HandPoseEstimator.predict`).
* ``network``: the bare network on a prepared (1, 1, S, S) crop.
* ``with_fit`` (``fit=True``, ``srnpose benchmark --fit``): end to end, then the articulated hand fitted
  to the frame's depth (:func:`srnpose.fitting.results.fit_results` on the result, one thread, the default
  :class:`~srnpose.fitting.fit.FitConfig`): ``predict``'s default path. Its ``breakdown_ms`` gives the
  end-to-end part and the fit's (medians) and ``fit_share``, the fit's part of the frame.

One statistic for every figure of a table: the median (p50) latency. ``fps`` is 1000 / p50, the
rate of a typical frame, and the speed-ups over torch are ratios of p50 latencies; both are less
sensitive to other processes on a shared machine than means. ``p95`` shows the spread.

Backends: ``torch`` (eager, inference mode), ``onnxruntime`` (fp32, all graph optimizations, one
intra-op thread per core) and ``onnxruntime-int8`` (static QDQ int8, calibrated on synthetic crops).
Backends are timed in interleaved rounds so that a noisy shared machine slows them alike.

The report (``--json``)::

    {"model": {"params", "gflops", ...}, "machine": {...}, "settings": {...},
     "results": [{"backend", "scope", "fps", "latency_ms": {"p50", "p95", "mean"}, "frames",
                  "breakdown_ms": {"center", "crop", "network", "decode"}  (end_to_end only;
                  with_fit: {"end_to_end", "fit"}, and "fit_share", "lm_steps"),
                  "gflops_per_s", "rate_vs_matmul"  (network only: one pass's FLOPs / p50, and
                  that rate over machine["matmul_gflops_per_s"], a plain fp32 matmul's in the same run)}]}

The matmul is a reference rate, not a limit: ONNX Runtime's fused convolutions and torch's own
kernels can run a small network faster than torch runs one (1024, 1024) product, so
``rate_vs_matmul`` may exceed 1 (1.38 was measured).
"""

from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from srnpose import __version__
from srnpose.config import to_dict
from srnpose.data.centering import CenterPolicy
from srnpose.errors import UserError
from srnpose.inference.backends import cores
from srnpose.inference.estimator import HandPoseEstimator
from srnpose.inference.export import (
    CALIBRATION_FRAMES,
    export_checkpoint,
    export_int8,
    sample_frames_and_camera,
)
from srnpose.inference.frame_path import FramePath, resolve_frame_camera
from srnpose.inference.sensors import FolderSource

__all__ = ["BENCH_BACKENDS", "SCOPES", "machine_info", "benchmark_frames", "run_benchmark", "format_table"]

BENCH_BACKENDS = ("torch", "onnxruntime", "onnxruntime-int8")
SCOPES = ("end_to_end", "network")
FIT_SCOPE = "with_fit"  # fit=True: end to end, then the fit to the depth


def machine_info() -> dict[str, Any]:
    import torch

    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:  # pragma: no cover - not Linux
        pass
    try:
        load = list(np.round(__import__("os").getloadavg(), 2))
    except OSError:  # pragma: no cover
        load = None
    return {"cpu": cpu, "cores": cores(), "platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "onnxruntime": ort_version, "srnpose": __version__, "loadavg_at_start": load}


def benchmark_frames(data: str | Path | None = None, camera: str | None = None,
                     count: int = 30) -> tuple[list, Any, str]:
    """Full frames to time on. Returns ``(frames, FrameCamera, description)``.

    ``data``: the first ``count`` PNGs of that folder, from ``camera`` (default kinect2); else, without
    ``camera``, the shipped sample frames with their own camera (:func:`srnpose.samples`, the same on every
    install and from every working directory); else ``count`` synthetic frames rendered for ``camera``."""
    if data is not None:
        folder, camera = Path(data), camera or "kinect2"
        if not folder.is_dir():
            raise UserError(f"{folder}: no such folder", flag="--data")
        frames = [f.depth for f, _ in zip(FolderSource(folder), range(count))]
        return frames, resolve_frame_camera(camera=camera), f"{len(frames)} frames from {folder} ({camera})"
    if camera is None:
        frames, cam = sample_frames_and_camera()
        return frames, cam, f"the {len(frames)} shipped sample frames (srnpose.samples(), camera {cam.name})"
    from srnpose.synth import frame_seed, render_frame

    cam = resolve_frame_camera(camera=camera)
    frames = []
    for i in range(count):
        f = render_frame(frame_seed(2024, i), intrinsics=cam.intrinsics, resolution=cam.resolution)
        depth = np.ascontiguousarray(cam.view_flip(f.depth_mm.shape[1]).frame(f.depth_mm))  # as the sensor stores it
        frames.append(depth)
    return frames, cam, f"{len(frames)} synthetic frames rendered for {camera}"


def _stats(latencies_ms: list[float]) -> dict[str, float]:
    lat = np.asarray(latencies_ms)
    return {"p50": round(float(np.percentile(lat, 50)), 3), "p95": round(float(np.percentile(lat, 95)), 3),
            "mean": round(float(lat.mean()), 3)}


def _estimators(model, policy, layout: str, backends: tuple[str, ...], tmp: Path, calibration_frames: int) -> dict:
    """One :class:`~srnpose.inference.estimator.HandPoseEstimator` per backend, all on the same engine settings; the
    int8 model is ``srnpose export --int8``'s (:func:`srnpose.inference.export.export_int8`)."""
    estimators = {}
    for b in backends:
        if b == "onnxruntime-int8":
            torch_engine = FramePath.from_model(model, policy, layout, "torch")
            fp32 = export_checkpoint(torch_engine, tmp / "fp32.onnx")
            int8 = export_int8(torch_engine, fp32, tmp / "int8.onnx", "static", calibration_frames)
            estimators[b] = HandPoseEstimator(FramePath.from_model(model, policy, layout, "onnxruntime", int8))
        else:
            estimators[b] = HandPoseEstimator(FramePath.from_model(model, policy, layout, b))
    return estimators


MATMUL_N = 1024  # the reference: a plain (N, N) @ (N, N) fp32 product, 2 N^3 FLOPs


def matmul_gflops(threads: int, repeats: int = 15) -> float:
    """A reference fp32 rate (GFLOP/s), not a limit: the median of ``repeats`` timed (1024, 1024) fp32
    matrix products in torch with ``threads`` intra-op threads (as many as ONNX Runtime runs)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        a, b = torch.randn(MATMUL_N, MATMUL_N), torch.randn(MATMUL_N, MATMUL_N)
        for _ in range(3):
            a @ b
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return 2.0 * MATMUL_N ** 3 / float(np.median(times)) / 1e9


def run_benchmark(model, policy=None, layout: str = "canonical", backends: tuple[str, ...] = BENCH_BACKENDS,
                  frames: int = 200, warmup: int = 20, data: str | Path | None = None, camera: str | None = None,
                  rounds: int = 5, progress: bool = False, calibration_frames: int | None = None,
                  fit: bool = False) -> dict:
    """Time every backend in both scopes on the same frames, interleaved in ``rounds``; ``fit``: the
    ``with_fit`` scope too (21-joint models).

    ``policy``: the checkpoint's :class:`~srnpose.data.centering.CenterPolicy` (its cube and passes: end
    to end runs the network ``policy.passes`` times per frame); None: ``CenterPolicy()``, its defaults."""
    from srnpose.model import model_summary

    for b in backends:
        if b not in BENCH_BACKENDS:
            raise UserError(f"--backends: unknown backend {b!r}; available: {', '.join(BENCH_BACKENDS)}")
    policy = policy or CenterPolicy()
    if fit and layout != "canonical":
        raise UserError(f"the fit to the depth needs a 21-joint model; this one predicts the {layout} layout",
                        flag="--fit")
    fit_cfg = _fit_config() if fit else None
    machine = machine_info()  # before the runs: the load average at start is the one that matters
    full_frames, cam, description = benchmark_frames(data, camera)
    tmp = tempfile.TemporaryDirectory(prefix="srnpose-bench-")
    estimators = _estimators(model, policy, layout, backends, Path(tmp.name),
                             calibration_frames or CALIBRATION_FRAMES)
    # the crops the network scope runs on: the frames' own first-pass crops
    reference = estimators[backends[0]]
    crops = [c[None, None] for c in (reference.crop(d, cam) for d in full_frames) if c is not None]
    if not crops:
        raise UserError("no hand found in any benchmark frame")
    found = len(crops)

    scopes = SCOPES + ((FIT_SCOPE,) if fit else ())
    latencies: dict[tuple[str, str], list[float]] = {(b, s): [] for b in backends for s in scopes}
    breakdown: dict[str, list[dict]] = {b: [] for b in backends}
    fit_ms: dict[str, list[float]] = {b: [] for b in backends}
    for est in estimators.values():  # warm up: first calls allocate and tune
        for i in range(warmup):
            depth = full_frames[i % len(full_frames)]
            res = est.predict(depth, cam)
            est.network(crops[i % len(crops)])
            if fit:
                _fit_one(res, depth, cam, fit_cfg)
    per_round = max(1, frames // rounds)
    iterator = range(rounds)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="benchmark rounds", unit="round")
    for _ in iterator:
        for b, est in estimators.items():
            for i in range(per_round):
                depth = full_frames[i % len(full_frames)]
                t0 = time.perf_counter()
                res = est.predict(depth, cam)
                latencies[(b, "end_to_end")].append((time.perf_counter() - t0) * 1e3)
                breakdown[b].append(res.timings)
                if fit:
                    fit_ms[b].append(_fit_one(res, depth, cam, fit_cfg))
                    latencies[(b, FIT_SCOPE)].append(latencies[(b, "end_to_end")][-1] + fit_ms[b][-1])
            for i in range(per_round):
                crop = crops[i % len(crops)]
                t0 = time.perf_counter()
                est.network(crop)
                latencies[(b, "network")].append((time.perf_counter() - t0) * 1e3)
    tmp.cleanup()

    results = []
    for b in backends:
        for s in scopes:
            lat = latencies[(b, s)]
            entry = {"backend": b, "scope": s, "fps": round(1000.0 / float(np.median(lat)), 2),
                     "latency_ms": _stats(lat), "frames": len(lat)}
            if s == "end_to_end":
                parts = breakdown[b]
                entry["breakdown_ms"] = {"center": round(float(np.median([t["center"] for t in parts])), 3),
                                         "crop": round(float(np.median([t["crop"] for t in parts])), 3),
                                         "network": round(float(np.median([t["network"] for t in parts])), 3),
                                         "decode": round(float(np.median([t["decode"] for t in parts])), 3)}
            if s == FIT_SCOPE:
                own = float(np.median(latencies[(b, "end_to_end")]))
                spent = float(np.median(fit_ms[b]))
                entry["breakdown_ms"] = {"end_to_end": round(own, 3), "fit": round(spent, 3)}
                entry["fit_share"] = round(spent / (own + spent), 3)
                entry["lm_steps"] = fit_cfg.iterations
            results.append(entry)
    summary = model_summary(model.config)
    machine["matmul_gflops_per_s"] = round(matmul_gflops(cores()), 1)
    for entry in results:  # the network's FLOP rate, one pass, relative to the matmul's (may exceed 1)
        if entry["scope"] == "network":
            rate = float(summary["gflops"]) / (entry["latency_ms"]["p50"] / 1e3)
            entry["gflops_per_s"] = round(rate, 2)
            entry["rate_vs_matmul"] = round(rate / machine["matmul_gflops_per_s"], 4)
    machine["loadavg_at_end"] = [round(x, 2) for x in __import__("os").getloadavg()]
    return {
        "model": {"params": int(summary["params"]), "gflops": float(summary["gflops"]),
                  "input_size": summary["input_size"], "num_stages": summary["num_stages"],
                  "num_joints": summary["num_joints"], "backbone": summary["backbone"],
                  "config": to_dict(model.config)},
        "machine": machine,
        "settings": {"batch": 1, "frames_per_backend_and_scope": per_round * rounds, "warmup": warmup,
                     "rounds": rounds, "data": description, "hands_found": f"{found}/{len(full_frames)}",
                     "cube_mm": list(policy.cube_mm), "statistic": "median (p50) latency; FPS = 1000 / p50",
                     "passes": int(policy.passes)},
        "results": results,
    }


def _fit_config():
    from srnpose.fitting.fit import FitConfig, warm_up

    cfg = FitConfig()
    warm_up(cfg)
    return cfg


def _fit_one(result, depth: np.ndarray, cam, cfg) -> float:
    """ms to fit the articulated hand to one frame's depth from its result (0 when no hand was found)."""
    from srnpose.fitting.results import fit_results

    t0 = time.perf_counter()
    fit_results([result], [depth], cam, cfg, replace=True)
    return (time.perf_counter() - t0) * 1e3


def format_table(report: dict) -> str:
    """A fixed-width table of the results, with each backend's speed-up over torch in the same scope
    (ratio of median latencies: robust to other processes' bursts)."""
    torch_fps = {r["scope"]: r["fps"] for r in report["results"] if r["backend"] == "torch"}
    lines = [f"{'backend':<18} {'scope':<11} {'FPS@p50':>8} {'p50 ms':>8} {'p95 ms':>8} {'vs torch':>8}"
             "  breakdown (median ms)"]
    for r in report["results"]:
        ratio = f"{r['fps'] / torch_fps[r['scope']]:.2f}x" if r["scope"] in torch_fps else "-"
        parts = r.get("breakdown_ms")
        detail = ("  " + " ".join(f"{k} {v:.2f}" for k, v in parts.items())) if parts else ""
        if "fit_share" in r:
            detail += f" (fit {r['fit_share']:.0%} of the frame, {r['lm_steps']} LM steps)"
        if "gflops_per_s" in r:
            detail = f"  {r['gflops_per_s']:.1f} GFLOP/s = {r['rate_vs_matmul']:.2f}x the matmul's rate"
        lines.append(f"{r['backend']:<18} {r['scope']:<11} {r['fps']:>8.1f} {r['latency_ms']['p50']:>8.2f} "
                     f"{r['latency_ms']['p95']:>8.2f} {ratio:>8}{detail}")
    m = report["model"]
    lines.append(f"model: {m['params'] / 1e6:.1f}M params, {m['gflops']:.2f} GFLOPs, {m['input_size']}x{m['input_size']}, "
                 f"{m['num_stages']} stages; machine: {report['machine']['cpu']} ({report['machine']['cores']} cores); "
                 f"data: {report['settings']['data']}")
    if "matmul_gflops_per_s" in report["machine"]:
        lines.append(f"reference rate: a plain fp32 matmul ({MATMUL_N}^3, torch, {report['machine']['cores']} "
                     f"threads) runs at {report['machine']['matmul_gflops_per_s']:.1f} GFLOP/s (a reference, not "
                     "a limit: fused network kernels can exceed it)")
    if report["settings"].get("passes", 1) > 1:
        lines.append(f"end to end runs the network up to {report['settings']['passes']} times per frame (the "
                     "checkpoint's passes; a later one only where it moves the crop, CenterPolicy.settled)")
    return "\n".join(lines)
