"""The one crop / augment / normalize pipeline every data source goes through.

A :class:`~srnpose.data.records.HandRecord` (full frame, joints in uvd) becomes a training sample:

* the hand centre and the cube: the run's :class:`~srnpose.data.centering.CenterPolicy`, the one owner of
  every decision that places a crop (a record's refined centre from a ``--centers`` file wins);
* SRN's online augmentation (Ren et al. 2019, following DeepPrior++), applied to depth and joints
  alike: in-plane rotation ``+-rot_deg`` about the crop centre, cube scale ``1 +- scale``, and a 3D
  translation of the centre by ``+-trans_mm`` per axis;
* the metric cube crop to ``input_size`` pixels and depth normalized to ``[-1, 1]``;
* joints in normalized crop coordinates, plus everything needed to map predictions back to uvd and xyz.

Sample keys (numpy; ``collate`` stacks them into tensors):

=============  ===========  ====================================================
``depth``      (1, S, S)    float32 normalized depth, background +1
``joints_nrm`` (J, 3)       float32 normalized crop coordinates (the network's target)
``joints_uvd`` (J, 3)       float64 ground truth in image uvd (px, px, mm)
``M``          (3, 3)       float64 image pixel -> crop pixel (augmentation included)
``center_uvd`` (3,)         float64 the crop centre (after augmentation)
``cube_mm``    (3,)         float64 the cube (after augmentation)
``intrinsics`` (4,)         float64 fx, fy, cx, cy
=============  ===========  ====================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from srnpose import geometry
from srnpose.data.centering import CenterPolicy
from srnpose.data.records import HandRecord


@dataclass(frozen=True)
class CropConfig:
    """The crop's size and training augmentation; where the crop goes and its cube are the
    :class:`~srnpose.data.centering.CenterPolicy`'s."""

    input_size: int = 128  # the paper's crop size
    augment: bool = False
    rot_deg: float = 180.0  # SRN: in-plane rotation +-180 degrees
    scale: float = 0.2  # SRN: cube scale +-20 %
    trans_mm: float = 10.0  # SRN: 3D translation +-10 mm


def rotation_about_center(angle_rad: float, size: int) -> np.ndarray:
    """3x3 rotation of crop pixels about the crop centre ``((size - 1) / 2, (size - 1) / 2)``."""
    c = (size - 1) / 2.0
    cos, sin = math.cos(angle_rad), math.sin(angle_rad)
    T = np.array([[1.0, 0, c], [0, 1.0, c], [0, 0, 1.0]])
    R = np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1.0]])
    Tinv = np.array([[1.0, 0, -c], [0, 1.0, -c], [0, 0, 1.0]])
    return T @ R @ Tinv


def make_sample(record: HandRecord, cfg: CropConfig, policy: CenterPolicy,
                rng: np.random.Generator | None = None) -> dict:
    """Crop (and, with ``cfg.augment`` and an ``rng``, augment) one record into a sample dict, at the
    centre and with the cube of ``policy`` (:meth:`~srnpose.data.centering.CenterPolicy.training_center`;
    a record's refined centre wins)."""
    depth_mm = record.load_depth()
    K = record.intrinsics
    if record.center_uvd is not None:
        center = np.asarray(record.center_uvd, dtype=np.float64)
    else:
        center = policy.training_center(depth_mm, record.joints_uvd, K, rng)
    cube = policy.cube.copy()
    angle = 0.0
    if cfg.augment and rng is not None:
        center_xyz = geometry.uvd_to_xyz(center, K) + rng.uniform(-cfg.trans_mm, cfg.trans_mm, 3)
        center = geometry.xyz_to_uvd(center_xyz, K)
        cube = cube * rng.uniform(1.0 - cfg.scale, 1.0 + cfg.scale)
        angle = math.radians(rng.uniform(-cfg.rot_deg, cfg.rot_deg))
    S = cfg.input_size
    M = geometry.crop_transform(center, cube, S, K)
    if angle != 0.0:
        M = rotation_about_center(angle, S) @ M
    crop = geometry.warp_depth(depth_mm, M, S)
    depth_nrm = geometry.normalize_depth(crop, center[2], cube[2])
    joints_uvd = np.asarray(record.joints_uvd, dtype=np.float64)
    joints_nrm = geometry.uvd_to_crop(joints_uvd, M, center[2], cube[2], S)
    return {
        "depth": depth_nrm[None].astype(np.float32),
        "joints_nrm": joints_nrm.astype(np.float32),
        "joints_uvd": joints_uvd,
        "M": M,
        "center_uvd": center,
        "cube_mm": cube,
        "intrinsics": np.array(K.as_tuple(), dtype=np.float64),
    }


def collate(samples: list[dict]):
    """Stack sample dicts into a dict of torch tensors (float32 inputs, float64 geometry)."""
    import torch

    return {key: torch.from_numpy(np.stack([s[key] for s in samples])) for key in samples[0]}


def nrm_to_uvd(joints_nrm, M, center_d, cube_z, size: int):
    """Batched: normalized crop joints (B, J, 3) back to image uvd (B, J, 3). numpy or torch."""
    return geometry.crop_to_uvd(joints_nrm, M, center_d, cube_z, size)


def uvd_to_xyz_batched(uvd, intrinsics):
    """Batched pinhole back-projection with per-sample intrinsics (B, 4) = fx, fy, cx, cy."""
    fx, fy = intrinsics[:, 0:1], intrinsics[:, 1:2]
    cx, cy = intrinsics[:, 2:3], intrinsics[:, 3:4]
    u, v, d = uvd[..., 0], uvd[..., 1], uvd[..., 2]
    parts = [(u - cx) * d / fx, (v - cy) * d / fy, d]
    try:
        import torch

        if isinstance(uvd, torch.Tensor):
            return torch.stack(parts, dim=-1)
    except ImportError:  # pragma: no cover
        pass
    return np.stack(parts, axis=-1)


def nrm_to_xyz(joints_nrm, batch: dict, size: int):
    """Normalized crop joints (B, J, 3) to camera-frame xyz in mm, using a collated batch's geometry."""
    M = batch["M"]
    center_d = batch["center_uvd"][:, 2]
    cube_z = batch["cube_mm"][:, 2]
    joints = joints_nrm.to(M.dtype) if hasattr(joints_nrm, "to") else joints_nrm
    uvd = nrm_to_uvd(joints, M, center_d, cube_z, size)
    return uvd_to_xyz_batched(uvd, batch["intrinsics"])

