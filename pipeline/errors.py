"""Exceptions for problems that stop a command (not data problems: those are Issues).

Imports nothing from the package. Each message says how to fix the problem, in Japanese.
"""

from __future__ import annotations


class PipelineError(Exception):
    """A command cannot go on; the message says why and what to do."""

    exit_code = 3


class CatalogError(PipelineError):
    """The plan catalog or department registry under schemas/ is wrong."""

    def __init__(self, path: object, entry: str, problem: str) -> None:
        self.path = str(path)
        self.entry = entry
        self.problem = problem
        super().__init__(f"計画カタログ {self.path} の {entry}: {problem}")


class InputError(PipelineError):
    """What we were asked to read cannot be used (missing inbox, unreadable folder)."""


class OutputError(PipelineError):
    """An output cannot be written (outbox not writable, disk full, file locked)."""


class LockedError(PipelineError):
    """Another merge holds the lock."""


class GuardError(PipelineError):
    """The night's valid evaluations would fall too far since the previous run: outputs are kept."""


class SettingsError(PipelineError):
    """The settings file (pipeline.toml) or a settings option is wrong.

    The message names the file and lists every problem, one line each; `problems` holds those lines.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])
