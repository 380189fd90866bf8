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
  A longer text raises ValueError before anything is written, instead of being silently
  truncated.
* Determinism. The document properties use a fixed `created` (1 April of the plan's fiscal
  year), never now(). xlsxwriter stamps every zip entry with 1980-01-01 whatever `created`
  is, and docProps/core.xml is the only part that holds a time. So the same inputs,
  including `generated`, give byte-identical files (tested).
* Speed. About 20 format objects are made once and reused. Rating and status colours are
  one conditional format per colour over the whole column, never per row. Look-ups are
  dicts built once, so a 60k-row plan stays linear. constant_memory is not used: each sheet
  is written in row order, but the goal sheets repeat 評価一覧's long texts, and the
  shared-string table stores those only once.
* Japanese layout. BIZ UDPゴシック is the workbook default font, with no theme "scheme"
  (otherwise Excel would show the theme's font). Column widths count a full-width
  character as 2. Long columns wrap. Row heights are estimated from the text and set
  explicitly: not every reader grows wrapped rows by itself (LibreOffice, viewers, print
  preview), and Excel never grows merged cells. The count sheets pin their default row height
  so the charts land where planned. Sheets print on A3 landscape (the summary on A4) at one page wide, with
  repeated header rows and "&P / &N" page numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xlsxwriter
from xlsxwriter.utility import xl_rowcol_to_cell
from xlsxwriter.worksheet import Worksheet

from pipeline import celltext
from pipeline.catalog import Catalog, Project
from pipeline.celltext import EXCEL_MAX_CHARS
from pipeline.compare import DOWN, UP, YearComparison, compare_years
from pipeline.layout import OUTPUT_PROPERTY, output_mark
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

FONT = "BIZ UDPゴシック"
FONT_SIZE = 11
MISSING_MARK = "(未提出)"
MISSING = "未提出"

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
    # Excel itself writes for Japanese fonts.
    "default_format_properties": {
        "font_name": FONT,
        "font_size": FONT_SIZE,
        "font_scheme": "none",
        "font_charset": 128,
        "font_family": 3,
    },
}

_DATETIME_FORMAT = "yyyy/mm/dd hh:mm"
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


# --- names --------------------------------------------------------------------------------


def master_name(catalog: Catalog) -> str:
    """The master's file name: "地域福祉計画_評価集約_R6.xlsx"."""
    return f"{catalog.plan}_評価集約_{catalog.year}.xlsx"


def summary_name(catalog: Catalog) -> str:
    """The committee summary's file name: "地域福祉計画_評価集計_R6.xlsx"."""
    return f"{catalog.plan}_評価集計_{catalog.year}.xlsx"


def goal_sheet_name(goal_number: int) -> str:
    return f"基本目標{goal_number}"


def master_sheets(catalog: Catalog, *, comparison: bool = False) -> tuple[str, ...]:
    """The master's sheet names for this catalog (MASTER_SHEETS is the R6 shape); `comparison`:
    with last year known, 前年度比較 follows 集計."""
    return (LIST_SHEET, *(goal_sheet_name(g.number) for g in catalog.goals), SUMMARY_SHEET,
            *((COMPARISON_SHEET,) if comparison else ()), STATUS_SHEET, ISSUES_SHEET)


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
) -> None:
    """Write the complete master workbook to exactly `path`. With `previous` (last year's
    evaluations, pipeline.history), a 前年度比較 sheet follows 集計.

    With `today` after `deadline`, 提出状況 marks each office that still owes answers 期限超過
    (its 状況 reads 期限超過(未提出)); without either, nothing is marked.

    Raises ValueError (before anything is written) when a text exceeds Excel's 32,767-character
    cell limit or a row is not an assignment of the catalog.
    """
    check_rows(catalog, result.rows)
    wb = _new_workbook(path, catalog, "評価集約", "master", generated)
    st = _Styles(wb)
    tally = _Tally(catalog, result.rows)
    header = _page_header(catalog, generated)
    _write_list(wb, st, catalog, result.rows, header)
    for goal in catalog.goals:
        _write_goal_sheet(wb, st, catalog, goal.number, tally, header)
    _write_summary_sheet(wb, st, catalog, tally, result.rows, generated, header)
    if previous is not None:
        _write_comparison(wb, st, catalog, compare_years(catalog, result.rows, previous), header)
    overdue = today is not None and deadline is not None and today > deadline
    _write_status(wb, st, result, files, header, overdue=overdue)
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
    tally = _Tally(catalog, result.rows)
    header = _page_header(catalog, generated)
    for goal in catalog.goals:
        g = goal.number
        ws = wb.add_worksheet(goal_sheet_name(g))
        _setup_counts_sheet(ws, header, paper=9)
        st.put(ws, 0, 0, f"{catalog.title} {catalog.year_label} 評価集計", "title")
        st.put(ws, 1, 0, f"基本目標 {g} {goal.name}", "section")
        st.put(ws, 2, 0, f"最新受信 {_display_time(generated)}", "note")
        row = 3
        for letter, meaning in catalog.ratings.items():
            st.put(ws, row, 0, f"{letter}: {meaning}", "note")
            row += 1
        row += 1
        directions = [d for d in catalog.directions if d.goal == g]
        row, _, _ = _count_table(
            ws, st, row, "施策の方向性別",
            [(d.code, d.name, tally.direction[(g, d.number)]) for d in directions],
            total=("合計", f"基本目標{g}", tally.goal[g]),
        )
        measures = [m for m in catalog.measures if m.goal == g]
        row, first, last = _count_table(
            ws, st, row + 1, "施策別",
            [(m.code, m.name, tally.measure[(g, m.direction, m.number)]) for m in measures],
        )
        chart = _stacked_chart(wb, ws.name, first, last, f"基本目標{g} 施策別の評価", len(measures))
        ws.insert_chart(row + 1, 0, chart, {"object_position": 1})
        row += 2 + _rows_for_height(_chart_height(len(measures)))
        _cd_table(ws, st, row, catalog, [r for r in result.rows if catalog.goal_of(r.project) == g])
    if previous is not None:
        _write_comparison_summary(wb, st, catalog, compare_years(catalog, result.rows, previous), header)
    wb.close()


# --- shared pieces --------------------------------------------------------------------------


class _Styles:
    """The workbook's few formats, made once; `put` picks the quote-prefixed twin when needed."""

    def __init__(self, wb: xlsxwriter.Workbook) -> None:
        self.wb = wb
        self.fmt = {name: wb.add_format(props) for name, props in _FORMATS.items()}
        self._quoted: dict[str, Any] = {}
        # Conditional-format (dxf) formats: fill and dark text only, so the cell's font stays.
        self.rating_dxf = {x: wb.add_format({"bg_color": bg, "font_color": fg})
                           for x, (bg, fg) in RATING_COLOURS.items()}

    def quoted(self, name: str) -> Any:
        if name not in self._quoted:
            self._quoted[name] = self.wb.add_format({**_FORMATS[name], "quote_prefix": True})
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


class _Tally:
    """A/B/C/D/未提出 counts per goal, direction, measure and 担当課, from one pass over the plan."""

    def __init__(self, catalog: Catalog, rows: Iterable[Evaluation]) -> None:
        self.by_key = {r.key: r for r in rows}
        self.goal: dict[int, dict[str, int]] = {g.number: _zero() for g in catalog.goals}
        self.direction = {(d.goal, d.number): _zero() for d in catalog.directions}
        self.measure = {(m.goal, m.direction, m.number): _zero() for m in catalog.measures}
        self.department: dict[str, dict[str, int]] = {}
        self.office_of: dict[str, str] = {}
        for a in catalog.assignments:
            p = catalog.projects[a.project]
            row = self.by_key.get(a.key)
            bucket = row.rating if row is not None else MISSING
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
    return {**dict.fromkeys(RATINGS, 0), MISSING: 0}


def _new_workbook(path: Path, catalog: Catalog, kind: str, mark: str, generated: str) -> xlsxwriter.Workbook:
    wb = xlsxwriter.Workbook(str(path), _WORKBOOK_OPTIONS)
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


def _setup_print(ws: Worksheet, header: str, *, paper: int = 8, repeat: int | None = None) -> None:
    ws.set_paper(paper)  # 8 = A3, 9 = A4
    ws.set_landscape()
    ws.fit_to_pages(1, 0)  # one page wide, as many tall as needed: robust to printer drivers
    ws.set_margins(left=0.4, right=0.4, top=0.75, bottom=0.6)
    ws.set_header(header)
    ws.set_footer("&C&P / &N")
    if repeat is not None:
        ws.repeat_rows(repeat)


def check_rows(catalog: Catalog, rows: Iterable[Evaluation]) -> None:
    """Reject, before writing, what would otherwise be silently wrong in the workbook. The runner
    calls it file by file first, so a file whose rows cannot be written is set aside alone."""
    keys = {a.key for a in catalog.assignments}
    for r in rows:
        if r.key not in keys:
            raise ValueError(f"事業No.{r.project}・担当課「{r.department}」は計画の割り当てにありません。")
        for column, text in (
            ("事業実績・評価理由", r.result),
            ("今後の事業計画・展望", r.outlook),
            ("担当課", r.department),
            ("提出ファイル", r.file),
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
        ("事業No.", 8),
        ("個別事業・取り組み", 28),
        ("内容", 50),
        ("担当課", 20),
        (f"事業実績・評価理由 ({catalog.year_label})", 60),
        ("事業評価", 9),
        ("今後の事業計画・展望", 60),
        ("提出ファイル", 30),
        ("受信日時", 17),
    ]


def _write_list(wb: xlsxwriter.Workbook, st: _Styles, catalog: Catalog,
                rows: Sequence[Evaluation], header: str) -> None:
    ws = wb.add_worksheet(LIST_SHEET)
    columns = list_columns(catalog)
    widths = [w for _, w in columns]
    widths[5] = _fit(widths[5], (a.department for a in catalog.assignments), cap=30)
    widths[9] = _fit(widths[9], {r.file for r in rows}, cap=44)
    for c, ((title, _), width) in enumerate(zip(columns, widths, strict=True)):
        ws.set_column(c, c, width)
        st.put(ws, 0, c, title, "header")
    projects = catalog.projects
    put, put_time, put_label = st.put, st.put_time, st.put_project_label
    write_number, f_int = ws.write_number, st.fmt["int"]
    for i, r in enumerate(rows, start=1):
        p = projects[r.project]
        write_number(i, 0, p.goal, f_int)
        put(ws, i, 1, p.measure_code, "center")
        put_label(ws, i, 2, p, "center")
        put(ws, i, 3, p.name, "wrap")
        put(ws, i, 4, p.content, "wrap")
        put(ws, i, 5, r.department, "wrap")
        put(ws, i, 6, r.result, "wrap")
        put(ws, i, 7, r.rating, "rating")
        put(ws, i, 8, r.outlook, "wrap")
        put(ws, i, 9, r.file, "wrap")
        put_time(ws, i, 10, r.received)
        ws.set_row(i, _row_height(((p.name, widths[3]), (p.content, widths[4]), (r.result, widths[6]),
                                   (r.outlook, widths[8]))))
    last = max(len(rows), 1)
    ws.autofilter(0, 0, last, len(columns) - 1)
    ws.freeze_panes(1, 4)  # header row, and 基本目標…個別事業 stay visible while scrolling right
    _rating_colours(st, ws, 1, 7, last, 7)
    _setup_print(ws, header, repeat=0)


# --- 基本目標N ---------------------------------------------------------------------------------

GOAL_COLUMNS = ("施策No.", "事業No.", "【個別事業・取り組み】", "内容", "担当課", "事業実績・評価理由", "事業評価",
                "今後の事業計画・展望")
_GOAL_WIDTHS = (9, 8, 24, 44, 18, 56, 9, 52)


def goal_columns(catalog: Catalog) -> list[str]:
    """The eight columns of the published table, with this year's label on 事業実績・評価理由."""
    cols = list(GOAL_COLUMNS)
    cols[5] = f"事業実績・評価理由 ({catalog.year_label})"
    return cols


def _write_goal_sheet(wb: xlsxwriter.Workbook, st: _Styles, catalog: Catalog, g: int,
                      tally: _Tally, header: str) -> None:
    goal = next(x for x in catalog.goals if x.number == g)
    ws = wb.add_worksheet(goal_sheet_name(g))
    for c, width in enumerate(_GOAL_WIDTHS):
        ws.set_column(c, c, width)
    last_col = len(_GOAL_WIDTHS) - 1

    # The goal and its structure, as printed above each goal's table.
    st.put(ws, 0, 0, f"基本目標 {g} {goal.name}", "title")
    row = 2
    for d in (x for x in catalog.directions if x.goal == g):
        _struct_line(ws, st, row, "施策の方向性", f"{d.code} {d.name}", last_col)
        row += 1
        measures = [m for m in catalog.measures if m.goal == g and m.direction == d.number]
        for k, m in enumerate(measures):
            _struct_line(ws, st, row, "施策" if k == 0 else "", f"{m.code[len(d.code):]} {m.name}", last_col)
            row += 1
    row += 1

    head = row
    for c, title in enumerate(goal_columns(catalog)):
        st.put(ws, head, c, title, "header")
    row = head + 1
    first_data = row
    by_key = tally.by_key
    projects = catalog.projects
    f = st.fmt
    blank = ws.write_blank
    last_measure: tuple[int, int] | None = None
    last_project: str | None = None
    for a in catalog.assignments:
        p = projects[a.project]
        if p.goal != g:
            continue
        measure = (p.direction, p.measure)
        if measure != last_measure:
            st.put(ws, row, 0, p.measure_code, "group_first_center")
            last_measure, new_measure = measure, True
        else:
            blank(row, 0, None, f["group_cont"])
            new_measure = False
        row_is_first = a.project != last_project or new_measure
        if row_is_first:
            st.put_project_label(ws, row, 1, p, "group_first_center")
            st.put(ws, row, 2, p.name, "group_first_wrap")
            st.put(ws, row, 3, p.content, "group_first_wrap")
            last_project = a.project
        else:
            for c in (1, 2, 3):
                blank(row, c, None, f["group_cont"])
        st.put(ws, row, 4, a.department, "wrap")
        ev = by_key.get(a.key)
        # the project's name and 内容 stand in its first row only, so that row holds them whole
        texts = [(a.department, _GOAL_WIDTHS[4])]
        if row_is_first:
            texts += [(p.name, _GOAL_WIDTHS[2]), (p.content, _GOAL_WIDTHS[3])]
        if ev is not None:
            texts += [(ev.result, _GOAL_WIDTHS[5]), (ev.outlook, _GOAL_WIDTHS[7])]
        ws.set_row(row, _row_height(texts))
        if ev is None:
            # Shown, not skipped, so the committee sees what is still missing.
            st.put(ws, row, 5, MISSING_MARK, "missing")
            blank(row, 6, None, f["rating"])
            blank(row, 7, None, f["wrap"])
        else:
            st.put(ws, row, 5, ev.result, "wrap")
            st.put(ws, row, 6, ev.rating, "rating")
            st.put(ws, row, 7, ev.outlook, "wrap")
        row += 1
    for c in range(last_col + 1):
        blank(row, c, None, f["table_end"])
    if row > first_data:
        _rating_colours(st, ws, first_data, 6, row - 1, 6)
    _setup_print(ws, header, repeat=head)


def _struct_line(ws: Worksheet, st: _Styles, row: int, label: str, text: str, last_col: int) -> None:
    ws.merge_range(row, 0, row, 1, "", st.fmt["struct_label"])
    if label:
        st.put(ws, row, 0, label, "struct_label")
    ws.merge_range(row, 2, row, last_col, "", st.fmt["struct_text"])
    st.put(ws, row, 2, text, "struct_text")


# --- 集計 ------------------------------------------------------------------------------------

COUNT_HEADERS = ("区分", "名称", *RATINGS, MISSING, "合計", *(f"{x}割合" for x in RATINGS))
_COUNT_WIDTHS = (16, 40, *([9] * 10))
_CD_HEADERS = ("事業No.", "個別事業・取り組み", "事業評価", "担当課", "事業実績・評価理由")


# Count sheets have no auto-growing rows (the C/D rows get explicit heights), so their default
# row height is pinned: xlsxwriter then places the charts with the row height Excel really
# uses, whatever the font's metrics.
_COUNTS_ROW_PT = 18


def _setup_counts_sheet(ws: Worksheet, header: str, *, paper: int) -> None:
    for c, width in enumerate(_COUNT_WIDTHS):
        ws.set_column(c, c, width)
    ws.set_default_row(_COUNTS_ROW_PT)
    ws.set_row(0, 24)  # the 14pt title
    _setup_print(ws, header, paper=paper)


def _write_summary_sheet(wb: xlsxwriter.Workbook, st: _Styles, catalog: Catalog, tally: _Tally,
                         rows: Sequence[Evaluation], generated: str, header: str) -> None:
    ws = wb.add_worksheet(SUMMARY_SHEET)
    _setup_counts_sheet(ws, header, paper=8)
    total = tally.total
    submitted = sum(total[x] for x in RATINGS)
    st.put(ws, 0, 0, f"{catalog.title} {catalog.year_label} 集計", "title")
    st.put(ws, 1, 0, f"最新受信 {_display_time(generated)}  評価対象 {submitted + total[MISSING]} 件"
                     f"(提出 {submitted} 件・未提出 {total[MISSING]} 件)", "note")
    st.put(ws, 2, 0, "割合は提出済みの評価に対する割合です(未提出を除く)。", "note")

    goals = catalog.goals
    row, g_first, g_last = _count_table(
        ws, st, 4, "基本目標別",
        [(f"基本目標{g.number}", g.name, tally.goal[g.number]) for g in goals],
        total=("合計", "", total),
    )
    row, d_first, _ = _count_table(
        ws, st, row + 1, "施策の方向性別",
        [(f"基本目標{d.goal} {d.code}", d.name, tally.direction[(d.goal, d.number)]) for d in catalog.directions],
    )
    # The catalog lists directions goal by goal, so each goal's rows are one contiguous block.
    dir_rows: dict[int, tuple[int, int]] = {}
    for i, d in enumerate(catalog.directions):
        lo, _ = dir_rows.get(d.goal, (d_first + i, 0))
        dir_rows[d.goal] = (lo, d_first + i)

    # Charts: all goals side by side, then one per goal by 施策の方向性; two to a row.
    charts = [(_stacked_chart(wb, ws.name, g_first, g_last, "基本目標別の評価", len(goals)), len(goals))]
    for g in goals:
        lo, hi = dir_rows[g.number]
        charts.append((_stacked_chart(wb, ws.name, lo, hi, f"基本目標{g.number} 施策の方向性別の評価",
                                      hi - lo + 1), hi - lo + 1))
    row += 1
    st.put(ws, row, 0, "グラフ", "section")
    row += 1
    y = 0
    for i in range(0, len(charts), 2):
        band = max(_chart_height(n) for _, n in charts[i:i + 2])
        for j, (chart, _) in enumerate(charts[i:i + 2]):
            ws.insert_chart(row, 0, chart, {"x_offset": 4 + j * (_CHART_WIDTH + 16), "y_offset": y + 4,
                                            "object_position": 1})
        y += band + 12
    row += _rows_for_height(y) + 1

    depts = list(tally.department)
    row, _, _ = _count_table(
        ws, st, row, "担当課別",
        [(tally.office_of[d], d, tally.department[d]) for d in depts],
        code_header="返送する課", name_header="担当課",
    )
    _cd_table(ws, st, row + 1, catalog, rows)


def _count_table(
    ws: Worksheet,
    st: _Styles,
    row: int,
    title: str,
    entries: Sequence[tuple[str, str, dict[str, int]]],
    *,
    total: tuple[str, str, dict[str, int]] | None = None,
    code_header: str = "区分",
    name_header: str = "名称",
) -> tuple[int, int, int]:
    """A titled table of counts and shares. Returns (next free row, first entry row, last entry row)."""
    st.put(ws, row, 0, title, "section")
    headers = (code_header, name_header, *COUNT_HEADERS[2:])
    for c, h in enumerate(headers):
        st.put(ws, row + 1, c, h, "header")
    first = row + 2
    r = first
    for code, name, counts in entries:
        _count_row(ws, st, r, code, name, counts, "text", "int", "percent")
        r += 1
    last = r - 1
    if total is not None:
        _count_row(ws, st, r, *total, "total_text", "total_int", "total_percent")
        r += 1
    return r, first, last


def _count_row(ws: Worksheet, st: _Styles, r: int, code: str, name: str, counts: dict[str, int],
               text: str, num: str, pct: str) -> None:
    st.put(ws, r, 0, code, text)
    st.put(ws, r, 1, name, text)
    submitted = sum(counts[x] for x in RATINGS)
    for c, key in enumerate((*RATINGS, MISSING), start=2):
        ws.write_number(r, c, counts[key], st.fmt[num])
    ws.write_number(r, 7, submitted + counts[MISSING], st.fmt[num])
    for c, key in enumerate(RATINGS, start=8):
        if submitted:
            ws.write_number(r, c, counts[key] / submitted, st.fmt[pct])
        else:
            ws.write_blank(r, c, None, st.fmt[pct])  # no share of nothing


_CHART_WIDTH = 560


def _chart_height(categories: int) -> int:
    return max(240, 110 + 34 * categories)


def _rows_for_height(pixels: int) -> int:
    """Rows of the count sheets' default height that a chart of `pixels` covers, plus one."""
    return math.ceil(pixels / (_COUNTS_ROW_PT * 4 / 3)) + 1


def _stacked_chart(wb: xlsxwriter.Workbook, sheet: str, first: int, last: int, title: str,
                   categories: int) -> Any:
    """A stacked bar chart of the A–D count columns of rows first..last, categories from 名称."""
    chart = wb.add_chart({"type": "bar", "subtype": "stacked"})
    font = {"name": FONT, "size": 9}
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
    chart.set_title({"name": title, "name_font": {"name": FONT, "size": 11, "bold": True}})
    # Reverse so the first category is on top, reading order as in the table.
    chart.set_y_axis({"reverse": True, "num_font": font})
    chart.set_x_axis({"num_font": font, "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}}})
    chart.set_legend({"position": "bottom", "font": font})
    chart.set_size({"width": _CHART_WIDTH, "height": _chart_height(categories)})
    return chart


def _cd_table(ws: Worksheet, st: _Styles, row: int, catalog: Catalog, rows: Iterable[Evaluation]) -> int:
    """The C and D rows with their reasons, in plan order. Returns the next free row.

    Columns sit under the count tables, so 担当課 (D:F) and the reason (G:L) are merged across
    the narrow count columns. Excel does not grow merged rows, so the height is estimated.
    """
    st.put(ws, row, 0, "C・D 評価の事業", "section")
    widths = (_COUNT_WIDTHS[0], _COUNT_WIDTHS[1], _COUNT_WIDTHS[2],
              sum(_COUNT_WIDTHS[3:6]), sum(_COUNT_WIDTHS[6:12]))
    spans = ((0, 0), (1, 1), (2, 2), (3, 5), (6, 11))
    r = row + 1
    for (c0, c1), h in zip(spans, _CD_HEADERS, strict=True):
        if c1 > c0:
            ws.merge_range(r, c0, r, c1, "", st.fmt["header"])
        st.put(ws, r, c0, h, "header")
    r += 1
    found = False
    for ev in rows:
        if ev.rating not in ("C", "D"):
            continue
        found = True
        p = catalog.projects[ev.project]
        values = (p.label, p.name, ev.rating, ev.department, ev.result)
        styles = ("center", "wrap", "rating", "wrap", "wrap")
        for (c0, c1), value, style in zip(spans, values, styles, strict=True):
            if c1 > c0:
                ws.merge_range(r, c0, r, c1, "", st.fmt[style])
            if c0 == 0:
                st.put_project_label(ws, r, 0, p, style)
            else:
                st.put(ws, r, c0, value, style)
        ws.set_row(r, _row_height(zip(values, widths, strict=True)))
        r += 1
    if not found:
        st.put(ws, r, 0, "C・D 評価の事業はありません。", "empty")
        r += 1
    _rating_colours(st, ws, row + 2, 2, max(r - 1, row + 2), 2)
    return r


# --- 提出状況 -----------------------------------------------------------------------------------

STATUS_HEADERS = ("課", "担当件数", "受理件数", "未提出件数", "状況", "受信ファイル数", "最終ファイル", "最終受信日時", "送信者",
                  "エラーの内容")
FILE_HEADERS = ("ファイル", "課", "状態", "受理行数", "エラー", "警告", "受信日時", "送信者", "件名")


def _write_status(wb: xlsxwriter.Workbook, st: _Styles, result: Outcome, files: Sequence[FileVerdict],
                  header: str, *, overdue: bool = False) -> None:
    ws = wb.add_worksheet(STATUS_SHEET)
    offices = result.offices
    widths = [
        _fit(14, (o.office for o in offices), cap=30), 9, 9, 10, 21 if overdue else 11, 12,
        _fit(30, (f.name for f in files), cap=60), 17,
        _fit(24, (s for o in offices for s in o.senders), cap=40),
        _fit(30, (o.reason for o in offices), cap=60),
    ]
    for c, width in enumerate(widths):
        ws.set_column(c, c, width)
    for c, h in enumerate(STATUS_HEADERS):
        st.put(ws, 0, c, h, "header")
    r = 1
    for o in offices:
        st.put(ws, r, 0, o.office, "text")
        for c, n in ((1, o.assignments), (2, o.valid), (3, o.missing)):
            ws.write_number(r, c, n, st.fmt["int"])
        late = overdue and o.status != STATUS_ACCEPTED  # still owes answers after the deadline
        st.put(ws, r, 4, f"{STATUS_OVERDUE}({o.status})" if late else o.status, "center")
        ws.write_number(r, 5, o.received, st.fmt["int"])
        st.put(ws, r, 6, o.last_file, "wrap")
        st.put_time(ws, r, 7, o.last_time)
        st.put(ws, r, 8, "\n".join(o.senders), "wrap")
        st.put(ws, r, 9, o.reason, "wrap")
        r += 1
    if result.unattributed:
        # Files whose office could not be told: on a line of their own, never counted for an office.
        st.put(ws, r, 0, UNATTRIBUTED, "text")
        for c in (1, 2, 3):
            st.put(ws, r, c, "—", "center")
        st.put(ws, r, 4, UNATTRIBUTED, "center")
        ws.write_number(r, 5, len(result.unattributed), st.fmt["int"])
        st.put(ws, r, 6, "\n".join(result.unattributed), "wrap")
        for c in (7, 8):
            st.put(ws, r, c, "", "text")
        st.put(ws, r, 9, "提出した課を確認できません(テンプレート・送信元・ファイル名に課名がない)", "wrap")
        r += 1
    last = max(r - 1, 1)
    ws.autofilter(0, 0, last, len(STATUS_HEADERS) - 1)
    ws.freeze_panes(1, 1)
    for status, (bg, fg) in STATUS_COLOURS.items():
        ws.conditional_format(1, 4, last, 4, {"type": "cell", "criteria": "==", "value": f'"{status}"',
                                              "format": wb.add_format({"bg_color": bg, "font_color": fg})})
    if overdue:
        ws.conditional_format(1, 4, last, 4, {"type": "text", "criteria": "begins with", "value": STATUS_OVERDUE,
                                              "format": wb.add_format({"bg_color": "#FF0000", "font_color": "#FFFFFF",
                                                                       "bold": True})})

    # Every file this run read, so a department's "I sent it" can be answered from the sheet.
    r += 1
    st.put(ws, r, 0, "受信ファイル一覧", "section")
    r += 1
    for c, h in enumerate(FILE_HEADERS):
        st.put(ws, r, c, h, "header")
    r += 1
    if not files:
        st.put(ws, r, 0, "受信ファイルはありません。", "empty")
    for f in files:
        st.put(ws, r, 0, f.name, "wrap")
        st.put(ws, r, 1, f.office or UNATTRIBUTED, "text")
        status = result.statuses.get(f.name, f.status)
        st.put(ws, r, 2, FILE_STATUS_LABELS.get(status, status), "center")
        ws.write_number(r, 3, len(f.rows), st.fmt["int"])
        ws.write_number(r, 4, len(f.errors), st.fmt["int"])
        ws.write_number(r, 5, len(f.warnings), st.fmt["int"])
        st.put_time(ws, r, 6, f.received)
        st.put(ws, r, 7, f.sender, "wrap")
        st.put(ws, r, 8, f.subject, "wrap")
        r += 1
    _setup_print(ws, header, repeat=0)


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
    for r, i in enumerate(issues, start=1):
        st.put(ws, r, 0, i.file, "wrap")
        st.put(ws, r, 1, i.sheet, "text")
        st.put(ws, r, 2, i.cell, "center")
        st.put(ws, r, 3, i.code, "text")
        st.put(ws, r, 4, SEVERITY_LABELS.get(i.severity, i.severity), "center")
        st.put(ws, r, 5, i.message, "wrap")
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


def _too_long(text: str) -> bool:
    return not celltext.fits_in_cell(text)


def _fit(minimum: float, texts: Iterable[str], *, cap: float) -> float:
    return celltext.fit_width(minimum, texts, cap=cap)


def _row_height(cells: Iterable[tuple[str, float]]) -> float:
    """Points for a row of wrapped cells: celltext's fast estimate at the master's font size.
    Set explicitly: not every reader (LibreOffice, viewers, print preview of a never-edited
    file) grows rows to fit wrapped text by itself."""
    return celltext.row_height(cells, FONT_SIZE)


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


# --- 前年度比較 (last year beside this year; issue 12) -----------------------------------------------
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
        "今年度未提出のものは、推移の表に含みません。",
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


def _transition_table(ws: Worksheet, st: _Styles, row: int, g: Any, c: YearComparison,
                      cell_formats: dict[str, Any]) -> int:
    """One goal's 4×4 table with totals. Returns the next free row."""
    lc = _TRANSITION_LABEL_COL
    st.put(ws, row, 0, f"基本目標{g.goal} {g.name}: 評価の推移(件数)", "section")
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
    st.put(ws, r, lc, f"表に含まないもの: 前年度の評価なし {g.no_previous} 件{new}・今年度未提出 {g.not_returned} 件",
           "note")
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
    """The summary's 前年度比較: per goal, A–D counts of both years, the difference, and a
    clustered bar chart of the two years; one printed page per goal."""
    ws = wb.add_worksheet(COMPARISON_SHEET)
    for col, width in enumerate((12, 18, 18, 10)):
        ws.set_column(col, col, width)
    ws.set_default_row(_COUNTS_ROW_PT)  # so the charts land where planned (see _setup_counts_sheet)
    ws.set_row(0, 24)
    _setup_print(ws, header, paper=9)
    st.put(ws, 0, 0, f"{catalog.title} 前年度比較({c.previous_label} → {c.label})", "title")
    notes = [_comparison_notes(c)[0], "前年度の件数は、今年度の計画にある事業・担当課の前年度の評価です。"]
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
        for i, letter in enumerate(RATINGS):
            r = first + i
            st.put(ws, r, 0, letter, "rating")
            ws.write_number(r, 1, g.previous[letter], st.fmt["int"])
            ws.write_number(r, 2, g.current[letter], st.fmt["int"])
            ws.write_number(r, 3, g.current[letter] - g.previous[letter], diff)
        last = first + len(RATINGS) - 1
        total = last + 1
        st.put(ws, total, 0, "合計", "total_text")
        ws.write_number(total, 1, sum(g.previous.values()), st.fmt["total_int"])
        ws.write_number(total, 2, sum(g.current.values()), st.fmt["total_int"])
        ws.write_number(total, 3, sum(g.current.values()) - sum(g.previous.values()), st.fmt["total_int"])
        _rating_colours(st, ws, first, 0, last, 0)
        st.put(ws, total + 1, 0, f"前年度の評価なし {g.no_previous} 件・今年度未提出 {g.not_returned} 件", "note")
        chart = _clustered_chart(wb, ws.name, head, first, last, f"基本目標{g.goal} 評価別の件数", chart_height)
        ws.insert_chart(head, 5, chart, {"object_position": 1})
        row = head + max(total + 3 - head, _rows_for_height(chart_height)) + 1
    if breaks:
        ws.set_h_pagebreaks(breaks)


def _clustered_chart(wb: xlsxwriter.Workbook, sheet: str, head: int, first: int, last: int, title: str,
                     height: int) -> Any:
    """Columns of last year (grey) and this year (blue) side by side, one group per rating."""
    chart = wb.add_chart({"type": "column"})  # clustered is xlsxwriter's default column subtype
    font = {"name": FONT, "size": 9}
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
    chart.set_title({"name": title, "name_font": {"name": FONT, "size": 11, "bold": True}})
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
        st.put(ws, r, 0, i.file, "wrap")
        st.put(ws, r, 1, i.sheet, "text")
        st.put(ws, r, 2, i.cell, "center")
        st.put(ws, r, 3, i.code, "text")
        st.put(ws, r, 4, ACKNOWLEDGED_LABEL, "center")
        st.put(ws, r, 5, f"{i.message}\n確認: {a.who} — {a.why}", "wrap")
        r += 1
    return r
