"""The differentiable hand (srnpose.hand.torch_hand) against the numpy kinematic hand (srnpose.hand.kinematics)."""

import numpy as np
import pytest
import torch

from srnpose.geometry import Intrinsics
from srnpose.hand import kinematics as hm
from srnpose.hand import torch_hand as th
from srnpose.synth.poses import LIMITS_DEG, sample_pose


def _hands(seed: int, count: int):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        shape = hm.sample_shape(rng)
        pose, _ = sample_pose(rng)
        out.append((shape, hm.HandPose(pose.chain_deg, pose.wrist_deg, float(rng.uniform(0.0, 1.0)))))
    return out


def _torch_joints(shape: hm.HandShape, pose: hm.HandPose, dtype=torch.float64):
    s = th.HandShapeArrays.from_shape(shape, dtype)
    return s, th.forward_kinematics(s.base_xyz_mm, s.bone_length_mm, torch.tensor(pose.chain_deg, dtype=dtype),
                                    torch.tensor(pose.cup, dtype=dtype))


def test_forward_kinematics_matches_the_numpy_hand_batched_in_both_precisions():
    hands = _hands(0, 6)
    base = torch.tensor(np.stack([s.base_xyz_mm for s, _ in hands])).reshape(2, 3, 5, 3)
    length = torch.tensor(np.stack([s.bone_length_mm for s, _ in hands])).reshape(2, 3, 5, 3)
    chain = torch.tensor(np.stack([p.chain_deg for _, p in hands])).reshape(2, 3, 5, 4)
    cup = torch.tensor([p.cup for _, p in hands]).reshape(2, 3)
    batch = th.forward_kinematics(base, length, chain, cup)  # (2, 3, 21, 3)
    expected = np.stack([hm.forward_kinematics(s, p) for s, p in hands])
    np.testing.assert_allclose(batch.reshape(6, 21, 3).numpy(), expected, atol=1e-9)
    single = th.forward_kinematics(base.float(), length.float(), chain.float(), cup.float())
    np.testing.assert_allclose(single.reshape(6, 21, 3).numpy(), expected, atol=2e-3)  # float32: mm / 1000
    # numpy arrays in, the same numbers out (the fit's solver runs this path)
    as_numpy = th.forward_kinematics(base.numpy(), length.numpy(), chain.numpy(), cup.numpy())
    assert isinstance(as_numpy, np.ndarray)
    np.testing.assert_allclose(as_numpy.reshape(6, 21, 3), expected, atol=1e-9)


def test_cones_are_the_numpy_volume_s_cones_in_its_order():
    for shape, pose in _hands(1, 4):
        joints = hm.forward_kinematics(shape, pose)
        volume = hm.primitives(shape, pose, joints)
        s, tj = _torch_joints(shape, pose)
        cones = th.hand_cones(s, tj, fill=True, forearm=True, wrist_deg=torch.tensor(pose.wrist_deg)).numpy()
        k = th.NUM_HAND_CONES + th.NUM_FILL_CONES
        assert cones.shape == (k + th.NUM_FOREARM_CONES, 8) and len(volume.cones) == th.NUM_HAND_CONES + 4
        np.testing.assert_allclose(cones[:th.NUM_HAND_CONES], volume.cones[:th.NUM_HAND_CONES], atol=1e-9)
        np.testing.assert_allclose(cones[k:], volume.cones[th.NUM_HAND_CONES:], atol=1e-9)
        assert len(th.CONE_FINGER) == k


def test_filled_volume_renders_like_the_numpy_volume_with_its_ellipsoids():
    """The fill cones stand in for the palm's two ellipsoids: the silhouettes overlap by > 90 % and the
    depths agree to a millimetre at the median."""
    from srnpose.synth.render import cast

    K = Intrinsics(240.0, 240.0, 48.0, 48.0)
    for shape, pose in _hands(2, 3):
        joints = hm.forward_kinematics(shape, pose)
        volume = hm.primitives(shape, pose, joints)
        s, tj = _torch_joints(shape, pose)
        cones = th.hand_cones(s, tj, fill=True).numpy()
        rot, trans = hm.rot_x(180.0), np.array([0.0, 60.0, 450.0])
        numpy_volume = hm.Volume(volume.cones[:th.NUM_HAND_CONES], volume.cone_parts[:th.NUM_HAND_CONES],
                                 volume.ellipsoids, volume.ellipsoid_parts).transformed(rot, trans)
        filled = hm.Volume(cones, np.zeros(len(cones), np.int16), np.zeros((0, 15)),
                           np.zeros(0, np.int16)).transformed(rot, trans)
        a, b = cast(numpy_volume, K, 96, 96).z_mm, cast(filled, K, 96, 96).z_mm
        ma, mb = np.isfinite(a), np.isfinite(b)
        assert (ma & mb).sum() / (ma | mb).sum() > 0.9
        both = ma & mb
        assert np.median(np.abs(a[both] - b[both])) < 1.0


def test_round_cone_sdf_is_the_distance_to_the_hull_of_two_spheres():
    rng = np.random.default_rng(3)
    cones = np.concatenate([rng.normal(0, 30, (20, 3)), rng.uniform(5, 15, (20, 1)), rng.normal(0, 30, (20, 3)),
                            rng.uniform(5, 15, (20, 1))], 1)
    points = rng.normal(0, 50, (100, 3))
    sdf = th.round_cone_sdf(points[:, None], cones[None])  # (100, 20)
    t = np.linspace(0.0, 1.0, 2001)  # the hull of two spheres is the union of the spheres between them
    centres = cones[None, :, None, 0:3] + t[None, None, :, None] * (cones[:, 4:7] - cones[:, 0:3])[None, :, None]
    radii = cones[None, :, None, 3] + t[None, None, :] * (cones[:, 7] - cones[:, 3])[None, :, None]
    outside = (np.linalg.norm(points[:, None, None] - centres, axis=-1) - radii).min(-1)
    np.testing.assert_allclose(sdf, outside, atol=1e-3)
    torch_sdf = th.round_cone_sdf(torch.tensor(points[:, None]), torch.tensor(cones[None]))
    np.testing.assert_allclose(torch_sdf.numpy(), sdf, atol=1e-9)


def test_gradcheck_through_kinematics_cones_and_distances():
    """float64 gradcheck of points' distances to the hand's cones w.r.t. angles, cup and bone lengths."""
    shape, pose = _hands(4, 1)[0]
    s = th.HandShapeArrays.from_shape(shape)
    points = torch.tensor([[10.0, 60.0, 15.0], [25.0, 110.0, -5.0], [-20.0, 90.0, 12.0]], dtype=torch.float64)

    def distances(chain, cup, length):
        joints = th.forward_kinematics(s.base_xyz_mm, length, chain, cup)
        cones = th.hand_cones(s, joints, fill=True)
        return th.round_cone_sdf(points[:, None], cones[None]).min(-1).values

    chain = torch.tensor(pose.chain_deg, dtype=torch.float64, requires_grad=True)
    cup = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    length = s.bone_length_mm.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(distances, (chain, cup, length), eps=1e-6, atol=1e-5)
    w = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(th.rodrigues, (w,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("w", [np.zeros(3), np.array([0.3, -0.1, 0.2]), np.array([0.0, 0.0, 1e-6])])
def test_rodrigues_is_a_rotation_about_its_vector(w):
    rot = th.rodrigues(w)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(rot @ w, w, atol=1e-12)


def test_clamp_to_limits_keeps_every_angle_inside():
    chain = np.random.default_rng(5).uniform(-200.0, 200.0, (10, 5, 4))
    clamped = th.clamp_to_limits(chain)
    assert np.all(clamped >= LIMITS_DEG[..., 0]) and np.all(clamped <= LIMITS_DEG[..., 1])
    inside = np.clip(chain, LIMITS_DEG[..., 0], LIMITS_DEG[..., 1])
    np.testing.assert_array_equal(clamped, inside)
