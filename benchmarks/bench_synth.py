"""Synthetic engine throughput: frames/s of ``write_dataset`` end to end (render + PNG + labels),
at 320x240 (default camera), with 1 and 2 workers; plus render-only and SynthDataset item rates.

    python benchmarks/bench_synth.py [--frames 600] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time


def _median_spread(values: list[float]) -> str:
    return f"median {statistics.median(values):7.1f}  (min {min(values):.1f}, max {max(values):.1f})"


def main() -> None:
    import numpy as np

    from srnpose.synth import SynthDataset, frame_seed, render_frame, write_dataset

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, numpy {np.__version__}")

    for _ in range(20):  # warm up caches (ray table, noise table)
        render_frame(frame_seed(0, _))
    rates, cpu_ms = [], []
    for r in range(args.repeats):
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(args.frames):
            render_frame(frame_seed(r, i))
        rates.append(args.frames / (time.perf_counter() - start))
        cpu_ms.append((time.process_time() - cpu) * 1e3 / args.frames)
    print(f"render_frame only, 1 process        : {_median_spread(rates)} frames/s, "
          f"CPU {statistics.median(cpu_ms):.2f} ms/frame")

    ds = SynthDataset(args.frames, seed=7)
    start = time.perf_counter()
    for i in range(len(ds)):
        ds[i]
    print(f"SynthDataset[i] (HandRecord), 1 proc: {args.frames / (time.perf_counter() - start):7.1f} frames/s")

    for workers in (1, 2):
        rates, cpu_ms = [], []
        for r in range(args.repeats):
            out = tempfile.mkdtemp(prefix="bench_synth_")
            try:
                start, cpu = time.perf_counter(), time.process_time()
                write_dataset(out, args.frames, seed=r, workers=workers, progress=False)
                rates.append(args.frames / (time.perf_counter() - start))
                cpu_ms.append((time.process_time() - cpu) * 1e3 / args.frames)
            finally:
                shutil.rmtree(out, ignore_errors=True)
        extra = ""
        if workers == 1:  # CPU time is robust to other processes sharing the machine
            ms = statistics.median(cpu_ms)
            extra = f", CPU {ms:.2f} ms/frame -> {1e3 / ms:.0f} frames/s per free core"
        print(f"write_dataset 320x240, workers={workers}   : {_median_spread(rates)} frames/s{extra}")
    print(f"(end to end: render + 16-bit PNG + labels.txt, {args.frames} frames; load average "
          f"{os.getloadavg()[0]:.2f} - other processes on the machine lower the wall-clock figures)")


if __name__ == "__main__":
    main()
