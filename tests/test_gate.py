"""Tests for the pre-parse gate and the sandbox: every hostile file is built at test time, none is committed.

The builders live in tests/hostile.py (shared with tests/test_hostile_run.py): valid workbooks come
from openpyxl/xlsxwriter; the hostile bits are injected by rewriting zip members, patching headers
with struct, or writing raw zip / OLE2 (CFB) bytes by hand. Each gate
case must use well under 10 s of CPU (CPU time, not wall time, so a busy machine cannot fail it).
"""

from __future__ import annotations

import io
import os
import random
import sys
import time
import zipfile

import openpyxl
import pytest
import xlsxwriter
from hostile import (
    LAUGHS,
    MAIN_NS,
    SPACES_BLOCK,
    XXE,
    ZIP_BOMB_BLOCK,
    base_xlsx,
    cfb,
    corrupt_crc,
    formatted_empty_rows,
    patch_sizes,
    raw_zip,
    rewrite,
    sheet_xml,
    streamed_sheet,
    with_dtd,
    with_sheet,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.limits import MIB, Limits
from pipeline.reader import gate
from pipeline.reader.gate import inspect_workbook
from pipeline.reader.sandbox import SandboxError, run_contained
from pipeline.reader.scanning import GateResult, SheetFacts
from pipeline.report import CODES

BOUND_S = 10.0


def check(data: bytes, name: str = "提出.xlsx", limits: Limits | None = None) -> GateResult:
    t0 = time.process_time()  # CPU time: the wall clock would measure a busy machine's neighbours too
    result = inspect_workbook(data, name, limits or Limits())
    elapsed = time.process_time() - t0
    assert elapsed < BOUND_S, f"gate took {elapsed:.1f} s of CPU"
    for issue in result.issues:  # every issue is a registered code with a Japanese message
        assert issue.code in CODES and issue.message and issue.file == name
    return result


def codes(result: GateResult) -> list[str]:
    return [i.code for i in result.issues]


def rejected(data: bytes, code: str, **kw) -> GateResult:
    result = check(data, **kw)
    assert not result.ok
    assert result.issues[0].code == code, codes(result)
    assert result.kind == "" and result.sheets == {}
    return result


# --- not a workbook -----------------------------------------------------------------------------


def test_valid_workbook_passes() -> None:
    result = check(base_xlsx())
    assert result.ok and result.kind == "xlsx" and codes(result) == []
    facts = result.sheets["記入シート"]
    assert (facts.cells, facts.max_row, facts.max_col, facts.state) == (2, 2, 2, "visible")


def test_xlsxwriter_workbook_passes_and_flags_calc_on_load() -> None:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf)
    ws = wb.add_worksheet("集計")
    ws.write_number("A1", 10)
    ws.write_formula("A2", "=A1*3")
    wb.close()
    result = check(buf.getvalue())
    assert result.ok and result.application == "Microsoft Excel" and result.calc_on_load
    assert result.sheets["集計"].formulas == {"A2": "A1*3"}
    assert (
        result.sheets["集計"].no_cache == set()
    )  # XlsxWriter caches 0: the reader warns (cell-uncalculated)


def test_zero_bytes() -> None:
    rejected(b"", "file-empty")


def test_too_large() -> None:
    rejected(base_xlsx(), "file-too-large", limits=Limits(max_file_mib=1000 / MIB))


@pytest.mark.parametrize(
    ("body", "looks_like"),
    [
        ("事業No.,担当課,事業評価\n1,地域福祉課,A\n".encode("cp932"), "CSV"),
        ("評価は A です。\n".encode(), "テキスト"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b"<html><body><table><tr><td>1</td></tr></table></body></html>", "HTML"),
        (b'<?xml version="1.0"?><?mso-application progid="Excel.Sheet"?><Workbook/>', "2003 XML"),
        (random.Random(20250601).randbytes(3000), "形式不明"),  # fixed: some random bytes read as text
    ],
)
def test_not_a_workbook(body: bytes, looks_like: str) -> None:
    if body[:4] == b"PK\x03\x04":
        body = b"x" + body
    result = rejected(body, "file-not-workbook")
    assert looks_like in result.issues[0].message


def test_zip_that_is_not_a_workbook() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("word/document.xml", "<w:document/>")
    result = rejected(buf.getvalue(), "file-not-workbook")
    assert "Word" in result.issues[0].message


# --- broken zips --------------------------------------------------------------------------------


def test_truncated_zip() -> None:
    data = base_xlsx()
    rejected(data[: len(data) // 2], "file-corrupt")


def test_corrupt_crc() -> None:
    result = rejected(corrupt_crc(base_xlsx(), "xl/worksheets/sheet1.xml"), "file-corrupt")
    assert "CRC" in result.issues[0].message


def test_flipped_compressed_byte() -> None:
    data = base_xlsx()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo("xl/worksheets/sheet1.xml")
    buf = bytearray(data)
    start = info.header_offset + 30 + len(info.filename)
    buf[start + info.compress_size // 2] ^= 0xFF
    rejected(bytes(buf), "file-corrupt")


def test_lying_declared_sizes() -> None:
    rows = b"".join(b'<row r="%d"><c r="A%d"><v>%d</v></c></row>' % (i, i, i) for i in range(1, 2000))
    data = with_sheet(sheet_xml(rows.decode()))
    result = rejected(patch_sizes(data, "xl/worksheets/sheet1.xml", 4000), "file-corrupt")
    assert "サイズ偽装" in result.issues[0].message


def test_declared_size_larger_than_content() -> None:
    rejected(patch_sizes(base_xlsx(), "xl/worksheets/sheet1.xml", 10_000), "file-corrupt")


# --- bombs --------------------------------------------------------------------------------------


def test_zip_bomb_ratio() -> None:
    data = streamed_sheet([ZIP_BOMB_BLOCK] * 10)  # no r=: positions are implicit  # 26 MB inflated, a few dozen KB on disk
    result = rejected(data, "file-zip-bomb")
    assert "圧縮率" in result.issues[0].message


def test_whitespace_bomb() -> None:
    data = streamed_sheet([SPACES_BLOCK] * 256, level=1)  # 256 MiB of spaces inside <sheetData>
    assert len(data) < 2 * 2**20
    rejected(data, "file-zip-bomb")


def test_total_inflated_limit() -> None:
    data = base_xlsx(sheets=3)
    rejected(data, "file-zip-bomb", limits=Limits(max_total_mib=5000 / MIB))


def test_overlapping_entries() -> None:
    data = raw_zip([("xl/a.bin", b""), ("xl/b.bin", b"x" * 100)], overlap_last_into_first=True)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:  # a valid zip for zipfile ...
        assert zf.read("xl/b.bin") == b"x" * 100
    rejected(data, "file-zip-bomb")  # ... but two members share bytes


def test_too_many_members() -> None:
    extra = {f"xl/media/image{i}.png": b"\x89PNG" for i in range(3000)}
    rejected(rewrite(base_xlsx(), add=extra), "file-too-many-members")


@pytest.mark.parametrize(
    "bad", ["../../evil.txt", "/etc/cron.d/x", "xl/../../evil.xml", "C:\\evil.txt", "xl\\x.xml"]
)
def test_bad_member_names(bad: str) -> None:
    rejected(rewrite(base_xlsx(), add={bad: b"x"}), "file-bad-member-name")


def test_duplicate_member_names() -> None:
    data = base_xlsx()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
        with pytest.warns(UserWarning):
            dst.writestr(
                "xl/worksheets/sheet1.xml", sheet_xml('<row r="1"><c r="XFD1048576"><v>1</v></c></row>')
            )
    rejected(out.getvalue(), "file-bad-member-name")


# --- unsafe XML ---------------------------------------------------------------------------------



@pytest.mark.parametrize("member", ["xl/worksheets/sheet1.xml", "xl/sharedStrings.xml", "xl/workbook.xml"])
@pytest.mark.parametrize("prolog", [LAUGHS, XXE], ids=["billion-laughs", "xxe"])
def test_dtd_rejected(member: str, prolog: str) -> None:
    result = rejected(with_dtd(base_xlsx(), member, prolog), "file-unsafe-xml")
    assert member in result.issues[0].message


def test_dtd_in_new_shared_strings_member() -> None:
    rejected(
        rewrite(
            base_xlsx(), add={"xl/sharedStrings.xml": (XXE + "<sst><si><t>&xxe;</t></si></sst>").encode()}
        ),
        "file-unsafe-xml",
    )


def test_dtd_in_utf16_part() -> None:
    core = ('<?xml version="1.0" encoding="UTF-16"?>' + XXE.split("?>", 1)[1] + "<x>&xxe;</x>").encode(
        "utf-16"
    )
    rejected(rewrite(base_xlsx(), {"docProps/core.xml": core}), "file-unsafe-xml")


def test_dtd_split_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    pad = b" " * (2**20 - 4)  # "<!DOCTYPE" straddles the 1 MiB chunk boundary
    xml = b'<?xml version="1.0"?>' + pad[: 2**20 - 21 - 4] + b"<!DOCTYPE x []><x/>"
    monkeypatch.setattr(gate, "MIN_INFLATE_RATIO", 0.0)  # the padding compresses far below 1 %
    rejected(rewrite(base_xlsx(), add={"customXml/item1.xml": xml}), "file-unsafe-xml")


# --- other containers ---------------------------------------------------------------------------


def test_encrypted_workbook() -> None:
    data = cfb({"EncryptionInfo": b"\x04\x00\x04\x00\x40\x00\x00\x00", "EncryptedPackage": os.urandom(2000)})
    import olefile

    assert olefile.isOleFile(io.BytesIO(data))
    result = rejected(data, "file-encrypted")
    assert "パスワードを外したコピー" in result.issues[0].message


def test_legacy_xls() -> None:
    # Excel 95 and older (BIFF5 and before) are refused; BIFF8 .xls is read (tests/test_formats.py)
    biff5 = b"\x09\x08\x10\x00\x00\x05\x05\x00" + b"\0" * 12 + b"\x0a\x00\x00\x00"
    rejected(cfb({"Workbook": biff5}), "file-legacy-xls", name="提出.xls")
    biff8_without_sheets = b"\x09\x08\x10\x00\x00\x06\x05\x00" + b"\0" * 12 + b"\x0a\x00\x00\x00"
    rejected(cfb({"Workbook": biff8_without_sheets}), "file-corrupt", name="提出.xls")


def test_other_ole_file() -> None:
    rejected(cfb({"WordDocument": b"\xec\xa5"}), "file-not-workbook", name="提出.doc")


def test_broken_ole_file() -> None:
    rejected(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "file-corrupt")


def test_xlsb() -> None:
    data = rewrite(base_xlsx(), {"xl/workbook.xml": None}, add={"xl/workbook.bin": b"\x83\x01\x00"})
    rejected(data, "file-xlsb", name="提出.xlsb")


def test_xlsm_macros_warn_but_pass() -> None:
    data = rewrite(base_xlsx(), add={"xl/vbaProject.bin": cfb({"dir": b"\x01"})})
    result = check(data, name="提出.xlsx")
    assert result.ok and result.kind == "xlsm"
    assert codes(result) == ["file-macros"]
    assert result.issues[0].severity == "warning"


def test_xlm_macro_sheet_warns() -> None:
    data = rewrite(
        base_xlsx(),
        add={"xl/macrosheets/sheet1.xml": sheet_xml('<row r="1"><c r="A1"><f>EXEC("calc")</f></c></row>')},
    )
    assert "file-macros" in codes(check(data))


# --- sheet extent and size ----------------------------------------------------------------------


def test_dimension_lie_passes() -> None:
    xml = sheet_xml(
        '<row r="1"><c r="A1"><v>1</v></c><c r="C1"><v>2</v></c></row><row r="4"><c r="B4"><v>3</v></c></row>',
        before='<dimension ref="A1:XFD1048576"/>',
    )
    result = check(with_sheet(xml))
    assert result.ok
    facts = result.sheets["記入シート"]
    assert (facts.cells, facts.max_row, facts.max_col) == (3, 4, 3)


@pytest.mark.parametrize("far", ["XFD1048576", "A1048576", "XFD1", "GS100001"])
def test_far_apart_cells_rejected(far: str) -> None:
    xml = sheet_xml(
        f'<row r="1"><c r="A1"><v>1</v></c></row><row r="{far.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")}">'
        f'<c r="{far}"><v>2</v></c></row>'
    )
    result = rejected(with_sheet(xml), "sheet-too-large")
    assert result.issues[0].sheet == "記入シート"
    assert far in result.issues[0].message


def test_limits_are_inclusive() -> None:
    xml = sheet_xml('<row r="100000"><c r="GR100000"><v>1</v></c></row>')
    facts = check(with_sheet(xml)).sheets["記入シート"]
    assert (facts.max_row, facts.max_col) == (100_000, 200)


def test_far_cell_hidden_behind_quoted_gt() -> None:
    # '>' is legal inside an attribute value; a naive [^>]* tag regex would lose r="XFD1048576".
    xml = sheet_xml(
        '<row r="1"><c r="A1"><v>1</v></c></row><row r="1048576"><c x=">" r="XFD1048576"><v>2</v></c></row>'
    )
    rejected(with_sheet(xml), "sheet-too-large")


def test_far_cell_with_implicit_positions_and_prefix() -> None:
    # OpenXML SDK style x: prefix, no r attributes: the 201st cell of a row is column GS.
    cells = "<x:c><x:v>1</x:v></x:c>" * 201
    rejected(with_sheet(sheet_xml(f"<x:row>{cells}</x:row>", prefix="x")), "sheet-too-large")


def test_far_cell_via_char_reference() -> None:
    xml = sheet_xml('<row r="1048576"><c r="&#88;FD1048576"><v>2</v></c></row>')
    rejected(with_sheet(xml), "sheet-too-large")


def test_styled_empty_far_cell_does_not_extend_extent() -> None:
    xml = sheet_xml('<row r="1"><c r="A1"><v>1</v></c></row><row r="1048576"><c r="XFD1048576" s="1"/></row>')
    result = check(with_sheet(xml))
    assert result.ok
    assert result.sheets["記入シート"].max_row == 1


def test_huge_merged_range_rejected() -> None:
    xml = sheet_xml(
        '<row r="1"><c r="A1"><v>1</v></c></row>',
        after='<mergeCells count="1"><mergeCell ref="A1:XFD1048576"/></mergeCells>',
    )
    rejected(with_sheet(xml), "sheet-too-large")


def test_bad_cell_reference_rejected() -> None:
    rejected(with_sheet(sheet_xml('<row r="1"><c r="A0"><v>1</v></c></row>')), "file-corrupt")


def test_million_formatted_empty_rows_rejected_fast() -> None:
    data = streamed_sheet(formatted_empty_rows(), level=1)
    result = rejected(data, "sheet-too-large")
    assert "2,000,000" in result.issues[0].message


def test_many_real_cells_within_limits_pass() -> None:
    block = b"".join(
        b'<row r="%d"><c r="A%d"><v>%d</v></c><c r="B%d" t="s"><v>0</v></c></row>' % (i, i, i, i)
        for i in range(1, 50_001)
    )
    data = streamed_sheet([block])
    facts = check(data).sheets["記入シート"]
    assert (facts.cells, facts.max_row, facts.max_col) == (100_000, 50_000, 2)


# --- facts for the reader -----------------------------------------------------------------------


def facts_workbook() -> bytes:
    rows = (
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1"><v>10</v></c></row>'
        '<row r="2" hidden="1"><c r="A2"><f>SUM(B1:B1)</f><v>10</v></c>'
        '<c r="B2"><f>B1*2</f></c>'  # no cached value
        '<c r="C2"><f>B1*3</f><v/></c>'  # openpyxl style: empty cache
        '<c r="D2" t="str"><f>""</f><v></v></c></row>'  # a string result may be empty
        '<row r="3"><c r="A3" t="e"><v>#REF!</v></c><c r="B3" t="e"><f>1/0</f><v>#DIV/0!</v></c>'
        "<c r=\"C3\"><f>cmd|' /C calc'!A0</f><v>0</v></c>"
        '<c r="D3"><f>[1]Sheet1!A1</f><v>99</v></c></row>'
        '<row r="5"><c r="A5"><f t="shared" ref="A5:A7" si="0">B5+1</f><v>1</v></c></row>'
        '<row r="6" hidden="true"><c r="A6"><f t="shared" si="0"/><v>1</v></c></row>'
        '<row r="7"><c r="A7" t="inlineStr"><is><t>x</t></is></c><c r="B7" s="3"/></row>'
    )
    xml = sheet_xml(
        rows, after='<mergeCells count="2"><mergeCell ref="A5:A7"/><mergeCell ref="B9:C9"/></mergeCells>'
    )
    data = rewrite(
        base_xlsx(sheets=4),
        {"xl/worksheets/sheet1.xml": xml},
        add={"xl/externalLinks/externalLink1.xml": b'<externalLink xmlns="' + MAIN_NS.encode() + b'"/>'},
    )
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        wb = zf.read("xl/workbook.xml").decode()
    wb = wb.replace('name="S2" sheetId="2" state="visible"', 'name="S2" sheetId="2" state="hidden"')
    wb = wb.replace('name="S3" sheetId="3" state="visible"', 'name="S3" sheetId="3" state="veryHidden"')
    wb = wb.replace('name="S4" sheetId="4" state="visible"', 'name="_meta" sheetId="4" state="veryHidden"')
    return rewrite(data, {"xl/workbook.xml": wb.encode()})


def test_facts_captured_with_exact_addresses() -> None:
    result = check(facts_workbook())
    assert result.ok and result.kind == "xlsx" and result.external_links
    assert sorted(codes(result)) == ["content-hidden", "content-hidden", "external-links"]
    assert {(i.sheet, i.value) for i in result.issues if i.code == "content-hidden"} == {
        ("S2", "hidden"),
        ("S3", "veryHidden"),
    }
    assert set(result.sheets) == {"記入シート", "S2", "S3", "_meta"}
    f: SheetFacts = result.sheets["記入シート"]
    assert f.formulas == {
        "A2": "SUM(B1:B1)",
        "B2": "B1*2",
        "C2": "B1*3",
        "D2": '""',
        "B3": "1/0",
        "C3": "cmd|' /C calc'!A0",
        "D3": "[1]Sheet1!A1",
        "A5": "B5+1",
        "A6": "B6+1",  # shared formula, shifted like Excel shows it
    }
    assert f.no_cache == {"B2", "C2"}
    assert f.errors == {"A3": "#REF!", "B3": "#DIV/0!"}
    assert f.merged == ["A5:A7", "B9:C9"]
    assert f.hidden_rows == {2, 6}
    assert (f.cells, f.max_row, f.max_col) == (13, 7, 4)
    assert result.sheets["S3"].state == "veryHidden" and result.sheets["_meta"].state == "veryHidden"


def test_openpyxl_made_hidden_rows_merges_and_states() -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "評価"
    ws["A1"], ws["A12"], ws["G12"] = "x", 5, "=A12*2"
    ws.merge_cells("A5:A7")
    ws.row_dimensions[3].hidden = True
    meta = wb.create_sheet("_meta")
    meta.sheet_state = "veryHidden"
    meta["A1"] = "template-v3"
    buf = io.BytesIO()
    wb.save(buf)
    result = check(buf.getvalue())
    assert result.ok and codes(result) == []  # our own _meta sheet is not "hidden content"
    f = result.sheets["評価"]
    assert f.formulas == {"G12": "A12*2"} and f.no_cache == {"G12"}
    assert f.merged == ["A5:A7"] and f.hidden_rows == {3}
    assert result.application.startswith("Microsoft Excel Compatible / Openpyxl")


def test_sheet_part_missing_is_corrupt() -> None:
    rejected(rewrite(base_xlsx(), {"xl/worksheets/sheet1.xml": None}), "file-corrupt")


# --- the gate never raises ----------------------------------------------------------------------

SEED = facts_workbook()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, len(SEED) - 1), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(0, len(SEED)),
)
def test_mutated_files_never_raise(flips: list[tuple[int, int]], cut: int) -> None:
    buf = bytearray(SEED)
    for pos, val in flips:
        buf[pos] = val
    result = check(bytes(buf[: max(cut, 1)]))
    assert result.ok == (not any(i.severity == "error" for i in result.issues))
    if not result.ok:
        assert result.kind == "" and result.sheets == {}


# --- sandbox ------------------------------------------------------------------------------------


def _returns(x: int) -> dict[str, int]:
    return {"x": x * 2}


def _aborts() -> None:
    os.abort()


def _loops() -> None:
    while True:
        pass


def _allocates() -> int:
    return len(bytearray(2 * 2**30))


def _raises() -> None:
    raise ValueError("bad cell")


def _calamine_reads(data: bytes) -> int:
    import python_calamine

    wb = python_calamine.load_workbook(io.BytesIO(data))
    return len(wb.get_sheet_by_index(0).to_python())


def test_sandbox_returns_value() -> None:
    assert run_contained(_returns, 21, timeout_s=10, memory_bytes=2**30) == {"x": 42}


def test_sandbox_reraises_ordinary_exception() -> None:
    with pytest.raises(ValueError, match="bad cell"):
        run_contained(_raises, timeout_s=10, memory_bytes=2**30)


def test_sandbox_crash() -> None:
    with pytest.raises(SandboxError) as err:
        run_contained(_aborts, timeout_s=10, memory_bytes=2**30)
    assert err.value.kind == "crash" and "SIGABRT" in err.value.detail


def test_sandbox_timeout() -> None:
    with pytest.raises(SandboxError) as err:
        run_contained(_loops, timeout_s=0.5, memory_bytes=2**30)
    assert err.value.kind == "timeout"  # and the child was killed: run_contained returned at all


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_AS exists only on POSIX (Windows: a Job Object caps the reader)")
def test_sandbox_memory() -> None:
    with pytest.raises(SandboxError) as err:
        run_contained(_allocates, timeout_s=20, memory_bytes=2**30)
    assert err.value.kind == "memory"


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_AS exists only on POSIX (Windows: a Job Object caps the reader)")
def test_sandbox_contains_calamine_abort_that_the_gate_rejects() -> None:
    # The 2 KB file that makes calamine abort the process (calamine #693): the gate rejects it,
    # and even if it did not, the sandbox turns the abort into an error instead of our death.
    xml = sheet_xml(
        '<row r="1"><c r="A1"><v>1</v></c></row><row r="1048576"><c r="XFD1048576"><v>2</v></c></row>'
    )
    data = with_sheet(xml)
    assert not check(data).ok
    with pytest.raises(SandboxError) as err:
        run_contained(_calamine_reads, data, timeout_s=30, memory_bytes=2**30)
    assert err.value.kind in ("memory", "crash")


def test_one_member_name_rule_for_workbook_packages_and_zips_of_returns() -> None:
    from pipeline.reader.scan_zip import bad_part_name, escapes_archive

    for name in ("/etc/passwd", "\\評価.xml", "C:評価.xlsx", "健康課/../../評価.xlsx", "a\\..\\b.xlsx",
                 "評価\x00.xlsx", "評価\x1f.xlsx"):
        assert escapes_archive(name) and bad_part_name(name), name  # refused in every zip
    for name in ("健康課/評価表.xlsx", "回答 (1).xlsx", "..評価.xlsx", "R6..最終/評価.xlsx"):
        assert not escapes_archive(name) and not bad_part_name(name), name
    for name in ("xl\\worksheets\\sheet1.xml", "./xl/workbook.xml", "xl/./styles.xml"):
        assert bad_part_name(name) and not escapes_archive(name), name  # a package's parts only
