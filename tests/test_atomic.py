"""Atomic replacement of the master: the old file survives every failure, and temps are swept.

The kill tests start a real child process that is writing the file and kill it (SIGKILL on
POSIX) or have it `os._exit` mid-write. Each time, the previous master must still be
byte-identical and open with openpyxl.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter

import pipeline.atomic as atomic
from pipeline.atomic import (
    TEMP_PREFIX,
    stamped_name,
    sweep_temporaries,
    temp_path_for,
    write_atomically,
    write_bytes_atomically,
)

ROOT = Path(__file__).resolve().parent.parent


def temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(TEMP_PREFIX + "*"))


def make_xlsx(path: Path, text: str) -> None:
    wb = xlsxwriter.Workbook(str(path))
    wb.add_worksheet("評価一覧").write_string(0, 0, text)
    wb.close()


@pytest.fixture
def master(tmp_path: Path) -> Path:
    path = tmp_path / "地域福祉計画_評価集約_R6.xlsx"
    make_xlsx(path, "前回")
    return path


def test_writes_a_new_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "new.xlsx"
    assert write_atomically(target, lambda tmp: make_xlsx(tmp, "今回")) == target
    assert openpyxl.load_workbook(target).active["A1"].value == "今回"
    assert temps(tmp_path) == []


def test_replaces_the_previous_file(master: Path) -> None:
    assert write_atomically(master, lambda tmp: make_xlsx(tmp, "今回")) == master
    assert openpyxl.load_workbook(master).active["A1"].value == "今回"
    assert temps(master.parent) == []


def test_temp_file_is_a_hidden_sibling_with_the_same_suffix(master: Path) -> None:
    seen: list[Path] = []

    def write(tmp: Path) -> None:
        seen.append(tmp)
        assert tmp.exists()  # created exclusively before the writer runs
        make_xlsx(tmp, "今回")

    write_atomically(master, write)
    (tmp,) = seen
    assert tmp.parent == atomic.long_path(master.parent)  # the same folder (\\?\-prefixed on Windows)
    assert re.fullmatch(rf"\.~tmp-{re.escape(master.stem)}-{os.getpid()}-[0-9a-f]{{8}}\.xlsx", tmp.name)
    assert not tmp.exists()


@pytest.mark.parametrize("error", [RuntimeError("書き込み失敗"), KeyboardInterrupt()])
def test_failure_midway_keeps_previous_file_and_removes_temp(master: Path, error: BaseException) -> None:
    before = master.read_bytes()

    def write(tmp: Path) -> None:
        tmp.write_bytes(b"PK\x03\x04 half a zip")
        raise error

    with pytest.raises(type(error)):
        write_atomically(master, write)
    assert master.read_bytes() == before
    assert temps(master.parent) == []
    assert sorted(p.name for p in master.parent.iterdir()) == [master.name]


def test_failing_fsync_keeps_previous_file(master: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = master.read_bytes()

    def broken(fd: int) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(atomic.os, "fsync", broken)
    with pytest.raises(OSError):
        write_atomically(master, lambda tmp: make_xlsx(tmp, "今回"))
    assert master.read_bytes() == before
    assert temps(master.parent) == []


def locked(path: Path, real=os.replace):
    """An os.replace that refuses to overwrite `path`, as Windows does while Excel has it open."""

    def replace(src, dst) -> None:
        if Path(dst) == path:
            raise PermissionError(13, "別のプロセスが使用中です", str(dst))
        real(src, dst)

    return replace


def test_locked_master_is_written_under_a_timestamped_name(master: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = master.read_bytes()
    monkeypatch.setattr(atomic, "REPLACE_RETRY_DELAYS", ())
    monkeypatch.setattr(atomic.os, "replace", locked(master))
    written = write_atomically(master, lambda tmp: make_xlsx(tmp, "今回"))
    assert written != master and written.parent == master.parent
    assert re.fullmatch(rf"{re.escape(master.stem)}_\d{{8}}-\d{{6}}\.xlsx", written.name)
    assert openpyxl.load_workbook(written).active["A1"].value == "今回"
    assert master.read_bytes() == before
    assert temps(master.parent) == []


def test_second_fallback_in_the_same_second_does_not_overwrite(
    master: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(atomic, "REPLACE_RETRY_DELAYS", ())
    monkeypatch.setattr(atomic.os, "replace", locked(master))
    fixed = stamped_name(master)
    monkeypatch.setattr(atomic, "stamped_name", lambda path, when=None: fixed)
    first = write_atomically(master, lambda tmp: make_xlsx(tmp, "1回目"))
    second = write_atomically(master, lambda tmp: make_xlsx(tmp, "2回目"))
    assert first == fixed and second == fixed.with_name(f"{fixed.stem}-2{fixed.suffix}")
    assert openpyxl.load_workbook(first).active["A1"].value == "1回目"
    assert openpyxl.load_workbook(second).active["A1"].value == "2回目"


def test_a_briefly_locked_master_is_retried(master: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A virus scanner holds a new file for a moment; that must not divert the master.
    real = os.replace
    refusals = [PermissionError(13, "scan")]

    def replace(src, dst) -> None:
        if refusals:
            raise refusals.pop()
        real(src, dst)

    sleeps: list[float] = []
    monkeypatch.setattr(atomic.os, "replace", replace)
    monkeypatch.setattr(atomic.time, "sleep", sleeps.append)
    assert write_atomically(master, lambda tmp: make_xlsx(tmp, "今回")) == master
    assert sleeps == [atomic.REPLACE_RETRY_DELAYS[0]]
    assert openpyxl.load_workbook(master).active["A1"].value == "今回"


def test_write_bytes_atomically(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("{}", encoding="utf-8")
    assert write_bytes_atomically(target, '{"valid": true, "課": "地域福祉課"}'.encode()) == target
    assert target.read_text(encoding="utf-8") == '{"valid": true, "課": "地域福祉課"}'
    assert temps(tmp_path) == []


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_sweep_removes_stale_temporaries_only(tmp_path: Path) -> None:
    stale = [
        tmp_path / f"{TEMP_PREFIX}地域福祉計画_評価集約_R6-99999999-0a1b2c3d.xlsx",
        tmp_path / f"{TEMP_PREFIX}report-{dead_pid()}-deadbeef.json",
    ]
    for p in stale:
        p.write_bytes(b"partial")
    own = tmp_path / f"{TEMP_PREFIX}master-{os.getpid()}-00000000.xlsx"  # an in-flight write of ours
    own.write_bytes(b"writing")
    keep = [tmp_path / "地域福祉計画_評価集約_R6.xlsx", tmp_path / "~$地域福祉計画_評価集約_R6.xlsx",
            tmp_path / "notes.~tmp-x.txt"]
    for p in keep:
        p.write_bytes(b"keep")
    (tmp_path / f"{TEMP_PREFIX}folder").mkdir()
    assert sweep_temporaries(tmp_path) == sorted(stale)
    assert all(not p.exists() for p in stale)
    assert own.exists() and all(p.exists() for p in keep)
    assert sweep_temporaries(tmp_path) == []
    assert sweep_temporaries(tmp_path / "missing") == []


def test_sweep_keeps_the_temporary_of_a_live_writer(tmp_path: Path) -> None:
    # e.g. `pipeline templates` writing into outbox/templates while the merge sweeps it
    writer = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        live = tmp_path / f"{TEMP_PREFIX}R6_地域福祉計画評価_指導室-{writer.pid}-0a1b2c3d.xlsx"
        live.write_bytes(b"writing")
        assert sweep_temporaries(tmp_path) == []
        assert live.exists()
    finally:
        writer.communicate(b"")
    assert sweep_temporaries(tmp_path) == [live]  # once it is gone, its leftover is stale


def test_sweep_all_sweeps_every_folder_and_skips_missing_ones(tmp_path: Path) -> None:
    folders = [tmp_path / "outbox", tmp_path / "outbox" / "templates", tmp_path / "outbox" / "feedback"]
    for folder in folders[:2]:
        folder.mkdir(parents=True, exist_ok=True)
    stale = [folder / f"{TEMP_PREFIX}x-{dead_pid()}-0a1b2c3d.xlsx" for folder in folders[:2]]
    for p in stale:
        p.write_bytes(b"partial")
    assert atomic.sweep_all(folders) == stale
    assert not any(p.exists() for p in stale)


def test_a_merge_sweeps_the_templates_folder(inbox: Path, outbox: Path) -> None:
    from pipeline.runner import run_merge
    from pipeline.settings import Settings

    templates = outbox / "templates"
    templates.mkdir(parents=True)
    stale = templates / f"{TEMP_PREFIX}R6_地域福祉計画評価_指導室-{dead_pid()}-0a1b2c3d.xlsx"
    stale.write_bytes(b"PK\x03\x04 half a template")
    kept = templates / "R6_地域福祉計画評価_指導室.xlsx"
    kept.write_bytes(b"a template")
    run_merge(Settings(inbox=inbox, outbox=outbox))
    assert not stale.exists() and kept.exists()


def test_save_atomically_returns_the_path_and_leaves_no_temporary(tmp_path: Path) -> None:
    from openpyxl import Workbook

    from pipeline.templates import save_atomically

    target = tmp_path / "R6_地域福祉計画評価_指導室.xlsx"
    assert save_atomically(Workbook(), target) == target
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_fallback_false_raises_instead_of_a_stamped_sibling(master: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = master.read_bytes()
    monkeypatch.setattr(atomic, "REPLACE_RETRY_DELAYS", ())
    monkeypatch.setattr(atomic.os, "replace", locked(master))
    with pytest.raises(PermissionError):
        write_atomically(master, lambda tmp: make_xlsx(tmp, "今回"), fallback=False)
    assert master.read_bytes() == before
    assert sorted(p.name for p in master.parent.iterdir()) == [master.name]


def test_a_locked_template_is_an_output_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from openpyxl import Workbook

    from pipeline.errors import OutputError
    from pipeline.templates import save_atomically

    target = tmp_path / "R6_地域福祉計画評価_指導室.xlsx"
    target.write_bytes(b"open in Excel")
    monkeypatch.setattr(atomic, "REPLACE_RETRY_DELAYS", ())
    monkeypatch.setattr(atomic.os, "replace", locked(target))
    with pytest.raises(OutputError, match="Excel で開いている"):
        save_atomically(Workbook(), target)
    assert target.read_bytes() == b"open in Excel"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary, no sibling


def test_temporary_names_stay_short_whatever_the_target(tmp_path: Path) -> None:
    target = tmp_path / ("あ" * 80 + ".xlsx")  # 245 bytes: the temporary's name would exceed 255
    written = write_atomically(target, lambda tmp: make_xlsx(tmp, "今回"))
    assert written == target and temps(tmp_path) == []
    assert len(temp_path_for(target).name.encode("utf-8")) <= 255


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("C:\\outbox\\地域福祉計画_評価集約_R6.xlsx", "\\\\?\\C:\\outbox\\地域福祉計画_評価集約_R6.xlsx"),
        ("C:/outbox/feedback/../a.xlsx", "\\\\?\\C:\\outbox\\a.xlsx"),
        ("\\\\fileserver\\福祉\\outbox\\a.xlsx", "\\\\?\\UNC\\fileserver\\福祉\\outbox\\a.xlsx"),
        ("//fileserver/share/a.xlsx", "\\\\?\\UNC\\fileserver\\share\\a.xlsx"),
        ("\\\\?\\C:\\already\\a.xlsx", "\\\\?\\C:\\already\\a.xlsx"),
        ("\\\\.\\NUL", "\\\\.\\NUL"),
        ("outbox\\a.xlsx", "outbox\\a.xlsx"),  # relative: left to the current folder
        ("C:a.xlsx", "C:a.xlsx"),  # drive-relative
        ("\\outbox\\a.xlsx", "\\outbox\\a.xlsx"),  # rooted, no drive
    ],
)
def test_extended_length_prefix_on_windows(path: str, expected: str) -> None:
    assert atomic.extended_length_path(path, windows=True) == expected
    assert atomic.extended_length_path(path, windows=False) == path


def test_a_path_over_260_characters_is_prefixed() -> None:
    deep = "C:\\" + "\\".join(["地域福祉課の共有フォルダー"] * 25) + "\\a.xlsx"
    assert len(deep) > 260
    prefixed = atomic.extended_length_path(deep, windows=True)
    assert prefixed == "\\\\?\\" + deep
    if os.name != "nt":  # elsewhere the OS takes any path as it is
        assert atomic.long_path(Path("/tmp/x.xlsx")) == Path("/tmp/x.xlsx")


# --- a process killed while writing ---------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from pipeline.atomic import write_atomically
    import xlsxwriter

    target, mode = Path(sys.argv[1]), sys.argv[2]

    def write(tmp):
        if mode == "xlsx-loop":
            return make(tmp)
        with open(tmp, "wb") as fh:
            fh.write(b"PK\\x03\\x04" + b"x" * 200_000)
            fh.flush()
            print("writing", flush=True)
            if mode == "exit":
                os._exit(3)
            time.sleep(60)

    def make(tmp):
        wb = xlsxwriter.Workbook(str(tmp))
        ws = wb.add_worksheet("評価一覧")
        for r in range(3000):
            ws.write_string(r, 0, "新しい評価 " * 20)
        wb.close()

    if mode == "xlsx-loop":
        print("writing", flush=True)
        while True:
            write_atomically(target, write)
    else:
        write_atomically(target, write)
    """
)


def run_child(target: Path, mode: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(target), mode], stdout=subprocess.PIPE,
                            env=env, cwd=ROOT)


def wait_until_writing(proc: subprocess.Popen) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == b"writing", line


def assert_master_intact_or_new(master: Path, before: bytes, *, allow_new: bool = False) -> None:
    if not allow_new:
        assert master.read_bytes() == before
    value = openpyxl.load_workbook(master).active["A1"].value
    assert value == "前回" or (allow_new and value.startswith("新しい評価"))


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(3))
def test_killed_mid_write_leaves_previous_master(master: Path, attempt: int) -> None:
    before = master.read_bytes()
    proc = run_child(master, "sleep")
    try:
        wait_until_writing(proc)
        proc.kill()  # SIGKILL: no finally, no atexit, no cleanup
    finally:
        proc.wait(timeout=30)
    assert proc.returncode != 0
    assert_master_intact_or_new(master, before)
    assert len(temps(master.parent)) == 1  # the killed run's leftover
    assert len(sweep_temporaries(master.parent)) == 1
    assert temps(master.parent) == []


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(3))
def test_exit_mid_write_leaves_previous_master(master: Path, attempt: int) -> None:
    before = master.read_bytes()
    proc = run_child(master, "exit")
    wait_until_writing(proc)
    assert proc.wait(timeout=30) == 3
    assert_master_intact_or_new(master, before)
    assert len(sweep_temporaries(master.parent)) == 1
    assert temps(master.parent) == []


@pytest.mark.slow
def test_killed_at_random_moments_of_real_writes_never_leaves_a_broken_master(master: Path) -> None:
    # A child rewrites the master in a loop; kill it at points chosen from its progress: once the
    # temporary it writes holds a random share of a whole master (inside the write, or between the
    # write and the replace), or once it has replaced the master at least once. The master must
    # always open: either the old one or a whole new one. No timing is involved.
    rng = random.Random(20250501)
    before = master.read_bytes()
    probe = run_child(master, "xlsx-loop")  # one whole write, to learn the size of a new master
    try:
        wait_until_writing(probe)
        while master.read_bytes() == before:
            time.sleep(0.001)  # yields only: the loop ends on progress, not on the clock
    finally:
        probe.kill()
        probe.wait()
    size = len(master.read_bytes())
    sweep_temporaries(master.parent)
    master.write_bytes(before)
    for i in range(6):
        at_least = int(size * rng.uniform(0.0, 0.95)) if i < 5 else None  # the last: after a replace
        proc = run_child(master, "xlsx-loop")
        try:
            wait_until_writing(proc)
            while proc.poll() is None:
                tmps = temps(master.parent)
                if at_least is None:
                    if master.read_bytes() != before:
                        break
                elif tmps and any(_size(t) >= at_least for t in tmps):
                    break
                time.sleep(0.001)  # yields only
            proc.kill()
        finally:
            proc.wait()
        assert_master_intact_or_new(master, before, allow_new=True)
        sweep_temporaries(master.parent)
        assert temps(master.parent) == []


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # replaced between listing and stat
        return -1
