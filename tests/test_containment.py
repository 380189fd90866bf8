"""One bad file never stops or poisons the night: whatever goes wrong with one file —
its text, a bug of ours while checking it, its rows at the writer, its feedback copy — is an issue on
that file, and the other returns are merged. Exit 3 stays for faults of the run itself.

Each case is the 12 demo returns plus one return of 指導室 (one row, row 4) re-sent with the fault."""

from __future__ import annotations

import json
import zipfile
from datetime import timedelta
from pathlib import Path

import openpyxl
import pytest
from returns import edit_return, saved_time

from pipeline import master
from pipeline.reader import rows
from pipeline.runner import run_merge
from pipeline.settings import Settings

GUIDANCE = "R6_地域福祉計画評価_指導室.xlsx"
HEALTH = "R6_地域福祉計画評価_健康課.xlsx"
YOSHI = "\U00020bb7"  # 𠮷: one character, two UTF-16 units (as Excel counts)


def resend(inbox: Path, changes: dict, name: str = "指導室_再提出.xlsx") -> Path:
    return edit_return(inbox / GUIDANCE, inbox / name, changes, saved=saved_time(inbox / GUIDANCE) + timedelta(hours=1))


def evaluations(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    ws = openpyxl.load_workbook(path, read_only=True)["評価一覧"]
    rows = list(ws.iter_rows(values_only=True))
    i = {h: rows[0].index(h) for h in ("事業No.", "担当課", "事業評価", "提出ファイル")}
    return {(str(r[i["事業No."]]), r[i["担当課"]]): (r[i["事業評価"]], r[i["提出ファイル"]]) for r in rows[1:]}


def codes(run, name: str) -> list[str]:
    """The file's issues and the merge's notes about it, as the run report lists them."""
    return sorted([i.code for f in run.files if f.name == name for i in f.issues]
                  + [n.code for n in run.outcome.notes if n.file == name])


def test_a_reason_over_excels_limit_in_utf16_units_is_a_row_error_and_the_night_goes_on(
    inbox: Path, outbox: Path
) -> None:
    """The hazard: 17,000 × 𠮷 passed validation (code points) and the master writer raised: traceback,
    nothing written. What holds: text-too-long on the cell (34,000 units), the older row kept."""
    resend(inbox, {("8", "指導室"): {"result": YOSHI * 17_000}})
    run = run_merge(Settings(inbox=inbox, outbox=outbox))
    assert run.exit_code == 1
    assert codes(run, "指導室_再提出.xlsx") == ["row-kept-older", "text-too-long"]
    issue = next(i for f in run.files for i in f.issues if i.code == "text-too-long")
    assert issue.cell == "F4" and "34,000 文字" in issue.message
    assert evaluations(run.master)[("8", "指導室")] == ("A", GUIDANCE)  # the valid older answer
    assert len(evaluations(run.master)) == 69


def test_a_bug_of_ours_while_checking_one_file_is_internal_error_on_that_file(
    inbox: Path, outbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.reader import sandbox

    if sandbox.start_method() != "fork":  # the rows are read in the reader's workers
        pytest.skip("the patched checker reaches the reader's workers only when they are forked")
    resend(inbox, {("8", "指導室"): {"rating": "B"}})
    real = rows.tables

    def tables(file_index, name, sheets):
        if name == "指導室_再提出.xlsx":
            raise KeyError("an unforeseen value")
        return real(file_index, name, sheets)

    monkeypatch.setattr(rows, "tables", tables)
    run = run_merge(Settings(inbox=inbox, outbox=outbox))
    f = next(f for f in run.files if f.name == "指導室_再提出.xlsx")
    assert (f.status, [i.code for i in f.errors]) == ("rejected", ["internal-error"])
    # the message names the exception and where it was raised, for the system staff
    assert "KeyError: 'an unforeseen value' (test_containment.py:" in f.errors[0].message
    assert run.exit_code == 1 and len(evaluations(run.master)) == 69
    assert evaluations(run.master)[("8", "指導室")] == ("A", GUIDANCE)
    # an internal error is not remembered: the next night reads the file again
    monkeypatch.setattr(rows, "tables", real)
    again = run_merge(Settings(inbox=inbox, outbox=outbox))
    assert evaluations(again.master)[("8", "指導室")] == ("B", "指導室_再提出.xlsx")


def test_the_nights_rows_are_checked_for_the_writer_once(
    inbox: Path, outbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """check_rows runs once per file before the merge chooses; the writers do not check again."""
    real = master.check_rows
    checked: list[int] = []

    def check_rows(catalog, rows):
        rows = list(rows)
        checked.append(len(rows))
        real(catalog, rows)

    monkeypatch.setattr(master, "check_rows", check_rows)
    run = run_merge(Settings(inbox=inbox, outbox=outbox))
    assert run.exit_code == 0 and len(evaluations(run.master)) == 69
    assert checked == [len(f.rows) for f in run.files] and sum(checked) == 69


def test_a_row_the_writer_would_refuse_sets_aside_its_file_only(
    inbox: Path, outbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = master.check_rows

    def check_rows(catalog, rows):
        rows = list(rows)
        if any(r.file == HEALTH for r in rows):
            raise ValueError("a row the writer cannot take")
        real(catalog, rows)

    monkeypatch.setattr(master, "check_rows", check_rows)
    run = run_merge(Settings(inbox=inbox, outbox=outbox))
    f = next(f for f in run.files if f.name == HEALTH)
    assert (f.status, [i.code for i in f.errors]) == ("rejected", ["internal-error"])
    rows = evaluations(run.master)
    assert len(rows) == 68 and ("7", "健康課") not in rows
    assert run.exit_code == 1


def test_a_feedback_copy_that_cannot_be_written_is_an_issue_on_its_file(
    inbox: Path, outbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resend(inbox, {("8", "指導室"): {"rating": "E"}}, name="指導室_誤り.xlsx")
    resend(inbox, {("8", "指導室"): {"rating": "良"}}, name="指導室_誤り2.xlsx")
    from pipeline import runner

    real = runner.write_copy

    def write_copy(copy, out_path):
        # the copy of 指導室_誤り.xlsx, staged beside its target as ".~tmp-指導室_誤り-<pid>-…"
        if out_path.name == "指導室_誤り.xlsx" or "指導室_誤り-" in out_path.name:
            raise RuntimeError("the copy could not be written")
        return real(copy, out_path)

    monkeypatch.setattr(runner, "write_copy", write_copy)
    run = run_merge(Settings(inbox=inbox, outbox=outbox))
    assert codes(run, "指導室_誤り.xlsx") == ["feedback-not-written", "rating-invalid", "row-kept-older"]
    assert [p.name for p in run.feedback] == ["指導室_誤り2.xlsx"]  # the other copy is written
    report = json.loads(run.report_path.read_text(encoding="utf-8"))
    entry = next(f for f in report["files"] if f["name"] == "指導室_誤り.xlsx")
    assert "feedback-not-written" in [i["code"] for i in entry["issues"]]
    ws = openpyxl.load_workbook(run.master)["検証結果"]
    assert "feedback-not-written" in [r[3] for r in ws.iter_rows(min_row=2, values_only=True)]
    assert run.exit_code == 1 and len(evaluations(run.master)) == 69


def test_a_zip_member_with_a_long_japanese_name_gets_a_bounded_feedback_copy(inbox: Path, outbox: Path) -> None:
    """The hazard: a ~250-byte member name (a mail subject pasted into a file name) made the feedback
    copy fail with ENAMETOOLONG and the whole merge exit 3. What holds: a bounded name, the night goes on."""
    bad = resend(inbox, {("8", "指導室"): {"rating": "E"}}, name="x.xlsx")
    long_name = "【再提出】令和6年度地域福祉計画評価表の提出について(指導室)" * 3 + ".xlsx"
    assert len(long_name.encode("utf-8")) > 250
    with zipfile.ZipFile(inbox / "提出.zip", "w") as z:
        z.writestr(long_name, bad.read_bytes())
    bad.unlink()
    run = run_merge(Settings(inbox=inbox, outbox=outbox))
    [copy] = run.feedback
    assert len(copy.name.encode("utf-8")) <= 120 and copy.suffix == ".xlsx"
    assert openpyxl.load_workbook(copy).sheetnames[0] == "エラー一覧"
    assert run.exit_code == 1 and len(evaluations(run.master)) == 69


def test_a_full_disk_is_the_runs_fault_not_one_files(inbox: Path, outbox: Path, monkeypatch) -> None:
    """The one exception: no space left stops the run (exit 3) and leaves every previous output."""
    import errno

    from pipeline.errors import OutputError

    run_merge(Settings(inbox=inbox, outbox=outbox))
    before = {p.name: p.read_bytes() for p in outbox.iterdir() if p.is_file()}
    resend(inbox, {("8", "指導室"): {"rating": "E"}})
    from pipeline import runner

    def write_copy(copy, out_path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runner, "write_copy", write_copy)
    with pytest.raises(OutputError, match="前回の出力はそのまま"):
        run_merge(Settings(inbox=inbox, outbox=outbox))
    assert {p.name: p.read_bytes() for p in outbox.iterdir() if p.is_file()} == before
