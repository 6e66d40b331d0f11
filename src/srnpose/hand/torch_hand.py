"""The kinematic hand of :mod:`srnpose.hand.kinematics`, differentiable in torch and batched.

The same shape parameters (:class:`~srnpose.hand.kinematics.HandShape`: chain bases, bone lengths,
radii, palm scale, forearm radius), the same forward kinematics (:func:`forward_kinematics`: the chains of
:func:`~srnpose.hand.kinematics.forward_kinematics_batch` in closed form, without in-place writes, so
that autograd runs through it) and the same round cones (:func:`hand_cones`: the rows of
:func:`~srnpose.hand.kinematics.primitives`' cones, in its order). The joint limits are
:data:`srnpose.synth.poses.LIMITS_DEG` (:func:`clamp_to_limits`).

The numpy volume also holds two ellipsoids (the palm's slab and the thenar pad); distances to
ellipsoids have no closed form, so ``fill=True`` adds :data:`NUM_FILL_CONES` round cones in their
place (the middle and ring metacarpals, thick as the slab, the slab's two lateral edges, and the
thenar pad along the thumb's metacarpal; on the palm's visible surface 90 % of the points lie within
3 mm of the numpy volume's): the volume is then round cones only, with an exact signed distance
(:func:`round_cone_sdf`). tests/test_torch_hand.py checks joints and cones against the numpy model
and the filled volume's render against the numpy volume's.

Every function takes torch tensors (float32 or float64; gradcheck in float64) **or numpy arrays** and
returns the same kind: the fit's solver (:mod:`srnpose.fitting.fit`) runs the numpy path, whose
operations cost a third of torch's on small arrays, and training losses run the torch path; one code,
so the two cannot drift. Leading batch dimensions ``(...)`` broadcast; angles are degrees as in
:class:`~srnpose.hand.kinematics.HandPose`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from srnpose.hand import kinematics as hm
from srnpose.synth.poses import LIMITS_DEG

__all__ = ["HandShapeArrays", "NUM_HAND_CONES", "NUM_FILL_CONES", "NUM_FOREARM_CONES", "CONE_FINGER",
           "array_module", "clip", "forward_kinematics", "hand_cones", "palm_cones", "forearm_cones", "place", "clamp_to_limits", "round_cone_sdf",
           "rodrigues", "take_along"]

NUM_HAND_CONES = 19  # 15 finger bones + 4 palm cones: primitives()' first rows
NUM_FOREARM_CONES = 4  # primitives()' last rows (two tapered cones, two segments each)
NUM_FILL_CONES = 5  # in place of the two ellipsoids (fill=True): middle and ring metacarpals, slab edges, thenar
# The finger (0 thumb .. 4 little) each cone of hand_cones(fill=True) belongs to, -1: the palm.
CONE_FINGER = np.array([f for f in range(5) for _ in range(3)] + [-1] * 4 + [-1] * 4 + [0])
_FILL_RADIUS = 13.0  # the palm slab's semi-axis in z is 13.5 (x sz); its rim cones have 11 (x sz)
_THENAR_RADIUS = 12.5  # the thenar ellipsoid's semi-axis across the pad (x sz)
# Constant per-chain rotations before the chain's own: the thumb's rest frame, identity for fingers.
_CHAIN_REST = np.stack([hm.THUMB_REST] + [np.eye(3)] * 4)  # (5, 3, 3)
_SPLAY_DEG = np.concatenate([[0.0], hm.SPLAY_DEG[1:]])  # the thumb's splay is in its rest frame
_CUP_SPLAY_DEG = np.concatenate([[0.0], hm.CUP_SPLAY_DEG[1:]])
_CUP_LIFT = np.zeros((5, 3))
_CUP_LIFT[1:, 2] = hm.CUP_BASE_Z_MM[1:]  # the cup lifts the finger bases palmar (kinematics.CUP_BASE_Z_MM)
_TIP_SHORTEN = np.array([0.0, 0.0, 0.75])  # per bone: share of rb the cone ends before the joint (the tip's)
# Palm cones of primitives(): (a, b) palm points (x, y, z) in units of the palm scale, or an MCP index.
_PALM_BASE = np.array([[hm._METACARPAL_BASE_X[0], 16.0, 0.0], [hm._METACARPAL_BASE_X[3], 16.0, 0.0]])
_WRIST_BAR = np.array([[16.0, 7.0, 0.0], [-15.0, 7.0, 0.0]])
_KNUCKLE_OFFSET = np.array([0.0, -6.0, -1.0])
_FILL_BASE = np.array([[hm._METACARPAL_BASE_X[1], 16.0, 1.0], [hm._METACARPAL_BASE_X[2], 16.0, 1.0]])
_THENAR_BASE = np.array([9.0, 14.0, 3.0])
# The slab ellipsoid (centre x -1.5, semi-axes 37 x knuckle_y / 2 x 13.5) bulges past the rim cones
# mid-palm: an edge cone each side, as thick as the slab there, along y = 0.25-0.75 knuckle_y.
_EDGE_X = np.array([-1.5 + 25.0, -1.5 - 25.0])
_EDGE_Y = (0.25, 0.75)
_EDGE_RADIUS = 9.0


def array_module(x: Any):
    """``torch`` for a tensor, else ``numpy``: the functions here run on either."""
    return torch if isinstance(x, torch.Tensor) else np


def clip(a: Any, low: float | None, high: float | None = None) -> Any:
    """``numpy.clip`` / ``torch.clamp`` of an array or tensor between scalars; on arrays ``np.maximum`` and
    ``np.minimum`` (``np.clip`` costs 3-5x theirs on the fit's small arrays, called ~60 times a frame)."""
    if isinstance(a, torch.Tensor):
        return torch.clamp(a, low, high)
    out = a if low is None else np.maximum(a, low)
    return out if high is None else np.minimum(out, high)


def _const(a: Any, like: Any) -> Any:
    """A constant as the kind of ``like`` (its dtype and device for a tensor; a copy, so that a read-only
    cached array, such as the fit's sample tables, never backs a tensor)."""
    if isinstance(like, torch.Tensor):
        return torch.tensor(np.asarray(a), dtype=like.dtype, device=like.device)
    return np.asarray(a, dtype=np.float64)


def take_along(a: Any, index: Any, axis: int) -> Any:
    """``numpy.take_along_axis`` / ``torch.take_along_dim``."""
    if isinstance(a, torch.Tensor):
        return torch.take_along_dim(a, index, dim=axis)
    return np.take_along_axis(a, index, axis)


def _cat(parts: list, axis: int) -> Any:
    """Concatenate along ``axis`` (negative), broadcasting the other dims (the solver's columns meet
    per-hand constants here)."""
    xp = array_module(parts[0])
    try:  # the common case: nothing to broadcast (a failed try costs less than checking every call)
        return xp.concatenate(parts, axis=axis)
    except (ValueError, RuntimeError):
        pass
    shapes = [list(p.shape) for p in parts]
    ndim = max(len(sh) for sh in shapes)
    first = shapes[0][:axis] if axis != -1 else shapes[0][:-1]
    if all(len(sh) == ndim and (sh[:axis] if axis != -1 else sh[:-1]) == first for sh in shapes) and \
            (axis == -1 or all(sh[axis + 1:] == shapes[0][axis + 1:] for sh in shapes)):
        return xp.concatenate(parts, axis=axis)  # nothing to broadcast
    shapes = [[1] * (ndim - len(sh)) + sh for sh in shapes]
    for sh in shapes:
        sh[axis] = 1
    lead = list(np.broadcast_shapes(*(tuple(sh) for sh in shapes)))
    out = []
    for p in parts:
        target = list(lead)
        target[axis] = p.shape[axis]
        out.append(xp.broadcast_to(p, tuple(target)))
    return xp.concatenate(out, axis=axis)


def _cross(a: Any, b: Any) -> Any:
    xp = array_module(a)
    return xp.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1], a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                     a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], axis=-1)


@dataclass(frozen=True)
class HandShapeArrays:
    """A :class:`~srnpose.hand.kinematics.HandShape` as arrays or tensors with leading dims ``(...)``."""

    base_xyz_mm: Any  # (..., 5, 3)
    bone_length_mm: Any  # (..., 5, 3)
    radius_mm: Any  # (..., 5, 4)
    palm_scale: Any  # (..., 3)
    forearm_radius_mm: Any  # (...)

    @classmethod
    def from_shape(cls, shape: hm.HandShape, dtype: torch.dtype | None = torch.float64) -> HandShapeArrays:
        """From a numpy HandShape: tensors of ``dtype``, or float64 numpy arrays for ``dtype=None``."""
        def t(a):
            a = np.asarray(a, dtype=np.float64)
            return a if dtype is None else torch.as_tensor(a, dtype=dtype)

        return cls(t(shape.base_xyz_mm), t(shape.bone_length_mm), t(shape.radius_mm), t(shape.palm_scale),
                   t(shape.forearm_radius_mm))


def _rot_x(deg: Any) -> Any:
    """(...,) degrees -> (..., 3, 3), as kinematics._rot_x_batch."""
    xp = array_module(deg)
    a = xp.deg2rad(deg)
    c, s, z, o = xp.cos(a), xp.sin(a), deg * 0.0, deg * 0.0 + 1.0
    return xp.stack([xp.stack([o, z, z], axis=-1), xp.stack([z, c, -s], axis=-1), xp.stack([z, s, c], axis=-1)],
                    axis=-2)


def _rot_z(deg: Any) -> Any:
    """(...,) degrees -> (..., 3, 3), as kinematics._rot_z_batch."""
    xp = array_module(deg)
    a = xp.deg2rad(deg)
    c, s, z, o = xp.cos(a), xp.sin(a), deg * 0.0, deg * 0.0 + 1.0
    return xp.stack([xp.stack([c, -s, z], axis=-1), xp.stack([s, c, z], axis=-1), xp.stack([z, z, o], axis=-1)],
                    axis=-2)


def rodrigues(w: Any) -> Any:
    """Rotation vectors (..., 3) rad -> rotations (..., 3, 3); smooth at 0 (a series below 1e-4 rad)."""
    xp = array_module(w)
    theta2 = (w * w).sum(axis=-1)[..., None, None]  # (..., 1, 1)
    small = theta2 < 1e-8
    theta2_safe = xp.where(small, theta2 * 0.0 + 1.0, theta2)
    theta = xp.sqrt(theta2_safe)
    a = xp.where(small, 1.0 - theta2 / 6.0, xp.sin(theta) / theta)
    b = xp.where(small, 0.5 - theta2 / 24.0, (1.0 - xp.cos(theta)) / theta2_safe)
    z = w[..., 0] * 0.0
    k = xp.stack([xp.stack([z, -w[..., 2], w[..., 1]], axis=-1), xp.stack([w[..., 2], z, -w[..., 0]], axis=-1),
                  xp.stack([-w[..., 1], w[..., 0], z], axis=-1)], axis=-2)
    return _const(np.eye(3), w) + a * k + b * (k @ k)


def forward_kinematics(base_xyz_mm: Any, bone_length_mm: Any, chain_deg: Any, cup: Any) -> Any:
    """Canonical joints (..., 21, 3) in the hand frame: :func:`srnpose.hand.kinematics.forward_kinematics_batch`
    for tensors or arrays. base_xyz_mm (..., 5, 3) before the cup's lift, bone_length_mm (..., 5, 3),
    chain_deg (..., 5, 4), cup (...).

    The same chain in closed form (as :func:`srnpose.hand.ik._chain_local`): in its rest frame (the
    thumb's, or the identity) rotated by ``rot_z(zd)``, bone k points along ``(-sin zd cos P_k,
    cos zd cos P_k, sin P_k)`` with ``P_k`` the flexions summed to it; a third of the operations of
    three chained rotation products, equal to float precision."""
    xp = array_module(chain_deg)
    base = base_xyz_mm + cup[..., None, None] * _const(_CUP_LIFT, chain_deg)
    a = xp.deg2rad(chain_deg)
    zd = -xp.deg2rad(_const(_SPLAY_DEG, a) + cup[..., None] * _const(_CUP_SPLAY_DEG, a)) - a[..., 1]  # (..., 5)
    p1 = a[..., 0]
    p2 = p1 + a[..., 2]
    phi = xp.stack([p1, p2, p2 + a[..., 3]], axis=-1)  # (..., 5, 3) summed flexions
    cphi = xp.cos(phi)
    local = xp.stack([-xp.sin(zd)[..., None] * cphi, xp.cos(zd)[..., None] * cphi, xp.sin(phi)], axis=-1)
    bones = (local @ _const(_CHAIN_REST, a).swapaxes(-1, -2)) * bone_length_mm[..., None]  # (..., 5, 3, 3)
    j1 = base + bones[..., 0, :]
    j2 = j1 + bones[..., 1, :]
    chains = xp.stack([base + j1 * 0.0, j1, j2, j2 + bones[..., 2, :]], axis=-2)  # (..., 5, 4, 3)
    chains = chains.reshape(chains.shape[:-3] + (20, 3))  # canonical order 1..20
    return _cat([chains[..., :1, :] * 0.0, chains], -2)


def _rows(a: Any, ra: Any, b: Any, rb: Any) -> Any:
    """Round-cone rows (..., 8) from ends (..., 3) and radii (...)."""
    return _cat([a, ra[..., None], b, rb[..., None]], -1)


def hand_cones(shape: HandShapeArrays, joints: Any, fill: bool = True, forearm: bool = False,
               wrist_deg: Any = None, palm: Any = None) -> Any:
    """Round cones (..., P, 8) ``(a xyz, ra, b xyz, rb)`` of the hand at ``joints`` (..., 21, 3), hand frame.

    Rows, in :func:`srnpose.hand.kinematics.primitives`' order: 15 finger bones (chain * 3 + bone),
    the index and little metacarpals, the knuckle bar, the wrist bar (:data:`NUM_HAND_CONES`); then with
    ``fill`` the :data:`NUM_FILL_CONES` cones in place of the ellipsoids (middle and ring metacarpals,
    the slab's edges, the thenar pad); then with ``forearm`` the forearm's :data:`NUM_FOREARM_CONES` (bent by ``wrist_deg``
    (..., 2), default 0). ``palm``: :func:`palm_cones` of this hand computed before (they move with
    neither the angles nor the finger lengths)."""
    xp = array_module(joints)
    lead = joints.shape[:-2]
    radius = shape.radius_mm
    chains = joints[..., 1:, :].reshape(lead + (5, 4, 3))
    a, b = chains[..., :3, :], chains[..., 1:, :]  # (..., 5, 3, 3)
    ra, rb = radius[..., :3], radius[..., 1:]  # (..., 5, 3)
    d = b - a
    shorten = _const(_TIP_SHORTEN, joints) * rb / xp.sqrt((d * d).sum(axis=-1))  # the tip's rounded end
    fingers = _rows(a, ra, b - d * shorten[..., None], rb)  # (..., 5, 3, 8)
    parts = [fingers.reshape(fingers.shape[:-3] + (15, 8)), palm_cones(shape, joints, fill) if palm is None else palm]
    if fill:  # the thenar pad, along the thumb's metacarpal
        sz = shape.palm_scale[..., 2]
        thumb_mid = joints[..., 1, :] + 0.55 * (joints[..., 2, :] - joints[..., 1, :])
        base = _const(_THENAR_BASE, joints) * shape.palm_scale
        parts.append(_rows(base, _THENAR_RADIUS * sz, thumb_mid, _THENAR_RADIUS * 0.85 * sz)[..., None, :])
    if forearm:
        parts.append(forearm_cones(shape, wrist_deg))
    return _cat(parts, -2)


def palm_cones(shape: HandShapeArrays, joints: Any, fill: bool = True) -> Any:
    """The palm's round cones (..., 4, 8) (index and little metacarpals, knuckle bar, wrist bar), with
    ``fill`` also the middle and ring metacarpals and the slab's edges (..., 8, 8); they depend on the finger MCPs of
    ``joints`` (..., 21, 3) and the shape only."""
    xp = array_module(joints)
    ps = shape.palm_scale[..., None, :]  # (..., 1, 3)
    sz = shape.palm_scale[..., 2:3]  # (..., 1)
    r_palm = 11.0 * sz
    mcp = joints[..., [5, 9, 13, 17], :]
    off = _const(_KNUCKLE_OFFSET, joints) * shape.palm_scale
    rim_a = _const(_PALM_BASE, joints) * ps  # (..., 2, 3) index and little metacarpals' bases
    bar = _const(_WRIST_BAR, joints) * ps  # (..., 2, 3)
    palm_a = [rim_a, (mcp[..., 0, :] + off)[..., None, :], bar[..., :1, :]]
    palm_b = [mcp[..., [0, 3], :], (mcp[..., 3, :] + off)[..., None, :], bar[..., 1:, :]]
    palm_ra = [xp.concatenate([r_palm, r_palm], axis=-1), r_palm, r_palm * 1.25]
    palm_rb = [shape.radius_mm[..., [1, 4], 0] * 1.1, r_palm * 0.92, r_palm * 1.2]
    if fill:  # the middle and ring metacarpals, as thick as the slab; the slab's thin lateral edges
        fill_r = _FILL_RADIUS * sz
        palm_a.append(_const(_FILL_BASE, joints) * ps)
        palm_b.append(mcp[..., [1, 2], :] + off[..., None, :])
        palm_ra.append(xp.concatenate([fill_r, fill_r], axis=-1))
        palm_rb.append(xp.concatenate([fill_r, fill_r], axis=-1) * 0.92)
        knuckle_y = mcp[..., 1].mean(axis=-1)[..., None, None]  # (..., 1, 1) as primitives()' slab
        edge = _const(_EDGE_X, joints)[:, None] * ps[..., 0:1]  # (..., 2, 1)
        z = sz[..., None] * 1.0
        palm_a.append(_cat([edge, knuckle_y * _EDGE_Y[0] + edge * 0.0, z + edge * 0.0], -1))
        palm_b.append(_cat([edge, knuckle_y * _EDGE_Y[1] + edge * 0.0, z + edge * 0.0], -1))
        edge_r = _EDGE_RADIUS * sz
        palm_ra.append(xp.concatenate([edge_r, edge_r], axis=-1))
        palm_rb.append(xp.concatenate([edge_r, edge_r], axis=-1))
    return _rows(_cat(palm_a, -2), _cat(palm_ra, -1), _cat(palm_b, -2), _cat(palm_rb, -1))


def forearm_cones(shape: HandShapeArrays, wrist_deg: Any = None) -> Any:
    """The forearm's round cones (..., 4, 8): primitives()' last four rows (each side's two segments,
    from the wrist), bent by ``wrist_deg`` (..., 2) (None: straight)."""
    xp = array_module(shape.palm_scale)
    sx, sy = shape.palm_scale[..., 0], shape.palm_scale[..., 1]
    if wrist_deg is None:
        wrist_deg = shape.palm_scale[..., :2] * 0.0
    wrist = _rot_x(wrist_deg[..., 0]) @ _rot_z(-wrist_deg[..., 1])  # (..., 3, 3)
    rf = shape.forearm_radius_mm
    rows = []
    zero = sx * 0.0
    for side in (-1.0, 1.0):
        a = xp.stack([side * 8.0 * sx, zero + 4.0, zero], axis=-1)
        r_a = rf
        for seg in range(1, 3):
            s = seg / 2.0
            local = xp.stack([side * (8.0 + 3.0 * s) * sx, -120.0 * s * sy, zero], axis=-1)
            b = (wrist @ local[..., None])[..., 0]
            r_b = rf * (1.0 + 0.22 * s)
            rows.append(_rows(a, r_a, b, r_b))
            a, r_a = b, r_b
    return xp.stack(rows, axis=-2)


def place(points: Any, rotation: Any, translation: Any, mirror: Any = None) -> Any:
    """Hand-frame points (..., N, 3) -> the camera frame: ``R (M x) + t``, as :mod:`srnpose.hand.ik`
    places its fits. rotation (..., 3, 3), translation (..., 3); ``mirror`` (..., 3): ``(-1, 1, 1)`` for a
    left hand (x mirrored in the hand frame), None or ones for a right hand."""
    if mirror is not None:
        points = points * mirror[..., None, :]
    return points @ rotation.swapaxes(-1, -2) + translation[..., None, :]


def clamp_to_limits(chain_deg: Any) -> Any:
    """Chain angles (..., 5, 4) clamped to :data:`srnpose.synth.poses.LIMITS_DEG`."""
    xp = array_module(chain_deg)
    limits = _const(LIMITS_DEG, chain_deg)
    return xp.minimum(xp.maximum(chain_deg, limits[..., 0]), limits[..., 1])


def round_cone_sdf(points: Any, cones: Any, eps: float = 1e-9) -> Any:
    """Signed distance (mm, < 0 inside) of points (..., 3) to round cones (..., 8), broadcast together.

    The exact distance to the convex hull of two spheres (Inigo Quilez's ``sdRoundCone``: nearest to
    sphere a, to sphere b or to the side), written per coordinate (no reductions over a last axis of 3:
    the fit calls it on thousands of point-cone pairs per step), each pair's case chosen first and one
    square root taken for all. ``eps`` keeps the square roots' gradients finite where a point lies on
    an axis."""
    xp = array_module(points)
    ra, rb = cones[..., 3], cones[..., 7]
    bax, bay, baz = cones[..., 4] - cones[..., 0], cones[..., 5] - cones[..., 1], cones[..., 6] - cones[..., 2]
    l2 = bax * bax + bay * bay + baz * baz
    rr = ra - rb
    a2 = l2 - rr * rr
    il2 = 1.0 / l2
    k_cone = xp.sign(rr) * rr * rr
    pax, pay, paz = points[..., 0] - cones[..., 0], points[..., 1] - cones[..., 1], points[..., 2] - cones[..., 2]
    y = pax * bax + pay * bay + paz * baz
    z = y - l2
    x2 = l2 * ((pax * pax + pay * pay + paz * paz) * l2 - y * y)  # |pa l2 - ba y|^2
    y2 = y * y * l2
    z2 = z * z * l2
    k = k_cone * x2
    at_b = xp.sign(z) * a2 * z2 > k  # nearest to the sphere at b
    at_a = ~at_b & (xp.sign(y) * a2 * y2 < k)  # to the sphere at a; else to the cone's side
    body = ~(at_b | at_a)
    q = xp.where(at_b, x2 + z2, xp.where(at_a, x2 + y2, clip(x2 * a2 * il2, 0.0)))
    return (xp.sqrt(q + eps) + body * (y * rr)) * il2 - xp.where(at_b, rb, ra)
