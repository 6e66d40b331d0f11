"""The synthetic engine's versions: which scenes, poses and sensors a training frame is drawn from.

=======  ===================================================  ==================  =========================
engine   scenes (:mod:`srnpose.synth.scenes`)                  poses               sensor
=======  ===================================================  ==================  =========================
v1       close range: a hand and forearm before an optional    hand-made families  one generic model
         wall (round 1's engine)
v2       third person, first person, hand with object, close   + real FPHA poses   structured light, time of
         range (``scenes.SCENE_FAMILIES``)                      (``prior``)         flight, active stereo,
                                                                                   randomized per frame
=======  ===================================================  ==================  =========================

``render(engine, seed, ...)`` is a pure function of its arguments, like ``render_frame``; the v2
sensor is drawn from a stream of its own (``[seed, SENSOR_STREAM]``), and a v2 frame whose hand is
hidden (fewer than ``MIN_HAND_PIXELS_320`` measured hand pixels) is drawn again from a derived seed.
"""

from __future__ import annotations

import typing
from typing import Literal

import numpy as np

from srnpose.geometry import Intrinsics

__all__ = ["SynthEngine", "ENGINES", "render"]

SynthEngine = Literal["v1", "v2"]
ENGINES: tuple[str, ...] = typing.get_args(SynthEngine)
SENSOR_STREAM = 0x5E45
RETRY_STREAM = 0x2E7A
# v2: a frame whose hand shows fewer measured pixels than this (per 320x240 frame; held objects, the
# other arm or the range limit can hide it whole) is drawn again from seed [seed, RETRY_STREAM, attempt].
MIN_HAND_PIXELS_320 = 40
MAX_ATTEMPTS = 8


def render(engine: str, seed: int, intrinsics: Intrinsics | None = None, resolution: tuple[int, int] | None = None,
           camera: str | None = None):
    """One :class:`~srnpose.synth.frame.SynthFrame` of ``engine`` for ``seed``. ``camera``: a preset name
    whose sensor family v2 uses (None: a random family)."""
    from srnpose.synth.frame import render_frame

    if engine == "v1":
        return render_frame(seed, intrinsics, resolution)
    if engine == "v2":
        from srnpose.synth.poses import HANDS_V2
        from srnpose.synth.scenes import SCENE_FAMILIES
        from srnpose.synth.sensor import sample_profile

        for attempt in range(MAX_ATTEMPTS):
            s = int(seed) if attempt == 0 else \
                int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, RETRY_STREAM, attempt]).generate_state(1)[0])
            sensor = sample_profile(np.random.default_rng([s & 0xFFFFFFFF, SENSOR_STREAM]), camera)
            frame = render_frame(s, intrinsics, resolution, sensor=sensor, scene=SCENE_FAMILIES,
                                 hands=HANDS_V2)
            height, width = frame.depth_mm.shape
            if np.count_nonzero((frame.part >= 0) & (frame.depth_mm > 0)) * (320 * 240) >= \
                    MIN_HAND_PIXELS_320 * width * height:
                break
        return frame
    raise ValueError(f"unknown synthetic engine {engine!r}; available: {', '.join(ENGINES)}")
