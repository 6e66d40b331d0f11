"""The synthetic depth-hand engine: hand model, poses, renderer, sensor model, writer, torch dataset.

``render_frame(seed)`` gives one :class:`SynthFrame`; ``write_dataset`` writes the native layout;
``SynthDataset`` renders on the fly for training (imported lazily: it needs torch).
"""

from srnpose.synth.frame import SynthFrame, frame_seed, render_frame, visible_joints
from srnpose.synth.writer import read_labels, write_dataset

__all__ = ["SynthDataset", "SynthFrame", "frame_seed", "read_labels", "render_frame", "visible_joints",
           "write_dataset"]


def __getattr__(name: str):
    if name == "SynthDataset":  # torch is heavy: import it only when the dataset is asked for
        from srnpose.synth.dataset import SynthDataset

        return SynthDataset
    raise AttributeError(f"module 'srnpose.synth' has no attribute {name!r}")
