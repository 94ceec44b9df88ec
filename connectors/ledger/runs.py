"""Runs: what each command did, for `leadhub status`."""

from __future__ import annotations

import json

from sqlalchemy import insert, select, update

from connectors.ledger.base import LedgerBase, now
from connectors.ledger.schema import runs


class Runs(LedgerBase):
    def start_run(self, command: str) -> int:
        with self.transaction() as tx:
            return tx.execute(insert(runs).values(command=command, started_at=now())
                              .returning(runs.c.run_id)).scalar_one()

    def finish_run(self, run_id: int, stats: dict) -> None:
        with self.transaction() as tx:
            tx.execute(update(runs).where(runs.c.run_id == run_id).values(
                finished_at=now(), stats=json.dumps(stats, ensure_ascii=False, default=str)))

    def last_runs(self, limit: int = 5) -> list:
        return self.rows(select(runs).order_by(runs.c.run_id.desc()).limit(limit))
