"""Signed webhooks to a real local aiohttp receiver: order, signatures, retries, dead
letters and their replay, tenant walls."""

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from tests.helpers import (
    RAW_DELIVERY,
    STORE_SECRET,
    STORED_SECRET,
    Timeline,
    codes,
    dispatcher_of,
    polled,
    raw_delivery,
    raw_event_batches,
    selectors,
    serve,
    until,
)
from trustfabric.client.psi import PsiClient
from trustfabric.domain.audit import iso, now_iso
from trustfabric.domain.auth import Role
from trustfabric.domain.webhooks import (
    SIGNATURE_HEADER,
    Delivery,
    WebhookDispatcher,
    verify_signature,
)
from trustfabric.graph.cypher import Cypher
from trustfabric.graph.queries import webhooks as wq
from trustfabric.runtime.services import Services

# every event fanned out to a tenant's endpoints, whatever became of its delivery
DELIVERED = Cypher("test.fanned_out", """
    MATCH (d:WebhookDelivery) WHERE d.tenant = $tenant RETURN d.eventId AS id""")
REGISTER = "mutation($url: String!) { registerWebhook(url: $url) { webhook { id } secret } }"


class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[bytes, str]] = []
        self.failures_left = 0  # answer 500 this many times first
        self.requests = 0
        self.release: asyncio.Event | None = None  # if set, a request waits for it

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.release:
            await self.release.wait()
        if self.failures_left:
            self.failures_left -= 1
            return web.Response(status=500)
        self.received.append((await request.read(), request.headers[SIGNATURE_HEADER]))
        return web.Response(status=204)

    def events(self, secret: str) -> list[dict]:
        import json

        assert all(verify_signature(secret, body, header) for body, header in self.received)
        return [json.loads(body) for body, _ in self.received]


@pytest.fixture
async def receivers() -> AsyncIterator[Callable[[], Awaitable[tuple[Receiver, str]]]]:
    runners = []

    async def start() -> tuple[Receiver, str]:
        hook = Receiver()
        runner, url = await serve(hook.handle)
        runners.append(runner)
        return hook, url

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def receiver(receivers) -> tuple[Receiver, str]:
    return await receivers()


async def run_job(base_url: str, token: str, psi_pair: dict) -> str:
    async with PsiClient(base_url, token) as client:
        job = await client.submit(psi_pair["dataset"], client.prepare(selectors(3, 13),
                                                                      "PSI_CA"))
        await client.wait(job["id"])
    return str(job["id"])


async def test_job_events_arrive_signed_in_order(base_url, gql, make_token, psi_pair, receiver):
    hook, url = receiver
    token = await make_token(psi_pair["tenant"])
    secret = (await gql(REGISTER, token, url=url))["data"]["registerWebhook"]["secret"]
    job_id = await run_job(base_url, token, psi_pair)
    await until(lambda: len(hook.received) >= 3, what="three deliveries")
    events = hook.events(secret)
    assert [(e["jobId"], e["type"]) for e in events] == [
        (job_id, "psi.job.queued"), (job_id, "psi.job.running"), (job_id, "psi.job.done")]
    assert all(e["tenant"] == psi_pair["tenant"] for e in events)
    body, header = hook.received[0]
    assert not verify_signature(secret, body.replace(b"queued", b"cancel"), header)
    assert not verify_signature("whsec_wrong", body, header)


async def test_failures_are_retried_then_dead_lettered_then_replayed(
    base_url, gql, make_token, psi_pair, receiver, services
):
    hook, url = receiver
    token = await make_token(psi_pair["tenant"])
    operator = await make_token("ops", Role.OPERATOR)
    registration = (await gql(REGISTER, token, url=url))["data"]["registerWebhook"]
    registered, secret = registration["webhook"], registration["secret"]

    hook.failures_left = 2  # two answers fail: the deliveries they hit are retried
    await run_job(base_url, token, psi_pair)
    await until(lambda: len(hook.received) >= 3, what="three deliveries")
    assert hook.failures_left == 0 and len(hook.received) == 3  # all arrived after retries

    hook.received.clear()
    hook.failures_left = 10_000  # now everything fails
    job_id = await run_job(base_url, token, psi_pair)

    async def dead_letters():
        result = await gql("query { deadLetters { id jobId jobStatus attempts lastError } }",
                           operator)
        return [d for d in result["data"]["deadLetters"] if d["jobId"] == job_id]

    dead = await polled(dead_letters, lambda letters: len(letters) == 3)
    assert {d["jobStatus"] for d in dead} == {"QUEUED", "RUNNING", "DONE"}
    assert all(d["attempts"] == 3 and d["lastError"] == "HTTP 500" for d in dead)
    assert hook.received == []

    member = await gql("mutation($ids: [ID!]!) { replayDeadLetters(ids: $ids) }", token,
                       ids=[d["id"] for d in dead])
    assert codes(member) == ["FORBIDDEN"]
    hook.failures_left = 0
    replayed = await gql("mutation($ids: [ID!]!) { replayDeadLetters(ids: $ids) }", operator,
                         ids=[d["id"] for d in dead])
    assert len(replayed["data"]["replayDeadLetters"]) == 3
    await until(lambda: len(hook.received) >= 3, what="three deliveries")
    assert {e["status"] for e in hook.events(secret)} == {"QUEUED", "RUNNING", "DONE"}
    assert await dead_letters() == []

    # deleting the endpoint cancels its dead letters: none is left to replay
    hook.failures_left = 10_000
    job_id = await run_job(base_url, token, psi_pair)
    dead = await polled(dead_letters, lambda letters: len(letters) == 3)
    await gql("mutation($id: ID!) { deleteWebhook(id: $id) }", token, id=registered["id"])
    assert await dead_letters() == []
    replayed = await gql("mutation($ids: [ID!]!) { replayDeadLetters(ids: $ids) }", operator,
                         ids=[d["id"] for d in dead])
    assert replayed["data"]["replayDeadLetters"] == []
    cancelled = await services.repos.webhooks.settled(psi_pair["tenant"], "CANCELLED")
    assert {d["id"] for d in dead} <= {d.id for d in cancelled}


async def test_another_tenants_endpoint_hears_nothing(base_url, gql, make_token, psi_pair,
                                                     receivers):
    hook, url = await receivers()
    owner_hook, owner_url = await receivers()
    owner = await make_token(psi_pair["tenant"])
    await gql(REGISTER, await make_token(psi_pair["tenant"] + "-other"), url=url)
    await gql(REGISTER, owner, url=owner_url)
    await run_job(base_url, owner, psi_pair)
    await until(lambda: len(owner_hook.received) >= 3, what="three deliveries to the owner")
    assert len(owner_hook.received) == 3  # the dispatcher works: the owner heard all three
    assert hook.received == []


async def test_a_deactivated_endpoints_deliveries_are_cancelled(
    base_url, gql, make_token, psi_pair, receiver, services
):
    hook, url = receiver
    tenant = psi_pair["tenant"]
    token = await make_token(tenant)
    hook.failures_left, hook.release = 10_000, asyncio.Event()
    registered = (await gql(REGISTER, token, url=url))["data"]["registerWebhook"]
    job_id = await run_job(base_url, token, psi_pair)
    # the first delivery is in flight, and held
    await until(lambda: hook.requests == 1, what="the first delivery's request")
    await gql("mutation($id: ID!) { deleteWebhook(id: $id) }", token,
              id=registered["webhook"]["id"])

    async def cancelled() -> list[Delivery]:
        return [d for d in await services.repos.webhooks.settled(tenant, "CANCELLED")
                if d.job_id == job_id]

    owed = await cancelled()
    assert "QUEUED" in {d.job_status for d in owed}  # the one in flight, too
    hook.release.set()  # what was claimed is sent once, fails, and is not retried
    # time let pass on purpose, to see that nothing more is sent: all three attempts would
    # be over by now (backoff 0.05 s)
    await asyncio.sleep(0.5)
    assert 1 <= hook.requests <= len(owed) and hook.received == []
    # unchanged by the outcome of what was in flight (a fan-out that raced the deactivation
    # may have added a delivery since, which the dispatcher cancels in its turn)
    later = {delivery.id: delivery for delivery in await cancelled()}
    assert [later.get(delivery.id) for delivery in owed] == owed
    assert await services.repos.webhooks.settled(tenant, "DEAD") == []


async def test_a_delivery_due_for_a_deactivated_endpoint_is_cancelled_not_sent(
    base_url, services, receivers
):
    """Fanned out or replayed while its endpoint was being deactivated (which cancels only
    the deliveries due by then), a delivery is due for an inactive endpoint: the
    dispatcher (it runs in the app at `base_url`) cancels it instead of sending it."""
    hook, url = await receivers()
    tenant = "race-" + secrets.token_hex(4)
    # the dispatcher delivers while any endpoint is active: this tenant's other one is
    (gone, _), _ = [await services.repos.webhooks.register(tenant, url) for _ in range(2)]
    await services.repos.webhooks.deactivate(gone.id, tenant)
    raced = await raw_delivery(services, gone, now_iso(), due=True)

    async def cancelled() -> list[Delivery]:
        return await services.repos.webhooks.settled(tenant, "CANCELLED")

    [delivery] = await polled(cancelled, bool, seconds=5.0)
    assert delivery.id == raced
    assert delivery.last_attempt_at is None  # as deactivating cancels: never tried
    assert hook.requests == 0


async def test_delivery_history_is_dropped_after_its_retention(services):
    tenant = "history-" + secrets.token_hex(4)
    endpoints = [(await services.repos.webhooks.register(tenant, "https://x.example/h"))[0]
                 for _ in range(3)]
    long_ago = "2000-01-01T00:00:00+00:00"
    old, recent, dead = [await raw_delivery(services, endpoint, at, status=status)
                         for endpoint, (at, status) in zip(endpoints, (
                             (long_ago, "CANCELLED"), (now_iso(), "CANCELLED"),
                             (long_ago, "DEAD")), strict=True)]
    dropped = await services.repos.webhooks.drop_settled("2001-01-01T00:00:00+00:00")
    assert dropped >= 1  # the old one, and any other test's as old
    assert [d.id for d in await services.repos.webhooks.settled(tenant, "CANCELLED")] == [recent]
    # a dead letter stays however old, for an operator to replay
    assert [d.id for d in await services.repos.webhooks.settled(tenant, "DEAD")] == [dead]


@pytest.fixture
def ours(monkeypatch: pytest.MonkeyPatch) -> list[WebhookDispatcher]:
    """The dispatchers a test adds here claim deliveries; the app's own stands aside."""
    chosen: list[WebhookDispatcher] = []
    deliver_due = WebhookDispatcher.deliver_due

    async def only_ours(self: WebhookDispatcher, session: object) -> int:
        return await deliver_due(self, session) if self in chosen else 0  # type: ignore[arg-type]

    monkeypatch.setattr(WebhookDispatcher, "deliver_due", only_ours)
    return chosen


async def test_a_batch_committed_late_within_a_full_page_is_fanned_out(services):
    """A round of the fan-out that ends on a full page reads on from its end next time; a
    batch stamped inside that page and committed just after it was read is fanned out once
    the fan-out has caught up."""
    t, tenant = Timeline(hours=3), "late-" + secrets.token_hex(4)
    endpoint, _ = await services.repos.webhooks.register(tenant, "http://127.0.0.1:9/hook")
    try:
        await services.executor.write(wq.SET_CURSOR, at=t.at(0), recheck=None)
        await raw_event_batches(services, tenant, t.every(0.01, 1.0, 20))
        await services.repos.webhooks.fan_out(pages=1)  # one full page, to 1.19
        [late] = await raw_event_batches(services, tenant, [t.at(1.10)], status="DONE")
        await raw_event_batches(services, tenant, [t.at(4.2)])

        async def fanned() -> set[str]:
            # rounds of the suite's own dispatcher share the cursor, and may set it back
            await services.repos.webhooks.fan_out()
            return {row["id"] for row in await services.executor.read(DELIVERED, tenant=tenant)}

        everything = await polled(fanned, lambda ids: len(ids) == 22)
        assert late in everything and len(everything) == 22
    finally:
        await services.repos.webhooks.deactivate(endpoint.id, None)
        await t.drop(services)
        await services.executor.write(wq.SET_CURSOR, at=now_iso(), recheck=None)


async def test_an_endpoints_deliveries_sent_one_after_another_are_not_sent_twice(
        services, ours: list[WebhookDispatcher]):
    """Each send may take the whole timeout, and an endpoint's go one after another: the
    lease of the later ones covers those before them, so a second process (here, a second
    dispatcher) does not claim and send them meanwhile."""
    received: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(request.headers["X-TrustFabric-Event-Id"])
        await asyncio.sleep(0.4)  # within the timeout: every send succeeds
        return web.Response(status=204)

    runner, url = await serve(handle)
    tenant = "lease-" + secrets.token_hex(4)
    endpoint, _ = await services.repos.webhooks.register(tenant, url)
    for i in range(4):
        await services.executor.write(
            RAW_DELIVERY, id=f"{tenant}-{i}", endpointId=endpoint.id, tenant=tenant,
            at=f"2001-01-01T00:00:0{i}.000000+00:00", due=True, status="PENDING")
    first, second = (dispatcher_of(services.repos.webhooks, timeout_s=0.5, allow_private=True)
                     for _ in range(2))
    ours += [first, second]
    try:
        async with first.session() as one, second.session() as other:
            sending = asyncio.create_task(first.deliver_due(one))
            # the first claimed all four
            await until(lambda: bool(received), seconds=5.0, what="the first send")
            await sending
            while first.sending:
                await second.deliver_due(other)
                await asyncio.sleep(0.1)
            await first.sent()
            await second.sent()
    finally:
        await services.repos.webhooks.deactivate(endpoint.id, tenant)
        await runner.cleanup()
    assert sorted(received) == sorted(set(received)) and len(received) == 4


async def test_a_tenant_has_at_most_so_many_webhooks(services, settings, gql, make_token,
                                                     tenant):
    """Each endpoint gets every event of its tenant: their number bounds what one event
    costs."""
    token = await make_token(tenant)
    endpoints = [(await services.repos.webhooks.register(tenant, f"https://h{n}.example.com/h"))[0].id
                 for n in range(settings.webhook_max_per_tenant)]
    try:
        refused = await gql(REGISTER, token, url="https://one-more.example.com/h")
        assert codes(refused) == ["BAD_USER_INPUT"]
        assert "at most" in refused["errors"][0]["message"]
        await services.repos.webhooks.deactivate(endpoints.pop(), tenant)
        accepted = await gql(REGISTER, token, url="https://one-more.example.com/h")
        endpoints.append(accepted["data"]["registerWebhook"]["webhook"]["id"])
    finally:
        for endpoint in endpoints:
            await services.repos.webhooks.deactivate(endpoint, tenant)


async def test_a_slow_endpoint_holds_back_its_own_deliveries_not_the_others(
        services, ours: list[WebhookDispatcher]):
    """While one endpoint takes its time over each delivery, another tenant's delivery that
    falls due meanwhile is sent at the next round, not once the slow one is done."""
    released, received = asyncio.Event(), []

    async def slow(request: web.Request) -> web.Response:
        await released.wait()
        return web.Response(status=204)

    async def fast(request: web.Request) -> web.Response:
        received.append(request.headers["X-TrustFabric-Event-Id"])
        return web.Response(status=204)

    (slow_runner, slow_url), (fast_runner, fast_url) = await serve(slow), await serve(fast)
    slow_tenant, fast_tenant = "slow-" + secrets.token_hex(4), "fast-" + secrets.token_hex(4)
    stalled, _ = await services.repos.webhooks.register(slow_tenant, slow_url)
    quick, _ = await services.repos.webhooks.register(fast_tenant, fast_url)
    dispatcher = dispatcher_of(services.repos.webhooks, timeout_s=10.0, allow_private=True)
    ours.append(dispatcher)
    try:
        await raw_delivery(services, stalled, "2002-01-01T00:00:00.000000+00:00", due=True)
        async with dispatcher.session() as session:
            rounds = asyncio.create_task(dispatcher.deliver_due(session))
            await asyncio.wait([rounds], timeout=5.0)  # the slow endpoint is being sent to
            quick_one = await raw_delivery(services, quick,
                                           "2002-01-01T00:00:01.000000+00:00", due=True)
            if rounds.done():
                await dispatcher.deliver_due(session)
            # the fast endpoint's delivery is sent while the slow one is still held
            await until(lambda: bool(received), seconds=5.0,
                        what="the other tenant's delivery, while the slow one is held")
            released.set()
            await rounds
            await dispatcher.sent()
        assert received == [quick_one]
    finally:
        released.set()
        for endpoint, tenant in ((stalled, slow_tenant), (quick, fast_tenant)):
            await services.repos.webhooks.deactivate(endpoint.id, tenant)
        await slow_runner.cleanup()
        await fast_runner.cleanup()


async def test_claims_at_the_same_moment_do_not_share_a_delivery(
        services, ours: list[WebhookDispatcher]):
    """Four processes' claims at once, 30 times over: each due delivery goes to one (none
    of `ours` delivers, and the app's own stands aside)."""
    shared = []
    for _ in range(30):
        tenant = "claim-" + secrets.token_hex(4)
        endpoint, _ = await services.repos.webhooks.register(tenant, "http://127.0.0.1:9/h")
        start = datetime(2000, 6, 1, tzinfo=UTC)
        for i in range(5):
            await services.executor.write(
                RAW_DELIVERY, id=f"{tenant}-{i}", endpointId=endpoint.id, tenant=tenant,
                at=iso(start + timedelta(seconds=i)), due=True, status="PENDING")

        async def claim(tenant: str = tenant) -> set[str]:
            lease = iso(datetime.now(UTC) + timedelta(seconds=10))  # as deliver_due does
            return {due.delivery.id
                    for due in await services.repos.webhooks.claim_due(lease, limit=50)
                    if due.delivery.tenant == tenant}

        claims = await asyncio.gather(*(claim() for _ in range(4)))
        shared.append(sum(map(len, claims)) - len(set().union(*claims)))
        await services.repos.webhooks.deactivate(endpoint.id, tenant)
    assert shared == [0] * 30


async def fanned_out_once(services, tenant: str, hours: int,
                         fan_out: Callable[[], Awaitable[int | None]],
                         then: Callable[[], Awaitable[int | None]] | None = None) -> None:
    """Ten rounds, each of ten new events fanned out by four `fan_out`s at once (and then by
    `then`): every event becomes one delivery."""
    t = Timeline(hours=hours)
    endpoint, _ = await services.repos.webhooks.register(tenant, "http://127.0.0.1:9/hook")
    try:
        events = []
        for round_ in range(10):
            await services.executor.write(wq.SET_CURSOR, at=t.at(round_), recheck=None)
            events += await raw_event_batches(services, tenant, t.every(0.01, round_ + 0.5, 10))
            await asyncio.gather(*(fan_out() for _ in range(4)))
            if then is not None:
                await then()
        fanned = [row["id"] for row in await services.executor.read(DELIVERED, tenant=tenant)]
        assert sorted(fanned) == sorted(events)
    finally:
        await services.repos.webhooks.deactivate(endpoint.id, None)
        await t.drop(services)
        await services.executor.write(wq.SET_CURSOR, at=now_iso(), recheck=None)


async def test_fan_outs_at_the_same_moment_make_each_delivery_once(services):
    """Every process fans out the same events; two creating one delivery at once must not
    fail the round."""
    await fanned_out_once(services, "together-" + secrets.token_hex(4), 4,
                          services.repos.webhooks.fan_out)


async def test_a_fan_out_outlasted_by_others_leaves_the_page_to_them(settings, services):
    """With no retries, fan-outs at the same moment are refused for one another's changes:
    those refused end their round quietly, and every event still becomes one delivery."""
    impatient = Services.open(settings.model_copy(update={"neo4j_retry_time_s": 0.0}))
    try:
        # the last fan-out takes whatever all four left, if they all did
        await fanned_out_once(services, "outlasted-" + secrets.token_hex(4), 6,
                              impatient.repos.webhooks.fan_out, then=services.repos.webhooks.fan_out)
    finally:
        await impatient.close()


async def test_signing_secrets_are_stored_sealed_and_those_in_clear_keep_working(
    base_url, services, make_token, psi_pair, receiver
):
    """Stored sealed (AES-GCM under keys/webhook-secrets.key), never in clear; a secret an
    earlier version stored in clear still signs, and is sealed by `seal_stored_secrets`
    (run on start) to the same secret."""
    hook, url = receiver
    tenant = psi_pair["tenant"]
    endpoint, secret = await services.repos.webhooks.register(tenant, url)
    [row] = await services.executor.read(STORED_SECRET, id=endpoint.id)
    assert row["secret"].startswith("aesgcm1:") and secret not in row["secret"]

    legacy = "whsec_" + secrets.token_urlsafe(32)
    await services.executor.write(STORE_SECRET, id=endpoint.id, secret=legacy)
    token = await make_token(tenant)
    await run_job(base_url, token, psi_pair)
    await until(lambda: len(hook.received) >= 3, what="three deliveries")
    assert len(hook.events(legacy)) == 3  # signed with the secret stored in clear
    assert await services.repos.webhooks.seal_stored_secrets() >= 1
    [row] = await services.executor.read(STORED_SECRET, id=endpoint.id)
    assert row["secret"].startswith("aesgcm1:") and legacy not in row["secret"]
    await run_job(base_url, token, psi_pair)
    await until(lambda: len(hook.received) >= 6, what="three more deliveries")
    assert len(hook.events(legacy)) == 6  # the same secret, sealed
