"""The ``turned`` scene family (engine v3): a hand turned the ways people turn it, viewed at close range.

The hand and its full forearm are placed with an explicit view from :data:`TURNED_VIEWS`; each view
asks for a forearm direction and a palm direction in the camera frame (x right, y down, z away from
the camera) and :func:`~srnpose.synth.scenes.orient_hand` rolls the hand about its forearm to face the
palm as asked, plus N(0, ``ROLL_SD_DEG``) degrees. Angles in degrees:

==================  =====  ==============================================  ==============================
view                share  forearm (wrist -> elbow)                         palm faces
==================  =====  ==============================================  ==============================
palm_sideways       0.25   down in the image, receding 15..60 from the     left or right (the camera sees
                           image plane, leaning -30..30 sideways           the thumb or little side's
                                                                            edge of the palm)
fingers_to_camera   0.20   away from the camera, 0..35 off the optical     up, down, left or right
                           axis (the fingers point at the camera)
back                0.20   down in the image, receding 15..60, leaning     away from the camera (the
                           -40..40 sideways                                 back of the hand is seen)
from_above          0.20   down in the image, towards the camera 20..55    away (the back, as a camera
                           (the elbow nearer than the hand)                 above the hand sees it)
from_side           0.15   left or right in the image, receding 0..40,     up or down (the hand lies
                           tilted -20..20 up/down                           flat, seen edge on)
==================  =====  ==============================================  ==============================

Palm centre depth ``TURNED_DEPTH_MM`` (300-750 mm uniform; from_above at least the forearm's reach
towards the camera + 120 mm), at most 0.22 x the width / 0.2 x the height from the principal point; up
to ``MAX_PLACEMENTS`` draws of the position keep every joint inside the image. Around the hand, as in
``hand_object``: 40 % a torso blob, 50 % a wall 100-500 mm behind the hand and its forearm.
"""

from __future__ import annotations

import numpy as np

from srnpose.geometry import Intrinsics
from srnpose.synth.poses import HANDS_V1, HandDraw
from srnpose.synth.scenes import (
    SceneLayout,
    _torso_blob,
    _wall_at,
    backproject,
    orient_hand,
    pick,
    place_hand,
    random_sign,
    sample_hand,
    unit,
)
from srnpose.synth.solids import SolidsBuilder

TURNED_VIEWS: dict[str, float] = {"palm_sideways": 0.25, "fingers_to_camera": 0.2, "back": 0.2,
                                  "from_above": 0.2, "from_side": 0.15}
TURNED_DEPTH_MM = (300.0, 750.0)
ROLL_SD_DEG = 15.0
MAX_PLACEMENTS = 8
_RIGHT, _DOWN, _AWAY = np.eye(3)


def _dir(deg_receding: float, deg_lean: float, along: np.ndarray, lean_axis: np.ndarray) -> np.ndarray:
    """A unit direction ``along`` (in the image plane), turned ``deg_receding`` away from the camera
    (negative: towards it) and ``deg_lean`` towards ``lean_axis``."""
    r, t = np.deg2rad(deg_receding), np.deg2rad(deg_lean)
    return unit(along * np.cos(r) * np.cos(t) + lean_axis * np.cos(r) * np.sin(t) + _AWAY * np.sin(r))


def turned_view(rng: np.random.Generator, view: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(forearm direction, palm direction, the forearm's reach towards the camera as a fraction of its
    length) of ``view`` in the camera frame, drawn within the module table's ranges."""
    if view == "palm_sideways":
        forearm = _dir(rng.uniform(15.0, 60.0), rng.uniform(-30.0, 30.0), _DOWN, _RIGHT)
        return forearm, _RIGHT * random_sign(rng), 0.0
    if view == "fingers_to_camera":
        tilt, azimuth = np.deg2rad(rng.uniform(0.0, 35.0)), rng.uniform(0.0, 2.0 * np.pi)
        forearm = unit(_AWAY * np.cos(tilt) + (_RIGHT * np.cos(azimuth) + _DOWN * np.sin(azimuth)) * np.sin(tilt))
        palm = [_RIGHT, -_RIGHT, _DOWN, -_DOWN][int(rng.integers(4))]
        return forearm, palm, 0.0
    if view == "back":
        return _dir(rng.uniform(15.0, 60.0), rng.uniform(-40.0, 40.0), _DOWN, _RIGHT), _AWAY, 0.0
    if view == "from_above":
        towards = rng.uniform(20.0, 55.0)
        forearm = _dir(-towards, rng.uniform(-25.0, 25.0), _DOWN, _RIGHT)
        return forearm, _AWAY, float(np.sin(np.deg2rad(towards)))
    if view == "from_side":
        forearm = _dir(rng.uniform(0.0, 40.0), rng.uniform(-20.0, 20.0), _RIGHT * random_sign(rng), _DOWN)
        return forearm, _DOWN * random_sign(rng), 0.0
    raise ValueError(f"unknown turned view {view!r}; available: {', '.join(TURNED_VIEWS)}")


def turned(rng: np.random.Generator, k: Intrinsics, width: int, height: int, far_mm: float,
           hands: HandDraw = HANDS_V1) -> SceneLayout:
    """A turned hand (see the module table) with its full forearm, a blob and a wall behind."""
    hand = sample_hand(rng, hands=hands)
    view = pick(rng, TURNED_VIEWS)
    forearm_to, palm_to, towards = turned_view(rng, view)
    rot = orient_hand(hand.forearm_dir, forearm_to, palm_to, ROLL_SD_DEG, rng)
    palm_h = 0.5 * (hand.joints[0] + hand.joints[9])
    joints_rot = hand.joints @ rot.T - rot @ palm_h  # joints about the palm centre, camera axes
    nearest = max(TURNED_DEPTH_MM[0], towards * hand.forearm_mm + 120.0)
    for _ in range(MAX_PLACEMENTS):  # keep every joint inside the image
        depth = rng.uniform(nearest, max(nearest, TURNED_DEPTH_MM[1]))
        palm_cam = backproject(k.cx + rng.uniform(-0.22, 0.22) * width, k.cy + rng.uniform(-0.2, 0.2) * height,
                               depth, k)
        xyz = joints_rot + palm_cam
        u = k.cx + k.fx * xyz[:, 0] / xyz[:, 2]
        v = k.cy + k.fy * xyz[:, 1] / xyz[:, 2]
        if (u >= 0).all() and (u <= width - 1).all() and (v >= 0).all() and (v <= height - 1).all():
            break
    trans = palm_cam - rot @ palm_h
    b = SolidsBuilder()
    joints = place_hand(b, hand, rot, trans)
    elbow = trans + rot @ (hand.forearm_dir * hand.forearm_mm)
    far = max(float(np.max(joints[:, 2])), float(elbow[2])) + 60.0  # behind the forearm too
    if rng.random() < 0.4:
        _torso_blob(b, rng, palm_cam, far - depth + rng.uniform(60.0, 300.0))
    if rng.random() < 0.5:
        _wall_at(b, rng, k, width, height, far + rng.uniform(100.0, 500.0))
    return SceneLayout(b.build(), joints, hand.is_left, hand.family, hand.shape.length_mm)
