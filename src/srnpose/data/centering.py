"""The crop-centre policy: the one owner of every decision that places a crop.

Training, validation, evaluation, ``predict``, ``live``, export checks and the benchmarks all ask a
:class:`CenterPolicy` built from the run's config (:meth:`CenterPolicy.from_config`), so the crops a
model trains on and the crops it meets at test time come from the same rules:

=========  ==================================================  ===================================
rule       training crops                                      test-time passes
=========  ==================================================  ===================================
joints     the labelled joints' 3D centroid (+ augmentation)   1 (a label-free run needs a centre:
                                                               the hand found in the depth map)
depth      the hand found in the depth map                     1
mixed      30 %: the hand found in the depth map (pass 1);     2: the depth map's hand, then the
           70 %: the joints' centroid + N(0, 6 mm) per axis    first pass's joints' centroid where
           (what pass 2 sees)                                  that is SETTLED_MM or more away
=========  ==================================================  ===================================

The hand is found by :func:`srnpose.geometry.find_hand_center` with the run's cube and the
``near_mm``/``far_mm`` range below. A frame where it finds nothing has no hand: inference reports
``hand_found=False`` and evaluation counts it; no label places a test crop. Only *training* falls back
to the labelled joints' centroid for such a frame (it has the labels anyway, and the frame still
teaches the network).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from srnpose import geometry
from srnpose.geometry import Intrinsics

__all__ = [
    "CenterRule",
    "CENTER_RULES",
    "NEAR_MM",
    "FAR_MM",
    "DEFAULT_CUBE_MM",
    "MIXED_DEPTH_SHARE",
    "REFINE_JITTER_MM",
    "SETTLED_MM",
    "MIXED_PASSES",
    "MAX_PASSES",
    "FINDER_TRUST_MM",
    "LOCATED_MARGIN",
    "LOCATED_TRUST_MM",
    "LOCATED_DEPTH_WEIGHT",
    "CenterPolicy",
    "joints_centroid_uvd",
]

CenterRule = Literal["joints", "depth", "mixed"]
CENTER_RULES: tuple[str, ...] = typing.get_args(CenterRule)
NEAR_MM = 100.0  # nearer than this is sensor noise (every depth camera's minimum range is larger)
FAR_MM = 1500.0  # a hand held towards the camera is nearer than 1.5 m
DEFAULT_CUBE_MM = 250.0  # a hand's cube when a config names none (synthetic hands, ICVL)
# rule "mixed": the share of depth-map-centred training crops, and the per-axis standard deviation (mm)
# of the centroid jitter of the others. The first pass's joint centroid lands a median 7 mm (3D) from
# the true one on synthetic test frames; N(0, 6 mm) per axis gives a median of 9 mm.
MIXED_DEPTH_SHARE = 0.3
REFINE_JITTER_MM = 6.0
# A later pass runs only where it would move the crop by at least this much (3D, mm): a first crop this
# near the joints' centroid is already as near as the later-pass training crops (their N(0, 6 mm) per
# axis puts them a median 9 mm off). On the 30 Kinect V2 frames the shipped model's first crop lies 1-17
# mm (median 7) from its joints' centroid; the rule reruns the network on 7 of them, and the fitted
# label-free measures moved by at most .003 either way against always two passes (benchmarks/fit_frames.py
# --passes 2 against the default) for 2 ms a frame less.
SETTLED_MM = 10.0
# Passes of a "mixed" model, at most (each later one only where it moves the crop by SETTLED_MM): a third
# pass brings a first crop that landed on a forearm or a second hand's edge the rest of the way. Shipped
# model, benchmarks/hand_finding.py --passes 3 against 2 (200 frames per family, LOCATED_MARGIN 0.6):
# last crop within 30 mm of the joints' centroid, engine v3 third person .87 / .85, first person .89 /
# .81, hand+object .87 / .86, close range .99 / .98, turned .92 / .90; v2 .89 / .87, .94 / .86, .97 /
# .97, .99 / .97. On the 30 Kinect V2 frames, the NYU frame and the room frames the third pass never
# ran (every label-free measure identical; benchmarks/fit_frames.py --passes).
MIXED_PASSES = 3
MAX_PASSES = 8  # an upper bound on test-time passes (each one reruns the whole network)
# Training only: a hand search that lands farther than this from the labelled joints' centroid found
# something else (a torso nearer than the hand, a forearm pointing at the camera). Such a crop teaches
# nothing the test-time locator should see; the joints' centroid, jittered as a refinement pass's crop,
# replaces it. On round 1's close-range scenes the search is a median 33 mm off; 80 mm is past its tail.
FINDER_TRUST_MM = 80.0
# Test time with a hand locator (srnpose.locator: where the hand is, its joints' centroid, and whether
# there is one): the locator's centre stands in for the labelled centroid of the rule above
# (locate_near). The hand's neighbourhood searched when the whole-frame search found something else:
# the guess's cube times this (a smaller cube keeps a nearer forearm or torso out of it). A search's
# centre this near the guess is taken (FINDER_TRUST_MM from the hand, plus the locator's own error),
# the depth difference counted at LOCATED_DEPTH_WEIGHT: the locator's depth is its weakest output on
# real frames (a median 25 mm behind the search's centre on the Kinect V2 frames, 110 mm on one).
# Chosen on benchmarks/hand_finding.py's synthetic families (last crop within 30 mm of the joints'
# centroid: 90 mm and 0.5 against 100 mm and 1.0: third person 0.89 / 0.87, first person 0.90 / 0.91,
# hand with object 0.94 / 0.93, close range 0.99 / 0.99) and the NYU frame (82 mm from the search).
# With two passes LOCATED_MARGIN 0.4 read v3's first person better than 0.6 (.86 against .81 within 30
# mm, 200 frames per family), but it put the first-person sample frame's crop 125 mm behind the hand (139 mm
# against 28 mm); with three passes (MIXED_PASSES) 0.6 reads the families as well (v3 third, first,
# hand+object, close range, turned .87 / .86, .89 / .90, .87 / .87, .99 / .99, .92 / .95 against 0.4;
# v2 .89 / .89, .94 / .93, .97 / .97, .99 / .99) and keeps that frame: 0.6 stays.
LOCATED_MARGIN = 0.6
LOCATED_TRUST_MM = 90.0
LOCATED_DEPTH_WEIGHT = 0.5


def joints_centroid_uvd(joints_uvd: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """The 3D centroid of joints (J, 3) uvd, as uvd (3,)."""
    xyz = geometry.uvd_to_xyz(np.asarray(joints_uvd, dtype=np.float64), intrinsics)
    return geometry.xyz_to_uvd(xyz.mean(axis=0), intrinsics)


@dataclass(frozen=True)
class CenterPolicy:
    """Where crops go. ``cube_mm`` (3,) is the crop's metric cube; ``passes`` the test-time passes at
    most (:meth:`settled` skips the ones that would not move the crop)."""

    rule: str = "depth"
    cube_mm: tuple[float, float, float] = (DEFAULT_CUBE_MM,) * 3
    near_mm: float = NEAR_MM
    far_mm: float = FAR_MM
    stride: int = geometry.CENTER_STRIDE  # the hand search's pixel stride (1 = every pixel)
    passes: int = 1
    settled_mm: float = SETTLED_MM  # a later pass runs only where it moves the crop at least this far (0: always)

    def __post_init__(self) -> None:
        if self.rule not in CENTER_RULES:
            raise ValueError(f"centre rule {self.rule!r} is not one of {', '.join(CENTER_RULES)}")
        if not 1 <= int(self.passes) <= MAX_PASSES:
            raise ValueError(f"passes must be in [1, {MAX_PASSES}], got {self.passes}")
        object.__setattr__(self, "cube_mm", tuple(float(c) for c in np.broadcast_to(self.cube_mm, (3,))))

    @staticmethod
    def default_passes(rule: str) -> int:
        """Test-time passes (at most: :meth:`settled`) of a model trained with ``rule``: MIXED_PASSES
        for "mixed", else 1."""
        return MIXED_PASSES if rule == "mixed" else 1

    @classmethod
    def for_rule(cls, rule: str, cube_mm: Any = DEFAULT_CUBE_MM, passes: int | None = None,
                 **kwargs: Any) -> CenterPolicy:
        return cls(rule, tuple(np.broadcast_to(np.asarray(cube_mm, dtype=float), (3,))),
                   passes=cls.default_passes(rule) if passes is None else int(passes), **kwargs)

    @classmethod
    def from_config(cls, config: Any) -> CenterPolicy:
        """The policy of a run config (its ``data`` section: ``center``, ``cube_mm``): as saved beside
        every checkpoint (a dict) or resolved for training (a :class:`~srnpose.training.run_config.RunConfig`).
        A bare model config (no data section) gets rule "depth" and the default cube."""
        data = (config or {}).get("data") if isinstance(config, dict) or config is None else config.data
        if data is not None and not isinstance(data, dict):  # a resolved DataConfig
            data = {"center": data.center, "cube_mm": data.cube_mm}
        data = data or {}
        return cls.for_rule(str(data.get("center") or "depth"), data.get("cube_mm") or DEFAULT_CUBE_MM)

    @property
    def cube(self) -> np.ndarray:
        return np.asarray(self.cube_mm, dtype=np.float64)

    def with_passes(self, passes: int) -> CenterPolicy:
        from dataclasses import replace

        return replace(self, passes=int(passes))

    # ------------------------------------------------------------------ test time

    def locate(self, view: np.ndarray, intrinsics: Intrinsics, depth_unit_mm: float = 1.0) -> np.ndarray | None:
        """The first pass's centre (u, v, d) in ``view``'s pixels, or None: no hand in range."""
        return geometry.find_hand_center(view, intrinsics, self.cube, self.near_mm, self.far_mm,
                                         depth_unit_mm=depth_unit_mm, stride=self.stride)

    def locate_near(self, view: np.ndarray, intrinsics: Intrinsics, guess_uvd: np.ndarray,
                    depth_unit_mm: float = 1.0) -> np.ndarray:
        """The first pass's centre (u, v, d) of a hand a locator found at ``guess_uvd`` (its estimate of
        the joints' centroid), by the rule training crops are placed with (:meth:`training_center`),
        the guess standing in for the labelled centroid. Rule "joints": the guess. Rules "depth" and
        "mixed": the whole-frame search's centre where it agrees with the guess (within
        ``LOCATED_TRUST_MM``, depth counted at ``LOCATED_DEPTH_WEIGHT``: then it is exactly
        :meth:`locate`, a frame where the search finds the hand is cropped as without a locator); else
        the search on the guess's neighbourhood alone (:func:`srnpose.geometry.find_hand_center_near`,
        the cube times ``LOCATED_MARGIN``: the hand's surface, not a nearer torso or forearm) where it
        agrees; else the guess."""
        guess = np.asarray(guess_uvd, dtype=np.float64).reshape(3)
        if self.rule == "joints":
            return guess
        guess_xyz = geometry.uvd_to_xyz(guess, intrinsics)
        weight = np.array([1.0, 1.0, LOCATED_DEPTH_WEIGHT])
        for search in (lambda: self.locate(view, intrinsics, depth_unit_mm),
                       lambda: geometry.find_hand_center_near(view, intrinsics, guess, float(np.max(self.cube)),
                                                              self.near_mm, self.far_mm, LOCATED_MARGIN,
                                                              depth_unit_mm)):
            found = search()
            if found is not None and np.linalg.norm((geometry.uvd_to_xyz(found, intrinsics) - guess_xyz) * weight) \
                    <= LOCATED_TRUST_MM:
                return found
        return guess

    @staticmethod
    def recentre(joints_xyz: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
        """The next pass's centre: the centroid of the previous pass's joints (J, 3) mm, as uvd (3,)."""
        return geometry.xyz_to_uvd(np.asarray(joints_xyz, dtype=np.float64).mean(axis=0), intrinsics)

    def settled(self, center_uvd: np.ndarray, next_uvd: np.ndarray, intrinsics: Intrinsics) -> bool:
        """Whether the next pass is not run: its centre ``next_uvd`` (:meth:`recentre`) lies within
        ``settled_mm`` (3D) of the crop's centre ``center_uvd``."""
        shift = geometry.uvd_to_xyz(np.asarray(next_uvd, dtype=np.float64), intrinsics) \
            - geometry.uvd_to_xyz(np.asarray(center_uvd, dtype=np.float64), intrinsics)
        return bool(np.linalg.norm(shift) < self.settled_mm)

    # ------------------------------------------------------------------ training

    def training_center(self, depth_mm: np.ndarray, joints_uvd: np.ndarray, intrinsics: Intrinsics,
                        rng: np.random.Generator | None) -> np.ndarray:
        """A training crop's centre for a labelled frame, by the rule (before augmentation).

        ``rng`` None (a deterministic crop) gives the first pass's crop under "mixed"."""
        rule = self.rule
        if rule == "mixed":
            if rng is not None and rng.random() >= MIXED_DEPTH_SHARE:  # a later pass's crop
                joints_xyz = geometry.uvd_to_xyz(np.asarray(joints_uvd, dtype=np.float64), intrinsics)
                return self.recentre(joints_xyz + rng.normal(0.0, REFINE_JITTER_MM, 3), intrinsics)
            rule = "depth"
        if rule == "depth":
            found = self.locate(depth_mm, intrinsics)
            centroid = joints_centroid_uvd(joints_uvd, intrinsics)
            if found is not None and np.linalg.norm(geometry.uvd_to_xyz(found, intrinsics)
                                                    - geometry.uvd_to_xyz(centroid, intrinsics)) <= FINDER_TRUST_MM:
                return found
            if found is not None and rng is not None:  # the search found something else than the hand
                joints_xyz = geometry.uvd_to_xyz(np.asarray(joints_uvd, dtype=np.float64), intrinsics)
                return self.recentre(joints_xyz + rng.normal(0.0, REFINE_JITTER_MM, 3), intrinsics)
        return joints_centroid_uvd(joints_uvd, intrinsics)
