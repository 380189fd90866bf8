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
    """A minimal OLE2 compound file (v3, 512-byte sectors) holding the given top-level streams.

    Streams are padded to 4096 bytes so they live in normal sectors (no mini stream needed).
    """
    sec = 512
    bodies = [(n, b.ljust(4096, b"\0")) for n, b in streams.items()]
    nsec = [len(b) // sec for _, b in bodies]
    assert len(bodies) <= 3
    fat = [0xFFFFFFFD, 0xFFFFFFFE]  # sector 0: the FAT itself, sector 1: the directory
    starts = []
    for k in nsec:
        starts.append(len(fat))
        fat += [len(fat) + i + 1 for i in range(k - 1)] + [0xFFFFFFFE]
    fat += [0xFFFFFFFF] * (128 - len(fat))
    header = struct.pack(
        "<8s16s6H10L109L",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        b"\0" * 16,
        0x3E,
        3,
        0xFFFE,
        9,
        6,
        0,
        0,
        0,
        1,
        1,
        0,
        4096,
        0xFFFFFFFE,
        0,
        0xFFFFFFFE,
        0,  # 1 FAT sector (0), directory at sector 1
        0,
        *([0xFFFFFFFF] * 108),
    )

    def entry(name: str, typ: int, child: int, right: int, start: int, size: int) -> bytes:
        raw = name.encode("utf-16-le") + b"\0\0"
        return struct.pack(
            "<64sHBBLLL16sL8s8sLLL",
            raw,
            len(raw),
            typ,
            1,
            0xFFFFFFFF,
            right,
            child,
            b"\0" * 16,
            0,
            b"\0" * 8,
            b"\0" * 8,
            start,
            size,
            0,
        )

    dir_entries = [entry("Root Entry", 5, 1 if bodies else 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFE, 0)]
    for i, ((name, body), start) in enumerate(zip(bodies, starts, strict=True)):
        right = i + 2 if i + 1 < len(bodies) else 0xFFFFFFFF
        dir_entries.append(entry(name, 2, 0xFFFFFFFF, right, start, len(body)))
    while len(dir_entries) < 4:
        dir_entries.append(
            b"\0" * 64
            + struct.pack(
                "<HBBLLL16sL8s8sLLL",
                0,
                0,
                0,
                0xFFFFFFFF,
                0xFFFFFFFF,
                0xFFFFFFFF,
                b"\0" * 16,
                0,
                b"\0" * 8,
                b"\0" * 8,
                0,
                0,
                0,
            )
        )
    out = header + struct.pack("<128L", *fat) + b"".join(dir_entries)
    for _, body in bodies:
        out += body
    return out


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
