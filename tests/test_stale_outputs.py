"""Outputs never go stale silently. A file open in Excel on Windows cannot be replaced: simulated here
by an os.replace (and unlink) that raises PermissionError for the locked paths. The output goes to a
stamped name and the run says so (run report `stale`, 注意 on the console, `status`); every later
night tries the usual names first, rewrites them from the current outcome even when nothing is new,
and removes the stamped files they supersede."""

from __future__ import annotations

import email
import email.policy
import json
import os
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from returns import edit_return

from pipeline import atomic
from pipeline.catalog import load_catalog
from pipeline.cli import cli, render_merge
from pipeline.layout import recorded_source
from pipeline.master import master_name
from pipeline.runner import run_merge
from pipeline.settings import Settings
from pipeline.yearly import (
    plan_reminders,
    render_reminders,
    render_status,
    submission_status,
    write_reminders,
)

CARE = "R6_地域福祉計画評価_介護福祉課.xlsx"
CARE_KEY = ("9", "介護福祉課")


class Locks:
    """The paths "open in Excel": replacing or removing them raises PermissionError."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: set[str] = set()
        real_replace, real_unlink = os.replace, Path.unlink
        monkeypatch.setattr(atomic, "REPLACE_RETRY_DELAYS", ())

        def replace(src, dst, *args, **kwargs):
            if os.fspath(dst) in self.paths:
                raise PermissionError(13, "The process cannot access the file", os.fspath(dst))
            return real_replace(src, dst, *args, **kwargs)

        def unlink(path, missing_ok=False):
            if os.fspath(path) in self.paths:
                raise PermissionError(13, "The process cannot access the file", os.fspath(path))
            return real_unlink(path, missing_ok=missing_ok)

        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(Path, "unlink", unlink)

    def lock(self, path: Path) -> None:
        self.paths.add(os.fspath(path))

    def release(self) -> None:
        self.paths.clear()


def rating_in(master: Path, key: tuple[str, str]) -> str:
    ws = openpyxl.load_workbook(master, read_only=True)["評価一覧"]
    rows = list(ws.iter_rows(values_only=True))
    i = {h: rows[0].index(h) for h in ("事業No.", "担当課", "事業評価")}
    [rating] = [r[i["事業評価"]] for r in rows[1:] if (str(r[i["事業No."]]), r[i["担当課"]]) == key]
    return rating


def rerate(inbox: Path, rating: str) -> None:
    edit_return(inbox / CARE, inbox / CARE, {CARE_KEY: {"rating": rating}})


def stamped(folder: Path, stem: str, suffix: str) -> list[Path]:
    return sorted(p for p in folder.glob(f"{stem}_*{suffix}") if p.name != f"{stem}{suffix}")


def test_a_locked_master_across_nights(inbox: Path, outbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locks = Locks(monkeypatch)
    s = Settings(inbox=inbox, outbox=outbox)
    first = run_merge(s)
    usual = outbox / master_name(load_catalog("R6"))
    before = rating_in(usual, CARE_KEY)
    after = "D" if before != "D" else "C"
    # night 2: a new rating arrives while the master is open
    rerate(inbox, after)
    locks.lock(usual)
    night2 = run_merge(s)
    assert night2.master != usual and night2.master.parent == outbox
    assert rating_in(night2.master, CARE_KEY) == after and rating_in(usual, CARE_KEY) == before
    report = json.loads((outbox / "run-report.json").read_text(encoding="utf-8"))
    assert report["stale"] == [{"output": "集約ブック", "usual": str(usual), "written": str(night2.master)}]
    assert report["master"] == str(night2.master)
    assert any(line.startswith("注意: 集約ブック") and night2.master.name in line
               for line in render_merge(night2).splitlines())
    status = render_status(submission_status(s))
    assert f"最新の集約ブック: {night2.master}" in status and "古い内容のまま" in status
    # night 3: Excel closed, nothing new: the usual name is written again with the current outcome
    locks.release()
    night3 = run_merge(s)
    assert night3.master == usual and rating_in(usual, CARE_KEY) == after
    assert not night2.master.exists()  # the stamped master it superseded is gone
    report = json.loads((outbox / "run-report.json").read_text(encoding="utf-8"))
    assert report["stale"] == [] and report["master"] == str(usual)
    assert first.exit_code == night3.exit_code == 0


def test_a_locked_run_report(inbox: Path, outbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locks = Locks(monkeypatch)
    s = Settings(inbox=inbox, outbox=outbox)
    run_merge(s)
    usual = outbox / "run-report.json"
    rerate(inbox, "D")
    locks.lock(usual)
    night2 = run_merge(s)
    assert night2.report_path != usual and night2.report_path.is_file()
    written = json.loads(night2.report_path.read_text(encoding="utf-8"))
    assert written["stale"] == [{"output": "実行レポート", "usual": str(usual), "written": str(night2.report_path)}]
    assert f"実行レポート: {night2.report_path}" in render_merge(night2)  # the path actually written
    # status reads the newest report, wherever it had to go
    status = submission_status(s)
    assert status.report_path == night2.report_path
    assert str(night2.report_path) in render_status(status)
    # night 3: unlocked, nothing new: run-report.json is current again, the stamped one removed
    locks.release()
    night3 = run_merge(s)
    assert night3.report_path == usual and not night2.report_path.exists()
    assert submission_status(s).report_path == usual
    assert json.loads(usual.read_text(encoding="utf-8"))["stale"] == []


def test_a_locked_feedback_copy_and_the_reminder(inbox: Path, outbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locks = Locks(monkeypatch)
    s = Settings(inbox=inbox, outbox=outbox)
    rerate(inbox, "E")
    run_merge(s)
    usual = outbox / "feedback" / f"介護福祉課_{CARE}"
    assert recorded_source(usual) == json.loads((outbox / "run-report.json").read_text("utf-8"))["files"][
        [f["name"] for f in json.loads((outbox / "run-report.json").read_text("utf-8"))["files"]].index(CARE)]["sha256"]
    # night 2: a new wrong version arrives while last night's copy is open
    edit_return(inbox / CARE, inbox / CARE, {CARE_KEY: {"rating": "F"}})
    locks.lock(usual)
    night2 = run_merge(s)
    [copy] = [p for p in night2.feedback if p.name.startswith("介護福祉課_")]
    assert copy != usual and copy.is_file()
    entry = next(f for f in night2.report["files"] if f["name"] == CARE)
    assert entry["feedback"] == copy.name and recorded_source(copy) == entry["sha256"]
    assert recorded_source(usual) != entry["sha256"]  # the usual name holds last night's copy
    assert {"output": "差し戻し用の写し", "usual": str(usual), "written": str(copy)} in night2.report["stale"]
    [care] = [r for r in plan_reminders(s) if r.office == "介護福祉課"]
    assert care.attachments == (copy,)  # the copy of this night, never the stale one
    # night 3: unlocked: the usual copy is rewritten and the stamped one removed
    locks.release()
    night3 = run_merge(s)
    entry = next(f for f in night3.report["files"] if f["name"] == CARE)
    assert entry["feedback"] == usual.name and recorded_source(usual) == entry["sha256"]
    assert not copy.exists()
    [care] = [r for r in plan_reminders(s) if r.office == "介護福祉課"]
    assert care.attachments == (usual,)


def test_remind_with_a_locked_draft(inbox: Path, outbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locks = Locks(monkeypatch)
    (inbox / CARE).unlink()
    s = Settings(inbox=inbox, outbox=outbox)
    run_merge(s)
    [first] = write_reminders(s)
    assert first.name == "介護福祉課.eml"
    locks.lock(first)
    [second] = write_reminders(s)  # no exit 3: the draft goes beside the locked one
    assert second != first and second.parent == first.parent and second.name.startswith("介護福祉課_")
    msg = email.message_from_bytes(second.read_bytes(), policy=email.policy.default)
    assert msg["X-Unsent"] == "1" and "介護福祉課" in msg["Subject"]
    text = render_reminders([second], s)
    assert f"注意: 介護福祉課.eml が開かれていたため(Outlook など)、{second.name} に書き出しました。" in text
    # closed again: the usual name is written and the stamped draft removed
    locks.release()
    [third] = write_reminders(s)
    assert third == first and not second.exists()


def test_templates_keep_a_hand_edited_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outbox = tmp_path / "outbox"
    toml = tmp_path / "pipeline.toml"
    toml.write_text(f'[paths]\ninbox = "{tmp_path / "inbox"}"\noutbox = "{outbox}"\n', encoding="utf-8")
    (tmp_path / "inbox").mkdir()

    def templates(*extra: str):
        return CliRunner().invoke(cli, ["--settings", str(toml), "templates", *extra], catch_exceptions=False)

    assert templates().exit_code == 0
    folder = outbox / "templates"
    [edited] = [p for p in folder.glob("*.xlsx") if "健康課" in p.name]
    wb = openpyxl.load_workbook(edited)
    wb.worksheets[0]["A1"] = "健康課 記入用(課内で追記)"
    wb.save(edited)
    by_hand = edited.read_bytes()
    untouched = {p: p.read_bytes() for p in folder.glob("*.xlsx") if p != edited}
    again = templates()
    assert again.exit_code == 0
    assert edited.read_bytes() == by_hand  # never overwritten
    [new] = stamped(folder, edited.stem, ".xlsx")
    assert f"template-edited: テンプレート {edited.name} は" in again.output and new.name in again.output
    assert openpyxl.load_workbook(new).worksheets[0]["A1"].value != "健康課 記入用(課内で追記)"
    # the others, as the command wrote them, are written again under their usual names
    assert sorted(folder.glob("*.xlsx")) == sorted([*untouched, edited, new])
    forced = templates("--force")
    assert forced.exit_code == 0 and "template-edited" not in forced.output
    assert edited.read_bytes() != by_hand
    assert openpyxl.load_workbook(edited).worksheets[0]["A1"].value != "健康課 記入用(課内で追記)"


def _chattr(flag: str, path: Path) -> bool:
    import shutil as _shutil
    import subprocess

    if _shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


def test_a_really_immutable_master_on_linux(inbox: Path, outbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock as the file system gives it (chattr +i: rename over it fails with EPERM), no stand-in."""
    monkeypatch.setattr(atomic, "REPLACE_RETRY_DELAYS", ())
    s = Settings(inbox=inbox, outbox=outbox)
    run_merge(s)
    usual = outbox / master_name(load_catalog("R6"))
    if not _chattr("+i", usual):
        pytest.skip("chattr +i is not available here (no chattr, not root, or the file system has no such flag)")
    try:
        rerate(inbox, "D")
        night2 = run_merge(s)
        assert night2.master != usual and rating_in(night2.master, CARE_KEY) == "D"
        assert night2.report["stale"] == [{"output": "集約ブック", "usual": str(usual), "written": str(night2.master)}]
    finally:
        _chattr("-i", usual)
    night3 = run_merge(s)
    assert night3.master == usual and rating_in(usual, CARE_KEY) == "D" and not night2.master.exists()
