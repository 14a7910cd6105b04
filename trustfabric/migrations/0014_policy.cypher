// Policies as code: environments, snapshots and promotions are tenant-owned entities (the
// :Entity key constraint covers them); these indexes serve their listings and the search
// for the last passing promotion of a lineage.
CREATE INDEX environment_tenant IF NOT EXISTS FOR (n:Environment) ON (n.tenant);
CREATE INDEX snapshot_image IF NOT EXISTS FOR (n:Snapshot) ON (n.imageKey);
CREATE INDEX promotion_tenant_at IF NOT EXISTS FOR (n:Promotion) ON (n.tenant, n.at);
CREATE INDEX promotion_image IF NOT EXISTS FOR (n:Promotion) ON (n.imageKey);
CREATE INDEX drift_proposal_status IF NOT EXISTS FOR (n:DriftProposal) ON (n.status, n.soakUntil);
CREATE INDEX drift_proposal_tenant IF NOT EXISTS FOR (n:DriftProposal) ON (n.tenant);
