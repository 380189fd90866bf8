"""Our stdout is ours: a library that prints or warns while we use it (openpyxl prints
「0 is out of range」 for some workbooks' styles) never reaches stdout or the nightly log
unlabelled, and `validate --json` writes exactly one JSON document, as UTF-8, whatever the console."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from returns import edit_return

from pipeline.cli import cli
from pipeline.quiet import library_output
from pipeline.reader import annotate as feedback
from pipeline.runner import run_merge
from pipeline.settings import Settings

GUIDANCE = "R6_地域福祉計画評価_指導室.xlsx"
ODD = "𠮷田_指導室_誤り.xlsx"  # not in cp932


@pytest.fixture
def chatty(monkeypatch: pytest.MonkeyPatch) -> None:
    """openpyxl's loader as it behaves on some real workbooks: it prints and warns, then loads."""
    real = openpyxl.load_workbook

    def load_workbook(*args, **kwargs):
        print("0 is out of range")
        warnings.warn("Data Validation extension is not supported and will be removed", UserWarning, stacklevel=2)
        return real(*args, **kwargs)

    monkeypatch.setattr(feedback, "load_workbook", load_workbook)


# The chatty loader is patched in this process; the annotator that calls it runs in a contained
# worker, which sees the patch only when it is forked from here (spawned, it imports its own).
needs_fork = pytest.mark.skipif(not hasattr(os, "fork"),
                                reason="needs os.fork: the patched loader reaches the annotator by forking")


def bad_return(folder: Path, demo_returns: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return edit_return(demo_returns / GUIDANCE, folder / ODD, {("8", "指導室"): {"rating": "E"}})


def test_library_output_collects_prints_and_warnings() -> None:
    with library_output() as said:
        print("0 is out of range")
        print("0 is out of range")  # once is enough
        warnings.warn("something deprecated", DeprecationWarning, stacklevel=1)
    assert said == ["0 is out of range", "DeprecationWarning: something deprecated"]
    with library_output() as said:
        for n in range(100):
            print(f"line {n}")
    assert len(said) == 21 and said[-1] == "… ほか 80 行"


@needs_fork
def test_validate_json_is_one_utf8_document(tmp_path: Path, demo_returns: Path, chatty: None) -> None:
    inbox = tmp_path / "inbox"
    bad_return(inbox, demo_returns)
    result = CliRunner(charset="cp932").invoke(
        cli, ["validate", str(inbox), "--json", "--feedback", str(tmp_path / "fb")], catch_exceptions=False)
    assert result.exit_code == 1
    document = json.loads(result.stdout_bytes.decode("utf-8"))  # the whole of stdout, strict UTF-8
    [entry] = document["files"]
    assert entry["name"] == ODD  # 𠮷 kept, though the console is cp932
    codes = [i["code"] for i in entry["issues"]]
    assert "rating-invalid" in codes and "library-message" in codes
    note = next(i for i in entry["issues"] if i["code"] == "library-message")
    assert note["message"].endswith(": 0 is out of range")
    assert b"0 is out of range" not in result.stdout_bytes.replace(note["message"].encode("utf-8"), b"")


@needs_fork
def test_the_nightly_log_has_no_library_lines(tmp_path: Path, demo_returns: Path, chatty: None,
                                              capfd: pytest.CaptureFixture[str]) -> None:
    inbox = tmp_path / "inbox"
    shutil.copytree(demo_returns, inbox)
    bad_return(inbox, demo_returns)
    run = run_merge(Settings(inbox=inbox, outbox=tmp_path / "outbox"))
    out, err = capfd.readouterr()  # file descriptors: the forked writer's output too
    assert "out of range" not in out and "out of range" not in err
    entry = next(f for f in run.report["files"] if f["name"] == ODD)
    assert "library-message" in [i["code"] for i in entry["issues"]]
    ws = openpyxl.load_workbook(run.master, read_only=True)["検証結果"]
    assert any(r[3] == "library-message" and "0 is out of range" in r[5] for r in ws.iter_rows(values_only=True))


def _print_in_reader(text: str) -> str:
    import os as _os

    print(text, flush=True)
    _os.write(1, (text + " (native)\n").encode())  # as a native library writes: straight to fd 1
    return "ok"


def test_a_reader_process_that_prints_writes_nothing_on_our_stdout(capfd: pytest.CaptureFixture[str]) -> None:
    from pipeline.reader.sandbox import run_contained

    assert run_contained(_print_in_reader, "Cannot detect file format", timeout_s=60, memory_bytes=512 * 2**20) == "ok"
    out, _err = capfd.readouterr()
    assert "Cannot detect file format" not in out
