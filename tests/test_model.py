"""The SRN network: shapes per stage kind and variant, gradients through the re-parameterization,
parameter count and FLOPs of the paper's model, and our ResNet against torchvision's known numbers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from srnpose.config import MODEL_PRESETS, SRNConfig
from srnpose.model import (
    RESNET_SPECS,
    SRN,
    DetectionStage,
    RegressionStage,
    SRNJoints,
    SRNOutput,
    count_flops,
    count_params,
    make_layer,
    make_stem,
    model_summary,
)
from srnpose.model.reparam import REPARAM_CHANNELS_PER_JOINT, decode_offset, pixel_points, split_offset_fields

TINY = dict(num_joints=5, num_stages=2, input_size=32, width=8, topk=8)


def hand_crop(batch: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    """(B, 1, S, S) normalized depth: a blob of foreground on a +1 background."""
    g = torch.Generator().manual_seed(seed)
    crop = torch.ones(batch, 1, size, size)
    q = size // 4
    crop[:, :, q:3 * q, q:3 * q] = torch.rand(batch, 1, 2 * q, 2 * q, generator=g) * 0.6 - 0.3
    return crop


@pytest.mark.parametrize("stage_kind", ["regression", "detection", "detection,regression"])
@pytest.mark.parametrize("reparam", list(REPARAM_CHANNELS_PER_JOINT))
def test_output_shapes(stage_kind, reparam):
    model = SRN(**TINY, stage_kind=stage_kind, reparam=reparam)
    out = model(hand_crop())
    assert isinstance(out, SRNOutput) and out.num_stages == 2
    for joints in out.stage_joints:
        assert joints.shape == (2, 5, 3) and torch.isfinite(joints).all()
    for kind, fields in zip(model.config.stage_kinds, out.stage_fields):
        assert (fields is None) == (kind == "regression")
        if fields is not None:
            assert fields.shape == (2, 4 * 5, 8, 8)  # offset fields at feature resolution F = 32 / 4
    assert out.final is out.stage_joints[-1]
    assert model.forward_joints(hand_crop()).shape == (2, 2, 5, 3)


@pytest.mark.parametrize("accumulate, expected", [(True, [32, 32 + 20, 32 + 40]), (False, [32, 52, 52])])
def test_stage_input_channels(accumulate, expected):
    model = SRN(num_joints=5, num_stages=3, input_size=32, width=32, topk=8, accumulate=accumulate)
    assert [s.in_channels for s in model.stages] == expected  # features (32) + 4J maps per previous stage
    assert model(hand_crop()).stacked().shape == (2, 3, 5, 3)


@pytest.mark.parametrize("stage_kind", ["regression", "detection"])
def test_gradients_flow_through_the_reparameterization(stage_kind):
    torch.manual_seed(0)
    model = SRN(**TINY, stage_kind=stage_kind)
    out = model(hand_crop())
    out.final.square().sum().backward()  # loss on the last stage only
    first = model.stages[0]
    head = first.fc if isinstance(first, RegressionStage) else first.head
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0
    assert model.stem[0].weight.grad.abs().sum() > 0


def test_detach_reparam_cuts_the_path():
    model = SRN(**TINY, detach_reparam=True)
    model(hand_crop()).final.square().sum().backward()
    assert model.stages[0].fc.weight.grad is None  # stage 1 only reaches the loss through its joints
    assert model.stem[0].weight.grad.abs().sum() > 0  # the features still feed stage 2


def test_bad_input_shape_is_named():
    with pytest.raises(ValueError, match=r"\(B, 1, 32, 32\)"):
        SRN(**TINY)(torch.zeros(2, 1, 64, 64))


def test_keyword_and_config_construction_agree():
    cfg = SRNConfig(**TINY, reparam="heatmap2d")
    a, b = SRN.from_config(cfg), SRN(**TINY, reparam="heatmap2d")
    assert a.config == b.config == cfg
    assert count_params(a) == count_params(b)
    with pytest.raises(ValueError, match="num_stages"):
        SRN(num_stages=0)


def test_paper_model_has_33_6m_parameters():
    with torch.device("meta"):  # no memory, no init cost
        model = SRN.from_config(MODEL_PRESETS["paper"])
    params = count_params(model)
    assert params == 33_627_773
    assert abs(params - 33.6e6) / 33.6e6 < 0.03
    assert [s.in_channels for s in model.stages] == [64, 64 + 84, 64 + 168]


def test_paper_model_flops_and_summary():
    summary = model_summary(MODEL_PRESETS["paper"])
    assert summary["params"] == 33_627_773
    assert abs(summary["gflops"] - 2.85) / 2.85 < 0.05
    assert summary["stem_params"] + sum(s["params"] for s in summary["stages"]) == summary["params"]
    assert summary["feature_size"] == 32 and summary["num_stages"] == 3


def test_resnet50_backbone_is_selectable():
    with torch.device("meta"):
        model = SRN(backbone="resnet50")
    assert model.feature_channels == 256
    assert count_params(model) > 60e6


def _torchvision_like(backbone: str) -> nn.Module:
    block, blocks = RESNET_SPECS[backbone]
    layers = [make_stem(block, blocks[0], in_channels=3)]
    channels = 64 * block.expansion
    for planes, n in zip((128, 256, 512), blocks[1:]):
        layers.append(make_layer(block, channels, planes, n, stride=2))
        channels = planes * block.expansion
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 1000))


@pytest.mark.parametrize("backbone, params, gflops", [("resnet18", 11_689_512, 3.64), ("resnet50", 25_557_032, 8.18)])
def test_our_resnet_matches_torchvision_numbers(backbone, params, gflops):
    with torch.device("meta"):
        net = _torchvision_like(backbone)
    assert count_params(net) == params  # torchvision's published parameter counts
    net.eval()
    totals = count_flops(_OneToThree(net), 224)  # 1.82 / 4.09 GMACs at 224x224
    assert totals == pytest.approx(gflops, rel=0.01)


class _OneToThree(nn.Module):
    """count_flops feeds one channel; repeat it to three for an ImageNet ResNet."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.expand(-1, 3, -1, -1))


def test_detection_stage_decodes_its_own_target_fields():
    model = SRN(**{**TINY, "num_stages": 1}, stage_kind="detection")
    crop = hand_crop(batch=1)
    joints = torch.tensor([[[-0.1, 0.1, 0.0], [0.2, -0.1, 0.1], [0.0, 0.0, -0.1], [0.1, 0.1, 0.2], [-0.2, -0.2, 0.0]]])
    fields = model.target_fields(crop, joints)
    stage = model.stages[0]
    assert isinstance(stage, DetectionStage)
    points, _ = pixel_points(crop, model.feature_size)
    decoded = decode_offset(*split_offset_fields(fields), points, stage.topk, stage.theta)
    torch.testing.assert_close(decoded, joints, atol=1e-4, rtol=0)


def test_onnx_export_matches_torch(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import warnings

    torch.manual_seed(0)
    model = SRNJoints(SRN(**TINY, stage_kind="detection,regression")).eval()
    path = tmp_path / "srn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (hand_crop(),), str(path), opset_version=17, dynamo=False,
                          input_names=["depth"], output_names=["joints"], dynamic_axes={"depth": {0: "batch"}})
    crop = hand_crop(batch=3, seed=1)  # another batch size than the export's
    got = ort.InferenceSession(str(path)).run(None, {"depth": crop.numpy()})[0]
    with torch.no_grad():
        expected = model(crop).numpy()
    assert got.shape == (3, 2, 5, 3)
    assert abs(got - expected).max() < 1e-4
