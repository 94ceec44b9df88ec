"""Property-based: whatever the OpenAPI spec allows, the endpoint never answers 500."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from connectors.webhook import create_app
from leadhub.settings import load_settings

_folder = Path(tempfile.mkdtemp(prefix="leadhub-openapi-"))
(_folder / "leadhub.yaml").write_text(
    "store: leadhub.db\nweb:\n  requests_per_minute: 100000\nsources:\n"
    "  - {type: webhook, form: site, preset: tilda, auth: none}\n"
    "  - {type: webhook, form: typeform, preset: typeform, auth: hmac, secret: s3cret}\n"
    "  - {type: webhook, form: open, preset: generic, auth: none}\n",
    encoding="utf-8",
)
app = create_app(load_settings(_folder / "leadhub.yaml"), process=None)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    case.call_and_validate(checks=[not_a_server_error])
