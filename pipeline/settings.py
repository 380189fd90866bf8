"""Settings for a run: paths, fiscal year, deadline and limits, from one TOML file plus options.

The file is `pipeline.toml` in the current folder (or the one named by --settings); every key is
optional and documented in the shipped pipeline.toml. Command-line options override the file.
Imports only the standard library and `errors`, so `--help` stays fast.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError

DEFAULT_FILE = "pipeline.toml"


@dataclass(frozen=True)
class LimitSettings:
    """Safety limits for untrusted inputs (see README, 'Hostile inputs')."""

    max_file_mib: int = 50
    max_members: int = 1000
    max_entry_mib: int = 200
    max_total_mib: int = 500
    max_cells: int = 2_000_000
    max_rows: int = 100_000
    max_cols: int = 200
    parse_timeout_s: float = 10.0
    parse_memory_mib: int = 1024


@dataclass(frozen=True)
class Settings:
    inbox: Path = Path("inbox")
    outbox: Path = Path("outbox")
    year: str = "R6"
    deadline: date | None = None
    contact: str = "福祉保健部地域福祉課"
    schemas: Path | None = None  # None: the schemas/ folder shipped with the package
    keep_history: int = 60  # run reports kept in outbox/history
    limits: LimitSettings = field(default_factory=LimitSettings)
    exclude: tuple[str, ...] = ()  # [paths] exclude: folder globs the inbox walk skips
    max_drop_percent: float = 20.0  # [guards]: a larger fall in evaluations keeps the old outputs
    goal_sheets: str = "auto"  # [master] goal_sheets: "auto", "always" or "never"
    soffice: str = ""  # [publish] soffice: LibreOffice's program, "" = find it on PATH

    def with_options(self, **options: Any) -> Settings:
        """Override with the command-line options that were given (None means 'not given')."""
        given = {k: v for k, v in options.items() if v is not None}
        if isinstance(given.get("deadline"), str):
            given["deadline"] = _date(given["deadline"], "--deadline")
        for key in ("inbox", "outbox", "schemas"):
            if key in given:
                given[key] = Path(given[key])
        if "year" in given:
            given["year"] = str(given["year"]).upper()
        return replace(self, **given)


def _date(value: object, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise PipelineError(f"{where} の日付「{value}」を読めません。2025-05-30 の形で書いてください。") from None


def load_settings(path: Path | None = None) -> Settings:
    """Read the settings file; a missing default file means all defaults."""
    target = path or Path(DEFAULT_FILE)
    if not target.exists():
        if path is not None:
            raise PipelineError(f"設定ファイル {target} が見つかりません。")
        return Settings()
    try:
        data = tomllib.loads(target.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PipelineError(f"設定ファイル {target} を読めません: {exc}") from None
    base = target.parent
    paths = data.get("paths", {})
    plan = data.get("plan", {})
    limits_data = data.get("limits", {})
    known = {f.name for f in fields(LimitSettings)}
    unknown = set(limits_data) - known
    if unknown:
        raise PipelineError(f"設定ファイル {target} の [limits] に不明な項目があります: {', '.join(sorted(unknown))}")
    return Settings(
        inbox=base / paths.get("inbox", "inbox"),
        outbox=base / paths.get("outbox", "outbox"),
        schemas=(base / paths["schemas"]) if "schemas" in paths else None,
        year=str(plan.get("year", "R6")).upper(),
        deadline=_date(plan["deadline"], "[plan] deadline") if plan.get("deadline") else None,
        contact=str(plan.get("contact", Settings.contact)),
        keep_history=int(data.get("history", {}).get("keep", 60)),
        limits=LimitSettings(**limits_data),
        exclude=tuple(paths.get("exclude", ())),
        max_drop_percent=float(data.get("guards", {}).get("max_drop_percent", 20.0)),
        goal_sheets=str(data.get("master", {}).get("goal_sheets", "auto")),
        soffice=str(data.get("publish", {}).get("soffice", "")),
    )
