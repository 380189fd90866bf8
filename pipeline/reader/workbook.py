"""A workbook's sheets as calamine reads them, inside the contained worker: every worksheet's
values from A1, its state (visible, hidden, veryHidden) and its merged ranges, bounded by the
limits before anything is returned.

calamine is a native library: a hostile file can abort the process (SIGABRT) or allocate without
bound. The gate rejects the cases we know; the contained worker (pipeline.reader.sandbox) holds
the ones we don't, so parse_sheets runs only there (pipeline.reader.contained.read_return).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from pipeline.celltext import column_letters
from pipeline.reader.scanning import SheetFacts
from pipeline.report import Issue, make_issue


@dataclass
class RawSheet:
    """A worksheet's values as read: rows[0] is Excel row 1, rows[r][0] is column A."""

    name: str
    state: str  # visible, hidden, veryHidden
    rows: list[list[Any]]
    facts: SheetFacts | None = None
    merged: list[str] = field(default_factory=list)



class SheetTooLarge(Exception):
    """Raised in the worker when a sheet as read is beyond the limits (reported as sheet-too-large).

    The gate bounds .xlsx and .ods sheets before the reader sees them; an .xls is bounded here, on
    what calamine built (inside the worker's memory cap), before anything is returned.
    """

    def __init__(self, sheet: str, detail: str) -> None:
        super().__init__(sheet, detail)
        self.sheet, self.detail = sheet, detail


def parse_failure(exc: Exception, name: str) -> Issue:
    """The issue of a parse that raised: a sheet beyond the limits, or the parser's own error (a
    damaged file the gate let through)."""
    if isinstance(exc, SheetTooLarge):
        return make_issue("sheet-too-large", file=name, sheet=exc.sheet, detail=exc.detail)
    # The reader's own words are English: the clerk reads a Japanese cause, the run report keeps
    # the original as the issue's value.
    original = f"{type(exc).__name__}: {str(exc)[:200]}"
    return make_issue("file-unreadable", file=name, value=original, detail=_reader_error_ja(str(exc)))


_READER_ERRORS_JA = (
    ("cannot detect file format", "ブックの形式を判別できない"),
    ("password", "パスワードが設定されている"),
    ("encrypt", "暗号化されている"),
    ("zip", "ZIP の構造が壊れている"),
    ("xml", "中の XML が壊れている"),
    ("utf", "文字コードが壊れている"),
)


def _reader_error_ja(text: str) -> str:
    low = text.lower()
    cause = next((ja for key, ja in _READER_ERRORS_JA if key in low), "読み込み中にエラーが起きた")
    return f"{cause}。元のメッセージは実行レポートにあります"


def parse_sheets(
    data: bytes, bounds: tuple[int, int, int] | None = None
) -> list[tuple[str, str, list[list[Any]], list[str]]]:
    """Every worksheet's values (from A1), state and merged ranges. Runs in the contained worker.

    `bounds` = (max_cells, max_rows, max_cols): a sheet whose extent or number of non-empty cells
    is beyond them raises SheetTooLarge instead of returning a huge payload. calamine picks the
    format (.xlsx, .xls, .ods) from the bytes, as the gate did.
    """
    import python_calamine as pc  # imported in the child only

    book = pc.CalamineWorkbook.from_filelike(io.BytesIO(data))
    out = []
    for meta in book.sheets_metadata:
        if meta.typ != pc.SheetTypeEnum.WorkSheet:
            continue
        sheet = book.get_sheet_by_name(meta.name)
        if meta.visible == pc.SheetVisibleEnum.Visible:
            state = "visible"
        elif meta.visible == pc.SheetVisibleEnum.Hidden:
            state = "hidden"
        else:
            state = "veryHidden"
        if bounds is not None:
            _check_bounds(meta.name, sheet, *bounds)
        rows = sheet.to_python(skip_empty_area=False)
        merged = [_range(m) for m in (sheet.merged_cell_ranges or [])]
        out.append((meta.name, state, rows, merged))
    return out


def _check_bounds(name: str, sheet: Any, max_cells: int, max_rows: int, max_cols: int) -> None:
    end = sheet.end
    if end is None:
        return
    rows, cols = end[0] + 1, end[1] + 1
    if rows > max_rows or cols > max_cols:
        what = f"{max_rows:,} 行" if rows > max_rows else f"{max_cols:,} 列"
        raise SheetTooLarge(name, f"{column_letters(cols)}{rows} までデータがあり、{what}を超えている")
    count = 0
    for row in sheet.iter_rows():  # one row at a time: nothing the size of the sheet is built
        count += sum(1 for v in row if v != "")
        if count > max_cells:
            raise SheetTooLarge(name, f"データのあるセルが {max_cells:,} 個を超えている")


def _range(m: Any) -> str:
    (r1, c1), (r2, c2) = m
    return f"{column_letters(c1 + 1)}{r1 + 1}:{column_letters(c2 + 1)}{r2 + 1}"
