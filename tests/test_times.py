"""The zone rule, stated once in pipeline.times: a time with an offset is that moment; one without
is read in the zone its writer meant (core.xml: UTC; meta.xml and mtimes: this machine's; a mail
Date: Japan, "-0000": UTC). Times compare as moments, never as strings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from pipeline.times import (
    JST,
    local_iso,
    local_moment_iso,
    mail_zone,
    moment,
    now_iso,
    shown_moment,
    shown_wall_clock,
    wall_clock,
)


def test_an_unzoned_core_xml_time_is_utc_and_moments_compare_across_offsets() -> None:
    saved = moment("2025-05-27T02:00:05Z")
    assert saved == datetime(2025, 5, 27, 2, 0, 5, tzinfo=UTC)
    assert moment("2025-05-27T02:00:05") == saved  # W3CDTF without an offset: UTC
    received = moment("2025-05-27T11:00:05+09:00")
    assert received == saved  # the same moment, though the strings differ
    assert moment("") is None and moment("令和7年5月27日") is None and moment(" 2025-05-27 ") is not None


def test_a_mail_date_without_a_zone_is_japan_and_minus_zero_is_utc() -> None:
    assert mail_zone("Tue, 27 May 2025 11:00:05") is JST
    assert mail_zone("Tue, 27 May 2025 02:00:05 -0000") is UTC
    assert JST.utcoffset(None) == timedelta(hours=9)


def test_local_times_carry_this_machines_offset() -> None:
    stamp = datetime(2025, 5, 27, 2, 0, 5, tzinfo=UTC).timestamp()
    text = local_iso(stamp)
    assert moment(text) == datetime(2025, 5, 27, 2, 0, 5, tzinfo=UTC)
    assert datetime.fromisoformat(text).utcoffset() == datetime.fromtimestamp(stamp).astimezone().utcoffset()
    ods = local_moment_iso("2025-05-27T11:00:05.123456789")  # LibreOffice: local, no zone, nanoseconds
    assert datetime.fromisoformat(ods).tzinfo is not None and ods.startswith("2025-05-27T11:00:05")
    assert local_moment_iso("2025-05-27T11:00:05+09:00") == "2025-05-27T11:00:05+09:00"
    assert local_moment_iso("昨日") == ""
    assert datetime.fromisoformat(now_iso()).tzinfo is not None


def test_a_moment_is_shown_in_this_machines_zone() -> None:
    when = datetime(2025, 5, 27, 2, 0, 5, tzinfo=timezone(timedelta(hours=9)))
    assert shown_moment(when) == when.astimezone().strftime("%Y-%m-%d %H:%M")
    assert len(shown_moment(when)) == len("2025-05-27 02:00")


def test_a_workbook_shows_the_wall_clock_time_a_time_was_written_in() -> None:
    received = "2025-05-27T11:00:05+09:00"  # a department's mail, received in Tokyo
    assert wall_clock(received) == datetime(2025, 5, 27, 11, 0, 5)  # Excel has no zones: as written
    assert shown_wall_clock(received) == "2025-05-27 11:00"
    assert shown_wall_clock("不明") == "不明" and wall_clock("") is None
