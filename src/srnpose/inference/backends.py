"""Inference backends: the network as a function ``crops (B, 1, S, S) -> stage joints (B, K, J, 3)``.

A leaf module (it imports no other part of the frame path): the ONNX export of the network, the
ONNX Runtime session, the model metadata, and the two runners. :mod:`srnpose.inference.frame_path`,
:mod:`srnpose.inference.estimator` and :mod:`srnpose.inference.export` all import it.

The exported graph takes ``depth`` (B, 1, S, S) float32 normalized crops and returns
``stage_joints`` (B, stages, J, 3) in normalized crop coordinates; the batch is dynamic, opset 17.
The file's metadata (key ``srnpose``, JSON) holds what inference needs around the network: input
size, stages, joints, cube, joint layout, the centre rule and passes, and the model config, so
``srnpose.load("model.onnx")`` works without the checkpoint.
"""

from __future__ import annotations

import io
import json
import os
import typing
import warnings
from pathlib import Path
from typing import Literal

import numpy as np

from srnpose.errors import UserError, require_extra

__all__ = [
    "Backend",
    "BACKENDS",
    "OPSET",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "METADATA_KEY",
    "cores",
    "export_onnx",
    "read_metadata",
    "ort_session_options",
    "make_ort_session",
    "TorchRunner",
    "OrtRunner",
    "make_runner",
]

Backend = Literal["torch", "onnxruntime"]
BACKENDS: tuple[str, ...] = typing.get_args(Backend)
OPSET = 17  # AveragePool with ceil_mode/count_include_pad, TopK, GatherElements: all there since 11-17
INPUT_NAME, OUTPUT_NAME = "depth", "stage_joints"
METADATA_KEY = "srnpose"


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- ONNX files


def export_onnx(model, path: str | Path | None = None, metadata: dict | None = None,
                opset: int = OPSET) -> Path | bytes:
    """Export ``model`` (an SRN) to ``path``, or return the ONNX bytes when ``path`` is None.

    ``metadata``: what the frame path needs around the network (cube, layout, centre rule, passes; see
    :func:`srnpose.inference.frame_path.FramePath.metadata`), stored as JSON under the key ``srnpose`` with the
    input size, stage and joint counts and the model config added here.
    """
    onnx = require_extra("onnx", "onnx")
    import torch

    from srnpose.config import to_dict
    from srnpose.model import SRNJoints

    cfg = model.config
    was_training = model.training
    model.eval()
    dummy = torch.zeros(1, 1, cfg.input_size, cfg.input_size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # eval() on the wrapper too: the exporter restores the wrapper's mode afterwards, and a fresh
        # Module is in training mode, which would switch the SRN's BatchNorm to training.
        torch.onnx.export(SRNJoints(model).eval(), (dummy,), buffer, dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          do_constant_folding=True)
    model.train(was_training)
    proto = onnx.load_from_string(buffer.getvalue())
    meta = dict(metadata or {})
    meta.update({"input_size": cfg.input_size, "num_stages": cfg.num_stages, "num_joints": cfg.num_joints,
                 "model": to_dict(cfg)})
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    proto.producer_name = "srnpose"
    if path is None:
        return proto.SerializeToString()
    from srnpose.outputs import write_bytes

    return write_bytes(path, proto.SerializeToString())  # a temporary name, then renamed: never half a file


def read_metadata(path: str | Path) -> dict:
    """The ``srnpose`` metadata of an exported file; UserError naming the file if it has none."""
    onnx = require_extra("onnx", "onnx")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - onnx raises several types for a broken file
        raise UserError(f"{path}: cannot read ONNX model ({type(exc).__name__})") from None
    for entry in proto.metadata_props:
        if entry.key == METADATA_KEY:
            return json.loads(entry.value)
    raise UserError(f"{path}: not an srnpose export (no '{METADATA_KEY}' metadata)")


# --------------------------------------------------------------------------- runtimes


def ort_session_options(threads: int | None = None):
    """ONNX Runtime options for batch-1 latency: every graph optimization, one intra-op thread per core."""
    ort = require_extra("onnxruntime", "onnx")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = int(threads or cores())
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return so


def make_ort_session(model: bytes | str | Path, threads: int | None = None):
    ort = require_extra("onnxruntime", "onnx")
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, ort_session_options(threads), providers=["CPUExecutionProvider"])


class TorchRunner:
    """(B, 1, S, S) float32 numpy -> (B, stages, J, 3) float32 numpy through the torch model
    (in eval mode, on the model's device)."""

    backend = "torch"

    def __init__(self, model) -> None:
        self.model = model

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        import torch

        model = getattr(self.model, "module", self.model)  # DistributedDataParallel during training
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                return model.forward_joints(torch.from_numpy(crops).to(device)).cpu().numpy()
        finally:
            model.train(was_training)


class OrtRunner:
    """The same through an ONNX Runtime session (input ``depth``, output ``stage_joints``)."""

    backend = "onnxruntime"

    def __init__(self, session) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: crops})[0]


def make_runner(model, backend: str = "torch", onnx_path: str | Path | bytes | None = None,
                threads: int | None = None):
    """The runner of ``model`` on ``backend``; ``onnxruntime`` exports it in memory unless ``onnx_path``
    (for example an int8 file made from it) is given."""
    if backend == "torch":
        return TorchRunner(model)
    if backend == "onnxruntime":
        return OrtRunner(make_ort_session(onnx_path if onnx_path is not None else export_onnx(model), threads))
    raise UserError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")

