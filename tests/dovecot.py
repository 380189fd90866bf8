"""A real Dovecot IMAP server for the collect tests: unprivileged, on loopback, thrown away after.

`start_dovecot()` writes a throw-away configuration (passwd-file users, Maildir homes, a CA
and a server certificate for "localhost" made with openssl), starts `dovecot -F` and returns once
its master has logged that it is listening (read from its log on stderr, no sleeping). Run as
root (a CI container), the server is started as `nobody`, since Dovecot's login processes refuse
to run as root. `why_no_dovecot()` says why the tests must be skipped, or None.

`deliver` puts a message into a user's folder with IMAP APPEND (the server files it in the user's
Maildir, with the flags and arrival time given); `flags` reads every message's flags back.
`DroppingProxy` relays one TCP connection to the server and cuts it after a number of bytes from
the server, which is a connection dropped mid-fetch as the client sees it.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import queue
import select
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
PASSWORD = "春の返送-2025"  # non-ASCII on purpose: sent as UTF-8 with AUTHENTICATE PLAIN
USERS = tuple(f"kikaku{n:02d}" for n in range(1, 31))


def why_no_dovecot() -> str | None:
    if not Path(DOVECOT).is_file():
        return "Dovecot is not installed (Debian: apt-get install dovecot-imapd; .ci/run installs it)"
    if shutil.which("openssl") is None:
        return "openssl is not installed (needed to make the test server's certificates)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=120)


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA: (cert.pem, key.pem)."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key.name, "-out", cert.name, "-days", "3",
             "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    return cert, key


def make_server_cert(folder: Path, ca: tuple[Path, Path], host: str = "localhost") -> tuple[Path, Path]:
    """A server certificate for `host` only (not for 127.0.0.1), signed by `ca`."""
    cert, key, csr, ext = folder / "server.pem", folder / "server.key", folder / "server.csr", folder / "server.ext"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key.name, "-out", csr.name, "-subj", f"/CN={host}", cwd=folder)
    ext.write_text(f"subjectAltName=DNS:{host}\nextendedKeyUsage=serverAuth\n", encoding="ascii")
    _openssl("x509", "-req", "-in", csr.name, "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
             "-out", cert.name, "-days", "3", "-extfile", ext.name, cwd=folder)
    return cert, key


@dataclass
class Dovecot:
    root: Path
    imap_port: int
    imaps_port: int
    ca_file: Path
    process: subprocess.Popen[bytes]
    log: queue.Queue[str]
    lines: list[str]

    def client(self, user: str) -> imaplib.IMAP4_SSL:
        """A normal (read-write) session, as a mail client or the mail system would have."""
        conn = imaplib.IMAP4_SSL("localhost", self.imaps_port, ssl_context=ssl.create_default_context(cafile=str(self.ca_file)))
        conn.authenticate("PLAIN", lambda _: f"\0{user}\0{PASSWORD}".encode())
        return conn

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.root)


def start_dovecot() -> Dovecot:
    """Start a throw-away Dovecot; raises RuntimeError with its log if it does not come up."""
    as_root = os.geteuid() == 0
    account = pwd.getpwnam("nobody") if as_root else pwd.getpwuid(os.getuid())
    root = Path(tempfile.mkdtemp(prefix="dovecot-test-", dir="/tmp" if as_root else None))
    os.chmod(root, 0o755)
    ca = make_ca(root / "ca", "city-test-ca")
    cert, key = make_server_cert(root / "ca", ca)
    (root / "passwd").write_text("".join(f"{u}:{{PLAIN}}{PASSWORD}::::::\n" for u in USERS), encoding="utf-8")
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir()
    imap_port, imaps_port = free_port(), free_port()
    group = pwd.getpwuid(account.pw_uid).pw_gid
    import grp

    group_name = grp.getgrgid(group).gr_name
    (root / "dovecot.conf").write_text(f"""
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = /dev/stderr
info_log_path = /dev/stderr
default_internal_user = {account.pw_name}
default_internal_group = {group_name}
default_login_user = {account.pw_name}
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={account.pw_uid} gid={group} home={root}/mail/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
""", encoding="utf-8")
    if as_root:
        for path in [root, *root.rglob("*")]:
            os.chown(path, account.pw_uid, group)

    def drop() -> None:  # pragma: no cover - runs in the child
        if as_root:
            os.setgroups([])
            os.setgid(group)
            os.setuid(account.pw_uid)

    process = subprocess.Popen([DOVECOT, "-F", "-c", str(root / "dovecot.conf")], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=drop)
    log: queue.Queue[str] = queue.Queue()
    lines: list[str] = []

    def pump() -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            text = raw.decode("utf-8", "replace").rstrip()
            lines.append(text)
            log.put(text)
        log.put("")  # end of the log: the server exited

    threading.Thread(target=pump, daemon=True).start()
    server = Dovecot(root, imap_port, imaps_port, ca[0], process, log, lines)
    # The master logs "starting up" once its listeners are bound; any error line before it, or the
    # end of its log, means it will not serve. Each line is observed progress.
    while True:
        try:
            line = log.get(timeout=120)
        except queue.Empty:
            server.stop()
            raise RuntimeError("dovecot wrote nothing for 120 s:\n" + "\n".join(lines)) from None
        if "starting up" in line:
            break
        if not line or "Fatal" in line or "Error" in line:
            server.stop()
            raise RuntimeError("dovecot did not start:\n" + "\n".join(lines))
    return server


def deliver(server: Dovecot, user: str, folder: str, message: bytes, received: datetime, flags: str = "") -> None:
    """The mail system files `message` into the user's folder (Maildir) as if it arrived at `received`."""
    conn = server.client(user)
    try:
        conn.create(folder)  # NO when it exists already
        typ, data = conn.append(folder, f"({flags})" if flags else None, imaplib.Time2Internaldate(received), message)
        assert typ == "OK", data
    finally:
        conn.logout()


def flags(server: Dovecot, user: str, folder: str) -> dict[int, tuple[bytes, ...]]:
    """UID → flags of every message of the folder (read with EXAMINE, so reading changes nothing)."""
    conn = server.client(user)
    try:
        typ, _ = conn.select(folder, readonly=True)
        assert typ == "OK"
        typ, data = conn.uid("FETCH", "1:*", "(UID FLAGS)")
        out: dict[int, tuple[bytes, ...]] = {}
        for line in data:
            if isinstance(line, bytes) and b"UID" in line:
                head, _, rest = line.partition(b"FLAGS (")
                uid = int(head.split(b"UID ")[1].split()[0]) if b"UID " in head else int(rest.split(b"UID ")[1].split(b")")[0])
                out[uid] = tuple(sorted(rest.split(b")")[0].split()))
        return out
    finally:
        conn.logout()


class DroppingProxy:
    """Relays connections to `port`; the connection is cut once `cut_after` bytes came from the
    server (None: never). Counts the connections it served."""

    def __init__(self, port: int, cut_after: int | None) -> None:
        self.port, self.cut_after = port, cut_after
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listen_port = int(self.listener.getsockname()[1])
        self.cuts = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.port))
                threading.Thread(target=self._relay, args=(client, upstream), daemon=True).start()

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        sent = 0
        with client, upstream:
            while True:
                ready, _, _ = select.select([client, upstream], [], [], 120)
                if not ready:
                    return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is upstream:
                        if self.cut_after is not None and sent + len(data) > self.cut_after:
                            client.sendall(data[: self.cut_after - sent])
                            self.cuts += 1
                            client.shutdown(socket.SHUT_RDWR)
                            return
                        sent += len(data)
                        client.sendall(data)
                    else:
                        upstream.sendall(data)

    def close(self) -> None:
        self.listener.close()
