"""Synthetic data written in each public dataset's exact native layout and file format.

``WRITERS[fmt](out_dir, frames, seed, intrinsics, resolution, workers, progress, engine="v1")`` renders
``frames`` frames of the synthetic ``engine`` (frame ``i`` is ``srnpose.synth.engines.render(engine,
frame_seed(seed, i), ...)``, v2 with the dataset camera's sensor family) and writes
them as the dataset ships, so every loader is tested end to end from files in the real format.
Defaults: the dataset's own camera and resolution, its joint layout (``skeleton.convert`` from the
canonical joints in xyz, then projected), its file names, label files and depth encoding.

Splits: NYU, ICVL and HANDS2017 put the last 10% of the frames (at least one) in the test split;
MSRA deals frame ``i`` to subject ``P{i % 9}`` (gestures in turn), so each subject gets a fold.
``srnpose synth --format nyu|icvl|msra|hands17`` calls these; ``--format native`` is the synth
engine's own :func:`srnpose.synth.write_dataset`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from srnpose.cameras import get_camera
from srnpose.data.depth_io import write_msra_bin, write_nyu_rgb, write_png16
from srnpose.data.hands17 import image_name
from srnpose.geometry import Intrinsics, uvd_to_xyz, xyz_to_uvd
from srnpose.hand.skeleton import NYU36, convert
from srnpose.outputs import OutputFolder, writing
from srnpose.synth.engines import render


def _transaction(writer: Callable[..., None]) -> Callable[..., Path]:
    """``writer(files, ...)`` as ``writer(out_dir, ...)``: every file staged in ``out_dir`` (a path or an
    :class:`~srnpose.outputs.OutputFolder`) and renamed into place when all are written; a failure leaves
    the folder as it was. Returns ``out_dir``."""
    @functools.wraps(writer)
    def run(out_dir, *args, **kwargs) -> Path:
        with writing(out_dir) as files:
            writer(files, *args, **kwargs)
        return files.path
    return run


def _resolve(camera_name: str, intrinsics: Intrinsics | None,
             resolution: tuple[int, int] | None) -> tuple[Intrinsics, tuple[int, int]]:
    camera = get_camera(camera_name)
    K = intrinsics if intrinsics is not None else camera.intrinsics
    res = tuple(resolution) if resolution is not None else camera.resolution
    return K, (int(res[0]), int(res[1]))


def _render_one(task: tuple):
    from srnpose.synth import frame_seed

    seed, index, K, resolution, engine, camera = task
    return render(engine, frame_seed(seed, index), K, resolution, camera)


def render_frames(frames: int, seed: int, K: Intrinsics, resolution: tuple[int, int], workers: int = 1,
                  progress: bool = True, desc: str = "synth", engine: str = "v1",
                  camera: str | None = None) -> Iterator:
    """Yield the ``SynthFrame`` s ``0 .. frames-1`` of ``engine`` in order (rendered in ``workers``
    processes); ``camera``: the preset whose sensor family v2 draws."""
    from tqdm import tqdm

    tasks = [(int(seed), i, K, resolution, engine, camera) for i in range(frames)]
    with tqdm(total=frames, unit="frame", desc=desc, disable=not progress) as bar:
        if workers <= 1 or frames <= 1:
            for task in tasks:
                yield _render_one(task)
                bar.update(1)
            return
        import multiprocessing

        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        with ctx.Pool(min(workers, frames)) as pool:
            for frame in pool.imap(_render_one, tasks, chunksize=8):
                yield frame
                bar.update(1)


def _check_frames(frames: int, minimum: int, fmt: str) -> None:
    if frames < minimum:
        raise ValueError(f"the {fmt} writer needs at least {minimum} frames (train and test), got {frames}")


def _layout_uvd(frame, layout: str) -> np.ndarray:
    """The frame's joints in ``layout``: converted in xyz (exact for midpoints), then projected."""
    return xyz_to_uvd(convert(frame.joints_xyz, "canonical", layout), frame.intrinsics)  # (J, 3)


def _test_start(frames: int) -> int:
    from srnpose.data.synthdir import test_count

    return frames - test_count(frames)


def _numbers(values: np.ndarray) -> str:
    return " ".join(f"{v:.4f}" for v in np.asarray(values, dtype=np.float64).reshape(-1))


# --------------------------------------------------------------------------- NYU

@_transaction
def write_nyu(files: OutputFolder, frames: int, seed: int = 0, intrinsics: Intrinsics | None = None,
              resolution: tuple[int, int] | None = None, workers: int = 1, progress: bool = True, engine: str = "v1") -> Path:
    """``train/`` and ``test/``: ``depth_1_NNNNNNN.png`` (RGB, G high byte, B low byte) and
    ``joint_data.mat`` with ``joint_uvd``/``joint_xyz`` (3 views, frames, 36, 3) and ``joint_names``.
    Views 2 and 3 are copies of view 1 (only the file shape of the real 3-camera data is mirrored)."""
    import scipy.io

    from srnpose.data.nyu import depth_name

    _check_frames(frames, 2, "nyu")
    out_dir = files.path
    K, res = _resolve("nyu", intrinsics, resolution)
    first_test = _test_start(frames)
    labels: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    for i, frame in enumerate(render_frames(frames, seed, K, res, workers, progress, "nyu", engine, "nyu")):
        split, j = ("train", i) if i < first_test else ("test", i - first_test)
        write_nyu_rgb(files.stage(out_dir / split / depth_name(j)), frame.depth_mm)
        labels[split].append(_layout_uvd(frame, "nyu36"))
    names = np.empty((1, 36), dtype=object)
    names[0, :] = list(NYU36.joint_names)
    for split, uvd_list in labels.items():
        uvd = np.stack(uvd_list).astype(np.float32)  # (N, 36, 3)
        xyz = uvd_to_xyz(uvd.astype(np.float64), K).astype(np.float32)  # (N, 36, 3), y up for fy < 0
        scipy.io.savemat(str(files.stage(out_dir / split / "joint_data.mat")),
                         {"joint_uvd": np.stack([uvd] * 3), "joint_xyz": np.stack([xyz] * 3),
                          "joint_names": names}, do_compression=True)
    return out_dir


# --------------------------------------------------------------------------- ICVL

ICVL_FRAMES_PER_SEQUENCE = 1000


@_transaction
def write_icvl(files: OutputFolder, frames: int, seed: int = 0, intrinsics: Intrinsics | None = None,
               resolution: tuple[int, int] | None = None, workers: int = 1, progress: bool = True, engine: str = "v1") -> Path:
    """``Training/labels.txt`` + ``Training/Depth/<12-digit sequence>/image_NNNN.png``;
    ``Testing/test_seq_{1,2}.txt`` + ``Testing/Depth/test_seq_{1,2}/image_NNNN.png`` (16-bit PNG, mm).
    Lines: ``<path under Depth/> u v d x 16``."""
    _check_frames(frames, 2, "icvl")
    out_dir = files.path
    K, res = _resolve("icvl", intrinsics, resolution)
    first_test = _test_start(frames)
    n_test = frames - first_test
    lines: dict[Path, list[str]] = {out_dir / "Training" / "labels.txt": [],
                                    out_dir / "Testing" / "test_seq_1.txt": [],
                                    out_dir / "Testing" / "test_seq_2.txt": []}
    for i, frame in enumerate(render_frames(frames, seed, K, res, workers, progress, "icvl", engine, "icvl")):
        if i < first_test:
            top, label = "Training", out_dir / "Training" / "labels.txt"
            seq, j = f"2014{i // ICVL_FRAMES_PER_SEQUENCE:08d}", i % ICVL_FRAMES_PER_SEQUENCE
        else:
            j = i - first_test
            half = (n_test + 1) // 2
            seq_no = 1 if j < half else 2
            j = j if seq_no == 1 else j - half
            top, label, seq = "Testing", out_dir / "Testing" / f"test_seq_{seq_no}.txt", f"test_seq_{seq_no}"
        rel = f"{seq}/image_{j:04d}.png"
        write_png16(files.stage(out_dir / top / "Depth" / rel), frame.depth_mm)
        lines[label].append(f"{rel} {_numbers(_layout_uvd(frame, 'icvl'))}")
    for path, rows in lines.items():
        files.write_text(path, "".join(row + "\n" for row in rows))
    return out_dir


# --------------------------------------------------------------------------- MSRA

MSRA_HAND_RADIUS_MM = 150.0  # fallback segmentation when a frame has no part map


def _msra_hand_only(frame) -> np.ndarray:
    """The depth with everything but the hand zeroed, as MSRA ships its segmented hands."""
    depth = frame.depth_mm.astype(np.float32)  # (H, W)
    if frame.part is not None:
        mask = frame.part >= 0
    else:
        H, W = depth.shape
        vs, us = np.mgrid[0:H, 0:W]
        xyz = uvd_to_xyz(np.stack([us, vs, depth], axis=-1).astype(np.float64), frame.intrinsics)
        mask = np.linalg.norm(xyz - frame.joints_xyz.mean(axis=0), axis=-1) < MSRA_HAND_RADIUS_MM
    return np.where(mask & (depth > 0), depth, np.float32(0))


@_transaction
def write_msra(files: OutputFolder, frames: int, seed: int = 0, intrinsics: Intrinsics | None = None,
               resolution: tuple[int, int] | None = None, workers: int = 1, progress: bool = True, engine: str = "v1") -> Path:
    """``P0..P8/<gesture>/NNNNNN_depth.bin`` (header + float32 box of the segmented hand) and a
    ``joint.txt`` per gesture (frame count, then 21 x (x y z) with MSRA's y up, z negative)."""
    from srnpose.data.msra import GESTURES, SUBJECTS, depth_name, uvd_to_file_xyz

    _check_frames(frames, 2, "msra")
    out_dir = files.path
    K, res = _resolve("msra", intrinsics, resolution)
    joints: dict[Path, list[str]] = {}
    for i, frame in enumerate(render_frames(frames, seed, K, res, workers, progress, "msra", engine, "msra")):
        subject = SUBJECTS[i % len(SUBJECTS)]
        k = i // len(SUBJECTS)  # the subject's k-th frame
        folder = out_dir / subject / GESTURES[k % len(GESTURES)]
        rows = joints.setdefault(folder, [])
        write_msra_bin(files.stage(folder / depth_name(len(rows))), _msra_hand_only(frame))
        rows.append(_numbers(uvd_to_file_xyz(_layout_uvd(frame, "msra"), K)))
    for folder, rows in joints.items():
        files.write_text(folder / "joint.txt", f"{len(rows)}\n" + "".join(row + "\n" for row in rows))
    return out_dir


# --------------------------------------------------------------------------- HANDS2017

HANDS17_BOX_MARGIN_PX = 10.0


@_transaction
def write_hands17(files: OutputFolder, frames: int, seed: int = 0, intrinsics: Intrinsics | None = None,
                  resolution: tuple[int, int] | None = None, workers: int = 1, progress: bool = True, engine: str = "v1") -> Path:
    """``training/images/image_DNNNNNNNN.png`` + ``training/Training_Annotation.txt`` (name, then
    21 x (x y z) mm, tab-separated); ``frame/images/...`` + ``frame/BoundingBox.txt`` (name, x y w h)
    and, for local evaluation, ``frame/Test_Annotation.txt`` (not part of the real release)."""
    _check_frames(frames, 2, "hands17")
    out_dir = files.path
    K, res = _resolve("hands17", intrinsics, resolution)
    first_test = _test_start(frames)
    train_rows, test_rows, box_rows = [], [], []
    for i, frame in enumerate(render_frames(frames, seed, K, res, workers, progress, "hands17", engine, "hands17")):
        xyz = uvd_to_xyz(_layout_uvd(frame, "hands17"), K)  # (21, 3)
        values = "\t".join(f"{v:.4f}" for v in xyz.reshape(-1))
        if i < first_test:
            name = image_name(i)
            write_png16(files.stage(out_dir / "training" / "images" / name), frame.depth_mm)
            train_rows.append(f"{name}\t{values}")
        else:
            name = image_name(i - first_test)
            write_png16(files.stage(out_dir / "frame" / "images" / name), frame.depth_mm)
            test_rows.append(f"{name}\t{values}")
            uv = xyz_to_uvd(xyz, K)[:, :2]
            lo = uv.min(axis=0) - HANDS17_BOX_MARGIN_PX
            hi = uv.max(axis=0) + HANDS17_BOX_MARGIN_PX
            box_rows.append(f"{name}\t{lo[0]:.1f}\t{lo[1]:.1f}\t{hi[0] - lo[0]:.1f}\t{hi[1] - lo[1]:.1f}")
    files.write_text(out_dir / "training" / "Training_Annotation.txt", "".join(r + "\n" for r in train_rows))
    files.write_text(out_dir / "frame" / "BoundingBox.txt", "".join(r + "\n" for r in box_rows))
    files.write_text(out_dir / "frame" / "Test_Annotation.txt", "".join(r + "\n" for r in test_rows))
    return out_dir


Writer = Callable[..., Path]
WRITERS: dict[str, Writer] = {
    "nyu": write_nyu,
    "icvl": write_icvl,
    "msra": write_msra,
    "hands17": write_hands17,
}
