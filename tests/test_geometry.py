import numpy as np
import pytest
import torch

from srnpose import geometry
from srnpose.cameras import CAMERAS
from srnpose.data.centering import FAR_MM, NEAR_MM
from srnpose.geometry import Intrinsics

NYU = CAMERAS["nyu"].intrinsics
ICVL = CAMERAS["icvl"].intrinsics
SEARCH = (250.0, NEAR_MM, FAR_MM)  # the hand search's cube and depth range (the crop policy's defaults)


def _random_xyz(rng, n=50):
    return np.stack([rng.uniform(-150, 150, n), rng.uniform(-150, 150, n), rng.uniform(250, 900, n)], -1)


@pytest.mark.parametrize("K", [NYU, ICVL], ids=["nyu-negative-fy", "icvl"])
def test_xyz_uvd_round_trip_numpy_and_torch(K):
    xyz = _random_xyz(np.random.default_rng(0)).reshape(5, 10, 3)
    back = geometry.uvd_to_xyz(geometry.xyz_to_uvd(xyz, K), K)
    np.testing.assert_allclose(back, xyz, atol=1e-4)
    t = torch.from_numpy(xyz)
    back_t = geometry.uvd_to_xyz(geometry.xyz_to_uvd(t, K), K)
    assert isinstance(back_t, torch.Tensor)
    np.testing.assert_allclose(back_t.numpy(), xyz, atol=1e-4)


def test_negative_fy_means_y_up():
    # a point below the principal point in the image (v > cy) has y < 0 with NYU's convention
    xyz = geometry.uvd_to_xyz(np.array([320.0, 300.0, 800.0]), NYU)
    assert xyz[1] < 0
    xyz = geometry.uvd_to_xyz(np.array([160.0, 200.0, 800.0]), ICVL)
    assert xyz[1] > 0


def test_shape_errors_name_the_shape():
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\).*\(4, 2\)"):
        geometry.uvd_to_xyz(np.zeros((4, 2)), ICVL)


def test_intrinsics_parse_and_errors():
    assert Intrinsics.parse("1,2,3,4") == Intrinsics(1, 2, 3, 4)
    with pytest.raises(ValueError, match="4 comma-separated"):
        Intrinsics.parse("1,2,3")
    with pytest.raises(ValueError, match="non-zero"):
        Intrinsics(0, 1, 2, 3)


@pytest.mark.parametrize("K", [NYU, ICVL])
def test_crop_uncrop_round_trip(K):
    rng = np.random.default_rng(1)
    center_xyz = np.array([20.0, -10.0, 500.0])
    joints_xyz = center_xyz + rng.uniform(-100, 100, (21, 3))
    center_uvd = geometry.xyz_to_uvd(center_xyz, K)
    joints_uvd = geometry.xyz_to_uvd(joints_xyz, K)
    M = geometry.crop_transform(center_uvd, 250, 64, K)
    nrm = geometry.uvd_to_crop(joints_uvd, M, center_uvd[2], 250.0, 64)
    assert np.all(np.abs(nrm) < 1)  # joints within +-100 mm lie inside a 250 mm cube
    np.testing.assert_allclose(geometry.crop_to_uvd(nrm, M, center_uvd[2], 250.0, 64), joints_uvd, atol=1e-4)
    np.testing.assert_allclose(geometry.crop_to_xyz(nrm, M, center_uvd[2], 250.0, 64, K), joints_xyz, atol=1e-4)


def test_crop_centre_maps_to_zero_and_cube_edge_to_one():
    center_uvd = np.array([100.0, 80.0, 500.0])
    M = geometry.crop_transform(center_uvd, 250, 32, ICVL)
    np.testing.assert_allclose(geometry.uvd_to_crop(center_uvd, M, 500.0, 250.0, 32), 0, atol=1e-12)
    edge_px = 125 * ICVL.fx / 500  # half cube projected at the centre's depth
    edge = geometry.uvd_to_crop(np.array([100.0 + edge_px, 80.0, 625.0]), M, 500.0, 250.0, 32)
    np.testing.assert_allclose(edge, [1.0, 0.0, 1.0], atol=1e-12)


def test_batched_torch_crop_inverse_matches_numpy():
    rng = np.random.default_rng(2)
    Ms = np.stack([geometry.crop_transform([150 + 10 * i, 120, 400 + 50 * i], 250, 32, ICVL) for i in range(2)])
    nrm = rng.uniform(-1, 1, (2, 5, 3))
    cd, cz = np.array([400.0, 450.0]), np.array([250.0, 300.0])
    ref = np.stack([geometry.crop_to_uvd(nrm[i], Ms[i], cd[i], cz[i], 32) for i in range(2)])
    out = geometry.crop_to_uvd(torch.from_numpy(nrm), torch.from_numpy(Ms), torch.from_numpy(cd),
                               torch.from_numpy(cz), 32)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-9)
    np.testing.assert_allclose(geometry.uvd_to_crop(ref, Ms, cd, cz, 32), nrm, atol=1e-9)


def test_crop_to_uvd_is_differentiable():
    M = torch.from_numpy(geometry.crop_transform([150, 120, 400], 250, 32, ICVL))
    nrm = torch.rand(1, 4, 3, dtype=torch.float64, requires_grad=True)

    def f(x):
        return geometry.crop_to_xyz(x, M[None], torch.tensor([400.0], dtype=torch.float64),
                                    torch.tensor([250.0], dtype=torch.float64), 32, ICVL)

    assert torch.autograd.gradcheck(f, (nrm,))


def test_normalize_depth_background_is_one():
    d = np.array([[0.0, 500.0, 625.0, 1000.0, 300.0]], dtype=np.float32)
    np.testing.assert_allclose(geometry.normalize_depth(d, 500.0, 250.0), [[1, 0, 1, 1, -1]])


def _disk_frame(K, center_uvd, radius_px, depth_mm, shape=(240, 320)):
    vv, uu = np.mgrid[: shape[0], : shape[1]]
    frame = np.zeros(shape, np.float32)
    frame[(uu - center_uvd[0]) ** 2 + (vv - center_uvd[1]) ** 2 <= radius_px**2] = depth_mm
    return frame


def test_find_hand_center_ignores_background_and_finds_nearest_blob():
    frame = _disk_frame(ICVL, (200, 100), 20, 400.0)
    frame[:, :40] = 1200.0  # a wall far behind
    frame[200:, :] = 900.0  # a table
    c = geometry.find_hand_center(frame, ICVL, *SEARCH)
    np.testing.assert_allclose(c, [200, 100, 400], atol=1.0)


def test_find_hand_center_none_without_hand():
    assert geometry.find_hand_center(np.zeros((240, 320), np.float32), ICVL, *SEARCH) is None
    assert geometry.find_hand_center(np.full((240, 320), 3000.0, np.float32), ICVL, *SEARCH) is None


def test_find_hand_center_looks_at_every_pixel_when_the_strided_search_misses_the_hand():
    frame = np.zeros((240, 320), np.float32)
    frame[101:103, 140:180] = 450.0  # 80 pixels on rows that a stride-4 search skips
    assert frame[::4, ::4].max() == 0
    c = geometry.find_hand_center(frame, ICVL, *SEARCH)
    np.testing.assert_allclose(c, [159.5, 101.5, 450.0], atol=0.01)
    assert geometry.find_hand_center(frame, ICVL, *SEARCH, min_pixels=100) is None


@pytest.mark.parametrize("sensor_mirrored", [False, True])
@pytest.mark.parametrize("left", [False, True])
def test_view_flip_round_trips_and_images_the_same_world(sensor_mirrored, left):
    """ViewFlip, the one owner of the left-right flip: each map is its own inverse (frames, uvd points,
    intrinsics, camera-frame points, crop transforms, boxes), and a point seen in the frame as given
    lands, through the view's pixels and intrinsics, on the view world's image of the same point."""
    rng = np.random.default_rng(3)
    width = 320
    flip = geometry.ViewFlip(width, sensor_mirrored, left)
    assert flip.pixels == (sensor_mirrored != left)
    depth = rng.integers(0, 1000, (24, width)).astype(np.uint16)
    np.testing.assert_array_equal(flip.frame(flip.frame(depth)), depth)
    uvd = np.concatenate([rng.uniform(0, width - 1, (5, 1)), rng.uniform(0, 23, (5, 1)),
                          rng.uniform(300, 900, (5, 1))], 1)
    np.testing.assert_allclose(flip.uvd(flip.uvd(uvd)), uvd, atol=1e-12)
    assert flip.intrinsics(flip.intrinsics(ICVL)) == ICVL
    xyz = _random_xyz(rng, 5)
    np.testing.assert_array_equal(flip.xyz(flip.xyz(xyz)), xyz)
    M = geometry.crop_transform(uvd[0], 250.0, 32, ICVL)
    np.testing.assert_allclose(flip.transform(flip.transform(M)), M, atol=1e-12)
    box = np.array([10.0, 20.0, 50.0, 70.0])
    np.testing.assert_array_equal(flip.box(flip.box(box)), box)
    assert flip.box(box)[0] <= flip.box(box)[2]
    # a point of the world at frame pixel uvd (the sensor's un-mirrored view: flip the sensor's mirroring)
    world = geometry.uvd_to_xyz(geometry.ViewFlip(width, sensor_mirrored).uvd(uvd), ICVL)
    view_uvd = flip.uvd(uvd)
    np.testing.assert_allclose(geometry.uvd_to_xyz(view_uvd, flip.intrinsics(ICVL)), flip.xyz(world), atol=1e-9)
    # the view's frame holds at view_uvd what the frame as given holds at uvd
    u, v = np.rint(uvd[:, 0]).astype(int), np.rint(uvd[:, 1]).astype(int)
    vu = np.rint(view_uvd[:, 0]).astype(int)
    np.testing.assert_array_equal(flip.frame(depth)[v, vu], depth[v, u])
    # a crop transform of the view's pixels, taken from the frame's, maps the same pixels
    frame_M = flip.transform(M)
    ones = np.ones((5, 1))
    np.testing.assert_allclose((frame_M @ np.concatenate([uvd[:, :2], ones], 1).T).T,
                               (M @ np.concatenate([view_uvd[:, :2], ones], 1).T).T, atol=1e-9)
