"""``srnpose predict``: hand poses on full depth frames (PNG files, folders, .npy stacks).

    srnpose predict --sample --out out/sample              # the shipped model on the shipped sample frames
    srnpose predict frames/ --checkpoint runs/demo --camera kinect2 --out out/k2   # a folder of your depth PNGs
    srnpose predict frames.npy --checkpoint model.onnx --intrinsics 475,475,320,240 --depth-unit 0.125 --out out

Writes ``OUT/predictions.jsonl`` (one object per frame: frame, hand_found, joints_uvd, joints_xyz,
center_uvd, latency_ms, timings_ms; with ``--angles`` also joint_angles, joints_fitted_xyz and handedness,
the kinematic hand fitted through all the frames as one sequence: :mod:`srnpose.hand.angles`), ``OUT/overlays/<frame>.png`` (skeleton, crop box and centre on
the colour-mapped depth) and, for more than one frame, ``OUT/overlays.gif``.
"""

from __future__ import annotations

import argparse

from srnpose.cameras import CAMERAS
from srnpose.errors import UserError, require_extra
from srnpose.inference.backends import BACKENDS, DEFAULT_THREADS, default_backend
from srnpose.inference.estimator import estimate_frames, load
from srnpose.inference.frame_path import (
    FINDERS,
    HANDEDNESS,
    HANDS,
    depth_unit_warning,
    mirrored_camera_warning,
    resolve_frame_camera,
)
from srnpose.inference.sensors import open_sources
from srnpose.inference.smoothing import OneEuroFilter
from srnpose.outputs import PREDICT_KIND, check_folder_target, output_folder, refuse_foreign_folder
from srnpose.viz import pose_overlay, save_gif, save_png
from srnpose.weights import sample_frames


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="depth PNG (16-bit), folder of PNGs, or .npy (H, W) / (T, H, W) stack")
    parser.add_argument("--sample", action="store_true",
                        help="run on the sample frames shipped with srnpose (their camera preset unless "
                             "--camera/--intrinsics are given)")
    parser.add_argument("--checkpoint", metavar="RUN",
                        help="a run folder, checkpoint folder, .safetensors, or exported .onnx "
                             "(default: the shipped model, see MODEL_CARD.md)")
    parser.add_argument("--camera", metavar="NAME", choices=tuple(CAMERAS),
                        help=f"camera preset: {', '.join(CAMERAS)}")
    parser.add_argument("--intrinsics", metavar="fx,fy,cx,cy", help="camera intrinsics (override the preset's)")
    parser.add_argument("--depth-unit", type=float, metavar="MM",
                        help="millimetres per raw depth unit (default: the preset's, else 1)")
    parser.add_argument("--mirrored", action=argparse.BooleanOptionalAction, default=None,
                        help="frames are flipped left-right (default: the preset's, else no)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    add_runtime_arguments(parser)
    parser.add_argument("--smooth", action="store_true", help="One Euro filter on the joints of a sequence")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of a recording, for --smooth and the GIF")
    parser.add_argument("--no-overlays", action="store_true", help="write predictions.jsonl only")
    parser.add_argument("--angles", action="store_true",
                        help="fit the kinematic hand through the frames (one hand, constant bone lengths) and "
                             "add its joint angles (degrees) and fitted joints to predictions.jsonl; 21-joint "
                             "models only; the file is written once all frames are done")
    add_finder_arguments(parser)


def add_runtime_arguments(parser) -> None:
    """``--backend`` and ``--threads``: how predict and live run the network
    (``srnpose.inference.backends.default_backend``, ``DEFAULT_THREADS``)."""
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="network runtime (default: onnxruntime when installed, else torch; a .onnx "
                             "checkpoint always uses onnxruntime)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help=f"the network's intra-op threads (default {DEFAULT_THREADS}: the shipped model is too "
                             "small to share out, and more threads collapse when other jobs hold the cores)")


def load_estimator(args: argparse.Namespace, command: str):
    """The estimator of ``--checkpoint`` on ``--backend`` / ``--threads`` (their defaults when not given);
    prints which runtime and how many threads, and why."""
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads: must be >= 1, got {args.threads}")
    if str(args.checkpoint).lower().endswith(".onnx"):
        backend, why = "onnxruntime", "a .onnx checkpoint"
    elif args.backend is not None:
        backend, why = args.backend, "--backend"
    else:
        backend, why = default_backend()
        why = f"the default: {why}"
    if backend == "onnxruntime":
        require_extra("onnxruntime", "onnx")
    estimator = load(args.checkpoint, backend=backend, threads=args.threads, center=args.center, hand=args.hand,
                     handedness=args.handedness)
    threads = estimator.threads
    print(f"srnpose {command}: network on {estimator.backend} ({why}), {threads} thread{'s' if threads != 1 else ''}"
          f"{' (--threads)' if args.threads is not None else ''}", flush=True)
    return estimator


def add_finder_arguments(parser) -> None:
    """``--center``, ``--hand`` and ``--handedness``: how predict and live find and read the hand
    (``srnpose.inference.frame_path.FINDERS``, ``HANDS``, ``HANDEDNESS``)."""
    parser.add_argument("--center", choices=FINDERS, default="auto",
                        help="how the hand is found: auto = the hand locator the checkpoint carries, else the "
                             "nearest-blob search (default); locator = require the locator; depth = the "
                             "nearest-blob search")
    parser.add_argument("--hand", choices=HANDS, default="nearest",
                        help="with several hands, the locator takes the nearest (default) or the one on the "
                             "left / right of the frame as given")
    parser.add_argument("--handedness", choices=HANDEDNESS, default="right",
                        help="the tracked hand is a right (default) or a left hand: models learn right hands "
                             "and read a left one as its mirror image")


def _camera(args: argparse.Namespace):
    if args.camera is None and args.intrinsics is None:
        raise UserError("give --camera NAME or --intrinsics fx,fy,cx,cy")
    # a wrong input's UserError names its flag (UserError.flag): the CLI prints it in front
    cam = resolve_frame_camera(args.intrinsics, args.depth_unit, args.mirrored, args.camera)
    if args.mirrored is None and (message := mirrored_camera_warning(cam, ("--mirrored", "--no-mirrored"))):
        import sys

        print(f"srnpose predict: warning: --intrinsics: {message}", file=sys.stderr)
    return cam




def _check_out(text: str):
    """``--out`` checked before anything is loaded: not empty, not a file, not another command's folder."""
    out = check_folder_target(text, "--out")
    refuse_foreign_folder(out, "--out", (None, PREDICT_KIND), "give predict a folder of its own")
    return out


def overlay(depth_mm, result, layout: str):
    """(H + legend, W + H, 3) uint8 (:func:`srnpose.viz.pose_overlay`): the full frame with the crop box,
    centre and skeleton beside the crop box zoomed, a finger legend underneath (or 'no hand')."""
    if not result.hand_found:
        return pose_overlay(depth_mm, None, layout=layout)
    return pose_overlay(depth_mm, result.joints_uvd, result.crop_box, result.center_uvd, layout)


def _write_record(jsonl, name: str, result) -> None:
    import json

    record = result.to_json(name)
    record["timings_ms"] = {k: round(float(v), 3) for k, v in result.timings.items()}
    jsonl.write(json.dumps(record) + "\n")


def run(args: argparse.Namespace) -> int:
    import sys
    import time

    import numpy as np
    from tqdm import tqdm

    if not args.fps > 0:
        raise UserError(f"--fps: must be > 0, got {args.fps}")
    if args.sample:
        if args.inputs:
            raise UserError("give INPUT frames or --sample, not both")
        frames_in, sample_camera, _ = sample_frames()
        args.inputs = [str(p) for p in frames_in]
        if args.camera is None and args.intrinsics is None:
            args.camera = sample_camera
    elif not args.inputs:
        raise UserError("give INPUT frames (PNG files, folders, .npy stacks) or --sample")
    cam = _camera(args)
    out = _check_out(args.out)  # created when the first file is written, and removed again if predict fails
    source = open_sources(args.inputs, fps=args.fps)
    estimator = load_estimator(args, "predict")
    estimator.check_depth_unit = False  # checked below, naming --depth-unit
    smoother = OneEuroFilter() if args.smooth else None
    gif_frames = []
    found, latencies = 0, []
    t_start = time.perf_counter()
    if args.angles and estimator.layout != "canonical":
        raise UserError(f"--angles: joint angles need a 21-joint model; {args.checkpoint or 'the shipped model'} predicts the "
                        f"{estimator.layout} layout")
    held = []  # --angles: (name, result) until the sequence is fitted
    wrong_unit = 0  # frames whose depth looks like another unit: the first is named, the count said at the end
    # every file is staged and renamed into place when all frames are done: a failure leaves OUT as it was
    with output_folder(out) as files, source, files.open("predictions.jsonl") as jsonl, \
            tqdm(source, total=len(source), desc="predict", unit="frame") as frames:  # closed before an error line
        for frame, result in estimate_frames(estimator, frames, cam, smoother):
            if message := depth_unit_warning(frame.depth, cam.depth_unit_mm, "--depth-unit"):
                wrong_unit += 1
                if wrong_unit == 1:
                    tqdm.write(f"srnpose predict: warning: {frame.source}: {message}", file=sys.stderr)
            if args.angles:
                held.append((frame.name, result))
            else:
                _write_record(jsonl, frame.name, result)
            found += bool(result.hand_found)
            latencies.append(result.timings["total"])
            if not args.no_overlays:
                depth_mm = frame.depth.astype(np.float32) * np.float32(cam.depth_unit_mm)
                rgb = overlay(depth_mm, result, estimator.layout)
                save_png(files.stage(f"overlays/{frame.name}.png"), rgb)
                if len(source) > 1:
                    gif_frames.append(rgb[::2, ::2] if rgb.shape[1] > 400 else rgb)
        if held:
            from srnpose.hand.angles import fit_angles

            for (name, _), result in zip(held, fit_angles([r for _, r in held], args.handedness)):
                _write_record(jsonl, name, result)
        if gif_frames:
            save_gif(files.stage("overlays.gif"), gif_frames, fps=min(args.fps, 15.0))
    n = len(latencies)
    print(f"{n} frames, hand found in {found}; latency p50 {np.median(latencies):.1f} ms "
          f"({estimator.backend}, {estimator.threads} thread{'s' if estimator.threads != 1 else ''}); "
          f"{time.perf_counter() - t_start:.1f} s in all; wrote {out / 'predictions.jsonl'}"
          + ("" if args.no_overlays else f" and {out / 'overlays'}")
          + (f"; {wrong_unit} frames look like another depth unit (--depth-unit)" if wrong_unit > 1 else ""))
    return 0
