"""Training losses: smooth-L1 on every stage's joints (SRN's intermediate supervision)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["stage_losses", "srn_loss"]


def stage_losses(stage_joints: list[Tensor], target_nrm: Tensor, beta: float) -> list[Tensor]:
    """One smooth-L1 loss per stage: each ``stage_joints[s]`` (B, J, 3) against ``target_nrm`` (B, J, 3),
    averaged over batch, joints and axes (normalized crop units)."""
    return [F.smooth_l1_loss(joints, target_nrm, beta=beta) for joints in stage_joints]


def srn_loss(stage_joints: list[Tensor], target_nrm: Tensor, beta: float,
             stage_weights: tuple[float, ...] = ()) -> tuple[Tensor, list[Tensor]]:
    """The training objective: the (weighted) sum of every stage's smooth-L1 loss.

    ``stage_weights`` empty = 1 for every stage (the paper supervises every stage equally).
    Returns ``(total, per_stage)``.
    """
    losses = stage_losses(stage_joints, target_nrm, beta)
    weights = stage_weights or (1.0,) * len(losses)
    if len(weights) != len(losses):
        raise ValueError(f"{len(weights)} stage weights for {len(losses)} stages")
    total = torch.stack([w * loss for w, loss in zip(weights, losses)]).sum()
    return total, losses
