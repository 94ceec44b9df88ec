"""The web-form endpoint: `POST /forms/{form}` for website forms and form services.

A submission is committed to the ledger before it is acknowledged (202 with
its id; 200 for the providers that count anything else as a failed delivery),
so a crash right after the answer loses nothing: the next start processes what
is pending. Whatever the body, the answer is a 4xx that says what is wrong or
the post is stored: never a 5xx. A provider's retry (the same submission id, or the
same content within a window) is answered without being stored twice. Every
form has its own secret: a token or an HMAC signature of the raw body,
compared in constant time; a refusal never says which part was wrong.
Processing runs in the background, debounced, so a burst of posts is one run.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from connectors.ledger import Ledger
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


def create_app(settings: Settings, process: Callable[[], None] | None = None) -> FastAPI:
    """The endpoint for every webhook source in `settings`; `process` turns
    stored submissions into leads (debounced, in the background)."""
    forms = {s.form: s for s in settings.sources if isinstance(s, WebhookSourceConfig)}
    web = settings.web
    limiter = RateLimiter(web.requests_per_minute)
    worker = DebouncedWorker(process, web.process_debounce_seconds) if process else None
    Ledger(settings.store, create=True).close()  # create or migrate it now, not at the first post
    ledgers = threading.local()
    # One writer at a time, queued here: SQLite's own busy handler makes a
    # waiting writer sleep and retry in growing steps, which gives a slow tail.
    write_lock = threading.Lock()

    def store(item: RawItem) -> tuple[str, bool]:
        with write_lock:
            return ledger().store_submission(item, web.duplicate_window_seconds)

    def ledger() -> Ledger:
        if not hasattr(ledgers, "ledger"):
            ledgers.ledger = Ledger(settings.store)
        return ledgers.ledger

    def lifespan(app: FastAPI):
        return _Lifespan(worker)

    app = FastAPI(title="LeadHub web forms", version="1", lifespan=lifespan)

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
        item = _raw_item(form, decoded, submission.submission_id)
        item_id, repeat = await run_in_threadpool(store, item)
        if repeat:
            return JSONResponse({"status": "duplicate", "submission_id": item_id},
                                status_code=200)
        if worker:
            worker.notify()
        return JSONResponse({"status": "accepted", "submission_id": item_id},
                            status_code=200 if form.preset in NEEDS_200 else 202)

    return app


class _Lifespan:
    """Starts the processing worker with the server and stops it after."""

    def __init__(self, worker: DebouncedWorker | None):
        self.worker = worker

    async def __aenter__(self) -> None:
        if self.worker:
            self.worker.start()
            self.worker.notify()  # posts stored before a crash are processed now

    async def __aexit__(self, *exc_info) -> None:
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
