"""The gate's checks of an Excel 97-2003 .xls (an OLE2 compound file, BIFF8 records), where they
are cheap: the BIFF version, a password to open, the sheets and where they start, string counts
and each sheet's declared dimensions. Cell values are read by calamine alone."""

from __future__ import annotations

import io
import struct
from typing import Any, ClassVar

from pipeline.celltext import column_letters
from pipeline.limits import Limits
from pipeline.reader.scanning import META_SHEET, GateResult, Reject, SheetFacts
from pipeline.report import Issue, make_issue


def _open_ole(data: bytes) -> tuple[Any, dict[str, str]]:
    """An olefile handle on the bytes and its top-level entries (lower-case name → name as stored)."""
    import olefile  # BSD; imported lazily: only OLE2 files need it

    try:
        ole = olefile.OleFileIO(io.BytesIO(data))  # BytesIO: short bytes would be taken as a path
        entries = ole.listdir(streams=True, storages=True)
    except Exception as exc:
        raise Reject("file-corrupt", f"OLE2 構造が不正: {type(exc).__name__}") from None
    return ole, {p[0].lower(): p[0] for p in entries if p}


def inspect_ole(data: bytes, limits: Limits, warnings: list[Issue], name: str) -> GateResult:
    """OLE2/CFB: an encrypted OOXML package (rejected), a legacy .xls (checked, then read for its
    values), or some other Office file (rejected)."""
    ole, tops = _open_ole(data)
    try:
        if {"encryptioninfo", "encryptedpackage"} & tops.keys():
            raise Reject("file-encrypted", "パスワード付きブック")
        stream_name = tops.get("workbook") or tops.get("book")
        if stream_name is None:
            if "worddocument" in tops:
                raise Reject("file-not-workbook", "Word 文書(.doc)")
            if "powerpoint document" in tops:
                raise Reject("file-not-workbook", "PowerPoint 文書(.ppt)")
            raise Reject("file-not-workbook", "Excel ブックではない OLE2 ファイル")
        try:
            stream = ole.openstream(stream_name).read()  # at most the file's size (max_file_bytes)
        except Exception as exc:
            raise Reject("file-corrupt", f"{stream_name} ストリームが読めない: {type(exc).__name__}") from None
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
    and the worker bounds what it returns (pipeline.reader.workbook.parse_sheets).
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
            raise Reject("file-corrupt", "Workbook ストリームが途中で切れている")
        typ, size = struct.unpack_from("<HH", self.s, pos)
        end = pos + 4 + size
        if end > len(self.s):
            raise Reject("file-corrupt", "Workbook ストリームのレコードが途中で切れている")
        return typ, self.s[pos + 4 : end], end

    def run(self) -> dict[str, SheetFacts]:
        typ, body, pos = self._record(0)
        if typ in (0x0009, 0x0209, 0x0409):  # BOF of BIFF2, BIFF3, BIFF4
            raise Reject("file-legacy-xls", {0x0009: "Excel 2.x", 0x0209: "Excel 3.0", 0x0409: "Excel 4.0"}[typ])
        if typ != 0x0809 or len(body) < 4:
            raise Reject("file-corrupt", "Workbook ストリームが BOF で始まっていない")
        version, dt = struct.unpack_from("<HH", body)
        if version in self.LEGACY:
            raise Reject("file-legacy-xls", self.LEGACY[version])
        if version != 0x0600:
            raise Reject("file-corrupt", f"BIFF のバージョンが不明 (0x{version:04X})")
        if dt != 0x0005:
            raise Reject("file-corrupt", "ブック全体の情報(globals)で始まっていない")
        bound: list[tuple[int, int, int, str]] = []  # (offset, state, type, name)
        sst_claim = sst_bytes = 0
        in_sst = False
        for _ in range(self.MAX_GLOBAL_RECORDS):
            typ, body, pos = self._record(pos)
            if typ == 0x000A:  # EOF of the globals
                break
            if typ == 0x002F:  # FILEPASS: everything after it is encrypted
                raise Reject("file-encrypted", "読み取りパスワード付きの .xls")
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
            raise Reject("file-corrupt", "ブック全体の情報が長すぎる")
        if sst_claim < 0 or sst_claim > sst_bytes // 3 + 1:  # each string takes at least 3 bytes
            raise Reject("file-corrupt", f"共有文字列の数 {sst_claim:,} が実際のデータと合わない")
        sheets: dict[str, SheetFacts] = {}
        states = {0: "visible", 1: "hidden", 2: "veryHidden"}
        for offset, state, kind, name in bound:
            if kind in (0x01, 0x06):  # an Excel 4.0 macro sheet, a VBA module
                self.macros = True
            if name.lower() in {n.lower() for n in sheets}:
                raise Reject("file-corrupt", f"シート名「{name}」が重複している")
            sheets[name] = SheetFacts(name=name, state=states[state])
            self._sheet_start(offset, name)
        if not sheets:
            raise Reject("file-corrupt", "シートがない")
        return sheets

    def _boundsheet(self, body: bytes) -> tuple[int, int, int, str]:
        if len(body) < 8:
            raise Reject("file-corrupt", "シートの情報(BOUNDSHEET)が短すぎる")
        offset, state, kind, cch, flags = struct.unpack_from("<LBBBB", body)
        state &= 0x3F
        if state not in (0, 1, 2) or kind not in (0x00, 0x01, 0x02, 0x06):
            raise Reject("file-corrupt", "シートの情報(BOUNDSHEET)が不正")
        raw = body[8 : 8 + (cch * 2 if flags & 1 else cch)]
        name = raw.decode("utf-16-le", "replace") if flags & 1 else raw.decode("latin-1")
        return offset, state, kind, name.replace("\0", "")

    def _sheet_start(self, offset: int, name: str) -> None:
        """The sheet substream must start with a BOF where BOUNDSHEET says (calamine slices the stream
        there and would panic past its end); its DIMENSIONS must be sane and not too large."""
        typ, body, pos = self._record(offset) if offset < len(self.s) else (0, b"", 0)
        if typ != 0x0809:
            raise Reject("file-corrupt", f"シート「{name}」の開始位置が不正", sheet=name)
        for _ in range(64):  # DIMENSIONS comes right after the sheet's index and calc settings
            typ, body, pos = self._record(pos)
            if typ == 0x000A:
                return
            if typ != 0x0200:
                continue
            if len(body) != 14:
                raise Reject("file-corrupt", f"シート「{name}」の範囲(DIMENSIONS)が不正", sheet=name)
            first_row, last_row, first_col, last_col = struct.unpack_from("<LLHH", body)
            if not (first_row <= last_row <= 65536 and first_col <= last_col <= 256):
                raise Reject("file-corrupt", f"シート「{name}」の範囲(DIMENSIONS)が不正", sheet=name)
            if (last_row - first_row) * (last_col - first_col) > self.limits.max_cells:
                ref = f"{column_letters(first_col + 1)}{first_row + 1}:{column_letters(last_col)}{last_row}"
                raise Reject(
                    "sheet-too-large",
                    f"使用範囲 {ref} が {self.limits.max_cells:,} セルを超えている(書式だけの空セルを含む)",
                    sheet=name,
                )
            return
