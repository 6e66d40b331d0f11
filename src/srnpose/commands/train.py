"""``srnpose train``: train an SRN on synthetic hands or a public dataset (also under torchrun).

    srnpose train --data synth --out runs/synth --preset demo --minutes 10
    srnpose train --data nyu:/data/nyu --out runs/nyu --preset paper
    srnpose train --out runs/nyu --resume
    torchrun --standalone --nproc_per_node=4 -m srnpose train --data icvl:/data/icvl --out runs/icvl
"""

from __future__ import annotations

import argparse

PRESET_NAMES = ("paper", "demo", "tiny")  # mirrors srnpose.train.PRESETS (kept light here)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="SPEC",
                        help="training data: synth (rendered on the fly), synth:DIR, nyu:DIR, icvl:DIR, "
                             "msra:DIR[@P0], hands17:DIR")
    parser.add_argument("--val", metavar="SPEC",
                        help="validation data (default: held-out synthetic frames for synth, else the "
                             "dataset's test split)")
    parser.add_argument("--out", metavar="RUN", required=True, help="run folder (config, metrics.csv, last/, best/)")
    parser.add_argument("--preset", default=None, choices=PRESET_NAMES,
                        help="starting config (default: paper)")
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML with model/data/train keys, over the preset")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=None,
                        help="override one config value, e.g. --set train.lr=5e-4 (repeatable)")
    parser.add_argument("--resume", action="store_true",
                        help="continue RUN from RUN/last (its saved config; --steps/--epochs/--minutes extend it)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=float, metavar="N", help="train for N epochs in all")
    length.add_argument("--steps", type=int, metavar="N", help="train for N optimizer steps in all")
    length.add_argument("--minutes", type=float, metavar="M", help="train for M minutes in all")
    parser.add_argument("--centers", metavar="FILE",
                        help="refined hand centres of the training split, one line per frame (see README)")
    parser.add_argument("--val-centers", metavar="FILE", help="refined hand centres of the validation split")
    parser.add_argument("--skip-bad", action="store_true", help="skip and count unreadable frames instead of stopping")
    parser.add_argument("--workers", type=int, metavar="K", help="data loader processes per rank")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: auto (CUDA when available)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _length_overrides(args: argparse.Namespace) -> list[str]:
    if args.steps is not None:
        return [f"train.steps={args.steps}", "train.epochs=null", "train.minutes=null"]
    if args.epochs is not None:
        return [f"train.epochs={args.epochs}", "train.steps=null", "train.minutes=null"]
    if args.minutes is not None:
        return [f"train.minutes={args.minutes}", "train.steps=null", "train.epochs=null"]
    return []


def run(args: argparse.Namespace) -> int:
    from srnpose.config import apply_overrides
    from srnpose.errors import UserError
    from srnpose.train import build_config, load_resume_config, train

    for flag, value in (("--steps", args.steps), ("--workers", args.workers)):
        if value is not None and value < (1 if flag == "--steps" else 0):
            raise UserError(f"{flag}: must be {'>= 1' if flag == '--steps' else '>= 0'}, got {value}")
    for flag, value in (("--epochs", args.epochs), ("--minutes", args.minutes)):
        if value is not None and not value > 0:
            raise UserError(f"{flag}: must be > 0, got {value}")
    extra = list(_length_overrides(args))
    if args.val:
        extra.append(f"data.val_spec={args.val}")
    if args.skip_bad:
        extra.append("data.skip_bad=true")
    if args.centers:
        extra.append(f"data.centers={args.centers}")
    if args.val_centers:
        extra.append(f"data.val_centers={args.val_centers}")
    if args.workers is not None:
        extra.append(f"data.workers={args.workers}")
    if args.device:
        extra.append(f"train.device={args.device}")

    if args.resume:
        for flag, value in (("--preset", args.preset), ("--config", args.config), ("--data", args.data)):
            if value:
                raise UserError(f"{flag} cannot be used with --resume (the run's saved config is used)")
        cfg = apply_overrides(load_resume_config(args.out), extra + list(args.overrides or []))
    else:
        if not args.data:
            raise UserError("--data SPEC is required (e.g. --data synth or --data nyu:/data/nyu)")
        cfg = build_config(args.preset or "paper", args.config,
                           [f"data.spec={args.data}"] + extra + list(args.overrides or []))
    result = train(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        summary = f"trained to step {result.step} ({result.samples_per_s:.1f} samples/s)"
        if result.val_stage_mm:
            summary += "; validation mean error per stage (mm): " + " ".join(f"{v:.2f}" for v in result.val_stage_mm)
        if result.bad_frames:
            summary += f"; skipped {result.bad_frames} bad frames"
        print(summary)
        print(f"run folder: {args.out} (best/, last/, metrics.csv). Next: srnpose evaluate --checkpoint {args.out} "
              f"--data {cfg.data.val_spec or cfg.data.spec} --out {args.out}/eval")
    return 0
