"""A workbook's candidate rows, read from its sheets inside the contained worker, with no catalog:
the table found by its published column labels, each row normalised (numbers, ratings, Excel's
artefacts) and told what the gate saw in the XML (formulas, error values, hidden rows, merged
cells), our template's metadata, where the sheets name a fiscal year, and whether the workbook is
one of our own outputs. What the rows mean for the plan is judged by pipeline.validate.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from plan_schemas.columns import DEPARTMENT, MEASURE, OUTLOOK, PROJECT, RATING, REQUIRED, RESULT

from pipeline import layout
from pipeline.celltext import column_letters
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
from pipeline.reader.scanning import GateResult
from pipeline.reader.workbook import RawSheet
from pipeline.report import Issue, make_issue
from pipeline.times import moment

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
    restored: bool = False  # a template's overwritten 担当課, read as the printed one


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


def read_meta(sheets: list[RawSheet]) -> dict[str, str] | None:
    """Our template's metadata sheet as key → value, or None when this is not our template."""
    for sheet in sheets:
        if sheet.name == layout.META_SHEET:
            meta = {as_text(r[0]).strip(): as_text(r[1]).strip() for r in sheet.rows if len(r) >= 2 and r[0]}
            if meta.get("kind") == layout.TEMPLATE_KIND:
                return meta
    return None


def warn_normalised(c: Candidate, col: str, raw: str, normalised: str) -> None:
    if raw.strip() != normalised or raw != raw.strip():
        c.issues.append(
            make_issue(
                "value-normalised", sheet=c.sheet, cell=c.cells[col], column=col, value=raw,
                row=c.row, normalised=normalised,
            )
        )


@dataclass
class Table:
    """One sheet holding an evaluation table, as read: its rows and what it says of itself."""

    sheet: str
    state: str  # visible, hidden, veryHidden
    candidates: list[Candidate]
    issues: list[Issue]  # column-missing, column-extra, row-continuation: reported when it is read
    years: list[tuple[list[str], str]]  # where it names a fiscal year: header labels, else title rows
    complete: bool = True  # has every required column


def tables(file_index: int, name: str, sheets: list[RawSheet]) -> list[Table]:
    """Every sheet of the workbook holding an evaluation table (a header row of its labels), each
    with its candidate rows; which of them are the answers is validate's decision."""
    out: list[Table] = []
    for sheet in sheets:
        if sheet.name == layout.META_SHEET:
            continue
        header = find_header(sheet)
        if header is None:
            continue
        issues: list[Issue] = []
        found = _sheet_rows(file_index, name, sheet, header, issues)
        out.append(Table(sheet.name, sheet.state, found, issues, _year_places(sheet, header),
                         complete=not any(i.code == "column-missing" for i in issues)))
    return out


def _sheet_rows(file_index: int, name: str, sheet: RawSheet, header: int, issues: list[Issue]) -> list[Candidate]:
    out: list[Candidate] = []
    columns = _header_columns(sheet.rows[header])
    missing = [c for c in REQUIRED if c not in columns]
    for col in missing:
        issues.append(make_issue("column-missing", file=name, sheet=sheet.name, column=col))
    if missing:
        return out
    for i, value in enumerate(sheet.rows[header]):
        text = as_text(value).strip()
        # Last year's reference columns of our template are ours: never read, never reported.
        if text and i not in columns.values() and not layout.is_reference_label(text):
            issues.append(
                make_issue("column-extra", file=name, sheet=sheet.name,
                           cell=f"{column_letters(i + 1)}{header + 1}", value=text)
            )
    previous: Candidate | None = None
    letters = [column_letters(i + 1) for i in range(max(columns.values()) + 1)]
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
        # Text run on into a row of its own (an Enter where Alt+Enter was meant): one hint to
        # move it up, not a row of blank required cells.
        if previous is not None and set(filled) <= {RESULT, OUTLOOK} and not raw[PROJECT].strip():
            col = filled[0]
            issues.append(make_issue("row-continuation", file=name, sheet=sheet.name, cell=cells[col], column=col,
                                     value=raw[col].strip(), row=n, project=previous.raw.get(PROJECT, "").strip()))
            continue
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
                warn_normalised(c, PROJECT, text, key.replace("-", "～"))
    # 施策No.: every printed form to one key; blank is allowed (checked only where given)
    if MEASURE in columns and not carried:
        text = c.raw[MEASURE]
        if text.strip():
            code = parse_measure(text)
            c.value[MEASURE] = code or text.strip()
            if code:
                warn_normalised(c, MEASURE, text, code)
        else:
            c.value[MEASURE] = None
    # 事業評価: width and case
    text = c.raw[RATING]
    rating = parse_rating(text)
    c.value[RATING] = rating if rating else (text.strip() or None)
    if rating:
        warn_normalised(c, RATING, text, rating)
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


DDE = re.compile(r"\|.*!")


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
            if DDE.search(formula):
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


def _row_of(cell: str) -> int:
    return int(cell.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ$").replace("$", "") or 0)


def _year_places(sheet: RawSheet, header: int) -> list[tuple[list[str], str]]:
    """Where a sheet names a fiscal year: its header labels, else the title rows above them."""

    def cells(rows: Iterable[int]) -> Iterable[tuple[str, str]]:
        for r in rows:
            for i, value in enumerate(sheet.rows[r]):
                if isinstance(value, str) and 0 < len(value) <= 200:
                    yield f"{column_letters(i + 1)}{r + 1}", value

    places: list[tuple[list[str], str]] = []
    for cell, text in cells([header]):
        if (years := fiscal_years(text)) and not layout.is_reference_label(text):  # last year's, by design
            places.append((years, f"シート「{sheet.name}」{cell} の見出し「{text.strip()}」"))
    if not places:
        for cell, text in cells(range(header)):
            if years := fiscal_years(text):
                places.append((years, f"シート「{sheet.name}」{cell} の表題「{text.strip()[:60]}」"))
    return places


def own_output(checked: GateResult) -> str | None:
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


@dataclass
class Parsed:
    """What a contained reader learnt from one workbook's bytes, with no catalog: everything the
    merge needs of the file, and not its cells (only the candidate rows, normalised)."""

    issues: list[Issue] = field(default_factory=list)  # reading's: the parser's failure, if any
    read: bool = False  # the sheets were read (the gate passed and the parser returned)
    own: str | None = None  # one of our own outputs: its kind label
    meta: dict[str, str] | None = None
    tables: list[Table] = field(default_factory=list)  # the sheets holding an evaluation table
    failed: Issue | None = None  # a fault of ours while reading the rows (internal-error)

