"""Data and declarations: the plan catalogs (plan-<year>.yaml), the department registry
(departments.yaml) and the pandera schema of an evaluation row (evaluation.py).

Imported as `plan_schemas` (see pyproject.toml). Imports only pandas and pandera, never `pipeline`.
"""

from pathlib import Path

SCHEMAS_DIR = Path(__file__).resolve().parent
