"""Validate returned workbooks: find the data, normalise it, run the pandera schema and the
plan-aware checks, and turn every problem into an Issue at a cell address. The result is one
immutable `FileVerdict` per file.

The same function serves `validate` and the nightly `merge`. Work is batched: each file is read
and normalised on its own, in one of two contained readers side by side (`read_contained`: the
gate, calamine and the rows, with no catalog), then the rows of many files go through the pandera
schema in one lazy pass (a schema call per file would cost more than reading the file;
SCHEMA_BATCH_ROWS at a time, so that memory holds one batch of rows), then the plan checks run
row by row. Who sent a file (its office) and which year it reports are decided here too, because
they decide which rows a file may change.

Containment: whatever goes wrong inside the checks of one file (a bug, a value no one foresaw)
becomes `internal-error` on that file; the other files are validated as if it were not there.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plan_schemas.columns import DEPARTMENT, MEASURE, OUTLOOK, PROJECT, RATING, REQUIRED, RESULT

from pipeline import ingest, layout
from pipeline.cache import ResultCache
from pipeline.catalog import Assignment, Catalog
from pipeline.celltext import utf16_len
from pipeline.ingest import RawSheet, Source
from pipeline.normalize import (
    as_text,
    clean_text,
    fiscal_years,
    fold,
    label_key,
    parse_measure,
    parse_project,
    parse_rating,
    squash,
)
from pipeline.reader import gate
from pipeline.reader.gate import col_letters as column_letter
from pipeline.report import (
    VERIFIED_SOURCES,
    Evaluation,
    ExcludedRow,
    FileVerdict,
    Issue,
    Provenance,
    ValidationReport,
    make_issue,
    moment,
)
from pipeline.settings import LimitSettings

NAME = "個別事業・取り組み"
CONTENT = "内容"
# The published column labels (and the other names people give them), by column.
LABELS: dict[str, tuple[str, ...]] = {
    MEASURE: ("施策No.", "施策番号"),
    PROJECT: ("事業No.", "事業番号"),
    NAME: ("個別事業・取り組み", "個別事業・取組", "事業名", "個別事業"),
    CONTENT: ("内容", "事業内容"),
    DEPARTMENT: ("担当課", "担当部署"),
    RESULT: ("事業実績・評価理由", "事業実績", "評価理由"),
    RATING: ("事業評価", "評価"),
    OUTLOOK: ("今後の事業計画・展望", "今後の事業計画", "今後の展望"),
}
_LABEL_KEYS = {label_key(alias): col for col, aliases in LABELS.items() for alias in aliases}
MAX_LABEL_LENGTH = 40  # the longest label with spaces, brackets and a year suffix is about 25
_label_key = functools.lru_cache(maxsize=4096)(label_key)  # 担当課 names and ratings repeat
# A sheet is a data sheet when a row among its first 30 carries at least four of the labels.
HEADER_MIN_LABELS = 4
HEADER_SCAN_ROWS = 30
TEXT_COLUMNS = (RESULT, OUTLOOK)
# The schema runs as one lazy pandera pass over the rows of many files at once (a pass per file
# would cost more than reading it), this many rows at a time: then the files' checks finish and
# their rows are dropped, so memory holds one batch of rows, not the night's.
SCHEMA_BATCH_ROWS = 20_000


@dataclass
class Candidate:
    """One row as read and normalised, before the schema and the plan checks."""

    file: int  # index into the batch
    sheet: str
    row: int  # Excel row, 1-based
    cells: dict[str, str]  # column → Excel address
    raw: dict[str, str]  # column → text as written
    value: dict[str, str | None]  # column → normalised value (None when blank)
    issues: list[Issue] = field(default_factory=list)
    carried: bool = False  # 施策No./事業No. taken from the row above
    restored: bool = False  # a template's overwritten 担当課, read as the printed one


# --- Reading the layout -----------------------------------------------------------------------


def _header_columns(row: list[Any]) -> dict[str, int]:
    found: dict[str, int] = {}
    for i, value in enumerate(row):
        # every data row is also checked for a repeated header: long texts cannot be labels
        if isinstance(value, str) and 0 < len(value) <= MAX_LABEL_LENGTH:
            col = _LABEL_KEYS.get(_label_key(value))
            if col and col not in found:
                found[col] = i
    return found


def _is_header(row: list[Any]) -> bool:
    """A row of published column labels. Four labels are enough, so a header that lost a required
    column (事業No., say) is still found and reported as column-missing, never skipped silently."""
    return len(_header_columns(row)) >= HEADER_MIN_LABELS


def find_header(sheet: RawSheet) -> int | None:
    """0-based index of the header row among the first 30 rows, or None."""
    found = sheet.__dict__.get("_header", -1)  # asked for the year and for the rows: looked for once
    if found != -1:
        return found  # type: ignore[no-any-return]
    found = next((r for r, row in enumerate(sheet.rows[:HEADER_SCAN_ROWS]) if _is_header(row)), None)
    sheet.__dict__["_header"] = found
    return found


_LETTERS: list[str] = []


def _letters(count: int) -> list[str]:
    """Column letters A, B, … for the first `count` columns (built once)."""
    while len(_LETTERS) < count:
        _LETTERS.append(column_letter(len(_LETTERS) + 1))
    return _LETTERS


def read_meta(sheets: list[RawSheet]) -> dict[str, str] | None:
    """Our template's metadata sheet as key → value, or None when this is not our template."""
    for sheet in sheets:
        if sheet.name == layout.META_SHEET:
            meta = {as_text(r[0]).strip(): as_text(r[1]).strip() for r in sheet.rows if len(r) >= 2 and r[0]}
            if meta.get("kind") == layout.TEMPLATE_KIND:
                return meta
    return None


# --- Reading one workbook into candidate rows -------------------------------------------------


def _warn_normalised(c: Candidate, col: str, raw: str, normalised: str) -> None:
    if raw.strip() != normalised or raw != raw.strip():
        c.issues.append(
            make_issue(
                "value-normalised", sheet=c.sheet, cell=c.cells[col], column=col, value=raw,
                row=c.row, normalised=normalised,
            )
        )


def _candidates(file_index: int, name: str, sheets: list[RawSheet], issues: list[Issue]) -> list[Candidate]:
    out: list[Candidate] = []
    empty: list[str] = []  # data sheets that gave no row
    data_sheets = 0
    for sheet in sheets:
        if sheet.name == layout.META_SHEET:
            continue
        header = find_header(sheet)
        if header is None:
            continue
        data_sheets += 1
        columns = _header_columns(sheet.rows[header])
        missing = [c for c in REQUIRED if c not in columns]
        for col in missing:
            issues.append(make_issue("column-missing", file=name, sheet=sheet.name, column=col))
        if missing:
            continue
        for i, value in enumerate(sheet.rows[header]):
            text = as_text(value).strip()
            # Last year's reference columns of our template are ours: never read, never reported.
            if text and i not in columns.values() and not layout.is_reference_label(text):
                issues.append(
                    make_issue("column-extra", file=name, sheet=sheet.name,
                               cell=f"{column_letter(i + 1)}{header + 1}", value=text)
                )
        previous: Candidate | None = None
        letters = _letters(max(columns.values()) + 1)
        for r in range(header + 1, len(sheet.rows)):
            row = sheet.rows[r]
            if _is_header(row):  # a header repeated after a page break
                continue
            raw = {col: as_text(row[i]) if i < len(row) else "" for col, i in columns.items()}
            filled = [col for col in (PROJECT, DEPARTMENT, RESULT, RATING, OUTLOOK) if raw[col].strip()]
            if not filled:
                continue  # blank rows, and notes written under the table in 施策No./name/内容
            if len(filled) == 1 and raw[filled[0]].lstrip().startswith(("※", "注")):
                continue
            # Title rows between the tables of a one-sheet copy of the published table
            # (基本目標 / 施策の方向性 / 施策 blocks): their names sit in the 事業No. column, which holds
            # no project number, and nothing else a row of the table has is filled in.
            if filled == [PROJECT] and parse_project(row[columns[PROJECT]]) is None:
                continue
            n = r + 1
            cells = {col: f"{letters[i]}{n}" for col, i in columns.items()}
            c = Candidate(file_index, sheet.name, r + 1, cells, raw, {})
            # Continuation rows: 施策No., 事業No., name and 内容 repeat the row above when blank
            # (as printed in the published table, or a merged cell).
            if not raw[PROJECT].strip() and previous is not None:
                for col in (MEASURE, PROJECT, NAME, CONTENT):
                    if col in columns and not raw.get(col, "").strip():
                        c.raw[col] = previous.raw.get(col, "")
                        c.cells[col] = previous.cells.get(col, c.cells.get(col, ""))
                c.value[MEASURE] = previous.value.get(MEASURE)
                c.value[PROJECT] = previous.value.get(PROJECT)
                c.carried = True
            _normalise(c, row, columns)
            _cell_facts(c, sheet)
            out.append(c)
            previous = c
        if not any(c.sheet == sheet.name for c in out):
            empty.append(sheet.name)
    # no-rows rejects the file, so it is raised only when no data sheet gave a row: an extra sheet
    # left with just its header (e.g. 基本目標3 with nothing to report) must not reject the rows of
    # the others.
    if not out:
        for sheet_name in empty:
            issues.append(make_issue("no-rows", file=name, sheet=sheet_name))
    if not data_sheets:
        issues.append(make_issue("header-not-found", file=name))
    return out


def _normalise(c: Candidate, row: list[Any], columns: dict[str, int]) -> None:
    carried = c.carried
    # 事業No.: numbers typed as text, groups typed any way people type them
    if not carried:
        raw_value = row[columns[PROJECT]] if columns[PROJECT] < len(row) else ""
        text = c.raw[PROJECT]
        key = parse_project(raw_value)
        if key is None:
            c.value[PROJECT] = squash(fold(text)) or None
        else:
            c.value[PROJECT] = key
            if isinstance(raw_value, str):
                _warn_normalised(c, PROJECT, text, key.replace("-", "～"))
    # 施策No.: every printed form to one key; blank is allowed (checked only where given)
    if MEASURE in columns and not carried:
        text = c.raw[MEASURE]
        if text.strip():
            code = parse_measure(text)
            c.value[MEASURE] = code or text.strip()
            if code:
                _warn_normalised(c, MEASURE, text, code)
        else:
            c.value[MEASURE] = None
    # 事業評価: width and case
    text = c.raw[RATING]
    rating = parse_rating(text)
    c.value[RATING] = rating if rating else (text.strip() or None)
    if rating:
        _warn_normalised(c, RATING, text, rating)
    # 担当課: kept as written here; matched against the plan later
    c.value[DEPARTMENT] = c.raw[DEPARTMENT].strip().replace("\u3000", " ") or None
    # free text: kept as written but for Excel's artefacts
    for col in TEXT_COLUMNS:
        text, had_x000d, had_control = clean_text(c.raw[col])
        c.value[col] = text or None
        if had_x000d:
            c.issues.append(
                make_issue("line-break-pasted", sheet=c.sheet, cell=c.cells[col], column=col, row=c.row)
            )
        if had_control:
            c.issues.append(
                make_issue("cell-control-chars", sheet=c.sheet, cell=c.cells[col], column=col, row=c.row)
            )


_DDE = re.compile(r"\|.*!")


def _cell_facts(c: Candidate, sheet: RawSheet) -> None:
    """What the gate saw in the XML and calamine hides: formulas, error values, hidden rows."""
    facts = sheet.facts
    if facts is None:
        return
    for col, cell in c.cells.items():
        if not cell.endswith(str(c.row)):
            continue  # a value carried down from the row above
        if cell in facts.errors:
            c.issues.append(make_issue("cell-error-value", sheet=c.sheet, cell=cell, column=col,
                                       value=facts.errors[cell], row=c.row))
        elif cell in facts.formulas:
            formula = facts.formulas[cell]
            if _DDE.search(formula):
                code = "cell-dde"
            elif cell in facts.no_cache:
                code = "cell-formula-no-cache"
            else:
                code = "cell-formula"
            # the value used is what the department saw: the cached result (formula for the DDE)
            shown = "=" + formula if code != "cell-formula" else c.raw.get(col, "")
            c.issues.append(make_issue(code, sheet=c.sheet, cell=cell, column=col, value=shown, row=c.row,
                                       formula="=" + formula[:80]))
    if c.row in facts.hidden_rows:
        c.issues.append(make_issue("row-hidden", sheet=c.sheet, cell=f"A{c.row}", value=c.row, row=c.row))
    # A merged range that starts on this row: only its top-left cell holds a value (the rest read
    # as blank and are carried down), so tell the department which cells were read as one.
    for ref in facts.merged:
        first, _, last = ref.partition(":")
        if _row_of(first) == c.row and last:
            c.issues.append(make_issue("cell-merged", sheet=c.sheet, cell=first, value=ref, row=c.row))


# Cells that read as blank but are not blank in Excel: the reader reports them with their own code.
_NOT_BLANK_CODES = frozenset({"cell-error-value", "cell-formula-no-cache", "cell-dde"})


def _shown_not_blank(c: Candidate) -> set[str]:
    return {i.cell for i in c.issues if i.code in _NOT_BLANK_CODES}


def _row_of(cell: str) -> int:
    return int(cell.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ$").replace("$", "") or 0)


def _uncalculated(checked: gate.GateResult, candidates: list[Candidate], name: str, issues: list[Issue]) -> None:
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
    first, from a name such as '健康課/5月/mail.eml › R6_….xlsx'."""
    segments = name.split(" › ")
    files = [seg.rsplit("/", 1)[-1] for seg in reversed(segments)]
    folders = [f for f in reversed(segments[0].split("/")[:-1]) if f]
    return files, folders


def hints_for(catalog: Catalog, name: str, sender: str = "") -> Hints:
    files, folders = _name_pieces(name)
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


def _year_places(sheets: list[RawSheet]) -> list[tuple[list[str], str]]:
    """Where the sheets name a fiscal year: the header labels, else the title rows above them."""
    headers = []
    for sheet in sheets:
        if sheet.name == layout.META_SHEET:
            continue
        header = find_header(sheet)
        if header is not None:
            headers.append((sheet, header))

    def cells(sheet: RawSheet, rows: Iterable[int]) -> Iterable[tuple[str, str]]:
        for r in rows:
            for i, value in enumerate(sheet.rows[r]):
                if isinstance(value, str) and 0 < len(value) <= 200:
                    yield f"{column_letter(i + 1)}{r + 1}", value

    places: list[tuple[list[str], str]] = []
    for sheet, header in headers:
        for cell, text in cells(sheet, [header]):
            if (years := fiscal_years(text)) and not layout.is_reference_label(text):  # last year's, by design
                places.append((years, f"シート「{sheet.name}」{cell} の見出し「{text.strip()}」"))
    if not places:
        for sheet, header in headers:
            for cell, text in cells(sheet, range(header)):
                if years := fiscal_years(text):
                    places.append((years, f"シート「{sheet.name}」{cell} の表題「{text.strip()[:60]}」"))
    return places


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


def _own_output(checked: gate.GateResult) -> str | None:
    """The kind label of a workbook we wrote (集約ブック, …), or None when it is not ours — or is a
    feedback copy the department saved again after correcting it, which is their return."""
    value = checked.custom.get(layout.OUTPUT_PROPERTY)
    if not value:
        return None
    mark = layout.parse_output_mark(value)
    kind = mark.get("kind", "")
    if kind == "feedback":
        written, saved = moment(mark.get("time", "")), moment(checked.saved)
        if written and saved and (saved - written).total_seconds() > layout.FEEDBACK_RESAVED_AFTER_S:
            return None
    return layout.OUTPUT_KINDS.get(kind, "ファイル")


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
    catalog: Catalog, c: Candidate, office: str | None, seen: dict[tuple[str, str], int]
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
    # and _warn_normalised only warns when the text as written differs.
    if not c.restored:  # a restored 担当課 is reported as catalog-cell-changed instead
        _warn_normalised(c, DEPARTMENT, c.raw[DEPARTMENT], assignment.department)
    if office and assignment.office != office:
        c.issues.append(make_issue("office-mismatch", sheet=c.sheet, cell=cell, column=DEPARTMENT,
                                   value=assignment.department, row=c.row, office=office))
    key = assignment.key
    if key in seen:
        c.issues.append(make_issue("duplicate-row", sheet=c.sheet, cell=cell, column=DEPARTMENT,
                                   value=assignment.department, row=c.row, project=project.label,
                                   first=seen[key]))
    else:
        seen[key] = c.row
    return assignment


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
    saved: str = ""
    ignore: str = ""  # why it is not read (one of our own outputs)


@dataclass
class _Draft:
    """A file under validation (mutable while it is checked; frozen into Content by _finish)."""

    source: Source
    hints: Hints
    issues: list[Issue] = field(default_factory=list)
    kind: str = ""
    office: str = ""
    office_source: str = "none"
    saved: str = ""
    ignore: str = ""
    candidates: list[Candidate] = field(default_factory=list)
    failed: Issue | None = None


def _internal_error(name: str, exc: BaseException) -> Issue:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return make_issue("internal-error", file=name, detail=f"{type(exc).__name__}: {str(exc)[:160]}{where}")


@dataclass(frozen=True)
class _Options:
    """How a caller other than the nightly merge reads (see validate_sources)."""

    year: str  # the fiscal year the files must name
    read_own_outputs: bool = False

    def key(self, catalog: Catalog) -> str:
        """Added to the cache key when not the defaults, so the same bytes read otherwise never share an entry."""
        return "" if (self.year, self.read_own_outputs) == (catalog.year, False) else f"|{self.year}|{self.read_own_outputs}"


@dataclass
class Parsed:
    """What a contained reader learnt from one workbook's bytes, with no catalog: everything the
    merge needs of the file, and not its cells (only the candidate rows, normalised)."""

    issues: list[Issue] = field(default_factory=list)  # reading's: the parser's failure, if any
    read: bool = False  # the sheets were read (the gate passed and the parser returned)
    own: str | None = None  # one of our own outputs: its kind label
    meta: dict[str, str] | None = None
    years: list[tuple[list[str], str]] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    candidate_issues: list[Issue] = field(default_factory=list)  # file-level issues of the rows
    failed: Issue | None = None  # a fault of ours while reading the rows (internal-error)


def read_contained(data: bytes, name: str, limits: gate.Limits, read_own: bool = False) -> Parsed:
    """One workbook in a contained reader (sandbox.Pool): the gate, then calamine, then the rows.

    The gate's result is emitted first, so that it reaches the merge even if the parser then
    kills the process. A damaged file is an issue; a fault of ours while reading the rows is
    `failed` (internal-error), as it would be in the merge process."""
    from pipeline.reader import sandbox

    checked = gate.inspect_workbook(data, name, limits)
    sandbox.emit(dataclasses.replace(checked, sheets={}))  # the facts stay here, with the rows
    out = Parsed()
    if not checked.ok:
        return out
    try:
        payload = ingest._parse(data, (limits.max_cells, limits.max_rows, limits.max_cols))
    except Exception as exc:
        out.issues.append(ingest.parse_failure(exc, name))
        return out
    del data
    sheets = [RawSheet(sheet, state, rows, checked.sheets.get(sheet), merged) for sheet, state, rows, merged in payload]
    del payload
    out.read = bool(sheets)
    try:
        out.own = _own_output(checked) if sheets else None
        if (out.own is not None and not read_own) or not sheets:
            return out
        out.meta = read_meta(sheets)
        out.years = _year_places(sheets)
        out.candidates = _candidates(0, name, sheets, out.candidate_issues)
    except Exception as exc:
        out.failed = _internal_error(name, exc)
    return out


def _apply(catalog: Catalog, d: _Draft, checked: gate.GateResult, parsed: Parsed, options: _Options) -> None:
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
    if d.kind != "template":  # a template's year is its metadata's (template-mismatch)
        year = _year_decision(parsed.years, d.hints, name, options.year)
        if year is not None:
            d.issues.append(year)
            return
    d.candidates = parsed.candidates
    projects = catalog.projects
    for c in d.candidates:  # the printed name and 内容 as the catalog holds them: one copy, not one a file
        p = projects.get(c.value.get(PROJECT) or "")
        if p is not None:
            if c.raw.get(NAME) == p.name:
                c.raw[NAME] = p.name
            if c.raw.get(CONTENT) == p.content:
                c.raw[CONTENT] = p.content
    d.issues.extend(parsed.candidate_issues)
    _uncalculated(checked, d.candidates, name, d.issues)


def _read_outcome(catalog: Catalog, d: _Draft, parts: list[Any], outcome: Any, options: _Options) -> None:
    """A contained read's outcome (read_contained's result, or how its process failed) applied to
    its draft."""
    from pipeline.reader import sandbox

    checked = parts[0] if parts else gate.GateResult(kind="")
    if isinstance(outcome, Parsed):
        _apply(catalog, d, checked, outcome, options)
        return
    if isinstance(outcome, sandbox.SandboxError):
        # a dead, stuck or exhausted reader is reported apart from a damaged file
        issue = make_issue("reader-crashed", file=d.source.name, detail=f"{outcome.kind}: {outcome.detail}")
    elif isinstance(outcome, Exception) and parts:
        # after the gate: a fault of ours while reading the rows (the parser's own is `Parsed.issues`)
        raise outcome
    else:
        issue = _internal_error(d.source.name, outcome)
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
    seen: dict[tuple[str, str], int] = {}
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
    if template and verified:
        issues.extend(dataclasses.replace(i, file=name)
                      for i in _template_order(catalog, verified, placed, layout.TEMPLATE_SHEET))
    if source not in VERIFIED_SOURCES:
        if len(offices) == 1:
            office, source = next(iter(offices)), "rows"
        if offices:
            issues.append(make_issue("office-unverified", file=name))
    return Content(kind=d.kind, office=office, office_source=source, offices=frozenset(offices | ({office} - {""})),
                   issues=tuple(issues), rows=tuple(rows), excluded=tuple(excluded), saved=d.saved)


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


def _verdict(catalog: Catalog, source: Source, content: Content, from_cache: bool) -> FileVerdict:
    prov = source.provenance
    name, received = prov.name, prov.received
    rows = tuple(r if (r.file, r.received) == (name, received) else dataclasses.replace(r, file=name, received=received)
                 for r in content.rows)
    issues = [
        *source.notes,
        *(i if i.file == name else dataclasses.replace(i, file=name) for i in content.issues),
        *_sender_issues(catalog, prov, content.office),
    ]
    fields: dict[str, Any] = {"kind": content.kind, "office": content.office, "office_source": content.office_source,
                              "saved": content.saved, "from_cache": from_cache}
    if content.ignore:
        return FileVerdict.ignored(prov, content.ignore, issues, **fields)
    return FileVerdict.judged(prov, issues, rows, offices=content.offices, excluded=content.excluded, **fields)


def _attributed(catalog: Catalog, verdict: FileVerdict) -> FileVerdict:
    """A file not read (rejected before parsing, unreadable, an e-mail without a workbook) still
    counts for its office when its sender or name tells which one it is."""
    if verdict.status == "ignored" or verdict.office:
        return verdict
    office, source = _office_from("", hints_for(catalog, verdict.name, verdict.sender))
    if not office:
        return verdict
    extra = _sender_issues(catalog, verdict.source, office)
    return dataclasses.replace(verdict, office=office, office_source=source, offices=frozenset({office}),
                               issues=(*verdict.issues, *extra))


# --- The entry points -------------------------------------------------------------------------


def validate_sources(
    catalog: Catalog,
    items: Iterable[Source | FileVerdict],
    limits: LimitSettings,
    cache: ResultCache | None = None,
    *,
    fiscal_year: str | None = None,
    read_own_outputs: bool = False,
) -> list[FileVerdict]:
    """One verdict per item, in order; verdicts passed in (ignored, unreadable) are kept.

    With a cache, a workbook whose bytes were validated before (same hints, catalog, limits and
    code) takes its content from there instead of being read again.

    `fiscal_year` is the year the files must name (default: the catalog's): a workbook naming another
    is year-mismatch. `import-published` reads last year's table against this year's catalog with
    `fiscal_year="R5"`. `read_own_outputs` reads a workbook this tool wrote (a 公表用ブック, say)
    instead of ignoring it as own-output.
    """
    options = _Options(fiscal_year or catalog.year, read_own_outputs)
    suffix = options.key(catalog)
    slots: list[FileVerdict | _Draft] = []
    drafts: list[_Draft] = []
    cached: dict[int, Content] = {}
    gate_limits = ingest.gate_limits(limits)

    positions: dict[int, int] = {}

    def to_read() -> Iterator[_Draft]:
        for item in items:
            if isinstance(item, FileVerdict):
                slots.append(_attributed(catalog, item))
                continue
            hints = hints_for(catalog, item.name, item.sender)
            d = _Draft(item, hints)
            slots.append(d)
            _ = item.sha256  # computed while the bytes are here: they are dropped once read
            entry = cache.get(f"{item.sha256}|{hints.key}{suffix}") if cache is not None else None
            if isinstance(entry, Content):
                cached[id(d)] = entry
                item.data = b""  # streamed: the bytes are not kept (a feedback copy reads them again)
                continue
            positions[id(d)] = len(drafts)
            drafts.append(d)
            yield d

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
                    d.failed = _internal_error(d.source.name, exc)
        for c, issue in found:
            c.issues.append(issue)
        for d in batch:
            try:
                content = _finish(catalog, d)
            except Exception as exc:
                d.failed = _internal_error(d.source.name, exc)
                content = _finish(catalog, d)
            if cache is not None and d.failed is None:  # an internal error is not remembered
                cache.put(f"{d.source.sha256}|{d.hints.key}{suffix}", content)
            finished[id(d)] = content
            d.candidates = []

    rows = 0
    with ingest.open_readers(limits, read_contained) as pool:
        for d, parts, outcome in pool.map(to_read(), lambda d: (d.source.data, d.source.name, gate_limits, read_own_outputs)):
            d.source.data = b""  # streamed: the bytes are not kept (a feedback copy reads them again)
            try:
                _read_outcome(catalog, d, parts, outcome, options)
            except Exception as exc:
                d.failed = _internal_error(d.source.name, exc)
            for c in d.candidates:
                c.file = positions[id(d)]
            batch.append(d)
            rows += len(d.candidates)
            if rows >= SCHEMA_BATCH_ROWS:
                check(batch)
                batch, rows = [], 0
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
        out.append(_verdict(catalog, slot.source, content, from_cache))
    return out


def validate_paths(
    catalog: Catalog, paths: Iterable[Path], limits: LimitSettings | None = None, exclude: Iterable[str] = ()
) -> ValidationReport:
    """Validate files and folders (recursively): the library behind `pipeline validate`.

    >>> report = validate_paths(load_catalog("R6"), [Path("inbox")])   # doctest: +SKIP
    >>> report.exit_code
    0
    """
    limits = limits or LimitSettings()
    files = ingest.find_files(paths, exclude)
    return ValidationReport(tuple(validate_sources(catalog, ingest.open_inputs(files, limits), limits)))
