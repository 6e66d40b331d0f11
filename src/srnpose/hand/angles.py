"""Joint angles and a skeleton with constant bone lengths: the kinematic hand fitted to predictions.

``fit_angles(results)`` takes the :class:`~srnpose.inference.estimator.PoseResult` of a sequence (one hand, in
order; a single frame is a sequence of one) and fits the kinematic hand of :mod:`srnpose.hand.ik`
through it (:func:`srnpose.hand.ik.fit_sequence`): one hand shape for the whole sequence, per frame
the pose within the joint limits (:data:`srnpose.synth.poses.LIMITS_DEG`) and the rigid frame. Each
result gets

* ``joint_angles``: 20 named angles in degrees (:data:`ANGLE_NAMES`): per finger MCP flexion,
  MCP abduction (+ towards the thumb), PIP and DIP flexion; for the thumb CMC flexion, CMC abduction,
  MCP and IP flexion. Flexion is positive towards the palm. The wrist's angles are not in it: the 21
  joints do not show the forearm.
* ``joints_fitted_xyz``: (21, 3) mm, the fitted hand's joints, every bone as long in every frame.
* ``handedness``: "right" or "left", the mirror image that fits the sequence better.

Needs a 21-joint model (``layout: canonical``); frames without a hand keep None.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from srnpose.errors import UserError
from srnpose.hand.ik import ANGLE_NAMES as chains
from srnpose.hand.ik import fit_sequence

__all__ = ["ANGLE_NAMES", "fit_angles"]


def _names() -> tuple[str, ...]:
    return tuple(name for chain in chains for name in chain)


ANGLE_NAMES: tuple[str, ...] = _names()


def fit_angles(results: Sequence, handedness: str | None = None) -> list:
    """The results of one hand's sequence, with ``joint_angles``, ``joints_fitted_xyz`` and
    ``handedness`` filled in (see the module notes). ``handedness``: "right" or "left" to fix it,
    None to let the fit choose."""
    results = list(results)
    if handedness not in (None, "right", "left"):
        raise UserError(f"handedness must be 'right', 'left' or None, got {handedness!r}")
    bad = sorted({r.layout for r in results if r.layout != "canonical"})
    if bad:
        raise UserError(f"joint angles need a 21-joint model (layout canonical); this one predicts the "
                        f"{bad[0]} layout")
    found = [i for i, r in enumerate(results) if r.hand_found]
    if not found:
        return results
    mirrored = None if handedness is None else handedness == "left"
    fit = fit_sequence(np.stack([results[i].joints_xyz for i in found]), mirrored)
    out = list(results)
    for k, i in enumerate(found):
        angles = {name: float(a) for name, a in zip(ANGLE_NAMES, fit.chain_deg[k].reshape(-1))}
        out[i] = dataclasses.replace(results[i], joint_angles=angles, joints_fitted_xyz=fit.joints_xyz[k],
                                     handedness="left" if fit.mirrored[k] else "right")
    return out
