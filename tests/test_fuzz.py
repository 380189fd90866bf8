"""Fuzzing validation: whatever a department sends, `validate_paths` never raises and never loses a row.

Two properties, both CI-sized and deterministic (fixed seeds):

1. Structured (hypothesis, `derandomize=True`): workbooks in the layouts people really make —
   extra and reordered columns, blank rows, the header further down, title rows above it, several
   sheets, written by xlsxwriter or openpyxl — with random cell contents (Japanese and full-width
   text, control characters, numbers typed as text, dates, floats, very long strings, None).
   `validate_paths` never raises, and every non-blank data row either becomes an Evaluation or
   has at least one error issue at its own row (or the whole file is rejected with a file-level
   error): nothing is dropped silently. Every issue code is a registered one.
2. Mutation (random.Random with a fixed seed): bytes of valid returns flipped, overwritten and
   truncated, a few hundred files validated in one batch. `validate_paths` never raises, and every
   issue code that comes out is in `pipeline.report.CODES` (so has a severity, level and a
   Japanese message).

Run longer locally (the whole file takes well under a minute in CI):

    FUZZ_EXAMPLES=2000 FUZZ_MUTATIONS=5000 .venv/bin/pytest tests/test_fuzz.py -q

FUZZ_EXAMPLES sets hypothesis' max_examples for the structured test (default 300) and
FUZZ_MUTATIONS the number of mutated files (default 500). Set FUZZ_SEED=<int> to explore other
inputs: hypothesis then draws from that seed instead of its fixed derandomised stream, and the
mutations use it too.
"""

from __future__ import annotations

import io
import os
import random
import re
import zipfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from plan_schemas.evaluation import DEPARTMENT, MEASURE, OUTLOOK, PROJECT, RATING, RESULT

from pipeline.catalog import load_catalog
from pipeline.reader.rows import LABELS
from pipeline.report import CODES
from pipeline.validate import validate_paths

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
MUTATIONS = int(os.environ.get("FUZZ_MUTATIONS", "500"))
SEED = os.environ.get("FUZZ_SEED")
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=SEED is None,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)

CATALOG = load_catalog("R6")
ASSIGNMENTS = CATALOG.assignments
COLUMNS = list(LABELS)  # the eight published columns, in published order

# --- cell contents --------------------------------------------------------------------------------

japanese = st.text(
    alphabet=st.sampled_from(
        list("地域福祉計画の進捗評価事業実績展望ほぼ達成アイウ。、・ー（）①②ＡＢＣＤ１２３　 ")
    ),
    max_size=40,
)
controls = st.lists(
    st.sampled_from(["\x01", "\x0b", "\x1f", "\t", "\r", "\n", "_x0001_", "_x000D_", "a"]), max_size=8
).map("".join)


def long_text(seed: int) -> str:
    """33,000 varied characters (a repeated one would compress past the zip-bomb ratio)."""
    rng = random.Random(seed)
    return "".join(
        rng.choice("地域福祉計画の進捗状況及び評価事業実績展望アイウエオ、。１２３ABC") for _ in range(33_000)
    )


anything = st.one_of(
    st.none(),
    japanese,
    controls,
    st.text(max_size=30),  # any unicode (openpyxl refuses some: see `safe`)
    st.integers(-(10**12), 10**12),
    st.integers(0, 99).map(str),  # numbers typed as text
    st.floats(allow_nan=False, allow_infinity=False),
    st.dates(min_value=date(1900, 3, 1), max_value=date(2100, 1, 1)),
    st.datetimes(min_value=datetime(1900, 3, 1), max_value=datetime(2100, 1, 1)),
    st.booleans(),
    st.integers(0, 2**32).map(long_text),  # over Excel's 32,767 characters per cell
    st.sampled_from(
        ["#REF!", "=1+1", "＝SUM(A1)", "@x", "※注記", "(1)①", "（１）②", "31～34", "A", "ｂ", " C "]
    ),
)
ratings = st.one_of(st.sampled_from(["A", "B", "C", "D", "ａ", " b", "Ｃ", "E", "", "AB"]), anything)


@st.composite
def data_row(draw) -> dict[str, object]:
    """One row of the table: a real (事業, 担当課); half the time filled in correctly (with the
    spellings people use), otherwise with anything in any cell."""
    a = draw(st.sampled_from(ASSIGNMENTS))
    project = CATALOG.projects[a.project]
    if draw(st.booleans()):
        return {
            MEASURE: draw(st.sampled_from([project.measure_code, "", " " + project.measure_code])),
            PROJECT: draw(st.sampled_from([project.label, " " + project.label])),
            "個別事業・取り組み": project.name,
            "内容": project.content,
            DEPARTMENT: draw(st.sampled_from([a.department, a.department + "\u3000"])),
            RESULT: draw(japanese.filter(str.strip)) + "。",
            RATING: draw(st.sampled_from(["A", "B", "C", "D", "ａ", " b", "Ｃ"])),
            OUTLOOK: "引き続き" + draw(japanese),
        }
    return {
        MEASURE: draw(st.one_of(st.just(project.measure_code), anything)),
        PROJECT: draw(st.one_of(st.just(project.label), st.just(project.key), anything)),
        "個別事業・取り組み": draw(st.one_of(st.just(project.name), anything)),
        "内容": draw(st.one_of(st.just(""), anything)),
        DEPARTMENT: draw(
            st.one_of(st.just(a.department), st.sampled_from([a.department + " ", "ちいき福祉課"]))
        ),
        RESULT: draw(st.one_of(japanese, anything)),
        RATING: draw(ratings),
        OUTLOOK: draw(st.one_of(japanese, anything)),
    }


@st.composite
def layout(draw) -> dict:
    """Sheets of a workbook: per sheet, the column order (with extra columns), title rows, rows."""
    sheets = []
    for i in range(draw(st.integers(1, 3))):
        columns: list[str | None] = list(draw(st.permutations(COLUMNS)))
        for _ in range(draw(st.integers(0, 2))):
            columns.insert(
                draw(st.integers(0, len(columns))), draw(st.sampled_from(["備考", "確認欄", "メモ"]))
            )
        if draw(st.integers(0, 9)) == 9:  # a required column deleted now and then
            columns.remove(draw(st.sampled_from([PROJECT, DEPARTMENT, RESULT, RATING, OUTLOOK])))
        rows = draw(st.lists(st.one_of(data_row(), st.just(None)), min_size=1, max_size=6))  # None: blank
        sheets.append({
            "name": draw(st.sampled_from(["記入シート", "評価", "Sheet", "基本目標"])) + str(i + 1),
            "title_rows": draw(st.integers(0, 6)),
            "columns": columns,
            "rows": rows,
        })  # fmt: skip
    return {"sheets": sheets, "writer": draw(st.sampled_from(["xlsxwriter", "openpyxl"]))}


def safe(value: object) -> object:
    """What a writer can store: XML 1.0 has no place for most C0 characters or lone surrogates."""
    if isinstance(value, str):
        return "".join(ch for ch in value if ch in "\t\n\r" or (ord(ch) >= 0x20 and not 0xD800 <= ord(ch) <= 0xDFFF
                                                                and ch not in "\ufffe\uffff"))  # fmt: skip
    return value


def write(book: dict, path: Path) -> dict[tuple[str, int], dict]:
    """Write the workbook; return its non-blank data rows by (sheet, Excel row)."""
    data_rows: dict[tuple[str, int], dict] = {}
    grid: dict[str, list[list[object]]] = {}
    for sheet in book["sheets"]:
        cells: list[list[object]] = [[f"令和6年度 評価表 その{k + 1}"] for k in range(sheet["title_rows"])]
        cells.append([LABELS[c][0] if c in LABELS else c for c in sheet["columns"]])
        for row in sheet["rows"]:
            if row is None:
                cells.append([])
                continue
            values = [safe(row.get(c)) if c in LABELS else "x" for c in sheet["columns"]]
            cells.append(values)
            if any(str(row.get(c) or "").strip() for c in (DEPARTMENT,) if c in sheet["columns"]):
                data_rows[(sheet["name"], len(cells))] = row
        grid[sheet["name"]] = cells
    if book["writer"] == "xlsxwriter":
        wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
        for name, cells in grid.items():
            ws = wb.add_worksheet(name)
            for r, values in enumerate(cells):
                for c, v in enumerate(values):
                    if isinstance(v, datetime | date):
                        ws.write_datetime(r, c, v, wb.add_format({"num_format": "yyyy/mm/dd"}))
                    elif isinstance(v, str):
                        ws.write_string(r, c, v)
                    elif v is not None:
                        ws.write(r, c, v)
        wb.close()
    else:
        wb = openpyxl.Workbook()
        wb.remove(wb.active)
        for name, cells in grid.items():
            ws = wb.create_sheet(name)
            for r, values in enumerate(cells):
                for c, v in enumerate(values):
                    if v is not None:
                        cell = ws.cell(r + 1, c + 1, v)
                        if isinstance(v, str):
                            cell.data_type = "s"  # text, even when it starts with '='
        wb.save(path)
    return data_rows


@FUZZ
@seed(int(SEED or 0))  # (ignored while derandomize=True)
@given(book=layout())
def test_no_row_is_dropped_silently(book: dict, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "返送.xlsx"
    data_rows = write(book, path)
    report = validate_paths(CATALOG, [path])  # must not raise
    (file,) = report.files
    assert all(i.code in CODES for i in file.issues)
    if any(i.is_error and i.is_file_level for i in file.issues):
        assert file.status == "rejected" and not file.rows
        return
    evaluated = {(e.sheet, e.row) for e in file.rows}
    flagged = {(i.sheet, i.row) for i in file.issues if i.is_error and i.row}
    # a data row is also accounted for when the sheet it is on was not taken as a data sheet at all
    # (only possible when its header lost a required column: column-missing rejects the file above),
    # or when its whole sheet is named as not read (extra-sheet: another table is the answers)
    not_read = {i.sheet for i in file.issues if i.code == "extra-sheet"}
    lost = {key: row for key, row in data_rows.items()
            if key not in evaluated and key not in flagged and key[0] not in not_read}
    assert not lost, f"rows neither read nor flagged: {lost}"


def test_a_sheet_that_lost_its_project_column_is_not_dropped_silently(tmp_path: Path) -> None:
    # Found by the fuzz test above: the second sheet's header lacks 事業No., so it is not taken as
    # a table; the first sheet is, so no header-not-found either, and the row vanishes unreported.
    a = ASSIGNMENTS[0]
    project = CATALOG.projects[a.project]
    row = {MEASURE: project.measure_code, PROJECT: project.label, "個別事業・取り組み": project.name,
           "内容": "", DEPARTMENT: a.department, RESULT: "実施した。", RATING: "A", OUTLOOK: "継続する。"}  # fmt: skip
    without_project = [c for c in COLUMNS if c != PROJECT]
    book = {"writer": "openpyxl", "sheets": [
        {"name": "記入シート1", "title_rows": 0, "columns": COLUMNS, "rows": [row]},
        {"name": "記入シート2", "title_rows": 0, "columns": without_project, "rows": [row]},
    ]}  # fmt: skip
    path = tmp_path / "返送.xlsx"
    write(book, path)
    (file,) = validate_paths(CATALOG, [path]).files
    assert any(i.is_error and i.sheet == "記入シート2" for i in file.issues), [i.code for i in file.issues]


# --- mutation -------------------------------------------------------------------------------------


def mutate(rng: random.Random, seed: bytes) -> bytes:
    buf = bytearray(seed)
    how = rng.random()
    if how < 0.4:  # flip a few bits
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    elif how < 0.7:  # overwrite a run of bytes
        start = rng.randrange(len(buf))
        for i in range(start, min(len(buf), start + rng.randint(1, 64))):
            buf[i] = rng.randrange(256)
    elif how < 0.85:  # truncate
        del buf[rng.randrange(1, len(buf)) :]
    else:  # one character of a cell's text replaced, zipped again: a valid zip, maybe broken XML
        with zipfile.ZipFile(io.BytesIO(seed)) as src:
            parts = {info.filename: src.read(info.filename) for info in src.infolist()}
        body = bytearray(parts["xl/worksheets/sheet1.xml"])
        texts = [m.start(1) for m in re.finditer(rb"<t[^>]*>([^<])", body)]
        body[rng.choice(texts)] = rng.choice(b'<>&"#;x0123456789ACDZ ')
        parts["xl/worksheets/sheet1.xml"] = bytes(body)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
            for name, part in parts.items():
                dst.writestr(name, part)
        return out.getvalue()
    return bytes(buf)


@pytest.mark.slow
def test_mutated_returns_never_raise_and_every_code_is_registered(demo_returns: Path, tmp_path: Path) -> None:
    rng = random.Random(int(SEED) if SEED else 20250530)
    seeds = [p.read_bytes() for p in sorted(demo_returns.glob("*.xlsx"))]
    for n in range(MUTATIONS):
        (tmp_path / f"変異{n:05d}.xlsx").write_bytes(mutate(rng, rng.choice(seeds)))
    report = validate_paths(CATALOG, [tmp_path])  # one batch, one reader: must not raise
    assert len(report.files) == MUTATIONS
    codes = {i.code for f in report.files for i in f.issues}
    assert codes <= set(CODES), codes - set(CODES)
    assert all(f.status in ("accepted", "partial", "rejected") for f in report.files)
    # the gate and the reader saw real damage: most mutants are refused, some are still read
    statuses = [f.status for f in report.files]
    assert statuses.count("rejected") > MUTATIONS // 2 and len(statuses) - statuses.count("rejected") > 0
