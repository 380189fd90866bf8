"""Write the master workbook staff open each morning, and the per-goal summary for the committee.

One job: turn the merge result, plus this run's file reports and issues, into two xlsxwriter
workbooks. The master has 評価一覧, one sheet per 基本目標 in the published layout, 集計,
提出状況 and 検証結果. The summary (`write_summary`) can go to the committee as is. Both
functions write to exactly the path they are given. The caller wraps them in
`pipeline.atomic.write_atomically`.

Decisions, and why:

* Department text is inert. The workbook is created with strings_to_formulas,
  strings_to_urls and strings_to_numbers off, and every text goes through `write_string`.
  So each text cell is a shared string (t="s") and no sheet holds an <f> element. We write
  no formulas at all: counts and shares are computed in Python, so they are deterministic
  and need no recalculation.
* Text is not altered. The published answers must round-trip to the committee exactly, so
  we do not add the OWASP "'" prefix to the value; in .xlsx it would show up as text.
  Instead, a text that Excel would read as a formula if retyped (`celltext.needs_quote`:
  = + - @ or their full-width forms, TAB, CR or LF, also after leading spaces) gets a
  `quote_prefix` style. It is how Excel itself stores a typed "'=…": the value is unchanged,
  the formula bar shows the apostrophe, and F2+Enter keeps it as text. Excel's own
  "save as CSV" drops the style, so a CSV export must do its own neutralising.
* Excel's 32,767-character cell limit is counted in UTF-16 units (`celltext.fits_in_cell`).
  A department's value longer than that raises ValueError before anything is written, instead
  of being silently truncated (the runner rejects that file alone). Our own texts built from
  file names, messages and lists go through `celltext.bounded_text` / `bounded_list` first, so
  they always fit: no number or length of inputs makes the writer refuse.
* Determinism. The document properties use a fixed `created` (1 April of the plan's fiscal
  year), never now(). xlsxwriter stamps every zip entry with 1980-01-01 whatever `created`
  is, and docProps/core.xml is the only part that holds a time. So the same inputs,
  including `generated`, give byte-identical files (tested).
* Speed. About 20 format objects are made once and reused. Rating and status colours are
  one conditional format per colour over the whole column, never per row. Look-ups are
  dicts built once, so a 60k-row plan stays linear. constant_memory is not used: each sheet
  is written in row order, but the goal sheets repeat 評価一覧's long texts, and the
  shared-string table stores those only once.
* Japanese layout. Every cell is in BIZ UDPゴシック, with no theme "scheme" (otherwise Excel
  would show the theme's font); the standard font, which sets the column-width unit, is its
  monospaced twin BIZ UDゴシック, so a full-width character is 2 units as the widths assume
  (pipeline.printing). Long columns wrap. Row heights are estimated from the text and set
  explicitly: not every reader grows wrapped rows by itself (LibreOffice, viewers, print
  preview), and Excel never grows merged cells.
* Print (docs/printing.md). Sheets print on A3 landscape (the summary on A4) with the sheet's
  name in the header and "&P / &N" page numbers. 評価一覧 and 検証結果, whose every row says
  what it is about, print one page wide with repeated headings. The goal sheets, 集計,
  提出状況 and the summary are laid out by pipeline.printing before they are written: a fixed
  scale, every row's height set, and manual page breaks between projects, tables and charts,
  so no chart or table is split and every page can be read on its own.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xlsxwriter
from xlsxwriter.utility import xl_rowcol_to_cell
from xlsxwriter.worksheet import Worksheet

from pipeline import celltext, printing, xlsxfast
from pipeline.catalog import Assignment, Catalog, Project
from pipeline.celltext import EXCEL_MAX_CHARS
from pipeline.compare import DOWN, UP, GoalComparison, YearComparison, compare_years
from pipeline.layout import OUTPUT_PROPERTY, output_mark
from pipeline.marks import NO_VALUE
from pipeline.normalize import RATINGS
from pipeline.report import (
    ERROR,
    STATUS_ACCEPTED,
    STATUS_ERRORS,
    STATUS_MISSING,
    STATUS_OVERDUE,
    STATUS_PARTIAL,
    UNATTRIBUTED,
    Acknowledged,
    Evaluation,
    FileVerdict,
    Issue,
    Outcome,
)

if TYPE_CHECKING:
    from pipeline.history import PastYear

MASTER_SHEETS = ("評価一覧", "基本目標1", "基本目標2", "基本目標3", "集計", "提出状況", "検証結果")
LIST_SHEET, SUMMARY_SHEET, STATUS_SHEET, ISSUES_SHEET = "評価一覧", "集計", "提出状況", "検証結果"
COMPARISON_SHEET = "前年度比較"  # master (after 集計) and summary (last), only when last year is known

FONT = printing.TEXT_FONT  # every cell and chart
UNIT_FONT = printing.UNIT_FONT  # the standard font: fixes the column-width unit (pipeline.printing)
FONT_SIZE = 11
# Why an assignment has no evaluation in the master, in the words the sheets print. 未提出 only
# when nothing was received from the office: an office that sent a return whose row (or whole
# file) was kept out by an error is waiting for a correction, not for a first answer.
MISSING_MARK = "(未提出)"
ERROR_MARK = "(エラーのため未反映)"
UNREFLECTED_MARK = "(未反映)"  # received, no error of the office's: e.g. its rows came in another office's file
MISSING = "未提出"  # the count columns: nothing received
UNREFLECTED = "未反映"  # the count columns: received, not in the master (ERROR_MARK and UNREFLECTED_MARK)

# The letter is always shown; the colour only helps. Light fills with dark text stay readable
# in grayscale print and for colour-blind readers (UD).
RATING_COLOURS = {
    "A": ("#C6EFCE", "#006100"),  # green
    "B": ("#DDEBF7", "#1F3864"),  # light blue
    "C": ("#FCD5B4", "#833C0C"),  # orange
    "D": ("#FFC7CE", "#9C0006"),  # red
}
CHART_COLOURS = {"A": "#4E9A4E", "B": "#5B9BD5", "C": "#ED7D31", "D": "#C00000"}
STATUS_COLOURS = {
    STATUS_ACCEPTED: ("#C6EFCE", "#006100"),
    STATUS_PARTIAL: ("#FFEB9C", "#7F6000"),
    STATUS_ERRORS: ("#FCD5B4", "#833C0C"),
    STATUS_MISSING: ("#FFC7CE", "#9C0006"),
    UNATTRIBUTED: ("#EDE7F6", "#4A148C"),
}
SEVERITY_LABELS = {ERROR: "エラー", "warning": "警告"}
SEVERITY_COLOURS = {"エラー": ("#FFC7CE", "#9C0006"), "警告": ("#FFEB9C", "#7F6000")}
FILE_STATUS_LABELS = {
    "accepted": "受理",
    "partial": "一部受理",
    "rejected": "不受理",
    "superseded": "新しい提出で置換",
    "ignored": "対象外",
}

_WORKBOOK_OPTIONS: dict[str, Any] = {
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
    # font_scheme none: without it xlsxwriter marks fonts scheme="minor" and Excel would show
    # the theme's font instead of the UD font. charset 128 = SHIFTJIS, family 3 = modern, as
    # Excel itself writes for Japanese fonts. The standard font is the monospaced UD font (a
    # column-width unit is then half an em, as the widths assume); every format names FONT.
    "default_format_properties": {
        "font_name": UNIT_FONT,
        "font_size": FONT_SIZE,
        "font_scheme": "none",
        "font_charset": printing.FONT_CHARSET,
        "font_family": printing.FONT_FAMILY,
    },
}

_DATETIME_FORMAT = "yyyy/mm/dd hh:mm"
# Digits of the proportional UD font are 0.76 em, one and a half width units: "2025/05/30 14:05"
# needs 23 units, "31～34" 9 (a narrower cell shows ### or cuts the number).
_DATETIME_WIDTH = 23
_PERCENT_FORMAT = "0.0%"

_BORDER = {"border": 1, "border_color": "#808080"}
_TOP = {"valign": "top"}
_FORMATS: dict[str, dict[str, Any]] = {
    "title": {"bold": True, "font_size": 14},
    "section": {"bold": True, "font_size": 12},
    "note": {"font_color": "#595959"},
    "empty": {"italic": True, "font_color": "#808080"},
    "header": {**_BORDER, "bold": True, "bg_color": "#DDEBF7", "text_wrap": True,
               "align": "center", "valign": "vcenter"},
    "text": {**_BORDER, **_TOP},
    "wrap": {**_BORDER, **_TOP, "text_wrap": True},
    "center": {**_BORDER, **_TOP, "align": "center"},
    "int": {**_BORDER, **_TOP, "align": "center", "num_format": "0"},
    "percent": {**_BORDER, **_TOP, "num_format": _PERCENT_FORMAT},
    "points": {**_BORDER, **_TOP, "align": "center", "num_format": "+0.0;-0.0;0.0"},
    "datetime": {**_BORDER, **_TOP, "align": "left", "num_format": _DATETIME_FORMAT},
    "rating": {**_BORDER, **_TOP, "align": "center", "bold": True},
    "missing": {**_BORDER, **_TOP, "text_wrap": True, "italic": True, "font_color": "#808080"},
    "total_text": {**_BORDER, "bold": True, "bg_color": "#F2F2F2"},
    "total_int": {**_BORDER, "bold": True, "bg_color": "#F2F2F2", "align": "center", "num_format": "0"},
    "total_percent": {**_BORDER, "bold": True, "bg_color": "#F2F2F2", "num_format": _PERCENT_FORMAT},
    "struct_label": {**_BORDER, "bold": True, "bg_color": "#F2F2F2", "valign": "vcenter"},
    "struct_text": {**_BORDER, "valign": "vcenter"},
    # Goal sheets print groups the way the published table does: a project's (or measure's)
    # cells have no line between their rows; the next group's top border closes the group.
    "group_first_center": {"left": 1, "right": 1, "top": 1, "left_color": "#808080",
                           "right_color": "#808080", "top_color": "#808080", **_TOP, "align": "center"},
    "group_first_wrap": {"left": 1, "right": 1, "top": 1, "left_color": "#808080",
                         "right_color": "#808080", "top_color": "#808080", **_TOP, "text_wrap": True},
    "group_cont": {"left": 1, "right": 1, "left_color": "#808080", "right_color": "#808080"},
    "table_end": {"top": 1, "top_color": "#808080"},
}
# The last row of a printed page closes the table there: the group cells get a bottom border
# (the next page begins with the headings and the group's labels again).
_FOOT = {"bottom": 1, "bottom_color": "#808080"}
_FORMATS.update({f"{name}_foot": {**_FORMATS[name], **_FOOT}
                 for name in ("group_first_center", "group_first_wrap", "group_cont")})


# --- names --------------------------------------------------------------------------------


def master_name(catalog: Catalog) -> str:
    """The master's file name: "地域福祉計画_評価集約_R6.xlsx"."""
    return f"{catalog.plan}_評価集約_{catalog.year}.xlsx"


def summary_name(catalog: Catalog) -> str:
    """The committee summary's file name: "地域福祉計画_評価集計_R6.xlsx"."""
    return f"{catalog.plan}_評価集計_{catalog.year}.xlsx"


def goal_sheet_name(goal_number: int) -> str:
    return f"基本目標{goal_number}"


# [master] goal_sheets = "auto" writes the 基本目標 sheets up to this many assignments (their rows:
# a missing evaluation is shown as 未提出). They repeat every row of 評価一覧 in the published
# layout, for print: at 5,000 rows that is about 400 A3 pages, far beyond any plan a city prints
# (R6 has 69), while they cost a third of the master's writing time at 60,000 rows.
GOAL_SHEETS_AUTO_MAX_ROWS = 5_000


def writes_goal_sheets(catalog: Catalog, goal_sheets: str = "auto") -> bool:
    """Whether the master has the 基本目標 sheets: "always", "never", or "auto" (up to
    GOAL_SHEETS_AUTO_MAX_ROWS assignments)."""
    if goal_sheets == "auto":
        return len(catalog.assignments) <= GOAL_SHEETS_AUTO_MAX_ROWS
    return goal_sheets == "always"


def master_sheets(catalog: Catalog, *, comparison: bool = False, goal_sheets: str = "auto") -> tuple[str, ...]:
    """The master's sheet names for this catalog (MASTER_SHEETS is the R6 shape); `comparison`:
    with last year known, 前年度比較 follows 集計; `goal_sheets`: the setting (writes_goal_sheets)."""
    goals = [goal_sheet_name(g.number) for g in catalog.goals] if writes_goal_sheets(catalog, goal_sheets) else []
    return (LIST_SHEET, *goals, SUMMARY_SHEET, *((COMPARISON_SHEET,) if comparison else ()), STATUS_SHEET,
            ISSUES_SHEET)


# --- entry points -------------------------------------------------------------------------


def write_master(
    path: Path,
    catalog: Catalog,
    result: Outcome,
    files: Sequence[FileVerdict],
    issues: Sequence[Issue],
    *,
    generated: str,
    previous: PastYear | None = None,
    today: date | None = None,
    deadline: date | None = None,
    goal_sheets: str = "auto",
    failed_nights: Sequence[dict[str, Any]] = (),
) -> None:
    """Write the complete master workbook to exactly `path`. With `previous` (last year's
    evaluations, pipeline.history), a 前年度比較 sheet follows 集計. `goal_sheets` is the setting
    [master] goal_sheets (see writes_goal_sheets).

    With `today` after `deadline`, 提出状況 marks each office that still owes answers 期限超過
    (its 状況 reads 期限超過(未提出)); without either, nothing is marked. `failed_nights` (the failed
    merges since the last successful one, pipeline.lastrun) are listed on 提出状況.

    Raises ValueError (before anything is written) when a text exceeds Excel's 32,767-character
    cell limit or a row is not an assignment of the catalog.
    """
    check_rows(catalog, result.rows)
    wb = _new_workbook(path, catalog, "評価集約", "master", generated)
    st = _Styles(wb)
    absent = absences(catalog, result)
    tally = _Tally(catalog, result.rows, absent)
    header = _page_header(catalog, generated)
    _write_list(wb, st, catalog, result.rows, header)
    if writes_goal_sheets(catalog, goal_sheets):
        for goal in catalog.goals:
            _write_goal_sheet(wb, st, catalog, goal.number, tally, absent, header)
    _write_summary_sheet(wb, st, catalog, tally, result.rows, generated, header)
    if previous is not None:
        _write_comparison(wb, st, catalog, compare_years(catalog, result.rows, previous, _unreflected(absent)),
                          header)
    overdue = today is not None and deadline is not None and today > deadline
    _write_status(wb, st, result, files, header, overdue=overdue, failed_nights=failed_nights)
    _write_issues(wb, st, issues, header, result.acknowledged)
    wb.close()


def write_summary(path: Path, catalog: Catalog, result: Outcome, *, generated: str,
                  previous: PastYear | None = None) -> None:
    """Write the committee summary to exactly `path`: one A4 landscape sheet per 基本目標, and
    with `previous` (last year's evaluations) a last sheet 前年度比較: per goal, the A–D counts of
    both years and a clustered bar chart.

    Each sheet holds the A–D counts and shares per 施策の方向性 and per 施策, a stacked bar chart,
    and the C/D rows with their reasons. 未提出 is counted separately and is never part of a
    share (shares are of the submitted rows).
    """
    check_rows(catalog, result.rows)
    wb = _new_workbook(path, catalog, "評価集計", "summary", generated)
    st = _Styles(wb)
    absent = absences(catalog, result)
    tally = _Tally(catalog, result.rows, absent)
    header = _page_header(catalog, generated)
    by_goal: dict[int, list[Evaluation]] = {g.number: [] for g in catalog.goals}
    for r in result.rows:  # one pass over the rows, not one a goal
        by_goal[catalog.projects[r.project].goal].append(r)
    for goal in catalog.goals:
        g = goal.number
        sheet = _CountSheet(wb, st, wb.add_worksheet(goal_sheet_name(g)), PAGE_A4)
        sheet.lines([("title", f"{catalog.title} {catalog.year_label} 評価集計"),
                     ("section", f"基本目標 {g} {goal.name}"), ("note", f"最新受信 {_display_time(generated)}"),
                     *(("note", f"{letter}: {meaning}") for letter, meaning in catalog.ratings.items())])
        directions = [d for d in catalog.directions if d.goal == g]
        sheet.count_table("施策の方向性別", [(d.code, d.name, tally.direction[(g, d.number)]) for d in directions],
                          total=("合計", f"基本目標{g}", tally.goal[g]))
        measures = [m for m in catalog.measures if m.goal == g]
        entries = sheet.count_table("施策別", [(m.code, m.name, tally.measure[(g, m.direction, m.number)])
                                             for m in measures])
        sheet.charts(None, [(f"基本目標{g} 施策別の評価", entries)])
        sheet.cd_table(catalog, by_goal[g])
        sheet.finish(header)
    if previous is not None:
        _write_comparison_summary(wb, st, catalog,
                                  compare_years(catalog, result.rows, previous, _unreflected(absent)), header)
    wb.close()


# --- shared pieces --------------------------------------------------------------------------


class _Styles:
    """The workbook's few formats, made once; `put` picks the quote-prefixed twin when needed."""

    def __init__(self, wb: xlsxwriter.Workbook) -> None:
        self.wb = wb
        self.fmt = {name: wb.add_format({"font_name": FONT, **props}) for name, props in _FORMATS.items()}
        self._quoted: dict[str, Any] = {}
        # Conditional-format (dxf) formats: fill and dark text only, so the cell's font stays.
        self.rating_dxf = {x: wb.add_format({"bg_color": bg, "font_color": fg})
                           for x, (bg, fg) in RATING_COLOURS.items()}

    def quoted(self, name: str) -> Any:
        if name not in self._quoted:
            self._quoted[name] = self.wb.add_format({"font_name": FONT, **_FORMATS[name], "quote_prefix": True})
        return self._quoted[name]

    def put(self, ws: Worksheet, row: int, col: int, text: str, name: str) -> None:
        """Write text as an inert string (celltext's rules); raise instead of truncating."""
        if not text:
            # A real blank, not an empty string: Excel's COUNTA and filters treat "" as filled.
            ws.write_blank(row, col, None, self.fmt[name])
            return
        if len(text) > _HALF_LIMIT and _too_long(text):  # the cheap test first: 600k cells
            raise ValueError(
                f"シート「{ws.name}」のセル {_cell(row, col)}: 文字数が Excel の上限 "
                f"{EXCEL_MAX_CHARS:,} 文字を超えています。"
            )
        ws.write_string(row, col, text, self.quoted(name) if _needs_quote(text) else self.fmt[name])

    def put_time(self, ws: Worksheet, row: int, col: int, iso: str, name: str = "datetime") -> None:
        """An ISO time as an Excel date-time (wall-clock time as received); other text as text."""
        when = _parse_time(iso)
        if when is None:
            self.put(ws, row, col, iso, "text")
        else:
            ws.write_datetime(row, col, when, self.fmt[name])

    def put_project_label(self, ws: Worksheet, row: int, col: int, project: Project, name: str) -> None:
        # "9" as a number (sorts and filters as one); "31～34" as printed.
        if project.label.isdigit():
            ws.write_number(row, col, int(project.label), self.fmt[name])
        else:
            self.put(ws, row, col, project.label, name)


def absences(catalog: Catalog, result: Outcome) -> dict[tuple[str, str], str]:
    """Each assignment without a valid row, and why, as the sheets print it: MISSING_MARK when
    nothing was received from its office, ERROR_MARK when the office's returns had errors (a
    rejected file or an excluded row), UNREFLECTED_MARK otherwise."""
    valid = {r.key for r in result.rows}
    office = {o.office: o for o in result.offices}
    out = {}
    for a in catalog.assignments:
        if a.key in valid:
            continue
        o = office.get(a.office)
        if o is None or o.received == 0:
            out[a.key] = MISSING_MARK
        else:
            out[a.key] = ERROR_MARK if o.status == STATUS_ERRORS else UNREFLECTED_MARK
    return out


def _unreflected(absent: dict[tuple[str, str], str]) -> set[tuple[str, str]]:
    return {key for key, mark in absent.items() if mark != MISSING_MARK}


class _Tally:
    """A/B/C/D/未提出/未反映 counts per goal, direction, measure and 担当課, from one pass over the plan.
    `absent` (from `absences`) tells 未反映 from 未提出; without it, every absent row is 未提出."""

    def __init__(self, catalog: Catalog, rows: Iterable[Evaluation],
                 absent: dict[tuple[str, str], str] | None = None) -> None:
        absent = absent or {}
        self.by_key = {r.key: r for r in rows}
        self.goal: dict[int, dict[str, int]] = {g.number: _zero() for g in catalog.goals}
        self.direction = {(d.goal, d.number): _zero() for d in catalog.directions}
        self.measure = {(m.goal, m.direction, m.number): _zero() for m in catalog.measures}
        self.department: dict[str, dict[str, int]] = {}
        self.office_of: dict[str, str] = {}
        for a in catalog.assignments:
            p = catalog.projects[a.project]
            row = self.by_key.get(a.key)
            bucket = row.rating if row is not None else (
                MISSING if absent.get(a.key, MISSING_MARK) == MISSING_MARK else UNREFLECTED)
            self.department.setdefault(a.department, _zero())
            self.office_of.setdefault(a.department, a.office)
            for counts in (
                self.goal[p.goal],
                self.direction[(p.goal, p.direction)],
                self.measure[(p.goal, p.direction, p.measure)],
                self.department[a.department],
            ):
                counts[bucket] += 1

    @property
    def total(self) -> dict[str, int]:
        out = _zero()
        for counts in self.goal.values():
            for k, v in counts.items():
                out[k] += v
        return out


def _zero() -> dict[str, int]:
    return {**dict.fromkeys(RATINGS, 0), MISSING: 0, UNREFLECTED: 0}


def _new_workbook(path: Path, catalog: Catalog, kind: str, mark: str, generated: str) -> xlsxwriter.Workbook:
    wb = xlsxfast.Workbook(str(path), _WORKBOOK_OPTIONS)
    # Ours: dropped into the inbox, it is recognised and never read as a return (own-output).
    wb.set_custom_property(OUTPUT_PROPERTY, output_mark(mark, catalog, generated))
    wb.set_properties(
        {
            "title": f"{catalog.title} {catalog.year_label} {kind}",
            "subject": catalog.plan,
            "author": "地域福祉課",
            "company": "福祉保健部地域福祉課",
            "comments": f"plan {catalog.year} version {catalog.version}",
            # Fixed, so identical inputs give identical bytes (see the module docstring).
            "created": datetime(catalog.year_western, 4, 1),
        }
    )
    return wb


def _page_header(catalog: Catalog, generated: str) -> str:
    left = _escape_header(f"{catalog.title} {catalog.year_label}")
    right = _escape_header(f"最新受信 {_display_time(generated)}")
    return f"&L{left}&C&A&R{right}"


PAGE_A3 = printing.Page(paper=printing.A3)
PAGE_A4 = printing.Page(paper=printing.A4)


def _setup_print(ws: Worksheet, header: str, *, page: printing.Page = PAGE_A3, repeat: int | None = None,
                 scale: int | None = None, breaks: Sequence[int] = ()) -> None:
    """Paper, margins, header and footer. Without `scale`: one page wide, as many tall as needed
    (robust to printer drivers; for sheets whose every row names its 事業). With `scale`: that
    fixed scale and the manual `breaks` (pipeline.printing: Excel ignores manual breaks on a
    sheet fitted to pages)."""
    ws.set_paper(page.paper)  # 8 = A3, 9 = A4
    if page.landscape:
        ws.set_landscape()
    else:
        ws.set_portrait()
    if scale is None:
        ws.fit_to_pages(1, 0)
    else:
        ws.set_print_scale(scale)
        if breaks:
            ws.set_h_pagebreaks(list(breaks))
    ws.set_margins(**page.margins())
    # The header and footer sit inside the top and bottom margins, clear of the cells.
    ws.set_header(header, {"margin": page.header})
    ws.set_footer("&C&P / &N", {"margin": page.footer})
    if repeat is not None:
        ws.repeat_rows(repeat)


def _write_layout(ws: Worksheet, layout: printing.Layout, write: Any) -> None:
    """Write each placed line with `write(placed)`, every row at its explicit height."""
    for placed in layout.placed:
        ws.set_row(placed.row, placed.height)
        write(placed)


def check_rows(catalog: Catalog, rows: Iterable[Evaluation]) -> None:
    """Reject, before writing, what would otherwise be silently wrong in the workbook. The runner
    calls it file by file first, so a file whose rows cannot be written is set aside alone."""
    keys = catalog.assignment_keys  # built once: the runner checks file by file
    for r in rows:
        if (r.project, r.department) not in keys:
            raise ValueError(f"事業No.{r.project}・担当課「{r.department}」は計画の割り当てにありません。")
        if max(len(r.result), len(r.outlook), len(r.department)) <= _HALF_LIMIT:
            continue  # a text this short always fits (the file name is ours: bounded when written)
        for column, text in (
            ("事業実績・評価理由", r.result),
            ("今後の事業計画・展望", r.outlook),
            ("担当課", r.department),
        ):
            if _too_long(text):
                raise ValueError(
                    f"事業No.{catalog.projects[r.project].label}・担当課「{r.department}」の「{column}」が "
                    f"{_utf16_len(text):,} 文字あり、Excel の1セルの上限 {EXCEL_MAX_CHARS:,} 文字を超えています。"
                )


# --- 評価一覧 ----------------------------------------------------------------------------------


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
        ("受信日時", _DATETIME_WIDTH),
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
        ("text", _bounded(r.file), "wrap"),
        ("time", r.received, "datetime"),
    )


LIST_PRINT_COLUMNS = 9  # 評価一覧 prints A:I


def _write_list(wb: xlsxwriter.Workbook, st: _Styles, catalog: Catalog,
                rows: Sequence[Evaluation], header: str, *, fast: bool = True) -> None:
    """評価一覧. Its rows go through xlsxfast.FastSheet (the same XML, rendered a row at a time);
    `fast=False` writes them cell by cell through xlsxwriter, the reference the tests compare with."""
    ws = wb.add_worksheet(LIST_SHEET, worksheet_class=xlsxfast.FastSheet if fast else None)
    columns = list_columns(catalog)
    widths = [w for _, w in columns]
    widths[5] = _fit(widths[5], (a.department for a in catalog.assignments), cap=30)
    widths[9] = _fit(widths[9], {r.file for r in rows}, cap=44)
    for c, ((title, _), width) in enumerate(zip(columns, widths, strict=True)):
        ws.set_column(c, c, width)
        st.put(ws, 0, c, title, "header")
    projects = catalog.projects
    cells = _FastCells(ws, st) if isinstance(ws, xlsxfast.FastSheet) else None
    last_col = len(columns) - 1
    for i, r in enumerate(rows, start=1):
        p = projects[r.project]
        height = _row_height(((p.name, widths[3]), (p.content, widths[4]), (r.result, widths[6]),
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
    _rating_colours(st, ws, 1, 7, last, 7)
    # Printed: the evaluation itself, 基本目標 to 今後の事業計画・展望 (A:I). 提出ファイル and 受信日時
    # stay on screen (and on 提出状況): eleven columns on one page wide would print at ~5 pt.
    ws.print_area(0, 0, last, LIST_PRINT_COLUMNS - 1)
    _setup_print(ws, header, repeat=0)


# A text whose first character is none of these needs no quote prefix (celltext.needs_quote).
_QUOTE_FIRST = celltext.FORMULA_TRIGGERS | frozenset(celltext.LEADING_BLANKS)


class _FastCells:
    """Renders a row's cells as XML, exactly as _Styles.put, put_time, put_project_label and
    write_number would have them written (tests/test_xlsxfast.py compares the two)."""

    def __init__(self, ws: xlsxfast.FastSheet, st: _Styles) -> None:
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
        if len(text) > _HALF_LIMIT and _too_long(text):
            raise ValueError(
                f"シート「{self.ws.name}」のセル {_cell(row, col)}: 文字数が Excel の上限 "
                f"{EXCEL_MAX_CHARS:,} 文字を超えています。"
            )
        x = self._xf.get((style, False)) if text[0] not in _QUOTE_FIRST else None
        if x is None:
            x = self._index(style, _needs_quote(text))
        return f'<c r="{ref}" s="{x}" t="s"><v>{self.ws.shared(text)}</v></c>'

    def _number(self, ref: str, number: float, style: str) -> str:
        return f'<c r="{ref}" s="{self._index(style)}"><v>{number:.16G}</v></c>'

    def row(self, row: int, last_col: int, height: float, values: Sequence[tuple[str, Any, str]]) -> None:
        letters = self._letters
        while len(letters) <= last_col:
            letters.append(xlsxfast.cell_ref(len(letters)))
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
                    when = _parse_time(value)
                    self._times[value] = self.ws.datetime_number(when) if when is not None else None
                number = self._times[value]
                if number is None:
                    append(self._text(ref, row, col, value, "text"))
                else:
                    append(self._number(ref, number, style))
        append("</row>")
        self.ws.add_row("".join(parts))


# --- 基本目標N ---------------------------------------------------------------------------------

GOAL_COLUMNS = ("施策No.", "事業No.", "【個別事業・取り組み】", "内容", "担当課", "事業実績・評価理由", "事業評価",
                "今後の事業計画・展望")
_GOAL_WIDTHS = (9, 9, 24, 42, 22, 55, 9, 51)  # 担当課 holds 地域福祉課(関係各課) on one line
OVERVIEW_TITLE = "【基本施策】"  # the published table's overview: goal → 施策の方向性 → 施策
_DEPARTMENT_CAP = 30  # 担当課 widens up to this for the plan's longest name


def goal_widths(catalog: Catalog) -> tuple[float, ...]:
    """The goal table's columns: 担当課 as wide as the plan's longest 担当課 (one line, so a name
    never breaks inside a word), up to _DEPARTMENT_CAP; the print scale follows the total."""
    base = _GOAL_WIDTHS
    widest = max((celltext.display_width(a.department) for a in catalog.assignments), default=0)
    extra = max(0, min(_DEPARTMENT_CAP, widest + 2) - base[4])
    return (*base[:4], base[4] + extra, *base[5:])


def goal_columns(catalog: Catalog) -> list[str]:
    """The eight columns of the published table, with this year's label on 事業実績・評価理由."""
    cols = list(GOAL_COLUMNS)
    cols[5] = f"事業実績・評価理由 ({catalog.year_label})"
    return cols


def _write_goal_sheet(wb: xlsxwriter.Workbook, st: _Styles, catalog: Catalog, g: int,
                      tally: _Tally, absent: dict[tuple[str, str], str], header: str) -> None:
    ws = wb.add_worksheet(goal_sheet_name(g))
    write_goal_table(ws, st, catalog, g, tally.by_key, header=header, missing=absent)


@dataclass(frozen=True)
class _GoalRow:
    """One assignment's row of a goal table, with what it starts."""

    assignment: Assignment
    project: Project
    evaluation: Evaluation | None
    new_measure: bool
    new_project: bool


CONTINUED = "(続き)"  # after the project's name on a page that begins inside the project


def write_goal_table(ws: Worksheet, st: _Styles, catalog: Catalog, g: int,
                     by_key: dict[tuple[str, str], Evaluation], *, header: str,
                     missing: dict[tuple[str, str], str],
                     goal_line: bool = False, page: printing.Page = PAGE_A3) -> printing.Layout:
    """A goal's structure and table in the published layout, paginated for print.

    Pages break between projects wherever a project fits on the page; a project taller than what
    is left of a page starts the next page, and one taller than a page is split between its rows.
    A page that begins inside a project shows its 施策No., 事業No. and name again (with
    "(続き)"), and the table's column headings repeat on every page (print titles), so each page
    can be read on its own. `missing` says what an assignment without an evaluation shows (from
    `absences`; none: an empty row). `goal_line` prints the published table's overview instead
    of a title: the heading 【基本施策】, then the goal as the first structure line. Shared with
    pipeline.publish.
    """
    goal = next(x for x in catalog.goals if x.number == g)
    widths = goal_widths(catalog)
    for c, width in enumerate(widths):
        ws.set_column(c, c, width)
    last_col = len(widths) - 1
    struct_width = sum(widths[2:])

    def struct(label: str, text: str) -> printing.Line:
        return printing.Line(_struct_height(text, struct_width), ("struct", label, text))

    top: list[printing.Line] = []
    if goal_line:
        top += [printing.Line(_ROW_PT, ("overview", OVERVIEW_TITLE)), struct("基本目標", f"{g} {goal.name}")]
    else:
        top += [printing.Line(24, ("title", f"基本目標 {g} {goal.name}")), printing.Line(_ROW_PT, None, spacer=True)]
    for d in (x for x in catalog.directions if x.goal == g):
        top.append(struct("施策の方向性", f"{d.code} {d.name}"))
        measures = [m for m in catalog.measures if m.goal == g and m.direction == d.number]
        for k, m in enumerate(measures):
            top.append(struct("施策" if k == 0 else "", f"{m.code[len(d.code):]} {m.name}"))
    top.append(printing.Line(_ROW_PT, None, spacer=True))

    columns = goal_columns(catalog)
    head = printing.Line(_row_height(zip(columns, widths, strict=True), min_lines=2), ("header", columns))
    lines = [head]
    last_measure: tuple[int, int] | None = None
    last_project: str | None = None
    for a in catalog.assignments:
        p = catalog.projects[a.project]
        if p.goal != g:
            continue
        measure = (p.direction, p.measure)
        new_measure = measure != last_measure
        new_project = new_measure or a.project != last_project
        last_measure, last_project = measure, a.project
        ev = by_key.get(a.key)
        texts = [(a.department, widths[4])]
        if ev is not None:
            texts += [(ev.result, widths[5]), (ev.outlook, widths[7])]
        else:
            texts.append((missing.get(a.key, ""), widths[5]))
        # the project's name and 内容 stand in its first row only, so that row holds them whole;
        # a row that begins a page repeats the name (not the 内容)
        first = [(p.name, widths[2]), (p.content, widths[3])] if new_project else []
        again = [(p.name + CONTINUED, widths[2])]
        lines.append(printing.Line(_row_height(texts + first), _GoalRow(a, p, ev, new_measure, new_project),
                                   group=("project", p.key), top_height=_row_height(texts + first + again)))
    lines.append(printing.Line(_TABLE_END_PT, ("end",)))

    scale = printing.print_scale(widths, page)
    layout = printing.paginate([printing.Block(top, keep=True), printing.Block(lines)],
                               printing.capacity_pt(page, scale), title_height=printing.snap(head.height))
    f = st.fmt
    data_rows: list[int] = []
    head_row = 0
    # the rows that end a page the table continues after
    feet = {a.row for a, b in itertools.pairwise(layout.placed) if a.page != b.page}

    def write(placed: printing.Placed) -> None:
        nonlocal head_row
        r, item = placed.row, placed.line.item
        if item is None:
            return
        if isinstance(item, _GoalRow):
            data_rows.append(r)
            _goal_row(ws, st, r, item, placed, missing, foot=r in feet)
        elif item[0] == "title":
            st.put(ws, r, 0, item[1], "title")
        elif item[0] == "overview":
            st.put(ws, r, 0, item[1], "section")
        elif item[0] == "struct":
            _struct_line(ws, st, r, item[1], item[2], last_col)
        elif item[0] == "header":
            head_row = r
            for c, title in enumerate(item[1]):
                st.put(ws, r, c, title, "header")
        elif item[0] == "end":
            for c in range(last_col + 1):
                ws.write_blank(r, c, None, f["table_end"])

    _write_layout(ws, layout, write)
    if data_rows:
        _rating_colours(st, ws, data_rows[0], 6, data_rows[-1], 6)
    _setup_print(ws, header, page=page, repeat=head_row, scale=scale, breaks=layout.breaks)
    return layout


def _goal_row(ws: Worksheet, st: _Styles, r: int, row: _GoalRow, placed: printing.Placed,
              missing: dict[tuple[str, str], str], *, foot: bool = False) -> None:
    """One assignment's row; `foot`: the last row of its printed page, which closes the table."""
    p, a, ev = row.project, row.assignment, row.evaluation
    end = "_foot" if foot else ""
    first_center, first_wrap = f"group_first_center{end}", f"group_first_wrap{end}"
    cont = st.fmt[f"group_cont{end}"]
    if row.new_measure or placed.top:
        st.put(ws, r, 0, p.measure_code, first_center)
    else:
        ws.write_blank(r, 0, None, cont)
    if row.new_project or placed.top:
        st.put_project_label(ws, r, 1, p, first_center)
        st.put(ws, r, 2, p.name + (CONTINUED if not row.new_project else ""), first_wrap)
        if row.new_project:
            st.put(ws, r, 3, p.content, first_wrap)
        else:
            ws.write_blank(r, 3, None, st.fmt[first_wrap])
    else:
        for c in (1, 2, 3):
            ws.write_blank(r, c, None, cont)
    st.put(ws, r, 4, a.department, "wrap")
    if ev is None:
        # Shown, not skipped, so the committee sees what is still missing.
        st.put(ws, r, 5, missing.get(a.key, ""), "missing")
        ws.write_blank(r, 6, None, st.fmt["rating"])
        ws.write_blank(r, 7, None, st.fmt["wrap"])
    else:
        st.put(ws, r, 5, ev.result, "wrap")
        st.put(ws, r, 6, ev.rating, "rating")
        st.put(ws, r, 7, ev.outlook, "wrap")


_ROW_PT = 18  # a one-line row of the 11 pt font
_TABLE_END_PT = 9  # the row under a goal table that carries its closing border


def _struct_height(text: str, width: float) -> float:
    return max(_ROW_PT, _row_height([(text, width)]))


def _struct_line(ws: Worksheet, st: _Styles, row: int, label: str, text: str, last_col: int) -> None:
    ws.merge_range(row, 0, row, 1, "", st.fmt["struct_label"])
    if label:
        st.put(ws, row, 0, label, "struct_label")
    ws.merge_range(row, 2, row, last_col, "", st.fmt["struct_text"])
    st.put(ws, row, 2, text, "struct_text")


# --- 集計 ------------------------------------------------------------------------------------

COUNT_HEADERS = ("区分", "名称", *RATINGS, MISSING, UNREFLECTED, "合計", *(f"{x}割合" for x in RATINGS))
_COUNT_WIDTHS = (22, 40, *([9] * 7), *([10] * 4))  # 区分 / 返送する課 holds 子ども家庭センター  # a share "100.0%" needs 10 units in the UD font
_CD_HEADERS = ("事業No.", "個別事業・取り組み", "事業評価", "担当課", "事業実績・評価理由")
_CD_SPANS = ((0, 0), (1, 1), (2, 2), (3, 5), (6, 12))  # under the count tables' columns

# Count sheets pin their default row height and set every row's height, so charts land where
# planned and the page breaks fall where planned (pipeline.printing).
_COUNTS_ROW_PT = _ROW_PT


def _write_summary_sheet(wb: xlsxwriter.Workbook, st: _Styles, catalog: Catalog, tally: _Tally,
                         rows: Sequence[Evaluation], generated: str, header: str) -> None:
    sheet = _CountSheet(wb, st, wb.add_worksheet(SUMMARY_SHEET), PAGE_A3)
    total = tally.total
    submitted = sum(total[x] for x in RATINGS)
    sheet.lines([("title", f"{catalog.title} {catalog.year_label} 集計"),
                 ("note", f"最新受信 {_display_time(generated)}  評価対象 "
                          f"{submitted + total[MISSING] + total[UNREFLECTED]} 件(反映済み {submitted} 件・"
                          f"未提出 {total[MISSING]} 件・未反映 {total[UNREFLECTED]} 件)"),
                 ("note", "未提出は課から何も届いていない評価、未反映は届いたがエラーなどで反映されていない評価"
                          "(提出状況・検証結果を参照)です。割合は反映済みの評価に対する割合です。")])
    goals = catalog.goals
    by_goal = sheet.count_table("基本目標別", [(f"基本目標{g.number}", g.name, tally.goal[g.number]) for g in goals],
                                total=("合計", "", total))
    by_direction = sheet.count_table(
        "施策の方向性別",
        [(f"基本目標{d.goal} {d.code}", d.name, tally.direction[(d.goal, d.number)]) for d in catalog.directions],
    )
    # Charts: all goals side by side, then one per goal by 施策の方向性; two to a band.
    charts = [("基本目標別の評価", by_goal)]
    for g in goals:
        mine = [line for d, line in zip(catalog.directions, by_direction, strict=True) if d.goal == g.number]
        charts.append((f"基本目標{g.number} 施策の方向性別の評価", mine))
    sheet.charts("グラフ", charts)
    # the long 担当課別 may begin under the charts and continue on the next page (headings repeated)
    sheet.count_table("担当課別", _by_office(catalog, tally), code_header="返送する課", name_header="担当課",
                      keep=False)
    sheet.cd_table(catalog, rows)
    sheet.finish(header)


SUBTOTAL = "小計"


def _by_office(catalog: Catalog, tally: _Tally) -> list[tuple[str, str, dict[str, int], bool]]:
    """担当課別's rows: offices in the registry's order (the plan catalog's offices), each office's
    担当課 in plan order, then the office's 小計 when it answers for more than one 担当課."""
    out: list[tuple[str, str, dict[str, int], bool]] = []
    for office in catalog.offices:
        mine = [d for d in tally.department if tally.office_of[d] == office]
        out += [(office, d, tally.department[d], False) for d in mine]
        if len(mine) > 1:
            subtotal = _zero()
            for d in mine:
                for k, v in tally.department[d].items():
                    subtotal[k] += v
            out.append((office, SUBTOTAL, subtotal, True))
    return out


class _CountSheet:
    """A sheet of count tables, charts and the C/D table, laid out for print before it is written.

    Each table is kept on one page when it fits on one; one that does not repeats its title and
    column headings on each page it continues on. Each band of charts is kept on one page. Rows
    get explicit heights, the sheet a fixed print scale and manual page breaks (pipeline.printing)."""

    def __init__(self, wb: xlsxwriter.Workbook, st: _Styles, ws: Worksheet, page: printing.Page,
                 *, missing: bool = True) -> None:
        self.wb, self.st, self.ws, self.page = wb, st, ws, page
        self.missing = missing  # 未提出 and 未反映 columns (the master) or not (the published document)
        self.widths = _COUNT_WIDTHS if missing else (*_COUNT_WIDTHS[:6], *_COUNT_WIDTHS[8:])
        self.scale = printing.print_scale(self.widths, page)
        self.capacity = printing.capacity_pt(page, self.scale)
        self.blocks: list[printing.Block] = []
        # each band's line, and its charts: (title, the count rows it draws, width, position in the band)
        self.chart_rows: list[tuple[printing.Line, list[tuple[str, list[printing.Line], int, int]]]] = []
        self.cd_widths = tuple(sum(self.widths[c0:c1 + 1]) for c0, c1 in self.cd_spans)

    @property
    def cd_spans(self) -> tuple[tuple[int, int], ...]:
        last = len(self.widths) - 1
        return (*_CD_SPANS[:4], (_CD_SPANS[4][0], last))

    @property
    def headers(self) -> tuple[str, ...]:
        return COUNT_HEADERS if self.missing else tuple(h for h in COUNT_HEADERS if h not in (MISSING, UNREFLECTED))

    def lines(self, items: Iterable[tuple[str, str]]) -> None:
        """Title and note lines, kept together, then a blank line."""
        out = [printing.Line(24 if kind == "title" else _ROW_PT, (kind, text)) for kind, text in items]
        self.blocks.append(printing.Block([*out, _spacer()], keep=True))

    def count_table(self, title: str, entries: Sequence[tuple[str, str, dict[str, int]]
                                                        | tuple[str, str, dict[str, int], bool]], *,
                    total: tuple[str, str, dict[str, int]] | None = None, code_header: str = "区分",
                    name_header: str = "名称", keep: bool = True) -> list[printing.Line]:
        """A titled table of counts and shares. Returns its entry lines (a chart's categories).
        An entry with a fourth item True is a subtotal, set like the total. `keep`: the table moves
        whole to the next page when it fits on one (else it continues under repeated headings)."""
        headers = (code_header, name_header, *self.headers[2:])
        rows = [printing.Line(self._count_height(e[0], e[1]), ("count", e[0], e[1], e[2], len(e) > 3 and e[3]))
                for e in entries]
        lines = [printing.Line(_ROW_PT, ("section", title)), printing.Line(_ROW_PT, ("header", headers)), *rows]
        if total is not None:
            lines.append(printing.Line(self._count_height(total[0], total[1]), ("count", *total, True)))
        block = printing.Block([*lines, _spacer()], keep=keep, header=2)
        if block.height > self.capacity - _ROW_PT * 2:
            block.header = 0  # a chart's rows must stay contiguous: no headings in between
        self.blocks.append(block)
        return rows

    def charts(self, title: str | None, charts: Sequence[tuple[str, list[printing.Line]]]) -> None:
        """Stacked bar charts of count tables already added, two to a band; each band on one page."""
        per_band = 2 if len(charts) > 1 else 1
        width = _chart_width(self.widths) if per_band == 2 else _CHART_WIDTH
        for i in range(0, len(charts), per_band):
            band = charts[i:i + per_band]
            height = max(_chart_height(len(rows)) for _, rows in band)
            lines = [printing.Line(_ROW_PT, ("band",)) for _ in range(_rows_for_height(height + 8))]
            first = printing.Line(_ROW_PT, ("charts", [(t, rows, width, j) for j, (t, rows) in enumerate(band)]))
            lines[0] = first
            if title and i == 0:
                lines.insert(0, printing.Line(_ROW_PT, ("section", title)))
            self.blocks.append(printing.Block(lines, keep=True))

    def cd_table(self, catalog: Catalog, rows: Iterable[Evaluation]) -> None:
        """The C and D rows with their reasons, in plan order: 担当課 and the reason are merged
        across the narrow count columns (Excel does not grow merged rows: heights are set)."""
        lines = [printing.Line(_ROW_PT, ("section", "C・D 評価の事業")), printing.Line(_ROW_PT, ("cd_header",))]
        for ev in rows:
            if ev.rating not in ("C", "D"):
                continue
            p = catalog.projects[ev.project]
            values = (p.label, p.name, ev.rating, ev.department, ev.result)
            lines.append(printing.Line(_row_height(zip(values, self.cd_widths, strict=True)), ("cd", p, ev)))
        if len(lines) == 2:
            lines.append(printing.Line(_ROW_PT, ("empty", "C・D 評価の事業はありません。")))
        self.blocks.append(printing.Block(lines, header=2))

    def _count_height(self, code: str, name: str) -> float:
        return max(_ROW_PT, _row_height([(code, self.widths[0]), (name, self.widths[1])], exact=True))

    def finish(self, header: str) -> printing.Layout:
        ws, st = self.ws, self.st
        for c, width in enumerate(self.widths):
            ws.set_column(c, c, width)
        ws.set_default_row(_COUNTS_ROW_PT)
        layout = printing.paginate(self.blocks, self.capacity)
        rating_rows: list[int] = []

        def write(placed: printing.Placed) -> None:
            r, item = placed.row, placed.line.item
            if item is None or item[0] == "band":
                return
            kind = item[0]
            if kind in ("title", "section", "note", "empty"):
                st.put(ws, r, 0, item[1], kind)
            elif kind == "header":
                for c, h in enumerate(item[1]):
                    st.put(ws, r, c, h, "header")
            elif kind == "count":
                _count_row(ws, st, r, item[1], item[2], item[3], *(
                    ("total_text", "total_int", "total_percent") if item[4] else ("text", "int", "percent")),
                    missing=self.missing)
            elif kind == "charts":
                self.chart_rows.append((placed.line, item[1]))
            elif kind == "cd_header":
                span_headers(ws, st, r, self.cd_spans, _CD_HEADERS)
            elif kind == "cd":
                rating_rows.append(r)
                _cd_row(ws, st, r, item[1], item[2], self.cd_spans)

        _write_layout(ws, layout, write)
        row_of = {id(p.line): p.row for p in layout.placed if not p.repeated}
        for band, charts in self.chart_rows:
            for title, rows, width, j in charts:
                first, last = row_of[id(rows[0])], row_of[id(rows[-1])]
                chart = _stacked_chart(self.wb, ws.name, first, last, title, len(rows), width=width,
                                       scale=self.scale)
                ws.insert_chart(row_of[id(band)], 0, chart, {"x_offset": 4 + j * (width + _CHART_GAP),
                                                              "y_offset": 4, "object_position": 1})
        if rating_rows:
            _rating_colours(st, ws, rating_rows[0], 2, rating_rows[-1], 2)
        _setup_print(ws, header, page=self.page, scale=self.scale, breaks=layout.breaks)
        return layout


def _spacer() -> printing.Line:
    return printing.Line(_ROW_PT, None, spacer=True)


def _count_row(ws: Worksheet, st: _Styles, r: int, code: str, name: str, counts: dict[str, int],
               text: str, num: str, pct: str, *, missing: bool = True) -> None:
    st.put(ws, r, 0, code, text)
    st.put(ws, r, 1, name, text)
    submitted = sum(counts[x] for x in RATINGS)
    keys = (*RATINGS, MISSING, UNREFLECTED) if missing else RATINGS
    for c, key in enumerate(keys, start=2):
        ws.write_number(r, c, counts[key], st.fmt[num])
    total_col = 2 + len(keys)
    ws.write_number(r, total_col, sum(counts[k] for k in keys), st.fmt[num])
    for c, key in enumerate(RATINGS, start=total_col + 1):
        if submitted:
            ws.write_number(r, c, counts[key] / submitted, st.fmt[pct])
        else:
            ws.write_blank(r, c, None, st.fmt[pct])  # no share of nothing


def merge_row(ws: Worksheet, r: int, c0: int, c1: int, fmt: Any) -> None:
    """ws.merge_range(r, c0, r, c1, "", fmt), without xlsxwriter's check that the range overlaps no
    other: it keeps a dict entry per merged cell (150,000 of them for the C/D rows of a 60,000-row
    night). Our layouts place each range once; the XML is the same (tests/test_xlsxfast.py)."""
    if ws._check_dimensions(r, c0) or ws._check_dimensions(r, c1):
        return
    ws.merge.append([r, c0, r, c1])
    ws._write(r, c0, "", fmt)
    for c in range(c0 + 1, c1 + 1):
        ws._write_blank(r, c, "", fmt)


def _cd_row(ws: Worksheet, st: _Styles, r: int, p: Project, ev: Evaluation,
            spans: Sequence[tuple[int, int]]) -> None:
    span_row(ws, st, r, spans, p, (p.name, ev.rating, ev.department, ev.result),
             ("center", "wrap", "rating", "wrap", "wrap"))


def span_row(ws: Worksheet, st: _Styles, r: int, spans: Sequence[tuple[int, int]], p: Project,
             values: Sequence[str], styles: Sequence[str]) -> None:
    """A row of a table whose columns span several sheet columns: the project's label in the first
    span, then `values`, each cell merged over its span."""
    for (c0, c1), value, style in zip(spans, (p.label, *values), styles, strict=True):
        if c1 > c0:
            merge_row(ws, r, c0, c1, st.fmt[style])
        if c0 == 0:
            st.put_project_label(ws, r, 0, p, style)
        else:
            st.put(ws, r, c0, value, style)


def span_headers(ws: Worksheet, st: _Styles, r: int, spans: Sequence[tuple[int, int]],
                 headers: Sequence[str]) -> None:
    """The heading row of such a table: each heading merged over its span."""
    for (c0, c1), h in zip(spans, headers, strict=True):
        if c1 > c0:
            merge_row(ws, r, c0, c1, st.fmt["header"])
        st.put(ws, r, c0, h, "header")


_CHART_WIDTH = 560
_CHART_GAP = 16


def _chart_width(widths: Sequence[float]) -> int:
    """Two charts side by side within the columns (7 px a unit and 5 px padding, as Excel draws
    them with the standard font), so no chart reaches past the printed columns."""
    columns_px = sum(int(w * 7 + 0.5) + 5 for w in widths)
    return min(_CHART_WIDTH, (columns_px - 8 - _CHART_GAP) // 2)


def _chart_height(categories: int) -> int:
    return max(240, 110 + 34 * categories)


def _rows_for_height(pixels: int) -> int:
    """Rows of the count sheets' default height that a chart of `pixels` covers, plus one."""
    return math.ceil(pixels / (_COUNTS_ROW_PT * 4 / 3)) + 1


# The smallest chart text on paper (labels, legend) and the chart title, in points.
CHART_TEXT_PT = 9
CHART_TITLE_PT = 11


def chart_font(size: float, scale: int = 100, **style: Any) -> dict[str, Any]:
    """A chart text's font: the UD font at `size` points on paper, for a sheet printed at
    `scale` % (a chart shrinks with its sheet), in whole points as Excel's font box has them."""
    return {"name": FONT, "size": math.ceil(size * 100 / scale), "charset": printing.FONT_CHARSET, **style}


def new_chart(wb: xlsxwriter.Workbook, options: dict[str, Any]) -> Any:
    """wb.add_chart, whose text names the UD font for East Asian and complex script text too.

    xlsxwriter writes a chart font as <a:latin> only; Excel and LibreOffice then set Japanese
    characters in the theme's or the system's East Asian font (Noto Sans CJK on Linux, 游ゴシック
    in Excel), not in the font named. The chart's own writer is given <a:ea> and <a:cs> beside
    <a:latin>, in the schema's order (latin, ea, cs)."""
    chart = wb.add_chart(options)
    write_latin = chart._write_a_latin

    def write_fonts(attributes: list[tuple[str, Any]]) -> None:
        write_latin(attributes)
        chart._xml_empty_tag("a:ea", attributes)
        chart._xml_empty_tag("a:cs", attributes)

    chart._write_a_latin = write_fonts
    return chart


def _stacked_chart(wb: xlsxwriter.Workbook, sheet: str, first: int, last: int, title: str,
                   categories: int, *, width: int = _CHART_WIDTH, scale: int = 100) -> Any:
    """A stacked bar chart of the A–D count columns of rows first..last, categories from 名称;
    its text at least CHART_TEXT_PT on paper on a sheet printed at `scale` %."""
    chart = new_chart(wb, {"type": "bar", "subtype": "stacked"})
    font = chart_font(CHART_TEXT_PT, scale)
    for c, letter in enumerate(RATINGS, start=2):
        chart.add_series(
            {
                "name": letter,
                "categories": [sheet, first, 1, last, 1],
                "values": [sheet, first, c, last, c],
                "fill": {"color": CHART_COLOURS[letter]},
                "border": {"color": "#FFFFFF"},
                "gap": 60,
                # '0;;;' hides zero labels, which would otherwise pile up on the axis
                "data_labels": {"value": True, "num_format": "0;;;",
                                "font": {**font, "color": "#FFFFFF", "bold": True}},
            }
        )
    chart.set_title({"name": title, "name_font": chart_font(CHART_TITLE_PT, scale, bold=True)})
    # Reverse so the first category is on top, reading order as in the table.
    chart.set_y_axis({"reverse": True, "num_font": font})
    chart.set_x_axis({"num_font": font, "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}}})
    chart.set_legend({"position": "bottom", "font": font})
    chart.set_size({"width": width, "height": _chart_height(categories)})
    return chart


# --- 提出状況 -----------------------------------------------------------------------------------

STATUS_HEADERS = ("課", "担当件数", "受理件数", "未提出件数", "状況", "受信ファイル数", "最終ファイル", "最終受信日時", "送信者",
                  "エラーの内容")
FILE_HEADERS = ("ファイル", "課", "状態", "受理行数", "エラー", "警告", "受信日時", "送信者", "件名")


def failed_night_text(night: dict[str, Any]) -> str:
    """One failed merge as 提出状況 lists it: 令和7年5月27日(火) 2:00 終了コード 3: 理由"""
    from pipeline.wareki import wareki_time

    return f"{wareki_time(str(night.get('started', '')))} 終了コード {night.get('exit_code')}: {night.get('message', '')}"


def _write_status(wb: xlsxwriter.Workbook, st: _Styles, result: Outcome, files: Sequence[FileVerdict],
                  header: str, *, overdue: bool = False, failed_nights: Sequence[dict[str, Any]] = ()) -> None:
    ws = wb.add_worksheet(STATUS_SHEET)
    offices = result.offices
    merge_counts: dict[str, tuple[int, int]] = {}  # file → the merge's (errors, warnings) on it
    for n in result.notes:
        errors, warnings = merge_counts.get(n.file, (0, 0))
        merge_counts[n.file] = (errors + n.is_error, warnings + (not n.is_error))
    # The file list below shares these columns: column A also holds its file names and column B
    # its offices, so both are wide enough for them (the rest wraps, with explicit heights).
    widths = [
        _fit(14, [*(o.office for o in offices), *(f.name for f in files)], cap=40),
        _fit(9, (_office_label(f) for f in files), cap=22),
        9, 10, 21 if overdue else 11, 12,
        _fit(30, (f.name for f in files), cap=60), _DATETIME_WIDTH,
        _fit(24, (s for o in offices for s in o.senders), cap=40),
        _fit(30, (o.reason for o in offices), cap=60),
    ]
    for c, width in enumerate(widths):
        ws.set_column(c, c, width)
    page = PAGE_A3
    scale = printing.print_scale(widths, page)

    def line(item: tuple[Any, ...], texts: Iterable[tuple[str, float]]) -> printing.Line:
        return printing.Line(max(_ROW_PT, _row_height(texts, exact=True)), item)

    office_lines = [line(("office", o), [(o.office, widths[0]), (_bounded(o.last_file), widths[6]),
                                         (_bounded_list(o.senders), widths[8]), (_bounded(o.reason), widths[9])])
                    for o in offices]
    if result.unattributed:
        office_lines.append(line(("unattributed",), [(_bounded_list(result.unattributed), widths[6]),
                                                     (_UNATTRIBUTED_REASON, widths[9])]))
    file_lines = [line(("file", f), [(_bounded(f.name), widths[0]), (_office_label(f), widths[1]),
                                     (_bounded(f.sender), widths[7]), (_bounded(f.subject), widths[8])])
                  for f in files]
    if not files:
        file_lines = [printing.Line(_ROW_PT, ("empty",))]
    blocks = [
        printing.Block([line(("header", STATUS_HEADERS), zip(STATUS_HEADERS, widths, strict=True)), *office_lines],
                       header=1),
        printing.Block([_spacer()]),
        # The nights that failed since the last master: no one may have seen their exit code.
        *([printing.Block([printing.Line(_ROW_PT, ("failed-section",)),
                           *(printing.Line(_ROW_PT, ("failed", n)) for n in failed_nights)], header=1),
           printing.Block([_spacer()])] if failed_nights else []),
        # Every file this run read, so a department's "I sent it" can be answered from the sheet.
        printing.Block([printing.Line(_ROW_PT, ("section",)),
                        line(("header", FILE_HEADERS), zip(FILE_HEADERS, widths[:len(FILE_HEADERS)], strict=True)),
                        *file_lines], header=2),
    ]
    layout = printing.paginate(blocks, printing.capacity_pt(page, scale))
    office_rows: list[int] = []

    def write(placed: printing.Placed) -> None:
        r, item = placed.row, placed.line.item
        if item is None:
            return
        kind = item[0]
        if kind == "header":
            for c, h in enumerate(item[1]):
                st.put(ws, r, c, h, "header")
        elif kind == "section":
            st.put(ws, r, 0, "受信ファイル一覧", "section")
        elif kind == "failed-section":
            st.put(ws, r, 0, f"前回の集約から後に失敗した夜間集約({len(failed_nights)} 回)", "section")
        elif kind == "failed":
            st.put(ws, r, 0, failed_night_text(item[1]), "text")
        elif kind == "empty":
            st.put(ws, r, 0, "受信ファイルはありません。", "empty")
        elif kind == "office":
            office_rows.append(r)
            _status_office_row(ws, st, r, item[1], overdue=overdue)
        elif kind == "unattributed":
            office_rows.append(r)
            _status_unattributed_row(ws, st, r, result.unattributed)
        elif kind == "file":
            _status_file_row(ws, st, r, item[1], result, merge_counts.get(item[1].name, (0, 0)))

    _write_layout(ws, layout, write)
    last = max(office_rows, default=1)
    ws.autofilter(0, 0, last, len(STATUS_HEADERS) - 1)
    ws.freeze_panes(1, 1)
    for status, (bg, fg) in STATUS_COLOURS.items():
        ws.conditional_format(1, 4, last, 4, {"type": "cell", "criteria": "==", "value": f'"{status}"',
                                              "format": wb.add_format({"bg_color": bg, "font_color": fg})})
    ws.conditional_format(1, 4, last, 4, {"type": "text", "criteria": "begins with", "value": f"{STATUS_ACCEPTED}(",
                                          "format": wb.add_format({"bg_color": STATUS_COLOURS[STATUS_ACCEPTED][0],
                                                                   "font_color": "#833C0C"})})
    if overdue:
        ws.conditional_format(1, 4, last, 4, {"type": "text", "criteria": "begins with", "value": STATUS_OVERDUE,
                                              "format": wb.add_format({"bg_color": "#FF0000", "font_color": "#FFFFFF",
                                                                       "bold": True})})
    # No print titles: the two tables have different headings, and each repeats its own
    # (section title and headings) at the top of every page it continues on.
    _setup_print(ws, header, page=page, scale=scale, breaks=layout.breaks)


_UNATTRIBUTED_REASON = "提出した課を確認できません(テンプレート・送信元・ファイル名に課名がない)"


def _status_office_row(ws: Worksheet, st: _Styles, r: int, o: Any, *, overdue: bool = False) -> None:
    st.put(ws, r, 0, o.office, "wrap")
    for c, n in ((1, o.assignments), (2, o.valid), (3, o.missing)):
        ws.write_number(r, c, n, st.fmt["int"])
    st.put(ws, r, 4, o.shown(overdue), "center")
    ws.write_number(r, 5, o.received, st.fmt["int"])
    st.put(ws, r, 6, _bounded(o.last_file), "wrap")
    st.put_time(ws, r, 7, o.last_time)
    st.put(ws, r, 8, _bounded_list(o.senders), "wrap")
    st.put(ws, r, 9, _bounded(o.reason), "wrap")


def _status_unattributed_row(ws: Worksheet, st: _Styles, r: int, names: Sequence[str]) -> None:
    # Files whose office could not be told: on a line of their own, never counted for an office.
    st.put(ws, r, 0, UNATTRIBUTED, "wrap")
    for c in (1, 2, 3):
        st.put(ws, r, c, NO_VALUE, "center")
    st.put(ws, r, 4, UNATTRIBUTED, "center")
    ws.write_number(r, 5, len(names), st.fmt["int"])
    st.put(ws, r, 6, _bounded_list(names), "wrap")
    for c in (7, 8):
        st.put(ws, r, c, "", "text")
    st.put(ws, r, 9, _UNATTRIBUTED_REASON, "wrap")


def _office_label(f: FileVerdict) -> str:
    """The 課 of a file in the list: its office, 差出課不明 for a return of no known office, and a
    dash for what was not read at all (a lock file, an excluded folder: nobody's return)."""
    return f.office or (NO_VALUE if f.status == "ignored" else UNATTRIBUTED)


def _status_file_row(ws: Worksheet, st: _Styles, r: int, f: FileVerdict, result: Outcome,
                     merge_counts: tuple[int, int]) -> None:
    st.put(ws, r, 0, _bounded(f.name), "wrap")
    st.put(ws, r, 1, _office_label(f), "wrap")
    status = result.statuses.get(f.name, f.status)
    label = FILE_STATUS_LABELS.get(status, status)
    if status == "ignored":  # why, by its code (the message in 検証結果 says what to do)
        why = next((i.code for i in f.issues if i.code.startswith("ignored-") or i.code == "own-output"), "")
        label = f"{label}({why})" if why else label
    st.put(ws, r, 2, label, "center")
    ws.write_number(r, 3, len(f.rows), st.fmt["int"])
    # Every issue of the file, as 検証結果 and the run report list them: the verdict's own and the
    # merge's notes on it (`merge_counts`: errors, warnings; the text checks' warnings among them).
    ws.write_number(r, 4, len(f.errors) + merge_counts[0], st.fmt["int"])
    ws.write_number(r, 5, len(f.warnings) + merge_counts[1], st.fmt["int"])
    st.put_time(ws, r, 6, f.received)
    st.put(ws, r, 7, _bounded(f.sender), "wrap")
    st.put(ws, r, 8, _bounded(f.subject), "wrap")


# --- 検証結果 -----------------------------------------------------------------------------------

ISSUE_HEADERS = ("ファイル", "シート", "セル", "コード", "重要度", "内容")


def _write_issues(wb: xlsxwriter.Workbook, st: _Styles, issues: Sequence[Issue], header: str,
                  acknowledged: Sequence[Acknowledged] = ()) -> None:
    ws = wb.add_worksheet(ISSUES_SHEET)
    widths = (_fit(30, (i.file for i in issues), cap=50), 14, 8, 22, 9, 90)
    for c, width in enumerate(widths):
        ws.set_column(c, c, width)
    for c, h in enumerate(ISSUE_HEADERS):
        st.put(ws, 0, c, h, "header")
    ws.set_row(0, _ROW_PT)
    for r, i in enumerate(issues, start=1):
        file, sheet, message = _bounded(i.file), _bounded(i.sheet), _bounded(i.message)
        st.put(ws, r, 0, file, "wrap")
        st.put(ws, r, 1, sheet, "wrap")
        st.put(ws, r, 2, _bounded(i.cell), "center")
        st.put(ws, r, 3, i.code, "wrap")
        st.put(ws, r, 4, SEVERITY_LABELS.get(i.severity, i.severity), "center")
        st.put(ws, r, 5, message, "wrap")
        # Whole on paper: every wrapped cell's lines, at an explicit height (LibreOffice and
        # print preview do not grow rows by themselves).
        ws.set_row(r, max(_ROW_PT, _row_height(((file, widths[0]), (sheet, widths[1]), (i.code, widths[3]),
                                                (message, widths[5])), exact=True)))
    if not issues:
        st.put(ws, 1, 0, "問題はありません。", "empty")
    last = max(len(issues), 1)
    ws.autofilter(0, 0, last, len(ISSUE_HEADERS) - 1)
    ws.freeze_panes(1, 0)
    for label, (bg, fg) in SEVERITY_COLOURS.items():
        ws.conditional_format(1, 4, last, 4, {"type": "cell", "criteria": "==", "value": f'"{label}"',
                                              "format": wb.add_format({"bg_color": bg, "font_color": fg})})
    if acknowledged:
        _write_acknowledged(ws, st, last + 2, acknowledged)
    _setup_print(ws, header, repeat=0)


# --- helpers ----------------------------------------------------------------------------------


def _rating_colours(st: _Styles, ws: Worksheet, r0: int, c0: int, r1: int, c1: int) -> None:
    """One conditional format per letter over the whole rating range (never per row)."""
    for letter, fmt in st.rating_dxf.items():
        ws.conditional_format(r0, c0, r1, c1, {"type": "cell", "criteria": "==", "value": f'"{letter}"',
                                               "format": fmt})


# The text rules live in pipeline.celltext (shared with the templates and the feedback copies);
# these names keep the master's call sites short.
_needs_quote = celltext.needs_quote
_utf16_len = celltext.utf16_len
_HALF_LIMIT = EXCEL_MAX_CHARS // 2  # a text this short always fits


def _bounded(text: str) -> str:
    """One of our texts (a file name, a message, a reason), cut to fit a cell when it must."""
    return text if len(text) <= _HALF_LIMIT else celltext.bounded_text(text)


def _bounded_list(items: Sequence[str]) -> str:
    """Our list (file names, senders) in one cell, one per line, with 「ほか N 件」 when it must."""
    return celltext.bounded_list(items, "\n")


def _too_long(text: str) -> bool:
    return not celltext.fits_in_cell(text)


def _fit(minimum: float, texts: Iterable[str], *, cap: float) -> float:
    return celltext.fit_width(minimum, texts, cap=cap)


def _row_height(cells: Iterable[tuple[str, float]], *, min_lines: int = 1, exact: bool = False) -> float:
    """Points for a row of wrapped cells: celltext's fast estimate at the master's font size
    (`exact`: measured widths, for short texts), rounded up to whole pixels. Set explicitly: not
    every reader (LibreOffice, viewers, print preview of a never-edited file) grows rows to fit
    wrapped text by itself, and the page breaks are planned from these heights."""
    return printing.snap(celltext.row_height(cells, FONT_SIZE, min_lines=min_lines, exact=exact))


def _parse_time(iso: str) -> datetime | None:
    if not iso:
        return None
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return None
    # Wall-clock time as received (JST); Excel has no time zones.
    return when.replace(tzinfo=None)


def _display_time(iso: str) -> str:
    when = _parse_time(iso)
    return when.strftime("%Y-%m-%d %H:%M") if when else iso


def _escape_header(text: str) -> str:
    return text.replace("&", "&&")


def _cell(row: int, col: int) -> str:
    return xl_rowcol_to_cell(row, col)


# --- 前年度比較 (last year beside this year) ---------------------------------------------------------
# One sheet in the master (after 集計) and one in the summary (last), only when last year is known.
# Values come from pipeline.compare; every text goes through _Styles.put, counts are numbers, no
# formula. Master layout, top to bottom: per 基本目標 the 4×4 transition table (rows: last year's
# A–D, columns: this year's), the assignments that fell to C or D with this year's reason, then
# (on a new printed page) every assignment in plan order with both ratings and the change.

_CMP_WIDTHS = (8, 32, 24, 11, 11, 11, 11, 11, 48)  # A..I; the reason of the fell list spans G:I
_CMP_LIST_COLUMNS = 6  # 事業No., 個別事業・取り組み, 担当課, 前年度評価, 今年度評価, 変化
_CMP_REASON = (6, 8)
_TRANSITION_LABEL_COL = 2  # 前年度 A… in C, this year's A–D in D..G, 合計 in H
_CHANGE_COLOURS = {UP: ("#C6EFCE", "#006100"), DOWN: ("#FFC7CE", "#9C0006")}
_TRANSITION_FILLS = {"same": "#F2F2F2", "better": "#E2EFDA", "worse": "#FCE4D6"}


def _comparison_notes(c: YearComparison) -> list[str]:
    source = Path(c.source).name or c.source
    return [
        f"前年度({c.previous_label})の評価: {source}。評価は A が最もよく、↑ 改善・↓ 低下・→ 変化なし。",
        "今年度の計画の事業・担当課について比べています。前年度の評価がないもの(新規を含む)と"
        "今年度の評価がないもの(未提出: 課から届いていない、未反映: 届いたがエラーなどで反映されていない)は、"
        "推移の表に含みません。",
    ]


def _write_comparison(wb: xlsxwriter.Workbook, st: _Styles, catalog: Catalog, c: YearComparison,
                      header: str) -> None:
    ws = wb.add_worksheet(COMPARISON_SHEET)
    for col, width in enumerate(_CMP_WIDTHS):
        ws.set_column(col, col, width)
    # 新規 / — / 未提出 where a rating would be: grey italic, centred (only our fixed words go here)
    st.fmt.setdefault("missing_center", wb.add_format({**_FORMATS["missing"], "align": "center"}))
    st.put(ws, 0, 0, f"{catalog.title} 前年度比較({c.previous_label} → {c.label})", "title")
    ws.set_row(0, 24)
    for i, note in enumerate(_comparison_notes(c), start=1):
        st.put(ws, i, 0, note, "note")
    row = 4
    cell_formats = {
        kind: wb.add_format({**_BORDER, **_TOP, "align": "center", "num_format": "0", "bg_color": colour})
        for kind, colour in _TRANSITION_FILLS.items()
    }
    for g in c.goals:
        row = _transition_table(ws, st, row, g, c, cell_formats) + 1
    row = _transition_table(ws, st, row, whole_plan(c), c, cell_formats, title=f"{catalog.title}全体") + 1
    row = _fell_table(ws, st, row, catalog, c) + 1

    # Every assignment, on a page of its own, filterable.
    ws.set_h_pagebreaks([row])
    st.put(ws, row, 0, "事業・担当課別の比較", "section")
    head = row + 1
    titles = ("事業No.", "個別事業・取り組み", "担当課", f"前年度評価\n({c.previous_label})",
              f"今年度評価\n({c.label})", "変化")
    for col, title in enumerate(titles):
        st.put(ws, head, col, title, "header")
    ws.set_row(head, _row_height(zip(titles, _CMP_WIDTHS, strict=False)))
    r = head + 1
    for ch in c.changes:
        p = catalog.projects[ch.project]
        st.put_project_label(ws, r, 0, p, "center")
        st.put(ws, r, 1, p.name, "wrap")
        st.put(ws, r, 2, ch.department, "wrap")
        st.put(ws, r, 3, ch.previous_text, "rating" if ch.previous else "missing_center")
        st.put(ws, r, 4, ch.current_text, "rating" if ch.current else "missing_center")
        st.put(ws, r, 5, ch.change_text, "rating")
        ws.set_row(r, _row_height(((p.name, _CMP_WIDTHS[1]), (ch.department, _CMP_WIDTHS[2]))))
        r += 1
    last = max(r - 1, head + 1)
    ws.autofilter(head, 0, last, _CMP_LIST_COLUMNS - 1)
    _rating_colours(st, ws, head + 1, 3, last, 4)
    for arrow, (bg, fg) in _CHANGE_COLOURS.items():
        ws.conditional_format(head + 1, 5, last, 5, {"type": "cell", "criteria": "==", "value": f'"{arrow}"',
                                                     "format": wb.add_format({"bg_color": bg, "font_color": fg})})
    _setup_print(ws, header)


def whole_plan(c: YearComparison) -> GoalComparison:
    """The goals' comparisons added up: the whole plan's transitions and counts."""
    transitions = {b: {a: sum(g.transitions[b][a] for g in c.goals) for a in RATINGS} for b in RATINGS}
    previous = {x: sum(g.previous[x] for g in c.goals) for x in RATINGS}
    current = {x: sum(g.current[x] for g in c.goals) for x in RATINGS}
    return GoalComparison(0, "", transitions, previous, current, no_previous=sum(g.no_previous for g in c.goals),
                          new=sum(g.new for g in c.goals), not_returned=sum(g.not_returned for g in c.goals),
                          unreflected=sum(g.unreflected for g in c.goals))


def _transition_table(ws: Worksheet, st: _Styles, row: int, g: Any, c: YearComparison,
                      cell_formats: dict[str, Any], *, title: str = "") -> int:
    """One goal's (or with `title`, the whole plan's) 4×4 table with totals. Returns the next free row."""
    lc = _TRANSITION_LABEL_COL
    st.put(ws, row, 0, f"{title or f'基本目標{g.goal} {g.name}'}: 評価の推移(件数)", "section")
    head = row + 1
    st.put(ws, head, lc, f"前年度＼今年度({c.label})", "header")
    for j, letter in enumerate(RATINGS):
        st.put(ws, head, lc + 1 + j, letter, "header")
    st.put(ws, head, lc + 1 + len(RATINGS), "合計", "header")
    r = head + 1
    for i, before in enumerate(RATINGS):
        st.put(ws, r, lc, f"前年度 {before}", "total_text")
        for j, after in enumerate(RATINGS):
            kind = "same" if i == j else "better" if j < i else "worse"
            ws.write_number(r, lc + 1 + j, g.transitions[before][after], cell_formats[kind])
        ws.write_number(r, lc + 1 + len(RATINGS), sum(g.transitions[before].values()), st.fmt["total_int"])
        r += 1
    st.put(ws, r, lc, "合計", "total_text")
    for j, after in enumerate(RATINGS):
        ws.write_number(r, lc + 1 + j, sum(g.transitions[b][after] for b in RATINGS), st.fmt["total_int"])
    ws.write_number(r, lc + 1 + len(RATINGS), g.compared, st.fmt["total_int"])
    r += 1
    new = f"(うち新規 {g.new} 件)" if g.new else ""
    st.put(ws, r, lc, f"表に含まないもの: 前年度の評価なし {g.no_previous} 件{new}・今年度未提出 {g.not_returned} 件"
                      f"・未反映 {g.unreflected} 件", "note")
    return r + 1


def _fell_table(ws: Worksheet, st: _Styles, row: int, catalog: Catalog, c: YearComparison) -> int:
    """The assignments that fell to C or D, with this year's reason (merged over G:I)."""
    st.put(ws, row, 0, "C・D に下がった事業・担当課", "section")
    head = row + 1
    titles = ("事業No.", "個別事業・取り組み", "担当課", f"前年度評価\n({c.previous_label})",
              f"今年度評価\n({c.label})", "変化", f"事業実績・評価理由({c.label})")
    c0, c1 = _CMP_REASON
    reason_width = sum(_CMP_WIDTHS[c0:c1 + 1])
    ws.merge_range(head, c0, head, c1, "", st.fmt["header"])
    for col, title in enumerate(titles):
        st.put(ws, head, col, title, "header")
    ws.set_row(head, _row_height(zip(titles, (*_CMP_WIDTHS[:c0], reason_width), strict=True)))
    r = head + 1
    fell = c.fell
    for ch in fell:
        p = catalog.projects[ch.project]
        st.put_project_label(ws, r, 0, p, "center")
        st.put(ws, r, 1, p.name, "wrap")
        st.put(ws, r, 2, ch.department, "wrap")
        st.put(ws, r, 3, ch.previous_text, "rating")
        st.put(ws, r, 4, ch.current_text, "rating")
        st.put(ws, r, 5, ch.change_text, "rating")
        ws.merge_range(r, c0, r, c1, "", st.fmt["wrap"])
        st.put(ws, r, c0, ch.result, "wrap")
        ws.set_row(r, _row_height(((p.name, _CMP_WIDTHS[1]), (ch.department, _CMP_WIDTHS[2]),
                                   (ch.result, reason_width))))
        r += 1
    if not fell:
        st.put(ws, r, 0, "C・D に下がった事業・担当課はありません。", "empty")
        r += 1
    else:
        _rating_colours(st, ws, head + 1, 3, r - 1, 4)
    return r


def _write_comparison_summary(wb: xlsxwriter.Workbook, st: _Styles, catalog: Catalog, c: YearComparison,
                              header: str) -> None:
    """The summary's 前年度比較: per goal, A–D counts of both years over the assignments rated in
    both (so 増減 is rating changes only, and 前年度 A is the master's 前年度 A), what that leaves
    out, and a clustered bar chart of the two years; one printed page per goal."""
    ws = wb.add_worksheet(COMPARISON_SHEET)
    for col, width in enumerate((12, 18, 18, 10)):
        ws.set_column(col, col, width)
    ws.set_default_row(_COUNTS_ROW_PT)  # so the charts land where planned (see _setup_counts_sheet)
    ws.set_row(0, 24)
    _setup_print(ws, header, page=PAGE_A4)
    st.put(ws, 0, 0, f"{catalog.title} 前年度比較({c.previous_label} → {c.label})", "title")
    notes = [_comparison_notes(c)[0], "件数は、今年度の計画にあり両年度に評価のある事業・担当課のものです"
                                      "(増減は評価の変化だけ。今年度の評価がないものは表の下に)。"]
    for i, note in enumerate(notes, start=1):
        st.put(ws, i, 0, note, "note")
    row = 3
    for letter, meaning in catalog.ratings.items():
        st.put(ws, row, 0, f"{letter}: {meaning}", "note")
        row += 1
    row += 1
    diff = st.wb.add_format({**_BORDER, **_TOP, "align": "center", "num_format": "+0;-0;0"})
    chart_height = 280
    breaks = []
    for k, g in enumerate(c.goals):
        if k:
            breaks.append(row)
        st.put(ws, row, 0, f"基本目標 {g.goal} {g.name}", "section")
        head = row + 1
        for col, title in enumerate(("評価", f"前年度({c.previous_label})", f"今年度({c.label})", "増減")):
            st.put(ws, head, col, title, "header")
        first = head + 1
        before = {x: sum(g.transitions[x].values()) for x in RATINGS}
        after = {x: sum(g.transitions[b][x] for b in RATINGS) for x in RATINGS}
        for i, letter in enumerate(RATINGS):
            r = first + i
            st.put(ws, r, 0, letter, "rating")
            ws.write_number(r, 1, before[letter], st.fmt["int"])
            ws.write_number(r, 2, after[letter], st.fmt["int"])
            ws.write_number(r, 3, after[letter] - before[letter], diff)
        last = first + len(RATINGS) - 1
        total = last + 1
        st.put(ws, total, 0, "合計", "total_text")
        ws.write_number(total, 1, g.compared, st.fmt["total_int"])
        ws.write_number(total, 2, g.compared, st.fmt["total_int"])
        ws.write_number(total, 3, 0, st.fmt["total_int"])
        _rating_colours(st, ws, first, 0, last, 0)
        st.put(ws, total + 1, 0, f"表に含まないもの: 前年度の評価なし {g.no_previous} 件・今年度未提出 {g.not_returned} 件"
                                 f"・未反映 {g.unreflected} 件", "note")
        chart = _clustered_chart(wb, ws.name, head, first, last, f"基本目標{g.goal} 評価別の件数", chart_height)
        ws.insert_chart(head, 5, chart, {"object_position": 1})
        row = head + max(total + 3 - head, _rows_for_height(chart_height)) + 1
    if breaks:
        ws.set_h_pagebreaks(breaks)


def _clustered_chart(wb: xlsxwriter.Workbook, sheet: str, head: int, first: int, last: int, title: str,
                     height: int) -> Any:
    """Columns of last year (grey) and this year (blue) side by side, one group per rating."""
    chart = new_chart(wb, {"type": "column"})  # clustered is xlsxwriter's default column subtype
    font = chart_font(CHART_TEXT_PT)  # the sheet prints one page wide: at 100 % (chart and columns fit A4)
    for col, colour in ((1, "#A6A6A6"), (2, "#5B9BD5")):
        chart.add_series(
            {
                "name": [sheet, head, col],
                "categories": [sheet, first, 0, last, 0],
                "values": [sheet, first, col, last, col],
                "fill": {"color": colour},
                "border": {"color": colour},
                "gap": 80,
                "data_labels": {"value": True, "num_format": "0;;;", "font": font},
            }
        )
    chart.set_title({"name": title, "name_font": chart_font(CHART_TITLE_PT, bold=True)})
    chart.set_x_axis({"num_font": font})
    chart.set_y_axis({"num_font": font, "min": 0, "num_format": "0",
                      "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}}})
    chart.set_legend({"position": "bottom", "font": font})
    chart.set_size({"width": 480, "height": height})
    return chart


# --- 検証結果: acknowledged warnings ---------------------------------------------------------------

ACKNOWLEDGED_TITLE = "確認済みの警告(schemas/acknowledged.yaml)"
ACKNOWLEDGED_LABEL = "確認済み"


def _write_acknowledged(ws: Worksheet, st: _Styles, row: int, acknowledged: Sequence[Acknowledged]) -> int:
    """Below the open issues, set apart: the text-check warnings staff accepted, with who and why.
    Same columns as the issues (重要度 reads 確認済み), so the two read alike. Returns the next row."""
    st.put(ws, row, 0, ACKNOWLEDGED_TITLE, "section")
    st.put(ws, row + 1, 0, "記述の点検で警告になり、地域福祉課が確認のうえ、このままで正しいとしたものです。"
                           "未対応の警告には数えません。", "note")
    head = row + 2
    for c, h in enumerate(ISSUE_HEADERS):
        st.put(ws, head, c, h, "header")
    r = head + 1
    for a in acknowledged:
        i = a.issue
        st.put(ws, r, 0, _bounded(i.file), "wrap")
        st.put(ws, r, 1, _bounded(i.sheet), "text")
        st.put(ws, r, 2, _bounded(i.cell), "center")
        st.put(ws, r, 3, i.code, "text")
        st.put(ws, r, 4, ACKNOWLEDGED_LABEL, "center")
        st.put(ws, r, 5, _bounded(f"{i.message}\n確認: {a.who} {NO_VALUE} {a.why}"), "wrap")
        r += 1
    return r
