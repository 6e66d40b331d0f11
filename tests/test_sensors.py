import importlib.util

import numpy as np
import pytest

from srnpose.data.depth_io import write_png16
from srnpose.errors import UserError
from srnpose.inference.sensors import FolderSource, NpyStackSource, RealSenseSource, open_sources


def _frames(n=3, shape=(24, 32)):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 2000, shape, dtype=np.uint16) for _ in range(n)]


def test_folder_replay_in_name_order(tmp_path):
    frames = _frames()
    for i, name in enumerate(["b", "c", "a"]):
        write_png16(tmp_path / f"{name}.png", frames[i])
    (tmp_path / "notes.txt").write_text("ignored")
    with FolderSource(tmp_path, fps=10.0) as source:
        assert len(source) == 3
        got = list(source)
    assert [f.name for f in got] == ["a", "b", "c"]
    assert [f.index for f in got] == [0, 1, 2]
    assert got[1].timestamp_s == pytest.approx(0.1)
    np.testing.assert_array_equal(got[0].depth, frames[2])
    assert got[0].depth.dtype == np.uint16


def test_empty_folder_and_missing_path(tmp_path):
    with pytest.raises(UserError, match=f"{tmp_path}: folder has no .png"):
        FolderSource(tmp_path)
    with pytest.raises(UserError, match="no such file"):
        open_sources([tmp_path / "missing.png"])


def test_npy_stack_and_single_frame(tmp_path):
    frames = np.stack(_frames(4))
    np.save(tmp_path / "seq.npy", frames)
    np.save(tmp_path / "one.npy", frames[0].astype(np.float32))
    source = open_sources([tmp_path / "seq.npy", tmp_path / "one.npy"])
    got = list(source)
    assert len(source) == len(got) == 5
    assert [f.index for f in got] == list(range(5))
    assert got[4].name == "one_00000"
    np.testing.assert_array_equal(got[3].depth, frames[3])


@pytest.mark.parametrize("array, message", [
    (np.zeros((2, 3, 4, 5), np.uint16), "shape"),
    (np.zeros((4, 5), bool), "dtype bool"),
])
def test_npy_refused_at_open(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(UserError, match=f"bad.npy.*{message}"):
        NpyStackSource(tmp_path / "bad.npy")


def test_npy_nan_names_the_file_and_frame(tmp_path):
    stack = np.ones((3, 4, 5), np.float32)
    stack[1, 2, 2] = np.inf
    np.save(tmp_path / "seq.npy", stack)
    source = NpyStackSource(tmp_path / "seq.npy")
    it = iter(source)
    next(it)
    with pytest.raises(UserError, match=r"seq.npy \(frame 1\): depth contains NaN or inf"):
        next(it)


def test_unsupported_input(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"")
    with pytest.raises(UserError, match="x.jpg: unsupported input"):
        open_sources([tmp_path / "x.jpg"])


@pytest.mark.skipif(importlib.util.find_spec("pyrealsense2") is not None, reason="pyrealsense2 installed")
def test_realsense_without_the_package_says_how_to_install():
    with pytest.raises(UserError, match="pip install"):
        RealSenseSource()


class _BrokenImport:
    """A meta-path finder: importing ``name`` fails as a compiled module fails when its shared library is
    missing from the system."""

    def __init__(self, name: str, error: BaseException) -> None:
        self.name, self.error = name, error

    def find_spec(self, fullname, path=None, target=None):
        if fullname == self.name:
            raise self.error
        return None


@pytest.mark.parametrize("error", [
    ImportError("libusb-1.0.so.0: cannot open shared object file: No such file or directory"),
    OSError("libusb-1.0.so.0: cannot open shared object file: No such file or directory")])
def test_realsense_with_a_missing_system_library_names_it(monkeypatch, error):
    import sys

    monkeypatch.delitem(sys.modules, "pyrealsense2", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_BrokenImport("pyrealsense2", error), *sys.meta_path])
    with pytest.raises(UserError) as exc:
        RealSenseSource()
    message = str(exc.value)
    assert "libusb-1.0.so.0" in message and "apt-get install libusb-1.0-0" in message
    assert "pip install" not in message


def test_an_unknown_missing_library_is_named_with_a_way_to_find_its_package(monkeypatch):
    import sys

    from srnpose.errors import require_extra

    monkeypatch.delitem(sys.modules, "pyrealsense2", raising=False)
    error = ImportError("libfoo.so.3: cannot open shared object file: No such file or directory")
    monkeypatch.setattr(sys, "meta_path", [_BrokenImport("pyrealsense2", error), *sys.meta_path])
    with pytest.raises(UserError, match=r"system library libfoo\.so\.3: .*apt-file search libfoo\.so\.3"):
        require_extra("pyrealsense2")


def test_live_loop_on_a_replayed_folder(tmp_path, shared_data, capsys):
    import json

    import torch

    from srnpose.cli import main
    from srnpose.config import SRNConfig, to_dict
    from srnpose.model import SRN
    from srnpose.training.checkpoint import save_checkpoint

    cfg = SRNConfig(num_stages=2, input_size=32, width=16, topk=8)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "run" / "last", SRN.from_config(cfg).eval(), {"model": to_dict(cfg)})
    out = tmp_path / "live.jsonl"
    assert main(["live", "--replay", str(shared_data / "kinect2"), "--camera", "kinect2", "--checkpoint",
                 str(tmp_path / "run"), "--backend", "torch", "--frames", "3", "--jsonl", str(out), "--smooth"]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 3 and all(r["hand_found"] for r in lines)
    said = capsys.readouterr().out
    assert "3 frames, hand found in 3" in said
    # the fit to the depth, frame by frame (the default for a 21-joint model): the network's joints kept
    assert "fit to the depth: on (3 LM steps" in said and "fit to the depth" in said.splitlines()[-1]
    assert all(len(r["joints_raw_xyz"]) == 21 and r["joints_raw_xyz"] != r["joints_xyz"] for r in lines)
