"""``srnpose demo``: train an SRN on synthetic hands on this machine, evaluate it, and show the result.

    srnpose demo                      # 15 minutes in all, writes runs/demo
    srnpose demo --minutes 5 --out runs/quick
"""

from __future__ import annotations

import argparse

from srnpose.errors import UserError
from srnpose.training.demo import run_demo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", metavar="DIR", help="run folder to create (default runs/demo)")
    parser.add_argument("--minutes", type=float, default=15.0, metavar="M",
                        help="time budget for training plus evaluation (default 15); the evaluation stops at "
                             "the budget and says how many test frames it scored")
    parser.add_argument("--test-frames", type=int, default=500, metavar="N",
                        help="held-out synthetic test frames (default 500, fixed seed)")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=None,
                        help="override the demo config, e.g. --set model.width=16 (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    if args.test_frames < 1:
        raise UserError(f"--test-frames: must be >= 1, got {args.test_frames}")
    run_demo(args.out, args.minutes, args.test_frames, tuple(args.overrides or ()), progress=not args.no_progress)
    return 0
