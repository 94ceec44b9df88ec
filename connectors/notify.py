"""Send one message to one notification channel: an apprise URL (Telegram,
SMTP email, Slack, Teams, a JSON webhook...).

Channel URLs carry tokens and passwords, so nothing here logs a URL: a
channel is named by its scheme (`tgram`, `mailtos`), apprise's own log lines
are kept from the root logger, and an error text has the URL's pieces taken
out. One attempt per call: retries across runs are the alerts flow's job.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

_sending = threading.local()


class _SilentWhileSending(logging.Filter):
    """Drops the HTTP library's records while this thread sends: they show
    request paths, and some services (Telegram) put the token in the path."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_sending, "active", False)


# At debug level apprise logs request URLs, which hold bot tokens; its warnings
# are captured per send below instead.
logging.getLogger("apprise").propagate = False
for _name in ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry"):
    logging.getLogger(_name).addFilter(_SilentWhileSending())

# Pieces of a URL shorter than this (a port, "to", "json") are no secret.
_SECRET_MIN_CHARS = 6


@dataclass(frozen=True)
class SendResult:
    ok: bool
    error: str = ""


def service_name(url: str) -> str:
    """What a channel may be called in logs: the URL's scheme, never more."""
    return urlsplit(url).scheme or "unknown"


@functools.cache
def _apprise():
    """apprise and its asset, imported at the first message or URL check:
    a command with no channels does without its plugins."""
    import apprise

    return apprise, apprise.AppriseAsset(storage_mode="memory")


def url_problem(url: str) -> str | None:
    """Why apprise cannot use this URL, or None; the message shows no secret."""
    apprise, asset = _apprise()
    if apprise.Apprise.instantiate(url, asset=asset) is None:
        return (f"apprise cannot use this {service_name(url)}:// URL (see"
                " https://github.com/caronc/apprise/wiki for each service's URL)")
    return None


def send(url: str, title: str, body: str, markdown: bool = False) -> SendResult:
    """One attempt to deliver `title` and `body`; the result says whether the
    service accepted it and, if not, why (without the URL's secrets)."""
    apprise, asset = _apprise()
    notifier = apprise.Apprise(asset=asset)
    if not notifier.add(url):
        return SendResult(False, url_problem(url) or "apprise refused the URL")
    body_format = apprise.NotifyFormat.MARKDOWN if markdown else apprise.NotifyFormat.TEXT
    _sending.active = True
    try:
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
            accepted = notifier.notify(body=body, title=title, body_format=body_format)
            log = captured.getvalue()
    except Exception as error:  # a plugin's bug must not stop the other channels
        return SendResult(False, _scrub(f"{type(error).__name__}: {error}", url))
    finally:
        _sending.active = False
    if accepted:
        return SendResult(True)
    reason = " ".join(log.split()) or f"{service_name(url)} did not accept the message"
    return SendResult(False, _scrub(reason, url))


def _scrub(text: str, url: str) -> str:
    """Take every longer piece of the URL out of `text`, except a real host
    name (one with a dot): tokens sit in the user, password, path or query,
    and for some services (tgram://TOKEN/CHAT) in the host place."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    keep = {parts.scheme, host} if "." in host else {parts.scheme}
    pieces = {piece for piece in re.split(r"[/:@?&=#,]", url.split("://", 1)[-1])
              if len(piece) >= _SECRET_MIN_CHARS and piece not in keep}
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, "***")
    return text
