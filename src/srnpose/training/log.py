"""A run's ``metrics.csv``: one row per logged training window and per validation.

Columns: ``step, epoch, split (train | val), loss, stage1_mm .. stageK_mm, lr, time_s, samples,
bad_frames``. Rank 0 alone writes; every row is fsynced, so a killed run loses at most the row being
written. On resume the file is cut back to the resumed checkpoint's step: no duplicate, no gap.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

__all__ = ["METRICS_FILE", "metrics_columns", "truncate_metrics", "MetricsWriter"]

METRICS_FILE = "metrics.csv"


def metrics_columns(num_stages: int) -> list[str]:
    return (["step", "epoch", "split", "loss"] + [f"stage{s + 1}_mm" for s in range(num_stages)]
            + ["lr", "time_s", "samples", "bad_frames"])


def truncate_metrics(path: Path, step: int, columns: list[str]) -> None:
    """Keep the header and the rows up to ``step`` (the resumed checkpoint): no duplicate, no gap."""
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    kept = [columns] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= step]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(kept)
    os.replace(tmp, path)


class MetricsWriter:
    """Appends rows to ``path``. ``resume_step`` None starts the file afresh (a run that died before
    its first checkpoint leaves rows that no checkpoint holds); a step keeps the rows up to it."""

    def __init__(self, path: Path, columns: list[str], enabled: bool, resume_step: int | None = None) -> None:
        self.path, self.columns, self.enabled = path, columns, enabled
        if not enabled:
            return
        if resume_step is not None and path.exists():
            truncate_metrics(path, resume_step, columns)
        else:
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerow(columns)
            os.replace(tmp, path)

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.writer(f).writerow([_fmt(row.get(c, "")) for c in self.columns])
            f.flush()
            os.fsync(f.fileno())


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
