"""``srnpose predict``: hand poses on full depth frames (PNG files, folders, .npy stacks).

    srnpose predict --sample --out out/sample              # the shipped model on the shipped sample frames
    srnpose predict frames/ --checkpoint runs/demo --camera kinect2 --out out/k2   # a folder of your depth PNGs
    srnpose predict frames.npy --checkpoint model.onnx --intrinsics 475,475,320,240 --depth-unit 0.125 --out out

Writes ``OUT/predictions.jsonl`` (one object per frame: frame, hand_found, joints_uvd, joints_xyz,
center_uvd, latency_ms, timings_ms; with the fit to the depth (the default for 21-joint models, ``--no-fit``
turns it off) joints_xyz and joints_uvd are the fitted hand's, joints_raw_xyz the network's, and
joint_angles, joints_fitted_xyz and handedness the fitted hand's; with ``--angles`` these three are the
kinematic hand fitted through all the frames as one sequence: :mod:`srnpose.hand.angles`),
``OUT/overlays/<frame>.png`` (skeleton, crop box and centre on the colour-mapped depth) and, for more than
one frame, ``OUT/overlays.gif``.

The fit (:mod:`srnpose.fitting`) runs on each frame alone, except for one folder or one ``.npy`` stack of
several frames: a recording of one hand, fitted as a sequence (one hand shape, a temporal term;
:func:`srnpose.fitting.fit.fit_sequence_frames`) :data:`SEQUENCE_CHUNK` frames at a time.
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

# predict's sequence fit: frames fitted as one sequence at a time (10 s at 30 frames/s); their depth frames
# wait in memory until their chunk is fitted, and each chunk gets its own hand shape
SEQUENCE_CHUNK = 300


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
    add_fit_argument(parser, "one folder or .npy stack of several frames is fitted as a sequence (one hand "
                             "shape, smooth motion), other inputs frame by frame")
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


def add_fit_argument(parser, how: str) -> None:
    """``--fit`` / ``--no-fit``: the fit of the articulated hand to the depth after the network (predict, live)."""
    parser.add_argument("--fit", action=argparse.BooleanOptionalAction, default=None,
                        help="fit the articulated hand to the depth after the network (default for 21-joint "
                             "models, about 14 ms per frame on one core): joints_xyz are the fitted hand's, "
                             f"joints_raw_xyz the network's; {how}; --no-fit: the network's joints alone")


def fit_note(estimator, args: argparse.Namespace) -> str:
    """Whether the fit to the depth runs, in the words of predict's and live's first line."""
    if estimator.fit is not None:
        return f"fit to the depth: on ({estimator.fit.iterations} LM steps; --no-fit for the network's joints alone)"
    if args.fit is False:
        return "fit to the depth: off (--no-fit)"
    return f"fit to the depth: off (the {estimator.layout} layout: the fit needs a 21-joint model)"


def load_estimator(args: argparse.Namespace, command: str):
    """The estimator of ``--checkpoint`` on ``--backend`` / ``--threads`` (their defaults when not given),
    with the fit of ``--fit`` / ``--no-fit``; prints which runtime, how many threads and why, and the fit."""
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
                     handedness=args.handedness, fit=args.fit)
    threads = estimator.threads
    print(f"srnpose {command}: network on {estimator.backend} ({why}), {threads} thread{'s' if threads != 1 else ''}"
          f"{' (--threads)' if args.threads is not None else ''}; {fit_note(estimator, args)}", flush=True)
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


class _Sink:
    """Where predict's results go, in frame order: ``predictions.jsonl`` (held until the end with ``--angles``),
    the overlays and the GIF's frames, and the counts of the summary line."""

    def __init__(self, files, jsonl, args: argparse.Namespace, estimator, cam, frames: int) -> None:
        self.files, self.jsonl, self.args, self.estimator, self.cam = files, jsonl, args, estimator, cam
        self.gif = frames > 1
        self.gif_frames, self.held, self.latencies, self.fit_ms, self.found = [], [], [], [], 0

    def add(self, frame, result) -> None:
        import numpy as np

        if self.args.angles:
            self.held.append((frame.name, result))
        else:
            _write_record(self.jsonl, frame.name, result)
        self.found += bool(result.hand_found)
        self.latencies.append(result.timings["total"])
        if "fit" in result.timings:
            self.fit_ms.append(result.timings["fit"])
        if not self.args.no_overlays:
            depth_mm = frame.depth.astype(np.float32) * np.float32(self.cam.depth_unit_mm)
            rgb = overlay(depth_mm, result, self.estimator.layout)
            save_png(self.files.stage(f"overlays/{frame.name}.png"), rgb)
            if self.gif:
                self.gif_frames.append(rgb[::2, ::2] if rgb.shape[1] > 400 else rgb)

    def finish(self) -> None:
        if self.held:
            from srnpose.hand.angles import fit_angles

            for (name, _), result in zip(self.held, fit_angles([r for _, r in self.held], self.args.handedness)):
                _write_record(self.jsonl, name, result)
        if self.gif_frames:
            save_gif(self.files.stage("overlays.gif"), self.gif_frames, fps=min(self.args.fps, 15.0))


def _is_recording(inputs: list[str], frames: int) -> bool:
    """One folder or one ``.npy`` stack of several frames: one hand's recording, fitted as a sequence."""
    from pathlib import Path

    return frames > 1 and len(inputs) == 1 and (Path(inputs[0]).is_dir() or inputs[0].lower().endswith(".npy"))


def _fit_sequence(pending: list, cfg, cam, handedness: str, smoother) -> list:
    """``(frame, result)`` pairs of a recording with the fit of the whole chunk as one sequence
    (:func:`srnpose.fitting.results.fit_results`, ``sequence=True``), then ``--smooth``'s filter."""
    from srnpose.fitting.results import fit_results
    from srnpose.inference.estimator import smooth_result

    results = fit_results([r for _, r in pending], [f.depth for f, _ in pending], cam, cfg, handedness=handedness,
                          sequence=True, replace=True)
    if smoother is not None:
        results = [smooth_result(r, smoother, f.timestamp_s, cam, f.depth.shape[1]) for (f, _), r in zip(pending, results)]
    return [(f, r) for (f, _), r in zip(pending, results)]


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
    t_start = time.perf_counter()
    if args.angles and estimator.layout != "canonical":
        raise UserError(f"--angles: joint angles need a 21-joint model; {args.checkpoint or 'the shipped model'} predicts the "
                        f"{estimator.layout} layout")
    # a recording is fitted as a sequence, SEQUENCE_CHUNK frames at a time, after the network (its frames wait)
    sequence_cfg = estimator.fit if estimator.fit is not None and _is_recording(args.inputs, len(source)) else None
    if sequence_cfg is not None:
        estimator.fit = None
    pending = []
    wrong_unit = 0  # frames whose depth looks like another unit: the first is named, the count said at the end
    # every file is staged and renamed into place when all frames are done: a failure leaves OUT as it was
    with output_folder(out) as files, source, files.open("predictions.jsonl") as jsonl, \
            tqdm(source, total=len(source), desc="predict", unit="frame") as frames:  # closed before an error line
        sink = _Sink(files, jsonl, args, estimator, cam, len(source))
        for frame, result in estimate_frames(estimator, frames, cam, None if sequence_cfg is not None else smoother):
            if message := depth_unit_warning(frame.depth, cam.depth_unit_mm, "--depth-unit"):
                wrong_unit += 1
                if wrong_unit == 1:
                    tqdm.write(f"srnpose predict: warning: {frame.source}: {message}", file=sys.stderr)
            if sequence_cfg is None:
                sink.add(frame, result)
                continue
            pending.append((frame, result))
            if len(pending) == SEQUENCE_CHUNK:
                for pair in _fit_sequence(pending, sequence_cfg, cam, args.handedness, smoother):
                    sink.add(*pair)
                pending = []
        if pending:
            for pair in _fit_sequence(pending, sequence_cfg, cam, args.handedness, smoother):
                sink.add(*pair)
        sink.finish()
    if sequence_cfg is not None:
        estimator.fit = sequence_cfg
    fit = "no fit"
    if estimator.fit is not None:
        fit = f"fit to the depth {'as a sequence' if sequence_cfg is not None else 'per frame'}" + (
            f", {np.median(sink.fit_ms):.1f} ms of it" if sink.fit_ms else ": no hand to fit")
    print(f"{len(sink.latencies)} frames, hand found in {sink.found}; latency p50 {np.median(sink.latencies):.1f} ms "
          f"({estimator.backend}, {estimator.threads} thread{'s' if estimator.threads != 1 else ''}; {fit}); "
          f"{time.perf_counter() - t_start:.1f} s in all; wrote {out / 'predictions.jsonl'}"
          + ("" if args.no_overlays else f" and {out / 'overlays'}")
          + (f"; {wrong_unit} frames look like another depth unit (--depth-unit)" if wrong_unit > 1 else ""))
    return 0
