"""Run by torchrun in test_ddp.py: train a tiny config and, through the ``on_step`` callback, write each
rank's parameters after every step (the last write holds the final weights).

    python -m torch.distributed.run --nproc_per_node=2 tests/ddp_train_script.py RUN DUMP KEY=VALUE ...
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> None:
    from safetensors.torch import save_file

    from srnpose.training.loop import train
    from srnpose.training.run_config import build_config

    run, dump, overrides = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
    dump.mkdir(parents=True, exist_ok=True)

    def on_step(step, info, model):
        save_file({k: v.detach().cpu().contiguous() for k, v in model.named_parameters()},
                  str(dump / f"rank{info.rank}.safetensors"))

    cfg = build_config("tiny", None, ["data.spec=synth", "train.device=cpu"] + overrides)
    train(cfg, run, progress=False, on_step=on_step)


if __name__ == "__main__":
    main()
