"""The gate's scanner of one worksheet XML (.xlsx/.xlsm): one streaming regex pass over the cells,
formulas, error values, merged ranges and hidden rows, computing the real extent (the
`<dimension>` tag is ignored) and rejecting what is beyond the limits."""

from __future__ import annotations

import re

from pipeline.celltext import column_letters
from pipeline.limits import Limits
from pipeline.reader.scanning import (
    TEXT_CAP,
    Reject,
    SheetFacts,
    col_index,
    parse_ref,
    xml_attributes,
    xml_unescape,
)

_P = rb"(?:[A-Za-z_][\w.\-]*:)?"  # optional namespace prefix: OpenXML SDK files write <x:c>


_Q = rb"""(?:"[^"<]*+"|'[^'<]*+')"""


_ATTRS = rb"((?:\s+[^\s=/>\"'<]+\s*=\s*" + _Q + rb")*+)\s*+"


_HAS_R = rb"(?=(?:\s+[^\s=/>\"'<]+\s*=\s*" + _Q + rb")*?\s+r\s*=\s*" + _Q + rb")"


_BODY = rb"((?:[^<]++|<(?!/?" + _P + rb"c[\s/>]))*+)"


_CELL = rb"<" + _P + rb"c" + _ATTRS + rb"(?:/>|>" + _BODY + rb"</" + _P + rb"c\s*>)"


_LONE_C = rb"<" + _P + rb"c" + _ATTRS + rb">"


_ROW = rb"<" + _P + rb"row" + _ATTRS + rb"/?>"


_RANGE = rb"<" + _P + rb"(mergeCell|hyperlink)" + _ATTRS + rb"/?>"


_C_LOOSE = re.compile(rb"<" + _P + rb"c(?=[\s/>])()")


_C_STRICT = re.compile(rb"<" + _P + rb"c" + _ATTRS + rb"/?>")


_C_WITH_R = re.compile(rb"<" + _P + rb"c" + _HAS_R + _ATTRS + rb"/?>()")


_ROW_LOOSE = re.compile(rb"<" + _P + rb"row(?=[\s/>])()")


_ROW_WITH_R = re.compile(rb"<" + _P + rb"row" + _HAS_R + _ATTRS + rb"/?>()")


_ROW_HIDDEN = re.compile(
    rb"<" + _P + rb"row(?=" + rb"(?:\s+[^\s=/>\"'<]+\s*=\s*" + _Q + rb")*?\s+hidden\s*=)" + _ATTRS + rb"/?>"
)


_LAST_POS = re.compile(rb"(?s:.*)<" + _P + rb"(row|c)" + _ATTRS + rb"/?>")


# The shapes Excel, openpyxl and XlsxWriter write for plain cells: only r/s/t attributes, an
# upper-case r, a <v> or inline string body. Being that specific makes them unambiguous, so they
# are counted (and their r captured) in C and removed before the Python pass.
# Literal '<c r="' lets the regex engine skip ahead fast; prefixed or unusual cells stay for
# the strict pass below. Styled empty cells are removed (and counted) first by _PLAIN_EMPTY.
_PLAIN = re.compile(
    rb'<c r="([A-Z]{1,3})([0-9]{1,7})"(?: s="[0-9]{1,6}")?(?: t="(?:s|n|str|b|d|inlineStr)")?'
    rb'(?: s="[0-9]{1,6}")?(?:>(?:<v>[^<]*+</v>|<is>(?:[^<]++|<(?!/?(?:c|is|f)[\s/>]))*+</is>)</c>)'
)


_PLAIN_EMPTY = re.compile(
    rb'<c r="[A-Z]{1,3}[0-9]{1,7}"(?: s="[0-9]{1,6}")?(?: t="(?:s|n|str|b|d|inlineStr)")?(?: s="[0-9]{1,6}")?/>'
)


# group 1: cell attrs, 2: cell body; 3: lone <c> attrs; 4: row attrs; 5: range tag, 6: range attrs
_TOKENS_SEQ = re.compile(b"|".join((_CELL, _LONE_C, _ROW, _RANGE)))


_TOKENS_EXPLICIT = re.compile(b"|".join((_CELL, _LONE_C, rb"()" + rb"(?!)", _RANGE)))


_F = re.compile(rb"<" + _P + rb"f" + _ATTRS + rb"(?:/>|>([^<]*)</" + _P + rb"f\s*>)")


_V = re.compile(rb"<" + _P + rb"v\s*(?:/>|>([^<]*)</" + _P + rb"v\s*>)")


_CHILD = re.compile(rb"<" + _P + rb"(v|is|f)[\s/>]")


_CARRY_CAP = 16 * 2**20  # one cell or tag longer than this is not something Excel writes


def _count(rx: re.Pattern[bytes], buf: bytes, end: int) -> int:
    return len(rx.findall(buf, 0, end))


class SheetScanner:
    """One streaming pass over a worksheet's XML bytes, filling a SheetFacts.

    Positions follow the readers' rules: `r` when present, otherwise one past the previous
    row/cell. Input is processed in batches that end before an unfinished cell.
    """

    def __init__(self, facts: SheetFacts, limits: Limits) -> None:
        self.f = facts
        self.limits = limits
        self.tags = 0  # every <c>, empty or not: the max_cells limit
        self.area = 0  # cells covered by merged ranges / hyperlinks (openpyxl materialises them)
        self.row = 0
        self.col = 0
        self.carry = b""
        self.shared: dict[str, tuple[str, str]] = {}  # si -> (master address, formula text)

    def feed(self, chunk: bytes) -> None:
        buf = self.carry + chunk if self.carry else chunk
        cut = buf.rfind(b"<")  # attribute values cannot contain '<': everything before is whole tags
        if cut <= 0:
            self._carry(buf)
            return
        self._carry(buf[self._scan(buf, cut) :])

    def close(self) -> None:
        if self.carry:
            if self._scan(self.carry, len(self.carry)) < len(self.carry):
                self._reject_corrupt("閉じられていないセル")
            self.carry = b""

    def _carry(self, rest: bytes) -> None:
        if len(rest) > _CARRY_CAP:
            raise Reject("sheet-too-large", "1つのセルまたは要素が長すぎる", self.f.name)
        self.carry = rest

    def _reject_corrupt(self, what: str) -> None:
        raise Reject("file-corrupt", f"シート「{self.f.name}」: {what}", self.f.name)

    def _scan(self, buf: bytes, end: int) -> int:
        """Process buf[:end]; return where the unprocessed rest (an unfinished cell) starts."""
        # Optimistic fast path: drop plain cells (styled empty ones and plain values) in C,
        # then look at what is left. Valid only if every remaining cell and row has r=, since
        # an implicit position depends on the dropped cells; otherwise redo the batch in order.
        work, n_empty = _PLAIN_EMPTY.subn(b"", buf[:end])  # counted only: no tuples for them
        refs = _PLAIN.findall(work)
        if refs:
            work = _PLAIN.sub(b"", work)
        n_c = _count(_C_LOOSE, work, len(work))
        if n_c != _count(_C_STRICT, work, len(work)):
            self._reject_corrupt("セルの書式が不正")
        explicit = n_c == _count(_C_WITH_R, work, len(work)) and _count(
            _ROW_LOOSE, work, len(work)
        ) == _count(_ROW_WITH_R, work, len(work))
        if explicit:
            self._add_tags(n_empty + len(refs))
            if refs:
                self._plain(refs)
            hidden = [m.group(1) for m in _ROW_HIDDEN.finditer(work)]
            rest = self._tokens(_TOKENS_EXPLICIT, work, len(work))
            if rest < len(work):  # an unfinished cell: find the same start tag in the original
                tag = _C_STRICT.match(work, rest)
                rest = buf.rfind(tag.group(0), 0, end) if tag else -1
                if rest < 0:
                    self._reject_corrupt("セルの書式が不正")
            else:
                rest = end
            for raw in hidden:
                a = xml_attributes(raw)
                if a.get("hidden") in ("1", "true"):
                    self.f.hidden_rows.add(self._row_number(a.get("r", "")))
            last = _LAST_POS.match(buf, 0, rest)
            if last is not None:  # carry the position forward for a later batch without r=
                a = xml_attributes(last.group(2))
                if last.group(1) == b"row":
                    self.row, self.col = self._row_number(a.get("r", "")), 0
                else:
                    self.row, self.col = parse_ref(a.get("r", ""), self.f.name)
            return rest
        return self._tokens(_TOKENS_SEQ, buf, end)

    def _plain(self, refs: list[tuple[bytes, bytes]]) -> None:
        """Extent and count of plain value cells, from their (letters, digits) in bulk."""
        f, lim = self.f, self.limits
        f.cells += len(refs)
        letters, digits = zip(*refs, strict=True)
        max_row = max(map(int, digits))
        width = max(map(len, letters))
        max_col = col_index(max(x for x in letters if len(x) == width))
        if min(map(int, digits)) == 0:
            self._reject_corrupt("不正なセル番地(行 0)")
        if max_row > f.max_row:
            f.max_row = max_row
        if max_col > f.max_col:
            f.max_col = max_col
        if max_row > lim.max_rows or max_col > lim.max_cols:
            bad = next((c, d) for c, d in refs if int(d) > lim.max_rows or col_index(c) > lim.max_cols)
            what = f"{lim.max_rows:,} 行" if int(bad[1]) > lim.max_rows else f"{lim.max_cols:,} 列"
            raise Reject(
                "sheet-too-large", f"{(bad[0] + bad[1]).decode()} にデータがあり、{what}を超えている", f.name
            )

    def _row_number(self, r: str) -> int:
        if not r.isdigit() or len(r) > 7 or int(r) == 0:
            self._reject_corrupt(f"不正な行番号 {r[:20]!r}")
        return int(r)

    def _add_tags(self, n: int) -> None:
        self.tags += n
        if self.tags > self.limits.max_cells:
            raise Reject(
                "sheet-too-large",
                f"セルが {self.limits.max_cells:,} 個を超えている(書式だけの空セルを含む)",
                self.f.name,
            )

    def _tokens(self, rx: re.Pattern[bytes], buf: bytes, end: int) -> int:
        lone: tuple[int, bytes] | None = None  # a <c> start tag without its end: unfinished if last
        for m in rx.finditer(buf, 0, end):
            if lone is not None:  # not last: malformed nesting, count it as a cell with content
                self._cell(lone[1], b"<v/>")
                lone = None
            if m.group(1) is not None:
                self._cell(m.group(1), m.group(2))
            elif m.group(3) is not None:
                lone = (m.start(), m.group(3))
            elif m.group(4) is not None:
                self._row(m.group(4))
            elif m.group(5) is not None:
                self._range(m.group(5), m.group(6))
        return lone[0] if lone is not None else end

    def _row(self, raw: bytes) -> None:
        a = xml_attributes(raw) if raw else {}
        r = a.get("r")
        self.row = self._row_number(r) if r is not None else self.row + 1
        self.col = 0
        if a.get("hidden") in ("1", "true"):
            self.f.hidden_rows.add(self.row)

    def _cell(self, raw: bytes, body: bytes | None) -> None:
        self._add_tags(1)
        a = xml_attributes(raw)
        ref = a.get("r")
        if ref is not None:
            self.row, self.col = parse_ref(ref, self.f.name)
        else:
            self.row = max(self.row, 1)
            self.col += 1
        if not body or _CHILD.search(body) is None:
            return  # styled empty cell: counts against max_cells, not towards the extent
        f = self.f
        f.cells += 1
        row, col = self.row, self.col
        if row > f.max_row:
            f.max_row = row
            if row > self.limits.max_rows:
                raise Reject(
                    "sheet-too-large",
                    f"{column_letters(col)}{row} にデータがあり、{self.limits.max_rows:,} 行を超えている",
                    f.name,
                )
        if col > f.max_col:
            f.max_col = col
            if col > self.limits.max_cols:
                raise Reject(
                    "sheet-too-large",
                    f"{column_letters(col)}{row} にデータがあり、{self.limits.max_cols:,} 列を超えている",
                    f.name,
                )
        ctype = a.get("t", "n")
        fm = _F.search(body) if b"f" in body else None
        if fm is None and ctype != "e":
            return
        addr = f"{column_letters(col)}{row}"
        vm = _V.search(body)
        v = (vm.group(1) or b"") if vm else b""
        if fm is not None:
            text = xml_unescape(fm.group(2)[:TEXT_CAP].decode("utf-8", "replace")) if fm.group(2) else ""
            fa = xml_attributes(fm.group(1))
            if fa.get("t") == "shared" and "si" in fa:
                if text:
                    self.shared[fa["si"]] = (addr, text)
                else:
                    text = _translate(*self.shared.get(fa["si"], ("", "")), addr)
            f.formulas[addr] = text
            # openpyxl writes <v/> for formulas; only a string result may legitimately be empty.
            if vm is None or (not v.strip() and ctype not in ("str", "s", "inlineStr")):
                f.no_cache.add(addr)
        if ctype == "e" and vm is not None:
            f.errors[addr] = xml_unescape(v[:TEXT_CAP].decode("utf-8", "replace")).strip()

    def _range(self, tag: bytes, raw: bytes) -> None:
        ref = xml_attributes(raw).get("ref", "")
        if not ref:
            return
        parts = ref.split(":")
        if len(parts) > 2:
            self._reject_corrupt(f"不正な範囲 {ref[:30]!r}")
        (r1, c1), (r2, c2) = parse_ref(parts[0], self.f.name), parse_ref(parts[-1], self.f.name)
        # openpyxl creates one object per cell of a merged range or hyperlink range, so their
        # area counts against the cell limit and their corners against the extent.
        if max(r1, r2) > self.limits.max_rows or max(c1, c2) > self.limits.max_cols:
            raise Reject("sheet-too-large", f"範囲 {ref} が大きすぎる", self.f.name)
        self.area += (abs(r2 - r1) + 1) * (abs(c2 - c1) + 1)
        if self.area > self.limits.max_cells:
            raise Reject("sheet-too-large", "結合セル・リンクの範囲が大きすぎる", self.f.name)
        if tag == b"mergeCell":
            self.f.merged.append(ref)


def _translate(origin: str, text: str, dest: str) -> str:
    """Text of a shared-formula dependent: the master's formula shifted to `dest` (as Excel shows it)."""
    if not text:
        return ""
    try:
        from openpyxl.formula.translate import Translator

        return Translator("=" + text, origin=origin).translate_formula(dest)[1:]
    except Exception:
        return text
