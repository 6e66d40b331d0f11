"""Synthetic engine throughput: ``render_frame`` per scene family, and engines v1 and v2 as training draws
them (``srnpose.synth.engines.render``), in 1 process (CPU time); engine v2 in 2 processes (wall); then ``write_dataset`` end to end (render + PNG + labels, the default scene)
with 1 and 2 workers, and SynthDataset item rates.

    python benchmarks/bench_synth.py [--frames 600] [--repeats 3] [--resolution 320x240] [--families-only]

CPU time per frame (1 process) is robust to other processes on the machine; wall-clock figures are not.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import shutil
import statistics
import tempfile
import time


def _median_spread(values: list[float]) -> str:
    return f"median {statistics.median(values):7.1f}  (min {min(values):.1f}, max {max(values):.1f})"


def _render_chunk(task: tuple) -> int:
    from srnpose.synth import frame_seed
    from srnpose.synth.engines import render

    seed, start, stop, resolution = task
    for i in range(start, stop):
        render("v2", frame_seed(seed, i), resolution=resolution)
    return stop - start


def _resolution(text: str) -> tuple[int, int]:
    try:
        width, height = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"resolution must look like 320x240, got {text!r}") from None
    return width, height


def main() -> None:
    import numpy as np

    from srnpose.synth import SynthDataset, frame_seed, render_frame, write_dataset
    from srnpose.synth.scenes import SCENE_FAMILIES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--resolution", type=_resolution, default=(320, 240))
    parser.add_argument("--families-only", action="store_true", help="skip write_dataset and SynthDataset")
    args = parser.parse_args()
    res = args.resolution
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, numpy {np.__version__}; {res[0]}x{res[1]}, "
          f"load average {os.getloadavg()[0]:.2f}")

    from srnpose.synth.engines import render

    # one family each (generic sensor, hand-made poses), then the engines as training draws them
    scenes = {name: functools.partial(render_frame, scene=name) for name in SCENE_FAMILIES}
    scenes["engine v1 (round 1)"] = functools.partial(render, "v1")
    scenes["engine v2 (mix, prior, profiles)"] = functools.partial(render, "v2")
    for draw in scenes.values():  # warm up caches (ray tables, noise table, pose prior)
        for i in range(10):
            draw(frame_seed(0, i), resolution=res)
    cpu_ms = {name: [] for name in scenes}
    for r in range(args.repeats):  # interleaved, so that load from elsewhere hits every family alike
        for name, draw in scenes.items():
            cpu = time.process_time()
            for i in range(args.frames):
                draw(frame_seed(r, i), resolution=res)
            cpu_ms[name].append((time.process_time() - cpu) * 1e3 / args.frames)
    print(f"1 process, {args.frames} frames x {args.repeats}: CPU ms/frame -> frames/s per core")
    for name, values in cpu_ms.items():
        ms = statistics.median(values)
        print(f"  {name:32s}: {ms:6.2f} ms (min {min(values):.2f}, max {max(values):.2f}) -> {1e3 / ms:6.1f} frames/s")

    import multiprocessing

    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    chunk = 50
    tasks = [(r, s, min(s + chunk, args.frames), res) for r in range(args.repeats) for s in range(0, args.frames, chunk)]
    with ctx.Pool(2) as pool:
        pool.map(_render_chunk, [(99, 0, 10, res), (99, 10, 20, res)])  # warm the workers up
        rates = []
        for r in range(args.repeats):
            mine = [t for t in tasks if t[0] == r]
            start = time.perf_counter()
            done = sum(pool.map(_render_chunk, mine))
            rates.append(done / (time.perf_counter() - start))
    print(f"engine v2, 2 processes (wall)  : {_median_spread(rates)} frames/s")
    if args.families_only:
        return

    ds = SynthDataset(args.frames, seed=7, resolution=res)
    start = time.perf_counter()
    for i in range(len(ds)):
        ds[i]
    print(f"SynthDataset[i] (HandRecord), 1 proc: {args.frames / (time.perf_counter() - start):7.1f} frames/s")

    for workers in (1, 2):
        rates, cpu_ms_write = [], []
        for r in range(args.repeats):
            out = tempfile.mkdtemp(prefix="bench_synth_")
            try:
                start, cpu = time.perf_counter(), time.process_time()
                write_dataset(out, args.frames, seed=r, resolution=res, workers=workers, progress=False)
                rates.append(args.frames / (time.perf_counter() - start))
                cpu_ms_write.append((time.process_time() - cpu) * 1e3 / args.frames)
            finally:
                shutil.rmtree(out, ignore_errors=True)
        extra = ""
        if workers == 1:  # CPU time is robust to other processes sharing the machine
            ms = statistics.median(cpu_ms_write)
            extra = f", CPU {ms:.2f} ms/frame -> {1e3 / ms:.0f} frames/s per free core"
        print(f"write_dataset, workers={workers}           : {_median_spread(rates)} frames/s{extra}")
    print(f"(end to end: render + 16-bit PNG + labels.txt, {args.frames} frames; load average "
          f"{os.getloadavg()[0]:.2f} - other processes on the machine lower the wall-clock figures)")


if __name__ == "__main__":
    main()
