#!/usr/bin/env python3
"""Benchmark the nightly merge against a naive baseline and a physical floor (issue 7).

    .venv/bin/python benchmarks/run.py --files 15 200 2000 [--runs 3] [--json] [--seed 1] [--skip-baseline]

For each N it builds (once, cached under benchmarks/work/<N>-seed<S>/) a synthetic plan catalog
in the format of schemas/plan-r6.yaml with N offices of about 30 assignments each, and N returns
of our template filled with realistic Japanese text, written with xlsxwriter as Excel writes them
(shared strings). It then times, each as a new process and alternating within every repetition:

  ours      python -m pipeline --settings <work>/pipeline.toml merge --inbox … --outbox …  (fresh outbox)
  rerun     the same merge again on the same outbox, nothing new in the inbox
  baseline  pd.read_excel(engine="openpyxl") + the pandera schema per file, df.to_excel(openpyxl)
  floor     python-calamine reads + xlsxwriter writes the same rows, no validation or formatting

and reports the median wall time, per-file ms, rows/s, peak RSS and the paired ratios. It also
times `python -m pipeline --help` and the merge of the real R6 demo returns. See docs/benchmarks.md.

`--json` prints one JSON object per N, one per line (JSON Lines); with one N that is one object.
The scenario processes are this same file: `run.py _baseline …` / `run.py _floor …` (internal).
"""

from __future__ import annotations

import argparse
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
GENERATOR_VERSION = "1"  # bump when the corpus changes: cached corpora are keyed by it too
TEMPLATE_SHEET = "記入シート"  # = pipeline.templates.TEMPLATE_SHEET (checked at generation)
META_SHEET = "_meta"

# Corpus shape
ROWS_MEAN, ROWS_SD, ROWS_MIN, ROWS_MAX = 30, 8, 5, 55  # assignments per office (= rows per return)
ASSIGNMENTS_PER_PROJECT = ((1, 0.60), (2, 0.25), (3, 0.10), (4, 0.05))  # mean 1.6
PROJECTS_PER_MEASURE = (4, 16)
MEASURES_PER_DIRECTION = (5, 20)  # the catalog allows at most 20 (①-⑳)
DIRECTIONS_PER_GOAL = 40  # the measure code allows (1)..(99)
ERROR_SHARE = 0.05  # files with at least one row-level error
RATING_WEIGHTS = (("A", 3), ("B", 5), ("C", 2), ("D", 1))
RESULT_CHARS, OUTLOOK_CHARS = (300, 80), (250, 70)  # mean, sd of the two free-text answers

TARGETS = {
    "ours_2000_s": 8.0,
    "peak_rss_2000_mib": 1024.0,
    "ratio_baseline_max": 0.25,  # >= 4x faster than the baseline
    "ratio_floor_max": 1.3,
    "rerun_2000_s": 2.0,
    "real_returns_s": 1.5,
    "help_s": 0.2,
}


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

    plan = {
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
        "rating_note": "「今後の事業計画・展望」に次年度に向けての課題、検討内容について記載する。",
        "goals": goals,
    }
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
        if rng.random() < 0.01:  # typed as people type: full width or lower case (a warning, not an error)
            rating = rng.choice(("Ａ", "Ｂ", " b", "c "))
        out.append([compose(rng, bank["result"], *RESULT_CHARS), rating, compose(rng, bank["outlook"], *OUTLOOK_CHARS)])
    return out


def corpus_dir(n: int, seed: int) -> Path:
    return WORK / f"{n}-seed{seed}"


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
    t_cat = time.perf_counter()
    catalog = load_catalog("R6", schemas)
    load_s = time.perf_counter() - t_cat
    log(f"[N={n}] catalog: {len(catalog.projects)} projects, {len(catalog.assignments)} assignments, "
        f"{len(catalog.goals)} goals, load_catalog {load_s:.1f} s")

    # Plan order per office, as templates.prefilled_values gives it (which scans every assignment
    # per office: fine for a template run, quadratic for 20,000 offices, so it is checked on a sample).
    by_office: dict[str, list[tuple[str, str, str, str, str]]] = {}
    for a in catalog.assignments:  # already in plan order
        p = catalog.projects[a.project]
        by_office.setdefault(a.office, []).append((p.measure_code, p.label, p.name, p.content, a.department))
    offices = templates.receiving_offices(catalog)
    assert len(offices) == n, (len(offices), n)
    sample = random.Random(seed).sample(offices, min(5, n))
    for o in sample:
        assert by_office[o] == templates.prefilled_values(catalog, o), o

    guide_office = offices[0]
    guide = _guide_rows(catalog, guide_office)
    bank = _text_bank()
    rng = random.Random(f"returns-{n}-{seed}")
    inbox = work / "inbox"
    inbox.mkdir(parents=True)
    error_files = set(rng.sample(range(n), max(1, round(n * ERROR_SHARE))))
    faults: dict[str, int] = {"rating-invalid": 0, "required-missing": 0, "department-unknown": 0}
    rows = 0
    base = 1_746_000_000  # 2025-04-30, then one file a minute (mtime = received time)
    for i, office in enumerate(offices):
        values = by_office[office]
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
        path = inbox / templates.template_name(catalog, office)
        write_return(path, catalog, office, values, [tuple(a) for a in answers], guide, guide_office,
                     "2025-04-01T09:00:00+09:00", departments)
        os.utime(path, (base + 60 * i, base + 60 * i))
        rows += len(values)
        if (i + 1) % 500 == 0:
            log(f"[N={n}] {i + 1}/{n} returns written")
    size = sum(p.stat().st_size for p in inbox.iterdir())
    manifest = {
        "generator": GENERATOR_VERSION,
        "files": n,
        "seed": seed,
        "rows": rows,
        "goals": len(catalog.goals),
        "directions": len(catalog.directions),
        "measures": len(catalog.measures),
        "projects": len(catalog.projects),
        "assignments": len(catalog.assignments),
        "error_files": len(error_files),
        "faults": faults,
        "inbox_mib": round(size / 2**20, 1),
        "catalog_mib": round((schemas / "plan-r6.yaml").stat().st_size / 2**20, 2),
        "catalog_version": catalog.version,
        "load_catalog_s": round(load_s, 3),
        "generation_s": round(time.perf_counter() - t0, 1),
    }
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    log(f"[N={n}] corpus ready in {manifest['generation_s']} s: {rows} rows, {manifest['inbox_mib']} MiB")
    return manifest
