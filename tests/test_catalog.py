"""The plan catalog is pinned to the published R6 table (令和6年度実績報告)."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml
from plan_schemas import SCHEMAS_DIR

from pipeline.catalog import load_catalog
from pipeline.errors import CatalogError

ROOT = Path(__file__).resolve().parents[1]
# The published R6 table as a text export of its PDF (shared/seed/000_28fb2938c92c7781.txt), kept
# in the repository so that the catalog can always be checked against its source.
SEED = ROOT / "demo" / "seed" / "r6-published-table.txt"
RESULTS = ROOT / "demo" / "r6-results.yaml"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog("R6")


def test_structure_counts_match_the_published_table(catalog):
    assert catalog.year == "R6" and catalog.year_label == "令和6年度" and catalog.year_western == 2024
    assert [g.name for g in catalog.goals] == ["福祉のまちづくり", "包括的支援体制の構築", "地域活動の活性化"]
    assert Counter(d.goal for d in catalog.directions) == {1: 4, 2: 3, 3: 3}
    assert Counter(m.goal for m in catalog.measures) == {1: 9, 2: 6, 3: 5}
    assert len(catalog.projects) == 44  # 1–30, the group 31～34 reported as one row, 35–47
    assert len(catalog.assignments) == 69
    assert Counter(catalog.goal_of(a.project) for a in catalog.assignments) == {1: 34, 2: 18, 3: 17}


def test_each_goal_lists_its_projects_in_plan_order(catalog):
    by_goal = {g.number: [p.label for p in catalog.projects.values() if p.goal == g.number] for g in catalog.goals}
    assert by_goal[1] == [str(n) for n in range(1, 19)]
    assert by_goal[2] == [*[str(n) for n in range(19, 31)], "31～34"]
    assert by_goal[3] == [str(n) for n in range(35, 48)]


def test_measures_and_names_as_published(catalog):
    names = {(m.goal, m.code): m.name for m in catalog.measures}
    assert names[(1, "(3)②")] == "権利擁護事業の充実"
    assert names[(2, "(3)①")] == "再犯防止等に関する活動の推進"
    assert names[(3, "(2)②")] == "専門人材の育成"
    assert catalog.ratings["B"] == "施策内容をある程度達成したが、今後の改善、検討を要する。"
    assert catalog.ratings["D"] == "未実施"


def test_repairs_of_the_damaged_export(catalog):
    # cells shifted left and a row broken across a page: project 10 is (3)② with three departments
    assert catalog.projects["10"].measure_code == "(3)②"
    assert [a.department for a in catalog.assignments_of("10")] == [
        "地域福祉課(社会福祉協議会)", "自立生活支援課", "介護福祉課",
    ]
    assert [a.department for a in catalog.assignments_of("9")] == [
        "地域福祉課(関係各課)", "自立生活支援課", "介護福祉課", "広報秘書課",
    ]
    # several departments merged into one row ("B A A", "B A"): split
    assert [a.department for a in catalog.assignments_of("15")] == ["地域福祉課(関係各課)", "自立生活支援課", "介護福祉課"]
    assert [a.department for a in catalog.assignments_of("30")] == ["地域福祉課(関係各課)", "自立生活支援課"]
    # a row pushed across the page break: its 内容 continues in the next project's row
    assert catalog.projects["21"].content.startswith("支援関係機関等との連携や地域住民とのつながりを構築し、複合化")
    assert "楽し" not in catalog.projects["21"].content
    assert [a.department for a in catalog.assignments_of("20")] == ["地域福祉課(関係各課)", "自立生活支援課", "子ども家庭センター"]
    assert [a.department for a in catalog.assignments_of("21")] == ["地域福祉課(関係各課)", "自立生活支援課", "子ども家庭センター"]
    # a misspelt department and a stray prefix
    assert [a.department for a in catalog.assignments_of("18")] == ["福祉保健部各課", "自立生活支援課", "(広報秘書課)"]
    assert catalog.projects["39"].name == "福祉専門職の資質の向上"
    # the group stood in the 施策No. column
    assert catalog.projects["31-34"].measure_code == "(3)①" and catalog.projects["31-34"].goal == 2


def test_every_repair_is_documented_next_to_its_entry():
    data = yaml.safe_load((SCHEMAS_DIR / "plan-r6.yaml").read_text(encoding="utf-8"))
    repairs: dict[str, list[str]] = {}
    for g in data["goals"]:
        for d in g["directions"]:
            for m in d["measures"]:
                for p in m["projects"]:
                    notes = list(p.get("repairs", []))
                    for a in p["assignments"]:
                        notes += a.get("repairs", [])
                    if notes:
                        repairs[str(p["number"])] = notes
    joined = {k: " ".join(v) for k, v in repairs.items()}
    assert "shifted two columns left" in joined["9"]
    assert "shifted one column left" in joined["10"] and "broken across the page" in joined["10"]
    assert "merged into one row" in joined["15"] and "'B A A'" in joined["15"]
    assert "merged into one row" in joined["30"]
    assert "pushed before the page break" in joined["21"]
    assert "misspelt 自立相談支援課" in joined["18"]
    assert "【事業No.39】" in joined["39"]
    assert "31 ~ 34" in joined["31～34"]


def test_offices_follow_the_registry_rule(catalog):
    office = {a.key: a.office for a in catalog.assignments}
    assert office[("1", "地域福祉課(関係各課)")] == "地域福祉課"
    assert office[("18", "(広報秘書課)")] == "広報秘書課"
    assert office[("44", "関係各課(自立生活支援課)")] == "自立生活支援課"
    assert office[("11", "社会福祉協議会 (地域福祉課)")] == "社会福祉協議会"
    assert office[("16", "福祉保健部各課")] == "地域福祉課"  # routes: in departments.yaml
    assert Counter(office.values()) == {
        "地域福祉課": 30, "自立生活支援課": 14, "介護福祉課": 6, "社会福祉協議会": 6, "広報秘書課": 3,
        "子ども家庭センター": 3, "地域安全課": 2, "交通対策課": 1, "健康課": 1, "指導室": 1,
        "男女共同参画室": 1, "生涯学習課": 1,
    }


def test_department_matching_and_suggestions(catalog):
    assert catalog.match_assignment("1", "地域福祉課(関係各課)")[1] == "exact"
    assert catalog.match_assignment("1", "地域福祉課（関係各課）")[1] == "normalised"
    a, how = catalog.match_assignment("18", "広報秘書課")
    assert how == "office" and a is not None and a.department == "(広報秘書課)"
    assert catalog.match_assignment("1", "交通対策課") == (None, "not-assigned")
    # the published table's misprint (事業18) is a registered alias: it names 自立生活支援課
    a, how = catalog.match_assignment("18", "自立相談支援課")
    assert how == "office" and a is not None and a.department == "自立生活支援課"
    assert catalog.match_assignment("18", "自立支援課X") == (None, "unknown")
    assert catalog.suggest_departments("自立生活支援係")[0] == "自立生活支援課"


def test_office_named_in_a_file_name(catalog):
    assert catalog.office_in_name("R6_地域福祉計画評価_健康課.xlsx") == "健康課"
    assert catalog.office_in_name("福祉保健部地域福祉課_回答.xlsx") == "地域福祉課"  # once, in the longer name
    assert catalog.office_in_name("社協_評価.xlsx") == "社会福祉協議会"  # an alias
    assert catalog.office_in_name("R6_地域福祉計画評価.xlsx") is None  # 地域福祉計画 is not 地域福祉課
    assert catalog.office_in_name("健康課と指導室.xlsx") is None  # two offices: none


def test_a_small_misspelling_of_the_known_office(catalog):
    a = catalog.misspelt_assignment("18", "自立生括支援課", "自立生活支援課")  # one character
    assert a is not None and a.key == ("18", "自立生活支援課")
    assert catalog.misspelt_assignment("18", "介護福祉課", "自立生活支援課") is None  # another office
    assert catalog.misspelt_assignment("18", "自立生括支援課", "健康課") is None  # not the file's office


def test_demo_results_cover_every_assignment_and_give_the_published_counts(catalog):
    results = yaml.safe_load(RESULTS.read_text(encoding="utf-8"))["results"]
    keys = [(catalog.project_for(r["project"]).key, r["department"]) for r in results]
    assert sorted(keys) == sorted(a.key for a in catalog.assignments)
    counts = {g.number: Counter() for g in catalog.goals}
    for (project, _), r in zip(keys, results, strict=True):
        counts[catalog.goal_of(project)][r["rating"]] += 1
    assert counts == {
        1: Counter(A=25, B=9),
        2: Counter(A=6, B=9, D=3),
        3: Counter(A=10, B=6, D=1),
    }


def test_counts_agree_with_the_raw_published_text(catalog):
    """Independent of the catalog: count the rating letters in the export's 事業評価 cells."""
    letters: Counter[str] = Counter()
    projects: set[str] = set()
    for line in SEED.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.split("\t")]
        if len(cells) < 8 or cells[0].startswith("施策"):
            continue
        for c in cells:
            if re.fullmatch(r"[ABCD]( [ABCD])*", c):
                letters.update(c.split())
        for c in cells[:2]:
            if re.fullmatch(r"\d+( ~ \d+)?", c):
                projects.add(c)
    assert sum(letters.values()) == len(catalog.assignments) == 69
    assert letters == Counter(A=41, B=24, D=4)
    assert len(projects) == len(catalog.projects) == 44


def test_version_is_a_content_hash(tmp_path):
    copy = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    base = load_catalog("R6", copy).version
    text = (copy / "plan-r6.yaml").read_text(encoding="utf-8")
    (copy / "plan-r6.yaml").write_text(text.replace("kept as published.", "kept as printed."), encoding="utf-8")
    assert load_catalog("R6", copy).version == base  # notes are documentation, not content
    edited = tmp_path / "edited"
    shutil.copytree(copy, edited)
    (edited / "plan-r6.yaml").write_text(text.replace("CoCoバスの利便性向上", "CoCoバスの利便性の向上"), encoding="utf-8")
    assert load_catalog("R6", edited).version != base


@pytest.mark.parametrize(
    ("old", "new", "entry"),
    [
        ("  name: 福祉のまちづくり\n", "  name: ''\n", "基本目標 1"),
        ("- department: 交通対策課\n", "- department: 交通政策課\n", "事業No.3 交通政策課"),
        ("      - number: '4'\n", "      - number: '3'\n", "事業No.3"),
        ("      - number: '4'\n", "      - number: 四\n", "事業No.四"),
        ("    - number: 2\n      name: 移動支援の充実", "    - number: 3\n      name: 移動支援の充実", "施策"),
    ],
)
def test_a_broken_catalog_names_the_file_and_the_entry(tmp_path, old, new, entry):
    copy = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    plan = copy / "plan-r6.yaml"
    text = plan.read_text(encoding="utf-8")
    assert old in text
    plan.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        load_catalog("R6", copy)
    assert str(plan) in str(info.value)
    assert entry in info.value.entry


def test_an_unknown_office_suggests_the_nearest_names(tmp_path):
    copy = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    plan = copy / "plan-r6.yaml"
    plan.write_text(plan.read_text(encoding="utf-8").replace("- department: 健康課", "- department: 健康推進課"), encoding="utf-8")
    with pytest.raises(CatalogError, match="健康課"):
        load_catalog("R6", copy)


def test_missing_catalog_file(tmp_path):
    with pytest.raises(CatalogError, match="見つかりません"):
        load_catalog("R9", tmp_path)
