"""pipeline.celltext: the one set of rules for text in the cells we write.

The writers' own tests (test_master, test_templates, test_feedback) read real workbooks back;
these pin the rules themselves.
"""

from __future__ import annotations

import pytest

from pipeline import celltext
from pipeline.celltext import (
    EXCEL_MAX_CHARS,
    approx_lines,
    cell_name,
    check_fits,
    clean_xml,
    column_letters,
    display_width,
    fit_width,
    fits_in_cell,
    needs_quote,
    row_height,
    truncate_to_cell,
    utf16_len,
    wrapped_lines,
)

# Texts Excel would turn into a formula, a DDE call or a link if someone retyped them.
FORMULA_LIKE = [
    "=1+1",
    "＝SUM(A1)",
    "＋1 全角",
    "－1 全角",
    "＠SUM(A1) 全角",
    " =1+1",
    "\u3000＝1+1",
    "\t=1+1",
    "\tタブで始まる",
    "\r復帰で始まる",
    "\n改行で始まる",
    "@SUM(A1:A2)",
    "+81-42-000-0000",
    "-2件",
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://x","y")',
    "\u00a0\u200b\ufeff=1",
]
PLAIN = ["", "事業を実施した。", "A", "1+1=2", "{=1+1}", "http://example.com/", "　全角スペースのみ　", "   "]


@pytest.mark.parametrize("text", FORMULA_LIKE)
def test_formula_like_texts_need_a_quote(text: str) -> None:
    assert needs_quote(text)


@pytest.mark.parametrize("text", PLAIN)
def test_plain_texts_need_no_quote(text: str) -> None:
    assert not needs_quote(text)


def test_excel_limit_counts_utf16_units() -> None:
    yoshi = "\U00020bb7"  # 𠮷, outside the BMP: two UTF-16 units
    assert utf16_len(yoshi) == 2 and utf16_len("あa") == 2
    assert not fits_in_cell(yoshi * 17_000)  # 17,000 characters, 34,000 units
    assert fits_in_cell("a" * EXCEL_MAX_CHARS) and fits_in_cell(yoshi * 16_383 + "a")
    assert not fits_in_cell("a" * (EXCEL_MAX_CHARS + 1))
    assert fits_in_cell("あ" * EXCEL_MAX_CHARS)  # BMP characters are one unit each


def test_truncate_never_splits_a_surrogate_pair() -> None:
    yoshi = "\U00020bb7"
    cut = truncate_to_cell("a" + yoshi * 17_000)
    assert utf16_len(cut) == EXCEL_MAX_CHARS  # "a" + 16,383 pairs
    assert cut == "a" + yoshi * 16_383
    cut = truncate_to_cell(yoshi * 17_000)
    assert cut == yoshi * 16_383 and utf16_len(cut) == EXCEL_MAX_CHARS - 1
    assert truncate_to_cell("短い") == "短い"


def test_clean_xml_drops_only_what_xml_cannot_hold() -> None:
    assert clean_xml("a\x00b\x01c\x0bd\x1fe\ufffef\ud800g") == "abcdefg"
    assert clean_xml("タブ\t改行\n復帰\r") == "タブ\t改行\n復帰\r"


def test_display_width_counts_full_width_and_ambiguous_as_two() -> None:
    assert display_width("abc") == 3
    assert display_width("あいう") == 6
    assert display_width("ＡＢ") == 4  # full-width Latin
    assert display_width("○△") == 4  # ambiguous width: shown full width by Japanese fonts
    assert display_width("ｱｲｳ") == 3  # half-width kana
    assert fit_width(10, ["あ" * 20], cap=30) == 30
    assert fit_width(10, ["ab"], cap=30) == 10
    assert fit_width(10, [], cap=30) == 10


def test_line_estimates() -> None:
    assert approx_lines("", 20) == 1
    assert approx_lines("あ" * 9, 10) == 3  # 18 units over 9 usable: generous by design
    assert approx_lines("a\nb", 20) == 2
    assert wrapped_lines("あ" * 10, 21.5) == 1  # 20 units in 20 usable
    assert wrapped_lines("あ" * 11, 21.5) == 2
    assert wrapped_lines("一行目\n\n三行目", 40) == 3


def test_row_height_uses_the_font_size_and_caps_at_409() -> None:
    pad = celltext.ROW_PADDING
    assert row_height([("あ", 20)], 11) == pytest.approx(11 * celltext.LINE_SPACING + 11 * pad)
    assert row_height([("あ", 20)], 10, min_lines=4) == pytest.approx(4 * 10 * celltext.LINE_SPACING + 10 * pad)
    assert row_height([("あ" * 100, 21.5)], 10, exact=True) == pytest.approx(10 * 10.4 + 4)  # 200 in 20
    assert row_height([("あ" * 100_000, 10)], 11) == celltext.MAX_ROW_HEIGHT
    assert row_height([], 11) == pytest.approx(11 * celltext.LINE_SPACING + 11 * pad)


def test_column_letters_count_from_one_as_excel_names_columns():
    assert [column_letters(n) for n in (1, 26, 27, 52, 53, 256, 702, 703, 16_384)] == [
        "A", "Z", "AA", "AZ", "BA", "IV", "ZZ", "AAA", "XFD"]
    assert cell_name(1, 1) == "A1" and cell_name(12, 28) == "AB12"
    with pytest.raises(ValueError):
        column_letters(0)  # a 0-based caller that forgot its + 1 is caught, not shown as ""


def test_check_fits_refuses_a_text_over_the_limit_naming_its_place_and_length():
    yoshi = "\U00020bb7"  # 𠮷: two UTF-16 units
    check_fits(yoshi * 16_383 + "a", "セル F4")  # 32,767 units: fits, nothing raised
    check_fits("", "セル F4")
    with pytest.raises(ValueError) as caught:
        check_fits(yoshi * 17_000, "シート「評価一覧」のセル F4")
    message = str(caught.value)
    assert message.startswith("シート「評価一覧」のセル F4: 34,000 文字あり")
    assert "32,767" in message
