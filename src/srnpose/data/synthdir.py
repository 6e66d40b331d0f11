"""srnpose's own synthetic native layout, ``synth:DIR``.

Layout (written by ``srnpose synth --format native``)::

    DIR/meta.json      {"intrinsics": {"fx", "fy", "cx", "cy"}, "resolution": [W, H],
                        "depth_unit_mm": 1.0, "joints": [21 canonical names], "frames": N, "seed": S}
    DIR/depth/000000.png ...   16-bit depth PNG, one per frame
    DIR/labels.txt     line i = frame i: 21 joints x (u v d), canonical layout, px px mm

Split: when ``DIR/test/`` exists (with its own meta.json, depth/, labels.txt), ``train`` is all of
``DIR`` and ``test`` all of ``DIR/test``. Otherwise ``test`` is the last 10% of the frames (at least
one) and ``train`` the frames before them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from srnpose.data.datasets import BadFrames, label_error, label_floats
from srnpose.data.records import HandRecord
from srnpose.errors import UserError
from srnpose.geometry import Intrinsics

NUM_JOINTS = 21
TEST_FRACTION = 0.1


def read_meta(folder: Path) -> dict:
    path = folder / "meta.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: synth meta file not found") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read JSON ({exc})") from None
    try:
        k = meta["intrinsics"]
        meta["_intrinsics"] = Intrinsics(float(k["fx"]), float(k["fy"]), float(k["cx"]), float(k["cy"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: bad or missing 'intrinsics' {{fx, fy, cx, cy}} ({exc})") from None
    unit = float(meta.get("depth_unit_mm", 1.0))
    if unit != 1.0:
        raise UserError(f"{path}: depth_unit_mm {unit} is not supported by the synth loader (1.0 only)")
    joints = meta.get("joints", NUM_JOINTS)
    count = len(joints) if isinstance(joints, list) else joints
    if count not in (NUM_JOINTS, "canonical"):
        raise UserError(f"{path}: joints {joints!r}: the synth layout has 21 canonical joints")
    return meta


def test_count(frames: int) -> int:
    """Frames in the test split when there is no test/ folder: the last 10%, at least one."""
    return max(1, math.ceil(TEST_FRACTION * frames)) if frames > 1 else 0


def parse_folder(folder: Path, split: str, K: Intrinsics | None, bad: BadFrames,
                 first: int = 0, stop: int | None = None) -> tuple[list[HandRecord], int]:
    """Records of frames ``first <= i < stop`` of one synth folder, and the folder's frame count."""
    meta = read_meta(folder)
    K = K if K is not None else meta["_intrinsics"]
    label_path = folder / "labels.txt"
    if not label_path.is_file():
        raise UserError(f"{label_path}: synth label file not found")
    records, index = [], 0
    with open(label_path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            tokens = line.split()
            if not tokens:
                continue
            values = label_floats(tokens, 3 * NUM_JOINTS)
            path = folder / "depth" / f"{index:06d}.png"
            index += 1
            if index - 1 < first or (stop is not None and index - 1 >= stop):
                continue
            if values is None:
                bad(label_error(label_path, lineno, tokens, 3 * NUM_JOINTS, "21 joints x u v d"))
                continue
            if not path.is_file():
                bad(f"{path}: file not found ({label_path}:{lineno})")
                continue
            records.append(HandRecord(joints_uvd=values.reshape(NUM_JOINTS, 3), intrinsics=K, depth_path=str(path),
                                      depth_format="png16_strict", frame_id=f"{split}/{path.name}",
                                      extra={"index": index - 1 - first}))
    if "frames" in meta and int(meta["frames"]) != index:
        raise UserError(f"{label_path}: {index} label lines, {folder / 'meta.json'} says {meta['frames']} frames")
    return records, index


def parse(root: Path, split: str, option: str | None, intrinsics: Intrinsics | None,
          bad: BadFrames) -> tuple[list[HandRecord], int]:
    if option is not None:
        raise UserError(f"synth:{root}@{option}: the synth loader takes no option")
    if (root / "test").is_dir():
        return parse_folder(root / "test" if split == "test" else root, split, intrinsics, bad)
    frames = int(read_meta(root).get("frames", -1))
    if frames < 0 and not (root / "labels.txt").is_file():
        raise UserError(f"{root / 'labels.txt'}: synth label file not found")
    if frames < 0:
        frames = sum(1 for line in open(root / "labels.txt", encoding="utf-8", errors="replace") if line.split())
    first_test = frames - test_count(frames)
    if split == "train":
        return parse_folder(root, split, intrinsics, bad, 0, first_test)[0], first_test
    # extra["index"] counts from the first test frame: a test centre file has one line per test frame
    return parse_folder(root, split, intrinsics, bad, first_test, None)[0], frames - first_test
