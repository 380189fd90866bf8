"""The demo returns: generated templates filled with the published R6 answers, read back cell by cell."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml
from openpyxl import load_workbook

from pipeline.catalog import load_catalog
from pipeline.demo import DEMO_RESULTS, fill_returns, load_results
from pipeline.templates import (
    FIRST_DATA_ROW,
    META_SHEET,
    TEMPLATE_SHEET,
    prefilled_hash,
    prefilled_values,
    write_templates,
)

CATALOG = load_catalog("R6")

# 令和6年度 地域福祉計画の進捗状況及び評価表, the published per-goal summary.
PUBLISHED_COUNTS = {
    1: {"A": 25, "B": 9, "C": 0, "D": 0},
    2: {"A": 6, "B": 9, "C": 0, "D": 3},
    3: {"A": 10, "B": 6, "C": 0, "D": 1},
}


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    templates = tmp_path_factory.mktemp("templates")
    write_templates(CATALOG, templates)
    returns = tmp_path_factory.mktemp("returns")
    paths = fill_returns(CATALOG, templates, DEMO_RESULTS, returns)
    assert sorted(p.name for p in paths) == sorted(p.name for p in templates.iterdir())
    assert all(p.parent == returns for p in paths)
    return templates, returns


def read_returns(returns: Path) -> dict[tuple[str, str], tuple[object, object, object]]:
    """(project key, 担当課) → (F, G, H) over every returned file, read as the reader does."""
    answers: dict[tuple[str, str], tuple[object, object, object]] = {}
    for path in sorted(returns.iterdir()):
        wb = load_workbook(path, read_only=True, data_only=True)
        meta = {k: v for k, v, *_ in wb[META_SHEET].iter_rows(max_col=2, values_only=True)}
        rows = int(meta["rows"])
        ws = wb[TEMPLATE_SHEET]
        for row in ws.iter_rows(
            min_row=FIRST_DATA_ROW, max_row=FIRST_DATA_ROW + rows - 1, max_col=8, values_only=True
        ):
            key = (CATALOG.project_for(row[1]).key, row[4])
            assert key not in answers, f"{path.name}: {key} twice"
            answers[key] = tuple(row[5:8])
        wb.close()
    return answers


def test_load_results_has_one_entry_per_assignment() -> None:
    results = load_results(DEMO_RESULTS)
    assert len(results) == 69
    assert all(set(r) == {"project", "department", "result", "rating", "outlook"} for r in results)
    assert all(isinstance(v, str) and v for r in results for v in r.values())
    keys = {(CATALOG.project_for(r["project"]).key, r["department"]) for r in results}
    assert keys == {a.key for a in CATALOG.assignments}
    assert {"project": "31～34", "department": "地域福祉課(関係各課)"}.items() <= next(
        r for r in results if r["project"] == "31～34"
    ).items()


def test_every_assignment_is_answered_as_published(dirs: tuple[Path, Path]) -> None:
    _, returns = dirs
    answers = read_returns(returns)
    assert len(answers) == len(CATALOG.assignments) == 69
    for r in load_results(DEMO_RESULTS):
        key = (CATALOG.project_for(r["project"]).key, r["department"])
        assert answers[key] == (r["result"], r["rating"], r["outlook"]), key
    # A spot check against the published table.
    assert answers[("4", "自立生活支援課")][1] == "B"
    assert answers[("3", "交通対策課")][0].startswith("CoCoバスは、交通弱者等を対象に割引制度を設けており")


def test_per_goal_counts_match_the_published_table(dirs: tuple[Path, Path]) -> None:
    _, returns = dirs
    counts = {g.number: Counter() for g in CATALOG.goals}
    for (project, _department), (_f, rating, _h) in read_returns(returns).items():
        counts[CATALOG.goal_of(project)][rating] += 1
    got = {goal: {k: c[k] for k in "ABCD"} for goal, c in counts.items()}
    assert got == PUBLISHED_COUNTS
    assert sum(sum(c.values()) for c in got.values()) == 69
    assert set().union(*counts.values()) <= set("ABCD")


def test_returns_keep_the_template_intact(dirs: tuple[Path, Path]) -> None:
    templates, returns = dirs
    for path in returns.iterdir():
        wb = load_workbook(path)
        original = load_workbook(templates / path.name)
        meta = {r[0].value: r[1].value for r in wb[META_SHEET].iter_rows(max_col=2)}
        assert meta == {r[0].value: r[1].value for r in original[META_SHEET].iter_rows(max_col=2)}
        office = meta["office"]
        ws = wb[TEMPLATE_SHEET]
        values = [
            tuple(ws.cell(FIRST_DATA_ROW + i, c).value for c in range(1, 6)) for i in range(int(meta["rows"]))
        ]
        assert values == prefilled_values(CATALOG, office)
        assert meta["prefilled_hash"] == prefilled_hash(values)
        assert ws.protection.sheet and wb.security.lockStructure
        assert wb[META_SHEET].sheet_state == "veryHidden"
        # Rows were made tall enough for the long answers, as staff do with a double-click.
        for i in range(int(meta["rows"])):
            r = FIRST_DATA_ROW + i
            assert ws.row_dimensions[r].height >= original[TEMPLATE_SHEET].row_dimensions[r].height
        assert all(
            ws[f"{c}{r}"].data_type == "s"
            for c in "FGH"
            for r in range(FIRST_DATA_ROW, FIRST_DATA_ROW + len(values))
        )


def test_a_missing_result_names_the_row(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    templates, _ = dirs
    data = yaml.safe_load(DEMO_RESULTS.read_text(encoding="utf-8"))
    data["results"] = [
        r for r in data["results"] if not (r["project"] == "10" and r["department"] == "介護福祉課")
    ]
    partial = tmp_path / "partial.yaml"
    partial.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    # 介護福祉課's rows in plan order: 9, 10, 12, ... so project 10 is the second data row.
    with pytest.raises(
        ValueError, match=r"R6_地域福祉計画評価_介護福祉課\.xlsx の 5 行目\(事業No\.10・介護福祉課\)"
    ):
        fill_returns(CATALOG, templates, partial, tmp_path / "out")


def test_results_for_another_year_are_refused(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    templates, _ = dirs
    data = yaml.safe_load(DEMO_RESULTS.read_text(encoding="utf-8"))
    data["fiscal_year"] = "R7"
    other = tmp_path / "r7.yaml"
    other.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match="R7"):
        fill_returns(CATALOG, templates, other, tmp_path / "out")


def test_a_bad_rating_in_the_results_file_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(DEMO_RESULTS.read_text(encoding="utf-8"))
    data["results"][0]["rating"] = "Ａ"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match=r"results\[0\]"):
        load_results(bad)
