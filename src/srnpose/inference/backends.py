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

import importlib.util
import io
import json
import os
import typing
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np

from srnpose.config import to_dict
from srnpose.errors import MissingExtraError, UserError, require_extra
from srnpose.outputs import write_bytes

__all__ = [
    "Backend",
    "BACKENDS",
    "DEFAULT_THREADS",
    "default_backend",
    "torch_threads",
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


# Intra-op threads of inference (predict, live, srnpose.load()) unless told. One: the shipped model is
# 0.056 GFLOP a frame, too little to share out, and threads that wait on each other collapse when other
# jobs hold the cores. Measured on 2 shared cores, Kinect V2 frames, load 3: torch 2 threads p50 49 ms
# (p95 212 ms), 1 thread 22 ms; ONNX Runtime 2 threads 13 ms, 1 thread 9 ms. Under a training run
# beside it, torch on 2 threads took p50 3.2 s a frame.
DEFAULT_THREADS = 1


def default_backend() -> tuple[str, str]:
    """``(backend, why)``: ``onnxruntime`` when it and ``onnx`` (which exports a torch checkpoint in memory)
    import, else ``torch``; ``why`` is a few words for the user."""
    try:
        require_extra("onnxruntime", "onnx")
    except MissingExtraError as exc:
        return "torch", f"onnxruntime unavailable ({exc})"
    # onnx is only looked up, not imported (0.75 s): a cached export (cache_dir()) needs none
    if importlib.util.find_spec("onnx") is None:
        return "torch", "onnx is not installed (pip install 'srnpose[onnx]')"
    return "onnxruntime", "onnxruntime is installed"


class torch_threads:
    """``with torch_threads(n):`` torch's intra-op threads are ``n`` inside, as before after (None: as they
    are). Setting and restoring costs under a microsecond."""

    def __init__(self, threads: int | None) -> None:
        self.threads = None if threads is None else max(1, int(threads))
        self.before: int | None = None

    def __enter__(self) -> None:
        if self.threads is not None:
            import torch

            self.before = torch.get_num_threads()
            if self.before != self.threads:
                torch.set_num_threads(self.threads)

    def __exit__(self, *exc) -> None:
        if self.threads is not None and self.before is not None and self.before != self.threads:
            import torch

            torch.set_num_threads(self.before)


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
    (in eval mode, on the model's device), on ``threads`` intra-op threads (None: torch's setting)."""

    backend = "torch"

    def __init__(self, model, threads: int | None = None) -> None:
        self.model = model
        self.threads = threads

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        import torch

        model = getattr(self.model, "module", self.model)  # DistributedDataParallel during training
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode(), torch_threads(self.threads):
                return model.forward_joints(torch.from_numpy(crops).to(device)).cpu().numpy()
        finally:
            model.train(was_training)


class OrtRunner:
    """The same through an ONNX Runtime session (input ``depth``, output ``stage_joints``)."""

    backend = "onnxruntime"

    def __init__(self, session, threads: int | None = None) -> None:
        self.session = session
        self.threads = threads  # the session's intra-op threads, when known
        self.input_name = session.get_inputs()[0].name

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: crops})[0]


_EXPORTS: dict[str, bytes] = {}  # the in-memory exports of this process, by model contents
_EXPORTS_KEPT = 4


def export_in_memory(model) -> bytes:
    """``export_onnx(model)`` as bytes, once per process for the same weights and config (1-1.5 s for
    the shipped model on 2 cores; a repeat costs a hash of the weights, ~10 ms)."""
    return _export_in_memory(model, 1)[0]


def _export_in_memory(model, threads: int | None) -> tuple[bytes, Any]:
    """:func:`export_in_memory`'s bytes, and the ONNX Runtime session on ``threads`` threads that checked them
    when they came from the disk cache (else None): a caller that runs the model uses it, not a second one."""
    import hashlib

    import torch

    digest = hashlib.sha256(json.dumps(to_dict(model.config), sort_keys=True).encode())
    with torch.no_grad():
        for name, tensor in sorted(model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    key = digest.hexdigest()
    if key in _EXPORTS:
        return _EXPORTS[key], None
    while len(_EXPORTS) >= _EXPORTS_KEPT:
        _EXPORTS.pop(next(iter(_EXPORTS)))
    data, session = _cached_export(model, f"{key[:32]}-opset{OPSET}-torch{torch.__version__}", threads)
    _EXPORTS[key] = data
    return data, session


def cache_dir() -> Path:
    """Where srnpose keeps files it can make again: ``$SRNPOSE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/srnpose``, else ``~/.cache/srnpose``."""
    if os.environ.get("SRNPOSE_CACHE_DIR"):
        return Path(os.environ["SRNPOSE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "srnpose"


def _cached_export(model, name: str, threads: int | None) -> tuple[bytes, Any]:
    """The ONNX bytes of ``model`` from the disk cache (``cache_dir()/onnx/NAME.onnx``) and the session on
    ``threads`` threads that checked them, else exported and cached (and None). A process that finds the
    file skips the export and ``import onnx`` (2-3 s of each ``srnpose predict`` on 2 cores); a file that
    is not a readable ONNX model is made again. The cache is a convenience: a folder that cannot be
    written (read-only home, full disk) is skipped silently."""
    require_extra("onnxruntime", "onnx")  # a missing runtime is said at once, not after an export
    path = cache_dir() / "onnx" / f"{name}.onnx"
    try:
        data = path.read_bytes()
        return data, make_ort_session(data, threads)  # ORT parses it: a truncated or foreign file is made again
    except Exception:  # noqa: BLE001 - missing, unreadable or not a model: export again
        pass
    data = export_onnx(model)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(path, data)
    except (OSError, UserError):
        pass
    return data, None


def make_runner(model, backend: str = "torch", onnx_path: str | Path | bytes | None = None,
                threads: int | None = None):
    """The runner of ``model`` on ``backend`` with ``threads`` intra-op threads (None: torch's setting;
    one per core for ONNX Runtime); ``onnxruntime`` exports it in memory (once per process:
    :func:`export_in_memory`) unless ``onnx_path`` (for example an int8 file made from it) is given."""
    if backend == "torch":
        return TorchRunner(model, threads)
    if backend == "onnxruntime":
        source, session = (onnx_path, None) if onnx_path is not None else _export_in_memory(model, threads)
        session = session if session is not None else make_ort_session(source, threads)
        return OrtRunner(session, int(threads or cores()))
    raise UserError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")

