"""The IMAP source against a real Dovecot on loopback."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from email.message import EmailMessage

import pytest

from connectors import imap
from connectors.imap import FolderWatcher, ImapSource
from connectors.ledger import Ledger
from leadhub.errors import FatalError, TransientError
from leadhub.settings import ImapSourceConfig
from tests.store import query
from transforms.mail import parse_email

from .dovecot import make_message

# A deadline for something another thread or the server does: it ends as soon
# as that happens, and is long because a busy machine can be very slow.
WAIT = 120.0


def _account(server, **overrides) -> ImapSourceConfig:
    values = {"type": "imap", "name": "sales", "host": server.host, "port": server.port,
              "tls": "none", "username": "sales", "password": "secret", "folders": ["INBOX"],
              "timeout": 10}
    return ImapSourceConfig.model_validate({**values, **overrides})


def _sync(source: ImapSource, ledger: Ledger) -> list[str]:
    """What the intake flow's collect step does with a source."""
    stored: list[str] = []
    for batch in source.batches(ledger.checkpoint):
        ledger.store_raw_items(batch.items, checkpoint=batch.checkpoint)
        source.acknowledge(batch)
        stored += [item.item_id for item in batch.items]
    return stored


def _item_ids(ledger: Ledger) -> list[str]:
    return [row[0] for row in query(ledger.path, "SELECT item_id FROM raw_items ORDER BY item_id")]


@pytest.fixture
def ledger(tmp_path):
    store = Ledger(tmp_path / "leadhub.db", create=True)
    yield store
    store.close()


def test_initial_sync_then_only_new_messages(dovecot, ledger):
    dovecot.append_many("sales", "INBOX", [make_message(i) for i in range(500)])
    source = ImapSource(_account(dovecot))
    assert len(_sync(source, ledger)) == 500
    validity = dovecot.uidvalidity("sales", "INBOX")
    assert ledger.checkpoint("sales", "INBOX") == f"{validity}:500"

    dovecot.append_many("sales", "INBOX", [make_message(i) for i in range(500, 503)])
    assert _sync(ImapSource(_account(dovecot)), ledger) == [
        f"imap:sales:INBOX:{validity}:{uid}" for uid in (501, 502, 503)]
    assert _sync(ImapSource(_account(dovecot)), ledger) == []


def test_raw_message_is_stored_byte_for_byte(dovecot, ledger):
    message = make_message(7)
    dovecot.append("sales", "INBOX", message)
    _sync(ImapSource(_account(dovecot)), ledger)
    [item] = ledger.pending_items(10)
    assert item.payload.replace(b"\r\n", b"\n") == message.replace(b"\r\n", b"\n")
    assert item.meta["mailbox"] == "sales" and item.meta["folder"] == "INBOX"


def test_leave_policy_reads_with_peek_and_keeps_mail_unread(dovecot, ledger):
    uid = dovecot.append("sales", "INBOX", make_message(1))
    _sync(ImapSource(_account(dovecot)), ledger)
    assert "\\Seen" not in dovecot.flags("sales", "INBOX", uid)


def test_seen_policy_marks_stored_mail_read(dovecot, ledger):
    uids = dovecot.append_many("sales", "INBOX", [make_message(i) for i in range(3)])
    _sync(ImapSource(_account(dovecot, after_processing="seen")), ledger)
    assert all("\\Seen" in dovecot.flags("sales", "INBOX", uid) for uid in uids)


def test_move_policy_moves_stored_mail_and_never_doubles_it(dovecot, ledger):
    dovecot.create_folder("sales", "Processed")
    dovecot.append_many("sales", "INBOX", [make_message(i) for i in range(4)])
    account = _account(dovecot, after_processing="move:Processed")
    assert len(_sync(ImapSource(account), ledger)) == 4
    assert dovecot.uids("sales", "INBOX") == []
    assert len(dovecot.uids("sales", "Processed")) == 4
    dovecot.append("sales", "INBOX", make_message(9))
    assert len(_sync(ImapSource(account), ledger)) == 1
    assert len(_item_ids(ledger)) == 5


def test_move_missed_by_a_crash_is_caught_up_on_the_next_run(dovecot, ledger):
    dovecot.create_folder("sales", "Processed")
    dovecot.append_many("sales", "INBOX", [make_message(i) for i in range(3)])
    account = _account(dovecot, after_processing="move:Processed")
    source = ImapSource(account)
    for batch in source.batches(ledger.checkpoint):
        ledger.store_raw_items(batch.items, checkpoint=batch.checkpoint)  # crash: no acknowledge
    assert len(dovecot.uids("sales", "INBOX")) == 3
    assert _sync(ImapSource(account), ledger) == []
    assert dovecot.uids("sales", "INBOX") == []


def test_move_to_a_missing_folder_is_fatal_before_anything_moves(dovecot, ledger):
    dovecot.append("sales", "INBOX", make_message(1))
    with pytest.raises(FatalError, match="'Archive', which does not exist"):
        _sync(ImapSource(_account(dovecot, after_processing="move:Archive")), ledger)
    assert ledger.checkpoint("sales", "INBOX") is None


def test_uidvalidity_change_reads_the_folder_again(dovecot, ledger):
    dovecot.create_folder("sales", "Leads")
    dovecot.append_many("sales", "Leads", [make_message(i) for i in range(5)])
    account = _account(dovecot, folders=["Leads"])
    _sync(ImapSource(account), ledger)
    old_validity = dovecot.uidvalidity("sales", "Leads")

    dovecot.delete_folder("sales", "Leads")
    dovecot.create_folder("sales", "Leads")
    dovecot.append_many("sales", "Leads", [make_message(i) for i in range(3, 8)])
    new_validity = dovecot.uidvalidity("sales", "Leads")
    assert new_validity != old_validity
    assert len(_sync(ImapSource(account), ledger)) == 5
    assert ledger.checkpoint("sales", "Leads") == f"{new_validity}:5"


def test_server_killed_mid_fetch_then_back_resumes_to_the_same_ledger(dovecot, tmp_path,
                                                                     monkeypatch):
    dovecot.append_many("sales", "INBOX", [make_message(i) for i in range(300)])
    account = _account(dovecot, batch_size=50)
    undisturbed = Ledger(tmp_path / "undisturbed.db", create=True)
    _sync(ImapSource(account), undisturbed)

    # The server comes back once the source has found it down and backs off,
    # however long that takes; enough attempts that a slow start cannot use them up.
    backing_off = threading.Event()
    real_sleep_backoff = imap.sleep_backoff

    def sleep_backoff(*args, **kwargs):
        backing_off.set()
        real_sleep_backoff(*args, **kwargs)

    monkeypatch.setattr(imap, "sleep_backoff", sleep_backoff)
    disturbed = Ledger(tmp_path / "disturbed.db", create=True)
    source = ImapSource(account, attempts=30)
    restarter = threading.Thread(target=lambda: (backing_off.wait(WAIT), dovecot.start()))
    for number, batch in enumerate(source.batches(disturbed.checkpoint), start=1):
        disturbed.store_raw_items(batch.items, checkpoint=batch.checkpoint)
        if number == 2:
            dovecot.kill()
            restarter.start()
    restarter.join()
    assert _item_ids(disturbed) == _item_ids(undisturbed)
    assert disturbed.checkpoint("sales", "INBOX") == undisturbed.checkpoint("sales", "INBOX")
    undisturbed.close()
    disturbed.close()


def test_server_that_stays_down_is_a_transient_error_after_retries(dovecot, ledger):
    account = _account(dovecot)
    dovecot.stop()
    with pytest.raises(TransientError, match="gave up after 2 attempts"):
        _sync(ImapSource(account, attempts=2, backoff_cap=0.2), ledger)


def test_wrong_password_is_fatal_and_leaves_the_checkpoint(dovecot, ledger):
    dovecot.append("sales", "INBOX", make_message(1))
    _sync(ImapSource(_account(dovecot)), ledger)
    before = ledger.checkpoint("sales", "INBOX")
    dovecot.append("sales", "INBOX", make_message(2))
    with pytest.raises(FatalError, match="refused the login of sales; check the password"):
        _sync(ImapSource(_account(dovecot, password="wrong")), ledger)
    assert ledger.checkpoint("sales", "INBOX") == before


def test_a_server_that_cannot_check_logins_yet_is_retried_not_fatal(dovecot, ledger,
                                                                    monkeypatch):
    from imapclient import IMAPClient
    from imapclient.exceptions import LoginError

    real_login = IMAPClient.login
    answers = iter([LoginError("[UNAVAILABLE] Temporary authentication failure.")])

    def login_while_auth_starts(client, username, password):
        for error in answers:
            raise error
        return real_login(client, username, password)

    dovecot.append("sales", "INBOX", make_message(1))
    monkeypatch.setattr(IMAPClient, "login", login_while_auth_starts)
    _sync(ImapSource(_account(dovecot), attempts=3, backoff_cap=0.2), ledger)
    assert ledger.checkpoint("sales", "INBOX") is not None


def test_unknown_folder_is_fatal_and_lists_the_folders(dovecot, ledger):
    with pytest.raises(FatalError, match="cannot open folder 'Leeds'.*folders there: INBOX"):
        _sync(ImapSource(_account(dovecot, folders=["Leeds"])), ledger)


def test_each_folder_has_its_own_checkpoint(dovecot, ledger):
    dovecot.create_folder("sales", "Site")
    dovecot.append_many("sales", "INBOX", [make_message(i) for i in range(2)])
    dovecot.append_many("sales", "Site", [make_message(i) for i in range(10, 13)])
    _sync(ImapSource(_account(dovecot, folders=["INBOX", "Site"])), ledger)
    assert ledger.checkpoint("sales", "INBOX").endswith(":2")
    assert ledger.checkpoint("sales", "Site").endswith(":3")


def test_since_keeps_the_first_run_from_reaching_further_back(dovecot, ledger):
    dovecot.append("sales", "INBOX", make_message(1),
                   date=datetime(2025, 1, 10, tzinfo=UTC))
    dovecot.append("sales", "INBOX", make_message(2),
                   date=datetime(2026, 3, 10, tzinfo=UTC))
    stored = _sync(ImapSource(_account(dovecot, since=date(2026, 1, 1))), ledger)
    assert [item_id.rsplit(":", 1)[1] for item_id in stored] == ["2"]


def test_oversized_message_keeps_headers_and_text_but_not_attachments(dovecot, ledger,
                                                                       mail_rules):
    message = EmailMessage()
    message["From"] = "Иван Петров <ivan@mail.ru>"
    message["Subject"] = "Чертежи"
    message["Message-ID"] = "<big@mail.ru>"
    message.set_content("Смета во вложении. Телефон: 8 912 345-67-89")
    message.add_attachment(b"%PDF" + b"x" * 300_000, maintype="application", subtype="pdf",
                           filename="drawings.pdf")
    dovecot.append("sales", "INBOX", bytes(message))
    _sync(ImapSource(_account(dovecot, max_message_size=65_536)), ledger)
    [item] = ledger.pending_items(10)
    assert len(item.payload) < 10_000
    assert b"drawings.pdf" not in item.payload
    assert "attachments not stored" in item.meta["truncated"]
    lead = parse_email(item.payload, mail_rules)
    assert (lead.phones, lead.subject) == (["+79123456789"], "Чертежи")


def test_idle_watcher_announces_new_mail_within_seconds(dovecot, idle_entered):
    announced = threading.Event()
    stop = threading.Event()
    watcher = FolderWatcher(_account(dovecot), "INBOX", lambda *_: announced.set(), stop)
    watcher.start()
    try:
        assert idle_entered.wait(WAIT)
        dovecot.append("sales", "INBOX", make_message(1))
        assert announced.wait(WAIT)
    finally:
        stop.set()
        watcher.join(WAIT)
    assert not watcher.is_alive()


def test_idle_watcher_reconnects_after_the_server_restarts(dovecot, idle_entered):
    announced = threading.Event()
    stop = threading.Event()
    watcher = FolderWatcher(_account(dovecot), "INBOX", lambda *_: announced.set(), stop)
    watcher.start()
    try:
        assert idle_entered.wait(WAIT)
        idle_entered.clear()
        dovecot.restart()
        # back after its backoff, it announces once to catch up on the gap...
        assert announced.wait(WAIT)
        announced.clear()
        assert idle_entered.wait(WAIT)
        # ...and then hears about new mail as before
        dovecot.append("sales", "INBOX", make_message(2))
        assert announced.wait(WAIT)
    finally:
        stop.set()
        watcher.join(WAIT)
