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


def test_finger_colours_stand_out_from_the_near_depth_colours():
    """A hand is near, so depth_to_rgb paints it red, orange and yellow: no finger may share those hues
    (the index was yellow on an orange hand) and the fingers stay apart from each other."""
    from srnpose.viz import _RAMP

    near = _RAMP[:3]  # red, orange, yellow: the near end of the ramp
    index = np.array(FINGER_COLORS[1], dtype=np.float64)
    assert np.linalg.norm(near - index, axis=1).min() > 200
    colours = np.array(FINGER_COLORS, dtype=np.float64)
    gaps = np.linalg.norm(colours[:, None] - colours[None], axis=-1)
    assert gaps[~np.eye(5, dtype=bool)].min() > 100


def test_zoom_view_maps_frame_points_to_the_zoom():
    from srnpose.viz import zoom_view

    depth = np.zeros((40, 60), dtype=np.float32)
    depth[20, 30] = 500.0  # one measured pixel
    box = (19.5, 9.5, 39.5, 29.5)  # 20 px: the edges of pixels 20..39 and 10..29
    rgb, scale, (u0, v0) = zoom_view(depth, box, 80, center_d_mm=500.0)
    assert rgb.shape == (80, 80, 3) and scale == 4.0
    lit = np.argwhere(rgb[..., 0] > 0)  # (v, u) of the zoom's lit pixels: the one pixel, 4x4
    assert len(lit) == 16
    centre = lit.mean(axis=0)  # the block's centre in zoom pixels
    assert np.allclose(centre[::-1], ((30 - u0) * scale - 0.5, (20 - v0) * scale - 0.5))


def test_pose_overlay_puts_the_zoomed_crop_beside_the_frame_with_a_legend():
    from srnpose.synth import render_frame
    from srnpose.viz import LEGEND_HEIGHT_PX, finger_legend, pose_overlay

    frame = render_frame(3)
    height, width = frame.depth_mm.shape
    center = frame.joints_uvd.mean(axis=0)
    box = (center[0] - 30, center[1] - 30, center[0] + 30, center[1] + 30)
    out = pose_overlay(frame.depth_mm, frame.joints_uvd, box, center)
    assert out.shape == (height + LEGEND_HEIGHT_PX, width + height, 3)
    zoom = {tuple(c) for c in out[:height, width + 1:].reshape(-1, 3)}
    assert all(c in zoom for c in FINGER_COLORS)  # every finger drawn in the zoom
    legend = {tuple(c) for c in finger_legend(400).reshape(-1, 3)}
    assert all(c in legend for c in FINGER_COLORS)
    empty = pose_overlay(frame.depth_mm, None)
    assert empty.shape == out.shape and not any(c in {tuple(x) for x in empty[:height].reshape(-1, 3)}
                                                for c in FINGER_COLORS)
