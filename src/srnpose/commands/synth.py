"""``srnpose synth``: render a synthetic depth-hand dataset (native layout, or a dataset's format)."""

from __future__ import annotations

import argparse

from srnpose.cameras import get_camera
from srnpose.data.public_layouts import WRITERS
from srnpose.errors import UserError
from srnpose.geometry import Intrinsics
from srnpose.outputs import (
    SYNTH_KIND,
    check_folder_target,
    is_disk_full,
    output_folder,
    refuse_foreign_folder,
)
from srnpose.synth.engines import ENGINES, render
from srnpose.viz import depth_to_rgb, draw_skeleton, image_grid, save_png

NATIVE_FORMAT = "native"
PREVIEW_FRAMES = 16  # frames in the --preview grid
PREVIEW_COLS = 4
MAX_RESOLUTION_PX = 8192


def _formats() -> list[str]:
    """``native`` plus the dataset writers of ``srnpose.data.public_layouts.WRITERS``."""
    return [NATIVE_FORMAT] + [name for name in WRITERS if name != NATIVE_FORMAT]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (created)")
    parser.add_argument("--frames", required=True, metavar="N", help="number of frames")
    parser.add_argument("--seed", default="0", metavar="S", help="random seed (default 0); same seed, same files")
    cam = parser.add_mutually_exclusive_group()
    cam.add_argument("--camera", metavar="NAME", help="camera preset (default icvl: 320x240); see srnpose.cameras")
    cam.add_argument("--intrinsics", metavar="fx,fy,cx,cy", help="custom pinhole intrinsics in pixels")
    parser.add_argument("--resolution", metavar="WxH", help="image size (default: the camera's)")
    parser.add_argument("--workers", default="1", metavar="K", help="parallel processes (default 1)")
    parser.add_argument("--preview", metavar="FILE.png", help="also write a grid of frames with the skeleton drawn")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a folder that is not empty (frames of an earlier, larger run are removed)")
    parser.add_argument("--format", default=NATIVE_FORMAT, choices=_formats(),
                        help="output layout (default native: meta.json, depth/*.png, labels.txt)")
    parser.add_argument("--engine", choices=ENGINES, default="v2",
                        help="synthetic engine (default v2, the one training draws from: third-person, "
                             "first-person, hand-with-object and close-range scenes, right hands, sensor "
                             "families; with --camera the camera's sensor family); v1: round 1's close-range "
                             "hands; v3: v2 plus turned hands and named gestures (not yet trained on). "
                             "--seed 1000 --resolution 160x120 --engine v2 writes the frames "
                             "'train --data synth' draws with train.seed 0 (before augmentation)")


def _int(text: str, flag: str, minimum: int) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise UserError(f"{flag}: expected an integer, got {text!r}") from None
    if value < minimum:
        raise UserError(f"{flag}: must be at least {minimum}, got {value}")
    return value


def parse_resolution(text: str) -> tuple[int, int]:
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise UserError(f"--resolution: expected WxH in pixels, e.g. 320x240, got {text!r}") from None
    if not (1 <= width <= MAX_RESOLUTION_PX and 1 <= height <= MAX_RESOLUTION_PX):
        raise UserError(f"--resolution: width and height must be 1-{MAX_RESOLUTION_PX} px, got {text!r}")
    return width, height


def resolve_camera_flags(args: argparse.Namespace):
    """(intrinsics, resolution) from --camera / --intrinsics / --resolution; UserError naming the flag."""
    resolution = parse_resolution(args.resolution) if args.resolution else None
    if args.intrinsics:
        try:
            intrinsics = Intrinsics.parse(args.intrinsics)
        except ValueError as exc:
            raise UserError(f"--intrinsics: {exc}") from None
        if intrinsics.fx <= 0:
            raise UserError(f"--intrinsics: fx must be positive, got {intrinsics.fx}")
        return intrinsics, resolution
    if args.camera:
        try:
            camera = get_camera(args.camera)
        except UserError as exc:
            raise UserError(f"--camera: {exc}") from None
        if resolution is None:
            return camera.intrinsics, camera.resolution
        sx, sy = resolution[0] / camera.resolution[0], resolution[1] / camera.resolution[1]
        k = camera.intrinsics
        return Intrinsics(k.fx * sx, k.fy * sy, (k.cx + 0.5) * sx - 0.5, (k.cy + 0.5) * sy - 0.5), resolution
    return None, resolution


def _check_out_dir(text: str, overwrite: bool = False):
    """``--out`` checked before anything is rendered (created when the dataset is written, and removed
    again if synth fails)."""
    out = check_folder_target(text, "--out")  # a folder, or one that can be created, that takes files
    if out.is_dir() and not overwrite and any(out.iterdir()):
        # an earlier run's frames would stay beside the new labels: refuse, as train refuses a run folder
        raise UserError(f"--out: {out} is not empty; add --overwrite to write over it or choose a new folder")
    # --overwrite replaces a synthetic dataset, never another command's folder
    refuse_foreign_folder(out, "--out", (None, SYNTH_KIND), "synth writes datasets only")
    return out


def write_preview(path, frames: int, seed: int, intrinsics, resolution, engine: str = "v1",
                  camera: str | None = None) -> None:
    """A grid of the first frames (the ones written), depth coloured around the hand, skeleton drawn."""
    from srnpose.synth import frame_seed, visible_joints

    images = []
    for i in range(min(frames, PREVIEW_FRAMES)):
        frame = render(engine, frame_seed(seed, i), intrinsics, resolution, camera)
        # Colour range around the hand: the background saturates, the hand's relief stays readable.
        near = float(frame.joints_uvd[:, 2].min()) - 25.0
        far = float(frame.joints_uvd[:, 2].max()) + 40.0
        rgb = depth_to_rgb(frame.depth_mm, near_mm=near, far_mm=far)
        images.append(draw_skeleton(rgb, frame.joints_uvd, width=1, radius=1, visible=visible_joints(frame)))
    save_png(path, image_grid(images, PREVIEW_COLS))


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    frames = _int(args.frames, "--frames", 1)
    seed = _int(args.seed, "--seed", 0)
    workers = _int(args.workers, "--workers", 1)
    intrinsics, resolution = resolve_camera_flags(args)
    preview = Path(args.preview) if args.preview is not None else None
    if preview is not None and preview.suffix.lower() != ".png":
        raise UserError(f"--preview {preview}: expected a .png file name")
    # the preview may go inside --out, which is created below
    inside_out = preview is not None and preview.parent.resolve() == Path(args.out).resolve()
    if preview is not None and (preview.is_dir() or not (preview.parent.is_dir() or inside_out)):
        raise UserError(f"--preview: cannot write {preview} (not a file path in an existing directory)")
    out = _check_out_dir(args.out, args.overwrite)
    # one transaction: frames, labels and the preview are staged and renamed into place at the end
    with output_folder(out) as files:
        if args.format == NATIVE_FORMAT:
            from srnpose.synth import write_dataset

            write_dataset(files, frames, seed=seed, intrinsics=intrinsics, resolution=resolution, workers=workers,
                          progress=True, engine=args.engine, camera=args.camera)
        else:
            WRITERS[args.format](files, frames, seed, intrinsics, resolution, workers, True, engine=args.engine)
        if preview is not None:
            from srnpose.synth.frame import resolve_camera

            k, res = resolve_camera(intrinsics, resolution)
            try:
                write_preview(files.stage(preview.absolute()), frames, seed, k, res, args.engine, args.camera)
            except OSError as exc:
                if is_disk_full(exc):
                    raise
                raise UserError(f"--preview: cannot write {preview} ({exc})") from None
    if preview is not None:
        print(f"preview: {preview}")
    print(f"wrote {frames} frames of engine {args.engine} to {out}")
    return 0
