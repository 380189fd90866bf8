"""E-mail intake end to end: an inbox of saved messages merges like the same returns saved as files."""

from __future__ import annotations

import shutil
import zipfile
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import openpyxl
import yaml
from plan_schemas import SCHEMAS_DIR
from returns import saved_time, set_saved

from pipeline.runner import run_merge
from pipeline.settings import Settings

JST = timezone(timedelta(hours=9))
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class Cp932Name(zipfile.ZipInfo):
    """A member name in cp932 without the UTF-8 flag, as Windows' Explorer writes zips."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:
        return self.filename.encode("cp932"), self.flag_bits & ~0x800


def eml(workbook: Path, sender: str, sent: datetime, subject: str = "【回答】地域福祉計画 評価表") -> bytes:
    """A message as Outlook writes it: ISO-2022-JP subject, the return attached under its Japanese name."""
    msg = EmailMessage()
    msg["From"] = f"担当者 <{sender}>"
    msg["To"] = "chiiki-fukushi@city.example.lg.jp"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(sent)
    msg.set_content("地域福祉課 御中\n\n評価表を送付します。よろしくお願いいたします。\n", charset="iso-2022-jp")
    msg.add_attachment(workbook.read_bytes(), maintype="application", subtype=XLSX.split("/")[1], filename=workbook.name)
    return msg.as_bytes()


def evaluations(path: Path) -> list[tuple]:
    """評価一覧 without the provenance columns (source file, received time)."""
    ws = openpyxl.load_workbook(path, read_only=True)["評価一覧"]
    rows = list(ws.iter_rows(values_only=True))
    keep = [i for i, h in enumerate(rows[0]) if h not in ("提出ファイル", "受信日時")]
    return [tuple(r[i] for i in keep) for r in rows]


def other_sheets(path: Path) -> dict[str, list[tuple]]:
    wb = openpyxl.load_workbook(path, read_only=True)
    # the title lines carry the newest received time, which differs between the two inboxes
    return {
        ws.title: [r for r in ws.iter_rows(values_only=True) if not str(r[0] or "").startswith("最新受信")]
        for ws in wb.worksheets
        if ws.title.startswith(("基本目標", "集計"))
    }


def test_an_inbox_of_emails_gives_the_same_master_as_files(tmp_path, demo_returns):
    files_run = run_merge(Settings(inbox=demo_returns, outbox=tmp_path / "out-files"))
    mails = tmp_path / "mails"
    mails.mkdir()
    sent = datetime(2025, 5, 20, 9, 30, tzinfo=JST)
    for k, wb in enumerate(sorted(demo_returns.glob("*.xlsx"))):
        # half as .eml, the other half zipped with cp932 names inside an .eml
        if k % 2:
            (mails / f"{k:02d}_回答.eml").write_bytes(eml(wb, f"user{k}@city.example.lg.jp", sent + timedelta(minutes=k)))
        else:
            zipped = tmp_path / f"{k:02d}_評価表.zip"
            with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr(Cp932Name(wb.name), wb.read_bytes())
            (mails / f"{k:02d}_回答.eml").write_bytes(eml(zipped, f"user{k}@city.example.lg.jp", sent + timedelta(minutes=k)))
    mail_run = run_merge(Settings(inbox=mails, outbox=tmp_path / "out-mails"))
    assert mail_run.exit_code == files_run.exit_code == 0
    assert mail_run.report["rows"] == files_run.report["rows"] == 69
    assert mail_run.report["goals"] == files_run.report["goals"]
    assert evaluations(mail_run.master) == evaluations(files_run.master)
    assert other_sheets(mail_run.master) == other_sheets(files_run.master)
    names = sorted(f["name"] for f in mail_run.report["files"])
    assert "01_回答.eml ＞ R6_地域福祉計画評価_介護福祉課.xlsx" in names
    assert any(n.startswith("00_回答.eml ＞ 00_評価表.zip ＞ R6_地域福祉計画評価_") for n in names)
    first = next(f for f in mail_run.report["files"] if f["name"].startswith("01_回答.eml"))
    assert first["sender"] == "user1@city.example.lg.jp"
    assert first["subject"] == "【回答】地域福祉計画 評価表"
    assert first["received"] == (sent + timedelta(minutes=1)).astimezone().isoformat(timespec="seconds")


def test_the_date_header_decides_between_workbooks_saved_at_the_same_time(tmp_path, demo_returns):
    wb = demo_returns / "R6_地域福祉計画評価_交通対策課.xlsx"
    book = openpyxl.load_workbook(wb)
    book["記入シート"]["G4"] = "B"
    revised = tmp_path / wb.name
    book.save(revised)
    set_saved(revised, saved_time(wb))  # the workbooks carry the same saved time: the Date decides
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    # the revision was SENT later, though its .eml file is written first (file times must not decide)
    (inbox / "b_revised.eml").write_bytes(eml(revised, "kotsu@city.example.lg.jp", datetime(2025, 5, 21, 10, tzinfo=JST)))
    (inbox / "a_first.eml").write_bytes(eml(wb, "kotsu@city.example.lg.jp", datetime(2025, 5, 20, 10, tzinfo=JST)))
    run = run_merge(Settings(inbox=inbox, outbox=tmp_path / "out"))
    rows = run.outcome.rows
    assert [(r.project, r.rating, r.file) for r in rows] == [("3", "B", f"b_revised.eml ＞ {wb.name}")]
    statuses = {f.name: run.status_of(f) for f in run.files}
    assert statuses[f"a_first.eml ＞ {wb.name}"] == "superseded"


def test_known_senders_are_checked(tmp_path, demo_returns):
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, schemas, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    registry = yaml.safe_load((schemas / "departments.yaml").read_text(encoding="utf-8"))
    for office in registry["offices"]:
        if office["name"] == "交通対策課":
            office["senders"] = ["kotsu@city.example.lg.jp"]
        if office["name"] == "健康課":
            office["senders"] = ["kenko@city.example.lg.jp"]
    (schemas / "departments.yaml").write_text(yaml.safe_dump(registry, allow_unicode=True), encoding="utf-8")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    sent = datetime(2025, 5, 20, 10, tzinfo=JST)
    (inbox / "ok.eml").write_bytes(eml(demo_returns / "R6_地域福祉計画評価_交通対策課.xlsx", "Kotsu@City.Example.lg.jp", sent))
    (inbox / "stranger.eml").write_bytes(eml(demo_returns / "R6_地域福祉計画評価_指導室.xlsx", "someone@example.com", sent))
    (inbox / "proxy.eml").write_bytes(eml(demo_returns / "R6_地域福祉計画評価_地域安全課.xlsx", "kenko@city.example.lg.jp", sent))
    run = run_merge(Settings(inbox=inbox, outbox=tmp_path / "out", schemas=schemas))
    codes = {f.name.split(" ＞ ")[0]: [(i.code, i.severity) for i in f.issues] for f in run.files}
    assert codes == {
        "ok.eml": [],
        "stranger.eml": [("sender-unknown", "warning")],
        "proxy.eml": [("sender-office-mismatch", "warning")],
    }
    assert run.exit_code == 0  # warnings: the rows are accepted
    assert run.report["rows"] == 4
    mismatch = next(i for f in run.files for i in f.issues if i.code == "sender-office-mismatch")
    assert "健康課" in mismatch.message and "地域安全課" in mismatch.message


def test_a_message_without_a_workbook_is_reported(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    msg = EmailMessage()
    msg["From"] = "someone@city.example.lg.jp"
    msg["Subject"] = "評価表(添付忘れ)"
    msg["Date"] = format_datetime(datetime(2025, 5, 20, 10, tzinfo=JST))
    msg.set_content("添付を忘れました。", charset="iso-2022-jp")
    (inbox / "添付なし.eml").write_bytes(msg.as_bytes())
    run = run_merge(Settings(inbox=inbox, outbox=tmp_path / "out"))
    assert run.exit_code == 1
    [f] = run.files
    assert (f.name, f.status, [i.code for i in f.issues]) == ("添付なし.eml", "rejected", ["email-no-attachment"])


def test_an_ods_attached_to_an_email_is_read(tmp_path, demo_returns):
    """A department on LibreOffice mails its return as .ods: read like the .xlsx, with a warning."""
    from hostile import ods_of

    source = demo_returns / "R6_地域福祉計画評価_交通対策課.xlsx"
    ods = tmp_path / "R6_地域福祉計画評価_交通対策課.ods"
    ods.write_bytes(ods_of(source.read_bytes()))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "回答.eml").write_bytes(eml(ods, "kotsu@city.example.lg.jp", datetime(2025, 5, 20, 10, tzinfo=JST)))
    run = run_merge(Settings(inbox=inbox, outbox=tmp_path / "out"))
    [f] = run.files
    assert (f.name, f.status, [i.code for i in f.issues]) == (
        "回答.eml ＞ R6_地域福祉計画評価_交通対策課.ods", "accepted", ["file-legacy-format"])
    assert [(r.project, r.department) for r in run.outcome.rows] == [("3", "交通対策課")]


def test_the_feedback_copy_of_an_ods_return_is_an_xlsx(tmp_path, demo_returns):
    from hostile import ods_of

    source = demo_returns / "R6_地域福祉計画評価_交通対策課.xlsx"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "交通対策課.ods").write_bytes(ods_of(source.read_bytes()))
    run = run_merge(Settings(inbox=inbox, outbox=tmp_path / "out"))
    assert [p.name for p in run.feedback] == ["交通対策課.xlsx"]
    wb = openpyxl.load_workbook(run.feedback[0])  # a real Excel book, not an .xlsx named .ods
    assert "file-legacy-format" in [c.value for row in wb.worksheets[0].iter_rows() for c in row]
