"""The pre-parse gate: check a returned workbook's raw bytes before any spreadsheet library sees them.

openpyxl and calamine have no zip-bomb, cell-count or extent guard, and calamine aborts the whole
process on a 2 KB file with two far-apart cells (see docs on hostile inputs,
shared/research/anchors-reliability.md §2). So every file first goes through
`inspect_workbook`, which only ever looks at bytes:

* magic bytes: empty, text/CSV/PDF/HTML renamed .xlsx, OLE2 (encrypted package or legacy .xls);
* the zip structure: member count and names, overlapping entries, declared sizes and ratios;
* every member inflated by our own bounded loop, counting the bytes actually produced against
  the declared size and CRC (a lying header is found while inflating, never trusted);
* every XML part scanned as a byte stream for `<!DOCTYPE` / `<!ENTITY` (never expanded);
* each worksheet scanned once with a regex tokenizer for cells, formulas, error values, merged
  ranges and hidden rows, computing the real extent (the `<dimension>` tag is ignored).

The result is a `GateResult` with file-level Issues and, when the file passed, one `SheetFacts`
per sheet for the reader, which raises the row-level codes (cell-formula, cell-error-value, ...).
The gate is a fast, explainable first line; the parse itself still runs in `pipeline.reader.sandbox`.
"""

from __future__ import annotations

import codecs
import io
import itertools
import posixpath
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import unquote
from xml.parsers import expat

from pipeline.report import ERROR, Issue, make_issue


@dataclass(frozen=True)
class Limits:
    """Resource limits. The zip ones are Apache POI's ZipSecureFile defaults (min ratio 1 %, 100 KiB grace)."""

    max_file_bytes: int = 50 * 2**20
    max_members: int = 1000
    max_entry_bytes: int = 200 * 2**20  # inflated size of one zip member
    max_total_bytes: int = 500 * 2**20  # inflated total
    min_inflate_ratio: float = 0.01  # compressed/uncompressed below this ...
    ratio_grace_bytes: int = 100 * 2**10  # ... for members larger than this inflated
    max_cells: int = 2_000_000  # <c> elements per sheet
    max_rows: int = 100_000  # real extent (row index of last non-empty cell)
    max_cols: int = 200
    timeout_s: float = 10.0  # sandbox
    memory_bytes: int = 1024 * 2**20  # sandbox RLIMIT_AS


@dataclass
class SheetFacts:
    """What the streaming scan of one worksheet XML learnt.

    Readers must bound their iteration by `max_row`/`max_col` (the real extent), never by the
    declared `<dimension>` or by openpyxl's `ws.max_row`, which styled empty cells inflate.
    """

    name: str  # sheet name as in workbook.xml
    state: str  # "visible" | "hidden" | "veryHidden"
    cells: int = 0  # number of <c> elements with a value or formula
    max_row: int = 0  # real extent of non-empty cells (1-based), 0 if empty
    max_col: int = 0
    formulas: dict[str, str] = field(default_factory=dict)  # "G12" -> formula text (without '=')
    no_cache: set[str] = field(default_factory=set)  # formula cells with no cached <v>
    errors: dict[str, str] = field(default_factory=dict)  # "G12" -> "#REF!" (t="e")
    merged: list[str] = field(default_factory=list)  # merged ranges "A5:A7"
    hidden_rows: set[int] = field(default_factory=set)  # rows with hidden="1"


@dataclass
class GateResult:
    """The gate's verdict on one file."""

    kind: str  # "xlsx" | "xlsm" | "ods" | "xls" | "" (rejected / not a workbook)
    issues: list[Issue] = field(default_factory=list)
    sheets: dict[str, SheetFacts] = field(default_factory=dict)  # by sheet name, only when passed
    application: str = ""  # docProps/app.xml <Application>, "" if absent
    external_links: bool = False
    # workbook.xml <calcPr fullCalcOnLoad="1">: written by XlsxWriter/openpyxl, whose cached
    # formula results are placeholders (0) even though <Application> says "Microsoft Excel".
    calc_on_load: bool = False
    # docProps/core.xml dcterms:modified, as written (UTC, "2025-05-20T01:02:03Z"): the time the
    # workbook itself was last saved. Excel and LibreOffice rewrite it on every save. For an .ods,
    # meta.xml dc:date, which LibreOffice writes in local time without a zone, given the local offset;
    # "" for an .xls.
    saved: str = ""
    # docProps/custom.xml (.ods: meta:user-defined): the custom document properties, name → text
    # (our outputs carry a mark)
    custom: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(i.severity == ERROR for i in self.issues)


class _Reject(Exception):
    """Internal: stop inspecting, the file is rejected with this issue."""

    def __init__(self, code: str, detail: str = "", sheet: str = "") -> None:
        super().__init__(code, detail)
        self.code, self.detail, self.sheet = code, detail, sheet


META_SHEET = "_meta"  # our templates' own veryHidden metadata sheet: not "hidden content"

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"
_CHUNK = 1 << 20
# Parts we parse as XML for metadata: tiny in any real file, so a cap keeps expat cheap.
_META_CAP = 16 * 2**20


def _local_time(iso: str) -> str:
    """meta.xml's dc:date as an aware time: LibreOffice writes local time without a zone."""
    from datetime import datetime

    try:
        when = datetime.fromisoformat(iso[:26])
    except ValueError:
        return ""
    return (when if when.tzinfo else when.astimezone()).isoformat(timespec="seconds")


def _fmt_bytes(n: int) -> str:
    return f"{n / 2**20:,.1f} MB" if n >= 2**20 else f"{n:,} バイト"


# --- entry point -------------------------------------------------------------------------------


def inspect_workbook(data: bytes, name: str, limits: Limits = Limits()) -> GateResult:
    """Check the raw bytes of a file named `name` (used for messages/suffix) before any parser sees them.

    Never raises for bad input: anything unexpected inside the gate itself becomes a
    `file-unreadable` rejection, so one hostile file cannot stop the nightly run.
    """
    insp = _Inspector(data, name, limits)
    try:
        return insp.run()
    except _Reject as r:
        issue = make_issue(r.code, file=name, sheet=r.sheet, value=r.detail, detail=r.detail)
        return GateResult(
            kind="",
            issues=[issue, *insp.warnings],
            application=insp.application,
            external_links=insp.external_links,
        )
    except Exception as exc:
        issue = make_issue("file-unreadable", file=name, detail=f"{type(exc).__name__}")
        return GateResult(kind="", issues=[issue])


# --- magic-byte sniffing -----------------------------------------------------------------------


# The BOF record that starts an Excel 2.x, 3.0 or 4.0 worksheet file (no OLE2 container around it).
_RAW_BIFF_BOF = {b"\x09\x00": "Excel 2.x", b"\x09\x02": "Excel 3.0", b"\x09\x04": "Excel 4.0"}


def _sniff_non_zip(data: bytes) -> str:
    """Say in Japanese what a non-zip, non-OLE file looks like, for the file-not-workbook message."""
    head = data[:4096]
    low = head.lstrip(b"\xef\xbb\xbf\xff\xfe\x00 \t\r\n").lower()
    if head.startswith(b"%PDF"):
        return "PDF ファイル"
    if head.startswith(b"PK\x05\x06"):
        return "空の ZIP ファイル"
    if head.startswith(b"{\\rtf"):
        return "RTF 文書"
    if b'progid="excel.sheet"' in low or b"urn:schemas-microsoft-com:office:spreadsheet" in low:
        return "Excel 2003 XML 形式"
    if low.startswith((b"<!doctype html", b"<html", b"<table", b"<meta")) or b"<html" in low[:512]:
        return "HTML ファイル"
    if low.startswith(b"<?xml") or low.startswith(b"<"):
        return "XML ファイル"
    text = head[:-4] if len(head) == 4096 else head  # a cut multi-byte char at the end is not binary
    for enc in ("utf-8", "cp932", "utf-16"):
        try:
            s = text.decode(enc)
        except UnicodeDecodeError:
            continue
        if s and sum(ch.isprintable() or ch in "\r\n\t" for ch in s) >= 0.95 * len(s):
            return "CSV またはテキストファイル" if ("," in s or "\t" in s) else "テキストファイル"
    return "形式不明のファイル"


def _open_ole(data: bytes) -> tuple[Any, dict[str, str]]:
    """An olefile handle on the bytes and its top-level entries (lower-case name → name as stored)."""
    import olefile  # BSD; imported lazily: only OLE2 files need it

    try:
        ole = olefile.OleFileIO(io.BytesIO(data))  # BytesIO: short bytes would be taken as a path
        entries = ole.listdir(streams=True, storages=True)
    except Exception as exc:
        raise _Reject("file-corrupt", f"OLE2 構造が不正: {type(exc).__name__}") from None
    return ole, {p[0].lower(): p[0] for p in entries if p}


def _inspect_ole(data: bytes, limits: Limits, warnings: list[Issue], name: str) -> GateResult:
    """OLE2/CFB: an encrypted OOXML package (rejected), a legacy .xls (checked, then read for its
    values), or some other Office file (rejected)."""
    ole, tops = _open_ole(data)
    try:
        if {"encryptioninfo", "encryptedpackage"} & tops.keys():
            raise _Reject("file-encrypted", "パスワード付きブック")
        stream_name = tops.get("workbook") or tops.get("book")
        if stream_name is None:
            if "worddocument" in tops:
                raise _Reject("file-not-workbook", "Word 文書(.doc)")
            if "powerpoint document" in tops:
                raise _Reject("file-not-workbook", "PowerPoint 文書(.ppt)")
            raise _Reject("file-not-workbook", "Excel ブックではない OLE2 ファイル")
        try:
            stream = ole.openstream(stream_name).read()  # at most the file's size (max_file_bytes)
        except Exception as exc:
            raise _Reject("file-corrupt", f"{stream_name} ストリームが読めない: {type(exc).__name__}") from None
    finally:
        ole.close()
    biff = _Biff(stream, limits)
    sheets = biff.run()
    if biff.macros:
        warnings.append(make_issue("file-macros", file=name))
    if biff.external_links:
        warnings.append(make_issue("external-links", file=name))
    for facts in sheets.values():
        if facts.state != "visible" and facts.name != META_SHEET:
            warnings.append(make_issue("content-hidden", file=name, sheet=facts.name, value=facts.state))
    return GateResult(kind="xls", issues=warnings, sheets=sheets, external_links=biff.external_links)


class _Biff:
    """The cheap checks of a BIFF Workbook stream, before calamine reads it in the contained worker.

    Only the workbook globals and the first records of each sheet are looked at (a record walk in
    Python over a whole 50 MB stream would cost seconds): the BIFF version (BIFF5 and older are
    refused, as Excel 95 files), FILEPASS (a password to open), the sheets (BOUNDSHEET: names,
    states, where each sheet starts), the shared-string count against the bytes that hold it, and
    each sheet's DIMENSIONS record, from which calamine reserves memory. Cell values, formulas,
    errors and hidden rows are not seen: an .xls is read for its values only (file-legacy-format),
    and the worker bounds what it returns (pipeline.ingest._parse).
    """

    MAX_GLOBAL_RECORDS = 200_000  # a real file has a few thousand (XF, FONT, NAME, SST+CONTINUE)
    LEGACY: ClassVar[dict[int, str]] = {0x0002: "Excel 2.x", 0x0007: "Excel 2.x", 0x0200: "Excel 2.x",
                                        0x0300: "Excel 3.0", 0x0400: "Excel 4.0", 0x0500: "Excel 5.0/95"}  # fmt: skip

    def __init__(self, stream: bytes, limits: Limits) -> None:
        self.s = stream
        self.limits = limits
        self.macros = False
        self.external_links = False

    def _record(self, pos: int) -> tuple[int, bytes, int]:
        if pos + 4 > len(self.s):
            raise _Reject("file-corrupt", "Workbook ストリームが途中で切れている")
        typ, size = struct.unpack_from("<HH", self.s, pos)
        end = pos + 4 + size
        if end > len(self.s):
            raise _Reject("file-corrupt", "Workbook ストリームのレコードが途中で切れている")
        return typ, self.s[pos + 4 : end], end

    def run(self) -> dict[str, SheetFacts]:
        typ, body, pos = self._record(0)
        if typ in (0x0009, 0x0209, 0x0409):  # BOF of BIFF2, BIFF3, BIFF4
            raise _Reject("file-legacy-xls", {0x0009: "Excel 2.x", 0x0209: "Excel 3.0", 0x0409: "Excel 4.0"}[typ])
        if typ != 0x0809 or len(body) < 4:
            raise _Reject("file-corrupt", "Workbook ストリームが BOF で始まっていない")
        version, dt = struct.unpack_from("<HH", body)
        if version in self.LEGACY:
            raise _Reject("file-legacy-xls", self.LEGACY[version])
        if version != 0x0600:
            raise _Reject("file-corrupt", f"BIFF のバージョンが不明 (0x{version:04X})")
        if dt != 0x0005:
            raise _Reject("file-corrupt", "ブック全体の情報(globals)で始まっていない")
        bound: list[tuple[int, int, int, str]] = []  # (offset, state, type, name)
        sst_claim = sst_bytes = 0
        in_sst = False
        for _ in range(self.MAX_GLOBAL_RECORDS):
            typ, body, pos = self._record(pos)
            if typ == 0x000A:  # EOF of the globals
                break
            if typ == 0x002F:  # FILEPASS: everything after it is encrypted
                raise _Reject("file-encrypted", "読み取りパスワード付きの .xls")
            if typ == 0x0085:
                bound.append(self._boundsheet(body))
            elif typ == 0x00FC and len(body) >= 8:  # SST: calamine reserves cstUnique strings up front
                sst_claim = struct.unpack_from("<i", body, 4)[0]
                sst_bytes, in_sst = len(body) - 8, True
                continue
            elif typ == 0x003C and in_sst:  # CONTINUE of the SST
                sst_bytes += len(body)
                continue
            elif typ == 0x01AE and len(body) >= 4 and struct.unpack_from("<H", body, 2)[0] not in (0x0401, 0x3A01):
                # SUPBOOK of another workbook, or of a DDE/OLE link (0x0401: this book, 0x3A01: add-ins)
                self.external_links = True
            in_sst = False
        else:
            raise _Reject("file-corrupt", "ブック全体の情報が長すぎる")
        if sst_claim < 0 or sst_claim > sst_bytes // 3 + 1:  # each string takes at least 3 bytes
            raise _Reject("file-corrupt", f"共有文字列の数 {sst_claim:,} が実際のデータと合わない")
        sheets: dict[str, SheetFacts] = {}
        states = {0: "visible", 1: "hidden", 2: "veryHidden"}
        for offset, state, kind, name in bound:
            if kind in (0x01, 0x06):  # an Excel 4.0 macro sheet, a VBA module
                self.macros = True
            if name.lower() in {n.lower() for n in sheets}:
                raise _Reject("file-corrupt", f"シート名「{name}」が重複している")
            sheets[name] = SheetFacts(name=name, state=states[state])
            self._sheet_start(offset, name)
        if not sheets:
            raise _Reject("file-corrupt", "シートがない")
        return sheets

    def _boundsheet(self, body: bytes) -> tuple[int, int, int, str]:
        if len(body) < 8:
            raise _Reject("file-corrupt", "シートの情報(BOUNDSHEET)が短すぎる")
        offset, state, kind, cch, flags = struct.unpack_from("<LBBBB", body)
        state &= 0x3F
        if state not in (0, 1, 2) or kind not in (0x00, 0x01, 0x02, 0x06):
            raise _Reject("file-corrupt", "シートの情報(BOUNDSHEET)が不正")
        raw = body[8 : 8 + (cch * 2 if flags & 1 else cch)]
        name = raw.decode("utf-16-le", "replace") if flags & 1 else raw.decode("latin-1")
        return offset, state, kind, name.replace("\0", "")

    def _sheet_start(self, offset: int, name: str) -> None:
        """The sheet substream must start with a BOF where BOUNDSHEET says (calamine slices the stream
        there and would panic past its end); its DIMENSIONS must be sane and not too large."""
        typ, body, pos = self._record(offset) if offset < len(self.s) else (0, b"", 0)
        if typ != 0x0809:
            raise _Reject("file-corrupt", f"シート「{name}」の開始位置が不正", sheet=name)
        for _ in range(64):  # DIMENSIONS comes right after the sheet's index and calc settings
            typ, body, pos = self._record(pos)
            if typ == 0x000A:
                return
            if typ != 0x0200:
                continue
            if len(body) != 14:
                raise _Reject("file-corrupt", f"シート「{name}」の範囲(DIMENSIONS)が不正", sheet=name)
            first_row, last_row, first_col, last_col = struct.unpack_from("<LLHH", body)
            if not (first_row <= last_row <= 65536 and first_col <= last_col <= 256):
                raise _Reject("file-corrupt", f"シート「{name}」の範囲(DIMENSIONS)が不正", sheet=name)
            if (last_row - first_row) * (last_col - first_col) > self.limits.max_cells:
                ref = f"{col_letters(first_col + 1)}{first_row + 1}:{col_letters(last_col)}{last_row}"
                raise _Reject(
                    "sheet-too-large",
                    f"使用範囲 {ref} が {self.limits.max_cells:,} セルを超えている(書式だけの空セルを含む)",
                    sheet=name,
                )
            return


# --- bounded inflation -------------------------------------------------------------------------

_LOCAL = struct.Struct("<4s5HL2L2H")  # local file header, 30 bytes


def _data_span(data: bytes, info: zipfile.ZipInfo) -> tuple[int, int]:
    """Check a member's local header against the central directory; return (data start, data end)."""
    off = info.header_offset
    if off < 0 or off + _LOCAL.size > len(data):
        raise _Reject("file-corrupt", f"{info.filename}: ヘッダーの位置が不正")
    sig, _ver, flags, method, _t, _d, crc, csize, usize, nlen, xlen = _LOCAL.unpack_from(data, off)
    if sig != _ZIP_MAGIC:
        raise _Reject("file-corrupt", f"{info.filename}: ヘッダーが見つからない")
    lname = data[off + 30 : off + 30 + nlen]
    if lname != info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437", "replace"):
        raise _Reject("file-corrupt", f"{info.filename}: 名前が目次と一致しない")
    if method != info.compress_type:
        raise _Reject("file-corrupt", f"{info.filename}: 圧縮方式が目次と一致しない")
    # Without a data descriptor the local sizes must agree with the central directory, otherwise
    # readers that trust the local header (stream readers) see a different file than we do.
    if (
        not flags & 0x08
        and (csize, usize) != (0xFFFFFFFF, 0xFFFFFFFF)
        and (csize, usize, crc) != (info.compress_size, info.file_size, info.CRC)
    ):
        raise _Reject("file-corrupt", f"{info.filename}: サイズ情報が目次と一致しない")
    start = off + 30 + nlen + xlen
    end = start + info.compress_size
    if end > len(data):
        raise _Reject("file-corrupt", f"{info.filename}: データが途中で切れている")
    return start, end


def _inflate(data: bytes, info: zipfile.ZipInfo, start: int, end: int, budget: int) -> Iterator[bytes]:
    """Yield a member's bytes in chunks, counting what is really produced.

    Stops with file-corrupt as soon as the output exceeds the declared size (a lying header),
    and with file-zip-bomb past `budget` (whatever the header says); checks length and CRC at the end.
    """
    declared = info.file_size
    produced = 0
    crc = 0
    if info.compress_type == zipfile.ZIP_STORED:
        for pos in range(start, end, _CHUNK):
            chunk = data[pos : min(pos + _CHUNK, end)]
            produced += len(chunk)
            if produced > budget:
                raise _Reject("file-zip-bomb", f"{info.filename}: 展開後 {_fmt_bytes(produced)} 超")
            crc = zlib.crc32(chunk, crc)
            yield chunk
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        d = zlib.decompressobj(-15)
        pos = start
        pending = b""
        while True:
            if not pending and pos < end:
                pending = data[pos : min(pos + _CHUNK, end)]
                pos += len(pending)
            if not pending and d.eof:
                break
            try:
                # max_length bounds memory per step regardless of the compression ratio.
                chunk = d.decompress(pending, _CHUNK)
            except zlib.error as exc:
                raise _Reject("file-corrupt", f"{info.filename}: 圧縮データが壊れている ({exc})") from None
            pending = d.unconsumed_tail
            if chunk:
                produced += len(chunk)
                if produced > declared:
                    raise _Reject("file-corrupt", f"{info.filename}: 宣言より大きく展開される(サイズ偽装)")
                if produced > budget:
                    raise _Reject("file-zip-bomb", f"{info.filename}: 展開後 {_fmt_bytes(produced)} 超")
                crc = zlib.crc32(chunk, crc)
                yield chunk
            elif d.eof or (not pending and pos >= end):
                break
        if not d.eof:
            raise _Reject("file-corrupt", f"{info.filename}: 圧縮データが途中で切れている")
    else:
        raise _Reject("file-corrupt", f"{info.filename}: Excel が使わない圧縮方式 ({info.compress_type})")
    if produced != declared:
        raise _Reject(
            "file-corrupt", f"{info.filename}: 宣言 {declared:,} バイトに対し実際 {produced:,} バイト"
        )
    if crc != info.CRC:
        raise _Reject("file-corrupt", f"{info.filename}: CRC 不一致")


# --- unsafe XML: DTD / entity declarations -----------------------------------------------------

_DTD_ASCII = re.compile(rb"<!(?i:doctype|entity)")
_DTD_TEXT = re.compile(r"<!(?i:doctype|entity)")
_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._\-]+)["']""")
# XML encodings in which the ASCII bytes of "<!DOCTYPE" are always themselves (so a byte scan is exact).
_ASCII_SAFE = {
    "utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1", "windows-1252", "cp1252",
    "shift_jis", "shift-jis", "sjis", "cp932", "windows-31j", "euc-jp",
}  # fmt: skip


class _DtdScanner:
    """Streaming search for DTD/entity declarations in one member, across chunk boundaries.

    Decides from the first bytes whether the member is XML at all (binary parts such as images
    or vbaProject.bin are skipped) and in which encoding family, so UTF-16 parts cannot hide a DTD.
    """

    KEEP = 16  # longest pattern ("<!DOCTYPE" in UTF-16) minus one, rounded up

    def __init__(self, member: str) -> None:
        self.member = member
        self.mode = ""  # "" undecided, "ascii", "text" (decoder), "binary"
        self.tail = b""
        self.decoder: codecs.IncrementalDecoder | None = None
        self.tail_text = ""

    def feed(self, chunk: bytes) -> None:
        if self.mode == "":
            self._decide(chunk)
        if self.mode == "ascii":
            buf = self.tail + chunk
            if _DTD_ASCII.search(buf):
                raise _Reject("file-unsafe-xml", f"{self.member}: DOCTYPE/ENTITY 宣言")
            self.tail = buf[-self.KEEP :]
        elif self.mode == "text" and self.decoder is not None:
            text = self.tail_text + self.decoder.decode(chunk)
            if _DTD_TEXT.search(text):
                raise _Reject("file-unsafe-xml", f"{self.member}: DOCTYPE/ENTITY 宣言")
            self.tail_text = text[-self.KEEP :]

    def _decide(self, chunk: bytes) -> None:
        import codecs

        utf16 = {b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16", b"<\x00": "utf-16-le", b"\x00<": "utf-16-be"}
        if chunk[:2] in utf16 and not chunk.startswith(b"\xff\xfe\x00\x00"):
            self.mode = "text"
            self.decoder = codecs.getincrementaldecoder(utf16[chunk[:2]])("replace")
            return
        if chunk.startswith((b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00", b"\x4c\x6f\xa7\x94", b"+/v")):
            raise _Reject("file-unsafe-xml", f"{self.member}: Excel が使わない文字コード")
        body = chunk[3:] if chunk.startswith(b"\xef\xbb\xbf") else chunk
        stripped = body.lstrip(b" \t\r\n")
        if stripped and not stripped.startswith(b"<"):
            self.mode = "binary"
            return
        m = _ENCODING.match(body)
        if m and m.group(1).decode("ascii").lower() not in _ASCII_SAFE:
            raise _Reject(
                "file-unsafe-xml", f"{self.member}: Excel が使わない文字コード {m.group(1).decode()}"
            )
        self.mode = "ascii"


# --- small metadata parts (workbook.xml, rels, app.xml) ----------------------------------------


def _local(name: str) -> str:
    return name.rsplit(" ", 1)[-1]


def _expat_for(owner: Any, namespace_separator: str | None = None) -> Any:
    """An expat parser that feeds `owner`'s _start/_end/_chars and calls its _dtd on any DOCTYPE or
    ENTITY declaration (which rejects the file: nothing is ever expanded)."""
    p = expat.ParserCreate(namespace_separator=namespace_separator)
    p.buffer_text = True
    p.StartElementHandler = owner._start
    p.EndElementHandler = owner._end
    p.CharacterDataHandler = owner._chars
    p.StartDoctypeDeclHandler = owner._dtd
    p.EntityDeclHandler = owner._dtd
    return p


class _MetaParser:
    """Collect elements of a small XML part with expat; DTDs are refused here too (belt and braces)."""

    def __init__(self) -> None:
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.texts: dict[str, str] = {}
        self.props: dict[str, str] = {}  # docProps/custom.xml: <property name="…"><vt:lpwstr>text
        self._prop = ""
        self._stack: list[str] = []
        self.parser = _expat_for(self, namespace_separator=" ")

    def _dtd(self, *args: object) -> None:
        raise _Reject("file-unsafe-xml", "DOCTYPE/ENTITY 宣言")

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        local = _local(name)
        self._stack.append(local)
        self.elements.append((local, {_attr(k): v for k, v in attrs.items()}))
        if local in ("property", "user-defined"):  # OOXML custom.xml / ODF meta.xml
            self._prop = next((v for k, v in attrs.items() if _local(k) == "name"), "")[:200]

    def _end(self, name: str) -> None:
        if self._stack.pop() in ("property", "user-defined"):
            self._prop = ""

    def _chars(self, text: str) -> None:
        if self._prop and len(self.props.get(self._prop, "")) < 1000:
            self.props[self._prop] = self.props.get(self._prop, "") + text
        if self._stack and len(self.texts.get(self._stack[-1], "")) < 1000:
            self.texts[self._stack[-1]] = self.texts.get(self._stack[-1], "") + text

    def feed(self, chunk: bytes, final: bool = False) -> None:
        self.parser.Parse(chunk, final)


def _attr(name: str) -> str:
    """Attribute key without namespace, except r:id which keeps a marker (it differs from id)."""
    if " " in name:
        ns, local = name.rsplit(" ", 1)
        return "r:" + local if "relationships" in ns else local
    return name


# --- worksheet scanning ------------------------------------------------------------------------
#
# Speed matters: a sheet may hold 2,000,000 cells and the prototype's per-element pass took 8.8 s
# on 1 M styled empty rows. So whole cells are matched by one regex, styled empty cells and rows
# are counted and dropped in C (re.subn / findall) whenever positions are explicit, and Python
# only looks at cells that have content. Attribute lexing is strict (quoted values, which may
# legally contain '>'); a <c tag that cannot be lexed strictly rejects the file, so a cell can
# never hide from the scan. Matching tags inside comments or CDATA can only over-count.

_P = rb"(?:[A-Za-z_][\w.\-]*:)?"  # optional namespace prefix: OpenXML SDK files write <x:c>
_Q = rb"""(?:"[^"<]*+"|'[^'<]*+')"""
_ATTRS = rb"((?:\s+[^\s=/>\"'<]+\s*=\s*" + _Q + rb")*+)\s*+"
_HAS_R = rb"(?=(?:\s+[^\s=/>\"'<]+\s*=\s*" + _Q + rb")*?\s+r\s*=\s*" + _Q + rb")"
_BODY = rb"((?:[^<]++|<(?!/?" + _P + rb"c[\s/>]))*+)"
_CELL = rb"<" + _P + rb"c" + _ATTRS + rb"(?:/>|>" + _BODY + rb"</" + _P + rb"c\s*>)"
_LONE_C = rb"<" + _P + rb"c" + _ATTRS + rb">"
_ROW = rb"<" + _P + rb"row" + _ATTRS + rb"/?>"
_RANGE = rb"<" + _P + rb"(mergeCell|hyperlink)" + _ATTRS + rb"/?>"

_C_LOOSE = re.compile(rb"<" + _P + rb"c(?=[\s/>])()")
_C_STRICT = re.compile(rb"<" + _P + rb"c" + _ATTRS + rb"/?>")
_C_WITH_R = re.compile(rb"<" + _P + rb"c" + _HAS_R + _ATTRS + rb"/?>()")
_ROW_LOOSE = re.compile(rb"<" + _P + rb"row(?=[\s/>])()")
_ROW_WITH_R = re.compile(rb"<" + _P + rb"row" + _HAS_R + _ATTRS + rb"/?>()")
_ROW_HIDDEN = re.compile(
    rb"<" + _P + rb"row(?=" + rb"(?:\s+[^\s=/>\"'<]+\s*=\s*" + _Q + rb")*?\s+hidden\s*=)" + _ATTRS + rb"/?>"
)
_LAST_POS = re.compile(rb"(?s:.*)<" + _P + rb"(row|c)" + _ATTRS + rb"/?>")
# The shapes Excel, openpyxl and XlsxWriter write for plain cells: only r/s/t attributes, an
# upper-case r, a <v> or inline string body. Being that specific makes them unambiguous, so they
# are counted (and their r captured) in C and removed before the Python pass.
# Literal '<c r="' lets the regex engine skip ahead fast; prefixed or unusual cells stay for
# the strict pass below. Styled empty cells are removed (and counted) first by _PLAIN_EMPTY.
_PLAIN = re.compile(
    rb'<c r="([A-Z]{1,3})([0-9]{1,7})"(?: s="[0-9]{1,6}")?(?: t="(?:s|n|str|b|d|inlineStr)")?'
    rb'(?: s="[0-9]{1,6}")?(?:>(?:<v>[^<]*+</v>|<is>(?:[^<]++|<(?!/?(?:c|is|f)[\s/>]))*+</is>)</c>)'
)
_PLAIN_EMPTY = re.compile(
    rb'<c r="[A-Z]{1,3}[0-9]{1,7}"(?: s="[0-9]{1,6}")?(?: t="(?:s|n|str|b|d|inlineStr)")?(?: s="[0-9]{1,6}")?/>'
)
# group 1: cell attrs, 2: cell body; 3: lone <c> attrs; 4: row attrs; 5: range tag, 6: range attrs
_TOKENS_SEQ = re.compile(b"|".join((_CELL, _LONE_C, _ROW, _RANGE)))
_TOKENS_EXPLICIT = re.compile(b"|".join((_CELL, _LONE_C, rb"()" + rb"(?!)", _RANGE)))

_ATTR = re.compile(rb"""\s+([^\s=/>"'<]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_F = re.compile(rb"<" + _P + rb"f" + _ATTRS + rb"(?:/>|>([^<]*)</" + _P + rb"f\s*>)")
_V = re.compile(rb"<" + _P + rb"v\s*(?:/>|>([^<]*)</" + _P + rb"v\s*>)")
_CHILD = re.compile(rb"<" + _P + rb"(v|is|f)[\s/>]")
_REF = re.compile(r"\$?([A-Za-z]{1,3})\$?([0-9]{1,7})")
_REF_B = re.compile(rb"([A-Za-z]{1,3})([0-9]{1,7})")
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6}|amp|lt|gt|quot|apos);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_TEXT_CAP = 64 * 1024  # formula/value text kept per cell; Excel's own formula limit is 8,192
_CARRY_CAP = 16 * 2**20  # one cell or tag longer than this is not something Excel writes


def _unescape(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        g = m.group(1)
        if g[0] == "#":
            try:
                return chr(int(g[2:], 16) if g[1] in "xX" else int(g[1:]))
            except (ValueError, OverflowError):
                return m.group(0)
        return _NAMED[g]

    return _ENTITY.sub(sub, text) if "&" in text else text


def _attrs(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in _ATTR.finditer(raw):
        key = m.group(1).decode("ascii", "replace")
        if key not in out:
            val = m.group(2) if m.group(2) is not None else m.group(3)
            out[key] = _unescape(val.decode("utf-8", "replace"))
    return out


def col_letters(col: int) -> str:
    """1 -> "A", 28 -> "AB"."""
    out = ""
    while col:
        col, rem = divmod(col - 1, 26)
        out = chr(65 + rem) + out
    return out


_COLS: dict[bytes, int] = {}


def _col_index(letters: bytes) -> int:
    n = _COLS.get(letters)
    if n is None:
        n = 0
        for ch in letters.upper():
            n = n * 26 + ch - 64
        _COLS[letters] = n
    return n


def _parse_ref(ref: str, sheet: str) -> tuple[int, int]:
    m = _REF.fullmatch(ref)
    if not m or int(m.group(2)) == 0:
        raise _Reject("file-corrupt", f"シート「{sheet}」: 不正なセル番地 {ref[:20]!r}", sheet=sheet)
    return int(m.group(2)), _col_index(m.group(1).encode())


def _count(rx: re.Pattern[bytes], buf: bytes, end: int) -> int:
    return len(rx.findall(buf, 0, end))


class _SheetScanner:
    """One streaming pass over a worksheet's XML bytes, filling a SheetFacts.

    Positions follow the readers' rules: `r` when present, otherwise one past the previous
    row/cell. Input is processed in batches that end before an unfinished cell.
    """

    def __init__(self, facts: SheetFacts, limits: Limits) -> None:
        self.f = facts
        self.limits = limits
        self.tags = 0  # every <c>, empty or not: the max_cells limit
        self.area = 0  # cells covered by merged ranges / hyperlinks (openpyxl materialises them)
        self.row = 0
        self.col = 0
        self.carry = b""
        self.shared: dict[str, tuple[str, str]] = {}  # si -> (master address, formula text)

    def feed(self, chunk: bytes) -> None:
        buf = self.carry + chunk if self.carry else chunk
        cut = buf.rfind(b"<")  # attribute values cannot contain '<': everything before is whole tags
        if cut <= 0:
            self._carry(buf)
            return
        self._carry(buf[self._scan(buf, cut) :])

    def close(self) -> None:
        if self.carry:
            if self._scan(self.carry, len(self.carry)) < len(self.carry):
                self._reject_corrupt("閉じられていないセル")
            self.carry = b""

    def _carry(self, rest: bytes) -> None:
        if len(rest) > _CARRY_CAP:
            raise _Reject("sheet-too-large", "1つのセルまたは要素が長すぎる", self.f.name)
        self.carry = rest

    def _reject_corrupt(self, what: str) -> None:
        raise _Reject("file-corrupt", f"シート「{self.f.name}」: {what}", self.f.name)

    def _scan(self, buf: bytes, end: int) -> int:
        """Process buf[:end]; return where the unprocessed rest (an unfinished cell) starts."""
        # Optimistic fast path: drop plain cells (styled empty ones and plain values) in C,
        # then look at what is left. Valid only if every remaining cell and row has r=, since
        # an implicit position depends on the dropped cells; otherwise redo the batch in order.
        work, n_empty = _PLAIN_EMPTY.subn(b"", buf[:end])  # counted only: no tuples for them
        refs = _PLAIN.findall(work)
        if refs:
            work = _PLAIN.sub(b"", work)
        n_c = _count(_C_LOOSE, work, len(work))
        if n_c != _count(_C_STRICT, work, len(work)):
            self._reject_corrupt("セルの書式が不正")
        explicit = n_c == _count(_C_WITH_R, work, len(work)) and _count(
            _ROW_LOOSE, work, len(work)
        ) == _count(_ROW_WITH_R, work, len(work))
        if explicit:
            self._add_tags(n_empty + len(refs))
            if refs:
                self._plain(refs)
            hidden = [m.group(1) for m in _ROW_HIDDEN.finditer(work)]
            rest = self._tokens(_TOKENS_EXPLICIT, work, len(work))
            if rest < len(work):  # an unfinished cell: find the same start tag in the original
                tag = _C_STRICT.match(work, rest)
                rest = buf.rfind(tag.group(0), 0, end) if tag else -1
                if rest < 0:
                    self._reject_corrupt("セルの書式が不正")
            else:
                rest = end
            for raw in hidden:
                a = _attrs(raw)
                if a.get("hidden") in ("1", "true"):
                    self.f.hidden_rows.add(self._row_number(a.get("r", "")))
            last = _LAST_POS.match(buf, 0, rest)
            if last is not None:  # carry the position forward for a later batch without r=
                a = _attrs(last.group(2))
                if last.group(1) == b"row":
                    self.row, self.col = self._row_number(a.get("r", "")), 0
                else:
                    self.row, self.col = _parse_ref(a.get("r", ""), self.f.name)
            return rest
        return self._tokens(_TOKENS_SEQ, buf, end)

    def _plain(self, refs: list[tuple[bytes, bytes]]) -> None:
        """Extent and count of plain value cells, from their (letters, digits) in bulk."""
        f, lim = self.f, self.limits
        f.cells += len(refs)
        letters, digits = zip(*refs, strict=True)
        max_row = max(map(int, digits))
        width = max(map(len, letters))
        max_col = _col_index(max(x for x in letters if len(x) == width))
        if min(map(int, digits)) == 0:
            self._reject_corrupt("不正なセル番地(行 0)")
        if max_row > f.max_row:
            f.max_row = max_row
        if max_col > f.max_col:
            f.max_col = max_col
        if max_row > lim.max_rows or max_col > lim.max_cols:
            bad = next((c, d) for c, d in refs if int(d) > lim.max_rows or _col_index(c) > lim.max_cols)
            what = f"{lim.max_rows:,} 行" if int(bad[1]) > lim.max_rows else f"{lim.max_cols:,} 列"
            raise _Reject(
                "sheet-too-large", f"{(bad[0] + bad[1]).decode()} にデータがあり、{what}を超えている", f.name
            )

    def _row_number(self, r: str) -> int:
        if not r.isdigit() or len(r) > 7 or int(r) == 0:
            self._reject_corrupt(f"不正な行番号 {r[:20]!r}")
        return int(r)

    def _add_tags(self, n: int) -> None:
        self.tags += n
        if self.tags > self.limits.max_cells:
            raise _Reject(
                "sheet-too-large",
                f"セルが {self.limits.max_cells:,} 個を超えている(書式だけの空セルを含む)",
                self.f.name,
            )

    def _tokens(self, rx: re.Pattern[bytes], buf: bytes, end: int) -> int:
        lone: tuple[int, bytes] | None = None  # a <c> start tag without its end: unfinished if last
        for m in rx.finditer(buf, 0, end):
            if lone is not None:  # not last: malformed nesting, count it as a cell with content
                self._cell(lone[1], b"<v/>")
                lone = None
            if m.group(1) is not None:
                self._cell(m.group(1), m.group(2))
            elif m.group(3) is not None:
                lone = (m.start(), m.group(3))
            elif m.group(4) is not None:
                self._row(m.group(4))
            elif m.group(5) is not None:
                self._range(m.group(5), m.group(6))
        return lone[0] if lone is not None else end

    def _row(self, raw: bytes) -> None:
        a = _attrs(raw) if raw else {}
        r = a.get("r")
        self.row = self._row_number(r) if r is not None else self.row + 1
        self.col = 0
        if a.get("hidden") in ("1", "true"):
            self.f.hidden_rows.add(self.row)

    def _cell(self, raw: bytes, body: bytes | None) -> None:
        self._add_tags(1)
        a = _attrs(raw)
        ref = a.get("r")
        if ref is not None:
            self.row, self.col = _parse_ref(ref, self.f.name)
        else:
            self.row = max(self.row, 1)
            self.col += 1
        if not body or _CHILD.search(body) is None:
            return  # styled empty cell: counts against max_cells, not towards the extent
        f = self.f
        f.cells += 1
        row, col = self.row, self.col
        if row > f.max_row:
            f.max_row = row
            if row > self.limits.max_rows:
                raise _Reject(
                    "sheet-too-large",
                    f"{col_letters(col)}{row} にデータがあり、{self.limits.max_rows:,} 行を超えている",
                    f.name,
                )
        if col > f.max_col:
            f.max_col = col
            if col > self.limits.max_cols:
                raise _Reject(
                    "sheet-too-large",
                    f"{col_letters(col)}{row} にデータがあり、{self.limits.max_cols:,} 列を超えている",
                    f.name,
                )
        ctype = a.get("t", "n")
        fm = _F.search(body) if b"f" in body else None
        if fm is None and ctype != "e":
            return
        addr = f"{col_letters(col)}{row}"
        vm = _V.search(body)
        v = (vm.group(1) or b"") if vm else b""
        if fm is not None:
            text = _unescape(fm.group(2)[:_TEXT_CAP].decode("utf-8", "replace")) if fm.group(2) else ""
            fa = _attrs(fm.group(1))
            if fa.get("t") == "shared" and "si" in fa:
                if text:
                    self.shared[fa["si"]] = (addr, text)
                else:
                    text = _translate(*self.shared.get(fa["si"], ("", "")), addr)
            f.formulas[addr] = text
            # openpyxl writes <v/> for formulas; only a string result may legitimately be empty.
            if vm is None or (not v.strip() and ctype not in ("str", "s", "inlineStr")):
                f.no_cache.add(addr)
        if ctype == "e" and vm is not None:
            f.errors[addr] = _unescape(v[:_TEXT_CAP].decode("utf-8", "replace")).strip()

    def _range(self, tag: bytes, raw: bytes) -> None:
        ref = _attrs(raw).get("ref", "")
        if not ref:
            return
        parts = ref.split(":")
        if len(parts) > 2:
            self._reject_corrupt(f"不正な範囲 {ref[:30]!r}")
        (r1, c1), (r2, c2) = _parse_ref(parts[0], self.f.name), _parse_ref(parts[-1], self.f.name)
        # openpyxl creates one object per cell of a merged range or hyperlink range, so their
        # area counts against the cell limit and their corners against the extent.
        if max(r1, r2) > self.limits.max_rows or max(c1, c2) > self.limits.max_cols:
            raise _Reject("sheet-too-large", f"範囲 {ref} が大きすぎる", self.f.name)
        self.area += (abs(r2 - r1) + 1) * (abs(c2 - c1) + 1)
        if self.area > self.limits.max_cells:
            raise _Reject("sheet-too-large", "結合セル・リンクの範囲が大きすぎる", self.f.name)
        if tag == b"mergeCell":
            self.f.merged.append(ref)


def _translate(origin: str, text: str, dest: str) -> str:
    """Text of a shared-formula dependent: the master's formula shifted to `dest` (as Excel shows it)."""
    if not text:
        return ""
    try:
        from openpyxl.formula.translate import Translator

        return Translator("=" + text, origin=origin).translate_formula(dest)[1:]
    except Exception:
        return text


# --- OpenDocument (.ods) ----------------------------------------------------------------------

ODS_MIME = b"application/vnd.oasis.opendocument.spreadsheet"
_LEGACY_KINDS = {"ods": "OpenDocument スプレッドシート(.ods)形式", "xls": "Excel 97-2003 ブック(.xls)形式"}


def _legacy_format(kind: str, name: str) -> Issue:
    # An .xls is read for its values alone: the gate cannot see its formulas, error values, hidden
    # rows or merged cells (an .ods gets the same row-level checks as an .xlsx).
    detail = "(この形式では数式・エラー値・非表示の行・結合セルを確認できません)" if kind == "xls" else ""
    return make_issue("file-legacy-format", file=name, value=_LEGACY_KINDS[kind], detail=detail)


class _Collect:
    """The first `cap` bytes of a small member (the .ods mimetype)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()

    def feed(self, chunk: bytes) -> None:
        if len(self.data) < self.cap:
            self.data += chunk[: self.cap - len(self.data)]


_ODS_VALUES = ("office:value", "office:string-value", "office:date-value", "office:time-value",
               "office:boolean-value")  # fmt: skip
_ODS_ERROR = re.compile(r"#(NULL!|DIV/0!|VALUE!|REF!|NAME\?|NUM!|N/A|GETTING_DATA)|Err:\d{3}")
_ODS_REF = re.compile(r"\[([^\[\]]*)\]")
_ODS_DDE = re.compile(
    r"""\bDDE\(\s*"((?:[^"]|"")*)"\s*[;,]\s*"((?:[^"]|"")*)"\s*[;,]\s*"((?:[^"]|"")*)"\s*(?:[;,][^)]*)?\)""", re.I
)
_EXTERNAL = re.compile(r"'(?:file|https?|ftp|smb):", re.I)


def _ods_formula(raw: str) -> str:
    """An ODF formula (`of:=IF([.B4]="8";"A";"B")`) as Excel shows it (`IF(B4="8","A","B")`).

    The validator recognises DDE by Excel's notation (`app|'topic'!item`), so LibreOffice's
    DDE("app";"topic";"item") is written that way; a DDE call it cannot take apart is still marked.
    """
    ns, sep, body = raw.partition(":")
    if not sep or not re.fullmatch(r"[A-Za-z][\w.-]*", ns):  # no namespace prefix
        body = raw
    body = body[1:] if body.startswith("=") else body
    if ns == "msoxl":  # Excel 2007 SP2 wrote its own syntax
        return body

    def ref(m: re.Match[str]) -> str:
        parts = []
        for part in m.group(1).split(":"):
            part = part.replace("$", "")
            if part.startswith("."):
                parts.append(part[1:])
            elif "." in part and not _EXTERNAL.search(part):
                sheet, _, cell = part.rpartition(".")
                parts.append(f"{sheet}!{cell}")
            else:
                parts.append(part)
        return ":".join(parts)

    # outside string literals: references and the argument separator
    pieces = re.split(r'("(?:[^"]|"")*")', body)
    for i in range(0, len(pieces), 2):
        pieces[i] = _ODS_REF.sub(ref, pieces[i]).replace(";", ",")
    text = "".join(pieces)
    text = _ODS_DDE.sub(lambda m: f"{m.group(1)}|'{m.group(2)}'!{m.group(3)}", text)
    if re.search(r"\bDDE\s*\(", text, re.I):
        text = f"DDE|'{text}'!"
    return text


class _OdsScanner:
    """One streaming pass over an .ods content.xml with expat, filling one SheetFacts per table.

    Names are matched as written ("table:table-cell"), as calamine matches them, so that positions
    agree with what the reader returns. A row or cell stands for `number-rows-repeated` ×
    `number-columns-repeated` positions: non-empty ones count as cells and towards the extent, so a
    row with content repeated a million times is sheet-too-large, while the empty repeated rows and
    columns LibreOffice writes to the end of the sheet cost nothing. Every cell element also counts
    against max_cells (as every <c> does in an .xlsx).
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.sheets: dict[str, SheetFacts] = {}
        self.external_links = False
        self._hidden_styles: set[str] = set()
        self._style: str | None = None
        self._depth = 0
        self._table: int | None = None  # depth of the current sheet's <table:table>
        self._skip: int | None = None  # depth of an element whose content we ignore
        self._row_el: int | None = None
        self._cell_el: int | None = None
        self._f: SheetFacts | None = None
        self._row = self._col = 0  # last row/column position taken (1-based)
        self._row_first = self._rrep = 0
        self._hidden: list[tuple[int, int]] = []
        self._tags = self._area = 0
        self._text: list[str] | None = None  # text of a formula cell (its error value, if any)
        self._block: tuple[int, int, int, int] = (0, 0, 0, 0)
        self.parser = _expat_for(self)  # no namespace processing: qualified names as written

    def feed(self, chunk: bytes, final: bool = False) -> None:
        self.parser.Parse(chunk, final)

    def _dtd(self, *args: object) -> None:
        raise _Reject("file-unsafe-xml", "content.xml: DOCTYPE/ENTITY 宣言")

    def _corrupt(self, what: str) -> None:
        name = self._f.name if self._f else ""
        raise _Reject("file-corrupt", f"シート「{name}」: {what}" if name else what, name)

    def _count(self, attrs: dict[str, str], key: str) -> int:
        raw = attrs.get(key)
        if raw is None:
            return 1
        if not raw.isdigit() or len(raw) > 9 or int(raw) == 0:
            self._corrupt(f"不正な繰り返し数 {raw[:20]!r}")
        return int(raw)

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self._depth += 1
        if self._skip is not None:
            return
        if self._cell_el is not None:
            if name == "text:p" and self._text is not None and self._text:
                self._text.append("\n")
            return
        if name == "table:table-cell" or name == "table:covered-table-cell":
            if self._row_el is not None and self._depth == self._row_el + 1:
                self._cell(attrs)
            return
        if name == "table:table-row":
            if self._table is not None and self._row_el is None:
                self._start_row(attrs)
            return
        if name == "table:table":
            if self._table is not None:
                self._corrupt("表の中に表がある")
            sheet = attrs.get("table:name")
            if sheet is None:  # not a sheet (calamine skips it too)
                self._skip = self._depth
                return
            if sheet.lower() in {n.lower() for n in self.sheets}:
                raise _Reject("file-corrupt", f"シート名「{sheet}」が重複している", sheet)
            state = "hidden" if attrs.get("table:style-name") in self._hidden_styles else "visible"
            self._f = self.sheets[sheet] = SheetFacts(name=sheet, state=state)
            self._table, self._row, self._hidden, self._tags, self._area = self._depth, 0, [], 0, 0
            return
        if name == "style:style":
            self._style = attrs.get("style:name")
        elif name == "style:table-properties" and self._style and attrs.get("table:display") == "false":
            self._hidden_styles.add(self._style)
        elif name in ("table:dde-link", "office:dde-source", "table:table-source", "table:cell-range-source"):
            self.external_links = True

    def _start_row(self, attrs: dict[str, str]) -> None:
        rrep = self._count(attrs, "table:number-rows-repeated")
        self._row_el = self._depth
        self._row_first, self._rrep = self._row + 1, rrep
        self._row += rrep
        self._col = 0
        if attrs.get("table:visibility") in ("collapse", "filter"):
            self._hidden.append((self._row_first, self._row))

    def _cell(self, attrs: dict[str, str]) -> None:
        f, lim = self._f, self.limits
        assert f is not None
        self._cell_el = self._depth
        crep = self._count(attrs, "table:number-columns-repeated")
        c1 = self._col + 1
        self._col += crep
        self._tags += 1
        if self._tags > lim.max_cells:
            raise _Reject("sheet-too-large", f"セルが {lim.max_cells:,} 個を超えている(書式だけの空セルを含む)", f.name)
        r1, r2, c2 = self._row_first, self._row, self._col
        rs, cs = self._count(attrs, "table:number-rows-spanned"), self._count(attrs, "table:number-columns-spanned")
        if rs > 1 or cs > 1:
            self._merged(r1, c1, r2, c2, rs, cs)
        formula = attrs.get("table:formula", "")
        has_value = any(k in attrs for k in _ODS_VALUES) or attrs.get("office:value-type") == "string"
        if not (has_value or formula):
            return  # an empty (perhaps styled) cell: no content, not part of the extent
        f.cells += (r2 - r1 + 1) * crep
        if f.cells > lim.max_cells:
            raise _Reject("sheet-too-large", f"データのあるセルが {lim.max_cells:,} 個を超えている", f.name)
        if r2 > lim.max_rows:
            raise _Reject(
                "sheet-too-large", f"{col_letters(c1)}{r2} にデータがあり、{lim.max_rows:,} 行を超えている", f.name
            )
        if c2 > lim.max_cols:
            raise _Reject(
                "sheet-too-large", f"{col_letters(c2)}{r1} にデータがあり、{lim.max_cols:,} 列を超えている", f.name
            )
        f.max_row, f.max_col = max(f.max_row, r2), max(f.max_col, c2)
        if not formula:
            return
        text = _ods_formula(formula[:_TEXT_CAP])
        if _EXTERNAL.search(formula):
            self.external_links = True
        cached = has_value
        error = attrs.get("calcext:value-type") == "error"
        self._block = (r1, c1, r2, c2)
        for r in range(r1, r2 + 1):
            for c in range(c1, c2 + 1):
                addr = f"{col_letters(c)}{r}"
                f.formulas[addr] = text
                if not cached:
                    f.no_cache.add(addr)
        string_value = attrs.get("office:string-value")
        if error or (string_value is not None and _ODS_ERROR.fullmatch(string_value.strip())):
            self._set_errors(string_value if string_value and string_value.strip() else "")
        if error or attrs.get("office:value-type") == "string":
            self._text = []  # the shown text tells which error it is (Excel's ODS: the value itself)

    def _set_errors(self, value: str) -> None:
        assert self._f is not None
        r1, c1, r2, c2 = self._block
        for r in range(r1, r2 + 1):
            for c in range(c1, c2 + 1):
                self._f.errors[f"{col_letters(c)}{r}"] = value or "#エラー"

    def _merged(self, r1: int, c1: int, r2: int, c2: int, rs: int, cs: int) -> None:
        f, lim = self._f, self.limits
        assert f is not None
        crep = c2 - c1 + 1
        if r2 + rs - 1 > lim.max_rows or c2 + cs - 1 > lim.max_cols:
            ref = f"{col_letters(c1)}{r1}:{col_letters(c2 + cs - 1)}{r2 + rs - 1}"
            raise _Reject("sheet-too-large", f"範囲 {ref} が大きすぎる", f.name)
        self._area += rs * cs * (r2 - r1 + 1) * crep
        if self._area > lim.max_cells:
            raise _Reject("sheet-too-large", "結合セルの範囲が大きすぎる", f.name)
        for r in range(r1, r2 + 1):
            for c in range(c1, c2 + 1):
                f.merged.append(f"{col_letters(c)}{r}:{col_letters(c + cs - 1)}{r + rs - 1}")

    def _chars(self, text: str) -> None:
        if self._text is not None and sum(map(len, self._text)) < 256:
            self._text.append(text)

    def _end(self, name: str) -> None:
        depth = self._depth
        self._depth -= 1
        if self._skip is not None:
            if depth == self._skip:
                self._skip = None
            return
        if depth == self._cell_el:
            self._cell_el = None
            if self._text is not None:
                shown = "".join(self._text).strip()
                self._text = None
                if _ODS_ERROR.fullmatch(shown):
                    self._set_errors(shown)
        elif depth == self._row_el:
            self._row_el = None
        elif depth == self._table and self._f is not None:
            f = self._f
            for first, last in self._hidden:  # only rows up to the data's extent matter
                f.hidden_rows.update(range(first, min(last, f.max_row) + 1))
            self._table = self._f = None
        elif name == "style:style":
            self._style = None


# --- the inspector -----------------------------------------------------------------------------


class _Inspector:
    def __init__(self, data: bytes, name: str, limits: Limits) -> None:
        self.data = data
        self.name = name
        self.limits = limits
        self.warnings: list[Issue] = []
        self.application = ""
        self.external_links = False
        self.calc_on_load = False
        self.inflated = 0

    def run(self) -> GateResult:
        data, lim = self.data, self.limits
        if len(data) == 0:
            raise _Reject("file-empty")
        if len(data) > lim.max_file_bytes:
            raise _Reject("file-too-large", f"{_fmt_bytes(len(data))}、上限 {_fmt_bytes(lim.max_file_bytes)}")
        if data.startswith(_OLE_MAGIC):
            result = _inspect_ole(data, lim, self.warnings, self.name)
            result.issues.append(_legacy_format("xls", self.name))
            return result
        if data[:2] in _RAW_BIFF_BOF and len(data) >= 4:  # Excel 2.x–4.0 wrote the BIFF stream bare
            raise _Reject("file-legacy-xls", _RAW_BIFF_BOF[data[:2]])
        if not data.startswith(_ZIP_MAGIC):
            raise _Reject("file-not-workbook", _sniff_non_zip(data))
        infos = self._open_zip()
        by_name = {i.filename: i for i in infos}
        lower = {n.lower() for n in by_name}
        if "xl/workbook.bin" in lower:
            raise _Reject("file-xlsb", "xl/workbook.bin")
        if "xl/workbook.xml" not in by_name:
            if "mimetype" in by_name or "content.xml" in by_name:
                return self._run_ods(infos, by_name)
            if "mimetype" in lower or "content.xml" in lower:
                raise _Reject("file-not-workbook", "OpenDocument 形式ではない(名前の大文字・小文字が違う)")
            if "word/document.xml" in lower:
                raise _Reject("file-not-workbook", "Word 文書(.docx)")
            if "ppt/presentation.xml" in lower:
                raise _Reject("file-not-workbook", "PowerPoint 文書(.pptx)")
            raise _Reject("file-not-workbook", "Excel ブックではない ZIP ファイル")

        macros = any(n.endswith("vbaproject.bin") or n.startswith("xl/macrosheets/") for n in lower)
        self.external_links = any(n.startswith("xl/externallinks/") for n in lower)

        # Metadata first (they tell which members are worksheets), then everything else once.
        meta = {
            n: _MetaParser()
            for n in (
                "xl/workbook.xml",
                "xl/_rels/workbook.xml.rels",
                "docProps/app.xml",
                "docProps/core.xml",
                "docProps/custom.xml",
            )
        }
        done: set[str] = set()
        for n, parser in meta.items():
            if n in by_name:
                self._read(by_name[n], parser)
                done.add(n)
        sheets, targets = self._sheets(meta)
        ct = by_name.get("[Content_Types].xml")
        ctp = _MetaParser()
        if ct is not None:
            self._read(ct, ctp)
            done.add(ct.filename)
            macros = macros or any(
                "macroenabled" in a.get("ContentType", "").lower() for _, a in ctp.elements
            )
        app = meta["docProps/app.xml"].texts.get("Application", "")
        self.application = app.strip()[:200]
        for local, a in meta["xl/workbook.xml"].elements:
            if local == "calcPr" and a.get("fullCalcOnLoad") in ("1", "true"):
                self.calc_on_load = True

        scanners: dict[str, _SheetScanner] = {}
        for sheet_name, target in targets.items():
            scanners[target] = _SheetScanner(sheets[sheet_name], lim)
        for info in infos:
            if info.filename in done:
                continue
            scanner = scanners.get(info.filename)
            if scanner is None and re.fullmatch(
                r"xl/(worksheets|macrosheets|dialogsheets)/[^/]+\.xml", info.filename, re.I
            ):
                # A worksheet part no sheet points to: still bounded, since a reader might find it.
                scanner = _SheetScanner(SheetFacts(name=info.filename, state="veryHidden"), lim)
            self._read(info, scanner)

        if macros:
            self.warnings.append(make_issue("file-macros", file=self.name))
        if self.external_links:
            self.warnings.append(make_issue("external-links", file=self.name))
        for facts in sheets.values():
            if facts.state != "visible" and facts.name != META_SHEET:
                self.warnings.append(
                    make_issue("content-hidden", file=self.name, sheet=facts.name, value=facts.state)
                )
        return GateResult(
            kind="xlsm" if macros else "xlsx",
            issues=list(self.warnings),
            sheets=sheets,
            application=self.application,
            external_links=self.external_links,
            calc_on_load=self.calc_on_load,
            saved=meta["docProps/core.xml"].texts.get("modified", "").strip()[:40],
            custom=dict(meta["docProps/custom.xml"].props),
        )

    def _run_ods(self, infos: list[zipfile.ZipInfo], by_name: dict[str, zipfile.ZipInfo]) -> GateResult:
        """An OpenDocument file: the same zip checks (already done), its mimetype, manifest (encryption)
        and meta, one streaming pass over content.xml, and the DTD scan of every other member."""
        mime = by_name.get("mimetype")
        text = _Collect(256)
        if mime is not None:
            self._read(mime, text)
        value = bytes(text.data)
        if not value.startswith(ODS_MIME) or value[len(ODS_MIME) :].strip():
            kinds = {b"text": "OpenDocument テキスト(.odt)", b"presentation": "OpenDocument プレゼンテーション(.odp)",
                     b"graphics": "OpenDocument 図形描画(.odg)"}  # fmt: skip
            what = next((w for k, w in kinds.items() if value.startswith(b"application/vnd.oasis.opendocument." + k)), None)
            if what is None and mime is not None and value.startswith(b"application/vnd.oasis.opendocument."):
                what = "OpenDocument 形式(表計算ではない)"
            raise _Reject("file-not-workbook", what or "OpenDocument 形式(mimetype が不正)")
        done = {"mimetype"}
        meta = {n: _MetaParser() for n in ("META-INF/manifest.xml", "meta.xml")}
        if "META-INF/manifest.xml" not in by_name:
            raise _Reject("file-corrupt", "META-INF/manifest.xml がない")
        # The manifest first: in a password-protected file every other part (meta.xml too) is
        # ciphertext, which would read as a damaged file.
        self._read(by_name["META-INF/manifest.xml"], meta["META-INF/manifest.xml"])
        done.add("META-INF/manifest.xml")
        if any(local == "encryption-data" for local, _ in meta["META-INF/manifest.xml"].elements):
            raise _Reject("file-encrypted", "パスワード付きの .ods")
        if "meta.xml" in by_name:
            self._read(by_name["meta.xml"], meta["meta.xml"])
            done.add("meta.xml")
        if "content.xml" not in by_name:
            raise _Reject("file-corrupt", "content.xml がない")
        scanner = _OdsScanner(self.limits)
        self._read(by_name["content.xml"], scanner)
        done.add("content.xml")
        for info in infos:
            if info.filename not in done:
                self._read(info, None)
        lower = {n.lower() for n in by_name}
        if any(n.startswith(("basic/", "scripts/")) for n in lower):  # LibreOffice Basic, scripts
            self.warnings.append(make_issue("file-macros", file=self.name))
        if scanner.external_links:
            self.warnings.append(make_issue("external-links", file=self.name))
        for facts in scanner.sheets.values():
            if facts.state != "visible" and facts.name != META_SHEET:
                self.warnings.append(
                    make_issue("content-hidden", file=self.name, sheet=facts.name, value=facts.state)
                )
        self.warnings.append(_legacy_format("ods", self.name))
        texts = meta["meta.xml"].texts
        return GateResult(
            kind="ods",
            issues=list(self.warnings),
            sheets=scanner.sheets,
            application=texts.get("generator", "").strip()[:200],
            external_links=scanner.external_links,
            saved=_local_time(texts.get("date", "").strip()[:40]),
            custom=dict(meta["meta.xml"].props),
        )

    def _open_zip(self) -> list[zipfile.ZipInfo]:
        data, lim = self.data, self.limits
        # Each central-directory entry starts with this signature, so the count bounds how many
        # ZipInfo objects zipfile would build: refuse 50,000-member files before building them.
        if data.count(b"PK\x01\x02") > lim.max_members:
            raise _Reject("file-too-many-members", f"上限 {lim.max_members:,} 個")
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
            infos = zf.infolist()
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            ValueError,
            EOFError,
            OSError,
            struct.error,
            UnicodeDecodeError,
        ) as exc:
            raise _Reject("file-corrupt", f"ZIP 構造が不正: {exc}"[:120]) from None
        if len(infos) > lim.max_members:
            raise _Reject("file-too-many-members", f"{len(infos):,} 個、上限 {lim.max_members:,} 個")
        seen: set[str] = set()
        for info in infos:
            n = info.orig_filename
            if (
                n.startswith(("/", "\\"))
                or re.match(r"^[A-Za-z]:", n)
                or "\\" in n
                or "\x00" in n
                or any(part in ("..", ".") for part in n.split("/"))
            ):
                raise _Reject("file-bad-member-name", repr(n)[:80])
            # Two members with the same name: zipfile reads the last, other readers the first,
            # so the gate could be checking a different part than the parser gets.
            if n.lower() in seen:
                raise _Reject("file-bad-member-name", f"同じ名前が2つ: {n!r}"[:80])
            seen.add(n.lower())
            if info.flag_bits & 0x1:
                raise _Reject("file-encrypted", f"{n}: ZIP の暗号化")
        total = sum(i.file_size for i in infos)
        for info in infos:
            self._check_declared(info)
        if total > lim.max_total_bytes:
            raise _Reject(
                "file-zip-bomb", f"展開後の合計 {_fmt_bytes(total)}、上限 {_fmt_bytes(lim.max_total_bytes)}"
            )
        # Overlapping entries share compressed bytes (the "better zip bomb"); Excel never writes them.
        spans = sorted(
            ((*_data_span(data, i), i.header_offset, i.filename) for i in infos), key=lambda s: s[2]
        )
        for a, b in itertools.pairwise(spans):
            if b[2] < a[1]:
                raise _Reject("file-zip-bomb", f"{b[3]}: ほかの部品とデータが重なっている")
        self.spans = {s[3]: (s[0], s[1]) for s in spans}
        return infos

    def _check_declared(self, info: zipfile.ZipInfo) -> None:
        lim = self.limits
        if info.file_size > lim.max_entry_bytes:
            raise _Reject(
                "file-zip-bomb",
                f"{info.filename}: 展開後 {_fmt_bytes(info.file_size)}、上限 {_fmt_bytes(lim.max_entry_bytes)}",
            )
        if (
            info.file_size > lim.ratio_grace_bytes
            and info.compress_size < lim.min_inflate_ratio * info.file_size
        ):
            raise _Reject(
                "file-zip-bomb",
                f"{info.filename}: 圧縮率 1/{info.file_size // max(info.compress_size, 1):,}",
            )

    def _read(self, info: zipfile.ZipInfo, consumer: _MetaParser | _SheetScanner | _OdsScanner | _Collect | None) -> None:
        start, end = self.spans[info.filename]
        budget = min(self.limits.max_entry_bytes, self.limits.max_total_bytes - self.inflated)
        if isinstance(consumer, _MetaParser | _Collect):
            budget = min(budget, _META_CAP)
        dtd = _DtdScanner(info.filename)
        produced = 0
        try:
            for chunk in _inflate(self.data, info, start, end, budget):
                produced += len(chunk)
                dtd.feed(chunk)  # before any parser sees the chunk
                if isinstance(consumer, _SheetScanner) and dtd.mode != "ascii":
                    # Our tokenizer reads ASCII-compatible XML; Excel writes nothing else here.
                    raise _Reject("file-corrupt", f"{info.filename}: シートが Excel の XML 形式でない")
                if isinstance(consumer, _Collect) or (consumer is not None and dtd.mode != "binary"):
                    consumer.feed(chunk)
            if isinstance(consumer, _MetaParser | _OdsScanner):
                consumer.feed(b"", True)
            elif isinstance(consumer, _SheetScanner) and dtd.mode != "binary":
                consumer.close()
        except expat.ExpatError as exc:
            raise _Reject("file-corrupt", f"{info.filename}: XML が不正 ({exc})"[:120]) from None
        finally:
            self.inflated += produced

    def _sheets(self, meta: dict[str, _MetaParser]) -> tuple[dict[str, SheetFacts], dict[str, str]]:
        """Sheet names, states and worksheet parts, from workbook.xml and its relationships."""
        rels = {}
        for local, a in meta["xl/_rels/workbook.xml.rels"].elements:
            if local == "Relationship" and a.get("TargetMode", "") != "External":
                rels[a.get("Id", "")] = (a.get("Type", ""), a.get("Target", ""))
        sheets: dict[str, SheetFacts] = {}
        targets: dict[str, str] = {}
        seen: set[str] = set()
        for local, a in meta["xl/workbook.xml"].elements:
            if local != "sheet":
                continue
            name = a.get("name", "")
            if name.lower() in seen:
                raise _Reject("file-corrupt", f"シート名「{name}」が重複している")
            seen.add(name.lower())
            state = a.get("state", "visible")
            sheets[name] = SheetFacts(
                name=name, state=state if state in ("hidden", "veryHidden") else "visible"
            )
            _type, target = rels.get(a.get("r:id", ""), ("", ""))
            # Every sheet part is scanned whatever its declared type: a reader may not trust the type.
            if target:
                target = unquote(target)
                path = (
                    target.lstrip("/")
                    if target.startswith("/")
                    else posixpath.normpath(posixpath.join("xl", target))
                )
                if path not in self.spans:
                    raise _Reject("file-corrupt", f"シート「{name}」の部品 {path} がない", sheet=name)
                if path in targets.values():
                    raise _Reject(
                        "file-corrupt", f"シート「{name}」がほかのシートと同じ部品を指している", sheet=name
                    )
                targets[name] = path
        return sheets, targets
