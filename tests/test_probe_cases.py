"""One test per kind that benchmarks/probe.py found not clean and that is fixed: the exact line a user sees."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from srnpose.cli import main
from srnpose.config import SRNConfig, to_dict
from srnpose.errors import UserError
from srnpose.model import SRN
from srnpose.training import checkpoint as ckpt

TINY = SRNConfig(num_joints=21, num_stages=1, input_size=32, width=8, topk=8)
CORRUPT = "model.safetensors does not match its checksum (truncated or corrupted)"


def _save(folder: Path, seed: int = 0, step: int = 1) -> Path:
    torch.manual_seed(seed)
    config = {"model": to_dict(TINY), "data": {"spec": "synth", "cube_mm": 250.0, "layout": "canonical"},
              "train": {"batch_size": 2}}
    return ckpt.save_checkpoint(folder, SRN.from_config(TINY), config, {"step": step})


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))


def _corrupt_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    _save(run / "last", step=1)
    _save(run / "last", step=2)  # last/ and last.prev/
    for sub in ("last", "last.prev"):
        _flip(run / sub / "model.safetensors")
    return run


def _err_lines(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


class _Evil:
    def __reduce__(self):
        return (print, ("PROBE-PWNED",))


# ------------------------------------------------------------------------------ checkpoints


def test_a_crafted_pickle_is_refused_in_one_line_without_torchs_warning(tmp_path, capsys):
    import shutil

    folder = tmp_path / "evil"
    folder.mkdir()
    shutil.copy(_save(tmp_path / "good") / "config.yaml", folder / "config.yaml")
    evil = folder / "model.pt"
    with open(evil, "wb") as f:
        pickle.dump({"stem.weight": _Evil()}, f)  # protocol 4: torch warns about it before refusing
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = main(["evaluate", "--checkpoint", str(evil), "--data", "synth", "--out", str(tmp_path / "e")])
    out = capsys.readouterr()
    assert rc == 2 and "PROBE-PWNED" not in out.out
    # one line: ours, then what torch's unpickler refused (its wording is torch's; "Unsupported operand 149" here)
    assert len(out.err.splitlines()) == 1 and "PyTorch 2.6" not in out.err
    assert out.err.startswith(f"srnpose evaluate: error: {evil}: refused to load: not a plain tensor file "
                              "(weights_only): Unsupported ")
    assert not caught


def test_a_crafted_train_state_names_the_global_it_refused(tmp_path):
    path = tmp_path / "train_state.pt"
    torch.save({"step": _Evil()}, path)
    with pytest.raises(UserError) as exc:
        ckpt.load_train_state(path)
    message = str(exc.value)
    assert message.startswith(f"{path}: refused to load: not a plain tensor file (weights_only): Unsupported global: ")
    assert "print" in message and "\n" not in message and "PyTorch 2.6" not in message and len(message) < 300


def test_every_checkpoint_corrupt_is_one_error_line_and_no_warnings(tmp_path, capsys):
    run = _corrupt_run(tmp_path)
    with pytest.raises(UserError) as exc:
        ckpt.load_checkpoint(run)
    assert str(exc.value) == f"checkpoint {run}: every checkpoint fails its checksums (last, last.prev: {CORRUPT})"
    assert capsys.readouterr().err == ""


def test_a_fallback_is_said_once_per_process(tmp_path, capsys):
    run = tmp_path / "run"
    _save(run / "last", step=1)
    _save(run / "last", step=2)
    _flip(run / "last" / "model.safetensors")
    for _ in range(3):  # the command, the run-folder check and the training each resolve it
        assert ckpt.resolve_checkpoint_dir(run / "last") == run / "last.prev"
    assert _err_lines(capsys) == [f"warning: checkpoint {run / 'last'}: {CORRUPT}; trying the previous one"]


def test_a_corrupt_best_falls_back_to_last_with_a_warning(tmp_path, capsys):
    run = tmp_path / "run"
    _save(run / "best")
    _save(run / "last")
    _flip(run / "best" / "model.safetensors")
    assert ckpt.load_checkpoint(run).path == run / "last" / "model.safetensors"
    assert _err_lines(capsys) == [f"warning: checkpoint {run / 'best'}: {CORRUPT}; trying the previous one"]


@pytest.mark.parametrize("resume", [True, False])
def test_train_refuses_a_run_whose_every_checkpoint_is_corrupt(tmp_path, capsys, resume):
    run = _corrupt_run(tmp_path)
    argv = ["train", "--data", "synth", "--preset", "tiny", "--steps", "2", "--out", str(run), "--no-progress"]
    assert main(argv + (["--resume"] if resume else [])) == 2
    assert _err_lines(capsys) == [
        f"srnpose train: error: --out {run}: every checkpoint fails its checksums (last, last.prev: {CORRUPT}); "
        "nothing to resume from, and a new run would overwrite them: move the folder away or choose another --out"]
    assert (run / "last" / "COMPLETE").is_file() and (run / "last.prev" / "COMPLETE").is_file()  # left as it was


def test_a_locked_run_is_refused_before_the_resuming_line(tmp_path, capsys):
    from srnpose.training.lock import run_lock

    run = tmp_path / "run"
    _save(run / "last")
    with run_lock(run):  # another training holds the folder
        rc = main(["train", "--data", "synth", "--preset", "tiny", "--steps", "2", "--out", str(run), "--resume",
                   "--no-progress"])
    assert rc == 2
    assert _err_lines(capsys) == [
        f"srnpose train: error: --out {run}: another training (PID {os.getpid()}) is using this run folder"]


# ------------------------------------------------------------------------------ output paths


def _community_files(tmp_path: Path, joints: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    gt = np.concatenate([rng.uniform(100, 200, (4, joints, 2)), rng.uniform(400, 600, (4, joints, 1))], -1)
    labels, pred = tmp_path / f"labels{joints}.txt", tmp_path / f"pred{joints}.txt"
    np.savetxt(labels, gt.reshape(4, -1), fmt="%.3f")
    np.savetxt(pred, (gt + 1.0).reshape(4, -1), fmt="%.3f")
    return labels, pred


def test_evaluate_predictions_out_is_a_file(tmp_path, capsys):
    labels, pred = _community_files(tmp_path, 16)
    blocker = tmp_path / "a_file.txt"
    blocker.write_text("mine\n")
    rc = main(["evaluate", "--predictions", f"A={pred}", "--labels", str(labels), "--dataset", "icvl",
               "--out", str(blocker)])
    assert rc == 2
    assert _err_lines(capsys) == [f"srnpose evaluate: error: --out {blocker}: is a file, not a folder"]


def test_evaluate_checkpoint_out_cannot_be_created(tmp_path, capsys):
    blocker = tmp_path / "a_file.txt"
    blocker.write_text("mine\n")
    _save(tmp_path / "run" / "last")
    rc = main(["evaluate", "--checkpoint", str(tmp_path / "run"), "--data", "synth", "--out", str(blocker / "sub")])
    assert rc == 2
    assert _err_lines(capsys) == [
        f"srnpose evaluate: error: --out {blocker / 'sub'}: cannot create the folder (Not a directory)"]


def test_evaluate_a_missing_checkpoint_creates_no_folder(tmp_path, capsys):
    gone = tmp_path / "nowhere"
    assert main(["evaluate", "--checkpoint", str(gone), "--data", "synth"]) == 2
    assert _err_lines(capsys) == [f"srnpose evaluate: error: checkpoint {gone}: no such file or folder"]
    assert not gone.exists()


def test_live_jsonl_that_is_a_folder(tmp_path, capsys):
    rc = main(["live", "--replay", str(tmp_path), "--camera", "icvl", "--checkpoint", str(tmp_path / "run"),
               "--backend", "torch", "--jsonl", str(tmp_path)])
    assert rc == 2
    assert _err_lines(capsys) == [f"srnpose live: error: --jsonl {tmp_path}: is a folder, expected a file name"]


def test_synth_refuses_a_folder_that_is_not_empty(tmp_path, capsys):
    out = tmp_path / "data"
    (out / "depth").mkdir(parents=True)
    (out / "depth" / "000004.png").write_bytes(b"an earlier run's frame")
    assert main(["synth", "--out", str(out), "--frames", "1"]) == 2
    assert _err_lines(capsys) == [
        f"srnpose synth: error: --out: {out} is not empty; add --overwrite to write over it or choose a new folder"]


def test_writing_a_smaller_dataset_over_a_larger_one_removes_the_stale_frames(tmp_path):
    from srnpose.synth import read_labels, write_dataset

    out = tmp_path / "data"
    write_dataset(out, 3, seed=1, resolution=(64, 48), progress=False)
    write_dataset(out, 1, seed=1, resolution=(64, 48), progress=False)
    assert sorted(p.name for p in (out / "depth").iterdir()) == ["000000.png"]
    assert len(read_labels(out / "labels.txt")) == 1


# ------------------------------------------------------------------------------ flags and plausibility


def test_predict_fps_zero(tmp_path, capsys):
    rc = main(["predict", str(tmp_path / "f.npy"), "--checkpoint", str(tmp_path), "--camera", "icvl", "--fps", "0",
               "--out", str(tmp_path / "o")])
    assert rc == 2
    assert _err_lines(capsys) == ["srnpose predict: error: --fps: must be > 0, got 0.0"]


def test_depth_unit_warning_names_the_flag():
    from srnpose.inference.frame_path import depth_unit_warning

    depth_mm = np.full((8, 8), 500, np.uint16)
    depth_mm[0, 0] = 0  # no measurement: ignored
    assert depth_unit_warning(depth_mm, 1.0, "--depth-unit") is None
    assert depth_unit_warning(np.zeros((4, 4), np.float32), 1.0) is None  # no hand, no opinion
    assert depth_unit_warning(depth_mm.astype(np.float32) / 1000, 1.0, "--depth-unit") == \
        "median depth is 0.5 mm, too near for a depth camera: metres? give --depth-unit 1000"
    assert depth_unit_warning(depth_mm, 1000.0, "--depth-unit") == \
        "median depth is 5e+05 mm, beyond any depth camera's range: is --depth-unit 1000 (mm per raw unit) right?"


def test_predict_frames_in_metres_warn_once(tmp_path, capsys):
    from srnpose.synth import render_frame

    _save(tmp_path / "run" / "last")
    frames = tmp_path / "metres.npy"
    depth_m = render_frame(1).depth_mm.astype(np.float32) / 1000.0
    np.save(frames, np.stack([depth_m, depth_m]))
    rc = main(["predict", str(frames), "--checkpoint", str(tmp_path / "run"), "--camera", "icvl", "--no-overlays",
               "--out", str(tmp_path / "o")])
    assert rc == 0
    warned = [ln for ln in capsys.readouterr().err.replace("\r", "\n").splitlines() if "warning" in ln]
    median_mm = float(np.median(depth_m[depth_m > 0]))
    assert warned == [f"srnpose predict: warning: {frames} (frame 0): median depth is {median_mm:.3g} mm, too near for a "
                      "depth camera: metres? give --depth-unit 1000"]


@pytest.mark.parametrize("joints, dataset, expected", [(14, "icvl", "16"), (16, "nyu", "14 or 36")])
def test_evaluate_files_of_another_dataset(tmp_path, capsys, joints, dataset, expected):
    labels, pred = _community_files(tmp_path, joints)
    rc = main(["evaluate", "--predictions", f"A={pred}", "--labels", str(labels), "--dataset", dataset,
               "--out", str(tmp_path / "e")])
    assert rc == 2
    assert _err_lines(capsys) == [
        f"srnpose evaluate: error: --dataset {dataset}: {labels} has {joints} joints per line, but {dataset} files "
        f"have {expected} (files of another dataset?)"]
    assert not (tmp_path / "e" / "report.json").exists()


def test_benchmark_default_backends_on_a_minimal_install(monkeypatch, capsys):
    import srnpose.errors
    import srnpose.inference.bench

    def missing(module, extra=None):
        raise srnpose.errors.MissingExtraError(f"this needs the optional package {module!r}")

    seen = {}
    monkeypatch.setattr(srnpose.errors, "require_extra", missing)
    monkeypatch.setattr(srnpose.inference.bench, "run_benchmark", lambda model, **kw: seen.update(kw) or {})
    monkeypatch.setattr(srnpose.inference.bench, "format_table", lambda report: "table")
    assert main(["benchmark", "--frames", "1", "--warmup", "0"]) == 0
    assert seen["backends"] == ("torch",)
    assert _err_lines(capsys) == ["srnpose benchmark: note: onnx/onnxruntime not installed, timing torch only "
                                  "(pip install 'srnpose[onnx]' for the others)"]


def test_a_crafted_train_state_is_the_only_line_of_a_resume(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--data", "synth", "--preset", "tiny", "--steps", "1", "--out", str(run), "--no-progress",
            "--set", "model.width=8", "--set", "train.batch_size=2", "--set", "data.val_frames=2"]
    assert main(argv) == 0
    state = run / "last" / "train_state.pt"
    torch.save({"step": _Evil()}, state)
    ckpt._write_marker(run / "last")  # checksums redone by whoever swapped the file
    capsys.readouterr()
    assert main(argv + ["--resume"]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith(
        f"srnpose train: error: {state}: refused to load: not a plain tensor file (weights_only): Unsupported global")


def test_negative_depth_is_refused_naming_the_value():
    from srnpose.inference.frame_path import FrameCamera, FrameError, check_frame, resolve_frame_camera

    cam = resolve_frame_camera("241.0,241.0,159.5,119.5")
    assert isinstance(cam, FrameCamera)
    depth = np.full((240, 320), 500.0, np.float32)
    depth[3, 4] = -2.5
    with pytest.raises(FrameError, match=r"^depth has negative values \(min -2\.5\); use 0 for no measurement$"):
        check_frame(depth, cam)


def test_a_binary_config_is_one_line(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_bytes(b"model:\n  width: \xff\xfe\x00\x81")
    code = main(["train", "--data", "synth", "--preset", "tiny", "--config", str(config), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].endswith(f"cannot read config {config}: not UTF-8 text (byte 16); a binary file?"), err


def test_the_api_warns_about_metres_on_every_such_frame_and_refuses_a_centre_50m_away():
    from srnpose.inference.estimator import HandPoseEstimator
    from srnpose.inference.frame_path import FrameError

    est = HandPoseEstimator.from_model(SRN.from_config(TINY))
    metres = np.full((240, 320), 0.6, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a good frame: no warning
        est.predict(np.full((240, 320), 600.0, np.float32), intrinsics="241,241,159.5,119.5")
    for _ in range(2):  # after a good frame, and again on the next one: every frame that looks wrong
        with pytest.warns(UserWarning, match=r"^median depth is 0\.6 mm, too near for a depth camera: metres\? "
                                             r"give depth_unit_mm=1000$"):
            est.predict(metres, intrinsics="241,241,159.5,119.5")
    with pytest.raises(FrameError, match=r"^center_uvd depth 50000 mm is outside any depth camera's range"):
        est.predict(np.full((240, 320), 600.0, np.float32), intrinsics="241,241,159.5,119.5",
                    center_uvd=(160, 120, 50000))
