"""The fitting energy: how badly the articulated hand (:mod:`srnpose.hand.torch_hand`) explains one depth frame.

Parameters per frame, a vector ``x`` (:data:`NUM_PARAMS`): a rotation vector (rad) applied after the
starting rotation (``R = R0 @ rodrigues(w)``, hand frame), a translation (mm) added to the starting
one, the 20 chain angles (deg, :class:`~srnpose.hand.kinematics.HandPose`), the log of a uniform
scale of the hand about its wrist, the log of each finger's length scale (networks trained on
synthetic hands stop real fingertips short) and the log of the palm's width scale (they bunch real
fingers together). The rest of the shape (radii, the palm's proportions), the cup and the handedness
stay as the start gives them (:class:`HandModel`).

Terms, each a vector of residuals whose squares sum to the term's energy (so Gauss-Newton can use them):

* **data**: each of the hand's measured points (:mod:`srnpose.fitting.targets`) to the model's
  surface: the signed distance to the nearest round cone (the forearm's first cones included, wrist
  straight: the selection keeps points up to the wrist, where the synthetic and real wrists are as
  thick as the forearm, not as the palm), through a Geman-McClure kernel of scale
  :attr:`EnergyWeights.data_sigma_mm` (``rho(d) = s^2 d^2 / (s^2 + d^2)``: quadratic near the surface,
  flat beyond a few ``s``), so that points of the forearm, a held object or the other hand that the
  selection let through stop pulling once they are far from the model;
* **silhouette**: points sampled on the model (each cone's front point and two rim points at three
  places along it) must not project onto the measured background: their distance (mm at their depth)
  to the nearest cell that is not background beyond :attr:`EnergyWeights.silhouette_tolerance_mm`
  (cells without a measurement do not count as background: thin fingertips often return none);
* **free space**: the same front points must not lie in front of the measured surface by more than
  :attr:`EnergyWeights.free_space_tolerance_mm`: the camera saw through that space. The surface is the
  silhouette's depth, off the silhouette that of its nearest silhouette cell, and at each cell the
  nearest of its 3 x 3 neighbours (so a finger's edge is not pushed back by the background beside it),
  read bilinearly: smooth in the point's position, which Gauss-Newton needs;
* **surface**: the finger bones' front points that the model itself does not hide (:func:`links_at`)
  and that fall on the silhouette must lie on the measured surface (not eroded), Geman-McClure of
  scale :attr:`EnergyWeights.surface_sigma_mm` (not the palm's: its cones lie inside a smooth slab,
  their front points 5-8 mm behind its surface): the data term measures the
  camera's points to the model, this the model's visible points to the camera's surface, so a finger
  cannot hide behind the measured hand (the cheap way out of the silhouette term for a finger too long
  is to bend it away from the camera);
* **init**: each joint to the network's joint, Geman-McClure of scale :attr:`EnergyWeights.init_sigma_mm`:
  a faint pull that only decides where the depth does not (a finger hidden behind the palm or an object);
* **trust**: no joint further than :attr:`EnergyWeights.trust_radius_mm` from the network's (a
  quadratic wall beyond it): the fit refines the network's hand where the depth shows it better, it
  does not search the frame for another; without it a finger the depth cannot see (bent away from the
  camera, behind the palm) drifts wherever it costs least;
* **prior**: the chain angles against a Gaussian of the real hands' angles (``pose_prior.npz``,
  :func:`pose_prior_gaussian`), whitened;
* **temporal** (sequences): each joint to the previous frame's fitted joint;
* **scale**: the log scales (hand, fingers, palm width) against 0.

The joint limits are not a term: the solver clamps the angles into them after every step
(:func:`srnpose.hand.torch_hand.clamp_to_limits`), so no fit ever leaves them.

Everything runs on numpy arrays (the solver) or torch tensors (autograd) alike, with leading dims
``(B,)`` or, for the solver's finite differences, ``(B, C)`` (:meth:`HandModel.columns`). One thing is
held fixed while a step linearizes the energy (:class:`Links`, the ICP idea): the cone each measured
point is measured to, and which front points the model hides; without them (``links=None``) they are
computed at x.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from srnpose.hand import torch_hand as th
from srnpose.hand.torch_hand import array_module

__all__ = ["NUM_PARAMS", "ANGLES", "LOG_SCALE", "LENGTHS", "LOG_WIDTH", "TERMS", "EnergyWeights", "HandModel", "FrameTargets", "Links",
           "Posed", "pose_prior_gaussian", "posed", "links_at", "residual_terms", "residuals", "energy_terms"]

ANGLES = slice(6, 26)  # x[..., 6:26]: the chain angles (5, 4) deg
LOG_SCALE = 26  # the log of the hand's uniform scale
LENGTHS = slice(27, 32)  # the log of each finger's length scale (its three bones), thumb .. little
LOG_WIDTH = 32  # the log of the palm's width scale (x of the chain bases and the palm's cones)
NUM_PARAMS = 33
TERMS = ("data", "silhouette", "free_space", "surface", "init", "trust", "prior", "temporal", "scale")
_SAMPLE_T = (0.0, 0.5, 1.0)  # where along each cone the silhouette's sample spheres sit
_RIM = 0.7  # rim points at this share of the radius beside the axis (flying pixels thin real edges)


@dataclass(frozen=True)
class EnergyWeights:
    """Weights and scales of the terms (see the module notes). Energies are in mm^2: each term's
    residuals are normalized by its count, so a weight says how many mm^2 of mean squared data
    distance one unit of that term is worth."""

    data: float = 1.0
    data_sigma_mm: float = 12.0  # beyond ~3 sigma a point stops pulling (a finger's width)
    silhouette: float = 1.0
    silhouette_tolerance_mm: float = 2.0  # flying pixels and the grid's resampling thin the real edge
    free_space: float = 1.0
    free_space_tolerance_mm: float = 6.0  # sensor noise; the cones' fronts are smooth approximations
    surface: float = 1.0
    surface_sigma_mm: float = 15.0
    init: float = 0.02
    init_sigma_mm: float = 30.0
    trust: float = 1.0
    trust_radius_mm: float = 30.0  # the shipped model's typical joint error on real frames: 15-30 mm
    prior: float = 0.05  # per whitened unit^2 (one standard deviation of each principal direction)
    prior_floor_deg: float = 8.0  # no principal direction of the prior is stiffer than this
    temporal: float = 0.0  # sequences: fit_sequence_frames sets it
    temporal_sigma_mm: float = 10.0
    scale: float = 1.0
    scale_sigma: float = 0.08  # log scale: +-8 % from the start's hand size per standard deviation
    length_sigma: float = 0.08  # log finger length scales, the same
    width_sigma: float = 0.1  # log palm width scale


def _columns(obj: Any) -> Any:
    """A dataclass of arrays with a column axis inserted after the batch axis (``a[:, None]``)."""
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = _columns(value) if dataclasses.is_dataclass(value) else value[:, None]
    return type(obj)(**out)


@dataclass(frozen=True)
class HandModel:
    """What the fit keeps fixed per frame (batched, B): the shape, cup, handedness and starting frame."""

    shape: th.HandShapeArrays  # (B, ...)
    cup: Any  # (B,)
    rotation0: Any  # (B, 3, 3) hand frame -> camera, after the mirror
    translation0: Any  # (B, 3) the wrist, camera frame
    mirror: Any  # (B, 3): (-1, 1, 1) for a left hand (x mirrored in the hand frame), else ones
    joints_init: Any  # (B, 21, 3) the network's joints, camera frame
    joints_prev: Any  # (B, 21, 3) the previous frame's fitted joints (temporal term)
    prev_mask: Any  # (B,) 1.0 where joints_prev holds a frame
    palm: Any  # (B, 8, 8) the palm's cones in the hand frame (torch_hand.palm_cones): fixed with the shape
    forearm: Any  # (B, F, 8) the forearm's first cones in the hand frame, wrist straight: data term only

    def columns(self) -> HandModel:
        """Every array with a column axis after the batch: (B, 1, ...), broadcasting over x (B, C, P)."""
        return _columns(self)


@dataclass(frozen=True)
class FrameTargets:
    """Batched targets of B frames (:func:`srnpose.fitting.targets.stack_targets`)."""

    points: Any  # (B, N, 3) mm, camera frame; padded rows are 0
    point_mask: Any  # (B, N) 1.0 for a real point
    depth_grid: Any  # (B, G, G) mm, 0 = no measurement
    filled_grid: Any  # (B, G, G) mm: the silhouette's depth, off it the nearest silhouette cell's
    surface_grid: Any  # (B, G, G) mm: filled_grid eroded over 3 x 3 cells, the free-space term's surface
    silhouette: Any  # (B, G, G) 1.0 for a silhouette cell
    distance_grid: Any  # (B, G, G) cells to the nearest cell that is not measured background (0 on it)
    window: Any  # (B, 3) u0, v0 (frame px of the window's corner) and step (frame px per cell)
    intrinsics: Any  # (B, 4) fx, fy, cx, cy

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def columns(self) -> FrameTargets:
        """Points, mask, window and intrinsics as (B, 1, ...); the grids stay (B, G, G)."""
        return dataclasses.replace(self, points=self.points[:, None], point_mask=self.point_mask[:, None],
                                   window=self.window[:, None], intrinsics=self.intrinsics[:, None])


@dataclass(frozen=True)
class Links:
    """What a step holds fixed (see the module notes): (B, N) nearest cone per measured point, (B, S)
    1.0 where a front point is not hidden by the model itself."""

    nearest: Any
    visible: Any


@lru_cache(maxsize=4)
def pose_prior_gaussian(floor_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """``(mean (20,), whitening (20, 20))`` of the real hands' chain angles (``pose_prior.npz``, the rows
    re-coupled as the engine's ``prior`` family uses them): ``whitening @ (angles - mean)`` has unit
    covariance, each principal variance floored at ``floor_deg^2``."""
    from srnpose.synth.poses import load_pose_prior, prior_chain

    table = load_pose_prior().chain_deg.astype(np.float64)
    angles = np.stack([prior_chain(row) for row in table]).reshape(len(table), 20)
    mean = angles.mean(0)
    values, vectors = np.linalg.eigh(np.cov(angles, rowvar=False))
    values = np.maximum(values, floor_deg ** 2)
    return mean, (vectors / np.sqrt(values)).T


def scale_sigmas(weights: EnergyWeights) -> np.ndarray:
    """(NUM_PARAMS - LOG_SCALE,) the scale term's standard deviation of each log scale parameter."""
    return np.array([weights.scale_sigma] + [weights.length_sigma] * 5 + [weights.width_sigma])


def _geman_mcclure(r: Any, sigma: float) -> Any:
    """Residuals whose squares are Geman-McClure's ``s^2 r^2 / (s^2 + r^2)`` of ``r`` (same shape)."""
    return sigma * r / array_module(r).sqrt(sigma * sigma + r * r)


def _geman_mcclure_vec(v: Any, sigma: float) -> Any:
    """Vectors (..., 3) shrunk so that their squared norms are Geman-McClure's of their norms."""
    n2 = (v * v).sum(axis=-1)[..., None]
    return v * (sigma / array_module(v).sqrt(sigma * sigma + n2))


@dataclass(frozen=True)
class Posed:
    """The hand at parameters x, camera frame: joints, cones and the points the camera would see."""

    joints: Any  # (..., 21, 3)
    cones: Any  # (..., K + F, 8): the hand's K cones, then the forearm's F (the data term's only)
    front: Any  # (..., S, 3) each sample sphere's point nearest the camera, S = K * len(_SAMPLE_T)
    rims: Any  # (..., 2S, 3) points beside each sample sphere's axis

    def column(self, c: int) -> Posed:
        """Column c of a solver's (B, C, ...) batch."""
        return Posed(self.joints[:, c], self.cones[:, c], self.front[:, c], self.rims[:, c])


def posed(model: HandModel, x: Any) -> Posed:
    """The hand (:class:`Posed`) for parameters x (..., NUM_PARAMS)."""
    xp = array_module(x)
    lead = x.shape[:-1]
    chain = x[..., ANGLES].reshape(lead + (5, 4))
    width = xp.exp(x[..., LOG_WIDTH:LOG_WIDTH + 1])  # (..., 1)
    widen = xp.concatenate([width, width * 0.0 + 1.0, width * 0.0 + 1.0], axis=-1)  # (..., 3): x only
    shape = dataclasses.replace(model.shape, base_xyz_mm=model.shape.base_xyz_mm * widen[..., None, :],
                                palm_scale=model.shape.palm_scale * widen)
    lengths = shape.bone_length_mm * xp.exp(x[..., LENGTHS])[..., None]
    joints = th.forward_kinematics(shape.base_xyz_mm, lengths, chain, model.cup)
    widen_rows = xp.concatenate([widen, width * 0.0 + 1.0, widen, width * 0.0 + 1.0], axis=-1)[..., None, :]
    cones = th.hand_cones(shape, joints, fill=True, palm=model.palm * widen_rows)  # (..., K, 8), hand frame
    k = cones.shape[-2]
    cones = th._cat([cones, model.forearm * widen_rows], -2)
    scale = xp.exp(x[..., LOG_SCALE])[..., None, None]
    rot = model.rotation0 @ th.rodrigues(x[..., 0:3])
    trans = model.translation0 + x[..., 3:6]
    mirror = model.mirror * scale[..., 0]  # (..., 3): the mirror and the scale in one
    joints = th.place(joints, rot, trans, mirror)
    cones = th._cat([th.place(cones[..., 0:3], rot, trans, mirror), cones[..., 3:4] * scale,
                     th.place(cones[..., 4:7], rot, trans, mirror), cones[..., 7:8] * scale], -1)
    return Posed(joints, cones, *_samples(cones[..., :k, :]))


def _samples(cones: Any) -> tuple[Any, Any]:
    """Points on the model seen from the camera: front points (..., S, 3) (each sample sphere's point
    nearest the camera) and rim points (..., 2S, 3) beside the axis, S = K * len(_SAMPLE_T)."""
    xp = array_module(cones)
    a, ra, b, rb = cones[..., 0:3], cones[..., 3:4], cones[..., 4:7], cones[..., 7:8]
    t = th._const(np.repeat(_SAMPLE_T, cones.shape[-2])[:, None], cones)  # (S, 1), t-major
    a3, ra3 = xp.concatenate([a] * len(_SAMPLE_T), axis=-2), xp.concatenate([ra] * len(_SAMPLE_T), axis=-2)
    axis = xp.concatenate([b - a] * len(_SAMPLE_T), axis=-2)
    centres = a3 + t * axis  # (..., S, 3)
    radii = ra3 + t * xp.concatenate([rb - ra] * len(_SAMPLE_T), axis=-2)  # (..., S, 1)
    ray = centres / xp.sqrt((centres * centres).sum(axis=-1))[..., None]
    front = centres - radii * ray
    side = th._cross(ray, axis)
    side = side * (_RIM * radii / xp.sqrt((side * side).sum(axis=-1) + 1e-9)[..., None])
    return front, xp.concatenate([centres + side, centres - side], axis=-2)


def _cells(points: Any, targets: FrameTargets) -> tuple[Any, Any, Any]:
    """Continuous window cells (...) u, v (cell centres at integers) and depth z of points (..., 3)."""
    k = targets.intrinsics
    w = targets.window
    z = points[..., 2]
    inv = 1.0 / (th.clip(z, 1.0) * w[..., 2:3])
    gu = (points[..., 0] * k[..., 0:1] + (k[..., 2:3] - w[..., 0:1]) * z) * inv - 0.5
    gv = (points[..., 1] * k[..., 1:2] + (k[..., 3:4] - w[..., 1:2]) * z) * inv - 0.5
    return gu, gv, z


def _flat_offsets(like: Any, lead: tuple, per: int) -> Any:
    """(lead[0], ..., 1) integer offsets ``i * per`` of each leading element, kind of ``like``."""
    xp = array_module(like)
    count = int(np.prod(lead))
    offsets = xp.arange(count) * per if xp is np else torch_arange(like, count) * per
    return offsets.reshape(tuple(lead) + (1,))


def torch_arange(like: Any, count: int) -> Any:
    import torch

    return torch.arange(count, device=like.device)


def _lookup(grid: Any, flat_index: Any) -> Any:
    """grid (B, G, G) at flat cell indices (B, ...) -> (B, ...): one flat gather."""
    b, g2 = grid.shape[0], grid.shape[-1] * grid.shape[-2]
    if b == 1:
        return grid.reshape(-1)[flat_index]
    offsets = _flat_offsets(flat_index, (b,), g2).reshape((b,) + (1,) * (flat_index.ndim - 1))
    return grid.reshape(-1)[flat_index + offsets]


def _as_index(a: Any) -> Any:
    return a.astype(np.int64) if isinstance(a, np.ndarray) else a.long()


def _nearest(grid: Any, gu: Any, gv: Any) -> Any:
    """grid (B, G, G) at the nearest cell of continuous cells (B, ...) (clamped): piecewise constant."""
    xp = array_module(gu)
    g = grid.shape[-1]
    cell = th.clip(xp.round(gv), 0.0, g - 1.0) * g + th.clip(xp.round(gu), 0.0, g - 1.0)
    return _lookup(grid, _as_index(cell))


def _bilinear_cells(g: int, gu: Any, gv: Any) -> tuple[Any, Any, Any]:
    """Continuous cells (B, ...) (clamped to a G x G window) -> each one's four corner cells' flat
    indices (B, ..., 4) and its fractions fu, fv (B, ...), for :func:`_bilinear_read`; made once for
    several grids."""
    xp = array_module(gu)
    gu = th.clip(gu, 0.0, g - 1.0)
    gv = th.clip(gv, 0.0, g - 1.0)
    u0 = th.clip(xp.floor(gu), 0.0, g - 2.0)
    v0 = th.clip(xp.floor(gv), 0.0, g - 2.0)
    i00 = _as_index(v0 * g + u0)
    return xp.stack([i00, i00 + 1, i00 + g, i00 + g + 1], axis=-1), gu - u0, gv - v0


def _bilinear_read(grid: Any, index: Any, fu: Any, fv: Any) -> Any:
    """grid (B, G, G) at cells of :func:`_bilinear_cells` (one gather)."""
    corners = _lookup(grid, index)
    top = corners[..., 0] + (corners[..., 1] - corners[..., 0]) * fu
    bottom = corners[..., 2] + (corners[..., 3] - corners[..., 2]) * fu
    return top + (bottom - top) * fv


def _visible(front: Any, cones: Any, margin_mm: float = 4.0) -> Any:
    """(..., S) 1.0 where no sphere of the model (5 along each cone) crosses the ray to a front point
    (..., S, 3) more than ``margin_mm`` before it."""
    xp = array_module(front)
    t = th._const(np.repeat(np.linspace(0.0, 1.0, 5), cones.shape[-2])[:, None], cones)
    a, b = xp.concatenate([cones[..., 0:3]] * 5, axis=-2), xp.concatenate([cones[..., 4:7]] * 5, axis=-2)
    ra, rb = xp.concatenate([cones[..., 3:4]] * 5, axis=-2), xp.concatenate([cones[..., 7:8]] * 5, axis=-2)
    centres, radii = a + t * (b - a), (ra + t * (rb - ra))[..., 0]  # (..., 5K, 3), (..., 5K)
    dist = xp.sqrt((front * front).sum(axis=-1))  # (..., S)
    along = (front[..., :, None, :] * centres[..., None, :, :]).sum(axis=-1) / dist[..., None]  # (..., S, 5K)
    off2 = (centres * centres).sum(axis=-1)[..., None, :] - along * along
    inside = radii[..., None, :] ** 2 - off2
    enter = along - xp.sqrt(th.clip(inside, 0.0))
    hidden = ((inside > 0.0) & (enter < dist[..., None] - margin_mm)).any(axis=-1)
    return 1.0 - hidden * 1.0


def links_at(pose: Posed, targets: FrameTargets, visible: Any = None) -> Links:
    """The exact :class:`Links` of a pose (B, ...): each measured point's nearest cone, and which front
    points the model's own spheres hide (``visible`` given: kept)."""
    xp = array_module(pose.cones)
    cones, front = (pose.cones, pose.front) if xp is np else (pose.cones.detach(), pose.front.detach())
    nearest = xp.argmin(th.round_cone_sdf(targets.points[..., :, None, :], cones[..., None, :, :]), axis=-1)
    if visible is None:
        visible = _visible(front, cones[..., :front.shape[-2] // len(_SAMPLE_T), :])
    return Links(nearest, visible)


def _data_residuals(cones: Any, targets: FrameTargets, weights: EnergyWeights, nearest: Any) -> Any:
    """(..., N): the data term's residuals, each point measured to its ``nearest`` cone (B, N)."""
    xp = array_module(cones)
    pts, mask = targets.points, targets.point_mask
    lead, k = cones.shape[:-2], cones.shape[-2]
    index = _flat_offsets(nearest, lead, k) + nearest.reshape(nearest.shape[:1] + (1,) * (len(lead) - 1)
                                                              + nearest.shape[1:])
    dist = th.round_cone_sdf(pts, cones.reshape(-1, 8)[index])  # (..., N)
    count = th.clip(mask.sum(axis=-1)[..., None], 1.0)
    return _geman_mcclure(dist, weights.data_sigma_mm) * mask * xp.sqrt(weights.data / count)


def _view_residuals(pose: Posed, targets: FrameTargets, weights: EnergyWeights,
                    visible: Any) -> tuple[Any, Any, Any]:
    """(..., 3S) silhouette, (..., S) free-space and (..., S) surface residuals of the model's sample
    points; ``visible`` (B, S): the front points the model does not hide."""
    xp = array_module(pose.front)
    seen = xp.concatenate([pose.front, pose.rims], axis=-2)
    gu, gv, z = _cells(seen, targets)
    k = targets.intrinsics
    focal = xp.maximum(xp.abs(k[..., 0:1]), xp.abs(k[..., 1:2]))
    mm_per_cell = targets.window[..., 2:3] * th.clip(z, 1.0) / focal
    s = pose.front.shape[-2]  # the front points come first: the grids below read them at the same cells
    index, fu, fv = _bilinear_cells(targets.distance_grid.shape[-1], gu, gv)
    off = _bilinear_read(targets.distance_grid, index, fu, fv) * mm_per_cell
    sil = th.clip(off - weights.silhouette_tolerance_mm, 0.0) * np.sqrt(weights.silhouette / seen.shape[-2])
    index, fu, fv = index[..., :s, :], fu[..., :s], fv[..., :s]
    surface = _bilinear_read(targets.surface_grid, index, fu, fv)
    ahead = th.clip(surface - weights.free_space_tolerance_mm - z[..., :s], 0.0)
    free = _geman_mcclure(ahead, 4.0 * weights.data_sigma_mm) * np.sqrt(weights.free_space / s)
    visible = visible.reshape(visible.shape[:1] + (1,) * (z.ndim - 2) + visible.shape[1:])
    measured = _bilinear_read(targets.filled_grid, index, fu, fv)
    fingers = th._const(_finger_samples(s), z)  # (S,) finger bones
    seen = visible * _nearest(targets.silhouette, gu[..., :s], gv[..., :s]) * fingers
    on = _geman_mcclure(z[..., :s] - measured, weights.surface_sigma_mm) * seen * np.sqrt(weights.surface / s)
    return sil, free, on


@lru_cache(maxsize=8)
def _finger_samples(s: int) -> np.ndarray:
    """(S,) 1.0 for the front points of the finger bones (the first 15 cones, at each of _SAMPLE_T)."""
    out = np.tile(np.arange(s // len(_SAMPLE_T)) < 15, len(_SAMPLE_T)).astype(np.float64)
    out.flags.writeable = False
    return out


def residual_terms(model: HandModel, targets: FrameTargets, x: Any, pose: Posed, weights: EnergyWeights,
                   links: Links) -> dict[str, Any]:
    """:func:`residuals` from the posed hand (:func:`posed` of x) and given :class:`Links`."""
    out = {"data": _data_residuals(pose.cones, targets, weights, links.nearest)}
    out["silhouette"], out["free_space"], out["surface"] = _view_residuals(pose, targets, weights, links.visible)
    init = _geman_mcclure_vec(pose.joints - model.joints_init, weights.init_sigma_mm)
    out["init"] = init.reshape(init.shape[:-2] + (63,)) * np.sqrt(weights.init / 21.0)
    off = pose.joints - model.joints_init
    far = array_module(off).sqrt((off * off).sum(axis=-1) + 1e-9) - weights.trust_radius_mm
    out["trust"] = th.clip(far, 0.0) * np.sqrt(weights.trust / 21.0)
    mean, whiten = pose_prior_gaussian(weights.prior_floor_deg)
    centred = x[..., ANGLES] - th._const(mean, x)
    out["prior"] = centred @ th._const(whiten.T, x) * np.sqrt(weights.prior)
    if weights.temporal > 0:
        temporal = (pose.joints - model.joints_prev) * (model.prev_mask[..., None, None] / weights.temporal_sigma_mm)
        out["temporal"] = temporal.reshape(temporal.shape[:-2] + (63,)) * np.sqrt(weights.temporal / 21.0)
    else:  # single frames: no rows (63 rows of zeros would cost the solver 9 % of its rows)
        out["temporal"] = x[..., :0]
    out["scale"] = x[..., LOG_SCALE:] * th._const(np.sqrt(weights.scale) / scale_sigmas(weights), x)
    return out


def residuals(model: HandModel, targets: FrameTargets, x: Any, weights: EnergyWeights,
              links: Links | None = None) -> dict[str, Any]:
    """Every term's residuals by name (:data:`TERMS`), each (B, R_term); a term's energy is the sum of
    their squares. x (B, NUM_PARAMS); ``links`` None: the exact ones at x."""
    pose = posed(model, x)
    return residual_terms(model, targets, x, pose, weights, links or links_at(pose, targets))


def energy_terms(model: HandModel, targets: FrameTargets, x: Any, weights: EnergyWeights) -> dict[str, Any]:
    """Every term's energy (B,) by name, and ``"total"``: their sum (exact links at x)."""
    terms = {name: (r * r).sum(axis=-1) for name, r in residuals(model, targets, x, weights).items()}
    terms["total"] = sum(terms.values())
    return terms
