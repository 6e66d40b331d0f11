"""One synthetic frame: a sampled hand, pose, scene family, viewpoint, distractors and sensor,
deterministic per seed. The scene families and their parameter ranges live in :mod:`.scenes`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from srnpose.cameras import CAMERAS, DEFAULT_CAMERA
from srnpose.geometry import Intrinsics, xyz_to_uvd
from srnpose.hand import kinematics as hm
from srnpose.synth.person import third_person
from srnpose.synth.poses import HANDS_V1, HandDraw
from srnpose.synth.render import cast
from srnpose.synth.scenes import (  # noqa: F401  (PART_*, DISTANCE_RANGE_MM, sample_rotation: as before)
    DISTANCE_RANGE_MM,
    PART_DISTRACTOR,
    PART_OBJECT,
    PART_OTHER_HAND,
    SCENE_FAMILIES,
    close_range,
    first_person,
    hand_object,
    sample_rotation,
)
from srnpose.synth.second_hand import draw_second_hand
from srnpose.synth.sensor import DEFAULT_SENSOR, SensorModel, apply_sensor, get_profile
from srnpose.synth.turned import turned

# Builders by family: (rng, intrinsics with positive focal lengths except close_range's, width, height,
# the sensor's far limit, hands = pose families and palm widths[, close_range: distractors]) -> SceneLayout.
# The v2 families first, in SCENE_FAMILIES' order (pick_scene draws in this order); ``turned`` is engine v3's.
BUILDERS = {"third_person": third_person, "first_person": first_person, "hand_object": hand_object,
            "close_range": close_range, "turned": turned}
DEFAULT_SCENE = "close_range"  # scene=None: the engine's original scene, for every existing caller
_SCENE_STREAM = 0x5CE4E  # the family draw uses its own stream: the scene's draws stay as they were


@dataclass(frozen=True)
class SynthFrame:
    """A rendered frame. ``joints_*`` are canonical (21, 3); ``part`` is the ideal visible part map."""

    depth_mm: np.ndarray  # (H, W) uint16, 0 = no measurement
    joints_xyz: np.ndarray  # (21, 3) float64 mm, camera frame
    joints_uvd: np.ndarray  # (21, 3) float64 px, px, mm
    is_left: bool
    intrinsics: Intrinsics
    seed: int
    part: np.ndarray | None = None  # (H, W) int16: hand part (hand_model) >= 0, scenes.PART_* < -1, -1 empty
    family: str = ""  # pose family
    hand_length_mm: float = 0.0
    scene: str = ""  # scene family (scenes.SCENE_FAMILIES)
    second_hand: str = ""  # engine v3's unlabelled left hand in the scene: its placement (synth.second_hand), "" none


def frame_seed(seed: int, index: int) -> int:
    """The seed of frame ``index`` of a dataset with ``seed``: independent streams, any order."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index)]).generate_state(1)[0])


def resolve_camera(intrinsics: Intrinsics | None, resolution: tuple[int, int] | None) -> tuple[Intrinsics, tuple[int, int]]:
    """Fill in the default camera: no intrinsics -> the default camera scaled to ``resolution``;
    no resolution -> the default camera's, or twice the principal point for custom intrinsics."""
    camera = CAMERAS[DEFAULT_CAMERA]
    if intrinsics is None:
        if resolution is None:
            return camera.intrinsics, camera.resolution
        sx = resolution[0] / camera.resolution[0]
        sy = resolution[1] / camera.resolution[1]
        k = camera.intrinsics
        return Intrinsics(k.fx * sx, k.fy * sy, (k.cx + 0.5) * sx - 0.5, (k.cy + 0.5) * sy - 0.5), \
            (int(resolution[0]), int(resolution[1]))
    if resolution is None:
        resolution = (max(int(round(2 * intrinsics.cx + 1)), 1), max(int(round(2 * intrinsics.cy + 1)), 1))
    return intrinsics, (int(resolution[0]), int(resolution[1]))


def pick_scene(seed: int, scene: str | dict[str, float] | None = None) -> str:
    """The scene family of frame ``seed``: ``None`` -> ``DEFAULT_SCENE``, a name -> that family, a dict
    of weights (e.g. ``SCENE_FAMILIES``) -> drawn from a stream of its own, deterministically."""
    if scene is None:
        return DEFAULT_SCENE
    if isinstance(scene, str):
        if scene not in BUILDERS:
            raise ValueError(f"unknown scene family {scene!r}; available: {', '.join(BUILDERS)}")
        return scene
    unknown = sorted(set(scene) - set(BUILDERS))
    if unknown:
        raise ValueError(f"unknown scene families {unknown}; available: {', '.join(BUILDERS)}")
    names = [name for name in BUILDERS if name in scene]  # table order: independent of the dict's
    weights = np.array([float(scene[name]) for name in names])
    if not len(names) or (weights < 0).any() or not weights.sum() > 0:
        raise ValueError(f"scene weights must be >= 0 with a positive sum, got {dict(scene)}")
    draw = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), _SCENE_STREAM]))).random()
    cumulative = np.cumsum(weights) / weights.sum()
    return names[min(int(np.searchsorted(cumulative, draw, side="right")), len(names) - 1)]


def _profile(sensor):
    """The sensor profile object (``sensor`` may name one of ``sensor.SENSOR_PROFILES``)."""
    if isinstance(sensor, str):
        return get_profile(sensor)
    return sensor


def render_frame(seed: int, intrinsics: Intrinsics | None = None, resolution: tuple[int, int] | None = None,
                 distractors: bool = True, sensor: SensorModel = DEFAULT_SENSOR,
                 scene: str | dict[str, float] | None = None,
                 hands: HandDraw = HANDS_V1, second_hand: dict[str, float] | None = None) -> SynthFrame:
    """Render one frame, deterministically for ``seed``. Default camera: ``cameras.DEFAULT_CAMERA``.

    ``scene``: ``None`` (the close-range scene, as before families existed), a family name of
    :data:`BUILDERS` (``scenes.SCENE_FAMILIES`` and engine v3's ``turned``) or a dict of weights over them
    (``SCENE_FAMILIES`` for the default mix).
    ``distractors=False`` keeps only the hand and its forearm (no body, room, objects or other hand).
    ``hands``: pose-family weights and palm widths (``poses.HANDS_V1``, the hand-made families; engine v2
    passes ``poses.HANDS_V2``).
    ``second_hand``: scene family -> the share of its frames with the person's other (left, unlabelled) hand
    (``synth.second_hand``; engine v3 passes ``engines.V3_WEIGHTS["second_hand"]``); None: as before."""
    return _render(seed, intrinsics, resolution, sensor, scene, hands, distractors, None if distractors else _hand_only,
                   second_hand)


def render_without_hands(seed: int, intrinsics: Intrinsics | None, resolution: tuple[int, int] | None,
                         sensor: SensorModel, scene: str | dict[str, float] | None,
                         hands: HandDraw = HANDS_V1) -> np.ndarray:
    """The depth (H, W) uint16 of ``render_frame(seed, intrinsics, resolution, sensor=sensor, scene=scene,
    hands=hands)`` with the tracked hand, its forearm and the other hand left out of the scene: what the
    camera sees without them (the upper arm ends at the elbow). The same steps as :func:`render_frame`
    (the hand locator's frames without a hand, :mod:`srnpose.locator.train`)."""
    return _render(seed, intrinsics, resolution, sensor, scene, hands, True, _without_hands).depth_mm


def _hand_only(parts: np.ndarray) -> np.ndarray:  # distractors=False: the hand and its forearm
    return parts >= 0


def _without_hands(parts: np.ndarray) -> np.ndarray:  # the scene without the hands and the tracked forearm
    return (parts < 0) & (parts != PART_OTHER_HAND)


def _render(seed: int, intrinsics: Intrinsics | None, resolution: tuple[int, int] | None, sensor: SensorModel,
            scene: str | dict[str, float] | None, hands: HandDraw, distractors: bool, keep,
            second_hand: dict[str, float] | None = None) -> SynthFrame:
    """:func:`render_frame`'s steps; ``keep``: None, or which parts (a (P,) array -> (P,) bool) stay in the
    scene before it is cast."""
    intrinsics, (width, height) = resolve_camera(intrinsics, resolution)
    name = pick_scene(seed, scene)
    far_mm = float(_profile(sensor).far_mm)
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    if name == "close_range":  # handles mirrored / y-up cameras itself, as it always did
        layout = BUILDERS[name](rng, intrinsics, width, height, far_mm, hands=hands, distractors=distractors)
        solids, joints_xyz = layout.solids, layout.joints_xyz
    else:  # built for a standard camera, then reflected so the image keeps its layout
        k = Intrinsics(abs(intrinsics.fx), abs(intrinsics.fy), intrinsics.cx, intrinsics.cy)
        second = None if second_hand is None else draw_second_hand(seed, name, second_hand)
        extra = {} if second is None else {"second": second}  # v1, v2: the builders' calls as before
        layout = BUILDERS[name](rng, k, width, height, far_mm, hands=hands, **extra)
        solids, joints_xyz = layout.solids, layout.joints_xyz
        flip = np.array([np.sign(intrinsics.fx), np.sign(intrinsics.fy), 1.0])
        if (flip < 0).any():
            solids, joints_xyz = solids.transformed(np.diag(flip), np.zeros(3)), joints_xyz * flip
    if keep is not None:
        solids = solids.selected(keep)
    raster = cast(solids, intrinsics, width, height, far_mm=far_mm)  # beyond the range: never measured
    depth_mm = apply_sensor(raster.z_mm, raster.cos_incidence, rng, sensor)
    joints_uvd = xyz_to_uvd(joints_xyz, intrinsics)
    second_shown = layout.second_hand if keep is None or keep(np.array([PART_OTHER_HAND]))[0] else ""
    return SynthFrame(depth_mm, joints_xyz, joints_uvd, layout.is_left, intrinsics, int(seed), raster.part,
                      layout.family, layout.hand_length_mm, name, second_shown)


def visible_joints(frame: SynthFrame) -> np.ndarray:
    """(21,) bool: the joint projects inside the image onto a measured pixel of a part it belongs to."""
    height, width = frame.depth_mm.shape
    u = np.rint(frame.joints_uvd[:, 0]).astype(np.int64)
    v = np.rint(frame.joints_uvd[:, 1]).astype(np.int64)
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    out = np.zeros(21, dtype=bool)
    for j in np.flatnonzero(inside):
        measured = frame.depth_mm[v[j], u[j]] > 0
        own = frame.part is None or int(frame.part[v[j], u[j]]) in hm.JOINT_PARTS[j]
        out[j] = measured and own
    return out
