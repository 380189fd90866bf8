"""File names that are not text (a Latin-1 name from an old share; any Japanese name under an ASCII
locale) are carried as the OS gave them, shown with the bad bytes replaced and their hex, reported
per file, and crash no stage: the fingerprint, the run report, the master, the console."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl

from pipeline.catalog import load_catalog
from pipeline.cli import render_merge, utf8_mode_argv
from pipeline.filenames import shown_name, undecodable_bytes
from pipeline.master import master_name
from pipeline.runner import run_merge
from pipeline.settings import Settings
from pipeline.yearly import for_console

ROOT = Path(__file__).resolve().parents[1]
HEALTH = "R6_地域福祉計画評価_健康課.xlsx"
LATIN1 = "café résumé.xlsx".encode("latin-1")  # b"caf\xe9 r\xe9sum\xe9.xlsx"
SHOWN = "caf\ufffd[E9] r\ufffd[E9]sum\ufffd[E9].xlsx"


def test_shown_name_replaces_each_bad_byte_run_with_its_hex() -> None:
    raw = os.fsdecode(LATIN1) if sys.getfilesystemencoding() == "utf-8" else LATIN1.decode("utf-8", "surrogateescape")
    assert shown_name(raw) == SHOWN and undecodable_bytes(raw) == "E9 E9 E9"
    # a UTF-8 name read under an ASCII locale is text after all: shown as it is, nothing reported
    ascii_read = "健康課/評価表.xlsx".encode().decode("ascii", "surrogateescape")
    assert shown_name(ascii_read) == "健康課/評価表.xlsx" and undecodable_bytes(ascii_read) == ""
    # two names that differ only in their bad bytes stay apart
    assert shown_name(b"a\xe9.xlsx".decode("utf-8", "surrogateescape")) != shown_name(
        b"a\xe8.xlsx".decode("utf-8", "surrogateescape"))
    assert shown_name("評価表.xlsx") == "評価表.xlsx"


def latin1_inbox(tmp_path: Path, demo_returns: Path) -> Path:
    inbox = tmp_path / "inbox"
    shutil.copytree(demo_returns, inbox)
    bad_folder = os.path.join(os.fsencode(inbox), b"\x8c\x92\x8dN\x89\xdb")  # 健康課 in cp932: not UTF-8
    os.mkdir(bad_folder)
    shutil.move(inbox / HEALTH, os.path.join(bad_folder, LATIN1))
    return inbox


def test_a_latin1_name_is_reported_and_crashes_nothing(tmp_path: Path, demo_returns: Path) -> None:
    s = Settings(inbox=latin1_inbox(tmp_path, demo_returns), outbox=tmp_path / "outbox")
    run = run_merge(s)
    name = "\ufffd[8C928D]N\ufffd[89DB]/" + SHOWN
    [f] = [f for f in run.files if f.name == name]
    assert f.status == "accepted" and f.office == "健康課"  # read by its bytes: the template says 健康課
    assert [(i.code, i.value) for i in f.issues] == [("file-name-undecodable", "8C 92 8D 89 DB E9 E9 E9")]
    assert run.report["rows"] == 69 and run.exit_code == 0
    report = json.loads(run.report_path.read_bytes().decode("utf-8"))  # strict UTF-8
    [entry] = [e for e in report["files"] if e["name"] == name]
    assert entry["path"].endswith(name) and entry["issues"][0]["code"] == "file-name-undecodable"
    ws = openpyxl.load_workbook(s.outbox / master_name(load_catalog("R6")), read_only=True)["提出状況"]
    assert name in [r[0] for r in ws.iter_rows(values_only=True)]
    assert "file-name-undecodable" in [
        r[3] for r in openpyxl.load_workbook(run.master, read_only=True)["検証結果"].iter_rows(values_only=True)]
    for_console(render_merge(run), "cp932").encode("cp932")  # the console summary prints on cp932
    # the next night, nothing new: the fingerprint of the same names keeps the outputs
    stamp = run.master.stat().st_mtime_ns
    again = run_merge(s)
    assert again.exit_code == 0 and again.master.stat().st_mtime_ns == stamp


def test_the_whole_merge_runs_under_an_ascii_locale(tmp_path: Path, demo_returns: Path) -> None:
    inbox = latin1_inbox(tmp_path, demo_returns)
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""}
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "merge", "--inbox", str(inbox), "--outbox", str(tmp_path / "outbox")],
        capture_output=True, env=env, cwd=ROOT, timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    out = result.stdout.decode("utf-8")  # the log is UTF-8, not "?"s
    assert "評価行: 69 / 69" in out and "実行レポート:" in out
    report = json.loads((tmp_path / "outbox" / "run-report.json").read_bytes().decode("utf-8"))
    names = {f["name"] for f in report["files"]}
    assert "R6_地域福祉計画評価_介護福祉課.xlsx" in names  # Japanese names read as text
    assert any(n.endswith(SHOWN) for n in names)
    assert (tmp_path / "outbox" / master_name(load_catalog("R6"))).is_file()


def test_utf8_mode_is_asked_for_only_where_names_are_not_utf8() -> None:
    assert utf8_mode_argv("utf-8") is None
    argv = utf8_mode_argv("ascii")
    if os.name != "nt" and not sys.flags.utf8_mode:
        assert argv is not None and argv[:3] == [sys.executable, "-X", "utf8"]
    else:
        assert argv is None
