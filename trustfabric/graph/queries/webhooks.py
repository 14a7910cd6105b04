"""Webhook endpoints, and deliveries fanned out from job events (a durable outbox).

A delivery is kept as its history; while it is pending it also has a `WebhookDue` entry,
which holds when it is next due (or leased until), so the dispatcher's search reads only
the deliveries still owed."""

from trustfabric.graph.cypher import Cypher

# Nothing is created (no row) when the tenant already has `$max` active endpoints. Two
# registrations at the same moment may both pass: a bound on cost, not an exact count.
REGISTER = Cypher(
    "webhooks.register",
    """
    OPTIONAL MATCH (other:WebhookEndpoint {tenant: $tenant}) WHERE other.active
    WITH count(other) AS active
    WHERE active < $max
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

# What a deactivated endpoint was still owed is owed to nobody: its due deliveries and its
# dead letters (which could no longer be replayed) are cancelled, and retired in time.
CANCEL_DUE = Cypher(
    "webhooks.cancel_due",
    """
    MATCH (u:WebhookDue {endpointId: $endpointId})
    MATCH (d:WebhookDelivery {id: u.deliveryId})
    DELETE u
    SET d.status = 'CANCELLED', d.nextAttemptAt = null, d.lastError = $reason
    RETURN count(d) AS cancelled
    """,
)

CANCEL_DEAD = Cypher(
    "webhooks.cancel_dead",
    """
    MATCH (d:WebhookDelivery {status: 'DEAD'})
    WHERE d.endpointId = $endpointId
    SET d.status = 'CANCELLED', d.lastError = $reason
    RETURN count(d) AS cancelled
    """,
)

CURSOR = Cypher(
    "webhooks.cursor",
    "MATCH (c:WebhookCursor {id: 'fanout'}) RETURN c.at AS at, c.recheck AS recheck",
)

SET_CURSOR = Cypher(
    "webhooks.set_cursor",
    """
    MERGE (c:WebhookCursor {id: 'fanout'}) SET c.at = $at, c.recheck = $recheck
    RETURN c.at AS at
    """,
)

# One delivery per (event, endpoint), however often the same events are read again (each
# process reads the last seconds again for late commits). Only a delivery created here gets
# its due entry: one read again after it was delivered, by another process, is not due.
FAN_OUT = Cypher(
    "webhooks.fan_out",
    """
    UNWIND $events AS e
    MATCH (w:WebhookEndpoint {tenant: e.tenant})
    WHERE w.active
    MERGE (d:WebhookDelivery {id: e.id + ':' + w.id})
      ON CREATE SET d.endpointId = w.id, d.tenant = e.tenant, d.eventId = e.id,
                    d.jobId = e.jobId, d.jobStatus = e.status, d.eventAt = e.at,
                    d.topic = e.topic,
                    d.status = 'PENDING', d.attempts = 0, d.nextAttemptAt = $now,
                    d.created = true
    WITH d WHERE d.created
    REMOVE d.created
    CREATE (u:WebhookDue {deliveryId: d.id, endpointId: d.endpointId, eventAt: d.eventAt,
                          nextAttemptAt: d.nextAttemptAt})
    RETURN count(u) AS due
    """,
)

# Claims take turns on one record, or two could take the same deliveries (decision 0019).
# Claiming pushes the next attempt past the send timeout: a lease
# against double sends. An endpoint deactivated while its delivery was being fanned out or
# replayed (deactivating cancels only the entries already there) is reported, to be
# cancelled rather than sent.
CLAIM_DUE = Cypher(
    "webhooks.claim_due",
    """
    MERGE (l:WebhookClaimLock {id: 'claims'}) SET l.at = $now
    WITH l
    MATCH (u:WebhookDue)
    WHERE u.nextAttemptAt <= $now AND NOT u.endpointId IN $busy
    WITH u ORDER BY u.eventAt LIMIT $limit
    MATCH (d:WebhookDelivery {id: u.deliveryId})
    MATCH (w:WebhookEndpoint {id: d.endpointId})
    SET u.nextAttemptAt = $leaseUntil
    RETURN d {.*} AS delivery, w.url AS url, w.secret AS secret, w.active AS active
    """,
)

# An endpoint's deliveries are sent one after another, each within the send timeout: the
# lease of the later ones is pushed out to cover those before them.
EXTEND_LEASES = Cypher(
    "webhooks.extend_leases",
    """
    UNWIND $ids AS id
    MATCH (u:WebhookDue {deliveryId: id})
    WHERE u.nextAttemptAt < $until
    SET u.nextAttemptAt = $until
    RETURN count(u) AS extended
    """,
)

# An attempt's outcome counts only while its delivery is due: one cancelled meanwhile (its
# endpoint deactivated) stays cancelled.
RETRY_LATER = Cypher(
    "webhooks.retry_later",
    """
    MATCH (u:WebhookDue {deliveryId: $id})
    MATCH (d:WebhookDelivery {id: $id})
    SET d.attempts = $attempts, d.nextAttemptAt = $nextAttemptAt, d.lastError = $error,
        d.lastAttemptAt = $now, u.nextAttemptAt = $nextAttemptAt
    RETURN d.id AS id
    """,
)

# DELIVERED, DEAD or CANCELLED: no longer due.
SETTLE = Cypher(
    "webhooks.settle",
    """
    MATCH (u:WebhookDue {deliveryId: $id})
    MATCH (d:WebhookDelivery {id: $id})
    DELETE u
    SET d.status = $status, d.attempts = $attempts, d.nextAttemptAt = null,
        d.lastError = $error,
        d.lastAttemptAt = CASE WHEN $status = 'CANCELLED' THEN d.lastAttemptAt ELSE $now END
    RETURN d.id AS id
    """,
)

# History past retention: found by the event-time index, deleted by id (decision 0018).
SETTLED_BEFORE = Cypher(
    "webhooks.settled_before",
    """
    MATCH (d:WebhookDelivery)
    WHERE d.eventAt < $before
    WITH d WHERE d.status IN ['DELIVERED', 'CANCELLED']
    RETURN d.id AS id
    LIMIT $limit
    """,
)

DROP = Cypher(
    "webhooks.drop",
    """
    UNWIND $ids AS id
    MATCH (d:WebhookDelivery {id: id})
    DELETE d
    RETURN count(*) AS dropped
    """,
)

# Settled deliveries by outcome (DEAD: the dead letters), through the status index.
SETTLED = Cypher(
    "webhooks.settled",
    """
    MATCH (d:WebhookDelivery {status: $status})
    WHERE $tenant IS NULL OR d.tenant = $tenant
    RETURN d {.*} AS delivery ORDER BY d.eventAt LIMIT $limit
    """,
)

REPLAY = Cypher(
    "webhooks.replay",
    """
    UNWIND $ids AS id
    MATCH (d:WebhookDelivery {id: id, status: 'DEAD'})
    MATCH (w:WebhookEndpoint {id: d.endpointId})
    WHERE w.active
    SET d.status = 'PENDING', d.attempts = 0, d.nextAttemptAt = $now, d.lastError = null
    MERGE (u:WebhookDue {deliveryId: d.id})
      ON CREATE SET u.endpointId = d.endpointId, u.eventAt = d.eventAt
    SET u.nextAttemptAt = $now
    RETURN d.id AS id
    """,
)


# Endpoints whose signing secret an earlier version stored in clear, and their sealing
# (only if still in clear: two processes starting at once seal each secret once).
SECRETS_IN_CLEAR = Cypher(
    "webhooks.secrets_in_clear",
    """
    MATCH (w:WebhookEndpoint) WHERE NOT w.secret STARTS WITH $sealed
    RETURN w.id AS id, w.secret AS secret
    """,
)

SEAL_SECRETS = Cypher(
    "webhooks.seal_secrets",
    """
    UNWIND $endpoints AS e
    MATCH (w:WebhookEndpoint {id: e.id}) WHERE NOT w.secret STARTS WITH $sealed
    SET w.secret = e.secret
    RETURN count(w) AS sealed
    """,
)
