"""What the gate and its scanners share: the facts a worksheet scan learns (SheetFacts), the
verdict on a file (GateResult), the rejection that stops a scan, and the small lexing helpers
(cell references, XML attributes and entities). The limits they enforce are pipeline.limits.Limits."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from xml.parsers import expat

from pipeline.report import ERROR, Issue


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


class Reject(Exception):
    """Internal: stop inspecting, the file is rejected with this issue."""

    def __init__(self, code: str, detail: str = "", sheet: str = "") -> None:
        super().__init__(code, detail)
        self.code, self.detail, self.sheet = code, detail, sheet


META_SHEET = "_meta"  # our templates' own veryHidden metadata sheet: not "hidden content"


ZIP_MAGIC = b"PK\x03\x04"


def fmt_bytes(n: int) -> str:
    return f"{n / 2**20:,.1f} MB" if n >= 2**20 else f"{n:,} バイト"


def expat_for(owner: Any, namespace_separator: str | None = None) -> Any:
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


_ATTR = re.compile(rb"""\s+([^\s=/>"'<]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


_REF = re.compile(r"\$?([A-Za-z]{1,3})\$?([0-9]{1,7})")


_REF_B = re.compile(rb"([A-Za-z]{1,3})([0-9]{1,7})")


_ENTITY = re.compile(r"&(#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6}|amp|lt|gt|quot|apos);")


_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


TEXT_CAP = 64 * 1024  # formula/value text kept per cell; Excel's own formula limit is 8,192


def xml_unescape(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        g = m.group(1)
        if g[0] == "#":
            try:
                return chr(int(g[2:], 16) if g[1] in "xX" else int(g[1:]))
            except (ValueError, OverflowError):
                return m.group(0)
        return _NAMED[g]

    return _ENTITY.sub(sub, text) if "&" in text else text


def xml_attributes(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in _ATTR.finditer(raw):
        key = m.group(1).decode("ascii", "replace")
        if key not in out:
            val = m.group(2) if m.group(2) is not None else m.group(3)
            out[key] = xml_unescape(val.decode("utf-8", "replace"))
    return out


_COLS: dict[bytes, int] = {}


def col_index(letters: bytes) -> int:
    n = _COLS.get(letters)
    if n is None:
        n = 0
        for ch in letters.upper():
            n = n * 26 + ch - 64
        _COLS[letters] = n
    return n


def parse_ref(ref: str, sheet: str) -> tuple[int, int]:
    m = _REF.fullmatch(ref)
    if not m or int(m.group(2)) == 0:
        raise Reject("file-corrupt", f"シート「{sheet}」: 不正なセル番地 {ref[:20]!r}", sheet=sheet)
    return int(m.group(2)), col_index(m.group(1).encode())
