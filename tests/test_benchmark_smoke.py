"""Smoke test of benchmarks/run.py: the smallest benchmark runs end to end and reports sane numbers.

CI runs only this (N = 15, one run, about 20 s on the 2-core machine; the corpus is cached under
benchmarks/work/, which git ignores). The real benchmark is `make bench`; see docs/benchmarks.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KEYS = {
    "files", "rows", "ours_s", "rerun_s", "baseline_s", "floor_s", "peak_rss_mib",
    "per_file_ms", "rows_per_s", "ratio_baseline", "ratio_floor", "machine",
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def result() -> dict:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--files", "15", "--runs", "1", "--json"],
        cwd=ROOT, capture_output=True, text=True, encoding="utf-8", timeout=240,
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
    assert result["rows"] > 0
    # about 30 rows per return; a few rows carry injected errors and are excluded from the master
    assert 15 * 5 <= result["rows"] <= result["corpus"]["rows"] <= 15 * 55
    for key in ("ours_s", "rerun_s", "baseline_s", "floor_s", "per_file_ms", "rows_per_s", "peak_rss_mib"):
        assert isinstance(result[key], (int, float)) and result[key] > 0, (key, result[key])
    assert result["ratio_baseline"] > 0 and result["ratio_floor"] > 0
    assert result["ratio_floor"] == pytest.approx(result["ours_s"] / result["floor_s"], rel=1e-2)
    assert result["per_file_ms"] == pytest.approx(1000 * result["ours_s"] / 15, rel=1e-2)
    assert result["peak_rss_mib"] < 4096


def test_corpus_is_what_the_merge_expects(result: dict) -> None:
    # the generated returns are recognised as our templates: clean ones accepted, faulty ones partial
    statuses = result["statuses"]
    errors = result["corpus"]["error_files"]
    assert statuses["accepted"] == 15 - errors and statuses["partial"] == errors
    assert statuses["rejected"] == 0
    assert result["baseline_rows"] > 0 and result["floor_rows"] == result["corpus"]["rows"]
    assert result["machine"]["nproc"] >= 1 and result["machine"]["python"]
