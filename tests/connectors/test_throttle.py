"""The request budget of connectors/throttle.py on a fake clock: however late
answers come and however the caller bunches its requests, no window the server
could count in holds more than the limit, and the budget is used up to it."""

from __future__ import annotations

import threading
from contextlib import ExitStack

import pytest

from connectors.throttle import SlidingWindow, shared_window
from tests.fakes.clock import FakeClock

LIMIT = 5
SERVER_WINDOW = 1.0  # Airtable's second
OUR_WINDOW = 1.02  # connectors/airtable.py


def send(limiter: SlidingWindow, clock: FakeClock, latency: float) -> tuple[float, float]:
    """One request through the limiter: when it left and when its answer came."""
    with limiter.slot():
        started = clock()
        clock.advance(latency)
        return started, clock()


def most_arrivals_in_a_window(requests: list[tuple[float, float]]) -> int:
    """The most requests a server could count in one window of SERVER_WINDOW
    (both ends included), when each arrives anywhere between its start and its
    answer: the network and the machine decide where."""
    most = 0
    for _, window_start in requests:
        # a window holding the most arrivals can begin at some request's answer
        inside = [1 for started, answered in requests
                  if answered >= window_start and started <= window_start + SERVER_WINDOW]
        most = max(most, len(inside))
    return most


# (latency of each request, pause the caller takes before it) in seconds
STEADY = [(0.002, 0.0)] * 40
SLOW_ANSWER_THEN_BURST = [(0.6, 0.0)] + [(0.001, 0.0)] * 30
SLOW_NETWORK = [(0.3, 0.0)] * 30
# the machine stalls the caller between taking a slot and sending, then it catches up
CALLER_STALLED_THEN_BURST = [(0.01, 0.0)] * 4 + [(0.5, 0.0)] + [(0.001, 0.0)] * 20
CALLER_IDLE_THEN_BURST = [(0.01, 0.0)] * 5 + [(0.01, 0.9)] + [(0.001, 0.0)] * 20
ANSWERS_LATE_NOW_AND_THEN = [(0.9 if n % 7 == 0 else 0.005, 0.0) for n in range(50)]


@pytest.mark.parametrize(
    "schedule",
    [STEADY, SLOW_ANSWER_THEN_BURST, SLOW_NETWORK, CALLER_STALLED_THEN_BURST,
     CALLER_IDLE_THEN_BURST, ANSWERS_LATE_NOW_AND_THEN],
    ids=["steady", "slow-answer-then-burst", "slow-network", "caller-stalled-then-burst",
         "caller-idle-then-burst", "answers-late-now-and-then"],
)
def test_no_server_window_ever_counts_more_than_the_limit(schedule):
    clock = FakeClock()
    limiter = SlidingWindow(LIMIT, OUR_WINDOW, clock, clock.sleep)
    sent = []
    for latency, pause_before in schedule:
        clock.advance(pause_before)
        sent.append(send(limiter, clock, latency))
    assert most_arrivals_in_a_window(sent) <= LIMIT


def test_a_steady_caller_gets_close_to_the_limit():
    clock = FakeClock()
    limiter = SlidingWindow(LIMIT, OUR_WINDOW, clock, clock.sleep)
    began = clock()
    for _ in range(100):
        send(limiter, clock, latency=0.005)
    # 100 requests at 5 a window: 19 full windows of waiting, each one latency longer
    assert clock() - began <= 19 * (OUR_WINDOW + 0.005) + 5 * 0.005 + 1e-6


def test_a_caller_back_after_a_quiet_spell_sends_its_burst_at_once():
    clock = FakeClock()
    limiter = SlidingWindow(LIMIT, OUR_WINDOW, clock, clock.sleep)
    for _ in range(LIMIT):
        send(limiter, clock, latency=0.01)
    clock.advance(OUR_WINDOW)
    fired = clock()
    burst = [send(limiter, clock, latency=0.0) for _ in range(LIMIT)]
    assert [started for started, _ in burst] == [fired] * LIMIT
    sixth, _ = send(limiter, clock, latency=0.0)
    assert sixth == pytest.approx(fired + OUR_WINDOW)


def test_a_request_in_flight_keeps_its_slot_until_a_window_after_its_answer():
    clock = FakeClock()
    limiter = SlidingWindow(LIMIT, OUR_WINDOW, clock, clock.sleep)
    began = clock()
    sixth_started: list[float] = []

    def sixth_request() -> None:
        with limiter.slot():
            sixth_started.append(clock())

    with ExitStack() as in_flight:
        for _ in range(LIMIT):
            in_flight.enter_context(limiter.slot())  # five requests sent by five threads
        clock.advance(0.4)
        waiting = threading.Thread(target=sixth_request)
        waiting.start()
        in_flight.close()  # their answers come, all at 0.4 s
        waiting.join(timeout=60)
    assert sixth_started == [pytest.approx(began + 0.4 + OUR_WINDOW)]


def test_after_a_429_nobody_starts_until_the_penalty_is_over():
    clock = FakeClock()
    limiter = SlidingWindow(LIMIT, OUR_WINDOW, clock, clock.sleep)
    send(limiter, clock, latency=0.01)
    limiter.pause(30.0)
    paused_at = clock()
    started, _ = send(limiter, clock, latency=0.01)
    assert started == pytest.approx(paused_at + 30.0)


def test_one_window_per_key_and_clock_and_the_lower_limit_holds():
    clock = FakeClock()
    first = shared_window(("test", "one"), 5, 1.0, clock, clock.sleep)
    again = shared_window(("test", "one"), 3, 1.0, clock, clock.sleep)
    on_the_real_clock = shared_window(("test", "one"), 5, 1.0)
    assert first is again and first.limit == 3
    assert on_the_real_clock is not first
