"""The real NYU test frame (../shared/data/nyu_frame) through the NYU loader."""

from __future__ import annotations

import numpy as np

from srnpose import geometry
from srnpose.data.centering import FAR_MM, NEAR_MM
from srnpose.data.datasets import DATASETS, load_records
from srnpose.hand.skeleton import NYU_EVAL_INDICES


def test_real_nyu_frame(shared_data):
    import scipy.io

    root = shared_data / "nyu_frame"
    records = load_records(f"nyu:{root}", "test", verify=True)
    assert len(records) == 1 and records.skipped == 0
    record = records[0]
    assert record.frame_id == "test/depth_1_0000001.png" and record.joints_uvd.shape == (14, 3)
    depth = record.load_depth()
    assert depth.shape == (480, 640) and depth.min() == 731 and depth.max() == 2001

    # every joint inside the 300 mm cube crop around the estimated centre
    cube = DATASETS["nyu"].cube_mm
    center = geometry.find_hand_center(depth, record.intrinsics, cube, NEAR_MM, FAR_MM)
    _, M = geometry.crop_depth(depth, center, cube, 128, record.intrinsics)
    nrm = geometry.uvd_to_crop(record.joints_uvd, M, center[2], cube, 128)
    assert np.all(np.abs(nrm) < 1.0), nrm

    # the depth surface lies 0-40 mm in front of each joint
    u = np.rint(record.joints_uvd[:, 0]).astype(int)
    v = np.rint(record.joints_uvd[:, 1]).astype(int)
    gap = record.joints_uvd[:, 2] - depth[v, u]
    assert np.all((gap >= 0) & (gap <= 40)), gap

    # uvd -> xyz with the community intrinsics (588.03, -587.07, 320, 240) matches joint_xyz
    xyz_mat = scipy.io.loadmat(str(root / "test" / "joint_data.mat"))["joint_xyz"][0, 0][list(NYU_EVAL_INDICES)]
    np.testing.assert_allclose(geometry.uvd_to_xyz(record.joints_uvd, record.intrinsics), xyz_mat, atol=0.01)
