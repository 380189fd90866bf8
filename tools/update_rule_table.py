"""Regenerate the table of text-check rules in docs/new-year.md from schemas/text_checks.yaml.

    python tools/update_rule_table.py
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.textchecks import load_text_rules, rules_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "new-year.md"
SECTION = re.compile(r"(<!-- text-checks:start -->\n).*?(<!-- text-checks:end -->)", re.S)


def render(text: str) -> str:
    return SECTION.sub(lambda m: m[1] + rules_markdown(load_text_rules()) + "\n" + m[2], text)


if __name__ == "__main__":
    DOC.write_text(render(DOC.read_text(encoding="utf-8")), encoding="utf-8")
