"""The gate's scanner of an .ods content.xml: one streaming expat pass that counts real cells with
their repeats (a row repeated a million times is sheet-too-large; trailing empty repeats cost
nothing) and records formulas, DDE, errors, hidden rows and sheets and merged ranges."""

from __future__ import annotations

import re

from pipeline.celltext import column_letters
from pipeline.limits import Limits
from pipeline.reader.scanning import TEXT_CAP, Reject, SheetFacts, expat_for

_ODS_VALUES = ("office:value", "office:string-value", "office:date-value", "office:time-value",
               "office:boolean-value")  # fmt: skip


_ODS_ERROR = re.compile(r"#(NULL!|DIV/0!|VALUE!|REF!|NAME\?|NUM!|N/A|GETTING_DATA)|Err:\d{3}")


_ODS_REF = re.compile(r"\[([^\[\]]*)\]")


_ODS_DDE = re.compile(
    r"""\bDDE\(\s*"((?:[^"]|"")*)"\s*[;,]\s*"((?:[^"]|"")*)"\s*[;,]\s*"((?:[^"]|"")*)"\s*(?:[;,][^)]*)?\)""", re.I
)


_EXTERNAL = re.compile(r"'(?:file|https?|ftp|smb):", re.I)


def _ods_formula(raw: str) -> str:
    """An ODF formula (`of:=IF([.B4]="8";"A";"B")`) as Excel shows it (`IF(B4="8","A","B")`).

    The validator recognises DDE by Excel's notation (`app|'topic'!item`), so LibreOffice's
    DDE("app";"topic";"item") is written that way; a DDE call it cannot take apart is still marked.
    """
    ns, sep, body = raw.partition(":")
    if not sep or not re.fullmatch(r"[A-Za-z][\w.-]*", ns):  # no namespace prefix
        body = raw
    body = body[1:] if body.startswith("=") else body
    if ns == "msoxl":  # Excel 2007 SP2 wrote its own syntax
        return body

    def ref(m: re.Match[str]) -> str:
        parts = []
        for part in m.group(1).split(":"):
            part = part.replace("$", "")
            if part.startswith("."):
                parts.append(part[1:])
            elif "." in part and not _EXTERNAL.search(part):
                sheet, _, cell = part.rpartition(".")
                parts.append(f"{sheet}!{cell}")
            else:
                parts.append(part)
        return ":".join(parts)

    # outside string literals: references and the argument separator
    pieces = re.split(r'("(?:[^"]|"")*")', body)
    for i in range(0, len(pieces), 2):
        pieces[i] = _ODS_REF.sub(ref, pieces[i]).replace(";", ",")
    text = "".join(pieces)
    text = _ODS_DDE.sub(lambda m: f"{m.group(1)}|'{m.group(2)}'!{m.group(3)}", text)
    if re.search(r"\bDDE\s*\(", text, re.I):
        text = f"DDE|'{text}'!"
    return text


class OdsScanner:
    """One streaming pass over an .ods content.xml with expat, filling one SheetFacts per table.

    Names are matched as written ("table:table-cell"), as calamine matches them, so that positions
    agree with what the reader returns. A row or cell stands for `number-rows-repeated` ×
    `number-columns-repeated` positions: non-empty ones count as cells and towards the extent, so a
    row with content repeated a million times is sheet-too-large, while the empty repeated rows and
    columns LibreOffice writes to the end of the sheet cost nothing. Every cell element also counts
    against max_cells (as every <c> does in an .xlsx).
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.sheets: dict[str, SheetFacts] = {}
        self.external_links = False
        self._hidden_styles: set[str] = set()
        self._style: str | None = None
        self._depth = 0
        self._table: int | None = None  # depth of the current sheet's <table:table>
        self._skip: int | None = None  # depth of an element whose content we ignore
        self._row_el: int | None = None
        self._cell_el: int | None = None
        self._f: SheetFacts | None = None
        self._row = self._col = 0  # last row/column position taken (1-based)
        self._row_first = self._rrep = 0
        self._hidden: list[tuple[int, int]] = []
        self._tags = self._area = 0
        self._text: list[str] | None = None  # text of a formula cell (its error value, if any)
        self._block: tuple[int, int, int, int] = (0, 0, 0, 0)
        self.parser = expat_for(self)  # no namespace processing: qualified names as written

    def feed(self, chunk: bytes, final: bool = False) -> None:
        self.parser.Parse(chunk, final)

    def _dtd(self, *args: object) -> None:
        raise Reject("file-unsafe-xml", "content.xml: DOCTYPE/ENTITY 宣言")

    def _corrupt(self, what: str) -> None:
        name = self._f.name if self._f else ""
        raise Reject("file-corrupt", f"シート「{name}」: {what}" if name else what, name)

    def _count(self, attrs: dict[str, str], key: str) -> int:
        raw = attrs.get(key)
        if raw is None:
            return 1
        if not raw.isdigit() or len(raw) > 9 or int(raw) == 0:
            self._corrupt(f"不正な繰り返し数 {raw[:20]!r}")
        return int(raw)

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self._depth += 1
        if self._skip is not None:
            return
        if self._cell_el is not None:
            if name == "text:p" and self._text is not None and self._text:
                self._text.append("\n")
            return
        if name == "table:table-cell" or name == "table:covered-table-cell":
            if self._row_el is not None and self._depth == self._row_el + 1:
                self._cell(attrs)
            return
        if name == "table:table-row":
            if self._table is not None and self._row_el is None:
                self._start_row(attrs)
            return
        if name == "table:table":
            if self._table is not None:
                self._corrupt("表の中に表がある")
            sheet = attrs.get("table:name")
            if sheet is None:  # not a sheet (calamine skips it too)
                self._skip = self._depth
                return
            if sheet.lower() in {n.lower() for n in self.sheets}:
                raise Reject("file-corrupt", f"シート名「{sheet}」が重複している", sheet)
            state = "hidden" if attrs.get("table:style-name") in self._hidden_styles else "visible"
            self._f = self.sheets[sheet] = SheetFacts(name=sheet, state=state)
            self._table, self._row, self._hidden, self._tags, self._area = self._depth, 0, [], 0, 0
            return
        if name == "style:style":
            self._style = attrs.get("style:name")
        elif name == "style:table-properties" and self._style and attrs.get("table:display") == "false":
            self._hidden_styles.add(self._style)
        elif name in ("table:dde-link", "office:dde-source", "table:table-source", "table:cell-range-source"):
            self.external_links = True

    def _start_row(self, attrs: dict[str, str]) -> None:
        rrep = self._count(attrs, "table:number-rows-repeated")
        self._row_el = self._depth
        self._row_first, self._rrep = self._row + 1, rrep
        self._row += rrep
        self._col = 0
        if attrs.get("table:visibility") in ("collapse", "filter"):
            self._hidden.append((self._row_first, self._row))

    def _cell(self, attrs: dict[str, str]) -> None:
        f, lim = self._f, self.limits
        assert f is not None
        self._cell_el = self._depth
        crep = self._count(attrs, "table:number-columns-repeated")
        c1 = self._col + 1
        self._col += crep
        self._tags += 1
        if self._tags > lim.max_cells:
            raise Reject("sheet-too-large", f"セルが {lim.max_cells:,} 個を超えている(書式だけの空セルを含む)", f.name)
        r1, r2, c2 = self._row_first, self._row, self._col
        rs, cs = self._count(attrs, "table:number-rows-spanned"), self._count(attrs, "table:number-columns-spanned")
        if rs > 1 or cs > 1:
            self._merged(r1, c1, r2, c2, rs, cs)
        formula = attrs.get("table:formula", "")
        has_value = any(k in attrs for k in _ODS_VALUES) or attrs.get("office:value-type") == "string"
        if not (has_value or formula):
            return  # an empty (perhaps styled) cell: no content, not part of the extent
        f.cells += (r2 - r1 + 1) * crep
        if f.cells > lim.max_cells:
            raise Reject("sheet-too-large", f"データのあるセルが {lim.max_cells:,} 個を超えている", f.name)
        if r2 > lim.max_rows:
            raise Reject(
                "sheet-too-large", f"{column_letters(c1)}{r2} にデータがあり、{lim.max_rows:,} 行を超えている", f.name
            )
        if c2 > lim.max_cols:
            raise Reject(
                "sheet-too-large", f"{column_letters(c2)}{r1} にデータがあり、{lim.max_cols:,} 列を超えている", f.name
            )
        f.max_row, f.max_col = max(f.max_row, r2), max(f.max_col, c2)
        if not formula:
            return
        text = _ods_formula(formula[:TEXT_CAP])
        if _EXTERNAL.search(formula):
            self.external_links = True
        cached = has_value
        error = attrs.get("calcext:value-type") == "error"
        self._block = (r1, c1, r2, c2)
        for r in range(r1, r2 + 1):
            for c in range(c1, c2 + 1):
                addr = f"{column_letters(c)}{r}"
                f.formulas[addr] = text
                if not cached:
                    f.no_cache.add(addr)
        string_value = attrs.get("office:string-value")
        if error or (string_value is not None and _ODS_ERROR.fullmatch(string_value.strip())):
            self._set_errors(string_value if string_value and string_value.strip() else "")
        if error or attrs.get("office:value-type") == "string":
            self._text = []  # the shown text tells which error it is (Excel's ODS: the value itself)

    def _set_errors(self, value: str) -> None:
        assert self._f is not None
        r1, c1, r2, c2 = self._block
        for r in range(r1, r2 + 1):
            for c in range(c1, c2 + 1):
                self._f.errors[f"{column_letters(c)}{r}"] = value or "#エラー"

    def _merged(self, r1: int, c1: int, r2: int, c2: int, rs: int, cs: int) -> None:
        f, lim = self._f, self.limits
        assert f is not None
        crep = c2 - c1 + 1
        if r2 + rs - 1 > lim.max_rows or c2 + cs - 1 > lim.max_cols:
            ref = f"{column_letters(c1)}{r1}:{column_letters(c2 + cs - 1)}{r2 + rs - 1}"
            raise Reject("sheet-too-large", f"範囲 {ref} が大きすぎる", f.name)
        self._area += rs * cs * (r2 - r1 + 1) * crep
        if self._area > lim.max_cells:
            raise Reject("sheet-too-large", "結合セルの範囲が大きすぎる", f.name)
        for r in range(r1, r2 + 1):
            for c in range(c1, c2 + 1):
                f.merged.append(f"{column_letters(c)}{r}:{column_letters(c + cs - 1)}{r + rs - 1}")

    def _chars(self, text: str) -> None:
        if self._text is not None and sum(map(len, self._text)) < 256:
            self._text.append(text)

    def _end(self, name: str) -> None:
        depth = self._depth
        self._depth -= 1
        if self._skip is not None:
            if depth == self._skip:
                self._skip = None
            return
        if depth == self._cell_el:
            self._cell_el = None
            if self._text is not None:
                shown = "".join(self._text).strip()
                self._text = None
                if _ODS_ERROR.fullmatch(shown):
                    self._set_errors(shown)
        elif depth == self._row_el:
            self._row_el = None
        elif depth == self._table and self._f is not None:
            f = self._f
            for first, last in self._hidden:  # only rows up to the data's extent matter
                f.hidden_rows.update(range(first, min(last, f.max_row) + 1))
            self._table = self._f = None
        elif name == "style:style":
            self._style = None
