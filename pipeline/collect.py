"""Collect the returns from the section's IMAP mailbox into inbox/mail/, strictly read-only.

One job: move the bytes of each message that carries a return from the folder named in
`[mailbox]` into `inbox/mail/<YYYY-MM>/<name>.eml`, where the nightly merge reads them like an
.eml that staff saved by hand. Nothing here parses an attachment: which message carries a
spreadsheet, zip or Outlook item is decided from the server's own BODYSTRUCTURE (types and file
names), and the message is saved byte for byte.

Read-only by construction: the connection is a `_ReadOnlyIMAP` that refuses every command but
the few that cannot change the mailbox (EXAMINE, never SELECT; UID SEARCH; UID FETCH of
BODY.PEEK[] and metadata only, never a fetch that sets \\Seen). Nothing is deleted, moved or
flagged.

Where it resumes: `outbox/mailbox-state.json` keeps the folder's UIDVALIDITY and the last UID
dealt with. It is replaced atomically after each message is safely saved (the .eml is written and
fsynced first), so a collect stopped anywhere (connection dropped, power cut) resumes after the
last saved message. An .eml's name ends in the first hex digits of the message's sha256, so a
message saved just before a crash, and fetched again, lands on the same name and is recognised.
A changed UIDVALIDITY (the server rebuilt the folder) re-reads the whole folder and skips the
messages already saved, by Message-ID and by content hash.

Credentials are never in pipeline.toml: the password is read from `[mailbox] password_file`
(refused unless only its owner can read it, where the platform can tell) or else from the OS
keyring (the optional `keyring` package: Windows Credential Manager), where `collect
--set-password` stores it. Certificates are always verified; `ca_file` adds the city's CA to the
system's trust, nothing else widens it.

A run fault (server down, wrong password, certificate, missing folder, connection lost) raises
CollectError (exit 3) with a Japanese message and is recorded in the state file for `status`; a
message over `[limits] max_file_mib` is listed and not fetched (exit 1).

One module, though long: the read-only IMAP conversation, the choice of messages from their
BODYSTRUCTURE and the resumable state are one protocol, tested end to end against Dovecot.
"""

from __future__ import annotations

import contextlib
import hashlib
import imaplib
import json
import os
import re
import socket
import ssl
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

from pipeline import atomic
from pipeline.errors import PipelineError
from pipeline.filenames import safe_filename
from pipeline.settings import MailboxSettings, Settings
from pipeline.times import now_iso

STATE_NAME = "mailbox-state.json"
MAIL_DIR = "mail"  # under the inbox
LOCK_NAME = "collect.lock"  # in the outbox
KEYRING_SERVICE = "welfare-plan-pipeline"
TIMEOUT_S = 60.0  # a server that stops answering for this long is a dropped connection
BATCH = 100  # UIDs per metadata FETCH

# A message is saved when some part is one of these (by type, or by file name)...
WANTED_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods", ".zip", ".msg", ".eml")
WANTED_TYPES = frozenset({
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-excel",
    "application/vnd.ms-excel.sheet.macroenabled.12",
    "application/vnd.ms-excel.sheet.binary.macroenabled.12",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/zip",
    "application/x-zip-compressed",
    "application/vnd.ms-outlook",
})


class CollectError(PipelineError):
    """The mailbox could not be read (exit 3); the message says why and what to do."""


# --- Results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    """A message of the folder that was not saved, as shown to staff."""

    uid: int
    received: str  # ISO date-time the server received it
    sender: str
    subject: str
    size: int

    def shown(self) -> str:
        return f"{self.received[:16].replace('T', ' ')} {self.sender}「{self.subject}」({_mib(self.size)})"


@dataclass
class CollectResult:
    folder: str
    saved: list[Path] = field(default_factory=list)
    without_return: list[Listed] = field(default_factory=list)  # no spreadsheet, zip or .msg: not saved
    too_large: list[Listed] = field(default_factory=list)  # over max_file_mib: not fetched
    duplicates: int = 0  # already saved by an earlier collect
    reread: bool = False  # UIDVALIDITY changed: the whole folder was read again

    @property
    def exit_code(self) -> int:
        return 1 if self.too_large else 0


# --- Settings and credentials -------------------------------------------------------------------

_SETUP_HINT = "設定ファイル(pipeline.toml)の [mailbox] に host・user・folder を書いてください(README「メールボックスからの取り込み」)。"


def _check_configured(box: MailboxSettings) -> None:
    missing = [k for k in ("host", "user") if not getattr(box, k)]
    if missing:
        raise CollectError(f"メールボックスが設定されていません([mailbox] {'・'.join(missing)} がありません)。{_SETUP_HINT}")


def _port(box: MailboxSettings) -> int:
    return box.port or (993 if box.tls == "imaps" else 143)


def keyring_user(box: MailboxSettings) -> str:
    """The name the password is stored under in the OS keyring: one per account and server."""
    return f"{box.user}@{box.host}"


def _keyring() -> Any:
    try:
        import keyring
    except ImportError:
        return None
    return keyring


def set_password(settings: Settings, password: str) -> str:
    """Store the mailbox password in the OS keyring; returns where (for the message)."""
    box = settings.mailbox
    _check_configured(box)
    if not password:
        raise CollectError("パスワードが空です。もう一度 collect --set-password を実行してください。")
    keyring = _keyring()
    if keyring is None:
        raise CollectError(
            "OS の資格情報ストアを使う keyring パッケージが入っていません。"
            "pip install keyring で入れるか、[mailbox] password_file に本人だけが読めるパスワードファイルを指定してください。"
        )
    try:
        keyring.set_password(KEYRING_SERVICE, keyring_user(box), password)
    except Exception as exc:  # keyring's errors depend on the backend (no backend on a server)
        raise CollectError(
            f"パスワードを OS の資格情報ストアに保存できません({type(exc).__name__}: {exc})。"
            "[mailbox] password_file を使ってください。"
        ) from None
    return f"資格情報ストアの {KEYRING_SERVICE} / {keyring_user(box)}"


def read_password(box: MailboxSettings) -> str:
    """The password from `password_file` (checked: only its owner may read it) or the OS keyring."""
    if box.password_file is not None:
        return _password_from_file(box.password_file)
    keyring = _keyring()
    if keyring is None:
        raise CollectError(
            "メールボックスのパスワードがありません。[mailbox] password_file に本人だけが読めるパスワードファイルを指定するか、"
            "keyring パッケージを入れて python -m pipeline collect --set-password で保存してください。"
        )
    try:
        password = keyring.get_password(KEYRING_SERVICE, keyring_user(box))
    except Exception as exc:
        raise CollectError(
            f"OS の資格情報ストアを読めません({type(exc).__name__}: {exc})。[mailbox] password_file を使ってください。"
        ) from None
    if not password:
        raise CollectError(
            f"{keyring_user(box)} のパスワードが OS の資格情報ストアにありません。"
            "python -m pipeline collect --set-password で保存してください。"
        )
    return str(password)


def _password_from_file(path: Path) -> str:
    try:
        info = os.stat(path)
    except OSError as exc:
        raise CollectError(
            f"パスワードファイル {path} を読めません({type(exc).__name__})。[mailbox] password_file の場所を確かめてください。"
        ) from None
    # Where the platform can tell (POSIX modes): only the owner, who runs the collect, may read it.
    if os.name == "posix":
        if info.st_uid != os.getuid():
            raise CollectError(f"パスワードファイル {path} は実行しているユーザーのものではないため使いません。所有者を直してください。")
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CollectError(
                f"パスワードファイル {path} はほかの人も読めるため使いません(権限 {stat.filemode(info.st_mode)})。"
                f"chmod 600 {path} で本人だけが読めるようにしてください。"
            )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CollectError(f"パスワードファイル {path} を読めません({type(exc).__name__})。UTF-8 で保存してください。") from None
    password = text.splitlines()[0] if text.splitlines() else ""
    if not password:
        raise CollectError(f"パスワードファイル {path} が空です。1 行目にパスワードを書いてください。")
    return password


# --- The read-only connection -------------------------------------------------------------------

_ALLOWED = frozenset({"CAPABILITY", "STARTTLS", "AUTHENTICATE", "LOGIN", "EXAMINE", "LIST", "NOOP", "LOGOUT"})
# A FETCH that would set \Seen: BODY[...] without .PEEK, RFC822 and RFC822.TEXT.
_SETS_SEEN = re.compile(rb"BODY\[|RFC822(?!\.SIZE|\.HEADER)", re.I)


class _ReadOnlyIMAP:
    """Mixin: refuses every command that could change the mailbox, before it is sent."""

    literal: Any

    def _command(self, name: str, *args: Any) -> Any:
        verb = name.upper()
        refused = ""
        if verb == "UID":
            sub = (args[0] if args else "").upper()
            items = b" ".join(a if isinstance(a, bytes) else str(a).encode() for a in args[2:])
            if sub not in ("FETCH", "SEARCH") or (sub == "FETCH" and _SETS_SEEN.search(items.replace(b"BODY.PEEK[", b""))):
                refused = f"UID {sub} {items!r}"
        elif verb not in _ALLOWED:
            refused = verb
        if refused:
            self.literal = None  # APPEND sets it before the command: it must not go out with the next one
            raise RuntimeError(f"read-only collect refuses {refused}")
        return super()._command(name, *args)  # type: ignore[misc]


class _IMAP(_ReadOnlyIMAP, imaplib.IMAP4):
    pass


class _IMAPS(_ReadOnlyIMAP, imaplib.IMAP4_SSL):
    pass


def tls_context(box: MailboxSettings) -> ssl.SSLContext:
    """The system's trust plus the named CA file; hostnames and certificates always checked."""
    context = ssl.create_default_context()
    if box.ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(box.ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise CollectError(
                f"CA 証明書ファイル {box.ca_file} を読めません({type(exc).__name__})。"
                "[mailbox] ca_file に市の CA 証明書(PEM 形式)を指定してください。"
            ) from None
    return context


def _connect(box: MailboxSettings, password: str) -> imaplib.IMAP4:
    where = f"{box.host}:{_port(box)}"
    context = tls_context(box)
    try:
        if box.tls == "imaps":
            conn: imaplib.IMAP4 = _IMAPS(box.host, _port(box), ssl_context=context, timeout=TIMEOUT_S)
        else:
            conn = _IMAP(box.host, _port(box), timeout=TIMEOUT_S)
            if "STARTTLS" not in conn.capabilities:
                with contextlib.suppress(Exception):
                    conn.shutdown()
                raise CollectError(
                    f"メールサーバー {where} が STARTTLS に対応していません。暗号化しない接続ではパスワードを送りません。"
                    '[mailbox] tls = "imaps" と、その port(通常 993)を試すか、情報政策課に確認してください。'
                )
            conn.starttls(ssl_context=context)
    except ssl.SSLCertVerificationError as exc:
        raise CollectError(_certificate_message(box, where, exc)) from None
    except (ssl.SSLError, imaplib.IMAP4.error) as exc:
        raise CollectError(
            f"メールサーバー {where} と暗号化した接続を始められません({exc})。[mailbox] tls と port の組み合わせ"
            "(imaps は通常 993、starttls は通常 143)を確かめてください。"
        ) from None
    except TimeoutError:
        raise CollectError(f"メールサーバー {where} が応答しません(接続が {TIMEOUT_S:.0f} 秒でタイムアウト)。{_NETWORK_HINT}") from None
    except OSError as exc:
        raise CollectError(
            f"メールサーバー {where} に接続できません({_os_reason(exc)})。{_NETWORK_HINT}"
        ) from None
    _login(conn, box, password, where)
    return conn


_NETWORK_HINT = (
    "サーバーが止まっていないか、[mailbox] host と port が正しいか、この PC からそのサーバーへの接続が許可されているか"
    "(情報政策課)を確かめてください。集約(merge)は inbox/ にあるファイルで行えます。"
)


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "接続を拒否されました"
    if isinstance(exc, socket.gaierror):
        return "サーバー名が見つかりません"
    return f"{type(exc).__name__}: {exc}"


def _certificate_message(box: MailboxSettings, where: str, exc: ssl.SSLCertVerificationError) -> str:
    reason = str(exc.verify_message or exc)
    if "Hostname mismatch" in reason or "IP address mismatch" in reason or exc.verify_code == 62:
        what = f"サーバーの証明書が {box.host} のものではありません(名前の不一致)。[mailbox] host を証明書にある名前で書いてください"
    elif box.ca_file is None:
        what = "サーバーの証明書を発行した CA を信頼できません。市の CA 証明書を [mailbox] ca_file に指定してください"
    else:
        what = f"サーバーの証明書を発行した CA を信頼できません。[mailbox] ca_file の {box.ca_file} がその CA の証明書か確かめてください"
    return f"メールサーバー {where} の証明書を確認できないため、接続をやめました: {what}(詳細: {reason})。"


def _login(conn: imaplib.IMAP4, box: MailboxSettings, password: str, where: str) -> None:
    try:
        if "AUTH=PLAIN" in conn.capabilities:
            # AUTHENTICATE PLAIN carries a non-ASCII password as UTF-8; LOGIN cannot.
            conn.authenticate("PLAIN", lambda _: f"\0{box.user}\0{password}".encode())
        else:
            conn.login(box.user, password)
    except imaplib.IMAP4.abort as exc:
        raise CollectError(_dropped(where, exc)) from None
    except imaplib.IMAP4.error:
        with contextlib.suppress(Exception):
            conn.shutdown()
        raise CollectError(
            f"メールサーバー {where} にログインできません(ユーザー {box.user})。ユーザー名とパスワードを確かめ、"
            "パスワードが変わったときは python -m pipeline collect --set-password で保存し直すか、"
            "[mailbox] password_file を書き直してください。"
        ) from None
    except UnicodeEncodeError:
        raise CollectError(f"メールサーバー {where} は ASCII 以外の文字を含むパスワードでログインできません。") from None


def _dropped(where: str, exc: BaseException) -> str:
    return (
        f"メールサーバー {where} との接続が途中で切れました({type(exc).__name__}: {exc})。"
        "ここまでに保存したメールはそのまま残っています。次の collect が続きから取り込みます(二重には保存しません)。"
    )


# --- Folder names: IMAP's modified UTF-7 (RFC 3501 5.1.3) ------------------------------------------


def encode_folder(name: str) -> str:
    """'返送/R6' → '&j9RT4Q-/R6': printable ASCII as itself ('&' as '&-'), the rest as modified
    base64 of UTF-16BE between '&' and '-'."""
    out, pending = [], ""

    def flush() -> None:
        nonlocal pending
        if pending:
            import base64

            raw = base64.b64encode(pending.encode("utf-16-be")).decode().rstrip("=").replace("/", ",")
            out.append(f"&{raw}-")
            pending = ""

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending += ch
    flush()
    return "".join(out)


def decode_folder(name: str) -> str:
    """The inverse of encode_folder; a name that is not valid modified UTF-7 comes back as is."""
    import base64

    def one(m: re.Match[str]) -> str:
        body = m.group(1)
        if not body:
            return "&"
        data = body.replace(",", "/")
        data += "=" * (-len(data) % 4)
        return base64.b64decode(data).decode("utf-16-be")

    try:
        return re.sub(r"&([A-Za-z0-9+,]*)-", one, name)
    except (ValueError, UnicodeDecodeError):
        return name


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- Reading IMAP responses ---------------------------------------------------------------------

_LITERAL_AT_END = re.compile(rb"\{(\d+)\}\r?\n?$")


def _responses(data: Sequence[Any]) -> Iterator[tuple[bytes, list[bytes]]]:
    """imaplib's FETCH data → one (text, literals) per response; each literal in the text is the
    placeholder \\x00<index>\\x00 (imaplib ends a response with a plain bytes item)."""
    text, literals = b"", list[bytes]()
    for item in data:
        if isinstance(item, tuple):
            head, literal = item
            text += _LITERAL_AT_END.sub(b"", head) + b"\x00%d\x00" % len(literals)
            literals.append(literal)
        elif isinstance(item, bytes):
            yield text + item, literals
            text, literals = b"", []
    if text:
        yield text, literals


_TOKEN = re.compile(rb'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|\x00(\d+)\x00|([^\s()"\x00]+))', re.S)


def parse_list(text: bytes, literals: Sequence[bytes] = ()) -> list[Any]:
    """An IMAP response's data as nested lists: strings and atoms as bytes, NIL as None.

    Bounded: nesting deeper than 64 or a token the grammar does not allow raises ValueError."""
    stack: list[list[Any]] = [[]]
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            if not text[pos:].strip():
                break
            raise ValueError(f"unexpected IMAP data at {pos}")
        pos = m.end()
        if m.group(1):
            if len(stack) > 64:
                raise ValueError("IMAP data nested too deeply")
            stack.append([])
        elif m.group(2):
            if len(stack) == 1:
                raise ValueError("unbalanced ')' in IMAP data")
            done = stack.pop()
            stack[-1].append(done)
        elif m.group(3) is not None:
            stack[-1].append(re.sub(rb"\\(.)", rb"\1", m.group(3)))
        elif m.group(4) is not None:
            stack[-1].append(literals[int(m.group(4))])
        else:
            atom = m.group(5)
            stack[-1].append(None if atom.upper() == b"NIL" else atom)
    if len(stack) != 1:
        raise ValueError("unbalanced '(' in IMAP data")
    return stack[0]


def _fetch_items(text: bytes, literals: Sequence[bytes]) -> dict[str, Any]:
    """'12 (UID 5 RFC822.SIZE 300 …)' (imaplib's FETCH data, without '* ' and 'FETCH') →
    {'UID': b'5', 'RFC822.SIZE': b'300', …}."""
    parsed = parse_list(text, literals)
    if len(parsed) != 2 or not isinstance(parsed[1], list):
        raise ValueError("not a FETCH response")
    pairs = parsed[1]
    return {bytes(pairs[i]).decode("ascii", "replace").upper(): pairs[i + 1] for i in range(0, len(pairs) - 1, 2)}


# --- Which messages carry a return (from BODYSTRUCTURE, never from the bytes) ---------------------


def _text(value: Any) -> str:
    """A string of the server's answer: UTF-8, else cp932 (raw Shift_JIS headers), else lossy."""
    if not isinstance(value, bytes):
        return ""
    for encoding in ("utf-8", "cp932"):
        with contextlib.suppress(UnicodeDecodeError):
            return value.decode(encoding)
    return value.decode("utf-8", "replace").replace("\ufffd", "")


def _params(value: Any) -> dict[str, str]:
    if not isinstance(value, list):
        return {}
    return {_text(value[i]).lower(): _text(value[i + 1]) for i in range(0, len(value) - 1, 2)}


def _names(params: dict[str, str]) -> list[str]:
    """The file names a part's parameters give, decoded as far as we can (RFC 2047, RFC 2231)."""
    names = []
    for key in ("name", "filename"):
        if key in params:
            names.append(params[key])
        if f"{key}*" in params:
            names.append(params[f"{key}*"])
        pieces = sorted((int(m[1]), v) for k, v in params.items() if (m := re.fullmatch(rf"{key}\*(\d+)\*?", k)))
        if pieces:
            names.append("".join(v for _, v in pieces))
    decoded = []
    for name in names:
        decoded.append(name)
        if "''" in name:  # RFC 2231: charset'language'percent-encoded
            from urllib.parse import unquote

            charset, _, rest = name.split("'", 2)
            with contextlib.suppress(LookupError, UnicodeDecodeError):
                decoded.append(unquote(rest, encoding=charset or "utf-8", errors="strict"))
        with contextlib.suppress(Exception):  # a malformed encoded-word: the raw form stays
            decoded.append(str(make_header(decode_header(name))))
    return decoded


def carries_return(body: Any, depth: int = 0) -> bool:
    """Whether a BODYSTRUCTURE has a part that can hold a return: a spreadsheet, zip or Outlook
    item by type or file name, also inside a forwarded message. An attachment whose name cannot
    be read counts (the merge's reader decides), so a return is never left behind."""
    if not isinstance(body, list) or not body or depth > 20:
        return False
    if isinstance(body[0], list):  # multipart: parts, then the subtype
        return any(carries_return(part, depth + 1) for part in body if isinstance(part, list))
    kind = f"{_text(body[0])}/{_text(body[1]) if len(body) > 1 else ''}".lower()
    if kind in WANTED_TYPES:
        return True
    if kind == "message/rfc822" and len(body) > 8 and carries_return(body[8], depth + 1):
        return True
    ext = 10 if kind == "message/rfc822" else 8 if kind.startswith("text/") else 7
    disposition = body[ext + 1] if len(body) > ext + 1 and isinstance(body[ext + 1], list) else []
    params = _params(body[2] if len(body) > 2 else None) | _params(disposition[1] if len(disposition) > 1 else None)
    names = _names(params)
    if any(n.strip().lower().endswith(WANTED_SUFFIXES) for n in names):
        return True
    attached = bool(disposition) and _text(disposition[0]).lower() == "attachment"
    unreadable = names and all("?=" in n or "''" in n for n in names)
    return attached and kind == "application/octet-stream" and bool(unreadable)


# --- The state file -----------------------------------------------------------------------------


def state_path(settings: Settings) -> Path:
    return settings.outbox / STATE_NAME


def load_state(settings: Settings) -> dict[str, Any]:
    """The state of the last collect ({} before the first). A damaged file raises CollectError:
    without it the next collect could not know what is already saved."""
    path = state_path(settings)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CollectError(
            f"{path} を読めません({type(exc).__name__})。壊れている場合は名前を変えて退避してから collect を実行してください"
            "(フォルダーを最初から読み直し、inbox/mail/ にあるメールは二重に保存しません)。"
        ) from None
    return data if isinstance(data, dict) else {}


def _write_state(settings: Settings, state: dict[str, Any]) -> None:
    settings.outbox.mkdir(parents=True, exist_ok=True)
    data = json.dumps(state, ensure_ascii=False, indent=2).encode("utf-8")
    atomic.write_bytes_atomically(state_path(settings), data, fallback=False)


def _record_failure(settings: Settings, message: str) -> None:
    """The failed attempt in the state (for `status` and the log); the cursor is not touched."""
    with contextlib.suppress(PipelineError, OSError):
        state = load_state(settings)
        state["last_attempt"] = _now()
        state["last_error"] = message
        _write_state(settings, state)


def _now() -> str:
    return now_iso()


# --- Saving one message -------------------------------------------------------------------------


def _decode_words(raw: Any, limit: int) -> str:
    text = _text(raw)
    with contextlib.suppress(Exception):
        text = str(make_header(decode_header(text)))
    text = " ".join(text.split())
    return text[:limit]


def _sender(envelope: Any) -> str:
    try:
        name, _, mailbox, host = envelope[2][0]
    except (TypeError, IndexError, ValueError):
        return ""
    return _decode_words(name, 30) or _decode_words(f"{_text(mailbox)}@{_text(host)}".encode(), 40)


def message_name(received: datetime, sender: str, subject: str, digest: str) -> str:
    """'20250520-0912_健康推進課 山田_令和6年度 評価表_1a2b3c4d.eml', valid on Windows and bounded."""
    stem = f"{received:%Y%m%d-%H%M}_{sender or '差出人不明'}_{subject or '件名なし'}"
    tail = f"_{digest[:8]}.eml"
    # Cut here, a few bytes short of the bound: the hash already keeps cut names distinct, so
    # safe_filename need not add its own.
    room = 120 - len(tail.encode()) - 4
    stem = stem.encode("utf-8")[:room].decode("utf-8", "ignore")
    return safe_filename(stem, max_bytes=120 - len(tail.encode())) + tail


def _save(folder: Path, name: str, data: bytes, digest: str) -> tuple[Path, bool]:
    """Write the message beside no other of the same name; (path, True) when it was already there."""
    folder.mkdir(parents=True, exist_ok=True)
    target, n = folder / name, 1
    while target.exists():
        if hashlib.sha256(target.read_bytes()).hexdigest() == digest:
            return target, True  # saved by a collect that stopped before writing its state
        n += 1
        target = folder / f"{Path(name).stem}_{n}.eml"
    atomic.write_bytes_atomically(target, data, fallback=False)
    return target, False


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"


# --- The collect --------------------------------------------------------------------------------


def collect(settings: Settings, password: str | None = None) -> CollectResult:
    """Read the new messages of `[mailbox] folder` into inbox/mail/. Raises CollectError (exit 3)
    for a run fault, after recording it in outbox/mailbox-state.json."""
    from filelock import FileLock, Timeout

    box = settings.mailbox
    _check_configured(box)
    settings.outbox.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(settings.outbox / LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise CollectError(f"別の collect が実行中です({settings.outbox / LOCK_NAME})。終わってからもう一度実行してください。") from None
    try:
        try:
            return _collect(settings, password if password is not None else read_password(box))
        except CollectError as exc:
            _record_failure(settings, str(exc))
            raise
    finally:
        lock.release()


def _collect(settings: Settings, password: str) -> CollectResult:
    box = settings.mailbox
    where = f"{box.host}:{_port(box)}"
    state = load_state(settings)
    result = CollectResult(folder=box.folder)
    if not settings.inbox.is_dir():
        # Not created here: a mistyped [paths] inbox would hide the returns where the merge never looks.
        raise CollectError(f"受信フォルダー {settings.inbox} がありません。設定ファイルの [paths] inbox を確認してください。")
    conn = _connect(box, password)
    try:
        uidvalidity = _examine(conn, box, where)
        same_box = state.get("mailbox") == _identity(box)
        if not same_box or state.get("uidvalidity") != uidvalidity:
            result.reread = bool(state.get("uidvalidity")) and same_box
            last_uid = 0
        else:
            last_uid = int(state.get("last_uid", 0))
        state["mailbox"] = _identity(box)
        state["uidvalidity"] = uidvalidity
        state["last_uid"] = last_uid
        state.setdefault("messages", [])
        state.setdefault("too_large", [])
        known_hashes = {m.get("sha256") for m in state["messages"]}
        known_ids = {m.get("message_id") for m in state["messages"] if m.get("message_id")}
        for uid, meta in _new_messages(conn, box, last_uid, where):
            listed = _listed(uid, meta)
            size = int(meta.get("RFC822.SIZE") or 0)
            if size > settings.limits.max_file_mib * 1024 * 1024:
                result.too_large.append(listed)
                state["too_large"] = [t for t in state["too_large"] if t.get("uid") != uid] + [
                    {"uid": uid, "received": listed.received, "from": listed.sender, "subject": listed.subject, "size": size}
                ]
            elif "BODYSTRUCTURE" in meta and not carries_return(meta["BODYSTRUCTURE"]):
                result.without_return.append(listed)
            else:
                message_id = _message_id(meta)
                if result.reread and message_id and message_id in known_ids:
                    result.duplicates += 1
                else:
                    data = _fetch_body(conn, uid, where)
                    digest = hashlib.sha256(data).hexdigest()
                    if digest in known_hashes:
                        result.duplicates += 1
                    else:
                        received = _received(meta)
                        folder = settings.inbox / MAIL_DIR / f"{received:%Y-%m}"
                        name = message_name(received, listed.sender, listed.subject, digest)
                        try:
                            path, existed = _save(folder, name, data, digest)
                        except OSError as exc:
                            raise CollectError(_unwritable(folder / name, exc)) from None
                        if existed:
                            result.duplicates += 1
                        else:
                            result.saved.append(path)
                        state["messages"].append({
                            "uid": uid, "message_id": message_id, "sha256": digest,
                            "file": path.relative_to(settings.inbox).as_posix(),
                        })
                        known_hashes.add(digest)
                        if message_id:
                            known_ids.add(message_id)
            state["last_uid"] = uid
            try:
                _write_state(settings, state)  # only now: the message is saved (or needs no saving)
            except OSError as exc:
                raise CollectError(_unwritable(state_path(settings), exc)) from None
        with contextlib.suppress(Exception):
            conn.logout()
    except (imaplib.IMAP4.abort, OSError, ssl.SSLError) as exc:
        raise CollectError(_dropped(where, exc)) from None
    except imaplib.IMAP4.error as exc:  # a BAD or NO the server should not have answered
        raise CollectError(
            f"メールサーバー {where} が予期しない応答をしました({exc})。ここまでに保存したメールはそのまま残っています。"
            "続くようなら情報政策課に確認してください。"
        ) from None
    finally:
        with contextlib.suppress(Exception):
            conn.shutdown()
    state["last_read"] = _now()
    state["last_attempt"] = state["last_read"]
    state["last_error"] = None
    state["last_saved"] = len(result.saved)
    state["last_without_return"] = len(result.without_return)
    state["saved_total"] = len(state["messages"])
    try:
        _write_state(settings, state)
    except OSError as exc:
        raise CollectError(_unwritable(state_path(settings), exc)) from None
    return result


def _unwritable(path: Path, exc: OSError) -> str:
    return (
        f"{path} に保存できません({type(exc).__name__}: {exc})。ディスクの空きと受信・出力フォルダーの書き込み権限を"
        "確かめてください。ここまでに保存したメールはそのまま残り、次の collect が続きから取り込みます。"
    )


def _identity(box: MailboxSettings) -> str:
    """Which folder the cursor belongs to; not the port, which a relay or a change of tls may move."""
    return f"{box.user}@{box.host}/{box.folder}"


def _examine(conn: imaplib.IMAP4, box: MailboxSettings, where: str) -> int:
    try:
        typ, _ = conn.select(_quoted(encode_folder(_server_path(conn, box.folder))), readonly=True)  # EXAMINE
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error:
        typ = "NO"
    if typ != "OK":
        raise CollectError(
            f"メールボックス {box.user}({where})にフォルダー「{box.folder}」がありません。[mailbox] folder を"
            f"次のどれかにしてください(サブフォルダーは / などの区切りも含めて書きます): {'、'.join(_folders(conn)) or '(一覧を取得できません)'}"
        )
    values = conn.untagged_responses.get("UIDVALIDITY") or [b"0"]
    try:
        return int(values[-1])  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0


def _server_path(conn: imaplib.IMAP4, folder: str) -> str:
    """The folder with "/" between levels (as README says to write it) in the server's own
    hierarchy delimiter (Dovecot's Maildir uses ".")."""
    if "/" not in folder:
        return folder
    with contextlib.suppress(imaplib.IMAP4.error, ValueError):
        typ, data = conn.list('""', '""')  # answers the delimiter only
        if typ == "OK" and data and isinstance(data[0], bytes):
            parsed = parse_list(data[0])
            if len(parsed) >= 2 and isinstance(parsed[1], bytes) and len(parsed[1]) == 1:
                return folder.replace("/", parsed[1].decode("ascii"))
    return folder


def _folders(conn: imaplib.IMAP4) -> list[str]:
    with contextlib.suppress(Exception):
        typ, data = conn.list()
        if typ == "OK":
            names = []
            for line in data:
                if isinstance(line, bytes):
                    parsed = parse_list(line)
                    if len(parsed) >= 3 and isinstance(parsed[2], bytes):
                        name = decode_folder(parsed[2].decode("ascii", "replace"))
                        if isinstance(parsed[1], bytes) and len(parsed[1]) == 1:
                            name = name.replace(parsed[1].decode("ascii"), "/")
                        names.append(name)
            return sorted(names)[:30]
    return []


def _new_messages(conn: imaplib.IMAP4, box: MailboxSettings, last_uid: int, where: str) -> Iterator[tuple[int, dict[str, Any]]]:
    criteria = [f"UID {last_uid + 1}:*"]
    if box.since is not None:
        criteria.append("SINCE " + _imap_date(box.since))
    typ, data = conn.uid("SEARCH", *criteria)
    if typ != "OK":
        raise CollectError(f"メールボックス({where})のメールを検索できません({data})。")
    uids = sorted({int(u) for chunk in data if chunk for u in chunk.split()})
    uids = [u for u in uids if u > last_uid]  # "n:*" also matches the last message when n is past it
    for start in range(0, len(uids), BATCH):
        batch = uids[start:start + BATCH]
        typ, data = conn.uid("FETCH", ",".join(map(str, batch)), "(UID RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)")
        if typ != "OK":
            raise CollectError(f"メールボックス({where})のメールの情報を読めません({data})。")
        found: dict[int, dict[str, Any]] = {}
        for text, literals in _responses(data):
            try:
                items = _fetch_items(text, literals)
                found[int(items["UID"])] = items
            except (ValueError, KeyError, TypeError):
                continue  # an unsolicited or unreadable response
        for uid in batch:
            # No readable metadata: no BODYSTRUCTURE key, so the message is fetched (the reader decides).
            yield uid, found.get(uid, {})


def _fetch_body(conn: imaplib.IMAP4, uid: int, where: str) -> bytes:
    typ, data = conn.uid("FETCH", str(uid), "(UID BODY.PEEK[])")
    if typ != "OK":
        raise CollectError(f"メールボックス({where})の UID {uid} のメールを読めません({data})。")
    for text, literals in _responses(data):
        with contextlib.suppress(ValueError, KeyError, TypeError):
            items = _fetch_items(text, literals)
            body = items.get("BODY[]")
            if int(items.get("UID", b"0")) == uid and isinstance(body, bytes):
                return body
    raise imaplib.IMAP4.abort(f"no body for UID {uid} in the server's answer")


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_INTERNALDATE = re.compile(rb" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)")


def _imap_date(day: date) -> str:
    """'1-May-2025': IMAP's date, in English whatever the locale (strftime's %b is not)."""
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}"


def _received(meta: dict[str, Any]) -> datetime:
    """When the server received the message (INTERNALDATE), in local time; now if unreadable."""
    raw = meta.get("INTERNALDATE")
    m = _INTERNALDATE.fullmatch(raw) if isinstance(raw, bytes) else None
    if m and m[2].decode().title() in _MONTHS:
        sign = 1 if m[7] == b"+" else -1
        zone = timezone(sign * timedelta(hours=int(m[8]), minutes=int(m[9])))
        with contextlib.suppress(ValueError):
            return datetime(int(m[3]), _MONTHS.index(m[2].decode().title()) + 1, int(m[1]),
                            int(m[4]), int(m[5]), int(m[6]), tzinfo=zone).astimezone()
    return datetime.now().astimezone()


def _message_id(meta: dict[str, Any]) -> str:
    envelope = meta.get("ENVELOPE")
    return _text(envelope[9]).strip() if isinstance(envelope, list) and len(envelope) > 9 else ""


def _listed(uid: int, meta: dict[str, Any]) -> Listed:
    envelope: list[Any] = meta["ENVELOPE"] if isinstance(meta.get("ENVELOPE"), list) else [None] * 10
    subject = _decode_words(envelope[1] if len(envelope) > 1 else None, 60)
    size = meta.get("RFC822.SIZE")
    return Listed(
        uid=uid,
        received=_received(meta).isoformat(timespec="seconds"),
        sender=_sender(envelope),
        subject=subject,
        size=int(size) if isinstance(size, bytes) and size.isdigit() else 0,
    )


# --- Rendering ----------------------------------------------------------------------------------


def render_collect(result: CollectResult, settings: Settings) -> str:
    """The Japanese summary `collect` prints."""
    lines = [
        f"メールボックスのフォルダー「{result.folder}」を読みました(読み取りのみ。メールの削除・移動・既読の変更はしていません)。",
        f"保存: {len(result.saved)} 通({settings.inbox / MAIL_DIR})"
        + (f"、保存済みのため省略: {result.duplicates} 通" if result.duplicates else "")
        + (f"、返送ファイルの添付がないため保存しない: {len(result.without_return)} 通" if result.without_return else ""),
    ]
    if result.reread:
        lines.append("フォルダーが作り直されていた(UIDVALIDITY が変わった)ため、全体を読み直しました。保存済みのメールは二重に保存していません。")
    for path in result.saved:
        lines.append(f"  保存: {path.relative_to(settings.inbox).as_posix()}")
    for item in result.without_return:
        lines.append(f"  添付なし: {item.shown()}")
    if result.too_large:
        lines.append(
            f"大きすぎて取り込まなかったメール {len(result.too_large)} 通([limits] max_file_mib = {settings.limits.max_file_mib} MiB を超える)。"
            "Outlook などで開いて添付ファイルを inbox/ に保存するか、差出人に小さくして送り直すよう依頼してください:"
        )
        lines.extend(f"  {item.shown()}" for item in result.too_large)
    return "\n".join(lines)


def describe_state(settings: Settings) -> str | None:
    """One or two lines for `status`: when the mailbox was last read, how many messages were saved,
    and the last failure if the latest attempt failed. None when no collect has run."""
    try:
        state = load_state(settings)
    except CollectError as exc:
        return f"メールボックス: {exc}"
    if not state:
        return None
    from pipeline.yearly import shown_time

    lines = []
    if state.get("last_read"):
        lines.append(
            f"メールボックス: 最終読み取り {shown_time(state['last_read'])}、そのとき保存 {state.get('last_saved', 0)} 通"
            f"(保存 累計 {state.get('saved_total', 0)} 通、{settings.inbox / MAIL_DIR})"
        )
    if state.get("last_error"):
        lines.append(f"メールボックス: {shown_time(state.get('last_attempt', ''))} の読み取りは失敗しました: {state['last_error']}")
    if state.get("too_large"):
        lines.append(f"メールボックス: 大きすぎて取り込んでいないメール {len(state['too_large'])} 通(collect の表示を参照)")
    return "\n".join(lines) or None
