"""Engine v3's second hand (synth.second_hand): the person's unlabelled left hand in a share of first-person,
hand-with-object and third-person frames; the labels stay the right hand's; v2 is unaffected."""

from __future__ import annotations

import numpy as np
import pytest

from srnpose.hand import kinematics as hm
from srnpose.synth import frame_seed
from srnpose.synth.engines import V3_WEIGHTS, render
from srnpose.synth.frame import render_frame
from srnpose.synth.poses import HANDS_V2, HandDraw
from srnpose.synth.scenes import PART_OTHER_HAND, SCENE_FAMILIES
from srnpose.synth.second_hand import SECOND_HAND_FAMILIES, draw_second_hand

RES = (160, 120)
TABLE = V3_WEIGHTS["second_hand"]
HANDS_V3 = HandDraw(dict(V3_WEIGHTS["poses"]), HANDS_V2.palm_width, 0.0, close_grasps=True)


def _frame(seed: int, family: str, table: dict[str, float] | None = TABLE):
    return render_frame(seed, resolution=RES, scene=family, hands=HANDS_V3, second_hand=table)


@pytest.fixture(scope="module")
def frames():
    """60 frames per family with the v3 table, and the same scenes with no second hand (share 0)."""
    out = {}
    for family in SECOND_HAND_FAMILIES:
        seeds = [frame_seed(17, i) for i in range(60)]
        out[family] = [(_frame(s, family), _frame(s, family, {family: 0.0})) for s in seeds]
    return out


def test_the_share_of_frames_with_a_second_hand_follows_the_table(frames):
    assert set(TABLE) == set(SECOND_HAND_FAMILIES)
    for family, pairs in frames.items():
        share = np.mean([bool(f.second_hand) for f, _ in pairs])
        assert abs(share - TABLE[family]) < 0.17, (family, share)  # 60 frames: sd ~0.06
        assert not any(g.second_hand for _, g in pairs)
        for f, _ in pairs:  # the flag says what the frame shows (third person: else a mitten hand, which
            drawn = draw_second_hand(f.seed, family, TABLE).present  # may hang below the image as the hand may)
            assert bool(f.second_hand) == drawn, f.seed
            if family != "third_person":
                assert (f.part == PART_OTHER_HAND).sum() >= 20 if drawn else not (f.part == PART_OTHER_HAND).any()
    with pytest.raises(ValueError, match="no second hand in scene families \\['turned'\\]; available: third_person"):
        draw_second_hand(1, "turned", {"turned": 0.5})


def test_the_labels_stay_the_right_hands(frames):
    """Same joints as the scene without the second hand, and they lie on the right hand's pixels: the
    centroid of its measured hand pixels (forearm left out) is near the joints' and farther from the
    second hand's pixels."""
    nearer_own = 0
    with_second = [(f, g) for pairs in frames.values() for f, g in pairs if f.second_hand]
    assert len(with_second) >= 40
    for f, g in with_second:
        assert np.array_equal(f.joints_xyz, g.joints_xyz) and not f.is_left
        measured = f.depth_mm > 0
        own = measured & (f.part >= 0) & (f.part != hm.PART_FOREARM)
        other = measured & (f.part == PART_OTHER_HAND)
        if own.sum() < 20 or other.sum() < 20:
            continue
        joints = f.joints_uvd[:, :2].mean(axis=0)
        d_own, d_other = (np.linalg.norm(np.argwhere(m).mean(axis=0)[::-1] - joints) for m in (own, other))
        assert d_own < 0.15 * RES[0], (f.seed, f.scene, d_own)
        nearer_own += d_own < d_other
    assert nearer_own >= 0.9 * len(with_second) - 5, (nearer_own, len(with_second))


def test_a_second_hand_adds_near_depth_pixels(frames):
    """Pixels measured no deeper than the labelled hand's deepest joint + 100 mm (what a hand finder looks at):
    more with the second hand than in the same scene cast without it (its primitives left out; a scene
    drawn without one would differ: the first-person table lies under both hands, a mitten hangs instead)."""
    from srnpose.synth.frame import _render
    from srnpose.synth.sensor import DEFAULT_SENSOR

    more, total = 0, 0
    for family, pairs in frames.items():
        for f, _ in pairs:
            if not f.second_hand or not (f.part == PART_OTHER_HAND).any():
                continue
            g = _render(f.seed, None, RES, DEFAULT_SENSOR, family, HANDS_V3, True, lambda p: p != PART_OTHER_HAND,
                        TABLE)
            assert np.array_equal(g.joints_xyz, f.joints_xyz) and not (g.part == PART_OTHER_HAND).any()
            limit = f.joints_xyz[:, 2].max() + 100.0
            near = [np.count_nonzero((x.depth_mm > 0) & (x.depth_mm <= limit)) for x in (f, g)]
            more += near[0] > near[1]
            total += 1
    assert total >= 40 and more >= 0.9 * total, (more, total)


def test_the_second_hand_comes_from_its_own_stream_and_v2_is_unaffected():
    for i in range(4):
        s = frame_seed(3, i)
        for family in ("first_person", "hand_object"):  # share 0: the builder's frame, bitwise
            a, b = _frame(s, family, {family: 0.0}), _frame(s, family, None)
            assert np.array_equal(a.depth_mm, b.depth_mm) and np.array_equal(a.part, b.part)
        v2 = render("v2", s, resolution=RES)
        again = render_frame(v2.seed, resolution=RES, scene=SCENE_FAMILIES, hands=HANDS_V2,
                             sensor=_v2_sensor(v2.seed))
        assert v2.second_hand == "" and np.array_equal(v2.depth_mm, again.depth_mm)
    seeds = [frame_seed(5, i) for i in range(30)]
    v3 = [render("v3", s, resolution=RES) for s in seeds]
    assert any(f.second_hand for f in v3)
    for s, f in zip(seeds[:8], v3):  # a pure function of its arguments
        again = render("v3", s, resolution=RES)
        assert again.second_hand == f.second_hand and np.array_equal(again.depth_mm, f.depth_mm)
        assert np.array_equal(again.joints_uvd, f.joints_uvd)
    off = render_frame(seeds[0], resolution=RES, scene="first_person", hands=HANDS_V3, distractors=False,
                       second_hand={"first_person": 1.0})
    assert off.second_hand == "" and not (off.part == PART_OTHER_HAND).any()  # hand and forearm only


def _v2_sensor(seed: int):
    from srnpose.synth.engines import SENSOR_STREAM
    from srnpose.synth.sensor import sample_profile

    return sample_profile(np.random.default_rng([seed & 0xFFFFFFFF, SENSOR_STREAM]), None, None)
