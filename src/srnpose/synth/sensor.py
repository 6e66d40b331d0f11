"""Depth sensor model: range limit, distance-dependent noise, dropped edge and grazing pixels, holes.

Structured-light and time-of-flight hand datasets share these artefacts: no measurement on silhouette
edges (mixed pixels are rejected) and on surfaces seen at grazing angles, small holes, noise whose
standard deviation grows with the square of the distance, and integer millimetre output.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class SensorModel:
    near_mm: float = 150.0  # closer surfaces are not measured
    far_mm: float = 1500.0  # farther surfaces are not measured
    noise_base_mm: float = 0.6  # sigma(z) = base + quad * z^2
    noise_quad_per_mm: float = 3.0e-6  # 0.6 + 3e-6 * 500^2 = 1.35 mm at half a metre
    edge_jump_mm: float = 12.0  # a depth step larger than this between 4-neighbours is an edge
    edge_drop_prob: float = 0.55  # probability that an edge pixel is missing
    grazing_cos: float = 0.26  # surfaces steeper than ~75 deg from the ray start to drop out
    max_holes: int = 4  # random holes (discs of 1-3 px radius) on the hand
    speckle_prob: float = 0.004  # isolated missing pixels


DEFAULT_SENSOR = SensorModel()
_NOISE_TABLE_SIZE = 1 << 20


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


def apply_sensor(z_mm: np.ndarray, cos_incidence: np.ndarray, rng: np.random.Generator,
                 sensor: SensorModel = DEFAULT_SENSOR) -> np.ndarray:
    """Measured depth (H, W) uint16 mm (0 = no measurement) from an ideal z-buffer (``inf`` = empty)."""
    z = np.asarray(z_mm, dtype=np.float32)
    valid = (z >= sensor.near_mm) & (z <= sensor.far_mm)
    z_fill = np.where(valid, z, np.float32(1e5))
    # Edges: a large jump to any 4-neighbour (including the empty background).
    edge = np.zeros(z.shape, dtype=bool)
    jump_v = np.abs(z_fill[1:] - z_fill[:-1]) > sensor.edge_jump_mm  # (H-1, W)
    jump_h = np.abs(z_fill[:, 1:] - z_fill[:, :-1]) > sensor.edge_jump_mm  # (H, W-1)
    edge[1:] |= jump_v
    edge[:-1] |= jump_v
    edge[:, 1:] |= jump_h
    edge[:, :-1] |= jump_h
    # Grazing angles: the steeper, the likelier missing.
    graze = valid & (cos_incidence < sensor.grazing_cos)
    drop_p = np.zeros(z.shape, dtype=np.float32)
    drop_p[graze] = 0.95 * (1.0 - cos_incidence[graze] / sensor.grazing_cos)
    drop_p[edge & valid] = np.maximum(drop_p[edge & valid], sensor.edge_drop_prob)
    candidates = np.flatnonzero(drop_p)
    dropped = candidates[rng.random(candidates.size) < drop_p.ravel()[candidates]]
    keep = valid.copy()
    keep.ravel()[dropped] = False
    # Holes and speckle on the nearest surfaces (the hand), where a sensor's holes matter.
    near = np.flatnonzero(valid.ravel() & (z.ravel() < np.min(z_fill) + 250.0))
    if near.size:
        height, width = z.shape
        for centre in rng.choice(near, size=int(rng.integers(0, sensor.max_holes + 1))):
            radius = rng.uniform(1.0, 3.0)
            cv, cu = divmod(int(centre), width)
            r = int(np.ceil(radius))
            v0, v1, u0, u1 = max(cv - r, 0), min(cv + r + 1, height), max(cu - r, 0), min(cu + r + 1, width)
            vv, uu = np.ogrid[v0 - cv:v1 - cv, u0 - cu:u1 - cu]
            keep[v0:v1, u0:u1] &= (vv * vv + uu * uu) > radius * radius
        speckle = near[rng.random(near.size) < sensor.speckle_prob]
        keep.ravel()[speckle] = False
    sigma = sensor.noise_base_mm + sensor.noise_quad_per_mm * z_fill * z_fill
    noisy = z_fill + sigma * standard_normal(rng, z.shape)
    out = np.rint(noisy)
    out[~keep] = 0.0
    return np.clip(out, 0, 65535).astype(np.uint16)
