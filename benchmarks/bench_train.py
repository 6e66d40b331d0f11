"""Training throughput (samples/s) of the paper and demo configs on this machine's CPU.

    python benchmarks/bench_train.py                 # paper and demo, a few steps each
    python benchmarks/bench_train.py --steps 10 --presets demo

Two figures per config: "compute" (forward + backward + Adam step on pre-cropped batches) and
"end to end" (the training loop's data path included: synthetic frames rendered, centred and cropped on
the fly with the preset's centre rule and augmentation, in the training process, one process with
torch's default threads; the demo itself renders in a loader process beside one thread). Warm-up steps
are not timed; median and spread over the timed steps.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time


def machine() -> str:
    import numpy as np
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"numpy {np.__version__}, Python {platform.python_version()}, {platform.system()}")


def bench(preset: str, steps: int, warmup: int, batch_size: int | None) -> dict:
    import numpy as np
    import torch

    from srnpose.data.centering import CenterPolicy
    from srnpose.data.pipeline import CropConfig, collate
    from srnpose.data.sampling import SampleSource
    from srnpose.model import SRN
    from srnpose.training.losses import srn_loss
    from srnpose.training.run_config import SYNTH_TRAIN_SEED, build_config, resolve_data

    cfg = resolve_data(build_config(preset, None, ["data.spec=synth"]))
    B = batch_size or cfg.train.batch_size
    d = cfg.data
    crop = CropConfig(input_size=cfg.model.input_size, augment=d.augment)
    source = SampleSource(None, crop, CenterPolicy.for_rule(d.center, d.cube_mm), 0, False, synth_seed=SYNTH_TRAIN_SEED, synth_resolution=d.synth_resolution)
    torch.manual_seed(0)
    model = SRN.from_config(cfg.model).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)

    def step(batch):
        loss, _ = srn_loss(model(batch["depth"]).stage_joints, batch["joints_nrm"], cfg.train.loss_beta)
        opt.zero_grad()
        loss.backward()
        opt.step()

    fixed = collate([source[i] for i in range(B)])
    compute, e2e = [], []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        step(fixed)
        if i >= warmup:
            compute.append(B / (time.perf_counter() - t0))
    g = 10_000
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        batch = collate([source[g + k] for k in range(B)])
        g += B
        step(batch)
        if i >= warmup:
            e2e.append(B / (time.perf_counter() - t0))
    params = sum(p.numel() for p in model.parameters())
    return {"preset": preset, "batch": B, "input": cfg.model.input_size, "width": cfg.model.width,
            "stages": cfg.model.num_stages, "params_M": params / 1e6,
            "compute": (statistics.median(compute), float(np.std(compute))),
            "e2e": (statistics.median(e2e), float(np.std(e2e)))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["paper", "demo"])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per figure")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: the preset's)")
    args = parser.parse_args(argv)
    print(machine())
    print(f"{'preset':<7} {'input':>5} {'width':>5} {'stages':>6} {'params':>8} {'batch':>5} "
          f"{'compute samples/s':>20} {'end-to-end samples/s':>22}")
    for preset in args.presets:
        r = bench(preset, args.steps, args.warmup, args.batch)
        print(f"{r['preset']:<7} {r['input']:>5} {r['width']:>5} {r['stages']:>6} {r['params_M']:>7.1f}M "
              f"{r['batch']:>5} {r['compute'][0]:>12.1f} +- {r['compute'][1]:<5.1f} "
              f"{r['e2e'][0]:>14.1f} +- {r['e2e'][1]:<5.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
