"""Last year's evaluations, for this year's templates, the master's 前年度比較 and the text checks.

Where they come from, first found wins:

1. a file named by the caller (`--previous FILE`): a master of ours, or a table stored by
   `import-published` (JSON);
2. the table stored by `pipeline import-published FILE --year R5` (outbox/history/evaluations-R5.json);
3. our own master of that year, still in the outbox (地域福祉計画_評価集約_R5.xlsx): its 評価一覧.

Each evaluation is keyed by (事業 key, 担当課) as in this year's catalog; a project renumbered between
the years simply has no previous value. Nothing here is ever read as a return: last year's data
never goes near the inbox.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.catalog import Catalog
from pipeline.normalize import as_text, parse_project, parse_rating

HISTORY_DIR = "history"
LIST_SHEET = "評価一覧"


@dataclass(frozen=True)
class PastEvaluation:
    project: str  # catalog project key: "9", "31-34"
    department: str  # 担当課 as published
    rating: str  # A–D
    result: str = ""  # 事業実績・評価理由
    outlook: str = ""  # 今後の事業計画・展望


@dataclass(frozen=True)
class PastYear:
    year: str  # "R5"
    source: str  # where the evaluations were read from, for messages and sheet notes
    evaluations: dict[tuple[str, str], PastEvaluation] = field(default_factory=dict)
    # Last year's plan, as (事業 key, 担当課) assignments, when its catalog is at hand (the runner
    # adds it): an assignment not in it is new this year (新規); one in it without an evaluation
    # was not returned. None: not known.
    plan: frozenset[tuple[str, str]] | None = None
    # The table staff gave import-published (its file name), when the evaluations were read from
    # the stored JSON: the sheets name it as last year's source. "" otherwise.
    imported_from: str = ""

    @property
    def label(self) -> str:
        n = int(self.year[1:])
        return "令和元年度" if n == 1 else f"令和{n}年度"

    def get(self, key: tuple[str, str]) -> PastEvaluation | None:
        return self.evaluations.get(key)


def previous_code(year: str) -> str | None:
    """'R7' → 'R6'; None for R1 (no 令和 year before it)."""
    n = int(year[1:])
    return f"R{n - 1}" if n > 1 else None


def stored_path(outbox: Path, year: str) -> Path:
    return outbox / HISTORY_DIR / f"evaluations-{year}.json"


def master_path(outbox: Path, catalog: Catalog, year: str) -> Path:
    return outbox / f"{catalog.plan}_評価集約_{year}.xlsx"


def previous_year(outbox: Path, catalog: Catalog, previous: Path | None = None) -> PastYear | None:
    """The year before the catalog's, from the first source that has it; None when none does."""
    year = previous_code(catalog.year)
    if previous is not None:
        return read_file(previous, year or "")
    if year is None:
        return None
    for path in (stored_path(outbox, year), master_path(outbox, catalog, year)):
        if path.is_file():
            past = read_file(path, year)
            if past is not None and past.evaluations:
                return past
    return None


def read_file(path: Path, year: str) -> PastYear | None:
    """A stored JSON table, or a master workbook of ours (its 評価一覧)."""
    if path.suffix.lower() == ".json":
        return read_stored(path)
    return read_master(path, year)


def read_stored(path: Path) -> PastYear | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        evaluations = {
            (e["project"], e["department"]): PastEvaluation(
                e["project"], e["department"], e["rating"], e.get("result", ""), e.get("outlook", "")
            )
            for e in data["evaluations"]
        }
        return PastYear(str(data["fiscal_year"]), str(path), evaluations,
                        imported_from=str(data.get("source") or ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_stored(path: Path, past: PastYear) -> Path:
    """Store a year's evaluations as JSON (atomically), for previous_year to find."""
    from pipeline.atomic import write_bytes_atomically

    payload = {
        "fiscal_year": past.year,
        "source": past.imported_from or past.source,
        "evaluations": [
            {"project": e.project, "department": e.department, "rating": e.rating, "result": e.result,
             "outlook": e.outlook}
            for e in past.evaluations.values()
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_bytes_atomically(path, json.dumps(payload, ensure_ascii=False, indent=1).encode("utf-8"))


def read_master(path: Path, year: str) -> PastYear | None:
    """評価一覧 of a master we wrote: one row per evaluation, the header in row 1."""
    import python_calamine as pc

    try:
        rows: list[list[Any]] = pc.CalamineWorkbook.from_path(str(path)).get_sheet_by_name(LIST_SHEET).to_python()
    except Exception:  # not ours, damaged, or no such sheet: no previous year from it
        return None
    if not rows:
        return None
    header = [as_text(h) for h in rows[0]]

    def column(prefix: str) -> int | None:
        return next((i for i, h in enumerate(header) if h.startswith(prefix)), None)

    cols = {name: column(name) for name in ("事業No.", "担当課", "事業評価", "事業実績・評価理由", "今後の事業計画・展望")}
    if cols["事業No."] is None or cols["担当課"] is None or cols["事業評価"] is None:
        return None
    out: dict[tuple[str, str], PastEvaluation] = {}
    for row in rows[1:]:

        def cell(name: str, row: list[Any] = row) -> str:
            i = cols[name]
            return as_text(row[i]).strip() if i is not None and i < len(row) else ""

        project, rating = parse_project(cell("事業No.")), parse_rating(cell("事業評価"))
        if project and rating and cell("担当課"):
            e = PastEvaluation(project, cell("担当課"), rating, cell("事業実績・評価理由"), cell("今後の事業計画・展望"))
            out[(project, e.department)] = e
    return PastYear(year, str(path), out)
