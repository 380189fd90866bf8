"""A whole two-year cycle, typed as a member of staff would type it.

R6: the twelve published returns merged. Then the new year: `plan new-year R7`, the settings moved
to R7 with last year's returns moved aside, R7 templates that show each office's R6 rating, R7
returns made from them (some ratings changed, one office silent, one return with a mistake), the
nightly merge with its 前年度比較, and the reminders (parsed back with the email library) and the
status of a day after the deadline. Every step goes through the CLI; the outputs are read back.
"""

from __future__ import annotations

import email
import email.policy
import shutil
from datetime import date
from pathlib import Path

import openpyxl
import pytest
import yaml
from click.testing import CliRunner
from plan_schemas import SCHEMAS_DIR

from pipeline.catalog import load_catalog
from pipeline.cli import cli
from pipeline.demo import DEMO_RESULTS, fill_returns
from pipeline.layout import FIRST_DATA_ROW, TEMPLATE_SHEET, template_name

DEADLINE = date(2026, 5, 29)
CHANGED = {("41", "地域福祉課"): "B", ("21", "地域福祉課(関係各課)"): "C", ("5", "地域安全課"): "D"}
SILENT = "健康課"
MISTAKEN = "指導室"


def run(project: Path, *args: str, code: int | None = 0) -> str:
    result = CliRunner().invoke(cli, ["--settings", str(project / "pipeline.toml"), *args], catch_exceptions=False)
    if code is not None:
        assert result.exit_code == code, result.output
    return result.output


def settings_file(project: Path, year: str, exclude: tuple[str, ...] = ()) -> None:
    excluded = ", ".join(f'"{e}"' for e in exclude)
    (project / "pipeline.toml").write_text(
        '[paths]\ninbox = "inbox"\noutbox = "outbox"\nschemas = "schemas"\n'
        f"exclude = [{excluded}]\n"
        f'[plan]\nyear = "{year}"\ndeadline = {DEADLINE.isoformat()}\n',
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def cycle(tmp_path_factory: pytest.TempPathFactory, demo_returns: Path) -> Path:
    project = tmp_path_factory.mktemp("welfare-plan")
    shutil.copytree(SCHEMAS_DIR, project / "schemas", ignore=shutil.ignore_patterns("*.py", "__pycache__", ".compiled"))
    registry = yaml.safe_load((project / "schemas" / "departments.yaml").read_text(encoding="utf-8"))
    for office in registry["offices"]:
        if office["name"] in (SILENT, MISTAKEN):
            office["senders"] = [f"{office['name']}@city.example.lg.jp"]
    (project / "schemas" / "departments.yaml").write_text(
        yaml.safe_dump(registry, allow_unicode=True, sort_keys=False), encoding="utf-8")

    # --- R6: the published returns, merged ---
    settings_file(project, "R6")
    shutil.copytree(demo_returns, project / "inbox")
    assert "評価行: 69 / 69" in run(project, "merge")

    # --- the new year ---
    out = run(project, "plan", "new-year", "R7")
    assert (project / "schemas" / "plan-r7.yaml").is_file() and "plan-r7.yaml" in out
    (project / "inbox" / "R6").mkdir()
    for f in list((project / "inbox").glob("*.xlsx")):
        shutil.move(f, project / "inbox" / "R6" / f.name)
    settings_file(project, "R7", exclude=("R6",))
    run(project, "templates")

    # --- R7 returns made from the R7 templates, as the departments fill them in ---
    r7 = load_catalog("R7", project / "schemas")
    results = yaml.safe_load(DEMO_RESULTS.read_text(encoding="utf-8"))
    results["fiscal_year"] = "R7"
    for r in results["results"]:
        key = (r7.project_for(r["project"]).key, r["department"])
        r["rating"] = CHANGED.get(key, r["rating"])
        r["result"] = "令和7年度は" + r["result"]  # this year's own words, not last year's
    answers = project / "r7-results.yaml"
    answers.write_text(yaml.safe_dump(results, allow_unicode=True, sort_keys=False), encoding="utf-8")
    returned = project / "returned"
    fill_returns(r7, project / "outbox" / "templates", answers, returned)
    (returned / template_name(r7, SILENT)).unlink()  # 健康課 has not answered
    mistaken = returned / template_name(r7, MISTAKEN)
    wb = openpyxl.load_workbook(mistaken)
    wb[TEMPLATE_SHEET][f"G{FIRST_DATA_ROW}"] = "Ａ＋"  # not a rating
    wb.save(mistaken)
    for f in returned.iterdir():
        shutil.copy(f, project / "inbox" / f.name)
    return project


def test_the_r7_templates_show_each_offices_r6_rating(cycle: Path) -> None:
    r6 = load_catalog("R6")
    r7 = load_catalog("R7", cycle / "schemas")
    published = {(r6.project_for(r["project"]).key, r["department"]): r["rating"]
                 for r in yaml.safe_load(DEMO_RESULTS.read_text(encoding="utf-8"))["results"]}
    seen = 0
    for office in {a.office for a in r7.assignments}:
        ws = openpyxl.load_workbook(cycle / "outbox" / "templates" / template_name(r7, office))[TEMPLATE_SHEET]
        assert "前年度評価" in ws["J3"].value and "令和6年度" in ws["J3"].value
        row = FIRST_DATA_ROW
        while ws[f"B{row}"].value:
            key = (r7.project_for(ws[f"B{row}"].value).key, ws[f"E{row}"].value)
            assert ws[f"J{row}"].value == published[key], (office, row)
            assert ws[f"J{row}"].protection.locked
            row += 1
            seen += 1
    assert seen == 69


@pytest.fixture(scope="module")
def r7_master(cycle: Path) -> openpyxl.Workbook:
    out = run(cycle, "merge", code=1)  # 指導室's return has an error
    assert "令和7年度 地域福祉計画 集約結果" in out and "評価行: 67 / 69" in out
    return openpyxl.load_workbook(cycle / "outbox" / "地域福祉計画_評価集約_R7.xlsx")


def test_the_r7_merge_compares_with_r6(r7_master: openpyxl.Workbook) -> None:
    rows = list(r7_master["前年度比較"].iter_rows(values_only=True))
    listing = next(i for i, r in enumerate(rows) if r[0] == "事業・担当課別の比較")
    by_key = {(str(r[0]), r[2]): r[3:6] for r in rows[listing + 2 :] if r[0] is not None}
    assert len(by_key) == 69
    assert by_key[("41", "地域福祉課")] == ("D", "B", "↑")  # R6 D (未実施), now B
    assert by_key[("21", "地域福祉課(関係各課)")] == ("D", "C", "↑")
    assert by_key[("5", "地域安全課")] == ("A", "D", "↓")
    assert by_key[("13", "地域福祉課")] == ("A", "A", "→")
    assert by_key[("7", "健康課")] == ("B", "未提出", "―")
    assert by_key[("8", "指導室")] == ("A", "未反映", "―")  # its only row was excluded: not 未提出
    fell = next(i for i, r in enumerate(rows) if r[0] == "C・D に下がった事業・担当課")
    listed = [r[:6] for r in rows[fell + 2 : listing] if r[0] is not None]
    assert listed == [(5, "自主防災組織の育成", "地域安全課", "A", "D", "↓")]  # 21 rose to C: not listed


@pytest.mark.parametrize(
    ("goal", "expected"),
    [
        # R6 A25 B9; 7 (健康課, B) is 未提出 and 8 (指導室, A) excluded; 5 went A → D
        (1, {"A": (23, 0, 0, 1), "B": (0, 8, 0, 0), "C": (0, 0, 0, 0), "D": (0, 0, 0, 0)}),
        # R6 A6 B9 D3; 21 went D → C
        (2, {"A": (6, 0, 0, 0), "B": (0, 9, 0, 0), "C": (0, 0, 0, 0), "D": (0, 0, 1, 2)}),
        # R6 A10 B6 D1; 41 went D → B
        (3, {"A": (10, 0, 0, 0), "B": (0, 6, 0, 0), "C": (0, 0, 0, 0), "D": (0, 1, 0, 0)}),
    ],
)
def test_the_transition_tables(r7_master: openpyxl.Workbook, goal: int, expected: dict) -> None:
    rows = list(r7_master["前年度比較"].iter_rows(values_only=True))
    start = next(i for i, r in enumerate(rows) if r[0] and str(r[0]).startswith(f"基本目標{goal} "))
    table = {str(rows[i][2]).removeprefix("前年度 "): rows[i][3:7] for i in range(start + 2, start + 6)}
    assert table == expected


def test_the_reminders_are_outlook_drafts_with_what_is_missing_and_wrong(cycle: Path, r7_master) -> None:
    out = run(cycle, "remind", "--today", "2026-06-01")
    drafts = {p.stem: email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
              for p in (cycle / "outbox" / "reminders").glob("*.eml")}
    assert set(drafts) == {SILENT, MISTAKEN}, out
    silent = drafts[SILENT]
    assert silent["X-Unsent"] == "1"
    assert silent["To"] == f"{SILENT}@city.example.lg.jp"
    assert "【督促】令和7年度" in silent["Subject"] and SILENT in silent["Subject"]
    body = silent.get_body(("plain",)).get_content()
    assert "事業No.7 災害時における避難行動要支援者への支援体制の充実(担当課: 健康課)" in body
    assert "提出期限 令和8年5月29日(金)(期限を 3 日過ぎています)" in body
    assert "R7_地域福祉計画評価_健康課.xlsx" in body
    assert not list(silent.iter_attachments())  # nothing returned: no feedback copy to attach
    mistaken = drafts[MISTAKEN]
    text = mistaken.get_body(("plain",)).get_content()
    assert "Ａ＋" in text and "G4" in text
    [attachment] = list(mistaken.iter_attachments())
    # its copy: the office, then the return's name in the inbox
    assert attachment.get_filename() == f"{MISTAKEN}_" + template_name(load_catalog("R7", cycle / "schemas"), MISTAKEN)
    assert attachment.get_content() == (cycle / "outbox" / "feedback" / attachment.get_filename()).read_bytes()


def test_status_after_the_deadline(cycle: Path, r7_master) -> None:
    out = run(cycle, "status", "--today", "2026-06-01", code=1)
    assert "期限を 3 日過ぎています" in out
    assert SILENT in out and "期限超過(未提出)" in out
