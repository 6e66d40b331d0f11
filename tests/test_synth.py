"""The synthetic engine: determinism, file format, label/depth consistency, anatomy, mirror, dataset."""

import json

import numpy as np
import pytest

from srnpose.geometry import Intrinsics, xyz_to_uvd
from srnpose.hand import kinematics as hm
from srnpose.hand.skeleton import CANONICAL_NAMES
from srnpose.synth import SynthDataset, frame_seed, read_labels, render_frame, visible_joints, write_dataset
from srnpose.synth.poses import FAMILIES, LIMITS_DEG, sample_pose
from srnpose.synth.writer import encode_png16


def test_same_seed_same_files(tmp_path):
    a = write_dataset(tmp_path / "a", 5, seed=3, progress=False)
    b = write_dataset(tmp_path / "b", 5, seed=3, workers=2, progress=False)
    names = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    c = write_dataset(tmp_path / "c", 5, seed=4, progress=False)
    assert (a / "labels.txt").read_bytes() != (c / "labels.txt").read_bytes()


def test_native_file_format(tmp_path):
    from PIL import Image

    out = write_dataset(tmp_path / "s", 3, seed=1, resolution=(160, 120), progress=False)
    meta = json.loads((out / "meta.json").read_text())
    assert set(meta) == {"intrinsics", "resolution", "depth_unit_mm", "joints", "frames", "seed", "engine"}
    assert meta["engine"] == "v1"  # the library's default; srnpose synth defaults to v2
    assert set(meta["intrinsics"]) == {"fx", "fy", "cx", "cy"}
    assert meta["resolution"] == [160, 120] and meta["frames"] == 3 and meta["seed"] == 1
    assert meta["depth_unit_mm"] == 1.0 and meta["joints"] == list(CANONICAL_NAMES)
    assert sorted(p.name for p in (out / "depth").iterdir()) == ["000000.png", "000001.png", "000002.png"]
    with Image.open(out / "depth" / "000001.png") as img:
        assert img.format == "PNG" and img.mode == "I;16" and img.size == (160, 120)
        depth = np.asarray(img)
    frame = render_frame(frame_seed(1, 1), Intrinsics(**meta["intrinsics"]), (160, 120))
    assert np.array_equal(depth, frame.depth_mm)
    lines = (out / "labels.txt").read_text().splitlines()
    assert len(lines) == 3 and all(len(line.split(" ")) == 63 for line in lines)
    np.testing.assert_allclose(read_labels(out / "labels.txt")[1], frame.joints_uvd, atol=1e-3)


def test_png_encoder_round_trip(tmp_path):
    from PIL import Image

    depth = np.random.default_rng(0).integers(0, 65536, size=(7, 5)).astype(np.uint16)
    (tmp_path / "x.png").write_bytes(encode_png16(depth))
    with Image.open(tmp_path / "x.png") as img:
        assert img.mode == "I;16" and np.array_equal(np.asarray(img), depth)


def test_frame_contents_and_label_depth_consistency():
    diffs = []
    for seed in range(12):
        frame = render_frame(seed)
        assert frame.depth_mm.shape == (240, 320) and frame.depth_mm.dtype == np.uint16
        assert frame.joints_xyz.shape == (21, 3) and frame.joints_uvd.shape == (21, 3)
        np.testing.assert_allclose(xyz_to_uvd(frame.joints_xyz, frame.intrinsics), frame.joints_uvd)
        assert 250 - 200 < np.median(frame.joints_xyz[:, 2]) < 700 + 200
        vis = visible_joints(frame)
        u, v = np.rint(frame.joints_uvd[vis, :2]).astype(int).T
        diffs += list(frame.joints_uvd[vis, 2] - frame.depth_mm[v, u])
    # Joints lie inside the fingers: the visible surface is a few mm to ~25 mm in front of them.
    assert len(diffs) > 50
    assert 3.0 <= np.median(diffs) <= 25.0
    assert np.percentile(diffs, 5) > -5.0


def test_render_is_deterministic_and_varies():
    a, b, c = render_frame(11), render_frame(11), render_frame(12)
    assert np.array_equal(a.depth_mm, b.depth_mm) and np.array_equal(a.joints_uvd, b.joints_uvd)
    assert not np.array_equal(a.joints_uvd, c.joints_uvd)


def test_hand_is_nearest_with_distractors():
    for seed in range(20):
        frame = render_frame(seed)
        hand = (frame.part >= 0)
        other = frame.part == -2
        if hand.any() and other.any():
            assert frame.depth_mm[other & (frame.depth_mm > 0)].min(initial=65535) > \
                frame.joints_xyz[:, 2].min()


def test_any_camera_and_resolution():
    k = Intrinsics(475.0, 475.0, 79.5, 59.5)
    frame = render_frame(5, k, (160, 120), distractors=False)
    assert frame.depth_mm.shape == (120, 160) and frame.intrinsics == k
    nyu = render_frame(5, Intrinsics(588.03, -587.07, 320.0, 240.0), (640, 480))
    assert nyu.depth_mm.shape == (480, 640) and (nyu.depth_mm > 0).sum() > 500
    # NYU's fy < 0: the fingers still point up in the image most of the time (tip v < wrist v).
    ups = [render_frame(s, Intrinsics(588.03, -587.07, 320.0, 240.0), (64, 48)).joints_uvd for s in range(30)]
    assert np.mean([j[12, 1] < j[0, 1] for j in ups]) > 0.6


@pytest.mark.parametrize("family", list(FAMILIES))
def test_pose_families_respect_joint_limits(family):
    rng = np.random.default_rng(0)
    for _ in range(30):
        pose, name = sample_pose(rng, family)
        assert name == family
        assert np.all(pose.chain_deg >= LIMITS_DEG[..., 0]) and np.all(pose.chain_deg <= LIMITS_DEG[..., 1])


def test_hand_length_and_bone_lengths():
    rng = np.random.default_rng(1)
    lengths = []
    for _ in range(50):
        shape = hm.sample_shape(rng)
        open_pose = hm.HandPose(np.zeros((5, 4)), np.zeros(2))
        joints = hm.forward_kinematics(shape, open_pose)
        length = np.linalg.norm(joints[12] - joints[0])  # wrist to middle tip, fingers straight
        assert 160.0 <= length <= 210.0
        lengths.append(length)
        # bone lengths do not change with the pose
        pose, _ = sample_pose(rng)
        bent = hm.forward_kinematics(shape, pose)
        for f in range(5):
            chain_open = joints[1 + 4 * f: 5 + 4 * f]
            chain_bent = bent[1 + 4 * f: 5 + 4 * f]
            np.testing.assert_allclose(np.linalg.norm(np.diff(chain_open, axis=0), axis=1),
                                       np.linalg.norm(np.diff(chain_bent, axis=0), axis=1))
    assert np.ptp(lengths) > 25.0  # hands vary in size


def test_fist_is_compact_and_open_is_not():
    rng = np.random.default_rng(2)
    shape = hm.nominal_shape()
    fist, _ = sample_pose(rng, "fist")
    opened, _ = sample_pose(rng, "open")
    j_fist = hm.forward_kinematics(shape, fist)
    j_open = hm.forward_kinematics(shape, opened)
    assert np.linalg.norm(j_fist[12] - j_fist[0]) < 0.6 * np.linalg.norm(j_open[12] - j_open[0])


def test_left_hand_is_mirror_of_right():
    shape = hm.nominal_shape()
    pose, _ = sample_pose(np.random.default_rng(3), "point")
    joints = hm.forward_kinematics(shape, pose)
    right = hm.primitives(shape, pose, joints)
    left = right.transformed(hm.MIRROR_X, np.zeros(3))
    np.testing.assert_allclose(hm.mirror_x(hm.mirror_x(joints)), joints)
    k = Intrinsics(200.0, 200.0, 31.5, 31.5)
    place = np.array([0.0, -60.0, 400.0])
    from srnpose.synth.render import cast

    z_right = cast(right.transformed(np.eye(3), place), k, 64, 64).z_mm
    z_left = cast(left.transformed(np.eye(3), place), k, 64, 64).z_mm
    # The mirror x -> -x about the optical axis mirrors the image left-right (cx at the centre).
    np.testing.assert_allclose(z_left, z_right[:, ::-1], atol=0.05)
    assert not np.allclose(z_left, z_right, atol=0.05)
    # Handedness in the thumb: the right thumb is on +x (radial), the left one on -x.
    assert joints[1, 0] > joints[17, 0] and hm.mirror_x(joints)[1, 0] < hm.mirror_x(joints)[17, 0]


def test_both_hands_are_sampled():
    assert {render_frame(s, resolution=(32, 24)).is_left for s in range(16)} == {True, False}


def test_synth_dataset_items():
    from srnpose.data.records import HandRecord

    ds = SynthDataset(4, seed=2, resolution=(64, 48))
    assert len(ds) == 4
    rec = ds[1]
    assert isinstance(rec, HandRecord) and rec.frame_id == "synth:2:1"
    assert rec.depth.dtype == np.float32 and rec.depth.shape == (48, 64) and rec.joints_uvd.shape == (21, 3)
    frame = render_frame(frame_seed(2, 1), rec.intrinsics, (64, 48))
    np.testing.assert_array_equal(rec.depth, frame.depth_mm.astype(np.float32))
    with pytest.raises(IndexError):
        ds[4]
