"""Helpers that edit returns the way a department's Excel would: answers changed, and the time the
workbook was saved (docProps/core.xml dcterms:modified, which Excel rewrites on every save and which
decides which of an office's versions is newest)."""

from __future__ import annotations

import os
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import openpyxl

from pipeline.templates import FIRST_DATA_ROW, TEMPLATE_SHEET

COLUMN = {"result": "F", "rating": "G", "outlook": "H"}
_MODIFIED = re.compile(rb"<dcterms:modified[^>]*>[^<]*</dcterms:modified>")


def set_saved(path: Path, when: datetime) -> Path:
    """Rewrite the workbook's saved time (UTC in core.xml), keeping every other part as it is."""
    stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    with zipfile.ZipFile(path) as z:
        parts = [(info, z.read(info)) for info in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in parts:
            if info.filename == "docProps/core.xml":
                data, n = _MODIFIED.subn(
                    b'<dcterms:modified xsi:type="dcterms:W3CDTF">' + stamp + b"</dcterms:modified>", data
                )
                assert n == 1, "no dcterms:modified in core.xml"
            z.writestr(info, data)
    return path


def saved_time(path: Path) -> datetime:
    with zipfile.ZipFile(path) as z:
        m = _MODIFIED.search(z.read("docProps/core.xml"))
    assert m is not None
    text = re.sub(rb"<[^>]+>", b"", m.group(0)).decode()
    return datetime.fromisoformat(text)


def edit_return(
    path: Path,
    target: Path,
    changes: dict[tuple[str, str], dict[str, str]],
    mtime: float | None = None,
    *,
    saved: datetime | None = None,
) -> Path:
    """Change answers in a return as a department would in Excel, then date it: saved (core.xml,
    default: an hour after the original was saved, for a re-sent correction) and received (mtime)."""
    wb = openpyxl.load_workbook(path)
    ws = wb[TEMPLATE_SHEET]
    done = set()
    for r in range(FIRST_DATA_ROW, ws.max_row + 1):
        key = (str(ws[f"B{r}"].value), str(ws[f"E{r}"].value))
        for field, value in changes.get(key, {}).items():
            cell = ws[f"{COLUMN[field]}{r}"]
            cell.value = value
            cell.data_type = "s"  # typed as text ('=… in Excel), never a formula
            done.add(key)
    assert done == set(changes), f"rows not found: {set(changes) - done}"
    original = saved_time(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    wb.save(target)
    set_saved(target, saved or original.replace(hour=(original.hour + 1) % 24))
    if mtime is not None:
        os.utime(target, (mtime, mtime))
    return target
