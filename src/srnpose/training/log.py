"""A run's ``metrics.csv``: one row per logged training window and per validation.

Columns: ``step, epoch, split (train | val), loss, stage1_mm .. stageK_mm, lr, time_s, samples,
bad_frames``. Rank 0 alone writes; every row is fsynced, so a killed run loses at most the row being
written. On resume the file is cut back to the resumed checkpoint's step: no duplicate, no gap.
:class:`JsonLinesWriter` keeps a run's other step-wise logs (``adapt.jsonl``) the same way, one JSON
object a line; both append through :func:`append_whole`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from srnpose.outputs import disk_full_error, is_disk_full, write_text

__all__ = ["METRICS_FILE", "metrics_columns", "truncate_metrics", "MetricsWriter", "append_whole",
           "JsonLinesWriter"]

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
        """Append one row (see :func:`append_whole`)."""
        if not self.enabled:
            return
        append_whole(self.path, _csv_text([[_fmt(row.get(c, "")) for c in self.columns]]),
                     "the rows before are kept")


def append_whole(path: Path, text: str, kept: str) -> None:
    """Append ``text`` to ``path`` (created if missing), fsynced; what cannot be written whole (a full disk)
    is cut off again, so the file keeps whole records only. ``kept``: the end of the disk-full message."""
    data = text.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
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
                raise disk_full_error(path, exc, kept) from None
            raise
    finally:
        os.close(fd)


class JsonLinesWriter:
    """Appends one JSON object a line to ``path``, each with an integer ``step``, as :class:`MetricsWriter`
    appends rows. ``resume_step`` None starts the file afresh; a step keeps the lines up to it (those logged
    after the checkpoint a run resumes from, and one torn by a kill, go: no duplicate, no gap)."""

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = Path(path)
        if resume_step is not None and self.path.exists():
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
            write_text(self.path, "".join(line + "\n" for line in lines
                                          if (step := _json_step(line)) is not None and step <= resume_step))
        else:
            write_text(self.path, "")

    def write(self, record: dict) -> None:
        """Append ``record`` as one line (see :func:`append_whole`)."""
        append_whole(self.path, json.dumps(record) + "\n", "the lines before are kept")


def _json_step(line: str) -> int | None:
    """The ``step`` of a whole JSON-object line, else None (a torn or foreign line)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    step = record.get("step") if isinstance(record, dict) else None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def _csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)  # "\r\n" line ends, as csv writes them to a file opened with newline=""
    return buffer.getvalue()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
