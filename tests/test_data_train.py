"""Each dataset format end to end: files in the native layout -> loader -> pipeline -> 20 training steps."""

from __future__ import annotations

import csv

import pytest

from srnpose.cli import main
from srnpose.data.writers import WRITERS


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
