"""The README stays true: its two commands, every command, exit code, setting and issue code."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import click

from pipeline.cli import cli
from pipeline.limits import Limits
from pipeline.report import CODES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CODES_DOC = (ROOT / "docs" / "issue-codes.md").read_text(encoding="utf-8")


def test_readme_opens_with_exactly_two_commands():
    first_block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block[1].splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    assert README.index("```sh") < README.index("##")  # before any section
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo: ", makefile, re.M) and re.search(r"^test: ", makefile, re.M)
    assert "-m pipeline demo" in makefile and "-m pytest" in makefile
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci


def test_issue_code_table_is_generated_from_the_registry():
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    from update_readme import render

    assert render(CODES_DOC) == CODES_DOC, "run: python tools/update_readme.py"
    documented = set(re.findall(r"^\| `([a-z0-9-]+)` \| (?:error|warning) \|", CODES_DOC, re.M))
    assert documented == set(CODES)
    assert "(docs/issue-codes.md)" in README  # the front door links to it


def test_the_long_reference_tables_live_in_docs_and_are_linked():
    for doc in ("issue-codes.md", "hostile-inputs.md", "plan-catalog.md", "benchmarks.md", "new-year.md",
                "comparison.md", "yearly-commands.md", "printing.md", "architecture.md"):
        assert (ROOT / "docs" / doc).is_file(), doc
        assert f"(docs/{doc})" in README, doc
    hostile = (ROOT / "docs" / "hostile-inputs.md").read_text(encoding="utf-8")
    # every code a hostile-input case ends in is a registered code
    for code in re.findall(r"`([a-z]+(?:-[a-z0-9]+)+)`", hostile):
        if code not in ("owner-file",):
            assert code in CODES or code.startswith(("allow-", "parse-", "max-")), code


def test_every_code_in_the_readme_is_a_registered_code():
    """A kebab-case word in backticks is an issue code, a command, an office or order source or a
    make target; anything else is a code that does not exist (a typo, or one renamed)."""
    from pipeline.report import OFFICE_SOURCES, ORDER_SOURCES

    commands = {n for n, c in cli.commands.items()} | {
        n for c in cli.commands.values() if isinstance(c, click.Group) for n in c.commands
    }
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    known = set(CODES) | commands | set(OFFICE_SOURCES) | set(ORDER_SOURCES) | targets
    for word in set(re.findall(r"`([a-z]+(?:-[a-z0-9]+)+)`", README)):
        assert word in known, word


def test_every_command_is_documented_with_help_and_an_example():
    assert isinstance(cli, click.Group)
    for name, command in cli.commands.items():
        assert f"| `{name}" in README, name
        assert command.help and "例:" in command.help, name
        first_line = command.help.strip().splitlines()[0]
        assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", first_line), f"{name}: Japanese one-line description"


def test_exit_codes_are_documented():
    table = README[README.index("### Exit codes"):]
    for code in ("0", "1", "2", "3", "4", "130"):
        assert re.search(rf"^\| {code} \| ", table, re.M)


def test_settings_file_keys_are_documented_and_valid():
    shipped = tomllib.loads((ROOT / "pipeline.toml").read_text(encoding="utf-8"))
    for section, keys in shipped.items():
        assert f"`[{section}]`" in README
        for key in keys:
            assert f"`{key}`" in README, f"[{section}] {key}"
    assert set(shipped["limits"]) == set(Limits.__dataclass_fields__)


def test_scheduling_is_documented():
    assert "schtasks /Create" in README and "python -m pipeline merge" in README
    assert re.search(r"^0 2 \* \* \*", README, re.M)
    assert "merge.log" not in README  # the merge writes its own log (outbox/logs/pipeline.log)


def test_the_task_scheduler_script_survives_a_missed_night_and_a_logged_off_user():
    raw = (ROOT / "scheduling" / "register-nightly-merge.ps1").read_bytes()
    # Windows PowerShell 5.1 reads a script without a BOM as cp932: the Japanese task name would be mojibake
    assert raw.startswith(b"\xef\xbb\xbf")
    script = raw.decode("utf-8-sig")
    assert "(scheduling/register-nightly-merge.ps1)" in README
    settings = script[script.index("New-ScheduledTaskSettingsSet"):script.index("Get-Credential")]
    assert "-StartWhenAvailable" in settings  # a night missed while the PC was off runs when it is back
    register = script[script.index("Register-ScheduledTask -TaskName"):]
    # "run whether the user is logged on or not" is a task that holds the account's password
    assert "-User $Credential.UserName -Password" in register and "-Force" in register
    action = script[script.index("$Command = "):script.index("$Trigger")]
    assert "-WorkingDirectory $Folder" in action and "-m pipeline merge" in action
    assert ".venv\\Scripts\\python.exe" in action and "outbox\\logs\\console.log" in action
    assert "New-ScheduledTaskTrigger -Daily -At $At" in script and '[string]$At = "02:00"' in script
