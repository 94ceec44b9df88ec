"""The flow tests use the same real Dovecot as the connector tests; the
scale-out tests a real Prefect server on the tests' PostgreSQL."""

import pytest

from tests.conftest import missing_server
from tests.connectors.conftest import dovecot, idle_entered  # noqa: F401  (fixtures, by name)


@pytest.fixture
def cluster(postgres):
    """A Prefect server (its database in the tests' PostgreSQL) for workers to join."""
    from tests.prefect_server import PrefectServer, asyncpg_url

    server = PrefectServer(asyncpg_url(postgres.new_database()))
    try:
        server.start()
    except (RuntimeError, OSError) as error:
        server.stop()
        missing_server(f"a Prefect server cannot start here: {error}")
    yield server
    server.stop()
