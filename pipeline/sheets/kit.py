"""The sheet kit: what every workbook we write (the master, the summary, the published document)
is made of. Fonts and the few cell formats, the inert-text writer, a new workbook's options and
fixed properties, print set-up, merged spans, charts in the UD font, and the row-height and time
helpers. No sheet is written here; the sheet modules of pipeline.sheets and pipeline.publish use it.

Decisions, and why:

* Department text is inert. A workbook is created with strings_to_formulas, strings_to_urls and
  strings_to_numbers off, and every text goes through `Styles.put` (`write_string`). So each text
  cell is a shared string (t="s") and no sheet holds an <f> element. No formula is written at all:
  counts and shares are computed in Python, so they are deterministic and need no recalculation.
* Text is not altered. The published answers must round-trip to the committee exactly, so the
  OWASP "'" prefix is not added to the value; in .xlsx it would show up as text. Instead, a text
  that Excel would read as a formula if retyped (`celltext.needs_quote`: = + - @ or their
  full-width forms, TAB, CR or LF, also after leading spaces) gets a `quote_prefix` style. It is
  how Excel itself stores a typed "'=…": the value is unchanged, the formula bar shows the
  apostrophe, and F2+Enter keeps it as text. Excel's own "save as CSV" drops the style, so a CSV
  export must do its own neutralising.
* Excel's 32,767-character cell limit is counted in UTF-16 units (`celltext.fits_in_cell`). A
  department's value longer than that raises ValueError instead of being silently truncated.
  Our own texts built from file names, messages and lists go through `bounded` / `bounded_list`
  (`celltext.bounded_text` / `bounded_list`) first, so they always fit: no number or length of
  inputs makes the writer refuse.
* Speed. About 20 format objects are made once and reused; rating colours are one conditional
  format per letter over the whole column (`rating_colours`), never per row.
* Japanese layout. Every cell is in BIZ UDPゴシック, with no theme "scheme" (otherwise Excel would
  show the theme's font); the standard font, which sets the column-width unit, is its monospaced
  twin BIZ UDゴシック, so a full-width character is 2 units as the widths assume
  (pipeline.printing). Long columns wrap. Row heights are estimated from the text and set
  explicitly: not every reader grows wrapped rows by itself (LibreOffice, viewers, print preview),
  and Excel never grows merged cells.
* Determinism. The document properties use a fixed `created` (1 April of the plan's fiscal
  year), never now(); see pipeline.master.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from pipeline import celltext, printing, xlsxfast
from pipeline.catalog import Catalog, Project
from pipeline.layout import OUTPUT_PROPERTY, output_mark
from pipeline.times import shown_wall_clock, wall_clock

FONT = printing.TEXT_FONT  # every cell and chart
UNIT_FONT = printing.UNIT_FONT  # the standard font: fixes the column-width unit (pipeline.printing)
FONT_SIZE = 11
ROW_PT = 18  # a one-line row of the 11 pt font
# Count sheets pin their default row height and set every row's height, so charts land where
# planned and the page breaks fall where planned (pipeline.printing).
COUNTS_ROW_PT = ROW_PT

# The letter is always shown; the colour only helps. Light fills with dark text stay readable
# in grayscale print and for colour-blind readers (UD).
RATING_COLOURS = {
    "A": ("#C6EFCE", "#006100"),  # green
    "B": ("#DDEBF7", "#1F3864"),  # light blue
    "C": ("#FCD5B4", "#833C0C"),  # orange
    "D": ("#FFC7CE", "#9C0006"),  # red
}
CHART_COLOURS = {"A": "#4E9A4E", "B": "#5B9BD5", "C": "#ED7D31", "D": "#C00000"}

_WORKBOOK_OPTIONS: dict[str, Any] = {
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
    # font_scheme none: without it xlsxwriter marks fonts scheme="minor" and Excel would show
    # the theme's font instead of the UD font. charset 128 = SHIFTJIS, family 3 = modern, as
    # Excel itself writes for Japanese fonts. The standard font is the monospaced UD font (a
    # column-width unit is then half an em, as the widths assume); every format names FONT.
    "default_format_properties": {
        "font_name": UNIT_FONT,
        "font_size": FONT_SIZE,
        "font_scheme": "none",
        "font_charset": printing.FONT_CHARSET,
        "font_family": printing.FONT_FAMILY,
    },
}

_DATETIME_FORMAT = "yyyy/mm/dd hh:mm"
# Digits of the proportional UD font are 0.76 em, one and a half width units: "2025/05/30 14:05"
# needs 23 units, "31～34" 9 (a narrower cell shows ### or cuts the number).
DATETIME_WIDTH = 23
_PERCENT_FORMAT = "0.0%"

BORDER = {"border": 1, "border_color": "#808080"}
VALIGN_TOP = {"valign": "top"}
FORMATS: dict[str, dict[str, Any]] = {
    "title": {"bold": True, "font_size": 14},
    "section": {"bold": True, "font_size": 12},
    "note": {"font_color": "#595959"},
    "empty": {"italic": True, "font_color": "#808080"},
    "header": {**BORDER, "bold": True, "bg_color": "#DDEBF7", "text_wrap": True,
               "align": "center", "valign": "vcenter"},
    "text": {**BORDER, **VALIGN_TOP},
    "wrap": {**BORDER, **VALIGN_TOP, "text_wrap": True},
    "center": {**BORDER, **VALIGN_TOP, "align": "center"},
    "int": {**BORDER, **VALIGN_TOP, "align": "center", "num_format": "0"},
    "percent": {**BORDER, **VALIGN_TOP, "num_format": _PERCENT_FORMAT},
    "points": {**BORDER, **VALIGN_TOP, "align": "center", "num_format": "+0.0;-0.0;0.0"},
    "datetime": {**BORDER, **VALIGN_TOP, "align": "left", "num_format": _DATETIME_FORMAT},
    "rating": {**BORDER, **VALIGN_TOP, "align": "center", "bold": True},
    "missing": {**BORDER, **VALIGN_TOP, "text_wrap": True, "italic": True, "font_color": "#808080"},
    "total_text": {**BORDER, "bold": True, "bg_color": "#F2F2F2"},
    "total_int": {**BORDER, "bold": True, "bg_color": "#F2F2F2", "align": "center", "num_format": "0"},
    "total_percent": {**BORDER, "bold": True, "bg_color": "#F2F2F2", "num_format": _PERCENT_FORMAT},
    "struct_label": {**BORDER, "bold": True, "bg_color": "#F2F2F2", "valign": "vcenter"},
    "struct_text": {**BORDER, "valign": "vcenter"},
    # Goal sheets print groups the way the published table does: a project's (or measure's)
    # cells have no line between their rows; the next group's top border closes the group.
    "group_first_center": {"left": 1, "right": 1, "top": 1, "left_color": "#808080",
                           "right_color": "#808080", "top_color": "#808080", **VALIGN_TOP, "align": "center"},
    "group_first_wrap": {"left": 1, "right": 1, "top": 1, "left_color": "#808080",
                         "right_color": "#808080", "top_color": "#808080", **VALIGN_TOP, "text_wrap": True},
    "group_cont": {"left": 1, "right": 1, "left_color": "#808080", "right_color": "#808080"},
    "table_end": {"top": 1, "top_color": "#808080"},
}
# The last row of a printed page closes the table there: the group cells get a bottom border
# (the next page begins with the headings and the group's labels again).
_FOOT = {"bottom": 1, "bottom_color": "#808080"}
FORMATS.update({f"{name}_foot": {**FORMATS[name], **_FOOT}
                for name in ("group_first_center", "group_first_wrap", "group_cont")})


# --- the workbook and its styles ----------------------------------------------------------------


class Styles:
    """The workbook's few formats, made once; `put` picks the quote-prefixed twin when needed."""

    def __init__(self, wb: xlsxwriter.Workbook) -> None:
        self.wb = wb
        self.fmt = {name: wb.add_format({"font_name": FONT, **props}) for name, props in FORMATS.items()}
        self._quoted: dict[str, Any] = {}
        # Conditional-format (dxf) formats: fill and dark text only, so the cell's font stays.
        self.rating_dxf = {x: wb.add_format({"bg_color": bg, "font_color": fg})
                           for x, (bg, fg) in RATING_COLOURS.items()}

    def quoted(self, name: str) -> Any:
        if name not in self._quoted:
            self._quoted[name] = self.wb.add_format({"font_name": FONT, **FORMATS[name], "quote_prefix": True})
        return self._quoted[name]

    def put(self, ws: Worksheet, row: int, col: int, text: str, name: str) -> None:
        """Write text as an inert string (celltext's rules); raise instead of truncating."""
        if not text:
            # A real blank, not an empty string: Excel's COUNTA and filters treat "" as filled.
            ws.write_blank(row, col, None, self.fmt[name])
            return
        if not celltext.fits_in_cell(text):
            celltext.check_fits(text, f"シート「{ws.name}」のセル {cell_name(row, col)}")
        ws.write_string(row, col, text, self.quoted(name) if celltext.needs_quote(text) else self.fmt[name])

    def put_time(self, ws: Worksheet, row: int, col: int, iso: str, name: str = "datetime") -> None:
        """An ISO time as an Excel date-time (wall-clock time as received); other text as text."""
        when = wall_clock(iso)
        if when is None:
            self.put(ws, row, col, iso, "text")
        else:
            ws.write_datetime(row, col, when, self.fmt[name])

    def put_project_label(self, ws: Worksheet, row: int, col: int, project: Project, name: str) -> None:
        # "9" as a number (sorts and filters as one); "31～34" as printed.
        if project.label.isdigit():
            ws.write_number(row, col, int(project.label), self.fmt[name])
        else:
            self.put(ws, row, col, project.label, name)


def new_workbook(path: Path, catalog: Catalog, kind: str, mark: str, generated: str) -> xlsxwriter.Workbook:
    """A workbook at `path` (written through pipeline.xlsxfast) with our options, our output mark
    (`mark`: master, summary, publish) and fixed document properties."""
    wb = xlsxfast.Workbook(str(path), _WORKBOOK_OPTIONS)
    # Ours: dropped into the inbox, it is recognised and never read as a return (own-output).
    wb.set_custom_property(OUTPUT_PROPERTY, output_mark(mark, catalog, generated))
    wb.set_properties(
        {
            "title": f"{catalog.title} {catalog.year_label} {kind}",
            "subject": catalog.plan,
            "author": "地域福祉課",
            "company": "福祉保健部地域福祉課",
            "comments": f"plan {catalog.year} version {catalog.version}",
            # Fixed, so identical inputs give identical bytes (see the module docstring).
            "created": datetime(catalog.year_western, 4, 1),
        }
    )
    return wb


# --- print set-up -----------------------------------------------------------------------------


def page_header(catalog: Catalog, generated: str) -> str:
    """The printed header: the plan and year on the left, the sheet's name in the centre, the
    latest receipt on the right."""
    left = _escape_header(f"{catalog.title} {catalog.year_label}")
    right = _escape_header(f"最新受信 {shown_wall_clock(generated)}")
    return f"&L{left}&C&A&R{right}"


PAGE_A3 = printing.Page(paper=printing.A3)
PAGE_A4 = printing.Page(paper=printing.A4)


def setup_print(ws: Worksheet, header: str, *, page: printing.Page = PAGE_A3, repeat: int | None = None,
                scale: int | None = None, breaks: Sequence[int] = ()) -> None:
    """Paper, margins, header and footer. Without `scale`: one page wide, as many tall as needed
    (robust to printer drivers; for sheets whose every row names its 事業). With `scale`: that
    fixed scale and the manual `breaks` (pipeline.printing: Excel ignores manual breaks on a
    sheet fitted to pages)."""
    ws.set_paper(page.paper)  # 8 = A3, 9 = A4
    if page.landscape:
        ws.set_landscape()
    else:
        ws.set_portrait()
    if scale is None:
        ws.fit_to_pages(1, 0)
    else:
        ws.set_print_scale(scale)
        if breaks:
            ws.set_h_pagebreaks(list(breaks))
    ws.set_margins(**page.margins())
    # The header and footer sit inside the top and bottom margins, clear of the cells.
    ws.set_header(header, {"margin": page.header})
    ws.set_footer("&C&P / &N", {"margin": page.footer})
    if repeat is not None:
        ws.repeat_rows(repeat)


def write_layout(ws: Worksheet, layout: printing.Layout, write: Any) -> None:
    """Write each placed line with `write(placed)`, every row at its explicit height."""
    for placed in layout.placed:
        ws.set_row(placed.row, placed.height)
        write(placed)


def put_plain_line(ws: Worksheet, st: Styles, r: int, item: tuple[Any, ...]) -> bool:
    """Write the line kinds every paginated count sheet shares (title, section, note, empty, header);
    False for any other kind, which the sheet writes itself."""
    kind = item[0]
    if kind in ("title", "section", "note", "empty"):
        st.put(ws, r, 0, item[1], kind)
    elif kind == "header":
        for c, h in enumerate(item[1]):
            st.put(ws, r, c, h, "header")
    else:
        return False
    return True


def spacer() -> printing.Line:
    """A blank line of a planned layout."""
    return printing.Line(ROW_PT, None, spacer=True)


# --- merged spans ---------------------------------------------------------------------------


def merge_row(ws: Worksheet, r: int, c0: int, c1: int, fmt: Any) -> None:
    """ws.merge_range(r, c0, r, c1, "", fmt), without xlsxwriter's check that the range overlaps no
    other: it keeps a dict entry per merged cell (150,000 of them for the C/D rows of a 60,000-row
    night). Our layouts place each range once; the XML is the same (tests/test_xlsxfast.py)."""
    if ws._check_dimensions(r, c0) or ws._check_dimensions(r, c1):
        return
    ws.merge.append([r, c0, r, c1])
    ws._write(r, c0, "", fmt)
    for c in range(c0 + 1, c1 + 1):
        ws._write_blank(r, c, "", fmt)


def span_row(ws: Worksheet, st: Styles, r: int, spans: Sequence[tuple[int, int]], p: Project,
             values: Sequence[str], styles: Sequence[str]) -> None:
    """A row of a table whose columns span several sheet columns: the project's label in the first
    span, then `values`, each cell merged over its span."""
    for (c0, c1), value, style in zip(spans, (p.label, *values), styles, strict=True):
        if c1 > c0:
            merge_row(ws, r, c0, c1, st.fmt[style])
        if c0 == 0:
            st.put_project_label(ws, r, 0, p, style)
        else:
            st.put(ws, r, c0, value, style)


def span_headers(ws: Worksheet, st: Styles, r: int, spans: Sequence[tuple[int, int]],
                 headers: Sequence[str]) -> None:
    """The heading row of such a table: each heading merged over its span."""
    for (c0, c1), h in zip(spans, headers, strict=True):
        if c1 > c0:
            merge_row(ws, r, c0, c1, st.fmt["header"])
        st.put(ws, r, c0, h, "header")


# --- charts -----------------------------------------------------------------------------------

CHART_WIDTH = 560


def rows_for_height(pixels: int) -> int:
    """Rows of the count sheets' default height that a chart of `pixels` covers, plus one."""
    return math.ceil(pixels / (COUNTS_ROW_PT * 4 / 3)) + 1


# The smallest chart text on paper (labels, legend) and the chart title, in points.
CHART_TEXT_PT = 9
CHART_TITLE_PT = 11


def chart_font(size: float, scale: int = 100, **style: Any) -> dict[str, Any]:
    """A chart text's font: the UD font at `size` points on paper, for a sheet printed at
    `scale` % (a chart shrinks with its sheet), in whole points as Excel's font box has them."""
    return {"name": FONT, "size": math.ceil(size * 100 / scale), "charset": printing.FONT_CHARSET, **style}


def new_chart(wb: xlsxwriter.Workbook, options: dict[str, Any]) -> Any:
    """wb.add_chart, whose text names the UD font for East Asian and complex script text too.

    xlsxwriter writes a chart font as <a:latin> only; Excel and LibreOffice then set Japanese
    characters in the theme's or the system's East Asian font (Noto Sans CJK on Linux, 游ゴシック
    in Excel), not in the font named. The chart's own writer is given <a:ea> and <a:cs> beside
    <a:latin>, in the schema's order (latin, ea, cs)."""
    chart = wb.add_chart(options)
    write_latin = chart._write_a_latin

    def write_fonts(attributes: list[tuple[str, Any]]) -> None:
        write_latin(attributes)
        chart._xml_empty_tag("a:ea", attributes)
        chart._xml_empty_tag("a:cs", attributes)

    chart._write_a_latin = write_fonts
    return chart


# --- helpers ----------------------------------------------------------------------------------


def rating_colours(st: Styles, ws: Worksheet, r0: int, c0: int, r1: int, c1: int) -> None:
    """One conditional format per letter over the whole rating range (never per row)."""
    for letter, fmt in st.rating_dxf.items():
        ws.conditional_format(r0, c0, r1, c1, {"type": "cell", "criteria": "==", "value": f'"{letter}"',
                                               "format": fmt})


# The text rules live in pipeline.celltext (shared with the templates and the feedback copies).


def bounded(text: str) -> str:
    """One of our texts (a file name, a message, a reason), cut to fit a cell when it must."""
    return celltext.bounded_text(text)


def bounded_list(items: Sequence[str]) -> str:
    """Our list (file names, senders) in one cell, one per line, with 「ほか N 件」 when it must."""
    return celltext.bounded_list(items, "\n")


def row_height(cells: Iterable[tuple[str, float]], *, min_lines: int = 1, exact: bool = False) -> float:
    """Points for a row of wrapped cells: celltext's fast estimate at FONT_SIZE
    (`exact`: measured widths, for short texts), rounded up to whole pixels. Set explicitly: not
    every reader (LibreOffice, viewers, print preview of a never-edited file) grows rows to fit
    wrapped text by itself, and the page breaks are planned from these heights."""
    return printing.snap(celltext.row_height(cells, FONT_SIZE, min_lines=min_lines, exact=exact))


def _escape_header(text: str) -> str:
    return text.replace("&", "&&")


def cell_name(row: int, col: int) -> str:
    """A cell's A1 name, for messages, from xlsxwriter's row and column (counted from 0)."""
    return celltext.cell_name(row + 1, col + 1)


