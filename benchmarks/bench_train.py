"""Training throughput on this machine's CPU: samples/s, the share of a same-run matmul rate, and where a
step's time goes (srnpose.training.throughput; `srnpose benchmark --train` prints the same preset table).

    python benchmarks/bench_train.py                          # release, demo, paper, stacked
    python benchmarks/bench_train.py --presets release stacked --steps 10 --rounds 3 --json train.json
    python benchmarks/bench_train.py --variants               # what raises release and stacked samples/s
    python benchmarks/bench_train.py --variants "release" "release reuse 2" --steps 6 --rounds 4
    python benchmarks/bench_train.py --accuracy 200           # fp32 vs the variants that change numbers
    python benchmarks/bench_train.py --reparam                # the re-parameterization alone

Per entry: "compute" (pre-cropped batches: forward, loss, backward, optimizer, the logged mm error) and
"end to end" (training's DataLoader: frames rendered, centred, cropped and augmented as the preset trains,
in data.workers loader processes beside the training threads), each as samples/s and as a share of a
plain fp32 matmul's GFLOP/s timed in the same run (3 x forward GFLOPs x samples/s / matmul; not a bound).
Entries run in interleaved rounds; compare figures within one run only, and read the load average
printed with them. Figures, not assertions: nothing here fails on a slow machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# "release" and "stacked" as trained: channels-last convolutions and fused Adam (train.channels_last,
# train.fused_optimizer) since 2026-12-07; "... before" is the step as trained until then.
BEFORE = {"channels_last": False, "optimizer_impl": "loop"}
VARIANTS = {  # label -> (preset, StepOptions fields): deliverable 2 of issue 24
    "release": ("release", {}),
    "release before": ("release", BEFORE),
    "release plain layout": ("release", {"channels_last": False}),
    "release loop adam": ("release", {"optimizer_impl": "loop"}),
    "release 2 threads, 0 workers": ("release", {"workers": 0, "threads": 2}),
    "release 1 thread, 0 workers": ("release", {"workers": 0, "threads": 1}),
    "release 2 threads, 1 worker": ("release", {"workers": 1, "threads": 2}),
    "release batch 64": ("release", {"batch_size": 64}),
    "release batch 128": ("release", {"batch_size": 128}),
    "release reuse 2": ("release", {"frame_reuse": 2}),
    "release b64, reuse 2": ("release", {"batch_size": 64, "frame_reuse": 2}),
    "release b128, reuse 3": ("release", {"batch_size": 128, "frame_reuse": 3}),
    "release-base": ("release-base", {}),
    "release-base before": ("release-base", BEFORE),
    "stacked": ("stacked", {}),
    "stacked before": ("stacked", BEFORE),
    "stacked b64, reuse 2": ("stacked", {"batch_size": 64, "frame_reuse": 2}),
    "stacked2": ("stacked2", {}),
    "stacked2 before": ("stacked2", BEFORE),
}
# bf16 autocast is timed apart, compute only and few steps: where the CPU lacks bf16 instructions it is slow.
BF16_VARIANTS = {"release-base": ("release-base", {}), "release-base bf16": ("release-base", {"bf16": True}),
                 "stacked": ("stacked", {}), "stacked bf16": ("stacked", {"bf16": True})}
ACCURACY_VARIANTS = {"plain": BEFORE, "channels_last": {"channels_last": True, "optimizer_impl": "loop"},
                     "fused adam": {"channels_last": False, "optimizer_impl": "fused"}, "both (as trained)": {}}


def _entries(table: dict, only: list[str] | None = None) -> list:
    from srnpose.training.throughput import StepOptions, bench_entry

    return [bench_entry(preset, StepOptions(**opts), label=label) for label, (preset, opts) in table.items()
            if not only or label in only]


def _ratios(report: dict) -> list[str]:
    """Each entry's end-to-end and compute rate over "release"'s (paired by round: the median over rounds of
    the two rates' ratio in the same round), and the stacked step over the 1-stage step of equal FLOPs."""
    from srnpose.training.throughput import paired_ratio

    by = {r["name"]: r for r in report["results"]}
    lines = []
    for r in report["results"] if "release" in by else []:
        parts = [f"{scope} {ratio:.2f}x" for scope in ("end_to_end", "compute")
                 if (ratio := paired_ratio(report, r["name"], "release", scope)) is not None]
        lines.append(f"  {r['name']:<32} " + ", ".join(parts))
    # "stacked"/"stacked2": release-base's recipe with 3/2 stages at its one stage's FLOPs (the 1-stage base)
    for stacked, single in (("stacked", "release-base"), ("stacked before", "release-base before"),
                            ("stacked2", "release-base"), ("stacked2 before", "release-base before"),
                            ("stacked bf16", "release-base bf16")):
        if stacked in by and single in by and "compute" in by[stacked]:
            # per-sample step time ratio = the inverse of the rate ratio (same batch size)
            step = 1.0 / paired_ratio(report, stacked, single, "compute")
            flops = by[stacked]["model"]["gflops"] / by[single]["model"]["gflops"]
            lines.append(f"  step of {stacked!r} / {single!r}: {step:.2f}x (FLOPs {flops:.3f}x; per FLOP "
                         f"{step / flops:.2f}x)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=None,
                        help="release, demo, paper, stacked, tiny (default: release demo paper stacked)")
    parser.add_argument("--variants", nargs="*", default=None, metavar="LABEL",
                        help="time the variants (all, or those named) instead of the presets")
    parser.add_argument("--bf16", action="store_true", help="time bf16 autocast against fp32 (compute only)")
    parser.add_argument("--accuracy", type=int, default=0, metavar="STEPS",
                        help="train the plain step and each numeric variant STEPS steps from one seed on the same batches")
    parser.add_argument("--accuracy-preset", default="release")
    parser.add_argument("--reparam", action="store_true", help="time the re-parameterization alone")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per figure and round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", metavar="FILE", help="write the report as JSON")
    args = parser.parse_args(argv)

    from srnpose.training import throughput as tp
    from srnpose.training import throughput_experiments as tpx
    from srnpose.training import throughput_text as tpt

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    out: dict = {}
    if args.reparam:
        for name in ("stacked", "demo", "paper"):
            cfg = tp.bench_config(name)
            cost = tpx.reparam_cost(cfg, batch_size=cfg.train.batch_size)
            out[f"reparam {name}"] = cost
            print(f"reparam {name} ({cfg.model.reparam}, B {cfg.train.batch_size}, F {cfg.model.feature_size}, "
                  f"1 thread): " + ", ".join(f"{k} {v:.2f} ms" for k, v in cost.items()))
    if args.accuracy:
        from srnpose.training.throughput import StepOptions

        res = tpx.compare_training(args.accuracy_preset, {k: StepOptions(**v) for k, v in ACCURACY_VARIANTS.items()},
                                  steps=args.accuracy, progress=progress)
        out["accuracy"] = res
        ref = res["variants"]["plain"]["loss"]
        tail = max(1, len(ref) // 4)
        print(f"accuracy: {args.accuracy_preset}, {res['steps']} steps from one seed on the same batches, "
              f"validation on {res['val_frames']} synthetic frames")
        for label, v in res["variants"].items():
            diff = max(abs(a - b) for a, b in zip(v["loss"], ref))
            print(f"  {label:<14} loss first {v['loss'][0]:.5f} last-quarter mean {sum(v['loss'][-tail:]) / tail:.5f} "
                  f"(max |diff| vs plain {diff:.2e}), val mm " + " ".join(f"{m:.2f}" for m in v["val_stage_mm"])
                  + f", {v['seconds']:.1f} s")
    if args.bf16:
        report = tp.throughput_report(_entries(BF16_VARIANTS), steps=min(args.steps, 3), warmup=1, rounds=args.rounds,
                                      scopes=("compute",), progress=progress)
        out["bf16"] = report
        print(tpt.format_report(report))
        print("\n".join(_ratios(report)))
    if args.variants is not None:
        report = tp.throughput_report(_entries(VARIANTS, args.variants), steps=args.steps, warmup=args.warmup,
                                      rounds=args.rounds, scopes=("compute", "end_to_end"), progress=progress)
        out["variants"] = report
        print(tpt.format_report(report))
        if any(r["name"] == "release" for r in report["results"]):
            print("ratios to 'release' (as trained):")
        print("\n".join(_ratios(report)))
    if not (args.reparam or args.accuracy or args.bf16 or args.variants is not None) or args.presets:
        presets = args.presets or list(tp.BENCH_PRESETS)
        report = tp.throughput_report([tp.bench_entry(p) for p in presets], steps=args.steps, warmup=args.warmup,
                                      rounds=args.rounds, progress=progress)
        out["presets"] = report
        print(tpt.format_report(report))
        print("\n".join(_ratios(report)))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=float) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
