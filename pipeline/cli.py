"""The `pipeline` command: a thin click shell over pipeline.runner.

Each command parses options, calls one library function, renders its report and exits with a
code that follows from it. Heavy imports (pandas, pandera, openpyxl, xlsxwriter) happen inside
the commands, so `pipeline --help` stays fast.

Exit codes: 0 no errors, 1 errors found in the inputs, 2 usage error, 3 could not run,
4 an unexpected exception (a fault of ours: traceback in the log), 130 interrupted (Ctrl+C).
Every command appends to outbox/logs/pipeline.log (pipeline.session); click's own messages are
Japanese (pipeline.clija).

Long only because it holds every command's options and its Japanese help text; each command body
is a few lines around one library call.
"""

from __future__ import annotations

import codecs
import os
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from pipeline import clija, jsontext
from pipeline.errors import PipelineError, SettingsError
from pipeline.quiet import library_output
from pipeline.report import FILE_STATUS_LABELS, FILE_STATUSES
from pipeline.session import EXIT_CRASH, EXIT_INTERRUPTED, CommandSession, crash_line
from pipeline.settings import DEFAULT_FILE, Settings, load_settings

clija.install()  # before the options below are made: click names their types when they are created

SEVERITY_JA = {"error": "エラー", "warning": "警告"}


class CommandFailed(click.ClickException):
    """A PipelineError shown to the user: Japanese message, exit code 3."""

    exit_code = 3

    def show(self, file: Any = None) -> None:
        _console(f"エラー: {self.message}", err=True)


def _session(ctx: click.Context) -> CommandSession:
    session = ctx.find_root().obj.get("session")
    if session is None:  # the group invoked by a caller of its own (not through main)
        session = ctx.find_root().obj["session"] = CommandSession([])
    return session


def _settings(ctx: click.Context, **options: Any) -> Settings:
    """The settings file with the command's options; the log opens in the outbox they name.
    A broken file is exit 3; a wrong option value is a usage error (exit 2)."""
    session = _session(ctx)
    try:
        base = load_settings(ctx.find_root().obj.get("settings"))
    except PipelineError as exc:
        session.open_fallback()
        raise CommandFailed(str(exc)) from None
    outbox = options.get("outbox")
    session.open(Path(outbox) if outbox is not None else base.outbox, base.keep_logs)
    try:
        s = base.with_options(**options)
    except SettingsError as exc:
        raise click.UsageError(str(exc), ctx=ctx) from None
    session.write(f"設定: {ctx.find_root().obj.get('settings') or DEFAULT_FILE}、年度 {s.year}、受信 {s.inbox}、出力 {s.outbox}")
    return s


def _usage_text(exc: click.UsageError) -> str:
    """A usage error in Japanese: what is wrong, the usage line and where the help is."""
    if isinstance(exc, click.MissingParameter) and exc.param is not None:
        if isinstance(exc.param, click.Argument):
            what = f"{exc.param.human_readable_name} を指定してください。"
        else:
            what = f"オプション {' / '.join(exc.param.opts)} を指定してください。"
    else:
        what = exc.format_message()
    lines = [f"エラー(使い方): {what}"]
    if exc.ctx is not None:
        lines.append(exc.ctx.get_usage())
        lines.append(f"説明は「{exc.ctx.command_path} --help」で表示できます。")
    return "\n".join(lines)


OPTIONS_METAVAR = "[オプション]"


class JapaneseCommand(click.Command):
    """A command whose usage line is Japanese (`pipeline merge [オプション]`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("options_metavar", OPTIONS_METAVAR)
        super().__init__(*args, **kwargs)


class PipelineGroup(click.Group):
    """The command group whose `main` gives every command the same ending, whether it is run as
    `pipeline`, `python -m pipeline` or through click's test runner: Japanese usage errors (exit 2),
    a Japanese Ctrl+C message (exit 130), an unexpected exception as exit 4 with its traceback in
    the log, and the log's last line `exit=N` (pipeline.session)."""

    command_class = JapaneseCommand
    group_class = type  # `plan` is a group of the same kind

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("options_metavar", OPTIONS_METAVAR)
        kwargs.setdefault("subcommand_metavar", "コマンド [引数]...")
        super().__init__(*args, **kwargs)

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        clija.install()
        argv = [str(a) for a in (sys.argv[1:] if args is None else args)]
        if not argv or {"--help", "-h", "--version"} & set(argv):
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        session = CommandSession(argv)
        obj = extra.pop("obj", None) or {}
        obj["session"] = session
        with session.warnings_to_log():
            code = self._run(session, argv, prog_name, complete_var, obj, extra)
        session.finish(code)
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(self, session: CommandSession, argv: list[str], prog_name: str | None, complete_var: str | None,
             obj: dict[str, Any], extra: dict[str, Any]) -> int:
        try:
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, obj=obj, **extra)
            return rv if isinstance(rv, int) else 0
        except click.UsageError as exc:
            if exc.ctx is not None and exc.ctx.command.name == "merge":
                session.is_merge = True
            text = _usage_text(exc)
            session.message = "使い方の誤り: " + " ".join(line.strip() for line in exc.format_message().splitlines())
            session.write(text)
            _console(text, err=True)
            return 2
        except click.ClickException as exc:  # CommandFailed: a PipelineError (exit 3)
            session.message = exc.format_message()
            session.write(f"エラー: {exc.format_message()}")
            exc.show()
            return exc.exit_code
        except (click.Abort, KeyboardInterrupt):
            text = "中断しました(Ctrl+C)。書きかけの出力は使われず、前回の出力が残っています。"
            session.message = text
            session.write(text)
            _console(text, err=True)
            return EXIT_INTERRUPTED
        except Exception as exc:
            session.message = f"内部エラー({type(exc).__name__}: {str(exc)[:200]})"
            session.write("内部エラー:\n" + traceback.format_exc())
            if not session.log.is_open:
                session.open_fallback()
            _console(crash_line(exc, session.where()), err=True)
            return EXIT_CRASH


def _progress(label: str) -> Any:
    """A progress bar on a terminal for long inboxes; nothing when output is redirected (cron)."""

    stream = sys.stderr  # the console's, taken before a library's output is captured (pipeline.quiet)

    def wrap(files: Iterable[Path]) -> Iterable[Path]:
        files = list(files)
        if len(files) < 30 or not stream.isatty():
            return files
        return _bar(files, label, stream)

    return wrap


def _bar(files: list[Path], label: str, stream: Any) -> Iterable[Path]:
    with click.progressbar(files, label=label, file=stream, show_pos=True) as bar:
        yield from bar


@click.group("pipeline", cls=PipelineGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--settings",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help=f"設定ファイル(既定: カレントフォルダーの {DEFAULT_FILE})。",
)
@click.version_option(package_name="welfare-plan-pipeline", message="%(prog)s バージョン %(version)s",
                      help="バージョンを表示して終わります。")
@click.pass_context
def cli(ctx: click.Context, settings: Path | None) -> None:
    """地域福祉計画 評価表の配布・検証・集約ツール。

    \b
    終了コード: 0 正常 / 1 入力にエラー / 2 使い方の誤り / 3 実行できない /
                4 内部エラー(詳細はログ outbox/logs/pipeline.log) / 130 中断(Ctrl+C)

    \b
    毎年の流れ:
      1. templates  担当課ごとの記入テンプレートを作る
      2. (各課が記入してメールで返送 → inbox/ に保存)
      3. validate   返送ファイルを点検し、差し戻し用の写しを作る
      4. merge      inbox/ の全ファイルを集約ブックにまとめる(毎晩)

    \b
    例:
      python -m pipeline templates --deadline 2025-05-30
      python -m pipeline validate inbox/
      python -m pipeline merge
      python -m pipeline demo
    """
    ctx.ensure_object(dict)
    ctx.obj["settings"] = settings
    if "session" in ctx.obj:
        ctx.obj["session"].settings_file = settings


@cli.command()
@click.option("--year", default=None, help="年度コード(既定: 設定ファイル、R6)。")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="出力フォルダー(既定: outbox/templates)。")
@click.option("--deadline", default=None, help="提出期限 YYYY-MM-DD(記入要領に印刷)。")
@click.option("--previous", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="前年度の評価(前年度の集約ブックなど)。既定: outbox にある前年度の集約ブック・保存した表。")
@click.option("--force", is_flag=True, help="手で変更されたテンプレートも上書きします。")
@click.pass_context
def templates(ctx: click.Context, year: str | None, out: Path | None, deadline: str | None,
              previous: Path | None, force: bool) -> None:
    """担当課ごとの記入テンプレート(.xlsx)を作ります。

    前年度の評価が見つかると、各行の右に前年度の事業評価と今後の事業計画・展望を
    【参考】欄(灰色・変更不可)として載せます。

    \b
    例: python -m pipeline templates --year R7 --deadline 2026-05-29
        python -m pipeline templates --year R7 --previous 地域福祉計画_評価集約_R6.xlsx
    """
    from pipeline.runner import run_templates

    s = _settings(ctx, year=year, deadline=deadline)
    target = out or s.outbox / "templates"
    try:
        paths = run_templates(s, target, previous, force=force)
    except PipelineError as exc:
        raise CommandFailed(str(exc)) from None
    from pipeline.report import make_issue
    from pipeline.templates import edited_templates

    for p in paths:
        click.echo(f"作成: {p}")
    click.echo(f"{len(paths)} 課分のテンプレートを {target} に作成しました。")
    for kept, new in edited_templates(paths):
        issue = make_issue("template-edited", file=kept.name, value=kept.name, detail=new.name)
        _console(f"注意 {issue.code}: {issue.message}")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--year", default=None, help="年度コード(既定: 設定ファイル、R6)。")
@click.option("--json", "as_json", is_flag=True, help="結果を JSON で出力します(ライブラリの戻り値と同じ)。")
@click.option("--feedback", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="差し戻し用の写しの出力先(既定: outbox/feedback)。")
@click.option("--no-feedback", is_flag=True, help="差し戻し用の写しを作りません。")
@click.pass_context
def validate(ctx: click.Context, paths: tuple[Path, ...], year: str | None, as_json: bool,
             feedback: Path | None, no_feedback: bool) -> None:
    """返送されたファイル(フォルダーは中まで)を点検します。

    \b
    例: python -m pipeline validate inbox/ --feedback outbox/feedback
    終了コード: 0 エラーなし(警告のみ可) / 1 エラーあり / 2 使い方の誤り / 3 実行できない
    """
    from pipeline.runner import run_validate

    if feedback is not None and no_feedback:
        raise click.UsageError(
            "--feedback と --no-feedback は同時に指定できません。写しを作るなら --feedback フォルダー だけを、"
            "作らないなら --no-feedback だけを指定してください。",
            ctx=ctx,
        )
    s = _settings(ctx, year=year)
    folder = None if no_feedback else (feedback or s.outbox / "feedback")
    try:
        with library_output() as said:
            report, written = run_validate(list(paths), s, folder, _progress("点検中"))
    except PipelineError as exc:
        raise CommandFailed(str(exc)) from None
    _log_library_output(ctx, said)
    _log_files(ctx, list(report.files), lambda f: f.status, report.notes, ())
    if as_json:
        # One JSON document as UTF-8 bytes, whatever the console's encoding (cp932 would lose 𠮷).
        click.echo(jsontext.dumps_utf8(report.to_dict()))  # bytes: written to the binary stream as they are
    else:
        _console(render_files(list(report.files), report.notes))
        if written:
            click.echo(f"\n差し戻し用の写し {len(written)} 件: {folder}")
    ctx.exit(report.exit_code)


@cli.command()
@click.option("--inbox", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="受信フォルダー(既定: 設定ファイル、inbox)。")
@click.option("--outbox", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="出力フォルダー(既定: 設定ファイル、outbox)。")
@click.option("--year", default=None, help="年度コード(既定: 設定ファイル、R6)。")
@click.option("--allow-drop", is_flag=True,
              help="評価の件数が前回より大きく減っても(0 件を含む)出力を更新します。")
@click.option("--previous", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="前年度比較に使う前年度の評価(既定: outbox にある前年度の集約ブック・保存した表)。")
@click.option("--collect", "with_collect", is_flag=True,
              help="先にメールボックスから返送メールを取り込みます(collect)。読めなくても inbox/ にあるファイルで集約します。")
@click.pass_context
def merge(ctx: click.Context, inbox: Path | None, outbox: Path | None, year: str | None, allow_drop: bool,
          previous: Path | None, with_collect: bool) -> None:
    """受信フォルダーの全ファイルを点検し、集約ブックにまとめます(毎晩の処理)。

    \b
    例: python -m pipeline merge --inbox inbox --outbox outbox
        python -m pipeline merge --collect
    終了コード: 0 全て正常 / 1 一部のファイルにエラー / 2 使い方の誤り /
                3 実行できない(実行中・書込不可・評価の件数が前回より大きく減る など)
    """
    from pipeline.runner import run_merge

    _session(ctx).is_merge = True
    s = _settings(ctx, inbox=inbox, outbox=outbox, year=year)
    notices: list[str] = []
    if with_collect:
        notices = _collect_before_merge(s)
    try:
        with library_output() as said:
            run = run_merge(s, _progress("読み込み中"), allow_drop=allow_drop, previous=previous, notices=notices)
    except PipelineError as exc:
        for notice in notices:  # the summary that would have shown them is not printed
            _console(f"注意: {notice}", err=True)
        raise CommandFailed(str(exc)) from None
    _log_library_output(ctx, said)
    _log_run(ctx, run)
    _console(render_merge(run))
    ctx.exit(run.exit_code)


def _collect_before_merge(s: Settings) -> list[str]:
    """`merge --collect`: the mailbox first; a failure is a notice of the night (in the merge's
    summary and run report), never its end."""
    from pipeline.collect import collect, render_collect

    try:
        result = collect(s)
    except PipelineError as exc:
        _console("メールボックスを読めませんでした。inbox/ にあるファイルで集約します(理由は集約結果の「注意」)。", err=True)
        return [f"メールボックスを読めませんでした。inbox/ にあるファイルで集約します。理由: {exc}"]
    _console(render_collect(result, s))
    if result.too_large:
        return [f"メールボックスに大きすぎて取り込まなかったメールが {len(result.too_large)} 通あります(collect の表示を参照)。"]
    return []


@cli.command()
@click.option("--set-password", is_flag=True,
              help="メールボックスのパスワードを OS の資格情報ストア(Windows 資格情報マネージャー)に保存します。")
@click.pass_context
def collect(ctx: click.Context, set_password: bool) -> None:
    """メールボックス(IMAP)の返送フォルダーから、返送ファイル付きのメールを inbox/mail/ に取り込みます。

    \b
    設定ファイルの [mailbox] のフォルダーを読み取り専用で開き、前回の取り込み以降に届いたメールのうち、
    Excel・zip・Outlook(.msg)の添付があるものを .eml として保存します。メールの削除・移動・既読の変更はしません。
    例: python -m pipeline collect --set-password   (最初に一度、パスワードを保存)
        python -m pipeline collect
    終了コード: 0 取り込んだ / 1 大きすぎて取り込めないメールがある / 2 使い方の誤り /
                3 実行できない(サーバーに接続できない・ログインできない・証明書を確認できない・フォルダーがない・接続が切れた)
    """
    from pipeline import collect as mailbox

    s = _settings(ctx)
    try:
        if set_password:
            password = click.prompt("メールボックスのパスワード", hide_input=True, confirmation_prompt="確認のためもう一度",
                                    err=True)
            where = mailbox.set_password(s, password)
            _console(f"パスワードを保存しました({where})。")
            return
        result = mailbox.collect(s)
    except PipelineError as exc:
        raise _failed(exc) from None
    _console(mailbox.render_collect(result, s))
    ctx.exit(result.exit_code)


@cli.command()
@click.option("--outbox", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="デモの出力フォルダー(既定: demo/outbox)。本番の outbox には書きません。")
@click.option("--inbox", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="デモ用の返送ファイルを置くフォルダー(既定: demo/inbox)。")
@click.pass_context
def demo(ctx: click.Context, outbox: Path | None, inbox: Path | None) -> None:
    """デモ: テンプレートを作り、公表済みの令和6年度実績で各課の返送を再現して集約します。

    \b
    本番の受信・出力フォルダーには触れず、demo/inbox と demo/outbox だけを使います。
    例: python -m pipeline demo
    """
    from pipeline.demo import DEMO_DIR
    from pipeline.runner import run_demo

    _session(ctx).open(outbox or DEMO_DIR / "outbox", Settings.keep_logs)  # the demo's own log, not the live outbox's
    s = _settings(ctx)
    try:
        run = run_demo(s, inbox, _progress("読み込み中"), outbox=outbox)
    except PipelineError as exc:
        raise CommandFailed(str(exc)) from None
    _log_run(ctx, run)
    _console(render_merge(run))
    ctx.exit(run.exit_code)


@cli.group()
def plan() -> None:
    """計画カタログ(schemas/plan-<年度>.yaml)を作成・点検します。

    \b
    例:
      python -m pipeline plan new-year R7
      python -m pipeline plan check R7
    """


def _year_argument(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from pipeline.newyear import parse_year

    if value is None:
        return None
    try:
        return parse_year(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@plan.command("new-year")
@click.argument("year", callback=_year_argument)
@click.option("--from", "from_year", default=None, callback=_year_argument,
              help="元にする年度(既定: 前年度。R7 なら R6)。")
@click.option("--force", is_flag=True, help="既にある plan-<年度>.yaml を上書きします(手で加えた編集は失われます)。")
@click.pass_context
def plan_new_year(ctx: click.Context, year: str, from_year: str | None, force: bool) -> None:
    """前年度の計画カタログから新しい年度の plan-<年度>.yaml を作り、確認事項を表示します。

    \b
    例: python -m pipeline plan new-year R7
        python -m pipeline plan new-year R8 --from R7
    終了コード: 0 作成 / 2 使い方の誤り / 3 作成できない(元の計画がない・既にある)
    """
    from pipeline.newyear import new_year_plan

    s = _settings(ctx)
    try:
        path, checklist = new_year_plan(s.schemas, year, from_year, force=force, settings=s)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except PipelineError as exc:
        raise CommandFailed(str(exc)) from None
    click.echo(f"作成: {path}")
    click.echo("次の点を確認してください:")
    for i, item in enumerate(checklist, 1):
        click.echo(f"  {i}. {item}")


@plan.command("check")
@click.argument("year", required=False, callback=_year_argument)
@click.option("--from", "from_year", default=None, callback=_year_argument,
              help="比べる年度(既定: 前年度)。")
@click.pass_context
def plan_check(ctx: click.Context, year: str | None, from_year: str | None) -> None:
    """計画カタログを点検し、前年度からの変更点(事業・担当課)を表示します。

    \b
    例: python -m pipeline plan check R7
    終了コード: 0 問題なし / 2 使い方の誤り / 3 カタログに誤りがある
    """
    from pipeline.catalog import load_catalog
    from pipeline.newyear import plan_changes, plan_path

    s = _settings(ctx, year=year)
    try:
        catalog = load_catalog(s.year, s.schemas)
    except PipelineError as exc:
        raise CommandFailed(str(exc)) from None
    click.echo(
        f"{catalog.path.name}: {catalog.year_label}(西暦 {catalog.year_western} 年度)、事業 {len(catalog.projects)} 件、"
        f"担当課の割り当て {len(catalog.assignments)} 件、テンプレートを送る課 {len({a.office for a in catalog.assignments})}。"
        "誤りはありません。"
    )
    previous = from_year or (f"R{int(catalog.year[1:]) - 1}" if catalog.year[1:].isdigit() else None)
    if not previous or not plan_path(catalog.path.parent, previous).exists():
        click.echo(f"比べる年度の計画カタログ({previous or '前年度'})がないため、変更点は表示しません。")
        return
    try:
        old = load_catalog(previous, s.schemas)
    except PipelineError as exc:
        raise CommandFailed(str(exc)) from None
    changes = plan_changes(old, catalog)
    click.echo(f"{old.year} からの変更点: {len(changes)} 件" + ("(変更なし)" if not changes else ""))
    for line in changes:
        click.echo(f"  {line}")


def utf8_mode_argv(encoding: str | None = None) -> list[str] | None:
    """The command line to run again in Python's UTF-8 mode, or None when it is not needed.

    Under a locale that is not UTF-8 on POSIX (LC_ALL=C with PYTHONUTF8=0, a Latin-1 locale) every
    file name is encoded in that locale: our Japanese output names cannot be written at all, and
    every Japanese name in the inbox reads as undecodable bytes. File names on a Linux share are
    UTF-8 bytes, so the command runs again with `-X utf8` (PEP 540), once, and reads and writes
    them as such."""
    encoding = encoding or sys.getfilesystemencoding()
    if os.name == "nt" or sys.flags.utf8_mode or codecs.lookup(encoding).name == "utf-8":
        return None
    return [sys.executable, "-X", "utf8", *sys.orig_argv[1:]]


# --- Yearly commands: import-published, status, remind ---------------------------------------------


def _log_library_output(ctx: click.Context, said: Iterable[str]) -> None:
    """What a library printed or warned during the command: in the log, labelled, never on the console
    (it would land in --json or the summary staff read)."""
    session = _session(ctx)
    for line in said:
        session.write(f"ライブラリの出力・警告(Python): {line}")


def _console(text: str, err: bool = False) -> None:
    """Print Japanese text on any console: characters a cp932 console cannot show become 〓."""
    from pipeline.yearly import for_console

    stream = sys.stderr if err else sys.stdout
    click.echo(for_console(text, getattr(stream, "encoding", None)), err=err)


def _failed(exc: PipelineError) -> CommandFailed:
    from pipeline.yearly import for_console

    return CommandFailed(for_console(str(exc), getattr(sys.stderr, "encoding", None)))


_TODAY = click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, hidden=True,
                      help="今日の日付 YYYY-MM-DD(既定: 今日)。ある日の表示を再現するためのものです。")


@cli.command("import-published")
@click.argument("file", type=click.Path(exists=True, dir_okay=True, path_type=Path))
@click.option("--year", default=None, callback=_year_argument,
              help="評価表の年度(既定: 設定ファイルの年度の前年度。R6 なら R5)。")
@click.pass_context
def import_published(ctx: click.Context, file: Path, year: str | None) -> None:
    """前年度に公表した評価表を読み込み、前年度の評価として保存します(outbox/history/)。

    \b
    公表した PDF を Excel に変換したもの、または公表と同じ列の課の控えを指定します。
    返送と同じ点検をして、照合できた評価を outbox/history/evaluations-<年度>.json に保存します
    (受付フォルダには何も置きません)。その年度の計画カタログ(plan-r5.yaml)がなければ、
    今年度の計画カタログで事業No.と担当課を照合します。
    例: python -m pipeline import-published 令和5年度評価表.xlsx --year R5
    終了コード: 0 保存 / 1 保存したが照合できない行がある / 2 使い方の誤り(ファイルがないなど) /
                3 保存できない(読めない・評価が1件も読めない)
    """
    from pipeline.history import previous_code
    from pipeline.yearly import import_published as run_import
    from pipeline.yearly import render_import

    s = _settings(ctx)
    if year is None:
        year = previous_code(s.year)
        if year is None:
            raise click.UsageError(f"{s.year} の前年度はありません。--year R5 のように年度を指定してください。", ctx=ctx)
        _console(f"--year の指定がないため、{s.year} の前年度 {year} の評価表として読み込みます。")
    try:
        result = run_import(file, year, s)
    except PipelineError as exc:
        raise _failed(exc) from None
    _console(render_import(result))
    ctx.exit(result.exit_code)


@cli.command()
@click.option("--year", default=None, callback=_year_argument, help="年度コード(既定: 設定ファイル)。")
@_TODAY
@click.pass_context
def status(ctx: click.Context, year: str | None, today: Any) -> None:
    """最新の集約結果(実行レポート)から、担当課ごとの提出状況と提出期限までの日数を表示します。

    \b
    例: python -m pipeline status
        python -m pipeline status --year R7
    最初の行は前回の夜間集約(merge)の結果です(outbox/last-run.json)。
    終了コード: 0 全ての課の評価がそろった / 1 評価がそろっていない課がある、または前回の夜間集約が失敗した /
                2 使い方の誤り /
                3 表示できない(その年度の集約をまだ実行していない・実行レポートが読めない)
    """
    from pipeline.collect import describe_state
    from pipeline.yearly import render_status, submission_status

    s = _settings(ctx)
    mailbox = describe_state(s)
    try:
        result = submission_status(s, year, today.date() if today else None)
    except PipelineError as exc:
        if mailbox:  # a collect may have run before the first merge
            _console(mailbox, err=True)
        raise _failed(exc) from None
    _console(render_status(result))
    if mailbox:
        _console(mailbox)
    ctx.exit(result.exit_code)


@cli.command()
@click.option("--year", default=None, callback=_year_argument, help="年度コード(既定: 設定ファイル)。")
@_TODAY
@click.pass_context
def remind(ctx: click.Context, year: str | None, today: Any) -> None:
    """評価がそろっていない課ごとに、督促メールの下書き(.eml)を outbox/reminders/ に作ります。

    \b
    最新の集約結果から、未提出の評価と返送ファイルの誤りを書き、差し戻し用の写しを添付します。
    下書きは Outlook で未送信のメールとして開きます。宛先は schemas/departments.yaml の senders です。
    評価がそろった課の古い下書きは削除します。
    例: python -m pipeline remind
    終了コード: 0 作成(督促する課がない場合を含む) / 2 使い方の誤り /
                3 作成できない(その年度の集約をまだ実行していない・書き込めない)
    """
    from pipeline.yearly import render_reminders, write_reminders

    s = _settings(ctx)
    try:
        written = write_reminders(s, today.date() if today else None, year)
    except PipelineError as exc:
        raise _failed(exc) from None
    _console(render_reminders(written, s))




@cli.command()
@click.option("--year", default=None, help="年度コード(既定: 設定ファイル、R6)。")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="出力フォルダー(既定: outbox/publish)。")
@click.option("--pdf", is_flag=True, help="LibreOffice で PDF も作ります(soffice が PATH か設定の [publish] soffice に必要)。")
@click.option("--issued", default=None, metavar="YYYY-MM",
              help="表紙の発行年月(例: 2026-03 → 令和8年3月)。既定: 実行した月。")
@click.pass_context
def publish(ctx: click.Context, year: str | None, out: Path | None, pdf: bool, issued: str | None) -> None:
    """審議会・ホームページ用の「進捗状況及び評価表」(印刷用ブック、--pdf で PDF も)を作ります。

    \b
    最新の集約ブック(merge の結果)から、表紙・基本目標ごとの表・集計とグラフ・前年度比較を作ります。
    個人を特定できそうな記述(敬称付きの氏名・電話番号・メールアドレス)は警告として表示します。
    例: python -m pipeline publish --pdf --issued 2026-03
    終了コード: 0 作成(警告のみ可) / 2 使い方の誤り /
                3 作成できない(集約ブックがない・書き込めない)、または PDF を作れない(ブックは作成済み)
    """
    from pipeline.publish import issued_month, run_publish

    try:
        month = issued_month(issued) if issued is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--issued") from None
    s = _settings(ctx, year=year)
    try:
        result = run_publish(s, out, pdf, issued=month)
    except PipelineError as exc:
        raise CommandFailed(str(exc)) from None
    click.echo(f"{result.catalog.year_label} {result.catalog.title}: 評価 {result.rows} 件(元: {result.master})")
    if result.previous:
        click.echo(f"前年度比較: {result.previous} の評価と比べました。")
    for notice in result.notices:
        click.echo("注意: " + notice)
    if result.issues:
        click.echo(f"\n公表前に確認してください(個人を特定できるかもしれない記述 {len(result.issues)} 件):")
        for i in result.issues:
            click.echo(f"  警告 {i.code}\t{i.sheet} {i.cell}\t{i.message}")
        click.echo("")
    click.echo(f"公表用ブック: {result.xlsx}")
    if result.pdf is not None:
        click.echo(f"PDF: {result.pdf}")
    if result.pdf_error:
        click.echo(f"エラー: {result.pdf_error}", err=True)
    ctx.exit(result.exit_code)


# --- The log ---------------------------------------------------------------------------------


def _log_files(ctx: click.Context, files: list[Any], status_of: Any, notes: Iterable[Any], notices: Iterable[str]) -> None:
    """Each file's status, each issue of the run (not of one file) and each notice, into the log."""
    session = _session(ctx)
    for f in files:
        status = status_of(f)
        counts = f"エラー {len(f.errors)}、警告 {len(f.warnings)}" if status != "ignored" else (f.reason or "対象外")
        session.write(f"ファイル: {status} {FILE_STATUS_LABELS.get(status, status)}\t{f.name}\t({counts})")
    for n in notes:
        session.write(f"指摘: {n.code} {SEVERITY_JA.get(n.severity, n.severity)}\t{n.file}\t{n.message}")
    for notice in notices:
        session.write(f"注意: {notice}")


def _log_run(ctx: click.Context, run: Any) -> None:
    session = _session(ctx)
    session.report = str(run.report_path)
    _log_files(ctx, run.files, run.status_of, run.outcome.notes, run.notices)
    r = run.report
    session.write(f"集約: 評価行 {r['rows']} / {r['assignments']}、エラー {r['errors']} 件、警告 {r['warnings']} 件、"
                  f"集約ブック {run.master}、実行レポート {run.report_path}")


# --- Rendering ---------------------------------------------------------------------------------


def render_files(files: list[Any], notes: Iterable[Any] = ()) -> str:
    """One line per file with its status, then a table of issues (file, sheet, cell, code, message)."""
    lines = []
    for f in files:
        counts = f"行 {len(f.rows)}" + (f"、エラー {len(f.errors)}" if f.errors else "") + (
            f"、警告 {len(f.warnings)}" if f.warnings else ""
        )
        if f.status == "ignored":
            counts = f.reason or FILE_STATUS_LABELS["ignored"]
        lines.append(f"{f.status:<10} {FILE_STATUS_LABELS.get(f.status, f.status)}\t{f.name}\t({counts})")
    issues = [(f.name, i) for f in files for i in f.issues] + [(n.file, n) for n in notes]
    if issues:
        lines.append("")
        lines.append("ファイル\tシート\tセル\tコード\t重要度\t内容")
        for name, i in issues:
            lines.append(f"{name}\t{i.sheet}\t{i.cell}\t{i.code}\t{SEVERITY_JA[i.severity]}\t{i.message}")
    return "\n".join(lines)


def render_merge(run: Any) -> str:
    """The one-screen Japanese summary at the end of a merge."""
    r = run.report
    st = r["statuses"]
    lines = [
        f"{run.catalog.year_label} {run.catalog.plan} 集約結果",
        "ファイル: " + " / ".join(f"{FILE_STATUS_LABELS[s]} {st[s]}" for s in FILE_STATUSES),
        f"評価行: {r['rows']} / {r['assignments']}(エラー {r['errors']} 件、警告 {r['warnings']} 件)",
    ]
    for goal in run.catalog.goals:
        c = r["goals"][str(goal.number)]
        lines.append(f"  基本目標{goal.number} {goal.name}: A {c['A']}  B {c['B']}  C {c['C']}  D {c['D']}")
    outstanding = [o for o in run.outcome.offices if o.owes]
    if outstanding:
        lines.append("未完了の担当課: " + "、".join(f"{o.office}({o.shown()}、残り {o.missing})" for o in outstanding))
    else:
        lines.append("全ての担当課の評価がそろいました。")
    later = [o for o in run.outcome.offices if o.later_errors]
    if later:
        lines.append("受理済みで後の提出にエラーがある担当課(督促は不要、内容の確認を): "
                     + "、".join(f"{o.office}({o.reason})" for o in later))
    if r["unattributed"]:
        shown = "、".join(r["unattributed"][:5]) + (f" ほか {len(r['unattributed']) - 5} 件" if len(r["unattributed"]) > 5 else "")
        lines.append(f"差出課不明のファイル {len(r['unattributed'])} 件: {shown}")
    if r["dropped"]:
        lines.append(f"前回からなくなった評価: {len(r['dropped'])} 件(詳細は 検証結果 シートの row-dropped)")
    from pipeline.textchecks import ACKNOWLEDGEABLE  # the codes of the text checks

    texts = sum(1 for n in run.outcome.notes if n.code in ACKNOWLEDGEABLE)
    if texts or r.get("acknowledged"):
        lines.append(f"記述の点検: 要確認 {texts} 件、確認済み {len(r.get('acknowledged') or [])} 件(検証結果 シート)")
    if r.get("previous_year"):
        lines.append(f"前年度比較: {r['previous_year']['year']} の評価({Path(r['previous_year']['source']).name})と比べました"
                     "(集約ブックの 前年度比較 シート)。")
    for notice in run.notices:
        lines.append("注意: " + notice)
    bad = [f for f in run.files if f.errors]
    for f in bad[:10]:
        status = run.status_of(f)
        lines.append(f"  要確認: {f.name} ({FILE_STATUS_LABELS.get(status, status)}、エラー {len(f.errors)} 件)")
    if len(bad) > 10:
        lines.append(f"  ほか {len(bad) - 10} ファイル(詳細は実行レポート)")
    lines.append(f"集約ブック: {run.master}")
    lines.append(f"集計ブック: {run.summary}")
    lines.append(f"実行レポート: {run.report_path}")
    if run.feedback:
        lines.append(f"差し戻し用の写し: {len(run.feedback)} 件({run.feedback[0].parent})")
    return "\n".join(lines)


def main() -> None:
    """Entry point: make printing safe on a cp932 console, then run the CLI."""
    argv = utf8_mode_argv()
    if argv is not None:
        os.execv(sys.executable, argv)
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:
            continue
        # An ASCII locale (LC_ALL=C without UTF-8 mode) can show no Japanese at all: the log of a
        # nightly task is then written as UTF-8, which every editor reads, instead of "?"s.
        ascii_only = codecs.lookup(getattr(stream, "encoding", None) or "ascii").name == "ascii"
        reconfigure(errors="replace", **({"encoding": "utf-8"} if ascii_only else {}))
    cli(prog_name="pipeline")
