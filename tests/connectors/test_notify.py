"""Sending through apprise to a local SMTP server (aiosmtpd) and a local JSON
webhook: what arrives, and what a failure says (never the URL's secrets)."""

from __future__ import annotations

import email
import json
import logging
import socket
import threading
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from connectors.notify import send, service_name, url_problem


class WebhookReceiver:
    """A local HTTP endpoint that keeps every JSON body posted to it; `status`
    is what it answers (500 to play a broken service)."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.status == 200:
                    receiver.posts.append(json.loads(body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/hooks/leadhub"

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class MailReceiver:
    """A local SMTP server (aiosmtpd) on a free port that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    @property
    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=leadhub@example.ru&to=sales@example.ru"

    def subjects(self) -> list[str]:
        return [str(make_header(decode_header(m["Subject"]))) for m in self.messages]

    def __enter__(self) -> MailReceiver:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


@pytest.fixture
def webhook():
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def mailbox():
    with MailReceiver() as receiver:
        yield receiver


def test_a_webhook_channel_receives_title_and_text(webhook):
    result = send(webhook.url, "Новая заявка: Иван", "Иван Петров\n+7 (912) 345-67-89")
    assert result.ok, result.error
    assert [(p["title"], p["message"]) for p in webhook.posts] == [
        ("Новая заявка: Иван", "Иван Петров\n+7 (912) 345-67-89")]


def test_an_email_channel_receives_the_alert(mailbox):
    result = send(mailbox.url, "Новая заявка: Иван", "Иван Петров\n+7 (912) 345-67-89")
    assert result.ok, result.error
    assert mailbox.subjects() == ["Новая заявка: Иван"]
    assert mailbox.messages[0]["To"] == "sales@example.ru"


SECRET = "s3cretPassw0rd"


@pytest.mark.parametrize(
    ("url_of", "says"),
    [
        pytest.param(lambda hook: hook.url.replace("json://", f"json://bot:{SECRET}@"),
                     "", id="service-answers-500"),
        pytest.param(lambda hook: f"json://bot:{SECRET}@127.0.0.1:1/{SECRET}",
                     "Connection error", id="nothing-listening"),
        pytest.param(lambda hook: f"nosuchservice://bot:{SECRET}@example.ru",
                     "nosuchservice://", id="unknown-service"),
    ],
)
def test_a_failed_send_says_why_without_the_secret(webhook, url_of, says):
    webhook.status = 500
    result = send(url_of(webhook), "title", "body")
    assert not result.ok
    assert result.error and says in result.error
    assert SECRET not in result.error


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture
def root_records():
    """Every record that reaches the root logger (where Prefect's handlers
    are), at debug level."""
    root = logging.getLogger()
    handler, level = _Records(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    yield handler.messages
    root.removeHandler(handler)
    root.setLevel(level)
    logging.getLogger("urllib3").setLevel(logging.NOTSET)


def test_no_log_record_shows_the_channel_secret(webhook, root_records):
    webhook.status = 500
    url = webhook.url.replace("json://", f"json://bot:{SECRET}@") + f"/{SECRET}"
    send(url, "title", "body")
    assert not [message for message in root_records if SECRET in message]


@pytest.mark.parametrize(
    ("url", "valid"),
    [
        pytest.param("tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-100123", True,
                     id="telegram"),
        pytest.param("mailtos://user:pass@smtp.yandex.ru?to=sales@example.ru", True,
                     id="smtp"),
        pytest.param("json://127.0.0.1:8080/hook", True, id="webhook"),
        pytest.param("tgram://", False, id="telegram-without-token"),
        pytest.param("telegram-bot:123", False, id="not-a-url"),
    ],
)
def test_url_problem_tells_usable_urls_apart(url, valid):
    assert (url_problem(url) is None) == valid


def test_a_channel_is_named_by_its_scheme_only():
    assert service_name("tgram://123456789:AAHdq/-100123") == "tgram"
