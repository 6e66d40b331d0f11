"""The paper's model (128x128 crops, ResNet-18 width 64, 3 stages, 33.6M parameters) trained on the synthetic
stream on a GPU, resumable, with its samples/s: the one prepared script for a lent GPU machine (issue 24).

    # on the GPU machine, from the repository root (no install needed; the image's torch is used):
    PYTHONPATH=src python3 benchmarks/gpu_paper.py --out runs/paper_gpu --minutes 8 --workers 12
    # the same command again continues the run (--resume is always on); --extend --minutes 16 lengthens it
    # a check of the script on a CPU, in seconds:
    python benchmarks/gpu_paper.py --out /tmp/paper_check --device cpu --preset tiny --steps 3 --workers 0

It runs ``srnpose train --data synth --preset paper --device cuda --resume`` (the training loop,
checkpoints and metrics.csv of every run; the data loader renders frames in ``--workers`` processes),
then reads ``RUN/metrics.csv`` and prints the machine, the steps, the samples/s of the training windows
of this invocation (the median over them, and over the run), and the last validation's per-stage error.
"""

from __future__ import annotations

import argparse
import csv
import platform
import statistics
import sys
from pathlib import Path

from srnpose.cli import main as srnpose_main


def machine(device: str) -> str:
    import torch

    gpu = torch.cuda.get_device_name(0) if device == "cuda" and torch.cuda.is_available() else "no GPU"
    return f"{gpu}; torch {torch.__version__}; Python {platform.python_version()}; {platform.processor() or platform.machine()}"


def summarise(run: Path, since_step: int) -> dict:
    """Samples/s of the training rows after ``since_step`` (this invocation) and of the whole run, and the
    last validation row's per-stage errors, from ``run/metrics.csv``."""
    with open(run / "metrics.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    train = [r for r in rows if r["split"] == "train"]
    val = [r for r in rows if r["split"] == "val"]

    def rates(part: list[dict]) -> list[float]:
        out, prev = [], None
        for r in part:
            t, n = float(r["time_s"]), float(r["samples"])
            if prev is not None and t > prev[0]:
                out.append((n - prev[1]) / (t - prev[0]))
            prev = (t, n)
        return out

    now = [r for r in train if int(r["step"]) > since_step]
    stages = sorted(k for k in rows[0] if k.startswith("stage") and k.endswith("_mm")) if rows else []
    return {
        "steps": int(train[-1]["step"]) if train else 0,
        "samples_per_s_now": statistics.median(rates(now)) if len(now) > 1 else None,
        "samples_per_s_run": statistics.median(rates(train)) if len(train) > 1 else None,
        "val_stage_mm": [float(val[-1][k]) for k in stages if val[-1].get(k)] if val else [],
    }


def last_step(run: Path) -> int:
    path = run / "metrics.csv"
    if not path.is_file():
        return 0
    with open(path, newline="", encoding="utf-8") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f) if r["split"] == "train"]
    return steps[-1] if steps else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="run folder (created, or continued)")
    ap.add_argument("--minutes", type=float, help="training time in all (default 8 unless --steps)")
    ap.add_argument("--steps", type=int, help="optimizer steps in all, instead of --minutes")
    ap.add_argument("--extend", action="store_true", help="accept a longer --minutes/--steps for a saved run")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--workers", type=int, default=12, help="data loader processes rendering frames")
    ap.add_argument("--preset", default="paper", help="paper (default); tiny for a check on a CPU")
    args = ap.parse_args(argv)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("gpu_paper: no CUDA device here; --device cpu --preset tiny checks the script", file=sys.stderr)
            return 2
    length = ["--steps", str(args.steps)] if args.steps else ["--minutes", str(args.minutes or 8.0)]
    before = last_step(args.out)
    argv = ["train", "--data", "synth", "--preset", args.preset, "--device", args.device, "--workers",
            str(args.workers), "--out", str(args.out), "--resume", *length, *(["--extend"] if args.extend else [])]
    print("srnpose " + " ".join(argv), flush=True)
    code = srnpose_main(argv)
    if code != 0:
        return code
    s = summarise(args.out, before)
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    print(f"machine: {machine(args.device)}")
    print(f"run {args.out}: step {s['steps']} (this invocation from step {before}); samples/s between logged rows, validation included: "
          f"{fmt(s['samples_per_s_now'])} now, {fmt(s['samples_per_s_run'])} over the run; last validation "
          f"per stage (mm): {', '.join(f'{v:.2f}' for v in s['val_stage_mm']) or '-'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
