"""Tests for pipeline.reader.envelope: messages built the way Outlook and Japanese mail clients write them.

The fixtures are hand-made bytes rather than stdlib-generated messages, because the point is the
non-standard output of real clients: ISO-2022-JP with Windows characters (①Ⅲ㈱髙), encoded-words
inside quotes or split mid-character, raw cp932 names, Outlook .msg files and cp932 ZIP names.
A small OLE2 (CFB) writer below builds .msg files, since olefile can only read them.
"""

from __future__ import annotations

import base64
import inspect
import io
import json
import struct
import unicodedata
import zipfile
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage

import openpyxl
import pytest
from hostile import compound_file as build_cfb  # the one [MS-CFB] writer of the tests
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.limits import Limits
from pipeline.reader import envelope
from pipeline.reader.envelope import (
    Attachment,
    Envelope,
    read_eml,
    read_envelope,
    read_msg,
    read_zip,
)
from pipeline.report import CODES, ERROR, WARNING

JST = timezone(timedelta(hours=9))
CRLF = b"\r\n"

# ---------------------------------------------------------------------------------------------
# Helpers: workbooks, Japanese encodings, MIME
# ---------------------------------------------------------------------------------------------


def make_xlsx(label: str) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "評価表"
    ws["A1"] = label
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


XLSX_A = make_xlsx("自立生活支援課")
XLSX_B = make_xlsx("高齢福祉課")
XLSX_C = make_xlsx("障害福祉課")


def jis_ms(text: str) -> bytes:
    """Encode as Windows does for ISO-2022-JP mail (CP50221): cp932, then Shift_JIS → JIS.

    NEC row 13 (①Ⅲ㈱) and the NEC-selected IBM rows (髙) end up after ESC $ B, which is exactly
    what Python's iso2022_jp codecs refuse to decode.
    """
    out = bytearray()
    mode = "ascii"
    for ch in text:
        raw = ch.encode("cp932")
        if len(raw) == 1 and raw[0] < 0x80:
            want, chunk = "ascii", raw
        elif len(raw) == 1:
            want, chunk = "kana", bytes([raw[0] - 0x80])
        else:
            want, chunk = "kanji", bytes(sjis_to_jis(raw[0], raw[1]))
        if want != mode:
            out += {"ascii": b"\x1b(B", "kana": b"\x1b(I", "kanji": b"\x1b$B"}[want]
            mode = want
        out += chunk
    if mode != "ascii":
        out += b"\x1b(B"
    return bytes(out)


def sjis_to_jis(s1: int, s2: int) -> tuple[int, int]:
    if s1 >= 0xE0:
        s1 -= 0x40
    j1 = (s1 - 0x81) * 2 + 0x21
    if s2 >= 0x9F:
        return j1 + 1, s2 - 0x7E
    return j1, s2 - 0x1F - (1 if s2 >= 0x80 else 0)


def ew(raw: bytes, charset: str = "ISO-2022-JP") -> str:
    return f"=?{charset}?B?{base64.b64encode(raw).decode()}?="


def pct(raw: bytes) -> str:
    return "".join(chr(b) if (b < 0x80 and chr(b).isalnum()) or chr(b) in ".-_" else f"%{b:02X}" for b in raw)


def b64_body(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", CRLF)


def lines(*items: str | bytes) -> bytes:
    return CRLF.join(i.encode("ascii") if isinstance(i, str) else i for i in items)


def multipart(subtype: str, boundary: str, parts: list[bytes]) -> tuple[str, bytes]:
    """(Content-Type header value, body) for a multipart entity."""
    body = b"This is a multi-part message in MIME format." + CRLF + CRLF
    for p in parts:
        body += f"--{boundary}".encode() + CRLF + p + CRLF
    body += f"--{boundary}--".encode() + CRLF
    return f'multipart/{subtype};\r\n\tboundary="{boundary}"', body


def message(headers: list[str | bytes], content_type: str, body: bytes) -> bytes:
    return lines(*headers, "MIME-Version: 1.0", f"Content-Type: {content_type}", "", "") + body


def text_part(text: str = "お世話になっております。評価表を送付します。") -> bytes:
    return lines(
        'Content-Type: text/plain; charset="iso-2022-jp"', "Content-Transfer-Encoding: 7bit", "", ""
    ) + (jis_ms(text) + CRLF)


def file_part(disposition: str | bytes, data: bytes, content_type: str | bytes | None = None) -> bytes:
    ct = content_type or "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return lines(
        b"Content-Type: " + (ct if isinstance(ct, bytes) else ct.encode()),
        "Content-Transfer-Encoding: base64",
        b"Content-Disposition: " + (disposition if isinstance(disposition, bytes) else disposition.encode()),
        "",
        "",
    ) + b64_body(data)


def simple_mail(
    disposition: str | bytes, data: bytes = XLSX_A, extra: list[str | bytes] | None = None
) -> bytes:
    ctype, body = multipart("mixed", "----=_NextPart_000_0001", [text_part(), file_part(disposition, data)])
    headers = extra or [
        "From: taro@city.koganei.lg.jp",
        "Subject: test",
        "Date: Tue, 14 May 2024 09:31:05 +0900",
    ]
    return message(headers, ctype, body)


def codes(env: Envelope) -> list[str]:
    return [i.code for i in env.issues]


# ---------------------------------------------------------------------------------------------
# .eml: Outlook and Japanese clients
# ---------------------------------------------------------------------------------------------

SUBJECT = "【回答】令和6年度 地域福祉計画評価表①Ⅲ（㈱髙橋商事 受託分）"
FILENAME = "令和6年度_評価表_自立生活支援課①.xlsx"


def test_outlook_iso2022jp_headers_with_windows_characters() -> None:
    # Outlook folds a long ISO-2022-JP subject into several complete encoded-words.
    half = len(SUBJECT) // 2
    subject = ew(jis_ms(SUBJECT[:half])) + "\r\n " + ew(jis_ms(SUBJECT[half:]))
    name_ew = ew(jis_ms(FILENAME))
    ctype, body = multipart(
        "mixed",
        "----=_NextPart_000_0001_01DAA5D2.1C2E8A30",
        [
            text_part(),
            file_part(
                f'attachment;\r\n\tfilename="{name_ew}"',
                XLSX_A,
                f'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet;\r\n\tname="{name_ew}"',
            ),
        ],
    )
    raw = message(
        [
            f"From: {ew(jis_ms('髙橋 一郎（自立生活支援課）'))} <Ichiro.Takahashi@City.Koganei.LG.JP>",
            "To: <chiiki-fukushi@city.koganei.lg.jp>",
            f"Subject: {subject}",
            "Date: Tue, 14 May 2024 09:31:05 +0900",
            "X-Mailer: Microsoft Outlook 16.0",
            "Content-Language: ja",
        ],
        ctype,
        body,
    )
    env = read_eml(raw, "返信.eml")
    assert env.kind == "eml"
    assert env.subject == SUBJECT
    assert env.sender == "ichiro.takahashi@city.koganei.lg.jp"
    assert env.sender_name == "髙橋 一郎（自立生活支援課）"
    assert env.received == datetime(2024, 5, 14, 9, 31, 5, tzinfo=JST)
    assert env.received.utcoffset() == timedelta(hours=9)
    assert env.attachments == [Attachment(FILENAME, XLSX_A)]
    assert env.issues == []


def test_encoded_words_split_mid_character_are_joined_before_decoding() -> None:
    # Some clients cut the bytes, not the characters: the second word continues a JIS run
    # (no ESC $ B) or the tail of a UTF-8 sequence.
    jis = jis_ms("評価表①の提出")
    utf8 = "評価表Ⅲの提出".encode()
    subject = ew(jis[:7]) + "\r\n " + ew(jis[7:])
    sender = ew(utf8[:4], "UTF-8") + " " + ew(utf8[4:], "utf-8")
    raw = simple_mail(
        "attachment; filename=a.xlsx",
        extra=[
            f'From: "{sender}" <a@b.lg.jp>',
            f"Subject: {subject}",
            "Date: Tue, 14 May 2024 09:31:05 +0900",
        ],
    )
    env = read_eml(raw, "m.eml")
    assert env.subject == "評価表①の提出"
    assert env.sender_name == "評価表Ⅲの提出"


@pytest.mark.parametrize(
    "disposition",
    [
        # Becky! / RFC 2231 with ISO-2022-JP, including NEC row 13
        "attachment; filename*=ISO-2022-JP''" + pct(jis_ms(FILENAME)),
        # language tag present
        "attachment; filename*=iso-2022-jp'ja'" + pct(jis_ms(FILENAME)),
        # Thunderbird: UTF-8 continuations, split inside a multi-byte character
        "attachment;\r\n filename*0*=UTF-8''"
        + pct(FILENAME.encode()[:10])
        + ";\r\n filename*1*="
        + pct(FILENAME.encode()[10:31])
        + ";\r\n filename*2*="
        + pct(FILENAME.encode()[31:]),
        # Outlook / webmail: encoded-word inside quotes, folded across lines and split mid-JIS-run
        'attachment; filename="' + ew(jis_ms(FILENAME)[:12]) + "\r\n " + ew(jis_ms(FILENAME)[12:]) + '"',
        # Gmail style: UTF-8 encoded-word in quotes
        f'attachment; filename="{ew(FILENAME.encode(), "UTF-8")}"',
        # Q encoding
        'attachment; filename="=?UTF-8?Q?'
        + pct(FILENAME.encode()).replace("%", "=").replace("_", "=5F")
        + '?="',
        # encoded-word split across RFC 2231 plain continuations
        'attachment; filename*0="'
        + ew(FILENAME.encode(), "UTF-8")[:20]
        + '"; filename*1="'
        + ew(FILENAME.encode(), "UTF-8")[20:]
        + '"',
        # Shift_JIS encoded-word, declared with a Windows alias
        f'attachment; filename="{ew(FILENAME.encode("cp932"), "Shift_JIS")}"',
    ],
    ids=[
        "2231-jis",
        "2231-jis-lang",
        "2231-utf8-continued",
        "ew-quoted-split",
        "ew-utf8",
        "ew-q",
        "ew-in-2231",
        "ew-sjis",
    ],
)
def test_attachment_filename_encodings(disposition: str) -> None:
    env = read_eml(simple_mail(disposition), "m.eml")
    assert env.attachments == [Attachment(FILENAME, XLSX_A)]
    assert env.issues == []


def test_raw_cp932_headers_and_filename() -> None:
    # Older Japanese clients put undeclared Shift_JIS bytes in headers. 表 and ソ end in 0x5C,
    # which a quoted-string parser would otherwise take for an escaping backslash.
    name = "評価表_ソフト表①.xlsx"
    assert b"\\" in name.encode("cp932")
    raw = simple_mail(
        b'attachment; filename="' + name.encode("cp932") + b'"',
        extra=[
            b'From: "' + "表 ソノ子".encode("cp932") + b'" <sono@city.koganei.lg.jp>',
            b"Subject: " + "評価表の送付（ソーシャル表）".encode("cp932"),
            "Date: Tue, 14 May 2024 09:31:05 +0900",
        ],
    )
    env = read_eml(raw, "m.eml")
    assert env.attachments == [Attachment(name, XLSX_A)]
    assert env.subject == "評価表の送付（ソーシャル表）"
    assert env.sender_name == "表 ソノ子"
    assert env.sender == "sono@city.koganei.lg.jp"


def test_raw_utf8_and_raw_jis_headers() -> None:
    raw = simple_mail(
        b'attachment; filename="' + FILENAME.encode() + b'"',
        extra=[
            b"From: " + jis_ms("福祉 花子") + b" <hanako@city.koganei.lg.jp>",
            b"Subject: " + "Re: 評価表①".encode(),
            "Date: Tue, 14 May 2024 09:31:05 +0900",
        ],
    )
    env = read_eml(raw, "m.eml")
    assert env.attachments[0].name == FILENAME
    assert env.subject == "Re: 評価表①"
    assert env.sender_name == "福祉 花子"


def test_euc_jp_raw_header_is_told_apart_from_cp932() -> None:
    raw = simple_mail(
        "attachment; filename=a.xlsx",
        extra=[b"Subject: " + "評価表を送ります".encode("euc_jp"), "Date: Tue, 14 May 2024 09:31:05 +0900"],
    )
    assert read_eml(raw, "m.eml").subject == "評価表を送ります"


def test_undecodable_header_bytes_never_leak_surrogates() -> None:
    # Bytes that are neither UTF-8 nor cp932 must come out as U+FFFD, never as lone surrogates
    # (which would break JSON and Excel output downstream).
    raw = simple_mail(
        b'attachment; filename="\xff\xfe\x80.xlsx"',
        extra=[b"From: \xff\xfe <a@b.lg.jp>", b"Subject: \xff\x80abc", b"Date: \xff\xfe"],
    )
    env = read_eml(raw, "m.eml")
    texts = [env.subject, env.sender_name, env.sender, *(a.name for a in env.attachments)]
    texts += [i.message for i in env.issues]
    for text in texts:
        text.encode("utf-8")  # raises on a lone surrogate
    assert env.attachments[0].name.endswith(".xlsx")
    assert json.dumps([i.to_dict() for i in env.issues], ensure_ascii=False)


def test_path_in_attachment_name_is_dropped() -> None:
    env = read_eml(simple_mail('attachment; filename="../../評価表.xlsx"'), "m.eml")
    assert env.attachments == [Attachment("評価表.xlsx", XLSX_A)]


def test_forwarded_message_rfc822_is_walked() -> None:
    inner_type, inner_body = multipart(
        "mixed",
        "inner-boundary",
        [
            text_part("評価表を提出します。"),
            file_part(f'attachment; filename="{ew(jis_ms(FILENAME))}"', XLSX_B),
        ],
    )
    inner = message(
        [
            f"From: {ew(jis_ms('高齢福祉課'))} <korei@city.koganei.lg.jp>",
            f"Subject: {ew(jis_ms('評価表の提出'))}",
            "Date: Mon, 13 May 2024 17:00:00 +0900",
        ],
        inner_type,
        inner_body,
    )
    forwarded = lines("Content-Type: message/rfc822", "Content-Disposition: attachment", "", "") + inner
    outer_type, outer_body = multipart("mixed", "outer-boundary", [text_part("転送します。"), forwarded])
    raw = message(
        [
            "From: Kanri <kanri@city.koganei.lg.jp>",
            f"Subject: {ew(jis_ms('FW: 評価表の提出'))}",
            "Date: Tue, 14 May 2024 08:00:00 +0900",
        ],
        outer_type,
        outer_body,
    )
    env = read_eml(raw, "fw.eml")
    assert env.attachments == [Attachment(FILENAME, XLSX_B)]
    assert env.sender == "kanri@city.koganei.lg.jp"
    assert env.subject == "FW: 評価表の提出"
    assert env.received == datetime(2024, 5, 14, 8, 0, tzinfo=JST)


def test_alternative_body_then_attachments_only_workbooks_kept() -> None:
    alt_type, alt_body = multipart(
        "alternative",
        "alt",
        [
            lines('Content-Type: text/plain; charset="UTF-8"', "Content-Transfer-Encoding: base64", "", "")
            + b64_body("本文です".encode()),
            lines('Content-Type: text/html; charset="UTF-8"', "", "") + "<p>本文です</p>".encode(),
        ],
    )
    alternative = lines(f"Content-Type: {alt_type}", "", "") + alt_body
    ctype, body = multipart(
        "mixed",
        "mixed",
        [
            alternative,
            file_part(f'attachment; filename="{ew("評価表.xlsx".encode(), "UTF-8")}"', XLSX_A),
            file_part('attachment; filename="資料.pdf"', b"%PDF-1.4 ...", "application/pdf"),
            file_part('attachment; filename="macro.XLSM"', XLSX_B, "application/octet-stream"),
            # an unnamed workbook, identified by its content type
            file_part("attachment", XLSX_C, "application/vnd.ms-excel"),
        ],
    )
    raw = message(["From: a@b.lg.jp", "Subject: x", "Date: Tue, 14 May 2024 09:31:05 +0900"], ctype, body)
    env = read_envelope(raw, "m.eml")
    assert [a.name for a in env.attachments] == ["評価表.xlsx", "macro.XLSM", "添付ファイル6.xls"]
    assert [a.data for a in env.attachments] == [XLSX_A, XLSX_B, XLSX_C]
    assert env.issues == []  # the PDF is skipped silently


def test_stdlib_generated_message_rfc2231_continuations() -> None:
    msg = EmailMessage()
    msg["From"] = "髙橋 一郎 <takahashi@city.koganei.lg.jp>"
    msg["Subject"] = SUBJECT
    msg["Date"] = "Tue, 14 May 2024 09:31:05 +0900"
    msg.set_content("本文")
    msg.add_attachment(XLSX_A, maintype="application", subtype="octet-stream", filename=FILENAME)
    env = read_eml(msg.as_bytes(), "m.eml")
    assert env.attachments == [Attachment(FILENAME, XLSX_A)]
    assert env.subject == SUBJECT
    assert env.sender_name == "髙橋 一郎"


def test_no_workbook_attached() -> None:
    ctype, body = multipart(
        "mixed", "b", [text_part(), file_part('attachment; filename="資料.pdf"', b"%PDF", "application/pdf")]
    )
    raw = message(["From: a@b.lg.jp", "Subject: x", "Date: Tue, 14 May 2024 09:31:05 +0900"], ctype, body)
    env = read_eml(raw, "m.eml")
    assert env.attachments == []
    assert codes(env) == ["email-no-attachment"]
    issue = env.issues[0]
    assert issue.severity == ERROR and issue.is_file_level and issue.file == "m.eml"
    assert issue.message.startswith("メールに Excel ファイルが添付されていません")
    assert "資料.pdf" in issue.message


def test_plain_text_mail_without_any_attachment() -> None:
    raw = lines("From: a@b.lg.jp", "Subject: hi", "Date: Tue, 14 May 2024 09:31:05 +0900", "", "body")
    env = read_eml(raw, "m.eml")
    assert codes(env) == ["email-no-attachment"]
    assert "{" not in env.issues[0].message


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("Tue, 14 May 2024 09:31:05 +0900 (JST)", datetime(2024, 5, 14, 9, 31, 5, tzinfo=JST)),
        ("14 May 2024 00:31:05 -0000", datetime(2024, 5, 14, 0, 31, 5, tzinfo=UTC)),
        ("Tue, 14 May 2024 09:31:05", datetime(2024, 5, 14, 9, 31, 5, tzinfo=JST)),  # no zone: local
    ],
)
def test_date_header_is_timezone_aware(date: str, expected: datetime) -> None:
    env = read_eml(
        simple_mail("attachment; filename=a.xlsx", extra=["From: a@b.lg.jp", f"Date: {date}"]), "m.eml"
    )
    assert env.received == expected
    assert env.received is not None and env.received.tzinfo is not None
    assert env.issues == []


@pytest.mark.parametrize(
    ("date_header", "code", "quoted"),
    [
        (None, "email-date-missing", ""),
        (b"Date: ", "email-date-missing", ""),
        ("Date: 令和6年5月14日".encode("cp932"), "email-date-unparsed", "「令和6年5月14日」"),
        (b"Date: 32/13/2024", "email-date-unparsed", "「32/13/2024」"),
    ],
)
def test_missing_or_unreadable_date_is_a_warning(date_header: bytes | None, code: str, quoted: str) -> None:
    headers: list[str | bytes] = ["From: a@b.lg.jp", "Subject: x"] + ([date_header] if date_header else [])
    env = read_eml(simple_mail("attachment; filename=a.xlsx", extra=headers), "m.eml")
    assert env.received is None
    assert codes(env) == [code]
    issue = env.issues[0]
    assert quoted in issue.message
    assert issue.severity == WARNING and CODES[issue.code].level == "note"
    assert "ファイルの更新日時" in issue.message
    assert env.attachments == [Attachment("a.xlsx", XLSX_A)]


@pytest.mark.parametrize("data", [b"", b"   \r\n", bytes(range(256)) * 4, b"just some text\r\nno headers"])
def test_unreadable_message(data: bytes) -> None:
    env = read_eml(data, "broken.eml")
    assert codes(env) == ["email-unreadable"]
    assert env.issues[0].is_file_level and env.issues[0].file == "broken.eml"
    assert env.attachments == []


def test_zip_attached_to_mail_is_unpacked() -> None:
    z = cp932_zip({"回答/評価表①.xlsx": XLSX_A, "回答/説明.docx": b"x"})
    raw = simple_mail(f'attachment; filename="{ew(jis_ms("回答①.zip"))}"', z)
    env = read_eml(raw, "m.eml")
    assert env.attachments == [Attachment("回答①.zip ＞ 回答/評価表①.xlsx", XLSX_A)]
    assert env.issues == []


def test_attached_eml_file_is_opened() -> None:
    inner = simple_mail('attachment; filename="評価表.xlsx"', XLSX_B)
    raw = simple_mail('attachment; filename="返信.eml"', inner)
    env = read_eml(raw, "m.eml")
    assert env.attachments == [Attachment("返信.eml ＞ 評価表.xlsx", XLSX_B)]


# ---------------------------------------------------------------------------------------------
# .zip
# ---------------------------------------------------------------------------------------------


def cp932_zip(members: dict[str, bytes]) -> bytes:
    """A ZIP as Japanese Windows "送る → 圧縮" writes it: cp932 names, no UTF-8 flag."""
    return raw_name_zip({name.encode("cp932"): data for name, data in members.items()})


def raw_name_zip(members: dict[bytes, bytes]) -> bytes:
    """A ZIP whose member names are the given bytes, without the UTF-8 flag.

    zipfile always writes non-ASCII names as flagged UTF-8, so write ASCII placeholders of the
    same byte length and patch the names in (CRCs do not cover names).
    """
    buf = io.BytesIO()
    swaps = []
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, (raw, data) in enumerate(members.items()):
            placeholder = f"{i:03d}".encode() + b"#" * (len(raw) - 3)
            assert len(placeholder) == len(raw)
            zf.writestr(placeholder.decode(), data)
            swaps.append((placeholder, raw))
    out = buf.getvalue()
    for placeholder, raw in swaps:
        assert out.count(placeholder) == 2  # local header and central directory
        out = out.replace(placeholder, raw)
    return out


def plain_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_with_cp932_names() -> None:
    z = cp932_zip(
        {
            "令和6年度/評価表_ソフト表①.xlsx": XLSX_A,  # 表 and ソ: 0x5C trail bytes
            "令和6年度/㈱髙橋_Ⅲ.xlsm": XLSX_B,
            "令和6年度/説明.pdf": b"%PDF",
            "令和6年度/~$評価表.xlsx": b"lock",  # Excel's owner file
        }
    )
    env = read_zip(z, "回答.zip")
    assert env.kind == "zip" and env.sender == "" and env.received is None
    assert env.attachments == [
        Attachment("令和6年度/評価表_ソフト表①.xlsx", XLSX_A),
        Attachment("令和6年度/㈱髙橋_Ⅲ.xlsm", XLSX_B),
    ]
    assert env.issues == []


def test_zip_with_utf8_names_flagged_and_unflagged_mac() -> None:
    flagged = plain_zip({"評価表①.xlsx": XLSX_A})
    assert read_zip(flagged, "a.zip").attachments == [Attachment("評価表①.xlsx", XLSX_A)]
    # macOS Archive Utility: UTF-8 in NFD, no flag, plus __MACOSX resource forks
    nfd = unicodedata.normalize("NFD", "データ評価表.xlsx")
    assert nfd != "データ評価表.xlsx"
    data = raw_name_zip({nfd.encode(): XLSX_B, b"__MACOSX/._x.xlsx": b"\x00\x05\x16\x07"})
    env = read_zip(data, "mac.zip")
    assert env.attachments == [Attachment("データ評価表.xlsx", XLSX_B)]


def test_nested_zip() -> None:
    inner = cp932_zip({"評価表.xlsx": XLSX_A})
    outer = plain_zip({"内側.zip": inner, "b.xlsx": XLSX_B})
    env = read_envelope(outer, "外側.zip")
    assert env.attachments == [Attachment("内側.zip ＞ 評価表.xlsx", XLSX_A), Attachment("b.xlsx", XLSX_B)]


def test_nesting_deeper_than_limit_is_unsafe(monkeypatch: pytest.MonkeyPatch) -> None:
    data = XLSX_A
    name = "x.xlsx"
    for level in range(3):
        data, name = plain_zip({name: data}), f"level{level}.zip"
    with monkeypatch.context() as m:
        m.setattr(envelope, "MAX_DEPTH", 1)
        env = read_zip(data, "top.zip")
    assert "zip-unsafe" in codes(env)
    assert env.attachments == []
    assert read_zip(data, "top.zip").attachments == [Attachment("level1.zip ＞ level0.zip ＞ x.xlsx", XLSX_A)]


def test_zip_bomb_member_limit_counts_inflated_bytes() -> None:
    bomb = plain_zip({"評価表.xlsx": b"\0" * (3 * 2**20)})
    assert len(bomb) < 20_000
    env = read_zip(bomb, "bomb.zip", Limits(max_file_mib=1))
    assert codes(env) == ["zip-unsafe"]
    assert env.attachments == []
    assert "ZIP 爆弾" in env.issues[0].message


def test_zip_total_limit_over_all_members_and_nested_zips() -> None:
    chunk = b"\0" * (700 * 2**10)
    inner = plain_zip({"c.xlsx": chunk})
    z = plain_zip({"a.xlsx": chunk, "in.zip": inner})
    env = read_zip(z, "many.zip", Limits(max_total_mib=1))
    assert "zip-unsafe" in codes(env)
    assert env.attachments == []


def test_zip_declared_size_is_not_trusted() -> None:
    # Claim a tiny uncompressed size for a large member: reading must not return more than was
    # checked, and the mismatch surfaces as an error, never as an attachment.
    z = bytearray(plain_zip({"評価表.xlsx": b"A" * (3 * 2**20)}))
    with zipfile.ZipFile(io.BytesIO(bytes(z))) as zf:
        info = zf.infolist()[0]
        local, central = info.header_offset, bytes(z).index(b"PK\x01\x02")
    struct.pack_into("<I", z, local + 22, 10)
    struct.pack_into("<I", z, central + 24, 10)
    env = read_zip(bytes(z), "lie.zip", Limits(max_file_mib=1))
    assert env.attachments == []
    assert codes(env)[0] in ("zip-unsafe", "zip-unreadable")


@pytest.mark.parametrize(
    "bad", ["../評価表.xlsx", "/etc/評価表.xlsx", "a/../../b.xlsx", "C:/x.xlsx", "..\\x.xlsx"]
)
def test_zip_with_traversal_or_absolute_name_is_rejected(bad: str) -> None:
    z = plain_zip({"ok.xlsx": XLSX_A, bad: XLSX_B})
    env = read_zip(z, "evil.zip")
    assert codes(env) == ["zip-unsafe"]
    assert env.attachments == []
    assert env.issues[0].is_file_level


def test_zip_with_too_many_members() -> None:
    z = plain_zip({f"{i}.txt": b"x" for i in range(6)})
    env = read_zip(z, "many.zip", Limits(max_members=5))
    assert codes(env) == ["zip-unsafe"]
    assert "6" in env.issues[0].message


def test_password_protected_zip() -> None:
    z = bytearray(plain_zip({"評価表.xlsx": XLSX_A}))
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = bytes(z).index(sig)
        struct.pack_into("<H", z, pos + flag_at, struct.unpack_from("<H", z, pos + flag_at)[0] | 0x1)
    env = read_zip(bytes(z), "ppap.zip")
    assert codes(env) == ["zip-encrypted"]
    assert "パスワード" in env.issues[0].message


def test_zip_without_workbooks_and_corrupt_zip() -> None:
    env = read_zip(plain_zip({"説明.pdf": b"%PDF"}), "docs.zip")
    assert codes(env) == ["zip-no-workbook"]
    assert "説明.pdf" in env.issues[0].message
    env = read_zip(b"PK\x03\x04" + b"\x00" * 40, "broken.zip")
    assert codes(env) == ["zip-unreadable"]


def test_corrupt_member_is_reported() -> None:
    z = bytearray(plain_zip({"a.xlsx": XLSX_A}, zipfile.ZIP_STORED))
    pos = bytes(z).index(XLSX_A[:64])
    z[pos + 100] ^= 0xFF  # breaks the CRC
    env = read_zip(bytes(z), "crc.zip")
    assert codes(env) == ["zip-unreadable"]
    assert env.attachments == []


# ---------------------------------------------------------------------------------------------
# .msg: a minimal OLE2 compound file writer and Outlook property streams
# ---------------------------------------------------------------------------------------------


def filetime(when: datetime) -> bytes:
    delta = when - datetime(1601, 1, 1, tzinfo=UTC)
    return struct.pack("<Q", (delta // timedelta(microseconds=1)) * 10)


def msg_files(
    prefix: str = "",
    *,
    kind: str = "top",  # "top" | "embedded"
    subject: str = "",
    sender_name: str = "",
    sender_email: str = "",
    address_type: str = "SMTP",
    smtp: str = "",
    submit: datetime | None = None,
    delivery: datetime | None = None,
    transport_headers: str = "",
    attachments: tuple[tuple[str, bytes | dict], ...] = (),
    ansi: bool = False,
) -> dict[str, bytes]:
    """The streams of one Outlook item as [MS-OXMSG] lays them out, under `prefix`.

    An attachment whose value is a dict is an embedded message (attach method 5) built from
    those keyword arguments.
    """
    files: dict[str, bytes] = {}
    fixed: list[tuple[int, bytes]] = []  # (tag, 8-byte value) for __properties_version1.0

    def put_string(base: str, prop: str, text: str, props: list[tuple[int, bytes]]) -> None:
        if not text:
            return
        if ansi:
            raw, ptype = text.encode("cp932") + b"\0", 0x001E
        else:
            raw, ptype = text.encode("utf-16-le") + b"\0\0", 0x001F
        files[f"{base}__substg1.0_{prop}{ptype:04X}"] = raw
        props.append(((int(prop, 16) << 16) | ptype, struct.pack("<II", len(raw), 0)))

    put_string(prefix, "0037", subject, fixed)
    put_string(prefix, "0C1A", sender_name, fixed)
    put_string(prefix, "0C1E", address_type, fixed)
    put_string(prefix, "0C1F", sender_email, fixed)
    put_string(prefix, "5D01", smtp, fixed)
    put_string(prefix, "007D", transport_headers, fixed)
    if submit:
        fixed.append((0x00390040, filetime(submit)))
    if delivery:
        fixed.append((0x0E060040, filetime(delivery)))
    if ansi:
        fixed.append((0x3FDE0003, struct.pack("<II", 932, 0)))
    for index, (name, value) in enumerate(attachments):
        base = f"{prefix}__attach_version1.0_#{index:08X}/"
        props: list[tuple[int, bytes]] = [(0x0E210003, struct.pack("<II", index, 0))]  # PidTagAttachNumber
        if isinstance(value, dict):
            props.append((0x37050003, struct.pack("<II", 5, 0)))
            put_string(base, "3001", name, props)
            files.update(msg_files(base + "__substg1.0_3701000D/", kind="embedded", ansi=ansi, **value))
        else:
            props.append((0x37050003, struct.pack("<II", 1, 0)))
            put_string(base, "3707", name, props)
            short = name.rsplit(".", 1)
            put_string(base, "3704", "ATTACH~1." + short[-1][:3].upper(), props)
            files[base + "__substg1.0_37010102"] = value
            props.append((0x37010102, struct.pack("<II", len(value), 0)))
        files[base + "__properties_version1.0"] = b"\0" * 8 + b"".join(
            struct.pack("<II", tag, 6) + v for tag, v in props
        )
    count = len(attachments)
    head = struct.pack("<8xIIII", 1, count, 1, count) + (b"\0" * 8 if kind == "top" else b"")
    files[prefix + "__properties_version1.0"] = head + b"".join(
        struct.pack("<II", tag, 6) + v for tag, v in fixed
    )
    if kind == "top":
        files["__recip_version1.0_#00000000/__substg1.0_3001001F"] = (
            "地域福祉課".encode("utf-16-le") + b"\0\0"
        )
        files["__recip_version1.0_#00000000/__properties_version1.0"] = b"\0" * 8
        for stream in ("00020102", "00030102", "00040102"):
            files[f"__nameid_version1.0/__substg1.0_{stream}"] = b""
    return files


SUBMIT = datetime(2024, 5, 14, 0, 31, 5, tzinfo=UTC)


def test_cfb_writer_round_trips_through_olefile() -> None:
    import olefile

    files = {"a": b"small", "s/b": b"x" * 5000, "s/t/c": b"y" * 100, "empty": b""}
    ole = olefile.OleFileIO(io.BytesIO(build_cfb(files)))
    for path, data in files.items():
        assert ole.openstream(path).read() == data
    assert sorted("/".join(e) for e in ole.listdir()) == sorted(files)


def test_msg_unicode_with_exchange_sender_and_embedded_item() -> None:
    files = msg_files(
        subject="RE: " + SUBJECT,
        sender_name="髙橋 一郎",
        address_type="EX",
        sender_email="/O=EXCHANGELABS/OU=EXCHANGE ADMINISTRATIVE GROUP/CN=RECIPIENTS/CN=TAKAHASHI",
        smtp="Ichiro.Takahashi@City.Koganei.LG.JP",
        submit=SUBMIT,
        delivery=SUBMIT + timedelta(seconds=3),
        attachments=(
            (FILENAME, XLSX_A),  # > 4096 bytes: in regular sectors
            ("説明資料.pdf", b"%PDF-1.4 small"),  # in the mini stream, not a workbook
            (
                "FW: 評価表",
                {
                    "subject": "評価表",
                    "sender_name": "高齢福祉課",
                    "attachments": (("高齢福祉課_評価表.xlsx", XLSX_B),),
                },
            ),
            ("㈱資料Ⅲ.xlsb", b"tiny"),
        ),
    )
    env = read_msg(build_cfb(files), "返信.msg")
    assert env.kind == "msg"
    assert env.subject == "RE: " + SUBJECT
    assert env.sender == "ichiro.takahashi@city.koganei.lg.jp"
    assert env.sender_name == "髙橋 一郎"
    assert env.received == SUBMIT
    assert env.attachments == [
        Attachment(FILENAME, XLSX_A),
        Attachment("高齢福祉課_評価表.xlsx", XLSX_B),
        Attachment("㈱資料Ⅲ.xlsb", b"tiny"),
    ]
    assert env.issues == []


def test_msg_ansi_cp932_with_transport_headers() -> None:
    headers = (
        "Received: from mail.city.koganei.lg.jp\r\n"
        "From: =?ISO-2022-JP?B?"
        + base64.b64encode(jis_ms("障害福祉課 ①")).decode()
        + "?= <shogai@city.koganei.lg.jp>\r\n"
        "Date: Wed, 15 May 2024 10:00:00 +0900\r\n"
        "Subject: x\r\n\r\n"
    )
    files = msg_files(
        subject="評価表（障害福祉課）ソフト表",
        address_type="EX",
        sender_email="/O=ORG/CN=SHOGAI",
        transport_headers=headers,
        attachments=(("評価表_障害福祉課.xlsx", XLSX_C),),
        ansi=True,
    )
    env = read_msg(build_cfb(files), "a.msg")
    assert env.subject == "評価表（障害福祉課）ソフト表"
    assert env.sender == "shogai@city.koganei.lg.jp"
    assert env.sender_name == "障害福祉課 ①"
    assert env.received == datetime(2024, 5, 15, 10, 0, tzinfo=JST)
    assert env.attachments == [Attachment("評価表_障害福祉課.xlsx", XLSX_C)]


def test_msg_forward_as_attachment_chain() -> None:
    def chain(levels: int) -> dict:
        item: dict = {"subject": "評価表", "attachments": (("評価表.xlsx", XLSX_A),)}
        for _ in range(levels - 1):
            item = {"subject": "FW: 評価表", "attachments": (("FW: 評価表", item),)}
        return item

    ok = read_msg(build_cfb(msg_files(subject="x", submit=SUBMIT, attachments=(("FW", chain(6)),))), "a.msg")
    assert ok.attachments == [Attachment("評価表.xlsx", XLSX_A)]  # deeper than max_depth: fine
    deep = read_msg(
        build_cfb(msg_files(subject="x", submit=SUBMIT, attachments=(("FW", chain(20)),))), "a.msg"
    )
    assert codes(deep) == ["email-unreadable"]


def test_msg_delivery_time_when_no_submit_time() -> None:
    files = msg_files(subject="x", delivery=SUBMIT, attachments=(("a.xlsx", XLSX_A),))
    assert read_msg(build_cfb(files), "a.msg").received == SUBMIT


def test_msg_without_attachment_or_date() -> None:
    files = msg_files(subject="評価表", sender_email="a@b.lg.jp", attachments=(("a.pdf", b"%PDF"),))
    env = read_msg(build_cfb(files), "a.msg")
    assert env.sender == "a@b.lg.jp"
    assert env.received is None
    assert codes(env) == ["email-date-missing", "email-no-attachment"]


def test_msg_with_zip_attachment() -> None:
    z = cp932_zip({"評価表①.xlsx": XLSX_A})
    files = msg_files(subject="x", submit=SUBMIT, attachments=(("回答.zip", z),))
    env = read_msg(build_cfb(files), "a.msg")
    assert env.attachments == [Attachment("回答.zip ＞ 評価表①.xlsx", XLSX_A)]


@pytest.mark.parametrize(
    "data",
    [
        build_cfb({"Workbook": b"\x09\x08" + b"\0" * 5000}),  # an .xls, not an Outlook item
        build_cfb(msg_files(subject="x"))[:1500],  # truncated
        bytes.fromhex("D0CF11E0A1B11AE1") + b"\xff" * 600,
    ],
    ids=["xls", "truncated", "garbage"],
)
def test_msg_unreadable(data: bytes) -> None:
    env = read_msg(data, "bad.msg")
    assert codes(env) == ["email-unreadable"]
    assert env.attachments == []


# ---------------------------------------------------------------------------------------------
# Dispatch and registry
# ---------------------------------------------------------------------------------------------


def test_read_envelope_dispatches_on_content_before_suffix() -> None:
    msg = build_cfb(msg_files(subject="x", submit=SUBMIT, attachments=(("a.xlsx", XLSX_A),)))
    assert read_envelope(msg, "renamed.eml").kind == "msg"
    assert read_envelope(plain_zip({"a.xlsx": XLSX_A}), "a.dat").kind == "zip"
    broken = read_envelope(b"not a zip at all", "回答.zip")
    assert broken.kind == "zip" and codes(broken) == ["zip-unreadable"]
    eml = simple_mail("attachment; filename=a.xlsx")
    env = read_envelope(eml, "mail.txt")
    assert env.kind == "eml" and env.attachments == [Attachment("a.xlsx", XLSX_A)]


def test_codes_registered() -> None:
    expected = {
        "email-no-attachment": (ERROR, "file"),
        "email-unreadable": (ERROR, "file"),
        "email-date-missing": (WARNING, "note"),
        "zip-unsafe": (ERROR, "file"),
        "zip-unreadable": (ERROR, "file"),
        "zip-encrypted": (ERROR, "file"),
        "zip-no-workbook": (ERROR, "file"),
    }
    for code, (severity, level) in expected.items():
        assert (CODES[code].severity, CODES[code].level) == (severity, level)
    assert CODES["email-no-attachment"].template.startswith("メールに Excel ファイルが添付されていません")


def test_envelope_contract_defaults() -> None:
    env = Envelope(kind="zip")
    assert (env.sender, env.sender_name, env.subject, env.received) == ("", "", "", None)
    assert envelope.MAX_DEPTH == 3
    # the reader's defaults are the one Limits' (pipeline.toml's), not a second set of its own
    assert inspect.signature(read_envelope).parameters["limits"].default == Limits()
    assert envelope.WORKBOOK_SUFFIXES == (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods")


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

JAPANESE = st.text(
    alphabet=st.sampled_from(
        list("あいうえおがぱアイウエオガパヴー評価表課福祉地域髙﨑①②⑳ⅠⅢⅩ㈱㈲№・（）「」ABCxyz019-_")
    ),
    min_size=1,
    max_size=40,
)


@given(JAPANESE, st.integers(min_value=0, max_value=200))
@settings(max_examples=200, deadline=None)
def test_iso2022jp_ms_split_anywhere_round_trips(text: str, cut: int) -> None:
    raw = jis_ms(text)
    cut = cut % (len(raw) + 1)
    words = [ew(raw[:cut]), ew(raw[cut:])] if 0 < cut < len(raw) else [ew(raw)]
    assert envelope._decode_header_text("\r\n ".join(words)) == text


@given(JAPANESE, st.lists(st.integers(min_value=1, max_value=300), max_size=4))
@settings(max_examples=200, deadline=None)
def test_rfc2231_utf8_continuations_round_trip(text: str, cuts: list[int]) -> None:
    raw = text.encode()
    points = sorted({c % len(raw) for c in cuts} - {0})
    pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    params = "; ".join(
        f"filename*{i}*=" + ("UTF-8''" if i == 0 else "") + pct(piece) for i, piece in enumerate(pieces)
    )
    assert envelope._param(envelope._split_params("attachment; " + params), "filename") == text


SEEDS = {
    "eml": simple_mail(f'attachment; filename="{ew(jis_ms(FILENAME))}"'),
    "msg": build_cfb(msg_files(subject=SUBJECT, submit=SUBMIT, attachments=((FILENAME, XLSX_A),))),
    "zip": cp932_zip({"評価表.xlsx": XLSX_A, "内.zip": plain_zip({"b.xlsx": XLSX_B})}),
}


@given(
    st.sampled_from(sorted(SEEDS)),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), max_size=8),
    st.integers(min_value=0),
)
@settings(max_examples=300, deadline=None)
def test_damaged_input_never_raises(kind: str, flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(SEEDS[kind])
    for pos, value in flips:
        data[pos % len(data)] = value
    data = data[: max(1, cut % (len(data) + 1))] if cut % 3 == 0 else data
    env = read_envelope(bytes(data), f"damaged.{kind}")
    assert isinstance(env, Envelope)
    assert all(i.code in CODES for i in env.issues)
    assert env.attachments or any(i.is_error for i in env.issues)
