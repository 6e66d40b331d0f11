"""Inverse kinematics of the kinematic hand: 21 joints -> (shape, pose, rigid frame), batched.

The inverse of :func:`srnpose.hand.kinematics.forward_kinematics` up to what joints can tell:

``joints_xyz = (mirror_x(fk(shape, pose)) if mirrored else fk(shape, pose)) @ rotation.T + translation``

Method (all steps vectorized over a batch of poses, numpy only):

1. **Palm frame.** The wrist is the hand frame's origin (``translation``). The rotation, a palm scale
   ``(sx, sy, sy)`` and the ``cup`` come from the wrist and the four finger MCPs fitted to the
   nominal palm (:data:`~srnpose.hand.kinematics.BASE_XYZ_MM`, ``x`` scaled by ``sx``, ``y`` and ``z``
   by ``sy``, as :func:`~srnpose.hand.kinematics.sample_shape` scales it): a start by alternating
   orthogonal Procrustes and linear least squares, then Levenberg-Marquardt (the cup's lift is
   nearly a tilt of the palm). The thumb's base is left out of this fit: datasets place it
   differently (FPHA labels a point 14 mm from the wrist, the model's CMC is 31 mm away).
2. **Roll.** The model's chains flex in planes that hold the frame's ``z`` (the palm normal); real
   fingers flex in planes rolled against the palm (FPHA: the index by ~15 degrees, the little finger
   by ~0, varying with the grasp). With ``roll=True`` the frame rolls about its ``y`` (distal) axis,
   within +-30 degrees, to the angle whose chain planes hold the joints best (sum of squared
   distances of each chain's joints to its best plane; grid, then golden section). Rotations about
   ``x`` and ``z`` would only shift all MCP flexions or abductions, so the palm keeps fixing them.
3. **Shape.** Chain bases are the given palm points in that frame (the palm is reproduced exactly);
   bone lengths are the given joints' distances.
4. **Chains.** Each chain (thumb or finger) of the model is planar: a base rotation (abduction) about
   its rest frame's ``z``, then three flexions about one axis. An analytic solution (best plane,
   then the bones' angles in it) starts a damped Gauss-Newton (Levenberg-Marquardt, analytic
   Jacobian) solve of the 4 angles against the chain's 3 joints, with the angles kept inside
   :data:`~srnpose.synth.poses.LIMITS_DEG` (projected steps) and a faint pull of the abduction towards
   0 that only matters where it is undetermined (a finger flexed 90 degrees and straight).
5. **Handedness.** A left hand is fitted as the mirror of a right hand; ``mirrored=None`` fits both
   and keeps the lower residual.

``wrist_deg`` (flexion and deviation against the forearm) moves no joint of the 21: it is not
observable and is returned as 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from srnpose.hand import kinematics as hm
from srnpose.hand.kinematics import CHAIN_JOINTS as _CHAIN_JOINTS
from srnpose.hand.kinematics import CUP_BASE_Z_MM, forward_kinematics_batch, rest_frames
from srnpose.synth.poses import LIMITS_DEG

# Names of the (5, 4) chain angles of HandPose.chain_deg, and of its wrist angles.
ANGLE_NAMES: tuple[tuple[str, str, str, str], ...] = (
    ("thumb_cmc_flexion", "thumb_cmc_abduction", "thumb_mcp_flexion", "thumb_ip_flexion"),
    *[(f"{f}_mcp_flexion", f"{f}_mcp_abduction", f"{f}_pip_flexion", f"{f}_dip_flexion")
      for f in ("index", "middle", "ring", "little")],
)
WRIST_ANGLE_NAMES = ("wrist_flexion", "wrist_radial_deviation")

_FINGER_MCP = np.array([5, 9, 13, 17])  # canonical index of the index..little MCPs
_ABDUCTION_PULL = 0.005  # mm of residual per degree of abduction (see step 4 of the module docstring)
_PALM_START_ITERATIONS = 10
_PALM_ITERATIONS = 20
_CHAIN_ITERATIONS = 25
_ROLL_LIMIT_DEG = 30.0  # the frame's roll against the palm (step 2 of the module docstring)
_ROLL_GRID_DEG = 5.0
_ROLL_SEARCH_ITERATIONS = 24  # golden section: 2 * 5 deg * 0.618^24 < 0.001 deg
_ROLL_PULL = 0.05  # mm per degree of roll: keeps it 0 where the chains do not tell (all straight)
_CHUNK = 4096  # skeletons per vectorized pass of fit_poses


@dataclass(frozen=True)
class IKFit:
    """One fitted skeleton. ``joints_xyz`` (21, 3) is the fitted hand in the given frame."""

    shape: hm.HandShape
    pose: hm.HandPose
    rotation: np.ndarray  # (3, 3) proper rotation, hand frame -> given frame (after the mirror)
    translation: np.ndarray  # (3,) mm, the wrist in the given frame
    mirrored: bool  # a left hand: the hand-frame joints are mirrored (x -> -x) before the rotation
    residual_mm: float  # mean joint distance, fitted vs given
    joints_xyz: np.ndarray  # (21, 3) mm


@dataclass(frozen=True)
class IKBatch:
    """:func:`fit_poses` for N skeletons; ``batch[i]`` is the :class:`IKFit` of one."""

    chain_deg: np.ndarray  # (N, 5, 4)
    cup: np.ndarray  # (N,)
    base_xyz_mm: np.ndarray  # (N, 5, 3) chain bases in the hand frame, before the cup's lift
    bone_length_mm: np.ndarray  # (N, 5, 3)
    palm_scale: np.ndarray  # (N, 2) sx, sy of the nominal palm
    roll_deg: np.ndarray  # (N,) the hand frame's roll about its y against the palm's frame
    rotation: np.ndarray  # (N, 3, 3)
    translation: np.ndarray  # (N, 3)
    mirrored: np.ndarray  # (N,) bool
    residual_mm: np.ndarray  # (N,) mean joint distance
    joints_xyz: np.ndarray  # (N, 21, 3) fitted, given frame

    def __len__(self) -> int:
        return len(self.residual_mm)

    def __getitem__(self, i: int) -> IKFit:
        sx, sy = self.palm_scale[i]
        scale = float(sy)
        shape = hm.HandShape(self.base_xyz_mm[i].copy(), self.bone_length_mm[i].copy(),
                             hm.RADIUS_MM * scale, np.array([sx, sy, sy]), 19.0 * scale,
                             float(self.base_xyz_mm[i, 2, 1] + self.bone_length_mm[i, 2].sum()))
        pose = hm.HandPose(self.chain_deg[i].copy(), np.zeros(2), float(self.cup[i]))
        return IKFit(shape, pose, self.rotation[i].copy(), self.translation[i].copy(), bool(self.mirrored[i]),
                     float(self.residual_mm[i]), self.joints_xyz[i].copy())


# --------------------------------------------------------------------------- the solver's chain model

def _chain_local(angles_deg: np.ndarray, length_mm: np.ndarray) -> np.ndarray:
    """Joints 2-4 of chains in their rest frames, base at 0: angles (..., 4), lengths (..., 3) -> (..., 3, 3).

    The chain of :func:`~srnpose.hand.kinematics.forward_kinematics_batch` in closed form, the model the
    chain solve fits with its analytic Jacobian (:func:`_chain_jacobian`); tests/test_ik.py checks it
    against the forward pass. ``rot_z(-a1) @ rot_x(a0)`` then flexions ``a2``, ``a3`` about the same
    axis: bone k points along ``(-sin b cos P_k, cos b cos P_k, sin P_k)`` with ``b = -a1`` and ``P_k``
    the summed flexions."""
    a = np.deg2rad(angles_deg)
    b = -a[..., 1]
    phi = np.cumsum(np.stack([a[..., 0], a[..., 2], a[..., 3]], -1), axis=-1)  # (..., 3)
    cphi = np.cos(phi)
    dirs = np.stack([-np.sin(b)[..., None] * cphi, np.cos(b)[..., None] * cphi, np.sin(phi)], -1)  # (..., 3, 3)
    return np.cumsum(dirs * length_mm[..., None], axis=-2)


# --------------------------------------------------------------------------- solver pieces

def _rotvec_matrix(w: np.ndarray) -> np.ndarray:
    """Rotation vectors (N, 3) rad -> (N, 3, 3) (Rodrigues)."""
    theta = np.linalg.norm(w, axis=-1)[:, None, None]
    k = np.zeros((len(w), 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -w[:, 2], w[:, 1], -w[:, 0]
    k = k - k.transpose(0, 2, 1)
    small = theta < 1e-8
    a = np.where(small, 1.0, np.sin(theta) / np.where(small, 1.0, theta))
    b = np.where(small, 0.5, (1.0 - np.cos(theta)) / np.where(small, 1.0, theta) ** 2)
    return np.eye(3) + a * k + b * (k @ k)


def _levenberg_marquardt(residual, x0: np.ndarray, low: np.ndarray, high: np.ndarray, iterations: int,
                         step: float, jacobian=None) -> np.ndarray:
    """Batched, box-bounded Levenberg-Marquardt: ``residual`` maps (M, P) -> (M, R); ``jacobian`` (M, P)
    -> (M, R, P), or central differences with ``step``; steps projected into [low, high]. Returns the
    (M, P) solution."""
    x = np.clip(np.array(x0, dtype=np.float64), low, high)
    p = x.shape[1]
    eye = np.eye(p)
    r = residual(x)
    cost = (r ** 2).sum(1)
    lam = np.full(len(x), 1e-3)
    for _ in range(iterations):
        if jacobian is not None:
            jac = jacobian(x)  # (M, R, P)
        else:
            jac = np.stack([(residual(x + step * eye[k]) - residual(x - step * eye[k])) / (2 * step)
                            for k in range(p)], -1)  # (M, R, P)
        jac_t = jac.swapaxes(1, 2)
        jtj = jac_t @ jac
        grad = (jac_t @ r[..., None])[..., 0]
        damped = jtj + lam[:, None, None] * (jtj * eye + 1e-9 * eye)
        trial = np.clip(x - np.linalg.solve(damped, grad[..., None])[..., 0], low, high)
        r_trial = residual(trial)
        cost_trial = (r_trial ** 2).sum(1)
        better = cost_trial < cost
        x[better], r[better], cost[better] = trial[better], r_trial[better], cost_trial[better]
        lam = np.where(better, lam * 0.2, lam * 10.0).clip(1e-12, 1e9)
    return x


def palm_procrustes(q: np.ndarray, iterations: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Finger MCPs relative to the wrist (N, 4, 3) -> rotation (N, 3, 3), palm scales sx, sy (N,): alternating
    Procrustes (R) and linear least squares (sx, sy) against the nominal palm at cup 0, ``iterations`` rounds."""
    base = hm.BASE_XYZ_MM[1:]  # (4, 3)
    scale = np.linalg.norm(q, axis=-1).mean(1) / np.linalg.norm(base, axis=-1).mean()
    sx, sy = scale.copy(), scale.copy()
    ones = np.ones(len(q))
    rot = np.tile(np.eye(3), (len(q), 1, 1))
    for _ in range(iterations):
        model = base * np.stack([sx, sy, sy], 1)[:, None]  # (N, 4, 3)
        u, _, vt = np.linalg.svd(model.swapaxes(1, 2) @ q)  # H = sum m q^T = U S V^T
        d = np.sign(np.linalg.det(u @ vt))
        rot = (vt.swapaxes(1, 2) * np.stack([ones, ones, d], 1)[:, None]) @ u.swapaxes(1, 2)  # R = V D U^T
        local = q @ rot  # R^T q, (N, 4, 3)
        sx = (local[..., 0] @ base[:, 0]) / (base[:, 0] @ base[:, 0])
        sy = (local[..., 1] @ base[:, 1] + local[..., 2] @ base[:, 2]) / (base[:, 1:] ** 2).sum()
    return rot, sx, sy


def _palm_frame(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Right-hand joints (N, 21, 3) -> rotation (N, 3, 3), palm scale (N, 2), cup (N,).

    Minimizes ``sum_f |R^T (mcp_f - wrist) - m_f(sx, sy, cup)|^2`` over the four finger MCPs: a start
    by alternating Procrustes (R) and linear least squares (sx, sy) at cup 0, then Levenberg-Marquardt
    over (R, sx, sy, cup in [0, 1]). The cup's lift is nearly a tilt of the palm, so it needs the latter."""
    q = joints[:, _FINGER_MCP] - joints[:, :1]  # (N, 4, 3)
    base = hm.BASE_XYZ_MM[1:]  # (4, 3)
    lift = CUP_BASE_Z_MM[1:]  # (4,)
    n = len(q)
    rot, sx, sy = palm_procrustes(q, _PALM_START_ITERATIONS)

    def residual(x: np.ndarray) -> np.ndarray:  # (N, 6): rotation vector (rad), sx, sy, cup -> (N, 12)
        r = rot @ _rotvec_matrix(x[:, :3])
        model = base * np.stack([x[:, 3], x[:, 4], x[:, 4]], 1)[:, None]
        model[..., 2] += x[:, 5:6] * lift
        return (q @ r - model).reshape(n, 12)

    low = np.array([-np.pi, -np.pi, -np.pi, 0.1, 0.1, 0.0])
    high = np.array([np.pi, np.pi, np.pi, 10.0, 10.0, 1.0])
    x0 = np.concatenate([np.zeros((n, 3)), sx[:, None], sy[:, None], np.zeros((n, 1))], 1)
    x = _levenberg_marquardt(residual, x0, low, high, _PALM_ITERATIONS, 1e-6)
    return rot @ _rotvec_matrix(x[:, :3]), x[:, 3:5].copy(), x[:, 5].copy()


def _rot_y(deg: np.ndarray) -> np.ndarray:
    """(...,) degrees -> (..., 3, 3) rotations about y."""
    a = np.deg2rad(deg)
    c, s, z, o = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _roll_cost(scatter: np.ndarray, rest: np.ndarray, roll_deg: np.ndarray) -> np.ndarray:
    """Sum over chains of the squared distances of their joints to the best plane holding the chain's
    flexion plane axis, with the frame rolled by ``roll_deg``: scatter (N, 5, 3, 3), rest (N, 5, 3, 3),
    roll (N, G) -> (N, G) mm^2, plus a faint pull towards no roll."""
    basis = _rot_y(roll_deg)[:, :, None] @ rest[:, None, :, :, :2]  # (N, G, 5, 3, 2), the plane's normals
    s2 = basis.swapaxes(-1, -2) @ scatter[:, None] @ basis  # (N, G, 5, 2, 2)
    half_trace = 0.5 * (s2[..., 0, 0] + s2[..., 1, 1])
    det = s2[..., 0, 0] * s2[..., 1, 1] - s2[..., 0, 1] * s2[..., 1, 0]
    smallest = half_trace - np.sqrt(np.maximum(half_trace ** 2 - det, 0.0))
    return smallest.sum(-1) + (_ROLL_PULL * roll_deg) ** 2


def _frame_roll(hand: np.ndarray, cup: np.ndarray) -> np.ndarray:
    """Roll (N,) deg about the hand frame's y that best lets the model's planar chains hold the joints.

    Real fingers flex in planes tilted against the palm (FPHA: the index by ~15 degrees, the little
    finger by ~0); the model's chains flex in planes that hold the palm normal. Chains are bases plus
    joints of hand (N, 21, 3) in the palm frame. Coarse grid, then golden-section search."""
    chain = hand[:, _CHAIN_JOINTS]  # (N, 5, 4, 3)
    rel = chain[:, :, 1:] - chain[:, :, :1]
    scatter = rel.swapaxes(-1, -2) @ rel  # (N, 5, 3, 3)
    rest = rest_frames(cup)
    n = len(hand)
    grid = np.arange(-_ROLL_LIMIT_DEG, _ROLL_LIMIT_DEG + 1e-9, _ROLL_GRID_DEG)
    best = grid[np.argmin(_roll_cost(scatter, rest, np.broadcast_to(grid, (n, len(grid)))), axis=1)]
    lo = np.maximum(best - _ROLL_GRID_DEG, -_ROLL_LIMIT_DEG)
    hi = np.minimum(best + _ROLL_GRID_DEG, _ROLL_LIMIT_DEG)
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    for _ in range(_ROLL_SEARCH_ITERATIONS):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        cost = _roll_cost(scatter, rest, np.stack([a, b], 1))
        left = cost[:, 0] < cost[:, 1]  # the minimum lies in [lo, b], else in [a, hi]
        hi = np.where(left, b, hi)
        lo = np.where(left, lo, a)
    return 0.5 * (lo + hi)


def _chain_init(targets: np.ndarray) -> np.ndarray:
    """Analytic chain angles (M, 4) deg from joints 2-4 in the rest frame, base at 0 (M, 3, 3).

    The plane through the base containing the rest frame's z that best holds the three joints gives
    the abduction; the bones' elevations in that plane give the flexions."""
    xy = targets[..., :2]  # (M, 3, 2)
    scatter = xy.swapaxes(1, 2) @ xy + np.diag([0.0, 1.0])  # (M, 2, 2); +1: prefer b = 0
    _, vecs = np.linalg.eigh(scatter)
    normal = vecs[..., 0] * np.where(vecs[..., 0, 0] < 0, -1.0, 1.0)[:, None]  # (cos b, sin b), cos b >= 0
    b = np.arctan2(normal[:, 1], normal[:, 0])
    along = targets[..., 0] * -np.sin(b)[:, None] + targets[..., 1] * np.cos(b)[:, None]  # (M, 3)
    bones_along = np.diff(along, axis=1, prepend=0.0)
    bones_up = np.diff(targets[..., 2], axis=1, prepend=0.0)
    phi = np.arctan2(bones_up, bones_along)  # (M, 3) elevation of each bone
    flex = np.diff(phi, axis=1, prepend=0.0)
    flex = (flex + np.pi) % (2 * np.pi) - np.pi
    return np.rad2deg(np.stack([flex[:, 0], -b, flex[:, 1], flex[:, 2]], 1))


def _chain_jacobian(angles_deg: np.ndarray, length_mm: np.ndarray) -> np.ndarray:
    """d(joints 2-4 of :func:`_chain_local`) / d(angles in deg): (M, 4), (M, 3) -> (M, 3, 3, 4)."""
    a = np.deg2rad(angles_deg)
    b = -a[:, 1]
    phi = np.cumsum(np.stack([a[:, 0], a[:, 2], a[:, 3]], -1), axis=-1)  # (M, 3)
    sb, cb = np.sin(b)[:, None], np.cos(b)[:, None]
    sphi, cphi = np.sin(phi), np.cos(phi)
    # per bone j: d(bone vector)/d(phi_j) and d(bone vector)/d(b), (M, 3 bones, 3 xyz)
    t_phi = length_mm[..., None] * np.stack([sb * sphi, -cb * sphi, cphi], -1)
    t_b = length_mm[..., None] * np.stack([-cb * cphi, -sb * cphi, np.zeros_like(cphi)], -1)
    c_phi = np.cumsum(t_phi, axis=1)  # joint k moves with every bone j <= k
    c_b = np.cumsum(t_b, axis=1)
    # phi_j = a0 + [j >= 2] a2 + [j >= 3] a3: joint k's sum over bones j in that range
    d_a0 = c_phi
    d_a2 = c_phi - t_phi[:, :1]
    d_a3 = c_phi - np.cumsum(t_phi[:, :2], axis=1)[:, [0, 1, 1]]
    d_a2[:, 0] = 0.0
    d_a3[:, :2] = 0.0
    return np.stack([d_a0, -c_b, d_a2, d_a3], -1) * (np.pi / 180.0)


def _solve_chains(targets: np.ndarray, length_mm: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Chain angles (M, 4) deg fitting joints 2-4 (M, 3, 3) in rest frames, within [low, high] (M, 4)."""
    pull = np.array([0.0, _ABDUCTION_PULL, 0.0, 0.0])
    pull_jac = np.broadcast_to(np.diag(pull)[1:2], (len(targets), 1, 4))

    def residual(angles: np.ndarray) -> np.ndarray:  # (M, 4) -> (M, 10)
        r = (_chain_local(angles, length_mm) - targets).reshape(len(angles), 9)
        return np.concatenate([r, angles[:, 1:2] * _ABDUCTION_PULL], 1)

    def jacobian(angles: np.ndarray) -> np.ndarray:  # (M, 10, 4)
        return np.concatenate([_chain_jacobian(angles, length_mm).reshape(len(angles), 9, 4), pull_jac], 1)

    return _levenberg_marquardt(residual, _chain_init(targets), low, high, _CHAIN_ITERATIONS, 1e-4, jacobian)


def _pose_chains(joints: np.ndarray, targets: np.ndarray, base: np.ndarray, length: np.ndarray, cup: np.ndarray,
                 rot: np.ndarray, trans: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chain angles (N, 5, 4) within the limits for ``targets`` (N, 5, 3, 3: each chain's three joints
    after its base, in its rest frame), the fitted joints (N, 21, 3) in the given frame
    (``x = R fk + t``) and the mean residual (N,) against ``joints``."""
    n = len(joints)
    low = np.broadcast_to(LIMITS_DEG[..., 0], (n, 5, 4)).reshape(-1, 4)
    high = np.broadcast_to(LIMITS_DEG[..., 1], (n, 5, 4)).reshape(-1, 4)
    angles = _solve_chains(targets.reshape(-1, 3, 3), length.reshape(-1, 3), low, high).reshape(n, 5, 4)
    fitted = forward_kinematics_batch(base, length, angles, cup) @ rot.swapaxes(1, 2) + trans[:, None]
    return angles, fitted, np.linalg.norm(fitted - joints, axis=-1).mean(1)


def _fit_right(joints: np.ndarray, roll: bool) -> IKBatch:
    """Fit right hands to (N, 21, 3) joints (any frame)."""
    n = len(joints)
    rot, palm_scale, cup = _palm_frame(joints)
    wrist = joints[:, 0]
    hand = (joints - wrist[:, None]) @ rot  # R^T (x - wrist), (N, 21, 3)
    roll_deg = _frame_roll(hand, cup) if roll else np.zeros(n)
    rot = rot @ _rot_y(roll_deg)
    hand = hand @ _rot_y(roll_deg)
    base = hand[:, _CHAIN_JOINTS[:, 0]].copy()  # (N, 5, 3)
    base[..., 2] -= cup[:, None] * CUP_BASE_Z_MM  # forward kinematics adds the cup's lift back
    chain = hand[:, _CHAIN_JOINTS]  # (N, 5, 4, 3)
    length = np.linalg.norm(np.diff(chain, axis=2), axis=-1)  # (N, 5, 3)
    # the three joints after each base, in its chain's rest frame: A^T (p - base)
    targets = (chain[:, :, 1:] - chain[:, :, :1]) @ rest_frames(cup)
    angles, fitted, residual = _pose_chains(joints, targets, base, length, cup, rot, wrist)
    return IKBatch(angles, cup, base, length, palm_scale, roll_deg, rot, wrist.copy(), np.zeros(n, dtype=bool),
                   residual, fitted)


def _kabsch(model: np.ndarray, given: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rigid (R (N, 3, 3), t (N, 3)) minimizing sum |R m + t - g|^2 over points (N, P, 3)."""
    mc, gc = model.mean(1), given.mean(1)
    u, _, vt = np.linalg.svd((model - mc[:, None]).swapaxes(1, 2) @ (given - gc[:, None]))
    d = np.sign(np.linalg.det(u @ vt))
    ones = np.ones(len(model))
    rot = (vt.swapaxes(1, 2) * np.stack([ones, ones, d], 1)[:, None]) @ u.swapaxes(1, 2)
    return rot, gc - (rot @ mc[..., None])[..., 0]


def _fit_right_fixed(joints: np.ndarray, base: np.ndarray, length: np.ndarray, cup: np.ndarray) -> IKBatch:
    """Fit right hands of one shape (chain bases (N, 5, 3), bones (N, 5, 3), cup (N,)) to joints (N, 21, 3):
    the rigid frame by Kabsch on the wrist and the four finger MCPs, then the chains."""
    n = len(joints)
    lifted = base + cup[:, None, None] * np.array([0.0, 0.0, 1.0]) * CUP_BASE_Z_MM[:, None]  # (N, 5, 3)
    palm = np.concatenate([np.zeros((n, 1, 3)), lifted[:, 1:]], 1)  # wrist (the origin) + finger MCPs
    rot, trans = _kabsch(palm, joints[:, np.r_[0, _FINGER_MCP]])
    hand = (joints - trans[:, None]) @ rot  # R^T (x - t)
    targets = (hand[:, _CHAIN_JOINTS[:, 1:]] - lifted[:, :, None]) @ rest_frames(cup)  # (N, 5, 3, 3)
    angles, fitted, residual = _pose_chains(joints, targets, base, length, cup, rot, trans)
    palm_scale = np.full((n, 2), np.nan)  # not a parameter here: the bases are given
    return IKBatch(angles, cup.copy(), base.copy(), length.copy(), palm_scale, np.zeros(n), rot, trans,
                   np.zeros(n, dtype=bool), residual, fitted)


def _mirror_batch(fit: IKBatch) -> IKBatch:
    """A right-hand fit of mirrored joints -> the left-hand fit of the joints as given."""
    m = hm.MIRROR_X
    return IKBatch(fit.chain_deg, fit.cup, fit.base_xyz_mm, fit.bone_length_mm, fit.palm_scale, fit.roll_deg,
                   m @ fit.rotation @ m, fit.translation @ m, ~fit.mirrored, fit.residual_mm, fit.joints_xyz @ m)


def _select(a: IKBatch, b: IKBatch, take_b: np.ndarray) -> IKBatch:
    def pick(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.where(take_b.reshape((-1,) + (1,) * (x.ndim - 1)), y, x)

    return IKBatch(*(pick(getattr(a, f), getattr(b, f)) for f in IKBatch.__dataclass_fields__))


# --------------------------------------------------------------------------- public API

def fit_poses(joints_xyz: np.ndarray, mirrored: bool | None = None, roll: bool = True) -> IKBatch:
    """Fit the kinematic hand to N skeletons (N, 21, 3), canonical order, mm, any frame.

    ``mirrored``: False fits right hands, True left hands, None (default) both, keeping the lower
    residual per skeleton. ``roll``: let the hand frame roll against the palm's frame (step 2 of the
    module docstring); False keeps the palm's frame. About 0.6 ms per skeleton and handedness on one
    x86_64 core."""
    joints = np.asarray(joints_xyz, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (21, 3):
        raise ValueError(f"joints_xyz must be (N, 21, 3) canonical joints, got {joints.shape}")
    if not np.all(np.isfinite(joints)):
        raise ValueError("joints_xyz holds NaN or inf")
    if len(joints) > _CHUNK:  # bounded memory: the roll search holds (chunk, 13, 5, 3, 3) arrays
        parts = [fit_poses(joints[i:i + _CHUNK], mirrored, roll) for i in range(0, len(joints), _CHUNK)]
        return IKBatch(*(np.concatenate([getattr(p, f) for p in parts]) for f in IKBatch.__dataclass_fields__))
    if mirrored is False:
        return _fit_right(joints, roll)
    left = _mirror_batch(_fit_right(joints @ hm.MIRROR_X, roll))
    if mirrored is True:
        return left
    right = _fit_right(joints, roll)
    return _select(right, left, left.residual_mm < right.residual_mm)


def fit_pose(joints_xyz: np.ndarray, mirrored: bool | None = None, roll: bool = True) -> IKFit:
    """Fit the kinematic hand to one skeleton (21, 3), canonical order, mm, any frame. See :func:`fit_poses`."""
    joints = np.asarray(joints_xyz, dtype=np.float64)
    if joints.shape != (21, 3):
        raise ValueError(f"joints_xyz must be (21, 3) canonical joints, got {joints.shape}")
    return fit_poses(joints[None], mirrored, roll)[0]


def joint_angles_dict(pose: hm.HandPose) -> dict[str, float]:
    """The pose's angles by name (degrees): ``index_mcp_flexion``, ``thumb_cmc_abduction``, ... and
    ``wrist_flexion``, ``wrist_radial_deviation``; order as in :data:`ANGLE_NAMES`."""
    chain = np.asarray(pose.chain_deg, dtype=np.float64)
    if chain.shape != (5, 4):
        raise ValueError(f"pose.chain_deg must be (5, 4), got {chain.shape}")
    out = {name: float(chain[f, k]) for f, names in enumerate(ANGLE_NAMES) for k, name in enumerate(names)}
    out.update({name: float(v) for name, v in zip(WRIST_ANGLE_NAMES, pose.wrist_deg)})
    return out


def fit_sequence(joints_xyz: np.ndarray, mirrored: bool | None = None) -> IKBatch:
    """Fit one hand through a sequence of N skeletons (N, 21, 3): one shape for all frames, so every bone
    keeps its length, and per frame the pose and rigid frame.

    First each frame is fitted on its own (:func:`fit_poses`); the handedness (``mirrored=None``: the
    one with the lower summed residual), the chain bases, bone lengths and cup are the medians over the
    frames; then each frame's chains are solved again with that shape. The palm's arch (``cup``) is
    part of the shape here, so the palm's bones keep their lengths too. One frame is a sequence of one."""
    joints = np.asarray(joints_xyz, dtype=np.float64)
    if mirrored is None:
        fits = [fit_poses(joints, False), fit_poses(joints, True)]
        first = min(fits, key=lambda f: float(f.residual_mm.sum()))
        mirrored = bool(first.mirrored[0]) if len(first) else False
    else:
        first = fit_poses(joints, mirrored)
    n = len(joints)
    base = np.broadcast_to(np.median(first.base_xyz_mm, 0), (n, 5, 3)).copy()
    length = np.broadcast_to(np.median(first.bone_length_mm, 0), (n, 5, 3)).copy()
    cup = np.full(n, float(np.median(first.cup)))
    if not mirrored:
        return _fit_right_fixed(joints, base, length, cup)
    return _mirror_batch(_fit_right_fixed(joints @ hm.MIRROR_X, base, length, cup))
