"""Next year's plan: `plan new-year`, the checks of a hand-edited plan, the R7 templates."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import openpyxl
import pytest
import yaml
from click.testing import CliRunner
from plan_schemas import SCHEMAS_DIR

from pipeline.catalog import load_catalog
from pipeline.cli import cli
from pipeline.errors import CatalogError
from pipeline.layout import HEADER_ROW, TEMPLATE_SHEET
from pipeline.newyear import NewYearError, new_year_plan, plan_changes
from pipeline.templates import write_templates


@pytest.fixture
def schemas(tmp_path: Path) -> Path:
    """A copy of the shipped catalog folder (YAML only), to edit."""
    copy = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__", ".compiled"))
    return copy


@pytest.fixture
def r7(schemas: Path) -> Path:
    path, _ = new_year_plan(schemas, "R7")
    return path


def invoke(*args: str, cwd: Path):
    old = os.getcwd()
    try:
        os.chdir(cwd)
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def settings_file(tmp_path: Path, schemas: Path, year: str = "R6") -> Path:
    path = tmp_path / "pipeline.toml"
    path.write_text(
        f'[paths]\nschemas = "{schemas.as_posix()}"\noutbox = "out"\n[plan]\nyear = "{year}"\ndeadline = "2025-05-30"\n',
        encoding="utf-8",
    )
    return path


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, count), encoding="utf-8")


# --- plan new-year -----------------------------------------------------------------------------


def test_new_year_keeps_the_plan_and_changes_the_year(schemas: Path):
    r6_bytes = (schemas / "plan-r6.yaml").read_bytes()
    path, checklist = new_year_plan(schemas, "R7")
    assert path == schemas / "plan-r7.yaml"
    assert (schemas / "plan-r6.yaml").read_bytes() == r6_bytes  # the source is never touched
    old, new = load_catalog("R6", schemas), load_catalog("R7", schemas)
    assert new.year == "R7" and new.year_label == "令和7年度" and new.year_western == 2025
    assert len(new.assignments) == 69
    assert list(new.projects) == list(old.projects)
    assert new.projects == old.projects
    assert [(a.project, a.department, a.office) for a in new.assignments] == [
        (a.project, a.department, a.office) for a in old.assignments
    ]
    assert [m.name for m in new.measures] == [m.name for m in old.measures]
    assert new.title == old.title and new.ratings == old.ratings and new.rating_note == old.rating_note
    assert plan_changes(old, new) == []
    assert checklist


def test_new_year_file_is_readable_yaml_without_the_r6_repairs(r7: Path):
    text = r7.read_text(encoding="utf-8")
    assert text.startswith("# 地域福祉計画 R7(令和7年度)の計画カタログ")
    assert "plan new-year R7" in text.splitlines()[1]
    assert "fiscal_year:\n  code: R7\n  label: 令和7年度\n  western: 2025\n" in text
    assert "name: 福祉のまちづくり" in text and "\\u" not in text  # Japanese as written, not escaped
    assert "repairs:" not in text.replace("repairs:(", "")  # dropped: they describe the R6 export
    assert "kept as published" in text  # notes are about the content, which is kept
    data = yaml.safe_load(text)
    assert list(data)[:4] == ["plan", "title", "fiscal_year", "published_by"]  # the source's key order
    # the body is what the shipped file's emitter writes: a re-save of plan-r6.yaml differs only by year
    r6 = yaml.safe_load((SCHEMAS_DIR / "plan-r6.yaml").read_text(encoding="utf-8"))
    assert data["goals"][0]["directions"][0] == r6["goals"][0]["directions"][0]


def test_new_year_never_overwrites_without_force(schemas: Path, r7: Path):
    edit(r7, "CoCoバスの利便性向上", "CoCoバスの利便性の向上")
    with pytest.raises(NewYearError, match="既にあります") as info:
        new_year_plan(schemas, "R7")
    assert "--force" in str(info.value) and info.value.exit_code == 3
    assert "CoCoバスの利便性の向上" in r7.read_text(encoding="utf-8")  # the edit survives
    new_year_plan(schemas, "R7", force=True)
    assert "CoCoバスの利便性の向上" not in r7.read_text(encoding="utf-8")
    assert not [p for p in schemas.iterdir() if p.name.startswith(".~tmp-")]  # written atomically


def test_new_year_from_a_missing_or_broken_source(schemas: Path):
    with pytest.raises(NewYearError, match=r"plan-r8\.yaml がありません.*今ある年度: R6"):
        new_year_plan(schemas, "R9")
    with pytest.raises(ValueError, match="R7 のように"):
        new_year_plan(schemas, "2025")
    edit(schemas / "plan-r6.yaml", "- department: 交通対策課\n", "- department: 交通政策課\n")
    with pytest.raises(CatalogError) as info:
        new_year_plan(schemas, "R7")
    assert "交通政策課" in info.value.entry
    assert not (schemas / "plan-r7.yaml").exists()


def test_new_year_from_an_explicit_year_and_label_in_the_title(schemas: Path):
    edit(schemas / "plan-r6.yaml", "title: 地域福祉計画の進捗状況及び評価表", "title: 令和6年度 地域福祉計画の進捗状況及び評価表")
    path, checklist = new_year_plan(schemas, "r8", from_year="R6")
    assert path.name == "plan-r8.yaml"
    catalog = load_catalog("R8", schemas)
    assert catalog.title == "令和8年度 地域福祉計画の進捗状況及び評価表"
    assert (catalog.year_label, catalog.year_western) == ("令和8年度", 2026)
    assert any(item.startswith("年度の表記: title") for item in checklist)


def test_checklist_names_what_staff_must_review(schemas: Path):
    from pipeline.settings import load_settings

    settings = load_settings(settings_file(schemas.parent, schemas))
    _, checklist = new_year_plan(schemas, "R7", settings=settings)
    text = "\n".join(checklist)
    assert "事業の追加・削除・番号の変更" in text
    assert "aliases" in text and "departments.yaml" in text  # offices renamed
    assert '[plan] year を "R7"' in text and "[plan] deadline" in text and "2025-05-30" in text
    assert "[paths] exclude" in text and 'exclude = ["R6"]' in text and str(settings.inbox / "R6") in text
    assert "repairs:(25 件)" in text
    assert "python -m pipeline templates --year R7" in text


# --- the R7 catalog works downstream -------------------------------------------------------------


def test_templates_for_the_new_year(r7: Path, tmp_path: Path):
    catalog = load_catalog("R7", r7.parent)
    paths = write_templates(catalog, tmp_path / "t")
    assert len(paths) == 12 and all(p.name.startswith("R7_") for p in paths)
    ws = openpyxl.load_workbook(paths[0])[TEMPLATE_SHEET]
    assert ws.cell(HEADER_ROW, 6).value == "事業実績・評価理由 (令和7年度)"
    assert str(ws["A1"].value).startswith("令和7年度 ")


def test_cli_new_year_prints_the_checklist_and_refuses_a_second_run(schemas: Path, tmp_path: Path):
    settings_file(tmp_path, schemas)
    first = invoke("plan", "new-year", "R7", cwd=tmp_path)
    assert first.exit_code == 0, first.output
    assert f"作成: {schemas / 'plan-r7.yaml'}" in first.output
    assert "次の点を確認してください:" in first.output
    assert "  1. 事業:" in first.output and "受付フォルダー:" in first.output and "組織改正:" in first.output
    again = invoke("plan", "new-year", "R7", cwd=tmp_path)
    assert again.exit_code == 3 and "既にあります" in again.output and "--force" in again.output
    assert invoke("plan", "new-year", "R7", "--force", cwd=tmp_path).exit_code == 0
    assert invoke("plan", "new-year", "令和7", cwd=tmp_path).exit_code == 2
    assert invoke("plan", "new-year", cwd=tmp_path).exit_code == 2
    missing = invoke("plan", "new-year", "R9", cwd=tmp_path)
    assert missing.exit_code == 3 and "plan-r8.yaml がありません" in missing.output


def test_templates_without_the_plan_say_how_to_create_it(schemas: Path, tmp_path: Path):
    settings_file(tmp_path, schemas)
    result = invoke("templates", "--year", "R7", "--out", str(tmp_path / "t"), cwd=tmp_path)
    assert result.exit_code == 3
    assert "plan-r7.yaml" in result.output and "python -m pipeline plan new-year R7" in result.output
    assert "今ある年度: R6" in result.output
    assert invoke("plan", "new-year", "R7", cwd=tmp_path).exit_code == 0
    made = invoke("templates", "--year", "R7", "--out", str(tmp_path / "t"), cwd=tmp_path)
    assert made.exit_code == 0 and "12 課分のテンプレート" in made.output


def test_demo_under_r7_runs_the_published_r6_demo_in_its_own_folders(schemas: Path, tmp_path: Path):
    """The hazard: a traceback. The demo is the published R6 table: whatever year the settings name, it
    runs the shipped R6 plan, in its own folders, and touches neither the settings' inbox nor outbox."""
    settings_file(tmp_path, schemas, year="R7")
    assert invoke("plan", "new-year", "R7", cwd=tmp_path).exit_code == 0
    result = invoke("demo", "--inbox", str(tmp_path / "demo-inbox"), "--outbox", str(tmp_path / "demo-out"),
                    cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert "令和6年度 地域福祉計画 集約結果" in result.output and "評価行: 69 / 69" in result.output
    assert (tmp_path / "demo-out" / "地域福祉計画_評価集約_R6.xlsx").exists()


def test_plan_check_lists_the_changes_from_last_year(r7: Path, tmp_path: Path):
    settings_file(tmp_path, r7.parent)
    edit(r7, "      - number: '47'\n", "      - number: '50'\n")  # renumbered
    edit(r7, "        name: 移送サービスへの支援\n", "        name: 移送サービスへの支援の充実\n")
    edit(r7, "- department: 健康課\n", "- department: 健康課\n        - department: 介護福祉課\n")
    data = yaml.safe_load(r7.read_text(encoding="utf-8"))
    projects = data["goals"][0]["directions"][0]["measures"][1]["projects"]
    assert projects[0]["number"] == "3"
    del projects[0]  # project 3 removed: a gap is allowed
    projects.append({"number": "48", "name": "新しい移動支援", "content": "新しい事業の内容。",
                     "assignments": [{"department": "交通対策課"}]})
    r7.write_text("# edited\n" + yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    result = invoke("plan", "check", "R7", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert "令和7年度(西暦 2025 年度)、事業 44 件、担当課の割り当て 70 件" in result.output
    lines = result.output.splitlines()
    assert "  追加: 事業No.48「新しい移動支援」((1)②)" in lines
    assert "  削除: 事業No.3「CoCoバスの利便性向上」" in lines
    assert "  番号の変更: 事業No.47 → 50「社会福祉法人等との連携強化」" in lines
    assert "  事業名の変更: 事業No.4「移送サービスへの支援」→「移送サービスへの支援の充実」" in lines
    assert "  担当課の追加: 事業No.7 介護福祉課" in lines
    assert "R6 からの変更点: 5 件" in result.output


# --- the loader checks a hand-edited plan --------------------------------------------------------


def broken(schemas: Path, year: str = "R7") -> CatalogError:
    with pytest.raises(CatalogError) as info:
        load_catalog(year, schemas)
    return info.value


@pytest.mark.parametrize(
    ("old", "new", "entry", "message"),
    [
        ("  code: R7\n", "  code: R6\n", "fiscal_year.code", "code: R7 に直して"),
        ("  label: 令和7年度\n", "  label: 令和6年度\n", "fiscal_year.label", "label: 令和7年度 に直して"),
        ("  western: 2025\n", "  western: 2024\n", "fiscal_year.western", "western: 2025 に直して"),
        ("      - number: '4'\n", "      - number: '3'\n", "事業No.3", "同じ事業No. が2回あります(1つ目は (1)② の「CoCoバスの利便性向上」)"),
        # a single number inside a group, and a group over a single number: both projects named
        ("      - number: '4'\n", "      - number: '33'\n", "事業No.31～34", "事業No.33 が事業No.33「移送サービスへの支援」と重なって"),
        ("      - number: '4'\n", "      - number: 7～8\n", "事業No.7", "事業No.7 が事業No.7～8「移送サービスへの支援」と重なって"),
        ("      - number: '4'\n", "      - number: 9～8\n", "事業No.9～8", "31～34 のような範囲"),
        ("- department: 交通対策課\n", "- department: 交通政策課\n", "事業No.3 交通政策課", "近い名前: 交通対策課"),
        ("        - department: 健康課\n", "        - department: 健康課\n        - department: 健康課\n",
         "事業No.7 健康課", "同じ担当課が2回あります"),
        ("        - department: 健康課\n", "        - department: 健康課\n        - department: 健康 課\n",
         "事業No.7 健康 課", "(「健康課」と同じ課名です)"),
        ("        - department: 健康課\n", "        - department: 健康課\n          office: 健康推進課\n",
         "事業No.7 健康課", "office: の課「健康推進課」は departments.yaml にありません"),
        ("        assignments:\n        - department: 交通対策課\n", "        assignments: []\n",
         "事業No.3 CoCoバスの利便性向上", "担当課の割り当てがありません"),
    ],
)
def test_a_hand_edited_plan_names_the_entry(r7: Path, old: str, new: str, entry: str, message: str):
    edit(r7, old, new)
    error = broken(r7.parent)
    assert str(r7) in str(error)
    assert entry in error.entry, error
    assert message in error.problem, error


def test_a_label_in_full_width_digits_is_the_same_year(r7: Path):
    edit(r7, "  label: 令和7年度\n", "  label: 令和７年度\n")
    assert load_catalog("R7", r7.parent).year_label == "令和７年度"


def test_a_measure_with_no_projects_names_the_measure(r7: Path):
    data = yaml.safe_load(r7.read_text(encoding="utf-8"))
    data["goals"][0]["directions"][0]["measures"][1]["projects"] = []
    r7.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    error = broken(r7.parent)
    assert error.entry == "基本目標 1 (1)② 移動支援の充実"
    assert "事業が1件もありません" in error.problem


def test_gaps_in_project_numbers_are_allowed(r7: Path):
    edit(r7, "      - number: '47'\n", "      - number: '60'\n")
    edit(r7, "      - number: '4'\n", "      - number: '100'\n")  # not in order either: plan order is file order
    catalog = load_catalog("R7", r7.parent)
    assert "60" in catalog.projects and "47" not in catalog.projects
    assert list(catalog.projects)[:4] == ["1", "2", "3", "100"]


def test_an_office_renamed_through_aliases(r7: Path, tmp_path: Path):
    registry = r7.parent / "departments.yaml"
    edit(registry, "  - name: 介護福祉課\n    aliases: [福祉保健部介護福祉課]",
         "  - name: 高齢福祉課\n    aliases: [福祉保健部高齢福祉課, 介護福祉課, 福祉保健部介護福祉課]")
    catalog = load_catalog("R7", r7.parent)  # the plan still says 介護福祉課: the alias resolves it
    assert {a.office for a in catalog.assignments if a.department == "介護福祉課"} == {"高齢福祉課"}
    assert len(catalog.assignments_for_office("高齢福祉課")) == 6
    assert catalog.office_named("介護福祉課") == "高齢福祉課"
    names = [p.name for p in write_templates(catalog, tmp_path / "t")]
    assert "R7_地域福祉計画評価_高齢福祉課.xlsx" in names and "R7_地域福祉計画評価_介護福祉課.xlsx" not in names
    # an explicit office: may name the old name too (a fresh folder: loads are cached per folder)
    edited = shutil.copytree(r7.parent, tmp_path / "edited")
    edit(edited / "plan-r7.yaml", "        - department: 健康課\n", "        - department: 健康課\n          office: 介護福祉課\n")
    renamed = load_catalog("R7", edited)
    assert next(a.office for a in renamed.assignments_of("7") if a.department == "健康課") == "高齢福祉課"


def test_a_renamed_office_left_registered_twice(r7: Path):
    registry = r7.parent / "departments.yaml"
    edit(registry, "  - name: 広報秘書課\n    aliases: [企画財政部広報秘書課]",
         "  - name: 広報秘書課\n    aliases: [企画財政部広報秘書課]\n  - name: 広報広聴課\n    aliases: [広報秘書課]")
    error = broken(r7.parent)
    assert str(registry) in str(error) and error.entry == "offices[8] 広報広聴課"
    assert "「広報秘書課」は課「広報秘書課」の名前か別名として既に登録されています" in error.problem
    assert "aliases に移します" in error.problem


def test_a_route_may_name_the_old_name_of_a_renamed_office(r7: Path):
    registry = r7.parent / "departments.yaml"
    edit(registry, "  - name: 地域福祉課\n    aliases: [福祉保健部地域福祉課, 地域福祉係]",
         "  - name: 福祉総合支援課\n    aliases: [福祉保健部地域福祉課, 地域福祉係, 地域福祉課]")
    catalog = load_catalog("R7", r7.parent)
    assert catalog.routes["福祉保健部各課"] == "福祉総合支援課"
    assert next(a.office for a in catalog.assignments_of("16")) == "福祉総合支援課"


def test_a_missing_plan_says_how_to_create_it(schemas: Path, tmp_path: Path):
    error = broken(schemas)
    assert error.entry == "ファイル"
    assert "python -m pipeline plan new-year R7" in error.problem and "今ある年度: R6" in error.problem
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(schemas / "departments.yaml", empty)
    assert "[paths] schemas を確認" in broken(empty).problem  # no plan at all: the folder is wrong
