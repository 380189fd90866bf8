"""The one module that opens input files: walks the inbox and reads each file's bytes. The bytes of
an e-mail or zip are unwrapped by a contained worker (pipeline.reader.contained), which hands back
the attachments' bytes; a workbook's bytes go to validate, whose contained readers parse them.

Nothing here judges the data or parses it; it returns Sources (bytes and where they came from),
and a FileVerdict for what is not read (ignored files, unreadable folders and files). Inputs are
opened read-only and never modified, moved or deleted. Every file found is accounted for: nothing
is skipped silently.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pipeline import inbox_files
from pipeline.filenames import shown_name, undecodable_bytes
from pipeline.limits import Limits
from pipeline.marks import PART_SEP
from pipeline.normalize import nfc
from pipeline.reader import contained, envelope, sandbox
from pipeline.report import FileVerdict, Issue, Provenance, make_issue
from pipeline.times import local_iso

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
# Each reason a file is not read, as a code of its own (ignored-*): listed in 検証結果 and 提出状況.
IGNORED_CODES = {
    REASON_LOCK: "ignored-lock-file",
    REASON_HIDDEN: "ignored-hidden",
    REASON_SYSTEM: "ignored-system-file",
    REASON_EXCLUDED: "ignored-excluded",
    REASON_NOT_RETURN: "ignored-not-input",
}


@dataclass(frozen=True)
class Listed:
    """One entry of the inbox walk: a file to read, or a file or folder not read and why."""

    path: Path
    name: str  # relative to the inbox root, "/"-separated
    skip: str = ""  # why it is not read ("" = read it)
    error: str = ""  # a folder that could not be listed: the OS error
    undecodable: str = ""  # hex of the bytes of its name that are not text (`name` shows them as such)


@dataclass(frozen=True)
class Source:
    """One workbook to validate, with where it came from. Never changed once read: a reader that
    is done with the bytes lets the Source go (pipeline.validate keeps its provenance)."""

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

    def visit(folder: Path, prefix: str, raw_prefix: str) -> None:
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            found.append(Listed(folder, prefix.rstrip("/") or shown_name(folder.name), error=f"{type(exc).__name__}",
                                undecodable=undecodable_bytes(raw_prefix)))
            return
        for entry in entries:
            raw = raw_prefix + entry.name  # the name's bytes as the OS gave them (surrogateescape)
            name = shown_name(raw)
            path = Path(entry.path)
            bad = undecodable_bytes(raw)
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                hidden = _hidden(entry)
            except OSError as exc:
                found.append(Listed(path, name, error=type(exc).__name__, undecodable=bad))
                continue
            if is_dir:
                if hidden:
                    found.append(Listed(path, name + "/", skip=REASON_HIDDEN, undecodable=bad))
                elif any(fnmatch.fnmatch(nfc(entry.name), p) or fnmatch.fnmatch(nfc(name), p) for p in patterns):
                    found.append(Listed(path, name + "/", skip=REASON_EXCLUDED, undecodable=bad))
                else:
                    visit(path, name + "/", raw + "/")
            elif entry.name.startswith("~$"):
                found.append(Listed(path, name, skip=REASON_LOCK, undecodable=bad))
            elif entry.name.lower() in SYSTEM_NAMES:
                found.append(Listed(path, name, skip=REASON_SYSTEM, undecodable=bad))
            elif hidden:
                found.append(Listed(path, name, skip=REASON_HIDDEN, undecodable=bad))
            else:
                found.append(Listed(path, name, undecodable=bad))

    visit(root, "", "")
    return found


def find_files(paths: Iterable[Path], exclude: Iterable[str] = ()) -> list[Listed]:
    """The inbox walk over several files and folders (`validate PATH…`): a folder's files are named
    relative to it, a file by its own name; a name met twice gets the folder it came from."""
    listed: list[Listed] = []
    for p in paths:
        listed.extend(walk(p, exclude) if p.is_dir() else
                      [Listed(p, shown_name(p.name), undecodable=undecodable_bytes(p.name))])
    seen: dict[str, int] = {}
    for e in listed:
        seen[e.name] = seen.get(e.name, 0) + 1
    return [
        Listed(e.path, shown_name(str(e.path).replace(os.sep, "/")), e.skip, e.error, e.undecodable)
        if seen[e.name] > 1 else e
        for e in listed
    ]


def open_inputs(files: Iterable[Listed], limits: Limits) -> Iterator[Source | FileVerdict]:
    """Sources to validate, and finished verdicts for what is not read or cannot be."""
    with contained.open_unwrapper(limits) as unwrapper:  # started at the first e-mail or zip
        for item in files:
            path, name = item.path, item.name
            where = Provenance(name, str(path))
            # A name that is not text is shown as such and said once, on the file, whatever else happens.
            named = ([make_issue("file-name-undecodable", file=name, value=item.undecodable)]
                     if item.undecodable else [])
            if item.error:
                issue = make_issue("folder-unreadable", file=name, value=name, detail=item.error)
                yield FileVerdict.judged(where, [issue, *named])
                continue
            if item.skip:
                yield ignored(where, item.skip, named)
                continue
            suffix = path.suffix.lower()
            try:
                data, st = inbox_files.read_regular(path, limits.max_file_bytes)
            except inbox_files.NotRegular as exc:
                yield FileVerdict.judged(where, [make_issue("file-not-regular", file=name, value=str(exc)), *named])
                continue
            except inbox_files.TooLarge as exc:
                size = int(exc.args[0])
                issue = make_issue("file-too-large", file=name, value=f"{size / 2**20:.1f} MiB",
                                   detail=f"{size / 2**20:.1f} MiB 以上、上限 {limits.max_file_mib} MiB")
                yield FileVerdict.judged(where, [issue, *named])
                continue
            except OSError as exc:
                yield FileVerdict.judged(where, [make_issue("file-vanished", file=name, detail=type(exc).__name__),
                                                 *named])
                continue
            received = local_iso(st.st_mtime)
            where = Provenance(name, str(path), received=received, mtime=received)
            # A name that says workbook, mail or zip is read as such (the gate and the envelope reader
            # tell what the bytes really are: an .xlsx named .zip is the workbook it is); any other
            # name is classified by its bytes, so an extensionless workbook is read.
            kind = "" if suffix in WORKBOOK_SUFFIXES | ENVELOPE_SUFFIXES else inbox_files.kind_of(data)
            if suffix in WORKBOOK_SUFFIXES or kind == "workbook":
                yield Source(name, path, data, received, mtime=received, notes=named)
            elif suffix in ENVELOPE_SUFFIXES or kind == "envelope":  # a zip holding one workbook: see read_zip
                yield from _unwrap(unwrapper, path, name, data, received, limits, named)
            else:
                yield ignored(where, REASON_NOT_RETURN, named)


def ignored(where: Provenance, reason: str, named: Iterable[Issue] = ()) -> FileVerdict:
    """The verdict of a file not read, with its ignored-* code and the reason."""
    code = IGNORED_CODES.get(reason, "ignored-not-input")
    return FileVerdict.ignored(where, reason, [make_issue(code, file=where.name, detail=reason), *named])


def read_input(path: Path, limits: Limits) -> bytes | None:
    """An inbox file's bytes read again (for its 差し戻し copy), or None when it is gone or is no
    longer a regular file within `max_file_mib`."""
    try:
        return inbox_files.read_regular(path, limits.max_file_bytes)[0]
    except (OSError, inbox_files.NotRegular, inbox_files.TooLarge):
        return None


def _unwrap(
    unwrapper: sandbox.Worker, path: Path, name: str, data: bytes, received: str, limits: Limits,
    named: list[Issue] | None = None,
) -> Iterator[Source | FileVerdict]:
    """Workbooks inside an e-mail or zip, unwrapped in the contained worker. Errors about the
    message (no workbook, an unsafe zip beside a good attachment) are reported on the message
    itself, and its good attachments are still read; warnings (e.g. no Date header) travel with
    each attachment. A message the parser cannot finish (it hangs, runs out of memory, dies or
    raises) is unreadable: an issue on that file, and the walk goes on."""
    try:
        message = unwrapper.call(data, path.name, limits)
    except Exception as exc:
        if isinstance(exc, sandbox.SandboxError):
            detail = f"{exc.kind}: {exc.detail}"
        else:
            detail = f"{type(exc).__name__}: {str(exc)[:160]}"
        code = "zip-unreadable" if path.suffix.lower() == ".zip" else "email-unreadable"
        where = Provenance(name, str(path), hashlib.sha256(data).hexdigest(), received, mtime=received)
        yield FileVerdict.judged(where, [make_issue(code, file=name, value=path.name, detail=detail), *(named or [])])
        return
    dated = local_iso(message.received) if message.received else ""
    when = dated or received
    errors = [i for i in message.issues if i.is_error]
    if not message.attachments or errors:
        where = Provenance(name, str(path), hashlib.sha256(data).hexdigest(), when, message.sender, message.subject,
                           mtime=received, email_date=dated, members=tuple(message.unread))
        issues = errors or list(message.issues)
        yield FileVerdict.judged(where, [*(_renamed(i, name) for i in issues), *(named or [])])
    warnings = [_renamed(i, name) for i in message.issues if not i.is_error]
    used: set[str] = set()
    for att in message.attachments:
        inner = f"{name}{PART_SEP}{shown_name(att.name)}"
        n = 1
        while inner in used:  # two attachments of one name (a forwarded message): keep both apart
            n += 1
            inner = f"{name}{PART_SEP}{shown_name(att.name)} ({n})"
        used.add(inner)
        yield Source(inner, path, att.data, when, message.sender, message.subject, mtime=received, email_date=dated,
                     notes=[*warnings, *(_renamed(i, inner) for i in named or [])])


def _renamed(issue: Issue, name: str) -> Issue:
    from dataclasses import replace

    return replace(issue, file=name) if issue.file and issue.file != name else issue
