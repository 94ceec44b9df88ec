"""Bytes to text when the charset is unknown or wrong (Russian mail and CSVs)."""

from __future__ import annotations

import codecs
import re

_CYRILLIC = re.compile(r"[а-яёА-ЯЁ]")
_LOWER_CYRILLIC = re.compile(r"[а-яё]")
_TEXT_CONTROLS = frozenset(b"\t\n\r\x0c")
_BINARY_SAMPLE = 64 * 1024
_BINARY_SHARE = 0.01


def decode_text(data: bytes, declared: str | None = None) -> tuple[str, str]:
    """Decode bytes, trusting a declared charset only when it decodes cleanly.

    Returns the text and the encoding used. Undeclared 8-bit text is UTF-8 if
    it decodes as such, else cp1251 or koi8-r: Russian prose is mostly
    lower-case, and the wrong one of the two turns it mostly upper-case.
    """
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", "replace"), "utf-8-sig"
    if declared:
        encoding = _known_encoding(declared)
        if encoding:
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                pass
            else:
                if encoding not in ("cp1251", "koi8-r") or _looks_russian(text):
                    return text, encoding
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = max(("cp1251", "koi8_r"), key=lambda enc: russian_score(data.decode(enc, "replace")))
    return data.decode(best, "replace"), best


def repair_header(value: str) -> str:
    """A raw 8-bit header (no encoded-word) arrives surrogate-escaped: decode it."""
    if not any("\udc80" <= char <= "\udcff" for char in value):
        return value
    return decode_text(value.encode("utf-8", "surrogateescape"))[0]


def looks_binary(data: bytes) -> bool:
    """Bytes that are no text in any encoding LeadHub reads (an image, a zip, an
    .xlsx renamed): NUL bytes or control characters text does not have."""
    sample = data[:_BINARY_SAMPLE]
    if not sample:
        return False
    controls = sum(1 for byte in sample if byte < 0x20 and byte not in _TEXT_CONTROLS)
    return b"\x00" in sample or controls > len(sample) * _BINARY_SHARE


def _known_encoding(name: str) -> str | None:
    try:
        return codecs.lookup(name.strip().strip('"').lower()).name
    except (LookupError, ValueError):  # ValueError: a NUL byte in the name
        return None


def russian_score(text: str) -> float:
    """The share of lower case among the Cyrillic letters (0 with none): Russian
    text read in the right single-byte encoding is mostly lower-case."""
    cyrillic, lower = cyrillic_letters(text)
    return lower / cyrillic if cyrillic else 0.0


def cyrillic_letters(text: str) -> tuple[int, int]:
    """How many Russian letters `text` has, and how many of them are lower-case."""
    return len(_CYRILLIC.findall(text)), len(_LOWER_CYRILLIC.findall(text))


def _looks_russian(text: str) -> bool:
    """A declared cp1251/koi8-r that yields mostly capitals was the other one."""
    cyrillic = len(_CYRILLIC.findall(text))
    return cyrillic < 20 or russian_score(text) >= 0.5
