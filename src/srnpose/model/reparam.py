"""The re-parameterization codec: joints <-> spatial fields at feature resolution (SRN, Sec. 3.2).

All coordinates are normalized crop coordinates ``(u_nrm, v_nrm, d_nrm)`` in ``[-1, 1]``, the
convention of :mod:`srnpose.geometry`: pixel ``j`` of an ``F``-wide map has its centre at
``u_nrm = (j + 0.5) / (F / 2) - 1`` (the same formula at every resolution, so feature pixel ``j`` is
exactly centred on the 4x4 crop pixels it covers), and ``d_nrm = (d - center_d) / (cube_z / 2)``
with background at ``+1``. With a 250 mm cube, 1 mm is ``2 / 250 = 0.008`` in normalized units.

Encode (joints -> fields), for every joint ``j`` and every feature pixel's 3D point ``p``:

* 3D heatmap ``H = max(theta - ||j - p||, 0) * mask``;
* unit vector field ``U = (j - p) / ||j - p|| * mask`` (the norm is ``sqrt(|.|^2 + eps^2)``, so it is
  smooth everywhere and the decode below still inverts it exactly);

``mask`` is the hand foreground (``d_nrm < 1 - eps``). Decode (fields -> joints) is SRN's top-k
voting: over the ``k`` pixels with the highest heatmap value ``w``,
``joint = sum w * (p + (theta - w) * U) / sum w``.

Every function is a pure, differentiable torch function with no data-dependent Python control flow
(shapes only), so the whole model exports to ONNX (opset 17: AveragePool, TopK, GatherElements).

Channel layouts of the maps fed to the next stage (:func:`encode_maps`), ``J`` joints:

============== ======== =====================================================================
variant        channels layout
============== ======== =====================================================================
offset         4J       ``[H_1..H_J, U_1x, U_1y, U_1d, ..., U_Jx, U_Jy, U_Jd]`` (the default)
heatmap3d      J        ``[H_1..H_J]``
heatmap2d      J        Gaussians over (u, v): ``exp(-((u - u_j)^2 + (v - v_j)^2) / (2 sigma^2))``
heatmap2d_depth 2J      ``[G_1..G_J, G_1 * d_1, ..., G_J * d_J]`` (2D heatmaps, then each heatmap
                        scaled by its joint's normalized depth: the depth channel of SRN's ablation)
============== ======== =====================================================================
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "REPARAM_CHANNELS_PER_JOINT",
    "reparam_channels",
    "pixel_points",
    "encode_offset",
    "decode_offset",
    "encode_heatmap2d",
    "encode_maps",
    "offset_fields",
    "split_offset_fields",
]

# variant -> channels per joint. Explicit table; SRNConfig.reparam must be one of its keys.
REPARAM_CHANNELS_PER_JOINT: dict[str, int] = {
    "offset": 4,
    "heatmap3d": 1,
    "heatmap2d": 1,
    "heatmap2d_depth": 2,
}

FOREGROUND_EPS = 1e-3  # d_nrm >= 1 - eps is background (normalize_depth writes exactly +1 there)
DIST_EPS = 1e-6  # nrm; regularizes ||j - p|| (0.1 micron at a 250 mm cube)
WEIGHT_EPS = 1e-8  # keeps the vote's denominator positive when every selected heatmap value is 0


def reparam_channels(reparam: str, num_joints: int) -> int:
    """Number of map channels the variant ``reparam`` produces for ``num_joints`` joints."""
    if reparam not in REPARAM_CHANNELS_PER_JOINT:
        raise ValueError(f"unknown reparam {reparam!r}; valid: {', '.join(REPARAM_CHANNELS_PER_JOINT)}")
    return REPARAM_CHANNELS_PER_JOINT[reparam] * num_joints


def _check_joints(joints: Tensor) -> None:
    if torch.jit.is_tracing():  # shapes are fixed while exporting; keep the trace free of checks
        return
    if joints.dim() != 3 or joints.shape[-1] != 3:
        raise ValueError(f"joints must have shape (B, J, 3), got {tuple(joints.shape)}")


def pixel_points(depth_crop_nrm: Tensor, feature_size: int) -> tuple[Tensor, Tensor]:
    """The 3D point of every feature pixel, and the hand foreground mask.

    ``depth_crop_nrm`` (B, 1, S, S) normalized depth, ``S`` a multiple of ``feature_size`` (F).
    Each feature pixel's depth is the mean of the foreground crop pixels it covers (+1 when it
    covers none); its (u, v) are the pixel centre in normalized coordinates.

    Returns ``points`` (B, F, F, 3) as ``(u_nrm, v_nrm, d_nrm)`` (u along columns, v along rows) and
    ``mask`` (B, F, F), 1.0 on feature pixels that cover any foreground, else 0.0.
    """
    if not torch.jit.is_tracing() and (depth_crop_nrm.dim() != 4 or depth_crop_nrm.shape[1] != 1):
        raise ValueError(f"depth_crop_nrm must have shape (B, 1, S, S), got {tuple(depth_crop_nrm.shape)}")
    size = int(depth_crop_nrm.shape[-1])
    if not torch.jit.is_tracing() and (size % feature_size != 0 or int(depth_crop_nrm.shape[-2]) != size):
        raise ValueError(f"crop size {tuple(depth_crop_nrm.shape[-2:])} must be square and a multiple of "
                         f"feature_size={feature_size}")
    kernel = size // feature_size
    depth = depth_crop_nrm
    foreground = (depth < 1.0 - FOREGROUND_EPS).to(depth.dtype)  # (B, 1, S, S)
    if kernel > 1:
        fg_frac = F.avg_pool2d(foreground, kernel)  # (B, 1, F, F)
        fg_sum = F.avg_pool2d(depth * foreground, kernel)  # (B, 1, F, F)
    else:
        fg_frac, fg_sum = foreground, depth * foreground
    mask = (fg_frac > 0).to(depth.dtype)  # (B, 1, F, F)
    d_nrm = fg_sum / fg_frac.clamp(min=1.0 / (kernel * kernel)) * mask + (1.0 - mask)  # (B, 1, F, F)
    coords = (torch.arange(feature_size, dtype=depth.dtype, device=depth.device) + 0.5) / (feature_size / 2.0) - 1.0
    batch = depth.shape[0]
    u_nrm = coords.view(1, 1, feature_size).expand(batch, feature_size, feature_size)  # (B, F, F) columns
    v_nrm = coords.view(1, feature_size, 1).expand(batch, feature_size, feature_size)  # (B, F, F) rows
    points = torch.stack([u_nrm, v_nrm, d_nrm[:, 0]], dim=-1)  # (B, F, F, 3)
    return points, mask[:, 0]


def encode_offset(joints: Tensor, points: Tensor, mask: Tensor, theta: float) -> tuple[Tensor, Tensor]:
    """Joints to SRN's offset fields: 3D heatmaps and unit vector fields.

    ``joints`` (B, J, 3), ``points`` (B, F, F, 3) and ``mask`` (B, F, F) from :func:`pixel_points`.
    Returns ``heatmap`` (B, J, F, F) ``= max(theta - ||j - p||, 0) * mask`` and
    ``unit`` (B, J, 3, F, F) ``= (j - p) / ||j - p|| * mask``.
    """
    _check_joints(joints)
    offset = joints[:, :, None, None, :] - points[:, None]  # (B, J, F, F, 3)
    dist = torch.sqrt((offset * offset).sum(dim=-1) + DIST_EPS * DIST_EPS)  # (B, J, F, F)
    m = mask[:, None]  # (B, 1, F, F)
    heatmap = torch.relu(theta - dist) * m  # (B, J, F, F)
    unit = (offset / dist[..., None]).permute(0, 1, 4, 2, 3) * m[:, :, None]  # (B, J, 3, F, F)
    return heatmap, unit


def decode_offset(heatmap: Tensor, unit: Tensor, points: Tensor, k: int, theta: float) -> Tensor:
    """Top-k voting, the inverse of :func:`encode_offset`: fields to joints (B, J, 3).

    ``heatmap`` (B, J, F, F), ``unit`` (B, J, 3, F, F), ``points`` (B, F, F, 3). For each joint the
    ``k`` pixels with the highest heatmap value ``w`` (clamped at 0) each vote for
    ``p + (theta - w) * unit``; votes are averaged with weights ``w``. Differentiable in the values
    (the selection itself is not). ``k`` must not exceed ``F * F``.
    """
    batch, num_joints, fh, fw = heatmap.shape
    n = fh * fw
    if not torch.jit.is_tracing() and k > n:
        raise ValueError(f"topk k={k} exceeds the {n} pixels of a {fh}x{fw} feature map")
    values, index = torch.topk(heatmap.reshape(batch, num_joints, n), k, dim=-1)  # (B, J, k)
    w = values.clamp(min=0.0)  # (B, J, k)
    unit_sel = torch.gather(unit.reshape(batch, num_joints, 3, n), 3,
                            index[:, :, None, :].expand(-1, -1, 3, -1)).transpose(2, 3)  # (B, J, k, 3)
    point_sel = torch.gather(points.reshape(batch, 1, n, 3).expand(-1, num_joints, -1, -1), 2,
                             index[..., None].expand(-1, -1, -1, 3))  # (B, J, k, 3)
    votes = point_sel + (theta - w)[..., None] * unit_sel  # (B, J, k, 3)
    weight = w + WEIGHT_EPS  # (B, J, k)
    return (weight[..., None] * votes).sum(dim=2) / weight.sum(dim=2)[..., None]  # (B, J, 3)


def encode_heatmap2d(joints: Tensor, points: Tensor, sigma: float) -> Tensor:
    """Gaussian 2D heatmaps over (u, v): (B, J, F, F), peak 1 at the joint, ``sigma`` in nrm units."""
    _check_joints(joints)
    duv = joints[:, :, None, None, :2] - points[:, None, :, :, :2]  # (B, J, F, F, 2)
    return torch.exp(-(duv * duv).sum(dim=-1) / (2.0 * sigma * sigma))  # (B, J, F, F)


def offset_fields(heatmap: Tensor, unit: Tensor) -> Tensor:
    """Pack ``heatmap`` (B, J, F, F) and ``unit`` (B, J, 3, F, F) into (B, 4J, F, F)."""
    b, j, fh, fw = heatmap.shape
    return torch.cat([heatmap, unit.reshape(b, j * 3, fh, fw)], dim=1)  # (B, 4J, F, F)


def split_offset_fields(fields: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`offset_fields`: (B, 4J, F, F) -> heatmap (B, J, F, F), unit (B, J, 3, F, F)."""
    b, c, fh, fw = fields.shape
    if not torch.jit.is_tracing() and c % 4 != 0:
        raise ValueError(f"offset fields need 4J channels, got {c}")
    j = c // 4
    return fields[:, :j], fields[:, j:].reshape(b, j, 3, fh, fw)


class _OffsetFields(torch.autograd.Function):
    """``offset_fields(*encode_offset(joints, points, mask, theta))`` for training: the same operations,
    computed in the fields' channel layout and written straight into the packed (B, 4J, F, F) tensor
    (bitwise the same values, no concatenation), with the gradient w.r.t. the joints in closed form
    instead of autograd's dozen passes over (B, J, 3, F, F) tensors (about half the backward's time).

    With ``u`` the unit field (mask included), ``d`` the regularized distance, ``m`` the mask and ``h``
    the heatmap, the joint gradient is ``sum_pixels m * g_u / d - u * (g_h * [h > 0] + <g_u, u> / d)``.
    ``points`` and ``mask`` get no gradient (they come from the input crop; callers check they need none).
    """

    @staticmethod
    def forward(ctx, joints: Tensor, points: Tensor, mask: Tensor, theta: float) -> Tensor:
        batch, num_joints = joints.shape[:2]
        fh, fw = points.shape[1:3]
        fields = joints.new_empty(batch, 4 * num_joints, fh, fw)  # (B, 4J, F, F)
        heatmap = fields[:, :num_joints]  # (B, J, F, F) view
        unit = fields[:, num_joints:].view(batch, num_joints, 3, fh, fw)  # (B, J, 3, F, F) view
        offset = joints[:, :, :, None, None] - points.permute(0, 3, 1, 2)[:, None]  # (B, J, 3, F, F)
        dist = torch.sqrt((offset * offset).sum(dim=2) + DIST_EPS * DIST_EPS)  # (B, J, F, F)
        m = mask[:, None]  # (B, 1, F, F)
        torch.mul(torch.relu(theta - dist), m, out=heatmap)
        torch.mul(offset / dist[:, :, None], m[:, :, None], out=unit)
        ctx.save_for_backward(fields, dist, mask)
        ctx.num_joints = num_joints
        return fields

    @staticmethod
    def backward(ctx, grad_fields: Tensor):
        fields, dist, mask = ctx.saved_tensors
        j = ctx.num_joints
        batch, _, fh, fw = fields.shape
        heatmap = fields[:, :j]  # (B, J, F, F)
        unit = fields[:, j:].reshape(batch, j, 3, fh, fw)  # (B, J, 3, F, F)
        g_heat = grad_fields[:, :j]  # (B, J, F, F)
        g_unit = grad_fields[:, j:].reshape(batch, j, 3, fh, fw)  # (B, J, 3, F, F)
        q = g_heat * (heatmap > 0) + (g_unit * unit).sum(dim=2) / dist  # (B, J, F, F)
        grad = (g_unit * (mask[:, None] / dist)[:, :, None] - unit * q[:, :, None]).sum(dim=(3, 4))  # (B, J, 3)
        return grad, None, None, None


def _closed_form_gradient(joints: Tensor, points: Tensor, mask: Tensor) -> bool:
    """Whether :class:`_OffsetFields` may stand in for the plain ops: training (a joint gradient wanted, none
    for the crop's points and mask), not while tracing or compiling (exports keep the plain ops)."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return False
    return torch.is_grad_enabled() and joints.requires_grad and not (points.requires_grad or mask.requires_grad)


def encode_maps(joints: Tensor, points: Tensor, mask: Tensor, reparam: str, theta: float,
                sigma: float) -> Tensor:
    """Joints to the next stage's input maps (B, C, F, F) for the variant ``reparam``.

    ``C = reparam_channels(reparam, J)``; layouts in the module docstring. While training (the joints
    need a gradient), "offset" runs :class:`_OffsetFields`: the same values, a closed-form backward.
    """
    if reparam == "offset":
        if _closed_form_gradient(joints, points, mask):
            _check_joints(joints)
            return _OffsetFields.apply(joints, points, mask, float(theta))
        return offset_fields(*encode_offset(joints, points, mask, theta))
    if reparam == "heatmap3d":
        return encode_offset(joints, points, mask, theta)[0]
    if reparam == "heatmap2d":
        return encode_heatmap2d(joints, points, sigma)
    if reparam == "heatmap2d_depth":
        g = encode_heatmap2d(joints, points, sigma)  # (B, J, F, F)
        return torch.cat([g, g * joints[:, :, 2, None, None]], dim=1)  # (B, 2J, F, F)
    raise ValueError(f"unknown reparam {reparam!r}; valid: {', '.join(REPARAM_CHANNELS_PER_JOINT)}")
