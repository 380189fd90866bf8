"""The pandera declaration of one evaluation row, after normalisation.

Columns are named by their published Japanese labels. Each check's `name` and `error` are the stable issue
code its failure becomes; a blank required cell fails `not_nullable` and becomes
`required-missing`. The catalog's project keys are a parameter, not logic: the schema for R6 is
`evaluation_schema(catalog.projects)`.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandera.pandas as pa

MAX_CELL_TEXT = 32_767  # Excel's limit for one cell
MEASURE_PATTERN = r"^\(\d{1,2}\)[①-⑳]$"
RATINGS = ["A", "B", "C", "D"]

# label → column id used in messages and in the frame
MEASURE = "施策No."
PROJECT = "事業No."
DEPARTMENT = "担当課"
RESULT = "事業実績・評価理由"
RATING = "事業評価"
OUTLOOK = "今後の事業計画・展望"

REQUIRED = (PROJECT, DEPARTMENT, RESULT, RATING, OUTLOOK)


def _text(required: bool) -> pa.Column:
    return pa.Column(
        str,
        checks=pa.Check.str_length(max_value=MAX_CELL_TEXT, name="text-too-long", error="text-too-long"),
        nullable=not required,
    )


def evaluation_schema(project_keys: Iterable[str]) -> pa.DataFrameSchema:
    """Schema for the rows of returned workbooks; validate with `lazy=True` to get every failure."""
    return pa.DataFrameSchema(
        {
            MEASURE: pa.Column(
                str, checks=pa.Check.str_matches(MEASURE_PATTERN, name="measure-invalid", error="measure-invalid"), nullable=True
            ),
            PROJECT: pa.Column(
                str, checks=pa.Check.isin(sorted(project_keys), name="project-unknown", error="project-unknown"), nullable=False
            ),
            DEPARTMENT: _text(required=True),
            RESULT: _text(required=True),
            RATING: pa.Column(str, checks=pa.Check.isin(RATINGS, name="rating-invalid", error="rating-invalid"), nullable=False),
            OUTLOOK: _text(required=True),
        },
        strict=True,
        name="evaluation-row",
    )
