"""Run one parse in a contained child process, so a hostile workbook cannot take the nightly run down.

calamine aborts the process (SIGABRT, uncatchable) on some well-formed files and openpyxl can
grind for minutes into a MemoryError (shared/research/anchors-reliability.md §0, §2.1), so no
reader runs in the merge process itself. `run_contained` runs `fn(*args)` in a child with a
wall-clock timeout and a memory cap, and turns every way the child can die into
`SandboxError(kind, detail)`; callers map that to `reader-crashed`.

How the child starts: forked on Linux (fast; the memory cap is relative to what it inherits),
spawned elsewhere (Windows has no fork), or as `PIPELINE_START_METHOD` says (fork, spawn or
forkserver), so that CI can run the Windows way on Linux. Under spawn `fn` is pickled by
reference: it must be a module-level function of an importable module.

The memory cap: RLIMIT_AS on POSIX, set by the child itself once it has started (what it has
mapped then, plus `memory_bytes`); on Windows a Job Object with a per-process commit limit
(JOB_OBJECT_LIMIT_PROCESS_MEMORY), set by the parent on the child's handle, again relative to what
the child has committed once started. The call timeout starts when the child says it is ready,
so a slow start (imports under spawn, a virus scanner) is not counted against the parse.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import pickle
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

KINDS = ("crash", "timeout", "memory")

START_METHOD_ENV = "PIPELINE_START_METHOD"
START_METHODS = ("fork", "spawn", "forkserver")
STARTUP_TIMEOUT_S = 120.0  # a spawned child imports the pipeline first; a hang guard, not a limit
_READY = b"ready"
_READY_UNCAPPED = b"ready-uncapped"  # started, but its memory cap could not be set

# Rust's allocator failure message (calamine, issue tafia/calamine#693): the child aborts with
# SIGABRT, but the cause is memory, and saying so tells the operator which limit was hit.
_RUST_OOM = b"memory allocation of"


class SandboxError(Exception):
    """The contained parse did not return: kind is "crash", "timeout" or "memory"."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def start_methods() -> list[str]:
    """The start methods this Python can use: fork and forkserver only where os.fork exists."""
    forks = hasattr(os, "fork")
    return [m for m in START_METHODS
            if m in multiprocessing.get_all_start_methods() and (forks or m == "spawn")]


def start_method() -> str:
    """The start method for contained children: $PIPELINE_START_METHOD, else fork on Linux (where
    os.fork exists), spawn elsewhere."""
    chosen = os.environ.get(START_METHOD_ENV, "").strip().lower()
    if not chosen:
        return "fork" if sys.platform.startswith("linux") and hasattr(os, "fork") else "spawn"
    if chosen not in start_methods():
        raise ValueError(f"{START_METHOD_ENV}={chosen!r} is not a start method here "
                         f"(use one of: {', '.join(start_methods())})")
    return chosen


def _limit_memory(memory_bytes: int) -> bool:
    """Cap the child's address space at what it has mapped now plus `memory_bytes`; no core dumps.
    Returns whether the cap is in force (False on Windows, where the parent's Job Object caps the
    child instead, and where the system refuses the limit).

    RLIMIT_AS counts the whole virtual size. A forked child starts with the parent's (pandas and
    numpy alone map hundreds of MB); a spawned one has just imported what unpickling `fn` needed.
    So the cap is relative to the child as it starts: an absolute one would starve or over-allow
    depending on what was imported before.
    """
    try:
        import resource
    except ImportError:  # Windows: the parent caps the child with a Job Object instead
        return False
    try:
        with open("/proc/self/statm") as fh:
            current = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        current = 0
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # an abort must not leave a core file behind
    try:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = current + memory_bytes
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):  # a system that refuses it: the child runs with the timeout only
        return False
    return True


def answer(fn: Callable[..., Any], args: tuple) -> bytes:
    """Run one call and pickle its outcome: ("ok", result) | ("raise", exc) | ("memory"/"crash", detail)."""
    try:
        msg: tuple[str, Any] = ("ok", fn(*args))
    except MemoryError as exc:
        msg = ("memory", f"MemoryError {exc}".strip())
    except Exception as exc:
        msg = ("raise", exc)
    except BaseException as exc:
        msg = ("crash", f"{type(exc).__name__}: {exc}"[:500])
    try:
        return pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    except MemoryError:
        return pickle.dumps(("memory", "MemoryError while returning the result"))
    except Exception as exc:
        if msg[0] == "raise":
            text = "".join(traceback.format_exception_only(type(msg[1]), msg[1])).strip()
            return pickle.dumps(("crash", f"unpicklable exception {text}"[:500]))
        return pickle.dumps(("crash", f"result cannot be returned: {type(exc).__name__}: {exc}"[:500]))


_EMIT: Any = None  # in a worker child: its connection to the parent


def emit(value: Any) -> None:
    """Send `value` to the parent ahead of the call's result (in a worker; a no-op elsewhere).

    What is emitted reaches the parent even when the call then kills the child: the gate's
    verdict on a file, say, before the native parser reads it."""
    if _EMIT is not None:
        _EMIT.send_bytes(pickle.dumps(("part", value), protocol=pickle.HIGHEST_PROTOCOL))


def _serve(conn: Any, errpath: str | None, memory_bytes: int, fn: Callable[..., Any]) -> None:
    """Child side: keep native stderr, limit memory once, say ready, then answer calls until the
    parent closes the pipe."""
    if errpath:
        # Native libraries write their last words (a Rust panic or allocation failure) to fd 2:
        # send it to a file the parent reads when the child dies. Opened by path, so this works
        # whether the child was forked or spawned.
        fd = os.open(errpath, os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0))
        os.dup2(fd, 2)
        # What a reader library prints goes there too, never into the command's stdout (`--json`)
        # or the nightly log.
        os.dup2(fd, 1)
        os.close(fd)
        # A forked child's sys.stdout is still the parent's Python object (a capture, a console):
        # Python-level prints follow fd 1 as well.
        sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False, buffering=1)  # noqa: SIM115
        _windows_stderr_to_fd2()
        import faulthandler

        if faulthandler.is_enabled():  # (pytest enables it on its own copy of the parent's stderr)
            # fd 2 itself: sys.stderr may be a stand-in without a file descriptor (click's runner)
            faulthandler.enable(file=2)
    _windows_no_crash_dialog()
    capped = _limit_memory(memory_bytes)
    global _EMIT
    _EMIT = conn
    conn.send_bytes(_READY if capped else _READY_UNCAPPED)
    while True:
        try:
            args = conn.recv()
        except (EOFError, OSError):
            return
        if args is None:  # the parent is done (a forked child also holds the parent's end: no EOF)
            return
        conn.send_bytes(answer(fn, args))


def _stderr_since(path: str | None, offset: int) -> bytes:
    if not path:
        return b""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(offset, size - 65536))  # a Rust backtrace can push the cause far up
            return fh.read()
    except OSError:
        return b""


def _size(path: str | None) -> int:
    try:
        return os.path.getsize(path) if path else 0
    except OSError:
        return 0


class Worker:
    """A child process that runs `fn` call after call, contained in time and memory.

    Starting a process per file would cost more than parsing it, so one worker serves a whole
    run and is replaced only when a call kills it. Each call either returns fn's result,
    re-raises fn's ordinary exception, or raises SandboxError(kind, detail).

    >>> with Worker(len, timeout_s=5, memory_bytes=2**30) as w:
    ...     w.call(b"abc")
    3
    """

    def __init__(self, fn: Callable[..., Any], *, timeout_s: float, memory_bytes: int) -> None:
        self.fn = fn
        self.timeout_s = timeout_s
        self.memory_bytes = memory_bytes
        self._method = start_method()
        self._ctx: Any = multiprocessing.get_context(self._method)
        self._proc: Any = None
        self._conn: Any = None
        self._errpath: str | None = None
        self._job: WindowsJob | None = None
        self.memory_capped = False  # whether the running child has a memory cap
        self.cap_missing = False  # whether any child this worker started ran without one
        self.parts: list[Any] = []
        self._sent = False
        self._deadline = 0.0
        self._offset = 0

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        fd, self._errpath = tempfile.mkstemp(prefix="pipeline-reader-", suffix=".log")
        os.close(fd)
        self._proc = self._ctx.Process(
            target=_serve, args=(child, self._errpath, self.memory_bytes, self.fn), daemon=True
        )
        self._proc.start()
        child.close()  # so that recv sees EOF when the child dies
        self._conn = parent
        if sys.platform == "win32":
            # Capped from the start (with room for the interpreter), then re-capped once the child
            # is ready, relative to what it has committed by then (as RLIMIT_AS is on POSIX).
            self._job = WindowsJob.for_process(self._proc.sentinel, self.memory_bytes + 512 * 2**20)
        try:
            ready = parent.poll(STARTUP_TIMEOUT_S)
            hello = parent.recv_bytes() if ready else None
        except (EOFError, OSError):
            ready, hello = True, None
        if not ready:
            self._kill()
            raise SandboxError("timeout", f"読み込み処理が {STARTUP_TIMEOUT_S:g} 秒以内に起動しなかった")
        if hello not in (_READY, _READY_UNCAPPED):
            self._proc.join(timeout=5)
            error = self._death(self._proc.exitcode, _stderr_since(self._errpath, 0))
            self._kill()
            raise error
        if self._job is not None:
            self.memory_capped = self._job.cap_relative(self._proc.sentinel, self.memory_bytes)
        else:  # on Windows without a Job Object nothing caps it; elsewhere the child says
            self.memory_capped = sys.platform != "win32" and hello == _READY
        self.cap_missing = self.cap_missing or not self.memory_capped

    def close(self) -> None:
        """Stop the child (politely, then by force) and release its pipe, job and stderr file."""
        if self._conn is not None:
            with contextlib.suppress(OSError, ValueError):
                self._conn.send(None)
            self._conn.close()
        if self._proc is not None:
            self._proc.join(timeout=2)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
        if self._job is not None:
            self._job.close()  # KILL_ON_JOB_CLOSE: nothing of the child outlives this
        if self._errpath is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._errpath)
        self._proc = self._conn = self._errpath = self._job = None

    def _kill(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self.close()

    def call(self, *args: Any) -> Any:
        self.submit(*args)
        return self.collect()

    def submit(self, *args: Any) -> None:
        """Start a call; `collect` waits for its result (the timeout counts from here)."""
        if self._proc is None:
            self._start()
        self._offset = _size(self._errpath)
        self.parts = []  # what the call emitted before its result
        self._deadline = time.monotonic() + self.timeout_s
        try:
            self._conn.send(args)
            self._sent = True
        except (EOFError, OSError):
            self._sent = False  # the child is gone: collect reports how

    @property
    def connection(self) -> Any:
        return self._conn

    @property
    def deadline(self) -> float:
        return self._deadline

    def collect(self) -> Any:
        """The submitted call's result: fn's value, fn's exception re-raised, or SandboxError."""
        while True:
            try:
                ready = not self._sent or self._conn.poll(max(0.0, self._deadline - time.monotonic()))
            except (EOFError, OSError):
                ready = True
            if not ready:
                self._kill()
                raise SandboxError("timeout", f"{self.timeout_s:g} 秒以内に終わらなかった")
            try:
                payload = self._conn.recv_bytes()
            except (EOFError, OSError):
                payload = None
            if payload is None:
                self._proc.join(timeout=5)
                error = self._death(self._proc.exitcode, _stderr_since(self._errpath, self._offset))
                self._kill()
                raise error
            status, value = pickle.loads(payload)
            if status == "part":
                self.parts.append(value)
                continue
            if status == "ok":
                return value
            if status == "raise":
                raise value
            self._kill()  # after a MemoryError the child's heap may be in any state
            raise SandboxError(status, str(value))

    @staticmethod
    def _death(code: int | None, tail: bytes) -> SandboxError:
        """Why the child died without answering."""
        text = tail.decode("utf-8", "replace").strip()[-300:]
        if _RUST_OOM in tail:
            line = tail[tail.index(_RUST_OOM) :].split(b"\n", 1)[0]
            return SandboxError("memory", line.decode("utf-8", "replace")[:300])
        if code is not None and code < 0:
            import signal

            try:
                signame = signal.Signals(-code).name
            except ValueError:
                signame = str(-code)
            # SIGKILL that we did not send is almost always the kernel's OOM killer.
            return SandboxError("memory" if signame == "SIGKILL" else "crash", f"{signame} {text}".strip())
        return SandboxError("crash", f"exit code {code} {text}".strip())


class Pool:
    """`size` Workers running the same fn over many calls, each call contained on its own (its
    timeout, the worker's memory cap; a worker a call kills is replaced for the next call).

    `map` submits calls as workers free up and yields, in the order given, (item, parts, outcome):
    outcome is fn's result, or the exception the call raised (fn's own, or SandboxError).

    >>> with Pool(len, size=2, timeout_s=5, memory_bytes=2**30) as pool:
    ...     [outcome for _, _, outcome in pool.map([b"a", b"bc"], lambda item: (item,))]
    [1, 2]
    """

    def __init__(self, fn: Callable[..., Any], *, size: int, timeout_s: float, memory_bytes: int) -> None:
        self.workers = [Worker(fn, timeout_s=timeout_s, memory_bytes=memory_bytes) for _ in range(max(1, size))]

    def __enter__(self) -> Pool:
        return self

    @property
    def memory_capped(self) -> bool:
        """Whether every child the pool started so far had its memory cap (none started: True)."""
        return not any(w.cap_missing for w in self.workers)

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for w in self.workers:
            w.close()

    def map(self, items: Iterable[Any], args: Callable[[Any], tuple]) -> Iterator[tuple[Any, list[Any], Any]]:
        from multiprocessing.connection import wait

        source = iter(items)
        free = list(self.workers)
        busy: dict[Worker, tuple[int, Any]] = {}
        done: dict[int, tuple[Any, list[Any], Any]] = {}
        submitted = emitted = 0
        exhausted = False
        while True:
            while free and not exhausted:
                try:
                    item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                w = free.pop()
                try:
                    w.submit(*args(item))
                except SandboxError as exc:  # the worker could not start
                    done[submitted] = (item, [], exc)
                    free.append(w)
                else:
                    busy[w] = (submitted, item)
                submitted += 1
            while emitted in done:
                yield done.pop(emitted)
                emitted += 1
            if not busy:
                if exhausted:
                    return
                continue
            timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            conns = {w.connection: w for w in busy if w._sent}
            ready = wait(list(conns), timeout) if conns else []
            finished = [conns[c] for c in ready]
            finished += [w for w in busy if not w._sent or w.deadline <= time.monotonic()]
            for w in dict.fromkeys(finished):
                index, item = busy.pop(w)
                outcome: Any
                try:
                    outcome = w.collect()
                except Exception as exc:
                    outcome = exc
                done[index] = (item, list(w.parts), outcome)
                free.append(w)


def run_contained(fn: Callable[..., T], *args: Any, timeout_s: float, memory_bytes: int) -> T:
    """Run fn(*args) once in a contained child process and return its (picklable) result.

    Raises SandboxError("timeout") after `timeout_s` seconds (the child is killed),
    SandboxError("memory") on MemoryError or an allocation failure under the RLIMIT_AS cap
    (`memory_bytes` on top of what the child inherited), and SandboxError("crash") when the child
    dies by a signal, exits without answering, or raises a BaseException that is not an
    Exception (such as pyo3's PanicException). An ordinary exception raised by `fn` is re-raised
    here unchanged. `fn` must be a module-level function (required by 'spawn').
    """
    with Worker(fn, timeout_s=timeout_s, memory_bytes=memory_bytes) as worker:
        result: T = worker.call(*args)
        return result


# --- Windows: a Job Object caps the child's memory ---------------------------------------------
# No RLIMIT on Windows. A Job Object with JOB_OBJECT_LIMIT_PROCESS_MEMORY limits the memory each
# process in it can commit: an allocation beyond it fails (calamine then aborts with "memory
# allocation of … failed", Python raises MemoryError), which the parent reports as "memory".
# KILL_ON_JOB_CLOSE ends the child with the job's last handle (if the merge itself dies), and
# DIE_ON_UNHANDLED_EXCEPTION keeps a crash from waiting on an error-report dialog on a desk PC.
# The structures are defined on every platform (so they can be tested on Linux); only WindowsJob
# calls the API, and only Worker on win32 creates one.

JOB_OBJECT_LIMIT_PROCESS_MEMORY = 0x00000100
JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION = 0x00000400
JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x00002000
JOB_OBJECT_EXTENDED_LIMIT_INFORMATION = 9  # JOBOBJECTINFOCLASS JobObjectExtendedLimitInformation


class IO_COUNTERS(ctypes.Structure):  # the names of winnt.h, to be checked against it
    _fields_ = [
        ("ReadOperationCount", ctypes.c_uint64),
        ("WriteOperationCount", ctypes.c_uint64),
        ("OtherOperationCount", ctypes.c_uint64),
        ("ReadTransferCount", ctypes.c_uint64),
        ("WriteTransferCount", ctypes.c_uint64),
        ("OtherTransferCount", ctypes.c_uint64),
    ]


class JOBOBJECT_BASIC_LIMIT_INFORMATION(ctypes.Structure):
    _fields_ = [
        ("PerProcessUserTimeLimit", ctypes.c_int64),  # LARGE_INTEGER
        ("PerJobUserTimeLimit", ctypes.c_int64),
        ("LimitFlags", ctypes.c_uint32),  # DWORD
        ("MinimumWorkingSetSize", ctypes.c_size_t),  # SIZE_T
        ("MaximumWorkingSetSize", ctypes.c_size_t),
        ("ActiveProcessLimit", ctypes.c_uint32),
        ("Affinity", ctypes.c_size_t),  # ULONG_PTR
        ("PriorityClass", ctypes.c_uint32),
        ("SchedulingClass", ctypes.c_uint32),
    ]


class JOBOBJECT_EXTENDED_LIMIT_INFORMATION(ctypes.Structure):
    _fields_ = [
        ("BasicLimitInformation", JOBOBJECT_BASIC_LIMIT_INFORMATION),
        ("IoInfo", IO_COUNTERS),
        ("ProcessMemoryLimit", ctypes.c_size_t),
        ("JobMemoryLimit", ctypes.c_size_t),
        ("PeakProcessMemoryUsed", ctypes.c_size_t),
        ("PeakJobMemoryUsed", ctypes.c_size_t),
    ]


class PROCESS_MEMORY_COUNTERS_EX(ctypes.Structure):
    _fields_ = [
        ("cb", ctypes.c_uint32),
        ("PageFaultCount", ctypes.c_uint32),
        ("PeakWorkingSetSize", ctypes.c_size_t),
        ("WorkingSetSize", ctypes.c_size_t),
        ("QuotaPeakPagedPoolUsage", ctypes.c_size_t),
        ("QuotaPagedPoolUsage", ctypes.c_size_t),
        ("QuotaPeakNonPagedPoolUsage", ctypes.c_size_t),
        ("QuotaNonPagedPoolUsage", ctypes.c_size_t),
        ("PagefileUsage", ctypes.c_size_t),
        ("PeakPagefileUsage", ctypes.c_size_t),
        ("PrivateUsage", ctypes.c_size_t),  # the commit charge the job limit counts
    ]


def job_limits(memory_limit: int) -> JOBOBJECT_EXTENDED_LIMIT_INFORMATION:
    """The limits a reader child runs under: at most `memory_limit` bytes committed, killed with the job."""
    info = JOBOBJECT_EXTENDED_LIMIT_INFORMATION()
    info.BasicLimitInformation.LimitFlags = (
        JOB_OBJECT_LIMIT_PROCESS_MEMORY
        | JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
        | JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION
    )
    info.ProcessMemoryLimit = memory_limit
    return info


def _kernel32() -> Any:
    k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    handle, dword, boolean = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int
    k32.CreateJobObjectW.argtypes, k32.CreateJobObjectW.restype = [ctypes.c_void_p, ctypes.c_wchar_p], handle
    k32.SetInformationJobObject.argtypes = [handle, ctypes.c_int, ctypes.c_void_p, dword]
    k32.SetInformationJobObject.restype = boolean
    k32.AssignProcessToJobObject.argtypes, k32.AssignProcessToJobObject.restype = [handle, handle], boolean
    k32.CloseHandle.argtypes, k32.CloseHandle.restype = [handle], boolean
    k32.K32GetProcessMemoryInfo.argtypes = [handle, ctypes.c_void_p, dword]
    k32.K32GetProcessMemoryInfo.restype = boolean
    return k32


class WindowsJob:
    """A Job Object holding one reader child (Windows only)."""

    def __init__(self, k32: Any, handle: int) -> None:
        self._k32, self.handle = k32, handle

    @classmethod
    def for_process(cls, process_handle: int, memory_limit: int) -> WindowsJob | None:
        """Put the process in a new job capped at `memory_limit`; None (timeout only) if Windows refuses."""
        k32 = _kernel32()
        handle = k32.CreateJobObjectW(None, None)
        if not handle:
            return None
        job = cls(k32, handle)
        if not job.set_limit(memory_limit) or not k32.AssignProcessToJobObject(handle, process_handle):
            job.close()
            return None
        return job

    def set_limit(self, memory_limit: int) -> bool:
        info = job_limits(memory_limit)
        return bool(
            self._k32.SetInformationJobObject(
                self.handle, JOB_OBJECT_EXTENDED_LIMIT_INFORMATION, ctypes.byref(info), ctypes.sizeof(info)
            )
        )

    def cap_relative(self, process_handle: int, memory_bytes: int) -> bool:
        """Re-cap at what the (ready) child has committed plus `memory_bytes`, as RLIMIT_AS is on POSIX."""
        counters = PROCESS_MEMORY_COUNTERS_EX()
        counters.cb = ctypes.sizeof(counters)
        committed = 0
        if self._k32.K32GetProcessMemoryInfo(process_handle, ctypes.byref(counters), counters.cb):
            committed = counters.PrivateUsage
        return self.set_limit(committed + memory_bytes) if committed else True

    def close(self) -> None:
        if self.handle:
            self._k32.CloseHandle(self.handle)
            self.handle = 0


def _windows_no_crash_dialog() -> None:
    """No "program has stopped working" dialog for a crashing reader child (it would wait for a click)."""
    if sys.platform != "win32":
        return
    sem_failcriticalerrors, sem_nogpfaulterrorbox = 0x0001, 0x0002
    with contextlib.suppress(Exception):
        k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        k32.SetErrorMode.argtypes, k32.SetErrorMode.restype = [ctypes.c_uint32], ctypes.c_uint32
        k32.SetErrorMode(sem_failcriticalerrors | sem_nogpfaulterrorbox)


def _windows_stderr_to_fd2() -> None:
    """On Windows native code writes to the process's standard error handle, not the C runtime's
    fd 2: point the handle at the file fd 2 now is, so a Rust message lands there too."""
    if sys.platform != "win32":
        return
    import msvcrt

    std_error_handle = -12 & 0xFFFFFFFF  # STD_ERROR_HANDLE, (DWORD)-12
    with contextlib.suppress(Exception):
        k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        k32.SetStdHandle.argtypes, k32.SetStdHandle.restype = [ctypes.c_uint32, ctypes.c_void_p], ctypes.c_int
        k32.SetStdHandle(std_error_handle, msvcrt.get_osfhandle(2))
