"""Fault injection: SIGKILL a training run at random moments, rerun the same command, compare the weights.

    python benchmarks/fault_injection.py                       # 10 kills, seed 0, tiny synthetic run
    python benchmarks/fault_injection.py --kills 20 --seed 3 --steps 160 --json fault.json

Trains a tiny run (``--preset tiny``, synthetic data rendered on the fly, ``--steps`` fixed, a
checkpoint every ``--ckpt-every`` steps) once without interruption, then again with the identical
command (``srnpose train ... --out RUN --resume``) while killing its process group with SIGKILL at
``--kills`` random moments (seeded). Each kill is one of:

* ``time``: after a random delay, anywhere from the start-up (imports, checkpoint loading) into the
  training steps;
* ``ckpt``: as soon as a new ``RUN/last.tmp`` folder appears (a checkpoint being written), after a
  random 0-20 ms for half of them.

After every kill, before the rerun, every version of the checkpoint (``last``, ``last.tmp``,
``last.prev``) is checked with :func:`srnpose.training.checkpoint.verify_checkpoint_dir`, and the one a restart
will load (:func:`srnpose.training.checkpoint.resolve_checkpoint_dir`) is loaded here too. Every rerun's stderr
is searched for "warning: checkpoint ... trying the previous one" (a candidate passed over). At the
end: faults injected, kills that landed while a checkpoint was being written (``last.tmp`` left
behind), restarts, corrupted checkpoints loaded (must be 0), the largest absolute difference between
the final weights (and optimizer state) and the uninterrupted run's (0 on a CPU: resume is exact), and
the training rows of ``metrics.csv``: duplicated, missing and out-of-order steps. Prints a table;
``--json FILE`` writes the figures.

Outputs (``--suite outputs``, or ``all``): every other command's writes under faults, each injection on a
fresh copy of an earlier, good result (issue 21):

* full disks (``--disk-full N``): ``train --resume --extend`` on a run's ``last/``, ``export`` over an
  earlier ``e.onnx``, ``synth --overwrite`` over an earlier dataset and ``predict`` over an earlier output
  folder, each in a process whose file size limit is a random size (RLIMIT_FSIZE, ``ulimit -f``, with
  SIGXFSZ ignored: a write past it fails with EFBIG, as on a full disk);
* kills (``--kills-out N``) of ``export`` and ``synth`` as soon as their first temporary file appears,
  after a random delay, with SIGINT (Ctrl-C: the command cleans up) or SIGKILL (a power cut: it cannot),
  then the same command rerun.

Survived with nothing lost: the earlier files bitwise intact (or, where the limit was not reached, the
new result complete), no temporary file left (after a SIGKILL: none after the rerun), and a full disk
ended with one line, exit 2 (``srnpose CMD: error: cannot write PATH: ... (N GB free there); ...``); a
training run then resumes to its end once the limit is lifted.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import os
import platform
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WARNING_RE = re.compile(r"^warning: checkpoint .* trying the previous one$", re.M)
POLL_S = 0.001  # how often a ckpt kill looks for last.tmp
CKPT_JITTER_S = 0.02  # the random delay after last.tmp appears, for half of the ckpt kills


def train_command(out: Path, steps: int, ckpt_every: int) -> list[str]:
    return [sys.executable, "-m", "srnpose", "train", "--data", "synth", "--preset", "tiny", "--steps", str(steps),
            "--out", str(out), "--resume", "--no-progress", "--set", "model.width=8", "--set", "train.batch_size=2",
            "--set", "data.val_frames=2", "--set", "train.log_every=1", "--set", f"train.ckpt_every={ckpt_every}",
            "--set", "train.val_every=1000"]


def last_step(run: Path) -> int:
    """The step of the last row of ``metrics.csv`` (0 when none)."""
    try:
        with open(run / "metrics.csv", newline="") as f:
            rows = [r for r in csv.reader(f)][1:]
    except OSError:
        return 0
    steps = [int(r[0]) for r in rows if r and r[0].isdigit()]
    return steps[-1] if steps else 0


def folder_id(path: Path) -> tuple | None:
    """Identity of a folder (inode, mtime), or None when absent: tells a new last.tmp from a leftover."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns)


def spawn(cmd: list[str], env: dict, err_path: Path) -> tuple[subprocess.Popen, object]:
    err = open(err_path, "w")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    return proc, err


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process we started and its children (data loader workers, if any): a power cut."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def clean_run(run: Path, cmd: list[str], env: dict, log: Path) -> dict:
    """The uninterrupted run, timed: start-up (until the first metrics row) and seconds per step."""
    t0 = time.perf_counter()
    proc, err = spawn(cmd, env, log)
    first = None
    while proc.poll() is None:
        if first is None and last_step(run) >= 1:
            first = time.perf_counter() - t0
        time.sleep(0.01)
    err.close()
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"the uninterrupted run failed (exit {proc.returncode}):\n{log.read_text()[-2000:]}")
    steps = last_step(run)
    first = first if first is not None else total / 2
    return {"seconds": total, "startup_s": first, "step_s": (total - first) / max(steps - 1, 1)}


def checkpoint_states(run: Path) -> dict:
    """For last, last.tmp, last.prev: missing | incomplete (no COMPLETE) | ok | corrupt: <what>."""
    from srnpose.training.checkpoint import COMPLETE_MARKER, verify_checkpoint_dir

    states = {}
    for name in ("last", "last.tmp", "last.prev"):
        folder = run / name
        if not folder.is_dir():
            states[name] = "missing"
        elif not (folder / COMPLETE_MARKER).is_file():
            states[name] = "incomplete"
        else:
            problem = verify_checkpoint_dir(folder)
            states[name] = "ok" if problem is None else f"corrupt: {problem}"
    return states


def inspect_resolved(run: Path) -> dict:
    """What a restart loads: the folder resolve_checkpoint_dir picks, verified and loaded here."""
    from safetensors.torch import load_file

    from srnpose.training.checkpoint import (
        COMPLETE_MARKER,
        TRAIN_STATE_FILE,
        WEIGHTS_FILE,
        load_train_state,
        resolve_checkpoint_dir,
        verify_checkpoint_dir,
    )

    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        folder = resolve_checkpoint_dir(run / "last")
    out = {"resolved": None if folder is None else folder.name, "passed_over": len(WARNING_RE.findall(captured.getvalue())),
           "step": None, "corrupt": False}
    if folder is None:
        return out
    try:
        if not (folder / COMPLETE_MARKER).is_file() or verify_checkpoint_dir(folder) is not None:
            raise ValueError("unverified")
        load_file(str(folder / WEIGHTS_FILE))
        out["step"] = int(load_train_state(folder / TRAIN_STATE_FILE)["step"])
    except Exception as exc:  # noqa: BLE001 - anything here means a restart would load garbage
        out["corrupt"] = True
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def max_difference(a_path: Path, b_path: Path, state: bool = False) -> float:
    """Largest |a - b| over every tensor of two weights files (or two train_state.pt optimizer states)."""
    import torch
    from safetensors.torch import load_file

    if state:
        from srnpose.training.checkpoint import load_train_state

        def tensors(path):
            flat = {}

            def walk(prefix, value):
                if isinstance(value, torch.Tensor):
                    flat[prefix] = value
                elif isinstance(value, dict):
                    for k, v in value.items():
                        walk(f"{prefix}.{k}", v)
                elif isinstance(value, (list, tuple)):
                    for i, v in enumerate(value):
                        walk(f"{prefix}.{i}", v)
            walk("optimizer", load_train_state(path)["optimizer"])
            return flat
        a, b = tensors(a_path), tensors(b_path)
    else:
        a, b = load_file(str(a_path)), load_file(str(b_path))
    if a.keys() != b.keys():
        return float("inf")
    worst = 0.0
    for key in a:
        if a[key].shape != b[key].shape:
            return float("inf")
        if a[key].numel():
            worst = max(worst, float((a[key].double() - b[key].double()).abs().max()))
    return worst


def metrics_rows(run: Path, steps: int) -> dict:
    """The training rows of ``metrics.csv``: duplicated steps, missing steps (gaps), out-of-order rows."""
    with open(run / "metrics.csv", newline="") as f:
        got = [int(r["step"]) for r in csv.DictReader(f) if r["split"] == "train"]
    seen = set(got)
    return {"rows": len(got), "duplicates": len(got) - len(seen), "gaps": len(set(range(1, steps + 1)) - seen),
            "out_of_order": sum(b <= a for a, b in zip(got, got[1:])),
            "every_step_once": got == list(range(1, steps + 1))}


# --------------------------------------------------------------------------- the other commands' writes

OUT_TINY = {"model": {"num_joints": 21, "num_stages": 1, "input_size": 32, "width": 8, "topk": 8},
            "data": {"spec": "synth", "cube_mm": 250.0, "layout": "canonical"}, "train": {"batch_size": 2}}
# file size limits drawn per command (bytes): around the sizes of the files each writes (a tiny run's weights
# 1.5 MB and training state 3 MB; the tiny export 0.7 MB; a 160x120 frame 9-15 kB; an overlay 44 kB)
LIMITS = {"train": (20_000, 5_000_000), "export": (10_000, 1_500_000), "synth": (1_000, 30_000),
          "predict": (2_000, 120_000)}


def _digest(folder: Path) -> dict[str, str]:
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


def _temps(folder: Path) -> list[str]:
    from srnpose.outputs import is_temp_name

    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if is_temp_name(p.name) or p.name.endswith(".tmp"))


def _srnpose(argv: list[str], env: dict, limit: int | None = None, err: Path | None = None,
             popen: bool = False):
    """``python -m srnpose ARGV`` (its own process group), with a file size limit if given."""
    import resource

    def preexec() -> None:
        if limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    cmd = [sys.executable, "-m", "srnpose", *argv]
    if popen:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(err, "w"), preexec_fn=preexec,
                                start_new_session=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, preexec_fn=preexec, timeout=900)


def _one_line(proc, command: str) -> bool:
    """Exit 2 and a last stderr line naming the file and the free space, no traceback."""
    lines = [ln for ln in proc.stderr.replace("\r", "\n").splitlines() if ln.strip()]
    return (proc.returncode == 2 and "Traceback" not in proc.stderr and bool(lines)
            and lines[-1].startswith(f"srnpose {command}: error: cannot write ") and "free there" in lines[-1])


def _complete(command: str, folder: Path, frames: int = 6) -> bool:
    """Whether a command that was not stopped by the limit left its whole, readable result."""
    try:
        if command == "train":
            from srnpose.training.checkpoint import load_train_state, verify_checkpoint_dir

            return verify_checkpoint_dir(folder / "last") is None and \
                int(load_train_state(folder / "last" / "train_state.pt")["step"]) == 4
        if command == "export":
            from srnpose.inference.backends import read_metadata

            return bool(read_metadata(folder / "e.onnx"))
        if command == "synth":
            meta = json.loads((folder / "meta.json").read_text())
            labels = (folder / "labels.txt").read_text().splitlines()
            return meta["frames"] == frames and len(labels) == frames and \
                len(list((folder / "depth").glob("[0-9]*.png"))) == frames
        if command == "predict":
            rows = [json.loads(x) for x in (folder / "predictions.jsonl").read_text().splitlines()]
            return len(rows) == 2 and len(list((folder / "overlays").glob("*.png"))) == 2
    except Exception:  # noqa: BLE001 - anything unreadable is not complete
        return False
    return False


def _new_and_complete(command: str, folder: Path, before: dict, after: dict, frames: int = 6) -> bool:
    """The new result whole: complete and every earlier file replaced (the earlier results come from another
    model or seed, so a new file never equals an old one; a mix of old and new files is not complete)."""
    return all(after.get(k) != v for k, v in before.items()) and _complete(command, folder, frames)


def _prepare_outputs(work: Path, env: dict) -> dict:
    """The earlier, good results each injection starts from (copied per injection) and the arguments."""
    import numpy as np
    import torch

    from srnpose.config import SRNConfig, from_dict
    from srnpose.model import SRN
    from srnpose.synth import render_frame
    from srnpose.training.checkpoint import save_checkpoint

    base = work / "base"
    base.mkdir(parents=True, exist_ok=True)
    for seed, name in ((0, "model"), (1, "earlier_model")):  # the earlier results come from another model:
        torch.manual_seed(seed)                             # a new result never equals an earlier one
        save_checkpoint(base / name / "last", SRN.from_config(from_dict(SRNConfig, OUT_TINY["model"])), OUT_TINY,
                        {"step": 1})
    earlier_model = str(base / "earlier_model")
    frame = render_frame(1).depth_mm
    np.save(base / "frames.npy", np.stack([frame, frame]))
    model, frames = str(base / "model"), str(base / "frames.npy")
    steps = ["train", "--data", "synth", "--preset", "tiny", "--no-progress", "--set", "model.width=8", "--set",
             "train.batch_size=2", "--set", "data.val_frames=2", "--set", "train.ckpt_every=2"]
    earlier = {
        "train": steps + ["--steps", "2", "--out", str(base / "train")],
        "export": ["export", "--checkpoint", earlier_model, "--out", str(base / "export" / "e.onnx")],
        "synth": ["synth", "--out", str(base / "synth"), "--frames", "3", "--resolution", "160x120", "--seed", "1"],
        "predict": ["predict", frames, "--checkpoint", earlier_model, "--camera", "icvl", "--out",
                    str(base / "predict")],
    }
    for command, argv in earlier.items():
        proc = _srnpose(argv, env)
        if proc.returncode != 0:
            sys.exit(f"preparing {command} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return {
        "train": lambda out: ["train", "--out", str(out), "--resume", "--extend", "--steps", "4", "--no-progress"],
        "export": lambda out: ["export", "--checkpoint", model, "--out", str(out / "e.onnx")],
        "synth": lambda out: ["synth", "--out", str(out), "--frames", "6", "--resolution", "160x120", "--overwrite"],
        "synth-kill": lambda out: ["synth", "--out", str(out), "--frames", "300", "--resolution", "320x240",
                                   "--overwrite"],
        "predict": lambda out: ["predict", frames, "--checkpoint", model, "--camera", "icvl", "--out", str(out)],
    }


def _fresh(work: Path, command: str, i: int) -> Path:
    import shutil

    folder = work / f"{command}{i}"
    shutil.copytree(work / "base" / command, folder)
    return folder


def _watched(folder: Path) -> Path:
    """Where a command's result lives inside its copied folder (the dataset's frames for synth)."""
    return folder / "depth" if (folder / "depth").is_dir() else folder


def disk_full_injections(work: Path, env: dict, argv: dict, rng: random.Random, count: int) -> list[dict]:
    """``count`` full disks at random sizes, the commands in turn."""
    events = []
    commands = ("train", "export", "synth", "predict")
    for i in range(count):
        command = commands[i % len(commands)]
        limit = int(math.exp(rng.uniform(math.log(LIMITS[command][0]), math.log(LIMITS[command][1]))))
        folder = _fresh(work, command, i)
        before = _digest(folder / "last" if command == "train" else folder)
        proc = _srnpose(argv[command](folder), env, limit)
        after = _digest(folder / "last" if command == "train" else folder)
        event = {"kind": "disk full", "command": command, "limit_bytes": limit, "exit": proc.returncode,
                 "intact": after == before, "complete": _new_and_complete(command, folder, before, after),
                 "one_line": _one_line(proc, command), "temps": _temps(folder),
                 "last_line": (proc.stderr.strip().splitlines() or [""])[-1][-220:]}
        if command == "train":  # the limit lifted: the same command resumes to the end
            again = _srnpose(argv["train"](folder), env)
            event["resumed"] = again.returncode == 0 and _complete("train", folder)
        event["survived"] = not event["temps"] and event.get("resumed", True) and (
            (event["intact"] and event["one_line"]) or event["complete"])
        events.append(event)
        print(f"  disk full {i + 1:>2}/{count}: {command:<7} limit {limit:>9} B -> exit {proc.returncode}, "
              f"{'intact' if event['intact'] else 'changed'}, {'complete' if event['complete'] else '-'}, "
              f"one line {event['one_line']}, temps {len(event['temps'])}"
              + (f", resumed {event['resumed']}" if "resumed" in event else "")
              + f": {'survived' if event['survived'] else 'LOST'}")
    return events


def kill_injections(work: Path, env: dict, argv: dict, rng: random.Random, count: int) -> list[dict]:
    """``count`` kills of export and synth (in turn) once their first temporary file appears, after a random
    delay, with SIGINT or SIGKILL; then the same command rerun."""
    from srnpose.outputs import is_temp_name

    events = []
    for i in range(count):
        command = ("export", "synth")[i % 2]
        sig = rng.choice((signal.SIGINT, signal.SIGKILL))
        # after its first temporary file, export has ~0.1 s left (the parity check, then the rename); synth
        # renders its 300 frames in a few seconds, then renames them all
        delay = rng.uniform(0.0, 0.1 if command == "export" else 4.0)
        folder = _fresh(work, command, 100 + i)
        watched = _watched(folder)
        before = _digest(folder)
        args = argv["synth-kill" if command == "synth" else command](folder)
        proc = _srnpose(args, env, err=work / f"kill{i}.err", popen=True)
        t0, seen = time.perf_counter(), None
        while proc.poll() is None and time.perf_counter() - t0 < 600:
            if seen is None and any(is_temp_name(p.name) and not p.name.startswith(".probe.")
                                    for p in watched.iterdir()):  # the output itself, not the writability probe
                seen = time.perf_counter()
            if seen is not None and time.perf_counter() - seen >= delay:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                break
            time.sleep(POLL_S)
        proc.wait()
        after = _digest(folder)
        temps = _temps(folder)
        killed = seen is not None and proc.returncode != 0
        complete = _new_and_complete(command, folder, before, after, 300)
        rerun = _srnpose(args, env)
        event = {"kind": "kill", "command": command, "signal": signal.Signals(sig).name, "delay_s": round(delay, 3),
                 "killed": killed, "exit": proc.returncode,
                 "intact": {k: v for k, v in after.items() if k not in temps} == before, "complete": complete,
                 "temps": temps, "rerun_exit": rerun.returncode, "temps_after_rerun": _temps(folder)}
        event["survived"] = (event["intact"] or complete) and not event["temps_after_rerun"] and \
            (sig == signal.SIGKILL or not temps) and rerun.returncode == 0
        events.append(event)
        print(f"  kill {i + 1:>2}/{count}: {command:<6} {event['signal']:<7} {delay:5.3f} s after its first temporary "
              f"file -> exit {proc.returncode}, {'intact' if event['intact'] else 'changed'}, "
              f"{'complete' if complete else '-'}, temps {len(temps)} (after the rerun {len(event['temps_after_rerun'])})"
              f": {'survived' if event['survived'] else 'LOST'}")
    return events


def output_faults(args, env: dict) -> dict:
    import shutil

    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="srnpose_outfault_"))
    try:
        argv = _prepare_outputs(work, env)
        print(f"full disks ({args.disk_full}) and kills of export and synth ({args.kills_out}), seed {args.seed}:")
        events = disk_full_injections(work, env, argv, rng, args.disk_full)
        events += kill_injections(work, env, argv, rng, args.kills_out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {}
    for kind in ("disk full", "kill"):
        mine = [e for e in events if e["kind"] == kind]
        for command in sorted({e["command"] for e in mine}):
            rows = [e for e in mine if e["command"] == command]
            summary[f"{kind}: {command}"] = {
                "injected": len(rows), "survived_nothing_lost": sum(e["survived"] for e in rows),
                "stopped_by_the_fault": sum(not e["complete"] for e in rows),
                "earlier_files_intact": sum(e["intact"] for e in rows if not e["complete"]),
                "new_result_complete": sum(e["complete"] for e in rows),
                "one_line_errors": sum(e.get("one_line", False) for e in rows),
                "temp_files_left": sum(len(e["temps"]) for e in rows),
                "temp_files_left_after_rerun": sum(len(e.get("temps_after_rerun", [])) for e in rows)}
    print(f"\n{'fault: command':<20} {'injected':>8} {'survived':>8} {'stopped':>8} {'intact':>7} {'1 line':>7} "
          f"{'finished':>8} {'temps':>6} {'after rerun':>11}")
    for key, f in summary.items():
        print(f"{key:<20} {f['injected']:>8} {f['survived_nothing_lost']:>8} {f['stopped_by_the_fault']:>8} "
              f"{f['earlier_files_intact']:>7} {f['one_line_errors']:>7} {f['new_result_complete']:>8} "
              f"{f['temp_files_left']:>6} {f['temp_files_left_after_rerun']:>11}")
    print("stopped: the fault stopped the command; intact: of those, the earlier files bitwise as they were; "
          "1 line: a full disk's one-line error, exit 2; finished: the command ended before the fault could stop "
          "it, its new result whole; temps: temporary files left (a SIGKILL cannot clean up; the rerun does)")
    total = len(events)
    survived = sum(e["survived"] for e in events)
    print(f"survived with nothing lost: {survived} of {total} "
          f"({sum(e['survived'] for e in events if e['kind'] == 'disk full')} of "
          f"{sum(e['kind'] == 'disk full' for e in events)} full disks, "
          f"{sum(e['survived'] for e in events if e['kind'] == 'kill')} of {sum(e['kind'] == 'kill' for e in events)} "
          "kills)")
    return {"summary": summary, "survived": survived, "injected": total, "events": events}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=10, help="faults to inject (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default 0)")
    parser.add_argument("--steps", type=int, default=120, help="training steps (default 120)")
    parser.add_argument("--ckpt-every", type=int, default=3, help="steps between checkpoints (default 3)")
    parser.add_argument("--ckpt-share", type=float, default=0.4,
                        help="fraction of kills aimed at a checkpoint being written (default 0.4)")
    parser.add_argument("--work", help="folder for the two runs (default: a temporary folder, removed)")
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    parser.add_argument("--suite", choices=("train", "outputs", "all"), default="all",
                        help="train: SIGKILLs of a training run; outputs: full disks in train, export, synth and "
                             "predict, kills of export and synth; all: both (default)")
    parser.add_argument("--disk-full", type=int, default=12, help="full-disk injections, the four commands in turn "
                                                                   "(default 12)")
    parser.add_argument("--kills-out", type=int, default=8, help="kills of export and synth, in turn (default 8)")
    args = parser.parse_args()

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    outputs = output_faults(args, env) if args.suite in ("outputs", "all") else None
    if args.suite == "outputs":
        if args.json:
            Path(args.json).write_text(json.dumps({"outputs": outputs}, indent=2, default=str) + "\n")
            print(f"wrote {args.json}")
        return
    rng = random.Random(args.seed)
    holder = None if args.work else tempfile.TemporaryDirectory(prefix="srnpose_fault_")
    work = Path(args.work or holder.name)
    work.mkdir(parents=True, exist_ok=True)
    clean, faulted = work / "clean", work / "faulted"
    timing = clean_run(clean, train_command(clean, args.steps, args.ckpt_every), env, work / "clean.err")
    print(f"uninterrupted run: {args.steps} steps in {timing['seconds']:.1f} s (start-up {timing['startup_s']:.1f} s, "
          f"{timing['step_s'] * 1e3:.0f} ms/step)")

    cmd = train_command(faulted, args.steps, args.ckpt_every)
    window_steps = max(args.steps // max(args.kills, 1), 2)  # a time kill lands within this many steps of start-up
    events: list[dict] = []
    attempt = 0
    finished_early = False
    aimed = set(rng.sample(range(args.kills), round(args.kills * args.ckpt_share)))  # kills aimed at a write
    while len(events) < args.kills:
        kind = "ckpt" if len(events) in aimed else "time"
        delay = rng.uniform(0.05, timing["startup_s"] + window_steps * timing["step_s"])
        jitter = rng.uniform(0.0, CKPT_JITTER_S) if rng.random() < 0.5 else 0.0
        leftover_tmp = folder_id(faulted / "last.tmp")
        step_before = last_step(faulted)
        proc, err = spawn(cmd, env, work / f"attempt{attempt}.err")
        attempt += 1
        t0 = time.perf_counter()
        killed = False
        while proc.poll() is None:
            if kind == "time" and time.perf_counter() - t0 >= delay:
                kill_group(proc)
                killed = True
                break
            if kind == "ckpt":
                now = folder_id(faulted / "last.tmp")
                if now is not None and now != leftover_tmp:
                    if jitter:
                        time.sleep(jitter)
                    kill_group(proc)
                    killed = True
                    break
            time.sleep(POLL_S if kind == "ckpt" else 0.005)
        err.close()
        if not killed:  # the run ended before the kill: nothing left to interrupt
            finished_early = proc.returncode == 0
            events.append({"kind": kind, "killed": False, "exit": proc.returncode})
            if finished_early:
                break
            continue
        after = folder_id(faulted / "last.tmp")
        event = {"kind": kind, "killed": True, "at_s": round(time.perf_counter() - t0, 3),
                 "jitter_s": round(jitter, 4) if kind == "ckpt" else None,
                 "step_before": step_before, "step_at_kill": last_step(faulted),
                 "during_ckpt_write": after is not None and after != leftover_tmp,
                 "tmp_files": sorted(p.name for p in (faulted / "last.tmp").iterdir())
                 if after is not None and after != leftover_tmp else None,
                 "states": checkpoint_states(faulted)}
        event.update(inspect_resolved(faulted))
        events.append(event)
    # the restart after the last kill runs to the end (and so does the one after any earlier kill)
    final_err = work / f"attempt{attempt}.err"
    proc, err = spawn(cmd, env, final_err)
    proc.wait()
    err.close()
    rerun_logs = [work / f"attempt{i}.err" for i in range(1, attempt + 1)]
    restarts = [p.read_text(errors="replace") for p in rerun_logs if p.exists()]
    warnings = sum(len(WARNING_RE.findall(t)) for t in restarts)
    resumed = sum("resuming" in t for t in restarts)
    final_ok = proc.returncode == 0
    kills = [e for e in events if e["killed"]]

    weights = lambda run: run / "last" / "model.safetensors"  # noqa: E731
    state = lambda run: run / "last" / "train_state.pt"  # noqa: E731
    figures = {
        "command": "srnpose " + " ".join(cmd[3:]).replace(str(faulted), "RUN"),
        "seed": args.seed,
        "steps": args.steps,
        "ckpt_every": args.ckpt_every,
        "faults_injected": len(kills),
        "kills_during_checkpoint_write": sum(e["during_ckpt_write"] for e in kills),
        "kills_aimed_at_checkpoint": sum(e["kind"] == "ckpt" for e in kills),
        "restarts": len(restarts),
        "restarts_that_resumed": resumed,
        "checkpoints_passed_over_warnings": warnings,
        "corrupt_folders_seen_after_kills": sum(any(s.startswith("corrupt") for s in e["states"].values()) for e in kills),
        "corrupted_checkpoint_loaded": sum(e["corrupt"] for e in kills),
        "final_exit": proc.returncode,
        "final_step": last_step(faulted),
        "metrics": metrics_rows(faulted, args.steps) if final_ok else None,
        "max_abs_weight_difference": max_difference(weights(clean), weights(faulted)) if final_ok else None,
        "max_abs_optimizer_difference": max_difference(state(clean), state(faulted), True) if final_ok else None,
        "best_weights_difference": (max_difference(clean / "best" / "model.safetensors",
                                                   faulted / "best" / "model.safetensors") if final_ok else None),
        "uninterrupted_s": round(timing["seconds"], 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}",
        "events": events,
    }
    import torch

    figures["machine"] += f", torch {torch.__version__}"

    print(f"\n{'#':>2}  {'kind':<5} {'at s':>6} {'step':>9} {'in write':>8}  {'last':<10} {'last.tmp':<10} "
          f"{'last.prev':<10} {'restart loads':<14} {'its step':>8}")
    for i, e in enumerate(events, 1):
        if not e["killed"]:
            print(f"{i:>2}  {e['kind']:<5} the run ended (exit {e['exit']}) before the kill")
            continue
        s = e["states"]
        print(f"{i:>2}  {e['kind']:<5} {e['at_s']:>6.2f} {e['step_before']:>4}->{e['step_at_kill']:<4} "
              f"{'yes' if e['during_ckpt_write'] else 'no':>8}  {s['last'][:10]:<10} {s['last.tmp'][:10]:<10} "
              f"{s['last.prev'][:10]:<10} {str(e['resolved']):<14} {str(e['step']):>8}")
    print()
    for key in ("faults_injected", "kills_during_checkpoint_write", "restarts", "restarts_that_resumed",
                "checkpoints_passed_over_warnings", "corrupt_folders_seen_after_kills", "corrupted_checkpoint_loaded",
                "final_exit", "final_step", "metrics", "max_abs_weight_difference",
                "max_abs_optimizer_difference", "best_weights_difference"):
        print(f"{key:<34} {figures[key]}")
    print(f"{'machine':<34} {figures['machine']}")
    print(f"command (rerun as is after each kill): python -m {figures['command']}")
    written = [e["tmp_files"] for e in kills if e["during_ckpt_write"]]
    if written:
        print("files in last.tmp at the kills during a write: " + "; ".join(",".join(f) or "(none)" for f in written))
    if args.json:
        if outputs is not None:
            figures["outputs"] = outputs
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    if holder is not None:
        holder.cleanup()


if __name__ == "__main__":
    main()
