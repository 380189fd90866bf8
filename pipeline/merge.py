"""The merge as a pure function: validated files in, the master's rows and the submission status out.

Newest wins, row by row: each (project, 担当課) takes its value from the newest file holding a
valid row for it (newest by received time, ties broken by file name). A newer invalid row never
replaces an older valid one, because invalid rows never reach `FileReport.rows`. No I/O here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pipeline.catalog import Catalog
from pipeline.normalize import RATINGS
from pipeline.report import Evaluation, FileReport, Issue, make_issue

STATUS_MISSING = "未提出"
STATUS_ERRORS = "エラーあり"
STATUS_PARTIAL = "一部受理"
STATUS_ACCEPTED = "受理"


@dataclass
class OfficeStatus:
    """One row of 提出状況."""

    office: str
    assignments: int
    received: int  # files from this office that were read
    valid: int  # assignments with a valid row in the master
    missing: int
    last_file: str = ""
    last_time: str = ""
    status: str = STATUS_MISSING
    senders: list[str] = field(default_factory=list)


@dataclass
class MergeResult:
    rows: list[Evaluation]  # one per assignment that has a valid row, in plan order
    offices: list[OfficeStatus]
    notes: list[Issue]  # superseded rows and rows kept from an older file

    def goal_counts(self, catalog: Catalog) -> dict[str, dict[str, int]]:
        """A–D counts per 基本目標, every goal and rating present (zeros included)."""
        counts = {str(g.number): dict.fromkeys(RATINGS, 0) for g in catalog.goals}
        for r in self.rows:
            counts[str(catalog.goal_of(r.project))][r.rating] += 1
        return counts


def newest_first(files: list[FileReport]) -> list[FileReport]:
    """Files ordered newest first; equal times are broken by name (the later name wins)."""
    return sorted(files, key=lambda f: (f.received, f.name), reverse=True)


def merge_files(catalog: Catalog, files: list[FileReport]) -> MergeResult:
    """Choose each assignment's row and mark files whose every row was replaced as `superseded`.

    Mutates the status of superseded files (and only that); returns the master's rows.
    """
    chosen: dict[tuple[str, str], Evaluation] = {}
    source: dict[tuple[str, str], FileReport] = {}
    notes: list[Issue] = []
    for f in newest_first(files):
        for row in f.rows:
            if row.key in chosen:
                newer = source[row.key]
                notes.append(
                    make_issue(
                        "row-superseded",
                        file=f.name,
                        sheet=row.sheet,
                        cell=f"A{row.row}" if row.row else "",
                        value=row.department,
                        project=catalog.projects[row.project].label,
                        newer=newer.name,
                    )
                )
                continue
            chosen[row.key] = row
            source[row.key] = f

    # A newer file whose row for a key was invalid: tell the department the older value is used.
    for f in files:
        told: set[tuple[str, str]] = set()
        for issue in f.issues:
            key = f.excluded.get((issue.sheet, issue.row)) if issue.is_error and issue.row else None
            if key is None or key in told:
                continue
            older = source.get(key)
            if older is not None and older is not f and (older.received, older.name) <= (f.received, f.name):
                told.add(key)
                notes.append(
                    make_issue(
                        "row-kept-older",
                        file=f.name,
                        sheet=issue.sheet,
                        cell=issue.cell,
                        value=key[1],
                        project=catalog.projects[key[0]].label,
                        older=older.name,
                    )
                )

    used = {id(f) for f in source.values()}
    for f in files:
        if f.rows and id(f) not in used and f.status in ("accepted", "partial"):
            f.status = "superseded"

    order = {a.key: a.order for a in catalog.assignments}
    rows = sorted(chosen.values(), key=lambda r: order[r.key])
    return MergeResult(rows=rows, offices=office_statuses(catalog, files, chosen), notes=notes)


def office_statuses(
    catalog: Catalog, files: list[FileReport], chosen: dict[tuple[str, str], Evaluation]
) -> list[OfficeStatus]:
    expected = Counter(a.office for a in catalog.assignments)
    valid = Counter(catalog_office for (p, d) in chosen for catalog_office in [_office(catalog, p, d)])
    by_office: dict[str, list[FileReport]] = {}
    for f in files:
        if f.status != "ignored":
            for office in f.offices:
                by_office.setdefault(office, []).append(f)
    out: list[OfficeStatus] = []
    for office in catalog.offices:
        if not expected[office]:
            continue
        mine = by_office.get(office, [])
        latest = max(mine, key=lambda f: (f.received, f.name), default=None)
        status = OfficeStatus(
            office=office,
            assignments=expected[office],
            received=len(mine),
            valid=valid[office],
            missing=expected[office] - valid[office],
            last_file=latest.name if latest else "",
            last_time=latest.received if latest else "",
            senders=sorted({f.sender for f in mine if f.sender}),
        )
        if not mine:
            status.status = STATUS_MISSING
        elif status.missing == 0:
            status.status = STATUS_ACCEPTED
        elif any(f.errors for f in mine):
            status.status = STATUS_ERRORS
        else:
            status.status = STATUS_PARTIAL
        out.append(status)
    return out


def _office(catalog: Catalog, project: str, department: str) -> str:
    for a in catalog.assignments_of(project):
        if a.department == department:
            return a.office
    raise KeyError((project, department))
