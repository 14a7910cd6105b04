"""Audit events are kept in batches, a tenant's events of one statement a node (decision
0027); pages read them as events, from any event on."""

import secrets

from tests.helpers import raw_job
from trustfabric.domain.audit import AuditRecord, audit_event, now_iso
from trustfabric.graph.cypher import Cypher

BATCHES = Cypher("test.audit_batches", """
    MATCH (a:AuditBatch) WHERE a.tenant IN $tenants
    RETURN a.tenant AS tenant, a.subjects AS subjects""")


async def batches(services, tenants: list[str]) -> list[tuple[str, list[str]]]:
    return sorted((row["tenant"], row["subjects"])
                  for row in await services.executor.read(BATCHES, tenants=tenants))


async def read_all(services, tenant: str | None, after: str, size: int,
                   action: str | None = None) -> list[AuditRecord]:
    """Every event from `after` on, `size` a page, each page from where the last ended."""
    seen: list[AuditRecord] = []
    for _ in range(50):
        page = await services.repos.audit.page(tenant, after, size, action)
        if not page:
            return seen
        seen += page
        after = page[-1].key
    raise AssertionError("the cursor does not move on")


async def test_a_tenants_events_of_one_statement_are_one_batch_paged_event_by_event(services):
    tenants = [f"batch-{secrets.token_hex(3)}-{n}" for n in range(2)]
    start = now_iso()
    owner = [tenants[0], tenants[1]] * 3 + [tenants[0]] * 2
    events = [audit_event(tenant=who, actor="test", subject=f"s{n}", outcome="done",
                          action="psi.request" if n % 3 == 0 else "psi.run")
              for n, who in enumerate(owner)]
    await services.repos.audit.record(*events)
    mine = {who: [e["subject"] for e in events if e["tenant"] == who] for who in tenants}
    assert await batches(services, tenants) == sorted(mine.items())
    for size in (1, 2, 3, 50):  # pages that end inside a batch go on from there
        for who in tenants:
            assert [e.subject for e in await read_all(services, who, "", size)] == mine[who]
        every = [e for e in await read_all(services, None, start, size) if e.tenant in tenants]
        assert [e.key for e in every] == sorted(e.key for e in every)
        assert sorted(e.id for e in every) == sorted(e["id"] for e in events)
        for who in tenants:
            assert [e.subject for e in every if e.tenant == who] == mine[who]
    assert [e.subject for e in await read_all(services, tenants[0], "", 1, "psi.request")] == [
        "s0", "s6"]
    assert [(e.actor, e.outcome, e.action, e.details) for e in
            await read_all(services, tenants[1], "", 2, "psi.request")] == [
        ("test", "done", "psi.request", {})]


async def test_jobs_created_in_one_statement_are_audited_a_batch_a_tenant(services):
    """A replayed request (its idempotency key known) writes no event, and a statement with
    nothing but replays writes no batch."""
    base = f"jobs-{secrets.token_hex(3)}"
    tenants = [f"{base}-{n}" for n in range(2)]
    jobs = services.repos.jobs
    first = raw_job(tenants[0], "a")
    await jobs.create_many([first])
    replay = raw_job(tenants[0], "a", id=f"psi_again_{tenants[0]}")
    created = await jobs.create_many([replay, raw_job(tenants[0], "b"), raw_job(tenants[1], "c")])
    assert [was for _, was in created] == [False, True, True]
    assert await batches(services, tenants) == [
        (tenants[0], ["t"]), (tenants[0], ["t"]), (tenants[1], ["t"])]
    assert [(e.id, e.tenant) for who in tenants for e in await read_all(services, who, "", 5)
            ] == [("a", tenants[0]), ("b", tenants[0]), ("c", tenants[1])]
    await jobs.create_many([raw_job(tenants[1], "c", id="psi_again_c")])
    assert len(await batches(services, tenants)) == 3


async def test_a_filtered_page_is_full_whatever_batches_lie_between(services, tenant):
    """Batches holding none of the action asked for take no place in the page's bound:
    the page is full while events follow, so a client knows to ask for the next."""
    def event(action: str, n: int) -> dict:
        return audit_event(tenant=tenant, actor="test", action=action, subject=f"s{n}",
                           outcome="done")

    start = now_iso()
    await services.repos.audit.record(event("psi.request", 0))
    for n in range(1, 6):  # one at a time: a batch each
        await services.repos.audit.record(event("psi.run", n))
    await services.repos.audit.record(event("psi.request", 6), event("psi.request", 7))
    for who, after in ((tenant, ""), (None, start)):
        page = await services.repos.audit.page(who, after, 2, "psi.request")
        assert [e.subject for e in page if e.tenant == tenant] == ["s0", "s6"]
        rest = await services.repos.audit.page(who, page[-1].key, 2, "psi.request")
        assert [e.subject for e in rest if e.tenant == tenant] == ["s7"]
