"""A real Dovecot IMAP server on loopback for the IMAP connector tests.

`Dovecot(base_dir)` writes its own config, users and maildirs under base_dir and
runs `dovecot -F` as a child process in a session of its own, so that stopping
or killing it takes every Dovecot process with it. Give it a folder from
`folder_outside_pytest()`, not pytest's tmp_path: Dovecot's own users must walk
down to base_dir, and every pytest session that starts on the machine makes
pytest's temp root private again, which locks them out in the middle of a test.

The helper methods play the outside world (a mail client or an MTA): they talk
to the server through a separate IMAPClient connection, never through the code
under test.
"""

from __future__ import annotations

import atexit
import os
import pwd
import quopri
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

DOVECOT_BINARY = Path("/usr/sbin/dovecot")
HOST = "127.0.0.1"
DEFAULT_USERS = {"sales": "secret", "support": "secret2"}
# The mail processes must not run as root, and imap-login refuses to.
MAIL_USER = "nobody"
LOGIN_USER = "dovenull"
# Deadlines, not waits: each ends as soon as the server is ready, and they are
# long because a busy machine (two cores, several test runs) can be very slow.
START_TIMEOUT = 90.0  # until a login really works
LOGIN_TIMEOUT = 60.0  # for a login the server cannot check yet ([UNAVAILABLE])
STOP_TIMEOUT = 10.0  # for a graceful stop, before SIGKILL
GONE_TIMEOUT = 60.0  # for every process to be gone after SIGKILL
SOCKET_TIMEOUT = 30.0
LOG_TAIL_LINES = 30

CONFIG_TEMPLATE = """\
# Written by tests/connectors/dovecot.py: nothing here reads /etc/dovecot.
base_dir = {run_dir}
state_dir = {state_dir}
log_path = {log_file}
info_log_path = {log_file}
instance_name = leadhub-test-{port}
protocols = imap
listen = {host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# Real servers delay failed logins by 2 s; tests of wrong passwords need not wait.
auth_failure_delay = 0
# fsync protects against power loss, which no test simulates; it costs ~10 ms a message.
mail_fsync = never
default_login_user = {login_user}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:{mail_dir}/%u
mail_uid = {mail_uid}
mail_gid = {mail_gid}

namespace inbox {{
  inbox = yes
  separator = /
}}

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users_file}
}}

userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={home_dir}/%u
}}

service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


class DovecotError(RuntimeError):
    """Dovecot did not start or stop; the message carries the log tail."""


class Dovecot:
    """One Dovecot instance whose config, mail and logs all live in base_dir."""

    host = HOST

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.port: int | None = None
        self.users: dict[str, str] = dict(DEFAULT_USERS)
        self._process: subprocess.Popen | None = None

    # -- lifecycle ---------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """Add or change a user. Dovecot rereads the passwd-file when it changes,
        but looks at most once a second: this returns once the login works."""
        self.users[name] = password
        if self.running:
            self._write_users_file()
            self._wait_until_a_login_works(name)

    def start(self) -> None:
        if self.running:
            raise DovecotError("Dovecot is already running")
        self._prepare_folders()
        self._write_users_file()
        if self.port is not None:
            self._start_on(self.port)
            return
        # A free port picked here can be taken by someone else before Dovecot
        # binds it: pick another one rather than fail the test.
        for attempt in range(3):
            try:
                self._start_on(free_port())
                return
            except DovecotError as error:
                if "Address already in use" not in str(error) or attempt == 2:
                    raise

    def stop(self) -> None:
        """Shut down gracefully, then make sure no Dovecot process is left."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        self._kill_process_group()

    def kill(self) -> None:
        """SIGKILL the master and every child at once, like a crash."""
        if self._process is None:
            return
        self._kill_process_group()

    def restart(self) -> None:
        """Stop then start again with the same mail, users and port."""
        self.stop()
        self.start()

    @property
    def pid(self) -> int | None:
        """The master's pid, which is also the process group of every child."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Dovecot:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- the outside world -------------------------------------------------

    @contextmanager
    def connect(self, user: str) -> Iterator[IMAPClient]:
        """A logged-in IMAPClient of the outside world, logged out on exit."""
        client = self.log_in(user)
        try:
            yield client
        finally:
            try:
                client.logout()
            except (OSError, IMAPClient.Error):
                # The server may be gone already: a test killed it.
                client.shutdown()

    def log_in(self, user: str, deadline: float | None = None) -> IMAPClient:
        """A client logged in as `user`. A login Dovecot cannot check yet
        ([UNAVAILABLE]: its auth process is starting, or slow on a busy machine)
        is tried again until the deadline; any other refusal is a LoginError."""
        deadline = deadline or time.monotonic() + LOGIN_TIMEOUT
        while True:
            client = IMAPClient(self.host, port=self.port, ssl=False, timeout=SOCKET_TIMEOUT)
            try:
                client.login(user, self.users[user])
                return client
            except LoginError as error:
                client.shutdown()
                if "UNAVAILABLE" not in str(error).upper() or time.monotonic() > deadline:
                    raise
            except BaseException:
                client.shutdown()
                raise
            time.sleep(0.05)

    def append(self, user: str, folder: str, message: bytes,
               flags: Iterable[str | bytes] = (), date: datetime | None = None) -> int:
        """Deliver one message; returns its UID."""
        with self.connect(user) as client:
            response = client.append(folder, message, flags=tuple(flags), msg_time=date)
        return appended_uids(response)[0]

    def append_many(self, user: str, folder: str, messages: list[bytes]) -> list[int]:
        """Deliver many messages in one MULTIAPPEND; returns their UIDs in order."""
        if not messages:
            return []
        with self.connect(user) as client:
            _status, lines = client.multiappend(folder, messages)
        return appended_uids(lines[-1])

    def create_folder(self, user: str, folder: str) -> None:
        with self.connect(user) as client:
            client.create_folder(folder)

    def delete_folder(self, user: str, folder: str) -> None:
        with self.connect(user) as client:
            client.delete_folder(folder)

    def flags(self, user: str, folder: str, uid: int) -> set[str]:
        """The flags of one message, e.g. {"\\\\Seen"}; empty if it has none."""
        with self.connect(user) as client:
            client.select_folder(folder, readonly=True)
            found = client.get_flags([uid])
        if uid not in found:
            raise KeyError(f"no message with UID {uid} in {folder!r}")
        # \Recent belongs to a session, not to the message.
        return {flag.decode() for flag in found[uid]} - {"\\Recent"}

    def uids(self, user: str, folder: str) -> list[int]:
        with self.connect(user) as client:
            client.select_folder(folder, readonly=True)
            return sorted(client.search("ALL"))

    def uidvalidity(self, user: str, folder: str) -> int:
        with self.connect(user) as client:
            return client.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"]

    def folders(self, user: str) -> list[str]:
        with self.connect(user) as client:
            return [name for _flags, _delimiter, name in client.list_folders()]

    # -- files and processes -----------------------------------------------

    @property
    def config_file(self) -> Path:
        return self.base_dir / "dovecot.conf"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "dovecot.log"

    @property
    def mail_dir(self) -> Path:
        return self.base_dir / "mail"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The end of Dovecot's log and of its own stderr, for error messages."""
        parts = []
        for path in (self.log_file, self._stderr_file):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                if text:
                    parts.append(f"--- {path.name} ---\n" + "\n".join(text))
        return "\n".join(parts) or "(no log written)"

    @property
    def _stderr_file(self) -> Path:
        return self.base_dir / "dovecot.stderr"

    def _prepare_folders(self) -> None:
        mail_user = pwd.getpwnam(MAIL_USER)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        make_traversable(self.base_dir)
        for folder in (self.base_dir / "run", self.base_dir / "state"):
            folder.mkdir(exist_ok=True)
        for folder in (self.mail_dir, self.base_dir / "home"):
            folder.mkdir(exist_ok=True)
            os.chown(folder, mail_user.pw_uid, mail_user.pw_gid)

    def _write_users_file(self) -> None:
        lines = [f"{name}:{{PLAIN}}{password}\n" for name, password in self.users.items()]
        # Written aside and renamed: Dovecot rereads the file when it changes and
        # must never see it half written (a login would fail as a wrong password).
        users_file = self.base_dir / "users"
        draft = users_file.with_name("users.new")
        draft.write_text("".join(lines))
        # The auth process reads it as the dovecot user, not as root.
        draft.chmod(0o644)
        draft.replace(users_file)

    def _write_config(self, port: int) -> None:
        mail_user = pwd.getpwnam(MAIL_USER)
        self.config_file.write_text(CONFIG_TEMPLATE.format(
            run_dir=self.base_dir / "run",
            state_dir=self.base_dir / "state",
            log_file=self.log_file,
            mail_dir=self.mail_dir,
            home_dir=self.base_dir / "home",
            users_file=self.base_dir / "users",
            host=self.host,
            port=port,
            login_user=LOGIN_USER,
            mail_uid=mail_user.pw_uid,
            mail_gid=mail_user.pw_gid,
        ))

    def _start_on(self, port: int) -> None:
        self._write_config(port)
        self.log_file.unlink(missing_ok=True)
        with self._stderr_file.open("wb") as stderr:
            # A session of its own: every child shares the master's process
            # group, so one killpg reaches them all.
            self._process = subprocess.Popen(
                [str(DOVECOT_BINARY), "-F", "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                start_new_session=True,
            )
        self.port = port
        # Fixture teardown normally ends it; this covers a test run that
        # ends some other way (a script, an interrupted session).
        atexit.register(self._kill_process_group)
        try:
            self._wait_until_a_login_works()
        except DovecotError:
            self._kill_process_group()
            raise

    def _wait_until_a_login_works(self, user: str | None = None) -> None:
        """Dovecot greets before its auth process can check a password, and under
        load that can take seconds: a test starts once a real login succeeds.
        A refused password is tried again too (a passwd-file not reread yet)."""
        deadline = time.monotonic() + START_TIMEOUT
        user = user or next(iter(self.users))
        last_answer = "no answer yet"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise DovecotError(
                    f"dovecot exited with code {self._process.returncode} on port {self.port}:\n"
                    + self.log_tail())
            try:
                self.log_in(user, deadline).logout()
                return
            except (OSError, IMAPClient.Error) as error:
                # not listening yet, a login process that hung up while starting,
                # or a password the auth process has not read yet
                last_answer = f"{type(error).__name__}: {error}"
            time.sleep(0.05)
        raise DovecotError(
            f"dovecot did not accept a login on port {self.port} within {START_TIMEOUT} s"
            f" ({last_answer}):\n" + self.log_tail())

    def _kill_process_group(self) -> None:
        atexit.unregister(self._kill_process_group)
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._process.wait()
        wait_until_group_is_gone(self._process.pid)
        # Forget the pid: once reaped it may be reused by an unrelated process.
        self._process = None


@contextmanager
def folder_outside_pytest() -> Iterator[Path]:
    """A fresh folder in the system temp dir for one Dovecot, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="leadhub-dovecot-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def wait_until_group_is_gone(group: int, timeout: float = GONE_TIMEOUT) -> None:
    """Wait until every process of the group has exited (children exit late)."""
    deadline = time.monotonic() + timeout
    while living_group_members(group):
        if time.monotonic() > deadline:
            raise DovecotError(f"dovecot processes of group {group} outlived SIGKILL")
        time.sleep(0.01)


def living_group_members(group: int) -> list[int]:
    """Pids of the group's processes that still run.

    Zombies do not count: once the master is gone, its children are reaped by
    init, whenever init gets round to it.
    """
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after it.
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def make_traversable(folder: Path) -> None:
    """Let the mail and login users walk down to folder (mkdtemp makes 0700)."""
    for path in (folder, *folder.parents):
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            path.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


_APPENDUID = re.compile(rb"\[APPENDUID \d+ ([\d:,]+)\]")


def appended_uids(response: bytes) -> list[int]:
    """The UIDs of an APPENDUID response code (UIDPLUS), ranges expanded."""
    match = _APPENDUID.search(response)
    if match is None:
        raise DovecotError(f"no APPENDUID in the server response: {response!r}")
    uids: list[int] = []
    for part in match.group(1).decode().split(","):
        first, _, last = part.partition(":")
        uids.extend(range(int(first), int(last or first) + 1))
    return uids


# -- test mail ---------------------------------------------------------------

_FIRST_NAMES = ["Анна", "Иван", "Ольга", "Сергей", "Мария", "Дмитрий", "Елена", "Павел"]
_LAST_NAMES = ["Смирнов", "Кузнецов", "Попов", "Волков", "Соколов", "Лебедев", "Морозов"]
_COMPANIES = ["ООО «Ромашка»", "АО «Север»", "ИП Орлов", "ООО «ТехСнаб»", "ЗАО «Вектор»"]
_FIRST_DATE = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=3)))


def make_message(i: int, *, subject: str | None = None, phone: str | None = None,
                 sender: str | None = None, message_id: str | None = None) -> bytes:
    """A small Russian inquiry, different and reproducible for every i.

    Built from a template rather than with EmailMessage, which is about 50
    times slower: heavy tests deliver thousands of these.
    """
    name = _person_name(i)
    phone = phone or f"+7 912 {i % 10_000_000:07d}"
    body = (
        "Здравствуйте!\n\n"
        f"Прошу подготовить коммерческое предложение для {_COMPANIES[i % len(_COMPANIES)]}.\n"
        f"Телефон для связи: {phone}\n\n"
        f"С уважением,\n{name}\n"
    )
    headers = [
        f"From: {_address_header(sender or f'{name} <client{i}@example.ru>')}",
        "To: sales@leadhub.test",
        f"Subject: {_text_header('Subject', subject or f'Заявка на расчёт стоимости №{i}')}",
        f"Date: {format_datetime(_FIRST_DATE + timedelta(minutes=i))}",
        f"Message-ID: {message_id or f'<inquiry-{i}@example.ru>'}",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
    ]
    head = "\r\n".join(headers).encode("ascii")
    # CRLF line ends, as mail arrives from an MTA and as IMAP serves it back.
    text = quopri.encodestring(body.encode("utf-8")).replace(b"\n", b"\r\n")
    return head + b"\r\n\r\n" + text


def _person_name(i: int) -> str:
    first = _FIRST_NAMES[i % len(_FIRST_NAMES)]
    last = _LAST_NAMES[i % len(_LAST_NAMES)]
    return f"{first} {last}а" if first.endswith("а") else f"{first} {last}"


def _address_header(address: str) -> str:
    return formataddr(parseaddr(address), charset="utf-8")


def _text_header(name: str, text: str) -> str:
    if text.isascii():
        return text
    return Header(text, "utf-8", header_name=name).encode(linesep="\r\n")
