"""``srnpose locator``: train a hand locator for full frames, attach it to a checkpoint.

    srnpose locator train --out runs/locator --minutes 10
    srnpose locator train --out runs/locator --minutes 10 --resume   # continue it (its checkpoint last/)
    srnpose locator attach runs/locator runs/demo       # predict, live, evaluate and load() then use it

A run (or checkpoint folder) that carries ``locator.safetensors`` and ``locator.yaml`` finds the hand
with the locator; ``--center depth`` on predict, live and evaluate keeps the nearest-blob search.
"""

from __future__ import annotations

import argparse

from srnpose.errors import UserError
from srnpose.outputs import (
    CHECKPOINT_KIND,
    LOCATOR_KIND,
    RUN_KIND,
    check_folder_target,
    folder_kind,
    refuse_foreign_folder,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    train = sub.add_parser("train", help="train a locator on synthetic full frames (engine v2, or --engine v3)",
                           description="train a locator on synthetic full frames (engine v2, or --engine v3); --resume "
                                       "continues a folder that holds a training")
    train.add_argument("--out", required=True, metavar="DIR", help="the locator's folder")
    train.add_argument("--resume", action="store_true",
                       help="continue the training --out holds (its checkpoint last/), else start it")
    train.add_argument("--minutes", type=float, default=None, help="stop after this much training time")
    train.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    train.add_argument("--batch", type=int, default=32, help="frames per step (default 32)")
    train.add_argument("--workers", type=int, default=1, help="rendering processes (default 1)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--init", metavar="LOCATOR_DIR", default=None,
                       help="start from this locator's weights (fine-tuning; a resumed training keeps its own)")
    train.add_argument("--onnx", action="store_true", help="also write locator.onnx (for --backend onnxruntime)")
    train.add_argument("--engine", choices=("v2", "v3", "mixed"), default="v2",
                       help="the synthetic engine of the hand frames (v3: turned hands, a second hand; mixed: half "
                            "v2, half v3; default v2)")
    attach = sub.add_parser("attach", help="copy a locator into a run or checkpoint folder",
                            description="copy a locator (locator.safetensors, locator.yaml) into a run folder "
                                        "(every checkpoint of the run uses it) or a checkpoint folder")
    attach.add_argument("locator", metavar="LOCATOR_DIR", help="a folder written by 'srnpose locator train'")
    attach.add_argument("run", metavar="RUN", help="a run folder or a checkpoint folder")


def _check_out(text: str) -> None:
    """A locator trains in a folder of its own (or resumes there): a pose model's run or checkpoint folder,
    or another command's folder, is refused; attaching a locator to a run is ``locator attach``'s."""
    out = check_folder_target(text, "--out")
    hint = "train the locator in a folder of its own"
    if folder_kind(out) in (RUN_KIND, CHECKPOINT_KIND):
        hint += f", then attach it: srnpose locator attach LOCATOR_DIR {out}"
    refuse_foreign_folder(out, "--out", (None, LOCATOR_KIND), hint)


def run(args: argparse.Namespace) -> int:
    from srnpose.locator.model import attach_locator, export_locator_onnx, load_locator

    if args.action == "attach":
        folder = attach_locator(args.locator, args.run)
        print(f"attached {args.locator} to {folder}: predict, live, evaluate and srnpose.load use it "
              "(--center depth: the nearest-blob search)")
        return 0
    from srnpose.locator.train import train_locator

    if args.minutes is None and args.steps is None:
        raise UserError("give --minutes or --steps (or both: whichever comes first)")
    for flag, value in (("--minutes", args.minutes), ("--steps", args.steps), ("--batch", args.batch)):
        if value is not None and value <= 0:
            raise UserError(f"{flag} must be positive, got {value}")
    _check_out(args.out)
    out = train_locator(args.steps or 10 ** 9, args.batch, args.out, seed=args.seed,
                        time_budget_s=None if args.minutes is None else 60.0 * args.minutes, workers=args.workers,
                        resume=args.resume, init=args.init, engine=args.engine)
    if args.onnx:
        export_locator_onnx(load_locator(out).model, out / "locator.onnx")
    print(f"wrote {out}/locator.safetensors and locator.yaml")
    return 0
