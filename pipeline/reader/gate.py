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
This module opens the package and dispatches; its scanners are pipeline.reader.scan_zip (bounded
inflation, DTDs), scan_xlsx (worksheet XML), scan_ods (content.xml) and scan_xls (BIFF records),
and what they share is pipeline.reader.scanning.
"""

from __future__ import annotations

import io
import itertools
import posixpath
import re
import struct
import zipfile
from urllib.parse import unquote
from xml.parsers import expat

from pipeline.limits import Limits
from pipeline.reader.scan_ods import OdsScanner
from pipeline.reader.scan_xls import inspect_ole
from pipeline.reader.scan_xlsx import SheetScanner
from pipeline.reader.scan_zip import DtdScanner, FirstBytes, bad_part_name, data_span, inflate
from pipeline.reader.scanning import (
    META_SHEET,
    ZIP_MAGIC,
    GateResult,
    Reject,
    SheetFacts,
    expat_for,
    fmt_bytes,
)
from pipeline.report import Issue, make_issue
from pipeline.times import local_moment_iso

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


# Apache POI's ZipSecureFile defaults: a member that inflates more than 100-fold (compressed
# below 1 % of its size) is a bomb, once it is larger than the grace size inflated.
MIN_INFLATE_RATIO = 0.01
RATIO_GRACE_BYTES = 100 * 2**10
# Parts we parse as XML for metadata: tiny in any real file, so a cap keeps expat cheap.
_META_CAP = 16 * 2**20


def inspect_workbook(data: bytes, name: str, limits: Limits = Limits()) -> GateResult:
    """Check the raw bytes of a file named `name` (used for messages/suffix) before any parser sees them.

    Never raises for bad input: anything unexpected inside the gate itself becomes a
    `file-unreadable` rejection, so one hostile file cannot stop the nightly run.
    """
    insp = _Inspector(data, name, limits)
    try:
        return insp.run()
    except Reject as r:
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


def _local(name: str) -> str:
    return name.rsplit(" ", 1)[-1]


class _MetaParser:
    """Collect elements of a small XML part with expat; DTDs are refused here too (belt and braces)."""

    def __init__(self) -> None:
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.texts: dict[str, str] = {}
        self.props: dict[str, str] = {}  # docProps/custom.xml: <property name="…"><vt:lpwstr>text
        self._prop = ""
        self._stack: list[str] = []
        self.parser = expat_for(self, namespace_separator=" ")

    def _dtd(self, *args: object) -> None:
        raise Reject("file-unsafe-xml", "DOCTYPE/ENTITY 宣言")

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


ODS_MIME = b"application/vnd.oasis.opendocument.spreadsheet"


_LEGACY_KINDS = {"ods": "OpenDocument スプレッドシート(.ods)形式", "xls": "Excel 97-2003 ブック(.xls)形式"}


def _legacy_format(kind: str, name: str) -> Issue:
    # An .xls is read for its values alone: the gate cannot see its formulas, error values, hidden
    # rows or merged cells (an .ods gets the same row-level checks as an .xlsx).
    detail = "(この形式では数式・エラー値・非表示の行・結合セルを確認できません)" if kind == "xls" else ""
    return make_issue("file-legacy-format", file=name, value=_LEGACY_KINDS[kind], detail=detail)


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
            raise Reject("file-empty")
        if len(data) > lim.max_file_bytes:
            raise Reject("file-too-large", f"{fmt_bytes(len(data))}、上限 {fmt_bytes(lim.max_file_bytes)}")
        if data.startswith(_OLE_MAGIC):
            result = inspect_ole(data, lim, self.warnings, self.name)
            result.issues.append(_legacy_format("xls", self.name))
            return result
        if data[:2] in _RAW_BIFF_BOF and len(data) >= 4:  # Excel 2.x–4.0 wrote the BIFF stream bare
            raise Reject("file-legacy-xls", _RAW_BIFF_BOF[data[:2]])
        if not data.startswith(ZIP_MAGIC):
            raise Reject("file-not-workbook", _sniff_non_zip(data))
        infos = self._open_zip()
        by_name = {i.filename: i for i in infos}
        lower = {n.lower() for n in by_name}
        if "xl/workbook.bin" in lower:
            raise Reject("file-xlsb", "xl/workbook.bin")
        if "xl/workbook.xml" not in by_name:
            if "mimetype" in by_name or "content.xml" in by_name:
                return self._run_ods(infos, by_name)
            if "mimetype" in lower or "content.xml" in lower:
                raise Reject("file-not-workbook", "OpenDocument 形式ではない(名前の大文字・小文字が違う)")
            if "word/document.xml" in lower:
                raise Reject("file-not-workbook", "Word 文書(.docx)")
            if "ppt/presentation.xml" in lower:
                raise Reject("file-not-workbook", "PowerPoint 文書(.pptx)")
            raise Reject("file-not-workbook", "Excel ブックではない ZIP ファイル")

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

        scanners: dict[str, SheetScanner] = {}
        for sheet_name, target in targets.items():
            scanners[target] = SheetScanner(sheets[sheet_name], lim)
        for info in infos:
            if info.filename in done:
                continue
            scanner = scanners.get(info.filename)
            if scanner is None and re.fullmatch(
                r"xl/(worksheets|macrosheets|dialogsheets)/[^/]+\.xml", info.filename, re.I
            ):
                # A worksheet part no sheet points to: still bounded, since a reader might find it.
                scanner = SheetScanner(SheetFacts(name=info.filename, state="veryHidden"), lim)
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
        text = FirstBytes(256)
        if mime is not None:
            self._read(mime, text)
        value = bytes(text.data)
        if not value.startswith(ODS_MIME) or value[len(ODS_MIME) :].strip():
            kinds = {b"text": "OpenDocument テキスト(.odt)", b"presentation": "OpenDocument プレゼンテーション(.odp)",
                     b"graphics": "OpenDocument 図形描画(.odg)"}  # fmt: skip
            what = next((w for k, w in kinds.items() if value.startswith(b"application/vnd.oasis.opendocument." + k)), None)
            if what is None and mime is not None and value.startswith(b"application/vnd.oasis.opendocument."):
                what = "OpenDocument 形式(表計算ではない)"
            raise Reject("file-not-workbook", what or "OpenDocument 形式(mimetype が不正)")
        done = {"mimetype"}
        meta = {n: _MetaParser() for n in ("META-INF/manifest.xml", "meta.xml")}
        if "META-INF/manifest.xml" not in by_name:
            raise Reject("file-corrupt", "META-INF/manifest.xml がない")
        # The manifest first: in a password-protected file every other part (meta.xml too) is
        # ciphertext, which would read as a damaged file.
        self._read(by_name["META-INF/manifest.xml"], meta["META-INF/manifest.xml"])
        done.add("META-INF/manifest.xml")
        if any(local == "encryption-data" for local, _ in meta["META-INF/manifest.xml"].elements):
            raise Reject("file-encrypted", "パスワード付きの .ods")
        if "meta.xml" in by_name:
            self._read(by_name["meta.xml"], meta["meta.xml"])
            done.add("meta.xml")
        if "content.xml" not in by_name:
            raise Reject("file-corrupt", "content.xml がない")
        scanner = OdsScanner(self.limits)
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
            saved=local_moment_iso(texts.get("date", "").strip()[:40]),
            custom=dict(meta["meta.xml"].props),
        )

    def _open_zip(self) -> list[zipfile.ZipInfo]:
        data, lim = self.data, self.limits
        # Each central-directory entry starts with this signature, so the count bounds how many
        # ZipInfo objects zipfile would build: refuse 50,000-member files before building them.
        if data.count(b"PK\x01\x02") > lim.max_members:
            raise Reject("file-too-many-members", f"上限 {lim.max_members:,} 個")
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
            raise Reject("file-corrupt", f"ZIP 構造が不正: {exc}"[:120]) from None
        if len(infos) > lim.max_members:
            raise Reject("file-too-many-members", f"{len(infos):,} 個、上限 {lim.max_members:,} 個")
        seen: set[str] = set()
        for info in infos:
            n = info.orig_filename
            if bad_part_name(n):
                raise Reject("file-bad-member-name", repr(n)[:80])
            # Two members with the same name: zipfile reads the last, other readers the first,
            # so the gate could be checking a different part than the parser gets.
            if n.lower() in seen:
                raise Reject("file-bad-member-name", f"同じ名前が2つ: {n!r}"[:80])
            seen.add(n.lower())
            if info.flag_bits & 0x1:
                raise Reject("file-encrypted", f"{n}: ZIP の暗号化")
        total = sum(i.file_size for i in infos)
        for info in infos:
            self._check_declared(info)
        if total > lim.max_total_bytes:
            raise Reject(
                "file-zip-bomb", f"展開後の合計 {fmt_bytes(total)}、上限 {fmt_bytes(lim.max_total_bytes)}"
            )
        # Overlapping entries share compressed bytes (the "better zip bomb"); Excel never writes them.
        spans = sorted(
            ((*data_span(data, i), i.header_offset, i.filename) for i in infos), key=lambda s: s[2]
        )
        for a, b in itertools.pairwise(spans):
            if b[2] < a[1]:
                raise Reject("file-zip-bomb", f"{b[3]}: ほかの部品とデータが重なっている")
        self.spans = {s[3]: (s[0], s[1]) for s in spans}
        return infos

    def _check_declared(self, info: zipfile.ZipInfo) -> None:
        lim = self.limits
        if info.file_size > lim.max_entry_bytes:
            raise Reject(
                "file-zip-bomb",
                f"{info.filename}: 展開後 {fmt_bytes(info.file_size)}、上限 {fmt_bytes(lim.max_entry_bytes)}",
            )
        if (
            info.file_size > RATIO_GRACE_BYTES
            and info.compress_size < MIN_INFLATE_RATIO * info.file_size
        ):
            raise Reject(
                "file-zip-bomb",
                f"{info.filename}: 圧縮率 1/{info.file_size // max(info.compress_size, 1):,}",
            )

    def _read(self, info: zipfile.ZipInfo, consumer: _MetaParser | SheetScanner | OdsScanner | FirstBytes | None) -> None:
        start, end = self.spans[info.filename]
        budget = min(self.limits.max_entry_bytes, self.limits.max_total_bytes - self.inflated)
        if isinstance(consumer, _MetaParser | FirstBytes):
            budget = min(budget, _META_CAP)
        dtd = DtdScanner(info.filename)
        produced = 0
        try:
            for chunk in inflate(self.data, info, start, end, budget):
                produced += len(chunk)
                dtd.feed(chunk)  # before any parser sees the chunk
                if isinstance(consumer, SheetScanner) and dtd.mode != "ascii":
                    # Our tokenizer reads ASCII-compatible XML; Excel writes nothing else here.
                    raise Reject("file-corrupt", f"{info.filename}: シートが Excel の XML 形式でない")
                if isinstance(consumer, FirstBytes) or (consumer is not None and dtd.mode != "binary"):
                    consumer.feed(chunk)
            if isinstance(consumer, _MetaParser | OdsScanner):
                consumer.feed(b"", True)
            elif isinstance(consumer, SheetScanner) and dtd.mode != "binary":
                consumer.close()
        except expat.ExpatError as exc:
            raise Reject("file-corrupt", f"{info.filename}: XML が不正 ({exc})"[:120]) from None
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
                raise Reject("file-corrupt", f"シート名「{name}」が重複している")
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
                    raise Reject("file-corrupt", f"シート「{name}」の部品 {path} がない", sheet=name)
                if path in targets.values():
                    raise Reject(
                        "file-corrupt", f"シート「{name}」がほかのシートと同じ部品を指している", sheet=name
                    )
                targets[name] = path
        return sheets, targets
