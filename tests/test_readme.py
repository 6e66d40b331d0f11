"""The README is a user's guide: every ```python and ```bash example in it runs as written.

The examples run in order, as a new user would type them, in one empty folder (a later example may use
what an earlier one wrote), with this interpreter's ``python`` and ``srnpose`` first on PATH. ``pip
install`` commands are skipped (the package is installed) but the rest of a chained line runs; the test
suite's own command is skipped (it would run this test again). A block that cannot run here (a live
camera) carries a visible marker on the line above it: ``<!-- no-test: why -->``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI_SCRIPT = ROOT / ".ci" / "run"
MAX_README_LINES = 300
MAX_EXEMPT_BLOCKS = 2  # blocks marked no-test: a live camera, at most one more
SHELL_LANGS = ("bash", "sh", "shell")
NO_TEST = re.compile(r"<!--\s*no-test:\s*(?P<why>.+?)\s*-->")
TEST_COMMAND = "python -m pytest"
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")


def readme_blocks(text: str) -> list[dict]:
    """Every fenced block: ``{"lang", "code", "line" (1-based, of the fence), "exempt" (reason | None)}``."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start = i
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        k = start - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        marker = NO_TEST.search(lines[k]) if k >= 0 else None
        blocks.append({"lang": m.group("lang"), "code": "\n".join(lines[start + 1:j]), "line": start + 1,
                       "exempt": marker.group("why") if marker else None})
        i = j + 1
    return blocks


def runnable_shell(code: str) -> str:
    """The block as it runs here: ``pip install ...`` links of a ``&&`` chain and the suite's own
    command dropped, everything else as written."""
    kept = []
    for line in code.splitlines():
        links = [part.strip() for part in line.split("&&")]
        links = [part for part in links if not part.startswith("pip install") and part != TEST_COMMAND]
        if any(links):
            kept.append(" && ".join(links))
    return "\n".join(kept)


def test_runnable_shell_skips_installs_and_the_suite():
    code = ("pip install torch==2.13.0 && pip install -e . && srnpose predict --sample --out runs/sample\n"
            "pip install torch==2.13.0 && pip install -e \".[dev,onnx]\" && python -m pytest\n"
            "pip install -e \".[onnx]\"\nsrnpose info")
    assert runnable_shell(code) == "srnpose predict --sample --out runs/sample\nsrnpose info"


def test_readme_blocks_reads_fences_and_markers():
    text = "a\n```bash\necho 1\n```\n\n<!-- no-test: needs a camera -->\n```sh\necho 2\n```\n```text\nx\n```\n"
    blocks = readme_blocks(text)
    assert [(b["lang"], b["code"], b["exempt"]) for b in blocks] == [
        ("bash", "echo 1", None), ("sh", "echo 2", "needs a camera"), ("text", "x", None)]


def test_readme_is_short_and_names_no_shared_folder():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines (at most {MAX_README_LINES})"
    shared = [i + 1 for i, line in enumerate(lines) if "../shared" in line]
    assert not shared, f"README.md lines {shared} name ../shared, a folder a user never has"


def _normalize(command: str) -> list[str]:
    return [w for w in shlex.split(command) if w != "-q"]


def test_readme_test_command_is_ci_command():
    """The README's install-and-test line is the one CI runs (CI adds pip's and pytest's -q)."""
    readme = [line.strip() for line in README.read_text(encoding="utf-8").splitlines()
              if line.strip().endswith(TEST_COMMAND) and line.strip().startswith("pip install")]
    ci = [line.strip() for line in CI_SCRIPT.read_text(encoding="utf-8").splitlines()
          if TEST_COMMAND in line and not line.lstrip().startswith("#")]
    assert len(readme) == 1 and len(ci) == 1, (readme, ci)
    assert _normalize(readme[0]) == _normalize(ci[0])


def test_readme_examples_are_marked_and_few_exempt():
    blocks = [b for b in readme_blocks(README.read_text(encoding="utf-8")) if b["lang"] in ("python",) + SHELL_LANGS]
    assert any(b["lang"] == "python" for b in blocks) and any(b["lang"] in SHELL_LANGS for b in blocks)
    exempt = [b for b in blocks if b["exempt"]]
    assert len(exempt) <= MAX_EXEMPT_BLOCKS, [f"line {b['line']}: {b['exempt']}" for b in exempt]
    unmarked = [b["line"] for b in readme_blocks(README.read_text(encoding="utf-8")) if not b["lang"]]
    assert not unmarked, f"README.md code blocks without a language at lines {unmarked}: say python, bash or text"


def test_samples_api():
    import srnpose
    from srnpose.cameras import CAMERAS

    samples = srnpose.samples()
    assert len(samples) == 4
    for s in samples:
        assert s.depth.dtype == np.uint16 and s.depth.shape == CAMERAS[s.camera].resolution[::-1]
        assert s.joints_xyz.shape == (21, 3) and s.path.is_file() and s.mirrored is False
        assert (s.depth > 0).any()


def test_readme_examples_run(tmp_path):
    """Every python and shell example, in order, in one empty folder: exit status 0 each."""
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONUNBUFFERED="1",
               MPLBACKEND="Agg")
    env.pop("PYTHONPATH", None)
    ran = 0
    for block in readme_blocks(README.read_text(encoding="utf-8")):
        if block["exempt"] or block["lang"] not in ("python",) + SHELL_LANGS:
            continue
        if block["lang"] == "python":
            argv = [sys.executable, "-c", block["code"]]
        else:
            script = runnable_shell(block["code"])
            if not script.strip():
                continue
            argv = ["bash", "-euo", "pipefail", "-c", script]
        proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            pytest.fail(f"README.md block at line {block['line']} ({block['lang']}) exited {proc.returncode}:\n"
                        f"{block['code']}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}")
        ran += 1
    assert ran >= 5, f"only {ran} README examples ran"
