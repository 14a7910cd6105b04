"""A tenant's pages of PSI jobs in a large graph: how long a page of 21 takes for a tenant
with most of the jobs and for one with few, and how long migration 0019 takes to give
jobs recorded before it their page keys.

    python -m bench.job_pages [--jobs 200000 --tenants 8 --pages 7]

Starts its own embedded database, migrates it to just before 0019, and writes `--jobs`
finished jobs as versions before 0019 did (no page key), nine in ten of one tenant, the
rest spread over the others, 50 a second of creation time. Then runs 0019, timed (keys,
index, the tenant index dropped), and the migrations after it, and reads pages of
21 from the newest job, from the middle and filtered by a status no job has: p50 and p95
of each (decision 0028). Prints the figures and writes JSON to bench/results/.
"""

import argparse
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    DB_HEAP_HELP,
    embedded_database,
    page_times,
    print_pages,
    run_in_workdir,
    write_json,
)
from trustfabric import migrations
from trustfabric.domain.audit import iso
from trustfabric.domain.psi.protocol import new_job_id
from trustfabric.graph.cypher import Cypher
from trustfabric.runtime.services import Services
from trustfabric.schema.extensions.limits import MAX_EXAMINED

SLICE = 5_000
PAGE = 21
# Jobs as versions before migration 0019 wrote them: written straight, as no version of the
# service writes them any more.
FIRST = datetime(2026, 1, 1, tzinfo=UTC)
LEGACY_JOBS = Cypher("bench.legacy_jobs", "UNWIND $rows AS row CREATE (j:PsiJob) SET j = row")


def tenant_of(n: int, tenants: int) -> str:
    return "large" if n % 10 else f"small{(n // 10) % (tenants - 1)}"


def created(n: int) -> str:
    return iso(FIRST + timedelta(seconds=n / 50))


async def write_jobs(services: Services, jobs: int, tenants: int) -> None:
    for start in range(0, jobs, SLICE):
        rows = [{"id": new_job_id(), "idemKey": f"{tenant_of(n, tenants)}:{n}",
                 "tenant": tenant_of(n, tenants), "createdAt": created(n),
                 "completedAt": created(n), "status": "DONE", "mode": "PSI", "partner": "p",
                 "datasetId": "p/d", "datasetVersion": 1, "datasetHash": "sha256:x",
                 "requestSize": 16, "requestCommitment": "sha256:y", "serverKeyId": "k"}
                for n in range(start, min(start + SLICE, jobs))]
        await services.executor.write(LEGACY_JOBS, rows=rows)


async def job_page(services: Services, tenant: str, after: str | None, status: str | None,
                   reads: int) -> dict[str, Any]:
    async def read() -> list[Any]:
        return (await services.repos.jobs.page(tenant, after, PAGE, status, MAX_EXAMINED)).jobs

    return {"tenant": tenant, "from": "middle" if after else "newest", "status": status,
            **await page_times(read, reads)}


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    with embedded_database(workdir, args.db_heap) as target:
        services = Services.open(target.settings().model_copy(update={"data_dir": workdir}))
        try:
            # the graph as the version before 0019 left it: its jobs without page keys
            executor = services.executor.without_deadline()
            pending = migrations.load_migrations()
            while pending[0].name != "psi_job_pages":
                await migrations.apply(executor, pending.pop(0))
            began = time.perf_counter()
            await write_jobs(services, args.jobs, args.tenants)
            written = time.perf_counter() - began
            began = time.perf_counter()
            await migrations.apply(executor, pending.pop(0))  # its keys and index, timed
            migrated = time.perf_counter() - began
            for later in pending:
                await migrations.apply(executor, later)
            middle = created(args.jobs // 2)
            reads = [await job_page(services, tenant, after, status, args.pages)
                     for tenant in ("large", "small1")
                     for after, status in ((None, None), (middle, None), (None, "CANCELLED"))]
        finally:
            await services.close()
    return {"jobs": args.jobs, "write_s": written, "migration_0019_s": migrated,
            "pages": reads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--tenants", type=int, default=8, help="the large one and the others "
                        "(at least 2)")
    parser.add_argument("--pages", type=int, default=7, help="reads of each page, timed")
    parser.add_argument("--db-heap", help=DB_HEAP_HELP)
    args = parser.parse_args()
    if args.tenants < 2:
        parser.error("--tenants must be at least 2")
    result = run_in_workdir("jobs", run, args)
    print(f"wrote {result['jobs']} jobs in {result['write_s']:.1f} s; migration 0019 gave "
          f"them their page keys in {result['migration_0019_s']:.1f} s")
    print_pages("page of 21", "status", result["pages"])
    print(f"JSON: {write_json('job-pages', {'args': vars(args), 'result': result})}")


if __name__ == "__main__":
    main()
