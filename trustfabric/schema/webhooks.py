"""Webhook endpoints and dead letters."""

from datetime import datetime

import strawberry

from trustfabric.domain.webhooks import Delivery, Endpoint


@strawberry.type
class Webhook:
    id: strawberry.ID
    tenant: str
    url: str
    created_at: datetime

    @classmethod
    def from_endpoint(cls, endpoint: Endpoint) -> "Webhook":
        return cls(id=strawberry.ID(endpoint.id), tenant=endpoint.tenant, url=endpoint.url,
                   created_at=datetime.fromisoformat(endpoint.created_at))


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
    def from_delivery(cls, delivery: Delivery) -> "DeadLetter":
        return cls(id=strawberry.ID(delivery.id), tenant=delivery.tenant,
                   job_id=delivery.job_id, job_status=delivery.job_status,
                   attempts=delivery.attempts, last_error=delivery.last_error)
