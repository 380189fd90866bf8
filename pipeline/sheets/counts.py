"""Count tables and their charts: `CountSheet` lays out titled tables of A–D counts and shares,
stacked bar charts of them and the C/D table for print, for the master's 集計, the summary's goal
sheets and pipeline.publish's 評価の集計. `write_counts_sheet` writes the master's 集計."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from pipeline import printing
from pipeline.catalog import Catalog, Project
from pipeline.normalize import RATINGS
from pipeline.report import Evaluation
from pipeline.sheets.kit import (
    CHART_COLOURS,
    CHART_TEXT_PT,
    CHART_TITLE_PT,
    CHART_WIDTH,
    COUNTS_ROW_PT,
    PAGE_A3,
    ROW_PT,
    Styles,
    chart_font,
    new_chart,
    put_plain_line,
    rating_colours,
    row_height,
    rows_for_height,
    setup_print,
    spacer,
    span_headers,
    span_row,
    write_layout,
)
from pipeline.sheets.tally import MISSING, UNREFLECTED, Tally, empty_counts
from pipeline.times import shown_wall_clock

SUMMARY_SHEET = "集計"

COUNT_HEADERS = ("区分", "名称", *RATINGS, MISSING, UNREFLECTED, "合計", *(f"{x}割合" for x in RATINGS))
_COUNT_WIDTHS = (22, 40, *([9] * 7), *([10] * 4))  # 区分 / 返送する課 holds 子ども家庭センター  # a share "100.0%" needs 10 units in the UD font
_CD_HEADERS = ("事業No.", "個別事業・取り組み", "事業評価", "担当課", "事業実績・評価理由")
_CD_SPANS = ((0, 0), (1, 1), (2, 2), (3, 5), (6, 12))  # under the count tables' columns


def write_counts_sheet(wb: xlsxwriter.Workbook, st: Styles, catalog: Catalog, tally: Tally,
                       rows: Sequence[Evaluation], generated: str, header: str) -> None:
    """The master's 集計: the whole plan's counts by 基本目標 and 施策の方向性, their charts, the counts
    by 担当課 (offices in registry order, with subtotals), and the C/D rows with their reasons."""
    sheet = CountSheet(wb, st, wb.add_worksheet(SUMMARY_SHEET), PAGE_A3)
    total = tally.total
    submitted = sum(total[x] for x in RATINGS)
    sheet.lines([("title", f"{catalog.title} {catalog.year_label} 集計"),
                 ("note", f"最新受信 {shown_wall_clock(generated)}  評価対象 "
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


def _by_office(catalog: Catalog, tally: Tally) -> list[tuple[str, str, dict[str, int], bool]]:
    """担当課別's rows: offices in the registry's order (the plan catalog's offices), each office's
    担当課 in plan order, then the office's 小計 when it answers for more than one 担当課."""
    out: list[tuple[str, str, dict[str, int], bool]] = []
    for office in catalog.offices:
        mine = [d for d in tally.department if tally.office_of[d] == office]
        out += [(office, d, tally.department[d], False) for d in mine]
        if len(mine) > 1:
            subtotal = empty_counts()
            for d in mine:
                for k, v in tally.department[d].items():
                    subtotal[k] += v
            out.append((office, SUBTOTAL, subtotal, True))
    return out


class CountSheet:
    """A sheet of count tables, charts and the C/D table, laid out for print before it is written.

    Each table is kept on one page when it fits on one; one that does not repeats its title and
    column headings on each page it continues on. Each band of charts is kept on one page. Rows
    get explicit heights, the sheet a fixed print scale and manual page breaks (pipeline.printing)."""

    def __init__(self, wb: xlsxwriter.Workbook, st: Styles, ws: Worksheet, page: printing.Page,
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
        out = [printing.Line(24 if kind == "title" else ROW_PT, (kind, text)) for kind, text in items]
        self.blocks.append(printing.Block([*out, spacer()], keep=True))

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
        lines = [printing.Line(ROW_PT, ("section", title)), printing.Line(ROW_PT, ("header", headers)), *rows]
        if total is not None:
            lines.append(printing.Line(self._count_height(total[0], total[1]), ("count", *total, True)))
        block = printing.Block([*lines, spacer()], keep=keep, header=2)
        if block.height > self.capacity - ROW_PT * 2:
            block.header = 0  # a chart's rows must stay contiguous: no headings in between
        self.blocks.append(block)
        return rows

    def charts(self, title: str | None, charts: Sequence[tuple[str, list[printing.Line]]]) -> None:
        """Stacked bar charts of count tables already added, two to a band; each band on one page."""
        per_band = 2 if len(charts) > 1 else 1
        width = _chart_width(self.widths) if per_band == 2 else CHART_WIDTH
        for i in range(0, len(charts), per_band):
            band = charts[i:i + per_band]
            height = max(_chart_height(len(rows)) for _, rows in band)
            lines = [printing.Line(ROW_PT, ("band",)) for _ in range(rows_for_height(height + 8))]
            first = printing.Line(ROW_PT, ("charts", [(t, rows, width, j) for j, (t, rows) in enumerate(band)]))
            lines[0] = first
            if title and i == 0:
                lines.insert(0, printing.Line(ROW_PT, ("section", title)))
            self.blocks.append(printing.Block(lines, keep=True))

    def cd_table(self, catalog: Catalog, rows: Iterable[Evaluation]) -> None:
        """The C and D rows with their reasons, in plan order: 担当課 and the reason are merged
        across the narrow count columns (Excel does not grow merged rows: heights are set)."""
        lines = [printing.Line(ROW_PT, ("section", "C・D 評価の事業")), printing.Line(ROW_PT, ("cd_header",))]
        for ev in rows:
            if ev.rating not in ("C", "D"):
                continue
            p = catalog.projects[ev.project]
            values = (p.label, p.name, ev.rating, ev.department, ev.result)
            lines.append(printing.Line(row_height(zip(values, self.cd_widths, strict=True)), ("cd", p, ev)))
        if len(lines) == 2:
            lines.append(printing.Line(ROW_PT, ("empty", "C・D 評価の事業はありません。")))
        self.blocks.append(printing.Block(lines, header=2))

    def _count_height(self, code: str, name: str) -> float:
        return max(ROW_PT, row_height([(code, self.widths[0]), (name, self.widths[1])], exact=True))

    def finish(self, header: str) -> printing.Layout:
        ws, st = self.ws, self.st
        for c, width in enumerate(self.widths):
            ws.set_column(c, c, width)
        ws.set_default_row(COUNTS_ROW_PT)
        layout = printing.paginate(self.blocks, self.capacity)
        rating_rows: list[int] = []

        def write(placed: printing.Placed) -> None:
            r, item = placed.row, placed.line.item
            if item is None or item[0] == "band":
                return
            if put_plain_line(ws, st, r, item):
                return
            kind = item[0]
            if kind == "count":
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

        write_layout(ws, layout, write)
        row_of = {id(p.line): p.row for p in layout.placed if not p.repeated}
        for band, charts in self.chart_rows:
            for title, rows, width, j in charts:
                first, last = row_of[id(rows[0])], row_of[id(rows[-1])]
                chart = _stacked_chart(self.wb, ws.name, first, last, title, len(rows), width=width,
                                       scale=self.scale)
                ws.insert_chart(row_of[id(band)], 0, chart, {"x_offset": 4 + j * (width + _CHART_GAP),
                                                             "y_offset": 4, "object_position": 1})
        if rating_rows:
            rating_colours(st, ws, rating_rows[0], 2, rating_rows[-1], 2)
        setup_print(ws, header, page=self.page, scale=self.scale, breaks=layout.breaks)
        return layout


def _count_row(ws: Worksheet, st: Styles, r: int, code: str, name: str, counts: dict[str, int],
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


def _cd_row(ws: Worksheet, st: Styles, r: int, p: Project, ev: Evaluation,
            spans: Sequence[tuple[int, int]]) -> None:
    span_row(ws, st, r, spans, p, (p.name, ev.rating, ev.department, ev.result),
             ("center", "wrap", "rating", "wrap", "wrap"))


_CHART_GAP = 16


def _chart_width(widths: Sequence[float]) -> int:
    """Two charts side by side within the columns (7 px a unit and 5 px padding, as Excel draws
    them with the standard font), so no chart reaches past the printed columns."""
    columns_px = sum(int(w * 7 + 0.5) + 5 for w in widths)
    return min(CHART_WIDTH, (columns_px - 8 - _CHART_GAP) // 2)


def _chart_height(categories: int) -> int:
    return max(240, 110 + 34 * categories)


def _stacked_chart(wb: xlsxwriter.Workbook, sheet: str, first: int, last: int, title: str,
                   categories: int, *, width: int = CHART_WIDTH, scale: int = 100) -> Any:
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


