"""Refined centre files: uvd and xyz forms, 'no centre' lines, wrong line counts."""

from __future__ import annotations

import numpy as np
import pytest

from srnpose.cameras import get_camera
from srnpose.data.center_files import load_centers, write_centers
from srnpose.data.datasets import load_records
from srnpose.data.public_layouts import WRITERS
from srnpose.errors import UserError
from srnpose.geometry import uvd_to_xyz


@pytest.mark.parametrize("camera", ["nyu", "icvl"])
@pytest.mark.parametrize("fmt", ["uvd", "xyz", "xyz-camera"])
def test_round_trip(tmp_path, camera, fmt):
    K = get_camera(camera).intrinsics
    centers = np.array([[100.0, 80.0, 450.0], [np.nan] * 3, [210.5, 130.25, 700.0]])
    write_centers(tmp_path / "c.txt", centers, K, fmt)
    assert (tmp_path / "c.txt").read_text().splitlines()[0] == f"# {fmt}"
    np.testing.assert_allclose(load_centers(tmp_path / "c.txt", 3, K), centers, atol=1e-3)


def test_xyz_is_y_up(tmp_path):
    K = get_camera("icvl").intrinsics  # fy > 0: the community's y-up xyz flips y
    (tmp_path / "c.txt").write_text("# xyz\n0 50 500\n")
    (u, v, d), = load_centers(tmp_path / "c.txt", 1, K)
    assert v < K.cy and d == 500  # y up = above the principal point
    K = get_camera("nyu").intrinsics  # fy < 0: srnpose's xyz is already y up
    np.testing.assert_allclose(uvd_to_xyz(load_centers(tmp_path / "c.txt", 1, K), K), [[0, 50, 500]])


def test_no_centre_lines_and_errors(tmp_path):
    K = get_camera("icvl").intrinsics
    (tmp_path / "c.txt").write_text("invalid\n0 0 0\nnan nan nan\n160 120 400\n")
    out = load_centers(tmp_path / "c.txt", 4, K)
    assert np.isnan(out[:3]).all() and np.allclose(out[3], [160, 120, 400])
    with pytest.raises(UserError, match=r"c.txt: 4 centre lines, but the split has 5 frames"):
        load_centers(tmp_path / "c.txt", 5, K)
    (tmp_path / "d.txt").write_text("1 2 3\n1 2\n")
    with pytest.raises(UserError, match=r"d.txt:2: expected 3 numbers"):
        load_centers(tmp_path / "d.txt", 2, K)


def test_centres_reach_records(tmp_path):
    WRITERS["icvl"](tmp_path, 10, seed=0, progress=False)
    test = load_records(f"icvl:{tmp_path}", "test")
    train = load_records(f"icvl:{tmp_path}", "train")
    assert (len(train), len(test)) == (9, 1)
    (tmp_path / "c.txt").write_text("150 110 420\n")
    (record,) = load_records(f"icvl:{tmp_path}", "test", centers=tmp_path / "c.txt")
    np.testing.assert_allclose(record.center_uvd, [150, 110, 420])
    (tmp_path / "t.txt").write_text("# xyz\n" + "invalid\n" * 8 + "10 20 400\n")
    records = load_records(f"icvl:{tmp_path}", "train", centers=tmp_path / "t.txt")
    assert all(r.center_uvd is None for r in records[:8]) and records[8].center_uvd[1] < 120
