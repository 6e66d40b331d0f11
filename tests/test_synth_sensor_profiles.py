"""Sensor profiles of the synthetic engine: each artefact shows on a constructed depth map, the profiles
are deterministic per seed, and the generic profile is bitwise the engine's original sensor model."""

import dataclasses

import numpy as np
import pytest

from srnpose.cameras import CAMERAS
from srnpose.errors import UserError
from srnpose.geometry import Intrinsics
from srnpose.synth import artefacts as A
from srnpose.synth import sensor as S

FX = 300.0
NEAR_MM, FAR_MM = 400.0, 800.0
BOX = (slice(10, 30), slice(40, 60))  # rows, columns of the near box


def box_on_wall(height=40, width=100, near_mm=NEAR_MM, far_mm=FAR_MM):
    """A near box (rows 10-29, columns 40-59) in front of a wall, everything facing the camera."""
    z = np.full((height, width), far_mm, dtype=np.float32)
    z[BOX] = near_mm
    return z, np.ones_like(z)


def quiet(profile, **changes):
    """The profile without its random artefacts (noise, holes, speckle, edge and grazing drop-outs)."""
    off = {"noise_base_mm": 0.0, "max_holes": 0, "speckle_prob": 0.0, "edge_drop_prob": 0.0, "grazing_cos": 1e-6}
    for field in ("noise_quad_per_mm", "noise_lin", "subpixel_rms_px"):
        if hasattr(profile, field):
            off[field] = 0.0
    return dataclasses.replace(profile, **{**off, **changes})


# --- the engine's sensor model before the profiles were added, copied verbatim: the reference ---------
@dataclasses.dataclass(frozen=True)
class OldSensorModel:
    near_mm: float = 150.0
    far_mm: float = 1500.0
    noise_base_mm: float = 0.6
    noise_quad_per_mm: float = 3.0e-6
    edge_jump_mm: float = 12.0
    edge_drop_prob: float = 0.55
    grazing_cos: float = 0.26
    max_holes: int = 4
    speckle_prob: float = 0.004


_OLD_TABLE = np.random.Generator(np.random.PCG64(0x5EED)).standard_normal(1 << 20, dtype=np.float32)


def old_standard_normal(rng, shape):
    size = shape[0] * shape[1]
    if size > (1 << 20) // 2:
        return rng.standard_normal(shape, dtype=np.float32)
    start = int(rng.integers(0, (1 << 20) - size))
    return _OLD_TABLE[start:start + size].reshape(shape)


def old_apply_sensor(z_mm, cos_incidence, rng, sensor=OldSensorModel()):
    z = np.asarray(z_mm, dtype=np.float32)
    valid = (z >= sensor.near_mm) & (z <= sensor.far_mm)
    z_fill = np.where(valid, z, np.float32(1e5))
    edge = np.zeros(z.shape, dtype=bool)
    jump_v = np.abs(z_fill[1:] - z_fill[:-1]) > sensor.edge_jump_mm
    jump_h = np.abs(z_fill[:, 1:] - z_fill[:, :-1]) > sensor.edge_jump_mm
    edge[1:] |= jump_v
    edge[:-1] |= jump_v
    edge[:, 1:] |= jump_h
    edge[:, :-1] |= jump_h
    graze = valid & (cos_incidence < sensor.grazing_cos)
    drop_p = np.zeros(z.shape, dtype=np.float32)
    drop_p[graze] = 0.95 * (1.0 - cos_incidence[graze] / sensor.grazing_cos)
    drop_p[edge & valid] = np.maximum(drop_p[edge & valid], sensor.edge_drop_prob)
    candidates = np.flatnonzero(drop_p)
    dropped = candidates[rng.random(candidates.size) < drop_p.ravel()[candidates]]
    keep = valid.copy()
    keep.ravel()[dropped] = False
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
    noisy = z_fill + sigma * old_standard_normal(rng, z.shape)
    out = np.rint(noisy)
    out[~keep] = 0.0
    return np.clip(out, 0, 65535).astype(np.uint16)
# ------------------------------------------------------------------------------------------------------


def engine_inputs(n=6):
    """(z_mm, cos_incidence) pairs the scene hands to apply_sensor (hand, blob, wall; 320x240)."""
    import srnpose.synth.frame as scene

    captured = []
    real = S.apply_sensor

    def spy(z_mm, cos_incidence, rng, *args, **kwargs):
        captured.append((np.array(z_mm), np.array(cos_incidence)))
        return real(z_mm, cos_incidence, rng, *args, **kwargs)

    patched = [m for m in (scene, S) if getattr(m, "apply_sensor", None) is real]
    for module in patched:
        module.apply_sensor = spy
    try:
        for seed in range(n):
            scene.render_frame(seed)
    finally:
        for module in patched:
            module.apply_sensor = real
    assert len(captured) == n, "render_frame no longer calls sensor.apply_sensor once a frame"
    return captured


@pytest.fixture(scope="module")
def frames():
    return engine_inputs()


def rough_scene(seed=3, height=48, width=64):
    """A messy constructed z-buffer: two planes, an empty region, out-of-range and grazing pixels."""
    rng = np.random.default_rng(seed)
    z = np.full((height, width), np.inf, dtype=np.float32)
    z[5:40, 8:60] = 900.0 + 3.0 * np.arange(52, dtype=np.float32)
    z[12:30, 20:38] = rng.uniform(300.0, 360.0, size=(18, 18)).astype(np.float32)
    z[0, :10] = 100.0  # too near
    z[47, :10] = 2000.0  # too far
    cos = rng.uniform(0.0, 1.0, size=(height, width)).astype(np.float32)
    return z, cos


@pytest.mark.parametrize("old_model, new_model", [
    (OldSensorModel(), S.SensorModel()),
    (OldSensorModel(far_mm=950.0, max_holes=9, speckle_prob=0.05, edge_drop_prob=0.0, grazing_cos=0.5),
     S.SensorModel(far_mm=950.0, max_holes=9, speckle_prob=0.05, edge_drop_prob=0.0, grazing_cos=0.5)),
])
def test_generic_is_bitwise_the_old_model(frames, old_model, new_model):
    inputs = frames + [rough_scene(), tuple(a.astype(np.float64) for a in rough_scene(4))]
    for i, (z, cos) in enumerate(inputs):
        rng_old = np.random.default_rng(100 + i)
        expected = old_apply_sensor(z, cos, rng_old, old_model)
        if new_model == S.DEFAULT_SENSOR:  # the existing call, the name, and the table entry
            calls = [(), ("generic",), (S.SENSOR_PROFILES["generic"], CAMERAS["sr300"].intrinsics)]
        else:
            calls = [(new_model,)]
        for args in calls:
            rng_new = np.random.default_rng(100 + i)
            np.testing.assert_array_equal(S.apply_sensor(z, cos, rng_new, *args), expected)
            assert rng_new.bit_generator.state == rng_old.bit_generator.state  # later draws unchanged too
    assert S.SENSOR_PROFILES["generic"] is S.DEFAULT_SENSOR


@pytest.mark.parametrize("side, fx, band, clear", [
    (1, FX, slice(12, 40), slice(60, 100)),  # projector on +x: the band is left of the box
    (-1, FX, slice(60, 88), slice(0, 40)),
    (1, -FX, slice(60, 88), slice(0, 40)),  # a mirrored camera (fx < 0) swaps the image sides
])
def test_shadow_band_away_from_the_projector(side, fx, band, clear):
    z, _ = box_on_wall()
    hidden = A.shadow_mask(z, fx, 75.0, side)
    width_px = abs(fx) * 75.0 * (1 / NEAR_MM - 1 / FAR_MM)  # 28.1 px
    assert band.stop - band.start == int(width_px)
    expected = np.zeros_like(hidden)
    expected[BOX[0], band] = True
    np.testing.assert_array_equal(hidden, expected)
    assert not hidden[BOX[0], clear].any()
    shadowed = A.shadow_band(z, fx, 75.0, side)
    assert np.isinf(shadowed[expected]).all() and np.array_equal(shadowed[~expected], z[~expected])


def test_shadow_band_narrows_with_a_closer_background():
    z, _ = box_on_wall(far_mm=500.0)
    hidden = A.shadow_mask(z, FX, 75.0, 1)
    assert hidden.sum(axis=1).max() == int(FX * 75.0 * (1 / NEAR_MM - 1 / 500.0))  # 11 px, not 28
    z_empty = np.full((8, 8), np.inf, dtype=np.float32)
    assert not A.shadow_mask(z_empty, FX, 75.0).any()


def test_structured_light_profile_shadows_and_quantizes():
    z, cos = box_on_wall(far_mm=790.0)
    profile = quiet(S.StructuredLight(), projector_side=1, baseline_mm=75.0, subpixel_px=0.125)
    out = S.apply_sensor(z, cos, np.random.default_rng(0), profile, Intrinsics(FX, FX, 50.0, 20.0))
    band = 40 - int(FX * 75.0 * (1 / NEAR_MM - 1 / 790.0))  # 27 px left of the box
    assert (out[BOX[0], band:40] == 0).all()
    assert (out[BOX[0], 60:] > 0).all() and (out[BOX[0], :band] > 0).all()
    # The wall is measured at the nearest disparity level, not at its true 790 mm: steps there are ~3.5 mm.
    levels = FX * 75.0 / (0.125 * np.arange(1, 2000))
    assert out[0, 0] == np.rint(levels[np.argmin(np.abs(levels - 790.0))]) == 789


def test_quantization_steps_grow_with_distance():
    z = np.linspace(300.0, 1500.0, 20000, dtype=np.float32)[None, :]
    q = A.quantize_disparity(z, FX, 75.0, 0.125)
    levels = np.unique(q)
    for depth in (400.0, 800.0, 1400.0):
        i = np.searchsorted(levels, depth)
        step = levels[i] - levels[i - 1]
        expected = depth * depth * 0.125 / (FX * 75.0)  # 0.9, 3.6, 10.9 mm
        assert step == pytest.approx(expected, rel=0.03)
        near = np.abs(z - depth) < 0.01 * depth
        assert np.abs(q[near] - z[near]).max() <= 0.5 * expected * 1.05  # rounded to the nearest level
    assert np.isinf(A.quantize_disparity(np.array([[np.inf]], np.float32), FX, 75.0, 0.125)).all()


def test_flying_pixels_take_intermediate_depths_at_the_silhouette():
    z, _ = box_on_wall()
    out = A.flying_pixels(z, np.random.default_rng(1), jump_mm=12.0, prob=1.0)
    edge = A.edge_mask(z, 12.0)
    between = (out > NEAR_MM) & (out < FAR_MM)
    assert between[edge].mean() > 0.98 and not between[~edge].any()
    assert np.array_equal(out[~edge], z[~edge])
    assert between[edge & (z == NEAR_MM)].any() and between[edge & (z == FAR_MM)].any()  # both sides
    assert np.unique(out[between]).size > 50  # spread, not one level
    # Against nothing (no return) the silhouette stays as it is.
    z_alone = np.where(z == NEAR_MM, z, np.float32(np.inf))
    assert np.array_equal(A.flying_pixels(z_alone, np.random.default_rng(1), 12.0, 1.0), z_alone)


def test_time_of_flight_profile_keeps_mixed_pixels_and_noise_grows_linearly():
    z, cos = box_on_wall()
    profile = quiet(S.TimeOfFlight(), flying_prob=1.0)
    out = S.apply_sensor(z, cos, np.random.default_rng(2), profile)
    edge = A.edge_mask(z, 12.0)
    assert ((out[edge] > NEAR_MM + 5) & (out[edge] < FAR_MM - 5)).mean() > 0.9  # flying, not dropped
    generic = S.apply_sensor(z, cos, np.random.default_rng(2), quiet(S.SensorModel(), edge_drop_prob=1.0))
    assert (generic[edge] == 0).all()  # the generic model rejects those pixels instead
    # Noise: sigma = base + lin * z, so twice the distance gives about twice the spread.
    flat = np.full((200, 200), 500.0, dtype=np.float32)
    noisy = dataclasses.replace(profile, noise_base_mm=0.0, noise_lin=4e-3)
    spread = [np.std(S.apply_sensor(flat * k, np.ones_like(flat), np.random.default_rng(3), noisy).astype(float))
              for k in (1.0, 2.0)]
    assert spread[0] == pytest.approx(2.0, rel=0.1) and spread[1] == pytest.approx(4.0, rel=0.1)


@pytest.mark.parametrize("px", [1, 2, 3])
def test_fatten_edges_grows_the_foreground_by_px(px):
    z, _ = box_on_wall()
    out = A.fatten_edges(z, px, 12.0)
    expected = np.zeros(z.shape, dtype=bool)
    expected[BOX[0].start - px:BOX[0].stop + px, BOX[1].start - px:BOX[1].stop + px] = True
    np.testing.assert_array_equal(out == NEAR_MM, expected)
    assert (out[~expected] == FAR_MM).all()
    # A steep but smooth surface (5 mm/px, under the 12 mm jump) between two near posts is left alone.
    ramp = np.tile(np.arange(100, dtype=np.float32) * 5.0 + 400.0, (20, 1))
    ramp[:, 5:8] = ramp[:, 90:93] = 300.0
    out = A.fatten_edges(ramp, px, 12.0)
    np.testing.assert_array_equal(out[:, 8 + px:90 - px], ramp[:, 8 + px:90 - px])
    assert (out[:, 8:8 + px] == 300.0).all() and (out[:, 90 - px:90] == 300.0).all()
    assert np.isinf(A.fatten_edges(np.full((5, 5), np.inf, np.float32), px)).all()


def test_active_stereo_profile_fattens_and_occludes():
    z, cos = box_on_wall()
    profile = quiet(S.ActiveStereo(), fatten_px=2, occlusion_side=1, baseline_mm=50.0)
    out = S.apply_sensor(z, cos, np.random.default_rng(4), profile, Intrinsics(FX, FX, 50.0, 20.0))
    rows = slice(BOX[0].start + 3, BOX[0].stop - 3)
    assert (out[rows, 60:62] == NEAR_MM).all() and (out[rows, 62:] == FAR_MM).all()  # right edge: +2 px
    assert (out[8:10, 45:55] == NEAR_MM).all() and (out[7, 45:55] == FAR_MM).all()  # top edge: +2 px
    band = int(FX * 50.0 * (1 / NEAR_MM - 1 / FAR_MM))  # 18 px occluded on the left
    assert (out[rows, 40 - band:40] == 0).all() and (out[rows, :40 - band] == FAR_MM).all()
    # Noise grows with the square of the distance.
    flat = np.full((200, 200), 500.0, dtype=np.float32)
    noisy = dataclasses.replace(profile, subpixel_rms_px=0.1)
    spread = [np.std(S.apply_sensor(flat * k, np.ones_like(flat), np.random.default_rng(5), noisy,
                                    Intrinsics(FX, FX, 100.0, 100.0)).astype(float)) for k in (1.0, 2.0)]
    assert spread[1] / spread[0] == pytest.approx(4.0, rel=0.1)


def test_grazing_surfaces_drop_out():
    z = np.full((100, 100), 500.0, dtype=np.float32)
    cos = np.tile(np.linspace(0.0, 1.0, 100, dtype=np.float32), (100, 1))  # steeper to the left
    out = A.drop_grazing(z, cos, 0.3, np.random.default_rng(6))
    missing = np.isinf(out).mean(axis=0)
    assert missing[:5].mean() > 0.8 and missing[cos[0] >= 0.3].max() == 0.0
    assert missing[:10].mean() > missing[15:25].mean() > 0.0


def test_punch_holes_on_the_nearest_surface_only():
    z, _ = box_on_wall()
    out = A.punch_holes(z, np.random.default_rng(7), max_holes=0, speckle_prob=0.5)
    lost = np.isinf(out)
    assert lost[BOX].mean() > 0.3 and not lost[z == FAR_MM].any()
    # Discs: at most max_holes of radius <= 3 px, centred on the box (they may spill over its rim).
    sizes = []
    for seed in range(20):
        lost = np.isinf(A.punch_holes(z, np.random.default_rng(seed), max_holes=2, speckle_prob=0.0))
        rim = np.zeros_like(lost)
        rim[BOX[0].start - 3:BOX[0].stop + 3, BOX[1].start - 3:BOX[1].stop + 3] = True
        assert not lost[~rim].any()
        sizes.append(lost.sum())
    assert max(sizes) <= 2 * 29 and min(sizes) == 0 and np.mean(sizes) > 5  # a radius-3 disc has 29 px


@pytest.mark.parametrize("name", list(S.SENSOR_PROFILES))
def test_profiles_are_deterministic_and_measure_a_real_frame(frames, name):
    z, cos = frames[0]
    k = CAMERAS["icvl"].intrinsics
    runs = [S.apply_sensor(z, cos, np.random.default_rng(seed), name, k) for seed in (11, 11, 12)]
    assert runs[0].dtype == np.uint16 and runs[0].shape == z.shape
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
    measured = np.isfinite(z) & (z <= 1500)
    got = runs[0] > 0
    assert got[measured].mean() > 0.75
    support = A.fatten_edges(np.where(measured, z, np.inf), 3) < np.inf  # measured, grown by 3 px
    assert not got[~support].any()  # nothing measured where nothing was
    hand = got & measured & (z < 800)  # near surfaces, where every family is accurate to a few mm
    assert np.median(np.abs(runs[0][hand] - z[hand])) < 3.0


def test_profile_lookup_and_errors():
    z, cos = box_on_wall()
    rng = np.random.default_rng(0)
    with pytest.raises(UserError, match="unknown sensor profile 'lidar'; available: generic, structured_light"):
        S.apply_sensor(z, cos, rng, "lidar")
    with pytest.raises(TypeError, match="sensor must be a profile"):
        S.apply_sensor(z, cos, rng, 3.0)
    for name, profile in S.SENSOR_PROFILES.items():
        assert S.profile_name(profile) == name
        assert set(S.PROFILE_RANGES[name]) <= {f.name for f in dataclasses.fields(profile)}
    assert set(S.PROFILE_WEIGHTS) == set(S.SENSOR_PROFILES)


def test_every_camera_names_a_profile():
    assert {c.sensor for c in CAMERAS.values()} <= set(S.SENSOR_PROFILES)
    assert CAMERAS["nyu"].sensor == "structured_light" and CAMERAS["d400"].sensor == "active_stereo"
    assert CAMERAS["kinect2"].sensor == "time_of_flight"


def test_sample_profile_follows_the_camera_and_stays_in_range():
    rng = np.random.default_rng(8)
    draws = [S.sample_profile(rng, "sr300") for _ in range(50)]
    assert all(isinstance(p, S.StructuredLight) for p in draws)
    for field, spec in S.PROFILE_RANGES["structured_light"].items():
        values = [getattr(p, field) for p in draws]
        if isinstance(spec, list):
            assert set(values) == set(spec)
        else:
            assert spec[0] <= min(values) < max(values) <= spec[1]
    assert all(isinstance(p.max_holes, int) for p in draws)
    families = [S.profile_name(S.sample_profile(rng)) for _ in range(300)]
    counts = {name: families.count(name) for name in S.SENSOR_PROFILES}
    assert counts["generic"] < counts["structured_light"] and min(counts.values()) > 10
    a = [S.sample_profile(np.random.default_rng(9)) for _ in range(2)]
    assert a[0] == a[1]
    with pytest.raises(UserError, match="unknown camera"):
        S.sample_profile(rng, "kinect9")
