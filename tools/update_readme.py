"""Regenerate the issue-code table (docs/issue-codes.md) from pipeline.report.CODES.

    python tools/update_readme.py
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.report import codes_markdown

CODES_DOC = Path(__file__).resolve().parents[1] / "docs" / "issue-codes.md"
SECTION = re.compile(r"(<!-- codes:start -->\n).*?(<!-- codes:end -->)", re.S)


def render(text: str) -> str:
    return SECTION.sub(lambda m: m[1] + codes_markdown() + "\n" + m[2], text)


if __name__ == "__main__":
    CODES_DOC.write_text(render(CODES_DOC.read_text(encoding="utf-8")), encoding="utf-8")
