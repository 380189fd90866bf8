"""Next year's plan catalog: `plan-r7.yaml` made from `plan-r6.yaml`, and what staff must review.

The plan tree and the assignments are kept as they are; only the fiscal year changes. Staff then
edit the new file by hand for the new plan year (projects added, removed or renumbered, offices
renamed), and `load_catalog` checks the result. `plan_changes` lists what differs between two
years' catalogs, for the review.

The `repairs:` notes are not copied. They record how the published R6 table (a damaged text
export of a PDF) was read into plan-r6.yaml; the new file is not read from that export, so in it
they would be false statements about its own source. They stay in plan-r6.yaml (and in git) as
the history, and the new file's header says so. `notes:` are about the content (a 内容 printed
twice), which is copied, so they are kept.

    >>> path, checklist = new_year_plan(tmp_schemas, "R7")   # doctest: +SKIP
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from plan_schemas import SCHEMAS_DIR

from pipeline.atomic import write_bytes_atomically
from pipeline.catalog import Catalog, check_plan, load_catalog, reiwa_year, year_label, year_western
from pipeline.errors import PipelineError

# Fields that carry documentation about the source of the previous year's file, not the plan.
DROPPED_KEYS = ("repairs",)
# Top-level text fields in which last year's label is replaced (a title such as "令和6年度 …").
RELABELLED_FIELDS = ("plan", "title", "published_by", "rating_note")
_YEAR_MENTION = re.compile(r"令和\s*(?:\d+|元)\s*年|(?<![A-Za-z])R\d{1,2}(?![0-9])|20\d\d年")


class NewYearError(PipelineError):
    """The new plan cannot be written: the source plan is missing or the target exists."""


def parse_year(code: str) -> str:
    """A fiscal-year code as typed ("r7", "Ｒ7") to "R7"; ValueError with a Japanese message."""
    n = reiwa_year(code)
    if n is None:
        raise ValueError(f"年度「{code}」は R7 のように R と数字で指定してください。")
    return f"R{n}"


def plan_path(schemas_dir: Path, year: str) -> Path:
    return Path(schemas_dir) / f"plan-{year.lower()}.yaml"


def available_years(schemas_dir: Path) -> list[str]:
    """The years that have a plan file in the folder, oldest first: ["R6", "R7"]."""
    years = {p.stem.removeprefix("plan-").upper() for p in Path(schemas_dir).glob("plan-*.yaml")}
    return sorted((y for y in years if reiwa_year(y)), key=lambda y: reiwa_year(y) or 0)


def new_year_plan(
    schemas_dir: Path | None,
    year: str,
    from_year: str | None = None,
    force: bool = False,
    *,
    settings: Any = None,
) -> tuple[Path, list[str]]:
    """Write `plan-<year>.yaml` from `plan-<from_year>.yaml` in `schemas_dir` and return its path
    and the checklist (Japanese lines) of what staff should review.

    `from_year` defaults to the year before. An existing target is never overwritten unless
    `force`. The source must load (a broken plan raises CatalogError); the new file is checked
    with the same loader before it replaces anything, and written atomically. `settings` (a
    pipeline.settings.Settings), when given, makes the checklist name the real paths and deadline.
    Raises ValueError for a malformed year (a usage error) and NewYearError when it cannot run.
    """
    schemas = Path(schemas_dir or SCHEMAS_DIR)
    year = parse_year(year)
    if from_year:
        source_year = parse_year(from_year)
    elif year == "R1":
        raise ValueError("R1 の前年度の計画はありません。--from で元にする年度を指定してください。")
    else:
        source_year = f"R{int(year[1:]) - 1}"
    if source_year == year:
        raise ValueError(f"元にする年度(--from {source_year})と作る年度が同じです。")
    source = plan_path(schemas, source_year)
    target = plan_path(schemas, year)
    if not source.exists():
        have = available_years(schemas)
        raise NewYearError(
            f"元にする計画カタログ {source} がありません。"
            + (f"--from で元にする年度(今ある年度: {'、'.join(have)})を指定するか、" if have else "")
            + "pipeline.toml の [paths] schemas が計画カタログのフォルダーを指しているか確認してください。"
        )
    if target.exists() and not force:
        raise NewYearError(
            f"{target} は既にあります。作り直すと、このファイルに加えた編集が失われます。"
            f"それでも {source.name} から作り直す場合は --force を付けて実行してください。"
        )
    old = load_catalog(source_year, schemas)  # a broken source plan stops here, naming its entry
    source_text = source.read_text(encoding="utf-8")
    data = yaml.safe_load(source_text)

    relabelled = _set_fiscal_year(data, source_year, year)
    dropped = _drop(data, DROPPED_KEYS)
    text = _header(source.name, source_year, year, dropped) + yaml.safe_dump(
        data, allow_unicode=True, sort_keys=False, width=4096, default_flow_style=False
    )
    with tempfile.TemporaryDirectory() as tmp:  # check before anything is replaced
        trial = Path(tmp) / target.name
        trial.write_text(text, encoding="utf-8")
        new = check_plan(trial, year, schemas / "departments.yaml")
    write_bytes_atomically(target, text.encode("utf-8"))
    checklist = _checklist(old, new, source, target, schemas, dropped, relabelled, source_text, data, settings)
    return target, checklist


def _set_fiscal_year(data: dict[str, Any], source_year: str, year: str) -> list[str]:
    """Set fiscal_year to the new year and replace last year's label in the top-level texts.
    Returns the fields changed besides fiscal_year."""
    fy = data.setdefault("fiscal_year", {})
    fy["code"] = year
    fy["label"] = year_label(year)
    fy["western"] = year_western(year)
    old_label, new_label = year_label(source_year), year_label(year)
    changed = []
    for key in RELABELLED_FIELDS:
        value = data.get(key)
        if isinstance(value, str) and old_label in value:
            data[key] = value.replace(old_label, new_label)
            changed.append(key)
    return changed


def _drop(node: Any, keys: tuple[str, ...]) -> int:
    """Remove `keys` from every mapping in the tree; the number of entries they held."""
    count = 0
    if isinstance(node, dict):
        for key in keys:
            if key in node:
                removed = node.pop(key)
                count += len(removed) if isinstance(removed, list) else 1
        for value in node.values():
            count += _drop(value, keys)
    elif isinstance(node, list):
        for value in node:
            count += _drop(value, keys)
    return count


def _header(source_name: str, source_year: str, year: str, dropped: int) -> str:
    lines = [
        f"# 地域福祉計画 {year}({year_label(year)})の計画カタログ: 基本目標 → 施策の方向性 → 施策 → 事業 → 担当課の割り当て。",
        f"# {source_name} から python -m pipeline plan new-year {year} で作成しました。{year_label(year)}の計画に合わせて",
        "# このファイルを直接編集してください(事業の追加・削除・番号の変更、担当課の変更)。",
        f"# 編集後は python -m pipeline plan check {year} で点検し、前年度からの変更点を確認できます。",
        "# 担当課の `office:` は schemas/departments.yaml の規則より優先されます。",
    ]
    if dropped:
        lines.append(
            f"# {source_name} の repairs:(公表表の読み取りで行った修復の記録)は {source_year} の元資料についての記録のため"
            f"引き継いでいません。記録は {source_name} に残っています。"
        )
    return "\n".join(lines) + "\n"


def _body_comments(text: str) -> int:
    """Comment lines after the header block: they are not carried over by the emitter."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")), len(lines))
    return sum(1 for line in lines[start:] if line.lstrip().startswith("#"))


def _year_mentions(data: dict[str, Any]) -> list[str]:
    """Where a project's name or 内容, a measure or a goal mentions a year: staff should check it."""
    found = []
    for g in data.get("goals") or []:
        for d in g.get("directions") or []:
            for m in d.get("measures") or []:
                for p in m.get("projects") or []:
                    for key, label in (("name", "事業名"), ("content", "内容")):
                        hits = sorted(set(_YEAR_MENTION.findall(str(p.get(key) or ""))))
                        if hits:
                            found.append(f"事業No.{p.get('number')} の{label}に「{'」「'.join(hits)}」")
    return found


def _checklist(
    old: Catalog,
    new: Catalog,
    source: Path,
    target: Path,
    schemas: Path,
    dropped: int,
    relabelled: list[str],
    source_text: str,
    data: dict[str, Any],
    settings: Any,
) -> list[str]:
    year, prev = new.year, old.year
    inbox = Path(getattr(settings, "inbox", None) or "inbox")
    outbox = Path(getattr(settings, "outbox", None) or "outbox")
    deadline = getattr(settings, "deadline", None)
    offices = "、".join(sorted({a.office for a in new.assignments}, key=list(new.offices).index))
    items = [
        f"事業: {target.name} は {source.name} の写しです(事業 {len(new.projects)} 件、担当課の割り当て "
        f"{len(new.assignments)} 件)。{new.year_label}の計画に合わせて、事業の追加・削除・番号の変更を {target.name} に"
        "直接書き込んでください。事業No. の重複や、範囲(31～34 など)と個別の番号の重なりは読み込み時にエラーになります"
        "(欠番は構いません)。",
        f"担当課: 事業ごとの担当課(assignments)が{new.year_label}の分担どおりか確認してください。",
        f"組織改正: 課の名前が変わった場合は {schemas / 'departments.yaml'} の offices で name を新しい名前にし、"
        f"旧い名前を aliases に加えてください(旧い名前で返送されても新しい課として受け付けます)。{target.name} の"
        f"担当課も新しい名前に直します。今テンプレートを送る課: {offices}。",
        f"提出期限: pipeline.toml の [plan] year を \"{year}\" に、[plan] deadline を{new.year_label}の提出期限に"
        f"変えてください" + (f"(今は {deadline.isoformat()})。" if deadline else "。"),
        f"受付フォルダー: {old.year_label}の返送ファイルが{new.year_label}の集約で読まれないよう、{inbox} の中身を"
        f"保管用のフォルダー(例: {inbox / prev})に移し、pipeline.toml の [paths] exclude に加えてください"
        f"(例: exclude = [\"{prev}\"])。新しい受付フォルダーを作って [paths] inbox をそこに変えても構いません。",
        f"テンプレート: {outbox / 'templates'} に{old.year_label}のテンプレート({prev}_…xlsx)が残っていれば、"
        "取り違えて配布しないよう別の場所に移してください。",
        f"仕上げ: 編集が済んだら python -m pipeline plan check {year} で前年度からの変更点を確認し、"
        f"python -m pipeline templates --year {year} でテンプレートを作ってください。",
    ]
    if relabelled:
        items.append(f"年度の表記: {', '.join(relabelled)} の「{old.year_label}」を「{new.year_label}」に直しました。確認してください。")
    mentions = _year_mentions(data)
    if mentions:
        shown = "、".join(mentions[:10]) + (f" ほか {len(mentions) - 10} 件" if len(mentions) > 10 else "")
        items.append(f"年度の記述: {shown} があります。{new.year_label}の計画として正しいか確認してください。")
    if dropped:
        items.append(
            f"修復の記録: {source.name} の repairs:({dropped} 件)は{old.year_label}の公表表を読み取った際の記録のため"
            f"引き継いでいません({source.name} に残っています)。"
        )
    comments = _body_comments(source_text)
    if comments:
        items.append(f"コメント: {source.name} の本文中のコメント({comments} 行)は引き継いでいません。必要なら書き写してください。")
    return items


# --- what changed between two years ----------------------------------------------------------


def plan_changes(old: Catalog, new: Catalog) -> list[str]:
    """The differences between two years' catalogs, one Japanese line each, in the new plan's order.

    A project whose number disappeared and whose name appears under a new number is reported as
    renumbered (and compared under its new number); otherwise as removed and added.
    """
    lines: list[str] = []
    old_by_name = {p.name: p for p in old.projects.values()}
    renumbered: dict[str, str] = {}  # new key → old key
    for p in new.projects.values():
        if p.key not in old.projects and p.name in old_by_name and old_by_name[p.name].key not in new.projects:
            renumbered[p.key] = old_by_name[p.name].key
    counterpart = {v: k for k, v in renumbered.items()}
    for p in new.projects.values():
        old_key = renumbered.get(p.key, p.key)
        before = old.projects.get(old_key)
        if before is None:
            lines.append(f"追加: 事業No.{p.label}「{p.name}」({p.measure_code})")
            continue
        if old_key != p.key:
            lines.append(f"番号の変更: 事業No.{before.label} → {p.label}「{p.name}」")
        if before.name != p.name:
            lines.append(f"事業名の変更: 事業No.{p.label}「{before.name}」→「{p.name}」")
        if before.measure_code != p.measure_code or before.goal != p.goal:
            lines.append(
                f"施策の変更: 事業No.{p.label} 基本目標{before.goal} {before.measure_code} → 基本目標{p.goal} {p.measure_code}"
            )
        if before.content != p.content:
            lines.append(f"内容の変更: 事業No.{p.label}「{p.name}」")
        was = {a.department: a.office for a in old.assignments_of(old_key)}
        now = {a.department: a.office for a in new.assignments_of(p.key)}
        for dept in now.keys() - was.keys():
            lines.append(f"担当課の追加: 事業No.{p.label} {dept}")
        for dept in was.keys() - now.keys():
            lines.append(f"担当課の削除: 事業No.{p.label} {dept}")
        for dept in now.keys() & was.keys():
            if now[dept] != was[dept]:
                lines.append(f"返送する課の変更: 事業No.{p.label} {dept}: {was[dept]} → {now[dept]}")
    for p in old.projects.values():
        if p.key not in new.projects and p.key not in counterpart:
            lines.append(f"削除: 事業No.{p.label}「{p.name}」")
    return lines
