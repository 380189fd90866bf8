"""Last year beside this year: each assignment's rating in both years, and per 基本目標 the A–D
transitions and counts. Pure: the master's and the summary's 前年度比較 sheets are written from it.

Only this year's plan is compared: an assignment of last year's plan that is gone this year has no
row here, and last year's counts are those of the assignments both years share. A is the best
rating (A > B > C > D): "↑" is better than last year, "↓" worse, "→" the same.

    >>> from pipeline.catalog import load_catalog
    >>> from pipeline.history import PastEvaluation, PastYear
    >>> from pipeline.report import Evaluation
    >>> catalog = load_catalog("R6")
    >>> past = PastYear("R5", "R5.json", {("1", "地域福祉課"): PastEvaluation("1", "地域福祉課", "B")})
    >>> c = compare_years(catalog, [Evaluation("1", "地域福祉課", "…", "A", "…")], past)
    >>> c.changes[0].arrow, c.goals[0].transitions["B"]["A"]
    ('↑', 1)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from pipeline.catalog import Catalog
from pipeline.history import PastYear
from pipeline.marks import NO_VALUE
from pipeline.normalize import RATINGS
from pipeline.report import NOT_REFLECTED, STATUS_MISSING, Evaluation

RANK = {letter: i for i, letter in enumerate(RATINGS)}  # A 0 (best) … D 3
UP, DOWN, SAME = "↑", "↓", "→"
NONE = NO_VALUE  # no rating to show or compare
NEW = "新規"  # not in last year's plan
NOT_RETURNED = STATUS_MISSING  # nothing received from the office this year (yet)


@dataclass(frozen=True)
class Change:
    """One assignment of this year's plan: its rating last year and this year."""

    project: str  # catalog project key
    department: str
    goal: int
    previous: str = ""  # A–D, "" when last year has none
    current: str = ""  # A–D, "" when not returned (yet)
    new: bool = False  # not in last year's plan (known only when last year's plan is at hand)
    result: str = ""  # this year's 事業実績・評価理由
    unreflected: bool = False  # no rating this year although the office sent a return (an error kept it out)

    @property
    def key(self) -> tuple[str, str]:
        return (self.project, self.department)

    @property
    def arrow(self) -> str:
        """↑ / ↓ / →, or "" when either year has no rating."""
        if not self.previous or not self.current:
            return ""
        step = RANK[self.previous] - RANK[self.current]
        return UP if step > 0 else DOWN if step < 0 else SAME

    @property
    def fell(self) -> bool:
        """Worse than last year, and C or D now."""
        return self.arrow == DOWN and self.current in ("C", "D")

    @property
    def previous_text(self) -> str:
        return self.previous or (NEW if self.new else NONE)

    @property
    def current_text(self) -> str:
        return self.current or (NOT_REFLECTED if self.unreflected else NOT_RETURNED)

    @property
    def change_text(self) -> str:
        return self.arrow or NONE


def _zero() -> dict[str, int]:
    return dict.fromkeys(RATINGS, 0)


@dataclass(frozen=True)
class GoalComparison:
    """One 基本目標: transitions (last year's rating → this year's) and counts of both years."""

    goal: int
    name: str
    transitions: dict[str, dict[str, int]] = field(default_factory=dict)  # previous → current → n
    previous: dict[str, int] = field(default_factory=_zero)  # last year's A–D (shared assignments)
    current: dict[str, int] = field(default_factory=_zero)  # this year's A–D
    no_previous: int = 0  # assignments without last year's rating (新規 included)
    new: int = 0  # of which not in last year's plan
    not_returned: int = 0  # assignments without this year's rating, nothing received from the office
    unreflected: int = 0  # assignments without this year's rating although the office sent a return

    @property
    def compared(self) -> int:
        """Assignments rated in both years: the transition table's total."""
        return sum(sum(row.values()) for row in self.transitions.values())


@dataclass(frozen=True)
class YearComparison:
    year: str  # "R7"
    label: str  # "令和7年度"
    previous_year: str  # "R6"
    previous_label: str  # "令和6年度"
    source: str  # where last year's evaluations came from: the table staff imported, else the file read
    changes: tuple[Change, ...] = ()  # every assignment of this year's plan, in plan order
    goals: tuple[GoalComparison, ...] = ()

    @property
    def fell(self) -> tuple[Change, ...]:
        """The assignments that fell to C or D, in plan order."""
        return tuple(c for c in self.changes if c.fell)


def compare_years(catalog: Catalog, rows: Iterable[Evaluation], previous: PastYear,
                  unreflected: Collection[tuple[str, str]] = ()) -> YearComparison:
    """This year's chosen rows against last year's evaluations, assignment by assignment.
    `unreflected`: the assignments without a row whose office did send a return (an error kept
    the row out); they are told apart from those not returned."""
    by_key = {r.key: r for r in rows}
    goals = {
        g.number: GoalComparison(g.number, g.name, transitions={x: _zero() for x in RATINGS})
        for g in catalog.goals
    }
    counters = {g: {"no_previous": 0, "new": 0, "not_returned": 0, "unreflected": 0} for g in goals}
    changes = []
    for a in sorted(catalog.assignments, key=lambda a: a.order):
        goal = catalog.goal_of(a.project)
        past = previous.get(a.key)
        row = by_key.get(a.key)
        new = past is None and previous.plan is not None and a.key not in previous.plan
        change = Change(a.project, a.department, goal, past.rating if past else "", row.rating if row else "",
                        new, row.result if row else "", row is None and a.key in unreflected)
        changes.append(change)
        g = goals[goal]
        if change.previous:
            g.previous[change.previous] += 1
        else:
            counters[goal]["no_previous"] += 1
            counters[goal]["new"] += new
        if change.current:
            g.current[change.current] += 1
        else:
            counters[goal]["unreflected" if change.unreflected else "not_returned"] += 1
        if change.previous and change.current:
            g.transitions[change.previous][change.current] += 1
    done = tuple(
        GoalComparison(g.goal, g.name, g.transitions, g.previous, g.current, **counters[n]) for n, g in goals.items()
    )
    return YearComparison(
        year=catalog.year,
        label=catalog.year_label,
        previous_year=previous.year,
        previous_label=previous.label,
        source=previous.imported_from or previous.source,
        changes=tuple(changes),
        goals=done,
    )
