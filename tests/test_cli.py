import subprocess
import sys

import pytest

from srnpose import cli
from srnpose.cameras import CAMERAS, get_camera
from srnpose.errors import UserError


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    assert "COMMAND" in capsys.readouterr().out


def test_no_command_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "srnpose", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "srnpose" in out.stdout


def test_camera_table():
    assert CAMERAS["kinect2"].mirrored and CAMERAS["kinect2"].resolution == (512, 424)
    assert CAMERAS["sr305"].depth_unit_mm == 0.125
    assert CAMERAS["nyu"].intrinsics.fy == -587.07
    with pytest.raises(UserError, match="available: kinect2"):
        get_camera("kinect3")


HELP_WITHOUT_TORCH = """
import contextlib, io, sys
from srnpose import cli
argvs = [["--help"]] + [[name, "--help"] for name in cli.COMMANDS] + [["locator", "train", "--help"]]
for argv in argvs:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            cli.main(argv)
        except SystemExit as exc:
            assert exc.code == 0, (argv, exc.code)
    assert "usage: srnpose" in out.getvalue(), argv
    assert "torch" not in sys.modules, f"srnpose {' '.join(argv)} imported torch"
print("ok", len(argvs))
"""


def test_help_of_every_command_does_not_import_torch():
    # the parsers' tables (cameras, backends, finders, presets, datasets, engines) must come from torch-free
    # modules: importing torch is most of a second idle and many seconds on a loaded machine
    out = subprocess.run([sys.executable, "-c", HELP_WITHOUT_TORCH], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok")
