"""The one module that opens input files: walks the inbox and reads each file's bytes. The bytes of
an e-mail or zip are unwrapped by a contained worker (pipeline.reader.contained), which hands back
the attachments' bytes; a workbook's bytes go to validate, whose contained readers parse them.

Nothing here judges the data or parses it; it returns Sources (bytes and where they came from),
and a FileVerdict for what is not read (ignored files, unreadable folders and files). Inputs are opened read-only and
never modified, moved or deleted. Every file found is accounted for: nothing is skipped silently.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path

from pipeline.marks import PART_SEP
from pipeline.normalize import nfc
from pipeline.reader import contained, envelope, sandbox
from pipeline.report import FileVerdict, Issue, Provenance, make_issue
from pipeline.settings import LimitSettings

# Read by their bytes, whatever the suffix says: .xlsx/.xlsm, .ods and BIFF8 .xls (values only); the
# gate rejects .xlsb and Excel 95 .xls with a code.
WORKBOOK_SUFFIXES = set(envelope.WORKBOOK_SUFFIXES)  # one list: attachments and files alike
ENVELOPE_SUFFIXES = set(envelope.ENVELOPE_SUFFIXES)
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

    name: str  # relative to the inbox: "健康課/file.xlsx" or "健康課/mail.eml ＞ file.xlsx"
    path: Path  # the inbox file it was read from
    data: bytes
    received: str  # ISO 8601, local time: the file's mtime or the e-mail's Date
    sender: str = ""
    subject: str = ""
    notes: list[Issue] = field(default_factory=list)  # warnings about the envelope it came in
    mtime: str = ""  # ISO 8601, local time: the inbox file's modification time
    email_date: str = ""  # ISO 8601: the e-mail's Date header it came in, "" when none

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def provenance(self) -> Provenance:
        return Provenance(self.name, str(self.path), self.sha256, self.received, self.sender, self.subject,
                          mtime=self.mtime or self.received, email_date=self.email_date)


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
    patterns = [nfc(p.strip("/\\")) for p in exclude if p.strip("/\\")]
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
                elif any(fnmatch.fnmatch(nfc(entry.name), p) or fnmatch.fnmatch(nfc(name), p) for p in patterns):
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
    with contained.open_unwrapper(limits) as unwrapper:  # started at the first e-mail or zip
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
                where = Provenance(name, str(path), received=received, mtime=received)
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
                yield Source(name, path, data, received, mtime=received)
            else:
                yield from _unwrap(unwrapper, path, name, data, received, limits)


def read_input(path: Path) -> bytes | None:
    """An inbox file's bytes read again (for its 差し戻し copy), or None when it is gone."""
    try:
        return path.read_bytes()
    except OSError:
        return None


def _unwrap(
    unwrapper: sandbox.Worker, path: Path, name: str, data: bytes, received: str, limits: LimitSettings
) -> Iterator[Source | FileVerdict]:
    """Workbooks inside an e-mail or zip, unwrapped in the contained worker. Errors about the
    message (no workbook, an unsafe zip beside a good attachment) are reported on the message
    itself, and its good attachments are still read; warnings (e.g. no Date header) travel with
    each attachment. A message the parser cannot finish (it hangs, runs out of memory, dies or
    raises) is unreadable: an issue on that file, and the walk goes on."""
    try:
        message = unwrapper.call(data, path.name, contained.zip_limits(limits))
    except Exception as exc:
        if isinstance(exc, sandbox.SandboxError):
            detail = f"{exc.kind}: {exc.detail}"
        else:
            detail = f"{type(exc).__name__}: {str(exc)[:160]}"
        code = "zip-unreadable" if path.suffix.lower() == ".zip" else "email-unreadable"
        where = Provenance(name, str(path), hashlib.sha256(data).hexdigest(), received, mtime=received)
        yield FileVerdict.judged(where, [make_issue(code, file=name, value=path.name, detail=detail)])
        return
    dated = local_time(message.received) if message.received else ""
    when = dated or received
    errors = [i for i in message.issues if i.is_error]
    if not message.attachments or errors:
        where = Provenance(name, str(path), hashlib.sha256(data).hexdigest(), when, message.sender, message.subject,
                           mtime=received, email_date=dated, members=tuple(message.unread))
        issues = errors or list(message.issues)
        yield FileVerdict.judged(where, [_renamed(i, name) for i in issues])
    warnings = [_renamed(i, name) for i in message.issues if not i.is_error]
    used: set[str] = set()
    for att in message.attachments:
        inner = f"{name}{PART_SEP}{att.name}"
        n = 1
        while inner in used:  # two attachments of one name (a forwarded message): keep both apart
            n += 1
            inner = f"{name}{PART_SEP}{att.name} ({n})"
        used.add(inner)
        yield Source(inner, path, att.data, when, message.sender, message.subject, notes=warnings, mtime=received,
                     email_date=dated)


def _renamed(issue: Issue, name: str) -> Issue:
    from dataclasses import replace

    return replace(issue, file=name) if issue.file and issue.file != name else issue
