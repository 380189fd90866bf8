"""Trust in the wild: realistic variations of how offices and staff return the sheet, each built as
they would produce it, merged with the twelve demo returns, and asserted through what staff read:
the master's cells, 提出状況, the `status` output and the `remind` drafts."""

from __future__ import annotations

import json
import os
import shutil
from datetime import date, datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import openpyxl
import pytest
import yaml
from builders import RESULTS
from plan_schemas import SCHEMAS_DIR
from returns import saved_time, set_saved

from pipeline.catalog import load_catalog
from pipeline.master import master_name
from pipeline.runner import run_merge, run_validate
from pipeline.settings import Settings
from pipeline.templates import FIRST_DATA_ROW, TEMPLATE_SHEET
from pipeline.yearly import plan_reminders, render_status, submission_status, write_reminders

JST = timezone(timedelta(hours=9))
TODAY = date(2025, 5, 27)
DEADLINE = date(2025, 5, 30)
WELFARE = "R6_地域福祉計画評価_地域福祉課.xlsx"
HEALTH = "R6_地域福祉計画評価_健康課.xlsx"
HEALTH_KEY = ("7", "健康課")
HEALTH_SENDER = "kenko@city.example.lg.jp"


@pytest.fixture
def schemas(tmp_path) -> Path:
    """The shipped catalog, with 健康課's address registered."""
    folder = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__", ".compiled"))
    registry = yaml.safe_load((folder / "departments.yaml").read_text(encoding="utf-8"))
    for office in registry["offices"]:
        if office["name"] == "健康課":
            office["senders"] = [HEALTH_SENDER]
    (folder / "departments.yaml").write_text(yaml.safe_dump(registry, allow_unicode=True), encoding="utf-8")
    return folder


def night(inbox: Path, outbox: Path, schemas: Path | None = None) -> tuple[Settings, object]:
    s = Settings(inbox=inbox, outbox=outbox, deadline=DEADLINE, schemas=schemas)
    return s, run_merge(s, today=TODAY)


def master_cells(outbox: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """評価一覧: (事業No. as printed, 担当課) → (事業評価, 提出ファイル)."""
    ws = openpyxl.load_workbook(outbox / master_name(load_catalog("R6")), read_only=True)["評価一覧"]
    rows = list(ws.iter_rows(values_only=True))
    i = {h: rows[0].index(h) for h in ("事業No.", "担当課", "事業評価", "提出ファイル")}
    return {(str(r[i["事業No."]]), r[i["担当課"]]): (r[i["事業評価"]], r[i["提出ファイル"]]) for r in rows[1:]}


def status_sheet(outbox: Path) -> dict[str, tuple]:
    """提出状況's office table: 課 → the row (担当件数, 受理件数, 未提出件数, 状況, 受信ファイル数, …)."""
    ws = openpyxl.load_workbook(outbox / master_name(load_catalog("R6")), read_only=True)["提出状況"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:5] == ("課", "担当件数", "受理件数", "未提出件数", "状況")
    out = {}
    for row in rows[1:]:
        if not row or row[0] is None:
            break
        out[row[0]] = row
    return out


def status_line(text: str, office: str) -> list[str]:
    [line] = [x for x in text.splitlines() if x.startswith(office + "\t")]
    return line.split("\t")


def file_entry(run, name: str) -> dict:
    return next(f for f in run.report["files"] if f["name"] == name)


def mail_without_attachment(sender: str, when: datetime) -> bytes:
    """「送付しました」 — and the attachment forgotten."""
    msg = EmailMessage()
    msg["From"] = f"健康課 担当者 <{sender}>"
    msg["To"] = "chiiki-fukushi@city.example.lg.jp"
    msg["Subject"] = "【回答】地域福祉計画 評価表(健康課)"
    msg["Date"] = format_datetime(when)
    msg.set_content("お世話になっております。評価表を送付しました。よろしくお願いします。", charset="iso-2022-jp")
    return msg.as_bytes()


# --- one answer to "who still owes what" ----------------------------------------------------------


def test_a_valid_return_followed_by_a_damaged_copy(inbox: Path, outbox: Path, schemas: Path) -> None:
    """Before: status said 受理 and 全ての担当課の評価がそろいました while remind drafted a 督促 to 健康課.
    Now: 健康課 is 受理(後の提出にエラーあり) everywhere, its value stays, and nobody is reminded."""
    good = inbox / HEALTH
    damaged = inbox / "R6_地域福祉計画評価_健康課_再送.xlsx"
    damaged.write_bytes(good.read_bytes()[:2500])  # cut off in transit
    later = good.stat().st_mtime + 3600
    os.utime(damaged, (later, later))
    s, run = night(inbox, outbox, schemas)

    assert master_cells(outbox)[HEALTH_KEY] == (RESULTS[HEALTH_KEY]["rating"], HEALTH)
    assert file_entry(run, damaged.name)["status"] == "rejected"
    row = status_sheet(outbox)["健康課"]
    assert row[1:6] == (1, 1, 0, "受理(後の提出にエラーあり)", 2)
    assert row[9].startswith(f"{damaged.name}: ファイルが壊れている")
    office = next(o for o in run.report["offices"] if o["office"] == "健康課")
    assert (office["status"], office["owes"], office["error_files"]) == ("受理", False, [damaged.name])

    status = submission_status(s, today=TODAY)
    text = render_status(status)
    assert status.exit_code == 0
    assert status_line(text, "健康課")[1:5] == ["受理(後の提出にエラーあり)", "1", "1", "0"]
    assert "全ての担当課の評価がそろいました。" in text
    assert "受理済みで後の提出にエラーがある課: 健康課" in text
    assert plan_reminders(s, today=TODAY) == []
    assert write_reminders(s, today=TODAY) == []


def test_a_valid_return_followed_by_a_mail_without_attachment(inbox: Path, outbox: Path, schemas: Path) -> None:
    """Before: the 「送付しました」 mail with nothing attached made remind nag 健康課 while status said
    受理. Now: 受理(後の提出にエラーあり), no reminder; the mail is listed for staff."""
    after = datetime.fromtimestamp((inbox / HEALTH).stat().st_mtime, JST) + timedelta(hours=1)
    (inbox / "健康課から.eml").write_bytes(mail_without_attachment(HEALTH_SENDER, after))
    s, run = night(inbox, outbox, schemas)
    e = file_entry(run, "健康課から.eml")
    assert (e["status"], e["office"], e["office_source"]) == ("rejected", "健康課", "sender")
    assert [i["code"] for i in e["issues"]] == ["email-no-attachment"]
    assert master_cells(outbox)[HEALTH_KEY] == (RESULTS[HEALTH_KEY]["rating"], HEALTH)
    assert status_sheet(outbox)["健康課"][4] == "受理(後の提出にエラーあり)"
    assert status_line(render_status(submission_status(s, today=TODAY)), "健康課")[1] == "受理(後の提出にエラーあり)"
    assert write_reminders(s, today=TODAY) == []


def test_a_damaged_first_return_still_owes_and_is_reminded_of_exactly_what(inbox: Path, outbox: Path,
                                                                          schemas: Path) -> None:
    """The same damaged copy with no valid return before it: エラーあり, and the reminder names the
    one missing assignment and the file's error."""
    good = inbox / HEALTH
    damaged = inbox / "R6_地域福祉計画評価_健康課_再送.xlsx"
    damaged.write_bytes(good.read_bytes()[:2500])
    good.unlink()
    s, _ = night(inbox, outbox, schemas)
    assert HEALTH_KEY not in master_cells(outbox)
    assert status_sheet(outbox)["健康課"][1:5] == (1, 0, 1, "エラーあり")
    assert status_line(render_status(submission_status(s, today=TODAY)), "健康課")[1] == "エラーあり"
    [reminder] = plan_reminders(s, today=TODAY)
    assert reminder.office == "健康課" and [a.key for a in reminder.missing] == [HEALTH_KEY]
    assert [e.file for e in reminder.errors] == [damaged.name]
    assert "健康課の評価がまだそろっていません。" in reminder.body


# --- partial corrections --------------------------------------------------------------------------


def one_row_correction(original: Path, target: Path, key: tuple[str, str], rating: str, saved: datetime) -> Path:
    """The office's template with every row deleted but the one it corrects (Excel: select rows,
    右クリック → 削除), the rating changed, saved later."""
    wb = openpyxl.load_workbook(original)
    ws = wb[TEMPLATE_SHEET]
    keep = None
    for r in range(ws.max_row, FIRST_DATA_ROW - 1, -1):
        if (str(ws[f"B{r}"].value), str(ws[f"E{r}"].value)) == key:
            keep = r
    assert keep is not None
    if ws.max_row > keep:
        ws.delete_rows(keep + 1, ws.max_row - keep)
    ws.delete_rows(FIRST_DATA_ROW, keep - FIRST_DATA_ROW)
    ws[f"G{FIRST_DATA_ROW}"].value = rating
    wb.save(target)
    set_saved(target, saved)
    return target


def test_a_one_row_correction_keeps_every_other_row_of_the_earlier_return(inbox: Path, outbox: Path,
                                                                          schemas: Path) -> None:
    """Before: one row-missing error per other assignment saying 「この評価は未提出の扱いです」
    (false), status 受理 while remind nagged. Now: information naming the earlier file, the file
    accepted, 受理, no reminder."""
    key = ("41", "地域福祉課")
    assert RESULTS[key]["rating"] != "C"
    fix = one_row_correction(inbox / WELFARE, inbox / "地域福祉課_修正_事業41.xlsx", key, "C",
                             saved_time(inbox / WELFARE) + timedelta(days=1))
    s, run = night(inbox, outbox, schemas)
    cells = master_cells(outbox)
    assert cells[key] == ("C", fix.name)
    catalog = load_catalog("R6")
    others = [a for a in catalog.assignments_for_office("地域福祉課") if a.key != key]
    assert len(others) == 29
    for a in others:
        assert cells[(catalog.projects[a.project].label, a.department)] == (RESULTS[a.key]["rating"], WELFARE)
    e = file_entry(run, fix.name)
    assert e["status"] == "accepted"
    codes = [i["code"] for i in e["issues"]]
    assert "row-missing" not in codes and codes.count("row-from-earlier") == 29
    note = next(i for i in e["issues"] if i["code"] == "row-from-earlier")
    assert note["severity"] == "warning"
    assert f"このファイルにはありません。前回の提出({WELFARE})の評価を使います" in note["message"]
    assert status_sheet(outbox)["地域福祉課"][1:5] == (30, 30, 0, "受理")
    assert status_line(render_status(submission_status(s, today=TODAY)), "地域福祉課")[1] == "受理"
    assert run.report["exit_code"] == 0
    assert write_reminders(s, today=TODAY) == []


def test_a_one_row_return_with_nothing_earlier_owes_the_rest(inbox: Path, outbox: Path, schemas: Path) -> None:
    """With no earlier return the absent rows stay row-missing errors, and the reminder names them."""
    key = ("41", "地域福祉課")
    only = one_row_correction(inbox / WELFARE, inbox / "地域福祉課_事業41のみ.xlsx", key, "C",
                              saved_time(inbox / WELFARE))
    (inbox / WELFARE).unlink()
    s, run = night(inbox, outbox, schemas)
    e = file_entry(run, only.name)
    assert e["status"] == "partial"
    assert [i["code"] for i in e["issues"]].count("row-missing") == 29
    assert status_sheet(outbox)["地域福祉課"][1:5] == (30, 1, 29, "エラーあり")
    [reminder] = plan_reminders(s, today=TODAY)
    assert reminder.office == "地域福祉課" and len(reminder.missing) == 29 and key not in {a.key for a in reminder.missing}


def test_validate_tells_a_partial_correction_from_a_missing_row(inbox: Path, tmp_path: Path) -> None:
    """`validate` over the office's folder decides the same way as the merge."""
    key = ("41", "地域福祉課")
    folder = tmp_path / "地域福祉課"
    folder.mkdir()
    shutil.copy(inbox / WELFARE, folder / WELFARE)
    one_row_correction(inbox / WELFARE, folder / "修正.xlsx", key, "C", saved_time(inbox / WELFARE) + timedelta(hours=3))
    report, _ = run_validate([folder], Settings(inbox=inbox, outbox=tmp_path / "out"))
    by_name = {f.name: f for f in report.files}
    assert by_name["修正.xlsx"].status == "accepted" and report.exit_code == 0
    assert {i.code for i in by_name["修正.xlsx"].issues} == {"row-from-earlier"}


def test_report_keys_of_the_office_decision(inbox: Path, outbox: Path) -> None:
    (inbox / HEALTH).unlink()
    night(inbox, outbox)
    data = json.loads((outbox / "run-report.json").read_text(encoding="utf-8"))
    health = next(o for o in data["offices"] if o["office"] == "健康課")
    assert health["owes"] is True and health["shown"] == "未提出"
    assert health["missing_assignments"] == [{"project": "7", "department": "健康課"}]
    assert all(o["owes"] is False and o["missing_assignments"] == [] for o in data["offices"] if o["office"] != "健康課")
