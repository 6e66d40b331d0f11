"""Right or wrong on real frames, without labels: srnpose.evaluation.quality's measures on the 30 Kinect V2 frames,
and the one labelled NYU frame's 3D error.

    python benchmarks/real_frames.py --checkpoint runs/demo [--checkpoint2 model.onnx] [--out runs/real_frames]

For each model (a run folder, checkpoint or exported .onnx; loaded with ``srnpose.load``):

1. the 30 consecutive Kinect V2 frames of ../shared/data/kinect2 (camera preset ``kinect2``:
   mirrored, mm), each predicted on the full frame (the model's own hand locator), then
   :func:`srnpose.evaluation.quality.quality_report`: surface violation, silhouette miss, bone-length and
   finger-fold outliers, hand uncovered by bones (shares, 0 = all pass; means over the frames with a hand), jitter (median
   joint motion between consecutive frames, mm; also about the joints' centroid);
2. the labelled NYU frame (../shared/data/nyu_frame, read with srnpose's NYU reader; camera preset
   ``nyu``: fx 588.03, fy -587.07 (y up, as the community writes it), cx 320, cy 240), predicted on the
   full frame; a canonical prediction is mapped to NYU's 14 evaluated joints with
   ``skeleton.convert`` (approximations documented in srnpose.hand.skeleton: NYU's palm point = the
   midpoint of wrist and middle MCP, both wrist points = the wrist), and the mean and max 3D error
   over the 14 joints are reported. The same label-free measures on the NYU ground truth show what a
   right skeleton scores.

3. the depth frames of ../shared/data/kinect2_room (the same sequence, the person further away, some
   frames without a hand; files that are not 16-bit depth PNGs are skipped), each with the by-eye label
   of ``kinect2_room_hands.txt``: hand found, the same measures.

Per frame (Kinect V2 and room frames), printed as a table: ``hand_uncovered`` (the share of the hand's
measured points no bone passes within 25 mm of), the spread (``spread_mm``: the predicted joints' mean
distance to their centroid; on the NYU frame also over the labels', ``spread_ratio``) and its
label-free analogue ``fingertip_reach`` (do the bones reach the fingertips' measured points:
:func:`srnpose.evaluation.quality.fingertip_reach`; a bunched hand scores low).

A reference column "synth truth" gives the measures of 30 synthetic frames rendered with the Kinect V2
intrinsics at 512x424, scored with their true joints (what a right skeleton scores; no jitter:
independent frames).

Writes to ``--out``: ``<model>/kinect_NN.png`` (each frame's depth zoomed on the crop box, skeleton
drawn), ``<model>/kinect_sheet.png`` (the 30 on one sheet), ``<model>/kinect_overlays.png`` and
``<model>/room_overlays.png`` (frame by frame ``srnpose predict``'s overlay at half size: the frame with
the crop box beside the crop zoomed), ``<model>/nyu.png`` (prediction | ground truth) and
``real_frames.json`` with every figure. Prints the tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from srnpose.evaluation.quality import PER_FRAME_MEASURES as MEASURES  # surface violation ... hand uncovered

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
KINECT_CAMERA = "kinect2"
NYU_CAMERA = "nyu"
TILE_PX = 192  # side of one zoomed Kinect tile
NYU_TILE_PX = 320
SHEET_COLUMNS = 6
SYNTH_REFERENCE_FRAMES = 30
COLOR_NEAR_MM, COLOR_FAR_MM = 100.0, 200.0  # depth colour range around the crop centre: in front, behind
SPREAD_MEASURES = ("spread_mm", "fingertip_reach")  # per frame, beside quality's PER_FRAME_MEASURES


# --------------------------------------------------------------------------- inputs


def check_data(data: Path) -> tuple[Path, Path]:
    """The Kinect V2 folder and the NYU root, or a one-line UserError."""
    from srnpose.errors import UserError

    kinect, nyu = data / "kinect2", data / "nyu_frame"
    if not data.is_dir():
        raise UserError(f"shared data not found at {data} "
                        "(expected ../shared/data beside the repo; or pass --data)")
    for path in (kinect, nyu / "test"):
        if not path.is_dir():
            raise UserError(f"{path}: not found in the shared data folder {data}")
    return kinect, nyu


def load_model(path: str, backend: str):
    import srnpose
    from srnpose.errors import UserError

    if not Path(path).exists():
        raise UserError(f"checkpoint {path}: no such file or folder")
    return srnpose.load(path, backend=backend, fit=False)  # the network's joints (fit_frames.py measures the fit)


def file_number(stem: str) -> str:
    """A frame's label: its file's number, as the files count (``00000001`` -> ``01``), else the stem."""
    return f"{int(stem):02d}" if stem.isdigit() else stem


def model_names(paths: list[str]) -> list[str]:
    names = []
    for p in paths:
        path = Path(p)
        name = path.name
        if name in ("best", "last") and path.parent.name:
            name = f"{path.parent.name}_{name}"
        while name in names:
            name += "_2"
        names.append(name)
    return names


# --------------------------------------------------------------------------- drawing


def zoom_tile(depth_mm: np.ndarray, box: np.ndarray, center_d: float, size: int) -> np.ndarray:
    """(size, size, 3) uint8: the frame's window ``box`` (u0, v0, u1, v1) resampled nearest-neighbour,
    coloured from ``center_d - 100`` (red) to ``center_d + 200`` mm (blue); outside the frame black."""
    from srnpose.viz import depth_to_rgb

    h, w = depth_mm.shape
    u0, v0, u1, v1 = (float(x) for x in box)
    ui = np.floor(u0 + (np.arange(size) + 0.5) * (u1 - u0) / size).astype(np.int64)  # (S,)
    vi = np.floor(v0 + (np.arange(size) + 0.5) * (v1 - v0) / size).astype(np.int64)
    tile = depth_mm[np.ix_(np.clip(vi, 0, h - 1), np.clip(ui, 0, w - 1))].astype(np.float32)  # (S, S)
    tile[~((vi >= 0) & (vi < h))[:, None] | ~((ui >= 0) & (ui < w))[None, :]] = 0
    return depth_to_rgb(tile, center_d - COLOR_NEAR_MM, center_d + COLOR_FAR_MM)


def to_tile(joints_uvd: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """Frame pixels (J, 3) -> tile pixels of :func:`zoom_tile` (pixel centres at integers)."""
    u0, v0, u1, v1 = (float(x) for x in box)
    out = np.array(joints_uvd, dtype=np.float64)
    out[:, 0] = (out[:, 0] - u0) * size / (u1 - u0) - 0.5
    out[:, 1] = (out[:, 1] - v0) * size / (v1 - v0) - 0.5
    return out


def label(rgb: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    img = Image.fromarray(np.ascontiguousarray(rgb))
    draw = ImageDraw.Draw(img)
    for dx, dy in ((1, 1), (-1, -1), (1, -1), (-1, 1)):  # a dark outline keeps the text readable
        draw.text((3 + dx, 2 + dy), text, fill=(0, 0, 0))
    draw.text((3, 2), text, fill=(255, 255, 255))
    return np.asarray(img)


def kinect_tile(depth_mm: np.ndarray, result: Any, text: str, size: int = TILE_PX) -> np.ndarray:
    from srnpose.viz import draw_skeleton

    if not result.hand_found:
        h, w = depth_mm.shape
        side = max(h, w)
        box = np.array([(w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2])
        valid = depth_mm[depth_mm > 0]
        center_d = float(np.percentile(valid, 5)) if valid.size else 1000.0
        return label(zoom_tile(depth_mm, box, center_d, size), text + " no hand")
    box = np.asarray(result.crop_box, dtype=np.float64)
    rgb = zoom_tile(depth_mm, box, float(result.center_uvd[2]), size)
    rgb = draw_skeleton(rgb, to_tile(result.joints_uvd, box, size), result.layout)
    return label(rgb, text)


def square_box(uv: np.ndarray, margin_px: float) -> np.ndarray:
    """The square window (u0, v0, u1, v1) around points (N, 2) with a margin."""
    lo, hi = np.nanmin(uv, axis=0) - margin_px, np.nanmax(uv, axis=0) + margin_px
    c, half = (lo + hi) / 2, float(np.max(hi - lo)) / 2
    return np.array([c[0] - half, c[1] - half, c[0] + half, c[1] + half])


# --------------------------------------------------------------------------- measuring


def run_kinect(estimator, frames: list) -> tuple[list, dict]:
    from srnpose.evaluation import quality

    depths = [f.depth for f in frames]
    estimator.predict(depths[0], camera=KINECT_CAMERA)  # warm-up (lazy initialisation, caches)
    results, times = [], []
    for depth in depths:
        t0 = time.perf_counter()
        results.append(estimator.predict(depth, camera=KINECT_CAMERA))
        times.append((time.perf_counter() - t0) * 1e3)
    report = quality.quality_report(depths, results, KINECT_CAMERA)
    # The PoseResult's two joint arrays and quality's projection must agree (mirroring convention).
    from srnpose.cameras import get_camera

    cam = get_camera(KINECT_CAMERA)
    gaps = [np.abs(quality.frame_uvd(r.joints_xyz, cam.intrinsics, d.shape[1], cam.mirrored)[:, :2]
                   - r.joints_uvd[:, :2]).max() for r, d in zip(results, depths) if r.hand_found]
    report["uvd_xyz_mismatch_px"] = float(max(gaps)) if gaps else float("nan")
    report["predict_ms_median"] = float(np.median(times))
    add_spread(report, depths, results, cam.intrinsics, cam.depth_unit_mm, cam.mirrored)
    return results, report


def add_spread(report: dict, depths: list, results, K, unit: float = 1.0, mirrored: bool = False,
               layout: str | None = None) -> dict:
    """``spread_mm`` and ``fingertip_reach`` into a quality report's per-frame rows and means.
    ``results``: PoseResults, or joint arrays (T, J, 3) with ``layout``."""
    from srnpose.evaluation import quality

    for depth, r, row in zip(depths, results, report["per_frame"]):
        joints = r if layout is not None else r.joints_xyz
        found = layout is not None or r.hand_found
        row["spread_mm"] = quality.joint_spread_mm(joints) if found else float("nan")
        row["fingertip_reach"] = quality.fingertip_reach(depth, joints, K, layout or r.layout, unit, mirrored) \
            if found else float("nan")
    for name in SPREAD_MEASURES:
        values = np.array([row[name] for row in report["per_frame"]], dtype=np.float64)
        report["mean"][name] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    return report


def room_frames(room_dir: Path) -> tuple[list, list[int], dict[int, str]]:
    """The room frames that are 16-bit depth PNGs as ``(number, depth)``, the numbers of those that are
    not (skipped), and the by-eye labels (``kinect2_room_hands.txt``)."""
    from hand_finding import read_truth

    from srnpose.data.depth_io import read_png16
    from srnpose.errors import UserError

    frames, skipped = [], []
    for file in sorted(room_dir.glob("*.png")):
        try:
            frames.append((int(file.stem), read_png16(file)))
        except UserError:  # 85 of the 123 files are 8-bit images: not depth frames
            skipped.append(int(file.stem))
    return frames, skipped, read_truth()


def run_room(estimator, frames: list, labels: dict[int, str]) -> tuple[list, dict]:
    from srnpose.cameras import get_camera
    from srnpose.evaluation import quality

    depths = [d for _, d in frames]
    results = [estimator.predict(d, camera=KINECT_CAMERA) for d in depths]
    report = quality.quality_report(depths, results, KINECT_CAMERA)
    cam = get_camera(KINECT_CAMERA)
    add_spread(report, depths, results, cam.intrinsics, cam.depth_unit_mm, cam.mirrored)
    for (number, _), row in zip(frames, report["per_frame"]):
        row["frame"], row["by_eye"] = number, labels.get(number, "?")
    return results, report


def overlay_text(key: str, row: dict) -> str:
    if not row["hand_found"]:
        return f"{key}: no hand found"
    return f"{key} uncovered {fmt(row['hand_uncovered'], 2)} reach {fmt(row['fingertip_reach'], 2)}"


def overlay_sheet(depths: list, results: list, texts: list[str]) -> np.ndarray:
    """``srnpose predict``'s overlay of each frame (the frame with the crop box | the crop zoomed), at
    half size, labelled, on one sheet."""
    from srnpose.viz import image_grid, pose_overlay

    tiles = []
    for depth, r, text in zip(depths, results, texts):
        img = pose_overlay(depth.astype(np.float32), r.joints_uvd if r.hand_found else None, r.crop_box,
                           r.center_uvd, r.layout)
        tiles.append(label(img[::2, ::2], text))
    return image_grid(tiles, SHEET_COLUMNS // 2)


def load_nyu(nyu_root: Path) -> tuple[np.ndarray, np.ndarray, Any]:
    """The NYU frame's depth (H, W) float32 mm, its 14 evaluated joints' uvd and the intrinsics."""
    from srnpose.data.datasets import load_records

    record = load_records(f"nyu:{nyu_root}", "test")[0]
    return record.load_depth(), np.asarray(record.joints_uvd, dtype=np.float64), record.intrinsics


def run_nyu(estimator, depth: np.ndarray, gt_uvd: np.ndarray, K) -> tuple[Any, dict]:
    from srnpose.evaluation import quality
    from srnpose.geometry import uvd_to_xyz
    from srnpose.hand import skeleton

    gt_xyz = uvd_to_xyz(gt_uvd, K)  # (14, 3)
    result = estimator.predict(depth, camera=NYU_CAMERA)
    out: dict[str, Any] = {"hand_found": bool(result.hand_found), "layout": result.layout}
    if not result.hand_found:
        return result, out
    try:
        pred_nyu = skeleton.convert(result.joints_xyz, result.layout, "nyu")  # (14, 3)
    except ValueError as exc:
        out["error"] = f"cannot map layout {result.layout!r} to nyu: {exc}"
        return result, out
    err = np.linalg.norm(pred_nyu - gt_xyz, axis=1)  # (14,)
    out.update(spread_ratio=quality.joint_spread_mm(pred_nyu) / quality.joint_spread_mm(gt_xyz),
               fingertip_reach=quality.fingertip_reach(depth, result.joints_xyz, K, result.layout))
    out.update(mean_error_mm=float(err.mean()), max_error_mm=float(err.max()),
               per_joint_error_mm=np.round(err, 2).tolist(), joint_names=list(skeleton.NYU.joint_names),
               converted=result.layout != "nyu",
               quality=quality.frame_quality(depth, result.joints_xyz, K, result.layout))
    return result, out


def synth_reference(frames: int = SYNTH_REFERENCE_FRAMES) -> dict:
    """The measures of synthetic Kinect V2 frames scored with their true joints."""
    from srnpose.cameras import get_camera
    from srnpose.evaluation import quality
    from srnpose.synth import render_frame

    cam = get_camera(KINECT_CAMERA)
    rendered = [render_frame(seed, intrinsics=cam.intrinsics, resolution=tuple(cam.resolution))
                for seed in range(frames)]
    report = quality.quality_report([f.depth_mm for f in rendered], np.stack([f.joints_xyz for f in rendered]),
                                    cam.intrinsics, layout="canonical")
    report["jitter_mm"] = report["jitter_about_centroid_mm"] = float("nan")  # independent frames
    report["seeds"] = f"0-{frames - 1}"
    return add_spread(report, [f.depth_mm for f in rendered], np.stack([f.joints_xyz for f in rendered]),
                      cam.intrinsics, layout="canonical")


def nyu_truth_quality(depth: np.ndarray, gt_uvd: np.ndarray, K) -> dict:
    from srnpose.evaluation import quality
    from srnpose.geometry import uvd_to_xyz

    gt_xyz = uvd_to_xyz(gt_uvd, K)
    return {"quality": quality.frame_quality(depth, gt_xyz, K, "nyu"),
            "surface_gap_mm": np.round(quality.surface_gap_mm(depth, gt_xyz, K), 1).tolist(),
            "spread_mm": quality.joint_spread_mm(gt_xyz), "fingertip_reach": quality.fingertip_reach(depth, gt_xyz, K, "nyu")}


# --------------------------------------------------------------------------- output


def fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = float(x)
    return "n/a" if not np.isfinite(x) else f"{x:.{digits}f}"


def print_tables(names: list[str], kinect: dict, nyu: dict, synth: dict, nyu_gt: dict) -> None:
    cols = names + ["synth truth"]
    reports = [kinect[n] for n in names] + [synth]
    width = max(14, *(len(c) + 2 for c in cols))
    print(f"\nKinect V2 frames ({reports[0]['frames']}, camera {KINECT_CAMERA}); "
          "shares: 0 = every joint/bone passes")
    print(f"{'measure':<26}" + "".join(f"{c:>{width}}" for c in cols))
    rows = [("hands found", "hands_found", 0)] + [(m, m, 3) for m in MEASURES]
    rows += [("spread mm", "spread_mm", 1), ("fingertip reach", "fingertip_reach", 3)]
    rows += [("jitter mm", "jitter_mm", 1), ("jitter about centroid mm", "jitter_about_centroid_mm", 1),
             ("uvd/xyz mismatch px", "uvd_xyz_mismatch_px", 3), ("predict ms (median)", "predict_ms_median", 1)]
    for title, key, digits in rows:
        values = [r["mean"][key] if key in MEASURES + SPREAD_MEASURES else r.get(key) for r in reports]
        print(f"{title:<26}" + "".join(f"{fmt(v, digits):>{width}}" for v in values))
    print(f"\nNYU frame (camera {NYU_CAMERA}): 3D error over the 14 evaluated joints; label-free measures "
          "in each skeleton's own layout")
    heads = ["mean err mm", "max err mm", "spread ratio", "fingertip reach"]
    heads += [m.replace("_outliers", "").replace("_", " ") for m in MEASURES]
    print(f"{'':<16}" + "".join(f"{h:>18}" for h in heads))
    for n in names:
        r = nyu[n]
        q = r.get("quality", {})
        vals = [fmt(r.get("mean_error_mm"), 1), fmt(r.get("max_error_mm"), 1), fmt(r.get("spread_ratio"), 2),
                fmt(r.get("fingertip_reach"), 3)]
        vals += [fmt(q.get(m), 3) for m in MEASURES]
        print(f"{n:<16}" + "".join(f"{v:>18}" for v in vals) + ("" if r["hand_found"] else "  (no hand found)"))
    q = nyu_gt["quality"]
    vals = ["0.0", "0.0", "1.00", fmt(nyu_gt["fingertip_reach"], 3)] + [fmt(q[m], 3) for m in MEASURES]
    print(f"{'ground truth':<16}" + "".join(f"{v:>18}" for v in vals))


def print_frames(title: str, names: list[str], reports: list[dict], keys: list) -> None:
    """One row per frame: found, hand_uncovered, spread, fingertip reach of each model."""
    print(f"\n{title}: per frame, each model's hand found, hand_uncovered / spread mm / fingertip reach")
    print(f"{'frame':<16}" + "".join(f"{n:>30}" for n in names))
    for i, key in enumerate(keys):
        cells = []
        for rep in reports:
            row = rep["per_frame"][i]
            cells.append(f"{fmt(row['hand_uncovered'])} / {fmt(row['spread_mm'], 1)} / {fmt(row['fingertip_reach'])}"
                         if row["hand_found"] else "no hand")
        print(f"{key:<16}" + "".join(f"{c:>30}" for c in cells))


def environment() -> dict:
    import torch

    import srnpose

    return {"machine": platform.platform(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
            "srnpose": srnpose.__version__, "torch_threads": torch.get_num_threads()}


def jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, metavar="RUN_OR_ONNX",
                        help="run folder, checkpoint or .onnx")
    parser.add_argument("--checkpoint2", metavar="OTHER", help="a second model, shown side by side")
    parser.add_argument("--out", default="runs/real_frames",
                        help="folder for the overlays and real_frames.json")
    parser.add_argument("--data", default=str(DEFAULT_DATA),
                        help="the shared data folder (default: ../shared/data)")
    parser.add_argument("--backend", default="torch", choices=("torch", "onnxruntime"),
                        help="backend for checkpoints (an .onnx file always runs on ONNX Runtime)")
    args = parser.parse_args(argv)

    from srnpose.errors import UserError

    try:
        return run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    from srnpose.inference.sensors import FolderSource
    from srnpose.viz import draw_skeleton, image_grid, save_png

    kinect_dir, nyu_root = check_data(Path(args.data))
    paths = [args.checkpoint] + ([args.checkpoint2] if args.checkpoint2 else [])
    estimators = [load_model(p, args.backend) for p in paths]  # fail early, before any work
    names = model_names(paths)
    frames = list(FolderSource(kinect_dir))
    room_dir = Path(args.data) / "kinect2_room"
    room, skipped, labels = room_frames(room_dir) if room_dir.is_dir() else ([], [], {})
    nyu_depth, nyu_uvd, nyu_K = load_nyu(nyu_root)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    kinect, nyu, rooms = {}, {}, {}
    for name, path, est in zip(names, paths, estimators):
        results, report = run_kinect(est, frames)
        report["checkpoint"] = str(path)
        kinect[name] = report
        folder = out / name
        folder.mkdir(exist_ok=True)
        tiles = []
        for frame, result, row in zip(frames, results, report["per_frame"]):
            number = file_number(frame.name)
            text = number + (f" sv{row['surface_violation']:.2f} sm{row['silhouette_miss']:.2f}"
                             f" bl{row['bone_length_outliers']:.2f} un{row['hand_uncovered']:.2f}" if result.hand_found else "")
            tile = kinect_tile(frame.depth.astype(np.float32), result, text)
            save_png(folder / f"kinect_{number}.png", tile)
            tiles.append(tile)
        save_png(folder / "kinect_sheet.png", image_grid(tiles, SHEET_COLUMNS))
        save_png(folder / "kinect_overlays.png", overlay_sheet(
            [f.depth for f in frames], results,
            [overlay_text(file_number(f.name), r) for f, r in zip(frames, report["per_frame"])]))
        if room:
            results, rooms[name] = run_room(est, room, labels)
            rooms[name]["skipped_not_depth"] = skipped
            save_png(folder / "room_overlays.png", overlay_sheet(
                [d for _, d in room], results,
                [overlay_text(f"{n} {labels.get(n, '?')}", r) for (n, _), r in zip(room, rooms[name]["per_frame"])]))

        result, nyu_report = run_nyu(est, nyu_depth, nyu_uvd, nyu_K)
        nyu_report["checkpoint"] = str(path)
        nyu[name] = nyu_report
        gt_uv = nyu_uvd[:, :2]
        uv = gt_uv if not result.hand_found else np.concatenate([gt_uv, result.joints_uvd[:, :2]])
        box = square_box(uv, margin_px=30.0)
        center_d = float(np.median(nyu_uvd[:, 2]))
        base = zoom_tile(nyu_depth, box, center_d, NYU_TILE_PX)
        pred = base
        if result.hand_found:
            pred = draw_skeleton(base, to_tile(result.joints_uvd, box, NYU_TILE_PX), result.layout)
        err = nyu_report.get("mean_error_mm")
        pred = label(pred, f"{name}: " + (f"{err:.1f} mm" if err is not None else "no hand"))
        truth = label(draw_skeleton(base, to_tile(nyu_uvd, box, NYU_TILE_PX), "nyu"), "ground truth (nyu 14)")
        save_png(folder / "nyu.png", image_grid([pred, truth], 2))

    synth = synth_reference()
    nyu_gt = nyu_truth_quality(nyu_depth, nyu_uvd, nyu_K)
    print_tables(names, kinect, nyu, synth, nyu_gt)
    print_frames("Kinect V2 frames", names, [kinect[n] for n in names], [file_number(f.name) for f in frames])
    if room:
        print_frames(f"kinect2_room depth frames ({len(room)}; {len(skipped)} files not depth, skipped), by-eye label",
                     names, [rooms[n] for n in names], [f"{n} {labels.get(n, '?')}" for n, _ in room])
        for n in names:
            rows = rooms[n]["per_frame"]
            print(f"  {n}: hands found in {sum(r['hand_found'] for r in rows)} of {len(rows)}; by-eye 'hand' frames "
                  f"found {sum(r['hand_found'] for r in rows if r['by_eye'] == 'hand')}/"
                  f"{sum(r['by_eye'] == 'hand' for r in rows)}, 'none' frames with a hand found "
                  f"{sum(r['hand_found'] for r in rows if r['by_eye'] == 'none')}/{sum(r['by_eye'] == 'none' for r in rows)}; "
                  f"means over found: uncovered {fmt(rooms[n]['mean']['hand_uncovered'])}, "
                  f"reach {fmt(rooms[n]['mean']['fingertip_reach'])}")
    figures = {"kinect2": kinect, "kinect2_room": rooms, "nyu_frame": nyu, "nyu_ground_truth": nyu_gt,
               "synth_truth": synth, "environment": environment()}
    (out / "real_frames.json").write_text(json.dumps(jsonable(figures), indent=1))
    print(f"\nwrote {out}/real_frames.json and overlays in {', '.join(str(out / n) for n in names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
