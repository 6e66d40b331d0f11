"""The learned hand locator: the frame <-> input mapping and its inverse, the heatmap decoding, a tiny
locator trained in seconds that finds hands the nearest-blob search misses (third-person frames whose
torso is nearer than the hand) and reports no hand on an empty frame, two hands, and the frame path
with a locator attached to a run (``--center depth`` keeps the old search)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srnpose.data.centering import joints_centroid_uvd
from srnpose.errors import UserError
from srnpose.geometry import Intrinsics
from srnpose.locator.model import (
    STRIDE,
    FrameScale,
    HandLocator,
    LocatorConfig,
    decode_heatmap,
    evaluate_centers,
    frame_transform,
    input_nrm_to_uvd,
    load_locator,
    prepare_frame,
    uvd_to_input_nrm,
)
from srnpose.locator.train import LocatorSample, train_locator
from srnpose.synth.frame import frame_seed, render_frame, render_without_hands

K_KINECT = Intrinsics(363.9, 363.9, 255.4, 206.3)
TINY = LocatorConfig(input_hw=(48, 64), width=8)
FRAME_WH = (160, 120)


def test_prepare_inverse_round_trip():
    depth = np.zeros((424, 512), dtype=np.uint16)
    depth[200:210, 300:305] = 700
    x, scale = prepare_frame(depth, K_KINECT, 1.0, (80, 96), (0.0, 2500.0))
    assert x.shape == (1, 80, 96) and x.dtype == np.float32
    uvd = np.array([[302.0, 204.5, 700.0], [0.0, 0.0, 300.0], [511.0, 423.0, 2400.0]])
    back = input_nrm_to_uvd(uvd_to_input_nrm(uvd, scale), scale)
    np.testing.assert_allclose(back, uvd, atol=1e-9)
    # the letterbox keeps the aspect ratio, centred: the frame's edges land symmetrically in the input
    M = frame_transform((424, 512), (80, 96))
    assert M[0, 0] == M[1, 1] == pytest.approx(96 / 512)  # the width limits: 512x424 fills 96 x 79.5
    assert M[0, 0] * -0.5 + M[0, 2] == pytest.approx(-0.5) and M[0, 0] * 511.5 + M[0, 2] == pytest.approx(95.5)
    top, bottom = M[1, 1] * -0.5 + M[1, 2], M[1, 1] * 423.5 + M[1, 2]
    assert top + 0.5 == pytest.approx(80 - 0.5 - bottom) == pytest.approx(0.25)
    # the measured block lands where the mapping says, with its depth normalized: 700 mm -> 2 * 0.28 - 1
    u_in, v_in = M[0, 0] * 302 + M[0, 2], M[1, 1] * 204.5 + M[1, 2]
    assert x[0, int(round(v_in)), int(round(u_in))] == pytest.approx(700 / 1250 - 1, abs=1e-6)
    assert x[0, 0, 0] == 1.0  # no measurement reads as far
    # depth units: a 0.125 mm-unit frame gives the same input
    x8, _ = prepare_frame(depth.astype(np.float64) * 8, K_KINECT, 0.125, (80, 96), (0.0, 2500.0))
    np.testing.assert_allclose(x8, x, atol=1e-6)


def test_decode_heatmap_finds_both_peaks_not_their_midpoint():
    logits = np.full((12, 16), -20.0)
    logits[3, 4], logits[8, 12] = 5.0, 4.0  # two hands: the first scores higher
    logits[3, 5] = 5.0  # the first peak spreads over two cells: its centre lies between them
    depth = np.full((12, 16), -0.5)
    peaks = decode_heatmap(logits, depth)
    assert len(peaks) == 2 and peaks[0].score > peaks[1].score
    ih, iw = 12 * STRIDE, 16 * STRIDE
    u_in = (peaks[0].nrm[0] + 1) * iw / 2 - 0.5
    v_in = (peaks[0].nrm[1] + 1) * ih / 2 - 0.5
    assert u_in == pytest.approx(4.5 * STRIDE + STRIDE / 2 - 0.5, abs=0.05)  # between cells 4 and 5
    assert v_in == pytest.approx(3 * STRIDE + STRIDE / 2 - 0.5, abs=0.05)
    assert peaks[0].nrm[2] == pytest.approx(-0.5)


def test_network_shapes_and_onnx_free_forward():
    model = HandLocator(TINY).eval()
    with torch.inference_mode():
        heat, depth, presence = model(torch.zeros(2, 1, 48, 64))
    assert heat.shape == depth.shape == (2, 12, 16) and presence.shape == (2,)
    with pytest.raises(ValueError, match="multiples of 16"):
        LocatorConfig(input_hw=(50, 64))


def test_render_without_hands_is_the_same_scene_without_them():
    from scipy import ndimage

    from srnpose.synth.frame import PART_OTHER_HAND
    from srnpose.synth.sensor import DEFAULT_SENSOR

    seed = frame_seed(4, 1)
    frame = render_frame(seed, resolution=FRAME_WH, scene="third_person")
    depth = render_without_hands(seed, frame.intrinsics, FRAME_WH, DEFAULT_SENSOR, "third_person").astype(float)
    hands = (frame.part >= 0) | (frame.part == PART_OTHER_HAND)
    assert hands.sum() > 50
    away = ~ndimage.binary_dilation(hands, iterations=3)
    both = away & (depth > 0) & (frame.depth_mm > 0)
    assert both.sum() > 0.5 * (away & (frame.depth_mm > 0)).sum()  # the same surfaces, measured both times
    assert np.mean(np.abs(depth[both] - frame.depth_mm[both]) <= 30) > 0.95
    seen = hands & (frame.depth_mm > 0)  # where the hands were: nothing, or something behind them
    assert np.mean((depth[seen] == 0) | (depth[seen] > frame.depth_mm[seen] + 20)) > 0.95


# --------------------------------------------------------------------------- trained in seconds


def third_person(seed: int):
    """A synthetic third-person frame (160x120): a person with a hand raised beside the torso."""
    return render_frame(seed, resolution=FRAME_WH, scene="third_person")


def torso_nearer(frame) -> bool:
    """The torso (or any of the body) reaches nearer to the camera than the hand's nearest point."""
    from srnpose.synth.scenes import PART_DISTRACTOR

    hand = (frame.part >= 0) & (frame.depth_mm > 0)
    body = (frame.part == PART_DISTRACTOR) & (frame.depth_mm > 0)
    return hand.sum() >= 15 and body.any() and np.percentile(frame.depth_mm[body], 1) < frame.depth_mm[hand].min()


def torso_frame(seed: int) -> tuple[np.ndarray, Intrinsics, np.ndarray]:
    """The first third-person frame from ``seed`` on whose torso is nearer than the hand:
    ``(depth (H, W) uint16, K, the joints' centroid uvd)``."""
    for i in range(100):
        frame = third_person(frame_seed(seed, i))
        if torso_nearer(frame):
            return frame.depth_mm, frame.intrinsics, joints_centroid_uvd(frame.joints_uvd, frame.intrinsics)
    raise AssertionError("no third-person frame with the torso nearer than the hand")


def third_person_sample(seed: int) -> LocatorSample:
    """Training sample of a third-person frame; every fifth is an empty frame (presence 0)."""
    frame = third_person(seed)
    depth, presence = (np.zeros_like(frame.depth_mm), 0.0) if seed % 5 == 0 else (frame.depth_mm, 1.0)
    x, scale = prepare_frame(depth, frame.intrinsics, 1.0, TINY.input_hw, (TINY.near_mm, TINY.far_mm))
    center = joints_centroid_uvd(frame.joints_uvd, frame.intrinsics)
    return LocatorSample(x[0].astype(np.float16), uvd_to_input_nrm(center, scale).astype(np.float32), presence)


@pytest.fixture(scope="module")
def tiny_locator(tmp_path_factory):
    out = tmp_path_factory.mktemp("locator")
    torch.manual_seed(0)
    train_locator(steps=120, batch=16, out_path=out, config=TINY, seed=3, lr=4e-3, workers=0, pool_size=150,
                  sampler=third_person_sample, progress=False)
    return out


def test_tiny_locator_beats_nearest_blob_on_third_person_frames_with_the_torso_nearer(tiny_locator):
    """Trained in seconds on 150 third-person frames (48x64 input, width 8): on unseen third-person
    frames whose torso is nearer than the hand, the nearest-blob search takes the torso; the locator
    lands near the hand."""
    from srnpose.data.centering import CenterPolicy

    locator = load_locator(tiny_locator)
    assert locator.config == TINY
    frames = [f for f in (third_person(frame_seed(99, i)) for i in range(80)) if torso_nearer(f)][:24]
    assert len(frames) == 24
    targets = [joints_centroid_uvd(f.joints_uvd, f.intrinsics) for f in frames]
    ks = [f.intrinsics for f in frames]
    blob = [CenterPolicy().locate(f.depth_mm, f.intrinsics) for f in frames]  # the frame path's search
    learned = [locator.locate(f.depth_mm, f.intrinsics)[0] for f in frames]
    old, new = evaluate_centers(blob, targets, ks, 100.0), evaluate_centers(learned, targets, ks, 100.0)
    assert old["median_mm"] > 150.0, old  # the search takes the torso (or nothing)
    assert new["median_mm"] < 0.5 * old["median_mm"], (new, old)
    assert new["within_100mm"] > old["within_100mm"] + 0.3, (new, old)


def test_tiny_locator_presence_low_on_an_empty_frame(tiny_locator):
    locator = load_locator(tiny_locator)
    empty = np.zeros(FRAME_WH[::-1], dtype=np.uint16)
    center, presence = locator.locate(empty, render_frame(1, resolution=FRAME_WH).intrinsics)
    assert center is None and presence < 0.2
    depth, k, _ = torso_frame(99)
    assert locator.locate(depth, k)[1] > 0.8


def test_resume_continues_from_the_saved_step(tiny_locator, tmp_path):
    """The locator trains on the training stack: its checkpoint last/ is training.checkpoint's (atomic,
    checksummed, the previous one kept), --resume continues it, a fresh start over it is refused, and an
    older srnpose's locator_train.pt still resumes."""
    import shutil

    import yaml

    from srnpose.config import to_dict
    from srnpose.locator.train import LEGACY_STATE_FILE
    from srnpose.training.checkpoint import load_train_state, verify_checkpoint_dir

    assert verify_checkpoint_dir(tiny_locator / "last") is None and (tiny_locator / "last" / "COMPLETE").is_file()
    assert int(load_train_state(tiny_locator / "last" / "train_state.pt")["step"]) == 120
    folder = tmp_path / "resume"
    shutil.copytree(tiny_locator, folder)
    kwargs = dict(config=TINY, seed=3, workers=0, pool_size=8, sampler=third_person_sample, progress=False)
    with pytest.raises(UserError, match="add --resume"):
        train_locator(steps=130, batch=4, out_path=folder, **kwargs)
    train_locator(steps=130, batch=4, out_path=folder, resume=True, **kwargs)
    summary = yaml.safe_load((folder / "locator.yaml").read_text())["train"]
    assert summary["steps"] == 130
    assert (folder / "last.prev").is_dir()  # the checkpoint before, kept
    with pytest.raises(UserError, match="another config"):
        train_locator(steps=140, out_path=folder, resume=True,
                      **dict(kwargs, config=LocatorConfig(input_hw=(48, 64), width=12)))
    # an older srnpose's training state (torch.save beside the locator) resumes, and last/ replaces it
    legacy = tmp_path / "legacy"
    shutil.copytree(tiny_locator, legacy, ignore=shutil.ignore_patterns("last*"))
    state = load_train_state(tiny_locator / "last" / "train_state.pt")
    locator = load_locator(tiny_locator)
    torch.save({"model": locator.model.state_dict(), "optimizer": state["optimizer"], "step": 120,
                "frames": int(state["frames"]), "elapsed_s": 1.0, "config": to_dict(TINY)},
               legacy / LEGACY_STATE_FILE)
    train_locator(steps=125, batch=4, out_path=legacy, resume=True, **kwargs)
    assert not (legacy / LEGACY_STATE_FILE).exists() and (legacy / "last" / "COMPLETE").is_file()
    assert yaml.safe_load((legacy / "locator.yaml").read_text())["train"]["steps"] == 125


def test_frame_scale_is_plain_data():
    _, scale = prepare_frame(np.zeros((240, 320), np.uint16), Intrinsics(241.0, 241.0, 160.0, 120.0), 1.0, (48, 64))
    assert isinstance(scale, FrameScale) and scale.frame_hw == (240, 320) and scale.input_hw == (48, 64)


def test_two_hands_nearest_by_default_or_left_or_right():
    from srnpose.locator.model import Locator, LocatorResult

    far_left, near_right = np.array([40.0, 60.0, 900.0]), np.array([120.0, 60.0, 600.0])
    res = LocatorResult([far_left, near_right], [0.6, 0.3], 0.9)  # the far hand scores higher
    assert Locator._choose(res, "nearest") is near_right
    assert Locator._choose(res, "score") is far_left
    assert Locator._choose(res, "left") is far_left and Locator._choose(res, "right") is near_right


def test_frame_path_asks_for_the_users_side_of_a_mirrored_frame():
    from srnpose.data.centering import CenterPolicy
    from srnpose.inference.frame_path import FrameCamera, FramePath

    class Recorder:
        def locate(self, view, intrinsics, depth_unit_mm, prefer):
            self.prefer = prefer
            return np.array([10.0, 10.0, 500.0]), 0.9

    k = Intrinsics(200.0, 200.0, 32.0, 24.0)
    view = np.full((48, 64), 500, np.uint16)
    for hand, mirrored, expected in (("left", False, "left"), ("left", True, "right"), ("nearest", True, "nearest")):
        rec = Recorder()
        engine = FramePath(lambda x: x, 32, 1, 14, CenterPolicy(), locator=rec, hand=hand)
        engine.locate(view, FrameCamera(k, mirrored=mirrored))
        assert rec.prefer == expected
    with pytest.raises(UserError, match="hand 'both'"):
        FramePath(lambda x: x, 32, 1, 14, hand="both")


def test_an_attached_locator_finds_the_hand_and_center_depth_keeps_the_search(tiny_locator, tmp_path):
    """``srnpose locator attach`` puts the locator in the run folder; load() then finds the hand with it
    (the centre training crops had at the hand it found: CenterPolicy.locate_near; ``center="locator"``:
    the locator's own centre), ``center="depth"`` gives the nearest-blob search's crop as before, and the
    locator's "no hand" is hand_found=False."""
    import srnpose
    from srnpose.cli import main
    from srnpose.config import SRNConfig, to_dict
    from srnpose.data.centering import CenterPolicy
    from srnpose.model import SRN
    from srnpose.training.checkpoint import save_checkpoint

    cfg = SRNConfig(num_joints=21, num_stages=1, input_size=32, width=8, topk=8)
    run = tmp_path / "run"
    save_checkpoint(run / "last", SRN.from_config(cfg).eval(),
                    {"model": to_dict(cfg), "data": {"center": "depth", "cube_mm": 250.0}})
    from srnpose.weights import LOCATOR_DIR

    assert srnpose.load(run).engine.locator is None  # auto: the checkpoint's own locator only
    shipped = srnpose.load(run, center="locator").engine.locator  # else the one in the package
    assert shipped is not None and shipped.config == load_locator(LOCATOR_DIR).config
    assert main(["locator", "attach", str(tiny_locator), str(run)]) == 0
    assert (run / "locator.safetensors").is_file() and (run / "locator.yaml").is_file()
    depth, k, _ = torso_frame(98)
    # torch, as load_locator's default: the centres compared bitwise
    with_locator, old = srnpose.load(run, backend="torch"), srnpose.load(run, center="depth", backend="torch")
    assert with_locator.engine.locator is not None and old.engine.locator is None
    res, res_old = with_locator.predict(depth, intrinsics=k), old.predict(depth, intrinsics=k)
    guess = load_locator(tiny_locator).locate(depth, k)[0]
    np.testing.assert_array_equal(res.center_uvd, CenterPolicy().locate_near(depth, k, guess))
    own = srnpose.load(run, center="locator", backend="torch").predict(depth, intrinsics=k)
    np.testing.assert_array_equal(own.center_uvd, guess)
    np.testing.assert_array_equal(res_old.center_uvd, CenterPolicy().locate(depth, k))
    assert not with_locator.predict(np.zeros_like(depth), intrinsics=k).hand_found


def test_find_locator_next_to_the_weights_or_in_the_run_folder(tiny_locator, tmp_path):
    from srnpose.locator.model import attach_locator, find_locator

    run = tmp_path / "run"
    (run / "best").mkdir(parents=True)
    assert find_locator(run / "best" / "model.safetensors") is None
    attach_locator(tiny_locator, run)
    assert find_locator(run / "best" / "model.safetensors") == run  # best/, last/, best.prev/ share it
    assert find_locator(run / "best.prev" / "model.safetensors") == run
    flat = tmp_path / "flat"
    flat.mkdir()
    assert find_locator(flat / "model.safetensors") is None  # a folder above a plain checkpoint is not its run
    with pytest.raises(UserError, match="not a run or checkpoint folder"):
        attach_locator(tiny_locator, flat)
    (flat / "model.safetensors").write_bytes(b"")
    attach_locator(tiny_locator, flat)
    assert find_locator(flat / "model.safetensors") == flat


def test_speckle_patches_drop_pixels_off_the_hand_only():
    """Training's patches of missing pixels (a Kinect V2's mesh chair): only measured pixels outside the
    hand become 0, the same seed gives the same patches."""
    from srnpose.locator.train import speckle_patches

    depth = np.full((120, 160), 1500, np.uint16)
    depth[:, :10] = 0
    hand = np.zeros(depth.shape, bool)
    hand[40:80, 60:100] = True
    out = speckle_patches(depth, hand, np.random.default_rng(3))
    dropped = (depth > 0) & (out == 0)
    assert dropped.any() and not dropped[hand].any() and np.array_equal(out[out > 0], depth[out > 0])
    np.testing.assert_array_equal(out, speckle_patches(depth, hand, np.random.default_rng(3)))


def test_init_starts_a_training_from_a_locators_weights(tiny_locator, tmp_path):
    """``srnpose locator train --init DIR``: a fine-tuning starts from DIR's weights (with a zero learning
    rate they stay bit for bit)."""
    out = train_locator(steps=2, batch=4, out_path=tmp_path / "ft", seed=5, lr=0.0, workers=0, pool_size=8,
                        sampler=third_person_sample, progress=False, init=tiny_locator)
    start, tuned = load_locator(tiny_locator).model.state_dict(), load_locator(out).model.state_dict()
    assert load_locator(out).config == TINY
    for name, value in start.items():
        if value.is_floating_point() and "running" not in name:
            torch.testing.assert_close(tuned[name], value, rtol=0, atol=0)


def test_locator_training_frames_from_engine_v3():
    """`locator train --engine v3`: its hand frames are v3's (turned hands among the scenes), v2's by default."""
    from srnpose.locator.train import render_sample

    v3 = {render_sample(frame_seed(7, i), engine="v3").scene for i in range(40)}
    v2 = {render_sample(frame_seed(7, i)).scene for i in range(40)}
    assert "turned" in v3 and "turned" not in v2
