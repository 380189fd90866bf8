"""What goes into a cell we write: the one set of rules for text in every workbook we produce.

One job: decide, for a text, whether it is safe as it is, whether it fits in a cell, how wide it
shows and how many lines it wraps to. Every writer uses these rules: the master and the summary
(xlsxwriter, pipeline.sheets.kit), the templates (openpyxl, pipeline.templates, and pipeline.demo
through it) and the feedback copies (openpyxl, pipeline.reader.annotate). Pure functions, standard
library only, so the reader side can use them without importing an Excel library.

* Formula triggers. Excel turns a typed text into a formula (or a DDE call, or a link) when it
  starts with = + - @, and a CSV export or a paste does the same for a leading TAB, CR or LF.
  Japanese IMEs give the full-width ＝ ＋ － ＠, which Excel accepts as formula starts too. Leading
  blanks (half- and full-width spaces, NBSP, zero-width space, BOM) do not protect: Excel skips
  them. `needs_quote` is True for such a text. Writers never change the text: they store it as a
  string and set the cell's quote-prefix style (Excel's own "'" for a typed '=…), so F2+Enter
  keeps it text.
* Excel's limit of 32,767 characters per cell counts UTF-16 code units: 𠮷 (outside the BMP)
  counts 2. `fits_in_cell` only encodes texts longer than half the limit (each character is 1
  or 2 units), so the check costs nothing for ordinary cells. `check_fits` is the one refusal
  every writer makes; the row schema asks `fits_in_cell` too. Our own texts built from names,
  messages and lists are bounded by construction (`bounded_text`, `bounded_list`: 「ほか N 件」,
  「(以下略。全文は実行レポート)」), so no number or length of inputs makes a writer refuse.
* Cell names count columns from 1 as Excel's A1 names do (1 -> A); a writer that counts from 0
  (xlsxwriter) adds one at the call.
* Display width counts a full-width or ambiguous-width character (east_asian_width F, W or A)
  as 2 column units, as a Japanese font shows it.
* Row heights: not every reader grows a wrapped row by itself (LibreOffice, viewers, print
  preview, merged cells in Excel), so writers set them. `approx_lines` is the fast estimate
  for 60,000-row sheets (every character counted full width, no per-character look-up);
  `wrapped_lines` measures each paragraph's display width.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Iterable

EXCEL_MAX_CHARS = 32_767  # per cell, in UTF-16 code units
MAX_ROW_HEIGHT = 409.0  # points, Excel's limit
# Points per wrapped line = font size × LINE_SPACING, plus ROW_PADDING × font size once a row.
# The BIZ UD fonts' ascent and descent make exactly one em and they have no line gap, so
# LibreOffice sets wrapped lines one em apart and Excel one em rounded up to whole pixels (15 px
# for 11 pt at 96 dpi, 1.023 em): 1.04 covers Excel's rounding, and the padding keeps a row of
# n lines within one empty line of its text in both (1.35, the old factor, left 25–45 % of a
# long row empty).
LINE_SPACING = 1.04
ROW_PADDING = 0.4
CELL_PADDING = 1.5  # column units lost to the cell's left and right margins

# A text starting with one of these becomes a formula (or DDE) when a person retypes it.
FORMULA_TRIGGERS = frozenset("=+-@\t\r\n＝＋－＠")
# Skipped by Excel before it looks at the first character.
LEADING_BLANKS = " \t\r\n\u3000\u00a0\u200b\ufeff"

_HALF_LIMIT = EXCEL_MAX_CHARS // 2
# Characters XML 1.0 cannot hold (TAB, LF and CR are allowed), U+FFFE/U+FFFF, and lone
# surrogates (a str from a decoded file holds pairs as one code point, so any left are lone).
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# --- formulas ------------------------------------------------------------------------------------


def needs_quote(text: str) -> bool:
    """True when Excel would turn `text` into a formula, DDE call or link if someone retyped it."""
    if not text:
        return False
    first = text[0]
    if first in FORMULA_TRIGGERS:
        return True
    if first in LEADING_BLANKS:
        rest = text.lstrip(LEADING_BLANKS)
        return bool(rest) and rest[0] in FORMULA_TRIGGERS
    return False


# --- Excel's cell limit ----------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, as Excel counts its 32,767-character limit."""
    return len(text.encode("utf-16-le")) // 2


def fits_in_cell(text: str) -> bool:
    """Whether Excel can hold `text` in one cell whole (at most 32,767 UTF-16 units)."""
    # Each character is 1 or 2 UTF-16 units, so only texts over half the limit need encoding.
    return len(text) <= _HALF_LIMIT or utf16_len(text) <= EXCEL_MAX_CHARS


def check_fits(text: str, place: str) -> None:
    """Raise ValueError naming `place` when `text` is over Excel's cell limit.

    Department values are never cut: a writer refuses the text and its caller reports it.
    """
    if not fits_in_cell(text):
        raise ValueError(
            f"{place}: {utf16_len(text):,} 文字あり、Excel の1セルの上限 {EXCEL_MAX_CHARS:,} 文字を超えています。"
        )


def truncate_to_cell(text: str, limit: int = EXCEL_MAX_CHARS) -> str:
    """`text` cut to at most `limit` UTF-16 units, never inside a surrogate pair.

    For our own texts (messages, comments) only; department values are never cut: a writer
    raises instead.
    """
    if len(text) <= limit // 2 or utf16_len(text) <= limit:
        return text
    cut = text.encode("utf-16-le")[: limit * 2]
    return cut.decode("utf-16-le", errors="ignore")  # a half pair at the end is dropped


CUT_MARK = "(以下略。全文は実行レポート)"


def bounded_text(text: str, limit: int = EXCEL_MAX_CHARS) -> str:
    """One of our texts (a file name, a message, a reason) that fits in a cell: whole when it fits,
    else cut at a character and followed by CUT_MARK. Never for a department's value, which a
    writer refuses rather than change."""
    if fits_in_cell(text) and (limit >= EXCEL_MAX_CHARS or utf16_len(text) <= limit):
        return text
    return truncate_to_cell(text, limit - utf16_len(CUT_MARK)) + CUT_MARK


def bounded_list(items: Iterable[str], sep: str = "\n", limit: int = EXCEL_MAX_CHARS) -> str:
    """Our list of texts (file names, senders) joined by `sep` so that it fits in a cell: the items
    that fit, then 「ほか N 件(全文は実行レポート)」 for the rest. Whatever the number or length of
    the items, the result is at most `limit` UTF-16 units."""
    items = list(items)
    whole = sep.join(items)
    if utf16_len(whole) <= limit:
        return whole
    kept: list[str] = []
    size = 0
    tail_room = utf16_len(f"{sep}ほか {len(items):,} 件(全文は実行レポート)")
    item_room = limit - tail_room
    for item in items:
        item = bounded_text(item, max(item_room // 4, 200))  # one long name cannot crowd out the rest
        add = utf16_len(item) + (utf16_len(sep) if kept else 0)
        if size + add > item_room:
            break
        kept.append(item)
        size += add
    rest = len(items) - len(kept)
    return sep.join([*kept, f"ほか {rest:,} 件(全文は実行レポート)"])


def clean_xml(text: str) -> str:
    """`text` without the control characters XML cannot hold (TAB, LF and CR stay)."""
    return _ILLEGAL_XML.sub("", text)


# --- cell names ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def column_letters(col: int) -> str:
    """Excel's letters for column number `col`, counted from 1: 1 -> "A", 28 -> "AB", 16384 -> "XFD"."""
    if col < 1:
        raise ValueError(f"column numbers start at 1, not {col}")
    out = ""
    while col:
        col, rem = divmod(col - 1, 26)
        out = chr(65 + rem) + out
    return out


def cell_name(row: int, col: int) -> str:
    """The A1 name of the cell at `row` and `col`, both counted from 1."""
    return f"{column_letters(col)}{row}"


# --- width and height ------------------------------------------------------------------------------


def display_width(text: str) -> int:
    """Display width in Excel column units: full-width (and ambiguous) characters count 2."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(ch) in "FWA" else 1 for ch in text)


def fit_width(minimum: float, texts: Iterable[str], *, cap: float) -> float:
    """A column width that shows the widest of `texts` (with a margin), within [minimum, cap]."""
    widest = max((display_width(t) for t in texts if t), default=0)
    return max(minimum, min(cap, widest * 1.1 + 2))


def approx_lines(text: str, width: float) -> int:
    """Wrapped lines of mostly Japanese text in a column `width` units wide, fast.

    Every character counts full width, which is a little generous for Latin text and needs no
    per-character look-up (the master estimates 60,000 rows this way).
    """
    usable = max(width - 1, 1)
    return int(2 * len(text) / usable) + 1 + text.count("\n") if text else 1


def wrapped_lines(text: str, width: float) -> int:
    """Wrapped lines of `text` in a column `width` units wide, measured paragraph by paragraph."""
    usable = max(width - CELL_PADDING, 1.0)
    return sum(max(1, math.ceil(display_width(part) / usable)) for part in str(text).split("\n"))


def line_height(font_size: float) -> float:
    """Points per wrapped line of text at `font_size` points."""
    return font_size * LINE_SPACING


def row_height(
    cells: Iterable[tuple[str, float]], font_size: float, *, min_lines: int = 1, exact: bool = False
) -> float:
    """Points for a row that shows every (text, column width) pair wrapped, at least `min_lines`.

    `exact` measures display widths (`wrapped_lines`); otherwise the fast `approx_lines`. Capped
    at Excel's 409 points. An estimate: Excel's own auto-fit depends on the PC's fonts.
    """
    count = wrapped_lines if exact else approx_lines
    lines = max((count(text, width) for text, width in cells), default=1)
    # rounded as a workbook stores it, so a height read back compares equal to its estimate
    return round(min(MAX_ROW_HEIGHT, line_height(font_size) * max(lines, min_lines) + font_size * ROW_PADDING), 2)
