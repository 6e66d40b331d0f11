"""``srnpose adapt``: fine-tune a model on your own camera's unlabelled depth frames (no labels needed).

    srnpose adapt frames/ --camera kinect2 --out runs/k2 --minutes 3      # from the shipped model
    srnpose adapt frames/ --camera kinect2 --out runs/k2 --checkpoint runs/demo --steps 300
    srnpose adapt --out runs/k2 --resume                                  # continue it
    srnpose predict more_frames/ --checkpoint runs/k2 --camera kinect2 --out out/k2

The labels are the hand fitted to each frame's depth from the model's own joints, refreshed as it learns;
every batch mixes them with the synthetic stream (:mod:`srnpose.training.adapt`). The run folder is
``train``'s (resumable, checksummed, locked) with ``adapt.yaml`` and ``adapt.jsonl`` beside it.
"""

from __future__ import annotations

import argparse

from srnpose.cameras import CAMERAS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("frames", nargs="*", metavar="FRAMES",
                        help="depth PNGs or folders of them, from the camera to adapt to (not needed with --resume)")
    parser.add_argument("--camera", metavar="NAME", choices=tuple(CAMERAS),
                        help=f"the camera that took the frames: {', '.join(CAMERAS)}")
    parser.add_argument("--out", metavar="RUN", required=True,
                        help="run folder (config, metrics.csv, last/, best/, adapt.yaml, adapt.jsonl)")
    parser.add_argument("--checkpoint", metavar="PATH", help="the model to adapt (default: the shipped model)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, metavar="M", help="adapt for M minutes (default: 3)")
    length.add_argument("--steps", type=int, metavar="N", help="adapt for N optimizer steps")
    parser.add_argument("--resume", action="store_true",
                        help="continue RUN from its last complete checkpoint if it has one, else start it")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from srnpose.errors import UserError
    from srnpose.training.adapt import adapt, describe

    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps: must be >= 1, got {args.steps}")
    if args.minutes is not None and not args.minutes > 0:
        raise UserError(f"--minutes: must be > 0, got {args.minutes}")
    from srnpose.outputs import RUN_KIND, out_path, refuse_foreign_folder

    # '' would write the run into the current folder; another command's folder is not a run's
    refuse_foreign_folder(out_path(args.out), "--out", (None, RUN_KIND), "give the run a folder of its own")
    if not args.frames and not args.resume:
        raise UserError("give FRAMES: depth PNGs or folders of them from the camera to adapt to")
    result = adapt(args.frames, args.camera, args.out, args.checkpoint, args.minutes, args.steps,
                   resume=args.resume, progress=not args.no_progress)
    print(f"adapted {result.run_dir} to step {result.step}")
    print(f"before: {describe(result.before)}")
    print(f"after:  {describe(result.after)}")
    if result.val_stage_mm:
        print("synthetic validation mean error per stage (mm): " + " ".join(f"{mm:.2f}" for mm in result.val_stage_mm))
    return 0
