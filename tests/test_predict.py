import json

import numpy as np
import pytest
import torch

from srnpose.cli import main
from srnpose.config import SRNConfig, to_dict
from srnpose.model import SRN
from srnpose.training.checkpoint import save_checkpoint

TINY = SRNConfig(num_stages=2, input_size=32, width=16, topk=8)
KEYS = {"frame", "hand_found", "joints_uvd", "joints_xyz", "center_uvd", "latency_ms"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("run")
    save_checkpoint(run / "last", SRN.from_config(TINY).eval(),
                    {"model": to_dict(TINY), "data": {"cube_mm": 250.0, "layout": "canonical"}})
    return run


def _records(out):
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def test_predict_on_two_kinect2_frames(run_dir, shared_data, tmp_path, capsys):
    frames = [shared_data / "kinect2" / "00000001.png", shared_data / "kinect2" / "00000015.png"]
    out = tmp_path / "out"
    code = main(["predict", *map(str, frames), "--checkpoint", str(run_dir), "--camera", "kinect2",
                 "--out", str(out), "--smooth"])
    assert code == 0
    records = _records(out)
    assert [r["frame"] for r in records] == ["00000001", "00000015"]
    for r in records:
        assert KEYS <= set(r)
        assert r["hand_found"] is True
        assert np.isfinite(np.array(r["joints_xyz"])).all() and np.array(r["joints_uvd"]).shape == (21, 3)
        assert len(r["center_uvd"]) == 3 and r["latency_ms"] > 0
    assert (out / "overlays" / "00000001.png").is_file() and (out / "overlays.gif").is_file()
    assert "hand found in 2" in capsys.readouterr().out


def test_predict_npy_with_onnxruntime_and_no_hand(run_dir, tmp_path):
    stack = np.zeros((2, 240, 320), np.uint16)  # nothing in range
    np.save(tmp_path / "empty.npy", stack)
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "empty.npy"), "--checkpoint", str(run_dir), "--camera", "icvl",
                 "--backend", "onnxruntime", "--out", str(out), "--no-overlays"]) == 0
    records = _records(out)
    assert [r["hand_found"] for r in records] == [False, False]
    assert records[0]["joints_xyz"] is None


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()  # a progress bar may precede the one error line
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith("srnpose predict: error: ")
    return last


def test_user_errors_name_the_file(run_dir, tmp_path, shared_data, capsys):
    bad = np.ones((2, 240, 320), np.float32)
    bad[1, 0, 0] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    args = ["--checkpoint", str(run_dir), "--out", str(tmp_path / "o")]
    assert main(["predict", str(tmp_path / "bad.npy"), "--camera", "icvl", *args]) == 2
    assert "bad.npy (frame 1): depth contains NaN" in _error(capsys)

    (tmp_path / "empty").mkdir()
    assert main(["predict", str(tmp_path / "empty"), "--camera", "icvl", *args]) == 2
    assert "empty: folder has no .png" in _error(capsys)

    frame = shared_data / "kinect2" / "00000001.png"
    assert main(["predict", str(frame), "--camera", "sr300", *args]) == 2
    assert f"{frame}: frame is 512x424 but camera sr300 is 640x480" in _error(capsys)

    assert main(["predict", str(frame), *args]) == 2
    assert "--camera NAME or --intrinsics" in _error(capsys)

    # the flag comes from UserError.flag, set where the input is checked (never read out of the message)
    assert main(["predict", str(frame), "--intrinsics", "1,2,3", *args]) == 2
    assert "error: --intrinsics: intrinsics: expected 4 comma-separated numbers" in _error(capsys)
    assert main(["predict", str(frame), "--camera", "kinect2", "--depth-unit", "-1", *args]) == 2
    assert "error: --depth-unit: depth unit must be a positive number of mm" in _error(capsys)


def test_a_user_error_carries_the_flag_its_raiser_names():
    from srnpose.cameras import CAMERAS
    from srnpose.errors import UserError
    from srnpose.inference.frame_path import resolve_frame_camera

    with pytest.raises(UserError) as info:
        resolve_frame_camera("600,600,300", camera="kinect2")
    assert info.value.flag == "--intrinsics" and str(info.value).startswith("intrinsics: ")  # the API's message
    assert info.value.line() == f"--intrinsics: {info.value}"
    with pytest.raises(UserError) as info:
        resolve_frame_camera(camera="kinect3")
    assert info.value.line() == f"--camera: unknown camera 'kinect3'; available: {', '.join(CAMERAS)}"
    assert UserError("plain").flag is None and UserError("plain").line() == "plain"


def test_predict_angles_writes_a_constant_bone_skeleton(run_dir, shared_data, tmp_path):
    frames = [shared_data / "kinect2" / f"0000000{i}.png" for i in (1, 2, 3)]
    out = tmp_path / "out"
    assert main(["predict", *map(str, frames), "--checkpoint", str(run_dir), "--camera", "kinect2",
                 "--out", str(out), "--angles", "--no-overlays"]) == 0
    records = _records(out)
    assert [r["frame"] for r in records] == ["00000001", "00000002", "00000003"]
    fitted = np.array([r["joints_fitted_xyz"] for r in records])
    wrist_to_tips = np.linalg.norm(fitted[:, [4, 8, 12, 16, 20]] - fitted[:, [3, 7, 11, 15, 19]], axis=-1)
    assert np.ptp(wrist_to_tips, axis=0).max() < 0.05  # distal bones: the same length in every frame (2-digit JSON)
    assert all(len(r["joint_angles"]) == 20 and r["handedness"] in ("left", "right") for r in records)


def test_kinect2_intrinsics_without_mirroring_warn(shared_data):
    """The Kinect V2's frames are mirrored: its intrinsics without mirrored=True find the hand with joints
    hundreds of mm off. The API warns naming mirrored=True; a preset or an explicit answer does not."""
    import warnings

    from PIL import Image

    import srnpose
    from srnpose.cameras import CAMERAS
    from srnpose.geometry import Intrinsics

    with Image.open(shared_data / "kinect2" / "00000001.png") as img:
        depth = np.asarray(img)
    estimator = srnpose.load()
    k = CAMERAS["kinect2"].intrinsics
    with pytest.warns(UserWarning, match=r"mirrored=True \(or mirrored=False"):
        estimator.predict(depth, intrinsics=k)
    half = Intrinsics(k.fx / 2, k.fy / 2, (k.cx + 0.5) / 2 - 0.5, (k.cy + 0.5) / 2 - 0.5)  # the same camera, 256x212
    with pytest.warns(UserWarning, match="mirrored=True"):
        estimator.predict(depth[::2, ::2].copy(), intrinsics=half)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kwargs in ({"intrinsics": k, "mirrored": True}, {"intrinsics": k, "mirrored": False},
                       {"camera": "kinect2"}, {"intrinsics": CAMERAS["sr300"].intrinsics}):
            estimator.predict(depth, **kwargs)


def test_predict_names_mirrored_for_kinect2_intrinsics(run_dir, shared_data, tmp_path, capsys):
    frame = str(shared_data / "kinect2" / "00000001.png")
    k = "363.9,363.9,255.4,206.3"
    assert main(["predict", frame, "--checkpoint", str(run_dir), "--intrinsics", k, "--out", str(tmp_path / "a"),
                 "--no-overlays"]) == 0
    err = capsys.readouterr().err
    assert "warning: --intrinsics:" in err and "give --mirrored (or --no-mirrored" in err
    assert main(["predict", frame, "--checkpoint", str(run_dir), "--intrinsics", k, "--mirrored",
                 "--out", str(tmp_path / "b"), "--no-overlays"]) == 0
    assert "--mirrored" not in capsys.readouterr().err


def test_predict_fits_to_the_depth_and_keeps_the_network_joints(shared_data, tmp_path, capsys):
    """The shipped model on real Kinect V2 frames: predict fits the hand to the depth by default (joints_xyz
    the fitted hand's, joints_raw_xyz the network's, and they differ), frame by frame for files and as a
    sequence for one folder; --no-fit writes the network's joints alone, the same as joints_raw_xyz."""
    import shutil

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (2, 3, 4):
        shutil.copy(shared_data / "kinect2" / f"{i:08d}.png", folder)
    files = sorted(map(str, folder.iterdir()))
    runs = {}
    for name, inputs, flags, said in (("files", files, [], "fit to the depth per frame, "),
                                      ("folder", [str(folder)], [], "fit to the depth as a sequence, "),
                                      ("raw", [str(folder)], ["--no-fit"], "no fit")):
        assert main(["predict", *inputs, "--camera", "kinect2", "--out", str(tmp_path / name), "--no-overlays",
                     *flags]) == 0
        out = capsys.readouterr().out
        assert said in out and ("fit to the depth: off (--no-fit)" if flags else
                                "fit to the depth: on (3 LM steps; --no-fit") in out
        runs[name] = [r for r in _records(tmp_path / name) if r["hand_found"]]
    assert len(runs["raw"]) >= 2
    for raw, *fitted in zip(runs["raw"], runs["files"], runs["folder"]):
        assert "joints_raw_xyz" not in raw and "joint_angles" not in raw
        for f in fitted:
            assert f["joints_raw_xyz"] == raw["joints_xyz"]  # the network's joints, as --no-fit writes them
            moved = np.linalg.norm(np.array(f["joints_xyz"]) - np.array(f["joints_raw_xyz"]), axis=1)
            assert moved.max() > 1.0 and len(f["joint_angles"]) == 20 and f["timings_ms"]["fit"] > 0
    assert any(a["joints_xyz"] != b["joints_xyz"] for a, b in zip(runs["files"], runs["folder"]))  # the sequence's own
