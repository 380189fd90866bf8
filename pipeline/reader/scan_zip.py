"""The zip layer of the gate: each member inflated by our own bounded loop (the bytes produced are
counted against the declared size, the limits and the CRC, never trusted from the header), and
every XML part scanned as a byte stream for a DTD (`<!DOCTYPE` / `<!ENTITY`, never expanded)."""

from __future__ import annotations

import codecs
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator

from pipeline.reader.scanning import ZIP_MAGIC, Reject, fmt_bytes

_CHUNK = 1 << 20


_DRIVE = re.compile(r"^[A-Za-z]:")


def escapes_archive(name: str) -> bool:
    """The member-name rule of every zip we open (a workbook package, a zip of returns, a zip in a
    mail): refused when the name could point outside the archive or hide where it ends: absolute
    (a leading / or \\, a drive letter), a ".." part (split at / and \\), or a control character
    (NUL included)."""
    return (
        name.startswith(("/", "\\"))
        or _DRIVE.match(name) is not None
        or any(part == ".." for part in re.split(r"[/\\]", name))
        or any(ord(c) < 0x20 for c in name)
    )


def bad_part_name(name: str) -> bool:
    """A workbook package's part name, stricter (OPC): `escapes_archive`, a backslash (a reader
    that turns it into / would find another part than ours) or a "." part."""
    return escapes_archive(name) or "\\" in name or any(part == "." for part in name.split("/"))


_LOCAL = struct.Struct("<4s5HL2L2H")  # local file header, 30 bytes


def data_span(data: bytes, info: zipfile.ZipInfo) -> tuple[int, int]:
    """Check a member's local header against the central directory; return (data start, data end)."""
    off = info.header_offset
    if off < 0 or off + _LOCAL.size > len(data):
        raise Reject("file-corrupt", f"{info.filename}: ヘッダーの位置が不正")
    sig, _ver, flags, method, _t, _d, crc, csize, usize, nlen, xlen = _LOCAL.unpack_from(data, off)
    if sig != ZIP_MAGIC:
        raise Reject("file-corrupt", f"{info.filename}: ヘッダーが見つからない")
    lname = data[off + 30 : off + 30 + nlen]
    if lname != info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437", "replace"):
        raise Reject("file-corrupt", f"{info.filename}: 名前が目次と一致しない")
    if method != info.compress_type:
        raise Reject("file-corrupt", f"{info.filename}: 圧縮方式が目次と一致しない")
    # Without a data descriptor the local sizes must agree with the central directory, otherwise
    # readers that trust the local header (stream readers) see a different file than we do.
    if (
        not flags & 0x08
        and (csize, usize) != (0xFFFFFFFF, 0xFFFFFFFF)
        and (csize, usize, crc) != (info.compress_size, info.file_size, info.CRC)
    ):
        raise Reject("file-corrupt", f"{info.filename}: サイズ情報が目次と一致しない")
    start = off + 30 + nlen + xlen
    end = start + info.compress_size
    if end > len(data):
        raise Reject("file-corrupt", f"{info.filename}: データが途中で切れている")
    return start, end


def inflate(data: bytes, info: zipfile.ZipInfo, start: int, end: int, budget: int) -> Iterator[bytes]:
    """Yield a member's bytes in chunks, counting what is really produced.

    Stops with file-corrupt as soon as the output exceeds the declared size (a lying header),
    and with file-zip-bomb past `budget` (whatever the header says); checks length and CRC at the end.
    """
    declared = info.file_size
    produced = 0
    crc = 0
    if info.compress_type == zipfile.ZIP_STORED:
        for pos in range(start, end, _CHUNK):
            chunk = data[pos : min(pos + _CHUNK, end)]
            produced += len(chunk)
            if produced > budget:
                raise Reject("file-zip-bomb", f"{info.filename}: 展開後 {fmt_bytes(produced)} 超")
            crc = zlib.crc32(chunk, crc)
            yield chunk
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        d = zlib.decompressobj(-15)
        pos = start
        pending = b""
        while True:
            if not pending and pos < end:
                pending = data[pos : min(pos + _CHUNK, end)]
                pos += len(pending)
            if not pending and d.eof:
                break
            try:
                # max_length bounds memory per step regardless of the compression ratio.
                chunk = d.decompress(pending, _CHUNK)
            except zlib.error as exc:
                raise Reject("file-corrupt", f"{info.filename}: 圧縮データが壊れている ({exc})") from None
            pending = d.unconsumed_tail
            if chunk:
                produced += len(chunk)
                if produced > declared:
                    raise Reject("file-corrupt", f"{info.filename}: 宣言より大きく展開される(サイズ偽装)")
                if produced > budget:
                    raise Reject("file-zip-bomb", f"{info.filename}: 展開後 {fmt_bytes(produced)} 超")
                crc = zlib.crc32(chunk, crc)
                yield chunk
            elif d.eof or (not pending and pos >= end):
                break
        if not d.eof:
            raise Reject("file-corrupt", f"{info.filename}: 圧縮データが途中で切れている")
    else:
        raise Reject("file-corrupt", f"{info.filename}: Excel が使わない圧縮方式 ({info.compress_type})")
    if produced != declared:
        raise Reject(
            "file-corrupt", f"{info.filename}: 宣言 {declared:,} バイトに対し実際 {produced:,} バイト"
        )
    if crc != info.CRC:
        raise Reject("file-corrupt", f"{info.filename}: CRC 不一致")


_DTD_ASCII = re.compile(rb"<!(?i:doctype|entity)")


_DTD_TEXT = re.compile(r"<!(?i:doctype|entity)")


_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._\-]+)["']""")


# XML encodings in which the ASCII bytes of "<!DOCTYPE" are always themselves (so a byte scan is exact).
_ASCII_SAFE = {
    "utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1", "windows-1252", "cp1252",
    "shift_jis", "shift-jis", "sjis", "cp932", "windows-31j", "euc-jp",
}  # fmt: skip


class DtdScanner:
    """Streaming search for DTD/entity declarations in one member, across chunk boundaries.

    Decides from the first bytes whether the member is XML at all (binary parts such as images
    or vbaProject.bin are skipped) and in which encoding family, so UTF-16 parts cannot hide a DTD.
    """

    KEEP = 16  # longest pattern ("<!DOCTYPE" in UTF-16) minus one, rounded up

    def __init__(self, member: str) -> None:
        self.member = member
        self.mode = ""  # "" undecided, "ascii", "text" (decoder), "binary"
        self.tail = b""
        self.decoder: codecs.IncrementalDecoder | None = None
        self.tail_text = ""

    def feed(self, chunk: bytes) -> None:
        if self.mode == "":
            self._decide(chunk)
        if self.mode == "ascii":
            buf = self.tail + chunk
            if _DTD_ASCII.search(buf):
                raise Reject("file-unsafe-xml", f"{self.member}: DOCTYPE/ENTITY 宣言")
            self.tail = buf[-self.KEEP :]
        elif self.mode == "text" and self.decoder is not None:
            text = self.tail_text + self.decoder.decode(chunk)
            if _DTD_TEXT.search(text):
                raise Reject("file-unsafe-xml", f"{self.member}: DOCTYPE/ENTITY 宣言")
            self.tail_text = text[-self.KEEP :]

    def _decide(self, chunk: bytes) -> None:
        import codecs

        utf16 = {b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16", b"<\x00": "utf-16-le", b"\x00<": "utf-16-be"}
        if chunk[:2] in utf16 and not chunk.startswith(b"\xff\xfe\x00\x00"):
            self.mode = "text"
            self.decoder = codecs.getincrementaldecoder(utf16[chunk[:2]])("replace")
            return
        if chunk.startswith((b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00", b"\x4c\x6f\xa7\x94", b"+/v")):
            raise Reject("file-unsafe-xml", f"{self.member}: Excel が使わない文字コード")
        body = chunk[3:] if chunk.startswith(b"\xef\xbb\xbf") else chunk
        stripped = body.lstrip(b" \t\r\n")
        if stripped and not stripped.startswith(b"<"):
            self.mode = "binary"
            return
        m = _ENCODING.match(body)
        if m and m.group(1).decode("ascii").lower() not in _ASCII_SAFE:
            raise Reject(
                "file-unsafe-xml", f"{self.member}: Excel が使わない文字コード {m.group(1).decode()}"
            )
        self.mode = "ascii"


class FirstBytes:
    """The first `cap` bytes of a small member (the .ods mimetype)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()

    def feed(self, chunk: bytes) -> None:
        if len(self.data) < self.cap:
            self.data += chunk[: self.cap - len(self.data)]
