// Audit events are kept in batches, one node for a tenant's events of one statement, and
// only the batches are indexed (decision 0027): two index keys an event made the indexes'
// full compactions the one cost that grew through a 45-minute soak.
CREATE INDEX audit_batch_key IF NOT EXISTS FOR (a:AuditBatch) ON (a.key);
CREATE INDEX audit_batch_tenant_key IF NOT EXISTS FOR (a:AuditBatch) ON (a.tenantKey);
// Dropped first: nothing reads them any more, and each event moved would update them.
DROP INDEX audit_event_key IF EXISTS;
DROP INDEX audit_event_tenant_key IF EXISTS;
// Each event recorded before becomes a batch of its own, under its own key, so cursors
// handed out before still page on from the same place; its tenant key made as 0007 made
// it, for an event written without one. In slices: run again until none is left. Events
// written by processes of the previous version while this runs are not moved: stop them
// first (README, "Upgrading").
MATCH (e:AuditEvent)
WITH e LIMIT 5000
CREATE (:AuditBatch {key: e.key, tenantKey: e.tenant + '|' + e.key, tenant: e.tenant,
                     ids: [e.id], keys: [e.key], ats: [e.at], actors: [e.actor],
                     actions: [e.action], subjects: [e.subject], outcomes: [e.outcome],
                     details: [e.details]})
DELETE e
RETURN count(*) AS changed;
