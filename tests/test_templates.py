"""The generated templates, read back cell by cell with openpyxl as Excel and the reader see them."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from pipeline.catalog import load_catalog
from pipeline.templates import (
    COLUMN_WIDTHS,
    COLUMNS,
    DEPARTMENT_WIDTH_CAP,
    FIRST_DATA_ROW,
    FONT_NAME,
    GUIDE_SHEET,
    HEADER_ROW,
    INPUT_COLUMNS,
    LINE_HEIGHT,
    META_KEYS,
    META_SHEET,
    MIN_INPUT_LINES,
    TEMPLATE_KIND,
    TEMPLATE_SHEET,
    TEMPLATE_VERSION,
    department_width,
    display_width,
    header_labels,
    prefilled_hash,
    prefilled_values,
    receiving_offices,
    set_text,
    template_name,
    wareki,
    write_templates,
)

CATALOG = load_catalog("R6")
OFFICES = receiving_offices(CATALOG)
DEADLINE = date(2025, 5, 30)
GENERATED = datetime(2025, 4, 10, 9, 0, tzinfo=timezone(timedelta(hours=9)))
CONTACT = "福祉保健部地域福祉課 地域福祉係(内線 1234)"
CATALOG_COLUMNS = ("A", "B", "C", "D", "E")


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("templates")
    paths = write_templates(CATALOG, out, deadline=DEADLINE, contact=CONTACT, generated=GENERATED)
    assert len(paths) == len(OFFICES)
    return out


def open_template(template_dir: Path, office: str) -> Workbook:
    return load_workbook(template_dir / template_name(CATALOG, office))


def data_rows(office: str) -> range:
    return range(FIRST_DATA_ROW, FIRST_DATA_ROW + len(CATALOG.assignments_for_office(office)))


def meta_of(wb: Workbook) -> dict[str, object]:
    ws = wb[META_SHEET]
    return {ws.cell(r, 1).value: ws.cell(r, 2).value for r in range(1, len(META_KEYS) + 1)}


# Files -----------------------------------------------------------------------------------------


def test_one_template_per_office_that_has_assignments(template_dir: Path) -> None:
    names = sorted(p.name for p in template_dir.iterdir())
    assert names == sorted(template_name(CATALOG, o) for o in OFFICES)
    assert "R6_地域福祉計画評価_地域福祉課.xlsx" in names
    # All twelve registered offices answer for something in R6.
    assert len(OFFICES) == 12
    assert not [p for p in template_dir.iterdir() if p.suffix != ".xlsx"], "temporary files left behind"


def test_rows_over_all_templates_are_the_69_assignments(template_dir: Path) -> None:
    total = 0
    for office in OFFICES:
        ws = open_template(template_dir, office)[TEMPLATE_SHEET]
        rows = [r for r in range(FIRST_DATA_ROW, ws.max_row + 1) if ws[f"B{r}"].value is not None]
        assert len(rows) == len(CATALOG.assignments_for_office(office))
        total += len(rows)
    assert total == len(CATALOG.assignments) == 69


def test_write_selected_offices_by_alias(tmp_path: Path) -> None:
    paths = write_templates(CATALOG, tmp_path, offices=["社協", "交通対策課"])
    assert [p.name for p in paths] == [
        "R6_地域福祉計画評価_社会福祉協議会.xlsx",
        "R6_地域福祉計画評価_交通対策課.xlsx",
    ]
    with pytest.raises(ValueError, match="まちづくり推進課"):
        write_templates(CATALOG, tmp_path, offices=["まちづくり推進課"])


def test_rewriting_replaces_the_file(tmp_path: Path) -> None:
    first = write_templates(CATALOG, tmp_path, offices=["指導室"], generated=GENERATED)[0]
    later = GENERATED + timedelta(days=1)
    second = write_templates(CATALOG, tmp_path, offices=["指導室"], generated=later)[0]
    assert first == second
    assert meta_of(load_workbook(second))["generated"] == later.isoformat(timespec="seconds")
    assert [p.name for p in tmp_path.iterdir()] == [second.name]


@given(st.text(min_size=1, max_size=30))
def test_template_name_is_windows_safe(office: str) -> None:
    name = template_name(CATALOG, office)
    assert name.startswith("R6_地域福祉計画評価_") and name.endswith(".xlsx")
    assert not any(ch in name for ch in '\\/:*?"<>|')
    assert not any(ord(ch) < 32 for ch in name)


# Content ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("office", OFFICES)
def test_title_header_and_prefilled_rows(template_dir: Path, office: str) -> None:
    wb = open_template(template_dir, office)
    assert wb.sheetnames[0] == TEMPLATE_SHEET
    ws = wb[TEMPLATE_SHEET]
    title = ws["A1"].value
    assert "令和6年度" in title and office in title and "地域福祉計画" in title
    assert "黄色" in ws["A2"].value and "令和7年5月30日(金)" in ws["A2"].value

    header = [ws.cell(HEADER_ROW, c).value for c in range(1, 9)]
    assert header == [
        "施策No.",
        "事業No.",
        "個別事業・取り組み",
        "内容",
        "担当課",
        "事業実績・評価理由 (令和6年度)",
        "事業評価",
        "今後の事業計画・展望",
    ]
    assert header == header_labels(CATALOG)
    assert ws.cell(HEADER_ROW, 9).value is None

    expected = prefilled_values(CATALOG, office)
    got = [tuple(ws[f"{c}{r}"].value for c in CATALOG_COLUMNS) for r in data_rows(office)]
    assert got == expected
    assert len(got) == len(CATALOG.assignments_for_office(office))
    # Nothing after the last row, and the input cells start empty.
    assert all(ws.cell(FIRST_DATA_ROW + len(expected), c).value is None for c in range(1, 9))
    assert all(ws[f"{c}{r}"].value is None for r in data_rows(office) for c in INPUT_COLUMNS)


def test_prefilled_values_follow_the_plan() -> None:
    rows = prefilled_values(CATALOG, "地域福祉課")
    assert rows[0] == (
        "(1)①",
        "1",
        "ユニバーサルデザインによるまちづくりの推進",
        CATALOG.projects["1"].content,
        "地域福祉課(関係各課)",
    )
    # Every row keeps its 施策No. and 事業No., also where a project has several departments.
    assert all(r[0] and r[1] for r in rows)
    assert ("(3)①", "9", "地域福祉課(関係各課)") in [(r[0], r[1], r[4]) for r in rows]
    # The 31～34 group is one row, printed with the wave dash; 福祉保健部各課 is answered by 地域福祉課.
    assert [r[1] for r in rows].count("31～34") == 1
    assert ("16", "福祉保健部各課") in [(r[1], r[4]) for r in rows]
    # Plan order: the order of the assignments in the catalog.
    order = [a.order for a in CATALOG.assignments_for_office("地域福祉課")]
    assert order == sorted(order)
    assert [r[1] for r in prefilled_values(CATALOG, "自立生活支援課")][:3] == ["4", "9", "10"]


def test_prefilled_hash_is_sha256_of_canonical_json() -> None:
    values = prefilled_values(CATALOG, "交通対策課")
    blob = json.dumps([list(v) for v in values], ensure_ascii=False, separators=(",", ":"))
    assert prefilled_hash(values) == hashlib.sha256(blob.encode("utf-8")).hexdigest()
    changed = [(*values[0][:4], "交通対策課 ")]
    assert prefilled_hash(changed) != prefilled_hash(values)


@pytest.mark.parametrize("office", OFFICES)
def test_meta_identifies_the_template(template_dir: Path, office: str) -> None:
    wb = open_template(template_dir, office)
    ws = wb[META_SHEET]
    assert ws.sheet_state == "veryHidden"
    assert [ws.cell(r, 1).value for r in range(1, len(META_KEYS) + 1)] == [
        "kind",
        "fiscal_year",
        "office",
        "catalog_version",
        "template_version",
        "generated",
        "prefilled_hash",
        "rows",
        "header_row",
        "first_data_row",
        "answer_sheet",
    ]
    meta = meta_of(wb)
    assert all(isinstance(v, str) for v in meta.values())
    assert meta == {
        "kind": TEMPLATE_KIND,
        "fiscal_year": "R6",
        "office": office,
        "catalog_version": CATALOG.version,
        "template_version": TEMPLATE_VERSION,
        "generated": "2025-04-10T09:00:00+09:00",
        "prefilled_hash": prefilled_hash(prefilled_values(CATALOG, office)),
        "rows": str(len(CATALOG.assignments_for_office(office))),
        "header_row": "3",
        "first_data_row": "4",
        "answer_sheet": "記入シート",
    }
    assert datetime.fromisoformat(meta["generated"]) == GENERATED


# Validation, protection, formatting -----------------------------------------------------------


@pytest.mark.parametrize("office", OFFICES)
def test_rating_column_accepts_only_a_to_d(template_dir: Path, office: str) -> None:
    wb = open_template(template_dir, office)
    ws = wb[TEMPLATE_SHEET]
    lists = [dv for dv in ws.data_validations.dataValidation if dv.type == "list"]
    assert len(lists) == 1
    dv = lists[0]
    rows = data_rows(office)
    assert all(f"G{r}" in dv.sqref for r in rows)
    assert f"G{HEADER_ROW}" not in dv.sqref and f"G{rows.stop}" not in dv.sqref
    assert not any(f"{c}{r}" in dv.sqref for c in "ABCDEFH" for r in rows)

    # The list comes from a range (through a defined name), not an inline "A,B,C,D".
    assert '"' not in dv.formula1 and "," not in dv.formula1
    destinations = list(wb.defined_names[dv.formula1].destinations)
    assert len(destinations) == 1
    sheet, ref = destinations[0]
    assert [c.value for (c,) in wb[sheet][ref.replace("$", "")]] == ["A", "B", "C", "D"]

    assert dv.showErrorMessage is True and dv.errorStyle == "stop"
    assert dv.error and "A・B・C・D" in dv.error
    assert dv.showInputMessage is True and dv.promptTitle
    for code, definition in CATALOG.ratings.items():
        assert f"{code}: {definition}" in dv.prompt
    assert len(dv.prompt) <= 255 and len(dv.promptTitle) <= 32 and len(dv.errorTitle) <= 32
    assert dv.imeMode == "disabled"
    # The drop-down arrow is shown (openpyxl's showDropDown=True would hide it).
    assert not dv.showDropDown

    prose = [dv for dv in ws.data_validations.dataValidation if dv.type is None]
    assert len(prose) == 1 and prose[0].imeMode == "hiragana"
    assert all(f"{c}{r}" in prose[0].sqref for c in "FH" for r in rows)


@pytest.mark.parametrize("office", OFFICES)
def test_protection_locks_catalog_cells_and_structure(template_dir: Path, office: str) -> None:
    wb = open_template(template_dir, office)
    ws = wb[TEMPLATE_SHEET]
    p = ws.protection
    assert p.sheet is True and p.password is None
    assert p.insertRows and p.insertColumns and p.deleteRows and p.deleteColumns
    assert p.formatCells and p.sort
    assert not p.formatRows and not p.formatColumns  # long answers: rows may be made taller
    assert wb.security.lockStructure is True
    assert wb[GUIDE_SHEET].protection.sheet and wb[META_SHEET].protection.sheet

    for r in data_rows(office):
        for c in CATALOG_COLUMNS:
            cell = ws[f"{c}{r}"]
            assert cell.protection.locked is True, cell.coordinate
            assert cell.fill.fill_type is None, cell.coordinate
        for c in INPUT_COLUMNS:
            cell = ws[f"{c}{r}"]
            assert cell.protection.locked is False, cell.coordinate
            assert cell.fill.fill_type == "solid" and cell.fill.fgColor.rgb.endswith("FFF2CC")
    for r in (1, 2, HEADER_ROW):
        assert all(ws.cell(r, c).protection.locked for c in range(1, 9))


@pytest.mark.parametrize("office", OFFICES)
def test_print_setup_layout_and_fonts(template_dir: Path, office: str) -> None:
    ws = open_template(template_dir, office)[TEMPLATE_SHEET]
    assert ws.page_setup.paperSize == 8  # A3
    assert ws.page_setup.orientation == "landscape"
    assert ws.sheet_properties.pageSetUpPr.fitToPage is True
    assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 0
    assert ws.print_title_rows == f"${HEADER_ROW}:${HEADER_ROW}"
    last = data_rows(office).stop - 1
    assert ws.print_area == f"'{TEMPLATE_SHEET}'!$A$1:$H${last}"
    assert ws.freeze_panes == "A4"
    departments = [ws[f"E{r}"].value for r in data_rows(office)]
    assert {c: ws.column_dimensions[c].width for c in COLUMN_WIDTHS} == {
        "A": 8,
        "B": 8,  # "31～34" in the UD font's wide digits
        "C": 24,
        "D": 48,
        "E": department_width(departments),
        "F": 60,
        "G": 8,
        "H": 60,
    }
    # 担当課 on one line: 地域福祉課(関係各課) is not broken before its ")"
    widest = max(display_width(d) for d in departments)
    width = ws.column_dimensions["E"].width
    assert width >= min(widest + 2, DEPARTMENT_WIDTH_CAP) and width >= COLUMN_WIDTHS["E"]
    assert ws.merged_cells.ranges == set()
    # the printed header and page number sit inside the margins, clear of the cells (0.3" + a line)
    m = ws.page_margins
    assert (m.top, m.header, m.bottom, m.footer) == (0.9, 0.3, 0.8, 0.3)
    assert ws.oddHeader.left.font == ws.oddFooter.center.font == "BIZ UDPゴシック,Regular"
    # the standard font (the width unit) is the monospaced UD font
    assert ws.parent._named_styles["Normal"].font.name == "BIZ UDゴシック"

    for c in range(1, 9):
        head = ws.cell(HEADER_ROW, c)
        assert head.font.b is True and head.fill.fill_type == "solid" and head.alignment.wrap_text
    assert ws["A1"].font.b is True and ws["A1"].font.sz > ws["A4"].font.sz
    for r in (1, 2, HEADER_ROW, *data_rows(office)):
        for c in range(1, 9) if r >= HEADER_ROW else (1,):
            assert ws.cell(r, c).font.name == FONT_NAME, ws.cell(r, c).coordinate
    for r in data_rows(office):
        assert all(ws.cell(r, c).alignment.wrap_text for c in range(1, 9))
        height = ws.row_dimensions[r].height
        content = ws[f"D{r}"].value
        needed = display_width(content) / (COLUMN_WIDTHS["D"] - 1.5)
        assert MIN_INPUT_LINES * LINE_HEIGHT <= height <= 409
        assert height >= needed * LINE_HEIGHT, f"row {r} too short for its 内容"


def test_no_formulas_anywhere(template_dir: Path) -> None:
    for path in template_dir.iterdir():
        wb = load_workbook(path)
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", f"{path.name} {ws.title}!{cell.coordinate}"


def test_set_text_keeps_text_that_looks_like_a_formula() -> None:
    ws = Workbook().active
    set_text(ws["A1"], "=前年度と同じ")
    assert ws["A1"].data_type == "s" and ws["A1"].value == "=前年度と同じ"


SAFE_TEXT_PAYLOADS = ["=1+1", "＝SUM(A1)", "＋1", "－1", "＠SUM(A1)", " =1+1", "\u3000＝1+1", "\t=1+1",
                      "@SUM(A1:A2)", "=cmd|' /C calc'!A0"]  # fmt: skip


def test_set_text_writes_formula_like_text_as_quoted_text(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    for row, payload in enumerate(SAFE_TEXT_PAYLOADS, start=1):
        set_text(ws.cell(row, 1), payload)
    set_text(ws.cell(20, 1), "普通の文章")
    set_text(ws.cell(21, 1), "制御\x01文字")
    path = tmp_path / "t.xlsx"
    wb.save(path)
    back = load_workbook(path).active
    for row, payload in enumerate(SAFE_TEXT_PAYLOADS, start=1):
        cell = back.cell(row, 1)
        assert cell.value == payload and cell.data_type == "s" and cell.quotePrefix, payload
    assert back.cell(20, 1).quotePrefix is False
    assert back.cell(21, 1).value == "制御文字"  # what XML cannot hold is dropped, not an error


def test_set_text_refuses_a_text_over_excel_limit() -> None:
    ws = Workbook().active
    with pytest.raises(ValueError, match="32,767"):
        set_text(ws["A1"], "\U00020bb7" * 17_000)  # 34,000 UTF-16 units
    set_text(ws["A2"], "a" * 32_767)
    assert len(ws["A2"].value) == 32_767


def test_a_long_office_name_gives_a_bounded_template_name() -> None:
    name = template_name(CATALOG, "地域福祉推進協議会事務局" * 5)
    assert len(name.encode("utf-8")) <= 120
    assert name.startswith("R6_地域福祉計画評価_地域福祉推進協議会") and name.endswith(".xlsx")
    assert template_name(CATALOG, "CON") == "R6_地域福祉計画評価_CON.xlsx"  # only a whole name can be reserved


def test_guide_sheet_explains_ratings_deadline_and_contact(template_dir: Path) -> None:
    wb = open_template(template_dir, "介護福祉課")
    ws = wb[GUIDE_SHEET]
    assert ws.sheet_state == "visible"
    rows = {ws.cell(r, 1).value: ws.cell(r, 2).value for r in range(1, ws.max_row + 1)}
    text = "\n".join(f"{k or ''} {v or ''}" for k, v in rows.items())
    for code, definition in CATALOG.ratings.items():
        assert rows[code] == definition
    assert rows["提出期限"] == "令和7年5月30日(金)"
    assert rows["提出先"] == CONTACT
    assert "行や列を追加・削除しないでください" in text
    assert "介護福祉課" in text and "令和6年度" in text
    for label in header_labels(CATALOG)[5:]:
        assert label in rows
    assert CATALOG.rating_note in text
    assert all(
        ws.cell(r, c).font.name == FONT_NAME
        for r in range(1, ws.max_row + 1)
        for c in (1, 2)
        if ws.cell(r, c).value
    )


def test_guide_without_deadline_says_it_will_be_announced(tmp_path: Path) -> None:
    path = write_templates(CATALOG, tmp_path, offices=["健康課"])[0]
    wb = load_workbook(path)
    ws = wb[GUIDE_SHEET]
    rows = {ws.cell(r, 1).value: ws.cell(r, 2).value for r in range(1, ws.max_row + 1)}
    assert rows["提出期限"] == "別途お知らせする期限"
    assert rows["提出先"] == "地域福祉課"
    assert "提出期限" not in wb[TEMPLATE_SHEET]["A2"].value


def test_wareki() -> None:
    assert wareki(date(2025, 5, 30)) == "令和7年5月30日(金)"
    assert wareki(date(2019, 5, 1)) == "令和元年5月1日(水)"
    assert wareki(date(2019, 4, 30)) == "2019年4月30日(火)"


# A department fills it in ----------------------------------------------------------------------


def test_filled_by_a_department_reads_back(template_dir: Path, tmp_path: Path) -> None:
    office = "自立生活支援課"
    wb = open_template(template_dir, office)
    ws = wb[TEMPLATE_SHEET]
    answers = {
        FIRST_DATA_ROW: (
            "福祉有償運送を実施するNPO法人2団体に補助を行った。\n利用実績は延べ1,234件。",
            "B",
            "補助対象事業者の廃止に伴い、代替サービスを検討する。",
        ),
        FIRST_DATA_ROW + 2: ("成年後見制度の市長申立てを3件行った。", "A", "引き続き周知に努める。"),
    }
    for r, (result, rating, outlook) in answers.items():
        ws[f"F{r}"], ws[f"G{r}"], ws[f"H{r}"] = result, rating, outlook
    path = tmp_path / template_name(CATALOG, office)
    wb.save(path)

    # Read it back the way the reader does: read-only, values only.
    back = load_workbook(path, read_only=True, data_only=True)
    rows = list(back[TEMPLATE_SHEET].iter_rows(min_row=FIRST_DATA_ROW, max_col=8, values_only=True))
    rows = rows[: len(CATALOG.assignments_for_office(office))]
    for i, row in enumerate(rows):
        r = FIRST_DATA_ROW + i
        assert tuple(row[:5]) == prefilled_values(CATALOG, office)[i]
        assert tuple(row[5:8]) == answers.get(r, (None, None, None))
    meta = {k: v for k, v, *_ in back[META_SHEET].iter_rows(max_col=2, values_only=True)}
    assert meta["prefilled_hash"] == prefilled_hash([tuple(row[:5]) for row in rows])
    back.close()

    # Saving through openpyxl keeps what the department's Excel relies on.
    again = load_workbook(path)
    ws2 = again[TEMPLATE_SHEET]
    assert ws2.protection.sheet and again.security.lockStructure
    assert [dv.type for dv in ws2.data_validations.dataValidation] == ["list", None]
    assert again[META_SHEET].sheet_state == "veryHidden"


def test_columns_constant_matches_contract() -> None:
    assert COLUMNS[5] == "事業実績・評価理由" and len(COLUMNS) == 8
    assert INPUT_COLUMNS == ("F", "G", "H")
    assert (HEADER_ROW, FIRST_DATA_ROW) == (3, 4)
