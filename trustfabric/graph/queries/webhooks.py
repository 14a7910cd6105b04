"""Webhook endpoints, and deliveries fanned out from job events (a durable outbox)."""

from trustfabric.graph.cypher import Cypher

REGISTER = Cypher(
    "webhooks.register",
    """
    CREATE (w:WebhookEndpoint {id: $id, tenant: $tenant, url: $url, secret: $secret,
                               active: true, createdAt: $now})
    RETURN w {.id, .tenant, .url, .createdAt} AS endpoint
    """,
)

ENDPOINTS = Cypher(
    "webhooks.endpoints",
    """
    MATCH (w:WebhookEndpoint)
    WHERE w.active AND ($tenant IS NULL OR w.tenant = $tenant)
    RETURN w {.id, .tenant, .url, .createdAt} AS endpoint ORDER BY w.createdAt
    """,
)

DEACTIVATE = Cypher(
    "webhooks.deactivate",
    """
    MATCH (w:WebhookEndpoint {id: $id})
    WHERE $tenant IS NULL OR w.tenant = $tenant
    SET w.active = false
    RETURN w.id AS id
    """,
)

CURSOR = Cypher(
    "webhooks.cursor",
    "MATCH (c:WebhookCursor {id: 'fanout'}) RETURN c.at AS at, c.full AS full",
)

SET_CURSOR = Cypher(
    "webhooks.set_cursor",
    "MERGE (c:WebhookCursor {id: 'fanout'}) SET c.at = $at, c.full = $full RETURN c.at AS at",
)

# One delivery per (event, endpoint), however often the same events are read again.
FAN_OUT = Cypher(
    "webhooks.fan_out",
    """
    UNWIND $events AS e
    MATCH (w:WebhookEndpoint {tenant: e.tenant})
    WHERE w.active
    MERGE (d:WebhookDelivery {id: e.id + ':' + w.id})
      ON CREATE SET d.endpointId = w.id, d.tenant = e.tenant, d.eventId = e.id,
                    d.jobId = e.jobId, d.jobStatus = e.status, d.eventAt = e.at,
                    d.status = 'PENDING', d.attempts = 0, d.nextAttemptAt = $now
    RETURN count(d) AS n
    """,
)

# Claiming pushes the next attempt past the send timeout: a lease against double sends.
CLAIM_DUE = Cypher(
    "webhooks.claim_due",
    """
    MATCH (d:WebhookDelivery)
    WHERE d.status = 'PENDING' AND d.nextAttemptAt <= $now
    WITH d ORDER BY d.eventAt LIMIT $limit
    MATCH (w:WebhookEndpoint {id: d.endpointId})
    SET d.nextAttemptAt = $leaseUntil
    RETURN d {.*} AS delivery, w.url AS url, w.secret AS secret, w.active AS active
    """,
)

RECORD_ATTEMPT = Cypher(
    "webhooks.record_attempt",
    """
    MATCH (d:WebhookDelivery {id: $id})
    SET d.status = $status, d.attempts = $attempts, d.nextAttemptAt = $nextAttemptAt,
        d.lastError = $error, d.lastAttemptAt = $now
    RETURN d.id AS id
    """,
)

DEAD = Cypher(
    "webhooks.dead",
    """
    MATCH (d:WebhookDelivery {status: 'DEAD'})
    WHERE $tenant IS NULL OR d.tenant = $tenant
    RETURN d {.*} AS delivery ORDER BY d.eventAt LIMIT $limit
    """,
)

REPLAY = Cypher(
    "webhooks.replay",
    """
    UNWIND $ids AS id
    MATCH (d:WebhookDelivery {id: id, status: 'DEAD'})
    SET d.status = 'PENDING', d.attempts = 0, d.nextAttemptAt = $now, d.lastError = null
    RETURN d.id AS id
    """,
)
