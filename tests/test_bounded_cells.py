"""Every cell we write from names, messages and lists is bounded by construction: 「ほか N 件」 for a
list cut short, 「(以下略。全文は実行レポート)」 for a text, so no number or length of inputs can
make a writer refuse and stop the night."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import openpyxl

from pipeline import celltext
from pipeline.catalog import load_catalog
from pipeline.master import master_name, summary_name
from pipeline.reader.annotate import FEEDBACK_SHEET, feedback_copy
from pipeline.report import Issue
from pipeline.runner import run_merge
from pipeline.settings import Settings

LONG = "【至急】令和6年度地域福祉計画評価表の提出についての確認依頼と再送付のお願い(差出人不明の転送分)・最終版の再確認用控えその2(第三稿)"


def test_bounded_list_keeps_what_fits_and_counts_the_rest() -> None:
    names = [f"{LONG}_{n:03}.xlsx" for n in range(450)]
    text = celltext.bounded_list(names, "\n")
    assert celltext.fits_in_cell(text)
    lines = text.split("\n")
    assert lines[-1] == f"ほか {450 - (len(lines) - 1)} 件(全文は実行レポート)"
    assert lines[:-1] == names[: len(lines) - 1]  # whole names, in order
    assert celltext.bounded_list(["a.xlsx", "b.xlsx"], "\n") == "a.xlsx\nb.xlsx"  # what fits is unchanged
    # one giant name cannot crowd out every other
    giant = ["𠮷" * 40_000, "b.xlsx"]
    cut = celltext.bounded_list(giant, "\n")
    assert celltext.utf16_len(cut) <= celltext.EXCEL_MAX_CHARS and cut.split("\n")[1] == "b.xlsx"
    assert cut.split("\n")[0].endswith(celltext.CUT_MARK)


def test_bounded_text_cuts_with_a_mark_and_never_splits_a_pair() -> None:
    assert celltext.bounded_text("短い理由") == "短い理由"
    text = celltext.bounded_text("𠮷" * 20_000)
    assert text.endswith("(以下略。全文は実行レポート)")
    assert celltext.utf16_len(text) <= celltext.EXCEL_MAX_CHARS
    assert set(text.removesuffix(celltext.CUT_MARK)) == {"𠮷"}


def test_450_long_unattributable_names_do_not_stop_the_night(tmp_path: Path, demo_returns: Path) -> None:
    inbox = tmp_path / "inbox"
    shutil.copytree(demo_returns, inbox)
    names = [f"{LONG}{n:03}.xlsx" for n in range(450)]
    assert all(len(n.encode("utf-8")) <= 255 for n in names)
    assert sum(len(n) + 1 for n in names) > celltext.EXCEL_MAX_CHARS
    for n in names:
        (inbox / n).write_bytes("評価表を送ります。\n".encode())  # not a workbook, no office in the name
    s = Settings(inbox=inbox, outbox=tmp_path / "outbox")
    run = run_merge(s)
    assert run.exit_code == 1 and run.report["rows"] == 69
    assert sorted(run.report["unattributed"]) == sorted(names)  # the run report holds every name
    catalog = load_catalog("R6")
    ws = openpyxl.load_workbook(s.outbox / master_name(catalog), read_only=True)["提出状況"]
    row = next(r for r in ws.iter_rows(values_only=True) if r[0] == "差出課不明")
    assert row[5] == 450
    cell = row[6]
    assert celltext.utf16_len(cell) <= celltext.EXCEL_MAX_CHARS
    lines = cell.split("\n")
    shown = len(lines) - 1
    assert 0 < shown < 450 and lines[-1] == f"ほか {450 - shown} 件(全文は実行レポート)"
    assert set(lines[:-1]) <= set(names)
    assert (s.outbox / summary_name(catalog)).is_file()
    # and the next night, with nothing new, runs the same way
    again = run_merge(s)
    assert again.exit_code == 1 and json.loads(again.report_path.read_text(encoding="utf-8"))["rows"] == 69


def test_a_feedback_copy_with_an_overlong_message_is_written_cut(tmp_path: Path, template_dir: Path) -> None:
    template = next(template_dir.glob("*.xlsx")).read_bytes()
    message = "事業評価「" + "あ" * 40_000 + "」は使えません。"
    issue = Issue("rating-invalid", "error", message, file="a.xlsx", sheet="記入シート", cell="G5")
    out = tmp_path / "a.xlsx"
    out.write_bytes(feedback_copy(template, "a.xlsx", [issue], office="健康課", source=LONG * 10 + ".xlsx").data)
    ws = openpyxl.load_workbook(out)[FEEDBACK_SHEET]
    texts = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    cut = [t for t in texts if t.startswith("事業評価「")]
    assert len(cut) == 1 and cut[0].endswith(celltext.CUT_MARK)
    assert celltext.utf16_len(cut[0]) <= celltext.EXCEL_MAX_CHARS
    assert len(ws.oddHeader.left.text) <= 255
