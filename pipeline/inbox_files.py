"""Reading one file of the inbox safely, and telling by its bytes what it is.

One job, before any reader sees a byte:

* `read_regular` reads a file only when it is a regular file (a symlink is followed only to one):
  a FIFO, socket or device (/dev/zero through a link) is `NotRegular` without a read, so nothing
  blocks or reads without end. The size is checked on the opened handle, and the read itself is
  bounded: a file that grows while it is read is `TooLarge`, never read past the limit.
* `kind_of` says what the bytes are, whatever the name says, by their magic bytes and a byte
  search (no parsing: that is pipeline.reader's, contained): "workbook" (an OOXML package with a
  workbook part, an ODF spreadsheet, an OLE2 file that is not an Outlook
  message), "envelope" (an e-mail, an Outlook message), or "" (anything else: CSV, PDF, images,
  text, a Word file). The inbox uses it for names that say nothing (an extensionless workbook is
  read as a workbook); a zip of files is an archive only when its name says .zip, and the
  envelope reader reads an .xlsx named .zip as the workbook it is.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
_MSG_STREAM = "__substg1.0_".encode("utf-16-le")  # Outlook's property streams, named in UTF-16
_CHUNK = 1 << 20
# The first lines of a saved e-mail (RFC 5322): header fields, among them one a message always has.
_HEADER_LINE = re.compile(rb"^[!-9;-~]+:[ \t]?", re.M)
_MAIL_FIELDS = re.compile(rb"^(?:from|date|subject|received|mime-version|message-id|return-path|to):", re.I | re.M)


class NotRegular(Exception):
    """The path is a FIFO, socket, device or folder (the kind in Japanese is the argument)."""


class TooLarge(Exception):
    """More bytes than the limit (the size seen is the argument)."""


def _kind_ja(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "名前付きパイプ(FIFO)"
    if stat.S_ISSOCK(mode):
        return "ソケット"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "デバイス"
    if stat.S_ISDIR(mode):
        return "フォルダー"
    return "特殊なファイル"


def read_regular(path: Path, limit: int) -> tuple[bytes, os.stat_result]:
    """The whole content of the regular file at `path` (a symlink followed) and its stat, reading
    at most `limit` bytes. Raises NotRegular, TooLarge, or OSError (gone, no permission)."""
    before = os.stat(path)  # follows a symlink: to what it points at; nothing is opened yet
    if not stat.S_ISREG(before.st_mode):
        raise NotRegular(_kind_ja(before.st_mode))
    # O_NONBLOCK: should a FIFO replace the file between the check and the open, the open does not
    # wait for a writer; fstat on the handle then tells what was really opened.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegular(_kind_ja(st.st_mode))
        if st.st_size > limit:
            raise TooLarge(st.st_size)
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # grew while read
                raise TooLarge(size)
        return b"".join(chunks), st
    finally:
        os.close(fd)


def kind_of(data: bytes) -> str:
    """"workbook", "envelope" or "" for `data`, by its bytes alone (see the module doc)."""
    if data.startswith(ZIP_MAGIC) or data.startswith(b"PK\x05\x06"):
        # Any other zip (a .docx, a broken one) is read as an archive only when named .zip.
        return "workbook" if _is_package(data) else ""
    if data.startswith(OLE_MAGIC):
        return "envelope" if _MSG_STREAM in data else "workbook"
    head = data[:4096].lstrip(b"\xef\xbb\xbf\r\n")
    if _HEADER_LINE.match(head) and _MAIL_FIELDS.search(head):
        return "envelope"
    return ""


def _is_package(data: bytes) -> bool:
    """A spreadsheet package: an ODF spreadsheet (its mimetype member first, stored), or OOXML
    with a workbook part. Told by a byte search for the member names, which a zip stores as they
    are: nothing here parses the department's bytes (pipeline.reader does, contained). A Word or
    PowerPoint file is not a workbook."""
    if data[30:38] == b"mimetype":
        return data[38:120].startswith(b"application/vnd.oasis.opendocument.spreadsheet")
    return b"[Content_Types].xml" in data and (b"xl/workbook.xml" in data or b"xl/workbook.bin" in data)
