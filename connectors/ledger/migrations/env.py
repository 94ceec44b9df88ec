"""Alembic's entry point for the store's migrations. LeadHub runs them itself
(connectors/ledger/migrate.py) on a connection it holds; a developer makes a
new revision with `leadhub store revision "what changes"` (autogenerate
against connectors/ledger/schema.py)."""

from alembic import context

from connectors.ledger.database import VERSION_TABLE
from connectors.ledger.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    # SQLite cannot alter most columns in place: Alembic rebuilds the table.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_server_default=True,
)
with context.begin_transaction():
    context.run_migrations()
