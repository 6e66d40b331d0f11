"""srnpose adapt: self-supervised fine-tuning on unlabelled frames (srnpose.training.adapt, commands/adapt.py).

The "user's camera" is the ICVL preset (320x240), its frames rendered by our engine (right hands). The model
adapted is the shipped one (64 px, one stage): a tiny model from a few training steps is so far from a hand
that the fit started from its joints says nothing, and the shipped one adapts 30 steps in a few seconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from srnpose import cli
from srnpose.cameras import CAMERAS
from srnpose.data.depth_io import write_png16
from srnpose.synth.engines import synthetic_record
from srnpose.training import adapt as adapt_mod
from srnpose.training.adapt import ADAPT_FILE, ADAPT_LOG, AdaptConfig, adapt

CAMERA = "icvl"
OVERRIDES = ("data.val_frames=16", "train.batch_size=8", "train.val_every=10", "train.log_every=5")
# the adapted model's synthetic validation error may exceed the shipped model's on the same frames by this much
SYNTH_BOUND_MM = 2.0


def _frames(folder, n: int = 4):
    cam = CAMERAS[CAMERA]
    folder.mkdir()
    index = written = 0
    while written < n:
        rec = synthetic_record("v2", 555, index, intrinsics=cam.intrinsics, resolution=cam.resolution)
        index += 1
        if rec.extra.get("is_left"):
            continue
        write_png16(folder / f"{written:03d}.png", np.round(rec.depth).astype(np.uint16))
        written += 1
    return folder


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return _frames(tmp_path_factory.mktemp("adapt") / "frames")


def _shipped_synth_mm() -> float:
    """The shipped model's final-stage error on the run's validation frames, as validation measures it."""
    from srnpose.data.sampling import load_eval_records
    from srnpose.evaluation.model_eval import score_estimates
    from srnpose.inference.backends import TorchRunner
    from srnpose.inference.frame_path import FramePath, estimate_records
    from srnpose.training.checkpoint import load_checkpoint
    from srnpose.training.run_config import SYNTH_VAL_SEED
    from srnpose.weights import RELEASE_DIR

    ckpt = load_checkpoint(RELEASE_DIR)
    cfg = ckpt.model_config
    engine = FramePath(TorchRunner(ckpt.model), cfg.input_size, cfg.num_stages, cfg.num_joints, ckpt.policy)
    records = load_eval_records("synth", 16, SYNTH_VAL_SEED, (160, 120))
    return float(score_estimates(estimate_records(engine, records, "joints"), records).stage_mm[-1])


def test_adapt_lowers_the_fitting_energy_and_keeps_the_synthetic_error(frames, tmp_path):
    run = tmp_path / "run"
    result = adapt([frames], CAMERA, run, steps=30, progress=False, overrides=OVERRIDES,
                   settings=AdaptConfig(refresh_every=10))
    assert result.step == 30
    assert result.before["hands"] == 4 and result.after["hands"] == 4
    # the fitting energy at the network's joints on its own frames, and its distance to the fit, go down
    assert result.after["energy_network"] < 0.9 * result.before["energy_network"]
    assert result.after["gap_mm"] < result.before["gap_mm"]
    assert result.val_stage_mm[-1] <= _shipped_synth_mm() + SYNTH_BOUND_MM
    # a train run folder, plus the adaptation's own files; the shipped locator travels with it
    for name in ("config.yaml", "metrics.csv", "last/COMPLETE", "best/COMPLETE", ADAPT_FILE, ADAPT_LOG,
                 "locator.yaml"):
        assert (run / name).is_file(), name
    assert len((run / ADAPT_LOG).read_text().splitlines()) == 5  # start, steps 10 20 30, the final measure


def test_adapt_resume_continues_a_stopped_run(frames, tmp_path, monkeypatch):
    run = tmp_path / "run"
    refresh = adapt_mod.PseudoLabels.refresh
    calls = []

    def stop_at_second(self, net):  # the relabelling at step 4 is interrupted (Ctrl-C)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return refresh(self, net)

    monkeypatch.setattr(adapt_mod.PseudoLabels, "refresh", stop_at_second)
    with pytest.raises(KeyboardInterrupt):
        adapt([frames], CAMERA, run, steps=8, progress=False, overrides=OVERRIDES,
              settings=AdaptConfig(refresh_every=4))
    monkeypatch.setattr(adapt_mod.PseudoLabels, "refresh", refresh)
    from srnpose.training.checkpoint import load_train_state

    assert int(load_train_state(run / "last" / "train_state.pt")["step"]) == 4
    result = adapt([], None, run, resume=True, progress=False)  # the frames and camera come from adapt.yaml
    assert result.step == 8
    steps = [int(line.split(",")[0]) for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == sorted(steps) and steps[-1] == 8


def test_adapt_bad_input_is_one_line(tmp_path, frames, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["adapt", str(tmp_path / "empty"), "--camera", CAMERA, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "no depth frames" in err
    assert cli.main(["adapt", str(frames), "--camera", "kinect2", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "320x240 frame, but camera kinect2 gives 512x424" in err
    assert cli.main(["adapt", "--camera", CAMERA, "--out", str(tmp_path / "c")]) == 2
    assert "give FRAMES" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_adapt_lists_frames_as_predict_does(tmp_path):
    from srnpose.training.adapt import list_frames

    for name in ("b.png", "a.PNG", ".a.tmp-1-x.png", "._c.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_frames([tmp_path])] == ["a.PNG", "b.png"]  # hidden files are not frames
