"""MSRA hand gesture dataset 2015 (Sun et al., CVPR 2015, "cvpr15_MSRAHandGestureDB").

Layout (as it ships)::

    <root>/P0 .. P8/<gesture>/joint.txt, 000000_depth.bin, 000001_depth.bin, ...
    gestures: 1 2 3 4 5 6 7 8 9 I IP L MP RP T TIP Y

Conventions (checked against DeepPrior++ ``MSRA15Importer`` and V2V-PoseNet ``msra_hand.py``):

* ``XXXXXX_depth.bin``: 6 uint32 (image width, height, box left, top, right, bottom), then float32
  depth in mm for rows ``[top, bottom)`` x columns ``[left, right)``, row-major; zero elsewhere
  (the hand is pre-segmented). Image 320x240.
* ``joint.txt``: first line the frame count, then one line per frame: 21 joints x (x y z) in mm, in
  MSRA's order (wrist, then index, middle, ring, little, thumb, each MCP, PIP, DIP, TIP: layout
  ``msra``). MSRA's camera frame has **z negative** (the camera looks down -z) and **y up**:
  DeepPrior++ negates z and projects with ``v = cy - y fy / z``; V2V-PoseNet negates z and uses
  ``w_y = (cy - v) z / fy``. What srnpose does: ``xyz_srnpose = (x, -y, -z)`` of the file, i.e.
  the usual camera frame (x right, y down, z forward) with fx = fy = 241.42, cx 160, cy 120,
  then ``uvd = xyz_to_uvd(xyz_srnpose)``. This gives exactly the community's pixels (u, v) and
  depth; our xyz differs from the community's y-up xyz only in the sign of y, which leaves every
  distance (the mean joint error) unchanged, and ``uvd_to_xyz`` round-trips it.
* Protocol: leave-one-subject-out over the 9 subjects; ``msra:DIR@P3`` tests on P3 and trains on
  the 8 others (default fold: P0). Frames are ordered subject, gesture (order above), frame, as in
  V2V-PoseNet, so its per-fold centre files line up. DeepPrior++ lists a few faulty frames
  (P2/TIP 172-174, P2/MP 173-175, 345-354, 356, 359, 360, P3/T 120, 489, P8/4 168); they are kept,
  as in V2V-PoseNet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from srnpose.data.datasets import BadFrames, dataset_intrinsics, label_error, label_floats
from srnpose.data.records import HandRecord
from srnpose.errors import UserError
from srnpose.geometry import Intrinsics, uvd_to_xyz, xyz_to_uvd

SUBJECTS = tuple(f"P{i}" for i in range(9))
GESTURES = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "I", "IP", "L", "MP", "RP", "T", "TIP", "Y")
DEFAULT_TEST_SUBJECT = "P0"
NUM_JOINTS = 21
# file xyz -> srnpose camera xyz: flip y (MSRA y is up) and z (MSRA z is negative)
FILE_TO_CAMERA = np.array([1.0, -1.0, -1.0])


def depth_name(frame_index0: int) -> str:
    return f"{frame_index0:06d}_depth.bin"


def file_xyz_to_uvd(xyz_file: np.ndarray, K: Intrinsics) -> np.ndarray:
    """MSRA joint.txt xyz (..., 3) -> uvd (..., 3). Inverse: :func:`uvd_to_file_xyz`."""
    return xyz_to_uvd(np.asarray(xyz_file, dtype=np.float64) * FILE_TO_CAMERA, K)


def uvd_to_file_xyz(uvd: np.ndarray, K: Intrinsics) -> np.ndarray:
    """uvd (..., 3) -> MSRA joint.txt xyz (y up, z negative)."""
    return uvd_to_xyz(np.asarray(uvd, dtype=np.float64), K) * FILE_TO_CAMERA


def parse_gesture(folder: Path, split: str, K: Intrinsics, bad: BadFrames,
                  start_index: int) -> tuple[list[HandRecord], int]:
    joint_path = folder / "joint.txt"
    if not joint_path.is_file():
        raise UserError(f"{joint_path}: MSRA joint file not found")
    with open(joint_path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    try:
        n_frames = int(lines[0].strip())
    except (IndexError, ValueError):
        raise UserError(f"{joint_path}:1: expected the frame count on the first line") from None
    body = [line for line in lines[1:]]
    while body and not body[-1].strip():
        body.pop()
    if len(body) != n_frames:
        raise UserError(f"{joint_path}: first line says {n_frames} frames, file has {len(body)} joint lines")
    records = []
    subject, gesture = folder.parent.name, folder.name
    for i, line in enumerate(body):
        lineno = i + 2
        tokens = line.split()
        values = label_floats(tokens, 3 * NUM_JOINTS)
        if values is None:
            bad(label_error(joint_path, lineno, tokens, 3 * NUM_JOINTS, "21 joints x x y z"))
            continue
        xyz_file = values.reshape(NUM_JOINTS, 3)
        if np.any(xyz_file[:, 2] >= 0):
            bad(f"{joint_path}:{lineno}: MSRA z must be negative (camera looks down -z)")
            continue
        path = folder / depth_name(i)
        if not path.is_file():
            bad(f"{path}: file not found ({joint_path}:{lineno})")
            continue
        records.append(HandRecord(joints_uvd=file_xyz_to_uvd(xyz_file, K), intrinsics=K, depth_path=str(path),
                                  depth_format="msra_bin", frame_id=f"{subject}/{gesture}/{path.name}",
                                  extra={"index": start_index + i, "subject": subject, "gesture": gesture}))
    return records, n_frames


def parse(root: Path, split: str, option: str | None, intrinsics: Intrinsics | None,
          bad: BadFrames) -> tuple[list[HandRecord], int]:
    test_subject = option or DEFAULT_TEST_SUBJECT
    if test_subject not in SUBJECTS:
        raise UserError(f"msra:{root}@{option}: unknown test subject; available: {', '.join(SUBJECTS)}")
    K = dataset_intrinsics("msra", intrinsics)
    present = [s for s in SUBJECTS if (root / s).is_dir()]
    if test_subject not in present:
        raise UserError(f"{root / test_subject}: MSRA test subject folder not found "
                        f"(subjects present: {', '.join(present) or 'none'})")
    subjects = [test_subject] if split == "test" else [s for s in present if s != test_subject]
    if not subjects:
        raise UserError(f"{root}: no MSRA training subjects besides the test subject {test_subject}")
    records, total = [], 0
    for subject in subjects:
        gestures = [g for g in GESTURES if (root / subject / g).is_dir()]
        if not gestures:
            raise UserError(f"{root / subject}: no MSRA gesture folders ({' '.join(GESTURES)})")
        for gesture in gestures:
            recs, n = parse_gesture(root / subject / gesture, split, K, bad, total)
            records += recs
            total += n
    return records, total
