"""Reading and writing depth frames in the formats srnpose meets. Every reader returns float32 mm.

``DEPTH_READERS`` is the table a :class:`~srnpose.data.records.HandRecord`'s ``depth_format`` names.
Every reader raises :class:`~srnpose.errors.UserError` naming the file when it cannot be read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from srnpose.errors import UserError


def write_png16(path: str | Path, depth: np.ndarray) -> None:
    """Write a (H, W) uint16 depth map as a 16-bit grayscale PNG, exactly."""
    from PIL import Image

    depth = np.asarray(depth)
    if depth.ndim != 2 or depth.dtype != np.uint16:
        raise ValueError(f"depth must be (H, W) uint16, got {depth.shape} {depth.dtype}")
    Image.fromarray(depth).save(str(path), format="PNG")


def read_png16(path: str | Path) -> np.ndarray:
    """Read a 16-bit single-channel depth PNG as stored (uint16). 8-bit or colour files are refused."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            mode = img.mode
            if mode not in ("I;16", "I;16B", "I;16L", "I"):
                raise UserError(f"{path}: expected a 16-bit single-channel depth PNG, got image mode {mode!r}")
            arr = np.asarray(img)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UserError(f"{path}: cannot read PNG ({exc})") from None
    if arr.ndim != 2:
        raise UserError(f"{path}: expected a single-channel depth image, got shape {arr.shape}")
    return arr.astype(np.uint16)


def read_png16_mm(path: str | Path, depth_unit_mm: float = 1.0) -> np.ndarray:
    """A 16-bit depth PNG as float32 millimetres (0 = no measurement)."""
    return read_png16(path).astype(np.float32) * np.float32(depth_unit_mm)


# depth_format -> reader(path) -> float32 (H, W) mm. Dataset modules add their own formats here.
DEPTH_READERS: dict[str, Callable[[str | Path], np.ndarray]] = {
    "png16": read_png16_mm,
}


def read_depth(path: str | Path, depth_format: str) -> np.ndarray:
    try:
        reader = DEPTH_READERS[depth_format]
    except KeyError:
        raise UserError(f"unknown depth format {depth_format!r}; available: {', '.join(DEPTH_READERS)}") from None
    return reader(path)
