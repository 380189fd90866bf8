"""pipeline.jsontext.dumps is json.dumps(…, ensure_ascii=False, indent=2), character for character."""

from __future__ import annotations

import json

import pytest

from pipeline import jsontext

VALUES = [
    {}, [], (), "", 0, -1, 10**30, 1.5, -0.0, 1e-300, 3.141592653589793, float("nan"), float("inf"), float("-inf"),
    True, False, None, "改行\n\t\"引用\" \\ \x00\x1f\u2028 𠮷", {"a": [], "b": {}, "c": [[], {}]},
    {"rows": 69, "goals": {"1": {"A": 25}}, "files": [{"name": "健康課/R6.xlsx", "issues": [], "saved": None}]},
    [1, [2, [3, {"x": (4, 5)}]]], {1: "int key", "b": 2}, {"ok": True, "n": [None, False, 0.1]},
]


@pytest.mark.parametrize("value", VALUES)
def test_same_text_as_json_dumps(value: object) -> None:
    assert jsontext.dumps(value) == json.dumps(value, ensure_ascii=False, indent=2)
    assert jsontext.dumps_utf8(value) == json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8")


def test_a_run_report(tmp_path) -> None:
    from pipeline.runner import run_demo
    from pipeline.settings import Settings

    run = run_demo(Settings(), tmp_path / "inbox", outbox=tmp_path / "outbox")
    data = json.loads((tmp_path / "outbox" / "run-report.json").read_text(encoding="utf-8"))
    assert jsontext.dumps(data) == json.dumps(data, ensure_ascii=False, indent=2)
    assert jsontext.dumps(run.report) == json.dumps(run.report, ensure_ascii=False, indent=2)
    big = {"rows": [data] * 50}  # past a flush of the pieces
    assert jsontext.dumps_utf8(big) == json.dumps(big, ensure_ascii=False, indent=2).encode("utf-8")
