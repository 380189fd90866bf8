"""Last year beside this year, on the real R6 answers.

R6: the 12 demo returns (the published answers) merged into an R6 master in an outbox. R7: a plan
made by `plan new-year R7`, whose templates find that master and show each row's R6 rating and
outlook in the reference columns J and K; filled with answers, some ratings changed the way a
department would (tests/returns.py), and merged into an R7 master with 前年度比較. Everything is
read back cell by cell with openpyxl.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest
import yaml
from click.testing import CliRunner
from plan_schemas import SCHEMAS_DIR
from returns import edit_return

from pipeline.catalog import Catalog, load_catalog
from pipeline.cli import cli
from pipeline.compare import compare_years
from pipeline.demo import DEMO_RESULTS, fill_returns
from pipeline.errors import InputError
from pipeline.history import PastEvaluation, PastYear
from pipeline.layout import (
    FIRST_DATA_ROW,
    HEADER_ROW,
    META_KEYS,
    META_SHEET,
    TEMPLATE_SHEET,
    prefilled_values,
    receiving_offices,
    template_name,
)
from pipeline.master import COMPARISON_SHEET, master_sheets, write_master, write_summary
from pipeline.merge import merge
from pipeline.report import Evaluation, FileVerdict, Provenance
from pipeline.runner import run_merge, run_templates
from pipeline.settings import Settings
from pipeline.templates import GUIDE_SHEET, REFERENCE_WIDTHS, row_height
from pipeline.validate import validate_paths

R6_MASTER = "地域福祉計画_評価集約_R6.xlsx"


# --- the two years -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def r6_catalog() -> Catalog:
    return load_catalog("R6")


@pytest.fixture(scope="module")
def published(r6_catalog: Catalog) -> dict[tuple[str, str], dict]:
    """The published R6 answers keyed (project key, 担当課)."""
    data = yaml.safe_load(DEMO_RESULTS.read_text(encoding="utf-8"))
    return {(r6_catalog.project_for(r["project"]).key, r["department"]): r for r in data["results"]}


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped catalog folder with plan-r7.yaml made by `plan new-year R7`."""
    from pipeline.newyear import new_year_plan

    copy = tmp_path_factory.mktemp("cmp") / "schemas"
    shutil.copytree(SCHEMAS_DIR, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__", ".compiled"))
    new_year_plan(copy, "R7")
    return copy


@pytest.fixture(scope="module")
def r7(schemas: Path) -> Catalog:
    return load_catalog("R7", schemas)


@pytest.fixture(scope="module")
def outbox(tmp_path_factory: pytest.TempPathFactory, demo_returns: Path, schemas: Path) -> Path:
    """An outbox holding the R6 master of the 12 demo returns (the published table)."""
    base = tmp_path_factory.mktemp("r6")
    shutil.copytree(demo_returns, base / "inbox")
    run = run_merge(Settings(inbox=base / "inbox", outbox=base / "outbox", schemas=schemas))
    assert run.exit_code == 0 and run.master.name == R6_MASTER
    return base / "outbox"


@pytest.fixture(scope="module")
def r7_templates(tmp_path_factory: pytest.TempPathFactory, outbox: Path, schemas: Path) -> Path:
    out = tmp_path_factory.mktemp("t7")
    paths = run_templates(Settings(outbox=outbox, year="R7", schemas=schemas), out)
    assert len(paths) == 12
    return out


@pytest.fixture(scope="module")
def r7_returns(tmp_path_factory: pytest.TempPathFactory, r7: Catalog, r7_templates: Path) -> Path:
    """The R7 templates filled by the demo's filler (only F/G/H are written), with the R6 answers."""
    base = tmp_path_factory.mktemp("r7returns")
    data = yaml.safe_load(DEMO_RESULTS.read_text(encoding="utf-8"))
    data["fiscal_year"] = "R7"
    results = base / "r7-results.yaml"
    results.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    fill_returns(r7, r7_templates, results, base / "returns")
    return base / "returns"


def rows_of(r7: Catalog, office: str) -> list[tuple[str, str]]:
    """(事業 key, 担当課) of an office's template rows, in row order."""
    return [(r7.project_for(v[1]).key, v[4]) for v in prefilled_values(r7, office)]


# --- 1. last year in this year's template ----------------------------------------------------------


@pytest.mark.parametrize("office", receiving_offices(load_catalog("R6")))
def test_r7_template_shows_each_rows_r6_rating_and_outlook_locked_and_grey(
    r7: Catalog, r7_templates: Path, published: dict, office: str
) -> None:
    wb = openpyxl.load_workbook(r7_templates / template_name(r7, office))
    ws = wb[TEMPLATE_SHEET]
    assert ws["J3"].value == "【参考】\n前年度評価\n(令和6年度)"
    assert ws["K3"].value == "【参考】\n前年度の今後の事業計画・展望\n(令和6年度)"
    assert ws["I3"].value is None and ws.column_dimensions["I"].width == 2  # the gap
    assert ws["J2"].value == "【参考】令和6年度の評価です(記入は不要です)。"
    assert ws["F3"].value == "事業実績・評価理由 (令和7年度)"
    rows = rows_of(r7, office)
    for i, key in enumerate(rows):
        r = FIRST_DATA_ROW + i
        assert (ws[f"J{r}"].value, ws[f"K{r}"].value) == (published[key]["rating"], published[key]["outlook"]), r
        for c in "JK":
            cell = ws[f"{c}{r}"]
            assert cell.protection.locked is True, cell.coordinate
            assert cell.fill.fill_type == "solid" and cell.fill.fgColor.rgb.endswith("EDEDED"), cell.coordinate
            assert cell.alignment.wrap_text, cell.coordinate
        for c in "FGH":  # the answers are still the only unlocked cells
            assert ws[f"{c}{r}"].protection.locked is False
        assert ws[f"I{r}"].value is None
    assert ws.max_column == 11 and ws.max_row == FIRST_DATA_ROW + len(rows) - 1
    assert ws.protection.sheet and wb.security.lockStructure
    # printed with the rest: in the print area, header row repeated, one page wide
    assert ws.print_area == f"'{TEMPLATE_SHEET}'!$A$1:$K${FIRST_DATA_ROW + len(rows) - 1}"
    assert ws.print_title_rows == f"${HEADER_ROW}:${HEADER_ROW}"
    assert ws.page_setup.fitToWidth == 1
    # the same template version; last year's year in one more _meta row after the contract's keys
    meta = wb[META_SHEET]
    keys = [meta.cell(r, 1).value for r in range(1, len(META_KEYS) + 2)]
    assert keys == [*META_KEYS, "previous_year"]
    assert meta.cell(len(META_KEYS) + 1, 2).value == "R6"
    assert any("【参考】欄" in str(c.value) for c in wb[GUIDE_SHEET]["A"])

    # each row is tall enough for last year's outlook too, as generated and after the demo filled it in
    for r, key in enumerate(rows, start=FIRST_DATA_ROW):
        assert ws.row_dimensions[r].height >= row_height([(published[key]["outlook"], REFERENCE_WIDTHS["K"])]), r


def test_filling_in_keeps_the_rows_tall_enough_for_last_years_outlook(r7: Catalog, r7_returns: Path) -> None:
    for office in receiving_offices(r7):
        ws = openpyxl.load_workbook(r7_returns / template_name(r7, office))[TEMPLATE_SHEET]
        for r in range(FIRST_DATA_ROW, ws.max_row + 1):
            need = row_height([(ws[f"{c}{r}"].value or "", w) for c, w in (("F", 60), ("H", 60), *REFERENCE_WIDTHS.items())])
            assert ws.row_dimensions[r].height >= need, (office, r)


def test_a_template_of_a_year_with_no_previous_year_has_no_reference_columns(
    r6_catalog: Catalog, tmp_path: Path
) -> None:
    (tmp_path / "outbox").mkdir()  # no R5 master, no stored table
    run_templates(Settings(outbox=tmp_path / "outbox"), tmp_path / "t")
    wb = openpyxl.load_workbook(tmp_path / "t" / template_name(r6_catalog, "地域安全課"))
    ws = wb[TEMPLATE_SHEET]
    assert ws.max_column == 8 and ws.print_area == f"'{TEMPLATE_SHEET}'!$A$1:$H$5"
    assert "I" not in ws.column_dimensions and "J" not in ws.column_dimensions
    assert ws["J2"].value is None
    assert wb[META_SHEET].cell(len(META_KEYS) + 1, 1).value is None


def test_a_new_assignment_has_a_dash_and_no_outlook(r7: Catalog, tmp_path: Path, published: dict) -> None:
    """A row last year has no evaluation for (a new project, or one not returned) shows 「―」."""
    from pipeline.templates import write_templates

    past = PastYear("R6", "test", {k: PastEvaluation(*k, v["rating"], v["result"], v["outlook"])
                                   for k, v in published.items() if k != ("6", "地域安全課")})
    write_templates(r7, tmp_path, offices=["地域安全課"], previous=past)
    ws = openpyxl.load_workbook(tmp_path / template_name(r7, "地域安全課"))[TEMPLATE_SHEET]
    assert [(ws[f"J{r}"].value, ws[f"K{r}"].value) for r in (4, 5)] == [
        ("A", published[("5", "地域安全課")]["outlook"]), ("―", None)]


def test_a_filled_r7_template_with_reference_columns_validates_with_no_issue(
    r7: Catalog, r7_returns: Path, published: dict
) -> None:
    report = validate_paths(r7, [r7_returns])
    assert len(report.files) == 12
    assert [(f.name, f.status, f.issues) for f in report.files if f.issues or f.status != "accepted"] == []
    rows = {r.key: r for f in report.files for r in f.rows}
    assert len(rows) == 69
    assert all((r.rating, r.result, r.outlook) == (published[k]["rating"], published[k]["result"],
                                                  published[k]["outlook"]) for k, r in rows.items())


def test_what_a_department_writes_into_the_reference_columns_is_ignored(
    r7: Catalog, r7_returns: Path, tmp_path: Path
) -> None:
    """The columns are locked; a department that unprotects the sheet and writes into them (or
    over their headers) changes nothing and gets no warning: they are never read."""
    name = template_name(r7, "地域安全課")
    wb = openpyxl.load_workbook(r7_returns / name)
    ws = wb[TEMPLATE_SHEET]
    ws.protection.sheet = False
    ws["J4"], ws["K4"], ws["J5"] = "C", "=今年度は中止", "A"
    ws["K3"] = "【参考】前年度の今後の事業計画・展望(令和6年度)"  # retyped on one line
    ws["I4"] = "メモ"
    wb.save(tmp_path / name)
    before = validate_paths(r7, [r7_returns / name]).files[0]
    after = validate_paths(r7, [tmp_path / name]).files[0]
    assert (after.status, after.issues) == ("accepted", ())
    assert [(r.key, r.rating, r.result, r.outlook) for r in after.rows] == [
        (r.key, r.rating, r.result, r.outlook) for r in before.rows]


def test_templates_previous_option_and_a_file_that_is_not_last_year(
    r7: Catalog, outbox: Path, schemas: Path, tmp_path: Path
) -> None:
    master = tmp_path / "前年度.xlsx"
    shutil.copy(outbox / R6_MASTER, master)
    settings = tmp_path / "pipeline.toml"
    settings.write_text(f'[paths]\nschemas = "{schemas.as_posix()}"\noutbox = "empty"\n[plan]\nyear = "R7"\n',
                        encoding="utf-8")
    result = CliRunner().invoke(cli, ["--settings", str(settings), "templates", "--out", str(tmp_path / "t"),
                                      "--previous", str(master)])
    assert result.exit_code == 0, result.output
    ws = openpyxl.load_workbook(tmp_path / "t" / template_name(r7, "指導室"))[TEMPLATE_SHEET]
    assert (ws["J4"].value, ws["J3"].value) == ("A", "【参考】\n前年度評価\n(令和6年度)")

    not_a_master = tmp_path / "メモ.xlsx"
    openpyxl.Workbook().save(not_a_master)
    result = CliRunner().invoke(cli, ["--settings", str(settings), "templates", "--out", str(tmp_path / "u"),
                                      "--previous", str(not_a_master)])
    assert result.exit_code == 3 and "前年度の評価を読めません" in result.output
    with pytest.raises(InputError, match="R7 の評価です"):
        from pipeline.history import write_stored

        stored = write_stored(tmp_path / "r7.json", PastYear("R7", "x", {("5", "地域安全課"): PastEvaluation(
            "5", "地域安全課", "A")}))
        run_templates(Settings(outbox=tmp_path, year="R7", schemas=schemas), tmp_path / "v", stored)


# --- 2. year over year in the master and the summary ----------------------------------------------

CHANGES = {
    "地域安全課": {("5", "地域安全課"): {"rating": "C", "result": "こがねい防災フェスタは中止し、訓練も実施できなかった。",
                                      "outlook": "防災訓練を再開する。"},
                 ("6", "地域安全課"): {"rating": "A"}},
    "健康課": {("7", "健康課"): {"rating": "D", "result": "-関係機関との会議は未実施。"}},  # looks like a formula
    "地域福祉課": {("21", "地域福祉課(関係各課)"): {"rating": "B"}, ("41", "地域福祉課"): {"rating": "C"}},
}


@pytest.fixture(scope="module")
def r7_run(tmp_path_factory: pytest.TempPathFactory, r7: Catalog, r7_returns: Path, outbox: Path,
           schemas: Path):
    """The R7 merge: some ratings changed, 指導室 has not returned yet; the R6 master is in the outbox."""
    base = tmp_path_factory.mktemp("r7run")
    inbox = base / "inbox"
    shutil.copytree(r7_returns, inbox)
    (inbox / template_name(r7, "指導室")).unlink()
    for office, changes in CHANGES.items():
        path = inbox / template_name(r7, office)
        edit_return(path, path, changes)
    box = base / "outbox"
    shutil.copytree(outbox, box)
    run = run_merge(Settings(inbox=inbox, outbox=box, year="R7", schemas=schemas))
    return run, openpyxl.load_workbook(run.master), openpyxl.load_workbook(run.summary)


def expected_r7(published: dict) -> dict[tuple[str, str], str]:
    now = {k: v["rating"] for k, v in published.items() if k != ("8", "指導室")}
    for changes in CHANGES.values():
        for key, change in changes.items():
            now[key] = change["rating"]
    return now


def test_the_master_has_a_comparison_sheet_after_the_summary(r7: Catalog, r7_run) -> None:
    run, master, _ = r7_run
    assert tuple(master.sheetnames) == master_sheets(r7, comparison=True)
    assert master.sheetnames.index(COMPARISON_SHEET) == master.sheetnames.index("集計") + 1
    assert run.exit_code == 0
    assert run.report["previous_year"] == {"year": "R6", "source": str(run.previous.source)}
    assert Path(run.report["previous_year"]["source"]).name == R6_MASTER


def find(ws, text: str, column: int = 1) -> int:
    return next(r for r in range(1, ws.max_row + 1) if ws.cell(r, column).value == text)


def test_every_assignment_with_both_ratings_and_the_change(r7: Catalog, r7_run, published: dict) -> None:
    _, master, _ = r7_run
    ws = master[COMPARISON_SHEET]
    head = find(ws, "事業・担当課別の比較") + 1
    assert [ws.cell(head, c).value for c in range(1, 7)] == [
        "事業No.", "個別事業・取り組み", "担当課", "前年度評価\n(令和6年度)", "今年度評価\n(令和7年度)", "変化"]
    now = expected_r7(published)
    arrows = {}
    for i, a in enumerate(sorted(r7.assignments, key=lambda a: a.order)):
        r = head + 1 + i
        p = r7.projects[a.project]
        before, after = published[a.key]["rating"], now.get(a.key)
        got = [ws.cell(r, c).value for c in range(1, 7)]
        assert got[:5] == [int(p.label) if p.label.isdigit() else p.label, p.name, a.department, before,
                           after or "未提出"], r
        arrows[a.key] = got[5]
    assert arrows[("5", "地域安全課")] == "↓" and arrows[("7", "健康課")] == "↓"
    assert arrows[("6", "地域安全課")] == "↑" and arrows[("21", "地域福祉課(関係各課)")] == "↑"
    assert arrows[("41", "地域福祉課")] == "↑"  # D → C: better, though C
    assert arrows[("8", "指導室")] == "―"
    assert {k: v for k, v in arrows.items() if v not in ("→",)}.keys() == {
        ("5", "地域安全課"), ("7", "健康課"), ("6", "地域安全課"), ("21", "地域福祉課(関係各課)"), ("41", "地域福祉課"),
        ("8", "指導室")}
    assert ws.cell(head + 1 + len(r7.assignments), 1).value is None
    assert ws.auto_filter.ref == f"A{head}:F{head + len(r7.assignments)}"
    assert {b.id for b in ws.row_breaks.brk} == {head - 2}  # a page break just above the title: a new page


TRANSITIONS = {  # goal → (previous, current) → count; every other cell is 0
    1: {("A", "A"): 23, ("A", "C"): 1, ("B", "A"): 1, ("B", "B"): 7, ("B", "D"): 1},
    2: {("A", "A"): 6, ("B", "B"): 9, ("D", "B"): 1, ("D", "D"): 2},
    3: {("A", "A"): 10, ("B", "B"): 6, ("D", "C"): 1},
}


def test_transition_table_of_the_whole_plan(r7: Catalog, r7_run) -> None:
    """Below the goals' tables, the whole plan's: the sum of theirs, with what it leaves out."""
    _, master, _ = r7_run
    ws = master[COMPARISON_SHEET]
    top = find(ws, f"{r7.title}全体: 評価の推移(件数)")
    for i, before in enumerate("ABCD"):
        row = [ws.cell(top + 2 + i, c).value for c in range(3, 9)]
        counts = [sum(TRANSITIONS[g].get((before, after), 0) for g in TRANSITIONS) for after in "ABCD"]
        assert row == [f"前年度 {before}", *counts, sum(counts)], before
    total = sum(sum(t.values()) for t in TRANSITIONS.values())
    assert ws.cell(top + 6, 8).value == total
    assert ws.cell(top + 7, 3).value == "表に含まないもの: 前年度の評価なし 0 件・今年度未提出 1 件・未反映 0 件"


@pytest.mark.parametrize("g", [1, 2, 3])
def test_transition_table_per_goal(r7: Catalog, r7_run, g: int) -> None:
    _, master, _ = r7_run
    ws = master[COMPARISON_SHEET]
    goal = next(x for x in r7.goals if x.number == g)
    top = find(ws, f"基本目標{g} {goal.name}: 評価の推移(件数)")
    assert [ws.cell(top + 1, c).value for c in range(3, 9)] == ["前年度＼今年度(令和7年度)", "A", "B", "C", "D", "合計"]
    expected = TRANSITIONS[g]
    for i, before in enumerate("ABCD"):
        row = [ws.cell(top + 2 + i, c).value for c in range(3, 9)]
        counts = [expected.get((before, after), 0) for after in "ABCD"]
        assert row == [f"前年度 {before}", *counts, sum(counts)], (g, before)
    totals = [ws.cell(top + 6, c).value for c in range(3, 9)]
    columns = [sum(expected.get((b, a), 0) for b in "ABCD") for a in "ABCD"]
    assert totals == ["合計", *columns, sum(expected.values())]
    missing = 1 if g == 1 else 0  # 指導室's 事業8
    assert ws.cell(top + 7, 3).value == f"表に含まないもの: 前年度の評価なし 0 件・今年度未提出 {missing} 件・未反映 0 件"
    # worse (upper right) and better (lower left) are told apart by colour, not only by place
    assert ws.cell(top + 2, 6).fill.fgColor.rgb.endswith("FCE4D6")
    assert ws.cell(top + 3, 4).fill.fgColor.rgb.endswith("E2EFDA")


def test_the_assignments_that_fell_to_c_or_d_with_this_years_reason(r7_run) -> None:
    _, master, _ = r7_run
    ws = master[COMPARISON_SHEET]
    top = find(ws, "C・D に下がった事業・担当課")
    assert [ws.cell(top + 1, c).value for c in range(1, 8)] == [
        "事業No.", "個別事業・取り組み", "担当課", "前年度評価\n(令和6年度)", "今年度評価\n(令和7年度)", "変化",
        "事業実績・評価理由(令和7年度)"]
    got = [[ws.cell(r, c).value for c in range(1, 8)] for r in (top + 2, top + 3)]
    assert got == [
        [5, "自主防災組織の育成", "地域安全課", "A", "C", "↓", CHANGES["地域安全課"][("5", "地域安全課")]["result"]],
        [7, "災害時における避難行動要支援者への支援体制の充実", "健康課", "B", "D", "↓",
         CHANGES["健康課"][("7", "健康課")]["result"]],
    ]
    assert ws.cell(top + 4, 1).value is None  # 41 went D → C: up, not a fall
    assert ws.cell(top + 3, 7).quotePrefix and not ws.cell(top + 2, 7).quotePrefix  # inert text, as typed
    assert f"G{top + 2}:I{top + 2}" in {str(m) for m in ws.merged_cells.ranges}


def test_summary_compares_the_counts_per_goal_with_a_clustered_bar_chart(r7: Catalog, r7_run, published) -> None:
    run, _, summary = r7_run
    assert summary.sheetnames == [*(f"基本目標{g.number}" for g in r7.goals), COMPARISON_SHEET]
    ws = summary[COMPARISON_SHEET]
    now = expected_r7(published)
    heads = []
    for g in r7.goals:
        top = find(ws, f"基本目標 {g.number} {g.name}")
        head = top + 1
        heads.append(head)
        assert [ws.cell(head, c).value for c in range(1, 5)] == ["評価", "前年度(令和6年度)", "今年度(令和7年度)", "増減"]
        # the assignments rated in both years: 増減 is rating changes, not answers missing this year
        keys = [a.key for a in r7.assignments if r7.goal_of(a.project) == g.number and now.get(a.key)]
        for i, letter in enumerate("ABCD"):
            before = sum(published[k]["rating"] == letter for k in keys)
            after = sum(now.get(k) == letter for k in keys)
            assert [ws.cell(head + 1 + i, c).value for c in range(1, 5)] == [letter, before, after, after - before]
        assert [ws.cell(head + 5, c).value for c in range(1, 5)] == ["合計", len(keys), len(keys), 0]
        assert ws.cell(head + 6, 1).value.startswith("表に含まないもの: ")
    # goal 1: last year A25 B9, of which 指導室's A has no answer this year (in the note, not in 増減)
    assert [ws.cell(heads[0] + 1 + i, 2).value for i in range(4)] == [24, 9, 0, 0]
    assert [ws.cell(heads[0] + 1 + i, 3).value for i in range(4)] == [24, 7, 1, 1]
    assert ws.cell(heads[0] + 6, 1).value == "表に含まないもの: 前年度の評価なし 0 件・今年度未提出 1 件・未反映 0 件"
    with zipfile.ZipFile(run.summary) as z:
        charts = sorted(n for n in z.namelist() if re.fullmatch(r"xl/charts/chart\d+\.xml", n))
        xml = {n: z.read(n).decode("utf-8") for n in charts}
    clustered = [x for x in xml.values() if '<c:grouping val="clustered"/>' in x]
    assert len(clustered) == 3 and all('<c:barDir val="col"/>' in x for x in clustered)
    for head, x in zip(heads, clustered, strict=True):  # chart order follows the goals
        refs = re.findall(r"<c:f>([^<]+)</c:f>", x)
        assert refs == [
            f"前年度比較!$B${head}", f"前年度比較!$A${head + 1}:$A${head + 4}", f"前年度比較!$B${head + 1}:$B${head + 4}",
            f"前年度比較!$C${head}", f"前年度比較!$A${head + 1}:$A${head + 4}", f"前年度比較!$C${head + 1}:$C${head + 4}",
        ]


def test_no_previous_year_no_comparison_sheet_and_the_same_sheets(r6_catalog: Catalog, outbox: Path) -> None:
    master = openpyxl.load_workbook(outbox / R6_MASTER)
    assert tuple(master.sheetnames) == master_sheets(r6_catalog)
    assert COMPARISON_SHEET not in openpyxl.load_workbook(outbox / "地域福祉計画_評価集計_R6.xlsx").sheetnames


def test_comparison_is_deterministic_and_has_no_formula(tmp_path: Path, r7: Catalog, published: dict) -> None:
    rows = [Evaluation(*k, v["result"], v["rating"], v["outlook"], "f.xlsx", "記入シート", 4)
            for k, v in published.items()]
    files = [FileVerdict.judged(Provenance("f.xlsx"), [], rows, office="地域福祉課", office_source="template")]
    outcome = merge(r7, files)
    past = PastYear("R6", "地域福祉計画_評価集約_R6.xlsx",
                    {k: PastEvaluation(*k, "B" if v["rating"] == "A" else v["rating"]) for k, v in published.items()})
    blobs = []
    for n in (1, 2):
        write_master(tmp_path / f"m{n}.xlsx", r7, outcome, files, [], generated="2026-05-01T09:00:00+09:00",
                     previous=past)
        write_summary(tmp_path / f"s{n}.xlsx", r7, outcome, generated="2026-05-01T09:00:00+09:00", previous=past)
        blobs.append(((tmp_path / f"m{n}.xlsx").read_bytes(), (tmp_path / f"s{n}.xlsx").read_bytes()))
    assert blobs[0] == blobs[1]
    for name in ("m1.xlsx", "s1.xlsx"):
        with zipfile.ZipFile(tmp_path / name) as z:
            for part in z.namelist():
                if part.startswith("xl/worksheets/sheet"):
                    assert "<f>" not in z.read(part).decode("utf-8"), (name, part)


def test_new_and_not_returned_are_told_apart_when_last_years_plan_is_known(r7: Catalog, published: dict) -> None:
    evaluations = {k: PastEvaluation(*k, v["rating"]) for k, v in published.items()
                   if k not in (("5", "地域安全課"), ("6", "地域安全課"))}
    plan = frozenset(k for k in published if k != ("5", "地域安全課"))  # 5 is new this year; 6 was not returned
    rows = [Evaluation(*k, "", v["rating"], "") for k, v in published.items() if k != ("1", "地域福祉課(関係各課)")]
    c = compare_years(r7, rows, PastYear("R6", "x", evaluations, plan))
    by_key = {ch.key: ch for ch in c.changes}
    assert [(by_key[k].previous_text, by_key[k].current_text, by_key[k].change_text) for k in (
        ("5", "地域安全課"), ("6", "地域安全課"), ("1", "地域福祉課(関係各課)"))] == [
        ("新規", "A", "―"), ("―", "B", "―"), ("A", "未提出", "―")]
    goal1 = c.goals[0]
    assert (goal1.no_previous, goal1.new, goal1.not_returned, goal1.compared) == (2, 1, 1, 31)
    # without last year's plan, a missing evaluation is only 「―」
    c = compare_years(r7, rows, PastYear("R6", "x", evaluations))
    assert next(ch for ch in c.changes if ch.key == ("5", "地域安全課")).previous_text == "―"


def test_the_comparison_names_the_table_staff_imported(r7: Catalog, published: dict, tmp_path: Path) -> None:
    """After import-published, last year is read from outbox/history/evaluations-R6.json; the
    sheets name the table staff gave, the run report the file read."""
    from pipeline.history import read_stored, write_stored
    from pipeline.sheets.comparison import comparison_notes

    evaluations = {k: PastEvaluation(*k, v["rating"]) for k, v in published.items()}
    stored = write_stored(tmp_path / "evaluations-R6.json", PastYear("R6", "令和6年度評価表.xlsx", evaluations))
    past = read_stored(stored)
    assert past is not None and past.source == str(stored) and past.imported_from == "令和6年度評価表.xlsx"
    rows = [Evaluation(*k, "", v["rating"], "") for k, v in published.items()]
    c = compare_years(r7, rows, past)
    assert c.source == "令和6年度評価表.xlsx"
    assert "前年度(令和6年度)の評価: 令和6年度評価表.xlsx" in comparison_notes(c)[0]
    # stored again (a later import of the same year), the imported table's name stays
    again = read_stored(write_stored(tmp_path / "again.json", past))
    assert again is not None and again.imported_from == "令和6年度評価表.xlsx"


# --- 3. checks that read the text, wired into the merge ------------------------------------------


def test_the_r6_answers_give_the_two_documented_warnings(outbox: Path) -> None:
    import json

    report = json.loads((outbox / "run-report.json").read_text(encoding="utf-8"))
    assert report["exit_code"] == 0 and report["rows"] == 69
    found = [(f["name"], i["code"], i["cell"], i["severity"]) for f in report["files"] for i in f["issues"]]
    assert found == [
        ("R6_地域福祉計画評価_地域安全課.xlsx", "reason-says-not-done", "F4", "warning"),
        ("R6_地域福祉計画評価_地域福祉課.xlsx", "reason-says-not-done", "F7", "warning"),
    ]
    assert report["warnings"] == 2 and report["acknowledged"] == [] and report["previous_year"] is None
    issues = openpyxl.load_workbook(outbox / R6_MASTER)["検証結果"]
    assert [(r[0], r[2], r[3]) for r in issues.iter_rows(min_row=2, max_row=3, values_only=True)] == [
        ("R6_地域福祉計画評価_地域安全課.xlsx", "F4", "reason-says-not-done"),
        ("R6_地域福祉計画評価_地域福祉課.xlsx", "F7", "reason-says-not-done"),
    ]


def test_an_acknowledged_warning_moves_to_the_acknowledged_list(
    tmp_path: Path, demo_returns: Path, schemas: Path
) -> None:
    own = tmp_path / "schemas"
    shutil.copytree(schemas, own)
    why = "防災フェスタは台風で中止したが、水防訓練・防災講習会は実施しており評価 A で正しい。"
    (own / "acknowledged.yaml").write_text(yaml.safe_dump({"acknowledged": [
        {"year": "R6", "project": "5", "department": "地域安全課", "code": "reason-says-not-done",
         "who": "地域福祉課 地域福祉係", "why": why},
        {"year": "R5", "project": "9", "department": "地域福祉課", "code": "reason-says-not-done",
         "who": "地域福祉課", "why": "前年度の確認は今年度には効かない"},
    ]}, allow_unicode=True), encoding="utf-8")
    shutil.copytree(demo_returns, tmp_path / "inbox")
    run = run_merge(Settings(inbox=tmp_path / "inbox", outbox=tmp_path / "out", schemas=own))
    assert run.exit_code == 0
    assert [(n.file, n.code, n.cell) for n in run.outcome.notes] == [
        ("R6_地域福祉計画評価_地域福祉課.xlsx", "reason-says-not-done", "F7")]
    assert run.report["warnings"] == 1
    (entry,) = run.report["acknowledged"]
    assert {k: entry[k] for k in ("code", "project", "department", "who", "why", "file", "cell")} == {
        "code": "reason-says-not-done", "project": "5", "department": "地域安全課", "who": "地域福祉課 地域福祉係",
        "why": why, "file": "R6_地域福祉計画評価_地域安全課.xlsx", "cell": "F4"}
    files = {f["name"]: f for f in run.report["files"]}
    assert files["R6_地域福祉計画評価_地域安全課.xlsx"]["issues"] == []

    ws = openpyxl.load_workbook(run.master)["検証結果"]
    assert [c.value for c in ws[2]][:4] == ["R6_地域福祉計画評価_地域福祉課.xlsx", "記入シート", "F7", "reason-says-not-done"]
    assert ws.cell(3, 1).value is None  # the open issues end here, then a gap
    top = find(ws, "確認済みの警告(schemas/acknowledged.yaml)")
    assert top == 4
    assert [ws.cell(top + 2, c).value for c in range(1, 7)] == ["ファイル", "シート", "セル", "コード", "重要度", "内容"]
    row = [ws.cell(top + 3, c).value for c in range(1, 7)]
    assert row[:5] == ["R6_地域福祉計画評価_地域安全課.xlsx", "記入シート", "F4", "reason-says-not-done", "確認済み"]
    assert row[5].endswith(f"\n確認: 地域福祉課 地域福祉係 ― {why}") and "台風により中止" in row[5]
    assert ws.auto_filter.ref == "A1:F2"  # the filter covers the open issues only

    # A new acknowledgement with nothing else new: the workbooks are written again, not kept.
    (own / "acknowledged.yaml").write_text("acknowledged: []\n", encoding="utf-8")
    again = run_merge(Settings(inbox=tmp_path / "inbox", outbox=tmp_path / "out", schemas=own))
    assert again.report["acknowledged"] == [] and again.report["warnings"] == 2
    ws = openpyxl.load_workbook(again.master)["検証結果"]
    assert ws.cell(3, 4).value == "reason-says-not-done" and ws.cell(5, 1).value is None


def test_r7_warns_about_reasons_copied_from_r6(r7_run) -> None:
    run = r7_run[0]
    same = [n for n in run.outcome.notes if n.code == "reason-same-as-last-year"]
    # every R7 answer was the R6 answer, but for the two reasons rewritten and 指導室's missing one
    assert len(same) == 69 - 1 - 2
    assert {(n.project, n.department) for n in same}.isdisjoint({("5", "地域安全課"), ("7", "健康課"), ("8", "指導室")})
    assert all(n.cell == f"F{n.row}" and n.severity == "warning" for n in same)
    assert run.exit_code == 0


def test_merge_previous_option_names_last_years_table(
    tmp_path: Path, r7: Catalog, r7_returns: Path, schemas: Path, published: dict
) -> None:
    """`merge --previous FILE` with a stored table (as import-published writes it); a schemas folder
    of the staff's own without text_checks.yaml uses the shipped rules."""
    from pipeline.history import write_stored

    own = tmp_path / "schemas"
    shutil.copytree(schemas, own, ignore=shutil.ignore_patterns("text_checks.yaml", "plan-r6.yaml"))
    past = PastYear("R6", "公表資料", {k: PastEvaluation(*k, "A", v["result"], v["outlook"])
                                     for k, v in published.items()})
    stored = write_stored(tmp_path / "令和6年度.json", past)
    settings = tmp_path / "pipeline.toml"
    settings.write_text(f'[paths]\nschemas = "{own.as_posix()}"\ninbox = "{r7_returns.as_posix()}"\n'
                        f'outbox = "out"\n[plan]\nyear = "R7"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--settings", str(settings), "merge", "--previous", str(stored)])
    assert result.exit_code == 0, result.output
    assert "前年度比較: R6 の評価(令和6年度.json)と比べました" in result.output
    ws = openpyxl.load_workbook(tmp_path / "out" / "地域福祉計画_評価集約_R7.xlsx")[COMPARISON_SHEET]
    head = find(ws, "事業・担当課別の比較") + 1
    changes = [ws.cell(r, 6).value for r in range(head + 1, head + 70)]
    assert changes.count("↓") == sum(v["rating"] != "A" for v in published.values()) == 28
    assert changes.count("→") == 69 - 28
    top = find(ws, "C・D に下がった事業・担当課")
    assert [ws.cell(top + 2 + i, 1).value for i in range(5)] == [21, 23, 24, 41, None]  # the four D, from A
    assert "記述の点検: 要確認 71 件" in result.output  # the 69 reasons are last year's, and the two of R6
