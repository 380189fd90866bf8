"""click's own messages in Japanese: usage errors, help headings, the version line.

click marks each message it prints with gettext (`_("No such option {name!r}.")`) and looks it up
through the module-level names `_` and `ngettext` of its modules. `install()` points those names
at MESSAGES, so every usage error and help screen is Japanese while the identifiers in them
(options, commands, codes) stay as typed. A message missing here prints in English: the tests run
every kind of usage error and fail on an English word, and constraints.txt holds the tested
click. Imports only click.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

# click's message id -> Japanese. Placeholders are click's own ({name!r} shows 'name' in quotes).
MESSAGES: dict[str, str] = {
    # help screens
    "Usage:": "使い方:",
    "Options": "オプション",
    "Commands": "コマンド",
    "Positional arguments": "引数",
    "Show this message and exit.": "この説明を表示して終わります。",
    "Show the version and exit.": "バージョンを表示して終わります。",
    "%(prog)s, version %(version)s": "%(prog)s バージョン %(version)s",
    "default: {default}": "既定: {default}",
    "env var: {var}": "環境変数: {var}",
    "(dynamic)": "(実行時に決定)",
    "deprecated": "廃止予定",
    "required": "必須",
    # usage errors
    "Error: {message}": "エラー: {message}",
    "Try '{command} {option}' for help.": "説明は '{command} {option}' で表示できます。",
    "No such option: {name}": "{name} というオプションはありません。",
    "No such option {name!r}.": "{name!r} というオプションはありません。",
    "No such command {name!r}.": "{name!r} というコマンドはありません。",
    "Missing command.": "コマンドを指定してください(merge、validate など)。",
    "Missing argument": "引数がありません",
    "Missing option": "オプションがありません",
    "Missing parameter": "指定がありません",
    "Missing {param_type}": "{param_type}がありません",
    "Missing parameter: {param_name}": "{param_name} の指定がありません",
    "argument": "引数",
    "option": "オプション",
    "parameter": "指定",
    "Invalid value: {message}": "値が正しくありません: {message}",
    "Invalid value for {param_hint}: {message}": "{param_hint} の値が正しくありません: {message}",
    "Option {name!r} does not take a value.": "オプション {name!r} には値を付けません。",
    "Argument {name!r} takes {nargs} values.": "引数 {name!r} には値を {nargs} 個指定します。",
    "Value must be an iterable.": "値を並べて指定してください。",
    "Invalid start character for option ({option})": "オプションの先頭の文字が正しくありません({option})",
    "Did you mean {possibility}?": "{possibility} のまちがいではありませんか。",
    "(Did you mean one of: {possibilities}?)": "({possibilities} のどれかのまちがいではありませんか。)",
    "Got unexpected extra argument ({args})": "余分な引数があります({args})",
    "Got unexpected extra arguments ({args})": "余分な引数があります({args})",
    "Option {name!r} requires an argument.": "オプション {name!r} には値が必要です。",
    "Option {name!r} requires {nargs} arguments.": "オプション {name!r} には値が {nargs} 個必要です。",
    "Takes {nargs} values but 1 was given.": "値を {nargs} 個指定しますが、1 個です。",
    "Takes {nargs} values but {len} were given.": "値を {nargs} 個指定しますが、{len} 個です。",
    "{value!r} is not {choice}.": "{value!r} は指定できません({choice} を指定します)。",
    "{value!r} is not one of {choices}.": "{value!r} は指定できません({choices} のどれかを指定します)。",
    "Choose from:\n\t{choices}": "次から選んでください:\n\t{choices}",
    "{value!r} does not match the format {format}.": "{value!r} は {format} の形ではありません。",
    "{value!r} does not match the formats {formats}.": "{value!r} は {formats} のどれの形でもありません。",
    "{value!r} is not a valid {number_type}.": "{value!r} は{number_type}ではありません。",
    "integer": "整数",
    "float": "数",
    "{value} is not in the range {range}.": "{value} は範囲 {range} の外です。",
    "{value!r} is not a valid boolean.": "{value!r} は真偽値(yes / no)ではありません。",
    "{value!r} is not a valid UUID.": "{value!r} は UUID ではありません。",
    "{len_type} values are required, but {len_value} was given.": "値が {len_type} 個必要ですが、{len_value} 個です。",
    "{len_type} values are required, but {len_value} were given.": "値が {len_type} 個必要ですが、{len_value} 個です。",
    "file": "ファイル",
    "directory": "フォルダー",
    "path": "パス",
    "{name} {filename!r} does not exist.": "{name} {filename!r} がありません。場所と名前を確かめてください。",
    "{name} {filename!r} is a file.": "{name} {filename!r} はファイルです。フォルダーを指定してください。",
    "{name} {filename!r} is a directory.": "{name} {filename!r} はフォルダーです。ファイルを指定してください。",
    "{name} {filename!r} is not readable.": "{name} {filename!r} を読めません。アクセス権を確かめてください。",
    "{name} {filename!r} is not writable.": "{name} {filename!r} に書き込めません。アクセス権を確かめてください。",
    "{name} {filename!r} is not executable.": "{name} {filename!r} は実行できません。",
    "Could not open file {filename!r}: {message}": "ファイル {filename!r} を開けません: {message}",
    "Aborted!": "中断しました。",
}

_MODULES = ("core", "exceptions", "parser", "types", "formatting", "decorators", "termui", "utils")


def gettext(message: str) -> str:
    return MESSAGES.get(message, message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return gettext(singular if n == 1 else plural)


def display_width(text: str) -> int:
    """Columns a text takes on a console: full-width characters (漢字, かな, ＞) take two, so the
    help screen's columns line up under Japanese option values."""
    import unicodedata

    from click._compat import strip_ansi

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in strip_ansi(text))


def install() -> None:
    """Point click's message lookups at MESSAGES, and its column measure at display_width (idempotent)."""
    formatting = importlib.import_module("click.formatting")
    formatting.term_len = display_width  # type: ignore[attr-defined]
    for name in _MODULES:
        try:
            module = importlib.import_module(f"click.{name}")
        except ImportError:  # pragma: no cover - a click without that module
            continue
        lookups: dict[str, Callable[..., str]] = {"_": gettext, "ngettext": ngettext}
        for attr, func in lookups.items():
            if hasattr(module, attr):
                setattr(module, attr, func)
