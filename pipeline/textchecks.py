"""Checks that read the text: warnings when a department's words do not fit its rating.

The rules are data, `schemas/text_checks.yaml` (see its header for the keys); each gives a warning
with a registered code (pipeline.report.CODES), never an error, so no row is ever excluded by them.
`check_texts` is pure and linear: every pattern is compiled once when the rules are loaded and
each row's text is folded once, so 60,000 rows take well under a second.

Staff can acknowledge a warning they have checked in `schemas/acknowledged.yaml`;
`apply_acknowledgements` moves those to a separate list.

    >>> rules = load_text_rules()
    >>> [r.code for r in rules]
    ['reason-says-not-done', 'd-reports-results', 'reason-same-as-last-year', 'outlook-missing-for-cd']
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from plan_schemas import SCHEMAS_DIR

from pipeline.catalog import Catalog, reiwa_year
from pipeline.errors import CatalogError
from pipeline.layout import COLUMNS, LETTERS
from pipeline.marks import NO_VALUE
from pipeline.normalize import RATINGS, department_key, parse_project
from pipeline.report import CODES, WARNING, Acknowledged, Evaluation, Issue, Outcome, make_issue

RULES_FILE = "text_checks.yaml"
ACKS_FILE = "acknowledged.yaml"

# The text columns a rule can read: Evaluation field → the template's column label.
TEXT_COLUMNS = {"result": "事業実績・評価理由", "outlook": "今後の事業計画・展望"}
# Where each field sits in our template (F and H); a caller reading another layout passes its own.
TEMPLATE_LETTERS: Mapping[str, str] = {name: LETTERS[COLUMNS.index(label)] for name, label in TEXT_COLUMNS.items()}
MATCHES = ("any", "whole", "same-as-last-year")
RULE_KEYS = ("code", "ratings", "column", "match", "words", "patterns", "explanation")
ACK_KEYS = ("year", "project", "department", "code", "who", "why")
# The codes an acknowledgement may name: the warnings check_texts gives with the shipped rules.
ACKNOWLEDGEABLE = ("reason-says-not-done", "d-reports-results", "reason-same-as-last-year", "outlook-missing-for-cd")

_KEBAB = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
# Full-width ASCII (Ａ, ６, （) to half-width and the ideographic space to a space: the same folding
# as normalize.fold, by a regular expression that touches only those characters (jaconv and
# str.translate look at every character: 10-15x slower on 60,000 long texts).
_FULL_WIDTH = re.compile("[\uff01-\uff5e\u3000]")
_SPACES = re.compile(r"[\s\u00a0\u200b\ufeff]+")
_SNIPPET = 14  # characters shown on each side of a match


def _half(m: re.Match[str]) -> str:
    c = m[0]
    return " " if c == "\u3000" else chr(ord(c) - 0xFEE0)


def fold_text(text: str) -> str:
    """Full-width ASCII to half-width (６人 → 6人); nothing else changes, the length is kept."""
    return _FULL_WIDTH.sub(_half, text) if _FULL_WIDTH.search(text) else text


def _whole_key(text: str) -> str:
    """A text as compared by `match: whole`: folded, no spaces, no final 。 or period."""
    return _SPACES.sub("", fold_text(text)).rstrip("。.")


def _same_key(text: str) -> str:
    """A text as compared by `match: same-as-last-year`: folded, no spaces."""
    return _SPACES.sub("", fold_text(text))


@dataclass(frozen=True)
class TextRule:
    code: str
    ratings: frozenset[str]
    column: str  # "result" or "outlook" (an Evaluation field)
    match: str  # "any", "whole" or "same-as-last-year"
    words: tuple[str, ...]
    patterns: tuple[str, ...]
    explanation: str
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    whole: frozenset[str] = field(default=frozenset(), compare=False, repr=False)


@dataclass(frozen=True)
class TextIssue(Issue):
    """An Issue about one evaluation's text; it also names the (事業, 担当課), for acknowledgements."""

    project: str = ""
    department: str = ""


# --- the rule file -------------------------------------------------------------------------


def _read(path: Path, what: str) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(path, "ファイル", f"ファイルが見つかりません。{what}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CatalogError(path, "ファイル", f"YAML として読めません: {exc}") from None


def _strings(value: Any, path: Path, entry: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
        raise CatalogError(path, entry, f"'{key}' は文字列のリストにしてください(例: {key}: [未実施, 中止])。")
    return tuple(str(v) for v in value)


def load_text_rules(schemas_dir: Path | None = None) -> list[TextRule]:
    """Load and check `text_checks.yaml`; a broken rule raises CatalogError naming the rule."""
    path = Path(schemas_dir or SCHEMAS_DIR) / RULES_FILE
    return parse_text_rules(_read(path, "記述の点検の規則ファイルを元に戻してください。"), path)


def parse_text_rules(data: Any, path: Path) -> list[TextRule]:
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise CatalogError(path, "rules", "'rules:' に規則のリストを書いてください。")
    rules: list[TextRule] = []
    for i, raw in enumerate(data["rules"]):
        entry = f"rules[{i}]"
        if not isinstance(raw, dict):
            raise CatalogError(path, entry, "規則は code・ratings・column などの項目の集まりにしてください。")
        code = raw.get("code")
        if isinstance(code, str):
            entry = f"rules[{i}] {code}"
        unknown = [str(k) for k in raw if k not in RULE_KEYS]
        if unknown:
            raise CatalogError(path, entry, f"不明な項目 {', '.join(unknown)} があります。使える項目: {', '.join(RULE_KEYS)}。")
        if not isinstance(code, str) or not _KEBAB.fullmatch(code):
            raise CatalogError(path, entry, f"code「{code}」は reason-says-not-done のような英小文字とハイフンにしてください。")
        if code not in CODES:
            raise CatalogError(
                path, entry, f"code「{code}」は pipeline/report.py の CODES に登録されていません(登録済みのコードを使ってください)。"
            )
        if CODES[code].severity != WARNING:
            raise CatalogError(path, entry, f"code「{code}」はエラーのコードです。記述の点検には警告のコードだけを使えます。")
        if any(r.code == code for r in rules):
            raise CatalogError(path, entry, f"code「{code}」の規則が2つあります。1つにまとめてください。")
        ratings = raw.get("ratings")
        if (
            not isinstance(ratings, list)
            or not ratings
            or not all(isinstance(r, str) and r.strip().upper() in RATINGS for r in ratings)
        ):
            raise CatalogError(path, entry, f"ratings「{ratings}」は A・B・C・D から選んだリストにしてください(例: ratings: [A, B])。")
        column = raw.get("column")
        if column not in TEXT_COLUMNS:
            raise CatalogError(
                path, entry, f"column「{column}」は result(事業実績・評価理由)か outlook(今後の事業計画・展望)にしてください。"
            )
        match = raw.get("match", "any")
        if match not in MATCHES:
            raise CatalogError(path, entry, f"match「{match}」は {' / '.join(MATCHES)} のどれかにしてください。")
        words = _strings(raw.get("words"), path, entry, "words")
        patterns = _strings(raw.get("patterns"), path, entry, "patterns")
        explanation = raw.get("explanation")
        if not isinstance(explanation, str) or not explanation.strip():
            raise CatalogError(path, entry, "explanation(何を見つける規則か、日本語の短い説明)を書いてください。")
        compiled: list[str] = []
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise CatalogError(path, entry, f"patterns の「{pattern}」は正規表現として誤りがあります({exc})。") from None
            compiled.append(f"(?:{pattern})")
        regex = None
        whole: frozenset[str] = frozenset()
        if match == "same-as-last-year":
            if words or patterns:
                raise CatalogError(path, entry, "match: same-as-last-year の規則には words・patterns を書きません。")
        elif not words and not patterns:
            raise CatalogError(path, entry, "words か patterns を1つ以上書いてください。")
        elif match == "any":
            if "" in words:
                raise CatalogError(path, entry, "match: any の words に空の文字列は使えません(空欄は match: whole で調べます)。")
            regex = re.compile("|".join([*(re.escape(fold_text(w)) for w in words), *compiled]))
        else:
            whole = frozenset(_whole_key(w) for w in words)
            regex = re.compile("|".join(compiled)) if compiled else None
        rules.append(
            TextRule(
                code=code,
                ratings=frozenset(r.strip().upper() for r in ratings),
                column=column,
                match=match,
                words=words,
                patterns=patterns,
                explanation=explanation.strip(),
                regex=regex,
                whole=whole,
            )
        )
    return rules


# --- the check ------------------------------------------------------------------------------


def _snippet(text: str, start: int, end: int) -> str:
    left, right = max(0, start - _SNIPPET), min(len(text), end + _SNIPPET)
    return ("…" if left else "") + text[left:right].strip() + ("…" if right < len(text) else "")


def check_texts(
    rules: Iterable[TextRule],
    rows: Iterable[Evaluation],
    previous: Mapping[tuple[str, str], str] | None = None,
    *,
    letters: Mapping[str, str] | None = TEMPLATE_LETTERS,
) -> list[TextIssue]:
    """The warnings of every rule for every row, in row order then rule order.

    `previous` maps (project key, 担当課) to last year's 事業実績・評価理由 (for
    `same-as-last-year`; without it those rules give nothing). `letters` maps "result" and
    "outlook" to the Excel column of the row's layout (our template's F and H by default); pass
    None when unknown, and the issues have no cell address.
    """
    rules = list(rules)
    previous_keys = {k: _same_key(v) for k, v in previous.items() if v} if previous else {}
    issues: list[TextIssue] = []
    for row in rows:
        rating = row.rating
        folded: dict[str, str] = {}  # each column folded once, whatever the number of rules
        for rule in rules:
            if rating not in rule.ratings:
                continue
            raw = getattr(row, rule.column) or ""
            if rule.match == "same-as-last-year":
                last = previous_keys.get((row.project, row.department))
                if not last:
                    continue
            text = folded.get(rule.column)
            if text is None:
                text = folded[rule.column] = fold_text(raw)
            value: str | None = None
            if rule.match == "any":
                m = rule.regex.search(text) if rule.regex is not None else None
                if m:
                    value = _snippet(text, m.start(), m.end())
            elif rule.match == "whole":
                key = _SPACES.sub("", text).rstrip("。.")
                if key in rule.whole or (rule.regex is not None and rule.regex.fullmatch(key)):
                    value = raw.strip() or "空欄"
            elif _SPACES.sub("", text) == last:
                value = raw
            if value is None:
                continue
            issue = make_issue(
                rule.code,
                file=row.file,
                sheet=row.sheet,
                cell=_cell_of(row, rule.column, letters),
                column=TEXT_COLUMNS[rule.column],
                value=value,
                row=row.row or None,
                rating=rating,
            )
            issues.append(TextIssue(**_fields(issue), project=row.project, department=row.department))
    return issues


def _cell_of(row: Evaluation, column: str, letters: Mapping[str, str] | None) -> str:
    """The text's cell: where the reader found it (any layout), else `letters` and the row."""
    own = row.text_cells[0 if column == "result" else 1] if row.text_cells else ""
    if own:
        return own
    letter = letters.get(column, "") if letters else ""
    return f"{letter}{row.row}" if letter and row.row else ""


def _fields(issue: Issue) -> dict[str, Any]:
    return {f.name: getattr(issue, f.name) for f in dataclasses.fields(Issue)}


# --- acknowledgements -----------------------------------------------------------------------


@dataclass(frozen=True)
class Acknowledgement:
    """A warning staff have checked and accepted: for one year, 事業, 担当課 and code."""

    year: str
    project: str  # project key: "5", "31-34"
    department: str
    code: str
    who: str
    why: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.year, self.project, department_key(self.department), self.code)


def load_acknowledgements(
    schemas_dir: Path | None = None, catalog: Catalog | None = None, codes: Iterable[str] = ACKNOWLEDGEABLE
) -> list[Acknowledgement]:
    """Load and check `acknowledged.yaml`. With `catalog`, the entries of its year must name one of
    its assignments (a 担当課 may be written as its office's name). A malformed entry raises
    CatalogError naming the entry."""
    path = Path(schemas_dir or SCHEMAS_DIR) / ACKS_FILE
    if not path.exists():
        return []  # nothing acknowledged yet
    return parse_acknowledgements(_read(path, ""), path, catalog, codes)


def parse_acknowledgements(
    data: Any, path: Path, catalog: Catalog | None = None, codes: Iterable[str] = ACKNOWLEDGEABLE
) -> list[Acknowledgement]:
    allowed = tuple(codes)
    if data is None:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("acknowledged") or [], list):
        raise CatalogError(path, "acknowledged", "'acknowledged:' に確認済みの警告のリストを書いてください(なければ acknowledged: [])。")
    acks = []
    for i, raw in enumerate(data.get("acknowledged") or []):
        entry = f"acknowledged[{i}]"
        if not isinstance(raw, dict):
            raise CatalogError(path, entry, "year・project・department・code・who・why の項目を書いてください。")
        entry = f"acknowledged[{i}] 事業No.{raw.get('project')} {raw.get('department')}"
        unknown = [str(k) for k in raw if k not in ACK_KEYS]
        if unknown:
            raise CatalogError(path, entry, f"不明な項目 {', '.join(unknown)} があります。使える項目: {', '.join(ACK_KEYS)}。")
        missing = [k for k in ACK_KEYS if not str(raw.get(k) if raw.get(k) is not None else "").strip()]
        if missing:
            raise CatalogError(path, entry, f"{', '.join(missing)} がありません。6項目(year・project・department・code・who・why)すべてを書いてください。")
        year = str(raw["year"]).strip().upper()
        if reiwa_year(year) is None:
            raise CatalogError(path, entry, f"year「{raw['year']}」は R6 のように書いてください。")
        project = parse_project(raw["project"])
        if project is None:
            raise CatalogError(path, entry, f"project「{raw['project']}」は事業No.(5 や 31～34)にしてください。")
        code = str(raw["code"]).strip()
        if code not in allowed:
            raise CatalogError(
                path, entry, f"code「{code}」は確認済みにできません。使えるコード: {', '.join(allowed)}(エラーは確認済みにできません)。"
            )
        department = str(raw["department"]).strip()
        if catalog is not None and year == catalog.year:
            department = _assignment_named(catalog, project, department, path, entry)
        acks.append(
            Acknowledgement(year, project, department, code, str(raw["who"]).strip(), str(raw["why"]).strip())
        )
    return acks


def _assignment_named(catalog: Catalog, project: str, department: str, path: Path, entry: str) -> str:
    """The catalog's 担当課 text for an acknowledgement's department (its own text, or its office)."""
    if project not in catalog.projects:
        raise CatalogError(path, entry, f"事業No.{project.replace('-', '～')} は {catalog.year} の計画にありません。")
    assignment, _ = catalog.match_assignment(project, department)
    if assignment is None:
        names = "、".join(a.department for a in catalog.assignments_of(project))
        raise CatalogError(
            path, entry, f"担当課「{department}」は事業No.{catalog.projects[project].label} の担当ではありません(担当課: {names})。"
        )
    return assignment.department


def apply_acknowledgements(
    issues: Iterable[Issue], acks: Iterable[Acknowledgement], year: str
) -> tuple[list[Issue], list[Issue]]:
    """Split issues into (open, acknowledged): an issue is acknowledged when an entry of `year`
    names its code, 事業 and 担当課. Issues that do not name an evaluation stay open."""
    keys = {a.key for a in acks if a.year == year.upper()}
    open_: list[Issue] = []
    done: list[Issue] = []
    for issue in issues:
        project = getattr(issue, "project", "")
        department = getattr(issue, "department", "")
        if project and (year.upper(), project, department_key(department), issue.code) in keys:
            done.append(issue)
        else:
            open_.append(issue)
    return open_, done


def review_texts(
    outcome: Outcome,
    rules: Iterable[TextRule],
    acks: Iterable[Acknowledgement],
    year: str,
    previous: Mapping[tuple[str, str], str] | None = None,
) -> Outcome:
    """The text checks over the merge's chosen rows, wired into an Outcome (pure).

    Open warnings become notes on their files (warnings only: no row is excluded, the exit code is
    unchanged); the ones acknowledged for `year` go to `Outcome.acknowledged`, with who and why.
    `previous` maps (事業, 担当課) to last year's 事業実績・評価理由."""
    acks = [a for a in acks if a.year == year.upper()]
    found = check_texts(rules, outcome.rows, previous)
    open_, done = apply_acknowledgements(found, acks, year)
    by_key = {a.key: a for a in acks}
    acknowledged = []
    for issue in done:
        project, department = getattr(issue, "project", ""), getattr(issue, "department", "")
        ack = by_key[(year.upper(), project, department_key(department), issue.code)]
        acknowledged.append(Acknowledged(issue, project, department, ack.who, ack.why))
    return dataclasses.replace(
        outcome, notes=(*outcome.notes, *open_), acknowledged=(*outcome.acknowledged, *acknowledged)
    )


# --- documentation ---------------------------------------------------------------------------


def rules_markdown(rules: Iterable[TextRule]) -> str:
    """The rule table for the documentation, generated from the rules (a test keeps them in step)."""
    lines = [
        "| code | ratings | column | match | words / patterns | what it looks for |",
        "|---|---|---|---|---|---|",
    ]
    for r in rules:
        found = [f"「{w}」" if w else "空欄" for w in r.words] + [f"`{p}`" for p in r.patterns]
        shown = "、".join(found).replace("|", "\\|") or NO_VALUE
        ratings = "・".join(sorted(r.ratings))
        lines.append(
            f"| `{r.code}` | {ratings} | {TEXT_COLUMNS[r.column]} | {r.match} | {shown} | {r.explanation} |"
        )
    return "\n".join(lines)
