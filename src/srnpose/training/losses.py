"""Training losses: smooth-L1 on every stage's joints (SRN's intermediate supervision), plus, for
detection stages, smooth-L1 on their offset fields against the fields of the labels.

::

    total = sum_s  stage_weight_s * (joint_s + field_weight * field_s)     field_s only for detection stages

* ``joint_s``: smooth-L1 between stage ``s``'s joints (B, J, 3) and the labels, normalized crop units,
  mean over batch, joints and axes.
* ``field_s``: smooth-L1 between a detection stage's predicted offset fields (B, 4J, F, F) and the
  target fields of the labels (:meth:`srnpose.model.SRN.target_fields`: 3D heatmaps and unit vectors,
  zero off the hand, where the encoder's foreground mask is 0), mean over every element. As in the
  authors' training code for offset fields (SRN's released code trains regression stages only; their
  AWR code, Huang, Ren et al. AAAI 2020, builds the targets with ``joint2offset`` and applies one
  smooth-L1 criterion to fields and joints), background pixels count too: their target is 0, which
  keeps the heatmaps at 0 off the hand, so that the top-k vote picks hand pixels.

Both terms use the same ``beta``; heatmaps and unit vectors are O(1) like normalized coordinates, so
``field_weight = 1`` weighs one field element as one joint coordinate (``TrainConfig.field_loss_weight``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["StageLoss", "SRNLoss", "stage_losses", "field_loss", "srn_loss"]


class StageLoss(NamedTuple):
    """One stage's loss terms, unweighted."""

    joint: Tensor  # () smooth-L1 on the stage's joints
    field: Tensor | None  # () smooth-L1 on its offset fields; None for a regression stage (or no target)


class SRNLoss(NamedTuple):
    """What :func:`srn_loss` returns; unpacks as ``total, per_stage`` (``len(per_stage)`` = stages)."""

    total: Tensor  # () the objective, weighted
    stages: list[StageLoss]

    @property
    def joint(self) -> list[Tensor]:
        """Every stage's joint loss."""
        return [s.joint for s in self.stages]

    @property
    def field(self) -> list[Tensor | None]:
        """Every stage's field loss (None for regression stages)."""
        return [s.field for s in self.stages]


def stage_losses(stage_joints: list[Tensor], target_nrm: Tensor, beta: float) -> list[Tensor]:
    """One smooth-L1 loss per stage: each ``stage_joints[s]`` (B, J, 3) against ``target_nrm`` (B, J, 3),
    averaged over batch, joints and axes (normalized crop units)."""
    return [F.smooth_l1_loss(joints, target_nrm, beta=beta) for joints in stage_joints]


def field_loss(fields: Tensor, target_fields: Tensor, beta: float) -> Tensor:
    """Smooth-L1 between predicted offset fields (B, 4J, F, F) and ``target_fields`` (B, 4J, F, F),
    averaged over every element (background pixels included: their target is 0)."""
    if fields.shape != target_fields.shape:
        raise ValueError(f"fields {tuple(fields.shape)} and target fields {tuple(target_fields.shape)} differ")
    return F.smooth_l1_loss(fields, target_fields, beta=beta)


def srn_loss(stage_joints: list[Tensor], target_nrm: Tensor, beta: float,
             stage_weights: tuple[float, ...] = (), stage_fields: list[Tensor | None] | None = None,
             target_fields: Tensor | None = None, field_weight: float = 1.0) -> SRNLoss:
    """The training objective and its parts (see the module docstring).

    ``stage_weights`` empty = 1 for every stage (the paper supervises every stage equally).
    ``stage_fields`` (``SRNOutput.stage_fields``) and ``target_fields`` (B, 4J, F, F), from
    ``SRN.target_fields(depth, target_nrm)``, supervise the detection stages' fields; without them (or
    for a regression stage) a stage has only its joint loss. ``field_weight = 0`` still reports the
    field losses but leaves them out of ``total``.
    Returns ``SRNLoss(total, stages)``, which unpacks as ``total, per_stage``.
    """
    if field_weight < 0:
        raise ValueError(f"field_weight must be >= 0, got {field_weight}")
    joint = stage_losses(stage_joints, target_nrm, beta)
    weights = stage_weights or (1.0,) * len(joint)
    if len(weights) != len(joint):
        raise ValueError(f"{len(weights)} stage weights for {len(joint)} stages")
    fields = list(stage_fields) if stage_fields is not None else [None] * len(joint)
    if len(fields) != len(joint):
        raise ValueError(f"{len(fields)} stage fields for {len(joint)} stages")
    stages, terms = [], []
    for w, j_loss, f in zip(weights, joint, fields):
        f_loss = None if f is None or target_fields is None else field_loss(f, target_fields, beta)
        stages.append(StageLoss(j_loss, f_loss))
        terms.append(w * j_loss if f_loss is None or field_weight == 0 else w * (j_loss + field_weight * f_loss))
    return SRNLoss(torch.stack(terms).sum(), stages)
