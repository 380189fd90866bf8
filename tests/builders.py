"""Builders of returns as offices produce them, shared by the tests: the published R6 table laid out
as printed (one sheet per 基本目標, page-break header repeats, continuation rows) and plain workbooks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from pipeline.catalog import load_catalog
from pipeline.demo import DEMO_RESULTS, load_results

CATALOG = load_catalog("R6")
RESULTS = {(CATALOG.project_for(r["project"]).key, r["department"]): r for r in load_results(DEMO_RESULTS)}

# The header of the published table, exactly as printed (seed lines 37 ff.).
PUBLISHED_HEADER = (
    "施策 No.",
    "事業 No.",
    "【個別事業・取り組み】",
    "内容",
    "担当課",
    "事業実績・評価理由 (令和6年度)",
    "事業評価",
    "今後の事業計画・展望",
)
# 施策No. as printed in the published table, per 基本目標: spaces, slashes, a full-width ／.
# (31～34's (3)① is not printed in the damaged export; printed here like goal 3's.)
PRINTED_MEASURES = {
    1: {
        "(1)①": "(1) ①", "(1)②": "(1) ②", "(2)①": "(2) ①", "(2)②": "(2) ②", "(3)①": "(3) /①",
        "(3)②": "(3) /②", "(3)③": "(3) / ③", "(4)①": "(4) / ①", "(4)②": "(4) ／ ②",
    },
    2: {"(1)①": "(1) ①", "(1)②": "(1) /②", "(1)③": "(1) /③", "(2)①": "(2) /①", "(2)②": "(2) /②", "(3)①": "(3) ①"},
    3: {"(1)①": "(1) / ①", "(2)①": "(2) / ①", "(2)②": "(2) /②", "(3)①": "(3) ①", "(3)②": "(3) ②"},
}
PAGE_ROWS = 6  # data rows per printed page: the header is repeated after each page break
TITLE = "地域福祉計画の令和6年度実績報告及び評価"
NOTE = "※「今後の事業計画・展望」に次年度に向けての課題、検討内容について記載する。"


# --- Building workbooks -------------------------------------------------------------------------


def write_book(path: Path, sheets: dict[str, Sequence[Sequence[Any]]], merges: Iterable[str] = ()) -> Path:
    """An .xlsx (or .xlsm) with one sheet per entry; None leaves a cell empty. Merges are "Sheet!A1:A3"."""
    wb = Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                if value is not None:
                    ws.cell(r, c).value = value
    for ref in merges:
        sheet, _, cells = ref.partition("!")
        wb[sheet].merge_cells(cells)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def published_rows(goal: int, misspell: dict[tuple[str, str], str] | None = None) -> list[list[Any]]:
    """One 基本目標's rows of the published table: 施策No. printed where a 施策 begins, 事業No., name
    and 内容 where a 事業 begins, blank on the continuation rows below (one row per 担当課)."""
    rows: list[list[Any]] = []
    last_measure = last_project = None
    for a in sorted(CATALOG.assignments, key=lambda a: a.order):
        p = CATALOG.projects[a.project]
        if p.goal != goal:
            continue
        r = RESULTS[a.key]
        new_project, new_measure = p.key != last_project, p.measure_code != last_measure
        last_project, last_measure = p.key, p.measure_code
        rows.append(
            [
                PRINTED_MEASURES[goal][p.measure_code] if new_measure else None,
                (int(p.key) if p.key.isdigit() else p.label) if new_project else None,
                p.name if new_project else None,
                p.content if new_project else None,
                (misspell or {}).get(a.key, a.department),
                r["result"],
                r["rating"],
                r["outlook"],
            ]
        )
    return rows


def structure_rows(goal: int) -> list[list[Any]]:
    """The 基本目標 / 施策の方向性 / 施策 block printed above each goal's table."""
    g = CATALOG.goals[goal - 1]
    out: list[list[Any]] = [["基本目標", f"{g.number} {g.name}"]]
    for d in (d for d in CATALOG.directions if d.goal == goal):
        out.append(["施策の方向性", f"({d.number}) {d.name}"])
        measures = [m for m in CATALOG.measures if (m.goal, m.direction) == (goal, d.number)]
        out.append(["施策", " ".join(f"{m.code[-1]} {m.name}" for m in measures)])
    return out


def paginate(rows: list[list[Any]]) -> tuple[list[list[Any]], list[int]]:
    """The header, then the rows with the header repeated every PAGE_ROWS rows; also the 0-based
    offsets (within the returned list) of the data rows."""
    out: list[list[Any]] = [list(PUBLISHED_HEADER)]
    data: list[int] = []
    for i, row in enumerate(rows):
        if i and i % PAGE_ROWS == 0:
            out.append(list(PUBLISHED_HEADER))
        data.append(len(out))
        out.append(row)
    return out, data


def published_sheets(
    misspell: dict[tuple[str, str], str] | None = None, *, year_label: str = "令和6年度"
) -> dict[str, list[list[Any]]]:
    """The published R6 table: one sheet per 基本目標, a title, the structure block, the table with
    page-break header repeats, a blank row and the trailing ※ note. With `year_label` (令和5年度)
    the title and the 事業実績・評価理由 label name that year instead, as that year's table did."""
    sheets = {}
    for g in CATALOG.goals:
        table, _ = paginate(published_rows(g.number, misspell))
        sheets[f"基本目標{g.number}"] = [[TITLE], *structure_rows(g.number), [], *table, [], [NOTE]]
    if year_label != "令和6年度":
        for rows in sheets.values():
            for row in rows:
                for i, value in enumerate(row):
                    if isinstance(value, str) and value in (TITLE, PUBLISHED_HEADER[5]):
                        row[i] = value.replace("令和6年度", year_label)
    return sheets


def published_layout() -> dict[tuple[str, str], tuple[str, int, list[Any]]]:
    """(project, 担当課) → (sheet, Excel row, row values) of the published workbook, for assertions."""
    where = {}
    for g in CATALOG.goals:
        rows = published_rows(g.number)
        head = 1 + len(structure_rows(g.number)) + 1  # rows above the table
        _, data = paginate(rows)
        keys = [a.key for a in sorted(CATALOG.assignments, key=lambda a: a.order) if CATALOG.goal_of(a.project) == g.number]
        for key, offset, row in zip(keys, data, rows, strict=True):
            where[key] = (f"基本目標{g.number}", head + offset + 1, row)
    return where




def office_sheet(
    offices: Iterable[str],
    *,
    year_label: str = "令和6年度",
    answers: dict[tuple[str, str], dict[str, str]] | None = None,
    misspell: dict[tuple[str, str], str] | None = None,
    title: str | None = None,
) -> dict[str, list[list[Any]]]:
    """A department's own sheet in the published layout: a title row naming the year, the published
    header (its 事業実績・評価理由 label names the year too) and one full row per assignment of the
    offices, answered as published unless `answers` says otherwise."""
    header = list(PUBLISHED_HEADER)
    header[5] = f"事業実績・評価理由 ({year_label})"
    rows: list[list[Any]] = [[title or f"地域福祉計画の{year_label}実績報告及び評価"], [], header]
    wanted = set(offices)
    for a in sorted(CATALOG.assignments, key=lambda a: a.order):
        if a.office not in wanted:
            continue
        p = CATALOG.projects[a.project]
        r = {**RESULTS[a.key], **(answers or {}).get(a.key, {})}
        rows.append([p.measure_code, int(p.key) if p.key.isdigit() else p.label, p.name, p.content,
                     (misspell or {}).get(a.key, a.department), r["result"], r["rating"], r["outlook"]])
    return {"評価表": rows}
