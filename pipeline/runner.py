"""One run of each command as a library call: validate, merge, templates, demo.

The CLI is a thin shell over these functions; each works from Python too:

    >>> from pipeline.runner import run_merge
    >>> from pipeline.settings import Settings
    >>> run = run_merge(Settings(inbox=Path("inbox"), outbox=Path("outbox")))   # doctest: +SKIP
    >>> run.exit_code, run.report["rows"]                                      # doctest: +SKIP
    (0, 69)

Order of a merge: lock → sweep stale temporaries → walk the inbox → validate (one immutable verdict
per file) → merge (a pure function: verdicts → Outcome) → compare with the previous run (a large
fall in evaluations keeps every previous output and exits 3) → feedback copies (each on its own;
one that fails is `feedback-not-written`), the master, the summary and the run report written to
temporaries → renamed into place. A failure while writing (a full disk) leaves the previous
master, summary and report as they were. Where the platform forks, the summary (with the
validation cache) and the feedback copies are written by two child processes while this one
writes the master (`_Beside`); elsewhere one after the other. The outputs are the same bytes.

Speed (docs/benchmarks.md): Python's collector is paused for the run (`collector_paused`),
inputs are read by two contained readers side by side, nothing keeps an input's bytes once read,
and the master's big sheet is rendered a row at a time (pipeline.xlsxfast).

A night is never stopped by one file: anything that goes wrong with one file becomes an issue on
that file. Exit 3 (a PipelineError) is for faults of the run itself: the lock, the inbox, the
outbox, the disk, the catalog, the settings, the drop guard.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import gc
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pipeline import ingest, jsontext, lastrun
from pipeline.cache import ResultCache
from pipeline.catalog import Catalog, load_catalog
from pipeline.errors import GuardError, InputError, LockedError, OutputError, PipelineError
from pipeline.filenames import MAX_NAME_BYTES, safe_filename, unique_filename
from pipeline.history import PastYear
from pipeline.layout import recorded_source
from pipeline.marks import PART_SEP
from pipeline.merge import merge
from pipeline.report import FileVerdict, Issue, Outcome, RunReport, ValidationReport, make_issue
from pipeline.settings import Settings
from pipeline.staging import Staging
from pipeline.times import now_iso
from pipeline.validate import validate_sources
from pipeline.yearly import deadline_passed

if TYPE_CHECKING:
    from pipeline.reader.annotate import Copy

T = TypeVar("T")

LOCK_NAME = ".merge.lock"
REPORT_NAME = "run-report.json"
HISTORY_DIR = "history"
FEEDBACK_DIR = "feedback"
TEMPLATES_DIR = "templates"
CACHE_DIR = ".cache"
TEMPLATES_LEDGER = "templates-written.json"  # what `templates` last wrote (pipeline.templates)

Progress = Callable[[Iterable[Any]], Iterable[Any]]

# A full disk (or quota, or a read-only outbox) is the run's fault, not one file's: exit 3.
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def _no_progress(files: Iterable[Any]) -> Iterable[Any]:
    return files


# --- validate ---------------------------------------------------------------------------------


def run_validate(
    paths: list[Path], settings: Settings, feedback_dir: Path | None = None, progress: Progress = _no_progress
) -> tuple[ValidationReport, list[Path]]:
    """Validate files and folders; write annotated copies for files with issues when asked."""
    catalog = load_catalog(settings.year, settings.schemas)
    for p in paths:
        if not p.exists():
            raise InputError(f"{p} が見つかりません。ファイルかフォルダーのパスを確認してください。")
    files = ingest.find_files(paths, settings.exclude)
    reading: list[Issue] = []
    verdicts = validate_sources(catalog, ingest.open_inputs(progress(files), settings.limits), settings.limits,
                                notes=reading)
    written: list[Path] = []
    notes: list[Issue] = []
    if feedback_dir:
        copies, notes = write_feedback_copies(verdicts, feedback_dir, settings)
        written = [path for _, path in copies]
    return ValidationReport(tuple(verdicts), (*reading, *notes)), written


def write_feedback_copies(
    verdicts: Iterable[FileVerdict], folder: Path, settings: Settings, stage: Callable[[Path], Path] | None = None
) -> tuple[list[tuple[Path, Path]], list[Issue]]:
    """An annotated copy of each readable workbook that has issues (差し戻し用).

    Each copy is made in a contained worker (pipeline.reader.contained.feedback_copy: openpyxl
    parses the department's bytes there, under the reader's memory cap and timeout) from the inbox
    file read again, and written here. Returns (target, file written) pairs. With `stage`, each
    copy is written to the temporary it gives for the target, and the caller renames it into place
    with the run's other outputs; without, it is written in place (atomically). Each copy is made
    on its own: one that cannot be made or written (openpyxl hangs, runs out of memory, the file is
    locked) is `feedback-not-written` on its file and the others are still written. Only a full
    disk stops the run (OutputError)."""
    from pipeline.reader import contained

    verdicts = list(verdicts)
    written: list[tuple[Path, Path]] = []
    notes: list[Issue] = []
    targets = feedback_targets(verdicts, folder)
    limits = settings.limits
    with contained.open_annotator(settings.limits) as annotator:  # started at the first copy to make
        for v in verdicts:
            if v.name not in targets:
                continue
            target = targets[v.name]
            if v.from_cache and recorded_source(target) == v.sha256:
                written.append((target, target))  # written on the night these bytes arrived
                continue
            try:
                data = ingest.read_input(Path(v.source.path), settings.limits)
                if data is None:
                    continue
                copy = annotator.call(data, Path(v.source.path).name, v.source.sha256, _own_name(v),
                                      list(v.issues), limits, v.office, v.name)
                if copy is None:
                    continue  # the file changed since it was validated: only that is annotated
                folder.mkdir(parents=True, exist_ok=True)
                out = stage(target) if stage is not None else target
                written.append((target, write_copy(copy, out)))
                if copy.said:  # what openpyxl printed while making it: information on the file
                    notes.append(make_issue("library-message", file=v.name, detail=" / ".join(copy.said)))
            except Exception as exc:
                cause = exc if isinstance(exc, OSError) else exc.__cause__
                if isinstance(cause, OSError) and cause.errno in _DISK_ERRNOS:
                    raise OutputError(
                        f"差し戻し用のファイル {target} を書き込めません({cause.strerror or cause})。"
                        "前回の出力はそのまま残っています。ディスクの空きを確認してください。"
                    ) from exc
                notes.append(_feedback_failed(v, exc))
    return written, notes


def write_copy(copy: Copy, out_path: Path) -> Path:
    """Write an annotated copy (pipeline.reader.annotate.Copy) and return its path.

    The path is `out_path`, except: (1) a list-only copy (openpyxl could not load the workbook)
    meant for an .xlsm is written as .xlsx (Excel refuses a macro-free workbook named .xlsm);
    (2) when `out_path` stays locked (the previous copy is open in Excel), pipeline.atomic writes a
    timestamped sibling. Raises OutputError when the copy cannot be written at all (folder
    missing, disk full)."""
    from pipeline.atomic import write_bytes_atomically

    if not copy.full and out_path.suffix.lower() in (".xlsm", ".xltm"):
        out_path = out_path.with_suffix(".xlsx")
    try:
        return write_bytes_atomically(out_path, copy.data)
    except OSError as exc:
        raise OutputError(
            f"差し戻し用のファイル {out_path} を書き込めません({exc.strerror or exc})。"
            "フォルダーがあるか、ディスクに空きがあるか確認してください。"
        ) from exc


def _own_name(v: FileVerdict) -> str:
    """The workbook's own file name: the attachment's, without the message or folders it came in."""
    return v.name.split(PART_SEP)[-1].rsplit("/", 1)[-1]


def _copy_name(v: FileVerdict) -> str:
    """The name a file's copy wants, before it is made safe: its office, then its path relative to
    the inbox with the folders and messages it came in joined by "_" (健康課/評価表.xlsx → 健康課_評価表.xlsx,
    返送.eml ＞ 評価表.xlsx → 健康課_返送_評価表.xlsx). Only the source's own name and office decide it,
    never the other files of the night, so a copy keeps its name from night to night."""
    parts = [p for p in re.split("/|" + re.escape(PART_SEP), v.name) if p]
    if v.office and len(parts) > 1 and parts[0] == v.office:
        parts = parts[1:]  # the office's own folder: its name is the prefix already
    *outer, own = parts or ["_"]
    stem, suffix = Path(own).stem, Path(own).suffix
    if suffix.lower() not in (".xlsx", ".xlsm"):
        suffix = ".xlsx"  # an .ods/.xls return: the copy is an Excel book (the list)
    name = "_".join([*(Path(o).stem for o in outer), stem])
    if v.office and not name.startswith(v.office):
        name = f"{v.office}_{name}"
    return name + suffix


def feedback_targets(verdicts: Iterable[FileVerdict], folder: Path) -> dict[str, Path]:
    """Where each file's annotated copy goes (file name → path in `folder`): one per readable
    workbook that has issues, named `_copy_name` (valid on Windows, ≤ 120 bytes). Where two files'
    names would still be the same (compared as Windows does), each gets "_" and 8 hex digits of
    the sha1 of its inbox-relative name: the copy's name never depends on the order of the night.
    Pure: the run report and `remind` find the copies with it."""
    wanted: dict[str, str] = {}
    for v in verdicts:
        if not v.issues or not v.kind or v.status == "ignored" or v.name in wanted:
            continue  # nothing to say, or never parsed (hostile files are not re-opened)
        wanted[v.name] = safe_filename(_copy_name(v))
    clashes = Counter(n.casefold() for n in wanted.values())
    targets: dict[str, Path] = {}
    used: set[str] = set()
    for source, name in wanted.items():
        if clashes[name.casefold()] > 1:
            suffix = Path(name).suffix
            tag = "_" + hashlib.sha1(source.encode("utf-8", "surrogateescape")).hexdigest()[:8]
            stem = safe_filename(Path(name).stem, max_bytes=MAX_NAME_BYTES - len((tag + suffix).encode("utf-8")))
            name = stem + tag + suffix
        targets[source] = folder / unique_filename(name, used)  # "_2" only if a sha1 prefix ever repeats
    return targets


def _feedback_failed(v: FileVerdict, exc: BaseException) -> Issue:
    return make_issue("feedback-not-written", file=v.name, detail=f"{type(exc).__name__}: {str(exc)[:160]}")


# --- merge ------------------------------------------------------------------------------------


@dataclass
class MergeRun:
    """Everything a merge produced. `run_report` is the typed report; `report` its JSON form."""

    catalog: Catalog
    files: list[FileVerdict]
    outcome: Outcome
    run_report: RunReport
    master: Path
    summary: Path
    report_path: Path
    feedback: list[Path] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # e.g. the master was open in Excel
    report: dict[str, Any] = field(default_factory=dict)
    previous: PastYear | None = None  # last year's evaluations, when known (前年度比較)

    @property
    def exit_code(self) -> int:
        return self.run_report.exit_code

    @property
    def issues(self) -> list[Issue]:
        return self.run_report.issues

    def status_of(self, f: FileVerdict) -> str:
        return self.outcome.statuses.get(f.name, f.status)


def _check_folders(settings: Settings) -> None:
    inbox, outbox = settings.inbox, settings.outbox
    if not inbox.is_dir():
        raise InputError(f"受信フォルダー {inbox} がありません。設定ファイルの [paths] inbox か --inbox を確認してください。")
    try:
        with os.scandir(inbox) as entries:  # closed at once: an open iterator holds the folder
            next(entries, None)
    except OSError as exc:
        raise InputError(f"受信フォルダー {inbox} を読めません ({type(exc).__name__})。アクセス権を確認してください。") from None
    i, o = inbox.resolve(), outbox.resolve()
    if o == i or o.is_relative_to(i) or i.is_relative_to(o):
        # Our own outputs would be read back as returns, or the inbox swept as our output.
        raise InputError(
            f"受信フォルダー {inbox} と出力フォルダー {outbox} が同じか、一方がもう一方の中にあります。"
            "別々のフォルダーにしてください(設定ファイルの [paths] inbox / outbox)。"
        )
    try:
        outbox.mkdir(parents=True, exist_ok=True)
        probe = outbox / f".~probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"出力フォルダー {outbox} に書き込めません ({type(exc).__name__})。空き容量とアクセス権を確認してください。") from None


def run_merge(
    settings: Settings,
    progress: Progress = _no_progress,
    *,
    allow_drop: bool = False,
    previous: Path | None = None,
    today: date | None = None,
    notices: Sequence[str] = (),
) -> MergeRun:
    """The nightly merge. Raises PipelineError subclasses (exit 3) when it cannot run at all.

    `allow_drop` writes the outputs even when the evaluations would fall by more than
    `[guards] max_drop_percent` (or to zero) since the previous run. `previous` names last year's
    evaluations for 前年度比較 and the text checks (default: found in the outbox, see
    pipeline.history). `today` (default: the clock's) decides whether `[plan] deadline` has
    passed: 提出状況 then marks the offices that still owe answers 期限超過. `notices` come before the
    run's own in the run report and on screen (`merge --collect`: the mailbox could not be read)."""
    from filelock import FileLock, Timeout

    catalog = load_catalog(settings.year, settings.schemas)
    _check_folders(settings)
    lock = FileLock(str(settings.outbox / LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise LockedError(
            f"別の集約処理が実行中です({settings.outbox / LOCK_NAME})。終わってからもう一度実行してください。"
        ) from None
    try:
        with collector_paused():
            return _merge_locked(catalog, settings, progress, allow_drop, previous, today or date.today(), notices)
    finally:
        lock.release()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the run, and what exists when it starts (the
    imports, the catalog) frozen out of its view.

    A merge builds millions of long-lived objects (the catalog, every row, the workbook's cells)
    and makes few reference cycles; with the collector on, each generation-2 pass walks all of
    them again (about 5 s of a 60,000-row night). Memory is freed by reference counting as usual;
    the few cycles (an exception's traceback, a closed workbook) are collected when the run ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()


def previous_run(outbox: Path, catalog: Catalog) -> dict[tuple[str, str], str] | None:
    """The previous run of the same fiscal year: each evaluation of its master → the file it came
    from (run-report.json). None when there is none (first run, another year, unreadable)."""
    try:
        data = json.loads((outbox / REPORT_NAME).read_text(encoding="utf-8"))
        if data.get("fiscal_year") != catalog.year:
            return None
        return {(e["project"], e["department"]): e["file"] for e in data["evaluations"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _preflight(catalog: Catalog, verdicts: list[FileVerdict]) -> list[FileVerdict]:
    """Each file's rows checked against what the master writer accepts, file by file: a file whose
    rows could not be written is rejected with internal-error, and the merge chooses without it.
    The only check of the night's rows: the writers are told they are checked (rows_checked)."""
    from pipeline import master

    out = []
    for v in verdicts:
        try:
            master.check_rows(catalog, v.rows)
        except Exception as exc:
            v = v.failed(make_issue("internal-error", file=v.name, detail=f"{type(exc).__name__}: {str(exc)[:160]}"))
        out.append(v)
    return out


def _guard(outcome: Outcome, settings: Settings) -> None:
    """Never a silent wipe: refuse a fall to zero, or by more than max_drop_percent."""
    before, after = outcome.previous_rows, len(outcome.rows)
    if not before or after >= before:
        return
    fall = before - after
    if after > 0 and fall * 100 <= settings.max_drop_percent * before:
        return
    why = Counter(d.reason.split("(")[0] for d in outcome.dropped)
    reasons = "、".join(f"{r} {n} 件" for r, n in why.most_common()) or "不明"
    raise GuardError(
        f"評価の件数が前回の {before} 件から {after} 件に減る({fall} 件、{fall * 100 / before:.0f}%)ため、"
        f"出力を更新しませんでした(上限 {settings.max_drop_percent:g}%)。前回の集約ブック・集計ブック・実行レポートは"
        f"そのまま残っています。消える評価の理由: {reasons}。受付フォルダ({settings.inbox})がつながっているか、"
        "ファイルが移動・削除されていないか確認してください。意図した変更であれば merge --allow-drop で実行してください。"
    )


def _review_texts(catalog: Catalog, settings: Settings, outcome: Outcome, past: PastYear | None
                  ) -> tuple[Outcome, str]:
    """The text checks (pipeline.textchecks) over the chosen rows, with the acknowledgements of this
    year. Returns the outcome and a digest of what they read (for the run's fingerprint)."""
    from pipeline import textchecks

    schemas = settings.schemas
    # A schemas folder of the staff's own made before the rule table existed uses the shipped rules.
    own_rules = schemas is not None and (schemas / textchecks.RULES_FILE).is_file()
    rules = textchecks.load_text_rules(schemas if own_rules else None)
    acks = textchecks.load_acknowledgements(schemas, catalog)
    previous = {k: e.result for k, e in past.evaluations.items()} if past is not None else None
    reviewed = textchecks.review_texts(outcome, rules, acks, catalog.year, previous)
    context = [
        [past.year, Path(past.source).name, sorted([*k, e.rating, e.result, e.outlook]
                                                   for k, e in past.evaluations.items()),
         sorted(past.plan) if past.plan is not None else None] if past is not None else None,
        [[r.code, sorted(r.ratings), r.column, r.match, r.words, r.patterns] for r in rules],
        [dataclasses.astuple(a) for a in acks],
    ]
    return reviewed, json.dumps(context, ensure_ascii=False)


def _merge_locked(
    catalog: Catalog, settings: Settings, progress: Progress, allow_drop: bool, previous: Path | None, today: date,
    given_notices: Sequence[str] = (),
) -> MergeRun:
    from pipeline import atomic, master

    outbox = settings.outbox
    past = load_previous_year(settings, catalog, previous)
    atomic.sweep_all([outbox, *(outbox / d for d in (HISTORY_DIR, FEEDBACK_DIR, CACHE_DIR, TEMPLATES_DIR))])
    files = ingest.walk(settings.inbox, settings.exclude)
    cache = ResultCache(outbox / CACHE_DIR, catalog.reading_version, settings.limits)
    reading: list[Issue] = []
    verdicts = validate_sources(catalog, ingest.open_inputs(progress(files), settings.limits), settings.limits, cache,
                                notes=reading)
    verdicts = _preflight(catalog, verdicts)
    outcome = merge(catalog, verdicts, previous_run(outbox, catalog)).with_notes(reading)
    if not allow_drop:
        _guard(outcome, settings)
    outcome, context = _review_texts(catalog, settings, outcome, past)
    failed_nights = lastrun.failed_nights(outbox)  # listed on 提出状況 (last-run.json, written by the CLI)
    context += json.dumps(failed_nights, ensure_ascii=False)
    # The master shows the newest input time, not the clock: the same inbox gives the same cells.
    generated = max((v.received for v in verdicts if v.received), default="")
    # Tonight's outputs: each written in full to a temporary beside its target, then all renamed into
    # place together (pipeline.staging), so a failure before the commit leaves every previous output.
    staging = Staging()
    master_target = outbox / master.master_name(catalog)
    summary_target = outbox / master.summary_name(catalog)
    report_path = outbox / REPORT_NAME
    history = outbox / HISTORY_DIR
    history_path = history / f"run-report-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    feedback_names: dict[str, str] = {}

    report_dict: dict[str, Any] = {}

    def report_blob(final: Outcome, master_path: Path, summary_path: Path) -> tuple[RunReport, bytes]:
        report = RunReport(
            fiscal_year=catalog.year,
            catalog_version=catalog.version,
            assignments=len(catalog.assignments),
            goals=final.goal_counts(catalog),
            master=str(master_path),
            summary=str(summary_path),
            generated_at=now_iso(),
            files=tuple(verdicts),
            outcome=final,
            notices=(*given_notices, *staging.notices),  # then where a locked output went instead
            previous_year={"year": past.year, "source": past.source} if past is not None else None,
            feedback=feedback_names,
            stale=tuple(dict(e) for e in staging.stale),
        )
        report_dict.clear()
        report_dict.update(report.to_dict())  # made once: MergeRun.report is the same dict
        return report, jsontext.dumps_utf8(report_dict)  # = json.dumps(…, indent=2).encode()

    # Nothing new since the last run (same inputs, catalog and code) and its workbooks untouched:
    # they are already what this run would write, byte for byte, so they are kept as they are.
    overdue = deadline_passed(settings.deadline, today)
    fingerprint = run_fingerprint(catalog, verdicts, context, overdue=overdue)
    unchanged = _unchanged_outputs(outbox, fingerprint)
    if unchanged != (master_target, summary_target):
        unchanged = None  # last night's went to stamped names: tonight tries the usual ones again
    # Everything is staged first (feedback copies, master, summary, report), then renamed into
    # place: a full disk while writing any of them leaves every previous output as it was.
    feedback: list[Path] = []
    summary_job: _Beside[None] | None = None
    cache_tmp: Path | None = None
    written_all = False
    copies_job: _Beside[tuple[list[tuple[Path, Path]], list[Issue]]] | None = None
    try:
        try:
            copies: list[tuple[Path, Path]] = []
            targets = feedback_targets(verdicts, outbox / FEEDBACK_DIR)
            sha = {v.name: v.sha256 for v in verdicts}
            if unchanged and any(recorded_source(t) != sha[n] for n, t in targets.items()):
                unchanged = None  # a copy is missing or holds other bytes than its source's: write again
            if unchanged:
                master_path, summary_path = unchanged
                # the copies written on the night these inputs arrived
                feedback_names.update({n: t.name for n, t in targets.items()})
            else:
                # On a machine that forks, two children write beside this process, which writes the
                # master: the summary (it needs only the rows) and the feedback copies (whose failures
                # the master lists last, in 検証結果: it waits for them only there).
                summary_tmp = staging.reserve(summary_target, "集計ブック")  # written beside, in a child
                if cache.changed:  # pickled beside too, and renamed into place at the end
                    cache.path.parent.mkdir(parents=True, exist_ok=True)
                    cache_tmp = atomic.temp_path_for(cache.path)

                def summary_and_cache() -> None:
                    master.write_summary(summary_tmp, catalog, outcome, generated=generated, previous=past,
                                         rows_checked=True)
                    if cache_tmp is not None:
                        with contextlib.suppress(OSError):  # the cache is an optimisation only
                            cache.write_to(cache_tmp)

                summary_job = _Beside(summary_and_cache)
                copies_job = _Beside(lambda: _staged_copies(verdicts, outbox / FEEDBACK_DIR, settings))
                before = outcome

                def copied() -> list[Issue]:
                    nonlocal copies, outcome
                    copies, failed = copies_job.result()
                    for target, tmp in copies:
                        if tmp != target:  # a copy of an earlier night's bytes stays as it is
                            staging.adopt(target, tmp, "差し戻し用の写し")
                    made = {target for target, _ in copies}
                    feedback_names.update({n: t.name for n, t in targets.items() if t in made})
                    outcome = before.with_notes(failed)
                    return [i for v in verdicts for i in v.issues] + list(outcome.notes)

                issues = _Later(copied)
                gc.freeze()  # what the run holds: out of the collector's view while the master is written
                staging.stage(
                    master_target, "集約ブック",
                    lambda tmp: master.write_master(tmp, catalog, before, verdicts, issues, generated=generated,
                                                    previous=past, today=today,
                                                    deadline=settings.deadline,
                                                    goal_sheets=settings.goal_sheets,
                                                    failed_nights=failed_nights, rows_checked=True),
                )
                gc.collect()  # the closed workbook is a web of cycles: freed now, not when the run ends
                len(issues)  # the copies are done (and their failures known) before anything is renamed
                summary_job.result()
            run_report, blob = report_blob(outcome, master_target, summary_target)
            history.mkdir(exist_ok=True)
            staging.stage(report_path, "実行レポート", lambda tmp: tmp.write_bytes(blob))
            if not unchanged:
                staged_copies = [target for target, tmp in copies if tmp != target]
                done = staging.commit(*staged_copies, master_target, summary_target)
                source_of = {t: n for n, t in targets.items()}
                for target, _ in copies:
                    path = done.get(target, target)
                    feedback.append(path)
                    feedback_names[source_of[target]] = path.name  # the copy actually written
                master_path, summary_path = done[master_target], done[summary_target]
        except PipelineError:
            raise
        except OSError as exc:
            raise OutputError(
                f"出力の書き込みに失敗しました({type(exc).__name__}: {exc})。前回の出力はそのまま残っています。"
                "空き容量とアクセス権を確認してください。"
            ) from None
        except Exception as exc:  # a fault of ours while writing: the run's, not one file's
            raise OutputError(
                f"集約ブックの作成中に内部エラーが起きました({type(exc).__name__}: {str(exc)[:200]})。"
                "前回の出力はそのまま残っています。このメッセージを添えてシステム担当に連絡してください。"
            ) from exc
        try:
            if staging.stale:  # written under other names: the report says so
                run_report, blob = report_blob(outcome, master_path, summary_path)
                staging.stage(report_path, "実行レポート", lambda tmp: tmp.write_bytes(blob))
            report_written = staging.commit(report_path)[report_path]
            if report_written != report_path:  # the report itself names where it went
                run_report, blob = report_blob(outcome, master_path, summary_path)
                atomic.write_bytes_atomically(report_written, blob, fallback=False)
            staging.stage(history_path, "実行レポートの履歴", lambda tmp: tmp.write_bytes(blob))
            staging.commit(history_path)
            _prune_history(history, settings.keep_history)
            report_path = report_written
            _settle_stamped(outbox, staging.stale, {m for m in (master_path, summary_path, report_path, *feedback)})
        except OSError as exc:
            raise OutputError(f"実行レポートを書き込めません({type(exc).__name__}: {exc})。") from None
        written_all = True
    finally:
        if cache_tmp is not None and not written_all:
            with contextlib.suppress(OSError):
                cache_tmp.unlink(missing_ok=True)
        for job in (summary_job, copies_job):
            if job is not None:
                job.wait()  # a child still writing would leave its temporaries behind
        if not written_all and copies_job is not None and copies_job.wait()[0] == "ok":
            for target, tmp in copies_job.wait()[1][0]:  # made before the night failed, maybe never taken
                if tmp != target:
                    staging.adopt(target, tmp, "差し戻し用の写し")
        staging.discard()  # whatever was not renamed into place (the sweep would get it next time)
    with contextlib.suppress(OSError):  # the caches are an optimisation only
        if cache_tmp is None:
            cache.save()
        elif cache_tmp.stat().st_size:  # pickled beside the master
            atomic.write_atomically(cache.path, lambda t: os.replace(cache_tmp, t))
        _remember_outputs(outbox, fingerprint, master_path, summary_path)
    if cache_tmp is not None:
        with contextlib.suppress(OSError):
            cache_tmp.unlink(missing_ok=True)
    return MergeRun(catalog, verdicts, outcome, run_report, master_path, summary_path, report_path, feedback,
                    [*given_notices, *staging.notices], report_dict or run_report.to_dict(), past)


def _staged_copies(
    verdicts: list[FileVerdict], folder: Path, settings: Settings
) -> tuple[list[tuple[Path, Path]], list[Issue]]:
    """write_feedback_copies to temporaries (renamed into place with the run's other outputs);
    when it fails, the temporaries it made are removed before the failure is passed on."""

    staging = Staging()  # the copies' temporaries, handed to the parent, or removed when this fails
    try:
        return write_feedback_copies(verdicts, folder, settings,
                                     stage=lambda target: staging.reserve(target, "差し戻し用の写し"))
    except BaseException:
        staging.discard()
        raise


class _Later(Sequence[Issue]):
    """A list made when first read (the master's 検証結果, which waits for the feedback copies)."""

    def __init__(self, make: Callable[[], list[Issue]]) -> None:
        self._make = make
        self._items: list[Issue] | None = None

    def _list(self) -> list[Issue]:
        if self._items is None:
            self._items = self._make()
        return self._items

    def __len__(self) -> int:
        return len(self._list())

    def __getitem__(self, index: Any) -> Any:
        return self._list()[index]

    def __iter__(self) -> Iterator[Issue]:
        return iter(self._list())


class _Beside(Generic[T]):
    """`job` run in a forked child when the platform forks (sandbox.start_method), else here at
    once. `result()` gives its value or raises what it raised; `wait()` only waits. The child sends
    its outcome back as the contained reader's workers do (sandbox.answer) and leaves without
    running anything else of this process."""

    def __init__(self, job: Callable[[], T]) -> None:
        from pipeline.reader import sandbox

        self._pid = 0
        self._answer: tuple[str, Any] | None = None
        if sandbox.start_method() != "fork":
            self._answer = self._run(job)
            return
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            status = 1
            try:
                os.close(read_fd)
                blob = sandbox.answer(job, ())
                with os.fdopen(write_fd, "wb") as out:
                    out.write(blob)
                status = 0
            finally:
                os._exit(status)
        os.close(write_fd)
        self._pid, self._fd = pid, read_fd

    @staticmethod
    def _run(job: Callable[[], T]) -> tuple[str, Any]:
        try:
            return ("ok", job())
        except BaseException as exc:
            return ("raise", exc)

    def wait(self) -> tuple[str, Any]:
        import pickle

        if self._answer is None:
            with os.fdopen(self._fd, "rb") as fh:
                blob = fh.read()
            _, wait_status = os.waitpid(self._pid, 0)
            self._answer = pickle.loads(blob) if blob else (
                "raise", RuntimeError(f"the process writing beside the master died (wait status {wait_status})"))
        return self._answer

    def result(self) -> T:
        status, value = self.wait()
        if status == "raise":
            raise value
        if status != "ok":  # "memory" / "crash": the child could not return what it did
            raise RuntimeError(f"the process writing beside the master failed ({status}: {value})")
        return value  # type: ignore[no-any-return]


LAST_RUN = "last-run.json"


def run_fingerprint(catalog: Catalog, verdicts: list[FileVerdict], context: str = "", *,
                    overdue: bool = False) -> str:
    """What the workbooks of a run depend on: every input (name, content, times, sender, office),
    the catalog, this code, `context` (last year's evaluations, the text rules and the
    acknowledgements) and whether the deadline has passed (提出状況 marks 期限超過). Equal
    fingerprints give identical workbooks."""
    from pipeline.cache import code_version

    inputs = sorted(
        (f.name, f.source.sha256, f.received, f.saved, f.sender, f.source.subject, f.status, f.office)
        for f in verdicts
    )
    blob = json.dumps([catalog.version, code_version(), inputs, context, overdue], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()  # any text: never raises


def _stat(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _unchanged_outputs(outbox: Path, fingerprint: str) -> tuple[Path, Path] | None:
    """The last run's master and summary, when this run would write them again unchanged."""
    try:
        last = json.loads((outbox / CACHE_DIR / LAST_RUN).read_text(encoding="utf-8"))
        paths = Path(last["master"]), Path(last["summary"])
        same = last["fingerprint"] == fingerprint and [_stat(p) for p in paths] == last["stats"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return paths if same else None


def _remember_outputs(outbox: Path, fingerprint: str, master_path: Path, summary_path: Path) -> None:
    from pipeline.atomic import write_bytes_atomically

    record = {
        "fingerprint": fingerprint,
        "master": str(master_path),
        "summary": str(summary_path),
        "stats": [_stat(master_path), _stat(summary_path)],
    }
    (outbox / CACHE_DIR).mkdir(exist_ok=True)
    write_bytes_atomically(outbox / CACHE_DIR / LAST_RUN, json.dumps(record).encode("utf-8"))


STAMPED = "stamped.json"  # in the cache folder: the outputs written under stamped names, not yet superseded


def _settle_stamped(outbox: Path, stale: list[dict[str, str]], written: set[Path]) -> None:
    """Remove the stamped outputs of earlier nights whose usual file this run has written again (it
    holds the current outcome now), and remember tonight's stamped ones. A stamped file still open
    stays listed and goes on a later night."""
    from pipeline.atomic import write_bytes_atomically

    ledger = outbox / CACHE_DIR / STAMPED
    try:
        earlier = json.loads(ledger.read_text(encoding="utf-8"))
        earlier = [e for e in earlier if isinstance(e, dict) and {"usual", "written"} <= e.keys()]
    except (OSError, ValueError, AttributeError):
        earlier = []
    usual_now = {str(p) for p in written}
    keep: list[dict[str, str]] = []
    for entry in earlier:
        if entry["usual"] in usual_now and entry["written"] not in usual_now:
            try:
                Path(entry["written"]).unlink(missing_ok=True)
                continue
            except OSError:  # open in Excel right now: next time
                pass
        keep.append(entry)
    keep += [e for e in stale if e not in keep]
    with contextlib.suppress(OSError):
        (outbox / CACHE_DIR).mkdir(exist_ok=True)
        write_bytes_atomically(ledger, json.dumps(keep, ensure_ascii=False).encode("utf-8"))


def _prune_history(history: Path, keep: int) -> None:
    old = sorted(history.glob("run-report-*.json"))[:-keep] if keep > 0 else []
    for p in old:
        p.unlink(missing_ok=True)


# --- last year -------------------------------------------------------------------------------


def load_previous_year(settings: Settings, catalog: Catalog, previous: Path | None = None) -> PastYear | None:
    """Last year's evaluations (pipeline.history.previous_year), with last year's plan when its
    catalog is in the schemas folder (it tells a new assignment, 新規, from one not returned).

    A file named by the caller must give them: one that is missing, unreadable, empty or of this
    year is an InputError (exit 3), never a silent run without last year."""
    from pipeline import history

    if previous is not None:
        if not previous.is_file():
            raise InputError(f"前年度の評価のファイル {previous} が見つかりません。パスを確認してください。")
        past = history.previous_year(settings.outbox, catalog, previous)
        if past is None or not past.evaluations:
            raise InputError(
                f"{previous} から前年度の評価を読めません。前年度の集約ブック(評価一覧 シートのあるもの)か、"
                "import-published で保存した表を指定してください。"
            )
        if past.year.upper() == catalog.year:
            raise InputError(f"{previous} は {catalog.year} の評価です。前年度の評価のファイルを指定してください。")
    else:
        past = history.previous_year(settings.outbox, catalog)
    if past is None or not past.year:
        return None
    try:
        plan = load_catalog(past.year, settings.schemas)
    except PipelineError:  # last year's plan is not in this schemas folder: 新規 is not told apart
        return past
    return dataclasses.replace(past, plan=frozenset(a.key for a in plan.assignments))


# --- templates and the demo -------------------------------------------------------------------


def run_templates(settings: Settings, out_dir: Path, previous: Path | None = None, *, force: bool = False
                  ) -> list[Path]:
    """One template per office. When last year's evaluations are known (`previous`, a master of ours
    or a stored table; else found in the outbox by pipeline.history), each row also shows them."""
    from pipeline.templates import write_templates

    catalog = load_catalog(settings.year, settings.schemas)
    past = load_previous_year(settings, catalog, previous)
    try:
        return write_templates(catalog, out_dir, deadline=settings.deadline, contact=settings.contact,
                               previous=past, force=force, ledger=settings.outbox / CACHE_DIR / TEMPLATES_LEDGER)
    except OSError as exc:
        raise OutputError(f"テンプレートを {out_dir} に書き込めません({type(exc).__name__}: {exc})。") from None


def run_demo(
    settings: Settings, demo_inbox: Path | None = None, progress: Progress = _no_progress, *, outbox: Path | None = None
) -> MergeRun:
    """Templates → filled in with the published R6 answers, as each department would → merge.

    A sandbox: it writes only into its own folders (default demo/inbox and demo/outbox), never the
    live inbox or outbox of the settings, and always runs the shipped R6 plan (the published data)."""
    from pipeline.demo import DEMO_DIR, DEMO_RESULTS, fill_returns

    demo = dataclasses.replace(
        settings,
        inbox=demo_inbox or DEMO_DIR / "inbox",
        outbox=outbox or DEMO_DIR / "outbox",
        year="R6",
        schemas=None,
        exclude=(),
    )
    templates_dir = demo.outbox / TEMPLATES_DIR
    run_templates(demo, templates_dir)
    catalog = load_catalog(demo.year, demo.schemas)
    demo.inbox.mkdir(parents=True, exist_ok=True)
    fill_returns(catalog, templates_dir, DEMO_RESULTS, demo.inbox)
    return run_merge(demo, progress)

