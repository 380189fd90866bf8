"""The settings file is a strict schema: every mistake stops the run with one Japanese message.

Each case is a real pipeline.toml written into tmp_path and read by load_settings (or by the CLI).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.errors import PipelineError, SettingsError
from pipeline.settings import SCHEMA, Limits, MailboxSettings, Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "pipeline.toml"


def write(tmp_path: Path, text: str, name: str = "pipeline.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> SettingsError:
    with pytest.raises(SettingsError) as caught:
        load_settings(path)
    return caught.value


def runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click 8.1
    except TypeError:
        return CliRunner()  # click >= 8.2 keeps stderr apart


# --- Unknown sections and keys, with a suggestion --------------------------------------------


@pytest.mark.parametrize(
    ("text", "where", "suggestion"),
    [
        ('[plan]\nyaer = "R7"\n', '[plan] yaer = "R7"(2 行目)', "year のまちがいではありませんか"),
        ('[paths]\ninbx = "受信"\n', '[paths] inbx = "受信"(2 行目)', "inbox のまちがいではありませんか"),
        ('[path]\ninbox = "受信"\n', "[path](1 行目)", "[paths] のまちがいではありませんか"),
        ("[limits]\nmax_cels = 5000000\n", "[limits] max_cels = 5000000(2 行目)", "max_cells のまちがいではありませんか"),
        ("[histroy]\nkeep = 10\n", "[histroy](1 行目)", "[history] のまちがいではありませんか"),
        ('[limits]\ninbox = "受信"\n', '[limits] inbox = "受信"(2 行目)', "inbox は [paths] の項目です"),
        ('year = "R7"\n', 'year = "R7"(1 行目)', "[plan] の行の下に書いてください"),
    ],
)
def test_unknown_sections_and_keys_name_the_place_and_suggest_the_right_name(tmp_path, text, where, suggestion):
    path = write(tmp_path, text)
    error = error_of(path)
    message = str(error)
    assert isinstance(error, PipelineError) and error.exit_code == 3
    assert str(path.absolute()) in message
    assert f"  {where}: " in message
    assert suggestion in message
    assert len(error.problems) == 1


def test_an_unknown_section_lists_the_allowed_sections(tmp_path):
    message = str(error_of(write(tmp_path, "[options]\nfoo = 1\n")))
    assert "[options](1 行目): 不明な節です。" in message
    assert "[paths]、[plan]、[history]、[guards]、[master]、[publish]、[limits]" in message


def test_every_problem_of_the_file_is_reported_at_once_one_line_each(tmp_path):
    path = write(
        tmp_path,
        '[paths]\ninbx = "受信"\n\n[plan]\nyaer = "R7"\ndeadline = "5月末"\n\n[history]\nkeep = 0\n\n'
        '[limits]\nmax_file_mib = -1\nparse_timeout_s = 0\n',
    )
    error = error_of(path)
    message = str(error)
    assert "6 件の誤りがあります" in message.splitlines()[0]
    assert [line.split(":")[0].strip() for line in message.splitlines()[1:]] == [
        '[paths] inbx = "受信"(2 行目)',
        '[plan] yaer = "R7"(5 行目)',
        '[plan] deadline = "5月末"(6 行目)',
        "[history] keep = 0(9 行目)",
        "[limits] max_file_mib = -1(12 行目)",
        "[limits] parse_timeout_s = 0(13 行目)",
    ]
    assert len(error.problems) == 6


# --- Wrong types and out-of-range values -------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "line", "expected"),
    [
        ("limits", 'max_file_mib = "50"', ['数は " " で囲みません', "max_file_mib = 50 のように", "1〜1024 の整数"]),
        ("history", 'keep = "sixty"', ["1 以上の整数で書いてください", "例: keep = 60"]),
        ("limits", "max_rows = 5.5", ["小数は使えません", "1000〜1048576 の整数"]),
        ("limits", "max_cols = true", ["true / false ではなく", "50〜16384 の整数"]),
        ("guards", 'max_drop_percent = "20%"', ["0〜100 の数で書いてください"]),
        ("guards", "max_drop_percent = nan", ["0〜100 の数で書いてください"]),
        ("plan", "year = 6", ['R を付けてください(year = "R6")', "R と数字 1〜2 けた"]),
        ("plan", 'year = "2025"', ['2025 年度なら "R7"']),
        ("plan", 'year = "R123"', ["R と数字 1〜2 けた(R6、R7 など)", 'year = "R7"']),
        ("plan", 'deadline = "5月末"', ["2025-05-30、2025/05/30、令和7年5月30日", "deadline = 2025-05-30"]),
        ("plan", 'deadline = "2025-02-30"', ["この日付はありません"]),
        ("plan", "deadline = 2025-05-30T17:00:00", ["時刻は書かず、日付だけを書いてください"]),
        ("plan", 'contact = "  "', ["空です", 'contact = "福祉保健部地域福祉課"']),
        ("plan", "contact = 3", ['文字列(" " で囲む)で書いてください']),
        ("paths", 'inbox = ""', ["空です。フォルダーの場所を書いてください"]),
        ("paths", "outbox = 1", ['文字列(" " で囲む)', 'outbox = "outbox"']),
        ("paths", 'exclude = "old"', ['exclude = ["old"]']),
        ("paths", 'exclude = ["受信/old"]', ["/ や \\ が入っています", "フォルダー名だけ"]),
        ("paths", "exclude = [1]", ["1 番目の 1 が文字列ではありません"]),
        ("master", 'goal_sheets = "allways"', ['"always" のまちがいではありませんか', '"auto"、"always"、"never" のどれか']),
        ("master", "goal_sheets = true", ['"auto"、"always"、"never" のどれか']),
        ("publish", "soffice = false", ['文字列(" " で囲む)', "soffice.exe"]),
        ("plan", "year = { code = \"R6\" }", ["年度コードは R と数字"]),
    ],
)
def test_a_value_of_the_wrong_type_says_what_to_write(tmp_path, section, line, expected):
    message = str(error_of(write(tmp_path, f"[{section}]\n{line}\n")))
    key = line.split("=")[0].strip()
    assert f"  [{section}] {key} = " in message
    for fragment in expected:
        assert fragment in message, fragment


@pytest.mark.parametrize(
    ("section", "line", "allowed"),
    [
        ("limits", "max_file_mib = -1", "1〜1024 の整数"),
        ("limits", "max_file_mib = 0", "1〜1024 の整数"),
        ("limits", "max_file_mib = 4096", "1〜1024 の整数"),
        ("limits", "max_members = 10", "50〜100000 の整数"),
        ("limits", "max_entry_mib = 0", "1〜8192 の整数"),
        ("limits", "max_total_mib = 0", "1〜16384 の整数"),
        ("limits", "max_cells = 100", "10000〜100000000 の整数"),
        ("limits", "max_rows = 2000000", "1000〜1048576 の整数"),
        ("limits", "max_cols = 20000", "50〜16384 の整数"),
        ("limits", "parse_timeout_s = 0", "1〜3600 の数"),
        ("limits", "parse_timeout_s = 0.5", "1〜3600 の数"),
        ("limits", "parse_memory_mib = 64", "256〜65536 の整数"),
        ("history", "keep = 0", "1 以上の整数"),
        ("history", "keep = -5", "1 以上の整数"),
        ("guards", "max_drop_percent = 100.5", "0〜100 の数"),
        ("guards", "max_drop_percent = -1", "0〜100 の数"),
    ],
)
def test_out_of_range_values_name_the_value_and_the_range(tmp_path, section, line, allowed):
    message = str(error_of(write(tmp_path, f"[{section}]\n{line}\n")))
    assert f"  [{section}] {line}(2 行目): 範囲の外です。{allowed}で書いてください。" in message


def test_keep_0_is_an_error_not_keep_everything(tmp_path):
    error = error_of(write(tmp_path, "[history]\nkeep = 0\n"))
    assert error.problems == ["[history] keep = 0(2 行目): 範囲の外です。1 以上の整数で書いてください。例: keep = 60"]


def test_the_ends_of_each_range_are_allowed(tmp_path):
    low = {"history": {"keep": 1}, "guards": {"max_drop_percent": 0}}
    high = {"guards": {"max_drop_percent": 100}}
    for section, keys in SCHEMA.items():
        for name, key in keys.items():
            if key.low is not None and section == "limits":
                low.setdefault(section, {})[name] = int(key.low)
                high.setdefault(section, {})[name] = int(key.high)
    for case, values in (("low", low), ("high", high)):
        text = "".join(f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) for s, keys in values.items())
        s = load_settings(write(tmp_path, text, f"{case}.toml"))
        assert s.limits.max_file_mib == (1 if case == "low" else 1024)
        assert s.limits.parse_timeout_s == (1.0 if case == "low" else 3600.0)
        assert isinstance(s.limits.parse_timeout_s, float)
    assert load_settings(tmp_path / "low.toml").keep_history == 1
    assert load_settings(tmp_path / "low.toml").max_drop_percent == 0.0
    assert load_settings(tmp_path / "high.toml").max_drop_percent == 100.0


# --- Encoding and syntax -----------------------------------------------------------------------


def test_a_file_saved_in_cp932_says_how_to_save_it_as_utf8(tmp_path):
    path = tmp_path / "pipeline.toml"
    path.write_bytes('[plan]\nyear = "R6"\ncontact = "福祉保健部地域福祉課"\n'.encode("cp932"))
    message = str(error_of(path))
    assert str(path.absolute()) in message
    assert "UTF-8 で読めません(3 行目)" in message
    assert "Shift_JIS" in message
    assert "メモ帳" in message and "名前を付けて保存" in message and "文字コード" in message and "「UTF-8」" in message
    assert "codec" not in message and "0x" not in message


def test_a_file_with_a_utf8_bom_says_to_save_without_bom(tmp_path):
    path = tmp_path / "pipeline.toml"
    path.write_bytes(b"\xef\xbb\xbf" + b'[plan]\nyear = "R6"\n')
    message = str(error_of(path))
    assert "「UTF-8 (BOM 付き)」で保存されています" in message
    assert "BOM なしの UTF-8 で保存し直してください" in message
    assert "名前を付けて保存" in message


def test_a_file_saved_as_utf16_is_named(tmp_path):
    path = tmp_path / "pipeline.toml"
    path.write_bytes('[plan]\nyear = "R6"\n'.encode("utf-16"))
    assert "「UTF-16 (Unicode)」で保存されています" in str(error_of(path))


@pytest.mark.parametrize(
    ("text", "lineno", "expected"),
    [
        ("[plan]\ncontact = \"地域福祉課\"\nyear = R6\n", 3, 'year = R6'),
        ("[plan]\nyear ＝ \"R6\"\n", 2, "全角の記号"),
        ("[paths]\ninbox = \"C:\\Users\\受信\"\n", 2, "' ' で囲むか"),
        ("[plan]\nyear = \"R6\"\ncontact = \"a\"\nyear = \"R7\"\n", 4, "同じ項目が 2 回書かれています"),
        ("[plan]\nyear = \"R6\"\n[plan]\ncontact = \"a\"\n", 3, "同じ節が 2 回書かれています"),
        ("[plan]\ncontact = \"地域福祉課\n", 2, '文字列を囲む " が閉じていません'),
        ("[paths\ninbox = \"x\"\n", 1, "[ ] が閉じていません"),
    ],
)
def test_a_toml_syntax_error_gives_the_line_number_in_japanese(tmp_path, text, lineno, expected):
    path = write(tmp_path, text)
    message = str(error_of(path))
    assert message.startswith(f"設定ファイル {path.absolute()} の {lineno} 行目が読めません: ")
    assert f"\n  {lineno} 行目: " in message  # the line itself is shown
    assert expected in message


def test_a_missing_settings_file_named_on_the_command_line_is_an_error(tmp_path):
    message = str(error_of(tmp_path / "none.toml"))
    assert "none.toml が見つかりません" in message


# --- Valid files -------------------------------------------------------------------------------


def test_the_shipped_pipeline_toml_loads_cleanly_and_gives_the_defaults():
    s = load_settings(SHIPPED)
    defaults = Settings()
    assert s.inbox == ROOT / "inbox" and s.outbox == ROOT / "outbox"
    assert s.year == "R6" and s.deadline == date(2025, 5, 30) and s.contact == defaults.contact
    assert s.schemas is None and s.exclude == ()
    assert (s.keep_history, s.max_drop_percent, s.goal_sheets, s.soffice, s.limits) == (
        defaults.keep_history, defaults.max_drop_percent, defaults.goal_sheets, defaults.soffice, defaults.limits,
    )


def test_the_shipped_pipeline_toml_documents_every_key_of_the_schema():
    text = SHIPPED.read_text(encoding="utf-8")
    shipped = tomllib.loads(text)
    assert set(shipped) == set(SCHEMA)
    for section, keys in SCHEMA.items():
        assert re.search(rf"^\[{section}\]", text, re.M), section
        for name in keys:
            # set (or a commented example) with a comment after it
            assert re.search(rf"^#? ?{name} = .+#", text, re.M), f"[{section}] {name}"
    assert '# exclude = ["処理済み", "old"]' in text


def test_the_schema_sets_every_settings_field_exactly_once():
    targets = [key.target for keys in SCHEMA.values() for key in keys.values()]
    assert len(targets) == len(set(targets))
    settings_fields = {f.name for f in fields(Settings)} - {"limits", "mailbox"}
    limit_fields = {f"limits.{f.name}" for f in fields(Limits)}
    mailbox_fields = {f"mailbox.{f.name}" for f in fields(MailboxSettings)}
    assert set(targets) == settings_fields | limit_fields | mailbox_fields
    for section, keys in SCHEMA.items():
        for name, key in keys.items():
            if key.kind in ("int", "number"):
                assert key.low is not None, f"[{section}] {name} needs a documented minimum"


def test_a_file_with_every_key_round_trips_into_the_settings(tmp_path):
    base = tmp_path / "conf"
    base.mkdir()
    path = write(
        base,
        """\
[paths]
inbox = "受信"
outbox = 'D:\\評価\\出力'
schemas = "カタログ"
exclude = ["処理済み", "old*"]

[plan]
year = "r7"
deadline = 2026-05-29
contact = " 福祉保健部 地域福祉課 "

[history]
keep = 30

[guards]
max_drop_percent = 12.5

[master]
goal_sheets = "never"

[publish]
soffice = "C:/Program Files/LibreOffice/program/soffice.exe"

[limits]
max_file_mib = 20
max_members = 500
max_entry_mib = 100
max_total_mib = 300
max_cells = 1000000
max_rows = 50000
max_cols = 100
parse_timeout_s = 30
parse_memory_mib = 2048

[mailbox]
host = "mail.city.example.lg.jp"
port = 10143
tls = "starttls"
ca_file = "ca/市CA.pem"
user = "chiiki-fukushi"
folder = "受信トレイ/返送 R7"
since = 2026-04-01
password_file = "secret/パスワード.txt"
""",
    )
    s = load_settings(path)
    assert s == Settings(
        inbox=base / "受信",
        outbox=base / "D:\\評価\\出力",
        schemas=base / "カタログ",
        exclude=("処理済み", "old*"),
        year="R7",
        deadline=date(2026, 5, 29),
        contact="福祉保健部 地域福祉課",
        keep_history=30,
        max_drop_percent=12.5,
        goal_sheets="never",
        soffice="C:/Program Files/LibreOffice/program/soffice.exe",
        limits=Limits(
            max_file_mib=20, max_members=500, max_entry_mib=100, max_total_mib=300, max_cells=1_000_000,
            max_rows=50_000, max_cols=100, parse_timeout_s=30.0, parse_memory_mib=2048,
        ),
        mailbox=MailboxSettings(
            host="mail.city.example.lg.jp", port=10143, tls="starttls", ca_file=base / "ca" / "市CA.pem",
            user="chiiki-fukushi", folder="受信トレイ/返送 R7", since=date(2026, 4, 1),
            password_file=base / "secret" / "パスワード.txt",
        ),
    )
    assert isinstance(s.limits.parse_timeout_s, float) and isinstance(s.max_drop_percent, float)
    assert isinstance(s.exclude, tuple)


def test_a_date_may_be_a_string_and_a_missing_key_takes_its_default(tmp_path):
    s = load_settings(write(tmp_path, '[plan]\ndeadline = "2025-06-02"\n[guards]\nmax_drop_percent = 20\n'))
    assert s.deadline == date(2025, 6, 2)
    assert s.inbox == tmp_path / "inbox" and s.outbox == tmp_path / "outbox"  # relative to the file
    assert s.year == "R6" and s.keep_history == 60 and s.limits == Limits()
    assert s.max_drop_percent == 20.0 and isinstance(s.max_drop_percent, float)
    assert load_settings(write(tmp_path, "", "empty.toml")).limits == Limits()


@pytest.mark.parametrize(("given", "normalised"), [("r7", "R7"), ("R6", "R6"), ("r06", "R6"), ("Ｒ７", "R7")])
def test_the_year_is_normalised_in_the_file_and_on_the_command_line(tmp_path, given, normalised):
    assert load_settings(write(tmp_path, f'[plan]\nyear = "{given}"\n')).year == normalised
    assert Settings().with_options(year=given).year == normalised


def test_a_command_line_year_or_deadline_is_checked_like_the_file():
    with pytest.raises(SettingsError) as caught:
        Settings().with_options(year="2025", deadline="5月末")
    message = str(caught.value)
    assert '--year "2025": 西暦ではなく令和の年度で書きます(2025 年度なら "R7")' in message
    assert '--deadline "5月末": ' in message and "例: --deadline 2025-05-30" in message
    assert caught.value.exit_code == 3
    s = Settings().with_options(year=None, deadline="2025-05-30", outbox="out")
    assert (s.year, s.deadline, s.outbox) == ("R6", date(2025, 5, 30), Path("out"))


# --- Through the command line ------------------------------------------------------------------


def test_cli_a_bad_settings_file_exits_3_with_the_japanese_message_and_no_traceback(tmp_path):
    bad = write(tmp_path, '[plan]\nyaer = "R7"\n\n[limits]\nmax_file_mib = "50"\n', "bad.toml")
    result = runner().invoke(cli, ["--settings", str(bad), "merge"])
    assert result.exit_code == 3
    assert result.stderr.startswith(f"エラー: 設定ファイル {bad.absolute()} に 2 件の誤りがあります。")
    assert '  [plan] yaer = "R7"(2 行目): 不明な項目です。year のまちがいではありませんか。' in result.stderr
    assert '  [limits] max_file_mib = "50"(5 行目): 数は " " で囲みません。' in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not isinstance(result.exception, SettingsError)  # handled as a CommandFailed, not raised


def test_cli_a_cp932_settings_file_exits_3(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_bytes('[plan]\ncontact = "地域福祉課"\n'.encode("cp932"))
    result = runner().invoke(cli, ["--settings", str(bad), "merge"])
    assert result.exit_code == 3
    assert "BOM なしの UTF-8 で保存し直してください" in result.stderr and "Traceback" not in result.stderr


def test_cli_a_bad_year_option_is_a_usage_error(tmp_path):
    result = runner().invoke(cli, ["--settings", str(write(tmp_path, "")), "merge", "--year", "2025"])
    assert result.exit_code == 2
    assert '--year "2025": 西暦ではなく令和の年度で書きます' in result.stderr


def test_cli_feedback_and_no_feedback_together_is_a_usage_error(tmp_path):
    target = tmp_path / "x.xlsx"
    target.write_bytes(b"")
    feedback = tmp_path / "d"
    result = runner().invoke(cli, ["validate", str(target), "--feedback", str(feedback), "--no-feedback"])
    assert result.exit_code == 2
    assert "--feedback と --no-feedback は同時に指定できません" in result.stderr
    assert not feedback.exists()
