"""The proof worker in this process: a worker that lost its lease writes nothing, a crashed
crypto process is replaced, and crypto processes give way to the API."""

import asyncio
import os

from tests.helpers import done_events, polled, selectors
from trustfabric.client.psi import PsiClient
from trustfabric.domain.psi.worker import lease_until


async def test_a_worker_that_lost_its_lease_cannot_finish_the_job(services, worker, psi_pair,
                                                                  make_token, base_url):
    await worker.stop()
    try:
        async with PsiClient(base_url, await make_token(psi_pair["tenant"])) as client:
            job = await client.submit(psi_pair["dataset"], client.prepare(selectors(4, 12)))
        stale = services.worker()
        claimed = await services.repos.jobs.claim("stale-worker", {psi_pair["tenant"]: 10},
                                                lease_until(0.5))
        assert [j.id for j in claimed] == [job["id"]]
        # the lease runs out while the stale worker is "paused": a fresh claim takes the job
        fresh = await polled(lambda: services.repos.jobs.claim(
            "fresh-worker", {}, lease_until(30), reclaim=10), bool, seconds=5.0)
        assert [j.id for j in fresh] == [job["id"]]
        stale.owner = "stale-worker"
        packs = set(services.results.packs.root.glob("*/*"))
        await stale._process(claimed)  # it wakes up and tries to write its result
        stale.close()
        record = await services.repos.jobs.get(job["id"], None)
        assert record.status == "RUNNING"  # nothing of the stale worker's was written ...
        assert record.bundle_ref is None
        assert await runs_audited(services, psi_pair["tenant"]) == 0
        # ... but its pack, which nothing names: retired with its hour
        assert set(services.results.packs.root.glob("*/*")) - packs
        fresh_worker = services.worker()
        fresh_worker.owner = "fresh-worker"
        await fresh_worker._process(fresh)
        fresh_worker.close()
    finally:
        worker.start()
    assert (await services.repos.jobs.get(job["id"], None)).status == "DONE"
    assert await done_events(services, job["id"]) == 1
    assert await runs_audited(services, psi_pair["tenant"]) == 1


async def runs_audited(services, tenant: str) -> int:
    return len(await services.repos.audit.page(tenant, "", 50, "psi.run"))


async def test_a_crashed_crypto_process_is_replaced_and_its_jobs_finish(
    base_url, make_token, psi_pair, worker
):
    async with PsiClient(base_url, await make_token(psi_pair["tenant"])) as client:
        await client.cardinality(psi_pair["dataset"], selectors(2, 14))  # the pool is up
        for process in list(worker.worker._pool._processes.values()):
            process.kill()
        # the next batch meets a broken pool: a new pool is started, and the job comes
        # back when its lease runs out
        assert await client.cardinality(psi_pair["dataset"], selectors(3, 13)) == 3


async def test_crypto_processes_give_way_to_the_api(worker, settings):
    pool = worker.worker._pool
    theirs = await asyncio.get_running_loop().run_in_executor(pool, os.nice, 0)
    assert theirs == min(os.nice(0) + settings.psi_worker_nice, 19) > os.nice(0)


