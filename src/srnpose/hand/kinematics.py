"""An articulated hand: anatomical shape parameters, forward kinematics and its volume primitives.

Hand frame (right hand, mm): origin at the wrist joint centre, ``+y`` distal (towards the middle
finger), ``+x`` radial (thumb side), ``+z`` palmar (out of the palm). A left hand is the mirror
image ``x -> -x`` (done by :func:`mirror_x`).

The volume is a list of *round cones*: the convex hull of two spheres, ``(ax, ay, az, ra, bx, by,
bz, rb)``, one or more per bone, a palm of overlapping round cones with thickness, and a forearm.
A joint's label is a point on the bone axis, inside the volume, as in the real datasets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Nominal hand (wrist to middle fingertip = NOMINAL_LENGTH_MM), hand frame, in mm.
NOMINAL_LENGTH_MM = 185.0
# Finger order as in skeleton.FINGERS: thumb, index, middle, ring, little.
# Base of each chain: the thumb's CMC (canonical "thumb_mcp") and the fingers' MCPs.
BASE_XYZ_MM = np.array([
    [19.0, 24.0, 9.0],    # thumb CMC
    [25.0, 81.0, 0.0],    # index MCP
    [5.0, 85.0, 0.0],     # middle MCP
    [-13.0, 80.0, 1.5],   # ring MCP
    [-29.0, 71.0, 3.0],   # little MCP
])
# Bone lengths per chain (mm): thumb metacarpal, proximal, distal; fingers proximal, middle, distal.
BONE_LENGTH_MM = np.array([
    [44.0, 32.0, 28.0],
    [42.0, 24.5, 21.0],
    [46.0, 28.0, 22.5],
    [43.0, 27.0, 22.0],
    [34.0, 20.0, 19.5],
])
# Radius at the chain's four joints (base, 2nd, 3rd, tip), mm.
RADIUS_MM = np.array([
    [13.0, 10.5, 9.5, 8.2],
    [9.4, 8.4, 7.4, 6.6],
    [9.7, 8.7, 7.6, 6.8],
    [9.1, 8.1, 7.2, 6.5],
    [8.0, 7.1, 6.4, 5.8],
])
# Splay of each finger's rest direction in the palm plane (deg, + = radial).
SPLAY_DEG = np.array([0.0, 5.0, 0.0, -5.0, -11.0])
# Palm volume: round cones (a, ra, b, rb) in the nominal hand frame; ``None`` ends use a chain base.
_METACARPAL_BASE_X = (13.0, 4.0, -6.0, -15.0)


@dataclass(frozen=True)
class HandShape:
    """One person's hand: scaled, with individual proportions. Arrays are (5, ...) per chain."""

    base_xyz_mm: np.ndarray  # (5, 3)
    bone_length_mm: np.ndarray  # (5, 3)
    radius_mm: np.ndarray  # (5, 4)
    palm_scale: np.ndarray  # (3,) x, y, z scale of the palm volume
    forearm_radius_mm: float
    length_mm: float  # wrist to middle fingertip, fingers straight


def _hand_length(base_xyz_mm: np.ndarray, bone_length_mm: np.ndarray) -> float:
    return float(base_xyz_mm[2, 1] + bone_length_mm[2].sum())


def sample_shape(rng: np.random.Generator, palm_width: tuple[float, float] = (0.9, 1.1)) -> HandShape:
    """A random adult hand: length 160-210 mm, palm width (``palm_width`` x the nominal), finger
    lengths and thickness varying."""
    length_mm = rng.uniform(160.0, 210.0)
    width = rng.uniform(*palm_width)  # palm width relative to length
    finger = rng.uniform(0.92, 1.08)  # finger length relative to palm length
    thick = rng.uniform(0.88, 1.12)
    base = BASE_XYZ_MM * np.array([width, 1.0, 1.0])
    bones = BONE_LENGTH_MM * finger * rng.uniform(0.96, 1.04, size=BONE_LENGTH_MM.shape)
    scale = length_mm / _hand_length(base, bones)
    radius = RADIUS_MM * thick * rng.uniform(0.95, 1.05, size=(5, 1)) * (0.5 + 0.5 * scale)
    return HandShape(base * scale, bones * scale, radius, np.array([width * scale, scale, thick * scale]),
                     float(rng.uniform(18.0, 22.0) * thick * (0.5 + 0.5 * scale)), float(length_mm))


def nominal_shape() -> HandShape:
    scale = 1.0
    return HandShape(BASE_XYZ_MM.copy(), BONE_LENGTH_MM.copy(), RADIUS_MM.copy(), np.ones(3), 19.0,
                     _hand_length(BASE_XYZ_MM, BONE_LENGTH_MM) * scale)


# --------------------------------------------------------------------------- rotations

def rot_x(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _thumb_rest_frame() -> np.ndarray:
    """Columns (x, y, z) of the thumb's rest frame: y along the metacarpal, z its flexion direction."""
    y = np.array([0.40, 0.85, 0.35])
    y /= np.linalg.norm(y)
    z = np.array([-0.9, 0.0, 0.35])  # flexing brings the thumb across the palm, towards the little finger
    z -= y * (z @ y)
    z /= np.linalg.norm(z)
    return np.stack([np.cross(y, z), y, z], axis=1)


THUMB_REST = _thumb_rest_frame()


# --------------------------------------------------------------------------- kinematics

@dataclass(frozen=True)
class HandPose:
    """Joint angles in degrees.

    ``chain_deg`` (5, 4): thumb = (CMC flexion, CMC abduction, MCP flexion, IP flexion); fingers =
    (MCP flexion, MCP abduction (+ radial), PIP flexion, DIP flexion). ``wrist_deg`` = (flexion,
    radial deviation); ``cup`` in [0, 1] arches the palm.
    """

    chain_deg: np.ndarray  # (5, 4)
    wrist_deg: np.ndarray  # (2,)
    cup: float = 0.0


# The cup (HandPose.cup in [0, 1]) arches the palm: per chain, it lifts the base palmar (mm, z) and
# changes the finger's splay (deg).
CUP_BASE_Z_MM = np.array([0.0, 0.0, 3.0, 8.0, 14.0])
CUP_SPLAY_DEG = np.array([0.0, -4.0, 0.0, 4.0, 10.0])
CHAIN_JOINTS = np.arange(1, 21).reshape(5, 4)  # canonical index of (base, 2nd, 3rd, tip) per chain


def _rot_x_batch(deg: np.ndarray) -> np.ndarray:
    """(...,) degrees -> (..., 3, 3): :func:`rot_x` of each, entry for entry."""
    a = np.deg2rad(deg)
    c, s, z, o = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _rot_z_batch(deg: np.ndarray) -> np.ndarray:
    """(...,) degrees -> (..., 3, 3): :func:`rot_z` of each, entry for entry."""
    a = np.deg2rad(deg)
    c, s, z, o = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def rest_frames(cup: np.ndarray) -> np.ndarray:
    """(...,) cup -> (..., 5, 3, 3): each chain's frame before its own angles (the thumb's rest frame,
    the fingers' splay with the cup's)."""
    cup = np.asarray(cup, dtype=np.float64)
    frames = _rot_z_batch(-SPLAY_DEG - cup[..., None] * CUP_SPLAY_DEG)  # (..., 5, 3, 3)
    frames[..., 0, :, :] = THUMB_REST
    return frames


def forward_kinematics_batch(base_xyz_mm: np.ndarray, bone_length_mm: np.ndarray, chain_deg: np.ndarray,
                             cup: np.ndarray) -> np.ndarray:
    """The hand's forward kinematics, batched: canonical joints (..., 21, 3) in the hand frame.

    base_xyz_mm (..., 5, 3) chain bases before the cup's lift, bone_length_mm (..., 5, 3), chain_deg
    (..., 5, 4) (:class:`HandPose`), cup (...). Per chain, the base rotation ``rot_z(-splay - a1) @
    rot_x(a0)`` (the thumb's: ``THUMB_REST @ rot_z(-a1) @ rot_x(a0)``: abduction about its palmar axis,
    then flexion), then flexions ``a2``, ``a3`` about the same axis; each bone runs along its frame's
    ``y``. The one forward pass of the package: the synthetic engine (:func:`forward_kinematics`) and
    the inverse kinematics (:mod:`srnpose.hand.ik`) both run it, with the same arithmetic per hand."""
    chain_deg = np.asarray(chain_deg, dtype=np.float64)
    lengths = np.asarray(bone_length_mm, dtype=np.float64)
    cup = np.asarray(cup, dtype=np.float64)
    base = np.array(base_xyz_mm, dtype=np.float64)  # (..., 5, 3)
    base[..., 1:, 2] += cup[..., None] * CUP_BASE_Z_MM[1:]  # arch: ring and little come forward
    a0, a1, a2, a3 = (chain_deg[..., k] for k in range(4))  # (..., 5)
    z_deg = -SPLAY_DEG - a1 - cup[..., None] * CUP_SPLAY_DEG
    z_deg[..., 0] = -a1[..., 0]
    rz = _rot_z_batch(z_deg)  # (..., 5, 3, 3)
    rz[..., 0, :, :] = THUMB_REST @ rz[..., 0, :, :]
    r0 = rz @ _rot_x_batch(a0)
    r1 = r0 @ _rot_x_batch(a2)
    r2 = r1 @ _rot_x_batch(a3)
    p1 = base + r0[..., :, 1] * lengths[..., 0:1]
    p2 = p1 + r1[..., :, 1] * lengths[..., 1:2]
    p3 = p2 + r2[..., :, 1] * lengths[..., 2:3]
    joints = np.zeros(chain_deg.shape[:-2] + (21, 3))
    joints[..., CHAIN_JOINTS, :] = np.stack([base, p1, p2, p3], -2)  # (..., 5, 4, 3)
    return joints


def forward_kinematics(shape: HandShape, pose: HandPose) -> np.ndarray:
    """Canonical joints (21, 3) of one hand in the hand frame (:func:`forward_kinematics_batch`)."""
    return forward_kinematics_batch(shape.base_xyz_mm, shape.bone_length_mm, pose.chain_deg, pose.cup)


# Part ids: 0-14 chain bones (chain * 3 + bone), 15 palm, 16 forearm. Which parts hold each joint.
PART_PALM = 15
PART_FOREARM = 16
NUM_PARTS = 17
JOINT_PARTS: tuple[tuple[int, ...], ...] = (
    (PART_PALM, PART_FOREARM),
    *[parts for f in range(5) for parts in (
        ((3 * f, PART_PALM)), (3 * f, 3 * f + 1), (3 * f + 1, 3 * f + 2), (3 * f + 2,))],
)


def _ellipsoid(centre: np.ndarray, axes: np.ndarray, semi_mm: np.ndarray) -> np.ndarray:
    """(15,) ellipsoid: centre (3), axes as columns of a rotation (9, row-major), semi-axes (3)."""
    return np.concatenate([centre, axes.reshape(-1), semi_mm])


def _frame_along(direction: np.ndarray) -> np.ndarray:
    """A rotation (3, 3) whose y column is ``direction`` and whose z column is near the palm normal."""
    y = direction / np.linalg.norm(direction)
    z = np.array([0.0, 0.0, 1.0]) - y * y[2]
    z /= np.linalg.norm(z)
    return np.stack([np.cross(y, z), y, z], axis=1)


@dataclass(frozen=True)
class Volume:
    """A hand's volume primitives in one frame (hand or camera)."""

    cones: np.ndarray  # (P, 8) round cones: a xyz, ra, b xyz, rb
    cone_parts: np.ndarray  # (P,) int16 part ids
    ellipsoids: np.ndarray  # (E, 15): centre, axes (3x3 columns, row-major), semi-axes
    ellipsoid_parts: np.ndarray  # (E,) int16

    def transformed(self, rot: np.ndarray, trans: np.ndarray) -> Volume:
        """The volume moved by ``x -> rot @ x + trans`` (``rot`` may be a reflection)."""
        cones = self.cones.copy()
        cones[:, 0:3] = self.cones[:, 0:3] @ rot.T + trans
        cones[:, 4:7] = self.cones[:, 4:7] @ rot.T + trans
        ells = self.ellipsoids.copy()
        ells[:, 0:3] = self.ellipsoids[:, 0:3] @ rot.T + trans
        axes = self.ellipsoids[:, 3:12].reshape(-1, 3, 3)
        ells[:, 3:12] = np.einsum("ij,ejk->eik", rot, axes).reshape(-1, 9)
        return Volume(cones, self.cone_parts, ells, self.ellipsoid_parts)

    def far_mm(self) -> float:
        """Largest depth (z) any primitive reaches."""
        cone_far = np.maximum(self.cones[:, 2] + self.cones[:, 3], self.cones[:, 6] + self.cones[:, 7])
        ell_far = self.ellipsoids[:, 2] + self.ellipsoids[:, 12:15].max(axis=1)
        return float(max(cone_far.max(initial=-np.inf), ell_far.max(initial=-np.inf)))


def primitives(shape: HandShape, pose: HandPose, joints: np.ndarray) -> Volume:
    """The hand's volume (round cones and ellipsoids) in the hand frame, with part ids."""
    cones: list[tuple] = []
    parts: list[int] = []
    radius = shape.radius_mm
    for f in range(5):
        chain = joints[1 + 4 * f: 5 + 4 * f]
        for b in range(3):
            a, e = chain[b], chain[b + 1]
            ra, rb = radius[f, b], radius[f, b + 1]
            if b == 2:  # the fingertip's rounded end reaches slightly past the TIP label
                d = e - a
                e = e - d / np.linalg.norm(d) * 0.75 * rb
            cones.append((*a, ra, *e, rb))
            parts.append(3 * f + b)
    # Palm: a flat ellipsoid slab (with thickness), its rim thickened by round cones: the index and
    # little metacarpals, the knuckle bar, the wrist bar; a thenar ellipsoid at the thumb's base.
    sx, sy, sz = shape.palm_scale
    r_palm = 11.0 * sz
    mcp = joints[[5, 9, 13, 17]]
    for k in (0, 3):
        base = np.array([_METACARPAL_BASE_X[k] * sx, 16.0 * sy, 0.0])
        cones.append((*base, r_palm * 1.0, *mcp[k], radius[k + 1, 0] * 1.1))
        parts.append(PART_PALM)
    off = np.array([0.0, -6.0 * sy, -1.0 * sz])
    cones.append((*(mcp[0] + off), r_palm, *(mcp[3] + off), r_palm * 0.92))
    cones.append((16.0 * sx, 7.0 * sy, 0.0, r_palm * 1.25, -15.0 * sx, 7.0 * sy, 0.0, r_palm * 1.2))
    parts += [PART_PALM] * 2
    knuckle_y = float(mcp[:, 1].mean())
    ellipsoids = [_ellipsoid(np.array([-1.5 * sx, 0.5 * knuckle_y, 1.0 * sz]), np.eye(3),
                             np.array([37.0 * sx, 0.5 * knuckle_y, 13.5 * sz]))]
    thumb_base = np.array([9.0 * sx, 14.0 * sy, 3.0 * sz])
    thumb_mid = joints[1] + 0.55 * (joints[2] - joints[1])
    axis = thumb_mid - thumb_base
    ellipsoids.append(_ellipsoid(thumb_base + 0.5 * axis, _frame_along(axis),
                                 np.array([14.0 * sx, 0.5 * np.linalg.norm(axis) + 6.0 * sy, 12.5 * sz])))
    # Forearm: two parallel tapered cones (an oval section), bent at the wrist, split in segments.
    wrist = rot_x(pose.wrist_deg[0]) @ rot_z(-pose.wrist_deg[1])
    rf = shape.forearm_radius_mm
    for side in (-1.0, 1.0):
        a = np.array([side * 8.0 * sx, 4.0, 0.0])
        r_a = rf
        for seg in range(1, 3):
            s = seg / 2.0
            b = wrist @ np.array([side * (8.0 + 3.0 * s) * sx, -120.0 * s * sy, 0.0])
            r_b = rf * (1.0 + 0.22 * s)
            cones.append((*a, r_a, *b, r_b))
            parts.append(PART_FOREARM)
            a, r_a = b, r_b
    return Volume(np.asarray(cones, dtype=np.float64), np.asarray(parts, dtype=np.int16),
                  np.asarray(ellipsoids, dtype=np.float64), np.full(len(ellipsoids), PART_PALM, dtype=np.int16))


MIRROR_X = np.diag([-1.0, 1.0, 1.0])  # right hand <-> left hand in the hand frame


def mirror_x(points: np.ndarray) -> np.ndarray:
    """Mirror (..., 3) points in the hand frame's x: right hand <-> left hand."""
    return np.asarray(points, dtype=np.float64) @ MIRROR_X
