"""``srnpose export``'s library: the checkpoint's ONNX file, parity checks and int8 quantization.

The ONNX export itself (graph, metadata) is :func:`srnpose.inference.backends.export_onnx`; the crops used for
checks and calibration are cut by the frame-path engine, as ``predict`` cuts them.

int8: static QDQ quantization (onnxruntime.quantization) of the ResNet stem and stages, calibrated
on crops of synthetic frames; the re-parameterization's geometry stays float.
``quantize_int8(..., mode="dynamic")`` is the calibration-free alternative.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from srnpose.errors import UserError, require_extra
from srnpose.evaluation.model_eval import load_test_records, score_estimates
from srnpose.inference.backends import INPUT_NAME, METADATA_KEY, export_onnx, read_metadata
from srnpose.inference.frame_path import FrameCamera, estimate_records, resolve_frame_camera
from srnpose.inference.sensors import FolderSource
from srnpose.outputs import atomic_path
from srnpose.weights import samples

__all__ = [
    "CALIBRATION_FRAMES",
    "export_checkpoint",
    "max_difference",
    "synthetic_crops",
    "real_crops",
    "sample_crops",
    "sample_frames_and_camera",
    "quantize_int8",
    "export_int8",
    "int8_accuracy",
]

QUANTIZED_OPS = ["Conv", "Gemm", "MatMul"]  # the weighted layers (dynamic mode, fallback)
NETWORK_SCOPES = ("/model/stem", "/model/stages.")  # exported node names of the ResNet parts (static int8)
CALIBRATION_FRAMES = 64  # synthetic frames whose crops calibrate int8 (export --int8 and the benchmarks)


def export_checkpoint(engine, path: str | Path) -> Path:
    """Export a :class:`~srnpose.inference.frame_path.FramePath`'s torch model with the engine's metadata."""
    return export_onnx(engine.runner.model, path, engine.metadata())


def max_difference(model, session, crops: np.ndarray) -> float:
    """Largest absolute difference (normalized units) between torch and an ORT session on ``crops``."""
    import torch

    with torch.inference_mode():
        ref = model.forward_joints(torch.from_numpy(crops)).numpy()
    out = session.run(None, {session.get_inputs()[0].name: crops})[0]
    return float(np.max(np.abs(out - ref)))


# --------------------------------------------------------------------------- crops for checks


SAMPLES_DESCRIPTION = "the shipped sample frames (srnpose.samples())"  # the default frames of export and benchmark


def sample_frames_and_camera() -> tuple[list[np.ndarray], FrameCamera]:
    """The shipped sample frames (:func:`srnpose.samples`: depth as the sensor stores it, (H, W) uint16)
    and their camera (preset, depth unit, mirroring): the default frames of ``export``'s parity check and
    of ``benchmark``, the same on every install and from every working directory."""
    frames = samples()
    first = frames[0]
    cam = resolve_frame_camera(camera=first.camera, depth_unit_mm=first.depth_unit_mm, mirrored=first.mirrored)
    return [s.depth for s in frames], cam


def _first_crops(engine, depths, cam: FrameCamera, limit: int, where: str) -> np.ndarray:
    """First-pass crops (N, 1, S, S) of at most ``limit`` full frames, cut by the engine as ``predict`` cuts them."""
    crops = []
    for depth in depths:
        view = cam.view_flip(depth.shape[1]).frame(depth)
        center = engine.locate(view, cam)
        if center is not None:
            crops.append(engine.crop(view, center, cam)[0])
        if len(crops) >= limit:
            break
    if not crops:
        raise UserError(f"{where}: no hand found in any frame")
    return np.stack(crops)[:, None].astype(np.float32)


def real_crops(engine, folder: str | Path, camera: str = "kinect2", limit: int = 8) -> np.ndarray:
    """First-pass crops (N, 1, S, S) of real frames (a folder of depth PNGs from ``camera``), cut by
    the engine as ``predict`` cuts them."""
    return _first_crops(engine, (frame.depth for frame in FolderSource(folder)), resolve_frame_camera(camera=camera),
                        limit, str(folder))


def sample_crops(engine, limit: int = 8) -> np.ndarray:
    """First-pass crops (N, 1, S, S) of :func:`sample_frames_and_camera`'s frames, cut as ``predict`` cuts them."""
    depths, cam = sample_frames_and_camera()
    return _first_crops(engine, depths, cam, limit, SAMPLES_DESCRIPTION)


def synthetic_crops(engine, count: int, seed: int = 777) -> np.ndarray:
    """First-pass crops (N, 1, S, S) of synthetic frames, cut by the engine (calibration data)."""
    from srnpose.synth import frame_seed, render_frame

    crops = []
    for i in range(count):
        frame = render_frame(frame_seed(seed, i))
        cam = FrameCamera(frame.intrinsics)
        center = engine.locate(frame.depth_mm, cam)
        if center is not None:
            crops.append(engine.crop(frame.depth_mm, center, cam)[0])
    if not crops:
        raise UserError(f"no hand found in any of {count} synthetic calibration frames")
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
        with atomic_path(out_path) as tmp:  # written beside it, renamed when complete: never half a model
            _quantize(fp32_path, tmp, calibration, mode)
        return Path(out_path)
    finally:
        root.setLevel(level)


def _quantize(fp32_path, out_path, calibration, mode) -> Path:
    import tempfile

    require_extra("onnxruntime", "onnx")
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


def export_int8(engine, fp32_path: str | Path, out_path: str | Path, mode: str = "static",
                calibration_frames: int = CALIBRATION_FRAMES) -> Path:
    """``srnpose export --int8``'s model: quantize the fp32 export of ``engine``'s model, calibrated on
    ``calibration_frames`` synthetic frames' crops (static mode). The benchmarks time this same file."""
    calib = synthetic_crops(engine, calibration_frames) if mode == "static" else None
    return quantize_int8(fp32_path, out_path, calib, mode=mode)


def int8_accuracy(engines: dict, test_frames: int) -> dict:
    """Mean 3D error (mm) of each engine on the held-out synthetic test set, label-free path and
    joints-centroid crops, and how far each engine's joints move from the first one's."""
    records = load_test_records("synth", test_frames)
    out: dict = {}
    for center in ("policy", "joints"):
        scores = {name: score_estimates(estimate_records(e, records, center), records) for name, e in engines.items()}
        both = np.logical_and.reduce([s.found for s in scores.values()])
        ref = None
        for name, sc in scores.items():
            final = np.full((len(records),) + sc.pred_xyz.shape[2:], np.nan)
            final[sc.found] = sc.pred_xyz[:, -1]
            ref = final if ref is None else ref
            out[(name, center)] = {"mean_error_mm": sc.stage_mm[-1] if sc.found.any() else float("nan"),
                                   "found": int(sc.found.sum()), "frames": len(records),
                                   "shift_mm": float(np.linalg.norm(final[both] - ref[both], axis=-1).mean())}
    return out
