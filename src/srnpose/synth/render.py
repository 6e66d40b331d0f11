"""Vectorized ray casting of round cones (sphere-swept cones) with a z-buffer, for any pinhole camera.

All primitives are cast in one batch: every (pixel, primitive) pair inside the primitive's exact
screen bounding box becomes one lane of float32 arithmetic (analytic ray / round-cone intersection,
after Inigo Quilez), then a z-buffer keeps the nearest hit per pixel. The camera sits at the origin
looking down +z, so the per-primitive terms that do not depend on the ray are computed once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from srnpose.geometry import Intrinsics


@dataclass(frozen=True)
class Raster:
    """A rendered z-buffer. ``z_mm`` is ``inf`` where nothing was hit."""

    z_mm: np.ndarray  # (H, W) float32
    cos_incidence: np.ndarray  # (H, W) float32, cosine between the surface normal and the ray
    part: np.ndarray  # (H, W) int16, part id of the visible surface, -1 = nothing


@lru_cache(maxsize=8)
def _ray_table(fx: float, fy: float, cx: float, cy: float, width: int, height: int) -> np.ndarray:
    """Unit ray directions (H * W, 3) float32 through the pixel centres."""
    u = (np.arange(width, dtype=np.float64) - cx) / fx
    v = (np.arange(height, dtype=np.float64) - cy) / fy
    x, y = np.meshgrid(u, v)
    rays = np.stack([x, y, np.ones_like(x)], axis=-1).reshape(-1, 3)
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    rays = np.ascontiguousarray(rays, dtype=np.float32)
    rays.setflags(write=False)
    return rays


def _extent(center: np.ndarray, radius: np.ndarray, f: float, c: float, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact pixel range along one image axis of spheres (N,) seen by a pinhole camera."""
    lateral, depth = center[:, axis], center[:, 2]
    dist = np.hypot(lateral, depth)
    theta = np.arctan2(lateral, depth)
    delta = np.arcsin(np.clip(radius / np.maximum(dist, 1e-6), 0.0, 1.0))
    lo = np.tan(np.clip(theta - delta, -1.5, 1.5)) * f + c
    hi = np.tan(np.clip(theta + delta, -1.5, 1.5)) * f + c
    return np.minimum(lo, hi), np.maximum(lo, hi)


def screen_boxes(cones: np.ndarray, intrinsics: Intrinsics, width: int, height: int) -> np.ndarray:
    """Integer pixel boxes (P, 4) ``u0, v0, u1, v1`` (inclusive-exclusive), clipped to the image."""
    a, ra, b, rb = cones[:, 0:3], cones[:, 3], cones[:, 4:7], cones[:, 7]
    boxes = []
    for f, c, axis, size in ((intrinsics.fx, intrinsics.cx, 0, width), (intrinsics.fy, intrinsics.cy, 1, height)):
        lo_a, hi_a = _extent(a, ra, f, c, axis)
        lo_b, hi_b = _extent(b, rb, f, c, axis)
        lo = np.clip(np.floor(np.minimum(lo_a, lo_b)), 0, size).astype(np.int64)
        hi = np.clip(np.ceil(np.maximum(hi_a, hi_b)) + 1, 0, size).astype(np.int64)
        boxes.append((lo, hi))
    (u0, u1), (v0, v1) = boxes
    in_front = (a[:, 2] > ra) & (b[:, 2] > rb)  # primitives touching the camera plane are dropped
    u1 = np.where(in_front, u1, u0)
    return np.stack([u0, v0, u1, v1], axis=1)


def _lanes(boxes: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel index of every (primitive, pixel in its box) lane, and the lane count per primitive."""
    w_box = boxes[:, 2] - boxes[:, 0]
    h_box = np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    counts = np.where(w_box > 0, w_box * h_box, 0)
    total = int(counts.sum())
    starts = np.cumsum(counts) - counts
    local = np.arange(total, dtype=np.int64) - np.repeat(starts, counts)
    width_lane = np.repeat(np.maximum(w_box, 1), counts)
    u = np.repeat(boxes[:, 0], counts) + local % width_lane
    v = np.repeat(boxes[:, 1], counts) + local // width_lane
    return v * width + u, counts, total


_EMPTY = (np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, np.int16))


def cast(volume, intrinsics: Intrinsics, width: int, height: int) -> Raster:
    """Ray-cast a :class:`~srnpose.synth.hand_model.Volume` (camera frame, mm) into a z-buffer."""
    hits = [_cast_cones(volume.cones, volume.cone_parts, intrinsics, width, height),
            _cast_ellipsoids(volume.ellipsoids, volume.ellipsoid_parts, intrinsics, width, height)]
    pix = np.concatenate([h[0] for h in hits])
    z = np.concatenate([h[1] for h in hits])
    cos = np.concatenate([h[2] for h in hits])
    part = np.concatenate([h[3] for h in hits])
    z_buf = np.full(width * height, np.inf, dtype=np.float32)
    cos_buf = np.zeros(width * height, dtype=np.float32)
    part_buf = np.full(width * height, -1, dtype=np.int16)
    np.minimum.at(z_buf, pix, z)
    win = z <= z_buf[pix]
    cos_buf[pix[win]] = np.clip(cos[win], 0.0, 1.0)
    part_buf[pix[win]] = part[win]
    return Raster(z_buf.reshape(height, width), cos_buf.reshape(height, width), part_buf.reshape(height, width))


def _cast_ellipsoids(ells: np.ndarray, parts: np.ndarray, intrinsics: Intrinsics, width: int, height: int):
    """Hits (pix, z, cos, part) of ellipsoids (E, 15): centre, axes (row-major 3x3 columns), semi-axes."""
    if len(ells) == 0:
        return _EMPTY
    centre, axes, semi = ells[:, 0:3], ells[:, 3:12].reshape(-1, 3, 3), ells[:, 12:15]
    bound = semi.max(axis=1)
    boxes = screen_boxes(np.concatenate([centre, bound[:, None], centre, bound[:, None]], axis=1),
                         intrinsics, width, height)
    pix, counts, total = _lanes(boxes, width)
    if total == 0:
        return _EMPTY
    to_unit = axes.transpose(0, 2, 1) / semi[:, :, None]  # (E, 3, 3): world direction -> unit-sphere space
    origin = np.einsum("eij,ej->ei", to_unit, -centre)  # (E, 3) camera centre in unit-sphere space
    # Normal of the unit sphere at p maps back to world as axes @ (p / semi).
    to_world_normal = axes / semi[:, None, :]  # (E, 3, 3)
    coef = np.concatenate([to_unit.reshape(-1, 9), origin, (origin * origin).sum(1, keepdims=True) - 1.0,
                           to_world_normal.reshape(-1, 9)], axis=1).astype(np.float32)
    lane = np.repeat(coef, counts, axis=0)  # (N, 22)
    rays = _ray_table(intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy, width, height)[pix]
    rx, ry, rz = rays[:, 0], rays[:, 1], rays[:, 2]
    d = [lane[:, 3 * i] * rx + lane[:, 3 * i + 1] * ry + lane[:, 3 * i + 2] * rz for i in range(3)]
    o = [lane[:, 9], lane[:, 10], lane[:, 11]]
    a = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
    b = o[0] * d[0] + o[1] * d[1] + o[2] * d[2]
    h = b * b - a * lane[:, 12]
    keep = h > 0.0
    a, b, h = a[keep], b[keep], h[keep]
    t = (-b - np.sqrt(h)) / a
    p = [o[i][keep] + t * d[i][keep] for i in range(3)]
    nw = lane[keep][:, 13:22]
    n = [nw[:, 3 * i] * p[0] + nw[:, 3 * i + 1] * p[1] + nw[:, 3 * i + 2] * p[2] for i in range(3)]
    rk = rays[keep]
    n_len = np.sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2])
    cos = -(n[0] * rk[:, 0] + n[1] * rk[:, 1] + n[2] * rk[:, 2]) / np.maximum(n_len, 1e-12)
    front = t > 0.0
    return (pix[keep][front], (t * rk[:, 2])[front], cos[front],
            np.repeat(parts.astype(np.int16), counts)[keep][front])


def _cast_cones(cones: np.ndarray, parts: np.ndarray, intrinsics: Intrinsics, width: int, height: int):
    """Hits (pix, z, cos, part) of round cones (P, 8) ``(a xyz, ra, b xyz, rb)``."""
    if len(cones) == 0:
        return _EMPTY
    cones = np.asarray(cones, dtype=np.float64)
    boxes = screen_boxes(cones, intrinsics, width, height)
    pix, counts, total = _lanes(boxes, width)
    if total == 0:
        return _EMPTY

    # Per-primitive terms (float64, then float32 lanes). Notation of iq's roundedConeIntersect, ro = 0.
    pa, ra, pb, rb = cones[:, 0:3], cones[:, 3], cones[:, 4:7], cones[:, 7]
    ba = pb - pa
    rr = ra - rb
    m0 = (ba * ba).sum(1)
    m1 = -(ba * pa).sum(1)
    m5 = (pa * pa).sum(1)
    m7 = (pb * pb).sum(1)
    d2 = m0 - rr * rr
    k0 = d2 * m5 - m1 * m1 + 2.0 * m1 * rr * ra - m0 * ra * ra
    # One row per primitive: lane coefficients, repeated over its box's pixels.
    coef = np.stack([ba[:, 0], ba[:, 1], ba[:, 2], -pa[:, 0], -pa[:, 1], -pa[:, 2], -pb[:, 0], -pb[:, 1],
                     -pb[:, 2], m1, m5, m7, d2, k0, rr * ra, ra * ra, rb * rb, 1.0 / ra, 1.0 / rb,
                     m1 - ra * rr, m0], axis=1).astype(np.float32)
    lane = np.repeat(coef, counts, axis=0)  # (N, 21)
    (bax, bay, baz, pax, pay, paz, pbx, pby, pbz, l_m1, l_m5, l_m7, l_d2, l_k0, l_rrra, l_ra2, l_rb2,
     l_inv_ra, l_inv_rb, l_y0, l_m0) = lane.T

    rays = _ray_table(intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy, width, height)[pix]
    rx, ry, rz = rays[:, 0], rays[:, 1], rays[:, 2]

    m2 = bax * rx + bay * ry + baz * rz
    m3 = pax * rx + pay * ry + paz * rz  # rd . (ro - pa)
    m6 = pbx * rx + pby * ry + pbz * rz  # rd . (ro - pb)
    # Body.
    k2 = l_d2 - m2 * m2
    k1 = l_d2 * m3 - l_m1 * m2 + m2 * l_rrra
    h = k1 * k1 - l_k0 * k2
    hit = h >= 0.0
    sq = np.sqrt(np.maximum(h, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t_body = (-sq - k1) / k2
    y = l_y0 + t_body * m2
    body = hit & (y > 0.0) & (y < l_d2)
    # Caps (the two spheres).
    h1 = m3 * m3 - l_m5 + l_ra2
    h2 = m6 * m6 - l_m7 + l_rb2
    t1 = np.where(h1 > 0.0, -m3 - np.sqrt(np.maximum(h1, 0.0)), np.inf)
    t2 = np.where(h2 > 0.0, -m6 - np.sqrt(np.maximum(h2, 0.0)), np.inf)
    use_b = t2 < t1
    t_cap = np.where(use_b, t2, t1)
    t = np.where(body, t_body, np.where(hit, t_cap, np.inf))
    # Cosine of incidence: body normal d2 (oa + t rd) - ba y; cap normal (o - p) / r.
    with np.errstate(invalid="ignore", over="ignore"):
        n_dot = l_d2 * (m3 + t_body) - m2 * y
        n_sq = l_d2 * l_d2 * (l_m5 + 2.0 * t_body * m3 + t_body * t_body) - 2.0 * l_d2 * y * (l_m1 + t_body * m2) \
            + y * y * l_m0
        cos_body = -n_dot / np.sqrt(np.maximum(n_sq, 1e-12))
        cos_cap = np.where(use_b, -(m6 + t_cap) * l_inv_rb, -(m3 + t_cap) * l_inv_ra)
    cos = np.where(body, cos_body, cos_cap)

    keep = np.isfinite(t) & (t > 0.0)
    return pix[keep], (t * rz)[keep], cos[keep], np.repeat(parts.astype(np.int16), counts)[keep]
