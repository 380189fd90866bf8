"""One command from start to exit, as the log and last-run.json record it.

The CLI makes one CommandSession per command: it writes the start to the log, opens the log in
the outbox once the settings are known, collects warnings into it (never the console), and at the
end writes the last line (`exit=N`) and, for `merge`, outbox/last-run.json. Imports only the
standard library and the package's light modules (no pandas), so `--help` stays fast.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline import lastrun
from pipeline.runlog import RunLog, log_path
from pipeline.settings import DEFAULT_FILE, load_settings
from pipeline.times import now_iso

EXIT_CRASH = 4
EXIT_INTERRUPTED = 130


class CommandSession:
    def __init__(self, argv: list[str]) -> None:
        self.argv = list(argv)
        self.started = now_iso()
        self.log = RunLog()
        self.settings_file: Path | None = None
        self.outbox: Path | None = None
        self.is_merge = False
        self.report: str | None = None
        self.message = ""
        self.log.write(f"開始: pipeline {' '.join(argv)}(pid {os.getpid()}、Python {platform.python_version()}、"
                       f"{platform.system()}、作業フォルダー {Path.cwd()})")

    @property
    def log_file(self) -> Path | None:
        return self.log.path

    def open(self, outbox: Path, keep_logs: int) -> None:
        """The log goes to `outbox`/logs (first call wins: the outbox the command writes to)."""
        if self.outbox is None:
            self.outbox = outbox
            self.log.open(outbox, keep_logs)

    def open_fallback(self) -> None:
        """Where the log goes when the command did not get as far as its settings (a usage error,
        a broken settings file): the settings file's outbox if it can be read, else the outbox
        folder beside it (or in the current folder)."""
        if self.outbox is not None:
            return
        try:
            s = load_settings(self.settings_file)
            self.open(s.outbox, s.keep_logs)
        except Exception:
            base = self.settings_file.parent if self.settings_file is not None else Path(DEFAULT_FILE).parent
            self.open(base / "outbox", 24)

    def write(self, text: str) -> None:
        self.log.write(text)

    @contextlib.contextmanager
    def warnings_to_log(self) -> Iterator[None]:
        """Python warnings (a library's DeprecationWarning, openpyxl's notes) go to the log only."""
        shown = warnings.showwarning

        def to_log(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
            self.log.write("警告(Python): " + warnings.formatwarning(message, category, filename, lineno, line).strip())

        warnings.showwarning = to_log
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default")
                warnings.showwarning = to_log
                yield
        finally:
            warnings.showwarning = shown

    def finish(self, code: int) -> None:
        """The last line of the command (`… exit=N`) and, for a merge, last-run.json."""
        if not self.log.is_open:
            self.open_fallback()
        if self.is_merge and self.outbox is not None:
            finished = now_iso()
            message = self.message or _MESSAGES.get(code, f"終了コード {code} で終わりました。")
            try:
                lastrun.record_last_run(self.outbox, command=" ".join(["merge", *self._merge_args()]),
                                        started=self.started, finished=finished, exit_code=code,
                                        message=message, report=self.report if code in lastrun.SUCCEEDED else None)
                self.log.write(f"記録: {self.outbox / lastrun.LAST_RUN_NAME}")
            except OSError as exc:
                self.log.write(f"記録できません: {self.outbox / lastrun.LAST_RUN_NAME}({type(exc).__name__}: {exc})")
        self.log.write(f"終了: 終了コード {code} exit={code}")

    def _merge_args(self) -> list[str]:
        args = self.argv
        return args[args.index("merge") + 1:] if "merge" in args else args

    def where(self) -> str:
        """Where the details are, for the one console line of a crash."""
        path = self.log.path or (log_path(self.outbox) if self.outbox else None)
        return str(path) if path is not None and not self.log.failed else "(ログを書けませんでした。標準エラー出力を確認してください)"


_MESSAGES = {
    0: "集約しました(エラーなし)。",
    1: "集約しました。一部のファイルにエラーがあります(集約ブックの 検証結果 シート)。",
    2: "使い方の誤りのため実行しませんでした。",
    3: "実行できませんでした。",
    EXIT_CRASH: "内部エラーで止まりました。",
    EXIT_INTERRUPTED: "中断されました(Ctrl+C)。",
}


def crash_line(exc: BaseException, where: str) -> str:
    """The one console line of an unexpected exception."""
    return (f"内部エラーで止まりました({type(exc).__name__})。"
            f"詳細はログ {where} にあります。このログを添えてシステム担当に連絡してください。")


def stderr_encoding() -> str | None:
    return getattr(sys.stderr, "encoding", None)
