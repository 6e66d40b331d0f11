"""torchrun DDP on CPU (gloo): two processes train the tiny config; weights stay identical, loss falls."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

SCRIPT = Path(__file__).with_name("ddp_train_script.py")


def test_two_process_gloo_run(tmp_path):
    run, dump = tmp_path / "run", tmp_path / "weights"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(SCRIPT),
           str(run), str(dump), "train.steps=24", "model.width=8", "train.batch_size=4", "data.val_frames=4",
           "train.log_every=6", "train.val_every=24", "train.ckpt_every=12"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]

    rank0, rank1 = load_file(str(dump / "rank0.safetensors")), load_file(str(dump / "rank1.safetensors"))
    assert rank0.keys() == rank1.keys() and len(rank0) > 10
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0), "ranks' weights differ after DDP steps"
    saved = load_file(str(run / "last" / "model.safetensors"))
    assert all(torch.equal(saved[k], rank0[k]) for k in rank0)  # rank 0 wrote the checkpoint

    with open(run / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "train"]
    assert [int(r["step"]) for r in rows] == [6, 12, 18, 24]  # one writer: no duplicated rows
    assert [int(r["samples"]) for r in rows] == [6 * 8, 12 * 8, 18 * 8, 24 * 8]  # effective batch 4 x 2
    losses = [float(r["loss"]) for r in rows]
    assert losses[-1] < losses[0], losses


def test_two_process_time_budget_stops_together(tmp_path):
    """A --minutes run: ranks agree on the schedule and on when to stop (no hang, identical weights)."""
    run, dump = tmp_path / "run", tmp_path / "weights"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(SCRIPT),
           str(run), str(dump), "train.minutes=0.1", "train.steps=null", "train.epochs=null", "model.width=8",
           "train.batch_size=2", "data.val_frames=2", "train.lr_schedule=cosine"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = load_file(str(dump / "rank0.safetensors")), load_file(str(dump / "rank1.safetensors"))
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
