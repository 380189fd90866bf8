"""Workbooks to PDF in LibreOffice, with Japanese line breaking (禁則) turned on.

Run by a Python that has LibreOffice's `uno` module (LibreOffice's own program/python on Windows,
the system python3 with python3-uno on Debian), never imported by the pipeline:

    python lo_pdf.py SOFFICE PROFILE_URL OUT_DIR NO_LINE_START NO_LINE_END WORKBOOK...

Why not `soffice --convert-to pdf`: Calc applies the forbidden-character rules only to cells
whose attribute 「禁則を適用する」 (Format Cells → Asian Typography, UNO ParaIsForbiddenRules) is
on; it is off by default and an .xlsx cannot carry it, so every Japanese answer broke anywhere
(lines beginning with 、 or 。). And a cell's Asian language, which chooses the list of forbidden
characters, defaults to Chinese on a machine without a Japanese locale. Here every cell style
and every used cell gets the rule and the Japanese language, the document's Japanese list gets
the characters no line may begin or end with (pipeline.printing.NO_LINE_START / NO_LINE_END,
given as arguments; ー among them, which LibreOffice's own list allows), the document's default font (in which
Calc prints row and column headings) is the standard font, as Excel prints them, and each
workbook is exported as `soffice --convert-to pdf` would (all printable sheets, calc_pdf_Export).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

CONNECT_SECONDS = 120
# LibreOffice's modules (uno, com.sun.star) are imported where they are used, so that the module
# itself imports anywhere (the docs' checks import every module of the package).


def _prop(name: str, value: object) -> Any:
    from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]

    p = PropertyValue()
    p.Name, p.Value = name, value
    return p


def _japanese() -> Any:
    from com.sun.star.lang import Locale  # type: ignore[import-not-found]

    return Locale("ja", "JP", "")


def _connect(pipe: str, proc: subprocess.Popen) -> Any:
    import uno  # type: ignore[import-not-found]  # LibreOffice's Python bridge

    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    deadline = time.monotonic() + CONNECT_SECONDS
    while True:
        try:
            return resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
        except Exception:  # NoConnectException until soffice listens
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _japanese_line_breaking(doc: Any, no_start: str, no_end: str) -> None:
    from com.sun.star.i18n import ForbiddenCharacters  # type: ignore[import-not-found]

    japanese = _japanese()
    chars = doc.ForbiddenCharacters
    have = chars.getForbiddenCharacters(japanese) if chars.hasForbiddenCharacters(japanese) else None
    begin = no_start + "".join(c for c in (have.beginLine if have else "") if c not in no_start)
    end = no_end + "".join(c for c in (have.endLine if have else "") if c not in no_end)
    chars.setForbiddenCharacters(japanese, ForbiddenCharacters(begin, end))
    # Protection (our templates protect the structure and sheets, without a password) would refuse
    # the attributes; the document is only exported, never stored.
    for target in (doc, *doc.Sheets):
        if target.isProtected():
            with contextlib.suppress(Exception):  # a password: those cells keep LibreOffice's breaking
                target.unprotect("")
    styles = doc.StyleFamilies.getByName("CellStyles")
    for name in styles.ElementNames:
        style = styles.getByName(name)
        with contextlib.suppress(Exception):  # a style that refuses (a password): its cells are set below
            style.ParaIsForbiddenRules = True
            style.CharLocaleAsian = japanese
    # Row and column headings print in the document's default font, which an .xlsx cannot set
    # (Calc's own, Liberation Sans); Excel prints them in the standard ("Normal") font: so here.
    with contextlib.suppress(Exception):
        standard = styles.getByName("Default")
        defaults = doc.createInstance("com.sun.star.sheet.Defaults")
        for prop in ("CharFontName", "CharFontNameAsian", "CharFontCharSet", "CharFontCharSetAsian"):
            defaults.setPropertyValue(prop, standard.getPropertyValue(prop))
    for sheet in doc.Sheets:
        cursor = sheet.createCursor()
        cursor.gotoEndOfUsedArea(False)
        end_at = cursor.RangeAddress
        used = sheet.getCellRangeByPosition(0, 0, end_at.EndColumn, end_at.EndRow)
        used.ParaIsForbiddenRules = True  # cells with attributes of their own, too
        used.CharLocaleAsian = japanese


def main(argv: list[str]) -> int:
    soffice, profile, out_dir, no_start, no_end, *books = argv
    pipe = f"pipeline-{uuid.uuid4().hex}"
    proc = subprocess.Popen([soffice, f"-env:UserInstallation={profile}", "--headless", "--invisible",
                             "--norestore", "--nolockcheck", f"--accept=pipe,name={pipe};urp;"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    desktop = None
    failed = 0
    try:
        ctx = _connect(pipe, proc)
        desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        for book in books:
            source = Path(book).resolve()
            target = Path(out_dir).resolve() / f"{source.stem}.pdf"
            try:
                doc = desktop.loadComponentFromURL(source.as_uri(), "_blank", 0, (_prop("Hidden", True),))
                try:
                    _japanese_line_breaking(doc, no_start, no_end)
                    doc.storeToURL(target.as_uri(), (_prop("FilterName", "calc_pdf_Export"),))
                finally:
                    doc.close(True)
            except Exception as exc:  # one workbook's failure is reported; the others are still made
                print(f"{source.name}: {exc}", file=sys.stderr)
                failed += 1
    finally:
        if desktop is not None:
            with contextlib.suppress(Exception):  # the bridge closes as soffice quits
                desktop.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
