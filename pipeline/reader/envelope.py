"""E-mail intake: find the returned workbooks inside saved messages and ZIP files.

Staff drop into the inbox whatever their mail client gives them: the workbook itself, the whole
message saved as `.eml` (Outlook, Thunderbird, webmail) or `.msg` (Outlook), or a `.zip`.
This module turns such a container's bytes into an `Envelope`: who sent it, when, with which
subject, and every workbook inside it (also inside forwarded messages, embedded Outlook items
and nested ZIPs). It parses bytes only and never touches the disk; `ingest` reads the files.

Japanese mail is messy in ways the stdlib does not cover on its own, so the header and file-name
decoding here is deliberately tolerant:

* ISO-2022-JP as Windows writes it (CP50220/50221, "ISO-2022-JP-MS") puts NEC row 13 (①, Ⅲ, ㈱)
  and the NEC-selected IBM rows (髙, 﨑) after `ESC $ B`. No Python codec decodes that, so when the
  strict codec fails we convert JIS to Shift_JIS arithmetically and decode with cp932.
* Encoded-words appear where RFC 2047 forbids them (inside quoted file names, glued to text),
  split in the middle of a character across folded lines, or not at all (raw UTF-8 or cp932
  bytes in headers). Adjacent encoded-words are joined as bytes before decoding.
* RFC 2231 parameters (`filename*=ISO-2022-JP''…`, `filename*0*=UTF-8''…`) are decoded with
  the same fallbacks.
* ZIP member names are cp932 without the UTF-8 flag when made by Japanese Windows.

Outlook `.msg` files are read with olefile (BSD); extract-msg is GPL and is not used.
Problems become `Issue`s (codes in the "e-mail intake" section of `pipeline.report.CODES`);
attachments that are not workbooks are skipped silently.

One module, though long: .eml, .msg and .zip share one walk (a container inside a container), one
`_Context` of limits and inflate budget, and one set of Japanese name and header decoders.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.policy
import io
import re
import struct
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.message import Message
from email.utils import parsedate_to_datetime

import olefile

from pipeline.limits import Limits
from pipeline.marks import PART_SEP
from pipeline.reader.scan_zip import escapes_archive
from pipeline.report import Issue, make_issue

__all__ = [
    "ENVELOPE_SUFFIXES",
    "MAX_DEPTH",
    "WORKBOOK_SUFFIXES",
    "Attachment",
    "Envelope",
    "read_eml",
    "read_envelope",
    "read_msg",
    "read_zip",
]

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods")
# Containers we open, in the inbox and inside another container (attached mail, nested ZIP).
ENVELOPE_SUFFIXES = (".eml", ".msg", ".zip")

_JST = timezone(timedelta(hours=9), "JST")
_UTC = UTC
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")

# Content types that identify a workbook even when a client sends no file name.
_WORKBOOK_TYPES = {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.ms-excel.sheet.macroenabled.12": ".xlsm",
    "application/vnd.ms-excel.sheet.binary.macroenabled.12": ".xlsb",
    "application/vnd.ms-excel": ".xls",
    "application/zip": ".zip",
    "application/x-zip-compressed": ".zip",
}


@dataclass(frozen=True)
class Attachment:
    """One workbook found in a container.

    `name` is the file name as the sender wrote it, decoded ("令和6年度_評価表_自立生活支援課.xlsx").
    Members of a ZIP keep their folder path inside the ZIP ("回答/評価表.xlsx"); when the ZIP itself
    was attached to a mail or nested in another ZIP, its name comes first, joined by PART_SEP (" ＞ ")
    ("回答.zip ＞ 評価表.xlsx"). The last part always ends with the workbook's own suffix.
    """

    name: str
    data: bytes


MAX_DEPTH = 3  # containers inside containers: zip in mail in zip ...

@dataclass
class Envelope:
    """What one dropped container gave: its sender, subject, time, workbooks and problems."""

    kind: str  # "eml" | "msg" | "zip"
    sender: str = ""  # bare address, lower-case; "" for zip
    sender_name: str = ""  # display name, decoded
    subject: str = ""  # decoded
    received: datetime | None = None  # from the Date header (aware); None for zip / missing
    attachments: list[Attachment] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    # Names of what it held but could not be read (attachments that are not workbooks, encrypted
    # members): they may still tell whose return it is.
    unread: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------------


def read_envelope(data: bytes, name: str, limits: Limits = Limits()) -> Envelope:
    """Dispatch on content first (OLE2 → .msg, PK → .zip), then on the name suffix.

    Magic bytes win over the suffix because people rename files ("返信.eml" that Outlook
    actually saved as .msg). Without magic, a ".zip" goes to the ZIP reader (it copes with
    prepended data, and a broken one is reported as a ZIP problem); anything else is read as
    a MIME message, since some clients save MIME text under other suffixes.
    """
    kind = _sniff(data)
    if kind == "msg":
        return read_msg(data, name, limits)
    if kind == "zip" or _suffix(name) == ".zip":
        return read_zip(data, name, limits)
    return read_eml(data, name, limits)


def read_eml(data: bytes, name: str, limits: Limits = Limits()) -> Envelope:
    """Read an RFC 5322 message (.eml), walking the whole MIME tree for workbooks."""
    env = Envelope(kind="eml")
    ctx = _Context(name, limits, env)
    try:
        msg = _parse_eml(data)
    except _Unreadable as exc:
        return _unreadable(env, name, str(exc))
    headers = _raw_headers(msg)
    env.subject = _decode_header_text(headers.get("subject", ""))
    env.sender_name, env.sender = _parse_from(headers.get("from", ""))
    env.received = _eml_date(headers.get("date"), ctx)
    try:
        _collect_eml_parts(msg, ctx, depth=0, prefix="")
    except Exception as exc:  # a last resort: a damaged message must become an issue, not a crash
        return _unreadable(env, name, _describe(exc))
    ctx.finish("email-no-attachment")
    return env


def read_msg(data: bytes, name: str, limits: Limits = Limits()) -> Envelope:
    """Read an Outlook item (.msg, an OLE2 compound file) with olefile."""
    env = Envelope(kind="msg")
    ctx = _Context(name, limits, env)
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            msg = _MsgReader(ole, ctx)
            if not msg.looks_like_message():
                raise _Unreadable("Outlook のメッセージ(.msg)ではありません")
            env.subject = msg.string("", "0037")
            env.sender_name, env.sender, env.received = msg.envelope_fields()
            if env.received is None:
                ctx.issue("email-date-missing", detail="送信日時・受信日時の情報がありません")
            msg.collect("", depth=0, prefix="")
            # olefile reads damaged (e.g. truncated) files leniently and records the defects.
            # Use what could be read; only when nothing was found is the damage the explanation.
            if ole.parsing_issues and not env.attachments:
                raise _Unreadable(f"ファイルが壊れています: {ole.parsing_issues[0][1]}")
    except _Unreadable as exc:
        return _unreadable(env, name, str(exc))
    except Exception as exc:  # olefile raises many types on damaged files
        return _unreadable(env, name, _describe(exc))
    ctx.finish("email-no-attachment")
    return env


def _unreadable(env: Envelope, name: str, detail: str) -> Envelope:
    """The container could not be read: that single issue replaces whatever was gathered."""
    env.attachments = []
    env.issues = [make_issue("email-unreadable", file=name, value=name, detail=_safe(detail))]
    return env


def read_zip(data: bytes, name: str, limits: Limits = Limits()) -> Envelope:
    """Read a ZIP dropped directly: every workbook member (also in nested ZIPs) is an attachment."""
    env = Envelope(kind="zip")
    ctx = _Context(name, limits, env)
    if _is_workbook_package(data):  # an .xlsx saved or renamed as .zip: the workbook it is
        env.attachments.append(Attachment(f"{_basename(name).rsplit('.', 1)[0]}.xlsx", data))
        return env
    try:
        _collect_zip(data, name, ctx, depth=0, prefix="")
    except Exception as exc:  # a last resort: a damaged ZIP must become an issue, not a crash
        env.attachments = []
        env.issues = [make_issue("zip-unreadable", file=name, value=name, detail=_describe(exc))]
        return env
    ctx.finish("zip-no-workbook")
    return env


def _is_workbook_package(data: bytes) -> bool:
    """A zip whose own top-level members are an OOXML workbook ([Content_Types].xml and
    xl/workbook.xml), not a zip of files."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = {n.lstrip("/").lower() for n in archive.namelist()}
    except Exception:  # _collect_zip reports what is wrong with it
        return False
    return "[content_types].xml" in names and ("xl/workbook.xml" in names or "xl/workbook.bin" in names)


# ---------------------------------------------------------------------------------------------
# Shared collection state
# ---------------------------------------------------------------------------------------------


class _Unreadable(Exception):
    """The container cannot be parsed; the message (Japanese) goes into the issue's detail."""


class _ZipUnsafe(Exception):
    """A ZIP broke a limit; the whole ZIP is dropped."""


class _Context:
    """State for one top-level input: limits, the inflate budget and what was skipped."""

    def __init__(self, name: str, limits: Limits, env: Envelope, in_zip: bool = False) -> None:
        self.name = name
        self.limits = limits
        self.env = env
        self.in_zip = in_zip  # collecting a ZIP's members: unsafety propagates to the outer ZIP
        self.budget = limits.max_total_bytes
        self.skipped: list[str] = []  # non-workbook attachments, named in "no attachment" issues
        self.locked: list[str] = []  # encrypted members

    def issue(self, code: str, value: str = "", detail: str = "") -> None:
        self.env.issues.append(make_issue(code, file=self.name, value=_safe(value), detail=_safe(detail)))

    def found(self, name: str, data: bytes, depth: int) -> None:
        """Route one attachment: a workbook is kept, a container is opened, the rest skipped."""
        base = _basename(name)
        suffix = _suffix(base)
        if _is_junk(base):
            return
        if suffix in WORKBOOK_SUFFIXES:
            self.env.attachments.append(Attachment(_safe(name), data))
            return
        if suffix not in ENVELOPE_SUFFIXES:
            self.skipped.append(base)
            return
        kind = _sniff(data)
        if suffix == ".zip" and kind == "eml":
            kind = "zip"  # not a ZIP inside: let the ZIP reader say it is damaged
        if kind == "zip":
            _collect_zip(data, name, self, depth=depth + 1, prefix=name + PART_SEP)
        elif kind in ("eml", "msg"):
            self._nested_message(data, name, kind, depth + 1)

    def _nested_message(self, data: bytes, name: str, kind: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            if self.in_zip:
                raise _ZipUnsafe("メールや ZIP の入れ子が深すぎます")
            self.issue("zip-unsafe", value=name, detail="メールや ZIP の入れ子が深すぎます")
            return
        inner = Envelope(kind=kind)
        sub = _Context(self.name, self.limits, inner)
        sub.budget = self.budget
        try:
            if kind == "eml":
                _collect_eml_parts(_parse_eml(data), sub, depth=depth, prefix=name + PART_SEP)
            else:
                with olefile.OleFileIO(io.BytesIO(data)) as ole:
                    reader = _MsgReader(ole, sub)
                    if not reader.looks_like_message():
                        raise _Unreadable("Outlook のメッセージ(.msg)ではありません")
                    reader.collect("", depth=depth, prefix=name + PART_SEP)
        except _Unreadable as exc:
            self.issue("email-unreadable", value=name, detail=str(exc))
        except Exception as exc:  # a damaged nested item must not stop the rest
            self.issue("email-unreadable", value=name, detail=_describe(exc))
        self.budget = sub.budget
        self.env.attachments.extend(inner.attachments)
        self.env.issues.extend(inner.issues)
        self.skipped.extend(sub.skipped)
        self.locked.extend(sub.locked)

    def finish(self, empty_code: str) -> None:
        """Say so when nothing usable was found (unless a worse problem already explains it)."""
        self.env.unread = list(dict.fromkeys([*self.skipped, *self.locked]))
        if self.env.attachments or any(i.is_error for i in self.env.issues):
            return
        detail = ""
        if self.skipped:
            names = list(dict.fromkeys(self.skipped))
            shown = "、".join(names[:5]) + (f" ほか {len(names) - 5} 件" if len(names) > 5 else "")
            detail = f"(入っていたのは {shown} です)"
        self.issue(empty_code, value=self.name, detail=detail)


def _sniff(data: bytes) -> str:
    if data.startswith(_OLE_MAGIC):
        return "msg"
    if data.startswith(_ZIP_MAGICS):
        return "zip"
    return "eml"


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower().strip() if dot > 0 else ""


def _basename(name: str) -> str:
    return re.split(r"[/\\]|" + re.escape(PART_SEP), name)[-1]


def _is_junk(base: str) -> bool:
    # "~$評価表.xlsx" is Excel's lock file and "._評価表.xlsx" macOS resource forks: both look
    # like workbooks by name but are not, and appear when a folder is zipped while open.
    return base.startswith(("~$", "._")) or base in ("", ".DS_Store", "Thumbs.db")


def _safe(text: str) -> str:
    """Text fit for reports and JSON: surrogate escapes (raw bytes) become UTF-8 or U+FFFD."""
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ---------------------------------------------------------------------------------------------
# Text decoding
# ---------------------------------------------------------------------------------------------

_CP932_NAMES = {
    "shift_jis", "shift-jis", "sjis", "x-sjis", "s-jis", "shiftjis", "ms_kanji", "csshiftjis",
    "windows-31j", "cp932", "ms932", "x-ms-cp932", "ibm-943",
}  # fmt: skip
_EUC_NAMES = {"euc-jp", "euc_jp", "eucjp", "x-euc-jp", "cseucpkdfmtjapanese", "ujis"}
_UTF8_NAMES = {"utf-8", "utf8", "x-utf-8"}


def _codec_family(charset: str) -> str:
    """Normalise a MIME charset label: 'jis', 'cp932', 'euc', 'utf-8', a Python codec, or ''."""
    cs = charset.strip().strip('"').lower().split("*", 1)[0]  # RFC 2231 "charset*lang"
    if cs.startswith("iso-2022-jp") or cs in ("iso2022jp", "csiso2022jp", "jis", "cp50220",
                                              "cp50221", "cp50222"):  # fmt: skip
        return "jis"
    if cs in _CP932_NAMES:
        return "cp932"
    if cs in _EUC_NAMES:
        return "euc"
    if cs in _UTF8_NAMES:
        return "utf-8"
    try:
        return codecs.lookup(cs).name if cs else ""
    except LookupError:
        return ""


def _decode_bytes(raw: bytes, charset: str = "") -> str:
    """Decode bytes in the declared charset, falling back the way Japanese mail needs.

    A declared Japanese charset is treated as its Windows superset (Shift_JIS → cp932,
    ISO-2022-JP → ISO-2022-JP-MS), since that is what Windows clients actually emit. An
    unknown or wrong label falls back to guessing.
    """
    family = _codec_family(charset)
    if family == "jis" or b"\x1b$" in raw or b"\x1b(" in raw:
        return _decode_iso2022jp(raw)
    for codec in _candidates(family):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return _guess(raw)


def _candidates(family: str) -> list[str]:
    if family == "cp932":
        return ["cp932"]
    if family == "euc":
        return ["euc_jp", "euc_jis_2004"]
    if family in ("", "ascii", "us-ascii"):
        return []  # undeclared (or "ascii" while holding 8-bit bytes): guess below
    return [family]


def _guess(raw: bytes) -> str:
    """Decode undeclared bytes: ASCII, UTF-8, then whichever of cp932 / EUC-JP reads as Japanese."""
    if b"\x1b$" in raw or b"\x1b(" in raw:
        return _decode_iso2022jp(raw)
    try:
        return raw.decode("utf-8")  # also plain ASCII; cp932 text is almost never valid UTF-8
    except UnicodeDecodeError:
        pass
    options = []
    for codec in ("cp932", "euc_jp"):
        try:
            options.append(raw.decode(codec))
        except UnicodeDecodeError:
            continue
    if options:
        return max(options, key=_japanese_score)  # max() keeps cp932 on a tie
    return raw.decode("cp932", errors="replace")


def _japanese_score(text: str) -> int:
    # EUC-JP read as cp932 turns into half-width katakana (lead bytes 0xA1-0xDF), and cp932 read
    # as EUC-JP into rare kanji or nothing; ordinary text is kana, common kanji and ASCII.
    score = 0
    for ch in text:
        code = ord(ch)
        if code < 0x80 or 0x3040 <= code <= 0x30FF or 0x4E00 <= code <= 0x9FFF:
            score += 2
        elif 0xFF61 <= code <= 0xFF9F or 0xE000 <= code <= 0xF8FF:
            score -= 2
    return score


_ESC_MODES = {
    b"\x1b(B": "ascii",
    b"\x1b(J": "ascii",  # JIS X 0201 Roman: close enough for names (¥ and ‾ read as \ and ~)
    b"\x1b(H": "ascii",
    b"\x1b(I": "kana",  # JIS X 0201 katakana (CP50222)
    b"\x1b$@": "kanji",
    b"\x1b$B": "kanji",
    b"\x1b$(B": "kanji",
    b"\x1b$(Q": "kanji",  # JIS X 0213 plane 1 is a superset of JIS X 0208 in the same rows
    b"\x1b&@\x1b$B": "kanji",  # JIS X 0208-1990 announcer
}


def _decode_iso2022jp(raw: bytes) -> str:
    """Decode ISO-2022-JP strictly, or as ISO-2022-JP-MS (CP50221) when that fails.

    The fallback converts each JIS pair to Shift_JIS arithmetically and decodes it as cp932,
    which gives NEC row 13 (①Ⅲ㈱), the NEC-selected IBM rows 89-92 (髙) and user-defined rows.
    """
    try:
        return raw.decode("iso2022_jp")
    except UnicodeDecodeError:
        pass
    out: list[str] = []
    mode = "ascii"
    i, n = 0, len(raw)
    while i < n:
        b = raw[i]
        if b == 0x1B:
            for seq, new_mode in _ESC_MODES.items():
                if raw.startswith(seq, i):
                    mode = new_mode
                    i += len(seq)
                    break
            else:
                out.append("\ufffd")  # unknown escape (e.g. JIS X 0212): skip the ESC only
                i += 1
            continue
        if b == 0x0E:  # SO: half-width katakana until SI (CP50222)
            mode, i = "kana", i + 1
            continue
        if b == 0x0F:
            mode, i = "ascii", i + 1
            continue
        if b < 0x21 or b >= 0x7F or mode == "ascii":
            # Controls and 8-bit bytes never belong to a JIS pair; keep them as they are.
            out.append(chr(b) if b < 0x80 else bytes([b]).decode("cp932", errors="replace"))
            i += 1
            continue
        if mode == "kana":
            out.append(bytes([b + 0x80]).decode("cp932", errors="replace"))
            i += 1
            continue
        if i + 1 >= n or not 0x21 <= raw[i + 1] <= 0x7E:
            out.append("\ufffd")
            i += 1
            continue
        out.append(_jis_pair_to_text(b, raw[i + 1]))
        i += 2
    return "".join(out)


def _jis_pair_to_text(j1: int, j2: int) -> str:
    s1 = (j1 + 1) // 2 + (0x70 if j1 <= 0x5E else 0xB0)
    # Odd rows take the low half of the Shift_JIS trail range (skipping 0x7F), even rows the high.
    s2 = j2 + 0x1F + (j2 >= 0x60) if j1 % 2 else j2 + 0x7E
    return bytes([s1, s2]).decode("cp932", errors="replace")


def _recover_bytes(text: str) -> bytes:
    """Undo the parser's decoding of raw 8-bit header bytes (surrogate escapes) to get the bytes back."""
    return text.encode("utf-8", errors="surrogateescape")


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=")


def _decode_ew_payload(enc: str, payload: str) -> bytes | None:
    if enc in "Bb":
        payload = re.sub(r"[^A-Za-z0-9+/]", "", payload)  # drop padding and stray characters
        payload += "=" * (-len(payload) % 4)
        try:
            return base64.b64decode(payload)
        except (binascii.Error, ValueError):
            return None
    raw = _recover_bytes(payload.replace("_", " "))
    return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)


def _decode_header_text(value: str) -> str:
    """Decode a header's text, tolerating every encoded-word habit seen in Japanese mail.

    Encoded-words are decoded wherever they appear (also inside quotes or glued to text).
    Consecutive encoded-words in the same charset are joined as bytes before decoding, because
    clients split them in the middle of a character or of an ISO-2022-JP escape run. Text
    outside encoded-words may be raw UTF-8, cp932 or JIS bytes and is guessed.
    """
    value = _unfold(value)
    pieces: list[tuple[str, str | bytes]] = []  # ("text", raw str) or (charset, bytes)
    pos = 0
    for m in _ENCODED_WORD.finditer(value):
        decoded = _decode_ew_payload(m.group(2), m.group(3))
        if decoded is None:
            continue  # leave a malformed encoded-word as literal text
        gap = value[pos : m.start()]
        charset = m.group(1).lower().split("*", 1)[0]
        prev = pieces[-1] if pieces else None
        if prev and prev[0] != "text" and not gap.strip():
            # RFC 2047 §6.2: white space between adjacent encoded-words is not displayed.
            if prev[0] == charset:
                pieces[-1] = (charset, prev[1] + decoded)  # type: ignore[operator]
            else:
                pieces.append((charset, decoded))
        else:
            if gap:
                pieces.append(("text", gap))
            pieces.append((charset, decoded))
        pos = m.end()
    if value[pos:]:
        pieces.append(("text", value[pos:]))
    out = []
    for kind, chunk in pieces:
        if kind == "text":
            assert isinstance(chunk, str)
            out.append(_decode_bytes(_recover_bytes(chunk)) if _has_8bit(chunk) else chunk)
        else:
            assert isinstance(chunk, bytes)
            out.append(_decode_bytes(chunk, kind))
    return _clean("".join(out))


def _has_8bit(text: str) -> bool:
    return any(ord(c) > 0x7E or c == "\x1b" for c in text)


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", "").replace("\n", "")


def _clean(text: str) -> str:
    # Names and subjects are single-line: drop control characters that survive decoding, and
    # compose macOS NFD kana (ハ + ゛) without touching compatibility characters like ①.
    text = "".join(c for c in _safe(text) if c >= " " and c != "\x7f")
    if "\u3099" in text or "\u309a" in text:
        text = unicodedata.normalize("NFC", text)
    return text.strip()


# ---------------------------------------------------------------------------------------------
# Header fields: parameters, addresses, dates
# ---------------------------------------------------------------------------------------------


def _split_params(value: str) -> list[tuple[str, str]]:
    """Split 'type; a=1; b="x; y"' into (name, value) pairs, names lower-case, quotes removed.

    Quoted strings are scanned twice when they hold 8-bit bytes: cp932 uses the backslash as
    the second byte of characters such as 表 and ソ, and clients that send raw cp932 do not
    escape it, so a standard unescape would corrupt the name.
    """
    params: list[tuple[str, str]] = []
    value = _unfold(value)
    i, n = 0, len(value)
    first = True
    while i < n:
        # name
        j = i
        while j < n and value[j] not in ";=":
            j += 1
        key = value[i:j].strip().lower()
        if j >= n or value[j] == ";":
            if not first and key:
                params.append((key, ""))
            first = False
            i = j + 1
            continue
        first = False
        j += 1
        while j < n and value[j] in " \t":
            j += 1
        if j < n and value[j] == '"':
            text, j = _scan_quoted(value, j + 1)
            params.append((key, text))
            while j < n and value[j] != ";":
                j += 1
        else:
            k = j
            while k < n and value[k] != ";":
                k += 1
            params.append((key, value[j:k].strip()))
            j = k
        i = j + 1
    return params


def _scan_quoted(value: str, i: int) -> tuple[str, int]:
    """Read a quoted string from just after its opening quote; return (content, index after).

    Raw cp932 bytes arrive as surrogate escapes ("\\udc95"). Scanned once by the RFC rules and
    once treating the byte after a cp932 lead byte as part of the character; the second reading
    wins when it is valid cp932 and the first is not valid UTF-8.
    """
    plain, end = _scan_quoted_as(value, i, cp932=False)
    if not any("\udc80" <= c <= "\udcff" for c in value[i:]):
        return plain, end
    raw, raw_end = _scan_quoted_as(value, i, cp932=True)
    if raw != plain:
        try:
            _recover_bytes(plain).decode("utf-8")
        except UnicodeDecodeError:
            try:
                _recover_bytes(raw).decode("cp932")
                return raw, raw_end
            except UnicodeDecodeError:
                pass
    return plain, end


def _scan_quoted_as(value: str, i: int, cp932: bool) -> tuple[str, int]:
    out = []
    n = len(value)
    while i < n:
        c = value[i]
        if cp932 and ("\udc81" <= c <= "\udc9f" or "\udce0" <= c <= "\udcfc") and i + 1 < n:
            out.append(value[i : i + 2])  # lead byte + trail byte (which may be "\\")
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        if c == "\\" and i + 1 < n:
            out.append(value[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out), i


def _param(params: list[tuple[str, str]], name: str) -> str | None:
    """A parameter's decoded value: RFC 2231 (with continuations) first, then the plain form."""
    pieces: dict[int, tuple[str, bool]] = {}
    extended: str | None = None
    plain: str | None = None
    for key, value in params:
        if key == name:
            plain = value if plain is None else plain
        elif key == name + "*":
            extended = value
        else:
            m = re.fullmatch(re.escape(name) + r"\*(\d+)(\*?)", key)
            if m:
                pieces.setdefault(int(m.group(1)), (value, bool(m.group(2))))
    if extended is not None:
        pieces = {0: (extended, True)}
    if pieces:
        return _rfc2231(pieces)
    if plain is not None:
        return _decode_header_text(plain)
    return None


def _rfc2231(pieces: dict[int, tuple[str, bool]]) -> str:
    """Join RFC 2231 continuations as bytes, then decode once (splits fall inside characters)."""
    charset = ""
    data = b""
    encoded_any = False
    for index in sorted(pieces):
        value, encoded = pieces[index]
        if encoded:
            if index == min(pieces) and value.count("'") >= 2:
                charset, _lang, value = value.split("'", 2)
            encoded_any = True
            data += _percent_decode(value)
        else:
            data += _recover_bytes(value)
    if not encoded_any:
        # "filename*0=" / "filename*1=" without '*': plain text, possibly an encoded-word
        # split across the pieces (seen from some Japanese clients).
        return _decode_header_text(data.decode("ascii", errors="surrogateescape"))
    text = _decode_bytes(data, charset)
    if "=?" in text:
        text = _decode_header_text(text)  # an encoded-word inside RFC 2231 (non-standard)
    return _clean(text)


def _percent_decode(value: str) -> bytes:
    raw = _recover_bytes(value)
    return re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)


def _parse_from(value: str) -> tuple[str, str]:
    """Return (display name, bare lower-case address) of the first mailbox in a From header.

    Parsed by hand rather than with email.utils so that raw cp932 names and encoded-words inside
    quotes survive (see _scan_quoted); only the first address matters here.
    """
    value = _unfold(value).strip()
    if not value:
        return "", ""
    m = re.search(r"<\s*([^<>\s]*@[^<>\s]*)\s*>", value)
    if m:
        address = m.group(1)
        name = value[: m.start()].strip()
        if name.startswith('"'):
            name, _ = _scan_quoted(name, 1)
    else:
        comment = re.search(r"\(([^()]*)\)", value)
        bare = re.search(r"[^\s<>()\",;]+@[^\s<>()\",;]+", value)
        address = bare.group(0) if bare else ""
        name = comment.group(1) if comment else ""
    address = _safe(address).strip().strip("'\"").lower()
    if address.startswith("mailto:"):
        address = address[len("mailto:") :]
    return _decode_header_text(name).strip('"').strip(), address


def _parse_date(value: str | None) -> datetime | None:
    if not value or not value.strip():
        return None
    text = _unfold(value).strip()
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        # "-0000" means UTC with no local offset known (RFC 5322 §3.3); a Date with no zone at
        # all comes from a local client, and here that is Japan.
        return when.replace(tzinfo=_UTC if re.search(r"-0000\b", text) else _JST)
    return when


def _eml_date(value: str | None, ctx: _Context) -> datetime | None:
    when = _parse_date(value)
    if when is None:
        if value is None or not value.strip():
            ctx.issue("email-date-missing", value="", detail="Date ヘッダーがありません")
        else:
            ctx.issue("email-date-unparsed", value=_decode_header_text(value).strip())
    return when


# ---------------------------------------------------------------------------------------------
# .eml
# ---------------------------------------------------------------------------------------------

_KNOWN_HEADERS = {
    "from", "to", "cc", "subject", "date", "message-id", "mime-version", "content-type",
    "received", "return-path", "sender", "reply-to", "x-mailer", "user-agent", "delivered-to",
}  # fmt: skip


def _parse_eml(data: bytes) -> Message:
    # Some mail stores and copies pad a saved message with NUL bytes at the end: not part of it.
    data = data.rstrip(b"\x00")
    if not data.strip():
        raise _Unreadable("ファイルが空です")
    if b"\x00" in data[:4096]:
        raise _Unreadable("メールのテキスト形式ではありません")
    try:
        msg = email.message_from_bytes(data, policy=email.policy.default)
    except Exception as exc:  # the parser is lenient; anything raised is fatal
        raise _Unreadable(_describe(exc)) from exc
    if not {k.lower() for k in msg} & _KNOWN_HEADERS:
        raise _Unreadable("メールのヘッダー(From・Subject など)が見つかりません")
    return msg


def _raw_headers(msg: Message) -> dict[str, str]:
    """First occurrence of each header, as it was in the file (not the policy's decoding).

    policy.default decodes headers itself and gives up on ISO-2022-JP-MS and raw 8-bit bytes,
    so we read the raw values and decode them with _decode_header_text.
    """
    out: dict[str, str] = {}
    for key, value in msg.raw_items():
        out.setdefault(key.lower(), str(value))
    return out


def _collect_eml_parts(msg: Message, ctx: _Context, depth: int, prefix: str) -> None:
    # walk() also descends into message/rfc822 parts (forwarded mail), which
    # iter_attachments() does not.
    count = 0
    for part in msg.walk():
        if part.is_multipart():
            continue
        count += 1
        try:
            name, data = _eml_part(part, count)
        except Exception as exc:  # one broken part must not hide the others
            ctx.issue("email-unreadable", value=ctx.name, detail=f"添付 {count}: {_describe(exc)}")
            continue
        if name is None or data is None:
            continue
        ctx.found(prefix + name, data, depth)


def _eml_part(part: Message, index: int) -> tuple[str | None, bytes | None]:
    headers = _raw_headers(part)
    disposition = _split_params(headers.get("content-disposition", ""))
    ctype = _split_params(headers.get("content-type", ""))
    name = _param(disposition, "filename") or _param(ctype, "name")
    content_type = part.get_content_type()
    if not name:
        suffix = _WORKBOOK_TYPES.get(content_type)
        if suffix is None:
            return None, None  # a body part, or an unnamed non-workbook
        name = f"添付ファイル{index}{suffix}"
    name = _basename(_clean(name)) or f"添付ファイル{index}"
    if _suffix(name) not in WORKBOOK_SUFFIXES + ENVELOPE_SUFFIXES:
        return name, b""  # only its name is needed (to say what was attached)
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return None, None
    return name, payload


# ---------------------------------------------------------------------------------------------
# .zip
# ---------------------------------------------------------------------------------------------


def _collect_zip(data: bytes, name: str, ctx: _Context, depth: int, prefix: str) -> None:
    """Add a ZIP's workbooks to ctx. Any safety problem drops the whole ZIP, and a ZIP that
    holds an unsafe ZIP is itself unsafe: its problem is raised to the outermost ZIP."""
    found = Envelope(kind="zip")
    sub = _Context(ctx.name, ctx.limits, found, in_zip=True)
    sub.budget = ctx.budget
    try:
        _zip_members(data, name, sub, depth, prefix)
    except _ZipUnsafe as exc:
        ctx.budget = sub.budget
        if ctx.in_zip:
            raise
        ctx.issue("zip-unsafe", value=name, detail=str(exc))
        return
    ctx.budget = sub.budget
    ctx.env.attachments.extend(found.attachments)
    ctx.env.issues.extend(found.issues)
    ctx.skipped.extend(sub.skipped)
    ctx.locked.extend(sub.locked)


def _zip_members(data: bytes, label: str, ctx: _Context, depth: int, prefix: str) -> None:
    if depth > MAX_DEPTH:
        raise _ZipUnsafe("ZIP やメールの入れ子が深すぎます")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:  # BadZipFile, but also NotImplementedError for odd version fields
        ctx.issue("zip-unreadable", value=label, detail=f"ZIP 形式として読めません: {_describe(exc)}")
        return
    with archive:
        infos = archive.infolist()
        if len(infos) > ctx.limits.max_members:
            raise _ZipUnsafe(f"ファイルが {len(infos):,} 個入っています(上限 {ctx.limits.max_members:,} 個)")
        members = [(info, _zip_member_name(info)) for info in infos]
        for _, member in members:
            if escapes_archive(member):
                raise _ZipUnsafe(f"危険なファイル名「{member}」が入っています")
        encrypted: list[str] = []
        for info, member in members:
            if info.is_dir() or member.endswith("/"):
                continue
            base = _basename(member)
            if member.startswith("__MACOSX/") or _is_junk(base):
                continue
            if _suffix(base) not in WORKBOOK_SUFFIXES + ENVELOPE_SUFFIXES:
                ctx.skipped.append(base)
                continue
            if info.flag_bits & 0x1:
                encrypted.append(member)
                continue
            try:
                content = _inflate(archive, info, member, ctx)
            except _ZipUnsafe:
                raise
            except Exception as exc:  # CRC errors, unsupported methods (Deflate64), zlib errors
                ctx.issue("zip-unreadable", value=f"{label}{PART_SEP}{member}", detail=_describe(exc))
                continue
            ctx.found(prefix + member, content, depth)
    if encrypted:
        ctx.locked.extend(_basename(m) for m in encrypted)
        ctx.issue("zip-encrypted", value=label, detail="、".join(encrypted))


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, member: str, ctx: _Context) -> bytes:
    """Read one member, counting the bytes actually produced: declared sizes can lie."""
    limit = ctx.limits.max_file_bytes
    chunks = []
    size = 0
    with archive.open(info) as stream:
        while True:
            chunk = stream.read(1 << 16)
            if not chunk:
                break
            size += len(chunk)
            ctx.budget -= len(chunk)
            if size > limit:
                raise _ZipUnsafe(f"「{member}」を展開すると {limit // 2**20:,} MB を超えます(ZIP 爆弾の疑い)")
            if ctx.budget < 0:
                raise _ZipUnsafe(
                    f"展開後の合計が {ctx.limits.max_total_bytes // 2**20:,} MB を超えます(ZIP 爆弾の疑い)"
                )
            chunks.append(chunk)
    return b"".join(chunks)


def _zip_member_name(info: zipfile.ZipInfo) -> str:
    """Decode a member name: UTF-8 when flagged, else guessed (cp932 from Japanese Windows).

    zipfile decodes unflagged names as cp437, which maps all 256 bytes, so encoding back to
    cp437 recovers the bytes. orig_filename is used because zipfile rewrites backslashes on
    Windows, and 0x5C is the second byte of 表 and ソ in cp932.
    """
    name = info.orig_filename
    if not info.flag_bits & 0x800:
        try:
            raw = name.encode("cp437")
        except UnicodeEncodeError:
            pass
        else:
            # macOS Archive Utility writes UTF-8 without the flag; _guess tries UTF-8 first.
            name = _guess(raw)
    if "\u3099" in name or "\u309a" in name:
        name = unicodedata.normalize("NFC", name)
    return name.replace("\\", "/")


# ---------------------------------------------------------------------------------------------
# .msg (Outlook, [MS-OXMSG])
# ---------------------------------------------------------------------------------------------

PT_UNICODE = "001F"
PT_STRING8 = "001E"
PT_BINARY = "0102"
PT_OBJECT = "000D"
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=_UTC)

PR_CLIENT_SUBMIT_TIME = 0x00390040
PR_MESSAGE_DELIVERY_TIME = 0x0E060040
PR_ATTACH_METHOD = 0x37050003
PR_INTERNET_CPID = 0x3FDE0003
PR_MESSAGE_CODEPAGE = 0x3FFD0003
ATTACH_EMBEDDED_MSG = 5
_MAX_EMBEDDED_LEVELS = 16


class _MsgReader:
    """Reads one Outlook item (and, recursively, its embedded items) from an olefile handle."""

    def __init__(self, ole: olefile.OleFileIO, ctx: _Context) -> None:
        self.ole = ole
        self.ctx = ctx
        self.entries = list(ole.listdir(streams=True, storages=True))

    def looks_like_message(self) -> bool:
        names = {e[0].lower() for e in self.entries}
        return "__properties_version1.0" in names or any(n.startswith("__substg1.0_") for n in names)

    # -- properties ---------------------------------------------------------------------------

    def _stream(self, path: str) -> bytes | None:
        if self.ole.exists(path) and self.ole.get_type(path) == olefile.STGTY_STREAM:
            return self.ole.openstream(path).read()
        return None

    def properties(self, prefix: str, header: int) -> dict[int, bytes]:
        """Fixed-size property values from a __properties_version1.0 stream: tag → 8 bytes.

        The header is 32 bytes for the top-level message, 24 for an embedded message and 8
        for attachments and recipients ([MS-OXMSG] 2.4).
        """
        raw = self._stream(prefix + "__properties_version1.0") or b""
        out = {}
        for pos in range(header, len(raw) - 15, 16):
            tag = struct.unpack_from("<I", raw, pos)[0]
            out[tag] = raw[pos + 8 : pos + 16]
        return out

    def codepage(self, prefix: str, header: int) -> str:
        props = self.properties(prefix, header)
        for tag in (PR_INTERNET_CPID, PR_MESSAGE_CODEPAGE):
            if tag in props:
                cp = struct.unpack("<I", props[tag][:4])[0]
                if cp == 65001:
                    return "utf-8"
                if cp in (50220, 50221, 50222):
                    return "iso-2022-jp"
                if cp:
                    return f"cp{cp}"
        return "cp932"  # ANSI .msg files written by Japanese Outlook

    def string(self, prefix: str, prop: str, header: int = 32, *, clean: bool = True) -> str:
        """A string property: Unicode (…001F, UTF-16LE) or ANSI (…001E, in the item's code page)."""
        text = None
        raw = self._stream(f"{prefix}__substg1.0_{prop}{PT_UNICODE}")
        if raw is not None:
            text = raw.decode("utf-16-le", errors="replace").split("\x00", 1)[0]
        else:
            raw = self._stream(f"{prefix}__substg1.0_{prop}{PT_STRING8}")
            if raw is not None:
                text = _decode_bytes(raw.split(b"\x00", 1)[0], self.codepage(prefix, header))
        if text is None:
            return ""
        return _clean(text) if clean else text

    # -- envelope ----------------------------------------------------------------------------

    def envelope_fields(self) -> tuple[str, str, datetime | None]:
        headers = self.transport_headers("")
        head_name, head_address = _parse_from(headers.get("from", ""))
        address_type = self.string("", "0C1E").upper()
        candidates = [
            self.string("", "5D01"),  # PidTagSenderSmtpAddress
            self.string("", "0C1F") if address_type != "EX" else "",  # PidTagSenderEmailAddress
            head_address,
            self.string("", "5D02"),  # PidTagSentRepresentingSmtpAddress
            self.string("", "0065"),  # PidTagSentRepresentingEmailAddress
            self.string("", "0C1F"),
            self.string("", "39FE"),  # PidTagSmtpAddress
        ]
        # Inside Exchange the sender address is an X.500 DN ("/O=…/CN=…"), not a mail address.
        address = next((c for c in candidates if "@" in c and not c.startswith("/")), "")
        name = self.string("", "0C1A") or self.string("", "0042") or head_name
        return name, address.strip().lower(), self.received("", headers)

    def transport_headers(self, prefix: str) -> dict[str, str]:
        text = self.string(prefix, "007D", clean=False)  # keep the line breaks
        if not text:
            return {}
        # Headers are already text here; re-encode so the shared raw-header decoding applies.
        msg = email.message_from_bytes(
            text.encode("utf-8", errors="surrogateescape"), policy=email.policy.default
        )
        return _raw_headers(msg)

    def received(self, prefix: str, headers: dict[str, str]) -> datetime | None:
        # The submit time first: it is what the Date header of the same mail saved as .eml
        # says, so .eml and .msg copies of one reply order the same way for newest-wins.
        props = self.properties(prefix, 32)
        when = _filetime(props.get(PR_CLIENT_SUBMIT_TIME))
        if when is None:
            when = _parse_date(headers.get("date"))
        if when is None:
            when = _filetime(props.get(PR_MESSAGE_DELIVERY_TIME))
        return when

    # -- attachments -------------------------------------------------------------------------

    def collect(self, storage: str, depth: int, prefix: str, level: int = 0) -> None:
        """Hand every attachment under `storage` ("" or "…/__substg1.0_3701000D/") to ctx.

        Embedded items (forward-as-attachment chains) do not count towards MAX_DEPTH:
        they inflate nothing and are bounded by the file's size. `level` only stops a crafted
        file from recursing without end.
        """
        if level > _MAX_EMBEDDED_LEVELS:
            raise _Unreadable("添付されたメールの入れ子が深すぎます")
        top = [p for p in storage.split("/") if p]
        storages = sorted(
            {
                e[len(top)]
                for e in self.entries
                if len(e) > len(top)
                and e[: len(top)] == top
                and e[len(top)].lower().startswith("__attach_version1.0_#")
            },
            key=lambda s: int(s.rsplit("#", 1)[1], 16) if _is_hex(s.rsplit("#", 1)[1]) else 0,
        )
        for child in storages:
            base = f"{storage}{child}/"
            props = self.properties(base, 8)
            method = props.get(PR_ATTACH_METHOD)
            embedded = base + f"__substg1.0_3701{PT_OBJECT}"
            if (method and struct.unpack("<I", method[:4])[0] == ATTACH_EMBEDDED_MSG) or (
                self.ole.exists(embedded) and self.ole.get_type(embedded) == olefile.STGTY_STORAGE
            ):
                if self.ole.exists(embedded):
                    self.collect(embedded + "/", depth, prefix, level + 1)
                continue
            name = (
                self.string(base, "3707", 8)  # PidTagAttachLongFilename
                or self.string(base, "3704", 8)  # PidTagAttachFilename (8.3)
                or self.string(base, "3001", 8)  # PidTagDisplayName
            )
            name = _basename(name)
            if not name:
                continue
            if _suffix(name) not in WORKBOOK_SUFFIXES + ENVELOPE_SUFFIXES:
                self.ctx.skipped.append(name)
                continue
            data = self._stream(base + f"__substg1.0_3701{PT_BINARY}")
            if data is None:
                continue
            self.ctx.found(prefix + name, data, depth)


def _is_hex(text: str) -> bool:
    return bool(re.fullmatch(r"[0-9A-Fa-f]+", text))


def _filetime(value: bytes | None) -> datetime | None:
    if not value or len(value) < 8:
        return None
    ticks = struct.unpack("<Q", value[:8])[0]
    if ticks == 0 or ticks == 0x7FFFFFFFFFFFFFFF or ticks >= 0x7FFF_0000_0000_0000:
        return None
    try:
        return _FILETIME_EPOCH + timedelta(microseconds=ticks // 10)
    except OverflowError:
        return None
