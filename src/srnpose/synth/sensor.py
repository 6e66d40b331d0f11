"""Depth sensor models: the artefacts of real depth cameras applied to an ideal z-buffer.

Four profiles, one per sensor family (``SENSOR_PROFILES``):

* ``generic`` (:class:`SensorModel`, the engine's original model): range limit, no measurement on
  silhouette edges (mixed pixels rejected) and on grazing surfaces, small holes, noise whose standard
  deviation grows with the square of the distance, integer millimetre output.
* ``structured_light`` (Kinect 1 / NYU, RealSense SR300 / SR305): a shadow band beside the near side of
  depth edges where the projector's pattern cannot reach, depth quantized in disparity steps that grow
  with the square of the distance, holes on grazing surfaces.
* ``time_of_flight`` (Kinect V2, Azure Kinect, the DS325 of ICVL / MSRA): flying pixels (depths between
  foreground and background) along silhouettes, loss of grazing surfaces, noise growing linearly with
  the distance. Multipath bias near concave corners is not modelled.
* ``active_stereo`` (RealSense D400): the foreground bleeds 1-3 px into the background (edge
  fattening), an occlusion band beside near edges, noise growing with the square of the distance,
  speckle and larger holes.

Every artefact is a small pure function on a float32 ``(H, W)`` depth map in mm in which ``inf`` means
"no surface / no measurement" (the renderer's convention); random ones draw only from the ``rng``
passed in, so a seed gives the same frame. :func:`apply_sensor` chains them and returns the sensor's
uint16 frame in mm, 0 = no measurement.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from typing import Union

import numpy as np

from srnpose.cameras import CAMERAS, DEFAULT_CAMERA, get_camera
from srnpose.errors import UserError
from srnpose.geometry import Intrinsics


@dataclass(frozen=True)
class SensorModel:
    """The ``generic`` profile: the engine's original model (its output per rng state never changes)."""

    near_mm: float = 150.0  # closer surfaces are not measured
    far_mm: float = 1500.0  # farther surfaces are not measured
    noise_base_mm: float = 0.6  # sigma(z) = base + quad * z^2
    noise_quad_per_mm: float = 3.0e-6  # 0.6 + 3e-6 * 500^2 = 1.35 mm at half a metre
    edge_jump_mm: float = 12.0  # a depth step larger than this between 4-neighbours is an edge
    edge_drop_prob: float = 0.55  # probability that an edge pixel is missing
    grazing_cos: float = 0.26  # surfaces steeper than ~75 deg from the ray start to drop out
    max_holes: int = 4  # random holes (discs of 1-3 px radius) on the hand
    speckle_prob: float = 0.004  # isolated missing pixels


# The range limits of all profiles stay at 150-1500 mm: the scene places the hand 250-700 mm away, and
# a sensor's true minimum range (500 mm for Kinect 1/V2) would blank most frames. The scene owns distance.

@dataclass(frozen=True)
class StructuredLight:
    """Kinect 1 (NYU), RealSense SR300 / SR305: a projector beside the camera along x."""

    near_mm: float = 150.0
    far_mm: float = 1500.0
    baseline_mm: float = 75.0  # camera-projector distance along x (Kinect 1: ~75 mm)
    projector_side: int = 1  # +1: projector on the camera's +x side, so shadows fall on the -u side of near objects
    subpixel_px: float = 0.125  # disparity quantization step (Kinect 1: 1/8 px); depth step = z^2 * this / (f * b)
    noise_base_mm: float = 0.5  # sigma(z) = base + quad * z^2, added before quantization
    noise_quad_per_mm: float = 2.0e-6
    edge_jump_mm: float = 12.0  # a larger step between 4-neighbours is an edge
    edge_drop_prob: float = 0.3  # probability that an edge pixel is missing
    grazing_cos: float = 0.3  # steeper surfaces start to drop out (dark / grazing holes)
    max_holes: int = 5  # random holes on the nearest surfaces (the hand)
    max_hole_radius_px: float = 3.0  # hole radius ~ U(1, this)
    speckle_prob: float = 0.004  # isolated missing pixels on the nearest surfaces


@dataclass(frozen=True)
class TimeOfFlight:
    """Kinect V2, Azure Kinect, Intel Creative / DS325 (ICVL, MSRA)."""

    near_mm: float = 150.0
    far_mm: float = 1500.0
    noise_base_mm: float = 0.6  # sigma(z) = base + lin * z (Kinect V2: ~1-2 mm at 1 m)
    noise_lin: float = 1.5e-3  # mm of sigma per mm of distance
    edge_jump_mm: float = 12.0  # a larger step between 4-neighbours is a silhouette
    flying_prob: float = 0.8  # probability that a silhouette pixel mixes foreground and background depth
    edge_drop_prob: float = 0.1  # probability that a silhouette pixel is missing (the sensor's own filter)
    grazing_cos: float = 0.35  # ToF loses grazing surfaces more than the generic model
    max_holes: int = 2
    max_hole_radius_px: float = 3.0
    speckle_prob: float = 0.002


@dataclass(frozen=True)
class ActiveStereo:
    """RealSense D400 (D415 / D435 / D455): two imagers and a texture projector."""

    near_mm: float = 150.0
    far_mm: float = 1500.0
    baseline_mm: float = 50.0  # imager baseline (D435: 50 mm, D415: 55 mm, D455: 95 mm)
    occlusion_side: int = 1  # +1: the second imager on the +x side, so the occlusion band is on the -u side
    subpixel_rms_px: float = 0.08  # disparity noise; sigma(z) = base + z^2 * this / (f * b)
    noise_base_mm: float = 0.4
    fatten_px: int = 2  # foreground bleeds this many px into the background
    edge_jump_mm: float = 12.0
    edge_drop_prob: float = 0.1
    grazing_cos: float = 0.2
    max_holes: int = 6  # low-texture holes, larger than the other families'
    max_hole_radius_px: float = 5.0
    speckle_prob: float = 0.01


SensorProfile = Union[SensorModel, StructuredLight, TimeOfFlight, ActiveStereo]

DEFAULT_SENSOR = SensorModel()

SENSOR_PROFILES: dict[str, SensorProfile] = {
    "generic": DEFAULT_SENSOR,
    "structured_light": StructuredLight(),
    "time_of_flight": TimeOfFlight(),
    "active_stereo": ActiveStereo(),
}

# Randomization ranges for sample_profile: a (lo, hi) tuple is uniform (integers inclusive), a list is
# a choice. Fields not listed keep the profile's default. Ranges keep every profile physically plausible.
PROFILE_RANGES: dict[str, dict[str, tuple[float, float] | list]] = {
    "generic": {
        "noise_base_mm": (0.3, 1.0),
        "noise_quad_per_mm": (1.5e-6, 5.0e-6),
        "edge_jump_mm": (8.0, 20.0),
        "edge_drop_prob": (0.3, 0.8),
        "grazing_cos": (0.15, 0.35),
        "max_holes": (0, 6),
        "speckle_prob": (0.0, 0.01),
    },
    "structured_light": {
        "baseline_mm": (40.0, 80.0),
        "projector_side": [-1, 1],  # which side varies between sensors (and mirrored recordings)
        "subpixel_px": (0.0625, 0.2),
        "noise_base_mm": (0.3, 1.0),
        "noise_quad_per_mm": (1.0e-6, 4.0e-6),
        "edge_jump_mm": (8.0, 20.0),
        "edge_drop_prob": (0.1, 0.5),
        "grazing_cos": (0.2, 0.4),
        "max_holes": (1, 8),
        "max_hole_radius_px": (2.0, 4.0),
        "speckle_prob": (0.001, 0.008),
    },
    "time_of_flight": {
        "noise_base_mm": (0.3, 1.2),
        "noise_lin": (0.5e-3, 3.0e-3),
        "edge_jump_mm": (8.0, 20.0),
        "flying_prob": (0.5, 1.0),
        "edge_drop_prob": (0.0, 0.3),
        "grazing_cos": (0.25, 0.45),
        "max_holes": (0, 4),
        "max_hole_radius_px": (1.5, 3.0),
        "speckle_prob": (0.0, 0.004),
    },
    "active_stereo": {
        "baseline_mm": (40.0, 95.0),
        "subpixel_rms_px": (0.05, 0.15),
        "noise_base_mm": (0.2, 0.8),
        "fatten_px": (1, 3),
        "edge_jump_mm": (8.0, 20.0),
        "edge_drop_prob": (0.0, 0.3),
        "grazing_cos": (0.15, 0.3),
        "max_holes": (2, 10),
        "max_hole_radius_px": (2.0, 6.0),
        "speckle_prob": (0.002, 0.02),
    },
}

# sample_profile without a camera: the three real families equally, the generic model now and then.
PROFILE_WEIGHTS: dict[str, float] = {"structured_light": 0.3, "time_of_flight": 0.3, "active_stereo": 0.3,
                                     "generic": 0.1}

_NOISE_TABLE_SIZE = 1 << 20
_FAR_FILL_MM = 1e5  # the generic model's stand-in depth for "no surface"
_NEAR_BAND_MM = 250.0  # holes and speckle fall on surfaces within this of the nearest one (the hand)


def get_profile(name: str) -> SensorProfile:
    """Look up a sensor profile by name; an unknown name lists the valid ones."""
    try:
        return SENSOR_PROFILES[name]
    except KeyError:
        raise UserError(f"unknown sensor profile {name!r}; available: {', '.join(SENSOR_PROFILES)}") from None


def profile_name(profile: SensorProfile) -> str:
    """The ``SENSOR_PROFILES`` key of a profile's family."""
    for name, default in SENSOR_PROFILES.items():
        if type(default) is type(profile):
            return name
    raise TypeError(f"not a sensor profile: {type(profile).__name__}")


def randomize_profile(profile: SensorProfile, rng: np.random.Generator) -> SensorProfile:
    """``profile`` with the fields of ``PROFILE_RANGES`` drawn from their ranges (in table order)."""
    values = {}
    for field, spec in PROFILE_RANGES[profile_name(profile)].items():
        if isinstance(spec, list):
            values[field] = spec[int(rng.integers(0, len(spec)))]
        elif isinstance(getattr(profile, field), int):
            values[field] = int(rng.integers(int(spec[0]), int(spec[1]) + 1))
        else:
            values[field] = float(rng.uniform(spec[0], spec[1]))
    return dataclasses.replace(profile, **values)


def sample_profile(rng: np.random.Generator, camera: str | None = None) -> SensorProfile:
    """A randomized sensor profile: the family of ``cameras.CAMERAS[camera].sensor`` when a camera is
    named, else one drawn with ``PROFILE_WEIGHTS``; its parameters drawn within ``PROFILE_RANGES``."""
    if camera is not None:
        name = get_camera(camera).sensor
    else:
        names = list(PROFILE_WEIGHTS)
        weights = np.array([PROFILE_WEIGHTS[n] for n in names])
        name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    return randomize_profile(get_profile(name), rng)


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


# ----------------------------------------------------------------------------------------------------
# Profiles: the artefacts of each family in the order the sensor produces them. Internally unmeasured
# pixels sit at _FAR_FILL_MM in ``z_fill`` and ``keep`` says what the sensor reports.

def _gate(z_mm: np.ndarray, near_mm: float, far_mm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``z`` (H, W) float32, ``valid`` (H, W) bool in range, ``z_fill`` (H, W) with _FAR_FILL_MM elsewhere."""
    z = np.asarray(z_mm, dtype=np.float32)
    valid = (z >= near_mm) & (z <= far_mm)
    z_fill = np.minimum(z, _constant(z.shape, _FAR_FILL_MM))  # the empty background (inf): 4x faster than where
    if np.count_nonzero(valid) != np.count_nonzero(z_fill != np.float32(_FAR_FILL_MM)):
        z_fill[~valid] = _FAR_FILL_MM  # surfaces out of range (or nan)
    return z, valid, z_fill


def _near_surface(z: np.ndarray, valid: np.ndarray, z_fill: np.ndarray) -> np.ndarray:
    """Flat indices of the measured pixels within 250 mm of the nearest one (where holes go)."""
    return np.flatnonzero(valid.ravel() & (z.ravel() < np.min(z_fill) + _NEAR_BAND_MM))


def _hole_and_speckle(keep: np.ndarray, near: np.ndarray, rng: np.random.Generator,
                      sensor: StructuredLight | TimeOfFlight | ActiveStereo) -> None:
    keep.ravel()[_disc_indices(near, rng, sensor.max_holes, sensor.max_hole_radius_px, keep.shape)] = False
    keep.ravel()[_speckle(near, rng, sensor.speckle_prob)] = False


def _apply_generic(z_mm: np.ndarray, cos_incidence: np.ndarray, rng: np.random.Generator,
                   sensor: SensorModel, fx_px: float) -> np.ndarray:
    """The engine's original model; its output for a given rng state must never change."""
    z, valid, z_fill = _gate(z_mm, sensor.near_mm, sensor.far_mm)
    edge = edge_mask(z_fill, sensor.edge_jump_mm)  # jumps to the empty background included
    keep = valid.copy()
    keep.ravel()[_drop_indices(valid, edge & valid, cos_incidence, sensor.grazing_cos, sensor.edge_drop_prob,
                               rng)] = False
    near = _near_surface(z, valid, z_fill)
    _holes(keep, near, rng, sensor.max_holes, 3.0)
    if near.size:
        keep.ravel()[near[rng.random(near.size) < sensor.speckle_prob]] = False  # one draw per pixel
    sigma = sensor.noise_base_mm + sensor.noise_quad_per_mm * z_fill * z_fill
    noisy = z_fill + sigma * standard_normal(rng, z.shape)
    out = np.rint(noisy)
    out *= keep  # finite everywhere: the same as zeroing the dropped pixels
    return np.clip(out, 0, 65535).astype(np.uint16)


def _apply_structured_light(z_mm: np.ndarray, cos_incidence: np.ndarray, rng: np.random.Generator,
                            sensor: StructuredLight, fx_px: float) -> np.ndarray:
    z, valid, z_fill = _gate(z_mm, sensor.near_mm, sensor.far_mm)
    edge = edge_mask(z_fill, sensor.edge_jump_mm)
    keep = valid & ~shadow_mask(z_fill, fx_px, sensor.baseline_mm, sensor.projector_side)
    keep.ravel()[_drop_indices(valid, edge & valid, cos_incidence, sensor.grazing_cos, sensor.edge_drop_prob,
                               rng)] = False
    _hole_and_speckle(keep, _near_surface(z, valid, z_fill), rng, sensor)
    sigma = sensor.noise_base_mm + np.float32(sensor.noise_quad_per_mm) * z_fill * z_fill  # (H, W) mm
    noisy = add_noise(z_fill, sigma, rng)  # the pattern's jitter, then the disparity's rounding
    return to_uint16(quantize_disparity(noisy, fx_px, sensor.baseline_mm, sensor.subpixel_px), keep)


def _apply_time_of_flight(z_mm: np.ndarray, cos_incidence: np.ndarray, rng: np.random.Generator,
                          sensor: TimeOfFlight, fx_px: float) -> np.ndarray:
    z, valid, z_fill = _gate(z_mm, sensor.near_mm, sensor.far_mm)
    edge = edge_mask(z_fill, sensor.edge_jump_mm)
    on_edge = edge & valid
    index, values = _flying_values(z_fill, valid, np.flatnonzero(on_edge), rng, sensor.edge_jump_mm,
                                   sensor.flying_prob)
    keep = valid.copy()
    keep.ravel()[_drop_indices(valid, on_edge, cos_incidence, sensor.grazing_cos, sensor.edge_drop_prob,
                               rng)] = False
    _hole_and_speckle(keep, _near_surface(z, valid, z_fill), rng, sensor)
    z_fill.ravel()[index] = values  # z_fill is this call's own array
    sigma = sensor.noise_base_mm + np.float32(sensor.noise_lin) * z_fill  # (H, W) mm
    return to_uint16(add_noise(z_fill, sigma, rng), keep)


def _apply_active_stereo(z_mm: np.ndarray, cos_incidence: np.ndarray, rng: np.random.Generator,
                         sensor: ActiveStereo, fx_px: float) -> np.ndarray:
    z, valid, z_fill = _gate(z_mm, sensor.near_mm, sensor.far_mm)
    occluded = shadow_mask(z_fill, fx_px, sensor.baseline_mm, sensor.occlusion_side)
    front, back = _split_edges(z_fill, sensor.edge_jump_mm)
    z_fat = z_fill.copy()
    _fatten(z_fat, front, sensor.fatten_px, sensor.edge_jump_mm)
    grown = z_fat < z_fill  # (H, W) background (or nothing) that took the foreground's depth
    measured = valid | grown
    keep = measured & ~occluded
    keep.ravel()[_drop_indices(valid & ~grown, (front | back) & valid, cos_incidence, sensor.grazing_cos,
                               sensor.edge_drop_prob, rng)] = False
    _hole_and_speckle(keep, _near_surface(z, valid, z_fill), rng, sensor)
    rms_per_mm2 = np.float32(sensor.subpixel_rms_px / (abs(fx_px) * sensor.baseline_mm))
    sigma = sensor.noise_base_mm + rms_per_mm2 * z_fat * z_fat  # (H, W) mm, stereo: grows with z^2
    return to_uint16(add_noise(z_fat, sigma, rng), keep)


_PIPELINES = {
    SensorModel: _apply_generic,
    StructuredLight: _apply_structured_light,
    TimeOfFlight: _apply_time_of_flight,
    ActiveStereo: _apply_active_stereo,
}


def apply_sensor(z_mm: np.ndarray, cos_incidence: np.ndarray, rng: np.random.Generator,
                 sensor: SensorProfile | str = DEFAULT_SENSOR, intrinsics: Intrinsics | None = None) -> np.ndarray:
    """Measured depth (H, W) uint16 mm (0 = no measurement) from an ideal z-buffer ``z_mm`` (H, W) mm
    (``inf`` = empty) and the surfaces' ``cos_incidence`` (H, W).

    ``sensor`` is a profile object or a ``SENSOR_PROFILES`` name. ``intrinsics`` give the focal length
    of the disparity-based artefacts; without them it is the default camera's scaled to the frame's
    width, as ``scene.resolve_camera`` does.
    """
    profile = get_profile(sensor) if isinstance(sensor, str) else sensor
    try:
        pipeline = _PIPELINES[type(profile)]
    except KeyError:
        raise TypeError(f"sensor must be a profile or one of {', '.join(SENSOR_PROFILES)}, "
                        f"got {type(profile).__name__}") from None
    if intrinsics is not None:
        fx_px = float(intrinsics.fx)
    else:
        camera = CAMERAS[DEFAULT_CAMERA]
        fx_px = camera.intrinsics.fx * np.shape(z_mm)[1] / camera.resolution[0]
    if isinstance(profile, SensorModel):
        return pipeline(z_mm, cos_incidence, rng, profile, fx_px)
    # The families' artefacts stay within a few px of measured surfaces: run them on the box around
    # those (the hand alone is a fifth of a frame), one px wider so that silhouettes stay edges.
    z = np.asarray(z_mm, dtype=np.float32)
    box = _bounding_slices(z <= profile.far_mm, margin=1 + getattr(profile, "fatten_px", 0))
    out = np.zeros(z.shape, dtype=np.uint16)
    if box is None:
        return out
    rows, cols = box
    if (rows.stop - rows.start) * (cols.stop - cols.start) > 0.8 * z.size:  # cropping would not pay
        return pipeline(z, cos_incidence, rng, profile, fx_px)
    out[box] = pipeline(np.ascontiguousarray(z[box]), np.ascontiguousarray(np.asarray(cos_incidence)[box]),
                        rng, profile, fx_px)
    return out
