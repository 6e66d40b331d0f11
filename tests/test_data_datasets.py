"""Loaders end to end: synthetic data written in each dataset's native layout, parsed back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from srnpose import geometry
from srnpose.data.datasets import DATASETS, load_records, parse_spec
from srnpose.data.public_layouts import WRITERS
from srnpose.errors import UserError
from srnpose.hand.skeleton import NYU_EVAL_INDICES, get_layout

FRAMES = 20


@pytest.fixture(scope="module", params=sorted(WRITERS))
def written(request, tmp_path_factory) -> tuple[str, Path]:
    fmt = request.param
    out = tmp_path_factory.mktemp(fmt)
    WRITERS[fmt](out, FRAMES, seed=3, progress=False)
    return fmt, out


def joint_centre_uvd(record) -> np.ndarray:
    xyz = geometry.uvd_to_xyz(record.joints_uvd, record.intrinsics)
    return geometry.xyz_to_uvd((xyz.min(axis=0) + xyz.max(axis=0)) / 2, record.intrinsics)


def test_parse_counts_layout_and_crop(written):
    fmt, out = written
    info = DATASETS[fmt]
    train = load_records(f"{fmt}:{out}", "train", verify=True)
    test = load_records(f"{fmt}:{out}", "test", verify=True)
    assert len(train) + len(test) == FRAMES and len(test) >= 1 and train.skipped == 0
    J = get_layout(info.layout).num_joints
    cube_mm = max(info.cube_mm, 250.0)  # synthetic hands reach 230 mm; MSRA's 200 mm cube fits real MSRA hands
    for record in list(train) + list(test):
        assert record.joints_uvd.shape == (J, 3)
        depth = record.load_depth()
        center = joint_centre_uvd(record)
        _, M = geometry.crop_depth(depth, center, cube_mm, 32, record.intrinsics)
        nrm = geometry.uvd_to_crop(record.joints_uvd, M, center[2], cube_mm, 32)
        assert np.all(np.abs(nrm) < 1.0), (record.frame_id, np.abs(nrm).max())
        # labels agree with the depth: the surface lies in front of (or at) most joints
        u = np.clip(np.rint(record.joints_uvd[:, :2]).astype(int), 0, [depth.shape[1] - 1, depth.shape[0] - 1])
        gap = record.joints_uvd[:, 2] - depth[u[:, 1], u[:, 0]]
        assert -5.0 < np.median(gap) < 60.0, (record.frame_id, np.median(gap))
        xyz = geometry.uvd_to_xyz(record.joints_uvd, record.intrinsics)
        np.testing.assert_allclose(geometry.xyz_to_uvd(xyz, record.intrinsics), record.joints_uvd, atol=1e-9)


def test_nyu_mat_shape_and_xyz(tmp_path):
    import scipy.io

    WRITERS["nyu"](tmp_path, 4, seed=0, progress=False)
    mat = scipy.io.loadmat(str(tmp_path / "test" / "joint_data.mat"))
    assert mat["joint_uvd"].shape == (3, 1, 36, 3) and mat["joint_xyz"].shape == (3, 1, 36, 3)
    (record,) = load_records(f"nyu:{tmp_path}", "test")
    xyz = geometry.uvd_to_xyz(record.joints_uvd, record.intrinsics)
    np.testing.assert_allclose(xyz, mat["joint_xyz"][0, 0][list(NYU_EVAL_INDICES)], atol=0.01)


def test_msra_file_convention_and_folds(tmp_path):
    from srnpose.data.msra import file_xyz_to_uvd

    WRITERS["msra"](tmp_path, 18, seed=1, progress=False)
    rows = (tmp_path / "P0" / "1" / "joint.txt").read_text().splitlines()
    assert int(rows[0]) == len(rows) - 1 == 1
    xyz_file = np.array(rows[1].split(), dtype=float).reshape(21, 3)
    assert np.all(xyz_file[:, 2] < 0)  # MSRA stores z negative
    (record,) = [r for r in load_records(f"msra:{tmp_path}", "test") if r.frame_id.startswith("P0/1/")]
    np.testing.assert_allclose(record.joints_uvd, file_xyz_to_uvd(xyz_file, record.intrinsics))
    # our xyz = (x, -y, -z) of the file; uvd -> xyz round-trips with 241.42, 241.42, 160, 120
    xyz = geometry.uvd_to_xyz(record.joints_uvd, record.intrinsics)
    np.testing.assert_allclose(xyz, xyz_file * [1, -1, -1], atol=1e-9)
    # the community projection: u = x fx / z + cx, v = cy - y fy / z with z = -z_file
    z = -xyz_file[:, 2]
    np.testing.assert_allclose(record.joints_uvd[:, 1], 120 - xyz_file[:, 1] * 241.42 / z)
    for fold in ("P0", "P4"):
        test = load_records(f"msra:{tmp_path}@{fold}", "test")
        train = load_records(f"msra:{tmp_path}@{fold}", "train")
        assert {r.extra["subject"] for r in test} == {fold}
        assert fold not in {r.extra["subject"] for r in train} and len(test) + len(train) == 18


def test_hands17_test_split_without_labels(tmp_path):
    WRITERS["hands17"](tmp_path, 10, seed=2, progress=False)
    labelled = load_records(f"hands17:{tmp_path}", "test")
    (tmp_path / "frame" / "Test_Annotation.txt").unlink()
    (record,) = load_records(f"hands17:{tmp_path}", "test")
    assert not record.extra["labelled"] and np.all(np.isnan(record.joints_uvd))
    x, y, w, h = record.extra["bbox_px"]
    u, v = labelled[0].joints_uvd[:, 0], labelled[0].joints_uvd[:, 1]
    assert np.all((u > x) & (u < x + w) & (v > y) & (v < y + h))


def test_synth_dir_split(tmp_path):
    from srnpose.synth import write_dataset

    write_dataset(tmp_path, 11, seed=4, progress=False)
    train = load_records(f"synth:{tmp_path}", "train")
    test = load_records(f"synth:{tmp_path}", "test")
    assert (len(train), len(test)) == (9, 2)
    assert test[0].frame_id == "test/000009.png" and test[0].joints_uvd.shape == (21, 3)


def test_parse_spec_errors(tmp_path):
    with pytest.raises(UserError, match="available: nyu, icvl, msra, hands17, synth"):
        parse_spec(f"bogus:{tmp_path}")
    with pytest.raises(UserError, match="does-not-exist"):
        parse_spec(f"nyu:{tmp_path / 'does-not-exist'}")
    assert parse_spec(f"msra:{tmp_path}@P3") == ("msra", tmp_path, "P3")
    with pytest.raises(UserError, match="unknown test subject"):
        load_records(f"msra:{tmp_path}@P9", "test")
    with pytest.raises(UserError, match="unknown split"):
        load_records(f"nyu:{tmp_path}", "val")


def test_dataset_table():
    assert {k: v.cube_mm for k, v in DATASETS.items() if k != "synth"} == {
        "nyu": 300.0, "icvl": 250.0, "msra": 200.0, "hands17": 250.0}
    assert DATASETS["nyu"].test_frames == 8252 and DATASETS["icvl"].test_frames == 1596
