"""IMAP intake against a real Dovecot on loopback: sync rate, idle checks, IDLE latency.

The script starts its own Dovecot (`tests/connectors/dovecot.py`, users
sales/secret) in a temporary folder, talks to it on 127.0.0.1 only, and stops
it at the end, also on Ctrl-C or an error. Mail is `make_message(i)`: small
Russian inquiries of about 0.7 KB. Every sync is what the intake flow's collect
step does with a source (see `_sync` in tests/connectors/test_imap.py): for
each batch of `ImapSource.batches(ledger.checkpoint)`, `store_raw_items` with
the batch's checkpoint, then `acknowledge`. The policy is `leave`, so folders
are opened read-only (EXAMINE) and nothing is flagged or moved.

It measures:

1. initial sync rate: `--messages` (default 10,000) messages are appended to
   INBOX with MULTIAPPEND (not timed), then synced in full into a fresh SQLite
   ledger: messages/s, and IMAP commands per 100 messages. It is run with
   `--batch-size` (default 100), then with 500, then with `--batch-size`
   again, each into a fresh ledger: the first run is the first time Dovecot is
   asked for these messages, the later ones find its index cache filled;
2. cost of a check with no new mail: a fresh `ImapSource` (as every flow run
   makes) syncs a folder whose checkpoint is already at its last message, at
   mailbox sizes 100, 1,000 and `--messages`. The two small sizes are folders
   of their own (Check100, Check1000), the largest is the INBOX of step 1.
   It reports the IMAP commands of one check and its wall time; the commands
   should not grow with the mailbox;
3. append-to-ledger latency in IDLE mode: a `FolderWatcher` on INBOX sets an
   Event; a consumer thread waits for it and runs one sync into the ledger of
   step 1, noting when each UID was committed. The main thread appends
   `--idle-messages` (default 50) messages one at a time, each with its own
   connection (login, APPEND, logout, as an MTA delivers), with a random
   pause of 0.2-0.5 s before each; latency is the commit time minus the time
   the append call returned (and, separately, minus when it was called).

IMAP commands are counted inside this process by wrapping
`imaplib.IMAP4._command` (every command imaplib sends, and IMAPClient's FETCH
and IDLE) and `IMAPClient._raw_command` (SEARCH and other commands IMAPClient
sends itself, which bypass `_command`). The tags allocated by
`imaplib.IMAP4._new_tag` are counted too, as a check that nothing was missed.
Only the commands of the thread that runs the sync are counted: the
appends of the outside world and the IDLE watcher are not.

Run from the repository root (needs /usr/sbin/dovecot and root, like the
connector tests):

    PYTHONPATH=. .venv/bin/python benchmarks/imap_intake.py
    PYTHONPATH=. .venv/bin/python benchmarks/imap_intake.py --messages 2000 --idle-messages 20
"""

from __future__ import annotations

import argparse
import imaplib
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench_output import Report, positive
from imapclient import IMAPClient

from connectors.imap import FolderWatcher, ImapSource
from connectors.ledger import Ledger
from leadhub.settings import ImapSourceConfig
from tests.connectors.dovecot import DOVECOT_BINARY, Dovecot, make_message

DEFAULT_MESSAGES = 10_000
DEFAULT_BATCH_SIZE = 100
SECOND_BATCH_SIZE = 500
CHECK_SIZES = (100, 1_000)  # plus --messages, the INBOX of the initial sync
DEFAULT_CHECK_REPEATS = 5
DEFAULT_IDLE_MESSAGES = 50
DEFAULT_SEED = 20240601
PAUSE_RANGE = (0.2, 0.5)  # seconds between two appends in the IDLE test
APPEND_CHUNK = 2_500  # messages per MULTIAPPEND when filling a folder
IDLE_SETTLE_SECONDS = 1.0  # for the watcher to log in and enter IDLE
IDLE_WAIT_SECONDS = 15.0  # for a message to reach the ledger before it counts as missed
USER, PASSWORD = "sales", "secret"


# --- counting IMAP commands -------------------------------------------------------


@dataclass
class Recording:
    """The IMAP commands one thread sent while it was recording."""

    names: list[str] = field(default_factory=list)
    tags: int = 0

    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def untracked(self) -> int:
        """Tags allocated for commands neither wrapper saw (should be 0)."""
        return self.tags - len(self.names)


class CommandCounter:
    """Wraps imaplib and IMAPClient in this process to count the commands sent."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._originals: list[tuple[type, str, Callable]] = []

    def install(self) -> None:
        counter = self
        command = imaplib.IMAP4._command
        new_tag = imaplib.IMAP4._new_tag
        raw_command = IMAPClient._raw_command

        # Each wrapper pushes its label; the tag allocation that follows pops
        # the innermost one. IMAPClient._raw_command may send a CAPABILITY of
        # its own before its tag is allocated: this keeps the wire order.
        def counted_command(imap, name, *args):
            label = name.upper()
            if label == "UID" and args:
                label = f"UID {str(args[0]).upper()}"
            with counter._pending(label):
                return command(imap, name, *args)

        def counted_raw_command(client, name, args, uid=True):
            text = name.decode() if isinstance(name, bytes) else str(name)
            prefix = "UID " if uid and client.use_uid else ""
            with counter._pending(prefix + text.upper()):
                return raw_command(client, name, args, uid=uid)

        def counted_new_tag(imap):
            counter._tagged()
            return new_tag(imap)

        self._originals = [
            (imaplib.IMAP4, "_command", command),
            (imaplib.IMAP4, "_new_tag", new_tag),
            (IMAPClient, "_raw_command", raw_command),
        ]
        imaplib.IMAP4._command = counted_command
        imaplib.IMAP4._new_tag = counted_new_tag
        IMAPClient._raw_command = counted_raw_command

    def uninstall(self) -> None:
        for owner, name, original in self._originals:
            setattr(owner, name, original)
        self._originals = []

    @contextmanager
    def recording(self) -> Iterator[Recording]:
        """Count the commands this thread sends inside the block."""
        recording = Recording()
        self._local.recording = recording
        try:
            yield recording
        finally:
            self._local.recording = None

    def _current(self) -> Recording | None:
        return getattr(self._local, "recording", None)

    @contextmanager
    def _pending(self, label: str) -> Iterator[None]:
        stack = self._local.__dict__.setdefault("labels", [])
        depth = len(stack)
        stack.append(label)
        try:
            yield
        finally:
            del stack[depth:]  # popped already if a tag was allocated

    def _tagged(self) -> None:
        stack = self._local.__dict__.setdefault("labels", [])
        label = stack.pop() if stack else None
        recording = self._current()
        if recording is None:
            return
        recording.tags += 1
        if label is not None:
            recording.names.append(label)


COUNTER = CommandCounter()


# --- syncing ------------------------------------------------------------------------


@dataclass
class SyncResult:
    uids: list[int]
    items: int
    batches: int
    seconds: float
    store_seconds: float
    commands: Recording


def account(server: Dovecot, folder: str, batch_size: int) -> ImapSourceConfig:
    return ImapSourceConfig.model_validate(
        {
            "type": "imap",
            "name": USER,
            "host": server.host,
            "port": server.port,
            "tls": "none",
            "username": USER,
            "password": PASSWORD,
            "folders": [folder],
            "batch_size": batch_size,
            "timeout": 30,
        }
    )


def sync(
    config: ImapSourceConfig,
    ledger: Ledger,
    on_stored: Callable[[list[int], float], None] | None = None,
) -> SyncResult:
    """One collect step of the intake flow with a fresh source, timed and counted."""
    uids: list[int] = []
    items = batches = 0
    store_seconds = 0.0
    with COUNTER.recording() as commands:
        started = time.perf_counter()
        source = ImapSource(config)
        for batch in source.batches(ledger.checkpoint):
            storing = time.perf_counter()
            ledger.store_raw_items(batch.items, checkpoint=batch.checkpoint)
            stored = time.perf_counter()
            store_seconds += stored - storing
            if on_stored is not None:
                on_stored(batch.uids, stored)
            source.acknowledge(batch)
            uids += batch.uids
            items += len(batch.items)
            batches += 1
        seconds = time.perf_counter() - started
    return SyncResult(uids, items, batches, seconds, store_seconds, commands)


def fill(server: Dovecot, folder: str, start: int, count: int) -> float:
    """Append make_message(start..start+count-1) with MULTIAPPEND; seconds taken."""
    started = time.perf_counter()
    for first in range(start, start + count, APPEND_CHUNK):
        last = min(first + APPEND_CHUNK, start + count)
        server.append_many(USER, folder, [make_message(i) for i in range(first, last)])
    return time.perf_counter() - started


# --- 1. initial sync ------------------------------------------------------------------


@dataclass(frozen=True)
class InitialSync:
    run: str
    batch_size: int
    result: SyncResult
    ledger_path: Path


def initial_syncs(
    server: Dovecot, work: Path, messages: int, batch_sizes: Sequence[int]
) -> list[InitialSync]:
    runs = []
    for number, batch_size in enumerate(batch_sizes, start=1):
        path = work / f"initial-{number}-batch{batch_size}.db"
        ledger = Ledger(path)
        try:
            result = sync(account(server, "INBOX", batch_size), ledger)
        finally:
            ledger.close()
        if result.items != messages:
            raise RuntimeError(f"initial sync stored {result.items} messages, not {messages}")
        label = "first" if number == 1 else "repeat"
        runs.append(InitialSync(f"{number} ({label})", batch_size, result, path))
    return runs


# --- 2. checks with no new mail -----------------------------------------------------


@dataclass(frozen=True)
class IdleCheck:
    folder: str
    messages: int
    results: list[SyncResult]


def no_new_mail_checks(
    server: Dovecot,
    ledger_path: Path,
    folder: str,
    messages: int,
    repeats: int,
    batch_size: int,
) -> IdleCheck:
    """Sync the folder once (untimed) unless the ledger has it, then check `repeats` times."""
    config = account(server, folder, batch_size)
    ledger = Ledger(ledger_path)
    try:
        if ledger.checkpoint(USER, folder) is None:
            first = sync(config, ledger)
            if first.items != messages:
                raise RuntimeError(f"{folder}: synced {first.items} messages, not {messages}")
        results = []
        for _ in range(repeats):
            result = sync(config, ledger)
            if result.items:
                raise RuntimeError(f"{folder}: a check with no new mail stored {result.items}")
            results.append(result)
    finally:
        ledger.close()
    return IdleCheck(folder, messages, results)


# --- 3. IDLE latency ----------------------------------------------------------------


@dataclass
class Consumer:
    """The thread that runs a sync whenever the watcher announces new mail."""

    config: ImapSourceConfig
    ledger_path: Path
    wake: threading.Event
    stop: threading.Event
    debounce: float
    stored_at: dict[int, float] = field(default_factory=dict)
    woken_at: dict[int, float] = field(default_factory=dict)  # uid -> wake-up of its sync
    syncs: list[SyncResult] = field(default_factory=list)
    error: BaseException | None = None
    busy: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        try:
            ledger = Ledger(self.ledger_path)  # sqlite objects stay in their thread
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            self.error = error
            return
        try:
            while not self.stop.is_set():
                if not self.wake.wait(timeout=0.2):
                    continue
                woken = time.perf_counter()
                self.wake.clear()
                self.busy = True
                if self.debounce:
                    self.stop.wait(self.debounce)

                def stored(uids: list[int], moment: float, woken: float = woken) -> None:
                    self._stored(uids, moment, woken)

                result = sync(self.config, ledger, on_stored=stored)
                with self.lock:
                    self.syncs.append(result)
                    self.busy = False
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            self.error = error
        finally:
            ledger.close()

    def _stored(self, uids: list[int], moment: float, woken: float) -> None:
        with self.lock:
            for uid in uids:
                self.stored_at.setdefault(uid, moment)
                self.woken_at.setdefault(uid, woken)

    def stored(self, uid: int) -> float | None:
        with self.lock:
            return self.stored_at.get(uid)


@dataclass(frozen=True)
class Append:
    uid: int
    called: float
    returned: float


@dataclass
class IdleLatency:
    appends: list[Append]
    stored_at: dict[int, float]
    woken_at: dict[int, float]
    syncs: list[SyncResult]
    announced_at: list[float]
    watcher_error: str
    seconds: float

    def latencies_ms(self, since: str) -> list[float]:
        return [
            (self.stored_at[a.uid] - getattr(a, since)) * 1000
            for a in self.appends
            if a.uid in self.stored_at
        ]

    def split_ms(self) -> tuple[list[float], list[float], int]:
        """(append returned -> consumer woken, woken -> committed) per message whose
        sync was woken after the append was called; and how many rode along instead
        (taken by a sync woken for an earlier message)."""
        notify, collect, rode_along = [], [], 0
        for append in self.appends:
            if append.uid not in self.stored_at:
                continue
            woken = self.woken_at[append.uid]
            if woken < append.called:
                rode_along += 1
                continue
            notify.append((woken - append.returned) * 1000)
            collect.append((self.stored_at[append.uid] - woken) * 1000)
        return notify, collect, rode_along

    @property
    def missed(self) -> int:
        return sum(1 for a in self.appends if a.uid not in self.stored_at)


def wait_until(condition: Callable[[], bool], timeout: float, poll: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return condition()


def idle_latency(
    server: Dovecot,
    ledger_path: Path,
    count: int,
    seed: int,
    first_index: int,
    batch_size: int,
    debounce: float,
) -> IdleLatency:
    config = account(server, "INBOX", batch_size)
    rng = random.Random(seed)
    stop = threading.Event()
    wake = threading.Event()
    announced_at: list[float] = []

    def announced(*_: str) -> None:
        announced_at.append(time.perf_counter())
        wake.set()

    consumer = Consumer(config, ledger_path, wake, stop, debounce)
    watcher = FolderWatcher(config, "INBOX", announced, stop)
    consumer_thread = threading.Thread(target=consumer.run, name="consumer", daemon=True)
    started = time.perf_counter()
    appends: list[Append] = []
    consumer_thread.start()
    watcher.start()
    try:
        time.sleep(IDLE_SETTLE_SECONDS)
        # One untimed message first: proves the chain works and warms it up.
        warm_uid = server.append(USER, "INBOX", make_message(first_index))
        if not wait_until(lambda: consumer.stored(warm_uid) is not None, IDLE_WAIT_SECONDS):
            raise RuntimeError(
                "the warm-up message never reached the ledger: watcher error"
                f" {watcher.error!r}, consumer error {consumer.error!r}"
            )
        wait_until(lambda: not consumer.busy and not wake.is_set(), IDLE_WAIT_SECONDS)
        announced_at.clear()
        with consumer.lock:
            consumer.syncs.clear()
        for index in range(first_index + 1, first_index + 1 + count):
            time.sleep(rng.uniform(*PAUSE_RANGE))
            called = time.perf_counter()
            uid = server.append(USER, "INBOX", make_message(index))
            appends.append(Append(uid, called, time.perf_counter()))
            if consumer.error is not None:
                break
        last_uid = appends[-1].uid if appends else warm_uid
        wait_until(
            lambda: consumer.stored(last_uid) is not None or consumer.error is not None,
            IDLE_WAIT_SECONDS,
        )
        # Anything else still in flight gets a moment more, bounded.
        wait_until(lambda: all(consumer.stored(a.uid) is not None for a in appends), 2.0)
    finally:
        stop.set()
        watcher.join(timeout=15)
        consumer_thread.join(timeout=30)
    if consumer.error is not None:
        raise RuntimeError(f"the consumer failed: {consumer.error!r}") from consumer.error
    with consumer.lock:
        stored_at = dict(consumer.stored_at)
        woken_at = dict(consumer.woken_at)
        syncs = list(consumer.syncs)
    return IdleLatency(
        appends,
        stored_at,
        woken_at,
        syncs,
        list(announced_at),
        watcher.error,
        time.perf_counter() - started,
    )


# --- output -------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share / 100 * len(ordered)))
    return ordered[rank - 1]


def command_mix(names: Sequence[str]) -> str:
    counts = Counter(names)
    return ", ".join(f"{name} x{n}" if n > 1 else name for name, n in counts.items())


def initial_rows(runs: Sequence[InitialSync]) -> list[list[str]]:
    rows = []
    for run in runs:
        result = run.result
        commands = result.commands
        rows.append(
            [
                run.run,
                f"{run.batch_size:,}",
                f"{result.items:,}",
                f"{result.batches:,}",
                f"{result.seconds:,.2f}",
                f"{result.store_seconds:,.2f}",
                f"{result.items / result.seconds:,.0f}",
                f"{commands.count:,}",
                f"{commands.count / result.items * 100:.2f}",
                command_mix(commands.names),
            ]
        )
    return rows


def check_rows(checks: Sequence[IdleCheck]) -> list[list[str]]:
    rows = []
    for check in checks:
        counts = sorted({result.commands.count for result in check.results})
        walls = [result.seconds * 1000 for result in check.results]
        rows.append(
            [
                f"{check.messages:,}",
                check.folder,
                f"{len(check.results)}",
                "/".join(str(count) for count in counts),
                " > ".join(check.results[0].commands.names),
                f"{statistics.median(walls):.1f}",
                f"{max(walls):.1f}",
            ]
        )
    return rows


def latency_rows(latency: IdleLatency) -> list[list[str]]:
    rows = []
    notify, collect, _ = latency.split_ms()
    series = (
        ("append returned -> committed", latency.latencies_ms("returned")),
        ("append called -> committed", latency.latencies_ms("called")),
        ("  split: returned -> consumer woken", notify),
        ("  split: consumer woken -> committed", collect),
    )
    for label, values in series:
        if not values:
            rows.append([label, "0", "-", "-", "-", "-"])
            continue
        rows.append(
            [
                label,
                f"{len(values)}",
                f"{min(values):.1f}",
                f"{percentile(values, 50):.1f}",
                f"{percentile(values, 95):.1f}",
                f"{max(values):.1f}",
            ]
        )
    return rows


INITIAL_COLUMNS = (
    "run",
    "batch size",
    "messages",
    "batches",
    "sync s",
    "ledger s",
    "msg/s",
    "IMAP cmds",
    "cmds/100 msg",
    "commands",
)
CHECK_COLUMNS = (
    "mailbox msgs",
    "folder",
    "checks",
    "cmds/check",
    "command sequence",
    "median ms",
    "max ms",
)
LATENCY_COLUMNS = ("interval", "messages", "min ms", "p50 ms", "p95 ms", "max ms")


def initial_notes(messages: int, append_seconds: float) -> list[str]:
    return [
        f"[1] The {messages:,} messages were appended with MULTIAPPEND in "
        f"{append_seconds:.1f} s, before and outside any timing.",
        "[1] sync s: time.perf_counter from making the ImapSource to the end of its last batch:"
        " connect, login, EXAMINE, UID SEARCH, per batch two UID FETCHes (RFC822.SIZE +"
        " INTERNALDATE, then BODY.PEEK[]), the ledger writes, logout.",
        "[1] ledger s: the part of sync s spent in Ledger.store_raw_items (one SQLite"
        " transaction per batch, WAL, synchronous=NORMAL).",
        "[1] msg/s: messages / sync s. Run 1 is the first time Dovecot serves these messages;"
        " runs 2 and 3 find its index cache and the OS page cache warm. Each run has a fresh"
        " ledger, so each is a complete initial sync.",
        "[1] IMAP cmds: tagged commands sent by the syncing thread (counted by wrapping"
        " imaplib.IMAP4._command and IMAPClient._raw_command); cmds/100 msg = IMAP cmds /"
        " messages x 100.",
    ]


def check_notes(repeats: int, untracked: int, checks: Sequence[IdleCheck]) -> list[str]:
    notes = [
        f"[2] Each size: the folder is synced once (untimed), then checked {repeats} times;"
        " each check is a new ImapSource with the ledger's checkpoint at the folder's last"
        " message, exactly as a flow run with no new mail.",
        "[2] cmds/check: IMAP commands of one check, every distinct count seen across the"
        " checks (one number: the same every time); command sequence: wire order, first check.",
        "[2] median/max ms: wall time of a whole check (TCP connect to logout, plus the"
        " checkpoint read), median and max over the checks.",
        "[2] SEARCH is 'UID <last+1>:*': the server answers with at most the highest UID, so"
        " the reply does not grow with the mailbox either.",
        f"[2] Tags allocated but seen by neither wrapper, all checks: {untracked}"
        " (0 means every command was counted).",
    ]
    if any(check.results[0].commands.names.count("CAPABILITY") > 1 for check in checks):
        notes.append(
            "[2] CAPABILITY is sent twice: imaplib asks on connect, the server sends the"
            " list again with its LOGIN OK, but imaplib's SELECT/EXAMINE flushes untagged"
            " responses, so IMAPClient's first has_capability after EXAMINE (the LITERAL+"
            " check inside SEARCH) asks again. One round trip per connection, independent"
            " of mailbox size."
        )
    return notes


def latency_notes(latency: IdleLatency, debounce: float) -> list[str]:
    empty = sum(1 for result in latency.syncs if not result.items)
    per_sync = sorted({result.commands.count for result in latency.syncs})
    taken = [result.items for result in latency.syncs if result.items]
    _, _, rode_along = latency.split_ms()
    notes = [
        f"[3] {len(latency.appends)} appends, {PAUSE_RANGE[0]}-{PAUSE_RANGE[1]} s apart"
        " (seeded random), each its own connection (login, APPEND, logout), after one"
        " untimed warm-up message. Times are time.perf_counter in this process.",
        "[3] committed: when the Ledger.store_raw_items transaction holding the message"
        " returned in the consumer thread. append returned / called: when the append call"
        " returned (after its logout) / was called.",
        "[3] split: 'consumer woken' is when the consumer's Event.wait returned for the sync"
        " that stored the message (it waits on the Event FolderWatcher sets when the server"
        " sends EXISTS). Only messages whose sync was woken after their append was called;"
        f" {rode_along} other(s) rode along in a sync woken for an earlier message."
        " The path: Dovecot EXISTS -> FolderWatcher -> Event -> consumer -> new ImapSource"
        " (connect, login, EXAMINE, SEARCH, 2 FETCH, logout) -> commit. Dovecot holds mailbox"
        " change notifications back for up to 500 ms to batch them (NOTIFY_DELAY_MSECS in"
        " its mailbox-watch.c): about 500 ms for the first message of a burst, less for one"
        " that arrives while that delay runs; a negative value is an EXISTS that arrived"
        " before the appending client had logged out.",
        f"[3] Consumer syncs: {len(latency.syncs)} ({empty} found nothing new); messages per"
        f" non-empty sync: {min(taken, default=0)}-{max(taken, default=0)}; IMAP commands per"
        f" sync: {'/'.join(map(str, per_sync)) or '-'}; watcher announcements:"
        f" {len(latency.announced_at)}; messages not in the ledger {IDLE_WAIT_SECONDS:.0f} s"
        f" after the last append: {latency.missed}.",
        f"[3] Debounce before each sync: {debounce:g} s. `leadhub serve` waits"
        " DEBOUNCE_SECONDS = 1 s after an announcement to gather a burst: add that to every"
        " figure, or run with --debounce 1.",
    ]
    if latency.watcher_error:
        notes.append(f"[3] Watcher error: {latency.watcher_error}")
    return notes


# --- entry point ----------------------------------------------------------------------




def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--messages",
        type=positive,
        default=DEFAULT_MESSAGES,
        help=f"messages in INBOX for the initial sync (default {DEFAULT_MESSAGES:,})",
    )
    parser.add_argument(
        "--batch-size",
        type=positive,
        default=DEFAULT_BATCH_SIZE,
        help=f"batch_size of the source (default {DEFAULT_BATCH_SIZE}); the"
        f" initial sync also runs with {SECOND_BATCH_SIZE}",
    )
    parser.add_argument(
        "--check-repeats",
        type=positive,
        default=DEFAULT_CHECK_REPEATS,
        help=f"no-new-mail checks per mailbox size (default {DEFAULT_CHECK_REPEATS})",
    )
    parser.add_argument(
        "--idle-messages",
        type=positive,
        default=DEFAULT_IDLE_MESSAGES,
        help=f"messages appended one by one in the IDLE test (default {DEFAULT_IDLE_MESSAGES})",
    )
    parser.add_argument(
        "--debounce",
        type=float,
        default=0.0,
        help="seconds the IDLE consumer waits before syncing (default 0)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"seed of the pauses between appends (default {DEFAULT_SEED})",
    )
    args = parser.parse_args(argv)
    if args.batch_size > 1000:
        parser.error("--batch-size: the source allows at most 1000")
    return args


def dovecot_version() -> str:
    try:
        done = subprocess.run(
            [str(DOVECOT_BINARY), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    report = Report()
    if not DOVECOT_BINARY.exists():
        sys.exit(f"{DOVECOT_BINARY} is missing: install dovecot-imapd (make test does)")
    report.line(f"CPU count: {os.cpu_count()}")
    report.line(f"Python: {platform.python_version()} ({platform.python_implementation()})")
    report.line(
        f"Dovecot: {dovecot_version()}; messages: {args.messages:,}; "
        f"batch size: {args.batch_size}; IDLE messages: {args.idle_messages}; "
        f"seed: {args.seed}"
    )
    batch_sizes = [args.batch_size]
    if args.batch_size != SECOND_BATCH_SIZE:
        batch_sizes += [SECOND_BATCH_SIZE, args.batch_size]
    started = time.perf_counter()
    COUNTER.install()
    try:
        with tempfile.TemporaryDirectory(prefix="leadhub-imap-bench-") as temp:
            work = Path(temp)
            with Dovecot(work / "dovecot") as server:
                append_seconds = fill(server, "INBOX", 0, args.messages)
                runs = initial_syncs(server, work, args.messages, batch_sizes)
                report.line(f"initial syncs done in {time.perf_counter() - started:.1f} s")

                ledger_path = runs[0].ledger_path
                checks = []
                for size in [s for s in CHECK_SIZES if s < args.messages]:
                    folder = f"Check{size}"
                    server.create_folder(USER, folder)
                    fill(server, folder, 0, size)
                    checks.append(
                        no_new_mail_checks(
                            server, ledger_path, folder, size, args.check_repeats, args.batch_size
                        )
                    )
                checks.append(
                    no_new_mail_checks(
                        server,
                        ledger_path,
                        "INBOX",
                        args.messages,
                        args.check_repeats,
                        args.batch_size,
                    )
                )
                report.line(f"no-new-mail checks done in {time.perf_counter() - started:.1f} s")

                latency = idle_latency(
                    server,
                    ledger_path,
                    args.idle_messages,
                    args.seed,
                    args.messages,
                    args.batch_size,
                    args.debounce,
                )
                report.line(f"IDLE test done in {time.perf_counter() - started:.1f} s")
    finally:
        COUNTER.uninstall()

    untracked = sum(r.commands.untracked for check in checks for r in check.results)
    report.table(
        f"1. Initial sync of {args.messages:,} messages from INBOX into a fresh ledger",
        INITIAL_COLUMNS,
        initial_rows(runs),
        left=("run", "commands"),
    )
    for note in initial_notes(args.messages, append_seconds):
        report.line(note)
    report.table(
        "2. A sync with no new mail, by mailbox size",
        CHECK_COLUMNS,
        check_rows(checks),
        left=("folder", "command sequence"),
    )
    for note in check_notes(args.check_repeats, untracked, checks):
        report.line(note)
    report.table(
        "3. IDLE: append -> raw item committed in the ledger",
        LATENCY_COLUMNS,
        latency_rows(latency),
        left=("interval",),
    )
    for note in latency_notes(latency, args.debounce):
        report.line(note)
    report.line(f"Total wall time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
