"""``srnpose export``: a checkpoint to ONNX (whole network, dynamic batch, opset 17), checked against torch.

    srnpose export --out model.onnx                          # the shipped model
    srnpose export --checkpoint runs/demo --out model.onnx
    srnpose export --checkpoint runs/demo --out model.int8.onnx --int8

The parity check runs torch and ONNX Runtime on crops of the shipped sample frames (``srnpose.samples()``,
with their camera; ``--crops DIR --camera NAME`` for a folder of your own depth PNGs), cut by the frame-path
engine, and prints which frames it used and the largest difference. ``--int8`` writes the
quantized model to ``--out`` (the fp32 model beside it as ``<name>.fp32.onnx``) and reports the mean
3D error of fp32 and int8 on the held-out synthetic test set (the demo's), both on full frames
(the label-free path, as ``predict``) and with first crops at the joints' centroid.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from srnpose.cameras import CAMERAS
from srnpose.errors import UserError, require_extra
from srnpose.inference.backends import make_ort_session
from srnpose.inference.export import (
    CALIBRATION_FRAMES,
    SAMPLES_DESCRIPTION,
    export_checkpoint,
    export_int8,
    int8_accuracy,
    max_difference,
    real_crops,
    sample_crops,
)
from srnpose.inference.frame_path import FramePath
from srnpose.outputs import check_file_target, output_folder
from srnpose.training.checkpoint import load_checkpoint
from srnpose.weights import release_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", metavar="RUN",
                        help="a run folder, checkpoint folder or .safetensors (default: the shipped model, "
                             "see MODEL_CARD.md)")
    parser.add_argument("--out", required=True, metavar="FILE", help="the .onnx file to write")
    parser.add_argument("--int8", action="store_true", help="quantize to int8 (static QDQ, calibrated on synthetic crops)")
    parser.add_argument("--int8-mode", choices=("static", "dynamic"), default=None,
                        help="with --int8: static: calibrated QDQ (default); dynamic: weights only, no calibration")
    parser.add_argument("--crops", metavar="DIR",
                        help="a folder of depth PNGs for the parity check (default: the shipped sample frames)")
    parser.add_argument("--camera", default=None, choices=tuple(CAMERAS), metavar="NAME",
                        help=f"camera preset of --crops: {', '.join(CAMERAS)} (default kinect2)")
    parser.add_argument("--test-frames", type=int, default=100, metavar="N",
                        help="synthetic test frames for the int8 accuracy report (default 100)")
    parser.add_argument("--calibration-frames", type=int, default=CALIBRATION_FRAMES, metavar="N",
                        help=f"synthetic frames for int8 calibration (default {CALIBRATION_FRAMES})")


def _check_args(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """Every flag checked before anything is written."""
    out = check_file_target(args.out, "--out", (".onnx",))  # not a folder, not /proc: a folder that takes files
    if args.int8_mode is not None and not args.int8:
        raise UserError(f"--int8-mode {args.int8_mode}: goes with --int8 (without it the export is fp32)")
    if args.test_frames < 1 or args.calibration_frames < 1:
        raise UserError("--test-frames and --calibration-frames must be >= 1")
    if args.crops is None:
        if args.camera is not None:
            raise UserError(f"{args.camera} names the camera of --crops DIR; the default frames (the shipped "
                            "samples) carry their own", flag="--camera")
        return out, None
    folder = Path(args.crops)
    if not folder.is_dir():
        raise UserError(f"--crops: {folder}: no such folder")
    return out, folder


def run(args: argparse.Namespace) -> int:
    out, folder = _check_args(args)
    require_extra("onnx")
    require_extra("onnxruntime", "onnx")
    ckpt = load_checkpoint(args.checkpoint or release_dir())
    engine = FramePath.from_checkpoint(ckpt)
    if folder is not None:
        camera = args.camera or "kinect2"
        crops, what = real_crops(engine, folder, camera, limit=16), f"crops of the frames in {folder} (camera {camera})"
    else:  # the same frames on every install and from every working directory
        crops, what = sample_crops(engine, limit=16), f"crops of {SAMPLES_DESCRIPTION}"
    fp32_path = out.with_name(out.stem + ".fp32.onnx") if args.int8 else out
    # both files are written under temporary names and renamed into place once every check has run:
    # a failure (a full disk, Ctrl-C) leaves an earlier export exactly as it was
    with output_folder(out.parent, "--out") as files:
        return _export(args, ckpt, engine, crops, what, files, out, fp32_path)


def _export(args, ckpt, engine, crops, what, files, out: Path, fp32_path: Path) -> int:
    fp32_tmp = files.stage(fp32_path.name)
    export_checkpoint(engine, fp32_tmp)
    size = ckpt.input_size
    print(f"wrote {fp32_path} (opset 17, dynamic batch, {ckpt.model.num_stages} stages, {size}x{size} input, "
          f"{engine.policy.passes} pass(es) per frame)")
    diff = max_difference(ckpt.model, make_ort_session(fp32_tmp), crops)
    print(f"parity torch vs onnxruntime fp32 on {len(crops)} {what}: max |difference| {diff:.2e} "
          f"normalized ({diff * ckpt.cube_mm / 2:.4f} mm)")
    if not args.int8:
        return 0 if diff <= 1e-3 else 1

    mode = args.int8_mode or "static"
    int8_tmp = files.stage(out.name)
    export_int8(engine, fp32_tmp, int8_tmp, mode, args.calibration_frames)
    diff8 = max_difference(ckpt.model, make_ort_session(int8_tmp), crops)
    print(f"wrote {out} (int8 {mode}); max |difference| vs torch on the same crops {diff8:.2e} normalized")
    engines = {name: FramePath.from_checkpoint(ckpt, "onnxruntime", onnx_path=p) for name, p in
               (("fp32", fp32_tmp), ("int8", int8_tmp))}
    acc = int8_accuracy(engines, args.test_frames)
    for center, label in (("policy", "full frames, the label-free path"),
                          ("joints", "first crops at the joints' centroid")):
        fp32, int8 = acc[("fp32", center)], acc[("int8", center)]
        change = int8["mean_error_mm"] - fp32["mean_error_mm"]
        print(f"synthetic test set, {args.test_frames} frames, {label}: mean 3D error fp32 "
              f"{fp32['mean_error_mm']:.2f} mm, int8 {int8['mean_error_mm']:.2f} mm (change {change:+.2f} mm); "
              f"int8 joints move {int8['shift_mm']:.2f} mm on average from fp32")
    return 0 if diff <= 1e-3 else 1
