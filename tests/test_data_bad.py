"""Bad data: errors name the file (and line); skip_bad skips, warns and counts; never a zero image."""

from __future__ import annotations

import numpy as np
import pytest

from srnpose.data.datasets import BadFrameWarning, load_records
from srnpose.data.depth_io import read_depth, write_msra_bin
from srnpose.data.public_layouts import WRITERS
from srnpose.errors import UserError


@pytest.fixture(scope="module")
def icvl_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("icvl_bad")
    WRITERS["icvl"](out, 12, seed=5, progress=False)
    return out


def test_truncated_png_names_file(icvl_dir, tmp_path):
    import shutil

    root = tmp_path / "icvl"
    shutil.copytree(icvl_dir, root)
    png = root / "Training" / "Depth" / "201400000000" / "image_0003.png"
    png.write_bytes(png.read_bytes()[:200])
    with pytest.raises(UserError, match="image_0003.png"):
        load_records(f"icvl:{root}", "train", verify=True)
    with pytest.warns(BadFrameWarning, match="image_0003.png"):
        records = load_records(f"icvl:{root}", "train", skip_bad=True)
    assert records.skipped == 1 and len(records) == 9
    assert all("image_0003" not in r.frame_id for r in records)
    # without verify the frame is still refused when read: never a silent zero image
    (bad,) = [r for r in load_records(f"icvl:{root}", "train") if r.frame_id.endswith("image_0003.png")]
    with pytest.raises(UserError, match="image_0003.png"):
        bad.load_depth()


def test_wrong_label_count_names_line(icvl_dir, tmp_path):
    import shutil

    root = tmp_path / "icvl"
    shutil.copytree(icvl_dir, root)
    labels = root / "Training" / "labels.txt"
    lines = labels.read_text().splitlines()
    lines[4] = " ".join(lines[4].split()[:-2])  # 46 numbers instead of 48
    labels.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"labels.txt:5: expected 48 numbers .* got 46"):
        load_records(f"icvl:{root}", "train")
    with pytest.warns(BadFrameWarning):
        records = load_records(f"icvl:{root}", "train", skip_bad=True)
    assert records.skipped == 1 and len(records) == 9


def test_missing_frame_and_missing_labels(icvl_dir, tmp_path):
    import shutil

    root = tmp_path / "icvl"
    shutil.copytree(icvl_dir, root)
    (root / "Testing" / "Depth" / "test_seq_1" / "image_0000.png").unlink()
    with pytest.raises(UserError, match=r"image_0000.png: file not found \(.*test_seq_1.txt:1\)"):
        load_records(f"icvl:{root}", "test")
    with pytest.warns(BadFrameWarning):
        records = load_records(f"icvl:{root}", "test", skip_bad=True)
    assert records.skipped == 1
    (root / "Testing" / "test_seq_2.txt").unlink()
    with pytest.raises(UserError, match="test_seq_2.txt: ICVL label file not found"):
        load_records(f"icvl:{root}", "test", skip_bad=True)  # a missing label file is never skipped


def test_all_zero_and_corrupt_frames(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), dtype=np.uint16)).save(tmp_path / "zero.png")
    with pytest.raises(UserError, match="zero.png: depth frame has no measurement"):
        read_depth(tmp_path / "zero.png", "png16_strict")
    (tmp_path / "junk.png").write_bytes(b"not a png at all")
    with pytest.raises(UserError, match="junk.png: cannot read PNG"):
        read_depth(tmp_path / "junk.png", "nyu_rgb")
    depth = np.zeros((240, 320), np.float32)
    depth[100:120, 50:90] = 400.0
    write_msra_bin(tmp_path / "000000_depth.bin", depth)
    np.testing.assert_array_equal(read_depth(tmp_path / "000000_depth.bin", "msra_bin"), depth)
    raw = (tmp_path / "000000_depth.bin").read_bytes()
    (tmp_path / "short_depth.bin").write_bytes(raw[:-8])
    with pytest.raises(UserError, match="short_depth.bin: MSRA depth file has .* bytes"):
        read_depth(tmp_path / "short_depth.bin", "msra_bin")


def test_msra_joint_count_mismatch(tmp_path):
    WRITERS["msra"](tmp_path, 10, seed=1, progress=False)
    joint = tmp_path / "P0" / "1" / "joint.txt"
    joint.write_text("3\n" + joint.read_text().split("\n", 1)[1])
    with pytest.raises(UserError, match="joint.txt: first line says 3 frames, file has 1 joint lines"):
        load_records(f"msra:{tmp_path}", "test")


def test_nyu_missing_mat(tmp_path):
    (tmp_path / "test").mkdir()
    with pytest.raises(UserError, match="joint_data.mat: NYU label file not found"):
        load_records(f"nyu:{tmp_path}", "test")
