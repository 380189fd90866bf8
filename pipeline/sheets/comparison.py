"""前年度比較: last year beside this year. One sheet in the master (after 集計) and one in the
summary (last), only when last year is known. Values come from pipeline.compare; every text goes
through `Styles.put`, counts are numbers, no formula. Master layout, top to bottom: per 基本目標 the
4×4 transition table (rows: last year's A–D, columns: this year's), the assignments that fell to C
or D with this year's reason, then (on a new printed page) every assignment in plan order with both
ratings and the change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from pipeline.catalog import Catalog
from pipeline.compare import DOWN, UP, GoalComparison, YearComparison
from pipeline.normalize import RATINGS
from pipeline.sheets.kit import (
    BORDER,
    CHART_TEXT_PT,
    CHART_TITLE_PT,
    COUNTS_ROW_PT,
    FORMATS,
    PAGE_A4,
    VALIGN_TOP,
    Styles,
    chart_font,
    new_chart,
    rating_colours,
    row_height,
    rows_for_height,
    setup_print,
)

COMPARISON_SHEET = "前年度比較"  # master (after 集計) and summary (last), only when last year is known

_CMP_WIDTHS = (8, 32, 24, 11, 11, 11, 11, 11, 48)  # A..I; the reason of the fell list spans G:I
_CMP_LIST_COLUMNS = 6  # 事業No., 個別事業・取り組み, 担当課, 前年度評価, 今年度評価, 変化
_CMP_REASON = (6, 8)
_TRANSITION_LABEL_COL = 2  # 前年度 A… in C, this year's A–D in D..G, 合計 in H
_CHANGE_COLOURS = {UP: ("#C6EFCE", "#006100"), DOWN: ("#FFC7CE", "#9C0006")}
_TRANSITION_FILLS = {"same": "#F2F2F2", "better": "#E2EFDA", "worse": "#FCE4D6"}


def comparison_notes(c: YearComparison) -> list[str]:
    source = Path(c.source).name or c.source
    return [
        f"前年度({c.previous_label})の評価: {source}。評価は A が最もよく、↑ 改善・↓ 低下・→ 変化なし。",
        "今年度の計画の事業・担当課について比べています。前年度の評価がないもの(新規を含む)と"
        "今年度の評価がないもの(未提出: 課から届いていない、未反映: 届いたがエラーなどで反映されていない)は、"
        "推移の表に含みません。",
    ]


def write_comparison(wb: xlsxwriter.Workbook, st: Styles, catalog: Catalog, c: YearComparison,
                     header: str) -> None:
    ws = wb.add_worksheet(COMPARISON_SHEET)
    for col, width in enumerate(_CMP_WIDTHS):
        ws.set_column(col, col, width)
    # 新規 / — / 未提出 where a rating would be: grey italic, centred (only our fixed words go here)
    st.fmt.setdefault("missing_center", wb.add_format({**FORMATS["missing"], "align": "center"}))
    st.put(ws, 0, 0, f"{catalog.title} 前年度比較({c.previous_label} → {c.label})", "title")
    ws.set_row(0, 24)
    for i, note in enumerate(comparison_notes(c), start=1):
        st.put(ws, i, 0, note, "note")
    row = 4
    cell_formats = {
        kind: wb.add_format({**BORDER, **VALIGN_TOP, "align": "center", "num_format": "0", "bg_color": colour})
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
    ws.set_row(head, row_height(zip(titles, _CMP_WIDTHS, strict=False)))
    r = head + 1
    for ch in c.changes:
        p = catalog.projects[ch.project]
        st.put_project_label(ws, r, 0, p, "center")
        st.put(ws, r, 1, p.name, "wrap")
        st.put(ws, r, 2, ch.department, "wrap")
        st.put(ws, r, 3, ch.previous_text, "rating" if ch.previous else "missing_center")
        st.put(ws, r, 4, ch.current_text, "rating" if ch.current else "missing_center")
        st.put(ws, r, 5, ch.change_text, "rating")
        ws.set_row(r, row_height(((p.name, _CMP_WIDTHS[1]), (ch.department, _CMP_WIDTHS[2]))))
        r += 1
    last = max(r - 1, head + 1)
    ws.autofilter(head, 0, last, _CMP_LIST_COLUMNS - 1)
    rating_colours(st, ws, head + 1, 3, last, 4)
    for arrow, (bg, fg) in _CHANGE_COLOURS.items():
        ws.conditional_format(head + 1, 5, last, 5, {"type": "cell", "criteria": "==", "value": f'"{arrow}"',
                                                     "format": wb.add_format({"bg_color": bg, "font_color": fg})})
    setup_print(ws, header)


def whole_plan(c: YearComparison) -> GoalComparison:
    """The goals' comparisons added up: the whole plan's transitions and counts."""
    transitions = {b: {a: sum(g.transitions[b][a] for g in c.goals) for a in RATINGS} for b in RATINGS}
    previous = {x: sum(g.previous[x] for g in c.goals) for x in RATINGS}
    current = {x: sum(g.current[x] for g in c.goals) for x in RATINGS}
    return GoalComparison(0, "", transitions, previous, current, no_previous=sum(g.no_previous for g in c.goals),
                          new=sum(g.new for g in c.goals), not_returned=sum(g.not_returned for g in c.goals),
                          unreflected=sum(g.unreflected for g in c.goals))


def _transition_table(ws: Worksheet, st: Styles, row: int, g: Any, c: YearComparison,
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


def _fell_table(ws: Worksheet, st: Styles, row: int, catalog: Catalog, c: YearComparison) -> int:
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
    ws.set_row(head, row_height(zip(titles, (*_CMP_WIDTHS[:c0], reason_width), strict=True)))
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
        ws.set_row(r, row_height(((p.name, _CMP_WIDTHS[1]), (ch.department, _CMP_WIDTHS[2]),
                                  (ch.result, reason_width))))
        r += 1
    if not fell:
        st.put(ws, r, 0, "C・D に下がった事業・担当課はありません。", "empty")
        r += 1
    else:
        rating_colours(st, ws, head + 1, 3, r - 1, 4)
    return r


def write_comparison_summary(wb: xlsxwriter.Workbook, st: Styles, catalog: Catalog, c: YearComparison,
                             header: str) -> None:
    """The summary's 前年度比較: per goal, A–D counts of both years over the assignments rated in
    both (so 増減 is rating changes only, and 前年度 A is the master's 前年度 A), what that leaves
    out, and a clustered bar chart of the two years; one printed page per goal."""
    ws = wb.add_worksheet(COMPARISON_SHEET)
    for col, width in enumerate((12, 18, 18, 10)):
        ws.set_column(col, col, width)
    ws.set_default_row(COUNTS_ROW_PT)  # so the charts land where planned (see COUNTS_ROW_PT)
    ws.set_row(0, 24)
    setup_print(ws, header, page=PAGE_A4)
    st.put(ws, 0, 0, f"{catalog.title} 前年度比較({c.previous_label} → {c.label})", "title")
    notes = [comparison_notes(c)[0], "件数は、今年度の計画にあり両年度に評価のある事業・担当課のものです"
                                      "(増減は評価の変化だけ。今年度の評価がないものは表の下に)。"]
    for i, note in enumerate(notes, start=1):
        st.put(ws, i, 0, note, "note")
    row = 3
    for letter, meaning in catalog.ratings.items():
        st.put(ws, row, 0, f"{letter}: {meaning}", "note")
        row += 1
    row += 1
    diff = st.wb.add_format({**BORDER, **VALIGN_TOP, "align": "center", "num_format": "+0;-0;0"})
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
        rating_colours(st, ws, first, 0, last, 0)
        st.put(ws, total + 1, 0, f"表に含まないもの: 前年度の評価なし {g.no_previous} 件・今年度未提出 {g.not_returned} 件"
                                 f"・未反映 {g.unreflected} 件", "note")
        chart = _clustered_chart(wb, ws.name, head, first, last, f"基本目標{g.goal} 評価別の件数", chart_height)
        ws.insert_chart(head, 5, chart, {"object_position": 1})
        row = head + max(total + 3 - head, rows_for_height(chart_height)) + 1
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


