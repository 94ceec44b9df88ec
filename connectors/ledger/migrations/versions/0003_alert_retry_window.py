"""Alerts are retried for a time, not a number of attempts: each alert keeps
when its failures began (`failing_since`), and a given-up alert keeps why
(`given_up`), so `leadhub alert replay` can leave alone the ones a crash left
unconfirmed (they may have arrived).

Alerts given up before this revision get their reason from their error text.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

from connectors.ledger.database import Moment

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("failing_since", Moment))
    op.add_column("alerts", sa.Column("given_up", sa.String, nullable=False,
                                      server_default=""))
    op.execute("""
        UPDATE alerts SET given_up = CASE
            WHEN last_error LIKE 'the run stopped while sending it%' THEN 'unconfirmed'
            WHEN last_error LIKE 'channel % is no longer in the config' THEN 'no_channel'
            ELSE 'retries' END
        WHERE state = 'failed'""")


def downgrade() -> None:
    raise NotImplementedError("a store is never downgraded; restore a backup instead")
