"""The calls that run on a department's bytes, and the contained workers that run them.

Every parse of untrusted bytes happens in a child process of pipeline.reader.sandbox, under the
memory cap and the per-call timeout of [limits] (parse_memory_mib, parse_timeout_s), on every
platform: unwrapping an e-mail or zip (`open_unwrapper`: pipeline.reader.envelope), reading a
workbook (`read_return`: the gate, calamine, the candidate rows), annotating a 差し戻し copy
(`feedback_copy`) and the gate alone (`inspect`). Each hands plain values back (an Envelope, a
Parsed, a Copy, a GateResult); a call that hangs, exhausts its memory or kills its process raises
SandboxError in the caller, which makes it an issue on that one file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipeline.limits import Limits
from pipeline.reader import envelope, gate, rows, sandbox, scanning, workbook
from pipeline.report import Issue, internal_error, make_issue

if TYPE_CHECKING:
    from pipeline.reader.annotate import Copy

READERS = 2  # contained readers of a merge: the machines it runs on have 2 cores or more




def _worker(fn: Callable[..., Any], limits: Limits) -> sandbox.Worker:
    return sandbox.Worker(fn, timeout_s=limits.parse_timeout_s, memory_bytes=limits.memory_bytes)


def inspect(data: bytes, name: str, limits: Limits) -> scanning.GateResult | None:
    """The gate's verdict on one workbook, reached in a contained worker; None when the gate
    could not finish (it hung, ran out of memory or died)."""
    try:
        return sandbox.run_contained(gate.inspect_workbook, data, name, limits,
                                     timeout_s=limits.parse_timeout_s, memory_bytes=limits.memory_bytes)
    except sandbox.SandboxError:
        return None


# --- workbooks --------------------------------------------------------------------------------


def read_sheets(
    data: bytes, name: str, limits: Limits
) -> tuple[scanning.GateResult, list[workbook.RawSheet], list[Issue]]:
    """One workbook's sheets: the gate, then calamine. Runs in the worker.

    The gate's result is emitted first, so that it reaches the caller even if the parser then
    kills the process. Returns the gate's result, the sheets (none when the gate rejected the file
    or the parser failed) and the parser's failure as an issue."""
    checked = gate.inspect_workbook(data, name, limits)
    sandbox.emit(dataclasses.replace(checked, sheets={}))  # the facts stay here, with the rows
    if not checked.ok:
        return checked, [], []
    try:
        payload = workbook.parse_sheets(data, (limits.max_cells, limits.max_rows, limits.max_cols))
    except Exception as exc:
        return checked, [], [workbook.parse_failure(exc, name)]
    return checked, [workbook.RawSheet(sheet, state, cells, checked.sheets.get(sheet), merged)
            for sheet, state, cells, merged in payload], []


def read_return(data: bytes, name: str, limits: Limits, read_own: bool = False) -> rows.Parsed:
    """One workbook: its sheets (read_sheets), then the candidate rows. Runs in the worker.

    A damaged file is an issue; a fault of ours while reading the rows is `failed`
    (internal-error), as it would be in the merge process."""
    checked, sheets, issues = read_sheets(data, name, limits)
    del data
    out = rows.Parsed(issues=issues, read=bool(sheets))
    if not sheets:
        return out
    try:
        out.own = rows.own_output(checked)
        if out.own is not None and not read_own:
            return out
        out.meta = rows.read_meta(sheets)
        out.tables = rows.tables(0, name, sheets)
    except Exception as exc:
        out.failed = internal_error(name, exc)
    return out


def reader_crashed(name: str, exc: sandbox.SandboxError) -> Issue:
    """reader-crashed on file `name`: its contained call hung, ran out of memory or died (told
    apart from a damaged file, which is the parser's own issue)."""
    return make_issue("reader-crashed", file=name, detail=f"{exc.kind}: {exc.detail}")


def open_readers(limits: Limits) -> sandbox.Pool:
    """Contained workers that read workbooks (`read_return`) for a whole run, side by side, each
    with the memory cap and the per-file timeout of one reader."""
    size = max(1, min(READERS, os.cpu_count() or 1))
    return sandbox.Pool(read_return, size=size, timeout_s=limits.parse_timeout_s,
                        memory_bytes=limits.memory_bytes)


def reader_notes(pool: sandbox.Pool, limits: Limits) -> list[Issue]:
    """The run's notes about its contained readers: memory-cap-unavailable when a reader ran
    without its memory cap (said once per run, however many readers and files)."""
    if pool.memory_capped:
        return []
    return [make_issue("memory-cap-unavailable", detail=f"{limits.parse_memory_mib} MiB")]


# --- e-mails and zips ---------------------------------------------------------------------------


def open_unwrapper(limits: Limits) -> sandbox.Worker:
    """A contained worker that unwraps .eml/.msg/.zip files for a whole walk: `call(data, name,
    limits)` returns the Envelope (its attachments' bytes, sender, date, issues)."""
    return _worker(envelope.read_envelope, limits)


# --- 差し戻し copies --------------------------------------------------------------------------


def feedback_copy(data: bytes, container: str, sha256: str, name: str, issues: list[Issue],
                  limits: Limits, office: str = "", source: str = "") -> Copy | None:
    """The annotated copy of the workbook whose bytes hash to `sha256`: `data` itself, or else one
    of its attachments (an e-mail or zip, whatever `container`, the inbox file's name, ends in).
    None when the file no longer holds those bytes: only what was validated is annotated. The copy
    names `office` and `source` and records `sha256`. Runs in the worker."""
    from pipeline.reader import annotate  # openpyxl: in the worker only

    found: bytes | None = data if hashlib.sha256(data).hexdigest() == sha256 else None
    if found is None:
        candidates = [a.data for a in envelope.read_envelope(data, container, limits).attachments]
        found = next((d for d in candidates if hashlib.sha256(d).hexdigest() == sha256), None)
    return None if found is None else annotate.feedback_copy(found, name, issues, office=office, source=source,
                                                             sha256=sha256)


def open_annotator(limits: Limits) -> sandbox.Worker:
    """A contained worker that makes 差し戻し copies for a whole run (`feedback_copy`)."""
    return _worker(feedback_copy, limits)
