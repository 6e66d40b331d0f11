"""ICVL hand posture dataset (Tang et al., CVPR 2014) in its native layout.

Layout (as the two archives unpack)::

    <root>/Training/labels.txt                 one line per frame: <path under Depth/> u v d x 16
    <root>/Training/Depth/<sequence>/image_XXXX.png
    <root>/Testing/test_seq_1.txt, test_seq_2.txt   same line format (702 + 894 = 1596 frames)
    <root>/Testing/Depth/test_seq_1/image_XXXX.png ...

Conventions (checked against DeepPrior++ ``ICVLImporter``, the A2J and V2V-PoseNet ICVL scripts):

* depth: 16-bit single-channel PNG, mm, 320x240;
* labels: 16 joints x (u px, v px, d mm), image coordinates, in ICVL's order (palm, then thumb,
  index, middle, ring, little, each root, mid, tip: layout ``icvl``); paths are relative to ``Depth/``;
* ``labels.txt`` also lists ICVL's in-plane-rotated copies (331,006 lines in all). Their sequence
  folder has a short name (``0``, ``45``, ...); the original recordings have 12-digit timestamps.
  ``icvl:DIR@orig`` keeps only the original frames (DeepPrior++'s ``subSeq=['0']``; 22,059 frames);
* intrinsics: the community evaluation's fx 240.99, fy 240.96, cx 160, cy 120 (V2V-PoseNet, A2J;
  DeepPrior++ uses 241.42 for both focal lengths).
"""

from __future__ import annotations

from pathlib import Path

from srnpose.data.datasets import BadFrames, dataset_intrinsics, label_error, label_floats
from srnpose.data.records import HandRecord
from srnpose.errors import UserError
from srnpose.geometry import Intrinsics

NUM_JOINTS = 16
TRAIN_LABELS = ("Training", "labels.txt")
TEST_LABELS = (("Testing", "test_seq_1.txt"), ("Testing", "test_seq_2.txt"))
ORIGINAL_SEQUENCE_MIN_CHARS = 7  # DeepPrior++: a sequence name longer than 6 chars = unrotated recording


def parse_label_file(label_path: Path, depth_dir: Path, split: str, K: Intrinsics, bad: BadFrames,
                     start_index: int, original_only: bool = False) -> tuple[list[HandRecord], int]:
    """Records of one ICVL label file; returns ``(records, lines)``."""
    if not label_path.is_file():
        raise UserError(f"{label_path}: ICVL label file not found")
    records, count = [], 0
    with open(label_path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            tokens = line.split()
            if not tokens:
                continue
            name = tokens[0]
            if original_only and len(name.split("/")[0]) < ORIGINAL_SEQUENCE_MIN_CHARS:
                continue
            index = start_index + count
            count += 1
            values = label_floats(tokens[1:], 3 * NUM_JOINTS)
            if values is None:
                bad(label_error(label_path, lineno, tokens[1:], 3 * NUM_JOINTS, "16 joints x u v d"))
                continue
            path = depth_dir / name
            if not path.is_file():
                bad(f"{path}: file not found ({label_path}:{lineno})")
                continue
            records.append(HandRecord(joints_uvd=values.reshape(NUM_JOINTS, 3), intrinsics=K,
                                      depth_path=str(path), depth_format="png16_strict",
                                      frame_id=f"{split}/{name}", extra={"index": index}))
    return records, count


def parse(root: Path, split: str, option: str | None, intrinsics: Intrinsics | None,
          bad: BadFrames) -> tuple[list[HandRecord], int]:
    if option not in (None, "orig"):
        raise UserError(f"icvl:{root}@{option}: unknown option; available: orig (unrotated training frames)")
    K = dataset_intrinsics("icvl", intrinsics)
    files = (TRAIN_LABELS,) if split == "train" else TEST_LABELS
    records, total = [], 0
    for folder, name in files:
        recs, n = parse_label_file(root / folder / name, root / folder / "Depth", split, K, bad, total,
                                   original_only=(option == "orig" and split == "train"))
        records += recs
        total += n
    return records, total
