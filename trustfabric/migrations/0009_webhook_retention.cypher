// Delivered and cancelled deliveries are dropped after their retention
// (TF_WEBHOOK_RETENTION_S), found by the time of their event.
CREATE INDEX webhook_delivery_event_at IF NOT EXISTS FOR (d:WebhookDelivery) ON (d.eventAt);
// A deleted endpoint's dead letters can no longer be replayed: they are cancelled, as
// deleting an endpoint does from here on, and retired with the rest of its history.
MATCH (d:WebhookDelivery {status: 'DEAD'})
MATCH (w:WebhookEndpoint {id: d.endpointId}) WHERE NOT w.active
SET d.status = 'CANCELLED', d.lastError = 'endpoint deactivated';
