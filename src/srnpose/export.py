"""ONNX export of the whole SRN (re-parameterization included), parity checks and int8 quantization.

The exported graph takes ``depth`` (B, 1, S, S) float32 normalized crops and returns
``stage_joints`` (B, stages, J, 3) in normalized crop coordinates; the batch is dynamic, opset 17.
The file's metadata (key ``srnpose``, JSON) holds what inference needs around the network:
input size, stages, joints, cube, joint layout, refinement passes and the model config, so
``srnpose.load("model.onnx")`` works without the checkpoint.

int8: static QDQ quantization (onnxruntime.quantization) of the ResNet stem and stages, calibrated
on crops of synthetic frames; the re-parameterization's geometry stays float.
``quantize_int8(..., mode="dynamic")`` is the calibration-free alternative.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from srnpose.errors import UserError

__all__ = [
    "OPSET",
    "export_onnx",
    "read_metadata",
    "max_difference",
    "synthetic_crops",
    "real_crops",
    "quantize_int8",
    "synthetic_error_mm",
    "synthetic_frames",
]

OPSET = 17  # AveragePool with ceil_mode/count_include_pad, TopK, GatherElements: all there since 11-17
INPUT_NAME, OUTPUT_NAME = "depth", "stage_joints"
METADATA_KEY = "srnpose"
QUANTIZED_OPS = ["Conv", "Gemm", "MatMul"]  # the weighted layers (dynamic mode, fallback)
NETWORK_SCOPES = ("/srn/stem", "/srn/stages.")  # exported node names of the ResNet parts (static int8)


def _wrapper(model):
    import torch

    class StageJoints(torch.nn.Module):
        def __init__(self, srn) -> None:
            super().__init__()
            self.srn = srn

        def forward(self, depth):
            return self.srn.forward_joints(depth)

    # eval() on the wrapper too: the exporter restores the wrapper's mode afterwards, and a fresh
    # Module is in training mode, which would switch the SRN's BatchNorm to training.
    return StageJoints(model).eval()


def export_onnx(model, path: str | Path | None = None, cube_mm: Any = 250.0, layout: str = "canonical",
                opset: int = OPSET, refine: int = 0) -> Path | bytes:
    """Export ``model`` (an SRN) to ``path``, or return the ONNX bytes when ``path`` is None.
    ``refine``: the refinement passes the estimator runs (metadata only, the graph is one pass)."""
    import onnx
    import torch

    cfg = model.config
    was_training = model.training
    model.eval()
    dummy = torch.zeros(1, 1, cfg.input_size, cfg.input_size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_wrapper(model), (dummy,), buffer, dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          do_constant_folding=True)
    model.train(was_training)
    proto = onnx.load_from_string(buffer.getvalue())
    from srnpose.config import to_dict

    meta = {"input_size": cfg.input_size, "num_stages": cfg.num_stages, "num_joints": cfg.num_joints,
            "cube_mm": np.broadcast_to(np.asarray(cube_mm, dtype=float), (3,)).tolist(), "layout": layout,
            "refine": int(refine), "model": to_dict(cfg)}
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    proto.producer_name = "srnpose"
    if path is None:
        return proto.SerializeToString()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    return path


def read_metadata(path: str | Path) -> dict:
    """The ``srnpose`` metadata of an exported file; UserError naming the file if it has none."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises several types for a broken file
        raise UserError(f"{path}: cannot read ONNX model ({type(exc).__name__})") from None
    for entry in proto.metadata_props:
        if entry.key == METADATA_KEY:
            return json.loads(entry.value)
    raise UserError(f"{path}: not an srnpose export (no '{METADATA_KEY}' metadata)")


def max_difference(model, session, crops: np.ndarray) -> float:
    """Largest absolute difference (normalized units) between torch and an ORT session on ``crops``."""
    import torch

    with torch.inference_mode():
        ref = model.forward_joints(torch.from_numpy(crops)).numpy()
    out = session.run(None, {session.get_inputs()[0].name: crops})[0]
    return float(np.max(np.abs(out - ref)))


# --------------------------------------------------------------------------- crops for checks


def real_crops(folder: str | Path, input_size: int, cube_mm: Any = 250.0, camera: str = "kinect2",
               limit: int = 8) -> np.ndarray:
    """Crops (N, 1, S, S) of real frames (a folder of depth PNGs from ``camera``), cut by the inference path."""
    from srnpose.geometry import find_hand_center
    from srnpose.infer import FrameCamera, crop_frame, resolve_frame_camera
    from srnpose.sensors import FolderSource

    cam: FrameCamera = resolve_frame_camera(camera=camera)
    crops = []
    for frame in FolderSource(folder):
        view = frame.depth[:, ::-1] if cam.mirrored else frame.depth
        center = find_hand_center(view, cam.intrinsics, cube_mm, depth_unit_mm=cam.depth_unit_mm)
        if center is not None:
            crops.append(crop_frame(view, center, cube_mm, input_size, cam.intrinsics, cam.depth_unit_mm)[0])
        if len(crops) >= limit:
            break
    if not crops:
        raise UserError(f"{folder}: no hand found in any frame")
    return np.stack(crops)[:, None].astype(np.float32)


SYNTH_TEST_SEED = 20190918  # the held-out synthetic test stream of `srnpose demo` (srnpose.train)


def synthetic_frames(count: int, seed: int = SYNTH_TEST_SEED) -> list:
    from srnpose.synth import frame_seed, render_frame

    return [render_frame(frame_seed(seed, i)) for i in range(count)]


def synthetic_crops(count: int, input_size: int, cube_mm: Any = 250.0, seed: int = 777) -> np.ndarray:
    """Crops (N, 1, S, S) of synthetic frames, cut by the inference path (calibration data)."""
    from srnpose.geometry import find_hand_center
    from srnpose.infer import crop_frame

    crops = []
    for frame in synthetic_frames(count, seed):
        center = find_hand_center(frame.depth_mm, frame.intrinsics, cube_mm)
        if center is not None:
            crops.append(crop_frame(frame.depth_mm, center, cube_mm, input_size, frame.intrinsics)[0])
    return np.stack(crops)[:, None].astype(np.float32)


# --------------------------------------------------------------------------- int8


def _network_nodes_excluded(model_path: Path) -> list[str]:
    """Nodes outside the ResNet stem and stages (the re-parameterization's geometry): kept in float."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    nodes = graph.node
    network = {n.name for n in nodes if any(scope in n.name for scope in NETWORK_SCOPES)}
    if not network:  # exporter naming changed: fall back to quantizing only the weighted layers
        return [n.name for n in nodes if n.op_type not in QUANTIZED_OPS]
    # The layers that read a tensor the float part also reads stay in float, everything behind them
    # is int8: a quantized copy of the input crop, shared with the re-parameterization, turned the
    # background (+1) into hand (< 1) in its foreground mask and broke stages 2-3 of the demo model
    # (+84 mm); a stage s > 1's concatenation of features and maps should not share one uint8 scale.
    produced_outside = {i.name for i in graph.input}
    produced_outside |= {out for n in nodes if n.name not in network for out in n.output}
    boundary = {n.name for n in nodes if n.name in network and any(i in produced_outside for i in n.input)}
    return [n.name for n in nodes if n.name not in network or n.name in boundary]


def quantize_int8(fp32_path: str | Path, out_path: str | Path, calibration: np.ndarray | None = None,
                  mode: str = "static") -> Path:
    """Quantize an exported fp32 model: ``static`` (QDQ, needs ``calibration`` crops) or ``dynamic``.

    Static: shape inference first (onnxruntime's pre-processing), then per-channel QDQ of every node
    of the ResNet stem and stages (convolutions, residual adds, ReLUs, pooling, FC layers), so the
    int8 chain is not broken at each residual add; the re-parameterization stays float. Measured
    on the default model here, QDQ of Conv/Gemm only was no faster than fp32, and dynamic
    quantization (ConvInteger) was about 4x slower than fp32.
    """
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))  # the quantizer logs advice at WARNING on the root logger
    try:
        return _quantize(fp32_path, out_path, calibration, mode)
    finally:
        root.setLevel(level)


def _quantize(fp32_path, out_path, calibration, mode) -> Path:
    import tempfile

    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    metadata = read_metadata(fp32_path)
    if mode == "dynamic":
        quantize_dynamic(str(fp32_path), str(out_path), op_types_to_quantize=QUANTIZED_OPS,
                         weight_type=QuantType.QInt8)
    elif mode == "static":
        if calibration is None or len(calibration) == 0:
            raise ValueError("static quantization needs calibration crops")

        class Reader(CalibrationDataReader):
            def __init__(self, crops: np.ndarray) -> None:
                self.items = iter([{INPUT_NAME: crops[i:i + 1]} for i in range(len(crops))])

            def get_next(self):
                return next(self.items, None)

        with tempfile.TemporaryDirectory(prefix="srnpose-int8-") as tmp:
            pre = Path(tmp) / "pre.onnx"
            quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
            quantize_static(str(pre), str(out_path), Reader(calibration.astype(np.float32)),
                            quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, per_channel=True,
                            nodes_to_exclude=_network_nodes_excluded(pre))
    else:
        raise ValueError(f"unknown quantization mode {mode!r}; valid: static, dynamic")
    import onnx

    proto = onnx.load(str(out_path))  # keep the srnpose metadata
    if not any(e.key == METADATA_KEY for e in proto.metadata_props):
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
        onnx.save(proto, str(out_path))
    return out_path


def synthetic_error_mm(estimator, frames: list, center: str = "depth") -> dict:
    """Mean 3D joint error (mm) of ``estimator`` on synthetic frames; also returns the predictions.

    ``center="depth"``: the full-frame path (the hand centre found in the depth map);
    ``center="joints"``: crops at the labelled joints' 3D centroid, the training/evaluation protocol of
    models trained with ``data.center=joints`` (the model's own accuracy, without the centre search).
    """
    from srnpose.geometry import uvd_to_xyz, xyz_to_uvd
    from srnpose.skeleton import convert

    if center not in ("depth", "joints"):
        raise ValueError(f"center must be 'depth' or 'joints', got {center!r}")
    errors, preds, missed = [], [], 0
    for frame in frames:
        given = None
        if center == "joints":
            given = xyz_to_uvd(uvd_to_xyz(frame.joints_uvd, frame.intrinsics).mean(axis=0), frame.intrinsics)
        res = estimator.predict(frame.depth_mm, intrinsics=frame.intrinsics, center_uvd=given)
        preds.append(res.joints_xyz)
        if not res.hand_found:
            missed += 1
            continue
        gt = frame.joints_xyz if estimator.layout == "canonical" else convert(frame.joints_xyz, "canonical",
                                                                                estimator.layout)
        errors.append(np.linalg.norm(res.joints_xyz - gt, axis=-1).mean())
    return {"mean_error_mm": float(np.mean(errors)) if errors else float("nan"), "frames": len(frames),
            "missed": missed, "joints_xyz": np.stack(preds)}
