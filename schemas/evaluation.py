"""The pandera declaration of one evaluation row, after normalisation.

Columns are named by their published Japanese labels. Each check's `name` and `error` are the stable issue
code its failure becomes; a blank required cell fails `not_nullable` and becomes
`required-missing`. The catalog's project keys are a parameter, not logic: the schema for R6 is
`evaluation_schema(catalog.projects)`.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import pandera.pandas as pa
from plan_schemas.columns import (  # noqa: F401  (re-exported with the schema)
    DEPARTMENT,
    MEASURE,
    MEASURE_PATTERN,
    OUTLOOK,
    PROJECT,
    RATING,
    RATINGS,
    REQUIRED,
    RESULT,
)

from pipeline.celltext import fits_in_cell


def _fits_in_cell(texts: pd.Series) -> pd.Series:
    """Whether each text fits in a cell, by celltext's rule (Excel counts UTF-16 units, so
    17,000 × 𠮷 is 34,000 and does not fit). Each text is measured on its own: encoding every
    text of a 60,000-row night at once would hold a second copy of all of them."""
    return texts.map(fits_in_cell, na_action="ignore").fillna(True).astype(bool)


_FITS_IN_CELL = pa.Check(_fits_in_cell, name="text-too-long", error="text-too-long")


def _text(required: bool) -> pa.Column:
    return pa.Column(str, checks=_FITS_IN_CELL, nullable=not required)


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
