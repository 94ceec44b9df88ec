"""Mutated posts: the endpoint answers every one with a 4xx or stores it, never a
5xx, and every stored post is processed without failing its batch.

schemathesis (test_webhook_openapi.py) sends what the OpenAPI spec allows; it
never sent a lone surrogate or a 5,000-digit number, which answered 500. These
mutations start from each preset's real payload and break it the ways bots
and broken sites do, from a fixed seed, so a failure is reproducible.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import httpx
import pytest

from connectors.ledger import Ledger
from connectors.webhook import create_app
from flows.intake import process_pending
from leadhub.settings import load_settings

CASES = Path(__file__).resolve().parents[1] / "cases" / "forms"
SEED = 17
POSTS = 400
FORMS = {
    "site": ("tilda", "tilda.urlencoded.txt"),
    "typeform": ("typeform", "typeform.json"),
    "webflow": ("webflow", "webflow.json"),
    "tally": ("tally", "tally.json"),
    "google": ("google_forms", "google_forms.json"),
    "wp": ("cf7", "cf7.json"),
    "any": ("generic", "generic_nested.json"),
}
CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/plain",
                 "multipart/form-data", "multipart/form-data; boundary=x", "")
# Values that broke the endpoint or processing before, and their relatives.
HOSTILE_VALUES = (
    "\ud800", "\udfff", "a\ud83d", "\x00", "\u202e", "\ufeff", "9" * 4301, "-" + "9" * 5000,
    1e308, -0.0, 10**20, True, None, [], {}, [[[[[]]]]], {"a": {"b": {"c": {}}}},
    "(" * 500, "=?utf-8?b?0J/RgNC40LLQtdGC?=", "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+14:00", "+7 (912) 345-67-89 " * 50, "@" * 300, "<script>",
)
HOSTILE_TEXT = ("\\ud800", "\\udfff\\ud800", "9" * 4400, "\\u0000", "[" * 40, "{\"a\":" * 20,
                "\xff\xfe", "%", "%ZZ", "&&&=", "=", "\r\n--x\r\n")


def _mutate_object(value: object, rng: random.Random) -> object:
    """A copy of a decoded JSON body with one value, key or list changed."""
    if isinstance(value, dict) and value:
        key = rng.choice(list(value))
        copy = dict(value)
        roll = rng.random()
        if roll < 0.15:
            del copy[key]
        elif roll < 0.3:
            copy[rng.choice(HOSTILE_VALUES[:3]) + key] = copy.pop(key)
        elif roll < 0.65:
            copy[key] = rng.choice(HOSTILE_VALUES)
        else:
            copy[key] = _mutate_object(copy[key], rng)
        return copy
    if isinstance(value, list) and value:
        index = rng.randrange(len(value))
        copy = list(value)
        copy[index] = _mutate_object(copy[index], rng) if rng.random() < 0.6 else rng.choice(
            HOSTILE_VALUES)
        return copy
    return rng.choice(HOSTILE_VALUES)


def _mutate_bytes(body: bytes, rng: random.Random) -> bytes:
    """The raw body cut, spliced or with hostile text inserted."""
    roll = rng.random()
    position = rng.randrange(len(body) + 1)
    if roll < 0.3:
        return body[:position]
    if roll < 0.7:
        insert = rng.choice(HOSTILE_TEXT).encode("utf-8", "surrogatepass")
        return body[:position] + insert + body[position:]
    noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
    return body[:position] + noise + body[position + len(noise):]


def _posts(rng: random.Random) -> list[tuple[str, bytes, str]]:
    posts = []
    for _ in range(POSTS):
        form = rng.choice(list(FORMS))
        original = (CASES / FORMS[form][1]).read_bytes()
        is_json = FORMS[form][1].endswith(".json")
        if is_json and rng.random() < 0.6:
            body = json.dumps(_mutate_object(json.loads(original), rng)).encode()
        else:
            body = _mutate_bytes(original, rng)
        content_type = ("application/json" if is_json else "application/x-www-form-urlencoded")
        if rng.random() < 0.2:
            content_type = rng.choice(CONTENT_TYPES)
        posts.append((form, body, content_type))
    return posts


@pytest.fixture
def settings(tmp_path):
    forms = "".join(f"  - {{type: webhook, form: {form}, preset: {preset}, auth: none}}\n"
                    for form, (preset, _) in FORMS.items())
    (tmp_path / "leadhub.yaml").write_text(
        f"store: leadhub.db\nweb:\n  requests_per_minute: 100000\nsources:\n{forms}",
        encoding="utf-8")
    return load_settings(tmp_path / "leadhub.yaml")


async def _send(settings, posts) -> list[int]:
    app = create_app(settings, process=None)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://leadhub") as client:
        return [
            (await client.post(f"/forms/{form}", content=body,
                               headers={"Content-Type": content_type})).status_code
            for form, body, content_type in posts
        ]


def test_mutated_posts_never_get_a_server_error(settings):
    posts = _posts(random.Random(SEED))
    codes = asyncio.run(_send(settings, posts))
    errors = [(post, code) for post, code in zip(posts, codes, strict=True) if code >= 500]
    assert errors == []
    assert {200, 202} & set(codes) and {422} & set(codes)  # the mutations reach both ends
    stored = _counts(settings)["items_new"]
    assert process_pending(settings)["processed_items"] == stored > 0
    assert "items_new" not in _counts(settings)  # no post is left failing its batch


def _counts(settings) -> dict[str, int]:
    ledger = Ledger(settings.store)
    try:
        return ledger.counts()
    finally:
        ledger.close()
