"""The job events' outbox: read in pages of whole batches, dropped after retention."""

import secrets
from datetime import UTC, datetime, timedelta

from tests.helpers import done_events, raw_job, selectors
from trustfabric.client.psi import PsiClient
from trustfabric.domain.audit import iso, now_iso


async def test_old_job_events_are_dropped_and_the_job_stays(base_url, make_token, psi_pair,
                                                            services):
    async with PsiClient(base_url, await make_token(psi_pair["tenant"])) as client:
        await client.cardinality(psi_pair["dataset"], selectors(2, 14))
        job = (await services.repos.jobs.page(psi_pair["tenant"], None, 1)).jobs[0]
        assert await done_events(services, job.id) == 1
        completed = datetime.fromisoformat(job.completed_at)
        # a retention that ends before the job's events keeps them ...
        await services.repos.job_events.drop_events(iso(completed - timedelta(seconds=60)))
        assert await done_events(services, job.id) == 1
        # ... one that ends after them drops them, and the job is still there
        while await services.repos.job_events.drop_events(iso(completed + timedelta(seconds=1))):
            pass
        assert await done_events(services, job.id) == 0
        assert (await services.repos.jobs.get(job.id, psi_pair["tenant"])).status == "DONE"


async def read_all_pages(services, tenant: str, after: str, limit: int) -> tuple[list, int]:
    """Pages through the job events as the poller and the webhook fan-out do."""
    events, pages = [], 0
    while pages < 20:  # a reader stuck on one page would read it forever
        page = await services.repos.job_events.events_after(after, limit, tenants=[tenant])
        events += page.events
        pages += 1
        if page.until is None:
            return events, pages
        after = page.until
    raise AssertionError("the pages did not move on")


async def test_job_events_are_read_in_pages_of_whole_batches(services):
    """Each write's events are one batch; a reader paging on from each full page's end gets
    every event once, also where more batches than a page share one time (a claim writes
    one per tenant, all at the same time)."""
    tenant = "pages-" + secrets.token_hex(4)
    before = iso(datetime.now(UTC) - timedelta(seconds=1))
    tied = now_iso()
    jobs = [[raw_job(tenant, f"{b}-{n}", **({"createdAt": tied} if b >= 2 else {}))
             for n in range(2)] for b in range(6)]
    for batch in jobs:
        await services.repos.jobs.create_many(batch)
    events, pages = await read_all_pages(services, tenant, before, limit=2)
    assert pages >= 3
    # the suite's worker may have started some of them meanwhile: their QUEUED events
    queued = [e.job_id for e in events if e.status == "QUEUED"]
    assert sorted(queued) == sorted(j.props["id"] for b in jobs for j in b)
    assert len({e.id for e in events}) == len(events)  # none twice
