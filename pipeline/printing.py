"""How our workbooks fall onto paper: fonts, page geometry, print scale and page breaks.

One job: plan, before a sheet is written, which rows go on which printed page, so that every
page can be read on its own (docs/printing.md); and hand a finished workbook to LibreOffice for
its PDF. The planning is pure: no Excel library, no I/O. The writers
(pipeline.sheets, pipeline.publish) describe a sheet as blocks of lines with explicit heights;
`paginate` returns each line's row and page and the manual page breaks; the writer then writes
the rows, sets every row's height and the breaks, and prints at the fixed `print_scale`.

Why a fixed scale and manual breaks rather than "fit to one page wide": Excel ignores manual
page breaks when a sheet is set to fit to pages (and so would a reader's own print settings),
so where a break must fall in a given place (a chart, a table, a project's rows) the scale has
to be fixed. A fixed scale needs the printed width to be known in advance, which it is when
the width unit is known:

* Column widths are counted in the digit width of the workbook's standard ("Normal") font,
  in Excel and in LibreOffice alike. Our standard font is the monospaced BIZ UDゴシック, whose
  digits are half an em: a width unit is 7 px (5.25 pt) in Excel and 5.5 pt in LibreOffice at
  11 pt. Its proportional twin BIZ UDPゴシック, used in every cell, has 0.76 em digits: as the
  standard font it would make a unit 11 px, so the columns would print half as wide again as
  the text widths they were sized for (full-width character = 2 units). The Japanese fallback
  fonts (MS ゴシック, 游ゴシック) also have digits of about half an em.
* Every row height is set explicitly (celltext's estimates, rounded up to whole pixels), so
  the height of each page is known too: LibreOffice never grows a row by itself, and Excel
  does not grow a row whose height is set.
* The scale leaves `WIDTH_FILL` of the page width unused, so a PC that substitutes a font with
  digits a little wider still prints one page wide; the page height keeps `HEIGHT_FILL`.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Fonts ----------------------------------------------------------------------------------------

TEXT_FONT = "BIZ UDPゴシック"  # every cell, chart and comment we write
UNIT_FONT = "BIZ UDゴシック"  # the workbook's standard font: fixes the column-width unit (see above)
# Named in docs/printing.md: what Excel on a Windows PC without the BIZ UD fonts should be given
# (both ship with Windows 8.1 and later; their digits are also half an em).
FALLBACK_TEXT_FONT = "游ゴシック"
FALLBACK_UNIT_FONT = "ＭＳ ゴシック"
# Excel's attributes for a Japanese Gothic font: charset 128 (SHIFTJIS) and family 3 (modern),
# so that a PC without the font substitutes a Japanese Gothic, not a Latin or a Mincho face.
FONT_CHARSET = 128
FONT_FAMILY = 3
# A header or footer names its font (&"name,style"), else it takes the standard font.
HEADER_FONT = f"{TEXT_FONT},Regular"

# Paper ----------------------------------------------------------------------------------------

A3, A4 = 8, 9  # Excel's paper codes
_PAPER_PT = {A3: (841.89, 1190.55), A4: (595.28, 841.89)}  # portrait width, height
POINTS_PER_INCH = 72.0

PIXEL_PT = 0.75  # one pixel at 96 dpi: Excel rounds row heights to whole pixels
UNIT_PT = 5.5  # one column-width unit at 11 pt: half an em (LibreOffice 5.5 pt, Excel 7 px = 5.25 pt)
UNIT_PADDING = 0.72  # units of cell padding in each column (5 px at 7 px a unit)
WIDTH_FILL = 0.92
HEIGHT_FILL = 0.97
STANDARD_FONT_SIZE = 11.0


@dataclass(frozen=True)
class Page:
    """A printed page: paper, orientation and margins (inches, as Excel's page setup)."""

    paper: int = A3
    landscape: bool = True
    left: float = 0.4
    right: float = 0.4
    top: float = 0.8
    bottom: float = 0.7
    header: float = 0.3
    footer: float = 0.3

    @property
    def size_pt(self) -> tuple[float, float]:
        w, h = _PAPER_PT[self.paper]
        return (h, w) if self.landscape else (w, h)

    @property
    def width_pt(self) -> float:
        """The printable width between the side margins, in points."""
        return self.size_pt[0] - (self.left + self.right) * POINTS_PER_INCH

    @property
    def height_pt(self) -> float:
        """The printable height between the top and bottom margins, in points."""
        return self.size_pt[1] - (self.top + self.bottom) * POINTS_PER_INCH

    def margins(self) -> dict[str, float]:
        return {"left": self.left, "right": self.right, "top": self.top, "bottom": self.bottom}


def columns_pt(widths: Iterable[float], font_size: float = STANDARD_FONT_SIZE) -> float:
    """The printed width at 100 % of columns of these widths (units of the standard font)."""
    unit = UNIT_PT * font_size / STANDARD_FONT_SIZE
    return sum((w + UNIT_PADDING) * unit for w in widths)


def print_scale(widths: Iterable[float], page: Page, *, fill: float = WIDTH_FILL) -> int:
    """The print scale (%) that puts the columns on one page wide with room to spare."""
    total = columns_pt(widths)
    if total <= 0:
        return 100
    return max(10, min(100, math.floor(page.width_pt * fill / total * 100)))


def capacity_pt(page: Page, scale: int, *, fill: float = HEIGHT_FILL) -> float:
    """Sheet points that fit in one page's printable height at `scale` %."""
    return page.height_pt * fill * 100 / scale


def snap(height: float) -> float:
    """A row height rounded up to whole pixels, the heights Excel and LibreOffice really use."""
    return math.ceil(round(height / PIXEL_PT, 6)) * PIXEL_PT


def fit_a4_landscape(ws: Any, margins: Mapping[str, float]) -> None:
    """An openpyxl sheet (a template, a 差し戻し copy) printed on A4 landscape, one page wide and as
    many pages tall as it needs, with `margins` in inches. Only sets the sheet's attributes: this
    module imports no Excel library."""
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = ws.ORIENTATION_LANDSCAPE
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    for side, inches in margins.items():
        setattr(ws.page_margins, side, inches)


# Pagination -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One row to print. `group`: consecutive lines with the same (non-None) group stay on one
    page when they fit on one. `top_height`: the height when the line begins a page (it then
    repeats its group's labels); None means `height`. `spacer`: a blank line, dropped at the top
    of a page."""

    height: float
    item: Any = None
    group: Hashable | None = None
    top_height: float | None = None
    spacer: bool = False


@dataclass
class Block:
    """Lines that belong together: a title with its table, a chart, a table's rows.

    `keep`: start the block on a new page rather than split it, when it fits on one page.
    `header`: its first `header` lines (a section title, the column headings) are printed again
    at the top of every page the block continues on.
    """

    lines: list[Line]
    keep: bool = False
    header: int = 0

    @property
    def height(self) -> float:
        return sum(x.height for x in self.lines)


@dataclass(frozen=True)
class Placed:
    line: Line
    row: int  # 0-based sheet row
    page: int  # 1-based
    height: float  # the height to set on the row
    top: bool = False  # the first line of its page (after any repeated header)
    continued: bool = False  # top, and inside a group that began on an earlier page
    repeated: bool = False  # a copy of its block's header at the top of a continuation page


@dataclass
class Layout:
    placed: list[Placed] = field(default_factory=list)
    breaks: list[int] = field(default_factory=list)  # 0-based rows that begin a new page

    @property
    def pages(self) -> int:
        return len(self.breaks) + 1

    def rows_of(self, item: Any) -> list[int]:
        """The rows (not header copies) where `item` was placed."""
        return [p.row for p in self.placed if p.line.item is item and not p.repeated]


def paginate(blocks: Sequence[Block], capacity: float, *, first_row: int = 0, title_height: float = 0.0) -> Layout:
    """Place `blocks` on pages of `capacity` sheet points.

    `title_height`: rows the application repeats at the top of every page after the first
    (the sheet's print titles), which take that much room from each later page. Groups and
    kept blocks that do not fit on what is left of a page move to the next one; anything taller
    than a whole page is split between rows, and the first line on the new page is marked
    `continued` so the writer repeats its group's labels.
    """
    out = Layout()
    state = _State(capacity=capacity, title_height=title_height, row=first_row)
    for block in blocks:
        _place_block(out, state, block)
    return out


@dataclass
class _State:
    capacity: float
    title_height: float
    row: int
    page: int = 1
    used: float = 0.0
    base: float = 0.0  # what the page's repeated rows take (print titles on later pages, block headers)
    last_group: Hashable | None = None

    @property
    def empty(self) -> bool:
        return self.used <= self.base + 1e-6

    @property
    def room(self) -> float:
        return self.capacity - self.used


def _place_block(out: Layout, st: _State, block: Block) -> None:
    lines = block.lines
    if not lines:
        return
    header = lines[: block.header]
    header_h = sum(x.height for x in header)
    fresh = st.capacity - st.title_height  # room on a new page
    if block.keep and block.height > st.room and not st.empty and block.height <= fresh:
        _new_page(out, st)
    begun = False  # some of the block is placed: a new page repeats its header
    for unit in _units(lines, block.header):
        h = _unit_height(unit, st.empty)
        if h <= st.room:
            _put_all(out, st, unit)
            begun = True
            continue
        if not st.empty and h + (header_h if begun else 0.0) <= fresh:
            _new_page(out, st)
            _repeat(out, st, header if begun else [])
            _put_all(out, st, unit)
            begun = True
            continue
        # taller than what is left and than a whole page: split between lines
        for line in unit:
            need = (line.top_height or line.height) if st.empty else line.height
            if need > st.room and not st.empty:
                _new_page(out, st)
                _repeat(out, st, header if begun else [])
            _put(out, st, line)
            begun = True


def _units(lines: list[Line], header: int) -> list[list[Line]]:
    """Runs of lines kept together: each group, each ungrouped line; the block's header lines
    stay with the first run after them."""
    runs: list[list[Line]] = []
    for line in lines[header:]:
        if runs and line.group is not None and runs[-1][-1].group == line.group:
            runs[-1].append(line)
        else:
            runs.append([line])
    if header:
        first = lines[:header]
        if runs:
            runs[0] = first + runs[0]
        else:
            runs = [first]
    return runs


def _unit_height(unit: list[Line], at_top: bool) -> float:
    first = unit[0]
    h = (first.top_height or first.height) if at_top else first.height
    return h + sum(x.height for x in unit[1:])


def _new_page(out: Layout, st: _State) -> None:
    out.breaks.append(st.row)
    st.page += 1
    st.used = st.base = st.title_height


def _repeat(out: Layout, st: _State, header: list[Line]) -> None:
    for line in header:
        out.placed.append(Placed(line, st.row, st.page, snap(line.height), repeated=True))
        st.row += 1
        st.used += line.height
    st.base = st.used


def _put_all(out: Layout, st: _State, unit: list[Line]) -> None:
    for line in unit:
        _put(out, st, line)


def _put(out: Layout, st: _State, line: Line) -> None:
    top = st.empty
    if top and line.spacer and out.placed:
        return  # a blank line at the top of a page is left out
    height = (line.top_height or line.height) if top and out.placed else line.height
    continued = top and bool(out.placed) and line.group is not None and line.group == st.last_group
    out.placed.append(Placed(line, st.row, st.page, snap(height), top=top, continued=continued))
    st.row += 1
    st.used += height
    st.last_group = line.group


# LibreOffice ------------------------------------------------------------------------------------


def find_soffice(configured: str = "") -> str | None:
    """LibreOffice's soffice program: the configured path, else `soffice` on PATH, else the usual
    install folders on Windows. None when there is none."""
    if configured:
        path = Path(configured)
        return str(path) if path.is_file() else None
    found = shutil.which("soffice") or shutil.which("soffice.exe")
    if found:
        return found
    if os.name == "nt":  # pragma: no cover - Windows only
        for base in (os.environ.get("PROGRAMFILES", ""), os.environ.get("PROGRAMFILES(X86)", "")):
            candidate = Path(base) / "LibreOffice" / "program" / "soffice.exe"
            if base and candidate.is_file():
                return str(candidate)
    return None


def font_installed(family: str) -> bool | None:
    """Whether a font family is installed on this machine: True/False, None when it cannot tell."""
    if os.name == "nt":  # pragma: no cover - Windows only
        fonts = Path(os.environ.get("WINDIR", r"C:\Windows")) / "Fonts"
        local = Path(os.environ.get("LOCALAPPDATA", "")) / "Microsoft" / "Windows" / "Fonts"
        names = {"BIZ UDPゴシック": "BIZ-UDGothic", "BIZ UDゴシック": "BIZ-UDGothic"}
        stem = names.get(family)
        if stem is None:
            return None
        return any(any(d.glob(f"{stem}*")) for d in (fonts, local) if d.is_dir())
    fc_list = shutil.which("fc-list")
    if not fc_list:
        return None
    try:
        out = subprocess.run([fc_list, ":", "family"], capture_output=True, text=True, timeout=30,
                             check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return any(family in line.split(",") for line in out.splitlines())


def uno_python(soffice: str) -> str | None:
    """A Python that can drive LibreOffice (has its `uno` module): LibreOffice's own (Windows,
    macOS: program/python beside soffice), else the system's python3 (Debian: python3-uno).
    None when there is none."""
    program = Path(soffice).resolve().parent
    # python3 on PATH may be a virtual environment's; the system's is on the default path.
    candidates = [str(program / "python.exe"), str(program / "python"), shutil.which("python3") or "",
                  shutil.which("python3", path=os.defpath) or ""]
    for candidate in candidates:
        if not candidate or not Path(candidate).is_file():
            continue
        try:
            probe = subprocess.run([str(candidate), "-c", "import uno"], capture_output=True, timeout=60,
                                   check=False, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return str(candidate)
    return None


_LO_PDF = Path(__file__).with_name("lo_pdf.py")
# Japanese line breaking (禁則): no printed line begins with one of these or ends with one of those.
NO_LINE_START = "、。，．・：；？！ー）」』】〕"
NO_LINE_END = "（「『【〔"


def convert_to_pdf(paths: Sequence[Path], out_dir: Path, soffice: str, *, timeout: float = 600) -> list[Path]:
    """Each workbook's PDF (all its printable sheets) in `out_dir`, by one headless LibreOffice
    run with a fresh, throw-away user profile (so it neither waits for nor disturbs a LibreOffice
    the user has open). Raises RuntimeError when a PDF was not made.

    Where a Python with LibreOffice's `uno` module is at hand (`uno_python`), the conversion goes
    through pipeline/lo_pdf.py, which turns on Japanese line breaking (禁則) in every cell first:
    Calc leaves it off and an .xlsx cannot ask for it. Else `soffice --convert-to pdf`, whose
    lines may begin with 、 or 。."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pipeline-soffice-") as profile:
        profile_url = Path(profile).resolve().as_uri()
        python = uno_python(soffice)
        if python is not None:
            cmd = [python, str(_LO_PDF), soffice, profile_url, str(out_dir), NO_LINE_START, NO_LINE_END,
                   *(str(p) for p in paths)]
        else:
            cmd = [soffice, f"-env:UserInstallation={profile_url}", "--headless", "--norestore",
                   "--nolockcheck", "--convert-to", "pdf", "--outdir", str(out_dir), *(str(p) for p in paths)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)
    made = [out_dir / f"{Path(p).stem}.pdf" for p in paths]
    missing = [m.name for m in made if not m.is_file()]
    if missing:
        detail = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        raise RuntimeError(f"soffice: {', '.join(missing)} が作られませんでした({detail[0][:160]})")
    return made
