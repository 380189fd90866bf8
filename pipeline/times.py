"""Times as we read, compare and store them, with the zone rule stated once.

The zone rule. A time that carries an offset is that moment. A time without one is read in the
zone its writer meant:

* docProps/core.xml (W3CDTF, as Excel writes it): UTC (`moment`);
* LibreOffice's meta.xml and a file's modification time: this machine's local time, which is the
  city's (`local_iso`, `local_moment_iso`);
* an e-mail Date without a zone: Japan, where the department's mail client runs; "-0000" is UTC
  with no local offset known (RFC 5322 §3.3) (`mail_zone`).

Times are compared as moments (aware datetimes), never as strings. They are stored as ISO 8601
with their offset (`now_iso`, `local_iso`) and shown to staff in 和暦 (pipeline.wareki), in a
message as "YYYY-MM-DD HH:MM" in this machine's zone (`shown_moment`), and in a workbook as the
wall-clock time they were written in (`wall_clock`, `shown_wall_clock`: Excel has no time zones).
Standard library only.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

JST = timezone(timedelta(hours=9), "JST")


def moment(iso: str) -> datetime | None:
    """An ISO time as an aware datetime, or None when it is not one; without an offset it is UTC
    (W3CDTF, as docProps/core.xml writes it)."""
    if not iso:
        return None
    try:
        when = datetime.fromisoformat(iso.strip())
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def local_iso(when: float | datetime) -> str:
    """A timestamp or datetime as an ISO time in this machine's zone (a naive datetime is local)."""
    as_time = when if isinstance(when, datetime) else datetime.fromtimestamp(when)
    return as_time.astimezone().isoformat(timespec="seconds")


def local_moment_iso(iso: str) -> str:
    """An ISO time written in local time without a zone (LibreOffice's meta.xml dc:date) as an
    aware ISO time; "" when it is not a time."""
    try:
        when = datetime.fromisoformat(iso[:26])
    except ValueError:
        return ""
    return (when if when.tzinfo else when.astimezone()).isoformat(timespec="seconds")


def mail_zone(date_header: str) -> tzinfo:
    """The zone of an e-mail Date that names none: UTC for "-0000", else Japan's."""
    return UTC if re.search(r"-0000\b", date_header) else JST


def now_iso() -> str:
    """Now, as an ISO time in this machine's zone, to the second."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def shown_moment(when: datetime) -> str:
    """A moment as a message shows it: "2025-05-27 02:00" in this machine's zone."""
    return when.astimezone().strftime("%Y-%m-%d %H:%M")


def wall_clock(iso: str) -> datetime | None:
    """An ISO time as the wall-clock time it was written in (its offset dropped), for a workbook
    cell; None when it is not a time."""
    if not iso:
        return None
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return when.replace(tzinfo=None)


def shown_wall_clock(iso: str) -> str:
    """An ISO time as "YYYY-MM-DD HH:MM" in the zone it was written in; other text as it is."""
    when = wall_clock(iso)
    return when.strftime("%Y-%m-%d %H:%M") if when else iso
