"""The web-form endpoint over real HTTP: uvicorn on loopback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import requests
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

from flows.intake import process_pending
from flows.serve import start_web
from leadhub.settings import load_settings
from tests.conditions import wait_until
from tests.store import lock_waits, rows

CASES = Path(__file__).resolve().parents[1] / "cases" / "forms"
SECRET = "form-secret-123"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _config(tmp_path: Path, forms: str, web: str = "", store: str = "leadhub.db") -> Path:
    path = tmp_path / "leadhub.yaml"
    path.write_text(
        f"store: {store}\nweb:\n  port: {_free_port()}\n  process_debounce_seconds: 0.1\n"
        f"{web}sources:\n{forms}", encoding="utf-8")
    return path


# A deadline for background work or a starting process: it ends as soon as that
# is done, and is long because a busy machine can be very slow.
WAIT = 180.0

FORMS = f"""\
  - {{type: webhook, form: site, preset: tilda, secret: {SECRET}, honeypot_fields: [website]}}
  - {{type: webhook, form: typeform, preset: typeform, auth: hmac, secret: {SECRET}}}
  - {{type: webhook, form: webflow, preset: webflow, auth: hmac, secret: {SECRET}}}
  - {{type: webhook, form: tally, preset: tally, auth: hmac, secret: {SECRET}}}
  - {{type: webhook, form: google, preset: google_forms, secret: {SECRET}}}
  - {{type: webhook, form: wp, preset: cf7, secret: {SECRET}}}
  - {{type: webhook, form: any, preset: generic, secret: {SECRET}}}
"""


class Endpoint:
    def __init__(self, config: Path):
        self.settings = load_settings(config)
        self.server = start_web(self.settings)
        self.url = f"http://{self.settings.web.host}:{self.settings.web.port}"

    def post(self, form: str, token: str | None = SECRET, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["X-LeadHub-Token"] = token
        return requests.post(f"{self.url}/forms/{form}", headers=headers, timeout=10, **kwargs)

    def leads(self, wait: float = WAIT) -> list[tuple]:
        """Leads once background processing has caught up."""
        deadline = time.monotonic() + wait
        while True:
            db = sqlite3.connect(self.settings.store, timeout=10)
            pending = db.execute("SELECT COUNT(*) FROM raw_items WHERE state = 'new'").fetchone()[0]
            leads = db.execute("SELECT lead_id, contact_key, phone, email, name, message, source"
                               " FROM leads ORDER BY lead_id").fetchall()
            db.close()
            if not pending or time.monotonic() > deadline:
                return leads
            time.sleep(0.1)

    def items(self) -> list[tuple]:
        db = sqlite3.connect(self.settings.store, timeout=10)
        rows = db.execute("SELECT item_id, state, reason FROM raw_items ORDER BY item_id")
        result = rows.fetchall()
        db.close()
        return result


@pytest.fixture
def endpoint(tmp_path):
    server = Endpoint(_config(tmp_path, FORMS))
    yield server
    server.server.stop()


def _signed(body: bytes, encoding: str = "base64", prefix: str = "",
            timestamp: str | None = None) -> str:
    content = f"{timestamp}:".encode() + body if timestamp else body
    digest = hmac.new(SECRET.encode(), content, hashlib.sha256).digest()
    return prefix + (digest.hex() if encoding == "hex" else base64.b64encode(digest).decode())


def test_health(endpoint):
    response = requests.get(f"{endpoint.url}/healthz", timeout=5)
    assert response.json() == {"status": "ok", "forms": 7}


def test_tilda_form_post_becomes_a_lead(endpoint):
    body = (CASES / "tilda.urlencoded.txt").read_text(encoding="utf-8").strip()
    response = endpoint.post("site", data=body.encode(),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200, response.text  # Tilda asks for exactly 200
    assert response.json()["submission_id"].startswith("form:site:")
    [lead] = endpoint.leads()
    assert lead[2].startswith("+7") and lead[6] in ("Сайт", "Реклама")


@pytest.mark.parametrize(
    ("form", "case", "headers", "status"),
    [
        pytest.param("typeform", "typeform.json", lambda b: {
            "Typeform-Signature": _signed(b, prefix="sha256=")}, 202, id="typeform-signed"),
        pytest.param("tally", "tally.json", lambda b: {"Tally-Signature": _signed(b)}, 202,
                     id="tally-signed"),
        # Webflow counts anything but 200 as a failed delivery and deactivates the webhook
        pytest.param("webflow", "webflow.json", lambda b: {
            "X-Webflow-Timestamp": (stamp := str(int(time.time() * 1000))),
            "X-Webflow-Signature": _signed(b, "hex", timestamp=stamp)}, 200,
            id="webflow-signed-answered-200"),
        pytest.param("google", "google_forms.json", lambda b: {}, 202, id="google-forms-token"),
        pytest.param("wp", "cf7.json", lambda b: {}, 202, id="cf7-token"),
        pytest.param("any", "generic_nested.json", lambda b: {}, 202, id="generic-nested"),
    ],
)
def test_every_preset_becomes_a_lead(endpoint, form, case, headers, status):
    body = (CASES / case).read_bytes()
    response = endpoint.post(form, token=SECRET if form in ("google", "wp", "any") else None,
                             data=body, headers={"Content-Type": "application/json",
                                                 **headers(body)})
    assert response.status_code == status, response.text
    assert response.json()["status"] == "accepted"
    [lead] = endpoint.leads()
    assert lead[2].startswith("+") or "@" in lead[3]


@pytest.mark.parametrize(
    ("form", "token", "extra"),
    [
        pytest.param("site", None, {}, id="missing-token"),
        pytest.param("site", "wrong", {}, id="wrong-token"),
        pytest.param("typeform", None, {"Typeform-Signature": "sha256=AAAA"}, id="bad-signature"),
        pytest.param("typeform", None, {}, id="missing-signature"),
        pytest.param("webflow", None, {"X-Webflow-Timestamp": "1000000000000",
                                       "X-Webflow-Signature": "00"}, id="stale-timestamp"),
    ],
)
def test_refused_without_saying_which_part_was_wrong(endpoint, form, token, extra):
    response = endpoint.post(form, token=token, json={"name": "x", "phone": "89123456789"},
                             headers=extra)
    assert response.status_code == 401
    assert response.json() == {"detail": "unauthorized"}
    assert endpoint.items() == []


def test_signed_webflow_post_replayed_later_is_refused(endpoint):
    body = (CASES / "webflow.json").read_bytes()
    old = str(int(time.time() * 1000) - 3_600_000)
    response = endpoint.post("webflow", token=None, data=body, headers={
        "Content-Type": "application/json", "X-Webflow-Timestamp": old,
        "X-Webflow-Signature": _signed(body, "hex", timestamp=old)})
    assert response.status_code == 401


def test_token_in_the_query_string(endpoint):
    response = requests.post(f"{endpoint.url}/forms/any?token={SECRET}",
                             json={"phone": "8 912 345 67 89"}, timeout=5)
    assert response.status_code == 202


def test_unknown_form_is_404(endpoint):
    assert endpoint.post("nope", json={"phone": "1"}).status_code == 404


def test_provider_retry_is_acknowledged_and_not_stored_twice(endpoint):
    post = {"Name": "Анна", "Phone": "+7 912 345 67 89", "tranid": "777:1", "formid": "f1"}
    first = endpoint.post("site", data=post)
    again = endpoint.post("site", data=post)
    assert (first.json()["status"], again.json()["status"]) == ("accepted", "duplicate")
    assert again.json() == {"status": "duplicate", "submission_id": first.json()["submission_id"]}
    assert len(endpoint.items()) == 1


def test_same_content_without_an_id_is_a_retry_within_the_window(endpoint):
    post = {"your-name": "Олег", "your-tel": "8 903 123 45 67"}
    assert endpoint.post("wp", json=post).status_code == 202
    assert endpoint.post("wp", json=post).json()["status"] == "duplicate"
    assert len(endpoint.items()) == 1


def test_tilda_test_ping_is_answered_and_not_stored(endpoint):
    response = endpoint.post("site", data={"test": "test"})
    assert (response.status_code, response.json()) == (200, {"status": "test"})
    assert endpoint.items() == []


def test_honeypot_quarantines_with_the_reason(endpoint):
    post = {"Name": "Bot", "Phone": "+7 912 000 00 01", "website": "http://spam.example"}
    assert endpoint.post("site", data=post).status_code == 200
    assert endpoint.leads() == []
    [(_, state, reason)] = endpoint.items()
    assert (state, reason) == ("quarantined", "spam: honeypot field 'website' was filled")


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        pytest.param({"data": b"x" * 70_000, "headers": {"Content-Type": "application/json"}},
                     413, id="body-too-large"),
        pytest.param({"data": b"[" * 50 + b"]" * 50,
                      "headers": {"Content-Type": "application/json"}}, 422, id="too-deep"),
        pytest.param({"json": {f"f{i}": "x" for i in range(300)}}, 422, id="too-many-fields"),
        pytest.param({"data": b"{not json", "headers": {"Content-Type": "application/json"}},
                     422, id="broken-json"),
        pytest.param({"data": b"<xml/>", "headers": {"Content-Type": "application/xml"}},
                     415, id="xml"),
        pytest.param({"files": {"cv": ("cv.pdf", b"%PDF", "application/pdf")},
                      "data": {"phone": "1"}}, 415, id="file-upload"),
    ],
)
def test_limits(endpoint, kwargs, status):
    response = endpoint.post("any", **kwargs)
    assert response.status_code == status, response.text
    assert endpoint.items() == []


JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize(
    ("form", "body", "headers", "reason"),
    [
        pytest.param("any", b'{"phone": ' + b"7" * 5000 + b"}", JSON, "more than 4300 digits",
                     id="integer-over-the-4300-digit-limit"),
        pytest.param("any", b"[" * 30_000 + b"]" * 30_000, JSON, "nested 30000 levels deep",
                     id="nested-30000-deep"),
        pytest.param("site", "&".join(f"f{i}=x" for i in range(201)).encode(), FORM,
                     "Too many fields", id="form-post-with-201-fields"),
        pytest.param("site", b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n",
                     {"Content-Type": "multipart/form-data; boundary=b"}, "must be provided",
                     id="multipart-part-without-a-name"),
        pytest.param("site", b"phone=1", {"Content-Type": "multipart/form-data"},
                     "Missing boundary", id="multipart-without-boundary"),
        pytest.param("any", b'{"phone": "1"', JSON, "not valid JSON", id="cut-short-json"),
        pytest.param("any", b'{"phone": "\xff\xfe"}', JSON, "not UTF-8", id="not-utf8"),
    ],
)
def test_hostile_body_gets_422_with_the_reason(endpoint, form, body, headers, reason):
    response = endpoint.post(form, data=body, headers=headers)
    assert response.status_code == 422, response.text
    assert reason in response.json()["detail"]
    assert endpoint.items() == []


@pytest.mark.parametrize(
    ("form", "body", "headers"),
    [
        pytest.param("any", b'{"name": "\\ud800", "phone": "+7 912 345 67 89"}', JSON,
                     id="lone-surrogate-in-a-value"),
        pytest.param("any", b'{"\\udfff": "x", "phone": "+7 912 345 67 89"}', JSON,
                     id="lone-surrogate-in-a-key"),
        pytest.param("site", b'{"tranid": "\\ud83d", "Phone": "+7 912 345 67 89"}', JSON,
                     id="lone-surrogate-in-the-submission-id"),
        pytest.param("any", b'{"name": "a\\u0000b", "phone": "+7 912 345 67 89"}', JSON,
                     id="nul-in-a-value"),
    ],
)
def test_post_with_broken_characters_is_stored_and_becomes_a_lead(endpoint, form, body,
                                                                  headers):
    """Half an emoji (a site cutting text in the middle of a surrogate pair) is
    valid JSON: the post is stored, never a 500, and its lead reaches the CRM."""
    response = endpoint.post(form, data=body, headers=headers)
    assert response.status_code in (200, 202), response.text
    [lead] = endpoint.leads()
    assert lead[2] == "+79123456789"


def test_rate_limit_per_client(tmp_path):
    server = Endpoint(_config(tmp_path, FORMS, web="  requests_per_minute: 5\n"))
    try:
        codes = [server.post("any", json={"phone": f"8912000000{i}"}).status_code
                 for i in range(7)]
        assert codes == [202] * 5 + [429] * 2
        assert server.post("any", json={"phone": "1"}).headers["Retry-After"] == "60"
    finally:
        server.server.stop()


def test_200_concurrent_submissions(tmp_path):
    server = Endpoint(_config(tmp_path, FORMS, web="  requests_per_minute: 1000\n"))
    try:
        def submit(i: int) -> int:
            person = i % 150  # 150 people, 50 of them write twice
            return server.post("any", json={"id": f"s{i}", "name": f"Клиент {person}",
                                            "phone": f"+7 912 {person:07d}",
                                            "message": f"заявка {i}"}).status_code

        with ThreadPoolExecutor(max_workers=20) as pool:
            codes = list(pool.map(submit, range(200)))
        assert codes == [202] * 200
        assert len(server.items()) == 200
        leads = server.leads()
        assert len(leads) == 200
        assert len({lead[1] for lead in leads}) == 150
    finally:
        server.server.stop()


KILLABLE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import uvicorn
    from connectors.webhook import create_app
    from leadhub.settings import load_settings
    settings = load_settings(Path(sys.argv[1]))
    # processing never gets to run: the process dies right after answering
    app = create_app(settings, process=lambda: time.sleep(3600))
    uvicorn.run(app, host="127.0.0.1", port=settings.web.port, log_level="warning")
    """
)


def test_killed_right_after_202_is_processed_on_the_next_start(tmp_path):
    config = _config(tmp_path, FORMS)
    settings = load_settings(config)
    child = subprocess.Popen([sys.executable, "-c", KILLABLE, str(config)],
                             env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    url = f"http://127.0.0.1:{settings.web.port}"
    try:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                requests.get(f"{url}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        response = requests.post(f"{url}/forms/any", headers={"X-LeadHub-Token": SECRET},
                                 json={"name": "Вера", "phone": "+7 916 555 44 33"}, timeout=5)
        assert response.status_code == 202
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    restarted = Endpoint(config)
    try:
        [lead] = restarted.leads()
        assert lead[2] == "+79165554433"
    finally:
        restarted.server.stop()


def test_sweep_processes_what_the_endpoint_stored(tmp_path):
    """Without the background worker (it died), the scheduled sweep does it."""
    import uvicorn

    from connectors.webhook import create_app
    from flows.serve import WebServer

    settings = load_settings(_config(tmp_path, FORMS))
    server = WebServer(uvicorn.Config(create_app(settings, process=None),
                                      host="127.0.0.1", port=settings.web.port))
    server.start()
    try:
        response = requests.post(f"http://127.0.0.1:{settings.web.port}/forms/any",
                                 headers={"X-LeadHub-Token": SECRET},
                                 json={"phone": "+7 903 111 22 33", "name": "Ян"}, timeout=5)
        assert response.status_code == 202
    finally:
        server.stop()
    assert process_pending(settings)["new_leads"] == 1


def test_openapi_documents_the_endpoint(endpoint):
    spec = requests.get(f"{endpoint.url}/openapi.json", timeout=5).json()
    post = spec["paths"]["/forms/{form_id}"]["post"]
    assert {"202", "401", "404", "413", "415", "422", "429"} <= set(post["responses"])
    assert json.dumps(spec)  # serialisable


def test_factory_for_process_managers(tmp_path, monkeypatch):
    from connectors.webhook import app_for

    config = _config(tmp_path, FORMS)
    monkeypatch.setenv("LEADHUB_CONFIG", str(config))
    assert app_for().title == "LeadHub web forms"


# --- group commit -------------------------------------------------------------------------

BUSY_WEB = "  requests_per_minute: 100000\n"


class Served:
    """The endpoint in this process without background processing, so what
    its writer commits is all that is written to the store."""

    def __init__(self, config: Path):
        import uvicorn

        from connectors.webhook import create_app
        from flows.serve import WebServer

        self.settings = load_settings(config)
        app = create_app(self.settings, process=None)
        self.writer = app.state.writer
        self.server = WebServer(uvicorn.Config(app, host="127.0.0.1",
                                               port=self.settings.web.port, log_level="warning"))
        self.server.start()
        self.url = f"http://127.0.0.1:{self.settings.web.port}/forms/any"

    def post(self, fields: dict) -> requests.Response:
        return requests.post(self.url, headers={"X-LeadHub-Token": SECRET}, json=fields,
                             timeout=30)

    def item_ids(self) -> list[str]:
        return sorted(row[0] for row in rows(self.settings.store,
                                             "SELECT item_id FROM raw_items"))

    def writing_one_and_queued(self, queued: int) -> bool:
        """The writer has taken one post (and waits for the store), `queued` wait behind it."""
        return self.writer.pending() == queued + 1 and self.writer.queued() == queued


@pytest.fixture
def served(tmp_path):
    server = Served(_config(tmp_path, FORMS, web=BUSY_WEB))
    yield server
    server.server.stop()


@contextmanager
def _store_held(store: str):
    """Another writer holds the store, as a long processing run does: the
    endpoint's writer waits at its next write until the block ends."""
    if "://" in store:
        with psycopg.connect(store) as held:
            held.execute("LOCK TABLE raw_items IN EXCLUSIVE MODE")  # reads go on, writes wait
            yield
            held.rollback()
        return
    held = sqlite3.connect(store, isolation_level=None, timeout=30)
    try:
        held.execute("BEGIN IMMEDIATE")
        yield
        held.execute("ROLLBACK")
    finally:
        held.close()


@contextmanager
def _write_commits():
    """Every write transaction committed in this process (fsynced: synchronous=FULL)."""
    commits = []

    def count(connection):
        if connection.get_execution_options().get("leadhub_write"):
            commits.append(connection)

    event.listen(Engine, "commit", count)
    try:
        yield commits
    finally:
        event.remove(Engine, "commit", count)


def _phone(number: int) -> str:
    return f"+7 912 {number:07d}"


def test_posts_arriving_together_share_one_commit(served):
    assert served.post({"phone": _phone(0)}).status_code == 202  # the writer's store is open
    with _write_commits() as commits, ThreadPoolExecutor(20) as pool:
        with _store_held(served.settings.store):
            answers = [pool.submit(served.post, {"id": f"s{n}", "phone": _phone(n)})
                       for n in range(1, 21)]
            wait_until(lambda: served.writer.pending() == 20)  # none can be answered yet
        codes = [answer.result().status_code for answer in answers]
    assert codes == [202] * 20
    # the posts the writer took before it found the store busy, then all the others
    assert len(commits) <= 2
    assert len(served.item_ids()) == 21


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"id": "777", "phone": "+7 912 345 67 89"}, id="same-submission-id"),
        pytest.param({"name": "Анна", "phone": "+7 912 345 67 89"},
                     id="same-content-without-an-id"),
    ],
)
def test_two_copies_in_one_group_one_stored_the_other_answered_as_a_repeat(served, fields):
    with ThreadPoolExecutor(3) as pool:
        with _store_held(served.settings.store):
            first = pool.submit(served.post, {"phone": _phone(1)})
            wait_until(lambda: served.writing_one_and_queued(0))
            copies = [pool.submit(served.post, fields) for _ in range(2)]
            wait_until(lambda: served.writing_one_and_queued(2))  # the next group: both
        answers = [copy.result() for copy in copies]
    assert first.result().status_code == 202
    assert sorted((a.status_code, a.json()["status"]) for a in answers) == [
        (200, "duplicate"), (202, "accepted")]
    assert answers[0].json()["submission_id"] == answers[1].json()["submission_id"]
    assert len(served.item_ids()) == 2


def test_a_full_queue_is_answered_503_with_retry_after(tmp_path):
    served = Served(_config(tmp_path, FORMS, web=BUSY_WEB + "  write_queue_size: 2\n"))
    try:
        with ThreadPoolExecutor(3) as pool:
            with _store_held(served.settings.store):
                waiting = [pool.submit(served.post, {"phone": _phone(1)})]
                wait_until(lambda: served.writing_one_and_queued(0))
                waiting += [pool.submit(served.post, {"phone": _phone(n)}) for n in (2, 3)]
                wait_until(lambda: served.writing_one_and_queued(2))
                refused = served.post({"phone": _phone(4)})  # answered while the store is held
            codes = [answer.result().status_code for answer in waiting]
        assert (refused.status_code, refused.headers["Retry-After"]) == (503, "1")
        assert codes == [202] * 3
        assert len(served.item_ids()) == 3
    finally:
        served.server.stop()


def test_a_post_the_store_refuses_fails_alone_in_its_group(tmp_path, postgres):
    store = postgres.new_database()
    served = Served(_config(tmp_path, FORMS, web=BUSY_WEB, store=store))
    try:
        posts = [{"id": "good-1", "phone": _phone(2)},
                 {"id": "nul\u0000id", "phone": _phone(3)},  # PostgreSQL text has no NUL
                 {"id": "good-2", "phone": _phone(4)}]
        with ThreadPoolExecutor(4) as pool:
            with _store_held(store):
                first = pool.submit(served.post, {"id": "first", "phone": _phone(1)})
                wait_until(lambda: served.writing_one_and_queued(0))
                group = []
                for n, fields in enumerate(posts, start=1):
                    group.append(pool.submit(served.post, fields))
                    wait_until(lambda n=n: served.writing_one_and_queued(n))  # in this order
            answers = [answer.result() for answer in group]
        assert first.result().status_code == 202
        assert [a.status_code for a in answers] == [202, 422, 202]
        assert "NUL" in answers[1].json()["detail"]
        assert served.item_ids() == ["form:any:first", "form:any:good-1", "form:any:good-2"]
    finally:
        served.server.stop()


def test_two_replicas_on_one_postgresql_store_keep_a_post_sent_to_both_once(tmp_path, postgres):
    store = postgres.new_database()
    replicas = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            replicas.append(Served(_config(tmp_path / name, FORMS, web=BUSY_WEB, store=store)))
        for number, replica in enumerate(replicas):  # each writer has its store open
            assert replica.post({"phone": _phone(number)}).status_code == 202
        post = {"name": "Анна", "phone": "+7 912 345 67 89"}  # no id: the same content twice
        with ThreadPoolExecutor(2) as pool:
            with _store_held(store):
                answers = [pool.submit(replica.post, post) for replica in replicas]
                wait_until(lambda: lock_waits(store) == 2)  # both writers are at it
            answered = [answer.result() for answer in answers]
        assert sorted((a.status_code, a.json()["status"]) for a in answered) == [
            (200, "duplicate"), (202, "accepted")]
        assert answered[0].json()["submission_id"] == answered[1].json()["submission_id"]
        assert len(replicas[0].item_ids()) == 3
    finally:
        for replica in replicas:
            replica.server.stop()


def test_every_post_answered_before_a_kill_9_is_in_the_store(tmp_path):
    """16 clients post without pause; the server is killed once 100 posts are
    answered, while groups are being written: each answered post is there."""
    config = _config(tmp_path, FORMS, web=BUSY_WEB)
    settings = load_settings(config)
    child = subprocess.Popen([sys.executable, "-c", KILLABLE, str(config)],
                             env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    url = f"http://127.0.0.1:{settings.web.port}"
    answered: list[str] = []
    stop = threading.Event()

    def client(number: int) -> None:
        with requests.Session() as session:
            for n in itertools.count():
                if stop.is_set():
                    return
                try:
                    response = session.post(f"{url}/forms/any", timeout=10,
                                            headers={"X-LeadHub-Token": SECRET},
                                            json={"id": f"c{number}-{n}",
                                                  "phone": _phone(number * 10_000 + n)})
                except requests.RequestException:
                    return  # the server is gone
                if response.status_code in (200, 202):
                    answered.append(response.json()["submission_id"])

    clients = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    try:
        wait_until(lambda: _answers_health(url), timeout=60, what="the server start")
        for thread in clients:
            thread.start()
        wait_until(lambda: len(answered) >= 100, timeout=60, what="100 answers")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        stop.set()
        for thread in clients:
            if thread.is_alive():
                thread.join(timeout=30)
    stored = {row[0] for row in rows(settings.store, "SELECT item_id FROM raw_items")}
    assert len(answered) >= 100
    assert set(answered) - stored == set()


def _answers_health(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


def test_a_group_the_store_fails_answers_each_post_and_the_writer_goes_on():
    from connectors.webhook import GroupWriter

    calls = []

    def store_group(items):
        calls.append([item.item_id for item in items])
        if len(calls) == 1:
            raise OperationalError("COMMIT", {}, sqlite3.OperationalError("disk I/O error"))
        return [(item.item_id, False) for item in items]

    writer = GroupWriter(store_group, capacity=10)
    try:
        failed = writer.submit(_raw("form:any:1"))
        with pytest.raises(OperationalError, match="disk I/O error"):
            failed.result(timeout=30)
        assert writer.submit(_raw("form:any:2")).result(timeout=30) == ("form:any:2", False)
    finally:
        writer.stop()
    assert calls == [["form:any:1"], ["form:any:2"]]


def _raw(item_id: str):
    from datetime import UTC, datetime

    from transforms.records import RawItem

    return RawItem(item_id=item_id, source="form-any", kind="form", payload=b"{}",
                   received_at=datetime.now(UTC))
