"""Build the real-hand pose prior: fit the kinematic hand to every FPHA pose, keep the joint angles.

    nice -n 10 python benchmarks/build_pose_prior.py [--data ../shared/data/poses/fpha_poses.npz]
        [--out src/srnpose/synth/pose_prior.npz] [--max-residual-mm 10]

Reads the 21-joint poses (hands17 order, camera frame mm), converts them to the canonical order,
decides the data's handedness on every 10th pose (fits as right and as left hands, counts which
fits better), fits all poses as that hand (:func:`srnpose.hand.ik.fit_poses`), prints the residual
statistics and writes the table that ``sample_pose(rng, "prior")`` draws from: fitted chain angles,
cup, residual, sequence ids; never the joints. Poses whose mean joint residual exceeds
``--max-residual-mm`` are dropped (and counted).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "poses" / "fpha_poses.npz"
DEFAULT_OUT = ROOT / "src" / "srnpose" / "synth" / "pose_prior.npz"
ATTRIBUTION = "FPHA, Garcia-Hernando et al., CVPR 2018; research use; derived joint angles only"


def _stats(name: str, residual_mm: np.ndarray) -> None:
    print(f"{name:>28}: mean {residual_mm.mean():6.2f}  median {np.median(residual_mm):6.2f}  "
          f"p95 {np.percentile(residual_mm, 95):6.2f}  max {residual_mm.max():6.2f} mm  (n={len(residual_mm)})")


def main() -> None:
    from srnpose.hand.ik import ANGLE_NAMES, fit_poses
    from srnpose.hand.skeleton import convert

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--max-residual-mm", type=float, default=10.0)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, numpy {np.__version__}")

    start = time.perf_counter()
    data = np.load(args.data)
    joints = convert(data["xyz_mm"].astype(np.float64), "hands17", "canonical")  # (N, 21, 3)
    print(f"{len(joints)} poses from {len(data['sequence_names'])} sequences: {args.data}")

    probe = joints[::10]
    t0 = time.perf_counter()
    as_right = fit_poses(probe, mirrored=False).residual_mm
    as_left = fit_poses(probe, mirrored=True).residual_mm
    left_share = float(np.mean(as_left < as_right))
    mirrored = left_share > 0.5
    print(f"handedness on {len(probe)} poses ({time.perf_counter() - t0:.1f} s): the left-hand fit is "
          f"better for {100 * left_share:.1f} % -> {'left' if mirrored else 'right'} hands")
    _stats("fitted as right hands", as_right)
    _stats("fitted as left hands", as_left)

    t0 = time.perf_counter()
    fit = fit_poses(joints, mirrored=mirrored)
    fit_s = time.perf_counter() - t0
    print(f"fit of {len(joints)} poses: {fit_s:.1f} s ({1e3 * fit_s / len(joints):.2f} ms per pose), one process")
    _stats("all poses", fit.residual_mm)
    per_joint = np.linalg.norm(fit.joints_xyz - joints, axis=-1).mean(0)  # (21,)
    print("mean residual per joint (mm), canonical order:", np.array2string(per_joint, precision=1))
    print(f"frame roll against the palm (deg): median {np.median(fit.roll_deg):.1f}, "
          f"p5 {np.percentile(fit.roll_deg, 5):.1f}, p95 {np.percentile(fit.roll_deg, 95):.1f}")

    keep = fit.residual_mm <= args.max_residual_mm
    print(f"dropped {int((~keep).sum())} of {len(keep)} poses ({100 * (~keep).mean():.2f} %) with residual "
          f"> {args.max_residual_mm} mm")
    _stats("kept poses", fit.residual_mm[keep])
    chain = fit.chain_deg[keep]
    print("kept angles, mean (std) deg:")
    for f, names in enumerate(ANGLE_NAMES):
        print("   " + "  ".join(f"{n} {chain[:, f, k].mean():6.1f} ({chain[:, f, k].std():4.1f})"
                                for k, n in enumerate(names)))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        chain_deg=chain.astype(np.float16),  # (N, 5, 4), HandPose.chain_deg
        cup=fit.cup[keep].astype(np.float16),  # (N,)
        residual_mm=fit.residual_mm[keep].astype(np.float16),  # (N,)
        sequence=data["sequence"][keep].astype(np.int16),  # (N,) index into sequence_names
        frame=data["frame"][keep].astype(np.int16),  # (N,)
        sequence_names=np.asarray(data["sequence_names"]),
        angle_names=np.asarray(ANGLE_NAMES),  # (5, 4)
        mirrored=np.bool_(mirrored),  # the data's hands were fitted as left hands
        max_residual_mm=np.float32(args.max_residual_mm),
        attribution=np.str_(ATTRIBUTION),
    )
    size_kb = args.out.stat().st_size / 1024
    print(f"wrote {args.out} ({int(keep.sum())} poses, {size_kb:.0f} KiB); total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
