"""Inverse kinematics of the hand model, and the real-hand pose prior built with it."""

import numpy as np
import pytest

from srnpose.hand import kinematics as hm
from srnpose.hand.ik import ANGLE_NAMES, _chain_local, fit_pose, fit_poses, joint_angles_dict
from srnpose.hand.skeleton import convert
from srnpose.synth.poses import LIMITS_DEG, load_pose_prior, prior_chain, sample_pose

# Measured: the first 50 FPHA poses fit with a mean residual of 2.44 mm (6.48 mm without the roll).
REAL_MEAN_RESIDUAL_MM = 3.0


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_one_forward_pass_batched_as_per_hand_and_the_solver_s_chains_agree():
    """kinematics.forward_kinematics_batch is the one forward pass: a batch gives exactly each hand's
    joints (the synthetic engine runs it per hand), and the chain model the IK solve fits
    (ik._chain_local, closed form) places the same joints through the rest frames."""
    rng = np.random.default_rng(0)
    shapes, poses = [], []
    for _ in range(6):
        shapes.append(hm.sample_shape(rng))
        pose, _ = sample_pose(rng)
        poses.append(hm.HandPose(pose.chain_deg, pose.wrist_deg, float(rng.uniform(0.0, 1.0))))
    base = np.stack([s.base_xyz_mm for s in shapes]).reshape(2, 3, 5, 3)
    length = np.stack([s.bone_length_mm for s in shapes]).reshape(2, 3, 5, 3)
    angles = np.stack([p.chain_deg for p in poses]).reshape(2, 3, 5, 4)
    cup = np.array([p.cup for p in poses]).reshape(2, 3)
    batch = hm.forward_kinematics_batch(base, length, angles, cup)  # (2, 3, 21, 3)
    assert batch.shape == (2, 3, 21, 3)
    for i, (shape, pose) in enumerate(zip(shapes, poses)):
        np.testing.assert_array_equal(batch.reshape(6, 21, 3)[i], hm.forward_kinematics(shape, pose))
    joints = batch.reshape(6, 21, 3)
    lifted = joints[:, hm.CHAIN_JOINTS[:, 0]]  # (6, 5, 3) chain bases, cup lift included
    local = _chain_local(angles.reshape(6, 5, 4), length.reshape(6, 5, 3))  # (6, 5, 3, 3)
    via_rest = local @ hm.rest_frames(cup.reshape(6)).swapaxes(-1, -2) + lifted[:, :, None]
    np.testing.assert_allclose(via_rest, joints[:, hm.CHAIN_JOINTS[:, 1:]], atol=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_round_trip_recovers_pose_frame_and_handedness(seed):
    rng = np.random.default_rng(100 + seed)
    shape = hm.sample_shape(rng)
    pose, _ = sample_pose(rng, ("random", "fist", "pinch", "open", "counting", "point")[seed])
    rot = _random_rotation(rng)
    assert np.linalg.det(rot) > 0
    trans = rng.uniform(-300.0, 300.0, size=3) + [0.0, 0.0, 600.0]
    left = seed % 2 == 1
    joints_h = hm.forward_kinematics(shape, pose)
    given = (hm.mirror_x(joints_h) if left else joints_h) @ rot.T + trans

    fit = fit_pose(given)
    assert fit.mirrored == left
    assert fit.residual_mm < 1.0
    assert np.abs(fit.joints_xyz - given).max() < 1.0
    np.testing.assert_allclose(fit.pose.chain_deg, pose.chain_deg, atol=0.5)
    assert abs(fit.pose.cup - pose.cup) < 0.01
    np.testing.assert_allclose(fit.rotation, rot, atol=0.01)
    np.testing.assert_allclose(fit.translation, trans, atol=1e-6)
    np.testing.assert_allclose(fit.shape.bone_length_mm, shape.bone_length_mm, atol=1e-6)
    # the fit's own parts rebuild its skeleton through the hand model
    rebuilt = hm.forward_kinematics(fit.shape, fit.pose)
    rebuilt = (hm.mirror_x(rebuilt) if fit.mirrored else rebuilt) @ fit.rotation.T + fit.translation
    np.testing.assert_allclose(rebuilt, fit.joints_xyz, atol=1e-6)


def test_fit_keeps_angles_inside_the_limits():
    rng = np.random.default_rng(5)
    joints = rng.normal(0.0, 40.0, size=(20, 21, 3))  # not hands at all
    fit = fit_poses(joints)
    assert np.all(fit.chain_deg >= LIMITS_DEG[..., 0]) and np.all(fit.chain_deg <= LIMITS_DEG[..., 1])
    assert np.all(fit.residual_mm > 1.0)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\(21, 3\)"):
        fit_pose(np.zeros((20, 3)))
    with pytest.raises(ValueError, match="NaN"):
        fit_poses(np.full((2, 21, 3), np.nan))


def test_joint_angles_dict_names_every_angle():
    pose, _ = sample_pose(np.random.default_rng(3), "pinch")
    angles = joint_angles_dict(pose)
    assert len(angles) == 22 and len(set(ANGLE_NAMES[0] + ANGLE_NAMES[1])) == 8
    assert angles["index_mcp_flexion"] == pose.chain_deg[1, 0]
    assert angles["little_mcp_abduction"] == pose.chain_deg[4, 1]
    assert angles["thumb_cmc_abduction"] == pose.chain_deg[0, 1]
    assert angles["thumb_ip_flexion"] == pose.chain_deg[0, 3]
    assert angles["wrist_flexion"] == pose.wrist_deg[0]


def test_real_fpha_poses_fit_as_right_hands(shared_data):
    data = np.load(shared_data / "poses" / "fpha_poses.npz")
    joints = convert(data["xyz_mm"][:50].astype(np.float64), "hands17", "canonical")
    fit = fit_poses(joints)
    assert not fit.mirrored.any()  # FPHA records right hands
    assert fit.residual_mm.mean() < REAL_MEAN_RESIDUAL_MM
    assert fit_poses(joints, mirrored=False, roll=False).residual_mm.mean() > fit.residual_mm.mean() + 2.0


def test_shipped_prior_table_loads_with_attribution():
    prior = load_pose_prior()
    assert "FPHA" in prior.attribution and "Garcia-Hernando" in prior.attribution
    assert prior.chain_deg.shape[1:] == (5, 4) and len(prior.chain_deg) > 25000
    assert np.all(prior.chain_deg >= LIMITS_DEG[..., 0]) and np.all(prior.chain_deg <= LIMITS_DEG[..., 1])
    assert prior.residual_mm.max() <= 10.0
    assert len(prior.sequence) == len(prior.chain_deg) and prior.sequence.max() < len(prior.sequence_names)


def test_prior_family_is_deterministic_within_limits_and_varied():
    poses = [sample_pose(np.random.default_rng(seed), "prior") for seed in range(40)]
    again, name = sample_pose(np.random.default_rng(7), "prior")
    assert name == "prior"
    np.testing.assert_array_equal(again.chain_deg, poses[7][0].chain_deg)
    chains = np.stack([p.chain_deg for p, _ in poses])
    assert np.all(chains >= LIMITS_DEG[..., 0]) and np.all(chains <= LIMITS_DEG[..., 1])
    assert chains[:, 1:, 0].std() > 10.0  # rows differ (not one pose plus noise)


def test_prior_chain_recouples_pip_and_dip_keeping_their_sum():
    row = np.zeros((5, 4))
    row[:, 2], row[:, 3] = 0.0, 60.0  # FPHA's straight PIP under a bent DIP
    chain = prior_chain(row)
    np.testing.assert_allclose(chain[1:, 2] + chain[1:, 3], 60.0)
    np.testing.assert_allclose(chain[1:, 3] / chain[1:, 2], 0.67)
    np.testing.assert_array_equal(chain[0], row[0])
