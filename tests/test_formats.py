""".ods and .xls returns and the contained reader under spawn and on Windows.

An .ods goes through the same gate as an .xlsx (zip checks, bounded inflation, DTD refusal) plus a
streaming pass over content.xml that fills the same SheetFacts, so the validator raises the same
row-level codes. An .xls is checked as far as it cheaply can be (BIFF version, FILEPASS, sheets,
DIMENSIONS) and read for its values in the worker, which bounds what it returns. Every file is
built here by hand (tests/hostile.py): no writer for either format is installed.

The sandbox tests run under every start method this platform has; CI runs this file once more
with PIPELINE_START_METHOD=spawn, the way the reader starts on Windows.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
from pathlib import Path

import pytest
from hostile import (
    FILEPASS_RC4,
    LAUGHS,
    ODS_META,
    XXE,
    Sheet,
    _rec,
    biff8_stream,
    compound_file,
    ods,
    ods_cell,
    ods_content,
    ods_manifest,
    ods_of,
    ods_table,
    xls,
    xls_of,
)

from pipeline import ingest
from pipeline.catalog import load_catalog
from pipeline.limits import Limits
from pipeline.reader import contained, gate, sandbox, workbook
from pipeline.reader.gate import inspect_workbook
from pipeline.reader.rows import DDE
from pipeline.reader.scanning import GateResult
from pipeline.report import CODES
from pipeline.validate import validate_paths

SOURCE = "R6_地域福祉計画評価_指導室.xlsx"  # one row (row 4): 事業8, rating A; F/G/H are the inputs


def check(data: bytes, name: str = "提出.ods", limits: Limits | None = None) -> GateResult:
    result = inspect_workbook(data, name, limits or Limits())
    for issue in result.issues:
        assert issue.code in CODES and issue.message and issue.file == name
    return result


def codes(result: GateResult) -> list[str]:
    return [i.code for i in result.issues]


def rejected(data: bytes, code: str, **kw) -> GateResult:
    result = check(data, **kw)
    assert not result.ok and result.kind == "" and result.sheets == {}
    assert result.issues[0].code == code, codes(result)
    return result


@pytest.fixture(scope="module")
def source(demo_returns: Path) -> bytes:
    return (demo_returns / SOURCE).read_bytes()


def one_sheet(rows: str, name: str = "記入シート", before: str = "") -> bytes:
    return ods(ods_content(f'<table:table table:name="{name}">{before}{rows}</table:table>'))


def row(*cells: str, attrs: str = "") -> str:
    return f"<table:table-row{attrs}>{''.join(cells)}</table:table-row>"


def g4(edit_cell: dict) -> callable:
    """An edit of the sheets of a return: cell G4 (rating) replaced."""

    def edit(sheets: list[Sheet]) -> None:
        sheets[0].cells[(4, 7)] = edit_cell.get("value", "A")
        if "formula" in edit_cell:
            sheets[0].formulas[(4, 7)] = edit_cell["formula"]

    return edit


# --- .ods through the gate ------------------------------------------------------------------------


def test_ods_return_gives_the_same_facts_as_the_xlsx(source: bytes) -> None:
    as_xlsx = check(source, "提出.xlsx")
    result = check(ods_of(source))
    assert result.ok and result.kind == "ods"
    assert codes(result) == ["file-legacy-format"]
    assert "OpenDocument" in result.issues[0].message and "LibreOffice" in result.issues[0].message
    assert result.application.startswith("LibreOffice")
    for name, facts in as_xlsx.sheets.items():
        mine = result.sheets[name]
        assert (mine.cells, mine.max_row, mine.max_col) == (facts.cells, facts.max_row, facts.max_col), name
    assert result.sheets["_meta"].state == "hidden"  # .ods has no veryHidden; _meta is not "hidden content"


def test_suffix_lies_are_judged_by_the_bytes(source: bytes) -> None:
    assert check(ods_of(source), "提出.xlsx").kind == "ods"
    assert check(source, "提出.ods").kind == "xlsx"
    assert check(xls_of(source), "提出.xlsx").kind == "xls"
    assert check(ods_of(source), "提出.xls").kind == "ods"


def test_trailing_empty_repeated_rows_and_columns_do_not_count() -> None:
    # as LibreOffice writes every sheet: the rest of the row, then 1,048,570 empty rows of 1024 cells
    sheet = Sheet("記入シート")
    sheet.cells.update({(1, 1): "事業No.", (2, 2): 1})
    facts = check(ods(ods_content(ods_table(sheet)))).sheets["記入シート"]
    assert (facts.cells, facts.max_row, facts.max_col) == (2, 2, 2)


def test_repeated_rows_bomb_is_sheet_too_large() -> None:
    # one row with content repeated 1,048,576 times: calamine would build a million rows
    bomb = row(ods_cell("A"), attrs=' table:number-rows-repeated="1048576"')
    result = rejected(one_sheet(bomb), "sheet-too-large")
    assert "A1048576" in result.issues[0].message and "100,000 行" in result.issues[0].message


def test_repeated_columns_and_cell_count_bombs_are_sheet_too_large() -> None:
    wide = row(ods_cell(1, attrs=' table:number-columns-repeated="16384"'))
    assert "200 列" in rejected(one_sheet(wide), "sheet-too-large").issues[0].message
    # 20,000 rows × 150 columns of content: inside the extent, over 2,000,000 cells
    block = row(ods_cell(1, attrs=' table:number-columns-repeated="150"'), attrs=' table:number-rows-repeated="20000"')
    assert "2,000,000" in rejected(one_sheet(block), "sheet-too-large").issues[0].message
    # a content cell after a million empty ones: the empty ones still move it far away
    far = row('<table:table-cell table:number-columns-repeated="1000000"/>', ods_cell(1))
    rejected(one_sheet(far), "sheet-too-large")


def test_many_empty_cell_elements_count_against_the_cell_limit() -> None:
    rows = row("<table:table-cell/>" * 3000)
    rejected(one_sheet(rows), "sheet-too-large", limits=Limits(max_cells=2000))


def test_ods_zip_bomb_and_lying_sizes() -> None:
    big = row(ods_cell("A" * 100)) * 300_000  # 30 MB of cells that deflate > 100:1
    rejected(ods(ods_content(f'<table:table table:name="s">{big}</table:table>'), level=9), "file-zip-bomb")


@pytest.mark.parametrize("member", ["content.xml", "meta.xml", "META-INF/manifest.xml", "styles.xml"])
@pytest.mark.parametrize("prolog", [LAUGHS, XXE], ids=["billion-laughs", "xxe"])
def test_ods_dtd_in_any_part_is_refused(member: str, prolog: str) -> None:
    parts = {"content.xml": ods_content(ods_table(Sheet("s"))), "meta.xml": ODS_META,
             "META-INF/manifest.xml": ods_manifest(), "styles.xml": b"<office:document-styles/>"}  # fmt: skip
    body = parts[member].split(b"?>", 1)[-1] if parts[member].startswith(b"<?xml") else parts[member]
    hostile = prolog.encode() + body
    rejected(ods(parts["content.xml"], members={member: hostile}), "file-unsafe-xml")


def test_ods_formulas_errors_hidden_rows_merged_and_hidden_sheets() -> None:
    cells = row(
        ods_cell("8"),
        ods_cell("A", formula='of:=IF([.A1]="8";"A";"B")'),
        ods_cell(None, formula="of:=SUM([.A1:.A2])"),  # no cached value
        '<table:table-cell table:formula="of:=1/0" office:value-type="string" office:string-value="" '
        'calcext:value-type="error"><text:p>#DIV/0!</text:p></table:table-cell>',
        ods_cell("x", formula="of:=[$'別シート'.B2]"),
        '<table:table-cell office:value-type="string" table:number-columns-spanned="2" '
        'table:number-rows-spanned="2"><text:p>結合</text:p></table:table-cell>',
    )
    rows = row(ods_cell("a")) + cells + row(ods_cell("h"), attrs=' table:visibility="collapse"')
    rows += row(ods_cell(None), attrs=' table:visibility="collapse" table:number-rows-repeated="1000000"')
    hidden = '<table:table table:name="隠し" table:style-name="ta2"><table:table-row>' + ods_cell(1) + "</table:table-row></table:table>"
    result = check(ods(ods_content(f'<table:table table:name="s">{rows}</table:table>{hidden}')))
    assert result.ok, codes(result)
    facts = result.sheets["s"]
    assert facts.formulas == {"B2": 'IF(A1="8","A","B")', "C2": "SUM(A1:A2)", "D2": "1/0", "E2": "'別シート'!B2"}
    assert facts.no_cache == {"C2"}
    assert facts.errors == {"D2": "#DIV/0!"}
    assert facts.merged == ["F2:G3"]
    assert facts.hidden_rows == {3}  # the million empty hidden rows below the data are not listed
    assert (facts.max_row, facts.max_col) == (3, 6)
    assert result.sheets["隠し"].state == "hidden"
    assert codes(result) == ["content-hidden", "file-legacy-format"]


def test_ods_dde_is_flagged_like_an_xlsx_dde_formula() -> None:
    cell = ods_cell("A", formula='of:=DDE("cmd";"/C calc";"A0")')
    links = ('<table:dde-links><table:dde-link><office:dde-source office:dde-application="cmd" '
             'office:dde-topic="/C calc" office:dde-item="A0"/></table:dde-link></table:dde-links>')  # fmt: skip
    result = check(ods(ods_content(f'<table:table table:name="s">{row(cell)}</table:table>', body_extra=links)))
    text = result.sheets["s"].formulas["A1"]
    assert text == "cmd|'/C calc'!A0" and DDE.search(text)
    assert result.external_links and "external-links" in codes(result)
    # a DDE call whose arguments are not plain strings is still DDE to the validator
    odd = check(one_sheet(row(ods_cell("A", formula="of:=DDE([.B1];[.B2];[.B3])"))))
    assert DDE.search(odd.sheets["記入シート"].formulas["A1"])
    # Excel 2007's own syntax in an .ods
    excel = check(one_sheet(row(ods_cell("A", formula="msoxl:=cmd|' /C calc'!A0"))))
    assert DDE.search(excel.sheets["記入シート"].formulas["A1"])


def test_ods_containers_that_are_refused() -> None:
    content = ods_content(ods_table(Sheet("s")))
    rejected(ods(content, members={"META-INF/manifest.xml": ods_manifest(encrypted=True)}), "file-encrypted")
    odt = rejected(ods(content, mimetype=b"application/vnd.oasis.opendocument.text"), "file-not-workbook")
    assert ".odt" in odt.issues[0].message
    rejected(ods(content, members={"META-INF/manifest.xml": None}), "file-corrupt")
    rejected(ods(b"<office:document-content", members={}), "file-corrupt")  # not well-formed
    nested = ods_content('<table:table table:name="a"><table:table table:name="b"/></table:table>')
    rejected(ods(nested), "file-corrupt")
    dup = ods_content(ods_table(Sheet("s")) + ods_table(Sheet("S")))
    rejected(ods(dup), "file-corrupt")


def test_ods_big_but_legal_sheet_is_scanned_in_bounded_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # 100,000 rows × 10 cells of text: well inside the limits (1,000,000 cells)
    block = "".join(row(*(ods_cell(f"r{r}c{c}") for c in range(10))) for r in range(1000))
    content = ods_content(f'<table:table table:name="s">{block * 100}</table:table>')
    monkeypatch.setattr(gate, "MIN_INFLATE_RATIO", 0)  # the repeated block compresses far below 1 %
    result = check(ods(content), limits=Limits(max_entry_mib=400, max_total_mib=500))
    assert result.ok and result.sheets["s"].cells == 1_000_000


# --- .xls through the gate --------------------------------------------------------------------------


def test_xls_return_passes_with_its_sheets(source: bytes) -> None:
    result = check(xls_of(source), "提出.xls")
    assert result.ok and result.kind == "xls"
    assert codes(result) == ["file-legacy-format"]
    assert "(.xls)" in result.issues[0].message and "確認できません" in result.issues[0].message
    assert {n: f.state for n, f in result.sheets.items()} == {
        "記入シート": "visible", "記入要領": "visible", "_meta": "veryHidden"}  # fmt: skip


def test_xls_hidden_sheet_and_external_link_warnings(source: bytes) -> None:
    def hide(sheets: list[Sheet]) -> None:
        sheets[1].state = "hidden"

    supbook = _rec(0x01AE, b"\x01\x00\x0b\x00\x01" + "\\\\x\\評価.xls".encode("utf-16-le")[:20])
    result = check(xls_of(source, hide, globals_extra=supbook), "提出.xls")
    assert result.ok and codes(result) == ["external-links", "content-hidden", "file-legacy-format"]
    assert result.issues[1].sheet == "記入要領"


def test_xls_encrypted_and_legacy_versions_are_refused() -> None:
    sheet = Sheet("s")
    sheet.cells[(1, 1)] = "x"
    assert "パスワード" in rejected(xls([sheet], globals_extra=FILEPASS_RC4), "file-encrypted", name="a.xls").issues[0].message
    biff5 = rejected(xls([sheet], version=0x0500), "file-legacy-xls", name="a.xls")
    assert "Excel 5.0/95" in biff5.issues[0].message and "名前を付けて保存" in biff5.issues[0].message
    biff4 = compound_file({"Book": (_rec(0x0409, b"\x00\x00\x10\x00") + _rec(0x000A, b"")).ljust(4096, b"\0")})
    rejected(biff4, "file-legacy-xls", name="a.xls")


def test_xls_structural_lies_are_file_corrupt() -> None:
    sheet = Sheet("s")
    sheet.cells[(1, 1)] = "x"
    stream = bytearray(biff8_stream([sheet]))
    pos = stream.index(b"\x85\x00")  # BOUNDSHEET: its offset past the end (calamine would panic)
    stream[pos + 4 : pos + 8] = (10**6).to_bytes(4, "little")
    rejected(compound_file({"Workbook": bytes(stream).ljust(4096, b"\0")}), "file-corrupt", name="a.xls")
    sst = _rec(0x00FC, (0).to_bytes(4, "little") + (2**30).to_bytes(4, "little"))  # a billion strings in 8 bytes
    rejected(xls([sheet], globals_extra=sst), "file-corrupt", name="a.xls")
    rejected(compound_file({"Workbook": b"\x01\x02".ljust(4096, b"\0")}), "file-corrupt", name="a.xls")
    truncated = biff8_stream([sheet])[:30]
    rejected(compound_file({"Workbook": truncated}), "file-corrupt", name="a.xls")


def test_xls_declared_dimensions_too_large() -> None:
    sheet = Sheet("s")
    sheet.cells.update({(1, 1): "x", (65536, 256): "y"})  # DIMENSIONS A1:IV65536
    result = rejected(xls([sheet]), "sheet-too-large", name="a.xls")
    assert "A1:IV65536" in result.issues[0].message


# --- read through the contained worker -----------------------------------------------------------------


def read(data: bytes, name: str, limits: Limits | None = None, settings: Limits | None = None):
    """The sheets, the gate's result and the issues of reading, as a merge's reader gets them:
    contained.read_sheets in a contained worker with the settings' cap and timeout."""
    settings = settings or Limits()
    worker = sandbox.Worker(contained.read_sheets, timeout_s=settings.parse_timeout_s,
                            memory_bytes=settings.parse_memory_mib * 2**20)
    return read_in(worker, data, name, limits or Limits())


def read_in(worker: sandbox.Worker, data: bytes, name: str, limits: Limits):
    with worker:
        try:
            checked, sheets, issues = worker.call(data, name, limits)
        except sandbox.SandboxError as exc:
            checked = worker.parts[0] if worker.parts else GateResult(kind="")
            return [], checked, [*checked.issues, contained.reader_crashed(name, exc)]
    return sheets, checked, [*checked.issues, *issues]


@pytest.mark.parametrize("kind", ["ods", "xls"])
def test_ods_and_xls_read_the_same_values_as_the_xlsx(source: bytes, kind: str) -> None:
    data = ods_of(source) if kind == "ods" else xls_of(source)
    sheets, checked, issues = read(data, f"提出.{kind}")
    base, _, _ = read(source, "提出.xlsx")
    assert checked.kind == kind and [i.code for i in issues] == ["file-legacy-format"]
    assert [(s.name, s.rows) for s in sheets] == [(s.name, s.rows) for s in base]
    assert all(s.facts is not None for s in sheets)


def lying_dimensions(sheet: Sheet) -> bytes:
    """An .xls whose DIMENSIONS record says A1:B2, whatever the cells (the gate cannot see through it)."""
    stream = bytearray(biff8_stream([sheet]))
    pos = stream.index(b"\x00\x02\x0e\x00")  # DIMENSIONS, 14 bytes
    stream[pos + 4 : pos + 18] = (0).to_bytes(4, "little") + (2).to_bytes(4, "little") + b"\0\0\x02\0\0\0"
    return compound_file({"Workbook": bytes(stream).ljust(4096, b"\0")})


def test_xls_over_the_cell_limit_is_bounded_in_the_worker() -> None:
    sheet = Sheet("s")
    sheet.cells.update({(r, c): r * c for r in range(1, 201) for c in range(1, 11)})  # 2,000 cells
    assert read(xls([sheet]), "a.xls", Limits(max_cells=1500))[2][-1].code == "sheet-too-large"  # gate
    sheets, _checked, issues = read(lying_dimensions(sheet), "a.xls", Limits(max_cells=1500))
    assert sheets == [] and [i.code for i in issues] == ["file-legacy-format", "sheet-too-large"]
    assert "1,500" in issues[-1].message and issues[-1].sheet == "s"


def test_xls_with_cells_far_apart_is_bounded_in_the_worker() -> None:
    sheet = Sheet("s")
    sheet.cells.update({(1, 1): "x", (300, 256): "y"})  # IV300: 256 columns
    sheets, _checked, issues = read(lying_dimensions(sheet), "a.xls")
    assert sheets == [] and issues[-1].code == "sheet-too-large"
    assert "IV300" in issues[-1].message and "200 列" in issues[-1].message


def test_xls_that_calamine_cannot_build_within_the_cap_is_reader_crashed() -> None:
    # A1 and IV65536: calamine builds the whole 65,536 × 256 range (512 MiB) before we can count
    sheet = Sheet("s")
    sheet.cells.update({(1, 1): "x", (65536, 256): "y"})
    sheets, _checked, issues = read(lying_dimensions(sheet), "a.xls", settings=Limits(parse_memory_mib=256))
    assert sheets == [] and issues[-1].code == "reader-crashed"
    assert "memory" in issues[-1].message


def test_ods_and_xls_returns_validate_with_the_same_rows_as_the_xlsx(demo_returns: Path, tmp_path: Path) -> None:
    catalog = load_catalog("R6")
    box = tmp_path / "inbox"
    box.mkdir()
    shutil.copy(demo_returns / SOURCE, box / SOURCE)
    source = (demo_returns / SOURCE).read_bytes()
    other = "R6_地域福祉計画評価_地域福祉課.xlsx"  # many rows, multi-line texts
    (box / "指導室.ods").write_bytes(ods_of(source))
    (box / "指導室.xls").write_bytes(xls_of(source))
    big = (demo_returns / other).read_bytes()
    (box / "地域福祉課.ods").write_bytes(ods_of(big))
    (box / "地域福祉課.xls").write_bytes(xls_of(big))
    shutil.copy(demo_returns / other, box / other)
    report = validate_paths(catalog, [box])
    by_name = {f.name: f for f in report.files}

    def rows(name: str) -> list[tuple]:
        return [(e.project, e.department, e.result, e.rating, e.outlook, e.sheet, e.row) for e in by_name[name].rows]

    for xlsx, copies in ((SOURCE, ("指導室.ods", "指導室.xls")), (other, ("地域福祉課.ods", "地域福祉課.xls"))):
        assert by_name[xlsx].status == "accepted" and rows(xlsx)
        for name in copies:
            f = by_name[name]
            assert f.status == "accepted" and f.office == by_name[xlsx].office, (name, f.issues)
            assert [i.code for i in f.issues] == ["file-legacy-format"], (name, [i.message for i in f.issues])
            assert rows(name) == rows(xlsx), name


def test_ods_cell_level_codes_reach_the_validator(source: bytes, tmp_path: Path) -> None:
    cases = {
        "dde.ods": (g4({"formula": 'of:=DDE("cmd";"/C calc";"A0")'}), "cell-dde"),
        "nocache.ods": (g4({"value": None, "formula": 'of:=IF([.B4]="8";"A";"B")'}), "cell-formula-no-cache"),
        "formula.ods": (g4({"formula": 'of:=IF([.B4]="8";"A";"B")'}), "cell-formula"),
    }
    for name, (edit, _) in cases.items():
        (tmp_path / name).write_bytes(ods_of(source, edit))

    def hide(sheets: list[Sheet]) -> None:
        sheets[0].hidden_rows.add(4)

    def merge(sheets: list[Sheet]) -> None:
        sheets[0].merged.append((4, 6, 5, 6))

    (tmp_path / "hidden.ods").write_bytes(ods_of(source, hide))
    (tmp_path / "merged.ods").write_bytes(ods_of(source, merge))
    report = {f.name: f for f in validate_paths(load_catalog("R6"), [tmp_path]).files}
    for name, (_, code) in cases.items():
        assert code in [i.code for i in report[name].issues], (name, [i.code for i in report[name].issues])
        assert next(i for i in report[name].issues if i.code == code).cell == "G4"
    assert "row-hidden" in [i.code for i in report["hidden.ods"].issues]
    assert "cell-merged" in [i.code for i in report["merged.ods"].issues]


# --- the contained reader: start methods, spawn, Windows job -----------------------------------------


def _aborts(*args) -> None:
    os.abort()


def _allocates(*args) -> int:
    return len(bytearray(2 * 2**30))


def _loops(*args) -> None:
    while True:
        pass


METHODS = sandbox.start_methods()  # without os.fork (Windows, or CI's simulation of it): spawn only


@pytest.fixture(params=METHODS)
def method(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(sandbox.START_METHOD_ENV, request.param)
    return request.param


def test_start_method_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sandbox.START_METHOD_ENV, raising=False)
    assert sandbox.start_method() == ("fork" if sys.platform.startswith("linux") and hasattr(os, "fork") else "spawn")
    monkeypatch.setenv(sandbox.START_METHOD_ENV, " Spawn ")
    assert sandbox.start_method() == "spawn"
    monkeypatch.setenv(sandbox.START_METHOD_ENV, "thread")
    with pytest.raises(ValueError, match="PIPELINE_START_METHOD"):
        sandbox.start_method()


def test_without_fork_the_reader_spawns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows has no os.fork: the default and the choices say so, and asking for fork is refused."""
    monkeypatch.delenv(sandbox.START_METHOD_ENV, raising=False)
    monkeypatch.delattr(os, "fork", raising=False)
    assert sandbox.start_method() == "spawn" and sandbox.start_methods() == ["spawn"]
    monkeypatch.setenv(sandbox.START_METHOD_ENV, "fork")
    with pytest.raises(ValueError, match="use one of: spawn"):
        sandbox.start_method()


def test_parse_works_under_every_start_method(method: str, source: bytes) -> None:
    sheets, checked, _report = read(ods_of(source), "提出.ods")
    assert checked.kind == "ods" and sheets and sheets[0].name == "記入シート"
    with sandbox.Worker(workbook.parse_sheets, timeout_s=30, memory_bytes=2**30) as worker:
        assert worker.call(source)[0][0] == "記入シート"
        assert worker._method == method and worker.memory_capped


def test_crash_is_reader_crashed_under_every_start_method(method: str, source: bytes) -> None:
    worker = sandbox.Worker(_aborts, timeout_s=30, memory_bytes=2**30)
    sheets, _, issues = read_in(worker, source, "提出.xlsx", Limits())
    assert sheets == [] and [i.code for i in issues] == ["reader-crashed"]
    assert "SIGABRT" in issues[0].message or "exit code" in issues[0].message


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_AS exists only on POSIX (Windows: a Job Object caps the reader)")
def test_memory_is_capped_under_every_start_method(method: str) -> None:
    with pytest.raises(sandbox.SandboxError) as err:
        sandbox.run_contained(_allocates, timeout_s=60, memory_bytes=2**30)
    assert err.value.kind == "memory"


def test_timeout_under_every_start_method(method: str) -> None:
    with pytest.raises(sandbox.SandboxError) as err:
        sandbox.run_contained(_loops, timeout_s=0.5, memory_bytes=2**30)
    assert err.value.kind == "timeout"


def test_windows_job_structures_match_winnt_h() -> None:
    # sizes and offsets of the 64-bit layout (SIZE_T 8 bytes), as on Windows x64
    if ctypes.sizeof(ctypes.c_size_t) != 8:
        pytest.skip("the offsets below are those of a 64-bit process")
    info = sandbox.job_limits(3 * 2**30)
    assert ctypes.sizeof(sandbox.JOBOBJECT_BASIC_LIMIT_INFORMATION) == 64
    assert ctypes.sizeof(sandbox.IO_COUNTERS) == 48
    assert ctypes.sizeof(info) == 144
    assert sandbox.JOBOBJECT_BASIC_LIMIT_INFORMATION.LimitFlags.offset == 16
    assert sandbox.JOBOBJECT_EXTENDED_LIMIT_INFORMATION.ProcessMemoryLimit.offset == 112
    assert ctypes.sizeof(sandbox.PROCESS_MEMORY_COUNTERS_EX) == 80
    raw = bytes(info)
    assert int.from_bytes(raw[16:20], "little") == 0x100 | 0x400 | 0x2000
    assert int.from_bytes(raw[112:120], "little") == 3 * 2**30


@pytest.mark.skipif(sys.platform == "win32", reason="checks the non-Windows path")
def test_no_job_object_outside_windows(source: bytes) -> None:
    with sandbox.Worker(workbook.parse_sheets, timeout_s=30, memory_bytes=2**30) as worker:
        worker.call(source)
        assert worker._job is None and worker.memory_capped


@pytest.mark.skipif(sys.platform != "win32", reason="the real Job Object exists only on Windows")
def test_windows_job_caps_the_child() -> None:  # pragma: no cover - Windows only
    with sandbox.Worker(_allocates, timeout_s=60, memory_bytes=2**30) as worker, pytest.raises(
        sandbox.SandboxError
    ) as err:
        worker.call()
    assert err.value.kind in ("memory", "crash")


def test_read_return_keeps_its_signature() -> None:
    import inspect

    params = list(inspect.signature(contained.read_return).parameters)
    assert params == ["data", "name", "limits", "read_own"]
    assert ".ods" in ingest.WORKBOOK_SUFFIXES and {".xls", ".xlsb"} <= ingest.WORKBOOK_SUFFIXES
