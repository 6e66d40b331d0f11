"""What the fit is fitted to: one depth frame around the current estimate, as tensors.

From a depth frame (camera's un-mirrored view, mm, 0 = no measurement) and the network's joints (21, 3,
camera mm), :func:`frame_targets` builds:

* a **window**: the square of the frame around the joints (their centroid's cube: the farthest joint
  plus :attr:`SelectConfig.margin_mm`), resampled nearest-neighbour to ``grid x grid`` cells;
* the **silhouette** in it: measured cells not behind the hand (depth below the farthest joint plus
  :attr:`SelectConfig.behind_mm`); anything nearer (an object held in front, the other hand) counts
  as silhouette too: it may hide the hand, so the model may lie behind it. The distance transform of
  the measured background (cells to the nearest cell that is not measured background: cells without a
  measurement are no evidence, thin fingertips often return none) drives the silhouette term; the
  silhouette's depth, carried to every cell from the nearest silhouette cell, the surface term, and
  that eroded over 3 x 3 cells, the free-space term;
* the **hand's points**: silhouette cells whose 3D point lies within :attr:`SelectConfig.radius_mm`
  of a bone of the current skeleton and not behind the wrist (the forearm), at most
  :attr:`SelectConfig.max_points` (an even subsample). A torso or a table further than the radius
  from every bone is not taken; an object inside it is, and the data term's robust kernel has to
  discount it.

Frames are batched by padding the points (``point_mask``); the windows share the grid size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from srnpose.fitting.energy import FrameTargets
from srnpose.geometry import Intrinsics, uvd_to_xyz, xyz_to_uvd
from srnpose.hand.skeleton import CANONICAL

__all__ = ["SelectConfig", "frame_targets", "stack_targets", "bone_distance_mm"]


@dataclass(frozen=True)
class SelectConfig:
    """How the hand's points and the window are chosen (see the module notes)."""

    grid: int = 64  # cells per window side: ~2-3 frame px per cell for a hand at arm's length on a Kinect V2
    margin_mm: float = 40.0  # window: the farthest joint from the centroid plus this (a finger's length / 2)
    behind_mm: float = 60.0  # silhouette: measured depth up to the farthest joint plus this (joints lie
    # 3-30 mm behind the skin; a torso or wall is further back)
    radius_mm: float = 40.0  # hand points: within this of a bone of the current skeleton (a finger's
    # radius ~8-10 mm plus the network's typical misplacement of a finger on real frames)
    wrist_cut_mm: float = 5.0  # drop points this far behind the wrist along wrist -> middle MCP (forearm)
    max_points: int = 192  # an even subsample beyond this: the fit's cost grows with it (320 are no
    # better on the benchmark's frames)


def bone_distance_mm(points: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """(P,) distance of points (P, 3) to the nearest canonical bone segment of joints (21, 3)."""
    bones = np.asarray(CANONICAL.bones)
    a, b = joints[bones[:, 0]], joints[bones[:, 1]]  # (K, 3)
    ab = b - a
    inv = 1.0 / np.maximum((ab * ab).sum(-1), 1e-9)
    # per coordinate on (P, K) arrays (no (P, K, 3) temporaries), one square root per point
    p = np.asarray(points, dtype=np.float64)
    d = [p[:, i:i + 1] - a[:, i] for i in range(3)]  # (P, K) each
    t = np.clip((d[0] * ab[:, 0] + d[1] * ab[:, 1] + d[2] * ab[:, 2]) * inv, 0.0, 1.0)
    e = [d[i] - t * ab[:, i] for i in range(3)]
    return np.sqrt((e[0] * e[0] + e[1] * e[1] + e[2] * e[2]).min(1))


def _window(joints: np.ndarray, intrinsics: Intrinsics, margin_mm: float, grid: int) -> tuple[float, float, float]:
    """(u0, v0, step): the window's top-left corner in frame px and its frame px per cell."""
    centre = joints.mean(0)
    reach = float(np.linalg.norm(joints - centre, axis=1).max()) + margin_mm
    depth = max(float(centre[2]), 1.0)  # the cube's size at its centre's depth (as the network's crop)
    c = xyz_to_uvd(centre, intrinsics)
    side_px = 2.0 * reach * max(abs(intrinsics.fx), abs(intrinsics.fy)) / depth
    step = side_px / grid
    return float(c[0] - side_px / 2.0), float(c[1] - side_px / 2.0), float(step)


def _sample_window(depth_mm: np.ndarray, u0: float, v0: float, step: float, grid: int) -> np.ndarray:
    """(G, G) float64 mm: the frame's depth at the cells' centres (nearest pixel), 0 outside the frame."""
    h, w = depth_mm.shape
    ui = np.floor(u0 + (np.arange(grid) + 0.5) * step + 0.5).astype(np.int64)
    vi = np.floor(v0 + (np.arange(grid) + 0.5) * step + 0.5).astype(np.int64)
    out = np.asarray(depth_mm)[np.ix_(np.clip(vi, 0, h - 1), np.clip(ui, 0, w - 1))].astype(np.float64)
    out[~((vi >= 0) & (vi < h))[:, None] | ~((ui >= 0) & (ui < w))[None, :]] = 0.0
    return out


def _hand_points(cells: np.ndarray, sil: np.ndarray, joints: np.ndarray, intrinsics: Intrinsics, u0: float,
                 v0: float, step: float, cfg: SelectConfig) -> np.ndarray:
    """(P, 3) mm: the silhouette cells' points near the skeleton's bones, forearm cut, subsampled."""
    vv, uu = np.nonzero(sil)
    # each cell shows its nearest pixel (_sample_window): back-project at that pixel's centre
    u = np.floor(u0 + (uu + 0.5) * step + 0.5)
    v = np.floor(v0 + (vv + 0.5) * step + 0.5)
    uvd = np.stack([u, v, cells[vv, uu]], 1)
    pts = uvd_to_xyz(uvd, intrinsics)
    if len(pts) > 3 * cfg.max_points:  # an even subsample first: the bone test costs per point
        pts = pts[np.linspace(0, len(pts) - 1, 3 * cfg.max_points).round().astype(np.int64)]
    if len(pts):
        pts = pts[bone_distance_mm(pts, joints) <= cfg.radius_mm]
    wrist = joints[0]
    axis = joints[9] - wrist
    axis = axis / max(float(np.linalg.norm(axis)), 1e-9)
    pts = pts[(pts - wrist) @ axis >= -cfg.wrist_cut_mm]
    if len(pts) > cfg.max_points:  # an even subsample, deterministic
        pts = pts[np.linspace(0, len(pts) - 1, cfg.max_points).round().astype(np.int64)]
    return pts


def frame_targets(depth_mm: np.ndarray, intrinsics: Intrinsics, joints_xyz: np.ndarray,
                  cfg: SelectConfig = SelectConfig()) -> dict:
    """One frame's targets as numpy arrays (``points`` (P, 3), ``depth_grid``, ``silhouette``,
    ``distance_grid`` (G, G), ``window`` (3,), ``intrinsics`` (4,)); :func:`stack_targets` batches them.

    ``depth_mm`` (H, W): the camera's un-mirrored view in mm (0 = no measurement); ``joints_xyz`` (21, 3)
    canonical joints, camera frame mm, of the current estimate."""
    from scipy.ndimage import distance_transform_edt, minimum_filter

    depth_mm = np.asarray(depth_mm)
    joints = np.asarray(joints_xyz, dtype=np.float64)
    if depth_mm.ndim != 2:
        raise ValueError(f"depth_mm must be (H, W), got {depth_mm.shape}")
    if joints.shape != (21, 3) or not np.isfinite(joints).all():
        raise ValueError(f"joints_xyz must be finite canonical joints (21, 3), got {joints.shape}")
    g = cfg.grid
    u0, v0, step = _window(joints, intrinsics, cfg.margin_mm, g)
    cells = _sample_window(depth_mm, u0, v0, step, g)
    far = float(joints[:, 2].max()) + cfg.behind_mm
    sil = (cells > 0) & (cells <= far)
    background = cells > far  # measured and behind the hand; no measurement is no evidence (thin
    # fingertips and dark or shiny skin often return none), so the silhouette term leaves it alone
    dist = distance_transform_edt(background) if not background.all() else np.full((g, g), float(g))
    if sil.any():
        iv, iu = distance_transform_edt(~sil, return_distances=False, return_indices=True)
        filled = cells[iv, iu]  # the nearest silhouette cell's depth
        surface = minimum_filter(filled, size=3)  # eroded: the nearest of 3 x 3
    else:
        filled = surface = np.full((g, g), far)
    pts = _hand_points(cells, sil, joints, intrinsics, u0, v0, step, cfg)
    return {"points": pts, "depth_grid": cells, "filled_grid": filled, "surface_grid": surface,
            "silhouette": sil.astype(np.float64),
            "distance_grid": dist,
            "window": np.array([u0, v0, step]), "intrinsics": np.array(intrinsics.as_tuple(), dtype=np.float64)}


def stack_targets(frames: list[dict], dtype: torch.dtype | None = None) -> FrameTargets:
    """Batch :func:`frame_targets`' outputs, padding the points to the longest frame's count: float64
    numpy arrays (``dtype`` None, the solver's), or tensors of ``dtype``."""
    n = max(1, max(len(f["points"]) for f in frames))
    points = np.zeros((len(frames), n, 3))
    mask = np.zeros((len(frames), n))
    for i, f in enumerate(frames):
        points[i, :len(f["points"])] = f["points"]
        mask[i, :len(f["points"])] = 1.0

    def t(a):
        a = np.asarray(a, dtype=np.float64)
        return a if dtype is None else torch.as_tensor(a, dtype=dtype)

    def stack(key: str):
        return t(np.stack([f[key] for f in frames]))

    return FrameTargets(t(points), t(mask), stack("depth_grid"), stack("filled_grid"), stack("surface_grid"),
                        stack("silhouette"), stack("distance_grid"), stack("window"), stack("intrinsics"))
