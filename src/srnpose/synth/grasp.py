"""Fingers that close on a held object (engine v3's ``hand_object`` scenes, ``HandDraw.close_grasps``).

Each long finger's flexion (MCP flex, PIP, DIP) moves from the drawn pose towards a fist
(:data:`CLOSED_DEG`) by the largest fraction t in [0, 1] at which none of its phalanges enters the
object: the finger stops on the object's surface (in contact: at most ~0.5 mm off it), or closes to
the fist where it misses the object. A finger drawn more than :data:`CONTACT_TOL_MM` inside the object
(the object is fitted to the thumb, index and middle tips only) opens instead, towards a straight
finger (:data:`OPENED_DEG`), by the least fraction that takes it out: it rests on the surface too; one
that no opening frees (the object at its knuckle) stays as drawn. Both are found by a scan of
:data:`SCAN_STEPS` steps (a thin object is not passed through), then bisection
(:data:`BISECTION_STEPS`); each phalanx is sampled at :data:`SAMPLES_PER_BONE` points with the finger's
radius there. The thumb is kept (the object was fitted to its tip). The object occludes the fingers
behind it as any solid does.

The object's signed distance (:func:`object_distance_mm`) is exact for cylinders and boxes, and an
approximation for ellipsoids (the scaled radial distance) and round cones (the distance to the axis
less the interpolated radius), close to the surface where contact is decided.
"""

from __future__ import annotations

import numpy as np

from srnpose.hand import kinematics as hm
from srnpose.synth.poses import LIMITS_DEG
from srnpose.synth.solids import Solids

CLOSED_DEG = np.array([90.0, 105.0, 70.0])  # MCP flex, PIP, DIP of the closed finger (within LIMITS_DEG)
OPENED_DEG = np.array([-10.0, 0.0, 0.0])  # ... of the straight finger, for fingers drawn inside the object
SCAN_STEPS = 12  # the closing is scanned in steps of 1/12 (<= 9 deg per joint), then bisected
BISECTION_STEPS = 6  # 1/(12 * 2^6) of the closing: < 0.15 deg per joint
SAMPLES_PER_BONE = 5
CONTACT_TOL_MM = 1.0  # a phalanx this far into the surface still counts as touching


def object_distance_mm(solids: Solids, points: np.ndarray) -> np.ndarray:
    """Signed distance (N,) from ``points`` (N, 3) to the union of ``solids``' cones, ellipsoids,
    cylinders and boxes (negative inside), mm; +inf where there are none."""
    p = np.asarray(points, dtype=np.float64)
    out = np.full(len(p), np.inf)
    for row in solids.cones:  # round cone: axis distance less the interpolated radius
        a, ra, e, re = row[0:3], row[3], row[4:7], row[7]
        d = e - a
        t = np.clip((p - a) @ d / max(d @ d, 1e-9), 0.0, 1.0)
        out = np.minimum(out, np.linalg.norm(p - (a + t[:, None] * d), axis=1) - (ra + (re - ra) * t))
    for row in solids.ellipsoids:
        q = (p - row[0:3]) @ row[3:12].reshape(3, 3) / row[12:15]
        out = np.minimum(out, (np.linalg.norm(q, axis=1) - 1.0) * float(row[12:15].min()))
    for row in solids.cylinders:  # flat-capped
        a, e, r = row[0:3], row[3:6], row[6]
        length = float(np.linalg.norm(e - a))
        axis = (e - a) / max(length, 1e-9)
        t = (p - a) @ axis
        dx = np.linalg.norm((p - a) - t[:, None] * axis, axis=1) - r
        dy = np.abs(t - 0.5 * length) - 0.5 * length
        out = np.minimum(out, np.minimum(np.maximum(dx, dy), 0.0) + np.hypot(np.maximum(dx, 0.0), np.maximum(dy, 0.0)))
    for row in solids.boxes:
        q = np.abs((p - row[0:3]) @ row[3:12].reshape(3, 3)) - row[12:15]
        out = np.minimum(out, np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0))
    return out


def _finger_clearance_mm(shape: hm.HandShape, joints: np.ndarray, held: Solids) -> np.ndarray:
    """(4,) the least (distance to the object - finger radius) over each long finger's phalanges."""
    s = np.linspace(0.0, 1.0, SAMPLES_PER_BONE)[:, None]
    out = np.empty(4)
    for f in range(1, 5):
        chain = joints[1 + 4 * f: 5 + 4 * f]  # (4, 3) base, 2nd, 3rd, tip
        points = np.concatenate([chain[b] + s * (chain[b + 1] - chain[b]) for b in range(3)])
        radii = np.concatenate([shape.radius_mm[f, b] + s[:, 0] * (shape.radius_mm[f, b + 1] - shape.radius_mm[f, b])
                                for b in range(3)])
        out[f - 1] = float(np.min(object_distance_mm(held, points) - radii))
    return out


def _first_clear_step(clearance, sign: float, want_clear: bool) -> np.ndarray:
    """(4,) per finger, the first k of 1..SCAN_STEPS whose fraction ``sign * k / SCAN_STEPS`` is clear
    of the object (``want_clear``) or enters it (not ``want_clear``); SCAN_STEPS + 1 where none is."""
    first = np.full(4, SCAN_STEPS + 1)
    for k in range(SCAN_STEPS, 0, -1):
        hit = (clearance(np.full(4, sign * k / SCAN_STEPS)) > 0.0) == want_clear
        first = np.where(hit, k, first)
    return first


def close_fingers(shape: hm.HandShape, pose: hm.HandPose, is_left: bool, held: Solids) -> hm.HandPose:
    """``pose`` with the long fingers on ``held``'s surface (solids in the hand frame, mirrored as the
    hand is when ``is_left``): see the module docstring. Deterministic, no random draws."""
    start = np.array(pose.chain_deg, dtype=np.float64)
    closed, opened = start.copy(), start.copy()
    closed[1:, 0], closed[1:, 2], closed[1:, 3] = CLOSED_DEG
    opened[1:, 0], opened[1:, 2], opened[1:, 3] = OPENED_DEG
    closed = np.clip(np.maximum(start, closed), LIMITS_DEG[..., 0], LIMITS_DEG[..., 1])  # only ever closing
    opened = np.clip(np.minimum(start, opened), LIMITS_DEG[..., 0], LIMITS_DEG[..., 1])  # only ever opening

    def chain_at(t: np.ndarray) -> np.ndarray:  # t (4,): > 0 towards the fist, < 0 towards the open hand
        chain = start.copy()
        target = np.where(t[:, None] >= 0.0, closed[1:], opened[1:])
        chain[1:] = start[1:] + np.abs(t)[:, None] * (target - start[1:])
        return chain

    def clearance(t: np.ndarray) -> np.ndarray:  # (4,) per long finger
        joints = hm.forward_kinematics(shape, hm.HandPose(chain_at(t), pose.wrist_deg, pose.cup))
        return _finger_clearance_mm(shape, hm.mirror_x(joints) if is_left else joints, held)

    inside = clearance(np.zeros(4)) < -CONTACT_TOL_MM
    enter = _first_clear_step(clearance, 1.0, want_clear=False)  # closing: the first step into the object
    leave = _first_clear_step(clearance, -1.0, want_clear=True)  # opening: the first step out of it
    # Bisect between the last clear and the first blocked fraction: closing fingers low (clear) .. high
    # (blocked); opening fingers low (blocked) .. high (clear), both as fractions along their direction.
    sign = np.where(inside, -1.0, 1.0)
    first = np.where(inside, leave, enter)
    found = first <= SCAN_STEPS
    low = np.where(found, first - 1, 0) / SCAN_STEPS
    high = np.where(found, first, 0) / SCAN_STEPS
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (low + high)
        clear = clearance(sign * mid) > 0.0
        low, high = np.where(clear != inside, mid, low), np.where(clear != inside, high, mid)
    t = np.where(inside, np.where(found, high, 0.0), np.where(found, low, 1.0)) * sign
    return hm.HandPose(chain_at(t), pose.wrist_deg, pose.cup)
