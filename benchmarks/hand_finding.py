"""Hand finding on synthetic scene families and real frames: the nearest-blob search (the old default,
``--center depth``), the hand locator alone (``--center locator``) and the default (``--center auto``: the
locator says whether and where, the centre is the one training crops had there), with the shipped model.

    OMP_NUM_THREADS=1 python benchmarks/hand_finding.py [--frames-per-family 100] [--locator DIR] \
        [--engine v2|v3] [--checkpoint RUN] [--out /tmp/hand_finding]

1. Synthetic: the fixed engine v2 test set of ``benchmarks/bench_locator.py`` (``--engine v3``: v3's,
   with its ``turned`` family; 320x240, randomized sensors, ``--frames-per-family`` per scene family)
   and as many scenes rendered without their hands.
   Per family and finder: hands found, the first crop's centre and the last pass's crop centre (after
   the shipped model's recentring pass) against the labelled joints' centroid (median mm, share within
   30 mm; a frame without a hand found counts as infinitely far), and the joints' mean error (median
   mm); the last centre again over the frames where the labelled hand is the nearest hand (engine v3
   puts an unlabelled second hand nearer in some: the default takes the nearest hand there, by design,
   and a crop on it cannot be scored). Hand-less frames: the share where a hand is reported.
2. The 30 Kinect V2 frames (``../shared/data/kinect2``, preset kinect2) and the NYU frame, frame by
   frame: hand found, each finder's first centre against the search's (mm), the shipped model's
   ``hand_uncovered`` (share of the hand's points no bone passes within 25 mm of) and the NYU error
   over its 14 joints.
3. ``../shared/data/kinect2_room``: hand found or not per finder against ``kinect2_room_hands.txt``
   (which frames show a hand, made by eye): hits, misses, false alarms; frames cut by the border
   accepted either way; files that are not depth frames skipped. A contact sheet of the room frames
   marks each finder's centre (white ring: search, blue: locator, green cross: default).

Writes ``--out/hand_finding.json`` and ``--out/room_sheet.png``; prints the tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_locator import test_set  # noqa: E402  (the same fixed synthetic test set)

DATA = HERE.parent.parent / "shared" / "data"
ROOM_TRUTH = HERE / "kinect2_room_hands.txt"
FINDERS = ("depth", "locator", "auto")  # old default, the locator alone, the default
NAMES = {"depth": "search (old default)", "locator": "locator alone", "auto": "default (auto)"}
WITHIN_MM = 30.0


def engines(locator_dir: str | None, checkpoint: str | None = None, passes: int | None = None) -> dict:
    """One frame path per finder on the shipped model or ``checkpoint`` (torch network, one thread:
    bitwise repeatable), with ``passes`` network passes (default: the checkpoint's policy)."""
    from srnpose.inference.frame_path import FramePath
    from srnpose.locator.model import load_locator
    from srnpose.training.checkpoint import load_checkpoint
    from srnpose.weights import release_dir

    ckpt = load_checkpoint(checkpoint or release_dir())
    out = {f: FramePath.from_checkpoint(ckpt, "torch", threads=1, finder=f, passes=passes) for f in FINDERS}
    if locator_dir is not None:  # a candidate locator in place of the shipped one
        for f in ("locator", "auto"):
            out[f].locator = load_locator(locator_dir)
    return out


def dist_mm(a, b, k) -> float:
    from srnpose.geometry import uvd_to_xyz

    return float("inf") if a is None else float(np.linalg.norm(uvd_to_xyz(a, k) - uvd_to_xyz(b, k)))


def summary(d: list[float]) -> dict:
    d = np.asarray(d, dtype=np.float64)
    return {"median_mm": round(float(np.median(d)), 1), "within_30mm": round(float(np.mean(d <= WITHIN_MM)), 3)}


def other_hand_nearer(frame) -> bool:
    """Whether the frame's unlabelled second hand (engine v3) lies nearer the camera than the labelled
    one (median measured depth of each one's visible pixels): there the default takes the nearest hand,
    as it should, and a crop on it cannot be scored against the labels."""
    from srnpose.synth.scenes import PART_OTHER_HAND

    if not frame.second_hand or frame.part is None:
        return False
    depth = frame.depth_mm
    other = depth[(frame.part == PART_OTHER_HAND) & (depth > 0)]
    mine = depth[(frame.part >= 0) & (depth > 0)]
    return bool(other.size and mine.size and np.median(other) < np.median(mine))


def synthetic(paths: dict, per_family: int, engine: str = "v2") -> dict:
    from srnpose.data.centering import joints_centroid_uvd
    from srnpose.geometry import uvd_to_xyz
    from srnpose.inference.frame_path import FrameCamera

    sets, handless = test_set(per_family, engine)
    out: dict = {}
    for family, frames in sets.items():
        cams = [FrameCamera(f.intrinsics) for f in frames]
        truth = [joints_centroid_uvd(f.joints_uvd, f.intrinsics) for f in frames]
        nearest = [not other_hand_nearer(f) for f in frames]  # the labelled hand is the nearest one
        for name, path in paths.items():
            first = [path.locate(f.depth_mm, c) for f, c in zip(frames, cams)]
            ests = path.estimate([f.depth_mm for f in frames], cams, first)
            k = [f.intrinsics for f in frames]
            err = [float(np.linalg.norm(e.pass_xyz[-1] - uvd_to_xyz(f.joints_uvd, f.intrinsics), axis=1).mean())
                   if e.hand_found else float("inf") for e, f in zip(ests, frames)]
            out.setdefault(family, {})[name] = {
                "found": round(float(np.mean([c is not None for c in first])), 3),
                "first_centre": summary([dist_mm(c, t, kk) for c, t, kk in zip(first, truth, k)]),
                "last_centre": summary([dist_mm(e.center_uvd, t, kk) for e, t, kk in zip(ests, truth, k)]),
                "last_centre_labelled_nearest": summary([dist_mm(e.center_uvd, t, kk)
                                                         for e, t, kk, n in zip(ests, truth, k, nearest) if n]),
                "frames_labelled_nearest": int(sum(nearest)),
                "joints_error_median_mm": round(float(np.median(err)), 1)}
    out["hand-less frames: share reporting a hand"] = {
        name: round(float(np.mean([path.locate(d, FrameCamera(k)) is not None for d, k in handless])), 3)
        for name, path in paths.items()}
    return out


def real_frames(paths: dict) -> dict:
    """Kinect V2 frames and the NYU frame, frame by frame: each finder's first centre (in the frame
    path's un-mirrored view) and the shipped model's pose from it (``predict`` with that centre: the
    same steps as without one)."""
    from srnpose.cameras import get_camera
    from srnpose.data.datasets import load_records
    from srnpose.evaluation import quality
    from srnpose.geometry import uvd_to_xyz
    from srnpose.hand import skeleton
    from srnpose.inference.estimator import HandPoseEstimator
    from srnpose.inference.sensors import FolderSource

    kinect = get_camera("kinect2")
    frames = list(FolderSource(DATA / "kinect2"))
    rows = [{"frame": int(f.name)} for f in frames]
    nyu = load_records(f"nyu:{DATA / 'nyu_frame'}", "test")[0]
    nyu_depth, nyu_xyz = nyu.load_depth(), uvd_to_xyz(np.asarray(nyu.joints_uvd, dtype=np.float64), nyu.intrinsics)
    out: dict = {"kinect2": rows, "nyu": {}}
    for name, path in paths.items():
        est = HandPoseEstimator(path)
        for f, row in zip(frames, rows):
            first, r = first_and_pose(est, path, f.depth, kinect)
            row[name] = {"found": first is not None, "first_centre_uvd": first,
                         "hand_uncovered": None if r is None else round(quality.hand_uncovered(
                             f.depth, r.joints_xyz, kinect.intrinsics, r.layout, kinect.depth_unit_mm,
                             kinect.mirrored), 3)}
        first, r = first_and_pose(est, path, nyu_depth, get_camera("nyu"))
        err = None if r is None else float(np.linalg.norm(
            skeleton.convert(r.joints_xyz, r.layout, "nyu") - nyu_xyz, axis=1).mean())
        out["nyu"][name] = {"found": first is not None, "first_centre_uvd": first,
                            "mean_error_mm": None if err is None else round(err, 1)}
    k = path_cam(kinect).intrinsics
    for row in rows:  # each finder's first centre against the search's (the view's pixels)
        ref = row["depth"]["first_centre_uvd"]
        for name in paths:
            c = row[name]["first_centre_uvd"]
            row[name]["vs_search_mm"] = None if c is None or ref is None else round(
                dist_mm(np.array(c), np.array(ref), k), 1)
    return out


def first_and_pose(est, path, depth: np.ndarray, camera) -> tuple[list | None, object | None]:
    """A finder's first centre (u, v, d) in the un-mirrored view (None: no hand) and the pose from it."""
    from srnpose.geometry import ViewFlip

    flip = ViewFlip(depth.shape[1], camera.mirrored)
    centre = path.locate(flip.frame(depth), path_cam(camera))
    if centre is None:
        return None, None
    result = est.predict(depth, camera=camera.name, center_uvd=flip.uvd(centre))
    return [round(float(x), 1) for x in centre], result


def path_cam(camera):
    """The frame path's camera of a preset's frames in their un-mirrored view."""
    from srnpose.inference.frame_path import FrameCamera

    cam = FrameCamera(camera.intrinsics, camera.depth_unit_mm, camera.mirrored)
    return cam.view(cam.view_flip(camera.resolution[0]))


def read_truth(path: Path = ROOM_TRUTH) -> dict[int, str]:
    labels: dict[int, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        span, label = line.split()[:2]
        first, last = (int(x) for x in span.split("-"))
        labels.update({n: label for n in range(first, last + 1)})
    return labels


def room(paths: dict, out_dir: Path) -> dict:
    """Hits, misses and false alarms on the room frames against the by-eye list; a contact sheet."""
    from srnpose.cameras import get_camera
    from srnpose.data.depth_io import read_png16
    from srnpose.errors import UserError
    from srnpose.geometry import ViewFlip
    from srnpose.viz import image_grid, save_png

    cam = get_camera("kinect2")
    truth = read_truth()
    rows, tiles, skipped = [], [], []
    for n, label in sorted(truth.items()):
        file = DATA / "kinect2_room" / f"{n:08d}.png"
        if label == "not-depth":
            try:
                read_png16(file)
            except UserError:
                skipped.append(n)
                continue
        depth = read_png16(file)
        flip = ViewFlip(depth.shape[1], cam.mirrored)
        view = flip.frame(depth)
        centres = {name: path.locate(view, path_cam(cam)) for name, path in paths.items()}
        rows.append({"frame": n, "truth": label, **{name: c is not None for name, c in centres.items()}})
        tiles.append(room_tile(depth, {name: None if c is None else flip.uvd(c) for name, c in centres.items()},
                               f"{n} {label}"))
    save_png(out_dir / "room_sheet.png", image_grid(tiles, 6))
    counts = {}
    for name in paths:
        hand = [r for r in rows if r["truth"] == "hand"]
        none = [r for r in rows if r["truth"] == "none"]
        partial = [r for r in rows if r["truth"] == "partial"]
        counts[name] = {"hits": sum(r[name] for r in hand), "misses": sum(not r[name] for r in hand),
                        "false_alarms": sum(r[name] for r in none), "no_hand_frames": len(none),
                        "partial_found": f"{sum(r[name] for r in partial)}/{len(partial)}"}
    return {"frames": rows, "counts": counts, "skipped_not_depth": skipped}


def room_tile(depth: np.ndarray, centres: dict, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    from srnpose.viz import depth_to_rgb

    valid = depth[depth > 0]
    near = float(np.percentile(valid, 0.5)) if valid.size else 500.0
    img = Image.fromarray(np.ascontiguousarray(depth_to_rgb(depth.astype(np.float32), near - 20.0, near + 600.0)[::2, ::2]))
    draw = ImageDraw.Draw(img)  # a tile at half size: marks at half the frame's pixels
    marks = {"depth": (255, 255, 255), "locator": (60, 120, 255), "auto": (0, 255, 0)}
    for name, c in centres.items():
        if c is None:
            continue
        u, v = float(c[0]) / 2, float(c[1]) / 2
        if name == "depth":
            draw.ellipse([u - 9, v - 9, u + 9, v + 9], outline=marks[name], width=2)
        else:
            r = 7 if name == "auto" else 5
            draw.line([u - r, v, u + r, v], fill=marks[name], width=2)
            draw.line([u, v - r, u, v + r], fill=marks[name], width=2)
    draw.text((4, 4), text, fill=(255, 0, 255))
    return np.asarray(img)


def print_report(report: dict) -> None:
    syn = report["synthetic"] or {"hand-less frames: share reporting a hand": {}}
    print(f"\nsynthetic engine {report.get('engine', 'v2')}, {report['frames_per_family']} frames per family: median mm / share within 30 mm")
    print(f"{'family':<14}{'finder':<22}{'found':>7}{'first centre':>16}{'last centre':>16}{'joints mm':>11}"
          f"  last centre where the labelled hand is the nearest (frames)")
    for family, by in syn.items():
        if family.startswith("hand-less"):
            continue
        for name, r in by.items():
            fc, lc = r["first_centre"], r["last_centre"]
            print(f"{family:<14}{NAMES[name]:<22}{r['found']:>7.2f}{fc['median_mm']:>9.1f} / {fc['within_30mm']:.2f}"
                  f"{lc['median_mm']:>9.1f} / {lc['within_30mm']:.2f}{r['joints_error_median_mm']:>11.1f}"
                  f"  {r['last_centre_labelled_nearest']['within_30mm']:.2f} ({r['frames_labelled_nearest']})")
    print("hand-less frames, share reporting a hand:",
          ", ".join(f"{NAMES[k]} {v:.2f}" for k, v in syn["hand-less frames: share reporting a hand"].items()))
    real = report["real"]
    print("\nKinect V2 frames: found / hand_uncovered / first centre's distance to the search's (mm)")
    for row in real["kinect2"]:
        cells = [f"{'+' if row[n]['found'] else '-'} {fmt(row[n]['hand_uncovered'])} {fmt(row[n]['vs_search_mm'], 1)}"
                 for n in FINDERS]
        print(f"  {row['frame']:02d}  " + "   ".join(f"{NAMES[n]}: {c:<18}" for n, c in zip(FINDERS, cells)))
    for n in FINDERS:
        unc = [r[n]["hand_uncovered"] for r in real["kinect2"] if r[n]["hand_uncovered"] is not None]
        print(f"  {NAMES[n]:<22} found {sum(r[n]['found'] for r in real['kinect2'])}/{len(real['kinect2'])}, "
              f"hand_uncovered mean {np.mean(unc):.3f} median {np.median(unc):.3f}; NYU frame: "
              f"{fmt(real['nyu'][n]['mean_error_mm'], 1)} mm, first centre {real['nyu'][n]['first_centre_uvd']}")
    rm = report["room"]
    print(f"\nkinect2_room ({len(rm['frames'])} depth frames; {len(rm['skipped_not_depth'])} files not depth, "
          f"skipped), against the by-eye list {ROOM_TRUTH.name}:")
    for n, c in rm["counts"].items():
        print(f"  {NAMES[n]:<22} hits {c['hits']}, misses {c['misses']}, false alarms {c['false_alarms']} "
              f"of {c['no_hand_frames']} hand-less frames; hands cut by the border found {c['partial_found']}")


def fmt(x, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames-per-family", type=int, default=100)
    parser.add_argument("--locator", metavar="DIR", help="a locator to use instead of the shipped one")
    parser.add_argument("--out", default="/tmp/hand_finding", help="hand_finding.json and room_sheet.png")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--engine", default="v2", choices=("v2", "v3"),
                        help="the synthetic test frames' engine (v3 adds the turned family)")
    parser.add_argument("--checkpoint", metavar="RUN", help="the pose model (default: the shipped one)")
    parser.add_argument("--passes", type=int, default=None,
                        help="network passes per frame (default: the checkpoint's policy)")
    args = parser.parse_args(argv)

    from srnpose.data.centering import MAX_PASSES

    if args.passes is not None and not 1 <= args.passes <= MAX_PASSES:
        parser.error(f"--passes: must be in [1, {MAX_PASSES}], got {args.passes}")

    from srnpose.inference.bench import machine_info

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    paths = engines(args.locator, args.checkpoint, args.passes)
    report = {"machine": machine_info(), "locator": args.locator or "shipped", "engine": args.engine,
              "checkpoint": args.checkpoint or "shipped", "frames_per_family": args.frames_per_family,
              "passes": args.passes or "the checkpoint's"}
    report["synthetic"] = {} if args.skip_synthetic else synthetic(paths, args.frames_per_family, args.engine)
    report["real"] = real_frames(paths)
    report["room"] = room(paths, out)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    (out / "hand_finding.json").write_text(json.dumps(report, indent=1))
    print_report(report)
    print(f"\nwrote {out / 'hand_finding.json'} and {out / 'room_sheet.png'} ({report['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
