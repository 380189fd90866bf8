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
    MAX_CELL_TEXT,
    MEASURE,
    MEASURE_PATTERN,
    OUTLOOK,
    PROJECT,
    RATING,
    RATINGS,
    REQUIRED,
    RESULT,
)


def _utf16_units(texts: pd.Series) -> pd.Series:
    """Length as Excel counts it: UTF-16 code units (𠮷 and other supplementary characters count 2)."""
    return texts.str.encode("utf-16-le").str.len() // 2


def _fits_in_cell(texts: pd.Series) -> pd.Series:
    """Whether each text fits in a cell. A text of at most half the limit in characters fits
    whatever they are (each is 1 or 2 UTF-16 units), so only longer ones are measured: encoding
    every text of a 60,000-row night would hold a second copy of all of them at once."""
    fits = texts.str.len() <= MAX_CELL_TEXT // 2
    longer = ~fits
    if longer.any():
        fits[longer] = _utf16_units(texts[longer]) <= MAX_CELL_TEXT
    return fits


# Excel's limit is in UTF-16 units; code points would let 17,000 × 𠮷 (34,000 units) through.
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
