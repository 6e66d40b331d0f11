"""SRN: Stacked Regression Network (Ren et al., BMVC 2019).

::

    depth crop (B, 1, S, S)
      -> stem: 7x7 conv /2, BN, ReLU, max-pool /2, layer1    preliminary features (B, C1, F, F), F = S/4
      -> stage 1: regression module(features)                joints_1 (B, J, 3)
      -> re-parameterization(joints_1, depth)                maps_1 (B, C, F, F)
      -> stage 2: regression module(cat(features, maps_1))   joints_2
      -> re-parameterization(joints_2, depth)                maps_2
      -> stage 3: module(cat(features, maps_1, maps_2))      joints_3 = the estimate
         (accumulate=False: cat(features, maps_2) only)

A *regression* module is ResNet layers 2-4 (its first conv takes ``C1 + maps`` channels), global
average pooling and a linear layer to J x 3. A *detection* module (the paper's detection-based
stage) is ResNet layers 2-4 followed by three 4x4 stride-2 deconvolutions (4 x width = 256 channels, BN, ReLU)
that bring the stride-8 features back to F x F, and a 1x1 conv predicting the offset fields
(J 3D heatmaps + J unit vector fields, :func:`~srnpose.model.reparam.offset_fields` layout);
its joints are the top-k vote of those fields (:func:`~srnpose.model.reparam.decode_offset`).
Train its fields against :meth:`SRN.target_fields`. A detection stage always predicts offset
fields; ``reparam`` only chooses the maps fed to the next stage.

All joints are normalized crop coordinates ``(u_nrm, v_nrm, d_nrm)`` (see :mod:`srnpose.geometry`).
The re-parameterization is differentiable, so the last stage's loss trains the earlier stages too
(``detach_reparam=True`` cuts that path).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from srnpose.config import SRNConfig, to_dict
from srnpose.model.reparam import (
    decode_offset,
    encode_maps,
    encode_offset,
    offset_fields,
    pixel_points,
    reparam_channels,
    split_offset_fields,
)
from srnpose.model.resnet import RESNET_SPECS, init_weights, make_layer, make_stem

__all__ = ["SRN", "SRNOutput", "SRNJoints", "RegressionStage", "DetectionStage"]

DECONV_WIDTH_FACTOR = 4  # deconv channels = 4 x width: 256 at width 64, the authors' (SimpleBaseline's) head


class SRNOutput(NamedTuple):
    """What :meth:`SRN.forward` returns (a NamedTuple, so tracing and ONNX export flatten it).

    ``stage_joints[s]`` (B, J, 3): stage ``s``'s joints in normalized crop uvd.
    ``stage_fields[s]`` (B, 4J, F, F) for detection stages (their predicted offset fields), else None.
    """

    stage_joints: list[Tensor]
    stage_fields: list[Tensor | None]

    @property
    def final(self) -> Tensor:
        """The last stage's joints (B, J, 3): the network's estimate."""
        return self.stage_joints[-1]

    @property
    def num_stages(self) -> int:
        return len(self.stage_joints)

    def stacked(self) -> Tensor:
        """All stages' joints as one tensor (B, num_stages, J, 3)."""
        return torch.stack(self.stage_joints, dim=1)


def _layers_2_to_4(block: type, blocks: tuple[int, ...], in_channels: int, width: int) -> nn.Sequential:
    layers = []
    channels = in_channels
    for i, planes in enumerate((2 * width, 4 * width, 8 * width)):
        layers.append(make_layer(block, channels, planes, blocks[i + 1], stride=2))
        channels = planes * block.expansion
    return nn.Sequential(*layers)


class RegressionStage(nn.Module):
    """ResNet layers 2-4, global average pooling, linear -> joints (B, J, 3)."""

    def __init__(self, in_channels: int, num_joints: int, backbone: str = "resnet18", width: int = 64) -> None:
        super().__init__()
        block, blocks = RESNET_SPECS[backbone]
        self.in_channels = in_channels
        self.num_joints = num_joints
        self.body = _layers_2_to_4(block, blocks, in_channels, width)
        self.fc = nn.Linear(8 * width * block.expansion, num_joints * 3)

    def forward(self, x: Tensor, points: Tensor) -> tuple[Tensor, None]:
        y = self.body(x)  # (B, 8w*e, F/8, F/8)
        y = self.fc(y.mean(dim=(2, 3)))  # (B, 3J)
        return y.view(-1, self.num_joints, 3), None


class DetectionStage(nn.Module):
    """ResNet layers 2-4, three deconvolutions back to F x F, 1x1 conv -> offset fields; top-k vote."""

    def __init__(self, in_channels: int, num_joints: int, backbone: str = "resnet18", width: int = 64,
                 theta: float = 1.0, topk: int = 30) -> None:
        super().__init__()
        block, blocks = RESNET_SPECS[backbone]
        self.in_channels = in_channels
        self.num_joints = num_joints
        self.theta = theta
        self.topk = topk
        self.body = _layers_2_to_4(block, blocks, in_channels, width)
        deconvs: list[nn.Module] = []
        channels = 8 * width * block.expansion
        deconv_channels = DECONV_WIDTH_FACTOR * width
        for _ in range(3):  # stride 8 -> 1
            deconvs += [nn.ConvTranspose2d(channels, deconv_channels, kernel_size=4, stride=2, padding=1, bias=False),
                        nn.BatchNorm2d(deconv_channels), nn.ReLU(inplace=True)]
            channels = deconv_channels
        self.deconv = nn.Sequential(*deconvs)
        self.head = nn.Conv2d(deconv_channels, 4 * num_joints, kernel_size=1)

    def forward(self, x: Tensor, points: Tensor) -> tuple[Tensor, Tensor]:
        fields = self.head(self.deconv(self.body(x)))  # (B, 4J, F, F)
        heatmap, unit = split_offset_fields(fields)  # (B, J, F, F), (B, J, 3, F, F)
        joints = decode_offset(heatmap, unit, points, self.topk, self.theta)  # (B, J, 3)
        return joints, fields


class SRN(nn.Module):
    """The Stacked Regression Network; keyword arguments are :class:`~srnpose.config.SRNConfig`'s fields.

    ``SRN(num_joints=14, num_stages=2, input_size=32)`` or ``SRN.from_config(cfg)``.
    ``forward(depth_crop (B, 1, S, S)) -> SRNOutput``; :meth:`forward_joints` returns a plain
    (B, num_stages, J, 3) tensor for export.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__()
        cfg = SRNConfig(**kwargs)
        self.config = cfg
        block, blocks = RESNET_SPECS[cfg.backbone]
        self.feature_channels = cfg.width * block.expansion
        self.map_channels = reparam_channels(cfg.reparam, cfg.num_joints)
        self.stem = make_stem(block, blocks[0], width=cfg.width, in_channels=1)
        stages = []
        for s, kind in enumerate(cfg.stage_kinds):
            extra = 0 if s == 0 else (s if cfg.accumulate else 1) * self.map_channels
            in_channels = self.feature_channels + extra
            if kind == "regression":
                stages.append(RegressionStage(in_channels, cfg.num_joints, cfg.backbone, cfg.width))
            else:
                stages.append(DetectionStage(in_channels, cfg.num_joints, cfg.backbone, cfg.width,
                                             theta=cfg.theta, topk=cfg.topk))
        self.stages = nn.ModuleList(stages)
        init_weights(self)
        for stage in self.stages:
            if isinstance(stage, DetectionStage):  # small fields at start, as SimpleBaseline's head
                nn.init.normal_(stage.head.weight, std=0.001)
                nn.init.zeros_(stage.head.bias)

    @classmethod
    def from_config(cls, cfg: SRNConfig) -> SRN:
        return cls(**to_dict(cfg))

    @property
    def num_joints(self) -> int:
        return self.config.num_joints

    @property
    def num_stages(self) -> int:
        return self.config.num_stages

    @property
    def input_size(self) -> int:
        return self.config.input_size

    @property
    def feature_size(self) -> int:
        return self.config.feature_size

    def forward(self, depth_crop: Tensor) -> SRNOutput:
        """``depth_crop`` (B, 1, S, S) normalized depth in [-1, 1] (background +1), S = input_size."""
        cfg = self.config
        if not torch.jit.is_tracing() and (depth_crop.dim() != 4 or depth_crop.shape[1] != 1
                                           or tuple(depth_crop.shape[2:]) != (cfg.input_size,) * 2):
            raise ValueError(f"depth_crop must have shape (B, 1, {cfg.input_size}, {cfg.input_size}), "
                             f"got {tuple(depth_crop.shape)}")
        points, mask = pixel_points(depth_crop, cfg.feature_size)  # (B, F, F, 3), (B, F, F)
        features = self.stem(depth_crop)  # (B, C1, F, F)
        maps: list[Tensor] = []
        stage_joints: list[Tensor] = []
        stage_fields: list[Tensor | None] = []
        for s, stage in enumerate(self.stages):
            if s == 0:
                x = features
            else:
                x = torch.cat([features] + (maps if cfg.accumulate else maps[-1:]), dim=1)  # (B, C1 + extra, F, F)
                if features.is_contiguous(memory_format=torch.channels_last):  # a channels-last model (training)
                    x = x.contiguous(memory_format=torch.channels_last)  # else cat's NCHW costs each conv a copy
            joints, fields = stage(x, points)  # (B, J, 3), (B, 4J, F, F) | None
            stage_joints.append(joints)
            stage_fields.append(fields)
            if s + 1 < len(self.stages):
                source = joints.detach() if cfg.detach_reparam else joints
                maps.append(encode_maps(source, points, mask, cfg.reparam, cfg.theta, cfg.sigma))  # (B, C, F, F)
        return SRNOutput(stage_joints, stage_fields)

    def forward_joints(self, depth_crop: Tensor) -> Tensor:
        """Every stage's joints as a plain tensor (B, num_stages, J, 3), for ONNX export."""
        return self(depth_crop).stacked()

    def target_fields(self, depth_crop: Tensor, joints: Tensor) -> Tensor:
        """Ground-truth offset fields (B, 4J, F, F) of ``joints`` (B, J, 3), to supervise detection stages."""
        points, mask = pixel_points(depth_crop, self.config.feature_size)
        return offset_fields(*encode_offset(joints, points, mask, self.config.theta))


class SRNJoints(nn.Module):
    """Wraps an :class:`SRN` so that ``forward`` is :meth:`SRN.forward_joints`: one plain tensor out.

    For ``torch.onnx.export(SRNJoints(model).eval(), ...)`` and tracing; shares the weights.
    """

    def __init__(self, model: SRN) -> None:
        super().__init__()
        self.model = model

    def forward(self, depth_crop: Tensor) -> Tensor:
        return self.model.forward_joints(depth_crop)  # (B, num_stages, J, 3)
