"""``srnpose train``: train an SRN on synthetic hands or a public dataset (also under torchrun).

    srnpose train --data synth --out runs/synth --preset demo --minutes 10
    srnpose train --data nyu:/data/nyu --out runs/nyu --preset paper
    srnpose train --data synth --preset tiny --steps 300 --out runs/t --resume   # start, or continue
    srnpose train --out runs/t --resume --extend --steps 600                     # train a finished run longer
    torchrun --standalone --nproc_per_node=4 --max-restarts=3 -m srnpose train --data icvl:/data/icvl \
        --out runs/icvl --resume

``--resume`` means "continue RUN if it holds a complete checkpoint, else start it", so the command that
starts a run is also the command that restarts it (torchrun's ``--max-restarts`` reruns it as is).
Flags that agree with the saved config are accepted; one that conflicts is refused, naming the key and
both values. A dataset folder may move (same dataset, new path). A longer (or shorter) length is an
explicit choice: add ``--extend``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from srnpose.config import apply_overrides, from_dict, to_dict
from srnpose.data.sampling import synthetic_first_crop
from srnpose.errors import UserError
from srnpose.outputs import RUN_KIND, out_path, refuse_foreign_folder
from srnpose.training.checkpoint import TRAIN_STATE_FILE, load_train_state, resolve_checkpoint_dir
from srnpose.training.lock import check_lock_free, check_run_dir
from srnpose.training.run_config import (
    DEVICES,
    PRESETS,
    RunConfig,
    build_config,
    load_resume_config,
    resolve_data,
)

# config keys that may differ between the start and a restart of a run: where and how it runs
RUNTIME_KEYS = ("data.workers", "train.device", "train.threads")
LENGTH_KEYS = ("train.steps", "train.epochs", "train.minutes")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="SPEC",
                        help="training data: synth (rendered on the fly), synth:DIR, nyu:DIR, icvl:DIR, "
                             "msra:DIR[@P0], hands17:DIR")
    parser.add_argument("--val", metavar="SPEC",
                        help="validation data (default: held-out synthetic frames for synth, else the "
                             "dataset's test split)")
    parser.add_argument("--out", metavar="RUN", required=True, help="run folder (config, metrics.csv, last/, best/)")
    parser.add_argument("--preset", default=None, choices=tuple(PRESETS),
                        help="starting config (default: paper)")
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML with model/data/train keys, over the preset")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=None,
                        help="override one config value, e.g. --set train.lr=5e-4 (repeatable)")
    parser.add_argument("--resume", action="store_true",
                        help="continue RUN from its last complete checkpoint if it has one, else start it "
                             "(the same command starts and restarts a run)")
    parser.add_argument("--init", metavar="CHECKPOINT",
                        help="start a new run from these weights (a run folder, a checkpoint folder or a "
                             "weights file; 'release' = the shipped model): fine-tuning, or a trained network "
                             "grown by more stages (each new stage starts as a copy of the last trained one). Ignored when --resume finds "
                             "a checkpoint")
    parser.add_argument("--extend", action="store_true",
                        help="with --resume: accept a new --steps/--epochs/--minutes (train a run longer)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=float, metavar="N", help="train for N epochs in all")
    length.add_argument("--steps", type=int, metavar="N", help="train for N optimizer steps in all")
    length.add_argument("--minutes", type=float, metavar="M", help="train for M minutes in all")
    parser.add_argument("--centers", metavar="FILE",
                        help="refined hand centres of the training split, one line per frame (see docs/datasets.md)")
    parser.add_argument("--val-centers", metavar="FILE", help="refined hand centres of the validation split")
    parser.add_argument("--skip-bad", action="store_true", help="skip and count unreadable frames instead of stopping")
    parser.add_argument("--workers", type=int, metavar="K", help="data loader processes per rank")
    parser.add_argument("--device", choices=DEVICES, help="default: auto (CUDA when available)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _init_weights(name: str) -> Path:
    """The weights file --init names: 'release' (the shipped model), a run or checkpoint folder, a file."""
    from srnpose.training.checkpoint import find_weights

    if name == "release":
        from srnpose.weights import release_dir

        return find_weights(release_dir())
    return find_weights(Path(name))


def _length_overrides(args: argparse.Namespace) -> list[str]:
    if args.steps is not None:
        return [f"train.steps={args.steps}", "train.epochs=null", "train.minutes=null"]
    if args.epochs is not None:
        return [f"train.epochs={args.epochs}", "train.steps=null", "train.minutes=null"]
    if args.minutes is not None:
        return [f"train.minutes={args.minutes}", "train.steps=null", "train.epochs=null"]
    return []


def _flatten(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _same_data(key: str, saved, given) -> bool:
    """A moved dataset folder is the same data: compare the dataset names of two specs."""
    if key not in ("data.spec", "data.val_spec") or not (isinstance(saved, str) and isinstance(given, str)):
        return False
    return saved.partition(":")[0] == given.partition(":")[0] and ":" in saved and ":" in given


def reconcile(saved, requested, extend: bool):
    """The config to resume with: the saved one, with the requested runtime keys (and, with ``extend``,
    length). Any other difference is a UserError naming the key and both values."""
    old, new = _flatten(to_dict(saved)), _flatten(to_dict(requested))
    merged = dict(old)
    for key, value in new.items():
        if value == old.get(key) or key in RUNTIME_KEYS or _same_data(key, old.get(key), value):
            merged[key] = value
        elif key in LENGTH_KEYS and extend:
            merged[key] = value
        elif key in LENGTH_KEYS:
            raise UserError(f"--resume: {key} is {old.get(key)!r} in the saved run but {value!r} here; "
                            "add --extend to train the run for the new length")
        else:
            raise UserError(f"--resume: {key} is {old.get(key)!r} in the saved run but {value!r} here "
                            "(restart with the command that started the run, or use another --out)")
    nested: dict = {}
    for key, value in merged.items():
        section, _, name = key.partition(".")
        nested.setdefault(section, {})[name] = value
    return from_dict(RunConfig, nested)


def run(args: argparse.Namespace) -> int:
    from srnpose.training.demo import evaluate_steps
    from srnpose.training.loop import train

    for flag, value in (("--steps", args.steps), ("--workers", args.workers)):
        if value is not None and value < (1 if flag == "--steps" else 0):
            raise UserError(f"{flag}: must be {'>= 1' if flag == '--steps' else '>= 0'}, got {value}")
    for flag, value in (("--epochs", args.epochs), ("--minutes", args.minutes)):
        if value is not None and not value > 0:
            raise UserError(f"{flag}: must be > 0, got {value}")
    extra = list(_length_overrides(args))
    if args.val:
        extra.append(f"data.val_spec={args.val}")
    if args.skip_bad:
        extra.append("data.skip_bad=true")
    if args.centers:
        extra.append(f"data.centers={args.centers}")
    if args.val_centers:
        extra.append(f"data.val_centers={args.val_centers}")
    if args.workers is not None:
        extra.append(f"data.workers={args.workers}")
    if args.device:
        extra.append(f"train.device={args.device}")

    # a run goes into a folder of its own: not '', not another command's folder (predict outputs, a dataset)
    refuse_foreign_folder(out_path(args.out), "--out", (None, RUN_KIND), "give the run a folder of its own")
    # refused before anything is loaded or printed (train() checks again); rank 0 alone, as train() does:
    # under torchrun, rank 0 may already hold the lock when another rank gets here
    if int(os.environ.get("RANK", "0")) == 0 and Path(args.out).is_dir():
        check_lock_free(Path(args.out))
        check_run_dir(Path(args.out), args.resume)
    saved = None
    if args.resume and resolve_checkpoint_dir(Path(args.out) / "last") is not None:
        saved = load_resume_config(args.out)
    elif args.extend:
        raise UserError("--extend goes with --resume on a run folder that holds a checkpoint")
    if saved is not None and not args.data:  # the saved config, with the flags given
        requested = apply_overrides(saved, extra + list(args.overrides or []))
    else:
        if not args.data:
            raise UserError("--data SPEC is required (e.g. --data synth or --data nyu:/data/nyu)")
        requested = build_config(args.preset or "paper", args.config,
                                 [f"data.spec={args.data}"] + extra + list(args.overrides or []))
    cfg = requested if saved is None else reconcile(saved, resolve_data(requested), args.extend)
    if saved is not None and int(os.environ.get("RANK", "0")) == 0:
        # read here first so that a refused train_state.pt is the only line, and the step can be said
        last = resolve_checkpoint_dir(Path(args.out) / "last")
        state = last / TRAIN_STATE_FILE if last is not None else None
        step = load_train_state(state).get("step") if state is not None and state.is_file() else None
        print(f"resuming {args.out} from its last checkpoint" + (f" (step {int(step)})" if step is not None else ""),
              file=sys.stderr)
    init = None
    if args.init and saved is None:
        init = _init_weights(args.init)
    elif args.init and int(os.environ.get("RANK", "0")) == 0:
        print(f"--init {args.init}: not used, the run goes on from its own checkpoint", file=sys.stderr)
    result = train(cfg, args.out, resume=args.resume, progress=not args.no_progress, extend=args.extend,
                   init_weights=init)
    if int(os.environ.get("RANK", "0")) == 0:
        if init is not None:  # the starting model's hand locator (the shipped one for --init release) goes with the run
            from srnpose.inference.frame_path import carry_locator

            if carry_locator(init, args.out) is not None:
                print(f"attached the hand locator of --init {args.init} to {args.out}", file=sys.stderr)
        summary = f"trained to step {result.step} ({result.samples_per_s:.1f} samples/s)"
        if result.val_stage_mm:
            summary += "; validation mean error per stage (mm): " + " ".join(f"{v:.2f}" for v in result.val_stage_mm)
        if result.bad_frames:
            summary += f"; skipped {result.bad_frames} bad frames"
        print(summary)
        spec = cfg.data.val_spec or cfg.data.spec
        # the validation's first-crop rule first (the labelled centroid on engine v2), then the label-free one
        center = "joints" if synthetic_first_crop(spec, cfg.data.synth_engine) == "joints" else "auto"
        print(f"run folder: {args.out} (best/, last/, metrics.csv). Next:")
        for line in evaluate_steps(Path(args.out), center, spec, "the validation's crop rule, on the test frames"):
            print("  " + line)
    return 0
