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


def _child(conn: Any, stderr_fd: int | None, memory_bytes: int, fn: Callable[..., Any], args: tuple) -> None:
    """Child side: limit, run, send ("ok", result) | ("raise", exception) | ("memory"/"crash", detail)."""
    if stderr_fd is not None:
        os.dup2(stderr_fd, 2)  # native libraries write their last words to fd 2: keep them
        import faulthandler

        if faulthandler.is_enabled():  # (pytest enables it on its own copy of the parent's stderr)
            faulthandler.enable(file=sys.stderr)
    _limit_memory(memory_bytes)
    try:
        result = fn(*args)
        msg: tuple[str, Any] = ("ok", result)
    except MemoryError as exc:
        msg = ("memory", f"MemoryError {exc}".strip())
    except Exception as exc:
        msg = ("raise", exc)
    except BaseException as exc:
        msg = ("crash", f"{type(exc).__name__}: {exc}"[:500])
    try:
        payload = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    except MemoryError:
        payload = pickle.dumps(("memory", "MemoryError while returning the result"))
    except Exception as exc:
        if msg[0] == "raise":
            text = "".join(traceback.format_exception_only(type(msg[1]), msg[1])).strip()
            payload = pickle.dumps(("crash", f"unpicklable exception {text}"[:500]))
        else:
            payload = pickle.dumps(("crash", f"result cannot be returned: {type(exc).__name__}: {exc}"[:500]))
    conn.send_bytes(payload)
    conn.close()


def _stderr_tail(fh: Any) -> bytes:
    if fh is None:
        return b""
    try:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 65536))  # a Rust backtrace can push the cause far up
        return fh.read()
    except OSError:
        return b""


def run_contained(fn: Callable[..., T], *args: Any, timeout_s: float, memory_bytes: int) -> T:
    """Run fn(*args) in a child process and return its (picklable) result.

    Raises SandboxError("timeout") after `timeout_s` seconds (the child is killed),
    SandboxError("memory") on MemoryError or an allocation failure under the RLIMIT_AS cap
    (`memory_bytes` on top of what the child inherited), and SandboxError("crash") when the child
    dies by a signal, exits without answering, or raises a BaseException that is not an
    Exception (such as pyo3's PanicException). An ordinary exception raised by `fn` is re-raised
    here unchanged. `fn` must be a module-level function (required by 'spawn').
    """
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    ctx = multiprocessing.get_context(method)
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    # Closed in the finally below; a with-block would not cover the spawn case (no file).
    errfile = tempfile.TemporaryFile() if method == "fork" else None  # noqa: SIM115
    proc = ctx.Process(
        target=_child,
        args=(child_conn, errfile.fileno() if errfile else None, memory_bytes, fn, args),
        daemon=True,
    )
    try:
        proc.start()
        child_conn.close()  # so that recv sees EOF when the child dies
        try:
            ready = parent_conn.poll(timeout_s)
        except (EOFError, OSError):
            ready = True
        if not ready:
            proc.kill()
            proc.join()
            raise SandboxError("timeout", f"{timeout_s:g} 秒以内に終わらなかった")
        try:
            payload = parent_conn.recv_bytes()
        except (EOFError, OSError):
            payload = None
        proc.join(timeout=max(1.0, timeout_s))
        if proc.is_alive():  # answered but does not exit: not our problem any more
            proc.kill()
            proc.join()
        if payload is None:
            tail = _stderr_tail(errfile)
            code = proc.exitcode
            if _RUST_OOM in tail:
                line = tail[tail.index(_RUST_OOM) :].split(b"\n", 1)[0]
                raise SandboxError("memory", line.decode("utf-8", "replace")[:300])
            if code is not None and code < 0:
                import signal

                try:
                    signame = signal.Signals(-code).name
                except ValueError:
                    signame = str(-code)
                # SIGKILL with no timeout from us is almost always the kernel's OOM killer.
                kind = "memory" if signame == "SIGKILL" else "crash"
                raise SandboxError(
                    kind, f"{signame} {tail.decode('utf-8', 'replace').strip()[-300:]}".strip()
                )
            raise SandboxError(
                "crash", f"exit code {code} {tail.decode('utf-8', 'replace').strip()[-300:]}".strip()
            )
        status, value = pickle.loads(payload)
        if status == "ok":
            return value
        if status == "raise":
            raise value
        raise SandboxError(status, str(value))
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
        parent_conn.close()
        if errfile is not None:
            errfile.close()
