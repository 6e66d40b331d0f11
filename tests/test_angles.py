"""Joint angles and constant-bone skeletons fitted through a sequence of predictions (srnpose.hand.angles)."""

import dataclasses
import json

import numpy as np
import pytest

from srnpose.errors import UserError
from srnpose.hand import kinematics as hm
from srnpose.hand.angles import ANGLE_NAMES, fit_angles
from srnpose.hand.ik import _CHAIN_JOINTS, fit_sequence
from srnpose.inference.estimator import PoseResult
from srnpose.synth.poses import LIMITS_DEG, sample_pose


def _sequence(seed: int, frames: int, left: bool):
    """One hand (one shape) in ``frames`` random poses and rigid frames: joints (N, 21, 3), angles (N, 5, 4)."""
    rng = np.random.default_rng(seed)
    shape = hm.sample_shape(rng)
    joints, angles = [], []
    for _ in range(frames):
        pose, _ = sample_pose(rng)
        pose = hm.HandPose(pose.chain_deg, pose.wrist_deg, 0.4)  # one palm arch: part of the shape here
        j = hm.forward_kinematics(shape, pose)
        rot = hm.rot_x(rng.uniform(-80, 80)) @ hm.rot_y(rng.uniform(-80, 80)) @ hm.rot_z(rng.uniform(-180, 180))
        joints.append((hm.mirror_x(j) if left else j) @ rot.T + rng.uniform(-200, 200, 3) + [0, 0, 700])
        angles.append(pose.chain_deg)
    return np.array(joints), np.array(angles), shape


def _bones(joints: np.ndarray) -> np.ndarray:
    chains = np.concatenate([np.repeat(joints[:, :1, None], 5, 1), joints[:, _CHAIN_JOINTS]], 2)  # wrist first
    return np.linalg.norm(np.diff(chains, axis=2), axis=-1)  # (N, 5, 4)


@pytest.mark.parametrize("left", [False, True])
def test_sequence_round_trip_angles_bones_and_handedness(left):
    joints, angles, shape = _sequence(3 + left, 12, left)
    fit = fit_sequence(joints)
    assert fit.mirrored.tolist() == [left] * 12
    np.testing.assert_allclose(fit.chain_deg, angles, atol=0.5)  # angles -> joints -> angles
    assert fit.residual_mm.max() < 0.01
    np.testing.assert_allclose(fit.bone_length_mm[0], shape.bone_length_mm, atol=1e-6)


def test_fitted_skeleton_keeps_every_bone_and_stays_in_the_limits():
    joints, _, _ = _sequence(7, 15, False)
    rng = np.random.default_rng(0)
    noisy = joints + rng.normal(0.0, 6.0, joints.shape)  # a network's errors, roughly
    fit = fit_sequence(noisy)
    bones = _bones(fit.joints_xyz)
    assert bones.std(0).max() < 1e-6  # all 20 bones, palm included, constant over the sequence
    assert _bones(noisy).std(0).max() > 3.0
    assert (fit.chain_deg >= LIMITS_DEG[..., 0] - 1e-6).all() and (fit.chain_deg <= LIMITS_DEG[..., 1] + 1e-6).all()
    # a skeleton the hand can make is closer to the truth than the noisy one it was fitted to
    err = lambda a: np.linalg.norm(a - joints, axis=-1).mean()  # noqa: E731
    assert err(fit.joints_xyz) < 0.9 * err(noisy)


def _result(joints: np.ndarray | None, layout: str = "canonical") -> PoseResult:
    nan = np.full((21, 3), np.nan)
    found = joints is not None
    j = joints if found else nan
    return PoseResult(found, j, j, np.zeros(3), j[None], np.zeros(4), {"total": 1.0}, layout)


def test_fit_angles_fills_results_and_their_json():
    joints, angles, _ = _sequence(11, 4, True)
    results = [_result(joints[0]), _result(None), *[_result(j) for j in joints[1:]]]
    fitted = fit_angles(results)
    assert fitted[1].joint_angles is None and fitted[1].to_json(1).get("joint_angles") is None
    record = json.loads(json.dumps(fitted[0].to_json("f0")))
    assert list(record["joint_angles"]) == list(ANGLE_NAMES) and len(ANGLE_NAMES) == 20
    assert record["handedness"] == "left"
    assert abs(record["joint_angles"]["index_pip_flexion"] - angles[0, 1, 2]) < 0.5
    assert np.array(record["joints_fitted_xyz"]).shape == (21, 3)
    assert fit_angles(results, handedness="right")[0].handedness == "right"


def test_fit_angles_refuses_other_layouts_in_one_line():
    r = dataclasses.replace(_result(np.zeros((21, 3))), layout="nyu")
    with pytest.raises(UserError, match="21-joint model.*nyu"):
        fit_angles([r])
    with pytest.raises(UserError, match="handedness"):
        fit_angles([r], handedness="both")
