"""Inference benchmark with a profile of the frame path.

    python benchmarks/bench_inference.py [--frames 200] [--checkpoint RUN] [--json bench.json]

1. The frame path's parts on the real Kinect V2 frames (``../shared/data/kinect2`` beside the repository; the
   shipped sample frames where it is missing), each against the reference implementation:
   centre (the crop policy's hand search, every pixel vs stride 4), crop
   (geometry.crop_depth vs geometry.crop_frame), decode.
2. ``srnpose benchmark``'s table, by the same function (:func:`srnpose.inference.bench.run_benchmark`) on the
   same engine: the checkpoint's passes, and ``srnpose export --int8``'s int8 model (64 calibration
   frames). Every figure of the table is a median.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

KINECT_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kinect2"  # the figures' frames


def _time(fn, items, repeats: int = 5) -> float:
    """Median over ``repeats`` passes of the mean ms per item."""
    passes = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for item in items:
            fn(item)
        passes.append((time.perf_counter() - t0) * 1e3 / len(items))
    return float(np.median(passes))


def profile_frame_path(frames: list, cam, policy, input_size: int = 128) -> dict:
    """The frame path's parts with ``policy``'s cube and hand search (a CenterPolicy)."""
    from dataclasses import replace

    from srnpose import geometry
    from srnpose.geometry import crop_frame

    K, unit, cube_mm = cam.intrinsics, cam.depth_unit_mm, policy.cube
    every_pixel = replace(policy, stride=1)
    views = [cam.view_flip(f.shape[1]).frame(f) for f in frames]
    centers = [policy.locate(v, K, unit) for v in views]
    pairs = [(v, c) for v, c in zip(views, centers) if c is not None]
    M = geometry.crop_transform(pairs[0][1], cube_mm, input_size, K)
    joints = np.zeros((3, 21, 3))
    return {
        "center_reference_ms": _time(lambda v: every_pixel.locate(v, K, unit), views),
        "center_fast_ms": _time(lambda v: policy.locate(v, K, unit), views),
        "crop_reference_ms": _time(lambda p: geometry.crop_depth(p[0].astype(np.float32) * unit, p[1], cube_mm,
                                                                 input_size, K), pairs),
        "crop_fast_ms": _time(lambda p: crop_frame(p[0], p[1], cube_mm, input_size, K, unit), pairs),
        "decode_ms": _time(lambda _: geometry.uvd_to_xyz(geometry.crop_to_uvd(joints, M, 600.0, cube_mm[2], input_size)[-1],
                                                         K), range(100)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--checkpoint")
    parser.add_argument("--backends", default="torch,onnxruntime,onnxruntime-int8")
    parser.add_argument("--json")
    args = parser.parse_args()

    import torch

    from srnpose.inference.bench import benchmark_frames, format_table, run_benchmark

    data = KINECT_DIR if KINECT_DIR.is_dir() else None
    frames, cam, description = benchmark_frames(data)
    if args.checkpoint:
        from srnpose.training.checkpoint import load_checkpoint

        ckpt = load_checkpoint(args.checkpoint)
        model, layout, policy = ckpt.model, ckpt.layout, ckpt.policy
    else:
        from srnpose.data.centering import CenterPolicy
        from srnpose.model import SRN

        torch.manual_seed(0)
        model, layout, policy = SRN().eval(), "canonical", CenterPolicy()
    profile = profile_frame_path(frames, cam, policy)
    print(f"frame path on {description}:")
    for key, value in profile.items():
        print(f"  {key:<22} {value:7.3f}")
    report = run_benchmark(model, layout=layout, backends=tuple(args.backends.split(",")), frames=args.frames,
                           data=data, policy=policy)
    report["frame_path_profile_ms"] = profile
    print(format_table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
