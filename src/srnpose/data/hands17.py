"""HANDS 2017 challenge, frame-based task (Yuan et al. 2017; data from BigHand2.2M).

Layout (as it ships)::

    <root>/training/Training_Annotation.txt    one line per frame: image name, then 21 x (x y z) mm
    <root>/training/images/image_D00000001.png ...   (957,032 frames)
    <root>/frame/BoundingBox.txt               one line per test frame: image name, then the hand box
    <root>/frame/images/image_D00000001.png ...      (295,510 frames)

Conventions (checked against the HANDS2017 loaders in public code, e.g. V2V-PoseNet's
preprocessing scripts and the "hands17" pose class of hand-pose repositories):

* depth: 16-bit single-channel PNG, mm, 640x480 (SR300);
* annotation: tab- or space-separated; 21 joints in BigHand order (wrist, the five MCPs T I M R P,
  then PIP, DIP, TIP of each finger T I M R P: layout ``hands17``), camera frame in mm with the usual
  axes (y down): ``u = x fx / z + cx``, ``v = y fy / z + cy`` with fx 475.065948, fy 475.065857,
  cx 315.944855, cy 245.287079;
* test split: the challenge kept the test labels (results were scored by its server). The test
  records come from ``frame/BoundingBox.txt``; each line is the image name and four numbers, read as
  the hand box ``x y width height`` in pixels (top-left corner; an assumption, kept in
  ``extra["bbox_px"]``). If a ``frame/Test_Annotation.txt`` exists (same format as the training
  annotation; not part of the official release: srnpose's synthetic writer and users with their own
  labels provide it), its joints label the test frames; otherwise the joints are NaN and
  ``extra["labelled"]`` is False (predict and submit; evaluation needs labels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from srnpose.data.datasets import BadFrames, dataset_intrinsics, label_error, label_floats
from srnpose.data.records import HandRecord
from srnpose.errors import UserError
from srnpose.geometry import Intrinsics, xyz_to_uvd

NUM_JOINTS = 21
TRAIN_ANNOTATION = ("training", "Training_Annotation.txt")
TEST_BOXES = ("frame", "BoundingBox.txt")
TEST_ANNOTATION = ("frame", "Test_Annotation.txt")  # not shipped; see the module docstring


def image_name(frame_index0: int) -> str:
    return f"image_D{frame_index0 + 1:08d}.png"


def _read_lines(path: Path, count: int, what: str, bad: BadFrames) -> list[tuple[int, str, np.ndarray | None]]:
    """(line number, image name, values or None when bad) for every non-blank line."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            tokens = line.split()
            if not tokens:
                continue
            values = label_floats(tokens[1:], count)
            if values is None:
                bad(label_error(path, lineno, tokens[1:], count, what))
            out.append((lineno, tokens[0], values))
    return out


def parse(root: Path, split: str, option: str | None, intrinsics: Intrinsics | None,
          bad: BadFrames) -> tuple[list[HandRecord], int]:
    if option is not None:
        raise UserError(f"hands17:{root}@{option}: the HANDS2017 loader takes no option")
    K = dataset_intrinsics("hands17", intrinsics)
    if split == "train":
        label_path = root.joinpath(*TRAIN_ANNOTATION)
        image_dir = label_path.parent / "images"
        if not label_path.is_file():
            raise UserError(f"{label_path}: HANDS2017 training annotation not found")
        lines = _read_lines(label_path, 3 * NUM_JOINTS, "21 joints x x y z", bad)
        boxes = {}
    else:
        box_path = root.joinpath(*TEST_BOXES)
        image_dir = box_path.parent / "images"
        if not box_path.is_file():
            raise UserError(f"{box_path}: HANDS2017 frame-based test bounding boxes not found")
        lines = _read_lines(box_path, 4, "x y width height", bad)
        boxes = {name: values for _, name, values in lines}
        label_path = root.joinpath(*TEST_ANNOTATION)
        if label_path.is_file():
            labels = {name: v for _, name, v in _read_lines(label_path, 3 * NUM_JOINTS, "21 joints x x y z", bad)}
            missing = [name for _, name, _ in lines if name not in labels]
            if missing:
                raise UserError(f"{label_path}: no label for {len(missing)} test frames, first {missing[0]}")
            lines = [(n, name, None if v is None else labels[name]) for n, name, v in lines]
        else:
            label_path = None
            lines = [(n, name, None if v is None else np.full(3 * NUM_JOINTS, np.nan)) for n, name, v in lines]
    records = []
    for index, (lineno, name, values) in enumerate(lines):
        if values is None:
            continue  # already reported by _read_lines
        path = image_dir / name
        if not path.is_file():
            bad(f"{path}: file not found ({label_path or root.joinpath(*TEST_BOXES)}:{lineno})")
            continue
        xyz = values.reshape(NUM_JOINTS, 3)
        if np.all(np.isfinite(xyz)) and np.any(xyz[:, 2] <= 0):
            bad(f"{label_path}:{lineno}: joint z must be positive (mm in front of the camera)")
            continue
        extra = {"index": index, "labelled": bool(np.all(np.isfinite(xyz)))}
        if name in boxes and boxes[name] is not None:
            extra["bbox_px"] = boxes[name]
        uvd = xyz_to_uvd(xyz, K) if extra["labelled"] else xyz
        records.append(HandRecord(joints_uvd=uvd, intrinsics=K, depth_path=str(path), depth_format="png16_strict",
                                  frame_id=f"{split}/{name}", extra=extra))
    return records, len(lines)
