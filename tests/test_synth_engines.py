"""The synthetic engines: v1 is round 1's frame, v2 draws scene families, real poses and sensor profiles,
deterministically, never with a hidden hand; a run config names its engine."""

from __future__ import annotations

import collections
import json

import numpy as np
import pytest

from srnpose.errors import UserError
from srnpose.synth import frame_seed, render_frame
from srnpose.synth.engines import MIN_HAND_PIXELS_320, render
from srnpose.synth.scenes import SCENE_FAMILIES

RES = (160, 120)


def test_v1_is_the_original_frame():
    for i in range(3):
        a, b = render("v1", frame_seed(4, i), resolution=RES), render_frame(frame_seed(4, i), resolution=RES)
        assert np.array_equal(a.depth_mm, b.depth_mm) and np.array_equal(a.joints_uvd, b.joints_uvd)
        assert a.scene == "close_range"


def test_one_builder_of_synthetic_records_for_training_and_evaluation():
    """The training stream (SampleSource) and SynthDataset build their records with synthetic_record:
    the same frame, joints, id and extra fields (is_left, joints_xyz, family) for the same stream."""
    from srnpose.data.centering import CenterPolicy
    from srnpose.data.pipeline import CropConfig
    from srnpose.data.sampling import SampleSource
    from srnpose.synth import SynthDataset

    source = SampleSource(None, CropConfig(input_size=32), CenterPolicy(), 0, False, synth_seed=21,
                          synth_resolution=RES, synth_engine="v2")
    dataset = SynthDataset(3, seed=21, resolution=RES, engine="v2")
    for g in range(3):
        a, b = source._record(g), dataset[g]
        assert a.frame_id == b.frame_id == f"synth:21:{g}"
        assert np.array_equal(a.depth, b.depth) and np.array_equal(a.joints_uvd, b.joints_uvd)
        assert a.extra.keys() == b.extra.keys() == {"is_left", "joints_xyz", "family", "scene"}
        assert a.extra["is_left"] == b.extra["is_left"] and np.array_equal(a.extra["joints_xyz"], b.extra["joints_xyz"])


def test_v2_is_deterministic_and_mixes_families_poses_and_sensors():
    frames = [render("v2", frame_seed(9, i), resolution=RES) for i in range(40)]
    again = render("v2", frame_seed(9, 7), resolution=RES)
    assert np.array_equal(again.depth_mm, frames[7].depth_mm) and np.array_equal(again.joints_uvd, frames[7].joints_uvd)
    scenes = collections.Counter(f.scene for f in frames)
    assert set(scenes) == set(SCENE_FAMILIES), scenes
    assert sum(f.family == "prior" for f in frames) >= 10  # real poses: half of the draws
    assert not any(f.is_left for f in frames)  # right hands only (poses.HANDS_V2); v1 draws both
    for f in frames:  # the hand is never hidden whole (a held object, the other arm, the range)
        shown = np.count_nonzero((f.part >= 0) & (f.depth_mm > 0))
        assert shown * 320 * 240 >= MIN_HAND_PIXELS_320 * RES[0] * RES[1], (f.seed, f.scene, shown)


def test_v2_sensor_follows_a_named_camera():
    a = render("v2", 5, resolution=RES, camera="kinect2")
    b = render("v2", 5, resolution=RES, camera="d400")
    assert np.array_equal(a.joints_uvd, b.joints_uvd)  # same scene ...
    assert not np.array_equal(a.depth_mm, b.depth_mm)  # ... seen by another sensor family


def test_unknown_engine_is_named():
    with pytest.raises(ValueError, match="unknown synthetic engine 'v4'; available: v1, v2, v3"):
        render("v4", 1)
    from srnpose.training.run_config import build_config

    with pytest.raises(UserError, match="synth_engine"):
        build_config("tiny", None, ["data.synth_engine=v4"])


def test_a_run_trains_and_validates_on_its_engine(tmp_path):
    import yaml

    from srnpose.training.loop import train
    from srnpose.training.run_config import build_config

    cfg = build_config("tiny", None, ["data.spec=synth", "data.synth_engine=v2", "data.val_frames=2",
                                      "train.batch_size=2", "train.steps=2", "train.val_every=2"])
    train(cfg, tmp_path / "run", progress=False)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["data"]["synth_engine"] == "v2"
    from srnpose.cli import main

    for engine, expected in ((None, "v2"), ("v1", "v1")):  # the checkpoint's engine, or the one asked for
        out = tmp_path / f"eval_{engine}"
        assert main(["evaluate", "--checkpoint", str(tmp_path / "run"), "--data", "synth", "--out", str(out)]
                    + (["--synth-engine", engine] if engine else [])) == 0
        report = json.loads((out / "report.json").read_text())
        assert report["frames_total"] == 500 and report["synth_engine"] == expected


def test_a_training_crop_never_lands_on_a_nearer_torso():
    """Third-person frames: the nearest blob is the torso, not the hand; the crop goes to the hand."""
    from srnpose.data.centering import FINDER_TRUST_MM, CenterPolicy
    from srnpose.geometry import Intrinsics, uvd_to_xyz

    k = Intrinsics(120.0, 120.0, 79.5, 59.5)
    depth = np.full((120, 160), 2500.0, np.float32)
    depth[40:80, 20:40] = 900.0  # the hand, raised beside the body
    depth[20:110, 90:150] = 700.0  # the torso, nearer
    joints_uvd = np.column_stack([np.linspace(22, 38, 21), np.linspace(42, 78, 21), np.full(21, 910.0)])
    policy = CenterPolicy.for_rule("depth", 250.0)
    found = policy.locate(depth, k)
    assert found is not None and found[0] > 90  # the search takes the torso
    centre = policy.training_center(depth, joints_uvd, k, np.random.default_rng(0))
    hand = uvd_to_xyz(joints_uvd, k).mean(axis=0)
    assert np.linalg.norm(uvd_to_xyz(centre, k) - hand) < 0.5 * FINDER_TRUST_MM


def test_v2_hands_spread_wider_with_wider_palms():
    from srnpose.hand import kinematics as hm
    from srnpose.synth.poses import HANDS_V1, HANDS_V2, sample_pose

    rng = np.random.default_rng(0)
    def breadth(draw):  # index MCP to little MCP, relative to hand length
        return np.mean([(lambda s: (s.base_xyz_mm[1, 0] - s.base_xyz_mm[4, 0]) / s.length_mm)(
            hm.sample_shape(rng, draw.palm_width)) for _ in range(200)])
    assert breadth(HANDS_V2) > 1.1 * breadth(HANDS_V1)
    def fan(family):  # index minus little MCP abduction, degrees
        chains = [sample_pose(rng, family)[0].chain_deg for _ in range(200)]
        return [c[1, 1] - c[4, 1] for c in chains]
    assert np.median(fan("spread")) > np.percentile(fan("open"), 95)
    assert "spread" in HANDS_V2.poses and "spread" not in HANDS_V1.poses
