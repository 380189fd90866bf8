"""The layout of our template, as a contract shared by the writer (templates) and the reader
(validate): sheet names, rows, columns, the metadata keys and the pre-filled catalog cells.

Pure: imports no Excel library, so validating does not pay for importing openpyxl.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pipeline.catalog import Catalog
from pipeline.filenames import safe_filename
from pipeline.normalize import label_key

TEMPLATE_SHEET = "記入シート"
GUIDE_SHEET = "記入要領"
META_SHEET = "_meta"
TEMPLATE_KIND = "welfare-plan-evaluation-template"
TEMPLATE_VERSION = "1"

HEADER_ROW = 3  # 1-based: row 1 title (year + office), row 2 a short instruction line, row 3 the header
FIRST_DATA_ROW = 4
COLUMNS = (
    "施策No.",
    "事業No.",
    "個別事業・取り組み",
    "内容",
    "担当課",
    "事業実績・評価理由",
    "事業評価",
    "今後の事業計画・展望",
)  # columns A..H
INPUT_COLUMNS = ("F", "G", "H")
RATING_COLUMN = "G"
LETTERS = ("A", "B", "C", "D", "E", "F", "G", "H")

# The _meta keys, in row order (column A key, column B value).
META_KEYS = (
    "kind",
    "fiscal_year",
    "office",
    "catalog_version",
    "template_version",
    "generated",
    "prefilled_hash",
    "rows",
    "header_row",
    "first_data_row",
    "answer_sheet",  # the sheet the answers are read from, wherever it stands (default TEMPLATE_SHEET)
)

# --- last year beside this year ------------------------------------------------------------------
# With a previous year known, each data row also shows last year's rating and 今後の事業計画・展望,
# read-only, right of the answers after a narrow gap column. They are ours, never answers: the reader
# knows their labels (no column-extra), never reads their cells, and the template version is the
# same (columns A..H, the rows and the metadata keys do not change).
REFERENCE_GAP = "I"
REFERENCE_LETTERS = ("J", "K")
REFERENCE_MARK = "【参考】"
REFERENCE_COLUMNS = ("前年度評価", "前年度の今後の事業計画・展望")
# An extra _meta row, after META_KEYS, only in a template with the reference columns.
META_PREVIOUS_KEY = "previous_year"
_REFERENCE_KEYS = frozenset(label_key(c) for c in REFERENCE_COLUMNS)


def reference_labels(previous_label: str) -> list[str]:
    """The reference columns' headers, three lines each: '【参考】\\n前年度評価\\n(令和6年度)', …"""
    return [f"{REFERENCE_MARK}\n{c}\n({previous_label})" for c in REFERENCE_COLUMNS]


def is_reference_label(text: object) -> bool:
    """A header of our reference columns, with or without 【参考】 and the year."""
    if not isinstance(text, str) or not text.strip() or len(text) > 60:
        return False
    key = label_key(text)
    return key.removeprefix("参考") in _REFERENCE_KEYS


# Contract helpers ---------------------------------------------------------------------------


def header_labels(catalog: Catalog) -> list[str]:
    """The eight header labels; 事業実績・評価理由 names the year being reported."""
    labels = list(COLUMNS)
    labels[5] = f"{COLUMNS[5]} ({catalog.year_label})"
    return labels


def template_name(catalog: Catalog, office: str) -> str:
    """`R6_地域福祉計画評価_<office>.xlsx`, made a valid, bounded Windows name (pipeline.filenames)."""
    return safe_filename(f"{catalog.year}_{catalog.plan}評価_{office.strip()}.xlsx")


def prefilled_values(catalog: Catalog, office: str) -> list[tuple[str, str, str, str, str]]:
    """The catalog cells A..E of each data row of an office's template, in plan order."""
    rows = []
    for a in sorted(catalog.assignments_for_office(office), key=lambda a: a.order):
        p = catalog.projects[a.project]
        rows.append((p.measure_code, p.label, p.name, p.content, a.department))
    return rows


def prefilled_hash(values: list[tuple[str, ...]]) -> str:
    """sha256 hex of the pre-filled cells as canonical JSON (a list of lists of strings)."""
    blob = json.dumps([list(v) for v in values], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def receiving_offices(catalog: Catalog) -> list[str]:
    """Offices that receive a template (those with at least one assignment), in registry order."""
    used = {a.office for a in catalog.assignments}
    return [o for o in catalog.offices if o in used]


# --- the mark on every workbook we write ----------------------------------------------------------
# A custom document property (File → Info → Properties → Advanced → Custom in Excel). Dropped into
# the inbox, a workbook carrying it is one of ours and is not read as a return (own-output).

OUTPUT_PROPERTY = "WelfarePlanOutput"
OUTPUT_KINDS = {"master": "集約ブック", "summary": "集計ブック", "feedback": "差し戻し用の写し", "publish": "公表用ブック"}
# A department may correct a feedback copy and send it back: Excel rewrites dcterms:modified on
# every save, so a copy saved later than this after we wrote it is the department's return.
FEEDBACK_RESAVED_AFTER_S = 120


# Every feedback copy records the sha256 of the file it annotates, so that a copy is reused on a later
# night, or attached to a reminder, only for the very bytes it was made from. A department's workbook
# that is a re-sent copy carries the old value; the new copy replaces it.
SOURCE_PROPERTY = "WelfarePlanFeedbackSource"
_MAX_CUSTOM_XML = 1 << 20  # our own docProps/custom.xml is a few hundred bytes


def recorded_source(path: Path) -> str:
    """The sha256 a feedback copy records of its source file; "" when the file is missing, is not
    a copy of ours, or cannot be read."""
    import zipfile

    from defusedxml import ElementTree

    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("docProps/custom.xml")
            if info.file_size > _MAX_CUSTOM_XML:
                return ""
            root = ElementTree.fromstring(archive.read(info))
    except Exception:  # missing, locked, not a zip, no custom properties: not a copy we can trust
        return ""
    for prop in root:
        if prop.get("name") == SOURCE_PROPERTY:
            return "".join(prop.itertext()).strip()
    return ""


def output_mark(kind: str, catalog: Catalog, when: str) -> str:
    """The property's value: 'kind=master;year=R6;version=…;time=…' (time ISO 8601)."""
    return f"kind={kind};year={catalog.year};version={catalog.version};time={when}"


def parse_output_mark(value: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in value.split(";") if "=" in part)
