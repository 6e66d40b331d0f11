"""``srnpose evaluate``: published prediction files (the community protocol) or a trained checkpoint.

    srnpose evaluate --predictions V2V=v2v.txt A2J=a2j.txt --labels nyu_test_groundtruth_label.txt \\
        --dataset nyu --out eval/nyu
    srnpose evaluate --checkpoint runs/demo --data synth --out runs/demo/eval
    srnpose evaluate --data nyu:DIR --fit --out eval/nyu_fit   # the shipped model, then the hand fitted to the depth

Without ``--fit`` a model's evaluation scores the network's joints; ``--fit`` fits the articulated hand to
each frame's depth after it (as ``predict`` does by default) and reports both.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from srnpose.data.centering import MAX_PASSES
from srnpose.errors import UserError
from srnpose.evaluation import model_eval as evaluate_run
from srnpose.evaluation.model_eval import CENTER_MODES
from srnpose.evaluation.protocol import (
    DATASET_INTRINSICS,
    evaluate_files,
    format_table,
    get_dataset_intrinsics,
    joint_names_for,
    write_report,
)
from srnpose.geometry import Intrinsics
from srnpose.outputs import (
    CHECKPOINT_KIND,
    REPORT_KIND,
    RUN_KIND,
    check_folder_target,
    output_folder,
    refuse_foreign_folder,
)
from srnpose.synth.engines import ENGINES
from srnpose.weights import release_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--predictions", nargs="+", metavar="NAME=FILE",
                        help="community uvd files to compare, one line per frame (u v d per joint)")
    source.add_argument("--checkpoint", metavar="RUN",
                        help="a training run folder to evaluate (neither this nor --predictions: the shipped "
                             "model, with --data and --out)")
    parser.add_argument("--labels", metavar="FILE", help="ground-truth uvd file, same format (with --predictions)")
    parser.add_argument("--dataset", metavar="NAME",
                        help=f"dataset whose intrinsics convert uvd to xyz: {', '.join(DATASET_INTRINSICS)}")
    parser.add_argument("--intrinsics", metavar="fx,fy,cx,cy",
                        help="camera intrinsics overriding the dataset's (fy < 0 for NYU's y-up convention)")
    parser.add_argument("--data", metavar="SPEC", help="test data for --checkpoint, e.g. synth, nyu:DIR")
    parser.add_argument("--centers", metavar="FILE",
                        help="refined hand centres of the test split, one line per frame (uvd, or '# xyz' header)")
    parser.add_argument("--center", choices=tuple(CENTER_MODES),
                        help="first crop without a centres file: auto = the hand found as predict finds it "
                             "(default, label-free: the checkpoint's hand locator, else the nearest-blob search); "
                             "locator; depth = the nearest-blob search; joints = the labelled joints' centroid "
                             "(uses labels)")
    parser.add_argument("--synth-engine", choices=ENGINES,
                        help="with --data synth: the engine of the fixed test set (default: the checkpoint's)")
    parser.add_argument("--refine", type=int, metavar="N",
                        help="extra passes, each cropping again at the previous pass's joints' centroid "
                             "(default: 2 for a model trained with data.center=mixed, each run only where it moves "
                             "the crop by 10 mm or more, else 0)")
    parser.add_argument("--fit", action="store_true",
                        help="fit the articulated hand to each frame's depth after the network (predict's default) "
                             "and score the fitted hand beside the network (21-joint models; default: the "
                             "network alone)")
    parser.add_argument("--out", metavar="DIR",
                        help="output folder for report.json, summary.md and the plots "
                             "(required with --predictions; default RUN/eval with --checkpoint)")


def _parse_pairs(items: list[str]) -> dict[str, Path]:
    pairs: dict[str, Path] = {}
    for item in items:
        name, sep, file = item.partition("=")
        name, file = name.strip(), file.strip()
        if not sep or not name or not file:
            raise UserError(f"--predictions: expected NAME=FILE, got {item!r}")
        if name in pairs:
            raise UserError(f"--predictions: method name {name!r} given twice")
        if not Path(file).is_file():
            raise UserError(f"--predictions: {file}: no such file")
        pairs[name] = Path(file)
    return pairs


def _run_checkpoint(args: argparse.Namespace) -> int:
    if args.refine is not None and not 0 <= args.refine < MAX_PASSES:
        raise UserError(f"--refine: must be in [0, {MAX_PASSES - 1}], got {args.refine}")
    for flag, value in (("--labels", args.labels), ("--predictions", args.predictions)):
        if value:
            raise UserError(f"{flag} cannot be used with --checkpoint")
    if not args.data:
        raise UserError("give --data SPEC (e.g. synth, nyu:DIR): the test data for --checkpoint RUN or, without "
                        "it, the shipped model; or compare files with --predictions NAME=FILE --labels FILE")
    if args.checkpoint is None:  # the shipped model: never write into the package
        if not args.out:
            raise UserError("--out DIR: where to write the shipped model's evaluation (or give --checkpoint RUN)")
        args.checkpoint = str(release_dir())
    out_dir = args.out if args.out is not None else Path(args.checkpoint) / "eval"
    if not Path(args.checkpoint).exists():  # named as the checkpoint, not as a folder we cannot create
        raise UserError(f"checkpoint {args.checkpoint}: no such file or folder")
    out_dir = _check_out(out_dir)
    opts = {}
    if args.dataset:
        opts["dataset"] = args.dataset
    if args.intrinsics:
        opts["intrinsics"] = args.intrinsics
    if args.centers:
        opts["centers"] = args.centers
    if args.center:
        opts["center"] = args.center
    if args.refine is not None:
        opts["refine"] = args.refine
    if args.synth_engine:
        opts["synth_engine"] = args.synth_engine
    if args.fit:
        opts["fit"] = True
    write_opts = {"dataset": opts.pop("dataset")} if "dataset" in opts else {}
    with output_folder(out_dir) as files:  # staged, renamed into place at the end; a failure leaves no folder
        evaluation = evaluate_run.compute_evaluation(args.checkpoint, args.data, **opts)
        paths = evaluate_run.write_evaluation(evaluation, files, **write_opts)
    _print_evaluation(evaluation, paths)
    return 0


def _print_evaluation(evaluation, paths: dict) -> None:
    """What ``evaluate --checkpoint`` found: the frames scored, the joints compared, the table, the files."""
    report = evaluation.report
    missed = f"; no hand found in {report['hands_not_found']}" if report["hands_not_found"] else ""
    print(f"{evaluation.data_spec}: {report['frames']} of {len(evaluation.records)} frames scored{missed}; "
          f"checkpoint {evaluation.checkpoint}")
    if evaluation.mapping is not None:
        print(f"joints compared: the labels' {evaluation.labels_layout} layout; {evaluation.mapping_note}")
    print(format_table(report))
    if "fitted" in report:
        f = report["fitted"]
        print(f"fit to the depth ({f['lm_steps']} LM steps, {f['fit_ms_per_frame']:.1f} ms per frame): mean error "
              f"{f['network_mean_error_mm']:.2f} mm (network) -> {f['mean_error_mm']:.2f} mm (fitted); "
              "predictions.txt holds the fitted joints")
    print("wrote " + ", ".join(str(p) for p in paths.values()))


def _check_out(out) -> Path:
    """``--out`` checked before anything is read: not empty, not a file, creatable, and not another
    command's folder (a training run or checkpoint folder takes its evaluation)."""
    out = check_folder_target(out, "--out")
    refuse_foreign_folder(out, "--out", (None, REPORT_KIND, RUN_KIND, CHECKPOINT_KIND),
                          "give evaluate a folder of its own")
    return out


def run(args: argparse.Namespace) -> int:
    if args.checkpoint or not args.predictions:
        return _run_checkpoint(args)

    if args.data:
        raise UserError("--data is for --checkpoint; give --labels FILE with --predictions")
    if args.refine is not None:
        raise UserError("--refine is for --checkpoint (a prediction file is already final)")
    if args.fit:
        raise UserError("--fit is for a model (--checkpoint, or the shipped model with --data): a prediction file "
                        "has no depth frames to fit to")
    if not args.labels:
        raise UserError("--predictions needs --labels FILE")
    if not args.out:
        raise UserError("--predictions needs --out DIR")
    pairs = _parse_pairs(args.predictions)
    if args.dataset is not None:
        get_dataset_intrinsics(args.dataset)  # unknown name -> one line listing the valid ones
    intrinsics = None
    if args.intrinsics:
        try:
            intrinsics = Intrinsics.parse(args.intrinsics)
        except ValueError as exc:
            raise UserError(f"--intrinsics: {exc}") from None
    if args.dataset is None and intrinsics is None:
        raise UserError(f"give --dataset ({', '.join(DATASET_INTRINSICS)}) or --intrinsics fx,fy,cx,cy")

    _check_out(args.out)  # before the files are read: a bad --out fails first, in one line
    report = evaluate_files(pairs, args.labels, args.dataset, intrinsics)
    num_joints = len(next(iter(report["methods"].values()))["per_joint_mm"])
    with output_folder(args.out) as files:
        paths = write_report(files, report, joint_names_for(args.dataset, num_joints))
    used = intrinsics or get_dataset_intrinsics(args.dataset)
    print(f"{report['dataset']}: {report['frames']} frames, {num_joints} joints, "
          f"intrinsics fx={used.fx} fy={used.fy} cx={used.cx} cy={used.cy}")
    print(format_table(report))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
