"""The language LeadHub speaks to people: Russian or English.

LEADHUB_LANG chooses (`ru`, `en`); without it the locale does (LC_ALL,
LC_MESSAGES, LANG: the first one set, as the C library reads them), and a
locale starting with `ru` means Russian. English is the fallback and the
source: each message's English text is its msgid in the gettext catalog
leadhub/locale/ru/LC_MESSAGES/leadhub.po (compiled to leadhub.mo beside it:
`make locale`).

`_()` translates at the moment it is called, so the language can follow the
environment of each command; `N_()` only marks a text for the catalog where
it is defined once (a table of labels) and translated where it is shown.
"""

from __future__ import annotations

import gettext
import inspect
import os
from functools import cache
from pathlib import Path

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "leadhub"
LANGUAGES = ("en", "ru")


def language() -> str:
    """`ru` or `en`, from LEADHUB_LANG or else the locale."""
    asked = os.environ.get("LEADHUB_LANG", "").strip()
    if not asked:
        asked = next((os.environ[name] for name in ("LC_ALL", "LC_MESSAGES", "LANG")
                      if os.environ.get(name)), "")
    return "ru" if asked.lower().startswith("ru") else "en"


@cache
def _catalog(lang: str) -> gettext.NullTranslations:
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang], fallback=True)


def _(message: str) -> str:
    """The message in the user's language (the English itself without a translation)."""
    return _catalog(language()).gettext(message)


def N_(message: str) -> str:
    """A message to translate later, where it is shown."""
    return message


def translated_doc(function):
    """The function with its docstring in the user's language: typer shows a
    command's docstring as its help. The msgid is the docstring as `inspect`
    cleans it."""
    if function.__doc__:
        english = inspect.cleandoc(function.__doc__)
        translated = _(english)
        if translated != english:
            function.__doc__ = translated
    return function
