"""The learning-rate schedule: a pure function of the step, so that a resumed run continues exactly.

``step`` divides the rate by ``lr_decay`` every ``lr_step_epochs``; ``cosine`` decays from ``lr`` to
``lr * lr_min_ratio`` over ``total_steps``; ``constant`` keeps it. An optional linear warm-up comes
first. Under torchrun the base rate is scaled by ``lr_scaling``: ``"sqrt"`` (lr x sqrt(world_size),
the usual rule for Adam), ``"linear"`` (lr x world_size, Goyal et al.) or ``"none"``.
"""

from __future__ import annotations

import math

__all__ = ["lr_at"]


def lr_at(step: int, cfg, steps_per_epoch: float, total_steps: int | None,
          world_size: int = 1) -> float:
    """The learning rate of optimizer step ``step`` (0-based): a pure function, so resume is exact."""
    scale = {"sqrt": math.sqrt(world_size), "linear": float(world_size), "none": 1.0}[cfg.lr_scaling]
    base = cfg.lr * scale
    if cfg.lr_schedule == "step":
        lr = base * cfg.lr_decay ** math.floor(step / (cfg.lr_step_epochs * steps_per_epoch))
    elif cfg.lr_schedule == "cosine" and total_steps:
        progress = min(step / max(total_steps, 1), 1.0)
        lr = base * (cfg.lr_min_ratio + (1 - cfg.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))
    else:
        lr = base
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        lr *= (step + 1) / cfg.warmup_steps
    return lr
