"""Audit events: who did what to which subject, with what outcome.

Details hold ids, hashes, sizes, modes and decisions: never a selector (raw or blinded)
and never a request or response payload. `redacted` enforces that by key.
"""

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

# The only detail keys an audit event may carry; anything else is dropped.
ALLOWED_DETAILS = frozenset({
    "mode", "datasetId", "datasetVersion", "datasetHash", "partner", "requestCommitment",
    "requestSize", "responseCommitment", "bundleId", "reason", "changed", "size",
    "idempotencyKeyHash", "retryAfterSeconds", "url", "attempts", "serverKeyId", "count",
})


def redacted(details: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in details.items() if k in ALLOWED_DETAILS and v is not None}


def iso(moment: datetime) -> str:
    """Timestamps are compared as text in queries: one fixed width keeps that correct."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def now_iso() -> str:
    return iso(datetime.now(UTC))


def tenant_key(tenant: str, key: str) -> str:
    """What a tenant's batches of events are indexed and paged by: in key order."""
    return f"{tenant}|{key}"


# An audit event as recorded (`audit_event` makes one); the store gives it its key, the
# place in the log it is paged by, as it writes it (`graph.audit`).
AuditEvent = dict[str, Any]


class AuditLog(Protocol):
    """Where audit events are recorded (`graph.audit.AuditRepository`)."""

    async def record(self, *events: AuditEvent) -> None: ...


def audit_event(
    *, tenant: str, actor: str, action: str, subject: str, outcome: str, **details: Any
) -> AuditEvent:
    return {
        "id": secrets.token_hex(10), "at": now_iso(), "tenant": tenant, "actor": actor,
        "action": action, "subject": subject, "outcome": outcome,
        "details": json.dumps(redacted(details), sort_keys=True),
    }


@dataclass(frozen=True)
class AuditRecord:
    id: str
    key: str
    at: str
    tenant: str
    actor: str
    action: str
    subject: str
    outcome: str
    details: dict[str, Any]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "AuditRecord":
        return cls(**{**row, "details": json.loads(row["details"])})
