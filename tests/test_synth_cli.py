"""``srnpose synth``: the files it writes, the preview, and one-line errors with exit code 2."""

import json

import pytest

from srnpose.cli import main


def test_synth_command_writes_dataset_and_preview(tmp_path, capsys):
    out, preview = tmp_path / "s", tmp_path / "p.png"
    rc = main(["synth", "--out", str(out), "--frames", "3", "--seed", "1", "--camera", "sr300",
               "--resolution", "160x120", "--workers", "2", "--preview", str(preview)])
    assert rc == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["resolution"] == [160, 120] and meta["frames"] == 3
    assert abs(meta["intrinsics"]["fx"] - 615.866 / 4) < 1e-6
    assert len((out / "labels.txt").read_text().splitlines()) == 3
    from PIL import Image

    with Image.open(preview) as img:
        assert img.mode == "RGB" and img.size[0] > 160


def test_synth_intrinsics_flag(tmp_path):
    assert main(["synth", "--out", str(tmp_path / "s"), "--frames", "1", "--intrinsics", "100,100,31.5,23.5"]) == 0
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["resolution"] == [64, 48] and meta["intrinsics"] == {"fx": 100.0, "fy": 100.0, "cx": 31.5, "cy": 23.5}


@pytest.mark.parametrize("argv, flag, words", [
    (["--frames", "0"], "--frames", "at least 1"),
    (["--frames", "ten"], "--frames", "integer"),
    (["--frames", "2", "--intrinsics", "1,2,3"], "--intrinsics", "fx,fy,cx,cy"),
    (["--frames", "2", "--intrinsics", "0,500,1,1"], "--intrinsics", "non-zero"),
    (["--frames", "2", "--intrinsics", "nan,500,1,1"], "--intrinsics", "finite"),
    (["--frames", "2", "--resolution", "320"], "--resolution", "WxH"),
    (["--frames", "2", "--resolution", "0x240"], "--resolution", "1-"),
    (["--frames", "2", "--camera", "kinect9"], "--camera", "available: kinect2"),
    (["--frames", "2", "--workers", "0"], "--workers", "at least 1"),
    (["--frames", "2", "--seed", "-1"], "--seed", "at least 0"),
])
def test_synth_bad_input_is_one_line_exit_2(tmp_path, capsys, argv, flag, words):
    rc = main(["synth", "--out", str(tmp_path / "s"), *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("srnpose synth: error: ")
    assert flag in err and words in err
    assert "Traceback" not in err


def test_synth_out_is_a_file(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert main(["synth", "--out", str(target), "--frames", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"srnpose synth: error: --out {target}: is a file, not a folder"  # as every command says it


def test_synth_out_not_writable(tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    assert main(["synth", "--out", str(blocker / "sub"), "--frames", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"srnpose synth: error: --out {blocker / 'sub'}: cannot create the folder (Not a directory)"


def test_synth_format_choices(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--out", "x", "--frames", "1", "--format", "bogus"])
    assert exc.value.code == 2
    assert "native" in capsys.readouterr().err


def test_preview_inside_the_new_output_folder(tmp_path):
    """The README's quickstart writes the preview into the folder synth is about to create."""
    out = tmp_path / "new"
    assert main(["synth", "--out", str(out), "--frames", "2", "--preview", str(out / "preview.png")]) == 0
    assert (out / "preview.png").stat().st_size > 0


def test_synth_writes_the_frames_training_draws(tmp_path):
    """The default engine is v2, training's: with training's seed and resolution the written frames are the
    ones ``train --data synth`` crops (its SampleSource's records, before augmentation)."""
    import numpy as np
    from PIL import Image

    from srnpose.data.sampling import build_source
    from srnpose.synth import read_labels
    from srnpose.training.run_config import PRESETS, SYNTH_TRAIN_SEED, resolve_data

    cfg = resolve_data(PRESETS["demo"])
    assert cfg.data.synth_engine == "v2"
    width, height = cfg.data.synth_resolution
    out = tmp_path / "s"
    assert main(["synth", "--out", str(out), "--frames", "3", "--seed", str(SYNTH_TRAIN_SEED + cfg.train.seed),
                 "--resolution", f"{width}x{height}"]) == 0
    assert json.loads((out / "meta.json").read_text())["engine"] == "v2"
    source, _, _ = build_source(cfg)
    labels = read_labels(out / "labels.txt")
    for g in range(3):
        record = source._record(g)
        with Image.open(out / "depth" / f"{g:06d}.png") as img:
            np.testing.assert_array_equal(np.asarray(img).astype(np.float32), record.depth)
        np.testing.assert_allclose(labels[g], record.joints_uvd, atol=5e-4)  # labels.txt keeps 3 decimals


def test_synth_engine_v1_is_round_1s_frames(tmp_path):
    import numpy as np
    from PIL import Image

    from srnpose.synth import frame_seed, render_frame

    out = tmp_path / "s"
    assert main(["synth", "--out", str(out), "--frames", "2", "--seed", "5", "--engine", "v1",
                 "--resolution", "160x120"]) == 0
    assert json.loads((out / "meta.json").read_text())["engine"] == "v1"
    with Image.open(out / "depth" / "000001.png") as img:
        np.testing.assert_array_equal(np.asarray(img), render_frame(frame_seed(5, 1), resolution=(160, 120)).depth_mm)


def test_synth_formats_take_the_engine(tmp_path):
    """A dataset layout renders the engine's frames with the dataset camera's sensor family (v2)."""
    import numpy as np

    from srnpose.data.datasets import load_records
    from srnpose.synth import frame_seed
    from srnpose.synth.engines import render

    out = tmp_path / "icvl"
    assert main(["synth", "--out", str(out), "--frames", "2", "--seed", "3", "--format", "icvl"]) == 0
    first = load_records(f"icvl:{out}", "train")[0]
    expected = render("v2", frame_seed(3, 0), camera="icvl")
    np.testing.assert_array_equal(first.load_depth(), expected.depth_mm.astype(np.float32))
