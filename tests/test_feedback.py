"""The 差し戻し copy: marks on exactly the issue cells, the エラー一覧 sheet, and what survives.

Every test reads the written copy back with openpyxl (or its XML) cell by cell.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import Path

import pytest
import xlsxwriter
from openpyxl import Workbook, load_workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill, Protection
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.workbook.protection import WorkbookProtection
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.xml.functions import tostring

from pipeline.errors import OutputError
from pipeline.reader.annotate import FEEDBACK_SHEET, feedback_copy
from pipeline.report import Issue, make_issue
from pipeline.runner import write_copy


def write_feedback(data: bytes, name: str, issues: list[Issue], out_path: Path) -> Path:
    """A 差し戻し copy as the merge makes it: annotated (in-process here; the merge runs
    feedback_copy in its contained worker), then written by runner.write_copy."""
    return write_copy(feedback_copy(data, name, issues), out_path)


SHEET = "記入シート"
HEADERS = [
    "施策No.",
    "事業No.",
    "個別事業・取り組み",
    "内容",
    "担当課",
    "事業実績・評価理由 (令和6年度)",
    "事業評価",
    "今後の事業計画・展望",
]
ROWS = [
    [
        "(1)②",
        4,
        "移送サービスへの支援",
        "高齢者や障害者など、公共交通機関の利用が困難な方の外出を支援します。",
        "自立生活支援課",
        "福祉有償運送等の実施団体に運営費を補助し、延べ1,240件の移送を支援した。",
        "E",
        "補助対象事業者の拡大に向けて、事業者との意見交換を継続する。",
    ],
    [
        "(1)③",
        5,
        "見守りネットワークの推進",
        "民生委員・協力事業者と連携し、高齢者の見守り体制をつくります。",
        "自立生活支援課",
        "協力事業者を3社増やし、計52社と協定を締結した。",
        "B",
        "協定事業者向けの研修を年2回実施する。",
    ],
    [
        "(2)①",
        9,
        "相談支援体制の充実",
        "身近な地域で相談できる体制を整えます。",
        "自立生活支援課",
        "",
        None,
        "相談窓口の周知を強化する。",
    ],
]
YELLOW = "FFFFFF99"
RED_RGB = "FFFFC7CE"
AMBER_RGB = "FFFFEB9C"
RATING_PROMPT = "A ほぼ達成 / B ある程度達成・要改善 / C 大きな課題 / D 未実施"


def _template_workbook() -> Workbook:
    """A realistic returned template: protected input sheet, hidden list, veryHidden _meta."""
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET
    ws["A1"] = "令和6年度 地域福祉計画 進捗状況及び評価表(自立生活支援課)"
    ws["A1"].font = Font(name="游ゴシック", bold=True, size=14)
    ws.merge_cells("A1:H1")
    ws["A2"] = "黄色のセルに記入してください。"
    for col, header in enumerate(HEADERS, start=1):
        cell = ws.cell(4, col, header)
        cell.font = Font(name="游ゴシック", bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for r, values in enumerate(ROWS, start=5):
        for col, value in enumerate(values, start=1):
            cell = ws.cell(r, col, value)
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            if col in (6, 7, 8):  # input columns: yellow and unlocked
                cell.fill = PatternFill(fill_type="solid", fgColor=YELLOW)
                cell.protection = Protection(locked=False)
        ws.cell(r, 2).number_format = "0"
    ws["G4"].comment = Comment("A〜D の定義は記入方法シートを参照", "地域福祉課")
    for letter, width in zip("ABCDEFGH", (10, 8, 24, 40, 16, 50, 10, 50), strict=True):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "C5"
    ws.print_area = "A1:H50"
    ws.print_title_rows = "4:4"
    ws.page_setup.orientation = ws.ORIENTATION_LANDSCAPE
    ws.page_setup.paperSize = ws.PAPERSIZE_A3

    lists = wb.create_sheet("リスト")
    for i, rating in enumerate("ABCD", start=1):
        lists.cell(i, 1, rating)
    lists.sheet_state = "hidden"
    dv = DataValidation(
        type="list",
        formula1="リスト!$A$1:$A$4",
        showInputMessage=True,
        showErrorMessage=True,
        errorStyle="stop",
        promptTitle="事業評価",
        prompt=RATING_PROMPT,
        errorTitle="入力できない値です",
        error="A・B・C・D のいずれかを選んでください。",
        imeMode="halfAlpha",
        allow_blank=True,
    )
    ws.add_data_validation(dv)
    dv.add("G5:G50")

    meta = wb.create_sheet("_meta")
    meta["A1"], meta["B1"] = "template_version", "R6-1"
    meta["A2"], meta["B2"] = "office", "自立生活支援課"
    meta.sheet_state = "veryHidden"
    wb.create_sheet("記入方法")["A1"] = "事業評価は A〜D から選んでください。"
    wb.defined_names["評価入力"] = DefinedName("評価入力", attr_text=f"'{SHEET}'!$F$5:$H$50")

    ws.protection.sheet = True
    ws.protection.autoFilter = False
    ws.protection.formatColumns = False
    wb.security = WorkbookProtection(lockStructure=True)
    wb.active = 0
    return wb


def _bytes(wb: Workbook) -> bytes:
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


@pytest.fixture
def template() -> bytes:
    return _bytes(_template_workbook())


def _issues() -> list[Issue]:
    name = "R6_評価表_自立生活支援課.xlsx"
    return [
        make_issue("rating-invalid", file=name, sheet=SHEET, cell="G5", column="事業評価", value="E", row=5),
        make_issue("value-normalised", file=name, sheet=SHEET, cell="G5", value="Ｅ", normalised="E", row=5),
        make_issue(
            "value-normalised", file=name, sheet=SHEET, cell="A6", value="(1)③", normalised="(1)③", row=6
        ),
        make_issue("required-missing", file=name, sheet=SHEET, cell="F7", column="事業実績・評価理由", row=7),
        make_issue("required-missing", file=name, sheet=SHEET, cell="G7", column="事業評価", row=7),
        make_issue("template-mismatch", file=name, found="令和5年度", expected="令和6年度"),
    ]


def _write(tmp_path: Path, data: bytes, issues: list[Issue], name: str = "R6_評価表.xlsx") -> Path:
    out = tmp_path / ("差し戻し_" + name)
    return write_feedback(data, name, issues, out)


def _filled(ws) -> dict[str, str]:
    """Every cell painted with one of our two colours → its rgb."""
    return {
        cell.coordinate: cell.fill.fgColor.rgb
        for row in ws.iter_rows()
        for cell in row
        if cell.fill.fill_type == "solid" and cell.fill.fgColor.rgb in (RED_RGB, AMBER_RGB)
    }


def _sheet_xml(path: Path, sheet_name: str) -> str:
    """The XML of one worksheet of a written copy, found through workbook.xml and its rels."""
    with zipfile.ZipFile(path) as archive:
        workbook = archive.read("xl/workbook.xml").decode()
        rels = archive.read("xl/_rels/workbook.xml.rels").decode()
        rid = re.search(rf'<sheet[^>]*name="{re.escape(sheet_name)}"[^>]*r:id="([^"]+)"', workbook)
        assert rid, sheet_name
        target = re.search(
            rf'Id="{rid.group(1)}"[^>]*Target="([^"]+)"|Target="([^"]+)"[^>]*Id="{rid.group(1)}"', rels
        )
        assert target
        part = (target.group(1) or target.group(2)).lstrip("/")
        return archive.read(part if part.startswith("xl/") else "xl/" + part).decode()


def _notes(path: Path) -> list[str]:
    """The ※ lines at the top of エラー一覧."""
    ws = load_workbook(path)[FEEDBACK_SHEET]
    return [c.value for c in ws["A"] if isinstance(c.value, str) and c.value.startswith("※")]


def _xml(style) -> bytes:
    """A style object as XML: openpyxl's StyleProxy does not compare by value."""
    return tostring(style.to_tree())


def _summary_rows(ws) -> tuple[int, list[tuple]]:
    """(header row number, the issue rows as value tuples) of an エラー一覧 sheet."""
    for row in ws.iter_rows(min_row=1, max_row=ws.max_row):
        if row[0].value == "No.":
            header = row[0].row
            return header, [r for r in ws.iter_rows(min_row=header + 1, max_col=6, values_only=True)]
    raise AssertionError("no header row in エラー一覧")


# --- marks on the department's own sheet -------------------------------------------------


def test_fills_exactly_the_issue_cells_error_wins(tmp_path, template):
    out = _write(tmp_path, template, _issues())
    ws = load_workbook(out)[SHEET]
    # G5 has an error and a warning: red. A6 only a warning: amber.
    assert _filled(ws) == {"G5": RED_RGB, "A6": AMBER_RGB, "F7": RED_RGB, "G7": RED_RGB}
    # Only the fill changed: the cell keeps its wrap and its unlocked state.
    assert ws["G5"].alignment.wrap_text is True
    assert ws["G5"].protection.locked is False
    assert ws["G6"].fill.fgColor.rgb == YELLOW  # an untouched input cell stays yellow


def test_comment_joins_every_message_of_the_cell(tmp_path, template):
    issues = _issues()
    out = _write(tmp_path, template, issues)
    ws = load_workbook(out)[SHEET]
    comment = ws["G5"].comment
    assert comment is not None and comment.author == "地域福祉課 点検"
    assert f"[rating-invalid] {issues[0].message}" in comment.text
    assert f"[value-normalised] {issues[1].message}" in comment.text
    assert "事業評価「E」は使えません" in comment.text
    # openpyxl does not read the box size back; it is in the VML, in px (400 px ≈ 300 pt).
    with zipfile.ZipFile(out) as archive:
        vml = "".join(archive.read(n).decode() for n in archive.namelist() if n.endswith(".vml"))
    sizes = [(int(w), int(h)) for w, h in re.findall(r"width:(\d+)px;height:(\d+)px", vml)]
    ours = [(w, h) for w, h in sizes if w >= 400]
    assert len(ours) == 4 and all(h >= 200 for _w, h in ours)  # G5, A6, F7, G7 (G4 is theirs)
    assert "[required-missing]" in ws["F7"].comment.text
    # A cell without an issue gets no comment.
    assert ws["G6"].comment is None


def test_existing_comment_is_kept_and_ours_appended(tmp_path, template):
    issue = make_issue("required-missing", sheet=SHEET, cell="G4", column="事業評価")
    out = _write(tmp_path, template, [issue])
    text = load_workbook(out)[SHEET]["G4"].comment.text
    assert text.startswith("A〜D の定義は記入方法シートを参照")
    assert "[required-missing] 「事業評価」が空欄です。" in text
    # The other, unrelated comment-free cells stay comment-free.
    assert load_workbook(out)[SHEET]["G5"].comment is None


def test_issue_inside_a_merged_range_marks_its_top_left_cell(tmp_path, template):
    issue = make_issue(
        "catalog-cell-changed", sheet=SHEET, cell="C1", expected="令和6年度", value="令和5年度",
        diff="「令和6年度」→「令和5年度」",
    )
    out = _write(tmp_path, template, [issue])
    wb = load_workbook(out)
    ws = wb[SHEET]
    assert "A1:H1" in {str(r) for r in ws.merged_cells.ranges}
    assert ws["A1"].fill.fgColor.rgb == RED_RGB
    assert "[catalog-cell-changed]" in ws["A1"].comment.text
    # The list still links to the address the validator gave.
    link = wb[FEEDBACK_SHEET].cell(_summary_rows(wb[FEEDBACK_SHEET])[0] + 1, 3).hyperlink
    assert link.location == f"'{SHEET}'!C1"


# --- the エラー一覧 sheet ------------------------------------------------------------------


def test_summary_is_first_active_sheet_with_one_row_per_issue_in_order(tmp_path, template):
    issues = _issues()
    out = _write(tmp_path, template, issues)
    wb = load_workbook(out)
    assert wb.sheetnames[0] == FEEDBACK_SHEET
    assert wb.active.title == FEEDBACK_SHEET
    assert [ws.title for ws in wb.worksheets if ws.sheet_view.tabSelected] == [FEEDBACK_SHEET]
    ws = wb[FEEDBACK_SHEET]
    title = ws["A1"].value
    assert "R6_評価表.xlsx" in title and "エラー 4 件" in title and "警告 2 件" in title
    header, rows = _summary_rows(ws)
    assert [c.value for c in ws[header][:6]] == ["No.", "シート", "セル", "重要度", "コード", "内容"]
    assert all(c.font.bold for c in ws[header][:6])
    assert len(rows) == len(issues)
    for number, (row, issue) in enumerate(zip(rows, issues, strict=True), start=1):
        assert row[0] == number
        assert row[1] == (issue.sheet or None)
        assert row[2] == (issue.cell or None)
        assert row[3] == ("エラー" if issue.severity == "error" else "警告")
        assert row[4] == issue.code
        assert row[5] == issue.message
    # Hyperlinks: internal links to the issue cell; the file-level issue has none.
    for offset, issue in enumerate(issues, start=1):
        cell = ws.cell(header + offset, 3)
        if issue.cell:
            assert cell.hyperlink.location == f"'{SHEET}'!{issue.cell}"
            assert cell.hyperlink.target is None  # internal: no external relationship
        else:
            assert cell.hyperlink is None
    # Japanese text needs room: 内容 is wide and wraps.
    assert ws.column_dimensions["F"].width >= 60
    assert ws.cell(header + 1, 6).alignment.wrap_text is True
    assert ws.freeze_panes == f"A{header + 1}"


def test_each_row_issue_names_its_project_and_the_printed_sheet_shows_headings(tmp_path, template):
    """On paper the clerk reads 「G5」 beside 事業No. and 事業名, finds G5 by the printed row and
    column headings, and every column of the list is wide enough for its longest text."""
    issues = _issues()
    wb = load_workbook(_write(tmp_path, template, issues))
    ws = wb[FEEDBACK_SHEET]
    header, rows = _summary_rows(ws)
    assert ws.cell(header, 7).value == "事業No.・事業名"
    projects = [ws.cell(header + n, 7).value for n in range(1, len(rows) + 1)]
    assert projects == ["4 移送サービスへの支援", "4 移送サービスへの支援", "5 見守りネットワークの推進",
                        "9 相談支援体制の充実", "9 相談支援体制の充実", None]  # the file-level issue has none
    assert wb[SHEET].print_options.headings is True
    code_width = max(len(i.code) for i in issues) * 1.2
    assert ws.column_dimensions["E"].width >= code_width  # rating-invalid, template-mismatch: not clipped
    assert ws.column_dimensions["A"].width <= 8  # No. is a number, not a padded column
    # a list of an older version (no 事業 column) is still recognised and replaced when the copy comes back
    for n in range(0, len(rows) + 1):
        ws.cell(header + n, 7).value = None
    (tmp_path / "again").mkdir()
    again = load_workbook(_write(tmp_path / "again", _bytes(wb), issues[:1]))
    assert again.sheetnames.count(FEEDBACK_SHEET) == 1 and FEEDBACK_SHEET + "(地域福祉課)" not in again.sheetnames
    assert len(_summary_rows(again[FEEDBACK_SHEET])[1]) == 1


def test_file_level_only_issues_give_a_list_without_links(tmp_path, template):
    issues = [
        make_issue("header-not-found", file="x.xlsx"),
        make_issue("template-mismatch", file="x.xlsx", found="令和5年度・高齢福祉課", expected="令和6年度"),
    ]
    out = _write(tmp_path, template, issues)
    wb = load_workbook(out)
    ws = wb[FEEDBACK_SHEET]
    header, rows = _summary_rows(ws)
    assert [r[4] for r in rows] == ["header-not-found", "template-mismatch"]
    assert not ws._hyperlinks and all(ws.cell(header + i, 3).hyperlink is None for i in (1, 2))
    assert _filled(wb[SHEET]) == {}
    assert "<hyperlink" not in _sheet_xml(out, FEEDBACK_SHEET)


FORMULAS = [
    '=HYPERLINK("http://x","y")',
    "=cmd|' /C calc'!A0",
    "+1+1",
    "@SUM(A1)",
    "-2+3",
]


@pytest.mark.parametrize("payload", FORMULAS)
def test_department_text_stays_text(tmp_path, template, payload):
    issue = make_issue("rating-invalid", sheet=SHEET, cell="G5", value=payload)
    # A message that starts with the payload itself, and a sheet name quoted back.
    raw = Issue(
        code="column-extra", severity="warning", message=payload, sheet=payload, cell="", value=payload
    )
    out = _write(tmp_path, template, [issue, raw])
    ws = load_workbook(out)[FEEDBACK_SHEET]
    header, _rows = _summary_rows(ws)
    for col in (2, 6):
        cell = ws.cell(header + 2, col)
        assert cell.value == payload and cell.data_type == "s"
    assert ws.cell(header + 2, 6).quotePrefix is True  # stays text after F2+Enter too
    assert payload in ws.cell(header + 1, 6).value
    assert "<f>" not in _sheet_xml(out, FEEDBACK_SHEET) and "<f " not in _sheet_xml(out, FEEDBACK_SHEET)
    assert load_workbook(out)[SHEET]["G5"].comment.text.count(payload) == 1


def test_resent_feedback_copy_is_cleaned_then_marked_again(tmp_path, template):
    first = _write(tmp_path, template, _issues())
    # The department fixes G5 and sends our copy back; only G7 is still wrong.
    resent = load_workbook(first)
    resent[SHEET]["G5"] = "A"
    data = _bytes(resent)
    issue = make_issue("required-missing", sheet=SHEET, cell="G7", column="事業評価")
    second = write_feedback(data, "差し戻し_R6_評価表.xlsx", [issue], tmp_path / "second.xlsx")
    wb = load_workbook(second)
    assert wb.sheetnames.count(FEEDBACK_SHEET) == 1 and wb.sheetnames[0] == FEEDBACK_SHEET
    _header, rows = _summary_rows(wb[FEEDBACK_SHEET])
    assert [r[4] for r in rows] == ["required-missing"]
    ws = wb[SHEET]
    assert _filled(ws) == {"G7": RED_RGB}
    assert ws["G5"].fill.fgColor.rgb == YELLOW and ws["A6"].fill.fill_type is None  # restored
    assert ws["G5"].comment is None  # our old note is gone
    assert ws["G7"].comment.text.count("[required-missing]") == 1
    assert ws["G4"].comment.text.startswith("A〜D の定義")  # the department's note stays


# --- what survives the round trip -------------------------------------------------------


def test_template_features_survive(tmp_path, template):
    source = load_workbook(io.BytesIO(template))
    out = _write(tmp_path, template, _issues())
    wb = load_workbook(out)
    ws, src = wb[SHEET], source[SHEET]

    (dv,) = ws.data_validations.dataValidation
    assert dv.type == "list" and dv.formula1 == "リスト!$A$1:$A$4"
    assert str(dv.sqref) == "G5:G50"
    assert dv.showErrorMessage is True and dv.errorStyle == "stop"
    assert dv.showInputMessage is True and dv.prompt == RATING_PROMPT and dv.promptTitle == "事業評価"
    assert dv.error == "A・B・C・D のいずれかを選んでください。" and dv.imeMode == "halfAlpha"

    assert dict(ws.protection) == dict(src.protection) and ws.protection.sheet is True
    assert wb.security.lockStructure is True
    assert wb["リスト"].sheet_state == "hidden"
    assert wb["_meta"].sheet_state == "veryHidden" and wb["_meta"]["B1"].value == "R6-1"
    assert {str(r) for r in ws.merged_cells.ranges} == {"A1:H1"}
    assert ws.freeze_panes == "C5"
    # Print area/titles are sheet-local names: they must follow the sheet, now at index 1.
    assert ws.print_area == src.print_area and ws.print_title_rows == "$4:$4"
    assert ws.page_setup.orientation == "landscape" and int(ws.page_setup.paperSize) == 8  # A3
    assert "評価入力" in wb.defined_names
    for letter in "ABCDEFGH":
        assert ws.column_dimensions[letter].width == src.column_dimensions[letter].width
    for row in src.iter_rows(min_row=1, max_row=7):
        for cell in row:
            copy = ws[cell.coordinate]
            assert copy.value == cell.value
            assert copy.number_format == cell.number_format
            assert _xml(copy.font) == _xml(cell.font) and _xml(copy.alignment) == _xml(cell.alignment)
            assert copy.protection.locked == cell.protection.locked
            if cell.coordinate not in {"G5", "A6", "F7", "G7"}:
                assert _xml(copy.fill) == _xml(cell.fill)
    # Nothing was lost, so the only ※ line is the (unmeasurable) comment-formatting caveat.
    assert _notes(out) == [
        "※ 既存のコメントは文字だけを引き継いでいます(文字の太さ・色・大きさは元のブックと異なります)。"
    ]


def test_xlsxwriter_cross_sheet_list_validation_survives(tmp_path):
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"strings_to_formulas": False})
    ws = book.add_worksheet(SHEET)
    lists = book.add_worksheet("リスト")
    for i, rating in enumerate("ABCD"):
        lists.write_string(i, 0, rating)
    lists.hide()
    ws.write_row(3, 0, HEADERS)
    for r, values in enumerate(ROWS, start=4):
        ws.write_row(r, 0, values)
    ws.data_validation(
        "G5:G50",
        {
            "validate": "list",
            "source": "=リスト!$A$1:$A$4",
            "input_title": "事業評価",
            "input_message": RATING_PROMPT,
            "error_title": "入力できない値です",
            "error_message": "A・B・C・D のいずれかを選んでください。",
            "error_type": "stop",
        },
    )
    book.close()
    data = buffer.getvalue()
    # Measured: xlsxwriter writes a list on another sheet as a plain <dataValidation>, no x14.
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<formula1>リスト!$A$1:$A$4</formula1>" in xml and "x14:dataValidation" not in xml

    out = _write(tmp_path, data, [make_issue("rating-invalid", sheet=SHEET, cell="G5", value="E")])
    (dv,) = load_workbook(out)[SHEET].data_validations.dataValidation
    assert (dv.type, dv.formula1, str(dv.sqref)) == ("list", "リスト!$A$1:$A$4", "G5:G50")
    # xlsxwriter omits errorStyle for "stop", Excel's default.
    assert dv.showErrorMessage is True and dv.errorStyle in (None, "stop") and dv.prompt == RATING_PROMPT
    assert _notes(out) == []


_X14_EXT = (
    '<extLst><ext uri="{{CCE6A557-97BC-4b89-ADB6-D9C93CAAB3DF}}" '
    'xmlns:x14="http://schemas.microsoft.com/office/spreadsheetml/2009/9/main">'
    '<x14:dataValidations count="1" xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main">'
    '<x14:dataValidation type="list" allowBlank="1" showInputMessage="1" showErrorMessage="1" '
    'errorTitle="入力できない値です" error="A・B・C・D のいずれかを選んでください。" '
    'promptTitle="事業評価" prompt="{prompt}" imeMode="halfAlpha" {extra}>'
    "<x14:formula1><xm:f>リスト!$A$1:$A$4</xm:f></x14:formula1><xm:sqref>G5:G50</xm:sqref>"
    "</x14:dataValidation></x14:dataValidations></ext></extLst>"
)


def _with_x14_validation(template: bytes, extra: str = "") -> bytes:
    """The template as Excel 2010 stores a list on another sheet: in the x14 extension."""
    source = zipfile.ZipFile(io.BytesIO(template))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            payload = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                xml = payload.decode()
                xml = re.sub(r"<dataValidations.*?</dataValidations>", "", xml, flags=re.S)
                xml = xml.replace(
                    "</worksheet>", _X14_EXT.format(prompt=RATING_PROMPT, extra=extra) + "</worksheet>"
                )
                payload = xml.encode()
            target.writestr(item, payload)
    return out.getvalue()


def test_x14_extension_validation_is_added_back(tmp_path, template):
    data = _with_x14_validation(template)
    # Precondition, measured: openpyxl alone drops this validation on load.
    with pytest.warns(UserWarning, match="Data Validation extension"):
        assert not load_workbook(io.BytesIO(data))[SHEET].data_validations.dataValidation

    out = _write(tmp_path, data, _issues())
    wb = load_workbook(out)
    (dv,) = wb[SHEET].data_validations.dataValidation
    assert (dv.type, dv.formula1, str(dv.sqref)) == ("list", "リスト!$A$1:$A$4", "G5:G50")
    assert dv.showErrorMessage is True and dv.errorStyle in (None, "stop")
    assert dv.prompt == RATING_PROMPT and dv.imeMode == "halfAlpha" and dv.allowBlank is True
    assert not any("入力規則" in n for n in _notes(out))


def test_validation_that_cannot_be_added_back_is_announced(tmp_path, template):
    # An operator openpyxl does not know: it cannot be re-created, so the list must say so.
    data = _with_x14_validation(template, extra='operator="someFutureOperator"')
    out = _write(tmp_path, data, _issues())
    notes = _notes(out)
    assert any(n.startswith("※ 元のブックの入力規則の一部") and f"「{SHEET}」の 1 件" in n for n in notes)


def test_shapes_and_extension_formats_are_announced_not_silently_lost(tmp_path):
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer)
    ws = book.add_worksheet(SHEET)
    ws.write_row(3, 0, HEADERS)
    ws.insert_textbox("J2", "記入上の注意: 黄色のセルのみ入力")
    ws.conditional_format("B5:B50", {"type": "data_bar", "data_bar_2010": True})
    chart = book.add_chart({"type": "bar"})
    chart.add_series({"values": f"='{SHEET}'!$B$5:$B$7"})
    ws.insert_chart("J10", chart)
    book.close()

    out = _write(tmp_path, buffer.getvalue(), [make_issue("no-rows")])
    notes = _notes(out)
    assert any("図形 1 個" in n for n in notes)  # the text box: openpyxl drops shapes
    assert any("条件付き書式" in n for n in notes)  # the 2010 data bar's x14 part
    assert not any("グラフ" in n for n in notes)  # charts survive
    assert len(load_workbook(out)[SHEET]._charts) == 1


# --- files, formats, fallbacks ----------------------------------------------------------


def test_original_file_on_disk_is_untouched(tmp_path, template):
    original = tmp_path / "R6_評価表_自立生活支援課.xlsx"
    original.write_bytes(template)
    before = hashlib.sha256(original.read_bytes()).hexdigest()
    stat = original.stat()
    data = original.read_bytes()
    out = write_feedback(data, original.name, _issues(), tmp_path / "fb.xlsx")
    assert hashlib.sha256(original.read_bytes()).hexdigest() == before
    assert original.stat().st_mtime_ns == stat.st_mtime_ns
    assert data == template  # the bytes we were given were not mutated either
    assert out.exists() and out != original
    # Atomic write: no temporary file is left next to the copy.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([original.name, "fb.xlsx"])


def test_copy_replaces_a_previous_copy_at_the_same_path(tmp_path, template):
    out = tmp_path / "fb.xlsx"
    out.write_bytes(b"old copy")
    assert write_feedback(template, "a.xlsx", _issues(), out) == out
    assert load_workbook(out).sheetnames[0] == FEEDBACK_SHEET
    assert [p.name for p in tmp_path.iterdir()] == ["fb.xlsx"]


def test_unwritable_target_raises_output_error(tmp_path, template):
    with pytest.raises(OutputError, match="差し戻し用のファイル"):
        write_feedback(template, "a.xlsx", _issues(), tmp_path / "missing-folder" / "a.xlsx")


def _fake_xlsm(template: bytes) -> bytes:
    """A minimal macro workbook: an openpyxl workbook plus a vbaProject.bin and its types."""
    source = zipfile.ZipFile(io.BytesIO(template))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            payload = source.read(item.filename)
            if item.filename == "[Content_Types].xml":
                xml = payload.decode().replace(
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
                    "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
                )
                xml = xml.replace(
                    "</Types>",
                    '<Override PartName="/xl/vbaProject.bin" ContentType="application/vnd.ms-office.vbaProject"/></Types>',
                )
                payload = xml.encode()
            elif item.filename == "xl/_rels/workbook.xml.rels":
                payload = (
                    payload.decode()
                    .replace(
                        "</Relationships>",
                        '<Relationship Id="rIdVba" Type="http://schemas.microsoft.com/office/2006/relationships/vbaProject" '
                        'Target="vbaProject.bin"/></Relationships>',
                    )
                    .encode()
                )
            target.writestr(item, payload)
        target.writestr("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"fake-vba" * 64)
    return out.getvalue()


def test_xlsm_keeps_its_vba_project(tmp_path, template):
    data = _fake_xlsm(template)
    out = write_feedback(data, "R6_評価表.xlsm", _issues(), tmp_path / "差し戻し_R6_評価表.xlsm")
    assert out.suffix == ".xlsm"
    with zipfile.ZipFile(out) as archive:
        assert archive.read("xl/vbaProject.bin") == zipfile.ZipFile(io.BytesIO(data)).read(
            "xl/vbaProject.bin"
        )
        types = archive.read("[Content_Types].xml").decode()
        assert "macroEnabled.main+xml" in types
        # openpyxl declares the VBA part by extension rather than by an Override: both are valid.
        assert 'Extension="bin" ContentType="application/vnd.ms-office.vbaProject"' in types
        assert "vbaProject" in archive.read("xl/_rels/workbook.xml.rels").decode()
    wb = load_workbook(out, keep_vba=True)
    assert wb.sheetnames[0] == FEEDBACK_SHEET and wb[SHEET]["G5"].fill.fgColor.rgb == RED_RGB
    assert wb[SHEET]["G4"].comment.text.startswith("A〜D の定義")


@pytest.mark.parametrize("data", [b"PK\x03\x04 not really a zip", b"", b"\xd0\xcf\x11\xe0 legacy"])
def test_unreadable_workbook_falls_back_to_the_list_only(tmp_path, data):
    issues = [make_issue("file-unreadable", detail="壊れた zip"), *_issues()[:2]]
    out = write_feedback(data, "壊れた.xlsx", issues, tmp_path / "差し戻し_壊れた.xlsx")
    wb = load_workbook(out)
    assert wb.sheetnames == [FEEDBACK_SHEET]
    ws = wb[FEEDBACK_SHEET]
    assert "壊れた.xlsx" in ws["A1"].value and "一覧のみ" in ws["A1"].value
    assert "読み込めなかった" in ws["A2"].value
    _header, rows = _summary_rows(ws)
    assert [r[4] for r in rows] == ["file-unreadable", "rating-invalid", "value-normalised"]
    assert not ws._hyperlinks  # the cells they point to are not in this workbook


def test_fallback_for_an_xlsm_is_written_as_xlsx(tmp_path):
    out = write_feedback(
        b"garbage", "R6.xlsm", [make_issue("file-unreadable", detail="x")], tmp_path / "R6.xlsm"
    )
    assert out == tmp_path / "R6.xlsx" and out.exists() and not (tmp_path / "R6.xlsm").exists()


def test_unknown_sheet_or_bad_address_is_listed_without_a_link(tmp_path, template):
    issues = [
        make_issue("required-missing", sheet="存在しないシート", cell="G5", column="事業評価"),
        make_issue("required-missing", sheet=SHEET, cell="ZZZ9999999", column="事業評価"),
        make_issue("required-missing", sheet=SHEET, cell="$G$6", column="事業評価"),
    ]
    out = _write(tmp_path, template, issues)
    wb = load_workbook(out)
    header, rows = _summary_rows(wb[FEEDBACK_SHEET])
    assert len(rows) == 3
    links = [wb[FEEDBACK_SHEET].cell(header + i, 3).hyperlink for i in (1, 2, 3)]
    assert links[0] is None and links[1] is None and links[2].location == f"'{SHEET}'!G6"
    assert _filled(wb[SHEET]) == {"G6": RED_RGB}


def test_pictures_are_kept_or_announced(tmp_path):
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer)
    ws = book.add_worksheet(SHEET)
    ws.write_row(3, 0, HEADERS)
    ws.insert_image("J2", "市章.png", {"image_data": io.BytesIO(png)})
    book.close()
    out = _write(tmp_path, buffer.getvalue(), [make_issue("no-rows")])
    try:
        import PIL  # noqa: F401  # openpyxl keeps pictures only when Pillow is installed
    except ImportError:
        assert any("画像 1 個" in n for n in _notes(out))
    else:
        assert len(load_workbook(out)[SHEET]._images) == 1 and _notes(out) == []


def test_password_protection_hash_survives(tmp_path):
    wb = _template_workbook()
    wb[SHEET].protection.password = "fukushi"
    data = _bytes(wb)
    src = load_workbook(io.BytesIO(data))[SHEET].protection
    copy = load_workbook(_write(tmp_path, data, _issues()))[SHEET].protection
    assert copy.password == src.password and copy.password and dict(copy) == dict(src)


def test_japanese_hyperlink_style_is_reused_not_duplicated(tmp_path):
    from openpyxl.styles import NamedStyle

    wb = _template_workbook()
    # Japanese Excel saves the built-in hyperlink style under its Japanese name.
    style = NamedStyle(name="ハイパーリンク", builtinId=8, font=Font(color="FF0563C1", underline="single"))
    wb.add_named_style(style)
    wb["記入方法"]["A3"].style = "ハイパーリンク"
    out = _write(tmp_path, _bytes(wb), _issues())
    with zipfile.ZipFile(out) as archive:
        styles = archive.read("xl/styles.xml").decode()
    assert styles.count('builtinId="8"') == 1
    summary = load_workbook(out)[FEEDBACK_SHEET]
    header, _rows = _summary_rows(summary)
    assert summary.cell(header + 1, 3).style == "ハイパーリンク"


def test_a_department_sheet_named_like_ours_is_kept(tmp_path, template):
    wb = _template_workbook()
    own = wb.create_sheet(FEEDBACK_SHEET)
    own["A1"] = "課内の確認メモ"
    out = _write(tmp_path, _bytes(wb), _issues())
    copy = load_workbook(out)
    assert copy[FEEDBACK_SHEET]["A1"].value == "課内の確認メモ"
    ours = copy.sheetnames[0]
    assert ours.startswith(FEEDBACK_SHEET) and ours != FEEDBACK_SHEET
    assert copy.active.title == ours and len(_summary_rows(copy[ours])[1]) == len(_issues())


def test_a_workbook_openpyxl_cannot_write_back_falls_back(tmp_path, template, monkeypatch):
    from pipeline.reader import annotate

    def broken(*_args, **_kwargs):
        raise TypeError("openpyxl could not serialise something")

    monkeypatch.setattr(annotate, "_annotated_copy", broken)
    out = write_feedback(template, "R6.xlsm", _issues(), tmp_path / "R6.xlsm")
    wb = load_workbook(out)
    assert out.suffix == ".xlsx" and wb.sheetnames == [FEEDBACK_SHEET]
    assert "読み込めなかった" in wb[FEEDBACK_SHEET]["A2"].value


# --- nothing active of the department's travels in the copy --------------------------------

_EXT_LINK_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<externalLink xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<externalBook r:id="rId1"><sheetNames><sheetName val="Sheet1"/></sheetNames>'
    '<sheetDataSet><sheetData sheetId="0"><row r="1"><cell r="A1"><v>42</v></cell></row></sheetData>'
    "</sheetDataSet></externalBook></externalLink>"
)
_EXT_LINK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'externalLinkPath" Target="file:///C:/共有/他課の集計.xlsx" TargetMode="External"/></Relationships>'
)
ACTIVE_SHEET = "記入シート"
# (cell, formula, value Excel cached for it)
ACTIVE_FORMULAS = [
    ("F5", "=cmd|' /C calc'!A0", "#N/A"),
    ("F6", '=HYPERLINK("http://attacker.example/?q=1","詳細はこちら")', "詳細はこちら"),
    ("F7", "=[1]Sheet1!A1", 42),
    ("F8", "=SUM(1,2)", 3),
]


def _active_workbook() -> bytes:
    """A return holding a DDE formula, a HYPERLINK formula, a cell hyperlink, an in-book link,
    a formula on another workbook with its xl/externalLinks part, and names using them; plus
    a validation, a comment and formatting that must survive. xlsxwriter stores each formula
    with a cached value, as Excel does."""
    buffer = io.BytesIO()
    wb = xlsxwriter.Workbook(buffer, {"in_memory": True})
    ws = wb.add_worksheet(ACTIVE_SHEET)
    bold = wb.add_format({"bold": True, "bg_color": "#FFF2CC"})
    ws.write_string("A4", "事業実績", bold)
    ws.write_string("G5", "E")
    for cell, formula, value in ACTIVE_FORMULAS:
        ws.write_formula(cell, formula, bold, value)
    ws.write_url("F9", "http://attacker.example/x", string="リンク先")
    ws.write_url("F10", f"internal:'{ACTIVE_SHEET}'!A1", string="先頭へ")
    ws.write_comment("A4", "課内メモ: 数値は9月末時点")
    ws.data_validation("G5:G50", {"validate": "list", "source": ["A", "B", "C", "D"]})
    wb.define_name("他課の値", "=[1]Sheet1!$A$1")
    wb.define_name("起動", "=cmd|' /C calc'!A0")
    wb.define_name("他課の表", "='[1]Sheet 1'!$A$1:$B$2")  # the index inside a quoted sheet name
    wb.define_name("入力範囲", f"='{ACTIVE_SHEET}'!$F$5:$H$50")
    wb.define_name("区切り", '="A|B"')  # a "|" inside a string constant is no DDE
    wb.close()

    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            payload = source.read(item.filename)
            if item.filename == "[Content_Types].xml":
                payload = payload.replace(
                    b"</Types>",
                    b'<Override PartName="/xl/externalLinks/externalLink1.xml" ContentType="application/'
                    b'vnd.openxmlformats-officedocument.spreadsheetml.externalLink+xml"/></Types>',
                )
            elif item.filename == "xl/_rels/workbook.xml.rels":
                payload = payload.replace(
                    b"</Relationships>",
                    b'<Relationship Id="rIdExt1" Type="http://schemas.openxmlformats.org/officeDocument/'
                    b'2006/relationships/externalLink" Target="externalLinks/externalLink1.xml"/></Relationships>',
                )
            elif item.filename == "xl/workbook.xml":
                payload = payload.replace(
                    b"</sheets>",
                    b'</sheets><externalReferences><externalReference r:id="rIdExt1"/></externalReferences>',
                )
            target.writestr(item, payload)
        target.writestr("xl/externalLinks/externalLink1.xml", _EXT_LINK_XML)
        target.writestr("xl/externalLinks/_rels/externalLink1.xml.rels", _EXT_LINK_RELS)
    data = out.getvalue()
    # the source really holds what the copy must not
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert "xl/externalLinks/externalLink1.xml" in archive.namelist()
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
        assert sheet.count("<f>") == len(ACTIVE_FORMULAS) and 'r:id="rId1"' in sheet
    return data


def _removed_rows(ws) -> list[tuple]:
    """The rows of the 取り除いた数式・リンク list on エラー一覧: (sheet, cell, kind, kept, before)."""
    rows = list(ws.iter_rows(values_only=True))
    start = next(i for i, r in enumerate(rows) if r[0] == "元のブックから取り除いた数式・リンク")
    assert rows[start + 1][:6] == ("No.", "シート", "セル", "種類", "残した値", "元の内容")
    return [tuple(r[1:6]) for r in rows[start + 2 :] if r[0] is not None]


def test_formulas_links_and_external_links_of_the_department_are_removed_and_listed(tmp_path):
    data = _active_workbook()
    issue = make_issue("rating-invalid", sheet=ACTIVE_SHEET, cell="G5", value="E")
    out = write_feedback(data, "R6_評価表.xlsx", [issue], tmp_path / "R6_評価表.xlsx")

    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        assert not [n for n in names if n.startswith("xl/externalLinks/")]
        for name in names:
            if not name.endswith((".xml", ".rels")):
                continue
            xml = archive.read(name).decode("utf-8")
            assert "externalReference" not in xml and "ddeLink" not in xml, name
            assert 'TargetMode="External"' not in xml, name  # no hyperlink or link relationship
            if name.startswith("xl/worksheets/") and name.count("/") == 2:
                assert "<f>" not in xml and "<f " not in xml, name
        workbook_xml = archive.read("xl/workbook.xml").decode("utf-8")
    assert "[1]" not in workbook_xml and "cmd|" not in workbook_xml  # the names using them are gone
    assert "入力範囲" in workbook_xml and "区切り" in workbook_xml  # plain names stay
    for link in re.findall(r"<hyperlink\b[^>]*>", _sheet_xml(out, ACTIVE_SHEET)):
        raise AssertionError(f"a department hyperlink survived: {link}")
    links = re.findall(r"<hyperlink\b[^>]*>", _sheet_xml(out, FEEDBACK_SHEET))
    assert links and all("location=" in link and "r:id=" not in link for link in links)

    wb = load_workbook(out)
    ws = wb[ACTIVE_SHEET]
    # the cached values stay, as values
    assert ws["F5"].value == "#N/A" and ws["F5"].data_type == "e"
    assert ws["F6"].value == "詳細はこちら" and ws["F6"].data_type == "s"
    assert ws["F7"].value == 42 and ws["F8"].value == 3
    assert all(ws[c].hyperlink is None for c in ("F6", "F9", "F10"))
    assert ws["F9"].value == "リンク先" and ws["F10"].value == "先頭へ"
    # values, formatting, validation and comments of the department stay
    assert ws["F7"].font.b and ws["F7"].fill.fgColor.rgb == "FFFFF2CC"
    assert ws["A4"].comment.text.startswith("課内メモ")
    assert [str(dv.sqref) for dv in ws.data_validations.dataValidation] == ["G5:G50"]
    assert ws["G5"].fill.fgColor.rgb == RED_RGB and "[rating-invalid]" in ws["G5"].comment.text
    assert not wb._external_links

    summary = wb[FEEDBACK_SHEET]
    removed = _removed_rows(summary)
    for cell, formula, value in ACTIVE_FORMULAS:
        assert (ACTIVE_SHEET, cell, "数式", str(value), formula) in removed
    assert (ACTIVE_SHEET, "F9", "ハイパーリンク", "リンク先", "http://attacker.example/x") in removed
    assert (ACTIVE_SHEET, "F10", "ハイパーリンク", "先頭へ", f"#'{ACTIVE_SHEET}'!A1") in removed
    assert (None, None, "外部リンク", "―", "file:///C:/共有/他課の集計.xlsx") in removed
    assert (None, None, "名前の定義", "―", "他課の値 = [1]Sheet1!$A$1") in removed
    assert (None, None, "名前の定義", "―", "起動 = cmd|' /C calc'!A0") in removed
    assert (None, None, "名前の定義", "―", "他課の表 = '[1]Sheet 1'!$A$1:$B$2") in removed
    assert len(removed) == len(ACTIVE_FORMULAS) + 2 + 1 + 3
    assert set(wb.defined_names) == {"入力範囲", "区切り"}
    # the quoted formulas are text on the list too, and stay text after F2+Enter
    before = {r[4]: r for r in removed}
    for row in summary.iter_rows():
        if row[5].value in before and str(row[5].value).startswith("="):
            assert row[5].data_type == "s" and row[5].quotePrefix, row[5].value
    assert any("数式 4 件" in note and "取り除きました" in note for note in _notes(out))
    # the list's own links go to the cells (ours, inside the book)
    assert summary.cell(_summary_rows(summary)[0] + 1, 3).hyperlink.location == f"'{ACTIVE_SHEET}'!G5"


def test_a_copy_without_formulas_or_links_lists_nothing_removed(tmp_path, template):
    out = _write(tmp_path, template, _issues())
    values = [c.value for row in load_workbook(out)[FEEDBACK_SHEET].iter_rows() for c in row]
    assert "元のブックから取り除いた数式・リンク" not in values
    assert not any("取り除きました" in note for note in _notes(out))


SAFE_TEXT_PAYLOADS = ["=1+1", "＝SUM(A1)", "＋1", "－1", "＠SUM(A1)", " =1+1", "\u3000＝1+1", "\t=1+1", "@SUM(A1:A2)"]


@pytest.mark.parametrize("payload", SAFE_TEXT_PAYLOADS)
def test_formula_like_texts_are_text_in_the_copy(tmp_path, payload):
    wb = _template_workbook()
    ws = wb[SHEET]
    ws["F5"].value = payload
    ws["F5"].data_type = "s"  # as Excel stores a typed '=… or a pasted value
    issue = Issue(code="rating-invalid", severity="error", message=f"{payload} は使えません", sheet=SHEET,
                  cell="F5", value=payload)  # fmt: skip
    quoted = Issue(code="column-extra", severity="warning", message=payload, sheet=payload, cell="")
    out = _write(tmp_path, _bytes(wb), [issue, quoted])
    copy = load_workbook(out)
    cell = copy[SHEET]["F5"]
    assert cell.value == payload and cell.data_type == "s" and cell.quotePrefix
    summary = copy[FEEDBACK_SHEET]
    header, _rows = _summary_rows(summary)
    for col in (2, 6):
        written = summary.cell(header + 2, col)
        assert written.value == payload and written.data_type == "s" and written.quotePrefix
    for name in (SHEET, FEEDBACK_SHEET):
        xml = _sheet_xml(out, name)
        assert "<f>" not in xml and "<f " not in xml


def test_a_feedback_copy_under_a_long_or_reserved_name_is_written(tmp_path, template):
    from pipeline.filenames import safe_filename

    long_name = ("【至急】令和6年度地域福祉計画進捗状況及び評価表の提出について(再送)" * 3).encode()[:245].decode(
        "utf-8", "ignore") + ".xlsx"  # fmt: skip
    for name in (long_name, "CON.xlsx", "a:b?.xlsx", "name. "):
        out = write_feedback(template, name, _issues(), tmp_path / safe_filename(name))
        assert out.exists() and len(out.name.encode("utf-8")) <= 120
        assert load_workbook(io.BytesIO(out.read_bytes())).sheetnames[0] == FEEDBACK_SHEET
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [safe_filename(long_name), "_CON.xlsx", "a_b_.xlsx", "name"])  # fmt: skip
