"""地域福祉計画 評価表パイプライン: templates, validation and the nightly merge, as a library.

Every command of the CLI is one call here:

    >>> from pipeline import Settings, run_merge
    >>> run = run_merge(Settings(inbox=Path("inbox"), outbox=Path("outbox")))   # doctest: +SKIP
    >>> run.exit_code, run.report["rows"]                                      # doctest: +SKIP
    (0, 69)

Names are imported on first use (PEP 562), so `python -m pipeline --help` does not pay for pandas,
openpyxl or xlsxwriter.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name → the module that defines it
_API = {
    "run_templates": "pipeline.runner",
    "run_validate": "pipeline.runner",
    "run_merge": "pipeline.runner",
    "run_demo": "pipeline.runner",
    "MergeRun": "pipeline.runner",
    "Settings": "pipeline.settings",
    "Limits": "pipeline.settings",
    "load_settings": "pipeline.settings",
    "load_catalog": "pipeline.catalog",
    "Catalog": "pipeline.catalog",
    "validate_paths": "pipeline.validate",
    "merge": "pipeline.merge",
    "Issue": "pipeline.report",
    "CODES": "pipeline.report",
    "FileVerdict": "pipeline.report",
    "Provenance": "pipeline.report",
    "Evaluation": "pipeline.report",
    "Outcome": "pipeline.report",
    "RunReport": "pipeline.report",
    "ValidationReport": "pipeline.report",
    "PipelineError": "pipeline.errors",
    "CatalogError": "pipeline.errors",
    "InputError": "pipeline.errors",
    "OutputError": "pipeline.errors",
    "LockedError": "pipeline.errors",
    "GuardError": "pipeline.errors",
    "SettingsError": "pipeline.errors",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
