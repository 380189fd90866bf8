"""`pipeline validate`: returned workbooks built in the test, validated, and every issue asserted at
its exact (sheet, cell, code).

One inbox holds every case and is validated once, as the nightly run does (one reader process, one
lazy pandera pass over the rows of all files): the published R6 table as a non-template workbook,
the same table with the misspelling the published PDF actually has, the demo returns made from our
templates, templates tampered with, a department's compiled copy with every typing variant, and
files that are not returns at all. Fixtures are built here with openpyxl; no binaries are committed.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from pipeline.catalog import load_catalog
from pipeline.demo import DEMO_RESULTS, fill_returns, load_results
from pipeline.report import CODES, FileReport, ValidationReport
from pipeline.templates import (
    FIRST_DATA_ROW,
    META_KEYS,
    META_SHEET,
    TEMPLATE_SHEET,
    prefilled_values,
    template_name,
    write_templates,
)
from pipeline.validate import validate_paths

CATALOG = load_catalog("R6")
RESULTS = {(CATALOG.project_for(r["project"]).key, r["department"]): r for r in load_results(DEMO_RESULTS)}

# The header of the published table, exactly as printed (seed lines 37 ff.).
PUBLISHED_HEADER = (
    "施策 No.",
    "事業 No.",
    "【個別事業・取り組み】",
    "内容",
    "担当課",
    "事業実績・評価理由 (令和6年度)",
    "事業評価",
    "今後の事業計画・展望",
)
# 施策No. as printed in the published table, per 基本目標: spaces, slashes, a full-width ／.
# (31～34's (3)① is not printed in the damaged export; printed here like goal 3's.)
PRINTED_MEASURES = {
    1: {
        "(1)①": "(1) ①", "(1)②": "(1) ②", "(2)①": "(2) ①", "(2)②": "(2) ②", "(3)①": "(3) /①",
        "(3)②": "(3) /②", "(3)③": "(3) / ③", "(4)①": "(4) / ①", "(4)②": "(4) ／ ②",
    },
    2: {"(1)①": "(1) ①", "(1)②": "(1) /②", "(1)③": "(1) /③", "(2)①": "(2) /①", "(2)②": "(2) /②", "(3)①": "(3) ①"},
    3: {"(1)①": "(1) / ①", "(2)①": "(2) / ①", "(2)②": "(2) /②", "(3)①": "(3) ①", "(3)②": "(3) ②"},
}
PAGE_ROWS = 6  # data rows per printed page: the header is repeated after each page break
TITLE = "地域福祉計画の令和6年度実績報告及び評価"
NOTE = "※「今後の事業計画・展望」に次年度に向けての課題、検討内容について記載する。"


# --- Building workbooks -------------------------------------------------------------------------


def write_book(path: Path, sheets: dict[str, Sequence[Sequence[Any]]], merges: Iterable[str] = ()) -> Path:
    """An .xlsx (or .xlsm) with one sheet per entry; None leaves a cell empty. Merges are "Sheet!A1:A3"."""
    wb = Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                if value is not None:
                    ws.cell(r, c).value = value
    for ref in merges:
        sheet, _, cells = ref.partition("!")
        wb[sheet].merge_cells(cells)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def published_rows(goal: int, misspell: dict[tuple[str, str], str] | None = None) -> list[list[Any]]:
    """One 基本目標's rows of the published table: 施策No. printed where a 施策 begins, 事業No., name
    and 内容 where a 事業 begins, blank on the continuation rows below (one row per 担当課)."""
    rows: list[list[Any]] = []
    last_measure = last_project = None
    for a in sorted(CATALOG.assignments, key=lambda a: a.order):
        p = CATALOG.projects[a.project]
        if p.goal != goal:
            continue
        r = RESULTS[a.key]
        new_project, new_measure = p.key != last_project, p.measure_code != last_measure
        last_project, last_measure = p.key, p.measure_code
        rows.append(
            [
                PRINTED_MEASURES[goal][p.measure_code] if new_measure else None,
                (int(p.key) if p.key.isdigit() else p.label) if new_project else None,
                p.name if new_project else None,
                p.content if new_project else None,
                (misspell or {}).get(a.key, a.department),
                r["result"],
                r["rating"],
                r["outlook"],
            ]
        )
    return rows


def structure_rows(goal: int) -> list[list[Any]]:
    """The 基本目標 / 施策の方向性 / 施策 block printed above each goal's table."""
    g = CATALOG.goals[goal - 1]
    out: list[list[Any]] = [["基本目標", f"{g.number} {g.name}"]]
    for d in (d for d in CATALOG.directions if d.goal == goal):
        out.append(["施策の方向性", f"({d.number}) {d.name}"])
        measures = [m for m in CATALOG.measures if (m.goal, m.direction) == (goal, d.number)]
        out.append(["施策", " ".join(f"{m.code[-1]} {m.name}" for m in measures)])
    return out


def paginate(rows: list[list[Any]]) -> tuple[list[list[Any]], list[int]]:
    """The header, then the rows with the header repeated every PAGE_ROWS rows; also the 0-based
    offsets (within the returned list) of the data rows."""
    out: list[list[Any]] = [list(PUBLISHED_HEADER)]
    data: list[int] = []
    for i, row in enumerate(rows):
        if i and i % PAGE_ROWS == 0:
            out.append(list(PUBLISHED_HEADER))
        data.append(len(out))
        out.append(row)
    return out, data


def published_sheets(misspell: dict[tuple[str, str], str] | None = None) -> dict[str, list[list[Any]]]:
    """The published R6 table: one sheet per 基本目標, a title, the structure block, the table with
    page-break header repeats, a blank row and the trailing ※ note."""
    sheets = {}
    for g in CATALOG.goals:
        table, _ = paginate(published_rows(g.number, misspell))
        sheets[f"基本目標{g.number}"] = [[TITLE], *structure_rows(g.number), [], *table, [], [NOTE]]
    return sheets


def published_layout() -> dict[tuple[str, str], tuple[str, int, list[Any]]]:
    """(project, 担当課) → (sheet, Excel row, row values) of the published workbook, for assertions."""
    where = {}
    for g in CATALOG.goals:
        rows = published_rows(g.number)
        head = 1 + len(structure_rows(g.number)) + 1  # rows above the table
        _, data = paginate(rows)
        keys = [a.key for a in sorted(CATALOG.assignments, key=lambda a: a.order) if CATALOG.goal_of(a.project) == g.number]
        for key, offset, row in zip(keys, data, rows, strict=True):
            where[key] = (f"基本目標{g.number}", head + offset + 1, row)
    return where


# A department's own copy: 地域福祉課 compiled the answers of several offices into a workbook of its
# own. Columns reordered, an extra 備考, labels with line breaks and full-width characters, two data
# sheets, a page-break header repeat, blank rows, merged 事業No./施策No./name cells over the
# continuation rows, and every way people type what the template would have printed for them.
COPY_HEADER = (
    "担当課",
    "事業\nNo.",
    "施策Ｎｏ．",
    "事業\n評価",
    "事業実績・評価理由\n（令和６年度）",
    "今後の事業計画・\n展望",
    "備考",
    "【個別事業・取り組み】",
)
LONG_TEXT = "相談支援の実績。" * 4125  # 33,000 characters: over Excel's 32,767 per cell
LONG_MARKER = "@@LONG_TEXT@@"  # openpyxl cuts strings at 32,767 on writing: patched into the package after
FREE_TEXT = "㈱ケアサポート小金井に委託し、①相談 ②訪問を実施。ＮＰＯ法人との連携は（継続）。"


def answer(project: str, department: str, field: str) -> str:
    return RESULTS[(project, department)][field]


def copy_row(dept: str, project: Any, measure: Any, rating: Any, result: Any = None, outlook: Any = None,
             note: Any = None, name: Any = None, key: tuple[str, str] | None = None) -> list[Any]:
    """A row in COPY_HEADER's column order; result/outlook default to the published answer of `key`."""
    if key is not None:
        result = answer(*key, "result") if result is None else result
        outlook = answer(*key, "outlook") if outlook is None else outlook
    return [dept, project, measure, rating, result, outlook, note, name]


COPY_SHEETS: dict[str, list[list[Any]]] = {
    "基本目標1": [
        ["令和6年度 地域福祉計画 評価 取りまとめ(地域福祉課)"],
        [],
        list(COPY_HEADER),
        # 4: project 9 and its four 担当課, 事業No./施策No./name merged over rows 4-7
        copy_row("地域福祉課(関係各課)", 9.0, "(3) /①", "Ｂ", key=("9", "地域福祉課(関係各課)"),
                 name="市民に対する啓発活動の推進", note="前年度と同様"),
        copy_row("自立生活支援課", None, None, "A", key=("9", "自立生活支援課")),
        copy_row("介護福祉課", None, None, " a ", key=("9", "介護福祉課")),
        copy_row("広報秘書課", None, None, "A", key=("9", "広報秘書課")),
        [],
        list(COPY_HEADER),  # 9: page break
        copy_row("自立生活支援課", "4", "（１）②", " b ", key=("4", "自立生活支援課"), name="移送サービスへの支援"),
        copy_row("自立生活支援課", "10", "⑶②", "E", key=("10", "自立生活支援課")),  # 11
        copy_row("自立生活支援課", "12", "(3)-2", "B A", key=("12", "自立生活支援課")),
        copy_row("自立生活支援課", "15", "(3)③", "良", key=("15", "自立生活支援課")),  # 13
        copy_row("自立生活支援課", "16", "(4) ／ ①", None, key=("16", "自立生活支援課")),
        copy_row("自立生活支援課", "17", "(9)①", "A", key=("17", "自立生活支援課")),  # 15
        copy_row("自立生活支援課", "18", "abc", "A", key=("18", "自立生活支援課")),
        copy_row("自立生活支援課", "９", None, "A", key=("9", "自立生活支援課")),  # 17: a duplicate
        copy_row("自立生活支援課", "99", None, "A", "実績なし", "未定"),
        [],
        ["※ 事業評価は各課の自己評価による。"],  # 20
    ],
    "基本目標2": [
        list(COPY_HEADER),
        # 2: a literal _x000D_ (written escaped, so the reader returns the 7 characters)
        copy_row("自立生活支援課", "２０", "(1)①", "A", "相談件数は増加した。_x005F_x000D_\n連携会議を4回開催。",
                 key=("20", "自立生活支援課")),
        copy_row("自立生活支援課", "21", "(1)①", "B", LONG_MARKER, key=("21", "自立生活支援課")),  # 3
        copy_row("子ども家庭センター", None, None, "A", FREE_TEXT, key=("21", "子ども家庭センター")),
        copy_row("地域福祉課(関係各課)", "31~34", "(3)①", "A", key=("31-34", "地域福祉課(関係各課)")),  # 5
        copy_row("地域福祉課(関係各課)", "３１～３４", None, "A", key=("31-34", "地域福祉課(関係各課)")),
        copy_row("地域福祉課(関係各課)", "31-34", None, "A", key=("31-34", "地域福祉課(関係各課)")),  # 7
        copy_row("地域福祉課(関係各課)", "32", None, "A", key=("31-34", "地域福祉課(関係各課)")),
        copy_row("自立相談支援課", "30", "(2) /②", "A", key=("30", "自立生活支援課")),  # 9
        copy_row("介護福祉課", "13", "(3)③", "A", "苦情調整の周知を行った。", "継続する。"),
        copy_row("自立生活支援課", "30", "(2)②", "A", "", key=("30", "自立生活支援課")),  # 11
        # 12: a CR-LF inside the text (the reader decodes Excel's _x000D_ escape to CR)
        copy_row("自立生活支援課", "44", "(3)①", "A", "事業所連絡会で周知した。_x000D_\n見学会を実施。",
                 key=("44", "関係各課(自立生活支援課)")),
        [],
        ["注: 数値は令和7年3月末時点。"],
    ],
}
COPY_MERGES = ("基本目標1!B4:B7", "基本目標1!C4:C7", "基本目標1!H4:H7")


def replace_in_package(path: Path, old: str, new: str) -> None:
    """Replace text inside the workbook's XML parts (as another program would have written it)."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        parts = [(info, z.read(info)) for info in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in parts:
            if info.filename.endswith(".xml"):
                data = data.replace(old.encode(), new.encode())
            z.writestr(info, data)


def one_sheet_published() -> dict[str, list[list[Any]]]:
    """The published table in one sheet, as a PDF-to-Excel conversion gives it: the structure
    blocks of goals 2 and 3 between the tables, page-break header repeats, the ※ note at the end."""
    rows: list[list[Any]] = [[TITLE], []]
    for g in CATALOG.goals:
        table, _ = paginate(published_rows(g.number))
        rows += [*structure_rows(g.number), [], *table, []]
    return {"評価": [*rows, [NOTE]]}


def tamper_template(src: Path, dest: Path, cells: dict[str, Any] = (), meta: dict[str, str] = (),
                    append: Sequence[Any] = ()) -> Path:
    """A filled return edited with openpyxl: cells of 記入シート, _meta values, a row added below."""
    wb = load_workbook(src)
    ws = wb[TEMPLATE_SHEET]
    for ref, value in dict(cells).items():
        ws[ref].value = value
    if meta:
        m = wb[META_SHEET]
        for r in range(1, len(META_KEYS) + 1):
            if m.cell(r, 1).value in meta:
                m.cell(r, 2).value = meta[m.cell(r, 1).value]
    if append:
        ws.append(list(append))
    wb.save(dest)
    return dest


@pytest.fixture(scope="module")
def returns_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The twelve templates, filled by the demo with the published answers."""
    templates = tmp_path_factory.mktemp("templates")
    write_templates(CATALOG, templates)
    out = tmp_path_factory.mktemp("returns")
    fill_returns(CATALOG, templates, DEMO_RESULTS, out)
    return out


def template_row(office: str, key: tuple[str, str]) -> int:
    """The Excel row of an assignment in an office's template."""
    values = prefilled_values(CATALOG, office)
    return FIRST_DATA_ROW + [(CATALOG.project_for(v[1]).key, v[4]) for v in values].index(key)


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory, returns_dir: Path) -> Path:
    box = tmp_path_factory.mktemp("inbox")
    write_book(box / "R6_評価表_公表版.xlsx", published_sheets())
    write_book(box / "R6_評価表_公表版_誤記.xlsx", published_sheets({("18", "自立生活支援課"): "自立相談支援課"}))
    write_book(box / "R6_評価表_1シート.xlsx", one_sheet_published())
    copy = write_book(box / "地域福祉課_取りまとめ.xlsx", COPY_SHEETS, COPY_MERGES)
    replace_in_package(copy, LONG_MARKER, LONG_TEXT)
    # the demo returns, untouched, in a subfolder (found recursively)
    shutil.copytree(returns_dir, box / "returns")
    jiritsu = returns_dir / template_name(CATALOG, "自立生活支援課")
    tamper_template(jiritsu, box / "自立生活支援課_改変.xlsx", cells={
        "D4": "移送サービスを実施しているNPO法人等へ助成します。",  # 内容 of project 4 shortened
        f"E{template_row('自立生活支援課', ('9', '自立生活支援課'))}": "介護福祉課",
    })
    tamper_template(returns_dir / template_name(CATALOG, "健康課"), box / "健康課_R5.xlsx", meta={"fiscal_year": "R5"})
    tamper_template(returns_dir / template_name(CATALOG, "指導室"), box / "指導室_旧版.xlsx",
                    meta={"catalog_version": "0123456789ab"})
    tamper_template(returns_dir / template_name(CATALOG, "男女共同参画室"), box / "男女共同参画室_課名違い.xlsx",
                    meta={"office": "人権推進課"})
    tamper_template(
        returns_dir / template_name(CATALOG, "交通対策課"), box / "交通対策課_他課の行.xlsx",
        append=["(1)②", "4", "移送サービスへの支援", CATALOG.projects["4"].content, "自立生活支援課",
                answer("4", "自立生活支援課", "result"), "B", answer("4", "自立生活支援課", "outlook")],
    )
    # not returns
    write_book(box / "メモ.xlsx", {"メモ": [["提出状況メモ"], ["交通対策課", "提出済"], ["健康課", "未提出"]]})
    write_book(box / "列不足.xlsx", {"評価": [["事業No.", "担当課", "事業評価", "事業実績・評価理由"],
                                              ["3", "交通対策課", "A", "実施した。"]]})
    write_book(box / "空.xlsx", {"評価": [list(PUBLISHED_HEADER), [], [NOTE]]})
    write_book(box / "交通対策課_回答.xlsm", {"Sheet1": [list(PUBLISHED_HEADER),
                                                       ["(1) ②", 3, "CoCoバスの利便性向上", None, "交通対策課",
                                                        answer("3", "交通対策課", "result"), "A",
                                                        answer("3", "交通対策課", "outlook")]]})
    (box / "~$地域福祉課_取りまとめ.xlsx").write_bytes(b"\x0bowner\x00" * 20)
    (box / "評価表_公表版.pdf").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    (box / "依頼文.docx").write_bytes(b"PK\x03\x04 not really")
    (box / "評価表.xlsx").write_text("事業No.,担当課,事業評価\n4,自立生活支援課,B\n", encoding="utf-8")
    return box


@pytest.fixture(scope="module")
def report(inbox: Path) -> ValidationReport:
    return validate_paths(CATALOG, [inbox])


def by_name(report: ValidationReport, name: str) -> FileReport:
    matches = [f for f in report.files if f.name == name]
    assert len(matches) == 1, [f.name for f in report.files]
    return matches[0]


def triples(f: FileReport) -> list[tuple[str, str, str]]:
    return sorted((i.sheet, i.cell, i.code) for i in f.issues)
