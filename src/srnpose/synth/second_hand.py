"""The person's other hand (engine v3, issue "hands at work"): an unlabelled left hand in a share of frames.

Real frames often show both hands: in egocentric views the left hand comes in beside the right one, in
third-person views the other hand is raised or hangs beside the body. Engine v3 adds that hand to a
share of its ``first_person``, ``hand_object`` and ``third_person`` frames
(``engines.V3_WEIGHTS["second_hand"]``, per scene family; ``close_range`` and ``turned`` never). It is
the same person's hand: the labelled hand's shape, mirrored (``is_left``, as ``scenes.hand_volume``
mirrors any left hand), a pose drawn from the frame's pose families, and its forearm; all of it has
part id ``PART_OTHER_HAND`` (the upper arm ``PART_DISTRACTOR``). The labels stay the labelled right
hand's joints; the renderer's z-buffer decides which hand hides which.

Every draw of the second hand (whether the frame has one, then its placement) comes from a stream of
its own, ``[seed, SECOND_HAND_STREAM]``: the rest of the scene's draws stay as they were, so the frame
is v3's scene plus a hand (in ``first_person`` the table moves down under both hands; in
``third_person`` the other arm's mitten gives way to it). Ranges (mm, degrees):

============  ==========  ===================================================================================
family        placement   where
============  ==========  ===================================================================================
first_person  ``beside``  the left hand and forearm from the lower left border: forearm drawn as the right
              /           one's, mirrored (up to ``MAX_DRAWS`` draws for an elbow outside the image and a palm
              ``touching``  inside it), palm facing as ``PALM_FACING_FIRST``; its palm centre to the image
                          left of the right palm, tilted -20..45 (down in the image), at the right palm's
                          depth + ``DEPTH_OFFSET_MM`` (behind 0..150 for ``BEHIND_SHARE``, else nearer
                          0..100), then moved sideways until the nearest surfaces are ``GAP_MM`` apart:
                          0..10 (``touching``, ``TOUCH_SHARE``) or 10..250; upper arm to a left shoulder
hand_object   as above    the left hand beside the right one and its object (image left or right, tilted
                          -45..45), forearm receding 20-70 from the image plane towards the border, the palm
                          facing the right hand 40 %, the camera 30 %, away 30 %; same depth and gap ranges
                          (the held object counts as a surface); up to ``MAX_DRAWS`` draws for a palm inside
                          the image
third_person  ``near``    0.3: the other arm's wrist 90-340 beside the labelled wrist (towards the person's
                          left), -100..100 up/down, -60..200 behind it (kept off the chest), elbow by IK
              ``raised``  0.4: in front of the chest as v2's raised arm (x -0.3..1.6 half shoulder widths,
                          y -300..350, 20-350 before the chest); where that is nearer than the labelled
                          wrist, 75 % of draws move it 0-150 behind it instead
              ``lowered`` 0.3: hanging beside the body as v2's mitten arm, with the full hand, palm to the thigh
============  ==========  ===================================================================================

In v3's ``third_person`` frames without a second hand the other arm hangs with v2's mitten (a crude
closed hand, also ``PART_OTHER_HAND``); v2's raised full hand (``person.OTHER_ARM_RAISED_PROB``) is
v3's second hand instead, so the table's share is the share of full other hands.

The gap is measured between sampled surfaces: the joints as balls of ``JOINT_RADIUS_MM``, the palm
centre as a ball of ``PALM_RADIUS_MM``, each forearm as ``FOREARM_SAMPLES`` balls of its radius along
its axis, and the held object's signed distance (``grasp.object_distance_mm``). Where the draws are
retried the kept ones lean to placements that fit the image (first_person: 37 % ``touching``, 33 %
of palms nearer than the labelled palm). The second hand is nearer to the camera than the labelled one
in a minority of frames: its 5th-percentile measured depth below the labelled hand's in 25 %
(first_person), 26 % (hand_object), 33 % (third_person) of the frames that show it (1500 v3 frames,
160x120); ``docs/synthetic.md`` has the other measured shares.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from srnpose.geometry import Intrinsics
from srnpose.synth.grasp import object_distance_mm
from srnpose.synth.poses import HandDraw, sample_pose
from srnpose.synth.scenes import (
    PALM_FACING_FIRST,
    PART_DISTRACTOR,
    PART_OTHER_HAND,
    cross,
    hand_volume,
    orient_hand,
    palm_target,
    pick,
    unit,
)
from srnpose.synth.solids import Solids, SolidsBuilder

SECOND_HAND_STREAM = 0x5EC2
SECOND_HAND_FAMILIES = ("third_person", "first_person", "hand_object")  # the builders that draw one
GAP_MM = (10.0, 250.0)  # nearest surfaces apart, beside
TOUCH_GAP_MM = (0.0, 10.0)
TOUCH_SHARE = 0.2
BEHIND_SHARE = 0.75  # the second palm at or behind the labelled palm's depth
DEPTH_OFFSET_MM = {"behind": (0.0, 150.0), "nearer": (0.0, 100.0)}
MAX_DRAWS = 16
SLIDE_STEP_MM, SLIDE_MAX_MM, SLIDE_BISECTIONS = 20.0, 1000.0, 5  # the gap is found to 20 / 2^5 < 1 mm
JOINT_RADIUS_MM = 9.0
PALM_RADIUS_MM = 14.0
FOREARM_SAMPLES = 6
THIRD_PERSON_PLACEMENTS: dict[str, float] = {"near": 0.3, "raised": 0.4, "lowered": 0.3}
HAND_OBJECT_PALM: dict[str, float] = {"to_hand": 0.4, "palm": 0.3, "back": 0.3}


@dataclass(frozen=True)
class SecondHand:
    """Engine v3's second hand for one frame: whether the frame has one, and the stream its draws come from."""

    present: bool
    rng: np.random.Generator

    def beside_hand(self, family: str, joints: np.ndarray, elbow: np.ndarray, shape, forearm_mm: float,
                    hands: HandDraw, held: Solids | None, palm_cam: np.ndarray,
                    axes: tuple[np.ndarray, np.ndarray, np.ndarray], k: Intrinsics, width: int, height: int) -> Placed:
        """The left hand beside the labelled one at ``joints`` (its forearm to ``elbow``, holding ``held``):
        :func:`beside` on this frame's stream (the scene modules call it through the frame's SecondHand,
        without importing this module)."""
        surface = Surface(*hand_surface(joints, elbow, shape.forearm_radius_mm * 1.2), held)
        return beside(self.rng, family, shape, forearm_mm, hands, surface, palm_cam, axes, k, width, height)

    def add_upper_arm(self, b: SolidsBuilder, shape, forearm_mm: float, elbow: np.ndarray,
                      axes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        """:func:`upper_arm` on this frame's stream."""
        upper_arm(b, self.rng, shape, forearm_mm, elbow, axes)


def draw_second_hand(seed: int, family: str, table: dict[str, float]) -> SecondHand | None:
    """The second hand of frame ``seed`` of scene ``family``: None where ``table`` (family -> share, e.g.
    ``engines.V3_WEIGHTS["second_hand"]``) has no entry for the family (the scene as before), else
    present with the family's probability, drawn from ``[seed, SECOND_HAND_STREAM]``."""
    unknown = sorted(set(table) - set(SECOND_HAND_FAMILIES))
    if unknown:
        raise ValueError(f"no second hand in scene families {unknown}; available: {', '.join(SECOND_HAND_FAMILIES)}")
    if family not in table:
        return None
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, SECOND_HAND_STREAM])))
    return SecondHand(bool(rng.random() < float(table[family])), rng)


@dataclass(frozen=True)
class Surface:
    """Sampled surface of what the second hand must keep off: ball centres (N, 3), radii (N,), camera frame;
    ``held``: a held object's solids (signed distance), or None."""

    points: np.ndarray
    radii: np.ndarray
    held: Solids | None = None

    def clearance_mm(self, points: np.ndarray, radii: np.ndarray) -> float:
        """Least gap between these balls (M, 3), (M,) and the surface (negative: they overlap)."""
        d = np.linalg.norm(points[:, None, :] - self.points[None, :, :], axis=2) - radii[:, None] - self.radii[None]
        gap = float(d.min())
        if self.held is not None:
            gap = min(gap, float(np.min(object_distance_mm(self.held, points) - radii)))
        return gap


def hand_surface(joints: np.ndarray, elbow: np.ndarray, forearm_radius_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Balls (N, 3), (N,) sampling a placed hand (21 joints, palm centre) and its forearm to ``elbow``."""
    s = np.linspace(0.15, 1.0, FOREARM_SAMPLES)[:, None]
    fore = joints[0] + s * (elbow - joints[0])
    points = np.concatenate([joints, [0.5 * (joints[0] + joints[9])], fore])
    radii = np.concatenate([np.full(21, JOINT_RADIUS_MM), [PALM_RADIUS_MM], np.full(FOREARM_SAMPLES, forearm_radius_mm)])
    return points, radii


def _gap(rng: np.random.Generator) -> tuple[float, str]:
    if rng.random() < TOUCH_SHARE:
        return rng.uniform(*TOUCH_GAP_MM), "touching"
    return rng.uniform(*GAP_MM), "beside"


def _depth_offset(rng: np.random.Generator) -> float:
    """The second palm's depth minus the labelled palm's, along the labelled palm's ray (mm)."""
    if rng.random() < BEHIND_SHARE:
        return rng.uniform(*DEPTH_OFFSET_MM["behind"])
    return -rng.uniform(*DEPTH_OFFSET_MM["nearer"])


def _slide_to_gap(surface: Surface, points: np.ndarray, radii: np.ndarray, start: np.ndarray, direction: np.ndarray,
                  gap_mm: float) -> np.ndarray:
    """The least shift ``s >= 0`` (a scan in steps of ``SLIDE_STEP_MM``, then bisection) at which balls
    ``points`` (about the origin) moved to ``start + s * direction`` clear ``surface`` by ``gap_mm``;
    returns that position."""
    shifts = np.arange(0.0, SLIDE_MAX_MM + SLIDE_STEP_MM, SLIDE_STEP_MM)
    moved = points[None] + start + shifts[:, None, None] * direction  # (S, M, 3)
    d = np.linalg.norm(moved[:, :, None, :] - surface.points[None, None], axis=3) - radii[:, None] - surface.radii
    gaps = d.min(axis=(1, 2))  # (S,)
    if surface.held is not None:
        held = object_distance_mm(surface.held, moved.reshape(-1, 3)).reshape(len(shifts), -1) - radii
        gaps = np.minimum(gaps, held.min(axis=1))
    clear = np.flatnonzero(gaps >= gap_mm)
    if not len(clear):
        return start + shifts[-1] * direction
    if clear[0] == 0:
        return start
    low, high = shifts[clear[0] - 1], shifts[clear[0]]
    for _ in range(SLIDE_BISECTIONS):
        mid = 0.5 * (low + high)
        low, high = (low, mid) if surface.clearance_mm(points + (start + mid * direction), radii) >= gap_mm \
            else (mid, high)
    return start + high * direction


def _projects_inside(p: np.ndarray, k: Intrinsics, width: int, height: int) -> bool:
    if p[2] <= 1.0:
        return False
    u, v = k.cx + k.fx * p[0] / p[2], k.cy + k.fy * p[1] / p[2]
    return bool(0.0 <= u < width and 0.0 <= v < height)


@dataclass(frozen=True)
class Placed:
    """A placed second hand: its solids (camera frame), joints (21, 3), elbow (3,) and placement name."""

    solids: Solids
    joints: np.ndarray
    elbow: np.ndarray
    placement: str


def _volume(shape, hands: HandDraw, forearm_mm: float, rng: np.random.Generator):
    pose, _ = sample_pose(rng, None, hands.poses)
    return hand_volume(shape, pose, True, forearm_mm)  # (joints, volume, forearm dir): mirrored, a left hand


def beside(rng: np.random.Generator, family: str, shape, forearm_mm: float, hands: HandDraw, surface: Surface,
           palm_cam: np.ndarray, axes: tuple[np.ndarray, np.ndarray, np.ndarray], k: Intrinsics, width: int,
           height: int) -> Placed:
    """The left hand and forearm beside the labelled one (``first_person`` or ``hand_object``, module table).
    ``axes``: first_person's level frame (up, forward, right) in camera coordinates; ``hand_object``: the
    camera's (-y, z, x)."""
    up, forward, right = axes
    joints_h, volume_h, forearm_h = _volume(shape, hands, forearm_mm, rng)
    palm_h = 0.5 * (joints_h[0] + joints_h[9])
    ray = unit(palm_cam)
    img_x = unit(right - ray * (right @ ray))  # image right and down, perpendicular to the palm's ray
    img_y = cross(ray, img_x)
    for _ in range(MAX_DRAWS):
        if family == "first_person":  # the right hand's forearm draw, mirrored: from the lower left
            forearm_to = unit(-right * rng.uniform(-0.1, 0.8) - up * rng.uniform(0.2, 0.9)
                              - forward * rng.uniform(0.4, 1.2))
            palm_to = palm_target(rng, -ray, unit(cross(up, ray)), PALM_FACING_FIRST)
            tilt = np.deg2rad(rng.uniform(-20.0, 45.0))
            lateral = -img_x * np.cos(tilt) + img_y * np.sin(tilt)
        else:  # hand_object: either side, the forearm receding towards that side's border
            side = 1.0 if rng.random() < 0.5 else -1.0
            tilt = np.deg2rad(rng.uniform(-45.0, 45.0))
            lateral = side * img_x * np.cos(tilt) + img_y * np.sin(tilt)
            recede = np.deg2rad(rng.uniform(20.0, 70.0))
            outward = unit(lateral * rng.uniform(0.3, 1.0) + img_y * rng.uniform(0.2, 1.0))
            forearm_to = unit(outward * np.cos(recede) + ray * np.sin(recede))
            kind = pick(rng, HAND_OBJECT_PALM)
            palm_to = -lateral if kind == "to_hand" else -ray if kind == "palm" else ray
        rot = orient_hand(forearm_h, forearm_to, palm_to, 25.0, rng)
        gap_mm, placement = _gap(rng)
        start = palm_cam + ray * _depth_offset(rng)
        points, radii = hand_surface(joints_h @ rot.T - rot @ palm_h, forearm_to * forearm_mm - rot @ palm_h,
                                     shape.forearm_radius_mm * 1.2)  # about the palm centre
        palm2 = _slide_to_gap(surface, points, radii, start, lateral, gap_mm)
        trans = palm2 - rot @ palm_h
        elbow = trans + forearm_to * forearm_mm
        if _projects_inside(palm2, k, width, height) and (family != "first_person"
                                                          or not _projects_inside(elbow, k, width, height)):
            break  # the palm in the image; first_person: the forearm from the border
    b = SolidsBuilder()
    b.extend(Solids.of(volume_h.transformed(rot, trans)).relabeled(PART_OTHER_HAND))
    return Placed(b.build(), joints_h @ rot.T + trans, elbow, placement)


def upper_arm(b: SolidsBuilder, rng: np.random.Generator, shape, forearm_mm: float, elbow: np.ndarray,
              axes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """first_person: the left upper arm to a shoulder below and left of the camera (as the right one's)."""
    up, forward, right = axes
    shoulder = -up * rng.uniform(180.0, 280.0) - right * rng.uniform(130.0, 220.0) - forward * rng.uniform(0.0, 100.0)
    shoulder = elbow + unit(shoulder - elbow) * forearm_mm * 1.2
    r_el, r_sh = 40.0 * shape.palm_scale[1], 48.0 * shape.palm_scale[1]
    if elbow[2] > r_el + 60.0:
        if shoulder[2] < r_sh + 60.0:
            s = (elbow[2] - r_sh - 60.0) / max(elbow[2] - shoulder[2], 1e-6)
            shoulder = elbow + (shoulder - elbow) * s
        b.cone(elbow, r_el, shoulder, r_sh, PART_DISTRACTOR)


def other_arm(rng: np.random.Generator, shape, hands: HandDraw, side: float, shoulder: np.ndarray, upper_mm: float,
              forearm_mm: float, scale: float, half_sh: float, chest_front: float, wrist: np.ndarray, surface: Surface,
              ik, palm_table: dict[str, float]) -> tuple[Placed, np.ndarray]:
    """third_person (person frame, the camera looks along +z): the other arm's full left hand ``near``,
    ``raised`` or ``lowered`` (module table); returns it and the elbow. ``scale``: the person's;
    ``side``: the labelled hand's
    side (-1: the person's right, the camera's left); ``ik``: ``person._elbow_ik``; ``palm_table``:
    ``person.PALM_FACING_THIRD``."""
    placement = pick(rng, THIRD_PERSON_PLACEMENTS)
    joints_h, volume_h, forearm_h = _volume(shape, hands, forearm_mm, rng)
    hint = np.array([-side * rng.uniform(0.3, 1.0), 1.0, rng.uniform(-0.2, 0.6)])
    towards_camera = np.array([0.0, 0.0, -1.0])

    def off_chest(target: np.ndarray) -> np.ndarray:  # in front of the chest where the torso is
        if abs(target[0]) < 1.1 * half_sh:
            target[2] = min(target[2], -chest_front - 30.0)
        return target

    if placement == "lowered":
        elbow = shoulder + unit(np.array([-side * rng.uniform(0.05, 0.3), 1.0, rng.uniform(-0.3, 0.2)])) * upper_mm
        o_wrist = elbow + unit(np.array([-side * rng.uniform(-0.2, 0.3), rng.uniform(0.2, 1.0),
                                         -rng.uniform(0.0, 1.0)])) * forearm_mm
        palm_to = np.array([side, 0.0, 0.0])  # towards the thigh
    else:
        for _ in range(8):  # off the labelled hand
            if placement == "near":
                target = wrist + np.array([-side * rng.uniform(90.0, 340.0), rng.uniform(-100.0, 100.0),
                                           rng.uniform(-60.0, 200.0)])
            else:
                target = np.array([-side * half_sh * rng.uniform(-0.3, 1.6), rng.uniform(-300.0, 350.0) * scale,
                                   -chest_front - rng.uniform(20.0, 350.0)])
                if target[2] < wrist[2] and rng.random() < BEHIND_SHARE:
                    target[2] = wrist[2] + rng.uniform(0.0, 150.0)
            elbow, o_wrist = ik(shoulder, off_chest(target), upper_mm, forearm_mm, hint)
            palm_to = palm_target(rng, towards_camera, np.array([-side, 0.0, 0.0]), palm_table)
            rot = orient_hand(forearm_h, unit(elbow - o_wrist), palm_to, 30.0, rng)
            points, radii = hand_surface(joints_h @ rot.T + o_wrist, elbow, shape.forearm_radius_mm * 1.2)
            if surface.clearance_mm(points, radii) >= 0.0:
                break
    if placement == "lowered":
        rot = orient_hand(forearm_h, unit(elbow - o_wrist), palm_to, 30.0, rng)
    solids = Solids.of(volume_h.transformed(rot, o_wrist)).relabeled(PART_OTHER_HAND)
    return Placed(solids, joints_h @ rot.T + o_wrist, elbow, placement), elbow
