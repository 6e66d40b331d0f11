"""``srnpose demo`` end to end in seconds: a tiny budget and model, the files and the printed table."""

from __future__ import annotations

import json
import time

import pytest
import torch

from srnpose.cli import main


def test_demo_writes_an_evaluated_run_folder(tmp_path, capsys, monkeypatch):
    import srnpose.training.demo as demo  # where the demo looks evaluate_checkpoint up

    seen = {}
    evaluate = demo.evaluate_checkpoint
    monkeypatch.setattr(demo, "evaluate_checkpoint", lambda *a, **kw: seen.update(kw) or evaluate(*a, **kw))
    out = tmp_path / "demo"
    started = time.perf_counter()
    code = main(["demo", "--out", str(out), "--minutes", "0.15", "--test-frames", "6", "--no-progress",
                 "--set", "model.input_size=32", "--set", "model.width=8", "--set", "model.num_stages=2",
                 "--set", "model.topk=8", "--set", "train.batch_size=4", "--set", "data.val_frames=4",
                 "--set", "data.workers=0"])
    printed = capsys.readouterr().out
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["frames"] == 6 and len(report["stages"]) == 2
    assert report["mean_error_mm"] == report["stages"][-1]["mean_error_mm"]
    assert len(report["success_rate_max_frame"]) == 81 and 0.0 <= report["auc"] <= 1.0
    for name in ("config.yaml", "metrics.csv", "last/model.safetensors", "best/model.safetensors",
                 "predictions.txt", "overlays.png", "success_curves.png", "per_joint.png"):
        assert (out / name).is_file(), name
    assert "stage  mean error (mm)" in printed and "srnpose evaluate --checkpoint" in printed
    # the evaluation is inside the budget: no batch of test frames starts after the demo's minutes
    assert started < seen["deadline"] < started + 0.15 * 60 and seen["progress"] is False
    # the next steps say what they measure: the demo's own crop rule first, then the label-free one
    assert f"--data synth --center joints --out {out}/eval   # the demo's figure again" in printed
    assert "--center depth" in printed and "label-free first crop, as predict finds the hand" in printed

    # the demo folder is a run folder: checkpoint evaluation works on it
    from srnpose.evaluation.model_eval import evaluate_checkpoint

    again = evaluate_checkpoint(out, "synth", tmp_path / "eval", frames=6, overlays=0,
                                center=report["center"])
    assert report["center"] == "joints" and report["synth_engine"] == "v2"  # the default engine's protocol
    assert again["stages"] == report["stages"]  # same held-out frames, same model (best/)

    assert main(["demo", "--out", str(out), "--minutes", "0.25"]) == 2  # never overwrites a run
    assert "already holds a demo run" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from srnpose.config import SRNConfig, to_dict
    from srnpose.model import SRN
    from srnpose.training.checkpoint import save_checkpoint

    cfg = SRNConfig(num_stages=2, input_size=32, width=8, topk=8)
    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("run")
    save_checkpoint(run / "last", SRN.from_config(cfg).eval(),
                    {"model": to_dict(cfg), "data": {"cube_mm": 250.0, "synth_engine": "v2",
                                                     "synth_resolution": [160, 120]}})
    return run


def test_evaluation_stops_at_its_deadline_and_says_how_many_frames(tiny_run, tmp_path):
    from srnpose.evaluation.model_eval import evaluate_checkpoint

    kwargs = {"overlays": 0, "center": "joints", "batch_size": 4}
    cut = evaluate_checkpoint(tiny_run, "synth", tmp_path / "cut", frames=12, deadline=time.perf_counter(), **kwargs)
    assert (cut["frames_total"], cut["frames_planned"]) == (4, 12)  # the first batch always runs, then no more
    first = evaluate_checkpoint(tiny_run, "synth", tmp_path / "first", frames=4, **kwargs)
    assert cut["stages"] == first["stages"]  # the same frames, the same estimates
    assert len((tmp_path / "cut" / "predictions.txt").read_text().splitlines()) == 4
    whole = evaluate_checkpoint(tiny_run, "synth", tmp_path / "whole", frames=12, deadline=time.perf_counter() + 600,
                                **kwargs)
    assert (whole["frames_total"], whole["frames_planned"]) == (12, 12)
