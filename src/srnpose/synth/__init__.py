"""The synthetic depth-hand engine: hand model, poses, renderer, sensor model, writer, torch dataset.

``render_frame(seed)`` gives one :class:`SynthFrame`; ``write_dataset`` writes the native layout;
``SynthDataset`` renders on the fly for training. Every name is imported when first asked for (PEP
562): ``srnpose.synth.engines.ENGINES``, which the command-line parsers list, then costs no scene,
hand or sensor module (0.2 s), and ``SynthDataset`` no torch until it is used.
"""

from __future__ import annotations

import importlib

# name -> the module that defines it
_LAZY = {
    "SynthFrame": "srnpose.synth.frame",
    "frame_seed": "srnpose.synth.frame",
    "render_frame": "srnpose.synth.frame",
    "visible_joints": "srnpose.synth.frame",
    "read_labels": "srnpose.synth.writer",
    "write_dataset": "srnpose.synth.writer",
    "SynthDataset": "srnpose.synth.dataset",
}

__all__ = ["SynthDataset", "SynthFrame", "frame_seed", "read_labels", "render_frame", "visible_joints",
           "write_dataset"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'srnpose.synth' has no attribute {name!r}")
