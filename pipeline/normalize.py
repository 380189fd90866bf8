"""Normalising what people type into Excel: width, spaces, measure codes, project numbers, ratings.

Never NFKC a whole cell: NFKC turns ② into 2 and ㈱ into (株), which destroys measure codes and
names. We fold only the full-width ASCII block (Ａ→A, （１）→(1), ／→/) with jaconv, and only on
key fields; free text is kept as written apart from Excel's `_x000D_` artefact and control
characters. Pure functions; imports nothing from the package.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime

import jaconv

CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
PARENTHESIZED = "⑴⑵⑶⑷⑸⑹⑺⑻⑼⑽⑾⑿⒀⒁⒂⒃⒄⒅⒆⒇"  # U+2474.., one character each
RATINGS = ("A", "B", "C", "D")

_SPACES = re.compile(r"[\s\u3000\u00a0\u200b\ufeff]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_X000D = re.compile(r"_x000[dD]_")
_ESCAPED = re.compile(r"_x([0-9a-fA-F]{4})_")
_RANGE = re.compile(r"^(\d{1,4})\s*[~〜～\-－‐―ー]\s*(\d{1,4})$")
_MEASURE = re.compile(r"^\((\d{1,2})\)[-/・.]?([①-⑳]|\d{1,2})$")


def fold(text: str) -> str:
    """Full-width ASCII to half-width (Ａ→A, （１）→(1), ～→~); kana, ② and ㈱ untouched."""
    return jaconv.z2h(text, kana=False, ascii=True, digit=True)


def squash(text: str) -> str:
    """Remove every space, full-width space, no-break and zero-width space."""
    return _SPACES.sub("", text)


def as_text(value: object) -> str:
    """A cell value as the text a person sees: integral floats without '.0', dates as ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def clean_text(text: str) -> tuple[str, bool, bool]:
    """Free text as written, minus Excel artefacts.

    Returns (text, had_x000d, had_control): `_x000D_` and CR-LF become LF, other `_xHHHH_`
    escapes of control characters and raw control characters are removed, surrounding
    whitespace is trimmed. Everything else, including full-width characters, is kept.
    `had_x000d` is also true for a raw CR: the reader (calamine) decodes Excel's `_x000D_`
    escape to CR, so a CR is the same artefact and its removal is a change to report.
    """
    had_x000d = bool(_X000D.search(text)) or "\r" in text
    out = _X000D.sub("", text).replace("\r\n", "\n").replace("\r", "\n")

    def unescape(m: re.Match[str]) -> str:
        ch = chr(int(m[1], 16))
        return "\x00" if _CONTROL.match(ch) else m[0]

    out = _ESCAPED.sub(unescape, out)
    had_control = bool(_CONTROL.search(out))
    out = _CONTROL.sub("", out)
    return out.strip(" \t\n\u3000"), had_x000d, had_control


def label_key(text: str) -> str:
    """Key for matching a column label tolerantly.

    '【個別事業・取り組み】' → '個別事業・取り組み'; '施策 No.' → '施策no.';
    '事業実績・評価理由\\n(令和6年度)' → '事業実績・評価理由'.
    """
    key = squash(fold(text)).lower()
    key = key.replace("【", "").replace("】", "").replace("[", "").replace("]", "")
    # "(令和6年度)", "(R6年度)", "(R6)", "(2024年度)": 年度 is optional as a whole (`年度?` alone
    # would make 年 required and miss the common "(R6)")
    key = re.sub(r"\((令和|平成|r|h)?\d+(年度?)?\)$", "", key)
    key = re.sub(r"(令和|r)\d+年度$", "", key)
    return key.replace("no.", "no").replace("no", "no.")


def nfc(text: str) -> str:
    """Canonical composition (NFC): a name saved on a Mac (NFD, が as か + ◌゙) as typed elsewhere.
    Canonical only, never NFKC: widths and ①, ㈱ stay as they are."""
    return unicodedata.normalize("NFC", text)


def same_name(a: str, b: str) -> bool:
    """Two file, folder or sheet names that are the same name, however their platform composed them."""
    return nfc(a) == nfc(b)


def department_key(text: str) -> str:
    """Key for matching a 担当課 text or an office in a name: composed (NFC), width folded, spaces
    removed, brackets unified."""
    return squash(fold(nfc(text))).replace("〔", "(").replace("〕", ")")


def parse_measure(text: str) -> str | None:
    """A measure code in any printed form to its canonical key, or None.

    >>> [parse_measure(s) for s in ["(1)②", "(1) /②", "(4) ／ ②", "（１）②", "⑴②", "(1)-2"]]
    ['(1)②', '(1)②', '(4)②', '(1)②', '(1)②', '(1)②']
    """
    s = squash(fold(text))
    if s and s[0] in PARENTHESIZED:
        s = f"({PARENTHESIZED.index(s[0]) + 1})" + s[1:]
    m = _MEASURE.match(s)
    if not m:
        return None
    second = m[2]
    number = CIRCLED.index(second) + 1 if second in CIRCLED else int(second)
    if not 1 <= number <= len(CIRCLED) or int(m[1]) < 1:
        return None
    return f"({int(m[1])}){CIRCLED[number - 1]}"


def parse_project(value: object) -> str | None:
    """A 事業No. cell to a project key: 9, 9.0, "9", "９" → "9"; "31～34", "３１~３４" → "31-34".

    Returns None when the value cannot be read as a number or a range.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value) if value > 0 else None
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and value > 0 else None
    s = squash(fold(str(value)))
    s = re.sub(r"^(事業)?(no\.?|№|#)", "", s, flags=re.IGNORECASE)
    if re.fullmatch(r"\d{1,4}(\.0+)?", s):
        n = int(float(s))
        return str(n) if n > 0 else None
    m = _RANGE.match(s)
    if m and 0 < int(m[1]) < int(m[2]):
        return f"{int(m[1])}-{int(m[2])}"
    return None


def parse_rating(value: object) -> str | None:
    """A 事業評価 cell to A–D: 'Ａ', ' b ', 'B　' → 'B'; anything else → None."""
    s = squash(fold(as_text(value))).upper()
    return s if s in RATINGS else None


# --- fiscal years named in text ----------------------------------------------------------------

_WAREKI = re.compile(r"令和\s*([0-9０-９]{1,2}|元)\s*年度")
_WESTERN = re.compile(r"((?:19|20)[0-9]{2}|[１２][０-９]{3})\s*年度")
_R_CODE = re.compile(r"(?<![A-Za-z0-9Ａ-Ｚａ-ｚ０-９])[RrＲｒ]\s*([0-9０-９]{1,2})(?=[\s_\-－.．年(（]|$)")
_RANGE_MARKS = "～~〜-－‐ー―"


def fiscal_years(text: str, *, codes: bool = False) -> list[str]:
    """The fiscal years a text names, as codes ("R5"), in order: 令和5年度, 令和元年度, 2023年度
    (令和 = Western year − 2018) and, with `codes`, file-name forms such as R5_ or Ｒ５年度.

    A range (令和4年度～令和8年度, the plan's period) names no single year and is skipped.

    >>> fiscal_years("事業実績・評価理由 (令和5年度)"), fiscal_years("2024年度 実績"), fiscal_years("R5_健康課.xlsx", codes=True)
    (['R5'], ['R6'], ['R5'])
    >>> fiscal_years("第4期計画(令和4年度～令和8年度)")
    []
    """
    found: list[tuple[int, int, str]] = []
    for m in _WAREKI.finditer(text):
        n = 1 if m[1] == "元" else int(fold(m[1]))
        found.append((m.start(), m.end(), f"R{n}"))
    for m in _WESTERN.finditer(text):
        n = int(fold(m[1])) - 2018
        if n >= 1:
            found.append((m.start(), m.end(), f"R{n}"))
    if codes:
        for m in _R_CODE.finditer(text):
            if not any(s <= m.start() < e for s, e, _ in found):
                found.append((m.start(), m.end(), f"R{int(fold(m[1]))}"))
    out = []
    for start, end, year in sorted(found):
        before = text[:start].rstrip()
        after = text[end:].lstrip()
        if (before and before[-1] in _RANGE_MARKS) or (after and after[0] in _RANGE_MARKS):
            continue
        out.append(year)
    return out


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), for short names."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]
