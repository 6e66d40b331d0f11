"""A run's ``metrics.csv``: one row per logged training window and per validation.

Columns: ``step, epoch, split (train | val), loss, stage1_mm .. stageK_mm, lr, time_s, samples,
bad_frames``. Rank 0 alone writes; every row is fsynced, so a killed run loses at most the row being
written. On resume the file is cut back to the resumed checkpoint's step: no duplicate, no gap.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from pathlib import Path
from typing import Any

from srnpose.outputs import disk_full_error, is_disk_full, write_text

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
    write_text(path, _csv_text(kept))


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
            write_text(path, _csv_text([columns]))

    def write(self, row: dict) -> None:
        """Append one row, fsynced; a row that cannot be written whole (a full disk) is cut off again, so
        the file keeps whole rows only."""
        if not self.enabled:
            return
        data = _csv_text([[_fmt(row.get(c, "")) for c in self.columns]]).encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            try:
                done = 0
                while done < len(data):
                    done += os.write(fd, data[done:])
                os.fsync(fd)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                if is_disk_full(exc):
                    raise disk_full_error(self.path, exc, "the rows before are kept") from None
                raise
        finally:
            os.close(fd)


def _csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)  # "\r\n" line ends, as csv writes them to a file opened with newline=""
    return buffer.getvalue()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
