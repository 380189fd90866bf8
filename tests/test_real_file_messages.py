"""Messages on real files say what the file is: an encrypted .ods is encrypted, an Excel 2.x–4.0
file is the legacy format, a reader's English error reaches the clerk in Japanese (the original in
the run report), a saved mail padded with NUL bytes is read."""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage
from pathlib import Path

from pipeline.reader.envelope import read_envelope
from pipeline.reader.gate import inspect_workbook
from pipeline.reader.workbook import parse_failure

GUIDANCE = "R6_地域福祉計画評価_指導室.xlsx"
MANIFEST_ENCRYPTED = b"""<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">
 <manifest:file-entry manifest:full-path="/" manifest:version="1.2"
   manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>
 <manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml" manifest:size="2313">
  <manifest:encryption-data manifest:checksum-type="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0#sha256-1k"
    manifest:checksum="c2hh">
   <manifest:algorithm manifest:algorithm-name="http://www.w3.org/2001/04/xmlenc#aes256-cbc"
     manifest:initialisation-vector="aXY="/>
   <manifest:key-derivation manifest:key-derivation-name="PBKDF2" manifest:key-size="32"
     manifest:iteration-count="100000" manifest:salt="c2FsdA=="/>
  </manifest:encryption-data>
 </manifest:file-entry>
</manifest:manifest>
"""


def test_an_encrypted_ods_is_encrypted_not_damaged() -> None:
    """LibreOffice's password-protected .ods: meta.xml and content.xml are ciphertext."""
    cipher = bytes(range(256)) * 8
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet", compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/manifest.xml", MANIFEST_ENCRYPTED, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("meta.xml", cipher, compress_type=zipfile.ZIP_STORED)
        z.writestr("content.xml", cipher, compress_type=zipfile.ZIP_STORED)
    result = inspect_workbook(buffer.getvalue(), "評価表.ods")
    assert [i.code for i in result.issues][:1] == ["file-encrypted"]
    assert "パスワード" in result.issues[0].message and "壊れ" not in result.issues[0].message


def test_excel_2_to_4_files_are_the_legacy_format() -> None:
    for bof, version in ((b"\x09\x00", "Excel 2.x"), (b"\x09\x02", "Excel 3.0"), (b"\x09\x04", "Excel 4.0")):
        data = bof + b"\x06\x00\x00\x00\x10\x00\x00\x00" + b"\x00" * 64  # BOF record of a worksheet
        result = inspect_workbook(data, "評価表.xls")
        assert [i.code for i in result.issues] == ["file-legacy-xls"], version
        assert version in result.issues[0].message and "形式不明" not in result.issues[0].message


def test_a_readers_english_error_reaches_the_clerk_in_japanese() -> None:
    issue = parse_failure(ValueError("Cannot detect file format"), "評価表.xlsx")
    assert issue.code == "file-unreadable"
    assert "ブックの形式を判別できない" in issue.message and "Cannot detect" not in issue.message
    assert issue.value == "ValueError: Cannot detect file format"  # kept for the run report
    other = parse_failure(RuntimeError("unexpected end of stream"), "評価表.xlsx")
    assert "読み込み中にエラーが起きた" in other.message and other.value.endswith("unexpected end of stream")


def test_a_mail_padded_with_nul_bytes_is_read(demo_returns: Path) -> None:
    msg = EmailMessage()
    msg["From"] = "shido@city.example.lg.jp"
    msg["Subject"] = "評価表の送付"
    msg["Date"] = "Tue, 20 May 2025 10:15:00 +0900"
    msg.set_content("評価表を送ります。")
    workbook = (demo_returns / GUIDANCE).read_bytes()
    msg.add_attachment(workbook, maintype="application",
                       subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet", filename=GUIDANCE)
    data = msg.as_bytes() + b"\x00"
    envelope = read_envelope(data, "返送.eml")
    assert [(a.name, a.data) for a in envelope.attachments] == [(GUIDANCE, workbook)]
    assert not [i for i in envelope.issues if i.is_error]


def test_a_short_mail_padded_with_nul_bytes_is_read_as_a_mail() -> None:
    """A short message (the NUL within the first 4 KiB): read, and says what it lacks."""
    msg = EmailMessage()
    msg["From"] = "kenko@city.example.lg.jp"
    msg["Subject"] = "評価表は明日送ります"
    msg["Date"] = "Tue, 20 May 2025 10:15:00 +0900"
    msg.set_content("評価表は明日送ります。")
    envelope = read_envelope(msg.as_bytes() + b"\x00" * 3, "連絡.eml")
    assert [i.code for i in envelope.issues] == ["email-no-attachment"]
    assert envelope.subject == "評価表は明日送ります"
