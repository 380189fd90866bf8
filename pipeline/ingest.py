"""The one module that opens input files: walks the inbox, reads bytes, unwraps e-mails and zips,
passes every workbook through the gate, and parses the survivors in a contained child process.

Nothing here judges the data; it returns raw cell values with their positions, and a FileVerdict
for what is not read (ignored files, unreadable folders and files). Inputs are opened read-only and
never modified, moved or deleted. Every file found is accounted for: nothing is skipped silently.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from pipeline.reader import envelope, gate, sandbox
from pipeline.report import FileVerdict, Issue, Provenance, make_issue
from pipeline.settings import LimitSettings

# Read by their bytes, whatever the suffix says: .xlsx/.xlsm, .ods and BIFF8 .xls (values only); the
# gate rejects .xlsb and Excel 95 .xls with a code.
WORKBOOK_SUFFIXES = set(envelope.WORKBOOK_SUFFIXES)  # one list: attachments and files alike
ENVELOPE_SUFFIXES = {".eml", ".msg", ".zip"}
SYSTEM_NAMES = {"thumbs.db", "desktop.ini", ".ds_store"}

# Why a file or folder was not read, as staff read it in the run report and 提出状況.
REASON_LOCK = "Excel が開いている間だけ作る一時ファイル(~$…)です"
REASON_HIDDEN = "隠しファイル・隠しフォルダーです"
REASON_SYSTEM = "Windows・macOS が作るシステムファイルです"
REASON_EXCLUDED = "設定 [paths] exclude で除外したフォルダーです"
REASON_NOT_RETURN = "Excel ブック・メール・ZIP ではありません"


@dataclass(frozen=True)
class Listed:
    """One entry of the inbox walk: a file to read, or a file or folder not read and why."""

    path: Path
    name: str  # relative to the inbox root, "/"-separated
    skip: str = ""  # why it is not read ("" = read it)
    error: str = ""  # a folder that could not be listed: the OS error


@dataclass
class Source:
    """One workbook to validate, with where it came from."""

    name: str  # relative to the inbox: "健康課/file.xlsx" or "健康課/mail.eml › file.xlsx"
    path: Path  # the inbox file it was read from
    data: bytes
    received: str  # ISO 8601, local time: the file's mtime or the e-mail's Date
    sender: str = ""
    subject: str = ""
    notes: list[Issue] = field(default_factory=list)  # warnings about the envelope it came in

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def provenance(self) -> Provenance:
        return Provenance(self.name, str(self.path), self.sha256, self.received, self.sender, self.subject)


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


def _hidden(entry: os.DirEntry[str]) -> bool:
    if entry.name.startswith("."):
        return True
    attributes = getattr(entry.stat(follow_symlinks=False), "st_file_attributes", 0)  # Windows only
    return bool(attributes & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 0))


def walk(root: Path, exclude: Iterable[str] = ()) -> list[Listed]:
    """Every file under `root`, in a stable order, each named by its path relative to `root`.

    Subfolders are read (staff keep one per office). Hidden files and folders, Excel's lock files
    (~$…) and folders matched by an `exclude` glob (on the folder's name or its relative path) are
    listed with the reason they are not read; a folder that cannot be listed is listed with its
    error. Nothing found is left out.
    """
    patterns = [p.strip("/\\") for p in exclude if p.strip("/\\")]
    found: list[Listed] = []

    def visit(folder: Path, prefix: str) -> None:
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            found.append(Listed(folder, prefix.rstrip("/") or folder.name, error=f"{type(exc).__name__}"))
            return
        for entry in entries:
            name = prefix + entry.name
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                hidden = _hidden(entry)
            except OSError as exc:
                found.append(Listed(path, name, error=type(exc).__name__))
                continue
            if is_dir:
                if hidden:
                    found.append(Listed(path, name + "/", skip=REASON_HIDDEN))
                elif any(fnmatch.fnmatch(entry.name, p) or fnmatch.fnmatch(name, p) for p in patterns):
                    found.append(Listed(path, name + "/", skip=REASON_EXCLUDED))
                else:
                    visit(path, name + "/")
            elif entry.name.startswith("~$"):
                found.append(Listed(path, name, skip=REASON_LOCK))
            elif entry.name.lower() in SYSTEM_NAMES:
                found.append(Listed(path, name, skip=REASON_SYSTEM))
            elif hidden:
                found.append(Listed(path, name, skip=REASON_HIDDEN))
            else:
                found.append(Listed(path, name))

    visit(root, "")
    return found


def find_files(paths: Iterable[Path], exclude: Iterable[str] = ()) -> list[Listed]:
    """The inbox walk over several files and folders (`validate PATH…`): a folder's files are named
    relative to it, a file by its own name; a name met twice gets the folder it came from."""
    listed: list[Listed] = []
    for p in paths:
        listed.extend(walk(p, exclude) if p.is_dir() else [Listed(p, p.name)])
    seen: dict[str, int] = {}
    for e in listed:
        seen[e.name] = seen.get(e.name, 0) + 1
    return [
        Listed(e.path, str(e.path).replace(os.sep, "/"), e.skip, e.error) if seen[e.name] > 1 else e
        for e in listed
    ]


def open_inputs(files: Iterable[Listed], limits: LimitSettings) -> Iterator[Source | FileVerdict]:
    """Sources to validate, and finished verdicts for what is not read or cannot be."""
    for item in files:
        path, name = item.path, item.name
        where = Provenance(name, str(path))
        if item.error:
            issue = make_issue("folder-unreadable", file=name, value=name, detail=item.error)
            yield FileVerdict.judged(where, [issue])
            continue
        if item.skip:
            yield FileVerdict.ignored(where, item.skip)
            continue
        suffix = path.suffix.lower()
        if suffix not in WORKBOOK_SUFFIXES | ENVELOPE_SUFFIXES:
            yield FileVerdict.ignored(where, REASON_NOT_RETURN)
            continue
        try:
            st = path.stat()
            received = local_time(st.st_mtime)
            where = Provenance(name, str(path), received=received)
            if st.st_size > limits.max_file_mib * 2**20:
                issue = make_issue("file-too-large", file=name, value=f"{st.st_size / 2**20:.1f} MiB",
                                   detail=f"{st.st_size / 2**20:.1f} MiB、上限 {limits.max_file_mib} MiB")
                yield FileVerdict.judged(where, [issue])
                continue
            data = path.read_bytes()
        except OSError as exc:
            yield FileVerdict.judged(where, [make_issue("file-vanished", file=name, detail=type(exc).__name__)])
            continue
        if suffix in WORKBOOK_SUFFIXES:
            yield Source(name, path, data, received)
        else:
            yield from _unwrap(path, name, data, received, limits)


def _unwrap(path: Path, name: str, data: bytes, received: str, limits: LimitSettings) -> Iterator[Source | FileVerdict]:
    """Workbooks inside an e-mail or zip. Errors about the message (no workbook, an unsafe zip
    beside a good attachment) are reported on the message itself, and its good attachments are
    still read; warnings (e.g. no Date header) travel with each attachment."""
    message = envelope.read_envelope(data, path.name, _zip_limits(limits))
    when = local_time(message.received) if message.received else received
    errors = [i for i in message.issues if i.is_error]
    if not message.attachments or errors:
        where = Provenance(name, str(path), hashlib.sha256(data).hexdigest(), when, message.sender, message.subject)
        issues = errors or list(message.issues)
        yield FileVerdict.judged(where, [_renamed(i, name) for i in issues])
    warnings = [_renamed(i, name) for i in message.issues if not i.is_error]
    used: set[str] = set()
    for att in message.attachments:
        inner = f"{name} › {att.name}"
        n = 1
        while inner in used:  # two attachments of one name (a forwarded message): keep both apart
            n += 1
            inner = f"{name} › {att.name} ({n})"
        used.add(inner)
        yield Source(inner, path, att.data, when, message.sender, message.subject, notes=warnings)


def _renamed(issue: Issue, name: str) -> Issue:
    from dataclasses import replace

    return replace(issue, file=name) if issue.file and issue.file != name else issue


def _zip_limits(limits: LimitSettings) -> envelope.ZipLimits:
    return envelope.ZipLimits(
        max_members=limits.max_members,
        max_member_bytes=limits.max_file_mib * 2**20,
        max_total_bytes=limits.max_total_mib * 2**20,
    )


def reload(source: Provenance, limits: LimitSettings) -> bytes | None:
    """The bytes a verdict was made from, read again (for the feedback copy), or None when the file
    changed or vanished since: we never annotate anything but what we validated."""
    try:
        data = Path(source.path).read_bytes()
    except OSError:
        return None
    candidates = [data]
    if Path(source.path).suffix.lower() in ENVELOPE_SUFFIXES:
        candidates = [a.data for a in envelope.read_envelope(data, Path(source.path).name, _zip_limits(limits)).attachments]
    return next((d for d in candidates if hashlib.sha256(d).hexdigest() == source.sha256), None)


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


READERS = 2  # contained readers of a merge: the machines it runs on have 2 cores or more


def open_readers(limits: LimitSettings, fn: Any) -> sandbox.Pool:
    """Contained workers that run `fn` on workbooks for a whole run, side by side (sandbox.Pool),
    each with the memory cap and the per-file timeout of one reader."""
    size = max(1, min(READERS, os.cpu_count() or 1))
    return sandbox.Pool(fn, size=size, timeout_s=limits.parse_timeout_s, memory_bytes=limits.parse_memory_mib * 2**20)


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
    return make_issue("file-unreadable", file=name, detail=f"{type(exc).__name__}: {str(exc)[:200]}")


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
) -> tuple[list[RawSheet], gate.GateResult, list[Issue]]:
    """Gate, then parse. Returns the sheets (empty when rejected), the gate's result and the issues
    of reading (the gate's, and the reader's when it failed)."""
    checked = gate.inspect_workbook(source.data, source.name, limits)
    issues = list(checked.issues)
    if not checked.ok:
        return [], checked, issues
    try:
        payload = reader.call(source.data, (limits.max_cells, limits.max_rows, limits.max_cols))
    except sandbox.SandboxError as exc:
        # a dead, stuck or exhausted reader is reported apart from a damaged file
        issues.append(make_issue("reader-crashed", file=source.name, detail=f"{exc.kind}: {exc.detail}"))
        return [], checked, issues
    except Exception as exc:
        issues.append(parse_failure(exc, source.name))
        return [], checked, issues
    sheets = [
        RawSheet(name, state, rows, checked.sheets.get(name), merged)
        for name, state, rows, merged in payload
    ]
    return sheets, checked, issues
