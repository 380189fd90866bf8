"""Fill generated templates with the published R6 answers, producing realistic demo returns.

Each template is opened with openpyxl and only its yellow input cells (F/G/H) are written, the way
a department fills it in Excel; everything else in the file (protection, validation, _meta) is
left as generated. The answers come from demo/r6-results.yaml, one entry per assignment.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from openpyxl import load_workbook

from pipeline.catalog import Catalog
from pipeline.errors import PipelineError
from pipeline.normalize import RATINGS
from pipeline.templates import FIRST_DATA_ROW, TEMPLATE_SHEET, fit_data_row, save_atomically, set_text

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"  # the demo's own folders: inbox/, outbox/
DEMO_RESULTS = DEMO_DIR / "r6-results.yaml"

_FIELDS = ("project", "department", "result", "rating", "outlook")


class DemoYearError(PipelineError, ValueError):
    """The results file is for another fiscal year than the catalog (e.g. the demo run under R7).

    A PipelineError, so the command shows the message and exits 3 instead of a traceback; still a
    ValueError, as every other problem of a results file is."""


def _read(path: Path) -> tuple[str, list[dict]]:
    """(fiscal_year or "", entries) from a results file; a malformed entry raises ValueError."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} を読めません: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ValueError(f"{path}: 'results:' のリストがありません。")
    entries = []
    for i, raw in enumerate(data["results"]):
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: results[{i}] が項目の集まりではありません。")
        missing = [k for k in _FIELDS if raw.get(k) in (None, "")]
        if missing:
            raise ValueError(f"{path}: results[{i}] に {', '.join(missing)} がありません。")
        entry = {k: str(raw[k]) for k in _FIELDS}
        if entry["rating"] not in RATINGS:
            raise ValueError(f"{path}: results[{i}] の rating「{entry['rating']}」は A～D ではありません。")
        entries.append(entry)
    return str(data.get("fiscal_year") or ""), entries


def load_results(path: Path) -> list[dict]:
    """The entries of a results file: {project, department, result, rating, outlook}, all strings."""
    return _read(path)[1]


def fill_returns(catalog: Catalog, templates_dir: Path, results_path: Path, out_dir: Path) -> list[Path]:
    """Write each template's F/G/H from the results and save it under the same name in `out_dir`.

    A row is matched by (project key, 担当課) as printed in the template; a row with no result
    raises ValueError naming the file and row, so a demo never ships a half-filled return.
    """
    year, entries = _read(results_path)
    if year and year.upper() != catalog.year:
        raise DemoYearError(
            f"{results_path} は {year.upper()} の結果のため、{catalog.year} の計画カタログでは使えません。"
            f"デモは {year.upper()} の年度で実行してください(pipeline.toml の [plan] year を \"{year.upper()}\" にするか、"
            f"year を書かない設定ファイルを --settings で指定します)。"
        )
    by_key: dict[tuple[str, str], dict] = {}
    for entry in entries:
        project = catalog.project_for(entry["project"])
        if project is None:
            raise ValueError(f"{results_path}: 事業No.「{entry['project']}」は計画にありません。")
        by_key[(project.key, entry["department"])] = entry

    templates = sorted(p for p in Path(templates_dir).glob("*.xlsx") if not p.name.startswith(("~$", ".~")))
    out_dir = Path(out_dir)
    paths = []
    for template in templates:
        wb = load_workbook(template)
        ws = wb[TEMPLATE_SHEET]
        row = FIRST_DATA_ROW
        while ws[f"B{row}"].value not in (None, ""):
            label, department = ws[f"B{row}"].value, str(ws[f"E{row}"].value or "")
            project = catalog.project_for(label)
            found = by_key.get((project.key, department)) if project else None
            if found is None:
                raise ValueError(
                    f"{template.name} の {row} 行目(事業No.{label}・{department})の結果が {results_path} にありません。"
                )
            set_text(ws[f"F{row}"], found["result"])
            set_text(ws[f"G{row}"], found["rating"])
            set_text(ws[f"H{row}"], found["outlook"])
            # As staff do by double-clicking the row border, so the long answers show and print.
            fit_data_row(ws, row)
            row += 1
        path = out_dir / template.name
        save_atomically(wb, path)
        paths.append(path)
    return paths
