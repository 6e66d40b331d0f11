"""Label-free quality measures: does a predicted skeleton fit the depth frame it was predicted from?

Real frames rarely come with labels. These measures need only the frame, its camera and the
predicted joints, and each one fails for a class of wrong skeletons while a right one passes:

* :func:`surface_violation`: a right skeleton's joints sit 3-30 mm *behind* the surface the camera
  sees; a wrong one's float in front of it.
* :func:`silhouette_miss`: a right skeleton's joints project onto the hand; a wrong one's beside it
  (background, no measurement, off the frame).
* :func:`bone_length_outliers`: a right skeleton's bones are as long as a 150-220 mm hand's; a
  collapsed or stretched one's are not.
* :func:`finger_fold_outliers`: a right skeleton's finger joints bend less than 150 deg; a wrong one
  folds fingers back onto themselves.
* :func:`hand_uncovered`: a right skeleton's bones run along every finger the camera sees; a wrong
  one leaves fingers without a bone (chains squeezed together, fingertips short, a finger skipped).
* :func:`fingertip_reach` (with :func:`joint_spread_mm`, its labelled counterpart): a right skeleton's
  fingertips reach as far from its centroid as the hand's measured points do; a bunched one's stop short.
* :func:`jitter_mm`: a right skeleton moves as little as the hand between consecutive frames; an
  unsure network's jumps.

Every measure of one frame is a share in [0, 1] (0 = all joints/bones pass), or NaN where it cannot be
judged (no hand found: NaN joints). :func:`quality_report` runs them all over a sequence.

Conventions as in :mod:`srnpose.inference.estimator`: ``depth`` is the frame **as given** (raw units, 0 = no
measurement, possibly mirrored), ``joints_xyz`` (J, 3) are camera-frame mm of the **un-mirrored**
view, ``intrinsics`` those of the un-mirrored view. Projection into the frame as given:
:func:`frame_uvd` (and its inverse :func:`frame_xyz`).
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import numpy as np

from srnpose.cameras import get_camera
from srnpose.geometry import Intrinsics, ViewFlip, uvd_to_xyz, xyz_to_uvd
from srnpose.hand import kinematics as hm
from srnpose.hand import skeleton
from srnpose.synth.poses import sample_pose

__all__ = [
    "SURFACE_TOLERANCE_MM",
    "WINDOW_RADIUS_MM",
    "HAND_BAND_MM",
    "BONE_MARGIN_MM",
    "MAX_BEND_DEG",
    "HAND_LENGTH_RANGE_MM",
    "LABEL_BONE_RANGES_MM",
    "frame_uvd",
    "frame_xyz",
    "surface_gap_mm",
    "surface_violation",
    "silhouette_hits",
    "silhouette_miss",
    "bone_lengths_mm",
    "bone_length_range_mm",
    "bone_length_outliers",
    "finger_fold_outliers",
    "hand_uncovered",
    "joint_spread_mm",
    "fingertip_reach",
    "jitter_mm",
    "PER_FRAME_MEASURES",
    "frame_quality",
    "quality_report",
]

# A joint centre lies inside the finger, 3-30 mm behind the surface the camera sees (NYU's labelled
# frame: 3-32 mm). More than this in FRONT of the surface is impossible for a right joint; the
# allowance covers sensor noise (a few mm) and a right-but-imprecise joint (~10 mm).
SURFACE_TOLERANCE_MM = 15.0
# Image-plane radius (mm at the joint's depth) of the pixel window read around a joint: about a
# finger's radius, so a joint 5-10 mm off a finger's axis still reads that finger, and a few missing
# pixels (holes, edges) do not leave a joint unjudged.
WINDOW_RADIUS_MM = 10.0
# The hand's silhouette: measured pixels within this many mm of the skeleton's median joint depth.
# A hand spans about +-100 mm in depth around its joints' median even when pointing at the camera;
# the body, a table or a wall behind it lie further back.
HAND_BAND_MM = 100.0
# Bone lengths may leave the anatomical range by this much: a right skeleton with ~8 mm joint errors
# (the best published NYU methods) keeps 99.7 % of its bones inside with 8 mm (see LABEL_BONE_RANGES_MM).
BONE_MARGIN_MM = 8.0
# A finger joint (PIP, DIP; the thumb's MCP, IP) bends at most ~110 deg (kinematic hand's limits:
# PIP 110, DIP 85, thumb MCP 65, IP 85); FPHA's real poses reach 145 deg at most. Beyond 150 deg
# the chain folds back onto itself.
MAX_BEND_DEG = 150.0
# hand_uncovered: the hand's measured points are those within HAND_RADIUS_MM of the joints' centroid
# (fingertips of a spread adult hand lie <= ~110 mm from it) and not behind the wrist (the forearm);
# such a point is covered when a bone passes within COVER_MM (a finger's radius plus the 3-30 mm by
# which joint centres lie behind the surface; the palm lies between its wrist-to-knuckle bones).
HAND_RADIUS_MM = 110.0
COVER_MM = 25.0
MIN_HAND_POINTS = 20
# Adult hands, wrist to middle fingertip (the synthetic engine samples 160-210 mm).
HAND_LENGTH_RANGE_MM = (150.0, 220.0)

# Bone-length ranges (mm, min and max) of real dataset labels whose conventions differ from the
# canonical hand that skeleton.convert maps through: the 0.1st and 99.9th percentiles over the
# community's test ground truth (../shared/data/community_eval, uvd -> xyz with the dataset
# intrinsics; NYU 8252 frames, ICVL 1596 frames). For example NYU's wrist points lie 67-81 mm from its
# palm point where the canonical mapping puts them 33-54 mm, and ICVL's finger "mid" and "tip" points
# are 12-37 mm apart where PIP and TIP are 27-63 mm apart. Bone order: the layout's ``bones``.
LABEL_BONE_RANGES_MM: dict[str, tuple[tuple[float, float], ...]] = {
    "nyu": ((18.8, 43.5), (26.8, 50.4), (33.6, 57.2), (28.0, 51.3), (19.3, 24.7), (31.0, 50.5),
            (41.0, 78.9), (33.0, 78.5), (57.6, 84.5), (57.0, 86.0), (42.7, 82.7), (67.2, 81.3),
            (67.2, 81.3)),
    "icvl": ((21.1, 36.1), (43.9, 60.5), (37.0, 58.0), (30.0, 48.4), (30.3, 45.7), (20.9, 43.6),
             (21.5, 31.4), (21.7, 33.4), (11.7, 21.8), (24.2, 37.7), (14.8, 22.9), (21.4, 33.0),
             (14.2, 22.8), (15.2, 25.0), (13.2, 20.6)),
}


# --------------------------------------------------------------------------- projection


def frame_uvd(joints_xyz: np.ndarray, intrinsics: Intrinsics, width: int, mirrored: bool = False) -> np.ndarray:
    """Camera-frame joints (..., 3) mm of the un-mirrored view -> (..., 3) pixels of the frame as given
    (``u`` flipped by :class:`~srnpose.geometry.ViewFlip` for a mirrored frame) and depth mm. Inverse:
    :func:`frame_xyz`."""
    return ViewFlip(width, mirrored).uvd(xyz_to_uvd(np.asarray(joints_xyz, dtype=np.float64), intrinsics))


def frame_xyz(joints_uvd: np.ndarray, intrinsics: Intrinsics, width: int, mirrored: bool = False) -> np.ndarray:
    """Inverse of :func:`frame_uvd`: pixels of the frame as given (..., 3) -> camera-frame mm."""
    return uvd_to_xyz(ViewFlip(width, mirrored).uvd(joints_uvd), intrinsics)


def _check_joints(joints_xyz: Any) -> np.ndarray:
    joints = np.asarray(joints_xyz, dtype=np.float64)
    if joints.ndim != 2 or joints.shape[1] != 3:
        raise ValueError(f"joints_xyz must have shape (J, 3), got {joints.shape}")
    return joints


def _windows(depth: np.ndarray, joints_xyz: np.ndarray, intrinsics: Intrinsics, depth_unit_mm: float,
             mirrored: bool, radius_mm: float) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Per joint: its depth (J,) mm and the measured depths (mm, > 0) in the window of ``radius_mm``
    around its pixel; ``None`` for a joint off the frame or with a non-positive depth."""
    if np.asarray(depth).ndim != 2:
        raise ValueError(f"depth must have shape (H, W), got {np.asarray(depth).shape}")
    h, w = depth.shape
    uvd = frame_uvd(joints_xyz, intrinsics, w, mirrored)  # (J, 3)
    focal = max(abs(intrinsics.fx), abs(intrinsics.fy))
    windows: list[np.ndarray | None] = []
    for u, v, d in uvd:
        if not (np.isfinite(u) and np.isfinite(v) and d > 0):
            windows.append(None)
            continue
        ui, vi = int(np.floor(u + 0.5)), int(np.floor(v + 0.5))
        if not (0 <= ui < w and 0 <= vi < h):
            windows.append(None)
            continue
        r = max(1, int(round(radius_mm * focal / d)))  # px
        patch = depth[max(vi - r, 0): vi + r + 1, max(ui - r, 0): ui + r + 1].astype(np.float64).ravel()
        windows.append(patch[patch > 0] * depth_unit_mm)
    return uvd[:, 2], windows


# --------------------------------------------------------------------------- depth measures


def surface_gap_mm(depth: np.ndarray, joints_xyz: np.ndarray, intrinsics: Intrinsics,
                   depth_unit_mm: float = 1.0, mirrored: bool = False,
                   radius_mm: float = WINDOW_RADIUS_MM) -> np.ndarray:
    """(J,) mm: each joint's depth minus the nearest measured surface within ``radius_mm`` of its pixel.

    Positive: the joint lies behind the surface (a right joint: 3-30 mm, more where the hand occludes
    it). Negative: it floats in front. NaN: not judged (off the frame, no measurement in the window).
    The nearest surface of the window (not the pixel's own) keeps a joint near a finger's edge on
    that finger rather than on the background beside it.
    """
    joints = _check_joints(joints_xyz)
    joint_d, windows = _windows(np.asarray(depth), joints, intrinsics, depth_unit_mm, mirrored, radius_mm)
    return np.array([d - win.min() if win is not None and win.size else np.nan
                     for d, win in zip(joint_d, windows)])


def surface_violation(depth: np.ndarray, joints_xyz: np.ndarray, intrinsics: Intrinsics,
                      depth_unit_mm: float = 1.0, mirrored: bool = False,
                      tolerance_mm: float = SURFACE_TOLERANCE_MM,
                      radius_mm: float = WINDOW_RADIUS_MM) -> float:
    """Share of the judged joints lying more than ``tolerance_mm`` in FRONT of the measured surface.

    Why it separates right from wrong: the camera sees the hand's skin, and every joint centre lies
    inside the hand, so behind the skin at its pixel (3-30 mm for a visible joint, more for one the
    hand occludes). No right joint floats in front of what the camera measured there; a skeleton
    predicted too near the camera, or beside the hand over a background further back, does.
    Blind to joints that are too deep (an occluded joint may be 100 mm behind the surface): see
    :func:`silhouette_miss`. NaN when no joint can be judged.
    """
    gap = surface_gap_mm(depth, joints_xyz, intrinsics, depth_unit_mm, mirrored, radius_mm)
    judged = np.isfinite(gap)
    return float(np.mean(gap[judged] < -tolerance_mm)) if judged.any() else float("nan")


def silhouette_hits(depth: np.ndarray, joints_xyz: np.ndarray, intrinsics: Intrinsics,
                    depth_unit_mm: float = 1.0, mirrored: bool = False,
                    band_mm: float = HAND_BAND_MM,
                    radius_mm: float = WINDOW_RADIUS_MM) -> np.ndarray:
    """(J,) bool: the joint projects onto the hand's silhouette.

    The silhouette: measured pixels whose depth lies within ``band_mm`` of the skeleton's median joint
    depth. A joint hits it when such a pixel lies within ``radius_mm`` of its pixel. A joint off the
    frame misses. All False when the joints are NaN.
    """
    joints = _check_joints(joints_xyz)
    finite = np.isfinite(joints).all(axis=1)
    if not finite.any():
        return np.zeros(len(joints), dtype=bool)
    hand_d = float(np.median(joints[finite, 2]))
    _, windows = _windows(np.asarray(depth), joints, intrinsics, depth_unit_mm, mirrored, radius_mm)
    return np.array([win is not None and bool(np.any(np.abs(win - hand_d) <= band_mm)) for win in windows])


def silhouette_miss(depth: np.ndarray, joints_xyz: np.ndarray, intrinsics: Intrinsics,
                    depth_unit_mm: float = 1.0, mirrored: bool = False,
                    band_mm: float = HAND_BAND_MM,
                    radius_mm: float = WINDOW_RADIUS_MM) -> float:
    """Share of joints projecting off the hand's silhouette (:func:`silhouette_hits`).

    Why: a right joint projects onto the hand, visible or occluded by the hand itself (then onto the
    occluding part, within a hand's depth). A skeleton shifted sideways, too large, or reaching past
    the fingertips puts joints over the background (further than a hand's depth behind), over pixels
    without measurement, or off the frame. It tests the image position only: the joints' own depths
    enter through their median alone, so a skeleton at the right pixels but the wrong depth passes
    here and fails :func:`surface_violation`. NaN when no hand (NaN joints).
    """
    joints = _check_joints(joints_xyz)
    if not np.isfinite(joints).all():
        return float("nan")
    return float(1.0 - np.mean(silhouette_hits(depth, joints, intrinsics, depth_unit_mm, mirrored, band_mm,
                                               radius_mm)))


def _hand_points(depth: np.ndarray, joints: np.ndarray, intrinsics: Intrinsics, depth_unit_mm: float,
                 mirrored: bool, radius_mm: float) -> np.ndarray:
    """(P, 3) camera-frame mm of the measured pixels within ``radius_mm`` of the joints' centroid."""
    h, w = depth.shape
    view = ViewFlip(w, mirrored).frame(depth)
    centre = joints.mean(0)
    c_uvd = xyz_to_uvd(centre, intrinsics)
    focal = max(abs(intrinsics.fx), abs(intrinsics.fy))
    if not (np.isfinite(c_uvd).all() and c_uvd[2] > radius_mm):
        return np.zeros((0, 3))
    r = int(np.ceil(radius_mm * focal / (c_uvd[2] - radius_mm)))  # px: the sphere's largest image radius
    u0, u1 = max(int(c_uvd[0]) - r, 0), min(int(c_uvd[0]) + r + 1, w)
    v0, v1 = max(int(c_uvd[1]) - r, 0), min(int(c_uvd[1]) + r + 1, h)
    if u0 >= u1 or v0 >= v1:
        return np.zeros((0, 3))
    patch = view[v0:v1, u0:u1].astype(np.float64) * depth_unit_mm
    vv, uu = np.nonzero(patch > 0)
    pts = uvd_to_xyz(np.stack([uu + u0, vv + v0, patch[vv, uu]], 1).astype(np.float64), intrinsics)
    return pts[np.linalg.norm(pts - centre, axis=1) <= radius_mm]


def hand_uncovered(depth: np.ndarray, joints_xyz: np.ndarray, intrinsics: Intrinsics,
                   layout: skeleton.Layout | str = "canonical", depth_unit_mm: float = 1.0, mirrored: bool = False,
                   radius_mm: float = HAND_RADIUS_MM, cover_mm: float = COVER_MM) -> float:
    """Share of the hand's measured points that no bone passes near.

    Why: the other measures judge the joints one by one, and a skeleton whose chains are squeezed into
    the middle of a spread hand (every joint on the hand, every bone of a plausible length) passes them
    all. Here the hand's points (measured pixels within ``radius_mm`` of the joints' centroid, except
    those behind the wrist along the wrist-to-middle-knuckle axis: the forearm) must each lie within
    ``cover_mm`` of a bone of ``layout``. A finger without a bone, a short fingertip or a skeleton too
    small for the hand leaves points uncovered. The forearm is cut off at the layout's wrist joints
    (none in ICVL's layout: its forearm points count); NaN when no hand or fewer than
    ``MIN_HAND_POINTS`` points.
    """
    joints = _check_joints(joints_xyz)
    lay = _layout(layout)
    pts = _hand_side_points(depth, joints, intrinsics, lay, depth_unit_mm, mirrored, radius_mm)
    if pts is None:
        return float("nan")
    a = joints[[i for i, _ in lay.bones]]  # (B, 3)
    b = joints[[j for _, j in lay.bones]]
    ab = b - a
    t = np.clip(((pts[:, None] - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0.0, 1.0)  # (P, B)
    dist = np.linalg.norm(pts[:, None] - (a + t[..., None] * ab), axis=-1).min(1)
    return float(np.mean(dist > cover_mm))


def _hand_side_points(depth: np.ndarray, joints: np.ndarray, intrinsics: Intrinsics, lay: skeleton.Layout,
                      depth_unit_mm: float, mirrored: bool, radius_mm: float) -> np.ndarray | None:
    """(P, 3) the hand's measured points of :func:`hand_uncovered` (within ``radius_mm`` of the joints'
    centroid, the forearm's side of the layout's wrist joints left out), or None: too few of them."""
    if not np.isfinite(joints).all() or np.asarray(depth).ndim != 2:
        return None
    pts = _hand_points(np.asarray(depth), joints, intrinsics, depth_unit_mm, mirrored, radius_mm)
    wrists = [i for i, name in enumerate(lay.joint_names) if "wrist" in name]
    if wrists:  # the forearm's side of the wrist is left out
        wrist = joints[wrists].mean(0)
        names = lay.joint_names
        knuckle = joints[names.index("middle_mcp")] if "middle_mcp" in names else joints.mean(0)
        axis = (knuckle - wrist) / max(float(np.linalg.norm(knuckle - wrist)), 1e-9)
        pts = pts[(pts - wrist) @ axis >= 0.0]
    return pts if len(pts) >= MIN_HAND_POINTS else None


def joint_spread_mm(joints_xyz: np.ndarray) -> float:
    """The joints' (J, 3) mean distance to their centroid, mm. A bunched skeleton (fingers curled into
    the palm where the real ones are open or wrap an object) has a smaller one than its labels."""
    joints = _check_joints(joints_xyz)
    return float(np.linalg.norm(joints - joints.mean(0), axis=1).mean())


REACH_QUANTILE = 0.95  # fingertip_reach: the measured hand's extent, robust to a few stray points


def fingertip_reach(depth: np.ndarray, joints_xyz: np.ndarray, intrinsics: Intrinsics,
                    layout: skeleton.Layout | str = "canonical", depth_unit_mm: float = 1.0, mirrored: bool = False,
                    radius_mm: float = HAND_RADIUS_MM) -> float:
    """The label-free analogue of the spread: do the bones reach the fingertips' measured points?

    The fingertip joints' mean distance to the joints' centroid over the hand's extent in the frame
    (the ``REACH_QUANTILE`` distance of the hand's measured points to that centroid; the points of
    :func:`hand_uncovered`). A bunched skeleton, its fingertips short of where the camera sees fingers,
    scores low; compare with the same measure of right skeletons (the synthetic truth of
    ``benchmarks/real_frames.py``, NYU's labels). NaN: no hand, too few points or no fingertip joint."""
    joints = _check_joints(joints_xyz)
    lay = _layout(layout)
    tips = [i for i, name in enumerate(lay.joint_names) if name.endswith("_tip")]
    pts = _hand_side_points(depth, joints, intrinsics, lay, depth_unit_mm, mirrored, radius_mm)
    if pts is None or not tips:
        return float("nan")
    centre = joints.mean(0)
    extent = float(np.quantile(np.linalg.norm(pts - centre, axis=1), REACH_QUANTILE))
    return float(np.linalg.norm(joints[tips] - centre, axis=1).mean()) / max(extent, 1e-9)


# --------------------------------------------------------------------------- skeleton measures


def _layout(layout: skeleton.Layout | str) -> skeleton.Layout:
    return skeleton.get_layout(layout) if isinstance(layout, str) else layout


def bone_lengths_mm(joints_xyz: np.ndarray, layout: skeleton.Layout | str = "canonical") -> np.ndarray:
    """(..., B) lengths of the layout's bones, in its ``bones`` order, from joints (..., J, 3) mm."""
    lay = _layout(layout)
    joints = np.asarray(joints_xyz, dtype=np.float64)
    if joints.shape[-2:] != (lay.num_joints, 3):
        raise ValueError(f"joints must have shape (..., {lay.num_joints}, 3) for layout {lay.name!r}, "
                         f"got {joints.shape}")
    bones = np.asarray(lay.bones)  # (B, 2)
    return np.linalg.norm(joints[..., bones[:, 0], :] - joints[..., bones[:, 1], :], axis=-1)


@functools.lru_cache(maxsize=None)
def _kinematic_canonical_joints(samples: int = 2000, seed: int = 0) -> np.ndarray:
    """(samples, 21, 3) canonical joints of the synthetic engine's kinematic hand: random shapes
    rescaled to a uniform length in HAND_LENGTH_RANGE_MM, random poses of every family."""
    rng = np.random.default_rng(seed)
    out = np.empty((samples, 21, 3))
    for i in range(samples):
        shape = hm.sample_shape(rng)
        k = rng.uniform(*HAND_LENGTH_RANGE_MM) / shape.length_mm
        shape = hm.HandShape(shape.base_xyz_mm * k, shape.bone_length_mm * k, shape.radius_mm, shape.palm_scale,
                             shape.forearm_radius_mm, shape.length_mm * k)
        pose, _ = sample_pose(rng)
        out[i] = hm.forward_kinematics(shape, pose)
    return out


@functools.lru_cache(maxsize=None)
def _bone_range_cached(name: str) -> np.ndarray:
    lay = skeleton.get_layout(name)
    joints = skeleton.convert(_kinematic_canonical_joints(), "canonical", lay)  # (N, J, 3)
    lengths = bone_lengths_mm(joints, lay)  # (N, B)
    lo, hi = lengths.min(axis=0), lengths.max(axis=0)
    if name in LABEL_BONE_RANGES_MM:
        label = np.asarray(LABEL_BONE_RANGES_MM[name])  # (B, 2)
        lo, hi = np.minimum(lo, label[:, 0]), np.maximum(hi, label[:, 1])
    out = np.stack([lo, hi], axis=1)
    out.setflags(write=False)
    return out


def bone_length_range_mm(layout: skeleton.Layout | str = "canonical") -> np.ndarray:
    """(B, 2) min and max length (mm) of each of the layout's bones in anatomical hands.

    Derived from the synthetic engine's kinematic hand (:mod:`srnpose.hand.kinematics`): 2000
    random hand shapes rescaled to lengths of 150-220 mm, in 2000 random poses of the pose sampler,
    mapped to the layout with :func:`srnpose.hand.skeleton.convert`. Bones between canonical joints are
    rigid; the layout's other "bones" (NYU's tip-PIP, finger-palm) span joints and vary with the
    pose, which the sampled poses cover. For NYU and ICVL, whose labels follow other conventions, the
    range is widened to cover the datasets' real labels (:data:`LABEL_BONE_RANGES_MM`).
    Not from FPHA: its labels place the thumb's base 14 mm from the wrist (canonical 25-42 mm) and
    its PIP-DIP spans reach 55 mm, so they describe another convention.
    """
    return _bone_range_cached(_layout(layout).name)


def bone_length_outliers(joints_xyz: np.ndarray, layout: skeleton.Layout | str = "canonical",
                         margin_mm: float = BONE_MARGIN_MM) -> float:
    """Share of the layout's bones longer or shorter than anatomical hands allow, by more than ``margin_mm``.

    Why: a person's bones do not change length, and every adult hand's lie in a known range
    (:func:`bone_length_range_mm`). A right skeleton, even with ~8 mm joint errors, keeps its bones
    in range; a skeleton collapsed towards its centre (a network that predicts the mean), a finger
    stretched onto the background, or joints attached to the wrong finger does not. Position-free: it
    says nothing about where the hand is (see the depth measures). NaN for NaN joints.
    """
    lengths = bone_lengths_mm(_check_joints(joints_xyz), layout)  # (B,)
    if not np.isfinite(lengths).all():
        return float("nan")
    rng = bone_length_range_mm(layout)
    return float(np.mean((lengths < rng[:, 0] - margin_mm) | (lengths > rng[:, 1] + margin_mm)))


def _finger_bends(layout: skeleton.Layout) -> list[tuple[int, int, int]]:
    """(before, joint, after) joint indices of the layout for every finger's two distal bends
    (PIP and DIP; the thumb's canonical PIP and DIP = anatomical MCP and IP). Empty for layouts that
    do not hold all four joints of a finger."""
    names = list(layout.joint_names)
    out = []
    for finger in skeleton.FINGERS:
        chain = [f"{finger}_{j}" for j in skeleton.FINGER_JOINTS]
        if layout.is_permutation and all(n in names for n in chain):
            idx = [names.index(n) for n in chain]
            out += [(idx[0], idx[1], idx[2]), (idx[1], idx[2], idx[3])]
    return out


def finger_fold_outliers(joints_xyz: np.ndarray, layout: skeleton.Layout | str = "canonical",
                         max_bend_deg: float = MAX_BEND_DEG) -> float:
    """Share of finger joints (PIP, DIP of each finger) bending more than ``max_bend_deg``.

    The bend is the angle between a joint's incoming and outgoing bone (0 = straight). Why: finger
    joints flex to ~110 deg at most; a chain bending further folds back on itself, which a right
    skeleton never does and a confused network (fingertip predicted at the knuckle) often does.
    Defined for layouts that hold whole finger chains (canonical, MSRA, HANDS2017); NaN for the
    others and for NaN joints.
    """
    lay = _layout(layout)
    joints = _check_joints(joints_xyz)
    bends = _finger_bends(lay)
    if not bends or not np.isfinite(joints).all():
        return float("nan")
    b = np.asarray(bends)  # (K, 3)
    v1 = joints[b[:, 1]] - joints[b[:, 0]]  # (K, 3)
    v2 = joints[b[:, 2]] - joints[b[:, 1]]
    norms = np.maximum(np.linalg.norm(v1, axis=1) * np.linalg.norm(v2, axis=1), 1e-9)  # (K,)
    cos = np.einsum("kc,kc->k", v1, v2) / norms
    return float(np.mean(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))) > max_bend_deg))


def jitter_mm(joints_seq: np.ndarray, about_centroid: bool = False) -> float:
    """Median per-joint displacement (mm) between consecutive frames of a sequence (T, J, 3).

    Why: a hand moves smoothly; at 30 fps its joints move a few mm per frame. A network that is
    unsure jumps between hypotheses and its joints move tens of mm between frames that look alike.
    ``about_centroid`` first removes each frame's joint centroid, keeping the skeleton's own jitter
    without the hand's (or the crop centre's) global motion. Pairs with a NaN frame (no hand) are
    left out; NaN when no consecutive pair remains. Frames must be consecutive captures.
    """
    seq = np.asarray(joints_seq, dtype=np.float64)
    if seq.ndim != 3 or seq.shape[-1] != 3:
        raise ValueError(f"joints_seq must have shape (T, J, 3), got {seq.shape}")
    if about_centroid:
        seq = seq - seq.mean(axis=1, keepdims=True)
    step = np.linalg.norm(np.diff(seq, axis=0), axis=-1)  # (T-1, J)
    ok = np.isfinite(step).all(axis=1)
    return float(np.median(step[ok])) if ok.any() else float("nan")


# --------------------------------------------------------------------------- reports

PER_FRAME_MEASURES = ("surface_violation", "silhouette_miss", "bone_length_outliers", "finger_fold_outliers",
                      "hand_uncovered")


def frame_quality(depth: np.ndarray, joints_xyz: np.ndarray, intrinsics: Intrinsics,
                  layout: skeleton.Layout | str = "canonical", depth_unit_mm: float = 1.0,
                  mirrored: bool = False) -> dict[str, float]:
    """Every per-frame measure of one frame, by name (:data:`PER_FRAME_MEASURES`)."""
    args = (depth, joints_xyz, intrinsics, depth_unit_mm, mirrored)
    return {"surface_violation": surface_violation(*args), "silhouette_miss": silhouette_miss(*args),
            "bone_length_outliers": bone_length_outliers(joints_xyz, layout),
            "finger_fold_outliers": finger_fold_outliers(joints_xyz, layout),
            "hand_uncovered": hand_uncovered(depth, joints_xyz, intrinsics, layout, depth_unit_mm, mirrored)}


def _camera_fields(camera: Any) -> tuple[Intrinsics, float, bool]:
    """(intrinsics, depth_unit_mm, mirrored) of a preset name, a :class:`~srnpose.cameras.Camera`, or
    anything with those three attributes (e.g. :class:`srnpose.inference.estimator.FrameCamera`)."""
    if isinstance(camera, str):
        camera = get_camera(camera)
    if isinstance(camera, Intrinsics):
        return camera, 1.0, False
    return camera.intrinsics, float(camera.depth_unit_mm), bool(camera.mirrored)


def quality_report(frames: Sequence[np.ndarray], results: Sequence[Any] | np.ndarray, camera: Any,
                   layout: skeleton.Layout | str | None = None) -> dict:
    """All measures over a sequence of frames and their predictions.

    ``frames``: depth frames as given (raw units). ``results``: one :class:`~srnpose.inference.estimator.PoseResult`
    per frame (its ``joints_xyz``, ``hand_found`` and ``layout`` are read) or an array (T, J, 3) of
    camera-frame joints (NaN where no hand; then give ``layout``). ``camera``: a preset name, a
    :class:`~srnpose.cameras.Camera`, a ``FrameCamera`` or bare :class:`Intrinsics` (unit 1 mm, not mirrored).

    Returns ``{"frames", "hands_found", "layout", "mean": {measure: mean over frames with a hand},
    "jitter_mm", "jitter_about_centroid_mm", "per_frame": [{"hand_found", measure: value}, ...]}``.
    Jitter assumes consecutive frames.
    """
    if isinstance(results, np.ndarray):
        joints = np.asarray(results, dtype=np.float64)
        if layout is None:
            raise ValueError("give layout= with joint arrays")
    else:
        joints = np.stack([np.asarray(r.joints_xyz, dtype=np.float64) if r.hand_found
                           else np.full(np.shape(r.joints_xyz), np.nan) for r in results])
        if layout is None:
            layout = results[0].layout if len(results) else "canonical"
    if len(frames) != len(joints):
        raise ValueError(f"{len(frames)} frames but {len(joints)} results")
    K, unit, mirrored = _camera_fields(camera)
    per_frame = []
    for depth, xyz in zip(frames, joints):
        found = bool(np.isfinite(xyz).all())
        row: dict[str, Any] = {"hand_found": found}
        row.update(frame_quality(np.asarray(depth), xyz, K, layout, unit, mirrored) if found
                   else {name: float("nan") for name in PER_FRAME_MEASURES})
        per_frame.append(row)
    mean = {}
    for name in PER_FRAME_MEASURES:
        values = np.array([row[name] for row in per_frame], dtype=np.float64)
        mean[name] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    sequence = len(joints) > 1
    return {"frames": len(per_frame), "hands_found": int(sum(row["hand_found"] for row in per_frame)),
            "layout": _layout(layout).name, "mean": mean,
            "jitter_mm": jitter_mm(joints) if sequence else float("nan"),
            "jitter_about_centroid_mm": jitter_mm(joints, about_centroid=True) if sequence else float("nan"),
            "per_frame": per_frame}
