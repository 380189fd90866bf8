"""Trust in the wild: realistic variations of how offices and staff return the sheet, each built as
they would produce it, merged with the twelve demo returns, and asserted through what staff read:
the master's cells, 提出状況, the `status` output and the `remind` drafts."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import unicodedata
import zipfile
from datetime import UTC, date, datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import openpyxl
import pytest
import yaml
from builders import RESULTS, office_sheet, write_book
from plan_schemas import SCHEMAS_DIR
from returns import edit_return, saved_time, set_saved

from pipeline.catalog import load_catalog
from pipeline.cli import render_merge
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
CARE = "R6_地域福祉計画評価_介護福祉課.xlsx"


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
    """The hazard: status said 受理 and 全ての担当課の評価がそろいました while remind drafted a 督促 to 健康課.
    What holds: 健康課 is 受理(後の提出にエラーあり) everywhere, its value stays, and nobody is reminded."""
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
    console = render_merge(run).splitlines()  # the merge's one-screen summary reads the same decision
    assert "全ての担当課の評価がそろいました。" in console
    assert not any(line.startswith("未完了の担当課") for line in console)
    assert any(line.startswith("受理済みで後の提出にエラーがある担当課") and "健康課" in line for line in console)
    assert plan_reminders(s, today=TODAY) == []
    assert write_reminders(s, today=TODAY) == []


def test_a_valid_return_followed_by_a_mail_without_attachment(inbox: Path, outbox: Path, schemas: Path) -> None:
    """The hazard: the 「送付しました」 mail with nothing attached made remind nag 健康課 while status said
    受理. What holds: 受理(後の提出にエラーあり), no reminder; the mail is listed for staff."""
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
    s, run = night(inbox, outbox, schemas)
    assert HEALTH_KEY not in master_cells(outbox)
    assert status_sheet(outbox)["健康課"][1:5] == (1, 0, 1, "エラーあり")
    assert status_line(render_status(submission_status(s, today=TODAY)), "健康課")[1] == "エラーあり"
    [reminder] = plan_reminders(s, today=TODAY)
    assert reminder.office == "健康課" and [a.key for a in reminder.missing] == [HEALTH_KEY]
    assert [e.file for e in reminder.errors] == [damaged.name]
    assert "健康課の評価がまだそろっていません。" in reminder.body
    assert "未完了の担当課: 健康課(エラーあり、残り 1)" in render_merge(run).splitlines()


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
    """The hazard: one row-missing error per other assignment saying 「この評価は未提出の扱いです」
    (false), status 受理 while remind nagged. What holds: information naming the earlier file, the file
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


# --- times that can be believed -------------------------------------------------------------------

RECEIVED = datetime(2025, 5, 20, 10, 0, tzinfo=JST)


def dated(path: Path, saved: datetime, received: datetime) -> Path:
    """A return as it lies in the inbox: saved (core.xml) by the office's PC, received (mtime) here."""
    set_saved(path, saved)
    os.utime(path, (received.timestamp(), received.timestamp()))
    return path


def test_a_draft_saved_in_2099_does_not_beat_the_final(inbox: Path, outbox: Path) -> None:
    """The hazard: a draft whose PC clock said 2099 beat every later correction, with only an
    order-conflict warning. What holds: its saved time is not believed (time-in-future), it is ordered by
    when it arrived, and the final wins."""
    key = ("41", "地域福祉課")
    final = edit_return(inbox / WELFARE, inbox / "地域福祉課_最終版.xlsx", {key: {"rating": "C"}})
    draft = edit_return(inbox / WELFARE, inbox / "地域福祉課_下書き.xlsx", {key: {"rating": "D"}})
    (inbox / WELFARE).unlink()
    dated(draft, datetime(2099, 1, 1, 9, tzinfo=UTC), RECEIVED)
    dated(final, RECEIVED + timedelta(hours=2), RECEIVED + timedelta(hours=2, minutes=5))
    _, run = night(inbox, outbox)
    assert master_cells(outbox)[key] == ("C", final.name)
    d, f = file_entry(run, draft.name), file_entry(run, final.name)
    assert (d["order_source"], f["order_source"]) == ("mtime", "saved")
    [future] = [i for i in d["issues"] if i["code"] == "time-in-future"]
    assert future["severity"] == "warning"
    assert "ブックの保存日時「2099-01-01 " in future["message"] and "ファイルの更新日時で提出の新旧を判断" in future["message"]
    assert d["status"] == "superseded"
    assert "order-conflict" not in [i["code"] for i in d["issues"]]
    assert run.report["exit_code"] == 0


def message_with(workbook: bytes, name: str, when: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "地域福祉課 <fukushi@city.example.lg.jp>"
    msg["To"] = "chiiki-fukushi@city.example.lg.jp"
    msg["Subject"] = "評価表"
    msg["Date"] = when
    msg.set_content("評価表を送付します。", charset="iso-2022-jp")
    msg.add_attachment(workbook, maintype="application",
                       subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet", filename=name)
    return msg.as_bytes()


def test_an_email_dated_in_the_future_is_ordered_by_its_file_time(inbox: Path, outbox: Path) -> None:
    """A mail whose Date says 2099 and whose workbook was saved by the same wrong clock: neither
    time is believed, the file time orders it, and the report says which evidence did."""
    key = ("41", "地域福祉課")
    final = edit_return(inbox / WELFARE, inbox / "地域福祉課_最終版.xlsx", {key: {"rating": "C"}})
    draft = edit_return(inbox / WELFARE, inbox / "下書き.xlsx", {key: {"rating": "D"}})
    set_saved(draft, datetime(2099, 3, 1, tzinfo=UTC))
    eml = inbox / "地域福祉課_送付.eml"
    eml.write_bytes(message_with(draft.read_bytes(), "評価表.xlsx", "Sun, 01 Mar 2099 10:00:00 +0900"))
    draft.unlink()
    (inbox / WELFARE).unlink()
    os.utime(eml, (RECEIVED.timestamp(), RECEIVED.timestamp()))
    dated(final, RECEIVED + timedelta(hours=1), RECEIVED + timedelta(hours=1))
    _, run = night(inbox, outbox)
    name = "地域福祉課_送付.eml ＞ 評価表.xlsx"
    e = file_entry(run, name)
    assert e["order_source"] == "mtime"
    messages = [i["message"] for i in e["issues"] if i["code"] == "time-in-future"]
    assert len(messages) == 2
    assert sorted(m[:m.index("「")] for m in messages) == ["ブックの保存日時", "メールの送信日時"]
    assert all("「2099-03-0" in m and "ファイルの更新日時で提出の新旧を判断" in m for m in messages)
    assert master_cells(outbox)[key] == ("C", final.name)


def test_identical_saved_times_are_a_tie_never_newer(inbox: Path, outbox: Path) -> None:
    """Two copies saved at the same second: before, the one chosen by file name was 「より新しい提出」.
    What holds: order-tie names both files and what broke the tie."""
    key = ("41", "地域福祉課")
    same = RECEIVED - timedelta(hours=1)
    first = edit_return(inbox / WELFARE, inbox / "地域福祉課_A.xlsx", {key: {"rating": "C"}})
    second = edit_return(inbox / WELFARE, inbox / "地域福祉課_B.xlsx", {key: {"rating": "D"}})
    (inbox / WELFARE).unlink()
    dated(first, same, RECEIVED + timedelta(minutes=10))  # arrived later
    dated(second, same, RECEIVED)
    _, run = night(inbox, outbox)
    assert master_cells(outbox)[key] == ("C", first.name)
    loser = file_entry(run, second.name)
    [tie] = [i for i in loser["issues"] if i["code"] == "order-tie"]
    assert first.name in tie["message"] and second.name in tie["message"]
    assert "ブックの保存日時が同じ" in tie["message"] and "ファイルの更新日時が新しい方" in tie["message"]
    superseded = [i["message"] for i in loser["issues"] if i["code"] == "row-superseded"]
    assert superseded and not any("より新しい提出" in m for m in superseded)
    # no time at all on either side: the name decides, and says so
    third = edit_return(inbox / first.name, inbox / "地域福祉課_C.xlsx", {key: {"rating": "B"}})
    dated(third, same, RECEIVED + timedelta(minutes=10))
    _, run = night(inbox, outbox)
    [tie] = [i for i in file_entry(run, first.name)["issues"] if i["code"] == "order-tie"]
    assert "ファイル名の順" in tie["message"] and third.name in tie["message"]
    assert master_cells(outbox)[key] == ("B", third.name)


# --- messages that say how to fix -----------------------------------------------------------------


def test_continuation_text_in_a_row_of_its_own_is_one_hint(inbox: Path, outbox: Path) -> None:
    """An Enter pressed where Alt+Enter was meant: the rest of 事業実績・評価理由 in a row of its own.
    The hazard: three required-missing. What holds: one row-continuation naming the cell and the row above."""
    sheets = office_sheet(["介護福祉課"])
    rows = sheets["評価表"]
    first = rows[3]
    rows.insert(4, [None, None, None, None, None, "あわせて、地域包括支援センターとの連絡会を年4回開催した。", None, None])
    (inbox / CARE).unlink()
    write_book(inbox / "介護福祉課_評価.xlsx", sheets)
    _, run = night(inbox, outbox)
    e = file_entry(run, "介護福祉課_評価.xlsx")
    codes = [i["code"] for i in e["issues"]]
    assert "required-missing" not in codes and codes.count("row-continuation") == 1
    [hint] = [i for i in e["issues"] if i["code"] == "row-continuation"]
    assert (hint["sheet"], hint["cell"], hint["severity"]) == ("評価表", "F5", "warning")
    assert f"上の行(事業No.{first[1]})の「事業実績・評価理由」の続き" in hint["message"]
    assert "あわせて、地域包括支援センターとの連絡会" in hint["message"] and "Alt+Enter" in hint["message"]
    assert e["status"] == "accepted"
    assert status_sheet(outbox)["介護福祉課"][4] == "受理"


def test_a_renamed_section_is_told_the_alias_to_add(inbox: Path, outbox: Path, tmp_path: Path) -> None:
    """組織改正: 健康課 is now 保健センター and returns its own copy under the new name. The hazard:
    department-unknown on every row and no word of the fix. What holds: one hint with the YAML line; with
    that line added, the next night reads the return."""
    (inbox / HEALTH).unlink()
    write_book(inbox / "健康課" / "R6評価.xlsx", office_sheet(["健康課"], misspell={HEALTH_KEY: "保健センター"}))
    _, run = night(inbox, outbox)
    e = file_entry(run, "健康課/R6評価.xlsx")
    [hint] = [i for i in e["issues"] if i["code"] == "department-alias-missing"]
    assert "aliases: [福祉保健部健康課, 保健センター]" in hint["message"] and "schemas/departments.yaml" in hint["message"]
    assert [i["code"] for i in e["issues"]].count("department-unknown") == 1
    assert status_sheet(outbox)["健康課"][4] == "エラーあり"
    # the fix, as the message says
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, schemas, ignore=shutil.ignore_patterns("*.py", "__pycache__", ".compiled"))
    yml = schemas / "departments.yaml"
    text = yml.read_text(encoding="utf-8")
    old = "  - name: 健康課\n    aliases: [福祉保健部健康課]\n"
    assert old in text
    yml.write_text(text.replace(old, "  - name: 健康課\n    aliases: [福祉保健部健康課, 保健センター]\n"), encoding="utf-8")
    night(inbox, outbox, schemas)
    assert master_cells(outbox)[HEALTH_KEY] == (RESULTS[HEALTH_KEY]["rating"], "健康課/R6評価.xlsx")


def test_a_date_header_that_cannot_be_parsed_is_quoted_once(inbox: Path, outbox: Path) -> None:
    """`Date: 2025年5月20日 10:00`: before, 「Date ヘッダーがありません」 twice for one file. What holds: one
    email-date-unparsed quoting it."""
    data = (inbox / HEALTH).read_bytes()
    (inbox / HEALTH).unlink()
    raw = message_with(data, HEALTH, "")  # the header as a Japanese client wrote it, raw UTF-8
    assert b"\nDate:\n" in raw
    (inbox / "健康課_回答.eml").write_bytes(raw.replace(b"\nDate:\n", "\nDate: 2025年5月20日 10:00\n".encode()))
    _, run = night(inbox, outbox)
    issues = [(f["name"], i) for f in run.report["files"] for i in f["issues"]]
    dates = [(n, i) for n, i in issues if i["code"].startswith("email-date")]
    assert len(dates) == 1
    name, issue = dates[0]
    assert name == f"健康課_回答.eml ＞ {HEALTH}" and issue["code"] == "email-date-unparsed"
    assert "「2025年5月20日 10:00」" in issue["message"] and "ヘッダーがありません" not in issue["message"]
    assert master_cells(outbox)[HEALTH_KEY] == (RESULTS[HEALTH_KEY]["rating"], f"健康課_回答.eml ＞ {HEALTH}")


# --- the answer sheet -----------------------------------------------------------------------------

DRAFT_KEY = ("41", "地域福祉課")


def with_sheet_in_front(original: Path, target: Path, title: str, *, hidden: bool = False,
                        label_year: str | None = None) -> Path:
    """A department keeps a copy of 記入シート as the first sheet (last year's for reference, or an
    old draft) and fills the real 記入シート behind it: the copy holds other ratings."""
    wb = openpyxl.load_workbook(original)
    real = wb[TEMPLATE_SHEET]
    copy = wb.copy_worksheet(real)
    copy.title = title
    wb.move_sheet(copy, offset=-wb.index(copy))
    for r in range(FIRST_DATA_ROW, copy.max_row + 1):
        if copy[f"G{r}"].value:
            copy[f"G{r}"].value = "D"
    if label_year:
        for cell in copy[FIRST_DATA_ROW - 1]:
            if isinstance(cell.value, str) and "令和6年度" in cell.value:
                cell.value = cell.value.replace("令和6年度", label_year)
    if hidden:
        copy.sheet_state = "hidden"
    wb.active = wb.index(real)
    wb.save(target)
    return target


@pytest.mark.parametrize(("title", "hidden", "label_year", "shown"), [
    ("前年度(R5)参考", False, "令和5年度", "(この表は令和5年度のものです)"),
    ("旧", True, None, "(非表示)"),
])
def test_a_template_return_is_read_from_its_answer_sheet(inbox: Path, outbox: Path, title: str, hidden: bool,
                                                         label_year: str | None, shown: str) -> None:
    """The hazard: the first sheet's values went into the master and the real answers were duplicate-row,
    提出状況 受理. What holds: 記入シート is read wherever it stands; the other sheet is extra-sheet."""
    path = with_sheet_in_front(inbox / WELFARE, inbox / WELFARE, title, hidden=hidden, label_year=label_year)
    assert openpyxl.load_workbook(path).sheetnames[0] == title
    _, run = night(inbox, outbox)
    catalog = load_catalog("R6")
    cells = master_cells(outbox)
    for a in catalog.assignments_for_office("地域福祉課"):
        assert cells[(catalog.projects[a.project].label, a.department)] == (RESULTS[a.key]["rating"], WELFARE)
    e = file_entry(run, WELFARE)
    assert e["status"] == "accepted"
    codes = [i["code"] for i in e["issues"]]
    assert "duplicate-row" not in codes
    [extra] = [i for i in e["issues"] if i["code"] == "extra-sheet"]
    assert extra["sheet"] == title and f"シート「{title}」" in extra["message"] and shown in extra["message"]
    assert "記入シート" in extra["message"]
    assert status_sheet(outbox)["地域福祉課"][4] == "受理"


def test_a_departments_own_workbook_with_two_years_sheets(inbox: Path, outbox: Path) -> None:
    """健康課 keeps last year's table in front of this year's in its own workbook: this year's is read."""
    sheets = {"R5": office_sheet(["健康課"], year_label="令和5年度", answers={HEALTH_KEY: {"rating": "D"}})["評価表"],
              "R6": office_sheet(["健康課"])["評価表"]}
    (inbox / HEALTH).unlink()
    write_book(inbox / "健康課_評価表.xlsx", sheets)
    _, run = night(inbox, outbox)
    assert master_cells(outbox)[HEALTH_KEY] == (RESULTS[HEALTH_KEY]["rating"], "健康課_評価表.xlsx")
    e = file_entry(run, "健康課_評価表.xlsx")
    assert e["status"] == "accepted"
    [extra] = [i for i in e["issues"] if i["code"] == "extra-sheet"]
    assert extra["sheet"] == "R5" and "令和5年度" in extra["message"]


def test_two_undated_copies_of_one_table_are_ambiguous(inbox: Path, outbox: Path) -> None:
    """Two sheets holding the same rows, neither naming a year: nothing is guessed."""
    first = office_sheet(["健康課"], answers={HEALTH_KEY: {"rating": "D"}}, title="評価表")["評価表"]
    second = office_sheet(["健康課"], title="評価表")["評価表"]
    for rows in (first, second):
        rows[2][5] = "事業実績・評価理由"  # no year in the label either
    (inbox / HEALTH).unlink()
    write_book(inbox / "健康課_評価表.xlsx", {"下書き": first, "Sheet1": second})
    s, run = night(inbox, outbox)
    e = file_entry(run, "健康課_評価表.xlsx")
    assert e["status"] == "rejected"
    [issue] = [i for i in e["issues"] if i["code"] == "sheets-ambiguous"]
    assert "「下書き」、「Sheet1」" in issue["message"] and issue["severity"] == "error"
    assert HEALTH_KEY not in master_cells(outbox)
    assert status_sheet(outbox)["健康課"][4] == "エラーあり"
    [reminder] = plan_reminders(s, today=TODAY)
    assert reminder.office == "健康課" and [e.file for e in reminder.errors] == ["健康課_評価表.xlsx"]


# --- names as people type them --------------------------------------------------------------------

CHILD = "子ども家庭センター"


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def test_an_nfd_named_correction_is_its_offices(inbox: Path, outbox: Path) -> None:
    """A correction saved on a Mac: its name decomposed (ど as と + ◌゙). The hazard: office-unverified, and
    the older copy's values stayed. What holds: the name is read as 子ども家庭センター's; shown as found."""
    catalog = load_catalog("R6")
    [key, *_] = [a.key for a in catalog.assignments_for_office(CHILD)]
    rating = "C" if RESULTS[key]["rating"] != "C" else "B"
    name = nfd(f"R6_{CHILD}_修正版.xlsx")
    assert name != unicodedata.normalize("NFC", name)
    path = write_book(inbox / name, office_sheet([CHILD], answers={key: {"rating": rating}}))
    later = saved_time(inbox / f"R6_地域福祉計画評価_{CHILD}.xlsx") + timedelta(hours=1)  # after the original
    dated(path, later, later)
    _, run = night(inbox, outbox)
    e = file_entry(run, name)
    assert (e["office"], e["office_source"], e["status"]) == (CHILD, "file-name", "accepted")
    assert "office-unverified" not in [i["code"] for i in e["issues"]]
    label = (catalog.projects[key[0]].label, key[1])
    assert master_cells(outbox)[label] == (rating, name)


def test_an_nfd_folder_names_the_office(inbox: Path, outbox: Path) -> None:
    """Staff keep one folder per office; a folder made on a Mac has a decomposed name."""
    catalog = load_catalog("R6")
    [key, *_] = [a.key for a in catalog.assignments_for_office(CHILD)]
    (inbox / f"R6_地域福祉計画評価_{CHILD}.xlsx").unlink()
    write_book(inbox / nfd(CHILD) / "評価表.xlsx", office_sheet([CHILD]))
    _, run = night(inbox, outbox)
    e = file_entry(run, f"{nfd(CHILD)}/評価表.xlsx")
    assert (e["office"], e["office_source"], e["status"]) == (CHILD, "file-name", "accepted")
    label = (catalog.projects[key[0]].label, key[1])
    assert master_cells(outbox)[label] == (RESULTS[key]["rating"], f"{nfd(CHILD)}/評価表.xlsx")
    assert status_sheet(outbox)[CHILD][4] == "受理"


# --- a return that cannot be read is still that office's return ---------------------------------

GUIDANCE = "R6_地域福祉計画評価_指導室.xlsx"
SAFETY = "R6_地域福祉計画評価_地域安全課.xlsx"


def test_csv_pdf_and_photo_returns_count_as_received(inbox: Path, outbox: Path, schemas: Path) -> None:
    """The hazard: a CSV, a PDF or a photo of the sheet named for an office was 対象外, the office 未提出
    and the reminder said nothing was received. What holds: received, エラーあり, file-not-workbook saying
    what to send instead; a neutral name stays 対象外."""
    (inbox / HEALTH).unlink()
    (inbox / GUIDANCE).unlink()
    (inbox / SAFETY).unlink()
    (inbox / "健康課_評価表.csv").write_bytes("事業No.,担当課,事業評価\r\n7,健康課,A\r\n".encode("cp932"))
    (inbox / "R6_地域福祉計画評価_指導室.pdf").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n")
    (inbox / "地域安全課").mkdir()
    (inbox / "地域安全課" / "IMG_0412.JPG").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200) + b"\xff\xd9")
    (inbox / "scan.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200) + b"\xff\xd9")
    s, run = night(inbox, outbox, schemas)
    for name, office, kind in (("健康課_評価表.csv", "健康課", "CSV ファイル"),
                               ("R6_地域福祉計画評価_指導室.pdf", "指導室", "PDF ファイル"),
                               ("地域安全課/IMG_0412.JPG", "地域安全課", "画像(写真)")):
        e = file_entry(run, name)
        assert (e["status"], e["office"]) == ("rejected", office), name
        [issue] = e["issues"]
        assert issue["code"] == "file-not-workbook" and f"({kind})" in issue["message"]
        assert "配布したテンプレート(.xlsx)に記入し" in issue["message"]
        row = status_sheet(outbox)[office]
        assert (row[4], row[5]) == ("エラーあり", 1), office
        assert status_line(render_status(submission_status(s, today=TODAY)), office)[1] == "エラーあり"
    assert file_entry(run, "scan.jpg")["status"] == "ignored"
    assert "scan.jpg" not in run.report["unattributed"]
    drafts = {r.office: r for r in plan_reminders(s, today=TODAY)}
    assert set(drafts) == {"健康課", "指導室", "地域安全課"}
    health = drafts["健康課"]
    assert [a.key for a in health.missing] == [HEALTH_KEY] and [e.file for e in health.errors] == ["健康課_評価表.csv"]
    assert "Excel ブックではありません(CSV ファイル)" in health.body


def encrypted_zip(member: str, data: bytes) -> bytes:
    """A zip with a password (PPAP), as 7-Zip or Windows writes it: the member names stay readable."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(member, data)
    raw = bytearray(buf.getvalue())
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = bytes(raw).index(sig)
        struct.pack_into("<H", raw, pos + flag_at, struct.unpack_from("<H", raw, pos + flag_at)[0] | 0x1)
    return bytes(raw)


def test_an_encrypted_zip_with_a_neutral_name_is_its_members_office(inbox: Path, outbox: Path,
                                                                   schemas: Path) -> None:
    """送付ファイル.zip (password set) holding R6_…_子ども家庭センター.xlsx. The hazard: 差出課不明, and
    the office 未提出. What holds: the member's name tells the office: エラーあり with zip-encrypted."""
    original = inbox / f"R6_地域福祉計画評価_{CHILD}.xlsx"
    (inbox / "送付ファイル.zip").write_bytes(encrypted_zip(original.name, original.read_bytes()))
    original.unlink()
    s, run = night(inbox, outbox, schemas)
    e = file_entry(run, "送付ファイル.zip")
    assert (e["status"], e["office"], e["office_source"]) == ("rejected", CHILD, "file-name")
    assert [i["code"] for i in e["issues"]] == ["zip-encrypted"]
    assert "送付ファイル.zip" not in run.report["unattributed"]
    assert status_sheet(outbox)[CHILD][4] == "エラーあり"
    [reminder] = plan_reminders(s, today=TODAY)
    assert reminder.office == CHILD and [e.file for e in reminder.errors] == ["送付ファイル.zip"]
    assert "パスワード" in reminder.body


def test_an_encrypted_workbook_named_for_an_office(inbox: Path, outbox: Path) -> None:
    """A workbook saved with a password to open (Excel's 暗号化): file-encrypted, still the office's."""
    from hostile import cfb

    (inbox / HEALTH).write_bytes(cfb({"EncryptionInfo": b"\x04\x00\x04\x00\x40\x00\x00\x00",
                                      "EncryptedPackage": (inbox / HEALTH).read_bytes()}))
    _, run = night(inbox, outbox)
    e = file_entry(run, HEALTH)
    assert (e["status"], e["office"]) == ("rejected", "健康課")
    assert [i["code"] for i in e["issues"]] == ["file-encrypted"]
    assert status_sheet(outbox)["健康課"][4] == "エラーあり"


def test_an_error_in_the_file_in_use_is_not_a_later_one(inbox: Path, outbox: Path) -> None:
    """健康課 sends its own table with 指導室's row copied in: that row is office-mismatch, its own row
    is used. 受理 as it is: the error is in the file in use, not a later submission."""
    (inbox / HEALTH).unlink()
    write_book(inbox / "健康課_評価表.xlsx", office_sheet(["健康課", "指導室"]))
    _, run = night(inbox, outbox)
    e = file_entry(run, "健康課_評価表.xlsx")
    assert e["status"] == "partial" and "office-mismatch" in [i["code"] for i in e["issues"]]
    assert master_cells(outbox)[HEALTH_KEY] == (RESULTS[HEALTH_KEY]["rating"], "健康課_評価表.xlsx")
    assert status_sheet(outbox)["健康課"][4] == "受理"
