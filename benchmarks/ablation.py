"""SRN's ablations on synthetic hands: stages, re-parameterization, accumulation, regression vs detection.

Every variant trains from the same preset (``demo`` by default) on the same synthetic training stream
(same seed: same frames in the same order, same initial weights where the shapes agree) for the same
budget, then is evaluated on the same fixed held-out synthetic test set:

    python benchmarks/ablation.py --steps 600 --parallel 2 --out runs/ablation_steps   # equal samples
    python benchmarks/ablation.py --minutes 2 --parallel 2 --out runs/ablation_time    # equal time
    python benchmarks/ablation.py --steps 600 --variants default,stages-1,detection --out runs/abl

Variants (``--variants``, comma-separated; ``default`` is always included: every other row is compared
with it): the default is the paper's model, 3 regression stages, offset re-parameterization (3D heatmap
and unit vector field), every previous stage's maps accumulated. The others change one thing each:

* ``stages-1``, ``stages-2``, ``stages-4``: the number of stages (paper: 1 -> 2 -> 3 helps, more gives little)
* ``heatmap3d``, ``heatmap2d``, ``heatmap2d-depth``: the re-parameterization at 3 stages (paper: offset best)
* ``no-accumulate``: stage s sees only stage s-1's maps (paper: accumulating helps)
* ``detection``: 3 detection stages (fields by deconvolution, top-k voting) instead of regression
  stages, trained with the field loss (``train.field_loss_weight=1``, the default);
  ``detection-nofield``: the same with ``train.field_loss_weight=0`` (joints only), to show what the
  field loss does

``--parallel K`` trains K variants at once, each in its own process with one torch thread and in-process
data (``train.threads=1``, ``data.workers=0``), so that they share a busy machine alike; ``--parallel 1``
(the default) trains them one after the other with the preset's own loader settings. Rerunning the same
command is free: each variant's run folder is ``OUT/NAME``; a finished variant is skipped, an
interrupted one resumes (``train(..., resume=True)``), and evaluations and FPS are cached in
``OUT/ablation.json``. Network FPS (batch 1, torch, network scope of :func:`srnpose.inference.bench.run_benchmark`)
is measured once per variant after all training is done, one variant after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from srnpose.errors import UserError

RESULTS_FILE = "ablation.json"
TRAINED_MARKER = "ablation_trained.json"  # written in a variant's run folder when its training has finished
DEFAULT_VARIANT = "default"

# name -> (what it is, config overrides on the preset). One change against the default each.
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "default": ("3 stages, offset, accumulate, regression", ["model.num_stages=3"]),
    "stages-1": ("1 stage (plain regression)", ["model.num_stages=1"]),
    "stages-2": ("2 stages", ["model.num_stages=2"]),
    "stages-4": ("4 stages", ["model.num_stages=4"]),
    "heatmap3d": ("3D heatmap only", ["model.num_stages=3", "model.reparam=heatmap3d"]),
    "heatmap2d": ("2D heatmap only", ["model.num_stages=3", "model.reparam=heatmap2d"]),
    "heatmap2d-depth": ("2D heatmap + depth", ["model.num_stages=3", "model.reparam=heatmap2d_depth"]),
    "no-accumulate": ("previous stage's maps only", ["model.num_stages=3", "model.accumulate=false"]),
    "detection": ("3 detection stages, field loss", ["model.num_stages=3", "model.stage_kind=detection",
                                                     "train.field_loss_weight=1.0"]),
    "detection-nofield": ("3 detection stages, joint loss only", ["model.num_stages=3", "model.stage_kind=detection",
                                                                 "train.field_loss_weight=0"]),
}


def variant_overrides(name: str) -> list[str]:
    """The variant's config overrides on the preset."""
    return list(VARIANTS[name][1])


def parse_variants(text: str | None) -> list[str]:
    """``"a,b"`` -> the named variants in table order, ``default`` first; None -> all of them."""
    if text is None:
        return list(VARIANTS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        raise UserError(f"--variants: unknown variant {unknown[0] if unknown else text!r}; "
                        f"valid variants: {', '.join(VARIANTS)}")
    return [n for n in VARIANTS if n == DEFAULT_VARIANT or n in names]


def budget_overrides(steps: int | None, minutes: float | None) -> list[str]:
    """Overrides that set the run's length: ``steps`` (equal samples) or ``minutes`` (equal time). One
    validation, at the end (the demo preset's every-250-steps validations would eat into a time budget)."""
    if steps is not None:
        return [f"train.steps={steps}", "train.epochs=null", "train.minutes=null", f"train.val_every={steps}"]
    return [f"train.minutes={minutes}", "train.steps=null", "train.epochs=null", "train.val_every=1000000000"]


def run_config_for(name: str, args: argparse.Namespace):
    from srnpose.training.run_config import build_config

    parallel = ["train.threads=1", "data.workers=0"] if args.parallel > 1 else []
    overrides = (["data.spec=synth"] + budget_overrides(args.steps, args.minutes) + variant_overrides(name)
                 + parallel + list(args.overrides))
    return build_config(args.preset, None, overrides)


def train_variant(name: str, args: argparse.Namespace) -> None:
    """Train (or resume) one variant in ``OUT/NAME``; mark it finished."""
    from srnpose.training.loop import train

    run_dir = Path(args.out) / name
    budget = f"{args.steps} steps" if args.steps is not None else f"{args.minutes} min"
    print(f"training {name} ({VARIANTS[name][0]}) for {budget} -> {run_dir}", flush=True)
    result = train(run_config_for(name, args), run_dir, resume=True, progress=False)
    (run_dir / TRAINED_MARKER).write_text(json.dumps({"step": result.step, "samples_per_s": result.samples_per_s}) + "\n")


def _child_command(name: str, args: argparse.Namespace) -> list[str]:
    budget = ["--steps", str(args.steps)] if args.steps is not None else ["--minutes", str(args.minutes)]
    return ([sys.executable, str(Path(__file__).resolve()), "--only", name, "--out", str(args.out),
             "--preset", args.preset, "--parallel", str(args.parallel)] + budget
            + [f"--set={o}" for o in args.overrides])


def train_parallel(names: list[str], args: argparse.Namespace) -> list[str]:
    """Train ``names`` K at a time in child processes; returns the names whose training failed."""
    pending, running, failed = list(names), {}, []
    env = dict(os.environ, OMP_NUM_THREADS="1")
    try:
        while pending or running:
            while pending and len(running) < args.parallel:
                name = pending.pop(0)
                running[name] = subprocess.Popen(_child_command(name, args), env=env)
            time.sleep(0.5)
            for name, proc in list(running.items()):
                if proc.poll() is not None:
                    del running[name]
                    if proc.returncode != 0:
                        print(f"training {name} failed (exit code {proc.returncode})", file=sys.stderr)
                        failed.append(name)
    except KeyboardInterrupt:  # the children got the same Ctrl-C: they save last/ and stop
        for proc in running.values():
            proc.wait()
        raise
    return failed


# --------------------------------------------------------------------------- results cache


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """What makes two commands' runs comparable: same preset, budget and extra overrides."""
    budget = {"steps": args.steps} if args.steps is not None else {"minutes": args.minutes}
    return {"preset": args.preset, "budget": budget, "overrides": list(args.overrides),
            "one_thread_each": args.parallel > 1}


def load_results(out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    path = out / RESULTS_FILE
    if not path.is_file():
        return {"settings": settings, "variants": {}}
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read the cached results ({exc}); delete it to re-evaluate") from None
    if results.get("settings") != settings:
        raise UserError(f"--out {out}: holds an ablation with other settings ({results.get('settings')}); "
                        f"choose another --out for {settings}")
    return results


def save_results(out: Path, results: dict[str, Any]) -> None:
    tmp = out / (RESULTS_FILE + ".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(tmp, out / RESULTS_FILE)


def evaluate_variant(name: str, out: Path, records: list, test_frames: int) -> dict[str, Any]:
    """Final-checkpoint errors per stage on the test records, and the run's training counters."""
    from srnpose.evaluation.model_eval import evaluate_checkpoint
    from srnpose.training.checkpoint import load_train_state, resolve_checkpoint_dir

    run_dir = out / name
    last = resolve_checkpoint_dir(run_dir / "last")
    state = load_train_state(last / "train_state.pt")
    report = evaluate_checkpoint(last, "synth", run_dir / "eval", overlays=0, records=records)
    frame_mm = frame_errors_mm(run_dir / "eval" / "predictions.txt", records)
    return {"overrides": variant_overrides(name), "steps": int(state["step"]), "samples": int(state["samples"]),
            "train_time_s": round(float(state["time_s"]), 1),
            "samples_per_s": round(float(state["samples"]) / max(float(state["time_s"]), 1e-9), 1),
            "test_frames": test_frames, "frames_scored": int(report["frames"]),
            "stage_mm": [round(float(s["mean_error_mm"]), 3) for s in report["stages"]],
            "final_mm": round(float(report["mean_error_mm"]), 3), "auc": round(float(report["auc"]), 4),
            "frame_mm": frame_mm}


def frame_errors_mm(predictions_txt: Path, records: list) -> list[float | None]:
    """Each test frame's mean joint error (mm) from an evaluation's ``predictions.txt`` (final stage, uvd,
    one line per record, ``nan`` where no hand was found -> None)."""
    import numpy as np

    from srnpose.geometry import uvd_to_xyz

    table = np.loadtxt(predictions_txt, dtype=np.float64, ndmin=2)  # (N, 3J)
    pred_uvd = table.reshape(table.shape[0], -1, 3)  # (N, J, 3)
    errors: list[float | None] = []
    for pred, record in zip(pred_uvd, records):
        if not np.isfinite(pred).all():
            errors.append(None)
            continue
        gt_xyz = uvd_to_xyz(np.asarray(record.joints_uvd, dtype=np.float64), record.intrinsics)  # (J, 3)
        errors.append(round(float(np.linalg.norm(uvd_to_xyz(pred, record.intrinsics) - gt_xyz, axis=-1).mean()), 4))
    return errors


def paired_difference_mm(frame_mm: list, base_frame_mm: list) -> tuple[float, float]:
    """Mean and standard error of the per-frame error difference over the frames both scored: how much
    of a difference the choice of test frames alone could make (not the spread over training seeds)."""
    import numpy as np

    d = np.array([a - b for a, b in zip(frame_mm, base_frame_mm) if a is not None and b is not None])
    if d.size < 2:
        return float(d.mean()) if d.size else float("nan"), float("nan")
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))


def measure_fps(name: str, out: Path, frames: int, threads: int) -> dict[str, Any]:
    """Batch-1 torch network FPS (median latency) of the variant's final checkpoint, on ``threads``
    intra-op threads (1 by default: on a busy 2-core machine two spinning threads time 4-9x slower)."""
    import torch

    from srnpose.inference.bench import run_benchmark
    from srnpose.training.checkpoint import load_checkpoint, resolve_checkpoint_dir

    ck = load_checkpoint(resolve_checkpoint_dir(out / name / "last"))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        report = run_benchmark(ck.model, layout=ck.layout, backends=("torch",), frames=frames,
                               warmup=min(20, frames), rounds=min(5, frames), policy=ck.policy)
    finally:
        torch.set_num_threads(before)
    net = next(r for r in report["results"] if r["scope"] == "network")
    return {"fps_frames": frames, "network_fps": net["fps"], "network_p50_ms": net["latency_ms"]["p50"],
            "fps_loadavg": report["machine"]["loadavg_at_start"][0], "fps_threads": report["machine"]["torch_threads"]}


# --------------------------------------------------------------------------- the table


def table_rows(results: dict[str, Any], names: list[str]) -> list[dict[str, str]]:
    """One row of strings per variant, with its difference from the default's final-stage error."""
    variants = results["variants"]
    base = variants.get(DEFAULT_VARIANT, {}).get("final_mm")
    base_frames = variants.get(DEFAULT_VARIANT, {}).get("frame_mm")
    rows = []
    for name in names:
        v = variants.get(name)
        if v is None or "final_mm" not in v:
            continue
        diff = v["final_mm"] - base if base is not None else None
        se = paired_difference_mm(v["frame_mm"], base_frames)[1] if base_frames and v.get("frame_mm") else None
        rows.append({
            "variant": name, "what": VARIANTS[name][0], "steps": str(v["steps"]),
            "train s": f"{v['train_time_s']:.0f}",
            "samples/s": f"{v['samples_per_s']:.0f}",
            "final mm": f"{v['final_mm']:.2f}",
            "per-stage mm": " / ".join(f"{mm:.2f}" for mm in v["stage_mm"]),
            "vs default mm": "-" if name == DEFAULT_VARIANT or diff is None else
            f"{diff:+.2f}" + (f" ± {se:.2f}" if se is not None and se == se else ""),
            "vs default %": "-" if name == DEFAULT_VARIANT or diff is None else f"{100 * diff / base:+.1f}%",
            "network FPS": f"{v['network_fps']:.0f}" if "network_fps" in v else "-",
        })
    return rows


COLUMNS = ("variant", "what", "steps", "train s", "samples/s", "final mm", "per-stage mm", "vs default mm",
           "vs default %", "network FPS")
NUMERIC = {"steps", "train s", "samples/s", "final mm", "vs default mm", "vs default %", "network FPS"}


def format_text(rows: list[dict[str, str]]) -> str:
    widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in COLUMNS}

    def line(r: dict[str, str]) -> str:
        return "  ".join(r[c].rjust(widths[c]) if c in NUMERIC else r[c].ljust(widths[c]) for c in COLUMNS)

    return "\n".join([line({c: c for c in COLUMNS})] + [line(r) for r in rows])


def format_markdown(rows: list[dict[str, str]]) -> str:
    head = "| " + " | ".join(COLUMNS) + " |"
    rule = "|" + "|".join("---:" if c in NUMERIC else "---" for c in COLUMNS) + "|"
    body = ["| " + " | ".join(f"**{r[c]}**" if c == "final mm" and r["variant"] == DEFAULT_VARIANT else r[c]
                              for c in COLUMNS) + " |" for r in rows]
    return "\n".join([head, rule] + body)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, default=None, help="training time per variant (default 5)")
    length.add_argument("--steps", type=int, default=None, help="training steps per variant (equal samples)")
    parser.add_argument("--preset", default="demo", help="run preset every variant starts from (default demo)")
    parser.add_argument("--variants", default=None, help=f"comma-separated subset of: {', '.join(VARIANTS)}")
    parser.add_argument("--test-frames", type=int, default=500, help="held-out synthetic test frames (default 500)")
    parser.add_argument("--fps-frames", type=int, default=100, help="frames timed per variant for FPS (default 100)")
    parser.add_argument("--fps-threads", type=int, default=1, help="torch threads while timing (default 1)")
    parser.add_argument("--out", default="runs/ablation", help="run folders and ablation.json (default runs/ablation)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config overrides for every variant")
    parser.add_argument("--parallel", type=int, nargs="?", const=2, default=1, metavar="K",
                        help="train K variants at once, one torch thread each (bare --parallel: 2)")
    parser.add_argument("--only", choices=list(VARIANTS), help=argparse.SUPPRESS)  # a --parallel child
    args = parser.parse_args(argv)
    if args.steps is None and args.minutes is None:
        args.minutes = 5.0
    try:
        return _run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from srnpose.training.lock import check_out_dir

    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps: must be >= 1, got {args.steps}")
    if args.minutes is not None and not args.minutes > 0:
        raise UserError(f"--minutes: must be > 0, got {args.minutes}")
    for flag, value in (("--test-frames", args.test_frames), ("--fps-frames", args.fps_frames),
                        ("--fps-threads", args.fps_threads), ("--parallel", args.parallel)):
        if value < 1:
            raise UserError(f"{flag}: must be >= 1, got {value}")
    out = check_out_dir(args.out)
    if args.only:
        train_variant(args.only, args)
        return 0
    names = parse_variants(args.variants)
    if args.variants is not None and DEFAULT_VARIANT not in args.variants.split(","):
        print(f"adding {DEFAULT_VARIANT!r}: every row is compared with it", flush=True)
    for name in names:  # every config is valid before anything trains
        run_config_for(name, args)
    results = load_results(out, _settings(args))
    save_results(out, results)  # the settings bind the folder before anything trains

    to_train = [n for n in names if not (out / n / TRAINED_MARKER).is_file()]
    skipped = [n for n in names if n not in to_train]
    if skipped:
        print(f"already trained, skipped: {', '.join(skipped)}", flush=True)
    failed = []
    if args.parallel > 1 and to_train:
        failed = train_parallel(to_train, args)
    else:
        for name in to_train:
            train_variant(name, args)
    for name in to_train:  # retrained: its cached figures are stale
        results["variants"].pop(name, None)

    done = [n for n in names if n not in failed]
    records = None
    for name in done:
        cached = results["variants"].get(name, {})
        stale = cached.get("test_frames") != args.test_frames or cached.get("overrides") != variant_overrides(name)
        if stale or "frame_mm" not in cached:
            if records is None:
                from srnpose.evaluation.model_eval import load_test_records

                data = run_config_for(DEFAULT_VARIANT, args).data
                records = load_test_records("synth", args.test_frames, data.synth_resolution)
            if stale:
                print(f"evaluating {name} on {args.test_frames} test frames", flush=True)
                cached.update(evaluate_variant(name, out, records, args.test_frames))  # the FPS of the same weights stays
            else:  # cached by an older version of this script: per-frame errors from its predictions
                cached["frame_mm"] = frame_errors_mm(out / name / "eval" / "predictions.txt", records)
            results["variants"][name] = cached
            save_results(out, results)
    for name in done:  # after all training: nothing of ours runs beside the timing
        v = results["variants"][name]
        if v.get("fps_frames") != args.fps_frames or v.get("fps_threads") != args.fps_threads:
            print(f"timing {name}'s network", flush=True)
            v.update(measure_fps(name, out, args.fps_frames, args.fps_threads))
            save_results(out, results)

    from srnpose.inference.bench import machine_info

    machine = machine_info()
    rows = table_rows(results, names)
    cfg = run_config_for(DEFAULT_VARIANT, args)
    budget = (f"{args.steps} steps of {cfg.train.batch_size} samples each (equal samples)" if args.steps is not None
              else f"{args.minutes} min each (equal time)")
    mode = (f"{args.parallel} at once, 1 torch thread each, in-process data" if args.parallel > 1
            else "one after the other, the preset's loader settings")
    loads = [results["variants"][n]["fps_loadavg"] for n in done if "fps_loadavg" in results["variants"][n]]
    notes = (f"preset {args.preset}, {budget}, trained {mode}; {args.test_frames} held-out synthetic test frames "
             f"(seed SYNTH_TEST_SEED); network FPS: torch, batch 1, "
             f"{args.fps_threads} thread(s), median of {args.fps_frames} crops"
             + (f", load average {min(loads):.1f}-{max(loads):.1f} while timing" if loads else "")
             + f"; {machine['cpu']} ({machine['cores']} cores), torch {machine['torch']}; "
             "'vs default mm': difference of the final-stage error ± its standard error over the paired "
             "test frames (test-set noise only, not training-seed noise)")
    print("\n" + notes + "\n")
    print(format_text(rows))
    print("\n" + format_markdown(rows))
    print(f"\nresults: {out / RESULTS_FILE}")
    if failed:
        print(f"failed: {', '.join(failed)} (rerun the same command to resume them)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
