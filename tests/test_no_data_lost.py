"""No data lost (issue 21): atomic outputs, full disks, and the files a command must not touch.

One test per case. A full disk is simulated with the file size limit (``ulimit -f``, RLIMIT_FSIZE) in a
subprocess that ignores SIGXFSZ, so a write past the limit fails with EFBIG, as on a full disk.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from srnpose.cli import main
from srnpose.config import SRNConfig, to_dict
from srnpose.model import SRN
from srnpose.training import checkpoint as ckpt

TINY = SRNConfig(num_joints=21, num_stages=1, input_size=32, width=8, topk=8)
TINY_TRAIN = ["--data", "synth", "--preset", "tiny", "--no-progress", "--set", "model.width=8", "--set",
              "train.batch_size=2", "--set", "data.val_frames=2", "--set", "train.ckpt_every=2"]


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A pose model's run folder as training leaves it: config.yaml, last/ (a tiny model)."""
    torch.manual_seed(0)
    config = {"model": to_dict(TINY), "data": {"spec": "synth", "cube_mm": 250.0, "layout": "canonical"},
              "train": {"batch_size": 2}}
    run = tmp_path / "run"
    ckpt.save_checkpoint(run / "last", SRN.from_config(TINY), config, {"step": 1})
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return run


@pytest.fixture
def frames_npy(tmp_path) -> Path:
    """Two synthetic frames (ICVL camera, mm) as a .npy stack."""
    from srnpose.synth import render_frame

    path = tmp_path / "frames.npy"
    depth = render_frame(1).depth_mm
    np.save(path, np.stack([depth, depth]))
    return path


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (names relative to it) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _err_lines(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.replace("\r", "\n").splitlines() if ln.strip()]


def _limited(argv: list[str], limit_bytes: int, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m srnpose ARGV`` with no file allowed to grow past ``limit_bytes`` (a full disk)."""
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", "srnpose", *argv], cwd=cwd, env=env, preexec_fn=limit,
                          capture_output=True, text=True, timeout=600)


def _one_error_line(proc: subprocess.CompletedProcess, command: str) -> str:
    lines = [ln for ln in proc.stderr.replace("\r", "\n").splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert lines and lines[-1].startswith(f"srnpose {command}: error: cannot write "), lines
    assert "free there" in lines[-1], lines[-1]
    return lines[-1]


def _no_temporary_files(folder: Path) -> None:
    from srnpose.outputs import is_temp_name

    left = [str(p) for p in folder.rglob("*") if is_temp_name(p.name) or p.name.endswith(".tmp")]
    assert not left, left


# ------------------------------------------------------------------------------ data lost or changed


def test_a_benchmark_report_never_replaces_a_runs_file(run_dir, tmp_path, capsys, monkeypatch):
    config = run_dir / "config.yaml"
    before = config.read_bytes()
    rc = main(["benchmark", "--checkpoint", str(run_dir), "--backends", "torch", "--frames", "1", "--warmup", "0",
               "--json", str(config)])
    assert rc == 2
    assert _err_lines(capsys) == [f"srnpose benchmark: error: --json {config}: exists and is not a benchmark "
                                  "report; refusing to replace it (remove it or choose another name)"]
    assert config.read_bytes() == before
    # an earlier benchmark report is replaced, as asked
    import srnpose.inference.bench

    report = {"model": {}, "machine": {}, "settings": {}, "results": []}
    monkeypatch.setattr(srnpose.inference.bench, "run_benchmark", lambda model, **kw: dict(report, results=[1]))
    monkeypatch.setattr(srnpose.inference.bench, "format_table", lambda r: "table")
    old = tmp_path / "bench.json"
    old.write_text('{"model": {}, "machine": {}, "settings": {}, "results": []}\n')
    assert main(["benchmark", "--checkpoint", str(run_dir), "--backends", "torch", "--json", str(old)]) == 0
    assert '"results": [\n    1\n  ]' in old.read_text()


def test_a_full_disk_during_export_leaves_the_earlier_export_intact(run_dir, tmp_path):
    out = tmp_path / "e.onnx"
    out.write_bytes(b"an earlier export, good\n" * 1000)
    before = _files(tmp_path)
    proc = _limited(["export", "--checkpoint", str(run_dir), "--out", str(out)], 300_000, tmp_path)  # the export is 730 kB
    line = _one_error_line(proc, "export")
    assert str(out) in line
    assert _files(tmp_path) == before  # e.onnx bitwise as it was, nothing beside it


def test_a_locator_is_never_trained_into_a_pose_run(run_dir, capsys):
    before = _files(run_dir)
    rc = main(["locator", "train", "--out", str(run_dir), "--steps", "1", "--batch", "2"])
    assert rc == 2
    assert _err_lines(capsys) == [
        f"srnpose locator: error: --out {run_dir}: is a pose model's training run; refusing to write into it; "
        f"train the locator in a folder of its own, then attach it: srnpose locator attach LOCATOR_DIR {run_dir}"]
    assert _files(run_dir) == before


# ------------------------------------------------------------------------------ a command writes only what it owns


def test_a_training_run_is_never_put_into_a_predict_folder(tmp_path, capsys):
    folder = tmp_path / "pred"
    (folder / "overlays").mkdir(parents=True)
    (folder / "predictions.jsonl").write_text('{"frame": "a"}\n')
    (folder / "overlays" / "a.png").write_bytes(b"png")
    before = _files(folder)
    assert main(["train", *TINY_TRAIN, "--steps", "1", "--out", str(folder)]) == 2
    assert _err_lines(capsys) == [f"srnpose train: error: --out {folder}: is a predict output folder; refusing to "
                                  "write into it; give the run a folder of its own"]
    assert _files(folder) == before


def test_an_empty_out_is_refused(run_dir, frames_npy, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "predictions.jsonl"
    mine.write_text("the user's own file\n")
    assert main(["predict", str(frames_npy), "--checkpoint", str(run_dir), "--camera", "icvl", "--out", ""]) == 2
    assert _err_lines(capsys) == ["srnpose predict: error: --out '': empty; give a folder or file name "
                                  "('.' for the current folder)"]
    assert mine.read_text() == "the user's own file\n"
    assert main(["train", *TINY_TRAIN, "--steps", "1", "--out", ""]) == 2
    assert _err_lines(capsys)[-1].startswith("srnpose train: error: --out '': empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames.npy", "predictions.jsonl", "run"]


# ------------------------------------------------------------------------------ a full disk is one line


def test_a_full_disk_during_training_keeps_the_last_checkpoint_and_resumes(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY_TRAIN, "--steps", "2", "--out", str(run)]) == 0
    last = _files(run / "last")
    weights = (run / "last" / "model.safetensors").stat().st_size
    state = (run / "last" / "train_state.pt").stat().st_size
    assert weights < state  # the limit lets the weights through and stops the training state
    proc = _limited(["train", "--out", str(run), "--resume", "--extend", "--steps", "4", "--no-progress"],
                    (weights + state) // 2, tmp_path)
    line = _one_error_line(proc, "train")
    assert line.startswith(f"srnpose train: error: cannot write {run / 'last' / 'train_state.pt'}: file too large")
    assert line.endswith(f"the last complete checkpoint {run / 'last'} (step 2) is kept: free some space, then "
                         "rerun with --resume")
    assert _files(run / "last") == last
    assert not (run / "last.tmp").exists()
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume", "--extend", "--steps", "4", "--no-progress"]) == 0  # space freed
    assert int(ckpt.load_train_state(run / "last" / "train_state.pt")["step"]) == 4


def test_a_full_disk_during_synth_leaves_the_dataset_as_it_was(tmp_path):
    data = tmp_path / "data"
    assert main(["synth", "--out", str(data), "--frames", "2", "--resolution", "160x120"]) == 0
    before = _files(data)
    proc = _limited(["synth", "--out", str(data), "--frames", "3", "--resolution", "160x120", "--overwrite"],
                    4000, tmp_path)  # a frame is 9-15 kB
    assert str(data / "depth") in _one_error_line(proc, "synth")
    assert _files(data) == before
    _no_temporary_files(data)
    proc = _limited(["synth", "--out", str(tmp_path / "new"), "--frames", "2", "--resolution", "160x120"], 4000,
                    tmp_path)
    _one_error_line(proc, "synth")
    assert not (tmp_path / "new").exists()  # the folder it created is gone


def test_a_full_disk_during_predict_leaves_the_earlier_outputs(run_dir, frames_npy, tmp_path):
    out = tmp_path / "pred"
    assert main(["predict", str(frames_npy), "--checkpoint", str(run_dir), "--camera", "icvl", "--out", str(out)]) == 0
    (out / "predictions.jsonl").write_text("an earlier run's predictions\n")
    before = _files(out)
    proc = _limited(["predict", str(frames_npy), "--checkpoint", str(run_dir), "--camera", "icvl", "--out", str(out)],
                    20_000, tmp_path)  # an overlay is 44 kB
    assert str(out / "overlays") in _one_error_line(proc, "predict")
    assert _files(out) == before
    _no_temporary_files(out)


# ------------------------------------------------------------------------------ tracebacks and silent surprises


@pytest.mark.parametrize("command", ["export", "benchmark"])
def test_a_target_in_proc_is_one_line(command, run_dir, capsys):
    if command == "export":
        argv, flag, target = ["export", "--checkpoint", str(run_dir), "--out", "/proc/x.onnx"], "--out", "/proc/x.onnx"
    else:
        argv = ["benchmark", "--checkpoint", str(run_dir), "--backends", "torch", "--frames", "1", "--warmup", "0",
                "--json", "/proc/x.json"]
        flag, target = "--json", "/proc/x.json"
    assert main(argv) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith(f"srnpose {command}: error: {flag} {target}: cannot write in /proc")


def test_a_preview_of_another_kind_is_one_line_and_writes_nothing(run_dir, tmp_path, capsys):
    config = run_dir / "config.yaml"
    before = config.read_bytes()
    assert main(["synth", "--out", str(tmp_path / "s"), "--frames", "1", "--preview", str(config)]) == 2
    assert _err_lines(capsys) == [f"srnpose synth: error: --preview {config}: expected a .png file name"]
    assert config.read_bytes() == before
    assert not (tmp_path / "s").exists()


def test_int8_mode_without_int8_is_refused(run_dir, tmp_path, capsys):
    out = tmp_path / "e.onnx"
    assert main(["export", "--checkpoint", str(run_dir), "--out", str(out), "--int8-mode", "dynamic"]) == 2
    assert _err_lines(capsys) == ["srnpose export: error: --int8-mode dynamic: goes with --int8 (without it the "
                                  "export is fp32)"]
    assert not out.exists()


def test_a_negative_fx_is_refused_naming_mirrored(run_dir, frames_npy, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["predict", str(frames_npy), "--checkpoint", str(run_dir), "--intrinsics", "-241.42,241.42,160,120",
                 "--out", str(out)]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and "fx=-241.42 px is negative" in lines[0] and "--mirrored" in lines[0], lines
    assert not out.exists()


def test_a_frame_in_metres_after_a_good_one_warns(run_dir, tmp_path, capsys):
    import srnpose
    from srnpose.synth import render_frame

    good = render_frame(1).depth_mm.astype(np.float32)
    metres = good / 1000.0
    stack = tmp_path / "mixed.npy"
    np.save(stack, np.stack([good, metres, metres]))
    assert main(["predict", str(stack), "--checkpoint", str(run_dir), "--camera", "icvl", "--no-overlays",
                 "--out", str(tmp_path / "o")]) == 0
    out, err = capsys.readouterr()
    warned = [ln for ln in err.replace("\r", "\n").splitlines() if "warning" in ln and "median depth" in ln]
    assert len(warned) == 1 and f"{stack} (frame 1)" in warned[0], warned
    assert "2 frames look like another depth unit (--depth-unit)" in out
    est = srnpose.load(str(run_dir), backend="torch")  # the API: every frame that looks wrong warns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.predict(good, camera="icvl")
    for _ in range(2):
        with pytest.warns(UserWarning, match="too near for a depth camera: metres"):
            est.predict(metres, camera="icvl")


# ------------------------------------------------------------------------------ a failed command leaves no folder


@pytest.mark.parametrize("case", ["missing file", "jpeg folder", "8-bit png", "wrong camera"])
def test_a_failed_predict_leaves_no_folder_it_created(case, run_dir, tmp_path, capsys):
    from PIL import Image

    camera = "icvl"
    if case == "missing file":
        frames = tmp_path / "nothing.png"
    elif case == "jpeg folder":
        frames = tmp_path / "jpegs"
        frames.mkdir()
        Image.fromarray(np.zeros((240, 320, 3), np.uint8)).save(frames / "a.jpg")
    elif case == "8-bit png":
        frames = tmp_path / "eight.png"
        Image.fromarray(np.full((240, 320), 90, np.uint8)).save(frames)
    else:
        frames, camera = tmp_path / "f.png", "kinect2"
        Image.fromarray(np.full((240, 320), 600, np.uint16)).save(frames)
    out = tmp_path / "new" / "out"
    assert main(["predict", str(frames), "--checkpoint", str(run_dir), "--camera", camera, "--out", str(out)]) == 2
    lines = [ln for ln in _err_lines(capsys) if not ln.startswith("predict:")]  # the progress bar aside
    assert len(lines) == 1 and lines[0].startswith("srnpose predict: error: "), lines
    assert not (tmp_path / "new").exists()


def test_no_overlays_creates_no_overlays_folder(run_dir, frames_npy, tmp_path):
    out = tmp_path / "o"
    assert main(["predict", str(frames_npy), "--checkpoint", str(run_dir), "--camera", "icvl", "--no-overlays",
                 "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["predictions.jsonl"]


def test_an_interrupted_write_leaves_the_old_files_and_no_temporary_ones(tmp_path):
    from srnpose.outputs import atomic_path, output_folder

    old = tmp_path / "kept" / "a.json"
    old.parent.mkdir()
    old.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(old) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        with output_folder(old.parent) as files:
            files.write_text("a.json", "new\n")
            files.write_text("sub/b.txt", "new\n")
            raise KeyboardInterrupt
    assert _files(tmp_path) == {"kept/a.json": b"old\n"}
    with pytest.raises(KeyboardInterrupt):
        with output_folder(tmp_path / "created" / "here") as files:
            files.write_text("a.json", "new\n")
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]  # the folders it created are gone


# ------------------------------------------------------------------------------ resume bitwise, RNG state included


def test_a_stopped_and_resumed_run_then_extended_matches_one_never_stopped(tmp_path):
    from safetensors.torch import load_file

    from srnpose.config import apply_overrides
    from srnpose.training.loop import train
    from srnpose.training.run_config import build_config, load_resume_config

    fast = ["data.spec=synth", "model.width=8", "data.val_frames=2", "train.batch_size=2", "train.log_every=2",
            "train.val_every=100", "train.ckpt_every=2"]
    train(build_config("tiny", None, fast + ["train.steps=4"]), tmp_path / "a", progress=False)
    train(build_config("tiny", None, fast + ["train.steps=2"]), tmp_path / "b", progress=False)  # stopped at 2
    for run, steps in (("b", 4), ("a", 6), ("b", 6)):  # b resumed to 4; both extended to 6
        cfg = apply_overrides(load_resume_config(tmp_path / run), [f"train.steps={steps}"])
        train(cfg, tmp_path / run, resume=True, progress=False, extend=True)
    a = ckpt.load_train_state(tmp_path / "a" / "last" / "train_state.pt")
    b = ckpt.load_train_state(tmp_path / "b" / "last" / "train_state.pt")
    assert int(a["step"]) == int(b["step"]) == 6
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])  # the saved torch RNG state, bit for bit
    wa = load_file(str(tmp_path / "a" / "last" / "model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "last" / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_failed_training_leaves_no_folder_it_created(tmp_path):
    from srnpose.cli import main

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--data", f"nyu:{empty}", "--preset", "tiny", "--steps", "2",
                 "--out", str(tmp_path / "new")]) == 2
    assert not (tmp_path / "new").exists()  # not even its .lock
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert main(["train", "--data", f"nyu:{empty}", "--preset", "tiny", "--steps", "2", "--out", str(mine)]) == 2
    assert (mine / "notes.txt").read_text() == "keep"  # a folder that was there is never removed


def test_live_refuses_an_empty_jsonl(tmp_path, capsys):
    from srnpose.cli import main

    assert main(["live", "--replay", str(tmp_path), "--camera", "kinect2", "--jsonl", ""]) == 2
    assert "--jsonl ''" in capsys.readouterr().err


def test_adapt_refuses_an_empty_out_and_another_commands_folder(tmp_path, capsys):
    from srnpose.cli import main

    frames = tmp_path / "frames"
    frames.mkdir()
    assert main(["adapt", str(frames), "--camera", "icvl", "--out", "", "--steps", "1"]) == 2
    assert "--out ''" in capsys.readouterr().err
    predicted = tmp_path / "predicted"
    predicted.mkdir()
    (predicted / "predictions.jsonl").write_text("")
    assert main(["adapt", str(frames), "--camera", "icvl", "--out", str(predicted), "--steps", "1"]) == 2
    assert "refusing to write into it" in capsys.readouterr().err
    assert sorted(p.name for p in predicted.iterdir()) == ["predictions.jsonl"]


def test_json_lines_log_resumes_at_its_checkpoint(tmp_path):
    """adapt.jsonl's writer: a resumed run keeps the lines up to its checkpoint's step (later ones and a
    torn last line go, so none is doubled); a fresh run starts the file afresh."""
    import json

    from srnpose.training.log import JsonLinesWriter

    path = tmp_path / "adapt.jsonl"
    log = JsonLinesWriter(path)
    for step in (1, 2, 3):
        log.write({"step": step, "energy": 1.0 / step})
    with open(path, "a") as f:
        f.write('{"step": 4, "ener')  # a kill mid-line
    JsonLinesWriter(path, resume_step=2).write({"step": 3, "energy": 0.5})
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 3]
    JsonLinesWriter(path)
    assert path.read_text() == ""
