"""The CRM is the record both ways: people's values kept in the store's own
columns (a contact's status, owner and notes; a lead's owner, notes, amount
and loss reason; a task's owner and notes), the corrections people made to a
contact's fields, where a contact, lead or task came from (a row a person
typed in a sink), and every change of a lead's stage with its time.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from connectors.ledger.database import Moment, Money

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _text(name: str) -> sa.Column:
    return sa.Column(name, sa.Text, nullable=False, server_default="")


def upgrade() -> None:
    with op.batch_alter_table("contacts") as table:
        # "" for LeadHub's own; "sink:airtable:recXXX" for a row a person typed
        table.add_column(_text("origin"))
        # the fields a person corrected in the CRM, and their values (JSON)
        table.add_column(sa.Column("corrected", sa.Text, nullable=False, server_default="{}"))
        table.add_column(_text("status"))
        table.add_column(_text("owner"))
        table.add_column(_text("notes"))
    with op.batch_alter_table("leads") as table:
        table.add_column(_text("origin"))
        table.add_column(_text("owner"))
        table.add_column(_text("notes"))
        table.add_column(sa.Column("amount", Money))
        table.add_column(_text("loss_reason"))
    with op.batch_alter_table("tasks") as table:
        table.add_column(_text("origin"))
        table.add_column(_text("owner"))
        table.add_column(_text("notes"))
    op.create_table(
        "lead_stages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("lead_id", sa.String, nullable=False),
        sa.Column("stage", sa.Text, nullable=False),
        _text("reason"),
        sa.Column("changed_at", Moment, nullable=False),
        # leadhub | sink:NAME (a person in that CRM)
        sa.Column("changed_by", sa.String, nullable=False),
    )
    op.create_index("lead_stages_lead", "lead_stages", ["lead_id", "changed_at"])
    # every lead stored so far starts its history at the stage it has now
    op.execute("INSERT INTO lead_stages (lead_id, stage, reason, changed_at, changed_by)"
               " SELECT lead_id, stage, '', received_at, 'leadhub' FROM leads"
               " WHERE stage <> ''")


def downgrade() -> None:
    raise NotImplementedError("a store is never downgraded; restore a backup instead")
