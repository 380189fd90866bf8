"""Settings for a run: paths, fiscal year, deadline and limits, from one TOML file plus options.

The file is `pipeline.toml` in the current folder (or the one named by --settings); every key is
optional and documented in the shipped pipeline.toml. Command-line options override the file.

The file is checked against SCHEMA, a table of every section and key with its kind and range:
an unknown section or key (with a suggestion for a misspelling), a value of the wrong type or out
of range, a file that is not UTF-8 without BOM, or a TOML syntax error raises SettingsError with
a Japanese message that names the file and lists every problem, one line each.
Imports only the standard library and `errors`, so `--help` stays fast.
"""

from __future__ import annotations

import codecs
import difflib
import math
import re
import tomllib
import unicodedata
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from pipeline.errors import SettingsError
from pipeline.limits import Limits

DEFAULT_FILE = "pipeline.toml"


@dataclass(frozen=True)
class MailboxSettings:
    """The section's IMAP mailbox that `collect` reads (README, 'Collecting from the mailbox').

    No password here: it comes from the OS keyring or from `password_file` (pipeline.collect)."""

    host: str = ""  # "" = no mailbox: `collect` says how to set one up
    port: int = 0  # 0 = the protocol's port: 993 for imaps, 143 for starttls
    tls: str = "imaps"  # "imaps" (TLS from the start) or "starttls"; never plain text
    ca_file: Path | None = None  # the city's internal CA (PEM), trusted besides the system's
    user: str = ""
    folder: str = "INBOX"  # as staff see it, e.g. "返送/R6": sent in IMAP's modified UTF-7
    since: date | None = None  # messages that arrived before this date are not read
    password_file: Path | None = None  # a file only its owner can read, holding the password


@dataclass(frozen=True)
class Settings:
    inbox: Path = Path("inbox")
    outbox: Path = Path("outbox")
    year: str = "R6"
    deadline: date | None = None
    contact: str = "福祉保健部地域福祉課"
    schemas: Path | None = None  # None: the schemas/ folder shipped with the package
    keep_history: int = 60  # run reports kept in outbox/history
    keep_logs: int = 24  # monthly logs kept in outbox/logs beside pipeline.log
    limits: Limits = field(default_factory=Limits)
    exclude: tuple[str, ...] = ()  # [paths] exclude: folder globs the inbox walk skips
    max_drop_percent: float = 20.0  # [guards]: a larger fall in evaluations keeps the old outputs
    goal_sheets: str = "auto"  # [master] goal_sheets: "auto", "always" or "never"
    soffice: str = ""  # [publish] soffice: LibreOffice's program, "" = find it on PATH
    mailbox: MailboxSettings = field(default_factory=MailboxSettings)

    def with_options(self, **options: Any) -> Settings:
        """Override with the command-line options that were given (None means 'not given').

        `year` and `deadline` are checked with the same rules as in the file (SettingsError).
        """
        given = {k: v for k, v in options.items() if v is not None}
        problems = []
        for name, check in (("year", _check_year), ("deadline", _check_date)):
            if name in given:
                try:
                    given[name] = check(name, SCHEMA["plan"][name], given[name])
                except _Bad as bad:
                    how = str(bad).replace(f"{name} = ", f"--{name} ")
                    problems.append(f"--{name} {_show(given[name])}: {how}")
        if problems:
            raise SettingsError(
                "コマンドラインの指定に誤りがあります。直してから、もう一度実行してください。\n"
                + "\n".join(f"  {p}" for p in problems),
                problems,
            )
        for key in ("inbox", "outbox", "schemas"):
            if key in given:
                given[key] = Path(given[key])
        return replace(self, **given)


# --- The schema --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One key of the settings file: how its value is checked and which Settings field it sets.

    kind: one of CHECKS ("path", "globs", "year", "date", "text", "int", "number", "choice").
    target: the Settings field it sets, or "limits.<name>" / "mailbox.<name>" for a field of
    Limits / MailboxSettings.
    low/high: the allowed range (inclusive) of "int" and "number" keys; None = unbounded.
    """

    kind: str
    target: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    empty_ok: bool = False  # "text": "" is a meaningful value
    example: str | None = None  # a correct value for messages (default: the default value)


def _limit(name: str, low: float, high: float, kind: str = "int") -> Key:
    return Key(kind, f"limits.{name}", low, high)


# Every section and key the file may hold. Defaults are the dataclasses' own (Settings, Limits).
# The limits' minimums keep a valid return readable (a workbook has ~10-25 zip members and a few
# hundred cells); their maximums are generous (Excel's own sheet size, 1 GiB files, an hour).
SCHEMA: dict[str, dict[str, Key]] = {
    "paths": {
        "inbox": Key("path", "inbox"),
        "outbox": Key("path", "outbox"),
        "schemas": Key("path", "schemas"),
        "exclude": Key("globs", "exclude", example='["処理済み", "old"]'),
    },
    "plan": {
        "year": Key("year", "year", example='"R7"'),
        "deadline": Key("date", "deadline", example="2025-05-30"),
        "contact": Key("text", "contact"),
    },
    "history": {
        "keep": Key("int", "keep_history", low=1),
        "keep_logs": Key("int", "keep_logs", low=1),
    },
    "guards": {
        "max_drop_percent": Key("number", "max_drop_percent", low=0, high=100),
    },
    "master": {
        "goal_sheets": Key("choice", "goal_sheets", choices=("auto", "always", "never")),
    },
    "publish": {
        "soffice": Key("text", "soffice", empty_ok=True, example='"C:/Program Files/LibreOffice/program/soffice.exe"'),
    },
    "limits": {
        "max_file_mib": _limit("max_file_mib", 1, 1024),
        "max_members": _limit("max_members", 50, 100_000),
        "max_entry_mib": _limit("max_entry_mib", 1, 8192),
        "max_total_mib": _limit("max_total_mib", 1, 16384),
        "max_cells": _limit("max_cells", 10_000, 100_000_000),
        "max_rows": _limit("max_rows", 1000, 1_048_576),
        "max_cols": _limit("max_cols", 50, 16384),
        "parse_timeout_s": _limit("parse_timeout_s", 1, 3600, kind="number"),
        "parse_memory_mib": _limit("parse_memory_mib", 256, 65536),
    },
    "mailbox": {
        "host": Key("text", "mailbox.host", empty_ok=True, example='"mail.city.example.lg.jp"'),
        "port": Key("int", "mailbox.port", low=0, high=65535, example="993"),
        "tls": Key("choice", "mailbox.tls", choices=("imaps", "starttls")),
        "ca_file": Key("path", "mailbox.ca_file", example='"C:/welfare-plan/city-ca.pem"'),
        "user": Key("text", "mailbox.user", example='"chiiki-fukushi"'),
        "folder": Key("text", "mailbox.folder", example='"返送/R6"'),
        "since": Key("date", "mailbox.since", example="2025-04-01"),
        "password_file": Key("path", "mailbox.password_file", example='"C:/welfare-plan/secret/imap-password.txt"'),
    },
}

YEAR_RE = re.compile(r"R(\d{1,2})")


def default_of(key: Key) -> Any:
    """The value a key has when the file does not set it (from the dataclass definitions)."""
    section, _, name = key.target.rpartition(".")
    owner = {"limits": Limits, "mailbox": MailboxSettings}.get(section, Settings)
    f = next(f for f in fields(owner) if f.name == name)
    return f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc,operator]


class _Bad(Exception):
    """A value breaks its key's rule; the text says what to write instead (Japanese)."""


def _show(value: object) -> str:
    """A value as the user wrote it in TOML (shortened)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = f'"{value}"'
    elif isinstance(value, dict):
        text = "{…}"
    elif isinstance(value, list):
        text = "[" + ", ".join(_show(v) for v in value) + "]"
    elif isinstance(value, date | time):
        text = value.isoformat()
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _number_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _range_text(key: Key) -> str:
    what = "整数" if key.kind == "int" else "数"
    if key.low is not None and key.high is not None:
        return f"{_number_text(key.low)}〜{_number_text(key.high)} の{what}"
    if key.low is not None:
        return f"{_number_text(key.low)} 以上の{what}"
    return what


def _example(name: str, key: Key) -> str:
    """A correct line for the key, to show in a message."""
    if key.example:
        return f"{name} = {key.example}"
    value = default_of(key)
    if key.kind == "path":
        return f'{name} = "{value.as_posix() if value is not None else name}"'
    if key.kind == "number":
        return f"{name} = {_number_text(value)}"
    return f"{name} = {_show(value)}"


def _not_text(name: str, key: Key, value: object) -> _Bad:
    return _Bad(f'文字列(" " で囲む)で書いてください。例: {_example(name, key)}')


def _check_path(name: str, key: Key, value: object) -> Path:
    if not isinstance(value, str):
        raise _not_text(name, key, value)
    if not value.strip():
        raise _Bad("空です。フォルダーの場所を書いてください(既定のままでよければ、行ごと消すか先頭に # を付けてください)。")
    return Path(value)


def _check_globs(name: str, key: Key, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        raise _Bad(f'[ ] で囲んだ配列で書いてください。例: {name} = ["{value}"]')
    if not isinstance(value, list):
        raise _Bad(f"フォルダー名の配列で書いてください。例: {_example(name, key)}")
    for i, item in enumerate(value, 1):
        if not isinstance(item, str):
            raise _Bad(f'{i} 番目の {_show(item)} が文字列ではありません。フォルダー名は " " で囲んでください。例: {_example(name, key)}')
        if not item.strip():
            raise _Bad(f"{i} 番目が空の文字列です。フォルダー名(* や ? も使えます)を書くか、その要素を消してください。")
        if "/" in item or "\\" in item:
            raise _Bad(
                f"{i} 番目の {_show(item)} に / や \\ が入っています。場所ではなくフォルダー名だけを書いてください"
                "(* や ? も使えます)。例: \"処理済み\""
            )
    return tuple(value)


def _check_year(name: str, key: Key, value: object) -> str:
    text = ""
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip().upper()  # "ｒ７" -> "R7"
        if match := YEAR_RE.fullmatch(text):
            return f"R{int(match[1])}"  # "r06" -> "R6": the catalog is schemas/plan-r6.yaml
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    hint = ""
    if text.isdigit() and 2019 <= int(text) <= 2117:
        hint = f"西暦ではなく令和の年度で書きます({text} 年度なら \"R{int(text) - 2018}\")。"
    elif text.isdigit() and len(text) <= 2:
        hint = f"R を付けてください({name} = \"R{int(text)}\")。"
    elif text.startswith("令和") and text[2:].rstrip("年度").isdigit():
        hint = f"令和は R と書きます({name} = \"R{int(text[2:].rstrip('年度'))}\")。"
    raise _Bad(f"{hint}年度コードは R と数字 1〜2 けた(R6、R7 など)で書いてください。例: {_example(name, key)}")


def _check_date(name: str, key: Key, value: object) -> date:
    from pipeline.wareki import DateFormError, parse_day

    if isinstance(value, datetime):
        raise _Bad(f"時刻は書かず、日付だけを書いてください。例: {name} = {value.date().isoformat()}")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return parse_day(value)
        except DateFormError as exc:
            if exc.args[0] == "day":
                raise _Bad(f"この日付はありません。年・月・日を確かめてください。例: {name} = 2025-05-30") from None
    if isinstance(value, time):
        raise _Bad(f"時刻ではなく日付を書いてください。例: {name} = 2025-05-30")
    raise _Bad(f"日付を 2025-05-30、2025/05/30、令和7年5月30日 のどれかの形で書いてください。例: {name} = 2025-05-30")


def _check_text(name: str, key: Key, value: object) -> str:
    if not isinstance(value, str):
        raise _not_text(name, key, value)
    if not value.strip() and not key.empty_ok:
        raise _Bad(f"空です。文字を書いてください。例: {_example(name, key)}")
    return value.strip()


def _numeric(name: str, key: Key, value: object) -> float:
    """The value if it is a real number (not a bool, NaN or infinity), else _Bad saying how to write it."""
    want = f"{_range_text(key)}で書いてください"
    if isinstance(value, bool):
        raise _Bad(f"true / false ではなく、{want}。例: {_example(name, key)}")
    if isinstance(value, str):
        try:
            float(unicodedata.normalize("NFKC", value).replace(",", "").replace("_", ""))
        except ValueError:
            raise _Bad(f"{want}。例: {_example(name, key)}") from None
        raise _Bad(f'数は " " で囲みません。{name} = {value.strip()} のように、{want}。')
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise _Bad(f"{want}。例: {_example(name, key)}")
    return value


def _in_range(name: str, key: Key, value: float) -> None:
    if (key.low is not None and value < key.low) or (key.high is not None and value > key.high):
        raise _Bad(f"範囲の外です。{_range_text(key)}で書いてください。例: {_example(name, key)}")


def _check_int(name: str, key: Key, value: object) -> int:
    number = _numeric(name, key, value)
    if isinstance(number, float):
        raise _Bad(f"小数は使えません。{_range_text(key)}で書いてください。例: {_example(name, key)}")
    _in_range(name, key, number)
    return number


def _check_number(name: str, key: Key, value: object) -> float:
    number = _numeric(name, key, value)
    _in_range(name, key, number)
    return float(number)


def _check_choice(name: str, key: Key, value: object) -> str:
    allowed = "、".join(f'"{c}"' for c in key.choices)
    if isinstance(value, str) and value in key.choices:
        return value
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value.strip().lower(), key.choices, n=1)
        if close:
            hint = f'"{close[0]}" のまちがいではありませんか。'
    raise _Bad(f"{hint}{allowed} のどれかを書いてください。例: {_example(name, key)}")


CHECKS: dict[str, Callable[[str, Key, object], Any]] = {
    "path": _check_path,
    "globs": _check_globs,
    "year": _check_year,
    "date": _check_date,
    "text": _check_text,
    "int": _check_int,
    "number": _check_number,
    "choice": _check_choice,
}


# --- Reading the file --------------------------------------------------------------------------

SAVE_AS_UTF8 = (
    "メモ帳で開き、「ファイル」→「名前を付けて保存」で、下の「文字コード」を「UTF-8」"
    "(「UTF-8 (BOM 付き)」ではありません)にして上書き保存してください。"
)


def load_settings(path: Path | None = None) -> Settings:
    """Read and check the settings file; a missing default file means all defaults.

    Raises SettingsError listing every problem of the file (Japanese, one line each).
    """
    target = path or Path(DEFAULT_FILE)
    shown = str(target.absolute())
    if not target.exists():
        if path is not None:
            raise SettingsError(f"設定ファイル {shown} が見つかりません。--settings に指定したファイル名と場所を確かめてください。")
        return Settings()
    try:
        raw = target.read_bytes()
    except OSError as exc:
        raise SettingsError(f"設定ファイル {shown} を読めません({type(exc).__name__}: {exc})。ファイルの場所と権限を確かめてください。") from None
    text = _decode(raw, shown)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(_syntax_message(shown, text, str(exc))) from None
    values, problems = check(data, _Lines(text))
    if problems:
        raise SettingsError(
            f"設定ファイル {shown} に {len(problems)} 件の誤りがあります。次のとおり直してから、もう一度実行してください"
            "(書ける項目と範囲は同梱の pipeline.toml の説明にあります)。\n" + "\n".join(f"  {p}" for p in problems),
            problems,
        )
    return _build(values, target.parent)


def _decode(raw: bytes, shown: str) -> str:
    if raw.startswith(codecs.BOM_UTF8):
        raise SettingsError(
            f"設定ファイル {shown} は「UTF-8 (BOM 付き)」で保存されています。BOM なしの UTF-8 で保存し直してください。{SAVE_AS_UTF8}"
        )
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise SettingsError(
            f"設定ファイル {shown} は「UTF-16 (Unicode)」で保存されています。BOM なしの UTF-8 で保存し直してください。{SAVE_AS_UTF8}"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        try:
            raw.decode("cp932")
            guess = "Shift_JIS(メモ帳の「ANSI」)で保存されているようです"
        except UnicodeDecodeError:
            guess = "UTF-8 ではない文字コードで保存されています"
        raise SettingsError(
            f"設定ファイル {shown} は UTF-8 で読めません({line} 行目)。{guess}。BOM なしの UTF-8 で保存し直してください。{SAVE_AS_UTF8}"
        ) from None


# tomllib's messages (Python 3.11-3.13) -> what is wrong, in Japanese
_SYNTAX_JA = [
    ("Invalid value", '値の書き方が正しくありません。文字列は "R6" のように " で囲み、数は 50、日付は 2025-05-30 のように書きます'),
    ("Expected '=' after a key", "「項目名 = 値」の形になっていません"),
    ("Invalid statement", "「項目名 = 値」でも「[節の名前]」でもない行です"),
    ("Invalid initial character for a key part", "項目名に使えない文字があります(半角英数字と _ で書きます)"),
    ("Cannot overwrite a value", "同じ項目が 2 回書かれています。どちらか一方を消してください"),
    ("Cannot declare", "同じ節が 2 回書かれています。ひとつにまとめてください"),
    ("Cannot redefine namespace", "同じ節が 2 回書かれています。ひとつにまとめてください"),
    ("Cannot mutate immutable namespace", "同じ節や項目が 2 回書かれています。ひとつにまとめてください"),
    ("Duplicate inline table key", "{ } の中に同じ項目が 2 回書かれています"),
    ("Unterminated string", '文字列を囲む " が閉じていません'),
    ("Unclosed array", "配列の [ ] が閉じていません"),
    ("Unclosed inline table", "{ } が閉じていません"),
    ("Expected ']' at the end of a table declaration", "節の名前の [ ] が閉じていません"),
    ("Expected ']]' at the end of an array declaration", "[[ ]] が閉じていません"),
    ("Invalid date or datetime", "日付の書き方が正しくありません。2025-05-30 のように書きます"),
    ("Illegal character '\\n'", '文字列を囲む " が閉じていません'),
    ("Illegal character", "使えない文字(制御文字)が入っています"),
    ("Found invalid character", "使えない文字が入っています"),
]
_BACKSLASH = ("Unescaped '\\' in a string", "Invalid hex value", "Escaped character is not a Unicode scalar value")
_FULLWIDTH = "＝”“’‘　［］｛｝，＃"


def _syntax_message(shown: str, text: str, detail: str) -> str:
    lines = text.splitlines()
    found = re.search(r"at line (\d+)", detail)
    lineno = int(found[1]) if found else None
    reason = next((ja for en, ja in _SYNTAX_JA if detail.startswith(en)), "TOML の書き方になっていません")
    if detail.startswith(_BACKSLASH):
        reason = (
            '" " の中では \\ が特別な意味を持ちます。Windows の場所は \' \' で囲むか(例: inbox = \'C:\\受信\')、'
            '/ で区切ってください(例: inbox = "C:/受信")'
        )
    if lineno is None and detail.startswith("Cannot overwrite"):
        lineno = _Lines(text).duplicate()
    head = f"設定ファイル {shown} の {lineno} 行目" if lineno else f"設定ファイル {shown}(ファイルの終わり)"
    message = f"{head}が読めません: {reason}。"
    if lineno and 0 < lineno <= len(lines):
        line = lines[lineno - 1]
        message += f"\n  {lineno} 行目: {line.strip()}"
        if any(ch in line for ch in _FULLWIDTH):
            message += "\n  全角の記号(＝ ” ［ ］ や全角スペース)が入っています。記号とスペースは半角で書いてください。"
    return message + f"\n  (詳細: {detail})"


class _Lines:
    """Where sections and keys are written in the file, for line numbers in messages (simple forms only)."""

    HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_\-]+)\s*\]")
    KEY = re.compile(r"""^\s*(["']?)([A-Za-z0-9_\-]+)\1\s*=""")

    def __init__(self, text: str) -> None:
        self.where: dict[tuple[str | None, str | None], int] = {}
        self.order: list[tuple[tuple[str | None, str | None], int]] = []
        section: str | None = None
        for n, line in enumerate(text.splitlines(), 1):
            if line.lstrip().startswith("[["):
                section = None
                continue
            if m := self.HEADER.match(line):
                section = m[1]
                self.order.append(((section, None), n))
            elif m := self.KEY.match(line):
                self.order.append(((section, m[2]), n))
        for place, n in reversed(self.order):
            self.where[place] = n

    def line(self, section: str | None, key: str | None = None) -> str:
        n = self.where.get((section, key))
        return f"({n} 行目)" if n else ""

    def duplicate(self) -> int | None:
        seen: set[tuple[str | None, str | None]] = set()
        for place, n in self.order:
            if place in seen and place[1] is not None:
                return n
            seen.add(place)
        return None


def _owner_of(key: str) -> str | None:
    return next((section for section, keys in SCHEMA.items() if key in keys), None)


def _suggest(word: str, candidates: list[str]) -> str | None:
    close = difflib.get_close_matches(word, candidates, n=1) or difflib.get_close_matches(
        word.lower(), candidates, n=1
    )
    return close[0] if close else None


def _unknown_section(name: str) -> str:
    owner = _owner_of(name)
    if owner:
        return f"{name} は [{owner}] の項目です。節ではありません。[{owner}] の下に「{name} = 値」と書いてください。"
    close = _suggest(name, list(SCHEMA))
    hint = f"[{close}] のまちがいではありませんか。" if close else ""
    return f"不明な節です。{hint}書ける節: " + "、".join(f"[{s}]" for s in SCHEMA)


def _unknown_key(section: str, key: str) -> str:
    owner = _owner_of(key)
    if owner:
        return f"{key} は [{owner}] の項目です。[{owner}] の下に移してください。"
    close = _suggest(key, list(SCHEMA[section]))
    if close:
        return f"不明な項目です。{close} のまちがいではありませんか。"
    elsewhere = _suggest(key, [k for s in SCHEMA.values() for k in s])
    if elsewhere:
        return f"不明な項目です。[{_owner_of(elsewhere)}] の {elsewhere} のまちがいではありませんか。"
    return f"不明な項目です。[{section}] に書ける項目: " + "、".join(SCHEMA[section])


def check(data: dict[str, Any], lines: _Lines | None = None) -> tuple[dict[str, Any], list[str]]:
    """Check parsed TOML against SCHEMA: the checked values by Settings field, and every problem (one line each)."""
    lines = lines or _Lines("")
    values: dict[str, Any] = {}
    problems: list[str] = []
    for section, body in data.items():
        keys = SCHEMA.get(section)
        if keys is None or not isinstance(body, dict):
            if keys is None and isinstance(body, dict | list):
                problems.append(f"[{section}]{lines.line(section)}: {_unknown_section(section)}")
            elif keys is None:
                owner = _owner_of(section)
                problem = (
                    f"どの節にも入っていません。[{owner}] の行の下に書いてください。"
                    if owner
                    else "不明な項目です(どの節にも入っていません)。書ける節: " + "、".join(f"[{s}]" for s in SCHEMA)
                )
                problems.append(f"{section} = {_show(body)}{lines.line(None, section)}: {problem}")
            else:
                problems.append(
                    f"{section} = {_show(body)}{lines.line(None, section)}: [{section}] は節です。"
                    f"「[{section}]」の行を書き、その下に「項目名 = 値」を書いてください。"
                )
            continue
        for key, value in body.items():
            place = f"[{section}] {key} = {_show(value)}{lines.line(section, key)}"
            spec = keys.get(key)
            if spec is None:
                problems.append(f"{place}: {_unknown_key(section, key)}")
                continue
            try:
                values[spec.target] = CHECKS[spec.kind](key, spec, value)
            except _Bad as bad:
                problems.append(f"{place}: {bad}")
    return values, problems


def _build(values: dict[str, Any], base: Path) -> Settings:
    """Settings from checked values; paths are relative to the settings file's folder."""
    limits = {name[7:]: v for name, v in values.items() if name.startswith("limits.")}
    mailbox = {name[8:]: v for name, v in values.items() if name.startswith("mailbox.")}
    top = {name: v for name, v in values.items() if not name.startswith(("limits.", "mailbox."))}
    for name in ("ca_file", "password_file"):
        if mailbox.get(name) is not None:
            mailbox[name] = base / mailbox[name]
    for name in ("inbox", "outbox", "schemas"):
        given = top.get(name, getattr(Settings, name))
        if given is not None:
            top[name] = base / given
    if "parse_timeout_s" in limits:
        limits["parse_timeout_s"] = float(limits["parse_timeout_s"])
    return Settings(**top, limits=Limits(**limits), mailbox=MailboxSettings(**mailbox))
