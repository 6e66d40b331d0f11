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
from typing import Union

import numpy as np

from srnpose.cameras import CAMERAS, DEFAULT_CAMERA, get_camera
from srnpose.errors import UserError
from srnpose.geometry import Intrinsics
from srnpose.synth.artefacts import (  # the profiles below chain these
    _FAR_FILL_MM,
    _NEAR_BAND_MM,
    _bounding_slices,
    _constant,
    _disc_indices,
    _drop_indices,
    _fatten,
    _flying_values,
    _holes,
    _speckle,
    _split_edges,
    add_noise,
    edge_mask,
    quantize_disparity,
    shadow_mask,
    standard_normal,
    to_uint16,
)


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


def sample_profile(rng: np.random.Generator, camera: str | None = None,
                   families: dict[str, float] | None = None) -> SensorProfile:
    """A randomized sensor profile: the family of ``cameras.CAMERAS[camera].sensor`` when a camera is
    named, else one drawn with ``families`` (default ``PROFILE_WEIGHTS``); its parameters drawn within
    ``PROFILE_RANGES``."""
    if camera is not None:
        name = get_camera(camera).sensor
    else:
        table = PROFILE_WEIGHTS if families is None else families
        names = list(table)
        weights = np.array([table[n] for n in names])
        name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    return randomize_profile(get_profile(name), rng)


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
