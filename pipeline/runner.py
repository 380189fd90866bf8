"""One run of each command as a library call: validate, merge, templates, demo.

The CLI is a thin shell over these functions; each works from Python too:

    >>> from pipeline.runner import run_merge
    >>> from pipeline.settings import Settings
    >>> run = run_merge(Settings(inbox=Path("inbox"), outbox=Path("outbox")))   # doctest: +SKIP
    >>> run.exit_code, run.report["rows"]                                      # doctest: +SKIP
    (0, 69)

Order of a merge: lock → sweep stale temporaries → read and validate → merge (pure) → write the
master, the summary and the run report to temporaries, and the feedback copies (each atomically) →
rename the master, the summary and the report into place. A failure while writing (a full disk)
leaves the previous master, summary and report as they were.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline import ingest
from pipeline.cache import ResultCache
from pipeline.catalog import Catalog, load_catalog
from pipeline.errors import InputError, LockedError, OutputError
from pipeline.filenames import safe_filename, unique_filename
from pipeline.merge import MergeResult, merge_files
from pipeline.report import FileReport, Issue, ValidationReport, issue_entry
from pipeline.settings import Settings
from pipeline.validate import validate_sources

LOCK_NAME = ".merge.lock"
REPORT_NAME = "run-report.json"
HISTORY_DIR = "history"
FEEDBACK_DIR = "feedback"
CACHE_DIR = ".cache"
TEMPLATES_DIR = "templates"

Progress = Callable[[Iterable[Path]], Iterable[Path]]


def _no_progress(files: Iterable[Path]) -> Iterable[Path]:
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
    files = ingest.find_files(paths)
    reports = validate_sources(catalog, ingest.open_inputs(progress(files), settings.limits), settings.limits)
    written = write_feedback_copies(reports, feedback_dir, settings) if feedback_dir else []
    return ValidationReport(reports), written


def write_feedback_copies(reports: list[FileReport], folder: Path, settings: Settings) -> list[Path]:
    """An annotated copy of each readable workbook that has issues (差し戻し用)."""
    written: list[Path] = []
    used: set[str] = set()
    for report in reports:
        if not report.issues or not report.kind:
            continue  # nothing to say, or never parsed (hostile files are not re-opened)
        name = report.name.split(" › ")[-1]
        candidate = unique_filename(safe_filename(name), used)  # valid on Windows, ≤ 120 bytes
        if report.from_cache and (folder / candidate).exists():
            written.append(folder / candidate)  # written on the night these bytes arrived
            continue
        data = ingest.reload(report, settings.limits)
        if data is None:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        from pipeline.feedback import write_feedback  # openpyxl: only when there is something to say

        written.append(write_feedback(data, name, report.issues, folder / candidate))
    return written


# --- merge ------------------------------------------------------------------------------------


@dataclass
class MergeRun:
    """Everything a merge produced; `report` is what run-report.json holds."""

    catalog: Catalog
    files: list[FileReport]
    result: MergeResult
    issues: list[Issue]
    report: dict[str, Any]
    master: Path
    summary: Path
    report_path: Path
    feedback: list[Path] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # e.g. the master was open in Excel

    @property
    def exit_code(self) -> int:
        return ValidationReport(self.files).exit_code


def _check_folders(settings: Settings) -> None:
    inbox, outbox = settings.inbox, settings.outbox
    if not inbox.is_dir():
        raise InputError(f"受信フォルダー {inbox} がありません。設定ファイルの [paths] inbox か --inbox を確認してください。")
    try:
        next(iter(os.scandir(inbox)), None)
    except OSError as exc:
        raise InputError(f"受信フォルダー {inbox} を読めません ({type(exc).__name__})。アクセス権を確認してください。") from None
    try:
        outbox.mkdir(parents=True, exist_ok=True)
        probe = outbox / f".~probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"出力フォルダー {outbox} に書き込めません ({type(exc).__name__})。空き容量とアクセス権を確認してください。") from None


def run_merge(settings: Settings, progress: Progress = _no_progress) -> MergeRun:
    """The nightly merge. Raises PipelineError subclasses (exit 3) when it cannot run at all."""
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
        return _merge_locked(catalog, settings, progress)
    finally:
        lock.release()


def _merge_locked(catalog: Catalog, settings: Settings, progress: Progress) -> MergeRun:
    from pipeline import atomic, master

    outbox = settings.outbox
    atomic.sweep_all([outbox, *(outbox / d for d in (HISTORY_DIR, FEEDBACK_DIR, CACHE_DIR, TEMPLATES_DIR))])
    files = ingest.find_files([settings.inbox])
    cache = ResultCache(outbox / CACHE_DIR, catalog.version, settings.limits)
    reports = validate_sources(catalog, ingest.open_inputs(progress(files), settings.limits), settings.limits, cache)
    result = merge_files(catalog, reports)
    issues = [i for f in reports for i in f.issues] + result.notes
    # The master shows the newest input time, not the clock: the same inbox gives the same cells.
    generated = max((f.received for f in reports if f.received), default="")
    notices: list[str] = []

    def written(target: Path, path: Path, what: str) -> Path:
        if path != target:
            notices.append(
                f"{what} {target.name} が開かれていたため(Excel など)、{path.name} に書き出しました。"
            )
        return path

    # Fix (issue 5): every output is first written in full to a temporary beside it, and only then
    # renamed over the old one. Before, the master was replaced before the summary and the report
    # were written, so a full disk while writing those left a new master beside an old summary and
    # report, and the message "前回の出力はそのまま残っています" was false. Writing is where the space
    # runs out; the renames at the end need none.
    master_target = outbox / master.master_name(catalog)
    summary_target = outbox / master.summary_name(catalog)
    report_path = outbox / REPORT_NAME
    history = outbox / HISTORY_DIR
    history_path = history / f"run-report-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    staged: list[Path] = []

    def stage(target: Path, write: Callable[[Path], object]) -> Path:
        tmp = atomic.temp_path_for(target)
        staged.append(tmp)
        write(tmp)
        return tmp

    def commit(target: Path, tmp: Path) -> Path:
        # write_atomically's own temporary receives the staged file by a rename (no copy), then
        # it is fsynced and replaced, with the fallback name when the target is open in Excel.
        return atomic.write_atomically(target, lambda t: os.replace(tmp, t))

    def report_blob(master_path: Path, summary_path: Path) -> tuple[dict[str, Any], bytes]:
        report = build_run_report(catalog, reports, result, master_path, summary_path, notices)
        return report, json.dumps(report, ensure_ascii=False, indent=2).encode("utf-8")

    # Nothing new since the last run (same inputs, catalog and code) and its workbooks untouched:
    # they are already what this run would write, byte for byte, so they are kept as they are.
    fingerprint = run_fingerprint(catalog, reports)
    unchanged = _unchanged_outputs(outbox, fingerprint)
    try:
        try:
            if unchanged:
                master_path, summary_path = unchanged
                feedback = []
            else:
                master_tmp = stage(
                    master_target,
                    lambda tmp: master.write_master(tmp, catalog, result, reports, issues, generated=generated),
                )
                summary_tmp = stage(
                    summary_target, lambda tmp: master.write_summary(tmp, catalog, result, generated=generated)
                )
            report, blob = report_blob(master_target, summary_target)
            history.mkdir(exist_ok=True)
            report_tmp = stage(report_path, lambda tmp: tmp.write_bytes(blob))
            history_tmp = stage(history_path, lambda tmp: tmp.write_bytes(blob))
            if not unchanged:
                feedback = write_feedback_copies(reports, outbox / FEEDBACK_DIR, settings)
                master_path = written(master_target, commit(master_target, master_tmp), "集約ブック")
                summary_path = written(summary_target, commit(summary_target, summary_tmp), "集計ブック")
        except OSError as exc:
            raise OutputError(
                f"出力の書き込みに失敗しました({type(exc).__name__}: {exc})。前回の出力はそのまま残っています。"
                "空き容量とアクセス権を確認してください。"
            ) from None
        try:
            if (master_path, summary_path) != (master_target, summary_target):  # written under another name
                report, blob = report_blob(master_path, summary_path)
                report_tmp = stage(report_path, lambda tmp: tmp.write_bytes(blob))
                history_tmp = stage(history_path, lambda tmp: tmp.write_bytes(blob))
            commit(report_path, report_tmp)
            commit(history_path, history_tmp)
            _prune_history(history, settings.keep_history)
        except OSError as exc:
            raise OutputError(f"実行レポートを書き込めません({type(exc).__name__}: {exc})。") from None
    finally:
        for tmp in staged:  # whatever was not renamed into place (the sweep would get it next time)
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # the caches are an optimisation only
        cache.save()
        _remember_outputs(outbox, fingerprint, master_path, summary_path)
    return MergeRun(catalog, reports, result, issues, report, master_path, summary_path, report_path, feedback, notices)


LAST_RUN = "last-run.json"


def run_fingerprint(catalog: Catalog, reports: list[FileReport]) -> str:
    """What the workbooks of a run depend on: every input (name, content, time, sender), the
    catalog and this code. Equal fingerprints give identical workbooks."""
    from pipeline.cache import code_version

    inputs = sorted((f.name, f.sha256, f.received, f.sender, f.subject, f.status) for f in reports)
    blob = json.dumps([catalog.version, code_version(), inputs], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


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


def _prune_history(history: Path, keep: int) -> None:
    old = sorted(history.glob("run-report-*.json"))[:-keep] if keep > 0 else []
    for p in old:
        p.unlink(missing_ok=True)


def build_run_report(
    catalog: Catalog,
    files: list[FileReport],
    result: MergeResult,
    master_path: Path,
    summary_path: Path,
    notices: list[str],
) -> dict[str, Any]:
    """run-report.json: the contract keys (fiscal_year, rows, goals, master, files) and more."""
    notes_by_file: dict[str, list[Issue]] = {}
    for n in result.notes:
        notes_by_file.setdefault(n.file, []).append(n)
    out_files = []
    for f in files:
        entry = f.to_dict()
        entry["issues"] += [issue_entry(i) for i in notes_by_file.get(f.name, [])]
        out_files.append(entry)
    validation = ValidationReport(files)
    counts = validation.counts()
    return {
        "fiscal_year": catalog.year,
        "rows": len(result.rows),
        "goals": result.goal_counts(catalog),
        "master": str(master_path),
        "summary": str(summary_path),
        "catalog_version": catalog.version,
        "assignments": len(catalog.assignments),
        "generated_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "exit_code": validation.exit_code,
        "statuses": counts["statuses"],
        "errors": counts["errors"],
        "warnings": counts["warnings"],
        "offices": [
            {
                "office": o.office,
                "assignments": o.assignments,
                "received": o.received,
                "valid": o.valid,
                "missing": o.missing,
                "status": o.status,
                "last_file": o.last_file,
                "last_time": o.last_time,
                "senders": o.senders,
            }
            for o in result.offices
        ],
        "notices": notices,
        "files": out_files,
    }


# --- templates and the demo -------------------------------------------------------------------


def run_templates(settings: Settings, out_dir: Path) -> list[Path]:
    from pipeline.templates import write_templates

    catalog = load_catalog(settings.year, settings.schemas)
    try:
        return write_templates(catalog, out_dir, deadline=settings.deadline, contact=settings.contact)
    except OSError as exc:
        raise OutputError(f"テンプレートを {out_dir} に書き込めません({type(exc).__name__}: {exc})。") from None


def run_demo(settings: Settings, demo_inbox: Path, progress: Progress = _no_progress) -> MergeRun:
    """Templates → filled in with the published R6 answers, as each department would → merge."""
    from pipeline.demo import DEMO_RESULTS, fill_returns

    templates_dir = settings.outbox / "templates"
    run_templates(settings, templates_dir)
    catalog = load_catalog(settings.year, settings.schemas)
    fill_returns(catalog, templates_dir, DEMO_RESULTS, demo_inbox)
    return run_merge(settings.with_options(inbox=demo_inbox), progress)

