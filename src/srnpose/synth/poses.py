"""Hand poses within anatomical joint limits, with finger coupling, in recognisable families.

Angles in degrees, see :class:`~srnpose.hand.kinematics.HandPose`. Each finger's flexion is driven
by one *curl* in [0, 1] (MCP, PIP and DIP move together as in real hands: DIP ~ 2/3 PIP), plus
jitter; neighbouring fingers' curls are correlated in random poses.

The ``prior`` family draws real hands instead: a row of the shipped table ``pose_prior.npz`` (the
kinematic hand fitted to the 29,681 FPHA poses by ``benchmarks/build_pose_prior.py``; FPHA,
Garcia-Hernando et al., CVPR 2018, research use, derived joint angles only), with Gaussian noise per
angle. See :func:`load_pose_prior` and :func:`prior_chain`.

The ``gesture`` family (engine v3) draws the poses people make on purpose from :data:`GESTURES`, one
explicit angle table per named pose; each angle is uniform in its (low, high) range, all within
:data:`LIMITS_DEG` (checked by the tests). Finger states (MCP flex, MCP abduction, PIP, DIP), deg:

============  ==========  ==========  =========  =========  =========================================
state         MCP flex    MCP abd     PIP        DIP        as in
============  ==========  ==========  =========  =========  =========================================
straight      -10..10     own range   0..12      0..10      pointing's index, V, five
curled        75..95      -4..4       90..110    55..80     fist, the folded fingers of pointing, V
claw          0..30       own range   75..105    50..80     claw
pinch         30..40      -4..4       44..54     37..47     pinch's and OK's index (tip on the thumb)
relaxed       5..30       own range   10..35     5..25      pinch's other fingers
============  ==========  ==========  =========  =========  =========================================

Thumb states (CMC flex, CMC abd, MCP flex, IP flex), deg: ``out`` (-15..5, 25..55, -10..10, -15..10),
``folded`` over the middle phalanges (25..50, 0..20, 20..50, 15..50), ``opposed`` to the index tip
(-3..7, 1..11, 16..26, 16..26: with the index's ``pinch`` state the kinematic hand's thumb and index
tips meet, median ~8 mm apart centre to centre, fitted by search on the hand model), ``up`` along the fist (-15..5, 0..25, -10..10, -15..5), ``claw``
(10..35, 20..45, 10..35, 20..50). Gestures: pointing, v, pinch, ok, thumbs_up, one to five (index
first; three = index, middle, ring; four keeps the thumb folded), claw, fist. Spread abduction
("own range") per finger: index 0..12, middle -4..4, ring -10..0, little -20..-5 (V: index 8..18,
middle -12..-4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from srnpose.hand.kinematics import HandPose

# (low, high) per chain joint, deg. Thumb: CMC flexion, CMC abduction, MCP flexion, IP flexion.
# Fingers: MCP flexion (negative = hyperextension), MCP abduction (+ radial), PIP, DIP.
THUMB_LIMITS_DEG = np.array([[-15.0, 60.0], [-10.0, 60.0], [-10.0, 65.0], [-15.0, 85.0]])
FINGER_LIMITS_DEG = np.array([[-20.0, 95.0], [-20.0, 20.0], [0.0, 110.0], [-5.0, 85.0]])
LITTLE_ABD_LIMITS_DEG = np.array([-30.0, 20.0])
LIMITS_DEG = np.stack([THUMB_LIMITS_DEG] + [FINGER_LIMITS_DEG] * 4)  # (5, 4, 2)
LIMITS_DEG[4, 1] = LITTLE_ABD_LIMITS_DEG
WRIST_LIMITS_DEG = np.array([[-40.0, 40.0], [-15.0, 25.0]])

# Families and their sampling probabilities: the hand-made families (engine v1), and the mix with real
# hands (engine v2): "prior" takes half, the hand-made families share the other half in their v1
# proportions; they cover poses that FPHA's grasps rarely show (counting, pointing, spread open hands).
FAMILIES: dict[str, float] = {
    "open": 0.16, "fist": 0.12, "point": 0.12, "pinch": 0.14, "counting": 0.18, "random": 0.28,
}
PRIOR_SHARE = 0.5
FAMILIES_WITH_PRIOR: dict[str, float] = {**{k: v * (1 - PRIOR_SHARE) for k, v in FAMILIES.items()},
                                         "prior": PRIOR_SHARE}
# Engine v2: "spread" (an open hand with the fingers spread wide, as people show a hand to a camera: the
# real Kinect V2 frames spread index to little finger by 60-70 degrees, the "open" family by at most
# ~45) takes 10 % from the hand-made share.
SPREAD_SHARE = 0.1
FAMILIES_V2: dict[str, float] = {**{k: v * (1 - PRIOR_SHARE - SPREAD_SHARE) for k, v in FAMILIES.items()},
                                 "prior": PRIOR_SHARE, "spread": SPREAD_SHARE}
# The gesture family (engine v3, weights in srnpose.synth.engines.V3_WEIGHTS) is drawn by name only.
ALL_FAMILIES = tuple(FAMILIES_V2) + ("gesture",)

# Gesture tables (see the module docstring): finger and thumb states as (4, 2) (low, high) degrees.
_SPREAD_ABD = {1: (0.0, 12.0), 2: (-4.0, 4.0), 3: (-10.0, 0.0), 4: (-20.0, -5.0)}
FINGER_STATES_DEG: dict[str, tuple[tuple[float, float], ...]] = {
    "straight": ((-10.0, 10.0), (0.0, 0.0), (0.0, 12.0), (0.0, 10.0)),
    "curled": ((75.0, 95.0), (-4.0, 4.0), (90.0, 110.0), (55.0, 80.0)),
    "claw": ((0.0, 30.0), (0.0, 0.0), (75.0, 105.0), (50.0, 80.0)),
    "pinch": ((30.0, 40.0), (-4.0, 4.0), (44.0, 54.0), (37.0, 47.0)),
    "relaxed": ((5.0, 30.0), (0.0, 0.0), (10.0, 35.0), (5.0, 25.0)),
}
FINGER_STATES_OWN_ABD = ("straight", "claw", "relaxed")  # abduction from _SPREAD_ABD (or the gesture's)
THUMB_STATES_DEG: dict[str, tuple[tuple[float, float], ...]] = {
    "out": ((-15.0, 5.0), (25.0, 55.0), (-10.0, 10.0), (-15.0, 10.0)),
    "folded": ((25.0, 50.0), (0.0, 20.0), (20.0, 50.0), (15.0, 50.0)),
    "opposed": ((-3.0, 7.0), (1.0, 11.0), (16.0, 26.0), (16.0, 26.0)),
    "up": ((-15.0, 5.0), (0.0, 25.0), (-10.0, 10.0), (-15.0, 5.0)),
    "claw": ((10.0, 35.0), (20.0, 45.0), (10.0, 35.0), (20.0, 50.0)),
}


@dataclass(frozen=True)
class Gesture:
    """A named pose: the thumb's state, the four fingers' states (index to little) and abduction
    ranges that replace the spread ones (finger index 1-4 -> (low, high) deg)."""

    thumb: str
    fingers: tuple[str, str, str, str]
    abd_deg: dict[int, tuple[float, float]] = field(default_factory=dict)


GESTURES: dict[str, Gesture] = {
    "pointing": Gesture("folded", ("straight", "curled", "curled", "curled")),
    "v": Gesture("folded", ("straight", "straight", "curled", "curled"), {1: (8.0, 18.0), 2: (-12.0, -4.0)}),
    "pinch": Gesture("opposed", ("pinch", "relaxed", "relaxed", "relaxed")),
    "ok": Gesture("opposed", ("pinch", "straight", "straight", "straight")),
    "thumbs_up": Gesture("up", ("curled", "curled", "curled", "curled")),
    "one": Gesture("folded", ("straight", "curled", "curled", "curled")),
    "two": Gesture("folded", ("straight", "straight", "curled", "curled")),
    "three": Gesture("folded", ("straight", "straight", "straight", "curled")),
    "four": Gesture("folded", ("straight", "straight", "straight", "straight")),
    "five": Gesture("out", ("straight", "straight", "straight", "straight")),
    "claw": Gesture("claw", ("claw", "claw", "claw", "claw")),
    "fist": Gesture("folded", ("curled", "curled", "curled", "curled")),
}


def gesture_ranges_deg(name: str) -> np.ndarray:
    """(5, 4, 2) (low, high) degrees of gesture ``name``'s chain angles (abduction: the gesture's own
    range, else the spread range for the states that keep their own abduction)."""
    if name not in GESTURES:
        raise ValueError(f"unknown gesture {name!r}; available: {', '.join(GESTURES)}")
    g = GESTURES[name]
    out = np.zeros((5, 4, 2))
    out[0] = THUMB_STATES_DEG[g.thumb]
    for f, state in enumerate(g.fingers, start=1):
        out[f] = FINGER_STATES_DEG[state]
        if f in g.abd_deg:
            out[f, 1] = g.abd_deg[f]
        elif state in FINGER_STATES_OWN_ABD:
            out[f, 1] = _SPREAD_ABD[f]
    return out


def sample_gesture(rng: np.random.Generator, name: str | None = None) -> tuple[HandPose, str]:
    """A pose of gesture ``name`` (uniform over :data:`GESTURES` when None): each chain angle uniform in
    its range, clipped to the limits; wrist and cup drawn as in the other families. Returns the pose
    and the gesture's name."""
    if name is None:
        name = list(GESTURES)[int(rng.integers(len(GESTURES)))]
    ranges = gesture_ranges_deg(name)
    chain = np.clip(rng.uniform(ranges[..., 0], ranges[..., 1]), LIMITS_DEG[..., 0], LIMITS_DEG[..., 1])
    wrist = np.clip(rng.normal(0.0, [15.0, 8.0]), WRIST_LIMITS_DEG[:, 0], WRIST_LIMITS_DEG[:, 1])
    curl = np.clip((chain[1:, 0] + 10.0) / 100.0, 0.0, 1.0)
    cup = float(rng.uniform(0.0, 1.0) * (0.4 + 0.6 * curl.mean()))
    return HandPose(chain, wrist, cup), name


@dataclass(frozen=True)
class HandDraw:
    """How a frame's hand is drawn: pose-family weights, the palm's width range (relative to the
    nominal hand, ``hand_model.sample_shape``), the share of left hands (mirrored right hands) and
    whether a held object's grasp closes the fingers on it (``synth.grasp``, engine v3)."""

    poses: dict[str, float] = field(default_factory=lambda: dict(FAMILIES))
    palm_width: tuple[float, float] = (0.9, 1.1)
    left_share: float = 0.5
    close_grasps: bool = False


HANDS_V1 = HandDraw()
# v2: palms 0-20 % wider than v1's nominal 72 mm (knuckle breadth, at 181 mm hand length): real adult
# palms are 77-89 mm (female, male means) and the Kinect V2 hands measure ~100 mm across the palm.
# Right hands only (v1 drew half of them left): one depth view cannot tell a right palm from a left
# hand's back (their silhouettes are mirror images), so a model of both hands guesses and mirrors
# real hands (measured: the demo-size v2 model with both hands put the NYU frame's thumb on the little
# finger's side, 63.6 mm; right hands only, 28.8 mm). NYU, ICVL and MSRA label right hands too;
# inference reads a left hand as its mirror image (``handedness="left"``, srnpose.inference.estimator).
HANDS_V2 = HandDraw(dict(FAMILIES_V2), (1.05, 1.3), left_share=0.0)

# The "prior" family: the shipped table, the noise added to each angle of a drawn row, and the DIP/PIP
# ratio its fingers are re-coupled to (see prior_chain).
POSE_PRIOR_PATH = Path(__file__).with_name("pose_prior.npz")
PRIOR_NOISE_DEG = 3.0
PRIOR_DIP_PER_PIP = 0.67  # as finger_from_curl: DIP ~ 2/3 PIP


@dataclass(frozen=True)
class PosePrior:
    """The real-hand angle table (``pose_prior.npz``), rows = poses."""

    chain_deg: np.ndarray  # (N, 5, 4) float32, HandPose.chain_deg as fitted
    residual_mm: np.ndarray  # (N,) mean joint distance of the fit
    sequence: np.ndarray  # (N,) index into sequence_names
    sequence_names: tuple[str, ...]
    attribution: str


@lru_cache(maxsize=1)
def load_pose_prior(path: Path = POSE_PRIOR_PATH) -> PosePrior:
    """The real-hand angle table shipped with the package (loaded once, cached)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"pose prior table not found: {path} (build it with benchmarks/build_pose_prior.py)")
    with np.load(path) as table:
        return PosePrior(table["chain_deg"].astype(np.float32), table["residual_mm"].astype(np.float32),
                         table["sequence"].astype(np.int64), tuple(str(n) for n in table["sequence_names"]),
                         str(table["attribution"]))


def prior_chain(chain_deg: np.ndarray) -> np.ndarray:
    """A table row's chain angles (5, 4) as the ``prior`` family uses them: each finger's PIP and DIP
    re-split in the ratio :data:`PRIOR_DIP_PER_PIP`, keeping their sum (the distal phalanx's direction)
    and the MCP. FPHA's labels come from fingertip sensors and an IK that leaves the PIP exactly straight
    under a bent DIP in about half of its poses (and PIP and DIP uncorrelated), which real fingers cannot
    do; the sum is what the sensors determine. The thumb is kept as fitted."""
    chain = np.array(chain_deg, dtype=np.float64)
    total = chain[1:, 2] + chain[1:, 3]
    chain[1:, 2] = total / (1.0 + PRIOR_DIP_PER_PIP)
    chain[1:, 3] = total - chain[1:, 2]
    return chain


def finger_from_curl(curl: float, abd_deg: float, rng: np.random.Generator) -> np.ndarray:
    """(MCP flex, MCP abd, PIP, DIP) of a long finger at ``curl`` in [0, 1] (0 straight, 1 fist)."""
    mcp = -10.0 + 100.0 * curl + rng.normal(0.0, 6.0)
    pip = 105.0 * curl ** 0.8 + rng.normal(0.0, 6.0)
    dip = 0.67 * pip + rng.normal(0.0, 5.0)
    return np.array([mcp, abd_deg * (1.0 - 0.7 * curl), pip, dip])


def thumb_pose(kind: str, rng: np.random.Generator) -> np.ndarray:
    """(CMC flex, CMC abd, MCP flex, IP flex) for a thumb ``open``, ``folded`` (over the palm or the
    fingers), ``opposed`` (pinching) or ``random``."""
    if kind == "open":
        return np.array([rng.uniform(-15, 10), rng.uniform(0, 35), rng.uniform(-10, 15), rng.uniform(-15, 20)])
    if kind == "folded":
        return np.array([rng.uniform(25, 50), rng.uniform(0, 20), rng.uniform(20, 50), rng.uniform(15, 50)])
    if kind == "opposed":
        return np.array([rng.uniform(20, 40), rng.uniform(35, 60), rng.uniform(5, 30), rng.uniform(0, 30)])
    low, high = THUMB_LIMITS_DEG[:, 0], THUMB_LIMITS_DEG[:, 1]
    return rng.uniform(low, high)


def sample_pose(rng: np.random.Generator, family: str | None = None,
                families: dict[str, float] | None = None) -> tuple[HandPose, str]:
    """A pose of ``family`` (drawn from ``families``, default :data:`FAMILIES`, when None), clipped to
    the joint limits."""
    if family is None:
        table = FAMILIES if families is None else families
        names = list(table)
        family = names[rng.choice(len(names), p=np.array(list(table.values())))]
    if family not in ALL_FAMILIES:
        raise ValueError(f"unknown pose family {family!r}; available: {', '.join(ALL_FAMILIES)}")
    if family == "prior":
        return _sample_prior(rng), family
    if family == "gesture":
        return sample_gesture(rng)[0], family
    spread = rng.uniform(0.0, 1.0)
    abd = np.array([0.0, 10.0, 0.0, -8.0, -18.0]) * spread + rng.normal(0.0, 3.0, size=5)
    if family == "open":
        curls = rng.uniform(0.0, 0.18, size=5)
        thumb = thumb_pose("open", rng)
    elif family == "spread":
        curls = rng.uniform(0.0, 0.12, size=5)
        abd = np.array([0.0, rng.uniform(12, 20), rng.uniform(-4, 4), rng.uniform(-18, -10), rng.uniform(-30, -20)])
        thumb = np.array([rng.uniform(-15, 5), rng.uniform(30, 60), rng.uniform(-10, 10), rng.uniform(-15, 10)])
    elif family == "fist":
        curls = rng.uniform(0.85, 1.0, size=5)
        abd *= 0.2
        thumb = thumb_pose("folded", rng)
    elif family == "point":
        curls = rng.uniform(0.8, 1.0, size=5)
        curls[1] = rng.uniform(0.0, 0.15)
        thumb = thumb_pose("folded" if rng.random() < 0.6 else "open", rng)
    elif family == "pinch":
        curls = rng.uniform(0.0, 1.0, size=5) if rng.random() < 0.5 else rng.uniform(0.0, 0.3, size=5)
        curls[1] = rng.uniform(0.35, 0.6)
        if rng.random() < 0.4:  # the middle finger joins a three-finger pinch
            curls[2] = rng.uniform(0.35, 0.6)
        thumb = thumb_pose("opposed", rng)
    elif family == "counting":
        count = int(rng.integers(1, 6))
        order = [1, 2, 3, 4] if rng.random() < 0.7 else [0, 1, 2, 3]  # index first, or thumb first
        curls = rng.uniform(0.8, 1.0, size=5)
        extended = {0} if count == 5 else set()
        extended |= set(order[:min(count, 4)])
        for f in extended:
            curls[f] = rng.uniform(0.0, 0.12)
        thumb = thumb_pose("open" if 0 in extended else "folded", rng)
    else:  # random, with neighbouring fingers coupled
        common = rng.uniform(0.0, 1.0)
        own = rng.uniform(0.0, 1.0, size=5)
        mix = rng.uniform(0.2, 0.8)
        curls = np.clip(mix * common + (1 - mix) * own, 0.0, 1.0)
        curls[4] = 0.6 * curls[4] + 0.4 * curls[3]  # ring and little move together
        thumb = thumb_pose("random", rng)
    chain = np.zeros((5, 4))
    chain[0] = thumb
    for f in range(1, 5):
        chain[f] = finger_from_curl(float(curls[f]), float(abd[f]), rng)
    chain = np.clip(chain, LIMITS_DEG[..., 0], LIMITS_DEG[..., 1])
    wrist = np.clip(rng.normal(0.0, [15.0, 8.0]), WRIST_LIMITS_DEG[:, 0], WRIST_LIMITS_DEG[:, 1])
    cup = float(rng.uniform(0.0, 1.0) * (0.4 + 0.6 * curls[1:].mean()))
    return HandPose(chain, wrist, cup), family


def _sample_prior(rng: np.random.Generator) -> HandPose:
    """A real hand: a uniform row of the table, re-coupled (:func:`prior_chain`), plus Gaussian noise of
    :data:`PRIOR_NOISE_DEG` per angle, clipped to the limits. The wrist (which the 21 joints do not
    determine) and the cup (FPHA's palm is rigid) are drawn as in the other families."""
    table = load_pose_prior().chain_deg
    chain = prior_chain(table[int(rng.integers(len(table)))]) + rng.normal(0.0, PRIOR_NOISE_DEG, size=(5, 4))
    chain = np.clip(chain, LIMITS_DEG[..., 0], LIMITS_DEG[..., 1])
    wrist = np.clip(rng.normal(0.0, [15.0, 8.0]), WRIST_LIMITS_DEG[:, 0], WRIST_LIMITS_DEG[:, 1])
    curl = np.clip((chain[1:, 0] + 10.0) / 100.0, 0.0, 1.0)  # MCP flexion as finger_from_curl's curl
    cup = float(rng.uniform(0.0, 1.0) * (0.4 + 0.6 * curl.mean()))
    return HandPose(chain, wrist, cup)
