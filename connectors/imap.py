"""The IMAP source: every watched folder of a mailbox, fetched incrementally.

(mailbox, UIDVALIDITY, UID) names a message for good. A folder's checkpoint
is `UIDVALIDITY:last UID`, stored by the flow in the same transaction as the
messages of the batch. A changed UIDVALIDITY voids it: the folder is read
again and messages already known are recognised by their Message-ID when they
are processed. Messages are fetched with BODY.PEEK[], which never marks them
read; the account's `after_processing` policy says what happens to them once
they are stored. A dropped connection is re-opened with backoff and the
folder resumes from its stored checkpoint.
"""

from __future__ import annotations

import logging
import select
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy as email_policy
from email.parser import BytesParser

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from connectors import CheckpointReader
from connectors.retry import backoff_delays, sleep_backoff
from leadhub.errors import FatalError, TransientError
from leadhub.i18n import _
from leadhub.settings import ImapSourceConfig
from transforms.records import RawItem

log = logging.getLogger("leadhub.imap")

# Errors after which a new connection may well succeed. Certificate and login
# problems are not among them: retrying cannot fix those.
TRANSIENT = (IMAPClientAbortError, OSError, EOFError)
_TRUNCATED_BOUNDARY = "leadhub-text-parts-only"


@dataclass
class MailBatch:
    """Messages of one folder, and the checkpoint that moves past them."""

    items: list[RawItem]
    checkpoint: tuple[str, str, str]
    folder: str
    uids: list[int] = field(default_factory=list)


def connect(config: ImapSourceConfig) -> IMAPClient:
    """A logged-in connection, or FatalError saying what to fix."""
    context = ssl.create_default_context()
    try:
        client = IMAPClient(
            config.host,
            port=config.port,
            ssl=config.tls == "implicit",
            ssl_context=context if config.tls == "implicit" else None,
            timeout=config.timeout,
        )
        if config.tls == "starttls":
            client.starttls(context)
        client.normalise_times = False
        if config.oauth2_token is not None:
            client.oauth2_login(config.username, config.oauth2_token.get_secret_value())
        else:
            client.login(config.username, config.password.get_secret_value())
        # Cached now: SELECT flushes the list the server sent with LOGIN, and
        # the first capability check would cost one more round trip.
        client.capabilities()
    except LoginError as error:
        if "UNAVAILABLE" in str(error).upper():
            # RFC 5530: the server cannot check logins right now (Dovecot says so
            # while its auth service starts): retried like a dropped connection.
            raise ConnectionError(f"{config.host} cannot check logins right now") from None
        raise FatalError(_(
            "mailbox {mailbox}: {host} refused the login of {user}; check the password"
            " (Gmail, Yandex and Mail.ru need an app password) or the token").format(
                mailbox=repr(config.name), host=config.host, user=config.username)) from None
    except ssl.SSLError as error:
        raise FatalError(
            f"mailbox {config.name!r}: TLS with {config.host}:{config.port} failed"
            f" ({error.reason or error}); check tls: implicit goes with port 993,"
            " starttls with port 143"
        ) from None
    return client


def _checkpoint_uid(stored: str | None, uidvalidity: int) -> int:
    """The last stored UID, or 0 when there is none or UIDVALIDITY changed."""
    if not stored:
        return 0
    validity, _, uid = stored.partition(":")
    return int(uid) if validity == str(uidvalidity) else 0


class ImapSource:
    """One mailbox account. `batches` yields; the caller stores each batch and
    then calls `acknowledge` so the after-processing policy is applied."""

    def __init__(self, config: ImapSourceConfig, attempts: int = 8, backoff_cap: float = 10.0):
        self.config = config
        self.name = config.name
        self.attempts = attempts
        self.backoff_cap = backoff_cap
        self.last_message_at: dict[str, datetime] = {}
        self.failed_folders: dict[str, str] = {}
        self._client: IMAPClient | None = None

    def summary(self) -> dict[str, object]:
        """The newest message seen in each folder by the last pass."""
        return {"last_message_at": dict(self.last_message_at)}

    def scopes(self) -> list[str]:
        return list(self.config.folders)

    def batches(self, checkpoint_of: CheckpointReader) -> Iterator[MailBatch]:
        try:
            for folder in self.config.folders:
                yield from self._folder_with_retries(folder, checkpoint_of)
        finally:
            self.close()

    def acknowledge(self, batch: MailBatch) -> None:
        """Apply the after-processing policy to messages now safe in the ledger."""
        if self.config.after_processing == "leave" or not batch.uids:
            return
        try:
            self._apply_policy(self._client, batch.uids)
        except (*TRANSIENT, IMAPClientError) as error:
            # Stored is what matters; the next run's catch-up applies it again.
            log.warning("mailbox %s/%s: %s not applied yet: %s", self.name, batch.folder,
                        self.config.after_processing, error)

    def check(self) -> list[str]:
        """What a run would find, changing nothing: the login, every folder
        opened read-only with its message count, the folder mail moves to.
        Raises FatalError (or a connection error) for what would stop a run."""
        client = connect(self.config)
        try:
            found = [f"login of {self.config.username} at {self.config.host} accepted"]
            for folder in self.config.folders:
                try:
                    info = client.select_folder(folder, readonly=True)
                except IMAPClientError as error:
                    raise FatalError(
                        f"mailbox {self.name!r}: cannot open folder {folder!r} ({error});"
                        f" folders there: {', '.join(self._folder_names(client))}") from None
                found.append(f"folder {folder}: {int(info.get(b'EXISTS', 0))} message(s)")
            target = self._move_target()
            if target and not client.folder_exists(target):
                raise FatalError(f"mailbox {self.name!r}: after_processing moves mail to"
                                 f" {target!r}, which does not exist; create it or change"
                                 " after_processing")
            return found
        finally:
            try:
                client.logout()
            except (*TRANSIENT, IMAPClientError):
                pass

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.logout()
            except (*TRANSIENT, IMAPClientError):
                pass
            self._client = None

    # --- one folder ------------------------------------------------------------

    def _folder_with_retries(
        self, folder: str, checkpoint_of: CheckpointReader
    ) -> Iterator[MailBatch]:
        delays = backoff_delays(self.attempts, base=0.5, cap=self.backoff_cap)
        while True:
            try:
                yield from self._new_messages(folder, checkpoint_of)
                return
            except TRANSIENT as error:
                self._client = None  # the socket is gone; a new login follows
                delay = next(delays, None)
                if delay is None:
                    raise TransientError(
                        f"mailbox {self.name!r}/{folder}: {error or type(error).__name__};"
                        f" gave up after {self.attempts} attempts"
                    ) from None
                log.warning("mailbox %s/%s: %s; reconnecting in %.1f s", self.name, folder,
                            error or type(error).__name__, delay)
                sleep_backoff(delay)

    def _new_messages(self, folder: str, checkpoint_of: CheckpointReader) -> Iterator[MailBatch]:
        client = self._connection()
        uidvalidity = self._select(client, folder)
        stored = checkpoint_of(self.name, folder)
        last_uid = _checkpoint_uid(stored, uidvalidity)
        if stored and last_uid == 0:
            log.warning("mailbox %s/%s: UIDVALIDITY changed; reading the folder again",
                        self.name, folder)
        if last_uid and self.config.after_processing != "leave":
            self._catch_up_policy(client, last_uid)
        criteria: list = ["UID", f"{last_uid + 1}:*"]
        if last_uid == 0 and self.config.since:
            criteria = ["SINCE", self.config.since, *criteria]
        # `UID n:*` returns the highest message even when n is past it.
        uids = sorted(uid for uid in client.search(criteria) if uid > last_uid)
        if not uids and stored != f"{uidvalidity}:{last_uid}" and last_uid == 0:
            yield MailBatch([], (self.name, folder, f"{uidvalidity}:0"), folder)
        for start in range(0, len(uids), self.config.batch_size):
            chunk = uids[start : start + self.config.batch_size]
            items = self._fetch(client, folder, uidvalidity, chunk)
            yield MailBatch(items, (self.name, folder, f"{uidvalidity}:{chunk[-1]}"), folder,
                            chunk)

    def _connection(self) -> IMAPClient:
        if self._client is None:
            self._client = connect(self.config)
        return self._client

    def _select(self, client: IMAPClient, folder: str) -> int:
        readonly = self.config.after_processing == "leave"
        try:
            info = client.select_folder(folder, readonly=readonly)
        except IMAPClientAbortError:
            raise
        except IMAPClientError as error:
            raise FatalError(
                f"mailbox {self.name!r}: cannot open folder {folder!r} ({error});"
                f" folders there: {', '.join(self._folder_names(client))}"
            ) from None
        target = self._move_target()
        if target and not client.folder_exists(target):
            raise FatalError(
                f"mailbox {self.name!r}: after_processing moves mail to {target!r},"
                " which does not exist; create it or change after_processing"
            )
        return int(info[b"UIDVALIDITY"])

    def _folder_names(self, client: IMAPClient) -> list[str]:
        try:
            return [name for _, _, name in client.list_folders()]
        except IMAPClientError:
            return []

    # --- fetching ----------------------------------------------------------------

    def _fetch(
        self, client: IMAPClient, folder: str, uidvalidity: int, uids: list[int]
    ) -> list[RawItem]:
        gmail = client.has_capability("X-GM-EXT-1")
        wanted = ["RFC822.SIZE", "INTERNALDATE"] + (["X-GM-MSGID"] if gmail else [])
        envelope = client.fetch(uids, wanted)
        limit = self.config.max_message_size
        small = [uid for uid in uids if uid in envelope
                 and envelope[uid][b"RFC822.SIZE"] <= limit]
        bodies = client.fetch(small, ["BODY.PEEK[]"]) if small else {}
        items = []
        for uid in uids:
            if uid not in envelope:
                continue  # expunged between SEARCH and FETCH
            data = envelope[uid]
            received = _aware(data.get(b"INTERNALDATE"))
            meta = {"mailbox": self.name, "folder": folder, "uid": str(uid),
                    "uidvalidity": str(uidvalidity)}
            if uid in bodies:
                payload = bodies[uid][b"BODY[]"]
            else:
                payload = self._text_parts_only(client, uid)
                meta["truncated"] = f"over {limit} bytes: attachments not stored"
            item_id = f"imap:{self.name}:{folder}:{uidvalidity}:{uid}"
            if gmail:
                # Gmail shows one message under every label: one id for all.
                item_id = f"imap:{self.name}:gmail:{data[b'X-GM-MSGID']}"
            items.append(RawItem(item_id=item_id, source=self.name, kind="email",
                                 payload=payload, received_at=received, meta=meta))
            if received > self.last_message_at.get(folder, received.min.replace(tzinfo=UTC)):
                self.last_message_at[folder] = received
        return items

    def _text_parts_only(self, client: IMAPClient, uid: int) -> bytes:
        """Headers and text parts of an oversized message, without attachments."""
        data = client.fetch([uid], ["BODYSTRUCTURE", "BODY.PEEK[HEADER]"])[uid]
        header = data[b"BODY[HEADER]"]
        structure = data[b"BODYSTRUCTURE"]
        if not structure.is_multipart:
            limit = self.config.max_message_size
            text = client.fetch([uid], [f"BODY.PEEK[TEXT]<0.{limit}>"])[uid]
            return header + next(v for k, v in text.items() if k.startswith(b"BODY[TEXT]"))
        sections = list(_text_sections(structure, self.config.max_message_size))
        parts = client.fetch([uid], [f"BODY.PEEK[{s}.MIME]" for s in sections]
                             + [f"BODY.PEEK[{s}]" for s in sections])[uid] if sections else {}
        head = BytesParser(policy=email_policy.compat32).parsebytes(header, headersonly=True)
        del head["Content-Type"]
        del head["Content-Transfer-Encoding"]
        head["Content-Type"] = f'multipart/mixed; boundary="{_TRUNCATED_BOUNDARY}"'
        out = [head.as_bytes().rstrip(b"\r\n") + b"\r\n\r\n"]
        for section in sections:
            out += [f"--{_TRUNCATED_BOUNDARY}\r\n".encode(),
                    parts[f"BODY[{section}.MIME]".encode()],
                    parts[f"BODY[{section}]".encode()], b"\r\n"]
        out.append(f"--{_TRUNCATED_BOUNDARY}--\r\n".encode())
        return b"".join(out)

    # --- after processing ----------------------------------------------------------

    def _move_target(self) -> str | None:
        policy = self.config.after_processing
        return policy.partition(":")[2] if policy.startswith("move:") else None

    def _apply_policy(self, client: IMAPClient, uids: list[int]) -> None:
        policy, _, argument = self.config.after_processing.partition(":")
        if policy == "seen":
            client.add_flags(uids, [b"\\Seen"], silent=True)
        elif policy == "label":
            client.add_gmail_labels(uids, [argument], silent=True)
        elif policy == "move":
            if client.has_capability("MOVE"):
                client.move(uids, argument)
            else:
                client.copy(uids, argument)
                client.delete_messages(uids, silent=True)
                if client.has_capability("UIDPLUS"):
                    client.uid_expunge(uids)
                else:
                    client.expunge()

    def _catch_up_policy(self, client: IMAPClient, last_uid: int) -> None:
        """Stored messages the policy missed (a crash between store and move)."""
        policy = self.config.after_processing
        if policy.startswith("move:"):
            pending = client.search(["UID", f"1:{last_uid}"])
        elif policy == "seen":
            pending = client.search(["UNSEEN", "UID", f"1:{last_uid}"])
        else:
            return
        pending = [uid for uid in pending if uid <= last_uid]
        if pending:
            self._apply_policy(client, pending)


def _text_sections(structure, limit: int, prefix: str = "") -> Iterator[str]:
    """IMAP section numbers of the text/plain and text/html parts within size."""
    children = structure[0]
    for index, part in enumerate(children, start=1):
        section = f"{prefix}{index}"
        if part.is_multipart:
            yield from _text_sections(part, limit, f"{section}.")
        elif (part[0] or b"").lower() == b"text" and (part[1] or b"").lower() in (
            b"plain", b"html"
        ) and int(part[6] or 0) <= limit:
            yield section


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class FolderWatcher(threading.Thread):
    """Keeps an IDLE connection on one folder and calls `on_new_mail` when
    the server announces new messages. IDLE is re-issued every `renew_after`
    seconds (servers drop idlers after 30 minutes) and the connection is
    re-opened with backoff whenever it breaks; it stops when `stop` is set."""

    def __init__(
        self,
        config: ImapSourceConfig,
        folder: str,
        on_new_mail: Callable[[str, str], None],
        stop: threading.Event,
        renew_after: float = 600.0,
    ):
        super().__init__(name=f"idle-{config.name}-{folder}", daemon=True)
        self.config = config
        self.folder = folder
        self.on_new_mail = on_new_mail
        self.stop = stop
        self.renew_after = renew_after
        self.error = ""

    def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            try:
                self._watch(reconnected=failures > 0)
                failures = 0
            except FatalError as error:
                self.error = str(error)
                log.error("%s", error)
                return
            except (*TRANSIENT, IMAPClientError) as error:
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6))
                log.warning("mailbox %s/%s: IDLE connection lost (%s); again in %.0f s",
                            self.config.name, self.folder, error or type(error).__name__, delay)
                sleep_backoff(delay, stop=self.stop.is_set)

    def _watch(self, reconnected: bool) -> None:
        client = connect(self.config)
        try:
            client.select_folder(self.folder, readonly=True)
            if reconnected:
                # Mail that came while the connection was down is no news to
                # a fresh IDLE: one run catches it up.
                self.on_new_mail(self.config.name, self.folder)
            if not client.has_capability("IDLE"):
                self.error = "the server does not offer IDLE; polling on the schedule only"
                log.warning("mailbox %s: %s", self.config.name, self.error)
                self.stop.wait()
                return
            while not self.stop.is_set():
                if self._idle_once(client):
                    self.on_new_mail(self.config.name, self.folder)
        finally:
            try:
                client.logout()
            except (*TRANSIENT, IMAPClientError):
                pass

    def _idle_once(self, client: IMAPClient) -> bool:
        """One IDLE round: True when new mail was announced."""
        client.idle()
        started = time.monotonic()
        announced = False
        try:
            while not self.stop.is_set() and time.monotonic() - started < self.renew_after:
                if not _readable(client, timeout=1.0):
                    continue
                responses = client.idle_check(timeout=0)
                if not responses:
                    # imapclient's idle_check swallows EOF: a socket that is
                    # readable but yields no line was closed by the server.
                    raise ConnectionResetError("the server closed the IDLE connection")
                if any(b"EXISTS" in response for response in responses):
                    announced = True
                    break
        finally:
            client.idle_done()
        return announced


def _readable(client: IMAPClient, timeout: float) -> bool:
    sock = client.socket()
    if getattr(sock, "pending", lambda: 0)():
        return True  # TLS data already decrypted and waiting
    return bool(select.select([sock], [], [], timeout)[0])
