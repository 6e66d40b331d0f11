"""The default runtime and threads of inference (srnpose.inference.backends): onnxruntime when installed,
else torch; one intra-op thread unless told; the in-memory export made once per process."""

import sys

import numpy as np
import pytest
import torch

import srnpose
from srnpose.errors import UserError
from srnpose.inference import backends
from srnpose.inference.backends import DEFAULT_THREADS, TorchRunner, default_backend, export_in_memory
from srnpose.model import SRN


@pytest.fixture
def no_onnxruntime(monkeypatch):
    """onnxruntime as if not installed: importing it fails as a missing package's import does."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)


def _kinect2_frames(shared_data, count=4):
    from PIL import Image

    frames = []
    for path in sorted((shared_data / "kinect2").glob("*.png"))[:count]:
        with Image.open(path) as img:
            frames.append(np.asarray(img))
    return frames


def test_default_is_onnxruntime_when_installed_else_torch(no_onnxruntime):
    backend, why = default_backend()
    assert backend == "torch" and "pip install 'srnpose[onnx]'" in why
    estimator = srnpose.load()
    assert (estimator.backend, estimator.threads) == ("torch", DEFAULT_THREADS)


def test_load_runs_onnxruntime_on_one_thread_and_agrees_with_torch(shared_data):
    pytest.importorskip("onnxruntime")
    assert default_backend()[0] == "onnxruntime"
    ort_est, torch_est = srnpose.load(fit=False), srnpose.load(backend="torch", fit=False)  # the networks' joints
    assert (ort_est.backend, ort_est.threads, torch_est.threads) == ("onnxruntime", 1, 1) and DEFAULT_THREADS == 1
    for depth in _kinect2_frames(shared_data):
        a, b = ort_est.predict(depth, camera="kinect2"), torch_est.predict(depth, camera="kinect2")
        assert a.hand_found and b.hand_found
        np.testing.assert_allclose(a.joints_xyz, b.joints_xyz, atol=0.05)  # mm, the torch/ORT parity tolerance
    assert srnpose.load(threads=3).threads == 3
    with pytest.raises(UserError, match="threads"):
        srnpose.load(threads=0)


def test_torch_runner_uses_its_threads_and_restores_torchs(monkeypatch):
    model = SRN(num_stages=1, input_size=32, width=8, topk=8).eval()
    seen = []
    forward = model.forward_joints
    monkeypatch.setattr(model, "forward_joints", lambda x: seen.append(torch.get_num_threads()) or forward(x))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        TorchRunner(model, threads=1)(np.zeros((1, 1, 32, 32), np.float32))
        assert seen == [1] and torch.get_num_threads() == 2  # inside: the runner's; after: as it was
        TorchRunner(model)(np.zeros((1, 1, 32, 32), np.float32))
        assert seen == [1, 2]  # None: torch's own setting, untouched (training's validation)
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def export_calls(monkeypatch, tmp_path):
    """The ONNX exports made from here on, counted; no export of this process in memory (an earlier test
    may have exported the same model) and an empty disk cache of the test's own."""
    pytest.importorskip("onnx")
    monkeypatch.setattr(backends, "_EXPORTS", {})
    monkeypatch.setenv("SRNPOSE_CACHE_DIR", str(tmp_path))
    calls = []
    real = backends.export_onnx
    monkeypatch.setattr(backends, "export_onnx", lambda model, *a, **kw: calls.append(1) or real(model, *a, **kw))
    return calls


def test_the_in_memory_export_is_made_once_per_process(export_calls):
    calls = export_calls
    torch.manual_seed(0)
    model = SRN(num_stages=1, input_size=32, width=8, topk=8).eval()
    first = export_in_memory(model)
    again = SRN(num_stages=1, input_size=32, width=8, topk=8).eval()
    again.load_state_dict(model.state_dict())  # another object, the same weights
    assert export_in_memory(again) is first and len(calls) == 1
    with torch.no_grad():
        next(again.parameters()).add_(1.0)
    assert export_in_memory(again) is not first and len(calls) == 2  # other weights: a new export


def test_predict_says_which_runtime_and_threads(shared_data, tmp_path, capsys, no_onnxruntime):
    from srnpose.cli import main

    frame = str(shared_data / "kinect2" / "00000001.png")
    assert main(["predict", frame, "--camera", "kinect2", "--out", str(tmp_path / "a"), "--no-overlays"]) == 0
    out = capsys.readouterr().out
    assert "srnpose predict: network on torch (the default: onnxruntime unavailable" in out and ", 1 thread" in out
    assert main(["predict", frame, "--camera", "kinect2", "--out", str(tmp_path / "b"), "--no-overlays",
                 "--backend", "torch", "--threads", "2"]) == 0
    assert "network on torch (--backend), 2 threads (--threads)" in capsys.readouterr().out
    assert main(["predict", frame, "--camera", "kinect2", "--out", str(tmp_path / "c"), "--threads", "0"]) == 2


def test_a_later_process_reads_the_export_from_the_disk_cache(export_calls, monkeypatch, tmp_path):
    calls = export_calls
    torch.manual_seed(1)
    model = SRN(num_stages=1, input_size=32, width=8, topk=8).eval()
    first = export_in_memory(model)
    (cached,) = (tmp_path / "onnx").glob("*.onnx")
    assert cached.read_bytes() == first and len(calls) == 1
    monkeypatch.setattr(backends, "_EXPORTS", {})  # a new process: memory empty, the disk cache kept
    assert export_in_memory(model) == first and len(calls) == 1
    cached.write_bytes(first[: len(first) // 2])  # a truncated cache file is made again, not used
    monkeypatch.setattr(backends, "_EXPORTS", {})
    assert export_in_memory(model) == first and len(calls) == 2 and cached.read_bytes() == first
    assert not [p for p in (tmp_path / "onnx").iterdir() if p.name.startswith(".")]  # no temporary left
