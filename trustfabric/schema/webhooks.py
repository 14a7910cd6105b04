"""Webhook endpoints and dead letters."""

from datetime import datetime
from typing import Any

import strawberry


@strawberry.type
class Webhook:
    id: strawberry.ID
    tenant: str
    url: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Webhook":
        return cls(id=strawberry.ID(row["id"]), tenant=row["tenant"], url=row["url"],
                   created_at=datetime.fromisoformat(row["createdAt"]))


@strawberry.type
class WebhookRegistration:
    webhook: Webhook
    secret: str = strawberry.field(
        description="HMAC-SHA256 key of the X-TrustFabric-Signature header; shown only now.")


@strawberry.type
class DeadLetter:
    id: strawberry.ID
    tenant: str
    job_id: str
    job_status: str
    attempts: int
    last_error: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "DeadLetter":
        return cls(id=strawberry.ID(row["id"]), tenant=row["tenant"], job_id=row["jobId"],
                   job_status=row["jobStatus"], attempts=row["attempts"],
                   last_error=row.get("lastError"))
