"""The yearly commands: import-published, status, remind, and 期限超過 in the
master. Every date is fixed (`today=`), so what a given day prints is reproduced exactly."""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import openpyxl
import pytest
import yaml
from builders import RESULTS, office_sheet, published_layout, published_sheets, write_book
from click.testing import CliRunner
from plan_schemas import SCHEMAS_DIR
from returns import edit_return

from pipeline import history, ingest
from pipeline.catalog import load_catalog
from pipeline.cli import cli
from pipeline.errors import InputError
from pipeline.limits import Limits
from pipeline.master import master_name
from pipeline.reader.envelope import read_envelope
from pipeline.runner import run_merge
from pipeline.settings import Settings
from pipeline.validate import validate_sources
from pipeline.yearly import (
    ImportFailed,
    deadline_text,
    for_console,
    import_published,
    plan_reminders,
    render_import,
    render_status,
    submission_status,
    write_reminders,
)

ROOT = Path(__file__).resolve().parents[1]
DEADLINE = date(2025, 5, 30)
BEFORE, ON, AFTER = date(2025, 5, 27), date(2025, 5, 30), date(2025, 6, 1)
HEALTH = "R6_地域福祉計画評価_健康課.xlsx"
GUIDANCE = "R6_地域福祉計画評価_指導室.xlsx"
CARE = "R6_地域福祉計画評価_介護福祉課.xlsx"
CARE_COPY = "介護福祉課_" + CARE  # its feedback copy: the office, then the name in the inbox
# A file whose office cannot be told, named with characters a cp932 console cannot show
# (𠮷 and the emoji; ① is in cp932).
ODD_NAME = "𠮷田さんから😀①.xlsx"


def invoke(*args: str, cwd: Path, charset: str = "utf-8"):
    old = os.getcwd()
    try:
        os.chdir(cwd)  # the default settings file is looked up in the current folder
        return CliRunner(charset=charset).invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def settings_file(folder: Path, inbox: Path, outbox: Path, schemas: Path | None = None) -> Path:
    lines = ["[paths]", f'inbox = "{inbox.as_posix()}"', f'outbox = "{outbox.as_posix()}"']
    if schemas:
        lines.append(f'schemas = "{schemas.as_posix()}"')
    lines += ["[plan]", f"deadline = {DEADLINE.isoformat()}", 'contact = "福祉保健部地域福祉課"']
    path = folder / "pipeline.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- import-published -------------------------------------------------------------------------------

# Last year's table differed from this year's published answers in a few rows.
R5_CHANGES = {
    ("7", "健康課"): {"rating": "B", "result": "令和5年度は健康相談を月1回実施し、延べ84人が参加した。"},
    ("21", "地域福祉課(関係各課)"): {"rating": "C", "result": "令和5年度は準備会を2回開いたが、参加団体が集まらなかった。"},
    ("44", "関係各課(自立生活支援課)"): {"rating": "A"},
}


def r5_table(path: Path, changes: dict | None = None, extra: dict | None = None) -> Path:
    """The published R5 table: title and 事業実績・評価理由 label name 令和5年度, a few rows changed."""
    sheets = published_sheets(year_label="令和5年度")
    for key, change in {**R5_CHANGES, **(changes or {})}.items():
        sheet, row, _ = published_layout()[key]
        cells = sheets[sheet][row - 1]
        if "rating" in change:
            cells[6] = change["rating"]
        if "result" in change:
            cells[5] = change["result"]
    for sheet, rows in (extra or {}).items():
        sheets[sheet][-1:-1] = rows  # above the trailing ※ note
    return write_book(path, sheets)


def expected_r5() -> dict[tuple[str, str], str]:
    ratings = {key: r["rating"] for key, r in RESULTS.items()}
    ratings.update({key: c["rating"] for key, c in R5_CHANGES.items()})
    return ratings


def test_import_published_stores_last_years_table_for_the_next_year(tmp_path):
    table = r5_table(tmp_path / "令和5年度_地域福祉計画評価表.xlsx")
    outbox = tmp_path / "outbox"
    s = Settings(inbox=tmp_path / "inbox", outbox=outbox, year="R6")
    result = import_published(table, "R5", s)
    assert (result.exit_code, result.evaluations, result.catalog_year, result.carried_over) == (0, 69, "R6", True)
    assert result.stored == outbox / "history" / "evaluations-R5.json"
    stored = json.loads(result.stored.read_text(encoding="utf-8"))
    assert stored["fiscal_year"] == "R5"
    assert len(stored["evaluations"]) == 69
    assert {(e["project"], e["department"]): e["rating"] for e in stored["evaluations"]} == expected_r5()
    health = next(e for e in stored["evaluations"] if e["project"] == "7" and e["department"] == "健康課")
    assert health["result"] == R5_CHANGES[("7", "健康課")]["result"]
    # what next year's templates, master and text checks will see
    past = history.previous_year(outbox, load_catalog("R6"))
    assert past is not None and past.year == "R5" and past.label == "令和5年度"
    assert {k: e.rating for k, e in past.evaluations.items()} == expected_r5()
    assert not (tmp_path / "inbox").exists()  # last year's data never goes near the inbox
    text = render_import(result)
    assert "保存した評価: 69 件(計画の割り当て 69 件のうち)" in text
    assert "令和5年度の計画カタログ(plan-r5.yaml)がないため、令和6年度(R6)の計画カタログで" in text
    assert "照合できなかった行:" not in text
    assert "令和6年度(R6)の処理で前年度の評価として使われます" in text


def test_import_published_lists_the_rows_it_could_not_match_and_exits_1(tmp_path):
    misprint = {("30", "地域福祉課(関係各課)"): {"rating": "良"}}
    stray = ["(1)①", 99, "見守りネットワーク事業", "", "地域福祉課", "令和5年度は協定先を3件増やした。", "A", "継続する。"]
    table = r5_table(tmp_path / "R5_評価表.xlsx", misprint, {"基本目標1": [stray]})
    s = Settings(inbox=tmp_path / "inbox", outbox=tmp_path / "outbox", year="R6")
    result = import_published(table, "R5", s)
    assert (result.exit_code, result.evaluations, result.unmatched_rows) == (1, 68, 2)
    assert sorted(i.code for i in result.unmatched) == ["project-unknown", "rating-invalid"]
    assert [(a.project, a.department) for a in result.missing] == [("30", "地域福祉課(関係各課)")]
    stored = history.read_stored(result.stored)
    assert stored is not None and len(stored.evaluations) == 68
    text = render_import(result)
    assert "照合できなかった行: 2 行" in text
    sheet, row, _ = published_layout()[("30", "地域福祉課(関係各課)")]
    assert f"シート「{sheet}」G{row}: 事業評価「良」は使えません。" in text
    assert "事業No.「99」は計画にありません。" in text
    assert "値のない割り当て: 1 件(事業No.30 地域福祉課(関係各課))" in text


def test_import_published_cannot(tmp_path):
    s = Settings(inbox=tmp_path / "inbox", outbox=tmp_path / "outbox", year="R6")
    roster = write_book(tmp_path / "名簿.xlsx", {"名簿": [["氏名", "所属", "内線"], ["山田花子", "健康課", "2301"]]})
    with pytest.raises(ImportFailed) as failed:
        import_published(roster, "R5", s)
    assert "名簿.xlsx から令和5年度の評価を1件も読み取れませんでした。何も保存していません。" in str(failed.value)
    assert "評価表の見出し(施策No.・事業No.・担当課・事業評価 など)が見つかりません" in str(failed.value)
    # this year's table is not last year's
    r6 = write_book(tmp_path / "R6_評価表_公表版.xlsx", published_sheets())
    with pytest.raises(ImportFailed) as failed:
        import_published(r6, "R5", s)
    assert "このファイルは 令和6年度 の評価表です" in str(failed.value)
    assert [i.code for i in failed.value.issues] == ["year-mismatch"]
    with pytest.raises(InputError, match="見つかりません"):
        import_published(tmp_path / "ない.xlsx", "R5", s)
    assert not (tmp_path / "outbox" / "history" / "evaluations-R5.json").exists()


def test_import_published_command(tmp_path):
    table = r5_table(tmp_path / "令和5年度評価表.xlsx")
    toml = settings_file(tmp_path, tmp_path / "inbox", tmp_path / "outbox")
    done = invoke("--settings", str(toml), "import-published", str(table), "--year", "r5", cwd=tmp_path)
    assert done.exit_code == 0, done.output
    assert "保存した評価: 69 件" in done.output
    # --year defaults to the year before [plan] year
    again = invoke("--settings", str(toml), "import-published", str(table), cwd=tmp_path)
    assert again.exit_code == 0 and "R6 の前年度 R5 の評価表として読み込みます" in again.output
    roster = write_book(tmp_path / "名簿.xlsx", {"名簿": [["氏名", "所属"], ["山田花子", "健康課"]]})
    bad = invoke("--settings", str(toml), "import-published", str(roster), "--year", "R5", cwd=tmp_path)
    assert bad.exit_code == 3 and "評価を1件も読み取れませんでした" in bad.output
    missing = invoke("--settings", str(toml), "import-published", str(tmp_path / "ない.xlsx"), cwd=tmp_path)
    assert missing.exit_code == 2 and "ない.xlsx' がありません" in missing.output  # a usage error
    assert invoke("--settings", str(toml), "import-published", str(table), "--year", "令和", cwd=tmp_path).exit_code == 2


def test_a_department_copy_of_last_year_is_read_against_its_office(tmp_path):
    """A department's own copy in the published layout, named after the office: its rows only."""
    answers = {("9", "介護福祉課"): {"rating": "C", "result": "令和5年度は研修を中止した。"}}
    copy = write_book(tmp_path / "介護福祉課_R5控え.xlsx",
                      office_sheet(["介護福祉課"], year_label="令和5年度", answers=answers))
    result = import_published(copy, "R5", Settings(outbox=tmp_path / "outbox", year="R6"))
    assert result.evaluations == 6 and result.exit_code == 0
    past = history.read_stored(result.stored)
    assert past is not None and past.evaluations[("9", "介護福祉課")].rating == "C"


def test_import_published_of_our_own_master(tmp_path, inbox):
    """Last year's master of ours (kept outside the outbox): its 評価一覧, not every row twice."""
    run = run_merge(Settings(inbox=inbox, outbox=tmp_path / "last-year"))
    s = Settings(outbox=tmp_path / "outbox", year="R7")
    result = import_published(run.master, "R6", s)
    assert (result.exit_code, result.evaluations, result.from_master) == (0, 69, True)
    past = history.read_stored(result.stored)
    assert past is not None and {k: e.rating for k, e in past.evaluations.items()} == {
        (r.project, r.department): r.rating for r in run.outcome.rows
    }
    assert "「評価一覧」シートの評価をそのまま保存しました" in render_import(result)
    with pytest.raises(ImportFailed, match=r"令和6年度\(R6\)の集約ブックです。令和5年度の評価表ではない"):
        import_published(run.master, "R5", s)
    # the validator's option: a return is never one of our outputs, a table to import may be
    limits = Limits()
    [ignored] = validate_sources(run.catalog, ingest.open_inputs(ingest.find_files([run.master]), limits), limits)
    assert (ignored.status, [i.code for i in ignored.issues]) == ("ignored", ["own-output"])
    [read] = validate_sources(run.catalog, ingest.open_inputs(ingest.find_files([run.master]), limits), limits,
                              read_own_outputs=True)
    assert read.kind == "table" and "own-output" not in {i.code for i in read.issues} and read.rows


# --- a night with offices still owing ---------------------------------------------------------------


def night(tmp_path: Path, demo_returns: Path, *, drop: tuple[str, ...] = (), schemas: Path | None = None,
          today: date = BEFORE) -> Settings:
    inbox = tmp_path / "inbox"
    shutil.copytree(demo_returns, inbox)
    for name in drop:
        (inbox / name).unlink()
    (inbox / ODD_NAME).write_bytes("評価表を送ります。よろしくお願いします。\n".encode())  # not a workbook
    s = Settings(inbox=inbox, outbox=tmp_path / "outbox", deadline=DEADLINE, schemas=schemas)
    run_merge(s, today=today)
    return s


def status_sheet(outbox: Path) -> dict[str, str]:
    ws = openpyxl.load_workbook(outbox / master_name(load_catalog("R6")), read_only=True)["提出状況"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][0] == "課" and rows[0][4] == "状況"
    out = {}
    for row in rows[1:]:
        if not row or row[0] is None:
            break  # the file list follows after a blank row
        out[row[0]] = row[4]
    return out


def test_status_before_and_after_the_deadline(tmp_path, demo_returns):
    s = night(tmp_path, demo_returns, drop=(HEALTH, GUIDANCE))
    before = submission_status(s, today=BEFORE)
    assert before.exit_code == 1 and [o["office"] for o in before.outstanding] == ["健康課", "指導室"]
    text = render_status(before)
    lines = text.splitlines()
    assert lines[0].startswith("令和6年度(R6) 提出状況(最終集約 ")
    assert lines[1] == "提出期限 令和7年5月30日(金)(あと 3 日)"
    assert lines[2] == "評価 67 / 69 件。受理 10 課、未完了 2 課。"
    assert "健康課\t未提出\t1\t0\t1\t―\t―\t" in lines
    assert "指導室\t未提出\t1\t0\t1\t―\t―\t" in lines
    assert any(line.startswith("地域福祉課\t受理\t30\t30\t0\tR6_地域福祉計画評価_地域福祉課.xlsx\t") for line in lines)
    assert f"  {ODD_NAME}" in lines and "差出課不明のファイル 1 件(どの課の提出か確認できません):" in lines
    assert "まだ評価がそろっていない課: 健康課、指導室" in lines

    assert render_status(submission_status(s, today=ON)).splitlines()[1] == "提出期限 令和7年5月30日(金)(本日が期限です)"
    after = render_status(submission_status(s, today=AFTER)).splitlines()
    assert after[1] == "提出期限 令和7年5月30日(金)(期限を 2 日過ぎています)"
    assert "健康課\t期限超過(未提出)\t1\t0\t1\t―\t―\t" in after
    assert any(line.startswith("地域福祉課\t受理\t") for line in after)
    assert "期限を過ぎても評価がそろっていない課: 健康課、指導室" in after


def test_status_of_another_year_and_without_a_run(tmp_path, demo_returns):
    s = night(tmp_path, demo_returns, drop=(HEALTH,))
    with pytest.raises(InputError, match=r"令和7年度\(R7\)の実行レポート.*先に python -m pipeline merge を実行して"):
        submission_status(s, "R7", today=BEFORE)
    # an older run of the year is found in history/ when run-report.json is another year's
    report = s.outbox / "run-report.json"
    data = json.loads(report.read_text(encoding="utf-8"))
    report.write_text(json.dumps({**data, "fiscal_year": "R7"}, ensure_ascii=False), encoding="utf-8")
    found = submission_status(s, today=BEFORE)
    assert found.report_path.parent.name == "history" and [o["office"] for o in found.outstanding] == ["健康課"]
    # [plan] deadline belongs to [plan] year: not shown for another year's run
    other = submission_status(s, "R7", today=BEFORE)
    assert render_status(other).splitlines()[1].startswith("提出期限: 表示しません")


def test_deadline_text():
    assert deadline_text(DEADLINE, date(2025, 5, 29)) == "提出期限 令和7年5月30日(金)(あと 1 日)"
    assert deadline_text(DEADLINE, date(2025, 7, 1)) == "提出期限 令和7年5月30日(金)(期限を 32 日過ぎています)"
    assert deadline_text(None, BEFORE).startswith("提出期限: 未設定")


def test_status_command_and_cp932_consoles(tmp_path, demo_returns):
    s = night(tmp_path, demo_returns, drop=(HEALTH, GUIDANCE))
    toml = settings_file(tmp_path, s.inbox, s.outbox)
    done = invoke("--settings", str(toml), "status", "--today", "2025-06-01", cwd=tmp_path)
    assert done.exit_code == 1
    assert "提出期限 令和7年5月30日(金)(期限を 2 日過ぎています)" in done.output and ODD_NAME in done.output
    # a console that cannot show 𠮷 or the emoji: they become 〓, nothing else changes
    cp932 = invoke("--settings", str(toml), "status", "--today", "2025-05-27", cwd=tmp_path, charset="cp932")
    assert cp932.exit_code == 1, cp932.output
    assert "〓田さんから〓①.xlsx" in cp932.output and "健康課\t未提出" in cp932.output
    real = subprocess.run(
        [sys.executable, "-m", "pipeline", "--settings", str(toml), "status", "--today", "2025-05-27"],
        capture_output=True, env={**os.environ, "PYTHONIOENCODING": "cp932"}, cwd=ROOT, timeout=120,
    )
    assert real.returncode == 1, real.stderr.decode("cp932", "replace")
    text = real.stdout.decode("cp932")  # strict: every byte is cp932
    assert "提出期限 令和7年5月30日(金)(あと 3 日)" in text and "〓田さんから〓①.xlsx" in text
    # no run yet: exit 3 with what to do
    (tmp_path / "new").mkdir()
    empty = settings_file(tmp_path / "new", s.inbox, tmp_path / "new" / "outbox")
    nothing = invoke("--settings", str(empty), "status", cwd=tmp_path)
    assert nothing.exit_code == 3 and "先に python -m pipeline merge を実行して" in nothing.output


def test_for_console():
    assert for_console("𠮷野家 ① ㈱ 😀", "cp932") == "〓野家 ① ㈱ 〓"
    assert for_console("𠮷野家", "utf-8") == "𠮷野家"
    assert for_console("Ⅻ 𠮷", "ascii") == "XII ?"


# --- 期限超過 in the master ----------------------------------------------------------------------


def test_master_marks_offices_owing_after_the_deadline(tmp_path, demo_returns):
    s = night(tmp_path, demo_returns, drop=(HEALTH,), today=ON)
    master = s.outbox / master_name(load_catalog("R6"))
    on_the_day = status_sheet(s.outbox)
    assert on_the_day["健康課"] == "未提出" and on_the_day["地域福祉課"] == "受理"
    assert not any("期限超過" in str(v) for v in on_the_day.values())
    # the night the deadline passes rewrites the master though nothing new arrived
    run_merge(s, today=date(2025, 5, 31))
    late = status_sheet(s.outbox)
    assert late["健康課"] == "期限超過(未提出)"
    assert {v for k, v in late.items() if k not in ("健康課", "差出課不明")} == {"受理"}
    assert late["差出課不明"] == "差出課不明"
    # and the nights after keep it as it is
    stamp = master.stat().st_mtime_ns
    run_merge(s, today=AFTER)
    assert master.stat().st_mtime_ns == stamp and status_sheet(s.outbox)["健康課"] == "期限超過(未提出)"


def test_no_deadline_no_marking(tmp_path, demo_returns):
    inbox = tmp_path / "inbox"
    shutil.copytree(demo_returns, inbox)
    (inbox / HEALTH).unlink()
    run_merge(Settings(inbox=inbox, outbox=tmp_path / "outbox"), today=AFTER)
    assert status_sheet(tmp_path / "outbox")["健康課"] == "未提出"


# --- remind --------------------------------------------------------------------------------------------

CARE_SENDERS = ["kaigo@city.example.lg.jp", "kaigo-kakari@city.example.lg.jp"]


@pytest.fixture
def schemas(tmp_path) -> Path:
    """The shipped catalog, with addresses registered for 介護福祉課 only."""
    folder = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__", ".compiled"))
    registry = yaml.safe_load((folder / "departments.yaml").read_text(encoding="utf-8"))
    for office in registry["offices"]:
        if office["name"] == "介護福祉課":
            office["senders"] = CARE_SENDERS
    (folder / "departments.yaml").write_text(yaml.safe_dump(registry, allow_unicode=True), encoding="utf-8")
    return folder


def owing_night(tmp_path: Path, demo_returns: Path, schemas: Path, today: date = BEFORE) -> Settings:
    """指導室 sent nothing; 介護福祉課's return has an invalid rating (9) and a blank rating (39)."""
    s = night(tmp_path, demo_returns, drop=(GUIDANCE,), schemas=schemas, today=today)
    care = s.inbox / CARE
    edit_return(care, care, {("9", "介護福祉課"): {"rating": "E"}, ("39", "介護福祉課"): {"rating": ""}})
    run_merge(s, today=today)
    return s


def parse(path: Path) -> email.message.EmailMessage:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def body_of(msg: email.message.EmailMessage) -> str:
    """The plain-text body; its lines end in CRLF as sent (canonical text/plain), read as "\n"."""
    text = msg.get_body(("plain",)).get_content()
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    return text.replace("\r\n", "\n")


def listed(body: str, heading: str) -> list[str]:
    """The lines of one ■ section of a reminder's body."""
    lines = body.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    out = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        out.append(line.strip())
    return out


def test_remind_writes_one_outlook_draft_per_office_that_owes(tmp_path, demo_returns, schemas):
    s = owing_night(tmp_path, demo_returns, schemas)
    report = json.loads((s.outbox / "run-report.json").read_text(encoding="utf-8"))
    care_entry = next(f for f in report["files"] if f["name"] == CARE)
    assert care_entry["status"] == "partial" and care_entry["feedback"] == CARE_COPY
    written = write_reminders(s, today=BEFORE)
    folder = s.outbox / "reminders"
    assert written == [folder / "指導室.eml", folder / "介護福祉課.eml"]  # in the registry's order

    care = parse(folder / "介護福祉課.eml")
    assert care["X-Unsent"] == "1"
    assert [a.addr_spec for a in care["To"].addresses] == CARE_SENDERS
    assert care["Subject"] == "【督促】令和6年度 地域福祉計画 評価表の提出について(介護福祉課)"
    assert care["From"] is None  # Outlook fills in the account that sends it
    body = body_of(care)
    assert body.startswith("介護福祉課 ご担当者様\n\n福祉保健部地域福祉課です。\n")
    assert "提出期限 令和7年5月30日(金)(あと 3 日)。" in body
    catalog = load_catalog("R6", schemas)
    names = {key: catalog.projects[key].name for key in ("9", "39")}
    assert listed(body, "■ まだ受け付けていない評価") == [
        f"事業No.9 {names['9']}(担当課: 介護福祉課)",
        f"事業No.39 {names['39']}(担当課: 介護福祉課)",
    ]
    errors = listed(body, "■ 返送いただいたファイルの誤り(2 件)")
    assert errors[0].startswith(f"ファイル「{CARE}」(受信 ")
    assert errors[1].startswith("シート「記入シート」G") and "事業評価「E」は使えません。" in errors[1]
    assert errors[2].startswith("シート「記入シート」G") and "「事業評価」が空欄です。" in errors[2]
    assert len(errors) == 3
    [attachment] = list(care.iter_attachments())
    assert attachment.get_filename() == CARE_COPY
    assert attachment.get_content_type() == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert attachment.get_content() == (s.outbox / "feedback" / CARE_COPY).read_bytes()
    raw = (folder / "介護福祉課.eml").read_bytes()
    assert raw.isascii() and b"\r\nX-Unsent: 1\r\n" in raw
    assert b"filename*=utf-8''%E4%BB%8B%E8%AD%B7" in raw and b'name="=?utf-8?b?' in raw  # RFC 2231 + Outlook's fallback
    # the project's own tolerant reader (the one the inbox uses) reads the same name and bytes
    envelope = read_envelope(raw, "介護福祉課.eml")
    assert [(a.name, a.data) for a in envelope.attachments] == [(CARE_COPY, (s.outbox / "feedback" / CARE_COPY).read_bytes())]

    guidance = parse(folder / "指導室.eml")
    assert guidance["To"] == ""  # no address registered: staff fill it in
    assert guidance["X-Unsent"] == "1"
    g_body = body_of(guidance)
    assert listed(g_body, "■ まだ受け付けていない評価(1 件)") == [
        f"事業No.8 {catalog.projects['8'].name}(担当課: 指導室)"
    ]
    assert "■ 返送いただいたファイルの誤り" not in g_body and not list(guidance.iter_attachments())
    assert "お送りしたテンプレート(R6_地域福祉計画評価_指導室.xlsx)" in g_body
    # the unattributed file is nobody's reminder
    assert {r.office for r in plan_reminders(s, today=BEFORE)} == {"介護福祉課", "指導室"}


def test_remind_after_the_deadline_and_when_an_office_has_answered(tmp_path, demo_returns, schemas):
    s = owing_night(tmp_path, demo_returns, schemas, today=AFTER)
    folder = s.outbox / "reminders"
    write_reminders(s, today=AFTER)
    body = body_of(parse(folder / "指導室.eml"))
    assert "提出期限 令和7年5月30日(金)(期限を 2 日過ぎています)。至急ご提出ください。" in body
    # 指導室 answers and 介護福祉課 corrects its return: their drafts go
    shutil.copy(demo_returns / GUIDANCE, s.inbox / GUIDANCE)
    run_merge(s, today=AFTER)
    written = write_reminders(s, today=AFTER)
    assert written == [folder / "介護福祉課.eml"] and sorted(p.name for p in folder.iterdir()) == ["介護福祉課.eml"]
    care = s.inbox / CARE
    edit_return(care, care, {("9", "介護福祉課"): {"rating": "B"}, ("39", "介護福祉課"): {"rating": "A"}})
    run_merge(s, today=AFTER)
    assert write_reminders(s, today=AFTER) == [] and list(folder.iterdir()) == []


def test_remind_command(tmp_path, demo_returns, schemas):
    s = owing_night(tmp_path, demo_returns, schemas)
    toml = settings_file(tmp_path, s.inbox, s.outbox, schemas)
    done = invoke("--settings", str(toml), "remind", "--today", "2025-05-27", cwd=tmp_path, charset="cp932")
    assert done.exit_code == 0, done.output
    assert f"作成: {s.outbox / 'reminders' / '介護福祉課.eml'}" in done.output
    assert "督促メールの下書き 2 件を" in done.output
    other = invoke("--settings", str(toml), "remind", "--year", "R7", cwd=tmp_path)
    assert other.exit_code == 3 and "先に python -m pipeline merge を実行して" in other.output
