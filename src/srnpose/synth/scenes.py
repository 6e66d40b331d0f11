"""Scene families: what surrounds the hand and where the camera is, each deterministic per ``rng``.

A builder returns a :class:`SceneLayout` (solids and joints in the camera frame, mm). All families
except ``close_range`` are built for a standard camera (x right, y down, z forward, positive focal
lengths); ``render_frame`` then reflects the scene for a camera with ``fx < 0`` or ``fy < 0`` so the
image keeps its layout (people upright, a right hand looks like a right hand).

| family       | palm depth (mm)                       | viewpoint                                  | around the hand                                   |
|--------------|---------------------------------------|--------------------------------------------|---------------------------------------------------|
| close_range  | 250-700 uniform                       | hand held towards the camera (the original | 35 % torso blob r 120-220 60-300 mm behind;       |
|              |                                       | scene: forearm stub, no arm)               | 50 % wall tilted <= 25 deg 80-450 mm behind       |
| third_person | 500-2400 log-uniform, at most the     | a person, yaw N(0, 25) within +-60 deg;    | the person; floor; back wall 1.5-4 m from the     |
|              | sensor's far limit - 150              | camera 0.8-2.0 m above the floor, pitch    | camera, >= 400 mm behind the person, turned       |
|              | (+200 mm for ``elbow_forward``)       | -10..20 deg down, roll N(0, 4)             | <= 30 deg; 35 % side wall 1.2-2.5 m beside the    |
|              |                                       |                                            | person or camera; 30 % ceiling 2.4-2.8 m up;      |
|              |                                       |                                            | 0-3 boxes 0.3-1.0 x 0.4-1.1 x 0.3-0.8 m on floor  |
| first_person | 250-650 uniform                       | camera looks down 25-65 deg, roll N(0, 8); | table 20-450 mm below the hand's lowest point     |
|              |                                       | forearm from the image border (<= 16 draws | (far edge 200-900 mm beyond the palm, sides       |
|              |                                       | for an elbow outside the image), upper arm | 300-1000 mm); floor 680-760 mm below it; 0-3      |
|              |                                       | to a shoulder below/beside the camera      | objects on the table; 30 % a held object          |
| hand_object  | 300-800 uniform                       | as close_range, full forearm; 80 % of      | the held object; 40 % torso blob; 50 % wall       |
|              |                                       | views keep the object behind the palm      | 100-500 mm behind the hand                        |

third_person: the person (torso, neck, head, shoulders, upper and lower arms as round cones and
ellipsoids, hips, legs; see ``PERSON_*``) is scaled by the hand's length x 0.94-1.06. The tracked
forearm ends at the person's elbow (two-bone IK from the shoulder), in one of ``ARM_MODES``:
``front`` (wrist 50-400 mm in front of the chest), ``beside`` (raised beside the body, wrist
-160..+100 mm from the shoulders' plane: the torso is often nearer than the hand) or
``elbow_forward`` (upper arm towards the camera: the forearm is nearer than the hand). The palm faces
the camera 55 %, away 30 %, sideways 15 % (roll noise N(0, 30)). The other arm hangs with a mitten
hand (65 %) or is raised with a full hand (35 %, ``PART_OTHER_HAND``); engine v3 draws the full hand
as its second hand instead (``synth.second_hand``, which also adds one to first_person and hand_object).

first_person: the back of the hand faces the camera 55 %, a side view 30 %, the palm 15 % (roll
noise N(0, 25)).

hand_object: a grasp pose (``GRASP_FAMILIES``: ``prior`` when the frame's pose families have it, pinch, random,
fist) holds an object fitted to the grasp: centred between the thumb tip and the mean of the index
and middle tips, its half thickness half that aperture less the tip radius, kept off the palm, 8-45
mm; ``OBJECT_KINDS``: sphere, box, cylinder, bottle (cylinder + shoulder + neck), mug (cylinder + a
C-shaped handle), 60-260 mm long. Engine v3 (``HandDraw.close_grasps``) then closes the long fingers
towards a fist until they touch the object (``synth.grasp``); v1 and v2 keep the drawn pose.

Part ids (``SynthFrame.part``): hand parts >= 0 (hand_model), ``PART_DISTRACTOR`` (-2) body, walls,
floor, table and furniture, ``PART_OBJECT`` (-3) held objects and objects on the table,
``PART_OTHER_HAND`` (-4) the person's other hand; -1 nothing. A joint whose pixel shows an object or
anything else not its own part is simply not visible (``scene.visible_joints``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from srnpose.geometry import Intrinsics
from srnpose.hand import kinematics as hm
from srnpose.synth.grasp import close_fingers
from srnpose.synth.poses import HANDS_V1, HandDraw, sample_pose
from srnpose.synth.solids import Solids, SolidsBuilder

PART_DISTRACTOR = -2  # body, walls, floor, table, furniture
PART_OBJECT = -3  # held objects, objects on the table
PART_OTHER_HAND = -4  # the person's other hand

# Default mix (the lead tunes it by measurement); keys are the valid ``scene`` names.
SCENE_FAMILIES: dict[str, float] = {"third_person": 0.4, "first_person": 0.15, "hand_object": 0.2,
                                    "close_range": 0.25}

DISTANCE_RANGE_MM = (250.0, 700.0)  # close_range palm centre depth
THIRD_PERSON_DEPTH_MM = (500.0, 2400.0)  # palm depth, capped at the sensor's far limit - FAR_MARGIN_MM
FIRST_PERSON_DEPTH_MM = (250.0, 650.0)
HAND_OBJECT_DEPTH_MM = (300.0, 800.0)
FAR_MARGIN_MM = 150.0  # the hand stays this much inside the sensor's range
GRASP_FAMILIES: dict[str, float] = {"prior": 0.5, "pinch": 0.25, "random": 0.15, "fist": 0.1}
OBJECT_IN_FRONT_PROB = 0.2  # hand_object views that may show the object between camera and hand
MAX_GRASP_RADIUS_MM = 45.0  # held objects: 8-45 mm half thickness
OBJECT_KINDS: dict[str, float] = {"sphere": 0.2, "box": 0.3, "cylinder": 0.2, "bottle": 0.15, "mug": 0.15}
TABLE_OBJECT_KINDS: dict[str, float] = {"box": 0.4, "cylinder": 0.35, "sphere": 0.25}  # first_person
PALM_FACING_FIRST: dict[str, float] = {"back": 0.55, "side": 0.3, "palm": 0.15}
HELD_OBJECT_PROB = 0.3  # first_person
FOREARM_NOMINAL_MM = 250.0  # wrist to elbow, times the shape's y scale
FOREARM_STUB_MM = 120.0  # where hand_model's forearm primitive ends, times the shape's y scale



@dataclass(frozen=True)
class SceneLayout:
    """A built scene, camera frame (mm): everything ``render_frame`` casts, and the hand's labels."""

    solids: Solids
    joints_xyz: np.ndarray  # (21, 3) float64
    is_left: bool
    family: str  # pose family
    hand_length_mm: float
    second_hand: str = ""  # engine v3's unlabelled left hand: its placement (synth.second_hand), "" = none


@dataclass(frozen=True)
class Hand:
    """A sampled hand in its own frame (mirrored for a left hand), with its forearm's axis."""

    shape: hm.HandShape
    pose: hm.HandPose
    family: str
    is_left: bool
    joints: np.ndarray  # (21, 3) hand frame
    volume: hm.Volume  # hand frame, forearm included
    forearm_dir: np.ndarray  # (3,) unit, wrist -> elbow, hand frame
    forearm_mm: float  # wrist -> the end of the forearm's volume (the elbow unless a stub)


def hand_volume(shape: hm.HandShape, pose: hm.HandPose, is_left: bool,
                forearm_mm: float | None = None) -> tuple[np.ndarray, hm.Volume, np.ndarray]:
    """Joints (21, 3), volume and forearm direction (3,) of a hand in its frame (mirrored if left).

    hand_model's forearm is a stub ending ``FOREARM_STUB_MM`` (x the shape's y scale) from the wrist;
    ``forearm_mm`` extends it to the elbow (two more ``PART_FOREARM`` round cones)."""
    joints = hm.forward_kinematics(shape, pose)
    volume = hm.primitives(shape, pose, joints)
    wrist = hm.rot_x(pose.wrist_deg[0]) @ hm.rot_z(-pose.wrist_deg[1])
    forearm = wrist @ np.array([0.0, -1.0, 0.0])
    if forearm_mm is not None:
        sx, sy = float(shape.palm_scale[0]), float(shape.palm_scale[1])
        rf = shape.forearm_radius_mm
        ext = [(*(wrist @ [side * 11.0 * sx, -FOREARM_STUB_MM * sy, 0.0]), rf * 1.22,
                *(wrist @ [side * 9.0 * sx, -forearm_mm, 0.0]), rf * 1.18) for side in (-1.0, 1.0)]
        volume = hm.Volume(np.concatenate([volume.cones, np.asarray(ext)]),
                           np.concatenate([volume.cone_parts, [hm.PART_FOREARM] * 2]).astype(np.int16),
                           volume.ellipsoids, volume.ellipsoid_parts)
    if is_left:
        joints, volume = hm.mirror_x(joints), volume.transformed(hm.MIRROR_X, np.zeros(3))
        forearm = hm.MIRROR_X @ forearm
    return joints, volume, forearm


def sample_hand(rng: np.random.Generator, family: str | None = None, full_forearm: bool = True,
                hands: HandDraw = HANDS_V1) -> Hand:
    """Shape, pose (``family``, or drawn from ``hands.poses``), side: the draws of the close-range
    scene, in its order (``hands``: pose families and palm widths, v1's by default).
    ``full_forearm``: the forearm reaches the elbow (else hand_model's stub, as close_range has it)."""
    shape = hm.sample_shape(rng, hands.palm_width)
    pose, family = sample_pose(rng, family, hands.poses)
    is_left = bool(rng.random() < hands.left_share)
    forearm_mm = FOREARM_NOMINAL_MM * float(shape.palm_scale[1])
    joints, volume, forearm = hand_volume(shape, pose, is_left, forearm_mm if full_forearm else None)
    return Hand(shape, pose, family, is_left, joints, volume, forearm,
                forearm_mm if full_forearm else FOREARM_STUB_MM * float(shape.palm_scale[1]))


def closed_on(hand: Hand, held: Solids) -> Hand:
    """``hand`` with its long fingers closed on ``held`` (hand frame; ``grasp.close_fingers``)."""
    pose = close_fingers(hand.shape, hand.pose, hand.is_left, held)
    joints, volume, forearm = hand_volume(hand.shape, pose, hand.is_left, hand.forearm_mm)
    return dataclasses.replace(hand, pose=pose, joints=joints, volume=volume, forearm_dir=forearm)


# --------------------------------------------------------------------------- small geometry

def unit(v: np.ndarray) -> np.ndarray:
    return v / np.sqrt(v @ v)


def cross(a, b) -> np.ndarray:
    """Cross product of two 3-vectors (np.cross is ~10x slower on single vectors)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def axis_rotation(axis: np.ndarray, rad: float) -> np.ndarray:
    """Rotation (3, 3) by ``rad`` about the unit ``axis`` (Rodrigues)."""
    x, y, z = axis
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + np.sin(rad) * k + (1.0 - np.cos(rad)) * (k @ k)


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation (3, 3) taking unit ``a`` to unit ``b``."""
    axis = cross(a, b)
    s, c = np.linalg.norm(axis), float(a @ b)
    if s < 1e-9:
        if c > 0.0:
            return np.eye(3)
        other = np.array([1.0, 0.0, 0.0]) if abs(a[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        return axis_rotation(unit(cross(a, other)), np.pi)
    return axis_rotation(axis / s, float(np.arctan2(s, c)))


def orient_hand(forearm_dir: np.ndarray, forearm_to: np.ndarray, palm_to: np.ndarray, roll_sd_deg: float,
                rng: np.random.Generator) -> np.ndarray:
    """Hand-to-camera rotation: the forearm along ``forearm_to``, then rolled about it so the palm
    normal (+z of the hand frame) faces ``palm_to`` as well as it can, plus N(0, roll_sd) degrees."""
    r0 = rotation_between(forearm_dir, forearm_to)
    normal = r0 @ np.array([0.0, 0.0, 1.0])
    p0 = normal - forearm_to * (normal @ forearm_to)
    p1 = palm_to - forearm_to * (palm_to @ forearm_to)
    roll = float(np.arctan2(forearm_to @ cross(p0, p1), p0 @ p1)) if np.linalg.norm(p1) > 1e-6 else 0.0
    roll += np.deg2rad(rng.normal(0.0, roll_sd_deg))
    return axis_rotation(forearm_to, roll) @ r0


def pick(rng: np.random.Generator, table: dict[str, float]) -> str:
    """A key of ``table`` drawn with probability proportional to its value (one uniform draw)."""
    draw = rng.random() * sum(table.values())
    for name, weight in table.items():
        draw -= weight
        if draw < 0.0:
            return name
    return name


def random_sign(rng: np.random.Generator) -> float:
    return 1.0 if rng.random() < 0.5 else -1.0


def backproject(u: float, v: float, depth: float, k: Intrinsics) -> np.ndarray:
    return np.array([(u - k.cx) * depth / k.fx, (v - k.cy) * depth / k.fy, depth])


def place_hand(b: SolidsBuilder, hand: Hand, rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Add the hand's volume moved by ``rot, trans``; returns its joints (21, 3) in that frame."""
    b.extend(Solids.of(hand.volume.transformed(rot, trans)))
    return hand.joints @ rot.T + trans


def palm_target(rng: np.random.Generator, towards_camera: np.ndarray, sideways: np.ndarray,
                 table: dict[str, float]) -> np.ndarray:
    """Where the palm should face: ``palm`` (towards the camera), ``back`` (away) or ``side``."""
    kind = pick(rng, table)
    if kind == "palm":
        return towards_camera
    if kind == "back":
        return -towards_camera
    return sideways if rng.random() < 0.5 else -sideways


def _wall_at(b: SolidsBuilder, rng: np.random.Generator, k: Intrinsics, width: int, height: int,
             nearest_mm: float, tilt_deg: float = 25.0) -> None:
    """A plane tilted up to ``tilt_deg`` whose nearest point in the image lies at ``nearest_mm``."""
    normal = hm.rot_x(rng.uniform(-tilt_deg, tilt_deg)) @ hm.rot_y(rng.uniform(-tilt_deg, tilt_deg)) \
        @ np.array([0.0, 0.0, 1.0])
    corners = np.array([[(u - k.cx) / k.fx, (v - k.cy) / k.fy, 1.0] for u in (0, width - 1) for v in (0, height - 1)])
    dist = nearest_mm * float((corners @ normal).max())  # depth d / (n . q) is least at a corner
    b.plane(normal * dist, normal, PART_DISTRACTOR)


def _torso_blob(b: SolidsBuilder, rng: np.random.Generator, palm: np.ndarray, behind_mm: float) -> None:
    """A torso / head blob (round cone) ``behind_mm`` + its radius behind the palm's line of sight."""
    radius = rng.uniform(120.0, 220.0)
    centre = palm * (palm[2] + behind_mm + radius) / palm[2]
    centre[:2] += rng.uniform(-200.0, 200.0, size=2)
    top = centre + np.array([0.0, -rng.uniform(80.0, 200.0), 0.0])
    b.cone(centre, radius, top, radius * 0.9, PART_DISTRACTOR)


# --------------------------------------------------------------------------- objects

def add_object(b: SolidsBuilder, rng: np.random.Generator, kind: str, centre: np.ndarray, axis: np.ndarray,
               across: np.ndarray, radius: float, length: float, part: int = PART_OBJECT) -> None:
    """A primitive object: ``axis`` its long axis (unit), ``across`` (unit, perpendicular to ``axis``) the
    direction of ``radius`` (the half thickness the grasp holds), ``length`` along ``axis``."""
    third = cross(axis, across)
    if kind == "sphere":
        b.ellipsoid(centre, np.eye(3), np.full(3, radius), part)
        return
    if kind == "box":
        b.box(centre, np.stack([across, axis, third], axis=1),
              (radius, 0.5 * length, radius * rng.uniform(0.8, 2.5)), part)
        return
    a, e = centre - axis * (0.5 * length), centre + axis * (0.5 * length)
    b.cylinder(a, e, radius, part)
    if kind == "bottle":  # shoulder and neck
        neck_r = radius * rng.uniform(0.3, 0.45)
        shoulder = e + axis * (0.25 * length)
        b.cone(e, radius * 0.98, shoulder, neck_r, part)
        b.cylinder(shoulder, shoulder + axis * (0.3 * length), neck_r, part)
    elif kind == "mug":  # a C-shaped handle on one side
        side = third if rng.random() < 0.5 else -third
        r_h = max(radius * 0.13, 4.0)
        top, bottom = centre + axis * (0.3 * length), centre - axis * (0.3 * length)
        out_top, out_bottom = top + side * (radius * 1.55), bottom + side * (radius * 1.55)
        b.cone(top + side * (radius * 0.9), r_h, out_top, r_h, part)
        b.cone(out_top, r_h, out_bottom, r_h, part)
        b.cone(out_bottom, r_h, bottom + side * (radius * 0.9), r_h, part)


def grasp_object(b: SolidsBuilder, rng: np.random.Generator, hand: Hand) -> tuple[np.ndarray, float]:
    """An object held in the hand's grasp (hand frame): centred between the thumb tip and the mean of
    the index and middle tips, its radius half that aperture less the tip radius, kept off the palm.
    Returns the grasp centre (3,), hand frame, and the object's reach from it (mm)."""
    j = hand.joints
    thumb, tip = j[4], 0.5 * (j[8] + j[12])
    gap = float(np.linalg.norm(tip - thumb))
    centre = 0.5 * (thumb + tip)
    grip = (tip - thumb) / max(gap, 1e-6)
    tip_r = float(hand.shape.radius_mm[1:3, 3].mean())
    palm_half_mm = 14.0 * float(hand.shape.palm_scale[2])
    radius = min(0.5 * gap - 0.6 * tip_r, centre[2] - palm_half_mm)  # +z is palmar
    radius = float(np.clip(radius, 8.0, MAX_GRASP_RADIUS_MM))
    # The long axis: across the palm (a power grasp) or along the palm normal, perpendicular to the grip.
    ref = np.array([1.0, 0.0, 0.0]) if rng.random() < 0.6 else np.array([0.0, 0.0, 1.0])
    axis = ref - grip * (ref @ grip)
    if np.linalg.norm(axis) < 1e-3:
        axis = np.array([0.0, 1.0, 0.0]) - grip * grip[1]
    axis = unit(axis)
    kind = pick(rng, OBJECT_KINDS)
    length = float(np.clip(radius * rng.uniform(2.2, 5.0), 60.0, 260.0))
    shift = axis * (length * rng.uniform(-0.3, 0.3)) if kind != "sphere" else 0.0
    add_object(b, rng, kind, centre + shift, axis, grip, radius, length)
    return centre, float(np.hypot(0.85 * length, 2.5 * radius))  # bottle necks and mug handles included


# --------------------------------------------------------------------------- close_range

def sample_rotation(rng: np.random.Generator, up_sign: float, wrist_deg: np.ndarray) -> np.ndarray:
    """Hand-to-camera rotation (3, 3): mostly palm or back towards the camera, fingers up-ish,
    with wide spread; the forearm does not point at the camera.

    In real captures the hand is held towards the camera, so the forearm mostly recedes from it:
    70 % of views ask the forearm to point at least ~15 degrees away from the image plane."""
    # Rest view: fingers up in the image, palm facing the camera, thumb on the image's right.
    r0 = np.array([[-up_sign, 0.0, 0.0], [0.0, up_sign, 0.0], [0.0, 0.0, -1.0]])
    forearm_hand = hm.rot_x(wrist_deg[0]) @ hm.rot_z(-wrist_deg[1]) @ np.array([0.0, -1.0, 0.0])
    min_forearm_z = 0.4 if rng.random() < 0.7 else -0.3
    for _ in range(24):
        pick = rng.random()
        yaw = rng.normal(0.0, 35.0) if pick < 0.45 else rng.normal(180.0, 35.0) if pick < 0.85 \
            else rng.uniform(-180.0, 180.0)
        pitch = float(np.clip(rng.normal(0.0, 25.0), -65.0, 65.0))
        roll = rng.normal(0.0, 35.0) if rng.random() < 0.7 else rng.uniform(-180.0, 180.0)
        rot = hm.rot_z(roll) @ hm.rot_x(pitch) @ r0 @ hm.rot_y(yaw)
        if (rot @ forearm_hand)[2] > min_forearm_z:
            break
    return rot


def close_range(rng: np.random.Generator, k: Intrinsics, width: int, height: int, far_mm: float,
                hands: HandDraw = HANDS_V1,
                distractors: bool = True) -> SceneLayout:
    """The hand and forearm held towards the camera, an optional blob and wall (the engine's original
    scene, same draws in the same order, none for the distractors when there are none; handles
    ``fx < 0`` / ``fy < 0`` itself)."""
    hand = sample_hand(rng, full_forearm=False, hands=hands)
    up_sign = -1.0 if k.fy > 0 else 1.0
    rot = sample_rotation(rng, up_sign, hand.pose.wrist_deg)
    if k.fx < 0:  # a mirrored camera: keep the fingers' layout as seen
        rot = np.diag([-1.0, 1.0, 1.0]) @ rot @ np.diag([-1.0, 1.0, 1.0])
    palm_h = 0.5 * (hand.joints[0] + hand.joints[9])
    depth = rng.uniform(*DISTANCE_RANGE_MM)
    u = k.cx + rng.uniform(-0.28, 0.28) * width
    v = k.cy + rng.uniform(-0.25, 0.25) * height
    palm_cam = backproject(u, v, depth, k)
    trans = palm_cam - rot @ palm_h
    volume = hand.volume.transformed(rot, trans)
    hand_far = volume.far_mm()
    b = SolidsBuilder()
    b.extend(Solids.of(volume))
    if not distractors:
        return SceneLayout(b.build(), hand.joints @ rot.T + trans, hand.is_left, hand.family, hand.shape.length_mm)
    if rng.random() < 0.35:  # a torso / head blob well behind the hand
        radius = rng.uniform(120.0, 220.0)
        centre = palm_cam * (hand_far + radius + rng.uniform(60.0, 300.0)) / depth
        centre[:2] += rng.uniform(-200.0, 200.0, size=2)
        top = centre + [0.0, rng.uniform(80.0, 200.0) * -up_sign, 0.0]
        b.cone(centre, radius, top, radius * 0.9, PART_DISTRACTOR)
    if rng.random() < 0.5:  # a wall, tilted
        normal = hm.rot_x(rng.uniform(-25, 25)) @ hm.rot_y(rng.uniform(-25, 25)) @ np.array([0.0, 0.0, -1.0])
        nearest = hand_far + rng.uniform(80.0, 450.0)
        corners = np.array([[(uu - k.cx) / k.fx, (vv - k.cy) / k.fy, 1.0]
                            for uu in (0, width - 1) for vv in (0, height - 1)])
        dist = nearest * float((corners @ -normal).max())
        b.plane(-normal * dist, normal, PART_DISTRACTOR)
    return SceneLayout(b.build(), hand.joints @ rot.T + trans, hand.is_left, hand.family, hand.shape.length_mm)


# --------------------------------------------------------------------------- hand_object

def hand_object(rng: np.random.Generator, k: Intrinsics, width: int, height: int, far_mm: float,
               hands: HandDraw = HANDS_V1, second: Any = None) -> SceneLayout:
    """A grasp pose holding a fitted object, viewed like close_range, with a blob and a wall behind;
    ``second``: engine v3's second hand (a ``synth.second_hand.SecondHand``; None or not present: none)."""
    grasps = {name: w for name, w in GRASP_FAMILIES.items() if name in hands.poses}
    hand = sample_hand(rng, pick(rng, grasps), hands=hands)
    held = SolidsBuilder()
    grip_h, _ = grasp_object(held, rng, hand)
    if hands.close_grasps:  # engine v3: the long fingers close on the object (contact), no draws
        hand = closed_on(hand, held.build())
    palm_h = 0.5 * (hand.joints[0] + hand.joints[9])
    object_in_front = rng.random() < OBJECT_IN_FRONT_PROB
    for _ in range(8):  # else the view keeps the object behind the palm's centre
        rot = sample_rotation(rng, -1.0, hand.pose.wrist_deg)
        if object_in_front or (rot @ (grip_h - palm_h))[2] > 0.0:
            break
    depth = rng.uniform(*HAND_OBJECT_DEPTH_MM)
    palm_cam = backproject(k.cx + rng.uniform(-0.26, 0.26) * width, k.cy + rng.uniform(-0.24, 0.24) * height,
                            depth, k)
    trans = palm_cam - rot @ palm_h
    b = SolidsBuilder()
    joints = place_hand(b, hand, rot, trans)
    held_cam = held.build().transformed(rot, trans)
    b.extend(held_cam)
    far = float(np.max(joints[:, 2])) + 60.0
    placement = ""
    if second is not None and second.present:  # its own stream: the scene's draws stay as they were
        elbow = trans + rot @ (hand.forearm_dir * hand.forearm_mm)
        eye = np.eye(3)
        placed = second.beside_hand("hand_object", joints, elbow, hand.shape, hand.forearm_mm, hands, held_cam,
                                    palm_cam, (-eye[1], eye[2], eye[0]), k, width, height)
        b.extend(placed.solids)
        far, placement = max(far, float(np.max(placed.joints[:, 2])) + 60.0), placed.placement
    if rng.random() < 0.4:
        _torso_blob(b, rng, palm_cam, far - depth + rng.uniform(60.0, 300.0))
    if rng.random() < 0.5:
        _wall_at(b, rng, k, width, height, far + rng.uniform(100.0, 500.0))
    return SceneLayout(b.build(), joints, hand.is_left, hand.family, hand.shape.length_mm, placement)


# --------------------------------------------------------------------------- first_person

def first_person(rng: np.random.Generator, k: Intrinsics, width: int, height: int, far_mm: float,
                hands: HandDraw = HANDS_V1, second: Any = None) -> SceneLayout:
    """An egocentric view (see the module table): forearm from the border, a table below;
    ``second``: engine v3's left hand beside the right one (a ``synth.second_hand.SecondHand``, or None)."""
    hand = sample_hand(rng, hands=hands)
    side = -1.0 if hand.is_left else 1.0  # a right hand comes in from the bottom right
    pitch = rng.uniform(25.0, 65.0)
    level = hm.rot_z(rng.normal(0.0, 8.0)) @ hm.rot_x(pitch)  # level frame (y down) -> camera
    up = level @ np.array([0.0, -1.0, 0.0])
    forward = level @ np.array([0.0, 0.0, 1.0])  # horizontal, away from the viewer
    right = level @ np.array([1.0, 0.0, 0.0])
    depth = rng.uniform(*FIRST_PERSON_DEPTH_MM)
    palm_cam = backproject(k.cx + rng.uniform(-0.25, 0.25) * width, k.cy + rng.uniform(-0.22, 0.2) * height,
                            depth, k)
    ray = unit(palm_cam)
    palm_to = palm_target(rng, -ray, unit(cross(up, ray)), PALM_FACING_FIRST)
    palm_h = 0.5 * (hand.joints[0] + hand.joints[9])
    for _ in range(16):  # the elbow outside the image (the forearm crosses the border)
        forearm_to = unit(right * (side * rng.uniform(-0.1, 0.8)) - up * rng.uniform(0.2, 0.9)
                           - forward * rng.uniform(0.4, 1.2))
        rot = orient_hand(hand.forearm_dir, forearm_to, palm_to, 25.0, rng)
        trans = palm_cam - rot @ palm_h
        elbow = trans + forearm_to * hand.forearm_mm
        if elbow[2] < 60.0:
            break
        u = k.cx + k.fx * elbow[0] / elbow[2]
        v = k.cy + k.fy * elbow[1] / elbow[2]
        if not (0.0 <= u < width and 0.0 <= v < height):
            break
    b = SolidsBuilder()
    joints = place_hand(b, hand, rot, trans)
    # The upper arm to a shoulder beside and below the camera, clipped in front of the camera plane.
    shoulder = -up * rng.uniform(180.0, 280.0) + right * (side * rng.uniform(130.0, 220.0)) \
        - forward * rng.uniform(0.0, 100.0)
    shoulder = elbow + unit(shoulder - elbow) * hand.forearm_mm * 1.2
    r_el, r_sh = 40.0 * hand.shape.palm_scale[1], 48.0 * hand.shape.palm_scale[1]
    if elbow[2] > r_el + 60.0:
        if shoulder[2] < r_sh + 60.0:
            s = (elbow[2] - r_sh - 60.0) / max(elbow[2] - shoulder[2], 1e-6)
            shoulder = elbow + (shoulder - elbow) * s
        b.cone(elbow, r_el, shoulder, r_sh, PART_DISTRACTOR)
    # The table below the lowest point of the hand, its forearm and a held object.
    cones = hand.volume.cones
    lowest = min(float(np.min((cones[:, 0:3] @ rot.T + trans) @ up - cones[:, 3])),
                 float(np.min((cones[:, 4:7] @ rot.T + trans) @ up - cones[:, 7])))
    held_cam = None
    if rng.random() < HELD_OBJECT_PROB:
        held = SolidsBuilder()
        grip_h, reach_mm = grasp_object(held, rng, hand)
        held_cam = held.build().transformed(rot, trans)
        b.extend(held_cam)
        lowest = min(lowest, float((rot @ grip_h + trans) @ up) - reach_mm)
    placed = None
    if second is not None and second.present:  # its own stream: the scene's draws stay as they were
        placed = second.beside_hand("first_person", joints, elbow, hand.shape, hand.forearm_mm, hands, held_cam,
                                    palm_cam, (up, forward, right), k, width, height)
        b.extend(placed.solids)
        second.add_upper_arm(b, hand.shape, hand.forearm_mm, placed.elbow, (up, forward, right))
        cones = placed.solids.cones  # the table below both hands
        lowest = min(lowest, float(np.min(cones[:, 0:3] @ up - cones[:, 3])),
                     float(np.min(cones[:, 4:7] @ up - cones[:, 7])))
    hands_joints = joints if placed is None else np.concatenate([joints, placed.joints])
    top = palm_cam + up * (lowest - palm_cam @ up - rng.uniform(20.0, 450.0))
    top = top + forward * ((palm_cam - top) @ forward)  # below the palm
    reach = rng.uniform(200.0, 900.0)  # the far edge beyond the palm
    sides = rng.uniform(300.0, 1000.0, size=2)
    edges = [(top + forward * reach, forward), (top - right * sides[0], -right), (top + right * sides[1], right)]
    b.plane(top, up, PART_DISTRACTOR, edges=edges)
    b.plane(top - up * rng.uniform(680.0, 760.0), up, PART_DISTRACTOR)
    for _ in range(int(rng.integers(0, 4))):  # objects standing on the table
        kind = pick(rng, TABLE_OBJECT_KINDS)
        radius = rng.uniform(25.0, 60.0) if kind != "box" else rng.uniform(20.0, 100.0)
        tall = rng.uniform(60.0, 250.0) if kind != "sphere" else 2.0 * radius
        spot = top + forward * rng.uniform(-150.0, reach - radius) + right * rng.uniform(radius - sides[0],
                                                                                          sides[1] - radius)
        centre = spot + up * (0.5 * tall)
        if np.min(np.linalg.norm(hands_joints - centre, axis=1)) < radius + 0.5 * tall + 30.0:
            continue  # not into the hands
        across = unit(cross(up, rng.normal(size=3)))
        add_object(b, rng, kind, centre, up, across, radius, tall)
    return SceneLayout(b.build(), joints, hand.is_left, hand.family, hand.shape.length_mm,
                       "" if placed is None else placed.placement)
