"""``srnpose live``: hand poses from a live depth camera (or a replayed folder), printed and saved.

    srnpose live --camera realsense --smooth                 # the shipped model, onnxruntime if installed
    srnpose live --camera realsense --checkpoint runs/demo --backend torch --threads 2
    srnpose live --replay frames/ --camera kinect2 --checkpoint runs/demo   # a folder of recorded depth PNGs

Frames come through :mod:`srnpose.inference.sensors` (``RealSenseSource`` needs ``pip install 'srnpose[realsense]'``);
``--replay DIR`` runs the same loop on recorded PNGs. Each frame's joints go to ``--jsonl`` (default
stdout summary only); Ctrl-C stops. The articulated hand is fitted to each frame's depth after the network
(the default for 21-joint models: ``joints_xyz`` the fitted hand's, ``joints_raw_xyz`` the network's;
``--no-fit``: the network's alone), frame by frame.
"""

from __future__ import annotations

import argparse

from srnpose.commands.predict import (
    add_finder_arguments,
    add_fit_argument,
    add_runtime_arguments,
    load_estimator,
)
from srnpose.errors import UserError
from srnpose.inference.estimator import estimate_frames, resolve_frame_camera
from srnpose.inference.sensors import FolderSource, RealSenseSource
from srnpose.inference.smoothing import OneEuroFilter
from srnpose.outputs import out_path
from srnpose.training.lock import check_out_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--camera", default="realsense", metavar="NAME",
                        help="'realsense' for a live RealSense, or a preset name for --replay (default realsense)")
    parser.add_argument("--replay", metavar="DIR", help="replay a folder of depth PNGs instead of a live camera")
    parser.add_argument("--checkpoint", metavar="RUN",
                        help="run folder, checkpoint or .onnx (default: the shipped model, see MODEL_CARD.md)")
    parser.add_argument("--smooth", action="store_true", help="One Euro filter on the joints")
    parser.add_argument("--frames", type=int, default=None, metavar="N", help="stop after N frames")
    parser.add_argument("--jsonl", metavar="FILE", help="append one JSON object per frame")
    parser.add_argument("--width", type=int, default=640, help="RealSense stream width (default 640)")
    parser.add_argument("--height", type=int, default=480, help="RealSense stream height (default 480)")
    add_runtime_arguments(parser)
    add_fit_argument(parser, "frame by frame")
    add_finder_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import json
    import time

    if args.frames is not None and args.frames < 1:
        raise UserError(f"--frames must be >= 1, got {args.frames}")
    if args.jsonl is not None:  # checked before the camera starts and the model loads
        from pathlib import Path

        out_path(args.jsonl, "--jsonl")  # '' is refused: it would drop every frame's joints silently
        if Path(args.jsonl).is_dir():
            raise UserError(f"--jsonl {args.jsonl}: is a folder, expected a file name")
        check_out_dir(Path(args.jsonl).parent, "--jsonl")
    if args.replay:
        if args.camera == "realsense":
            raise UserError("--replay needs --camera NAME, the preset the frames were recorded with")
        source = FolderSource(args.replay)
        cam = resolve_frame_camera(camera=args.camera)
    else:
        if args.camera != "realsense":
            raise UserError(f"--camera {args.camera}: live capture supports 'realsense'; use --replay for files")
        source = RealSenseSource(args.width, args.height, max_frames=args.frames)
        c = source.camera
        cam = resolve_frame_camera(c.intrinsics, c.depth_unit_mm, c.mirrored)
    estimator = load_estimator(args, "live")
    smoother = OneEuroFilter() if args.smooth else None
    try:
        sink = open(args.jsonl, "a", encoding="utf-8") if args.jsonl else None
    except OSError as exc:
        raise UserError(f"--jsonl {args.jsonl}: cannot write ({exc.strerror or exc})") from None
    count, found, fit_ms, t0 = 0, 0, [], time.perf_counter()
    try:
        with source:
            for frame, result in estimate_frames(estimator, source, cam, smoother):
                count += 1
                found += bool(result.hand_found)
                if "fit" in result.timings:
                    fit_ms.append(result.timings["fit"])
                if sink is not None:
                    sink.write(json.dumps(result.to_json(frame.name)) + "\n")
                if count % 30 == 0:
                    rate = count / (time.perf_counter() - t0)
                    print(f"{count} frames, {rate:.1f} FPS, hand in {found}, last latency "
                          f"{result.timings['total']:.1f} ms", flush=True)
                if args.frames is not None and count >= args.frames:
                    break
    finally:
        if sink is not None:
            sink.close()
    fit = "no fit" if estimator.fit is None else \
        f"fit to the depth {sorted(fit_ms)[len(fit_ms) // 2]:.1f} ms per frame (median)" if fit_ms else "no hand to fit"
    print(f"{count} frames, hand found in {found}, {count / max(time.perf_counter() - t0, 1e-9):.1f} FPS overall; {fit}")
    return 0
