"""Names for the files we write: valid on Windows, bounded in length, distinct.

One job: turn any name (a department's file name, a zip member or an e-mail attachment name, an
office name in a template's name) into a file name that Windows accepts and that fits any
folder:

* no < > : " / \\ | ? * and no control characters (each becomes "_");
* no reserved device name (CON, PRN, AUX, NUL, COM1–COM9, LPT1–LPT9, also with an extension,
  in any case, and the superscript COM¹ … forms): "_" is put in front;
* no trailing dot or space (Windows drops them silently), no leading or trailing blanks, and
  no leading "." or "~$" (hidden on POSIX, Excel's lock-file prefix, our temporaries' prefix);
* at most MAX_NAME_BYTES (120) bytes of UTF-8 including the extension. A longer name is cut at
  a character boundary and gets "_" and the first 8 hex digits of the sha1 of the original
  name where it was cut, so two long names that share a prefix stay distinct. The extension
  (".xlsx") is kept. 120 bytes leave room in the 255 bytes NTFS and ext4 allow for our
  temporaries' ".~tmp-…-<pid>-<hex>" and the "_YYYYMMDD-HHMMSS" of a locked file's sibling.

A name read from the disk that is not text (bytes that are not UTF-8: a Latin-1 name from an old
share, or any non-ASCII name under an ASCII locale) arrives with those bytes as lone surrogates
(Python's surrogateescape). `shown_name` gives the text to show and report: the name decoded as
UTF-8 where it is, each run of other bytes as "\ufffd" followed by their hex in brackets
("caf\udce9.xlsx" → "caf\ufffd[E9].xlsx"). The real name stays with the path that opens the file.

A name that is already valid and short comes back unchanged. `unique_filename` adds "_2",
"_3", … for names already used in a folder (compared case-insensitively, as Windows does).

    >>> safe_filename("CON.xlsx")
    '_CON.xlsx'
    >>> safe_filename('評価:R6?.xlsx ')
    '評価_R6_.xlsx'
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_NAME_BYTES = 120
_MAX_SUFFIX_BYTES = 16  # ".xlsx", ".xlsm", ".json": a longer "extension" is part of the name

_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{kind}{n}" for kind in ("COM", "LPT") for n in (*"123456789", "¹", "²", "³")]
)
_SUFFIX = re.compile(r"\.[0-9A-Za-z]{1,15}$")


def safe_filename(name: str, *, max_bytes: int = MAX_NAME_BYTES) -> str:
    """`name` as a valid Windows file name of at most `max_bytes` UTF-8 bytes (see the module doc)."""
    original = name
    # Lone surrogates (a broken name from a zip) cannot be written in UTF-8 or UTF-16.
    name = "".join(ch for ch in name if not 0xD800 <= ord(ch) <= 0xDFFF)
    name = _UNSAFE.sub("_", name).strip()
    match = _SUFFIX.search(name)
    if match and match.start() > 0:
        stem, suffix = name[: match.start()], match.group()
    else:
        stem, suffix = name, ""
    stem = stem.rstrip(" .")
    if stem.startswith((".", "~$")):
        stem = "_" + stem.lstrip(".")
    if not stem:
        stem = "_"
    base = stem.split(".", 1)[0].rstrip(" ").upper()
    if base in _RESERVED:
        stem = "_" + stem
    budget = max_bytes - len(suffix.encode("utf-8"))
    if len(stem.encode("utf-8")) > budget:
        tag = "_" + hashlib.sha1(original.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        stem = _cut(stem, budget - len(tag)).rstrip(" .") + tag
    return stem + suffix


_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_RUN = re.compile("[\udc80-\udcff]+")


def is_text(name: str) -> bool:
    """Whether `name` holds no lone surrogate (no byte that could not be decoded)."""
    return _SURROGATE.search(name) is None


def undecodable_bytes(name: str) -> str:
    """The hex of the bytes of `name` that are not UTF-8 ("E9 FC"), "" when there are none."""
    return " ".join(
        f"{ord(ch) - 0xDC00:02X}"
        for run in _ESCAPED_RUN.findall(_decoded(name))
        for ch in run
    )


def shown_name(name: str) -> str:
    """`name` as text that can be shown, written and compared (see the module doc). Two names that
    differ in their bytes stay different."""
    if is_text(name):
        return name
    return _ESCAPED_RUN.sub(
        lambda m: "\ufffd[" + "".join(f"{ord(ch) - 0xDC00:02X}" for ch in m.group()) + "]", _decoded(name)
    )


def _decoded(name: str) -> str:
    """`name`'s bytes (as the OS gave them, whatever the locale) decoded as UTF-8 where they are."""
    # Lone surrogates that are not escaped bytes (a broken UTF-16 name) cannot be bytes: each is "\ufffd".
    name = re.sub("[\ud800-\udc7f\udd00-\udfff]", "\ufffd", name)
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")


def unique_filename(name: str, used: set[str]) -> str:
    """`name`, or `name` with "_2", "_3", … before the extension, not yet in `used`.

    `used` holds the casefolded names already taken in the folder (Windows compares names
    without case); the chosen name is added to it. The numbered name stays within
    MAX_NAME_BYTES (the stem is cut further, as `safe_filename` does).
    """
    match = _SUFFIX.search(name)
    stem, suffix = (name[: match.start()], match.group()) if match and match.start() > 0 else (name, "")
    candidate, n = name, 1
    while candidate.casefold() in used:
        n += 1
        number = f"_{n}"
        budget = MAX_NAME_BYTES - len((number + suffix).encode("utf-8"))
        candidate = _cut(stem, max(budget, 1)).rstrip(" .") + number + suffix
    used.add(candidate.casefold())
    return candidate


def _cut(text: str, limit: int) -> str:
    """The longest prefix of `text` of at most `limit` UTF-8 bytes, not splitting a character
    or separating a combining mark (dakuten) from its base."""
    end, size = 0, 0
    for ch in text:
        size += len(ch.encode("utf-8"))
        if size > limit:
            break
        end += 1
    while 0 < end < len(text) and unicodedata.combining(text[end]):
        end -= 1  # the cut fell before a mark: drop its base too rather than change the letter
    return text[:end]
