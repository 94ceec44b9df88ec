"""The request budgets every worker shares through the Prefect server: the
bucket that keeps a cluster inside Airtable's and Google's windows, the limit
made on first use, and the sinks sending through it when a server is set."""

from __future__ import annotations

import pytest

from connectors.shared_limits import (
    LOCAL,
    PrefectLimits,
    SharedBudget,
    airtable_limit,
    bucket,
    ensure_limit,
    for_this_run,
    sheets_limit,
)
from connectors.throttle import SlidingWindow


def _most_in_a_window(burst: int, decay: float, window: float, seconds: float) -> int:
    """Clients that take a slot the moment the bucket has one (the worst case),
    on a simulated clock: the most starts any `window` sees."""
    step, now, level, starts = 0.001, 0.0, 0.0, []
    while now < seconds:
        level = max(0.0, level - decay * step)
        while level + 1 <= burst:
            level += 1
            starts.append(now)
        now += step
    first, most = 0, 0
    for last, moment in enumerate(starts):
        while moment - starts[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


@pytest.mark.parametrize(("requests", "window"), [(5, 1.02), (60, 60.5), (3, 1.02)],
                         ids=["airtable-5-per-s", "sheets-60-per-min", "airtable-lowered-to-3"])
def test_no_window_sees_more_than_the_budget_however_eager_the_workers(requests, window):
    spec = bucket("x", requests, window)
    assert spec.limit >= 1 and spec.slot_decay_per_second > 0
    assert _most_in_a_window(spec.limit, spec.slot_decay_per_second, window,
                             seconds=4 * window) <= requests


def test_a_bucket_of_limit_5_decaying_at_5_would_let_twice_the_budget_through():
    assert _most_in_a_window(5, 5.0, 1.02, seconds=4.0) > 5


def test_limit_names_are_the_base_and_the_user_in_characters_prefect_takes():
    assert airtable_limit("appABCDEFGHIJKLMN", 5, 1.02).name == "airtable-appABCDEFGHIJKLMN"
    assert sheets_limit("bot@proj.iam.gserviceaccount.com", 60, 60.5).name == (
        "sheets-writes-bot-proj-iam-gserviceaccount-com")
    assert airtable_limit("appABCDEFGHIJKLMN", 5, 1.02).command() == (
        "prefect gcl create airtable-appABCDEFGHIJKLMN --limit 1 --slot-decay-per-second 3.9216")


def test_without_a_server_each_process_keeps_its_own_window(monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert for_this_run() is LOCAL
    window = SlidingWindow(5, 1.0)
    assert LOCAL.budget(airtable_limit("appABCDEFGHIJKLMN", 5, 1.0), window) is window


def test_with_a_server_the_sinks_send_through_the_shared_limit(monkeypatch, tmp_path):
    from flows.sync import build_sink
    from leadhub.settings import load_settings

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    config = tmp_path / "leadhub.yaml"
    config.write_text("sinks:\n  - {type: airtable, base: appABCDEFGHIJKLMN, token: pat}\n",
                      encoding="utf-8")
    sink, _ = build_sink(load_settings(config), "airtable")
    limiter = sink.api.session.limiter
    assert isinstance(limiter, SharedBudget)
    assert limiter.spec.name == "airtable-appABCDEFGHIJKLMN"
    assert sink.shared_limits() == [limiter.spec]


def _limit(name: str):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(name)


def test_a_missing_limit_is_made_on_first_use_and_each_request_takes_a_slot(prefect_api):
    # a budget that refills over 1,000 s: the slot taken is still held when read
    # back however slow the machine (at Airtable's 5/s it decays in a quarter second)
    spec = bucket("airtable-appTESTFIRSTUSE01", 5, 1000.0)
    budget = PrefectLimits().budget(spec, SlidingWindow(5, 1000.0))
    with budget.slot():
        made = _limit(spec.name)
    assert (made.limit, made.slot_decay_per_second) == (1, spec.slot_decay_per_second)
    assert made.active_slots == 1  # this request's; it decays, it is not given back


def test_a_limit_a_person_set_is_left_as_it_is(prefect_api):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    spec = bucket("airtable-appTESTPERSONSET1", 5, 1.02)
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
            name=spec.name, limit=1, slot_decay_per_second=2.0))
    assert ensure_limit(spec) is False
    assert _limit(spec.name).slot_decay_per_second == 2.0
