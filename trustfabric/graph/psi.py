"""Partner datasets and PSI jobs: durable records, leases, exactly-once completion."""

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from trustfabric.domain.audit import iso, now_iso
from trustfabric.errors import BadUserInput, NotFound
from trustfabric.graph.audit import AuditRepository
from trustfabric.graph.cypher import Cypher
from trustfabric.graph.executor import GraphExecutor, Tx
from trustfabric.graph.queries import psi as q


@dataclass(frozen=True)
class DatasetRecord:
    id: str
    partner: str
    name: str
    version: int
    hash: str | None
    size: int
    uploaded_at: str | None

    @property
    def version_key(self) -> str:
        return f"{self.id}@{self.version}"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "DatasetRecord":
        d, v = row["dataset"], row["version"] or {}
        return cls(id=d["id"], partner=d["partner"], name=d["name"],
                   version=d["currentVersion"], hash=v.get("hash"), size=v.get("size", 0),
                   uploaded_at=v.get("uploadedAt"))


@dataclass(frozen=True)
class VersionRecord:
    key: str
    dataset_id: str
    partner: str
    version: int
    hash: str
    size: int
    uploaded_at: str

    @classmethod
    def from_row(cls, v: dict[str, Any]) -> "VersionRecord":
        return cls(key=v["key"], dataset_id=v["datasetId"], partner=v["partner"],
                   version=v["version"], hash=v["hash"], size=v["size"],
                   uploaded_at=v["uploadedAt"])


@dataclass(frozen=True)
class JobRecord:
    id: str
    tenant: str
    partner: str
    dataset_id: str
    dataset_version: int
    dataset_hash: str
    mode: str
    status: str
    request_size: int
    request_commitment: str
    server_key_id: str
    created_at: str
    started_at: str | None = None
    completed_at: str | None = None
    response: str | None = None
    response_commitment: str | None = None
    bundle_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    attempts: int = 0
    setup_id: str | None = None
    max_client_items: int | None = None
    request: str | None = field(default=None, repr=False)  # base64; only while pending

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "JobRecord":
        names = {
            "id": "id", "tenant": "tenant", "partner": "partner", "datasetId": "dataset_id",
            "datasetVersion": "dataset_version", "datasetHash": "dataset_hash", "mode": "mode",
            "status": "status", "requestSize": "request_size",
            "requestCommitment": "request_commitment", "serverKeyId": "server_key_id",
            "createdAt": "created_at", "startedAt": "started_at", "completedAt": "completed_at",
            "response": "response", "responseCommitment": "response_commitment",
            "bundleId": "bundle_id", "errorCode": "error_code", "errorMessage": "error_message",
            "attempts": "attempts", "request": "request", "setupId": "setup_id",
            "maxClientItems": "max_client_items",
        }
        return cls(**{attr: row[key] for key, attr in names.items() if row.get(key) is not None})


# Claims of one job before it is failed for good (each crash of its worker is one).
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class NewJob:
    props: dict[str, Any]
    idem_key: str
    audit: dict[str, Any]


class DatasetRepository:
    def __init__(self, executor: GraphExecutor) -> None:
        self._executor = executor

    async def get(self, dataset_id: str) -> DatasetRecord:
        rows = await self._executor.read(q.DATASET, id=dataset_id)
        if not rows:
            raise NotFound(f"dataset {dataset_id}")
        return DatasetRecord.from_row(rows[0])

    async def of_partner(self, partner: str | None, limit: int = 500) -> list[DatasetRecord]:
        rows = await self._executor.read(q.DATASETS, partner=partner, limit=limit)
        return [DatasetRecord.from_row(row) for row in rows]

    async def add_version(self, dataset_id: str, items: list[str], content_hash: str,
                          audit: list[dict[str, Any]], new: tuple[str, str] | None = None,
                          ) -> tuple[DatasetRecord, bool]:
        """A new version unless the content equals the current one: (dataset, created).
        With `new` (partner, name) the dataset itself is registered in the same
        transaction, so a refused registration leaves nothing behind."""

        async def work(tx: Tx) -> tuple[DatasetRecord, bool]:
            if new is not None:
                await tx.run(q.CREATE_DATASET, id=dataset_id, partner=new[0], name=new[1],
                             now=now_iso())
            rows = await tx.run(q.DATASET, id=dataset_id)
            if not rows:
                raise NotFound(f"dataset {dataset_id}")
            current = DatasetRecord.from_row(rows[0])
            if current.hash == content_hash:
                return current, False
            version = current.version + 1
            await tx.run(q.ADD_VERSION, id=dataset_id, key=f"{dataset_id}@{version}",
                         version=version, hash=content_hash, size=len(items), items=items,
                         now=now_iso())
            await AuditRepository.record_in(tx, *audit)
            rows = await tx.run(q.DATASET, id=dataset_id)
            return DatasetRecord.from_row(rows[0]), True

        return await self._executor.write_tx(work)

    async def items(self, version_key: str) -> list[str]:
        rows = await self._executor.read(q.DATASET_ITEMS, key=version_key)
        if not rows:
            raise NotFound(f"dataset version {version_key}")
        return list(rows[0]["items"])

    async def current_versions(self) -> list[VersionRecord]:
        rows = await self._executor.read(q.CURRENT_VERSIONS)
        return [VersionRecord.from_row(row["version"]) for row in rows]

    async def version(self, key: str) -> VersionRecord:
        rows = await self._executor.read(q.VERSION, key=key)
        if not rows:
            raise NotFound(f"dataset version {key}")
        return VersionRecord.from_row(rows[0]["version"])


@dataclass(frozen=True)
class EventPage:
    events: list[dict[str, Any]]  # oldest first
    until: str | None  # where a full page stops (the last batch's time), to read on from


# A batch of job events commits after the time it carries (a DONE event is stamped when its
# bundle is sealed, then waits for the finisher and the commit), and hosts' clocks differ a
# little: by up to this much.
LATE = timedelta(seconds=2)


@dataclass
class EventCursor:
    """Where a reader of job events reads on from (`after`), and from where it reads again
    once it has caught up (`recheck`).
    A read sees every batch that carries a time more than LATE before the read; a later one
    may still commit. So where a read reached within LATE of when it ran, that stretch is
    read again once the reader has caught up; until then it reads on from each full page's
    end, or a burst larger than a page would be read again and again. Events read twice
    are dropped by their ids."""

    after: str
    recheck: str | None = None

    @classmethod
    def at(cls, now: datetime) -> "EventCursor":
        """A reader that starts now, owing nothing earlier."""
        return cls(iso(now - LATE))

    def advance(self, read_at: datetime, page: EventPage) -> None:
        """After `page`, read (after `self.after`) at `read_at`."""
        settled = iso(read_at - LATE)
        if page.until is None:
            # caught up: next, from where late batches may yet commit (also where a cursor
            # stood ahead of this reader's clock: it comes back, rather than skip what this
            # clock's writers write)
            self.after = min(self.recheck or settled, settled)
            self.recheck = None
            return
        unsettled = max(self.after, settled)
        if unsettled < page.until:
            self.recheck = min(self.recheck or unsettled, unsettled)
        self.after = page.until


class PsiJobRepository:
    def __init__(self, executor: GraphExecutor) -> None:
        self._executor = executor
        # Told of the job events this process commits, so its subscribers hear of them at
        # once instead of at the next poll. They are written with this process's `origin`,
        # so its poller reads only the events of other processes.
        self.on_events: Callable[[list[dict[str, Any]]], None] = lambda events: None
        self.origin = secrets.token_hex(8)
        # Accepting, claiming and finishing jobs all append PsiJob, JobEventBatch and AuditEvent
        # records: run side by side they collide on the same pages (ArcadeDB's optimistic
        # concurrency), and under load the retries ran out. One at a time per process.
        self._writing = asyncio.Lock()

    async def create_many(self, jobs: list[NewJob]) -> list[tuple[JobRecord, bool]]:
        """Records queued jobs with their QUEUED and audit events in one statement, or
        finds those already recorded under the same idempotency key: (job, created) each."""
        if not jobs:
            return []
        queued = {job.props["id"]: {"id": secrets.token_hex(10), "at": job.props["createdAt"],
                                    "tenant": job.props["tenant"], "jobId": job.props["id"],
                                    "status": "QUEUED"} for job in jobs}
        rows_in = [{"idemKey": job.idem_key, "props": job.props, "audit": job.audit,
                    "event": queued[job.props["id"]]} for job in jobs]
        at = max(job.props["createdAt"] for job in jobs)
        async with self._writing:
            rows = await self._write(q.CREATE_JOBS, at, rows=rows_in)
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
        self.on_events([queued[record.id] for record, created in results if created])
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

    async def page(self, tenant: str, before: str, limit: int,
                   status: str | None) -> list[JobRecord]:
        """A tenant's jobs, newest first, created before `before`."""
        rows = await self._executor.read(q.JOBS_PAGE, tenant=tenant, before=before,
                                         limit=limit, status=status)
        return [JobRecord.from_row(row["job"]) for row in rows]

    async def queue_depth(self) -> dict[str, int]:
        return {row["tenant"]: row["queued"] for row in await self._executor.read(q.QUEUE_DEPTH)}

    async def claim(self, owner: str, allocation: dict[str, int], lease_until: str,
                    reclaim: int = 0, ids: list[str] | None = None,
                    busy: list[str] | None = None) -> list[JobRecord]:
        """Leases the jobs `ids` if still queued, each tenant's share of the other queued
        jobs, and up to `reclaim` jobs whose lease ran out (except the `busy` ones `owner`
        is still answering), to `owner`; with a RUNNING event for each newly started job,
        and a FAILED one for each job given up after its last attempt."""
        events: list[dict[str, Any]] = []

        async def work(tx: Tx) -> list[JobRecord]:
            now = now_iso()
            events.clear()  # from a try that was retried
            jobs: list[JobRecord] = []
            batch = self._batch(now)
            if reclaim:
                given_up = await tx.run(q.GIVE_UP, now=now, maxAttempts=MAX_ATTEMPTS, **batch)
                events.extend(row["result"] for row in given_up)
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
            events.extend({"id": f"{job.id}:run{job.attempts}", "at": now, "tenant": job.tenant,
                           "jobId": job.id, "status": "RUNNING"} for job in started_jobs)
            return jobs + started_jobs

        async with self._writing:
            jobs = await self._executor.write_tx(work)
        self.on_events(events)
        return jobs

    async def renew(self, owner: str, job_ids: list[str], lease_until: str) -> None:
        await self._executor.write(q.RENEW, ids=job_ids, owner=owner, until=lease_until)

    async def finish(self, owner: str, done: list[dict[str, Any]], failed: list[dict[str, Any]]
                     ) -> list[str]:
        """Writes results, bundles, events and audit events (each row's `audit`) of a batch
        in one transaction. Returns the ids this worker finished; a job whose lease it lost
        is not among them."""

        async def work(tx: Tx) -> list[dict[str, Any]]:
            events = []
            for query, rows, at in ((q.COMPLETE, done, "completedAt"), (q.FAIL, failed, "at")):
                if rows:
                    written = await tx.run(query, rows=rows, owner=owner,
                                           **self._batch(max(r[at] for r in rows)))
                    events += [row["result"] for row in written]
            return events

        async with self._writing:
            events = await self._executor.write_tx(work)
        self.on_events(events)
        return [event["jobId"] for event in events]

    async def cancel(self, job_id: str, tenant: str | None, audit: dict[str, Any]) -> None:
        async def work(tx: Tx) -> list[dict[str, Any]]:
            if not await tx.run(q.JOB, id=job_id, tenant=tenant):
                raise NotFound(f"PSI job {job_id}")
            now = now_iso()
            rows = await tx.run(q.CANCEL, id=job_id, tenant=tenant, now=now,
                                eventId=secrets.token_hex(10), **self._batch(now))
            if not rows:
                raise BadUserInput(f"PSI job {job_id} has already finished")
            await AuditRepository.record_in(tx, audit)
            return [row["result"] for row in rows]

        self.on_events(await self._executor.write_tx(work))

    async def cancel_for_party(self, party: str) -> list[str]:
        now = now_iso()
        events = await self._write(q.CANCEL_FOR_PARTY, now, party=party, now=now)
        self.on_events(events)
        return [event["jobId"] for event in events]

    async def bundle(self, job_id: str, tenant: str | None) -> dict[str, Any] | None:
        rows = await self._executor.read(q.BUNDLE, jobId=job_id, tenant=tenant)
        return rows[0]["bundle"] if rows else None

    async def drop_events(self, before: str, slice_s: float = 2.0) -> int:
        """Deletes the batches of job events older than `before`, `slice_s` seconds of them
        a statement from the oldest on; returns how many batches (0: none was that old).
        The oldest is looked up once, and again only past a gap: the lookup skips every entry
        deleted before it (175 ms a lookup under load once retirement ran, against 28 ms for
        a slice's delete), so looking it up for each slice took most of the database's time
        spent retiring."""
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
        events = [{"id": i, "at": at, "tenant": tenant, "jobId": job_id, "status": status,
                   "written": batch["at"]}
                  for row in rows for batch in [row["batch"]]
                  for i, at, tenant, job_id, status in zip(
                      batch["ids"], batch["ats"], batch["tenants"], batch["jobIds"],
                      batch["statuses"], strict=True)
                  if wanted is None or tenant in wanted]
        return EventPage(sorted(events, key=lambda event: event["at"]), until)

    def _batch(self, latest: str) -> dict[str, str]:
        """The parameters of the batch of job events a statement writes: this process as
        their origin, and the batch's time, taken as the statement is sent (and never
        before its `latest` event's). A batch stamped with its events' own time would
        commit later by all it waited for (the writing lock, the finisher's spacing), and
        readers allow only LATE for that."""
        return {"at": max(latest, now_iso()), "origin": self.origin}

    async def _write(self, query: Cypher, latest: str, **params: Any) -> list[dict[str, Any]]:
        """A statement that writes its job events as a batch: what it returns. The batch's
        time is taken in the unit of work, so a retry takes it again."""

        async def work(tx: Tx) -> list[dict[str, Any]]:
            return await tx.run(query, **self._batch(latest), **params)

        return [row["result"] for row in await self._executor.write_tx(work)]
