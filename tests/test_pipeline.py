import numpy as np
import torch

from srnpose import geometry
from srnpose.cameras import CAMERAS
from srnpose.data.centering import CenterPolicy
from srnpose.data.pipeline import CropConfig, collate, make_sample, nrm_to_xyz
from srnpose.data.records import HandRecord

K = CAMERAS["icvl"].intrinsics
POLICY = CenterPolicy.for_rule("depth", 250.0)  # the crop's centre and cube: the policy's


def _blob_record():
    """A frame with a 'hand' of small disks, each marking one joint 10 mm behind its surface."""
    rng = np.random.default_rng(0)
    depth = np.zeros((240, 320), np.float32)
    depth[:, :] = 1500.0  # wall
    angles = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    joints_xyz = np.stack([60 * np.cos(angles), 60 * np.sin(angles), 450 + rng.uniform(-40, 40, 6)], -1)
    joints_uvd = geometry.xyz_to_uvd(joints_xyz, K)
    vv, uu = np.mgrid[:240, :320]
    for u, v, d in sorted(joints_uvd, key=lambda j: -j[2]):
        depth[(uu - u) ** 2 + (vv - v) ** 2 <= 64] = d - 10.0
    return HandRecord(joints_uvd=joints_uvd, intrinsics=K, depth=depth, frame_id="blobs")


def test_sample_keys_shapes_and_joints_inside():
    s = make_sample(_blob_record(), CropConfig(input_size=64), POLICY)
    assert s["depth"].shape == (1, 64, 64) and s["depth"].dtype == np.float32
    assert s["joints_nrm"].shape == (6, 3)
    assert np.all(np.abs(s["joints_nrm"]) < 1)
    assert s["depth"].min() >= -1 and s["depth"].max() <= 1


def test_augmented_depth_and_joints_stay_consistent():
    """After rotation/scale/translation, each joint's crop pixel still reads its own disk's depth."""
    record = _blob_record()
    cfg = CropConfig(input_size=64, augment=True)
    for seed in range(5):
        s = make_sample(record, cfg, POLICY, np.random.default_rng(seed))
        S = cfg.input_size
        for (un, vn, _dn), (_, _, d_true) in zip(s["joints_nrm"], record.joints_uvd):
            j, i = int(round((un + 1) * S / 2 - 0.5)), int(round((vn + 1) * S / 2 - 0.5))
            if 0 <= i < S and 0 <= j < S:
                depth_nrm = s["depth"][0, i, j]
                surface_mm = depth_nrm * s["cube_mm"][2] / 2 + s["center_uvd"][2]
                assert abs(surface_mm - (d_true - 10.0)) < 1.0 or depth_nrm >= 1.0


def test_normalized_joints_map_back_to_mm_exactly():
    record = _blob_record()
    samples = [make_sample(record, CropConfig(input_size=32, augment=True), POLICY, np.random.default_rng(i))
               for i in range(2)]
    batch = collate(samples)
    xyz = nrm_to_xyz(batch["joints_nrm"].double(), batch, 32)
    expected = geometry.uvd_to_xyz(record.joints_uvd, K)
    assert isinstance(xyz, torch.Tensor)
    np.testing.assert_allclose(xyz.numpy(), np.stack([expected, expected]), atol=1e-3)


def test_augmentation_is_deterministic_for_a_seed():
    record = _blob_record()
    cfg = CropConfig(input_size=32, augment=True)
    a = make_sample(record, cfg, POLICY, np.random.default_rng(7))
    b = make_sample(record, cfg, POLICY, np.random.default_rng(7))
    np.testing.assert_array_equal(a["depth"], b["depth"])
    np.testing.assert_array_equal(a["joints_nrm"], b["joints_nrm"])
