"""The command line: exit codes, output, --json equals the library, cp932 consoles, a fast --help."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl
from click.testing import CliRunner
from filelock import FileLock

from pipeline.cli import cli
from pipeline.runner import LOCK_NAME, run_validate
from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str, cwd: Path | None = None):
    runner = CliRunner()
    old = os.getcwd()
    try:
        if cwd:
            os.chdir(cwd)  # the default settings file is looked up in the current folder
        return runner.invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def spoil(src: Path, dst: Path, cell: str, value: str) -> Path:
    wb = openpyxl.load_workbook(src)
    wb["記入シート"][cell] = value
    wb.save(dst)
    return dst


def test_validate_prints_a_line_per_file_and_exits_0(inbox, tmp_path):
    result = invoke("validate", str(inbox), "--no-feedback", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 12
    assert all(line.startswith("accepted") and "受理" in line for line in lines)
    assert any("R6_地域福祉計画評価_地域福祉課.xlsx\t(行 30)" in line for line in lines)


def test_validate_reports_issues_with_cell_code_and_message_and_exits_1(inbox, tmp_path):
    spoil(inbox / "R6_地域福祉計画評価_指導室.xlsx", inbox / "R6_地域福祉計画評価_指導室.xlsx", "G4", "E")
    feedback = tmp_path / "fb"
    result = invoke("validate", str(inbox), "--feedback", str(feedback), cwd=tmp_path)
    assert result.exit_code == 1
    assert "rejected   不受理\tR6_地域福祉計画評価_指導室.xlsx\t(行 0、エラー 1)" in result.output
    assert "ファイル\tシート\tセル\tコード\t重要度\t内容" in result.output
    assert "R6_地域福祉計画評価_指導室.xlsx\t記入シート\tG4\trating-invalid\tエラー\t事業評価「E」は使えません。" in result.output
    assert (feedback / "指導室_R6_地域福祉計画評価_指導室.xlsx").exists()
    assert f"差し戻し用の写し 1 件: {feedback}" in result.output


def test_validate_json_is_the_library_report(inbox, tmp_path):
    spoil(inbox / "R6_地域福祉計画評価_健康課.xlsx", inbox / "R6_地域福祉計画評価_健康課.xlsx", "H4", "")
    result = invoke("validate", str(inbox), "--json", "--no-feedback", cwd=tmp_path)
    assert result.exit_code == 1
    library, _ = run_validate([inbox], Settings())
    assert json.loads(result.output) == library.to_dict()
    health = next(f for f in json.loads(result.output)["files"] if f["name"].endswith("健康課.xlsx"))
    assert [(i["cell"], i["code"]) for i in health["issues"]] == [("H4", "required-missing")]


def test_usage_errors_exit_2(tmp_path):
    assert invoke("validate", str(tmp_path / "missing.xlsx"), cwd=tmp_path).exit_code == 2
    assert invoke("validate", cwd=tmp_path).exit_code == 2
    assert invoke("merge", "--no-such-option", cwd=tmp_path).exit_code == 2
    assert invoke("no-such-command", cwd=tmp_path).exit_code == 2


def test_merge_exit_codes(inbox, tmp_path):
    out = tmp_path / "out"
    ok = invoke("merge", "--inbox", str(inbox), "--outbox", str(out), cwd=tmp_path)
    assert ok.exit_code == 0, ok.output
    assert "評価行: 69 / 69(エラー 0 件、警告 2 件)" in ok.output
    assert "記述の点検: 要確認 2 件、確認済み 0 件(検証結果 シート)" in ok.output
    assert "基本目標2 包括的支援体制の構築: A 6  B 9  C 0  D 3" in ok.output
    assert "全ての担当課の評価がそろいました。" in ok.output
    spoil(inbox / "R6_地域福祉計画評価_地域安全課.xlsx", inbox / "R6_地域福祉計画評価_地域安全課.xlsx", "G5", "良")
    bad = invoke("merge", "--inbox", str(inbox), "--outbox", str(out), cwd=tmp_path)
    assert bad.exit_code == 1
    assert "地域安全課(エラーあり、残り 1)" in bad.output
    missing = invoke("merge", "--inbox", str(tmp_path / "nowhere"), "--outbox", str(out), cwd=tmp_path)
    assert missing.exit_code == 3
    assert "エラー: 受信フォルダー" in missing.output
    with FileLock(str(out / LOCK_NAME)):
        locked = invoke("merge", "--inbox", str(inbox), "--outbox", str(out), cwd=tmp_path)
    assert locked.exit_code == 3 and "別の集約処理が実行中です" in locked.output


def test_a_broken_catalog_exits_3(tmp_path, inbox):
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "departments.yaml").write_text("offices: [", encoding="utf-8")
    (tmp_path / "pipeline.toml").write_text(f'[paths]\nschemas = "{schemas.as_posix()}"\n', encoding="utf-8")
    result = invoke("merge", "--inbox", str(inbox), "--outbox", str(tmp_path / "out"), cwd=tmp_path)
    assert result.exit_code == 3
    assert "departments.yaml" in result.output and "YAML として読めません" in result.output


def test_templates_command(tmp_path):
    result = invoke("templates", "--out", str(tmp_path / "t"), "--deadline", "2025-05-30", cwd=tmp_path)
    assert result.exit_code == 0
    assert len(list((tmp_path / "t").glob("*.xlsx"))) == 12
    assert "12 課分のテンプレート" in result.output
    assert invoke("templates", "--deadline", "5月末", cwd=tmp_path).exit_code == 2  # a usage error


def test_settings_file_and_options(inbox, tmp_path):
    (tmp_path / "pipeline.toml").write_text(
        f'[paths]\ninbox = "{inbox.as_posix()}"\noutbox = "out"\n[plan]\nyear = "r6"\n', encoding="utf-8"
    )
    result = invoke("merge", cwd=tmp_path)
    assert result.exit_code == 0 and (tmp_path / "out" / "run-report.json").exists()
    assert invoke("--settings", str(tmp_path / "none.toml"), "merge", cwd=tmp_path).exit_code == 2  # no such file


def run_module(*args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], capture_output=True, env={**os.environ, **env}, cwd=ROOT, timeout=120
    )


def test_printing_never_fails_on_a_cp932_console(tmp_path, demo_returns):
    box = tmp_path / "box"
    box.mkdir()
    # "›" in e-mail names and "①" are not all in cp932; the console must still print
    shutil.copy(demo_returns / "R6_地域福祉計画評価_交通対策課.xlsx", box / "返信①–›.xlsx")
    done = run_module("validate", str(box), "--no-feedback", PYTHONIOENCODING="cp932")
    assert done.returncode == 0, done.stderr.decode("cp932", "replace")
    text = done.stdout.decode("cp932")
    assert "受理" in text and "返信①" in text


def test_help_lists_every_command_with_an_example_and_does_not_import_pandas():
    done = run_module("--help")
    assert done.returncode == 0
    text = done.stdout.decode("utf-8")
    for command in ("templates", "validate", "merge", "demo"):
        assert f"  {command} " in text
    assert "例:" in text
    probe = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom pipeline.cli import cli\n"
         "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
         "print(sorted(m for m in ('pandas', 'pandera', 'openpyxl', 'xlsxwriter') if m in sys.modules))"],
        capture_output=True, text=True, timeout=60,
    )
    assert probe.stdout.strip().endswith("[]"), probe.stdout


def test_console_script_and_module_agree():
    script = Path(sys.executable).with_name("pipeline")
    if not script.exists():
        script = Path(shutil.which("pipeline") or "")
    assert script.is_file(), "the console script is installed with the package"
    via_script = subprocess.run([str(script), "--help"], capture_output=True, timeout=60)
    assert via_script.stdout == run_module("--help").stdout
