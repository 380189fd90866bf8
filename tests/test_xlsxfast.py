"""pipeline.xlsxfast writes what xlsxwriter writes: every part of the master and the summary,
byte for byte, against the stock writer (xlsxwriter.Workbook, 評価一覧 cell by cell), on the
published R6 answers with texts chosen to hit every escaping rule; and its zip is a valid one."""

from __future__ import annotations

import dataclasses
import io
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
import xlsxwriter

from pipeline import master, xlsxfast
from pipeline.catalog import load_catalog
from pipeline.merge import merge
from pipeline.sheets import evaluation_list, kit
from tests.test_master import GENERATED, build_files, published, sample_issues  # noqa: F401

# Texts xlsxwriter changes on the way into sharedStrings.xml, or writes raw, or quotes.
AWKWARD = [
    "", " leading", "trailing ", "AT&T", "1 > 0", "\u3000全角の空白", "末尾の改行\n", "a & b < c > d", '"quoted"',
    "_x0041_ looks escaped", "ctrl\x01\x1f char", "tab\tinside", "\r\ncrlf", "=1+1", "＝SUM(A1)",
    "x\ufffey", "𠮷野家", "長い" * 9000,
]
# The one text where we differ from stock xlsxwriter on purpose: it writes this shape raw, as XML.
RICH_SHAPED = "<r><t>注入</t></r><si><t>injected</t></si><r><t>x</t></r>"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog("R6")


def _inputs(catalog, published):  # noqa: F811
    texts = {a.key: AWKWARD[i % len(AWKWARD)] for i, a in enumerate(catalog.assignments)}
    files = build_files(catalog, published, texts=texts)
    result = merge(catalog, files)
    # a received time that is not an ISO time is written as text
    rows = list(result.rows)
    rows[3] = dataclasses.replace(rows[3], received="昨日", outlook=" ")
    return files, dataclasses.replace(result, rows=tuple(rows))


def _stock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xlsxfast, "Workbook", xlsxwriter.Workbook)
    real = evaluation_list.write_list
    monkeypatch.setattr(evaluation_list, "write_list", lambda *a, **k: real(*a, **k, fast=False))


def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        return {i.filename: z.read(i) for i in z.infolist()}


def test_master_and_summary_parts_are_stock_xlsxwriters(tmp_path: Path, catalog, published,  # noqa: F811
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    files, result = _inputs(catalog, published)
    master.write_master(tmp_path / "fast.xlsx", catalog, result, files, sample_issues(), generated=GENERATED)
    master.write_summary(tmp_path / "fast-s.xlsx", catalog, result, generated=GENERATED)
    with monkeypatch.context() as m:
        _stock(m)
        master.write_master(tmp_path / "stock.xlsx", catalog, result, files, sample_issues(), generated=GENERATED)
        master.write_summary(tmp_path / "stock-s.xlsx", catalog, result, generated=GENERATED)
    for fast, stock in (("fast.xlsx", "stock.xlsx"), ("fast-s.xlsx", "stock-s.xlsx")):
        a, b = _parts(tmp_path / fast), _parts(tmp_path / stock)
        assert list(a) == list(b)  # the same parts, in the same order
        for name in b:
            assert a[name] == b[name], name


def test_a_department_text_shaped_like_a_rich_string_is_escaped_not_written_as_xml(tmp_path: Path) -> None:
    """Stock xlsxwriter writes a string that starts with <r> and ends with </r> into
    sharedStrings.xml unescaped (it takes it for write_rich_string's output): a department's text
    of that shape would put its own XML into our workbook. Ours escapes it like any text."""
    def write(book: type, name: str) -> Path:
        path = tmp_path / name
        wb = book(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
        wb.add_worksheet().write_string(0, 0, RICH_SHAPED)
        wb.close()
        return path

    stock = zipfile.ZipFile(write(xlsxwriter.Workbook, "stock.xlsx")).read("xl/sharedStrings.xml")
    assert b"<si><t>injected</t></si>" in stock  # the hazard, in stock xlsxwriter
    path = write(xlsxfast.Workbook, "ours.xlsx")
    ours = zipfile.ZipFile(path).read("xl/sharedStrings.xml")
    assert b"<si><t>injected" not in ours and b"&lt;r&gt;&lt;t&gt;" in ours
    import openpyxl

    assert openpyxl.load_workbook(path).active["A1"].value == RICH_SHAPED  # read back whole, as text


def test_zip_is_deterministic_and_deflates_in_pieces(tmp_path: Path) -> None:
    big = tmp_path / "big.xml"
    big.write_bytes(b"".join(f"<si><t>{i} 評価の理由 {i * 7919 % 10007}</t></si>".encode() for i in range(200_000)))
    small = tmp_path / "small.xml"
    small.write_bytes(b"<a/>")
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    members = [("xl/sharedStrings.xml", str(big)), ("[Content_Types].xml", str(small)), ("docProps/空.xml", str(empty))]
    outs = []
    for threads in (1, 2, 3):
        buf = io.BytesIO()
        with pytest.MonkeyPatch.context() as m:
            m.setattr(xlsxfast, "DEFLATE_THREADS", threads)
            xlsxfast.write_zip(buf, members)
        outs.append(buf.getvalue())
    assert outs[0] == outs[1] == outs[2]
    with zipfile.ZipFile(io.BytesIO(outs[0])) as z:
        assert z.testzip() is None
        assert [i.filename for i in z.infolist()] == [name for name, _ in members]
        assert z.read("xl/sharedStrings.xml") == big.read_bytes()
        assert z.read("docProps/空.xml") == b""
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in z.infolist())


def test_merge_row_writes_what_merge_range_writes(tmp_path: Path) -> None:
    paths = []
    for light in (False, True):
        path = tmp_path / f"{light}.xlsx"
        wb = xlsxwriter.Workbook(str(path))
        wb.set_properties({"created": datetime(2025, 4, 1)})  # else core.xml holds now(), to the second
        ws = wb.add_worksheet()
        fmt = wb.add_format({"text_wrap": True, "border": 1})
        for r in range(40):
            for c0, c1 in ((0, 0), (1, 3), (4, 9)):
                if c1 > c0:
                    if light:
                        kit.merge_row(ws, r, c0, c1, fmt)
                    else:
                        ws.merge_range(r, c0, r, c1, "", fmt)
                ws.write_string(r, c0, f"{r}-{c0}", fmt)
        wb.close()
        paths.append(path)
    assert _parts(paths[0]) == _parts(paths[1])
