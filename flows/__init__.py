"""The steps that wire connectors and transforms together (plain functions),
and in deployments.py the Prefect flows that run them on a schedule.

Prefect reads these settings at import, so they are set here, before any flow
module imports prefect: no analytics, room for a slow first start of the
temporary local API on a small machine, and the steps' own log records in
the Prefect UI.
"""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
# The steps log to `leadhub.*`; under a flow those records reach the Prefect UI.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "leadhub")
