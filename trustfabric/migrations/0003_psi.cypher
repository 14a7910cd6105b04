// PSI: partner datasets and their versions, jobs (with their idempotency keys), proof
// bundles, job events (the outbox subscriptions and webhooks read), audit events,
// pilot controls and webhook endpoints and deliveries.
CREATE CONSTRAINT dataset_id IF NOT EXISTS FOR (d:Dataset) REQUIRE d.id IS UNIQUE;
CREATE CONSTRAINT dataset_version_key IF NOT EXISTS FOR (v:DatasetVersion) REQUIRE v.key IS UNIQUE;
CREATE CONSTRAINT dataset_items_key IF NOT EXISTS FOR (i:DatasetItems) REQUIRE i.key IS UNIQUE;
CREATE CONSTRAINT psi_job_id IF NOT EXISTS FOR (j:PsiJob) REQUIRE j.id IS UNIQUE;
CREATE CONSTRAINT psi_job_idem IF NOT EXISTS FOR (j:PsiJob) REQUIRE j.idemKey IS UNIQUE;
CREATE CONSTRAINT proof_bundle_job IF NOT EXISTS FOR (b:ProofBundle) REQUIRE b.jobId IS UNIQUE;
CREATE CONSTRAINT job_event_id IF NOT EXISTS FOR (e:JobEvent) REQUIRE e.id IS UNIQUE;
CREATE CONSTRAINT audit_event_id IF NOT EXISTS FOR (a:AuditEvent) REQUIRE a.id IS UNIQUE;
CREATE CONSTRAINT pilot_controls_id IF NOT EXISTS FOR (c:PilotControls) REQUIRE c.id IS UNIQUE;
CREATE CONSTRAINT webhook_id IF NOT EXISTS FOR (w:WebhookEndpoint) REQUIRE w.id IS UNIQUE;
CREATE CONSTRAINT webhook_delivery_id IF NOT EXISTS FOR (d:WebhookDelivery) REQUIRE d.id IS UNIQUE;
CREATE INDEX dataset_partner IF NOT EXISTS FOR (d:Dataset) ON (d.partner);
CREATE INDEX psi_job_status IF NOT EXISTS FOR (j:PsiJob) ON (j.status);
CREATE INDEX psi_job_tenant IF NOT EXISTS FOR (j:PsiJob) ON (j.tenant);
CREATE INDEX job_event_at IF NOT EXISTS FOR (e:JobEvent) ON (e.at);
CREATE INDEX audit_event_tenant IF NOT EXISTS FOR (a:AuditEvent) ON (a.tenant);
CREATE INDEX webhook_tenant IF NOT EXISTS FOR (w:WebhookEndpoint) ON (w.tenant);
CREATE INDEX webhook_delivery_status IF NOT EXISTS FOR (d:WebhookDelivery) ON (d.status);
CREATE CONSTRAINT webhook_cursor_id IF NOT EXISTS FOR (c:WebhookCursor) REQUIRE c.id IS UNIQUE;
