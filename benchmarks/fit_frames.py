"""Raw network joints against the articulated hand fitted to the depth (srnpose.fitting), on synthetic and real frames.

    python benchmarks/fit_frames.py [--checkpoint RUN_OR_ONNX] [--synth-frames 200] [--out runs/fit_frames]

1. **Synthetic**: the first ``--synth-frames`` frames of the held-out engine ``--engine`` (v2) test set (``srnpose evaluate
   --data synth``'s, seed ``SYNTH_TEST_SEED``, sensor noise of every profile), first crop at the labelled
   joints' centroid as evaluate does on v2; mean 3D joint error raw vs fitted, per scene family and per
   pose family.
2. **NYU**: the labelled NYU frame (camera ``nyu``), predicted on the full frame as ``srnpose evaluate
   --data nyu:../shared/data/nyu_frame``; the 14 evaluated joints' mean / max error raw vs fitted.
3. **Kinect V2**: the 30 real frames (camera ``kinect2``, mirrored); srnpose.evaluation.quality's
   label-free measures raw vs fitted frame by frame (``fit_frames``) and as one sequence
   (``fit_sequence_frames``: one shape, temporal term); overlays raw | fitted | sequence-fitted per frame
   and on one sheet in ``--out``. ``--room`` adds the room frames (hand small, often absent; the 38 of
   123 that are 16-bit depth PNGs, the others are 8-bit images).
4. **Speed**: the fit's ms per frame on one thread (wall and process CPU time, median), next to
   ``predict``'s in the same run, and the frames/s of the two together.

Prints the tables and writes ``fit_frames.json``; asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_frames as rf  # noqa: E402  (the real-frame helpers: data folders, NYU reader, zoomed tiles)

MEASURES = rf.MEASURES


# --------------------------------------------------------------------------- synthetic


def synthetic(est, frames: int, cfg, engine: str = "v2") -> dict:
    """Raw vs fitted mean joint error (mm) and spread (the joints' mean distance to their centroid over
    the labels', 1.0 = neither bunched nor splayed) on the held-out test frames of ``engine``, per scene
    and pose family."""
    from srnpose.data.records import HandRecord
    from srnpose.evaluation.quality import joint_spread_mm
    from srnpose.fitting.fit import fit_frames
    from srnpose.inference.frame_path import estimate_records
    from srnpose.synth.engines import render
    from srnpose.synth.frame import frame_seed, resolve_camera
    from srnpose.training.run_config import SYNTH_TEST_SEED

    intrinsics, resolution = resolve_camera(None, None)
    rendered = [render(engine, frame_seed(SYNTH_TEST_SEED, i), intrinsics, resolution) for i in range(frames)]
    records = [HandRecord(joints_uvd=f.joints_uvd, intrinsics=f.intrinsics, depth=f.depth_mm.astype(np.float32),
                          extra={"is_left": f.is_left}) for f in rendered]
    estimates = estimate_records(est.engine, records, "joints", 64)
    rows = []
    for f, e in zip(rendered, estimates):
        if not e.hand_found:
            continue
        raw = e.pass_xyz[-1]
        fit = fit_frames([f.depth_mm.astype(np.float64)], f.intrinsics, raw[None], cfg,
                         handedness="left" if f.is_left else "right")
        label_spread = joint_spread_mm(f.joints_xyz)
        rows.append({"scene": f.scene, "family": f.family, "raw": _err(raw, f.joints_xyz),
                     "fitted": _err(fit.joints_xyz[0], f.joints_xyz), "ms": fit.ms_per_frame,
                     "raw_spread": joint_spread_mm(raw) / label_spread,
                     "fitted_spread": joint_spread_mm(fit.joints_xyz[0]) / label_spread})
    out: dict[str, Any] = {"engine": engine, "frames": frames, "hands_found": len(rows), "all": _summary(rows)}
    for key in ("scene", "family"):
        out[f"by_{key}"] = {name: _summary([r for r in rows if r[key] == name])
                            for name in sorted({r[key] for r in rows})}
    return out


def _err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b), axis=-1).mean())


def _summary(rows: list[dict]) -> dict:
    raw = np.array([r["raw"] for r in rows])
    fitted = np.array([r["fitted"] for r in rows])
    return {"frames": len(rows), "raw_mm": float(raw.mean()), "fitted_mm": float(fitted.mean()),
            "better_share": float(np.mean(fitted < raw)),
            "raw_spread": float(np.mean([r["raw_spread"] for r in rows])),
            "fitted_spread": float(np.mean([r["fitted_spread"] for r in rows]))}


# --------------------------------------------------------------------------- real frames


def nyu(est, data: Path, cfg) -> tuple[dict, Any, Any, np.ndarray, np.ndarray]:
    from srnpose.fitting.results import fit_results
    from srnpose.geometry import uvd_to_xyz
    from srnpose.hand import skeleton

    depth, gt_uvd, K = rf.load_nyu(data / "nyu_frame")
    gt = uvd_to_xyz(gt_uvd, K)
    raw = est.predict(depth, camera=rf.NYU_CAMERA)
    fitted = fit_results([raw], [depth], rf.NYU_CAMERA, cfg, replace=True)[0]
    out = {}
    for name, r in (("raw", raw), ("fitted", fitted)):
        err = np.linalg.norm(skeleton.convert(r.joints_xyz, r.layout, "nyu") - gt, axis=1)
        out[name] = {"mean_mm": float(err.mean()), "max_mm": float(err.max()), "per_joint_mm": np.round(err, 1).tolist()}
    return out, raw, fitted, depth, gt_uvd


def readable(folder: Path) -> list:
    """The folder's frames (srnpose.inference.sensors.Frame) that read as 16-bit depth PNGs: 85 of
    kinect2_room's 123 files are 8-bit images (mode L), which predict refuses too; they are skipped."""
    from srnpose.data.depth_io import read_png16
    from srnpose.errors import UserError
    from srnpose.inference.sensors import Frame

    frames = []
    for i, path in enumerate(sorted(folder.glob("*.png"))):
        try:
            frames.append(Frame(i, path.stem, read_png16(path), i / 30.0, str(path)))
        except UserError:
            continue
    return frames


def kinect(est, folder: Path, cfg) -> tuple[dict, list, dict]:
    """Label-free measures raw, fitted frame by frame, fitted as a sequence; the results of each."""
    from srnpose.evaluation.quality import quality_report
    from srnpose.fitting.results import fit_results

    frames = readable(folder)
    depths = [f.depth for f in frames]
    raw = [est.predict(d, camera=rf.KINECT_CAMERA) for d in depths]
    runs = {"raw": raw, "fitted": fit_results(raw, depths, rf.KINECT_CAMERA, cfg, replace=True),
            "sequence": fit_results(raw, depths, rf.KINECT_CAMERA, None, sequence=True, replace=True)}
    reports = {name: quality_report(depths, res, rf.KINECT_CAMERA) for name, res in runs.items()}
    return reports, frames, runs


def timing(est, depths: list, cfg, repeats: int = 3) -> dict:
    """Median ms per frame of predict and of the fit (one thread), wall and process CPU time."""
    from srnpose.fitting.results import fit_results

    results = [est.predict(d, camera=rf.KINECT_CAMERA) for d in depths]
    fit_results(results[:2], depths[:2], rf.KINECT_CAMERA, cfg)  # warm-up: caches, the pose prior

    def clock(fn) -> tuple[float, float]:
        walls, cpus = [], []
        for _ in range(repeats):
            for i in range(len(depths)):
                w0, c0 = time.perf_counter(), time.process_time()
                fn(i)
                walls.append((time.perf_counter() - w0) * 1e3)
                cpus.append((time.process_time() - c0) * 1e3)
        return float(np.median(walls)), float(np.median(cpus))

    predict = clock(lambda i: est.predict(depths[i], camera=rf.KINECT_CAMERA))
    fit = clock(lambda i: fit_results([results[i]], [depths[i]], rf.KINECT_CAMERA, cfg))
    return {"predict_ms_wall": predict[0], "predict_ms_cpu": predict[1], "fit_ms_wall": fit[0],
            "fit_ms_cpu": fit[1], "fps_cpu_without_fit": 1e3 / predict[1],
            "fps_cpu_with_fit": 1e3 / (predict[1] + fit[1]), "fit_share": fit[1] / (predict[1] + fit[1]),
            "iterations": cfg.iterations}


# --------------------------------------------------------------------------- drawing


def _tile_row(frame, runs: dict, reports: dict, k: int) -> list[np.ndarray]:
    depth = frame.depth.astype(np.float32)
    tiles = []
    for name, res in runs.items():
        row = reports[name]["per_frame"][k]
        text = f"{frame.index:02d} {name}" + (f" un{row['hand_uncovered']:.2f} sv{row['surface_violation']:.2f}"
                                              if res[k].hand_found else "")
        r = res[k]
        if r.hand_found and name != "raw":  # the raw result's box: the same window for all three
            r = dataclasses.replace(r, crop_box=runs["raw"][k].crop_box, center_uvd=runs["raw"][k].center_uvd)
        tiles.append(rf.kinect_tile(depth, r, text, size=256))
    return tiles


def draw(out: Path, frames: list, runs: dict, reports: dict, nyu_parts: tuple) -> None:
    from srnpose.viz import draw_skeleton, image_grid, save_png

    out.mkdir(parents=True, exist_ok=True)
    sheet = []
    for k, frame in enumerate(frames):
        row = _tile_row(frame, runs, reports, k)
        save_png(out / f"kinect_{frame.index:02d}.png", image_grid(row, len(row)))
        sheet += row
    save_png(out / "kinect_sheet.png", image_grid(sheet, 6))
    report, raw, fitted, depth, gt_uvd = nyu_parts
    uv = np.concatenate([gt_uvd[:, :2], raw.joints_uvd[:, :2], fitted.joints_uvd[:, :2]])
    box = rf.square_box(uv, margin_px=30.0)
    base = rf.zoom_tile(depth, box, float(np.median(gt_uvd[:, 2])), rf.NYU_TILE_PX)
    tiles = [rf.label(draw_skeleton(base, rf.to_tile(r.joints_uvd, box, rf.NYU_TILE_PX), r.layout),
                      f"{name} {report[name]['mean_mm']:.1f} mm") for name, r in (("raw", raw), ("fitted", fitted))]
    tiles.append(rf.label(draw_skeleton(base, rf.to_tile(gt_uvd, box, rf.NYU_TILE_PX), "nyu"), "ground truth"))
    save_png(out / "nyu.png", image_grid(tiles, 3))


# --------------------------------------------------------------------------- main


def config(overrides: list[str]):
    """FitConfig() with ``NAME=VALUE`` overrides of its, its weights' or its selection's fields."""
    from srnpose.fitting.energy import EnergyWeights
    from srnpose.fitting.fit import FitConfig
    from srnpose.fitting.targets import SelectConfig

    parts = {"": {}, "weights": {}, "select": {}}
    for item in overrides:
        name, _, value = item.partition("=")
        for key, cls in (("weights", EnergyWeights), ("select", SelectConfig), ("", FitConfig)):
            if name in {f.name for f in dataclasses.fields(cls)}:
                parts[key][name] = type(getattr(cls(), name))(value) if not isinstance(getattr(cls(), name), bool) \
                    else value.lower() in ("1", "true", "yes")
                break
        else:
            raise SystemExit(f"--set {item}: no such field")
    return FitConfig(weights=EnergyWeights(**parts["weights"]), select=SelectConfig(**parts["select"]), **parts[""])



def print_tables(figures: dict) -> None:
    s = figures.get("synthetic")
    if s:
        print(f"\nSynthetic {s['engine']} test frames ({s['hands_found']} of {s['frames']}): mean joint error mm "
              "and spread (over the labels'), raw -> fitted")
        for key in ("by_scene", "by_family"):
            for name, v in [*s[key].items(), *([("all", s["all"])] if key == "by_family" else [])]:
                print(f"  {name:<18} {v['frames']:>4} frames  {v['raw_mm']:6.2f} -> {v['fitted_mm']:6.2f} mm"
                      f"   spread {v['raw_spread']:.2f} -> {v['fitted_spread']:.2f}"
                      f"   (fit better on {v['better_share']:.0%})")
    n = figures["nyu"]
    print(f"\nNYU frame: mean / max error mm  raw {n['raw']['mean_mm']:.1f} / {n['raw']['max_mm']:.1f}   "
          f"fitted {n['fitted']['mean_mm']:.1f} / {n['fitted']['max_mm']:.1f}")
    for title, reports in (("Kinect V2", figures["kinect"]), ("Kinect V2 room", figures.get("room"))):
        if not reports:
            continue
        print(f"\n{title} ({reports['raw']['frames']} frames, {reports['raw']['hands_found']} hands): label-free "
              "measures (0 = all pass)   raw   fitted  sequence")
        for m in MEASURES:
            print(f"  {m:<28}" + "".join(f"{reports[k]['mean'][m]:>9.3f}" for k in ("raw", "fitted", "sequence")))
        for m in ("jitter_mm", "jitter_about_centroid_mm"):
            print(f"  {m:<28}" + "".join(f"{reports[k][m]:>9.2f}" for k in ("raw", "fitted", "sequence")))
    t = figures.get("timing")
    if not t:
        return
    print(f"\nSpeed, one thread ({t['iterations']} LM steps): predict {t['predict_ms_cpu']:.2f} ms CPU "
          f"({t['predict_ms_wall']:.2f} wall), fit {t['fit_ms_cpu']:.2f} ms CPU ({t['fit_ms_wall']:.2f} wall); "
          f"{t['fps_cpu_without_fit']:.0f} -> {t['fps_cpu_with_fit']:.0f} frames/s of CPU time, fit share "
          f"{t['fit_share']:.0%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="run folder, checkpoint or .onnx (default: the shipped model)")
    parser.add_argument("--backend", default="onnxruntime", choices=("torch", "onnxruntime"))
    parser.add_argument("--synth-frames", type=int, default=200, help="synthetic test frames (0: skip)")
    parser.add_argument("--engine", default="v2", choices=("v2", "v3"), help="the synthetic test frames' engine")
    parser.add_argument("--iterations", type=int, default=None, help="LM steps (default: FitConfig's)")
    parser.add_argument("--passes", type=int, default=None,
                        help="network passes per frame (default: the checkpoint's policy)")
    parser.add_argument("--room", action="store_true", help="also the 123 kinect2_room frames")
    parser.add_argument("--data", default=str(rf.DEFAULT_DATA), help="the shared data folder")
    parser.add_argument("--out", default="runs/fit_frames", help="folder for overlays and fit_frames.json")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a FitConfig, EnergyWeights or SelectConfig field (repeatable)")
    parser.add_argument("--no-draw", action="store_true", help="skip the overlays")
    parser.add_argument("--no-timing", action="store_true", help="skip the speed measurement")
    args = parser.parse_args(argv)

    from srnpose.data.centering import MAX_PASSES

    if args.passes is not None and not 1 <= args.passes <= MAX_PASSES:
        parser.error(f"--passes: must be in [1, {MAX_PASSES}], got {args.passes}")

    import srnpose

    cfg = config(args.set)
    if args.iterations is not None:
        cfg = dataclasses.replace(cfg, iterations=args.iterations)
    est = srnpose.load(args.checkpoint, backend=args.backend, threads=1, fit=False)  # raw; fitted here
    if args.passes is not None:
        est.engine.policy = est.engine.policy.with_passes(args.passes)
    data, out = Path(args.data), Path(args.out)
    figures: dict[str, Any] = {"config": dataclasses.asdict(cfg), "environment": rf.environment()}
    reports, frames, runs = kinect(est, data / "kinect2", cfg)
    figures["kinect"] = reports
    nyu_parts = nyu(est, data, cfg)
    figures["nyu"] = nyu_parts[0]
    if args.room:
        figures["room"] = kinect(est, data / "kinect2_room", cfg)[0]
    if not args.no_timing:
        figures["timing"] = timing(est, [f.depth for f in frames], cfg)
    if args.synth_frames:
        figures["synthetic"] = synthetic(est, args.synth_frames, cfg, args.engine)
    out.mkdir(parents=True, exist_ok=True)
    if not args.no_draw:
        draw(out, frames, runs, reports, nyu_parts)
    print_tables(figures)
    for rep in [figures["kinect"]] + ([figures["room"]] if args.room else []):
        for name in rep:
            rep[name].pop("per_frame", None)
    (out / "fit_frames.json").write_text(json.dumps(rf.jsonable(figures), indent=1))
    print(f"\nwrote {out}/fit_frames.json and overlays (kinect_NN.png: raw | fitted | sequence, kinect_sheet.png, nyu.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
