"""The artefacts of depth sensors, each a small pure function on a float32 ``(H, W)`` depth map in mm
(``inf`` = no surface / no measurement); random ones draw only from the ``rng`` passed in. The
profiles of :mod:`srnpose.synth.sensor` chain them."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

_NOISE_TABLE_SIZE = 1 << 20
_FAR_FILL_MM = 1e5  # the generic model's stand-in depth for "no surface"
_NEAR_BAND_MM = 250.0  # holes and speckle fall on surfaces within this of the nearest one (the hand)

@lru_cache(maxsize=1)
def _noise_table() -> np.ndarray:
    """A fixed table of standard normal float32 samples; frames read it at a random offset (fast,
    and identical in every process)."""
    table = np.random.Generator(np.random.PCG64(0x5EED)).standard_normal(_NOISE_TABLE_SIZE, dtype=np.float32)
    table.setflags(write=False)
    return table


def standard_normal(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    size = shape[0] * shape[1]
    if size > _NOISE_TABLE_SIZE // 2:
        return rng.standard_normal(shape, dtype=np.float32)
    start = int(rng.integers(0, _NOISE_TABLE_SIZE - size))
    return _noise_table()[start:start + size].reshape(shape)


# ----------------------------------------------------------------------------------------------------
# Artefacts. Depth maps are float32 (H, W) mm, inf = no surface / no measurement; inputs are not modified.
# The profiles call them with unmeasured pixels at _FAR_FILL_MM instead (finite arithmetic, no masking
# passes) and a separate ``keep`` mask; every artefact below gives the same answer for either stand-in.
# Costs at 320x240: a full-frame numpy pass is 10-20 us, but np.where, masked assignment, flatnonzero of a
# float array and min/max against a scalar are 60-300 us, so the code avoids them on full frames.

@lru_cache(maxsize=8)
def _constant(shape: tuple[int, ...], value: float) -> np.ndarray:
    """A read-only float32 array filled with ``value`` (array operands are much faster than scalars in
    np.where / np.maximum)."""
    out = np.full(shape, value, dtype=np.float32)
    out.setflags(write=False)
    return out


def range_gate(z_mm: np.ndarray, near_mm: float, far_mm: float) -> np.ndarray:
    """Depth (H, W) with surfaces outside ``[near_mm, far_mm]`` set to inf."""
    z = np.asarray(z_mm, dtype=np.float32)
    return np.where((z >= near_mm) & (z <= far_mm), z, _constant(z.shape, np.inf))


def edge_mask(z_mm: np.ndarray, jump_mm: float) -> np.ndarray:
    """(H, W) bool: pixels with a depth step larger than ``jump_mm`` to a 4-neighbour. A measured pixel
    beside an unmeasured one is an edge; two unmeasured ones are not."""
    z = np.asarray(z_mm, dtype=np.float32)
    height, width = z.shape
    flat = z.ravel()
    edge = np.zeros(flat.size, dtype=bool)
    with np.errstate(invalid="ignore"):  # inf - inf
        jump_h = np.abs(flat[1:] - flat[:-1]) > jump_mm  # (H * W - 1,) contiguous: fast
        jump_v = np.abs(flat[width:] - flat[:-width]) > jump_mm  # (H * W - W,)
    jump_h[width - 1::width] = False  # last pixel of a row and first of the next are not neighbours
    edge[1:] |= jump_h
    edge[:-1] |= jump_h
    edge[width:] |= jump_v
    edge[:-width] |= jump_v
    return edge.reshape(height, width)


def grazing_drop_prob(cos_incidence: np.ndarray, grazing_cos: float) -> np.ndarray:
    """(H, W) float32 probability that a surface seen at ``cos_incidence`` is missing: 0 above
    ``grazing_cos``, rising linearly to 0.95 at a tangent surface."""
    cos = np.asarray(cos_incidence, dtype=np.float32)
    return np.maximum(np.float32(0.95) - np.float32(0.95 / grazing_cos) * cos, _constant(cos.shape, 0.0))


def dropout(z_mm: np.ndarray, drop_prob: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Depth (H, W) with each pixel missing with its probability ``drop_prob`` (H, W)."""
    out = np.array(z_mm, dtype=np.float32)
    candidates = np.flatnonzero(drop_prob > 0)
    dropped = candidates[rng.random(candidates.size) < drop_prob.ravel()[candidates]]
    out.ravel()[dropped] = np.inf
    return out


def drop_grazing(z_mm: np.ndarray, cos_incidence: np.ndarray, grazing_cos: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Depth (H, W) with surfaces seen at grazing angles missing (:func:`grazing_drop_prob`)."""
    return dropout(z_mm, grazing_drop_prob(cos_incidence, grazing_cos), rng)


def _drop_indices(graze_ok: np.ndarray, edge_ok: np.ndarray, cos_incidence: np.ndarray, grazing_cos: float,
                  edge_drop_prob: float, rng: np.random.Generator) -> np.ndarray:
    """Flat indices of the pixels that go missing: surfaces (``graze_ok``) seen at grazing angles with
    0.95 * (1 - cos / grazing_cos), edges (``edge_ok``) with at least ``edge_drop_prob``. One uniform draw
    per candidate, in index order (the generic model's draws)."""
    cos = np.asarray(cos_incidence)
    graze = graze_ok & (cos < grazing_cos)
    candidates = np.flatnonzero(graze | edge_ok)  # sparse: edges and grazing rims
    drop_p = np.zeros(candidates.size, dtype=np.float32)
    on_graze = graze.ravel()[candidates]
    drop_p[on_graze] = 0.95 * (1.0 - cos.ravel()[candidates[on_graze]] / grazing_cos)
    on_edge = edge_ok.ravel()[candidates]
    drop_p[on_edge] = np.maximum(drop_p[on_edge], edge_drop_prob)
    live = drop_p != 0
    candidates, drop_p = candidates[live], drop_p[live]
    return candidates[rng.random(candidates.size) < drop_p]


def _bounding_slices(mask: np.ndarray, margin: int = 0) -> tuple[slice, slice] | None:
    """Row and column slices of the smallest box holding every True pixel of a dense ``mask`` (H, W),
    grown by ``margin`` px within the image; None when ``mask`` is all False."""
    rows = np.flatnonzero(mask.any(axis=1))
    if not rows.size:
        return None
    cols = np.flatnonzero(mask[rows[0]:rows[-1] + 1].any(axis=0))
    height, width = mask.shape
    return (slice(max(rows[0] - margin, 0), min(rows[-1] + 1 + margin, height)),
            slice(max(cols[0] - margin, 0), min(cols[-1] + 1 + margin, width)))


def _index_box(index: np.ndarray, shape: tuple[int, int], margin: int = 0) -> tuple[slice, slice] | None:
    """:func:`_bounding_slices` of a sparse mask given by its flat ``index`` (N,) (fast for edges)."""
    if not index.size:
        return None
    height, width = shape
    rows, cols = np.divmod(index, width)
    return (slice(max(int(rows[0]) - margin, 0), min(int(rows[-1]) + 1 + margin, height)),
            slice(max(int(cols.min()) - margin, 0), min(int(cols.max()) + 1 + margin, width)))


def _window_min_flat(flat: np.ndarray, width: int) -> np.ndarray:
    """Running minimum ``out[i] = min(flat[i:i + width])`` of a 1-D array, ``out`` shorter by ``width - 1``:
    doubling steps on contiguous memory (fast, no per-row loop)."""
    span = 1
    while span < width:
        step = min(span, width - span)
        flat = np.minimum(flat[:-step], flat[step:])
        span += step
    return flat


def _window_min_rows(z: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """(H, W): min over each row's columns ``[u + lo, u + hi]`` (``lo <= hi``; outside the image = inf)."""
    height, width = z.shape
    left, right = max(-lo, 0), max(hi, 0)
    padded = np.full((height, width + left + right), np.inf, dtype=np.float32)
    padded[:, left:left + width] = z
    running = _window_min_flat(padded.ravel()[left + lo:], hi - lo + 1)  # [r * W' + u]: row r, column u
    out = np.empty(padded.size, dtype=np.float32)
    out[:running.size] = running  # every in-image index lies below running.size: the padding absorbs windows
    return out.reshape(padded.shape)[:, :width]


def _window_min_cols(z: np.ndarray, radius: int) -> np.ndarray:
    """(H, W): min of each column's window ``[v - radius, v + radius]`` (outside the image = inf)."""
    height, width = z.shape
    padded = np.full((height + 2 * radius, width), np.inf, dtype=np.float32)
    padded[radius:radius + height] = z
    flat = padded.ravel()
    span = 1  # the doubling of _window_min_flat, stepping by whole rows
    while span < 2 * radius + 1:
        step = min(span, 2 * radius + 1 - span)
        flat = np.minimum(flat[:-step * width], flat[step * width:])
        span += step
    return flat[:height * width].reshape(height, width)


def shadow_mask(z_mm: np.ndarray, fx_px: float, baseline_mm: float, side: int = 1) -> np.ndarray:
    """(H, W) bool: pixels that the projector (or the second imager) cannot see.

    The projector sits ``baseline_mm`` from the camera along +x (``side=+1``) or -x (``side=-1``). It
    sees a pixel at projector column ``u - s * d`` with disparity ``d = |fx| * b / z`` and ``s = side *
    sign(fx)``; a pixel is hidden when a pixel on the projector's side of it in the same row maps to the
    same or a farther-out projector column. Beside a near object's edge at ``z_near`` in front of
    ``z_far`` this is a band of ``|fx| * b * (1/z_near - 1/z_far)`` px on the side away from the projector.
    """
    z = np.asarray(z_mm, dtype=np.float32)
    height, width = z.shape
    hidden = np.zeros(z.shape, dtype=bool)
    s = int(np.sign(side) * np.sign(fx_px))
    if s < 0:  # mirror the rows so that the projector is always towards +u
        z = z[:, ::-1]
    disparity = np.float32(abs(fx_px) * baseline_mm) / z  # (H, W) px, 0 (or ~0) where nothing is measured
    # Projector columns u - d only fall (so that a pixel can hide the ones before it) where the disparity
    # rises by a pixel or more from one column to the next: work on those rows, and on the columns from
    # `reach` before the first such rise to just after the last (beyond it the columns only grow).
    flat = disparity.ravel()
    rise = flat[1:] - flat[:-1] >= 1.0  # (H * W - 1,) between columns u and u + 1 of a row
    rise[width - 1::width] = False
    box = _index_box(np.flatnonzero(rise), (height, width))
    if box is None:
        return hidden
    rows, cols = box
    reach = int(np.ceil(float(disparity[rows].max())))  # no band is wider than the largest disparity
    cols = slice(max(cols.start - reach + 1, 0), min(cols.stop + 1, width))  # rises sit at u -> u + 1
    column = np.arange(cols.start, cols.stop, dtype=np.float32) - disparity[rows, cols]  # (h, w) projector column
    towards = _window_min_rows(column, 1, reach)  # (h, w) least projector column of the next `reach` px
    hidden[rows, cols] = column >= towards
    return hidden[:, ::-1] if s < 0 else hidden


def shadow_band(z_mm: np.ndarray, fx_px: float, baseline_mm: float, side: int = 1) -> np.ndarray:
    """Depth (H, W) with the projector's shadow (:func:`shadow_mask`) missing."""
    z = np.asarray(z_mm, dtype=np.float32)
    return np.where(shadow_mask(z, fx_px, baseline_mm, side), _constant(z.shape, np.inf), z)


def quantize_disparity(z_mm: np.ndarray, fx_px: float, baseline_mm: float, subpixel_px: float) -> np.ndarray:
    """Depth (H, W) measured through a disparity rounded to ``subpixel_px``: the depth step at ``z`` is
    about ``z^2 * subpixel_px / (|fx| * baseline_mm)`` mm. Beyond half a step of disparity: inf."""
    z = np.asarray(z_mm, dtype=np.float32)
    scale = np.float32(abs(fx_px) * baseline_mm / subpixel_px)  # depth (mm) * disparity (subpixel steps)
    with np.errstate(divide="ignore"):  # 0 steps -> inf
        return scale / np.rint(scale / z)


def _flying_values(z: np.ndarray, measured: np.ndarray, candidates: np.ndarray, rng: np.random.Generator,
                   jump_mm: float, prob: float) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices and new depths of the flying pixels among ``candidates`` (flat indices of measured
    pixels) of ``z`` (H, W) (unmeasured pixels: inf or _FAR_FILL_MM; ``measured`` (H, W) bool)."""
    height, width = z.shape
    flat = z.ravel()
    v, u = np.divmod(candidates, width)
    neighbours = np.stack([np.where(v > 0, candidates - width, candidates),  # (4, N) 4-neighbours, self at borders
                           np.where(v < height - 1, candidates + width, candidates),
                           np.where(u > 0, candidates - 1, candidates),
                           np.where(u < width - 1, candidates + 1, candidates)])
    z_own = flat[candidates]  # (N,)
    z_neighbours = flat[neighbours]  # (4, N)
    z_far = np.where(measured.ravel()[neighbours], z_neighbours, 0.0).max(axis=0)  # farthest measured neighbour
    z_near = z_neighbours.min(axis=0)  # nearest neighbour (unmeasured ones are never the nearest)
    gap_far, gap_near = z_far - z_own, z_own - z_near
    z_other = np.where(gap_far >= gap_near, z_far, z_near)
    mixed = (np.maximum(gap_far, gap_near) > jump_mm) & (rng.random(candidates.size) < prob)
    weight = rng.random(int(mixed.sum()), dtype=np.float32)
    z_own, z_other = z_own[mixed], z_other[mixed]
    return candidates[mixed], (z_own + weight * (z_other - z_own)).astype(np.float32)


def flying_pixels(z_mm: np.ndarray, rng: np.random.Generator, jump_mm: float, prob: float) -> np.ndarray:
    """Depth (H, W) with time-of-flight mixed pixels: each measured pixel with a step larger than
    ``jump_mm`` to a measured 4-neighbour takes, with probability ``prob``, a depth ``z + w * (z_other -
    z)`` with ``w ~ U(0, 1)`` and ``z_other`` the neighbour across the largest step. Silhouettes against
    nothing stay as they are."""
    z = np.array(z_mm, dtype=np.float32)
    measured = z < _FAR_FILL_MM
    candidates = np.flatnonzero(edge_mask(z, jump_mm) & measured)
    index, values = _flying_values(z, measured, candidates, rng, jump_mm, prob)
    z.ravel()[index] = values
    return z


def _split_edges(z: np.ndarray, jump_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) bool near and far sides of depth edges: pixels with a 4-neighbour more than ``jump_mm``
    behind them (``front``; an unmeasured neighbour counts as behind) or in front of them (``back``)."""
    height, width = z.shape
    flat = z.ravel()
    front, back = np.zeros(flat.size, dtype=bool), np.zeros(flat.size, dtype=bool)
    with np.errstate(invalid="ignore"):  # inf - inf
        step_h = flat[1:] - flat[:-1]  # (H * W - 1,) right minus left
        step_v = flat[width:] - flat[:-width]  # (H * W - W,) below minus above
    step_h[width - 1::width] = 0.0  # last pixel of a row and first of the next are not neighbours
    for step, offset in ((step_h, 1), (step_v, width)):
        rise, fall = step > jump_mm, step < -jump_mm
        front[:-offset] |= rise
        back[offset:] |= rise
        front[offset:] |= fall
        back[:-offset] |= fall
    return front.reshape(height, width), back.reshape(height, width)


def _foreground_edges(z: np.ndarray, jump_mm: float) -> np.ndarray:
    """(H, W) bool: pixels with a 4-neighbour more than ``jump_mm`` behind them (or unmeasured, inf)."""
    return _split_edges(z, jump_mm)[0]


def fatten_edges(z_mm: np.ndarray, px: int, jump_mm: float = 12.0) -> np.ndarray:
    """Depth (H, W) with the foreground grown ``px`` pixels (square window) across its depth edges (steps
    over ``jump_mm`` between neighbours) into whatever lies behind, unmeasured pixels included, as block
    matching does. Smooth surfaces, however steep, are left alone."""
    z = np.array(z_mm, dtype=np.float32)
    _fatten(z, _foreground_edges(z, jump_mm), px, jump_mm)
    return z


def _fatten(z: np.ndarray, front: np.ndarray, px: int, jump_mm: float) -> None:
    """Grow the near side of depth edges (``front`` (H, W) bool) ``px`` pixels into ``z`` (H, W), in place."""
    box = _index_box(np.flatnonzero(front), front.shape, margin=px)  # nothing grows farther than px from a near edge
    if px <= 0 or box is None:
        return
    crop = z[box]
    # Only the near side of an edge spreads: other pixels are pushed 1e6 mm back (finite: no inf * 0).
    source = crop + np.float32(1e6) * ~front[box]
    nearest = _window_min_cols(_window_min_rows(source, -px, px), px)  # (h, w) min over (2 px + 1)^2
    with np.errstate(invalid="ignore"):  # inf - inf where nothing is near
        behind = crop - nearest > jump_mm
    z[box] = np.where(behind, nearest, crop)


def punch_holes(z_mm: np.ndarray, rng: np.random.Generator, max_holes: int, speckle_prob: float,
                max_radius_px: float = 3.0) -> np.ndarray:
    """Depth (H, W) with 0..``max_holes`` discs of radius ``U(1, max_radius_px)`` and isolated pixels
    (probability ``speckle_prob`` each) missing on the surfaces within 250 mm of the nearest one (the hand)."""
    out = np.array(z_mm, dtype=np.float32)
    near = np.flatnonzero(out < out.min() + np.float32(_NEAR_BAND_MM))
    out.ravel()[_disc_indices(near, rng, max_holes, max_radius_px, out.shape)] = np.inf
    out.ravel()[_speckle(near, rng, speckle_prob)] = np.inf
    return out


def _holes(keep: np.ndarray, near: np.ndarray, rng: np.random.Generator, max_holes: int,
           max_radius_px: float) -> None:
    """Clear 0..``max_holes`` discs centred on random pixels of ``near`` (flat indices) in ``keep`` (H, W),
    one hole at a time (the generic model's draws)."""
    if not near.size:
        return
    height, width = keep.shape
    for centre in rng.choice(near, size=int(rng.integers(0, max_holes + 1))):
        radius = rng.uniform(1.0, max_radius_px)
        cv, cu = divmod(int(centre), width)
        r = int(np.ceil(radius))
        v0, v1, u0, u1 = max(cv - r, 0), min(cv + r + 1, height), max(cu - r, 0), min(cu + r + 1, width)
        vv, uu = np.arange(v0 - cv, v1 - cv)[:, None], np.arange(u0 - cu, u1 - cu)  # np.ogrid, 20x faster
        keep[v0:v1, u0:u1] &= (vv * vv + uu * uu) > radius * radius


def _disc_indices(near: np.ndarray, rng: np.random.Generator, max_holes: int, max_radius_px: float,
                  shape: tuple[int, int]) -> np.ndarray:
    """Flat indices of 0..``max_holes`` discs of radius ``U(1, max_radius_px)`` centred on random pixels of
    ``near`` (flat indices): :func:`_holes` in one batch (its per-hole loop costs ~20 us a hole)."""
    count = int(rng.integers(0, max_holes + 1))
    if not near.size or not count:
        return np.zeros(0, dtype=np.int64)
    height, width = shape
    centre_v, centre_u = np.divmod(near[rng.integers(0, near.size, size=count)], width)  # (K,)
    radius = rng.uniform(1.0, max_radius_px, size=count)  # (K,)
    reach = int(np.ceil(max_radius_px))
    dv, du = np.mgrid[-reach:reach + 1, -reach:reach + 1].reshape(2, -1)  # (2, P) offsets
    v, u = centre_v[:, None] + dv, centre_u[:, None] + du  # (K, P)
    inside = (dv * dv + du * du <= radius[:, None] ** 2) & (v >= 0) & (v < height) & (u >= 0) & (u < width)
    return (v * width + u)[inside]


def _speckle(near: np.ndarray, rng: np.random.Generator, prob: float) -> np.ndarray:
    """About ``prob * near.size`` random entries of ``near`` (a binomial count, then uniform picks: no
    draw per pixel)."""
    if not near.size:
        return near
    return near[rng.integers(0, near.size, size=int(rng.binomial(near.size, prob)))]


def add_noise(z_mm: np.ndarray, sigma_mm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Depth (H, W) plus Gaussian noise of standard deviation ``sigma_mm`` (H, W) (finite everywhere)."""
    z = np.asarray(z_mm, dtype=np.float32)
    return z + sigma_mm * standard_normal(rng, z.shape)


def to_uint16(z_mm: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """The sensor frame (H, W) uint16 mm, 0 = no measurement: non-finite pixels, pixels outside
    ``keep`` (H, W) bool when given, and depths past 65535 mm."""
    z = np.asarray(z_mm, dtype=np.float32)
    if keep is None:
        keep = z <= 65535.0
    out = np.zeros(z.shape, dtype=np.float32)
    np.rint(z, out=out, where=keep)
    out[out > 65535.0] = 0.0
    return out.astype(np.uint16)
