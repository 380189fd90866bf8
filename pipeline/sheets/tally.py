"""The counts the sheets print: why an assignment has no evaluation (`absences`), and the
A/B/C/D/未提出/未反映 tallies per goal, 施策の方向性, 施策 and 担当課 (`Tally`). Plain values from the
plan and the merge's `Outcome`; no workbook is touched here."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.catalog import Catalog
from pipeline.normalize import RATINGS
from pipeline.report import NOT_REFLECTED, STATUS_ERRORS, STATUS_MISSING, Evaluation, Outcome

# Why an assignment has no evaluation in the master, in the words the sheets print. 未提出 only
# when nothing was received from the office: an office that sent a return whose row (or whole
# file) was kept out by an error is waiting for a correction, not for a first answer.
MISSING = STATUS_MISSING  # the count columns: nothing received
UNREFLECTED = NOT_REFLECTED  # the count columns: received, not in the master (ERROR_MARK and UNREFLECTED_MARK)
MISSING_MARK = f"({MISSING})"
ERROR_MARK = f"(エラーのため{UNREFLECTED})"
UNREFLECTED_MARK = f"({UNREFLECTED})"  # received, no error of the office's: e.g. its rows came in another office's file


def absences(catalog: Catalog, result: Outcome) -> dict[tuple[str, str], str]:
    """Each assignment without a valid row, and why, as the sheets print it: MISSING_MARK when
    nothing was received from its office, ERROR_MARK when the office's returns had errors (a
    rejected file or an excluded row), UNREFLECTED_MARK otherwise."""
    valid = {r.key for r in result.rows}
    office = {o.office: o for o in result.offices}
    out = {}
    for a in catalog.assignments:
        if a.key in valid:
            continue
        o = office.get(a.office)
        if o is None or o.received == 0:
            out[a.key] = MISSING_MARK
        else:
            out[a.key] = ERROR_MARK if o.status == STATUS_ERRORS else UNREFLECTED_MARK
    return out


def unreflected(absent: dict[tuple[str, str], str]) -> set[tuple[str, str]]:
    return {key for key, mark in absent.items() if mark != MISSING_MARK}


class Tally:
    """A/B/C/D/未提出/未反映 counts per goal, direction, measure and 担当課, from one pass over the plan.
    `absent` (from `absences`) tells 未反映 from 未提出; without it, every absent row is 未提出."""

    def __init__(self, catalog: Catalog, rows: Iterable[Evaluation],
                 absent: dict[tuple[str, str], str] | None = None) -> None:
        absent = absent or {}
        self.by_key = {r.key: r for r in rows}
        self.goal: dict[int, dict[str, int]] = {g.number: empty_counts() for g in catalog.goals}
        self.direction = {(d.goal, d.number): empty_counts() for d in catalog.directions}
        self.measure = {(m.goal, m.direction, m.number): empty_counts() for m in catalog.measures}
        self.department: dict[str, dict[str, int]] = {}
        self.office_of: dict[str, str] = {}
        for a in catalog.assignments:
            p = catalog.projects[a.project]
            row = self.by_key.get(a.key)
            bucket = row.rating if row is not None else (
                MISSING if absent.get(a.key, MISSING_MARK) == MISSING_MARK else UNREFLECTED)
            self.department.setdefault(a.department, empty_counts())
            self.office_of.setdefault(a.department, a.office)
            for counts in (
                self.goal[p.goal],
                self.direction[(p.goal, p.direction)],
                self.measure[(p.goal, p.direction, p.measure)],
                self.department[a.department],
            ):
                counts[bucket] += 1

    @property
    def total(self) -> dict[str, int]:
        out = empty_counts()
        for counts in self.goal.values():
            for k, v in counts.items():
                out[k] += v
        return out


def empty_counts() -> dict[str, int]:
    return {**dict.fromkeys(RATINGS, 0), MISSING: 0, UNREFLECTED: 0}
