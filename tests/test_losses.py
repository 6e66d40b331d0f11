"""Training losses: the detection stages' field targets decode to the labels, the field loss trains the
fields, is zero exactly at the targets, and regression-only models keep the joint-only objective."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from srnpose import geometry
from srnpose.data.centering import CenterPolicy
from srnpose.data.pipeline import CropConfig, collate, make_sample, nrm_to_xyz, uvd_to_xyz_batched
from srnpose.data.records import HandRecord
from srnpose.data.sampling import SampleSource
from srnpose.model import SRN
from srnpose.model.reparam import decode_offset, pixel_points, split_offset_fields
from srnpose.synth import render_frame
from srnpose.training.losses import SRNLoss, field_loss, srn_loss, stage_losses

TINY_DETECTION = dict(num_stages=2, stage_kind="detection", input_size=32, width=8, topk=8)
BETA = 0.01


@pytest.fixture(scope="module")
def tiny_batch() -> dict:
    """Four synthetic 32x32 crops centred on their joints: a fixed batch (engine v1's close-range
    frames, on which the thresholds below were measured)."""
    source = SampleSource(None, CropConfig(input_size=32), CenterPolicy.for_rule("joints"), 0, False,
                          synth_seed=1, synth_resolution=(160, 120), synth_engine="v1")
    return collate([source[i] for i in range(4)])


def test_target_fields_of_a_real_looking_crop_decode_to_the_labels_within_1mm():
    samples = []
    for seed in (1, 2):
        frame = render_frame(seed, resolution=(160, 120))
        centre = geometry.xyz_to_uvd(frame.joints_xyz.mean(axis=0), frame.intrinsics)  # (3,)
        record = HandRecord(joints_uvd=frame.joints_uvd, intrinsics=frame.intrinsics,
                            depth=frame.depth_mm.astype(np.float32), center_uvd=centre)
        samples.append(make_sample(record, CropConfig(input_size=64), CenterPolicy.for_rule("joints", 250.0)))
    batch = collate(samples)
    model = SRN(num_stages=1, stage_kind="detection", input_size=64, width=8)  # F = 16, topk 30, theta 1
    depth, joints_nrm = batch["depth"], batch["joints_nrm"]
    fields = model.target_fields(depth, joints_nrm)  # (2, 84, 16, 16)
    heatmap, unit = split_offset_fields(fields)
    points, mask = pixel_points(depth, model.feature_size)
    assert 0.05 < mask.mean() < 0.9  # a hand and a background in the crop
    assert fields[mask[:, None].expand_as(fields) == 0].abs().max() == 0  # nothing off the hand
    assert (heatmap.amax(dim=(2, 3)) > 0.5).all()  # every joint has hand pixels near it
    decoded = decode_offset(heatmap, unit, points, model.config.topk, model.config.theta)  # (2, 21, 3)
    decoded_xyz = nrm_to_xyz(decoded.double(), batch, depth.shape[-1])  # back through the crop, in mm
    labels_xyz = uvd_to_xyz_batched(batch["joints_uvd"], batch["intrinsics"])
    error_mm = (decoded_xyz - labels_xyz).norm(dim=-1)
    assert error_mm.max() < 1.0


def _train_fields(batch: dict, field_weight: float, steps: int = 20, lr: float = 1e-2) -> np.ndarray:
    """Field loss per stage (steps + 1, stages) while Adam steps on srn_loss with ``field_weight``."""
    torch.manual_seed(0)
    model = SRN(**TINY_DETECTION)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    target_fields = model.target_fields(batch["depth"], batch["joints_nrm"])
    history = []
    for _ in range(steps + 1):
        out = model(batch["depth"])
        loss = srn_loss(out.stage_joints, batch["joints_nrm"], BETA, stage_fields=out.stage_fields,
                        target_fields=target_fields, field_weight=field_weight)
        history.append([float(f.detach()) for f in loss.field])
        opt.zero_grad()
        loss.total.backward()
        opt.step()
    return np.array(history)


def test_a_few_steps_lower_the_field_loss(tiny_batch):
    supervised = _train_fields(tiny_batch, field_weight=10.0, steps=40)
    assert (supervised[-1] < 0.8 * supervised[0]).all()  # every detection stage learns its fields
    default, joints_only = _train_fields(tiny_batch, 1.0), _train_fields(tiny_batch, 0.0)
    # the joint loss alone pulls the fields away from the targets; the field term holds them
    assert (joints_only[-1] > 1.3 * joints_only[0]).all()
    assert (default[-1] < 0.7 * joints_only[-1]).all()


def test_field_loss_is_zero_at_the_targets_and_positive_elsewhere(tiny_batch):
    model = SRN(**TINY_DETECTION)
    depth, target = tiny_batch["depth"], tiny_batch["joints_nrm"]
    fields = model.target_fields(depth, target)  # (4, 84, 8, 8)
    joints = [target + 0.1, target - 0.2]
    exact = srn_loss(joints, target, BETA, stage_fields=[fields, fields.clone()], target_fields=fields)
    assert [float(f) for f in exact.field] == [0.0, 0.0]
    joint_only = torch.stack(stage_losses(joints, target, BETA)).sum()
    assert torch.equal(exact.total, joint_only)
    _, mask = pixel_points(depth, model.feature_size)
    hand = torch.nonzero(mask[0])[0]
    background = torch.nonzero(mask[0] == 0)[0]
    for row, col in (hand, background):  # one unit-vector component on the hand, one heatmap off it
        channel = 21 + 5 if mask[0, row, col] else 3
        moved = fields.clone()
        moved[0, channel, row, col] += 0.5
        assert float(field_loss(moved, fields, BETA)) == pytest.approx((0.5 - BETA / 2) / fields.numel(), rel=1e-5)
    moved = fields + 0.05
    loss = srn_loss(joints, target, BETA, stage_fields=[moved, None], target_fields=fields, field_weight=2.0)
    assert loss.field[1] is None and float(loss.field[0]) == pytest.approx(0.05 - BETA / 2, rel=1e-4)
    torch.testing.assert_close(loss.total, loss.joint[0] + 2.0 * loss.field[0] + loss.joint[1])
    off = srn_loss(joints, target, BETA, stage_fields=[moved, moved], target_fields=fields, field_weight=0.0)
    assert float(off.field[1]) > 0 and torch.equal(off.total, joint_only)  # reported, not trained
    with pytest.raises(ValueError, match="differ"):
        field_loss(fields[:, :4], fields, BETA)


def test_regression_models_keep_the_joint_only_loss(tiny_batch):
    torch.manual_seed(0)
    model = SRN(num_stages=2, input_size=32, width=8, topk=8)  # regression stages
    out = model(tiny_batch["depth"])
    target = tiny_batch["joints_nrm"]
    old = torch.stack([F.smooth_l1_loss(j, target, beta=BETA) for j in out.stage_joints]).sum()
    loss, per_stage = srn_loss(out.stage_joints, target, BETA)  # the call the rest of the code makes
    assert isinstance(loss, torch.Tensor) and torch.equal(loss, old)
    assert len(per_stage) == 2 and all(s.field is None for s in per_stage)
    assert all(torch.equal(s.joint, F.smooth_l1_loss(j, target, beta=BETA)) for s, j in zip(per_stage, out.stage_joints))
    targets = model.target_fields(tiny_batch["depth"], target)  # given, but no stage predicts fields
    with_fields = srn_loss(out.stage_joints, target, BETA, stage_fields=out.stage_fields, target_fields=targets)
    assert isinstance(with_fields, SRNLoss) and torch.equal(with_fields.total, old)
    weighted = srn_loss(out.stage_joints, target, BETA, stage_weights=(0.5, 2.0))
    assert torch.equal(weighted.total, torch.stack([0.5 * per_stage[0].joint, 2.0 * per_stage[1].joint]).sum())


def test_training_a_detection_model_adds_the_field_loss(tmp_path):
    import csv

    from srnpose.training.loop import train
    from srnpose.training.run_config import build_config

    first_loss = {}
    for weight in (0.0, 1.0):
        cfg = build_config("tiny", None, ["data.spec=synth", "model.width=8", "model.stage_kind=detection",
                                          "data.val_frames=2", "train.batch_size=2", "train.steps=1",
                                          "train.log_every=1", f"train.field_loss_weight={weight}"])
        train(cfg, tmp_path / str(weight), progress=False)
        with open(tmp_path / str(weight) / "metrics.csv", newline="") as f:
            first_loss[weight] = float(next(csv.DictReader(f))["loss"])
    assert first_loss[1.0] > first_loss[0.0] > 0  # same init and batch; the fields' term on top


def test_a_negative_field_loss_weight_is_refused_by_the_config():
    from srnpose.errors import UserError
    from srnpose.training.run_config import build_config, check

    check(build_config("tiny", None, ["train.field_loss_weight=0"]))  # 0: joints only, allowed
    with pytest.raises(UserError, match="train.field_loss_weight: must be >= 0, got -1"):
        check(build_config("tiny", None, ["train.field_loss_weight=-1"]))
