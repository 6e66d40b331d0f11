"""The model, locator and sample frames shipped inside the package (srnpose.weights, MODEL_CARD.md):
they load through safetensors alone, and predict works on a fresh install without ../shared."""

from __future__ import annotations

import json

import numpy as np
import pytest

from srnpose.cli import main
from srnpose.weights import LOCATOR_DIR, RELEASE_DIR, SAMPLES_DIR, sample_frames

MAX_SHIPPED_MB = 25.0


def test_the_shipped_files_are_safetensors_and_small():
    files = sorted(p.name for p in RELEASE_DIR.iterdir())
    assert files == ["COMPLETE", "config.yaml", "model.safetensors"]  # no pickle anywhere
    assert sorted(p.name for p in LOCATOR_DIR.iterdir()) == ["locator.safetensors", "locator.yaml"]
    from safetensors import safe_open

    with safe_open(str(RELEASE_DIR / "model.safetensors"), "pt") as f:
        dtypes = {str(f.get_tensor(k).dtype) for k in f.keys()}
    assert "torch.float16" in dtypes and "torch.float32" not in dtypes  # fp16, see MODEL_CARD.md
    shipped = [p for d in (RELEASE_DIR, LOCATOR_DIR, SAMPLES_DIR) for p in d.iterdir()]
    assert sum(p.stat().st_size for p in shipped) < MAX_SHIPPED_MB * 1e6


def test_load_without_a_path_predicts_the_sample_frames():
    import srnpose

    est = srnpose.load()
    assert est.layout == "canonical" and est.num_joints == 21
    paths, camera, meta = sample_frames()
    from srnpose.data.depth_io import read_png16

    errors = []
    for path, frame in zip(paths, meta["frames"]):
        res = est.predict(read_png16(path), camera=camera)
        assert res.hand_found, path.name
        errors.append(np.linalg.norm(res.joints_xyz - np.array(frame["joints_xyz"]), axis=1).mean())
    assert np.mean(errors) < 40.0, errors  # a trained hand model, not random weights (MODEL_CARD.md)


def test_predict_sample_without_checkpoint(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", "--sample", "--out", str(out)]) == 0
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == len(sample_frames()[0]) and all(r["hand_found"] for r in records)
    assert "hand found in 4" in capsys.readouterr().out
    assert main(["predict", "--sample", "frame.png", "--out", str(tmp_path / "o2")]) == 2
    assert "INPUT frames or --sample, not both" in capsys.readouterr().err
    assert main(["predict", "--out", str(tmp_path / "o3")]) == 2
    assert "or --sample" in capsys.readouterr().err


@pytest.mark.parametrize("code", ["import srnpose; r = srnpose.load().predict("
                                  "__import__('srnpose.data.depth_io', fromlist=['x']).read_png16("
                                  "__import__('srnpose.weights', fromlist=['x']).sample_frames()[0][0]), "
                                  "camera='icvl'); print(r.hand_found)"])
def test_a_fresh_process_without_shared_data(code, tmp_path):
    """From another working directory, with no ../shared next to it: the package alone suffices."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_evaluate_the_shipped_model_on_the_nyu_frame(shared_data, tmp_path):
    out = tmp_path / "eval"
    assert main(["evaluate", "--data", f"nyu:{shared_data / 'nyu_frame'}", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["frames"] == 1 and report["checkpoint"].startswith(str(RELEASE_DIR))
    assert report["mean_error_mm"] < 60.0  # measured in MODEL_CARD.md; a mirrored or random hand is worse


def test_the_release_preset_trains_the_shipped_model():
    """`srnpose train --preset release` builds the shipped model's architecture and recipe."""
    from srnpose.config import SRNConfig, from_dict, to_dict
    from srnpose.training.checkpoint import load_run_config
    from srnpose.training.run_config import PRESETS

    shipped = load_run_config(RELEASE_DIR / "model.safetensors")
    assert from_dict(SRNConfig, shipped["model"]) == PRESETS["release"].model
    release = to_dict(PRESETS["release"])
    for section in ("data", "train"):
        for key in ("center", "synth_engine", "synth_resolution", "augment", "lr", "lr_schedule", "batch_size"):
            if key in release[section]:
                assert json.dumps(shipped[section][key]) == json.dumps(release[section][key]), (section, key)
