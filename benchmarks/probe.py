"""Probe of hostile but realistic user input: a table of cases through the CLI and the API.

    python benchmarks/probe.py                     # every case; prints the table and a summary per family
    python benchmarks/probe.py --family frames     # one family
    python benchmarks/probe.py --json probe.json   # also write every case's outcome

Every CLI case runs ``python -m srnpose ...`` in a subprocess (temporary folders); every API case runs a
Python snippet in a subprocess. A case is **clean** when it ends as a user expects:

* a mistake: exit code 2 and ONE stderr line ``srnpose <cmd>: error: ...`` naming the flag or file
  (progress-bar lines aside; argparse's usage block before its own error line is its convention and
  is accepted), no traceback, nothing overwritten first; for the API, one exception of the documented kind
  (``UserError``, or ``FrameError`` for a frame) with a one-line message naming the argument, and
  nothing else on stderr;
* something that should work: exit code 0 (the API: no exception) and the right result, checked
  (a warning where the input is implausible, the files it should write, the step it should reach).

Anything else is **not clean**: a traceback, several lines, a wrong exit code, a silent wrong result.
Families: frames, flags, output paths, configs, checkpoints, kills, api, install (a minimal install:
no onnx, onnxruntime, pyrealsense2), plausibility.
Asserts nothing; the test of each fixed kind is in tests/test_probe_cases.py.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
TINY = ["--preset", "tiny", "--no-progress", "--set", "model.width=8", "--set", "train.batch_size=2",
        "--set", "data.val_frames=2", "--set", "train.log_every=1", "--set", "train.val_every=1000"]
PROGRESS_RE = re.compile(r"^\s*[\w ]*:?\s*\d+%\|")  # a tqdm bar line
UNWRITABLE = "/proc/srnpose_probe/out"  # mkdir fails there, even for root


@dataclass
class Outcome:
    rc: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        lines = [ln for part in self.err.splitlines() for ln in part.split("\r")]
        return [ln for ln in lines if ln.strip() and not PROGRESS_RE.match(ln)]


@dataclass
class Case:
    family: str
    name: str
    argv: list[str] | None = None  # after `python -m srnpose`
    code: str | None = None  # an API snippet (see API_HARNESS)
    expect: str = "error"  # "error" | "ok"
    names: tuple[str, ...] = ()  # what the error line (or the warning) must name
    check: Callable[[Outcome], str | None] | None = None  # extra check of a success: a problem or None
    run: Callable[[Case], Outcome] | None = None  # a custom driver (kills)
    timeout: float = 240.0
    extra: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ drivers

def run_cli(argv: list[str], timeout: float = 240.0, cwd: Path | None = None, env: dict | None = None) -> Outcome:
    try:
        done = subprocess.run([sys.executable, "-m", "srnpose", *argv], env=env or ENV, capture_output=True,
                              text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        return Outcome(124, exc.stdout or "", (exc.stderr or "") + "\n(timed out)")
    return Outcome(done.returncode, done.stdout, done.stderr)


API_HARNESS = """
import json, sys, warnings
warnings.simplefilter("always")
import numpy as np
import srnpose
from srnpose.errors import UserError
result = {{"raised": None, "message": None, "user_error": False, "warnings": []}}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
{body}
    except Exception as exc:
        result.update(raised=type(exc).__name__, message=str(exc), user_error=isinstance(exc, UserError))
result["warnings"] = [f"{{w.category.__name__}}: {{w.message}}" for w in caught]
print("PROBE-RESULT " + json.dumps(result))
"""


def run_api(code: str, timeout: float = 240.0, env: dict | None = None) -> Outcome:
    body = "\n".join("        " + line for line in code.strip().splitlines())
    try:
        done = subprocess.run([sys.executable, "-c", API_HARNESS.format(body=body)], env=env or ENV,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return Outcome(124, exc.stdout or "", (exc.stderr or "") + "\n(timed out)")
    return Outcome(done.returncode, done.stdout, done.stderr)


def api_result(o: Outcome) -> dict | None:
    for line in o.out.splitlines():
        if line.startswith("PROBE-RESULT "):
            return json.loads(line[len("PROBE-RESULT "):])
    return None


def classify(case: Case, o: Outcome) -> tuple[bool, str]:
    """(clean, why not / what it printed)."""
    if "Traceback" in o.err:
        return False, "traceback: " + o.err.strip().splitlines()[-1][:160]
    if case.code is not None:
        r = api_result(o)
        if r is None:
            return False, f"snippet died (exit {o.rc}): {o.err.strip()[-160:]}"
        stray = o.err_lines
        if case.expect == "error":
            if not r["raised"]:
                return False, "no exception" + (f"; warnings {r['warnings']}" if r["warnings"] else "")
            msg = r["message"] or ""
            if not r["user_error"]:
                return False, f"{r['raised']} (not a UserError): {msg[:140]}"
            if len(msg.splitlines()) != 1:
                return False, f"{len(msg.splitlines())}-line message: {msg[:140]!r}"
            missing = [n for n in case.names if n not in msg]
            if missing:
                return False, f"message does not name {missing}: {msg[:140]}"
            if stray or r["warnings"]:
                return False, f"extra output: {(stray + r['warnings'])[:2]}"
            return True, f"{r['raised']}: {msg[:150]}"
        if r["raised"]:
            return False, f"raised {r['raised']}: {(r['message'] or '')[:140]}"
        problem = case.check(o) if case.check else None
        return (problem is None), (problem or ("warned: " + "; ".join(r["warnings"])[:150] if r["warnings"] else "ok"))
    from srnpose.cli import COMMANDS

    cmd = case.argv[0] if case.argv else ""
    prefix = f"srnpose {cmd}: error: " if cmd in COMMANDS else "srnpose: error: "
    lines = o.err_lines
    if o.rc == 2 and len(lines) > 1 and lines[0].startswith("usage:") and lines[-1].startswith(prefix):
        lines = lines[-1:]  # argparse's own refusal: its usage block, then one error line (the convention)
    if case.run is not None and case.check is not None:  # a kill: its own check decides
        problem = case.check(o)
        return (problem is None), (problem or "ok")
    if case.expect == "error":
        if o.rc != 2:
            return False, f"exit {o.rc}; stderr: {' | '.join(lines)[-160:]}"
        if len(lines) != 1:
            return False, f"{len(lines)} stderr lines: {' | '.join(lines)[:200]}"
        if not lines[0].startswith(prefix):
            return False, f"line does not start {prefix.strip()!r}: {lines[0][:150]}"
        missing = [n for n in case.names if n not in lines[0]]
        if missing:
            return False, f"does not name {missing}: {lines[0][:160]}"
        problem = case.check(o) if case.check else None  # e.g. nothing was overwritten before the refusal
        if problem:
            return False, problem
        return True, lines[0][:200]
    if o.rc != 0:
        return False, f"exit {o.rc}: {' | '.join(lines)[-200:]}"
    problem = case.check(o) if case.check else None
    return (problem is None), (problem or "ok" + (f"; stderr: {' | '.join(lines)[:150]}" if lines else ""))


# ------------------------------------------------------------------------------------------ fixtures

class Fixtures:
    """Files the cases use, made once in ``root``."""

    def __init__(self, root: Path) -> None:
        from srnpose.data.depth_io import write_png16
        from srnpose.synth import frame_seed, render_frame

        self.root = root
        frame = render_frame(frame_seed(5, 0))  # the default camera (icvl, 320x240), uint16 mm
        self.depth = frame.depth_mm
        self.h, self.w = self.depth.shape
        self.joints_uvd = frame.joints_uvd
        f = root / "frames"
        f.mkdir()
        self.npy = f / "frame.npy"
        np.save(self.npy, self.depth)
        np.save(f / "stack.npy", np.stack([self.depth, render_frame(frame_seed(5, 1)).depth_mm]))
        metres = self.depth.astype(np.float32) / 1000.0
        np.save(f / "metres.npy", metres)
        nan = self.depth.astype(np.float32)
        nan[10, 10] = np.nan
        np.save(f / "nan.npy", nan)
        inf = self.depth.astype(np.float32)
        inf[5, 5] = np.inf
        np.save(f / "inf.npy", inf)
        neg = self.depth.astype(np.float32)
        neg[self.depth > 0] *= -1.0
        np.save(f / "negative.npy", neg)
        np.save(f / "stack4d.npy", self.depth[None, None])
        np.save(f / "bool.npy", self.depth > 0)
        np.save(f / "int8.npy", (self.depth // 100).astype(np.int8))
        np.save(f / "float16.npy", self.depth.astype(np.float16))
        np.save(f / "object.npy", np.array([{"depth": 1}], dtype=object), allow_pickle=True)
        np.save(f / "empty.npy", np.zeros((0, 0), np.uint16))
        np.save(f / "hwc.npy", self.depth[:, :, None])
        np.save(f / "zeros.npy", np.zeros_like(self.depth))
        np.save(f / "tiny.npy", np.full((2, 2), 500, np.uint16))
        (f / "garbage.npy").write_text("this is not numpy\n")
        png = f / "pngs"
        png.mkdir()
        for i in range(2):
            write_png16(png / f"{i:03d}.png", render_frame(frame_seed(5, i)).depth_mm)
        from PIL import Image

        Image.fromarray((self.depth // 8).astype(np.uint8)).save(f / "eight_bit.png")
        Image.fromarray(np.stack([(self.depth // 8).astype(np.uint8)] * 3, -1)).save(f / "rgb.png")
        (f / "truncated.png").write_bytes((png / "000.png").read_bytes()[:300])
        (f / "zero_bytes.png").write_bytes(b"")
        Image.fromarray((self.depth // 8).astype(np.uint8)).save(f / "photo.jpg")
        (f / "empty_dir").mkdir()
        (f / "text_dir").mkdir()
        (f / "text_dir" / "notes.txt").write_text("no frames here\n")
        self.afile = root / "a_file.txt"
        self.afile.write_text("I am a file\n")

        # a trained tiny run: last/, last.prev/, best/
        self.run = root / "run"
        done = run_cli(["train", "--data", "synth", "--steps", "4", "--out", str(self.run), "--set",
                        "train.ckpt_every=2"] + TINY)
        if done.rc != 0:
            sys.exit(f"could not train the fixture run:\n{done.err[-2000:]}")
        self.train_cmd = ["train", "--data", "synth", "--steps", "4", "--resume", "--set", "train.ckpt_every=2"] + TINY

        # community-format files
        c = root / "community"
        c.mkdir()
        rng = np.random.default_rng(0)
        for name, joints in (("nyu14", 14), ("icvl16", 16), ("nyu36", 36)):
            gt = np.concatenate([rng.uniform(100, 200, (6, joints, 2)), rng.uniform(400, 600, (6, joints, 1))], -1)
            np.savetxt(c / f"{name}_labels.txt", gt.reshape(6, -1), fmt="%.3f")
            np.savetxt(c / f"{name}_pred.txt", (gt + rng.normal(0, 2, gt.shape)).reshape(6, -1), fmt="%.3f")
        nan_pred = np.loadtxt(c / "icvl16_pred.txt")
        nan_pred[2] = np.nan
        np.savetxt(c / "icvl16_nan_pred.txt", nan_pred, fmt="%.3f")
        (c / "short_pred.txt").write_text("\n".join((c / "icvl16_pred.txt").read_text().splitlines()[:4]) + "\n")
        (c / "ragged_pred.txt").write_text((c / "icvl16_pred.txt").read_text() + "1 2 3\n")
        (c / "text_pred.txt").write_text("u v d\n" + (c / "icvl16_pred.txt").read_text())
        (c / "empty.txt").write_text("")
        self.community = c

        # configs
        g = root / "configs"
        g.mkdir()
        (g / "malformed.yaml").write_text("train:\n  lr: [0.001\n")
        (g / "list.yaml").write_text("- train\n- model\n")
        (g / "empty.yaml").write_text("")
        (g / "wrong_type.yaml").write_text("train:\n  lr: fast\n")
        (g / "section_scalar.yaml").write_text("model: 5\n")
        (g / "unknown.yaml").write_text("train:\n  learning_rate: 0.001\n")
        (g / "bad_stages.yaml").write_text("model:\n  num_stages: 0\n")
        (g / "binary.yaml").write_bytes(b"\xff\xfe\x00\x01garbage")
        (g / "a_dir.yaml").mkdir()
        self.configs = g

        # checkpoints
        k = root / "ckpts"
        k.mkdir()
        (k / "empty_dir").mkdir()
        evil_dir = k / "evil"
        evil_dir.mkdir()
        shutil.copy(self.run / "last" / "config.yaml", evil_dir / "config.yaml")
        with open(evil_dir / "model.pt", "wb") as fh:
            pickle.dump({"stem.weight": Evil()}, fh)
        garbage = k / "garbage"
        garbage.mkdir()
        shutil.copy(self.run / "last" / "config.yaml", garbage / "config.yaml")
        (garbage / "model.safetensors").write_bytes(b"\x00" * 64)
        (k / "garbage.onnx").write_bytes(b"not an onnx model")
        lone = k / "lone"
        lone.mkdir()
        shutil.copy(self.run / "last" / "model.safetensors", lone / "model.safetensors")
        noconf = k / "noconfig"
        noconf.mkdir()
        torch_weights(self.run / "last" / "model.safetensors", noconf / "model.pt")
        st = k / "noconfig_st"  # weights without config.yaml and without the config in their metadata
        st.mkdir()
        from safetensors.torch import load_file, save_file

        save_file(load_file(str(self.run / "last" / "model.safetensors")), str(st / "model.safetensors"))
        conf_only = k / "config_only"
        conf_only.mkdir()
        shutil.copy(self.run / "last" / "config.yaml", conf_only / "config.yaml")
        self.ckpts = k

        # a minimal install: onnx, onnxruntime and pyrealsense2 fail to import
        self.no_extras = root / "noextras"
        for module in ("onnx", "onnxruntime", "pyrealsense2"):
            (self.no_extras / module).mkdir(parents=True)
            (self.no_extras / module / "__init__.py").write_text("raise ImportError('minimal install (probe)')\n")
        self.minimal_env = dict(ENV, PYTHONPATH=os.pathsep.join(filter(None, [str(self.no_extras),
                                                                      ENV.get("PYTHONPATH")])))

    def copy_run(self, name: str) -> Path:
        dst = self.root / name
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(self.run, dst)
        return dst


class Evil:
    """A pickle that would run code on load: ``torch.load(weights_only=True)`` must refuse it."""

    def __reduce__(self):
        return (print, ("PROBE-PWNED",))


def torch_weights(src: Path, dst: Path) -> None:
    import torch
    from safetensors.torch import load_file

    torch.save(load_file(str(src)), dst)


def flip_byte(path: Path, offset: int = -100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def rewrite_marker(folder: Path) -> None:
    """Recompute COMPLETE as save_checkpoint does (a file swapped by someone who knows the format)."""
    from srnpose.training.checkpoint import _write_marker

    _write_marker(folder)


# ------------------------------------------------------------------------------------------ checks

def has_files(*paths: Path) -> Callable[[Outcome], str | None]:
    def check(o: Outcome) -> str | None:
        missing = [str(p) for p in paths if not p.exists()]
        return f"missing {missing}" if missing else None
    return check


def stdout_has(pattern: str) -> Callable[[Outcome], str | None]:
    def check(o: Outcome) -> str | None:
        return None if re.search(pattern, o.out) else f"stdout lacks /{pattern}/: {o.out.strip()[-160:]}"
    return check


def stderr_has(pattern: str, exactly_one_line: bool = False) -> Callable[[Outcome], str | None]:
    def check(o: Outcome) -> str | None:
        hits = [ln for ln in o.err_lines if re.search(pattern, ln)]
        if not hits:
            return f"no stderr line /{pattern}/ (silent); stdout: {o.out.strip()[-120:]}"
        if exactly_one_line and len(hits) != 1:
            return f"{len(hits)} stderr lines /{pattern}/, expected one"
        return None
    return check


def api_warned(*words: str) -> Callable[[Outcome], str | None]:
    def check(o: Outcome) -> str | None:
        r = api_result(o) or {}
        if not any(all(w in msg for w in words) for msg in r.get("warnings", [])):
            return f"no warning naming {words} (silent): warnings {r.get('warnings')}"
        return None
    return check


def both(*checks) -> Callable[[Outcome], str | None]:
    def check(o: Outcome) -> str | None:
        for c in checks:
            problem = c(o)
            if problem:
                return problem
        return None
    return check


# ------------------------------------------------------------------------------------------ kills

def _wait_step(run: Path, step: int, proc: subprocess.Popen, timeout: float = 180.0) -> bool:
    import csv

    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            with open(run / "metrics.csv", newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("split") == "train"]
            if rows and int(rows[-1]["step"]) >= step:
                return True
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    return False


def metrics_once(run: Path, steps: int) -> Callable[[Outcome], str | None]:
    """metrics.csv holds the training steps 1..steps, each once (no row from before a restart repeated)."""
    def check(o: Outcome) -> str | None:
        import csv

        with open(run / "metrics.csv", newline="") as f:
            got = [int(row["step"]) for row in csv.DictReader(f) if row["split"] == "train"]
        if got != list(range(1, steps + 1)):
            return f"metrics.csv train steps {got[:30]}{'...' if len(got) > 30 else ''}"
        return None
    return check


def kill_driver(sig: int, then_rerun: bool, wait_tmp: bool = False, at_step: int = 5) -> Callable[[Case], Outcome]:
    def drive(case: Case) -> Outcome:
        run = case.extra["run"]
        argv = case.extra["argv"]
        proc = subprocess.Popen([sys.executable, "-m", "srnpose", *argv], env=ENV, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        if wait_tmp:
            deadline = time.time() + 180
            while time.time() < deadline and proc.poll() is None and not (run / "last.tmp").exists():
                time.sleep(0.001)
        else:
            _wait_step(run, at_step, proc)
        if proc.poll() is None:
            if sig == signal.SIGKILL:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=120)
        first = Outcome(proc.returncode, out, err)
        if not then_rerun:
            return first
        case.extra["first"] = first
        return run_cli(argv)
    return drive


def stopped_cleanly(run: Path) -> Callable[[Outcome], str | None]:
    """A polite stop: exit 130, last/ saved and verified, the last line says 'interrupted'."""
    def check(o: Outcome) -> str | None:
        from srnpose.training.checkpoint import verify_checkpoint_dir

        if o.rc != 130:
            return f"exit {o.rc}, expected 130"
        if not re.search(r"saved .* before stopping", o.err):
            return f"did not say it saved last/: {' | '.join(o.err_lines)[-160:]}"
        if not o.err_lines[-1].endswith("interrupted"):
            return f"last line: {o.err_lines[-1][:120]}"
        if not (run / "last" / "COMPLETE").is_file() or verify_checkpoint_dir(run / "last"):
            return "last/ is not a verified checkpoint"
        return None
    return check


# ------------------------------------------------------------------------------------------ the table

def build_cases(fx: Fixtures) -> list[Case]:
    f, r, t = fx.root / "frames", str(fx.run), fx.root
    c, g, k = fx.community, fx.configs, fx.ckpts
    out = lambda name: str(t / "outs" / name)  # noqa: E731 - a fresh output folder per case
    pred = lambda inp, *more: ["predict", str(inp), "--checkpoint", r, "--camera", "icvl",  # noqa: E731
                               "--no-overlays", "--out", out(Path(str(inp)).stem), *more]
    train = lambda name, *more: ["train", "--data", "synth", "--steps", "2", "--out", str(t / "truns" / name),  # noqa: E731
                                 *TINY, *more]
    ev = lambda *more: ["evaluate", "--predictions", f"A={c / 'icvl16_pred.txt'}", "--labels",  # noqa: E731
                        str(c / "icvl16_labels.txt"), *more]
    cases: list[Case] = []
    add = cases.append

    # ---------------------------------------------------------------- frames (predict)
    for name, file, expect, names in [
        ("uint16 .npy frame", "frame.npy", "ok", ()),
        ("(T, H, W) stack", "stack.npy", "ok", ()),
        ("folder of 16-bit PNGs", "pngs", "ok", ()),
        ("NaN in a float frame", "nan.npy", "error", ("nan.npy", "NaN")),
        ("inf in a float frame", "inf.npy", "error", ("inf.npy",)),
        ("negative depth values", "negative.npy", "error", ("negative.npy", "negative")),
        ("4-D array", "stack4d.npy", "error", ("stack4d.npy",)),
        ("bool array", "bool.npy", "error", ("bool.npy", "bool")),
        ("int8 array", "int8.npy", "error", ("int8.npy", "int8")),
        ("float16 array", "float16.npy", "error", ("float16.npy",)),
        ("pickled object .npy", "object.npy", "error", ("object.npy",)),
        ("empty (0, 0) array", "empty.npy", "error", ("empty.npy",)),
        ("(H, W, 1) array", "hwc.npy", "error", ("hwc.npy",)),
        ("text file named .npy", "garbage.npy", "error", ("garbage.npy",)),
        ("8-bit PNG", "eight_bit.png", "error", ("eight_bit.png", "16-bit")),
        ("RGB PNG", "rgb.png", "error", ("rgb.png",)),
        ("truncated PNG", "truncated.png", "error", ("truncated.png",)),
        ("zero-byte PNG", "zero_bytes.png", "error", ("zero_bytes.png",)),
        ("JPEG input", "photo.jpg", "error", ("photo.jpg",)),
        ("empty folder", "empty_dir", "error", ("empty_dir",)),
        ("folder without PNGs", "text_dir", "error", ("text_dir",)),
        ("missing input", "nowhere.npy", "error", ("nowhere.npy",)),
        ("2x2 frame for a 320x240 camera", "tiny.npy", "error", ("tiny.npy", "2x2")),
    ]:
        check = has_files(Path(out(Path(file).stem)) / "predictions.jsonl") if expect == "ok" else None
        add(Case("frames", name, pred(f / file), expect=expect, names=names, check=check))
    add(Case("frames", "all-zero frame: no hand, not an error", pred(f / "zeros.npy"), expect="ok",
             check=stdout_has(r"1 frames, hand found in 0")))

    # ---------------------------------------------------------------- flags
    frame = f / "frame.npy"
    for name, argv, names in [
        ("predict without a camera", ["predict", str(frame), "--checkpoint", r, "--out", out("nocam")],
         ("--camera", "--intrinsics")),
        ("unknown --camera", pred(frame)[:4] + ["--camera", "kinect3", "--out", out("k3")], ("--camera", "kinect3")),
        ("--intrinsics with 3 numbers", ["predict", str(frame), "--checkpoint", r, "--intrinsics", "240,240,160",
                                         "--out", out("i3")], ("--intrinsics",)),
        ("--intrinsics not numbers", ["predict", str(frame), "--checkpoint", r, "--intrinsics", "a,b,c,d",
                                      "--out", out("iabc")], ("--intrinsics",)),
        ("--intrinsics fx=0", ["predict", str(frame), "--checkpoint", r, "--intrinsics", "0,240,160,120",
                               "--out", out("i0")], ("--intrinsics", "fx")),
        ("--depth-unit 0", pred(frame, "--depth-unit", "0"), ("--depth-unit",)),
        ("--depth-unit nan", pred(frame, "--depth-unit", "nan"), ("--depth-unit",)),
        ("--depth-unit abc", pred(frame, "--depth-unit", "abc"), ("--depth-unit",)),
        ("--fps 0 with --smooth", pred(frame, "--smooth", "--fps", "0"), ("--fps",)),
        ("--backend unknown", pred(frame, "--backend", "tensorrt"), ("--backend",)),
        ("train --steps 0", train("s0", "--steps", "0"), ("--steps",)),
        ("train --steps abc", train("sabc", "--steps", "abc"), ("--steps",)),
        ("train --epochs -1", ["train", "--data", "synth", "--epochs", "-1", "--out", str(t / "truns" / "em1")] + TINY,
         ("--epochs",)),
        ("train --minutes nan", ["train", "--data", "synth", "--minutes", "nan", "--out", str(t / "truns" / "mn")]
         + TINY, ("--minutes",)),
        ("train --steps and --minutes", train("sm", "--minutes", "1"), ("--minutes",)),
        ("train --workers -1", train("w", "--workers", "-1"), ("--workers",)),
        ("train --set without =", train("noeq", "--set", "train.lr"), ("train.lr",)),
        ("train --set batch_size=0", train("bs0", "--set", "train.batch_size=0"), ("train.batch_size",)),
        ("train --set lr=-1", train("lrm", "--set", "train.lr=-1"), ("train.lr",)),
        ("train --set model.num_stages=0", train("ns0", "--set", "model.num_stages=0"), ("num_stages",)),
        ("train --set model.input_size=30", train("is30", "--set", "model.input_size=30"), ("input_size",)),
        ("train --set data.cube_mm=-5", train("cm", "--set", "data.cube_mm=-5"), ("data.cube_mm",)),
        ("train --extend without --resume", train("ext", "--extend"), ("--extend",)),
        ("train --preset unknown", ["train", "--data", "synth", "--preset", "huge", "--out", out("ph")], ("--preset",)),
        ("evaluate --refine 99", ["evaluate", "--checkpoint", r, "--data", "synth", "--refine", "99",
                                  "--out", out("ref")], ("--refine",)),
        ("evaluate --checkpoint without --data", ["evaluate", "--checkpoint", r, "--out", out("nod")], ("--data",)),
        ("evaluate --center unknown", ["evaluate", "--checkpoint", r, "--data", "synth", "--center", "hand",
                                       "--out", out("ce")], ("--center",)),
        ("benchmark --frames 0", ["benchmark", "--frames", "0"], ("--frames",)),
        ("benchmark --backends foo", ["benchmark", "--backends", "foo"], ("--backends", "foo")),
        ("export --test-frames 0", ["export", "--checkpoint", r, "--out", out("x.onnx"), "--test-frames", "0"],
         ("--test-frames",)),
        ("synth --frames 0", ["synth", "--out", out("s0"), "--frames", "0"], ("--frames",)),
        ("synth --resolution 0x0", ["synth", "--out", out("sr"), "--frames", "1", "--resolution", "0x0"],
         ("--resolution",)),
        ("synth --workers 0", ["synth", "--out", out("sw"), "--frames", "1", "--workers", "0"], ("--workers",)),
        ("demo --minutes 0", ["demo", "--minutes", "0", "--out", out("d0")], ("--minutes",)),
        ("demo --test-frames 0", ["demo", "--test-frames", "0", "--out", out("dt")], ("--test-frames",)),
        ("live --frames 0", ["live", "--checkpoint", r, "--frames", "0"], ("--frames",)),
        ("info --preset unknown", ["info", "--preset", "huge"], ("huge",)),
        ("info --set unknown field", ["info", "--set", "depth=3"], ("depth",)),
        ("a misspelt command", ["trian", "--out", out("m")], ("trian",)),
    ]:
        add(Case("flags", name, argv, names=names))
    for name, argv, names in [
        ("--intrinsics focal length 1e-30", ["predict", str(frame), "--checkpoint", r, "--intrinsics",
                                             "1e-30,1e-30,160,120", "--out", out("ie30")], ("--intrinsics", "1e-30")),
        ("--fps 0 (the GIF's rate)", pred(f / "stack.npy", "--fps", "0"), ("--fps",)),
        ("export --camera unknown", ["export", "--checkpoint", r, "--out", out("xc.onnx"), "--camera", "kinect3"],
         ("--camera", "kinect3")),
        ("live --replay without --camera", ["live", "--replay", str(f / "pngs"), "--checkpoint", r], ("--camera",)),
    ]:
        add(Case("flags", name, argv, names=names))
    kept = t / "outs" / "kept.onnx"
    add(Case("flags", "export --crops missing: the existing --out is left as it was",
             ["export", "--checkpoint", r, "--out", str(kept), "--crops", str(t / "no_crops")], names=("--crops",),
             check=lambda o: None if kept.read_text() == "the user's file\n" else "--out was overwritten",
             extra={"prepare": lambda: kept.write_text("the user's file\n")}))
    add(Case("flags", "predict --intrinsics with a negative fx, given apart: refused, naming --mirrored",
             ["predict", str(frame), "--checkpoint", r, "--intrinsics", "-241.42,241.42,160,120", "--no-overlays",
              "--out", out("negf")], names=("--intrinsics", "--mirrored")))

    # ---------------------------------------------------------------- output paths
    file_ = str(fx.afile)
    under = str(fx.afile / "sub")
    for name, argv, names in [
        ("predict --out is a file", ["predict", str(frame), "--checkpoint", r, "--camera", "icvl", "--out", file_],
         ("--out", "a_file.txt")),
        ("predict --out under a file", ["predict", str(frame), "--checkpoint", r, "--camera", "icvl", "--out", under],
         ("--out",)),
        ("predict --out unwritable", ["predict", str(frame), "--checkpoint", r, "--camera", "icvl", "--out",
                                      UNWRITABLE], ("--out",)),
        ("train --out is a file", ["train", "--data", "synth", "--steps", "2", "--out", file_] + TINY, ("--out",)),
        ("train --out unwritable", ["train", "--data", "synth", "--steps", "2", "--out", UNWRITABLE] + TINY,
         ("--out",)),
        ("evaluate --predictions --out is a file", ev("--dataset", "icvl", "--out", file_), ("--out",)),
        ("evaluate --predictions --out unwritable", ev("--dataset", "icvl", "--out", UNWRITABLE), ("--out",)),
        ("evaluate --checkpoint --out is a file", ["evaluate", "--checkpoint", r, "--data", "synth", "--out", file_],
         ("--out",)),
        ("evaluate --checkpoint --out unwritable", ["evaluate", "--checkpoint", r, "--data", "synth", "--out",
                                                    UNWRITABLE], ("--out",)),
        ("export --out is a folder", ["export", "--checkpoint", r, "--out", str(t / "frames")], ("--out",)),
        ("export --out unwritable", ["export", "--checkpoint", r, "--out", UNWRITABLE + ".onnx"], ("--out",)),
        ("export --out not .onnx", ["export", "--checkpoint", r, "--out", out("model.txt")], ("--out",)),
        ("benchmark --json is a folder", ["benchmark", "--frames", "1", "--json", str(t / "frames")], ("--json",)),
        ("benchmark --json under a file", ["benchmark", "--frames", "1", "--json", under + ".json"], ("--json",)),
        ("benchmark --json unwritable", ["benchmark", "--frames", "1", "--json", UNWRITABLE + ".json"], ("--json",)),
        ("demo --out is a file", ["demo", "--minutes", "0.5", "--out", file_], ("--out",)),
        ("demo --out unwritable", ["demo", "--minutes", "0.5", "--out", UNWRITABLE], ("--out",)),
        ("synth --out is a file", ["synth", "--out", file_, "--frames", "1"], ("--out",)),
        ("synth --out unwritable", ["synth", "--out", UNWRITABLE, "--frames", "1"], ("--out",)),
        ("synth --preview is a folder", ["synth", "--out", out("sp"), "--frames", "1", "--preview", str(t)],
         ("--preview",)),
        ("live --jsonl is a folder", ["live", "--replay", str(f / "pngs"), "--camera", "icvl", "--checkpoint", r,
                                      "--backend", "torch", "--jsonl", str(t / "frames")], ("--jsonl",)),
    ]:
        add(Case("output paths", name, argv, names=names))
    stale = t / "stale_synth"
    add(Case("output paths", "synth over a larger earlier run", ["synth", "--out", str(stale), "--frames", "2"],
             names=("--out", "--overwrite"), extra={"prepare": lambda: run_cli(["synth", "--out", str(stale),
                                                                                "--frames", "5"])}))
    stale2 = t / "stale_synth2"
    add(Case("output paths", "synth --overwrite over a larger run", ["synth", "--out", str(stale2), "--frames", "2",
                                                                     "--overwrite"], expect="ok",
             check=lambda o: None if sorted(p.name for p in (stale2 / "depth").iterdir()) == ["000000.png", "000001.png"]
             else f"depth/ holds {len(list((stale2 / 'depth').iterdir()))} files for 2 labels",
             extra={"prepare": lambda: run_cli(["synth", "--out", str(stale2), "--frames", "5"])}))

    gone = t / "nowhere_run"
    add(Case("output paths", "evaluate a missing checkpoint (default --out RUN/eval): nothing created",
             ["evaluate", "--checkpoint", str(gone), "--data", "synth"], names=("nowhere_run",),
             check=lambda o: f"created {gone}" if gone.exists() else None))

    # ---------------------------------------------------------------- configs
    for name, cfg, names in [
        ("malformed YAML", "malformed.yaml", ("malformed.yaml", "line")),
        ("YAML list, not a mapping", "list.yaml", ("list.yaml",)),
        ("wrong value type", "wrong_type.yaml", ("train.lr",)),
        ("a section that is a number", "section_scalar.yaml", ("model",)),
        ("unknown key", "unknown.yaml", ("learning_rate",)),
        ("num_stages: 0", "bad_stages.yaml", ("num_stages",)),
        ("binary file", "binary.yaml", ("binary.yaml",)),
        ("a folder as config", "a_dir.yaml", ("a_dir.yaml",)),
        ("missing config file", "nowhere.yaml", ("nowhere.yaml",)),
    ]:
        add(Case("configs", f"train --config: {name}", train(f"cfg_{cfg}", "--config", str(g / cfg)), names=names))
    add(Case("configs", "train --config: empty file (the preset as is)", train("cfg_empty", "--config",
                                                                              str(g / "empty.yaml")), expect="ok",
             check=stdout_has("trained to step 2")))
    add(Case("configs", "info --config malformed", ["info", "--config", str(g / "malformed.yaml")],
             names=("malformed.yaml",)))
    add(Case("configs", "info --config a run's config.yaml", ["info", "--config", str(fx.run / "config.yaml")],
             expect="ok", check=stdout_has("parameters")))
    add(Case("configs", "evaluate --predictions: unknown --dataset", ev("--dataset", "kinect9", "--out", out("ud")),
             names=("kinect9",)))

    # ---------------------------------------------------------------- checkpoints
    frame_args = lambda ck, name: ["predict", str(frame), "--checkpoint", str(ck), "--camera", "icvl",  # noqa: E731
                                   "--no-overlays", "--out", out(name)]
    trunc = fx.copy_run("run_truncated")
    for sub in ("best", "last", "last.prev"):
        w = trunc / sub / "model.safetensors"
        w.write_bytes(w.read_bytes()[:1000])
    flipped = fx.copy_run("run_flipped")
    flip_byte(flipped / "best" / "model.safetensors")
    for name, ck, names, expect in [
        ("missing checkpoint", t / "nowhere", ("nowhere",), "error"),
        ("empty folder", k / "empty_dir", ("empty_dir",), "error"),
        ("truncated weights everywhere", trunc, ("run_truncated",), "error"),
        ("a flipped byte in best/ (last/ is fine)", flipped, (), "ok"),
        ("crafted pickle .pt", k / "evil" / "model.pt", ("model.pt",), "error"),
        ("garbage .safetensors", k / "garbage" / "model.safetensors", ("model.safetensors",), "error"),
        ("garbage .onnx", k / "garbage.onnx", ("garbage.onnx",), "error"),
        ("weights alone (config in metadata)", k / "lone" / "model.safetensors", (), "ok"),
        (".pt weights without config", k / "noconfig" / "model.pt", ("model.pt",), "error"),
        ("a data folder as checkpoint", t / "frames", ("frames",), "error"),
        ("weights without config.yaml (none in metadata)", k / "noconfig_st", ("config.yaml",), "error"),
        ("a folder with config.yaml only", k / "config_only", ("model.safetensors",), "error"),
    ]:
        case = Case("checkpoints", f"predict: {name}", frame_args(ck, f"ck_{Path(ck).name}"), expect=expect,
                    names=names)
        if "pickle" in name:
            case.check = None
            case.extra["no_stdout"] = "PROBE-PWNED"
        add(case)
    add(Case("checkpoints", "evaluate --checkpoint: crafted pickle", ["evaluate", "--checkpoint",
                                                                        str(k / "evil" / "model.pt"), "--data",
                                                                        "synth", "--out", out("ev_evil")],
             names=("model.pt",)))
    evil_run = fx.copy_run("run_evil_state")
    with open(evil_run / "last" / "train_state.pt", "wb") as fh:
        pickle.dump({"step": Evil()}, fh)
    rewrite_marker(evil_run / "last")
    shutil.rmtree(evil_run / "last.prev")
    add(Case("checkpoints", "train --resume: crafted train_state.pt (checksums redone)",
             fx.train_cmd + ["--out", str(evil_run)], names=("train_state.pt",)))
    add(Case("checkpoints", "train without --resume on a finished run", ["train", "--data", "synth", "--steps", "4",
                                                                         "--out", r] + TINY, names=("--out", "--resume")))
    add(Case("checkpoints", "train --resume with a conflicting flag", fx.train_cmd + ["--out", r, "--set",
                                                                                     "train.lr=0.5"],
             names=("train.lr", "0.5")))
    add(Case("checkpoints", "train --resume with a longer --steps, no --extend",
             [a if a != "4" else "8" for a in fx.train_cmd] + ["--out", r], names=("--extend",)))
    locked = fx.copy_run("run_locked")
    add(Case("checkpoints", "train --resume on a run another process trains", fx.train_cmd + ["--out", str(locked)],
             names=("--out", "PID"), extra={"lock": locked / ".lock"}))
    icvl_run = fx.copy_run("run_wrong_data")
    add(Case("checkpoints", "evaluate a synth checkpoint on ICVL data", ["evaluate", "--checkpoint", str(icvl_run),
                                                                         "--data", f"icvl:{t / 'nowhere'}", "--out",
                                                                         out("wd")], names=("nowhere",)))

    add(Case("checkpoints", "evaluate: truncated weights everywhere", ["evaluate", "--checkpoint", str(trunc), "--data",
                                                                        "synth", "--out", out("ev_trunc")],
             names=("run_truncated", "checksum")))

    # ---------------------------------------------------------------- kills
    long_cmd = ["train", "--data", "synth", "--steps", "400", "--resume", "--set", "train.ckpt_every=3"] + TINY
    for name, sig, rerun, tmp in [("SIGTERM mid-run: saves last/, exits 130", signal.SIGTERM, False, False),
                                  ("SIGINT (Ctrl-C) mid-run: saves last/, exits 130", signal.SIGINT, False, False)]:
        run = t / "kills" / name.split()[0]
        add(Case("kills", name, None, expect="ok", run=kill_driver(sig, rerun, tmp),
                 extra={"run": run, "argv": long_cmd + ["--out", str(run)]}, check=stopped_cleanly(run)))
    short_cmd = ["train", "--data", "synth", "--steps", "12", "--resume", "--set", "train.ckpt_every=3"] + TINY
    for name, tmp in [("SIGKILL mid-run, same command again", False), ("SIGKILL while last.tmp is written, again", True)]:
        run = t / "kills" / ("kill9" + ("_tmp" if tmp else ""))
        add(Case("kills", name, None, expect="ok", run=kill_driver(signal.SIGKILL, True, tmp),
                 extra={"run": run, "argv": short_cmd + ["--out", str(run)]},
                 check=both(stdout_has("trained to step 12"))))
    early = t / "kills" / "kill9_before_ckpt"
    early_cmd = ["train", "--data", "synth", "--steps", "12", "--resume", "--set", "train.ckpt_every=1000"] + TINY
    add(Case("kills", "SIGKILL before the first checkpoint, again: metrics.csv has each step once", None,
             expect="ok", run=kill_driver(signal.SIGKILL, True, False, at_step=3),
             extra={"run": early, "argv": early_cmd + ["--out", str(early)]},
             check=both(stdout_has("trained to step 12"), metrics_once(early, 12))))
    corrupt_last = fx.copy_run("run_corrupt_last")
    flip_byte(corrupt_last / "last" / "model.safetensors")
    add(Case("kills", "last/ corrupt, last.prev/ fine: --resume falls back", fx.train_cmd + ["--out", str(corrupt_last)],
             expect="ok", check=both(stdout_has("trained to step 4"),
                                     stderr_has(r"warning: checkpoint .*last: .*trying the previous one"))))
    corrupt_all = fx.copy_run("run_corrupt_all")
    for sub in ("last", "last.prev"):
        flip_byte(corrupt_all / sub / "model.safetensors")
    add(Case("kills", "every checkpoint corrupt: --resume must not start afresh over it",
             fx.train_cmd + ["--out", str(corrupt_all)], names=("--out", "run_corrupt_all")))
    corrupt_fresh = fx.copy_run("run_corrupt_fresh")
    for sub in ("last", "last.prev"):
        flip_byte(corrupt_fresh / sub / "model.safetensors")
    add(Case("kills", "every checkpoint corrupt: a fresh start (no --resume) must not overwrite it",
             ["train", "--data", "synth", "--steps", "4", "--out", str(corrupt_fresh)] + TINY,
             names=("--out", "run_corrupt_fresh")))
    no_metrics = fx.copy_run("run_no_metrics")
    (no_metrics / "metrics.csv").unlink()
    add(Case("kills", "metrics.csv deleted: --resume still continues", [a if a != "4" else "6" for a in fx.train_cmd]
             + ["--extend", "--out", str(no_metrics)], expect="ok", check=stdout_has("trained to step 6")))

    # ---------------------------------------------------------------- api
    load = f"est = srnpose.load({r!r})\ndepth = np.load({str(frame)!r})"
    for name, body, expect, names, check in [
        ("load a missing path", "srnpose.load('/nowhere/run')", "error", ("/nowhere/run",), None),
        ("load with an unknown backend", f"srnpose.load({r!r}, backend='tensorrt')", "error", ("tensorrt",), None),
        ("load a crafted pickle", f"srnpose.load({str(k / 'evil' / 'model.pt')!r})", "error", ("model.pt",), None),
        ("predict without a camera", f"{load}\nest.predict(depth)", "error", ("intrinsics", "camera"), None),
        ("predict an unknown camera", f"{load}\nest.predict(depth, camera='kinect3')", "error", ("kinect3",), None),
        ("predict with 2 intrinsics", f"{load}\nest.predict(depth, intrinsics='240,240')", "error", ("intrinsics",),
         None),
        ("predict depth_unit_mm=0", f"{load}\nest.predict(depth, camera='icvl', depth_unit_mm=0)", "error",
         ("depth unit",), None),
        ("predict a 3-D array", f"{load}\nest.predict(depth[None], camera='icvl')", "error", ("shape",), None),
        ("predict None", f"{load}\nest.predict(None, camera='icvl')", "error", ("shape",), None),
        ("predict a string", f"{load}\nest.predict('frame.png', camera='icvl')", "error", (), None),
        ("predict a 2x2 list", f"{load}\nest.predict([[1, 2], [3, 4]], camera='icvl')", "error", ("2x2",), None),
        ("predict NaN", f"{load}\nd = depth.astype(np.float32); d[0, 0] = np.nan\nest.predict(d, camera='icvl')",
         "error", ("NaN",), None),
        ("predict negative depth", f"{load}\nest.predict(-depth.astype(np.float32), camera='icvl')", "error",
         ("negative",), None),
        ("predict a bad center_uvd", f"{load}\nest.predict(depth, camera='icvl', center_uvd=(1, 2))", "error",
         ("center_uvd",), None),
        ("predict a center_uvd outside the frame", f"{load}\nest.predict(depth, camera='icvl', "
         "center_uvd=(5000, 5000, 500))", "error", ("center_uvd",), None),
        ("predict a center_uvd 50 m away", f"{load}\nres = est.predict(depth, camera='icvl', "
         "center_uvd=(160, 120, 50000))\nassert not res.hand_found, 'hand_found=True for a centre 50 m away'",
         "error", ("center_uvd",), None),
        ("predict_batch of a 2-D array", f"{load}\nest.predict_batch(depth, camera='icvl')", "error", ("(B, H, W)",),
         None),
        ("predict a torch tensor", f"{load}\nimport torch\nres = est.predict(torch.from_numpy(depth.astype(np.int32)),"
                                   " camera='icvl')\nassert res.hand_found", "ok", (), None),
        ("predict metres (float < 10)", f"{load}\nres = est.predict(depth.astype(np.float32) / 1000, camera='icvl')",
         "ok", (), api_warned("metres", "depth_unit_mm=1000")),
        ("predict mm with depth_unit_mm=1000", f"{load}\nres = est.predict(depth, camera='icvl', depth_unit_mm=1000)",
         "ok", (), api_warned("depth_unit_mm")),
        ("evaluate_files: 14-joint files as ICVL", "from srnpose.evaluation.protocol import evaluate_files\n"
         f"evaluate_files({{'A': {str(c / 'nyu14_pred.txt')!r}}}, {str(c / 'nyu14_labels.txt')!r}, 'icvl')", "error",
         ("14", "16", "icvl"), None),
        ("train into an unwritable folder", "from srnpose.training.run_config import build_config\nfrom srnpose.training.loop import "
         "train\ncfg = build_config('tiny', None, ['data.spec=synth', 'train.steps=1'])\n"
         f"train(cfg, {UNWRITABLE!r}, progress=False)", "error", (UNWRITABLE,), None),
        ("load_checkpoint of a data folder", f"from srnpose.training.checkpoint import load_checkpoint\n"
         f"load_checkpoint({str(t / 'frames')!r})", "error", ("frames",), None),
    ]:
        add(Case("api", name, code=body, expect=expect, names=names, check=check))

    # ---------------------------------------------------------------- install (no onnx, onnxruntime, pyrealsense2)
    menv = {"env": fx.minimal_env}
    for name, argv, names in [
        ("predict --backend onnxruntime", pred(frame, "--backend", "onnxruntime"), ("srnpose[onnx]",)),
        ("predict an exported .onnx", ["predict", str(frame), "--checkpoint", str(k / "garbage.onnx"), "--camera", "icvl",
                                       "--out", out("monnx")], ("srnpose[onnx]",)),
        ("export", ["export", "--checkpoint", r, "--out", out("min.onnx")], ("srnpose[onnx]",)),
        ("benchmark --backends onnxruntime", ["benchmark", "--checkpoint", r, "--backends", "onnxruntime",
                                              "--frames", "2"], ("srnpose[onnx]",)),
        ("live from a RealSense", ["live", "--checkpoint", r, "--backend", "torch", "--frames", "1"],
         ("srnpose[realsense]",)),
    ]:
        add(Case("install", name, argv, names=names, extra=dict(menv)))
    add(Case("install", "predict with torch", pred(frame), expect="ok", check=stdout_has("1 frames"), extra=dict(menv)))
    add(Case("install", "benchmark with the default backends: torch only, said", ["benchmark", "--checkpoint", r,
                                                                                 "--frames", "2", "--warmup", "0"],
             expect="ok", check=both(stdout_has("torch"), stderr_has("not installed.*srnpose\\[onnx\\]")),
             extra=dict(menv)))
    add(Case("install", "api: load(backend='onnxruntime')", code=f"srnpose.load({r!r}, backend='onnxruntime')",
             names=("srnpose[onnx]",), extra=dict(menv)))
    add(Case("install", "api: load and predict with torch", code=f"{load}\nres = est.predict(depth, camera='icvl')",
             expect="ok", extra=dict(menv)))

    # ---------------------------------------------------------------- plausibility
    add(Case("plausibility", "predict: depth in metres (float frames < 10)", pred(f / "metres.npy"), expect="ok",
             check=stderr_has(r"^srnpose predict: warning: .*metres.*--depth-unit 1000", exactly_one_line=True)))
    add(Case("plausibility", "predict: mm frames with --depth-unit 1000", pred(frame, "--depth-unit", "1000"),
             expect="ok", check=stderr_has(r"^srnpose predict: warning: .*--depth-unit", exactly_one_line=True)))
    add(Case("plausibility", "predict: mm frames (no warning)", pred(f / "stack.npy"), expect="ok",
             check=lambda o: "warning" in o.err and "unexpected warning: " + o.err.strip()[:120] or None))
    add(Case("plausibility", "predict: a 320x240 frame with the kinect2 preset",
             ["predict", str(frame), "--checkpoint", r, "--camera", "kinect2", "--out", out("k2")],
             names=("frame.npy", "kinect2")))
    add(Case("plausibility", "predict: intrinsics for 640x480 on a 320x240 frame",
             ["predict", str(frame), "--checkpoint", r, "--intrinsics", "475,475,400,300", "--out", out("i640")],
             names=("frame.npy", "principal point")))
    add(Case("plausibility", "evaluate: 14-joint files scored as ICVL (16)",
             ["evaluate", "--predictions", f"A={c / 'nyu14_pred.txt'}", "--labels", str(c / "nyu14_labels.txt"),
              "--dataset", "icvl", "--out", out("e14")], names=("--dataset", "14", "16")))
    add(Case("plausibility", "evaluate: 16-joint files scored as NYU (14)",
             ["evaluate", "--predictions", f"A={c / 'icvl16_pred.txt'}", "--labels", str(c / "icvl16_labels.txt"),
              "--dataset", "nyu", "--out", out("e16")], names=("--dataset", "16", "14")))
    add(Case("plausibility", "evaluate: NYU's 36-joint files as nyu", ["evaluate", "--predictions",
                                                                        f"A={c / 'nyu36_pred.txt'}", "--labels",
                                                                        str(c / "nyu36_labels.txt"), "--dataset",
                                                                        "nyu", "--out", out("e36")],
             expect="ok", check=stdout_has("36 joints")))
    add(Case("plausibility", "evaluate: right files, right dataset", ev("--dataset", "icvl", "--out", out("eok")),
             expect="ok", check=has_files(Path(out("eok")) / "report.json")))
    add(Case("plausibility", "evaluate: predictions with fewer frames than labels",
             ["evaluate", "--predictions", f"A={c / 'short_pred.txt'}", "--labels", str(c / "icvl16_labels.txt"),
              "--dataset", "icvl", "--out", out("es")], names=("short_pred.txt", "4", "6")))
    add(Case("plausibility", "evaluate: a ragged prediction file",
             ["evaluate", "--predictions", f"A={c / 'ragged_pred.txt'}", "--labels", str(c / "icvl16_labels.txt"),
              "--dataset", "icvl", "--out", out("er")], names=("ragged_pred.txt", "line 7")))
    add(Case("plausibility", "evaluate: a header line in a prediction file",
             ["evaluate", "--predictions", f"A={c / 'text_pred.txt'}", "--labels", str(c / "icvl16_labels.txt"),
              "--dataset", "icvl", "--out", out("et")], names=("text_pred.txt", "line 1")))
    add(Case("plausibility", "evaluate: an empty label file",
             ["evaluate", "--predictions", f"A={c / 'icvl16_pred.txt'}", "--labels", str(c / "empty.txt"),
              "--dataset", "icvl", "--out", out("ee")], names=("empty.txt",)))
    add(Case("plausibility", "evaluate: srnpose's own predictions.txt with 'nan' rows (no hand)",
             ["evaluate", "--predictions", f"A={c / 'icvl16_nan_pred.txt'}", "--labels", str(c / "icvl16_labels.txt"),
              "--dataset", "icvl", "--out", out("en")], names=("icvl16_nan_pred.txt", "line 3")))
    return cases


# ------------------------------------------------------------------------------------------ main

def run_case(case: Case) -> Outcome:
    prepare = case.extra.get("prepare")
    if prepare is not None:
        prepare()
    if case.run is not None:
        return case.run(case)
    env = case.extra.get("env")
    if case.code is not None:
        return run_api(case.code, case.timeout, env)
    lock = case.extra.get("lock")
    if lock is not None:  # another "training" holds the run's lock while the case runs
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            return run_cli(case.argv, case.timeout, env=env)
        finally:
            os.close(fd)
    return run_cli(case.argv, case.timeout, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", action="append", help="run only these families (repeatable)")
    parser.add_argument("--match", help="run only the cases whose name contains this text")
    parser.add_argument("--json", metavar="FILE", help="write every case's outcome as JSON")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temporary folder)")
    args = parser.parse_args()

    holder = None if args.keep else tempfile.TemporaryDirectory(prefix="srnpose_probe_")
    root = Path(args.keep or holder.name)
    if root.exists() and args.keep:
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "outs").mkdir()
    t0 = time.perf_counter()
    fx = Fixtures(root)
    cases = build_cases(fx)
    if args.family:
        cases = [c for c in cases if c.family in args.family]
    if args.match:
        cases = [c for c in cases if args.match in c.name]
    rows = []
    for i, case in enumerate(cases, 1):
        o = run_case(case)
        clean, why = classify(case, o)
        leaked = case.extra.get("no_stdout")
        if leaked and leaked in o.out + o.err:
            clean, why = False, "the pickle RAN CODE on load"
        rows.append({"family": case.family, "case": case.name, "expect": case.expect, "clean": clean, "detail": why,
                     "exit": o.rc})
        print(f"{i:>3} {'clean' if clean else 'NOT  '} {case.family:<13} {case.name[:58]:<58} {why[:140]}", flush=True)
    print()
    families = list(dict.fromkeys(r["family"] for r in rows))
    print(f"{'family':<14} {'cases':>5} {'clean':>5}")
    for fam in families:
        sub = [r for r in rows if r["family"] == fam]
        print(f"{fam:<14} {len(sub):>5} {sum(r['clean'] for r in sub):>5}")
    print(f"{'all':<14} {len(rows):>5} {sum(r['clean'] for r in rows):>5}   ({time.perf_counter() - t0:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
        print(f"wrote {args.json}")
    if holder is not None:
        holder.cleanup()


if __name__ == "__main__":
    main()
