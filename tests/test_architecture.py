"""docs/architecture.md names only what exists: every module, dotted name, class, function, path and
issue code it cites in `code` is looked up here, so the map cannot drift from the code it describes."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from pipeline.report import CODES, FILE_STATUSES

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
SOURCES = "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "pipeline").rglob("*.py")))
SETTINGS_KEYS = set(re.findall(r"^#?\s*([a-z_]+)\s*=", (ROOT / "pipeline.toml").read_text(encoding="utf-8"), re.M))
SECTIONS = set(re.findall(r"^#?\s*\[([a-z_]+)\]", (ROOT / "pipeline.toml").read_text(encoding="utf-8"), re.M))


def _cited() -> list[str]:
    return sorted(set(re.findall(r"`([^`\n]+)`", DOC.read_text(encoding="utf-8"))))


def _resolve(dotted: str) -> object:
    """Import the longest module prefix of `dotted`, then follow the rest as attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def _exists(token: str) -> bool:
    if token.startswith("pipeline.") or token == "pipeline":
        try:
            _resolve(token)
        except (ModuleNotFoundError, AttributeError):
            return False
        return True
    if "/" in token and re.search(r"\.(py|yaml|md|toml)$", token):
        return (ROOT / token).exists()
    if re.fullmatch(r"[A-Z][A-Za-z]+", token):
        return re.search(rf"^\s*class {token}\b", SOURCES, re.M) is not None
    if re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)+", token):
        return token in CODES
    if re.fullmatch(r"\[[a-z_]+\]", token):
        return token[1:-1] in SECTIONS
    if re.fullmatch(r"[a-z_]+", token):
        return (re.search(rf"^\s*def {token}\(", SOURCES, re.M) is not None
                or token in SETTINGS_KEYS or token in FILE_STATUSES)
    return True  # file names and folders staff see (inbox/, run-report.json, .eml): not code


@pytest.mark.parametrize("token", _cited())
def test_every_name_the_map_cites_exists(token):
    assert _exists(token), f"docs/architecture.md cites `{token}`, which does not exist"


def test_the_map_cites_every_module_of_the_package():
    cited = set(_cited())
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts) for p in (ROOT / "pipeline").rglob("*.py")}
    modules = {m.removesuffix(".__init__") for m in modules}
    missing = sorted(m for m in modules if m not in cited and m != "pipeline")
    assert not missing, f"modules the map does not place in a layer: {missing}"


def test_the_lookup_rejects_what_does_not_exist():
    # the checker itself can fail: a renamed function, class, module, code or path is caught
    assert not _exists("pipeline.merge.merge_everything")
    assert not _exists("pipeline.reader.parser")
    assert not _exists("FileJudgement")
    assert not _exists("row-exploded")
    assert not _exists("schemas/verdict.py")
    assert not _exists("read_everything")
