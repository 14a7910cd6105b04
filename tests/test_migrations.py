import dataclasses
import secrets

import pytest

from trustfabric import migrations
from trustfabric.audit import now_iso
from trustfabric.errors import AppError
from trustfabric.graph.cypher import Cypher
from trustfabric.graph.psi import NewJob
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


def test_statements_are_split_and_comments_dropped():
    first = migrations.load_migrations()[0]
    assert all(s.startswith("CREATE CONSTRAINT") for s in first.statements)
    assert not any("//" in s for s in first.statements)


async def test_leases_of_jobs_running_before_the_upgrade_move_to_queue_entries(services):
    """A job running under the previous version (its lease on the job, no queue entry)
    can still be found among the unfinished jobs once 0005 has run again."""
    tenant = "legacy-" + secrets.token_hex(4)
    [(job, created)] = await services.psi.jobs.create_many([NewJob(
        {"id": "psi_" + tenant, "tenant": tenant, "partner": "p", "datasetId": "p/d",
         "datasetVersion": 1, "datasetHash": "sha256:x", "mode": "PSI", "requestSize": 1,
         "requestCommitment": "sha256:y", "serverKeyId": "k", "createdAt": now_iso(),
         "status": "RUNNING", "leaseOwner": "old-worker", "leaseUntil": "9999-01-01"},
        f"{tenant}:legacy", {"id": tenant, "key": tenant, "at": "a", "tenant": tenant,
                             "actor": "t", "action": "t", "subject": "t", "outcome": "t",
                             "details": "{}"})])
    assert created
    assert await services.psi.jobs.cancel_for_party(tenant) == []  # no entry: not found
    [leases] = [m for m in migrations.load_migrations() if m.name == "psi_leases"]
    for number, statement in enumerate(leases.statements):
        await services.executor.write(Cypher(f"test.0005.{number}", statement))
    assert await services.psi.jobs.cancel_for_party(tenant) == [job.id]
