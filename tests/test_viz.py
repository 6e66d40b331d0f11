"""Drawing helpers: colormap, skeleton overlay, grid, GIF."""

import numpy as np
import pytest

from srnpose.viz import FINGER_COLORS, depth_to_rgb, draw_skeleton, image_grid, save_gif


def test_depth_to_rgb_missing_is_black_and_near_differs_from_far():
    depth = np.zeros((4, 6), dtype=np.uint16)
    depth[1, 1], depth[2, 4] = 300, 900
    rgb = depth_to_rgb(depth)
    assert rgb.shape == (4, 6, 3) and rgb.dtype == np.uint8
    assert (rgb[0, 0] == 0).all() and rgb[1, 1].any() and rgb[2, 4].any()
    assert not np.array_equal(rgb[1, 1], rgb[2, 4])
    assert depth_to_rgb(np.zeros((3, 3))).sum() == 0
    with pytest.raises(ValueError):
        depth_to_rgb(np.zeros((3, 3, 3)))


def test_draw_skeleton_draws_finger_colours():
    rgb = np.zeros((64, 64, 3), dtype=np.uint8)
    joints = np.zeros((21, 3))
    joints[0] = (32, 60, 400)
    for f in range(5):
        for k in range(4):
            joints[1 + 4 * f + k] = (8 + 12 * f, 48 - 10 * k, 400)
    out = draw_skeleton(rgb, joints)
    assert out.shape == rgb.shape and rgb.sum() == 0  # input untouched
    colours = {tuple(c) for c in out.reshape(-1, 3)}
    assert FINGER_COLORS[1] in colours and FINGER_COLORS[4] in colours
    nyu = draw_skeleton(rgb, np.full((14, 3), 30.0), layout="nyu")
    assert nyu.any()
    with pytest.raises(ValueError):
        draw_skeleton(rgb, np.zeros((14, 3)))


def test_image_grid_layout():
    tiles = [np.full((4, 5, 3), k * 40, dtype=np.uint8) for k in range(1, 6)]
    grid = image_grid(tiles, cols=2, pad=1)
    assert grid.shape == (3 * 4 + 2, 2 * 5 + 1, 3)
    assert grid[0, 0, 0] == 40 and grid[0, 6, 0] == 80 and grid[10, 0, 0] == 200 and grid[10, 6, 0] == 0


def test_save_gif(tmp_path):
    from PIL import Image

    frames = [np.full((8, 8, 3), k * 60, dtype=np.uint8) for k in range(3)]
    save_gif(tmp_path / "a.gif", frames, fps=5)
    with Image.open(tmp_path / "a.gif") as img:
        assert img.format == "GIF" and img.n_frames == 3
