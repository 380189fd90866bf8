"""A feedback copy belongs to one source file: its name comes from the office and the file's name in
the inbox (never from the order of the night), it records the sha256 of the bytes it annotates, a
cached verdict reuses it only when that matches, and `remind` attaches only a copy made from the
office's own standing return. Three offices each send 評価表.xlsx from their own folder."""

from __future__ import annotations

import email
import email.policy
import hashlib
import shutil
from datetime import date
from pathlib import Path

import openpyxl
from returns import edit_return

from pipeline.layout import SOURCE_PROPERTY, recorded_source
from pipeline.reader.annotate import FEEDBACK_SHEET
from pipeline.runner import run_merge
from pipeline.settings import Settings
from pipeline.yearly import plan_reminders, write_reminders

TODAY = date(2025, 5, 27)
OWN = {
    "健康課": ("R6_地域福祉計画評価_健康課.xlsx", ("7", "健康課")),
    "介護福祉課": ("R6_地域福祉計画評価_介護福祉課.xlsx", ("9", "介護福祉課")),
    "指導室": ("R6_地域福祉計画評価_指導室.xlsx", ("8", "指導室")),
}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def send(demo_returns: Path, inbox: Path, office: str, rating: str) -> Path:
    """The office's return, with one invalid rating, saved as <office>/評価表.xlsx."""
    template, key = OWN[office]
    target = inbox / office / "評価表.xlsx"
    target.parent.mkdir(parents=True, exist_ok=True)
    return edit_return(demo_returns / template, target, {key: {"rating": rating}})


def setup_night(tmp_path: Path, demo_returns: Path) -> Settings:
    inbox = tmp_path / "inbox"
    shutil.copytree(demo_returns, inbox)
    for template, _ in OWN.values():
        (inbox / template).unlink()
    return Settings(inbox=inbox, outbox=tmp_path / "outbox")


def copies(s: Settings) -> dict[str, str]:
    """Each file's feedback copy as the run report names it."""
    import json

    report = json.loads((s.outbox / "run-report.json").read_text(encoding="utf-8"))
    return {f["name"]: f["feedback"] for f in report["files"] if f["feedback"]}


def check_copy_matches(s: Settings, office: str) -> Path:
    """The office's copy: named after it, made from its own return, and saying so on エラー一覧."""
    source = s.inbox / office / "評価表.xlsx"
    name = copies(s)[f"{office}/評価表.xlsx"]
    assert name == f"{office}_評価表.xlsx"
    copy = s.outbox / "feedback" / name
    assert recorded_source(copy) == sha(source)
    wb = openpyxl.load_workbook(copy)
    assert wb.sheetnames[0] == FEEDBACK_SHEET
    title = wb[FEEDBACK_SHEET]["A1"].value
    assert title.startswith(f"差し戻し {office} {office}/評価表.xlsx: エラー 1 件")
    assert wb.custom_doc_props[SOURCE_PROPERTY].value == sha(source)
    return copy


def attachment_of(s: Settings, office: str) -> bytes | None:
    draft = s.outbox / "reminders" / f"{office}.eml"
    msg = email.message_from_bytes(draft.read_bytes(), policy=email.policy.default)
    parts = list(msg.iter_attachments())  # type: ignore[attr-defined]
    assert len(parts) <= 1
    return parts[0].get_content() if parts else None


def test_three_offices_sending_the_same_name_over_three_nights(tmp_path: Path, demo_returns: Path) -> None:
    s = setup_night(tmp_path, demo_returns)
    # night 1: 介護福祉課 and 健康課
    send(demo_returns, s.inbox, "介護福祉課", "E")
    send(demo_returns, s.inbox, "健康課", "E")
    run_merge(s, today=TODAY)
    care_copy = check_copy_matches(s, "介護福祉課")
    check_copy_matches(s, "健康課")
    # night 2: a third office sends a file of the same name; the others' verdicts come from the cache
    send(demo_returns, s.inbox, "指導室", "E")
    run = run_merge(s, today=TODAY)
    assert {f.name for f in run.files if f.from_cache} >= {"介護福祉課/評価表.xlsx", "健康課/評価表.xlsx"}
    for office in OWN:
        check_copy_matches(s, office)
    assert sorted(p.name for p in (s.outbox / "feedback").iterdir()) == sorted(f"{o}_評価表.xlsx" for o in OWN)
    # night 3: 健康課 sends a corrected file that still has an error elsewhere
    _, key = OWN["健康課"]
    edit_return(demo_returns / OWN["健康課"][0], s.inbox / "健康課" / "評価表.xlsx", {key: {"rating": "良"}})
    run_merge(s, today=TODAY)
    for office in OWN:
        check_copy_matches(s, office)
    # the reminder to 介護福祉課 carries 介護福祉課's copy, made from 介護福祉課's file
    write_reminders(s, today=TODAY)
    attached = attachment_of(s, "介護福祉課")
    assert attached == care_copy.read_bytes()
    assert recorded_source(care_copy) == sha(s.inbox / "介護福祉課" / "評価表.xlsx")
    health = openpyxl.load_workbook(s.outbox / "feedback" / "健康課_評価表.xlsx")[FEEDBACK_SHEET]
    assert "「良」" in str([c.value for row in health.iter_rows() for c in row])  # night 3's error, not night 1's


def test_a_cached_verdict_rewrites_a_copy_made_from_other_bytes(tmp_path: Path, demo_returns: Path) -> None:
    s = setup_night(tmp_path, demo_returns)
    send(demo_returns, s.inbox, "介護福祉課", "E")
    send(demo_returns, s.inbox, "健康課", "E")
    run_merge(s, today=TODAY)
    folder = s.outbox / "feedback"
    # whatever put it there, the file under 介護福祉課's name now holds 健康課's copy
    shutil.copyfile(folder / "健康課_評価表.xlsx", folder / "介護福祉課_評価表.xlsx")
    run = run_merge(s, today=TODAY)
    assert all(f.from_cache for f in run.files if f.name.endswith("評価表.xlsx"))
    check_copy_matches(s, "介護福祉課")
    check_copy_matches(s, "健康課")


def test_remind_never_attaches_a_copy_made_from_another_file(tmp_path: Path, demo_returns: Path) -> None:
    s = setup_night(tmp_path, demo_returns)
    send(demo_returns, s.inbox, "介護福祉課", "E")
    send(demo_returns, s.inbox, "健康課", "E")
    run_merge(s, today=TODAY)
    folder = s.outbox / "feedback"
    shutil.copyfile(folder / "健康課_評価表.xlsx", folder / "介護福祉課_評価表.xlsx")
    [care] = [r for r in plan_reminders(s, today=TODAY) if r.office == "介護福祉課"]
    assert care.attachments == ()
    assert "写しを添付しました" not in care.body
    [health] = [r for r in plan_reminders(s, today=TODAY) if r.office == "健康課"]
    assert health.attachments == (folder / "健康課_評価表.xlsx",)


def test_copy_names_clash_only_with_a_hash_and_never_by_order(tmp_path: Path, demo_returns: Path) -> None:
    """Two files whose names flatten to the same copy name each get a short hash of their own
    name; the other copies keep their plain names, whatever else arrives."""
    s = setup_night(tmp_path, demo_returns)
    send(demo_returns, s.inbox, "介護福祉課", "E")
    nested = s.inbox / "介護福祉課" / "評価表"
    nested.mkdir()
    edit_return(demo_returns / OWN["介護福祉課"][0], nested / "xlsx.xlsx", {OWN["介護福祉課"][1]: {"rating": "F"}})
    flat = s.inbox / "介護福祉課" / "評価表_xlsx.xlsx"
    edit_return(demo_returns / OWN["介護福祉課"][0], flat, {OWN["介護福祉課"][1]: {"rating": "G"}})
    run_merge(s, today=TODAY)
    names = copies(s)
    tag = {n: hashlib.sha1(n.encode()).hexdigest()[:8] for n in names}
    assert names["介護福祉課/評価表.xlsx"] == "介護福祉課_評価表.xlsx"
    assert names["介護福祉課/評価表/xlsx.xlsx"] == f"介護福祉課_評価表_xlsx_{tag['介護福祉課/評価表/xlsx.xlsx']}.xlsx"
    assert names["介護福祉課/評価表_xlsx.xlsx"] == f"介護福祉課_評価表_xlsx_{tag['介護福祉課/評価表_xlsx.xlsx']}.xlsx"
    for source, copy in names.items():
        assert recorded_source(s.outbox / "feedback" / copy) == sha(s.inbox / source)
