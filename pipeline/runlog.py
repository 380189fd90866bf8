"""The log staff read after a night: `outbox/logs/pipeline.log`.

Every command appends to it (UTF-8, whatever the console's code page): each line starts with the
local time in ISO 8601; a run writes its start (command line, settings, inbox and outbox), each
file's status, each notice, any warning or traceback, and a last line ending `exit=N`. At the
first run of a month the previous month's lines are renamed to `pipeline-YYYY-MM.log`; the newest
`[history] keep_logs` of those are kept.

Writing the log never stops a command: a log that cannot be written is given up silently (the
console and the run report still say what happened). Imports only the standard library.
"""

from __future__ import annotations

import contextlib
import os
import re
from datetime import datetime
from pathlib import Path

from pipeline.times import now_iso

LOGS_DIR = "logs"
LOG_NAME = "pipeline.log"
_ROTATED = re.compile(r"pipeline-(\d{4}-\d{2})(?:-\d+)?\.log")


def log_path(outbox: Path) -> Path:
    return outbox / LOGS_DIR / LOG_NAME


class RunLog:
    """One command's lines in the log. Lines written before `open` (a usage error found before
    the settings are read) are kept and written when it opens."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self._pending: list[str] = []
        self.failed = False

    @property
    def is_open(self) -> bool:
        return self.path is not None

    def open(self, outbox: Path, keep: int) -> None:
        if self.path is not None:
            return
        folder = outbox / LOGS_DIR
        try:
            folder.mkdir(parents=True, exist_ok=True)
            rotate(folder, keep)
        except OSError:
            self.failed = True
            return
        self.path = folder / LOG_NAME
        pending, self._pending = self._pending, []
        self._append(pending)

    def write(self, text: str) -> None:
        """Each line of `text` (a traceback is several) with the time in front."""
        stamp = now_iso()
        lines = [f"{stamp} {line.rstrip()}" for line in str(text).splitlines() or [""]]
        if self.path is None:
            self._pending.extend(lines)
        else:
            self._append(lines)

    def _append(self, lines: list[str]) -> None:
        if not lines or self.path is None:
            return
        try:
            # One write per call in append mode: lines of two commands running at once do not interleave.
            with open(self.path, "a", encoding="utf-8", newline="\n") as f:
                f.write("".join(line + "\n" for line in lines))
        except OSError:
            self.failed = True


def rotate(folder: Path, keep: int) -> None:
    """At the first write of a new month, pipeline.log becomes pipeline-<its month>.log; only the
    newest `keep` of those are kept. Two commands rotating at once, or a log held open by another
    program on Windows, leave the log as it is (it is rotated next time)."""
    current = folder / LOG_NAME
    month = _month_of(current)
    if month is not None and month != datetime.now().strftime("%Y-%m"):
        target = folder / f"pipeline-{month}.log"
        with contextlib.suppress(OSError):
            if target.exists():  # a second log of that month (a clock set back): keep both
                target = folder / f"pipeline-{month}-{os.getpid()}.log"
            os.replace(current, target)
    rotated = sorted(p for p in folder.iterdir() if _ROTATED.match(p.name))
    for old in rotated[: max(0, len(rotated) - keep)]:
        with contextlib.suppress(OSError):
            old.unlink()


def _month_of(log: Path) -> str | None:
    """The month of the log's first line (its own timestamp), else of its modification time."""
    try:
        with open(log, encoding="utf-8", errors="replace") as f:
            first = f.readline(64)
        if re.match(r"\d{4}-\d{2}-", first):
            return first[:7]
        return datetime.fromtimestamp(log.stat().st_mtime).strftime("%Y-%m")
    except OSError:
        return None
