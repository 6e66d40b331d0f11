"""Build the sample depth frames that ship in the package (``srnpose predict --sample``).

    python benchmarks/build_samples.py [--out src/srnpose/weights/samples] [--count 4]

Renders frames with the synthetic engine v2 (ours to redistribute) for the ``icvl`` camera preset
(320x240, mm), one per scene family in turn, keeping a frame when the label-free path of ``predict``
finds its hand (the nearest-blob search lands within ``--max-center-mm`` of the joints' centroid) and
every joint projects inside the frame. Writes ``NN_<family>.png`` (16-bit PNG, mm) and
``samples.json``: the camera, and per frame its file, engine, seed, scene family and true joints
(canonical order, camera-frame mm) so that an error can be computed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "src" / "srnpose" / "weights" / "samples"
CAMERA = "icvl"
FAMILIES = ("close_range", "hand_object", "third_person", "first_person")


def main() -> None:
    from srnpose.cameras import get_camera
    from srnpose.data.centering import CenterPolicy
    from srnpose.data.depth_io import write_png16
    from srnpose.geometry import uvd_to_xyz
    from srnpose.synth import frame_seed
    from srnpose.synth.engines import render

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--count", type=int, default=4)
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--max-center-mm", type=float, default=30.0)
    args = parser.parse_args()

    cam = get_camera(CAMERA)
    args.out.mkdir(parents=True, exist_ok=True)
    frames, index = [], 0
    while len(frames) < args.count:
        want = FAMILIES[len(frames) % len(FAMILIES)]
        seed = frame_seed(args.seed, index)
        index += 1
        f = render("v2", seed, cam.intrinsics, cam.resolution, camera=CAMERA)
        if f.scene != want:
            continue
        u, v = f.joints_uvd[:, 0], f.joints_uvd[:, 1]
        if not ((u >= 0) & (u < cam.resolution[0]) & (v >= 0) & (v < cam.resolution[1])).all():
            continue
        center = CenterPolicy().locate(f.depth_mm.astype(np.float32), f.intrinsics)
        if center is None:
            continue
        if np.linalg.norm(uvd_to_xyz(center, f.intrinsics) - f.joints_xyz.mean(0)) > args.max_center_mm:
            continue
        name = f"{len(frames):02d}_{f.scene}.png"
        write_png16(args.out / name, f.depth_mm)
        frames.append({"file": name, "engine": "v2", "seed": int(seed), "scene": f.scene, "pose_family": f.family,
                       "joints_xyz": np.round(f.joints_xyz, 2).tolist()})
        print(f"{name}: seed {seed}, pose family {f.family}, hand {f.hand_length_mm:.0f} mm")
    meta = {"camera": CAMERA, "depth_unit_mm": 1.0, "joint_layout": "canonical",
            "source": "rendered by srnpose's synthetic engine v2 (benchmarks/build_samples.py); "
                      "free to redistribute with srnpose (MIT)", "frames": frames}
    (args.out / "samples.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(frames)} frames and samples.json to {args.out} (tried {index} seeds)")


if __name__ == "__main__":
    main()
