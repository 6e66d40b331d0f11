"""The one schema every dataset parser yields: a :class:`HandRecord` per labelled frame."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from srnpose.data.depth_io import read_depth
from srnpose.geometry import Intrinsics


@dataclass
class HandRecord:
    """One labelled depth frame, before any cropping.

    Exactly one of ``depth`` (in memory) and ``depth_path`` (read with ``depth_format``) is set.
    """

    joints_uvd: np.ndarray  # (J, 3) px, px, mm, in the dataset's joint layout
    intrinsics: Intrinsics
    depth: np.ndarray | None = None  # (H, W) float32 mm, 0 = no measurement
    depth_path: str | None = None
    depth_format: str = "png16"  # key of srnpose.data.depth_io.DEPTH_READERS
    center_uvd: np.ndarray | None = None  # (3,) refined hand centre; None = estimate from the depth
    frame_id: str = ""  # human-readable identity for messages, e.g. "test/depth_1_0000001.png"
    extra: dict = field(default_factory=dict)

    def load_depth(self) -> np.ndarray:
        """The frame's depth as float32 mm (H, W)."""
        if self.depth is not None:
            return np.asarray(self.depth, dtype=np.float32)
        if self.depth_path is None:
            raise ValueError(f"record {self.frame_id!r} has neither depth nor depth_path")
        return read_depth(self.depth_path, self.depth_format)
