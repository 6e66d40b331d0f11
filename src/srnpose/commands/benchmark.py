"""``srnpose benchmark``: batch-1 latency and FPS per backend, end to end and network only.

    srnpose benchmark                                  # the shipped model on the shipped sample frames, every backend
    srnpose benchmark --checkpoint runs/demo --backends torch,onnxruntime --frames 300 --json bench.json
    srnpose benchmark --data frames/ --camera kinect2   # on your own frames (a folder of depth PNGs)
    srnpose benchmark --fit --backends onnxruntime     # predict's default path: end to end, then the fit to the depth
    srnpose benchmark --train                          # training samples/s per preset, and what limits it
    srnpose benchmark --train --presets release,stacked --steps 10 --rounds 3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from srnpose.errors import UserError

REPORT_KEYS = ("model", "machine", "settings", "results")  # a benchmark report's keys: such a file may be replaced
TRAIN_REPORT_KEYS = ("machine", "settings", "results")  # --train's report (srnpose.training.throughput)


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
                        help="a folder of your depth PNGs to time on (default: the shipped sample frames, with "
                             "their camera)")
    parser.add_argument("--camera", default=None, choices=tuple(CAMERAS), metavar="NAME",
                        help=f"camera preset of --data's frames: {', '.join(CAMERAS)} (default kinect2); without "
                             "--data, synthetic frames rendered for it")
    parser.add_argument("--fit", action="store_true",
                        help="a with_fit row per backend: end to end, then the articulated hand fitted to the "
                             "frame's depth (predict's default), with the fit's share of the frame")
    parser.add_argument("--json", metavar="FILE", help="write the report as JSON")
    train = parser.add_argument_group("training throughput (--train)")
    train.add_argument("--train", action="store_true",
                       help="time training steps instead: samples/s per preset, compute only and end to end (the "
                            "training data path), as a share of a same-run matmul rate, and where a step's time goes")
    train.add_argument("--presets", default=None, metavar="LIST",
                       help="comma-separated training presets, or 'stacked' (the release-base recipe with 3 regression "
                            "stages at its one stage's FLOPs); default release,release-base,demo,paper,stacked")
    train.add_argument("--steps", type=int, default=10, metavar="N",
                       help="timed steps per figure and round (default 10; at most 2 for the paper's model)")
    train.add_argument("--rounds", type=int, default=2, metavar="N",
                       help="interleaved rounds over the presets (default 2)")


def _json_target(text: str | None, keys: tuple[str, ...]) -> Path | None:
    """``--json`` checked before anything is timed (None without it): a file name that can be written; a file
    already there is replaced only when it is a benchmark report (a JSON object with ``keys``), so a run's
    file never is."""
    if text is None:
        return None
    from srnpose.outputs import check_file_target, is_json_with, refuse_replacing

    path = check_file_target(text, "--json")
    refuse_replacing(path, "--json", is_json_with(keys), "a benchmark report")
    return path


def _write_report(path: Path | None, report: dict) -> None:
    """The report as JSON at ``path`` (from :func:`_json_target`; None: no --json), said on stdout."""
    if path is None:
        return
    from srnpose.outputs import write_text

    written = write_text(path, json.dumps(report, indent=2) + "\n")
    print(f"wrote {written}")


def _run_train(args: argparse.Namespace) -> int:
    """``--train``: :mod:`srnpose.training.throughput` over the presets."""
    import sys

    if args.checkpoint or args.untrained or args.backends or args.fit:
        raise UserError("--train times the presets' training steps; leave out --checkpoint, --untrained, "
                        "--backends and --fit")
    if args.steps < 1 or args.rounds < 1:
        raise UserError(f"--steps and --rounds must be >= 1, got {args.steps} and {args.rounds}")
    json_path = _json_target(args.json, TRAIN_REPORT_KEYS)
    from srnpose.training import throughput, throughput_text

    presets = [p.strip() for p in (args.presets or ",".join(throughput.BENCH_PRESETS)).split(",") if p.strip()]
    if not presets:
        raise UserError("--presets: give at least one preset")
    entries = [throughput.bench_entry(p) for p in presets]
    report = throughput.throughput_report(entries, steps=args.steps, rounds=args.rounds,
                                          progress=lambda message: print(message, file=sys.stderr, flush=True))
    print(throughput_text.format_report(report))
    _write_report(json_path, report)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.train:
        return _run_train(args)
    if args.presets is not None:
        raise UserError("--presets goes with --train")
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
    json_path = _json_target(args.json, REPORT_KEYS)
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
                           policy=policy, fit=args.fit)
    print(format_table(report))
    _write_report(json_path, report)
    return 0
