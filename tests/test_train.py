"""Training: configs and presets, the schedule, the data source, a loss that falls, the run folder."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from srnpose.data.centering import CenterPolicy
from srnpose.data.sampling import SampleSource
from srnpose.errors import UserError
from srnpose.training.log import metrics_columns
from srnpose.training.loop import train
from srnpose.training.run_config import PRESETS, TrainConfig, build_config, resolve_data
from srnpose.training.schedule import lr_at

JOINTS = CenterPolicy.for_rule("joints")

FAST = ["data.spec=synth", "model.width=8", "data.val_frames=4", "train.batch_size=2"]


def test_presets_and_overrides(tmp_path):
    assert set(PRESETS) == {"paper", "demo", "release", "release-base", "tiny"}
    paper = build_config("paper")
    assert (paper.train.optimizer, paper.train.lr, paper.train.batch_size) == ("adam", 1e-3, 32)
    assert paper.model.input_size == 128 and paper.model.num_stages == 3
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("train:\n  lr: 0.0005\nmodel:\n  num_stages: 1\n", encoding="utf-8")
    cfg = build_config("tiny", cfg_file, ["train.batch_size=8"])
    assert (cfg.train.lr, cfg.model.num_stages, cfg.train.batch_size) == (5e-4, 1, 8)
    assert cfg.model.input_size == PRESETS["tiny"].model.input_size  # the preset survives a partial file


@pytest.mark.parametrize("text, message", [
    ("train: [unclosed\n", r"c\.yaml line \d+: malformed YAML"),
    ("train:\n  learning_rate: 1\n", r"unknown config key .*learning_rate.*valid keys: optimizer, lr"),
    ("train:\n  optimizer: sgd\n", r"train\.optimizer: 'sgd' is not one of adam, adamw"),
])
def test_bad_config_files_are_one_line(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        build_config("tiny", path)


def test_resolve_data_takes_the_dataset_cube_and_joints():
    cfg = resolve_data(build_config("tiny", None, ["data.spec=synth"]))
    assert cfg.data.cube_mm == 250.0 and cfg.data.layout == "canonical" and cfg.model.num_joints == 21


def test_lr_schedules():
    step = TrainConfig(lr=1e-3, lr_schedule="step", lr_step_epochs=2, lr_decay=0.1)
    assert lr_at(0, step, 10, None) == 1e-3 and lr_at(19, step, 10, None) == 1e-3
    assert math.isclose(lr_at(20, step, 10, None), 1e-4)
    assert math.isclose(lr_at(0, step, 10, None, world_size=4), 2e-3)  # sqrt scaling by default
    cos = TrainConfig(lr=1e-3, lr_schedule="cosine", lr_min_ratio=0.0)
    assert lr_at(0, cos, 10, 100) == 1e-3 and lr_at(100, cos, 10, 100) < 1e-12
    assert math.isclose(lr_at(50, cos, 10, 100), 5e-4)


def test_synth_source_is_deterministic_and_distinct():
    from srnpose.data.pipeline import CropConfig

    source = SampleSource(None, CropConfig(input_size=32, augment=True), JOINTS, 0, False, synth_seed=5,
                          synth_resolution=(160, 120))
    a, b, a2 = source[3], source[4], source[3]
    assert a["depth"].shape == (1, 32, 32) and a["joints_nrm"].shape == (21, 3)
    assert np.array_equal(a["depth"], a2["depth"]) and np.array_equal(a["joints_nrm"], a2["joints_nrm"])
    assert not np.array_equal(a["joints_nrm"], b["joints_nrm"])


def test_a_few_steps_decrease_the_loss():
    from srnpose.data.pipeline import CropConfig, collate
    from srnpose.model import SRN
    from srnpose.training.losses import srn_loss

    source = SampleSource(None, CropConfig(input_size=32), JOINTS, 0, False, synth_seed=1,
                          synth_resolution=(160, 120))
    batch = collate([source[i] for i in range(4)])
    torch.manual_seed(0)
    model = SRN(num_stages=2, input_size=32, width=8, topk=8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(25):
        loss, per_stage = srn_loss(model(batch["depth"]).stage_joints, batch["joints_nrm"], beta=0.01)
        assert len(per_stage) == 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0]


def test_train_writes_a_run_folder(tmp_path):
    from srnpose.training.checkpoint import load_checkpoint, load_train_state

    cfg = build_config("tiny", None, FAST + ["train.steps=6", "train.log_every=2", "train.val_every=3",
                                              "train.ckpt_every=3"])
    result = train(cfg, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    assert result.step == 6 and len(result.val_stage_mm) == 2
    assert (run / "config.yaml").is_file() and (run / "best" / "model.safetensors").is_file()
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0].keys()) == metrics_columns(2)
    assert [(r["step"], r["split"]) for r in rows] == [("2", "train"), ("3", "val"), ("4", "train"),
                                                       ("6", "train"), ("6", "val")]
    assert all(float(r["stage2_mm"]) > 0 for r in rows)
    state = load_train_state(run / "last" / "train_state.pt")
    assert state["step"] == 6 and "optimizer" in state and "rng" in state
    ck = load_checkpoint(run)
    assert ck.input_size == 32 and ck.cube_mm == 250.0 and ck.layout == "canonical"
    assert ck.config["train"]["steps"] == 6
    with pytest.raises(UserError, match="already holds a run"):
        train(cfg, run, progress=False)


def test_channels_last_and_fused_adam_change_how_a_step_runs_not_what_it_computes():
    """The default step (channels-last convolutions, fused Adam: TrainConfig) computes the plain step's loss,
    gradients and update, to float rounding; a layout read wrongly or a tensor the optimizer skipped would
    differ by far more. (Whole runs are not compared: Adam's first steps move near-zero gradients by the
    learning rate's sign, so rounding alone parts them.)"""
    from srnpose.config import MODEL_PRESETS
    from srnpose.model import SRN
    from srnpose.training.loop import build_optimizer

    torch.manual_seed(0)
    x, target = torch.randn(4, 1, 32, 32), torch.randn(4, 21 * 3)
    models, grads, losses = {}, {}, {}
    for name, fast in (("fast", True), ("plain", False)):
        torch.manual_seed(1)
        model = SRN.from_config(MODEL_PRESETS["tiny"]).train()
        models[name] = (model, build_optimizer(model, TrainConfig(lr=1e-2, channels_last=fast, fused_optimizer=fast)))
        loss = sum(((j.reshape(4, -1) - target) ** 2).mean() for j in model(x).stage_joints)
        loss.backward()
        losses[name], grads[name] = float(loss.detach()), [p.grad.clone() for p in model.parameters()]
    assert models["fast"][0].stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert models["plain"][0].stem[0].weight.is_contiguous()
    assert losses["fast"] == pytest.approx(losses["plain"], rel=1e-5)
    assert max(float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))
               for a, b in zip(grads["fast"], grads["plain"])) < 1e-2
    # one update from the same gradients (near-zero ones would otherwise flip sign in Adam's first step)
    for model, opt in models.values():
        for p, g in zip(model.parameters(), grads["plain"]):
            p.grad = torch.empty_like(p).copy_(g)  # in the parameter's own layout
        opt.step()
    fast, plain = ([p.detach() for p in models[n][0].parameters()] for n in ("fast", "plain"))
    assert max(float((a - b).abs().max()) for a, b in zip(fast, plain)) < 1e-6  # lr 1e-2: a wrong update shows


def test_train_cli_and_evaluate_checkpoint(tmp_path, capsys):
    import json

    from srnpose.cli import main

    run = tmp_path / "run"
    code = main(["train", "--data", "synth", "--preset", "tiny", "--out", str(run), "--steps", "2",
                 "--no-progress", "--set", "model.width=8", "--set", "data.val_frames=2",
                 "--set", "train.batch_size=2"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "trained to step 2" in printed
    # the next steps say what they measure: validation's crop rule (engine v2: the labelled centroid), then
    # the label-free one, whose figure differs
    assert f"--data synth --center joints --out {run}/eval   # the validation's crop rule" in printed
    assert f"--center depth --out {run}/eval_label_free   # label-free first crop" in printed
    from srnpose.evaluation.model_eval import evaluate_checkpoint

    report = evaluate_checkpoint(run, "synth", tmp_path / "eval", frames=6, overlays=2)
    assert report["frames"] == 6 and len(report["stages"]) == 2
    saved = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert saved["mean_error_mm"] == saved["stages"][-1]["mean_error_mm"]
    assert len(saved["success_rate_max_frame"]) == 81
    lines = (tmp_path / "eval" / "predictions.txt").read_text().splitlines()
    assert len(lines) == 6 and len(lines[0].split()) == 21 * 3
    assert (tmp_path / "eval" / "overlays.png").is_file() and (tmp_path / "eval" / "per_joint.png").is_file()


def test_mixed_centres_crop_at_the_depth_centre_or_near_the_joints_centroid():
    from srnpose.data.centering import MIXED_DEPTH_SHARE, REFINE_JITTER_MM
    from srnpose.data.pipeline import CropConfig
    from srnpose.data.sampling import prepare_sample
    from srnpose.geometry import uvd_to_xyz
    from srnpose.synth import SynthDataset

    mixed = CenterPolicy.for_rule("mixed")

    record = SynthDataset(1, seed=3, resolution=(160, 120))[0]
    K = record.intrinsics
    depth_center = uvd_to_xyz(mixed.locate(record.depth, K), K)
    centroid = uvd_to_xyz(record.joints_uvd, K).mean(axis=0)
    crop = CropConfig(input_size=32, augment=False)
    # no rng (validation, evaluation): always the depth map's centre, as a first pass sees it
    first = uvd_to_xyz(prepare_sample(record, crop, mixed, None)["center_uvd"], K)
    np.testing.assert_allclose(first, depth_center, atol=1e-6)
    at_depth, offsets = 0, []
    for g in range(200):
        c = uvd_to_xyz(prepare_sample(record, crop, mixed, np.random.default_rng([0, g]))["center_uvd"], K)
        if np.allclose(c, depth_center, atol=1e-6):
            at_depth += 1
        else:
            offsets.append(c - centroid)
    assert abs(at_depth / 200 - MIXED_DEPTH_SHARE) < 0.1
    offsets = np.array(offsets)
    assert np.all(np.abs(offsets.mean(axis=0)) < 2.0)  # centred on the centroid
    np.testing.assert_allclose(offsets.std(axis=0), REFINE_JITTER_MM, rtol=0.25)


def test_recentred_crops_at_the_centroid_of_given_joints():
    from srnpose.geometry import uvd_to_xyz
    from srnpose.synth import SynthDataset

    record = SynthDataset(1, seed=4, resolution=(160, 120))[0]
    joints = uvd_to_xyz(record.joints_uvd, record.intrinsics) + np.array([5.0, -3.0, 8.0])
    moved = CenterPolicy.recentre(joints, record.intrinsics)
    np.testing.assert_allclose(uvd_to_xyz(moved, record.intrinsics), joints.mean(axis=0), atol=1e-9)
    assert CenterPolicy.from_config({"data": {"center": "mixed"}}).passes == 3  # each later one where it moves the crop
    assert CenterPolicy.from_config({"data": {"center": "depth"}}).passes == 1
    assert CenterPolicy.from_config({}).passes == 1


def test_a_mixed_model_is_evaluated_in_up_to_three_passes(tmp_path):
    from srnpose.evaluation.model_eval import evaluate_checkpoint

    cfg = build_config("tiny", None, FAST + ["train.steps=2", "data.center=mixed"])
    run = tmp_path / "run"
    train(cfg, run, progress=False)
    two = evaluate_checkpoint(run, "synth", tmp_path / "two", frames=6, overlays=0)
    one = evaluate_checkpoint(run, "synth", tmp_path / "one", frames=6, overlays=0, refine=0)
    assert two["refine_passes"] == 2 and len(two["pass_mean_error_mm"]) == 3
    assert one["refine_passes"] == 0 and len(one["pass_mean_error_mm"]) == 1
    assert one["pass_mean_error_mm"][0] == pytest.approx(two["pass_mean_error_mm"][0], rel=1e-12)  # same crops
    assert two["mean_error_mm"] == pytest.approx(two["pass_mean_error_mm"][-1])
    assert one["mean_error_mm"] == pytest.approx(one["pass_mean_error_mm"][0])
    with pytest.raises(UserError, match="refine"):
        evaluate_checkpoint(run, "synth", tmp_path / "bad", frames=2, overlays=0, refine=-1)


def test_init_grows_a_trained_network_by_a_stage(tmp_path, capsys):
    """--init starts a run from trained weights; a stage the weights lack starts fresh, the rest is theirs."""
    from srnpose.cli import main
    from srnpose.training.checkpoint import find_weights, load_state_dict_file

    common = ["train", "--data", "synth", "--preset", "tiny", "--steps", "1", "--no-progress",
              "--set", "model.width=8", "--set", "data.val_frames=2", "--set", "train.batch_size=2"]
    assert main(common + ["--out", str(tmp_path / "one"), "--set", "model.num_stages=1"]) == 0
    one = load_state_dict_file(find_weights(tmp_path / "one"))
    assert main(common + ["--out", str(tmp_path / "two"), "--set", "model.num_stages=2", "--set", "train.lr=1e-12",
                          "--init", str(tmp_path / "one")]) == 0
    assert "new: stages.1 (a copy of the last trained stage" in capsys.readouterr().err
    two = load_state_dict_file(tmp_path / "two" / "last" / "model.safetensors")
    # a step of lr 1e-12: it saved the weights it started from (batch-norm statistics aside)
    assert all(torch.allclose(two[k], v, atol=1e-6) for k, v in one.items() if "running" not in k and "num_batches" not in k)
    assert any(k.startswith("stages.1.") for k in two)
    assert not (tmp_path / "two" / "locator.yaml").exists()  # its start carried no hand locator
    # a narrower network cannot start from these weights: said, named
    assert main(common + ["--out", str(tmp_path / "narrow"), "--set", "model.width=4",
                          "--init", str(tmp_path / "one")]) == 2
    err = capsys.readouterr().err
    assert "one/best/model.safetensors: cannot start from these weights: tensor '" in err
    assert "in the model config (a different width" in err
    assert not (tmp_path / "narrow").exists()  # nothing saved, no folder left behind


def test_a_run_from_the_shipped_model_finds_hands_with_the_shipped_locator(tmp_path, capsys):
    """--init release: the run carries the shipped hand locator, so its checkpoints find the hand as the
    shipped model does (not by the nearest-blob search)."""
    from srnpose.cli import main
    from srnpose.weights import LOCATOR_DIR

    out = tmp_path / "tuned"
    assert main(["train", "--data", "synth", "--preset", "release", "--init", "release", "--steps", "1", "--no-progress",
                 "--set", "data.val_frames=2", "--set", "train.batch_size=2", "--set", "data.workers=0",
                 "--out", str(out)]) == 0
    assert "attached the hand locator of --init release" in capsys.readouterr().err
    assert (out / "locator.safetensors").read_bytes() == (LOCATOR_DIR / "locator.safetensors").read_bytes()


def test_a_grown_network_starts_with_the_trained_ones_joints():
    """The added stage starts as a copy of the last trained one, its map inputs weighted zero: both stages
    give the trained network's joints until training teaches the new one to use the maps."""
    import dataclasses

    from srnpose.config import MODEL_PRESETS
    from srnpose.model import SRN
    from srnpose.training.checkpoint import load_weights_growing

    one_cfg = dataclasses.replace(MODEL_PRESETS["tiny"], num_stages=1)
    torch.manual_seed(0)
    one = SRN.from_config(one_cfg).eval()
    for p in one.parameters():  # weights unlike a fresh network's, so that a copy is told from a re-draw
        p.data.add_(0.05 * torch.randn_like(p))
    two = SRN.from_config(dataclasses.replace(one_cfg, num_stages=3)).eval()
    new = load_weights_growing(two, one.state_dict(), "one.safetensors")
    assert new and all(k.startswith(("stages.1.", "stages.2.")) for k in new)
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        want = one(x).stage_joints[0]
        got = two(x).stage_joints
    assert all(torch.allclose(g, want, atol=1e-6) for g in got)
    first = two.stages[1].body[0][0].conv1.weight  # (2w, w + maps, 3, 3): the maps' columns are zero
    assert first.shape[1] > one_cfg.width and torch.count_nonzero(first[:, one_cfg.width:]) == 0
