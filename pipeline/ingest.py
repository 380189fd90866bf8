"""The one module that opens input files: finds them, reads their bytes, unwraps e-mails and zips,
passes every workbook through the gate, and parses the survivors in a contained child process.

Nothing here judges the data; it returns raw cell values with their positions, and a FileReport
for what could not be read. Inputs are opened read-only and never modified, moved or deleted.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from pipeline import gate, mail, sandbox
from pipeline.report import FileReport, Issue, make_issue
from pipeline.settings import LimitSettings

# Read by their bytes, whatever the suffix says: .xlsx/.xlsm, .ods and BIFF8 .xls (values only); the
# gate rejects .xlsb and Excel 95 .xls with a code.
WORKBOOK_SUFFIXES = {".xlsx", ".xlsm", ".ods", ".xls", ".xlsb"}
ENVELOPE_SUFFIXES = {".eml", ".msg", ".zip"}
SILENT_NAMES = {"thumbs.db", "desktop.ini", ".ds_store"}


@dataclass
class Source:
    """One workbook to validate, with where it came from."""

    name: str  # shown to people: "file.xlsx" or "mail.eml › file.xlsx"
    path: Path  # the inbox file it was read from
    data: bytes
    received: str  # ISO 8601, local time: the file's mtime or the e-mail's Date
    sender: str = ""
    subject: str = ""
    notes: list[Issue] = field(default_factory=list)  # warnings about the envelope it came in

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def report(self, **kwargs: Any) -> FileReport:
        return FileReport(
            name=self.name,
            path=str(self.path),
            received=self.received,
            sha256=self.sha256,
            sender=self.sender,
            subject=self.subject,
            issues=list(self.notes),
            **kwargs,
        )


@dataclass
class RawSheet:
    """A worksheet's values as read: rows[0] is Excel row 1, rows[r][0] is column A."""

    name: str
    state: str  # visible, hidden, veryHidden
    rows: list[list[Any]]
    facts: gate.SheetFacts | None = None
    merged: list[str] = field(default_factory=list)


def local_time(timestamp: float | datetime) -> str:
    """An aware local ISO time; all received times share one offset so they compare as strings."""
    moment = timestamp if isinstance(timestamp, datetime) else datetime.fromtimestamp(timestamp)
    return moment.astimezone().isoformat(timespec="seconds")


def find_files(paths: Iterable[Path]) -> list[Path]:
    """Every file under the given files and folders, recursively, in a stable order.

    Excel's owner files (~$…) and system files (Thumbs.db, dot files) are skipped silently.
    """
    found: list[Path] = []
    for p in paths:
        candidates = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
        for q in candidates:
            if q.name.startswith(("~$", ".")) or q.name.lower() in SILENT_NAMES:
                continue
            found.append(q)
    return found


def open_inputs(files: Iterable[Path], limits: LimitSettings) -> Iterator[Source | FileReport]:
    """Sources to validate, and finished reports for files that are not workbooks or can't be read."""
    for path in files:
        suffix = path.suffix.lower()
        if suffix not in WORKBOOK_SUFFIXES | ENVELOPE_SUFFIXES:
            yield FileReport(name=path.name, path=str(path), status="ignored")
            continue
        try:
            size = path.stat().st_size
            if size > limits.max_file_mib * 2**20:
                report = FileReport(name=path.name, path=str(path))
                report.issues.append(
                    make_issue("file-too-large", file=path.name, value=f"{size / 2**20:.1f} MiB",
                               detail=f"上限 {limits.max_file_mib} MiB")
                )
                report.settle_status()
                yield report
                continue
            data = path.read_bytes()
            received = local_time(path.stat().st_mtime)
        except OSError as exc:
            report = FileReport(name=path.name, path=str(path))
            report.issues.append(make_issue("file-vanished", file=path.name, detail=type(exc).__name__))
            report.settle_status()
            yield report
            continue
        if suffix in WORKBOOK_SUFFIXES:
            yield Source(path.name, path, data, received)
        else:
            yield from _unwrap(path, data, received, limits)


def _unwrap(path: Path, data: bytes, received: str, limits: LimitSettings) -> Iterator[Source | FileReport]:
    """Workbooks inside an e-mail or zip. Errors about the message (no workbook, an unsafe zip
    beside a good attachment) are reported on the message itself, and its good attachments are
    still read; warnings (e.g. no Date header) travel with each attachment."""
    envelope = mail.read_envelope(data, path.name, _zip_limits(limits))
    when = local_time(envelope.received) if envelope.received else received
    errors = [i for i in envelope.issues if i.is_error]
    if not envelope.attachments or errors:
        report = FileReport(
            name=path.name,
            path=str(path),
            received=when,
            sha256=hashlib.sha256(data).hexdigest(),
            sender=envelope.sender,
            subject=envelope.subject,
            issues=errors or list(envelope.issues),
        )
        report.settle_status()
        yield report
    warnings = [i for i in envelope.issues if not i.is_error]
    for att in envelope.attachments:
        yield Source(
            f"{path.name} › {att.name}",
            path,
            att.data,
            when,
            envelope.sender,
            envelope.subject,
            notes=warnings,
        )


def _zip_limits(limits: LimitSettings) -> mail.ZipLimits:
    return mail.ZipLimits(
        max_members=limits.max_members,
        max_member_bytes=limits.max_file_mib * 2**20,
        max_total_bytes=limits.max_total_mib * 2**20,
    )


def reload(report: FileReport, limits: LimitSettings) -> bytes | None:
    """The bytes a report was made from, read again (for the feedback copy), or None when the file
    changed or vanished since: we never annotate anything but what we validated."""
    try:
        data = Path(report.path).read_bytes()
    except OSError:
        return None
    candidates = [data]
    if Path(report.path).suffix.lower() in ENVELOPE_SUFFIXES:
        candidates = [a.data for a in mail.read_envelope(data, Path(report.path).name, _zip_limits(limits)).attachments]
    return next((d for d in candidates if hashlib.sha256(d).hexdigest() == report.sha256), None)


def gate_limits(limits: LimitSettings) -> gate.Limits:
    return gate.Limits(
        max_file_bytes=limits.max_file_mib * 2**20,
        max_members=limits.max_members,
        max_entry_bytes=limits.max_entry_mib * 2**20,
        max_total_bytes=limits.max_total_mib * 2**20,
        max_cells=limits.max_cells,
        max_rows=limits.max_rows,
        max_cols=limits.max_cols,
        timeout_s=limits.parse_timeout_s,
        memory_bytes=limits.parse_memory_mib * 2**20,
    )


# --- The contained reader ---------------------------------------------------------------------
# calamine is a native library: a hostile file can abort the process (SIGABRT) or allocate without
# bound. The gate rejects the cases we know; a sandbox.Worker contains the ones we don't.


def open_reader(limits: LimitSettings) -> sandbox.Worker:
    """One contained worker that parses workbooks for a whole run (`with open_reader(...) as r`)."""
    return sandbox.Worker(_parse, timeout_s=limits.parse_timeout_s, memory_bytes=limits.parse_memory_mib * 2**20)


class SheetTooLarge(Exception):
    """Raised in the worker when a sheet as read is beyond the limits (reported as sheet-too-large).

    The gate bounds .xlsx and .ods sheets before the reader sees them; an .xls is bounded here, on
    what calamine built (inside the worker's memory cap), before anything is returned.
    """

    def __init__(self, sheet: str, detail: str) -> None:
        super().__init__(sheet, detail)
        self.sheet, self.detail = sheet, detail


def _parse(
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
        raise SheetTooLarge(name, f"{gate.col_letters(cols)}{rows} までデータがあり、{what}を超えている")
    count = 0
    for row in sheet.iter_rows():  # one row at a time: nothing the size of the sheet is built
        count += sum(1 for v in row if v != "")
        if count > max_cells:
            raise SheetTooLarge(name, f"データのあるセルが {max_cells:,} 個を超えている")


def _range(m: Any) -> str:
    (r1, c1), (r2, c2) = m
    return f"{gate.col_letters(c1 + 1)}{r1 + 1}:{gate.col_letters(c2 + 1)}{r2 + 1}"


def read_workbook(
    source: Source, reader: sandbox.Worker, limits: gate.Limits
) -> tuple[list[RawSheet], gate.GateResult, FileReport]:
    """Gate, then parse. Returns the sheets (empty when rejected), the gate's result and a report
    that already holds the gate's issues."""
    report = source.report()
    checked = gate.inspect_workbook(source.data, source.name, limits)
    report.issues.extend(checked.issues)
    if not checked.ok:
        return [], checked, report
    try:
        payload = reader.call(source.data, (limits.max_cells, limits.max_rows, limits.max_cols))
    except SheetTooLarge as exc:
        report.issues.append(make_issue("sheet-too-large", file=source.name, sheet=exc.sheet, detail=exc.detail))
        return [], checked, report
    except sandbox.SandboxError as exc:
        # a dead, stuck or exhausted reader is reported apart from a damaged file
        report.issues.append(make_issue("reader-crashed", file=source.name, detail=f"{exc.kind}: {exc.detail}"))
        return [], checked, report
    except Exception as exc:  # the parser's own error: a damaged file the gate let through
        detail = f"{type(exc).__name__}: {str(exc)[:200]}"
        report.issues.append(make_issue("file-unreadable", file=source.name, detail=detail))
        return [], checked, report
    sheets = [
        RawSheet(name, state, rows, checked.sheets.get(name), merged)
        for name, state, rows, merged in payload
    ]
    return sheets, checked, report
