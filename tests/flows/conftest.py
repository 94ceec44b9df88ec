"""The flow tests use the same real Dovecot as the connector tests."""

from tests.connectors.conftest import dovecot, idle_entered  # noqa: F401  (fixtures, by name)
