"""The ``third_person`` scene family: a simple articulated person holding the tracked hand, in a room.
Parameter ranges: the table of :mod:`srnpose.synth.scenes`."""

from __future__ import annotations

import numpy as np

from srnpose.geometry import Intrinsics
from srnpose.hand import kinematics as hm
from srnpose.synth.poses import HANDS_V1, HandDraw, sample_pose
from srnpose.synth.scenes import (
    FAR_MARGIN_MM,
    PART_DISTRACTOR,
    PART_OTHER_HAND,
    THIRD_PERSON_DEPTH_MM,
    SceneLayout,
    backproject,
    cross,
    hand_volume,
    orient_hand,
    palm_target,
    pick,
    place_hand,
    random_sign,
    sample_hand,
    unit,
)
from srnpose.synth.second_hand import SecondHand, Surface, hand_surface, other_arm
from srnpose.synth.solids import Solids, SolidsBuilder

ARM_MODES: dict[str, float] = {"front": 0.55, "beside": 0.25, "elbow_forward": 0.2}  # third_person
PALM_FACING_THIRD: dict[str, float] = {"palm": 0.55, "back": 0.3, "side": 0.15}  # towards the camera, away
OTHER_ARM_RAISED_PROB = 0.35  # third_person: the other hand raised (a full hand), else hanging (a mitten)

# The person (third_person), nominal size (x the person's scale), in the person frame: x = the camera's
# right when the person faces it (the person's left), y down, z away from the camera, origin between
# the shoulder joints. Round cones (a, ra, b, rb) and ellipsoids (centre, semi-axes).
PERSON_CONES_MM = {
    "neck": ((0.0, 5.0, 12.0), 52.0, (0.0, -120.0, 18.0), 46.0),
    "hips": ((-105.0, 610.0, 12.0), 95.0, (105.0, 610.0, 12.0), 95.0),
    "thigh": ((95.0, 650.0, 10.0), 82.0, (105.0, 1080.0, -5.0), 56.0),  # mirrored for the other leg
    "shin": ((105.0, 1080.0, -5.0), 56.0, (108.0, 1500.0, 25.0), 42.0),
}
PERSON_ELLIPSOIDS_MM = {
    "chest": ((0.0, 195.0, 8.0), (1.08, 245.0, 108.0)),  # semi x is relative to the shoulder half-width
    "belly": ((0.0, 450.0, 14.0), (0.95, 215.0, 102.0)),
    "head": ((0.0, -225.0, 5.0), (72.0, 105.0, 92.0)),
}
SHOULDER_HALF_WIDTH_MM = (165.0, 205.0)
SHOULDER_RADIUS_MM = 54.0
UPPER_ARM_MM = (270.0, 320.0)
UPPER_ARM_RADIUS_MM = (47.0, 38.0)  # at the shoulder, at the elbow
FLOOR_BELOW_SHOULDERS_MM = 1545.0

def _elbow_ik(shoulder: np.ndarray, wrist: np.ndarray, upper_mm: float, fore_mm: float,
              hint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elbow and (reach-limited) wrist of a two-bone arm, the elbow bent towards ``hint``."""
    d = wrist - shoulder
    dist = float(np.linalg.norm(d))
    axis = d / max(dist, 1e-6)
    dist = float(np.clip(dist, abs(upper_mm - fore_mm) + 40.0, 0.97 * (upper_mm + fore_mm)))
    wrist = shoulder + axis * dist
    along = (upper_mm ** 2 - fore_mm ** 2 + dist ** 2) / (2.0 * dist)
    out = np.sqrt(max(upper_mm ** 2 - along ** 2, 0.0))
    perp = hint - axis * (hint @ axis)
    if np.linalg.norm(perp) < 1e-6:
        perp = cross(axis, [1.0, 0.0, 0.0])
    return shoulder + axis * along + unit(perp) * out, wrist


def _person(b: SolidsBuilder, scale: float, half_sh: float, depth_scale: float, head_tilt: np.ndarray) -> None:
    """Torso, neck, head, shoulders, hips and legs (person frame) as distractors."""
    for name, (a, ra, e, re) in PERSON_CONES_MM.items():
        a, e = np.array(a) * scale, np.array(e) * scale
        a[2] *= depth_scale
        e[2] *= depth_scale
        if name in ("thigh", "shin"):
            for side in (-1.0, 1.0):
                b.cone(a * [side, 1, 1], ra * scale, e * [side, 1, 1], re * scale, PART_DISTRACTOR)
        else:
            b.cone(a, ra * scale, e, re * scale, PART_DISTRACTOR)
    for name, (c, semi) in PERSON_ELLIPSOIDS_MM.items():
        c = np.array(c) * scale
        semi = np.array(semi) * scale
        if name == "head":
            b.ellipsoid(c, head_tilt, semi, PART_DISTRACTOR)
        else:
            semi[0] = semi[0] / scale * half_sh
            semi[2] *= depth_scale
            b.ellipsoid(c, np.eye(3), semi, PART_DISTRACTOR)
    r = SHOULDER_RADIUS_MM * scale
    b.cone((-half_sh, 20.0 * scale, 0.0), r, (half_sh, 20.0 * scale, 0.0), r, PART_DISTRACTOR)


def _mitten(b: SolidsBuilder, wrist: np.ndarray, elbow: np.ndarray, scale: float, rng: np.random.Generator) -> None:
    """A cheap closed hand at the end of a forearm: palm ellipsoid and a curled-finger round cone."""
    down = unit(wrist - elbow)
    side = unit(cross(down, rng.normal(size=3)))
    palm = wrist + down * (45.0 * scale)
    axes = np.stack([side, down, cross(side, down)], axis=1)
    b.ellipsoid(palm, axes, np.array([40.0, 50.0, 17.0]) * scale, PART_OTHER_HAND)
    tips = palm + down * (40.0 * scale)
    b.cone(tips - side * (25.0 * scale), 14.0 * scale, tips + side * (25.0 * scale), 12.0 * scale, PART_OTHER_HAND)


def third_person(rng: np.random.Generator, k: Intrinsics, width: int, height: int, far_mm: float,
                hands: HandDraw = HANDS_V1, second: SecondHand | None = None) -> SceneLayout:
    """A person seen from 0.6-2.5 m holding the tracked hand up, in a room (see the module table).
    ``second`` (engine v3, ``synth.second_hand``): not None, the other arm carries a full left hand where
    ``second.present`` (drawn from its stream) and a hanging mitten otherwise."""
    hand = sample_hand(rng, hands=hands)
    scale = hand.shape.length_mm / hm.NOMINAL_LENGTH_MM * rng.uniform(0.94, 1.06)
    depth_scale = rng.uniform(0.85, 1.2)
    half_sh = rng.uniform(*SHOULDER_HALF_WIDTH_MM) * scale
    side = 1.0 if hand.is_left else -1.0  # the person faces the camera: their right is the camera's left
    chest_front = (PERSON_ELLIPSOIDS_MM["chest"][1][2] - PERSON_ELLIPSOIDS_MM["chest"][0][2]) * scale * depth_scale
    shoulder = np.array([side * half_sh, 20.0 * scale, 0.0])
    upper_mm = rng.uniform(*UPPER_ARM_MM) * scale
    fore_mm = hand.forearm_mm
    mode = pick(rng, ARM_MODES)
    hint = np.array([side * rng.uniform(0.3, 1.0), 1.0, rng.uniform(-0.2, 0.6)])
    if mode == "front":
        target = np.array([side * half_sh * rng.uniform(-0.4, 1.3), rng.uniform(-300.0, 300.0) * scale,
                           -chest_front - rng.uniform(50.0, 400.0)])
        elbow, wrist = _elbow_ik(shoulder, target, upper_mm, fore_mm, hint)
    elif mode == "beside":
        target = np.array([side * (half_sh + rng.uniform(80.0, 280.0) * scale), rng.uniform(-380.0, 120.0) * scale,
                           rng.uniform(-160.0, 100.0) * scale])
        elbow, wrist = _elbow_ik(shoulder, target, upper_mm, fore_mm, hint)
    else:  # elbow_forward: the upper arm towards the camera, the forearm up and back
        elbow = shoulder + unit(np.array([side * rng.uniform(0.0, 0.6), rng.uniform(-0.3, 0.6), -1.0])) * upper_mm
        wrist = elbow + unit(np.array([side * rng.uniform(-0.4, 0.4), -rng.uniform(0.6, 1.0),
                                        rng.uniform(0.05, 0.9)])) * fore_mm
    towards_camera = np.array([0.0, 0.0, -1.0])
    palm_to = palm_target(rng, towards_camera, np.array([side, 0.0, 0.0]), PALM_FACING_THIRD)
    rot = orient_hand(hand.forearm_dir, unit(elbow - wrist), palm_to, 30.0, rng)

    person = SolidsBuilder()
    joints_p = place_hand(person, hand, rot, wrist)
    _person(person, scale, half_sh, depth_scale, hm.rot_x(rng.normal(0.0, 10.0)) @ hm.rot_z(rng.normal(0.0, 8.0)))
    r_sh, r_el = UPPER_ARM_RADIUS_MM[0] * scale, UPPER_ARM_RADIUS_MM[1] * scale
    person.cone(shoulder, r_sh, elbow, r_el, PART_DISTRACTOR)
    # The other arm: hanging with a mitten, or raised with a full hand (v3: engine v3's second hand).
    other = shoulder * np.array([-1.0, 1.0, 1.0])
    o_upper = rng.uniform(*UPPER_ARM_MM) * scale
    placement = ""
    if rng.random() >= OTHER_ARM_RAISED_PROB or second is not None:  # v3: always the mitten's draws
        o_elbow = other + unit(np.array([-side * rng.uniform(0.05, 0.3), 1.0, rng.uniform(-0.3, 0.2)])) * o_upper
        o_wrist = o_elbow + unit(np.array([-side * rng.uniform(-0.2, 0.3), rng.uniform(0.2, 1.0),
                                            -rng.uniform(0.0, 1.0)])) * fore_mm
        arm = SolidsBuilder()
        _mitten(arm, o_wrist, o_elbow, scale, rng)
        arm.cone(o_elbow, r_el * 0.7, o_wrist, r_el * 0.5, PART_DISTRACTOR)
        if second is not None and second.present:  # engine v3: the full left hand instead, from its own stream
            surface = Surface(*hand_surface(joints_p, elbow, hand.shape.forearm_radius_mm * 1.2))
            placed, o_elbow = other_arm(second.rng, hand.shape, hands, side, other, o_upper, fore_mm, scale,
                                        half_sh, chest_front, wrist, surface, _elbow_ik, PALM_FACING_THIRD)
            arm, placement = SolidsBuilder(), placed.placement
            arm.extend(placed.solids)
        person.extend(arm.build())
    else:
        o_target = np.array([-side * half_sh * rng.uniform(-0.3, 1.6), rng.uniform(-300.0, 350.0) * scale,
                             -chest_front - rng.uniform(20.0, 350.0)])
        o_elbow, o_wrist = _elbow_ik(other, o_target, o_upper, fore_mm,
                                     np.array([-side * rng.uniform(0.3, 1.0), 1.0, rng.uniform(-0.2, 0.6)]))
        o_pose, _ = sample_pose(rng, None, hands.poses)
        _, o_volume, o_forearm = hand_volume(hand.shape, o_pose, not hand.is_left, fore_mm)
        o_rot = orient_hand(o_forearm, unit(o_elbow - o_wrist), unit(rng.normal(size=3)), 0.0, rng)
        person.extend(Solids.of(o_volume.transformed(o_rot, o_wrist)).relabeled(PART_OTHER_HAND))
    person.cone(other, r_sh, o_elbow, r_el, PART_DISTRACTOR)

    # The camera: the palm at a sampled pixel and depth; the person turned by yaw; the camera's height
    # above the floor within 0.8-2.0 m (a few tries, then the last one).
    palm_p = 0.5 * (joints_p[0] + joints_p[9])
    hi = max(min(THIRD_PERSON_DEPTH_MM[1], far_mm - FAR_MARGIN_MM), THIRD_PERSON_DEPTH_MM[0] + 1.0)
    lo = THIRD_PERSON_DEPTH_MM[0] + (200.0 if mode == "elbow_forward" else 0.0)
    lo = min(lo, hi - 1.0)
    depth = lo * (hi / lo) ** rng.random()  # log-uniform: nearer hands are the more common
    floor_y = FLOOR_BELOW_SHOULDERS_MM * scale
    for _ in range(8):
        yaw = float(np.clip(rng.normal(0.0, 25.0), -60.0, 60.0))
        level = hm.rot_z(rng.normal(0.0, 4.0)) @ hm.rot_x(rng.uniform(-10.0, 20.0))  # level frame -> camera
        to_cam = level @ hm.rot_y(yaw)
        palm_cam = backproject(k.cx + rng.uniform(-0.3, 0.3) * width, k.cy + rng.uniform(-0.3, 0.3) * height,
                                depth, k)
        trans = palm_cam - to_cam @ palm_p
        camera_height = floor_y - float((-level.T @ trans)[1])
        if 800.0 <= camera_height <= 2000.0:
            break
    b = SolidsBuilder()
    b.extend(person.build().transformed(to_cam, trans))
    _room(b, rng, level, trans, floor_y)
    return SceneLayout(b.build(), joints_p @ to_cam.T + trans, hand.is_left, hand.family, hand.shape.length_mm,
                       placement)


def _room(b: SolidsBuilder, rng: np.random.Generator, level: np.ndarray, trans: np.ndarray, floor_y: float) -> None:
    """Floor, back wall, optional side wall and ceiling, furniture boxes; built in the level frame
    (origin between the person's shoulders, y down, the camera at ``-level.T @ trans``) and moved into
    the camera frame."""
    camera = -level.T @ trans
    room = SolidsBuilder()
    up = np.array([0.0, -1.0, 0.0])
    room.plane((0.0, floor_y, 0.0), up, PART_DISTRACTOR)
    wall_z = max(camera[2] + rng.uniform(1500.0, 4000.0), 400.0)  # 1.5-4 m from the camera, behind the person
    wall_normal = hm.rot_y(rng.uniform(-30.0, 30.0)) @ np.array([0.0, 0.0, 1.0])
    room.plane((0.0, 0.0, wall_z), wall_normal, PART_DISTRACTOR)
    if rng.random() < 0.35:  # beyond both the person and the camera on its side
        side = random_sign(rng)
        room.plane((side * (max(side * camera[0], 0.0) + rng.uniform(1200.0, 2500.0)), 0.0, 0.0), (1.0, 0.0, 0.0),
                   PART_DISTRACTOR)
    if rng.random() < 0.3:
        room.plane((0.0, floor_y - rng.uniform(2400.0, 2800.0), 0.0), up, PART_DISTRACTOR)
    for _ in range(int(rng.integers(0, 4))):
        size = np.array([rng.uniform(300.0, 1000.0), rng.uniform(400.0, 1100.0), rng.uniform(300.0, 800.0)])
        x = rng.uniform(450.0, 2000.0) * random_sign(rng)
        z = rng.uniform(-100.0, max(wall_z - 0.5 * size[2], 0.0))
        if abs(x) < 450.0 + 0.5 * size[0] and z < 400.0:
            z = 400.0 + 0.5 * size[2]
        room.box((x, floor_y - 0.5 * size[1], z), hm.rot_y(rng.uniform(-40.0, 40.0)), 0.5 * size, PART_DISTRACTOR)
    b.extend(room.build().transformed(level, trans))
