// Deliveries due: one entry per pending delivery, deleted when it is delivered, dead or
// cancelled, so finding what is due costs the same however many were ever delivered.
// Through the status index of every delivery, a claim took 7 ms with none delivered,
// 16 ms after 50,000 and 33 ms after 200,000 (five pending each time).
// A deactivated endpoint's pending deliveries were claimed again every lease and never
// sent; they are cancelled now, as deactivating an endpoint does from here on.
// Stop the processes of the previous version first (README, "Upgrading"): deliveries they
// fan out afterwards get no entry.
CREATE CONSTRAINT webhook_due_delivery IF NOT EXISTS FOR (u:WebhookDue) REQUIRE u.deliveryId IS UNIQUE;
MATCH (d:WebhookDelivery) WHERE d.status = 'PENDING'
MATCH (w:WebhookEndpoint {id: d.endpointId}) WHERE NOT w.active
SET d.status = 'CANCELLED', d.nextAttemptAt = null, d.lastError = 'endpoint deactivated';
MATCH (d:WebhookDelivery) WHERE d.status = 'PENDING'
MERGE (u:WebhookDue {deliveryId: d.id})
ON CREATE SET u.endpointId = d.endpointId, u.eventAt = d.eventAt,
              u.nextAttemptAt = d.nextAttemptAt;
