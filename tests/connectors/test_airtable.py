"""The Airtable connector's retry policy and rate limiter, on single error paths
(`responses` mocks); whole behaviours run against tests/fakes/airtable.py in
tests/flows/test_airtable_sync.py."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import requests
import responses

from connectors.airtable import ThrottledSession, _error_of
from connectors.throttle import SlidingWindow
from leadhub.errors import TransientError
from tests.fakes.clock import FakeClock

URL = "https://api.airtable.com/v0/appTESTBASE000001/Contacts"
UPSERT = {"records": [{"fields": {"Contact key": "+79120000001"}}],
          "performUpsert": {"fieldsToMergeOn": ["Contact key"]}}


def session(calls: Counter, clock: FakeClock | None = None) -> ThrottledSession:
    clock = clock or FakeClock()
    return ThrottledSession(SlidingWindow(1000, 1.0, clock, clock.sleep), penalty_seconds=30.0,
                            calls=calls, attempts=3, clock=clock, sleep=clock.sleep)


@responses.activate
def test_a_503_on_an_upsert_is_sent_again():
    responses.patch(URL, status=503, json={"error": {"type": "SERVICE_UNAVAILABLE"}})
    responses.patch(URL, json={"records": [], "createdRecords": [], "updatedRecords": []})
    calls: Counter = Counter()
    assert session(calls).request("PATCH", URL, json=UPSERT).status_code == 200
    assert calls["retried"] == 1 and calls["write"] == 2


@responses.activate
def test_a_503_on_a_plain_create_is_not_sent_again():
    responses.post(URL, status=503, json={"error": {"type": "SERVICE_UNAVAILABLE"}})
    calls: Counter = Counter()
    response = session(calls).request("POST", URL, json={"records": [{"fields": {}}]})
    assert response.status_code == 503
    assert len(responses.calls) == 1


@responses.activate
def test_a_timeout_on_a_plain_create_is_reported_not_retried():
    responses.post(URL, body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(TransientError, match="did not answer"):
        session(Counter()).request("POST", URL, json={"records": [{"fields": {}}]})
    assert len(responses.calls) == 1


@responses.activate
def test_a_429_is_waited_out_then_sent_again_even_for_a_create():
    responses.post(URL, status=429, json={"errors": [{"error": "RATE_LIMIT_REACHED",
                                                      "message": "Rate limit exceeded"}]})
    responses.post(URL, json={"records": []})
    calls: Counter = Counter()
    clock = FakeClock()
    started = clock()
    assert session(calls, clock).request("POST", URL, json={"records": []}).status_code == 200
    assert clock() - started >= 30.0
    assert calls["rate_limited"] == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": {"type": "UNKNOWN_FIELD_NAME", "message": 'Unknown field name: "X"'}},
         ("UNKNOWN_FIELD_NAME", 'Unknown field name: "X"')),
        ({"error": "NOT_FOUND"}, ("NOT_FOUND", "")),
        ({"errors": [{"error": "RATE_LIMIT_REACHED", "message": "slow down"}]},
         ("RATE_LIMIT_REACHED", "slow down")),
    ],
    ids=["typed", "bare-string", "array-envelope-429"],
)
def test_every_error_envelope_is_read(body, expected):
    response = requests.Response()
    response.status_code = 422
    response._content = json.dumps(body).encode()
    assert _error_of(response) == expected
