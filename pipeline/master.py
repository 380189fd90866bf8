"""Write the master workbook staff open each morning, and the per-goal summary for the committee.

One job: turn the merge result, plus this run's file reports and issues, into two xlsxwriter
workbooks. The master has 評価一覧, one sheet per 基本目標 in the published layout, 集計,
前年度比較 (when last year is known), 提出状況 and 検証結果. The summary (`write_summary`) can go to
the committee as is. Both functions write to exactly the path they are given. The caller wraps
them in `pipeline.atomic.write_atomically`.

This module composes; the sheets are written by pipeline.sheets, one module per group of sheets
on a shared kit (pipeline.sheets.kit: inert text, the UD font, print set-up, charts):

* 評価一覧: pipeline.sheets.evaluation_list (its rows through pipeline.xlsxfast);
* 基本目標N: pipeline.sheets.goals (the published table, shared with pipeline.publish);
* 集計 and the summary's goal sheets: pipeline.sheets.counts, from pipeline.sheets.tally;
* 前年度比較: pipeline.sheets.comparison;
* 提出状況 and 検証結果: pipeline.sheets.status.

Decisions, and why:

* Excel's 32,767-character cell limit is checked on every department value before anything is
  written (`check_rows`), so such a text is never silently truncated and a failure writes nothing
  (the runner rejects that file alone). Our own texts built from file names, messages and lists
  are bounded by the sheets as they write them (pipeline.sheets.kit.bounded), so they always fit:
  no number or length of inputs makes the writer refuse.
* Determinism. The document properties use a fixed `created` (1 April of the plan's fiscal
  year), never now(). xlsxwriter stamps every zip entry with 1980-01-01 whatever `created`
  is, and docProps/core.xml is the only part that holds a time. So the same inputs,
  including `generated`, give byte-identical files (tested).
* Speed. Look-ups are dicts built once, so a 60k-row plan stays linear. constant_memory is not
  used: each sheet is written in row order, but the goal sheets repeat 評価一覧's long texts, and
  the shared-string table stores those only once.
* Print (docs/printing.md). Sheets print on A3 landscape (the summary on A4) with the sheet's
  name in the header and "&P / &N" page numbers. 評価一覧 and 検証結果, whose every row says
  what it is about, print one page wide with repeated headings. The goal sheets, 集計,
  提出状況 and the summary are laid out by pipeline.printing before they are written: a fixed
  scale, every row's height set, and manual page breaks between projects, tables and charts,
  so no chart or table is split and every page can be read on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import celltext
from pipeline.catalog import Catalog
from pipeline.compare import compare_years
from pipeline.report import Evaluation, FileVerdict, Issue, Outcome
from pipeline.sheets import comparison, counts, evaluation_list, goals, status
from pipeline.sheets.comparison import COMPARISON_SHEET
from pipeline.sheets.counts import SUMMARY_SHEET, CountSheet
from pipeline.sheets.evaluation_list import LIST_SHEET
from pipeline.sheets.goals import goal_sheet_name
from pipeline.sheets.kit import PAGE_A4, Styles, new_workbook, page_header
from pipeline.sheets.status import ISSUES_SHEET, STATUS_SHEET
from pipeline.sheets.tally import Tally, absences, unreflected
from pipeline.times import shown_wall_clock

if TYPE_CHECKING:
    from pipeline.history import PastYear

MASTER_SHEETS = (LIST_SHEET, "基本目標1", "基本目標2", "基本目標3", SUMMARY_SHEET, STATUS_SHEET, ISSUES_SHEET)


# --- names --------------------------------------------------------------------------------


def master_name(catalog: Catalog) -> str:
    """The master's file name: "地域福祉計画_評価集約_R6.xlsx"."""
    return f"{catalog.plan}_評価集約_{catalog.year}.xlsx"


def summary_name(catalog: Catalog) -> str:
    """The committee summary's file name: "地域福祉計画_評価集計_R6.xlsx"."""
    return f"{catalog.plan}_評価集計_{catalog.year}.xlsx"


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
    goal_names = [goal_sheet_name(g.number) for g in catalog.goals] if writes_goal_sheets(catalog, goal_sheets) else []
    return (LIST_SHEET, *goal_names, SUMMARY_SHEET, *((COMPARISON_SHEET,) if comparison else ()), STATUS_SHEET,
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
    rows_checked: bool = False,
) -> None:
    """Write the complete master workbook to exactly `path`. With `previous` (last year's
    evaluations, pipeline.history), a 前年度比較 sheet follows 集計. `goal_sheets` is the setting
    [master] goal_sheets (see writes_goal_sheets).

    With `today` after `deadline`, 提出状況 marks each office that still owes answers 期限超過
    (its 状況 reads 期限超過(未提出)); without either, nothing is marked. `failed_nights` (the failed
    merges since the last successful one, pipeline.lastrun) are listed on 提出状況.

    Raises ValueError (before anything is written) when a text exceeds Excel's 32,767-character
    cell limit or a row is not an assignment of the catalog (check_rows), unless `rows_checked` says
    the caller has run check_rows on these rows already (the merge does, file by file).
    """
    if not rows_checked:
        check_rows(catalog, result.rows)
    wb = new_workbook(path, catalog, "評価集約", "master", generated)
    st = Styles(wb)
    absent = absences(catalog, result)
    tally = Tally(catalog, result.rows, absent)
    header = page_header(catalog, generated)
    evaluation_list.write_list(wb, st, catalog, result.rows, header)
    if writes_goal_sheets(catalog, goal_sheets):
        for goal in catalog.goals:
            goals.write_goal_sheet(wb, st, catalog, goal.number, tally, absent, header)
    counts.write_counts_sheet(wb, st, catalog, tally, result.rows, generated, header)
    if previous is not None:
        comparison.write_comparison(wb, st, catalog,
                                    compare_years(catalog, result.rows, previous, unreflected(absent)), header)
    overdue = today is not None and deadline is not None and today > deadline
    status.write_status(wb, st, result, files, header, overdue=overdue, failed_nights=failed_nights)
    status.write_issues(wb, st, issues, header, result.acknowledged)
    wb.close()


def write_summary(path: Path, catalog: Catalog, result: Outcome, *, generated: str,
                  previous: PastYear | None = None, rows_checked: bool = False) -> None:
    """Write the committee summary to exactly `path`: one A4 landscape sheet per 基本目標, and
    with `previous` (last year's evaluations) a last sheet 前年度比較: per goal, the A–D counts of
    both years and a clustered bar chart.

    Each sheet holds the A–D counts and shares per 施策の方向性 and per 施策, a stacked bar chart,
    and the C/D rows with their reasons. 未提出 is counted separately and is never part of a
    share (shares are of the submitted rows). Raises ValueError as write_master does, with the same
    `rows_checked`.
    """
    if not rows_checked:
        check_rows(catalog, result.rows)
    wb = new_workbook(path, catalog, "評価集計", "summary", generated)
    st = Styles(wb)
    absent = absences(catalog, result)
    tally = Tally(catalog, result.rows, absent)
    header = page_header(catalog, generated)
    by_goal: dict[int, list[Evaluation]] = {g.number: [] for g in catalog.goals}
    for r in result.rows:  # one pass over the rows, not one a goal
        by_goal[catalog.projects[r.project].goal].append(r)
    for goal in catalog.goals:
        g = goal.number
        sheet = CountSheet(wb, st, wb.add_worksheet(goal_sheet_name(g)), PAGE_A4)
        sheet.lines([("title", f"{catalog.title} {catalog.year_label} 評価集計"),
                     ("section", f"基本目標 {g} {goal.name}"), ("note", f"最新受信 {shown_wall_clock(generated)}"),
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
        comparison.write_comparison_summary(wb, st, catalog,
                                            compare_years(catalog, result.rows, previous, unreflected(absent)), header)
    wb.close()


# --- the rows ------------------------------------------------------------------------------


def check_rows(catalog: Catalog, rows: Iterable[Evaluation]) -> None:
    """Reject, before writing, what would otherwise be silently wrong in the workbook. The merge
    calls it once, file by file, so a file whose rows cannot be written is set aside alone, and
    tells the writers so (`rows_checked`); other callers get it from the writers."""
    keys = catalog.assignment_keys  # built once: the runner checks file by file
    for r in rows:
        if (r.project, r.department) not in keys:
            raise ValueError(f"事業No.{r.project}・担当課「{r.department}」は計画の割り当てにありません。")
        for column, text in (  # the file name is ours: bounded when written
            ("事業実績・評価理由", r.result),
            ("今後の事業計画・展望", r.outlook),
            ("担当課", r.department),
        ):
            celltext.check_fits(text, f"事業No.{catalog.projects[r.project].label}・担当課「{r.department}」の「{column}」")
