"""A 21-joint model evaluates on every dataset's native layout through skeleton.convert, with the same
error as converting its predictions by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srnpose.config import SRNConfig, to_dict
from srnpose.model import SRN
from srnpose.training.checkpoint import save_checkpoint

TINY = SRNConfig(num_stages=2, input_size=32, width=8, topk=8)


@pytest.fixture(scope="module")
def canonical_run(tmp_path_factory):
    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("canonical") / "run"
    save_checkpoint(run / "last", SRN.from_config(TINY).eval(),
                    {"model": to_dict(TINY), "data": {"center": "depth", "cube_mm": 250.0, "layout": "canonical"}})
    return run


@pytest.mark.parametrize("fmt", ["nyu", "icvl", "msra", "hands17"])
def test_cross_layout_evaluation_equals_converting_by_hand(canonical_run, tmp_path, fmt):
    import srnpose
    from srnpose.data.datasets import get_dataset, load_records
    from srnpose.data.public_layouts import WRITERS
    from srnpose.evaluation.model_eval import evaluate_checkpoint
    from srnpose.geometry import uvd_to_xyz
    from srnpose.hand.skeleton import convert

    data = WRITERS[fmt](tmp_path / fmt, 6, seed=1, progress=False)
    spec = f"{fmt}:{data}"
    report = evaluate_checkpoint(canonical_run, spec, tmp_path / "eval", overlays=0)
    layout = get_dataset(fmt).layout
    assert report["labels_layout"] == layout and report["joint_mapping"].startswith(f"canonical -> {layout}")
    assert len(report["joints_compared"]) == len(load_records(spec, "test")[0].joints_uvd)

    # evaluate's runtime, and the network's joints as evaluate scores them without --fit: the same numbers to 1e-6 mm
    estimator = srnpose.load(canonical_run, backend="torch", fit=False)
    errors = []
    for record in load_records(spec, "test"):
        result = estimator.predict(record.load_depth(), intrinsics=record.intrinsics)
        if result.hand_found:
            by_hand = convert(result.joints_xyz, "canonical", layout)
            gt = uvd_to_xyz(np.asarray(record.joints_uvd, dtype=np.float64), record.intrinsics)
            errors.append(np.linalg.norm(by_hand - gt, axis=-1).mean())
    assert report["frames"] == len(errors) > 0
    assert report["mean_error_mm"] == pytest.approx(float(np.mean(errors)), abs=1e-6)


def test_a_layout_that_cannot_be_mapped_is_one_line(tmp_path):
    from srnpose.data.public_layouts import WRITERS
    from srnpose.errors import UserError
    from srnpose.evaluation.model_eval import evaluate_checkpoint

    cfg = SRNConfig(num_joints=16, num_stages=2, input_size=32, width=8, topk=8)
    run = tmp_path / "icvl_run"
    save_checkpoint(run / "last", SRN.from_config(cfg).eval(),
                    {"model": to_dict(cfg), "data": {"center": "depth", "cube_mm": 250.0, "layout": "icvl"}})
    data = WRITERS["hands17"](tmp_path / "h17", 4, seed=2, progress=False)
    with pytest.raises(UserError, match="cannot map from layout 'icvl'"):
        evaluate_checkpoint(run, f"hands17:{data}", tmp_path / "eval", overlays=0)


def test_the_nyu_frame_in_one_command(canonical_run, shared_data, tmp_path, capsys):
    import json

    from srnpose.cli import main

    out = tmp_path / "nyu"
    assert main(["evaluate", "--checkpoint", str(canonical_run), "--data", f"nyu:{shared_data / 'nyu_frame'}",
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["frames"] == 1 and report["labels_layout"] == "nyu" and len(report["joints_compared"]) == 14
    assert "joints compared: the labels' nyu layout" in capsys.readouterr().out
