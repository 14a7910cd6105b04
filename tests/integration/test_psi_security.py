"""The pilot's security tests: no selector leaks, tenant walls, quotas."""

import asyncio
import base64
import logging
import time
from pathlib import Path

import private_set_intersection.python as psi
import pytest

from tests.helpers import OPERATOR, codes, selectors
from trustfabric.client.psi import PsiClient
from trustfabric.domain.auth import Role
from trustfabric.domain.controls import Quota

JOB = "query($id: ID!) { psiJob(id: $id) { id status response tenant } }"
CANCEL = "mutation($id: ID!) { cancelPsiJob(id: $id) { status } }"
REQUEST = "mutation($input: RequestPsiInput!) { requestPsi(input: $input) { id } }"


def secrets_of(selector_list: list[str], request_b64: str) -> list[str]:
    """Every form of the selectors that must never show up: clear, and blinded."""
    raw = base64.b64decode(request_b64)
    request = psi.Request()
    request.ParseFromString(raw)
    blinded = [e for e in request.encrypted_elements]
    return [*selector_list, request_b64,
            *(base64.b64encode(e).decode() for e in blinded), *(e.hex() for e in blinded)]


async def test_no_selector_reaches_logs_audit_events_errors_or_metrics(
    base_url, http, gql, make_token, psi_pair, embedded, caplog
):
    caplog.set_level(logging.DEBUG)
    token = await make_token(psi_pair["tenant"])
    mine = selectors(6, 10)
    forbidden: list[str] = []
    async with PsiClient(base_url, token) as client:
        for mode in ("PSI", "PSI_CA"):
            prepared = client.prepare(mine, mode)
            forbidden += secrets_of(mine, prepared.request)
            job = await client.submit(psi_pair["dataset"], prepared)
            await client.wait(job["id"])
        # refused requests too: out of scope, truncated, tiny
        tiny = client.prepare(mine[:2])
        forbidden += secrets_of(mine[:2], tiny.request)
        errors = []
        for dataset, request in (("nobody/else", prepared.request),
                                 (psi_pair["dataset"], prepared.request[:40]),
                                 (psi_pair["dataset"], tiny.request)):
            result = await gql(REQUEST, token, input={
                "datasetId": dataset, "mode": "PSI_CA", "request": request,
                "idempotencyKey": f"leak-{len(errors)}"})
            errors.append(str(result))
            assert result["errors"]

    auditor = await make_token(psi_pair["tenant"], Role.AUDITOR)
    audit = str(await gql("query { auditEvents(first: 100) { events { action subject outcome "
                          "details } } }", auditor))
    metrics = (await http.get("/metrics")).text
    database_logs = "".join(p.read_text(errors="replace")
                            for p in Path(embedded.data_dir).rglob("*.log*") if p.is_file())
    database_logs += (Path(embedded.data_dir) / "arcadedb.out").read_text(errors="replace")
    haystacks = {"logs": caplog.text, "audit": audit, "errors": "".join(errors),
                 "metrics": metrics, "database logs": database_logs}
    assert "psi.request" in audit and "refused" in audit  # the scan looks at real content
    for where, text in haystacks.items():
        leaked = [s for s in forbidden if s in text]
        assert not leaked, f"{len(leaked)} selector forms found in {where}"


async def test_another_tenant_cannot_read_or_cancel_a_job(base_url, gql, make_token, psi_pair,
                                                          worker, services):
    owner = await make_token(psi_pair["tenant"])
    intruder = await make_token(psi_pair["tenant"] + "-x")
    async with PsiClient(base_url, owner) as client:
        await worker.stop()  # the job stays queued: cancellable, by its owner only
        try:
            queued = await client.submit(psi_pair["dataset"], client.prepare(selectors(3, 13)))
            assert codes(await gql(CANCEL, intruder, id=queued["id"])) == ["NOT_FOUND"]
            assert codes(await gql(JOB, intruder, id=queued["id"])) == ["NOT_FOUND"]
            cancelled = await gql(CANCEL, owner, id=queued["id"])
            assert cancelled["data"]["cancelPsiJob"]["status"] == "CANCELLED"
            # and it left the queue: no worker will find it there
            assert psi_pair["tenant"] not in await services.repos.jobs.queue_depth()
        finally:
            worker.start()
        job = await client.submit(psi_pair["dataset"], client.prepare(selectors(3, 13)))
        await client.wait(job["id"])
    bundle = await gql("query($id: ID!) { proofBundle(jobId: $id) { id } }", intruder,
                       id=job["id"])
    assert bundle["data"]["proofBundle"] is None
    # the owner reads the result; an auditor and an operator read the job without it
    assert (await gql(JOB, owner, id=job["id"]))["data"]["psiJob"]["response"]
    for role, tenant in ((Role.AUDITOR, psi_pair["tenant"]), (Role.OPERATOR, "ops")):
        seen = (await gql(JOB, await make_token(tenant, role), id=job["id"]))["data"]["psiJob"]
        assert seen["status"] == "DONE" and seen["response"] is None


async def test_quota_refuses_with_retry_after_and_counts_no_job(services, gql, make_token,
                                                                psi_pair):
    tenant = psi_pair["tenant"]
    await services.controls.change(
        OPERATOR, lambda c: c.with_tenant(tenant, quota=Quota(3, 60)), "test")
    token = await make_token(tenant)
    request = PsiClient.prepare(selectors(4, 12), "PSI_CA").request
    # The sliding window counter's windows start on the clock's minutes, and just after
    # one the last minute's count is weighted a shade under whole: 3 requests before it and
    # a 4th after is 2.99 of 3. Not across a minute, then.
    if (into_minute := time.time() % 60) > 55:
        await asyncio.sleep(60.1 - into_minute)
    results = [await gql(REQUEST, token, input={
        "datasetId": psi_pair["dataset"], "mode": "PSI_CA", "request": request,
        "idempotencyKey": f"q{n}"}) for n in range(4)]
    assert [codes(r) for r in results[:3]] == [[], [], []]
    assert codes(results[3]) == ["QUOTA_EXCEEDED"]
    assert 1 <= results[3]["errors"][0]["extensions"]["retryAfterSeconds"] <= 60


@pytest.mark.parametrize("role", [Role.MEMBER, Role.AUDITOR])
async def test_only_operators_change_controls(gql, make_token, psi_pair, role):
    token = await make_token(psi_pair["tenant"], role)
    result = await gql("mutation { setOptOut(party: \"x\", optedOut: true) { document } }",
                       token)
    assert codes(result) == ["FORBIDDEN"]
