"""A torch ``Dataset`` that renders synthetic frames on the fly (no files), for training."""

from __future__ import annotations

import torch

from srnpose.data.records import HandRecord
from srnpose.geometry import Intrinsics
from srnpose.synth.engines import synthetic_record
from srnpose.synth.frame import resolve_camera


class SynthDataset(torch.utils.data.Dataset):
    """``length`` frames; item ``i`` is frame ``i`` of ``write_dataset(..., seed=seed)`` as a
    :class:`HandRecord` (:func:`srnpose.synth.engines.synthetic_record`: depth float32 mm in memory,
    canonical joints); ``engine``: a key of :data:`srnpose.synth.engines.ENGINES`."""

    def __init__(self, length: int, seed: int = 0, intrinsics: Intrinsics | None = None,
                 resolution: tuple[int, int] | None = None, distractors: bool = True, engine: str = "v1") -> None:
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        self.length = int(length)
        self.seed = int(seed)
        self.intrinsics, self.resolution = resolve_camera(intrinsics, resolution)
        self.distractors = distractors
        self.engine = engine

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> HandRecord:
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for SynthDataset of length {self.length}")
        index = index % self.length
        return synthetic_record(self.engine, self.seed, index, self.intrinsics, self.resolution, self.distractors)
