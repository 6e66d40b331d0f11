"""Scene families of the synthetic engine and the primitives they need: determinism, labels against
depth, the cases the nearest-blob hand finder fails on, the mix, cameras, and the ray casts."""

import numpy as np
import pytest

from srnpose.geometry import Intrinsics
from srnpose.hand import kinematics as hm
from srnpose.synth import frame_seed, person, render_frame, scenes, visible_joints
from srnpose.synth.frame import pick_scene
from srnpose.synth.render import cast
from srnpose.synth.scenes import PART_DISTRACTOR, PART_OBJECT, SCENE_FAMILIES
from srnpose.synth.sensor import DEFAULT_SENSOR
from srnpose.synth.solids import Solids, SolidsBuilder

FAMILIES = list(SCENE_FAMILIES)
PALM_DEPTH_MM = {  # the documented ranges (scenes module table), with the default sensor's far limit
    "close_range": scenes.DISTANCE_RANGE_MM,
    "third_person": (scenes.THIRD_PERSON_DEPTH_MM[0], DEFAULT_SENSOR.far_mm - scenes.FAR_MARGIN_MM),
    "first_person": scenes.FIRST_PERSON_DEPTH_MM,
    "hand_object": scenes.HAND_OBJECT_DEPTH_MM,
}


def _frames(family: str, count: int, resolution=(320, 240), seed: int = 21):
    return [render_frame(frame_seed(seed, i), resolution=resolution, scene=family) for i in range(count)]


def _touching(a: np.ndarray, b: np.ndarray) -> bool:
    """Some pixel of mask ``a`` has a 4-neighbour in mask ``b``."""
    return bool((a[1:] & b[:-1]).any() or (a[:-1] & b[1:]).any() or (a[:, 1:] & b[:, :-1]).any()
                or (a[:, :-1] & b[:, 1:]).any())


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_is_deterministic_per_seed(family):
    a, b = (render_frame(7, resolution=(160, 120), scene=family) for _ in range(2))
    c = render_frame(8, resolution=(160, 120), scene=family)
    assert a.scene == family and c.scene == family
    assert np.array_equal(a.depth_mm, b.depth_mm) and np.array_equal(a.part, b.part)
    assert np.array_equal(a.joints_xyz, b.joints_xyz)
    assert not np.array_equal(a.depth_mm, c.depth_mm)


@pytest.mark.parametrize("family", FAMILIES)
def test_labels_consistent_with_depth_in_every_family(family):
    frames = _frames(family, 16)
    lo, hi = PALM_DEPTH_MM[family]
    diffs, visible = [], []
    for f in frames:
        palm = 0.5 * (f.joints_xyz[0] + f.joints_xyz[9])
        assert lo - 1e-6 <= palm[2] <= hi + 1e-6
        u, v = f.joints_uvd[:, :2].mean(axis=0)
        assert 0 <= u < 320 and 0 <= v < 240  # the hand's full-frame position is in the image
        vis = visible_joints(f)
        visible.append(vis.mean())
        uu, vv = np.rint(f.joints_uvd[vis, :2]).astype(int).T
        diffs += list(f.joints_uvd[vis, 2] - f.depth_mm[vv, uu])
    assert np.mean(visible) > 0.5, np.mean(visible)  # most joints visible on average
    # Joints lie inside the fingers: the visible surface is a few mm to ~25 mm in front of them.
    assert 3.0 <= np.median(diffs) <= 25.0 and np.percentile(diffs, 5) > -5.0


def test_third_person_has_the_cases_a_nearest_blob_finder_fails_on():
    torso_nearer = forearm_nearer = connected = 0
    frames = _frames("third_person", 30)
    for f in frames:
        d = f.depth_mm.astype(np.float64)
        hand = (f.part >= 0) & (f.part != hm.PART_FOREARM) & (d > 0)
        forearm = (f.part == hm.PART_FOREARM) & (d > 0)
        body = (f.part == PART_DISTRACTOR) & (d > 0)
        if hand.any() and body.any() and d[body].min() < d[hand].min():
            torso_nearer += 1
        if hand.any() and forearm.any() and d[forearm].min() < d[hand].min() - 20.0:
            forearm_nearer += 1
        connected += _touching(f.part == hm.PART_FOREARM, f.part == PART_DISTRACTOR)
    assert torso_nearer >= 3 and forearm_nearer >= 3, (torso_nearer, forearm_nearer)
    assert connected >= 0.8 * len(frames)  # the forearm joins the person's upper arm or body


def test_first_person_forearm_enters_from_the_border():
    frames = _frames("first_person", 20)
    from scipy import ndimage

    at_border = 0
    for f in frames:
        arm = f.part == hm.PART_FOREARM
        wrist_d = f.joints_xyz[0, 2]
        assert f.depth_mm[arm & (f.depth_mm > 0)].min(initial=65535) < wrist_d  # the forearm comes nearer
        # the arm (forearm, then the upper arm when the elbow is in view) nearer than the wrist
        near_arm = arm | ((f.part == PART_DISTRACTOR) & (f.depth_mm > 0) & (f.depth_mm < wrist_d))
        labels, _ = ndimage.label(near_arm)
        ids = np.unique(labels[arm & (labels > 0)])
        border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        at_border += bool(np.isin(ids, border).any())
    assert at_border >= 0.8 * len(frames), at_border


def test_hand_object_objects_touch_and_occlude_the_hand():
    frames = _frames("hand_object", 16)
    touching = sum(_touching(f.part == PART_OBJECT, f.part >= 0) for f in frames)
    assert touching >= 0.75 * len(frames)
    bare = [render_frame(f.seed, resolution=(320, 240), scene="hand_object", distractors=False) for f in frames]
    assert all((g.part >= -1).all() for g in bare)  # distractors=False: the hand and its forearm only
    assert sum(visible_joints(f).sum() for f in frames) < sum(visible_joints(g).sum() for g in bare)


def test_mix_draws_families_by_weight_from_its_own_stream():
    picks = [pick_scene(s, SCENE_FAMILIES) for s in range(2000)]
    share = {name: picks.count(name) / len(picks) for name in FAMILIES}
    for name, weight in SCENE_FAMILIES.items():
        assert abs(share[name] - weight / sum(SCENE_FAMILIES.values())) < 0.04, share
    reordered = dict(reversed(list(SCENE_FAMILIES.items())))
    assert [pick_scene(s, reordered) for s in range(50)] == picks[:50]
    assert {pick_scene(s, {"first_person": 1.0, "third_person": 0.0}) for s in range(20)} == {"first_person"}
    # A mixed frame is the named family's frame, bitwise: the family draw does not touch the scene's rng.
    seed = next(s for s in range(100) if pick_scene(s, SCENE_FAMILIES) == "third_person")
    a = render_frame(seed, resolution=(64, 48), scene=SCENE_FAMILIES)
    b = render_frame(seed, resolution=(64, 48), scene="third_person")
    assert np.array_equal(a.depth_mm, b.depth_mm) and a.scene == "third_person"
    # None keeps the original scene for every existing caller.
    assert render_frame(seed, resolution=(64, 48)).scene == "close_range"


def test_bad_scene_names_list_the_families():
    with pytest.raises(ValueError, match="unknown scene family 'outdoor'; available: third_person, first_person"):
        render_frame(1, scene="outdoor")
    with pytest.raises(ValueError, match=r"unknown scene families \['kitchen'\]"):
        render_frame(1, scene={"kitchen": 1.0})
    with pytest.raises(ValueError, match="positive sum"):
        render_frame(1, scene={"third_person": 0.0})


@pytest.mark.parametrize("family", ["third_person", "first_person", "hand_object"])
def test_y_up_and_mirrored_cameras_keep_the_image(family):
    k = Intrinsics(120.5, 120.5, 79.5, 59.5)
    a = render_frame(3, k, (160, 120), scene=family)
    for flip in ((1.0, -1.0), (-1.0, 1.0)):
        b = render_frame(3, Intrinsics(k.fx * flip[0], k.fy * flip[1], k.cx, k.cy), (160, 120), scene=family)
        assert np.array_equal(a.depth_mm, b.depth_mm) and np.array_equal(a.part, b.part)
        np.testing.assert_allclose(b.joints_uvd, a.joints_uvd, atol=1e-9)
        np.testing.assert_allclose(b.joints_xyz, a.joints_xyz * [flip[0], flip[1], 1.0])


# --------------------------------------------------------------------------- primitives

K = Intrinsics(100.0, 100.0, 31.5, 31.5)


def _one(builder_call) -> Solids:
    b = SolidsBuilder()
    builder_call(b)
    return b.build()


def test_capped_cylinder_box_and_sphere_depths():
    # A cylinder seen end-on: a flat disc at its near cap, the surface facing the camera.
    r = cast(_one(lambda b: b.cylinder((0, 0, 500), (0, 0, 700), 50.0, 1)), K, 64, 64)
    disc = np.isfinite(r.z_mm)
    assert np.allclose(r.z_mm[disc], 500.0, atol=1e-3) and r.cos_incidence[31, 31] > 0.999
    assert 0.8 < disc.sum() / (np.pi * (100 * 50 / 500) ** 2) < 1.2  # radius 10 px
    # A box's front face at its centre's depth minus the half size.
    r = cast(_one(lambda b: b.box((0, 0, 600), np.eye(3), (60, 60, 40), 2)), K, 64, 64)
    face = np.isfinite(r.z_mm)
    assert np.allclose(r.z_mm[face], 560.0, atol=1e-3) and (r.part[face] == 2).all()
    # A sphere (ellipsoid): its nearest point, and the same silhouette as the round cone sphere.
    r = cast(_one(lambda b: b.sphere((0, 0, 500), 50.0, 3)), K, 64, 64)
    cone = cast(_one(lambda b: b.cone((0, 0, 500), 50.0, (0, 0, 500.001), 50.0, 3)), K, 64, 64)
    assert abs(r.z_mm[31:33, 31:33].min() - 450.0) < 0.5
    assert (np.isfinite(r.z_mm) != np.isfinite(cone.z_mm)).sum() <= 4


def test_plane_polygon_edges_and_far_limit():
    # A wall at z = 1000 cut to x <= 0: only the left half of the image shows it.
    s = _one(lambda b: b.plane((0, 0, 1000), (0, 0, 1), PART_DISTRACTOR, edges=[((0, 0, 1000), (1, 0, 0))]))
    r = cast(s, K, 64, 64)
    assert np.isfinite(r.z_mm[:, :31]).all() and not np.isfinite(r.z_mm[:, 33:]).any()
    assert np.allclose(r.z_mm[:, :31], 1000.0, atol=1e-2) and (r.part[:, :31] == PART_DISTRACTOR).all()
    assert not np.isfinite(cast(s, K, 64, 64, far_mm=900.0).z_mm).any()  # beyond the range: not cast
    # A tilted plane: the depth grows linearly across the image, the nearest surface wins against a sphere.
    s = _one(lambda b: (b.plane((0, 0, 800), (0.3, 0, 1), 0), b.sphere((0, 0, 700), 60.0, 5)))
    r = cast(s, K, 64, 64)
    assert r.part[31, 31] == 5 and r.part[31, 2] == 0 and r.z_mm[31, 2] > r.z_mm[31, 60]


def test_far_culling_changes_nothing_within_range():
    f = person.third_person(np.random.Generator(np.random.PCG64(5)), Intrinsics(241.0, 241.0, 159.5, 119.5),
                            320, 240, 4500.0)
    full = cast(f.solids, Intrinsics(241.0, 241.0, 159.5, 119.5), 320, 240)
    near = cast(f.solids, Intrinsics(241.0, 241.0, 159.5, 119.5), 320, 240, far_mm=1500.0)
    inside = full.z_mm <= 1500.0
    assert inside.any() and (~inside).any()
    assert np.array_equal(near.z_mm[inside], full.z_mm[inside]) and np.array_equal(near.part[inside], full.part[inside])


def test_solids_move_rigidly_and_back():
    s = _one(lambda b: (b.cone((1, 2, 300), 10, (5, 9, 320), 8, 0), b.box((0, 0, 400), hm.rot_y(20.0), (5, 6, 7), 1),
                        b.cylinder((3, 0, 500), (3, 40, 520), 9, 2), b.sphere((0, 1, 450), 20, 3),
                        b.plane((0, 0, 900), (0, 0.2, 1), 4, edges=[((0, 100, 900), (0, 1, 0))])))
    rot, trans = hm.rot_z(30.0) @ hm.rot_x(-40.0), np.array([10.0, -20.0, 30.0])
    back = s.transformed(rot, trans).transformed(rot.T, -rot.T @ trans)
    for name in ("cones", "ellipsoids", "cylinders", "boxes", "planes"):
        np.testing.assert_allclose(back.kind(name)[0], s.kind(name)[0], atol=1e-9)
