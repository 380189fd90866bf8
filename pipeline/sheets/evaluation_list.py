"""評価一覧, the master's first sheet: every evaluation in one filterable row. At 60,000 rows it is
most of the master's writing time, so its rows are rendered as XML a row at a time through
pipeline.xlsxfast (`write_list`; tests/test_xlsxfast.py compares the bytes with stock xlsxwriter)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import xlsxwriter

from pipeline import celltext, xlsxfast
from pipeline.catalog import Catalog, Project
from pipeline.report import Evaluation
from pipeline.sheets.kit import (
    DATETIME_WIDTH,
    Styles,
    bounded,
    cell_name,
    rating_colours,
    row_height,
    setup_print,
)
from pipeline.times import wall_clock

LIST_SHEET = "評価一覧"


def list_columns(catalog: Catalog) -> list[tuple[str, float]]:
    """評価一覧's headers with their widths (character units; a full-width character is 2)."""
    return [
        ("基本目標", 9),
        ("施策No.", 9),
        ("事業No.", 9),
        ("個別事業・取り組み", 28),
        ("内容", 50),
        ("担当課", 20),
        (f"事業実績・評価理由 ({catalog.year_label})", 60),
        ("事業評価", 9),
        ("今後の事業計画・展望", 60),
        ("提出ファイル", 30),
        ("受信日時", DATETIME_WIDTH),
    ]


def _list_cells(p: Project, r: Evaluation) -> tuple[tuple[str, Any, str], ...]:
    """One row of 評価一覧: (kind, value, style) per column, kind "number", "text", "label" or "time"."""
    return (
        ("number", p.goal, "int"),
        ("text", p.measure_code, "center"),
        ("label", p, "center"),
        ("text", p.name, "wrap"),
        ("text", p.content, "wrap"),
        ("text", r.department, "wrap"),
        ("text", r.result, "wrap"),
        ("text", r.rating, "rating"),
        ("text", r.outlook, "wrap"),
        ("text", bounded(r.file), "wrap"),
        ("time", r.received, "datetime"),
    )


LIST_PRINT_COLUMNS = 9  # 評価一覧 prints A:I


def write_list(wb: xlsxwriter.Workbook, st: Styles, catalog: Catalog,
               rows: Sequence[Evaluation], header: str, *, fast: bool = True) -> None:
    """評価一覧. Its rows go through xlsxfast.FastSheet (the same XML, rendered a row at a time);
    `fast=False` writes them cell by cell through xlsxwriter, the reference the tests compare with."""
    ws = wb.add_worksheet(LIST_SHEET, worksheet_class=xlsxfast.FastSheet if fast else None)
    columns = list_columns(catalog)
    widths = [w for _, w in columns]
    widths[5] = celltext.fit_width(widths[5], (a.department for a in catalog.assignments), cap=30)
    widths[9] = celltext.fit_width(widths[9], {r.file for r in rows}, cap=44)
    for c, ((title, _), width) in enumerate(zip(columns, widths, strict=True)):
        ws.set_column(c, c, width)
        st.put(ws, 0, c, title, "header")
    projects = catalog.projects
    cells = _FastCells(ws, st) if isinstance(ws, xlsxfast.FastSheet) else None
    last_col = len(columns) - 1
    for i, r in enumerate(rows, start=1):
        p = projects[r.project]
        height = row_height(((p.name, widths[3]), (p.content, widths[4]), (r.result, widths[6]),
                             (r.outlook, widths[8])))
        if cells is not None:
            cells.row(i, last_col, height, _list_cells(p, r))
            continue
        for c, (kind, value, style) in enumerate(_list_cells(p, r)):
            if kind == "number":
                ws.write_number(i, c, value, st.fmt[style])
            elif kind == "label":
                st.put_project_label(ws, i, c, value, style)
            elif kind == "time":
                st.put_time(ws, i, c, value, style)
            else:
                st.put(ws, i, c, value, style)
        ws.set_row(i, height)
    last = max(len(rows), 1)
    ws.autofilter(0, 0, last, len(columns) - 1)
    ws.freeze_panes(1, 4)  # header row, and 基本目標…個別事業 stay visible while scrolling right
    rating_colours(st, ws, 1, 7, last, 7)
    # Printed: the evaluation itself, 基本目標 to 今後の事業計画・展望 (A:I). 提出ファイル and 受信日時
    # stay on screen (and on 提出状況): eleven columns on one page wide would print at ~5 pt.
    ws.print_area(0, 0, last, LIST_PRINT_COLUMNS - 1)
    setup_print(ws, header, repeat=0)


# A text whose first character is none of these needs no quote prefix (celltext.needs_quote).
_QUOTE_FIRST = celltext.FORMULA_TRIGGERS | frozenset(celltext.LEADING_BLANKS)


class _FastCells:
    """Renders a row's cells as XML, exactly as Styles.put, put_time, put_project_label and
    write_number would have them written (tests/test_xlsxfast.py compares the two)."""

    def __init__(self, ws: xlsxfast.FastSheet, st: Styles) -> None:
        self.ws, self.st = ws, st
        self._xf: dict[tuple[str, bool], int] = {}
        self._letters: list[str] = []
        self._times: dict[str, float | None] = {}

    def _index(self, style: str, quoted: bool = False) -> int:
        x = self._xf.get((style, quoted))
        if x is None:  # first use, in cell order: the order xlsxwriter assigns xf indexes in
            x = self._xf[(style, quoted)] = self.ws.xf(self.st.quoted(style) if quoted else self.st.fmt[style])
        return x

    def _text(self, ref: str, row: int, col: int, text: str, style: str) -> str:
        if not text:
            return f'<c r="{ref}" s="{self._index(style)}"/>'
        if not celltext.fits_in_cell(text):
            celltext.check_fits(text, f"シート「{self.ws.name}」のセル {cell_name(row, col)}")
        x = self._xf.get((style, False)) if text[0] not in _QUOTE_FIRST else None
        if x is None:
            x = self._index(style, celltext.needs_quote(text))
        return f'<c r="{ref}" s="{x}" t="s"><v>{self.ws.shared(text)}</v></c>'

    def _number(self, ref: str, number: float, style: str) -> str:
        return f'<c r="{ref}" s="{self._index(style)}"><v>{number:.16G}</v></c>'

    def row(self, row: int, last_col: int, height: float, values: Sequence[tuple[str, Any, str]]) -> None:
        letters = self._letters
        while len(letters) <= last_col:
            letters.append(celltext.column_letters(len(letters) + 1))
        n = row + 1
        parts = [self.ws.row_open(row, 0, last_col, height)]
        append = parts.append
        for col, (kind, value, style) in enumerate(values):
            ref = f"{letters[col]}{n}"
            if kind == "text":
                append(self._text(ref, row, col, value, style))
            elif kind == "number":
                append(self._number(ref, value, style))
            elif kind == "label":
                if value.label.isdigit():
                    append(self._number(ref, int(value.label), style))
                else:
                    append(self._text(ref, row, col, value.label, style))
            else:  # "time": the received times of a file's rows are one
                if value not in self._times:
                    when = wall_clock(value)
                    self._times[value] = self.ws.datetime_number(when) if when is not None else None
                number = self._times[value]
                if number is None:
                    append(self._text(ref, row, col, value, "text"))
                else:
                    append(self._number(ref, number, style))
        append("</row>")
        self.ws.add_row("".join(parts))

