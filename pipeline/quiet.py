"""Our stdout is ours: what a library prints or warns while we use it is captured, never mixed
into a command's output (`validate --json` must stay one JSON document) or the nightly log.

One job: `library_output()` is a context manager that, for its block, sends whatever Python code
prints to sys.stdout or sys.stderr (openpyxl prints 「0 is out of range」 on some workbooks' styles)
and every warning (pandas, pandera, openpyxl) into a list of lines, which the caller keeps as
information on the file it was working on (`library-message`) or drops.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator

MAX_LINES = 20  # a library that prints in a loop: the first lines say what it is
MAX_LINE_CHARS = 300


@contextlib.contextmanager
def library_output() -> Iterator[list[str]]:
    """Capture prints and warnings of the block; the yielded list holds them (as lines) after it."""
    said: list[str] = []
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        warnings.simplefilter("always")
        try:
            yield said
        finally:
            lines = [line.strip() for line in (out.getvalue() + err.getvalue()).splitlines() if line.strip()]
            lines += [f"{w.category.__name__}: {w.message}" for w in caught]
            said.extend(_bounded(lines))


def _bounded(lines: list[str]) -> list[str]:
    unique = list(dict.fromkeys(line[:MAX_LINE_CHARS] for line in lines))
    if len(unique) > MAX_LINES:
        unique = [*unique[:MAX_LINES], f"… ほか {len(unique) - MAX_LINES} 行"]
    return unique
