"""Items keep the order they were stored in (`arrival`), and a claim takes
them in (received_at, arrival, item_id) order: a file's rows all share one
received_at, and their item ids end in the row number as text (`…:10` before
`…:2`), so batches were cut from that text order and which contacts a file's
rows ended on depended on the batch size. Items stored before keep arrival 0
and go by item id as before.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a constant default: SQLite and PostgreSQL add the column without
    # rewriting the table's rows
    op.add_column("raw_items", sa.Column("arrival", sa.BigInteger, nullable=False,
                                         server_default="0"))
    op.drop_index("raw_items_state", table_name="raw_items")
    op.create_index("raw_items_state", "raw_items",
                    ["state", "received_at", "arrival", "item_id"])
    op.create_index("raw_items_arrival", "raw_items", ["arrival"])


def downgrade() -> None:
    raise NotImplementedError("a store is never downgraded; restore a backup instead")
