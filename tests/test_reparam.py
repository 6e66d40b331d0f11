"""The re-parameterization codec: pixel points, encode/decode round trip, variants, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from srnpose.model.reparam import (
    REPARAM_CHANNELS_PER_JOINT,
    decode_offset,
    encode_heatmap2d,
    encode_maps,
    encode_offset,
    offset_fields,
    pixel_points,
    reparam_channels,
    split_offset_fields,
)

CUBE_MM = 250.0
MM_NRM = 2.0 / CUBE_MM  # 1 mm in normalized crop units for a 250 mm cube


def sphere_crop(centers_nrm: torch.Tensor, radius_nrm: float, size: int) -> torch.Tensor:
    """A (1, 1, S, S) normalized depth crop of spheres seen from the front; background +1."""
    coords = (torch.arange(size, dtype=torch.float64) + 0.5) / (size / 2) - 1
    v, u = torch.meshgrid(coords, coords, indexing="ij")  # (S, S)
    depth = torch.ones(size, size, dtype=torch.float64)
    for cu, cv, cd in centers_nrm.tolist():
        r2 = radius_nrm ** 2 - (u - cu) ** 2 - (v - cv) ** 2
        front = cd - torch.sqrt(r2.clamp(min=0))
        depth = torch.where(r2 > 0, torch.minimum(depth, front), depth)
    return depth[None, None]


def hand_like_pose(num_joints: int = 21, seed: int = 0) -> torch.Tensor:
    """Joints (1, J, 3) in normalized uvd spread over a hand-sized region in front of the cube centre."""
    g = torch.Generator().manual_seed(seed)
    uv = (torch.rand(num_joints, 2, generator=g, dtype=torch.float64) - 0.5) * 1.2  # +-90 mm in u, v
    d = (torch.rand(num_joints, 1, generator=g, dtype=torch.float64) - 0.5) * 0.4  # +-25 mm in depth
    return torch.cat([uv, d], dim=1)[None]


def test_pixel_points_centres_and_plane_depth():
    size, feature = 32, 8
    depth = torch.full((2, 1, size, size), 0.25)
    depth[1, :, :, : size // 2] = 1.0  # left half is background in the second crop
    points, mask = pixel_points(depth, feature)
    assert points.shape == (2, feature, feature, 3) and mask.shape == (2, feature, feature)
    expected = (torch.arange(feature) + 0.5) / (feature / 2) - 1  # geometry.py's pixel-centre convention
    torch.testing.assert_close(points[0, 3, :, 0], expected)  # u runs along columns
    torch.testing.assert_close(points[0, :, 5, 1], expected)  # v runs along rows
    torch.testing.assert_close(points[0, ..., 2], torch.full((feature, feature), 0.25))
    assert mask[0].min() == 1 and mask[1, :, : feature // 2].max() == 0 and mask[1, :, feature // 2:].min() == 1
    assert points[1, :, : feature // 2, 2].eq(1.0).all()  # background keeps d = +1


def test_pixel_points_averages_foreground_only():
    depth = torch.ones(1, 1, 8, 8)
    depth[0, 0, 0, 0] = -0.5  # a single foreground pixel in the first 4x4 cell
    depth[0, 0, 1, 1] = 0.5
    points, mask = pixel_points(depth, 2)
    assert points[0, 0, 0, 2].item() == pytest.approx(0.0)  # mean of -0.5 and 0.5, background ignored
    assert mask[0].tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_codec_round_trip_within_one_millimetre():
    size, feature, theta = 64, 16, 1.0
    joints = hand_like_pose()  # (1, J, 3)
    crop = sphere_crop(joints[0], radius_nrm=12 * MM_NRM, size=size)  # a 12 mm ball around each joint
    points, mask = pixel_points(crop.float(), feature)
    heatmap, unit = encode_offset(joints.float(), points, mask, theta)
    assert heatmap.shape == (1, 21, feature, feature) and unit.shape == (1, 21, 3, feature, feature)
    decoded = decode_offset(heatmap, unit, points, k=30, theta=theta)  # (1, J, 3)
    error_mm = (decoded - joints.float()).norm(dim=-1) / MM_NRM
    assert error_mm.max().item() < 1.0
    # and through the packed layout the network predicts
    heatmap2, unit2 = split_offset_fields(offset_fields(heatmap, unit))
    assert torch.equal(heatmap2, heatmap) and torch.equal(unit2, unit)


def test_encode_values_are_the_definition():
    points, mask = pixel_points(torch.zeros(1, 1, 8, 8), 4)
    joints = torch.tensor([[[0.1, -0.2, 0.3]]])
    heatmap, unit = encode_offset(joints, points, mask, theta=1.0)
    p = points[0, 2, 1]  # row 2, column 1
    dist = (joints[0, 0] - p).norm()
    assert heatmap[0, 0, 2, 1].item() == pytest.approx(1.0 - dist.item(), abs=1e-6)
    torch.testing.assert_close(unit[0, 0, :, 2, 1], (joints[0, 0] - p) / dist)
    torch.testing.assert_close(unit.norm(dim=2), torch.ones(1, 1, 4, 4))


def test_mask_and_theta_zero_the_fields():
    depth = torch.ones(1, 1, 8, 8)
    depth[..., :4, :] = 0.0  # top half is hand
    points, mask = pixel_points(depth, 4)
    heatmap, unit = encode_offset(torch.tensor([[[0.0, -0.5, 0.0]]]), points, mask, theta=0.5)
    assert heatmap[..., 2:, :].abs().max() == 0 and unit[..., 2:, :].abs().max() == 0
    assert heatmap.max() > 0
    far = (points[0, ..., :] - torch.tensor([0.0, -0.5, 0.0])).norm(dim=-1) >= 0.5
    assert heatmap[0, 0][far].abs().max() == 0  # beyond theta the heatmap is exactly 0


def test_decode_falls_back_to_weights_of_zero_without_nan():
    points, _ = pixel_points(torch.zeros(2, 1, 8, 8), 4)
    joints = decode_offset(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 3, 4, 4), points, k=4, theta=1.0)
    assert torch.isfinite(joints).all()


@pytest.mark.parametrize("reparam", list(REPARAM_CHANNELS_PER_JOINT))
def test_encode_maps_channels(reparam):
    points, mask = pixel_points(torch.zeros(2, 1, 16, 16), 4)
    joints = torch.rand(2, 5, 3) - 0.5
    maps = encode_maps(joints, points, mask, reparam, theta=1.0, sigma=0.15)
    assert maps.shape == (2, reparam_channels(reparam, 5), 4, 4)
    assert torch.isfinite(maps).all()


def test_heatmap2d_peaks_at_the_joint_pixel():
    points, mask = pixel_points(torch.zeros(1, 1, 16, 16), 16)
    joints = points[:, 5, 9][:, None].clone()  # exactly on the centre of row 5, column 9
    g = encode_heatmap2d(joints, points, sigma=0.15)  # (1, 1, 16, 16)
    assert g[0, 0, 5, 9].item() == pytest.approx(1.0)
    assert divmod(int(g.flatten().argmax()), 16) == (5, 9)
    step = 2 / 16
    assert g[0, 0, 5, 10].item() == pytest.approx(math.exp(-step ** 2 / (2 * 0.15 ** 2)), rel=1e-5)
    maps = encode_maps(joints, points, mask, "heatmap2d_depth", theta=1.0, sigma=0.15)
    torch.testing.assert_close(maps[:, 1], g[:, 0] * joints[0, 0, 2])


def test_unknown_variant_names_the_valid_ones():
    with pytest.raises(ValueError, match="heatmap2d_depth"):
        reparam_channels("gaussian", 21)


def test_encode_gradcheck_float64():
    g = torch.Generator().manual_seed(1)
    depth = torch.rand(1, 1, 6, 6, generator=g, dtype=torch.float64) * 1.2 - 0.8
    points, mask = pixel_points(depth, 3)
    joints = (torch.rand(1, 2, 3, generator=g, dtype=torch.float64) - 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda j: encode_offset(j, points, mask, 0.9), (joints,))
    assert torch.autograd.gradcheck(lambda j: encode_maps(j, points, mask, "heatmap2d_depth", 0.9, 0.2), (joints,))


def test_decode_gradcheck_float64():
    g = torch.Generator().manual_seed(2)
    points, _ = pixel_points(torch.zeros(1, 1, 4, 4, dtype=torch.float64), 4)
    heatmap = (torch.rand(1, 2, 4, 4, generator=g, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    unit = torch.randn(1, 2, 3, 4, 4, generator=g, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda h, u: decode_offset(h, u, points, k=5, theta=1.0), (heatmap, unit))


def _crop_with_background(seed: int, size: int = 16, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    depth = torch.rand(2, 1, size, size, generator=g, dtype=dtype) * 1.6 - 0.8
    depth[depth > 0.4] = 1.0  # background pixels
    depth[..., size // 2:, size // 2:] = 1.0  # and a background quarter: masked feature pixels
    return depth


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_offset_training_path_equals_the_plain_ops(dtype):
    # encode_maps' closed-form backward (_OffsetFields, taken when the joints need a gradient) gives the
    # plain ops' fields bitwise and their joint gradient to rounding
    points, mask = pixel_points(_crop_with_background(3, dtype=dtype), 4)
    assert 0 < mask.sum() < mask.numel()
    g = torch.Generator().manual_seed(4)
    joints = (torch.rand(2, 5, 3, generator=g, dtype=dtype) * 1.6 - 0.8).requires_grad_()
    fields = encode_maps(joints, points, mask, "offset", theta=0.7, sigma=0.15)  # closed form
    plain = offset_fields(*encode_offset(joints, points, mask, 0.7))  # autograd through the plain ops
    assert torch.equal(fields, plain)
    weight = torch.randn(fields.shape, generator=g, dtype=dtype)
    (grad,) = torch.autograd.grad((fields * weight).sum(), joints)
    (grad_plain,) = torch.autograd.grad((plain * weight).sum(), joints)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(grad, grad_plain, rtol=tol, atol=tol * grad_plain.abs().max().item())
    with torch.no_grad():  # inference and export: the plain ops, the same values
        assert torch.equal(encode_maps(joints, points, mask, "offset", 0.7, 0.15), plain)


def test_offset_training_path_gradcheck_float64():
    points, mask = pixel_points(_crop_with_background(5, size=12, dtype=torch.float64), 3)
    joints = (torch.rand(2, 3, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64) - 0.5)
    assert torch.autograd.gradcheck(lambda j: encode_maps(j, points, mask, "offset", 0.6, 0.2),
                                    (joints.requires_grad_(),))


def test_offset_gradient_reaches_the_crop_when_it_needs_one():
    # a crop that needs a gradient (the points depend on it): the plain ops, whose autograd reaches it
    depth = _crop_with_background(7).requires_grad_()
    points, mask = pixel_points(depth, 4)
    joints = (torch.rand(2, 5, 3) - 0.5).requires_grad_()
    encode_maps(joints, points, mask, "offset", 1.0, 0.15).sum().backward()
    assert depth.grad is not None and depth.grad.abs().sum() > 0 and joints.grad is not None
