from typing import Annotated

import strawberry

from trustfabric.domain.webhooks import check_url
from trustfabric.schema.provenance import Info
from trustfabric.schema.webhooks import DeadLetter, Webhook, WebhookRegistration


async def register_webhook(
    info: Info,
    url: Annotated[str, strawberry.argument(
        description="An http(s) URL of at most 2,048 characters, not a private or loopback "
                    "address.")],
) -> WebhookRegistration:
    caller = info.context.caller
    check_url(url, info.context.settings.webhook_allow_private)
    endpoint, secret = await info.context.repos.webhooks.register(caller.tenant, url)
    return WebhookRegistration(webhook=Webhook.from_endpoint(endpoint), secret=secret)


async def delete_webhook(
    info: Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="The webhook's id.")],
) -> bool:
    await info.context.repos.webhooks.deactivate(str(id), info.context.caller.read_scope)
    return True


async def webhooks(info: Info) -> list[Webhook]:
    endpoints = await info.context.repos.webhooks.endpoints(info.context.caller.read_scope)
    return [Webhook.from_endpoint(endpoint) for endpoint in endpoints]


async def dead_letters(info: Info) -> list[DeadLetter]:
    dead = await info.context.repos.webhooks.settled(info.context.caller.read_scope, "DEAD")
    return [DeadLetter.from_delivery(delivery) for delivery in dead]


async def replay_dead_letters(
    info: Info,
    ids: Annotated[list[strawberry.ID], strawberry.argument(
        description="DeadLetter ids; those whose webhook still exists are queued again.")],
) -> list[strawberry.ID]:
    return [strawberry.ID(i) for i in await info.context.repos.webhooks.replay([str(i) for i in ids])]
