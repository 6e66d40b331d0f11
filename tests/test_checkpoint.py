"""Checkpoint folders: round trip, atomic swap, safe loading, clear errors."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from srnpose.config import SRNConfig, save_yaml, to_dict
from srnpose.errors import UserError
from srnpose.model import SRN
from srnpose.training import checkpoint as ckpt

TINY = SRNConfig(num_joints=21, num_stages=2, input_size=32, width=8, topk=8)


def _run_config(model_cfg: SRNConfig = TINY) -> dict:
    return {"model": to_dict(model_cfg), "data": {"spec": "synth", "cube_mm": 250.0, "layout": "canonical"},
            "train": {"batch_size": 2}}


def _model(cfg: SRNConfig = TINY, seed: int = 0) -> SRN:
    torch.manual_seed(seed)
    return SRN.from_config(cfg)


def test_round_trip_run_folder_and_file(tmp_path):
    model = _model()
    ckpt.save_checkpoint(tmp_path / "run" / "last", model, _run_config())
    x = torch.randn(2, 1, 32, 32)
    model.eval()
    ref = model.forward_joints(x)
    for path in (tmp_path / "run", tmp_path / "run" / "last", tmp_path / "run" / "last" / "model.safetensors"):
        loaded = ckpt.load_checkpoint(path)
        assert not loaded.model.training
        assert loaded.input_size == 32 and loaded.cube_mm == 250.0 and loaded.layout == "canonical"
        assert loaded.model_config == TINY
        assert torch.equal(loaded.model.forward_joints(x), ref)


def test_run_folder_prefers_best(tmp_path):
    ckpt.save_checkpoint(tmp_path / "last", _model(seed=0), _run_config())
    ckpt.save_checkpoint(tmp_path / "best", _model(seed=1), _run_config())
    assert ckpt.load_checkpoint(tmp_path).path.parent.name == "best"


def test_bare_safetensors_uses_metadata(tmp_path):
    ckpt.save_checkpoint(tmp_path / "c", _model(), _run_config())
    lone = tmp_path / "lone.safetensors"
    os.replace(tmp_path / "c" / "model.safetensors", lone)
    assert ckpt.load_checkpoint(lone).model_config == TINY


def test_overwrite_is_atomic_and_keeps_the_previous_checkpoint(tmp_path):
    target = tmp_path / "last"
    for step in (1, 2, 3):
        ckpt.save_checkpoint(target, _model(seed=step), _run_config(), {"step": step})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last", "last.prev"]  # two kept, no temp left
    assert ckpt.load_train_state(target / "train_state.pt")["step"] == 3
    assert ckpt.load_train_state(tmp_path / "last.prev" / "train_state.pt")["step"] == 2


def test_interrupted_swap_falls_back_to_complete_copy(tmp_path):
    target = tmp_path / "last"
    ckpt.save_checkpoint(target, _model(), _run_config(), {"step": 5})
    os.replace(target, tmp_path / "last.prev")  # killed between the two renames
    (tmp_path / "last.tmp").mkdir()  # an incomplete new copy (no COMPLETE marker)
    found = ckpt.resolve_checkpoint_dir(target)
    assert found == tmp_path / "last.prev"
    assert ckpt.load_checkpoint(tmp_path).path.parent == found


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_corrupted_last_falls_back_to_the_previous_checkpoint(tmp_path, capsys, damage):
    target = tmp_path / "last"
    ckpt.save_checkpoint(target, _model(seed=1), _run_config(), {"step": 10})
    ckpt.save_checkpoint(target, _model(seed=2), _run_config(), {"step": 20})
    weights = target / "model.safetensors"
    data = bytearray(weights.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[-100] ^= 0xFF  # one flipped byte inside a tensor: safetensors alone would load it
    weights.write_bytes(bytes(data))
    assert ckpt.verify_checkpoint_dir(target) is not None
    assert ckpt.resolve_checkpoint_dir(target) == tmp_path / "last.prev"
    assert "model.safetensors does not match its checksum" in capsys.readouterr().err
    assert ckpt.load_train_state(ckpt.resolve_checkpoint_dir(target) / "train_state.pt")["step"] == 10
    with pytest.raises(UserError, match="does not match its checksum"):  # named directly: no silent fallback
        ckpt.load_checkpoint(weights)


def test_rng_state_round_trip_is_weights_only_safe(tmp_path):
    import random

    import numpy as np

    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    torch.save({"rng": ckpt.rng_state()}, tmp_path / "s.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.rand(5)
    np.random.rand(5)
    random.random()
    ckpt.set_rng_state(ckpt.load_train_state(tmp_path / "s.pt")["rng"])
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1]) and expected[2] == got[2]


def test_incompatible_weights_name_the_tensor(tmp_path):
    ckpt.save_checkpoint(tmp_path / "c", _model(), _run_config())
    other = SRNConfig(num_joints=14, num_stages=2, input_size=32, width=8, topk=8)
    save_yaml(_run_config(other), tmp_path / "c" / "config.yaml")
    with pytest.raises(UserError, match=r"model\.safetensors: incompatible checkpoint: tensor '.*' has shape"):
        ckpt.load_checkpoint(tmp_path / "c")


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED_BY_PICKLE",))


@pytest.mark.parametrize("name", ["train_state.pt", "weights.pt"])
def test_crafted_pickle_is_refused(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    ckpt.save_checkpoint(tmp_path / "c", _model(), _run_config())
    evil = tmp_path / "c" / name
    with open(evil, "wb") as f:
        pickle.dump({"step": 1, "x": _Payload()}, f)
    torch.save({"step": 1, "x": _Payload()}, tmp_path / "c" / ("torch_" + name))
    for path in (evil, tmp_path / "c" / ("torch_" + name)):
        with pytest.raises(UserError, match="refused to load"):
            if name == "train_state.pt":
                ckpt.load_train_state(path)
            else:
                ckpt.load_state_dict_file(path)
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()


def test_missing_checkpoint_is_one_line(tmp_path):
    with pytest.raises(UserError, match="no such file or folder"):
        ckpt.load_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="model.safetensors and config.yaml missing"):
        ckpt.load_checkpoint(tmp_path / "empty")
