"""What a finished PSI job leaves behind: its response and signed bundle, kept outside the
graph in packs (decision 0024), read back checked against the hashes the graph keeps, and
retired with the job after the retention window."""

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from trustfabric.domain.audit import iso
from trustfabric.domain.psi import protocol as psi
from trustfabric.domain.psi.records import JobRecord
from trustfabric.errors import AppError, NotFound

log = logging.getLogger(__name__)

# Packs outlive their jobs' window this much: a job is stamped before its pack is written,
# and a sweep of jobs may lag one of packs.
PACK_GRACE_S = 86400.0


class Packs(Protocol):
    """Where parts are kept (`trustfabric.blobs.PackStore`)."""

    def put(self, parts: list[bytes], at: datetime | None = None) -> list[str]: ...

    def get(self, ref: str) -> bytes: ...

    def sweep(self, before: float) -> int: ...


class FinishedJobs(Protocol):
    """The finished jobs' records as this service needs them (`graph.psi.PsiJobRepository`)."""

    async def get(self, job_id: str, tenant: str | None) -> JobRecord: ...

    async def retire(self, before: str, limit: int) -> int: ...

    async def inline_results(self, limit: int) -> list[dict[str, Any]]: ...

    async def move_results(self, rows: list[dict[str, Any]]) -> None: ...


@dataclass(frozen=True)
class Bundle:
    id: str
    envelope: str


def bundle_hash(envelope: bytes) -> str:
    return "sha256:" + hashlib.sha256(envelope).hexdigest()


class PsiResults:
    def __init__(self, jobs: FinishedJobs, packs: Packs, retention_s: float) -> None:
        self._jobs = jobs
        self.packs = packs
        self.retention_s = retention_s

    async def responses(self, jobs: list[JobRecord]) -> list[str | None | AppError]:
        """Each job's response (base64), null for a job without one, or why it cannot be
        read (that job's alone); read in one hop off the event loop, each checked against
        the job's response commitment."""
        def read(job: JobRecord) -> str | None | AppError:
            if job.response_ref is None:
                return None
            try:
                return base64.b64encode(self._checked(
                    job.response_ref, job.response_commitment, psi.commitment, job.id)).decode()
            except AppError as error:
                return error

        return await asyncio.to_thread(lambda: [read(job) for job in jobs])

    async def bundle(self, job_id: str, tenant: str | None) -> Bundle | None:
        """The job's signed bundle; null unless it is DONE (and for another tenant's job)."""
        try:
            job = await self._jobs.get(job_id, tenant)
        except NotFound:
            return None
        if job.bundle_ref is None or job.bundle_id is None:
            return None
        envelope = await asyncio.to_thread(self._checked, job.bundle_ref, job.bundle_hash,
                                           bundle_hash, job.id)
        return Bundle(job.bundle_id, envelope.decode())

    async def retire(self, now: float | None = None) -> int:
        """Deletes finished jobs created before the retention window, a slice a statement,
        then the packs written before it (and a day's grace); how many jobs."""
        now = time.time() if now is None else now
        before = psi_time(now - self.retention_s)
        retired = 0
        while (dropped := await self._jobs.retire(before, 1000)) > 0:
            retired += dropped
        await asyncio.to_thread(self.packs.sweep, now - self.retention_s - PACK_GRACE_S)
        return retired

    async def adopt_inline(self, slice_size: int = 500) -> int:
        """Moves results that earlier versions kept in the graph (the job's response, the
        ProofBundle node's envelope) into packs; how many jobs. Run on start, after the jobs
        past their retention are retired (theirs are not moved: deleted). Each pack is filed
        under the hour its jobs were created, so it is retired with them; a bundle whose
        job is gone is dropped."""
        await self.retire()
        moved = 0
        while rows := await self._jobs.inline_results(slice_size):
            by_hour: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                if row["createdAt"] is not None:  # else: its job was deleted by hand
                    by_hour.setdefault(row["createdAt"][:13], []).append(row)
            moves = [{"id": row["id"], "responseRef": None, "bundleRef": None,
                      "bundleHash": None} for row in rows if row["createdAt"] is None]
            for jobs in by_hour.values():
                parts = [part for row in jobs for part in (
                    base64.b64decode(row["response"] or ""), (row["envelope"] or "").encode())]
                refs = await asyncio.to_thread(
                    self.packs.put, parts, datetime.fromisoformat(jobs[0]["createdAt"]))
                moves += [{"id": row["id"], "responseRef": refs[2 * n] if row["response"]
                           else None, "bundleRef": refs[2 * n + 1],
                           "bundleHash": bundle_hash(parts[2 * n + 1])}
                          for n, row in enumerate(jobs)]
            await self._jobs.move_results(moves)
            moved += len(rows)
        return moved

    def _checked(self, ref: str, expected: str | None, digest: Callable[[bytes], str],
                 job_id: str) -> bytes:
        try:
            data: bytes = self.packs.get(ref)
        except LookupError:
            raise NotFound(f"the result of PSI job {job_id} (retired)") from None
        except OSError:
            log.exception("the results of PSI job %s could not be read", job_id)
            raise AppError(f"the result of PSI job {job_id} could not be read") from None
        if digest(data) != expected:
            log.error("the stored result of PSI job %s does not match its hash (%s)", job_id,
                      ref)
            raise AppError(f"the stored result of PSI job {job_id} does not match its hash")
        return data


def psi_time(unix: float) -> str:
    """A Unix time as the jobs' timestamps are written."""
    return iso(datetime.fromtimestamp(unix, UTC))
