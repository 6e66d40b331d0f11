"""``srnpose demo``: train an SRN on synthetic hands within a time budget, evaluate it, show it.

The whole job (training, the held-out evaluation, plots and overlays) fits in ``minutes`` (default 15)
on a 2-core CPU: training gets what is left after a reserve for the evaluation, and the evaluation stops
starting batches of test frames when its share of the budget is spent (it says how many frames it scored;
a machine slower than the training estimated overruns by at most one batch and the writing). The output
folder is an
ordinary run folder (config.yaml, metrics.csv, last/, best/), so ``srnpose evaluate``, ``predict`` and
``export`` work on it; the evaluation on the fixed synthetic test set is written beside them
(report.json, summary.md, success_curves.png, per_joint.png, predictions.txt, overlays.png).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from srnpose.data.sampling import synthetic_first_crop
from srnpose.errors import UserError
from srnpose.evaluation.model_eval import CENTER_MODES, evaluate_checkpoint
from srnpose.evaluation.protocol import write_report
from srnpose.training.loop import train
from srnpose.training.run_config import build_config

__all__ = ["DEFAULT_MINUTES", "run_demo", "stage_table", "next_steps", "evaluate_steps"]

DEFAULT_MINUTES = 15.0
EVAL_RESERVE_FRACTION = 0.1  # of the budget kept for the evaluation, plots and overlays
EVAL_RESERVE_MAX_MIN = 1.5
EVAL_RESERVE_MIN_MIN = 0.5
# of that reserve, the share kept for writing the report, plots and overlays (3-4 s idle on 2 cores,
# matplotlib's import included); the test frames get the rest: 500 frames take ~25 s idle
WRITE_SHARE = 0.4


def stage_table(report: dict[str, Any]) -> str:
    """A plain-text table: one row per stage, mean error, frames within 20 mm, AUC."""
    lines = ["stage  mean error (mm)  frames <= 20 mm  AUC 0-80 mm",
             "-----  ---------------  ---------------  -----------"]
    for i, stage in enumerate(report["stages"]):
        within = 100.0 * stage["success_rate_max_frame"][20]
        lines.append(f"{i + 1:>5}  {stage['mean_error_mm']:>15.2f}  {within:>14.1f}%  {stage['auc']:>11.3f}")
    return "\n".join(lines)


def evaluate_steps(out: Path, center: str = "joints", data: str = "synth",
                   figure: str = "the demo's figure again, on all test frames") -> list[str]:
    """``srnpose evaluate`` commands for a run folder, each with what it measures: first with ``center``, the
    first-crop rule of the run's own figure (``figure`` says which), then, when that rule uses the labels
    (``joints``), the label-free one that ``predict`` uses. Shared by the demo and ``srnpose train``."""
    lines = [f"srnpose evaluate --checkpoint {out} --data {data} --center {center} --out {out}/eval"
             f"   # {figure}: first crop at {CENTER_MODES[center][1]}"]
    if center == "joints":
        lines.append(f"srnpose evaluate --checkpoint {out} --data {data} --center depth --out {out}/eval_label_free"
                     "   # label-free first crop, as predict finds the hand (nearest-blob search): far higher "
                     "on engine v2, whose scenes put a torso or arm nearer than the hand")
    return lines


def next_steps(out: Path, center: str = "joints") -> list[str]:
    """Commands to run next on the demo's run folder, each with what it measures or does. ``center``: the
    first-crop rule of the demo's figure (``report["center"]``), which the first line repeats."""
    return evaluate_steps(out, center) + [
        f"srnpose train --out {out} --resume --extend --minutes 30   # keep training the same run",
        f"srnpose predict --checkpoint {out} --camera kinect2 --out {out}/predict FRAMES_DIR"
        "   # your own frames: joints, overlays",
        f"srnpose export --checkpoint {out} --out {out}/model.onnx   # ONNX, checked against torch"]


def run_demo(out: str | Path = "runs/demo", minutes: float = DEFAULT_MINUTES, test_frames: int = 500,
             overrides: tuple[str, ...] | list[str] = (), progress: bool = True, verbose: bool = True) -> dict:
    """Train the ``demo`` preset on synthetic hands for ``minutes`` in all, evaluate, write, print.

    Returns the evaluation report (``report["stages"][s]["mean_error_mm"]`` per stage).
    """
    start = time.perf_counter()
    if not minutes > 0:
        raise UserError(f"--minutes: must be > 0, got {minutes}")
    from srnpose.outputs import out_path, refuse_foreign_folder

    out = out_path(out)  # not '' (the current folder)
    if (out / "last").exists() or (out / "report.json").exists():
        raise UserError(f"--out {out}: already holds a demo run; remove it or pass another --out")
    refuse_foreign_folder(out, "--out", (None,), "give the demo a folder of its own")
    reserve = min(max(EVAL_RESERVE_FRACTION * minutes, min(EVAL_RESERVE_MIN_MIN, 0.3 * minutes)), EVAL_RESERVE_MAX_MIN)
    cfg = build_config("demo", None, ["data.spec=synth"] + list(overrides))
    train_minutes = minutes - reserve - (time.perf_counter() - start) / 60.0
    if train_minutes <= 0:
        raise UserError(f"--minutes {minutes}: too short to train and evaluate")
    cfg = build_config("demo", None, ["data.spec=synth", f"train.minutes={train_minutes:.4f}",
                                      "train.steps=null", "train.epochs=null"] + list(overrides))
    if verbose:
        m = cfg.model
        print(f"srnpose demo: training a {m.num_stages}-stage SRN ({m.backbone}, width {m.width}, "
              f"{m.input_size}x{m.input_size} crops) on synthetic hands rendered on the fly for "
              f"{train_minutes:.1f} min, then evaluating on {test_frames} held-out frames -> {out}")
    result = train(cfg, out, progress=progress)
    center = "joints" if synthetic_first_crop("synth", cfg.data.synth_engine) == "joints" else None
    # the test frames get the budget left but the writing's share; no batch starts after that
    deadline = start + 60.0 * (minutes - WRITE_SHARE * reserve)
    report = evaluate_checkpoint(out, "synth", out, frames=test_frames, center=center,
                                 deadline=deadline, progress=progress)
    report["train"] = {"steps": result.step, "samples_per_s": result.samples_per_s,
                       "minutes": (time.perf_counter() - start) / 60.0}
    write_report(out, report)  # again, with the training figures in report.json
    if verbose:
        first, final = report["stages"][0]["mean_error_mm"], report["stages"][-1]["mean_error_mm"]
        print()
        print(f"Held-out synthetic test set: {report['frames']} frames (seed fixed, engine "
              f"{report.get('synth_engine')}), first crop at {report['first_crop']}; mean 3D joint error:")
        print(stage_table(report))
        if report["frames_total"] < report["frames_planned"]:
            print(f"the --minutes budget ran out during the evaluation: {report['frames_total']} of "
                  f"{report['frames_planned']} test frames looked at (the first `evaluate` below scores them all)")
        passes = report.get("pass_mean_error_mm") or []
        if len(passes) > 1 and report.get("center") != "joints":  # a labelled first crop: not predict's path
            print(f"{len(passes)} passes, as `predict` runs them: the first crop at {report['first_crop']} "
                  f"({passes[0]:.2f} mm), each later one at the previous pass's joints' centroid "
                  f"({passes[-1]:.2f} mm, the table above)")
        print(f"final stage {final:.2f} mm vs first stage {first:.2f} mm "
              f"({100.0 * (first - final) / first:+.1f} % from stacking); "
              f"{result.step} steps at {result.samples_per_s:.1f} samples/s, "
              f"{report['train']['minutes']:.1f} min in all")
        print(f"wrote {out}/report.json, summary.md, success_curves.png, per_joint.png, overlays.png, "
              "predictions.txt; the model is in best/ and last/")
        print("next:")
        for line in next_steps(out, report.get("center") or "auto"):
            print("  " + line)
    return report
