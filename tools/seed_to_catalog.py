"""One-off provenance: rebuild schemas/plan-r6.yaml and demo/r6-results.yaml from the published table.

The published R6 table is a text export of a PDF (`shared/seed/000_28fb2938c92c7781.txt`) and is
damaged in places. This script reads it, applies each repair listed in REPAIRS below (every one is
also written into the catalog next to the entry it affects, as `repairs:`), and writes the two
data files. The YAML files are the source of truth from then on: next year's plan is an edit of
the YAML, not a run of this script.

    python tools/seed_to_catalog.py demo/seed/r6-published-table.txt
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"


def cells(line: str) -> list[str]:
    out = [c.strip() for c in line.split("\t")]
    return (out + [""] * 8)[:8]


def parse_structure(lines: list[str]) -> list[dict]:
    """The 基本目標 / 施策の方向性 / 施策 blocks that precede each goal's table."""
    goals: list[dict] = []
    direction: dict | None = None
    for n, line in enumerate(lines, start=1):
        c = [x.strip() for x in line.split("\t")]
        head = c[0]
        rest = " ".join(x for x in c[1:] if x)
        if head == "基本目標" and not rest.startswith("<"):
            m = re.match(r"(\d+)\s+(.+)", rest)
            assert m, line
            goals.append({"number": int(m[1]), "name": m[2], "directions": [], "line": n})
        elif head == "施策の方向性":
            m = re.match(r"\((\d+)\)\s+(.+)", rest)
            assert m, line
            direction = {"number": int(m[1]), "name": m[2], "measures": []}
            goals[-1]["directions"].append(direction)
        elif (head == "施策" or (head == "" and rest[:1] in CIRCLED)) and direction is not None:
            for mark, name in re.findall(rf"([{CIRCLED}])\s*([^{CIRCLED}]+)", rest):
                direction["measures"].append(
                    {"number": CIRCLED.index(mark) + 1, "name": name.strip(), "projects": []}
                )
    return goals


def main(seed: Path) -> None:
    lines = seed.read_text(encoding="utf-8").split("\n")
    goals = parse_structure(lines)
    rows = [(i + 1, cells(line)) for i, line in enumerate(lines) if line.count("\t") >= 7]
    rows = [(n, c) for n, c in rows if not c[0].startswith("施策")]  # repeated page headers

    # --- Repairs, in the order of the table. Each returns rows in the published 8-column order:
    # 施策No., 事業No., 個別事業・取り組み, 内容, 担当課, 事業実績・評価理由, 事業評価, 今後の事業計画・展望
    repaired: list[tuple[int, list[str], list[str]]] = []  # (seed line, cells, repair notes)
    for n, c in rows:
        notes: list[str] = []
        if c[0] == "" and c[1] == "" and c[2] == "広報秘書課":
            c = ["", "", "", "", *c[2:6]]
            notes.append(
                f"seed line {n}: cells shifted two columns left (担当課 in the 事業名 column); "
                "moved back to 担当課 / 実績 / 評価 / 展望."
            )
        elif c[0] == "10":
            c = ["(3)②", *c[:7]]
            notes.append(
                f"seed line {n}: cells shifted one column left (事業No. 10 in the 施策No. column). "
                "Its 施策No. is printed on the next page's first row as '(3) /②' (the row was broken "
                "across the page): project 10 belongs to (3)② 権利擁護事業の充実."
            )
        elif c[:3] == ["", "", ""] and c[3] == "自立生活支援課":
            c = ["", "", "", "", *c[3:7]]
            notes.append(f"seed line {n}: cells shifted one column left; moved back under 担当課.")
        elif c[0] == "31 ~ 34":
            c = ["(3)①", "31～34", *c[2:]]
            notes.append(
                f"seed line {n}: the group '31 ~ 34' stands in the 施策No. column and 施策No. is blank; "
                "the group is 事業No. 31～34 and its measure is (3)① 再犯防止等に関する活動の推進, the only "
                "measure of 施策の方向性 (3) in goal 2."
            )
        if c[2].startswith("【事業No."):
            c[2] = re.sub(r"^【事業No\.\d+】", "", c[2])
            notes.append(f"seed line {n}: stray prefix 【事業No.39】 removed from the project name.")
        if c[4] == "自立相談支援課":
            c[4] = "自立生活支援課"
            notes.append(
                f"seed line {n}: department misspelt 自立相談支援課; the text (障害者差別解消条例, "
                "障害福祉計画) is 自立生活支援課's, the department that reports on every sibling project."
            )
        repaired.append((n, c, notes))

    # Split rows where several departments were merged into one (ratings "B A A").
    split: list[tuple[int, list[str], list[str]]] = []
    for n, c, notes in repaired:
        ratings = c[6].split()
        if len(ratings) == 1:
            split.append((n, c, notes))
            continue
        depts = re.findall(r"\S+?\([^)]*\)|\S+", c[4])
        results = SPLITS[c[1]]["result"]
        outlooks = SPLITS[c[1]]["outlook"]
        assert len(depts) == len(ratings) == len(results) == len(outlooks), (n, depts, ratings)
        assert "".join(results).replace(" ", "") == c[5].replace(" ", ""), n
        assert "".join(outlooks).replace(" ", "") == c[7].replace(" ", ""), n
        for k, (d, r, res, out) in enumerate(zip(depts, ratings, results, outlooks, strict=True)):
            first = c[:4] if k == 0 else ["", "", "", ""]
            split.append(
                (
                    n,
                    [*first, d, res, r, out],
                    [
                        *notes,
                        f"seed line {n}: {len(depts)} departments merged into one row with the ratings "
                        f"'{c[6]}' in one cell; split into one row per department, the texts divided "
                        f"at their sentence boundaries (this is department {k + 1} of {len(depts)}).",
                    ],
                )
            )

    # Row broken across a page: project 21's first row (地域福祉課(関係各課), D) was printed at the
    # foot of project 20's page, its 内容 continuing in project 21's row.
    fixed: list[tuple[int, list[str], list[str]]] = []
    carry: tuple[int, list[str], list[str]] | None = None
    for n, c, notes in split:
        if c[3].startswith("支援関係機関等との連携") and c[1] == "":
            carry = (n, c, notes)
            continue
        if carry and c[1] == "21":
            head = carry[1][3]
            tail = c[3]
            assert tail.startswith("楽し、"), tail
            content = head + "し、" + tail[len("楽し、") :]
            note = (
                f"seed lines {carry[0]} and {n}: a row of project 21 (地域福祉課(関係各課), rating D, "
                "アウトリーチ) was pushed before the page break into project 20's block; its 内容 "
                f"'{head}' continues in project 21's row as '{tail[:8]}…' (構築し garbled to 楽し). "
                "Rejoined as one 内容 and the row moved to project 21, before its other departments."
            )
            fixed.append((carry[0], [c[0], c[1], c[2], content, *carry[1][4:]], [note]))
            fixed.append((n, ["", "", "", "", *c[4:]], notes))
            carry = None
            continue
        fixed.append((n, c, notes))
    assert carry is None

    # Walk the rows: 施策No. and 事業No. carry down (continuation rows as printed).
    results_out: list[dict] = []
    measure: dict | None = None
    project: dict | None = None
    for n, c, notes in fixed:
        code, number, name, content, dept, result, rating, outlook = c
        # the goal is the last one whose 基本目標 block precedes this row in the export
        goal_index = max(i for i, g in enumerate(goals) if g["line"] < n)
        code_note = ""
        if code:
            m = re.match(r"\((\d+)\)\s*[/／]?\s*([①-⑳])", code)
            assert m, (n, code)
            d, k = int(m[1]), CIRCLED.index(m[2]) + 1
            new = goals[goal_index]["directions"][d - 1]["measures"][k - 1]
            code_note = (
                f"seed line {n}: 施策No. printed as '{code}'; read as ({d}){m[2]}."
                if re.search(r"[/／]", code)
                else ""
            )
            if c[1] == "" and project is not None:
                # a 施策No. on a continuation row belongs to the project broken across the page
                project.setdefault("repairs", []).append(
                    f"seed line {n}: '{code}' printed on this project's continuation row after a page "
                    "break; it is this project's 施策No."
                )
            else:
                measure = new
        if number:
            assert measure is not None
            project = {"number": number, "name": name, "content": content, "assignments": []}
            if code and code_note:
                project["repairs"] = [code_note]
            measure["projects"].append(project)
        assert project is not None and dept, (n, c)
        assignment: dict = {"department": dept}
        if notes:
            assignment["repairs"] = notes
        project["assignments"].append(assignment)
        results_out.append(
            {
                "project": project["number"],
                "department": dept,
                "result": result,
                "rating": rating,
                "outlook": outlook,
            }
        )

    # Notes on the published text kept as published (not repairs: the table says so).
    for g in goals:
        for d in g["directions"]:
            for m in d["measures"]:
                for p in m["projects"]:
                    if p["number"] == "37":
                        p["notes"] = [
                            "内容 is word for word that of project 36 in the published table; kept as published."
                        ]
                    if p["number"] == "18":
                        p["notes"] = [
                            "内容 is word for word that of project 16 in the published table; kept as published."
                        ]
                    if p["number"] == "17":
                        p.setdefault("repairs", []).append(
                            "seed line 74: 施策No. blank after a page break; it continues (4)① from project 16."
                        )

    for g in goals:
        del g["line"]
    catalog = {
        "plan": "地域福祉計画",
        "title": "地域福祉計画の進捗状況及び評価表",
        "fiscal_year": {"code": "R6", "label": "令和6年度", "western": 2024},
        "published_by": "福祉保健部地域福祉課",
        "ratings": {
            "A": "ほぼ施策内容を達成した。",
            "B": "施策内容をある程度達成したが、今後の改善、検討を要する。",
            "C": "施策内容を達成したとは言えず、現状について大きな課題がある。",
            "D": "未実施",
        },
        "rating_note": "「今後の事業計画・展望」に次年度に向けての課題、検討内容について記載する。"
        "可能な範囲で「第5次基本構想・後期基本計画」の方向性と整合を図る。",
        "goals": goals,
    }
    header = (
        "# 地域福祉計画 R6 plan catalog: goals → 施策の方向性 → 施策 → 事業 → assignments (担当課).\n"
        "# Source: the published R6 table (令和6年度実績報告). Built once by tools/seed_to_catalog.py;\n"
        "# from now on this file is edited by hand (next year's revision is an edit here).\n"
        "# Every repair of the damaged text export is listed under `repairs:` next to its entry.\n"
        "# `office:` on an assignment overrides the rule in schemas/departments.yaml.\n"
    )
    dump = yaml.safe_dump(catalog, allow_unicode=True, sort_keys=False, width=10_000)
    (ROOT / "schemas" / "plan-r6.yaml").write_text(header + dump, encoding="utf-8")
    res_header = (
        "# R6 results as published (事業実績・評価理由, 事業評価, 今後の事業計画・展望), one entry per\n"
        "# assignment of schemas/plan-r6.yaml, after the same repairs. Used to fill the demo returns.\n"
    )
    dump = yaml.safe_dump({"fiscal_year": "R6", "results": results_out}, allow_unicode=True,
                          sort_keys=False, width=10_000)
    (ROOT / "demo" / "r6-results.yaml").write_text(res_header + dump, encoding="utf-8")


# How the merged rows' texts divide between departments (sentence boundaries in the export).
SPLITS = {
    "15": {
        "result": [
            "令和6年度は、市内の社会福祉法人のうち、1法人に対して指導検査を実施した",
            "障害者総合支援法第10条等に基づき、障害福祉サービス事業者等に対する指導検査を4件実施した。",
            "介護保険事業所に対して指導検査を7件実施した。指導検査に当たっては東京都福祉保健財団から専門知識のある"
            "職員の派遣を依頼できる場合には依頼し、多角的な視点で実施することができた。 (居宅介護支援4件、"
            "認知症対応型通所介護1件、地域密着型通所介護1件、認知症対応型共同生活介護1件)",
        ],
        "outlook": [
            "引き続き社会福祉法、指導監査実施方針、計画等に基づき、市が所轄庁となっている5法人に対して指導監督を"
            "行っていく。(指導検査は年に1~2法人実施予定)",
            "今後も継続して指導検査が行えるよう検査体制を確立させていくとともに、運営の透明性確保や利用者の安心に"
            "つながるよう、検査結果の公表を実施する。",
            "各事業所が法令、各種基準に準拠した運営を行っているかを確認するため、引き続き指導検査を実施していく。"
            "また、制度改正に伴う変更点については、積極的に各事業所に情報共有を行いフォローを行う。",
        ],
    },
    "30": {
        "result": [
            "住宅要配慮者の中には、住居の確保が困難ということのみならず、経済的困窮や高齢、障害といった様々な課題を"
            "抱えているケースも多く、複合的な課題の解決に向けた取り組みを行った。",
            "賃貸契約による一般住宅への入居を希望する障害者であって、保証人がいない等の理由により入居が困難なものに"
            "対し、入居に必要な調整等に係る支援を行うことができた。",
        ],
        "outlook": [
            "引き続き、福祉総合相談窓口において、住居確保が困難な者に対する安定的な居住確保に向けた支援を行っていく。"
            "また、まちづくり推進課が設置する居住支援相談窓口との連携を図っていく。",
            "引き続き賃貸契約による一般住宅への入居が困難な障害者に対し、必要な支援を継続していく。",
        ],
    },
}

if __name__ == "__main__":
    main(Path(sys.argv[1]))
