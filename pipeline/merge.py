"""The merge as a pure function: file verdicts in, an Outcome out. No I/O, and nothing it is given
is changed.

Which row wins, for each (事業, 担当課):

1. A row from a file whose office is verified (our template's metadata, the sender's registered
   address, an office name in the file name) beats a row from a file whose office is not, whatever
   their times: a consolidated or anonymous workbook never overrides an office's own return.
2. Then the newest: by the time the workbook itself was last saved (docProps/core.xml, rewritten
   by Excel and LibreOffice on every save), then the time it was received (the e-mail's Date,
   else the file's modification time), then the name. A draft copied into the inbox after the
   correction has the older saved time and loses; `order-conflict` says so. A saved time or Date
   more than a day after the run's clock is not believed (`evidence`, time-in-future), and equal
   deciding times are a tie (`order-tie`), never "newer".

A newer invalid row never replaces an older valid one, because invalid rows never reach a
verdict's rows (`row-kept-older` tells the department). Compared with the previous run's master,
each evaluation that disappeared is listed (`row-dropped`) with the file it last came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from pipeline.catalog import Catalog
from pipeline.marks import NO_VALUE
from pipeline.report import (
    CODES,
    FILE_STATUS_LABELS,
    STATUS_ACCEPTED,
    STATUS_ERRORS,
    STATUS_MISSING,
    STATUS_PARTIAL,
    DroppedRow,
    Evaluation,
    FileVerdict,
    Issue,
    OfficeStatus,
    Outcome,
    make_issue,
)
from pipeline.times import moment, shown_moment

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
USABLE = ("accepted", "partial")
# A time later than the run's clock by more than this is not believed (a PC whose clock is wrong).
FUTURE_SLACK = timedelta(days=1)
EVIDENCE_JA = {"saved": "ブックの保存日時", "email-date": "メールの送信日時", "mtime": "ファイルの更新日時",
               "name": "ファイル名"}


def evidence(f: FileVerdict, now: datetime | None = None) -> tuple[tuple[tuple[str, str], ...], list[tuple[str, str]]]:
    """The believed evidence that orders a file, as (source, ISO time) pairs, deciding first, and
    the times not believed because they lie more than a day after `now`. Saved time, then the
    e-mail's Date, then the file's modification time; a file with none is ordered by its name."""
    p = f.source
    mtime = p.mtime or (p.received if p.received != p.email_date else "")
    believed: list[tuple[str, str]] = []
    future: list[tuple[str, str]] = []
    for source, iso in (("saved", f.saved), ("email-date", p.email_date), ("mtime", mtime)):
        when = moment(iso)
        if when is None:
            continue
        if now is not None and source != "mtime" and when > now + FUTURE_SLACK:
            future.append((source, iso))
        else:
            believed.append((source, iso))
    return tuple(believed), future


def _believed(f: FileVerdict) -> tuple[tuple[str, str], ...]:
    return f.order_times if f.order_source else evidence(f)[0]


def order_source(f: FileVerdict) -> str:
    """`saved`, `email-date`, `mtime` or `name`: what decides where the file stands."""
    times = _believed(f)
    return times[0][0] if times else "name"


def order_key(f: FileVerdict) -> tuple[bool, datetime, datetime, str]:
    """Rank of a file's rows: verified office first, then its deciding time, its next evidence,
    its name (larger wins)."""
    times = [moment(iso) for _, iso in _believed(f)]
    first = times[0] if times else None
    second = times[1] if len(times) > 1 else first
    return (f.verified, first or _EPOCH, second or _EPOCH, f.name)


def _tie_breaker(winner: FileVerdict, loser: FileVerdict) -> str:
    """How two files whose deciding times are equal were told apart."""
    times = _believed(winner)
    if order_key(winner)[2] != order_key(loser)[2] and len(times) > 1:
        return f"{EVIDENCE_JA[times[1][0]]}が新しい方"
    return "ファイル名の順(後ろの方)"


def newest_first(files: Iterable[FileVerdict]) -> list[FileVerdict]:
    return sorted(files, key=order_key, reverse=True)


def merge(
    catalog: Catalog, files: Iterable[FileVerdict], previous: Mapping[tuple[str, str], str] | None = None
) -> Outcome:
    """Choose each assignment's row. `previous` maps each evaluation of the previous run's master
    (same fiscal year) to the file it came from, when that run is known."""
    files = list(files)
    chosen: dict[tuple[str, str], Evaluation] = {}
    source: dict[tuple[str, str], FileVerdict] = {}
    notes: list[Issue] = []
    tied: set[tuple[str, str]] = set()
    for f in newest_first(x for x in files if x.status in USABLE):
        for row in f.rows:
            winner = source.get(row.key)
            if winner is None:
                chosen[row.key] = row
                source[row.key] = f
                continue
            if winner.verified != f.verified:
                why = "提出した課が確認できたファイルを優先"
            elif order_key(winner)[1] == order_key(f)[1]:
                why = f"{EVIDENCE_JA[order_source(winner)]}が同じため、{_tie_breaker(winner, f)}を採用"
                if (winner.name, f.name) not in tied:
                    tied.add((winner.name, f.name))
                    notes.append(_order_tie(winner, f))
            else:
                why = "より新しい提出"
            notes.append(
                make_issue("row-superseded", file=f.name, sheet=row.sheet, cell=f"A{row.row}" if row.row else "",
                           value=row.department, project=catalog.projects[row.project].label,
                           newer=winner.name, why=why)
            )

    # A newer file whose row for a key was invalid: tell the department the older value is used.
    for f in files:
        told: set[tuple[str, str]] = set()
        for x in f.excluded:
            older = source.get(x.key)
            if older is None or older is f or x.key in told or order_key(older) > order_key(f):
                continue
            told.add(x.key)
            first = next((i for i in f.issues if i.is_error and i.sheet == x.sheet and i.row == x.row), None)
            notes.append(
                make_issue("row-kept-older", file=f.name, sheet=x.sheet, cell=first.cell if first else "",
                           value=x.department, project=catalog.projects[x.project].label, older=older.name)
            )

    used = {id(f) for f in source.values()}
    statuses = {
        f.name: "superseded" if f.status in USABLE and f.rows and id(f) not in used else f.status for f in files
    }
    notes.extend(_order_conflicts(files))
    dropped = _dropped(catalog, files, chosen, previous) if previous is not None else []
    notes.extend(
        make_issue("row-dropped", file=d.file, value=d.department, project=catalog.projects[d.project].label
                   if d.project in catalog.projects else d.project, older=d.file, reason=d.reason)
        for d in dropped
    )
    order = {a.key: a.order for a in catalog.assignments}
    rows = tuple(sorted(chosen.values(), key=lambda r: order[r.key]))
    return Outcome(
        rows=rows,
        statuses=statuses,
        notes=tuple(notes),
        offices=tuple(office_statuses(catalog, files, chosen)),
        unattributed=tuple(f.name for f in files if f.status != "ignored" and not f.office),
        dropped=tuple(dropped),
        previous_rows=len(previous) if previous is not None else None,
    )


def _order_tie(winner: FileVerdict, loser: FileVerdict) -> Issue:
    """Two files whose deciding times are equal: the winner is not newer, only chosen."""
    when = order_key(winner)[1]
    shown = shown_moment(when) if when != _EPOCH else "日時なし"
    source = order_source(winner)
    return make_issue("order-tie", file=loser.name, value=loser.name, other=winner.name, winner=winner.name,
                      office=winner.office or loser.office or "提出元不明", what=EVIDENCE_JA[source],
                      time=shown, breaker=_tie_breaker(winner, loser))


def _order_conflicts(files: list[FileVerdict]) -> list[Issue]:
    """A file of an office received after the one whose rows win, but saved before it: an old draft
    put in the inbox late. Its rows lose (saved order); say so, naming both."""
    by_office: dict[str, list[FileVerdict]] = {}
    for f in files:
        if f.status in USABLE and f.office and f.verified:
            by_office.setdefault(f.office, []).append(f)
    notes = []
    for office, mine in by_office.items():
        winner = max(mine, key=order_key)
        w_saved, w_received = moment(winner.saved), moment(winner.received)
        for f in mine:
            saved, received = moment(f.saved), moment(f.received)
            if f is winner or not (saved and received and w_saved and w_received):
                continue
            if order_source(f) != "saved" or order_source(winner) != "saved":
                continue  # a saved time not believed (time-in-future) orders nothing
            if received > w_received and saved < w_saved:
                notes.append(make_issue("order-conflict", file=f.name, value=f.name, office=office, other=winner.name,
                                        saved=shown_moment(saved), other_saved=shown_moment(w_saved)))
    return notes


def _dropped(
    catalog: Catalog,
    files: list[FileVerdict],
    chosen: Mapping[tuple[str, str], Evaluation],
    previous: Mapping[tuple[str, str], str],
) -> list[DroppedRow]:
    by_name = {f.name: f for f in files}
    assigned = {a.key for a in catalog.assignments}
    out = []
    for key, name in previous.items():
        if key in chosen:
            continue
        f = by_name.get(name)
        if key not in assigned:
            reason = "計画の割り当てから外れました"
        elif f is None:
            reason = "ファイルが受付フォルダにありません"
        elif f.status == "rejected":
            first = next((i for i in f.errors), None)
            reason = f"ファイルが{FILE_STATUS_LABELS['rejected']}になりました({CODES[first.code].title if first else NO_VALUE})"
        elif f.status == "ignored":
            reason = f"ファイルが{FILE_STATUS_LABELS['ignored']}になりました({f.reason})"
        elif any(x.key == key for x in f.excluded):
            reason = "ファイルのこの行に誤りがあります"
        else:
            reason = "ファイルにこの行がありません"
        out.append(DroppedRow(key[0], key[1], name, reason))
    return out


def office_statuses(
    catalog: Catalog, files: list[FileVerdict], chosen: Mapping[tuple[str, str], Evaluation]
) -> list[OfficeStatus]:
    """提出状況: per office, what it owes, what it sent (a rejected file counts as sent when its office
    is known by its sender or name) and what is still missing. The one decision of who still owes
    what: an office whose every assignment has a valid row is 受理, whatever later files say (a
    later file with errors is shown beside it); any other office owes exactly its missing ones."""
    by_office: dict[str, list[FileVerdict]] = {}
    for f in files:
        if f.status != "ignored":
            for office in f.offices | ({f.office} - {""}):
                by_office.setdefault(office, []).append(f)
    out: list[OfficeStatus] = []
    for office in catalog.offices:
        mine_assigned = [a for a in sorted(catalog.assignments_for_office(office), key=lambda a: a.order)]
        if not mine_assigned:
            continue
        mine = by_office.get(office, [])
        latest = max(mine, key=order_key, default=None)
        missing = tuple(a.key for a in mine_assigned if a.key not in chosen)
        standing = standing_errors(mine)
        if not missing:  # 受理: only a file after the ones in use is news (受理(後の提出にエラーあり))
            used = {chosen[a.key].file for a in mine_assigned}
            standing = [f for f in standing if f.name not in used]
        if not missing:
            status = STATUS_ACCEPTED
        elif not mine:
            status = STATUS_MISSING
        elif standing:
            status = STATUS_ERRORS
        else:
            status = STATUS_PARTIAL
        reason = ""
        if standing:
            f = standing[0]
            reason = f"{f.name}: {CODES[f.errors[0].code].title}" + (f" ほか {len(f.errors) - 1} 件" if len(f.errors) > 1 else "")
        out.append(
            OfficeStatus(
                office=office,
                assignments=len(mine_assigned),
                received=len(mine),
                valid=len(mine_assigned) - len(missing),
                missing=len(missing),
                status=status,
                last_file=latest.name if latest else "",
                last_time=latest.received if latest else "",
                senders=tuple(sorted({f.sender for f in mine if f.sender})),
                reason=reason,
                missing_keys=missing,
                error_files=tuple(f.name for f in standing),
            )
        )
    return out


def standing_errors(mine: list[FileVerdict]) -> list[FileVerdict]:
    """An office's files with errors that still stand, newest first: rejected or partial, and not
    followed by a return of it accepted whole (an older failed try a good return replaced is over)."""
    clean = max((order_key(f) for f in mine if f.status == "accepted"), default=None)
    return [f for f in newest_first(mine)
            if f.status in ("rejected", "partial") and f.errors and (clean is None or order_key(f) > clean)]
