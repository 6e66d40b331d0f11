"""Drawing depth frames and skeletons with numpy and Pillow only (no matplotlib): previews, overlays, GIFs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Colour per finger (thumb, index, middle, ring, little) and for the wrist/palm, RGB.
FINGER_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 64, 64), (255, 200, 0), (64, 220, 64), (0, 180, 255), (200, 90, 255),
)
PALM_COLOR = (255, 255, 255)
# Colormap anchors from near to far (a turbo-like ramp: red, orange, yellow, green, cyan, blue).
_RAMP = np.array([[220, 40, 30], [250, 140, 30], [240, 230, 60], [90, 210, 90], [40, 190, 220],
                  [40, 80, 200], [30, 30, 110]], dtype=np.float64)


def depth_to_rgb(depth_mm: np.ndarray, near_mm: float | None = None, far_mm: float | None = None) -> np.ndarray:
    """(H, W) depth in mm to (H, W, 3) uint8: near is red, far is blue, missing (0) is black.

    The range defaults to the measured pixels' 1st and 99th percentiles.
    """
    depth = np.asarray(depth_mm, dtype=np.float32)
    if depth.ndim != 2:
        raise ValueError(f"depth must be (H, W), got {depth.shape}")
    valid = depth > 0
    rgb = np.zeros(depth.shape + (3,), dtype=np.uint8)
    if not valid.any():
        return rgb
    values = depth[valid]
    lo = float(np.percentile(values, 1)) if near_mm is None else float(near_mm)
    hi = float(np.percentile(values, 99)) if far_mm is None else float(far_mm)
    x = np.clip((values - lo) / max(hi - lo, 1e-3), 0.0, 1.0) * (len(_RAMP) - 1)
    i = np.minimum(x.astype(np.int64), len(_RAMP) - 2)
    w = (x - i)[:, None]
    rgb[valid] = np.rint(_RAMP[i] * (1 - w) + _RAMP[i + 1] * w).astype(np.uint8)
    return rgb


def _bone_color(layout, a: int, b: int) -> tuple[int, int, int]:
    """Colour of a bone by the finger named in its joints (canonical names contain the finger)."""
    from srnpose.hand.skeleton import FINGERS

    for name in (layout.joint_names[b], layout.joint_names[a]):
        for k, finger in enumerate(FINGERS):
            if name.startswith(finger) or name.startswith(finger[0].upper()):
                return FINGER_COLORS[k]
    return PALM_COLOR


def draw_skeleton(rgb: np.ndarray, joints_uvd: np.ndarray, layout: str = "canonical", width: int = 2,
                  radius: int = 2, visible: np.ndarray | None = None) -> np.ndarray:
    """Draw bones (coloured per finger) and joint dots on a copy of ``rgb`` (H, W, 3) uint8.

    ``joints_uvd`` (J, 3) in the layout's order; only u, v are used. ``visible`` (J,) bool draws hidden
    joints as hollow circles.
    """
    from PIL import Image, ImageDraw

    from srnpose.hand.skeleton import get_layout

    lay = get_layout(layout)
    joints = np.asarray(joints_uvd, dtype=np.float64)
    if joints.shape != (lay.num_joints, 3) and joints.shape != (lay.num_joints, 2):
        raise ValueError(f"joints must be ({lay.num_joints}, 3) for layout {lay.name!r}, got {joints.shape}")
    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    draw = ImageDraw.Draw(img)
    for a, b in lay.bones:
        draw.line([tuple(joints[a, :2]), tuple(joints[b, :2])], fill=_bone_color(lay, a, b), width=width)
    for j in range(lay.num_joints):
        u, v = joints[j, :2]
        color = _bone_color(lay, j, j)
        box = [u - radius, v - radius, u + radius, v + radius]
        if visible is None or visible[j]:
            draw.ellipse(box, fill=color, outline=(0, 0, 0))
        else:
            draw.ellipse(box, outline=color)
    return np.asarray(img)


def image_grid(images: list[np.ndarray], cols: int, pad: int = 2) -> np.ndarray:
    """Tile equally sized (H, W, 3) uint8 images row by row, ``cols`` per row, on black."""
    if not images:
        raise ValueError("image_grid needs at least one image")
    cols = max(1, min(int(cols), len(images)))
    rows = (len(images) + cols - 1) // cols
    h, w = images[0].shape[:2]
    grid = np.zeros((rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad, 3), dtype=np.uint8)
    for k, image in enumerate(images):
        if image.shape[:2] != (h, w):
            raise ValueError(f"image {k} is {image.shape[:2]}, expected {(h, w)}")
        r, c = divmod(k, cols)
        grid[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = image[..., :3]
    return grid


def save_png(path: str | Path, rgb: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(str(path))


def save_gif(path: str | Path, frames_rgb: list[np.ndarray], fps: float = 10.0) -> None:
    """Write an animated GIF (loops forever) of (H, W, 3) uint8 frames."""
    from PIL import Image

    if not frames_rgb:
        raise ValueError("save_gif needs at least one frame")
    images = [Image.fromarray(np.ascontiguousarray(f, dtype=np.uint8)) for f in frames_rgb]
    images[0].save(str(path), save_all=True, append_images=images[1:], duration=max(int(1000 / fps), 10), loop=0)
