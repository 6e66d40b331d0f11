"""Bad input to train/evaluate: one row per case, each one clear line naming the problem and exit 2.

(Prediction-side cases, such as NaN in .npy input, a wrong resolution or an empty folder, are covered
by the inference tests.)
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srnpose.cli import main

TINY = ["--preset", "tiny", "--no-progress", "--set", "model.width=8", "--set", "train.batch_size=2",
        "--set", "data.val_frames=1"]


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    from srnpose.synth import write_dataset

    return write_dataset(tmp_path_factory.mktemp("synth") / "data", 4, resolution=(160, 120), progress=False)


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _corrupt(data: Path) -> None:
    (data / "depth" / "000000.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")


def _truncate(data: Path) -> None:
    path = data / "depth" / "000000.png"
    path.write_bytes(path.read_bytes()[:200])


def _eight_bit(data: Path) -> None:
    Image.fromarray(np.full((120, 160), 80, dtype=np.uint8)).save(data / "depth" / "000000.png")


def _all_zero(data: Path) -> None:
    from srnpose.data.depth_io import write_png16

    write_png16(data / "depth" / "000000.png", np.zeros((120, 160), dtype=np.uint16))


def _bad_yaml(tmp: Path) -> Path:
    path = tmp / "bad.yaml"
    path.write_text("train:\n  lr: [0.001\n", encoding="utf-8")
    return path


def _unknown_key(tmp: Path) -> Path:
    path = tmp / "unknown.yaml"
    path.write_text("train:\n  learning_rate: 0.001\n", encoding="utf-8")
    return path


def _incompatible_run(tmp: Path) -> Path:
    from srnpose.config import SRNConfig, to_dict
    from srnpose.config import save_yaml as write_yaml_atomic
    from srnpose.model import SRN
    from srnpose.training.checkpoint import _write_marker, save_checkpoint

    run = tmp / "run_incompatible"
    cfg = SRNConfig(num_stages=2, input_size=32, width=8, topk=8)
    save_checkpoint(run / "last", SRN.from_config(cfg), {"model": to_dict(cfg), "data": {"cube_mm": 250.0}})
    write_yaml_atomic({"model": to_dict(SRNConfig(num_stages=2, input_size=32, width=16, topk=8))},
                      run / "last" / "config.yaml")
    _write_marker(run / "last")  # re-sealed: a consistent checkpoint whose config does not fit its weights
    return run


FRAME_CASES = [
    ("corrupt PNG", _corrupt, r"000000\.png: cannot read PNG"),
    ("truncated PNG", _truncate, r"000000\.png: cannot read PNG"),
    ("8-bit PNG where 16-bit is expected", _eight_bit, r"000000\.png: expected a 16-bit single-channel depth PNG"),
    ("all-zero depth", _all_zero, r"000000.*(no depth|all zero|no valid|no measurement|empty)"),
]


@pytest.mark.parametrize("name, damage, message", FRAME_CASES, ids=[c[0] for c in FRAME_CASES])
def test_bad_frames_stop_training_with_one_line(tmp_path, capsys, synth_dir, name, damage, message):
    data = _copy(synth_dir, tmp_path / "data")
    damage(data)
    code = main(["train", "--data", f"synth:{data}", "--out", str(tmp_path / "run"), "--steps", "3"] + TINY)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("srnpose train: error: ") and re.search(message, err[-1], re.I), err
    assert not any(line.startswith("Traceback") for line in err)


CONFIG_CASES = [
    ("malformed YAML config", lambda t: ["--config", str(_bad_yaml(t))], r"bad\.yaml line \d+: malformed YAML"),
    ("unknown config key", lambda t: ["--config", str(_unknown_key(t))],
     r"unknown config key .*learning_rate.*valid keys: optimizer, lr,"),
    ("unknown --set key", lambda t: ["--set", "model.depth=3"], r"unknown config key 'model\.depth'; valid keys: num_joints"),
    ("bad --set value", lambda t: ["--set", "train.lr=fast"], r"train\.lr: expected a number"),
    ("missing data folder", lambda t: ["--data", f"nyu:{t / 'nowhere'}"], r"nowhere.*does not exist"),
    ("unknown dataset", lambda t: ["--data", "kinect:/tmp"], r"unknown dataset 'kinect'; available: nyu, icvl"),
    ("resume without a run nor --data", lambda t: ["--resume"], r"--data SPEC is required"),
]


@pytest.mark.parametrize("name, extra, message", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_configs_are_one_line(tmp_path, capsys, name, extra, message):
    args = extra(tmp_path)
    base = ["train", "--out", str(tmp_path / "run"), "--steps", "1"]
    if "--resume" not in args:
        base += ["--data", "synth"] + TINY if "--data" not in args else TINY
    code = main(base + args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("srnpose train: error: ") and re.search(message, err[0]), err


def test_incompatible_checkpoint_names_file_and_tensor(tmp_path, capsys):
    run = _incompatible_run(tmp_path)
    code = main(["evaluate", "--checkpoint", str(run), "--data", "synth", "--out", str(tmp_path / "eval")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert re.search(r"model\.safetensors: incompatible checkpoint: tensor 'stem\.\S+' has shape", err[0]), err


def test_skip_bad_counts_and_finishes(tmp_path, capsys, synth_dir):
    data = _copy(synth_dir, tmp_path / "data")
    _corrupt(data)
    code = main(["train", "--data", f"synth:{data}", "--out", str(tmp_path / "run"), "--steps", "4",
                 "--skip-bad", "--set", "train.log_every=2"] + TINY)
    out = capsys.readouterr()
    assert code == 0, out.err
    assert int(re.search(r"skipped (\d+) bad frames", out.out).group(1)) == 1
    assert (tmp_path / "run" / "last" / "model.safetensors").is_file()


def test_skip_bad_in_the_loop_counts_frames_that_fail_late():
    from srnpose.data.centering import CenterPolicy
    from srnpose.data.pipeline import CropConfig
    from srnpose.data.records import HandRecord
    from srnpose.data.sampling import SampleSource, collate_good
    from srnpose.geometry import Intrinsics

    K = Intrinsics(120.0, 120.0, 79.5, 59.5)
    good = HandRecord(joints_uvd=np.array([[80.0, 60.0, 400.0]] * 21), intrinsics=K,
                      depth=np.full((120, 160), 400.0, np.float32), frame_id="good")
    empty = HandRecord(joints_uvd=good.joints_uvd, intrinsics=K, depth=np.zeros((120, 160), np.float32),
                       frame_id="frame_empty")
    for skip in (True, False):
        source = SampleSource([good, empty], CropConfig(input_size=32), CenterPolicy.for_rule("joints"), 0, skip)
        batch, bad, fatal = collate_good([source[0], source[1]])
        assert batch["depth"].shape == (1, 1, 32, 32)
        assert (len(bad), len(fatal)) == ((1, 0) if skip else (0, 1))
        assert "frame_empty" in (bad + fatal)[0]


def test_unexpected_error_saves_last_first(tmp_path):
    from srnpose.training.checkpoint import load_train_state
    from srnpose.training.loop import train
    from srnpose.training.run_config import build_config

    cfg = build_config("tiny", None, ["data.spec=synth", "model.width=8", "train.batch_size=2",
                                      "data.val_frames=1", "train.ckpt_every=100", "train.steps=50"])

    def explode(step, info, model):
        if step == 3:
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        train(cfg, tmp_path / "run", progress=False, on_step=explode)
    assert load_train_state(tmp_path / "run" / "last" / "train_state.pt")["step"] == 3
