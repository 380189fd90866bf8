#!/usr/bin/env python3
"""Benchmark the nightly merge against a naive baseline, a clerk's pandas script and a physical floor.

    .venv/bin/python benchmarks/run.py --files 15 200 2000 [--runs 3] [--json] [--seed 1] [--skip-baseline]

For each N it builds (once, cached under benchmarks/work/<N>-seed<S>/) a synthetic plan catalog
in the format of schemas/plan-r6.yaml with N offices of about 30 assignments each, and N returns
of our template filled with realistic Japanese text, written with xlsxwriter as Excel writes them
(shared strings). It then times, each as a new process and in a rotating order within every repetition:

  ours         python -m pipeline --settings <work>/pipeline.toml merge --inbox … --outbox …  (fresh outbox)
  rerun        the same merge again on the same outbox, nothing new in the inbox
  nightly      the realistic night: the merge on that outbox with 1 % of the returns sent again, corrected
  baseline     the catalog through PyYAML (CSafeLoader when libyaml is there), pd.read_excel per file
               (pandas' default reader), one pass of our pandera schema over all rows, to_excel (default writer)
  clerk_plain  pd.read_excel of each return, pd.concat, to_excel: pandas' defaults throughout
  clerk        the same with engine="calamine" and one pandera pass (rating A-D, required non-null)
  floor        python-calamine reads every value of every return, xlsxwriter writes one sheet of all rows

and reports the median wall time, per-file ms, rows/s, each scenario's peak RSS (its own process tree
only: see WRAPPER) and the ratios paired repetition by repetition. It also times
`python -m pipeline --help` and the merge of the real R6 demo returns. See docs/benchmarks.md.

`--json` prints one JSON object per N, one per line (JSON Lines); with one N that is one object.
The scenario processes are this same file: `run.py _baseline|_clerk_plain|_clerk|_floor …` (internal).
The pipeline is used only through its CLI and, to check a new corpus, `pipeline.runner.run_merge(Settings(…))`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "work"
GENERATOR_VERSION = "5"  # bump when the corpus or its manifest changes: cached corpora are keyed by it too
# (3: the manifest counts the faulty rows; the same rng draws, so the same returns as 2)
TEMPLATE_SHEET = "記入シート"  # = pipeline.templates.TEMPLATE_SHEET (checked at generation)
META_SHEET = "_meta"

# Corpus shape
ROWS_MEAN, ROWS_SD, ROWS_MIN, ROWS_MAX = 30, 8, 5, 55  # assignments per office (= rows per return)
ASSIGNMENTS_PER_PROJECT = ((1, 0.60), (2, 0.25), (3, 0.10), (4, 0.05))  # mean 1.6
PROJECTS_PER_MEASURE = (4, 16)
MEASURES_PER_DIRECTION = (5, 20)  # the catalog allows at most 20 (①-⑳)
DIRECTIONS_PER_GOAL = 40  # the measure code allows (1)..(99)
ERROR_SHARE = 0.05  # files with at least one row-level error
# Ratings typed as "Ｂ" or " b" (accepted with a value-normalised warning). 0 by default: every file
# with any issue, a warning included, gets an openpyxl feedback copy, so this share moves the result
# a lot (docs/benchmarks.md); the corpus sticks to the spec (5 % of files with errors).
TYPED_RATING_SHARE = 0.0
RATING_WEIGHTS = (("A", 3), ("B", 5), ("C", 2), ("D", 1))
RESULT_CHARS, OUTLOOK_CHARS = (300, 80), (250, 70)  # mean, sd of the two free-text answers

# The goals, each a ratio measured side by side in the same run (or a bound at N = 2,000).
TARGETS = {
    "nightly_vs_clerk_max": 0.3,  # the realistic night (1 % of returns new or changed) <= 0.3x the clerk
    "ours_vs_clerk_max": 1.0,  # cold, the first night of a year: ours <= the calamine clerk's time
    "peak_rss_mib": 1024.0,  # at 2,000 and at 6,000 returns
    "rerun_vs_ours_max": 0.25,
    "real_returns_s": 0.5,
    "help_s": 0.2,
}
NIGHTLY_CHANGED_SHARE = 0.01  # the realistic night: this share of the returns arrives new or changed


# ==============================================================================================
# Synthetic text
# ==============================================================================================

BUREAUS = ("福祉保健部", "子ども家庭部", "健康部", "環境部", "都市整備部", "総務部", "企画財政部", "市民部",
           "学校教育部", "生涯学習部", "地域振興部", "産業振興部", "危機管理部", "建設部", "保険年金部", "障害福祉部")
DISTRICTS = ("東", "西", "南", "北", "中央", "本町", "緑町", "桜町")
SECTIONS = ("地域福祉", "介護福祉", "自立生活支援", "高齢福祉", "障害福祉", "生活福祉", "子育て支援", "保育",
            "健康推進", "保健予防", "交通対策", "地域安全", "防災", "広報秘書", "男女共同参画", "生涯学習",
            "文化振興", "スポーツ振興", "住宅", "道路管理", "公園緑地", "環境政策", "ごみ対策", "市民協働",
            "国際交流", "消費生活", "商工観光", "農業振興", "指導", "学務", "図書館", "公民館", "人権推進",
            "福祉総務", "国保年金", "納税", "契約管財", "情報政策", "企画政策", "児童青少年")
KINDS = ("課", "室", "係", "センター")
AREAS = ("東地区", "西地区", "南地区", "北地区", "中央地区", "駅周辺", "緑町", "本町", "桜町", "貫井", "梶野町", "前原町",
         "中町", "関野町", "全市")
GOAL_THEMES = ("福祉のまちづくり", "地域で支え合う仕組みづくり", "安心して暮らせる体制づくり", "健康と生きがいづくり",
               "子育てにやさしいまちづくり", "誰もが参加できる地域づくり", "人権を尊重する社会づくり",
               "災害に強いまちづくり", "共生社会の実現", "多様な担い手の育成")
DIRECTION_THEMES = ("福祉を支える基盤の整備", "災害に備える体制づくり", "人権尊重と権利擁護の体制づくり",
                    "相談支援体制の充実", "地域活動の活性化", "情報提供の充実", "担い手の育成と確保",
                    "生活困窮者への支援", "健康づくりの推進", "居場所づくりの推進", "見守り体制の強化",
                    "多様な交流の促進")
MEASURE_THEMES = ("暮らしやすいまちづくり", "移動支援の充実", "防災・防犯活動への参加促進", "要支援者の支援強化",
                  "権利擁護の推進", "虐待防止の推進", "相談窓口の連携強化", "ボランティア活動の支援",
                  "地域福祉活動の推進", "福祉人材の育成", "情報発信の充実", "再犯防止等に関する活動の推進",
                  "健康づくり活動の推進", "子どもの居場所づくり", "孤立防止の取組", "就労支援の充実")


def _sentences(texts: list[str]) -> list[str]:
    out = []
    for t in texts:
        for part in str(t).replace("\n", " ").split("。"):
            part = part.strip()
            if len(part) >= 12:
                out.append(part + "。")
    return sorted(set(out))


def _text_bank() -> dict[str, list[str]]:
    """Sentences of the published R6 texts (demo answers and catalog), the material for synthetic text."""
    import yaml

    results = yaml.safe_load((ROOT / "demo" / "r6-results.yaml").read_text(encoding="utf-8"))["results"]
    plan = yaml.safe_load((ROOT / "schemas" / "plan-r6.yaml").read_text(encoding="utf-8"))
    projects = [p for g in plan["goals"] for d in g["directions"] for m in d["measures"] for p in m["projects"]]
    return {
        "result": _sentences([r["result"] for r in results]),
        "outlook": _sentences([r["outlook"] for r in results]),
        "content": _sentences([p["content"] for p in projects]),
        "names": sorted({str(p["name"]) for p in projects}),
    }


_FIGURES = ("令和6年度の実施回数は{a}回、延べ参加者数は{b}人であった。", "相談件数は{b}件(前年度比{a}件増)となった。",
            "{a}か所の会場で開催し、{b}人の参加があった。", "登録者数は{b}人(令和6年度末時点)となった。",
            "関係機関との連絡会を{a}回開催した。", "補助金を{a}団体に交付した(総額{b}千円)。")


def compose(rng: random.Random, bank: list[str], mean: int, sd: int, low: int = 40, high: int = 900) -> str:
    """Japanese prose of about `mean` characters: published sentences in a new order, with figures."""
    target = max(low, min(high, int(rng.gauss(mean, sd))))
    parts: list[str] = []
    size = 0
    while size < target:
        s = rng.choice(_FIGURES).format(a=rng.randint(2, 48), b=rng.randint(10, 4800)) if rng.random() < 0.2 else rng.choice(bank)
        parts.append(s)
        size += len(s)
    text = "".join(parts)
    return text[: max(target, len(parts[0]))] if len(text) > target * 1.4 else text


# ==============================================================================================
# The synthetic catalog
# ==============================================================================================


def office_names(n: int, rng: random.Random) -> list[str]:
    combos = [f"{b}{d}{s}{k}" for b in ("", *BUREAUS) for d in ("", *DISTRICTS) for s in SECTIONS for k in KINDS]
    if n > len(combos):
        raise SystemExit(f"at most {len(combos)} offices can be named")
    first = [f"{s}{k}" for s in SECTIONS for k in KINDS]  # short names first, as a city has them
    rest = [c for c in combos if c not in set(first)]
    rng.shuffle(first)
    rng.shuffle(rest)
    return (first + rest)[:n]


def _weighted(rng: random.Random, pairs: tuple[tuple[Any, float], ...]) -> Any:
    return rng.choices([v for v, _ in pairs], weights=[w for _, w in pairs])[0]


def build_plan(n_offices: int, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(plan, registry) as the YAML documents plan-r6.yaml and departments.yaml hold them."""
    rng = random.Random(f"plan-{n_offices}-{seed}")
    bank = _text_bank()
    offices = office_names(n_offices, rng)
    slots: list[str] = []
    for office in offices:
        k = max(ROWS_MIN, min(ROWS_MAX, round(rng.gauss(ROWS_MEAN, ROWS_SD))))
        slots.extend([office] * k)
    rng.shuffle(slots)

    # Projects: groups of 1-4 distinct offices taken from the shuffled slots.
    groups: list[list[str]] = []
    pending = slots
    while pending:
        leftover: list[str] = []
        i = 0
        while i < len(pending):
            size = _weighted(rng, ASSIGNMENTS_PER_PROJECT)
            group: list[str] = []
            while i < len(pending) and len(group) < size:
                if pending[i] in group:
                    leftover.append(pending[i])
                else:
                    group.append(pending[i])
                i += 1
            groups.append(group)
        pending = leftover
        rng.shuffle(pending)

    projects = []
    for number, group in enumerate(groups, start=1):
        assignments = []
        for office in group:
            r = rng.random()
            if r < 0.10:
                department = f"{office}(関係各課)"
            elif r < 0.13:
                department = f"関係各課({office})"
            else:
                department = office
            assignments.append({"department": department})
        base = rng.choice(bank["names"])
        projects.append({
            "number": number,
            "name": f"{base}({rng.choice(AREAS)})" if rng.random() < 0.7 else base,
            "content": compose(rng, bank["content"], 160, 60, 40, 400),
            "assignments": assignments,
        })

    # Plan tree: projects → measures (≤ 20 per direction) → directions → goals (≥ 3).
    measures: list[list[dict]] = []
    i = 0
    while i < len(projects):
        k = rng.randint(*PROJECTS_PER_MEASURE)
        measures.append(projects[i:i + k])
        i += k
    directions: list[list[list[dict]]] = []
    i = 0
    while i < len(measures):
        k = rng.randint(*MEASURES_PER_DIRECTION)
        directions.append(measures[i:i + k])
        i += k
    n_goals = max(3, -(-len(directions) // DIRECTIONS_PER_GOAL))
    while len(directions) < n_goals:  # a tiny plan: split so every goal has a direction
        big = max(range(len(directions)), key=lambda j: len(directions[j]))
        if len(directions[big]) < 2:
            break
        half = len(directions[big]) // 2
        directions[big:big + 1] = [directions[big][:half], directions[big][half:]]
    n_goals = min(n_goals, len(directions))
    per_goal = [directions[g::n_goals] for g in range(n_goals)]  # round robin keeps goals even

    goals = []
    for g, dirs in enumerate(per_goal, start=1):
        goal_dirs = []
        for d, meas in enumerate(dirs, start=1):
            goal_dirs.append({
                "number": d,
                "name": f"{rng.choice(DIRECTION_THEMES)}({d})",
                "measures": [
                    {"number": m, "name": f"{rng.choice(MEASURE_THEMES)}", "projects": projs}
                    for m, projs in enumerate(meas, start=1)
                ],
            })
        goals.append({"number": g, "name": f"{GOAL_THEMES[(g - 1) % len(GOAL_THEMES)]}({g})", "directions": goal_dirs})
    # Projects are numbered in plan order (as in the published table).
    number = 0
    for g in goals:
        for d in g["directions"]:
            for m in d["measures"]:
                for p in m["projects"]:
                    number += 1
                    p["number"] = number

    import yaml

    r6 = yaml.safe_load((ROOT / "schemas" / "plan-r6.yaml").read_text(encoding="utf-8"))
    plan = {k: r6[k] for k in ("plan", "title", "fiscal_year", "published_by", "ratings", "rating_note")}
    plan["goals"] = goals
    registry = {
        "offices": [{"name": o, "aliases": [f"市{o}"], "senders": []} for o in offices],
        "routes": {"福祉保健部各課": offices[0]},
    }
    return plan, registry


def _dump_yaml(data: Any, path: Path, header: str) -> None:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump(data, Dumper=dumper, allow_unicode=True, sort_keys=False, width=10_000, default_flow_style=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + text, encoding="utf-8")


# ==============================================================================================
# The returns: our template's layout, written with xlsxwriter (shared strings, as Excel saves)
# ==============================================================================================


def _guide_rows(catalog: Any, office: str) -> list[tuple[Any, Any]]:
    """The 記入要領 sheet's cells (A, B per row) as our real template has them, for this office."""
    import tempfile

    from openpyxl import load_workbook

    from pipeline import templates

    with tempfile.TemporaryDirectory() as tmp:
        path = templates.write_templates(catalog, Path(tmp), offices=[office])[0]
        wb = load_workbook(path)
        ws = wb[templates.GUIDE_SHEET]
        return [(ws.cell(r, 1).value, ws.cell(r, 2).value) for r in range(1, ws.max_row + 1)]


def write_return(
    path: Path,
    catalog: Any,
    office: str,
    values: list[tuple[str, str, str, str, str]],
    answers: list[tuple[str, str, str]],
    guide: list[tuple[Any, Any]],
    guide_office: str,
    generated: str,
    departments: list[str] | None = None,
) -> None:
    """One filled-in return: 記入シート (title, instruction, header row 3, data from row 4),
    記入要領, and the veryHidden _meta sheet with the keys and values of our template."""
    import xlsxwriter

    from pipeline import templates

    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False,
                                         "strings_to_urls": False})
    font = {"font_name": templates.FONT_NAME, "font_size": templates.FONT_SIZE, "font_charset": 128,
            "font_family": 3}
    border = {"border": 1, "border_color": "#808080"}
    f_title = wb.add_format({**font, "bold": True, "font_size": 14})
    f_text = wb.add_format(font)
    f_head = wb.add_format({**font, **border, "bold": True, "bg_color": "#" + templates.HEADER_FILL,
                            "align": "center", "valign": "vcenter", "text_wrap": True})
    f_code = wb.add_format({**font, **border, "num_format": "@", "align": "center", "valign": "top",
                            "text_wrap": True, "locked": True})
    f_pre = wb.add_format({**font, **border, "num_format": "@", "align": "left", "valign": "top",
                           "text_wrap": True, "locked": True})
    f_in = wb.add_format({**font, **border, "bg_color": "#" + templates.INPUT_FILL, "align": "left",
                          "valign": "top", "text_wrap": True, "locked": False})
    f_in_c = wb.add_format({**font, **border, "bg_color": "#" + templates.INPUT_FILL, "align": "center",
                            "valign": "top", "text_wrap": True, "locked": False})

    ws = wb.add_worksheet(templates.TEMPLATE_SHEET)
    ws.write_string(0, 0, f"{catalog.year_label} {catalog.title}({office})", f_title)
    ws.set_row(0, 24)
    ws.write_string(1, 0, "黄色のセルに記入してください(事業評価は一覧から A～D を選択)。提出期限: 令和7年5月30日(金)。"
                          f"記入方法は「{templates.GUIDE_SHEET}」シートをご覧ください。", f_text)
    ws.set_row(1, 18)
    labels = templates.header_labels(catalog)
    hr = templates.HEADER_ROW - 1
    for c, label in enumerate(labels):
        ws.write_string(hr, c, label, f_head)
    ws.set_row(hr, templates.row_height(((lab, templates.COLUMN_WIDTHS[ch]) for ch, lab in
                                         zip(templates.LETTERS, labels, strict=True)), 2))
    first = templates.FIRST_DATA_ROW - 1
    for i, (pre, ans) in enumerate(zip(values, answers, strict=True)):
        r = first + i
        pre = list(pre)
        if departments is not None:
            pre[4] = departments[i]
        for c, v in enumerate(pre):
            ws.write_string(r, c, v, f_code if c < 2 else f_pre)
        for c, v in zip((5, 6, 7), ans, strict=True):
            fmt = f_in_c if c == 6 else f_in
            if v:
                ws.write_string(r, c, v, fmt)
            else:
                ws.write_blank(r, c, None, fmt)
        texts = [(v, templates.COLUMN_WIDTHS[ch]) for ch, v in zip(templates.LETTERS, [*pre, *ans], strict=True)]
        ws.set_row(r, templates.row_height(texts, templates.MIN_INPUT_LINES))
    for letter, width in templates.COLUMN_WIDTHS.items():
        ws.set_column(f"{letter}:{letter}", width)
    last = first + len(values) - 1
    if values:
        ws.data_validation(first, 6, last, 6, {
            "validate": "list", "source": f"={templates.RATING_LIST_NAME}", "ignore_blank": True,
            "input_title": "事業評価(A～D)", "input_message": templates.rating_prompt(catalog)[:255],
            "error_type": "stop", "error_title": "入力できない値です",
            "error_message": "事業評価は一覧から A・B・C・D のいずれか1つを選んでください。",
        })
    ws.protect("", {"format_rows": True, "format_columns": True})
    ws.freeze_panes(first, 0)
    ws.set_zoom(90)
    ws.set_paper(8)
    ws.set_landscape()
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(hr)
    ws.print_area(0, 0, max(last, hr), 7)
    ws.center_horizontally()
    ws.set_header(f"&L{catalog.year_label} {catalog.title}&R{office}")
    ws.set_footer("&C&P / &N")

    g = wb.add_worksheet(templates.GUIDE_SHEET)
    g.set_column(0, 0, 26)
    g.set_column(1, 1, 90)
    for r, (a, b) in enumerate(guide):
        if a:
            g.write_string(r, 0, str(a).replace(guide_office, office), f_text)
        if b:
            g.write_string(r, 1, str(b), f_text)
    g.protect()

    meta = {
        "kind": templates.TEMPLATE_KIND,
        "fiscal_year": catalog.year,
        "office": office,
        "catalog_version": catalog.version,
        "template_version": templates.TEMPLATE_VERSION,
        "generated": generated,
        "prefilled_hash": templates.prefilled_hash(values),
        "rows": str(len(values)),
        "header_row": str(templates.HEADER_ROW),
        "first_data_row": str(templates.FIRST_DATA_ROW),
        "answer_sheet": templates.TEMPLATE_SHEET,
    }
    m = wb.add_worksheet(templates.META_SHEET)
    f_at = wb.add_format({"num_format": "@"})
    for r, key in enumerate(templates.META_KEYS):
        m.write_string(r, 0, key)
        m.write_string(r, 1, meta[key], f_at)
    for r, (code, definition) in enumerate(catalog.ratings.items()):
        m.write_string(r, 3, code)
        m.write_string(r, 4, definition)
    m.protect()
    m.very_hidden()
    wb.define_name(templates.RATING_LIST_NAME, templates.RATING_LIST_REF.join(("=", "")))
    wb.set_properties({"title": f"{catalog.year_label} {catalog.title}({office})", "author": "地域福祉課",
                       "created": __import__("datetime").datetime(2025, 5, 1)})
    ws.activate()
    wb.close()


def _answers(rng: random.Random, bank: dict[str, list[str]], n: int) -> list[list[str]]:
    ratings = [r for r, _ in RATING_WEIGHTS]
    weights = [w for _, w in RATING_WEIGHTS]
    out = []
    for _ in range(n):
        rating = rng.choices(ratings, weights)[0]
        if rng.random() < TYPED_RATING_SHARE:  # typed as people type: full width or lower case (a warning)
            rating = rng.choice(("Ａ", "Ｂ", " b", "c "))
        out.append([compose(rng, bank["result"], *RESULT_CHARS), rating, compose(rng, bank["outlook"], *OUTLOOK_CHARS)])
    return out



class PlanView:
    """What the generator needs of a Catalog, computed straight from the plan document.

    `pipeline.catalog.load_catalog` is quadratic in the number of projects today (see
    docs/benchmarks.md), so it cannot be used to build a 2,000- or 20,000-office corpus. The
    catalog version comes from pipeline.catalog._version (the same function), and for small N
    the whole view is checked against load_catalog.
    """

    def __init__(self, plan: dict[str, Any], registry: dict[str, Any]) -> None:
        from types import SimpleNamespace

        from pipeline.catalog import _version
        from pipeline.normalize import CIRCLED

        fy = plan["fiscal_year"]
        self.year, self.year_label, self.title, self.plan = fy["code"], fy["label"], plan["title"], plan["plan"]
        self.ratings = dict(plan["ratings"])
        self.rating_note = plan.get("rating_note", "")
        offices = {o["name"] for o in registry["offices"]}
        self.offices = [o["name"] for o in registry["offices"]]
        self.by_office: dict[str, list[tuple[str, str, str, str, str]]] = {}
        assignments = []
        for g in plan["goals"]:
            for d in g["directions"]:
                for m in d["measures"]:
                    code = f"({d['number']}){CIRCLED[m['number'] - 1]}"
                    for p in m["projects"]:
                        key = str(p["number"])
                        for a in p["assignments"]:
                            dept = a["department"]
                            office = dept if dept in offices else dept.split("(")[0] if dept.split("(")[0] in offices \
                                else dept.split("(")[1].rstrip(")")
                            assignments.append(SimpleNamespace(project=key, department=dept, office=office))
                            self.by_office.setdefault(office, []).append((code, key, p["name"], p["content"], dept))
        self.version = _version(plan, SimpleNamespace(assignments=assignments))
        self.n_assignments = len(assignments)
        self.n_projects = sum(len(m["projects"]) for g in plan["goals"] for d in g["directions"] for m in d["measures"])
        self.n_goals = len(plan["goals"])
        self.n_directions = sum(len(g["directions"]) for g in plan["goals"])
        self.n_measures = sum(len(d["measures"]) for g in plan["goals"] for d in g["directions"])


def corpus_dir(n: int, seed: int) -> Path:
    return WORK / f"{n}-seed{seed}"


CHECK_WITH_LOAD_CATALOG = 250  # up to this N the corpus is checked against the pipeline itself


def ensure_corpus(n: int, seed: int, log: Any) -> dict[str, Any]:
    """Build (or reuse) the catalog, settings and N returns for (n, seed); return the manifest."""
    work = corpus_dir(n, seed)
    manifest_path = work / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("generator") == GENERATOR_VERSION:
            return manifest
    if work.exists():
        shutil.rmtree(work)
    t0 = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    import yaml

    from pipeline import templates
    from pipeline.catalog import load_catalog

    log(f"[N={n}] generating catalog …")
    plan, registry = build_plan(n, seed)
    schemas = work / "schemas"
    _dump_yaml(plan, schemas / "plan-r6.yaml",
               f"# Synthetic plan catalog for benchmarks/run.py (N={n}, seed={seed}); format of schemas/plan-r6.yaml.\n")
    _dump_yaml(registry, schemas / "departments.yaml",
               f"# Synthetic department registry for benchmarks/run.py (N={n}, seed={seed}).\n")
    (work / "pipeline.toml").write_text(
        '# Generated by benchmarks/run.py\n[paths]\ninbox = "inbox"\noutbox = "outbox"\nschemas = "schemas"\n\n'
        '[plan]\nyear = "R6"\ndeadline = "2025-05-30"\n',
        encoding="utf-8",
    )
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    view = PlanView(yaml.load((schemas / "plan-r6.yaml").read_text(encoding="utf-8"), Loader=loader),
                    yaml.load((schemas / "departments.yaml").read_text(encoding="utf-8"), Loader=loader))
    assert len(view.by_office) == n, (len(view.by_office), n)
    log(f"[N={n}] catalog: {view.n_projects} projects, {view.n_assignments} assignments, {view.n_goals} goals, "
        f"{view.n_directions} directions, {view.n_measures} measures")

    catalog = None
    if n <= CHECK_WITH_LOAD_CATALOG:  # the view must be what the pipeline itself makes of the YAML
        catalog = load_catalog("R6", schemas)
        assert catalog.version == view.version, (catalog.version, view.version)
        assert templates.receiving_offices(catalog) == view.offices
        for o in random.Random(seed).sample(view.offices, min(5, n)):
            assert view.by_office[o] == templates.prefilled_values(catalog, o), o

    r6 = load_catalog("R6")
    guide_office = "地域福祉課"
    guide = _guide_rows(r6, guide_office)  # the guide text does not depend on the plan's size
    bank = _text_bank()
    rng = random.Random(f"returns-{n}-{seed}")
    inbox = work / "inbox"
    inbox.mkdir(parents=True)
    error_files = set(rng.sample(range(n), max(1, round(n * ERROR_SHARE))))
    faults: dict[str, int] = {"rating-invalid": 0, "required-missing": 0, "department-unknown": 0}
    faulty_rows: set[tuple[int, int]] = set()  # (file, row) with any fault: the merge drops them
    value_faulty_rows: set[tuple[int, int]] = set()  # rating E or a blank F/G/H: any A-D/non-null check drops them
    rows = 0
    base = 1_746_000_000  # 2025-04-30, then one file a minute (mtime = received time)
    for i, office in enumerate(view.offices):
        values = view.by_office[office]
        answers = _answers(rng, bank, len(values))
        departments = None
        if i in error_files:
            for _ in range(rng.randint(1, 3)):
                kind = rng.choice(sorted(faults))
                r = rng.randrange(len(values))
                if kind == "rating-invalid":
                    answers[r][1] = "E"
                elif kind == "required-missing":
                    answers[r][rng.choice((0, 1, 2))] = ""
                else:
                    departments = departments or [v[4] for v in values]
                    departments[r] = "未登録推進課"
                faults[kind] += 1
                faulty_rows.add((i, r))
                if kind != "department-unknown":
                    value_faulty_rows.add((i, r))
        path = inbox / templates.template_name(view, office)  # type: ignore[arg-type]
        write_return(path, view, office, values, [tuple(a) for a in answers], guide, guide_office,
                     "2025-04-01T09:00:00+09:00", departments)
        os.utime(path, (base + 60 * i, base + 60 * i))
        rows += len(values)
        if (i + 1) % 500 == 0:
            log(f"[N={n}] {i + 1}/{n} returns written")
    # The realistic night: yesterday's inbox with 1 % of the returns sent again, corrected (new answers,
    # saved later). The others are hard links to the same bytes, so the validation cache knows them.
    night = work / "inbox-night"
    night.mkdir()
    clean = [i for i in range(n) if i not in error_files]
    changed = set(rng.sample(clean, max(1, round(n * NIGHTLY_CHANGED_SHARE))))
    for i, office in enumerate(view.offices):
        name = templates.template_name(view, office)  # type: ignore[arg-type]
        if i in changed:
            values = view.by_office[office]
            write_return(night / name, view, office, values, [tuple(a) for a in _answers(rng, bank, len(values))],
                         guide, guide_office, "2025-05-20T09:00:00+09:00")
            when = base + 60 * (n + i)
            os.utime(night / name, (when, when))
        else:
            try:
                os.link(inbox / name, night / name)
            except OSError:
                shutil.copy2(inbox / name, night / name)
    if catalog is not None:
        faulty_by_office: dict[str, int] = {}
        for i, _r in faulty_rows:
            faulty_by_office[view.offices[i]] = faulty_by_office.get(view.offices[i], 0) + 1
        _check_corpus(catalog, inbox, schemas, faulty_by_office, log)
    size = sum(p.stat().st_size for p in inbox.iterdir())
    manifest = {
        "generator": GENERATOR_VERSION,
        "files": n,
        "seed": seed,
        "rows": rows,
        "goals": view.n_goals,
        "directions": view.n_directions,
        "measures": view.n_measures,
        "projects": view.n_projects,
        "assignments": view.n_assignments,
        "error_files": len(error_files),
        "faults": faults,
        "faulty_rows": len(faulty_rows),
        "value_faulty_rows": len(value_faulty_rows),
        "nightly_changed": len(changed),
        "inbox_mib": round(size / 2**20, 1),
        "catalog_mib": round((schemas / "plan-r6.yaml").stat().st_size / 2**20, 2),
        "catalog_version": view.version,
        "checked_with_pipeline": catalog is not None,
        "generation_s": round(time.perf_counter() - t0, 1),
    }
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    log(f"[N={n}] corpus ready in {manifest['generation_s']} s: {rows} rows, {manifest['inbox_mib']} MiB")
    return manifest


def _check_corpus(catalog: Any, inbox: Path, schemas: Path, faulty_by_office: dict[str, int], log: Any) -> None:
    """A few returns through the public merge, `run_merge(Settings(...))`: three clean ones give exit 0
    and all their rows; with two faulty ones added, exit 1 and exactly their faulty rows fewer. And the
    cells our real template (write_templates) prints match the generated return.

    Only the library's public call is used (pipeline internals such as validate are rewritten freely)."""
    import tempfile

    from python_calamine import CalamineWorkbook

    from pipeline import templates
    from pipeline.runner import run_merge
    from pipeline.settings import Settings

    offices = templates.receiving_offices(catalog)
    clean = [o for o in offices if o not in faulty_by_office][:3]
    bad = sorted(faulty_by_office)[:2]
    with tempfile.TemporaryDirectory() as tmp:
        for label, chosen, want_exit in (("clean", clean, 0), ("faulty", clean + bad, 1)):
            box = Path(tmp) / label
            (box / "inbox").mkdir(parents=True)
            for o in chosen:
                name = templates.template_name(catalog, o)
                shutil.copy2(inbox / name, box / "inbox" / name)
            run = run_merge(Settings(inbox=box / "inbox", outbox=box / "outbox", schemas=schemas, year=catalog.year))
            want_rows = sum(len(templates.prefilled_values(catalog, o)) - faulty_by_office.get(o, 0) for o in chosen)
            assert (run.exit_code, run.report["rows"]) == (want_exit, want_rows), (label, run.exit_code,
                                                                                   run.report["rows"], want_rows)
    with tempfile.TemporaryDirectory() as tmp:
        ref = templates.write_templates(catalog, Path(tmp), offices=[clean[0]])[0]
        mine = inbox / ref.name

        def cells(path: Path, sheet: str) -> list[list[Any]]:
            return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()

        want, have = cells(ref, templates.TEMPLATE_SHEET), cells(mine, templates.TEMPLATE_SHEET)
        want[1] = have[1] = []  # the instruction line names the deadline, which is a setting
        assert [r[:5] for r in want] == [r[:5] for r in have[: len(want)]], "A-E differ from the template"
        meta_want = {r[0]: r[1] for r in cells(ref, templates.META_SHEET) if r[0]}
        meta_have = {r[0]: r[1] for r in cells(mine, templates.META_SHEET) if r[0]}
        assert set(meta_want) == set(meta_have)
        assert {k: v for k, v in meta_want.items() if k != "generated"} == \
            {k: v for k, v in meta_have.items() if k != "generated"}
        book = CalamineWorkbook.from_path(str(mine))
        assert [s.name for s in book.sheets_metadata] == [templates.TEMPLATE_SHEET, templates.GUIDE_SHEET, templates.META_SHEET]
    log(f"  check: run_merge of {len(clean)} clean returns exit 0, with {len(bad)} faulty ones exit 1, rows as expected; "
        "layout = write_templates")


# ==============================================================================================
# The scenario processes (run as `run.py _baseline …` / `run.py _floor …`)
# ==============================================================================================


def _emit(stages: dict[str, float], **extra: Any) -> None:
    print("BENCH " + json.dumps({"stages": {k: round(v, 3) for k, v in stages.items()}, **extra}), flush=True)


def scenario_baseline(schemas: Path, inbox: Path, out: Path) -> None:
    """The obvious way with our own pandera schema: pandas' default reader (openpyxl) per file, the catalog
    through PyYAML (libyaml's CSafeLoader when PyYAML has it), one pandera pass over all rows with failing
    rows dropped, and pandas' default writer (xlsxwriter when installed)."""
    t0 = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    import pandas as pd
    import pandera.errors
    import yaml
    from plan_schemas.evaluation import (
        DEPARTMENT,
        MEASURE,
        OUTLOOK,
        PROJECT,
        RATING,
        RESULT,
        evaluation_schema,
    )

    t1 = time.perf_counter()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # what anyone gets with libyaml installed
    plan = yaml.load((schemas / "plan-r6.yaml").read_text(encoding="utf-8"), Loader=loader)
    keys = [str(p["number"]) for g in plan["goals"] for d in g["directions"] for m in d["measures"] for p in m["projects"]]
    schema = evaluation_schema(keys)
    t2 = time.perf_counter()
    frames = []
    for path in sorted(inbox.glob("*.xlsx")):
        df = pd.read_excel(path, sheet_name=TEMPLATE_SHEET, header=2, dtype=str)  # skips _meta
        df.columns = [str(c).split(" (")[0].strip() for c in df.columns]  # "事業実績・評価理由 (令和6年度)"
        df["提出ファイル"] = path.name
        frames.append(df)
    t3 = time.perf_counter()
    master = pd.concat(frames, ignore_index=True)
    t4 = time.perf_counter()
    bad_rows = 0
    try:
        schema.validate(master[[MEASURE, PROJECT, DEPARTMENT, RESULT, RATING, OUTLOOK]], lazy=True)
    except pandera.errors.SchemaErrors as exc:
        bad = sorted(set(exc.failure_cases["index"].dropna().astype(int)))
        bad_rows = len(bad)
        master = master.drop(index=bad)
    t5 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    master.to_excel(out, sheet_name="評価一覧", index=False)  # pandas' default writer
    t6 = time.perf_counter()
    _emit({"import": t1 - t0, "catalog": t2 - t1, "read": t3 - t2, "concat": t4 - t3, "validate": t5 - t4,
           "write": t6 - t5}, rows=len(master), bad_rows=bad_rows, yaml_loader=loader.__name__)


def _clerk(inbox: Path, out: Path, engine: str | None, validate: bool) -> None:
    """A clerk's script: `pd.read_excel` of every return, `pd.concat`, `to_excel`, all with pandas' defaults
    (the only argument is header=2: the table's header is on row 3). With `validate`, one pandera pass
    over the concatenated frame (rating in A-D, required columns non-null) drops the failing rows."""
    t0 = time.perf_counter()
    import pandas as pd

    if validate:
        import pandera.errors
        import pandera.pandas as pa
    t1 = time.perf_counter()
    kwargs = {"engine": engine} if engine else {}
    frames = [pd.read_excel(path, header=2, **kwargs) for path in sorted(inbox.glob("*.xlsx"))]
    t2 = time.perf_counter()
    master = pd.concat(frames, ignore_index=True)
    t3 = time.perf_counter()
    bad_rows = 0
    if validate:
        # Columns by their labels as printed; the two answer columns carry the year, hence the regex.
        required = ["事業No.", "担当課", "事業実績・評価理由.*", "今後の事業計画・展望.*"]
        schema = pa.DataFrameSchema({
            **{c: pa.Column(nullable=False, regex=c.endswith("*")) for c in required},
            "事業評価": pa.Column(str, pa.Check.isin(["A", "B", "C", "D"]), nullable=False),
        })
        try:
            schema.validate(master, lazy=True)
        except pandera.errors.SchemaErrors as exc:
            bad = sorted(set(exc.failure_cases["index"].dropna().astype(int)))
            bad_rows = len(bad)
            master = master.drop(index=bad)
    t4 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    master.to_excel(out, index=False)
    t5 = time.perf_counter()
    _emit({"import": t1 - t0, "read": t2 - t1, "concat": t3 - t2, "validate": t4 - t3, "write": t5 - t4},
          rows=len(master), bad_rows=bad_rows)


def scenario_floor(inbox: Path, out: Path) -> None:
    """The physical floor: python-calamine reads every value of every sheet of every return, xlsxwriter
    writes one sheet holding every data row (with one header row); no validation, no formats."""
    t0 = time.perf_counter()
    import python_calamine as pc
    import xlsxwriter

    t1 = time.perf_counter()
    rows: list[list[Any]] = []
    header: list[Any] = []
    cells = 0
    for path in sorted(inbox.glob("*.xlsx")):
        book = pc.CalamineWorkbook.from_path(str(path))
        for name in book.sheet_names:  # 記入シート, 記入要領 and the hidden _meta
            data = book.get_sheet_by_name(name).to_python()
            cells += sum(len(r) for r in data)
            if name == TEMPLATE_SHEET:
                header = header or data[2]
                rows.extend(data[3:])  # header row 3, data from row 4
    t2 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(out))
    ws = wb.add_worksheet("評価一覧")
    ws.write_row(0, 0, header)
    for r, row in enumerate(rows, start=1):
        ws.write_row(r, 0, row)
    wb.close()
    t3 = time.perf_counter()
    _emit({"import": t1 - t0, "read": t2 - t1, "write": t3 - t2}, rows=len(rows), cells_read=cells)


# ==============================================================================================
# Measuring a process: wall time, CPU, peak RSS
# ==============================================================================================


def _tree_rss_kib(root: int, *, include_root: bool = True) -> int:
    """Sum of VmRSS over `root`'s descendants (and `root` itself unless told not to), from /proc
    (0 where /proc is missing)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
    for e in entries:
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat", "rb") as fh:
                stat = fh.read()
            fields = stat[stat.rindex(b")") + 2:].split()
            parents[int(e)] = int(fields[1])
            rss[int(e)] = int(fields[21]) * page_kib
        except (OSError, ValueError, IndexError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        for c, pp in parents.items():
            if pp == p and c not in tree:
                tree.add(c)
                frontier.append(c)
    if not include_root:
        tree.discard(root)
    return sum(rss.get(p, 0) for p in tree)


# The per-scenario wrapper: a bare interpreter (-I -S: no site, nothing imported but these few modules)
# that spawns the scenario, reaps it, and reports getrusage(RUSAGE_CHILDREN) -- the scenario and every
# descendant it waited for, nothing else. Why not os.wait4 in run.py itself: on Linux, execve() keeps the
# high-water RSS of the address space it replaces (exec_mmap → setmax_mm_hiwater_rss), and subprocess
# spawns with vfork/posix_spawn, so a child of run.py reports at least run.py's own peak (a parent that
# generated a corpus holds hundreds of MiB). The wrapper's own peak is polluted that way, but it is never
# read; what its child inherits is the wrapper's few MiB, less than any Python process uses anyway.
WRAPPER = r"""
import os, resource, sys, time
t0 = time.perf_counter()
pid = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ)
_, status = os.waitpid(pid, 0)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stdout.write("WRAP %d %.6f %.6f %.6f %d\n" % (os.waitstatus_to_exitcode(status), wall, ru.ru_utime,
                                                   ru.ru_stime, ru.ru_maxrss))
sys.stdout.flush()
"""


def measure(cmd: list[str], *, cwd: Path, timeout: float, sample_s: float = 0.1) -> dict[str, Any]:
    """Run `cmd` as a new process under the WRAPPER: wall seconds (spawn to reap, measured in the wrapper),
    CPU seconds and peak RSS of the largest single process of the scenario's own tree (the wrapper's
    getrusage(RUSAGE_CHILDREN): what `/usr/bin/time -v` reports when started from a small shell), and the
    peak of the scenario tree's summed RSS (sampled from /proc every `sample_s`, the wrapper excluded)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", WRAPPER, *cmd], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)
    out: dict[str, bytes] = {}

    def drain(name: str, stream: Any) -> None:
        out[name] = stream.read()

    readers = [threading.Thread(target=drain, args=(n, s), daemon=True) for n, s in (("stdout", proc.stdout),
                                                                                       ("stderr", proc.stderr))]
    for t in readers:
        t.start()
    peak_tree = 0
    timed_out = False
    while True:
        peak_tree = max(peak_tree, _tree_rss_kib(proc.pid, include_root=False))
        try:
            proc.wait(timeout=sample_s)
            break
        except subprocess.TimeoutExpired:
            pass
        if time.perf_counter() - t0 > timeout:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            timed_out = True
            break
    wall = time.perf_counter() - t0
    for t in readers:
        t.join(timeout=10)
    with contextlib.suppress(OSError):  # a forkserver or a leaked worker must not outlive its run
        os.killpg(proc.pid, signal.SIGKILL)
    stdout = out.get("stdout", b"").decode("utf-8", "replace")
    stages = wrap = None
    for line in stdout.splitlines():
        if line.startswith("BENCH "):
            stages = json.loads(line[6:])
        elif line.startswith("WRAP "):
            wrap = line.split()[1:]
    if wrap is None:  # the wrapper was killed (timeout) or failed: parent-side numbers, no memory
        exit_code, cpu, maxrss_kib = (proc.returncode if not timed_out else -9), None, 0
    else:
        exit_code, wall = int(wrap[0]), float(wrap[1])
        cpu = float(wrap[2]) + float(wrap[3])
        maxrss_kib = int(wrap[4]) if sys.platform != "darwin" else int(wrap[4]) // 1024
    return {
        "wall_s": round(wall, 3),
        "cpu_s": None if cpu is None else round(cpu, 3),
        "peak_rss_mib": round(maxrss_kib / 1024, 1) if maxrss_kib else None,
        "peak_tree_rss_mib": round(max(peak_tree, maxrss_kib) / 1024, 1) if (peak_tree or maxrss_kib) else None,
        "exit": exit_code,
        "timed_out": timed_out,
        "stages": stages,
        "stderr_tail": out.get("stderr", b"").decode("utf-8", "replace")[-600:],
    }


# ==============================================================================================
# The benchmark
# ==============================================================================================


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = [line[3:] for line in git("status", "--porcelain", "--", "pipeline", "schemas").splitlines()]
    diff = git("diff", "HEAD", "--", "pipeline", "schemas")
    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty": dirty,
            "diff_sha256": hashlib.sha256(diff.encode()).hexdigest()[:12] if diff else ""}


def machine_info() -> dict[str, Any]:
    from importlib import metadata

    mem = ""
    try:
        with open("/proc/meminfo") as fh:
            mem = f"{int(fh.readline().split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    versions = {}
    for pkg in ("pandas", "pandera", "numpy", "pyarrow", "openpyxl", "xlsxwriter", "python-calamine", "PyYAML", "click"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    try:
        import yaml

        libyaml = bool(yaml.__with_libyaml__)
    except ImportError:
        libyaml = False
    return {"nproc": os.cpu_count(), "memory": mem, "cpu": cpu, "python": platform.python_version(),
            "platform": platform.platform(), "packages": versions, "libyaml": libyaml, "code": _git_state()}


def time_help(py: str, runs: int = 5) -> dict[str, Any]:
    walls = [measure([py, "-m", "pipeline", "--help"], cwd=ROOT, timeout=60)["wall_s"] for _ in range(runs + 1)][1:]
    bare = [measure([py, "-c", "pass"], cwd=ROOT, timeout=60)["wall_s"] for _ in range(runs)]
    return {"help_s": _median(walls), "python_bare_s": _median(bare), "runs": runs}


def real_returns(py: str, runs: int, timeout: float, log: Any) -> dict[str, Any]:
    """The published R6 answers in our real templates (openpyxl-written, as `pipeline demo` makes them),
    merged with the shipped catalog."""
    sys.path.insert(0, str(ROOT))
    work = WORK / "real"
    inbox = work / "inbox"
    if not (work / "done").exists():
        shutil.rmtree(work, ignore_errors=True)
        from pipeline.catalog import load_catalog
        from pipeline.demo import DEMO_RESULTS, fill_returns
        from pipeline.templates import write_templates

        catalog = load_catalog("R6")
        write_templates(catalog, work / "templates")
        inbox.mkdir(parents=True)
        fill_returns(catalog, work / "templates", DEMO_RESULTS, inbox)
        (work / "done").write_text("")
    files = len(list(inbox.glob("*.xlsx")))
    walls, peaks, exits = [], [], []
    for _ in range(runs):
        shutil.rmtree(work / "outbox", ignore_errors=True)
        m = measure([py, "-m", "pipeline", "merge", "--inbox", str(inbox), "--outbox", str(work / "outbox")],
                    cwd=ROOT, timeout=timeout)
        walls.append(m["wall_s"])
        peaks.append(m["peak_rss_mib"])
        exits.append(m["exit"])
    rows = json.loads((work / "outbox" / "run-report.json").read_text(encoding="utf-8"))["rows"] \
        if (work / "outbox" / "run-report.json").exists() else None
    log(f"[real] {files} returns, {rows} rows: {_median(walls)} s")
    return {"files": files, "rows": rows, "wall_s": _median(walls), "all_s": walls,
            "peak_rss_mib": max(peaks) if peaks else None, "exit": exits}


SCENARIOS = ("ours", "baseline", "clerk_plain", "clerk", "floor")  # timed side by side, order rotated per repetition


def bench_one(n: int, args: argparse.Namespace, log: Any) -> dict[str, Any]:
    manifest = ensure_corpus(n, args.seed, log)
    code_before = _git_state()  # the measured code: commit, and the uncommitted changes' hash
    work = corpus_dir(n, args.seed)
    py = sys.executable
    inbox, settings = work / "inbox", work / "pipeline.toml"
    here = str(Path(__file__).resolve())
    out_ours = work / "outbox"
    outputs = {k: work / f"out-{k}" / "master.xlsx" for k in SCENARIOS if k != "ours"}
    commands = {
        "ours": [py, "-m", "pipeline", "--settings", str(settings), "merge", "--inbox", str(inbox), "--outbox", str(out_ours)],
        "baseline": [py, here, "_baseline", str(work / "schemas"), str(inbox), str(outputs["baseline"])],
        "clerk_plain": [py, here, "_clerk_plain", str(inbox), str(outputs["clerk_plain"])],
        "clerk": [py, here, "_clerk", str(inbox), str(outputs["clerk"])],
        "floor": [py, here, "_floor", str(inbox), str(outputs["floor"])],
    }
    skip_baseline = args.skip_baseline or (n > 2000 and not args.force_baseline)
    order = [k for k in SCENARIOS if not (k == "baseline" and skip_baseline)]
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in ("ours", "rerun", "nightly", *SCENARIOS[1:])}
    nightly_command = [*commands["ours"][:-4], "--inbox", str(work / "inbox-night"), "--outbox", str(out_ours)]
    notes: list[str] = []
    if skip_baseline:
        notes.append("baseline skipped" + ("" if args.skip_baseline else " above 2,000 files (it takes minutes); --force-baseline runs it"))
    runs = args.runs
    rep = 0
    while rep < runs:
        rotated = order[rep % len(order):] + order[: rep % len(order)]  # pair the runs: alternate the order
        for name in rotated:
            if name == "ours":
                shutil.rmtree(out_ours, ignore_errors=True)
            else:  # a stale output must not pass for this run's
                outputs[name].unlink(missing_ok=True)
            m = measure(commands[name], cwd=ROOT, timeout=args.timeout)
            results[name].append(m)
            log(f"[N={n}] run {rep + 1}/{runs} {name}: {m['wall_s']} s, peak {m['peak_rss_mib']} MiB"
                f"{' TIMEOUT' if m['timed_out'] else ''}{'' if m['exit'] in (0, 1) else ' exit ' + str(m['exit'])}")
            if name == "ours" and m["wall_s"] > args.budget and not m["timed_out"]:
                notes.append(f"rerun skipped: ours took {m['wall_s']} s (> --budget {args.budget:g} s)")
            elif name == "ours" and not m["timed_out"]:
                r = measure(commands["ours"], cwd=ROOT, timeout=args.timeout)  # nothing new: the rerun
                results["rerun"].append(r)
                log(f"[N={n}] run {rep + 1}/{runs} rerun: {r['wall_s']} s, peak {r['peak_rss_mib']} MiB")
                # the realistic night: on ours' outbox, 1 % of the returns new or changed
                night_run = measure(nightly_command, cwd=ROOT, timeout=args.timeout)
                results["nightly"].append(night_run)
                log(f"[N={n}] run {rep + 1}/{runs} nightly: {night_run['wall_s']} s, peak {night_run['peak_rss_mib']} MiB")
        rep += 1
        slow = results["ours"][-1]
        if rep < runs and (slow["timed_out"] or slow["wall_s"] > args.budget):
            notes.append(f"ours took {slow['wall_s']} s (> --budget {args.budget:g} s): {rep} run(s) instead of {runs}")
            runs = rep

    def ok(name: str) -> list[dict[str, Any]]:
        return [m for m in results[name] if not m["timed_out"] and m["exit"] in (0, 1)]

    failed = {k: [m["stderr_tail"] for m in v if m["exit"] not in (0, 1) and not m["timed_out"]] for k, v in results.items()}
    for k, tails in failed.items():
        if tails:
            notes.append(f"{k} failed (exit != 0/1): {tails[0][-300:]}")
    for k, v in results.items():
        if any(m["timed_out"] for m in v):
            notes.append(f"{k} timed out after {args.timeout:g} s")

    def med(name: str, key: str = "wall_s") -> float | None:
        return _median([m[key] for m in ok(name) if m[key] is not None])

    def paired(a: str, b: str) -> float | None:
        """Median of a/b over the repetitions where both ran (the same repetition: side by side)."""
        ratios = [x["wall_s"] / y["wall_s"] for x, y in zip(results[a], results[b], strict=False)
                  if x in ok(a) and y in ok(b)]
        return round(statistics.median(ratios), 3) if ratios else None

    def peak(name: str, key: str = "peak_rss_mib") -> float | None:
        return max((m[key] for m in ok(name) if m[key] is not None), default=None)

    code_after = _git_state()
    if code_after != code_before:
        notes.append("the pipeline's code changed while this N was measured: rerun it")
    report_path = out_ours / "run-report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.exists() else {}
    rows = report.get("rows")
    ours_s = med("ours")

    def stage_rows(name: str) -> int | None:
        return next((m["stages"]["rows"] for m in ok(name) if m.get("stages")), None)

    return {
        "files": n,
        "rows": rows,
        "ours_s": ours_s,
        "rerun_s": med("rerun"),
        "nightly_s": med("nightly"),
        "nightly_vs_clerk": paired("nightly", "clerk"),
        "baseline_s": med("baseline"),
        "clerk_plain_s": med("clerk_plain"),
        "clerk_s": med("clerk"),
        "floor_s": med("floor"),
        "peak_rss_mib": peak("ours"),
        "peak_tree_rss_mib": peak("ours", "peak_tree_rss_mib"),
        "per_file_ms": round(1000 * ours_s / n, 2) if ours_s else None,
        "rows_per_s": round(rows / ours_s, 1) if ours_s and rows else None,
        "ours_vs_baseline": paired("ours", "baseline"),
        "ours_vs_clerk_plain": paired("ours", "clerk_plain"),
        "ours_vs_clerk": paired("ours", "clerk"),
        "ours_vs_floor": paired("ours", "floor"),
        "clerk_vs_floor": paired("clerk", "floor"),
        "ratio_baseline": paired("ours", "baseline"),  # = ours_vs_baseline (the key predates the clerks)
        "ratio_floor": paired("ours", "floor"),  # = ours_vs_floor
        "runs": len(results["ours"]),
        "cpu_s": {k: med(k, "cpu_s") for k in results},
        "peak": {k: peak(k) for k in results},
        "peak_tree": {k: peak(k, "peak_tree_rss_mib") for k in results},
        "all_s": {k: [m["wall_s"] for m in v] for k, v in results.items()},
        "inproc": {k: next((m["stages"] for m in ok(k) if m.get("stages")), None) for k in SCENARIOS[1:]},
        "exit": {k: [m["exit"] for m in v] for k, v in results.items()},
        "rows_by_scenario": {"ours": rows, **{k: stage_rows(k) for k in SCENARIOS[1:]}},
        "outputs": {"ours": report.get("master"), **{k: str(v) if v.exists() else None for k, v in outputs.items()}},
        "baseline_rows": stage_rows("baseline"),
        "floor_rows": stage_rows("floor"),
        "statuses": report.get("statuses"),
        "corpus": manifest,
        "code": code_before,
        "notes": notes,
    }


def check_targets(results: list[dict[str, Any]], session: dict[str, Any]) -> dict[str, Any]:
    """The goals, met (True), missed (False) or not measured (None)."""

    def le(value: Any, bound: float) -> bool | None:
        return None if value is None else value <= bound

    out: dict[str, Any] = {}
    at = next((r for r in results if r["files"] == 2000), None)
    if at:
        out["nightly_le_0.3x_clerk"] = le(at.get("nightly_vs_clerk"), TARGETS["nightly_vs_clerk_max"])
        out["ours_le_1x_clerk"] = le(at.get("ours_vs_clerk"), TARGETS["ours_vs_clerk_max"])
        rerun = at["rerun_s"] / at["ours_s"] if at.get("rerun_s") and at.get("ours_s") else None
        out["rerun_le_0.25x_ours"] = le(rerun, TARGETS["rerun_vs_ours_max"])
    for r in results:
        if r["files"] in (2000, 6000):
            out[f"peak_{r['files']}_le_1GiB"] = le(r.get("peak_rss_mib"), TARGETS["peak_rss_mib"])
    if session.get("real_returns", {}).get("wall_s") is not None:
        out["real_returns_le_0.5s"] = session["real_returns"]["wall_s"] <= TARGETS["real_returns_s"]
    if session.get("help", {}).get("help_s") is not None:
        out["help_le_0.2s"] = session["help"]["help_s"] <= TARGETS["help_s"]
    return out


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def render_table(results: list[dict[str, Any]], session: dict[str, Any]) -> str:
    head = ("| N files | rows | ours s | rerun s | nightly s | baseline s | clerk_plain s | clerk s | floor s | ours/baseline "
            "| ours/clerk_plain | ours/clerk | nightly/clerk | ours/floor | ms/file | rows/s | runs |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        lines.append(
            f"| {r['files']:,} | {_fmt(r['rows'])} | {_fmt(r['ours_s'])} | {_fmt(r['rerun_s'])} | {_fmt(r['nightly_s'])} "
            f"| {_fmt(r['baseline_s'])} | {_fmt(r['clerk_plain_s'])} | {_fmt(r['clerk_s'])} | {_fmt(r['floor_s'])} "
            f"| {_fmt(r['ours_vs_baseline'])} | {_fmt(r['ours_vs_clerk_plain'])} | {_fmt(r['ours_vs_clerk'])} "
            f"| {_fmt(r['nightly_vs_clerk'])} | {_fmt(r['ours_vs_floor'])} "
            f"| {_fmt(r['per_file_ms'], 1)} | {_fmt(r['rows_per_s'], 0)} | {r['runs']} |"
        )
    names = ("ours", "rerun", "nightly", *SCENARIOS[1:])
    head = "| N files | " + " | ".join(f"{k} MiB" for k in names) + " | ours tree MiB |"
    lines += ["", "peak RSS per scenario (largest single process of its own tree):", "", head,
              "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        lines.append(f"| {r['files']:,} | " + " | ".join(_fmt(r["peak"].get(k), 0) for k in names)
                     + f" | {_fmt(r['peak_tree_rss_mib'], 0)} |")
    rr, hp = session.get("real_returns") or {}, session.get("help") or {}
    if rr:
        lines.append(f"\nreal R6 returns: {rr['files']} files, {rr['rows']} rows, {_fmt(rr['wall_s'])} s; "
                     f"`python -m pipeline --help`: {_fmt(hp.get('help_s'), 3)} s (bare python {_fmt(hp.get('python_bare_s'), 3)} s)")
    for r in results:
        for note in r["notes"]:
            lines.append(f"N={r['files']}: {note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_baseline"]:
        scenario_baseline(Path(argv[1]), Path(argv[2]), Path(argv[3]))
        return 0
    if argv[:1] == ["_floor"]:
        scenario_floor(Path(argv[1]), Path(argv[2]))
        return 0
    if argv[:1] in (["_clerk_plain"], ["_clerk"]):
        _clerk(Path(argv[1]), Path(argv[2]), engine="calamine" if argv[0] == "_clerk" else None,
               validate=argv[0] == "_clerk")
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, nargs="+", default=[15, 200, 2000], help="numbers of returns (default 15 200 2000)")
    ap.add_argument("--runs", type=int, default=3, help="repetitions per N; the median is reported (default 3)")
    ap.add_argument("--json", action="store_true", help="print one JSON object per N, one per line")
    ap.add_argument("--seed", type=int, default=1, help="corpus seed (corpora are cached per N and seed)")
    ap.add_argument("--skip-baseline", action="store_true", help="do not run the naive baseline")
    ap.add_argument("--force-baseline", action="store_true", help="run the baseline above 2,000 files too")
    ap.add_argument("--timeout", type=float, default=3600, help="kill a measured process after this many seconds")
    ap.add_argument("--budget", type=float, default=300,
                    help="when one run of ours takes longer than this, do no further repetitions for that N")
    ap.add_argument("--no-session", action="store_true", help="skip timing --help and the real R6 returns")
    ap.add_argument("--parent-ballast-mib", type=int, default=0, metavar="M",
                    help="self-check of the memory method: hold M MiB in this process while measuring; "
                         "no scenario's peak may move (tests/test_benchmark_smoke.py uses it)")
    args = ap.parse_args(argv)
    ballast = b"\x01" * (args.parent_ballast_mib << 20)  # touched pages: resident, not just reserved

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    session: dict[str, Any] = {}
    if not args.no_session:
        session["help"] = time_help(sys.executable)
        log(f"[help] python -m pipeline --help: {session['help']['help_s']} s")
        session["real_returns"] = real_returns(sys.executable, max(args.runs, 1), args.timeout, log)
    machine = machine_info()
    results = []
    for n in args.files:
        r = bench_one(n, args, log)
        r["machine"] = machine
        r["help_s"] = (session.get("help") or {}).get("help_s")
        r["real_returns"] = session.get("real_returns")
        results.append(r)
        if args.json:
            print(json.dumps(r, ensure_ascii=False), flush=True)
    targets = check_targets(results, session)
    if not args.json:
        print(render_table(results, session))
        print("targets: " + json.dumps(targets))
        m = machine
        print(f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']}, Python {m['python']}, code {m['code']['commit']}"
              f"{' + uncommitted changes in ' + ', '.join(m['code']['dirty']) if m['code']['dirty'] else ''}")
    else:
        log("targets: " + json.dumps(targets))
    del ballast
    return 0


if __name__ == "__main__":
    sys.exit(main())
