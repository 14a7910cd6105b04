// Paging decisions: repeats are found by fingerprint within a tenant, and the expiry job
// reads the active rules.
CREATE INDEX anomaly_fingerprint IF NOT EXISTS FOR (n:Anomaly) ON (n.fingerprint);
CREATE INDEX suppression_rule_tenant IF NOT EXISTS FOR (n:SuppressionRule) ON (n.tenant);
CREATE INDEX suppression_rule_status IF NOT EXISTS FOR (n:SuppressionRule) ON (n.status);
