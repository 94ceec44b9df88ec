"""The store ("ledger"): every raw item first, then contacts and their
identities, leads, per-sink sync state, source checkpoints, alerts and tasks.

SQLite by default (`store: leadhub.db`), PostgreSQL to share one store
between several workers (`store: postgresql://user@host/db`), through one
SQLAlchemy Core layer with Alembic migrations. Each concern has its module;
`Ledger` is all of them over one engine.

A raw item and the checkpoint that moves past it are committed in one
transaction; inserting an item that is already there changes nothing.
"""

from connectors.ledger.alerts import Alerts
from connectors.ledger.contacts import Contacts
from connectors.ledger.database import StoreLocation, locate
from connectors.ledger.decisions import Decisions
from connectors.ledger.items import RawItems, new_worker_id
from connectors.ledger.leads import Leads
from connectors.ledger.orders import Orders
from connectors.ledger.people import People
from connectors.ledger.reports import Reports
from connectors.ledger.runs import Runs
from connectors.ledger.sinks import Sinks
from connectors.ledger.sources import Sources


class Ledger(RawItems, Sources, Contacts, Decisions, Leads, Orders, Sinks, People, Alerts,
             Runs, Reports):
    """The store at one location (a path or a PostgreSQL URL).

    `create=True` only for the commands that may start a new store (ingest,
    run, serve, demo); every other command refuses a location with no store,
    so a mistyped --db never turns into an empty export."""


__all__ = ["Ledger", "StoreLocation", "locate", "new_worker_id"]
