"""Prefect flows: they only wire connectors and transforms together.

Prefect reads these settings at import, so they are set here, before any flow
module imports prefect: no analytics, and room for a slow first start of the
temporary local API on a small machine.
"""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
