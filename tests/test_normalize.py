"""The normaliser: what people type into Excel, read as one canonical value (pure functions)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.normalize import (
    CIRCLED,
    as_text,
    clean_text,
    department_key,
    fold,
    label_key,
    parse_measure,
    parse_project,
    parse_rating,
    squash,
)

# --- fold / squash: width and spaces, never NFKC -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Ａ", "A"),
        ("（１）②", "(1)②"),  # the circled number is kept: NFKC would make it 2
        ("㈱ケアサポート", "㈱ケアサポート"),  # NFKC would make it (株)
        ("⑴②", "⑴②"),
        ("３１～３４", "31~34"),
        ("(4) ／ ②", "(4) / ②"),
        ("施策Ｎｏ．", "施策No."),
        ("ｶﾅ　カナ", "ｶﾅ カナ"),  # half-width kana are left alone (kana=False)
        ("地域福祉課（関係各課）", "地域福祉課(関係各課)"),
    ],
)
def test_fold_touches_only_the_full_width_ascii_block(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_squash_removes_every_kind_of_space() -> None:
    assert squash(" 自立\u3000生活\n支援\t課\u00a0\u200b\ufeff ") == "自立生活支援課"


# --- as_text --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("", ""),
        (9, "9"),
        (9.0, "9"),  # the reader returns numbers as floats
        (9.5, "9.5"),
        (True, "TRUE"),
        (date(2025, 3, 31), "2025-03-31"),
        (datetime(2025, 3, 31, 9, 30), "2025-03-31 09:30:00"),
        ("(1)②", "(1)②"),
    ],
)
def test_as_text(value: object, text: str) -> None:
    assert as_text(value) == text


# --- 施策No. -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "printed",
    [
        "(1)②",
        "(1) /②",
        "(1) / ②",
        "(1)/②",
        "（１）②",
        "（１）／②",
        "⑴②",
        "⑴ ②",
        "(1)-2",
        "(1)－２",
        "(1)・②",
        "(1)2",
        " (1)②\n",
        "(1)\u3000②",
    ],
)
def test_parse_measure_every_printed_form(printed: str) -> None:
    assert parse_measure(printed) == "(1)②"


@pytest.mark.parametrize(
    ("printed", "code"),
    [
        ("(4) ／ ②", "(4)②"),  # as printed in the R6 table (seed line 77)
        ("(3) / ③", "(3)③"),
        ("(3) /①", "(3)①"),
        ("⑶②", "(3)②"),
        ("⑽①", "(10)①"),
        ("(10)-20", "(10)⑳"),
        ("(9)①", "(9)①"),  # well formed: whether it is the project's is the validator's question
    ],
)
def test_parse_measure_keys(printed: str, code: str) -> None:
    assert parse_measure(printed) == code


@pytest.mark.parametrize(
    "text", ["", "abc", "①", "1-2", "(1)", "(0)①", "(1)0", "(1)21", "(1)②③", "(1)--2", "31～34", "(1)ア"]
)
def test_parse_measure_rejects(text: str) -> None:
    assert parse_measure(text) is None


@given(st.integers(1, 99), st.integers(1, 20), st.sampled_from(["", " ", " / ", "/", "-", " ／ ", "・"]))
def test_parse_measure_round_trip(direction: int, number: int, sep: str) -> None:
    code = f"({direction}){CIRCLED[number - 1]}"
    assert parse_measure(code) == code
    assert parse_measure(f"({direction}){sep}{CIRCLED[number - 1]}") == code
    if sep.strip() in ("", "/", "-", "・"):
        assert parse_measure(f"({direction}){sep.strip()}{number}") == code


# --- 事業No. -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (9, "9"),
        (9.0, "9"),
        ("9", "9"),
        ("９", "9"),
        (" 9 ", "9"),
        ("9.0", "9"),
        ("９．０", "9"),
        ("No.9", "9"),
        ("事業No.9", "9"),
        ("№9", "9"),
        ("#9", "9"),
        ("31～34", "31-34"),
        ("31~34", "31-34"),
        ("31-34", "31-34"),
        ("３１～３４", "31-34"),
        ("31 ~ 34", "31-34"),  # as in the damaged export (seed line 115)
        ("31〜34", "31-34"),  # WAVE DASH, what a Mac types
        ("31－34", "31-34"),
        ("31ー34", "31-34"),  # the long-vowel mark the IME gives for a dash
        ("31―34", "31-34"),
        ("32", "32"),  # a number inside a group: parsed, and refused by the catalog
        ("99", "99"),
    ],
)
def test_parse_project(value: object, key: str) -> None:
    assert parse_project(value) == key


@pytest.mark.parametrize("value", [None, True, False, 0, -1, 9.5, "", "abc", "0", "34～31", "9番", "1 福祉のまちづくり"])
def test_parse_project_rejects(value: object) -> None:
    assert parse_project(value) is None


# --- 事業評価 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "rating"),
    [("A", "A"), ("Ａ", "A"), (" b ", "B"), ("ｂ", "B"), ("B\u3000", "B"), ("c", "C"), ("\nD\n", "D")],
)
def test_parse_rating(value: object, rating: str) -> None:
    assert parse_rating(value) == rating


@pytest.mark.parametrize("value", [None, "", "E", "B A", "AB", "良", "Ａ（ほぼ達成）", 1, 1.0, "①"])
def test_parse_rating_rejects(value: object) -> None:
    assert parse_rating(value) is None


# --- Column labels -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "key"),
    [
        ("施策 No.", "施策no."),
        ("施策No.", "施策no."),
        ("施策No", "施策no."),
        ("施策Ｎｏ．", "施策no."),
        ("施策\nNo.", "施策no."),
        ("事業 No.", "事業no."),
        ("【個別事業・取り組み】", "個別事業・取り組み"),
        ("[個別事業・取り組み]", "個別事業・取り組み"),
        ("事業実績・評価理由 (令和6年度)", "事業実績・評価理由"),
        ("事業実績・評価理由\n（令和６年度）", "事業実績・評価理由"),
        ("事業実績・評価理由(令和7年度)", "事業実績・評価理由"),
        ("事業実績・評価理由（R6）", "事業実績・評価理由"),
        ("事業実績・評価理由(R6年度)", "事業実績・評価理由"),
        ("事業実績・評価理由(2024年度)", "事業実績・評価理由"),
        ("事業実績・評価理由 令和6年度", "事業実績・評価理由"),
        ("事業実績・\n評価理由", "事業実績・評価理由"),
        ("今後の事業計画・\n展望", "今後の事業計画・展望"),
        ("担当課", "担当課"),
    ],
)
def test_label_key(label: str, key: str) -> None:
    assert label_key(label) == key


# --- 担当課 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("地域福祉課（関係各課）", "地域福祉課(関係各課)"),
        ("地域福祉課〔関係各課〕", "地域福祉課(関係各課)"),
        ("社会福祉協議会 (地域福祉課)", "社会福祉協議会(地域福祉課)"),
        ("（広報秘書課）", "(広報秘書課)"),
        ("自立生活支援課\u3000", "自立生活支援課"),
    ],
)
def test_department_key(text: str, key: str) -> None:
    assert department_key(text) == key


# --- Free text -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text", "had_x000d", "had_control"),
    [
        ("相談件数は増加した。_x000D_\n連携会議を4回開催。", "相談件数は増加した。\n連携会議を4回開催。", True, False),
        ("一行目_x000d_二行目", "一行目二行目", True, False),
        # the reader decodes Excel's _x000D_ escape to CR: the same artefact, reported the same way
        ("一行目\r\n二行目", "一行目\n二行目", True, False),
        ("一行目\r二行目", "一行目\n二行目", True, False),
        ("一行目\n二行目", "一行目\n二行目", False, False),
        ("a\x01b\x7f", "ab", False, True),
        ("a_x0001_b", "ab", False, True),  # an escaped control character
        ("a_x0041_b", "a_x0041_b", False, False),  # not a control character: kept as written
        ("　実施した。\n", "実施した。", False, False),
        # kept as written: full width, circled numbers, ㈱, half-width kana
        ("㈱ケアサポート小金井に委託し、①相談 ②訪問。ＮＰＯ（継続）ｶﾅ", "㈱ケアサポート小金井に委託し、①相談 ②訪問。ＮＰＯ（継続）ｶﾅ", False, False),
    ],
)
def test_clean_text(raw: str, text: str, had_x000d: bool, had_control: bool) -> None:
    assert clean_text(raw) == (text, had_x000d, had_control)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"))))
def test_clean_text_keeps_text_without_artefacts(text: str) -> None:
    if "_x" in text:
        return
    assert clean_text(text) == (text, False, False)
