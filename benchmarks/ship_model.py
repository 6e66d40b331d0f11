"""Put a run's model into the package as the shipped model, in fp16, and measure what fp16 costs.

    python benchmarks/ship_model.py --run runs/release [--frames 300] [--dry-run]

Loads the run's checkpoint (``best/``, else ``last/``), writes its weights in fp16 with its config
to ``src/srnpose/weights/release`` (a checkpoint folder: model.safetensors, config.yaml, COMPLETE),
then scores the fp32 run and the fp16 copy on the same frames: the engine's fixed synthetic test set
(``--frames``; first crop at the labelled joints' centroid, the protocol of ``srnpose demo``) and the
labelled NYU frame (label-free, as ``srnpose evaluate --data nyu:...``). Prints both and the size.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NYU_FRAME = ROOT.parent / "shared" / "data" / "nyu_frame"


def _scores(run: Path, frames: int, tmp: Path) -> dict:
    from srnpose.evaluation.model_eval import evaluate_checkpoint

    synth = evaluate_checkpoint(run, "synth", tmp / "synth", frames=frames, center="joints", overlays=0)
    out = {"synth_stage_mm": [round(s["mean_error_mm"], 3) for s in synth["stages"]]}
    if NYU_FRAME.is_dir():
        nyu = evaluate_checkpoint(run, f"nyu:{NYU_FRAME}", tmp / "nyu", overlays=0)
        out["nyu_mm"] = round(nyu["mean_error_mm"], 3)
    return out


def main() -> None:
    from srnpose.training.checkpoint import load_checkpoint, save_checkpoint
    from srnpose.weights import RELEASE_DIR

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--out", type=Path, default=RELEASE_DIR)
    args = parser.parse_args()

    ck = load_checkpoint(args.run)
    if args.out.exists():
        shutil.rmtree(args.out)
    save_checkpoint(args.out, copy.deepcopy(ck.model).half(), ck.config)
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {args.out} from {ck.path} ({size / 1e6:.2f} MB)")
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = _scores(ck.path.parent, args.frames, Path(tmp) / "fp32")
        fp16 = _scores(args.out, args.frames, Path(tmp) / "fp16")
    print(f"fp32 ({ck.path.parent}): {fp32}")
    print(f"fp16 (shipped):        {fp16}")


if __name__ == "__main__":
    main()
