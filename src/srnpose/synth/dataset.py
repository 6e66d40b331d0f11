"""A torch ``Dataset`` that renders synthetic frames on the fly (no files), for training."""

from __future__ import annotations

import numpy as np
import torch

from srnpose.data.records import HandRecord
from srnpose.geometry import Intrinsics
from srnpose.synth.frame import frame_seed, render_frame, resolve_camera


class SynthDataset(torch.utils.data.Dataset):
    """``length`` frames; item ``i`` is frame ``i`` of ``write_dataset(..., seed=seed)`` as a
    :class:`HandRecord` (depth float32 mm in memory, canonical joints); ``engine``: a key of
    :data:`srnpose.synth.engines.ENGINES`."""

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
        if self.engine == "v1":
            frame = render_frame(frame_seed(self.seed, index), self.intrinsics, self.resolution, self.distractors)
        else:
            from srnpose.synth.engines import render

            frame = render(self.engine, frame_seed(self.seed, index), self.intrinsics, self.resolution)
        return HandRecord(joints_uvd=frame.joints_uvd, intrinsics=frame.intrinsics,
                          depth=frame.depth_mm.astype(np.float32), frame_id=f"synth:{self.seed}:{index}",
                          extra={"is_left": frame.is_left, "joints_xyz": frame.joints_xyz,
                                 "family": frame.family})
