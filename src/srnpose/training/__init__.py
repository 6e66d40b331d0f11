"""Training: the loop, run configs and presets, checkpoints, lock, log, schedule, losses, DDP, demo."""
