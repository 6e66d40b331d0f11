"""What ships inside the package: the release model, the hand locator and sample frames (package data).

=================  ===========================================================================
``release/``       the default model (:func:`release_dir`): a checkpoint folder, ``model.safetensors``
                   (fp16), ``config.yaml`` and ``COMPLETE`` (checksums); trained on the synthetic
                   engine alone, see ``MODEL_CARD.md`` at the repository root
``locator/``       the hand locator for full frames (``srnpose.locator.model``), used with ``--center
                   locator`` by models that carry none (:data:`LOCATOR_DIR`)
``samples/``       depth frames rendered by the synthetic engine (ours to redistribute), 16-bit PNG in
                   mm, with ``samples.json``: the camera preset and each frame's true joints
=================  ===========================================================================

``srnpose.load()``, ``srnpose predict`` and ``srnpose live`` without ``--checkpoint`` use the release
model; ``srnpose predict --sample`` runs it on the sample frames.
"""

from __future__ import annotations

import json
from pathlib import Path

from srnpose.errors import UserError

__all__ = ["WEIGHTS_DIR", "RELEASE_DIR", "LOCATOR_DIR", "SAMPLES_DIR", "release_dir", "sample_frames"]

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
