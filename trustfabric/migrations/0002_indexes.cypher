// Tenant-scoped listings filter on `tenant`; hot tenant nodes are avoided on purpose
// (no FOR_TENANT edge from every job), so these indexes carry the tenant wall.
CREATE INDEX anomaly_tenant IF NOT EXISTS FOR (n:Anomaly) ON (n.tenant);
CREATE INDEX job_tenant IF NOT EXISTS FOR (n:Job) ON (n.tenant);
CREATE INDEX image_tenant IF NOT EXISTS FOR (n:Image) ON (n.tenant);
CREATE INDEX commit_sha IF NOT EXISTS FOR (n:Commit) ON (n.sha);
CREATE INDEX api_token_tenant IF NOT EXISTS FOR (t:ApiToken) ON (t.tenant);
