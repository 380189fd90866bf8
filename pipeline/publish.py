"""The year's committee document: 進捗状況及び評価表, as one print-ready workbook and its PDF.

    >>> from pipeline.publish import run_publish
    >>> result = run_publish(Settings(), pdf=True)        # doctest: +SKIP
    >>> result.xlsx, result.pdf, result.exit_code          # doctest: +SKIP

One job: read the latest merge (the master's 評価一覧, through the latest run report) and lay it
out the way the city publishes it: a cover, one sheet per 基本目標 in the published layout
(基本目標 / 施策の方向性 / 施策, then the table), the counts and charts per goal and 施策の方向性,
and a comparison with the previous year where there is one. Every sheet is paginated for A3
landscape by pipeline.printing, so each printed page can be read on its own.

What the committee sees is the evaluations, never our process: no file names, no issues, no
"未提出" (a missing evaluation is a blank row, and staff are told on the console). Before the
workbook is written, the answers are searched for text that may identify a private person (a
name with 様・氏・さん・君, a telephone number, an e-mail address): each hit is a
`personal-info-suspected` warning for staff, and the workbook is still written (staff decide).

The PDF is made by LibreOffice (`soffice --headless --convert-to pdf`), found on PATH or at
`[publish] soffice`. Without it, `pdf=True` still writes the workbook and reports how to export
the PDF from Excel; `exit_code` is then 3.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pipeline import atomic, history, printing
from pipeline.catalog import Catalog, load_catalog
from pipeline.celltext import column_letters
from pipeline.errors import InputError, OutputError
from pipeline.layout import OUTPUT_PROPERTY, parse_output_mark
from pipeline.normalize import RATINGS, as_text, fold, parse_project, parse_rating
from pipeline.report import Evaluation, Issue, make_issue
from pipeline.settings import Settings
from pipeline.times import now_iso
from pipeline.wareki import wareki_month

PUBLISH_DIR = "publish"
COVER_SHEET, SUMMARY_SHEET, COMPARE_SHEET = "表紙", "評価の集計", "前年度比較"
LIST_SHEET = "評価一覧"
REPORT_NAME = "run-report.json"
PDF_TIMEOUT_S = 600
EXIT_PDF_FAILED = 3

EXCEL_PDF_HOWTO = (
    "Excel で PDF にするには、公表用ブックを開き、「ファイル」→「エクスポート」→「PDF/XPS ドキュメントの作成」"
    "(または「名前を付けて保存」でファイルの種類「PDF」)を選び、「オプション」で「ブック全体」を選んで保存してください。"
)


def publish_name(catalog: Catalog) -> str:
    """地域福祉計画_進捗状況及び評価表_R6.xlsx"""
    return f"{catalog.plan}_進捗状況及び評価表_{catalog.year}.xlsx"


@dataclass
class PublishResult:
    catalog: Catalog
    xlsx: Path
    master: Path
    rows: int  # evaluations in the document
    missing: int  # assignments without an evaluation (blank rows in the document)
    pdf: Path | None = None
    pdf_requested: bool = False
    pdf_error: str = ""  # why the PDF was not made (Japanese, with how to make it from Excel)
    previous: str = ""  # the year compared with ("R5"), "" when there was none
    issues: list[Issue] = field(default_factory=list)  # personal-info-suspected warnings
    notices: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0: written (warnings allowed); 3: --pdf asked for but no PDF (the .xlsx is written)."""
        return EXIT_PDF_FAILED if self.pdf_requested and self.pdf is None else 0


# --- the run --------------------------------------------------------------------------------------


def run_publish(settings: Settings, out_dir: Path | None = None, pdf: bool = False, *,
                today: date | None = None, issued: date | None = None) -> PublishResult:
    """Build the committee document from the latest merge; with `pdf`, its PDF too. The cover
    shows the month `issued` (default: the month of `today`, the day of the run) in 令和.

    Raises InputError (exit 3) when there is no master of this year to publish from, and
    OutputError when the workbook cannot be written.
    """
    catalog = load_catalog(settings.year, settings.schemas)
    master = latest_master(settings.outbox, catalog)
    rows, cells = read_evaluations(master, catalog)
    merged_with = _output_mark(master).get("version", "")
    today = today or date.today()
    out_dir = Path(out_dir) if out_dir is not None else settings.outbox / PUBLISH_DIR
    by_key = {r.key: r for r in rows}
    missing = sum(1 for a in catalog.assignments if a.key not in by_key)
    result = PublishResult(catalog, out_dir / publish_name(catalog), master, len(rows), missing,
                           pdf_requested=pdf)
    result.issues = find_personal_info(catalog, rows, cells)
    if merged_with and merged_with != catalog.version:
        result.notices.append(
            f"集約ブックは計画カタログの変更前に作られています(集約時 {merged_with}、現在 {catalog.version})。"
            "merge をもう一度実行してから publish してください。"
        )
    if missing:
        result.notices.append(
            f"評価のない担当課の行が {missing} 件あります。公表用ブックでは空欄になります(集約ブックの 提出状況 を確認してください)。"
        )
    past = history.previous_year(settings.outbox, catalog)
    if past is not None:
        result.previous = past.year
    for family in (printing.TEXT_FONT, printing.UNIT_FONT):
        if printing.font_installed(family) is False:
            result.notices.append(
                f"このPCには {family} がありません。Excel や LibreOffice は別のフォントで表示・印刷するため、"
                "行の高さや改ページがずれることがあります(docs/printing.md)。"
            )
    generated = now_iso()
    try:
        atomic.long_path(out_dir).mkdir(parents=True, exist_ok=True)
        result.xlsx = atomic.write_atomically(
            result.xlsx, lambda tmp: write_publication(tmp, catalog, rows, past, generated=generated,
                                                       today=issued or today)
        )
    except OSError as exc:
        raise OutputError(
            f"公表用ブックを {out_dir} に書き込めません({type(exc).__name__}: {exc})。空き容量とアクセス権を確認してください。"
        ) from None
    if result.xlsx.name != publish_name(catalog):
        result.notices.append(
            f"{publish_name(catalog)} が開かれていたため(Excel など)、{result.xlsx.name} に書き出しました。"
        )
    if pdf:
        soffice = printing.find_soffice(settings.soffice)
        if soffice is None:
            where = f"設定の [publish] soffice「{settings.soffice}」" if settings.soffice else "PATH"
            result.pdf_error = (
                f"LibreOffice(soffice)が見つからない({where})ため、PDF は作れませんでした。公表用ブック {result.xlsx} は作成済みです。"
                + EXCEL_PDF_HOWTO
            )
        else:
            if printing.uno_python(soffice) is None:
                result.notices.append(
                    "LibreOffice の Python(uno)が見つからないため、PDF は禁則処理(行頭の「、」「。」などを避ける改行)"
                    "なしで作ります。LibreOffice に同梱の Python、または python3-uno を入れると禁則処理されます"
                    "(docs/printing.md)。"
                )
            try:
                result.pdf = make_pdf(result.xlsx, result.xlsx.with_suffix(".pdf"), soffice)
            except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                result.pdf_error = (
                    f"LibreOffice で PDF を作れませんでした({str(exc)[:200]})。公表用ブック {result.xlsx} は作成済みです。"
                    + EXCEL_PDF_HOWTO
                )
    return result


def latest_master(outbox: Path, catalog: Catalog) -> Path:
    """The master of the latest merge: the one the run report names (it may carry a timestamped
    name, written while the usual one was open in Excel), else the usual name."""
    from pipeline.master import master_name

    candidates = []
    try:
        report = json.loads((outbox / REPORT_NAME).read_text(encoding="utf-8"))
        if report.get("fiscal_year") == catalog.year and report.get("master"):
            candidates.append(Path(report["master"]))
    except (OSError, ValueError, AttributeError):
        pass
    candidates.append(outbox / master_name(catalog))
    for path in candidates:
        if path.is_file():
            return path
    raise InputError(
        f"{catalog.year_label}の集約ブック({outbox / master_name(catalog)})がありません。"
        "先に merge を実行してから、もう一度 publish を実行してください。"
    )


# --- reading the master ----------------------------------------------------------------------------

_LIST_COLUMNS = ("事業No.", "担当課", "事業評価", "事業実績・評価理由", "今後の事業計画・展望")
ANSWER_COLUMNS = {"result": "事業実績・評価理由", "outlook": "今後の事業計画・展望"}


def read_evaluations(path: Path, catalog: Catalog) -> tuple[list[Evaluation], dict[tuple[tuple[str, str], str], str]]:
    """The master's 評価一覧 as evaluations in plan order, and each answer's cell ("G12") by
    (key, field). Raises InputError for a workbook that is not this year's master of ours."""
    import python_calamine as pc

    mark = _output_mark(path)
    if mark.get("kind") != "master" or mark.get("year") != catalog.year:
        what = f"{mark.get('kind', '?')}・{mark.get('year', '?')}" if mark else "印のないブック"
        raise InputError(
            f"{path} は{catalog.year_label}の集約ブックではありません({what})。"
            f"{catalog.year} の merge を実行してから、もう一度 publish を実行してください。"
        )
    try:
        table: list[list[Any]] = pc.CalamineWorkbook.from_path(str(path)).get_sheet_by_name(LIST_SHEET).to_python()
    except Exception as exc:
        raise InputError(f"{path} の「{LIST_SHEET}」シートを読めません({type(exc).__name__})。") from None
    header = [as_text(h) for h in table[0]] if table else []
    cols = {name: next((i for i, h in enumerate(header) if h.startswith(name)), None) for name in _LIST_COLUMNS}
    if any(i is None for i in cols.values()):
        raise InputError(f"{path} の「{LIST_SHEET}」シートに必要な列がありません。merge をもう一度実行してください。")
    keys = {a.key: a for a in catalog.assignments}
    found: dict[tuple[str, str], Evaluation] = {}
    cells: dict[tuple[tuple[str, str], str], str] = {}
    for n, row in enumerate(table[1:], start=2):

        def cell(name: str, row: list[Any] = row) -> str:
            i = cols[name]
            return as_text(row[i]).strip() if i is not None and i < len(row) else ""

        project, rating, department = parse_project(cell("事業No.")), parse_rating(cell("事業評価")), cell("担当課")
        if not project or not rating or (project, department) not in keys:
            continue
        found[(project, department)] = Evaluation(project, department, cell("事業実績・評価理由"), rating,
                                                  cell("今後の事業計画・展望"))
        for fld, name in ANSWER_COLUMNS.items():
            cells[((project, department), fld)] = f"{column_letters((cols[name] or 0) + 1)}{n}"
    rows = [found[a.key] for a in catalog.assignments if a.key in found]
    return rows, cells


def _output_mark(path: Path) -> dict[str, str]:
    try:
        with zipfile.ZipFile(path) as z:
            xml = z.read("docProps/custom.xml").decode("utf-8")
    except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError):
        return {}
    m = re.search(rf'name="{OUTPUT_PROPERTY}"[^>]*>\s*<vt:lpwstr>([^<]*)</vt:lpwstr>', xml)
    return parse_output_mark(m[1]) if m else {}


# --- personal information --------------------------------------------------------------------------

# A name (kanji, then kanji or kana; or katakana) right before an honorific. 様 that is part of a
# word (多様, 同様, 様式, 様々 ...) and roles rather than names (利用者様, 市民の皆さん) are not hits.
_HONORIFIC = re.compile(
    r"([\u4e00-\u9fff々〆ヶ]{1,5}[ 　]?[\u4e00-\u9fff々〆ヶぁ-んァ-ヶー]{1,5}|[ァ-ヶー]{2,12})"
    r"(様|氏|さん|君|くん|ちゃん)(?![式子相態々名])"
)
_NOT_NAMES = re.compile(
    r"(多|同|仕|模|一|異|各|皆|神|有|外|両|王|殿|今|左|斯|此|貴|奥)$|"
    r"(者|員|民|人|長|師|方|客|家|族|子|主|生|官|手|親御|相手|先方|皆)$"
)
_PHONE = re.compile(r"(?<![\d.,])0\d{1,4}[-()‐ー― ]?\d{1,4}[-()‐ー― ]?\d{3,4}(?![\d.,])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
PERSONAL_KINDS = {"name": "敬称付きの氏名", "phone": "電話番号", "email": "メールアドレス"}


def personal_info(text: str) -> list[tuple[str, str]]:
    """(kind, the text found) for each piece of `text` that may identify a private person."""
    hits: list[tuple[str, str]] = []
    for m in _HONORIFIC.finditer(text):
        name = m[1].strip(" 　")
        if _NOT_NAMES.search(name):
            continue
        hits.append(("name", m[0]))
    folded = fold(text)
    for m in _PHONE.finditer(folded):
        digits = re.sub(r"\D", "", m[0])
        if len(digits) in (10, 11):
            hits.append(("phone", m[0]))
    hits += [("email", m[0]) for m in _EMAIL.finditer(folded)]
    return hits


def find_personal_info(catalog: Catalog, rows: Iterable[Evaluation],
                       cells: dict[tuple[tuple[str, str], str], str]) -> list[Issue]:
    """A `personal-info-suspected` warning per hit in the departments' answers, in plan order."""
    issues = []
    for ev in rows:
        label = catalog.projects[ev.project].label
        for fld, column in ANSWER_COLUMNS.items():
            for kind, found in personal_info(getattr(ev, fld)):
                issues.append(make_issue(
                    "personal-info-suspected", sheet=LIST_SHEET, cell=cells.get((ev.key, fld), ""), column=column,
                    value=found, project=label, department=ev.department, kind=PERSONAL_KINDS[kind],
                ))
    return issues


# --- the workbook -----------------------------------------------------------------------------------


def write_publication(path: Path, catalog: Catalog, rows: Sequence[Evaluation], past: history.PastYear | None,
                      *, generated: str, today: date) -> None:
    """Write the committee document to exactly `path` (the caller makes it atomic)."""
    from pipeline.sheets import goals, kit
    from pipeline.sheets.tally import Tally

    wb = kit.new_workbook(path, catalog, "公表用", "publish", generated)
    st = kit.Styles(wb)
    header = _page_header(catalog)
    by_key = {r.key: r for r in rows}
    _write_cover(wb, st, catalog, today)
    for goal in catalog.goals:
        ws = wb.add_worksheet(goals.goal_sheet_name(goal.number))
        goals.write_goal_table(ws, st, catalog, goal.number, by_key, header=header, missing={}, goal_line=True)
    tally = Tally(catalog, rows)
    _write_counts(wb, st, catalog, tally, header)
    if past is not None:
        _write_comparison(wb, st, catalog, tally, past, header)
    wb.close()


def report_label(catalog: Catalog) -> str:
    return f"{catalog.year_label}実績報告"


def _page_header(catalog: Catalog) -> str:
    left = f"{catalog.title}({report_label(catalog)})".replace("&", "&&")
    return f"&L{left}&C&A"


def issued_month(text: str) -> date:
    """`publish --issued YYYY-MM` as the first day of that month; ValueError when it is not one."""
    m = re.fullmatch(r"(\d{4})-(\d{1,2})", text.strip())
    if not m or not 1 <= int(m[2]) <= 12:
        raise ValueError(f"発行年月「{text}」は YYYY-MM の形で書いてください(例: 2026-03)。")
    return date(int(m[1]), int(m[2]), 1)


def _published_by(catalog: Catalog) -> str:
    import yaml

    try:
        data = yaml.safe_load(catalog.path.read_text(encoding="utf-8"))
        return str(data.get("published_by") or "地域福祉課")
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return "地域福祉課"


# The criteria block: the letter (A・・・) in a narrow column B, its meaning right beside it in C.
_COVER_WIDTHS = (24, 10, 150, 28)


def _write_cover(wb: Any, st: Any, catalog: Catalog, today: date) -> None:
    from pipeline.sheets import kit

    ws = wb.add_worksheet(COVER_SHEET)
    for c, width in enumerate(_COVER_WIDTHS):
        ws.set_column(c, c, width)
    big = wb.add_format({"font_name": kit.FONT, "font_size": 28, "bold": True, "align": "center",
                         "valign": "vcenter"})
    mid = wb.add_format({"font_name": kit.FONT, "font_size": 18, "align": "center", "valign": "vcenter"})
    org = wb.add_format({"font_name": kit.FONT, "font_size": 16, "align": "center", "valign": "vcenter"})
    bold = wb.add_format({"font_name": kit.FONT, "font_size": 12, "bold": True, "valign": "top"})
    text = wb.add_format({"font_name": kit.FONT, "font_size": 12, "valign": "top", "text_wrap": True})
    # The blank rows spread the cover over the page (it prints at most one page, fitted).
    lines: list[tuple[float, Any]] = [(150, None), (48, (catalog.title, big)), (36, (f"({report_label(catalog)})", mid)),
                                      (120, None), (28, (wareki_month(today), org)), (28, (_published_by(catalog), org)),
                                      (120, None)]
    row = 0
    for height, content in lines:
        ws.set_row(row, height)
        if content is not None:
            ws.merge_range(row, 0, row, len(_COVER_WIDTHS) - 1, "", content[1])
            ws.write_string(row, 0, content[0], content[1])
        row += 1
    ws.write_string(row, 1, "【事業評価の評価基準】", bold)
    ws.set_row(row, 22)
    row += 1
    for letter, meaning in catalog.ratings.items():
        ws.set_row(row, 22)
        ws.write_string(row, 1, f"{letter}・・・", bold)
        ws.write_string(row, 2, meaning, text)
        row += 1
    if catalog.rating_note:
        note = f"※{catalog.rating_note}"
        ws.merge_range(row, 1, row, 2, "", text)
        ws.write_string(row, 1, note, text)
        ws.set_row(row, max(22, kit.row_height([(note, sum(_COVER_WIDTHS[1:3]))])))
    ws.print_area(0, 0, row, len(_COVER_WIDTHS) - 1)
    ws.set_paper(printing.A3)
    ws.set_landscape()
    ws.fit_to_pages(1, 1)  # one page, whatever the fonts: nothing on it needs a planned break
    ws.center_horizontally()
    ws.set_margins(**kit.PAGE_A3.margins())


def _write_counts(wb: Any, st: Any, catalog: Catalog, tally: Any, header: str) -> None:
    from pipeline.sheets import counts, kit

    sheet = counts.CountSheet(wb, st, wb.add_worksheet(SUMMARY_SHEET), kit.PAGE_A3, missing=False)
    sheet.lines([("title", f"{catalog.title} {catalog.year_label} 評価の集計"),
                 ("note", "割合は、評価のあった事業(担当課ごと)に対する割合です。")])
    by_goal = sheet.count_table("基本目標別", [(f"基本目標{g.number}", g.name, tally.goal[g.number])
                                             for g in catalog.goals], total=("合計", "", tally.total))
    by_direction = sheet.count_table(
        "施策の方向性別",
        [(f"基本目標{d.goal} {d.code}", d.name, tally.direction[(d.goal, d.number)]) for d in catalog.directions],
    )
    charts = [("基本目標別の評価", by_goal)]
    for g in catalog.goals:
        mine = [line for d, line in zip(catalog.directions, by_direction, strict=True) if d.goal == g.number]
        charts.append((f"基本目標{g.number} 施策の方向性別の評価", mine))
    sheet.charts("グラフ", charts)
    sheet.finish(header)


# --- 前年度比較 -------------------------------------------------------------------------------------

_COMPARE_WIDTHS = (18, 40, *([8] * 8), 12, 12, 10)
_COMPARE_CHANGED_SPANS = ((0, 0), (1, 1), (2, 5), (6, 9), (10, 12))
_COMPARE_HEADERS = ("区分", "名称", *(f"{x}\n前年度" for x in RATINGS), *(f"{x}\n今年度" for x in RATINGS),
                    "A・B割合\n前年度", "A・B割合\n今年度", "差\nポイント")


def _short_year(code: str) -> str:
    return f"令和{int(code[1:])}年度" if code[1:].isdigit() else code


def _write_comparison(wb: Any, st: Any, catalog: Catalog, tally: Any, past: history.PastYear, header: str) -> None:
    """This year's A–D beside last year's, per 基本目標 and 施策の方向性, the A・B share of both
    years as a chart, and the evaluations whose rating changed. Only the (事業, 担当課) pairs of
    this year's plan are counted for last year."""
    from pipeline.sheets import kit
    from pipeline.sheets.tally import Tally

    ws = wb.add_worksheet(COMPARE_SHEET)
    page = kit.PAGE_A3
    widths = _COMPARE_WIDTHS
    for c, width in enumerate(widths):
        ws.set_column(c, c, width)
    ws.set_default_row(kit.ROW_PT)
    scale = printing.print_scale(widths, page)
    capacity = printing.capacity_pt(page, scale)
    before = Tally(catalog, _past_rows(catalog, past))
    headers = _COMPARE_HEADERS
    row_pt = kit.ROW_PT
    head_pt = kit.row_height(zip(headers, widths, strict=True), min_lines=2, exact=True)

    def table(title: str, entries: list[tuple[str, str, dict[str, int], dict[str, int]]]) -> tuple[
            printing.Block, list[printing.Line]]:
        lines = [printing.Line(row_pt, ("section", title)), printing.Line(head_pt, ("header", headers))]
        rows = [printing.Line(max(row_pt, kit.row_height([(code, widths[0]), (name, widths[1])], exact=True)),
                              ("cmp", code, name, old, new)) for code, name, old, new in entries]
        return printing.Block([*lines, *rows, kit.spacer()], keep=True, header=2), rows

    blocks = [printing.Block([printing.Line(24, ("title", f"{catalog.title} 前年度との比較")),
                              printing.Line(row_pt, ("note", f"前年度は{_short_year(past.year)}、今年度は{catalog.year_label}。"
                                                     f"前年度の評価は、{catalog.year_label}の計画と同じ事業・担当課のものを"
                                                     "数えています。割合は評価のあった事業に対する割合です。")),
                              kit.spacer()], keep=True)]
    goal_block, goal_rows = table("基本目標別", [(f"基本目標{g.number}", g.name, before.goal[g.number], tally.goal[g.number])
                                            for g in catalog.goals])
    blocks.append(goal_block)
    dir_block, _ = table("施策の方向性別", [(f"基本目標{d.goal} {d.code}", d.name, before.direction[(d.goal, d.number)],
                                      tally.direction[(d.goal, d.number)]) for d in catalog.directions])
    blocks.append(dir_block)
    height = max(240, 110 + 50 * len(catalog.goals))
    band = [printing.Line(row_pt, ("band",)) for _ in range(kit.rows_for_height(height + 8))]
    band[0] = printing.Line(row_pt, ("chart",))
    blocks.append(printing.Block(band, keep=True))
    changed = []
    for a in catalog.assignments:
        old, ev = past.get(a.key), tally.by_key.get(a.key)
        if old is not None and ev is not None and old.rating != ev.rating:
            changed.append((catalog.projects[a.project], a.department, old.rating, ev.rating))
    span_widths = [sum(widths[c0:c1 + 1]) for c0, c1 in _COMPARE_CHANGED_SPANS]
    lines = [printing.Line(row_pt, ("section", "評価が変わった事業")), printing.Line(row_pt, ("changed_header",))]
    for p, dept, old_r, new_r in changed:
        h = kit.row_height([(p.label, span_widths[0]), (p.name, span_widths[1]), (dept, span_widths[2])])
        lines.append(printing.Line(max(row_pt, h), ("changed", p, dept, old_r, new_r)))
    if not changed:
        lines.append(printing.Line(row_pt, ("empty", "評価が変わった事業はありません。")))
    blocks.append(printing.Block(lines, header=2))

    layout = printing.paginate(blocks, capacity)
    chart_row = 0
    rating_rows: list[int] = []

    def write(placed: printing.Placed) -> None:
        nonlocal chart_row
        r, item = placed.row, placed.line.item
        if item is None or item[0] == "band":
            return
        if kit.put_plain_line(ws, st, r, item):
            return
        kind = item[0]
        if kind == "cmp":
            _compare_row(ws, st, r, *item[1:])
        elif kind == "chart":
            chart_row = r
        elif kind == "changed_header":
            kit.span_headers(ws, st, r, _COMPARE_CHANGED_SPANS, (
                "事業No.", "個別事業・取り組み", "担当課", f"{_short_year(past.year)}の評価", f"{catalog.year_label}の評価"))
        elif kind == "changed":
            p, dept, old_r, new_r = item[1:]
            rating_rows.append(r)
            kit.span_row(ws, st, r, _COMPARE_CHANGED_SPANS, p, (p.name, dept, old_r, new_r),
                         ("center", "wrap", "wrap", "rating", "rating"))

    kit.write_layout(ws, layout, write)
    row_of = {id(p.line): p.row for p in layout.placed if not p.repeated}
    first, last = row_of[id(goal_rows[0])], row_of[id(goal_rows[-1])]
    chart = kit.new_chart(wb, {"type": "bar"})
    font = kit.chart_font(kit.CHART_TEXT_PT, scale)
    for col, name, colour in ((10, _short_year(past.year), "#A6A6A6"), (11, catalog.year_label, "#4E9A4E")):
        chart.add_series({"name": name, "categories": [ws.name, first, 1, last, 1],
                          "values": [ws.name, first, col, last, col], "fill": {"color": colour}, "gap": 80,
                          "data_labels": {"value": True, "num_format": "0.0%", "font": font}})
    # (no spaces around the Latin letters: LibreOffice draws such a space in a fallback font)
    chart.set_title({"name": "基本目標別のA・B評価の割合", "name_font": kit.chart_font(kit.CHART_TITLE_PT, scale, bold=True)})
    chart.set_y_axis({"reverse": True, "num_font": font})
    chart.set_x_axis({"num_font": font, "num_format": "0%", "min": 0, "max": 1,
                      "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}}})
    chart.set_legend({"position": "bottom", "font": font})
    chart.set_size({"width": kit.CHART_WIDTH, "height": height})
    ws.insert_chart(chart_row, 0, chart, {"x_offset": 4, "y_offset": 4, "object_position": 1})
    if rating_rows:
        kit.rating_colours(st, ws, rating_rows[0], 6, rating_rows[-1], 12)
    kit.setup_print(ws, header, page=page, scale=scale, breaks=layout.breaks)


def _past_rows(catalog: Catalog, past: history.PastYear) -> list[Evaluation]:
    return [Evaluation(a.project, a.department, e.result, e.rating, e.outlook)
            for a in catalog.assignments if (e := past.get(a.key)) is not None]


def _compare_row(ws: Any, st: Any, r: int, code: str, name: str, old: dict[str, int], new: dict[str, int]) -> None:
    st.put(ws, r, 0, code, "text")
    st.put(ws, r, 1, name, "text")
    for c, key in enumerate(RATINGS, start=2):
        ws.write_number(r, c, old[key], st.fmt["int"])
        ws.write_number(r, c + 4, new[key], st.fmt["int"])
    shares = []
    for c, counts in ((10, old), (11, new)):
        n = sum(counts[x] for x in RATINGS)
        if n:
            share = (counts["A"] + counts["B"]) / n
            shares.append(share)
            ws.write_number(r, c, share, st.fmt["percent"])
        else:
            ws.write_blank(r, c, None, st.fmt["percent"])
    if len(shares) == 2:
        ws.write_number(r, 12, round((shares[1] - shares[0]) * 100, 1), st.fmt["points"])
    else:
        ws.write_blank(r, 12, None, st.fmt["points"])


# --- the PDF ----------------------------------------------------------------------------------------


def make_pdf(xlsx: Path, pdf_path: Path, soffice: str, *, timeout: float = PDF_TIMEOUT_S) -> Path:
    """The PDF of the whole workbook, made by LibreOffice and written atomically to `pdf_path`
    (or a timestamped sibling when that is open). Raises RuntimeError when LibreOffice fails."""
    with tempfile.TemporaryDirectory(prefix="pipeline-pdf-") as tmp:
        work = Path(tmp)
        source = work / "publish.xlsx"  # an ASCII name: LibreOffice on Windows and long paths
        shutil.copyfile(atomic.long_path(xlsx), source)
        (made,) = printing.convert_to_pdf([source], work, soffice, timeout=timeout)
        return atomic.write_atomically(pdf_path, lambda t: shutil.copyfile(made, t))
