"""PSI requests: shed under overload, checked against the pilot controls and the quota,
recorded as durable jobs in batches, each with its audit event."""

import asyncio
import base64
import hashlib
import logging
import time
from collections import Counter
from typing import Any, Protocol

from trustfabric.domain.audit import AuditEvent, AuditLog, audit_event, now_iso
from trustfabric.domain.auth import Caller
from trustfabric.domain.batching import GroupCommit
from trustfabric.domain.controls import ControlsStore, QuotaGate
from trustfabric.domain.fairness.load import LoadState
from trustfabric.domain.ids import check_ids
from trustfabric.domain.psi import protocol as psi
from trustfabric.domain.psi.backlog import Backlog
from trustfabric.domain.psi.datasets import DatasetService, SetupCache
from trustfabric.domain.psi.records import JobRecord, NewJob
from trustfabric.errors import AppError, BadUserInput, Unavailable

log = logging.getLogger(__name__)


# Shed requests are audited as counts a second, at most this many records a second ...
MAX_SHED_RECORDS = 100
# ... past which the rest of a tenant's token's counts go under this subject
OTHER_DATASETS = "*"


class JobStore(Protocol):
    """What accepting and cancelling jobs needs of storage (`graph.psi.PsiJobRepository`)."""

    async def create_many(self, jobs: list[NewJob]) -> list[tuple[JobRecord, bool]]: ...

    async def by_idempotency_keys(self, idem_keys: list[str]) -> list[JobRecord | None]: ...

    async def cancel(self, job_id: str, tenant: str | None, audit: AuditEvent) -> None: ...


class PsiRequests:
    """Admits PSI requests: sheds under overload, checks them against the controls and the
    quota, and records each accepted one as a durable job, in batches."""

    def __init__(
        self, *, jobs: JobStore, datasets: DatasetService, setups: SetupCache,
        controls: ControlsStore, audit: AuditLog, key: psi.ServerKey, quotas: QuotaGate,
        load: LoadState, wake: asyncio.Event, backlog: Backlog | None,
        write_spacing_s: float = 0.0,
    ) -> None:
        self._jobs = jobs
        self._datasets = datasets
        self._setups = setups
        self._controls = controls
        self._audit = audit
        self._key = key
        self._quotas = quotas
        self._load = load
        self._wake = wake
        # given when this process runs a proof worker: accepted jobs are handed to it directly
        self._backlog = backlog
        self._writer: GroupCommit[NewJob, tuple[JobRecord, bool]] = GroupCommit(
            self._create, spacing_s=write_spacing_s)
        # refusals are audited in batches too: under overload they are most of the traffic
        self._refusals: GroupCommit[AuditEvent, None] = GroupCommit(self._audit_many)
        # and requests shed under overload are audited per second, counted by tenant, token,
        # dataset and mode: one record per request would load the database being relieved
        self._shed: Counter[tuple[str, str, str, str]] = Counter()
        self._auditing: set[asyncio.Task[None]] = set()
        # and a refused request looks for its own earlier job in one read with the others
        self._earlier: GroupCommit[str, JobRecord | None] = GroupCommit(
            jobs.by_idempotency_keys)

    # -- PSI runs ------------------------------------------------------------------------
    async def request(
        self, caller: Caller, dataset_id: str, mode: psi.Mode, encoded_request: str,
        idempotency_key: str, setup_id: str | None,
    ) -> JobRecord:
        tenant = caller.tenant
        check_ids(dataset_id, idempotency_key)
        # first: under overload most requests are shed, and shedding must cost nothing
        # (no lookup, no decoding, no quota spent; a retry of an accepted request is told
        # to come back too)
        self.shed(caller, dataset_id, mode)
        details: dict[str, Any] = {"mode": mode.value, "datasetId": dataset_id}
        try:
            controls, _ = await self._controls.current()
            dataset = await self._datasets.current(dataset_id)
            details["partner"] = dataset.partner
            controls.check(tenant, mode, dataset.id, dataset.partner)
            checked = psi.check_request(encoded_request, mode, controls.min_request_size,
                                        controls.max_request_size)
            details |= {"requestSize": checked.size, "requestCommitment": checked.commitment}
            if dataset.version == 0:
                raise BadUserInput(f"dataset {dataset.id} has no version yet")
            if setup_id is not None and setup_id != self._setups.setup_id(
                dataset, controls.max_request_size
            ):
                raise BadUserInput("the setup is stale (new dataset version or server key): "
                                   "fetch datasetSetup again")
            await self._quotas.take(tenant, controls.for_tenant(tenant).quota)
        except AppError as refusal:
            # A retry of an accepted request gets its job back, whatever would refuse a new
            # one now (quota spent, controls changed, a newer dataset version). Looked up
            # only here: on the way in, the write itself finds an existing job.
            existing = await self._earlier.submit(f"{tenant}:{idempotency_key}")
            if existing is not None:
                return _replayed(existing, dataset_id, mode, encoded_request)
            self._load.refused(tenant, refusal.code)
            await self._refusals.submit(audit_event(
                tenant=tenant, actor=caller.token_id, action="psi.request", subject=dataset_id,
                outcome="refused", reason=refusal.code, **details))
            raise
        job_id = psi.new_job_id()
        props = {
            "id": job_id, "tenant": tenant, "partner": dataset.partner, "datasetId": dataset.id,
            "datasetVersion": dataset.version, "datasetHash": dataset.hash, "mode": mode.value,
            "status": "QUEUED", "requestSize": checked.size,
            "requestCommitment": checked.commitment, "serverKeyId": self._key.key_id,
            "request": base64.b64encode(checked.raw).decode(), "createdAt": now_iso(),
            "idempotencyKey": idempotency_key,
            "setupId": self._setups.setup_id(dataset, controls.max_request_size),
            "maxClientItems": controls.max_request_size,
        }
        self._load.queued(tenant)  # counts against the budget from now on
        created, writing = False, time.monotonic()
        try:
            job, created = await self._writer.submit(NewJob(
                props, f"{tenant}:{idempotency_key}",
                audit_event(tenant=tenant, actor=caller.token_id, action="psi.request",
                            subject=job_id, outcome="accepted", **details,
                            idempotencyKeyHash=_hash(idempotency_key)),
            ))
        finally:
            self._load.handed_over(tenant, created, time.monotonic() - writing)
        if not created:  # accepted concurrently under the same key
            return _replayed(job, dataset_id, mode, encoded_request)
        self._load.accepted(tenant)
        self._wake.set()
        return job

    async def _create(self, jobs: list[NewJob]) -> list[tuple[JobRecord, bool]]:
        if self._backlog is None:
            return await self._jobs.create_many(jobs)
        writing = Counter(job.props["tenant"] for job in jobs)
        self._backlog.writing += writing
        try:
            results = await self._jobs.create_many(jobs)
        finally:
            self._backlog.writing -= writing
        for job, created in results:  # in the same step: the worker never sees them missing
            if created:
                self._backlog.put(job.tenant, job.id)
        return results

    def shed(self, caller: Caller, dataset_id: str, mode: psi.Mode) -> None:
        """Refuses a new job under overload, the flooding tenant first (`LoadState.admit`).
        Shed requests are audited as counts a second by tenant, token, dataset and mode: one
        record each would load the database being relieved. Called before GraphQL runs
        too (`middleware.ShedOverload`), so it reads nothing and decodes nothing."""
        try:
            self._load.admit(caller.tenant)
        except Unavailable as refusal:
            self._load.refused(caller.tenant, refusal.code)
            if not self._shed:
                asyncio.get_running_loop().call_later(1.0, self._audit_shed)
            key = (caller.tenant, caller.token_id, dataset_id, mode.value)
            if key not in self._shed and len(self._shed) >= MAX_SHED_RECORDS - 1:
                # the dataset id is the caller's text, checked only for its form: varied,
                # it would make a record a request again
                key = (caller.tenant, caller.token_id, OTHER_DATASETS, mode.value)
            self._shed[key] += 1
            raise

    def _audit_shed(self) -> None:
        shed, self._shed = self._shed, Counter()
        task = asyncio.create_task(self._audit_later([
            audit_event(tenant=tenant, actor=actor, action="psi.request", subject=dataset_id,
                        outcome="refused", reason="OVERLOADED", mode=mode, count=count)
            for (tenant, actor, dataset_id, mode), count in shed.items()]))
        self._auditing.add(task)
        task.add_done_callback(self._auditing.discard)

    async def _audit_later(self, events: list[dict[str, Any]]) -> None:
        try:
            await self._audit.record(*events)
        except AppError:  # an outage: the counts are lost, the refusals were answered
            log.warning("could not audit requests shed under overload")

    async def _audit_many(self, events: list[dict[str, Any]]) -> list[None]:
        await self._audit.record(*events)
        return [None] * len(events)

    async def cancel(self, caller: Caller, job_id: str) -> None:
        caller.require_write()
        await self._jobs.cancel(job_id, caller.read_scope, audit_event(
            tenant=caller.tenant, actor=caller.token_id, action="psi.cancel", subject=job_id,
            outcome="cancelled"))


def _replayed(job: JobRecord, dataset_id: str, mode: psi.Mode, encoded: str) -> JobRecord:
    try:
        sent = psi.commitment(base64.b64decode(encoded, validate=True))
    except ValueError:
        sent = None
    if (job.request_commitment, job.dataset_id, job.mode) != (sent, dataset_id,
                                                               mode.value):
        raise BadUserInput("idempotencyKey was already used for a different request")
    return job


def _hash(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


