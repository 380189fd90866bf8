"""Validate returned workbooks: find the data, normalise it, run the pandera schema and the
plan-aware checks, and turn every problem into an Issue at a cell address.

The same function serves `validate` and the nightly `merge`. Work is batched: each file is read
and normalised on its own, then the rows of all files go through the pandera schema in one lazy
pass (a schema call per file would cost more than reading the file), then the plan checks run
row by row.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plan_schemas.columns import DEPARTMENT, MEASURE, OUTLOOK, PROJECT, RATING, REQUIRED, RESULT

from pipeline import gate, ingest, layout
from pipeline.cache import Entry, ResultCache
from pipeline.catalog import Catalog
from pipeline.gate import col_letters as column_letter
from pipeline.ingest import RawSheet, Source
from pipeline.normalize import (
    as_text,
    clean_text,
    fold,
    label_key,
    parse_measure,
    parse_project,
    parse_rating,
    squash,
)
from pipeline.report import Evaluation, FileReport, Issue, ValidationReport, make_issue
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
    for r, row in enumerate(sheet.rows[:HEADER_SCAN_ROWS]):
        if _is_header(row):
            return r
    return None


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


def _candidates(file_index: int, source: Source, sheets: list[RawSheet], report: FileReport) -> list[Candidate]:
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
            report.issues.append(make_issue("column-missing", file=source.name, sheet=sheet.name, column=col))
        if missing:
            continue
        for i, value in enumerate(sheet.rows[header]):
            text = as_text(value).strip()
            if text and i not in columns.values():
                report.issues.append(
                    make_issue("column-extra", file=source.name, sheet=sheet.name,
                               cell=f"{column_letter(i + 1)}{header + 1}", value=text)
                )
        previous: Candidate | None = None
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
            cells = {col: f"{column_letter(i + 1)}{r + 1}" for col, i in columns.items()}
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
        for name in empty:
            report.issues.append(make_issue("no-rows", file=source.name, sheet=name))
    if not data_sheets:
        report.issues.append(make_issue("header-not-found", file=source.name))
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
                make_issue("value-normalised", sheet=c.sheet, cell=c.cells[col], column=col,
                           value="_x000D_", row=c.row, normalised="改行")
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
            c.issues.append(make_issue(code, sheet=c.sheet, cell=cell, column=col, value="=" + formula, row=c.row))
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


def _uncalculated(checked: gate.GateResult, candidates: list[Candidate], report: FileReport) -> None:
    """Formulas saved by a tool that does not calculate (or asked Excel to recalculate on open):
    their cached results may be stale or 0, so say so once for the file."""
    first = next((i for c in candidates for i in c.issues if i.code == "cell-formula"), None)
    app = checked.application
    excel = app.startswith("Microsoft Excel") and "openpyxl" not in app.lower()
    if first is None or (excel and not checked.calc_on_load):
        return
    report.issues.append(
        make_issue("cell-uncalculated", file=report.name, sheet=first.sheet, cell=first.cell,
                   value=app or "不明なソフト", row=first.row)
    )


# --- Checks -----------------------------------------------------------------------------------


def _schema_issues(catalog: Catalog, candidates: list[Candidate]) -> None:
    """One lazy pandera pass over every row of the batch; failures become issues on their rows."""
    if not candidates:
        return
    import pandas as pd
    import pandera.errors
    from plan_schemas.evaluation import evaluation_schema

    columns = (MEASURE, PROJECT, DEPARTMENT, RESULT, RATING, OUTLOOK)
    frame = pd.DataFrame({col: [c.value.get(col) for c in candidates] for col in columns})
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
                extra["length"] = len(c.value.get(col) or "")
            if code == "project-unknown":
                group = catalog.group_containing(c.value.get(PROJECT))
                if group is not None:
                    extra["hint"] = f"事業No.{group.label} はまとめて1行で報告します(事業No. は「{group.label}」)。"
            c.issues.append(
                make_issue(code, sheet=c.sheet, cell=c.cells.get(col, ""), column=col,
                           value=c.raw.get(col, ""), row=c.row, **extra)
            )


def _plan_issues(
    catalog: Catalog, c: Candidate, office: str | None, seen: dict[tuple[str, str], int]
) -> tuple[str, str] | None:
    """Measure, assignment, office and duplicate checks. Returns the row's key when known."""
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
    return key


def _template_issues(catalog: Catalog, meta: dict[str, str], sheets: list[RawSheet], report: FileReport) -> str | None:
    """Year, office and catalog version of our template, and its pre-filled cells. Returns the office."""
    office = meta.get("office", "")
    expected = f"{catalog.year_label}({catalog.year})・計画版 {catalog.version} のテンプレート"
    if meta.get("fiscal_year", "").upper() != catalog.year:
        report.issues.append(make_issue("template-mismatch", file=report.name, sheet=layout.META_SHEET,
                                        found=f"年度 {meta.get('fiscal_year')}", expected=expected))
    elif meta.get("catalog_version") != catalog.version:
        report.issues.append(make_issue("template-mismatch", file=report.name, sheet=layout.META_SHEET,
                                        found=f"計画版 {meta.get('catalog_version')}", expected=expected))
    elif office not in catalog.offices or not catalog.assignments_for_office(office):
        report.issues.append(make_issue("template-mismatch", file=report.name, sheet=layout.META_SHEET,
                                        found=f"担当課「{office}」", expected="登録された担当課のテンプレート"))
        return None
    if report.issues and any(i.code == "template-mismatch" for i in report.issues):
        return office if office in catalog.offices else None
    values = layout.prefilled_values(catalog, office)
    sheet = next((s for s in sheets if s.name == layout.TEMPLATE_SHEET), None)
    if sheet is None:
        return office
    for i, expected_row in enumerate(values):
        r = layout.FIRST_DATA_ROW - 1 + i
        row = sheet.rows[r] if r < len(sheet.rows) else []
        for col, want in enumerate(expected_row):
            got = as_text(row[col]) if col < len(row) else ""
            if got != want:
                report.issues.append(
                    make_issue("catalog-cell-changed", file=report.name, sheet=sheet.name,
                               cell=f"{column_letter(col + 1)}{r + 1}", column=layout.COLUMNS[col],
                               value=got, row=r + 1, expected=want)
                )
    return office


# --- The entry points -------------------------------------------------------------------------


def validate_sources(
    catalog: Catalog,
    items: Iterable[Source | FileReport],
    limits: LimitSettings,
    cache: ResultCache | None = None,
) -> list[FileReport]:
    """Validate every source; FileReports passed in (ignored, unreadable) are kept in order.

    With a cache, a workbook whose bytes were validated before (same catalog, limits and code)
    takes its verdict from there instead of being read again.
    """
    reports: list[FileReport] = []
    batch: list[tuple[FileReport, list[Candidate], str | None, set[tuple[str, int]]]] = []
    fresh: list[tuple[FileReport, Source]] = []  # validated tonight: to be cached
    from_sources: list[FileReport] = []
    gate_limits = ingest.gate_limits(limits)
    with ingest.open_reader(limits) as reader:
        for item in items:
            if isinstance(item, FileReport):
                reports.append(item)
                continue
            entry = cache.get(item.sha256) if cache is not None else None
            if entry is not None:
                report = item.report()
                entry.restore(report)
                report.from_cache = True
                reports.append(report)
                from_sources.append(report)
                continue
            sheets, checked, report = ingest.read_workbook(item, reader, gate_limits)
            reports.append(report)
            from_sources.append(report)
            fresh.append((report, item))
            if not sheets:
                continue
            meta = read_meta(sheets)
            office = None
            if meta is not None:
                report.kind = "template"
                office = _template_issues(catalog, meta, sheets, report)
                if office:
                    report.office = office
                    report.offices = {office}
            else:
                report.kind = "table"
            if any(i.is_file_level and i.is_error for i in report.issues):
                continue
            candidates = _candidates(len(batch), item, sheets, report)
            _uncalculated(checked, candidates, report)
            # A changed pre-filled cell is a row-level error: its row is excluded like any other
            # (the issue itself was recorded by _template_issues, outside the row's own issues).
            changed = {(i.sheet, i.row) for i in report.issues if i.code == "catalog-cell-changed" and i.row}
            batch.append((report, candidates, office, changed))

    everything = [c for _, cands, _, _ in batch for c in cands]
    _schema_issues(catalog, everything)
    for report, candidates, office, changed in batch:
        seen: dict[tuple[str, str], int] = {}
        for c in candidates:
            key = _plan_issues(catalog, c, office, seen)
            for issue in c.issues:
                report.issues.append(_with_file(issue, report.name))
            if key and office is None:
                report.offices.add(next(a.office for a in catalog.assignments_of(key[0]) if a.department == key[1]))
            if any(i.is_error for i in c.issues) or (c.sheet, c.row) in changed:
                if key:
                    report.excluded[(c.sheet, c.row)] = key
                continue
            assert key is not None  # a row without errors has a known assignment
            report.rows.append(
                Evaluation(
                    project=key[0],
                    department=key[1],
                    result=c.value[RESULT] or "",
                    rating=c.value[RATING] or "",
                    outlook=c.value[OUTLOOK] or "",
                    file=report.name,
                    sheet=c.sheet,
                    row=c.row,
                    received=report.received,
                )
            )
        if len(report.offices) == 1 and not report.office:
            report.office = next(iter(report.offices))
    if cache is not None:
        for report, item in fresh:  # what the content decided; envelope notes stay out
            cache.put(item.sha256, Entry.of(report, report.issues[len(item.notes) :]))
    for report in from_sources:
        _sender_issues(catalog, report)
    for report in reports:
        report.settle_status()
    return reports


def _sender_issues(catalog: Catalog, report: FileReport) -> None:
    """E-mailed returns: is the sender one of the offices' known addresses, and the right one?"""
    if not report.sender or not catalog.senders:
        return  # no e-mail, or no addresses registered: nothing to compare with
    sender_office = catalog.senders.get(report.sender.lower())
    if sender_office is None:
        report.issues.append(make_issue("sender-unknown", file=report.name, value=report.sender))
    elif report.offices and sender_office not in report.offices:
        report.issues.append(
            make_issue("sender-office-mismatch", file=report.name, value=report.sender,
                       sender_office=sender_office, office="・".join(sorted(report.offices)))
        )


def _with_file(issue: Issue, name: str) -> Issue:
    from dataclasses import replace

    return replace(issue, file=name)


def validate_paths(catalog: Catalog, paths: Iterable[Path], limits: LimitSettings | None = None) -> ValidationReport:
    """Validate files and folders (recursively): the library behind `pipeline validate`.

    >>> report = validate_paths(load_catalog("R6"), [Path("inbox")])   # doctest: +SKIP
    >>> report.exit_code
    0
    """
    limits = limits or LimitSettings()
    files = ingest.find_files(paths)
    return ValidationReport(validate_sources(catalog, ingest.open_inputs(files, limits), limits))
