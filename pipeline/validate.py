"""Validate returned workbooks: find the data, normalise it, run the pandera schema and the
plan-aware checks, and turn every problem into an Issue at a cell address. The result is one
immutable `FileVerdict` per file.

The same function serves `validate` and the nightly `merge`. Work is batched: each file is read
and normalised on its own, in one of two contained readers side by side
(pipeline.reader.contained.read_return: the gate, calamine and the candidate rows, with no
catalog), then the rows of many files go through the pandera
schema in one lazy pass (a schema call per file would cost more than reading the file;
SCHEMA_BATCH_ROWS at a time, so that memory holds one batch of rows), then the plan checks run
row by row. Who sent a file (its office) and which year it reports are decided here too, because
they decide which rows a file may change.

Containment: whatever goes wrong inside the checks of one file (a bug, a value no one foresaw)
becomes `internal-error` on that file; the other files are validated as if it were not there.

One module, though long: the office, the year, the schema pass and the plan checks decide one
verdict together (each depends on the others' findings); reading the bytes is pipeline.reader's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plan_schemas.columns import DEPARTMENT, MEASURE, OUTLOOK, PROJECT, RATING, RESULT

from pipeline import ingest, layout
from pipeline.cache import ResultCache
from pipeline.catalog import Assignment, Catalog
from pipeline.celltext import utf16_len
from pipeline.ingest import Source
from pipeline.limits import Limits
from pipeline.marks import PART_SEP
from pipeline.merge import EVIDENCE_JA, USABLE, evidence, order_key
from pipeline.normalize import (
    fiscal_years,
    nfc,
    parse_measure,
    same_name,
)
from pipeline.reader import contained, sandbox
from pipeline.reader.rows import CONTENT, NAME, Candidate, Parsed, Table, warn_normalised
from pipeline.reader.scanning import GateResult
from pipeline.report import (
    VERIFIED_SOURCES,
    Evaluation,
    ExcludedRow,
    FileVerdict,
    Issue,
    Provenance,
    ValidationReport,
    internal_error,
    make_issue,
)
from pipeline.times import moment, shown_moment

# The schema runs as one lazy pandera pass over the rows of many files at once (a pass per file
# would cost more than reading it), this many rows at a time: then the files' checks finish and
# their rows are dropped, so memory holds one batch of rows, not the night's.
SCHEMA_BATCH_ROWS = 20_000


# --- Reading the layout -----------------------------------------------------------------------


# --- Reading one workbook into candidate rows -------------------------------------------------


# Cells that read as blank but are not blank in Excel: the reader reports them with their own code.
_NOT_BLANK_CODES = frozenset({"cell-error-value", "cell-formula-no-cache", "cell-dde"})


def _shown_not_blank(c: Candidate) -> set[str]:
    return {i.cell for i in c.issues if i.code in _NOT_BLANK_CODES}


def _uncalculated(checked: GateResult, candidates: list[Candidate], name: str, issues: list[Issue]) -> None:
    """Formulas saved by a tool that does not calculate (or asked Excel to recalculate on open):
    their cached results may be stale or 0, so say so once for the file."""
    first = next((i for c in candidates for i in c.issues if i.code == "cell-formula"), None)
    app = checked.application
    excel = app.startswith("Microsoft Excel") and "openpyxl" not in app.lower()
    if first is None or (excel and not checked.calc_on_load):
        return
    issues.append(
        make_issue("cell-uncalculated", file=name, sheet=first.sheet, cell=first.cell,
                   value=app or "不明なソフト", row=first.row)
    )


# --- Who sent it, and which year ----------------------------------------------------------------


@dataclass(frozen=True)
class Hints:
    """What a file's provenance says before its content is read: the office of its sender address
    and the office and years its name carries. Part of the cache key, since they change what the
    same bytes mean (a row of another office is an error in a file known to come from one office)."""

    sender_office: str = ""
    name_office: str = ""
    name_years: tuple[str, ...] = ()
    name_where: str = ""  # the name the years were found in

    @property
    def key(self) -> str:
        return f"{self.sender_office}|{self.name_office}|{','.join(self.name_years)}"


def _name_pieces(name: str) -> tuple[list[str], list[str]]:
    """File names innermost first (attachment, then the message or zip) and folder names innermost
    first, from a name such as '健康課/5月/mail.eml ＞ R6_….xlsx'."""
    segments = name.split(PART_SEP)
    files = [seg.rsplit("/", 1)[-1] for seg in reversed(segments)]
    folders = [f for f in reversed(segments[0].split("/")[:-1]) if f]
    return files, folders


def hints_for(catalog: Catalog, name: str, sender: str = "") -> Hints:
    files, folders = _name_pieces(nfc(name))  # a Mac writes names decomposed (NFD)
    office = next((o for o in map(catalog.office_in_name, files + folders) if o), None) or ""
    years: tuple[str, ...] = ()
    where = ""
    for f in files:
        found = fiscal_years(f, codes=True)
        if found:
            years, where = tuple(found), f
            break
    sender_office = catalog.senders.get(sender.lower(), "") if sender else ""
    return Hints(sender_office, office, years, where)


def _office_from(template_office: str, hints: Hints) -> tuple[str, str]:
    """The office and how it is known: the template's metadata, the sender, the name (in that order)."""
    if template_office:
        return template_office, "template"
    if hints.sender_office:
        return hints.sender_office, "sender"
    if hints.name_office:
        return hints.name_office, "file-name"
    return "", "none"


def _year_label(code: str) -> str:
    return f"令和{code[1:]}年度" if code != "R1" else "令和元年度"


def _year_decision(places: list[tuple[list[str], str]], hints: Hints, name: str, year: str) -> Issue | None:
    if not places and hints.name_years:
        places = [(list(hints.name_years), f"ファイル名「{hints.name_where}」")]
    if not places:
        return None
    years, where = places[0]
    if year in years:
        return None
    return make_issue("year-mismatch", file=name, value=years[0], found=_year_label(years[0]), where=where,
                      expected=f"{_year_label(year)}({year})")


# --- Checks -----------------------------------------------------------------------------------


def _schema_issues(catalog: Catalog, candidates: list[Candidate]) -> list[tuple[Candidate, Issue]]:
    """One lazy pandera pass over every row of the batch; returns each failure as an issue on its row."""
    if not candidates:
        return []
    import pandas as pd
    import pandera.errors
    from plan_schemas.evaluation import evaluation_schema

    columns = (MEASURE, PROJECT, DEPARTMENT, RESULT, RATING, OUTLOOK)
    frame = pd.DataFrame({col: [c.value.get(col) for c in candidates] for col in columns})
    out: list[tuple[Candidate, Issue]] = []
    try:
        evaluation_schema(catalog.projects).validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        failures = exc.failure_cases
        for col, check, index in zip(failures["column"], failures["check"], failures["index"], strict=True):
            if index is None or pd.isna(index):
                continue
            c = candidates[int(index)]
            code = "required-missing" if check == "not_nullable" else str(check)
            if code == "required-missing" and col == PROJECT and c.raw[PROJECT].strip():
                continue
            if code == "required-missing" and c.cells.get(col, "") in _shown_not_blank(c):
                continue  # #REF!, an uncached formula: reported as such, not as a blank cell
            extra: dict[str, Any] = {}
            if code == "text-too-long":
                extra["length"] = utf16_len(c.value.get(col) or "")  # as Excel counts
            if code == "project-unknown":
                group = catalog.group_containing(c.value.get(PROJECT))
                if group is not None:
                    extra["hint"] = f"事業No.{group.label} はまとめて1行で報告します(事業No. は「{group.label}」)。"
            out.append((c, make_issue(code, sheet=c.sheet, cell=c.cells.get(col, ""), column=col,
                                      value=c.raw.get(col, ""), row=c.row, **extra)))
    return out


def _plan_issues(
    catalog: Catalog, c: Candidate, office: str | None, seen: dict[tuple[str, str], tuple[str, int]]
) -> Assignment | None:
    """Measure, assignment, office and duplicate checks. Returns the row's assignment when known.

    `office` is the verified office of the file: a row for another office's assignment is
    office-mismatch, and a small misspelling of the office's own name is read as the office."""
    project_key = c.value.get(PROJECT)
    project = catalog.projects.get(project_key or "")
    if project is None:
        return None
    measure = c.value.get(MEASURE)
    if measure and parse_measure(measure) and measure != project.measure_code:
        c.issues.append(
            make_issue("measure-mismatch", sheet=c.sheet, cell=c.cells[MEASURE], column=MEASURE,
                       value=c.raw[MEASURE], row=c.row, project=project.label, expected=project.measure_code)
        )
    text = c.value.get(DEPARTMENT)
    if not text:
        return None
    assignment, how = catalog.match_assignment(project.key, text)
    cell = c.cells[DEPARTMENT]
    if assignment is None and how == "unknown" and office:
        assignment = catalog.misspelt_assignment(project.key, text, office)
    if assignment is None:
        assigned = "、".join(a.department for a in catalog.assignments_of(project.key))
        if how == "unknown":
            near = "、".join(catalog.suggest_departments(text))
            hint = f"近い名前: {near}。" if near else "課の正式名称で記入してください。"
            c.issues.append(make_issue("department-unknown", sheet=c.sheet, cell=cell, column=DEPARTMENT,
                                       value=text, row=c.row, hint=hint))
        else:
            c.issues.append(make_issue("assignment-unknown", sheet=c.sheet, cell=cell, column=DEPARTMENT,
                                       value=text, row=c.row, project=project.label,
                                       hint=f"この事業の担当課は {assigned} です。"))
        return None
    # Also for an exact match after trimming: surrounding (full-width) spaces are a change too,
    # and warn_normalised only warns when the text as written differs.
    if not c.restored:  # a restored 担当課 is reported as catalog-cell-changed instead
        warn_normalised(c, DEPARTMENT, c.raw[DEPARTMENT], assignment.department)
    if office and assignment.office != office:
        c.issues.append(make_issue("office-mismatch", sheet=c.sheet, cell=cell, column=DEPARTMENT,
                                   value=assignment.department, row=c.row, office=office))
    key = assignment.key
    if key in seen:
        c.issues.append(make_issue("duplicate-row", sheet=c.sheet, cell=cell, column=DEPARTMENT,
                                   value=assignment.department, row=c.row, project=project.label,
                                   first=_place_of(seen[key], c.sheet)))
    else:
        seen[key] = (c.sheet, c.row)
    return assignment


def _place_of(first: tuple[str, int], sheet: str) -> str:
    """Where a row first stood, as a message names it: its row, and its sheet when another."""
    return f"{first[1]} 行目" if first[0] == sheet else f"シート「{first[0]}」の {first[1]} 行目"


def _diff(expected: str, found: str) -> str:
    """Where a pre-filled text was changed: the whole values when short, else the changed part
    with a little context, so the change can be found in a 300-character 内容."""
    if len(expected) <= 30 and len(found) <= 30:
        return f"元の値「{expected}」、今の値「{found}」"
    p = 0
    while p < min(len(expected), len(found)) and expected[p] == found[p]:
        p += 1
    q = 0
    while q < min(len(expected), len(found)) - p and expected[-1 - q] == found[-1 - q]:
        q += 1
    before = expected[max(0, p - 10) : p]
    after = expected[len(expected) - q :][:10]
    lead = "…" if p > 10 else ""
    tail = "…" if q > 10 else ""
    def part(text: str) -> str:
        return (text[:40] + "…" if len(text) > 40 else text) or "(なし)"

    old, new = part(expected[p : len(expected) - q]), part(found[p : len(found) - q])
    return f"{p + 1} 文字目から変更: 元「{lead}{before}【{old}】{after}{tail}」→ 今「{lead}{before}【{new}】{after}{tail}」"


_PREFILLED = (MEASURE, PROJECT, NAME, CONTENT, DEPARTMENT)


def _prefilled_issues(catalog: Catalog, c: Candidate, assignment: Assignment) -> None:
    """Our template's printed cells A–E of a row, compared with the plan for the row's assignment
    (matched by 事業No. and 担当課, wherever the row now stands)."""
    project = catalog.projects[assignment.project]
    expected = (project.measure_code, project.label, project.name, project.content, assignment.department)
    for col, want in zip(_PREFILLED, expected, strict=True):
        got = c.raw.get(col, "")
        if col in c.cells and got != want:
            c.issues.append(
                make_issue("catalog-cell-changed", sheet=c.sheet, cell=c.cells[col], column=col, value=got,
                           row=c.row, expected=want, diff=_diff(want, got))
            )


def _restore_overwritten_departments(catalog: Catalog, office: str, candidates: list[Candidate]) -> None:
    """In our template 担当課 is a printed, locked cell. A row whose 担当課 was overwritten no longer
    names one of the office's assignments; when exactly one of them with the row's 事業No. has no
    row, the row is that assignment (its changed 担当課 is then catalog-cell-changed), not a
    stranger's row plus a missing one."""
    mine = catalog.assignments_for_office(office)
    keys = {a.key for a in mine}
    placed: set[tuple[str, str]] = set()
    strays: list[Candidate] = []
    for c in candidates:
        project, text = c.value.get(PROJECT), c.value.get(DEPARTMENT)
        if c.sheet != layout.TEMPLATE_SHEET or project not in catalog.projects or not text:
            continue
        found, _ = catalog.match_assignment(project, text)
        if found is not None and found.key in keys:
            placed.add(found.key)
        else:
            strays.append(c)
    for c in strays:
        free = [a for a in mine if a.project == c.value.get(PROJECT) and a.key not in placed]
        if len(free) == 1:
            c.value[DEPARTMENT] = free[0].department
            c.restored = True
            placed.add(free[0].key)


def _template_order(catalog: Catalog, office: str, placed: list[tuple[tuple[str, str], int]],
                    sheet: str) -> list[Issue]:
    """row-missing for each of the office's assignments with no row, and at most one row-moved when
    the rows were reordered, or shifted by an inserted row."""
    expected = [a for a in catalog.assignments_for_office(office)]
    present = {key: row for key, row in placed}
    issues = [
        make_issue("row-missing", sheet=sheet, value=a.department, project=catalog.projects[a.project].label)
        for a in expected
        if a.key not in present
    ]
    keys = {a.key for a in expected}
    order = [key for key, _ in placed if key in keys]
    reordered = order != [a.key for a in expected if a.key in present]
    shifted = any(present.get(a.key, i + layout.FIRST_DATA_ROW) != i + layout.FIRST_DATA_ROW
                  for i, a in enumerate(expected))
    if reordered or (shifted and not issues):
        detail = "行の順番が入れ替わっています" if reordered else "行が挿入されています"
        first = next((row for key, row in placed), layout.FIRST_DATA_ROW)
        issues.append(make_issue("row-moved", sheet=sheet, cell=f"A{first}", detail=detail, row=first))
    return issues


def _template_issues(catalog: Catalog, meta: dict[str, str], name: str, year: str) -> tuple[str, list[Issue]]:
    """Year, office and catalog version of our template. Returns the office ("" when unknown)."""
    office = meta.get("office", "")
    expected = f"{_year_label(year)}({year})・計画版 {catalog.version} のテンプレート"
    if meta.get("fiscal_year", "").upper() != year:
        found = f"年度 {meta.get('fiscal_year')}"
    elif meta.get("catalog_version") != catalog.version:
        found = f"計画版 {meta.get('catalog_version')}"
    elif office not in catalog.offices or not catalog.assignments_for_office(office):
        issue = make_issue("template-mismatch", file=name, sheet=layout.META_SHEET,
                           found=f"担当課「{office}」", expected="登録された担当課のテンプレート")
        return "", [issue]
    else:
        return office, []
    issue = make_issue("template-mismatch", file=name, sheet=layout.META_SHEET, found=found, expected=expected)
    return (office if office in catalog.offices else ""), [issue]


# --- One file: read, then finish after the batch's schema pass -----------------------------------


@dataclass(frozen=True)
class Content:
    """What a workbook's bytes decided, given its hints: everything of a verdict but provenance.
    This is what the validation cache keeps between nights."""

    kind: str = ""
    office: str = ""
    office_source: str = "none"
    offices: frozenset[str] = frozenset()
    issues: tuple[Issue, ...] = ()
    rows: tuple[Evaluation, ...] = ()
    excluded: tuple[ExcludedRow, ...] = ()
    absent: tuple[tuple[str, str], ...] = ()  # the office's assignments a template return has no row for
    saved: str = ""
    ignore: str = ""  # why it is not read (one of our own outputs)


@dataclass
class _Draft:
    """A file under validation (mutable while it is checked; frozen into Content by _finish)."""

    source: Provenance
    notes: list[Issue]  # warnings about the envelope it came in
    hints: Hints
    issues: list[Issue] = field(default_factory=list)
    kind: str = ""
    office: str = ""
    office_source: str = "none"
    saved: str = ""
    ignore: str = ""
    candidates: list[Candidate] = field(default_factory=list)
    failed: Issue | None = None


@dataclass(frozen=True)
class _Options:
    """How a caller other than the nightly merge reads (see validate_sources)."""

    year: str  # the fiscal year the files must name
    read_own_outputs: bool = False

    def key(self, catalog: Catalog) -> str:
        """Added to the cache key when not the defaults, so the same bytes read otherwise never share an entry."""
        return "" if (self.year, self.read_own_outputs) == (catalog.year, False) else f"|{self.year}|{self.read_own_outputs}"


def _apply(catalog: Catalog, d: _Draft, checked: GateResult, parsed: Parsed, options: _Options) -> None:
    """Decide what a read workbook is (own output, template, table), who sent it and which year
    it reports, and keep its rows for the checks. Raises what a fault of ours raised."""
    name = d.source.name
    d.issues.extend(checked.issues)
    d.issues.extend(parsed.issues)
    d.saved = checked.saved
    if parsed.failed is not None:
        d.failed = parsed.failed
        return
    template_office = ""
    if parsed.read:
        own = None if options.read_own_outputs else parsed.own
        if own is not None:
            d.ignore = f"このツールが作成した{own}です"
            d.issues.append(make_issue("own-output", file=name, value=own,
                                       detail=f"作成 {checked.saved or '日時不明'}"))
            return
        if parsed.meta is not None:
            d.kind = "template"
            template_office, template = _template_issues(catalog, parsed.meta, name, options.year)
            d.issues.extend(template)
        else:
            d.kind = "table"
    d.office, d.office_source = _office_from(template_office, d.hints)
    if not parsed.read or _rejected(d.issues):
        return
    tables, chosen = _answer_tables(parsed, name, options.year)
    d.issues.extend(chosen)
    if _rejected(chosen):
        return
    if d.kind != "template":  # a template's year is its metadata's (template-mismatch)
        year = _year_decision([p for t in tables for p in t.years], d.hints, name, options.year)
        if year is not None:
            d.issues.append(year)
            return
    for t in tables:
        d.issues.extend(t.issues)
    d.candidates = [c for t in tables for c in t.candidates]
    if not d.candidates:  # no-rows rejects the file: only when no table read gave a row
        d.issues.extend(make_issue("no-rows", file=name, sheet=t.sheet) for t in tables if t.complete)
    projects = catalog.projects
    for c in d.candidates:  # the printed name and 内容 as the catalog holds them: one copy, not one a file
        p = projects.get(c.value.get(PROJECT) or "")
        if p is not None:
            if c.raw.get(NAME) == p.name:
                c.raw[NAME] = p.name
            if c.raw.get(CONTENT) == p.content:
                c.raw[CONTENT] = p.content
    _uncalculated(checked, d.candidates, name, d.issues)


def _answer_tables(parsed: Parsed, name: str, year: str) -> tuple[list[Table], list[Issue]]:
    """The tables a workbook's answers are read from, and what is said of the others.

    Our template: the sheet its metadata names, wherever it stands and whether hidden or not.
    Another workbook: every table when they are the parts of one (the published layout, one sheet
    per 基本目標: each names the same year, or none, and no row is in two of them); when they are
    copies of one another (two years, a draft and a final), the tables naming the run's year when
    exactly one year's are; else nothing is read (sheets-ambiguous). A table not read is
    extra-sheet, naming it, so a draft or last year's sheet is never read, nor ignored, silently."""
    tables = parsed.tables
    if not tables:
        return [], [make_issue("header-not-found", file=name)]
    if parsed.own is not None:  # ours, read on purpose: a master's 評価一覧 comes first, its goal sheets repeat it
        return (tables[:1] if _overlap(tables) else tables), []
    answer = (parsed.meta.get("answer_sheet") or layout.TEMPLATE_SHEET) if parsed.meta is not None else ""
    chosen = [t for t in tables if same_name(t.sheet, answer)]
    if not chosen:
        chosen = tables
        named = {t.sheet: _named_year(t) for t in tables}
        years = set(named.values()) - {""}
        if len(tables) > 1 and (len(years) > 1 or _overlap(tables)):
            chosen = [t for t in tables if named[t.sheet] == year]
            if len(years) > 1 and not chosen and "" not in named.values():
                chosen = tables  # every table another year's: the year check rejects the file
            elif not chosen or _overlap(chosen):
                sheets = "、".join(f"「{t.sheet}」" for t in tables)
                return [], [make_issue("sheets-ambiguous", file=name, value=sheets, sheets=sheets,
                                       year=_year_label(year))]
    issues = []
    for t in tables:
        if t in chosen:
            continue
        other = _named_year(t)
        note = f"(この表は{_year_label(other)}のものです)" if other and other != year else ""
        if answer:
            why, fix = f"配布したテンプレートの回答欄(シート「{answer}」)ではない", f"シート「{answer}」"
        elif other and other != year:
            why, fix = f"{_year_label(year)}の評価表ではない", f"{_year_label(year)}の表"
        else:
            why, fix = f"年度が書かれておらず、{_year_label(year)}の表と同じ事業の行がある", f"{_year_label(year)}の表"
        issues.append(make_issue("extra-sheet", file=name, sheet=t.sheet, value=t.sheet, why=why, year=note, fix=fix,
                                 state="(非表示)" if t.state != "visible" else ""))
    return chosen, issues


def _named_year(table: Table) -> str:
    """The fiscal year a table names (its header label, else its title), "" when none."""
    return table.years[0][0][0] if table.years else ""


def _overlap(tables: list[Table]) -> bool:
    """Do two tables hold a row for the same (事業No., 担当課)? Then they are copies, not parts."""
    seen: dict[tuple[str, str], str] = {}
    for t in tables:
        for c in t.candidates:
            key = (str(c.value.get(PROJECT) or ""), str(c.value.get(DEPARTMENT) or ""))
            if seen.setdefault(key, t.sheet) != t.sheet:
                return True
    return False


def _read_outcome(catalog: Catalog, d: _Draft, parts: list[Any], outcome: Any, options: _Options) -> None:
    """A contained read's outcome (read_return's result, or how its process failed) applied to
    its draft."""
    checked = parts[0] if parts else GateResult(kind="")
    if isinstance(outcome, Parsed):
        _apply(catalog, d, checked, outcome, options)
        return
    if isinstance(outcome, sandbox.SandboxError):
        # a dead, stuck or exhausted reader is reported apart from a damaged file
        issue = contained.reader_crashed(d.source.name, outcome)
    elif isinstance(outcome, Exception) and parts:
        # after the gate: a fault of ours while reading the rows (the parser's own is `Parsed.issues`)
        raise outcome
    else:
        issue = internal_error(d.source.name, outcome)
    _apply(catalog, d, checked, Parsed(issues=[issue]), options)


def _rejected(issues: Iterable[Issue]) -> bool:
    return any(i.is_error and i.is_file_level for i in issues)


def _finish(catalog: Catalog, d: _Draft) -> Content:
    name = d.source.name
    if d.failed is not None:
        return Content(d.kind, d.office, d.office_source, issues=(*d.issues, d.failed), saved=d.saved)
    if d.ignore or _rejected(d.issues):
        return Content(d.kind, d.office, d.office_source, issues=tuple(d.issues), saved=d.saved, ignore=d.ignore)
    verified = d.office if d.office_source in VERIFIED_SOURCES else None
    issues = list(d.issues)
    rows: list[Evaluation] = []
    excluded: list[ExcludedRow] = []
    offices: set[str] = set()
    placed: list[tuple[tuple[str, str], int]] = []
    seen: dict[tuple[str, str], tuple[str, int]] = {}
    template = d.kind == "template"
    if template and verified:
        _restore_overwritten_departments(catalog, verified, d.candidates)
    for c in d.candidates:
        assignment = _plan_issues(catalog, c, verified, seen)
        if assignment is not None:
            offices.add(assignment.office)
            placed.append((assignment.key, c.row))
            if template and c.sheet == layout.TEMPLATE_SHEET:
                _prefilled_issues(catalog, c, assignment)
        issues.extend(dataclasses.replace(i, file=name) for i in c.issues)
        if any(i.is_error for i in c.issues):
            if assignment is not None:
                excluded.append(ExcludedRow(c.sheet, c.row, *assignment.key))
            continue
        assert assignment is not None  # a row without errors has a known assignment
        rows.append(Evaluation(assignment.project, assignment.department, c.value[RESULT] or "",
                               c.value[RATING] or "", c.value[OUTLOOK] or "", name, c.sheet, c.row,
                               d.source.received, (c.cells.get(RESULT, ""), c.cells.get(OUTLOOK, ""))))
    office, source = d.office, d.office_source
    absent: tuple[tuple[str, str], ...] = ()
    if template and verified:
        issues.extend(dataclasses.replace(i, file=name)
                      for i in _template_order(catalog, verified, placed, layout.TEMPLATE_SHEET))
        have = {key for key, _ in placed}
        absent = tuple(a.key for a in catalog.assignments_for_office(verified) if a.key not in have)
    if verified and not rows:
        issues.extend(_renamed_department(catalog, verified, name, d.candidates))
    if source not in VERIFIED_SOURCES:
        if len(offices) == 1:
            office, source = next(iter(offices)), "rows"
        if offices:
            issues.append(make_issue("office-unverified", file=name))
    return Content(kind=d.kind, office=office, office_source=source, offices=frozenset(offices | ({office} - {""})),
                   issues=tuple(issues), rows=tuple(rows), excluded=tuple(excluded), absent=absent,
                   saved=d.saved)


def _renamed_department(catalog: Catalog, office: str, name: str, candidates: list[Candidate]) -> list[Issue]:
    """Every row of a file of a known office names one 担当課 the registry does not know: most
    likely the office's new name after a reorganisation, which an alias fixes. One hint, with the
    line of schemas/departments.yaml to write."""
    unknown = [i for c in candidates for i in c.issues if i.code == "department-unknown"]
    texts = {i.value for i in unknown}
    if not unknown or len(unknown) != len(candidates) or len(texts) != 1:
        return []
    [text] = texts
    aliases = ", ".join((*catalog.offices[office].aliases, text))
    return [make_issue("department-alias-missing", file=name, value=text, office=office,
                       line=f"aliases: [{aliases}]")]


def _sender_issues(catalog: Catalog, source: Provenance, office: str) -> list[Issue]:
    """E-mailed returns: is the sender one of the offices' known addresses, and the right one?"""
    if not source.sender or not catalog.senders:
        return []  # no e-mail, or no addresses registered: nothing to compare with
    sender_office = catalog.senders.get(source.sender.lower())
    if sender_office is None:
        return [make_issue("sender-unknown", file=source.name, value=source.sender)]
    if office and sender_office != office:
        return [make_issue("sender-office-mismatch", file=source.name, value=source.sender,
                           sender_office=sender_office, office=office)]
    return []


def _verdict(catalog: Catalog, d: _Draft, content: Content, from_cache: bool) -> FileVerdict:
    prov = d.source
    name, received = prov.name, prov.received
    rows = tuple(r if (r.file, r.received) == (name, received) else dataclasses.replace(r, file=name, received=received)
                 for r in content.rows)
    issues = [
        *d.notes,
        *(i if i.file == name else dataclasses.replace(i, file=name) for i in content.issues),
        *_sender_issues(catalog, prov, content.office),
    ]
    fields: dict[str, Any] = {"kind": content.kind, "office": content.office, "office_source": content.office_source,
                              "saved": content.saved, "from_cache": from_cache}
    if content.ignore:
        return FileVerdict.ignored(prov, content.ignore, issues, **fields)
    return FileVerdict.judged(prov, issues, rows, offices=content.offices, excluded=content.excluded,
                              absent=content.absent, **fields)


def _dated(verdicts: list[FileVerdict], now: datetime) -> list[FileVerdict]:
    """Each file's ordering evidence against the run's clock: a saved time or an e-mail Date more
    than a day ahead is not believed (time-in-future) and the next evidence orders the file."""
    out = []
    for v in verdicts:
        if v.status == "ignored":
            out.append(v)
            continue
        believed, future = evidence(v, now)
        source = believed[0][0] if believed else "name"
        issues = [make_issue("time-in-future", file=v.name, value=shown_moment(when), what=EVIDENCE_JA[what],
                             fallback=EVIDENCE_JA[source])
                  for what, iso in future if (when := moment(iso)) is not None]
        out.append(dataclasses.replace(v, order_source=source, order_times=believed, issues=(*v.issues, *issues)))
    return out


def _absent_rows(catalog: Catalog, verdicts: list[FileVerdict]) -> list[FileVerdict]:
    """A template return without a row for one of its office's assignments: row-missing when no
    earlier file holds a valid row for it; otherwise a partial correction, and the assignment keeps
    the earlier file's value (row-from-earlier names that file)."""
    usable = [(order_key(v), v) for v in verdicts if v.status in USABLE]
    out = []
    for v in verdicts:
        if not v.absent or v.status not in USABLE:
            out.append(v)
            continue
        rank = order_key(v)
        missing = iter(v.absent)
        issues = []
        for i in v.issues:
            if i.code != "row-missing":
                issues.append(i)
                continue
            key = next(missing)
            earlier = max(((k, e) for k, e in usable if k < rank and any(r.key == key for r in e.rows)),
                          key=lambda pair: pair[0], default=None)
            if earlier is None:
                issues.append(i)
            else:
                issues.append(make_issue("row-from-earlier", file=v.name, sheet=i.sheet, value=key[1],
                                         project=catalog.projects[key[0]].label, older=earlier[1].name))
        out.append(v.with_issues(issues))
    return out


# What a file that is not a workbook, a mail or a zip most likely is, by its suffix: said in the
# file-not-workbook message so the office knows what it sent (its bytes are never opened).
_NOT_WORKBOOK_KINDS = {
    ".csv": "CSV ファイル", ".tsv": "テキストファイル", ".txt": "テキストファイル", ".pdf": "PDF ファイル",
    ".jpg": "画像(写真)", ".jpeg": "画像(写真)", ".png": "画像", ".heic": "画像(写真)", ".gif": "画像",
    ".bmp": "画像", ".tif": "画像", ".tiff": "画像", ".numbers": "Numbers の書類(.numbers)",
    ".doc": "Word 文書", ".docx": "Word 文書", ".rtf": "RTF 文書", ".ppt": "PowerPoint 文書",
    ".pptx": "PowerPoint 文書", ".odt": "文書(.odt)", ".jtd": "一太郎の文書", ".html": "HTML ファイル",
    ".htm": "HTML ファイル", ".xml": "XML ファイル", ".7z": "7z 圧縮ファイル", ".lzh": "LZH 圧縮ファイル",
    ".rar": "RAR 圧縮ファイル",
}


def _attributed(catalog: Catalog, verdict: FileVerdict) -> FileVerdict:
    """A file not read (rejected before parsing, unreadable, an e-mail without a workbook, a file
    of another type) still counts for its office when its sender, its name or the name of what it
    held tells which one it is: a return that cannot be read is still that office's return."""
    if verdict.office or (verdict.status == "ignored" and verdict.reason != ingest.REASON_NOT_RETURN):
        return verdict
    office, source = _office_from("", hints_for(catalog, verdict.name, verdict.sender))
    if not office and verdict.source.members:
        inner = {o for m in verdict.source.members if (o := hints_for(catalog, f"{verdict.name}{PART_SEP}{m}").name_office)}
        office, source = (next(iter(inner)), "file-name") if len(inner) == 1 else ("", "none")
    if not office:
        return verdict
    issues = verdict.issues
    if verdict.status == "ignored":  # not a workbook, a mail or a zip, but named for an office
        suffix = Path(verdict.name.rsplit(PART_SEP, 1)[-1]).suffix.lower()
        kind = _NOT_WORKBOOK_KINDS.get(suffix, f"「{suffix}」ファイル" if suffix else "拡張子のないファイル")
        verdict = FileVerdict.judged(verdict.source, [make_issue("file-not-workbook", file=verdict.name, detail=kind)])
        issues = verdict.issues
    extra = _sender_issues(catalog, verdict.source, office)
    return dataclasses.replace(verdict, office=office, office_source=source, offices=frozenset({office}),
                               issues=(*issues, *extra))


# --- The entry points -------------------------------------------------------------------------


def validate_sources(
    catalog: Catalog,
    items: Iterable[Source | FileVerdict],
    limits: Limits,
    cache: ResultCache | None = None,
    *,
    fiscal_year: str | None = None,
    read_own_outputs: bool = False,
    now: datetime | None = None,
    notes: list[Issue] | None = None,
) -> list[FileVerdict]:
    """One verdict per item, in order; verdicts passed in (ignored, unreadable) are kept.

    With a cache, a workbook whose bytes were validated before (same hints, catalog, limits and
    code) takes its content from there instead of being read again.

    `fiscal_year` is the year the files must name (default: the catalog's): a workbook naming another
    is year-mismatch. `import-published` reads last year's table against this year's catalog with
    `fiscal_year="R5"`. `read_own_outputs` reads a workbook this tool wrote (a 公表用ブック, say)
    instead of ignoring it as own-output. `now` is the run's clock (default: the time now): a
    saved time or e-mail Date more than a day after it is not believed (time-in-future). `notes`, when given,
    receives the run's notes about the contained readers (memory-cap-unavailable).
    """
    options = _Options(fiscal_year or catalog.year, read_own_outputs)
    suffix = options.key(catalog)
    slots: list[FileVerdict | _Draft] = []
    drafts: list[_Draft] = []
    cached: dict[int, Content] = {}

    positions: dict[int, int] = {}

    def to_read() -> Iterator[tuple[_Draft, Source]]:
        """The sources to read, each with its draft. A draft keeps where its file came from, not
        its bytes: a Source is let go once read (streamed), and a feedback copy reads it again."""
        for item in items:
            if isinstance(item, FileVerdict):
                slots.append(_attributed(catalog, item))
                continue
            hints = hints_for(catalog, item.name, item.sender)
            d = _Draft(item.provenance, list(item.notes), hints)
            slots.append(d)
            entry = cache.get(f"{d.source.sha256}|{hints.key}{suffix}") if cache is not None else None
            if isinstance(entry, Content):
                cached[id(d)] = entry
                continue
            positions[id(d)] = len(drafts)
            drafts.append(d)
            yield d, item

    finished: dict[int, Content] = {}
    batch: list[_Draft] = []

    def check(batch: list[_Draft]) -> None:
        """The schema pass over a batch of files, then each file's checks: its content is final,
        and its candidate rows are dropped (streamed: memory holds one batch of them)."""
        live = [d for d in batch if d.candidates and d.failed is None]
        try:
            found = _schema_issues(catalog, [c for d in live for c in d.candidates])
        except Exception:  # contain it: run the pass file by file, and fail only the files that fail
            found = []
            for d in live:
                try:
                    found.extend(_schema_issues(catalog, d.candidates))
                except Exception as exc:
                    d.failed = internal_error(d.source.name, exc)
        for c, issue in found:
            c.issues.append(issue)
        for d in batch:
            try:
                content = _finish(catalog, d)
            except Exception as exc:
                d.failed = internal_error(d.source.name, exc)
                content = _finish(catalog, d)
            if cache is not None and d.failed is None:  # an internal error is not remembered
                cache.put(f"{d.source.sha256}|{d.hints.key}{suffix}", content)
            finished[id(d)] = content
            d.candidates = []

    rows = 0
    with contained.open_readers(limits) as pool:
        reads = pool.map(to_read(), lambda pair: (pair[1].data, pair[1].name, limits, read_own_outputs))
        for (d, _source), parts, outcome in reads:
            try:
                _read_outcome(catalog, d, parts, outcome, options)
            except Exception as exc:
                d.failed = internal_error(d.source.name, exc)
            for c in d.candidates:
                c.file = positions[id(d)]
            batch.append(d)
            rows += len(d.candidates)
            if rows >= SCHEMA_BATCH_ROWS:
                check(batch)
                batch, rows = [], 0
    if notes is not None:
        notes.extend(contained.reader_notes(pool, limits))
    check(batch)

    out: list[FileVerdict] = []
    for slot in slots:
        if isinstance(slot, FileVerdict):
            out.append(slot)
            continue
        content = cached.get(id(slot))
        from_cache = content is not None
        if content is None:
            content = finished[id(slot)]
        out.append(_verdict(catalog, slot, content, from_cache))
    return _absent_rows(catalog, _dated(out, now or datetime.now(UTC)))


def validate_paths(
    catalog: Catalog, paths: Iterable[Path], limits: Limits | None = None, exclude: Iterable[str] = ()
) -> ValidationReport:
    """Validate files and folders (recursively): the library behind `pipeline validate`.

    >>> report = validate_paths(load_catalog("R6"), [Path("inbox")])   # doctest: +SKIP
    >>> report.exit_code
    0
    """
    limits = limits or Limits()
    files = ingest.find_files(paths, exclude)
    return ValidationReport(tuple(validate_sources(catalog, ingest.open_inputs(files, limits), limits)))
