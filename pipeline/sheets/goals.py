"""The goal table in the published layout: one 基本目標's structure (施策の方向性, 施策) and its
assignments, paginated for print. The master's 基本目標 sheets and pipeline.publish's committee
document both write it (`write_goal_table`)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from pipeline import celltext, printing
from pipeline.catalog import Assignment, Catalog, Project
from pipeline.report import Evaluation
from pipeline.sheets.kit import PAGE_A3, ROW_PT, Styles, rating_colours, row_height, setup_print, write_layout
from pipeline.sheets.tally import Tally


def goal_sheet_name(goal_number: int) -> str:
    return f"基本目標{goal_number}"


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


def write_goal_sheet(wb: xlsxwriter.Workbook, st: Styles, catalog: Catalog, g: int,
                     tally: Tally, absent: dict[tuple[str, str], str], header: str) -> None:
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


def write_goal_table(ws: Worksheet, st: Styles, catalog: Catalog, g: int,
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
        top += [printing.Line(ROW_PT, ("overview", OVERVIEW_TITLE)), struct("基本目標", f"{g} {goal.name}")]
    else:
        top += [printing.Line(24, ("title", f"基本目標 {g} {goal.name}")), printing.Line(ROW_PT, None, spacer=True)]
    for d in (x for x in catalog.directions if x.goal == g):
        top.append(struct("施策の方向性", f"{d.code} {d.name}"))
        measures = [m for m in catalog.measures if m.goal == g and m.direction == d.number]
        for k, m in enumerate(measures):
            top.append(struct("施策" if k == 0 else "", f"{m.code[len(d.code):]} {m.name}"))
    top.append(printing.Line(ROW_PT, None, spacer=True))

    columns = goal_columns(catalog)
    head = printing.Line(row_height(zip(columns, widths, strict=True), min_lines=2), ("header", columns))
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
        lines.append(printing.Line(row_height(texts + first), _GoalRow(a, p, ev, new_measure, new_project),
                                   group=("project", p.key), top_height=row_height(texts + first + again)))
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

    write_layout(ws, layout, write)
    if data_rows:
        rating_colours(st, ws, data_rows[0], 6, data_rows[-1], 6)
    setup_print(ws, header, page=page, repeat=head_row, scale=scale, breaks=layout.breaks)
    return layout


def _goal_row(ws: Worksheet, st: Styles, r: int, row: _GoalRow, placed: printing.Placed,
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


_TABLE_END_PT = 9  # the row under a goal table that carries its closing border


def _struct_height(text: str, width: float) -> float:
    return max(ROW_PT, row_height([(text, width)]))


def _struct_line(ws: Worksheet, st: Styles, row: int, label: str, text: str, last_col: int) -> None:
    ws.merge_range(row, 0, row, 1, "", st.fmt["struct_label"])
    if label:
        st.put(ws, row, 0, label, "struct_label")
    ws.merge_range(row, 2, row, last_col, "", st.fmt["struct_text"])
    st.put(ws, row, 2, text, "struct_text")

