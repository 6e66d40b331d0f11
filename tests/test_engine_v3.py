"""Engine v3: v2's families plus named gestures (poses.GESTURES) and turned hands (synth.turned), drawn
deterministically; v1 and v2 are unchanged (tests/test_synth_engines.py)."""

from __future__ import annotations

import collections
import typing

import numpy as np
import pytest

from srnpose.hand import kinematics as hm
from srnpose.synth import frame_seed
from srnpose.synth.engines import ENGINES, MIN_HAND_PIXELS_320, V3_WEIGHTS, render
from srnpose.synth.frame import render_frame
from srnpose.synth.poses import GESTURES, HANDS_V2, LIMITS_DEG, HandDraw, gesture_ranges_deg, sample_gesture
from srnpose.synth.turned import TURNED_VIEWS, turned_view

RES = (160, 120)


def _draws(name: str, n: int = 40) -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.stack([sample_gesture(rng, name)[0].chain_deg for _ in range(n)])  # (n, 5, 4)


def test_gesture_tables_lie_within_the_joint_limits():
    for name in GESTURES:
        ranges = gesture_ranges_deg(name)
        assert (ranges[..., 0] <= ranges[..., 1]).all(), name
        assert (ranges[..., 0] >= LIMITS_DEG[..., 0]).all() and (ranges[..., 1] <= LIMITS_DEG[..., 1]).all(), name
    with pytest.raises(ValueError, match="unknown gesture 'wave'; available: pointing, v, pinch"):
        gesture_ranges_deg("wave")


def _straight(chain: np.ndarray, f: int) -> np.ndarray:  # (n,) the finger is straight: MCP and PIP small
    return (chain[:, f, 0] <= 10.0) & (chain[:, f, 2] <= 12.0)


def _curled(chain: np.ndarray, f: int) -> np.ndarray:
    return (chain[:, f, 0] >= 75.0) & (chain[:, f, 2] >= 90.0)


@pytest.mark.parametrize("name, straight", [("pointing", {1}), ("one", {1}), ("v", {1, 2}), ("two", {1, 2}),
                                            ("three", {1, 2, 3}), ("four", {1, 2, 3, 4}), ("fist", set()),
                                            ("thumbs_up", set())])
def test_gestures_straighten_and_curl_the_named_fingers(name, straight):
    chain = _draws(name)
    for f in range(1, 5):
        assert (_straight(chain, f) if f in straight else _curled(chain, f)).all(), (name, f)
    if name == "v":  # index and middle spread apart
        assert (chain[:, 1, 1] - chain[:, 2, 1] >= 12.0).all()
    if name == "thumbs_up":  # the thumb straight along the fist
        assert (chain[:, 0, 2] <= 10.0).all() and (chain[:, 0, 3] <= 5.0).all()


def test_five_opens_the_thumb_and_claw_bends_the_tips_not_the_knuckles():
    five, claw = _draws("five"), _draws("claw")
    assert all(_straight(five, f).all() for f in range(1, 5)) and (five[:, 0, 1] >= 25.0).all()
    assert (claw[:, 1:, 0] <= 30.0).all() and (claw[:, 1:, 2] >= 75.0).all()


@pytest.mark.parametrize("name", ["pinch", "ok"])
def test_pinch_and_ok_bring_the_thumb_tip_to_the_index_tip(name):
    rng = np.random.default_rng(7)
    gaps = []
    for _ in range(40):
        shape = hm.sample_shape(rng, HANDS_V2.palm_width)
        joints = hm.forward_kinematics(shape, sample_gesture(rng, name)[0])
        gaps.append(np.linalg.norm(joints[4] - joints[8]))
    assert np.median(gaps) < 15.0 and max(gaps) < 25.0, np.round(gaps, 1)  # tip radii ~8 mm: touching


def test_turned_views_span_their_documented_ranges():
    rng = np.random.default_rng(0)
    draws = {view: [turned_view(rng, view) for _ in range(300)] for view in TURNED_VIEWS}
    receding = {v: np.degrees(np.arcsin([f[2] for f, _, _ in d])) for v, d in draws.items()}  # forearm vs image plane
    for view in ("palm_sideways", "back"):
        assert 15.0 - 1e-6 <= receding[view].min() < 20.0 and 55.0 < receding[view].max() <= 60.0 + 1e-6
    off_axis = 90.0 - receding["fingers_to_camera"]
    assert off_axis.min() < 5.0 and 30.0 < off_axis.max() <= 35.0 + 1e-6
    assert -55.0 - 1e-6 <= receding["from_above"].min() < -50.0 and -25.0 < receding["from_above"].max() <= -20.0 + 1e-6
    assert 0.0 <= receding["from_side"].min() < 5.0 and 35.0 < receding["from_side"].max() <= 40.0 + 1e-6
    palms = {v: np.array([p for _, p, _ in d]) for v, d in draws.items()}
    assert set(np.abs(palms["palm_sideways"][:, 0])) == {1.0}  # palm left or right: seen edge on
    assert (palms["back"][:, 2] == 1.0).all() and (palms["from_above"][:, 2] == 1.0).all()
    assert set(np.abs(palms["from_side"][:, 1])) == {1.0}
    with pytest.raises(ValueError, match="unknown turned view"):
        turned_view(rng, "upside_down")


def test_turned_frames_keep_the_joints_inside_with_the_hand_visible():
    hands = HandDraw({"gesture": 1.0}, HANDS_V2.palm_width, 0.0)
    for i in range(12):
        frame = render_frame(frame_seed(2, i), resolution=RES, scene="turned", hands=hands)
        u, v = frame.joints_uvd[:, 0], frame.joints_uvd[:, 1]
        assert frame.scene == "turned" and frame.family == "gesture"
        assert ((u >= 0) & (u <= RES[0] - 1) & (v >= 0) & (v <= RES[1] - 1)).all(), frame.seed
        shown = np.count_nonzero((frame.part >= 0) & (frame.depth_mm > 0))
        assert shown * 320 * 240 >= MIN_HAND_PIXELS_320 * RES[0] * RES[1], (frame.seed, shown)


def test_v3_is_deterministic_mixes_its_families_and_is_not_the_default():
    from srnpose.training.run_config import DataConfig

    frames = [render("v3", frame_seed(11, i), resolution=RES) for i in range(40)]
    again = render("v3", frame_seed(11, 5), resolution=RES)
    assert np.array_equal(again.depth_mm, frames[5].depth_mm) and np.array_equal(again.joints_uvd, frames[5].joints_uvd)
    scenes = collections.Counter(f.scene for f in frames)
    assert set(scenes) == set(V3_WEIGHTS["scenes"]), scenes
    assert sum(f.family == "gesture" for f in frames) >= 3
    assert abs(sum(V3_WEIGHTS["poses"].values()) - 1.0) < 1e-9 and abs(sum(V3_WEIGHTS["scenes"].values()) - 1.0) < 1e-9
    for f in frames:
        shown = np.count_nonzero((f.part >= 0) & (f.depth_mm > 0))
        assert shown * 320 * 240 >= MIN_HAND_PIXELS_320 * RES[0] * RES[1], (f.seed, f.scene, shown)
    assert "v3" in ENGINES and DataConfig().synth_engine == "v2"
    assert "v3" in typing.get_args(typing.get_type_hints(DataConfig)["synth_engine"])


def test_a_training_mix_of_scene_families_reaches_the_training_stream_only():
    """data.synth_scenes draws the training stream's v3 frames from its own weights; the engine's frames
    (the validation and test sets) stay as they were; a mix naming another family, or for another
    engine, is one line."""
    from srnpose.data.sampling import build_source
    from srnpose.errors import UserError
    from srnpose.training.run_config import build_config, check, resolve_data

    mix = "data.synth_scenes={hand_object: 1, turned: 0}"
    cfg = resolve_data(build_config("release", None, [mix, "data.synth_resolution=[160, 120]"]))
    check(cfg)
    source, _, _ = build_source(cfg)
    seeds = [frame_seed(source.synth_seed, i) for i in range(6)]
    assert [render("v3", s, resolution=RES, scenes=cfg.data.synth_scenes).scene for s in seeds] == ["hand_object"] * 6
    assert np.array_equal(source._record(2).depth, render("v3", seeds[2], resolution=RES, scenes={"hand_object": 1})
                          .depth_mm.astype(np.float32))
    plain = render("v3", seeds[0], resolution=RES)
    assert np.array_equal(plain.depth_mm, render("v3", seeds[0], resolution=RES, scenes=None).depth_mm)
    for overrides, message in (([mix.replace("hand_object", "hand_objet")], "unknown scene families hand_objet"),
                               ([mix, "data.synth_engine=v2"], "only for the synthetic stream of engine v3"),
                               (["data.synth_scenes={turned: 0}"], "some > 0")):
        with pytest.raises(UserError, match=message):
            check(build_config("release", None, overrides))


def test_v3_first_person_frames_are_seen_by_head_mounted_sensors():
    from srnpose.synth.engines import SENSOR_STREAM, sensor_families
    from srnpose.synth.frame import pick_scene
    from srnpose.synth.scenes import SCENE_FAMILIES
    from srnpose.synth.sensor import profile_name, sample_profile

    scenes = V3_WEIGHTS["scenes"]
    seeds = [s for s in range(400) if pick_scene(s, scenes) == "first_person"]
    drawn = collections.Counter(
        profile_name(sample_profile(np.random.default_rng([s, SENSOR_STREAM]), None, sensor_families("v3", s, scenes, None)))
        for s in seeds)
    assert set(drawn) == {"structured_light", "active_stereo"}, drawn
    assert sensor_families("v3", seeds[0], scenes, "kinect2") is None  # a named camera keeps its own family
    assert all(sensor_families("v2", s, SCENE_FAMILIES, None) is None for s in seeds)  # v2 as before
    frame = render("v3", seeds[0], resolution=RES)
    assert frame.scene == "first_person" and 250.0 - 60.0 < np.median(frame.joints_xyz[:, 2]) < 650.0 + 120.0


def test_fingers_close_on_a_held_cylinder_and_open_out_of_one_drawn_through_them():
    from srnpose.synth.grasp import CONTACT_TOL_MM, _finger_clearance_mm, close_fingers
    from srnpose.synth.solids import SolidsBuilder

    shape = hm.nominal_shape()
    pose = sample_gesture(np.random.default_rng(0), "five")[0]
    joints = hm.forward_kinematics(shape, pose)
    centre = 0.5 * (joints[5] + joints[17]) + np.array([0.0, 30.0, 50.0])  # +z palmar: in front of the palm
    b = SolidsBuilder()
    b.cylinder(centre - [60.0, 0.0, 0.0], centre + [60.0, 0.0, 0.0], 30.0, -3)
    held = b.build()
    assert (_finger_clearance_mm(shape, joints, held) > 2.0).all()  # open: the fingers miss it
    closed = close_fingers(shape, pose, False, held)
    gap = _finger_clearance_mm(shape, hm.forward_kinematics(shape, closed), held)
    assert (np.abs(gap) <= CONTACT_TOL_MM).all(), gap  # every long finger touches the surface
    flexion = closed.chain_deg[1:, [0, 2, 3]].sum(axis=1) - pose.chain_deg[1:, [0, 2, 3]].sum(axis=1)
    assert (flexion > 10.0).all(), flexion  # by flexing
    assert np.array_equal(closed.chain_deg[0], pose.chain_deg[0])  # the thumb is kept
    fist = sample_gesture(np.random.default_rng(0), "fist")[0]  # a fist through the cylinder opens onto it
    inside = _finger_clearance_mm(shape, hm.forward_kinematics(shape, fist), held)
    opened = close_fingers(shape, fist, False, held)
    after = _finger_clearance_mm(shape, hm.forward_kinematics(shape, opened), held)
    assert ((inside >= -CONTACT_TOL_MM) | (np.abs(after) <= CONTACT_TOL_MM)).all(), (inside, after)


def test_v3_grasps_touch_their_object_instead_of_passing_through_it():
    """hand_object with close_grasps: the same draws (palm and object where they were), the fingers
    moved onto the object: far fewer fingers inside it than the v2 grasp."""
    from srnpose.synth.grasp import _finger_clearance_mm
    from srnpose.synth.scenes import GRASP_FAMILIES, closed_on, grasp_object, pick, sample_hand
    from srnpose.synth.solids import SolidsBuilder

    hands = HandDraw(dict(V3_WEIGHTS["poses"]), HANDS_V2.palm_width, 0.0, close_grasps=True)
    inside = {False: 0, True: 0}
    rng = np.random.default_rng(1)
    for _ in range(25):
        hand = sample_hand(rng, pick(rng, GRASP_FAMILIES), hands=hands)
        b = SolidsBuilder()
        grasp_object(b, rng, hand)
        closed = closed_on(hand, b.build())
        for h, key in ((hand, False), (closed, True)):
            inside[key] += int((_finger_clearance_mm(h.shape, h.joints, b.build()) < -1.0).sum())
        assert np.array_equal(closed.joints[[0, 1, 2, 3, 4, 5, 9, 13, 17]], hand.joints[[0, 1, 2, 3, 4, 5, 9, 13, 17]])
    assert inside[True] <= 0.3 * inside[False], inside
    for close in (False, True):  # the scene's other draws are the same: the palm stays where it was
        frames = [render_frame(frame_seed(8, i), resolution=RES, scene="hand_object",
                               hands=HandDraw(dict(V3_WEIGHTS["poses"]), HANDS_V2.palm_width, 0.0, close_grasps=close))
                  for i in range(3)]
        inside[close] = np.stack([f.joints_xyz[[0, 5, 9, 13, 17]] for f in frames])
    assert np.allclose(inside[False], inside[True])
