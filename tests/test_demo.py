"""``srnpose demo`` end to end in seconds: a tiny budget and model, the files and the printed table."""

from __future__ import annotations

import json

from srnpose.cli import main


def test_demo_writes_an_evaluated_run_folder(tmp_path, capsys):
    out = tmp_path / "demo"
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

    # the demo folder is a run folder: checkpoint evaluation works on it
    from srnpose.evaluation.model_eval import evaluate_checkpoint

    again = evaluate_checkpoint(out, "synth", tmp_path / "eval", frames=6, overlays=0, verbose=False,
                                center=report["center"])
    assert report["center"] == "joints" and report["synth_engine"] == "v2"  # the default engine's protocol
    assert again["stages"] == report["stages"]  # same held-out frames, same model (best/)

    assert main(["demo", "--out", str(out), "--minutes", "0.25"]) == 2  # never overwrites a run
    assert "already holds a demo run" in capsys.readouterr().err
