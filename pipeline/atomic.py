r"""Replace an output file all at once, or not at all.

One job: the master workbook (and the JSON beside it) that staff open each morning must never be a
half-written zip. Each writer writes the complete file to a temporary name in the same folder
(so the rename never crosses file systems). The temporary file is fsynced and moved over the
target with `os.replace`, which is atomic. The folder is then fsynced so the rename survives a
power cut (on POSIX; Windows has no directory fsync).

A run killed mid-write leaves only a dot-prefixed ".~tmp-…" file beside an intact previous
master. `sweep_temporaries` (one folder) and `sweep_all` (several) remove those at the start of
the next run. A temporary whose writing process is still alive (its pid is in the name) is kept,
so a sweep never pulls the file from under a concurrent writer (`pipeline templates` or
`validate --feedback` do not take the merge's lock).

Every writer of the project goes through here: the master, the summary, the run report, the
feedback copies and the templates.

Long paths: on Windows every file-system call made here uses the extended-length form
(`\\?\C:\…`, `\\?\UNC\server\share\…`) of an absolute path, so an output deeper than 260
characters (a long share path plus a long department file name) can still be written.

On Windows, `os.replace` fails with PermissionError while someone has the master open in Excel.
We retry briefly, because virus scanners also hold files for a moment. If the master is still
locked, the new master is saved under a timestamped sibling name and that path is returned, so
the caller can tell staff where tonight's file is.
"""

from __future__ import annotations

import contextlib
import ntpath
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

TEMP_PREFIX = ".~tmp-"

# Seconds to wait before each retry of a replace refused with PermissionError.
# Module-level so tests can set it to ().
REPLACE_RETRY_DELAYS: tuple[float, ...] = (0.2, 0.5, 1.0)

# The stem part of a temporary's name is cut to this many UTF-8 bytes, so that the temporary's
# name stays within the 255 bytes file systems allow whatever the target's name.
_TEMP_STEM_BYTES = 120
# ".~tmp-<stem>-<pid>-<8 hex><suffix>": the pid of the writing process.
_TEMP_PID = re.compile(r"-(\d+)-[0-9a-f]{8}(?:\.[^.]*)?$")
_EXTENDED_PREFIXES = ("\\\\?\\", "\\\\.\\")  # device paths, as in the docstring below


def extended_length_path(path: str, *, windows: bool) -> str:
    r"""The Windows extended-length form of an absolute path; any other path unchanged.

    C:\outbox\a.xlsx → \\?\C:\outbox\a.xlsx, and \\srv\share\a.xlsx → \\?\UNC\srv\share\a.xlsx.
    The prefix turns off Windows' path parsing, so the path is first made canonical (forward
    slashes become backslashes, "." and ".." are resolved). Relative paths, drive-relative
    paths (C:a.xlsx), rooted paths without a drive (\outbox) and paths already in device form
    (\\?\…, \\.\…) are returned as given. `windows` is explicit so that the rule can be
    tested on any OS; `long_path` applies it where it matters.
    """
    if not windows or path.startswith(_EXTENDED_PREFIXES):
        return path
    candidate = path.replace("/", "\\")
    drive, rest = ntpath.splitdrive(candidate)
    if not drive or not rest.startswith("\\"):
        return path
    candidate = ntpath.normpath(candidate)
    if candidate.startswith("\\\\"):  # UNC: \\server\share\…
        return "\\\\?\\UNC\\" + candidate[2:]
    return "\\\\?\\" + candidate


def long_path(path: os.PathLike[str] | str) -> Path:
    """`path` in the form to hand to the OS: on Windows made absolute (the settings' default
    outbox is relative) and extended-length (see above); elsewhere unchanged."""
    text = os.fspath(path)
    if os.name != "nt":
        return Path(text)
    return Path(extended_length_path(os.path.abspath(text), windows=True))  # pragma: no cover


def temp_path_for(path: Path) -> Path:
    """A fresh, exclusively created, empty temp file beside `path`.

    The name is ".~tmp-<stem>-<pid>-<rand><suffix>". The suffix is kept because some writers
    check the extension. The dot hides the file from a casual `ls`. It does not
    look like one of Excel's "~$" lock files, so no one opens it by mistake.
    """
    path = long_path(path)
    stem = _cut_utf8(path.stem, _TEMP_STEM_BYTES)
    suffix = path.suffix if len(path.suffix.encode("utf-8")) <= 16 else ""
    for _ in range(100):
        tmp = path.with_name(f"{TEMP_PREFIX}{stem}-{os.getpid()}-{secrets.token_hex(4)}{suffix}")
        try:
            # O_EXCL guarantees that two writers in one process never share a temp file.
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temporary name beside {path}")  # pragma: no cover


def write_atomically(path: Path, write: Callable[[Path], object], *, fallback: bool = True) -> Path:
    """Run `write(tmp)` to produce the whole file, then move it over `path`.

    Returns the path actually written. That is `path`, or a "<stem>_<YYYYMMDD-HHMMSS><suffix>"
    sibling when `path` stays locked (PermissionError, e.g. open in Excel on Windows). With
    `fallback=False` the PermissionError propagates instead (for files whose name matters,
    such as the templates). On any exception the temp file is removed, `path` is left
    untouched and the exception propagates.
    """
    path = Path(path)
    target = long_path(path)
    tmp = temp_path_for(target)
    try:
        write(tmp)
        _fsync_file(tmp)
        try:
            _replace_with_retries(tmp, target)
            final = path
        except PermissionError:
            if not fallback:
                raise
            final = free_stamped_name(path)
            os.replace(tmp, long_path(final))
        _fsync_dir(target.parent)
        return final
    except BaseException:
        # BaseException too: KeyboardInterrupt during a long write must not leave a temp file.
        _unlink_quietly(tmp)
        raise


def write_bytes_atomically(path: Path, data: bytes, *, fallback: bool = True) -> Path:
    """`write_atomically` for bytes already in memory (the JSON report, the feedback copies)."""
    return write_atomically(path, lambda tmp: tmp.write_bytes(data), fallback=fallback)


def sweep_temporaries(folder: Path) -> list[Path]:
    """Remove the ".~tmp-*" files a killed run left in `folder`. Returns the removed paths.

    A temporary whose writer is still running (the pid in its name is a live process: this
    process's own in-flight writes, or a `pipeline templates` run beside the merge) is kept.
    Files that cannot be removed (still open elsewhere on Windows) are skipped silently; the
    next run tries again. A reused pid only makes a stale file wait for a later sweep.
    """
    folder = Path(folder)
    removed: list[Path] = []
    real = long_path(folder)
    if not real.is_dir():
        return removed
    for entry in sorted(real.glob(TEMP_PREFIX + "*")):
        if not entry.is_file() or _writer_alive(entry.name):
            continue
        try:
            entry.unlink()
        except OSError:
            continue
        removed.append(folder / entry.name)
    return removed


def sweep_all(folders: Iterable[Path]) -> list[Path]:
    """`sweep_temporaries` over each of `folders` (missing ones are skipped). Returns the removed paths.

    The nightly merge calls it with every output folder: the outbox, history, feedback, the
    cache and the templates folder.
    """
    removed: list[Path] = []
    for folder in folders:
        removed += sweep_temporaries(folder)
    return removed


def _writer_alive(name: str) -> bool:
    match = _TEMP_PID.search(name)
    if match is None:
        return False  # not one of ours in the current form: nothing can be writing it
    pid = int(match.group(1))
    return pid == os.getpid() or _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id exists. An id that cannot be a process is not alive; on
    Windows a process we may not query is alive (its temporary waits for a later sweep)."""
    if pid <= 0:
        return False
    if os.name == "nt":
        return _pid_alive_windows(pid)
    try:
        os.kill(pid, 0)  # signal 0: existence check only, nothing is sent
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except (OSError, OverflowError):
        return False  # not a valid pid on this system
    return True


def _pid_alive_windows(pid: int) -> bool:  # pragma: no cover - Windows only
    # Not os.kill: on Windows it terminates the process. OpenProcess + GetExitCodeProcess, with
    # argtypes and restype so that a HANDLE is pointer-sized (the default int would cut it to 32 bits).
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    handle, dword, boolean = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int
    kernel32.OpenProcess.argtypes, kernel32.OpenProcess.restype = [dword, boolean, dword], handle
    kernel32.GetExitCodeProcess.argtypes = [handle, ctypes.POINTER(dword)]
    kernel32.GetExitCodeProcess.restype = boolean
    kernel32.CloseHandle.argtypes, kernel32.CloseHandle.restype = [handle], boolean
    query_limited, still_active, invalid_parameter = 0x1000, 259, 87
    process = kernel32.OpenProcess(query_limited, False, pid)
    if not process:
        return ctypes.get_last_error() != invalid_parameter  # type: ignore[attr-defined]  # access denied: it exists
    try:
        code = dword()
        if not kernel32.GetExitCodeProcess(process, ctypes.byref(code)):
            return True
        return code.value == still_active
    finally:
        kernel32.CloseHandle(process)


def stamped_name(path: Path, when: datetime | None = None) -> Path:
    """"<stem>_<YYYYMMDD-HHMMSS><suffix>" beside `path`, in local time."""
    stamp = (when or datetime.now()).strftime("%Y%m%d-%H%M%S")
    return path.with_name(f"{path.stem}_{stamp}{path.suffix}")


def free_stamped_name(path: Path) -> Path:
    """`stamped_name(path)`, with "-2", "-3", … when that name is taken."""
    # Two runs in the same second (a retry by hand) must not overwrite each other's fallback.
    first = stamped_name(path)
    candidate, n = first, 1
    while long_path(candidate).exists():
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


def _cut_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):  # if it cannot go now, sweep_temporaries removes it later
        path.unlink(missing_ok=True)
