"""Model cost: parameters and FLOPs per frame, and the summary ``srnpose info`` prints."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from srnpose.config import SRNConfig, to_dict
from srnpose.model.srn import SRN

__all__ = ["count_params", "count_flops", "model_summary"]


def count_params(module: nn.Module) -> int:
    """Number of parameters (trainable or not; BN running statistics are buffers, not counted)."""
    return sum(p.numel() for p in module.parameters())


def _macs_hook(totals: list[int]):
    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        x = inputs[0]
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            totals[0] += output[0].numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.ConvTranspose2d):
            kh, kw = module.kernel_size
            totals[0] += x[0].numel() * (module.out_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            totals[0] += output[0].numel() * module.in_features
    return hook


def count_flops(model: nn.Module, input_size: int) -> float:
    """GFLOPs for one frame: 2 x the multiply-accumulates of conv, deconv and linear layers.

    Runs one forward pass of a (1, 1, S, S) input on the model's device (a ``meta`` device model
    costs nothing); BN, ReLU, pooling and the re-parameterization are not counted.
    """
    param = next(model.parameters())
    totals = [0]
    handles = [m.register_forward_hook(_macs_hook(totals)) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, input_size, input_size, dtype=param.dtype, device=param.device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return 2.0 * totals[0] / 1e9


def model_summary(cfg: SRNConfig) -> dict[str, Any]:
    """Parameters, GFLOPs and stage layout of the SRN ``cfg``, as plain data.

    Keys: ``params``, ``gflops``, ``input_size``, ``feature_size``, ``num_joints``, ``num_stages``,
    ``stage_kind``, ``backbone``, ``reparam``, ``stem_params``, ``stages`` (one dict per stage:
    ``kind``, ``in_channels``, ``params``), ``config``. The model is built on the meta device, so
    this is fast and allocates nothing.
    """
    with torch.device("meta"):
        model = SRN.from_config(cfg)
    return {
        "params": count_params(model),
        "gflops": round(count_flops(model, cfg.input_size), 4),
        "input_size": cfg.input_size,
        "feature_size": cfg.feature_size,
        "num_joints": cfg.num_joints,
        "num_stages": cfg.num_stages,
        "stage_kind": cfg.stage_kind,
        "backbone": cfg.backbone,
        "reparam": cfg.reparam,
        "stem_params": count_params(model.stem),
        "stages": [{"kind": kind, "in_channels": stage.in_channels, "params": count_params(stage)}
                   for kind, stage in zip(cfg.stage_kinds, model.stages)],
        "config": to_dict(cfg),
    }
