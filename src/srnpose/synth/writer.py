"""Writing a synthetic dataset in srnpose's native layout.

``DIR/meta.json``   intrinsics {fx, fy, cx, cy}, resolution [W, H], depth_unit_mm, joints (canonical
                    names), frames, seed, engine (``srnpose.synth.engines.ENGINES``)
``DIR/depth/NNNNNN.png``  16-bit single-channel PNG, millimetres, 0 = no measurement
``DIR/labels.txt``  one line per frame: u v d of the 21 canonical joints (63 numbers)

Frame ``i`` is ``engines.render(engine, frame_seed(seed, i), ...)``, so the files are identical for any
``workers``, and a v2 dataset of seed ``SYNTH_TRAIN_SEED + train.seed`` at the run's ``synth_resolution``
holds the frames training draws (before augmentation).
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np

from srnpose.geometry import Intrinsics
from srnpose.hand.skeleton import CANONICAL_NAMES
from srnpose.outputs import OutputFolder, writing
from srnpose.synth.engines import render
from srnpose.synth.frame import frame_seed, resolve_camera

PNG_COMPRESS_LEVEL = 1  # zlib level 1: ~3x faster than the default, files ~15% larger
DEPTH_DIR = "depth"
LABELS_FILE = "labels.txt"
META_FILE = "meta.json"
_CHUNK = 16  # frames per task sent to a worker


def depth_name(index: int) -> str:
    return f"{index:06d}.png"


def encode_png16(depth_mm: np.ndarray, level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """A (H, W) uint16 image as 16-bit grayscale PNG bytes (filter None, zlib ``level``).

    Twice as fast as Pillow's encoder at level 1; any PNG reader (Pillow, OpenCV) reads it exactly.
    """
    depth = np.asarray(depth_mm)
    if depth.ndim != 2 or depth.dtype != np.uint16:
        raise ValueError(f"depth must be (H, W) uint16, got {depth.shape} {depth.dtype}")
    height, width = depth.shape
    rows = np.zeros((height, 1 + 2 * width), dtype=np.uint8)  # filter byte 0, then big-endian samples
    rows[:, 1:] = depth.astype(">u2").view(np.uint8).reshape(height, 2 * width)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)  # 16-bit, grayscale, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), level))
            + chunk(b"IEND", b""))


def save_depth_png(path: str | Path, depth_mm: np.ndarray) -> None:
    """A (H, W) uint16 frame as a 16-bit grayscale PNG, fast compression."""
    with open(path, "wb") as f:
        f.write(encode_png16(depth_mm))


def format_label(joints_uvd: np.ndarray) -> str:
    """One labels.txt line: u v d per joint, 3 decimals, space-separated."""
    return " ".join(f"{x:.3f}" for x in np.asarray(joints_uvd, dtype=np.float64).reshape(-1))


def _render_chunk(task: tuple) -> list[str]:
    paths, seed, start, stop, intrinsics, resolution, engine, camera = task  # paths: the frames' staged names
    lines = []
    for i in range(start, stop):
        frame = render(engine, frame_seed(seed, i), intrinsics, resolution, camera)
        save_depth_png(paths[i - start], frame.depth_mm)
        lines.append(format_label(frame.joints_uvd))
    return lines


def write_meta(out_dir: Path | OutputFolder, intrinsics: Intrinsics, resolution: tuple[int, int], frames: int,
               seed: int, engine: str = "v1") -> None:
    meta = {
        "intrinsics": intrinsics.as_dict(),
        "resolution": [int(resolution[0]), int(resolution[1])],
        "depth_unit_mm": 1.0,
        "joints": list(CANONICAL_NAMES),
        "frames": int(frames),
        "seed": int(seed),
        "engine": str(engine),
    }
    with writing(out_dir) as files:
        files.write_text(META_FILE, json.dumps(meta, indent=2) + "\n")


def write_dataset(out_dir: str | Path, frames: int, seed: int = 0, intrinsics: Intrinsics | None = None,
                  resolution: tuple[int, int] | None = None, workers: int = 1, progress: bool = True,
                  engine: str = "v1", camera: str | None = None) -> Path:
    """Render ``frames`` frames of ``engine`` into ``out_dir`` (created) in the native layout; returns ``out_dir``.

    ``engine``: v1 by default here (``srnpose synth`` defaults to v2, the training engine); ``camera``: a
    preset name whose sensor family v2 draws (None: a random family per frame, as training).
    """
    intrinsics, resolution = resolve_camera(intrinsics, resolution)
    # every file is staged and renamed into place when all frames are rendered: a failure (a full disk,
    # Ctrl-C) leaves the folder as it was, and removes it if it was created here
    with writing(out_dir) as files:
        _write_frames(files, frames, seed, intrinsics, resolution, workers, progress, engine, camera)
    return files.path


def _write_frames(files: OutputFolder, frames: int, seed: int, intrinsics: Intrinsics, resolution: tuple[int, int],
                  workers: int, progress: bool, engine: str, camera: str | None) -> None:
    from tqdm import tqdm

    paths = [str(files.stage(f"{DEPTH_DIR}/{depth_name(i)}")) for i in range(frames)]
    tasks = [(paths[s:s + _CHUNK], int(seed), s, min(s + _CHUNK, frames), intrinsics, resolution, engine, camera)
             for s in range(0, frames, _CHUNK)]
    lines: list[str] = []
    with tqdm(total=frames, unit="frame", desc="synth", disable=not progress) as bar:  # closed before an error line
        if workers <= 1 or len(tasks) <= 1:
            for task in tasks:
                lines += _render_chunk(task)
                bar.update(task[3] - task[2])
        else:
            import multiprocessing

            ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
            with ctx.Pool(min(workers, len(tasks))) as pool:
                for task, chunk in zip(tasks, pool.imap(_render_chunk, tasks)):
                    lines += chunk
                    bar.update(task[3] - task[2])
    for path in stale_frames(files.path / DEPTH_DIR, frames):
        files.delete_on_commit(path)
    files.write_text(LABELS_FILE, "".join(line + "\n" for line in lines))
    write_meta(files, intrinsics, resolution, frames, seed, engine)


def stale_frames(depth_dir: Path, frames: int) -> list[Path]:
    """``NNNNNN.png`` frames numbered ``frames`` and up (left by an earlier, larger run in the same folder,
    they would lie beside labels that do not describe them)."""
    if not depth_dir.is_dir():
        return []
    return [p for p in depth_dir.glob("*.png") if p.stem.isdigit() and len(p.stem) == 6 and int(p.stem) >= frames]


def remove_stale_frames(depth_dir: Path, frames: int) -> int:
    """Delete :func:`stale_frames`; returns how many."""
    stale = stale_frames(depth_dir, frames)
    for path in stale:
        path.unlink()
    return len(stale)


def read_labels(path: str | Path) -> np.ndarray:
    """labels.txt -> (N, 21, 3) float64 uvd."""
    rows = np.loadtxt(str(path), dtype=np.float64, ndmin=2)
    return rows.reshape(len(rows), -1, 3)
