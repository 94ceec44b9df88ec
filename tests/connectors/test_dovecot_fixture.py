"""The Dovecot fixture itself: a real IMAP server the IMAP connector tests can trust."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from .dovecot import Dovecot, DovecotError, appended_uids, living_group_members, make_message


def _client(dovecot: Dovecot) -> IMAPClient:
    return IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=10)


def test_listens_on_loopback_and_offers_what_the_connector_needs(dovecot):
    assert dovecot.host == "127.0.0.1"
    client = _client(dovecot)
    try:
        client.login("sales", "secret")
        capabilities = set(client.capabilities())
    finally:
        client.logout()
    assert {b"IDLE", b"MOVE", b"UIDPLUS", b"CONDSTORE"} <= capabilities


def test_wrong_password_is_a_login_error(dovecot):
    client = _client(dovecot)
    try:
        with pytest.raises(LoginError):
            client.login("sales", "not-the-password")
    finally:
        client.shutdown()


def test_users_have_separate_mailboxes(dovecot):
    dovecot.append("sales", "INBOX", make_message(1))
    assert dovecot.uids("sales", "INBOX") == [1]
    assert dovecot.uids("support", "INBOX") == []


def test_a_user_added_after_start_can_log_in(dovecot):
    dovecot.add_user("office", "p4ss")
    assert dovecot.folders("office") == ["INBOX"]


def test_appended_messages_get_growing_uids_and_keep_their_flags(dovecot):
    first = dovecot.append("sales", "INBOX", make_message(0), flags=[r"\Seen"],
                           date=datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    rest = dovecot.append_many("sales", "INBOX", [make_message(i) for i in range(1, 5)])
    assert [first, *rest] == [1, 2, 3, 4, 5]
    assert dovecot.uids("sales", "INBOX") == [1, 2, 3, 4, 5]
    assert dovecot.flags("sales", "INBOX", first) == {r"\Seen"}
    assert dovecot.flags("sales", "INBOX", rest[0]) == set()


def test_messages_come_back_byte_for_byte_and_unread(dovecot):
    message = make_message(7)
    uid = dovecot.append("sales", "INBOX", message)
    client = _client(dovecot)
    try:
        client.login("sales", "secret")
        client.select_folder("INBOX")
        body = client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
    finally:
        client.logout()
    assert body == message
    assert dovecot.flags("sales", "INBOX", uid) == set()


def test_folders_can_be_created_nested_and_deleted(dovecot):
    dovecot.create_folder("sales", "Leads")
    dovecot.create_folder("sales", "Leads/2026")
    dovecot.create_folder("sales", "Входящие заявки")
    assert sorted(dovecot.folders("sales")) == sorted(
        ["INBOX", "Leads", "Leads/2026", "Входящие заявки"])
    dovecot.delete_folder("sales", "Leads/2026")
    assert "Leads/2026" not in dovecot.folders("sales")


def test_uidvalidity_changes_when_a_folder_is_deleted_and_recreated(dovecot):
    dovecot.create_folder("sales", "Leads")
    dovecot.append("sales", "Leads", make_message(1))
    before = dovecot.uidvalidity("sales", "Leads")
    dovecot.delete_folder("sales", "Leads")
    dovecot.create_folder("sales", "Leads")
    assert dovecot.uidvalidity("sales", "Leads") != before
    assert dovecot.uids("sales", "Leads") == []


def test_restart_keeps_mail_uidvalidity_and_port(dovecot):
    dovecot.append_many("sales", "INBOX", [make_message(i) for i in range(3)])
    port, uidvalidity = dovecot.port, dovecot.uidvalidity("sales", "INBOX")
    dovecot.restart()
    assert dovecot.port == port
    assert dovecot.uids("sales", "INBOX") == [1, 2, 3]
    assert dovecot.uidvalidity("sales", "INBOX") == uidvalidity


def test_kill_drops_connections_and_a_new_start_serves_the_same_mail(dovecot):
    dovecot.append("sales", "INBOX", make_message(1))
    client = _client(dovecot)
    client.login("sales", "secret")
    client.select_folder("INBOX")
    dovecot.kill()
    assert not dovecot.running
    with pytest.raises((OSError, IMAPClient.AbortError)):
        client.noop()
    client.shutdown()
    dovecot.start()
    assert dovecot.uids("sales", "INBOX") == [1]
    assert dovecot.append("sales", "INBOX", make_message(2)) == 2


def test_stop_leaves_no_process_behind(dovecot_dir):
    server = Dovecot(dovecot_dir)
    server.start()
    with server.connect("sales") as client:
        client.select_folder("INBOX")
        group = server.pid
        # The master, its helpers (log, config, auth...) and this session's imap.
        assert len(living_group_members(group)) >= 3
        server.stop()
    assert living_group_members(group) == []


def test_a_failed_start_reports_the_log(dovecot_dir, monkeypatch):
    server = Dovecot(dovecot_dir)
    monkeypatch.setattr(server, "_write_config",
                        lambda port: server.config_file.write_text("no_such_setting = 1\n"))
    with pytest.raises(DovecotError, match="no_such_setting"):
        server.start()
    assert not server.running


def test_the_sample_inquiry_is_a_valid_russian_mail():
    parsed = email.message_from_bytes(make_message(42), policy=email.policy.default)
    assert parsed["Message-ID"] == "<inquiry-42@example.ru>"
    assert "@example.ru" in parsed["From"]
    body = parsed.get_content()
    assert "+7 912 0000042" in body
    assert make_message(42) == make_message(42)
    assert b"\n" not in make_message(42).replace(b"\r\n", b"")
    custom = email.message_from_bytes(
        make_message(1, subject="Счёт", phone="+7 999 123-45-67", sender="Иван Петров <ivan@b.ru>",
                     message_id="<x@y>"), policy=email.policy.default)
    assert (custom["Subject"], custom["From"], custom["Message-ID"]) == (
        "Счёт", "Иван Петров <ivan@b.ru>", "<x@y>")
    assert "+7 999 123-45-67" in custom.get_content()


def test_appenduid_ranges_are_expanded():
    assert appended_uids(b"[APPENDUID 17 3:5,9] Append completed.") == [3, 4, 5, 9]
    assert appended_uids(b"[APPENDUID 1 12] done") == [12]


def test_module_fixture_serves_many_messages(dovecot_module):
    dovecot_module.create_folder("support", "Bulk")
    uids = dovecot_module.append_many("support", "Bulk", [make_message(i) for i in range(500)])
    assert uids == list(range(1, 501))
    assert dovecot_module.uids("support", "Bulk") == uids
