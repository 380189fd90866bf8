"""Shared fixtures: the R6 catalog, generated templates and the demo returns filled from them.

The expensive pieces are built once per session in a temporary folder; tests copy what they
change, so no test modifies another's inputs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pipeline.catalog import load_catalog
from pipeline.demo import DEMO_RESULTS, fill_returns
from pipeline.templates import write_templates

# A registry message with a field left unfilled raises instead of showing {name}: in this process
# and in every command a test starts.
os.environ["PIPELINE_STRICT_MESSAGES"] = "1"

# The Windows simulation (CI runs the suite once more with it): PIPELINE_TEST_NO_FORK=1 removes
# os.fork before any test module is imported, as on Windows, so every path that chooses between
# forking and spawning takes the spawn one, and every test that needs fork skips with its reason.
NO_FORK_ENV = "PIPELINE_TEST_NO_FORK"
if os.environ.get(NO_FORK_ENV) == "1":
    os.environ.setdefault("PIPELINE_START_METHOD", "spawn")  # the merges the tests start as processes too
    for _name in ("fork", "forkpty", "register_at_fork"):
        if hasattr(os, _name):
            delattr(os, _name)


@pytest.fixture(scope="session")
def r6():
    return load_catalog("R6")


@pytest.fixture(scope="session")
def template_dir(tmp_path_factory, r6) -> Path:
    out = tmp_path_factory.mktemp("templates")
    write_templates(r6, out)
    return out


@pytest.fixture(scope="session")
def demo_returns(tmp_path_factory, r6, template_dir) -> Path:
    """The 12 offices' returns filled with the published R6 answers (never modify: copy first)."""
    out = tmp_path_factory.mktemp("demo_returns")
    fill_returns(r6, template_dir, DEMO_RESULTS, out)
    return out


@pytest.fixture
def inbox(tmp_path, demo_returns) -> Path:
    """A fresh inbox holding a copy of the demo returns."""
    box = tmp_path / "inbox"
    shutil.copytree(demo_returns, box)
    return box


@pytest.fixture
def outbox(tmp_path) -> Path:
    return tmp_path / "outbox"
