"""``srnpose info``: the model summary (parameters, GFLOPs per frame, stage layout, input size)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="paper", metavar="NAME",
                        help="model preset to start from: paper, demo, tiny (default: paper)")
    parser.add_argument("--config", metavar="FILE",
                        help="YAML model config (a run's config.yaml works too: its 'model' section is used)")
    parser.add_argument("--set", dest="overrides", action="append", default=None, metavar="KEY=VALUE",
                        help="override a model field, e.g. --set num_stages=2 (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def resolve_model_config(preset: str, config_path: str | None, overrides: list[str] | None):
    """The SRNConfig of ``--preset``, then the fields ``--config`` sets, then ``--set`` overrides.

    A config file may be a plain model config or a run config whose ``model`` key holds one;
    ``--set model.theta=0.5`` is accepted as ``theta=0.5``.
    """
    from pathlib import Path

    from srnpose.config import (
        SRNConfig,
        apply_overrides,
        from_dict,
        get_model_preset,
        read_yaml_mapping,
        to_dict,
    )
    from srnpose.errors import UserError

    cfg = get_model_preset(preset)
    if config_path:
        raw = read_yaml_mapping(config_path)
        if isinstance(raw.get("model"), dict):
            raw = raw["model"]
        try:
            cfg = from_dict(SRNConfig, {**to_dict(cfg), **raw})
        except UserError as exc:
            raise UserError(f"{Path(config_path)}: {exc}") from None
    overrides = [o[len("model."):] if o.startswith("model.") else o for o in (overrides or [])]
    return apply_overrides(cfg, overrides)


def format_summary(summary: dict) -> str:
    """A small aligned table of :func:`srnpose.model.model_summary`'s dict."""
    rows = [
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

    cfg = resolve_model_config(args.preset, args.config, args.overrides)
    summary = model_summary(cfg)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_summary(summary))
    return 0
