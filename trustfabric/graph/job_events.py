"""Job events as readers see them: pages of the batches other statements wrote, in order,
and retirement of batches past their retention."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from trustfabric.domain.audit import AuditEvent, iso, now_iso
from trustfabric.domain.events.cursor import EventPage
from trustfabric.domain.events.records import PSI_JOB, JobEvent
from trustfabric.graph.audit import AuditRepository
from trustfabric.graph.executor import GraphExecutor, Tx
from trustfabric.graph.queries import ingest
from trustfabric.graph.queries import job_events as q


class JobEventRepository:
    def __init__(self, executor: GraphExecutor, origin: str) -> None:
        self._executor = executor
        # the process whose writes `foreign` reads leave out (see PsiJobRepository)
        self.origin = origin

    async def drop_events(self, before: str, slice_s: float = 2.0) -> int:
        """Deletes the batches of job events older than `before`, `slice_s` seconds of them
        a statement from the oldest on; returns how many batches (0: none was that old).
        The oldest is looked up once, and again only past a gap (decision 0011)."""
        dropped, start = 0, await self._oldest_event(before)
        while start is not None:
            until = min(before, iso(datetime.fromisoformat(start) + timedelta(seconds=slice_s)))
            rows = await self._executor.write(q.DROP_EVENTS, **{"from": start, "before": until})
            in_slice = rows[0]["dropped"] if rows else 0
            dropped += in_slice
            if until >= before:
                break
            start = until if in_slice else await self._oldest_event(before)  # past a gap
            if start is not None and start < until:  # never back
                start = None
        return dropped

    async def _oldest_event(self, before: str) -> str | None:
        rows = await self._executor.read(q.OLDEST_EVENT, before=before)
        return rows[0]["at"] if rows else None

    async def events_after(self, after: str, limit: int = 100, *, foreign: bool = False,
                           tenants: list[str] | None = None) -> EventPage:
        """Job events of the batches written after `after` (a batch's time is at or after
        each of its events'), oldest first, from about `limit` batches; only those other
        processes wrote if `foreign`, only of `tenants` if given. A full page says where it
        stops (`until`): every batch up to then has been read, so the next page reads
        after it."""
        origin = self.origin if foreign else None
        rows = await self._executor.read(q.EVENTS_AFTER, after=after, limit=limit,
                                         origin=origin)
        until = None
        if len(rows) == limit:  # more may match: only an ordered read says which come first
            rows = await self._executor.read(q.EVENTS_AFTER_ORDERED, after=after, limit=limit,
                                             origin=origin)
        if len(rows) == limit:
            until = rows[-1]["batch"]["at"]
            at_end = await self._executor.read(q.EVENTS_AT, at=until, origin=origin)
            rows = [row for row in rows if row["batch"]["at"] < until] + at_end
        wanted = set(tenants) if tenants is not None else None
        # `written`: when the statement that wrote the event was sent. A DONE event's own
        # time is when its bundle was sealed, which may be long before its batch commits
        # (a worker held up by the database)
        # batches written before topics were are PSI jobs' events
        events = [JobEvent(id=i, at=at, tenant=tenant, job_id=job_id, status=status,
                           written=batch["at"], topic=topic)
                  for row in rows for batch in [row["batch"]]
                  for i, at, tenant, job_id, status, topic in zip(
                      batch["ids"], batch["ats"], batch["tenants"], batch["jobIds"],
                      batch["statuses"], batch.get("topics") or [PSI_JOB] * len(batch["ids"]),
                      strict=True)
                  if wanted is None or tenant in wanted]
        return EventPage(sorted(events, key=lambda event: event.at), until)


# Job events to and from rows: a batch's columns are read above; a statement that writes
# events returns each as a map, and the webhooks' fan-out takes them as parameters.
def job_event(row: dict[str, Any]) -> JobEvent:
    """An event as a statement that wrote it returns it (id, at, tenant, jobId, status)."""
    return JobEvent(id=row["id"], at=row["at"], tenant=row["tenant"], job_id=row["jobId"],
                    status=row["status"], topic=row.get("topic") or PSI_JOB)


def event_row(event: JobEvent) -> dict[str, Any]:
    """An event as a statement's parameter: the map `job_event` reads, with `written`."""
    return {"id": event.id, "at": event.at, "tenant": event.tenant, "jobId": event.job_id,
            "status": event.status, "written": event.written, "topic": event.topic}


class Outbox:
    """Writes events in the transaction of the change they announce; other processes'
    pollers read them, and this process tells its own subscribers once it commits."""

    def __init__(self, origin: str, on_events: Callable[[list[JobEvent]], None]) -> None:
        self._origin = origin
        self.told = on_events

    async def write_in(self, tx: Tx, events: list[JobEvent]) -> None:
        if not events:
            return
        await tx.run(q.WRITE_BATCH, at=max(now_iso(), *(e.at for e in events)),
                     origin=self._origin, ids=[e.id for e in events],
                     ats=[e.at for e in events], tenants=[e.tenant for e in events],
                     subjects=[e.job_id for e in events],
                     statuses=[e.status for e in events], topics=[e.topic for e in events])

    async def create(self, executor: GraphExecutor, kind: str, props: dict[str, Any],
                     audit: AuditEvent, event: JobEvent) -> bool:
        """Creates the entity `props` describes unless its key exists, with its audit event
        and `event`, in one transaction; True when it was created (and announced)."""

        async def work(tx: Tx) -> bool:
            rows = await tx.run(ingest.CREATE_MISSING[kind],
                                rows=[{"key": props["key"], "props": props}])
            if not rows or not rows[0]["created"]:
                return False
            await AuditRepository.record_in(tx, audit)
            await self.write_in(tx, [event])
            return True

        created = await executor.write_tx(work)
        if created:
            self.told([event])
        return created
