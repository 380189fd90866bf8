"""The commands around the nightly merge that follow the year's calendar:

* `import_published`: last year's published evaluation table → outbox/history/evaluations-R5.json,
  where `pipeline.history.previous_year` finds it. Read exactly as a return is (the gate, the
  contained reader, the header finding, normalisation, the plan checks) by `validate_sources`,
  told which year the table must name. Never written into the inbox.
* `submission_status`: 提出状況 of the latest run report of a year, with the days to the deadline
  or past it, for the console.
* `write_reminders`: one Outlook draft (.eml, `X-Unsent: 1`) per office that still owes answers,
  in outbox/reminders/, listing what is missing and every error of its returns, with the office's
  feedback copy attached.

All three read what the merge wrote (run-report.json, the feedback copies) and the catalog; none of
them reads or changes the inbox. "Today" is a parameter everywhere (default: the clock's), so the
output of a given day can be reproduced.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import unicodedata
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy
from pathlib import Path
from typing import Any

from pipeline import lastrun
from pipeline.catalog import Assignment, Catalog, load_catalog, year_label
from pipeline.errors import InputError, OutputError, PipelineError
from pipeline.marks import NO_VALUE
from pipeline.report import CODES, STATUS_ACCEPTED, UNATTRIBUTED, FileVerdict, Issue, office_label
from pipeline.settings import Settings
from pipeline.times import moment
from pipeline.wareki import wareki, wareki_time

REPORT_NAME = "run-report.json"  # as pipeline.runner (not imported: it pulls in the merge)
HISTORY_DIR = "history"
FEEDBACK_DIR = "feedback"
REMINDERS_DIR = "reminders"
UNSHOWABLE = "〓"  # the geta mark: what Japanese systems print for a character they cannot show


# --- shared pieces ------------------------------------------------------------------------------


def for_console(text: str, encoding: str | None) -> str:
    """`text` with every character the console cannot show (𠮷, emoji on a cp932 console) replaced:
    by its compatibility form when that can be shown, else by 〓. Never raises."""
    if not encoding:
        return text
    try:
        text.encode(encoding)
        return text
    except UnicodeEncodeError:
        pass
    except LookupError:  # an encoding Python does not know: leave it to the stream's error handler
        return text
    mark = UNSHOWABLE if _encodable(UNSHOWABLE, encoding) else "?"
    out = []
    for ch in text:
        if _encodable(ch, encoding):
            out.append(ch)
            continue
        compat = unicodedata.normalize("NFKC", ch)
        out.append(compat if compat != ch and _encodable(compat, encoding) else mark)
    return "".join(out)


def _encodable(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def deadline_text(deadline: date | None, today: date) -> str:
    """「提出期限 令和7年5月30日(金)(あと 3 日)」, 「…(本日が期限です)」 or 「…(期限を 2 日過ぎています)」;
    the deadline day itself is not late."""
    if deadline is None:
        return "提出期限: 未設定(設定ファイルの [plan] deadline に 2025-05-30 のように書くと、残りの日数と期限超過を表示します)"
    days = (deadline - today).days
    if days > 0:
        when = f"あと {days} 日"
    elif days == 0:
        when = "本日が期限です"
    else:
        when = f"期限を {-days} 日過ぎています"
    return f"提出期限 {wareki(deadline)}({when})"


def deadline_passed(deadline: date | None, today: date) -> bool:
    """Whether answers still owed today are late (the deadline day itself is not)."""
    return deadline is not None and today > deadline


def _deadline_for(settings: Settings, year: str) -> date | None:
    """`[plan] deadline` is the deadline of `[plan] year`; another year has none we know of."""
    return settings.deadline if year == settings.year else None


def shown_time(iso: str) -> str:
    """'2025-05-27T02:00:05+09:00' → '令和7年5月27日(火) 2:00' (in the time zone it was written in)."""
    try:
        return wareki_time(datetime.fromisoformat(iso))
    except (TypeError, ValueError):
        return iso or "不明"


def latest_report(outbox: Path, year: str) -> tuple[Path, dict[str, Any]]:
    """The latest run report of `year` and where it is: the newest (by generated_at) of
    outbox/run-report.json, a stamped run-report_<time>.json written while it was locked, and the
    copies in outbox/history/. InputError (exit 3) when there is none."""
    candidates = [outbox / REPORT_NAME]
    with contextlib.suppress(OSError):
        candidates += sorted(outbox.glob(Path(REPORT_NAME).stem + "_*.json"), reverse=True)
    with contextlib.suppress(OSError):
        candidates += sorted((outbox / HISTORY_DIR).glob("run-report-*.json"), reverse=True)
    damaged: list[str] = []
    found: list[tuple[datetime, int, Path, dict[str, Any]]] = []
    for path in candidates:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            written = path.stat().st_mtime_ns
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            damaged.append(f"{path}({type(exc).__name__})")
            continue
        if isinstance(data, dict) and data.get("fiscal_year") == year and isinstance(data.get("offices"), list):
            when = moment(str(data.get("generated_at", ""))) or datetime.min.replace(tzinfo=UTC)
            found.append((when, written, path, data))
    if found:
        _, _, path, data = max(found, key=lambda f: (f[0], f[1]))
        # the history copy of a run is written just after its report: name the report itself
        twin = next((p for _, _, p, d in found if p.parent == outbox and d == data), path)
        return twin, data
    label = _label(year)
    extra = f" 読めない実行レポート: {'、'.join(damaged)}。" if damaged else ""
    raise InputError(
        f"{label}({year})の実行レポート({outbox / REPORT_NAME})がまだありません。{extra}"
        "先に python -m pipeline merge を実行して集約してから、もう一度実行してください"
        f"(年度を確かめる場合は --year R7 のように指定します)。"
    )


def _label(year: str) -> str:
    try:
        return year_label(year)
    except ValueError:
        return year


def _error_issues(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """A report file entry's errors that the department can fix (not notes about our own outputs)."""
    return [
        i for i in entry.get("issues", [])
        if i.get("severity") == "error" and (CODES[i["code"]].level if i.get("code") in CODES else "row") != "note"
    ]


# --- import-published ---------------------------------------------------------------------------


class ImportFailed(InputError):
    """Nothing could be stored from the file (exit 3); `issues` says why."""

    def __init__(self, message: str, issues: Sequence[Issue] = ()) -> None:
        super().__init__(message)
        self.issues = list(issues)


@dataclass(frozen=True)
class ImportResult:
    """What `import_published` read and stored."""

    year: str  # the fiscal year of the table ("R5")
    source: Path  # the file read
    stored: Path  # outbox/history/evaluations-R5.json
    catalog_year: str  # the catalog the rows were matched against
    catalog_assignments: int
    evaluations: int  # stored
    files: tuple[FileVerdict, ...]  # one per workbook read (a .zip or .eml may hold several)
    missing: tuple[Assignment, ...] = ()  # assignments of the catalog the table gave no value for
    from_master: bool = False  # a master workbook of ours, read from its 評価一覧

    @property
    def carried_over(self) -> bool:
        """Matched against this year's catalog: the year had no plan-<year>.yaml of its own."""
        return self.catalog_year != self.year

    @property
    def unmatched(self) -> list[Issue]:
        """The errors: each is a row (or a file) whose evaluation was not stored, and why."""
        return [i for f in self.files for i in f.issues if i.is_error and CODES[i.code].level != "note"]

    @property
    def unmatched_rows(self) -> int:
        return len({(i.file, i.sheet, i.row) for i in self.unmatched if i.row is not None}) + sum(
            1 for i in self.unmatched if i.row is None
        )

    @property
    def exit_code(self) -> int:
        return 1 if self.unmatched else 0


def import_published(path: Path, year: str, settings: Settings) -> ImportResult:
    """Read a published evaluation table of `year` and store its evaluations for next year.

    Matched against schemas/plan-<year>.yaml when it exists, else against `[plan] year`'s catalog
    (project numbers and 担当課 usually carry over from one year to the next). The table must name
    `year` (its title or the 事業実績・評価理由 label), else the file is year-mismatch. Raises
    InputError (exit 3) when the file is missing, and ImportFailed when not one evaluation could be
    read from it; OutputError when the store cannot be written.
    """
    from plan_schemas import SCHEMAS_DIR

    from pipeline import ingest
    from pipeline.history import PastEvaluation, PastYear, stored_path, write_stored
    from pipeline.history import read_master as history_read_master
    from pipeline.newyear import plan_path
    from pipeline.validate import validate_sources

    path = Path(path)
    if not path.is_file():
        what = "フォルダー" if path.is_dir() else "ファイル"
        raise InputError(
            f"{path} が見つかりません。" if not path.exists()
            else f"{path} は{what}です。公表された評価表の Excel ファイル(.xlsx)を1つ指定してください。"
        )
    label = _label(year)
    ours = _master_year(path, settings)
    if ours is not None and ours != year:
        raise ImportFailed(
            f"{path.name} はこのツールが作成した{_label(ours)}({ours})の集約ブックです。{label}の評価表ではないため、"
            f"何も保存していません。{label}の集約ブックか公表された評価表を指定するか、--year {ours} を指定してください。"
        )
    own_plan = plan_path(settings.schemas or SCHEMAS_DIR, year).is_file()
    catalog = load_catalog(year if own_plan else settings.year, settings.schemas)
    evaluations: dict[tuple[str, str], PastEvaluation] = {}
    verdicts: list[FileVerdict] = []
    if ours is not None:
        # A master of ours holds every evaluation twice (評価一覧 and the sheet per 基本目標): its
        # 評価一覧 is read, as history.previous_year reads a master left in the outbox.
        past = history_read_master(path, year)
        evaluations.update(past.evaluations if past is not None else {})
    else:
        files = ingest.find_files([path])
        verdicts = validate_sources(
            catalog, ingest.open_inputs(files, settings.limits), settings.limits,
            fiscal_year=year, read_own_outputs=True,
        )
        for v in verdicts:
            for r in v.rows:
                evaluations.setdefault(r.key, PastEvaluation(r.project, r.department, r.rating, r.result, r.outlook))
    if not evaluations:
        issues = [i for v in verdicts for i in v.issues if i.is_error] or [i for v in verdicts for i in v.issues]
        reasons = "".join(f"\n  {_place(i)}{i.message}" for i in issues[:10])
        if len(issues) > 10:
            reasons += f"\n  ほか {len(issues) - 10} 件"
        ignored = [v.reason for v in verdicts if v.status == "ignored" and v.reason]
        if ignored and not issues:
            reasons += "".join(f"\n  {r}" for r in ignored)
        raise ImportFailed(
            f"{path.name} から{label}の評価を1件も読み取れませんでした。何も保存していません。{reasons}\n"
            f"公表された{label}の評価表(施策No.・事業No.・担当課・事業評価 などの見出しの下に評価が並ぶ表)を"
            "Excel ブック(.xlsx)にしたものを指定してください。",
            issues,
        )
    target = stored_path(settings.outbox, year)
    try:
        stored = write_stored(target, PastYear(year, path.name, evaluations))
    except OSError as exc:
        raise OutputError(
            f"{target} に書き込めません({type(exc).__name__}: {exc})。出力フォルダーの空き容量とアクセス権を確認してください。"
        ) from None
    missing = tuple(a for a in sorted(catalog.assignments, key=lambda a: a.order) if a.key not in evaluations)
    return ImportResult(year, path, stored, catalog.year, len(catalog.assignments), len(evaluations),
                        tuple(verdicts), missing, from_master=ours is not None)


def _master_year(path: Path, settings: Settings) -> str | None:
    """The fiscal year of a master workbook this tool wrote (its mark, seen by the gate without
    parsing the workbook, in a contained worker), or None for any other file."""
    from pipeline import layout
    from pipeline.reader import contained

    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        return None
    try:
        if path.stat().st_size > settings.limits.max_file_bytes:
            return None  # the reader reports it (file-too-large)
        data = path.read_bytes()
    except OSError:
        return None
    checked = contained.inspect(data, path.name, settings.limits)
    ok = checked is not None and checked.ok
    mark = layout.parse_output_mark(checked.custom.get(layout.OUTPUT_PROPERTY, "")) if ok and checked else {}
    return (mark.get("year") or None) if mark.get("kind") == "master" else None


def _place(i: Issue | dict[str, Any]) -> str:
    """「シート「基本目標1」F12: 」 — where an issue is, for a one-line listing."""
    sheet = i.get("sheet", "") if isinstance(i, dict) else i.sheet
    cell = i.get("cell", "") if isinstance(i, dict) else i.cell
    if sheet and cell:
        return f"シート「{sheet}」{cell}: "
    if sheet:
        return f"シート「{sheet}」: "
    return f"セル {cell}: " if cell else ""


def render_import(result: ImportResult) -> str:
    """The Japanese summary `import-published` prints."""
    label, catalog_label = _label(result.year), _label(result.catalog_year)
    lines = [f"{label}({result.year})の評価表 {result.source.name} を読み込みました。"]
    if result.from_master:
        lines.append("このツールが作成した集約ブックのため、「評価一覧」シートの評価をそのまま保存しました。")
    elif result.carried_over:
        lines.append(
            f"{label}の計画カタログ(plan-{result.year.lower()}.yaml)がないため、{catalog_label}({result.catalog_year})の"
            "計画カタログで事業No.と担当課を照合しました。事業No.と担当課はふつう年度をまたいで引き継がれます。"
            "番号や担当課が変わった事業は、下の「照合できなかった行」に出ます。"
        )
    lines.append(
        f"保存した評価: {result.evaluations} 件(計画の割り当て {result.catalog_assignments} 件のうち)→ {result.stored}"
    )
    notes = Counter(
        CODES[i.code].title for f in result.files for i in f.issues
        if not i.is_error and i.code != "office-unverified"
    )
    if notes:
        lines.append("読み込みのお知らせ: " + "、".join(f"{t} {n} 件" for t, n in notes.most_common())
                     + "(保存した評価には影響ありません)")
    unmatched = result.unmatched
    if unmatched:
        lines.append(f"照合できなかった行: {result.unmatched_rows} 行(この行の評価は保存していません)")
        for i in unmatched:
            where = f"{i.file} " if len(result.files) > 1 else ""
            lines.append(f"  {where}{_place(i)}{i.message}")
    if result.missing:
        shown = "、".join(f"事業No.{_project_label(a)} {a.department}" for a in result.missing[:10])
        more = f" ほか {len(result.missing) - 10} 件" if len(result.missing) > 10 else ""
        lines.append(f"値のない割り当て: {len(result.missing)} 件({shown}{more})")
    following = f"R{int(result.year[1:]) + 1}"
    lines.append(
        f"この評価は、{_label(following)}({following})の処理で前年度の評価として使われます"
        "(テンプレート、集約ブックの前年度比較、評価理由の点検)。受付フォルダには何も置いていません。"
    )
    return "\n".join(lines)


def _project_label(a: Assignment) -> str:
    return a.project.replace("-", "～")


# --- status ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmissionStatus:
    """提出状況 of one year, from its latest run report, as of `today`."""

    year: str
    report_path: Path
    generated_at: str
    rows: int
    assignments: int
    offices: tuple[dict[str, Any], ...]  # the run report's offices entries
    unattributed: tuple[str, ...]
    today: date
    deadline: date | None = None
    deadline_note: str = ""  # why no deadline is shown, when one is set for another year
    last_run: dict[str, Any] | None = None  # outbox/last-run.json: how the last merge ended
    master: str = ""  # the master the report names (a stamped one when the usual was locked)
    stale: tuple[dict[str, Any], ...] = ()  # outputs written under stamped names (run report `stale`)

    @property
    def last_merge_failed(self) -> bool:
        return self.last_run is not None and not lastrun.succeeded(self.last_run)

    @property
    def overdue(self) -> bool:
        return deadline_passed(self.deadline, self.today)

    @property
    def outstanding(self) -> list[dict[str, Any]]:
        """Offices that still owe answers, as the merge decided (merge.office_statuses)."""
        return [o for o in self.offices if owes(o)]

    def status_of(self, office: dict[str, Any]) -> str:
        """The office's status as the master shows it: 受理(後の提出にエラーあり), 期限超過(未提出) once
        the deadline has passed."""
        return office_label(str(office.get("status", "")), bool(office.get("error_files")) and not owes(office),
                            self.overdue)

    @property
    def exit_code(self) -> int:
        """0 every office's answers are in, 1 some office still owes answers or the last merge failed."""
        return 1 if self.outstanding or self.last_merge_failed else 0


def owes(office: dict[str, Any]) -> bool:
    """A run report's office entry still owes answers (the merge's decision, `OfficeStatus.owes`)."""
    return bool(office["owes"]) if "owes" in office else office.get("status") != STATUS_ACCEPTED


def submission_status(settings: Settings, year: str | None = None, today: date | None = None) -> SubmissionStatus:
    """提出状況 of `year` (default `[plan] year`) from its latest run report. InputError (exit 3)
    when there is none yet. The deadline is `[plan] deadline`, shown only for `[plan] year`."""
    year = year or settings.year
    last_run = lastrun.read_last_run(settings.outbox)
    try:
        path, data = latest_report(settings.outbox, year)
    except InputError as exc:
        if last_run is not None and not lastrun.succeeded(last_run):
            raise InputError(f"{lastrun.failed_sentence(last_run)}\n{exc}") from None
        raise
    deadline = _deadline_for(settings, year)
    note = ""
    if deadline is None and settings.deadline is not None:
        note = f"提出期限: 表示しません(設定ファイルの [plan] deadline {wareki(settings.deadline)} は {settings.year} の期限です)"
    return SubmissionStatus(
        year=year,
        report_path=path,
        generated_at=str(data.get("generated_at", "")),
        rows=int(data.get("rows", 0)),
        assignments=int(data.get("assignments", 0)),
        offices=tuple(o for o in data.get("offices", []) if isinstance(o, dict)),
        unattributed=tuple(str(u) for u in data.get("unattributed", [])),
        today=today or date.today(),
        deadline=deadline,
        deadline_note=note,
        last_run=last_run,
        master=str(data.get("master", "")),
        stale=tuple(e for e in data.get("stale", []) if isinstance(e, dict)),
    )


def render_status(s: SubmissionStatus) -> str:
    """The Japanese 提出状況 `status` prints: one line per office, then the 差出課不明 files."""
    label = _label(s.year)
    done = len(s.offices) - len(s.outstanding)
    lines = [lastrun.summary_sentence(s.last_run)] if s.last_run is not None else []
    lines += [
        f"{label}({s.year}) 提出状況(最終集約 {shown_time(s.generated_at)}、{s.report_path})",
        s.deadline_note or deadline_text(s.deadline, s.today),
        f"評価 {s.rows} / {s.assignments} 件。受理 {done} 課、未完了 {len(s.outstanding)} 課。",
    ]
    if s.master:
        lines.append(f"最新の集約ブック: {s.master}")
    for e in s.stale:
        lines.append(
            f"注意: {e.get('output', '出力')} {Path(str(e.get('usual', ''))).name} が開かれていたため、最新は "
            f"{e.get('written', '')} です({Path(str(e.get('usual', ''))).name} は古い内容のままです)。"
        )
    lines += [
        "",
        "課\t状況\t担当\t受理\t未提出\t最終ファイル\t最終受信\t理由",
    ]
    for o in s.offices:
        last = shown_time(o["last_time"]) if o.get("last_time") else NO_VALUE
        lines.append(
            f"{o.get('office', '')}\t{s.status_of(o)}\t{o.get('assignments', 0)}\t{o.get('valid', 0)}\t"
            f"{o.get('missing', 0)}\t{o.get('last_file') or NO_VALUE}\t{last}\t{o.get('reason', '')}"
        )
    if s.unattributed:
        lines.append("")
        lines.append(f"{UNATTRIBUTED}のファイル {len(s.unattributed)} 件(どの課の提出か確認できません):")
        lines.extend(f"  {name}" for name in s.unattributed)
    lines.append("")
    if s.outstanding:
        late = "期限を過ぎても" if s.overdue else "まだ"
        names = "、".join(str(o.get("office", "")) for o in s.outstanding)
        lines.append(f"{late}評価がそろっていない課: {names}")
        lines.append("督促メールの下書きは python -m pipeline remind で outbox/reminders/ に作れます。")
    else:
        lines.append("全ての担当課の評価がそろいました。")
    later = [o for o in s.offices if o.get("error_files") and not owes(o)]
    if later:
        names = "、".join(str(o.get("office", "")) for o in later)
        lines.append(f"受理済みで後の提出にエラーがある課: {names}(督促は不要です。理由の欄のファイルを確認してください)")
    return "\n".join(lines)


# --- remind ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileError:
    """One error of a return, as the reminder lists it."""

    file: str
    sheet: str
    cell: str
    message: str


@dataclass(frozen=True)
class Reminder:
    """The draft for one office that owes answers."""

    office: str
    to: tuple[str, ...]
    subject: str
    body: str
    missing: tuple[Assignment, ...]
    errors: tuple[FileError, ...]
    attachments: tuple[Path, ...] = field(default=())


MAX_ERRORS_PER_FILE = 50  # the rest are in the attached copy's エラー一覧


def plan_reminders(settings: Settings, year: str | None = None, today: date | None = None) -> list[Reminder]:
    """One Reminder per office that owes answers, from the latest run report of `year` (default
    `[plan] year`) and the catalog. Who owes what is the merge's decision (`OfficeStatus`, in the
    report's offices): an office 受理 is never reminded, whatever later files say; any other office
    is told exactly the assignments it still owes, and the errors of its files that still stand."""
    year = year or settings.year
    today = today or date.today()
    _, data = latest_report(settings.outbox, year)
    catalog = load_catalog(year, settings.schemas)
    have = {(e.get("project"), e.get("department")) for e in data.get("evaluations", []) if isinstance(e, dict)}
    files = {str(f.get("name", "")): f for f in data.get("files", []) if isinstance(f, dict)}
    deadline = _deadline_for(settings, year)
    out = []
    for o in (o for o in data.get("offices", []) if isinstance(o, dict)):
        office = o.get("office", "")
        if office not in catalog.offices or not owes(o):
            continue  # answered, or the catalog changed since the run: nothing we can say about it
        if "missing_assignments" in o:
            keys = {(m.get("project"), m.get("department")) for m in o["missing_assignments"]}
            missing = tuple(a for a in catalog.assignments_for_office(office) if a.key in keys)
        else:
            missing = tuple(a for a in catalog.assignments_for_office(office) if a.key not in have)
        current = [files[n] for n in o.get("error_files", []) if n in files]
        errors = tuple(
            FileError(str(f.get("name", "")), str(i.get("sheet", "")), str(i.get("cell", "")), str(i.get("message", "")))
            for f in current for i in _error_issues(f)
        )
        attachments = tuple(_copies_of(settings.outbox / FEEDBACK_DIR, current))
        subject = f"【督促】{catalog.year_label} {catalog.plan} 評価表の提出について({office})"
        body = _body(catalog, office, missing, current, attachments, settings.contact, deadline, today,
                     str(data.get("generated_at", "")))
        out.append(Reminder(office, catalog.offices[office].senders, subject, body, missing, errors, attachments))
    return out


def _copies_of(folder: Path, files: list[dict[str, Any]]) -> Iterator[Path]:
    """The feedback copies of `files` that were made from exactly those files' bytes: a copy whose
    recorded source is another file (another office's workbook of the same name, an older return)
    is never attached."""
    from pipeline.layout import recorded_source

    for f in files:
        name = str(f.get("feedback") or "")
        if not name or Path(name).name != name:
            continue
        path = folder / name
        if path.is_file() and recorded_source(path) == f.get("sha256"):
            yield path


def _body(catalog: Catalog, office: str, missing: Sequence[Assignment], files: list[dict[str, Any]],
          attachments: Sequence[Path], contact: str, deadline: date | None, today: date, generated: str) -> str:
    late = deadline_passed(deadline, today)
    situation = f"{office}の評価がまだそろっていません。"
    lines = [
        f"{office} ご担当者様",
        "",
        f"{contact}です。",
        f"{catalog.year_label} {catalog.plan}の評価表について、{shown_time(generated)} 時点の集約で、{situation}",
    ]
    if deadline is not None:
        lines.append(deadline_text(deadline, today) + ("。至急ご提出ください。" if late else "。"))
    lines += ["お手数ですが、下記をご確認のうえ、評価表を返送してください。", ""]
    if missing:
        lines.append(f"■ まだ受け付けていない評価({len(missing)} 件)")
        for a in missing:
            p = catalog.projects[a.project]
            lines.append(f"  事業No.{p.label} {p.name}(担当課: {a.department})")
        lines.append("")
    if files:
        count = sum(len(_error_issues(f)) for f in files)
        lines.append(f"■ 返送いただいたファイルの誤り({count} 件)")
        for f in files:
            issues = _error_issues(f)
            lines.append(f"  ファイル「{f.get('name', '')}」(受信 {shown_time(str(f.get('received', '')))})")
            for i in issues[:MAX_ERRORS_PER_FILE]:
                lines.append(f"    {_place(i) or 'ファイル全体: '}{i.get('message', '')}")
            if len(issues) > MAX_ERRORS_PER_FILE:
                lines.append(f"    ほか {len(issues) - MAX_ERRORS_PER_FILE} 件(添付の写しの「エラー一覧」シートを見てください)")
        lines.append("")
    if attachments:
        names = "、".join(p.name for p in attachments)
        lines.append(
            f"誤りのあるセルに色とコメントを付けた写しを添付しました({names})。先頭の「エラー一覧」シートから"
            "各セルに移動できます。写しを直して保存し、返送していただいてもかまいません。"
        )
        lines.append("")
    from pipeline.layout import template_name

    lines += [
        f"記入には、お送りしたテンプレート({template_name(catalog, office)})をお使いください。",
        "行や列を削除・移動せず、黄色のセルに記入して返送してください。",
        "",
        contact,
    ]
    return "\n".join(lines) + "\n"


# A draft Outlook opens as unsent (X-Unsent: 1), in UTF-8 with CRLF line ends. The attachment's name
# is RFC 2231 in Content-Disposition (filename*=utf-8''…, one line, no continuations) and an RFC 2047
# encoded-word in Content-Type's name=, which is what older Outlook reads; so those two headers are
# folded with a long line limit, and every other header (the Subject's encoded-words) as usual.
_LONG_LINES = SMTP.clone(max_line_length=998)
_PARAMETER_HEADERS = frozenset({"content-type", "content-disposition"})


class _DraftPolicy(EmailPolicy):
    def fold(self, name: str, value: Any) -> str:
        if name.lower() in _PARAMETER_HEADERS:
            return _LONG_LINES.fold(name, value)
        return super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        if name.lower() in _PARAMETER_HEADERS:
            return _LONG_LINES.fold_binary(name, value)
        return super().fold_binary(name, value)


DRAFT_POLICY = _DraftPolicy(linesep="\r\n")
_MIME_TYPES = {
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".xlsm": "application/vnd.ms-excel.sheet.macroEnabled.12",
}
_ATTR_CHARS = "!#$&+-.^_`|~"  # RFC 2231 attribute-char besides letters and digits


def _encoded_words(text: str) -> str:
    """RFC 2047 base64 encoded-words of at most 75 characters each, split between characters."""
    words, chunk = [], ""
    for ch in text:
        if len((chunk + ch).encode("utf-8")) > 45:  # 45 bytes → 60 base64 characters + 12 = 72
            words.append(chunk)
            chunk = ""
        chunk += ch
    words.append(chunk)
    return " ".join(f"=?utf-8?b?{base64.b64encode(w.encode('utf-8')).decode('ascii')}?=" for w in words if w)


def _attachment(name: str, data: bytes) -> EmailMessage:
    import email

    mime = _MIME_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")
    encoded = urllib.parse.quote(name, safe=_ATTR_CHARS)
    payload = base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")
    raw = (
        f'Content-Type: {mime};\r\n name="{_encoded_words(name)}"\r\n'
        f"Content-Disposition: attachment;\r\n filename*=utf-8''{encoded}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n" + payload
    )
    part = email.message_from_bytes(raw.encode("ascii"), _class=EmailMessage, policy=DRAFT_POLICY)
    assert isinstance(part, EmailMessage)
    return part


def draft_bytes(reminder: Reminder) -> bytes:
    """The .eml of a reminder: To (the office's registered senders, blank when none), Subject,
    X-Unsent: 1, a UTF-8 plain-text body and the feedback copies attached. No From: Outlook fills
    in the account that sends it."""
    msg = EmailMessage(policy=DRAFT_POLICY)
    msg["To"] = ", ".join(reminder.to)
    msg["Subject"] = reminder.subject
    msg["X-Unsent"] = "1"
    msg.set_content(reminder.body, charset="utf-8", cte="base64")
    if reminder.attachments:
        msg.make_mixed()
        for path in reminder.attachments:
            msg.attach(_attachment(path.name, path.read_bytes()))
    return msg.as_bytes(policy=DRAFT_POLICY)


def write_reminders(settings: Settings, today: date | None = None, year: str | None = None) -> list[Path]:
    """Write one draft per office that owes answers to outbox/reminders/<office>.eml (atomically,
    replacing the old ones) and remove the drafts of offices that owe nothing any more. Returns
    the drafts written, in the run report's office order."""
    from pipeline import atomic
    from pipeline.filenames import safe_filename, unique_filename

    reminders = plan_reminders(settings, year, today)
    folder = settings.outbox / REMINDERS_DIR
    written: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic.sweep_temporaries(folder)
        used: set[str] = set()
        for r in reminders:
            target = folder / unique_filename(safe_filename(f"{r.office}.eml"), used)
            # a draft open in Outlook or locked: this one goes to a stamped name (render_reminders says so)
            written.append(atomic.write_bytes_atomically(target, draft_bytes(r)))
        keep = {p.name.casefold() for p in written}
        for old in folder.glob("*.eml"):
            if old.name.casefold() not in keep:
                with contextlib.suppress(PermissionError):  # still open: render_reminders names it
                    old.unlink(missing_ok=True)
    except PipelineError:
        raise
    except OSError as exc:
        raise OutputError(
            f"督促メールの下書きを {folder} に書き込めません({type(exc).__name__}: {exc})。"
            "出力フォルダーの空き容量とアクセス権を確認してください。"
        ) from None
    return written


_STAMPED = re.compile(r"_\d{8}-\d{6}(?:-\d+)?$")


def _usual_draft(path: Path) -> Path:
    """The usual name of a draft written under a stamped name (pipeline.atomic), else `path`."""
    stem = _STAMPED.sub("", path.stem)
    return path.with_name(stem + path.suffix)


def render_reminders(written: Iterable[Path], settings: Settings) -> str:
    """The Japanese summary `remind` prints."""
    written = list(written)
    folder = settings.outbox / REMINDERS_DIR
    if not written:
        return f"評価がそろっていない課はありません。督促メールの下書きは作りませんでした({folder} の古い下書きは削除しました)。"
    lines = [f"作成: {p}" for p in written]
    for p in written:
        usual = _usual_draft(p)
        if usual != p:
            lines.append(
                f"注意: {usual.name} が開かれていたため(Outlook など)、{p.name} に書き出しました。"
                f"{usual.name} は古い下書きです。閉じてから remind をもう一度実行すると {usual.name} に書き直します。"
            )
    current = {p.name.casefold() for p in written} | {_usual_draft(p).name.casefold() for p in written}
    with contextlib.suppress(OSError):
        for old in sorted(folder.glob("*.eml")):
            if old.name.casefold() not in current:
                lines.append(f"注意: 古い下書き {old.name} を削除できませんでした(開かれています)。送信しないでください。")
    lines.append(
        f"督促メールの下書き {len(written)} 件を {folder} に作りました。ダブルクリックすると Outlook で未送信の"
        "メールとして開きます。宛先(To)が空の下書きは、送信前に宛先を入れてください。"
    )
    return "\n".join(lines)
