"""Only regular files are read, within max_file_mib on the opened handle; every file not read has an
ignored-* code with its reason; a file is classified by its bytes, not its name."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from pipeline import inbox_files
from pipeline.runner import run_merge
from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
HEALTH = "R6_地域福祉計画評価_健康課.xlsx"
GUIDANCE = "R6_地域福祉計画評価_指導室.xlsx"

posix_only = pytest.mark.skipif(os.name == "nt", reason="FIFOs, sockets and /dev/zero are POSIX")

# The merge's own peak memory: measured by a small interpreter that starts it and reaps it, because
# getrusage(RUSAGE_CHILDREN) of this test process would also count every child an earlier test
# started, and a child started straight from a large process inherits that process's high-water RSS
# on Linux (execve keeps it): the wrapper is small, so what it reports is the merge's own tree.
PEAK_WRAPPER = r"""
import os, resource, sys
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status = os.waitpid(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def issues_of(report: dict, name: str) -> list[str]:
    return [i["code"] for f in report["files"] if f["name"] == name for i in f["issues"]]


def status_of(report: dict, name: str) -> str:
    return next(f["status"] for f in report["files"] if f["name"] == name)


@posix_only
def test_special_files_are_never_read_and_never_block(tmp_path: Path, demo_returns: Path) -> None:
    inbox = tmp_path / "inbox"
    shutil.copytree(demo_returns, inbox)
    os.mkfifo(inbox / "返送.xlsx")  # a FIFO nobody writes to: a read would wait forever
    (inbox / "ゼロ.xlsx").symlink_to("/dev/zero")  # a read would never end
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(inbox / "s.eml"))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.move(inbox / HEALTH, outside / HEALTH)
    (inbox / HEALTH).symlink_to(outside / HEALTH)  # a link to a regular file: followed and read
    (inbox / "folder.xlsx").symlink_to(outside, target_is_directory=True)
    peak_file = tmp_path / "peak-kib"
    try:
        result = subprocess.run(  # in a child: a hang would be a timeout, not a stuck test run
            [sys.executable, "-I", "-S", "-c", PEAK_WRAPPER, str(peak_file),
             sys.executable, "-m", "pipeline", "merge", "--inbox", str(inbox), "--outbox", str(tmp_path / "outbox")],
            capture_output=True, cwd=ROOT, timeout=600,
        )
    finally:
        server.close()
    peak_mib = int(peak_file.read_text()) / 1024
    assert result.returncode == 1, result.stderr.decode("utf-8", "replace")
    assert peak_mib < 1024  # nothing read /dev/zero into memory
    report = json.loads((tmp_path / "outbox" / "run-report.json").read_text(encoding="utf-8"))
    for name in ("返送.xlsx", "ゼロ.xlsx", "s.eml", "folder.xlsx"):
        assert status_of(report, name) == "rejected" and issues_of(report, name) == ["file-not-regular"], name
    kinds = {f["name"]: f["issues"][0]["message"] for f in report["files"] if f["name"] in ("返送.xlsx", "ゼロ.xlsx")}
    assert "名前付きパイプ(FIFO)" in kinds["返送.xlsx"] and "デバイス" in kinds["ゼロ.xlsx"]
    assert status_of(report, HEALTH) == "accepted" and report["rows"] == 69


def test_the_read_is_bounded_on_the_handle(tmp_path: Path) -> None:
    big = tmp_path / "big.xlsx"
    big.write_bytes(b"PK\x03\x04" + b"\0" * 5000)
    with pytest.raises(inbox_files.TooLarge):
        inbox_files.read_regular(big, 4096)
    data, st = inbox_files.read_regular(big, 5004)
    assert len(data) == st.st_size == 5004


def test_a_file_that_grows_while_read_is_cut_at_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fstat said small, but the bytes keep coming (a file still being copied in): the read stops."""
    growing = tmp_path / "growing.xlsx"
    growing.write_bytes(b"x" * 10_000)
    real_fstat = os.fstat

    def fstat(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, 100,
                               int(st.st_atime), int(st.st_mtime), int(st.st_ctime)))

    monkeypatch.setattr(os, "fstat", fstat)
    with pytest.raises(inbox_files.TooLarge) as info:
        inbox_files.read_regular(growing, 4096)
    assert info.value.args[0] == 4097  # never more than one byte past the limit


def test_files_are_classified_by_their_bytes(tmp_path: Path, demo_returns: Path) -> None:
    inbox = tmp_path / "inbox"
    shutil.copytree(demo_returns, inbox)
    (inbox / HEALTH).rename(inbox / "健康課の評価表")  # no extension: read as the workbook it is
    (inbox / GUIDANCE).rename(inbox / "指導室.zip")  # an .xlsx named .zip
    (inbox / "一覧.csv").write_text("事業No.,担当課,評価\n7,健康課,A\n", encoding="cp932")
    (inbox / "メモ.xlsx").write_text("評価表は来週送ります。\n", encoding="utf-8")  # named .xlsx, is text
    (inbox / "~$評価表.xlsx").write_bytes(b"\x0cowner")
    (inbox / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
    run = run_merge(Settings(inbox=inbox, outbox=tmp_path / "outbox"))
    report = run.report
    assert status_of(report, "健康課の評価表") == "accepted"
    assert status_of(report, "指導室.zip ＞ 指導室.xlsx") == "accepted"  # the workbook, not its parts
    assert report["rows"] == 69
    assert issues_of(report, "一覧.csv") == ["ignored-not-input"] and status_of(report, "一覧.csv") == "ignored"
    assert issues_of(report, "~$評価表.xlsx") == ["ignored-lock-file"]
    assert issues_of(report, "Thumbs.db") == ["ignored-system-file"]
    assert status_of(report, "メモ.xlsx") == "rejected"  # named as a workbook: the gate says what it is
    ws = openpyxl.load_workbook(run.master, read_only=True)
    status = {r[0]: r[2] for r in ws["提出状況"].iter_rows(values_only=True)}
    assert status["一覧.csv"] == "対象外(ignored-not-input)" and status["Thumbs.db"] == "対象外(ignored-system-file)"
    listed = {(r[0], r[3]): r[5] for r in ws["検証結果"].iter_rows(values_only=True)}
    assert "Excel ブック・メール・ZIP ではありません" in listed[("一覧.csv", "ignored-not-input")]


def test_kind_of() -> None:
    assert inbox_files.kind_of(b"From: a@example.jp\r\nSubject: x\r\n\r\nbody") == "envelope"
    assert inbox_files.kind_of(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + "__substg1.0_".encode("utf-16-le")) == "envelope"
    assert inbox_files.kind_of(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100) == "workbook"
    assert inbox_files.kind_of("事業No.,担当課\n".encode("cp932")) == ""
    assert inbox_files.kind_of(b"%PDF-1.7") == ""
