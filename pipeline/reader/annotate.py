"""Make the 差し戻し copy: the department's own workbook with every issue marked on it.

One job: given the original bytes of a returned workbook and its Issues, return an annotated
copy (issue cells filled red/yellow with a Japanese comment, plus a first sheet 「エラー一覧」
listing every issue with a link to its cell). It runs in the contained worker
(pipeline.reader.contained), since openpyxl parses the department's bytes; the caller writes the
copy atomically (pipeline.runner.write_copy). The original file is never touched.

What survives the openpyxl round trip (measured in tests/test_feedback.py, openpyxl 3.1.5):
  kept    cell values, fills, fonts, number formats, wrap; column widths; merged cells; freeze
          panes; print area / print titles / page setup; sheet protection (flags and hash);
          workbook structure lock; hidden and veryHidden sheets; defined names; data
          validations in the main sheet XML (incl. a list on another sheet, prompt, error
          alert, imeMode); charts; comment text; the VBA project of an .xlsm (keep_vba).
  re-added data validations Excel stored as an x14 extension (openpyxl drops them on load):
          we read them from the source XML and add them back as ordinary validations.
  lost    pictures (openpyxl needs Pillow, which we do not ship), shapes and text boxes,
          form controls, conditional formats stored as extensions (e.g. 2010 data bars),
          sparklines/slicers and other worksheet extensions, comment formatting.
Nothing is lost silently: after saving, the copy's XML is compared with the source's, and
every measured loss becomes a ※ line at the top of エラー一覧.

Nothing active of the department's travels in the copy: no formula, DDE call, external link
or hyperlink. Each formula cell keeps the value Excel last calculated for it (openpyxl's
data_only view), links to other workbooks (xl/externalLinks) are not loaded, cell hyperlinks
and defined names that reach outside the workbook (external references, DDE, HYPERLINK and
the like) are removed. Each removed thing is listed at the foot of エラー一覧 (cell, what was
there, the value kept), with a ※ line at the top. A department text that Excel would read as
a formula if retyped gets the quote-prefix style, and every text we write (messages,
comments) follows pipeline.celltext's rules, so a message quoting "＝HYPERLINK(…" stays text.
The links of エラー一覧 itself (to each problem cell, "#'Sheet'!G5") are ours.

If openpyxl cannot load the bytes at all (or cannot save what it loaded), the copy is a new
workbook holding only エラー一覧, and its title line says so.

A department that sends our copy back gets it cleaned first: the old エラー一覧 goes, our
comment blocks nobody edited go, and the fills we painted are restored from a hidden column of
the old list. A department sheet that merely shares the name エラー一覧 is never removed.

One module, though long: marking the cells, writing エラー一覧 and cleaning a returned copy all
work on the same openpyxl workbook and the same record of what we painted.
"""

from __future__ import annotations

import io
import math
import posixpath
import re
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from defusedxml import ElementTree as DefusedET
from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import ERROR_CODES, Cell
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.styles.fills import Fill
from openpyxl.utils.cell import range_boundaries
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.xml.functions import fromstring, tostring

from pipeline import celltext, printing
from pipeline.layout import SOURCE_PROPERTY
from pipeline.marks import NO_VALUE
from pipeline.normalize import label_key
from pipeline.report import ERROR, Issue

FEEDBACK_SHEET = "エラー一覧"
AUTHOR = "地域福祉課 点検"

# Excel's own "bad" / "neutral" cell-style colours, which staff already read as error / caution.
ERROR_FILL = PatternFill(fill_type="solid", fgColor="FFFFC7CE", bgColor="FFFFC7CE")
WARNING_FILL = PatternFill(fill_type="solid", fgColor="FFFFEB9C", bgColor="FFFFEB9C")
_OUR_FILL_RGB = {"FFFFC7CE", "FFFFEB9C"}

_SEVERITY_LABEL = {ERROR: "エラー"}  # anything else is a warning
_HEADERS = ("No.", "シート", "セル", "重要度", "コード", "内容", "事業No.・事業名")
# A list we wrote is known by its first six headings (a list of an older version has no 事業 column).
_KNOWN_HEADERS = _HEADERS[:6]
# The headings of the sheet's 事業No. and 事業名 columns (our template's; a department's own table
# with the published headings too), for the 事業 of a row issue.
_PROJECT_LABELS = (label_key("事業No."), label_key("個別事業・取り組み"))
# Hidden column of エラー一覧: the cell's fill before we painted it, so that a re-sent copy can
# be restored before it is annotated again (a fixed cell must not stay red).
_RESTORE_COL = 8
_RESTORE_HEADER = "_元の塗りつぶし"
_COMMENT_WIDTH = 400  # px, about 300 pt
_COMMENT_MIN_HEIGHT = 200  # px, about 150 pt
_COMMENT_CHARS = 44  # half-width units per line of a 400 px comment box at 11pt
_LIST_FONT_SIZE = 11  # openpyxl's default font, used on エラー一覧
_REMOVED_TITLE = "元のブックから取り除いた数式・リンク"
_REMOVED_HEADERS = ("No.", "シート", "セル", "種類", "残した値", "元の内容")
# A comment block we wrote: Excel-style "author:" line, then one "[code] message" per line.
_OUR_BLOCK_HEAD = f"{AUTHOR}:"
_OUR_LINE = re.compile(r"^\[[a-z0-9-]+\] ")

_NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NS_X14 = "http://schemas.microsoft.com/office/spreadsheetml/2009/9/main"
_NS_XM = "http://schemas.microsoft.com/office/excel/2006/main"
_NS_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_NS_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_EXT_DV = "{CCE6A557-97BC-4b89-ADB6-D9C93CAAB3DF}"  # x14:dataValidations
_EXT_CF = "{78C0D931-6437-407d-A8EE-F0AAD7539E65}"  # x14:conditionalFormattings


class Copy(NamedTuple):
    """An annotated copy's bytes. `full` is False for the list-only copy of a workbook openpyxl
    could not load or write back (a new workbook: no macros, whatever the original's type).
    `said` holds what openpyxl printed or warned while making it (pipeline.quiet)."""

    data: bytes
    full: bool
    said: tuple[str, ...] = ()


def feedback_copy(data: bytes, name: str, issues: list[Issue], *, office: str = "", source: str = "",
                  sha256: str = "") -> Copy:
    """The annotated copy of `data` (a workbook called `name`). Runs in the contained worker
    (pipeline.reader.contained): the caller writes the bytes where they go.

    `office` and `source` (the file's name relative to the inbox) are named on エラー一覧;
    `sha256` (of the source file) is recorded as the custom document property SOURCE_PROPERTY,
    so that a copy is reused, or attached to a reminder, only for the bytes it was made from."""
    from pipeline.quiet import library_output

    with library_output() as said:  # openpyxl prints about some workbooks' styles
        copy = _feedback_copy(data, name, issues, office, source, sha256)
    return copy._replace(said=tuple(said))


def _feedback_copy(data: bytes, name: str, issues: list[Issue], office: str, source: str, sha256: str) -> Copy:
    keep_vba = Path(name).suffix.lower() in (".xlsm", ".xltm")
    label = f"{office} {source or name}" if office else (source or name)
    wb = _load(data, keep_vba)
    if wb is not None:
        try:
            return Copy(_annotated_copy(wb, data, label, issues, keep_vba, sha256), full=True)
        except Exception:  # openpyxl loaded it but cannot write it back: send the list alone
            pass
    wb = Workbook()
    _build_summary(wb, FEEDBACK_SHEET, label, issues, placed={}, restore={}, notes=[], removed=[], fallback=True)
    _record_source(wb, sha256)
    return Copy(_save(wb), full=False)


def _annotated_copy(wb: Workbook, data: bytes, name: str, issues: list[Issue], keep_vba: bool,
                    sha256: str) -> bytes:
    source = _safe_inventory(data)
    _record_source(wb, sha256)
    _undo_previous_feedback(wb)
    # A sheet of the department's own called エラー一覧 is kept; ours then gets another name.
    sheet_name = FEEDBACK_SHEET if FEEDBACK_SHEET not in wb.sheetnames else FEEDBACK_SHEET + "(地域福祉課)"
    notes = []
    if any(feat.comments for feat in source.values()):
        notes.append(
            "既存のコメントは文字だけを引き継いでいます(文字の太さ・色・大きさは元のブックと異なります)。"
        )
    removed = _neutralise(wb, data)
    if removed:
        notes.append(_removed_note(removed))
    placed, restore = _annotate(wb, issues)
    _readd_extension_validations(wb, source)
    _build_summary(wb, sheet_name, name, issues, placed, restore, notes, removed, fallback=False)
    copy = _save(wb)

    # Measure what the round trip lost by comparing the XML of source and copy; anything lost
    # gets a ※ line. Re-saving the loaded workbook is unsafe (openpyxl closes image streams on
    # save), so the copy itself is re-opened and its summary rebuilt with the notes.
    losses = _losses(source, _safe_inventory(copy))
    if losses:
        wb = _load(copy, keep_vba)
        if wb is None:
            raise ValueError("our own copy did not load again")
        _build_summary(wb, sheet_name, name, issues, placed, restore, notes + losses, removed, fallback=False)
        copy = _save(wb)
    return copy


# --- the source a copy was made from -----------------------------------------------------------

def _record_source(wb: Workbook, sha256: str) -> None:
    from openpyxl.packaging.custom import StringProperty

    props = wb.custom_doc_props
    if SOURCE_PROPERTY in props.names:
        del props[SOURCE_PROPERTY]
    if sha256:
        props.append(StringProperty(name=SOURCE_PROPERTY, value=sha256))


# --- loading and saving -------------------------------------------------------------------


def _load(data: bytes, keep_vba: bool) -> Workbook | None:
    """Load for editing, or None when openpyxl cannot read the bytes.

    keep_links=False: links to other workbooks (xl/externalLinks, with their cached copies of
    the other workbook) are not loaded, so the copy holds none.
    """
    try:
        # openpyxl warns about every extension it drops; _losses reports those to the
        # department instead, so the console stays quiet.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_workbook(io.BytesIO(data), keep_vba=keep_vba, keep_links=False, rich_text=False)
    except Exception:  # any parser failure means "cannot annotate this workbook"
        return None


def _save(wb: Workbook) -> bytes:
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


# --- removing the department's formulas and links -------------------------------------------


@dataclass
class _Removed:
    """One formula, link or name taken out of the department's workbook."""

    kind: str  # 数式 / ハイパーリンク / 外部リンク / 名前の定義
    sheet: str
    cell: str  # "" for workbook-level things
    before: str  # what was there (the formula, the link target, the name's definition)
    kept: str  # the value the cell keeps, as shown on エラー一覧


_KIND_ORDER = ("数式", "ハイパーリンク", "外部リンク", "名前の定義")
# In a defined name, outside its "string literals": a reference to another workbook (stored as
# an index, [1]Sheet!A1 or '[1]Sheet 1'!A1; a sheet name cannot hold "["), a DDE call
# (app|topic!item), or a function that reaches outside the workbook or runs code. Structured
# references (Table1[列]) and OFFSET/INDIRECT lists stay.
_RISKY_NAME_TEXT = re.compile(
    r"\[\d+\]|\||\b(?:HYPERLINK|WEBSERVICE|FILTERXML|CALL|REGISTER(?:\.ID)?|EXEC|RUN|EXECUTE|FOPEN|FWRITE)\s*\(",
    re.IGNORECASE,
)
_AUTO_MACRO_NAME = re.compile(r"^(?:_xlnm\.)?auto_(?:open|close|activate|deactivate)", re.IGNORECASE)
_STRING_LITERAL = re.compile(r'"(?:[^"]|"")*"')


def _neutralise(wb: Workbook, data: bytes) -> list[_Removed]:
    """Take every formula, hyperlink, external link and outward-reaching name out of `wb`.

    Formula cells keep their cached values (read from `data` with data_only=True). Returns
    what was removed, in sheet order, for the list on エラー一覧.
    """
    removed: list[_Removed] = []
    formulas: list[tuple[Worksheet, Cell]] = []
    for ws in wb.worksheets:
        for cell in sorted(ws._cells.values(), key=lambda c: (c.row, c.column)):
            if cell.data_type == "f":
                formulas.append((ws, cell))
            elif cell.data_type == "s" and isinstance(cell.value, str) and celltext.needs_quote(cell.value):
                cell.quotePrefix = True  # their "'=…" stays text after F2+Enter in our copy too
            if cell.hyperlink is not None:
                link = cell.hyperlink
                target = link.target or (f"#{link.location}" if link.location else "")
                cell.hyperlink = None
                removed.append(_Removed("ハイパーリンク", ws.title, cell.coordinate, target, _shown(cell.value)))
    if formulas:
        cached = _cached_values(data, {(ws.title, cell.coordinate) for ws, cell in formulas})
        for ws, cell in formulas:
            before = _formula_text(cell.value)
            value = cached.get((ws.title, cell.coordinate))
            if isinstance(value, str) and value not in ERROR_CODES:
                _put_text(cell, value)
            else:
                cell.value = value  # a number, date, bool, error code ("#N/A"), or nothing
            removed.append(_Removed("数式", ws.title, cell.coordinate, before, _shown(value)))
    for target in _external_link_targets(data):
        removed.append(_Removed("外部リンク", "", "", target, NO_VALUE))
    removed += _remove_risky_names(wb)
    removed.sort(key=lambda r: _KIND_ORDER.index(r.kind))  # stable: sheet and cell order within a kind
    return removed


def _formula_text(value: object) -> str:
    if isinstance(value, ArrayFormula):
        return "{" + (value.text or "") + "}"
    if isinstance(value, DataTableFormula):
        return f"{{=TABLE({value.r1 or ''},{value.r2 or ''})}}"
    return str(value)


def _shown(value: object) -> str:
    """A kept value as text for the list: "(空白)" for an empty cell."""
    if value is None or value == "":
        return "(空白)"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


def _cached_values(data: bytes, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], object]:
    """The values Excel last calculated for the `wanted` (sheet, cell) formula cells."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = load_workbook(io.BytesIO(data), data_only=True, keep_links=False, rich_text=False)
    except Exception:  # the formula view loaded, so this hardly happens: the cells become blank
        return {}
    out: dict[tuple[str, str], object] = {}
    for sheet, coordinate in wanted:
        ws = values[sheet] if sheet in values.sheetnames else None
        if isinstance(ws, Worksheet):
            out[(sheet, coordinate)] = ws[coordinate].value
    return out


def _external_link_targets(data: bytes) -> list[str]:
    """The other workbooks `data` links to (targets of its xl/externalLinks parts), in order."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            workbook_part = next(
                (t for t, kind in _rels(archive, "", names).values() if kind.endswith("/officeDocument")),
                "xl/workbook.xml",
            )
            targets = []
            for part, kind in _rels(archive, workbook_part, names).values():
                if not kind.endswith("/externalLink") or part not in names:
                    continue
                outside = [t for t, _kind in _rels(archive, part, names, external=True).values()]
                targets.append(outside[0] if outside else posixpath.basename(part))
            return targets
    except Exception:  # an unreadable package was not loaded either; nothing to list
        return []


def _remove_risky_names(wb: Workbook) -> list[_Removed]:
    """Remove defined names that reach outside the workbook or run code; keep plain ones
    (ranges, constants, OFFSET/INDIRECT lists behind a validation)."""
    removed = []
    scopes: list[tuple[str, dict]] = [("", wb.defined_names)]
    scopes += [(ws.title, ws.defined_names) for ws in wb.worksheets]
    for scope, names in scopes:
        for key, defn in list(names.items()):
            text = str(defn.attr_text or "")
            if _AUTO_MACRO_NAME.match(key) or _RISKY_NAME_TEXT.search(_STRING_LITERAL.sub("", text)):
                del names[key]
                removed.append(_Removed("名前の定義", scope, "", f"{key} = {text}", NO_VALUE))
    return removed


def _removed_note(removed: list[_Removed]) -> str:
    counts = Counter(r.kind for r in removed)
    parts = "・".join(f"{kind} {counts[kind]} 件" for kind in _KIND_ORDER if counts[kind])
    return (
        f"元のブックの{parts}を取り除きました(数式のセルには保存されていた計算結果の値を残しています)。"
        f"一覧はこのシートの下の「{_REMOVED_TITLE}」にあります。"
    )


# --- annotating cells -------------------------------------------------------------------


@dataclass
class _Target:
    sheet: str
    coordinate: str  # the anchor cell we painted (top-left of a merged range)
    link: str  # the address the エラー一覧 links to, as given (without "$")


def _resolve(wb: Workbook, issue: Issue) -> _Target | None:
    """Where an issue points in this workbook, or None for file-level / unusable addresses."""
    if not issue.sheet or not issue.cell:
        return None
    if issue.sheet not in wb.sheetnames or not isinstance(wb[issue.sheet], Worksheet):
        return None
    ref = issue.cell.replace("$", "").strip().upper()
    try:
        min_col, min_row, _max_col, _max_row = range_boundaries(ref)
    except (ValueError, TypeError):
        return None
    if min_col is None or min_row is None or min_row > 1_048_576 or min_col > 16_384:
        return None
    ws = wb[issue.sheet]
    coordinate = f"{celltext.column_letters(min_col)}{min_row}"
    # A value can only live in the top-left cell of a merged range; paint that one.
    for merged in ws.merged_cells.ranges:
        if coordinate in merged:
            coordinate = merged.start_cell.coordinate
            break
    return _Target(issue.sheet, coordinate, ref)


def _annotate(wb: Workbook, issues: list[Issue]) -> tuple[dict[int, _Target], dict[tuple[str, str], str]]:
    """Fill and comment every issue cell. Returns issue index → target, and original fills."""
    placed: dict[int, _Target] = {}
    by_cell: dict[tuple[str, str], list[Issue]] = {}
    for index, issue in enumerate(issues):
        target = _resolve(wb, issue)
        if target is None:
            continue
        placed[index] = target
        by_cell.setdefault((target.sheet, target.coordinate), []).append(issue)

    # The marked sheets print their row and column headings, so "F6" can be found on paper.
    for sheet in {sheet for sheet, _ in by_cell}:
        wb[sheet].print_options.headings = True
    originals: dict[tuple[str, str], str] = {}
    for (sheet, coordinate), cell_issues in by_cell.items():
        cell = wb[sheet][coordinate]
        originals[(sheet, coordinate)] = tostring(cell.fill.to_tree()).decode("utf-8")
        # Assigning only .fill keeps the cell's font, number format, alignment and lock state.
        cell.fill = ERROR_FILL if any(i.severity == ERROR for i in cell_issues) else WARNING_FILL
        lines = [celltext.clean_xml(f"[{i.code}] {i.message}") for i in cell_issues]
        text = "\n".join([_OUR_BLOCK_HEAD, *lines])
        if cell.comment is not None and cell.comment.text.strip():
            text = cell.comment.text.rstrip() + "\n\n" + text  # the department's note stays first
        cell.comment = Comment(
            celltext.truncate_to_cell(text), AUTHOR, height=_comment_height(lines), width=_COMMENT_WIDTH
        )
    return placed, originals


def _comment_height(lines: list[str]) -> int:
    # openpyxl sizes comment boxes in px (Excel's default is 144×79 px): 400 px ≈ 300 pt wide
    # holds about 44 half-width units of 11pt text per line, and a line needs ~20 px.
    rows = 1 + sum(max(1, math.ceil(celltext.display_width(line) / _COMMENT_CHARS)) for line in lines)
    return min(max(_COMMENT_MIN_HEIGHT, rows * 20 + 10), 800)


def _undo_previous_feedback(wb: Workbook) -> None:
    """If this is our own copy sent back, remove our old marks before marking it again.

    Removes the old エラー一覧 and our comment blocks that nobody edited, and restores the fills
    we painted (only where the cell still has our colour: a colour the department chose stays).
    """
    old = wb[FEEDBACK_SHEET] if FEEDBACK_SHEET in wb.sheetnames else None
    header = _header_row(old) if isinstance(old, Worksheet) else None
    if old is None or header is None:
        return  # no list, or a sheet of the department's own that happens to share the name
    restore: dict[tuple[str, str], str] = {}
    for row in old.iter_rows(min_row=header + 1, max_col=_RESTORE_COL, values_only=True):
        sheet, coordinate, saved = row[1], row[2], row[_RESTORE_COL - 1]
        if isinstance(sheet, str) and isinstance(coordinate, str) and isinstance(saved, str):
            restore.setdefault((sheet, coordinate), saved)
    wb.remove(old)

    for (sheet, coordinate), saved in restore.items():
        if sheet not in wb.sheetnames or not isinstance(wb[sheet], Worksheet):
            continue
        try:
            cell = wb[sheet][coordinate]
            if isinstance(cell, Cell) and _is_our_fill(cell.fill) and len(saved) < 4000:
                cell.fill = Fill.from_tree(fromstring(saved))
        except Exception:  # a damaged hidden cell only costs the restore, never the copy
            continue
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if cell.comment is not None:
                    _strip_our_block(cell)


def _header_row(ws: Worksheet) -> int | None:
    """The header row of an エラー一覧 we wrote, or None when the sheet is not ours."""
    for row in ws.iter_rows(min_row=1, max_row=30, max_col=len(_KNOWN_HEADERS)):
        if tuple(cell.value for cell in row) == _KNOWN_HEADERS:
            return row[0].row
    return None


def _is_our_fill(fill: object) -> bool:
    color = getattr(getattr(fill, "fgColor", None), "rgb", None)
    return (
        getattr(fill, "fill_type", None) == "solid"
        and isinstance(color, str)
        and color.upper() in _OUR_FILL_RGB
    )


def _strip_our_block(cell: Cell) -> None:
    text = cell.comment.text
    head = text.rfind(_OUR_BLOCK_HEAD)
    if head < 0:
        return
    tail = [line for line in text[head + len(_OUR_BLOCK_HEAD) :].splitlines() if line.strip()]
    if not all(_OUR_LINE.match(line) for line in tail):
        return  # someone wrote into our block: keep every word of it
    kept = text[:head].rstrip()
    cell.comment = Comment(kept, cell.comment.author or AUTHOR) if kept else None


# --- the エラー一覧 sheet -----------------------------------------------------------------


def _build_summary(
    wb: Workbook,
    sheet_name: str,
    name: str,
    issues: list[Issue],
    placed: dict[int, _Target],
    restore: dict[tuple[str, str], str],
    notes: list[str],
    removed: list[_Removed],
    *,
    fallback: bool,
) -> None:
    if sheet_name in wb.sheetnames:
        wb.remove(wb[sheet_name])
    if fallback:
        ws = wb.active
        ws.title = sheet_name
    else:
        ws = wb.create_sheet(sheet_name, 0)

    errors = sum(1 for i in issues if i.severity == ERROR)
    title = f"差し戻し {name}: エラー {errors} 件・警告 {len(issues) - errors} 件"
    if fallback:
        title += "(元のブックを読み込めなかったため、一覧のみ)"
    _put_text(ws.cell(1, 1), title).font = Font(bold=True, size=14)
    if fallback:
        guide = (
            "元のブックを読み込めなかった(または印を付けて保存できなかった)ため、この一覧だけをお送りします。"
            "元のブックで該当箇所を直してください。"
        )
    else:
        guide = "赤はエラー(必ず修正)、黄は警告(確認)です。「セル」をクリックすると該当のセルへ移動します。"
    _put_text(ws.cell(2, 1), guide)
    row = 3
    for note in notes:
        _put_text(ws.cell(row, 1), "※ " + note).font = Font(bold=True, color="FF9C0006")
        row += 1

    header_row = row + 1
    for col, header in enumerate(_HEADERS, start=1):
        cell = _put_text(ws.cell(header_row, col), header)
        cell.font = Font(bold=True)
        cell.fill = PatternFill(fill_type="solid", fgColor="FFD9D9D9")
    _put_text(ws.cell(header_row, _RESTORE_COL), _RESTORE_HEADER)

    link_style = _hyperlink_style_name(wb)
    widths = [_shown_width(h) for h in _HEADERS]
    projects = _ProjectColumns(wb) if not fallback else None
    for number, issue in enumerate(issues, start=1):
        r = header_row + number
        target = placed.get(number - 1)
        label = _SEVERITY_LABEL.get(issue.severity, "警告")
        project = projects.of(target) if projects is not None and target is not None else ""
        values = (str(number), issue.sheet, issue.cell, label, issue.code, issue.message, project)
        ws.cell(r, 1, number)
        for col, value in enumerate(values[1:], start=2):
            _put_text(ws.cell(r, col), value)
        for col, value in enumerate(values):
            widths[col] = max(widths[col], _shown_width(value))
        if target is not None:
            link = ws.cell(r, 3)
            link.hyperlink = Hyperlink(
                ref=link.coordinate, location=f"{_quote_sheet(target.sheet)}!{target.link}"
            )
            link.style = link_style
            saved = restore.get((target.sheet, target.coordinate))
            if saved:
                _put_text(ws.cell(r, _RESTORE_COL), saved)
        ws.cell(r, 4).fill = ERROR_FILL if issue.severity == ERROR else WARNING_FILL
        ws.cell(r, 6).alignment = Alignment(wrap_text=True, vertical="top")
        ws.cell(r, 7).alignment = Alignment(wrap_text=True, vertical="top")
        for col in range(1, 6):
            ws.cell(r, col).alignment = Alignment(vertical="top")

    last = header_row + len(issues)
    wrapped = [(header_row + number, [(issue.message, 6), (str(ws.cell(header_row + number, 7).value or ""), 7)])
               for number, issue in enumerate(issues, start=1)]
    if removed:
        wrapped += [(r, [(text, 6)]) for r, text in _list_removed(ws, last + 2, removed, widths)]

    # Widths in Excel character units, each column as wide as its widest text: a full-width
    # character counts 2, a proportional Latin letter or digit of the UD font 1.2. 内容 wraps at
    # 80, 事業 at 40.
    for col, width in enumerate(widths, start=1):
        ws.column_dimensions[celltext.column_letters(col)].width = min(math.ceil(width) + 2, 80 if col == 6 else 40)
    ws.column_dimensions[celltext.column_letters(_RESTORE_COL)].hidden = True
    # Explicit heights for wrapped texts: LibreOffice never grows rows by itself.
    for r, texts in wrapped:
        cells = [(text, ws.column_dimensions[celltext.column_letters(col)].width) for text, col in texts]
        if any(celltext.wrapped_lines(text, width) > 1 for text, width in cells):
            ws.row_dimensions[r].height = celltext.row_height(cells, _LIST_FONT_SIZE, exact=True)

    ws.freeze_panes = ws.cell(header_row + 1, 1).coordinate
    if issues:
        ws.auto_filter.ref = f"A{header_row}:F{last}"
    _ud_fonts(ws)
    ws.print_title_rows = f"{header_row}:{header_row}"
    # Each printed page names the workbook it is about and its number; the header and footer
    # sit inside the margins.
    printing.fit_a4_landscape(ws, _PAGE_MARGINS)
    # Excel allows 255 characters for a whole header: a long file name is cut there.
    ws.oddHeader.left.text = celltext.bounded_text(f"差し戻し {name}", _HEADER_CHARS).replace("&", "&&")
    ws.oddHeader.right.text = "&A"
    ws.oddFooter.center.text = "&P / &N"
    for part in (ws.oddHeader.left, ws.oddHeader.right, ws.oddFooter.center):
        part.font = printing.HEADER_FONT

    # Open on the list, with only it selected: several tabSelected sheets would open "grouped",
    # and an edit would then go to every grouped sheet.
    for sheet in wb.worksheets:
        for view in sheet.views.sheetView:
            view.tabSelected = False
    for chart_sheet in wb.chartsheets:
        for view in chart_sheet.sheetViews.sheetView:
            view.tabSelected = False
    ws.sheet_view.tabSelected = True
    wb.active = wb.sheetnames.index(sheet_name)
    for view in wb.views:
        view.firstSheet = 0


_HEADER_CHARS = 120  # of the 255 Excel allows for the three parts of a header, with "&&" doubled

_PAGE_MARGINS = {"left": 0.4, "right": 0.4, "top": 0.8, "bottom": 0.7, "header": 0.3, "footer": 0.3}


def _shown_width(text: object) -> float:
    """Column units a text needs on エラー一覧 (its UD font is proportional: Latin letters and
    digits are wider than the half em a unit is)."""
    return sum(2 if celltext.display_width(ch) == 2 else 1.2 for ch in str(text))


class _ProjectColumns:
    """The 事業No. and 事業名 a marked cell's row shows, read from its own sheet: the columns
    headed 事業No. and 個別事業・取り組み (in the first 30 rows), so a printed list says which
    事業 each row issue is about. "" where the sheet has no such headings or the row is above them."""

    def __init__(self, wb: Workbook) -> None:
        self.wb = wb
        self.columns: dict[str, tuple[int, int, int] | None] = {}  # sheet → (header row, 事業No. col, 事業名 col)

    def _find(self, sheet: str) -> tuple[int, int, int] | None:
        ws = self.wb[sheet]
        for row in ws.iter_rows(min_row=1, max_row=30, max_col=40):
            keys = {label_key(c.value): c.column for c in row if isinstance(c.value, str) and len(c.value) < 40}
            if all(k in keys for k in _PROJECT_LABELS):
                return row[0].row, keys[_PROJECT_LABELS[0]], keys[_PROJECT_LABELS[1]]
        return None

    def of(self, target: _Target) -> str:
        if target.sheet not in self.columns:
            self.columns[target.sheet] = self._find(target.sheet)
        found = self.columns[target.sheet]
        row = range_boundaries(target.coordinate)[1]
        if found is None or row is None or row <= found[0]:
            return ""
        ws = self.wb[target.sheet]
        number, name = (ws.cell(row, col).value for col in found[1:])
        if isinstance(number, float) and number.is_integer():
            number = int(number)
        return " ".join(str(v).strip() for v in (number, name) if v is not None and str(v).strip())


def _ud_fonts(ws: Worksheet) -> None:
    """Every cell of the list in the UD font (a font without a name falls back to a Latin,
    even a serif, face when printed), keeping each cell's weight, size, colour and underline."""
    for row in ws.iter_rows():
        for cell in row:
            if cell.value is None:
                continue
            f = cell.font
            cell.font = Font(name=printing.TEXT_FONT, charset=printing.FONT_CHARSET, family=printing.FONT_FAMILY,
                             sz=f.sz or _LIST_FONT_SIZE, b=f.b, i=f.i, u=f.u, color=f.color)


def _list_removed(ws: Worksheet, top: int, removed: list[_Removed], widths: list[float]) -> list[tuple[int, str]]:
    """The list of removed formulas and links, from row `top`. Returns (row, 元の内容) to wrap."""
    _put_text(ws.cell(top, 1), _REMOVED_TITLE).font = Font(bold=True, size=12)
    header = top + 1
    for col, title in enumerate(_REMOVED_HEADERS, start=1):
        cell = _put_text(ws.cell(header, col), title)
        cell.font = Font(bold=True)
        cell.fill = PatternFill(fill_type="solid", fgColor="FFD9D9D9")
    link_style = _hyperlink_style_name(ws.parent)
    wrapped = []
    for number, item in enumerate(removed, start=1):
        r = header + number
        ws.cell(r, 1, number)
        values = (item.sheet, item.cell, item.kind, item.kept, item.before)
        for col, value in enumerate(values, start=2):
            cell = _put_text(ws.cell(r, col), value)
            cell.alignment = Alignment(vertical="top", wrap_text=col == 6)
            widths[col - 1] = max(widths[col - 1], _shown_width(value))
        if item.sheet and item.cell and item.sheet in ws.parent.sheetnames:
            link = ws.cell(r, 3)
            link.hyperlink = Hyperlink(ref=link.coordinate, location=f"{_quote_sheet(item.sheet)}!{item.cell}")
            link.style = link_style
        wrapped.append((r, item.before))
    return wrapped


def _put_text(cell: Cell, text: object) -> Cell:
    """Write text so that it can never become a formula (pipeline.celltext's rules).

    openpyxl turns any str starting with "=" into a formula; forcing data_type "s" stores it
    as text. quotePrefix (Excel's leading apostrophe) keeps it text after F2+Enter too, for
    every text Excel would read as a formula if retyped (also ＝＋－＠, TAB, CR, LF, after
    leading spaces). Control characters XML cannot hold are dropped, and our own long texts
    are cut to Excel's cell limit (in UTF-16 units) with 「(以下略。全文は実行レポート)」.
    """
    value = celltext.bounded_text(celltext.clean_xml("" if text is None else str(text)))
    cell.value = value
    cell.data_type = "s"
    if celltext.needs_quote(value):
        cell.quotePrefix = True
    return cell


def _quote_sheet(sheet: str) -> str:
    return "'" + sheet.replace("'", "''") + "'"


def _hyperlink_style_name(wb: Workbook) -> str:
    """The workbook's own built-in hyperlink style if it has one.

    Japanese Excel saves it as "ハイパーリンク" (builtinId 8); adding a second style with the
    same builtinId under the English name could make Excel repair the file.
    """
    for style in wb._named_styles:
        if getattr(style, "builtinId", None) == 8:
            return style.name
    return "Hyperlink"


# --- what the round trip keeps: inventories of source and copy ------------------------------


class _DV(NamedTuple):
    """A data validation, normalised so that the same rule compares equal in any writer."""

    type: str
    operator: str
    formula1: str
    formula2: str
    sqref: str
    allowBlank: bool
    showDropDown: bool
    showInputMessage: bool
    showErrorMessage: bool
    errorStyle: str
    errorTitle: str
    error: str
    promptTitle: str
    prompt: str
    imeMode: str


@dataclass
class _Features:
    validations: Counter[_DV] = field(default_factory=Counter)
    extension_validations: list[_DV] = field(default_factory=list)
    conditional_formats: int = 0
    drawing: Counter[str] = field(default_factory=Counter)  # 画像 / グラフ / 図形 / コントロール
    controls: int = 0
    comments: int = 0
    extensions: set[str] = field(default_factory=set)


def _safe_inventory(data: bytes) -> dict[str, _Features]:
    try:
        return _inventory(data)
    except Exception:  # an inventory we cannot take only means we cannot compare
        return {}


def _inventory(data: bytes) -> dict[str, _Features]:
    """Per sheet name, the features openpyxl might drop, read from the package XML."""
    result: dict[str, _Features] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        workbook_part = next(
            (t for t, kind in _rels(archive, "", names).values() if kind.endswith("/officeDocument")),
            "xl/workbook.xml",
        )
        workbook = _parse(archive, workbook_part)
        sheet_rels = _rels(archive, workbook_part, names)
        for sheet in workbook.iter(f"{{{_NS_MAIN}}}sheet"):
            target = sheet_rels.get(sheet.get(f"{{{_NS_R}}}id", ""))
            if target is None or target[0] not in names:
                continue
            result[sheet.get("name", "")] = _sheet_features(archive, target[0], names)
    return result


def _sheet_features(archive: zipfile.ZipFile, part: str, names: set[str]) -> _Features:
    features = _Features()
    root = _parse(archive, part)
    for dv in root.iter(f"{{{_NS_MAIN}}}dataValidation"):
        features.validations[_dv_key(dv, _NS_MAIN, dv.get("sqref", ""))] += 1
    for dv in root.iter(f"{{{_NS_X14}}}dataValidation"):
        sqref = dv.findtext(f"{{{_NS_XM}}}sqref") or ""
        key = _dv_key(dv, _NS_X14, sqref)
        features.validations[key] += 1
        features.extension_validations.append(key)
    features.conditional_formats = sum(1 for _ in root.iter(f"{{{_NS_MAIN}}}cfRule")) + sum(
        1 for _ in root.iter(f"{{{_NS_X14}}}cfRule")
    )
    features.controls = sum(1 for _ in root.iter(f"{{{_NS_MAIN}}}control"))
    ext_list = root.find(f"{{{_NS_MAIN}}}extLst")
    if ext_list is not None:
        features.extensions = {
            ext.get("uri", "") for ext in ext_list if ext.get("uri", "") not in (_EXT_DV, _EXT_CF)
        }
    for target, kind in _rels(archive, part, names).values():
        if target not in names:
            continue
        if kind.endswith("/comments"):
            features.comments += sum(1 for _ in _parse(archive, target).iter(f"{{{_NS_MAIN}}}comment"))
        elif kind.endswith("/drawing"):
            for anchor in _parse(archive, target):
                for child in anchor:
                    kind_name = _DRAWING_KINDS.get(child.tag.rsplit("}", 1)[-1])
                    if kind_name:
                        features.drawing[kind_name] += 1
    return features


_DRAWING_KINDS = {
    "pic": "画像",
    "graphicFrame": "グラフ",
    "sp": "図形",
    "grpSp": "図形",
    "cxnSp": "図形",
    "AlternateContent": "コントロール",
}


def _dv_key(element: object, ns: str, sqref: str) -> _DV:
    get = element.get  # type: ignore[attr-defined]

    def formula(tag: str) -> str:
        node = element.find(f"{{{ns}}}{tag}")  # type: ignore[attr-defined]
        if node is None:
            return ""
        if ns == _NS_X14:  # x14 wraps the formula in <xm:f>
            return (node.findtext(f"{{{_NS_XM}}}f") or "").strip()
        return (node.text or "").strip()

    def flag(attr: str) -> bool:
        return get(attr, "0") in ("1", "true")

    return _DV(
        type=get("type", "none"),
        operator=get("operator", "between"),
        formula1=formula("formula1"),
        formula2=formula("formula2"),
        sqref=" ".join(sorted(sqref.split())),
        allowBlank=flag("allowBlank"),
        showDropDown=flag("showDropDown"),
        showInputMessage=flag("showInputMessage"),
        showErrorMessage=flag("showErrorMessage"),
        errorStyle=get("errorStyle", "stop"),
        errorTitle=get("errorTitle", ""),
        error=get("error", ""),
        promptTitle=get("promptTitle", ""),
        prompt=get("prompt", ""),
        imeMode=get("imeMode", "noControl"),
    )


def _parse(archive: zipfile.ZipFile, part: str):
    return DefusedET.fromstring(archive.read(part))


def _rels(
    archive: zipfile.ZipFile, part: str, names: set[str], *, external: bool = False
) -> dict[str, tuple[str, str]]:
    """Relationship id → (resolved part name, type) for `part` ("" for the package root).

    External targets (a file or URL outside the package) are skipped, or with `external`
    given as they are."""
    folder, base = posixpath.split(part)
    rels_part = posixpath.join(folder, "_rels", base + ".rels") if part else "_rels/.rels"
    if rels_part not in names:
        return {}
    result = {}
    for rel in _parse(archive, rels_part).iter(f"{{{_NS_PKG}}}Relationship"):
        target = rel.get("Target", "")
        if rel.get("TargetMode") == "External":
            if external:
                result[rel.get("Id", "")] = (target, rel.get("Type", ""))
            continue
        resolved = (
            target.lstrip("/")
            if target.startswith("/")
            else posixpath.normpath(posixpath.join(folder, target))
        )
        result[rel.get("Id", "")] = (resolved, rel.get("Type", ""))
    return result


def _readd_extension_validations(wb: Workbook, source: dict[str, _Features]) -> None:
    """Add back the x14 data validations openpyxl dropped while loading."""
    for sheet, features in source.items():
        if not features.extension_validations or sheet not in wb.sheetnames:
            continue
        ws = wb[sheet]
        if not isinstance(ws, Worksheet):
            continue
        for key in features.extension_validations:
            fields = key._asdict()
            fields["formula2"] = fields["formula2"] or None
            for text_field in ("errorTitle", "error", "promptTitle", "prompt"):
                fields[text_field] = fields[text_field] or None
            try:
                ws.add_data_validation(DataValidation(**fields))
            except (TypeError, ValueError):  # an unknown enum value: _losses will report it
                continue


def _losses(source: dict[str, _Features], copy: dict[str, _Features]) -> list[str]:
    """Japanese ※ lines for every feature the copy has less of than the source."""
    lines: list[str] = []
    for sheet, before in source.items():
        if sheet == FEEDBACK_SHEET:
            continue  # our previous list (replaced on purpose) or a department sheet kept whole
        after = copy.get(sheet, _Features())
        missing_dv = sum((before.validations - after.validations).values())
        if missing_dv:
            lines.append(
                f"元のブックの入力規則の一部(シート「{sheet}」の {missing_dv} 件)はこの写しに含まれません。"
                "この写しで直すときは、テンプレートの選択肢どおりに入力してください。"
            )
        if before.conditional_formats > after.conditional_formats:
            lines.append(
                f"シート「{sheet}」の条件付き書式の一部はこの写しに含まれません(表示だけの違いです)。"
            )
        for kind, count in sorted((before.drawing - after.drawing).items()):
            lines.append(
                f"シート「{sheet}」の{kind} {count} 個はこの写しに含まれません。元のブックを参照してください。"
            )
        if before.controls > after.controls:
            lines.append(f"シート「{sheet}」のボタン等のコントロールはこの写しに含まれません。")
        if before.extensions - after.extensions:
            lines.append(
                f"シート「{sheet}」の Excel 拡張機能(スパークライン等)の一部はこの写しに含まれません。"
            )
        if before.comments > after.comments:
            lines.append(f"シート「{sheet}」の既存のコメントの一部はこの写しに含まれません。")
    return lines
