"""`pipeline validate`: returned workbooks built in the test, validated, and every issue asserted at
its exact (sheet, cell, code).

One inbox holds every case and is validated once, as the nightly run does (one reader process, one
lazy pandera pass over the rows of all files): the published R6 table as a non-template workbook,
the same table with the misspelling the published PDF actually has, the demo returns made from our
templates, templates tampered with, a department's compiled copy with every typing variant, and
files that are not returns at all. Fixtures are built here with openpyxl; no binaries are committed.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from builders import (
    CATALOG,
    NOTE,
    PRINTED_MEASURES,
    PUBLISHED_HEADER,
    RESULTS,
    TITLE,
    paginate,
    published_layout,
    published_rows,
    published_sheets,
    structure_rows,
    write_book,
)
from openpyxl import load_workbook

from pipeline.report import CODES, ExcludedRow, FileVerdict, ValidationReport
from pipeline.templates import (
    FIRST_DATA_ROW,
    META_KEYS,
    META_SHEET,
    TEMPLATE_SHEET,
    prefilled_values,
    template_name,
)
from pipeline.validate import validate_paths

# A department's own copy: 地域福祉課 compiled the answers of several offices into a workbook of its
# own. Columns reordered, an extra 備考, labels with line breaks and full-width characters, two data
# sheets, a page-break header repeat, blank rows, merged 事業No./施策No./name cells over the
# continuation rows, and every way people type what the template would have printed for them.
COPY_HEADER = (
    "担当課",
    "事業\nNo.",
    "施策Ｎｏ．",
    "事業\n評価",
    "事業実績・評価理由\n（令和６年度）",
    "今後の事業計画・\n展望",
    "備考",
    "【個別事業・取り組み】",
)
LONG_TEXT = "相談支援の実績。" * 4125  # 33,000 characters: over Excel's 32,767 per cell
LONG_MARKER = "@@LONG_TEXT@@"  # openpyxl cuts strings at 32,767 on writing: patched into the package after
FREE_TEXT = "㈱ケアサポート小金井に委託し、①相談 ②訪問を実施。ＮＰＯ法人との連携は（継続）。"


def answer(project: str, department: str, field: str) -> str:
    return RESULTS[(project, department)][field]


def copy_row(dept: str, project: Any, measure: Any, rating: Any, result: Any = None, outlook: Any = None,
             note: Any = None, name: Any = None, key: tuple[str, str] | None = None) -> list[Any]:
    """A row in COPY_HEADER's column order; result/outlook default to the published answer of `key`."""
    if key is not None:
        result = answer(*key, "result") if result is None else result
        outlook = answer(*key, "outlook") if outlook is None else outlook
    return [dept, project, measure, rating, result, outlook, note, name]


COPY_SHEETS: dict[str, list[list[Any]]] = {
    "基本目標1": [
        ["令和6年度 地域福祉計画 評価 取りまとめ(地域福祉課)"],
        [],
        list(COPY_HEADER),
        # 4: project 9 and its four 担当課, 事業No./施策No./name merged over rows 4-7
        copy_row("地域福祉課(関係各課)", 9.0, "(3) /①", "Ｂ", key=("9", "地域福祉課(関係各課)"),
                 name="市民に対する啓発活動の推進", note="前年度と同様"),
        copy_row("自立生活支援課", None, None, "A", key=("9", "自立生活支援課")),
        copy_row("介護福祉課", None, None, " a ", key=("9", "介護福祉課")),
        copy_row("広報秘書課", None, None, "A", key=("9", "広報秘書課")),
        [],
        list(COPY_HEADER),  # 9: page break
        copy_row("自立生活支援課", "4", "（１）②", " b ", key=("4", "自立生活支援課"), name="移送サービスへの支援"),
        copy_row("自立生活支援課", "10", "⑶②", "E", key=("10", "自立生活支援課")),  # 11
        copy_row("自立生活支援課", "12", "(3)-2", "B A", key=("12", "自立生活支援課")),
        copy_row("自立生活支援課", "15", "(3)③", "良", key=("15", "自立生活支援課")),  # 13
        copy_row("自立生活支援課", "16", "(4) ／ ①", None, key=("16", "自立生活支援課")),
        copy_row("自立生活支援課", "17", "(9)①", "A", key=("17", "自立生活支援課")),  # 15
        copy_row("自立生活支援課", "18", "abc", "A", key=("18", "自立生活支援課")),
        copy_row("自立生活支援課", "９", None, "A", key=("9", "自立生活支援課")),  # 17: a duplicate
        copy_row("自立生活支援課", "99", None, "A", "実績なし", "未定"),
        [],
        ["※ 事業評価は各課の自己評価による。"],  # 20
    ],
    "基本目標2": [
        list(COPY_HEADER),
        # 2: a literal _x000D_ (written escaped, so the reader returns the 7 characters)
        copy_row("自立生活支援課", "２０", "(1)①", "A", "相談件数は増加した。_x005F_x000D_\n連携会議を4回開催。",
                 key=("20", "自立生活支援課")),
        copy_row("自立生活支援課", "21", "(1)①", "B", LONG_MARKER, key=("21", "自立生活支援課")),  # 3
        copy_row("子ども家庭センター", None, None, "A", FREE_TEXT, key=("21", "子ども家庭センター")),
        copy_row("地域福祉課(関係各課)", "31~34", "(3)①", "A", key=("31-34", "地域福祉課(関係各課)")),  # 5
        copy_row("地域福祉課(関係各課)", "３１～３４", None, "A", key=("31-34", "地域福祉課(関係各課)")),
        copy_row("地域福祉課(関係各課)", "31-34", None, "A", key=("31-34", "地域福祉課(関係各課)")),  # 7
        copy_row("地域福祉課(関係各課)", "32", None, "A", key=("31-34", "地域福祉課(関係各課)")),
        copy_row("自立生活支援係", "30", "(2) /②", "A", key=("30", "自立生活支援課")),  # 9
        copy_row("介護福祉課", "13", "(3)③", "5", "苦情調整の周知を行った。", "継続する。"),  # 10: two errors
        copy_row("自立生活支援課", "30", "(2)②", "A", "", key=("30", "自立生活支援課")),  # 11
        # 12: a CR-LF inside the text (the reader decodes Excel's _x000D_ escape to CR)
        copy_row("自立生活支援課", "44", "(3)①", "A", "事業所連絡会で周知した。_x000D_\n見学会を実施。",
                 key=("44", "関係各課(自立生活支援課)")),
        [],
        ["注: 数値は令和7年3月末時点。"],
    ],
}
COPY_MERGES = ("基本目標1!B4:B7", "基本目標1!C4:C7", "基本目標1!H4:H7")


def replace_in_package(path: Path, old: str, new: str) -> None:
    """Replace text inside the workbook's XML parts (as another program would have written it)."""
    with zipfile.ZipFile(path) as z:
        parts = [(info, z.read(info)) for info in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in parts:
            if info.filename.endswith(".xml"):
                data = data.replace(old.encode(), new.encode())
            z.writestr(info, data)


def one_sheet_published() -> dict[str, list[list[Any]]]:
    """The published table in one sheet, as a PDF-to-Excel conversion gives it: the structure
    blocks of goals 2 and 3 between the tables, page-break header repeats, the ※ note at the end."""
    rows: list[list[Any]] = [[TITLE], []]
    for g in CATALOG.goals:
        table, _ = paginate(published_rows(g.number))
        rows += [*structure_rows(g.number), [], *table, []]
    return {"評価": [*rows, [NOTE]]}


def tamper_template(src: Path, dest: Path, cells: dict[str, Any] | None = None,
                    meta: dict[str, str] | None = None, append: Sequence[Any] = ()) -> Path:
    """A filled return edited with openpyxl: cells of 記入シート, _meta values, a row added below."""
    wb = load_workbook(src)
    ws = wb[TEMPLATE_SHEET]
    for ref, value in (cells or {}).items():
        ws[ref].value = value
    if meta:
        m = wb[META_SHEET]
        for r in range(1, len(META_KEYS) + 1):
            if m.cell(r, 1).value in meta:
                m.cell(r, 2).value = meta[m.cell(r, 1).value]
    if append:
        ws.append(list(append))
    wb.save(dest)
    return dest


def template_row(office: str, key: tuple[str, str]) -> int:
    """The Excel row of an assignment in an office's template."""
    values = prefilled_values(CATALOG, office)
    return FIRST_DATA_ROW + [(CATALOG.project_for(v[1]).key, v[4]) for v in values].index(key)


@pytest.fixture(scope="module")
def mixed_inbox(tmp_path_factory: pytest.TempPathFactory, demo_returns: Path) -> Path:
    """Every case in one folder, as the office's shared inbox would hold them."""
    returns_dir = demo_returns
    box = tmp_path_factory.mktemp("inbox")
    write_book(box / "R6_評価表_公表版.xlsx", published_sheets())
    write_book(box / "R6_評価表_公表版_誤記.xlsx", published_sheets({("18", "自立生活支援課"): "自立相談支援課"}))
    write_book(box / "R6_評価表_1シート.xlsx", one_sheet_published())
    copy = write_book(box / "取りまとめ_R6.xlsx", COPY_SHEETS, COPY_MERGES)
    replace_in_package(copy, LONG_MARKER, LONG_TEXT)
    # the demo returns, untouched, in a subfolder (found recursively)
    shutil.copytree(returns_dir, box / "returns")
    jiritsu = returns_dir / template_name(CATALOG, "自立生活支援課")
    tamper_template(jiritsu, box / "自立生活支援課_改変.xlsx", cells={
        "D4": "移送サービスを実施しているNPO法人等へ助成します。",  # 内容 of project 4 shortened
        f"E{template_row('自立生活支援課', ('9', '自立生活支援課'))}": "介護福祉課",
    })
    tamper_template(returns_dir / template_name(CATALOG, "健康課"), box / "健康課_R5.xlsx", meta={"fiscal_year": "R5"})
    tamper_template(returns_dir / template_name(CATALOG, "指導室"), box / "指導室_旧版.xlsx",
                    meta={"catalog_version": "0123456789ab"})
    tamper_template(returns_dir / template_name(CATALOG, "男女共同参画室"), box / "男女共同参画室_課名違い.xlsx",
                    meta={"office": "人権推進課"})
    tamper_template(
        returns_dir / template_name(CATALOG, "交通対策課"), box / "交通対策課_他課の行.xlsx",
        append=["(1)②", "4", "移送サービスへの支援", CATALOG.projects["4"].content, "自立生活支援課",
                answer("4", "自立生活支援課", "result"), "B", answer("4", "自立生活支援課", "outlook")],
    )
    # not returns
    write_book(box / "メモ.xlsx", {"メモ": [["提出状況メモ"], ["交通対策課", "提出済"], ["健康課", "未提出"]]})
    write_book(box / "列不足.xlsx", {"評価": [["事業No.", "担当課", "事業評価", "事業実績・評価理由"],
                                              ["3", "交通対策課", "A", "実施した。"]]})
    write_book(box / "空.xlsx", {"評価": [list(PUBLISHED_HEADER), [], [NOTE]]})
    write_book(box / "交通対策課_回答.xlsm", {"Sheet1": [list(PUBLISHED_HEADER),
                                                       ["(1) ②", 3, "CoCoバスの利便性向上", None, "交通対策課\u3000",
                                                        answer("3", "交通対策課", "result"), "A",
                                                        answer("3", "交通対策課", "outlook")]]})
    write_book(box / "地域安全課_回答.xlsx", {
        "基本目標1": [list(PUBLISHED_HEADER), ["(2) ①", 5, "自主防災組織の育成", None, "地域安全課",
                                             answer("5", "地域安全課", "result"), "A", answer("5", "地域安全課", "outlook")]],
        "基本目標3": [list(PUBLISHED_HEADER)],  # left with just its header: nothing to report there
    })
    (box / "~$取りまとめ_R6.xlsx").write_bytes(b"\x0bowner\x00" * 20)
    (box / "評価表_公表版.pdf").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    (box / "依頼文.docx").write_bytes(b"PK\x03\x04 not really")
    (box / "評価表.xlsx").write_text("事業No.,担当課,事業評価\n4,自立生活支援課,B\n", encoding="utf-8")
    return box


@pytest.fixture(scope="module")
def validated(mixed_inbox: Path) -> ValidationReport:
    return validate_paths(CATALOG, [mixed_inbox])


def by_name(report: ValidationReport, name: str) -> FileVerdict:
    matches = [f for f in report.files if f.name == name]
    assert len(matches) == 1, [f.name for f in report.files]
    return matches[0]


def triples(f: FileVerdict) -> list[tuple[str, str, str]]:
    return sorted((i.sheet, i.cell, i.code) for i in f.issues)


def evaluations(f: FileVerdict) -> list[tuple[str, int, str, str, str]]:
    """(sheet, row, project key, 担当課 as published, rating) of each accepted row."""
    return [(e.sheet, e.row, e.project, e.department, e.rating) for e in f.rows]


def published_answers(f: FileVerdict) -> dict[tuple[str, str], tuple[str, str, str]]:
    out = {e.key: (e.result, e.rating, e.outlook) for e in f.rows}
    assert len(out) == len(f.rows), "an assignment was read twice"
    return out


EXPECTED_ANSWERS = {key: (r["result"], r["rating"], r["outlook"]) for key, r in RESULTS.items()}
ALL_OFFICES = {a.office for a in CATALOG.assignments}
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
PLACEHOLDER = re.compile(r"\{[A-Za-z_][^{}]*\}")

# The 施策No. cells of the published workbook: printed with spaces and slashes, each read as the
# canonical code with a value-normalised warning. Nothing else in the published table is changed.
PUBLISHED_WARNINGS = [
    *(("基本目標1", f"A{r}", "value-normalised") for r in (13, 15, 17, 20, 22, 28, 38, 44, 49)),
    *(("基本目標2", f"A{r}", "value-normalised") for r in (11, 19, 21, 25, 27, 30)),
    *(("基本目標3", f"A{r}", "value-normalised") for r in (11, 13, 18, 25, 27)),
]


# --- The published R6 table, read as a non-template return ----------------------------------------


def test_published_table_is_read_whole(validated: ValidationReport) -> None:
    f = by_name(validated, "R6_評価表_公表版.xlsx")
    assert (f.status, f.kind) == ("accepted", "table")
    # no template, no sender, no office in the name: read row by row, and said to be unverified
    assert triples(f) == sorted([*PUBLISHED_WARNINGS, ("", "", "office-unverified")])
    # every answer as published, under the 担当課 as published, at the row it was printed on
    assert published_answers(f) == EXPECTED_ANSWERS
    layout = published_layout()
    assert {e.key: (e.sheet, e.row) for e in f.rows} == {k: v[:2] for k, v in layout.items()}
    # the warnings sit exactly where a 施策No. is printed, and name the canonical code
    printed = {(sheet, f"A{row}"): values[0] for sheet, row, values in layout.values() if values[0]}
    normalised = [i for i in f.issues if i.code == "value-normalised"]
    assert {(i.sheet, i.cell) for i in normalised} == set(printed)
    for i in normalised:
        assert i.value == printed[(i.sheet, i.cell)]
        assert f"「{parse_code(i.value)}」として読み込みました" in i.message
    assert by_cell(f, "基本目標1", "A49").value == "(4) ／ ②"
    assert f.offices == ALL_OFFICES and (f.office, f.office_source) == ("", "none")  # each row's 担当課 says


def parse_code(printed: str) -> str:
    from pipeline.normalize import parse_measure

    code = parse_measure(printed)
    assert code is not None
    return code


def by_cell(f: FileVerdict, sheet: str, cell: str, code: str | None = None) -> Any:
    found = [i for i in f.issues if (i.sheet, i.cell) == (sheet, cell) and (code is None or i.code == code)]
    assert len(found) == 1, found
    return found[0]


def test_published_fixture_has_the_published_layout() -> None:
    """The fixture itself: continuation rows blank, one of them right after a page-break header."""
    sheet = published_sheets()["基本目標1"]
    header_rows = [r for r, row in enumerate(sheet) if row == list(PUBLISHED_HEADER)]
    assert len(header_rows) >= 3 and header_rows[0] < 30
    assert any(sheet[r + 1][1] is None for r in header_rows[1:]), "no continuation row after a page break"
    assert sheet[-1] == [NOTE] and sheet[0] == [TITLE]
    rows = [row for rows in published_sheets().values() for row in rows if len(row) == 8 and row[4] != "担当課"]
    assert len(rows) == 69
    assert sum(row[1] is None for row in rows) == 69 - len(CATALOG.projects)  # continuation rows
    numbers = [r[1] for r in rows]
    assert rows[numbers.index(8)][:2] == ["(3) /①", 8]  # a 施策 begins: its code printed
    assert rows[numbers.index(9)][:2] == [None, 9]  # same 施策: blank
    assert [r[4] for r in rows[numbers.index(9):numbers.index(10)]] == [
        "地域福祉課(関係各課)", "自立生活支援課", "介護福祉課", "広報秘書課"
    ]
    assert "31～34" in [r[1] for r in rows]


def test_published_table_in_one_sheet_skips_the_title_blocks(validated: ValidationReport) -> None:
    """One sheet: the 基本目標 / 施策の方向性 / 施策 blocks of goals 2 and 3 sit between the tables."""
    f = by_name(validated, "R6_評価表_1シート.xlsx")
    assert (f.status, f.kind) == ("accepted", "table")
    assert published_answers(f) == EXPECTED_ANSWERS
    assert {i.code for i in f.issues} == {"value-normalised", "office-unverified"}
    normalised = [i for i in f.issues if i.code == "value-normalised"]
    assert sorted(i.value for i in normalised) == sorted(
        v for g, codes in PRINTED_MEASURES.items() for v in codes.values()
    )
    assert all(re.fullmatch(r"A\d+", i.cell) and i.sheet == "評価" for i in normalised)


def test_published_table_with_the_misprinted_department(validated: ValidationReport) -> None:
    """The published PDF prints 自立相談支援課 for project 18 (seed line 78). The misprint is an
    alias in the registry: a copy of the published table loses no row, and the change is shown."""
    f = by_name(validated, "R6_評価表_公表版_誤記.xlsx")
    sheet, row, _ = published_layout()[("18", "自立生活支援課")]
    assert (sheet, row) == ("基本目標1", 50)
    assert triples(f) == sorted([*PUBLISHED_WARNINGS, ("基本目標1", "E50", "value-normalised"),
                                 ("", "", "office-unverified")])
    issue = by_cell(f, "基本目標1", "E50")
    assert issue.value == "自立相談支援課" and issue.severity == "warning"
    assert "「自立相談支援課」を「自立生活支援課」として読み込みました" in issue.message
    assert f.status == "accepted"
    assert published_answers(f) == EXPECTED_ANSWERS


# --- Our templates ------------------------------------------------------------------------------------


def test_demo_returns_are_accepted_with_their_office(validated: ValidationReport) -> None:
    returns = [f for f in validated.files if f.name.startswith("returns/R6_地域福祉計画評価_")]
    assert len(returns) == len(ALL_OFFICES) == 12
    for f in returns:
        office = f.name.removeprefix("returns/R6_地域福祉計画評価_").removesuffix(".xlsx")
        assert (f.status, f.kind, f.office, f.office_source, f.offices, f.issues) == (
            "accepted", "template", office, "template", {office}, ())
        assert [e.row for e in f.rows] == list(range(FIRST_DATA_ROW, FIRST_DATA_ROW + len(f.rows)))
        assert {e.sheet for e in f.rows} == {TEMPLATE_SHEET}
    answers = {e.key: (e.result, e.rating, e.outlook) for f in returns for e in f.rows}
    assert answers == EXPECTED_ANSWERS


def test_template_with_changed_catalog_cells(validated: ValidationReport) -> None:
    """内容 of project 4 shortened (D4) and project 9's 担当課 overwritten with another office's (E5):
    both cells are reported, both rows are excluded, the other twelve rows are read. The row of E5
    is still project 9's 自立生活支援課 row (the only one of the office's rows for project 9 without a
    row), so its change is catalog-cell-changed, not another office's row plus a missing one."""
    f = by_name(validated, "自立生活支援課_改変.xlsx")
    assert template_row("自立生活支援課", ("9", "自立生活支援課")) == 5
    assert triples(f) == [
        ("記入シート", "D4", "catalog-cell-changed"),
        ("記入シート", "E5", "catalog-cell-changed"),
    ]
    d4 = by_cell(f, "記入シート", "D4")
    assert d4.row == 4 and d4.column == "内容"
    # the whole change can be found: where it starts, what was printed and what is there now
    assert "1 文字目から変更: 元「【日常生活において外出が困難な方の社会参加を支援するため、" in d4.message
    assert "→ 今「【移送サービスを実施しているNPO法人等へ助成し】ます。」" in d4.message
    e5 = by_cell(f, "記入シート", "E5")
    assert "元の値「自立生活支援課」、今の値「介護福祉課」" in e5.message
    assert (f.status, f.kind, f.office) == ("partial", "template", "自立生活支援課")
    assert len(f.rows) == 12 and 4 not in [e.row for e in f.rows] and 5 not in [e.row for e in f.rows]
    assert f.excluded == (ExcludedRow("記入シート", 4, "4", "自立生活支援課"),
                          ExcludedRow("記入シート", 5, "9", "自立生活支援課"))


@pytest.mark.parametrize(
    ("name", "found"),
    [
        ("健康課_R5.xlsx", "年度 R5"),  # last year's template
        ("指導室_旧版.xlsx", "計画版 0123456789ab"),  # a template of an older catalog
        ("男女共同参画室_課名違い.xlsx", "「人権推進課」"),  # an office that is not registered
    ],
)
def test_template_of_another_year_version_or_office_is_rejected(
    validated: ValidationReport, name: str, found: str
) -> None:
    f = by_name(validated, name)
    assert triples(f) == [(META_SHEET, "", "template-mismatch")]
    assert found in f.issues[0].message
    assert CODES["template-mismatch"].level == "file"
    assert (f.status, f.rows, f.kind) == ("rejected", (), "template")


def test_template_with_a_row_of_another_office(validated: ValidationReport) -> None:
    """A row added under 交通対策課's one row, for 自立生活支援課's project 4: not 交通対策課's to return."""
    f = by_name(validated, "交通対策課_他課の行.xlsx")
    assert triples(f) == [("記入シート", "E5", "office-mismatch")]
    assert "交通対策課 のテンプレートには含まれません" in f.issues[0].message
    assert (f.status, f.office) == ("partial", "交通対策課")
    assert evaluations(f) == [("記入シート", 4, "3", "交通対策課", "A")]
    assert f.excluded == (ExcludedRow("記入シート", 5, "4", "自立生活支援課"),)


# --- A department's own copy --------------------------------------------------------------------------

COPY_ISSUES = [
    # headers: 備考 is not a column of the table (the repeated header at row 9 is not re-reported)
    ("基本目標1", "G3", "column-extra"),
    ("基本目標2", "G1", "column-extra"),
    # project 9 with its four 担当課 under merged 事業No./施策No. cells: each merge is told once
    ("基本目標1", "B4", "cell-merged"),  # 事業No. B4:B7
    ("基本目標1", "C4", "cell-merged"),  # 施策No. C4:C7
    ("基本目標1", "H4", "cell-merged"),  # name H4:H7
    ("基本目標1", "C4", "value-normalised"),  # (3) /①
    ("基本目標1", "D4", "value-normalised"),  # Ｂ
    ("基本目標1", "D6", "value-normalised"),  # " a "
    ("基本目標1", "C10", "value-normalised"),  # （１）②
    ("基本目標1", "D10", "value-normalised"),  # " b "
    ("基本目標1", "C11", "value-normalised"),  # ⑶②
    ("基本目標1", "D11", "rating-invalid"),  # E
    ("基本目標1", "C12", "value-normalised"),  # (3)-2
    ("基本目標1", "D12", "rating-invalid"),  # B A
    ("基本目標1", "D13", "rating-invalid"),  # 良
    ("基本目標1", "C14", "value-normalised"),  # (4) ／ ①
    ("基本目標1", "D14", "required-missing"),  # blank rating
    ("基本目標1", "C15", "measure-mismatch"),  # (9)① for project 17
    ("基本目標1", "C16", "measure-invalid"),  # abc
    ("基本目標1", "B17", "value-normalised"),  # ９
    ("基本目標1", "A17", "duplicate-row"),  # (9, 自立生活支援課) again
    ("基本目標1", "B18", "project-unknown"),  # 99
    ("基本目標2", "B2", "value-normalised"),  # ２０
    ("基本目標2", "E2", "line-break-pasted"),  # literal _x000D_
    ("基本目標2", "E3", "text-too-long"),  # 33,000 characters
    ("基本目標2", "B5", "value-normalised"),  # 31~34
    ("基本目標2", "B6", "value-normalised"),  # ３１～３４
    ("基本目標2", "A6", "duplicate-row"),
    ("基本目標2", "B7", "value-normalised"),  # 31-34
    ("基本目標2", "A7", "duplicate-row"),
    ("基本目標2", "B8", "project-unknown"),  # 32: inside the group 31～34
    ("基本目標2", "C9", "value-normalised"),  # (2) /②
    ("基本目標2", "A9", "department-unknown"),  # 自立生活支援係
    ("基本目標2", "A10", "assignment-unknown"),  # 介護福祉課 has no part in project 13
    ("基本目標2", "D10", "rating-invalid"),  # ... and rated "5": both found in one pass
    ("基本目標2", "E11", "required-missing"),  # blank 事業実績・評価理由
    ("基本目標2", "A12", "value-normalised"),  # 自立生活支援課 → 関係各課(自立生活支援課)
    ("基本目標2", "E12", "line-break-pasted"),  # CR-LF (Excel's _x000D_ escape) in the text
    ("", "", "office-unverified"),  # typed up by 地域福祉課, named for no office: read row by row
]


def test_department_copy_every_issue_at_its_cell(validated: ValidationReport) -> None:
    f = by_name(validated, "取りまとめ_R6.xlsx")
    assert triples(f) == sorted(COPY_ISSUES)
    assert (f.status, f.kind) == ("partial", "table")


def test_department_copy_rows_read(validated: ValidationReport) -> None:
    f = by_name(validated, "取りまとめ_R6.xlsx")
    assert evaluations(f) == [
        ("基本目標1", 4, "9", "地域福祉課(関係各課)", "B"),
        ("基本目標1", 5, "9", "自立生活支援課", "A"),  # continuation rows under merged cells
        ("基本目標1", 6, "9", "介護福祉課", "A"),
        ("基本目標1", 7, "9", "広報秘書課", "A"),
        ("基本目標1", 10, "4", "自立生活支援課", "B"),
        ("基本目標2", 2, "20", "自立生活支援課", "A"),
        ("基本目標2", 4, "21", "子ども家庭センター", "A"),  # continuation row, cells simply blank
        ("基本目標2", 5, "31-34", "地域福祉課(関係各課)", "A"),
        ("基本目標2", 12, "44", "関係各課(自立生活支援課)", "A"),
    ]
    assert {(x.sheet, x.row): x.key for x in f.excluded} == {
        ("基本目標1", 11): ("10", "自立生活支援課"),
        ("基本目標1", 12): ("12", "自立生活支援課"),
        ("基本目標1", 13): ("15", "自立生活支援課"),
        ("基本目標1", 14): ("16", "自立生活支援課"),
        ("基本目標1", 15): ("17", "自立生活支援課"),
        ("基本目標1", 16): ("18", "自立生活支援課"),
        ("基本目標1", 17): ("9", "自立生活支援課"),
        ("基本目標2", 3): ("21", "自立生活支援課"),
        ("基本目標2", 6): ("31-34", "地域福祉課(関係各課)"),
        ("基本目標2", 7): ("31-34", "地域福祉課(関係各課)"),
        ("基本目標2", 11): ("30", "自立生活支援課"),
    }
    # a table of no known office: the offices come from the rows' 担当課
    assert f.offices == {"地域福祉課", "自立生活支援課", "介護福祉課", "広報秘書課", "子ども家庭センター"}
    assert (f.office, f.office_source) == ("", "none")
    rows = {(e.sheet, e.row): e for e in f.rows}
    # free text as written: ①, ㈱, full-width letters and brackets untouched (never NFKC)
    assert rows[("基本目標2", 4)].result == FREE_TEXT
    # _x000D_, literal or decoded to CR by the reader, becomes a plain line break
    assert rows[("基本目標2", 2)].result == "相談件数は増加した。\n連携会議を4回開催。"
    assert rows[("基本目標2", 12)].result == "事業所連絡会で周知した。\n見学会を実施。"
    assert rows[("基本目標1", 4)].result == answer("9", "地域福祉課(関係各課)", "result")


def test_department_copy_messages(validated: ValidationReport) -> None:
    f = by_name(validated, "取りまとめ_R6.xlsx")
    assert by_cell(f, "基本目標1", "G3").value == "備考"
    assert by_cell(f, "基本目標1", "C14").message.startswith("「(4) ／ ①」を「(4)①」として読み込みました")
    assert by_cell(f, "基本目標1", "D4").message.startswith("「Ｂ」を「B」として")
    assert by_cell(f, "基本目標2", "B5").message.startswith("「31~34」を「31～34」として")
    assert "(4)①" in by_cell(f, "基本目標1", "C15").message  # the project's own code
    assert "(5 行目と重複)" in by_cell(f, "基本目標1", "A17").message
    assert "31～34" in by_cell(f, "基本目標2", "B8").message  # the group 32 belongs to
    assert "近い名前: 自立生活支援課" in by_cell(f, "基本目標2", "A9").message
    assert "この事業の担当課は 地域福祉課 です" in by_cell(f, "基本目標2", "A10").message
    long = by_cell(f, "基本目標2", "E3")
    assert "33,000 文字" in long.message and long.column == "事業実績・評価理由"
    assert len(long.value) <= 60  # a long value is shortened in the report
    assert by_cell(f, "基本目標1", "D14").column == "事業評価"


def test_batch_gives_the_same_issues_as_a_file_alone(mixed_inbox: Path, validated: ValidationReport) -> None:
    """The rows of all files go through pandera in one pass: each failure must land on its own file."""
    alone = validate_paths(CATALOG, [mixed_inbox / "取りまとめ_R6.xlsx"])
    assert [triples(f) for f in alone.files] == [sorted(COPY_ISSUES)]
    assert evaluations(alone.files[0]) == evaluations(by_name(validated, "取りまとめ_R6.xlsx"))


# --- Other files and layouts --------------------------------------------------------------------------


def test_xlsm_is_read_and_department_spaces_are_reported(validated: ValidationReport) -> None:
    f = by_name(validated, "交通対策課_回答.xlsm")
    assert triples(f) == [("Sheet1", "A2", "value-normalised"), ("Sheet1", "E2", "value-normalised")]
    assert by_cell(f, "Sheet1", "E2").value == "交通対策課\u3000"
    assert (f.status, f.office) == ("accepted", "交通対策課")
    assert evaluations(f) == [("Sheet1", 2, "3", "交通対策課", "A")]


def test_a_sheet_left_with_only_its_header_does_not_reject_the_file(validated: ValidationReport) -> None:
    f = by_name(validated, "地域安全課_回答.xlsx")
    assert triples(f) == [("基本目標1", "A2", "value-normalised")]  # "(2) ①" as printed
    assert f.status == "accepted"
    assert evaluations(f) == [("基本目標1", 2, "5", "地域安全課", "A")]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("メモ.xlsx", [("", "", "header-not-found")]),
        ("列不足.xlsx", [("評価", "", "column-missing")]),
        ("空.xlsx", [("評価", "", "no-rows")]),
    ],
)
def test_file_level_layout_errors_reject_the_file(validated: ValidationReport, name: str, expected: list) -> None:
    f = by_name(validated, name)
    assert triples(f) == expected
    assert (f.status, f.rows) == ("rejected", ())
    assert all(i.is_file_level and i.is_error for i in f.issues)
    if name == "列不足.xlsx":
        assert f.issues[0].column == "今後の事業計画・展望"


def test_files_that_are_not_returns(validated: ValidationReport) -> None:
    from pipeline.ingest import REASON_LOCK, REASON_NOT_RETURN

    # Excel's owner file: listed, never read, with the reason (nothing is skipped silently)
    lock = by_name(validated, "~$取りまとめ_R6.xlsx")
    assert (lock.status, lock.reason, [i.code for i in lock.issues]) == ("ignored", REASON_LOCK, ["ignored-lock-file"])
    for name in ("評価表_公表版.pdf", "依頼文.docx"):
        f = by_name(validated, name)
        assert (f.status, [i.code for i in f.issues], f.rows, f.reason) == (
            "ignored", ["ignored-not-input"], (), REASON_NOT_RETURN)
    fake = by_name(validated, "評価表.xlsx")  # a CSV renamed .xlsx
    assert fake.status == "rejected" and fake.rows == ()
    assert [(i.sheet, i.cell) for i in fake.issues] == [("", "")]
    code = fake.issues[0].code
    assert code in CODES and CODES[code].level == "file" and fake.issues[0].is_error


def test_statuses_of_the_whole_inbox(validated: ValidationReport) -> None:
    statuses = {f.name: f.status for f in validated.files if not f.name.startswith("returns/")}
    assert statuses == {
        "R6_評価表_公表版.xlsx": "accepted",
        "R6_評価表_公表版_誤記.xlsx": "accepted",
        "R6_評価表_1シート.xlsx": "accepted",
        "取りまとめ_R6.xlsx": "partial",
        "自立生活支援課_改変.xlsx": "partial",
        "健康課_R5.xlsx": "rejected",
        "指導室_旧版.xlsx": "rejected",
        "男女共同参画室_課名違い.xlsx": "rejected",
        "交通対策課_他課の行.xlsx": "partial",
        "メモ.xlsx": "rejected",
        "列不足.xlsx": "rejected",
        "空.xlsx": "rejected",
        "交通対策課_回答.xlsm": "accepted",
        "地域安全課_回答.xlsx": "accepted",
        "評価表_公表版.pdf": "ignored",
        "依頼文.docx": "ignored",
        "評価表.xlsx": "rejected",
        "~$取りまとめ_R6.xlsx": "ignored",
    }
    assert validated.exit_code == 1


# The codes of the issue's table: each is asserted at an exact cell above (file-level ones at "").
CONTRACT_CODES = {
    "rating-invalid", "required-missing", "project-unknown", "measure-invalid", "measure-mismatch",
    "assignment-unknown", "duplicate-row", "catalog-cell-changed", "template-mismatch", "header-not-found",
    "department-unknown", "column-missing", "column-extra", "office-mismatch", "text-too-long",
    "value-normalised", "no-rows",
}  # + file-unreadable and the gate's other file codes: see test_files_that_are_not_returns


def test_every_code_of_the_issue_is_raised_and_placed(validated: ValidationReport) -> None:
    raised = {i.code for i in validated.issues}
    assert raised >= CONTRACT_CODES
    for i in validated.issues:
        if i.is_file_level or CODES[i.code].level == "note":
            assert i.cell == "", i
        else:
            assert re.fullmatch(r"[A-Z]+[1-9]\d*", i.cell) and i.sheet, i
            assert i.row in (None, int(re.sub(r"\D", "", i.cell))), i  # column-extra has no row
    assert "file-unreadable" in CODES and CODES["file-unreadable"].level == "file"


def test_every_message_is_japanese_and_fully_formatted(validated: ValidationReport) -> None:
    assert validated.issues
    for i in validated.issues:
        assert i.code in CODES, i.code
        assert JAPANESE.search(i.message), i.message
        assert not PLACEHOLDER.search(i.message), i.message
        assert i.file, i  # each issue names its file
        assert i.severity == CODES[i.code].severity

