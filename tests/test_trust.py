"""Trust in the nightly master: each careless or unlucky case built the way an office or a
member of staff would produce it, merged with the twelve demo returns, and the master's cells and
the run report asserted. The published answers are the truth: a case that must not change them is
checked against the row each office returned itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import openpyxl
import pytest
import yaml
from builders import RESULTS, office_sheet, write_book
from click.testing import CliRunner
from plan_schemas import SCHEMAS_DIR
from returns import edit_return, saved_time, set_saved

from pipeline import ingest
from pipeline.cli import cli
from pipeline.errors import GuardError, InputError
from pipeline.runner import run_demo, run_merge
from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
JST = timezone(timedelta(hours=9))
WELFARE = "R6_地域福祉計画評価_地域福祉課.xlsx"
HEALTH = "R6_地域福祉計画評価_健康課.xlsx"
GUIDANCE = "R6_地域福祉計画評価_指導室.xlsx"
SELF_RELIANCE = "R6_地域福祉計画評価_自立生活支援課.xlsx"
HEALTH_KEY = ("7", "健康課")
GUIDANCE_KEY = next(k for k in RESULTS if k[1] == "指導室")


def settings(inbox: Path, outbox: Path, **kw) -> Settings:
    return Settings(inbox=inbox, outbox=outbox, **kw)


def master_rows(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """評価一覧: (事業No. as printed, 担当課) → (事業評価, 提出ファイル)."""
    ws = openpyxl.load_workbook(path, read_only=True)["評価一覧"]
    rows = list(ws.iter_rows(values_only=True))
    i = {h: rows[0].index(h) for h in ("事業No.", "担当課", "事業評価", "提出ファイル")}
    return {(str(r[i["事業No."]]), r[i["担当課"]]): (r[i["事業評価"]], r[i["提出ファイル"]]) for r in rows[1:]}


def label(key: tuple[str, str]) -> tuple[str, str]:
    return (key[0].replace("-", "～"), key[1])


def published(key: tuple[str, str]) -> str:
    return RESULTS[key]["rating"]


def entry(run, name: str) -> dict:
    return next(f for f in run.report["files"] if f["name"] == name)


def verdict(run, name: str):
    matches = [f for f in run.files if f.name == name]
    assert len(matches) == 1, [f.name for f in run.files]
    return matches[0]


def codes(f) -> list[str]:
    return sorted(i.code for i in f.issues)


def later(path: Path, hours: int) -> datetime:
    return saved_time(path) + timedelta(hours=hours)


def test_health_key_is_the_health_offices_only_assignment() -> None:
    assert [k for k in RESULTS if k[1] == "健康課"] == [HEALTH_KEY]


# --- which year ---------------------------------------------------------------------------------


def test_last_years_copy_in_the_published_layout_is_rejected(inbox: Path, outbox: Path) -> None:
    """健康課 re-sends last year's sheet: header 事業実績・評価理由 (令和5年度), title 令和5年度, no
    template metadata, saved after this year's return. The hazard: accepted as R6, its rows replaced
    this year's. What holds: year-mismatch, the file rejected, this year's answer kept."""
    old = write_book(inbox / "健康課_評価表.xlsx", office_sheet(
        ["健康課"], year_label="令和5年度", answers={HEALTH_KEY: {"rating": "C", "result": "令和5年度は講座を2回開催した。"}}))
    set_saved(old, later(inbox / HEALTH, 24))
    run = run_merge(settings(inbox, outbox))
    f = verdict(run, "健康課_評価表.xlsx")
    assert (f.status, codes(f)) == ("rejected", ["year-mismatch"])
    message = f.issues[0].message
    assert "令和5年度 の評価表です" in message and "事業実績・評価理由 (令和5年度)" in message and "令和6年度(R6)" in message
    assert master_rows(run.master)[label(HEALTH_KEY)] == (published(HEALTH_KEY), HEALTH)
    assert run.exit_code == 1
    assert (entry(run, "健康課_評価表.xlsx")["office"], entry(run, "健康課_評価表.xlsx")["office_source"]) == (
        "健康課", "file-name")


@pytest.mark.parametrize(
    ("name", "title", "year_label", "rejected"),
    [
        ("評価表.xlsx", "令和5年度 地域福祉計画 評価", "", True),  # the title row names the year
        ("R5_評価表.xlsx", "地域福祉計画 評価", "", True),  # only the file name does
        ("評価表.xlsx", "2023年度 地域福祉計画 評価", "", True),  # a Western year
        ("評価表.xlsx", "2024年度 地域福祉計画 評価", "", False),  # 2024年度 is 令和6年度
        ("R5_評価表.xlsx", "地域福祉計画", "令和6年度", False),  # the header's label comes first
        ("評価表.xlsx", "第4期計画(令和4年度～令和8年度)", "", False),  # a plan period names no year
    ],
)
def test_the_year_is_read_from_the_header_the_title_or_the_file_name(
    tmp_path: Path, name: str, title: str, year_label: str, rejected: bool
) -> None:
    from pipeline.catalog import load_catalog
    from pipeline.validate import validate_paths

    sheets = office_sheet(["交通対策課"], title=title)
    sheets["評価表"][2][5] = f"事業実績・評価理由 ({year_label})" if year_label else "事業実績・評価理由"
    path = write_book(tmp_path / name, sheets)
    (f,) = validate_paths(load_catalog("R6"), [path]).files
    assert (f.status == "rejected") is rejected, f.issues
    assert ("year-mismatch" in codes(f)) is rejected


# --- who sent it ----------------------------------------------------------------------------------


def test_a_workbook_named_for_one_office_cannot_change_another_offices_rows(inbox: Path, outbox: Path) -> None:
    """地域福祉課's workbook also holds 健康課's and 指導室's rows, answered differently, saved last.
    The hazard: it overwrote those offices' answers. What holds: those rows are office-mismatch; its own rows
    are read."""
    path = write_book(inbox / "地域福祉課_回答.xlsx", office_sheet(
        ["地域福祉課", "健康課", "指導室"],
        answers={HEALTH_KEY: {"rating": "D"}, GUIDANCE_KEY: {"rating": "D"}, ("41", "地域福祉課"): {"rating": "C"}}))
    set_saved(path, later(inbox / WELFARE, 24))
    run = run_merge(settings(inbox, outbox))
    f = verdict(run, "地域福祉課_回答.xlsx")
    assert (f.office, f.office_source, f.status) == ("地域福祉課", "file-name", "partial")
    mismatch = [i for i in f.issues if i.code == "office-mismatch"]
    assert sorted(i.value for i in mismatch) == ["健康課", "指導室"]
    assert all(i.cell.startswith("E") for i in mismatch)
    rows = master_rows(run.master)
    assert rows[label(HEALTH_KEY)] == (published(HEALTH_KEY), HEALTH)
    assert rows[label(GUIDANCE_KEY)] == (published(GUIDANCE_KEY), GUIDANCE)
    assert rows[("41", "地域福祉課")] == ("C", "地域福祉課_回答.xlsx")  # its own rows: newest wins


def test_a_file_of_no_known_office_never_overrides_an_offices_own_return(inbox: Path, outbox: Path) -> None:
    """A consolidated workbook typed up by 地域福祉課 in the published layout, named for no office:
    read row by row (office-unverified), filling what no office sent, never replacing an office's
    own rows, however new it is."""
    (inbox / HEALTH).unlink()
    path = write_book(inbox / "取りまとめ.xlsx", office_sheet(
        ["健康課", "指導室"], answers={GUIDANCE_KEY: {"rating": "D"}}))
    set_saved(path, later(inbox / GUIDANCE, 20))
    run = run_merge(settings(inbox, outbox))
    f = verdict(run, "取りまとめ.xlsx")
    assert (f.office, f.office_source, f.status) == ("", "none", "accepted")
    assert codes(f) == ["office-unverified"]
    rows = master_rows(run.master)
    assert rows[label(GUIDANCE_KEY)] == (published(GUIDANCE_KEY), GUIDANCE)  # the office's own return wins
    assert rows[label(HEALTH_KEY)] == (published(HEALTH_KEY), "取りまとめ.xlsx")  # nobody else sent it
    assert "取りまとめ.xlsx" in run.report["unattributed"]
    superseded = [n for n in run.outcome.notes if n.code == "row-superseded" and n.file == "取りまとめ.xlsx"]
    assert len(superseded) == 1 and "提出した課が確認できたファイルを優先" in superseded[0].message


def test_the_published_misprint_in_a_departments_own_file(inbox: Path, outbox: Path) -> None:
    """自立生活支援課 copies its rows from the published table, which prints 自立相談支援課 (事業18),
    and misspells its own name once (自立生括支援課). The hazard: department-unknown, rows lost. What holds:
    both are read as 自立生活支援課, each with a warning."""
    (inbox / SELF_RELIANCE).unlink()
    write_book(inbox / "自立生活支援課_回答.xlsx", office_sheet(
        ["自立生活支援課"], misspell={("18", "自立生活支援課"): "自立相談支援課", ("4", "自立生活支援課"): "自立生括支援課"}))
    run = run_merge(settings(inbox, outbox))
    f = verdict(run, "自立生活支援課_回答.xlsx")
    assert (f.status, f.office_source) == ("accepted", "file-name")
    normalised = {i.value: i.message for i in f.issues if i.code == "value-normalised" and i.column == "担当課"}
    assert set(normalised) == {"自立相談支援課", "自立生括支援課"}
    assert "「自立生括支援課」を「自立生活支援課」として読み込みました" in normalised["自立生括支援課"]
    rows = master_rows(run.master)
    assert rows[("18", "自立生活支援課")] == (published(("18", "自立生活支援課")), "自立生活支援課_回答.xlsx")
    assert rows[("4", "自立生活支援課")][1] == "自立生活支援課_回答.xlsx"
    assert run.report["rows"] == 69 and run.exit_code == 0


def test_a_misspelt_name_in_a_file_of_no_known_office_stays_an_error(tmp_path: Path) -> None:
    from pipeline.catalog import load_catalog
    from pipeline.validate import validate_paths

    path = write_book(tmp_path / "回答.xlsx", office_sheet(
        ["自立生活支援課"], misspell={("4", "自立生活支援課"): "自立生括支援課"}))
    (f,) = validate_paths(load_catalog("R6"), [path]).files
    unknown = [i for i in f.issues if i.code == "department-unknown"]
    assert [i.value for i in unknown] == ["自立生括支援課"]
    assert "近い名前: 自立生活支援課" in unknown[0].message


# --- our own outputs ------------------------------------------------------------------------------


def test_a_copy_of_our_master_in_the_inbox_is_ignored(inbox: Path, outbox: Path) -> None:
    """The hazard: a copy of the master became the newest file and overrode all 69 rows. What holds: it is
    recognised by its document property and ignored (own-output); so is the summary."""
    first = run_merge(settings(inbox, outbox))
    shutil.copy(first.master, inbox / "集約_コピー.xlsx")
    shutil.copy(first.summary, inbox / "集計_写し.xlsx")
    run = run_merge(settings(inbox, outbox))
    for name, kind in (("集約_コピー.xlsx", "集約ブック"), ("集計_写し.xlsx", "集計ブック")):
        f = verdict(run, name)
        assert (f.status, codes(f)) == ("ignored", ["own-output"])
        assert kind in f.issues[0].message and kind in f.reason
    rows = master_rows(run.master)
    assert len(rows) == 69 and all(file.startswith("R6_地域福祉計画評価_") for _, file in rows.values())
    assert run.exit_code == 0


def test_a_feedback_copy_corrected_and_sent_back_is_read(tmp_path: Path, demo_returns: Path) -> None:
    """A feedback copy is ours while it is as we wrote it; saved again by the department (Excel
    rewrites the saved time), it is their corrected return and is read."""
    from pipeline import layout
    from pipeline.catalog import load_catalog
    from pipeline.validate import validate_paths

    catalog = load_catalog("R6")
    copy = tmp_path / "returned.xlsx"
    wb = openpyxl.load_workbook(demo_returns / HEALTH)
    from openpyxl.packaging.custom import StringProperty

    written = datetime(2025, 5, 20, 9, 0, tzinfo=UTC)
    wb.custom_doc_props.append(StringProperty(
        name=layout.OUTPUT_PROPERTY, value=layout.output_mark("feedback", catalog, written.isoformat())))
    wb.save(copy)
    set_saved(copy, written + timedelta(seconds=5))  # as we wrote it
    (f,) = validate_paths(catalog, [copy]).files
    assert (f.status, codes(f)) == ("ignored", ["own-output"])
    set_saved(copy, written + timedelta(days=1))  # corrected and saved by the department
    (f,) = validate_paths(catalog, [copy]).files
    assert (f.status, f.office) == ("accepted", "健康課")


# --- which is newest ------------------------------------------------------------------------------


def test_a_draft_saved_earlier_but_copied_in_later_loses(inbox: Path, outbox: Path) -> None:
    """地域福祉課 corrects its return; staff then copy an early draft into the inbox. The hazard: the
    draft won (newest file time). What holds: the workbook's saved time decides, and order-conflict says so."""
    base = (inbox / WELFARE).stat().st_mtime
    final = edit_return(inbox / WELFARE, inbox / "地域福祉課_最終版.xlsx", {("41", "地域福祉課"): {"rating": "C"}},
                        base + 60, saved=later(inbox / WELFARE, 2))
    draft = edit_return(inbox / WELFARE, inbox / "地域福祉課_下書き.xlsx", {("41", "地域福祉課"): {"rating": "D"}},
                        base + 3600, saved=later(inbox / WELFARE, 1))
    run = run_merge(settings(inbox, outbox))
    assert master_rows(run.master)[("41", "地域福祉課")] == ("C", final.name)
    conflict = [n for n in run.outcome.notes if n.code == "order-conflict"]
    assert [(n.file, n.value) for n in conflict] == [(draft.name, draft.name)]
    assert final.name in conflict[0].message and "地域福祉課" in conflict[0].message
    e = entry(run, draft.name)
    assert e["status"] == "superseded"
    assert "order-conflict" in [i["code"] for i in e["issues"]]
    assert e["saved"] == later(inbox / WELFARE, 1).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert e["received"] == datetime.fromtimestamp(base + 3600).astimezone().isoformat(timespec="seconds")


# --- never a silent wipe --------------------------------------------------------------------------


def outputs(outbox: Path) -> dict[str, bytes]:
    """The merge's outputs (not the log and last-run.json, which record every run, the refused too)."""
    return {str(p.relative_to(outbox)): p.read_bytes() for p in sorted(outbox.rglob("*"))
            if p.is_file() and ".cache" not in p.parts and "logs" not in p.parts
            and p.name not in (".merge.lock", "last-run.json")}


def test_an_emptied_inbox_keeps_every_previous_output(inbox: Path, outbox: Path, tmp_path: Path) -> None:
    """The hazard: an emptied inbox (or a network folder that did not mount) rewrote the master with 0
    of 69 rows, exit 0. What holds: exit 3, every output as it was; --allow-drop does it anyway."""
    assert run_merge(settings(inbox, outbox)).report["rows"] == 69
    before = outputs(outbox)
    for p in inbox.iterdir():
        p.unlink()
    with pytest.raises(GuardError, match="69 件から 0 件") as caught:
        run_merge(settings(inbox, outbox))
    assert "ファイルが受付フォルダにありません 69 件" in str(caught.value)
    assert "--allow-drop" in str(caught.value)
    assert outputs(outbox) == before
    toml = tmp_path / "pipeline.toml"
    toml.write_text(f'[paths]\ninbox = "{inbox.as_posix()}"\noutbox = "{outbox.as_posix()}"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--settings", str(toml), "merge"])
    assert result.exit_code == 3 and "出力を更新しませんでした" in result.output
    assert outputs(outbox) == before
    assert json.loads((outbox / "last-run.json").read_text(encoding="utf-8"))["exit_code"] == 3
    allowed = CliRunner().invoke(cli, ["--settings", str(toml), "merge", "--allow-drop"])
    assert allowed.exit_code == 0, allowed.output
    assert json.loads((outbox / "run-report.json").read_text(encoding="utf-8"))["rows"] == 0


def test_a_smaller_drop_is_written_and_each_vanished_evaluation_is_listed(inbox: Path, outbox: Path) -> None:
    run_merge(settings(inbox, outbox))
    (inbox / HEALTH).unlink()  # 1 of 69: under the 20 % guard
    run = run_merge(settings(inbox, outbox))
    assert run.report["rows"] == 68 and run.report["previous_rows"] == 69
    dropped = [n for n in run.outcome.notes if n.code == "row-dropped"]
    assert [(n.file, n.value) for n in dropped] == [(HEALTH, "健康課")]
    assert "ファイルが受付フォルダにありません" in dropped[0].message
    assert run.report["dropped"] == [{"project": "7", "department": "健康課", "file": HEALTH,
                                      "reason": "ファイルが受付フォルダにありません"}]
    ws = openpyxl.load_workbook(run.master)["検証結果"]
    assert "row-dropped" in [r[3] for r in ws.iter_rows(min_row=2, values_only=True)]
    # 30 of the remaining 68 (地域福祉課's) is more than 20 %: refused; allowed with a larger limit
    (inbox / WELFARE).unlink()
    with pytest.raises(GuardError, match="68 件から 38 件"):
        run_merge(settings(inbox, outbox))
    assert run_merge(settings(inbox, outbox, max_drop_percent=50)).report["rows"] == 38


def test_a_return_that_becomes_rejected_is_named_as_the_reason(inbox: Path, outbox: Path) -> None:
    run_merge(settings(inbox, outbox))
    (inbox / HEALTH).write_bytes((inbox / HEALTH).read_bytes()[:2000])  # damaged in a re-save
    run = run_merge(settings(inbox, outbox))
    assert run.report["dropped"][0]["reason"] == "ファイルが不受理になりました(ファイルが壊れている)"


def test_an_outbox_inside_the_inbox_stops_the_run(tmp_path: Path, inbox: Path) -> None:
    with pytest.raises(InputError, match="一方がもう一方の中にあります"):
        run_merge(settings(inbox, inbox / "outbox"))
    assert not (inbox / "outbox").exists()
    outbox = tmp_path / "out"
    (outbox / "inbox").mkdir(parents=True)
    with pytest.raises(InputError, match="一方がもう一方の中にあります"):
        run_merge(settings(outbox / "inbox", outbox))


# --- 提出状況 tells the truth ------------------------------------------------------------------------


def message_from(sender: str, attachment: bytes, name: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"担当者 <{sender}>"
    msg["To"] = "chiiki-fukushi@city.example.lg.jp"
    msg["Subject"] = "【回答】地域福祉計画 評価表"
    msg["Date"] = format_datetime(datetime(2025, 5, 20, 10, tzinfo=JST))
    msg.set_content("評価表を送付します。", charset="iso-2022-jp")
    msg.add_attachment(attachment, maintype="application",
                       subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet", filename=name)
    return msg.as_bytes()


def test_a_rejected_return_from_a_known_office_counts_as_received(tmp_path: Path, inbox: Path, outbox: Path) -> None:
    """The hazard: a return rejected before its office was known showed that office as 未提出 with 0
    files. What holds: by its sender address or its name it counts as received, with the reason."""
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, schemas, ignore=shutil.ignore_patterns("*.py", "__pycache__", ".compiled"))
    registry = yaml.safe_load((schemas / "departments.yaml").read_text(encoding="utf-8"))
    for office in registry["offices"]:
        if office["name"] == "健康課":
            office["senders"] = ["kenko@city.example.lg.jp"]
    (schemas / "departments.yaml").write_text(yaml.safe_dump(registry, allow_unicode=True), encoding="utf-8")
    broken = (inbox / HEALTH).read_bytes()[:3000]
    (inbox / HEALTH).unlink()
    (inbox / "回答.eml").write_bytes(message_from("kenko@city.example.lg.jp", broken, "評価表.xlsx"))
    (inbox / GUIDANCE).unlink()
    (inbox / "指導室_評価.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)  # damaged
    (inbox / "評価.xlsx").write_bytes(b"PK\x03\x04 truncated")  # nobody's name on it
    run = run_merge(settings(inbox, outbox, schemas=schemas))
    status = {o["office"]: o for o in run.report["offices"]}
    assert (status["健康課"]["status"], status["健康課"]["received"]) == ("エラーあり", 1)
    assert status["健康課"]["reason"] == "回答.eml ＞ 評価表.xlsx: ファイルが壊れている"
    assert (status["指導室"]["status"], status["指導室"]["received"]) == ("エラーあり", 1)
    assert entry(run, "回答.eml ＞ 評価表.xlsx")["office_source"] == "sender"
    assert run.report["unattributed"] == ["評価.xlsx"]
    ws = openpyxl.load_workbook(run.master)["提出状況"]
    cells = {r[0]: r for r in ws.iter_rows(min_row=2, max_row=15, values_only=True)}
    assert cells["健康課"][4] == "エラーあり" and cells["健康課"][5] == 1
    assert cells["差出課不明"][6] == "評価.xlsx"
    result = CliRunner().invoke(cli, ["merge", "--inbox", str(inbox), "--outbox", str(tmp_path / "out2")],
                                catch_exceptions=False)
    # without the registry's sender addresses, the e-mailed return cannot be told either
    assert "差出課不明のファイル 2 件: 回答.eml ＞ 評価表.xlsx、評価.xlsx" in result.output


# --- the inbox walk -------------------------------------------------------------------------------


def test_archive_and_hidden_folders_are_listed_but_not_read(inbox: Path, outbox: Path) -> None:
    """The hazard: old/ and .trash/ were read and could override this year's answers. What holds: hidden
    folders and the folders of [paths] exclude are listed with the reason and not read."""
    for folder in ("old", ".trash", "処理済み"):
        stale = edit_return(inbox / WELFARE, inbox / folder / WELFARE, {("41", "地域福祉課"): {"rating": "D"}},
                            saved=later(inbox / WELFARE, 20))
        assert stale.exists()
    (inbox / f"~${WELFARE}").write_bytes(b"owner")
    (inbox / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    run = run_merge(settings(inbox, outbox, exclude=("old", "処理済み")))
    assert master_rows(run.master)[("41", "地域福祉課")] == (published(("41", "地域福祉課")), WELFARE)
    reasons = {f["name"]: (f["status"], f["reason"]) for f in run.report["files"] if f["status"] == "ignored"}
    assert reasons == {
        "old/": ("ignored", ingest.REASON_EXCLUDED),
        "処理済み/": ("ignored", ingest.REASON_EXCLUDED),
        ".trash/": ("ignored", ingest.REASON_HIDDEN),
        f"~${WELFARE}": ("ignored", ingest.REASON_LOCK),
        ".DS_Store": ("ignored", ingest.REASON_SYSTEM),
    }
    assert run.exit_code == 0
    # in 提出状況's file list they are nobody's return: no office, and not 差出課不明 either
    ws = openpyxl.load_workbook(run.master)["提出状況"]
    listed = {r[0]: r[1:3] for r in ws.iter_rows(values_only=True) if r[0] in reasons}
    assert listed["old/"] == ("―", "対象外(ignored-excluded)") and listed[".trash/"] == ("―", "対象外(ignored-hidden)")
    assert listed[f"~${WELFARE}"] == ("―", "対象外(ignored-lock-file)")
    assert listed[".DS_Store"] == ("―", "対象外(ignored-system-file)")
    # and each is listed in 検証結果 with its code and what to do
    issues = {(r[0], r[3]) for r in openpyxl.load_workbook(run.master)["検証結果"].iter_rows(values_only=True)}
    assert {("old/", "ignored-excluded"), (".trash/", "ignored-hidden"), (f"~${WELFARE}", "ignored-lock-file"),
            (".DS_Store", "ignored-system-file")} <= issues
    assert run.report["unattributed"] == []


def test_an_unreadable_folder_is_an_error_not_a_silent_skip(inbox: Path, outbox: Path, monkeypatch) -> None:
    (inbox / "健康課").mkdir()
    shutil.move(inbox / HEALTH, inbox / "健康課" / HEALTH)
    real = os.scandir

    def scandir(path):
        if Path(path).name == "健康課":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(ingest.os, "scandir", scandir)
    run = run_merge(settings(inbox, outbox))
    f = verdict(run, "健康課")
    assert (f.status, codes(f)) == ("rejected", ["folder-unreadable"])
    assert "「健康課」を読めません(PermissionError)" in f.issues[0].message
    assert run.exit_code == 1


def test_two_files_of_one_name_in_two_folders_are_told_apart(inbox: Path, outbox: Path) -> None:
    for folder, name in (("健康課", HEALTH), ("指導室", GUIDANCE)):
        (inbox / folder).mkdir()
        shutil.move(inbox / name, inbox / folder / "回答.xlsx")
    wb = openpyxl.load_workbook(inbox / "指導室" / "回答.xlsx")
    wb["記入シート"]["G4"] = "E"  # invalid
    wb.save(inbox / "指導室" / "回答.xlsx")
    run = run_merge(settings(inbox, outbox))
    health, guidance = verdict(run, "健康課/回答.xlsx"), verdict(run, "指導室/回答.xlsx")
    assert (health.status, health.issues) == ("accepted", ())
    assert (guidance.status, codes(guidance)) == ("rejected", ["rating-invalid"])
    assert guidance.issues[0].file == "指導室/回答.xlsx"
    assert master_rows(run.master)[label(HEALTH_KEY)] == (published(HEALTH_KEY), "健康課/回答.xlsx")
    issues_sheet = openpyxl.load_workbook(run.master)["検証結果"]
    # the rejected file's error, then the two text-check warnings of the published R6 answers
    assert [(r[0], r[3]) for r in issues_sheet.iter_rows(min_row=2, values_only=True)] == [
        ("指導室/回答.xlsx", "rating-invalid"),
        ("R6_地域福祉計画評価_地域安全課.xlsx", "reason-says-not-done"),
        (WELFARE, "reason-says-not-done"),
    ]


# --- the demo is a sandbox --------------------------------------------------------------------------


def test_the_demo_and_make_clean_leave_a_live_outbox_alone(tmp_path: Path, inbox: Path, monkeypatch) -> None:
    """The hazard: `pipeline demo` replaced the live master and run report with demo data, and `make
    clean` deleted a real run's outputs. Now both leave a live inbox and outbox byte-identical."""
    live_out = tmp_path / "live_outbox"
    run_merge(settings(inbox, live_out))
    before_out, before_in = outputs(live_out), outputs(inbox)
    monkeypatch.setattr("pipeline.demo.DEMO_DIR", tmp_path / "demo")
    demo = run_demo(settings(inbox, live_out))
    assert demo.master.parent == tmp_path / "demo" / "outbox" and demo.report["rows"] == 69
    assert (outputs(live_out), outputs(inbox)) == (before_out, before_in)

    tree = tmp_path / "checkout"
    for sub in ("outbox", "inbox", "demo/inbox", "demo/outbox", "schemas/.compiled", ".venv/bin"):
        (tree / sub).mkdir(parents=True)
    shutil.copy(ROOT / "Makefile", tree / "Makefile")
    shutil.copytree(live_out, tree / "outbox", dirs_exist_ok=True)
    shutil.copytree(inbox, tree / "inbox", dirs_exist_ok=True)
    (tree / "demo" / "outbox" / "master.xlsx").write_bytes(b"demo")
    (tree / "demo" / "r6-results.yaml").write_text("results: []\n", encoding="utf-8")
    subprocess.run(["make", "-s", "clean"], cwd=tree, check=True, capture_output=True)
    assert outputs(tree / "outbox") == before_out and outputs(tree / "inbox") == before_in
    assert not (tree / "demo" / "outbox").exists() and not (tree / ".venv").exists()
    assert (tree / "demo" / "r6-results.yaml").exists()  # the demo's own data is not a build product


# --- the run report --------------------------------------------------------------------------------


def test_the_run_report_gives_each_files_provenance(inbox: Path, outbox: Path) -> None:
    (inbox / "健康課").mkdir()
    shutil.move(inbox / HEALTH, inbox / "健康課" / HEALTH)
    run = run_merge(settings(inbox, outbox))
    e = entry(run, f"健康課/{HEALTH}")
    assert (e["office"], e["office_source"], e["status"]) == ("健康課", "template", "accepted")
    assert e["saved"] == saved_time(inbox / "健康課" / HEALTH).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert e["received"].startswith(datetime.fromtimestamp((inbox / "健康課" / HEALTH).stat().st_mtime)
                                    .strftime("%Y-%m-%dT%H:%M"))
    assert len(run.report["evaluations"]) == 69
    assert {"project", "department", "rating", "file"} == set(run.report["evaluations"][0])
    with zipfile.ZipFile(run.master) as z:
        assert b"WelfarePlanOutput" in z.read("docProps/custom.xml")
