"""srnpose.evaluation.quality: a right skeleton passes each label-free measure, a wrong one fails it."""

import numpy as np
import pytest

from srnpose.evaluation import quality
from srnpose.geometry import Intrinsics, uvd_to_xyz
from srnpose.hand import skeleton
from srnpose.synth import render_frame

RES = (160, 120)


def in_frame_frames(count: int = 3) -> list:
    """Tiny synthetic frames whose 21 joints all project inside the frame (off-frame joints miss the
    silhouette by definition, even true ones)."""
    frames = []
    for seed in range(40):
        f = render_frame(seed, resolution=RES)
        u, v = f.joints_uvd[:, 0], f.joints_uvd[:, 1]
        if np.all((u >= 1) & (u <= RES[0] - 2) & (v >= 1) & (v <= RES[1] - 2)):
            frames.append(f)
        if len(frames) == count:
            return frames
    raise AssertionError("too few synthetic frames with the whole hand in view")


@pytest.fixture(scope="module")
def frames():
    return in_frame_frames()


def test_frame_uvd_round_trip_and_mirroring():
    K = Intrinsics(363.9, 363.9, 255.4, 206.3)
    xyz = np.array([[10.0, -20.0, 600.0], [-50.0, 30.0, 450.0]])
    for mirrored in (False, True):
        uvd = quality.frame_uvd(xyz, K, 512, mirrored)
        np.testing.assert_allclose(quality.frame_xyz(uvd, K, 512, mirrored), xyz, atol=1e-9)
    plain, flipped = quality.frame_uvd(xyz, K, 512), quality.frame_uvd(xyz, K, 512, True)
    np.testing.assert_allclose(flipped[:, 0], 511 - plain[:, 0])


def test_true_joints_pass_every_measure(frames):
    for f in frames:
        q = quality.frame_quality(f.depth_mm, f.joints_xyz, f.intrinsics, "canonical")
        assert q.pop("hand_uncovered") < 0.05, (f.seed, q)  # a few edge pixels beyond 25 mm of a bone
        assert q == {"surface_violation": 0.0, "silhouette_miss": 0.0, "bone_length_outliers": 0.0,
                     "finger_fold_outliers": 0.0}, (f.seed, q)
        gap = quality.surface_gap_mm(f.depth_mm, f.joints_xyz, f.intrinsics)
        assert np.nanmin(gap) > -5.0  # every joint lies behind (or at) the surface it projects onto


def test_skeleton_towards_camera_fails_surface(frames):
    # 60 mm nearer than the hand: the visible joints float in front of the skin.
    shares = [quality.surface_violation(f.depth_mm, f.joints_xyz - [0.0, 0.0, 60.0], f.intrinsics)
              for f in frames]
    assert np.mean(shares) > 0.5, shares


def test_skeleton_beside_hand_fails_silhouette(frames):
    shares = [quality.silhouette_miss(f.depth_mm, f.joints_xyz + [80.0, 0.0, 0.0], f.intrinsics)
              for f in frames]
    assert np.mean(shares) > 0.5, shares
    # the pixel test alone: right pixels at a wrong depth still hit the silhouette
    f = frames[0]
    assert quality.silhouette_miss(f.depth_mm, f.joints_xyz * (1.0 + 40.0 / np.median(f.joints_xyz[:, 2])),
                                   f.intrinsics) == 0.0


def test_squeezed_fingers_leave_the_hand_uncovered(frames):
    """Chains drawn halfway to the middle finger's (each joint still on the hand, each bone a plausible
    length) leave the outer fingers without a bone."""
    true, squeezed = [], []
    for f in frames:
        j = f.joints_xyz
        sq = j.copy()
        for chain in range(5):
            sq[1 + 4 * chain: 5 + 4 * chain] = 0.5 * j[1 + 4 * chain: 5 + 4 * chain] + 0.5 * j[9:13]
        true.append(quality.hand_uncovered(f.depth_mm, j, f.intrinsics))
        squeezed.append(quality.hand_uncovered(f.depth_mm, sq, f.intrinsics))
        mirrored = np.ascontiguousarray(f.depth_mm[:, ::-1])
        assert quality.hand_uncovered(mirrored, sq, f.intrinsics, mirrored=True) == squeezed[-1]
    assert np.mean(squeezed) > 0.15 and np.mean(squeezed) > 4 * np.mean(true), (true, squeezed)
    assert np.isnan(quality.hand_uncovered(frames[0].depth_mm, np.full((21, 3), np.nan), frames[0].intrinsics))


def test_mirrored_frame_gives_the_same_measures(frames):
    f = frames[0]
    wrong = f.joints_xyz + [0.0, 0.0, -60.0]
    mirrored = np.ascontiguousarray(f.depth_mm[:, ::-1])
    K = f.intrinsics
    for joints in (f.joints_xyz, wrong):
        assert quality.surface_violation(mirrored, joints, K, mirrored=True) == quality.surface_violation(
            f.depth_mm, joints, K)
        assert quality.silhouette_miss(mirrored, joints, K, mirrored=True) == quality.silhouette_miss(
            f.depth_mm, joints, K)


def test_depth_unit_and_unjudged_joints():
    K = Intrinsics(100.0, 100.0, 20.0, 20.0)
    depth_raw = np.full((40, 40), 5000, dtype=np.uint16)  # 500 mm in 0.1 mm units
    joints = np.array([[0.0, 0.0, 510.0], [0.0, 0.0, 480.0], [1e4, 0.0, 500.0]])  # behind, in front, off-frame
    gap = quality.surface_gap_mm(depth_raw, joints, K, depth_unit_mm=0.1)
    np.testing.assert_allclose(gap[:2], [10.0, -20.0])
    assert np.isnan(gap[2])
    assert quality.surface_violation(depth_raw, joints, K, depth_unit_mm=0.1) == 0.5  # 1 of the 2 judged
    assert quality.silhouette_miss(depth_raw, joints, K, depth_unit_mm=0.1) == pytest.approx(1 / 3)
    nan = np.full((3, 3), np.nan)
    assert np.isnan(quality.surface_violation(depth_raw, nan, K))
    assert np.isnan(quality.silhouette_miss(depth_raw, nan, K))


def test_stretched_finger_fails_bone_lengths(frames):
    joints = frames[0].joints_xyz.copy()
    mcp = joints[5]
    joints[6:9] = mcp + 2.0 * (joints[6:9] - mcp)  # index finger twice as long
    assert quality.bone_length_outliers(joints) == pytest.approx(3 / 20)  # its three phalanges
    collapsed = joints.mean(axis=0) + 0.2 * (frames[0].joints_xyz - joints.mean(axis=0))
    assert quality.bone_length_outliers(collapsed) > 0.9  # a network predicting a shrunken mean hand


def test_bone_ranges_cover_the_nominal_hand_in_every_layout():
    from srnpose.hand import kinematics as hm
    from srnpose.synth.poses import sample_pose

    shape = hm.nominal_shape()
    pose, _ = sample_pose(np.random.default_rng(1), "open")
    joints = hm.forward_kinematics(shape, pose)
    for name in skeleton.LAYOUTS:
        rng = quality.bone_length_range_mm(name)
        assert rng.shape == (len(skeleton.get_layout(name).bones), 2) and np.all(rng[:, 0] < rng[:, 1])
        lengths = quality.bone_lengths_mm(skeleton.convert(joints, "canonical", name), name)
        assert np.all((lengths >= rng[:, 0]) & (lengths <= rng[:, 1])), name
        assert quality.bone_length_outliers(skeleton.convert(2.0 * joints, "canonical", name), name) > 0.5, name


def test_folded_finger_fails_fold_check(frames):
    joints = frames[0].joints_xyz.copy()
    assert quality.finger_fold_outliers(joints) == 0.0
    joints[8] = joints[7] - (joints[7] - joints[6])  # index TIP folded back onto its PIP: DIP bends 180 deg
    assert quality.finger_fold_outliers(joints) == pytest.approx(1 / 10)
    assert np.isnan(quality.finger_fold_outliers(skeleton.convert(joints, "canonical", "nyu"), "nyu"))
    hands17 = skeleton.convert(joints, "canonical", "hands17")
    assert quality.finger_fold_outliers(hands17, "hands17") == pytest.approx(1 / 10)


def test_jitter():
    rng = np.random.default_rng(0)
    still = np.broadcast_to(rng.normal(size=(1, 21, 3)) * 50, (10, 21, 3))
    assert quality.jitter_mm(still) == 0.0
    sigma = 2.0
    noisy = still + rng.normal(0.0, sigma, size=still.shape)
    # the difference of two N(0, s^2 I3) points has norm sqrt(2) s chi_3; chi_3's median is 1.538
    many = rng.normal(0.0, sigma, size=(2000, 21, 3))
    assert quality.jitter_mm(many) == pytest.approx(np.sqrt(2) * sigma * 1.538, rel=0.03)
    assert quality.jitter_mm(noisy) > 1.0
    moving = still + np.arange(10)[:, None, None] * np.array([3.0, 4.0, 0.0])  # rigid 5 mm per frame
    assert quality.jitter_mm(moving) == pytest.approx(5.0)
    assert quality.jitter_mm(moving, about_centroid=True) == pytest.approx(0.0, abs=1e-9)
    gappy = moving.copy()
    gappy[3] = np.nan  # a frame without a hand drops its two pairs
    assert quality.jitter_mm(gappy) == pytest.approx(5.0)


def test_quality_report(frames):
    depths = [f.depth_mm for f in frames]
    joints = np.stack([f.joints_xyz for f in frames])
    joints[1] = np.nan  # no hand in frame 1
    report = quality.quality_report(depths, joints, frames[0].intrinsics, layout="canonical")
    assert report["frames"] == 3 and report["hands_found"] == 2 and report["layout"] == "canonical"
    assert report["mean"].pop("hand_uncovered") < 0.05
    assert report["mean"] == {m: 0.0 for m in quality.PER_FRAME_MEASURES if m != "hand_uncovered"}
    assert report["per_frame"][1]["hand_found"] is False
    assert np.isnan(report["per_frame"][1]["surface_violation"])
    assert np.isnan(report["jitter_mm"])  # no consecutive pair with a hand in both
    wrong = np.stack([f.joints_xyz - [0.0, 0.0, 60.0] for f in frames])
    wrong_report = quality.quality_report(depths, wrong, frames[0].intrinsics, "canonical")
    assert wrong_report["mean"]["surface_violation"] > 0.5
    with pytest.raises(ValueError, match="2 frames but 3"):
        quality.quality_report(depths[:2], joints, frames[0].intrinsics, "canonical")


def test_real_nyu_labels_pass(shared_data):
    """The labelled NYU frame: its 14 joints lie 3-40 mm behind the surface and pass every measure;
    the community's NYU ground truth and the best methods' predictions keep their bones in range."""
    from srnpose.data.datasets import load_records

    record = load_records(f"nyu:{shared_data / 'nyu_frame'}", "test")[0]
    depth, K = record.load_depth(), record.intrinsics
    xyz = uvd_to_xyz(record.joints_uvd, K)
    gap = quality.surface_gap_mm(depth, xyz, K)
    assert np.all((gap > 3.0) & (gap < 40.0)), gap
    q = quality.frame_quality(depth, xyz, K, "nyu")
    assert q["surface_violation"] == q["silhouette_miss"] == q["bone_length_outliers"] == 0.0
    assert quality.surface_violation(depth, xyz - [0.0, 0.0, 60.0], K) > 0.9
    K_nyu = Intrinsics(588.03, -587.07, 320.0, 240.0)
    rng = quality.bone_length_range_mm("nyu")
    for name, limit in (("nyu_test_groundtruth_label.txt", 0.001), ("V2V-PoseNet.txt", 0.01)):
        uvd = np.loadtxt(shared_data / "community_eval" / "nyu" / name).reshape(-1, 14, 3)
        lengths = quality.bone_lengths_mm(uvd_to_xyz(uvd, K_nyu), "nyu")  # (N, 13)
        out = (lengths < rng[:, 0] - quality.BONE_MARGIN_MM) | (lengths > rng[:, 1] + quality.BONE_MARGIN_MM)
        assert out.mean() < limit, (name, out.mean())


def test_spread_and_fingertip_reach_see_a_bunched_hand(frames):
    """The joints' spread is a known number; a skeleton whose fingers are pulled halfway to the
    centroid (bunched) spreads half as far and its fingertips reach less far than the true one's."""
    joints = np.array([[0.0, 0.0, 500.0], [30.0, 0.0, 500.0], [0.0, 40.0, 500.0], [-30.0, -40.0, 500.0]])
    assert quality.joint_spread_mm(joints) == pytest.approx(np.mean([0.0, 30.0, 40.0, 50.0]))
    for f in frames:
        true = f.joints_xyz
        bunched = true.mean(0) + 0.5 * (true - true.mean(0))
        assert quality.joint_spread_mm(bunched) == pytest.approx(0.5 * quality.joint_spread_mm(true))
        reach, reach_bunched = (quality.fingertip_reach(f.depth_mm, j, f.intrinsics) for j in (true, bunched))
        assert reach_bunched < 0.75 * reach, (reach, reach_bunched)
    assert np.isnan(quality.fingertip_reach(np.zeros_like(frames[0].depth_mm), frames[0].joints_xyz,
                                            frames[0].intrinsics))
