"""A run folder's guards: one training process group per folder, and no run overwritten by mistake.

``RUN/.lock`` is held (``fcntl.flock``) by rank 0 for the whole run and names its PID; a second
training on the same ``--out`` is refused with that PID. The kernel releases the lock when the
process dies, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from srnpose.errors import UserError
from srnpose.training.checkpoint import corrupt_checkpoints_message, resolve_checkpoint_dir

__all__ = ["LOCK_FILE", "run_lock", "remove_if_nothing_saved", "check_lock_free", "check_run_dir", "check_out_dir"]

LOCK_FILE = ".lock"


def check_out_dir(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a folder we can write in (created if missing), or a UserError naming ``flag``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path}: is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{flag} {path}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {path}: the folder is not writable")
    return path


@contextlib.contextmanager
def run_lock(run_dir: Path, enabled: bool = True):
    """Hold ``run_dir/.lock`` while the block runs (rank 0 only: ``enabled``)."""
    if not enabled:
        yield
        return
    import fcntl

    check_out_dir(run_dir)
    path = run_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _lock_or_name_holder(fd, fcntl.LOCK_EX, run_dir)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def remove_if_nothing_saved(run_dir: Path, created: bool):
    """A training that fails (a bad dataset, a wrong flag found late, Ctrl-C before its first checkpoint)
    removes the run folder it created if no checkpoint was saved in it: only its lock, config and log
    would be left. ``created``: this call made the folder (a folder that was there is never removed)."""
    try:
        yield
    except BaseException:
        saved = any((run_dir / name).exists() for name in ("last", "best", "last.prev", "best.prev", "locator.safetensors"))
        if created and run_dir.is_dir() and not saved:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def check_lock_free(run_dir: Path) -> None:
    """Refuse now, before anything is printed or loaded, if another training holds ``run_dir``'s lock
    (:func:`run_lock` checks again when it takes it)."""
    import fcntl

    path = Path(run_dir) / LOCK_FILE
    if not path.is_file():
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        _lock_or_name_holder(fd, fcntl.LOCK_SH, run_dir)
    finally:
        os.close(fd)


def check_run_dir(run_dir: Path, resume: bool) -> None:
    """A fresh start must not overwrite a run: refuse a folder holding a checkpoint unless ``resume``,
    and refuse (resume or not) a folder whose every checkpoint fails its checksums: starting afresh
    there would overwrite the only copies."""
    corrupt = corrupt_checkpoints_message(run_dir / "last")
    if corrupt:
        raise UserError(f"--out {run_dir}: {corrupt}; nothing to resume from, and a new run would overwrite "
                        "them: move the folder away or choose another --out")
    if not resume and resolve_checkpoint_dir(run_dir / "last") is not None:
        raise UserError(f"--out {run_dir}: already holds a run; add --resume to continue it or choose another folder")


def _lock_or_name_holder(fd: int, mode: int, run_dir: Path) -> None:
    """Take ``mode`` (fcntl.LOCK_EX or LOCK_SH) on the lock file without waiting, or refuse naming the
    PID the holder wrote into it."""
    import fcntl

    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        raise UserError(f"--out {run_dir}: another training (PID {holder}) is using this run folder") from None
