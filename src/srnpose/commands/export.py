"""``srnpose export``: a checkpoint to ONNX (whole network, dynamic batch, opset 17), checked against torch.

    srnpose export --checkpoint runs/demo --out model.onnx
    srnpose export --checkpoint runs/demo --out model.int8.onnx --int8

The parity check runs torch and ONNX Runtime on real crops (the Kinect V2 frames of
../shared/data/kinect2, cropped by the inference path; ``--crops DIR`` for another folder of depth
PNGs, synthetic crops when neither exists) and prints the largest difference. ``--int8`` writes the
quantized model to ``--out`` (the fp32 model beside it as ``<name>.fp32.onnx``) and reports the mean
3D error of fp32 and int8 on the held-out synthetic test set (the demo's), both with crops at the
joints' centroid and on full frames (centre from the depth map).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from srnpose.errors import UserError

DEFAULT_CROPS = Path("..") / "shared" / "data" / "kinect2"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="RUN", help="a run folder, checkpoint folder or .safetensors")
    parser.add_argument("--out", required=True, metavar="FILE", help="the .onnx file to write")
    parser.add_argument("--int8", action="store_true", help="quantize to int8 (static QDQ, calibrated on synthetic crops)")
    parser.add_argument("--int8-mode", choices=("static", "dynamic"), default="static",
                        help="static: calibrated QDQ (default); dynamic: weights only, no calibration")
    parser.add_argument("--crops", metavar="DIR", help="depth PNGs for the parity check (default ../shared/data/kinect2)")
    parser.add_argument("--camera", default="kinect2", metavar="NAME", help="camera preset of --crops (default kinect2)")
    parser.add_argument("--test-frames", type=int, default=100, metavar="N",
                        help="synthetic test frames for the int8 accuracy report (default 100)")
    parser.add_argument("--calibration-frames", type=int, default=64, metavar="N",
                        help="synthetic frames for int8 calibration (default 64)")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from srnpose.checkpoint import load_checkpoint
    from srnpose.export import (
        export_onnx,
        max_difference,
        quantize_int8,
        real_crops,
        synthetic_crops,
        synthetic_error_mm,
        synthetic_frames,
    )
    from srnpose.infer import HandPoseEstimator, make_ort_session

    out = Path(args.out)
    if out.suffix.lower() != ".onnx":
        raise UserError(f"--out: {out}: expected a .onnx file name")
    if args.test_frames < 1 or args.calibration_frames < 1:
        raise UserError("--test-frames and --calibration-frames must be >= 1")
    ckpt = load_checkpoint(args.checkpoint)
    model, size = ckpt.model, ckpt.input_size
    fp32_path = out.with_name(out.stem + ".fp32.onnx") if args.int8 else out
    export_onnx(model, fp32_path, ckpt.cube_mm, ckpt.layout, refine=ckpt.refine)
    print(f"wrote {fp32_path} (opset 17, dynamic batch, {model.num_stages} stages, {size}x{size} input)")

    folder = Path(args.crops) if args.crops else DEFAULT_CROPS
    if folder.is_dir():
        crops, what = real_crops(folder, size, ckpt.cube_mm, args.camera, limit=16), f"real crops from {folder}"
    elif args.crops:
        raise UserError(f"--crops: {folder}: no such folder")
    else:
        crops, what = synthetic_crops(16, size, ckpt.cube_mm), "synthetic crops (no real frames found)"
    diff = max_difference(model, make_ort_session(fp32_path), crops)
    mm = diff * ckpt.cube_mm / 2
    print(f"parity torch vs onnxruntime fp32 on {len(crops)} {what}: max |difference| {diff:.2e} "
          f"normalized ({mm:.4f} mm)")
    if not args.int8:
        return 0 if diff <= 1e-3 else 1

    calib = synthetic_crops(args.calibration_frames, size, ckpt.cube_mm) if args.int8_mode == "static" else None
    quantize_int8(fp32_path, out, calib, mode=args.int8_mode)
    diff8 = max_difference(model, make_ort_session(out), crops)
    print(f"wrote {out} (int8 {args.int8_mode}); max |difference| vs torch on the same crops {diff8:.2e} normalized")
    frames = synthetic_frames(args.test_frames)
    estimators = {name: HandPoseEstimator.from_model(model, ckpt.cube_mm, ckpt.layout, "onnxruntime", onnx_path=p,
                                                     refine=ckpt.refine)
                  for name, p in (("fp32", fp32_path), ("int8", out))}
    for center, label in (("joints", "crops at the joints' centroid"),
                          ("depth", "full frames, centre from the depth map")):
        fp32, int8 = (synthetic_error_mm(estimators[k], frames, center) for k in ("fp32", "int8"))
        both = np.isfinite(fp32["joints_xyz"]).all(axis=(1, 2)) & np.isfinite(int8["joints_xyz"]).all(axis=(1, 2))
        shift = float(np.linalg.norm(fp32["joints_xyz"][both] - int8["joints_xyz"][both], axis=-1).mean())
        change = int8["mean_error_mm"] - fp32["mean_error_mm"]
        print(f"synthetic test set, {args.test_frames} frames, {label}: mean 3D error fp32 "
              f"{fp32['mean_error_mm']:.2f} mm, int8 {int8['mean_error_mm']:.2f} mm (change {change:+.2f} mm); "
              f"int8 joints move {shift:.2f} mm on average from fp32")
    return 0 if diff <= 1e-3 else 1
