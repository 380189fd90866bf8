"""Smoke test of benchmarks/run.py: the smallest benchmark runs end to end and reports honest numbers.

CI runs only this (N = 15, one run, about 10 s on the 2-core machine; the corpus is cached under
benchmarks/work/, which git ignores). The real benchmark is `make bench`; see docs/benchmarks.md.
Nothing here asserts a timing: only that every scenario ran, wrote every row it should, and that the
memory numbers are each scenario's own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KEYS = {
    # the keys other tools read (kept exactly)
    "files", "rows", "ours_s", "rerun_s", "baseline_s", "floor_s", "peak_rss_mib",
    # the clerk's scripts, and ratios measured side by side in the same run
    "clerk_s", "clerk_plain_s", "ours_vs_clerk", "ours_vs_clerk_plain", "ours_vs_floor", "ours_vs_baseline",
    "per_file_ms", "rows_per_s", "ratio_baseline", "ratio_floor", "peak", "rows_by_scenario", "outputs", "machine",
    # the realistic night: 1 % of the returns new or changed, on the cold run's outbox
    "nightly_s", "nightly_vs_clerk",
}
SCENARIOS = ("ours", "rerun", "baseline", "clerk_plain", "clerk", "floor")
# The benchmark's parent holds this much while it measures. A child of a big parent inherits the
# parent's high-water RSS on Linux (execve keeps it), so a method that measured the children from the
# parent would report every scenario above this; each scenario's own tree is far below it at N = 15.
BALLAST_MIB = 384

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def result() -> dict:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--files", "15", "--runs", "1", "--json",
         "--parent-ballast-mib", str(BALLAST_MIB)],
        cwd=ROOT, capture_output=True, text=True, encoding="utf-8", timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"one N must print exactly one JSON object, got {len(lines)} lines"
    return json.loads(lines[0])


def test_reports_every_key(result: dict) -> None:
    assert set(result) >= KEYS, KEYS - set(result)
    assert result["files"] == 15
    assert result["runs"] == 1
    # (a commit landing during the run only asks for a rerun; anything else is a failure)
    assert not [n for n in result["notes"] if "code changed" not in n], result["notes"]


def test_values_are_sane(result: dict) -> None:
    for key in ("ours_s", "rerun_s", "nightly_s", "nightly_vs_clerk", "baseline_s", "clerk_plain_s", "clerk_s", "floor_s", "per_file_ms", "rows_per_s",
                "peak_rss_mib", "ours_vs_baseline", "ours_vs_clerk_plain", "ours_vs_clerk", "ours_vs_floor"):
        assert isinstance(result[key], (int, float)) and result[key] > 0, (key, result[key])
    # one repetition: the paired ratio is the ratio of that repetition's times
    for other in ("baseline", "clerk_plain", "clerk", "floor"):
        assert result[f"ours_vs_{other}"] == pytest.approx(result["ours_s"] / result[f"{other}_s"], rel=1e-2), other
    assert result["ratio_floor"] == result["ours_vs_floor"] and result["ratio_baseline"] == result["ours_vs_baseline"]
    assert result["per_file_ms"] == pytest.approx(1000 * result["ours_s"] / 15, rel=1e-2)
    assert result["exit"]["ours"] == [1]  # 5 % of the returns have errors
    assert result["exit"]["nightly"] == [1]  # the corrected returns replace clean ones; the errors stay
    assert result["corpus"]["nightly_changed"] == 1  # 1 % of 15, at least one
    assert all(result["exit"][k] == [0] for k in ("baseline", "clerk_plain", "clerk", "floor")), result["exit"]


def _data_rows(path: str) -> int:
    """Rows of the workbook's first sheet, its one header row not counted (read back with calamine)."""
    from python_calamine import CalamineWorkbook

    rows = CalamineWorkbook.from_path(path).get_sheet_by_index(0).to_python()
    return sum(1 for r in rows[1:] if any(v != "" for v in r))


def test_every_output_holds_every_row(result: dict) -> None:
    corpus = result["corpus"]
    total = corpus["rows"]
    assert 15 * 5 <= total <= 15 * 55
    expected = {
        "ours": total - corpus["faulty_rows"],  # the merge drops every row with an error
        "baseline": total - corpus["value_faulty_rows"],  # schema checks only: unknown 担当課 rows stay
        "clerk": total - corpus["value_faulty_rows"],  # rating A-D and non-null: the same rows go
        "clerk_plain": total,
        "floor": total,
    }
    assert result["rows"] == expected["ours"]  # run-report.json of the CLI merge
    assert result["rows_by_scenario"] == expected
    for name in ("baseline", "clerk_plain", "clerk", "floor"):
        assert _data_rows(result["outputs"][name]) == expected[name], name


def test_peak_memory_is_per_scenario(result: dict) -> None:
    peak = result["peak"]
    assert all(isinstance(peak[k], (int, float)) and peak[k] > 5 for k in SCENARIOS), peak
    assert result["peak_rss_mib"] == peak["ours"]
    # none of them carries the parent's ballast
    assert all(peak[k] < BALLAST_MIB for k in SCENARIOS), (BALLAST_MIB, peak)
    # the floor imports no pandas and holds 478 rows: well under the merge, which imports pandas and pandera
    assert peak["floor"] < 0.5 * peak["ours"], peak
    assert result["peak_tree_rss_mib"] >= result["peak_rss_mib"]


def test_corpus_is_what_the_merge_expects(result: dict) -> None:
    # the generated returns are recognised as our templates: clean ones accepted, faulty ones partial
    statuses = result["statuses"]
    errors = result["corpus"]["error_files"]
    assert statuses["accepted"] == 15 - errors and statuses["partial"] == errors
    assert statuses["rejected"] == 0
    assert result["inproc"]["baseline"]["yaml_loader"] == ("CSafeLoader" if result["machine"]["libyaml"] else "SafeLoader")
    assert result["machine"]["nproc"] >= 1 and result["machine"]["python"]
