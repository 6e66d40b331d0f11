import numpy as np
import pytest
import torch

from srnpose import geometry
from srnpose.cameras import get_camera
from srnpose.data.centering import CenterPolicy
from srnpose.data.depth_io import read_png16
from srnpose.errors import UserError
from srnpose.geometry import Intrinsics, crop_frame
from srnpose.inference.estimator import FrameError, HandPoseEstimator, resolve_frame_camera
from srnpose.model import SRN
from srnpose.synth import frame_seed, render_frame

TINY = dict(num_stages=2, input_size=32, width=16, topk=8)


@pytest.fixture(scope="module")
def estimator() -> HandPoseEstimator:
    torch.manual_seed(0)
    return HandPoseEstimator.from_model(SRN(**TINY).eval())


@pytest.fixture(scope="module")
def synth_frames():
    return [render_frame(frame_seed(5, i)) for i in range(4)]


def test_strided_center_matches_every_pixel_on_synthetic_frames(synth_frames):
    gaps = []
    for f in synth_frames + [render_frame(frame_seed(6, i)) for i in range(8)]:
        ref = CenterPolicy(stride=1).locate(f.depth_mm, f.intrinsics)
        fast = CenterPolicy().locate(f.depth_mm, f.intrinsics)
        gaps.append(np.linalg.norm(geometry.uvd_to_xyz(fast, f.intrinsics) - geometry.uvd_to_xyz(ref, f.intrinsics)))
        palm = f.joints_xyz[[0, 5, 9, 13, 17]].mean(axis=0)
        assert np.linalg.norm(geometry.uvd_to_xyz(fast, f.intrinsics) - palm) < 100.0  # on the hand
    assert np.median(gaps) < 1.0 and np.max(gaps) < 25.0  # mm


def test_a_policy_with_stride_1_searches_every_pixel(synth_frames):
    f = synth_frames[0]
    est = HandPoseEstimator.from_model(SRN(**TINY).eval(), CenterPolicy(stride=1))
    res = est.predict(f.depth_mm, intrinsics=f.intrinsics)
    np.testing.assert_allclose(res.center_uvd, CenterPolicy(stride=1).locate(f.depth_mm, f.intrinsics))


def test_center_respects_the_depth_unit_and_dtype(synth_frames):
    f = synth_frames[0]
    in_eighths = (f.depth_mm.astype(np.float64) * 8).astype(np.uint32)  # SR305-like 0.125 mm units
    policy = CenterPolicy()
    expected = policy.locate(f.depth_mm, f.intrinsics)
    np.testing.assert_allclose(policy.locate(in_eighths, f.intrinsics, 0.125), expected, atol=1e-6)
    np.testing.assert_allclose(policy.locate(f.depth_mm.astype(np.float32), f.intrinsics), expected, atol=1e-6)


def test_crop_frame_is_exactly_geometry_crop_depth(synth_frames):
    for f in synth_frames:
        center = CenterPolicy().locate(f.depth_mm, f.intrinsics)
        a, Ma = crop_frame(f.depth_mm, center, 250.0, 32, f.intrinsics)
        b, Mb = geometry.crop_depth(f.depth_mm.astype(np.float32), center, 250.0, 32, f.intrinsics)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(Ma, Mb)
    edge = np.array([3.0, 3.0, 400.0])  # window hanging off the image: outside reads background
    a, _ = crop_frame(f.depth_mm, edge, 250.0, 32, f.intrinsics)
    b, _ = geometry.crop_depth(f.depth_mm.astype(np.float32), edge, 250.0, 32, f.intrinsics)
    np.testing.assert_array_equal(a, b)


def test_predict_result_geometry(estimator, synth_frames):
    f = synth_frames[1]
    res = estimator.predict(f.depth_mm, intrinsics=f.intrinsics)
    assert res.hand_found
    assert res.joints_uvd.shape == res.joints_xyz.shape == (21, 3)
    assert res.stage_joints.shape == (2, 21, 3)
    np.testing.assert_allclose(res.stage_joints[-1], res.joints_uvd)
    np.testing.assert_allclose(geometry.uvd_to_xyz(res.joints_uvd, f.intrinsics), res.joints_xyz, atol=1e-9)
    assert res.crop_box[0] < res.center_uvd[0] < res.crop_box[2]
    assert set(res.timings) == {"center", "crop", "network", "decode", "total"}


def test_mirrored_frame_gives_the_same_xyz_and_flipped_pixels(estimator, synth_frames):
    f = synth_frames[2]
    w = f.depth_mm.shape[1]
    plain = estimator.predict(f.depth_mm, intrinsics=f.intrinsics)
    mirrored = estimator.predict(f.depth_mm[:, ::-1].copy(), intrinsics=f.intrinsics, mirrored=True)
    np.testing.assert_allclose(mirrored.joints_xyz, plain.joints_xyz, atol=1e-4)
    np.testing.assert_allclose(mirrored.joints_uvd[:, 0], (w - 1) - plain.joints_uvd[:, 0], atol=1e-4)
    np.testing.assert_allclose(mirrored.center_uvd[0], (w - 1) - plain.center_uvd[0], atol=1e-6)


def test_a_left_hand_is_read_as_its_mirror_image(estimator, synth_frames):
    """handedness="left": the network sees the frame of the mirror world (a right hand), the joints come
    back mirrored: a left hand (the flipped frame of the mirrored camera) gives exactly the mirror image
    of the right hand's prediction, in mm and in the pixels of the frame as given."""
    f = synth_frames[1]
    w = f.depth_mm.shape[1]
    k = f.intrinsics
    right = estimator.predict(f.depth_mm, intrinsics=k)
    left_world = Intrinsics(k.fx, k.fy, (w - 1) - k.cx, k.cy)  # the flipped frame images the mirrored world
    left = estimator.predict(f.depth_mm[:, ::-1].copy(), intrinsics=left_world, handedness="left")
    np.testing.assert_allclose(left.joints_xyz, right.joints_xyz * [-1.0, 1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(left.joints_uvd[:, 0], (w - 1) - right.joints_uvd[:, 0], atol=1e-6)
    as_right = estimator.predict(f.depth_mm[:, ::-1].copy(), intrinsics=left_world)
    assert np.abs(as_right.joints_xyz - left.joints_xyz).max() > 1.0  # not a no-op
    with pytest.raises(UserError, match="handedness must be one of right, left"):
        estimator.predict(f.depth_mm, intrinsics=k, handedness="both")


def test_no_hand_is_not_an_error(estimator):
    K = get_camera("icvl").intrinsics
    for depth in (np.zeros((240, 320), np.uint16), np.full((240, 320), 3000, np.uint16)):
        res = estimator.predict(depth, intrinsics=K)
        assert not res.hand_found
        assert np.isnan(res.joints_xyz).all() and res.joints_xyz.shape == (21, 3)
        assert res.to_json("x")["joints_xyz"] is None


def test_batch_matches_single_frames(estimator, synth_frames):
    K = synth_frames[0].intrinsics
    frames = [synth_frames[0].depth_mm, np.zeros_like(synth_frames[0].depth_mm), synth_frames[3].depth_mm]
    batch = estimator.predict_batch(np.stack(frames), intrinsics=K)
    assert [r.hand_found for r in batch] == [True, False, True]
    for depth, res in zip(frames, batch):
        single = estimator.predict(depth, intrinsics=K)
        if single.hand_found:
            np.testing.assert_allclose(res.joints_xyz, single.joints_xyz, atol=1e-3)


@pytest.mark.parametrize("depth, message", [
    (np.zeros((240, 320), np.uint8), "dtype uint8"),
    (np.zeros((240, 320), bool), "dtype bool"),
    (np.zeros((2, 240, 320), np.uint16), "shape (2, 240, 320)"),
    (np.full((240, 320), np.nan, np.float32), "NaN"),
    (np.zeros((100, 100), np.uint16), "principal point"),
])
def test_bad_frames_raise_one_clear_error(estimator, depth, message):
    with pytest.raises(FrameError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        estimator.predict(depth, intrinsics=get_camera("icvl").intrinsics)
    assert isinstance(info.value, UserError) and "\n" not in str(info.value)


def test_camera_preset_checks_the_resolution(estimator):
    with pytest.raises(FrameError, match="640x480 but camera kinect2 is 512x424"):
        estimator.predict(np.zeros((480, 640), np.uint16), camera="kinect2")
    with pytest.raises(UserError, match="intrinsics=.*camera="):
        estimator.predict(np.zeros((480, 640), np.uint16))


def test_resolve_frame_camera_overrides():
    cam = resolve_frame_camera(camera="sr305")
    assert cam.depth_unit_mm == 0.125 and not cam.mirrored and cam.resolution == (640, 480)
    cam = resolve_frame_camera("600,600,300,200", depth_unit_mm=2.0, mirrored=True, camera="kinect2")
    assert cam.intrinsics == Intrinsics(600, 600, 300, 200) and cam.depth_unit_mm == 2.0 and cam.mirrored
    assert cam.resolution is None  # own intrinsics: resolution not assumed
    with pytest.raises(UserError, match="unknown camera"):
        resolve_frame_camera(camera="nope")


def test_kinect2_frames_find_the_hand(estimator, shared_data):
    for name in ("00000001.png", "00000020.png"):
        depth = read_png16(shared_data / "kinect2" / name)
        res = estimator.predict(depth, camera="kinect2")
        assert res.hand_found
        assert np.isfinite(res.joints_xyz).all() and np.isfinite(res.joints_uvd).all()
        assert 500 < res.center_uvd[2] < 750  # the hand, in front of the body at about 0.9 m
        u, v = (int(round(x)) for x in res.center_uvd[:2])
        assert abs(float(depth[v, u]) - res.center_uvd[2]) < 60  # the centre sits on the hand's surface


def test_top_level_api_is_lazy():
    import subprocess
    import sys

    code = "import sys, srnpose; assert 'torch' not in sys.modules; assert callable(srnpose.load); print('ok')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "ok"
    import srnpose
    from srnpose.inference.estimator import HandPoseEstimator as H

    assert srnpose.HandPoseEstimator is H


def test_given_center_skips_the_search_and_respects_mirroring(estimator, synth_frames):
    f = synth_frames[1]
    w = f.depth_mm.shape[1]
    auto = estimator.predict(f.depth_mm, intrinsics=f.intrinsics)
    given = estimator.predict(f.depth_mm, intrinsics=f.intrinsics, center_uvd=auto.center_uvd)
    np.testing.assert_allclose(given.joints_xyz, auto.joints_xyz, atol=1e-6)
    flipped_center = auto.center_uvd * [-1, 1, 1] + [w - 1, 0, 0]
    mirrored = estimator.predict(f.depth_mm[:, ::-1].copy(), intrinsics=f.intrinsics, mirrored=True,
                                 center_uvd=flipped_center)
    np.testing.assert_allclose(mirrored.joints_xyz, auto.joints_xyz, atol=1e-4)
    with pytest.raises(FrameError, match="positive depth"):
        estimator.predict(f.depth_mm, intrinsics=f.intrinsics, center_uvd=[10, 10, 0])


def test_refinement_pass_crops_again_at_the_first_pass_joints(synth_frames):
    torch.manual_seed(0)
    model = SRN(**TINY).eval()
    one = HandPoseEstimator.from_model(model)
    two = HandPoseEstimator.from_model(model, CenterPolicy(passes=2, settled_mm=0.0))  # every pass runs
    f = synth_frames[2]
    first = one.predict(f.depth_mm, intrinsics=f.intrinsics)
    centroid = geometry.xyz_to_uvd(first.joints_xyz.mean(axis=0), f.intrinsics)
    refined = two.predict(f.depth_mm, intrinsics=f.intrinsics)
    np.testing.assert_allclose(refined.center_uvd, centroid, atol=1e-6)
    by_hand = one.predict(f.depth_mm, intrinsics=f.intrinsics, center_uvd=centroid)
    np.testing.assert_allclose(refined.joints_xyz, by_hand.joints_xyz, atol=1e-4)
    # the same on a mirrored frame, and in a batch
    w = f.depth_mm.shape[1]
    mirrored = two.predict(f.depth_mm[:, ::-1].copy(), intrinsics=f.intrinsics, mirrored=True)
    np.testing.assert_allclose(mirrored.joints_xyz, refined.joints_xyz, atol=1e-4)
    np.testing.assert_allclose(mirrored.center_uvd, refined.center_uvd * [-1, 1, 1] + [w - 1, 0, 0], atol=1e-6)
    batch = two.predict_batch(np.stack([synth_frames[0].depth_mm, f.depth_mm]), intrinsics=f.intrinsics)
    np.testing.assert_allclose(batch[1].joints_xyz, refined.joints_xyz, atol=1e-3)


def test_a_later_pass_runs_only_where_it_would_move_the_crop(synth_frames):
    """CenterPolicy.settled: in one batch, the frame whose first-pass joints' centroid lies within settled_mm
    of its crop's centre keeps the first pass; the other is cropped again at that centroid."""
    torch.manual_seed(0)
    model = SRN(**TINY).eval()
    one = HandPoseEstimator.from_model(model)
    always = HandPoseEstimator.from_model(model, CenterPolicy(passes=2, settled_mm=0.0))
    frames = [synth_frames[0], synth_frames[2]]
    firsts = [one.predict(f.depth_mm, intrinsics=f.intrinsics) for f in frames]
    shifts = [np.linalg.norm(r.joints_xyz.mean(0) - geometry.uvd_to_xyz(r.center_uvd, f.intrinsics))
              for r, f in zip(firsts, frames)]
    assert abs(shifts[0] - shifts[1]) > 1.0  # the test needs one frame on each side of the threshold
    near = int(np.argmin(shifts))
    some = HandPoseEstimator.from_model(model, CenterPolicy(passes=2, settled_mm=float(np.mean(shifts))))
    got = some.predict_batch(np.stack([f.depth_mm for f in frames]), intrinsics=frames[0].intrinsics)
    full = always.predict_batch(np.stack([f.depth_mm for f in frames]), intrinsics=frames[0].intrinsics)
    np.testing.assert_allclose(got[near].joints_xyz, firsts[near].joints_xyz, atol=1e-4)
    np.testing.assert_allclose(got[near].center_uvd, firsts[near].center_uvd, atol=1e-9)
    np.testing.assert_allclose(got[1 - near].joints_xyz, full[1 - near].joints_xyz, atol=1e-4)
    assert not np.allclose(got[1 - near].joints_xyz, firsts[1 - near].joints_xyz, atol=1e-3)


def _kinect2_found(shared_data, names=(2, 10, 20)):
    return [read_png16(shared_data / "kinect2" / f"{i:08d}.png") for i in names]


def test_load_fits_to_the_depth_and_fit_false_is_the_network_bitwise(shared_data):
    """srnpose.load() fits the articulated hand to the depth after the network (21-joint models): joints_xyz,
    joints_uvd and the last stage are the fitted hand's, within the joint limits, and joints_raw_xyz the
    network's. load(fit=False) is the engine alone (no fit), bit for bit."""
    import srnpose
    from srnpose.hand.angles import ANGLE_NAMES
    from srnpose.synth.poses import LIMITS_DEG
    from srnpose.training.checkpoint import load_checkpoint
    from srnpose.weights import release_dir

    frames = _kinect2_found(shared_data)
    engine = HandPoseEstimator.from_checkpoint(load_checkpoint(release_dir()), "torch", threads=1)
    raw_est, fit_est = srnpose.load(backend="torch", fit=False), srnpose.load(backend="torch")
    assert engine.fit is None and raw_est.fit is None and fit_est.fit.iterations == 3
    expected = engine.predict_batch(frames, camera="kinect2")
    raw, fitted = raw_est.predict_batch(frames, camera="kinect2"), fit_est.predict_batch(frames, camera="kinect2")
    assert sum(r.hand_found for r in raw) >= 2
    for e, r, f in zip(expected, raw, fitted):
        for name in ("hand_found", "joints_xyz", "joints_uvd", "stage_joints", "center_uvd", "crop_box"):
            np.testing.assert_array_equal(getattr(r, name), getattr(e, name), err_msg=name)
        assert r.joints_raw_xyz is None and r.joint_angles is None and "fit" not in r.timings
        if not r.hand_found:
            assert not f.hand_found and f.joints_raw_xyz is None
            continue
        np.testing.assert_array_equal(f.joints_raw_xyz, r.joints_xyz)  # the network's joints, kept
        np.testing.assert_array_equal(f.stage_joints[:-1], r.stage_joints[:-1])  # earlier stages: the network's
        np.testing.assert_array_equal(f.stage_joints[-1], f.joints_uvd)
        assert np.linalg.norm(f.joints_xyz - r.joints_xyz, axis=1).max() > 1.0  # mm: the fit moved the hand
        chain = np.array([f.joint_angles[name] for name in ANGLE_NAMES]).reshape(5, 4)
        assert (chain >= LIMITS_DEG[..., 0] - 1e-6).all() and (chain <= LIMITS_DEG[..., 1] + 1e-6).all()
        assert f.timings["fit"] > 0 and f.timings["total"] > f.timings["fit"]
        assert f.to_json()["joints_raw_xyz"] == np.round(r.joints_xyz, 2).tolist()


def test_the_fit_is_off_for_another_layout_and_refused_when_asked(tmp_path):
    import srnpose
    from srnpose.config import SRNConfig, to_dict
    from srnpose.training.checkpoint import save_checkpoint

    cfg = SRNConfig(num_joints=16, num_stages=1, input_size=32, width=8, topk=8)
    save_checkpoint(tmp_path / "run" / "last", SRN.from_config(cfg).eval(),
                    {"model": to_dict(cfg), "data": {"center": "depth", "cube_mm": 250.0, "layout": "icvl"}})
    assert srnpose.load(tmp_path / "run", backend="torch").fit is None  # the default: off for the icvl layout
    with pytest.raises(UserError, match="needs a 21-joint model; .* predicts the icvl layout") as info:
        srnpose.load(tmp_path / "run", backend="torch", fit=True)
    assert info.value.flag == "--fit"
    with pytest.raises(UserError, match="fit must be True, False or None"):
        srnpose.load(tmp_path / "run", fit="yes")
