"""Paired differences between evaluations of the same synthetic test set: how much of a gap between
two models the choice of test frames alone could make (not the spread over training seeds).

    srnpose evaluate --checkpoint runs/abl/offset --data synth --out runs/abl/offset/eval
    srnpose evaluate --checkpoint runs/abl/heatmap3d --data synth --out runs/abl/heatmap3d/eval
    python benchmarks/paired_errors.py runs/abl/offset/eval runs/abl/heatmap3d/eval
    python benchmarks/paired_errors.py runs/abl/offset/eval runs/abl/heatmap3d/eval --by-scene   # per scene family

Each folder is an ``srnpose evaluate ... --data synth`` output (``report.json``, ``predictions.txt``);
the first is the base. The test frames are re-rendered from the first report's engine and frame count
and its checkpoint's synthetic resolution, so every folder must come from the same test set.
Per-frame errors and the standard error of their difference: ``ablation.frame_errors_mm`` and
``ablation.paired_difference_mm``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ablation import frame_errors_mm, paired_difference_mm


def read_report(folder: Path) -> dict:
    path = folder / "report.json"
    if not path.is_file() or not (folder / "predictions.txt").is_file():
        raise SystemExit(f"{folder}: not an evaluation folder (needs report.json and predictions.txt)")
    try:
        report = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SystemExit(f"{path}: not valid JSON ({exc})") from None
    if report.get("dataset") != "synth":
        raise SystemExit(f"{folder}: evaluated on {report.get('dataset')!r}; only synthetic test sets are re-rendered")
    return report


def synth_test_records(report: dict) -> list:
    """The report's synthetic test frames, rendered again (the resolution from its checkpoint's config)."""
    from srnpose.evaluation.model_eval import load_test_records
    from srnpose.training.checkpoint import load_run_config

    data_cfg = load_run_config(report["checkpoint"]).get("data") or {}
    ds = load_test_records("synth", int(report["frames_planned"]), data_cfg.get("synth_resolution"),
                           synth_engine=report["synth_engine"], lazy=True)
    return [ds[i] for i in range(len(ds))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="evaluation folders; the first is the base")
    parser.add_argument("--by-scene", action="store_true", help="also each scene family's frames apart")
    args = parser.parse_args(argv)
    if len(args.folders) < 2:
        parser.error("give a base evaluation folder and at least one other")
    reports = [read_report(f) for f in args.folders]
    base = reports[0]
    for folder, report in zip(args.folders[1:], reports[1:]):
        if (report["synth_engine"], report["frames_planned"]) != (base["synth_engine"], base["frames_planned"]):
            raise SystemExit(f"{folder}: engine {report['synth_engine']}, {report['frames_planned']} frames; "
                             f"the base has {base['synth_engine']}, {base['frames_planned']}")
    from srnpose.errors import UserError

    try:
        records = synth_test_records(base)
    except UserError as exc:  # the checkpoint was moved or removed since the evaluation
        raise SystemExit(f"{args.folders[0]}: {exc}") from None
    errors = [frame_errors_mm(f / "predictions.txt", records) for f in args.folders]
    print(f"{len(records)} synthetic test frames (engine {base['synth_engine']}); base {args.folders[0]}")
    groups = {"all frames": list(range(len(records)))}
    if args.by_scene:
        for i, record in enumerate(records):
            groups.setdefault(record.extra.get("scene", "?"), []).append(i)
    for group, rows in groups.items():
        if args.by_scene:
            print(f"{group} ({len(rows)} frames)")
        print(f"{'evaluation':40s} {'mean mm':>9s} {'vs base mm':>18s}")
        for i, folder in enumerate(args.folders):
            mine = [errors[i][r] for r in rows]
            scored = [e for e in mine if e is not None]
            mean = sum(scored) / max(len(scored), 1)
            if i == 0:
                print(f"{str(folder):40s} {mean:9.3f} {'':>18s}")
                continue
            d, se = paired_difference_mm(mine, [errors[0][r] for r in rows])
            print(f"{str(folder):40s} {mean:9.3f} {d:+9.3f} +- {se:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
