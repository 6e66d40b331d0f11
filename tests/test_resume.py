"""Exact resume (2K steps == K steps + resume K) and SIGKILL then --resume: no gap, no duplicate."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from srnpose.config import apply_overrides
from srnpose.training.loop import train
from srnpose.training.run_config import build_config, load_resume_config

FAST = ["data.spec=synth", "model.width=8", "data.val_frames=4", "train.batch_size=2", "train.log_every=2",
        "train.val_every=4", "train.ckpt_every=4", "train.lr_step_epochs=0.03", "train.epoch_size=200"]


def _rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_resume_is_exact(tmp_path):
    K = 4
    full = build_config("tiny", None, FAST + [f"train.steps={2 * K}"])
    train(full, tmp_path / "a", progress=False)

    half = build_config("tiny", None, FAST + [f"train.steps={K}"])
    train(half, tmp_path / "b", progress=False)
    resumed = apply_overrides(load_resume_config(tmp_path / "b"), [f"train.steps={2 * K}"])
    result = train(resumed, tmp_path / "b", resume=True, progress=False)
    assert result.step == 2 * K

    a = load_file(str(tmp_path / "a" / "last" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "last" / "model.safetensors"))
    assert a.keys() == b.keys()
    worst = max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())
    assert worst == 0.0, f"resumed weights differ by up to {worst}"  # bit for bit on CPU
    assert all(torch.equal(a[k], b[k]) for k in a)
    key = [(r["step"], r["split"], r["loss"], r["stage1_mm"], r["lr"]) for r in _rows(tmp_path / "a")]
    assert key == [(r["step"], r["split"], r["loss"], r["stage1_mm"], r["lr"]) for r in _rows(tmp_path / "b")]


def test_sigkill_then_resume_has_no_gap_and_no_duplicate(tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "srnpose", "train", "--data", "synth", "--preset", "tiny", "--out", str(run),
            "--no-progress", "--set", "model.width=8", "--set", "data.val_frames=2", "--set", "train.batch_size=2",
            "--set", "train.log_every=3", "--set", "train.ckpt_every=6", "--set", "train.val_every=9"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(args + ["--steps", "100000"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            rows = _rows(run) if (run / "metrics.csv").exists() else []
            if rows and int(rows[-1]["step"]) >= 16:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the training run did not get going")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at = int(_rows(run)[-1]["step"])

    done = subprocess.run([sys.executable, "-m", "srnpose", "train", "--out", str(run), "--resume", "--extend", "--no-progress",
                           "--steps", str(killed_at + 9)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = _rows(run)
    train_steps = [int(r["step"]) for r in rows if r["split"] == "train"]
    assert train_steps == list(range(3, killed_at + 9 + 1, 3)), train_steps  # no gap, no duplicate
    val_steps = [int(r["step"]) for r in rows if r["split"] == "val"]
    assert val_steps == sorted(set(val_steps))
    assert [int(r["samples"]) for r in rows if r["split"] == "train"] == [2 * s for s in train_steps]
