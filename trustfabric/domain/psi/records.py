"""What PSI datasets and jobs are, as the domain sees them: read from storage by column name."""

from dataclasses import dataclass, field
from typing import Any

from trustfabric.domain.audit import AuditEvent


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
    response_ref: str | None = None  # where its response is kept (decision 0024)
    response_commitment: str | None = None
    bundle_id: str | None = None
    bundle_ref: str | None = None
    bundle_hash: str | None = None  # of the signed envelope kept at bundle_ref
    error_code: str | None = None
    error_message: str | None = None
    attempts: int = 0
    setup_id: str | None = None
    max_client_items: int | None = None
    request: str | None = field(default=None, repr=False)  # base64; only while pending

    @property
    def position(self) -> str:
        """Where a tenant's page of jobs that ends with this one goes on from."""
        return job_position(self.created_at, self.id)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "JobRecord":
        names = {
            "id": "id", "tenant": "tenant", "partner": "partner", "datasetId": "dataset_id",
            "datasetVersion": "dataset_version", "datasetHash": "dataset_hash", "mode": "mode",
            "status": "status", "requestSize": "request_size",
            "requestCommitment": "request_commitment", "serverKeyId": "server_key_id",
            "createdAt": "created_at", "startedAt": "started_at", "completedAt": "completed_at",
            "responseRef": "response_ref", "responseCommitment": "response_commitment",
            "bundleId": "bundle_id", "bundleRef": "bundle_ref", "bundleHash": "bundle_hash", "errorCode": "error_code", "errorMessage": "error_message",
            "attempts": "attempts", "request": "request", "setupId": "setup_id",
            "maxClientItems": "max_client_items",
        }
        return cls(**{attr: row[key] for key, attr in names.items() if row.get(key) is not None})


def job_position(created_at: str, job_id: str) -> str:
    """A place in a tenant's jobs, newest first, as cursors carry it."""
    return f"{created_at}|{job_id}"


def split_position(position: str) -> tuple[str, str | None]:
    """A position's creation time and job id; no id in cursors of earlier versions."""
    created_at, _, job_id = position.partition("|")
    return created_at, job_id or None


@dataclass(frozen=True)
class NewJob:
    props: dict[str, Any]
    idem_key: str
    audit: AuditEvent


@dataclass(frozen=True)
class CompletedJob:
    """A job the proof worker answered: where its response and signed bundle are kept, its
    DONE event and audit event, to be written with its batch."""

    id: str
    tenant: str
    response_ref: str
    commitment: str  # of the response
    completed_at: str
    bundle_id: str
    bundle_ref: str
    bundle_hash: str  # of the signed envelope
    event_id: str  # of its DONE event
    audit: AuditEvent


@dataclass(frozen=True)
class FailedJob:
    """A job the proof worker could not answer: the code and message it fails with, and
    its FAILED event (at when its batch is written) and audit event."""

    id: str
    tenant: str
    code: str
    message: str
    event_id: str
    at: str
    audit: AuditEvent
