"""The one exception type that means "the user gave us something wrong", and optional imports."""

from __future__ import annotations

import importlib
from types import ModuleType

# optional package (import name) -> the extra of pyproject.toml that installs it
EXTRAS: dict[str, str] = {
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "pyrealsense2": "realsense",
    "tensorboard": "tensorboard",
}


class UserError(Exception):
    """A mistake in user input (flag, file, config). The CLI prints it as one line and exits 2."""


class MissingExtraError(UserError):
    """An optional package is not installed; the message names the extra that installs it."""


def require_extra(module: str, extra: str | None = None) -> ModuleType:
    """Import the optional package ``module`` or raise :class:`MissingExtraError` with the install line."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        name = extra or EXTRAS.get(top, top)
        raise MissingExtraError(f"this needs the optional package {top!r}: pip install 'srnpose[{name}]'") from None
