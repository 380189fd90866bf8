"""pipeline.filenames: output names valid on Windows, at most 120 bytes, distinct."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.filenames import MAX_NAME_BYTES, safe_filename, unique_filename

# A Japanese mail subject pasted into an attachment's name: 250 bytes of UTF-8.
LONG = "【至急】令和6年度地域福祉計画進捗状況及び評価表の提出について(再送)_自立生活支援課_" * 3
LONG_NAME = LONG.encode("utf-8")[:245].decode("utf-8", "ignore") + ".xlsx"

_FORBIDDEN = set('<>:"/\\|?*')
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(1, 10)), *(f"LPT{n}" for n in range(1, 10))}


def assert_valid_on_windows(name: str) -> None:
    assert name and len(name.encode("utf-8")) <= MAX_NAME_BYTES, name
    assert not _FORBIDDEN & set(name), name
    assert not any(ord(ch) < 32 or ord(ch) == 127 for ch in name), name
    assert not name.endswith((".", " ")), name
    assert not name.startswith((".", "~$", " ")), name
    assert name.split(".")[0].rstrip(" ").upper() not in _RESERVED, name


def test_a_long_japanese_attachment_name_is_cut_with_a_hash_and_keeps_its_extension() -> None:
    assert 245 <= len(LONG_NAME.encode("utf-8")) <= 250
    name = safe_filename(LONG_NAME)
    assert len(name.encode("utf-8")) <= 120 and name.endswith(".xlsx")
    assert name.startswith(LONG_NAME[:20])
    assert_valid_on_windows(name)
    other = LONG_NAME[:-6] + "い.xlsx"  # the same long prefix, a different ending
    assert safe_filename(other) != name
    assert safe_filename(LONG_NAME) == name  # deterministic: a rerun overwrites the same copy


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("CON.xlsx", "_CON.xlsx"),
        ("con.xlsx", "_con.xlsx"),
        ("Lpt9.tar.gz", "_Lpt9.tar.gz"),
        ("NUL", "_NUL"),
        ("COM1 .xlsx", "_COM1.xlsx"),
        ("a:b?.xlsx", "a_b_.xlsx"),
        ('<"評価"|表>*.xlsx', "__評価__表__.xlsx"),
        ("name. ", "name"),
        ("評価表.xlsx. ", "評価表.xlsx"),
        ("  評価表.xlsx  ", "評価表.xlsx"),
        ("タブ\t改行\n.xlsx", "タブ_改行_.xlsx"),
        (".~tmp-x.xlsx", "_~tmp-x.xlsx"),
        ("~$評価表.xlsx", "_~$評価表.xlsx"),
        ("...", "_"),
        ("", "_"),
        ("R6_地域福祉計画評価_指導室.xlsx", "R6_地域福祉計画評価_指導室.xlsx"),  # valid names are kept
        ("COM10.xlsx", "COM10.xlsx"),
        ("CONSOLE.xlsx", "CONSOLE.xlsx"),
    ],
)
def test_names_are_made_valid_on_windows(name: str, expected: str) -> None:
    assert safe_filename(name) == expected
    assert_valid_on_windows(safe_filename(name))


def test_a_cut_never_separates_a_dakuten_from_its_letter() -> None:
    name = safe_filename("カ\u3099" * 60 + ".xlsx")  # decomposed ガ (as macOS zips store names)
    stem = name[: -len("_12345678.xlsx")]
    assert stem.endswith("\u3099") and len(name.encode("utf-8")) <= 120


@given(st.text(max_size=200))
def test_any_name_becomes_a_valid_one(name: str) -> None:
    assert_valid_on_windows(safe_filename(name))


def test_unique_names_are_numbered_case_insensitively_and_stay_bounded() -> None:
    used: set[str] = set()
    assert unique_filename("評価表.xlsx", used) == "評価表.xlsx"
    assert unique_filename("評価表.XLSX", used) == "評価表_2.XLSX"  # the same file on Windows
    assert unique_filename("評価表.xlsx", used) == "評価表_3.xlsx"
    long = safe_filename(LONG_NAME)
    first, second = unique_filename(long, used), unique_filename(long, used)
    assert first == long and second != first and second.endswith("_2.xlsx")
    assert len(second.encode("utf-8")) <= 120


def test_a_zip_member_with_a_250_byte_name_gets_a_feedback_copy(tmp_path, demo_returns) -> None:
    # The hazard: the copy was named after the member (250 bytes), so its temporary (".~tmp-…-<pid>-
    # <hex>.xlsx") exceeded the 255 bytes a file name may have: ENAMETOOLONG, and no copy.
    import io
    import zipfile

    from openpyxl import load_workbook

    from pipeline.runner import run_validate
    from pipeline.settings import Settings

    source = demo_returns / "R6_地域福祉計画評価_指導室.xlsx"
    wb = load_workbook(source)
    wb["記入シート"]["G4"] = "E"  # one error, so that a copy is written
    buffer = io.BytesIO()
    wb.save(buffer)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    other = LONG_NAME[:-6] + "い.xlsx"
    with zipfile.ZipFile(inbox / "返送.zip", "w") as archive:
        archive.writestr(LONG_NAME, buffer.getvalue())
        archive.writestr(other, buffer.getvalue())
        archive.writestr("CON.xlsx", buffer.getvalue())
    feedback = tmp_path / "feedback"
    _report, written = run_validate([inbox], Settings(inbox=inbox, outbox=tmp_path / "outbox"), feedback)
    names = sorted(p.name for p in written)
    # named office_message_member: the prefix is the office (指導室's template) and the zip it came in
    assert names == sorted([safe_filename(f"指導室_返送_{LONG_NAME}"), safe_filename(f"指導室_返送_{other}"),
                            "指導室_返送_CON.xlsx"])
    for path in written:
        assert len(path.name.encode("utf-8")) <= 120 and path.suffix == ".xlsx"
        assert load_workbook(path).sheetnames[0] == "エラー一覧"
