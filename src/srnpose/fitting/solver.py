"""The fit's start (a fast inverse kinematics) and its solver (batched, projected Levenberg-Marquardt).

**Start.** :func:`start_from_joints` turns the network's 21 joints into the kinematic hand's shape,
angles and rigid frame, as :func:`srnpose.hand.ik.fit_poses` does but in its closed-form steps only (a
few alternating Procrustes and palm-scale solves for the palm frame, the analytic chain angles of
:func:`srnpose.hand.ik._chain_init` clamped into the joint limits), about 1 ms instead of 50 for one
skeleton: the fit's own steps refine the angles against the depth anyway. The chain bases are the
engine's palm (:data:`~srnpose.hand.kinematics.BASE_XYZ_MM`) at the fitted palm scale, not the network's
MCPs and thumb base (a wrong thumb starts from a wrong base, which the fit could not move); the
bone lengths are the network's.

**Solver.** Why Levenberg-Marquardt and not a first-order method: the energy is a sum of squares over
33 parameters per hand whose scales differ by orders (radians, mm, degrees, log scales); a Gauss-Newton
step with Marquardt's diagonal scaling lands near the minimum in a few steps where Adam needs tens to
hundreds and a learning rate per parameter kind. The Jacobian comes from forward differences, all
columns in one batched numpy pass of :mod:`srnpose.fitting.energy` (at these sizes the number of array
operations, not their size, sets the cost; torch's autodiff costs 5-50x more per operation here). The
columns are *coloured*: a finger's residuals (its points, samples and joints) depend on its own angles
only, so one column nudges angle k of all five fingers at once and each row takes the derivative of its
own finger; another nudges all five finger lengths. 14 columns give all 33 derivatives. The two linear
terms (prior, scales) get their exact Jacobian. Each step is kept only where it lowers that frame's
exact energy; the angles are clamped into the joint limits after every step.
"""

from __future__ import annotations

import numpy as np
import torch

from srnpose.fitting import energy as en
from srnpose.hand import kinematics as hm
from srnpose.hand import torch_hand as th
from srnpose.synth.poses import LIMITS_DEG

__all__ = ["Start", "start_from_joints", "hand_model", "Problem", "levenberg_marquardt"]

_PALM_ITERATIONS = 4  # alternating Procrustes / palm-scale solves (ik._palm_frame's start)
_FINGER_MCP = np.array([5, 9, 13, 17])
# Finger (0-4, -1 the palm) of each joint's three coordinates: the init and temporal terms' rows.
_JOINT_FINGER = np.repeat(np.array([-1] + [f for f in range(5) for _ in range(4)]), 3)
_H_RIGID = np.array([1e-6] * 3 + [1e-4] * 3)  # forward-difference steps: rotation rad, translation mm
_H_SCALE, _H_ANGLE, _H_LENGTH = 1e-6, 1e-4, 1e-6  # log scale, deg, log length


class Start:
    """The kinematic hand at the network's joints: shape, cup, angles and rigid frame (batched)."""

    def __init__(self, base_xyz_mm, bone_length_mm, palm_scale, cup, chain_deg, rotation, translation, mirrored):
        self.base_xyz_mm = base_xyz_mm  # (B, 5, 3)
        self.bone_length_mm = bone_length_mm  # (B, 5, 3)
        self.palm_scale = palm_scale  # (B, 2) sx, sy
        self.cup = cup  # (B,)
        self.chain_deg = chain_deg  # (B, 5, 4)
        self.rotation = rotation  # (B, 3, 3)
        self.translation = translation  # (B, 3)
        self.mirrored = mirrored  # (B,) bool

    def __len__(self) -> int:
        return len(self.cup)


def _palm_frame(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MCPs relative to the wrist (B, 4, 3) -> rotation (B, 3, 3), sx, sy (B,): :func:`srnpose.hand.ik.palm_procrustes`
    (ik's start), the scales clipped."""
    from srnpose.hand.ik import palm_procrustes

    rot, sx, sy = palm_procrustes(q, _PALM_ITERATIONS)
    return rot, np.clip(sx, 0.3, 3.0), np.clip(sy, 0.3, 3.0)


def start_from_joints(joints_xyz: np.ndarray, mirrored: bool | np.ndarray = False) -> Start:
    """The closed-form inverse kinematics of B skeletons (B, 21, 3) (see the module notes); ``mirrored``
    (one for all or (B,)): left hands, fitted as the mirror image of right ones (:func:`srnpose.hand.ik.fit_poses`'
    convention)."""
    from srnpose.hand.ik import _chain_init

    n = len(joints_xyz)
    left = np.broadcast_to(np.asarray(mirrored, dtype=bool), (n,))
    m = np.where(left[:, None, None], hm.MIRROR_X, np.eye(3))  # (B, 3, 3)
    joints = np.asarray(joints_xyz, dtype=np.float64) @ m
    wrist = joints[:, 0]
    rot, sx, sy = _palm_frame(joints[:, _FINGER_MCP] - wrist[:, None])
    hand = (joints - wrist[:, None]) @ rot  # R^T (x - wrist)
    base = hm.BASE_XYZ_MM * np.stack([sx, sy, sy], 1)[:, None]  # (B, 5, 3) the engine's palm, this size
    chain = np.concatenate([base[:, :, None], hand[:, hm.CHAIN_JOINTS[:, 1:]]], 2)  # (B, 5, 4, 3)
    length = np.maximum(np.linalg.norm(np.diff(chain, axis=2), axis=-1), 1.0)  # (B, 5, 3)
    targets = (chain[:, :, 1:] - base[:, :, None]) @ hm.rest_frames(np.zeros(n))  # rest frames
    angles = _chain_init(targets.reshape(-1, 3, 3)).reshape(-1, 5, 4)
    angles = np.clip(angles, LIMITS_DEG[..., 0], LIMITS_DEG[..., 1])
    return Start(base, length, np.stack([sx, sy], 1), np.zeros(n), angles, m @ rot @ m,
                 (wrist[:, None] @ m)[:, 0], left.copy())


def hand_model(start: Start, joints_init: np.ndarray) -> tuple[en.HandModel, np.ndarray]:
    """The :class:`~srnpose.fitting.energy.HandModel` (float64 numpy) and the starting parameters
    (B, NUM_PARAMS) of a :class:`Start`."""
    b = len(start)
    sx, sy = start.palm_scale[:, 0], start.palm_scale[:, 1]
    shape = th.HandShapeArrays(np.array(start.base_xyz_mm, dtype=np.float64),
                               np.array(start.bone_length_mm, dtype=np.float64),
                               hm.RADIUS_MM[None] * sy[:, None, None], np.stack([sx, sy, sy], 1), 19.0 * sy)
    mirror = np.ones((b, 3))
    mirror[np.asarray(start.mirrored, dtype=bool), 0] = -1.0
    cup = np.array(start.cup, dtype=np.float64)
    x0 = np.zeros((b, en.NUM_PARAMS))
    x0[:, en.ANGLES] = np.asarray(start.chain_deg).reshape(b, 20)
    palm = th.palm_cones(shape, th.forward_kinematics(shape.base_xyz_mm, shape.bone_length_mm,
                                                      x0[:, en.ANGLES].reshape(b, 5, 4), cup))
    forearm = th.forearm_cones(shape)[:, ::2]  # (B, 2, 8): each side's segment at the wrist
    model = en.HandModel(shape, cup, np.array(start.rotation, dtype=np.float64),
                         np.array(start.translation, dtype=np.float64), mirror,
                         np.array(joints_init, dtype=np.float64), np.zeros((b, 21, 3)), np.zeros(b), palm,
                         np.ascontiguousarray(forearm))
    return model, x0


def clamp_angles(x: np.ndarray) -> np.ndarray:
    out = x.copy()
    out[:, en.ANGLES] = th.clamp_to_limits(x[:, en.ANGLES].reshape(-1, 5, 4)).reshape(-1, 20)
    return out


def _column_steps() -> np.ndarray:
    """(14, NUM_PARAMS): x itself, the 6 rigid nudges, the scale, 4 angle colours, the lengths, the width."""
    steps = np.zeros((14, en.NUM_PARAMS))
    steps[np.arange(1, 7), np.arange(6)] = _H_RIGID
    steps[7, en.LOG_SCALE] = _H_SCALE
    for k in range(4):
        steps[8 + k, 6 + k: 26: 4] = _H_ANGLE  # angle k of every finger
    steps[12, en.LENGTHS] = _H_LENGTH
    steps[13, en.LOG_WIDTH] = _H_SCALE
    return steps


class Problem:
    """One batch's residuals and their Jacobian by coloured forward differences (module notes)."""

    def __init__(self, model: en.HandModel, targets: en.FrameTargets, weights: en.EnergyWeights,
                 free: np.ndarray) -> None:
        self.model, self.targets, self.weights = model, targets, weights
        self.model_cols, self.targets_cols = model.columns(), targets.columns()
        self.steps = _column_steps()
        self.free = free  # (NUM_PARAMS,) 1 = fitted, 0 = held
        self.visible = None  # the front points the model does not hide, from the first evaluation on
        self.pose = None  # the hand (Posed, B) at the last evaluated x
        self._fingers_key = None  # _row_fingers' fixed rows, made once (with _fingers_rest, _linear_rows,
        # _cone_finger)
        _, whiten = en.pose_prior_gaussian(weights.prior_floor_deg)
        self.prior_jac = whiten * np.sqrt(weights.prior)  # (20, 20)
        self.scale_jac = np.sqrt(weights.scale) / en.scale_sigmas(weights)  # (7,)

    def evaluate(self, x: np.ndarray, jacobian: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Residuals (B, R) at x with its exact links, and their Jacobian (B, R, P) (None without)."""
        if not jacobian:
            pose = self.pose = en.posed(self.model, x)
            links = en.links_at(pose, self.targets, self.visible)
            return np.concatenate(list(en.residual_terms(self.model, self.targets, x, pose, self.weights,
                                                         links).values()), -1), None
        cols = x[:, None, :] + self.steps  # (B, C, P)
        pose = en.posed(self.model_cols, cols)
        self.pose = pose.column(0)  # x itself: the first column's step is 0
        links = en.links_at(self.pose, self.targets, self.visible)
        self.visible = links.visible  # decided once, at the start: it changes little and costs
        terms = en.residual_terms(self.model_cols, self.targets_cols, cols, pose, self.weights, links)
        r = np.concatenate(list(terms.values()), -1)  # (B, C, R)
        self.sizes = {name: t.shape[-1] for name, t in terms.items()}
        return r[:, 0], self._jacobian(r, terms, links)

    def term_energies(self, r: np.ndarray) -> dict[str, np.ndarray]:
        """Each term's energy (B,) from a residual vector (B, R) of :meth:`evaluate`."""
        at = np.cumsum([0] + list(self.sizes.values()))
        return {name: (r[:, at[i]:at[i + 1]] ** 2).sum(1) for i, name in enumerate(self.sizes)}

    def _jacobian(self, r: np.ndarray, terms: dict, links: en.Links) -> np.ndarray:
        b, _, rows = r.shape
        diff = r[:, 1:] - r[:, :1]  # (B, 13, R)
        finger = self._row_fingers(terms, links)  # (B, R)
        onehot = (finger[..., None] == np.arange(5)).astype(np.float64)  # (B, R, 5)
        jac = np.empty((b, rows, en.NUM_PARAMS))  # every column is written below
        jac[:, :, 0:6] = diff[:, 0:6].swapaxes(1, 2) / _H_RIGID
        jac[:, :, en.LOG_SCALE] = diff[:, 6] / _H_SCALE
        angles = diff[:, 7:11].swapaxes(1, 2) / _H_ANGLE  # (B, R, 4): colour k
        jac[:, :, en.ANGLES] = (onehot[..., None] * angles[:, :, None, :]).reshape(b, rows, 20)
        jac[:, :, en.LENGTHS] = onehot * (diff[:, 11] / _H_LENGTH)[..., None]
        jac[:, :, en.LOG_WIDTH] = diff[:, 12] / _H_SCALE
        prior, scale = self._linear_rows
        jac[:, prior] = 0.0
        jac[:, prior, en.ANGLES] = self.prior_jac
        jac[:, scale] = 0.0
        jac[:, scale, en.LOG_SCALE:] = np.diag(self.scale_jac)
        if not self.free.all():
            jac *= self.free
        return jac

    def _row_fingers(self, terms: dict, links: en.Links) -> np.ndarray:
        """(B, R): the finger (0-4; -1 none) whose angles and length move each residual."""
        key = tuple((name, t.shape[-1]) for name, t in terms.items())
        if self._fingers_key != key:  # the rows after the data term's, the linear terms' rows: fixed per problem
            self._fingers_key, self._fingers_rest = key, self._static_fingers(terms, len(links.nearest))
            at = np.cumsum([0] + [size for _, size in key])
            names = [name for name, _ in key]
            self._linear_rows = tuple(slice(at[names.index(n)], at[names.index(n) + 1]) for n in ("prior", "scale"))
            self._cone_finger = np.concatenate([th.CONE_FINGER, np.full(self.model.forearm.shape[1], -1)])
        return np.concatenate([self._cone_finger[links.nearest], self._fingers_rest], 1)

    def _static_fingers(self, terms: dict, b: int) -> np.ndarray:
        """(B, R - N): :meth:`_row_fingers` of the rows after the data term's (which comes first)."""
        if next(iter(terms)) != "data":
            raise ValueError("the data term's rows must come first")
        cone_finger = th.CONE_FINGER
        parts = {"silhouette": np.tile(np.tile(cone_finger, 9), (b, 1)),
                 "free_space": np.tile(np.tile(cone_finger, 3), (b, 1)),
                 "surface": np.tile(np.tile(cone_finger, 3), (b, 1)),
                 "init": np.tile(_JOINT_FINGER, (b, 1)), "temporal": np.tile(_JOINT_FINGER, (b, 1)),
                 "trust": np.tile(_JOINT_FINGER[::3], (b, 1))}
        return np.concatenate([parts.get(name, np.full((b, t.shape[-1]), -1)) for name, t in terms.items()
                               if name != "data" and t.shape[-1]], 1)  # a term without rows: none


def _normal_equations(jac: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """J^T J (B, P, P) and J^T r (B, P), in torch on its own thread setting: numpy's BLAS may spin
    many threads on a (32 x 700) product and take 100x longer on a busy machine."""
    j = torch.from_numpy(jac)
    jtj = (j.transpose(1, 2) @ j).numpy()
    grad = (j.transpose(1, 2) @ torch.from_numpy(r)[..., None])[..., 0].numpy()
    return jtj, grad


def _where_pose(better: np.ndarray, a: en.Posed, b: en.Posed) -> en.Posed:
    """Per frame (B,): a where ``better``, else b."""
    return en.Posed(*(np.where(better.reshape((-1,) + (1,) * (u.ndim - 1)), u, v)
                      for u, v in zip((a.joints, a.cones, a.front, a.rims), (b.joints, b.cones, b.front, b.rims))))


def levenberg_marquardt(problem: Problem, x0: np.ndarray, iterations: int,
                        damping: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``iterations`` batched, projected Levenberg-Marquardt steps from x0 (B, NUM_PARAMS): each frame
    keeps a step only where it lowers that frame's exact energy; the angles are clamped into the joint
    limits after every step. Returns x and the residuals (B, R) at the start and at x; the hands
    (:class:`~srnpose.fitting.energy.Posed`) there are left in ``problem.pose_start`` and ``problem.pose``."""
    eye = np.eye(en.NUM_PARAMS)
    held = np.diag(1.0 - problem.free)  # a parameter held fixed: its step solves to 0
    x = clamp_angles(x0)
    r, jac = problem.evaluate(x)
    r_start = r
    pose = problem.pose_start = problem.pose
    energy = (r * r).sum(1)
    lam = np.full(len(x), float(damping))
    for it in range(iterations):
        jtj, grad = _normal_equations(jac, r)
        diag = np.einsum("bii->bi", jtj)
        damped = jtj + lam[:, None, None] * (diag[:, :, None] * eye) + 1e-6 * eye + held
        step = torch.linalg.solve(torch.from_numpy(damped), torch.from_numpy(-grad)).numpy()
        trial = clamp_angles(x + step)
        r_trial, jac_trial = problem.evaluate(trial, jacobian=it < iterations - 1)
        trial_energy = (r_trial * r_trial).sum(1)
        better = trial_energy < energy
        x = np.where(better[:, None], trial, x)
        pose = _where_pose(better, problem.pose, pose)
        r = np.where(better[:, None], r_trial, r)
        if jac_trial is not None:
            jac = np.where(better[:, None, None], jac_trial, jac)
        energy = np.where(better, trial_energy, energy)
        lam = np.clip(np.where(better, lam * 0.3, lam * 8.0), 1e-6, 1e6)
    problem.pose = pose
    return x, r_start, r
