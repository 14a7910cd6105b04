"""Signed webhooks to a real local aiohttp receiver: order, signatures, retries, dead
letters and their replay, tenant walls."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from tests.conftest import codes, free_port
from tests.test_psi import selectors
from trustfabric.auth import Role
from trustfabric.client import PsiClient
from trustfabric.errors import BadUserInput
from trustfabric.webhooks import SIGNATURE_HEADER, check_url, sign, verify_signature

REGISTER = "mutation($url: String!) { registerWebhook(url: $url) { webhook { id } secret } }"


class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[bytes, str]] = []
        self.failures_left = 0  # answer 500 this many times first

    async def handle(self, request: web.Request) -> web.Response:
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
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield receiver, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


async def run_job(base_url: str, token: str, psi_pair: dict) -> str:
    async with PsiClient(base_url, token) as client:
        job = await client.submit(psi_pair["dataset"], client.prepare(selectors(3, 13),
                                                                      "PSI_CA"))
        await client.wait(job["id"])
    return str(job["id"])


async def until(condition, seconds: float = 15.0) -> None:
    for _ in range(int(seconds * 20)):
        if condition():
            return
        await asyncio.sleep(0.05)


async def test_job_events_arrive_signed_in_order(base_url, gql, make_token, psi_pair, receiver):
    hook, url = receiver
    token = await make_token(psi_pair["tenant"])
    secret = (await gql(REGISTER, token, url=url))["data"]["registerWebhook"]["secret"]
    job_id = await run_job(base_url, token, psi_pair)
    await until(lambda: len(hook.received) >= 3)
    events = hook.events(secret)
    assert [(e["jobId"], e["type"]) for e in events] == [
        (job_id, "psi.job.queued"), (job_id, "psi.job.running"), (job_id, "psi.job.done")]
    assert all(e["tenant"] == psi_pair["tenant"] for e in events)
    body, header = hook.received[0]
    assert not verify_signature(secret, body.replace(b"queued", b"cancel"), header)
    assert not verify_signature("whsec_wrong", body, header)


async def test_failures_are_retried_then_dead_lettered_then_replayed(
    base_url, gql, make_token, psi_pair, receiver
):
    hook, url = receiver
    token = await make_token(psi_pair["tenant"])
    operator = await make_token("ops", Role.OPERATOR)
    secret = (await gql(REGISTER, token, url=url))["data"]["registerWebhook"]["secret"]

    hook.failures_left = 2  # each delivery may take retries: three attempts are allowed
    await run_job(base_url, token, psi_pair)
    await until(lambda: len(hook.received) >= 1)
    assert hook.received, "a delivery that failed twice arrived on its third attempt"

    hook.received.clear()
    hook.failures_left = 10_000  # now everything fails
    job_id = await run_job(base_url, token, psi_pair)
    dead = []

    async def dead_letters():
        result = await gql("query { deadLetters { id jobId jobStatus attempts lastError } }",
                           operator)
        return [d for d in result["data"]["deadLetters"] if d["jobId"] == job_id]

    for _ in range(200):
        dead = await dead_letters()
        if len(dead) == 3:
            break
        await asyncio.sleep(0.05)
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
    await until(lambda: len(hook.received) >= 3)
    assert {e["status"] for e in hook.events(secret)} == {"QUEUED", "RUNNING", "DONE"}
    assert await dead_letters() == []


async def test_another_tenants_endpoint_hears_nothing(base_url, gql, make_token, psi_pair,
                                                     receiver):
    hook, url = receiver
    other = await make_token(psi_pair["tenant"] + "-other")
    await gql(REGISTER, other, url=url)
    await run_job(base_url, await make_token(psi_pair["tenant"]), psi_pair)
    await asyncio.sleep(1.0)
    assert hook.received == []


def test_urls_and_signatures():
    for bad in ("ftp://x.example/h", "not a url", "http://"):
        with pytest.raises(BadUserInput):
            check_url(bad, allow_private=True)
    for private in ("http://127.0.0.1/h", "http://10.1.2.3/h", "http://localhost:9/h",
                    "http://[::1]/h", "http://169.254.169.254/latest"):
        with pytest.raises(BadUserInput):
            check_url(private, allow_private=False)
    assert check_url("https://hooks.example.com/x", allow_private=False)
    header = sign("s", b"{}", 1_000)
    assert not verify_signature("s", b"{}", header)  # too old
