"""Soak test (issue 7, item 5): inference on a long synthetic sequence.

    python benchmarks/soak.py --frames 20000 [--backend onnxruntime] [--preset paper] [--checkpoint RUN]

A pool of rendered frames (``--pool``) is replayed with a fresh per-frame sensor noise and shift so that
no two frames are identical; every 50th frame is empty (no hand) and every 997th is corrupt (NaN in a
float frame), which must fail with FrameError and nothing else. Prints memory (RSS) at start and end,
throughput per window of frames, hands found and failed frames. Asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def rss_mb() -> float:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:  # pragma: no cover - not Linux
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=20000, help="sequence length (default 20000)")
    parser.add_argument("--pool", type=int, default=64, help="distinct rendered frames to replay (default 64)")
    parser.add_argument("--backend", default="onnxruntime", choices=("torch", "onnxruntime"))
    parser.add_argument("--preset", default="paper", help="model preset when no --checkpoint (default paper)")
    parser.add_argument("--checkpoint")
    parser.add_argument("--window", type=int, default=1000, help="frames per throughput window")
    args = parser.parse_args()

    import torch

    from srnpose.inference.estimator import FrameError, HandPoseEstimator, load
    from srnpose.synth import frame_seed, render_frame

    rss_start = rss_mb()
    if args.checkpoint:
        est = load(args.checkpoint, backend=args.backend)
    else:
        from srnpose.config import get_model_preset
        from srnpose.model import SRN

        torch.manual_seed(0)
        est = HandPoseEstimator.from_model(SRN.from_config(get_model_preset(args.preset)).eval(), backend=args.backend)
    pool = [render_frame(frame_seed(99, i)) for i in range(args.pool)]
    K = pool[0].intrinsics
    rng = np.random.default_rng(0)
    rss_ready = rss_mb()
    print(f"RSS: {rss_start:.0f} MB at start, {rss_ready:.0f} MB with the model and {args.pool} frames; "
          f"backend {est.backend}, {args.frames} frames")
    found = failed = unexpected = 0
    window_t0, t0 = time.perf_counter(), time.perf_counter()
    for i in range(args.frames):
        base = pool[i % len(pool)].depth_mm
        if i % 50 == 49:
            depth = np.zeros_like(base)
        else:
            noise = rng.integers(-2, 3, base.shape).astype(np.int32)
            depth = np.where(base > 0, base.astype(np.int32) + noise, 0)
            depth = np.roll(depth, int(rng.integers(-8, 9)), axis=1).astype(np.uint16)
        if i % 997 == 996:
            depth = depth.astype(np.float32)
            depth[0, 0] = np.nan
        try:
            found += est.predict(depth, intrinsics=K).hand_found
        except FrameError:
            failed += 1
        except Exception as exc:  # noqa: BLE001 - a soak test counts whatever breaks
            unexpected += 1
            print(f"frame {i}: unexpected {type(exc).__name__}: {exc}")
        if (i + 1) % args.window == 0:
            now = time.perf_counter()
            print(f"frames {i + 2 - args.window:>6}-{i + 1:<6} {args.window / (now - window_t0):7.1f} FPS  "
                  f"RSS {rss_mb():7.0f} MB")
            window_t0 = now
    total = time.perf_counter() - t0
    print(f"done: {args.frames} frames in {total:.0f} s ({args.frames / total:.1f} FPS incl. noise generation); "
          f"hand found {found}, expected failures (corrupt frames) {failed}, unexpected errors {unexpected}; "
          f"RSS {rss_ready:.0f} -> {rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
