"""Hand poses within anatomical joint limits, with finger coupling, in recognisable families.

Angles in degrees, see :class:`~srnpose.synth.hand_model.HandPose`. Each finger's flexion is driven
by one *curl* in [0, 1] (MCP, PIP and DIP move together as in real hands: DIP ~ 2/3 PIP), plus
jitter; neighbouring fingers' curls are correlated in random poses.
"""

from __future__ import annotations

import numpy as np

from srnpose.synth.hand_model import HandPose

# (low, high) per chain joint, deg. Thumb: CMC flexion, CMC abduction, MCP flexion, IP flexion.
# Fingers: MCP flexion (negative = hyperextension), MCP abduction (+ radial), PIP, DIP.
THUMB_LIMITS_DEG = np.array([[-15.0, 60.0], [-10.0, 60.0], [-10.0, 65.0], [-15.0, 85.0]])
FINGER_LIMITS_DEG = np.array([[-20.0, 95.0], [-20.0, 20.0], [0.0, 110.0], [-5.0, 85.0]])
LITTLE_ABD_LIMITS_DEG = np.array([-30.0, 20.0])
LIMITS_DEG = np.stack([THUMB_LIMITS_DEG] + [FINGER_LIMITS_DEG] * 4)  # (5, 4, 2)
LIMITS_DEG[4, 1] = LITTLE_ABD_LIMITS_DEG
WRIST_LIMITS_DEG = np.array([[-40.0, 40.0], [-15.0, 25.0]])

# Families and their sampling probabilities.
FAMILIES: dict[str, float] = {
    "open": 0.16, "fist": 0.12, "point": 0.12, "pinch": 0.14, "counting": 0.18, "random": 0.28,
}


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


def sample_pose(rng: np.random.Generator, family: str | None = None) -> tuple[HandPose, str]:
    """A pose of ``family`` (drawn from :data:`FAMILIES` when None), clipped to the joint limits."""
    if family is None:
        names = list(FAMILIES)
        family = names[rng.choice(len(names), p=np.array(list(FAMILIES.values())))]
    if family not in FAMILIES:
        raise ValueError(f"unknown pose family {family!r}; available: {', '.join(FAMILIES)}")
    spread = rng.uniform(0.0, 1.0)
    abd = np.array([0.0, 10.0, 0.0, -8.0, -18.0]) * spread + rng.normal(0.0, 3.0, size=5)
    if family == "open":
        curls = rng.uniform(0.0, 0.18, size=5)
        thumb = thumb_pose("open", rng)
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
