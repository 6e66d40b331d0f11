"""Drawing depth frames and skeletons with numpy and Pillow only (no matplotlib): previews, overlays, GIFs.

:func:`pose_overlay` is what ``srnpose predict`` writes per frame: the full frame with the crop box
beside that crop zoomed (the hand fills it; grey depth so the finger colours stand out) and a legend
of the fingers' colours underneath.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from srnpose.hand.skeleton import FINGERS, get_layout

# Colour per finger (thumb, index, middle, ring, little) and for the wrist/palm, RGB: saturated hues
# apart from each other and from grey; the index is blue, not yellow, to stand out on the near (red,
# orange, yellow) end of the depth colours where a hand usually is. Bones get a dark outline.
FINGER_COLORS: tuple[tuple[int, int, int], ...] = (
    (235, 40, 60), (30, 110, 255), (40, 200, 70), (255, 150, 20), (190, 60, 235),
)
FINGER_NAMES = ("thumb", "index", "middle", "ring", "little")
PALM_COLOR = (255, 255, 255)
OUTLINE_COLOR = (0, 0, 0)
LEGEND_HEIGHT_PX = 22
# the zoom's grey ramp: this far in front of and behind the hand's centre (mm); nearer is white
ZOOM_NEAR_MM, ZOOM_FAR_MM = 120.0, 180.0
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
    for name in (layout.joint_names[b], layout.joint_names[a]):
        for k, finger in enumerate(FINGERS):
            if name.startswith(finger) or name.startswith(finger[0].upper()):
                return FINGER_COLORS[k]
    return PALM_COLOR


def draw_skeleton(rgb: np.ndarray, joints_uvd: np.ndarray, layout: str = "canonical", width: int = 2,
                  radius: int = 2, visible: np.ndarray | None = None, outline: bool = True) -> np.ndarray:
    """Draw bones (coloured per finger) and joint dots on a copy of ``rgb`` (H, W, 3) uint8.

    ``joints_uvd`` (J, 3) in the layout's order; only u, v are used. ``visible`` (J,) bool draws hidden
    joints as hollow circles. ``outline``: a dark line under each bone, so it reads on any colour.
    """
    from PIL import Image, ImageDraw

    lay = get_layout(layout)
    joints = np.asarray(joints_uvd, dtype=np.float64)
    if joints.shape != (lay.num_joints, 3) and joints.shape != (lay.num_joints, 2):
        raise ValueError(f"joints must be ({lay.num_joints}, 3) for layout {lay.name!r}, got {joints.shape}")
    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    draw = ImageDraw.Draw(img)
    if outline:
        for a, b in lay.bones:
            draw.line([tuple(joints[a, :2]), tuple(joints[b, :2])], fill=OUTLINE_COLOR, width=width + 2)
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


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def finger_legend(width: int, height: int = LEGEND_HEIGHT_PX) -> np.ndarray:
    """(height, width, 3) uint8: a swatch and the name of each finger's colour, then the palm's."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (int(width), int(height)), (24, 24, 24))
    draw = ImageDraw.Draw(img)
    font = _font(max(9, height - 9))
    x, box = 6, height - 10
    for name, color in (*zip(FINGER_NAMES, FINGER_COLORS), ("palm", PALM_COLOR)):
        draw.rectangle([x, 5, x + box, 5 + box], fill=color, outline=OUTLINE_COLOR)
        draw.text((x + box + 4, height / 2), name, fill=(235, 235, 235), font=font, anchor="lm")
        x += box + 12 + int(draw.textlength(name, font=font))
    return np.asarray(img)


def zoom_view(depth_mm: np.ndarray, box: tuple[float, float, float, float], size: int,
              center_d_mm: float | None = None) -> tuple[np.ndarray, float, tuple[float, float]]:
    """The frame's ``box`` (u0, v0, u1, v1 in pixels, may pass the border) resampled to ``size`` x
    ``size`` in grey: white ``ZOOM_NEAR_MM`` in front of ``center_d_mm``, dark ``ZOOM_FAR_MM`` behind,
    missing pixels and outside the frame black. Returns ``(rgb, scale, (u0, v0))``: a frame point
    ``(u, v)`` (pixel centres at integers, the box's edges where the crop's are) lands at
    ``((u - u0) * scale - 0.5, (v - v0) * scale - 0.5)`` in the zoom's pixels."""
    from PIL import Image

    depth = np.asarray(depth_mm, dtype=np.float32)
    u0, v0, u1, v1 = (float(x) for x in box)
    scale = size / max(u1 - u0, v1 - v0, 1e-6)
    d = float(center_d_mm) if center_d_mm is not None else float(np.median(depth[depth > 0])) if (depth > 0).any() else 0.0
    grey = np.clip((d + ZOOM_FAR_MM - depth) / (ZOOM_NEAR_MM + ZOOM_FAR_MM), 0.0, 1.0) * 215.0 + 40.0
    grey[depth <= 0] = 0.0
    # nearest neighbour: every measured pixel stays one visible block, and no value is invented
    img = Image.fromarray(grey.astype(np.uint8)).transform(
        (size, size), Image.Transform.AFFINE, (1.0 / scale, 0.0, u0 + 0.5, 0.0, 1.0 / scale, v0 + 0.5),
        Image.Resampling.NEAREST, fillcolor=0)  # Pillow's pixel edges sit at integers, ours at +-0.5
    return np.repeat(np.asarray(img)[..., None], 3, axis=-1), scale, (u0, v0)


def pose_overlay(depth_mm: np.ndarray, joints_uvd: np.ndarray | None, crop_box=None, center_uvd=None,
                 layout: str = "canonical") -> np.ndarray:
    """``srnpose predict``'s picture of one frame, (H + legend, W + H, 3) uint8: the full frame
    (colour-mapped depth around the hand, crop box, centre, skeleton) beside its crop box zoomed to
    H x H (grey depth, thicker skeleton), a finger legend underneath. ``joints_uvd`` None: "no hand"."""
    from PIL import Image, ImageDraw

    depth = np.asarray(depth_mm, dtype=np.float32)
    height, width = depth.shape
    found = joints_uvd is not None
    if found:
        d = float(center_uvd[2])
        full = draw_skeleton(depth_to_rgb(depth, near_mm=d - 200.0, far_mm=d + 600.0), joints_uvd, layout)
        zoom, scale, (u0, v0) = zoom_view(depth, crop_box, height, d)
        in_zoom = (np.asarray(joints_uvd, dtype=np.float64)[:, :2] - (u0, v0)) * scale - 0.5
        thick = max(2, int(round(height / 140)))
        zoom = draw_skeleton(zoom, in_zoom, layout, width=thick, radius=thick + 1)
    else:
        full = depth_to_rgb(depth)
        zoom, scale = np.zeros((height, height, 3), dtype=np.uint8), 0.0
    font = _font(13)
    full_img = Image.fromarray(np.ascontiguousarray(full))
    draw = ImageDraw.Draw(full_img)  # on the full frame's own image: the box stops at its border
    if found:
        draw.rectangle([float(x) for x in crop_box], outline=(255, 255, 255), width=1)
        cu, cv = float(center_uvd[0]), float(center_uvd[1])
        draw.line([cu - 5, cv, cu + 5, cv], fill=(255, 0, 255), width=2)
        draw.line([cu, cv - 5, cu, cv + 5], fill=(255, 0, 255), width=2)
    else:
        draw.text((6, 4), "no hand", fill=(255, 255, 255), font=font, stroke_width=2, stroke_fill=(0, 0, 0))
    canvas = Image.new("RGB", (width + height, height + LEGEND_HEIGHT_PX), (0, 0, 0))
    canvas.paste(full_img, (0, 0))
    canvas.paste(Image.fromarray(np.ascontiguousarray(zoom)), (width, 0))
    canvas.paste(Image.fromarray(finger_legend(width + height)), (0, height))
    draw = ImageDraw.Draw(canvas)
    draw.line([width, 0, width, height - 1], fill=(255, 255, 255), width=1)  # the panels' seam
    label = f"the crop box, x{scale:.1f}" if found else "no hand"
    draw.text((width + 6, 4), label, fill=(255, 255, 255), font=font, stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(canvas)


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
