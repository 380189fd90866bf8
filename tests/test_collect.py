"""`collect` against a real Dovecot IMAP server: the demo returns delivered as mail, collected
read-only into inbox/mail/, merged, and checked cell by cell; then every fault of the run.

The server (tests/dovecot.py) runs unprivileged on loopback with a throw-away configuration and
its own CA; each test uses its own mail account, so no test sees another's messages. Without
Dovecot or openssl the server tests are skipped with the reason (`.ci/run` installs Dovecot).
"""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import os
import zipfile
from datetime import datetime, timedelta, timezone
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import ClassVar

import openpyxl
import pytest
from click.testing import CliRunner
from dovecot import USERS, DroppingProxy, deliver, flags, free_port, make_ca, start_dovecot, why_no_dovecot
from hostile import compound_file
from test_mail import msg_files

from pipeline import collect as mailbox
from pipeline.cli import cli
from pipeline.demo import DEMO_RESULTS, load_results
from pipeline.marks import PART_SEP

JST = timezone(timedelta(hours=9))
FOLDER = "返送/R6"  # as staff write it; Dovecot's Maildir keeps it as 返送.R6
PUBLISHED_GOALS = {
    "1": {"A": 25, "B": 9, "C": 0, "D": 0},
    "2": {"A": 6, "B": 9, "C": 0, "D": 3},
    "3": {"A": 10, "B": 6, "C": 0, "D": 1},
}


def mutf7(name: str) -> str:
    """IMAP's modified UTF-7 made from Python's UTF-7 codec (independent of pipeline.collect)."""
    out = []
    for ch in name:
        if ch == "&":
            out.append("&-")
        elif 0x20 <= ord(ch) <= 0x7E:
            out.append(ch)
        else:
            out.append(None)  # type: ignore[arg-type]
    text, i = "", 0
    while i < len(name):
        if out[i] is not None:
            text += out[i]
            i += 1
            continue
        j = i
        while j < len(name) and out[j] is None:
            j += 1
        utf7 = codecs.encode(name[i:j], "utf-7").decode("ascii")  # "+j9RT4Q-"
        text += "&" + utf7[1:].rstrip("-").replace("/", ",") + "-"
        i = j
    return text


def server_folder(name: str) -> str:
    return ".".join(mutf7(part) for part in name.split("/"))


# --- Pure parts: no server ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["返送/R6", "R6評価返送", "INBOX", "A&B 返送", "受信トレイ/地域福祉課/①返送", "〜～"])
def test_folder_names_round_trip_in_modified_utf7(name: str) -> None:
    assert mailbox.encode_folder(name) == mutf7(name)
    assert mailbox.decode_folder(mailbox.encode_folder(name)) == name


def test_folder_name_encoding_matches_rfc3501_example() -> None:
    assert mailbox.encode_folder("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    assert mailbox.decode_folder("&Jjo-!") == "☺!"


@pytest.mark.parametrize(
    ("structure", "wanted"),
    [
        # a workbook named in RFC 2231 form, type octet-stream
        (b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 2 0 NIL NIL NIL NIL)("application" "octet-stream" NIL'
         b' NIL NIL "base64" 4 NIL ("attachment" ("filename*" "UTF-8\'\'%E8%A9%95%E4%BE%A1.xlsx")) NIL NIL) "mixed"'
         b' ("boundary" "zz") NIL NIL NIL)', True),
        # a workbook named by an encoded-word that hides the suffix
        (b'(("text" "plain" NIL NIL NIL "7bit" 2 0)("application" "octet-stream" ("name" "=?UTF-8?B?6KmV5L6hLnhsc3g=?=")'
         b' NIL NIL "base64" 4 NIL ("attachment" NIL) NIL NIL) "mixed")', True),
        # a zip by type only
        (b'(("text" "plain" NIL NIL NIL "7bit" 2 0)("application" "zip" NIL NIL NIL "base64" 4) "mixed")', True),
        # a forwarded message carrying a workbook
        (b'(("text" "plain" NIL NIL NIL "7bit" 2 0)("message" "rfc822" NIL NIL NIL "7bit" 90 (NIL "s" NIL NIL NIL NIL'
         b' NIL NIL NIL NIL) (("text" "plain" NIL NIL NIL "7bit" 2 0)("application" "vnd.openxmlformats-officedocument'
         b'.spreadsheetml.sheet" ("name" "a.xlsx") NIL NIL "base64" 4) "mixed") 5) "mixed")', True),
        # a PDF and a picture: no return
        (b'(("text" "plain" NIL NIL NIL "7bit" 2 0)("application" "pdf" ("name" "\xe8\xb3\x87\xe6\x96\x99.pdf") NIL NIL'
         b' "base64" 4 NIL ("attachment" ("filename" "\xe8\xb3\x87\xe6\x96\x99.pdf")) NIL NIL)("image" "png" NIL NIL NIL'
         b' "base64" 4) "mixed")', False),
        # text only
        (b'("text" "plain" ("charset" "iso-2022-jp") NIL NIL "7bit" 20 1 NIL NIL NIL NIL)', False),
    ],
)
def test_which_messages_carry_a_return_is_read_from_the_bodystructure(structure: bytes, wanted: bool) -> None:
    parsed = mailbox.parse_list(structure)
    assert mailbox.carries_return(parsed[0]) is wanted


def test_parse_list_reads_literals_quotes_and_nil_and_refuses_garbage() -> None:
    text = b'3 (UID 7 BODY[] \x000\x00 ENVELOPE (NIL "a \\"b\\"" NIL))'
    assert mailbox.parse_list(text, [b"raw\r\nbytes"]) == [
        b"3", [b"UID", b"7", b"BODY[]", b"raw\r\nbytes", b"ENVELOPE", [None, b'a "b"', None]]]
    for bad in (b"((a)", b"a)", b"(" * 100 + b")" * 100):
        with pytest.raises(ValueError):
            mailbox.parse_list(bad)


def test_message_names_are_bounded_valid_and_keep_the_hash() -> None:
    when = datetime(2025, 5, 20, 9, 12, tzinfo=JST)
    name = mailbox.message_name(when, "健康推進課 山田", "令和6年度 評価表: 返送?" * 20, "1a2b3c4d" + "0" * 56)
    assert name.startswith("20250520-0912_健康推進課 山田_令和6年度 評価表_ 返送_")
    assert name.endswith("_1a2b3c4d.eml") and len(name.encode()) <= 120
    assert not set('<>:"/\\|?*') & set(name)


def test_a_name_already_taken_by_other_bytes_is_never_overwritten(tmp_path) -> None:
    folder = tmp_path / "mail" / "2025-05"
    first, second = b"Subject: a\r\n\r\none\r\n", b"Subject: a\r\n\r\ntwo\r\n"
    digest = hashlib.sha256(first).hexdigest()
    path, existed = mailbox._save(folder, "20250520-0912_課_件名_00000000.eml", first, digest)
    assert (path.name, existed) == ("20250520-0912_課_件名_00000000.eml", False)
    assert mailbox._save(folder, path.name, first, digest) == (path, True)  # the same message again
    other, existed = mailbox._save(folder, path.name, second, hashlib.sha256(second).hexdigest())
    assert (other.name, existed) == ("20250520-0912_課_件名_00000000_2.eml", False)
    assert path.read_bytes() == first and other.read_bytes() == second
    assert sorted(p.name for p in folder.iterdir()) == [path.name, other.name]  # no temporaries left


# --- The server ---------------------------------------------------------------------------------

needs_dovecot = pytest.mark.skipif(why_no_dovecot() is not None, reason=why_no_dovecot() or "")


@pytest.fixture(scope="module")
def server():
    if why_no_dovecot():
        pytest.skip(why_no_dovecot())
    dovecot = start_dovecot()
    yield dovecot
    dovecot.stop()


_accounts = iter(USERS)


@pytest.fixture
def account() -> str:
    """A mail account no other test uses."""
    return next(_accounts)


def mime(subject: str | Header, sender: str, received: datetime, body: str, attachments=(), message_id: str = "") -> bytes:
    msg = MIMEMultipart()
    name, address = parseaddr(sender)
    msg["From"] = formataddr((name, address), charset="utf-8")  # the name encoded, as mail clients do
    msg["To"] = "chiiki-fukushi@city.example.lg.jp"
    msg["Subject"] = subject
    msg["Date"] = received.strftime("%a, %d %b %Y %H:%M:%S +0900")
    msg["Message-ID"] = message_id or f"<{hashlib.sha1(body.encode() + subject.encode() if isinstance(subject, str) else body.encode()).hexdigest()}@city.example.lg.jp>"
    msg.attach(MIMEText(body, "plain", "utf-8"))
    for name, data, subtype in attachments:
        part = MIMEApplication(data, _subtype=subtype)
        part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", name))
        msg.attach(part)
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def office_of(path: Path) -> str:
    return path.stem.rsplit("_", 1)[-1]


def demo_mails(demo_returns: Path) -> list[tuple[str, bytes, datetime, str]]:
    """(what, message, arrival, flags): the 12 returns as staff's mail system holds them (one in
    an Outlook item, one in a zip, one with an ISO-2022-JP subject), unrelated mail around them,
    a message over the 1 MiB limit and a malformed one."""
    returns = sorted(demo_returns.glob("*.xlsx"))
    assert len(returns) == 12
    start = datetime(2025, 5, 12, 9, 0, tzinfo=JST)
    mails: list[tuple[str, bytes, datetime, str]] = []

    def at(n: int) -> datetime:
        return start + timedelta(hours=7 * n, minutes=13 * n)

    mails.append(("unrelated", mime("【周知】庁内LANの停止について", "情報政策課 <johosei@city.example.lg.jp>", at(0),
                                    "5月17日(土)は庁内LANを停止します。"), at(0), "\\Seen"))
    for n, path in enumerate(returns, 1):
        office = office_of(path)
        sender = f"{office} 担当 <office{n:02d}@city.example.lg.jp>"
        subject: str | Header = f"【返送】令和6年度 地域福祉計画 評価表({office})"
        data, name, subtype = path.read_bytes(), path.name, "vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        if n == 2:
            subject = Header(f"Re: 評価表の送付({office})", "iso-2022-jp")
        if n == 5:  # the return inside an Outlook item attached to the mail
            data = compound_file(msg_files(subject=f"評価表({office})", sender_name=office, sender_email=f"office{n:02d}@city.example.lg.jp",
                                           attachments=((name, path.read_bytes()),)))
            name, subtype = f"{office}_返送.msg", "vnd.ms-outlook"
        if n == 8:  # the return in a zip
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                z.writestr(name, path.read_bytes())
            data, name, subtype = buf.getvalue(), f"{office}_返送.zip", "zip"
        mails.append((f"return {office}", mime(subject, sender, at(n), "お世話になっております。評価表を送付します。",
                                               [(name, data, subtype)]), at(n), "\\Seen" if n % 3 == 0 else ""))
        if n == 4:
            mails.append(("unrelated", mime("会議資料の送付", "企画政策課 <kikaku@city.example.lg.jp>", at(n) + timedelta(minutes=5),
                                            "資料を添付します。", [("第2回会議資料.pdf", b"%PDF-1.4 test", "pdf")]),
                          at(n) + timedelta(minutes=5), "\\Flagged"))
        if n == 9:
            big = os.urandom(900 * 1024)  # 1.2 MiB in base64
            mails.append(("too large", mime("評価表(写真入り)", "健康課 <kenko@city.example.lg.jp>", at(n) + timedelta(minutes=7),
                                            "容量が大きくすみません。", [("評価表_写真入り.xlsx", big, "octet-stream")]),
                          at(n) + timedelta(minutes=7), ""))
    broken = (
        "From: =?UTF-8?B?5aOK44KM44Gf?= <broken@city.example.lg.jp>\r\n"
        "Subject: \x95\x5c\x8e\xa6 broken\r\n"  # raw Shift_JIS bytes in a header (as latin-1 here)
        "Message-ID: <broken-1@city.example.lg.jp>\r\n"
        "Date: Fri, 16 May 2025 10:00:00 +0900\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        '--b1\r\nContent-Type: application/octet-stream; name="評価表_壊れ.xlsx"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        "UEsDBBQAAAAIAA!!!not-base64@@@\r\n"  # no closing boundary either
    ).encode("latin-1", "replace")
    mails.append(("malformed", broken, at(10) + timedelta(minutes=1), ""))
    mails.append(("unrelated", mime("お知らせ", "総務課 <somu@city.example.lg.jp>", at(13), "研修のお知らせです。"), at(13), "\\Seen \\Flagged"))
    return mails


def deliver_all(server, user: str, mails) -> None:
    for _, message, when, flag in mails:
        deliver(server, user, server_folder(FOLDER), message, when, flag)


def write_settings(tmp_path: Path, server, user: str, **mailbox_keys: object) -> Path:
    (tmp_path / "inbox").mkdir(exist_ok=True)
    secret = tmp_path / "secret.txt"
    if not secret.exists():
        secret.write_text(mailbox_keys.pop("password", "春の返送-2025") + "\n", encoding="utf-8")  # type: ignore[operator]
        secret.chmod(0o600)
    keys: dict[str, object] = {
        "host": "localhost", "port": server.imaps_port, "tls": "imaps", "ca_file": str(server.ca_file),
        "user": user, "folder": FOLDER, "password_file": str(secret),
    }
    keys.update(mailbox_keys)
    lines = ["[paths]", 'inbox = "inbox"', 'outbox = "outbox"', "[limits]", "max_file_mib = 1", "[mailbox]"]
    for key, value in keys.items():
        if value is not None:
            lines.append(f"{key} = {json.dumps(value, ensure_ascii=False) if isinstance(value, str) else value}")
    path = tmp_path / "pipeline.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(settings_file: Path, *args: str, input: str | None = None):
    return CliRunner().invoke(cli, ["--settings", str(settings_file), *args], input=input)


def saved_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "inbox" / "mail").rglob("*.eml"))


def leftovers(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "inbox").rglob("*") if p.name.startswith(".~tmp")]


def master_answers(outbox: Path) -> dict[tuple[str, str], tuple[object, object, object, object]]:
    """(事業No., 担当課) → (事業実績・評価理由, 事業評価, 今後の事業計画・展望, 提出ファイル) from 評価一覧."""
    path = next(outbox.glob("*評価集約*.xlsx"))
    ws = openpyxl.load_workbook(path, read_only=True)["評価一覧"]
    rows = list(ws.iter_rows(values_only=True))
    header = list(rows[0])
    cols = [header.index(h) for h in ("事業No.", "担当課", "事業実績・評価理由 (令和6年度)", "事業評価", "今後の事業計画・展望", "提出ファイル")]
    return {(str(r[cols[0]]), str(r[cols[1]])): tuple(r[c] for c in cols[2:]) for r in rows[1:] if r[cols[0]] is not None}


@needs_dovecot
def test_collect_and_merge_the_demo_returns_from_the_mailbox(server, account, tmp_path, demo_returns) -> None:
    mails = demo_mails(demo_returns)
    deliver_all(server, account, mails)
    before = flags(server, account, server_folder(FOLDER))
    settings_file = write_settings(tmp_path, server, account)

    result = run(settings_file, "collect")
    print(result.output)
    assert result.exit_code == 1, result.output  # one message over max_file_mib
    saved = saved_files(tmp_path)
    assert len(saved) == 13  # 12 returns + the malformed one; not the 3 unrelated, not the large one
    assert "保存: 13 通" in result.output and "返送ファイルの添付がないため保存しない: 3 通" in result.output
    assert "大きすぎて取り込まなかったメール 1 通" in result.output and "健康課「評価表(写真入り)」(1.2 MiB)" in result.output
    # Saved byte for byte: each file is one delivered message, exactly
    delivered = {hashlib.sha256(m).hexdigest() for what, m, _, _ in mails if what.startswith(("return", "malformed"))}
    assert {hashlib.sha256(p.read_bytes()).hexdigest() for p in saved} == delivered
    # Folders by month of arrival, names from date, sender and subject (ISO-2022-JP decoded)
    assert {p.parent.name for p in saved} == {"2025-05"}
    assert any("_Re_ 評価表の送付(" in p.name for p in saved), [p.name for p in saved]
    assert all(p.name[:8].isdigit() and p.name[8] == "-" for p in saved)
    # Strictly read-only: every flag as it was (no \Seen from fetching)
    assert flags(server, account, server_folder(FOLDER)) == before
    state = json.loads((tmp_path / "outbox" / "mailbox-state.json").read_text(encoding="utf-8"))
    assert state["last_uid"] == len(mails) and state["saved_total"] == 13 and state["last_error"] is None
    assert [t["subject"] for t in state["too_large"]] == ["評価表(写真入り)"]

    merged = run(settings_file, "merge")
    print(merged.output)
    report = json.loads((tmp_path / "outbox" / "run-report.json").read_text(encoding="utf-8"))
    assert report["goals"] == PUBLISHED_GOALS and report["rows"] == 69
    statuses = {f["name"]: f["status"] for f in report["files"]}
    broken = [n for n in statuses if "broken" in n or "壊れ" in n]
    assert broken and all(statuses[n] == "rejected" for n in broken), statuses
    assert merged.exit_code == 1  # the malformed message is an issue on its file, not a fault
    # The master, cell by cell: every assignment holds the published answer from a collected mail
    answers = master_answers(tmp_path / "outbox")
    published = load_results(DEMO_RESULTS)
    assert len(answers) == len(published) == 69
    for entry in published:
        result_text, rating, outlook, source = answers[(entry["project"], entry["department"])]
        assert (result_text, rating, outlook) == (entry["result"], entry["rating"], entry["outlook"])
        assert str(source).startswith("mail/2025-05/") and PART_SEP in str(source)
    assert any(".msg" + PART_SEP in str(a[3]) for a in answers.values()) and any(".zip" + PART_SEP in str(a[3]) for a in answers.values())

    again = run(settings_file, "collect")
    assert again.exit_code == 0 and "保存: 0 通" in again.output
    assert saved_files(tmp_path) == saved

    status = run(settings_file, "status")
    assert "メールボックス: 最終読み取り" in status.output and "保存 累計 13 通" in status.output
    assert "大きすぎて取り込んでいないメール 1 通" in status.output


@needs_dovecot
def test_starttls_and_new_mail_since_the_last_collect(server, account, tmp_path, demo_returns) -> None:
    mails = demo_mails(demo_returns)
    deliver_all(server, account, mails[:5])
    settings_file = write_settings(tmp_path, server, account, tls="starttls", port=server.imap_port)
    first = run(settings_file, "collect")
    assert first.exit_code == 0, first.output
    before_merge = run(settings_file, "status")  # no run report yet: exit 3, the mailbox shown still
    assert before_merge.exit_code == 3 and "メールボックス: 最終読み取り" in before_merge.output
    assert "そのとき保存 4 通(保存 累計 4 通" in before_merge.output
    assert len(saved_files(tmp_path)) == 4  # mails[0] and mails[5] are unrelated
    deliver_all(server, account, mails[5:9])
    second = run(settings_file, "collect")
    assert second.exit_code == 0, second.output
    names = saved_files(tmp_path)
    assert len(names) == 4 + sum(1 for what, *_ in mails[5:9] if what.startswith("return"))
    assert len({hashlib.sha256(p.read_bytes()).digest() for p in names}) == len(names)


@needs_dovecot
def test_since_skips_older_mail(server, account, tmp_path, demo_returns) -> None:
    mails = demo_mails(demo_returns)
    deliver_all(server, account, mails)
    settings_file = write_settings(tmp_path, server, account, since="2025-05-14")
    result = run(settings_file, "collect")
    # SINCE compares the server's arrival dates in its own time zone: this machine's, here.
    kept = [m for what, m, when, _ in mails
            if what.startswith(("return", "malformed")) and when.astimezone().date() >= datetime(2025, 5, 14).date()]
    assert {hashlib.sha256(p.read_bytes()).hexdigest() for p in saved_files(tmp_path)} == {
        hashlib.sha256(m).hexdigest() for m in kept}, result.output


@needs_dovecot
def test_connection_dropped_mid_fetch_then_a_complete_collect_without_duplicates(server, account, tmp_path, demo_returns) -> None:
    mails = [m for m in demo_mails(demo_returns) if m[0] != "too large"]
    deliver_all(server, account, mails)
    total = sum(len(m) for _, m, _, _ in mails)
    proxy = DroppingProxy(server.imaps_port, cut_after=total // 2)
    try:
        settings_file = write_settings(tmp_path, server, account, port=proxy.listen_port)
        dropped = run(settings_file, "collect")
    finally:
        proxy.close()
    print(dropped.output)
    assert proxy.cuts == 1
    assert dropped.exit_code == 3
    assert "接続が途中で切れました" in dropped.output and "次の collect が続きから取り込みます" in dropped.output
    partial = saved_files(tmp_path)
    assert 0 < len(partial) < 13 and not leftovers(tmp_path)
    state = json.loads((tmp_path / "outbox" / "mailbox-state.json").read_text(encoding="utf-8"))
    assert len(state["messages"]) == len(partial) and state["last_error"].startswith("メールサーバー")
    for p in partial:  # every file is a whole message
        assert hashlib.sha256(p.read_bytes()).hexdigest() in {hashlib.sha256(m).hexdigest() for _, m, _, _ in mails}

    settings_file = write_settings(tmp_path, server, account)
    complete = run(settings_file, "collect")  # straight to the server now: same mailbox, same cursor
    assert complete.exit_code == 0, complete.output
    assert f"保存: {13 - len(partial)} 通" in complete.output and "省略" not in complete.output
    files = saved_files(tmp_path)
    assert set(partial) <= set(files) and len(files) == 13
    assert len({hashlib.sha256(p.read_bytes()).digest() for p in files}) == 13


@needs_dovecot
def test_crash_between_saving_and_the_state_and_a_folder_rebuilt_on_the_server_give_no_duplicates(server, account, tmp_path, demo_returns) -> None:
    mails = demo_mails(demo_returns)[:6]
    deliver_all(server, account, mails)
    settings_file = write_settings(tmp_path, server, account)
    assert run(settings_file, "collect").exit_code == 0
    files = saved_files(tmp_path)
    state_file = tmp_path / "outbox" / "mailbox-state.json"
    state = json.loads(state_file.read_text(encoding="utf-8"))
    # 1. The state of a collect that saved its last message but died before recording it
    crashed = dict(state, last_uid=state["messages"][-1]["uid"] - 1, messages=state["messages"][:-1])
    state_file.write_text(json.dumps(crashed, ensure_ascii=False), encoding="utf-8")
    result = run(settings_file, "collect")
    assert result.exit_code == 0 and "保存: 0 通" in result.output and "保存済みのため省略: 1 通" in result.output
    assert saved_files(tmp_path) == files
    # 2. The folder is rebuilt on the server (deleted, made again, the same mail put back): a new
    # UIDVALIDITY, so the whole folder is read again, and nothing already saved is saved twice
    old_validity = json.loads(state_file.read_text(encoding="utf-8"))["uidvalidity"]
    admin = server.client(account)
    try:
        assert admin.delete(server_folder(FOLDER))[0] == "OK"
    finally:
        admin.logout()
    deliver_all(server, account, mails)
    result = run(settings_file, "collect")
    assert json.loads(state_file.read_text(encoding="utf-8"))["uidvalidity"] != old_validity
    assert result.exit_code == 0 and "全体を読み直しました" in result.output and f"保存済みのため省略: {len(files)} 通" in result.output
    assert saved_files(tmp_path) == files


def fault(tmp_path: Path, settings_file: Path, demo_returns: Path, expected: str) -> str:
    """A collect that fails with `expected` (exit 3, nothing saved), and a `merge --collect` that
    goes on with what the inbox holds and says so; `status` shows the failure. Returns the message."""
    result = run(settings_file, "collect")
    print(result.output)
    assert result.exit_code == 3 and expected in result.output, result.output
    assert result.output.startswith("エラー: ")
    assert saved_files(tmp_path) == [] and not leftovers(tmp_path)
    for path in demo_returns.glob("*.xlsx"):  # what staff saved by hand
        (tmp_path / "inbox" / path.name).write_bytes(path.read_bytes())
    merged = run(settings_file, "merge", "--collect")
    assert merged.exit_code == 0, merged.output
    assert "注意: メールボックスを読めませんでした。inbox/ にあるファイルで集約します。" in merged.output
    report = json.loads((tmp_path / "outbox" / "run-report.json").read_text(encoding="utf-8"))
    assert report["goals"] == PUBLISHED_GOALS
    assert any(expected in n for n in report["notices"])
    status = run(settings_file, "status")
    assert "の読み取りは失敗しました" in status.output and expected in status.output
    return result.output


@needs_dovecot
def test_fault_server_down(server, account, tmp_path, demo_returns) -> None:
    settings_file = write_settings(tmp_path, server, account, port=free_port())
    fault(tmp_path, settings_file, demo_returns, "に接続できません(接続を拒否されました)")


@needs_dovecot
def test_fault_wrong_password(server, account, tmp_path, demo_returns) -> None:
    settings_file = write_settings(tmp_path, server, account, password="春の返送-2024")
    fault(tmp_path, settings_file, demo_returns, "にログインできません(ユーザー kikaku")


@needs_dovecot
def test_fault_certificate_for_another_name(server, account, tmp_path, demo_returns) -> None:
    settings_file = write_settings(tmp_path, server, account, host="127.0.0.1")
    fault(tmp_path, settings_file, demo_returns, "の証明書を確認できないため、接続をやめました: サーバーの証明書が 127.0.0.1 のものではありません")


@needs_dovecot
def test_fault_certificate_of_an_untrusted_ca(server, account, tmp_path, demo_returns) -> None:
    settings_file = write_settings(tmp_path, server, account, ca_file=None)
    fault(tmp_path, settings_file, demo_returns, "CA を信頼できません。市の CA 証明書を [mailbox] ca_file に指定してください")
    other, _ = make_ca(tmp_path / "other", "another-ca")
    settings_file = write_settings(tmp_path, server, account, ca_file=str(other))
    result = run(settings_file, "collect")
    assert result.exit_code == 3 and f"ca_file の {other} がその CA の証明書か確かめてください" in result.output


@needs_dovecot
def test_fault_missing_folder_lists_the_folders_there_are(server, account, tmp_path, demo_returns) -> None:
    deliver(server, account, server_folder("返送/R5"), mime("x", "a <a@b.jp>", datetime(2025, 5, 1, tzinfo=JST), "x"),
            datetime(2025, 5, 1, tzinfo=JST))
    settings_file = write_settings(tmp_path, server, account, folder="返送/R７")
    message = fault(tmp_path, settings_file, demo_returns, "にフォルダー「返送/R７」がありません")
    assert "INBOX" in message and "返送/R5" in message


@needs_dovecot
def test_an_inbox_that_cannot_take_the_mail_stops_the_collect_and_the_next_one_resumes(server, account, tmp_path, demo_returns) -> None:
    mails = demo_mails(demo_returns)[:4]
    deliver_all(server, account, mails)
    settings_file = write_settings(tmp_path, server, account)
    (tmp_path / "inbox" / "mail").write_bytes(b"")  # a file where the mail folder goes
    blocked = run(settings_file, "collect")
    assert blocked.exit_code == 3 and "に保存できません" in blocked.output and "ディスクの空き" in blocked.output
    state = json.loads((tmp_path / "outbox" / "mailbox-state.json").read_text(encoding="utf-8"))
    assert state["last_uid"] == 1 and state["messages"] == []  # only the unrelated first mail is behind the cursor
    (tmp_path / "inbox" / "mail").unlink()
    assert run(settings_file, "collect").exit_code == 0
    assert len(saved_files(tmp_path)) == 3
    (tmp_path / "inbox").rename(tmp_path / "受信")
    missing = run(settings_file, "collect")
    assert missing.exit_code == 3 and "受信フォルダー" in missing.output and "がありません" in missing.output
    assert not (tmp_path / "inbox").exists()


@needs_dovecot
def test_password_file_others_can_read_is_refused(server, account, tmp_path) -> None:
    if os.name != "posix":
        pytest.skip("file modes tell who can read a file only on POSIX")
    settings_file = write_settings(tmp_path, server, account)
    (tmp_path / "secret.txt").chmod(0o644)
    result = run(settings_file, "collect")
    assert result.exit_code == 3 and "ほかの人も読めるため使いません(権限 -rw-r--r--)" in result.output
    assert "chmod 600" in result.output and saved_files(tmp_path) == []


@needs_dovecot
def test_the_connection_refuses_every_command_that_could_change_the_mailbox(server, account, tmp_path, demo_returns) -> None:
    mails = demo_mails(demo_returns)[:3]
    deliver_all(server, account, mails)
    before = flags(server, account, server_folder(FOLDER))
    settings_file = write_settings(tmp_path, server, account)
    from pipeline.settings import load_settings

    box = load_settings(settings_file).mailbox
    conn = mailbox._connect(box, "春の返送-2025")
    try:
        assert mailbox._examine(conn, box, "here") > 0
        for attempt in (
            lambda: conn.store("1", "+FLAGS", "(\\Seen)"),
            lambda: conn.uid("STORE", "1", "+FLAGS", "(\\Deleted)"),
            lambda: conn.uid("FETCH", "1", "(BODY[])"),
            lambda: conn.uid("FETCH", "1", "(RFC822)"),
            lambda: conn.uid("COPY", "1", "INBOX"),
            lambda: conn.uid("MOVE", "1", "INBOX"),
            lambda: conn.expunge(),
            lambda: conn.select(server_folder(FOLDER)),
            lambda: conn.delete(server_folder(FOLDER)),
            lambda: conn.append("INBOX", None, None, b"Subject: x\r\n\r\nx"),
        ):
            with pytest.raises(RuntimeError, match="read-only collect refuses"):
                attempt()
        typ, data = conn.uid("FETCH", "1", "(UID BODY.PEEK[])")  # what collect does is still allowed
        assert typ == "OK" and data[0][1] == mails[0][1]
    finally:
        conn.logout()
    assert flags(server, account, server_folder(FOLDER)) == before


@needs_dovecot
def test_password_from_the_os_keyring(server, account, tmp_path, demo_returns) -> None:
    keyring = pytest.importorskip("keyring", reason="the optional keyring package is not installed")
    from keyring.backend import KeyringBackend

    class Memory(KeyringBackend):
        priority = 1  # type: ignore[assignment]
        store: ClassVar[dict[tuple[str, str], str]] = {}

        def set_password(self, service: str, username: str, password: str) -> None:
            self.store[(service, username)] = password

        def get_password(self, service: str, username: str) -> str | None:
            return self.store.get((service, username))

        def delete_password(self, service: str, username: str) -> None:
            self.store.pop((service, username), None)

    previous = keyring.get_keyring()
    keyring.set_keyring(Memory())
    try:
        deliver_all(server, account, demo_mails(demo_returns)[:3])
        settings_file = write_settings(tmp_path, server, account, password_file=None)
        missing = run(settings_file, "collect")
        assert missing.exit_code == 3 and "collect --set-password で保存してください" in missing.output
        stored = run(settings_file, "collect", "--set-password", input="春の返送-2025\n春の返送-2025\n")
        assert stored.exit_code == 0 and f"welfare-plan-pipeline / {account}@localhost" in stored.output
        assert Memory.store == {("welfare-plan-pipeline", f"{account}@localhost"): "春の返送-2025"}
        assert "春の返送" not in settings_file.read_text(encoding="utf-8")
        result = run(settings_file, "collect")
        assert result.exit_code == 0 and len(saved_files(tmp_path)) == 2, result.output
    finally:
        keyring.set_keyring(previous)


def test_collect_without_a_mailbox_says_how_to_set_one_up(tmp_path) -> None:
    settings_file = tmp_path / "pipeline.toml"
    settings_file.write_text('[paths]\ninbox = "inbox"\n', encoding="utf-8")
    result = run(settings_file, "collect")
    assert result.exit_code == 3 and "[mailbox] に host・user・folder を書いてください" in result.output


def test_mailbox_settings_are_checked_like_every_other_key(tmp_path) -> None:
    settings_file = tmp_path / "pipeline.toml"
    settings_file.write_text('[mailbox]\ntls = "ssl"\nport = 99999\nsince = "4月1日"\npasword_file = "x"\n', encoding="utf-8")
    result = run(settings_file, "collect")
    assert result.exit_code == 3
    for expected in ('[mailbox] tls = "ssl"(2 行目): "imaps"、"starttls" のどれかを書いてください',
                     "[mailbox] port = 99999(3 行目): 範囲の外です。0〜65535 の整数で書いてください",
                     '[mailbox] since = "4月1日"(4 行目): 日付を 2025-05-30、2025/05/30、令和7年5月30日 のどれかの形で',
                     "[mailbox] pasword_file = \"x\"(5 行目): 不明な項目です。password_file のまちがいではありませんか"):
        assert expected in result.output, result.output
