"""The synthetic engine's versions: which scenes, poses and sensors a training frame is drawn from.

=======  ===================================================  ==================  =========================
engine   scenes (:mod:`srnpose.synth.scenes`)                  poses               sensor
=======  ===================================================  ==================  =========================
v1       close range: a hand and forearm before an optional    hand-made families  one generic model
         wall (round 1's engine)
v2       third person, first person, hand with object, close   + real FPHA poses   structured light, time of
         range (``scenes.SCENE_FAMILIES``)                      (``prior``)         flight, active stereo,
                                                                                   randomized per frame
v3       v2's + ``turned`` (palm sideways, fingers towards      + named gestures    as v2; first-person
         the camera, back, from above, from the side;          (``gesture``:       frames (head-mounted,
         ``synth.turned``)                                      ``poses.GESTURES``) 250-650 mm): structured
                                                                                   light or active stereo
         + the person's other (left, unlabelled) hand in
         35 % of third_person, 30 % of first_person and
         hand_object frames (``synth.second_hand``)
=======  ===================================================  ==================  =========================

The v3 weights (:data:`V3_WEIGHTS`, one table for its scene and pose families) are NOT chosen by
measurement: no training run on v3 was possible when it was written. They keep v2's proportions and
give the new families a share of their own (``turned`` 0.2 of the scenes, ``gesture`` 0.2 of the
poses). A v3 first-person frame without a named camera is seen by a head-mounted sensor: its family is
drawn from ``V3_WEIGHTS["head_mounted_sensors"]`` (SR300/SR305-like structured light, D400-like active
stereo; ``sensor.PROFILE_RANGES`` for their parameters) instead of ``sensor.PROFILE_WEIGHTS``. In v3's
``hand_object`` scenes the long fingers close on the held object until they touch it
(``synth.grasp``, ``HandDraw.close_grasps``). A share of v3's frames (``V3_WEIGHTS["second_hand"]``, per
scene family, not chosen by measurement either) show the person's other hand, unlabelled: the left
hand entering beside the right one in first_person and hand_object views (nearest surfaces 0-250 mm
apart, its palm 0-150 mm behind or 0-100 mm nearer than the labelled palm), raised or hanging beside
the body in third_person; ranges in ``synth.second_hand``, its draws from a stream of their own
(``SynthFrame.second_hand`` names its placement). v2 stays the default engine; v1 and v2 render bitwise
as before.

``render(engine, seed, ...)`` is a pure function of its arguments, like ``render_frame``; the v2
sensor is drawn from a stream of its own (``[seed, SENSOR_STREAM]``), and a v2 frame whose hand is
hidden (fewer than ``MIN_HAND_PIXELS_320`` measured hand pixels) is drawn again from a derived seed;
v3 does the same with its own families.
"""

from __future__ import annotations

import typing
from typing import Literal

import numpy as np

from srnpose.data.records import HandRecord
from srnpose.geometry import Intrinsics

__all__ = ["SynthEngine", "ENGINES", "render", "synthetic_record"]

SynthEngine = Literal["v1", "v2", "v3"]
ENGINES: tuple[str, ...] = typing.get_args(SynthEngine)
SENSOR_STREAM = 0x5E45
RETRY_STREAM = 0x2E7A
# v2: a frame whose hand shows fewer measured pixels than this (per 320x240 frame; held objects, the
# other arm or the range limit can hide it whole) is drawn again from seed [seed, RETRY_STREAM, attempt].
MIN_HAND_PIXELS_320 = 40
MAX_ATTEMPTS = 8
# Engine v3's family weights (not yet chosen by measurement, see the module docstring): scenes (v2's
# SCENE_FAMILIES x 0.8 + turned 0.2) and poses (v2's FAMILIES_V2 x 0.8 + gesture 0.2).
V3_WEIGHTS: dict[str, dict[str, float]] = {
    "scenes": {"third_person": 0.32, "first_person": 0.12, "hand_object": 0.16, "close_range": 0.2, "turned": 0.2},
    "poses": {"open": 0.0512, "fist": 0.0384, "point": 0.0384, "pinch": 0.0448, "counting": 0.0576,
              "random": 0.0896, "prior": 0.4, "spread": 0.08, "gesture": 0.2},
    "head_mounted_sensors": {"structured_light": 0.6, "active_stereo": 0.4},  # first_person, no camera named
    # The share of a scene family's frames with the person's other (left, unlabelled) hand (synth.second_hand);
    # third_person keeps v2's share of full other hands (person.OTHER_ARM_RAISED_PROB), the rest mittens.
    "second_hand": {"third_person": 0.35, "first_person": 0.3, "hand_object": 0.3},
}


def render(engine: str, seed: int, intrinsics: Intrinsics | None = None, resolution: tuple[int, int] | None = None,
           camera: str | None = None, distractors: bool = True, scenes: dict[str, float] | None = None):
    """One :class:`~srnpose.synth.frame.SynthFrame` of ``engine`` for ``seed``. ``camera``: a preset name
    whose sensor family v2 and v3 use (None: a random family). ``distractors=False`` keeps only the hand and
    its forearm (:func:`~srnpose.synth.frame.render_frame`). ``scenes``: engine v3's scene-family weights
    instead of ``V3_WEIGHTS["scenes"]`` (a training mix: ``data.synth_scenes``)."""
    from srnpose.synth.frame import render_frame

    if engine == "v1":
        return render_frame(seed, intrinsics, resolution, distractors)
    if engine in ("v2", "v3"):
        from srnpose.synth.poses import HANDS_V2, HandDraw
        from srnpose.synth.scenes import SCENE_FAMILIES
        from srnpose.synth.sensor import sample_profile

        mix, hands, second_hand = SCENE_FAMILIES, HANDS_V2, None
        if engine == "v3":
            second_hand = V3_WEIGHTS["second_hand"]
            mix = V3_WEIGHTS["scenes"] if scenes is None else scenes
            hands = HandDraw(dict(V3_WEIGHTS["poses"]), HANDS_V2.palm_width, HANDS_V2.left_share,
                             close_grasps=True)
        for attempt in range(MAX_ATTEMPTS):
            s = int(seed) if attempt == 0 else \
                int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, RETRY_STREAM, attempt]).generate_state(1)[0])
            sensor = sample_profile(np.random.default_rng([s & 0xFFFFFFFF, SENSOR_STREAM]), camera,
                                    sensor_families(engine, s, mix, camera))
            frame = render_frame(s, intrinsics, resolution, distractors, sensor=sensor, scene=mix, hands=hands,
                                 second_hand=second_hand)
            height, width = frame.depth_mm.shape
            if np.count_nonzero((frame.part >= 0) & (frame.depth_mm > 0)) * (320 * 240) >= \
                    MIN_HAND_PIXELS_320 * width * height:
                break
        return frame
    raise ValueError(f"unknown synthetic engine {engine!r}; available: {', '.join(ENGINES)}")


def sensor_families(engine: str, seed: int, scenes: dict[str, float], camera: str | None) -> dict[str, float] | None:
    """The sensor families frame ``seed`` is drawn from: None (``sensor.PROFILE_WEIGHTS``) except a v3
    first-person frame without a named camera, seen by a head-mounted sensor."""
    from srnpose.synth.frame import pick_scene

    if engine == "v3" and camera is None and pick_scene(seed, scenes) == "first_person":
        return V3_WEIGHTS["head_mounted_sensors"]
    return None


def synthetic_record(engine: str, seed: int, index: int, intrinsics: Intrinsics | None = None,
                     resolution: tuple[int, int] | None = None, distractors: bool = True,
                     scenes: dict[str, float] | None = None):
    """Frame ``index`` of the synthetic stream ``seed`` of ``engine`` (:func:`render` of
    ``frame_seed(seed, index)``) as a :class:`~srnpose.data.records.HandRecord`: depth float32 mm in
    memory, canonical joints, ``frame_id`` ``"synth:SEED:INDEX"`` and ``extra`` ``is_left`` (read as its
    mirror image by evaluation), ``joints_xyz``, the pose ``family`` and the ``scene`` family. The one builder of synthetic
    records: the training stream (:class:`srnpose.data.sampling.SampleSource`) and
    :class:`srnpose.synth.dataset.SynthDataset` both call it. ``scenes``: see :func:`render`."""
    from srnpose.synth.frame import frame_seed

    frame = render(engine, frame_seed(seed, index), intrinsics, resolution, distractors=distractors, scenes=scenes)
    return HandRecord(joints_uvd=frame.joints_uvd, intrinsics=frame.intrinsics,
                      depth=frame.depth_mm.astype(np.float32), frame_id=f"synth:{seed}:{index}",
                      extra={"is_left": frame.is_left, "joints_xyz": frame.joints_xyz, "family": frame.family,
                             "scene": frame.scene})
