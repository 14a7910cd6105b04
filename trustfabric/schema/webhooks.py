"""Webhook endpoints and dead letters."""

from datetime import datetime

import strawberry

from trustfabric.domain.webhooks import Delivery, Endpoint
from trustfabric.schema.described import described


@strawberry.type(description="A URL the tenant's PSI job events are POSTed to, signed with "
                             "HMAC-SHA256.")
class Webhook:
    id: strawberry.ID = described("The endpoint's id (deleteWebhook).")
    tenant: str = described("The tenant whose job events it receives.")
    url: str = described("The http(s) URL deliveries are POSTed to.")
    created_at: datetime = described("When it was registered.")

    @classmethod
    def from_endpoint(cls, endpoint: Endpoint) -> "Webhook":
        return cls(id=strawberry.ID(endpoint.id), tenant=endpoint.tenant, url=endpoint.url,
                   created_at=datetime.fromisoformat(endpoint.created_at))


@strawberry.type(description="A webhook just registered, with the secret that signs its "
                             "deliveries.")
class WebhookRegistration:
    webhook: Webhook = described("The endpoint registered.")
    secret: str = strawberry.field(
        description="HMAC-SHA256 key of the X-TrustFabric-Signature header; shown only now.")


@strawberry.type(description="A job event whose delivery to a webhook failed every attempt; "
                             "replayDeadLetters sends it again.")
class DeadLetter:
    id: strawberry.ID = described("The delivery's id (replayDeadLetters).")
    tenant: str = described("The tenant of the job and the endpoint.")
    job_id: str = described("The PSI job the event is about.")
    job_status: str = described("The status the event announced (a PsiJobStatus name).")
    attempts: int = described("How many times sending was tried.")
    last_error: str | None = described("Why the last attempt failed (an HTTP status or a "
                                       "connection error); null when none was recorded.")

    @classmethod
    def from_delivery(cls, delivery: Delivery) -> "DeadLetter":
        return cls(id=strawberry.ID(delivery.id), tenant=delivery.tenant,
                   job_id=delivery.job_id, job_status=delivery.job_status,
                   attempts=delivery.attempts, last_error=delivery.last_error)
