"""Replace an output file all at once, or not at all.

One job: the master workbook (and the JSON beside it) that staff open each morning must never be a
half-written zip. Each writer writes the complete file to a temporary name in the same folder
(so the rename never crosses file systems). The temporary file is fsynced and moved over the
target with `os.replace`, which is atomic. The folder is then fsynced so the rename survives a
power cut (on POSIX; Windows has no directory fsync).

A run killed mid-write leaves only a dot-prefixed ".~tmp-…" file beside an intact previous
master. `sweep_temporaries` removes those at the start of the next run.

On Windows, `os.replace` fails with PermissionError while someone has the master open in Excel.
We retry briefly, because virus scanners also hold files for a moment. If the master is still
locked, the new master is saved under a timestamped sibling name and that path is returned, so
the caller can tell staff where tonight's file is.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

TEMP_PREFIX = ".~tmp-"

# Seconds to wait before each retry of a replace refused with PermissionError.
# Module-level so tests can set it to ().
REPLACE_RETRY_DELAYS: tuple[float, ...] = (0.2, 0.5, 1.0)


def temp_path_for(path: Path) -> Path:
    """A fresh, exclusively created, empty temp file beside `path`.

    The name is ".~tmp-<stem>-<pid>-<rand><suffix>". The suffix is kept because some writers
    check the extension. The dot hides the file from a casual `ls`. It does not
    look like one of Excel's "~$" lock files, so no one opens it by mistake.
    """
    for _ in range(100):
        tmp = path.with_name(f"{TEMP_PREFIX}{path.stem}-{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")
        try:
            # O_EXCL guarantees that two writers in one process never share a temp file.
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temporary name beside {path}")  # pragma: no cover


def write_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """Run `write(tmp)` to produce the whole file, then move it over `path`.

    Returns the path actually written. That is `path`, or a "<stem>_<YYYYMMDD-HHMMSS><suffix>"
    sibling when `path` stays locked (PermissionError, e.g. open in Excel on Windows).
    On any exception the temp file is removed, `path` is left untouched and the exception
    propagates.
    """
    path = Path(path)
    tmp = temp_path_for(path)
    try:
        write(tmp)
        _fsync_file(tmp)
        try:
            _replace_with_retries(tmp, path)
            final = path
        except PermissionError:
            final = _free_stamped_name(path)
            os.replace(tmp, final)
        _fsync_dir(path.parent)
        return final
    except BaseException:
        # BaseException too: KeyboardInterrupt during a long write must not leave a temp file.
        _unlink_quietly(tmp)
        raise


def write_bytes_atomically(path: Path, data: bytes) -> Path:
    """`write_atomically` for bytes already in memory (the JSON report, manifests)."""
    return write_atomically(path, lambda tmp: tmp.write_bytes(data))


def sweep_temporaries(folder: Path) -> list[Path]:
    """Remove the ".~tmp-*" files a killed run left in `folder`. Returns the removed paths.

    Call it while holding the nightly run's lock: a temp file of another live run looks the
    same as a stale one. This process's own in-flight temps (same pid in the name) are kept.
    Files that cannot be removed (still open elsewhere on Windows) are skipped silently; the
    next run tries again.
    """
    folder = Path(folder)
    own = f"-{os.getpid()}-"
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in sorted(folder.glob(TEMP_PREFIX + "*")):
        if not entry.is_file() or own in entry.name[len(TEMP_PREFIX) :]:
            continue
        try:
            entry.unlink()
        except OSError:
            continue
        removed.append(entry)
    return removed


def stamped_name(path: Path, when: datetime | None = None) -> Path:
    """"<stem>_<YYYYMMDD-HHMMSS><suffix>" beside `path`, in local time."""
    stamp = (when or datetime.now()).strftime("%Y%m%d-%H%M%S")
    return path.with_name(f"{path.stem}_{stamp}{path.suffix}")


def _free_stamped_name(path: Path) -> Path:
    # Two runs in the same second (a retry by hand) must not overwrite each other's fallback.
    first = stamped_name(path)
    candidate, n = first, 1
    while candidate.exists():
        n += 1
        candidate = first.with_name(f"{first.stem}-{n}{first.suffix}")
    return candidate


def _replace_with_retries(tmp: Path, path: Path) -> None:
    for delay in (*REPLACE_RETRY_DELAYS, None):
        try:
            os.replace(tmp, path)
            return
        except PermissionError:
            if delay is None:
                raise
            time.sleep(delay)


def _fsync_file(path: Path) -> None:
    # O_RDWR: on Windows os.fsync (_commit → FlushFileBuffers) needs a handle with write access.
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":
        return  # directories cannot be opened as files on Windows; NTFS journals the rename
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # some file systems (network shares) refuse it
            os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):  # if it cannot go now, sweep_temporaries removes it later
        path.unlink(missing_ok=True)
