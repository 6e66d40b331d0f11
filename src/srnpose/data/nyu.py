"""NYU Hand Pose dataset (Tompson et al., TOG 2014) in its native layout.

Layout (as the dataset ships)::

    <root>/train/joint_data.mat, depth_1_0000001.png ... depth_1_0072757.png
    <root>/test/joint_data.mat,  depth_1_0000001.png ... depth_1_0008252.png

Conventions (checked against DeepPrior++ ``NYUImporter`` and V2V-PoseNet's NYU loader):

* ``depth_K_NNNNNNN.png`` is 8-bit RGB; depth in mm = ``(G << 8) | B`` (R unused). ``K`` is the
  Kinect (1 = the frontal view, the one every paper uses); ``NNNNNNN`` is the 1-based frame index.
* ``joint_data.mat`` holds ``joint_uvd`` and ``joint_xyz``, each (views, frames, 36, 3); view index 0
  is Kinect 1. ``joint_uvd`` is (u px, v px, d mm); ``joint_xyz`` is mm with y *up*, so with the
  community intrinsics fx 588.03, fy -587.07 (negative: v grows down, y up), cx 320, cy 240,
  ``uvd_to_xyz(joint_uvd) == joint_xyz``. Labels come from ``joint_uvd``.
* Evaluation uses 14 of the 36 points, ``skeleton.NYU_EVAL_INDICES`` (Tompson's evaluation subset,
  DeepPrior++ ``restrictedJointsEval``); records carry those 14 (layout ``nyu``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from srnpose.data.datasets import BadFrames, dataset_intrinsics
from srnpose.data.records import HandRecord
from srnpose.errors import UserError
from srnpose.geometry import Intrinsics
from srnpose.hand.skeleton import NYU_EVAL_INDICES

KINECT_VIEW = 0  # index into the mat's first axis: Kinect 1, the frontal camera
NUM_POINTS = 36
LABEL_FILE = "joint_data.mat"


def depth_name(frame_index0: int, kinect: int = 1) -> str:
    """File name of a 0-based frame: ``depth_1_0000001.png`` for frame 0."""
    return f"depth_{kinect}_{frame_index0 + 1:07d}.png"


def read_joint_data(mat_path: Path) -> dict[str, np.ndarray]:
    """``joint_uvd`` and ``joint_xyz`` of a ``joint_data.mat``, each (views, frames, 36, 3) float64."""
    import scipy.io

    if not mat_path.is_file():
        raise UserError(f"{mat_path}: NYU label file not found")
    try:
        mat = scipy.io.loadmat(str(mat_path), variable_names=["joint_uvd", "joint_xyz"])
    except Exception as exc:  # scipy raises ValueError, TypeError, MatReadError... on a bad file
        raise UserError(f"{mat_path}: cannot read MATLAB file ({exc})") from None
    out = {}
    for key in ("joint_uvd", "joint_xyz"):
        if key not in mat:
            raise UserError(f"{mat_path}: no {key!r} variable")
        arr = np.asarray(mat[key], dtype=np.float64)
        if arr.ndim != 4 or arr.shape[2:] != (NUM_POINTS, 3):
            raise UserError(f"{mat_path}: {key} has shape {arr.shape}, expected (views, frames, 36, 3)")
        out[key] = arr
    if out["joint_uvd"].shape != out["joint_xyz"].shape:
        raise UserError(f"{mat_path}: joint_uvd {out['joint_uvd'].shape} and joint_xyz "
                        f"{out['joint_xyz'].shape} differ in shape")
    return out


def parse(root: Path, split: str, option: str | None, intrinsics: Intrinsics | None,
          bad: BadFrames) -> tuple[list[HandRecord], int]:
    """Records of ``<root>/<split>/`` (14 evaluated joints, uvd from the mat's view 0)."""
    if option is not None:
        raise UserError(f"nyu:{root}@{option}: the NYU loader takes no option")
    K = dataset_intrinsics("nyu", intrinsics)
    folder = root / split
    if not folder.is_dir():
        raise UserError(f"{folder}: NYU {split} folder not found (expected {root}/train and {root}/test)")
    mat_path = folder / LABEL_FILE
    joints_uvd = read_joint_data(mat_path)["joint_uvd"][KINECT_VIEW]  # (N, 36, 3)
    eval_idx = list(NYU_EVAL_INDICES)
    records = []
    for i in range(joints_uvd.shape[0]):
        path = folder / depth_name(i)
        uvd = joints_uvd[i, eval_idx]  # (14, 3)
        if not np.all(np.isfinite(uvd)) or np.any(uvd[:, 2] <= 0):
            bad(f"{mat_path}: frame {i + 1} has non-finite or non-positive joint_uvd")
            continue
        if not path.is_file():
            bad(f"{path}: file not found (frame {i + 1} of {mat_path})")
            continue
        records.append(HandRecord(joints_uvd=uvd, intrinsics=K, depth_path=str(path), depth_format="nyu_rgb",
                                  frame_id=f"{split}/{path.name}", extra={"index": i}))
    return records, int(joints_uvd.shape[0])
