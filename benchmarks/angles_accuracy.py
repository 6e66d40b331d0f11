"""Is the fitted skeleton (srnpose.fit_angles) more accurate than the network's raw joints?

    python benchmarks/angles_accuracy.py [--checkpoint RUN] [--frames 300]

1. Synthetic test set (engine v2's fixed frames; first crop at the labelled joints' centroid, as the
   demo scores): mean 3D error of the raw joints and of the kinematic hand fitted to each frame alone
   (independent frames are different hands: a sequence of one), and the fit residual.
2. The labelled NYU frame (label-free crop), raw and fitted, scored on NYU's 14 joints.
3. The 30 Kinect V2 frames (one hand, one sequence, unlabelled): fitted through the whole sequence
   with one shape; the spread of each bone's length over the frames (raw against fitted) and the
   label-free measures of srnpose.evaluation.quality on both.

Default checkpoint: the shipped model. Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def _bones(joints: np.ndarray) -> np.ndarray:
    from srnpose.hand.skeleton import CANONICAL

    a = np.array([i for i, _ in CANONICAL.bones])
    b = np.array([j for _, j in CANONICAL.bones])
    return np.linalg.norm(joints[..., b, :] - joints[..., a, :], axis=-1)


def synthetic(ck_path: Path, frames: int) -> None:
    from srnpose.evaluation.model_eval import load_test_records
    from srnpose.geometry import uvd_to_xyz
    from srnpose.hand.ik import fit_poses
    from srnpose.inference.frame_path import FramePath, estimate_records
    from srnpose.training.checkpoint import load_checkpoint

    ck = load_checkpoint(ck_path)
    engine = FramePath.from_checkpoint(ck, finder="depth")
    records = load_test_records("synth", frames, (ck.config.get("data") or {}).get("synth_resolution"),
                                synth_engine="v2")
    est = estimate_records(engine, records, "joints")
    raw = np.stack([e.stage_xyz(r.intrinsics)[-1] for e, r in zip(est, records)])
    gt = np.stack([uvd_to_xyz(np.asarray(r.joints_uvd, np.float64), r.intrinsics) for r in records])
    fit = fit_poses(raw, mirrored=False)
    err_raw = np.linalg.norm(raw - gt, axis=-1).mean()
    err_fit = np.linalg.norm(fit.joints_xyz - gt, axis=-1).mean()
    print(f"synthetic v2 test, {len(records)} frames: raw {err_raw:.2f} mm, fitted {err_fit:.2f} mm "
          f"(fit residual mean {fit.residual_mm.mean():.2f} mm)")


def nyu(est) -> None:
    from srnpose.data.datasets import load_records
    from srnpose.geometry import uvd_to_xyz
    from srnpose.hand.angles import fit_angles
    from srnpose.hand.skeleton import convert

    if not (SHARED / "nyu_frame").is_dir():
        print("NYU frame: ../shared/data/nyu_frame not found, skipped")
        return
    record = load_records(f"nyu:{SHARED / 'nyu_frame'}", "test")[0]
    res = est.predict(record.load_depth(), intrinsics=record.intrinsics)
    fitted = fit_angles([res])[0]
    gt = uvd_to_xyz(np.asarray(record.joints_uvd, np.float64), record.intrinsics)
    for name, joints in (("raw", res.joints_xyz), ("fitted", fitted.joints_fitted_xyz)):
        err = np.linalg.norm(convert(joints, "canonical", "nyu") - gt, axis=-1).mean()
        print(f"NYU frame, {name}: {err:.2f} mm (14 joints)")


def kinect(est) -> None:
    import dataclasses

    from srnpose.data.depth_io import read_png16
    from srnpose.evaluation.quality import quality_report
    from srnpose.hand.angles import fit_angles

    files = sorted((SHARED / "kinect2").glob("*.png"))
    if not files:
        print("Kinect V2: ../shared/data/kinect2 not found, skipped")
        return
    frames = [read_png16(f) for f in files]
    results = [est.predict(d, camera="kinect2") for d in frames]
    fitted = fit_angles(results)
    as_fitted = [dataclasses.replace(r, joints_xyz=f.joints_fitted_xyz) if f.hand_found else r
                 for r, f in zip(results, fitted)]
    for name, rs in (("raw", results), ("fitted", as_fitted)):
        joints = np.stack([r.joints_xyz for r in rs if r.hand_found])
        spread = _bones(joints).std(0)
        q = quality_report(frames, rs, "kinect2")
        shares = " ".join(f"{k} {v:.3f}" for k, v in q["mean"].items())
        print(f"Kinect V2, {name}: bone length std over the {len(joints)} frames mean {spread.mean():.2f} mm, "
              f"max {spread.max():.2f}; {shares}; jitter {q['jitter_mm']:.1f} mm")


def main() -> None:
    import srnpose
    from srnpose.weights import release_dir

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    path = args.checkpoint or release_dir()
    synthetic(path, args.frames)
    est = srnpose.load(path, fit=False)  # fit_angles on the network's joints
    nyu(est)
    kinect(est)


if __name__ == "__main__":
    main()
