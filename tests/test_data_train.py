"""Each dataset format end to end: files in the native layout -> loader -> pipeline -> 20 training steps."""

from __future__ import annotations

import csv

import pytest

from srnpose.cli import main
from srnpose.data.public_layouts import WRITERS


@pytest.mark.parametrize("fmt", ["nyu", "icvl", "msra", "hands17"])
def test_train_20_steps_on_native_layout(fmt, tmp_path):
    data = tmp_path / fmt
    assert main(["synth", "--out", str(data), "--frames", "12", "--seed", "2", "--format", fmt]) == 0
    run = tmp_path / "run"
    rc = main(["train", "--data", f"{fmt}:{data}", "--out", str(run), "--preset", "tiny", "--steps", "20",
               "--no-progress", "--set", "train.val_every=20", "--set", "train.ckpt_every=20"])
    assert rc == 0
    assert (run / "last" / "model.safetensors").is_file()
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    steps = [int(r["step"]) for r in rows if r["split"] == "train"]
    assert steps and max(steps) == 20


def test_writers_cover_every_loader():
    assert set(WRITERS) == {"nyu", "icvl", "msra", "hands17"}


def test_train_and_evaluate_with_refined_centres(tmp_path, capsys):
    from srnpose.data.center_files import write_centers
    from srnpose.data.datasets import load_records
    from srnpose.geometry import uvd_to_xyz, xyz_to_uvd

    data = tmp_path / "icvl"
    assert main(["synth", "--out", str(data), "--frames", "8", "--seed", "4", "--format", "icvl"]) == 0
    files = {}
    for split in ("train", "test"):
        records = load_records(f"icvl:{data}", split)
        centres = [xyz_to_uvd(uvd_to_xyz(r.joints_uvd, r.intrinsics).mean(0), r.intrinsics) for r in records]
        files[split] = tmp_path / f"{split}_centers.txt"
        write_centers(files[split], centres)
    run = tmp_path / "run"
    assert main(["train", "--data", f"icvl:{data}", "--out", str(run), "--preset", "tiny", "--steps", "2",
                 "--no-progress", "--centers", str(files["train"]), "--val-centers", str(files["test"])]) == 0
    assert main(["evaluate", "--checkpoint", str(run), "--data", f"icvl:{data}", "--centers", str(files["test"]),
                 "--out", str(tmp_path / "eval")]) == 0
    # a centres file with the wrong line count names the file
    files["train"].write_text("100 100 500\n")
    capsys.readouterr()
    assert main(["train", "--data", f"icvl:{data}", "--out", str(tmp_path / "run2"), "--preset", "tiny",
                 "--steps", "2", "--no-progress", "--centers", str(files["train"])]) == 2
    assert "train_centers.txt" in capsys.readouterr().err
