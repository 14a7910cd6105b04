"""Audit pages over a large log: how long an operator's page of every tenant's events and an
auditor's page of one tenant's take, and what the database spends writing each event.

    python -m bench.audit_pages [--events 200000 --tenants 20 --pages 20]

Starts its own embedded database, migrates it, and writes `--events` audit events spread
over `--tenants` tenants in batches of 100 (as refusals are written under load), charging
the database's CPU to them. Then reads pages of 50 from the start of the log, from its
middle and with an action filter: p50 and p95 of each, for every tenant and for one.
Prints the figures and writes JSON to bench/results/.
"""

import argparse
import time
from pathlib import Path
from typing import Any

from bench.common import (
    DB_HEAP_HELP,
    cpu_seconds,
    descendants,
    embedded_database,
    page_times,
    print_pages,
    run_in_workdir,
    write_json,
)
from trustfabric.domain.audit import audit_event, now_iso
from trustfabric.migrations import migrate
from trustfabric.runtime.services import Services

BATCH = 100
PAGE = 50


async def write_log(services: Services, db_pids: list[int], events: int,
                    tenants: int) -> tuple[dict[str, float], str]:
    """The figures of writing the log, and a cursor in its middle."""
    cpu, began, middle = cpu_seconds(db_pids), time.perf_counter(), ""
    for start in range(0, events, BATCH):
        batch = [audit_event(tenant=f"t{n % tenants}", actor="bench",
                             action="psi.run" if n % 7 else "psi.request",
                             subject=f"job-{n}", outcome="done")
                 for n in range(start, min(start + BATCH, events))]
        # any time is a cursor: the page after it starts with the batches written since
        middle = middle or (now_iso() if start >= events // 2 else "")
        await services.repos.audit.record(*batch)
    wall = time.perf_counter() - began
    return {"events": events, "events_per_s": events / wall,
            "db_cpu_ms_per_event": (cpu_seconds(db_pids) - cpu) * 1000 / events}, middle


async def audit_page(services: Services, tenant: str | None, after: str, action: str | None,
                     reads: int) -> dict[str, Any]:
    return {"tenant": tenant or "every", "from": "middle" if after else "start",
            "action": action, **await page_times(
                lambda: services.repos.audit.page(tenant, after, PAGE, action), reads)}


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    with embedded_database(workdir, args.db_heap) as target:
        services = Services.open(target.settings().model_copy(update={"data_dir": workdir}))
        try:
            await migrate(services.executor)
            written, middle = await write_log(services, descendants(target.db_pid),
                                              args.events, args.tenants)
            reads = [await audit_page(services, tenant, after, action, args.pages)
                     for tenant in (None, "t1")
                     for after, action in (("", None), (middle, None), (middle, "psi.request"))]
        finally:
            await services.close()
    return {"write": written, "pages": reads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--pages", type=int, default=20, help="reads of each page, timed")
    parser.add_argument("--db-heap", help=DB_HEAP_HELP)
    args = parser.parse_args()
    result = run_in_workdir("audit", run, args)
    write = result["write"]
    print(f"wrote {write['events']} events at {write['events_per_s']:.0f}/s, database "
          f"{write['db_cpu_ms_per_event']:.3f} ms of CPU an event")
    print_pages("page of 50", "action", result["pages"])
    print(f"JSON: {write_json('audit-pages', {'args': vars(args), 'result': result})}")


if __name__ == "__main__":
    main()
