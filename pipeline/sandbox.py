"""Run one parse in a contained child process, so a hostile workbook cannot take the nightly run down.

calamine aborts the process (SIGABRT, uncatchable) on some well-formed files and openpyxl can
grind for minutes into a MemoryError (shared/research/anchors-reliability.md §0, §2.1), so no
reader runs in the merge process itself. `run_contained` runs `fn(*args)` in a child with a
wall-clock timeout and, where the OS has it, an address-space limit (RLIMIT_AS), and turns every
way the child can die into `SandboxError(kind, detail)`; callers map that to `reader-crashed`.

On Linux the child is forked (fast, and `fn` may be any module-level function). Elsewhere
(Windows) it is spawned and only the timeout applies: there is no RLIMIT there.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import sys
import tempfile
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

KINDS = ("crash", "timeout", "memory")

# Rust's allocator failure message (calamine, issue tafia/calamine#693): the child aborts with
# SIGABRT, but the cause is memory, and saying so tells the operator which limit was hit.
_RUST_OOM = b"memory allocation of"


class SandboxError(Exception):
    """The contained parse did not return: kind is "crash", "timeout" or "memory"."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def _limit_memory(memory_bytes: int) -> None:
    """Cap the child's address space at what it inherited plus `memory_bytes`, and disable core dumps.

    RLIMIT_AS counts the whole virtual size, and a forked child starts with the parent's (pandas
    and numpy alone map hundreds of MB), so an absolute cap would starve or over-allow depending on
    what the parent had imported.
    """
    try:
        import resource
    except ImportError:  # Windows: timeout only
        return
    try:
        with open("/proc/self/statm") as fh:
            current = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        current = 0
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # an abort must not leave a core file behind
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = current + memory_bytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _answer(fn: Callable[..., Any], args: tuple) -> bytes:
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


def _serve(conn: Any, stderr_fd: int | None, memory_bytes: int, fn: Callable[..., Any]) -> None:
    """Child side: limit memory once, then answer calls until the parent closes the pipe."""
    if stderr_fd is not None:
        os.dup2(stderr_fd, 2)  # native libraries write their last words to fd 2: keep them
        import faulthandler

        if faulthandler.is_enabled():  # (pytest enables it on its own copy of the parent's stderr)
            # fd 2 itself: sys.stderr may be a stand-in without a file descriptor (click's runner)
            faulthandler.enable(file=2)
    _limit_memory(memory_bytes)
    while True:
        try:
            args = conn.recv()
        except (EOFError, OSError):
            return
        if args is None:  # the parent is done (a forked child also holds the parent's end: no EOF)
            return
        conn.send_bytes(_answer(fn, args))


def _stderr_since(fh: Any, offset: int) -> bytes:
    if fh is None:
        return b""
    try:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(offset, size - 65536))  # a Rust backtrace can push the cause far up
        return fh.read()
    except OSError:
        return b""


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
        # fork on Linux: fast, and the memory cap is relative to what the child inherits
        self._method = "fork" if sys.platform.startswith("linux") else "spawn"
        self._ctx = multiprocessing.get_context(self._method)
        self._proc: Any = None
        self._conn: Any = None
        self._errfile: Any = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        # Closed in close(); a with-block would not outlive this method.
        self._errfile = tempfile.TemporaryFile() if self._method == "fork" else None  # noqa: SIM115
        fd = self._errfile.fileno() if self._errfile else None
        self._proc = self._ctx.Process(target=_serve, args=(child, fd, self.memory_bytes, self.fn), daemon=True)
        self._proc.start()
        child.close()  # so that recv sees EOF when the child dies
        self._conn = parent

    def close(self) -> None:
        """Stop the child (politely, then by force) and release its pipe and stderr file."""
        if self._conn is not None:
            with contextlib.suppress(OSError, ValueError):
                self._conn.send(None)
            self._conn.close()
        if self._proc is not None:
            self._proc.join(timeout=2)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
        if self._errfile is not None:
            self._errfile.close()
        self._proc = self._conn = self._errfile = None

    def _kill(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self.close()

    def call(self, *args: Any) -> Any:
        if self._proc is None:
            self._start()
        offset = self._errfile.seek(0, os.SEEK_END) if self._errfile else 0
        try:
            self._conn.send(args)
            ready = self._conn.poll(self.timeout_s)
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
            error = self._death(self._proc.exitcode, _stderr_since(self._errfile, offset))
            self._kill()
            raise error
        status, value = pickle.loads(payload)
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
