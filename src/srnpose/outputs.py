"""What a command writes, and how: atomically, only where it owns, and a full disk as one line.

Every file a command writes goes to a temporary name in its own folder (``.NAME.tmp-PID-XXXXXX.EXT``, the
extension kept so that libraries choosing a format by extension still work), is fsynced, and is renamed
into place only when complete. A failure (an error, a full disk, Ctrl-C) removes the temporary files
and leaves what was there before exactly as it was.

    with output_folder(args.out) as out:       # a command's folder: one transaction
        with out.open("predictions.jsonl") as f: ...
        save_png(out.stage("overlays/0001.png"), rgb)
    # renamed into place here; on an error nothing is renamed, and a folder the command created is removed

    with atomic_path("model.onnx") as tmp:      # one file written by a library
        onnx.save(proto, str(tmp))

    write_text("bench.json", text)              # one file written here

Ownership (:func:`folder_kind`, :func:`refuse_foreign_folder`, :func:`refuse_replacing`): a command writes
into its own kind of folder only, and replaces a file only when it is its own kind of file. A full disk
(``ENOSPC``, ``EFBIG`` as ``ulimit -f`` gives it) is a :class:`DiskFullError`: one line naming the file
and the free space on its disk.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from srnpose.errors import UserError

__all__ = [
    "DiskFullError",
    "is_disk_full",
    "fsync_file",
    "fsync_dir",
    "disk_full_error",
    "free_space",
    "temp_path",
    "final_path",
    "is_temp_name",
    "remove_stale_temps",
    "atomic_path",
    "write_bytes",
    "write_text",
    "OutputFolder",
    "output_folder",
    "writing",
    "out_path",
    "check_folder_target",
    "check_file_target",
    "folder_kind",
    "refuse_foreign_folder",
    "refuse_replacing",
]

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
# what libraries that do their own I/O (safetensors' Rust writer) say instead of raising OSError
DISK_FULL_TEXT = ("No space left on device", "File too large", "Disk quota exceeded")
FSYNC_EACH_UP_TO = 64  # a transaction of more files flushes the disk once (os.sync) instead of file by file
_TEMP_RE = re.compile(r"^\.(?P<stem>.+)\.tmp-(?P<pid>\d+)-[0-9a-f]{6}(?P<suffix>\.[^.]+)?$")


class DiskFullError(UserError):
    """A write failed for lack of space (or the file size limit): one line naming the file and the free
    space; what was there before is unchanged. ``head``: the line without what was kept."""

    head: str = ""


# --------------------------------------------------------------------------- a full disk


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that failed for lack of space or the file size limit."""
    if isinstance(exc, DiskFullError):
        return True
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        return True
    return not isinstance(exc, (OSError, UserError)) and any(t in str(exc) for t in DISK_FULL_TEXT)


def _nearest_existing(path: Path) -> Path:
    """``path`` itself if it exists, else its nearest existing parent (the root at worst)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_space(path: str | Path) -> str:
    """The free space on the disk that holds ``path`` (or its nearest existing folder), e.g. '2.1 GB'."""
    try:
        free = shutil.disk_usage(_nearest_existing(Path(os.path.abspath(path)))).free
    except OSError:
        return "unknown"
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if free >= size:
            return f"{free / size:.1f} {unit}"
    return f"{free} bytes"


def disk_full_error(path: str | Path, exc: BaseException, kept: str = "nothing written before was changed") -> DiskFullError:
    """The one line for a write of ``path`` that failed with ``exc`` (see :func:`is_disk_full`)."""
    if isinstance(exc, DiskFullError):
        return exc
    path = final_path(path)
    too_large = (isinstance(exc, OSError) and exc.errno == errno.EFBIG) or "File too large" in str(exc)
    what = ("file too large: the disk is full or a file size limit (ulimit -f) was reached" if too_large
            else "no space left on the disk")
    head = f"cannot write {path}: {what} ({free_space(path)} free there)"
    error = DiskFullError(f"{head}; {kept}")
    error.head = head
    return error


# --------------------------------------------------------------------------- temporary names


def temp_path(path: str | Path) -> Path:
    """A fresh temporary name beside ``path``: ``.STEM.tmp-PID-XXXXXX.SUFFIX`` (hidden, suffix kept)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}-{secrets.token_hex(3)}{path.suffix}")


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of :func:`temp_path`'s."""
    return _TEMP_RE.match(name) is not None


def final_path(path: str | Path) -> Path:
    """The file a temporary name (:func:`temp_path`, nested or not) stands for; other paths as they are."""
    path = Path(path)
    while m := _TEMP_RE.match(path.name):
        path = path.with_name(m["stem"] + (m["suffix"] or ""))
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: str | Path, depth: int = 1) -> int:
    """Remove the temporary files that killed srnpose processes left in ``folder`` (and its subfolders,
    ``depth`` levels down); returns how many. Those of running processes are left alone."""
    folder, removed = Path(folder), 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if entry.is_dir(follow_symlinks=False) and depth > 0:
            removed += remove_stale_temps(entry.path, depth - 1)
        elif (m := _TEMP_RE.match(entry.name)) and not _alive(int(m["pid"])):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed += 1
    return removed


def fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - not every platform opens folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _make_parents(folder: Path) -> Path | None:
    """Create ``folder`` and missing parents; the topmost folder created (None: it existed)."""
    folder = Path(folder)
    top = None
    probe = folder
    while not probe.exists() and probe != probe.parent:
        top = probe
        probe = probe.parent
    if top is not None:
        folder.mkdir(parents=True, exist_ok=True)
    return top


# --------------------------------------------------------------------------- one file


@contextlib.contextmanager
def atomic_path(path: str | Path, kept: str = "nothing written before was changed") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a library to write; renamed onto ``path`` when the
    block ends without error. On any failure (KeyboardInterrupt included) the temporary file and the
    folders created for it are removed and ``path`` is as it was; a full disk is a :class:`DiskFullError`."""
    path = Path(path)
    created = _make_parents(path.parent)
    tmp = temp_path(path)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(errno.ENOENT, "the writer wrote nothing", str(tmp))
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as exc:
        _unlink(tmp)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        if isinstance(exc, Exception) and is_disk_full(exc):
            raise disk_full_error(path, exc, kept) from None
        raise


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:  # which fsyncs the file before the rename
        with open(tmp, "wb") as f:
            f.write(data)
    return Path(path)


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    return write_bytes(path, text.encode(encoding))


# --------------------------------------------------------------------------- a command's folder


class OutputFolder:
    """A command's output folder, written as one transaction (use :func:`output_folder`).

    Files are staged under temporary names in the folders they belong to and renamed into place by
    :meth:`commit`; :meth:`abort` removes them, and the folders this transaction created. Files staged
    under the same name twice keep the last.
    """

    def __init__(self, path: Path, created: Path | None) -> None:
        self.path = path
        self._created = [created] if created is not None else []  # folders to remove on abort
        self._staged: dict[Path, Path] = {}  # final path -> temporary path
        self._open: dict[Path, IO[Any]] = {}  # final path -> open file
        self._delete: list[Path] = []
        self._current: Path | None = None  # the file staged last (named when a write fails)
        self.done = False

    def __fspath__(self) -> str:  # where it writes, for code that wants the folder as a path
        return os.fspath(self.path)

    def final(self, name: str | Path) -> Path:
        """Where ``name`` (relative to the folder) lands."""
        return self.path / name

    def stage(self, name: str | Path) -> Path:
        """A temporary path for the file ``name`` (relative to the folder; sub-folders are created and
        removed again on abort); write it there, it is renamed into place on commit."""
        final = self.path / name
        folder = final.parent
        if not folder.is_dir():
            created = _make_parents(folder)
            if created is not None and not any(created == c or c in created.parents for c in self._created):
                self._created.append(created)
        old = self._staged.get(final)
        if old is not None:
            _unlink(old)
        tmp = temp_path(final)
        self._staged[final] = tmp
        self._current = final
        return tmp

    def open(self, name: str | Path, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None):
        """A staged file, open for writing; closed and renamed into place on commit."""
        binary = "b" in mode
        tmp = self.stage(name)
        f = open(tmp, mode, encoding=None if binary else encoding, newline=None if binary else newline)
        self._open[self.path / name] = f
        return _Uncloseable(f)

    def write_bytes(self, name: str | Path, data: bytes) -> Path:
        tmp = self.stage(name)
        with open(tmp, "wb") as f:
            f.write(data)
        return self.path / name

    def write_text(self, name: str | Path, text: str, encoding: str = "utf-8") -> Path:
        return self.write_bytes(name, text.encode(encoding))

    def delete_on_commit(self, name: str | Path) -> None:
        """Remove ``name`` when the transaction commits (a stale file of an earlier run)."""
        self._delete.append(self.path / name)

    def commit(self) -> None:
        """fsync every staged file, rename it into place, remove the files marked for deletion."""
        if self.done:
            return
        for final, f in list(self._open.items()):
            self._current = final
            f.close()  # flushed here, fsynced with the other staged files below
        self._open.clear()
        folders = set()
        for final, tmp in self._staged.items():
            self._current = final
            if not tmp.exists():
                raise FileNotFoundError(errno.ENOENT, "nothing was written", str(final))
            if len(self._staged) <= FSYNC_EACH_UP_TO:
                fsync_file(tmp)
        if len(self._staged) > FSYNC_EACH_UP_TO:
            os.sync()  # one flush of everything: thousands of fsyncs (a synthetic dataset) take minutes
        for final, tmp in self._staged.items():
            os.replace(tmp, final)
            folders.add(final.parent)
        for path in self._delete:
            if path not in self._staged:
                _unlink(path)
                folders.add(path.parent)
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            fsync_dir(folder)
        if self.path.parent.exists():
            fsync_dir(self.path.parent)
        self.done = True

    def abort(self) -> None:
        """Remove every staged file and the folders this transaction created."""
        if self.done:
            return
        for f in self._open.values():
            with contextlib.suppress(Exception):
                f.close()
        self._open.clear()
        for tmp in self._staged.values():
            _unlink(tmp)
        self._staged.clear()
        for folder in reversed(self._created):
            shutil.rmtree(folder, ignore_errors=True)
        self.done = True

    @property
    def current(self) -> Path:
        """The file being written (the last staged), else the folder."""
        return self._current or self.path


class _Uncloseable:
    """A staged file as the caller sees it: ``with`` and ``close()`` flush only; the transaction
    closes it when it commits (fsync first) or aborts."""

    def __init__(self, f: IO[Any]) -> None:
        self._f = f

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.flush()

    def close(self) -> None:
        self._f.flush()


def out_path(text: str | Path, flag: str = "--out") -> Path:
    """A command's ``--out`` as a path; an empty one is refused (it would write into the current folder)."""
    if isinstance(text, str) and not text.strip():
        raise UserError(f"{flag} {text!r}: empty; give a folder or file name ('.' for the current folder)")
    return Path(text)


@contextlib.contextmanager
def output_folder(path: str | Path, flag: str | None = "--out",
                  kept: str = "nothing written before was changed") -> Iterator[OutputFolder]:
    """A command's output folder as one transaction: created if missing (and removed again if the
    command fails), its files staged and renamed into place when the block ends without error.
    On any failure (Ctrl-C included) what was there before is exactly as it was; a full disk is a
    :class:`DiskFullError` naming the file being written and the free space."""
    label = f"{flag} {path}" if flag else str(path)
    path = out_path(path, flag or "--out")
    if path.exists() and not path.is_dir():
        raise UserError(f"{label}: is a file, not a folder")
    try:
        created = _make_parents(path)
    except OSError as exc:
        raise UserError(f"{label}: cannot create the folder ({exc.strerror or exc})") from None
    folder = OutputFolder(path, created)
    try:
        _probe(path, label)
    except BaseException:
        folder.abort()
        raise
    remove_stale_temps(path)
    try:
        yield folder
        folder.commit()
    except BaseException as exc:
        where = folder.current
        folder.abort()
        if isinstance(exc, Exception) and is_disk_full(exc):
            raise disk_full_error(where, exc, kept) from None
        raise


@contextlib.contextmanager
def writing(out: str | Path | OutputFolder) -> Iterator[OutputFolder]:
    """``out`` as a transaction: an :class:`OutputFolder` as is (its owner commits), a path as a new
    :func:`output_folder` committed when the block ends. Library functions that write several files
    take either."""
    if isinstance(out, OutputFolder):
        yield out
        return
    with output_folder(out, flag=None) as folder:
        yield folder


def _probe(folder: Path, label: str) -> None:
    """Create and remove a file in ``folder``: a UserError naming ``label`` if that fails (/proc, a
    read-only disk, no permission), before anything is computed."""
    probe = temp_path(folder / "probe")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as exc:
        raise UserError(f"{label}: cannot write in {folder} ({exc.strerror or exc})") from None
    os.close(fd)
    _unlink(probe)


def check_folder_target(path: str | Path, flag: str = "--out") -> Path:
    """A folder a command will write: not empty, not a file, and creatable in a folder that takes files.
    Checked before anything is computed; nothing is created (:func:`output_folder` creates it)."""
    path = out_path(path, flag)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path}: is a file, not a folder")
    probe = _nearest_existing(path)
    if not probe.is_dir():
        raise UserError(f"{flag} {path}: cannot create the folder ({os.strerror(errno.ENOTDIR)})")
    _probe(probe, f"{flag} {path}")
    return path


def check_file_target(path: str | Path, flag: str, suffixes: tuple[str, ...] | None = None) -> Path:
    """A file a command will write: not empty, not a folder, the right extension, and a folder that
    exists (or can be created) and takes files. Checked before anything is computed; nothing is left
    behind."""
    path = out_path(path, flag)
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a folder, expected a file name")
    if suffixes and path.suffix.lower() not in suffixes:
        raise UserError(f"{flag} {path}: expected a {' or '.join(suffixes)} file name")
    probe = _nearest_existing(path.parent)
    if not probe.is_dir():
        raise UserError(f"{flag} {path}: {probe} is a file, not a folder")
    _probe(probe, f"{flag} {path}")
    return path


# --------------------------------------------------------------------------- who owns what

def _pose_config(folder: Path) -> bool:
    """Whether ``folder`` (or its ``last/``/``best/``) holds a pose model's run config: an SRN ``model``
    section. A locator's folder may hold checkpoints too; its config has no stages."""
    import yaml

    for path in (folder / "config.yaml", folder / "last" / "config.yaml", folder / "best" / "config.yaml"):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError):
            continue
        model = data.get("model") if isinstance(data, dict) else None
        if isinstance(model, dict) and "num_stages" in model:
            return True
    return False


def _is_run(p: Path) -> bool:
    return (any((p / n).is_dir() for n in ("last", "best", "last.tmp", "last.prev")) or (p / "metrics.csv").is_file()) \
        and _pose_config(p)


# the files that say which command wrote a folder, checked in this order (a demo run holds a report too,
# a run with a locator attached holds the locator's files)
FOLDER_KINDS: tuple[tuple[str, Callable[[Path], bool]], ...] = (
    ("a pose model's training run", _is_run),
    ("a pose model's checkpoint folder", lambda p: (p / "model.safetensors").is_file() and _pose_config(p)),
    ("a hand locator's folder", lambda p: any((p / n).exists() for n in ("locator.safetensors", "locator.yaml",
                                                                         "locator_train.pt"))),
    ("a predict output folder", lambda p: (p / "predictions.jsonl").is_file()),
    ("a synthetic dataset", lambda p: (p / "meta.json").is_file() and (p / "labels.txt").is_file()),
    ("an evaluation report", lambda p: (p / "report.json").is_file() and (p / "summary.md").is_file()),
)
RUN_KIND, CHECKPOINT_KIND, LOCATOR_KIND, PREDICT_KIND, SYNTH_KIND, REPORT_KIND = (k for k, _ in FOLDER_KINDS)


def folder_kind(path: str | Path) -> str | None:
    """Which srnpose command's folder ``path`` is ('a training run', 'a predict output folder', ...), or
    None (missing, empty, or written by something else)."""
    path = Path(path)
    if not path.is_dir():
        return None
    for kind, test in FOLDER_KINDS:
        if test(path):
            return kind
    return None


def refuse_foreign_folder(path: str | Path, flag: str, allowed: tuple[str | None, ...], hint: str = "") -> None:
    """Refuse, in one line naming ``path``, a folder that another command wrote (its kind not in
    ``allowed``; None: a folder of no srnpose kind)."""
    kind = folder_kind(path)
    if kind not in allowed:
        raise UserError(f"{flag} {path}: is {kind}; refusing to write into it{'; ' + hint if hint else ''}")


def refuse_replacing(path: str | Path, flag: str, is_ours: Callable[[Path], bool], what: str) -> None:
    """An existing file at ``path`` is replaced only if it is ``what`` (``is_ours(path)``); else one line."""
    path = Path(path)
    if path.exists() and not is_ours(path):
        raise UserError(f"{flag} {path}: exists and is not {what}; refusing to replace it (remove it or choose "
                        "another name)")


def is_json_with(keys: tuple[str, ...]) -> Callable[[Path], bool]:
    """A test for :func:`refuse_replacing`: a JSON object holding ``keys``."""
    def test(path: Path) -> bool:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and all(k in data for k in keys)
    return test
