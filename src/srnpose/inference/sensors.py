"""Frame sources: where full depth frames come from (recorded files or a live camera).

Every source is an iterable of :class:`Frame` with a ``camera`` (a :class:`~srnpose.cameras.Camera`
preset, or ``None`` when the files do not say) and a ``close()``; the CLI uses them with ``with``.

==================  =====================================================================
source              input
==================  =====================================================================
``FolderSource``    a folder of 16-bit depth PNGs (sorted by name) or one PNG file
``NpyStackSource``  a ``.npy`` array: one frame (H, W) or a stack (T, H, W); uint16 or float
``RealSenseSource`` a live Intel RealSense camera through ``pyrealsense2`` (optional package)
==================  =====================================================================

Frames carry the depth as stored (raw sensor units): the depth unit is the camera's business
(``Camera.depth_unit_mm``), applied by the estimator. Every source raises
:class:`~srnpose.errors.UserError` naming the file when it cannot give frames.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from srnpose.cameras import Camera
from srnpose.data.depth_io import read_png16
from srnpose.errors import UserError, require_extra
from srnpose.geometry import Intrinsics

__all__ = ["Frame", "FrameSource", "FolderSource", "depth_pngs", "NpyStackSource", "RealSenseSource", "open_sources",
           "check_depth_array"]

DEPTH_DTYPES = (np.uint16, np.float32, np.float64, np.int32, np.uint32, np.int64)  # accepted raw dtypes


@dataclass(frozen=True)
class Frame:
    index: int  # position in the sequence, from 0
    name: str  # file stem (and stack index), used to name outputs
    depth: np.ndarray  # (H, W) raw depth as stored, 0 = no measurement
    timestamp_s: float  # capture time, or index / nominal fps for recordings
    source: str = ""  # file the frame came from, for error messages


def check_depth_array(depth: np.ndarray, where: str) -> None:
    """Refuse what is not a depth frame: wrong rank, wrong dtype, NaN/inf, negative values."""
    if depth.ndim != 2:
        raise UserError(f"{where}: expected a depth frame of shape (H, W), got shape {depth.shape}")
    if depth.dtype.type not in DEPTH_DTYPES:
        raise UserError(f"{where}: depth dtype {depth.dtype} is not supported "
                        f"(expected uint16 raw units or float32/float64 mm)")
    if depth.dtype.kind == "f" and not np.all(np.isfinite(depth)):
        raise UserError(f"{where}: depth contains NaN or inf (use 0 for no measurement)")
    if depth.dtype.kind == "f" and depth.size and depth.min() < 0:
        raise UserError(f"{where}: depth has negative values (min {depth.min():g}); use 0 for no measurement")


class FrameSource:
    """Base class: iterate to get frames; ``len()`` where known; ``close()`` releases the device."""

    camera = None  # srnpose.cameras.Camera | None

    def __iter__(self) -> Iterator[Frame]:  # pragma: no cover - interface
        raise NotImplementedError

    def __len__(self) -> int:
        raise TypeError(f"{type(self).__name__} has no known length")

    def close(self) -> None:
        pass

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def depth_pngs(folder: str | Path) -> list[Path]:
    """The ``.png`` files of ``folder`` (any case), sorted by name. Hidden files are not frames: a killed
    writer's temporary files (``.NAME.tmp-PID-X.png``), macOS's ``._`` files."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() == ".png" and p.is_file()
                  and not p.name.startswith("."))


class FolderSource(FrameSource):
    """16-bit depth PNGs: one file, or every ``*.png`` of a folder sorted by name."""

    def __init__(self, path: str | Path, fps: float = 30.0) -> None:
        path = Path(path)
        if path.is_dir():
            files = depth_pngs(path)
            if not files:
                raise UserError(f"{path}: folder has no .png depth frames")
        elif path.is_file():
            files = [path]
        else:
            raise UserError(f"{path}: no such file or folder")
        self.path, self.files, self.fps = path, files, float(fps)

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[Frame]:
        for i, file in enumerate(self.files):
            depth = read_png16(file)  # (H, W) uint16, raises UserError naming the file
            yield Frame(i, file.stem, depth, i / self.fps, str(file))


class NpyStackSource(FrameSource):
    """A ``.npy`` file holding one frame (H, W) or a stack (T, H, W), read memory-mapped."""

    def __init__(self, path: str | Path, fps: float = 30.0) -> None:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise UserError(f"{path}: cannot read .npy ({exc})") from None
        if array.ndim == 2:
            array = array[None]
        if array.ndim != 3 or array.shape[0] == 0:
            raise UserError(f"{path}: expected a depth frame (H, W) or a stack (T, H, W), got shape {array.shape}")
        if array.dtype.type not in DEPTH_DTYPES:
            raise UserError(f"{path}: depth dtype {array.dtype} is not supported "
                            f"(expected uint16 raw units or float32/float64 mm)")
        self.path, self.array, self.fps = path, array, float(fps)

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def __iter__(self) -> Iterator[Frame]:
        for i in range(len(self)):
            depth = np.asarray(self.array[i])
            where = f"{self.path} (frame {i})"
            check_depth_array(depth, where)
            yield Frame(i, f"{self.path.stem}_{i:05d}", depth, i / self.fps, where)


class ChainSource(FrameSource):
    """Several sources one after the other, renumbered from 0."""

    def __init__(self, sources: list[FrameSource]) -> None:
        self.sources = sources
        self.camera = sources[0].camera if sources else None

    def __len__(self) -> int:
        return sum(len(s) for s in self.sources)

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        for source in self.sources:
            for frame in source:
                fps = getattr(source, "fps", 30.0)
                yield Frame(index, frame.name, frame.depth, index / fps, frame.source)
                index += 1

    def close(self) -> None:
        for s in self.sources:
            s.close()


def open_sources(inputs: list[str | Path], fps: float = 30.0) -> FrameSource:
    """The CLI's INPUT...: PNG files, folders of PNGs and ``.npy`` stacks, in the order given."""
    if not inputs:
        raise UserError("no input given")
    sources: list[FrameSource] = []
    for item in inputs:
        path = Path(item)
        if path.suffix.lower() == ".npy":
            sources.append(NpyStackSource(path, fps))
        elif path.is_dir() or path.suffix.lower() == ".png":
            sources.append(FolderSource(path, fps))
        elif not path.exists():
            raise UserError(f"{path}: no such file or folder")
        else:
            raise UserError(f"{path}: unsupported input (expected a .png, a folder of .png or a .npy stack)")
    return sources[0] if len(sources) == 1 else ChainSource(sources)


class RealSenseSource(FrameSource):
    """Live depth from an Intel RealSense camera (SR300/SR305/D400) through ``pyrealsense2``.

    Frames are uint16 in the device's depth unit; ``camera`` is built from the stream's own
    intrinsics and depth scale, so no preset is needed.
    """

    def __init__(self, width: int = 640, height: int = 480, fps: int = 30, max_frames: int | None = None) -> None:
        # live capture needs pyrealsense2; a missing package and a missing system library (libusb) are
        # told apart by require_extra
        rs = require_extra("pyrealsense2", "realsense")
        self._rs = rs
        self.pipeline = rs.pipeline()
        config = rs.config()
        config.enable_stream(rs.stream.depth, int(width), int(height), rs.format.z16, int(fps))
        try:
            profile = self.pipeline.start(config)
        except RuntimeError as exc:
            raise UserError(f"cannot start the RealSense depth stream {width}x{height}@{fps}: {exc}") from None
        stream = profile.get_stream(rs.stream.depth).as_video_stream_profile()
        k = stream.get_intrinsics()
        scale_mm = profile.get_device().first_depth_sensor().get_depth_scale() * 1000.0
        self.camera = Camera("realsense", Intrinsics(k.fx, k.fy, k.ppx, k.ppy), (k.width, k.height),
                             float(scale_mm), False, "live RealSense stream")
        self.max_frames = max_frames

    def __iter__(self) -> Iterator[Frame]:
        index, t0 = 0, time.perf_counter()
        while self.max_frames is None or index < self.max_frames:
            frames = self.pipeline.wait_for_frames()
            depth = frames.get_depth_frame()
            if not depth:
                continue
            yield Frame(index, f"live_{index:06d}", np.asanyarray(depth.get_data()).copy(),
                        time.perf_counter() - t0, "realsense")
            index += 1

    def close(self) -> None:
        try:
            self.pipeline.stop()
        except RuntimeError:  # pragma: no cover - already stopped
            pass
