"""The master's two sheets about the night's files: 提出状況 (each office's state, then every file
read) and 検証結果 (every open issue, then the warnings staff acknowledged)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from pipeline import celltext, printing
from pipeline.marks import NO_VALUE
from pipeline.report import (
    ERROR,
    FILE_STATUS_LABELS,
    STATUS_ACCEPTED,
    STATUS_ERRORS,
    STATUS_MISSING,
    STATUS_OVERDUE,
    STATUS_PARTIAL,
    UNATTRIBUTED,
    Acknowledged,
    FileVerdict,
    Issue,
    Outcome,
)
from pipeline.sheets.kit import (
    DATETIME_WIDTH,
    PAGE_A3,
    ROW_PT,
    Styles,
    bounded,
    bounded_list,
    row_height,
    setup_print,
    spacer,
    write_layout,
)

STATUS_SHEET, ISSUES_SHEET = "提出状況", "検証結果"

STATUS_COLOURS = {
    STATUS_ACCEPTED: ("#C6EFCE", "#006100"),
    STATUS_PARTIAL: ("#FFEB9C", "#7F6000"),
    STATUS_ERRORS: ("#FCD5B4", "#833C0C"),
    STATUS_MISSING: ("#FFC7CE", "#9C0006"),
    UNATTRIBUTED: ("#EDE7F6", "#4A148C"),
}
SEVERITY_LABELS = {ERROR: "エラー", "warning": "警告"}
SEVERITY_COLOURS = {"エラー": ("#FFC7CE", "#9C0006"), "警告": ("#FFEB9C", "#7F6000")}

# --- 提出状況 -----------------------------------------------------------------------------------

STATUS_HEADERS = ("課", "担当件数", "受理件数", "未提出件数", "状況", "受信ファイル数", "最終ファイル", "最終受信日時", "送信者",
                  "エラーの内容")
FILE_HEADERS = ("ファイル", "課", "状態", "受理行数", "エラー", "警告", "受信日時", "送信者", "件名")


def failed_night_text(night: dict[str, Any]) -> str:
    """One failed merge as 提出状況 lists it: 令和7年5月27日(火) 2:00 終了コード 3: 理由"""
    from pipeline.wareki import wareki_time

    return f"{wareki_time(str(night.get('started', '')))} 終了コード {night.get('exit_code')}: {night.get('message', '')}"


def write_status(wb: xlsxwriter.Workbook, st: Styles, result: Outcome, files: Sequence[FileVerdict],
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
        celltext.fit_width(14, [*(o.office for o in offices), *(f.name for f in files)], cap=40),
        celltext.fit_width(9, (_office_label(f) for f in files), cap=22),
        # 受理件数 above, and the file's 状態 below: wide enough for 新しい提出で置換 and 対象外(ignored-…)
        celltext.fit_width(9, (_file_status_label(f, result) for f in files), cap=30),
        10, 21 if overdue else 11, 12,
        celltext.fit_width(30, (f.name for f in files), cap=60), DATETIME_WIDTH,
        celltext.fit_width(24, (s for o in offices for s in o.senders), cap=40),
        celltext.fit_width(30, (o.reason for o in offices), cap=60),
    ]
    for c, width in enumerate(widths):
        ws.set_column(c, c, width)
    page = PAGE_A3
    scale = printing.print_scale(widths, page)

    def line(item: tuple[Any, ...], texts: Iterable[tuple[str, float]]) -> printing.Line:
        return printing.Line(max(ROW_PT, row_height(texts, exact=True)), item)

    office_lines = [line(("office", o), [(o.office, widths[0]), (bounded(o.last_file), widths[6]),
                                         (bounded_list(o.senders), widths[8]), (bounded(o.reason), widths[9])])
                    for o in offices]
    if result.unattributed:
        office_lines.append(line(("unattributed",), [(bounded_list(result.unattributed), widths[6]),
                                                     (_UNATTRIBUTED_REASON, widths[9])]))
    file_lines = [line(("file", f), [(bounded(f.name), widths[0]), (_office_label(f), widths[1]),
                                     (bounded(f.sender), widths[7]), (bounded(f.subject), widths[8])])
                  for f in files]
    if not files:
        file_lines = [printing.Line(ROW_PT, ("empty",))]
    blocks = [
        printing.Block([line(("header", STATUS_HEADERS), zip(STATUS_HEADERS, widths, strict=True)), *office_lines],
                       header=1),
        printing.Block([spacer()]),
        # The nights that failed since the last master: no one may have seen their exit code.
        *([printing.Block([printing.Line(ROW_PT, ("failed-section",)),
                           *(printing.Line(ROW_PT, ("failed", n)) for n in failed_nights)], header=1),
           printing.Block([spacer()])] if failed_nights else []),
        # Every file this run read, so a department's "I sent it" can be answered from the sheet.
        printing.Block([printing.Line(ROW_PT, ("section",)),
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

    write_layout(ws, layout, write)
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
    setup_print(ws, header, page=page, scale=scale, breaks=layout.breaks)


_UNATTRIBUTED_REASON = "提出した課を確認できません(テンプレート・送信元・ファイル名に課名がない)"


def _status_office_row(ws: Worksheet, st: Styles, r: int, o: Any, *, overdue: bool = False) -> None:
    st.put(ws, r, 0, o.office, "wrap")
    for c, n in ((1, o.assignments), (2, o.valid), (3, o.missing)):
        ws.write_number(r, c, n, st.fmt["int"])
    st.put(ws, r, 4, o.shown(overdue), "center")
    ws.write_number(r, 5, o.received, st.fmt["int"])
    st.put(ws, r, 6, bounded(o.last_file), "wrap")
    st.put_time(ws, r, 7, o.last_time)
    st.put(ws, r, 8, bounded_list(o.senders), "wrap")
    st.put(ws, r, 9, bounded(o.reason), "wrap")


def _status_unattributed_row(ws: Worksheet, st: Styles, r: int, names: Sequence[str]) -> None:
    # Files whose office could not be told: on a line of their own, never counted for an office.
    st.put(ws, r, 0, UNATTRIBUTED, "wrap")
    for c in (1, 2, 3):
        st.put(ws, r, c, NO_VALUE, "center")
    st.put(ws, r, 4, UNATTRIBUTED, "center")
    ws.write_number(r, 5, len(names), st.fmt["int"])
    st.put(ws, r, 6, bounded_list(names), "wrap")
    for c in (7, 8):
        st.put(ws, r, c, "", "text")
    st.put(ws, r, 9, _UNATTRIBUTED_REASON, "wrap")


def _office_label(f: FileVerdict) -> str:
    """The 課 of a file in the list: its office, 差出課不明 for a return of no known office, and a
    dash for what was not read at all (a lock file, an excluded folder: nobody's return)."""
    return f.office or (NO_VALUE if f.status == "ignored" else UNATTRIBUTED)


def _file_status_label(f: FileVerdict, result: Outcome) -> str:
    """A file's 状態 in the file list: its status in staff's words, and for an ignored file why, by
    its code (the message in 検証結果 says what to do)."""
    status = result.statuses.get(f.name, f.status)
    label = FILE_STATUS_LABELS.get(status, status)
    if status == "ignored":
        why = next((i.code for i in f.issues if i.code.startswith("ignored-") or i.code == "own-output"), "")
        label = f"{label}({why})" if why else label
    return label


def _status_file_row(ws: Worksheet, st: Styles, r: int, f: FileVerdict, result: Outcome,
                     merge_counts: tuple[int, int]) -> None:
    st.put(ws, r, 0, bounded(f.name), "wrap")
    st.put(ws, r, 1, _office_label(f), "wrap")
    st.put(ws, r, 2, _file_status_label(f, result), "center")
    ws.write_number(r, 3, len(f.rows), st.fmt["int"])
    # Every issue of the file, as 検証結果 and the run report list them: the verdict's own and the
    # merge's notes on it (`merge_counts`: errors, warnings; the text checks' warnings among them).
    ws.write_number(r, 4, len(f.errors) + merge_counts[0], st.fmt["int"])
    ws.write_number(r, 5, len(f.warnings) + merge_counts[1], st.fmt["int"])
    st.put_time(ws, r, 6, f.received)
    st.put(ws, r, 7, bounded(f.sender), "wrap")
    st.put(ws, r, 8, bounded(f.subject), "wrap")


# --- 検証結果 -----------------------------------------------------------------------------------

ISSUE_HEADERS = ("ファイル", "シート", "セル", "コード", "重要度", "内容")


def write_issues(wb: xlsxwriter.Workbook, st: Styles, issues: Sequence[Issue], header: str,
                 acknowledged: Sequence[Acknowledged] = ()) -> None:
    ws = wb.add_worksheet(ISSUES_SHEET)
    widths = (celltext.fit_width(30, (i.file for i in issues), cap=50), 14, 8, 22, 9, 90)
    for c, width in enumerate(widths):
        ws.set_column(c, c, width)
    for c, h in enumerate(ISSUE_HEADERS):
        st.put(ws, 0, c, h, "header")
    ws.set_row(0, ROW_PT)
    for r, i in enumerate(issues, start=1):
        file, sheet, message = bounded(i.file), bounded(i.sheet), bounded(i.message)
        st.put(ws, r, 0, file, "wrap")
        st.put(ws, r, 1, sheet, "wrap")
        st.put(ws, r, 2, bounded(i.cell), "center")
        st.put(ws, r, 3, i.code, "wrap")
        st.put(ws, r, 4, SEVERITY_LABELS.get(i.severity, i.severity), "center")
        st.put(ws, r, 5, message, "wrap")
        # Whole on paper: every wrapped cell's lines, at an explicit height (LibreOffice and
        # print preview do not grow rows by themselves).
        ws.set_row(r, max(ROW_PT, row_height(((file, widths[0]), (sheet, widths[1]), (i.code, widths[3]),
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
    setup_print(ws, header, repeat=0)


# --- 検証結果: acknowledged warnings ---------------------------------------------------------------

ACKNOWLEDGED_TITLE = "確認済みの警告(schemas/acknowledged.yaml)"
ACKNOWLEDGED_LABEL = "確認済み"


def _write_acknowledged(ws: Worksheet, st: Styles, row: int, acknowledged: Sequence[Acknowledged]) -> int:
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
        st.put(ws, r, 0, bounded(i.file), "wrap")
        st.put(ws, r, 1, bounded(i.sheet), "text")
        st.put(ws, r, 2, bounded(i.cell), "center")
        st.put(ws, r, 3, i.code, "text")
        st.put(ws, r, 4, ACKNOWLEDGED_LABEL, "center")
        st.put(ws, r, 5, bounded(f"{i.message}\n確認: {a.who} {NO_VALUE} {a.why}"), "wrap")
        r += 1
    return r
