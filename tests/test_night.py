"""The night as staff find it the next morning: outbox/logs/pipeline.log, outbox/last-run.json,
`status` after a failed night, exit 4 for a crash, Japanese usage errors, the --deadline forms."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from pipeline import runlog
from pipeline.cli import cli
from pipeline.lastrun import LAST_RUN_NAME
from pipeline.settings import Settings
from pipeline.wareki import parse_day, wareki, wareki_time

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2} ")
KEYS = {"command", "started", "finished", "exit_code", "message", "report"}


def invoke(cwd: Path, *args: str):
    old = os.getcwd()
    os.chdir(cwd)  # the default settings file (and so the default outbox) is looked up here
    try:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def log_lines(outbox: Path) -> list[str]:
    lines = (outbox / "logs" / "pipeline.log").read_text(encoding="utf-8").splitlines()
    assert lines and all(LINE.match(line) for line in lines), lines[:5]
    return lines


def last_run(outbox: Path) -> dict:
    data = json.loads((outbox / LAST_RUN_NAME).read_text(encoding="utf-8"))
    assert set(data) >= KEYS
    assert datetime.fromisoformat(data["started"]) <= datetime.fromisoformat(data["finished"])
    return data


@pytest.fixture
def night(tmp_path, inbox):
    """A folder laid out like the city's: pipeline.toml, inbox/ with the 12 returns, outbox/."""
    (tmp_path / "pipeline.toml").write_text('[paths]\ninbox = "inbox"\noutbox = "outbox"\n', encoding="utf-8")
    return tmp_path


def test_a_clean_night_leaves_a_log_ending_exit_0_and_a_matching_last_run(night):
    result = invoke(night, "merge")
    assert result.exit_code == 0, result.output
    outbox = night / "outbox"
    lines = log_lines(outbox)
    assert lines[-1].endswith("exit=0")
    assert "開始: pipeline merge" in lines[0]
    text = "\n".join(lines)
    assert "受信 inbox" in text and "出力 outbox" in text
    # every file's status: the 12 returns, accepted
    accepted = [line for line in lines if "ファイル: accepted 受理" in line]
    assert len(accepted) == 12 and any("R6_地域福祉計画評価_健康課.xlsx" in line for line in accepted)
    assert "集約: 評価行 69 / 69" in text
    run = last_run(outbox)
    assert run["exit_code"] == 0 and run["report"] == str(Path("outbox") / "run-report.json")
    assert run["command"] == "merge" and run["message"].startswith("集約しました")
    assert run["last_success"] == run["finished"] and run["failed_nights"] == []


def test_a_wipe_guard_night_exits_3_and_status_says_so_first(night):
    assert invoke(night, "merge").exit_code == 0
    good = last_run(night / "outbox")
    for f in (night / "inbox").iterdir():  # the shared folder came up empty
        f.unlink()
    result = invoke(night, "merge")
    assert result.exit_code == 3
    lines = log_lines(night / "outbox")
    assert lines[-1].endswith("exit=3")
    assert sum(line.endswith(("exit=0", "exit=3")) for line in lines) == 2  # appended, not overwritten
    run = last_run(night / "outbox")
    assert run["exit_code"] == 3 and "評価の件数が前回の 69 件から 0 件に減る" in run["message"]
    assert run["report"] is None and run["last_success"] == good["finished"]
    assert len(run["failed_nights"]) == 1

    status = invoke(night, "status")
    assert status.exit_code == 1  # every office had answered: the failed night alone makes it 1
    first = status.output.splitlines()[0]
    started = wareki_time(run["started"])
    assert first.startswith(f"前回の夜間集約({started})は失敗しました(終了コード 3):評価の件数が前回の 69 件から 0 件に減る")
    assert first.endswith(f"最後に成功した集約は({wareki_time(good['finished'])})です。")
    assert "令和" in started
    assert log_lines(night / "outbox")[-1].endswith("exit=1")


def test_the_next_good_night_lists_the_failed_nights_on_its_status_sheet(night):
    assert invoke(night, "merge").exit_code == 0
    held = night / "held"
    shutil.move(night / "inbox", held)
    (night / "inbox").mkdir()
    assert invoke(night, "merge").exit_code == 3
    failed = last_run(night / "outbox")["failed_nights"][0]
    shutil.rmtree(night / "inbox")
    shutil.move(held, night / "inbox")
    assert invoke(night, "merge").exit_code == 0
    wb = openpyxl.load_workbook(night / "outbox" / "地域福祉計画_評価集約_R6.xlsx", read_only=True)
    cells = [c for row in wb["提出状況"].iter_rows(values_only=True) for c in row if isinstance(c, str)]
    assert "前回の集約から後に失敗した夜間集約(1 回)" in cells
    listed = [c for c in cells if c.startswith(wareki_time(failed["started"]))]
    assert len(listed) == 1 and "終了コード 3: 評価の件数が前回の 69 件から 0 件に減る" in listed[0]
    assert last_run(night / "outbox")["failed_nights"] == []
    status = invoke(night, "status")
    assert status.exit_code == 0 and "は完了しました(エラーなし、終了コード 0)" in status.output.splitlines()[0]


def test_an_unexpected_exception_exits_4_with_the_traceback_in_the_log(night, monkeypatch):
    import pipeline.runner

    def broken(*args, **kwargs):
        raise ZeroDivisionError("injected")

    monkeypatch.setattr(pipeline.runner, "merge", broken)
    result = invoke(night, "merge")
    assert result.exit_code == 4
    console = [line for line in result.output.splitlines() if line.strip()]
    assert len(console) == 1
    assert console[0].startswith("内部エラーで止まりました(ZeroDivisionError)") and "logs/pipeline.log" in console[0]
    assert "Traceback" not in result.output
    lines = log_lines(night / "outbox")
    assert lines[-1].endswith("exit=4")
    text = "\n".join(lines)
    assert "Traceback (most recent call last)" in text and "ZeroDivisionError: injected" in text
    run = last_run(night / "outbox")
    assert run["exit_code"] == 4 and "ZeroDivisionError" in run["message"] and run["report"] is None


def test_ctrl_c_is_a_japanese_line_and_exit_130(night, monkeypatch):
    import pipeline.runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline.runner, "merge", interrupted)
    result = invoke(night, "merge")
    assert result.exit_code == 130
    assert "中断しました(Ctrl+C)" in result.output and "Aborted" not in result.output
    assert log_lines(night / "outbox")[-1].endswith("exit=130")
    assert last_run(night / "outbox")["exit_code"] == 130


def test_warnings_go_to_the_log_not_the_console(night, monkeypatch):
    import warnings

    import pipeline.runner

    real = pipeline.runner.run_validate

    def noisy(*args, **kwargs):
        warnings.warn("a library's note", UserWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline.runner, "run_validate", noisy)
    result = invoke(night, "validate", "inbox", "--no-feedback")
    assert result.exit_code == 0
    assert "a library's note" not in result.output
    lines = log_lines(night / "outbox")
    assert any("警告(Python)" in line and "a library's note" in line for line in lines)
    assert lines[-1].endswith("exit=0")


# Every kind of usage error click can raise, in every command that can raise it.
USAGE_ERRORS = [
    ("merge", "--no-such-option"),
    ("merge", "--year", "X9"),
    ("merge", "--year"),
    ("merge", "--previous", "none.xlsx"),
    ("merge", "extra"),
    ("status", "--year", "X9"),
    ("remind", "--year", "令和"),
    ("templates", "--deadline", "5月末"),
    ("templates", "--deadline", "2025-02-30"),
    ("validate",),
    ("validate", "missing.xlsx"),
    ("validate", ".", "--feedback", "f", "--no-feedback"),
    ("import-published",),
    ("publish", "--year", "X"),
    ("plan",),
    ("plan", "new-year"),
    ("plan", "new-year", "X"),
    ("plan", "check", "R6", "--from", "?"),
    ("no-such-command",),
    ("--settings", "none.toml", "status"),
    ("--settings",),
    ("demo", "--outbox"),
]
ENGLISH = re.compile(r"\b(Usage|Error|Try|No such|Missing|Invalid|Got unexpected|requires|does not|is not|Aborted|"
                     r"Options|Commands|Show this)\b")


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=" ".join)
def test_every_usage_error_is_japanese_and_exits_2(tmp_path, args):
    result = invoke(tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("エラー(使い方): "), result.output
    assert not ENGLISH.search(result.output), result.output
    assert "--help」で表示できます。" in result.output or "値が必要です" in result.output
    assert log_lines(tmp_path / "outbox")[-1].endswith("exit=2")


def test_help_headings_are_japanese(tmp_path):
    for args in (["--help"], ["merge", "--help"], ["plan", "--help"]):
        result = invoke(tmp_path, *args)
        assert result.exit_code == 0
        assert result.output.startswith("使い方: pipeline")
        assert "オプション:" in result.output and "この説明を表示して終わります。" in result.output
        assert not ENGLISH.search(result.output), result.output
    assert "コマンド:" in invoke(tmp_path, "--help").output
    assert not (tmp_path / "outbox").exists()  # --help writes no log


def run_module(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, cwd=cwd, timeout=120,
                          env={**os.environ, **env})


def test_a_cp932_console_gets_japanese_errors_and_the_log_stays_utf8(tmp_path):
    done = run_module(tmp_path, "merge", "--year", "𠮷7", PYTHONIOENCODING="cp932")
    assert done.returncode == 2
    err = done.stderr.decode("cp932")
    assert err.startswith("エラー(使い方): ") and "〓" in err  # 𠮷 is not in cp932
    log = (tmp_path / "outbox" / "logs" / "pipeline.log").read_text(encoding="utf-8")
    assert "𠮷7" in log and "〓" not in log


def test_an_lc_all_c_console_still_runs(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "PYTHONUTF8")}
    env["LC_ALL"] = "C"
    done = subprocess.run([sys.executable, "-m", "pipeline", "status"], capture_output=True, cwd=tmp_path,
                          timeout=120, env=env)
    assert done.returncode == 3
    # Python reads the C locale as UTF-8 (PEP 538/540): the Japanese message prints whole
    assert done.stderr.decode("utf-8").startswith("エラー: 令和6年度(R6)の実行レポート")
    assert log_lines(tmp_path / "outbox")[-1].endswith("exit=3")


def test_the_deadline_forms(tmp_path):
    for text in ("2025-05-30", "2025/05/30", "2025/5/30", "令和7年5月30日", "令和７年５月３０日", "令和7年5月30日(金)"):
        assert parse_day(text) == date(2025, 5, 30), text
        assert Settings().with_options(deadline=text).deadline == date(2025, 5, 30)
    assert parse_day("令和元年5月1日") == date(2019, 5, 1)
    result = invoke(tmp_path, "templates", "--deadline", "令和7年5月30日", "--out", "t")
    assert result.exit_code == 0, result.output
    wb = openpyxl.load_workbook(next((tmp_path / "t").glob("*.xlsx")), read_only=True)
    texts = [c for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for c in row if isinstance(c, str)]
    assert any("令和7年5月30日(金)" in t for t in texts)


def test_dates_people_read_are_in_reiwa():
    assert wareki(date(2025, 5, 30)) == "令和7年5月30日(金)"
    assert wareki_time("2025-05-27T02:05:09+09:00") == "令和7年5月27日(火) 2:05"
    from pipeline.yearly import deadline_text

    assert deadline_text(date(2025, 5, 30), date(2025, 5, 29)) == "提出期限 令和7年5月30日(金)(あと 1 日)"


def test_the_log_turns_over_monthly_and_keeps_keep_logs(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    for month in range(1, 13):
        (logs / f"pipeline-2024-{month:02d}.log").write_text("old\n", encoding="utf-8")
    (logs / "pipeline.log").write_text("2025-01-31T02:00:00+09:00 開始: pipeline merge\n", encoding="utf-8")
    log = runlog.RunLog()
    log.write("開始: pipeline merge")
    log.open(tmp_path, keep=5)
    rotated = sorted(p.name for p in logs.glob("pipeline-*.log"))
    if datetime.now().strftime("%Y-%m") != "2025-01":
        assert rotated == ["pipeline-2024-09.log", "pipeline-2024-10.log", "pipeline-2024-11.log",
                           "pipeline-2024-12.log", "pipeline-2025-01.log"]
        assert "2025-01-31T02:00:00" in (logs / "pipeline-2025-01.log").read_text(encoding="utf-8")
    current = (logs / "pipeline.log").read_text(encoding="utf-8").splitlines()
    assert len(current) == 1 and LINE.match(current[0]) and current[0].endswith("開始: pipeline merge")


def test_keep_logs_is_a_setting(tmp_path):
    (tmp_path / "pipeline.toml").write_text("[history]\nkeep_logs = 0\n", encoding="utf-8")
    result = invoke(tmp_path, "status")
    assert result.exit_code == 3 and "keep_logs" in result.output


def test_the_marks_print_on_a_cp932_console_as_they_are():
    from pipeline.marks import NO_VALUE, PART_SEP
    from pipeline.yearly import for_console

    for mark in (PART_SEP, NO_VALUE):
        assert mark.encode("cp932").decode("cp932") == mark
        assert for_console(f"回答.eml{mark}評価表.xlsx", "cp932") == f"回答.eml{mark}評価表.xlsx"
    assert for_console("回答.eml › 評価表.xlsx", "cp932") != "回答.eml › 評価表.xlsx"  # why they were replaced


def _refuse_the_address_space_limit(monkeypatch):
    """A system whose setrlimit refuses RLIMIT_AS (forked readers inherit the patch)."""
    import resource

    real = resource.setrlimit

    def refusing(which, limits):
        if which == resource.RLIMIT_AS:
            raise OSError("not permitted here")
        return real(which, limits)

    monkeypatch.setattr(resource, "setrlimit", refusing)
    monkeypatch.setenv("PIPELINE_START_METHOD", "fork")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork: the refused limit reaches the reader by forking")
def test_a_reader_without_its_memory_cap_is_said_once_per_run(night, monkeypatch):
    _refuse_the_address_space_limit(monkeypatch)
    result = invoke(night, "merge")
    assert result.exit_code == 0, result.output  # a warning: the night still merges
    report = json.loads((night / "outbox" / "run-report.json").read_text(encoding="utf-8"))
    capped = [i for i in report["run_issues"] if i["code"] == "memory-cap-unavailable"]
    assert len(capped) == 1 and "1024 MiB" in capped[0]["message"] and capped[0]["severity"] == "warning"
    assert all(i["code"] != "memory-cap-unavailable" for f in report["files"] for i in f["issues"])
    lines = [line for line in log_lines(night / "outbox") if "memory-cap-unavailable" in line]
    assert len(lines) == 1 and "メモリの上限(1024 MiB)を設定できませんでした" in lines[0]
    wb = openpyxl.load_workbook(night / "outbox" / "地域福祉計画_評価集約_R6.xlsx", read_only=True)
    codes = [c for row in wb["検証結果"].iter_rows(values_only=True) for c in row if c == "memory-cap-unavailable"]
    assert len(codes) == 1


def test_a_capped_reader_says_nothing(night):
    assert invoke(night, "merge").exit_code == 0
    report = json.loads((night / "outbox" / "run-report.json").read_text(encoding="utf-8"))
    assert report["run_issues"] == []
    assert not any("memory-cap-unavailable" in line for line in log_lines(night / "outbox"))


def test_the_pool_records_whether_each_child_had_its_cap(monkeypatch):
    from pipeline.reader import sandbox

    with sandbox.Pool(len, size=2, timeout_s=30, memory_bytes=2**30) as pool:
        assert [o for _, _, o in pool.map([b"ab", b"c"], lambda item: (item,))] == [2, 1]
        assert pool.memory_capped and all(w.memory_capped for w in pool.workers if w._proc is not None)
    if hasattr(os, "fork"):
        _refuse_the_address_space_limit(monkeypatch)
        with sandbox.Pool(len, size=1, timeout_s=30, memory_bytes=2**30) as pool:
            assert [o for _, _, o in pool.map([b"abc"], lambda item: (item,))] == [3]
            assert not pool.memory_capped and pool.workers[0].cap_missing
