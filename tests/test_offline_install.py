"""The README's offline (LGWAN) install, followed as written.

The steps are read from the README itself, so the README cannot drift from what is tested:
the Windows download (`--platform win_amd64 --python-version 3.11`) must give a wheel for every
line of constraints.txt, setuptools and colorama included; and the same download for the machine
the test runs on, installed into a fresh venv with `--no-index --find-links wheels` with the network
cut off (a network namespace of its own, where the machine allows), must give a working
`python -m pipeline` with the locked versions. Downloading needs the package index: without it the
test skips and says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
LOCK = ROOT / "constraints.txt"

pytestmark = pytest.mark.slow  # downloads ~40 wheels twice and installs them


def locked() -> dict[str, str]:
    """constraints.txt as {normalised name: version}."""
    pins = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def readme_command(prefix: str) -> list[str]:
    """The README's command line that starts with `prefix`, split into words."""
    found = [line.strip() for line in README.splitlines() if line.strip().startswith(prefix)]
    assert len(found) == 1, f"the README has one command starting {prefix!r}"
    return found[0].split()


def network_off() -> list[str]:
    """A prefix that runs a command without network (a network namespace of its own), or []."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    for prefix in ([unshare, "-n"], [unshare, "-rn"]):
        if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return prefix
    return []


def download(args: list[str], folder: Path, cwd: Path = ROOT) -> None:
    done = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0 and re.search(r"(?i)connection|network|resolve|index|No matching distribution",
                                          done.stderr) and not any(folder.glob("*.whl")):
        pytest.skip(f"the package index cannot be reached from here: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr


def wheel_name(path: Path) -> str:
    return re.sub(r"[-_.]+", "-", path.name.split("-")[0]).lower()


def test_the_lock_bounds_what_pyproject_accepts():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'"xlsxwriter>=3\.2\.9,<3\.4"', pyproject)  # xlsxfast overrides private methods
    pins = locked()
    assert {"setuptools", "colorama", "xlsxwriter", "pandas", "pytest", "click"} <= set(pins)
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "-c constraints.txt" in makefile and "constraints.txt" in makefile.split("$(STAMP):")[1].splitlines()[0]


def test_the_windows_download_has_every_locked_wheel(tmp_path):
    args = readme_command("python -m pip download")
    assert args[:2] == ["python", "-m"]
    assert {"--platform", "win_amd64", "--python-version", "3.11", "--only-binary=:all:", "constraints.txt"} <= set(args)
    folder = tmp_path / "wheels"
    args = [a if a != "wheels" else str(folder) for a in args[1:]]
    download(args, folder)
    wheels = {wheel_name(p): p.name for p in folder.glob("*.whl")}
    assert set(wheels) == set(locked()), "the download is the lock: nothing missing, nothing extra"
    for name, version in locked().items():
        _python, abi_tag, platform_tag = wheels[name].removesuffix(".whl").split("-")[-3:]
        assert wheels[name].split("-")[1] == version, wheels[name]
        assert platform_tag in ("any", "win_amd64"), wheels[name]
        assert abi_tag in ("none", "abi3", "cp311"), wheels[name]  # a binary wheel for CPython 3.11 exactly


def test_the_offline_install_into_a_fresh_venv_works_as_written(tmp_path):
    project = tmp_path / "welfare-plan"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(
        ".venv", ".git", "outbox", "inbox", "demo", "*.egg-info", "__pycache__", ".*_cache", "build", "benchmarks"))
    (project / "demo").mkdir()
    shutil.copytree(ROOT / "demo", project / "demo", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("inbox", "outbox"))
    for folder in ("inbox", "outbox"):
        (project / folder).mkdir()
    # The download for this machine: the README's, without the Windows platform options.
    args = readme_command("python -m pip download")
    drop = {"--platform", "win_amd64", "--python-version", "3.11"}
    args = [a for a in args[1:] if a not in drop]
    download(args, project / "wheels", cwd=project)
    # The offline PC: a fresh venv, then the README's install line with this OS's venv layout.
    venv.create(project / ".venv", with_pip=True)
    python = project / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    install = readme_command(r".venv\Scripts\python -m pip install --no-index")
    assert install[1:] == ["-m", "pip", "install", "--no-index", "--find-links", "wheels", "-c", "constraints.txt",
                           "-e", ".[dev]"]
    cut = network_off()
    # --isolated: no pip configuration of this machine (its own find-links or index) helps the install.
    done = subprocess.run([*cut, str(python), "-m", "pip", "install", "--isolated", *install[4:]], cwd=project,
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    freeze = subprocess.run([str(python), "-m", "pip", "freeze", "--isolated", "--exclude-editable"],
                            capture_output=True, text=True, timeout=300, check=True).stdout
    installed = {re.sub(r"[-_.]+", "-", n).lower(): v for n, v in re.findall(r"^([^=\s]+)==(\S+)$", freeze, re.M)}
    pins = locked()
    for name, version in installed.items():
        if name in pins:
            assert version == pins[name], name
    assert installed["xlsxwriter"] == pins["xlsxwriter"] and installed["pandas"] == pins["pandas"]
    # The installed project runs from the venv (the module and the console script).
    run = subprocess.run([*cut, str(python), "-m", "pipeline", "plan", "check", "R6"], cwd=project,
                         capture_output=True, timeout=300)
    assert run.returncode == 0, run.stderr.decode("utf-8", "replace")
    assert "誤りはありません" in run.stdout.decode("utf-8")
    assert (project / ".venv" / ("Scripts" if os.name == "nt" else "bin") / "pytest").exists() or \
        (project / ".venv" / "Scripts" / "pytest.exe").exists()
