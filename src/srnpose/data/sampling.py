"""Training samples: the deterministic sample stream, its batch sampler, and the evaluation records.

Every training sample is a pure function of its global index ``g`` (its frame, its crop centre, its
augmentation), so a run is reproducible and ``--resume`` continues bit for bit:

* synthetic (``data.spec = "synth"``): frame ``g`` of the training stream, rendered on the fly;
* records (a dataset): epoch ``g // n`` visits the records in the permutation ``default_rng([seed, epoch])``.

Under torchrun, rank ``r`` of ``world`` draws samples ``step * batch * world + r * batch + i``.
The crop centre comes from the run's :class:`~srnpose.data.centering.CenterPolicy`; the crop, the
augmentation and the normalization from :func:`srnpose.data.pipeline.make_sample`.
"""

from __future__ import annotations

import sys

import numpy as np

from srnpose.data.centering import CenterPolicy
from srnpose.data.datasets import load_records
from srnpose.data.pipeline import CropConfig, collate, make_sample
from srnpose.errors import UserError
from srnpose.synth.engines import synthetic_record
from srnpose.training.run_config import SYNTH_TRAIN_SEED

__all__ = [
    "prepare_sample",
    "SampleSource",
    "collate_good",
    "StepBatches",
    "build_source",
    "load_eval_records",
]


def prepare_sample(record, crop_cfg, policy: CenterPolicy, rng: np.random.Generator | None) -> dict:
    """One record -> sample dict (:func:`~srnpose.data.pipeline.make_sample`) with the crop centre the
    policy gives (a record's refined centre wins); raises UserError for an unreadable or empty frame."""
    sample = make_sample(record, crop_cfg, policy, rng)
    if not np.all(np.isfinite(sample["depth"])) or not np.any(sample["depth"] < 1.0):
        raise UserError(f"{record.frame_id or 'frame'}: no depth measurement inside the hand crop")
    return sample


class SampleSource:
    """Global sample index ``g`` -> training sample, deterministically (a torch map-style dataset).

    Synthetic: frame ``g`` of the training stream, augmented with ``default_rng([seed, g])``.
    Records: epoch ``g // n`` visits the records in the permutation ``default_rng([seed, epoch])``.
    A bad frame gives ``{"bad": message, "fatal": not skip_bad}``; the training loop raises the fatal ones
    as UserError (so a worker process's error reaches the user as one clean line) and counts the others.
    """

    def __init__(self, records, crop_cfg, policy: CenterPolicy, seed: int, skip_bad: bool,
                 synth_seed: int | None = None, synth_resolution: tuple[int, int] | None = None,
                 synth_engine: str = "v2", synth_scenes: dict[str, float] | None = None) -> None:
        self.records = records
        self.crop_cfg = crop_cfg
        self.policy = policy
        self.seed = int(seed)
        self.skip_bad = skip_bad
        self.synth_seed = synth_seed
        self.synth_resolution = synth_resolution
        self.synth_engine = synth_engine
        self.synth_scenes = synth_scenes
        self._perm_epoch = -1
        self._perm: np.ndarray | None = None
        self.load_skipped = 0  # frames the loader dropped up front (skip_bad)

    def _record(self, g: int):
        if self.records is None:
            return synthetic_record(self.synth_engine, self.synth_seed, g, resolution=self.synth_resolution,
                                    scenes=self.synth_scenes)
        n = len(self.records)
        epoch, pos = divmod(g, n)
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(n)
            self._perm_epoch = epoch
        return self.records[int(self._perm[pos])]

    def __getitem__(self, g: int) -> dict:
        rng = np.random.default_rng([self.seed, int(g)])
        try:
            return prepare_sample(self._record(int(g)), self.crop_cfg, self.policy, rng)
        except UserError as exc:  # reported by the training process (clean, also from a worker process)
            # a rendered frame is never the user's data: skipped and counted, never fatal
            return {"bad": str(exc), "fatal": not self.skip_bad and self.records is not None}


def collate_good(samples: list[dict]) -> tuple[dict | None, list[str], list[str]]:
    """Collate the good samples; return the skipped ones' messages and the fatal ones' beside them."""
    good = [s for s in samples if "bad" not in s]
    bad = [s["bad"] for s in samples if "bad" in s and not s["fatal"]]
    fatal = [s["bad"] for s in samples if "bad" in s and s["fatal"]]
    return (collate(good) if good else None), bad, fatal


class StepBatches:
    """Batch sampler: for each step from ``start`` to ``stop``, the global indices this rank draws.

    ``per_epoch`` steps per pass over ``epoch_len`` records (None: a synthetic stream); the remainder
    of each epoch is dropped, so every epoch is a full permutation prefix."""

    def __init__(self, start: int, stop: int, batch: int, rank: int, world: int, per_epoch: int | None = None,
                 epoch_len: int = 0) -> None:
        self.start, self.stop, self.batch, self.rank, self.world = start, stop, batch, rank, world
        self.per_epoch, self.epoch_len = per_epoch, epoch_len

    def indices(self, step: int) -> list[int]:
        if self.per_epoch is None:
            first = step * self.batch * self.world + self.rank * self.batch
        else:
            epoch, s = divmod(step, self.per_epoch)
            first = epoch * self.epoch_len + s * self.batch * self.world + self.rank * self.batch
        return list(range(first, first + self.batch))

    def __iter__(self):
        for step in range(self.start, self.stop):
            yield self.indices(step)


def build_source(cfg) -> tuple[SampleSource, object, int]:
    """The training :class:`SampleSource` of a resolved run config, its crop config, and the record
    count (0 for the synthetic stream)."""
    d = cfg.data
    crop = CropConfig(input_size=cfg.model.input_size, augment=d.augment, rot_deg=d.rot_deg, scale=d.scale,
                      trans_mm=d.trans_mm)
    policy = CenterPolicy.from_config(cfg)
    if d.spec == "synth":
        source = SampleSource(None, crop, policy, cfg.train.seed, d.skip_bad,
                              synth_seed=SYNTH_TRAIN_SEED + cfg.train.seed, synth_resolution=d.synth_resolution,
                              synth_engine=d.synth_engine, synth_scenes=d.synth_scenes)
        return source, crop, 0
    records = load_records(d.spec, "train", centers=d.centers, skip_bad=d.skip_bad)
    if getattr(records, "skipped", 0):
        print(f"{d.spec}: skipped {records.skipped} bad frames while loading", file=sys.stderr)
    source = SampleSource(records, crop, policy, cfg.train.seed, d.skip_bad)
    source.load_skipped = int(getattr(records, "skipped", 0))
    return source, crop, len(records)


def synthetic_first_crop(spec: str, synth_engine: str) -> str:
    """Where validation and the demo place the first crop (``frame_path.estimate_records``' ``center``):
    ``"joints"`` (the labelled joints' centroid) on engine v2's synthetic frames, whose third- and
    first-person scenes put a torso or forearm nearer than the hand by design, so the nearest-blob
    search measures itself there, not the network; ``"policy"`` (label-free, as predict) otherwise."""
    return "joints" if spec == "synth" and synth_engine != "v1" else "policy"


def load_eval_records(spec: str, frames: int, seed: int, synth_resolution: tuple[int, int] | None = None,
                      skip_bad: bool = False, split: str = "test", centers: str | None = None,
                      synth_engine: str = "v2") -> list:
    """Records for validation or evaluation: ``synth`` = ``frames`` held-out synthetic frames of stream
    ``seed`` of ``synth_engine``; a dataset spec = its ``split``, ``frames`` > 0 keeping that many evenly
    spaced frames."""
    if spec == "synth":
        from srnpose.synth import SynthDataset

        ds = SynthDataset(frames, seed=seed, resolution=synth_resolution, engine=synth_engine)
        return [ds[i] for i in range(len(ds))]
    records = list(load_records(spec, split, centers=centers, skip_bad=skip_bad))
    if frames and len(records) > frames:
        keep = np.linspace(0, len(records) - 1, frames).round().astype(int)
        records = [records[i] for i in keep]
    return records
