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


# --------------------------------------------------------------------------- dataset formats
# Added with the dataset loaders (srnpose.data.nyu, .msra, ...). Every one refuses an all-zero frame:
# a depth map with no measurement at all is a broken file, never a training sample.

def _refuse_empty(path: str | Path, depth_mm: np.ndarray) -> np.ndarray:
    if not np.any(depth_mm > 0):
        raise UserError(f"{path}: depth frame has no measurement (all zero)")
    return depth_mm


def read_png16_strict(path: str | Path) -> np.ndarray:
    """A 16-bit depth PNG in mm (ICVL, HANDS2017, srnpose synth); an all-zero frame is an error."""
    return _refuse_empty(path, read_png16_mm(path))


def read_nyu_rgb(path: str | Path) -> np.ndarray:
    """NYU Hand Pose depth: 8-bit RGB PNG, depth mm = (G << 8) | B (DeepPrior++ ``NYUImporter``)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.mode != "RGB":
                raise UserError(f"{path}: expected an 8-bit RGB NYU depth PNG, got image mode {img.mode!r}")
            rgb = np.asarray(img)  # (H, W, 3) uint8
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UserError(f"{path}: cannot read PNG ({exc})") from None
    depth = (rgb[..., 1].astype(np.uint16) << 8) | rgb[..., 2].astype(np.uint16)  # (H, W)
    return _refuse_empty(path, depth.astype(np.float32))


def write_nyu_rgb(path: str | Path, depth: np.ndarray) -> None:
    """Inverse of :func:`read_nyu_rgb`: (H, W) uint16 mm -> RGB PNG with R = 0, G = high byte, B = low."""
    from PIL import Image

    depth = np.asarray(depth)
    if depth.ndim != 2 or depth.dtype != np.uint16:
        raise ValueError(f"depth must be (H, W) uint16, got {depth.shape} {depth.dtype}")
    rgb = np.zeros(depth.shape + (3,), dtype=np.uint8)  # (H, W, 3)
    rgb[..., 1] = depth >> 8
    rgb[..., 2] = depth & 0xFF
    Image.fromarray(rgb, mode="RGB").save(str(path), format="PNG")


MSRA_HEADER_WORDS = 6  # width, height, left, top, right, bottom (uint32 each)


def read_msra_bin(path: str | Path) -> np.ndarray:
    """MSRA 2015 ``XXXXXX_depth.bin``: 6 uint32 (width, height, left, top, right, bottom), then float32
    depth in mm for the box rows ``[top, bottom)`` x columns ``[left, right)``, row-major; zero outside."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 4 * MSRA_HEADER_WORDS:
        raise UserError(f"{path}: truncated MSRA depth file ({len(raw)} bytes, header needs 24)")
    width, height, left, top, right, bottom = (int(x) for x in np.frombuffer(raw[:24], dtype="<u4"))
    if not (0 < width <= 4096 and 0 < height <= 4096 and 0 <= left < right <= width
            and 0 <= top < bottom <= height):
        raise UserError(f"{path}: corrupt MSRA header (width {width}, height {height}, "
                        f"box left {left} top {top} right {right} bottom {bottom})")
    expected = 24 + 4 * (bottom - top) * (right - left)
    if len(raw) != expected:
        raise UserError(f"{path}: MSRA depth file has {len(raw)} bytes, header box needs {expected}")
    patch = np.frombuffer(raw[24:], dtype="<f4").reshape(bottom - top, right - left)
    if not np.all(np.isfinite(patch)):
        raise UserError(f"{path}: MSRA depth has non-finite values")
    depth = np.zeros((height, width), dtype=np.float32)  # (H, W)
    depth[top:bottom, left:right] = patch
    return _refuse_empty(path, depth)


def write_msra_bin(path: str | Path, depth_mm: np.ndarray) -> None:
    """Inverse of :func:`read_msra_bin`: store the bounding box of the non-zero pixels of (H, W) mm."""
    depth = np.asarray(depth_mm, dtype=np.float32)
    vs, us = np.nonzero(depth > 0)
    if vs.size == 0:
        raise ValueError("cannot write an all-zero MSRA depth frame")
    left, top, right, bottom = int(us.min()), int(vs.min()), int(us.max()) + 1, int(vs.max()) + 1
    header = np.array([depth.shape[1], depth.shape[0], left, top, right, bottom], dtype="<u4")
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(np.ascontiguousarray(depth[top:bottom, left:right], dtype="<f4").tobytes())


DEPTH_READERS["png16_strict"] = read_png16_strict
DEPTH_READERS["nyu_rgb"] = read_nyu_rgb
DEPTH_READERS["msra_bin"] = read_msra_bin
