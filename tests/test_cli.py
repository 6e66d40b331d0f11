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
