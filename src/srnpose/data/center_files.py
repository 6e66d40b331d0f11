"""Refined hand centre files (``--centers FILE``): one line per frame of the split, in its order.

Forms, chosen by a header comment line or by the ``fmt`` argument (which wins):

``uvd`` (the default; header ``# uvd``)
    ``u v d``: pixel column, pixel row, depth in mm. A2J-style centre lists and srnpose's own.
``xyz`` (header ``# xyz``)
    ``x y z`` in mm in the community's world convention, y **up**: ``x = (u - cx) z / fx``,
    ``y = (cy - v) z / |fy|``, as V2V-PoseNet's ``center_{train,test}_refined.txt`` files
    (NYU, ICVL, MSRA per fold) and DeepPrior++ write them. For NYU this is also srnpose's camera
    frame (its fy is negative); for the other datasets y is flipped to get srnpose's camera frame.
``xyz-camera`` (header ``# xyz-camera``)
    ``x y z`` in mm in srnpose's camera frame: ``y = (v - cy) z / fy`` with the dataset's signed fy.

A line that is ``invalid`` (V2V-PoseNet's marker), ``0 0 0``, or holds ``nan`` means "no centre for
this frame": the pipeline estimates it from the depth (:func:`srnpose.geometry.find_hand_center`).
Blank lines and other ``#`` comment lines are ignored. A file whose line count differs from the
split's frame count is refused, naming both counts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from srnpose.errors import UserError
from srnpose.geometry import Intrinsics, uvd_to_xyz, xyz_to_uvd

CENTER_FORMATS = ("uvd", "xyz", "xyz-camera")
NO_CENTER_WORDS = ("invalid",)


def community_xyz_to_uvd(xyz: np.ndarray, K: Intrinsics) -> np.ndarray:
    """Community (y up) xyz (..., 3) -> uvd: ``u = x fx / z + cx``, ``v = cy - y |fy| / z``."""
    xyz = np.asarray(xyz, dtype=np.float64)
    camera = xyz * np.array([1.0, -np.sign(K.fy), 1.0])  # y up -> srnpose's y (sign of fy)
    return xyz_to_uvd(camera, K)


def uvd_to_community_xyz(uvd: np.ndarray, K: Intrinsics) -> np.ndarray:
    """Inverse of :func:`community_xyz_to_uvd`."""
    return uvd_to_xyz(np.asarray(uvd, dtype=np.float64), K) * np.array([1.0, -np.sign(K.fy), 1.0])


def load_centers(path: str | Path, expected: int, intrinsics: Intrinsics, fmt: str | None = None) -> np.ndarray:
    """Centres (expected, 3) in uvd; rows of NaN where the file gives no centre."""
    path = Path(path)
    if fmt is not None and fmt not in CENTER_FORMATS:
        raise UserError(f"unknown centre format {fmt!r}; available: {', '.join(CENTER_FORMATS)}")
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        raise UserError(f"{path}: centre file not found") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read centre file ({exc})") from None
    header_fmt = None
    rows: list[tuple[int, list[str]]] = []
    for lineno, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        if text.startswith("#"):
            word = text[1:].strip().lower()
            if word in CENTER_FORMATS and not rows:
                header_fmt = word
            continue
        rows.append((lineno, text.replace(",", " ").split()))
    fmt = fmt or header_fmt or "uvd"
    if len(rows) != expected:
        raise UserError(f"{path}: {len(rows)} centre lines, but the split has {expected} frames")
    out = np.full((expected, 3), np.nan)  # (N, 3)
    for i, (lineno, tokens) in enumerate(rows):
        if len(tokens) == 1 and tokens[0].lower() in NO_CENTER_WORDS:
            continue
        if len(tokens) != 3:
            raise UserError(f"{path}:{lineno}: expected 3 numbers ({fmt}) or 'invalid', got {len(tokens)} fields")
        try:
            values = np.array([float(t) for t in tokens])
        except ValueError:
            raise UserError(f"{path}:{lineno}: expected 3 numbers ({fmt}), got {' '.join(tokens)!r}") from None
        if np.any(np.isnan(values)) or np.all(values == 0):
            continue
        if not np.all(np.isfinite(values)) or values[2] <= 0:
            raise UserError(f"{path}:{lineno}: centre depth must be a positive finite number of mm")
        out[i] = values
    valid = ~np.isnan(out[:, 0])
    if fmt == "xyz":
        out[valid] = community_xyz_to_uvd(out[valid], intrinsics)
    elif fmt == "xyz-camera":
        out[valid] = xyz_to_uvd(out[valid], intrinsics)
    return out


def write_centers(path: str | Path, centers_uvd: np.ndarray, intrinsics: Intrinsics | None = None,
                  fmt: str = "uvd") -> None:
    """Write centres (N, 3) uvd (NaN rows = no centre, written ``invalid``) in one of the forms."""
    centers_uvd = np.asarray(centers_uvd, dtype=np.float64)
    if fmt not in CENTER_FORMATS:
        raise ValueError(f"unknown centre format {fmt!r}")
    values = centers_uvd.copy()
    valid = ~np.any(np.isnan(values), axis=-1)
    if fmt != "uvd":
        if intrinsics is None:
            raise ValueError(f"format {fmt!r} needs intrinsics")
        values[valid] = (uvd_to_community_xyz(values[valid], intrinsics) if fmt == "xyz"
                         else uvd_to_xyz(values[valid], intrinsics))
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"# {fmt}\n")
        for row, ok in zip(values, valid):
            f.write(" ".join(f"{v:.4f}" for v in row) + "\n" if ok else "invalid\n")
