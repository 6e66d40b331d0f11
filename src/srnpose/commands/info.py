"""``srnpose info``: the model summary (parameters, GFLOPs per frame, stage layout, input size).

Without ``--preset``, ``--config`` or ``--checkpoint`` it describes the model ``predict``, ``live`` and
``srnpose.load()`` run: the shipped model (``srnpose.weights.release_dir()``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from srnpose.config import SRNConfig, apply_overrides, from_dict, read_yaml_mapping, to_dict
from srnpose.errors import UserError
from srnpose.inference.backends import read_metadata
from srnpose.training.checkpoint import load_run_config, resolve_checkpoint_dir
from srnpose.training.run_config import PRESETS, get_preset
from srnpose.weights import release_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", default=None, metavar="NAME",
                        help=f"describe a preset's model instead: {', '.join(PRESETS)} (default: the shipped "
                             "model, the one predict, live and srnpose.load() run)")
    source.add_argument("--checkpoint", metavar="RUN",
                        help="describe a run folder, checkpoint folder, .safetensors or exported .onnx instead")
    parser.add_argument("--config", metavar="FILE",
                        help="YAML model config (a run's config.yaml works too: its 'model' section is used); "
                             "the fields it does not set come from --preset, default paper")
    parser.add_argument("--set", dest="overrides", action="append", default=None, metavar="KEY=VALUE",
                        help="override a model field, e.g. --set num_stages=2 (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def _checkpoint_model_section(path: str) -> dict:
    """The model config dict of a run folder, checkpoint folder, weights file or exported .onnx."""
    if Path(path).suffix.lower() == ".onnx":
        if not Path(path).is_file():
            raise UserError(f"--checkpoint {path}: no such file")
        raw = read_metadata(path).get("model")
    else:
        folder = Path(path)
        if folder.is_dir() and not (folder / "config.yaml").is_file():  # a run folder without RUN/config.yaml
            folder = resolve_checkpoint_dir(folder / "best") or resolve_checkpoint_dir(folder / "last") or folder
        if not folder.exists():
            raise UserError(f"--checkpoint {path}: no such file or folder")
        raw = load_run_config(folder)
        raw = raw.get("model") if isinstance(raw.get("model"), dict) else raw
    if not isinstance(raw, dict):
        raise UserError(f"--checkpoint {path}: no model config in it")
    return raw


def resolve_model_config(preset: str | None, config_path: str | None, overrides: list[str] | None,
                         checkpoint: str | None = None):
    """``(SRNConfig, what it is)``: the model of ``--checkpoint``, else of ``--preset``, else of paper when
    ``--config`` is given (as ``train --config`` starts from paper), else the shipped model; then the fields
    ``--config`` sets, then ``--set`` overrides.

    A config file may be a plain model config or a run config whose ``model`` key holds one;
    ``--set model.theta=0.5`` is accepted as ``theta=0.5``.
    """
    if checkpoint:
        cfg, what = from_dict(SRNConfig, _checkpoint_model_section(checkpoint)), f"checkpoint {checkpoint}"
    elif preset or config_path:
        name = preset or "paper"
        cfg, what = get_preset(name).model, f"preset {name}"
    else:
        folder = release_dir()
        cfg, what = from_dict(SRNConfig, _checkpoint_model_section(str(folder))), f"the shipped model ({folder})"
    if config_path:
        raw = read_yaml_mapping(config_path)
        if isinstance(raw.get("model"), dict):
            raw = raw["model"]
        try:
            cfg = from_dict(SRNConfig, {**to_dict(cfg), **raw})
        except UserError as exc:
            raise UserError(f"{Path(config_path)}: {exc}") from None
        what += f" with {config_path}"
    overrides = [o[len("model."):] if o.startswith("model.") else o for o in (overrides or [])]
    if overrides:
        what += " with " + ", ".join(overrides)
    return apply_overrides(cfg, overrides), what


def format_summary(summary: dict) -> str:
    """A small aligned table of :func:`srnpose.model.model_summary`'s dict."""
    rows = [
        ("model", summary["model"]),
        ("parameters", f"{summary['params']:,} ({summary['params'] / 1e6:.2f}M)"),
        ("GFLOPs/frame", f"{summary['gflops']:.3f}"),
        ("input", f"{summary['input_size']}x{summary['input_size']} depth crop"),
        ("features", f"{summary['feature_size']}x{summary['feature_size']}"),
        ("backbone", summary["backbone"]),
        ("joints", str(summary["num_joints"])),
        ("stages", f"{summary['num_stages']} ({summary['stage_kind']})"),
        ("reparam", summary["reparam"]),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines.append("")
    lines.append(f"{'stage':<6} {'kind':<11} {'in_channels':>11} {'params':>12}")
    lines.append(f"{'stem':<6} {'-':<11} {1:>11} {summary['stem_params']:>12,}")
    for i, st in enumerate(summary["stages"], 1):
        lines.append(f"{i:<6} {st['kind']:<11} {st['in_channels']:>11} {st['params']:>12,}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import json

    from srnpose.model import model_summary

    cfg, what = resolve_model_config(args.preset, args.config, args.overrides, args.checkpoint)
    summary = {"model": what, **model_summary(cfg)}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_summary(summary))
    return 0
