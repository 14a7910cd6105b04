"""Job events reach subscribers: their own tenant's, once each, late commits included."""

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from tests.helpers import Timeline, raw_event_batches, selectors, subscription, until
from trustfabric.client.psi import PsiClient, PsiError, job_events
from trustfabric.domain.events import bus as events
from trustfabric.domain.events.bus import EventBus
from trustfabric.domain.events.records import JobEvent
from trustfabric.graph.job_events import JobEventRepository


async def collect(url: str, token: str, into: list[str],
                  statuses: list[str] | None = None) -> None:
    async with aiohttp.ClientSession() as session:
        async for event in job_events(session, url, token, statuses=statuses):
            into.append(event["status"])


async def test_subscribers_see_their_own_jobs_states_and_nobody_elses(
    api, base_url, make_token, psi_pair
):
    token = await make_token(psi_pair["tenant"])
    intruder = await make_token(psi_pair["tenant"] + "-other")
    mine, final, theirs = [], [], []
    listeners = [asyncio.create_task(collect(base_url, token, mine)),
                 asyncio.create_task(collect(base_url, token, final, ["DONE", "FAILED"])),
                 asyncio.create_task(collect(base_url, intruder, theirs))]
    tenant, bus = psi_pair["tenant"], api.services.events
    await until(lambda: bus.subscriptions(tenant) == 2
                and bus.subscriptions(tenant + "-other") == 1, what="the three subscriptions")
    async with PsiClient(base_url, token) as client:
        await client.cardinality(psi_pair["dataset"], selectors(2, 14))
    await until(lambda: "DONE" in mine, seconds=5.0, what="the job's DONE event")
    for listener in listeners:
        listener.cancel()
    assert mine == ["QUEUED", "RUNNING", "DONE"]
    assert final == ["DONE"]
    assert theirs == []


async def test_a_cancelled_job_is_told_to_its_subscribers(api, base_url, make_token, psi_pair,
                                                          gql, worker):
    """A cancellation's event reaches the subscribers of the process that wrote it (its own
    poller skips what it wrote)."""
    token = await make_token(psi_pair["tenant"])
    await worker.stop()  # the job stays queued: cancellable
    try:
        seen: list[str] = []
        listener = asyncio.create_task(collect(base_url, token, seen))
        await until(lambda: api.services.events.subscriptions(psi_pair["tenant"]) == 1,
                    what="the subscription")
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


async def subscribed(bus: EventBus, tenant: str) -> tuple[list[JobEvent], asyncio.Task[None]]:
    seen: list[JobEvent] = []

    async def listen() -> None:
        async for event in bus.subscribe(tenant, lambda event: True):
            seen.append(event)

    task = asyncio.create_task(listen())
    await until(lambda: bus.subscriptions(tenant) == 1, what="the subscription")
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
        await until(lambda: late in {event.id for event in seen}, seconds=1.0,
                    what="the late batch's event")
        heard = [event.id for event in seen]
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
        await until(lambda: fresh in {event.id for event in seen}, seconds=1.0,
                    what="the event written after subscribing")
        listener.cancel()
        assert min(event.at for event in seen) >= t.at(8.0)
    finally:
        await t.drop(services)


async def test_a_revoked_tokens_subscription_ends_with_unauthenticated(
    api, base_url, make_token, services, tenant
):
    """Revoked in another process (the fixture's own repository): the API's open
    subscription, idle, ends within two token TTLs (0.5 s here) with UNAUTHENTICATED."""
    token = await make_token(tenant)
    token_id = (await services.repos.tokens.verify(token)).token_id
    async with subscription(base_url, token,
                            "subscription { psiJobEvents { jobId status } }") as ws:
        await until(lambda: api.services.events.subscriptions(tenant) == 1,
                    what="the subscription")
        await services.repos.tokens.revoke(token_id)
        frames = []
        async with asyncio.timeout(5.0):
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                frames.append(message.json())
                if frames[-1]["type"] in ("error", "complete"):
                    break
        told = [error.get("extensions", {}).get("code") for frame in frames
                if frame["type"] in ("next", "error")
                for error in (frame["payload"].get("errors", []) if frame["type"] == "next"
                              else frame["payload"])]
        assert "UNAUTHENTICATED" in told or ws.close_code == 4403, (frames, ws.close_code)
    await until(lambda: api.services.events.subscriptions(tenant) == 0,
                what="the subscription's end")


async def test_the_client_raises_the_coded_error_a_subscription_ends_with(
    api, base_url, make_token, services, tenant
):
    """The Python client reads an error frame as the service's coded refusal, not a crash."""
    token = await make_token(tenant)
    token_id = (await services.repos.tokens.verify(token)).token_id

    async def listen() -> None:
        async with aiohttp.ClientSession() as session:
            async for _ in job_events(session, base_url, token):
                pass

    listening = asyncio.create_task(listen())
    await until(lambda: api.services.events.subscriptions(tenant) == 1, what="the subscription")
    await services.repos.tokens.revoke(token_id)
    with pytest.raises(PsiError) as ended:
        async with asyncio.timeout(5.0):
            await listening
    assert ended.value.code == "UNAUTHENTICATED"
