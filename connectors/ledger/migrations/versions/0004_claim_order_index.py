"""Unprocessed items are claimed in (received_at, item_id) order: the index
that finds them now holds the item id too, so a claim reads them in order
from the index instead of sorting every pending item (a million rows of one
file share one received_at) for each window it takes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("raw_items_state", table_name="raw_items")
    op.create_index("raw_items_state", "raw_items", ["state", "received_at", "item_id"])


def downgrade() -> None:
    raise NotImplementedError("a store is never downgraded; restore a backup instead")
