import numpy as np
import pytest
import torch

from srnpose.data.centering import CenterPolicy
from srnpose.errors import UserError
from srnpose.inference.backends import export_onnx, make_ort_session, read_metadata
from srnpose.inference.estimator import HandPoseEstimator, load
from srnpose.inference.export import (
    export_checkpoint,
    max_difference,
    quantize_int8,
    real_crops,
    synthetic_crops,
)
from srnpose.inference.frame_path import FramePath
from srnpose.model import SRN
from srnpose.synth import render_frame

TINY = dict(num_stages=2, input_size=32, width=16, topk=8)


def _engine(model, cube_mm=220.0, rule="depth"):
    return FramePath.from_model(model, CenterPolicy.for_rule(rule, cube_mm))


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    torch.manual_seed(0)
    model = SRN(**TINY).eval()
    path = export_checkpoint(_engine(model), tmp_path_factory.mktemp("onnx") / "tiny.onnx")
    return model, path


def test_parity_on_real_kinect2_crops(tiny_onnx, shared_data):
    model, path = tiny_onnx
    crops = real_crops(_engine(model, 250.0), shared_data / "kinect2", limit=4)  # (4, 1, 32, 32): a dynamic batch of 4
    assert crops.shape == (4, 1, 32, 32) and (crops < 1).any()  # the hand is in them
    diff = max_difference(model, make_ort_session(path), crops)
    assert diff <= 1e-3
    assert not model.training  # the exporter must not leave BatchNorm in training mode


def test_metadata_and_dynamic_batch(tiny_onnx):
    model, path = tiny_onnx
    meta = read_metadata(path)
    assert meta["input_size"] == 32 and meta["num_stages"] == 2 and meta["cube_mm"] == [220.0] * 3
    session = make_ort_session(path)
    for batch in (1, 3):
        out = session.run(None, {"depth": np.ones((batch, 1, 32, 32), np.float32)})[0]
        assert out.shape == (batch, 2, 21, 3)


def test_the_centre_policy_travels_in_the_metadata(tiny_onnx, tmp_path):
    model, _ = tiny_onnx
    path = export_checkpoint(_engine(model, 220.0, "mixed"), tmp_path / "mixed.onnx")
    meta = read_metadata(path)
    assert (meta["center"], meta["passes"]) == ("mixed", 3) and load(path).refine == 2
    assert load(tiny_onnx[1]).refine == 0
    # a bare export (no metadata given) still loads, as a one-pass depth-centred model
    assert load(export_onnx(model, tmp_path / "bare.onnx", {"cube_mm": [250.0] * 3, "layout": "canonical"})).refine == 0


def test_load_onnx_predicts_like_torch(tiny_onnx):
    model, path = tiny_onnx
    frame = render_frame(3)
    ort_est = load(path, fit=False)  # the networks' joints, as from_model gives them
    torch_est = HandPoseEstimator.from_model(model, CenterPolicy.for_rule("depth", 220.0))
    a = ort_est.predict(frame.depth_mm, intrinsics=frame.intrinsics)
    b = torch_est.predict(frame.depth_mm, intrinsics=frame.intrinsics)
    assert ort_est.backend == "onnxruntime" and a.hand_found
    np.testing.assert_allclose(a.joints_xyz, b.joints_xyz, atol=0.05)  # mm


def test_int8_static_runs_and_stays_close(tiny_onnx, tmp_path):
    model, path = tiny_onnx
    calib = synthetic_crops(_engine(model), 8)
    q = quantize_int8(path, tmp_path / "int8.onnx", calib, mode="static")
    assert read_metadata(q)["input_size"] == 32  # metadata survives quantization
    session = make_ort_session(q)
    out = session.run(None, {"depth": calib})[0]
    with torch.inference_mode():
        ref = model.forward_joints(torch.from_numpy(calib)).numpy()
    assert out.shape == ref.shape and np.isfinite(out).all()
    assert np.abs(out - ref).mean() < 0.05  # normalized units: 6 mm at a 250 mm cube


def test_not_an_srnpose_file(tmp_path):
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(UserError, match="x.onnx"):
        load(bad)


def test_export_command_prints_parity(tmp_path, shared_data, capsys, monkeypatch):
    from srnpose.cli import main
    from srnpose.config import SRNConfig, to_dict
    from srnpose.training.checkpoint import save_checkpoint

    cfg = SRNConfig(**TINY)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "run" / "last", SRN.from_config(cfg).eval(), {"model": to_dict(cfg)})
    out = tmp_path / "m.onnx"
    code = main(["export", "--checkpoint", str(tmp_path / "run"), "--out", str(out),
                 "--crops", str(shared_data / "kinect2")])
    printed = capsys.readouterr().out
    assert code == 0 and out.is_file()
    assert f"crops of the frames in {shared_data / 'kinect2'} (camera kinect2)" in printed
    assert "max |difference|" in printed
    assert main(["export", "--checkpoint", str(tmp_path / "run"), "--out", str(tmp_path / "m.txt")]) == 2


def _decoy_shared(tmp_path):
    """A working directory with a ../shared/data/kinect2 beside it whose one 'frame' cannot be read."""
    decoy = tmp_path / "shared" / "data" / "kinect2"
    decoy.mkdir(parents=True)
    (decoy / "00000001.png").write_bytes(b"not a png")
    (tmp_path / "work").mkdir()
    return tmp_path / "work"


@pytest.mark.parametrize("decoy", [True, False], ids=["shared-decoy", "no-shared"])
def test_export_without_checkpoint_exports_the_shipped_model(tmp_path, capsys, monkeypatch, decoy):
    """The default: the shipped model, its parity checked on the shipped sample frames, whatever the working
    directory has beside it (a ../shared folder is not the user's)."""
    from srnpose.cli import main
    from srnpose.inference.backends import read_metadata
    from srnpose.training.checkpoint import load_run_config
    from srnpose.weights import release_dir, sample_frames

    monkeypatch.chdir(_decoy_shared(tmp_path) if decoy else tmp_path)
    out = tmp_path / "shipped.onnx"
    assert main(["export", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    camera = sample_frames()[1]
    assert "crops of the shipped sample frames (srnpose.samples()): max |difference|" in printed
    assert "shared" not in printed
    assert read_metadata(out)["model"] == load_run_config(release_dir())["model"]
    # --camera describes --crops' frames; the samples carry their own
    assert main(["export", "--out", str(tmp_path / "other.onnx"), "--camera", camera]) == 2
    assert capsys.readouterr().err.strip().endswith(f"--camera: {camera} names the camera of --crops DIR; the "
                                                    "default frames (the shipped samples) carry their own")


def test_int8_keeps_the_crop_that_the_reparameterization_reads_in_float(tiny_onnx, tmp_path):
    """A quantized copy of the input crop shared with the re-parameterization turns background (+1)
    into hand in its foreground mask: stages 2+ then broke (+84 mm on the demo model)."""
    import onnx

    model, path = tiny_onnx
    q = quantize_int8(path, tmp_path / "int8.onnx", synthetic_crops(_engine(model), 8), mode="static")
    graph = onnx.load(str(q)).graph
    assert not [n.name for n in graph.node if n.op_type == "QuantizeLinear" and "depth" in n.input]
    assert any(n.op_type == "QuantizeLinear" for n in graph.node)  # the ResNet parts are still int8
