"""xlsxwriter, faster where a 60,000-row master spends its time, writing the same XML.

xlsxwriter stays the writer (docs/benchmarks.md says why). Three of its steps cost most of a
large master, and each is replaced here by code that produces exactly the bytes of the XML part
xlsxwriter itself would write (tests/test_xlsxfast.py compares every part with the stock
writer's, on texts chosen to hit every escaping rule):

* `FastSheet`: rows whose cells the caller renders as XML in one go (`add_row`), instead of one
  `write_*` call per cell stored in xlsxwriter's table of namedtuples and serialised cell by
  cell at close. Cell values, shared-string indexes, format (xf) indexes, row heights and spans
  are what the stock path gives; the rows go to a temporary file as they come, so the sheet does
  not hold them in memory.
* `_SharedStrings`: the shared-string table written in batches; only a string that needs
  escaping (&, <, >, control characters, `_xHHHH_`, leading or trailing blanks) goes through
  xlsxwriter's own per-string code.
* The zip: each part deflated at `COMPRESS_LEVEL`, a large part in 1 MiB pieces on
  `DEFLATE_THREADS` threads (zlib releases the GIL) and joined as one deflate stream, the way
  pigz does: each piece primed with the 32 KiB before it and ended with a sync flush. The
  pieces are fixed, so the same parts give the same bytes whatever the threads do. Entries carry
  a fixed time (1980-01-01) and mode.

Nothing here changes what a workbook contains: a cell reads back as it did.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import tempfile
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

import xlsxwriter
from xlsxwriter.packager import Packager
from xlsxwriter.sharedstrings import SharedStrings, _preserve_whitespace
from xlsxwriter.worksheet import Worksheet

# Level 1 deflates the master's 130 MB of shared strings 3× faster than zlib's default 6, for a
# file about 45 % larger (docs/benchmarks.md).
COMPRESS_LEVEL = 1
DEFLATE_THREADS = 2
_PIECE = 1 << 20
_WINDOW = 32 * 1024


# --- rows rendered in one go ----------------------------------------------------------------


class FastSheet(Worksheet):
    """A worksheet some of whose rows are given as rendered XML (`add_row`), after the rows
    written the usual way (a header): the usual rows must all come before the first rendered row,
    and every row of a 16-row block must cover the same columns (then `spans` is the one
    xlsxwriter computes)."""

    def __init__(self) -> None:
        super().__init__()
        self._fast_first: int | None = None
        self._fast_last = -1
        self._fast_cols: tuple[int, int] | None = None
        self._fast_fh: IO[str] | None = None
        self._xf_ready = False

    # The caller's side ----------------------------------------------------------------------

    def xf(self, fmt: Any) -> int:
        """The xf index of a format, assigned in the order the stock writer assigns it at close
        (cell by cell, row by row): the usual rows above are counted first."""
        if not self._xf_ready:
            self._xf_ready = True
            for row in sorted(self.table):
                for col in sorted(self.table[row]):
                    cell_format = self.table[row][col].format
                    if cell_format:
                        cell_format._get_xf_index()
        return int(fmt._get_xf_index())

    def shared(self, text: str) -> int:
        """The shared-string index of a text (as write_string stores it)."""
        return int(self.str_table._get_shared_string_index(text))

    def datetime_number(self, when: Any) -> float:
        return float(self._convert_date_time(when))

    def row_open(self, row: int, first_col: int, last_col: int, height_pt: float | None) -> str:
        """The <row> start tag xlsxwriter writes for a row with cells in first_col..last_col and
        set_row(row, height_pt)."""
        if self._fast_first is None:
            for r, cells in self.table.items():
                if cells and (r >= row or min(cells) < first_col or max(cells) > last_col):
                    raise ValueError("FastSheet: the usual rows must come first, within the same columns")
            self._fast_first = row
            self._fast_cols = (first_col, last_col)
            # closed in _write_rows, or with the sheet
            self._fast_fh = tempfile.TemporaryFile("w+", encoding="utf-8", dir=self.tmpdir or None)  # noqa: SIM115
        elif row <= self._fast_last or (first_col, last_col) != self._fast_cols:
            raise ValueError("FastSheet: rows in order, with the same columns")
        self._fast_last = row
        self._check_dimensions(row, first_col)
        self._check_dimensions(row, last_col)
        attrs = f' spans="{first_col + 1}:{last_col + 1}"'
        height = self.default_row_height if height_pt is None else int(height_pt * 4.0 / 3.0 + 0.5)
        if height != self.original_row_height or height != self.default_row_height:
            attrs += f' ht="{height * 0.75:.16g}" customHeight="1"'
        return f'<row r="{row + 1}"{attrs}>'

    def add_row(self, xml: str) -> None:
        """One rendered row (from row_open to </row>), in order."""
        assert self._fast_fh is not None
        self._fast_fh.write(xml)

    # xlsxwriter's side ----------------------------------------------------------------------

    def _calculate_spans(self) -> None:
        super()._calculate_spans()
        if self._fast_first is None or self._fast_cols is None:
            return
        first, last = self._fast_cols
        for block in range(self._fast_first // 16, self._fast_last // 16 + 1):
            self.row_spans[block] = f"{first + 1}:{last + 1}"

    def _write_rows(self) -> None:
        if self._fast_first is None or self._fast_fh is None:
            super()._write_rows()
            return
        rowmax = getattr(self, "dim_rowmax")  # noqa: B009  (untyped in xlsxwriter)
        self.dim_rowmax = self._fast_first - 1
        try:
            if self._fast_first > (self.dim_rowmin or 0):
                super()._write_rows()
        finally:
            self.dim_rowmax = rowmax
        self._calculate_spans()
        fh = self._fast_fh
        fh.seek(0)
        while chunk := fh.read(_PIECE):
            self.fh.write(chunk)
        fh.close()
        self._fast_fh = None


# --- the shared strings -----------------------------------------------------------------------

# What makes xlsxwriter change a string on its way into sharedStrings.xml (escapes, _xHHHH_).
_SPECIAL = re.compile("[\x00-\x08\x0b-\x1f&<>\ufffe\uffff]|_x[0-9a-fA-F]{4}_")


class _SharedStrings(SharedStrings):
    def _write_si(self, string: str) -> None:
        """xlsxwriter's own <si>, except that no string is ever written as raw XML.

        Stock xlsxwriter writes a string that starts with <r> and ends with </r> unescaped, as
        a rich string (it assumes write_rich_string made it). We write no rich strings, so such
        a string can only be a department's text: written as it is, it would put their XML into
        sharedStrings.xml (a workbook Excel must repair, or text of theirs where ours belongs).
        It is escaped like any other text."""
        string = self._escape_control_characters(string)
        attributes = [("xml:space", "preserve")] if _preserve_whitespace(string) else []
        self._xml_si_element(string, attributes)

    def _write_sst_strings(self) -> None:
        special = _SPECIAL.search
        out: list[str] = []
        write = self.fh.write
        for string in self.string_table.string_array:
            if special(string) or string[:1].isspace() or string[-1:].isspace():
                if out:
                    write("".join(out))
                    out.clear()
                self._write_si(string)  # xlsxwriter's own escaping
            else:
                out.append(f"<si><t>{string}</t></si>")
                if len(out) >= 4096:
                    write("".join(out))
                    out.clear()
        if out:
            write("".join(out))


class _Packager(Packager):
    def _write_shared_strings_file(self) -> None:
        sst = _SharedStrings()
        sst.string_table = self.workbook.str_table
        if not self.workbook.str_table.count:
            return
        sst._set_xml_writer(self._filename("xl/sharedStrings.xml"))
        sst._assemble_xml_file()


# --- the workbook -------------------------------------------------------------------------------


class Workbook(xlsxwriter.Workbook):
    """xlsxwriter.Workbook with the faster shared strings and zip (see the module docstring)."""

    def _get_packager(self) -> Packager:
        return _Packager()

    def _store_workbook(self) -> None:
        # xlsxwriter's own _store_workbook up to the zip, which is ours.
        packager = self._get_packager()
        if not self.worksheets():
            self.add_worksheet()
        if self.worksheet_meta.activesheet == 0:
            self.worksheets_objs[0].selected = 1
            self.worksheets_objs[0].hidden = 0
        for sheet in self.worksheets():
            if sheet.index == self.worksheet_meta.activesheet:
                sheet.active = 1
        if self.vba_project:
            for sheet in self.worksheets():
                if sheet.vba_codename is None:
                    sheet.set_vba_name()
        self._prepare_sst_string_data()
        self._prepare_vml()
        self._prepare_defined_names()
        self._prepare_drawings()
        self._add_chart_data()
        self._prepare_tables()
        self._prepare_metadata()
        packager._add_workbook(self)
        packager._set_tmpdir(self.tmpdir)
        packager._set_in_memory(False)
        files = packager._create_package()
        packager = None
        try:
            with open(self.filename, "wb") as out:
                write_zip(out, [(name, path) for path, name, _binary in files])
        finally:
            for path, _name, _binary in files:
                if isinstance(path, str):
                    with contextlib.suppress(OSError):
                        os.remove(path)


# --- the zip ----------------------------------------------------------------------------------

_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_END = struct.Struct("<4s4H2LH")
_DOS_TIME, _DOS_DATE = 0, (1980 - 1980) << 9 | 1 << 5 | 1  # 1980-01-01 00:00
_ATTR = (0o100600 & 0xFFFF) << 16  # a regular file, rw-------
_MADE_BY = 3 << 8 | 20  # Unix (so the mode above is read as one), zip 2.0


def _pieces(path: str) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while piece := fh.read(_PIECE):
            yield piece


def _deflate_piece(job: tuple[bytes, bytes, bool]) -> bytes:
    piece, primer, last = job
    if primer:
        c = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, primer)
    else:
        c = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15)
    return c.compress(piece) + c.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _deflated(path: str, pool: ThreadPoolExecutor) -> Iterator[tuple[bytes, bytes]]:
    """(raw piece, its deflate) in order; pieces are deflated ahead on the pool, a few at a time."""
    pending: list[tuple[bytes, Any]] = []
    primer = b""
    previous: bytes | None = None
    for piece in _pieces(path):
        if previous is not None:
            pending.append((previous, pool.submit(_deflate_piece, (previous, primer, False))))
            primer = previous[-_WINDOW:]
        previous = piece
        while len(pending) > 2 * DEFLATE_THREADS:
            raw, future = pending.pop(0)
            yield raw, future.result()
    if previous is not None:
        pending.append((previous, pool.submit(_deflate_piece, (previous, primer, True))))
    for raw, future in pending:
        yield raw, future.result()


def write_zip(out: IO[bytes], members: list[tuple[str, str]]) -> None:
    """A zip of (name in the zip, file to read) pairs, deflated, with fixed times and modes.

    The same members give the same bytes (the pieces a member is cut into do not depend on the
    threads). No zip64: an .xlsx part of 4 GiB is far beyond what Excel opens."""
    central: list[bytes] = []
    with ThreadPoolExecutor(DEFLATE_THREADS) as pool:
        for name, path in members:
            raw_name = name.encode("utf-8")
            flags = 0x800 if not raw_name.isascii() else 0
            offset = out.tell()
            out.write(_LOCAL.pack(b"PK\x03\x04", 20, flags, 8, _DOS_TIME, _DOS_DATE, 0, 0, 0, len(raw_name), 0))
            out.write(raw_name)
            crc = size = packed = 0
            empty = True
            for raw, deflated in _deflated(path, pool):
                empty = False
                crc = zlib.crc32(raw, crc)
                size += len(raw)
                packed += len(deflated)
                out.write(deflated)
            if empty:
                deflated = zlib.compress(b"", COMPRESS_LEVEL)[2:-4]
                packed = len(deflated)
                out.write(deflated)
            if max(size, packed, out.tell()) >= 0xFFFFFFFF:
                raise ValueError(f"{name}: too large for a workbook part")
            end = out.tell()
            out.seek(offset + 14)
            out.write(struct.pack("<3L", crc, packed, size))
            out.seek(end)
            central.append(
                _CENTRAL.pack(b"PK\x01\x02", _MADE_BY, 20, flags, 8, _DOS_TIME, _DOS_DATE, crc, packed, size,
                              len(raw_name), 0, 0, 0, 0, _ATTR, offset) + raw_name
            )
    start = out.tell()
    directory = b"".join(central)
    out.write(directory)
    out.write(_END.pack(b"PK\x05\x06", 0, 0, len(central), len(central), len(directory), start, 0))
