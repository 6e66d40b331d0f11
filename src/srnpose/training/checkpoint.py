"""Run folders and checkpoints: safetensors weights + YAML config, written atomically, loaded safely.

A training run folder::

    RUN/config.yaml              the resolved run config: {model: SRNConfig, data: {...}, train: {...}}
    RUN/metrics.csv              one row per log/validation event (see srnpose.training.loop)
    RUN/last/model.safetensors   the latest weights
    RUN/last/config.yaml         the same run config (so a checkpoint folder stands alone)
    RUN/last/train_state.pt      optimizer, schedule, step/epoch counters, RNG states (torch, numpy,
                                 python), data position; plain tensors and Python numbers only, read
                                 with ``torch.load(weights_only=True)``
    RUN/best/model.safetensors   the weights with the best validation error so far
    RUN/best/config.yaml

Safety: weights are read with safetensors (no code runs on load); torch's own format is read only with
``torch.load(weights_only=True)``, which refuses any pickle that names a callable; YAML is read with
``yaml.safe_load``. Nothing is pickled that a user could receive from someone else.

Atomicity and verification: a checkpoint folder ``X`` is written as ``X.tmp`` (every file fsynced,
then a ``COMPLETE`` marker holding the SHA-256 of every file), then the previous ``X`` becomes ``X.prev``
(the one before it is removed) and ``X.tmp`` becomes ``X``. Two complete checkpoints are kept. Loading
verifies the checksums: :func:`resolve_checkpoint_dir` picks the first of ``X``, a complete ``X.tmp`` and
``X.prev`` whose files match their checksums, and says on stderr when it had to pass one over, so a
kill at any moment, a truncated file or a flipped byte never loads garbage.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srnpose.config import SRNConfig, from_dict, read_yaml_mapping, save_yaml, to_dict
from srnpose.data.centering import CenterPolicy
from srnpose.errors import UserError
from srnpose.outputs import disk_full_error, fsync_dir, fsync_file, is_disk_full

__all__ = [
    "WEIGHTS_FILE",
    "CONFIG_FILE",
    "TRAIN_STATE_FILE",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "resolve_checkpoint_dir",
    "inspect_checkpoint_dir",
    "corrupt_checkpoints_message",
    "verify_checkpoint_dir",
    "load_run_config",
    "load_train_state",
    "load_state_dict_file",
    "find_weights",
    "load_weights",
    "load_weights_growing",
    "rng_state",
    "set_rng_state",
    "kept_checkpoint",
]

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.yaml"
TRAIN_STATE_FILE = "train_state.pt"
COMPLETE_MARKER = "COMPLETE"
PREVIOUS_SUFFIX = ".prev"
DEFAULT_LAYOUT = "canonical"


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the model (eval mode, CPU) and what is needed to feed it and read it."""

    model: Any  # srnpose.model.SRN, in eval mode
    model_config: Any  # srnpose.config.SRNConfig
    input_size: int  # crop side in pixels
    layout: str  # key of srnpose.hand.skeleton.LAYOUTS: the joint order of the model's outputs
    config: dict  # the full run config {model, data, train}
    path: Path  # the weights file that was loaded

    @property
    def policy(self):
        """The :class:`~srnpose.data.centering.CenterPolicy` the model was trained with: its cube,
        centre rule and test-time passes, for every path that crops for it."""
        return CenterPolicy.from_config(self.config)

    @property
    def cube_mm(self) -> float:
        """The cube edge (mm) the model was trained with: its :attr:`policy`'s."""
        return float(self.policy.cube[2])

    @property
    def refine(self) -> int:
        """Test-time passes after the first (``policy.passes - 1``)."""
        return self.policy.passes - 1


# --------------------------------------------------------------------------- small file helpers

def _plain_config(run_config: Any) -> dict:
    if dataclasses.is_dataclass(run_config) and not isinstance(run_config, type):
        return to_dict(run_config)
    if isinstance(run_config, dict):
        return json.loads(json.dumps(run_config))  # a deep, plain copy (fails loudly on odd values)
    raise TypeError(f"run_config must be a dataclass or a dict, got {type(run_config).__name__}")


def _read_yaml(path: Path) -> dict:
    data = read_yaml_mapping(path)
    if not data:
        raise UserError(f"{path}: expected a mapping (a run config), got an empty file")
    return data


# --------------------------------------------------------------------------- RNG state (weights_only-safe)

def rng_state() -> dict:
    """torch, numpy (legacy global) and python RNG states as tensors and plain numbers."""
    import random

    import numpy as np
    import torch

    np_state = np.random.get_state(legacy=False)
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": str(np_state["bit_generator"]),
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64).copy()),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": {"version": int(py_version), "internal": torch.tensor(py_internal, dtype=torch.int64),
                   "gauss": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Inverse of :func:`rng_state`."""
    import random

    import numpy as np
    import torch

    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state({"bit_generator": n["bit_generator"],
                         "state": {"key": n["key"].numpy().astype(np.uint32), "pos": int(n["pos"])},
                         "has_gauss": int(n["has_gauss"]), "gauss": float(n["gauss"])})
    p = state["python"]
    random.setstate((int(p["version"]), tuple(int(v) for v in p["internal"].tolist()), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------- saving

def _state_dict_for_file(model) -> dict:
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}


def save_checkpoint(dir: str | Path, model, run_config: Any, train_state: dict | None = None) -> Path:
    """Write ``dir/model.safetensors``, ``dir/config.yaml`` (and ``dir/train_state.pt``) atomically.

    ``run_config``: the run config dataclass or its dict ``{model, data, train}``. ``train_state``: plain
    data (tensors, numbers, strings, lists, dicts) such as optimizer state dicts; it is saved with
    ``torch.save`` and must load back with ``weights_only=True`` (checked here, before the swap).
    """
    target = Path(dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    writing = [tmp]  # the file being written, named if the disk is full
    try:
        _write_files(tmp, model, _plain_config(run_config), train_state, writing)
    except BaseException as exc:
        if not (_complete(tmp) and verify_checkpoint_dir(tmp) is None):
            shutil.rmtree(tmp, ignore_errors=True)  # half a checkpoint: its space back, the complete ones kept
        if isinstance(exc, Exception) and is_disk_full(exc):
            where = target / writing[-1].name if len(writing) > 1 else target
            raise disk_full_error(where, exc, kept_checkpoint(target)) from None
        raise
    prev = target.with_name(target.name + PREVIOUS_SUFFIX)
    if target.exists() and _complete(target):
        if prev.exists():
            shutil.rmtree(prev)
        os.replace(target, prev)  # the previous complete checkpoint, kept
    elif target.exists():
        shutil.rmtree(target)  # an incomplete leftover
    os.replace(tmp, target)
    fsync_dir(target.parent)
    return target


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _write_files(tmp: Path, model, config: dict, train_state: dict | None, writing: list[Path]) -> None:
    """The checkpoint's files in ``tmp``, each serialized in memory and written with plain file I/O (a full
    disk is an OSError naming its errno, not a library's message), then the ``COMPLETE`` marker."""
    import io

    import torch
    from safetensors.torch import save

    writing.append(tmp / WEIGHTS_FILE)
    _write_file(writing[-1], save(_state_dict_for_file(model),
                                  metadata={"format": "pt", "srnpose_config": json.dumps(config)}))
    writing.append(tmp / CONFIG_FILE)
    save_yaml(config, writing[-1])
    if train_state is not None:
        buffer = io.BytesIO()
        torch.save(train_state, buffer)
        writing.append(tmp / TRAIN_STATE_FILE)
        _write_file(writing[-1], buffer.getvalue())
        load_train_state(writing[-1])  # fail now, not at resume time, if it is not weights_only-safe
    writing.append(tmp / COMPLETE_MARKER)
    _write_marker(tmp)
    fsync_dir(tmp)


def kept_checkpoint(target: Path) -> str:
    """What a failed save leaves: the last complete checkpoint of ``target`` and its step."""
    found = resolve_checkpoint_dir(target)
    if found is None:
        return "there was no complete checkpoint before"
    step = ""
    if (found / TRAIN_STATE_FILE).is_file():
        try:
            step = f" (step {int(load_train_state(found / TRAIN_STATE_FILE)['step'])})"
        except (UserError, KeyError, TypeError, ValueError):
            pass
    return f"the last complete checkpoint {found}{step} is kept"


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_marker(folder: Path) -> None:
    """``COMPLETE``: the checksum of every other file of the folder, written last."""
    sums = {p.name: _sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != COMPLETE_MARKER}
    marker = folder / COMPLETE_MARKER
    marker.write_text(json.dumps({"sha256": sums}, indent=1) + "\n", encoding="utf-8")
    fsync_file(marker)


def verify_checkpoint_dir(folder: str | Path) -> str | None:
    """None if every file of a complete checkpoint folder matches its checksum, else what is wrong.
    A marker without checksums (older srnpose) is accepted as is."""
    folder = Path(folder)
    try:
        marker = json.loads((folder / COMPLETE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # "ok" markers of older versions: nothing to check against
    for name, expected in (marker.get("sha256") or {}).items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if _sha256(path) != expected:
            return f"{name} does not match its checksum (truncated or corrupted)"
    return None


# --------------------------------------------------------------------------- loading

def _complete(folder: Path) -> bool:
    return (folder / WEIGHTS_FILE).is_file() and (folder / CONFIG_FILE).is_file() and \
        (folder / COMPLETE_MARKER).is_file()


_WARNED: set[tuple[str, str]] = set()  # (folder, problem) already reported by this process


def inspect_checkpoint_dir(folder: str | Path, verify: bool = True) -> tuple[Path | None, list[tuple[Path, str]]]:
    """``(usable, passed_over)``: the last complete, verified version of checkpoint folder ``folder``
    (``X``, a complete ``X.tmp``, or ``X.prev``, in that order) or None, and the complete versions that
    failed their checksums, each with what is wrong. Prints nothing."""
    folder = Path(folder)
    candidates = [folder, folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + PREVIOUS_SUFFIX)]
    passed: list[tuple[Path, str]] = []
    for candidate in candidates:
        if candidate.is_dir() and _complete(candidate):
            problem = verify_checkpoint_dir(candidate) if verify else None
            if problem is None:
                return candidate, passed
            passed.append((candidate, problem))
    if folder.is_dir() and (folder / WEIGHTS_FILE).is_file() and (folder / CONFIG_FILE).is_file() and \
            not (folder / COMPLETE_MARKER).exists():
        return folder, passed  # written by hand or by another tool: no marker, but both files are there
    return None, passed


def _warn_passed_over(passed: list[tuple[Path, str]]) -> None:
    import sys

    for candidate, problem in passed:
        if (str(candidate), problem) not in _WARNED:
            _WARNED.add((str(candidate), problem))
            print(f"warning: checkpoint {candidate}: {problem}; trying the previous one", file=sys.stderr)


def _describe_corrupt(passed: list[tuple[Path, str]]) -> str:
    problems = sorted({problem for _, problem in passed})
    return f"every checkpoint fails its checksums ({', '.join(p.name for p, _ in passed)}: {'; '.join(problems)})"


def resolve_checkpoint_dir(folder: str | Path, verify: bool = True) -> Path | None:
    """The last complete, verified version of checkpoint folder ``folder`` (``X``, a complete ``X.tmp``,
    or ``X.prev``, in that order), or None. When a version is used after passing over one that fails its
    checksums, one line on stderr names it (once per process); when none is usable nothing is printed:
    the caller's error names them (:func:`corrupt_checkpoints_message`)."""
    found, passed = inspect_checkpoint_dir(folder, verify)
    if found is not None:
        _warn_passed_over(passed)
    return found


def corrupt_checkpoints_message(folder: str | Path) -> str | None:
    """When no version of checkpoint ``folder`` is usable but some are complete and fail their checksums:
    one line naming them and what is wrong; else None."""
    found, passed = inspect_checkpoint_dir(folder)
    return _describe_corrupt(passed) if found is None and passed else None


def find_weights(path: Path) -> Path:
    """A RUN folder (best/ if usable, else last/), a checkpoint folder, or a weights file."""
    if not path.exists():
        raise UserError(f"checkpoint {path}: no such file or folder")
    if path.is_file():
        if (path.parent / COMPLETE_MARKER).is_file() and (problem := verify_checkpoint_dir(path.parent)):
            raise UserError(f"checkpoint {path.parent}: {problem}")
        return path
    passed: list[tuple[Path, str]] = []
    for folder in (path / "best", path / "last", path):
        found, bad = inspect_checkpoint_dir(folder)
        passed += bad
        if found is not None:
            _warn_passed_over(passed)  # best/ corrupt and last/ used: said, not silent
            return found / WEIGHTS_FILE
    if (path / WEIGHTS_FILE).is_file():  # a checkpoint folder named as such (edited by hand?): said, loaded
        _warn_passed_over(passed)
        return path / WEIGHTS_FILE
    if passed:
        raise UserError(f"checkpoint {path}: {_describe_corrupt(passed)}")
    missing = " and ".join(n for n in (WEIGHTS_FILE, CONFIG_FILE) if not (path / n).is_file())
    raise UserError(f"checkpoint {path}: not a run or checkpoint folder ({missing} missing here, and no "
                    f"usable checkpoint in {path / 'best'} or {path / 'last'})")


def load_run_config(path: str | Path) -> dict:
    """The run config dict of a RUN folder, a checkpoint folder or a weights file (config.yaml beside it,
    else the safetensors metadata)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    config_path = folder / CONFIG_FILE
    if config_path.is_file():
        return _read_yaml(config_path)
    if path.is_file() and path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types for a bad header
            raise UserError(f"{path}: not a readable safetensors file ({exc})") from None
        if "srnpose_config" in meta:
            return json.loads(meta["srnpose_config"])
    raise UserError(f"checkpoint {path}: no {CONFIG_FILE} beside it (the model config is needed to build it)")


def _unpickling_reason(exc: BaseException) -> str:
    """What torch's weights_only unpickler refused, without its paragraphs of advice."""
    import re

    text = str(exc)
    found = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\s*\n|Check the documentation|$)", text, re.S)
    reason = found.group(1) if found else (text.strip().splitlines() or [type(exc).__name__])[0]
    reason = " ".join(reason.split()).split(" Please use ")[0].split(" Check the documentation")[0]
    return reason if len(reason) <= 160 else reason[:157] + "..."


def load_train_state(path: str | Path) -> dict:
    """Read a ``train_state.pt`` with ``torch.load(weights_only=True)``; a file that needs arbitrary
    unpickling (one crafted to run code, for instance) is refused with a UserError."""
    import pickle
    import warnings

    import torch

    path = Path(path)
    try:
        with warnings.catch_warnings():  # torch's note on the pickle protocol: ours is the one line below
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, ValueError, TypeError) as exc:
        raise UserError(f"{path}: refused to load: not a plain tensor file (weights_only): "
                        f"{_unpickling_reason(exc)}") from None
    if not isinstance(state, dict):
        raise UserError(f"{path}: expected a dict of training state, got {type(state).__name__}")
    return state


def load_state_dict_file(path: str | Path) -> dict:
    """Tensors of a weights file: ``.safetensors`` (safetensors), or ``.pt``/``.pth``/``.bin`` read with
    ``torch.load(weights_only=True)`` (a pickle that names code is refused)."""
    import torch

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError, ...
            raise UserError(f"{path}: not a readable safetensors file ({str(exc).splitlines()[0]})") from None
    if path.suffix in (".pt", ".pth", ".bin"):
        state = load_train_state(path)
        state = state.get("model", state) if isinstance(state.get("model"), dict) else state
        if not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise UserError(f"{path}: expected a state dict of tensors")
        return state
    raise UserError(f"{path}: unknown weights format {path.suffix!r}; expected .safetensors (or .pt read "
                    "with weights_only)")


def _shape(t) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def _mismatch(state: dict, expected: dict, growing: bool = False) -> tuple[str, str] | None:
    """The first way ``state`` does not fit a model's tensors ``expected``: ("missing", key) (not when
    ``growing``: a grown model has tensors the file lacks), ("shape", key) or ("unexpected", key); None
    when it fits. The one rule of :func:`load_weights` and :func:`load_weights_growing`, each wording it."""
    for key in (state if growing else expected):  # the first bad tensor in the order of the one read
        if key not in state:
            return "missing", key
        if key not in expected:
            return "unexpected", key
        if tuple(state[key].shape) != tuple(expected[key].shape):
            return "shape", key
    unexpected = [k for k in state if k not in expected]
    return ("unexpected", unexpected[0]) if unexpected else None


def load_weights(model, state: dict, source: str | Path, config_source: str | Path | None = None) -> None:
    """Load ``state`` into ``model`` strictly; a mismatch raises UserError naming the file and tensor."""
    expected = getattr(model, "module", model).state_dict()
    where = f" for the config in {config_source}" if config_source else " for the model config"
    problem = _mismatch(state, expected)
    if problem is not None:
        kind, key = problem
        if kind == "missing":
            raise UserError(f"{source}: incompatible checkpoint: tensor {key!r} {_shape(expected[key])} is "
                            f"missing{where}")
        if kind == "shape":
            raise UserError(f"{source}: incompatible checkpoint: tensor {key!r} has shape {_shape(state[key])} "
                            f"in the file but {_shape(expected[key])}{where}")
        unexpected = [k for k in state if k not in expected]
        raise UserError(f"{source}: incompatible checkpoint: unexpected tensor {key!r} "
                        f"({len(unexpected)} in all){where}")
    getattr(model, "module", model).load_state_dict(state, strict=True)


def load_weights_growing(model, state: dict, source: str | Path) -> list[str]:
    """Start ``model`` from ``state`` where they share tensors: every tensor of ``state`` must exist in
    ``model`` with the same shape (UserError naming the file and tensor). A stage the model has beyond
    the file's (a trained network grown by stages) starts as a copy of the file's last stage where their
    tensors match, its extra input channels (the re-parameterization's maps) weighted zero: the grown
    network first gives the trained one's joints, then learns to use the maps. Any other tensor the file
    lacks keeps its fresh initialization. Returns the names of the tensors not taken from the file as
    they are (copied or fresh)."""
    import torch

    net = getattr(model, "module", model)
    expected = net.state_dict()
    problem = _mismatch(state, expected, growing=True)
    if problem is not None:
        kind, key = problem
        if kind == "unexpected":
            raise UserError(f"{source}: cannot start from these weights: tensor {key!r} {_shape(state[key])} has "
                            "no place in the model config (a different stage kind or backbone?)")
        raise UserError(f"{source}: cannot start from these weights: tensor {key!r} has shape "
                        f"{_shape(state[key])} in the file but {_shape(expected[key])} in the model config "
                        "(a different width, joint count or re-parameterization?)")
    grown = dict(state)
    trained = sorted({int(k.split(".")[1]) for k in state if k.startswith("stages.")})
    for key, tensor in expected.items():
        if key in state or not key.startswith("stages.") or not trained:
            continue
        parts = key.split(".")
        twin = state.get(".".join(["stages", str(trained[-1])] + parts[2:]))
        if twin is None or twin.dim() != tensor.dim():
            continue
        if tuple(twin.shape) == tuple(tensor.shape):
            grown[key] = twin.clone()
        elif (tensor.dim() == 4 and twin.shape[0] == tensor.shape[0] and twin.shape[1] < tensor.shape[1]
              and twin.shape[2:] == tensor.shape[2:]):  # a first convolution: the features' channels lead
            widened = torch.zeros(tensor.shape, dtype=twin.dtype)
            widened[:, :twin.shape[1]] = twin
            grown[key] = widened
    net.load_state_dict(grown, strict=False)
    return [k for k in expected if k not in state]


def _model_section(config: dict, source: Path) -> dict:
    if "model" in config and isinstance(config["model"], dict):
        return config["model"]
    names = {f.name for f in dataclasses.fields(SRNConfig)}
    if set(config) <= names:  # a bare model config
        return config
    raise UserError(f"{source}: no 'model' section in the run config")


def load_checkpoint(path: str | Path, device: str = "cpu") -> Checkpoint:
    """Load a run folder (``best/`` if present, else ``last/``), a checkpoint folder, or a weights file
    with a ``config.yaml`` beside it. Returns a :class:`Checkpoint` with the model in eval mode."""
    from srnpose.model import SRN

    weights = find_weights(Path(path))
    config = load_run_config(weights)
    config_source = weights.parent / CONFIG_FILE
    try:
        model_config = from_dict(SRNConfig, _model_section(config, config_source))
    except UserError as exc:
        raise UserError(f"{config_source}: {exc}") from None
    model = SRN.from_config(model_config)
    load_weights(model, load_state_dict_file(weights), weights, config_source)
    model.eval().to(device)
    data = config.get("data") or {}
    return Checkpoint(model=model, model_config=model_config, input_size=int(model_config.input_size),
                      layout=str(data.get("layout") or DEFAULT_LAYOUT),
                      config=config, path=weights)
