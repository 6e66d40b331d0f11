"""``srnpose benchmark``: batch-1 latency and FPS per backend, end to end and network only.

    srnpose benchmark                                  # the default SRN (untrained), every backend
    srnpose benchmark --checkpoint runs/demo --backends torch,onnxruntime --frames 300 --json bench.json
"""

from __future__ import annotations

import argparse
import json

from srnpose.errors import UserError

REPORT_KEYS = ("model", "machine", "settings", "results")  # a benchmark report's keys: such a file may be replaced


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from srnpose.cameras import CAMERAS
    from srnpose.inference.bench import BENCH_BACKENDS as BACKENDS

    parser.add_argument("--checkpoint", metavar="RUN",
                        help="a run folder or checkpoint (default: the shipped model, see MODEL_CARD.md)")
    parser.add_argument("--untrained", action="store_true",
                        help="time the paper's model instead (21 joints, 3 stages, ResNet-18, 128x128), randomly "
                             "initialized: untrained weights time like trained ones")
    parser.add_argument("--backends", default=None, metavar="LIST",
                        help=f"comma-separated, from {', '.join(BACKENDS)} (default: all that are installed)")
    parser.add_argument("--frames", type=int, default=200, metavar="N",
                        help="timed frames per backend and scope (default 200)")
    parser.add_argument("--warmup", type=int, default=20, metavar="N", help="untimed calls first (default 20)")
    parser.add_argument("--data", metavar="DIR",
                        help="folder of depth PNGs to time on (default ../shared/data/kinect2 if present, "
                             "else synthetic frames)")
    parser.add_argument("--camera", default="kinect2", choices=tuple(CAMERAS), metavar="NAME",
                        help=f"camera preset of the frames: {', '.join(CAMERAS)} (default kinect2)")
    parser.add_argument("--json", metavar="FILE", help="write the report as JSON")


def run(args: argparse.Namespace) -> int:
    from srnpose.inference.bench import BENCH_BACKENDS as BACKENDS

    if args.backends is None:  # the default: every backend whose package is installed, said when one is not
        import sys

        from srnpose.errors import MissingExtraError, require_extra

        backends = BACKENDS
        try:
            require_extra("onnxruntime", "onnx")
            require_extra("onnx")
        except MissingExtraError:
            backends = tuple(b for b in BACKENDS if not b.startswith("onnxruntime"))
            print("srnpose benchmark: note: onnx/onnxruntime not installed, timing torch only "
                  "(pip install 'srnpose[onnx]' for the others)", file=sys.stderr)
    else:
        backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    for b in backends:
        if b not in BACKENDS:
            raise UserError(f"--backends: unknown backend {b!r}; available: {', '.join(BACKENDS)}")
    if not backends:
        raise UserError("--backends: give at least one backend")
    if args.frames < 1:
        raise UserError(f"--frames must be >= 1, got {args.frames}")
    if args.warmup < 0:
        raise UserError(f"--warmup must be >= 0, got {args.warmup}")
    from srnpose.errors import require_extra
    from srnpose.inference.bench import format_table, run_benchmark

    if any(b.startswith("onnxruntime") for b in backends):
        require_extra("onnxruntime", "onnx")
        require_extra("onnx")
    if args.json is not None:  # checked before anything is timed; a run's file is never replaced
        from srnpose.outputs import check_file_target, is_json_with, refuse_replacing

        json_path = check_file_target(args.json, "--json")
        refuse_replacing(json_path, "--json", is_json_with(REPORT_KEYS), "a benchmark report")
    if args.untrained and args.checkpoint:
        raise UserError("--untrained times the paper's model with random weights; leave out --checkpoint")
    if not args.untrained:
        from srnpose.training.checkpoint import load_checkpoint
        from srnpose.weights import release_dir

        ckpt = load_checkpoint(args.checkpoint or release_dir())
        model, layout, policy = ckpt.model, ckpt.layout, ckpt.policy
    else:
        import torch

        from srnpose.config import SRNConfig
        from srnpose.data.centering import CenterPolicy
        from srnpose.model import SRN

        torch.manual_seed(0)
        model, layout, policy = SRN.from_config(SRNConfig()).eval(), "canonical", CenterPolicy()
    report = run_benchmark(model, layout=layout, backends=backends, frames=args.frames, warmup=args.warmup,
                           data=args.data, camera=args.camera, rounds=min(5, args.frames), progress=True,
                           policy=policy)
    print(format_table(report))
    if args.json is not None:
        from srnpose.outputs import write_text

        path = write_text(args.json, json.dumps(report, indent=2) + "\n")
        print(f"wrote {path}")
    return 0
