"""The learned hand locator against the nearest-blob search, on synthetic full frames and real Kinect V2 frames.

    srnpose locator train --out LOCATOR --minutes 20 --onnx       # first, once
    OMP_NUM_THREADS=1 python benchmarks/bench_locator.py --locator LOCATOR [--test-frames 100] \
        [--overlays /tmp/locator_overlays]

1. A fixed synthetic test set: engine v2 frames (``synth.engines.render("v2", frame_seed(TEST_SEED, i))``,
   the default camera 320x240, randomized sensors) until each scene family has ``--test-frames``; and as
   many v2 scenes rendered without their hands. Per family: the median 3D distance (mm) from the centre
   to the labelled joints' centroid and the share within 30 mm, for the nearest-blob search
   (``CenterPolicy().locate``: what ``FramePath`` runs without a locator) and the locator
   (``Locator.locate``: what ``FramePath`` runs with one: the nearest peak), its best-scoring peak
   instead, and its centre refined by the search in its cube (``refine=True``); a frame where a method
   finds nothing counts as infinitely far. The same on the frames where the search fails (> 80 mm off, or nothing found). Hand-less
   frames: the share where each method still reports a hand.
2. Latency on the 30 Kinect V2 frames (512x424), interleaved rounds in one run: ``Locator.locate``
   (torch and onnxruntime, 1 thread), the nearest-blob search, and the end-to-end time of the paper
   model (``SRN.from_config(SRNConfig())``, untrained) on onnxruntime fp32 through
   ``HandPoseEstimator.predict`` (search, crop, network, decode): default threads, one thread, and with
   the locator in place of the search; the locator's share of the end to end.
3. The Kinect V2 frames (../shared/data/kinect2, camera preset kinect2: mirrored, flipped to the camera's
   view first): both centres per frame, their 3D distance, and overlays (white ring: nearest-blob; green
   cross: the locator; red: the locator says no hand, at its best peak) in ``--overlays``.

Writes ``--overlays/bench_locator.json``. Prints the tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
KINECT_DIR = REPO.parent / "shared" / "data" / "kinect2"
TEST_SEED = 20251204
WITHIN_MM = 30.0
SEARCH_FAILS_MM = 80.0  # the nearest-blob search "failed" on a frame: farther than this from the hand
TILE_W = 256  # contact-sheet tile width (a Kinect frame at half size)
OVERLAY_FRAMES = (0, 9, 19, 29)  # Kinect frames also written one by one at full size


def test_set(frames_per_family: int, engine: str = "v2"):
    """{family: [SynthFrame]} of ``engine`` (v2, or v3 with its ``turned`` family) from fixed seeds, and
    hand-less frames [(depth, intrinsics)] (v2's scenes)."""
    from srnpose.synth.engines import V3_WEIGHTS, render
    from srnpose.synth.frame import frame_seed, render_without_hands, resolve_camera
    from srnpose.synth.poses import HANDS_V2
    from srnpose.synth.scenes import SCENE_FAMILIES
    from srnpose.synth.sensor import sample_profile

    sets: dict[str, list] = {f: [] for f in (V3_WEIGHTS["scenes"] if engine == "v3" else SCENE_FAMILIES)}
    i = 0
    while min(len(v) for v in sets.values()) < frames_per_family:
        frame = render(engine, frame_seed(TEST_SEED, i))
        if len(sets[frame.scene]) < frames_per_family:
            sets[frame.scene].append(frame)
        i += 1
    k, resolution = resolve_camera(None, None)
    handless = []
    for j in range(frames_per_family):
        seed = frame_seed(TEST_SEED + 1, j)
        sensor = sample_profile(np.random.default_rng([seed, 1]))
        handless.append((render_without_hands(seed, k, resolution, sensor, SCENE_FAMILIES, HANDS_V2), k))
    return sets, handless


def centres(locator, frames) -> dict[str, list]:
    """Each method's centre (or None) per frame."""
    from srnpose.data.centering import CenterPolicy

    policy = CenterPolicy()
    out: dict[str, list] = {"nearest-blob search": [], "locator (score)": [], "locator + search refine": [],
                            "locator": []}
    for f in frames:
        k = f.intrinsics
        out["nearest-blob search"].append(policy.locate(f.depth_mm, k))
        out["locator (score)"].append(locator.locate(f.depth_mm, k, prefer="score")[0])
        out["locator + search refine"].append(locator.locate(f.depth_mm, k, refine=True)[0])
        out["locator"].append(locator.locate(f.depth_mm, k)[0])
    return out


def evaluate(locator, sets, handless) -> dict:
    from srnpose import geometry
    from srnpose.data.centering import CenterPolicy, joints_centroid_uvd
    from srnpose.locator.model import evaluate_centers

    results = {}
    for family, frames in sets.items():
        targets = [joints_centroid_uvd(f.joints_uvd, f.intrinsics) for f in frames]
        ks = [f.intrinsics for f in frames]
        results[family] = {name: evaluate_centers(p, targets, ks, WITHIN_MM)
                           for name, p in centres(locator, frames).items()}
    all_frames = [f for frames in sets.values() for f in frames]
    targets = [joints_centroid_uvd(f.joints_uvd, f.intrinsics) for f in all_frames]
    ks = [f.intrinsics for f in all_frames]
    preds = centres(locator, all_frames)
    results["all"] = {name: evaluate_centers(p, targets, ks, WITHIN_MM) for name, p in preds.items()}
    # the search's failures: frames where it lands > SEARCH_FAILS_MM from the hand (a torso, a forearm) or finds nothing
    fails = [i for i, (p, t, k) in enumerate(zip(preds["nearest-blob search"], targets, ks))
             if p is None or np.linalg.norm(geometry.uvd_to_xyz(p, k) - geometry.uvd_to_xyz(t, k)) > SEARCH_FAILS_MM]
    results[f"search fails ({len(fails)})"] = {
        name: evaluate_centers([p[i] for i in fails], [targets[i] for i in fails], [ks[i] for i in fails], WITHIN_MM)
        for name, p in preds.items()}
    policy = CenterPolicy()
    results["hand-less frames: share reporting a hand"] = {
        "nearest-blob search": float(np.mean([policy.locate(d, k) is not None for d, k in handless])),
        "locator": float(np.mean([locator.locate(d, k)[0] is not None for d, k in handless]))}
    return results


def kinect_frames():
    from srnpose.inference.frame_path import resolve_frame_camera
    from srnpose.inference.sensors import FolderSource

    cam = resolve_frame_camera(camera="kinect2")
    frames = [f.depth for f in FolderSource(KINECT_DIR)]
    return [np.ascontiguousarray(cam.view_flip(d.shape[1]).frame(d)) for d in frames], cam  # camera's view


def latency(locator_torch, locator_ort, views, cam, rounds: int = 5) -> dict:
    """Median ms per frame of each step, interleaved rounds over the Kinect frames."""
    from srnpose.config import SRNConfig
    from srnpose.data.centering import CenterPolicy
    from srnpose.inference.estimator import HandPoseEstimator
    from srnpose.inference.frame_path import FramePath
    from srnpose.model import SRN

    k, unit = cam.intrinsics, cam.depth_unit_mm
    policy = CenterPolicy()
    srn = SRN.from_config(SRNConfig()).eval()
    paper = HandPoseEstimator(FramePath.from_model(srn, policy, backend="onnxruntime"))
    paper_1t = HandPoseEstimator(FramePath.from_model(srn, policy, backend="onnxruntime", threads=1))
    paper_loc = HandPoseEstimator(FramePath.from_model(srn, policy, backend="onnxruntime", locator=locator_ort))
    fns = {"locator torch (locate)": lambda v: locator_torch.locate(v, k, unit),
           "locator onnxruntime (locate)": lambda v: locator_ort.locate(v, k, unit),
           "nearest-blob search": lambda v: policy.locate(v, k, unit),
           "paper SRN onnxruntime fp32 end to end": lambda v: paper.predict(v, k, unit),
           "paper SRN onnxruntime fp32 end to end, 1 thread": lambda v: paper_1t.predict(v, k, unit),
           "paper SRN onnxruntime fp32 end to end, with the locator": lambda v: paper_loc.predict(v, k, unit)}
    for fn in fns.values():  # warm up
        for v in views[:5]:
            fn(v)
    lat: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):  # interleaved: a noisy shared machine slows them alike
        for name, fn in fns.items():
            for v in views:
                t0 = time.perf_counter()
                fn(v)
                lat[name].append((time.perf_counter() - t0) * 1e3)
    out = {name: round(float(np.median(v)), 3) for name, v in lat.items()}
    out["spread (p10-p90) ms"] = {name: [round(float(np.percentile(v, 10)), 2), round(float(np.percentile(v, 90)), 2)]
                                  for name, v in lat.items()}
    parts = [locator_torch.predict(v, k, unit).timings_ms for v in views]
    out["locator torch steps (ms)"] = {key: round(float(np.median([p[key] for p in parts])), 3) for key in parts[0]}
    e2e, e2e_1t = out["paper SRN onnxruntime fp32 end to end"], out["paper SRN onnxruntime fp32 end to end, 1 thread"]
    out["locator share of the paper model's end to end"] = {
        "torch": round(out["locator torch (locate)"] / e2e, 3),
        "onnxruntime": round(out["locator onnxruntime (locate)"] / e2e, 3),
        "onnxruntime, vs the 1-thread end to end": round(out["locator onnxruntime (locate)"] / e2e_1t, 3)}
    return out


def kinect_centres(locator, views, cam, out_dir: Path) -> list[dict]:
    """Both centres on every Kinect frame; overlays of a few and a contact sheet in ``out_dir``."""
    from srnpose import geometry
    from srnpose.data.centering import CenterPolicy
    from srnpose.viz import image_grid, save_png

    k, unit = cam.intrinsics, cam.depth_unit_mm
    rows, tiles = [], []
    for i, view in enumerate(views):
        old = CenterPolicy().locate(view, k, unit)
        new, presence = locator.locate(view, k, unit)
        res = locator.predict(view, k, unit)
        img = _overlay(view, unit, old, new, res.peaks_uvd[0] if res.peaks_uvd else None, f"{i + 1:02d} p={presence:.2f}")
        if i in OVERLAY_FRAMES:
            save_png(out_dir / f"kinect_{i + 1:02d}.png", img)
        tiles.append(img[::2, ::2])
        dist = None if old is None or new is None else \
            float(np.linalg.norm(geometry.uvd_to_xyz(old, k) - geometry.uvd_to_xyz(new, k)))
        rows.append({"frame": i + 1, "nearest_blob": None if old is None else [round(float(x), 1) for x in old],
                     "locator": None if new is None else [round(float(x), 1) for x in new],
                     "presence": round(presence, 3), "distance_mm": None if dist is None else round(dist, 1)})
    save_png(out_dir / "kinect_sheet.png", image_grid(tiles, 6))
    return rows


def _overlay(view, unit, old, new, guess, label: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    from srnpose.viz import depth_to_rgb

    img = Image.fromarray(depth_to_rgb(view.astype(np.float32) * unit, 300.0, 2500.0))
    draw = ImageDraw.Draw(img)
    if old is not None:
        draw.ellipse([old[0] - 12, old[1] - 12, old[0] + 12, old[1] + 12], outline=(255, 255, 255), width=3)
    mark, color = (new, (0, 255, 0)) if new is not None else (guess, (255, 0, 0))
    if mark is not None:
        u, v = float(mark[0]), float(mark[1])
        draw.line([u - 12, v, u + 12, v], fill=color, width=3)
        draw.line([u, v - 12, u, v + 12], fill=color, width=3)
    draw.text((4, 4), label + " (camera view, un-mirrored)", fill=(255, 255, 255))
    return np.asarray(img)


def print_table(results: dict) -> None:
    names = list(results["all"])
    print(f"\n{'family':<22}" + "".join(f"{n:>28}" for n in names))
    print(f"{'':<22}" + "".join(f"{'median mm / <=30mm':>28}" for _ in names))
    for family, row in results.items():
        if family.startswith("hand-less"):
            continue
        cells = [f"{row[n]['median_mm']:7.1f} / {row[n]['within_30mm']:4.2f}" for n in names]
        print(f"{family:<22}" + "".join(f"{c:>28}" for c in cells))
    key = "hand-less frames: share reporting a hand"
    print(f"{key}: {json.dumps(results[key])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--locator", required=True, metavar="DIR", help="a folder from 'srnpose locator train'")
    parser.add_argument("--test-frames", type=int, default=100, help="synthetic test frames per family (default 100)")
    parser.add_argument("--overlays", default="/tmp/locator_overlays", metavar="DIR",
                        help="overlays and bench_locator.json (default /tmp/locator_overlays)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved latency rounds over the 30 frames")
    args = parser.parse_args(argv)

    import torch

    from srnpose.inference.bench import machine_info
    from srnpose.locator.model import load_locator

    torch.set_num_threads(1)
    machine = machine_info()
    out = Path(args.overlays)
    out.mkdir(parents=True, exist_ok=True)
    locator = load_locator(args.locator)
    train = __import__("yaml").safe_load((Path(args.locator) / "locator.yaml").read_text())["train"]
    print(f"locator {args.locator}: {json.dumps(train)}")
    t0 = time.perf_counter()
    sets, handless = test_set(args.test_frames)
    results = evaluate(locator, sets, handless)
    print_table(results)
    print(f"(synthetic evaluation {time.perf_counter() - t0:.0f} s)")
    report = {"machine": machine, "locator_train": train, "test_seed": TEST_SEED,
              "test_frames_per_family": args.test_frames, "synthetic": results}
    if KINECT_DIR.is_dir():
        views, cam = kinect_frames()
        lat = latency(locator, load_locator(args.locator, backend="onnxruntime"), views, cam, args.rounds)
        print("latency, ms per Kinect V2 frame (512x424), median:", json.dumps(lat, indent=1))
        report["latency_ms"] = lat
        rows = kinect_centres(locator, views, cam, out)
        report["kinect"] = rows
        dists = [r["distance_mm"] for r in rows if r["distance_mm"] is not None]
        print(f"kinect: locator finds a hand in {sum(r['locator'] is not None for r in rows)}/{len(rows)} frames, "
              f"the nearest-blob search in {sum(r['nearest_blob'] is not None for r in rows)}; distance between "
              f"them median {np.median(dists) if dists else float('nan'):.1f} mm, max "
              f"{max(dists) if dists else float('nan'):.1f} mm; overlays in {out}")
    else:
        print(f"no Kinect frames at {KINECT_DIR}: latency and overlays skipped")
    report["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    (out / "bench_locator.json").write_text(json.dumps(report, indent=1))
    print(f"load average at start {machine.get('loadavg_at_start')}, at end {report['loadavg_at_end']}; "
          f"wrote {out / 'bench_locator.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
