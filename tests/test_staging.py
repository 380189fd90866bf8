"""A night's staging on its own: outputs are committed together, a failure before the commit
leaves every previous output as it was and no temporaries, and a locked target gets the new file
under a stamped name that the staging records for the run report."""

from __future__ import annotations

import os
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter

import pipeline.atomic as atomic
from pipeline.atomic import TEMP_PREFIX
from pipeline.staging import Staging


def make_xlsx(path: Path, text: str) -> None:
    wb = xlsxwriter.Workbook(str(path))
    wb.add_worksheet("評価一覧").write_string(0, 0, text)
    wb.close()


def a1(path: Path) -> str:
    return openpyxl.load_workbook(path).active["A1"].value


def temps(folder: Path) -> list[Path]:
    return sorted(folder.rglob(TEMP_PREFIX + "*"))


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    """Last night's outputs: a master, a summary and a run report."""
    make_xlsx(tmp_path / "地域福祉計画_評価集約_R6.xlsx", "前回の集約")
    make_xlsx(tmp_path / "地域福祉計画_評価集計_R6.xlsx", "前回の集計")
    (tmp_path / "run-report.json").write_text('{"rows": 68}', encoding="utf-8")
    return tmp_path


def test_commit_puts_every_staged_output_in_place(outbox: Path) -> None:
    master, summary, report = (outbox / n for n in ("地域福祉計画_評価集約_R6.xlsx", "地域福祉計画_評価集計_R6.xlsx",
                                                   "run-report.json"))
    with Staging() as staging:
        staging.stage(master, "集約ブック", lambda tmp: make_xlsx(tmp, "今夜の集約"))
        summary_tmp = staging.reserve(summary, "集計ブック")  # filled by another writer
        make_xlsx(summary_tmp, "今夜の集計")
        assert a1(master) == "前回の集約" and len(temps(outbox)) == 2  # nothing replaced before the commit
        written = staging.commit()
        staging.stage(report, "実行レポート", lambda tmp: tmp.write_text('{"rows": 69}', encoding="utf-8"))
        assert staging.commit() == {report: report}
    assert written == {master: master, summary: summary}
    assert (a1(master), a1(summary)) == ("今夜の集約", "今夜の集計")
    assert report.read_text(encoding="utf-8") == '{"rows": 69}'
    assert staging.stale == [] and staging.notices == []
    assert temps(outbox) == []


def test_an_exception_before_the_commit_leaves_the_previous_outputs_and_no_temporaries(outbox: Path) -> None:
    master, summary = outbox / "地域福祉計画_評価集約_R6.xlsx", outbox / "地域福祉計画_評価集計_R6.xlsx"
    before = {p.name: p.read_bytes() for p in outbox.iterdir()}

    def fails_half_way(tmp: Path) -> None:
        tmp.write_bytes(b"PK\x03\x04 half a workbook")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"), Staging() as staging:
        staging.stage(master, "集約ブック", lambda tmp: make_xlsx(tmp, "今夜の集約"))
        staging.stage(summary, "集計ブック", fails_half_way)
        staging.commit()  # never reached
    assert {p.name: p.read_bytes() for p in outbox.iterdir()} == before
    assert a1(master) == "前回の集約"
    assert temps(outbox) == []


def test_discard_removes_a_temporary_another_process_wrote(outbox: Path) -> None:
    copy = outbox / "feedback" / "健康課_評価表.xlsx"
    copy.parent.mkdir()
    tmp = atomic.temp_path_for(copy)
    make_xlsx(tmp, "差し戻し")
    staging = Staging()
    staging.adopt(copy, tmp, "差し戻し用の写し")
    assert staging.pending == {copy: tmp}
    staging.discard()
    assert not copy.exists() and temps(outbox) == [] and staging.pending == {}


def test_a_locked_target_gets_a_stamped_name_the_run_records(outbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    master, summary = outbox / "地域福祉計画_評価集約_R6.xlsx", outbox / "地域福祉計画_評価集計_R6.xlsx"
    real_replace = os.replace

    def excel_holds_the_master(src: os.PathLike[str], dst: os.PathLike[str]) -> None:
        if Path(dst) == atomic.long_path(master):
            raise PermissionError(13, "The process cannot access the file because it is being used")
        real_replace(src, dst)

    monkeypatch.setattr(atomic, "REPLACE_RETRY_DELAYS", ())
    monkeypatch.setattr(os, "replace", excel_holds_the_master)
    with Staging() as staging:
        staging.stage(master, "集約ブック", lambda tmp: make_xlsx(tmp, "今夜の集約"))
        staging.stage(summary, "集計ブック", lambda tmp: make_xlsx(tmp, "今夜の集計"))
        written = staging.commit()
    stamped = written[master]
    assert stamped != master and stamped.parent == master.parent
    assert stamped.name.startswith("地域福祉計画_評価集約_R6_") and stamped.suffix == ".xlsx"
    assert a1(master) == "前回の集約"  # the open file is left as it was
    assert a1(stamped) == "今夜の集約"
    assert written[summary] == summary and a1(summary) == "今夜の集計"  # the others are committed
    assert staging.stale == [{"output": "集約ブック", "usual": str(master), "written": str(stamped)}]
    (notice,) = staging.notices
    assert master.name in notice and stamped.name in notice and "開かれていた" in notice
    assert temps(outbox) == []


def test_a_commit_that_fails_keeps_what_it_committed_and_discards_the_rest(
    outbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    master, summary = outbox / "地域福祉計画_評価集約_R6.xlsx", outbox / "地域福祉計画_評価集計_R6.xlsx"
    real_replace = os.replace

    def disk_gone_for_the_summary(src: os.PathLike[str], dst: os.PathLike[str]) -> None:
        if Path(dst).name.startswith(TEMP_PREFIX + summary.stem):
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", disk_gone_for_the_summary)
    with pytest.raises(OSError, match="Input/output"), Staging() as staging:
        staging.stage(master, "集約ブック", lambda tmp: make_xlsx(tmp, "今夜の集約"))
        staging.stage(summary, "集計ブック", lambda tmp: make_xlsx(tmp, "今夜の集計"))
        staging.commit()
    assert a1(master) == "今夜の集約"  # each file is whole: the one committed, the other as before
    assert a1(summary) == "前回の集計"
    assert temps(outbox) == []


def test_staging_a_target_again_replaces_its_temporary(outbox: Path) -> None:
    report = outbox / "run-report.json"
    with Staging() as staging:
        first = staging.stage(report, "実行レポート", lambda tmp: tmp.write_text("{}", encoding="utf-8"))
        staging.stage(report, "実行レポート", lambda tmp: tmp.write_text('{"rows": 70}', encoding="utf-8"))
        assert not first.exists()
        staging.commit()
    assert report.read_text(encoding="utf-8") == '{"rows": 70}'
    assert temps(outbox) == []


def test_commit_of_named_targets_commits_those_in_order_and_keeps_the_rest_staged(outbox: Path) -> None:
    master, summary, report = (outbox / n for n in ("地域福祉計画_評価集約_R6.xlsx", "地域福祉計画_評価集計_R6.xlsx",
                                                   "run-report.json"))
    order: list[str] = []
    real_replace = os.replace

    def noting(src: os.PathLike[str], dst: os.PathLike[str]) -> None:
        if not Path(dst).name.startswith(TEMP_PREFIX):
            order.append(Path(dst).name)
        real_replace(src, dst)

    with Staging() as staging:
        make_xlsx(staging.reserve(summary, "集計ブック"), "今夜の集計")
        staging.stage(report, "実行レポート", lambda tmp: tmp.write_text("{}", encoding="utf-8"))
        staging.stage(master, "集約ブック", lambda tmp: make_xlsx(tmp, "今夜の集約"))
        with pytest.MonkeyPatch.context() as m:
            m.setattr(os, "replace", noting)
            staging.commit(master, summary)
        assert order == [master.name, summary.name]
        assert list(staging.pending) == [report]
        assert report.read_text(encoding="utf-8") == '{"rows": 68}'  # not committed yet
        with pytest.raises(KeyError):
            staging.commit(outbox / "never-staged.json")
    assert report.read_text(encoding="utf-8") == '{"rows": 68}'  # discarded on leaving: last night's stays
    assert temps(outbox) == []
