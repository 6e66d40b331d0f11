"""The SRN network: ResNet blocks, the re-parameterization codec, the stacked network, its cost."""

from srnpose.model.flops import count_flops, count_params, model_summary
from srnpose.model.reparam import (
    REPARAM_CHANNELS_PER_JOINT,
    decode_offset,
    encode_heatmap2d,
    encode_maps,
    encode_offset,
    offset_fields,
    pixel_points,
    reparam_channels,
    split_offset_fields,
)
from srnpose.model.resnet import RESNET_SPECS, BasicBlock, Bottleneck, init_weights, make_layer, make_stem
from srnpose.model.srn import SRN, DetectionStage, RegressionStage, SRNJoints, SRNOutput

__all__ = [
    "SRN",
    "SRNOutput",
    "SRNJoints",
    "RegressionStage",
    "DetectionStage",
    "BasicBlock",
    "Bottleneck",
    "RESNET_SPECS",
    "make_layer",
    "make_stem",
    "init_weights",
    "REPARAM_CHANNELS_PER_JOINT",
    "reparam_channels",
    "pixel_points",
    "encode_offset",
    "decode_offset",
    "encode_heatmap2d",
    "encode_maps",
    "offset_fields",
    "split_offset_fields",
    "count_params",
    "count_flops",
    "model_summary",
]
