"""The web-form endpoint: `POST /forms/{form}` for website forms and form services.

A submission is committed to the ledger before it is acknowledged (202 with
its id; 200 for the providers that count anything else as a failed delivery),
so a crash right after the answer loses nothing: the next start processes what
is pending. One writer thread stores the posts: what arrived while it wrote
the last group is the next group, one transaction and one fsync'd commit for
all of them (group commit), and each post is answered once its group is
committed; a full queue is answered 503 with Retry-After. Whatever the body,
the answer is a 4xx that says what is wrong or the post is stored: never a
5xx. A provider's retry (the same submission id, or the same content within a
window) is answered without being stored twice, also when both copies are in
one group. Every form has its own secret: a token or an HMAC signature of the
raw body, compared in constant time; a refusal never says which part was wrong.
Processing runs in the background, debounced, so a burst of posts is one run.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import exc
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from connectors.ledger import Ledger
from connectors.ledger.items import SubmissionOutcome
from leadhub.errors import FatalError
from leadhub.settings import Settings, WebhookSourceConfig
from transforms.form_presets import FormPayloadError, parse_form_post
from transforms.json_input import JsonInputError, json_bytes, load_json, replace_lone_surrogates
from transforms.records import RawItem

log = logging.getLogger("leadhub.webhook")

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Providers whose documentation counts any answer but 200 as a failed delivery
# (Webflow retries, then deactivates the webhook; Tilda's docs ask for 200 OK):
# a stored post is answered 200 for them, 202 for the others.
NEEDS_200 = frozenset({"tilda", "webflow"})
# Posts in one transaction at most: a group's commit answers all of them, so
# this also bounds how long the last one of a large group waits.
MAX_GROUP = 256


class Accepted(BaseModel):
    status: Literal["accepted", "duplicate"]
    submission_id: str


class TestPing(BaseModel):
    status: Literal["test"]


class Health(BaseModel):
    status: Literal["ok"]
    forms: int


class Problem(BaseModel):
    detail: str


_PROBLEMS = {
    401: {"model": Problem, "description": "missing or wrong secret"},
    404: {"model": Problem, "description": "no such form"},
    413: {"model": Problem, "description": "body over the size limit"},
    415: {"model": Problem, "description": "not JSON or a form"},
    422: {"model": Problem, "description": "a body LeadHub cannot read as this form's post"},
    429: {"model": Problem, "description": "too many requests from this address"},
    503: {"model": Problem, "description": "more posts than the store keeps up with, or the "
                                           "store failed; not stored, try again (Retry-After)"},
}


class RateLimiter:
    """At most `per_minute` requests per client address in any 60 s."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            recent = self._seen[client]
            while recent and now - recent[0] > 60:
                recent.popleft()
            if len(recent) >= self.per_minute:
                return False
            recent.append(now)
            return True


class DebouncedWorker:
    """Runs `work` in a background thread shortly after the last `notify`."""

    def __init__(self, work: Callable[[], None], debounce: float):
        self.work = work
        self.debounce = debounce
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="form-processing", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                return
            time.sleep(self.debounce)
            self._wake.clear()
            try:
                self.work()
            except Exception:  # the scheduled sweep retries; the server stays up
                log.exception("processing new submissions failed; the next sweep retries")


class QueueFull(Exception):
    """As many posts as the queue holds are waiting for the store."""


class GroupWriter:
    """The one thread that writes web-form posts to the store.

    A post waits in a bounded queue with a future of its own. The thread takes
    every post that has arrived (up to `max_group`; it never waits for more),
    stores them with one call of `store_group` (one transaction), and only then
    resolves each post's future with its own outcome. While it writes, the next
    posts queue up and become the next group: under load a commit serves many
    posts, and one post alone is written at once."""

    def __init__(self, store_group: Callable[[list[RawItem]], Sequence[SubmissionOutcome]],
                 capacity: int, max_group: int = MAX_GROUP):
        self.store_group = store_group
        self.max_group = max_group
        self.groups = 0  # transactions the writer ran, for benchmarks and tests
        self._queue: queue.Queue[tuple[RawItem, Future] | None] = queue.Queue(capacity)
        self._unanswered = 0
        self._lock = threading.Lock()  # for the thread, the stop flag and the count
        self._thread: threading.Thread | None = None
        self._stopping = False

    def submit(self, item: RawItem) -> Future:
        """Queue a post; its future gives `(item id, repeat)` once committed,
        or the error that kept it out. QueueFull when the queue is full. The
        thread starts with the first post (again after a `stop`)."""
        future: Future = Future()
        with self._lock:
            if self._stopping:
                raise QueueFull("the endpoint is stopping")
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="form-writer",
                                                daemon=True)
                self._thread.start()
            try:
                self._queue.put_nowait((item, future))
            except queue.Full:
                raise QueueFull(f"{self._queue.maxsize} posts are waiting for the store"
                                ) from None
            self._unanswered += 1
        return future

    def queued(self) -> int:
        """Posts waiting for the writer (not in the group it is writing)."""
        return self._queue.qsize()

    def pending(self) -> int:
        """Posts not answered yet: queued, or in the group being written."""
        with self._lock:
            return self._unanswered

    def stop(self) -> None:
        """Store what is queued, then end the thread."""
        with self._lock:
            thread = self._thread
            if thread is None or not thread.is_alive():
                return
            self._stopping = True
        self._queue.put(None)
        thread.join(timeout=60)
        with self._lock:
            self._stopping = False

    def _run(self) -> None:
        while True:
            group, last = self._next_group()
            if group:
                self._write(group)
            if last:
                return

    def _next_group(self) -> tuple[list[tuple[RawItem, Future]], bool]:
        """Block for the first post, then take what else is there; True when
        the stop marker came."""
        entry = self._queue.get()
        group = []
        while entry is not None:
            if entry[1].set_running_or_notify_cancel():
                group.append(entry)
            else:  # its client is gone: it never got an answer and will retry
                self._answered(1)
            if len(group) >= self.max_group:
                return group, False
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                return group, False
        return group, True

    def _write(self, group: list[tuple[RawItem, Future]]) -> None:
        items = [item for item, _ in group]
        try:
            outcomes = list(self.store_group(items))
        except Exception as error:  # every post of the group is answered 503
            _log_store_failure(error, len(group))
            outcomes = [error] * len(group)
        else:
            _log_refusals(items, outcomes)
        self.groups += 1
        for (_, future), outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        self._answered(len(group))

    def _answered(self, posts: int) -> None:
        with self._lock:
            self._unanswered -= posts


def _log_store_failure(error: Exception, posts: int) -> None:
    if isinstance(error, exc.SQLAlchemyError | FatalError):
        # the message only: a statement's parameters would carry phones and emails
        log.error("storing %d web-form post(s) failed, answered 503: %s", posts,
                  _store_message(error))
    else:
        log.exception("storing %d web-form post(s) failed, answered 503", posts)


def _log_refusals(items: list[RawItem], outcomes: list[SubmissionOutcome]) -> None:
    for item, outcome in zip(items, outcomes, strict=True):
        if isinstance(outcome, Exception):
            log.warning("a post to %s was not stored: %s", item.source, _store_message(outcome))


def _store_message(error: Exception) -> str:
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


def create_app(settings: Settings, process: Callable[[], None] | None = None) -> FastAPI:
    """The endpoint for every webhook source in `settings`; `process` turns
    stored submissions into leads (debounced, in the background)."""
    forms = {s.form: s for s in settings.sources if isinstance(s, WebhookSourceConfig)}
    web = settings.web
    limiter = RateLimiter(web.requests_per_minute)
    worker = DebouncedWorker(process, web.process_debounce_seconds) if process else None
    Ledger(settings.store, create=True).close()  # create or migrate it now, not at the first post
    ledgers = threading.local()

    def ledger() -> Ledger:
        if not hasattr(ledgers, "ledger"):
            ledgers.ledger = Ledger(settings.store)
        return ledgers.ledger

    def store_group(items: list[RawItem]) -> list[SubmissionOutcome]:
        return ledger().store_submissions(items, web.duplicate_window_seconds)

    # One writer thread, so posts queue here rather than in SQLite's busy
    # handler (a waiting writer sleeps and retries in growing steps there).
    writer = GroupWriter(store_group, web.write_queue_size,
                         MAX_GROUP if web.group_commit else 1)

    def lifespan(app: FastAPI):
        return _Lifespan(writer, worker)

    app = FastAPI(title="LeadHub web forms", version="1", lifespan=lifespan)
    app.state.writer = writer

    @app.get("/healthz", response_model=Health)
    def healthz() -> Health:
        ledger().schema_version()  # the store answers
        return Health(status="ok", forms=len(forms))

    @app.post(
        "/forms/{form_id}",
        status_code=202,
        response_model=Accepted,
        responses={200: {"model": Accepted | TestPing,
                         "description": "stored, for a provider that needs 200 (Tilda, "
                                        "Webflow); a repeat; or a provider's test ping"},
                   **_PROBLEMS},
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
        }}},
    )
    async def submit(
        request: Request,
        form_id: str = PathParam(description="the form's id in the config",
                                 examples=sorted(forms) or ["site"]),
    ):
        form = forms.get(form_id)
        if form is None:
            raise HTTPException(404, f"no form {form_id!r} here")
        if not limiter.allow(_client_address(request, web.trusted_proxies)):
            raise HTTPException(429, "too many requests; try again in a minute",
                                headers={"Retry-After": "60"})
        body = await _read_limited(request, web.max_body_bytes)
        if not _authorized(form, request, body):
            raise HTTPException(401, "unauthorized")
        decoded = await _decode(request, body, web.max_json_depth, web.max_fields)
        try:
            submission = parse_form_post(form.preset, decoded)
        except FormPayloadError as error:
            raise HTTPException(422, str(error)) from None
        if submission.is_test:
            return JSONResponse({"status": "test"}, status_code=200)
        item_id, repeat = await _store(writer, _raw_item(form, decoded, submission.submission_id))
        if repeat:
            return JSONResponse({"status": "duplicate", "submission_id": item_id},
                                status_code=200)
        if worker:
            worker.notify()
        return JSONResponse({"status": "accepted", "submission_id": item_id},
                            status_code=200 if form.preset in NEEDS_200 else 202)

    return app


async def _store(writer: GroupWriter, item: RawItem) -> tuple[str, bool]:
    """The post's outcome once its group is committed; 422 when the store
    refuses its content, 503 when the queue is full or the store failed."""
    try:
        future = writer.submit(item)
    except QueueFull:
        raise HTTPException(503, "more posts than the store keeps up with; try again in a"
                            " second", headers={"Retry-After": "1"}) from None
    try:
        return await asyncio.wrap_future(future)
    except (exc.DataError, exc.IntegrityError) as error:  # a retry would be refused too
        raise HTTPException(422, "the store cannot keep this post: "
                            + _store_message(error)) from None
    except Exception:  # the writer logged it
        raise HTTPException(503, "the store is not answering; try again later",
                            headers={"Retry-After": "5"}) from None


class _Lifespan:
    """Starts the processing worker with the server; after it, stores what is
    still queued and stops the worker."""

    def __init__(self, writer: GroupWriter, worker: DebouncedWorker | None):
        self.writer = writer
        self.worker = worker

    async def __aenter__(self) -> None:
        if self.worker:
            self.worker.start()
            self.worker.notify()  # posts stored before a crash are processed now

    async def __aexit__(self, *exc_info) -> None:
        await run_in_threadpool(self.writer.stop)
        if self.worker:
            await run_in_threadpool(self.worker.stop)


def _client_address(request: Request, trusted_proxies: list[str]) -> str:
    direct = request.client.host if request.client else "unknown"
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and direct in trusted_proxies:
        return forwarded.split(",")[0].strip()
    return direct


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body over {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # starlette's form parser reads the body from here
    return body


def _authorized(form: WebhookSourceConfig, request: Request, body: bytes) -> bool:
    if form.auth == "none":
        return True
    secret = form.secret.get_secret_value().encode()
    if form.auth == "token":
        given = request.headers.get(form.token_header) or request.query_params.get(
            form.token_param) or ""
        return hmac.compare_digest(given.encode(), secret)
    return _signature_valid(form, request, body, secret)


def _signature_valid(
    form: WebhookSourceConfig, request: Request, body: bytes, secret: bytes
) -> bool:
    given = request.headers.get(form.signature_header, "")
    if not given.startswith(form.signature_prefix):
        return False
    timestamp = ""
    if form.timestamp_header:
        timestamp = request.headers.get(form.timestamp_header, "")
        if not _fresh(timestamp, form.timestamp_tolerance_seconds):
            return False
    head, _, tail = form.signed_content.partition("{body}")
    signed = head.replace("{timestamp}", timestamp).encode() + body + tail.replace(
        "{timestamp}", timestamp).encode()
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    expected = digest.hex() if form.signature_encoding == "hex" else base64.b64encode(
        digest).decode()
    return hmac.compare_digest(given[len(form.signature_prefix):].encode(), expected.encode())


def _fresh(timestamp: str, tolerance: int) -> bool:
    """Replay protection: the signed time must be near now (seconds or ms)."""
    if not timestamp.isdigit():
        return False
    moment = int(timestamp)
    if moment > 10**11:
        moment //= 1000
    return abs(time.time() - moment) <= tolerance


async def _decode(request: Request, body: bytes, max_depth: int, max_fields: int) -> object:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in FORM_TYPES:
        return await _form_pairs(request, max_fields)
    if content_type not in ("application/json", "text/plain", "") and not content_type.endswith(
        "+json"
    ):
        raise HTTPException(415, f"send JSON or a form, not {content_type}")
    depth = _json_depth(body)
    if depth > max_depth:
        raise HTTPException(422, f"JSON nested {depth} levels deep; at most {max_depth}")
    try:
        decoded = load_json(body, max_depth)
    except JsonInputError as error:
        raise HTTPException(422, str(error)) from None
    if _leaf_count(decoded) > max_fields:
        raise HTTPException(422, f"more than {max_fields} fields")
    return decoded


async def _form_pairs(request: Request, max_fields: int) -> list[tuple[str, str]]:
    try:
        form = await request.form(max_files=max_fields, max_fields=max_fields)
    except MultiPartException as error:
        raise HTTPException(422, f"cannot read the form: {error.message}") from None
    except StarletteHTTPException as error:  # the framework's 400 for the same problems
        raise HTTPException(422, f"cannot read the form: {error.detail}") from None
    pairs = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            await form.close()
            raise HTTPException(415, f"file uploads are not accepted (field {name!r})")
        pairs.append((name, value))
    return pairs


def _json_depth(body: bytes) -> int:
    """Nesting depth measured on the text, before parsing: a 64 KB run of `[`
    would otherwise reach Python's recursion limit inside json.loads."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _leaf_count(value: object) -> int:
    if isinstance(value, dict):
        return sum(_leaf_count(v) for v in value.values())
    if isinstance(value, list):
        return sum(_leaf_count(v) for v in value)
    return 1


def _raw_item(form: WebhookSourceConfig, decoded: object, submission_id: str) -> RawItem:
    received = datetime.now(UTC)
    payload = json_bytes(decoded)
    submission_id = replace_lone_surrogates(submission_id)  # an id is stored as text
    if submission_id:
        item_id = f"form:{form.form}:{submission_id}"
    else:
        digest = hashlib.sha256(payload).hexdigest()[:16]
        item_id = f"form:{form.form}:{digest}-{received.strftime('%Y%m%d%H%M%S%f')}"
    return RawItem(
        item_id=item_id, source=form.name, kind="form", payload=payload, received_at=received,
        meta={"form": form.form, "preset": form.preset, "webhook": "1"},
    )


def app_for() -> FastAPI:
    """The app as `uvicorn --factory connectors.webhook:app_for` loads it: the
    config from LEADHUB_CONFIG, the store optionally from LEADHUB_DB."""
    import os

    from flows.intake import process_then_follow_up
    from leadhub.settings import load_settings

    config = os.environ.get("LEADHUB_CONFIG")
    if not config:
        raise FatalError("set LEADHUB_CONFIG to the config file of the web forms")
    settings = load_settings(Path(config), store=os.environ.get("LEADHUB_DB"))
    return create_app(settings, process=lambda: process_then_follow_up(settings))
