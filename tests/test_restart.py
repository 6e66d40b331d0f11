"""Faults survived: the same command restarts a killed run, torchrun's elastic restart resumes it,
a time budget keeps its learning-rate curve across a restart, and a bare install names its extras."""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ENV = dict(os.environ, OMP_NUM_THREADS="1")
TINY = ["--preset", "tiny", "--no-progress", "--set", "model.width=8", "--set", "train.batch_size=2",
        "--set", "data.val_frames=2", "--set", "train.log_every=1", "--set", "train.ckpt_every=4",
        "--set", "train.val_every=1000"]


def _rows(run: Path, split: str = "train") -> list[dict]:
    if not (run / "metrics.csv").exists():
        return []
    with open(run / "metrics.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r["split"] == split]


def _kill_when(proc: subprocess.Popen, run: Path, step: int, pid: int | None = None, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = _rows(run)
        if rows and int(rows[-1]["step"]) >= step:
            os.kill(pid or proc.pid, signal.SIGKILL)
            return
        if proc.poll() is not None:
            raise AssertionError("the run ended before the kill")
        time.sleep(0.02)
    raise AssertionError("the run did not get going")


def test_the_same_command_restarts_a_killed_run_bit_for_bit(tmp_path):
    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "srnpose", "train", "--data", "synth", "--steps", "30", "--out", str(out),
                "--resume"] + TINY

    clean = subprocess.run(command(tmp_path / "clean"), env=ENV, capture_output=True, text=True, timeout=240)
    assert clean.returncode == 0, clean.stderr[-2000:]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(command(killed), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _kill_when(proc, killed, 10)
    finally:
        proc.wait()
    again = subprocess.run(command(killed), env=ENV, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming" in again.stderr
    a, b = load_file(str(tmp_path / "clean" / "last" / "model.safetensors")), \
        load_file(str(killed / "last" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "restarted weights differ"
    assert [int(r["step"]) for r in _rows(killed)] == list(range(1, 31))  # no gap, no duplicate
    # a conflicting flag is refused, naming the key and both values
    other = subprocess.run(command(killed)[:-len(TINY)] + TINY + ["--set", "train.lr=0.5"], env=ENV,
                           capture_output=True, text=True, timeout=120)
    assert other.returncode == 2 and "train.lr is 0.001 in the saved run but 0.5 here" in other.stderr


def test_a_kill_of_the_whole_process_group_still_saves_the_run(tmp_path):
    """SIGTERM to the process group (a terminal's hang-up, a service manager's stop) also stops the loader
    process; torch then raises in the middle of the save. The save is tried again: last/ holds the step
    the run reached, not the last periodic checkpoint."""
    from srnpose.training.checkpoint import load_train_state

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "srnpose", "train", "--data", "synth", "--steps", "10000", "--out", str(run),
           "--workers", "1"] + TINY + ["--set", "train.ckpt_every=1000"]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (_rows(run) and int(_rows(run)[-1]["step"]) >= 6):
            assert proc.poll() is None, "the run ended before the kill"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "before stopping" in err and "could not save" not in err, err[-2000:]
    step = load_train_state(run / "last" / "train_state.pt")["step"]
    assert step >= 6 and step >= int(_rows(run)[-1]["step"])  # not the periodic checkpoint (none before 1000)


def test_the_save_before_stopping_is_tried_again_when_a_dying_loader_interrupts_it(tmp_path, monkeypatch, capsys):
    """torch reports a loader process killed with the run by raising in the main process, wherever it is;
    in the middle of the save before stopping, that try is lost and the next one saves the run."""
    from srnpose.training import loop
    from srnpose.training.checkpoint import load_train_state
    from srnpose.training.run_config import build_config

    cfg = build_config("tiny", None, ["data.spec=synth", "model.width=8", "train.batch_size=2", "data.val_frames=2",
                                      "train.steps=50", "train.ckpt_every=1000", "train.val_every=1000"])
    real_save, tries = loop.save_last, []

    def save_interrupted_once(run):
        tries.append(run.state["step"])
        if len(tries) == 1:
            raise RuntimeError("DataLoader worker (pid 1234) is killed by signal: Terminated.")
        real_save(run)

    def kill(step, info, model):
        if step == 7:
            raise KeyboardInterrupt("signal 15")

    monkeypatch.setattr(loop, "save_last", save_interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        loop.train(cfg, tmp_path / "run", progress=False, on_step=kill)
    assert tries == [7, 7] and load_train_state(tmp_path / "run" / "last" / "train_state.pt")["step"] == 7
    assert "saved" in capsys.readouterr().err


def test_torchrun_elastic_restart_survives_a_killed_worker(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--max-restarts=1",
           "--monitor-interval=0.2", "-m", "srnpose", "train", "--data", "synth", "--steps", "40", "--out", str(run),
           "--resume", "--device", "cpu"] + TINY
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        workers: list[int] = []
        while time.time() < deadline and len(workers) < 2:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            workers = [int(p) for p in children.read_text().split()] if children.exists() else []
            time.sleep(0.1)
        assert len(workers) == 2, "torchrun did not start two workers"
        _kill_when(proc, run, 12, pid=workers[1])
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    steps = [int(r["step"]) for r in _rows(run)]
    assert steps == list(range(1, 41)), steps  # resumed from the last checkpoint: no gap, no duplicate
    assert out.count("resuming") >= 1


def test_a_time_budget_keeps_its_learning_rate_curve_across_a_restart(tmp_path, monkeypatch):
    from srnpose.training import loop
    from srnpose.training.checkpoint import load_train_state
    from srnpose.training.loop import COMMIT_AFTER_STEPS, train
    from srnpose.training.run_config import build_config
    from srnpose.training.schedule import lr_at

    # The clock's cap (TIME_CAP_FACTOR x the budget) stops a run whose machine slowed down after it
    # committed its length; on a loaded machine that would cut this run short. The curve is the point here.
    monkeypatch.setattr(loop, "TIME_CAP_FACTOR", 1e6)

    cfg = build_config("tiny", None, ["data.spec=synth", "model.width=8", "train.batch_size=2", "data.val_frames=2",
                                      "train.log_every=1", "train.ckpt_every=1000", "train.val_every=1000",
                                      "train.steps=null", "train.epochs=null", "train.minutes=0.25",
                                      "train.lr_schedule=cosine"])
    stop_at = COMMIT_AFTER_STEPS + 20

    def interrupt(step, info, model):
        if step == stop_at:
            raise KeyboardInterrupt("a kill")

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run, progress=False, on_step=interrupt)
    state = load_train_state(run / "last" / "train_state.pt")
    total = state["total_steps"]
    assert state["step"] == stop_at and total > stop_at  # committed before the interruption
    train(cfg, run, resume=True, progress=False)
    rows = _rows(run)
    steps, lrs = [int(r["step"]) for r in rows], [float(r["lr"]) for r in rows]
    assert steps == list(range(1, len(rows) + 1)) and steps[-1] == total
    per_epoch = cfg.train.epoch_size / cfg.train.batch_size
    for step, lr in zip(steps, lrs):  # one curve: each logged lr is the committed schedule's, no jump
        expected = lr_at(step - 1, cfg.train, per_epoch, total if step > COMMIT_AFTER_STEPS else None)
        assert math.isclose(lr, expected, rel_tol=1e-4), (step, lr, expected)
    assert lrs[-1] < 0.05 * lrs[0]  # it reached the end of its decay


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> str:
    """A virtual environment with srnpose and its required packages but none of its extras."""
    root = tmp_path_factory.mktemp("bare")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    site = Path(sysconfig.get_paths()["purelib"])
    shown = root / "site"
    shown.mkdir()
    extras = ("onnx", "onnxruntime", "pyrealsense2", "tensorboard")
    for entry in site.iterdir():
        base = entry.name.split("-")[0].split(".")[0].lower()
        if base in extras or entry.suffix == ".pth" or entry.name.startswith("__editable__"):
            continue
        (shown / entry.name).symlink_to(entry)
    venv_site = next((root / "venv" / "lib").glob("python*/site-packages"))
    src = Path(__file__).resolve().parents[1] / "src"
    (venv_site / "srnpose_bare.pth").write_text(f"{shown}\n{src}\n")
    python = str(root / "venv" / "bin" / "python")
    probe = subprocess.run([python, "-c", "import torch, srnpose; import onnxruntime"], capture_output=True, text=True)
    assert "No module named 'onnxruntime'" in probe.stderr, probe.stderr
    return python


def test_a_bare_install_names_the_extra_and_runs_the_torch_paths(bare_python, tmp_path):
    from srnpose.config import SRNConfig, to_dict
    from srnpose.model import SRN
    from srnpose.training.checkpoint import save_checkpoint

    cfg = SRNConfig(num_stages=2, input_size=32, width=8, topk=8)
    save_checkpoint(tmp_path / "run" / "last", SRN.from_config(cfg).eval(), {"model": to_dict(cfg)})
    frames = tmp_path / "frames.npy"
    import numpy as np

    from srnpose.synth import render_frame

    np.save(frames, render_frame(1).depth_mm)
    run = str(tmp_path / "run")
    needs_onnx = [["export", "--checkpoint", run, "--out", str(tmp_path / "m.onnx")],
                  ["predict", str(frames), "--checkpoint", run, "--camera", "icvl", "--backend", "onnxruntime",
                   "--out", str(tmp_path / "p")],
                  ["benchmark", "--checkpoint", run, "--backends", "onnxruntime", "--frames", "2"]]
    for argv in needs_onnx:
        done = subprocess.run([bare_python, "-m", "srnpose", *argv], env=ENV, capture_output=True, text=True,
                              timeout=120)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert "pip install 'srnpose[onnx]'" in lines[0]
    for argv in (["predict", str(frames), "--checkpoint", run, "--camera", "icvl", "--out", str(tmp_path / "t")],
                 ["benchmark", "--checkpoint", run, "--backends", "torch", "--frames", "2", "--warmup", "1"]):
        done = subprocess.run([bare_python, "-m", "srnpose", *argv], env=ENV, capture_output=True, text=True,
                              timeout=180)
        assert done.returncode == 0, done.stderr[-2000:]
