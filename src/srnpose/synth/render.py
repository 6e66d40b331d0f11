"""Vectorized ray casting of analytic solids with a z-buffer, for any pinhole camera.

Primitives (camera frame, mm; the camera sits at the origin looking down +z):

| kind      | row                                                             | cast                        |
|-----------|-----------------------------------------------------------------|-----------------------------|
| cone      | (8,) ``a xyz, ra, b xyz, rb``: round cone (hull of two spheres) | lanes, after Inigo Quilez   |
| ellipsoid | (15,) centre, axes (3x3 columns, row-major), semi-axes          | lanes                       |
| cylinder  | (7,) ``a xyz, b xyz, r``: flat-capped cylinder                  | lanes, after Inigo Quilez   |
| box       | (15,) centre, axes (3x3 columns, row-major), half sizes         | lanes (slab test)           |
| plane     | (20,) unit normal ``n`` (away from the camera), distance ``d``, | image half-planes, no lanes |
|           | 4 edges ``(e xyz, f)``: the convex polygon ``n.x = d, e.x <= f``|                             |
|           | (an unused edge is ``e = 0, f = 1``)                            |                             |

Lane primitives: every (pixel, primitive) pair inside the primitive's screen bounding box becomes one
lane of float32 arithmetic, one contiguous array per coefficient; a z-buffer keeps the nearest hit.
Planes need no lanes: on a plane the depth is ``d / (n . q)`` with ``q = ((u-cx)/fx, (v-cy)/fy, 1)``
linear in the pixel, and every edge ``e.x <= f`` is a half-plane of the image, so a plane costs a few
outer sums over the bounding box of its clipped image polygon.

Surfaces wholly beyond ``far_mm`` (the sensor's range) are not cast: they could not be measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from srnpose.geometry import Intrinsics
from srnpose.synth.solids import KINDS, MAX_PLANE_EDGES, PARTS_FIELD, ROW_SIZE, Solids, SolidsBuilder  # noqa: F401


@dataclass(frozen=True)
class Raster:
    """A rendered z-buffer. ``z_mm`` is ``inf`` where nothing was hit."""

    z_mm: np.ndarray  # (H, W) float32
    cos_incidence: np.ndarray  # (H, W) float32, cosine between the surface normal and the ray
    part: np.ndarray  # (H, W) int16, part id of the visible surface, -1 = nothing


# --------------------------------------------------------------------------- camera tables

@lru_cache(maxsize=8)
def _ray_table(fx: float, fy: float, cx: float, cy: float, width: int, height: int) -> np.ndarray:
    """Unit ray directions (H * W, 3) float32 through the pixel centres."""
    return np.ascontiguousarray(_ray_columns(fx, fy, cx, cy, width, height).T)


@lru_cache(maxsize=8)
def _ray_columns(fx: float, fy: float, cx: float, cy: float, width: int, height: int) -> np.ndarray:
    """Unit ray directions (3, H * W) float32: one contiguous row per axis."""
    u = (np.arange(width, dtype=np.float64) - cx) / fx
    v = (np.arange(height, dtype=np.float64) - cy) / fy
    x, y = np.meshgrid(u, v)
    rays = np.stack([x, y, np.ones_like(x)]).reshape(3, -1)
    rays /= np.linalg.norm(rays, axis=0, keepdims=True)
    rays = np.ascontiguousarray(rays, dtype=np.float32)
    rays.setflags(write=False)
    return rays


@lru_cache(maxsize=8)
def _pixel_axes(fx: float, fy: float, cx: float, cy: float, width: int, height: int):
    """``x = (u - cx) / fx`` (W,), ``y = (v - cy) / fy`` (H,) float32, and 1 / |(x, y, 1)| (H, W)."""
    xs = ((np.arange(width) - cx) / fx).astype(np.float32)
    ys = ((np.arange(height) - cy) / fy).astype(np.float32)
    inv_norm = (1.0 / np.sqrt(xs[None, :].astype(np.float64) ** 2 + ys[:, None].astype(np.float64) ** 2 + 1.0))
    out = (xs, ys, inv_norm.astype(np.float32))
    for a in out:
        a.setflags(write=False)
    return out


# --------------------------------------------------------------------------- screen boxes and lanes

def _extent(center: np.ndarray, radius: np.ndarray, f: float, c: float, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact pixel range along one image axis of spheres (N,) seen by a pinhole camera."""
    lateral, depth = center[:, axis], center[:, 2]
    dist = np.hypot(lateral, depth)
    theta = np.arctan2(lateral, depth)
    delta = np.arcsin(np.clip(radius / np.maximum(dist, 1e-6), 0.0, 1.0))
    lo = np.tan(np.clip(theta - delta, -1.5, 1.5)) * f + c
    hi = np.tan(np.clip(theta + delta, -1.5, 1.5)) * f + c
    return np.minimum(lo, hi), np.maximum(lo, hi)


def _pixel_range(lo: np.ndarray, hi: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    lo = np.clip(np.floor(lo), 0, size).astype(np.int64)
    hi = np.clip(np.ceil(hi) + 1, 0, size).astype(np.int64)
    return lo, hi


def screen_boxes(cones: np.ndarray, intrinsics: Intrinsics, width: int, height: int) -> np.ndarray:
    """Integer pixel boxes (P, 4) ``u0, v0, u1, v1`` (inclusive-exclusive), clipped to the image."""
    a, ra, b, rb = cones[:, 0:3], cones[:, 3], cones[:, 4:7], cones[:, 7]
    boxes = []
    for f, c, axis, size in ((intrinsics.fx, intrinsics.cx, 0, width), (intrinsics.fy, intrinsics.cy, 1, height)):
        lo_a, hi_a = _extent(a, ra, f, c, axis)
        lo_b, hi_b = _extent(b, rb, f, c, axis)
        boxes.append(_pixel_range(np.minimum(lo_a, lo_b), np.maximum(hi_a, hi_b), size))
    (u0, u1), (v0, v1) = boxes
    in_front = (a[:, 2] > ra) & (b[:, 2] > rb)  # primitives touching the camera plane are dropped
    u1 = np.where(in_front, u1, u0)
    return np.stack([u0, v0, u1, v1], axis=1)


def _ellipsoid_boxes(ells: np.ndarray, intrinsics: Intrinsics, width: int, height: int) -> np.ndarray:
    """Exact screen boxes (E, 4) of ellipsoids: the planes through the camera tangent to the ellipsoid
    (``n^T S n = (n . c)^2``, ``S = M M^T``, ``M = axes diag(semi)``) along each image axis."""
    centre = ells[:, 0:3]
    m = ells[:, 3:12].reshape(-1, 3, 3) * ells[:, None, 12:15]
    s = m @ m.transpose(0, 2, 1)  # (E, 3, 3)
    a = s[:, 2, 2] - centre[:, 2] ** 2  # < 0 when the ellipsoid lies wholly in front of the camera plane
    ranges = []
    for f, c, axis, size in ((intrinsics.fx, intrinsics.cx, 0, width), (intrinsics.fy, intrinsics.cy, 1, height)):
        # Tangent plane x_axis - k z = 0: a k^2 - 2 b k + e = 0.
        b = s[:, axis, 2] - centre[:, axis] * centre[:, 2]
        e = s[:, axis, axis] - centre[:, axis] ** 2
        disc = np.sqrt(np.maximum(b * b - a * e, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            k1, k2 = (b - disc) / a, (b + disc) / a
        lo, hi = np.minimum(k1, k2) * f + c, np.maximum(k1, k2) * f + c
        if f < 0:
            lo, hi = hi, lo
        lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
        ranges.append(_pixel_range(np.nan_to_num(lo, nan=0.0, posinf=size, neginf=0.0),
                                   np.nan_to_num(hi, nan=-2.0, posinf=size, neginf=-2.0), size))
    (u0, u1), (v0, v1) = ranges
    u1 = np.where(a < 0.0, u1, u0)
    return np.stack([u0, v0, u1, v1], axis=1)


def _corner_boxes(boxes: np.ndarray, intrinsics: Intrinsics, width: int, height: int) -> np.ndarray:
    """Screen boxes (B, 4) of oriented boxes from their 8 projected corners."""
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
    axes = boxes[:, 3:12].reshape(-1, 3, 3)
    corners = boxes[:, None, 0:3] + np.einsum("eij,kj->eki", axes * boxes[:, None, 12:15], signs)  # (B, 8, 3)
    z = corners[..., 2]
    in_front = z.min(axis=1) > 1.0
    z = np.maximum(z, 1.0)
    u = corners[..., 0] / z * intrinsics.fx + intrinsics.cx
    v = corners[..., 1] / z * intrinsics.fy + intrinsics.cy
    u0, u1 = _pixel_range(u.min(1), u.max(1), width)
    v0, v1 = _pixel_range(v.min(1), v.max(1), height)
    # A box reaching behind the camera: the whole image (the slab test sorts the pixels out).
    u0, v0 = np.where(in_front, u0, 0), np.where(in_front, v0, 0)
    u1, v1 = np.where(in_front, u1, width), np.where(in_front, v1, height)
    return np.stack([u0, v0, u1, v1], axis=1)


def _lanes(boxes: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Pixel index of every (primitive, pixel in its box) lane, and the lane count per primitive.

    Built row by row (no integer division): a box row is a run of consecutive pixel indices."""
    w_box = np.maximum(boxes[:, 2] - boxes[:, 0], 0)
    rows = np.where(w_box > 0, np.maximum(boxes[:, 3] - boxes[:, 1], 0), 0)
    counts = w_box * rows
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64), counts, 0
    n_rows = int(rows.sum())
    row_prim = np.repeat(np.arange(len(boxes)), rows)
    row_v = boxes[row_prim, 1] + np.arange(n_rows) - np.repeat(np.cumsum(rows) - rows, rows)
    row_len = w_box[row_prim]
    row_pix = row_v * width + boxes[row_prim, 0]
    lane_start = np.cumsum(row_len) - row_len
    pix = np.arange(total, dtype=np.int64) + np.repeat(row_pix - lane_start, row_len)
    return pix, counts, total


_EMPTY = (np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, np.int16))


def _lane_setup(coef: np.ndarray, parts: np.ndarray, boxes: np.ndarray, intrinsics: Intrinsics, width: int,
                height: int):
    """Lanes of the primitives' boxes: ``col(j)`` -> coefficient ``j`` per lane (N,) float32 (repeated on
    demand: a few live lane arrays stay in cache), ray components (3 x (N,)), pixels, parts (N,)."""
    pix, counts, total = _lanes(boxes, width)
    if total == 0:
        return None
    table = np.ascontiguousarray(coef.T, dtype=np.float32)  # (K, P)

    def col(j: int) -> np.ndarray:
        return np.repeat(table[j], counts)

    rays = _ray_columns(intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy, width, height)
    rx, ry, rz = rays[0].take(pix), rays[1].take(pix), rays[2].take(pix)
    return col, rx, ry, rz, pix, np.repeat(parts.astype(np.int16), counts)


# --------------------------------------------------------------------------- casters

def cast(volume, intrinsics: Intrinsics, width: int, height: int, far_mm: float = np.inf) -> Raster:
    """Ray-cast :class:`Solids` (or a hand_model ``Volume``; camera frame, mm) into a z-buffer.

    Primitives wholly beyond ``far_mm`` are skipped (they could not be measured)."""
    solids = Solids.of(volume)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        hits = [
            _cast_cones(*_near(solids, "cones", far_mm), intrinsics, width, height),
            _cast_ellipsoids(*_near(solids, "ellipsoids", far_mm), intrinsics, width, height),
            _cast_cylinders(*_near(solids, "cylinders", far_mm), intrinsics, width, height),
            _cast_boxes(*_near(solids, "boxes", far_mm), intrinsics, width, height),
        ]
        z_buf, cos_buf, part_buf = _zbuffer(hits, width * height)
        z_buf, cos_buf, part_buf = z_buf.reshape(height, width), cos_buf.reshape(height, width), \
            part_buf.reshape(height, width)
        _paint_planes(solids.planes, solids.plane_parts, intrinsics, width, height, far_mm, z_buf, cos_buf, part_buf)
    return Raster(z_buf, cos_buf, part_buf)


_NO_HIT = np.iinfo(np.int64).max


def _zbuffer(hits: list, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest hit per pixel: flat (size,) z, cos and part buffers from lists of (pix, z, cos, part).

    One ``minimum.at`` over keys ``(z bits << 32) | (n - 1 - hit index)``: positive float32 bit patterns
    sort as their values, so the smallest key per pixel names the nearest hit (ties: the last one, as a
    plain scatter would leave it: where a bone's end sphere meets the next bone, the distal bone shows)."""
    pix = np.concatenate([h[0] for h in hits])
    z = np.concatenate([h[1] for h in hits])
    z_buf = np.full(size, np.inf, dtype=np.float32)
    cos_buf = np.zeros(size, dtype=np.float32)
    part_buf = np.full(size, -1, dtype=np.int16)
    if len(z) == 0:
        return z_buf, cos_buf, part_buf
    key = (z.view(np.uint32).astype(np.int64) << 32) | np.arange(len(z) - 1, -1, -1, dtype=np.int64)
    key_buf = np.full(size, _NO_HIT, dtype=np.int64)
    np.minimum.at(key_buf, pix, key)
    win = np.flatnonzero(key_buf[pix] == key)  # keys are unique: one winner per pixel hit
    at = pix[win]
    z_buf[at] = z[win]
    cos_buf[at] = np.clip(np.concatenate([h[2] for h in hits])[win], 0.0, 1.0)
    part_buf[at] = np.concatenate([h[3] for h in hits])[win]
    return z_buf, cos_buf, part_buf


def _near(solids: Solids, kind: str, far_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """The primitives of ``kind`` whose nearest point lies within ``far_mm``."""
    rows, parts = solids.kind(kind)
    if not np.isfinite(far_mm) or len(rows) == 0:
        return rows, parts
    if kind == "cones":
        near = np.minimum(rows[:, 2] - rows[:, 3], rows[:, 6] - rows[:, 7])
    elif kind == "cylinders":
        near = np.minimum(rows[:, 2], rows[:, 5]) - rows[:, 6]
    else:  # the z extent of the axes scaled by the semi-axes (ellipsoids) or half sizes (boxes)
        reach = rows[:, 3:12].reshape(-1, 3, 3)[:, 2, :] * rows[:, 12:15]  # (N, 3)
        near = rows[:, 2] - (np.abs(reach).sum(1) if kind == "boxes" else np.sqrt((reach * reach).sum(1)))
    keep = near <= far_mm
    return rows[keep], parts[keep]


def _cast_cones(cones: np.ndarray, parts: np.ndarray, intrinsics: Intrinsics, width: int, height: int):
    """Hits (pix, z, cos, part) of round cones (P, 8) ``(a xyz, ra, b xyz, rb)``."""
    if len(cones) == 0:
        return _EMPTY
    cones = np.asarray(cones, dtype=np.float64)
    setup = _lane_setup(_cone_coefficients(cones), parts, screen_boxes(cones, intrinsics, width, height),
                        intrinsics, width, height)
    if setup is None:
        return _EMPTY
    c, rx, ry, rz, pix, lane_parts = setup
    m2 = c(0) * rx + c(1) * ry + c(2) * rz  # rd . ba
    m3 = c(3) * rx + c(4) * ry + c(5) * rz  # rd . (ro - pa)
    m6 = c(6) * rx + c(7) * ry + c(8) * rz  # rd . (ro - pb)
    # Body.
    d2 = c(9)
    k2 = d2 - m2 * m2
    k1 = d2 * m3 + c(10) * m2
    h = k1 * k1 - c(11) * k2
    hit = h >= 0.0
    t_body = (-np.sqrt(h) - k1) / k2
    y = c(12) + t_body * m2
    body = hit & (y > 0.0) & (y < d2)
    # Caps (the two spheres).
    h1 = m3 * m3 - c(13) + c(15)
    h2 = m6 * m6 - c(14) + c(16)
    t1 = -m3 - np.sqrt(h1)  # nan where the ray misses
    t2 = -m6 - np.sqrt(h2)
    use_b = (t2 < t1) | ~(h1 > 0.0)
    t_cap = np.where(use_b, t2, t1)
    t = np.where(body, t_body, t_cap)
    # Cosine of incidence. Body normal d2 (oa + t rd) - ba y = d2 r(y) n, with r(y) = ra - rr y / d2
    # the radius of the sphere touching the hit point (so |n| needs no square root); cap normal (o - p) / r.
    cos_body = (m2 * y - d2 * (m3 + t_body)) / (c(19) - c(20) * y)
    cos_cap = np.where(use_b, (m6 + t_cap) * c(18), (m3 + t_cap) * c(17))
    cos = np.where(body, cos_body, -cos_cap)
    keep = np.flatnonzero(hit & (t > 0.0))  # nan t (no cap hit) compares False
    return pix[keep], (t * rz)[keep], cos[keep], lane_parts[keep]


def _cone_coefficients(cones: np.ndarray) -> np.ndarray:
    """Per-primitive terms (P, 21) of iq's roundedConeIntersect with the ray origin at 0: ba (0-2),
    -pa (3-5), -pb (6-8), d2, rr ra - m1, k0, m1 - ra rr, m5, m7, ra^2, rb^2, 1/ra, 1/rb, d2 ra, rr."""
    pa, ra, pb, rb = cones[:, 0:3], cones[:, 3], cones[:, 4:7], cones[:, 7]
    ba = pb - pa
    rr = ra - rb
    m0 = (ba * ba).sum(1)
    m1 = -(ba * pa).sum(1)
    m5 = (pa * pa).sum(1)
    m7 = (pb * pb).sum(1)
    d2 = m0 - rr * rr
    k0 = d2 * m5 - m1 * m1 + 2.0 * m1 * rr * ra - m0 * ra * ra
    return np.stack([ba[:, 0], ba[:, 1], ba[:, 2], -pa[:, 0], -pa[:, 1], -pa[:, 2], -pb[:, 0], -pb[:, 1],
                     -pb[:, 2], d2, rr * ra - m1, k0, m1 - ra * rr, m5, m7, ra * ra, rb * rb, 1.0 / ra,
                     1.0 / rb, d2 * ra, rr], axis=1)


def _cast_ellipsoids(ells: np.ndarray, parts: np.ndarray, intrinsics: Intrinsics, width: int, height: int):
    """Hits (pix, z, cos, part) of ellipsoids (E, 15): centre, axes (row-major 3x3 columns), semi-axes."""
    if len(ells) == 0:
        return _EMPTY
    centre, axes, semi = ells[:, 0:3], ells[:, 3:12].reshape(-1, 3, 3), ells[:, 12:15]
    to_unit = axes.transpose(0, 2, 1) / semi[:, :, None]  # (E, 3, 3): world direction -> unit-sphere space
    origin = np.einsum("eij,ej->ei", to_unit, -centre)  # (E, 3) camera centre in unit-sphere space
    coef = np.concatenate([to_unit.reshape(-1, 9), origin, (origin * origin).sum(1, keepdims=True) - 1.0,
                           1.0 / (semi * semi)], axis=1)  # (E, 16)
    setup = _lane_setup(coef, parts, _ellipsoid_boxes(ells, intrinsics, width, height), intrinsics, width, height)
    if setup is None:
        return _EMPTY
    c, rx, ry, rz, pix, lane_parts = setup
    d0 = c(0) * rx + c(1) * ry + c(2) * rz
    d1 = c(3) * rx + c(4) * ry + c(5) * rz
    d2 = c(6) * rx + c(7) * ry + c(8) * rz
    o0, o1, o2 = c(9), c(10), c(11)
    a = d0 * d0 + d1 * d1 + d2 * d2
    b = o0 * d0 + o1 * d1 + o2 * d2
    h = b * b - a * c(12)
    sq = np.sqrt(h)  # nan where the ray misses
    t = (-b - sq) / a
    p0, p1, p2 = o0 + t * d0, o1 + t * d1, o2 + t * d2
    # World normal ~ axes (p / semi): n . rd = p . d = -sqrt(h), |n|^2 = sum p_i^2 / semi_i^2.
    cos = sq / np.sqrt(p0 * p0 * c(13) + p1 * p1 * c(14) + p2 * p2 * c(15))
    keep = np.flatnonzero(t > 0.0)
    return pix[keep], (t * rz)[keep], cos[keep], lane_parts[keep]


def _cast_cylinders(cyl: np.ndarray, parts: np.ndarray, intrinsics: Intrinsics, width: int, height: int):
    """Hits (pix, z, cos, part) of flat-capped cylinders (C, 7) ``(a xyz, b xyz, r)`` (iq's cylIntersect)."""
    if len(cyl) == 0:
        return _EMPTY
    pa, pb, r = cyl[:, 0:3], cyl[:, 3:6], cyl[:, 6]
    ba = pb - pa
    baba = (ba * ba).sum(1)
    baoc = -(ba * pa).sum(1)  # ba . (ro - a)
    k0 = baba * (pa * pa).sum(1) - baoc * baoc - r * r * baba
    coef = np.stack([ba[:, 0], ba[:, 1], ba[:, 2], -pa[:, 0], -pa[:, 1], -pa[:, 2], baba, baoc, k0,
                     1.0 / (r * baba), 1.0 / np.sqrt(baba)], axis=1)
    spheres = np.concatenate([pa, r[:, None], pb, r[:, None]], axis=1)  # their hull holds the cylinder
    setup = _lane_setup(coef, parts, screen_boxes(spheres, intrinsics, width, height), intrinsics, width, height)
    if setup is None:
        return _EMPTY
    c, rx, ry, rz, pix, lane_parts = setup
    l_baba, l_baoc = c(6), c(7)
    bard = c(0) * rx + c(1) * ry + c(2) * rz
    ocrd = c(3) * rx + c(4) * ry + c(5) * rz
    k2 = l_baba - bard * bard
    k1 = l_baba * ocrd - l_baoc * bard
    h = k1 * k1 - k2 * c(8)
    sq = np.sqrt(h)  # nan where the ray misses
    t_body = (-k1 - sq) / k2
    y = l_baoc + t_body * bard
    body = (y > 0.0) & (y < l_baba)
    below = y < 0.0
    t_cap = (np.where(below, 0.0, l_baba) - l_baoc) / bard
    cap = np.abs(k1 + k2 * t_cap) < sq
    t = np.where(body, t_body, t_cap)
    # Body normal (oc + t rd - ba y / baba) / r; cap normal -+ ba / |ba|.
    cos_body = -(l_baba * (ocrd + t_body) - bard * y) * c(9)
    cos_cap = np.where(below, bard, -bard) * c(10)
    cos = np.where(body, cos_body, cos_cap)
    keep = np.flatnonzero((body | cap) & (t > 0.0))
    return pix[keep], (t * rz)[keep], cos[keep], lane_parts[keep]


def _cast_boxes(boxes: np.ndarray, parts: np.ndarray, intrinsics: Intrinsics, width: int, height: int):
    """Hits (pix, z, cos, part) of oriented boxes (B, 15): centre, axes (3x3 columns), half sizes (slab test)."""
    if len(boxes) == 0:
        return _EMPTY
    centre, axes, half = boxes[:, 0:3], boxes[:, 3:12].reshape(-1, 3, 3), boxes[:, 12:15]
    origin = np.einsum("eji,ej->ei", axes, -centre)  # (B, 3) camera centre in box coordinates
    coef = np.concatenate([axes.transpose(0, 2, 1).reshape(-1, 9), -half - origin, half - origin], axis=1)
    setup = _lane_setup(coef, parts, _corner_boxes(boxes, intrinsics, width, height), intrinsics, width, height)
    if setup is None:
        return _EMPTY
    c, rx, ry, rz, pix, lane_parts = setup
    t_near = t_far = None
    d_abs, t_mins = [], []
    for i in range(3):
        d = c(3 * i) * rx + c(3 * i + 1) * ry + c(3 * i + 2) * rz
        inv = 1.0 / d
        ta, tb = c(9 + i) * inv, c(12 + i) * inv
        t_min, t_max = np.minimum(ta, tb), np.maximum(ta, tb)
        t_near = t_min if t_near is None else np.maximum(t_near, t_min)
        t_far = t_max if t_far is None else np.minimum(t_far, t_max)
        d_abs.append(np.abs(d))
        t_mins.append(t_min)
    # The face hit is the slab whose entry is the latest; its normal is that axis.
    cos = np.where(t_mins[0] == t_near, d_abs[0], np.where(t_mins[1] == t_near, d_abs[1], d_abs[2]))
    keep = np.flatnonzero((t_near <= t_far) & (t_near > 0.0))
    return pix[keep], (t_near * rz)[keep], cos[keep], lane_parts[keep]


# --------------------------------------------------------------------------- planes

def _clip(poly: list[tuple[float, float]], a: float, b: float, c: float) -> list[tuple[float, float]]:
    """The part of a convex polygon (pixel coordinates) where ``a u + b v + c >= 0``."""
    out = []
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        fp, fq = a * p[0] + b * p[1] + c, a * q[0] + b * q[1] + c
        if fp >= 0.0:
            out.append(p)
        if (fp >= 0.0) != (fq >= 0.0):
            s = fp / (fp - fq)
            out.append((p[0] + s * (q[0] - p[0]), p[1] + s * (q[1] - p[1])))
    return out


def _paint_planes(planes: np.ndarray, parts: np.ndarray, intrinsics: Intrinsics, width: int, height: int,
                  far_mm: float, z_buf: np.ndarray, cos_buf: np.ndarray, part_buf: np.ndarray) -> None:
    """Draw convex plane polygons into the buffers (in place), nearest surface wins."""
    if len(planes) == 0:
        return
    fx, fy, cx, cy = intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy
    xs, ys, inv_norm = _pixel_axes(fx, fy, cx, cy, width, height)

    def in_pixels(w: np.ndarray) -> tuple[float, float, float]:  # w . q as a u + b v + c
        return float(w[0] / fx), float(w[1] / fy), float(w[2] - w[0] * cx / fx - w[1] * cy / fy)

    for row, part in zip(planes, parts):
        n, dist = row[0:3], float(row[3])
        # In front and within range: n . q > d / far; each edge: (d e - f n) . q <= 0.
        lines = [in_pixels(n)]
        lines[0] = (lines[0][0], lines[0][1], lines[0][2] - (dist / far_mm if np.isfinite(far_mm) else 1e-6))
        edges = []
        for k in range(MAX_PLANE_EDGES):
            e, f = row[4 + 4 * k: 7 + 4 * k], float(row[7 + 4 * k])
            if not e.any():
                continue
            w = dist * e - f * n
            edges.append(w)
            a, b, c = in_pixels(w)
            lines.append((-a, -b, -c))
        poly = [(0.0, 0.0), (width - 1.0, 0.0), (width - 1.0, height - 1.0), (0.0, height - 1.0)]
        for a, b, c in lines:
            poly = _clip(poly, a, b, c)
            if not poly:
                break
        if not poly:
            continue
        us, vs = [p[0] for p in poly], [p[1] for p in poly]
        u0, u1 = max(int(np.floor(min(us))) - 1, 0), min(int(np.ceil(max(us))) + 2, width)
        v0, v1 = max(int(np.floor(min(vs))) - 1, 0), min(int(np.ceil(max(vs))) + 2, height)
        if u0 >= u1 or v0 >= v1:
            continue
        corners = [(u, v) for u in (u0, u1 - 1) for v in (v0, v1 - 1)]
        x, y = xs[u0:u1], ys[v0:v1]
        denom = (np.float32(n[1]) * y + np.float32(n[2]))[:, None] + (np.float32(n[0]) * x)[None, :]  # n . q
        z = np.float32(dist) / denom
        inside = (denom > 0.0) & (z <= far_mm)
        for w in edges:
            a, b, c = in_pixels(w)
            if all(a * u + b * v + c <= 0.0 for u, v in corners):  # the whole box is inside this edge
                continue
            inside &= ((np.float32(w[1]) * y + np.float32(w[2]))[:, None] + (np.float32(w[0]) * x)[None, :]) <= 0.0
        z_view = z_buf[v0:v1, u0:u1]
        nearer = inside & (z < z_view)
        np.copyto(z_view, z, where=nearer)
        np.copyto(cos_buf[v0:v1, u0:u1], denom * inv_norm[v0:v1, u0:u1], where=nearer)
        part_buf[v0:v1, u0:u1][nearer] = part
