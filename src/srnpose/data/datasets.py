"""The dataset table and ``load_records(spec)``: point srnpose at a dataset folder as it ships.

A *spec* names a dataset and its folder, with an optional option after ``@``::

    nyu:/data/nyu            NYU Hand Pose (train/, test/)
    icvl:/data/icvl          ICVL (Training/, Testing/); icvl:/data/icvl@orig = unrotated training frames only
    msra:/data/msra@P3       MSRA 2015, leave-one-subject-out fold: test on P3, train on the others
                             (default fold: test subject P0)
    hands17:/data/hands17    HANDS2017 (training/, frame/)
    synth:/data/mysynth      srnpose's own synthetic layout (meta.json, depth/, labels.txt)

Each dataset module only parses its files into :class:`~srnpose.data.records.HandRecord` s (depth
source, joints in uvd in the dataset's own layout, intrinsics, optional refined centre); the shared
pipeline (:mod:`srnpose.data.pipeline`) crops, augments and normalizes.

Bad data
--------
A missing, truncated or corrupt frame, or a label line with the wrong count, raises
:class:`~srnpose.errors.UserError` naming the file (and line). With ``skip_bad=True`` every such
frame is skipped with a :class:`BadFrameWarning` and counted: ``load_records`` returns a
:class:`Records` list whose ``.skipped`` is the count and ``.skipped_messages`` the reasons.
``verify`` (default: the value of ``skip_bad``) reads every depth frame at load time, so truncated
or all-zero frames are found before training; without it they raise ``UserError`` when read.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from srnpose.cameras import get_camera
from srnpose.data.center_files import load_centers
from srnpose.data.records import HandRecord
from srnpose.errors import UserError
from srnpose.geometry import Intrinsics

SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """One public dataset: its joint layout, camera, literature cube size and split sizes."""

    name: str
    layout: str  # key of srnpose.hand.skeleton.LAYOUTS
    camera: str  # key of srnpose.cameras.CAMERAS
    cube_mm: float  # cube edge used by the literature for this dataset (see the table's comments)
    test_frames: int | None  # frames in the official test split (None: depends on the fold / folder)
    splits: tuple[str, ...]  # the folders / files each split reads, for messages and docs
    description: str = ""


# Cube sizes: NYU 300 mm and ICVL 250 mm are DeepPrior++'s default_cubes (Oberweger & Lepetit 2017,
# src/data/importers.py), also used by V2V-PoseNet and SRN. MSRA 200 mm: DeepPrior++'s cube for
# P0-P2 (it shrinks to 150 mm for P8) and the value most MSRA papers use for every subject.
# HANDS2017: 250 mm, the BigHand2.2M / HANDS2017 baselines' cube (hand size like ICVL); no single
# official value exists.
DATASETS: dict[str, DatasetInfo] = {
    "nyu": DatasetInfo("nyu", "nyu", "nyu", 300.0, 8252,
                       ("train/ (72757 frames)", "test/ (8252 frames)"),
                       "NYU Hand Pose (Tompson et al. 2014), Kinect 1 view, 14 evaluated joints of 36"),
    "icvl": DatasetInfo("icvl", "icvl", "icvl", 250.0, 1596,
                        ("Training/labels.txt", "Testing/test_seq_1.txt + test_seq_2.txt (702 + 894 frames)"),
                        "ICVL (Tang et al. 2014), 16 joints"),
    "msra": DatasetInfo("msra", "msra", "msra", 200.0, None,
                        ("P0..P8 except the test subject", "the test subject (default P0)"),
                        "MSRA 2015 (Sun et al. 2015), 9 subjects x 17 gestures, 21 joints, leave-one-subject-out"),
    "hands17": DatasetInfo("hands17", "hands17", "hands17", 250.0, 295510,
                           ("training/Training_Annotation.txt (957032 frames)",
                            "frame/BoundingBox.txt (295510 frames; labels held by the challenge server)"),
                           "HANDS 2017 challenge, frame-based task (BigHand2.2M joint order), 21 joints"),
    "synth": DatasetInfo("synth", "canonical", "icvl", 250.0, None,
                         ("all but the last 10% of frames (or the folder itself when test/ exists)",
                          "the last 10% of frames, at least 1 (or the test/ subfolder)"),
                         "srnpose's synthetic native layout (meta.json, depth/, labels.txt)"),
}


def get_dataset(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise UserError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}") from None


def parse_spec(spec: str) -> tuple[str, Path, str | None]:
    """``"name:/path[@option]"`` -> ``(name, path, option)``; the folder must exist."""
    text = str(spec)
    name, sep, rest = text.partition(":")
    if not sep or not rest:
        raise UserError(f"dataset spec {text!r}: expected NAME:FOLDER, NAME one of {', '.join(DATASETS)}")
    get_dataset(name)
    option = None
    if "@" in rest:
        rest, _, option = rest.rpartition("@")
        option = option or None
    path = Path(rest).expanduser()
    if not path.is_dir():
        raise UserError(f"dataset folder {str(path)!r} (from {text!r}) does not exist or is not a folder")
    return name, path, option


def dataset_intrinsics(name: str, override: Intrinsics | None = None) -> Intrinsics:
    """The dataset camera's intrinsics, unless ``override`` is given."""
    return override if override is not None else get_camera(get_dataset(name).camera).intrinsics


# --------------------------------------------------------------------------- bad frames

class BadFrameWarning(UserWarning):
    """A frame skipped because of ``skip_bad``."""


class BadFrames:
    """Callable a parser calls with a message for each bad frame: raises, or warns and counts."""

    def __init__(self, skip: bool) -> None:
        self.skip = skip
        self.messages: list[str] = []

    def __call__(self, message: str) -> None:
        if not self.skip:
            raise UserError(message)
        self.messages.append(message)
        warnings.warn(f"skipping bad frame: {message}", BadFrameWarning, stacklevel=3)


class Records(list):
    """``list[HandRecord]`` with the bad-frame accounting of the load that produced it."""

    skipped: int = 0
    skipped_messages: tuple[str, ...] = ()


def label_floats(tokens: list[str], count: int) -> np.ndarray | None:
    """``count`` finite numbers from ``tokens``, or ``None`` (the caller reports it with :func:`label_error`)."""
    if len(tokens) != count:
        return None
    try:
        values = np.array([float(t) for t in tokens], dtype=np.float64)
    except ValueError:
        return None
    if not np.all(np.isfinite(values)):
        return None
    return values


def label_error(path: Path | str, lineno: int, tokens: list[str], count: int, what: str) -> str:
    """The one-line message for a label line that :func:`label_floats` refused."""
    if len(tokens) != count:
        return f"{path}:{lineno}: expected {count} numbers ({what}), got {len(tokens)}"
    return f"{path}:{lineno}: not {count} finite numbers ({what})"


# --------------------------------------------------------------------------- loading

Parser = Callable[..., tuple[list[HandRecord], int]]


def _parser(name: str) -> Parser:
    """The parse function of a dataset (imported here: the dataset modules import this one).

    Every parser is ``parse(root, split, option, intrinsics_or_None, bad) -> (records, total)`` where
    ``total`` counts the split's labelled frames before any was skipped and each record's
    ``extra["index"]`` is its position among them (the line of a centre file).
    """
    import importlib

    return importlib.import_module(_PARSER_MODULES[name]).parse


_PARSER_MODULES = {"nyu": "srnpose.data.nyu", "icvl": "srnpose.data.icvl", "msra": "srnpose.data.msra",
                   "hands17": "srnpose.data.hands17", "synth": "srnpose.data.synthdir"}


def _verify(records: list[HandRecord], bad: BadFrames, workers: int) -> list[HandRecord]:
    """Read every frame once; drop (or raise for) the unreadable ones, in order."""
    from concurrent.futures import ThreadPoolExecutor

    def check(record: HandRecord) -> str | None:
        try:
            record.load_depth()
        except UserError as exc:
            return str(exc)
        return None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        problems = list(pool.map(check, records))
    kept = []
    for record, problem in zip(records, problems):
        if problem is None:
            kept.append(record)
        else:
            bad(problem)
    return kept


def load_records(spec: str, split: str = "train", centers: str | Path | None = None,
                 skip_bad: bool = False, verify: bool | None = None,
                 intrinsics: Intrinsics | None = None, centers_format: str | None = None,
                 workers: int = 4) -> Records:
    """Parse a dataset folder into records for one split.

    ``centers``: a refined-centre file, one line per frame of the split in the dataset's own order
    (see :mod:`srnpose.data.center_files`); frames without a centre are estimated by the pipeline.
    ``intrinsics`` overrides the dataset's camera (for data written with another camera).
    ``verify`` (default ``skip_bad``): read every depth frame now, so bad frames are found up front.
    """
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; available: {', '.join(SPLITS)}")
    name, root, option = parse_spec(spec)
    bad = BadFrames(skip_bad)
    records, total = _parser(name)(root, split, option, intrinsics, bad)
    if centers is not None:
        K = records[0].intrinsics if records else dataset_intrinsics(name, intrinsics)
        centers_uvd = load_centers(centers, total, K, centers_format)
        for record in records:
            c = centers_uvd[record.extra["index"]]
            record.center_uvd = None if np.any(np.isnan(c)) else c
    if verify if verify is not None else skip_bad:
        records = _verify(records, bad, workers)
    if not records:
        raise UserError(f"{spec}: no usable frames in the {split} split"
                        + (f" ({len(bad.messages)} skipped as bad)" if bad.messages else ""))
    out = Records(records)
    out.skipped = len(bad.messages)
    out.skipped_messages = tuple(bad.messages)
    return out
