import gc
import threading
import weakref

import pytest

import flows.intake as intake
from connectors.files import FilesSource
from flows.batch_gc import after_batch, collected_per_batch
from flows.intake import collect, process_pending
from leadhub.settings import load_settings

from .helpers import LEAD_SAMPLES


class _Cycle:
    """An object only the cyclic collector frees (it refers to itself)."""

    def __init__(self):
        self.me = self


@pytest.fixture
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_automatic_collections_are_off_inside_and_back_on_after(collector_on):
    with collected_per_batch():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off(collector_on):
    gc.disable()
    with collected_per_batch():
        pass
    assert not gc.isenabled()


def test_two_runs_at_once_turn_collections_back_on_when_the_last_ends(collector_on):
    first_in, first_may_end = threading.Event(), threading.Event()
    seen = []

    def first():
        with collected_per_batch():
            first_in.set()
            first_may_end.wait(30)
            seen.append(("first ends", gc.isenabled()))

    thread = threading.Thread(target=first)
    thread.start()
    assert first_in.wait(30)
    with collected_per_batch():
        pass
    seen.append(("second ended", gc.isenabled()))
    first_may_end.set()
    thread.join(30)
    assert seen == [("second ended", False), ("first ends", False)]
    assert gc.isenabled()


def test_the_end_of_a_batch_frees_the_cycles_the_batch_made(collector_on):
    with collected_per_batch():
        cycle = weakref.ref(_Cycle())
        assert cycle() is not None  # no automatic collection frees it
        after_batch()
        assert cycle() is None


def test_processing_runs_its_batches_without_automatic_collections_and_frees_their_cycles(
        store, monkeypatch, collector_on):
    record_batch = intake._record_batch
    during: list[bool] = []
    cycles: list[weakref.ref] = []

    def recorded(*args, **kwargs):
        during.append(gc.isenabled())
        cycles.append(weakref.ref(_Cycle()))
        return record_batch(*args, **kwargs)

    monkeypatch.setattr(intake, "_record_batch", recorded)
    collect(FilesSource("files", LEAD_SAMPLES), store)
    stats = process_pending(load_settings(store=store), batch_size=10, workers=1)
    assert stats["processed_items"] == 54
    assert len(during) == 6 and not any(during)
    assert all(cycle() is None for cycle in cycles)
    assert gc.isenabled()
