import dataclasses
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers import outbox, raw_audit_event, raw_delivery, raw_job, raw_job_event
from trustfabric import migrations
from trustfabric.domain.audit import audit_event, iso, now_iso
from trustfabric.errors import AppError
from trustfabric.graph.cypher import Cypher
from trustfabric.graph.psi import page_key
from trustfabric.graph.queries import migrations as q


async def test_migrations_are_recorded_once_and_safe_to_rerun(services):
    expected = [m.id for m in migrations.load_migrations()]
    assert expected[:2] == ["0001", "0002"]
    rows = await services.executor.read(q.APPLIED)
    assert [r["id"] for r in rows] == expected
    assert await migrations.migrate(services.executor) == []  # nothing pending
    assert len(await services.executor.read(q.APPLIED)) == len(expected)


async def test_an_applied_migration_that_changed_is_refused(services, monkeypatch):
    changed = [dataclasses.replace(m, checksum="0" * 64) for m in migrations.load_migrations()]
    monkeypatch.setattr(migrations, "load_migrations", lambda: changed)
    with pytest.raises(AppError, match="changed after it was applied"):
        await migrations.migrate(services.executor)


async def test_leases_of_jobs_running_before_the_upgrade_move_to_queue_entries(services):
    """A job running under the previous version (its lease on the job, no queue entry)
    can still be found among the unfinished jobs once 0005 has run again."""
    tenant = "legacy-" + secrets.token_hex(4)
    [(job, created)] = await services.repos.jobs.create_many([raw_job(
        tenant, "legacy", status="RUNNING", leaseOwner="old-worker", leaseUntil="9999-01-01")])
    assert created
    assert await services.repos.jobs.cancel_for_party(tenant) == []  # no entry: not found
    [leases] = [m for m in migrations.load_migrations() if m.name == "psi_leases"]
    await migrations.apply(services.executor, leases)
    assert await services.repos.jobs.cancel_for_party(tenant) == [job.id]


async def test_audit_events_written_before_the_upgrade_are_paged_after_it(services):
    """Events as earlier versions wrote them, a node each (the oldest with no tenant key),
    are moved into batches of their own by 0018 run again: their tenant's page and every
    tenant's find them, and a cursor handed out before the upgrade pages on from where it
    was."""
    tenant = "legacy-" + secrets.token_hex(4)
    events = [audit_event(tenant=tenant, actor="test", action=action, subject="s",
                          outcome="done") for action in ("psi.run", "psi.request")]
    events[1]["at"] = iso(datetime.now(UTC) + timedelta(seconds=1))  # keys in this order
    keys = [await raw_audit_event(services, event, tenant_key=n > 0)
            for n, event in enumerate(events)]
    [batches] = [m for m in migrations.load_migrations() if m.name == "audit_batches"]
    await migrations.apply(services.executor, batches)
    page = await services.repos.audit.page(tenant, "", 10, None)
    assert [(e.id, e.key, e.action) for e in page] == [
        (event["id"], key, event["action"]) for event, key in zip(events, keys, strict=True)]
    assert [e.id for e in await services.repos.audit.page(tenant, keys[0], 10, None)] == [
        events[1]["id"]]
    everyone = await services.repos.audit.page(None, keys[0], 10, "psi.request")
    assert events[1]["id"] in [e.id for e in everyone]
    assert events[0]["id"] not in [e.id for e in everyone]


RAW_JOB = Cypher("test.raw_job", "CREATE (j:PsiJob) SET j = $props")
PAGE_KEYS = Cypher("test.page_keys",
                   "MATCH (j:PsiJob) WHERE j.id IN $ids RETURN j.id AS id, j.pageKey AS key")


async def test_jobs_recorded_before_the_upgrade_are_paged_after_it(services):
    """Jobs with no page key, as earlier versions wrote them, get from 0019 run again the
    key the service gives a new job: their tenant's page finds them, newest first, beside
    jobs recorded since, and pages on between two created in the same microsecond."""
    tenant = "legacy-" + secrets.token_hex(4)
    old = {f"psi_old{n}_{tenant}": at for n, at in enumerate([
        "2026-01-01T00:00:00.000000+00:00", "2026-01-03T09:59:59.999999+00:00",
        "2026-01-03T09:59:59.999999+00:00"])}
    for n, at in enumerate(old.values()):
        await services.executor.write(RAW_JOB, props=raw_job(tenant, f"old{n}", createdAt=at,
                                                             status="DONE").props)
    await services.repos.jobs.create_many([raw_job(
        tenant, "new", createdAt="2026-01-02T00:00:00.000000+00:00")])
    [pages] = [m for m in migrations.load_migrations() if m.name == "psi_job_pages"]
    await migrations.apply(services.executor, pages)
    keys = {row["id"]: row["key"] for row in await services.executor.read(PAGE_KEYS,
                                                                          ids=list(old))}
    assert keys == {job_id: page_key(tenant, at, job_id) for job_id, at in old.items()}
    page = (await services.repos.jobs.page(tenant, None, 10)).jobs
    assert [job.id for job in page] == [f"psi_old{n}_{tenant}" for n in (1, 2)] + [
        f"psi_new_{tenant}", f"psi_old0_{tenant}"]
    assert [job.id for job in (await services.repos.jobs.page(
        tenant, page[0].position, 1)).jobs] == [f"psi_old2_{tenant}"]


async def test_webhook_deliveries_pending_before_the_upgrade_are_due_after_it(services):
    """0008 gives each pending delivery its due entry, so deactivating its endpoint finds
    it; one whose endpoint was already deactivated is cancelled by the migration."""
    tenant = "legacy-" + secrets.token_hex(4)
    webhooks = services.repos.webhooks
    (kept, _), (gone, _) = [await webhooks.register(tenant, "https://x.example/h")
                            for _ in range(2)]
    await webhooks.deactivate(gone.id, tenant)
    legacy = {endpoint.id: await raw_delivery(services, endpoint, "9999-01-01")
              for endpoint in (kept, gone)}  # never due while the test runs
    [due] = [m for m in migrations.load_migrations() if m.name == "webhook_due"]
    await migrations.apply(services.executor, due)
    assert [d.id for d in await webhooks.settled(tenant, "CANCELLED")] == [
        legacy[gone.id]]
    await webhooks.deactivate(kept.id, tenant)
    assert {d.id for d in await webhooks.settled(tenant, "CANCELLED")} == set(
        legacy.values())


async def test_job_events_written_before_the_upgrade_are_read_after_it(services):
    """0010 moves each event of the previous version into a batch of its own, so a reader
    from before it still finds it, with everything it said."""
    tenant = "legacy-" + secrets.token_hex(4)
    before = iso(datetime.now(UTC) - timedelta(seconds=1))
    event_id = await raw_job_event(services, tenant, "psi_legacy", now_iso())
    [batches] = [m for m in migrations.load_migrations() if m.name == "job_event_batches"]
    await migrations.apply(services.executor, batches)
    assert [(e.id, e.job_id, e.status) for e in await outbox(services, before, [tenant])] == [
        (event_id, "psi_legacy", "DONE")]


# a cursor as the previous version kept it; not the live one, which the suite's fan-out moves
OLD_CURSOR = Cypher("test.old_cursor", """
    CREATE (c:WebhookCursor {id: $id, at: $at, full: true}) RETURN c.id AS id""")
CURSOR_KEYS = Cypher("test.cursor_keys", """
    MATCH (c:WebhookCursor {id: $id}) RETURN c.at AS at, keys(c) AS keys""")
DROP_CURSOR = Cypher("test.drop_cursor", """
    MATCH (c:WebhookCursor {id: $id}) DELETE c RETURN count(*) AS dropped""")


async def test_the_webhook_cursors_old_flag_is_dropped_and_its_place_kept(services):
    cursor_id, at = "old-" + secrets.token_hex(4), now_iso()
    await services.executor.write(OLD_CURSOR, id=cursor_id, at=at)
    try:
        [recheck] = [m for m in migrations.load_migrations()
                     if m.name == "webhook_cursor_recheck"]
        await migrations.apply(services.executor, recheck)
        [cursor] = await services.executor.read(CURSOR_KEYS, id=cursor_id)
        assert cursor["at"] == at and "full" not in cursor["keys"]
    finally:
        await services.executor.write(DROP_CURSOR, id=cursor_id)
