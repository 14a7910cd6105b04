"""PSI jobs: durable records, leases, exactly-once completion, the events they write, and
retirement."""

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trustfabric.domain.audit import now_iso
from trustfabric.domain.events.records import JobEvent
from trustfabric.domain.psi.records import (
    CompletedJob,
    FailedJob,
    JobRecord,
    NewJob,
    job_position,
    split_position,
)
from trustfabric.errors import BadUserInput, NotFound
from trustfabric.graph.audit import AuditRepository, filed
from trustfabric.graph.cypher import Cypher
from trustfabric.graph.executor import GraphExecutor, Tx
from trustfabric.graph.job_events import job_event
from trustfabric.graph.queries import psi as q

# Claims of one job before it is failed for good (each crash of its worker is one).
MAX_ATTEMPTS = 5


# A tenant's jobs are paged newest first by one index, in key order: the tenant, the
# creation time with each digit d written 9 - d (timestamps are written in one width, so
# the later sorts first), and the id for jobs created in the same microsecond. The database
# reads an index range in order and stops at the page's end; it does not read one backwards.
_NEWEST_FIRST = str.maketrans("0123456789", "9876543210")


def page_key(tenant: str, created_at: str, job_id: str) -> str:
    return f"{tenant}|{created_at.translate(_NEWEST_FIRST)}|{job_id}"


def _position(key: str) -> str:
    """The position (`JobRecord.position`) of the job whose page key is `key`."""
    # a tenant named before names were checked may hold "|"; time and id do not
    _, created_at, job_id = key.rsplit("|", 2)
    return job_position(created_at.translate(_NEWEST_FIRST), job_id)


@dataclass(frozen=True)
class JobPage:
    """Jobs of a page, and where to go on from when the page looked at all it may and found
    fewer than it asked for: the last job it looked at, not among `jobs`."""

    jobs: list[JobRecord]
    resume: str | None = None


class PsiJobRepository:
    def __init__(self, executor: GraphExecutor, origin: str,
                 on_events: Callable[[list[JobEvent]], None]) -> None:
        self._executor = executor
        # Told of this process's committed job events: subscribers hear at once (decision 0008).
        self.on_events = on_events
        self.origin = origin
        # Same-kind job writes collide side by side: one at a time a process (decision 0004).
        self._writing = asyncio.Lock()

    async def create_many(self, jobs: list[NewJob]) -> list[tuple[JobRecord, bool]]:
        """Records queued jobs with their QUEUED and audit events in one statement, or
        finds those already recorded under the same idempotency key: (job, created) each."""
        if not jobs:
            return []
        queued = {job.props["id"]: {"id": secrets.token_hex(10), "at": job.props["createdAt"],
                                    "tenant": job.props["tenant"], "jobId": job.props["id"],
                                    "status": "QUEUED"} for job in jobs}
        rows_in = [{"idemKey": job.idem_key, "audit": job.audit, "event": queued[job.props["id"]],
                    "props": job.props | {"pageKey": page_key(job.props["tenant"],
                                                               job.props["createdAt"],
                                                               job.props["id"])}}
                   for job in jobs]
        at = max(job.props["createdAt"] for job in jobs)
        async with self._writing:
            rows_in, audits = audited(rows_in)
            rows = await self._write(q.CREATE_JOBS, at, audits, rows=rows_in)
        sent = {job.props["id"]: job.props for job in jobs}
        by_key: dict[str, JobRecord] = {}
        for row in rows:  # a key twice in one batch: the row that created the job wins
            created = row["id"] in queued  # this batch created it: its id is one proposed
            if row["idemKey"] not in by_key or created:
                job = (sent[row["id"]] | {"request": None}) if created else row
                by_key[row["idemKey"]] = JobRecord.from_row(job)
        # under a key sent twice, the request whose job was not created is a replay
        results = [(record, record.id == job.props["id"])
                   for job in jobs for record in [by_key[job.idem_key]]]
        self.on_events([job_event(queued[record.id]) for record, created in results if created])
        return results

    async def get(self, job_id: str, tenant: str | None) -> JobRecord:
        rows = await self._executor.read(q.JOB, id=job_id, tenant=tenant)
        if not rows:
            raise NotFound(f"PSI job {job_id}")
        return JobRecord.from_row(rows[0]["job"])

    async def by_idempotency_keys(self, idem_keys: list[str]) -> list[JobRecord | None]:
        rows = await self._executor.read(q.JOBS_BY_IDEMPOTENCY_KEY, idemKeys=idem_keys)
        found = {row["idemKey"]: JobRecord.from_row(row["job"]) for row in rows}
        return [found.get(key) for key in idem_keys]

    async def page(self, tenant: str, after: str | None, limit: int,
                   status: str | None = None, examine: int | None = None) -> JobPage:
        """A tenant's jobs, newest first, after the job `after` names (`JobRecord.position`);
        a bare creation time (cursors of earlier versions) passes every job created then.
        Filtered by status, a page looks at the next `examine` jobs at most, or a status
        few jobs have would read on through the tenant's whole history."""
        if after is None:
            start = tenant + "|"
        else:
            created_at, job_id = split_position(after)
            start = page_key(tenant, created_at, job_id or "~")  # "~" after every id
        last, resume = tenant + "|~", None
        if status is not None and examine is not None:
            [bound] = await self._executor.read(q.JOBS_PAGE_END, tenant=tenant, start=start,
                                                last=last, examine=examine)
            if bound["examined"] == examine:
                last = bound["last"]
                resume = _position(last)
        rows = await self._executor.read(q.JOBS_PAGE, tenant=tenant, start=start, last=last,
                                         limit=limit, status=status)
        jobs = [JobRecord.from_row(row["job"]) for row in rows]
        return JobPage(jobs, resume if len(jobs) < limit else None)

    async def queue_depth(self) -> dict[str, int]:
        return {row["tenant"]: row["queued"] for row in await self._executor.read(q.QUEUE_DEPTH)}

    async def claim(self, owner: str, allocation: dict[str, int], lease_until: str,
                    reclaim: int = 0, ids: list[str] | None = None,
                    busy: list[str] | None = None) -> list[JobRecord]:
        """Leases the jobs `ids` if still queued, each tenant's share of the other queued
        jobs, and up to `reclaim` jobs whose lease ran out (except the `busy` ones `owner`
        is still answering), to `owner`; with a RUNNING event for each newly started job,
        and a FAILED one for each job given up after its last attempt."""
        events: list[JobEvent] = []

        async def work(tx: Tx) -> list[JobRecord]:
            now = now_iso()
            events.clear()  # from a try that was retried
            jobs: list[JobRecord] = []
            batch = self._batch(now)
            if reclaim:
                given_up = await tx.run(q.GIVE_UP, now=now, maxAttempts=MAX_ATTEMPTS, **batch)
                events.extend(job_event(row["result"]) for row in given_up)
                reclaimed = await tx.run(q.RECLAIM, owner=owner, limit=reclaim, now=now,
                                         until=lease_until, maxAttempts=MAX_ATTEMPTS,
                                         busy=busy or [])
                jobs += [JobRecord.from_row(row["job"]) for row in reclaimed]
            lease = {"owner": owner, "now": now, "until": lease_until, **batch}
            started = await tx.run(q.CLAIM_IDS, ids=ids, **lease) if ids else []
            for tenant, limit in allocation.items():
                started += await tx.run(q.CLAIM, tenant=tenant, limit=limit, **lease)
            started_jobs = [JobRecord.from_row(row["result"]) for row in started]
            # each attempt's RUNNING event, named as the statement names it
            events.extend(JobEvent(id=f"{job.id}:run{job.attempts}", at=now, tenant=job.tenant,
                                   job_id=job.id, status="RUNNING") for job in started_jobs)
            return jobs + started_jobs

        async with self._writing:
            jobs = await self._executor.write_tx(work)
        self.on_events(events)
        return jobs

    async def renew(self, owner: str, job_ids: list[str], lease_until: str) -> None:
        await self._executor.write(q.RENEW, ids=job_ids, owner=owner, until=lease_until)

    async def finish(self, owner: str, done: list[CompletedJob], failed: list[FailedJob]
                     ) -> list[str]:
        """Writes results, bundles, events and audit events (each job's `audit`) of a batch
        in one transaction. Returns the ids this worker finished; a job whose lease it lost
        is not among them."""
        statements = [(q.COMPLETE, [completed_row(job) for job in done],
                       max((job.completed_at for job in done), default="")),
                      (q.FAIL, [failed_row(job) for job in failed],
                       max((job.at for job in failed), default=""))]

        async def work(tx: Tx) -> list[JobEvent]:
            events = []
            for query, rows, latest in statements:
                if rows:
                    rows, audits = audited(rows)
                    written = await tx.run(query, rows=rows, owner=owner,
                                           **self._batch(latest, audits))
                    events += [job_event(row["result"]) for row in written]
            return events

        async with self._writing:
            events = await self._executor.write_tx(work)
        self.on_events(events)
        return [event.job_id for event in events]

    async def cancel(self, job_id: str, tenant: str | None, audit: dict[str, Any]) -> None:
        async def work(tx: Tx) -> list[JobEvent]:
            if not await tx.run(q.JOB, id=job_id, tenant=tenant):
                raise NotFound(f"PSI job {job_id}")
            now = now_iso()
            rows = await tx.run(q.CANCEL, id=job_id, tenant=tenant, now=now,
                                eventId=secrets.token_hex(10), **self._batch(now))
            if not rows:
                raise BadUserInput(f"PSI job {job_id} has already finished")
            await AuditRepository.record_in(tx, audit)
            return [job_event(row["result"]) for row in rows]

        self.on_events(await self._executor.write_tx(work))

    async def cancel_for_party(self, party: str) -> list[str]:
        now = now_iso()
        events = [job_event(row)
                  for row in await self._write(q.CANCEL_FOR_PARTY, now, party=party, now=now)]
        self.on_events(events)
        return [event.job_id for event in events]

    async def retire(self, before: str, limit: int) -> int:
        """Deletes up to `limit` finished jobs created before `before`; how many."""
        rows = await self._executor.read(q.FINISHED_BEFORE, before=before, limit=limit)
        if not rows:
            return 0
        retired = await self._executor.write(q.RETIRE, ids=[row["id"] for row in rows])
        return int(retired[0]["retired"])

    async def inline_results(self, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` finished jobs whose results are still in the graph (id, response,
        envelope), as earlier versions wrote them."""
        return await self._executor.read(q.INLINE_RESULTS, limit=limit)

    async def move_results(self, rows: list[dict[str, Any]]) -> None:
        """Points each job (`id`) at its results' new place (`responseRef`, `bundleRef`,
        `bundleHash`) and drops the copies kept in the graph."""
        await self._executor.write(q.MOVE_RESULTS, rows=rows)

    def _batch(self, latest: str, audits: list[dict[str, str]] | None = None
               ) -> dict[str, Any]:
        """The parameters of the batch of job events a statement writes: this process as
        their origin, and the batch's time, taken as the statement is sent (and never
        before its `latest` event's). A batch stamped with its events' own time would
        commit later by all it waited for (the writing lock, the finisher's spacing), and
        readers allow only LATE for that. The statement writes its rows' audit events in the
        batches `audits` heads (`audited`), if any."""
        return {"at": max(latest, now_iso()), "origin": self.origin,
                "auditBatches": audits or []}

    async def _write(self, query: Cypher, latest: str,
                     audits: list[dict[str, str]] | None = None,
                     **params: Any) -> list[dict[str, Any]]:
        """A statement that writes its job events as a batch: what it returns. The batch's
        time is taken in the unit of work, so a retry takes it again."""

        async def work(tx: Tx) -> list[dict[str, Any]]:
            return await tx.run(query, **self._batch(latest, audits), **params)

        return [row["result"] for row in await self._executor.write_tx(work)]


def audited(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Rows that each bring their `audit` event, the events filed in batches; and the
    batches' heads (`graph.audit.filed`)."""
    audits, batches = filed([row["audit"] for row in rows])
    return [row | {"audit": audit} for row, audit in zip(rows, audits, strict=True)], batches


def completed_row(job: CompletedJob) -> dict[str, Any]:
    """The parameters `q.COMPLETE` writes a completed job from."""
    return {"id": job.id, "tenant": job.tenant, "responseRef": job.response_ref,
            "commitment": job.commitment, "completedAt": job.completed_at,
            "bundleId": job.bundle_id, "bundleRef": job.bundle_ref,
            "bundleHash": job.bundle_hash, "eventId": job.event_id, "audit": job.audit}


def failed_row(job: FailedJob) -> dict[str, Any]:
    """The parameters `q.FAIL` writes a failed job from."""
    return {"id": job.id, "tenant": job.tenant, "code": job.code, "message": job.message,
            "eventId": job.event_id, "at": job.at, "audit": job.audit}
