"""SRN's ablation claim on synthetic hands: a 1-stage plain regression network against a 3-stage SRN,
trained for the same time budget, evaluated on the same held-out synthetic test set.

    python benchmarks/ablation.py --minutes 5                 # 5 minutes of training each
    python benchmarks/ablation.py --minutes 2 --test-frames 200 --out runs/ablation

Both models use the demo preset's backbone and crop size; the 1-stage net is cheaper per step, so it
sees more samples in the same time: the comparison is at equal training time, as on a real budget.
On a shared machine, ``--parallel`` trains both at the same time, one thread each, so that both see
the same load (the figures in the README were measured that way).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

VARIANTS = {  # name -> config overrides on the demo preset
    "1-stage regression": ["model.num_stages=1"],
    "3-stage SRN": ["model.num_stages=3"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0, help="training time per model")
    parser.add_argument("--steps", type=int, default=None,
                        help="train each model for this many steps instead (equal samples, not equal time)")
    parser.add_argument("--test-frames", type=int, default=500)
    parser.add_argument("--out", default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="extra overrides for both models")
    parser.add_argument("--parallel", action="store_true",
                        help="train both models at the same time, one thread each (fair on a shared machine)")
    parser.add_argument("--only", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import subprocess

    from srnpose.checkpoint import load_train_state
    from srnpose.evaluate_run import evaluate_checkpoint
    from srnpose.run_config import build_config
    from srnpose.train import train

    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="srnpose_ablation_"))
    extra = list(args.overrides) + (["train.threads=1", "data.workers=0"] if args.parallel or args.only else [])

    def run_dir(name: str) -> Path:
        return root / name.replace(" ", "_")

    def train_one(name: str) -> None:
        length = ([f"train.steps={args.steps}", "train.minutes=null", f"train.val_every={args.steps}"]
                  if args.steps else [f"train.minutes={args.minutes}", "train.steps=null"])
        cfg = build_config("demo", None, ["data.spec=synth", "train.epochs=null"] + length + VARIANTS[name] + extra)
        print(f"training {name} for {f'{args.steps} steps' if args.steps else f'{args.minutes} min'} "
              f"-> {run_dir(name)}", flush=True)
        train(cfg, run_dir(name), progress=False)

    if args.only:
        train_one(args.only)
        return 0
    if args.parallel:
        length = ["--steps", str(args.steps)] if args.steps else ["--minutes", str(args.minutes)]
        procs = [subprocess.Popen([sys.executable, __file__, "--only", name, "--out", str(root)] + length
                                  + [f"--set={o}" for o in args.overrides])
                 for name in VARIANTS]
        if any(p.wait() != 0 for p in procs):
            return 1
    else:
        for name in VARIANTS:
            train_one(name)
    results = {}
    for name in VARIANTS:
        state = load_train_state(run_dir(name) / "last" / "train_state.pt")
        report = evaluate_checkpoint(run_dir(name), "synth", run_dir(name) / "eval", frames=args.test_frames,
                                     overlays=0, verbose=False)
        results[name] = (state, report)

    budget = f"{args.steps} steps of {build_config('demo').train.batch_size}" if args.steps else f"{args.minutes} min"
    print(f"\nsame budget ({budget} of training each), {args.test_frames} held-out synthetic frames")
    print(f"{'model':<20} {'steps':>6} {'samples/s':>9} {'per-stage mean error (mm)':<32} {'final mm':>8} "
          f"{'<=20 mm':>8} {'AUC':>6}")
    for name, (state, report) in results.items():
        stages = " / ".join(f"{s['mean_error_mm']:.2f}" for s in report["stages"])
        rate = state["samples"] / max(state["time_s"], 1e-9)
        print(f"{name:<20} {state['step']:>6} {rate:>9.1f} {stages:<32} "
              f"{report['mean_error_mm']:>8.2f} {100 * report['success_rate_max_frame'][20]:>7.1f}% "
              f"{report['auc']:>6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
