"""Logging that never shows a phone, an email or a secret."""

from __future__ import annotations

import logging
import os

from transforms.masking import mask_pii

_SECRET_ENV_HINTS = ("TOKEN", "PASSWORD", "SECRET", "KEY", "CREDENTIALS")
_installed = False


def install_masking() -> None:
    """Mask every log record at creation, whichever handler prints it
    (Prefect's console and API handlers included)."""
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def masked_record(*args, **kwargs) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return record
        record.msg, record.args = _hide_secrets(mask_pii(message)), ()
        return record

    logging.setLogRecordFactory(masked_record)
    _installed = True


def _hide_secrets(text: str) -> str:
    for name, value in os.environ.items():
        if len(value) >= 8 and any(hint in name.upper() for hint in _SECRET_ENV_HINTS):
            text = text.replace(value, f"${{{name}}}")
    return text
