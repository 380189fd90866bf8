"""Write the yearly evaluation templates: one protected .xlsx per office that returns a template.

Each template holds only that office's rows of the plan, pre-filled from the catalog and locked,
with three yellow input columns (事業実績・評価理由 / 事業評価 / 今後の事業計画・展望), a 記入要領
sheet, and a very hidden `_meta` sheet that lets the reader recognise the file (kind, year, office,
catalog version, and a hash of the pre-filled cells). openpyxl, not xlsxwriter, because only
openpyxl can set the IME mode on a validated column and lock the workbook structure
(shared/research/anchors-ecosystem.md §2.2).

    >>> from pipeline.catalog import load_catalog
    >>> template_name(load_catalog("R6"), "地域福祉課")
    'R6_地域福祉計画評価_地域福祉課.xlsx'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Protection, Side
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.workbook.protection import WorkbookProtection
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from pipeline import celltext, printing
from pipeline.atomic import free_stamped_name, long_path, write_atomically, write_bytes_atomically
from pipeline.catalog import Catalog
from pipeline.celltext import display_width  # noqa: F401  (part of this module's interface)
from pipeline.errors import OutputError
from pipeline.layout import (
    COLUMNS,
    FIRST_DATA_ROW,
    GUIDE_SHEET,
    HEADER_ROW,
    INPUT_COLUMNS,
    LETTERS,
    META_KEYS,
    META_PREVIOUS_KEY,
    META_SHEET,
    RATING_COLUMN,
    REFERENCE_GAP,
    REFERENCE_LETTERS,
    REFERENCE_MARK,
    TEMPLATE_KIND,
    TEMPLATE_SHEET,
    TEMPLATE_VERSION,
    header_labels,
    prefilled_hash,
    prefilled_values,
    receiving_offices,
    reference_labels,
    template_name,
)
from pipeline.marks import NO_VALUE
from pipeline.normalize import RATINGS
from pipeline.wareki import wareki

if TYPE_CHECKING:
    from pipeline.history import PastYear

# The A–D choices live on _meta (column D), not on a sheet of their own: _meta is the one hidden
# sheet the gate accepts without a "content-hidden" warning (pipeline/reader/gate.py). The validation
# refers to them through a defined name: a plain name reference stays in the standard
# <dataValidation> element when Excel re-saves the file (a direct cross-sheet reference is moved
# into the x14 extension, which openpyxl drops on reading).
RATING_LIST_NAME = "評価選択肢"
RATING_LIST_REF = f"'{META_SHEET}'!$D$1:$D${len(RATINGS)}"

# Universal-design font shipped with Windows 10 1809 and later; Excel substitutes one if it is absent
# (docs/printing.md).
FONT_NAME = printing.TEXT_FONT
FONT_SIZE = 10
INPUT_FILL = "FFF2CC"  # the light yellow that marks 入力欄 in municipal forms
HEADER_FILL = "DDEBF7"
# Column E (担当課) is widened per office to its longest 担当課 (`department_width`), so that a
# name such as 地域福祉課(関係各課) is not broken before its closing parenthesis. B fits "31～34"
# in the UD font (its digits are wide).
COLUMN_WIDTHS = {"A": 8, "B": 8, "C": 24, "D": 48, "E": 18, "F": 60, "G": 8, "H": 60}
DEPARTMENT_WIDTH_CAP = 30
# Margins (inches): the header and footer sit inside the top and bottom margins, clear of the
# cells and of each other's text (a 10 pt line needs about 0.2").
PAGE_MARGINS = {"left": 0.4, "right": 0.4, "top": 0.9, "bottom": 0.8, "header": 0.3, "footer": 0.3}
LINE_HEIGHT = celltext.line_height(FONT_SIZE)  # points per wrapped line, with the font's leading
MIN_INPUT_LINES = 4  # room to type in, so an empty row does not look like a one-line field
MAX_ROW_HEIGHT = celltext.MAX_ROW_HEIGHT  # Excel's limit

# Last year's rating and outlook, beside the answers (pipeline.layout REFERENCE_*): grey, locked,
# marked 【参考】 in the header (repeated on every printed page) and in row 2.
REFERENCE_WIDTHS = {"J": 11, "K": 44}
GAP_WIDTH = 2
REFERENCE_FILL = "EDEDED"
REFERENCE_HEADER_FILL = "D9D9D9"
REFERENCE_FONT_COLOUR = "404040"
NO_PREVIOUS = NO_VALUE  # no evaluation last year for this row (a new project, or none was returned)

_THIN = Side(style="thin", color="808080")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)


# Small helpers shared with pipeline.demo ----------------------------------------------------


def set_text(cell: Cell, value: str) -> None:
    """Store text as inert text, by pipeline.celltext's rules.

    openpyxl turns any string starting with "=" into a formula: the cell is forced to a string.
    A text Excel would read as a formula if retyped (= + - @, full-width ＝＋－＠, TAB, CR, LF,
    also after leading spaces) also gets the quote-prefix style, Excel's own "'", so F2+Enter
    keeps it text. Control characters XML cannot hold are dropped; a text over Excel's
    32,767-unit limit raises ValueError (a template must never be cut short silently).
    """
    value = celltext.clean_xml(value)
    celltext.check_fits(value, f"セル {cell.coordinate}")
    cell.value = value
    cell.data_type = "s"
    if celltext.needs_quote(value):
        cell.quotePrefix = True


def row_height(texts: Iterable[tuple[str, float]], min_lines: int = 1) -> float:
    """Height in points that shows every (text, column width) pair wrapped, at least `min_lines`.

    An estimate (pipeline.celltext, measured widths), because Excel's own auto-fit depends on
    the PC's fonts; staff can still double-click the row border (the protection allows row
    formatting).
    """
    return celltext.row_height(
        ((str(text), width) for text, width in texts), FONT_SIZE, min_lines=min_lines, exact=True
    )


def department_width(departments: Iterable[str]) -> float:
    """Column E's width: the longest 担当課 on one line, at least the standard width."""
    return round(celltext.fit_width(COLUMN_WIDTHS["E"], departments, cap=DEPARTMENT_WIDTH_CAP), 1)


def _width(ws: Worksheet, letter: str) -> float:
    dim = ws.column_dimensions.get(letter)
    return dim.width if dim is not None and dim.customWidth and dim.width else COLUMN_WIDTHS[letter]


def _header_cell(cell: Cell, label: str, fill: PatternFill) -> None:
    """A column heading of 記入シート: bold, filled, bordered, centred and wrapped."""
    set_text(cell, label)
    cell.font = _font(bold=True)
    cell.fill = fill
    cell.border = _BORDER
    cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)


def fit_data_row(ws: Worksheet, row: int) -> None:
    """Set a data row's height from what its cells hold now (catalog text and any input)."""
    texts = [(str(ws[f"{c}{row}"].value or ""), _width(ws, c)) for c in LETTERS]
    if ws.max_column > len(LETTERS):  # a template with last year's reference columns
        texts += [(str(ws[f"{c}{row}"].value or ""), REFERENCE_WIDTHS[c]) for c in REFERENCE_LETTERS]
    ws.row_dimensions[row].height = row_height(texts, MIN_INPUT_LINES)


def save_atomically(wb: Workbook, path: Path) -> Path:
    """Save through pipeline.atomic (temporary beside `path`, fsync, replace); returns `path`.

    A template keeps its name (departments send it back under it), so a file locked by Excel
    is an error here, not a timestamped sibling as for the master.
    """
    path = Path(path)
    long_path(path.parent).mkdir(parents=True, exist_ok=True)
    try:
        return write_atomically(path, wb.save, fallback=False)
    except PermissionError:
        # On Windows a file open in Excel cannot be replaced.
        raise OutputError(
            f"{path} に書き込めません。Excel で開いている場合は閉じてから、もう一度実行してください。"
        ) from None


# The workbook --------------------------------------------------------------------------------


def write_templates(
    catalog: Catalog,
    out_dir: Path,
    *,
    deadline: date | None = None,
    contact: str = "地域福祉課",
    generated: datetime | None = None,
    offices: list[str] | None = None,
    previous: PastYear | None = None,
    force: bool = False,
    ledger: Path | None = None,
) -> list[Path]:
    """Write one template per receiving office into `out_dir` and return their paths.

    With `ledger` (a JSON file of what was last written), a template already there whose bytes
    differ from what this function last wrote (edited by hand) is kept: the new one is written
    under a stamped name beside it (`edited_templates` tells them), unless `force`. Without it,
    every template is replaced.

    `offices` limits the run to some offices (canonical names or aliases); an office with no
    assignment gets no template and is an error, since an empty template cannot be filled in.
    `previous` (pipeline.history.previous_year) adds last year's rating and 今後の事業計画・展望 to
    each row, in locked grey reference columns J and K; without it the template is as before.
    """
    stamp = (generated or datetime.now().astimezone()).isoformat(timespec="seconds")
    if offices is None:
        chosen = receiving_offices(catalog)
    else:
        chosen = []
        for name in offices:
            office = catalog.office_named(name)
            if office is None:
                raise ValueError(f"課「{name}」は departments.yaml に登録されていません。")
            if not catalog.assignments_for_office(office):
                raise ValueError(
                    f"課「{office}」には{catalog.year_label}の担当事業がないため、テンプレートを作りません。"
                )
            if office not in chosen:
                chosen.append(office)
    out_dir = Path(out_dir)
    written_before = _written_before(ledger) if ledger is not None else {}
    paths = []
    for office in chosen:
        wb = build_template(catalog, office, deadline=deadline, contact=contact, generated=stamp,
                            previous=previous)
        path = out_dir / template_name(catalog, office)
        if ledger is not None and not force and _edited(path, written_before):
            path = free_stamped_name(path)  # the edited one stays as it is; this one goes beside it
        save_atomically(wb, path)
        if ledger is not None:
            written_before[_key(path)] = hashlib.sha256(long_path(path).read_bytes()).hexdigest()
        paths.append(path)
    if ledger is not None:
        with contextlib.suppress(OSError):  # without it, the next run only keeps more templates as they are
            long_path(ledger.parent).mkdir(parents=True, exist_ok=True)
            write_bytes_atomically(ledger, json.dumps(written_before, ensure_ascii=False, indent=1).encode("utf-8"))
    return paths


# `ledger` (the runner's: outbox/.cache/templates-written.json) holds the sha256 of every template
# as this command last wrote it, by its full path. A template whose bytes differ (staff edited it by
# hand, or something else wrote it) is never overwritten without `force`: the new one goes to a
# stamped name beside it, and the command says so (template-edited).


def _key(path: Path) -> str:
    return str(Path(path).resolve())


def _written_before(ledger: Path) -> dict[str, str]:
    try:
        data = json.loads(long_path(ledger).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _edited(path: Path, written_before: dict[str, str]) -> bool:
    """Whether `path` exists with other bytes than we last wrote there."""
    try:
        data = long_path(path).read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot even read it: not ours to replace
    return hashlib.sha256(data).hexdigest() != written_before.get(_key(path))


def edited_templates(paths: list[Path]) -> list[tuple[Path, Path]]:
    """(the template kept as staff edited it, the new one written beside it) for each path of
    `write_templates` that went to a stamped name."""
    out = []
    for p in paths:
        usual = p.with_name(_STAMP.sub("", p.stem) + p.suffix)
        if usual != p:
            out.append((usual, p))
    return out


_STAMP = re.compile(r"_\d{8}-\d{6}(?:-\d+)?$")


def build_template(
    catalog: Catalog, office: str, *, deadline: date | None, contact: str, generated: str,
    previous: PastYear | None = None,
) -> Workbook:
    """The template workbook for one office, in memory."""
    values = prefilled_values(catalog, office)
    wb = Workbook()
    # The standard ("Normal") font sets the column-width unit: the monospaced UD font's half-em
    # digits, as in Excel's Calibri (7 px), so the widths print alike in Excel and LibreOffice
    # (pipeline.printing). openpyxl has no public setter for it.
    wb._named_styles["Normal"].font = Font(name=printing.UNIT_FONT, sz=11, charset=printing.FONT_CHARSET,
                                           family=printing.FONT_FAMILY)
    ws = wb.active
    ws.title = TEMPLATE_SHEET
    _fill_input_sheet(catalog, ws, office, values, deadline, contact)
    if previous is not None:
        _add_reference_columns(catalog, ws, office, previous)
    _fill_guide(catalog, wb.create_sheet(GUIDE_SHEET), office, deadline, contact)
    if previous is not None:
        _guide_reference_note(wb[GUIDE_SHEET], previous)
    _fill_meta(catalog, wb.create_sheet(META_SHEET), office, values, generated)
    if previous is not None:
        meta = wb[META_SHEET]
        set_text(meta.cell(len(META_KEYS) + 1, 1), META_PREVIOUS_KEY)
        set_text(meta.cell(len(META_KEYS) + 1, 2), previous.year)
        meta.cell(len(META_KEYS) + 1, 2).number_format = "@"
    wb.defined_names[RATING_LIST_NAME] = DefinedName(RATING_LIST_NAME, attr_text=RATING_LIST_REF)
    # Sheets cannot be added, removed, renamed or unhidden: the reader finds the data by sheet name.
    wb.security = WorkbookProtection(lockStructure=True)
    wb.active = 0
    wb.properties.title = f"{catalog.year_label} {catalog.title}({office})"
    wb.properties.creator = contact
    return wb


def _font(bold: bool = False, size: float = FONT_SIZE) -> Font:
    # charset 128 (SHIFTJIS) and family 3 are what Excel itself writes for a Japanese Gothic font.
    return Font(name=FONT_NAME, size=size, bold=bold, charset=128, family=3)


def _fill_input_sheet(
    catalog: Catalog,
    ws: Worksheet,
    office: str,
    values: Sequence[tuple[str, ...]],
    deadline: date | None,
    contact: str,
) -> None:
    last = FIRST_DATA_ROW + len(values) - 1
    input_fill = PatternFill("solid", fgColor=INPUT_FILL)

    # Title and instruction rows are not merged: merged cells get in the way of readers and of
    # copy-paste, and the text simply overflows into the empty cells to its right.
    set_text(ws["A1"], f"{catalog.year_label} {catalog.title}({office})")
    ws["A1"].font = _font(bold=True, size=14)
    ws.row_dimensions[1].height = 24
    due = f"提出期限: {wareki(deadline)}。" if deadline else ""
    set_text(
        ws["A2"],
        f"黄色のセルに記入してください(事業評価は一覧から A～D を選択)。{due}"
        f"記入方法は「{GUIDE_SHEET}」シートをご覧ください。",
    )
    ws["A2"].font = _font()
    ws.row_dimensions[2].height = 18

    for letter, width in COLUMN_WIDTHS.items():
        ws.column_dimensions[letter].width = width
    ws.column_dimensions["E"].width = department_width(v[4] for v in values)

    header_fill = PatternFill("solid", fgColor=HEADER_FILL)
    for letter, label in zip(LETTERS, header_labels(catalog), strict=True):
        _header_cell(ws[f"{letter}{HEADER_ROW}"], label, header_fill)
    ws.row_dimensions[HEADER_ROW].height = row_height(
        ((label, _width(ws, c)) for c, label in zip(LETTERS, header_labels(catalog), strict=True)), 2
    )

    for i, row_values in enumerate(values):
        row = FIRST_DATA_ROW + i
        for letter, value in zip(LETTERS[:5], row_values, strict=True):
            cell = ws[f"{letter}{row}"]
            set_text(cell, value)
            cell.number_format = "@"  # the printed codes ("9", "(1)②") stay text if retyped elsewhere
            cell.protection = Protection(locked=True)
        for letter in INPUT_COLUMNS:
            cell = ws[f"{letter}{row}"]
            cell.protection = Protection(locked=False)
            cell.fill = input_fill
        for letter in LETTERS:
            cell = ws[f"{letter}{row}"]
            cell.font = _font()
            cell.border = _BORDER
            centred = letter in ("A", "B", RATING_COLUMN)
            cell.alignment = Alignment(
                horizontal="center" if centred else "left", vertical="top", wrap_text=True
            )
        fit_data_row(ws, row)

    if values:
        _add_validations(catalog, ws, last)

    # Locked cells cannot be edited and rows/columns cannot be inserted or deleted (openpyxl's
    # defaults once `sheet` is on); row heights and column widths stay adjustable so staff can
    # make long answers visible. No password: this guards against accidents, not people.
    ws.protection.sheet = True
    ws.protection.formatRows = False
    ws.protection.formatColumns = False

    ws.freeze_panes = f"A{FIRST_DATA_ROW}"
    ws.sheet_view.zoomScale = 90
    ws.page_setup.paperSize = ws.PAPERSIZE_A3
    ws.page_setup.orientation = ws.ORIENTATION_LANDSCAPE
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages tall as needed
    ws.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
    ws.print_area = f"A1:H{max(last, HEADER_ROW)}"
    ws.print_options.horizontalCentered = True
    for side, inches in PAGE_MARGINS.items():
        setattr(ws.page_margins, side, inches)
    _page_header(ws, f"{catalog.year_label} {catalog.title}", office)


def _page_header(ws: Worksheet, left: str, right: str) -> None:
    """The printed header (plan and year; office) and page numbers, in the UD font."""
    ws.oddHeader.left.text = left.replace("&", "&&")
    ws.oddHeader.right.text = right.replace("&", "&&")
    ws.oddFooter.center.text = "&P / &N"
    for part in (ws.oddHeader.left, ws.oddHeader.right, ws.oddFooter.center):
        part.font = printing.HEADER_FONT


def reference_values(catalog: Catalog, office: str, previous: PastYear) -> list[tuple[str, str]]:
    """(last year's rating, its 今後の事業計画・展望) per data row of the office's template, in row order;
    (NO_VALUE, "") where last year has no evaluation for the row's (事業, 担当課)."""
    out = []
    for a in sorted(catalog.assignments_for_office(office), key=lambda a: a.order):
        past = previous.get(a.key)
        out.append((past.rating, past.outlook) if past is not None else (NO_PREVIOUS, ""))
    return out


def _add_reference_columns(catalog: Catalog, ws: Worksheet, office: str, previous: PastYear) -> None:
    """Columns J and K: last year's rating and outlook, locked and grey, after the narrow gap I."""
    values = reference_values(catalog, office, previous)
    labels = reference_labels(previous.label)
    grey = PatternFill("solid", fgColor=REFERENCE_FILL)
    head_fill = PatternFill("solid", fgColor=REFERENCE_HEADER_FILL)
    font = Font(name=FONT_NAME, size=FONT_SIZE, charset=128, family=3, color=REFERENCE_FONT_COLOUR)
    note = ws[f"{REFERENCE_LETTERS[0]}2"]
    set_text(note, f"{REFERENCE_MARK}{previous.label}の評価です(記入は不要です)。")
    note.font = Font(name=FONT_NAME, size=FONT_SIZE, charset=128, family=3, bold=True, color=REFERENCE_FONT_COLOUR)
    for letter, label in zip(REFERENCE_LETTERS, labels, strict=True):
        _header_cell(ws[f"{letter}{HEADER_ROW}"], label, head_fill)
    header_height = row_height(((label, REFERENCE_WIDTHS[c]) for c, label in zip(REFERENCE_LETTERS, labels,
                                                                                   strict=True)), 2)
    ws.row_dimensions[HEADER_ROW].height = max(ws.row_dimensions[HEADER_ROW].height or 0, header_height)
    for i, (rating, outlook) in enumerate(values):
        row = FIRST_DATA_ROW + i
        for letter, value in zip(REFERENCE_LETTERS, (rating, outlook), strict=True):
            cell = ws[f"{letter}{row}"]
            if value:
                set_text(cell, value)
            cell.protection = Protection(locked=True)
            cell.fill = grey
            cell.font = font
            cell.border = _BORDER
            cell.alignment = Alignment(
                horizontal="center" if letter == REFERENCE_LETTERS[0] else "left", vertical="top", wrap_text=True
            )
        fit_data_row(ws, row)
    ws.column_dimensions[REFERENCE_GAP].width = GAP_WIDTH
    for letter, width in REFERENCE_WIDTHS.items():
        ws.column_dimensions[letter].width = width
    last = FIRST_DATA_ROW + len(values) - 1
    ws.print_area = f"A1:{REFERENCE_LETTERS[-1]}{max(last, HEADER_ROW)}"


def _guide_reference_note(ws: Worksheet, previous: PastYear) -> None:
    """One more line under 4. ご注意, about the reference columns."""
    row = ws.max_row + 1
    set_text(
        ws.cell(row, 1),
        f"・灰色の{REFERENCE_MARK}欄({REFERENCE_LETTERS[0]}列・{REFERENCE_LETTERS[-1]}列)は{previous.label}の"
        "事業評価と今後の事業計画・展望です。記入は不要で、書き込んでも読み込みません。",
    )
    ws.cell(row, 1).font = _font()
    ws.cell(row, 1).alignment = Alignment(vertical="top")


def rating_prompt(catalog: Catalog) -> str:
    """The input message on 事業評価: the 評価基準, or a pointer to 記入要領 if they exceed Excel's 255."""
    full = "一覧から選んでください。\n" + "\n".join(f"{k}: {v}" for k, v in catalog.ratings.items())
    if len(full.encode("utf-16-le")) // 2 <= 255:
        return full
    return f"A・B・C・D から選んでください。評価基準は「{GUIDE_SHEET}」シートにあります。"


def _add_validations(catalog: Catalog, ws: Worksheet, last: int) -> None:
    rating = DataValidation(
        type="list",
        formula1=RATING_LIST_NAME,
        allow_blank=True,  # an unanswered row is reported by the reader, not blocked here
        showInputMessage=True,
        promptTitle="事業評価(A～D)",
        prompt=rating_prompt(catalog),
        # openpyxl's default is showErrorMessage=False, which lets any value through silently.
        showErrorMessage=True,
        errorStyle="stop",
        errorTitle="入力できない値です",
        error="事業評価は一覧から A・B・C・D のいずれか1つを選んでください。",
        imeMode="disabled",  # a rating is one Latin letter: no kana conversion, no full-width Ａ
    )
    rating.add(f"{RATING_COLUMN}{FIRST_DATA_ROW}:{RATING_COLUMN}{last}")
    ws.add_data_validation(rating)
    # Free-text columns: no restriction, only the IME switched to hiragana on entering the cell.
    prose = DataValidation(allow_blank=True, imeMode="hiragana")
    prose.add(f"F{FIRST_DATA_ROW}:F{last}")
    prose.add(f"H{FIRST_DATA_ROW}:H{last}")
    ws.add_data_validation(prose)


def _fill_guide(catalog: Catalog, ws: Worksheet, office: str, deadline: date | None, contact: str) -> None:
    due = wareki(deadline) if deadline else "別途お知らせする期限"
    labels = header_labels(catalog)
    lines: list[tuple[str, str, str]] = [
        ("title", f"{catalog.year_label} {catalog.title} 記入要領", ""),
        ("text", f"このファイルは {office} の担当分です。", ""),
        ("head", "1. 記入していただくもの", ""),
        ("text", f"「{TEMPLATE_SHEET}」シートの黄色のセル(F列～H列)だけに記入してください。", ""),
        (
            "item",
            labels[5],
            f"{catalog.year_label}に実施した内容(実績)と、事業評価の理由を記入してください。",
        ),
        ("item", COLUMNS[6], "下の評価基準により、一覧から A・B・C・D のいずれか1つを選んでください。"),
        (
            "item",
            COLUMNS[7],
            catalog.rating_note or "次年度に向けての課題、検討内容について記入してください。",
        ),
        (
            "text",
            "同じ事業を複数の担当課で担当している場合は、担当課ごとの行にそれぞれ記入してください。",
            "",
        ),
        ("head", "2. 評価基準", ""),
        *(("item", k, v) for k, v in catalog.ratings.items()),
        ("head", "3. 提出", ""),
        ("item", "提出期限", due),
        ("item", "提出先", contact),
        ("text", "記入したこのファイルを、ファイル名を変えずにメールに添付して提出先へ送ってください。", ""),
        ("head", "4. ご注意", ""),
        ("text", "・行や列を追加・削除しないでください。", ""),
        ("text", "・シートの追加・削除や、シート名の変更はしないでください。", ""),
        (
            "text",
            "・白いセル(施策No.～担当課)は計画の内容で、変更できません。誤りがあれば提出先にご連絡ください。",
            "",
        ),
        ("text", "・セルの中で改行するときは Alt + Enter を押してください。", ""),
        (
            "text",
            "・文章が長くて隠れるときは、行番号の下の境界線をダブルクリックすると行の高さが合います。",
            "",
        ),
        (
            "text",
            "・別のファイルに貼り付けて作り直さず、このファイルに記入してください(確認用の情報が入っています)。",
            "",
        ),
    ]
    ws.column_dimensions["A"].width = 26
    ws.column_dimensions["B"].width = 90
    fill = PatternFill("solid", fgColor=HEADER_FILL)
    for row, (style, first, second) in enumerate(lines, start=1):
        a, b = ws.cell(row, 1), ws.cell(row, 2)
        set_text(a, first)
        a.font = _font(bold=style in ("title", "head", "item"), size=14 if style == "title" else FONT_SIZE)
        a.alignment = Alignment(vertical="top", wrap_text=style == "item")
        if style == "item":
            set_text(b, second)
            b.font = _font()
            b.alignment = Alignment(vertical="top", wrap_text=True)
            a.border = b.border = _BORDER
            a.fill = fill
            ws.row_dimensions[row].height = row_height([(first, 26), (second, 90)])
    ws.protection.sheet = True
    printing.fit_a4_landscape(ws, PAGE_MARGINS)
    _page_header(ws, f"{catalog.year_label} {catalog.title}", office)


def _fill_meta(
    catalog: Catalog, ws: Worksheet, office: str, values: Sequence[tuple[str, ...]], generated: str
) -> None:
    meta = {
        "kind": TEMPLATE_KIND,
        "fiscal_year": catalog.year,
        "office": office,
        "catalog_version": catalog.version,
        "template_version": TEMPLATE_VERSION,
        "generated": generated,
        "prefilled_hash": prefilled_hash(list(values)),
        "rows": str(len(values)),
        "header_row": str(HEADER_ROW),
        "first_data_row": str(FIRST_DATA_ROW),
        "answer_sheet": TEMPLATE_SHEET,
    }
    for row, key in enumerate(META_KEYS, start=1):
        set_text(ws.cell(row, 1), key)
        set_text(ws.cell(row, 2), meta[key])
        # Text format, so a person who unhides it and retypes a value keeps it a string.
        ws.cell(row, 2).number_format = "@"
    for row, (code, definition) in enumerate(catalog.ratings.items(), start=1):
        set_text(ws.cell(row, 4), code)
        set_text(ws.cell(row, 5), definition)
    ws.protection.sheet = True
    ws.sheet_state = "veryHidden"
