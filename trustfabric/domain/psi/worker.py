"""The proof worker: claims queued PSI jobs under a lease, answers them on all cores,
and writes results, signed bundles, events and audit events in one transaction a batch.

Jobs survive crashes: a job is durable from the moment the mutation answers, a worker that
dies stops renewing its lease and another claims the job, and completion is conditional on
holding the lease, so a job completes once and has one bundle.
"""

import asyncio
import base64
import contextlib
import ctypes
import logging
import multiprocessing
import os
import secrets
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from trustfabric.domain.audit import audit_event, iso, now_iso
from trustfabric.domain.batching import GroupCommit
from trustfabric.domain.controls import ControlsStore, PilotControls
from trustfabric.domain.fairness.load import LoadState
from trustfabric.domain.fairness.shares import DeficitRoundRobin
from trustfabric.domain.origin import ORIGIN
from trustfabric.domain.psi import protocol as psi
from trustfabric.domain.psi.backlog import Backlog
from trustfabric.domain.psi.bundles import BUNDLE_TYPE, SigningKey
from trustfabric.domain.psi.datasets import DatasetStore
from trustfabric.domain.psi.explainer import explain
from trustfabric.domain.psi.records import CompletedJob, FailedJob, JobRecord, VersionRecord
from trustfabric.domain.psi.results import Packs, bundle_hash
from trustfabric.errors import AppError, NotFound, Unavailable

log = logging.getLogger(__name__)

_responder: psi.Responder | None = None
_signing: SigningKey | None = None
_packs: Packs | None = None
PR_SET_PDEATHSIG = 1
# How often a worker that is handed its own process's jobs still looks in the graph for
# jobs queued elsewhere (other processes, or before a restart).
SCAN_EVERY_S = 0.5


def _init_process(secret: bytes, signing_pem: bytes, packs: Packs, parent: int,
                  nice: int) -> None:
    global _responder, _signing, _packs
    if sys.platform == "linux":  # die with the worker, even when it is killed with -9 ...
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # ... or before this process had started
        os._exit(0)
    os.nice(nice)
    _responder = psi.Responder(psi.ServerKey(secret))
    _signing = SigningKey.from_pem(signing_pem)
    _packs = packs


@dataclass(frozen=True)
class Work:
    """What a crypto process needs to answer a job and seal its bundle."""

    job: JobRecord
    version: VersionRecord
    controls: dict[str, Any]  # the controls in force for the job's tenant
    max_client_items: int
    fpr: float


Answer = CompletedJob | str  # a completed job, or the code it fails with
FAILURES = {"BAD_USER_INPUT": "the request could not be processed",
            "INTERNAL_SERVER_ERROR": "the job could not be completed"}


def _answer_many(work: list[Work]) -> list[Answer]:
    """In a pool process: each job's result (with its audit event), or the code it fails
    with.
    The bundle is built and signed here too, and the chunk's responses and bundles stored as
    one pack before the graph names them: off the event loop. A pack that cannot be written
    fails the chunk, and the batch's leases bring its jobs back."""
    assert _responder is not None and _signing is not None and _packs is not None
    answers: list[Answer] = []
    sealed: list[tuple[int, CompletedJob, bytes, bytes]] = []  # (answer, job, response, bundle)
    for item in work:
        try:
            response = _responder.respond(psi.Mode(item.job.mode),
                                          base64.b64decode(item.job.request or ""))
        except (RuntimeError, ValueError):
            answers.append("BAD_USER_INPUT")
            continue
        try:
            sealed.append((len(answers), *seal(item, response, _signing)))
        except Exception:  # one job's fault fails that job, not its batch
            log.exception("job %s could not be sealed", item.job.id)
            answers.append("INTERNAL_SERVER_ERROR")
            continue
        answers.append("INTERNAL_SERVER_ERROR")  # until it is stored, below
    refs = iter(_packs.put([part for *_, response, envelope in sealed
                            for part in (response, envelope)]))
    for n, job, _, _ in sealed:
        answers[n] = replace(job, response_ref=next(refs), bundle_ref=next(refs))
    return answers


def seal(item: Work, response: bytes, signing: SigningKey
         ) -> tuple[CompletedJob, bytes, bytes]:
    """The job's result (DONE event and audit event; where its parts are kept is left
    empty), its response and its signed bundle."""
    job = item.job
    completed_at = now_iso()
    response_commitment = psi.commitment(response)
    dataset = {"id": job.dataset_id, "partner": job.partner, "version": job.dataset_version,
               "hash": job.dataset_hash, "size": item.version.size,
               "uploadedAt": item.version.uploaded_at}
    explainer = explain(
        tenant=job.tenant, mode=psi.Mode(job.mode), dataset=dataset,
        request_size=job.request_size, request_commitment=job.request_commitment,
        response_commitment=response_commitment, controls=item.controls,
    )
    body = {
        "type": BUNDLE_TYPE,
        "jobId": job.id,
        "tenant": job.tenant,
        "dataset": {k: dataset[k] for k in ("id", "partner", "version", "hash")},
        "mode": job.mode,
        "commitments": {"request": job.request_commitment, "response": response_commitment},
        "parameters": {"requestSize": job.request_size, "dataStructure": "GCS",
                       "falsePositiveRate": repr(item.fpr),
                       "maxClientItems": item.max_client_items,
                       "serverKeyId": job.server_key_id},
        "timings": {"requestedAt": job.created_at, "startedAt": job.started_at,
                    "completedAt": completed_at},
        "outcome": "DONE",
        "explainer": explainer,
    }
    bundle_id, envelope = signing.sign(body)
    return CompletedJob(
        id=job.id, tenant=job.tenant, response_ref="", commitment=response_commitment,
        completed_at=completed_at, bundle_id=bundle_id, bundle_ref="",
        bundle_hash=bundle_hash(envelope), event_id=secrets.token_hex(10),
        audit=audit_event(tenant=job.tenant, actor="proof-worker", action="psi.run",
                          subject=job.id, outcome="done", mode=job.mode,
                          datasetId=job.dataset_id, datasetVersion=job.dataset_version,
                          requestCommitment=job.request_commitment,
                          responseCommitment=response_commitment,
                          requestSize=job.request_size, bundleId=bundle_id)), response, envelope


@dataclass
class Outcome:
    """A batch's writes: results and failures, each with its audit event."""

    done: list[CompletedJob] = field(default_factory=list)
    failed: list[FailedJob] = field(default_factory=list)


class WorkQueue(Protocol):
    """The queue of PSI jobs as a worker sees it (`graph.psi.PsiJobRepository`)."""

    async def queue_depth(self) -> dict[str, int]: ...

    async def claim(self, owner: str, allocation: dict[str, int], lease_until: str,
                    reclaim: int = 0, ids: list[str] | None = None,
                    busy: list[str] | None = None) -> list[JobRecord]: ...

    async def renew(self, owner: str, job_ids: list[str], lease_until: str) -> None: ...

    async def finish(self, owner: str, done: list[CompletedJob],
                     failed: list[FailedJob]) -> list[str]: ...


class ProofWorker:
    def __init__(self, queue: WorkQueue, *, datasets: DatasetStore, controls: ControlsStore,
                 weights: Callable[[Iterable[str]], Awaitable[dict[str, float]]],
                 load: LoadState, backlog: Backlog | None, key: psi.ServerKey,
                 signing: SigningKey, packs: Packs, processes: int, batch_size: int, batch_selectors: int,
                 in_flight: int, lease_s: float, poll_s: float, fpr: float,
                 write_spacing_s: float = 0.0, nice: int = 0) -> None:
        self._queue = queue
        self._datasets = datasets
        self._controls = controls
        self._weights = weights
        self._load = load
        # jobs this process accepted, handed over in memory; None: every job is searched for
        self._backlog = backlog
        self._key = key
        self.signing = signing
        self.packs = packs
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.batch_size = batch_size
        # At most this many selectors a batch (0: no bound), by recent sizes (decision 0005).
        self.batch_selectors = batch_selectors
        self._selectors_per_job = batch_selectors / batch_size
        self.in_flight = in_flight
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.fpr = fpr
        self.processes = processes
        self.nice = nice
        self._pool = self._new_pool()
        self._versions: dict[str, VersionRecord] = {}
        self.drr = DeficitRoundRobin()
        self._next_reclaim = 0.0
        self._next_scan = 0.0
        self._busy: set[str] = set()  # ids of jobs claimed and not yet finished
        # One writer for finished batches: same-kind writes collide (decision 0004).
        self._finisher: GroupCommit[Outcome, list[str]] = GroupCommit(
            self._finish_many, spacing_s=write_spacing_s)
        self.claim_spacing_s = write_spacing_s

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: a forked child would inherit the API's listening socket.
        return ProcessPoolExecutor(
            self.processes, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_process,
            initargs=(self._key.secret, self.signing.private_pem(), self.packs, os.getpid(),
                      self.nice),
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    async def run(self, wake: asyncio.Event) -> None:
        """Claims batch after batch, with up to `in_flight` of them being answered at once:
        while the crypto processes work on one, the next is claimed and the last written."""
        ORIGIN.set("background")
        slots = asyncio.Semaphore(self.in_flight)
        batches: set[asyncio.Task[None]] = set()

        def done(batch: asyncio.Task[None]) -> None:  # its slot is free for the next batch
            batches.discard(batch)
            slots.release()

        try:
            last_claim = float("-inf")
            while True:
                await slots.acquire()
                # spaced after a claim that found jobs; idle, a new job waits for nobody
                await asyncio.sleep(last_claim + self.claim_spacing_s - time.monotonic())
                try:
                    jobs = await self.claim()
                except Unavailable:
                    log.warning("proof worker: database unavailable; retrying")
                    jobs = await _pause(1.0)
                except Exception:
                    # A worker that dies leaves jobs to wait for a restart; log the fault
                    # (names and codes only, never payloads) and keep serving.
                    log.exception("proof worker: claim failed; retrying")
                    jobs = await _pause(1.0)
                if jobs:
                    last_claim = time.monotonic()
                else:
                    slots.release()
                    wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), self.poll_s)
                    continue
                batch = asyncio.create_task(self._process(jobs))
                batches.add(batch)
                batch.add_done_callback(done)
        finally:
            for batch in batches:
                batch.cancel()
            await asyncio.gather(*batches, return_exceptions=True)

    async def claim(self) -> list[JobRecord]:
        """Leases the next batch: each backlogged tenant's weighted fair part of it (deficit
        round robin), plus, now and then, jobs whose worker died holding their lease.
        Jobs this process accepted are claimed by id; the graph is searched only for jobs
        queued elsewhere."""
        backlog = self._backlog
        here: dict[str, int] = backlog.depth() if backlog else {}
        elsewhere: dict[str, int] = {}
        if backlog is None or time.monotonic() >= self._next_scan:
            queued = await self._queue.queue_depth()
            # jobs being recorded here may be counted in the graph and not yet handed over
            mine = Counter(here) + (backlog.writing if backlog else Counter())
            elsewhere = {t: n - mine[t] for t, n in queued.items() if n > mine[t]}
            # while jobs from elsewhere wait, look for them every batch
            self._next_scan = time.monotonic() + (0 if elsewhere else SCAN_EVERY_S)
        depth = {t: here.get(t, 0) + elsewhere.get(t, 0) for t in here.keys() | elsewhere}
        weights = await self._weights(depth)
        handed: dict[str, list[str]] = {}
        search: dict[str, int] = {}
        batch = self.batch_jobs()
        # the queue is never held shorter than the batch a worker takes at once
        self._load.min_queued = batch
        for tenant, n in self.drr.allocate(depth, weights, batch).items():
            # jobs queued elsewhere (older ones among them) get their part of the tenant's
            # slots, or a steady flow of new jobs here would keep them waiting for ever
            apart = min(elsewhere.get(tenant, 0), -(-n * elsewhere.get(tenant, 0) // depth[tenant]))
            handed[tenant] = backlog.take(tenant, n - apart) if backlog else []
            if n > len(handed[tenant]):
                search[tenant] = n - len(handed[tenant])
            depth[tenant] -= n  # about to run: no longer queued
        self._load.observe_depth(depth)
        reclaim = 0
        if time.monotonic() >= self._next_reclaim:
            reclaim, self._next_reclaim = batch, time.monotonic() + self.lease_s / 4
        ids = [job_id for taken in handed.values() for job_id in taken]
        if not ids and not search and not reclaim:
            return []
        try:
            jobs = await self._queue.claim(self.owner, search, lease_until(self.lease_s),
                                                 reclaim, ids=ids, busy=list(self._busy))
        except Exception:
            if backlog:  # the jobs are still queued: first in line next time
                for tenant, taken in handed.items():
                    backlog.give_back(tenant, taken)
            raise
        if backlog:  # the graph search may have found jobs that were waiting here too
            for job in jobs:
                backlog.discard(job.tenant, job.id)
        self._busy.update(job.id for job in jobs)
        if jobs:  # a claim's jobs come grouped by tenant: its mean, not its last few
            mean = sum(job.request_size for job in jobs) / len(jobs)
            self._selectors_per_job += (mean - self._selectors_per_job) * min(1, len(jobs) / 20)
        return jobs

    def batch_jobs(self) -> int:
        if not self.batch_selectors:
            return self.batch_size
        return max(1, min(self.batch_size, int(self.batch_selectors / self._selectors_per_job)))

    async def _process(self, jobs: list[JobRecord]) -> None:
        heartbeat = asyncio.create_task(self._keep_leases([job.id for job in jobs]))
        try:
            await self._process_batch(jobs)
        except Exception as error:
            if isinstance(error, Unavailable):
                log.warning("proof worker: database unavailable; the batch's leases bring it "
                            "back")
            else:
                log.exception("proof worker: batch failed; its leases bring it back")
            # a failed batch keeps its slot a while: a lasting fault must not lease the
            # whole queue and spend every job's attempts within seconds
            await asyncio.sleep(1.0)
        finally:
            heartbeat.cancel()
            self._busy.difference_update(job.id for job in jobs)

    async def _keep_leases(self, job_ids: list[str]) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            with contextlib.suppress(AppError):  # a missed renewal is retried next time
                await self._queue.renew(self.owner, job_ids, lease_until(self.lease_s))

    async def _process_batch(self, jobs: list[JobRecord]) -> None:
        claimed = time.monotonic()
        # the cached copy: a change reaches queued jobs within the controls cache time
        controls, _ = await self._controls.current()
        outcome, work = Outcome(), []
        failures: list[tuple[JobRecord, str, str]] = []  # (job, code, message)
        for job in jobs:
            reason = self._refusal(job, controls)
            if reason:
                failures.append((job, *reason))
                continue
            try:
                version = await self._version(job)
            except NotFound:  # one job's missing version fails that job, not its batch
                failures.append((job, "INTERNAL_SERVER_ERROR",
                                 FAILURES["INTERNAL_SERVER_ERROR"]))
                continue
            work.append(Work(job, version, controls.in_force(job.tenant),
                             controls.max_request_size, self.fpr))
        for item, answer in zip(work, await self._answer(work), strict=True):
            if isinstance(answer, str):
                failures.append((item.job, answer, FAILURES[answer]))
            else:
                outcome.done.append(answer)
        stamp = now_iso()  # a failure's event time is when it commits, not when it was seen
        outcome.failed.extend(self._failure(job, code, message, stamp)
                              for job, code, message in failures)
        finished = set(await self._finisher.submit(outcome))
        # the measured rest of the pipeline and this worker's capacity (decision 0021)
        self._load.processed(len(finished), time.monotonic() - claimed, self.in_flight)
        self._load.served([d.tenant for d in outcome.done if d.id in finished])

    async def _finish_many(self, outcomes: list[Outcome]) -> list[list[str]]:
        """Batches that finished together share a transaction; if it is refused (not for an
        outage), each is written alone, so one batch's fault does not fail the others."""
        try:
            finished = set(await self._queue.finish(
                self.owner, [row for o in outcomes for row in o.done],
                [row for o in outcomes for row in o.failed]))
        except AppError as error:
            if isinstance(error, Unavailable) or len(outcomes) == 1:
                raise
            finished = set()
            for outcome in outcomes:
                with contextlib.suppress(AppError):
                    finished |= set(await self._queue.finish(
                        self.owner, outcome.done, outcome.failed))
        return [[job.id for jobs in (o.done, o.failed) for job in jobs if job.id in finished]
                for o in outcomes]

    def _refusal(self, job: JobRecord, controls: PilotControls) -> tuple[str, str] | None:
        if job.server_key_id != self._key.key_id:
            return "UNAVAILABLE", "the server key was rotated after the request; send it again"
        try:
            controls.check(job.tenant, psi.Mode(job.mode), job.dataset_id, job.partner)
        except AppError as refusal:  # controls changed while the job waited
            return refusal.code, refusal.message
        return None

    @staticmethod
    def _failure(job: JobRecord, code: str, message: str, at: str) -> FailedJob:
        return FailedJob(id=job.id, tenant=job.tenant, code=code, message=message,
                         event_id=secrets.token_hex(10), at=at,
                         audit=audit_event(tenant=job.tenant, actor="proof-worker",
                                           action="psi.run", subject=job.id,
                                           outcome="failed", reason=code))

    async def _answer(self, work: list[Work]) -> list[Answer]:
        if not work:
            return []
        size = -(-len(work) // self.processes)
        chunks = [work[i:i + size] for i in range(0, len(work), size)]
        loop = asyncio.get_running_loop()
        pool = self._pool
        try:
            results = await asyncio.gather(
                *(loop.run_in_executor(pool, _answer_many, chunk) for chunk in chunks))
        except BrokenProcessPool:
            # a crypto process died (killed, out of memory): a broken pool stays broken,
            # so start a fresh one (once, however many batches saw it break); the batch's
            # leases bring its jobs back
            if self._pool is pool:
                log.error("proof worker: crypto process pool broke; starting a new one")
                pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
            raise
        return [answer for chunk in results for answer in chunk]

    async def _version(self, job: JobRecord) -> VersionRecord:
        key = f"{job.dataset_id}@{job.dataset_version}"
        if key not in self._versions:  # versions never change once written
            self._versions[key] = await self._datasets.version(key)
        return self._versions[key]


async def _pause(seconds: float) -> list[JobRecord]:
    await asyncio.sleep(seconds)
    return []


def lease_until(seconds: float) -> str:
    return iso(datetime.now(UTC) + timedelta(seconds=seconds))
