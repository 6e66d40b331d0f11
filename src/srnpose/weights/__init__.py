"""What ships inside the package: the release model, the hand locator and sample frames (package data).

=================  ===========================================================================
``release/``       the default model (:func:`release_dir`): a checkpoint folder, ``model.safetensors``
                   (fp16), ``config.yaml`` and ``COMPLETE`` (checksums); trained on the synthetic
                   engine alone, see ``MODEL_CARD.md`` at the repository root
``locator/``       the hand locator for full frames (``srnpose.locator.model``, :data:`LOCATOR_DIR`):
                   the shipped model's by default (``--center auto``), any model's with ``--center
                   locator``
``samples/``       depth frames rendered by the synthetic engine (ours to redistribute), 16-bit PNG in
                   mm, with ``samples.json``: the camera preset and each frame's true joints
=================  ===========================================================================

``srnpose.load()``, ``srnpose predict`` and ``srnpose live`` without ``--checkpoint`` use the release
model; ``srnpose predict --sample`` runs it on the sample frames, and :func:`samples` (``srnpose.samples()``)
gives them to Python code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srnpose.cameras import get_camera
from srnpose.data.depth_io import read_png16
from srnpose.errors import UserError

__all__ = ["WEIGHTS_DIR", "RELEASE_DIR", "LOCATOR_DIR", "SAMPLES_DIR", "release_dir", "sample_frames", "Sample", "samples"]

WEIGHTS_DIR = Path(__file__).resolve().parent
RELEASE_DIR = WEIGHTS_DIR / "release"
LOCATOR_DIR = WEIGHTS_DIR / "locator"
SAMPLES_DIR = WEIGHTS_DIR / "samples"
SAMPLES_FILE = "samples.json"


def release_dir() -> Path:
    """The shipped model's checkpoint folder, or a UserError saying it is missing from this install."""
    if not (RELEASE_DIR / "model.safetensors").is_file():
        raise UserError(f"{RELEASE_DIR}: this install carries no shipped model; give --checkpoint RUN "
                        "(reinstall srnpose to get it back)")
    return RELEASE_DIR


def sample_frames() -> tuple[list[Path], str, dict]:
    """``(frame paths, camera preset name, samples.json)`` of the shipped sample frames."""
    index = SAMPLES_DIR / SAMPLES_FILE
    if not index.is_file():
        raise UserError(f"{index}: this install carries no sample frames")
    meta = json.loads(index.read_text(encoding="utf-8"))
    return [SAMPLES_DIR / f["file"] for f in meta["frames"]], str(meta["camera"]), meta


@dataclass(frozen=True)
class Sample:
    """One shipped sample frame, ready for ``HandPoseEstimator.predict(s.depth, camera=s.camera,
    mirrored=s.mirrored)``."""

    name: str  # the file's stem, e.g. "00_close_range" (the frame name `predict --sample` writes)
    depth: Any  # (H, W) uint16 numpy array, raw sensor units (depth_unit_mm each); 0 = no measurement
    camera: str  # camera preset name (a key of srnpose.cameras.CAMERAS)
    mirrored: bool  # frames flipped left-right as the sensor gives them (the preset's flag)
    depth_unit_mm: float  # millimetres per raw depth unit
    joints_xyz: Any  # (21, 3) float numpy array, mm: the true joints in the canonical layout, camera frame
    path: Path  # the PNG inside the package


def samples() -> list[Sample]:
    """The shipped sample depth frames (rendered by srnpose's engine v2), read as ``srnpose predict
    --sample`` reads them: the files of :func:`sample_frames` through the same 16-bit PNG reader."""
    import numpy as np

    paths, camera, meta = sample_frames()
    mirrored = get_camera(camera).mirrored
    unit_mm = float(meta.get("depth_unit_mm", get_camera(camera).depth_unit_mm))
    return [Sample(path.stem, read_png16(path), camera, mirrored, unit_mm,
                   np.asarray(frame["joints_xyz"], dtype=np.float64), path)
            for path, frame in zip(paths, meta["frames"])]
