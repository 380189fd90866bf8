"""Dates as Japanese staff read and write them: 令和7年5月30日(金), and back.

Every date a person reads (templates, `status`, reminders, the console) is shown through `wareki`
or `wareki_time`; every date a person types (`--deadline`, `[plan] deadline`) is read by
`parse_day`, which accepts 2025-05-30, 2025/05/30 and 令和7年5月30日 (full-width digits too).
Files meant for programs (run-report.json, last-run.json) keep ISO 8601.
Imports only the standard library, so settings and `--help` stay fast.
"""

from __future__ import annotations

import re
from datetime import date, datetime

WEEKDAYS = "月火水木金土日"
REIWA_START = date(2019, 5, 1)

_WESTERN = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})")
_REIWA = re.compile(r"令和\s*(元|\d{1,2})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日(?:\s*[(（][月火水木金土日][)）])?")
# Full-width digits and slashes as an IME types them; only these are folded (never NFKC a whole text).
_FOLD = str.maketrans("０１２３４５６７８９／－", "0123456789/-")


def wareki(day: date) -> str:
    """令和7年5月30日(金). 令和 only; earlier dates in 西暦 (2019年4月30日(火))."""
    weekday = WEEKDAYS[day.weekday()]
    if day >= REIWA_START:
        n = day.year - 2018
        return f"令和{'元' if n == 1 else n}年{day.month}月{day.day}日({weekday})"
    return f"{day.year}年{day.month}月{day.day}日({weekday})"


def wareki_month(day: date) -> str:
    """令和8年3月 (令和元年5月); a month before 令和 in 西暦 (2019年4月)."""
    if day >= REIWA_START.replace(day=1):
        n = day.year - 2018
        return f"令和{'元' if n == 1 else n}年{day.month}月"
    return f"{day.year}年{day.month}月"


def wareki_time(moment: datetime | str) -> str:
    """令和7年5月30日(金) 2:05 in the moment's own (local) time; an ISO text that is not a time is
    returned as it is."""
    if isinstance(moment, str):
        try:
            when = datetime.fromisoformat(moment)
        except ValueError:
            return moment
    else:
        when = moment
    return f"{wareki(when.date())} {when.hour}:{when.minute:02d}"


class DateFormError(ValueError):
    """Text that is not a date in one of the accepted forms, or a day that does not exist."""


def parse_day(text: str) -> date:
    """2025-05-30, 2025/05/30 (also 2025/5/30) or 令和7年5月30日 (令和元年 too) → date.

    Raises DateFormError: `args[0]` is "form" (not one of the forms) or "day" (no such day)."""
    folded = text.translate(_FOLD).strip()
    if m := _WESTERN.fullmatch(folded):
        year, month, day = int(m[1]), int(m[2]), int(m[3])
    elif m := _REIWA.fullmatch(folded):
        year = 2019 if m[1] == "元" else int(m[1]) + 2018
        month, day = int(m[2]), int(m[3])
    else:
        raise DateFormError("form")
    try:
        found = date(year, month, day)
    except ValueError:
        raise DateFormError("day") from None
    if _REIWA.fullmatch(folded) and found < REIWA_START:
        raise DateFormError("day")  # 令和元年4月30日 is still 平成
    return found
