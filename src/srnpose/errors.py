"""The one exception type that means "the user gave us something wrong", and optional imports."""

from __future__ import annotations

import importlib
import re
from types import ModuleType

# optional package (import name) -> the extra of pyproject.toml that installs it
EXTRAS: dict[str, str] = {
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "pyrealsense2": "realsense",
    "tensorboard": "tensorboard",
}

# shared library (as the loader names it) -> the Debian/Ubuntu package that installs it
SYSTEM_LIBRARIES: dict[str, str] = {
    "libusb-1.0.so.0": "libusb-1.0-0",  # pyrealsense2
    "libGL.so.1": "libgl1",
    "libgomp.so.1": "libgomp1",
}
_SHARED_LIBRARY = re.compile(r"\b(lib[\w.+-]*?\.so(?:\.\d+)*)\b")


class UserError(Exception):
    """A mistake in user input (flag, file, config). The CLI prints it as one line and exits 2.

    ``flag``: the command-line flag of the input that is wrong (e.g. ``"--intrinsics"``), set where the
    error is raised, by code that knows which input it checked; the CLI names it in front of the line
    (:meth:`line`). The message itself stays the API's, and no caller reads the flag out of its text.
    """

    def __init__(self, *args: object, flag: str | None = None) -> None:
        super().__init__(*args)
        self.flag = flag

    def line(self) -> str:
        """The one line the CLI prints: ``"FLAG: message"``, or the message when no flag is known."""
        return f"{self.flag}: {self}" if self.flag else str(self)


class MissingExtraError(UserError):
    """An optional package is not installed; the message names the extra that installs it."""


def missing_library_hint(exc: BaseException) -> str | None:
    """``"LIB: how to install it"`` when ``exc`` (an import's ImportError or OSError) is about a shared
    library the loader could not open, else None."""
    found = _SHARED_LIBRARY.search(str(exc))
    if found is None:
        return None
    lib = found.group(1)
    package = SYSTEM_LIBRARIES.get(lib)
    how = (f"apt-get install {package} (Debian/Ubuntu)" if package else
           f"install the system package that provides it (Debian/Ubuntu: apt-file search {lib})")
    return f"{lib}: {how}"


def require_extra(module: str, extra: str | None = None) -> ModuleType:
    """Import the optional package ``module`` or raise :class:`MissingExtraError` saying what is missing:
    the package (the pip line of its extra), or a system library the installed package cannot load."""
    top = module.split(".")[0]
    name = extra or EXTRAS.get(top, top)
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        raise MissingExtraError(f"this needs the optional package {top!r}: pip install 'srnpose[{name}]'") from None
    except (ImportError, OSError) as exc:  # installed, but its compiled part does not load
        hint = missing_library_hint(exc)
        if hint is not None:
            raise MissingExtraError(f"the optional package {top!r} is installed but cannot load the system "
                                    f"library {hint}") from None
        raise MissingExtraError(f"the optional package {top!r} is installed but does not import "
                                f"({type(exc).__name__}: {exc}); reinstall it: pip install --force-reinstall "
                                f"'srnpose[{name}]'") from None
