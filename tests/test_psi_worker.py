"""Jobs survive crashes and finish exactly once; state changes reach subscribers."""

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import aiohttp
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import Timeline, free_port, polled, raw_event_batches, raw_job, selectors, until
from trustfabric.client.psi import PsiClient, job_events
from trustfabric.domain.audit import iso, now_iso
from trustfabric.domain.events import bus as events
from trustfabric.domain.events.bus import EventBus
from trustfabric.domain.events.cursor import LATE, EventCursor, EventPage
from trustfabric.domain.psi.worker import lease_until
from trustfabric.graph.job_events import JobEventRepository


def child_env(settings, **extra: str) -> dict[str, str]:
    return {**os.environ, "TF_NEO4J_URI": settings.neo4j_uri,
            "TF_NEO4J_PASSWORD": settings.neo4j_password.get_secret_value(),
            "TF_DATA_DIR": str(settings.data_dir), "TF_CONTROLS_CACHE_S": "0", **extra}


def api_without_worker(settings, port: int) -> subprocess.Popen[bytes]:
    """An API process whose jobs are left to worker processes."""
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "trustfabric.app:create_app", "--factory",
         "--port", str(port), "--log-level", "warning"],
        env=child_env(settings, TF_PSI_WORKER_IN_PROCESS="false"),
    )


async def wait_http(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                if (await http.get(url + "/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the service did not start")


async def done_events(services, job_id: str) -> int:
    job = await services.repos.jobs.get(job_id, None)
    page = await services.repos.job_events.events_after(job.created_at)
    return sum(1 for e in page.events if e["jobId"] == job_id and e["status"] == "DONE")


async def test_a_job_accepted_before_kill_9_completes_once_after_restart(
    settings, services, worker, make_token, psi_pair
):
    await worker.stop()  # no worker anywhere: the job waits, durable, while things die
    try:
        port = free_port()
        api = api_without_worker(settings, port)
        url = f"http://127.0.0.1:{port}"
        await wait_http(url)
        async with PsiClient(url, await make_token(psi_pair["tenant"])) as client:
            setup_id, _ = await client.setup(psi_pair["dataset"])
            jobs = [await client.submit(psi_pair["dataset"], client.prepare(selectors(3, 13)),
                                        setup_id) for _ in range(5)]
        api.send_signal(signal.SIGKILL)  # the API dies right after answering
        api.wait()

        # A worker process takes the jobs and is killed -9 mid-flight, holding their leases
        # (its crypto pool starts on first use, which leaves a window to kill it in).
        ids = [job["id"] for job in jobs]
        crashing = subprocess.Popen([sys.executable, "-m", "trustfabric.cli", "worker"],
                                    env=child_env(settings, TF_PSI_LEASE_S="2"),
                                    stdout=subprocess.DEVNULL, start_new_session=True)
        held: list[str] = []
        for _ in range(1000):
            held = [i for i in ids if (await services.repos.jobs.get(i, None)).status == "RUNNING"]
            if held:
                break
            await asyncio.sleep(0.01)
        crashing.send_signal(signal.SIGKILL)
        crashing.wait()
        # its crypto processes die with it (parent-death signal), leaving nothing behind
        for _ in range(100):
            leftovers = subprocess.run(["pgrep", "-s", str(crashing.pid)], capture_output=True)
            if not leftovers.stdout:
                break
            await asyncio.sleep(0.1)
        assert leftovers.stdout == b"", leftovers.stdout
        assert held, "the worker was killed before it held a job"
    finally:
        worker.start()  # the restart: a fresh worker finishes whatever is left

    for _ in range(200):
        states = [(await services.repos.jobs.get(i, None)).status for i in ids]
        if all(s == "DONE" for s in states):
            break
        await asyncio.sleep(0.1)
    assert states == ["DONE"] * 5
    for job_id in ids:
        assert await services.repos.jobs.bundle(job_id, None) is not None
        assert await done_events(services, job_id) == 1


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
        await asyncio.sleep(0.6)  # the lease runs out while the stale worker is "paused"
        fresh = await services.repos.jobs.claim("fresh-worker", {}, lease_until(30), reclaim=10)
        assert [j.id for j in fresh] == [job["id"]]
        stale.owner = "stale-worker"
        await stale._process(claimed)  # it wakes up and tries to write its result
        stale.close()
        record = await services.repos.jobs.get(job["id"], None)
        assert record.status == "RUNNING"  # nothing of the stale worker's was written
        assert await services.repos.jobs.bundle(job["id"], None) is None
        fresh_worker = services.worker()
        fresh_worker.owner = "fresh-worker"
        await fresh_worker._process(fresh)
        fresh_worker.close()
    finally:
        worker.start()
    assert (await services.repos.jobs.get(job["id"], None)).status == "DONE"
    assert await done_events(services, job["id"]) == 1


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


async def test_a_split_deployment_measures_the_load_where_it_is_accepted_and_served(
    settings, services, worker, make_token, psi_pair
):
    """An API process whose worker runs in a process of its own hears of the service
    through job events (a rate to hold each tenant's queue to, and its Gini's inputs),
    and the worker process exports what it served."""
    await worker.stop()  # the worker process below serves the jobs
    port, metrics_port = free_port(), free_port()
    api = api_without_worker(settings, port)
    proof = subprocess.Popen(
        [sys.executable, "-m", "trustfabric.cli", "worker", "--metrics-port", str(metrics_port)],
        env=child_env(settings), stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        url, tenant = f"http://127.0.0.1:{port}", psi_pair["tenant"]
        await wait_http(url)
        async with PsiClient(url, await make_token(tenant)) as client:
            setup_id, _ = await client.setup(psi_pair["dataset"])
            ids = [(await client.submit(psi_pair["dataset"], client.prepare(selectors(3, 13)),
                                        setup_id))["id"] for _ in range(5)]
        done = {"tenant": tenant, "outcome": "done"}
        async with httpx.AsyncClient() as http:
            async def scrape(base: str) -> dict:
                return samples((await http.get(base + "/metrics")).text)

            seen = await polled(lambda: scrape(url),
                                lambda s: s[("tf_psi_service_rate", ())] > 0)
            assert seen[("tf_psi_service_rate", ())] > 0  # 0 where nothing is heard
            served = await polled(
                lambda: scrape(f"http://127.0.0.1:{metrics_port}"),
                lambda s: s.get(("tf_psi_jobs_served_total", tuple(sorted(done.items())))) == 5)
        assert served[("tf_psi_jobs_served_total", tuple(sorted(done.items())))] == 5
        # the Gini is the API processes' figure: they see the demand
        assert not any(name == "tf_psi_fairness_gini" for name, _ in served)
        assert {(await services.repos.jobs.get(i, None)).status for i in ids} == {"DONE"}
    finally:
        for process in (api, proof):
            process.terminate()
            process.wait(30)
        worker.start()


async def collect(url: str, token: str, into: list[str],
                  statuses: list[str] | None = None) -> None:
    async with aiohttp.ClientSession() as session:
        async for event in job_events(session, url, token, statuses=statuses):
            into.append(event["status"])


async def test_subscribers_see_their_own_jobs_states_and_nobody_elses(
    base_url, make_token, psi_pair
):
    token = await make_token(psi_pair["tenant"])
    intruder = await make_token(psi_pair["tenant"] + "-other")
    mine, final, theirs = [], [], []
    listeners = [asyncio.create_task(collect(base_url, token, mine)),
                 asyncio.create_task(collect(base_url, token, final, ["DONE", "FAILED"])),
                 asyncio.create_task(collect(base_url, intruder, theirs))]
    await asyncio.sleep(0.5)
    async with PsiClient(base_url, token) as client:
        await client.cardinality(psi_pair["dataset"], selectors(2, 14))
    await until(lambda: "DONE" in mine, seconds=5.0, what="the job's DONE event")
    for listener in listeners:
        listener.cancel()
    assert mine == ["QUEUED", "RUNNING", "DONE"]
    assert final == ["DONE"]
    assert theirs == []


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


async def test_old_job_events_are_dropped_and_the_job_stays(base_url, make_token, psi_pair,
                                                            services):
    async with PsiClient(base_url, await make_token(psi_pair["tenant"])) as client:
        await client.cardinality(psi_pair["dataset"], selectors(2, 14))
        job = (await services.repos.jobs.page(psi_pair["tenant"], "~", 1, None))[0]
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


async def test_crypto_processes_give_way_to_the_api(worker, settings):
    pool = worker.worker._pool
    theirs = await asyncio.get_running_loop().run_in_executor(pool, os.nice, 0)
    assert theirs == min(os.nice(0) + settings.psi_worker_nice, 19) > os.nice(0)


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
    queued = [e["jobId"] for e in events if e["status"] == "QUEUED"]
    assert sorted(queued) == sorted(j.props["id"] for b in jobs for j in b)
    assert len({e["id"] for e in events}) == len(events)  # none twice


async def test_a_cancelled_job_is_told_to_its_subscribers(base_url, make_token, psi_pair, gql,
                                                          worker):
    """A cancellation's event reaches the subscribers of the process that wrote it (its own
    poller skips what it wrote)."""
    token = await make_token(psi_pair["tenant"])
    await worker.stop()  # the job stays queued: cancellable
    try:
        seen: list[str] = []
        listener = asyncio.create_task(collect(base_url, token, seen))
        await asyncio.sleep(0.5)
        async with PsiClient(base_url, token) as client:
            job = await client.submit(psi_pair["dataset"], client.prepare(selectors(2, 14)))
        cancelled = await gql("mutation($id: ID!) { cancelPsiJob(id: $id) { status } }", token,
                              id=job["id"])
        assert cancelled["data"]["cancelPsiJob"]["status"] == "CANCELLED"
        await until(lambda: "CANCELLED" in seen, seconds=5.0, what="the CANCELLED event")
        listener.cancel()
        assert seen == ["QUEUED", "CANCELLED"]
    finally:
        worker.start()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> type[datetime]:
    """The event bus's clock, moved by the test."""

    class Clock(datetime):
        current = datetime.now(UTC)

        @classmethod
        def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
            return cls.current

    monkeypatch.setattr(events, "datetime", Clock)
    return Clock


async def subscribed(bus: EventBus, tenant: str) -> tuple[list[dict], asyncio.Task[None]]:
    seen: list[dict] = []

    async def listen() -> None:
        async for event in bus.subscribe(tenant, lambda event: True):
            seen.append(event)

    task = asyncio.create_task(listen())
    await asyncio.sleep(0)  # subscribed
    return seen, task


async def test_a_batch_committed_late_within_a_full_page_reaches_subscribers(services, clock):
    """Another process writes 200 batches a second; one, stamped inside a page already read
    in full, commits just after. The poller reads on from each full page's end, and reads
    that stretch again once it has caught up."""
    t, tenant = Timeline(hours=5), "late-" + secrets.token_hex(4)
    clock.current = t.base
    bus = EventBus(JobEventRepository(services.executor, "test-bus"), 0.1)
    seen, listener = await subscribed(bus, tenant)
    try:
        await raw_event_batches(services, tenant, t.every(0.005, 0.0, 100))
        clock.current = t.base + timedelta(seconds=0.5)
        await bus.poll_once()  # a full page, to 0.495
        [late] = await raw_event_batches(services, tenant, [t.at(0.45)], status="DONE")
        for second in (0.5, 1.0, 1.5, 2.0):  # full pages, each read 0.5 s after its first
            await raw_event_batches(services, tenant, t.every(0.005, second, 100))
            clock.current = t.base + timedelta(seconds=second + 0.5)
            await bus.poll_once()
        await raw_event_batches(services, tenant, t.every(0.005, 2.5, 50))
        for second in (3.0, 3.5, 4.0):
            clock.current = t.base + timedelta(seconds=second)
            await bus.poll_once()
        await until(lambda: late in {event["id"] for event in seen}, seconds=1.0,
                    what="the late batch's event")
        heard = [event["id"] for event in seen]
        assert late in heard and len(heard) == len(set(heard)) == 551  # each once
    finally:
        listener.cancel()
        await t.drop(services)


async def test_a_first_subscriber_hears_what_happens_now_not_what_nobody_heard(
        services, clock):
    """Nobody subscribed for 10 s while another process wrote 100 batches a second: the
    first subscriber then hears what happens from then on (and the last seconds, where late
    commits may land), not the 10 s first."""
    t, tenant = Timeline(hours=7), "idle-" + secrets.token_hex(4)
    clock.current = t.base
    bus = EventBus(JobEventRepository(services.executor, "test-bus"), 0.1)
    try:
        await raw_event_batches(services, tenant, t.every(0.01, 0.0, 1000))
        clock.current = t.base + timedelta(seconds=10)
        seen, listener = await subscribed(bus, tenant)
        [fresh] = await raw_event_batches(services, tenant, [t.at(10.0)], status="DONE")
        for poll in range(3):
            clock.current = t.base + timedelta(seconds=10.01 + 0.1 * poll)
            await bus.poll_once()
        await until(lambda: fresh in {event["id"] for event in seen}, seconds=1.0,
                    what="the event written after subscribing")
        listener.cancel()
        assert min(event["at"] for event in seen) >= t.at(8.0)
    finally:
        await t.drop(services)


def test_a_cursor_ahead_of_the_readers_clock_comes_back_once_caught_up():
    """Left ahead (a writer's clock, or a reader, ahead of this one), it would skip every
    event this clock's writers write until this clock caught up with it."""
    now = datetime.now(UTC)
    cursor = EventCursor(iso(now + timedelta(hours=3)))
    cursor.advance(now, EventPage([], None))
    assert cursor.after == iso(now - LATE)
