"""`python -m flows.prefect_deploy [ARGS]`: `prefect deploy ARGS` (prefect.yaml's
deployments), with one fix. Prefect 3.8.8's client asks the server for a
pool's online workers with `"offset": null, "limit": null`, which its server
refuses under the fastapi that server needs (0.154: a 422), so `prefect
deploy` dies after the first deployment. The fix gives that one request the
API's own defaults; everything else is Prefect's deploy, unchanged.
"""

from __future__ import annotations

import sys
from typing import Any

# The Prefect API's default page (PREFECT_API_DEFAULT_LIMIT).
DEFAULT_LIMIT = 200


def _with_defaults(read: Any) -> Any:
    async def read_workers(self, work_pool_name, worker_filter=None, offset=None, limit=None):
        return await read(self, work_pool_name, worker_filter, offset or 0,
                          limit or DEFAULT_LIMIT)

    return read_workers


def main(argv: list[str]) -> None:
    from prefect.cli import app
    from prefect.client.orchestration._work_pools.client import WorkPoolAsyncClient

    WorkPoolAsyncClient.read_workers_for_work_pool = _with_defaults(
        WorkPoolAsyncClient.read_workers_for_work_pool)
    sys.argv = ["prefect", "--no-prompt", "deploy", *argv]
    app()


if __name__ == "__main__":
    main(sys.argv[1:])
