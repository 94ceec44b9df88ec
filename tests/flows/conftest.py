"""The flow tests use the same real Dovecot as the connector tests."""

from tests.connectors.conftest import dovecot  # noqa: F401  (a fixture, used by name)
