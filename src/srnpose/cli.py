"""The ``srnpose`` command line: a thin table of subcommands over the library.

Each subcommand lives in ``srnpose/commands/<name>.py`` with ``add_arguments(parser)`` and
``run(args) -> int``. Modules are imported only when their command runs, so ``srnpose --help``
stays fast and optional packages are only needed by the commands that use them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from srnpose.errors import UserError

# name -> (module, one-line help). Explicit, no registry.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("srnpose.commands.synth", "render a synthetic depth-hand dataset"),
    "demo": ("srnpose.commands.demo", "train and evaluate a small SRN on synthetic hands within --minutes"),
    "train": ("srnpose.commands.train", "train an SRN"),
    "adapt": ("srnpose.commands.adapt", "fine-tune a model on your camera's unlabelled depth frames (no labels)"),
    "evaluate": ("srnpose.commands.evaluate", "evaluate a checkpoint or published prediction files"),
    "info": ("srnpose.commands.info", "model summary (the shipped model unless told): parameters, GFLOPs, stages"),
    "predict": ("srnpose.commands.predict",
                "estimate hand poses on full depth frames (the main job; try: srnpose predict --sample --out DIR)"),
    "export": ("srnpose.commands.export", "export a checkpoint (default: the shipped model) to ONNX"),
    "benchmark": ("srnpose.commands.benchmark", "measure inference latency and FPS"),
    "live": ("srnpose.commands.live", "live capture from a depth camera"),
    "locator": ("srnpose.commands.locator", "train a hand locator for full frames, attach it to a run"),
}

# flags whose value may start with "-" (a negative focal length): "--intrinsics -363.9,..." is read as
# "--intrinsics=-363.9,..." instead of argparse taking the value for an unknown flag
VALUE_FLAGS = ("--intrinsics",)


def _join_negative_values(argv: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in VALUE_FLAGS and i + 1 < len(argv) and argv[i + 1][:2].lstrip("-")[:1].isdigit() \
                and argv[i + 1].startswith("-"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="srnpose", description="SRN 3D hand pose estimation from depth images.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = _join_negative_values(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except UserError as exc:
        print(f"srnpose {args.command}: error: {exc.line()}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        sys.stderr.close()
        return 0
    except OSError as exc:  # a full disk on a write no command routes through srnpose.outputs: still one line
        from srnpose.outputs import disk_full_error, is_disk_full

        if not is_disk_full(exc):
            raise
        print(f"srnpose {args.command}: error: {disk_full_error(exc.filename or '.', exc, 'the command stopped')}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"srnpose {args.command}: interrupted", file=sys.stderr)
        return 130
