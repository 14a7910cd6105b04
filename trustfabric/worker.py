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
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from trustfabric import psi
from trustfabric.audit import audit_event, now_iso
from trustfabric.bundles import BUNDLE_TYPE, SigningKey, canonical
from trustfabric.controls import PilotControls
from trustfabric.errors import AppError, Unavailable
from trustfabric.explainer import explain
from trustfabric.fairness import DeficitRoundRobin
from trustfabric.graph.executor import ORIGIN
from trustfabric.graph.psi import JobRecord, VersionRecord
from trustfabric.psi_jobs import PsiService, lease_until

log = logging.getLogger(__name__)

_responder: psi.Responder | None = None
PR_SET_PDEATHSIG = 1


def _init_process(secret: bytes, parent: int) -> None:
    global _responder
    if sys.platform == "linux":  # die with the worker, even when it is killed with -9 ...
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # ... or before this process had started
        os._exit(0)
    _responder = psi.Responder(psi.ServerKey(secret))


def _respond_many(work: list[tuple[str, bytes]]) -> list[bytes | None]:
    """In a pool process: one response per request, None where the request is unusable."""
    assert _responder is not None
    answers: list[bytes | None] = []
    for mode, raw in work:
        try:
            answers.append(_responder.respond(psi.Mode(mode), raw))
        except (RuntimeError, ValueError):
            answers.append(None)
    return answers


class ProofWorker:
    def __init__(self, service: PsiService, signing: SigningKey, *, processes: int,
                 batch_size: int, lease_s: float, poll_s: float, fpr: float) -> None:
        self.service = service
        self.signing = signing
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.batch_size = batch_size
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.fpr = fpr
        self.processes = processes
        self._pool = self._new_pool()
        self._versions: dict[str, VersionRecord] = {}
        self.drr = DeficitRoundRobin()
        self._next_reclaim = 0.0

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: a forked child would inherit the API's listening socket.
        return ProcessPoolExecutor(
            self.processes, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_process, initargs=(self.service.key.secret, os.getpid()),
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    async def run(self, wake: asyncio.Event) -> None:
        ORIGIN.set("background")
        while True:
            try:
                handled = await self.run_once()
            except Unavailable:
                log.warning("proof worker: database unavailable; retrying")
                handled = 0
                await asyncio.sleep(1.0)
            except Exception:
                # A worker that dies leaves jobs to wait for a restart; log the fault (names
                # and codes only, never payloads) and keep serving. Leases cover the batch.
                log.exception("proof worker: batch failed; retrying")
                handled = 0
                await asyncio.sleep(1.0)
            if handled == 0:
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.poll_s)

    async def run_once(self) -> int:
        """One batch: each backlogged tenant's weighted fair part of it (deficit round
        robin), plus, now and then, jobs whose worker died holding their lease."""
        depth = await self.service.jobs.queue_depth()
        self.service.queue.observe_depth(depth)
        controls, _ = await self.service.controls.current()
        weights = {tenant: controls.for_tenant(tenant).weight for tenant in depth}
        allocation = self.drr.allocate(depth, weights, self.batch_size)
        reclaim = 0
        if time.monotonic() >= self._next_reclaim:
            reclaim, self._next_reclaim = self.batch_size, time.monotonic() + self.lease_s / 4
        if not allocation and not reclaim:
            return 0
        jobs = await self.service.jobs.claim(self.owner, allocation, lease_until(self.lease_s),
                                             reclaim)
        if jobs:
            await self._process(jobs)
        return len(jobs)

    async def _process(self, jobs: list[JobRecord]) -> None:
        heartbeat = asyncio.create_task(self._keep_leases([job.id for job in jobs]))
        try:
            await self._process_batch(jobs)
        finally:
            heartbeat.cancel()

    async def _keep_leases(self, job_ids: list[str]) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            with contextlib.suppress(AppError):  # a missed renewal is retried next time
                await self.service.jobs.renew(self.owner, job_ids, lease_until(self.lease_s))

    async def _process_batch(self, jobs: list[JobRecord]) -> None:
        # the cached copy: a change reaches queued jobs within the controls cache time
        controls, _ = await self.service.controls.current()
        runnable, failed = [], []
        for job in jobs:
            reason = self._refusal(job, controls)
            if reason:
                failed.append(self._failure(job, *reason))
            else:
                runnable.append(job)
        answers = await self._respond(runnable)
        done, audit = [], []
        for job, answer in zip(runnable, answers, strict=True):
            if answer is None:
                failed.append(self._failure(job, "BAD_USER_INPUT",
                                            "the request could not be processed"))
                continue
            try:
                row, events = await self._complete(job, answer, controls)
            except Exception:  # one job's fault fails that job, not its batch
                log.exception("proof worker: job %s could not be completed", job.id)
                failed.append(self._failure(job, "INTERNAL_SERVER_ERROR",
                                            "the job could not be completed"))
                continue
            done.append(row)
            audit += events
        audit += [audit_event(tenant=f["tenant"], actor="proof-worker", action="psi.run",
                              subject=f["id"], outcome="failed", reason=f["code"])
                  for f in failed]
        stamp = now_iso()  # a failure's event time is when it commits, not when it was seen
        for failure in failed:
            failure["at"] = stamp
        finished = set(await self.service.jobs.finish(self.owner, done, failed, audit))
        self.service.queue.served([d["tenant"] for d in done if d["id"] in finished])

    def _refusal(self, job: JobRecord, controls: PilotControls) -> tuple[str, str] | None:
        if job.server_key_id != self.service.key.key_id:
            return "UNAVAILABLE", "the server key was rotated after the request; send it again"
        try:
            controls.check(job.tenant, psi.Mode(job.mode), job.dataset_id, job.partner)
        except AppError as refusal:  # controls changed while the job waited
            return refusal.code, refusal.message
        return None

    @staticmethod
    def _failure(job: JobRecord, code: str, message: str) -> dict[str, Any]:
        return {"id": job.id, "tenant": job.tenant, "code": code, "message": message,
                "at": now_iso(), "eventId": secrets.token_hex(10)}

    async def _respond(self, jobs: list[JobRecord]) -> list[bytes | None]:
        if not jobs:
            return []
        work = [(job.mode, base64.b64decode(job.request or "")) for job in jobs]
        size = -(-len(work) // self.processes)
        chunks = [work[i:i + size] for i in range(0, len(work), size)]
        loop = asyncio.get_running_loop()
        try:
            results = await asyncio.gather(
                *(loop.run_in_executor(self._pool, _respond_many, chunk) for chunk in chunks))
        except BrokenProcessPool:
            # a crypto process died (killed, out of memory): a broken pool stays broken,
            # so start a fresh one; the batch's leases bring its jobs back
            log.error("proof worker: crypto process pool broke; starting a new one")
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            raise
        return [answer for chunk in results for answer in chunk]

    async def _version(self, job: JobRecord) -> VersionRecord:
        key = f"{job.dataset_id}@{job.dataset_version}"
        if key not in self._versions:  # versions never change once written
            self._versions[key] = await self.service.datasets.version(key)
        return self._versions[key]

    async def _complete(self, job: JobRecord, response: bytes,
                        controls: PilotControls) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        completed_at = now_iso()
        version = await self._version(job)
        response_commitment = psi.commitment(response)
        dataset = {"id": job.dataset_id, "partner": job.partner, "version": job.dataset_version,
                   "hash": job.dataset_hash, "size": version.size,
                   "uploadedAt": version.uploaded_at}
        mode = psi.Mode(job.mode)
        explainer = explain(
            job_id=job.id, tenant=job.tenant, mode=mode, dataset=dataset,
            request_size=job.request_size, request_commitment=job.request_commitment,
            response_commitment=response_commitment, controls=controls.in_force(job.tenant),
        )
        body = {
            "type": BUNDLE_TYPE,
            "jobId": job.id,
            "tenant": job.tenant,
            "dataset": {k: dataset[k] for k in ("id", "partner", "version", "hash")},
            "mode": job.mode,
            "commitments": {"request": job.request_commitment, "response": response_commitment},
            "parameters": {"requestSize": job.request_size, "dataStructure": "GCS",
                           "falsePositiveRate": repr(self.fpr),
                           "maxClientItems": controls.max_request_size,
                           "serverKeyId": job.server_key_id},
            "timings": {"requestedAt": job.created_at, "startedAt": job.started_at,
                        "completedAt": completed_at},
            "outcome": "DONE",
            "explainer": explainer,
        }
        envelope = self.signing.sign(body)
        row = {"id": job.id, "tenant": job.tenant, "response": base64.b64encode(response).decode(),
               "commitment": response_commitment, "completedAt": completed_at,
               "bundleId": envelope["id"], "envelope": canonical(envelope).decode(),
               "markdown": explainer["markdown"], "eventId": secrets.token_hex(10)}
        audit = [audit_event(tenant=job.tenant, actor="proof-worker", action="psi.run",
                             subject=job.id, outcome="done", mode=job.mode,
                             datasetId=job.dataset_id, datasetVersion=job.dataset_version,
                             requestCommitment=job.request_commitment,
                             responseCommitment=response_commitment,
                             requestSize=job.request_size, bundleId=envelope["id"])]
        return row, audit
