"""The frame-path engine: evaluation crops what predict crops, a frame without a hand is not cropped
from labels, and the policy's cube reaches every path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srnpose.config import SRNConfig, to_dict
from srnpose.data.records import HandRecord
from srnpose.model import SRN
from srnpose.training.checkpoint import save_checkpoint

TINY = SRNConfig(num_joints=14, num_stages=2, input_size=32, width=8, topk=8)


def _run(tmp_path, center: str, cube_mm: float, layout: str = "nyu", model_cfg: SRNConfig = TINY):
    torch.manual_seed(0)
    run = tmp_path / "run"
    config = {"model": to_dict(model_cfg), "data": {"center": center, "cube_mm": cube_mm, "layout": layout}}
    save_checkpoint(run / "last", SRN.from_config(model_cfg).eval(), config)
    return run


@pytest.fixture
def recorded_crops(monkeypatch):
    """Every batch of crops any torch runner is given, in call order."""
    from srnpose.inference import backends

    calls: list[np.ndarray] = []
    real = backends.TorchRunner.__call__

    def record(self, crops):
        calls.append(np.array(crops, copy=True))
        return real(self, crops)

    monkeypatch.setattr(backends.TorchRunner, "__call__", record)
    return calls


def test_evaluate_crops_are_bitwise_the_crops_predict_makes(tmp_path, recorded_crops):
    """A NYU run (300 mm cube) with the two-pass "mixed" centres: evaluate --checkpoint and predict on
    the same full frames feed the network identical crops, pass for pass."""
    import srnpose
    from srnpose.data.datasets import load_records
    from srnpose.data.public_layouts import write_nyu
    from srnpose.evaluation.model_eval import evaluate_checkpoint

    data = write_nyu(tmp_path / "nyu", 6, seed=3, progress=False)
    run = _run(tmp_path, "mixed", 300.0)
    report = evaluate_checkpoint(run, f"nyu:{data}", tmp_path / "eval", overlays=0, refine=1)  # two passes
    assert report["cube_mm"] == 300.0 and report["refine_passes"] == 1
    evaluated = list(recorded_crops)  # [pass 1 (N, 1, S, S), pass 2 (N, 1, S, S)]
    assert len(evaluated) == 2
    recorded_crops.clear()

    records = load_records(f"nyu:{data}", "test")
    estimator = srnpose.load(run, backend="torch")  # the runner recorded_crops watches, as evaluate runs
    estimator.engine.policy = estimator.engine.policy.with_passes(2)  # as evaluate's refine=1
    found = []
    for record in records:
        raw = record.load_depth().astype(np.uint16)  # the sensor's frame: integer millimetres
        found.append(estimator.predict(raw, intrinsics=record.intrinsics).hand_found)
    assert all(found) and report["frames"] == len(records) and report["hands_not_found"] == 0
    per_frame = [np.concatenate(recorded_crops[2 * i: 2 * i + 2]) for i in range(len(records))]  # (2, 1, S, S)
    for i, crops in enumerate(per_frame):
        for p in range(2):
            assert np.array_equal(crops[p], evaluated[p][i]), f"frame {i}, pass {p + 1}"


def test_a_frame_without_a_hand_is_counted_not_cropped_from_labels(tmp_path, recorded_crops):
    from srnpose.evaluation.model_eval import evaluate_checkpoint
    from srnpose.synth import SynthDataset

    cfg = SRNConfig(num_stages=2, input_size=32, width=8, topk=8)
    run = _run(tmp_path, "depth", 250.0, "canonical", cfg)
    hand = SynthDataset(1, seed=5, resolution=(160, 120))[0]
    empty = HandRecord(joints_uvd=hand.joints_uvd, intrinsics=hand.intrinsics,
                       depth=np.zeros_like(hand.depth), frame_id="empty")
    report = evaluate_checkpoint(run, "synth", tmp_path / "eval", overlays=0, records=[hand, empty])
    assert (report["frames_total"], report["frames"], report["hands_not_found"]) == (2, 1, 1)
    assert sum(len(c) for c in recorded_crops) == 1  # one crop: the empty frame never reached the network
    lines = (tmp_path / "eval" / "predictions.txt").read_text().splitlines()
    assert len(lines) == 2 and "nan" in lines[1] and "nan" not in lines[0]


def test_the_checkpoint_cube_reaches_training_crops():
    """Training's depth-map centres search with the run's cube, as predict does (round 1 used 250 mm)."""
    from srnpose.data.centering import FAR_MM, NEAR_MM, CenterPolicy
    from srnpose.geometry import find_hand_center
    from srnpose.synth import SynthDataset

    record = SynthDataset(1, seed=2, resolution=(160, 120))[0]
    policy = CenterPolicy.for_rule("depth", 120.0)
    got = policy.training_center(record.depth, record.joints_uvd, record.intrinsics, None)
    np.testing.assert_array_equal(got, find_hand_center(record.depth, record.intrinsics, 120.0, NEAR_MM, FAR_MM))
    assert not np.allclose(got, find_hand_center(record.depth, record.intrinsics, 250.0, NEAR_MM, FAR_MM))


@pytest.mark.parametrize("center", ["policy", "joints"])
def test_a_left_record_is_scored_as_its_mirror_image(center):
    """A left hand (extra is_left) is read mirrored: the mirror image of a right-hand record, labelled
    left, gets the mirrored estimate of that record and the same error."""
    from srnpose.data.centering import CenterPolicy
    from srnpose.evaluation.model_eval import score_estimates
    from srnpose.geometry import Intrinsics
    from srnpose.inference.frame_path import FramePath, estimate_records
    from srnpose.synth import frame_seed, render_frame

    torch.manual_seed(0)
    cfg = SRNConfig(num_stages=2, input_size=32, width=8, topk=8)
    engine = FramePath.from_model(SRN.from_config(cfg).eval(), CenterPolicy())
    f = render_frame(frame_seed(3, 1), resolution=(160, 120))
    w, k = f.depth_mm.shape[1], f.intrinsics
    right = HandRecord(f.joints_uvd, k, depth=f.depth_mm.astype(np.float32))
    mirrored_uvd = f.joints_uvd * [-1.0, 1.0, 1.0] + [w - 1.0, 0.0, 0.0]
    left = HandRecord(mirrored_uvd, Intrinsics(k.fx, k.fy, (w - 1) - k.cx, k.cy),
                      depth=np.ascontiguousarray(f.depth_mm[:, ::-1]).astype(np.float32), extra={"is_left": True})
    est_r, est_l = estimate_records(engine, [right, left], center)
    assert est_r.hand_found and est_l.hand_found
    np.testing.assert_allclose(est_l.stage_uvd[..., 0], (w - 1) - est_r.stage_uvd[..., 0], atol=1e-6)
    np.testing.assert_allclose(est_l.stage_uvd[..., 1:], est_r.stage_uvd[..., 1:], atol=1e-6)
    s_r, s_l = score_estimates([est_r], [right]), score_estimates([est_l], [left])
    np.testing.assert_allclose(s_l.stage_mm, s_r.stage_mm, atol=1e-6)
    np.testing.assert_allclose(s_l.pass_mm, s_r.pass_mm, atol=1e-6)


# --------------------------------------------------------------------------- the default hand finding


def _v2_frame(scene: str, ok, tries: int = 200):
    """The first engine v2 frame (320x240, the locator's test camera) of ``scene`` for which ``ok(frame)``."""
    from srnpose.synth.engines import render
    from srnpose.synth.frame import frame_seed

    for i in range(tries):
        frame = render("v2", frame_seed(2212, i))
        if frame.scene == scene and ok(frame):
            return frame
    raise AssertionError(f"no {scene} frame found")


@pytest.fixture(scope="module")
def shipped_engine():
    """The shipped model's frame path with its default finder (the shipped locator, then the policy)."""
    import srnpose

    engine = srnpose.load(backend="torch").engine
    assert engine.locator is not None and engine.finder == "auto"
    return engine


def _mm(a, b, k) -> float:
    from srnpose.geometry import uvd_to_xyz

    return float(np.linalg.norm(uvd_to_xyz(a, k) - uvd_to_xyz(b, k)))


def test_the_default_finds_the_hand_when_the_torso_is_nearer(shipped_engine):
    """An engine v2 third-person frame whose torso is nearer than the raised hand: the nearest-blob
    search (the old default) takes the torso, the default finds the hand."""
    from srnpose.data.centering import joints_centroid_uvd
    from srnpose.inference.frame_path import FrameCamera
    from srnpose.synth.scenes import PART_DISTRACTOR

    def torso_nearer(f) -> bool:
        hand, body = (f.part >= 0) & (f.depth_mm > 0), (f.part == PART_DISTRACTOR) & (f.depth_mm > 0)
        return hand.sum() >= 100 and body.any() and np.percentile(f.depth_mm[body], 1) < f.depth_mm[hand].min() - 50

    f = _v2_frame("third_person", torso_nearer)
    k, truth = f.intrinsics, joints_centroid_uvd(f.joints_uvd, f.intrinsics)
    old = shipped_engine.policy.locate(f.depth_mm, k)
    new = shipped_engine.locate(f.depth_mm, FrameCamera(k))
    assert old is None or _mm(old, truth, k) > 150.0  # the torso
    assert new is not None and _mm(new, truth, k) < 60.0


def test_the_default_reports_no_hand_on_an_empty_frame(shipped_engine):
    import srnpose
    from srnpose.geometry import Intrinsics
    from srnpose.inference.frame_path import FrameCamera

    result = srnpose.load(backend="torch").predict(np.zeros((424, 512), np.uint16), camera="kinect2")
    assert not result.hand_found
    empty = np.zeros((240, 320), np.uint16)
    assert shipped_engine.locate(empty, FrameCamera(Intrinsics(241.4, 241.4, 160.0, 120.0))) is None


def test_the_default_centre_is_the_training_crops_centre_on_a_close_range_frame(shipped_engine):
    """Where the search finds the hand (a close-range frame), the default's centre is bit for bit the
    centre training crops of the shipped model's rule get there (CenterPolicy.training_center)."""
    from srnpose.data.centering import joints_centroid_uvd
    from srnpose.inference.frame_path import FrameCamera

    policy = shipped_engine.policy

    def search_finds_it(f) -> bool:
        found = policy.locate(f.depth_mm, f.intrinsics)
        return found is not None and _mm(found, joints_centroid_uvd(f.joints_uvd, f.intrinsics), f.intrinsics) < 40.0

    f = _v2_frame("close_range", search_finds_it)
    expected = policy.training_center(f.depth_mm, f.joints_uvd, f.intrinsics, None)
    np.testing.assert_array_equal(shipped_engine.locate(f.depth_mm, FrameCamera(f.intrinsics)), expected)


def test_locate_near_follows_the_training_rule():
    """The guess (a locator's centroid) stands in for the labels: rule joints takes it; rule depth takes
    the search when it agrees, the search near the guess when the whole frame's nearest blob is
    something else, else the guess."""
    from srnpose.data.centering import CenterPolicy
    from srnpose.geometry import Intrinsics, uvd_to_xyz

    k = Intrinsics(200.0, 200.0, 80.0, 60.0)
    depth = np.zeros((120, 160), np.uint16)
    depth[50:70, 100:115] = 600  # a hand-sized blob at 600 mm
    hand = np.array([107.0, 60.0, 610.0])
    policy = CenterPolicy.for_rule("depth")
    np.testing.assert_array_equal(policy.locate_near(depth, k, hand), policy.locate(depth, k))
    np.testing.assert_array_equal(CenterPolicy.for_rule("joints").locate_near(depth, k, hand), hand)
    depth[40:80, 10:50] = 400  # a nearer torso far from the hand: the whole-frame search takes it
    assert np.linalg.norm(uvd_to_xyz(policy.locate(depth, k), k) - uvd_to_xyz(hand, k)) > 200.0
    near = policy.locate_near(depth, k, hand)
    assert np.linalg.norm(uvd_to_xyz(near, k) - uvd_to_xyz(hand, k)) < 20.0
    nothing = np.array([30.0, 100.0, 1200.0])  # nothing measured near this guess
    np.testing.assert_array_equal(policy.locate_near(depth, k, nothing), nothing)


def test_the_default_finds_the_hand_on_a_real_kinect2_frame(shipped_engine, shared_data):
    import srnpose
    from srnpose.data.depth_io import read_png16

    estimator = srnpose.load(backend="torch")
    for name in ("00000001.png", "00000015.png"):  # a lowered hand at the border; a raised open hand
        result = estimator.predict(read_png16(shared_data / "kinect2" / name), camera="kinect2")
        assert result.hand_found, name


def test_the_default_crops_the_hand_asked_for_not_the_nearest():
    """Two hands: with ``hand="left"`` the locator's left hand is cropped on its own surface, although
    the whole-frame search takes the nearer right one."""
    from srnpose.data.centering import CenterPolicy
    from srnpose.geometry import Intrinsics
    from srnpose.inference.frame_path import FrameCamera, FramePath

    k = Intrinsics(200.0, 200.0, 80.0, 60.0)
    depth = np.zeros((120, 160), np.uint16)
    depth[50:70, 20:35] = 700  # the left hand
    depth[50:70, 120:135] = 500  # the right hand, nearer

    class TwoHands:
        def locate(self, view, intrinsics, depth_unit_mm, prefer):
            return (np.array([27.0, 60.0, 710.0]) if prefer == "left" else np.array([127.0, 60.0, 510.0])), 0.9

    engine = FramePath(lambda x: x, 32, 1, 21, CenterPolicy(), locator=TwoHands(), hand="left")
    centre = engine.locate(depth, FrameCamera(k))
    assert CenterPolicy().locate(depth, k)[0] > 100  # the search: the nearer right hand
    assert 20 <= centre[0] <= 35 and abs(centre[2] - 700) < 5  # the left hand's surface
