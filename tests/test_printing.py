"""Printing: the page plan (pipeline.printing), the committee document (pipeline.publish, the
`publish` command), and every workbook we write rendered to PDF by LibreOffice and read back.

The rendering tests need LibreOffice (soffice), poppler (pdftotext, pdffonts) and the BIZ UD
fonts (Debian: libreoffice-calc-nogui poppler-utils fonts-morisawa-bizud-gothic), and the font
test Noto CJK beside them (fonts-noto-cjk) so that a fallback shows; elsewhere they are skipped
with the reason shown. All five workbooks are converted in one soffice call.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import shutil
import subprocess
import zipfile
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from returns import edit_return

from pipeline import history, printing
from pipeline.catalog import load_catalog
from pipeline.cli import cli
from pipeline.errors import InputError
from pipeline.layout import OUTPUT_PROPERTY
from pipeline.master import master_name, summary_name
from pipeline.printing import Block, Line, Page, paginate
from pipeline.publish import (
    COMPARE_SHEET,
    COVER_SHEET,
    SUMMARY_SHEET,
    personal_info,
    publish_name,
    run_publish,
)
from pipeline.runner import run_merge
from pipeline.settings import Settings
from pipeline.sheets.goals import CONTINUED
from pipeline.wareki import wareki_month

R6 = load_catalog("R6")
TODAY = date(2026, 3, 10)
# Two answers of project 9 long enough that the project no longer fits on one page.
LONG = ("地域の関係機関と連携し、講座・講演会・出前講座を実施した。" * 32)[:900]


# --- the page plan ----------------------------------------------------------------------------


def lines(*heights: float, group: object = None) -> list[Line]:
    return [Line(h, (group, i), group=group) for i, h in enumerate(heights)]


def test_groups_move_whole_to_the_next_page():
    layout = paginate([Block(lines(40, 40, group="a") + lines(30, 30, group="b"))], capacity=100)
    assert layout.breaks == [2]
    assert [p.page for p in layout.placed] == [1, 1, 2, 2]
    assert layout.placed[2].top and not layout.placed[2].continued


def test_a_group_taller_than_a_page_is_split_and_marked_continued():
    layout = paginate([Block(lines(60, 60, 60, group="a"))], capacity=100)
    assert layout.breaks == [1, 2]
    assert [p.continued for p in layout.placed] == [False, True, True]


def test_top_height_is_used_for_a_line_that_begins_a_page():
    block = Block([Line(60, "x", group="a"), Line(30, "y", group="a", top_height=50)])
    layout = paginate([Block([Line(50, "before")]), block], capacity=100)
    # the group (90) does not fit after "before": it moves whole, and its first line is not a top_height one
    assert layout.breaks == [1] and [p.height for p in layout.placed] == [50.25, 60, 30]  # whole pixels
    split = paginate([Block([Line(80, "x", group="a"), Line(30, "y", group="a", top_height=45)])], capacity=100)
    assert split.breaks == [1] and split.placed[1].height == 45 and split.placed[1].continued


def test_block_header_repeats_on_each_continuation_page_and_spacers_are_dropped_at_tops():
    header = [Line(10, "title"), Line(10, "columns")]
    rows = [Line(20, f"r{i}") for i in range(9)]
    layout = paginate([Block([Line(70, "intro"), Line(10, None, spacer=True)]),
                       Block(header + rows, keep=True, header=2)], capacity=100)
    items = [(p.page, p.line.item, p.repeated) for p in layout.placed]
    # the table (200) cannot be kept on one page: its header and first row move to page 2 (not
    # left alone under the intro), and the header comes back on every later page
    assert items[0] == (1, "intro", False) and items[2] == (2, "title", False)
    repeated = [(page, item) for page, item, rep in items if rep]
    assert repeated and all(item in ("title", "columns") for _, item in repeated)
    assert {page for page, _ in repeated} == set(range(3, layout.pages + 1))
    assert all(p.line.item is not None for p in layout.placed if p.top)  # no blank line tops a page


def test_kept_block_starts_a_new_page_when_it_fits_on_one():
    layout = paginate([Block([Line(60, "a")]), Block([Line(30, "b"), Line(30, "c")], keep=True)], capacity=100)
    assert layout.breaks == [1]


def test_print_titles_take_room_on_later_pages_only():
    layout = paginate([Block(lines(*[25] * 8))], capacity=100, title_height=25)
    # page 1 holds 4 lines, later pages 3 (the repeated title takes 25)
    assert layout.breaks == [4, 7]


def test_page_geometry_and_scale():
    a3 = Page()
    assert a3.size_pt == (1190.55, 841.89)
    assert a3.width_pt == pytest.approx(1190.55 - 0.8 * 72)
    # 220 units of the monospaced standard font: 5.5 pt a unit, plus padding
    assert printing.columns_pt([220]) == pytest.approx((220 + 0.72) * 5.5)
    scale = printing.print_scale([9, 9, 24, 42, 22, 55, 9, 51], a3)
    assert 80 <= scale <= 90  # about 9.5 pt on paper for the 11 pt text
    assert printing.print_scale([10], a3) == 100
    assert printing.capacity_pt(a3, 50) == pytest.approx(2 * a3.height_pt * printing.HEIGHT_FILL)
    assert printing.snap(18.1) == 18.75 and printing.snap(18.75) == 18.75


# --- personal information -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("講師に市教育長・大熊雅士さんを迎え", [("name", "大熊雅士さん")]),
        ("山田 太郎様より寄付", [("name", "山田 太郎様")]),
        ("鈴木氏が講演した", [("name", "鈴木氏")]),
        ("ボランティアのタナカさんが参加", [("name", "タナカさん")]),
        ("問合せ 042-387-9999 まで", [("phone", "042-387-9999")]),
        ("携帯０９０－１２３４－５６７８へ", [("phone", "090-1234-5678")]),
        ("(042)387-9999", [("phone", "042)387-9999")]),
        ("042(387)9999", [("phone", "042(387)9999")]),
        ("連絡は taro.yamada@example.jp へ", [("email", "taro.yamada@example.jp")]),
        # not names: words with 様, roles, polite forms
        ("昨年同様に実施し、新様式へ移行した。様々な団体と多様な主体、多種多様な活動", []),
        ("利用者様・市民の皆様・お子さん・保護者様・相談者さん", []),
        ("氏名を記入する欄", []),
        # not telephone numbers: counts, dates, amounts
        ("10,804件(R6年実績)、令和6年9月1日、予算 1,234,567円、2024-04-01", []),
    ],
)
def test_personal_info(text, found):
    assert personal_info(text) == found


# --- a merge to print: errors, warnings, a long project, a previous year -------------------------


@pytest.fixture(scope="module")
def merged(tmp_path_factory, demo_returns) -> dict:
    """A merge of the demo returns with an error (a feedback copy), a damaged file (a long
    message) and two long answers of project 9, whose five rows then no longer fit on a page."""
    base = tmp_path_factory.mktemp("printing")
    inbox, outbox = base / "inbox", base / "outbox"
    shutil.copytree(demo_returns, inbox)
    own = inbox / "R6_地域福祉計画評価_地域福祉課.xlsx"
    edit_return(own, own, {("16", "福祉保健部各課"): {"rating": "E"}, ("9", "地域福祉課(関係各課)"): {"result": LONG}})
    other = inbox / "R6_地域福祉計画評価_自立生活支援課.xlsx"
    edit_return(other, other, {("9", "自立生活支援課"): {"result": LONG}})
    (inbox / "R6_地域福祉計画評価_健康課_古い版.xlsx").write_bytes(b"PK\x03\x04" + b"x" * 200)
    run = run_merge(Settings(inbox=inbox, outbox=outbox))
    assert run.exit_code == 1 and len(run.feedback) == 1
    return {"base": base, "outbox": outbox, "run": run, "settings": Settings(inbox=inbox, outbox=outbox)}


def test_a_page_that_begins_inside_a_project_repeats_its_labels(merged):
    wb = openpyxl.load_workbook(merged["outbox"] / master_name(R6))
    ws = wb["基本目標1"]
    tops = [b.id + 1 for b in ws.row_breaks.brk]
    continued = [r for r in tops if str(ws.cell(r, 3).value or "").endswith(CONTINUED)]
    assert continued, "project 9 should be split between pages"
    for r in tops:
        # every page's first row names its 施策 and 事業
        assert ws.cell(r, 1).value and ws.cell(r, 2).value and ws.cell(r, 3).value, f"row {r}"
    for r in continued:
        assert ws.cell(r, 2).value == 9 and ws.cell(r, 3).value == "市民に対する啓発活動の推進" + CONTINUED
        assert ws.cell(r, 4).value is None  # 内容 stands once, on the project's first row


def test_each_page_closes_the_goal_table_at_its_foot(merged):
    """The last row above a page break has a bottom border in every column, the grouped 施策No.,
    事業No., name and 内容 cells included (they have no line between a project's rows)."""
    wb = openpyxl.load_workbook(merged["outbox"] / master_name(R6))
    for g in (1, 2, 3):
        ws = wb[f"基本目標{g}"]
        feet = [b.id for b in ws.row_breaks.brk]  # the break falls below row id (1-based)
        assert feet or g != 1
        for r in feet:
            if ws.cell(r, 5).value is None:  # a break between the overview and the table
                continue
            for c in range(1, 5):
                assert ws.cell(r, c).border.bottom.style == "thin", (ws.title, r, c)


def test_planned_pages_fit_the_paper(merged):
    """On every sheet with planned breaks, the rows of each page fit its printable height."""
    wb = openpyxl.load_workbook(merged["outbox"] / master_name(R6))
    for ws in wb.worksheets:
        if ws.sheet_properties.pageSetUpPr.fitToPage:
            continue
        scale = ws.page_setup.scale or 100
        page = Page(paper=int(ws.page_setup.paperSize))
        room = page.height_pt * 100 / scale
        titles = 0.0
        if ws.print_title_rows:
            r = int(re.findall(r"\d+", ws.print_title_rows)[0])
            titles = ws.row_dimensions[r].height
        starts = [1, *(b.id + 1 for b in ws.row_breaks.brk), ws.max_row + 1]
        for i, (a, b) in enumerate(itertools.pairwise(starts)):
            used = sum(ws.row_dimensions[r].height or 18 for r in range(a, b)) + (titles if i else 0)
            assert used <= room, f"{ws.title} page {i + 1}: {used:.0f} > {room:.0f} pt"


@pytest.fixture(scope="module")
def published(merged) -> dict:
    outbox = merged["outbox"]
    # last year, from this master with some ratings changed: the document compares the two years
    past = history.read_master(outbox / master_name(R6), "R5")
    changed = dict(past.evaluations)
    for key in list(changed)[:12:4]:
        changed[key] = dataclasses.replace(changed[key], rating="C")
    history.write_stored(history.stored_path(outbox, "R5"), history.PastYear("R5", "test", changed))
    result = run_publish(merged["settings"], today=TODAY)
    return {"result": result, "wb": openpyxl.load_workbook(result.xlsx)}


def test_publish_writes_the_committee_document(published):
    result, wb = published["result"], published["wb"]
    assert result.xlsx.name == publish_name(R6) == "地域福祉計画_進捗状況及び評価表_R6.xlsx"
    assert result.xlsx.parent.name == "publish" and result.exit_code == 0 and result.pdf is None
    assert wb.sheetnames == [COVER_SHEET, "基本目標1", "基本目標2", "基本目標3", SUMMARY_SHEET, COMPARE_SHEET]
    assert result.previous == "R5" and result.rows == 68 and result.missing == 1
    cover = [c.value for row in wb[COVER_SHEET].iter_rows() for c in row if c.value]
    assert cover[:4] == ["地域福祉計画の進捗状況及び評価表", "(令和6年度実績報告)", "令和8年3月", "福祉保健部地域福祉課"]
    assert "【事業評価の評価基準】" in cover
    # the published layout: the 【基本施策】 overview (goal, 施策の方向性, 施策 lines), then the table's columns
    ws = wb["基本目標2"]
    assert ws.cell(1, 1).value == "【基本施策】"
    assert [ws.cell(2, c).value for c in (1, 3)] == ["基本目標", "2 包括的支援体制の構築"]
    assert [ws.cell(3, c).value for c in (1, 3)] == ["施策の方向性", "(1) 重層的支援体制の整備"]
    head = next(r for r in range(1, 40) if ws.cell(r, 1).value == "施策No.")
    assert [ws.cell(head, c).value for c in range(1, 9)] == [
        "施策No.", "事業No.", "【個別事業・取り組み】", "内容", "担当課", "事業実績・評価理由 (令和6年度)", "事業評価",
        "今後の事業計画・展望"]
    assert ws.print_title_rows == f"${head}:${head}"
    # our output mark, so the document dropped into the inbox is never read as a return
    with zipfile.ZipFile(result.xlsx) as z:
        assert f'name="{OUTPUT_PROPERTY}"' in z.read("docProps/custom.xml").decode() and "kind=publish" in z.read(
            "docProps/custom.xml").decode()


def test_publish_never_mentions_our_process(published, merged):
    """The committee sees evaluations: no file names, issue codes, 未提出 or reception times."""
    wb = published["wb"]
    texts = " ".join(str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value)
    for word in (".xlsx", "未提出", "受信", "エラー", "rating-invalid", "file-corrupt", "提出"):
        assert word not in texts, word
    headers = " ".join(ws.oddHeader.left.text or "" for ws in wb.worksheets)
    assert "受信" not in headers


def test_publish_counts_and_comparison(published):
    wb = published["wb"]
    ws = wb[SUMMARY_SHEET]
    rows = {ws.cell(r, 1).value: [ws.cell(r, c).value for c in range(2, 8)] for r in range(1, ws.max_row + 1)}
    # published R6 counts, less the one evaluation that the error kept out (事業16, a B in goal 1)
    assert rows["基本目標1"] == ["福祉のまちづくり", 24, 9, 0, 0, 33]
    assert rows["基本目標2"][1:] == [6, 9, 0, 3, 18] and rows["合計"][1:] == [40, 24, 0, 4, 68]
    cmp = wb[COMPARE_SHEET]
    changed = [r for r in range(1, cmp.max_row + 1) if cmp.cell(r, 1).value == "評価が変わった事業"]
    assert changed and cmp.cell(changed[0] + 2, 7).value == "C"


def test_personal_info_is_a_warning_not_a_block(published):
    result = published["result"]
    assert [(i.code, i.severity, i.value, i.sheet) for i in result.issues] == [
        ("personal-info-suspected", "warning", "大熊雅士さん", "評価一覧")]
    message = result.issues[0].message
    assert "事業No.9" in message and "広報秘書課" in message and "事業実績・評価理由" in message
    assert result.xlsx.is_file()  # written all the same: staff decide


def test_publish_without_libreoffice_writes_the_workbook_and_says_how_to_export(merged, tmp_path):
    settings = dataclasses.replace(merged["settings"], soffice=str(tmp_path / "no" / "soffice.exe"))
    result = run_publish(settings, tmp_path / "out", pdf=True, today=TODAY)
    assert result.xlsx.is_file() and result.pdf is None and result.exit_code == 3
    assert "エクスポート" in result.pdf_error and "ブック全体" in result.pdf_error and "PDF" in result.pdf_error


def test_publish_says_when_the_pdf_is_made_without_kinsoku(merged, tmp_path, monkeypatch):
    """Without a Python that has LibreOffice's uno module the PDF is made by plain
    --convert-to, without Japanese line breaking: staff are told, and how to get it."""
    fake = tmp_path / "program" / "soffice"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setattr(printing, "uno_python", lambda soffice: None)
    settings = dataclasses.replace(merged["settings"], soffice=str(fake))
    result = run_publish(settings, tmp_path / "out", pdf=True, today=TODAY)
    assert any("禁則" in n and "python3-uno" in n for n in result.notices), result.notices
    assert result.pdf is None and result.exit_code == 3  # the fake soffice made nothing


def test_publish_command(merged, tmp_path):
    toml = tmp_path / "pipeline.toml"
    toml.write_text(
        f'[paths]\ninbox = "{merged["base"] / "inbox"}"\noutbox = "{merged["outbox"]}"\n'
        f'[publish]\nsoffice = "{tmp_path / "missing-soffice"}"\n', encoding="utf-8")
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["--settings", str(toml), "publish", "--out", str(out), "--pdf"])
    assert res.exit_code == 3, res.output
    assert (out / publish_name(R6)).is_file()
    assert "personal-info-suspected" in res.output and "大熊雅士さん" in res.output
    assert "LibreOffice" in res.output and "ブック全体" in res.output
    res = CliRunner().invoke(cli, ["--settings", str(toml), "publish", "--out", str(out)])
    assert res.exit_code == 0, res.output
    # the cover's date: the month of the run by default, or the month given, in 令和
    def cover_date() -> str:
        return openpyxl.load_workbook(out / publish_name(R6))[COVER_SHEET].cell(5, 1).value
    assert cover_date() == wareki_month(date.today())
    res = CliRunner().invoke(cli, ["--settings", str(toml), "publish", "--out", str(out), "--issued", "2026-03"])
    assert res.exit_code == 0, res.output
    assert cover_date() == "令和8年3月"
    for bad in ("2026-13", "令和8年3月", "2026/03"):
        res = CliRunner().invoke(cli, ["--settings", str(toml), "publish", "--out", str(out), "--issued", bad])
        assert res.exit_code == 2 and "YYYY-MM" in res.output, (bad, res.output)


def test_publish_without_a_master_exits_3(tmp_path):
    settings = Settings(inbox=tmp_path / "inbox", outbox=tmp_path / "outbox")
    with pytest.raises(InputError, match="merge"):
        run_publish(settings)


def test_cover_criteria_sit_beside_their_letters(published):
    """The 評価基準: each letter in column B, its meaning in the very next column, no gap between."""
    ws = published["wb"][COVER_SHEET]
    rows = [r for r in range(1, ws.max_row + 1) if str(ws.cell(r, 2).value or "").endswith("・・・")]
    assert [ws.cell(r, 2).value[0] for r in rows] == list(R6.ratings)
    assert all(ws.cell(r, 3).value == R6.ratings[ws.cell(r, 2).value[0]] for r in rows)
    letter_width = ws.column_dimensions["B"].width
    assert letter_width <= 12  # "A・・・" and no more: the meaning follows it


def test_wareki_month():
    assert wareki_month(date(2026, 3, 1)) == "令和8年3月"
    assert wareki_month(date(2019, 5, 1)) == "令和元年5月"
    assert wareki_month(date(2019, 4, 30)) == "2019年4月"  # before 令和, as wareki shows a day


# --- rendering ---------------------------------------------------------------------------------------

# Pages as rendered by LibreOffice 7.4 with the BIZ UD fonts, A3 landscape (the summary A4), for
# the `merged` inputs (the demo returns, one error, two long answers of project 9):
# master 21: 評価一覧 7, 基本目標1–3 5+2+2 (project 9 split over two pages), 集計 3 (tables; the
# charts and 担当課別; its end and C・D), 提出状況 1, 検証結果 1; summary 6: per goal, its tables,
# then chart and C・D; template 4: 記入シート 3 (30 rows), 記入要領 1; feedback copy 5: エラー一覧 1,
# then the department's 記入シート 3 and 記入要領 1; published document 14: cover 1, goals 5+2+2,
# 評価の集計 2 (tables; charts), 前年度比較 2 (tables and chart; changed ratings).
EXPECTED_PAGES = {"master": 21, "summary": 6, "template": 4, "feedback": 5, "publish": 14}
MASTER_SHEETS_PRINTED = ("評価一覧", "基本目標1", "基本目標2", "基本目標3", "集計", "提出状況", "検証結果")
PUBLISH_SHEETS_PRINTED = ("基本目標1", "基本目標2", "基本目標3", SUMMARY_SHEET, COMPARE_SHEET)


def _tools_missing() -> str:
    missing = [t for t in ("pdftotext", "pdffonts") if shutil.which(t) is None]
    if printing.find_soffice() is None:
        missing.insert(0, "soffice")
    if missing:
        return f"LibreOffice (soffice) / poppler is not installed: {', '.join(missing)} not found " \
               "(apt-get install libreoffice-calc-nogui poppler-utils fonts-morisawa-bizud-gothic)"
    if printing.font_installed(printing.TEXT_FONT) is False:
        return "the BIZ UD fonts are not installed (apt-get install fonts-morisawa-bizud-gothic)"
    return ""


@pytest.fixture(scope="module")
def rendered(merged, published, template_dir) -> dict:
    reason = _tools_missing()
    if reason:
        pytest.skip(reason)
    work = merged["base"] / "render"
    work.mkdir()
    outbox = merged["outbox"]
    sources = {
        "master": outbox / master_name(R6),
        "summary": outbox / summary_name(R6),
        "template": template_dir / "R6_地域福祉計画評価_地域福祉課.xlsx",
        "feedback": merged["run"].feedback[0],
        "publish": published["result"].xlsx,
    }
    copies = []
    for name, source in sources.items():
        shutil.copyfile(source, work / f"{name}.xlsx")
        copies.append(work / f"{name}.xlsx")
    printing.convert_to_pdf(copies, work, printing.find_soffice() or "soffice", timeout=300)
    return {name: _pages(work / f"{name}.pdf") for name in sources} | {"dir": work}


def _pages(pdf: Path) -> list[dict[str, str]]:
    count = int(re.search(r"Pages:\s+(\d+)", subprocess.run(
        ["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout)[1])
    pages = []
    for n in range(1, count + 1):
        def text(*mode: str, n: int = n) -> str:
            return subprocess.run(["pdftotext", *mode, "-f", str(n), "-l", str(n), str(pdf), "-"],
                                  capture_output=True, text=True, check=True).stdout
        pages.append({"layout": text("-layout"), "raw": text()})
    return pages


def _sheet_of(page: dict[str, str], names: tuple[str, ...]) -> str:
    """The sheet a page belongs to: its header names it (&A), between wide gaps."""
    first = next((line for line in page["layout"].splitlines() if line.strip()), "")
    parts = {p.strip() for p in re.split(r"\s{2,}", first)}
    return next((n for n in names if n in parts), "")


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_page_counts(rendered):
    counts = {name: len(rendered[name]) for name in EXPECTED_PAGES}
    assert counts == EXPECTED_PAGES


# Another Japanese font for LibreOffice to fall back to: with BIZ UD the only one, text that does
# not name the UD font for Japanese would still be set in it, and the test below could not fail.
FALLBACK_FONT = "Noto Sans CJK JP"


def test_every_font_in_every_pdf_is_a_ud_font(rendered):
    if printing.font_installed(FALLBACK_FONT) is not True:
        pytest.skip(f"{FALLBACK_FONT} is not installed, so a fallback could not show (apt-get install fonts-noto-cjk)")
    for name in EXPECTED_PAGES:
        fonts = subprocess.run(["pdffonts", str(rendered["dir"] / f"{name}.pdf")], capture_output=True, text=True,
                               check=True).stdout.splitlines()[2:]
        faces = {line.split()[0].split("+")[-1] for line in fonts if line.strip()}
        assert faces and all(f.startswith("BIZUD") for f in faces), (name, faces)


def _paragraphs(path: Path) -> set[str]:
    """Every paragraph (a cell's text, or a line of it) the workbook holds, blanks squashed."""
    wb = openpyxl.load_workbook(path)
    return {_squash(part) for ws in wb.worksheets for row in ws.iter_rows() for c in row
            if isinstance(c.value, str) for part in c.value.split("\n") if part.strip()}


@pytest.mark.parametrize("doc", list(EXPECTED_PAGES))
def test_no_printed_line_breaks_against_kinsoku(rendered, doc):
    """No line of the rendered PDF begins with 、。，．・：；？！ー）」』】〕 or ends with （「『【〔,
    unless the line is where a paragraph begins (a 記入要領 bullet 「・…」)."""
    if printing.uno_python(printing.find_soffice() or "soffice") is None:
        pytest.skip("no Python with LibreOffice's uno module (Debian: python3-uno): the PDF is made "
                    "without Japanese line breaking")
    starts = _paragraphs(rendered["dir"] / f"{doc}.xlsx")
    broken = []
    for n, page in enumerate(rendered[doc], start=1):
        for line in page["raw"].splitlines():
            text = line.strip()
            if not text:
                continue
            squashed = _squash(text)
            begins_paragraph = any(p.startswith(squashed[:12]) for p in starts)
            if (text[0] in printing.NO_LINE_START and not begins_paragraph) or text[-1] in printing.NO_LINE_END:
                broken.append((n, text[:40]))
    assert broken == [], broken


@pytest.mark.parametrize("doc", ["master", "publish"])
def test_office_names_break_only_before_a_parenthesis(rendered, doc):
    """A 担当課 or 課 printed in a table cell stands on one line, or breaks at its 「(」."""
    names = {a.department for a in R6.assignments} | {a.office for a in R6.assignments}
    lines = [_squash(x) for page in rendered[doc] for x in page["raw"].splitlines() if x.strip()]
    cut = []
    for a, b in itertools.pairwise(lines):
        for name in names:
            for k in range(2, len(name) - 1):
                # a line that is (or ends a cell with) the start of the name, the next the rest
                if a.endswith(name[:k]) and b.startswith(name[k:]) and name[k] != "(" and len(a) <= len(name):
                    cut.append((a, b))
    assert cut == [], cut


def _text_fill(pdf: Path, n: int) -> float:
    """How far down the printable height (A3 landscape, our margins) page n's text reaches, 0–1."""
    xml = subprocess.run(["pdftotext", "-bbox-layout", "-f", str(n), "-l", str(n), str(pdf), "-"],
                         capture_output=True, text=True, check=True).stdout
    height = float(re.search(r'<page width="[\d.]+" height="([\d.]+)"', xml)[1])
    page = Page()
    top, bottom = page.top * 72, height - page.bottom * 72
    ends = [float(y) for y0, y in re.findall(r'<block xMin="[\d.]+" yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)"', xml)
            if top <= float(y0) and float(y) <= bottom]  # not the page header or footer
    return (max(ends, default=top) - top) / (bottom - top)


@pytest.mark.parametrize("doc", ["master", "publish"])
def test_goal_pages_use_the_paper(rendered, doc):
    """Every page of a goal table but the goal's last is at least half filled with text."""
    goals = ("基本目標1", "基本目標2", "基本目標3")
    pages: dict[str, list[int]] = {}
    for n, page in enumerate(rendered[doc], start=1):
        sheet = _sheet_of(page, goals)
        if sheet:
            pages.setdefault(sheet, []).append(n)
    assert sorted(pages) == list(goals)
    pdf = rendered["dir"] / f"{doc}.pdf"
    fills = {sheet: [round(_text_fill(pdf, n), 2) for n in numbers[:-1]] for sheet, numbers in pages.items()}
    assert all(f >= 0.5 for f in itertools.chain(*fills.values())), fills


@pytest.mark.parametrize(("doc", "names"), [("master", MASTER_SHEETS_PRINTED), ("publish", PUBLISH_SHEETS_PRINTED)])
def test_each_sheet_prints_the_pages_it_planned(rendered, merged, published, doc, names):
    """No page break but ours: each sheet with planned breaks renders to exactly that many pages."""
    path = merged["outbox"] / master_name(R6) if doc == "master" else published["result"].xlsx
    wb = openpyxl.load_workbook(path)
    rendered_pages: dict[str, int] = {}
    for page in rendered[doc]:
        sheet = _sheet_of(page, names)
        rendered_pages[sheet] = rendered_pages.get(sheet, 0) + 1
    for name in names:
        ws = wb[name]
        assert rendered_pages.get(name, 0) >= 1, name
        if not ws.sheet_properties.pageSetUpPr.fitToPage:
            assert rendered_pages[name] == len(ws.row_breaks.brk) + 1, name


@pytest.mark.parametrize("doc", ["master", "publish"])
def test_each_goal_page_names_the_project_of_its_first_row(rendered, doc):
    goal_pages = [p for p in rendered[doc] if _sheet_of(p, ("基本目標1", "基本目標2", "基本目標3"))]
    assert len(goal_pages) >= 9
    first_rows = []
    for page in goal_pages:
        lines_ = [x for x in page["layout"].splitlines() if x.strip()]
        head = next(i for i, x in enumerate(lines_) if "事業No." in x and "担当課" in x)
        first = lines_[head + 1]
        m = re.match(r"\s*\(\d+\)[①-⑳]\s+(\d+(?:～\d+)?)\s+\S", first)
        assert m, f"page starts without 施策No./事業No.: {first.strip()[:60]}"
        first_rows.append((m[1], _squash("".join(lines_[head + 1:head + 3]))))
    # project 9 is split: the page that continues it says so (its name wraps onto a second line)
    assert any(no == "9" and CONTINUED in text for no, text in first_rows)


@pytest.mark.parametrize(
    ("doc", "charts"),
    [
        ("master", {"基本目標別の評価": [g.name for g in R6.goals],
                    **{f"基本目標{g.number}施策の方向性別の評価": [d.name for d in R6.directions if d.goal == g.number]
                       for g in R6.goals}}),
        ("summary", {f"基本目標{g.number}施策別の評価": [m.name for m in R6.measures if m.goal == g.number]
                     for g in R6.goals}),
        ("publish", {"基本目標別の評価": [g.name for g in R6.goals], "基本目標別のA・B評価の割合": [g.name for g in R6.goals],
                     **{f"基本目標{g.number}施策の方向性別の評価": [d.name for d in R6.directions if d.goal == g.number]
                        for g in R6.goals}}),
    ],
)
def test_every_chart_is_on_one_page_with_its_axis_labels(rendered, doc, charts):
    pages = [_squash(p["layout"]) for p in rendered[doc]]
    for title, categories in charts.items():
        found = [i for i, text in enumerate(pages) if title in text]
        assert len(found) == 1, (title, found)
        after = pages[found[0]][pages[found[0]].index(title):]  # the chart below its title
        for category in categories:
            assert category[:5] in after, (title, category)


def test_every_issue_message_prints_whole(rendered, merged):
    ws = openpyxl.load_workbook(merged["outbox"] / master_name(R6))["検証結果"]
    messages = [ws.cell(r, 6).value for r in range(2, ws.max_row + 1) if ws.cell(r, 6).value]
    assert any(len(m) > 90 for m in messages)  # some wrap
    text = _squash("".join(p["raw"] for p in rendered["master"] if _sheet_of(p, ("検証結果",))))
    for m in messages:
        assert _squash(m) in text, m
    # and in the feedback copy's エラー一覧
    fb = _squash(rendered["feedback"][0]["raw"])
    assert _squash("事業評価「E」は使えません。") in fb and "エラー一覧" in rendered["feedback"][0]["layout"]


def test_file_list_prints_names_whole(rendered, merged):
    text = _squash("".join(p["raw"] for p in rendered["master"] if _sheet_of(p, ("提出状況",))))
    for f in merged["run"].files:
        assert _squash(f.name) in text, f.name
    assert "子ども家庭センター" in text


def test_template_pages_show_header_and_page_number(rendered):
    pages = rendered["template"]
    for n, page in enumerate(pages, start=1):
        text = page["layout"]
        assert re.search(rf"^\s*{n}\s*/\s*{len(pages)}\s*$", text, re.M), n
        assert "令和6年度 地域福祉計画の進捗状況及び評価表" in text, n
    # the data pages repeat the column headings
    assert all("事業No." in p["layout"] for p in pages[:-1])


# --- chart text -------------------------------------------------------------------------------------

_DML = "{http://schemas.openxmlformats.org/drawingml/2006/main}"


def _charts_by_sheet(path: Path) -> dict[str, list[tuple[int, bytes]]]:
    """Each sheet's charts (chart XML) with the sheet's print scale, read from the package's parts
    and relationships."""
    from xml.etree import ElementTree as ET

    def rels(z: zipfile.ZipFile, part: str) -> dict[str, str]:
        folder, name = part.rsplit("/", 1)
        rel_part = f"{folder}/_rels/{name}.rels"
        if rel_part not in z.namelist():
            return {}
        out = {}
        for r in ET.fromstring(z.read(rel_part)):
            target = r.get("Target", "")
            parts = folder.split("/")
            for step in target.split("/"):
                parts = parts[:-1] if step == ".." else [*parts, step]
            out[r.get("Id", "")] = "/".join(parts)
        return out

    found: dict[str, list[tuple[int, bytes]]] = {}
    with zipfile.ZipFile(path) as z:
        book = ET.fromstring(z.read("xl/workbook.xml"))
        book_rels = rels(z, "xl/workbook.xml")
        for sheet in book.iter("{http://schemas.openxmlformats.org/spreadsheetml/2006/main}sheet"):
            part = book_rels[sheet.get("{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id", "")]
            setup = re.search(rb"<pageSetup[^>]*>", z.read(part))
            scale = re.search(rb'scale="(\d+)"', setup[0]) if setup else None
            for drawing in rels(z, part).values():
                for chart in rels(z, drawing).values():
                    found.setdefault(sheet.get("name", ""), []).append(
                        (int(scale[1]) if scale else 100, z.read(chart)))
    return found


@pytest.mark.parametrize("doc", ["master", "summary", "publish"])
def test_every_chart_text_is_in_the_ud_font_and_at_least_9_pt_on_paper(merged, published, doc):
    """Every run of chart text (title, axes, legend, data labels) names the UD font for Latin and
    East Asian text alike (a font named for Latin only leaves Japanese to the system's fallback),
    and is at least 9 pt once the sheet's print scale shrinks it."""
    from xml.etree import ElementTree as ET

    path = {"master": merged["outbox"] / master_name(R6), "summary": merged["outbox"] / summary_name(R6),
            "publish": published["result"].xlsx}[doc]
    charts = _charts_by_sheet(path)
    assert sum(len(c) for c in charts.values()) >= len(R6.goals)
    for sheet, items in charts.items():
        for scale, xml in items:
            props = [e for tag in ("rPr", "defRPr") for e in ET.fromstring(xml).iter(f"{_DML}{tag}")]
            assert props, sheet
            for p in props:
                faces = {kind: p.find(f"{_DML}{kind}") for kind in ("latin", "ea", "cs")}
                assert all(f is not None and f.get("typeface") == printing.TEXT_FONT for f in faces.values()), (
                    sheet, ET.tostring(p))
                size = int(p.get("sz", "0")) / 100 * scale / 100
                assert size >= 9, (sheet, size)
